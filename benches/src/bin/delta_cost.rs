//! Delta cost: requests of a delta run after 1% of the records changed, against the full run's (see `sync_benches::delta_cost`).
//!
//! ```text
//! scripts/with-postgres.sh cargo run --release -p sync-benches --bin delta_cost
//! ```

use sync_benches::{delta_cost, report, BoxError};

fn main() -> Result<(), BoxError> {
    let rows = delta_cost::run()?;
    report::print(&format!("delta_cost ({})", report::machine()), &rows);
    Ok(())
}
