//! Close to the rate limit: wall time of a rate-limited sync against the least time the limits allow (see `sync_benches::rate_limit`).
//!
//! ```text
//! cargo run --release -p sync-benches --bin rate_limit
//! ```

use sync_benches::{rate_limit, report, BoxError};

fn main() -> Result<(), BoxError> {
    let rows = rate_limit::run()?;
    report::print(&format!("rate_limit ({})", report::machine()), &rows);
    Ok(())
}
