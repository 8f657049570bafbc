//! Benchmarks of the whole system: rate-limit efficiency, engine overhead,
//! bounded memory, delta cost, store throughput, the shared request budget
//! (binaries under `src/bin`)
//! and core micro-benchmarks (criterion, `benches/core.rs`).
//!
//! Each benchmark lives in a module with a `run` function that prints its
//! figures and returns rows of the results table; the binaries are thin
//! `main`s around them, and `--bin all` runs them one after the other and
//! prints the table. See `benches/README.md` for the method and results.
//!
//! Benchmarks print figures; they are not timed unit tests.

pub mod dashboard;
pub mod delta_cost;
pub mod engine_overhead;
pub mod generated;
pub mod memory;
pub mod pg;
pub mod procfs;
pub mod rate_limit;
pub mod records_import;
pub mod report;
pub mod shared_budget;
pub mod sim;
pub mod store_throughput;
pub mod timing;

/// The error every benchmark returns: anything, with a message.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The tokio runtime the benchmarks run on: multi-threaded, as the CLI's.
pub fn runtime() -> Result<tokio::runtime::Runtime, BoxError> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}
