//! Bounded memory: peak resident memory of a sync of 250,000, 500,000 and
//! 1,000,000 records into SQLite, each in a fresh process.
//!
//! The records come from [`GeneratedRecords`], made on the fly batch by
//! batch (274 a day, the density of the YClients simulator's default, so a
//! longer range means more days), parsed by the real YClients mapping
//! (`record_from_json`), and stored through the real engine and SQLite
//! store in 7-day batches, two in flight. The simulator is left out on
//! purpose: it keeps every record in memory, and in the same process that
//! would be counted too; what must stay bounded is the engine and the store.
//! The peak is `VmHWM` of `/proc/self/status` at the end of the child
//! process.

use std::num::{NonZeroU32, NonZeroUsize};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use sync_core::{Engine, Order, RateLimiter, RunStatus, SyncOptions};
use sync_store_sqlite::SqliteStore;

use crate::generated::GeneratedRecords;
use crate::procfs::{mib, peak_rss_kib, rss_kib};
use crate::report::Row;
use crate::{runtime, BoxError};

/// How to run this benchmark alone.
pub const COMMAND: &str = "cargo run --release -p sync-benches --bin memory";
/// The argument that makes a benchmark binary run one measured sync.
pub const CHILD_FLAG: &str = "--memory-child";
/// Sizes measured, in records.
pub const SIZES: [u64; 3] = [250_000, 500_000, 1_000_000];
/// Records per local day.
pub const PER_DAY: u64 = 274;
/// The target for 1,000,000 records, in MiB.
pub const TARGET_MIB: f64 = 100.0;

/// What one child measured.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Measured {
    /// Records synced.
    pub records: u64,
    /// Peak resident memory over the whole process, KiB.
    pub peak_kib: u64,
    /// Resident memory right before the sync started, KiB.
    pub before_kib: u64,
    /// Seconds the sync took.
    pub seconds: f64,
}

/// When the process was started with [`CHILD_FLAG`]: runs one measured
/// sync, prints its figures for the parent and returns `Some`. Call it
/// first thing in `main` of every binary that may run this benchmark.
pub fn maybe_child() -> Option<Result<(), BoxError>> {
    let mut args = std::env::args().skip(1);
    if args.next().as_deref() != Some(CHILD_FLAG) {
        return None;
    }
    let records = args.next().and_then(|n| n.parse::<u64>().ok());
    Some(match records {
        Some(n) => child(n),
        None => Err(format!("{CHILD_FLAG} needs a record count").into()),
    })
}

fn child(records: u64) -> Result<(), BoxError> {
    let rt = runtime()?;
    rt.block_on(async {
        let dir = tempfile::tempdir()?;
        let store = Arc::new(SqliteStore::open(dir.path().join("memory.db")).await?);
        let source = Arc::new(GeneratedRecords::new(records, PER_DAY));
        let target = source.target();
        let engine = Engine::new(
            source,
            store.clone(),
            store.clone(),
            Arc::new(RateLimiter::unlimited()),
        );
        let options = SyncOptions {
            batch_size: NonZeroU32::new(7).unwrap_or(NonZeroU32::MIN),
            order: Order::OldestFirst,
            concurrency: NonZeroUsize::new(2).unwrap_or(NonZeroUsize::MIN),
            ..SyncOptions::default()
        };
        let before = rss_kib().unwrap_or(0);
        let started = Instant::now();
        let report = engine.run(&target, &options).await?;
        let seconds = started.elapsed().as_secs_f64();
        if report.status != RunStatus::Completed || report.counts.created != records {
            return Err(format!(
                "sync of {records} records ended {} with {:?}",
                report.status, report.counts
            )
            .into());
        }
        store.close().await;
        let peak = peak_rss_kib().ok_or("no VmHWM in /proc/self/status")?;
        println!("MEMORY {records} {peak} {before} {seconds:.3}");
        Ok::<_, BoxError>(())
    })
}

fn parse_child_line(out: &str) -> Option<Measured> {
    let line = out.lines().find(|l| l.starts_with("MEMORY "))?;
    let f: Vec<&str> = line.split_whitespace().collect();
    Some(Measured {
        records: f.get(1)?.parse().ok()?,
        peak_kib: f.get(2)?.parse().ok()?,
        before_kib: f.get(3)?.parse().ok()?,
        seconds: f.get(4)?.parse().ok()?,
    })
}

/// Runs one measured sync of `records` records in a fresh process (this
/// same executable, with [`CHILD_FLAG`]).
pub fn measure(records: u64) -> Result<Measured, BoxError> {
    let exe = std::env::current_exe()?;
    let out = Command::new(exe)
        .arg(CHILD_FLAG)
        .arg(records.to_string())
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!(
            "the {records}-record child failed: {}{}",
            stdout,
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    parse_child_line(&stdout).ok_or_else(|| format!("no figures from the child: {stdout}").into())
}

/// Runs the benchmark, prints its figures and returns its rows.
pub fn run() -> Result<Vec<Row>, BoxError> {
    if peak_rss_kib().is_none() {
        println!("memory: /proc/self/status has no VmHWM here; skipped");
        return Ok(Vec::new());
    }
    println!(
        "memory: peak RSS of a sync into SQLite, records made on the fly ({PER_DAY} a day), \
         one fresh process per size"
    );
    println!(
        "{:>10} {:>6} {:>12} {:>14} {:>8} {:>10}",
        "records", "days", "peak MiB", "before MiB", "secs", "rec/s"
    );
    let mut all = Vec::new();
    for n in SIZES {
        let m = measure(n)?;
        println!(
            "{:>10} {:>6} {:>12.1} {:>14.1} {:>8.1} {:>10.0}",
            m.records,
            GeneratedRecords::new(n, PER_DAY).days(),
            mib(m.peak_kib),
            mib(m.before_kib),
            m.seconds,
            m.records as f64 / m.seconds.max(1e-9)
        );
        all.push(m);
    }
    let (Some(first), Some(last)) = (all.first(), all.last()) else {
        return Ok(Vec::new());
    };
    let growth = mib(last.peak_kib) - mib(first.peak_kib);
    let peaks: Vec<String> = all
        .iter()
        .map(|m| format!("{:.1}", mib(m.peak_kib)))
        .collect();
    Ok(vec![
        Row::checked(
            "memory: peak RSS, 1,000,000-record sync into SQLite",
            format!("< {TARGET_MIB} MB"),
            format!("{:.1} MiB", mib(last.peak_kib)),
            mib(last.peak_kib) < TARGET_MIB,
            COMMAND,
        ),
        Row::checked(
            "memory: peak RSS at 250k / 500k / 1M records",
            "not growing with the range",
            format!(
                "{} MiB ({growth:+.1} MiB from 250k to 1M)",
                peaks.join(" / ")
            ),
            // Noise of a few MiB is allocator behaviour, not growth.
            growth < 10.0,
            COMMAND,
        ),
    ])
}
