//! `sync-cli serve` takes YClients webhooks as hints: changes made at the
//! simulator (which POSTs an event for each) reach the store through short
//! delta runs; a flood for one entity is one fetch; bad bodies, a wrong
//! secret and an unknown company get a 4xx and the server keeps serving.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::*;
use rand::{Rng, SeedableRng};
use sync_core::HintQueue;
use sync_sim::yclients::{DeliveryOptions, Resource, RunningYclientsSim};
use sync_store_sqlite::SqliteStore;

const SECRET: &str = "hook-secret-RELIAB-2b91";

/// Starts `sync-cli serve --port 0`; returns it and its address.
fn serve(dir: &std::path::Path, env: &[(String, String)]) -> (Child, String) {
    let mut child = command(dir, &args(&["--no-progress", "serve", "--port", "0"]), env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("serve starts");
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let first = lines.next().expect("serve prints its address").unwrap();
    let address = first
        .strip_prefix("serving on http://")
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .to_string();
    // Keep reading so the pipe never fills.
    std::thread::spawn(move || for _ in lines {});
    (child, address)
}

/// A record without the fields whose change alone is not a change (a
/// record touched that way keeps its stored payload).
fn without_volatile(v: &serde_json::Value) -> serde_json::Value {
    let mut v = v.clone();
    if let Some(o) = v.as_object_mut() {
        for field in sync_source_yclients::model::VOLATILE_FIELDS {
            o.remove(*field);
        }
    }
    v
}

/// Whether the stored records are the simulator's (volatile fields aside).
async fn store_matches(
    loc: &StoreLoc,
    sim: &RunningYclientsSim,
    range: sync_core::DayRange,
) -> bool {
    let opened = loc.open().await;
    let stored = stored_by_id(opened.store(), &records_stream(), "record", range).await;
    opened.close().await;
    let want = sim_records(sim);
    stored.len() == want.len()
        && want.iter().all(|(id, v)| {
            stored.get(id).is_some_and(|r| {
                without_volatile(&r.payload) == without_volatile(v)
                    && r.deleted == (v["deleted"] == serde_json::Value::Bool(true))
            })
        })
}

/// Waits until `done` holds, polling; false after `limit`.
async fn eventually<F, Fut>(limit: Duration, mut done: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while started.elapsed() < limit {
        if done().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread")]
async fn webhooks_are_hints_that_bring_the_store_up_to_date() {
    let sim = yclients_sim(600, 30).await;
    let dir = tempfile::tempdir().unwrap();
    let mut env = yclients_env(&sim);
    env.push(("SYNC_HOOKS_SECRET".into(), SECRET.into()));
    let range = sim_range(&sim);
    let (from, to) = (range.first.to_string(), range.last.to_string());
    let o = run(
        dir.path(),
        &args(&[
            "--no-progress",
            "run",
            "--source",
            "yclients-all",
            "--from",
            &from,
            "--to",
            &to,
        ]),
        &env,
    );
    assert!(o.status.success(), "{}", text(&o));
    let loc = StoreLoc::Sqlite(dir.path().join("data/sync.db"));

    let (mut server, address) = serve(dir.path(), &env);
    let hooks = format!("http://{address}/hooks/yclients");
    sim.set_webhook_url(Some(&format!("{hooks}?secret={SECRET}")))
        .unwrap();

    // Changes at the source: every change sends its event.
    let changed = sim.change_random(COMPANY, 0.05, 0.05, 11);
    assert!(!changed.records.is_empty() && !changed.clients.is_empty());
    assert!(sim.wait_for_webhooks(Duration::from_secs(20)).await);
    let hooks_seen = sim.webhook_stats();
    assert_eq!(hooks_seen.status(202), hooks_seen.queued, "{hooks_seen:?}");
    let caught_up = eventually(Duration::from_secs(60), || store_matches(&loc, &sim, range)).await;
    if !caught_up {
        let log = std::fs::read_to_string(dir.path().join("logs/sync.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(40).collect();
        panic!(
            "the store did not catch up with the changes; the log ends:\n{}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    let opened = loc.open().await;
    let runs_before_flood = history(opened.checkpoints()).await.len();
    opened.close().await;

    // A flood: 1,000 events for 50 records (20 each): short deltas of the
    // records stream, far fewer than 50 fetches.
    sim.reset_stats();
    sim.reset_webhook_stats();
    let flood = sim.flood_events(COMPANY, Resource::Record, 50, 1000);
    assert_eq!(flood.len(), 1000);
    sim.deliver_events(
        flood,
        DeliveryOptions {
            shuffle: true,
            duplicate_rate: 0.0,
            seed: 5,
        },
    );
    assert!(sim.wait_for_webhooks(Duration::from_secs(60)).await);
    assert_eq!(sim.webhook_stats().status(202), 1000);
    let settled = eventually(Duration::from_secs(30), || async {
        let store = SqliteStore::open(dir.path().join("data/sync.db"))
            .await
            .unwrap();
        let pending = store.pending_hints().await.unwrap();
        let runs = history(&store).await;
        store.close().await;
        pending.is_empty()
            && runs.len() > runs_before_flood
            && runs.iter().all(|r| r.finished_at.is_some())
    })
    .await;
    assert!(settled, "the flood's hints were not synced");
    let opened = loc.open().await;
    let runs = history(opened.checkpoints()).await;
    opened.close().await;
    let flood_runs = runs.len() - runs_before_flood;
    let requests = sim.stats().requests;
    eprintln!(
        "webhooks: 1,000 events for 50 records: {flood_runs} delta runs, {requests} requests at the simulator"
    );
    // Events keep coming while a delta runs, so a few passes are made; each
    // is a short delta, not a fetch per event.
    assert!(
        requests <= 50,
        "{requests} requests for 1,000 events of 50 entities"
    );
    assert!(
        store_matches(&loc, &sim, range).await,
        "the store is not exact after the flood"
    );

    // Bad and hostile bodies: a 4xx each, nothing kept, the server serves on.
    let http = reqwest::Client::new();
    let post = |url: String, body: &'static str| {
        let http = http.clone();
        async move {
            http.post(url)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    let good = r#"{"company_id": 101, "resource": "client", "resource_id": 1, "status": "update", "data": {}}"#;
    assert_eq!(post(hooks.clone(), good).await, 401, "no secret");
    assert_eq!(post(format!("{hooks}?secret=wrong"), good).await, 401);
    let with_secret = format!("{hooks}?secret={SECRET}");
    for body in [
        "not json",
        "[]",
        r#"{"company_id": 101}"#,
        r#"{"company_id": 101, "resource": "record", "resource_id": "x", "status": "update"}"#,
        r#"{"company_id": 101, "resource": "record", "resource_id": 5, "status": "drop"}"#,
    ] {
        assert_eq!(post(with_secret.clone(), body).await, 400, "{body}");
    }
    // 1,000 malformed bodies of many kinds: each a 4xx, nothing kept.
    let runs_before = {
        let opened = loc.open().await;
        let n = history(opened.checkpoints()).await.len();
        opened.close().await;
        n
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed("webhooks"));
    let valid = r#"{"company_id": 101, "resource": "record", "resource_id": 5, "status": "update", "data": {}}"#;
    let mut refused = 0;
    for i in 0..1000 {
        let body: String = match i % 5 {
            // Random bytes (as text, lossy).
            0 => (0..rng.gen_range(0..200))
                .map(|_| char::from(rng.gen_range(0u8..=255)))
                .collect(),
            // A valid event cut short.
            1 => valid[..rng.gen_range(0..valid.len() - 1)].to_string(),
            // Wrong types.
            2 => format!(
                r#"{{"company_id": {}, "resource": {}, "resource_id": 5, "status": "update"}}"#,
                ["null", "\"abc\"", "-1", "0", "1.5", "[]"][rng.gen_range(0..6)],
                ["\"record\"", "7", "null"][rng.gen_range(0..3)]
            ),
            // Bad ids and statuses.
            3 => format!(
                r#"{{"company_id": 101, "resource": "client", "resource_id": {}, "status": {}}}"#,
                ["-3", "0", "\"\"", "{}", "1e400"][rng.gen_range(0..5)],
                ["\"Update\"", "\"\"", "1"][rng.gen_range(0..3)]
            ),
            // Not an object.
            _ => ["[]", "\"x\"", "42", "null", "true"][rng.gen_range(0..5)].to_string(),
        };
        let status = http
            .post(with_secret.clone())
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
        assert!((400..500).contains(&status), "{status} for {body:?}");
        refused += 1;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let store = SqliteStore::open(dir.path().join("data/sync.db"))
        .await
        .unwrap();
    assert!(
        store.pending_hints().await.unwrap().is_empty(),
        "a malformed body left a hint"
    );
    assert_eq!(
        history(&store).await.len(),
        runs_before,
        "a malformed body caused a run"
    );
    store.close().await;
    assert!(store_matches(&loc, &sim, range).await);
    eprintln!("webhooks: {refused} malformed bodies, each answered 4xx; nothing kept, no run");
    let other = r#"{"company_id": 999, "resource": "record", "resource_id": 5, "status": "update", "data": {}}"#;
    assert_eq!(post(with_secret.clone(), other).await, 422);
    let huge: &'static str = Box::leak("x".repeat(1 << 20).into_boxed_str());
    assert_eq!(post(with_secret.clone(), huge).await, 413);
    assert_eq!(post(with_secret.clone(), good).await, 202, "still serving");

    let _ = server.kill();
    let _ = server.wait();
    let log = std::fs::read_to_string(dir.path().join("logs/sync.log")).unwrap_or_default();
    assert!(!log.contains(SECRET), "the webhook secret reached the log");
    assert!(log.contains("webhook refused"), "refusals are logged");
    sim.shutdown().await;
}
