//! Upsert throughput of the SQLite and Postgres stores against row-by-row baselines (see `sync_benches::store_throughput`).
//!
//! ```text
//! scripts/with-postgres.sh cargo run --release -p sync-benches --bin store_throughput
//! ```

use sync_benches::{report, store_throughput, BoxError};

fn main() -> Result<(), BoxError> {
    let rows = store_throughput::run()?;
    report::print(&format!("store_throughput ({})", report::machine()), &rows);
    Ok(())
}
