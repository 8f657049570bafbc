//! The request budget kept in the store: several syncs sharing the
//! documented limit, restarts, and the latency it adds per request (see
//! `sync_benches::shared_budget`).
//!
//! ```text
//! scripts/with-postgres.sh cargo run --release -p sync-benches --bin shared_budget
//! ```

use sync_benches::{report, shared_budget, BoxError};

fn main() -> Result<(), BoxError> {
    let rows = shared_budget::run()?;
    report::print(&format!("shared_budget ({})", report::machine()), &rows);
    Ok(())
}
