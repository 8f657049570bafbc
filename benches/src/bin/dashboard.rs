//! The dashboard's answer times on a store of one million records (see
//! `sync_benches::dashboard`).
//!
//! ```text
//! cargo run --release -p sync-benches --bin dashboard
//! ```

use sync_benches::{dashboard, report, BoxError};

fn main() -> Result<(), BoxError> {
    let rows = dashboard::run()?;
    report::print(&format!("dashboard ({})", report::machine()), &rows);
    Ok(())
}
