//! Secrets stay secret: after runs with credentials (YClients partner token,
//! password, user tokens; the kennel password; a database password), failed
//! runs with wrong passwords, and `config`, `status`, `history`, `verify`
//! and `plan`, no secret appears in `logs/`, in any output or error message,
//! or in the database (every file of the SQLite store; every row of every
//! Postgres table, as text).

mod common;

use std::path::Path;

use sqlx::{Connection, Row};
use sync_sim::booking::{BookingSim, BookingSimConfig, RunningBookingSim};
use sync_sim::yclients::RunningYclientsSim;

use common::*;

const KENNEL_PASSWORD: &str = "kennel-pass-RELIAB-4410";
const ENV_USER_TOKEN: &str = "env-user-tok-RELIAB-6b1f";
const WRONG_YC: &str = "wrong-yc-RELIAB-0001";
const WRONG_KENNEL: &str = "wrong-kennel-RELIAB-0002";
const DB_PASSWORD: &str = "pgpass-RELIAB-8c2d";

const SECRETS: [&str; 7] = [
    PARTNER,
    PASSWORD,
    USER_TOKEN,
    KENNEL_PASSWORD,
    ENV_USER_TOKEN,
    WRONG_YC,
    WRONG_KENNEL,
];

fn all_secrets() -> Vec<&'static str> {
    let mut s = SECRETS.to_vec();
    s.push(DB_PASSWORD);
    s
}

/// Panics naming the secret and where it was found.
fn assert_clean(place: &str, bytes: &[u8]) {
    for s in all_secrets() {
        let found = bytes.windows(s.len()).any(|w| w == s.as_bytes());
        assert!(!found, "secret {s:?} found in {place}");
    }
}

/// Every file under `dir`, checked.
fn assert_files_clean(dir: &Path, what: &str) -> usize {
    let mut n = 0;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            n += assert_files_clean(&p, what);
        } else {
            assert_clean(
                &format!("{what} {}", p.display()),
                &std::fs::read(&p).unwrap(),
            );
            n += 1;
        }
    }
    n
}

struct Sims {
    yclients: RunningYclientsSim,
    kennel: RunningBookingSim,
}

fn env_all(s: &Sims, yc_password: &str, kennel_password: &str) -> Vec<(String, String)> {
    let mut env = yclients_env(&s.yclients);
    for (k, v) in env.iter_mut() {
        if k == "YCLIENTS_PASSWORD" {
            *v = yc_password.to_string();
        }
    }
    env.push(("YCLIENTS_USER_TOKEN".into(), ENV_USER_TOKEN.into()));
    env.push(("KENNEL_BASE_URL".into(), s.kennel.base_url()));
    env.push((
        "KENNEL_USERNAME".into(),
        BookingSimConfig::default().username,
    ));
    env.push(("KENNEL_PASSWORD".into(), kennel_password.into()));
    env.push(("KENNEL_TZ".into(), s.kennel.tz().to_string()));
    env
}

fn secrets_stay_secret(test: &str, loc: &StoreLoc, rt: &tokio::runtime::Runtime) {
    let sims = rt.block_on(async {
        Sims {
            yclients: yclients_sim(200, 10).await,
            kennel: BookingSim::start(BookingSimConfig {
                days: 7,
                password: KENNEL_PASSWORD.into(),
                ..BookingSimConfig::default()
            })
            .await
            .unwrap(),
        }
    });
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("sync.toml"),
        "[kennel]\nmin_spacing_ms = 2\nper_minute = 0\n",
    )
    .unwrap();
    let good = env_all(&sims, PASSWORD, KENNEL_PASSWORD);
    let bad = env_all(&sims, WRONG_YC, WRONG_KENNEL);
    let yr = sim_range(&sims.yclients);
    let (yf, yt) = (yr.first.to_string(), yr.last.to_string());
    let kf = BookingSimConfig::default().start;
    let (kf, kt) = (kf.to_string(), (kf + chrono::Days::new(6)).to_string());

    let with_store = |a: &[&str]| {
        let mut v = loc.flags();
        v.extend(args(a));
        v
    };
    let yc = |cmd: &str| with_store(&[cmd, "--source", "yclients", "--from", &yf, "--to", &yt]);
    let kennel = |cmd: &str| with_store(&[cmd, "--source", "kennel", "--from", &kf, "--to", &kt]);
    let mut run_yc = yc("run");
    run_yc.insert(0, "--no-progress".into());
    let mut run_kennel = kennel("run");
    run_kennel.insert(0, "--no-progress".into());
    let mut forced_yc = run_yc.clone();
    forced_yc.push("--force".into());
    let mut forced_kennel = run_kennel.clone();
    forced_kennel.push("--force".into());

    // (what, arguments, environment, expected exit code)
    type Step<'a> = (&'a str, Vec<String>, &'a Vec<(String, String)>, i32);
    let steps: Vec<Step<'_>> = vec![
        ("yclients run", run_yc.clone(), &good, 0),
        ("kennel run", run_kennel.clone(), &good, 0),
        ("yclients run, wrong password", forced_yc, &bad, 3),
        ("kennel run, wrong password", forced_kennel, &bad, 3),
        ("config", with_store(&["config"]), &good, 0),
        ("yclients status", yc("status"), &good, 0),
        ("kennel status", kennel("status"), &good, 0),
        ("history", with_store(&["history"]), &good, 0),
        ("yclients verify", yc("verify"), &good, 0),
        ("yclients plan", yc("plan"), &good, 0),
        (
            "unreachable database with a password",
            args(&[
                "status",
                "--source",
                "yclients",
                "--from",
                &yf,
                "--database-url",
                &format!("postgres://sync:{DB_PASSWORD}@127.0.0.1:9/sync"),
            ]),
            &good,
            1,
        ),
    ];
    let mut outputs = 0;
    for (what, a, env, code) in &steps {
        let o = run(dir.path(), a, env);
        let out = text(&o);
        assert_eq!(o.status.code(), Some(*code), "{test}: {what}: {out}");
        assert!(!out.contains("panicked"), "{test}: {what}: {out}");
        assert_clean(&format!("{test}: output of {what}"), out.as_bytes());
        outputs += 1;
    }
    // `history show` of every run.
    let o = run(
        dir.path(),
        &with_store(&["history", "--limit", "100"]),
        &good,
    );
    let ids: Vec<String> = text(&o)
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .filter(|id| id.contains('T'))
        .collect();
    assert!(ids.len() >= 2, "{test}: runs listed: {}", text(&o));
    for id in &ids {
        let o = run(dir.path(), &with_store(&["history", "show", id]), &good);
        assert!(
            o.status.success(),
            "{test}: history show {id}: {}",
            text(&o)
        );
        assert_clean(&format!("{test}: history show {id}"), &o.stdout);
        assert_clean(&format!("{test}: history show {id}"), &o.stderr);
        outputs += 1;
    }

    // The log and every file the CLI wrote (SQLite database, WAL, leases).
    let log = std::fs::read_to_string(dir.path().join("logs/sync.log")).unwrap();
    assert!(
        log.lines().count() > 5,
        "{test}: the log was written: {log}"
    );
    // Checked last, so that every secret check runs first.
    let failures_logged = log.contains("login rejected") || log.contains("authentication failed");
    let files = assert_files_clean(dir.path(), test);
    if let StoreLoc::Sqlite(p) = loc {
        assert!(
            dir.path().join(p).exists(),
            "{test}: the database was searched"
        );
    }

    // Postgres: every row of every table, as text.
    let mut rows_searched = 0u64;
    if let StoreLoc::Postgres(db) = loc {
        rows_searched = rt.block_on(async {
            let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
            let tables: Vec<String> = sqlx::query_scalar(
                "SELECT table_name::text FROM information_schema.tables \
                 WHERE table_schema = 'public'",
            )
            .fetch_all(&mut conn)
            .await
            .unwrap();
            assert!(tables.len() >= 3, "{tables:?}");
            let mut n = 0u64;
            for t in tables {
                let rows = sqlx::query(&format!("SELECT t::text AS row FROM \"{t}\" t"))
                    .fetch_all(&mut conn)
                    .await
                    .unwrap();
                for r in rows {
                    let row: String = r.get("row");
                    assert_clean(&format!("{test}: Postgres table {t}"), row.as_bytes());
                    n += 1;
                }
            }
            n
        });
        assert!(rows_searched > 100, "{test}: the data is there to search");
    }
    eprintln!(
        "{test}: {} secrets searched in {outputs} command outputs, {files} files (log, database, \
         WAL, leases) and {rows_searched} Postgres rows: none found",
        all_secrets().len()
    );
    if let StoreLoc::Postgres(db) = loc {
        rt.block_on(db.drop_db());
    }
    // The failed runs must be in the log too (so that the search above
    // covered their error messages).
    assert!(
        failures_logged,
        "{test}: the failed runs' errors are not in logs/sync.log:\n{log}"
    );
}

#[test]
fn no_secret_in_logs_outputs_or_sqlite() {
    let rt = runtime();
    // Relative to the CLI's folder, so that the file search covers it.
    let loc = StoreLoc::Sqlite("data/sync.db".into());
    secrets_stay_secret("secrets_sqlite", &loc, &rt);
}

#[test]
fn no_secret_in_logs_outputs_or_postgres() {
    let rt = runtime();
    let mut db = rt.block_on(PgDb::create());
    // A password in the URL (the throwaway server trusts local users, so it
    // is accepted and ignored): it must never be shown either.
    let mut url = url::Url::parse(&db.url).unwrap();
    url.set_password(Some(DB_PASSWORD)).unwrap();
    db.url = url.to_string();
    secrets_stay_secret("secrets_postgres", &StoreLoc::Postgres(db), &rt);
}
