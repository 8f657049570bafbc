//! The HTTP side of the simulator: routes, sessions, faults and counters.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Body;
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use chrono::{Duration as ChronoDuration, NaiveDate, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::time::Instant;

use super::data::{Appointment, Mix, CANCELED};
use super::html::{self, Card, DetailPage, Layout, LoginForm, Noise, Pager, WeekPage};
use super::{
    BookingSimConfig, BookingSimStats, ExpiredStyle, Faults, Latency, PageFaults, ScheduleLayout,
};

/// Set by `GET /login` (and every login form): the pre-login session.
const SID_COOKIE: &str = "bk_sid";
/// Set by a successful `POST /login`.
const AUTH_COOKIE: &str = "bk_auth";
const MAX_FORMS: usize = 10_000;
const MAX_SESSIONS: usize = 10_000;
const BAD_TOKEN: &str = "Invalid security token. Please reload the page and try again.";
const BAD_LOGIN: &str = "The username or password you entered is incorrect.";
const EXPIRED: &str = "Your session has expired. Please log in again.";

/// State shared by every request.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: BookingSimConfig,
    pub(crate) inner: Mutex<Inner>,
}

#[derive(Debug)]
struct PendingForm {
    token: String,
    build_id: String,
}

#[derive(Debug)]
struct Session {
    sid: String,
    expires: Instant,
}

/// Mutable state, behind one lock (never held across an await).
#[derive(Debug)]
pub(crate) struct Inner {
    /// By id.
    pub(crate) appointments: BTreeMap<String, Appointment>,
    /// Pre-login session id → the login form it was last given (`None` once
    /// used).
    forms: HashMap<String, Option<PendingForm>>,
    /// Auth token → session.
    sessions: HashMap<String, Session>,
    rng: StdRng,
    pub(crate) stats: BookingSimStats,
    pub(crate) faults: Faults,
    pub(crate) page_faults: PageFaults,
    pub(crate) latency: Latency,
    last_request: Option<Instant>,
    minute: VecDeque<Instant>,
    expired_answers: u64,
}

impl Shared {
    pub(crate) fn new(config: BookingSimConfig, appointments: Vec<Appointment>) -> Self {
        let inner = Inner {
            appointments: appointments
                .into_iter()
                .map(|a| (a.id.clone(), a))
                .collect(),
            forms: HashMap::new(),
            sessions: HashMap::new(),
            rng: StdRng::seed_from_u64(config.seed ^ 0x5eed_fa17),
            stats: BookingSimStats::default(),
            faults: config.faults,
            page_faults: config.page_faults,
            latency: config.latency,
            last_request: None,
            minute: VecDeque::new(),
            expired_answers: 0,
        };
        Self {
            config,
            inner: Mutex::new(inner),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The route a request counts under.
fn route_of(method: &Method, path: &str) -> &'static str {
    let get = method == Method::GET || method == Method::HEAD;
    match path {
        "/login" if get => "GET /login",
        "/login" if method == Method::POST => "POST /login",
        "/schedule" if get => "GET /schedule",
        "/dashboard" if get => "GET /dashboard",
        p if get && p.starts_with("/schedule/days-7/") => "GET /schedule/days-7",
        p if get && p.starts_with("/schedule/a/") => "GET /schedule/a",
        _ => "other",
    }
}

fn roll(rng: &mut StdRng, p: f64) -> bool {
    p.is_finite() && p > 0.0 && rng.gen_bool(p.min(1.0))
}

impl Inner {
    pub(crate) fn reset_stats(&mut self) {
        self.stats = BookingSimStats::default();
    }

    pub(crate) fn expire_all(&mut self) {
        let now = Instant::now();
        self.sessions.values_mut().for_each(|s| s.expires = now);
    }

    /// Counts a request and checks it against the rate check.
    fn count(&mut self, config: &BookingSimConfig, route: &str) {
        let s = &mut self.stats;
        s.requests += 1;
        match route {
            "GET /login" => s.login_gets += 1,
            "POST /login" => s.login_posts += 1,
            "GET /schedule" | "GET /schedule/days-7" => s.schedule_requests += 1,
            "GET /schedule/a" => s.detail_requests += 1,
            _ => s.other_requests += 1,
        }
        *s.per_path.entry(route.to_string()).or_default() += 1;
        let now = Instant::now();
        if let Some(check) = config.rate_check {
            let mut breach = false;
            if let (Some(spacing), Some(last)) = (check.min_spacing, self.last_request) {
                breach |= now.duration_since(last) < spacing;
            }
            if let Some(max) = check.per_minute {
                while self
                    .minute
                    .front()
                    .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(60))
                {
                    self.minute.pop_front();
                }
                self.minute.push_back(now);
                breach |= self.minute.len() > max as usize;
            }
            if breach {
                self.stats.breaches += 1;
            }
        }
        self.last_request = Some(now);
    }

    fn latency_sample(&mut self) -> Duration {
        let (min, max) = (self.latency.min, self.latency.max);
        if max <= min {
            return min;
        }
        let lo = u64::try_from(min.as_nanos()).unwrap_or(u64::MAX);
        let hi = u64::try_from(max.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(self.rng.gen_range(lo..=hi))
    }

    fn token(&mut self) -> String {
        format!("{:032x}", self.rng.gen::<u128>())
    }

    /// A fresh login form bound to the request's pre-login session (or a
    /// new one).
    fn login_response(
        &mut self,
        config: &BookingSimConfig,
        sid: Option<String>,
        status: StatusCode,
        error: Option<&str>,
        notice: Option<&str>,
    ) -> Response {
        if self.forms.len() >= MAX_FORMS {
            self.forms.clear();
        }
        let sid = match sid {
            Some(s) if self.forms.contains_key(&s) => s,
            _ => self.token(),
        };
        let token = self.token();
        let build_id = format!("form-{}", &self.token()[..22]);
        let hidden = vec![
            ("_token".to_string(), token.clone()),
            ("form_build_id".to_string(), build_id.clone()),
            ("redirect_to".to_string(), "/schedule".to_string()),
        ];
        let variant = self.rng.gen();
        let body = html::login_page(&LoginForm {
            site: &config.site_name,
            hidden: &hidden,
            user_field: config.username_field.name(),
            password_field: &config.password_field,
            error,
            notice,
            variant,
        });
        self.forms
            .insert(sid.clone(), Some(PendingForm { token, build_id }));
        let mut resp = html_response(status, body);
        set_cookie(
            &mut resp,
            &format!("{SID_COOKIE}={sid}; Path=/; HttpOnly; SameSite=Lax"),
        );
        resp
    }

    /// `None` when the request carries a live session; otherwise the answer
    /// the site gives to a missing or expired one.
    fn authorize(
        &mut self,
        config: &BookingSimConfig,
        headers: &HeaderMap,
        uri: &Uri,
    ) -> Option<Response> {
        let now = Instant::now();
        let sid = cookie(headers, SID_COOKIE);
        let mut expired = false;
        if let Some(auth) = cookie(headers, AUTH_COOKIE) {
            if let Some(session) = self.sessions.get(&auth) {
                if now >= session.expires {
                    self.sessions.remove(&auth);
                    self.stats.session_expiries += 1;
                    expired = true;
                } else if !config.require_both_cookies
                    || sid.as_deref() == Some(session.sid.as_str())
                {
                    return None;
                }
            }
        }
        self.stats.unauthenticated += 1;
        self.expired_answers += 1;
        let redirect = match config.expired_style {
            ExpiredStyle::Redirect => true,
            ExpiredStyle::LoginFormIn200 => false,
            ExpiredStyle::Mixed => self.expired_answers % 2 == 1,
        };
        Some(if redirect {
            let mut resp = html_response(StatusCode::FOUND, String::new());
            let location = format!("/login?redirect_to={}", encode(uri.path()));
            if let Ok(v) = HeaderValue::from_str(&location) {
                resp.headers_mut().insert(header::LOCATION, v);
            }
            resp
        } else {
            let notice = expired.then_some(EXPIRED);
            self.login_response(config, sid, StatusCode::OK, None, notice)
        })
    }

    /// A 5xx page, when the dice say so.
    fn injected_error(&mut self, config: &BookingSimConfig) -> Option<Response> {
        if !roll(&mut self.rng, self.faults.error_5xx_rate) {
            return None;
        }
        self.stats.errors_injected += 1;
        let (status, text) = [
            (StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error"),
            (StatusCode::BAD_GATEWAY, "Bad Gateway"),
            (StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable"),
        ][self.rng.gen_range(0..3)];
        Some(html_response(
            status,
            html::error_page(&config.site_name, status.as_u16(), text),
        ))
    }

    /// A maintenance page, when the dice say so.
    fn maintenance(&mut self, config: &BookingSimConfig) -> Option<Response> {
        if !roll(&mut self.rng, self.page_faults.maintenance_rate) {
            return None;
        }
        self.stats.maintenance_injected += 1;
        Some(html_response(
            StatusCode::OK,
            html::maintenance_page(&config.site_name),
        ))
    }

    /// A 200 page, perhaps truncated, and how long to delay it.
    fn page(&mut self, mut body: String) -> (Response, Option<Duration>) {
        let f = self.faults;
        if roll(&mut self.rng, f.truncated_rate) && body.len() > 10 {
            self.stats.truncated_injected += 1;
            let len = body.len();
            let mut cut = self.rng.gen_range(len * 3 / 10..=len * 9 / 10);
            while !body.is_char_boundary(cut) {
                cut -= 1;
            }
            body.truncate(cut);
        }
        let delay = roll(&mut self.rng, f.slow_rate).then(|| {
            self.stats.slow_injected += 1;
            f.slow_delay
        });
        (html_response(StatusCode::OK, body), delay)
    }
}

fn html_response(status: StatusCode, body: String) -> Response {
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

fn set_cookie(resp: &mut Response, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"').to_string())
        .next_back()
}

/// Percent-encodes everything but unreserved characters.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn not_found(config: &BookingSimConfig) -> Response {
    html_response(
        StatusCode::NOT_FOUND,
        html::error_page(&config.site_name, 404, "Page Not Found"),
    )
}

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/login", get(login_form).post(login_submit))
        .route("/dashboard", get(dashboard))
        .route("/schedule", get(schedule_default))
        .route("/schedule/days-7/{y}/{m}/{d}", get(schedule_week))
        .route("/schedule/a/{id}", get(detail_without_ts))
        .route("/schedule/a/{id}/{ts}", get(detail))
        .fallback(fallback)
        .layer(middleware::from_fn_with_state(shared.clone(), count_layer))
        .with_state(shared)
}

/// Counts every request as it arrives (whatever the route does with it),
/// counts 404s, and holds every answer for the configured latency.
async fn count_layer(State(s): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    let route = route_of(req.method(), req.uri().path());
    let latency = {
        let mut inner = s.lock();
        inner.count(&s.config, route);
        inner.latency_sample()
    };
    let resp = next.run(req).await;
    if resp.status() == StatusCode::NOT_FOUND {
        s.lock().stats.not_found += 1;
    }
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    resp
}

async fn fallback(State(s): State<Arc<Shared>>) -> Response {
    not_found(&s.config)
}

async fn login_form(State(s): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let sid = cookie(&headers, SID_COOKIE);
    s.lock()
        .login_response(&s.config, sid, StatusCode::OK, None, None)
}

async fn login_submit(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    form: Result<Form<HashMap<String, String>>, FormRejection>,
) -> Response {
    let config = &s.config;
    let form = form.map(|Form(f)| f).unwrap_or_default();
    let mut inner = s.lock();
    let sid = cookie(&headers, SID_COOKIE);
    let pending = sid
        .as_ref()
        .and_then(|s| inner.forms.get_mut(s))
        .and_then(Option::take);
    let field = |name: &str| form.get(name).map(String::as_str);
    let token_ok = pending.is_some_and(|p| {
        field("_token") == Some(p.token.as_str())
            && field("form_build_id") == Some(p.build_id.as_str())
            && field("redirect_to").is_some()
    });
    if !token_ok {
        inner.stats.login_failures += 1;
        return inner.login_response(config, sid, StatusCode::OK, Some(BAD_TOKEN), None);
    }
    let creds_ok = field(config.username_field.name()) == Some(config.username.as_str())
        && field(&config.password_field) == Some(config.password.as_str());
    if !creds_ok {
        inner.stats.login_failures += 1;
        return inner.login_response(config, sid, StatusCode::OK, Some(BAD_LOGIN), None);
    }
    inner.stats.logins += 1;
    let now = Instant::now();
    if inner.sessions.len() >= MAX_SESSIONS {
        inner.sessions.retain(|_, v| v.expires > now);
        if inner.sessions.len() >= MAX_SESSIONS {
            inner.sessions.clear();
        }
    }
    let auth = inner.token();
    let expires = now
        .checked_add(config.session_ttl)
        .or_else(|| now.checked_add(Duration::from_secs(1 << 32)))
        .unwrap_or(now);
    inner.sessions.insert(
        auth.clone(),
        Session {
            sid: sid.unwrap_or_default(),
            expires,
        },
    );
    let location = if inner.stats.logins % 2 == 1 {
        "/schedule"
    } else {
        "/dashboard"
    };
    let mut resp = html_response(StatusCode::FOUND, String::new());
    resp.headers_mut()
        .insert(header::LOCATION, HeaderValue::from_static(location));
    set_cookie(
        &mut resp,
        &format!("{AUTH_COOKIE}={auth}; Path=/; HttpOnly; SameSite=Lax"),
    );
    set_cookie(
        &mut resp,
        &format!(
            "bk_last_login={}; Path=/",
            Utc::now().with_timezone(&config.tz).date_naive()
        ),
    );
    resp
}

/// Serves a page behind the session check and the faults; `render` builds
/// the body (or `None` for a 404).
async fn guarded_page(
    s: &Shared,
    headers: &HeaderMap,
    uri: &Uri,
    render: impl FnOnce(&mut Inner, &BookingSimConfig) -> Option<String>,
) -> Response {
    let (resp, delay) = {
        let mut inner = s.lock();
        if let Some(resp) = inner.authorize(&s.config, headers, uri) {
            return resp;
        }
        if let Some(resp) = inner.injected_error(&s.config) {
            return resp;
        }
        if let Some(resp) = inner.maintenance(&s.config) {
            return resp;
        }
        match render(&mut inner, &s.config) {
            Some(body) => inner.page(body),
            None => return not_found(&s.config),
        }
    };
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    resp
}

async fn dashboard(State(s): State<Arc<Shared>>, headers: HeaderMap, uri: Uri) -> Response {
    let mut inner = s.lock();
    if let Some(resp) = inner.authorize(&s.config, &headers, &uri) {
        return resp;
    }
    html_response(StatusCode::OK, html::dashboard_page(&s.config.site_name))
}

fn week_hash(seed: u64, start: NaiveDate) -> u64 {
    let days = start.signed_duration_since(NaiveDate::MIN).num_days() as u64;
    Mix::new(seed ^ days.wrapping_mul(0x9E37_79B9)).next()
}

fn render_week(
    inner: &mut Inner,
    config: &BookingSimConfig,
    start: NaiveDate,
    self_path: &str,
) -> Option<String> {
    let tz = config.tz;
    let last = start.checked_add_signed(ChronoDuration::days(6))?;
    let days: Vec<NaiveDate> = start.iter_days().take(7).collect();
    let unlinked = roll(&mut inner.rng, inner.page_faults.changed_layout_rate);
    if unlinked {
        inner.stats.changed_layout_injected += 1;
    }
    let h = week_hash(config.seed, start);
    let layout = match config.schedule_layout {
        ScheduleLayout::Grid => Layout::Grid,
        ScheduleLayout::Columns => Layout::Columns,
        ScheduleLayout::Agenda => Layout::Agenda,
        ScheduleLayout::Varied => [Layout::Grid, Layout::Columns, Layout::Agenda][(h % 3) as usize],
    };
    let pager = [Pager::ClassNext, Pager::RelNext, Pager::Bootstrap][((h >> 8) % 3) as usize];
    let data_last = config
        .start
        .checked_add_signed(ChronoDuration::days(i64::from(config.days.max(1)) - 1))
        .unwrap_or(config.start);
    let rate = config.self_next_rate;
    let self_next = (config.self_next_after_end && start > data_last)
        || (rate.is_finite() && rate > 0.0 && ((h >> 16) % 10_000) as f64 / 10_000.0 < rate);
    let next = start.checked_add_signed(ChronoDuration::days(7));
    let next_href = match next {
        Some(n) if !self_next => html::week_path(n),
        _ => self_path.to_string(),
    };
    let prev_href = start
        .checked_sub_signed(ChronoDuration::days(7))
        .map_or_else(|| self_path.to_string(), html::week_path);
    let Inner {
        appointments,
        rng,
        faults,
        ..
    } = inner;
    let mut per_day: Vec<(NaiveDate, Vec<Card<'_>>)> =
        days.iter().map(|d| (*d, Vec::new())).collect();
    for a in appointments.values() {
        if a.removed || (!config.list_cancelled && a.status.trim().eq_ignore_ascii_case(CANCELED)) {
            continue;
        }
        for (s, e) in a.occurrences(tz, start, last) {
            let from = s.with_timezone(&tz).date_naive().max(start);
            let to = e.with_timezone(&tz).date_naive().min(last);
            for (day, cards) in per_day.iter_mut() {
                if from <= *day && *day <= to.max(from) {
                    cards.push(Card {
                        a,
                        start: s,
                        end: e,
                    });
                }
            }
        }
    }
    for (_, cards) in per_day.iter_mut() {
        cards.sort_by(|x, y| (x.start, &x.a.id).cmp(&(y.start, &y.a.id)));
    }
    let page = WeekPage {
        site: &config.site_name,
        tz,
        start,
        layout,
        pager,
        next_href,
        prev_href,
        unlinked,
    };
    let mut noise = Noise::new(faults.layout_noise.then_some(rng));
    Some(html::week_page(&page, &per_day, &mut noise))
}

async fn schedule_default(State(s): State<Arc<Shared>>, headers: HeaderMap, uri: Uri) -> Response {
    let config = &s.config;
    let start = config
        .default_week_start
        .unwrap_or_else(|| Utc::now().with_timezone(&config.tz).date_naive());
    guarded_page(&s, &headers, &uri, |inner, config| {
        render_week(inner, config, start, "/schedule")
    })
    .await
}

/// A path number: digits only; with `strict`, no leading zero.
fn number<T: std::str::FromStr>(text: &str, strict: bool) -> Option<T> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if strict && text.len() > 1 && text.starts_with('0') {
        return None;
    }
    text.parse().ok()
}

async fn schedule_week(
    State(s): State<Arc<Shared>>,
    Path((y, m, d)): Path<(String, String, String)>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let strict = s.config.strict_week_paths;
    let start = match (
        number::<i32>(&y, strict),
        number(&m, strict),
        number(&d, strict),
    ) {
        (Some(y), Some(m), Some(d)) => NaiveDate::from_ymd_opt(y, m, d),
        _ => None,
    };
    let path = uri.path().to_string();
    guarded_page(&s, &headers, &uri, |inner, config| {
        start.and_then(|start| render_week(inner, config, start, &path))
    })
    .await
}

fn render_detail(
    inner: &mut Inner,
    config: &BookingSimConfig,
    id: &str,
    ts: Option<i64>,
) -> Option<String> {
    let priced = match inner.appointments.get(id) {
        Some(a) if !a.removed => a.pricing.as_ref().is_some_and(|p| !p.lines.is_empty()),
        _ => return None,
    };
    let drop_price_divs = priced && roll(&mut inner.rng, inner.page_faults.price_divs_missing_rate);
    if drop_price_divs {
        inner.stats.price_divs_dropped += 1;
    }
    let Inner {
        appointments,
        rng,
        faults,
        ..
    } = inner;
    let a = appointments.get(id)?;
    let (start, end) = a.occurrence_at(config.tz, ts);
    let page = DetailPage {
        site: &config.site_name,
        tz: config.tz,
        start,
        end,
        drop_price_divs,
        thousands: config.total_thousands_separator,
    };
    let mut noise = Noise::new(faults.layout_noise.then_some(rng));
    Some(html::detail_page(a, &page, &mut noise))
}

async fn detail(
    State(s): State<Arc<Shared>>,
    Path((id, ts)): Path<(String, String)>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    // The timestamp is digits; anything else is not a detail page.
    let ts = number::<i64>(&ts, false);
    guarded_page(&s, &headers, &uri, |inner, config| {
        ts.and_then(|ts| render_detail(inner, config, &id, Some(ts)))
    })
    .await
}

async fn detail_without_ts(
    State(s): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    guarded_page(&s, &headers, &uri, |inner, config| {
        render_detail(inner, config, &id, None)
    })
    .await
}
