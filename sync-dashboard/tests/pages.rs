//! The dashboard over an in-memory store whose every text is markup: each
//! page escapes it; bad parameters are refused; the router answers while a
//! store is busy elsewhere.

use std::sync::Arc;

use chrono::{NaiveDate, Utc};
use serde_json::json;
use sync_core::{
    BatchCommit, CheckpointStore, Coverage, MemoryStore, Record, RunId, RunReport, RunStatus, Span,
    Store, StreamId, SyncMode, Unit,
};
use sync_dashboard::Dashboard;

const EVIL: &str = "<script>alert(1)</script>";
const IMG: &str = "<img src=x onerror=alert(2)>";

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

async fn filled() -> (Arc<MemoryStore>, StreamId, String) {
    let store = Arc::new(MemoryStore::new());
    let stream = StreamId::new(format!("src{EVIL}"), "records");
    let day = NaiveDate::from_ymd_opt(2025, 3, 4).unwrap();
    let mut covered = Coverage::default();
    covered.days.insert(Span::single(day));
    for (id, comment) in [("run-1", "first"), ("run-2", IMG)] {
        let mut run = RunReport::start(
            RunId(id.into()),
            stream.clone(),
            SyncMode::Full,
            format!("target {EVIL}"),
            Utc::now(),
        );
        store.begin_run(&run).await.unwrap();
        let records = [Record::new(
            "record",
            format!("7{EVIL}"),
            Unit::Day(day),
            json!({ "comment": comment, "name": EVIL }),
        )];
        store
            .commit(BatchCommit {
                run: &run.id,
                stream: &stream,
                records: &records,
                covered: &covered,
                progress: Default::default(),
                claim: None,
                finishes_batch: true,
            })
            .await
            .unwrap();
        run.status = RunStatus::Partial;
        run.errors = vec![format!("bad batch {EVIL}")];
        run.finished_at = Some(Utc::now());
        store.finish_run(&run).await.unwrap();
    }
    (store, stream, "run-2".into())
}

async fn serve(store: Arc<MemoryStore>) -> String {
    let d = Dashboard::new(store.clone(), store).with_store_label(format!("label {EVIL}"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(sync_dashboard::serve(
        listener,
        d.router(),
        std::future::pending(),
    ));
    base
}

async fn get(url: &str) -> (u16, String) {
    let r = reqwest::get(url).await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test]
async fn every_page_escapes_what_the_store_holds() {
    let (store, stream, run) = filled().await;
    let base = serve(store).await;
    let s = enc(&stream.to_string());
    let pages = [
        "/".to_string(),
        "/runs".into(),
        format!("/runs/{run}"),
        format!("/streams/{s}/calendar?year=2025"),
        format!("/streams/{s}/days/2025-03-04"),
        "/live".into(),
    ];
    for page in &pages {
        let (status, html) = get(&format!("{base}{page}")).await;
        assert_eq!(status, 200, "{page}: {html}");
        assert!(!html.contains(EVIL), "{page} holds raw markup: {html}");
        assert!(!html.contains("<img"), "{page} holds raw markup: {html}");
    }
    // The escaped text is there, and the field change old -> new.
    let (_, html) = get(&format!("{base}/runs/{run}")).await;
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{html}"
    );
    assert!(html.contains("<td class=\"path\">/comment</td>"), "{html}");
    assert!(html.contains("bad batch &lt;script&gt;"), "{html}");
    // The JSON API gives the texts as they are.
    let (status, body) = get(&format!("{base}/api/runs/{run}")).await;
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["changes"][0]["fields"][0]["new"], IMG, "{v}");
    assert_eq!(v["run"]["status"], "partial");
}

#[tokio::test]
async fn bad_parameters_are_400_and_unknown_names_404() {
    let (store, stream, _) = filled().await;
    let base = serve(store).await;
    let s = enc(&stream.to_string());
    for (path, want) in [
        ("/runs?page=-1".to_string(), 400),
        ("/runs?page=1&page=x".to_string(), 200),
        ("/runs?page=99999999999999999999".to_string(), 400),
        (format!("/streams/{s}/calendar?year=abc"), 400),
        (format!("/streams/{s}/calendar?year=1066"), 400),
        (format!("/streams/{s}/days/yesterday"), 400),
        (format!("/streams/{s}/days/2025-03-04?page=0"), 400),
        ("/streams/a%2Fb/calendar".to_string(), 404),
        ("/runs/nope".to_string(), 404),
        ("/api/runs/nope?page=2".to_string(), 404),
        ("/api/runs?page=abc".to_string(), 400),
        ("/api".to_string(), 404),
    ] {
        let (status, body) = get(&format!("{base}{path}")).await;
        assert_eq!(status, want, "{path}: {body}");
        if path.starts_with("/api") {
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            assert!(v["error"].is_string(), "{path}: {body}");
        } else {
            assert!(body.contains("<h1>"), "{path}: {body}");
        }
    }
}
