//! The dashboard (`sync-cli serve`) over a store filled by the real binary:
//! `sync-cli demo`, then two runs against the YClients simulator with
//! edits at the source in between. Checked over HTTP (HTML and JSON), and
//! in a headless Chromium driven through WebDriver (chromedriver), which
//! also watches the live view while a slow run is going.
//!
//! The browser test needs `chromium` and `chromium-driver` (Debian
//! packages; `scripts/test.sh` installs them). Without chromedriver it
//! fails when `CI` is set and is skipped, saying so, when it is not.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;
use sync_sim::yclients::{Latency, RunningYclientsSim, SimLimits, YclientsSim, YclientsSimConfig};
use tempfile::TempDir;

/// Days of the demo and of the runs against the simulator (the same
/// thirty days: the simulator's last ones).
const DAYS: u32 = 30;

/// `sync-cli serve` on a free port, killed on drop.
struct Server {
    child: Child,
    base: String,
}

impl Server {
    /// Starts the dashboard on `store` and reads its address from the first
    /// line it prints.
    fn start(dir: &Path, store: &Path) -> Self {
        let mut child = command(
            dir,
            &args(&[
                "--sqlite",
                &store.display().to_string(),
                "serve",
                "--port",
                "0",
            ]),
            &[],
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("sync-cli serve starts");
        let stdout = child.stdout.take().expect("stdout piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(first)) = lines.next() {
                let _ = tx.send(first);
            }
            // Keep reading so the server never blocks on a full pipe.
            for _ in lines {}
        });
        let first = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                panic!("sync-cli serve printed no address in 30 s");
            }
        };
        let base = first
            .strip_prefix("serving on ")
            .unwrap_or_else(|| panic!("first line is not the address: {first:?}"))
            .to_string();
        assert!(base.starts_with("http://127.0.0.1:"), "{base}");
        Self { child, base }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A store after the demo and two synced runs with edits in between; the
/// id of the run that saw the edits.
struct Filled {
    dir: TempDir,
    store: PathBuf,
    edited_run: String,
}

fn yclients_run(dir: &Path, store: &Path, sim: &RunningYclientsSim) {
    let range = sim_range(sim);
    let a = args(&[
        "--no-progress",
        "--sqlite",
        &store.display().to_string(),
        "run",
        "--source",
        "yclients",
        "--from",
        &range.first.to_string(),
        "--to",
        &range.last.to_string(),
        // The days are covered already (by the demo, by the run before).
        "--force",
    ]);
    let o = run(dir, &a, &yclients_env(sim));
    assert!(o.status.success(), "sync-cli run: {}", text(&o));
}

fn filled(rt: &tokio::runtime::Runtime) -> Filled {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("data/sync.db");
    let o = run(
        dir.path(),
        &args(&[
            "--no-progress",
            "--sqlite",
            &store.display().to_string(),
            "demo",
            "--days",
            &DAYS.to_string(),
        ]),
        &[],
    );
    assert!(o.status.success(), "sync-cli demo: {}", text(&o));
    // The demo's YClients records stream again, from a simulator the test
    // controls: a first run, edits at the source, a second run.
    let sim = rt.block_on(yclients_sim(1_500, DAYS));
    yclients_run(dir.path(), &store, &sim);
    let changed = sim.change_random(COMPANY, 0.2, 0.0, 11);
    assert!(!changed.records.is_empty());
    yclients_run(dir.path(), &store, &sim);
    let edited_run = rt.block_on(async {
        let opened = StoreLoc::Sqlite(store.clone()).open().await;
        let newest = history(opened.checkpoints()).await.pop().expect("a run");
        assert!(newest.counts.updated > 0, "{newest:?}");
        opened.close().await;
        newest.id.0
    });
    rt.block_on(sim.shutdown());
    Filled {
        dir,
        store,
        edited_run,
    }
}

async fn get(url: &str) -> (u16, String) {
    let r = reqwest::get(url)
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    let status = r.status().as_u16();
    (status, r.text().await.unwrap())
}

async fn get_json(url: &str) -> (u16, Value) {
    let (status, body) = get(url).await;
    let v = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{url}: {e}: {body}"));
    (status, v)
}

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

/// The cells of the calendar (not its legend) in state `state`.
fn cells(html: &str, state: &str) -> usize {
    html.matches(&format!("<a class=\"day {state}\"")).count()
}

#[test]
fn pages_and_api_show_coverage_runs_and_changes() {
    let rt = runtime();
    let f = filled(&rt);
    let server = Server::start(f.dir.path(), &f.store);
    rt.block_on(async {
        // Overview: every stream complete.
        let (status, html) = get(&server.url("/")).await;
        assert_eq!(status, 200, "{html}");
        let (_, streams) = get_json(&server.url("/api/streams")).await;
        let streams = streams.as_array().expect("a list").clone();
        assert!(streams.len() >= 3, "{streams:?}");
        for s in &streams {
            assert_eq!(s["percent_text"], "100.0%", "{s}");
            assert_eq!(s["gaps"], 0, "{s}");
            let row = format!("<tr data-stream=\"{}\">", s["id"].as_str().unwrap());
            let at = html.find(&row).unwrap_or_else(|| panic!("{row} in {html}"));
            let end = html[at..].find("</tr>").unwrap() + at;
            assert!(
                html[at..end].contains("<span class=\"pct\">100.0%</span>"),
                "{}",
                &html[at..end]
            );
        }

        // Calendar of the records stream: the thirty days, none missing,
        // counts in the titles.
        let records = records_stream().to_string();
        let (status, html) =
            get(&server.url(&format!("/streams/{}/calendar?year=2025", enc(&records)))).await;
        assert_eq!(status, 200, "{html}");
        assert_eq!(cells(&html, "missing"), 0, "{html}");
        assert_eq!(
            cells(&html, "stored") + cells(&html, "recent"),
            DAYS as usize
        );
        assert!(html.contains("records stored, fetched"), "{html}");
        let (_, cal) = get_json(&server.url(&format!(
            "/api/streams/{}/calendar?year=2025",
            enc(&records)
        )))
        .await;
        assert_eq!(cal["missing_days"], 0, "{cal}");
        assert_eq!(cal["stored_days"], DAYS, "{cal}");
        assert!(cal["records"].as_u64().unwrap() > 0, "{cal}");

        // A day: its records, as many as its count.
        let (_, day) =
            get_json(&server.url(&format!("/api/streams/{}/days/2025-06-30", enc(&records)))).await;
        assert!(day["count"].as_u64().unwrap() > 0, "{day}");
        assert!(!day["records"].as_array().unwrap().is_empty(), "{day}");

        // Runs: the history lists the edited run; its page lists field
        // changes, old and new.
        let (status, html) = get(&server.url("/runs")).await;
        assert_eq!(status, 200);
        assert!(html.contains(&f.edited_run), "{html}");
        let (status, html) = get(&server.url(&format!("/runs/{}", enc(&f.edited_run)))).await;
        assert_eq!(status, 200, "{html}");
        assert!(html.contains("class=\"updated field-change\""), "{html}");
        assert!(html.contains("<td class=\"old\">"), "{html}");
        let (_, run) = get_json(&server.url(&format!("/api/runs/{}", enc(&f.edited_run)))).await;
        let changes = run["changes"].as_array().unwrap();
        let field = changes
            .iter()
            .filter(|c| c["kind"] == "updated")
            .flat_map(|c| c["fields"].as_array().unwrap().iter())
            .next()
            .unwrap_or_else(|| panic!("a field change: {run}"));
        assert_ne!(field["old"], field["new"], "{field}");
        assert!(run["run"]["updated"].as_u64().unwrap() > 0);

        // Nothing in progress now.
        let (status, live) = get_json(&server.url("/api/live")).await;
        assert_eq!(status, 200);
        assert_eq!(live["runs"].as_array().unwrap().len(), 0, "{live}");

        // Bad parameters: 400 / 404 pages, JSON errors under /api.
        for (path, want) in [
            ("/runs?page=-1".to_string(), 400),
            ("/runs?page=abc".to_string(), 400),
            ("/runs?page=0".to_string(), 400),
            (format!("/streams/{}/calendar?year=abc", enc(&records)), 400),
            (format!("/streams/{}/days/2025-13-01", enc(&records)), 400),
            ("/streams/no-slash/calendar".to_string(), 400),
            ("/streams/nobody%2Fnothing/calendar".to_string(), 404),
            ("/runs/no-such-run".to_string(), 404),
            ("/no/such/page".to_string(), 404),
        ] {
            let (status, html) = get(&server.url(&path)).await;
            assert_eq!(status, want, "{path}: {html}");
            assert!(html.contains("<h1>"), "{path}: an HTML page: {html}");
        }
        for (path, want) in [
            ("/api/runs?page=-1", 400),
            ("/api/streams/x%2Fy/calendar?year=abc", 400),
            ("/api/runs/no-such-run", 404),
            ("/api/nothing", 404),
        ] {
            let (status, body) = get_json(&server.url(path)).await;
            assert_eq!(status, want, "{path}: {body}");
            assert!(body["error"].is_string(), "{path}: {body}");
        }
    });
}

// ------------------------------------------------------------ the browser

/// chromedriver on a free port, killed on drop.
struct Driver {
    child: Child,
    url: String,
    _profile: TempDir,
    profile_dir: PathBuf,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// chromedriver, or why there is none.
fn chromedriver() -> Result<Driver, String> {
    let bin = std::env::var_os("CHROMEDRIVER")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|p| p.join("chromedriver"))
                    .find(|p| p.is_file())
            })
        })
        .ok_or("chromedriver is not installed (apt-get install chromium chromium-driver)")?;
    let port = free_port();
    let child = std::process::Command::new(&bin)
        .arg(format!("--port={port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
    let profile = tempfile::tempdir().unwrap();
    let profile_dir = profile.path().to_path_buf();
    let mut driver = Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
        _profile: profile,
        profile_dir,
    };
    let until = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > until {
            let _ = driver.child.kill();
            return Err("chromedriver did not listen within 20 s".into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(driver)
}

async fn browser(driver: &Driver) -> fantoccini::Client {
    let mut caps = serde_json::Map::new();
    let mut chrome = serde_json::json!({
        "args": [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1400,1000",
            format!("--user-data-dir={}", driver.profile_dir.display()),
        ]
    });
    if Path::new("/usr/bin/chromium").exists() {
        chrome["binary"] = "/usr/bin/chromium".into();
    }
    caps.insert("goog:chromeOptions".into(), chrome);
    // Two crypto providers are linked in (ring for reqwest, aws-lc-rs for
    // the WebDriver client's defaults): name one.
    let _ = rustls::crypto::ring::default_provider().install_default();
    fantoccini::ClientBuilder::rustls()
        .expect("TLS for the WebDriver client")
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a Chromium session")
}

fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let dir = target.join("dashboard-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn screenshot(c: &fantoccini::Client, name: &str) {
    let png = c.screenshot().await.expect("screenshot");
    let path = screenshot_dir().join(format!("{name}.png"));
    std::fs::write(&path, png).unwrap();
    eprintln!("screenshot: {}", path.display());
}

async fn texts(c: &fantoccini::Client, css: &str) -> Vec<String> {
    // Read in one script: the live view replaces its rows every second, so
    // element handles kept between calls go stale.
    let v = c
        .execute(
            "return Array.from(document.querySelectorAll(arguments[0])).map(e => e.textContent)",
            vec![css.into()],
        )
        .await
        .expect("querySelectorAll");
    serde_json::from_value(v).expect("a list of texts")
}

/// A YClients simulator slow enough that a run takes half a minute: every
/// answer waits, and the CLI holds the documented 5 requests a second.
async fn slow_sim() -> RunningYclientsSim {
    YclientsSim::start(YclientsSimConfig {
        seed: 5,
        clients: 60,
        records: 3_000,
        days: 120,
        partner_token: PARTNER.into(),
        password: PASSWORD.into(),
        user_token: USER_TOKEN.into(),
        limits: SimLimits::new(Some(20), Some(1200)),
        latency: Latency::fixed_ms(150),
        ..YclientsSimConfig::default()
    })
    .await
    .expect("simulator starts")
}

#[test]
fn a_browser_sees_coverage_changes_and_live_progress() {
    let driver = match chromedriver() {
        Ok(d) => d,
        Err(why) if std::env::var_os("CI").is_some() => {
            panic!("CI is set and the browser test cannot run: {why}")
        }
        Err(why) => {
            eprintln!("SKIPPED a_browser_sees_coverage_changes_and_live_progress: {why}");
            return;
        }
    };
    let rt = runtime();
    let f = filled(&rt);
    let server = Server::start(f.dir.path(), &f.store);
    rt.block_on(async {
        let c = browser(&driver).await;

        // Overview: each stream at 100.0%.
        c.goto(&server.url("/")).await.unwrap();
        let pcts = texts(&c, "#streams tr[data-stream] .pct").await;
        assert!(pcts.len() >= 3, "{pcts:?}");
        assert!(pcts.iter().all(|p| p == "100.0%"), "{pcts:?}");
        screenshot(&c, "overview").await;

        // Follow the records stream's calendar link: no missing cell.
        let records = records_stream().to_string();
        let link = c
            .find(fantoccini::Locator::Css(&format!(
                "tr[data-stream=\"{records}\"] a[href*=\"calendar\"]"
            )))
            .await
            .expect("a calendar link");
        link.click().await.unwrap();
        let stored = c
            .find_all(fantoccini::Locator::Css("a.day.stored, a.day.recent"))
            .await
            .unwrap();
        assert_eq!(stored.len(), DAYS as usize);
        let missing = c
            .find_all(fantoccini::Locator::Css("a.day.missing"))
            .await
            .unwrap();
        assert!(missing.is_empty(), "{} missing cells", missing.len());
        let title = stored[0].attr("title").await.unwrap().unwrap_or_default();
        assert!(title.contains("records stored"), "{title}");
        screenshot(&c, "calendar").await;

        // The edited run: its field changes, old -> new.
        c.goto(&server.url(&format!("/runs/{}", enc(&f.edited_run))))
            .await
            .unwrap();
        let old = texts(&c, "tr.field-change td.old").await;
        let new = texts(&c, "tr.field-change td.new").await;
        assert!(!old.is_empty(), "field changes listed");
        assert_eq!(old.len(), new.len());
        assert!(old.iter().zip(&new).any(|(o, n)| o != n), "{old:?} {new:?}");
        screenshot(&c, "run").await;

        // Live: a slow run on a store of its own; the numbers move.
        let sim = slow_sim().await;
        let live_dir = tempfile::tempdir().unwrap();
        let live_store = live_dir.path().join("live.db");
        let range = sim_range(&sim);
        let mut slow = spawn(
            live_dir.path(),
            "slow-run",
            &args(&[
                "--no-progress",
                "--sqlite",
                &live_store.display().to_string(),
                "run",
                "--source",
                "yclients",
                "--from",
                &range.first.to_string(),
                "--to",
                &range.last.to_string(),
                "--batch-size",
                "1",
            ]),
            &yclients_env(&sim),
        );
        // The store file exists once the run has begun.
        let until = Instant::now() + Duration::from_secs(30);
        while !live_store.exists() && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let live_server = Server::start(live_dir.path(), &live_store);
        c.goto(&live_server.url("/live")).await.unwrap();
        let first = wait_for_requests(&c, 0, Duration::from_secs(30)).await;
        let later = wait_for_requests(&c, first, Duration::from_secs(30)).await;
        assert!(later > first, "requests {first} then {later}");
        let rate = texts(&c, "#live tbody tr td.rate").await;
        assert!(!rate.is_empty() && rate[0].ends_with("/s"), "{rate:?}");
        screenshot(&c, "live").await;
        let _ = slow.kill();
        let _ = slow.wait();
        let still_running = child_text(live_dir.path(), "slow-run");
        eprintln!("slow run (killed): {still_running}");
        drop(live_server);
        sim.shutdown().await;
        c.close().await.unwrap();
    });
}

/// Waits until the live view shows more than `above` requests in all (the
/// page's own polling updates it), and returns the number shown.
async fn wait_for_requests(c: &fantoccini::Client, above: u64, limit: Duration) -> u64 {
    let until = Instant::now() + limit;
    loop {
        let shown = texts(c, "#live-total-requests").await.concat();
        let rows = texts(c, "#live tbody tr[data-run]").await;
        let n: u64 = shown.trim().parse().unwrap_or(0);
        if n > above && !rows.is_empty() {
            return n;
        }
        assert!(
            Instant::now() < until,
            "the live view stayed at {shown:?} requests (rows {rows:?})"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
