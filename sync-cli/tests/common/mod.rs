//! Shared by the reliability tests: the `sync-cli` binary as a child
//! process, simulators on a runtime of their own, fresh stores, and exact
//! comparisons of a store with a simulator.
//!
//! The tests are plain `#[test]` functions: the simulators run on a tokio
//! runtime owned by the test, while the test thread sleeps, starts and kills
//! children with `std::process`, and blocks on the runtime for store checks.

#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use serde_json::Value;
use sync_core::{
    CheckpointStore, Coverage, DayRange, ExistingQuery, RunReport, Store, StoredRecord, StreamId,
    Unit,
};
use sync_sim::yclients::{RunningYclientsSim, SimLimits, YclientsSim, YclientsSimConfig};
use sync_store_postgres::PostgresStore;
use sync_store_sqlite::SqliteStore;

/// The binary under test.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_sync-cli"))
}

/// The seed of a randomised test: `RELIABILITY_SEED` when set (to replay a
/// run), else a fresh one. Printed either way.
pub fn seed(test: &str) -> u64 {
    let seed = match std::env::var("RELIABILITY_SEED") {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("RELIABILITY_SEED={v:?} is not a number")),
        Err(_) => rand::random::<u32>() as u64,
    };
    eprintln!("{test}: seed {seed} (replay with RELIABILITY_SEED={seed})");
    seed
}

/// A runtime for the simulators and store checks.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

pub const PARTNER: &str = "partner-tok-RELIAB-51c7e0";
pub const PASSWORD: &str = "yc-pass-RELIAB-93af12";
pub const USER_TOKEN: &str = "user-tok-RELIAB-77d41b";
pub const COMPANY: u64 = 101;

/// A YClients simulator with distinctive credentials, `records` records over
/// `days` days, limits well above what the CLI's limiter sends.
pub async fn yclients_sim(records: usize, days: u32) -> RunningYclientsSim {
    YclientsSim::start(YclientsSimConfig {
        seed: 7,
        clients: 60,
        records,
        days,
        partner_token: PARTNER.into(),
        password: PASSWORD.into(),
        user_token: USER_TOKEN.into(),
        limits: SimLimits::new(Some(20), Some(1200)),
        ..YclientsSimConfig::default()
    })
    .await
    .expect("simulator starts")
}

/// Environment of the CLI for the YClients simulator (login + password).
pub fn yclients_env(sim: &RunningYclientsSim) -> Vec<(String, String)> {
    let c = sim.config();
    vec![
        ("YCLIENTS_BASE_URL".into(), sim.base_url()),
        ("YCLIENTS_PARTNER_TOKEN".into(), PARTNER.into()),
        ("YCLIENTS_LOGIN".into(), c.login.clone()),
        ("YCLIENTS_PASSWORD".into(), PASSWORD.into()),
        ("YCLIENTS_COMPANY_ID".into(), COMPANY.to_string()),
        ("YCLIENTS_TZ".into(), c.tz.to_string()),
    ]
}

/// The whole day range of the simulator's records.
pub fn sim_range(sim: &RunningYclientsSim) -> DayRange {
    DayRange::new(sim.config().first_day(), sim.config().end_date).unwrap()
}

/// The records stream of [`COMPANY`].
pub fn records_stream() -> StreamId {
    sync_source_yclients::YclientsRecords::stream_id(COMPANY)
}

/// The command line, run in `dir` with only `env` (and PATH).
pub fn command(dir: &Path, args: &[String], env: &[(String, String)]) -> Command {
    let mut cmd = Command::new(bin());
    cmd.current_dir(dir)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Runs the command to its end.
pub fn run(dir: &Path, args: &[String], env: &[(String, String)]) -> Output {
    command(dir, args, env).output().expect("binary runs")
}

/// Starts the command with stdout and stderr going to `<dir>/<name>.out`
/// and `.err` (files, so a killed child never blocks on a full pipe).
pub fn spawn(dir: &Path, name: &str, args: &[String], env: &[(String, String)]) -> Child {
    let out = File::create(dir.join(format!("{name}.out"))).unwrap();
    let err = File::create(dir.join(format!("{name}.err"))).unwrap();
    command(dir, args, env)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .expect("binary starts")
}

/// What a spawned child printed.
pub fn child_text(dir: &Path, name: &str) -> String {
    let read =
        |ext: &str| std::fs::read_to_string(dir.join(format!("{name}.{ext}"))).unwrap_or_default();
    format!("{}{}", read("out"), read("err"))
}

/// Stdout and stderr together.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Waits for `child` up to `limit`; `None` if it is still running.
pub fn wait_for(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let until = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        if Instant::now() >= until {
            return None;
        }
        std::thread::sleep(Duration::from_millis(3));
    }
}

/// `args` as owned strings.
pub fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

// ------------------------------------------------------------------ stores

/// Where the CLI stores: a SQLite file or a fresh Postgres database.
pub enum StoreLoc {
    /// A SQLite file.
    Sqlite(PathBuf),
    /// A Postgres database of its own.
    Postgres(PgDb),
}

impl StoreLoc {
    /// The CLI flags that select it.
    pub fn flags(&self) -> Vec<String> {
        match self {
            StoreLoc::Sqlite(p) => vec!["--sqlite".into(), p.display().to_string()],
            StoreLoc::Postgres(db) => vec!["--database-url".into(), db.url.clone()],
        }
    }

    /// Opens it (for checks between runs).
    pub async fn open(&self) -> Opened {
        match self {
            StoreLoc::Sqlite(p) => Opened::Sqlite(Arc::new(SqliteStore::open(p).await.unwrap())),
            StoreLoc::Postgres(db) => {
                Opened::Postgres(Arc::new(PostgresStore::connect(&db.url).await.unwrap()))
            }
        }
    }

    /// A short name for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            StoreLoc::Sqlite(_) => "sqlite",
            StoreLoc::Postgres(_) => "postgres",
        }
    }
}

/// An open store of either kind.
pub enum Opened {
    /// SQLite.
    Sqlite(Arc<SqliteStore>),
    /// Postgres.
    Postgres(Arc<PostgresStore>),
}

impl Opened {
    pub fn store(&self) -> &dyn Store {
        match self {
            Opened::Sqlite(s) => s.as_ref(),
            Opened::Postgres(s) => s.as_ref(),
        }
    }

    pub fn checkpoints(&self) -> &dyn CheckpointStore {
        match self {
            Opened::Sqlite(s) => s.as_ref(),
            Opened::Postgres(s) => s.as_ref(),
        }
    }

    pub async fn close(self) {
        match self {
            Opened::Sqlite(s) => s.close().await,
            Opened::Postgres(s) => s.close().await,
        }
    }
}

/// A fresh Postgres database of its own (see `ScratchDatabase`).
pub struct PgDb {
    scratch: sync_store_postgres::ScratchDatabase,
    /// The URL the CLI is given (a test may change it, e.g. add a password).
    pub url: String,
}

impl PgDb {
    /// Creates a fresh database on the server at `DATABASE_URL`; fails with a
    /// clear message when it is not set.
    pub async fn create() -> Self {
        let scratch = sync_store_postgres::ScratchDatabase::create("sync_rel")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let url = scratch.url().to_string();
        Self { scratch, url }
    }

    /// Creates a fresh database on the server at `admin_url`.
    pub async fn create_on(admin_url: &str) -> Self {
        let scratch = sync_store_postgres::ScratchDatabase::create_on(admin_url, "sync_rel")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let url = scratch.url().to_string();
        Self { scratch, url }
    }

    /// Drops the database.
    pub async fn drop_db(&self) {
        let _ = self.scratch.drop_db().await;
    }
}

// ------------------------------------------------------------ comparisons

/// The local visit day of a simulator record.
pub fn record_day(v: &Value) -> NaiveDate {
    v["date"].as_str().expect("record date")[..10]
        .parse()
        .expect("record day")
}

/// The simulator's records by id.
pub fn sim_records(sim: &RunningYclientsSim) -> BTreeMap<String, Value> {
    sim.records(COMPANY)
        .into_iter()
        .map(|v| (v["id"].to_string(), v))
        .collect()
}

/// Every stored record of `stream` in `range`, by id; panics on a duplicate
/// id (the same record stored twice).
pub async fn stored_by_id(
    store: &dyn Store,
    stream: &StreamId,
    entity: &str,
    range: DayRange,
) -> BTreeMap<String, StoredRecord> {
    let rows = store
        .existing(
            stream,
            &ExistingQuery::InDays {
                entity: entity.into(),
                range,
            },
        )
        .await
        .unwrap();
    let mut by_id = BTreeMap::new();
    for r in rows {
        let id = r.external_id.clone();
        assert!(
            by_id.insert(id.clone(), r).is_none(),
            "record {id} stored twice"
        );
    }
    by_id
}

/// Checks the checkpoint against the data: the stored YClients records are
/// exactly the simulator's records of the covered days (payload, deleted
/// flag, day), none missing, none extra, and the store's per-day counts
/// agree. Returns the number of covered days.
pub async fn assert_covered_exact(
    store: &dyn Store,
    checkpoints: &dyn CheckpointStore,
    sim: &RunningYclientsSim,
    context: &str,
) -> u64 {
    let range = sim_range(sim);
    let stream = records_stream();
    let coverage: Coverage = checkpoints.coverage(&stream).await.unwrap();
    let stored = stored_by_id(store, &stream, "record", range).await;
    let expected: BTreeMap<String, Value> = sim_records(sim)
        .into_iter()
        .filter(|(_, v)| coverage.days.contains(record_day(v)))
        .collect();
    let missing: Vec<&String> = expected
        .keys()
        .filter(|k| !stored.contains_key(*k))
        .collect();
    let extra: Vec<&String> = stored
        .keys()
        .filter(|k| !expected.contains_key(*k))
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{context}: covered days {:?}: {} records missing (e.g. {:?}), {} stored outside the \
         covered days (e.g. {:?})",
        coverage.days,
        missing.len(),
        &missing[..missing.len().min(5)],
        extra.len(),
        &extra[..extra.len().min(5)]
    );
    for (id, want) in &expected {
        let got = &stored[id];
        assert_eq!(&got.payload, want, "{context}: record {id}");
        assert_eq!(
            got.deleted,
            want["deleted"] == Value::Bool(true),
            "{context}: {id}"
        );
        assert_eq!(got.unit, Unit::Day(record_day(want)), "{context}: {id}");
    }
    let mut want_counts: BTreeMap<NaiveDate, u64> = BTreeMap::new();
    for v in expected
        .values()
        .filter(|v| v["deleted"] != Value::Bool(true))
    {
        *want_counts.entry(record_day(v)).or_default() += 1;
    }
    let counts = store.day_counts(&stream, range).await.unwrap();
    assert_eq!(counts, want_counts, "{context}: per-day counts");
    u64::try_from(coverage.days.count_within(range)).unwrap()
}

/// The run history of the records stream, oldest first.
pub async fn history(checkpoints: &dyn CheckpointStore) -> Vec<RunReport> {
    let mut runs = checkpoints
        .runs(Some(&records_stream()), 10_000)
        .await
        .unwrap();
    runs.reverse();
    runs
}
