//! Bounded memory: peak resident memory of 250k, 500k and 1M-record syncs, each in a fresh process (see `sync_benches::memory`).
//!
//! ```text
//! cargo run --release -p sync-benches --bin memory
//! ```

use sync_benches::{memory, report, BoxError};

fn main() -> Result<(), BoxError> {
    if let Some(child) = memory::maybe_child() {
        return child;
    }
    let rows = memory::run()?;
    report::print(&format!("memory ({})", report::machine()), &rows);
    Ok(())
}
