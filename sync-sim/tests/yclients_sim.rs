//! Tests of the YClients simulator against the reference, with a plain HTTP
//! client (no adapter types).

use std::collections::BTreeSet;
use std::time::Duration;

use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use sync_sim::yclients::{
    ChangeDuringSync, Faults, Latency, LimitScope, RetryAfter, RunningYclientsSim, SimLimits,
    WindowPeaks, YclientsSim, YclientsSimConfig,
};

const ACCEPT: &str = "application/vnd.yclients.v2+json";
const COMPANY: u64 = 101;

fn small(limits: SimLimits) -> YclientsSimConfig {
    YclientsSimConfig {
        clients: 120,
        records: 1500,
        days: 120,
        limits,
        ..YclientsSimConfig::default()
    }
}

fn auth_header(sim: &RunningYclientsSim, user: Option<&str>) -> String {
    let partner = &sim.config().partner_token;
    match user {
        Some(u) => format!("Bearer {partner}, User {u}"),
        None => format!("Bearer {partner}"),
    }
}

async fn get(
    sim: &RunningYclientsSim,
    path: &str,
    query: &[(&str, String)],
) -> (StatusCode, Value) {
    let resp = Client::new()
        .get(format!("{}{path}", sim.base_url()))
        .query(query)
        .header("Accept", ACCEPT)
        .header(
            "Authorization",
            auth_header(sim, Some(&sim.current_user_token())),
        )
        .send()
        .await
        .unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn post(sim: &RunningYclientsSim, path: &str, body: Value) -> (StatusCode, Value) {
    let resp = Client::new()
        .post(format!("{}{path}", sim.base_url()))
        .header("Accept", ACCEPT)
        .header(
            "Authorization",
            auth_header(sim, Some(&sim.current_user_token())),
        )
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn auth_and_access_rules() {
    let sim = YclientsSim::start(small(SimLimits::UNLIMITED))
        .await
        .unwrap();
    let http = Client::new();
    let cfg = sim.config().clone();
    let login = |partner: &str, password: &str| {
        http.post(format!("{}/auth", sim.base_url()))
            .header("Accept", ACCEPT)
            .header("Authorization", format!("Bearer {partner}"))
            .json(&json!({"login": cfg.login, "password": password}))
            .send()
    };
    let ok = login(&cfg.partner_token, &cfg.password).await.unwrap();
    assert_eq!(ok.status(), StatusCode::CREATED);
    let body: Value = ok.json().await.unwrap();
    assert_eq!(body["success"], json!(true));
    assert_eq!(body["data"]["user_token"], json!(cfg.user_token));

    let wrong_password = login(&cfg.partner_token, "nope").await.unwrap();
    assert_eq!(wrong_password.status(), StatusCode::UNAUTHORIZED);
    let body: Value = wrong_password.json().await.unwrap();
    assert_eq!(body["success"], json!(false));
    assert!(body["meta"]["message"].as_str().unwrap().contains("login"));
    let wrong_partner = login("other", &cfg.password).await.unwrap();
    assert_eq!(wrong_partner.status(), StatusCode::UNAUTHORIZED);

    // Company data needs the user token too.
    let records = format!("{}/records/{COMPANY}", sim.base_url());
    let partner_only = http
        .get(&records)
        .header("Accept", ACCEPT)
        .header("Authorization", auth_header(&sim, None))
        .send()
        .await
        .unwrap();
    assert_eq!(partner_only.status(), StatusCode::UNAUTHORIZED);
    let no_accept = http
        .get(&records)
        .header("Authorization", auth_header(&sim, Some(&cfg.user_token)))
        .send()
        .await
        .unwrap();
    assert_eq!(no_accept.status(), StatusCode::BAD_REQUEST);
    let (status, body) = get(&sim, "/records/999", &[]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["data"], Value::Null);

    let stats = sim.stats();
    assert_eq!(stats.logins, 1);
    assert_eq!(stats.responses_401, 3);
    assert_eq!(stats.endpoint("auth"), 3);
    assert_eq!(stats.requests, 6);
}

#[tokio::test]
async fn clients_search_pages_and_projects_fields() {
    let sim = YclientsSim::start(small(SimLimits::UNLIMITED))
        .await
        .unwrap();
    let path = format!("/company/{COMPANY}/clients/search");
    let mut seen = Vec::new();
    for page in 1.. {
        let (status, body) = post(
            &sim,
            &path,
            json!({"page": page, "page_size": 50, "fields": ["id", "name", "phone", "last_change_date"],
                   "order_by": "id", "order_by_direction": "asc"}),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["meta"]["total_count"], json!(120));
        let data = body["data"].as_array().unwrap().clone();
        if data.is_empty() {
            break;
        }
        seen.extend(data);
    }
    assert_eq!(seen.len(), 120);
    let snapshot = sim.clients(COMPANY);
    for (got, full) in seen.iter().zip(&snapshot) {
        assert_eq!(got["id"], full["id"]);
        assert_eq!(got["phone"], full["phone"]);
        assert!(got.get("surname").is_none(), "only the asked fields");
    }
    // Without fields, only ids (as older docs say).
    let (_, body) = post(&sim, &path, json!({"page": 1, "page_size": 5})).await;
    assert_eq!(body["data"][0].as_object().unwrap().len(), 1);
    // Too big a page is a validation error.
    let (status, body) = post(&sim, &path, json!({"page": 1, "page_size": 201})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body["meta"]["errors"]["page_size"].is_array());
    // Lenient types are really there.
    assert!(snapshot.iter().any(|c| c["phone"].is_number()));
    assert!(snapshot.iter().any(|c| c["birth_date"] == json!(0)));
    assert!(snapshot.iter().any(|c| c.get("email").is_none()));
}

#[tokio::test]
async fn records_page_by_date_with_and_without_deleted() {
    let sim = YclientsSim::start(small(SimLimits::UNLIMITED))
        .await
        .unwrap();
    let first = sim.config().first_day();
    let last = first + chrono::Duration::days(59);
    let fetch_all = |with_deleted: bool| {
        let sim = &sim;
        async move {
            let mut all = Vec::new();
            for page in 1.. {
                let mut q = vec![
                    ("start_date", first.to_string()),
                    ("end_date", last.to_string()),
                    ("page", page.to_string()),
                    ("count", "200".to_string()),
                ];
                if with_deleted {
                    q.push(("with_deleted", "1".into()));
                }
                let (status, body) = get(sim, &format!("/records/{COMPANY}"), &q).await;
                assert_eq!(status, StatusCode::OK);
                assert_eq!(body["meta"]["page"], json!(page));
                let total = body["meta"]["total_count"].as_u64().unwrap() as usize;
                all.extend(body["data"].as_array().unwrap().clone());
                if all.len() >= total {
                    break;
                }
            }
            all
        }
    };
    let in_range = |r: &&Value| {
        let day = &r["date"].as_str().unwrap()[..10];
        day >= first.to_string().as_str() && day <= last.to_string().as_str()
    };
    let snapshot = sim.records(COMPANY);
    let expected_all: Vec<Value> = snapshot.iter().filter(in_range).cloned().collect();
    let expected_live: Vec<Value> = expected_all
        .iter()
        .filter(|r| r["deleted"] == json!(false))
        .cloned()
        .collect();
    assert!(
        expected_all.len() > expected_live.len(),
        "some records are deleted"
    );
    assert_eq!(fetch_all(true).await, expected_all);
    assert_eq!(fetch_all(false).await, expected_live);

    let (status, body) = get(
        &sim,
        &format!("/records/{COMPANY}"),
        &[("count", "201".into())],
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body["meta"]["errors"]["count"].is_array());
    let (status, _) = get(
        &sim,
        &format!("/records/{COMPANY}"),
        &[("start_date", "01.02.2025".into())],
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn changed_after_returns_exactly_the_changes() {
    let sim = YclientsSim::start(small(SimLimits::UNLIMITED))
        .await
        .unwrap();
    let since = chrono::Utc::now() - chrono::Duration::seconds(1);
    let changed = sim.change_random(COMPANY, 0.02, 0.05, 7);
    assert_eq!(changed.records.len(), 30);
    assert_eq!(changed.clients.len(), 6);
    let moscow = since.with_timezone(&chrono_tz::Europe::Moscow);
    let q = vec![
        (
            "changed_after",
            moscow.format("%Y-%m-%dT%H:%M:%S%:z").to_string(),
        ),
        ("with_deleted", "1".to_string()),
        ("count", "200".to_string()),
    ];
    let (status, body) = get(&sim, &format!("/records/{COMPANY}"), &q).await;
    assert_eq!(status, StatusCode::OK);
    let mut ids: Vec<i64> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, changed.records);
    // The same instant without an offset is read in the company's zone.
    let naive = vec![
        (
            "changed_after",
            moscow.format("%Y-%m-%dT%H:%M:%S").to_string(),
        ),
        ("with_deleted", "1".into()),
        ("count", "200".into()),
    ];
    let (_, body) = get(&sim, &format!("/records/{COMPANY}"), &naive).await;
    assert_eq!(body["meta"]["total_count"], json!(30));
    // The deprecated clients list filters by change too.
    let (status, body) = get(&sim, &format!("/clients/{COMPANY}"), &q[..1]).await;
    assert_eq!(status, StatusCode::OK);
    let ids: Vec<i64> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, changed.clients);
}

#[tokio::test]
async fn visit_history_pages_by_date_cursor() {
    let sim = YclientsSim::start(YclientsSimConfig {
        clients: 3,
        records: 400,
        ..small(SimLimits::UNLIMITED)
    })
    .await
    .unwrap();
    let client = sim.clients(COMPANY)[0]["id"].as_i64().unwrap();
    let expected: BTreeSet<i64> = sim
        .records(COMPANY)
        .iter()
        .filter(|r| r["client"]["id"] == json!(client) && r["deleted"] == json!(false))
        .map(|r| r["id"].as_i64().unwrap())
        .collect();
    assert!(expected.len() > 50, "several pages");
    let path = format!("/company/{COMPANY}/clients/visits/search");
    let mut body = json!({"client_id": client, "client_phone": null, "from": null, "to": null,
                          "payment_statuses": [], "attendance": null});
    let mut got = BTreeSet::new();
    let mut pages = 0;
    loop {
        let (status, resp) = post(&sim, &path, body.clone()).await;
        assert_eq!(status, StatusCode::OK);
        pages += 1;
        for r in resp["data"]["records"].as_array().unwrap() {
            assert!(got.insert(r["id"].as_i64().unwrap()), "no record twice");
        }
        let cursor = &resp["meta"]["dateCursor"];
        if cursor.is_null() {
            break;
        }
        body["from"] = cursor["from"].clone();
        body["to"] = cursor["to"].clone();
    }
    assert_eq!(got, expected);
    assert!(pages >= expected.len() / 26);
}

#[tokio::test]
async fn limits_are_enforced_counted_and_can_say_retry_after() {
    let limits = SimLimits {
        per_second: Some(3),
        per_minute: Some(5),
        retry_after: RetryAfter::Always,
        ..SimLimits::DOCUMENTED
    };
    let sim = YclientsSim::start(small(limits)).await.unwrap();
    let mut statuses = Vec::new();
    let mut retry_after = Vec::new();
    for _ in 0..4 {
        let resp = Client::new()
            .get(format!("{}/records/{COMPANY}", sim.base_url()))
            .header("Accept", ACCEPT)
            .header(
                "Authorization",
                auth_header(&sim, Some(&sim.current_user_token())),
            )
            .send()
            .await
            .unwrap();
        statuses.push(resp.status().as_u16());
        retry_after.push(
            resp.headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_string()),
        );
    }
    assert_eq!(statuses, [200, 200, 200, 429]);
    assert_eq!(retry_after[3].as_deref(), Some("1"));
    tokio::time::sleep(Duration::from_millis(1050)).await;
    let mut later = Vec::new();
    for _ in 0..3 {
        later.push(
            get(&sim, &format!("/records/{COMPANY}"), &[])
                .await
                .0
                .as_u16(),
        );
    }
    // Two more fit the minute window (5), the third does not.
    assert_eq!(later, [200, 200, 429]);
    let stats = sim.stats();
    assert_eq!(stats.limit_breaches, 2);
    assert_eq!(
        (stats.breaches_per_second, stats.breaches_per_minute),
        (1, 1)
    );
    assert_eq!(stats.responses_429, 2);
    assert_eq!(stats.requests, 7);

    // Without Retry-After by default.
    sim.set_limits(SimLimits::new(Some(1), None));
    let _ = get(&sim, &format!("/records/{COMPANY}"), &[]).await;
    let resp = Client::new()
        .get(format!("{}/records/{COMPANY}", sim.base_url()))
        .header("Accept", ACCEPT)
        .header(
            "Authorization",
            auth_header(&sim, Some(&sim.current_user_token())),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(resp.headers().get("retry-after").is_none());
}

#[tokio::test]
async fn injected_faults() {
    let sim = YclientsSim::start(small(SimLimits::UNLIMITED))
        .await
        .unwrap();
    let path = format!("/records/{COMPANY}");

    sim.set_faults(Faults {
        error_5xx_rate: 1.0,
        ..Faults::default()
    });
    let (status, _) = get(&sim, &path, &[]).await;
    assert!(status.is_server_error());

    sim.set_faults(Faults {
        truncated_rate: 1.0,
        ..Faults::default()
    });
    let resp = Client::new()
        .get(format!("{}{path}", sim.base_url()))
        .header("Accept", ACCEPT)
        .header(
            "Authorization",
            auth_header(&sim, Some(&sim.current_user_token())),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let text = resp.text().await.unwrap();
    let err = serde_json::from_str::<Value>(&text).unwrap_err();
    assert!(err.is_eof(), "cut short, not garbled: {err}");

    sim.set_faults(Faults {
        slow_rate: 1.0,
        slow_delay: Duration::from_millis(300),
        ..Faults::default()
    });
    let t = std::time::Instant::now();
    let (status, _) = get(&sim, &path, &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(t.elapsed() >= Duration::from_millis(300));

    sim.set_faults(Faults {
        random_429_rate: 1.0,
        ..Faults::default()
    });
    let (status, _) = get(&sim, &path, &[]).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);

    let stats = sim.stats();
    assert_eq!(
        (
            stats.responses_5xx,
            stats.truncated,
            stats.responses_429,
            stats.limit_breaches
        ),
        (1, 1, 1, 0)
    );
}

#[tokio::test]
async fn token_revocation_and_relogin() {
    let sim = YclientsSim::start(YclientsSimConfig {
        faults: Faults {
            revoke_token_after_requests: Some(2),
            ..Faults::default()
        },
        ..small(SimLimits::UNLIMITED)
    })
    .await
    .unwrap();
    let old = sim.current_user_token();
    let path = format!("/records/{COMPANY}");
    let auth = auth_header(&sim, Some(&old));
    let call = |auth: String| {
        Client::new()
            .get(format!("{}{path}", sim.base_url()))
            .header("Accept", ACCEPT)
            .header("Authorization", auth)
            .send()
    };
    assert_eq!(call(auth.clone()).await.unwrap().status(), StatusCode::OK);
    assert_eq!(call(auth.clone()).await.unwrap().status(), StatusCode::OK);
    assert_eq!(
        call(auth.clone()).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    let new = sim.current_user_token();
    assert_ne!(new, old);
    let relogin: Value = Client::new()
        .post(format!("{}/auth", sim.base_url()))
        .header("Accept", ACCEPT)
        .header("Authorization", auth_header(&sim, None))
        .json(&json!({"login": sim.config().login, "password": sim.config().password}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(relogin["data"]["user_token"], json!(new));
    assert_eq!(
        call(auth_header(&sim, Some(&new))).await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(call(auth).await.unwrap().status(), StatusCode::UNAUTHORIZED);

    sim.revoke_user_token();
    assert_ne!(sim.current_user_token(), new);
}

#[tokio::test]
async fn data_is_seeded_and_can_change_during_a_sync() {
    let a = YclientsSim::start(small(SimLimits::UNLIMITED))
        .await
        .unwrap();
    let b = YclientsSim::start(small(SimLimits::UNLIMITED))
        .await
        .unwrap();
    assert_eq!(a.records(COMPANY), b.records(COMPANY));
    assert_eq!(a.clients(COMPANY), b.clients(COMPANY));
    let c = YclientsSim::start(YclientsSimConfig {
        seed: 7,
        ..small(SimLimits::UNLIMITED)
    })
    .await
    .unwrap();
    assert_ne!(a.records(COMPANY), c.records(COMPANY));
    assert!(a.records(999).is_empty());

    b.set_faults(Faults {
        change_during_sync: Some(ChangeDuringSync {
            every_requests: 2,
            fraction: 0.01,
        }),
        ..Faults::default()
    });
    let before = b.records(COMPANY);
    let _ = get(&b, &format!("/records/{COMPANY}"), &[]).await;
    assert_eq!(b.records(COMPANY), before, "not yet");
    let _ = get(&b, &format!("/records/{COMPANY}"), &[]).await;
    let after = b.records(COMPANY);
    let changed = before.iter().zip(&after).filter(|(x, y)| x != y).count();
    assert_eq!(changed, 15);
    a.shutdown().await;
}

#[tokio::test]
async fn huge_page_numbers_give_empty_pages() {
    let sim = YclientsSim::start(small(SimLimits::UNLIMITED))
        .await
        .unwrap();
    let huge = u64::MAX.to_string();
    for path in [format!("/records/{COMPANY}"), format!("/clients/{COMPANY}")] {
        let (status, body) = get(
            &sim,
            &path,
            &[("page", huge.clone()), ("count", "200".into())],
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(body["data"], json!([]));
        assert!(body["meta"]["total_count"].as_u64().unwrap() > 0);
        let (status, body) = get(&sim, &path, &[("page", format!("{huge}0"))]).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{path}");
        assert!(body["meta"]["errors"]["page"].is_array());
    }
    let search = format!("/company/{COMPANY}/clients/search");
    let (status, body) = post(
        &sim,
        &search,
        json!({"page": u64::MAX, "page_size": 200, "fields": ["id"]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"], json!([]));
    assert_eq!(body["meta"]["total_count"], json!(120));
    // Still serving.
    let (status, _) = post(&sim, &search, json!({"page": 1})).await;
    assert_eq!(status, StatusCode::OK);
}

async fn status_of(sim: &RunningYclientsSim, path: &str, auth: &str) -> (StatusCode, Duration) {
    let t = std::time::Instant::now();
    let resp = Client::new()
        .get(format!("{}{path}", sim.base_url()))
        .header("Accept", ACCEPT)
        .header("Authorization", auth)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let _ = resp.bytes().await;
    (status, t.elapsed())
}

#[tokio::test]
async fn latency_delays_every_answer() {
    let sim = YclientsSim::start(YclientsSimConfig {
        latency: Latency::fixed_ms(250),
        ..small(SimLimits::UNLIMITED)
    })
    .await
    .unwrap();
    let user = auth_header(&sim, Some(&sim.current_user_token()));
    let partner = auth_header(&sim, None);
    let records = format!("/records/{COMPANY}");
    // Answers, refusals and unknown paths all wait.
    for (path, auth, want) in [
        (records.as_str(), user.as_str(), StatusCode::OK),
        (records.as_str(), partner.as_str(), StatusCode::UNAUTHORIZED),
        ("/records/999", user.as_str(), StatusCode::FORBIDDEN),
        ("/no/such/path", user.as_str(), StatusCode::NOT_FOUND),
    ] {
        let (status, took) = status_of(&sim, path, auth).await;
        assert_eq!(status, want, "{path}");
        assert!(took >= Duration::from_millis(250), "{path} took {took:?}");
    }

    // Uniform: every wait in the range, not all the same.
    sim.set_latency(Latency::uniform_ms(40, 160));
    let mut took = Vec::new();
    for _ in 0..12 {
        let (status, t) = status_of(&sim, &records, &user).await;
        assert_eq!(status, StatusCode::OK);
        took.push(t);
    }
    assert!(
        took.iter().all(|t| *t >= Duration::from_millis(40)),
        "{took:?}"
    );
    assert!(
        took.iter().all(|t| *t < Duration::from_millis(160 + 400)),
        "{took:?}"
    );
    let spread = *took.iter().max().unwrap() - *took.iter().min().unwrap();
    assert!(
        spread >= Duration::from_millis(10),
        "drawn, not fixed: {took:?}"
    );

    sim.set_latency(Latency::None);
    let (_, t) = status_of(&sim, &records, &user).await;
    assert!(t < Duration::from_millis(200), "back to no latency: {t:?}");
}

#[tokio::test]
async fn slow_answers_are_counted_in_the_windows_when_they_arrive() {
    let sim = YclientsSim::start(YclientsSimConfig {
        latency: Latency::fixed_ms(600),
        ..small(SimLimits::new(Some(1), None))
    })
    .await
    .unwrap();
    let base = sim.base_url();
    let auth = auth_header(&sim, Some(&sim.current_user_token()));
    let call = {
        let (base, auth) = (base.clone(), auth.clone());
        move || {
            let (base, auth) = (base.clone(), auth.clone());
            async move {
                let t = std::time::Instant::now();
                let resp = Client::new()
                    .get(format!("{base}/records/{COMPANY}"))
                    .header("Accept", ACCEPT)
                    .header("Authorization", auth)
                    .send()
                    .await
                    .unwrap();
                (resp.status(), t.elapsed())
            }
        }
    };
    let start = std::time::Instant::now();
    let first = tokio::spawn(call());
    tokio::time::sleep(Duration::from_millis(100)).await;
    // The first is still being answered (0.6 s), but it arrived at 0: the
    // window is full for a request answered at once.
    sim.set_latency(Latency::None);
    let (second, took) = call().await;
    assert_eq!(second, StatusCode::TOO_MANY_REQUESTS);
    assert!(
        took < Duration::from_millis(400),
        "no latency now: {took:?}"
    );
    let (first, took) = first.await.unwrap();
    assert_eq!(first, StatusCode::OK);
    assert!(took >= Duration::from_millis(600));
    // At 1.3 s, more than a second after the first ARRIVED (it was
    // answered only at 0.6 s), the window is free again (and B, at 0.1 s,
    // is out of it too).
    let since = start.elapsed();
    tokio::time::sleep(Duration::from_millis(1300).saturating_sub(since)).await;
    let (third, _) = call().await;
    assert_eq!(third, StatusCode::OK);
    // A refusal waits for the latency too.
    sim.set_latency(Latency::fixed_ms(300));
    let (fourth, took) = call().await;
    assert_eq!(fourth, StatusCode::TOO_MANY_REQUESTS);
    assert!(took >= Duration::from_millis(300));
    let stats = sim.stats();
    assert_eq!((stats.limit_breaches, stats.breaches_per_second), (2, 2));
    let peak = stats.peak("127.0.0.1");
    assert_eq!((peak.per_second, peak.counted_per_second), (2, 1));
}

#[tokio::test]
async fn breaches_are_counted_per_window_with_peaks_and_arrivals() {
    let limits = SimLimits {
        per_second: Some(2),
        per_minute: Some(4),
        retry_after: RetryAfter::Always,
        ..SimLimits::DOCUMENTED
    };
    let sim = YclientsSim::start(small(limits)).await.unwrap();
    let path = format!("/records/{COMPANY}");
    sim.reset_stats();
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(get(&sim, &path, &[]).await.0.as_u16());
    }
    // The third finds the second's window full, the minute's not.
    assert_eq!(statuses, [200, 200, 429]);
    tokio::time::sleep(Duration::from_millis(1050)).await;
    statuses.clear();
    for _ in 0..3 {
        statuses.push(get(&sim, &path, &[]).await.0.as_u16());
    }
    // Two more fill both windows; the third finds both full.
    assert_eq!(statuses, [200, 200, 429]);

    let stats = sim.stats();
    assert_eq!(stats.requests, 6);
    assert_eq!(stats.limit_breaches, 2);
    assert_eq!(stats.breaches_per_second, 2);
    assert_eq!(stats.breaches_per_minute, 1);
    assert_eq!(stats.responses_429, 2);
    let peak = stats.peak("127.0.0.1");
    assert_eq!(
        peak,
        WindowPeaks {
            per_second: 3,
            per_minute: 6,
            counted_per_second: 2,
            counted_per_minute: 4,
        }
    );
    assert_eq!(stats.max_peaks(), peak);
    assert!(peak.counted_per_second <= 2 && peak.counted_per_minute <= 4);
    // Over the limit by arrivals exactly when something was refused.
    assert!(peak.per_second > 2 && stats.breaches_per_second > 0);

    let arrivals = sim.arrivals();
    assert_eq!(arrivals.len(), 6);
    let refused: Vec<bool> = arrivals.iter().map(|a| a.over_limit).collect();
    assert_eq!(refused, [false, false, true, false, false, true]);
    assert!(arrivals.windows(2).all(|w| w[0].at <= w[1].at));
    assert!(arrivals[3].at - arrivals[2].at >= Duration::from_millis(1000));
    assert_eq!(sim.arrivals_per_second(), vec![3, 3]);

    // Per token: the whole Authorization header is the key, and peaks are
    // kept without limits too.
    sim.set_limits(SimLimits {
        scope: LimitScope::PerToken,
        ..SimLimits::UNLIMITED
    });
    sim.reset_stats();
    assert!(sim.arrivals().is_empty());
    for _ in 0..4 {
        let _ = get(&sim, &path, &[]).await;
    }
    let partner_only = auth_header(&sim, None);
    let _ = status_of(&sim, &path, &partner_only).await;
    let stats = sim.stats();
    let user_key = auth_header(&sim, Some(&sim.current_user_token()));
    assert_eq!(stats.peak(&user_key).per_second, 4);
    assert_eq!(stats.peak(&user_key).counted_per_minute, 4);
    assert_eq!(stats.peak(&partner_only).per_second, 1);
    assert_eq!(stats.limit_breaches, 0);
    assert_eq!(stats.peaks.len(), 2);
}

#[tokio::test]
async fn deprecated_clients_list_pages_filters_and_can_be_gone() {
    let sim = YclientsSim::start(small(SimLimits::UNLIMITED))
        .await
        .unwrap();
    let path = format!("/clients/{COMPANY}");
    let snapshot = sim.clients(COMPANY);
    assert_eq!(snapshot.len(), 120);

    // Paging: whole list in id order, total on every page, then nothing.
    let mut seen = Vec::new();
    for page in 1..=4 {
        let (status, body) = get(
            &sim,
            &path,
            &[("page", page.to_string()), ("count", "50".into())],
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["success"], json!(true));
        assert_eq!(body["meta"]["total_count"], json!(120));
        assert_eq!(body["meta"]["page"], json!(page));
        let data = body["data"].as_array().unwrap();
        assert_eq!(data.len(), [50, 50, 20, 0][page - 1]);
        seen.extend(data.iter().cloned());
    }
    assert_eq!(seen, snapshot, "every field, in id order");
    for count in ["0", "201", "x"] {
        let (status, body) = get(&sim, &path, &[("count", count.into())]).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "count={count}");
        assert!(body["meta"]["errors"]["count"].is_array());
    }

    // changed_after / changed_before are inclusive bounds on
    // last_change_date.
    let when = |c: &Value| {
        chrono::DateTime::parse_from_str(
            c["last_change_date"].as_str().unwrap(),
            "%Y-%m-%dT%H:%M:%S%z",
        )
        .unwrap()
    };
    let mut by_change: Vec<&Value> = snapshot.iter().collect();
    by_change.sort_by_key(|c| when(c));
    let pivot = by_change[60];
    let bound = pivot["last_change_date"].as_str().unwrap().to_string();
    let ids = |body: &Value| -> Vec<i64> {
        body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_i64().unwrap())
            .collect()
    };
    let expect = |keep: &dyn Fn(&Value) -> bool| -> Vec<i64> {
        snapshot
            .iter()
            .filter(|c| keep(c))
            .map(|c| c["id"].as_i64().unwrap())
            .collect()
    };
    let (_, after) = get(
        &sim,
        &path,
        &[("changed_after", bound.clone()), ("count", "200".into())],
    )
    .await;
    let want = expect(&|c| when(c) >= when(pivot));
    assert_eq!(ids(&after), want);
    assert!(
        ids(&after).contains(&pivot["id"].as_i64().unwrap()),
        "inclusive"
    );
    assert_eq!(after["meta"]["total_count"], json!(want.len()));
    let (_, before) = get(
        &sim,
        &path,
        &[("changed_before", bound.clone()), ("count", "200".into())],
    )
    .await;
    assert_eq!(ids(&before), expect(&|c| when(c) <= when(pivot)));
    let (status, _) = get(&sim, &path, &[("changed_after", "yesterday".into())]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    // Gone: 404 with the error envelope, and back.
    sim.set_clients_list_gone(true);
    let (status, body) = get(&sim, &path, &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["success"], json!(false));
    assert_eq!(body["data"], Value::Null);
    assert!(body["meta"]["message"].is_string());
    // The other client endpoints stay.
    let (status, _) = post(
        &sim,
        &format!("/company/{COMPANY}/clients/search"),
        json!({"page": 1, "page_size": 5}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    sim.set_clients_list_gone(false);
    assert_eq!(get(&sim, &path, &[]).await.0, StatusCode::OK);

    let gone = YclientsSim::start(YclientsSimConfig {
        clients_list_gone: true,
        ..small(SimLimits::UNLIMITED)
    })
    .await
    .unwrap();
    let (status, body) = get(&gone, &path, &[("page", "1".into())]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["success"], json!(false));
    assert_eq!(gone.stats().endpoint("clients_list"), 1);
    assert_eq!(gone.stats().responses_4xx, 1);
}

#[tokio::test]
async fn odd_requests_get_answers_not_panics() {
    let sim = YclientsSim::start(small(SimLimits::UNLIMITED))
        .await
        .unwrap();
    let huge = u64::MAX.to_string();
    let records = format!("/records/{COMPANY}");
    let search = format!("/company/{COMPANY}/clients/search");
    let (status, _) = post(&sim, &search, json!({"page": -1})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    for body in ["not json", "[1, 2]", "{\"page\": "] {
        let resp = Client::new()
            .post(format!("{}{search}", sim.base_url()))
            .header("Accept", ACCEPT)
            .header(
                "Authorization",
                auth_header(&sim, Some(&sim.current_user_token())),
            )
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{body}");
    }
    for (path, want) in [
        (format!("/services/{huge}0"), StatusCode::FORBIDDEN),
        (format!("/services/{COMPANY}/abc"), StatusCode::NOT_FOUND),
        (format!("/staff/{COMPANY}/-1"), StatusCode::NOT_FOUND),
        (format!("/staff/{COMPANY}/{huge}"), StatusCode::NOT_FOUND),
        (format!("/client/{COMPANY}/{huge}9"), StatusCode::NOT_FOUND),
        (format!("/company/{COMPANY}/staff/"), StatusCode::NOT_FOUND),
        ("/companies/1/2/3".to_string(), StatusCode::NOT_FOUND),
        ("/../../etc/passwd".to_string(), StatusCode::NOT_FOUND),
    ] {
        assert_eq!(get(&sim, &path, &[]).await.0, want, "{path}");
    }
    let (status, _) = get(
        &sim,
        &format!("/services/{COMPANY}"),
        &[("staff_id", "x".into())],
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, body) = get(&sim, "/companies", &[("my", "maybe".into())]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body["data"].is_array());
    // Still serving.
    assert_eq!(get(&sim, &records, &[]).await.0, StatusCode::OK);
}
