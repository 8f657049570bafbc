//! Database outage: the Postgres server stops in the middle of a run. The
//! run ends with a clear error naming the database, no partial batch is
//! visible once the server is back, the checkpoint is exactly the stored
//! data, and the next run resumes and completes exactly.
//!
//! The test starts a private Postgres cluster of its own (initdb on a free
//! port, from the binaries `scripts/with-postgres.sh` found, or
//! `/usr/lib/postgresql/*/bin`), so that stopping it cannot disturb other
//! tests running against the shared one.

mod common;

use std::num::NonZeroU32;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sync_core::{
    Engine, ProgressEvent, RateLimiter, RateLimits, RetryPolicy, RunStatus, Secret, SyncOptions,
    Target,
};
use sync_source_yclients::{sources_for_companies, YclientsConfig};
use sync_store_postgres::{PostgresConfig, PostgresStore};

use common::*;

/// A throwaway Postgres cluster, stopped and removed on drop.
struct Cluster {
    bindir: PathBuf,
    runas: Option<String>,
    dir: tempfile::TempDir,
    port: u16,
}

fn find_bindir() -> PathBuf {
    if let Ok(d) = std::env::var("SYNC_TEST_PG_BINDIR") {
        if !d.is_empty() {
            return PathBuf::from(d);
        }
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|b| b.join("initdb").exists() && b.join("pg_ctl").exists())
        .collect();
    found.sort();
    found.pop().unwrap_or_else(|| {
        panic!(
            "the database outage test needs the PostgreSQL server binaries (initdb, pg_ctl) to \
             start a private cluster: run it with `scripts/with-postgres.sh` (which exports \
             SYNC_TEST_PG_BINDIR), or install them (e.g. `apt-get install postgresql`)"
        )
    })
}

impl Cluster {
    fn start() -> Self {
        let bindir = find_bindir();
        let is_root = Command::new("id")
            .arg("-u")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
            .unwrap_or(false);
        let runas = match std::env::var("SYNC_TEST_PG_RUNAS") {
            Ok(u) if !u.is_empty() => Some(u),
            _ if is_root => Some("postgres".to_string()),
            _ => None,
        };
        let dir = tempfile::Builder::new()
            .prefix("sync-pg-outage")
            .tempdir()
            .unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let cluster = Self {
            bindir,
            runas,
            dir,
            port,
        };
        if let Some(user) = &cluster.runas {
            let ok = Command::new("chown")
                .arg(user)
                .arg(cluster.dir.path())
                .status()
                .is_ok_and(|s| s.success());
            assert!(
                ok,
                "cannot give {} to the user {user}",
                cluster.dir.path().display()
            );
        }
        cluster.pg(
            "initdb",
            &[
                "-D",
                &cluster.data().display().to_string(),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        cluster.server("start");
        cluster
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Runs a server program, as the cluster's owner.
    fn pg(&self, program: &str, args: &[&str]) {
        let exe = self.bindir.join(program);
        let mut cmd = match &self.runas {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(&exe);
                c
            }
            None => Command::new(&exe),
        };
        let out = cmd
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("{program}: {e}"));
        assert!(
            out.status.success(),
            "{program} {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `pg_ctl start` / `pg_ctl stop -m fast`, waiting for it.
    fn server(&self, action: &str) {
        let data = self.data().display().to_string();
        let log = self.dir.path().join("server.log").display().to_string();
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.dir.path().display()
        );
        match action {
            "start" => self.pg(
                "pg_ctl",
                &["-D", &data, "-l", &log, "-w", "-o", &options, "start"],
            ),
            _ => self.pg("pg_ctl", &["-D", &data, "-m", "fast", "-w", "stop"]),
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.data().display().to_string();
        let exe = self.bindir.join("pg_ctl");
        let _ = match &self.runas {
            Some(user) => Command::new("runuser")
                .args(["-u", user, "--"])
                .arg(exe)
                .args(["-D", &data, "-m", "immediate", "stop"])
                .output(),
            None => Command::new(exe)
                .args(["-D", &data, "-m", "immediate", "stop"])
                .output(),
        };
    }
}

#[test]
fn database_stopped_mid_run_ends_it_clearly_and_resumably() {
    let cluster = Cluster::start();
    assert!(cluster.data().is_dir());
    let rt = runtime();
    let db = rt.block_on(PgDb::create_on(&cluster.url()));
    let sim = rt.block_on(yclients_sim(600, 30));
    let cfg = sim.config().clone();
    let mut config = YclientsConfig::new(Secret::new(PARTNER), vec![COMPANY])
        .with_base_url(&sim.base_url())
        .unwrap()
        .with_login(cfg.login.clone(), Secret::new(PASSWORD));
    config.tz = cfg.tz;
    let source = sources_for_companies(&config).unwrap().remove(0).records;
    let range = sim_range(&sim);
    let target = Target::Days { range, tz: cfg.tz };
    // Eight one-day batches a second: the run takes ~4 s.
    let limiter = Arc::new(RateLimiter::new(RateLimits::new(Some(8), None)));
    let connect = |url: String| async move {
        let mut c = PostgresConfig::new(url);
        c.max_connections = 4;
        // Scaled down with the test: give up on the server after 1 s.
        c.acquire_timeout = Duration::from_secs(1);
        PostgresStore::connect_with(c).await.unwrap()
    };
    let stored_batches = Arc::new(AtomicU64::new(0));
    let options = {
        let stored_batches = stored_batches.clone();
        SyncOptions::builder()
            .batch_size(NonZeroU32::MIN)
            .retry(RetryPolicy {
                max_retries: 2,
                initial_delay: Duration::from_millis(100),
                max_delay: Duration::from_millis(300),
                ..RetryPolicy::default()
            })
            .progress(Arc::new(move |e: &ProgressEvent| {
                if matches!(e, ProgressEvent::BatchFinished { .. }) {
                    stored_batches.fetch_add(1, Ordering::SeqCst);
                }
            }))
            .build()
    };

    // Start the run; stop the server once a few batches are stored.
    let store = Arc::new(rt.block_on(connect(db.url.clone())));
    let engine = Engine::new(
        source.clone(),
        store.clone(),
        store.clone(),
        limiter.clone(),
    );
    let running = {
        let (engine, target, options) = (engine.clone(), target.clone(), options.clone());
        rt.spawn(async move { engine.run(&target, &options).await })
    };
    let until = Instant::now() + Duration::from_secs(20);
    while stored_batches.load(Ordering::SeqCst) < 5 {
        assert!(Instant::now() < until, "no batch stored");
        std::thread::sleep(Duration::from_millis(5));
    }
    let stopped_at = Instant::now();
    cluster.server("stop");
    let batches_before_stop = stored_batches.load(Ordering::SeqCst);
    let ended = rt.block_on(async { tokio::time::timeout(Duration::from_secs(30), running).await });
    let outcome = ended
        .expect("the run ends within 30 s of the outage")
        .unwrap();
    let took = stopped_at.elapsed();
    let error = match outcome {
        Err(e) => e.to_string(),
        Ok(report) => panic!("the run did not fail: {report:#?}"),
    };
    eprintln!(
        "db outage: server stopped after {batches_before_stop} batches; the run ended {:.1} s \
         later with: {error}",
        took.as_secs_f64()
    );
    assert!(
        error.contains("database") || error.contains("Postgres") || error.contains("postgres"),
        "the error names the database: {error}"
    );
    assert!(!error.contains("panicked"));
    rt.block_on(store.close());

    // Back up: no partial batch, the checkpoint equals the data.
    cluster.server("start");
    let store = Arc::new(rt.block_on(connect(db.url.clone())));
    let covered = rt.block_on(assert_covered_exact(
        store.as_ref(),
        store.as_ref(),
        &sim,
        "after the outage",
    ));
    assert!(
        covered >= batches_before_stop && covered < range.len() as u64,
        "{covered} days covered after {batches_before_stop} stored batches"
    );

    // Resume: completes, exactly.
    let engine = Engine::new(source, store.clone(), store.clone(), limiter);
    let report = rt.block_on(engine.run(&target, &options)).unwrap();
    assert_eq!(report.status, RunStatus::Completed, "{report:#?}");
    assert_eq!(
        report.batches_done,
        range.len() as u64 - covered,
        "only the missing days"
    );
    let total = rt.block_on(assert_covered_exact(
        store.as_ref(),
        store.as_ref(),
        &sim,
        "after the resumed run",
    ));
    assert_eq!(total, range.len() as u64);
    let runs = rt.block_on(history(store.as_ref()));
    assert_eq!(runs.len(), 2, "{runs:#?}");
    assert_eq!(
        runs[0].status,
        RunStatus::Failed,
        "the interrupted run: {:#?}",
        runs[0]
    );
    assert_eq!(runs[1].status, RunStatus::Completed);
    eprintln!(
        "db outage: {covered}/{} days kept through the outage, the resumed run stored the other {}",
        range.len(),
        report.batches_done
    );
    rt.block_on(store.close());
    rt.block_on(db.drop_db());
}
