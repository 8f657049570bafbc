//! Parser tests against the fixtures in `tests/fixtures/`, shaped like the
//! reference's markup.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::America::Los_Angeles;
use proptest::prelude::*;
use serde_json::json;
use sync_core::{ContentHash, SyncError};

use super::detail::{parse_fixed, parse_total, DatesFrom, LineItem, PetPrice, Price, Stay};
use super::payload::boarding_payload;
use super::rules::{Classification, NotBoarding};
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
    Site::new(Selectors::default()).unwrap()
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

fn ctx() -> DetailContext {
    DetailContext {
        tz: Los_Angeles,
        window_start: NaiveDate::from_ymd_opt(2026, 2, 9).unwrap(),
    }
}

fn detail(html: &str) -> Detail {
    site()
        .parse_detail(html, &url("/schedule/a/X1/1"), ctx())
        .unwrap()
}

fn detail_err(html: &str) -> String {
    let u = url("/schedule/a/X1/1");
    let e = site().parse_detail(html, &u, ctx()).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("https://kennel.example.com/schedule/a/X1/1"),
        "{msg}"
    );
    assert_eq!(SyncError::from(e).kind(), "bad_data", "{msg}");
    msg
}

fn stay(check_in: &str, check_out: &str, dates_from: DatesFrom) -> Option<Stay> {
    Some(Stay {
        check_in: utc(check_in),
        check_out: utc(check_out),
        dates_from,
    })
}

fn not_boarding(d: &Detail) -> &NotBoarding {
    match &d.classification {
        Classification::NotBoarding(why) => why,
        Classification::Boarding => panic!("{} is a boarding", d.service_type),
    }
}

// ---------------------------------------------------------------- login ---

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
    let plain = "<html><body><form><input type=password name=p></form><p>Invalid credentials, try again</p></body></html>";
    assert_eq!(
        s.login_error_message(plain).as_deref(),
        Some("Invalid credentials, try again")
    );
    assert_eq!(s.login_error_message("<html><form></form></html>"), None);
    assert!(!s.is_login_page(fixture!("week.html")));
}

// ------------------------------------------------------------- schedule ---

#[test]
fn schedule_links_anywhere_on_the_page_deduped_by_id() {
    let s = site();
    let u = url("/schedule/days-7/2026/2/9");
    let page = s.parse_schedule(fixture!("week.html"), &u).unwrap();
    let ids: Vec<&str> = page.rows.iter().map(|r| r.id.as_str()).collect();
    // In page order; the script's template link, the "new appointment" link
    // and the second 2049317 are not appointments.
    assert_eq!(
        ids,
        ["2049317", "C63QgDC1", "C63QgCnX", "C63QgKsL", "C63QfyoF"]
    );
    let r = &page.rows[0];
    assert_eq!(r.timestamp, "1770685080");
    assert_eq!(
        r.detail_url.as_str(),
        "https://kennel.example.com/schedule/a/2049317/1770685080"
    );
    assert_eq!(r.event_type.as_deref(), Some("1"));
    assert_eq!(r.status.as_deref(), Some("6"));
    assert_eq!(r.pets, ["Biscuit", "Gravy & Co"]);
    assert_eq!(r.client.as_deref(), Some("Anne-Marie O'Neil"));
    assert_eq!(r.time.as_deref(), Some("Feb 9, 4:58pm - 7:24pm"));
    assert_eq!(r.title, None, "the title is drawn by JavaScript");
    assert_eq!(r.fingerprint.len(), 32);

    let dc = &page.rows[1];
    assert_eq!(dc.pets, ["Zoë"]);
    assert_eq!(dc.client.as_deref(), Some("Lee Chen"));
    assert_eq!(dc.time.as_deref(), Some("Pick-Up ( 9 am - 10 am )"));
    assert_eq!(dc.title.as_deref(), Some("DC:FT"));
    assert_eq!(
        (dc.event_type.as_deref(), dc.status.as_deref()),
        (Some("2"), Some("1"))
    );

    let c = &page.rows[2];
    assert_eq!(
        c.detail_url.as_str(),
        "https://kennel.example.com/schedule/a/C63QgCnX/1770739200"
    );
    // An absolute link to another host is read on the page's own origin.
    let elsewhere =
        fixture!("week.html").replace("https://kennel.example.com/", "https://evil.example.net/");
    let moved = s.parse_schedule(&elsewhere, &u).unwrap();
    assert_eq!(moved.rows[2].detail_url, c.detail_url);
    assert_eq!(c.time.as_deref(), Some("Feb 27, AM - PM"));
    assert_eq!(c.title.as_deref(), Some("2/10-12"));
    assert_eq!(page.rows[3].time.as_deref(), Some("Feb 13, 11:49am ..."));
    assert_eq!(page.rows[3].title.as_deref(), Some("2/13-18"));
    let long = &page.rows[4];
    assert_eq!(long.time.as_deref(), Some("Apr 01, AM - Apr 13, PM"));
    assert_eq!(long.timestamp, "1774998000");
    assert_eq!(
        long.detail_url.as_str(),
        "https://kennel.example.com/schedule/a/C63QfyoF/1774998000?from=week"
    );

    assert_eq!(
        page.next.unwrap().as_str(),
        "https://kennel.example.com/schedule/days-7/2026/2/16"
    );
    let fps: HashSet<&str> = page.rows.iter().map(|r| r.fingerprint.as_str()).collect();
    assert_eq!(fps.len(), 5);
}

#[test]
fn fingerprint_ignores_markup_noise_but_not_content() {
    let s = site();
    let u = url("/schedule/days-7/2026/2/9");
    let row = |html: &str| {
        let page = format!("<html><body><div class=pagination></div>{html}</body></html>");
        s.parse_schedule(&page, &u)
            .unwrap()
            .rows
            .remove(0)
            .fingerprint
    };
    let plain = row(
        r#"<a href="/schedule/a/7/1" data-status="6"><span class="event-pet">A &amp; B</span><div class="day-event-time">Feb 9, AM - PM</div></a>"#,
    );
    let noisy = row("<a data-track=\"x\" class=\"js\" data-status=\"6\" href=\"/schedule/a/7/1\">\n <!-- c --> <span class=\"event-pet x\">\n A &#38;\tB </span>\n<div class=\"day-event-time\">Feb 9, AM  -  PM</div></a>");
    let changed = row(
        r#"<a href="/schedule/a/7/1" data-status="3"><span class="event-pet">A &amp; B</span><div class="day-event-time">Feb 9, AM - PM</div></a>"#,
    );
    assert_eq!(plain, noisy);
    assert_ne!(plain, changed);
}

#[test]
fn an_empty_week_is_empty() {
    let s = site();
    let u = url("/schedule/days-7/2026/2/9");
    // The "new appointment" link is not an appointment.
    let empty = s.parse_schedule(fixture!("week_empty.html"), &u).unwrap();
    assert!(empty.rows.is_empty());
    assert_eq!(
        empty.next.unwrap().as_str(),
        "https://kennel.example.com/schedule/days-7/2026/2/16"
    );
}

#[test]
fn a_page_that_is_not_a_schedule_is_an_error_naming_the_url_and_what_is_missing() {
    let s = site();
    let u = url("/schedule/days-7/2026/2/9");
    let err = |html: &str| {
        let e = s.parse_schedule(html, &u).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("https://kennel.example.com/schedule/days-7/2026/2/9"),
            "{msg}"
        );
        assert!(msg.contains("is not a schedule page"), "{msg}");
        assert_eq!(SyncError::from(e).kind(), "bad_data");
        msg
    };
    let msg = err(fixture!("week_maintenance.html"));
    assert!(
        msg.contains("usual structure") && msg.contains(".pagination"),
        "{msg}"
    );
    let msg = err(fixture!("week_cards_no_links.html"));
    assert!(
        msg.contains("appointment cards") && msg.contains(".event-pet"),
        "{msg}"
    );
    // Links whose form changed still show their cards.
    let msg = err(
        "<html><body><div class=pagination></div><a href='/schedule/a/new'>New</a><a href='/schedule/a/ABC'><span class=event-pet>Rex</span></a></body></html>",
    );
    assert!(
        msg.contains("2 link(s) like `/schedule/a/new`") && msg.contains(".event-pet"),
        "{msg}"
    );
    // A login page or an empty document is not a schedule either.
    err(fixture!("login.html"));
    err("");
}

#[test]
fn the_usual_structure_is_configurable() {
    let s = Site::new(Selectors {
        schedule_markers: vec!["table.days-7".into()],
        ..Selectors::default()
    })
    .unwrap();
    let u = url("/schedule/days-7/2026/2/9");
    assert!(s.parse_schedule(fixture!("week_empty.html"), &u).is_ok());
    let without_grid = fixture!("week_empty.html")
        .replace("days-7\">", "grid\">")
        .replace("btn next", "btn");
    let e = s.parse_schedule(&without_grid, &u).unwrap_err();
    assert!(e.to_string().contains("table.days-7"), "{e}");
    // A next link to another week is structure enough; one elsewhere is not.
    let bare = |next: &str| {
        format!("<html><body><nav><a class=\"next\" href=\"{next}\">Next</a></nav></body></html>")
    };
    let page = s
        .parse_schedule(&bare("/schedule/days-7/2026/2/16"), &u)
        .unwrap();
    assert!(page.rows.is_empty() && page.next.is_some());
    assert!(s.parse_schedule(&bare("/blog?page=2"), &u).is_err());
}

#[test]
fn next_link_by_class_or_rel_and_never_the_page_itself() {
    let s = site();
    let u = url("/schedule/days-7/2026/2/9");
    let page = |nav: &str| {
        s.parse_schedule(
            &format!("<html><body><div class=pagination>{nav}</div></body></html>"),
            &u,
        )
        .unwrap()
        .next
        .map(|n| n.to_string())
    };
    assert_eq!(
        page("<a rel='next' href='/schedule/days-7/2026/2/16'>»</a>").as_deref(),
        Some("https://kennel.example.com/schedule/days-7/2026/2/16")
    );
    assert_eq!(
        page("<a class='page-next' href='/schedule/days-7/2026/2/14'>»</a>").as_deref(),
        Some("https://kennel.example.com/schedule/days-7/2026/2/14")
    );
    assert_eq!(
        page("<a class='next' href='/schedule/days-7/2026/2/9#x'>»</a>"),
        None
    );
    assert_eq!(
        page("<a class='next' href='javascript:void(0)'>»</a>"),
        None
    );
    assert_eq!(
        page("<a class='prev' href='/schedule/days-7/2026/2/2'>«</a>"),
        None
    );
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
    let lenient = Site::new(Selectors {
        require_closing_html: false,
        ..Selectors::default()
    })
    .unwrap();
    lenient.check_complete(page, &u).unwrap();
}

// --------------------------------------------------------------- detail ---

fn fields(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn the_reference_boarding_page_is_read_whole() {
    let d = detail(fixture!("detail_boarding.html"));
    assert_eq!(
        d,
        Detail {
            service_type: "2/13-18".into(),
            status: Some("Scheduled".into()),
            pets: vec!["Luna".into()],
            client: detail::Client {
                name: Some("John Smith".into()),
                email: Some("john.smith@example.com".into()),
                phone: Some("+14155550100".into()),
                address: Some("123 Main St, San Francisco, CA 94110".into()),
            },
            // The title's days (Feb 13, not the timestamps' Feb 12) at the
            // timestamps' times: 5 pm and 10 am Pacific.
            stay: stay(
                "2026-02-14T01:00:00Z",
                "2026-02-18T18:00:00Z",
                DatesFrom::Title
            ),
            check_in_label: Some("PM".into()),
            check_out_label: Some("AM".into()),
            duration: Some("5 d".into()),
            price: Some(Price {
                total_cents: 35000,
                line_items: vec![
                    LineItem {
                        service: "Boarding (Nights)".into(),
                        rate_cents: 6500,
                        quantity_hundredths: 500,
                        amount_cents: 32500,
                        per_pet: vec![PetPrice {
                            rate_cents: 6500,
                            quantity_hundredths: 500,
                            amount_cents: 32500
                        }],
                    },
                    LineItem {
                        service: "Bath".into(),
                        rate_cents: 2500,
                        quantity_hundredths: 100,
                        amount_cents: 2500,
                        per_pet: vec![PetPrice {
                            rate_cents: 2500,
                            quantity_hundredths: 100,
                            amount_cents: 2500
                        }],
                    },
                ],
            }),
            notes: Some(
                "Luna loves belly rubs!\nFeed twice a day & walk at 6pm\nBring her blanket".into()
            ),
            fields: fields(&[
                ("access_home", "Gate code 1234\nKey under the mat"),
                ("behavioral", "Friendly with other dogs"),
                ("birthdate", "March 15, 2020"),
                ("bite_history", "None"),
                ("breed_type", "Large"),
                ("breeds", "Golden Retriever"),
                ("drop_off", "Please arrive between 4–6 PM"),
                ("food_allergies", "Grain-free diet,\nno chicken"),
                ("health_mobility", "Healthy, high energy"),
                ("medications", "Apoquel 16mg\nonce a day with food"),
                ("veterinarian", "Mission Pet Clinic, (415) 555-0199"),
            ]),
            classification: Classification::Boarding,
        }
    );
}

#[test]
fn without_h1_the_title_names_the_service_and_the_timestamps_give_the_dates() {
    let d = detail(fixture!("detail_nights.html"));
    assert_eq!(d.service_type, "Boarding (Nights)");
    assert_eq!(
        d.stay,
        stay(
            "2026-02-10T00:58:00Z",
            "2026-02-11T19:00:00Z",
            DatesFrom::Timestamps
        )
    );
    assert_eq!(
        (d.check_in_label.as_deref(), d.check_out_label.as_deref()),
        (Some("PM"), Some("AM"))
    );
    assert_eq!(d.pets, ["Biscuit", "Gravy & Co"], "primary first");
    assert_eq!(d.client.name.as_deref(), Some("Anne-Marie O'Neil"));
    assert_eq!(
        d.client.phone.as_deref(),
        Some("+14155550123"),
        "data-value before class"
    );
    assert_eq!(d.duration.as_deref(), Some("2 d"));
    assert_eq!(
        d.fields,
        fields(&[("breeds", "Beagle"), ("medications", "None")]),
        "the first pair of a label wins"
    );
    assert_eq!(d.notes, None);
    // pets-2: two price divs per service; the line's rate and quantity are
    // the first pet's, its amount the sum.
    let p = d.price.unwrap();
    assert_eq!(p.total_cents, 32000);
    assert_eq!(
        p.line_items,
        vec![
            LineItem {
                service: "Boarding (Nights)".into(),
                rate_cents: 6500,
                quantity_hundredths: 200,
                amount_cents: 24000,
                per_pet: vec![
                    PetPrice {
                        rate_cents: 6500,
                        quantity_hundredths: 200,
                        amount_cents: 13000
                    },
                    PetPrice {
                        rate_cents: 5500,
                        quantity_hundredths: 200,
                        amount_cents: 11000
                    },
                ],
            },
            LineItem {
                service: "Daycare Add-On Day".into(),
                rate_cents: 4000,
                quantity_hundredths: 100,
                amount_cents: 8000,
                per_pet: vec![
                    PetPrice {
                        rate_cents: 4000,
                        quantity_hundredths: 100,
                        amount_cents: 4000
                    };
                    2
                ],
            },
        ]
    );
    assert_eq!(
        d.classification,
        Classification::Boarding,
        "not every line is a day service"
    );
}

#[test]
fn each_title_date_form() {
    let cases = [
        (
            fixture!("detail_title_am.html"),
            "2/14-15am",
            ("2026-02-14T23:00:00Z", "2026-02-15T17:00:00Z"),
            (None, Some("AM")),
        ),
        (
            fixture!("detail_title_suffix.html"),
            "3/3-19 (Thur)",
            // 2 pm PST in, 10 am PDT out: the stay crosses the DST change.
            ("2026-03-03T22:00:00Z", "2026-03-19T17:00:00Z"),
            (Some("PM"), Some("AM")),
        ),
        (
            fixture!("detail_title_label.html"),
            "B/O Pepper 2/9PM-17",
            ("2026-02-10T02:00:00Z", "2026-02-17T19:00:00Z"),
            (Some("PM"), Some("AM")),
        ),
        (
            fixture!("detail_cross_month.html"),
            "2/28-3/5",
            // No #when-wrapper: local midnight of the title's days.
            ("2026-02-28T08:00:00Z", "2026-03-05T08:00:00Z"),
            (None, None),
        ),
    ];
    for (html, service, (check_in, check_out), labels) in cases {
        let d = detail(html);
        assert_eq!(d.service_type, service);
        assert_eq!(
            d.stay,
            stay(check_in, check_out, DatesFrom::Title),
            "{service}"
        );
        assert_eq!(
            (d.check_in_label.as_deref(), d.check_out_label.as_deref()),
            labels,
            "{service}"
        );
        assert_eq!(d.classification, Classification::Boarding, "{service}");
    }
    // The same-month form through the reference boarding: 2/13-18.
    let d = detail(fixture!("detail_boarding.html"));
    assert_eq!(d.stay.unwrap().dates_from, DatesFrom::Title);
    // Across months with a price: "Holiday Surcharge" is not a day service.
    let d = detail(fixture!("detail_cross_month.html"));
    let p = d.price.unwrap();
    assert_eq!(p.total_cents, 113_750);
    assert_eq!(p.line_items[1].service, "Holiday Surcharge");
    assert_eq!(p.line_items[1].amount_cents, 81_250);
    assert_eq!(
        detail(fixture!("detail_title_label.html")).price,
        None,
        "no fieldset: unknown"
    );
}

#[test]
fn a_stale_title_gives_way_to_the_timestamps() {
    let d = detail(fixture!("detail_stale_title.html"));
    assert_eq!(d.service_type, "2/5-7");
    assert_eq!(
        d.stay,
        stay(
            "2026-03-10T23:00:00Z",
            "2026-03-14T18:00:00Z",
            DatesFrom::StaleTitle
        )
    );
    // Exactly 20 days apart is not stale; 21 is.
    let at = |title: &str| {
        detail(&fixture!("detail_stale_title.html").replace("2/5-7", title))
            .stay
            .unwrap()
            .dates_from
    };
    assert_eq!(at("2/18-22"), DatesFrom::Title);
    assert_eq!(at("2/17-22"), DatesFrom::StaleTitle);
    assert_eq!(at("3/12-14"), DatesFrom::Title);
}

#[test]
fn bogus_timestamps_are_ignored() {
    let d = detail(fixture!("detail_bogus_timestamps.html"));
    assert_eq!(
        d.stay,
        stay(
            "2026-02-20T08:00:00Z",
            "2026-02-21T08:00:00Z",
            DatesFrom::Title
        )
    );
    assert_eq!(d.classification, Classification::Boarding);
    // Without dates in the title they cannot stand in.
    let msg = detail_err(&fixture!("detail_bogus_timestamps.html").replace("2/20-21", "Boarding"));
    assert!(
        msg.contains("no dates in the title `Boarding`") && msg.contains("more than 730 days"),
        "{msg}"
    );
}

#[test]
fn the_year_of_title_dates_follows_the_timestamps_or_the_window() {
    // A window in early January: a December title belongs to last year.
    let s = site();
    let jan = DetailContext {
        tz: Los_Angeles,
        window_start: NaiveDate::from_ymd_opt(2026, 1, 5).unwrap(),
    };
    let page = fixture!("detail_cross_month.html").replace("2/28-3/5", "12/28-1/3");
    let d = s.parse_detail(&page, &url("/schedule/a/X/1"), jan).unwrap();
    assert_eq!(
        d.stay,
        stay(
            "2025-12-28T08:00:00Z",
            "2026-01-03T08:00:00Z",
            DatesFrom::Title
        )
    );
}

#[test]
fn non_boardings_and_why() {
    let d = detail(fixture!("detail_daycare.html"));
    assert_eq!(
        not_boarding(&d),
        &NotBoarding::ServiceType {
            service_type: "DC:FT".into(),
            rule: "dc".into()
        }
    );
    assert_eq!(d.pets, ["Zoë"]);
    assert_eq!(
        d.stay,
        stay(
            "2026-02-09T17:00:00Z",
            "2026-02-10T01:00:00Z",
            DatesFrom::Timestamps
        ),
        "read when it can be"
    );

    for (service, rule) in [
        ("D/C M/T/W/TH", "d/c"),
        ("ADD Leo T/TH", "add"),
        ("Brinkley switch day", "switch day*"),
        ("mav back to 4 days", "back to #"),
        ("Initial Evaluation", "initial eval*"),
    ] {
        let page = fixture!("detail_boarding.html").replace("2/13-18", service);
        assert_eq!(
            not_boarding(&detail(&page)),
            &NotBoarding::ServiceType {
                service_type: service.into(),
                rule: rule.into()
            }
        );
    }

    // Busy: no status, pet, client or times, and still not an error.
    let d = detail(fixture!("detail_busy.html"));
    assert_eq!(
        not_boarding(&d),
        &NotBoarding::ServiceType {
            service_type: "Busy".into(),
            rule: "exactly `busy`".into()
        }
    );
    assert_eq!((d.status, d.stay, d.pets.len()), (None, None, 0));

    let d = detail(fixture!("detail_cancelled.html"));
    assert_eq!(
        not_boarding(&d),
        &NotBoarding::Cancelled {
            status: "Request canceled".into()
        }
    );
    assert_eq!(d.service_type, "2/10-12");

    let d = detail(fixture!("detail_day_services.html"));
    assert_eq!(
        not_boarding(&d),
        &NotBoarding::DayServicesOnly {
            services: vec!["Daycare Add-On Day".into(), "Pack Group".into()]
        }
    );

    let d = detail(fixture!("detail_short_stay.html"));
    assert_eq!(
        not_boarding(&d),
        &NotBoarding::ShortStay {
            minutes: 8 * 60,
            min_hours: 12
        }
    );
    assert_eq!(d.duration.as_deref(), Some("8 h"));
    // Exactly 12 hours is a boarding.
    let twelve = fixture!("detail_short_stay.html").replace("1770685200", "1770699600");
    assert_eq!(detail(&twelve).classification, Classification::Boarding);
}

#[test]
fn required_parts_missing_are_errors_naming_the_url_and_the_element() {
    let msg = detail_err(fixture!("detail_missing_when.html"));
    assert!(
        msg.contains(
            "missing check-in and check-out: no dates in the title `Boarding (Nights)` and no \
             `#when-wrapper`"
        ),
        "{msg}"
    );

    let boarding = fixture!("detail_boarding.html");
    let no_title = boarding
        .replace("<h1>2/13-18</h1>", "")
        .replace("<title>2/13-18 | A Girl and Your Dog</title>", "");
    let msg = detail_err(&no_title);
    assert!(
        msg.contains("missing service type (`h1`, or the `title` text)"),
        "{msg}"
    );

    let no_status = boarding.replace("appt-change-status", "appt-status");
    assert!(detail_err(&no_status).contains("missing status (`.appt-change-status`)"));

    let no_pet = boarding.replace("event-pet ", "pet-name ");
    assert!(detail_err(&no_pet).contains("missing pet (`.event-pet`)"));

    let no_client = boarding.replace("event-client", "client-name");
    assert!(detail_err(&no_client).contains("missing client (`.event-client`)"));

    let no_title_dates = boarding.replace("2/13-18", "Boarding");
    let unreadable = no_title_dates.replace(
        "data-end_scheduled=\"1771437600\"",
        "data-end_scheduled=\"soon\"",
    );
    let msg = detail_err(&unreadable);
    assert!(
        msg.contains("`#when-wrapper` data-end_scheduled `soon` is not Unix seconds"),
        "{msg}"
    );
    let without_attr = no_title_dates.replace(" data-start_scheduled=\"1770944400\"", "");
    let msg = detail_err(&without_attr);
    assert!(
        msg.contains("`#when-wrapper` has no data-start_scheduled"),
        "{msg}"
    );
    // The title's dates are enough when the timestamps are unreadable.
    let d = detail(&boarding.replace(
        "data-end_scheduled=\"1771437600\"",
        "data-end_scheduled=\"\"",
    ));
    assert_eq!(
        d.stay,
        stay(
            "2026-02-13T08:00:00Z",
            "2026-02-18T08:00:00Z",
            DatesFrom::Title
        )
    );
    // An impossible title date is named.
    let msg =
        detail_err(&fixture!("detail_missing_when.html").replace("Boarding (Nights)", "2/30-3/2"));
    assert!(
        msg.contains("the title's dates `2/30-3/2` are not real dates"),
        "{msg}"
    );
}

#[test]
fn price_blocks_that_do_not_read_are_errors() {
    let msg = detail_err(fixture!("detail_price_no_divs.html"));
    assert!(
        msg.contains("names 2 service(s) but has no price items (`div[class~='price']`)"),
        "{msg}"
    );
    let boarding = fixture!("detail_boarding.html");
    let no_rate = boarding.replace(" data-rate=\"2500\"", "");
    assert!(detail_err(&no_rate).contains("missing data-rate on the price item of `Bath`"));
    let bad_qty = boarding.replace("data-qty=\"100\"", "data-qty=\"one\"");
    assert!(detail_err(&bad_qty).contains("data-qty `one` of `Bath` is not a number"));
    let extra = boarding.replace("<div class=\"pricing\">", "<div class=\"pricing pets-2\">");
    assert!(detail_err(&extra)
        .contains("2 service name(s) and 2 price item(s); expected 2 per service"));
    let no_total = boarding.replace("toggle-field text quote", "toggle-field");
    assert!(detail_err(&no_total)
        .contains("missing price total (`a.toggle-field.text.quote` in `#confirm-price`)"));
    let no_amount = boarding.replace("Total $350", "Total (ask)");
    assert!(detail_err(&no_amount).contains("price total `Total (ask)` has no amount"));
    // The class word `price` is needed, not a class that starts with it.
    let renamed = boarding.replace("class=\"price p-7", "class=\"price-cell p-7");
    assert!(detail_err(&renamed).contains("no price items"));
}

#[test]
fn entities_whitespace_and_odd_markup() {
    let page = fixture!("detail_boarding.html")
        .replace("<h1>2/13-18</h1>", "<h1>\n   2/13-18&nbsp;\n </h1>")
        .replace("John Smith", "John&#32;&amp;&#x20;Jane\u{a0} Smith")
        .replace("Luna</span>", "Lu\u{0}na</span>");
    let d = detail(&page);
    assert_eq!(d.service_type, "2/13-18");
    assert_eq!(d.client.name.as_deref(), Some("John & Jane Smith"));
    assert_eq!(d.pets, ["Luna"], "the HTML parser drops NUL");
}

// -------------------------------------------------------------- payload ---

#[test]
fn the_boarding_payload_has_stable_names_and_values() {
    let d = detail(fixture!("detail_nights.html"));
    let p = boarding_payload("2049317", &d, Los_Angeles);
    assert_eq!(
        p,
        json!({
            "appointment_id": "2049317",
            "service_type": "Boarding (Nights)",
            "status": "Scheduled",
            "pets": ["Biscuit", "Gravy & Co"],
            "client": {
                "name": "Anne-Marie O'Neil",
                "email": "am.oneil@example.com",
                "phone": "+14155550123",
                "address": "9 Elm Ave, Oakland, CA 94601",
            },
            "check_in": "2026-02-10T00:58:00Z",
            "check_out": "2026-02-11T19:00:00Z",
            "check_in_day": "2026-02-09",
            "check_in_label": "PM",
            "check_out_label": "AM",
            "dates_from": "timestamps",
            "duration": "2 d",
            "price": {
                "total_cents": 32000,
                "line_items": [
                    {
                        "service": "Boarding (Nights)",
                        "rate_cents": 6500,
                        "quantity": 2.0,
                        "amount_cents": 24000,
                        "per_pet": [
                            {"rate_cents": 6500, "quantity": 2.0, "amount_cents": 13000},
                            {"rate_cents": 5500, "quantity": 2.0, "amount_cents": 11000},
                        ],
                    },
                    {
                        "service": "Daycare Add-On Day",
                        "rate_cents": 4000,
                        "quantity": 1.0,
                        "amount_cents": 8000,
                        "per_pet": [
                            {"rate_cents": 4000, "quantity": 1.0, "amount_cents": 4000},
                            {"rate_cents": 4000, "quantity": 1.0, "amount_cents": 4000},
                        ],
                    },
                ],
            },
            "notes": null,
            "fields": {"breeds": "Beagle", "medications": "None"},
        })
    );
    let p = boarding_payload(
        "X",
        &detail(fixture!("detail_title_label.html")),
        Los_Angeles,
    );
    assert_eq!(p["price"], json!(null));
    assert_eq!(p["check_in_day"], "2026-02-09", "6 pm Pacific on the 9th");
    assert_eq!(p["dates_from"], "title");
}

#[test]
fn the_payload_hash_follows_content_not_markup() {
    let hash =
        |html: &str| ContentHash::of_json(&boarding_payload("C1", &detail(html), Los_Angeles), &[]);
    let base = fixture!("detail_boarding.html");
    let noisy = base
        .replace(
            "<div class=\"note\">",
            "<div class=\"note extra\" data-x=\"1\">\n   ",
        )
        .replace(
            "class=\"mobile-contact\" data-value",
            "data-track=\"y\" class=\"mobile-contact\" data-value",
        );
    assert_eq!(hash(base), hash(base));
    assert_eq!(hash(base), hash(&noisy));
    for changed in [
        base.replace("Luna loves", "Luna hates"),
        base.replace("data-amount=\"325\"", "data-amount=\"330\""),
        base.replace("Golden Retriever", "Labrador"),
        base.replace(
            "<span class=\"event-pet pet-1\">Luna</span>",
            "<span class=\"event-pet pet-1\">Luna</span><span class=\"event-pet pet-2\">Max</span>",
        ),
    ] {
        assert_ne!(hash(base), hash(&changed));
    }
}

// ------------------------------------------------------------ selectors ---

#[test]
fn selectors_read_from_toml_with_defaults_and_unknown_keys_refused() {
    let toml = r#"
        service_type = "h1.appt-title"
        min_stay_hours = 10
        non_boarding_service_exact = ["busy", "blocked"]

        [field_labels]
        medications = "Meds"
    "#;
    let s: Selectors = toml::from_str(toml).unwrap();
    assert_eq!(s.service_type, "h1.appt-title");
    assert_eq!(s.min_stay_hours, 10);
    assert_eq!(s.non_boarding_service_exact, ["busy", "blocked"]);
    assert_eq!(s.field_labels.len(), 1);
    assert_eq!(
        s.status,
        Selectors::default().status,
        "unset keys keep the default"
    );
    s.check().unwrap();

    let e = toml::from_str::<Selectors>("servce_type = \"h1\"").unwrap_err();
    assert!(e.to_string().contains("servce_type"), "{e}");
    assert_eq!(
        toml::from_str::<Selectors>("").unwrap(),
        Selectors::default()
    );
}

#[test]
fn the_defaults_are_the_real_site() {
    let s = Selectors::default();
    assert_eq!(s.appointment_link, "a[href*='/schedule/a/']");
    assert_eq!(s.when, "#when-wrapper");
    assert_eq!(
        (s.when_start_attr.as_str(), s.when_end_attr.as_str()),
        ("data-start_scheduled", "data-end_scheduled")
    );
    assert_eq!(s.price_fieldset, "#confirm-price");
    assert_eq!(s.price_total, "a.toggle-field.text.quote");
    assert_eq!(s.field_labels.len(), 11);
    assert_eq!(s.field_labels["access_home"], "Access Home or Apartment");
    assert_eq!((s.min_stay_hours, s.stale_title_days), (12, 20));
}

#[test]
fn a_bad_setting_is_an_error_naming_its_key() {
    let bad = |s: Selectors, key: &str| {
        let e = Site::new(s).unwrap_err();
        assert!(e.to_string().contains(&format!("selectors.{key}")), "{e}");
        assert_eq!(SyncError::from(e).kind(), "invalid_input");
    };
    bad(
        Selectors {
            price_item: "div[[!".into(),
            ..Selectors::default()
        },
        "price_item",
    );
    bad(
        Selectors {
            card_markers: vec![".ok".into(), "::<>".into()],
            ..Selectors::default()
        },
        "card_markers[1]",
    );
    bad(
        Selectors {
            week_path: "/schedule/{year}".into(),
            ..Selectors::default()
        },
        "week_path",
    );
    bad(
        Selectors {
            day_service_patterns: vec!["day".into(), " ".into()],
            ..Selectors::default()
        },
        "day_service_patterns[1]",
    );
    bad(
        Selectors {
            when_start_attr: String::new(),
            ..Selectors::default()
        },
        "when_start_attr",
    );
    bad(
        Selectors {
            schedule_markers: vec![],
            ..Selectors::default()
        },
        "schedule_markers",
    );
    let e = Selectors {
        status: "".into(),
        ..Selectors::default()
    }
    .check()
    .unwrap_err();
    assert!(e.to_string().contains("selectors.status"), "{e}");
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
    assert!(s.is_cancelled("Request canceled"));
    assert!(!s.is_cancelled("6"));
}

// ------------------------------------------------------------ no panics ---

const SEEDS: &[&str] = &[
    fixture!("week.html"),
    fixture!("week_empty.html"),
    fixture!("detail_boarding.html"),
    fixture!("detail_nights.html"),
    fixture!("detail_cross_month.html"),
    fixture!("detail_day_services.html"),
    fixture!("login.html"),
];

/// A fixture with a slice cut out and some hostile text put in its place.
fn mutated() -> impl Strategy<Value = String> {
    (
        0..SEEDS.len(),
        any::<prop::sample::Index>(),
        0usize..400,
        prop_oneof![
            "[<>&;\"'/= a-z#0-9\\n\\t\u{0}-]{0,40}",
            prop::sample::select(vec![
                "</div>".to_string(),
                "<div class=\"price\" data-rate=\"-1e309\" data-qty=\"\" data-amount=\"9999999999999999999\">".to_string(),
                "<span class=\"service-name\">x</span>".to_string(),
                "data-start_scheduled=\"99999999999999999999\"".to_string(),
                "<h1>2/29-3/1</h1>".to_string(),
                "<h1>12/31-1</h1>".to_string(),
                "<div class=\"pets-0\">".to_string(),
                "<div class=\"pets-99999999999999999999\">".to_string(),
                "&#xD800;&#0;&amp".to_string(),
                "<a href=\"/schedule/a/%FF%00/12\">".to_string(),
                "<a class=\"next\" href=\"http://[::1\">".to_string(),
                "\u{202e}\u{feff}".to_string(),
            ]),
        ],
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
    for window_start in [
        NaiveDate::from_ymd_opt(2026, 2, 9).unwrap(),
        NaiveDate::MIN,
        NaiveDate::MAX,
    ] {
        let ctx = DetailContext {
            tz: Los_Angeles,
            window_start,
        };
        if let Ok(d) = s.parse_detail(html, &u, ctx) {
            let _ = boarding_payload("x", &d, Los_Angeles);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn parsers_never_panic_on_mutated_pages(html in mutated()) {
        exercise(&html);
    }

    #[test]
    fn parsers_never_panic_on_arbitrary_text(html in ".{0,300}") {
        exercise(&html);
        let _ = title_dates::find(&html).map(|t| t.resolve(NaiveDate::MAX));
        let _ = parse_fixed(&html, 2);
        let _ = parse_total(&html);
        if let Some(p) = rules::WordPattern::parse(&html) {
            let _ = p.is_in(&html);
        }
    }

    #[test]
    fn title_dates_never_panic_near_the_edges_of_time(
        m in 0u32..14, d in 0u32..33, e in 0u32..33, y in prop_oneof![Just(-262_143i32), Just(262_142i32), 1900i32..2100],
    ) {
        let title = format!("{m}/{d}-{e}");
        if let Some(anchor) = NaiveDate::from_ymd_opt(y, 6, 1) {
            let _ = title_dates::find(&title).map(|t| t.resolve(anchor));
        }
    }
}
