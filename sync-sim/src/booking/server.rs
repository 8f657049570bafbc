//! The HTTP side of the simulator: routes, sessions, faults and counters.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Form, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use chrono::NaiveDate;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::time::Instant;

use super::data::Appointment;
use super::html::{self, Noise};
use super::{BookingSimConfig, BookingSimStats, ExpiredStyle, Faults};

const SESSION_COOKIE: &str = "bk_session";
const PRE_COOKIE: &str = "bk_pre";
const MAX_PENDING_FORMS: usize = 10_000;

/// State shared by every request.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: BookingSimConfig,
    pub(crate) inner: Mutex<Inner>,
}

/// Mutable state, behind one lock (never held across an await).
#[derive(Debug)]
pub(crate) struct Inner {
    /// Sorted by id.
    pub(crate) appointments: Vec<Appointment>,
    /// Session id → when it expires.
    sessions: HashMap<String, Instant>,
    /// Pre-login cookie → (token, form id) of the form it was given.
    pending: HashMap<String, (String, String)>,
    rng: StdRng,
    pub(crate) stats: BookingSimStats,
    pub(crate) faults: Faults,
    last_request: Option<Instant>,
    minute: VecDeque<Instant>,
    expired_answers: u64,
}

impl Shared {
    pub(crate) fn new(config: BookingSimConfig, mut appointments: Vec<Appointment>) -> Self {
        appointments.sort_by_key(|a| a.id);
        let inner = Inner {
            appointments,
            sessions: HashMap::new(),
            pending: HashMap::new(),
            rng: StdRng::seed_from_u64(config.seed ^ 0x5eed_fa17),
            stats: BookingSimStats::default(),
            faults: config.faults,
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

impl Inner {
    pub(crate) fn find_mut(&mut self, id: u64) -> Option<&mut Appointment> {
        let i = self.appointments.binary_search_by_key(&id, |a| a.id).ok()?;
        self.appointments.get_mut(i)
    }

    fn find(&self, id: u64) -> Option<&Appointment> {
        let i = self.appointments.binary_search_by_key(&id, |a| a.id).ok()?;
        self.appointments.get(i)
    }

    pub(crate) fn expire_all(&mut self) {
        let now = Instant::now();
        self.sessions.values_mut().for_each(|t| *t = now);
    }

    /// Counts a request and checks it against the rate check.
    fn count(&mut self, config: &BookingSimConfig, route: &str) {
        self.stats.requests += 1;
        *self.stats.per_path.entry(route.to_string()).or_default() += 1;
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

    fn token(&mut self) -> String {
        format!("{:032x}", self.rng.gen::<u128>())
    }

    /// A fresh login form: a pre-login cookie and the form's hidden values.
    fn login_response(&mut self, status: StatusCode, error: Option<&str>) -> Response {
        if self.pending.len() >= MAX_PENDING_FORMS {
            self.pending.clear();
        }
        let pre = self.token();
        let nonce = self.token();
        let form_id = format!("login-{}", self.rng.gen_range(1000..9999));
        let body = html::login_page(&nonce, &form_id, error);
        self.pending.insert(pre.clone(), (nonce, form_id));
        let mut resp = html_response(status, body);
        set_cookie(&mut resp, &format!("{PRE_COOKIE}={pre}; Path=/; HttpOnly"));
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
        let sid = cookie(headers, SESSION_COOKIE);
        match sid.as_deref().and_then(|s| self.sessions.get(s).copied()) {
            Some(expires) if now < expires => return None,
            Some(_) => {
                if let Some(s) = &sid {
                    self.sessions.remove(s);
                }
                self.stats.session_expiries += 1;
            }
            None => {}
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
            let location = format!("/login?redirect_to={}", uri.path());
            if let Ok(v) = HeaderValue::from_str(&location) {
                resp.headers_mut().insert(header::LOCATION, v);
            }
            resp
        } else {
            self.login_response(StatusCode::OK, None)
        })
    }

    /// A 5xx page, when the dice say so.
    fn injected_error(&mut self) -> Option<Response> {
        let rate = self.faults.error_5xx_rate;
        if rate > 0.0 && self.rng.gen_bool(rate.min(1.0)) {
            self.stats.errors_injected += 1;
            let (status, text) = [
                (StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error"),
                (StatusCode::BAD_GATEWAY, "Bad Gateway"),
                (StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable"),
            ][self.rng.gen_range(0..3)];
            return Some(html_response(
                status,
                html::error_page(status.as_u16(), text),
            ));
        }
        None
    }

    /// The noise generator for one page (a borrowed RNG when noise is on).
    fn noise(&mut self) -> Noise<'_> {
        let on = self.faults.layout_noise;
        Noise::new(on.then_some(&mut self.rng))
    }

    /// A 200 page, perhaps truncated, and how long to delay it.
    fn page(&mut self, mut body: String) -> (Response, Option<Duration>) {
        let f = self.faults;
        if f.truncated_rate > 0.0 && self.rng.gen_bool(f.truncated_rate.min(1.0)) {
            self.stats.truncated_injected += 1;
            let len = body.len();
            let mut cut = self.rng.gen_range(len * 3 / 10..=len * 9 / 10);
            while !body.is_char_boundary(cut) {
                cut -= 1;
            }
            body.truncate(cut);
        }
        let delay = (f.slow_rate > 0.0 && self.rng.gen_bool(f.slow_rate.min(1.0))).then(|| {
            self.stats.slow_injected += 1;
            f.slow_delay
        });
        (html_response(StatusCode::OK, body), delay)
    }

    /// The seven days from `start`, each with the appointments shown on it.
    fn week(
        &self,
        config: &BookingSimConfig,
        start: NaiveDate,
    ) -> Vec<(NaiveDate, Vec<&Appointment>)> {
        let tz = config.tz;
        let days: Vec<NaiveDate> = start.iter_days().take(7).collect();
        let (first, last) = (days[0], days[days.len() - 1]);
        let mut shown: Vec<(&Appointment, NaiveDate, NaiveDate)> = self
            .appointments
            .iter()
            .filter(|a| !a.removed && (config.list_cancelled || !a.is_cancelled()))
            .map(|a| {
                let (from, to) = a.local_days(tz);
                (a, from, to)
            })
            .filter(|(_, from, to)| *from <= last && *to >= first)
            .collect();
        shown.sort_by_key(|(a, _, _)| (a.check_in, a.id));
        days.into_iter()
            .map(|day| {
                let on_day = shown
                    .iter()
                    .filter(|(_, from, to)| *from <= day && day <= *to)
                    .map(|(a, _, _)| *a)
                    .collect();
                (day, on_day)
            })
            .collect()
    }
}

fn html_response(status: StatusCode, body: String) -> Response {
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
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
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

fn not_found() -> Response {
    html_response(StatusCode::NOT_FOUND, html::error_page(404, "Not Found"))
}

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/login", get(login_form).post(login_submit))
        .route("/schedule", get(schedule_default))
        .route("/schedule/days-7/{y}/{m}/{d}", get(schedule_week))
        .route("/schedule/a/{id}/{ts}", get(detail))
        .fallback(fallback)
        .with_state(shared)
}

async fn fallback(State(s): State<Arc<Shared>>) -> Response {
    s.lock().count(&s.config, "other");
    not_found()
}

async fn login_form(State(s): State<Arc<Shared>>) -> Response {
    let mut inner = s.lock();
    inner.count(&s.config, "GET /login");
    inner.login_response(StatusCode::OK, None)
}

async fn login_submit(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let mut inner = s.lock();
    inner.count(&s.config, "POST /login");
    let expected = cookie(&headers, PRE_COOKIE).and_then(|pre| inner.pending.remove(&pre));
    let field = |name: &str| form.get(name).map(String::as_str);
    let token_ok = expected.is_some_and(|(nonce, form_id)| {
        field("_token") == Some(nonce.as_str()) && field("_form_id") == Some(form_id.as_str())
    });
    if !token_ok {
        inner.stats.login_failures += 1;
        return inner.login_response(
            StatusCode::OK,
            Some("Invalid security token. Please reload the page and try again."),
        );
    }
    let creds_ok = field("username") == Some(s.config.username.as_str())
        && field("password") == Some(s.config.password.as_str());
    if !creds_ok {
        inner.stats.login_failures += 1;
        return inner.login_response(StatusCode::OK, Some("Invalid username or password."));
    }
    inner.stats.logins += 1;
    let sid = inner.token();
    let expires = Instant::now() + s.config.session_ttl;
    inner.sessions.insert(sid.clone(), expires);
    let mut resp = html_response(StatusCode::FOUND, String::new());
    resp.headers_mut()
        .insert(header::LOCATION, HeaderValue::from_static("/schedule"));
    set_cookie(
        &mut resp,
        &format!("{SESSION_COOKIE}={sid}; Path=/; HttpOnly"),
    );
    set_cookie(&mut resp, &format!("{PRE_COOKIE}=; Path=/; Max-Age=0"));
    resp
}

/// Serves a page behind the session check and the faults; `render` builds
/// the body (or `None` for a 404).
async fn guarded_page(
    s: &Shared,
    route: &str,
    headers: &HeaderMap,
    uri: &Uri,
    render: impl FnOnce(&mut Inner, &BookingSimConfig) -> Option<String>,
) -> Response {
    let (resp, delay) = {
        let mut inner = s.lock();
        inner.count(&s.config, route);
        if let Some(resp) = inner.authorize(&s.config, headers, uri) {
            return resp;
        }
        if let Some(resp) = inner.injected_error() {
            return resp;
        }
        match render(&mut inner, &s.config) {
            Some(body) => inner.page(body),
            None => return not_found(),
        }
    };
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    resp
}

fn render_week(inner: &mut Inner, config: &BookingSimConfig, start: NaiveDate) -> String {
    // Render with an owned copy of the rows so the RNG can be borrowed.
    let week: Vec<(NaiveDate, Vec<Appointment>)> = inner
        .week(config, start)
        .into_iter()
        .map(|(d, appts)| (d, appts.into_iter().cloned().collect()))
        .collect();
    let borrowed: Vec<(NaiveDate, Vec<&Appointment>)> =
        week.iter().map(|(d, a)| (*d, a.iter().collect())).collect();
    html::week_page(start, &borrowed, config.tz, &mut inner.noise())
}

async fn schedule_default(State(s): State<Arc<Shared>>, headers: HeaderMap, uri: Uri) -> Response {
    guarded_page(&s, "GET /schedule", &headers, &uri, |inner, config| {
        Some(render_week(inner, config, config.start))
    })
    .await
}

async fn schedule_week(
    State(s): State<Arc<Shared>>,
    Path((y, m, d)): Path<(String, String, String)>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let start = match (y.parse::<i32>(), m.parse::<u32>(), d.parse::<u32>()) {
        (Ok(y), Ok(m), Ok(d)) => NaiveDate::from_ymd_opt(y, m, d),
        _ => None,
    };
    guarded_page(
        &s,
        "GET /schedule/days-7",
        &headers,
        &uri,
        |inner, config| start.map(|start| render_week(inner, config, start)),
    )
    .await
}

async fn detail(
    State(s): State<Arc<Shared>>,
    Path((id, _ts)): Path<(String, String)>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    guarded_page(&s, "GET /schedule/a", &headers, &uri, |inner, config| {
        let appt = id
            .parse::<u64>()
            .ok()
            .and_then(|id| inner.find(id))
            .filter(|a| !a.removed)?
            .clone();
        Some(html::detail_page(&appt, config.tz, &mut inner.noise()))
    })
    .await
}
