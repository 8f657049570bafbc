//! Bounded memory: peak resident memory of a sync of 250,000, 500,000 and
//! 1,000,000 records into SQLite, each in a fresh process, under two window
//! plans: the source's own windows (by density: 2 days, 3 pages of
//! 200) and an explicit large batch size ([`LARGE_BATCH_DAYS`] days, about
//! 100,000 records a batch).
//!
//! The records come from [`GeneratedRecords`], made on the fly page by page
//! (274 a day, the density of the YClients simulator's default, so a longer
//! range means more days), parsed by the real YClients mapping
//! (`record_from_json`), and stored through the real engine (its default
//! options: requests in flight as it chooses, up to 8) and SQLite store.
//! The simulator is left out on purpose: it keeps every record in memory,
//! and in the same process that would be counted too; what must stay
//! bounded is the engine and the store. The peak is `VmHWM` of
//! `/proc/self/status` at the end of the child process.

use std::num::NonZeroU32;
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
/// Days per batch of the explicit large batch size: a year, about 100,000
/// records a batch.
pub const LARGE_BATCH_DAYS: u32 = 365;

/// How the range is cut into batches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WindowPlan {
    /// The source's own windows (by density), as a user gets them.
    Default,
    /// An explicit batch size, in days.
    Days(NonZeroU32),
}

impl WindowPlan {
    /// The plans measured: the default and [`LARGE_BATCH_DAYS`].
    pub fn measured() -> Vec<Self> {
        let mut plans = vec![Self::Default];
        plans.extend(NonZeroU32::new(LARGE_BATCH_DAYS).map(Self::Days));
        plans
    }

    /// The plan as the child's argument: `auto` or the days.
    pub fn arg(self) -> String {
        match self {
            Self::Default => "auto".into(),
            Self::Days(n) => n.to_string(),
        }
    }

    /// The plan from the child's argument; `None` when it is neither `auto`
    /// nor a positive number of days.
    pub fn parse(arg: &str) -> Option<Self> {
        match arg {
            "auto" => Some(Self::Default),
            n => n.parse().ok().map(Self::Days),
        }
    }

    /// For people.
    pub fn name(self) -> String {
        match self {
            Self::Default => "default windows (by density)".into(),
            Self::Days(n) => format!("{n}-day batches"),
        }
    }
}

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
    /// Batches stored.
    pub batches: u64,
    /// Requests (pages and the probe).
    pub requests: u64,
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
    let plan = args.next().as_deref().and_then(WindowPlan::parse);
    Some(match (records, plan) {
        (Some(n), Some(plan)) => child(n, plan),
        _ => {
            Err(format!("{CHILD_FLAG} needs a record count and a batch size (auto or days)").into())
        }
    })
}

fn child(records: u64, plan: WindowPlan) -> Result<(), BoxError> {
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
        let mut options = SyncOptions::builder().order(Order::OldestFirst);
        if let WindowPlan::Days(n) = plan {
            options = options.batch_size(n);
        }
        let options = options.build();
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
        println!(
            "MEMORY {records} {peak} {before} {seconds:.3} {} {}",
            report.batches_done, report.requests
        );
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
        batches: f.get(5)?.parse().ok()?,
        requests: f.get(6)?.parse().ok()?,
    })
}

/// Runs one measured sync of `records` records cut by `plan` in a fresh
/// process (this same executable, with [`CHILD_FLAG`]).
pub fn measure(records: u64, plan: WindowPlan) -> Result<Measured, BoxError> {
    let exe = std::env::current_exe()?;
    let out = Command::new(exe)
        .arg(CHILD_FLAG)
        .arg(records.to_string())
        .arg(plan.arg())
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!(
            "the {records}-record child ({}) failed: {}{}",
            plan.name(),
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
         one fresh process per size and window plan"
    );
    println!(
        "{:<30} {:>10} {:>6} {:>8} {:>9} {:>10} {:>11} {:>7} {:>9}",
        "window plan",
        "records",
        "days",
        "batches",
        "requests",
        "peak MiB",
        "before MiB",
        "secs",
        "rec/s"
    );
    let mut rows = Vec::new();
    for plan in WindowPlan::measured() {
        let mut all = Vec::new();
        for n in SIZES {
            let m = measure(n, plan)?;
            println!(
                "{:<30} {:>10} {:>6} {:>8} {:>9} {:>10.1} {:>11.1} {:>7.1} {:>9.0}",
                plan.name(),
                m.records,
                GeneratedRecords::new(n, PER_DAY).days(),
                m.batches,
                m.requests,
                mib(m.peak_kib),
                mib(m.before_kib),
                m.seconds,
                m.records as f64 / m.seconds.max(1e-9)
            );
            all.push(m);
        }
        let (Some(first), Some(last)) = (all.first(), all.last()) else {
            continue;
        };
        let growth = mib(last.peak_kib) - mib(first.peak_kib);
        let peaks: Vec<String> = all
            .iter()
            .map(|m| format!("{:.1}", mib(m.peak_kib)))
            .collect();
        rows.push(Row::checked(
            format!(
                "memory: peak RSS, 1,000,000-record sync into SQLite, {}",
                plan.name()
            ),
            format!("< {TARGET_MIB} MB"),
            format!("{:.1} MiB", mib(last.peak_kib)),
            mib(last.peak_kib) < TARGET_MIB,
            COMMAND,
        ));
        rows.push(Row::checked(
            format!(
                "memory: peak RSS at 250k / 500k / 1M records, {}",
                plan.name()
            ),
            "not growing with the range",
            format!(
                "{} MiB ({growth:+.1} MiB from 250k to 1M)",
                peaks.join(" / ")
            ),
            // Noise of a few MiB is allocator behaviour, not growth.
            growth < 10.0,
            COMMAND,
        ));
    }
    Ok(rows)
}
