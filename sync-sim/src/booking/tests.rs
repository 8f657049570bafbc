//! Tests of the simulated booking site itself, through real HTTP.

use std::time::Duration;

use chrono::NaiveDate;
use reqwest::redirect::Policy;
use reqwest::StatusCode;

use super::*;

fn small(ttl: Duration) -> BookingSimConfig {
    BookingSimConfig {
        days: 28,
        start: NaiveDate::from_ymd_opt(2026, 3, 2).unwrap(),
        session_ttl: ttl,
        ..BookingSimConfig::default()
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(Policy::none())
        .build()
        .unwrap()
}

fn hidden(body: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = body.find(&marker).expect("hidden input") + marker.len();
    body[start..].split('"').next().unwrap().to_string()
}

async fn login_with(
    c: &reqwest::Client,
    base: &str,
    user: &str,
    pass: &str,
    send_form_id: bool,
) -> reqwest::Response {
    let page = c
        .get(format!("{base}/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut form = vec![
        ("_token".to_string(), hidden(&page, "_token")),
        ("username".to_string(), user.to_string()),
        ("password".to_string(), pass.to_string()),
    ];
    if send_form_id {
        form.push(("_form_id".to_string(), hidden(&page, "_form_id")));
    }
    c.post(format!("{base}/login"))
        .form(&form)
        .send()
        .await
        .unwrap()
}

async fn login(c: &reqwest::Client, sim: &RunningBookingSim) {
    let cfg = BookingSimConfig::default();
    let r = login_with(c, &sim.base_url(), &cfg.username, &cfg.password, true).await;
    assert_eq!(r.status(), StatusCode::FOUND);
}

#[tokio::test]
async fn login_needs_every_hidden_input_and_the_right_password() {
    let sim = BookingSim::start(small(Duration::from_secs(60)))
        .await
        .unwrap();
    let base = sim.base_url();
    let cfg = BookingSimConfig::default();

    let c = client();
    let wrong = login_with(&c, &base, &cfg.username, "nope", true).await;
    assert_eq!(wrong.status(), StatusCode::OK);
    let body = wrong.text().await.unwrap();
    assert!(body.contains("Invalid username or password"), "{body}");
    assert!(body.contains("type=\"password\""));

    let c = client();
    let no_form_id = login_with(&c, &base, &cfg.username, &cfg.password, false).await;
    assert_eq!(no_form_id.status(), StatusCode::OK);
    assert!(no_form_id
        .text()
        .await
        .unwrap()
        .contains("Invalid security token"));

    // Without the cookie of the GET, the token is not accepted either.
    let page = client()
        .get(format!("{base}/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let r = client()
        .post(format!("{base}/login"))
        .form(&[
            ("_token", hidden(&page, "_token")),
            ("_form_id", hidden(&page, "_form_id")),
            ("username", cfg.username.clone()),
            ("password", cfg.password.clone()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    let c = client();
    let ok = login_with(&c, &base, &cfg.username, &cfg.password, true).await;
    assert_eq!(ok.status(), StatusCode::FOUND);
    assert_eq!(ok.headers()["location"], "/schedule");
    let page = c.get(format!("{base}/schedule")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("schedule-week"));

    let stats = sim.stats();
    assert_eq!(stats.logins, 1);
    assert_eq!(stats.login_failures, 3);
    assert_eq!(stats.path("POST /login"), 4);
    assert_eq!(stats.path("GET /schedule"), 1);
}

#[tokio::test]
async fn pages_need_a_session() {
    let sim = BookingSim::start(BookingSimConfig {
        expired_style: ExpiredStyle::Redirect,
        ..small(Duration::from_secs(60))
    })
    .await
    .unwrap();
    let r = client()
        .get(format!("{}/schedule/days-7/2026/3/2", sim.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FOUND);
    assert!(r.headers()["location"]
        .to_str()
        .unwrap()
        .starts_with("/login"));
    assert_eq!(sim.stats().unauthenticated, 1);
    assert_eq!(sim.stats().session_expiries, 0);
}

#[tokio::test]
async fn sessions_expire_in_both_styles() {
    for style in [
        ExpiredStyle::Redirect,
        ExpiredStyle::LoginFormIn200,
        ExpiredStyle::Mixed,
    ] {
        let sim = BookingSim::start(BookingSimConfig {
            expired_style: style,
            ..small(Duration::from_millis(300))
        })
        .await
        .unwrap();
        let c = client();
        let url = format!("{}/schedule/days-7/2026/3/2", sim.base_url());
        let mut answers = Vec::new();
        for _ in 0..2 {
            login(&c, &sim).await;
            assert_eq!(c.get(&url).send().await.unwrap().status(), StatusCode::OK);
            tokio::time::sleep(Duration::from_millis(400)).await;
            let r = c.get(&url).send().await.unwrap();
            let status = r.status();
            let body = r.text().await.unwrap();
            if status == StatusCode::OK {
                assert!(body.contains("type=\"password\"") && !body.contains("schedule-week"));
            } else {
                assert_eq!(status, StatusCode::FOUND);
            }
            answers.push(status);
        }
        match style {
            ExpiredStyle::Redirect => assert_eq!(answers, [StatusCode::FOUND; 2]),
            ExpiredStyle::LoginFormIn200 => assert_eq!(answers, [StatusCode::OK; 2]),
            ExpiredStyle::Mixed => assert_ne!(answers[0], answers[1]),
        }
        assert_eq!(sim.stats().session_expiries, 2, "{style:?}");
        assert_eq!(sim.stats().logins, 2);
    }
}

#[tokio::test]
async fn expire_sessions_ends_live_sessions() {
    let sim = BookingSim::start(small(Duration::from_secs(600)))
        .await
        .unwrap();
    let c = client();
    login(&c, &sim).await;
    let url = format!("{}/schedule", sim.base_url());
    assert_eq!(c.get(&url).send().await.unwrap().status(), StatusCode::OK);
    sim.expire_sessions();
    let r = c.get(&url).send().await.unwrap();
    let status = r.status();
    let body = r.text().await.unwrap();
    assert!(
        status == StatusCode::FOUND || body.contains("type=\"password\""),
        "{status}"
    );
    assert_eq!(sim.stats().session_expiries, 1);
}

#[tokio::test]
async fn weeks_chain_and_multi_day_boardings_show_in_each_week() {
    let sim = BookingSim::start(small(Duration::from_secs(60)))
        .await
        .unwrap();
    let c = client();
    login(&c, &sim).await;
    let base = sim.base_url();
    let week1 = c
        .get(format!("{base}/schedule/days-7/2026/3/2"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        week1.contains("rel=\"next\" href=\"/schedule/days-7/2026/3/9\""),
        "no next link"
    );
    assert!(
        week1.contains("data-date=\"2026-03-08\"") && !week1.contains("data-date=\"2026-03-09\"")
    );
    let week2 = c
        .get(format!("{base}/schedule/days-7/2026/3/9"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();

    let tz = sim.tz();
    let spanning = sim
        .boardings()
        .into_iter()
        .find(|b| {
            b.check_in_day <= NaiveDate::from_ymd_opt(2026, 3, 7).unwrap()
                && b.check_out.is_some_and(|o| {
                    o.with_timezone(&tz).date_naive()
                        >= NaiveDate::from_ymd_opt(2026, 3, 10).unwrap()
                })
                && !b.deleted
        })
        .expect("a boarding across the week boundary");
    let href = format!(
        "/schedule/a/{}/{}",
        spanning.appointment_id,
        spanning.check_in.timestamp()
    );
    assert!(
        week1.contains(&href) && week2.contains(&href),
        "{href} not in both weeks"
    );

    let detail = c
        .get(format!("{base}{href}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let local = spanning.check_in.with_timezone(&tz);
    assert!(
        detail.contains(&local.format("%a, %b %-d, %Y %-I:%M %p").to_string()),
        "{detail}"
    );
    assert!(detail.contains("appt-change-status"));
}

#[tokio::test]
async fn cancel_edit_and_delete_show_on_the_pages() {
    let sim = BookingSim::start(small(Duration::from_secs(60)))
        .await
        .unwrap();
    let c = client();
    login(&c, &sim).await;
    let base = sim.base_url();
    let live: Vec<SimBoarding> = sim.boardings().into_iter().filter(|b| !b.deleted).collect();
    let (a, b, d) = (&live[0], &live[1], &live[2]);
    let path = |x: &SimBoarding| {
        format!(
            "{base}/schedule/a/{}/{}",
            x.appointment_id,
            x.check_in.timestamp()
        )
    };

    assert!(sim.cancel(a.appointment_id.parse().unwrap()));
    let page = c.get(path(a)).send().await.unwrap().text().await.unwrap();
    assert!(page.contains(">Cancelled</span>"));

    assert!(sim.edit(
        b.appointment_id.parse().unwrap(),
        BookingEdit {
            pet: Some("Renamed & Co".into()),
            price_cents: Some(Some(123_456)),
            ..BookingEdit::default()
        }
    ));
    let page = c.get(path(b)).send().await.unwrap().text().await.unwrap();
    assert!(
        page.contains("Renamed") && page.contains("$1,234.56"),
        "{page}"
    );

    assert!(sim.delete(d.appointment_id.parse().unwrap()));
    assert_eq!(
        c.get(path(d)).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    assert!(!sim.delete(d.appointment_id.parse().unwrap()));

    let after = sim.boardings();
    let by_id = |id: &str| after.iter().find(|x| x.appointment_id == id).unwrap();
    assert!(by_id(&a.appointment_id).deleted);
    assert_eq!(by_id(&a.appointment_id).status, "Cancelled");
    assert_eq!(by_id(&b.appointment_id).pet, "Renamed & Co");
    assert_eq!(by_id(&b.appointment_id).price, Some(1234.56));
    assert!(by_id(&d.appointment_id).deleted);
    assert_eq!(after.len(), sim.boardings().len());
}

#[tokio::test]
async fn data_is_deterministic_and_varied() {
    let a = BookingSim::start(small(Duration::from_secs(60)))
        .await
        .unwrap();
    let b = BookingSim::start(small(Duration::from_secs(60)))
        .await
        .unwrap();
    let c = BookingSim::start(BookingSimConfig {
        seed: 7,
        ..small(Duration::from_secs(60))
    })
    .await
    .unwrap();
    let boardings = a.boardings();
    assert_eq!(boardings, b.boardings());
    assert_ne!(boardings, c.boardings());
    assert!(boardings.len() > 28 * 3, "{}", boardings.len());
    assert!(boardings.iter().any(|x| x.deleted), "no cancellations");
    assert!(boardings
        .iter()
        .any(|x| x.pet.contains('&') || x.client.contains('&')));
    let tz = a.tz();
    assert!(boardings.iter().any(|x| x
        .check_out
        .is_some_and(
            |o| o.with_timezone(&tz).date_naive() > x.check_in_day + chrono::Duration::days(3)
        )));
    assert!(
        a.appointment_ids().len() > boardings.len(),
        "daycare entries missing"
    );
}

#[tokio::test]
async fn hidden_cancellations_are_not_listed() {
    let sim = BookingSim::start(BookingSimConfig {
        list_cancelled: false,
        ..small(Duration::from_secs(60))
    })
    .await
    .unwrap();
    assert!(sim.boardings().iter().all(|b| !b.deleted));
    let c = client();
    login(&c, &sim).await;
    let week = c
        .get(format!("{}/schedule/days-7/2026/3/2", sim.base_url()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!week.contains("data-status=\"cancelled\""));
}

#[tokio::test]
async fn faults_are_injected_and_counted() {
    let sim = BookingSim::start(BookingSimConfig {
        faults: Faults {
            error_5xx_rate: 1.0,
            ..Faults::default()
        },
        ..small(Duration::from_secs(60))
    })
    .await
    .unwrap();
    let c = client();
    login(&c, &sim).await;
    let url = format!("{}/schedule/days-7/2026/3/2", sim.base_url());
    let r = c.get(&url).send().await.unwrap();
    assert!(r.status().is_server_error());
    assert!(r.text().await.unwrap().contains("<h1>5"));

    sim.set_faults(Faults {
        truncated_rate: 1.0,
        ..Faults::default()
    });
    let body = c.get(&url).send().await.unwrap().text().await.unwrap();
    assert!(!body.contains("</html>") && !body.is_empty());

    sim.set_faults(Faults {
        slow_rate: 1.0,
        slow_delay: Duration::from_millis(200),
        ..Faults::default()
    });
    let t = std::time::Instant::now();
    c.get(&url).send().await.unwrap();
    assert!(t.elapsed() >= Duration::from_millis(200));

    sim.set_faults(Faults {
        layout_noise: true,
        ..Faults::default()
    });
    let noisy = c.get(&url).send().await.unwrap().text().await.unwrap();
    sim.set_faults(Faults::default());
    let clean = c.get(&url).send().await.unwrap().text().await.unwrap();
    assert_ne!(noisy, clean);
    assert!(noisy.ends_with("</html>\n"));

    let s = sim.stats();
    assert_eq!(
        (s.errors_injected, s.truncated_injected, s.slow_injected),
        (1, 1, 1)
    );
    assert_eq!(s.path("GET /schedule/days-7"), 5);
}

#[tokio::test]
async fn rate_breaches_are_counted() {
    let sim = BookingSim::start(BookingSimConfig {
        rate_check: Some(RateCheck {
            min_spacing: Some(Duration::from_millis(100)),
            per_minute: None,
        }),
        ..small(Duration::from_secs(60))
    })
    .await
    .unwrap();
    let c = client();
    let url = format!("{}/login", sim.base_url());
    c.get(&url).send().await.unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
    c.get(&url).send().await.unwrap();
    assert_eq!(sim.stats().breaches, 0);
    c.get(&url).send().await.unwrap();
    assert_eq!(sim.stats().breaches, 1);
}

#[tokio::test]
async fn random_mutations_are_reported() {
    let sim = BookingSim::start(small(Duration::from_secs(60)))
        .await
        .unwrap();
    let before = sim.boardings();
    let done = sim.mutate_random(0.2, 1);
    assert!(!done.is_empty());
    let after = sim.boardings();
    for m in &done {
        let id = match m {
            Mutation::Cancelled(id) | Mutation::Extended(id) | Mutation::Deleted(id) => {
                id.to_string()
            }
        };
        let old = before.iter().find(|b| b.appointment_id == id).unwrap();
        let new = after.iter().find(|b| b.appointment_id == id).unwrap();
        assert_ne!(old, new, "{m:?}");
    }
    let changed = before.iter().zip(&after).filter(|(a, b)| a != b).count();
    assert_eq!(changed, done.len());
}
