//! Every benchmark binary in turn, then the results table.
//!
//! ```text
//! scripts/with-postgres.sh cargo run --release -p sync-benches --bin all
//! ```
//! Without DATABASE_URL the Postgres parts are skipped (and say so). The
//! criterion micro-benchmarks run apart: `cargo bench -p sync-benches`
//! (`benches/run.sh` runs both).

use std::time::Instant;

use sync_benches::report::{self, Row};
use sync_benches::{
    dashboard, delta_cost, engine_overhead, memory, rate_limit, shared_budget, store_throughput,
    BoxError,
};

type Bench = fn() -> Result<Vec<Row>, BoxError>;

fn main() -> Result<(), BoxError> {
    if let Some(child) = memory::maybe_child() {
        return child;
    }
    let machine = report::machine();
    let benches: [(&str, Bench); 7] = [
        ("rate_limit", rate_limit::run),
        ("engine_overhead", engine_overhead::run),
        ("memory", memory::run),
        ("delta_cost", delta_cost::run),
        ("store_throughput", store_throughput::run),
        ("dashboard", dashboard::run),
        ("shared_budget", shared_budget::run),
    ];
    let started = Instant::now();
    let mut rows = Vec::new();
    let mut failed = Vec::new();
    for (name, bench) in benches {
        println!();
        println!("######## {name}");
        let t = Instant::now();
        match bench() {
            Ok(r) => rows.extend(r),
            Err(e) => {
                println!("{name} failed: {e}");
                failed.push(name);
            }
        }
        println!("({name}: {:.0} s)", t.elapsed().as_secs_f64());
    }
    report::print(
        &format!(
            "results (started at: {machine}; now: {}; {:.0} s in all)",
            report::machine(),
            started.elapsed().as_secs_f64()
        ),
        &rows,
    );
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("benchmarks failed: {}", failed.join(", ")).into())
    }
}
