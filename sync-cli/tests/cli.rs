//! End-to-end tests of the `sync-cli` binary against the simulators.

use std::path::Path;
use std::process::Output;

use assert_cmd::Command;
use sync_sim::booking::{BookingSim, BookingSimConfig};
use sync_sim::yclients::{SimLimits, YclientsSim, YclientsSimConfig};

const PARTNER: &str = "partner-token-7f3a91";
const PASSWORD: &str = "pa55-w0rd-secret";

/// Runs the binary in `dir` with `env`, off the async runtime.
async fn cli(dir: &Path, args: &[&str], env: &[(&str, String)]) -> Output {
    let dir = dir.to_path_buf();
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    tokio::task::spawn_blocking(move || {
        let mut cmd = Command::cargo_bin("sync-cli").expect("binary built");
        cmd.current_dir(&dir)
            .args(&args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default());
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().expect("binary runs")
    })
    .await
    .expect("join")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

async fn yclients_sim() -> sync_sim::yclients::RunningYclientsSim {
    YclientsSim::start(YclientsSimConfig {
        clients: 200,
        records: 3_000,
        partner_token: PARTNER.into(),
        password: PASSWORD.into(),
        limits: SimLimits::new(Some(20), Some(1200)),
        ..YclientsSimConfig::default()
    })
    .await
    .expect("simulator starts")
}

fn yclients_env(sim: &sync_sim::yclients::RunningYclientsSim) -> Vec<(&'static str, String)> {
    let c = sim.config();
    vec![
        ("YCLIENTS_BASE_URL", sim.base_url()),
        ("YCLIENTS_PARTNER_TOKEN", PARTNER.to_string()),
        ("YCLIENTS_LOGIN", c.login.clone()),
        ("YCLIENTS_PASSWORD", PASSWORD.to_string()),
        ("YCLIENTS_COMPANY_ID", c.companies[0].to_string()),
        ("YCLIENTS_TZ", c.tz.to_string()),
    ]
}

/// Every log line is a JSON object with a timestamp and a level, and no
/// secret appears anywhere in the log.
fn check_log(dir: &Path, secrets: &[&str]) -> usize {
    let log = std::fs::read_to_string(dir.join("logs/sync.log")).expect("log file written");
    let mut n = 0;
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(
            v.get("timestamp").is_some() && v.get("level").is_some(),
            "{line}"
        );
        n += 1;
    }
    for s in secrets {
        assert!(!log.contains(s), "secret {s:?} found in the log");
    }
    n
}

#[tokio::test(flavor = "multi_thread")]
async fn yclients_run_status_history_verify_config_plan() {
    let sim = yclients_sim().await;
    let dir = tempfile::tempdir().unwrap();
    let env = yclients_env(&sim);
    let last = sim.config().end_date;
    let first = last - chrono::Days::new(29);
    let (from, to) = (first.to_string(), last.to_string());

    // A partial run first (max 2 batches of 7 days), then a resumed one.
    let o = cli(
        dir.path(),
        &[
            "--no-progress",
            "run",
            "--source",
            "yclients",
            "--from",
            &from,
            "--to",
            &to,
            "--batch-size",
            "7",
            "--max-batches",
            "2",
            "--preset",
            "aggressive",
        ],
        &env,
    )
    .await;
    // Stopped by --max-batches with days left: partial (exit 4).
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    assert!(text(&o).contains("partial"), "{}", text(&o));
    let o = cli(
        dir.path(),
        &[
            "status", "--source", "yclients", "--from", &from, "--to", &to,
        ],
        &env,
    )
    .await;
    assert!(
        text(&o).contains("Historical sync: 46.6% complete (14/30 days)"),
        "{}",
        text(&o)
    );
    assert!(
        text(&o).contains('.') && text(&o).contains('#'),
        "calendar shows both"
    );

    let o = cli(
        dir.path(),
        &[
            "--no-progress",
            "run",
            "--source",
            "yclients",
            "--from",
            &from,
            "--to",
            &to,
            "--batch-size",
            "7",
        ],
        &env,
    )
    .await;
    assert!(o.status.success(), "{}", text(&o));
    let o = cli(
        dir.path(),
        &[
            "status", "--source", "yclients", "--from", &from, "--to", &to,
        ],
        &env,
    )
    .await;
    assert!(
        text(&o).contains("100.0% complete (30/30 days)"),
        "{}",
        text(&o)
    );
    assert!(text(&o).contains("No gaps."));

    // Per-day counts equal the simulator's.
    let o = cli(
        dir.path(),
        &[
            "verify", "--source", "yclients", "--from", &from, "--to", &to,
        ],
        &env,
    )
    .await;
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("30 days checked, 0 differ"),
        "{}",
        text(&o)
    );

    // Change records at the source: a forced re-sync records what changed.
    let changed = sim.change_random(sim.config().companies[0], 0.2, 0.0, 7);
    assert!(!changed.records.is_empty());
    let o = cli(
        dir.path(),
        &[
            "--no-progress",
            "run",
            "--source",
            "yclients",
            "--from",
            &from,
            "--to",
            &to,
            "--batch-size",
            "30",
            "--force",
        ],
        &env,
    )
    .await;
    assert!(o.status.success(), "{}", text(&o));
    let o = cli(dir.path(), &["history"], &env).await;
    let history = text(&o);
    assert!(history.contains("completed"), "{history}");
    let newest = history
        .lines()
        .nth(1)
        .and_then(|l| l.split_whitespace().next())
        .expect("a run")
        .to_string();
    let o = cli(dir.path(), &["history", "show", &newest], &env).await;
    let detail = text(&o);
    assert!(detail.contains("updated record"), "{detail}");
    assert!(detail.contains(" -> "), "field changes listed: {detail}");

    // Config shows settings with secrets masked.
    let o = cli(dir.path(), &["config"], &env).await;
    let shown = text(&o);
    assert!(o.status.success(), "{shown}");
    assert!(shown.contains("*** (set)"), "{shown}");
    assert!(
        !shown.contains(PASSWORD) && !shown.contains(PARTNER),
        "{shown}"
    );

    // Plan from given counts: 900 clients, 20000 records.
    let o = cli(
        dir.path(),
        &[
            "plan",
            "--source",
            "yclients",
            "--records",
            "20000",
            "--from",
            &from,
            "--to",
            &to,
        ],
        &env,
    )
    .await;
    let plan = text(&o);
    assert!(o.status.success(), "{plan}");
    for word in [
        "aggressive",
        "balanced",
        "conservative",
        "night",
        "Recommended preset",
    ] {
        assert!(plan.contains(word), "{word} missing: {plan}");
    }
    // The plan prices the run: the range is stored, nothing is left to do.
    assert!(plan.contains("; 0 requests"), "{plan}");

    // A year before it is not: 20,000 records over 365 days fill pages of
    // 200 in windows sized by density, about a hundred requests.
    let year_before = (first - chrono::Days::new(365)).to_string();
    let before_first = (first - chrono::Days::new(1)).to_string();
    let o = cli(
        dir.path(),
        &[
            "plan",
            "--source",
            "yclients",
            "--records",
            "20000",
            "--from",
            &year_before,
            "--to",
            &before_first,
        ],
        &env,
    )
    .await;
    let plan = text(&o);
    assert!(o.status.success(), "{plan}");
    let requests: u64 = plan
        .split("; ")
        .nth(1)
        .and_then(|t| t.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no request count in {plan}"));
    assert!((100..=160).contains(&requests), "{requests}: {plan}");

    assert!(check_log(dir.path(), &[PARTNER, PASSWORD]) > 10);
    let stats = sim.stats();
    assert_eq!(stats.limit_breaches, 0);
    assert_eq!(stats.responses_429, 0);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn kennel_run_and_status() {
    let sim = BookingSim::start(BookingSimConfig {
        days: 28,
        ..BookingSimConfig::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let c = BookingSimConfig::default();
    let env = vec![
        ("KENNEL_BASE_URL", sim.base_url()),
        ("KENNEL_USERNAME", c.username.clone()),
        ("KENNEL_PASSWORD", c.password.clone()),
        ("KENNEL_TZ", sim.tz().to_string()),
    ];
    std::fs::write(
        dir.path().join("sync.toml"),
        "[kennel]\nmin_spacing_ms = 2\nper_minute = 0\n",
    )
    .unwrap();
    let (from, to) = (
        c.start.to_string(),
        (c.start + chrono::Days::new(27)).to_string(),
    );
    let o = cli(
        dir.path(),
        &[
            "--no-progress",
            "run",
            "--source",
            "kennel",
            "--from",
            &from,
            "--to",
            &to,
            "--batch-size",
            "7",
        ],
        &env,
    )
    .await;
    assert!(o.status.success(), "{}", text(&o));
    let o = cli(
        dir.path(),
        &["status", "--source", "kennel", "--from", &from, "--to", &to],
        &env,
    )
    .await;
    assert!(
        text(&o).contains("100.0% complete (28/28 days)"),
        "{}",
        text(&o)
    );
    // Wrong password: authentication failure exit code, nothing written.
    let mut bad = env.clone();
    bad[2].1 = "wrong-password".into();
    let o = cli(
        dir.path(),
        &[
            "--no-progress",
            "run",
            "--source",
            "kennel",
            "--from",
            &from,
            "--to",
            &to,
            "--force",
        ],
        &bad,
    )
    .await;
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(text(&o).contains("login"), "{}", text(&o));
    assert!(!text(&o).contains("wrong-password"));
    check_log(dir.path(), &[&c.password, "wrong-password"]);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn demo_completes_and_ends_with_status() {
    let dir = tempfile::tempdir().unwrap();
    let o = cli(dir.path(), &["--no-progress", "demo", "--days", "21"], &[]).await;
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert_eq!(
        out.matches("Historical sync: 100.0% complete (21/21 days)")
            .count(),
        2,
        "{out}"
    );
    assert!(out.contains("0 over its limits, 0 answered 429"), "{out}");
    assert!(dir.path().join("data/sync.db").exists());
    check_log(dir.path(), &[]);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_gives_one_clear_message_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let env = vec![
        ("YCLIENTS_PARTNER_TOKEN", PARTNER.to_string()),
        ("YCLIENTS_USER_TOKEN", "user-token-x".to_string()),
        ("YCLIENTS_COMPANY_ID", "101".to_string()),
        // Nothing listens here: a source that cannot be reached.
        ("YCLIENTS_BASE_URL", "http://127.0.0.1:9/api/v1".to_string()),
    ];
    let run = |extra: &[&str]| {
        let mut v = vec!["--no-progress", "run", "--source", "yclients"];
        v.extend_from_slice(extra);
        v.into_iter().map(String::from).collect::<Vec<_>>()
    };
    // (arguments, environment, exit code, text the message must contain)
    type Case<'a> = (Vec<String>, Vec<(&'a str, String)>, i32, &'a str);
    let cases: Vec<Case<'_>> = vec![
        (
            run(&["--from", "2024-09-01", "--preset", "turbo"]),
            env.clone(),
            2,
            "unknown pace preset \"turbo\"",
        ),
        (
            run(&["--from", "2024-09-10", "--to", "2024-09-01"]),
            env.clone(),
            2,
            "date range is inverted",
        ),
        (
            run(&["--from", "2024-02-30"]),
            env.clone(),
            2,
            "--from \"2024-02-30\" is not a date",
        ),
        (
            run(&["--from", "2024-09-01"]),
            env[1..].to_vec(),
            2,
            "YCLIENTS_PARTNER_TOKEN",
        ),
        (
            run(&["--from", "2024-09-01", "--interval", "soon"]),
            env.clone(),
            2,
            "--interval",
        ),
        (
            run(&["--from", "2024-09-01"]),
            env.clone(),
            1,
            "127.0.0.1:9",
        ),
        (
            vec![
                "status".into(),
                "--source".into(),
                "yclients".into(),
                "--from".into(),
                "2024-09-01".into(),
                "--database-url".into(),
                "postgres://sync:hunter2@127.0.0.1:9/sync".into(),
            ],
            env.clone(),
            1,
            "postgres://sync:***@127.0.0.1:9/sync",
        ),
    ];
    for (args, env, code, needle) in cases {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = cli(dir.path(), &refs, &env).await;
        let out = text(&o);
        assert_eq!(o.status.code(), Some(code), "{args:?}: {out}");
        assert!(
            out.contains(needle),
            "{args:?}: expected {needle:?} in {out}"
        );
        assert_eq!(
            out.lines().filter(|l| l.starts_with("error:")).count(),
            1,
            "one message: {out}"
        );
        assert!(!out.contains("hunter2") && !out.contains(PARTNER), "{out}");
        // The store is opened before the source is asked (a busy or
        // store-less run sends nothing), so an unreachable API finds the
        // database made; every other case fails before that.
        if needle == "127.0.0.1:9" {
            std::fs::remove_dir_all(dir.path().join("data")).unwrap();
        } else {
            assert!(
                !dir.path().join("data").exists(),
                "{args:?} wrote a database"
            );
        }
    }
    let o = cli(dir.path(), &["config", "apply", "night"], &[]).await;
    assert!(o.status.success(), "{}", text(&o));
    let written = std::fs::read_to_string(dir.path().join("sync.toml")).unwrap();
    assert!(written.contains("preset = \"night\""), "{written}");
    std::fs::write(
        dir.path().join("sync.toml"),
        "[kennel]\npassword = \"hunter2\"\n",
    )
    .unwrap();
    let o = cli(dir.path(), &["config"], &[]).await;
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o).contains("must not be written in the config file"),
        "{}",
        text(&o)
    );
    assert!(!text(&o).contains("hunter2"));
}

#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_keeps_finished_batches_and_records_the_run_as_cancelled() {
    let sim = yclients_sim().await;
    // Every answer takes 150 ms, so the run is still going when Ctrl-C comes.
    sim.set_faults(sync_sim::yclients::Faults {
        slow_rate: 1.0,
        slow_delay: std::time::Duration::from_millis(150),
        ..Default::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let env = yclients_env(&sim);
    let last = sim.config().end_date;
    let first = last - chrono::Days::new(59);
    let (from, to) = (first.to_string(), last.to_string());
    let args = [
        "--no-progress",
        "run",
        "--source",
        "yclients",
        "--from",
        &from,
        "--to",
        &to,
        "--batch-size",
        "1",
        "--preset",
        "aggressive",
    ];

    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sync-cli"));
    child.current_dir(dir.path()).args(args).env_clear();
    for (k, v) in &env {
        child.env(k, v);
    }
    let child = child
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let interrupted = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", text(&out));
    assert!(text(&out).contains("cancelled"), "{}", text(&out));

    let o = cli(dir.path(), &["history"], &env).await;
    assert!(text(&o).contains("cancelled"), "{}", text(&o));
    let o = cli(
        dir.path(),
        &[
            "status", "--source", "yclients", "--from", &from, "--to", &to,
        ],
        &env,
    )
    .await;
    let status = text(&o);
    let covered: u64 = status
        .split(" complete (")
        .nth(1)
        .and_then(|s| s.split('/').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no coverage line: {status}"));
    assert!(
        covered > 0 && covered < 60,
        "some days stored, not all: {status}"
    );

    // The next run does only the rest.
    sim.set_faults(sync_sim::yclients::Faults::default());
    let o = cli(dir.path(), &args, &env).await;
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains(&format!("{} batches stored", 60 - covered)),
        "{}",
        text(&o)
    );
    let o = cli(
        dir.path(),
        &[
            "verify", "--source", "yclients", "--from", &from, "--to", &to,
        ],
        &env,
    )
    .await;
    assert!(
        text(&o).contains("60 days checked, 0 differ"),
        "{}",
        text(&o)
    );
    sim.shutdown().await;
}
