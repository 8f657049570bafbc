//! Kill and resume: `sync-cli run` is killed with SIGKILL at seeded random
//! moments, at least [`KILLS`] times, and resumed each time. After every
//! kill the checkpoint is checked against the data (every covered day holds
//! exactly the simulator's records, no record outside the covered days);
//! at the end the store equals the simulator exactly and the run history
//! shows every killed run as abandoned. For SQLite and for Postgres.
//!
//! `RELIABILITY_SEED=<n>` replays a run's kill times.

mod common;

use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sync_core::RunStatus;

use common::*;

/// Kill points per store.
const KILLS: usize = 20;
/// Records and days of the simulated company. The CLI paces YClients at the
/// documented 5 requests a second (one request per one-day batch here), so
/// a full run takes ~15 s and every kill lands mid-run: during start-up and
/// login, while waiting for the limiter, with a request in flight, or while
/// a batch commits.
const RECORDS: usize = 1_400;
const DAYS: u32 = 70;
/// Kill delays after the start, in milliseconds.
const KILL_AFTER_MS: std::ops::Range<u64> = 60..1_400;

fn run_args(
    sim: &sync_sim::yclients::RunningYclientsSim,
    loc: &StoreLoc,
    force: bool,
) -> Vec<String> {
    let range = sim_range(sim);
    let mut a = loc.flags();
    a.extend(args(&[
        "--no-progress",
        "run",
        "--source",
        "yclients",
        "--from",
        &range.first.to_string(),
        "--to",
        &range.last.to_string(),
        "--batch-size",
        "1",
        "--preset",
        "aggressive",
    ]));
    if force {
        a.push("--force".into());
    }
    a
}

struct Outcome {
    kills: Vec<u64>,
    completed_runs: usize,
}

fn kill_and_resume(test: &str, loc: StoreLoc, rt: &tokio::runtime::Runtime) -> Outcome {
    let seed = seed(test);
    let mut rng = StdRng::seed_from_u64(seed);
    let sim = rt.block_on(yclients_sim(RECORDS, DAYS));
    let dir = tempfile::tempdir().unwrap();
    let env = yclients_env(&sim);
    let total_days = u64::try_from(sim_range(&sim).len()).unwrap();

    let mut kills: Vec<u64> = Vec::new();
    let mut completed_runs = 0usize;
    let mut attempt = 0usize;
    let mut complete = false;
    let started = Instant::now();
    while kills.len() < KILLS {
        attempt += 1;
        assert!(
            attempt <= 4 * KILLS,
            "{test}: too many runs ended before the kill"
        );
        // Once everything is covered, forced re-syncs keep the kills
        // landing mid-run (and re-commit stored batches: idempotence).
        let name = format!("run-{attempt}");
        let mut child = spawn(dir.path(), &name, &run_args(&sim, &loc, complete), &env);
        let delay = rng.gen_range(KILL_AFTER_MS);
        let killed = match wait_for(&mut child, Duration::from_millis(delay)) {
            Some(status) => {
                assert!(
                    status.success(),
                    "{test}: run {attempt} failed: {}",
                    child_text(dir.path(), &name)
                );
                completed_runs += 1;
                complete = true;
                false
            }
            None => {
                child.kill().expect("SIGKILL");
                child.wait().unwrap();
                kills.push(delay);
                true
            }
        };
        // The checkpoint is never ahead of the data, and no batch is half
        // stored.
        let covered = rt.block_on(async {
            let opened = loc.open().await;
            let n = assert_covered_exact(
                opened.store(),
                opened.checkpoints(),
                &sim,
                &format!("{test} after run {attempt} (kill at {delay} ms)"),
            )
            .await;
            opened.close().await;
            n
        });
        eprintln!(
            "{test}: run {attempt}: {} at {delay} ms, {covered}/{total_days} days covered",
            if killed {
                "killed"
            } else {
                "completed before the kill"
            }
        );
    }

    // Resume to the end.
    let o = run(dir.path(), &run_args(&sim, &loc, false), &env);
    assert!(o.status.success(), "{test}: final run: {}", text(&o));
    eprintln!(
        "{test}: {} kill points at {:?} ms, {completed_runs} runs completed before their kill, \
         {:.1} s",
        kills.len(),
        kills,
        started.elapsed().as_secs_f64()
    );

    rt.block_on(async {
        let opened = loc.open().await;
        let covered = assert_covered_exact(opened.store(), opened.checkpoints(), &sim, test).await;
        assert_eq!(covered, total_days, "{test}: 100% coverage");
        let stored =
            stored_by_id(opened.store(), &records_stream(), "record", sim_range(&sim)).await;
        assert_eq!(
            stored.len(),
            sim.records(COMPANY).len(),
            "{test}: every record once"
        );

        // Killed runs are marked abandoned by the next run; none is left in
        // progress; the last run completed.
        let runs = history(opened.checkpoints()).await;
        let failed = runs
            .iter()
            .filter(|r| r.status == RunStatus::Failed)
            .count();
        let completed = runs
            .iter()
            .filter(|r| r.status == RunStatus::Completed)
            .count();
        assert_eq!(
            failed + completed,
            runs.len(),
            "{test}: only failed (killed) and completed runs: {runs:#?}"
        );
        assert_eq!(completed, completed_runs + 1, "{test}: completed runs");
        // A kill before the run was recorded (during login) leaves no run.
        assert!(
            (1..=kills.len()).contains(&failed),
            "{test}: {failed} runs marked failed for {} kills",
            kills.len()
        );
        eprintln!("{test}: {failed} killed runs recorded and marked abandoned");
        for r in runs.iter().filter(|r| r.status == RunStatus::Failed) {
            assert!(
                r.errors.iter().any(|e| e.contains("abandoned")),
                "{test}: a killed run says why: {r:#?}"
            );
        }
        assert_eq!(runs.last().map(|r| r.status), Some(RunStatus::Completed));
        opened.close().await;
    });
    let stats = sim.stats();
    assert_eq!(stats.limit_breaches, 0, "{test}: {stats:?}");
    if let StoreLoc::Postgres(db) = &loc {
        rt.block_on(db.drop_db());
    }
    rt.block_on(sim.shutdown());
    Outcome {
        kills,
        completed_runs,
    }
}

#[test]
fn killed_runs_resume_exactly_sqlite() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let loc = StoreLoc::Sqlite(dir.path().join("sync.db"));
    let out = kill_and_resume("kill_resume_sqlite", loc, &rt);
    assert!(out.kills.len() >= KILLS);
    let _ = out.completed_runs;
}

#[test]
fn killed_runs_resume_exactly_postgres() {
    let rt = runtime();
    let loc = StoreLoc::Postgres(rt.block_on(PgDb::create()));
    let out = kill_and_resume("kill_resume_postgres", loc, &rt);
    assert!(out.kills.len() >= KILLS);
}
