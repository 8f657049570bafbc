//! A YClients records import as a new user runs it: requests, time against
//! the limits, a SIGKILL and resume, plan against run, recovery from 429s
//! (see `sync_benches::records_import`).
//!
//! ```text
//! cargo build --release -p sync-cli
//! cargo run --release -p sync-benches --bin records_import
//! ```

use sync_benches::{records_import, report, runtime, BoxError};

fn main() -> Result<(), BoxError> {
    let rows = runtime()?.block_on(records_import::run())?;
    report::print(&format!("records import ({})", report::machine()), &rows);
    Ok(())
}
