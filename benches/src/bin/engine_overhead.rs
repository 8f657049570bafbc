//! Engine overhead: records per second from the simulator (no limit) to SQLite and Postgres, and where the time goes (see `sync_benches::engine_overhead`).
//!
//! ```text
//! scripts/with-postgres.sh cargo run --release -p sync-benches --bin engine_overhead
//! ```

use sync_benches::{engine_overhead, report, BoxError};

fn main() -> Result<(), BoxError> {
    let rows = engine_overhead::run()?;
    report::print(&format!("engine_overhead ({})", report::machine()), &rows);
    Ok(())
}
