//! Parser tests against the fixtures in `tests/fixtures/`.

use chrono::{DateTime, Utc};
use chrono_tz::America::New_York;
use proptest::prelude::*;

use super::*;

macro_rules! fixture {
    ($name:literal) => {
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/",
            $name
        ))
    };
}

fn site() -> Site {
    Site::new(SiteLayout::default()).unwrap()
}

fn url(path: &str) -> Url {
    Url::parse("https://kennel.example.com")
        .unwrap()
        .join(path)
        .unwrap()
}

fn utc(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

#[test]
fn login_form_keeps_every_hidden_input_and_finds_the_fields() {
    let s = site();
    let page = fixture!("login.html");
    assert!(s.is_login_page(page));
    let form = s.parse_login_form(page, &url("/login")).unwrap();
    assert_eq!(form.action.as_str(), "https://kennel.example.com/login");
    assert_eq!(
        form.hidden,
        vec![
            ("utf8".to_string(), "✓".to_string()),
            ("authenticity_token".to_string(), "Zm9v+YmFy/==".to_string()),
            ("return_to".to_string(), String::new()),
        ]
    );
    assert_eq!(form.username_field, "user[email]");
    assert_eq!(form.password_field, "user[password]");
}

#[test]
fn login_error_message_is_found_and_normalised() {
    let s = site();
    let page = fixture!("login_failed.html");
    assert!(s.is_login_page(page));
    assert_eq!(
        s.login_error_message(page).as_deref(),
        Some("Incorrect email or password.")
    );
    // Without a known class, the sentence with "invalid" is found.
    let plain = "<html><body><form><input type=password name=p></form><p>Invalid credentials, try again</p></body></html>";
    assert_eq!(
        s.login_error_message(plain).as_deref(),
        Some("Invalid credentials, try again")
    );
    assert_eq!(s.login_error_message("<html><form></form></html>"), None);
}

#[test]
fn schedule_page_rows_entities_whitespace_and_dedupe() {
    let s = site();
    let u = url("/schedule/days-7/2026/2/9");
    let page = s.parse_schedule(fixture!("week.html"), &u).unwrap();
    let ids: Vec<&str> = page.rows.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(
        ids,
        ["1001", "1002", "1003", "1004"],
        "deduped, script text ignored"
    );
    let r = &page.rows[0];
    assert_eq!(
        r.detail_url.as_str(),
        "https://kennel.example.com/schedule/a/1001/1770674280"
    );
    assert_eq!(r.event_type.as_deref(), Some("boarding"));
    assert_eq!(r.status.as_deref(), Some("confirmed"));
    assert_eq!(r.fingerprint.len(), 32);
    assert_eq!(page.rows[3].status.as_deref(), Some("Cancelled"));
    assert!(s.is_cancelled(page.rows[3].status.as_deref().unwrap()));
    assert_eq!(
        page.next.unwrap().as_str(),
        "https://kennel.example.com/schedule/days-7/2026/2/16"
    );
    let fps: HashSet<&str> = page.rows.iter().map(|r| r.fingerprint.as_str()).collect();
    assert_eq!(fps.len(), 4);
}

#[test]
fn fingerprint_ignores_markup_noise_but_not_content() {
    let s = site();
    let u = url("/schedule/days-7/2026/2/9");
    let row = |html: &str| {
        let page = format!("<html><body><div class=\"schedule-week\">{html}</div></body></html>");
        s.parse_schedule(&page, &u)
            .unwrap()
            .rows
            .remove(0)
            .fingerprint
    };
    let plain = row(
        r#"<a href="/schedule/a/7/1" data-status="confirmed"><span class="event-pet">A &amp; B</span><div class="day-event-time">Feb 9, AM - PM</div></a>"#,
    );
    let noisy = row("<a data-track=\"x\" class=\"js\" data-status=\"confirmed\" href=\"/schedule/a/7/1\">\n <!-- c --> <span class=\"event-pet x\">\n A &#38;\tB </span>\n<div class=\"day-event-time\">Feb 9, AM  -  PM</div></a>");
    let changed = row(
        r#"<a href="/schedule/a/7/1" data-status="cancelled"><span class="event-pet">A &amp; B</span><div class="day-event-time">Feb 9, AM - PM</div></a>"#,
    );
    assert_eq!(plain, noisy);
    assert_ne!(plain, changed);
}

#[test]
fn empty_week_is_empty_but_a_page_without_the_container_is_an_error() {
    let s = site();
    let u = url("/schedule/days-7/2026/2/9");
    let empty = s.parse_schedule(fixture!("week_empty.html"), &u).unwrap();
    assert!(empty.rows.is_empty());
    assert!(empty.next.is_some());
    let e = s
        .parse_schedule(fixture!("week_maintenance.html"), &u)
        .unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("/schedule/days-7/2026/2/9") && msg.contains(".schedule-week"),
        "{msg}"
    );
    assert_eq!(SyncError::from(e).kind(), "bad_data");
}

#[test]
fn truncated_page_is_detected() {
    let s = site();
    let u = url("/schedule/days-7/2026/2/9");
    let page = fixture!("week_truncated.html");
    let e = s.check_complete(page, &u).unwrap_err();
    assert!(
        e.to_string().contains("truncated") && e.to_string().contains("2026/2/9"),
        "{e}"
    );
    assert_eq!(SyncError::from(e).kind(), "retryable");
    s.check_complete(fixture!("week.html"), &u).unwrap();
    s.check_complete("<HTML><body></body></HTML>", &u).unwrap();
    let lenient = Site::new(SiteLayout {
        require_closing_html: false,
        ..SiteLayout::default()
    })
    .unwrap();
    lenient.check_complete(page, &u).unwrap();
}

#[test]
fn detail_with_classes() {
    let s = site();
    let d = s
        .parse_detail(
            fixture!("detail_boarding.html"),
            &url("/schedule/a/1001/1"),
            New_York,
        )
        .unwrap();
    assert_eq!(d.service, "Holiday Boarding & Bath");
    assert!(s.is_boarding(&d.service));
    assert_eq!(d.status, "Checked In");
    assert_eq!(d.client, "Smith & Jones");
    assert_eq!(d.pet, "Biscuit & Gravy");
    assert_eq!(d.check_in, utc("2026-02-09T21:58:00Z"));
    assert_eq!(d.check_out, Some(utc("2026-02-12T15:00:00Z")));
    assert_eq!(d.price, Some(1234.5));
    assert_eq!(
        d.notes.as_deref(),
        Some("Needs meds at 8am & 6pm. Allergic to chicken; <b>no</b> treats.")
    );
}

#[test]
fn detail_with_labels_in_a_table() {
    let s = site();
    let d = s
        .parse_detail(
            fixture!("detail_labels.html"),
            &url("/schedule/a/1002/1"),
            New_York,
        )
        .unwrap();
    assert_eq!(d.service, "Boarding - Standard Run");
    assert_eq!(d.client, "José García");
    assert_eq!(d.check_in, utc("2026-02-09T14:05:00Z"));
    assert_eq!(d.check_out, None);
    assert_eq!(
        d.price,
        Some(45.5),
        "the banner 'Prices change…' is not the price"
    );
    assert_eq!(d.notes, None);
}

#[test]
fn detail_with_long_dates_and_a_dst_gap() {
    let s = site();
    let d = s
        .parse_detail(
            fixture!("detail_long_dates.html"),
            &url("/schedule/a/1005/1"),
            New_York,
        )
        .unwrap();
    // 2:30 am does not exist on 2026-03-08 in New York: an hour later, EDT.
    assert_eq!(d.check_in, utc("2026-03-08T07:30:00Z"));
    assert_eq!(d.check_out, Some(utc("2026-03-09T15:00:00Z")));
    assert_eq!(d.price, None);
}

#[test]
fn missing_and_unreadable_fields_name_the_url_and_the_field() {
    let s = site();
    let u = url("/schedule/a/1006/1");
    let e = s
        .parse_detail(fixture!("detail_missing_checkin.html"), &u, New_York)
        .unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("/schedule/a/1006/1") && msg.contains("check-in"),
        "{msg}"
    );
    assert_eq!(SyncError::from(e).kind(), "bad_data");

    let e = s
        .parse_detail(fixture!("detail_bad_date.html"), &u, New_York)
        .unwrap_err();
    assert!(e.to_string().contains("sometime next week"), "{e}");

    let no_h1 = fixture!("detail_boarding.html")
        .replace("<h1>", "<h2>")
        .replace("</h1>", "</h2>");
    let e = s.parse_detail(&no_h1, &u, New_York).unwrap_err();
    assert!(e.to_string().contains("service type (`h1`)"), "{e}");

    let no_pet = fixture!("detail_boarding.html").replace("event-pet", "pet-name");
    let e = s.parse_detail(&no_pet, &u, New_York).unwrap_err();
    assert!(e.to_string().contains("pet (`.event-pet`)"), "{e}");

    let bad_price = fixture!("detail_boarding.html").replace("$1,234.50", "call us");
    let e = s.parse_detail(&bad_price, &u, New_York).unwrap_err();
    assert!(e.to_string().contains("price `call us`"), "{e}");
}

#[test]
fn daycare_and_cancelled_are_recognised() {
    let s = site();
    let u = url("/schedule/a/1003/1");
    let d = s
        .parse_detail(fixture!("detail_daycare.html"), &u, New_York)
        .unwrap();
    assert!(!s.is_boarding(&d.service));
    let c = s
        .parse_detail(fixture!("detail_cancelled.html"), &u, New_York)
        .unwrap();
    assert!(s.is_boarding(&c.service) && s.is_cancelled(&c.status));
    assert_eq!(c.price, None);
}

#[test]
fn date_time_formats() {
    let tz = New_York;
    let cases = [
        ("Mon, Feb 9, 2026 4:58 PM", "2026-02-09T21:58:00Z"),
        (
            "Monday, February 9, 2026 at 4:58 pm",
            "2026-02-09T21:58:00Z",
        ),
        ("Feb 9 2026 4:58pm", "2026-02-09T21:58:00Z"),
        ("9 Feb 2026 16:58", "2026-02-09T21:58:00Z"),
        ("2026-02-09 16:58", "2026-02-09T21:58:00Z"),
        ("2026-02-09T16:58:00", "2026-02-09T21:58:00Z"),
        ("02/09/2026 4:58 p.m.", "2026-02-09T21:58:00Z"),
        ("2026-02-09T16:58:00-05:00", "2026-02-09T21:58:00Z"),
        ("Sun, Nov 1, 2026 1:30 AM", "2026-11-01T05:30:00Z"),
        ("\n  Mon,\u{a0}Feb 9,  2026\t4pm ", "2026-02-09T21:00:00Z"),
    ];
    for (text, want) in cases {
        assert_eq!(parse_local_datetime(text, tz), Some(utc(want)), "{text:?}");
    }
    for bad in [
        "",
        "Feb 9, 4:58pm - 7:24pm",
        "Pick-Up ( 9 am - 10 am )",
        "2026-13-40 10:00",
        "soon",
    ] {
        assert_eq!(parse_local_datetime(bad, tz), None, "{bad:?}");
    }
}

#[test]
fn prices() {
    assert_eq!(parse_price("$1,234.50"), Ok(Some(1234.5)));
    assert_eq!(parse_price("  € 45 "), Ok(Some(45.0)));
    assert_eq!(parse_price("45.99 USD"), Ok(Some(45.99)));
    assert_eq!(parse_price("—"), Ok(None));
    assert_eq!(parse_price("N/A"), Ok(None));
    assert_eq!(parse_price("Free"), Ok(Some(0.0)));
    assert_eq!(parse_price("ask"), Err(()));
}

#[test]
fn week_paths() {
    let s = site();
    let base = url("/");
    let d = NaiveDate::from_ymd_opt(2026, 2, 9).unwrap();
    let u = s.week_url(&base, d).unwrap();
    assert_eq!(u.path(), "/schedule/days-7/2026/2/9");
    assert_eq!(s.week_start_of(&u), Some(d));
    assert_eq!(
        s.week_start_of(&url("/schedule/days-7/2026/02/09?start=x")),
        Some(d)
    );
    assert_eq!(s.week_start_of(&url("/schedule")), None);
    assert_eq!(s.week_start_of(&url("/schedule/days-7/2026/2/31")), None);
    assert!(s.is_login_location(&url("/login?redirect_to=/schedule")));
    assert!(s.is_login_location(&url("/login/")));
    assert!(!s.is_login_location(&url("/schedule")));
}

#[test]
fn bad_layout_is_a_config_error_naming_the_setting() {
    let e = Site::new(SiteLayout {
        row: "a[[!".into(),
        ..SiteLayout::default()
    })
    .unwrap_err();
    assert!(e.to_string().contains("`row`"), "{e}");
    assert_eq!(SyncError::from(e).kind(), "invalid_input");
    let e = Site::new(SiteLayout {
        week_path: "/schedule/{year}".into(),
        ..SiteLayout::default()
    })
    .unwrap_err();
    assert!(e.to_string().contains("week_path"), "{e}");
}

use std::collections::HashSet;
use sync_core::SyncError;

const SEEDS: &[&str] = &[
    fixture!("week.html"),
    fixture!("detail_boarding.html"),
    fixture!("detail_labels.html"),
    fixture!("login.html"),
];

/// A fixture with a slice cut out and some hostile text put in its place.
fn mutated() -> impl Strategy<Value = String> {
    (
        0..SEEDS.len(),
        any::<prop::sample::Index>(),
        0usize..400,
        "[<>&;\"'/= a-z#0-9\\n\\t]{0,40}",
    )
        .prop_map(|(i, at, len, insert)| {
            let seed = SEEDS[i];
            let mut start = at.index(seed.len());
            while !seed.is_char_boundary(start) {
                start -= 1;
            }
            let mut end = (start + len).min(seed.len());
            while !seed.is_char_boundary(end) {
                end -= 1;
            }
            format!("{}{}{}", &seed[..start], insert, &seed[end..])
        })
}

fn exercise(html: &str) {
    let s = site();
    let u = url("/schedule/days-7/2026/2/9");
    let _ = s.check_complete(html, &u);
    let _ = s.is_login_page(html);
    let _ = s.login_error_message(html);
    let _ = s.parse_login_form(html, &u);
    let _ = s.parse_schedule(html, &u);
    let _ = s.parse_detail(html, &u, New_York);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn parsers_never_panic_on_mutated_pages(html in mutated()) {
        exercise(&html);
    }

    #[test]
    fn parsers_never_panic_on_arbitrary_text(html in ".{0,300}") {
        exercise(&html);
        let _ = parse_local_datetime(&html, New_York);
        let _ = parse_price(&html);
    }
}
