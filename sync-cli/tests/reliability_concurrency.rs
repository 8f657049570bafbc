//! Two `sync-cli run` processes started at once on the same target: exactly
//! one runs, the other exits with code 5 naming the run in progress; the
//! data and the checkpoint stay exact. Three rounds per store (the later
//! ones forced, so that both processes have work), SQLite and Postgres.

mod common;

use std::time::{Duration, Instant};

use sync_core::RunStatus;

use common::*;

const ROUNDS: usize = 3;

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

/// The run id in a run summary line (`<stream>: run <id> <status> — ...`).
fn run_id(output: &str) -> Option<String> {
    output.lines().find_map(|l| {
        let rest = l.split_once(": run ")?.1;
        rest.split_whitespace().next().map(str::to_string)
    })
}

fn two_at_once(test: &str, loc: StoreLoc, rt: &tokio::runtime::Runtime) {
    // ~20 one-day batches at the CLI's 5 requests a second: a run lasts a
    // few seconds, far longer than the two starts are apart.
    let sim = rt.block_on(yclients_sim(400, 20));
    let dir = tempfile::tempdir().unwrap();
    let env = yclients_env(&sim);
    let started = Instant::now();
    // Refusals that did not name the run in progress (checked at the end,
    // after the data of every round).
    let mut unnamed = Vec::new();
    for round in 1..=ROUNDS {
        let force = round > 1;
        let (a, b) = (format!("r{round}a"), format!("r{round}b"));
        let mut first = spawn(dir.path(), &a, &run_args(&sim, &loc, force), &env);
        let mut second = spawn(dir.path(), &b, &run_args(&sim, &loc, force), &env);
        let sa = wait_for(&mut first, Duration::from_secs(60)).expect("run ends");
        let sb = wait_for(&mut second, Duration::from_secs(60)).expect("run ends");
        let (ta, tb) = (child_text(dir.path(), &a), child_text(dir.path(), &b));
        let (winner, loser) = match (sa.code(), sb.code()) {
            (Some(0), Some(5)) => (ta, tb),
            (Some(5), Some(0)) => (tb, ta),
            other => panic!(
                "{test} round {round}: expected one success and one exit 5, got {other:?}\n--- a:\n{ta}\n--- b:\n{tb}"
            ),
        };
        let holder = run_id(&winner).unwrap_or_else(|| panic!("no run id in {winner}"));
        assert_eq!(loser.matches("error:").count(), 1, "{loser}");
        assert!(loser.contains("busy"), "{loser}");
        if !(loser.contains("in progress") && loser.contains(&holder)) {
            unnamed.push(format!(
                "round {round}: run {holder} held the lease; the other said {loser:?}"
            ));
        }
        assert!(!loser.contains("panicked"), "{loser}");
        eprintln!(
            "{test} round {round}: {holder} ran; the other said: {}",
            loser.lines().find(|l| l.contains("error:")).unwrap_or("")
        );

        rt.block_on(async {
            let opened = loc.open().await;
            let covered =
                assert_covered_exact(opened.store(), opened.checkpoints(), &sim, test).await;
            assert_eq!(covered, sim_range(&sim).len() as u64, "{test}: complete");
            let runs = history(opened.checkpoints()).await;
            assert_eq!(
                runs.len(),
                round,
                "{test}: the refused run is not recorded: {runs:#?}"
            );
            assert!(
                runs.iter().all(|r| r.status == RunStatus::Completed),
                "{runs:#?}"
            );
            let last = runs.last().unwrap();
            assert_eq!(last.id.0, holder);
            let c = last.counts;
            if force {
                // Everything re-read, nothing rewritten: no double write.
                assert_eq!((c.created, c.updated, c.deleted), (0, 0, 0), "{c:?}");
            } else {
                assert_eq!(c.created as usize, sim.records(COMPANY).len(), "{c:?}");
            }
            opened.close().await;
        });
    }
    eprintln!(
        "{test}: {ROUNDS} rounds in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(sim.stats().limit_breaches, 0);
    if let StoreLoc::Postgres(db) = &loc {
        rt.block_on(db.drop_db());
    }
    assert!(
        unnamed.is_empty(),
        "{test}: the refused run must say which run is in progress:\n{}",
        unnamed.join("\n")
    );
}

#[test]
fn second_run_is_refused_while_one_runs_sqlite() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    two_at_once(
        "concurrency_sqlite",
        StoreLoc::Sqlite(dir.path().join("sync.db")),
        &rt,
    );
}

#[test]
fn second_run_is_refused_while_one_runs_postgres() {
    let rt = runtime();
    let loc = StoreLoc::Postgres(rt.block_on(PgDb::create()));
    two_at_once("concurrency_postgres", loc, &rt);
}
