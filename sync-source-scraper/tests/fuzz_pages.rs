//! Mutated and truncated real pages through the whole HTTP path of the
//! source (login, week page, detail pages): `Ok` or `Err`, never a panic.
//! The parsers' own property tests are in `src/site/tests.rs`; these feed
//! the same kind of damage through the source's pages (inside the core's
//! retry and session wrappers, as the engine calls it).

use std::cell::Cell;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::NaiveDate;
use chrono_tz::America::Los_Angeles;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use sync_core::{
    Authenticated, Batch, BatchSpan, FetchContext, MemoryStore, RateLimits, RetryPolicy, Retrying,
    Secret, Source, SourceExt, Span, Store,
};
use sync_source_scraper::{ScraperConfig, ScraperSource};
use url::Url;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const CASES: u32 = 256;

macro_rules! fixture {
    ($name:literal) => {
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/",
            $name
        ))
    };
}

/// Which page gets the damaged body.
#[derive(Clone, Copy, PartialEq)]
enum Damaged {
    Login,
    Week,
    Detail,
}

/// The site: real fixtures, except the damaged page, which answers with the
/// body in the cell.
#[derive(Clone)]
struct Site(Arc<Mutex<(Damaged, Vec<u8>)>>);

fn page(body: &[u8]) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(body.to_vec(), "text/html; charset=utf-8")
}

impl Respond for Site {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let (damaged, body) = self.0.lock().unwrap().clone();
        let path = req.url.path();
        let method = req.method.as_str();
        match (method, path) {
            ("GET", "/login") if damaged == Damaged::Login => page(&body),
            ("GET", "/login") => page(fixture!("login.html").as_bytes()),
            ("POST", "/login") => ResponseTemplate::new(302)
                .insert_header("location", "/schedule")
                .insert_header("set-cookie", "sess=xyz; Path=/; HttpOnly"),
            ("GET", p) if p.starts_with("/schedule/days-7/") => {
                if damaged == Damaged::Week {
                    page(&body)
                } else {
                    page(fixture!("week.html").as_bytes())
                }
            }
            ("GET", p) if p.starts_with("/schedule/a/") => {
                if damaged == Damaged::Detail {
                    page(&body)
                } else if p.starts_with("/schedule/a/2049317/") {
                    page(fixture!("detail_nights.html").as_bytes())
                } else if p.starts_with("/schedule/a/C63QgDC1/") {
                    page(fixture!("detail_daycare.html").as_bytes())
                } else if p.starts_with("/schedule/a/C63QgCnX/") {
                    page(fixture!("detail_cancelled.html").as_bytes())
                } else if p.starts_with("/schedule/a/C63QfyoF/") {
                    page(fixture!("detail_stale_title.html").as_bytes())
                } else {
                    page(fixture!("detail_boarding.html").as_bytes())
                }
            }
            _ => ResponseTemplate::new(404),
        }
    }
}

/// A page cut short, with bytes overwritten, or with markup spliced in.
fn damaged(base: &'static str) -> impl Strategy<Value = Vec<u8>> {
    let len = base.len();
    (
        0..4u8,
        0..len,
        prop::collection::vec(any::<u8>(), 0..24),
        prop::sample::select(vec![
            "<",
            ">",
            "</div>",
            "<div class=\"appointment\">",
            "<div class=\"price\" data-rate=\"x\">",
            "<span class=\"service-name\">Day</span>",
            "data-start_scheduled=\"99999999999999\"",
            "<h1>2/30-3/2</h1>",
            "<div class=\"pets-3\">",
            "&amp;",
            "&#xD800;",
            "\u{0}",
            "<a rel=\"next\" href=\"javascript:x\">",
            "2026-02-30 25:61",
            "$-1e309",
            "data-appointment_id=\"\"",
            "<!--",
            "]]>",
            "\u{202e}",
        ]),
    )
        .prop_map(move |(kind, at, bytes, fragment)| {
            let mut b = base.as_bytes().to_vec();
            match kind {
                0 => b.truncate(at),
                1 => {
                    for (i, x) in bytes.iter().enumerate() {
                        if let Some(slot) = b.get_mut(at + i) {
                            *slot = *x;
                        }
                    }
                }
                2 => {
                    let tail = b.split_off(at);
                    b.extend_from_slice(fragment.as_bytes());
                    b.extend_from_slice(&tail);
                }
                _ => {
                    // Drop a slice: a missing element or attribute.
                    let end = (at + bytes.len() * 8).min(b.len());
                    b.drain(at..end);
                }
            }
            b
        })
}

fn source(server: &MockServer) -> ScraperSource {
    let mut c = ScraperConfig::new(
        Url::parse(&server.uri()).unwrap(),
        "staff@example.com",
        Secret::new("pw-fuzz-1"),
        Los_Angeles,
    );
    c.limits = RateLimits::UNLIMITED;
    c.request_timeout = Duration::from_secs(5);
    ScraperSource::new(c).unwrap()
}

fn retry() -> RetryPolicy {
    RetryPolicy {
        max_retries: 1,
        initial_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(1),
        jitter: false,
        ..RetryPolicy::default()
    }
}

#[test]
fn damaged_pages_never_panic_the_source() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let site = Site(Arc::new(Mutex::new((Damaged::Week, Vec::new()))));
    let server = rt.block_on(async {
        let server = MockServer::start().await;
        Mock::given(wiremock::matchers::any())
            .respond_with(site.clone())
            .mount(&server)
            .await;
        server
    });
    let day = |d| NaiveDate::from_ymd_opt(2026, 2, d).unwrap();
    let batch = Batch::new(
        0,
        BatchSpan::Days {
            range: Span::new(day(9), day(10)).unwrap(),
            tz: Los_Angeles,
        },
    );
    let outcomes = [Cell::new(0u32), Cell::new(0u32)];
    let check = |which: Damaged, body: Vec<u8>| {
        *site.0.lock().unwrap() = (which, body);
        // A fresh source per case: no session or cache carried over.
        let source = source(&server);
        let ctx = FetchContext::new(source.stream().clone())
            .with_store(Arc::new(MemoryStore::new()) as Arc<dyn Store>);
        let stack = Authenticated::new(Retrying::new(&source, retry()));
        let got = rt.block_on(async {
            stack.login(&ctx).await?;
            stack.fetch_batch(&batch, &ctx).await
        });
        let slot = &outcomes[usize::from(got.is_ok())];
        slot.set(slot.get() + 1);
        Ok(())
    };

    // The real pages are read.
    check(Damaged::Week, fixture!("week.html").as_bytes().to_vec()).unwrap();
    assert_eq!(outcomes[1].get(), 1, "the real pages parse");

    let runner = || {
        TestRunner::new(Config {
            cases: CASES,
            failure_persistence: None,
            ..Config::default()
        })
    };
    let pages: [(Damaged, &'static str); 7] = [
        (Damaged::Week, fixture!("week.html")),
        (Damaged::Detail, fixture!("detail_boarding.html")),
        (Damaged::Detail, fixture!("detail_nights.html")),
        (Damaged::Detail, fixture!("detail_cross_month.html")),
        (Damaged::Detail, fixture!("detail_day_services.html")),
        (Damaged::Login, fixture!("login.html")),
        (Damaged::Week, fixture!("week_empty.html")),
    ];
    for (which, base) in pages {
        runner()
            .run(&damaged(base), |body| check(which, body))
            .unwrap();
    }
    runner()
        .run(&prop::collection::vec(any::<u8>(), 0..300), |body| {
            check(Damaged::Week, body)
        })
        .unwrap();
    let (errors, accepted) = (outcomes[0].get(), outcomes[1].get());
    eprintln!(
        "kennel page fuzz: {} fetches with a damaged page, {errors} errors, {accepted} accepted, \
         no panic",
        errors + accepted
    );
    assert!(
        errors > 0 && accepted > 1,
        "{errors} errors, {accepted} accepted"
    );
}
