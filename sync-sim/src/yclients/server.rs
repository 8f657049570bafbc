//! The HTTP side: routes, the request gate (counting, limits, faults,
//! authorisation) and the endpoint handlers.

// The error of every helper here is the HTTP answer itself; boxing it would
// only add noise on a test server.
#![allow(clippy::result_large_err)]

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Path, Query, State as AxState};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Map, Value};
use tokio::time::Instant;

use super::accounting::Accounting;
use super::data::{id_of, CompanyData, RecordRow};
use super::webhooks::{Hooks, WebhookEvent};
use super::{
    Faults, Latency, LimitScope, Resource, RetryAfter, SimLimits, SimStats, YclientsSimConfig,
};

const ACCEPT: &str = "application/vnd.yclients.v2+json";
const VISITS_PAGE: usize = 25;

/// State shared by every handler.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: YclientsSimConfig,
    /// `None`: the user manages every company served.
    managed: Option<BTreeSet<u64>>,
    pub(crate) hooks: Hooks,
    state: Mutex<SimState>,
}

/// Everything that changes, behind one lock.
#[derive(Debug)]
pub(crate) struct SimState {
    pub(crate) companies: BTreeMap<u64, CompanyData>,
    pub(crate) stats: SimStats,
    pub(crate) limits: SimLimits,
    pub(crate) faults: Faults,
    /// Accepted request times per budget key; never longer than the largest
    /// limit.
    pub(crate) windows: HashMap<String, VecDeque<Instant>>,
    pub(crate) user_token: String,
    /// Peaks and arrival times.
    pub(crate) accounting: Accounting,
    pub(crate) latency: Latency,
    /// Draws latencies only, so that turning latency on does not move the
    /// fault decisions.
    latency_rng: StdRng,
    pub(crate) clients_list_gone: bool,
    pub(crate) webhook_url: Option<reqwest::Url>,
    token_generation: u64,
    token_uses: u64,
    rng: StdRng,
    n_429: u64,
    base_user_token: String,
}

impl SimState {
    /// Invalidates the current user token and makes a new one.
    pub(crate) fn rotate_token(&mut self) {
        self.token_generation += 1;
        self.token_uses = 0;
        self.user_token = format!("{}-{}", self.base_user_token, self.token_generation);
    }
}

impl Shared {
    pub(crate) fn new(
        config: YclientsSimConfig,
        companies: BTreeMap<u64, CompanyData>,
        hooks: Hooks,
        webhook_url: Option<reqwest::Url>,
    ) -> Self {
        let state = SimState {
            companies,
            stats: SimStats::default(),
            limits: config.limits,
            faults: config.faults.clone(),
            windows: HashMap::new(),
            user_token: config.user_token.clone(),
            accounting: Accounting::new(),
            latency: config.latency,
            latency_rng: StdRng::seed_from_u64(config.seed ^ 0x1A7E_u64.rotate_left(24)),
            clients_list_gone: config.clients_list_gone,
            webhook_url,
            token_generation: 0,
            token_uses: 0,
            rng: StdRng::seed_from_u64(config.seed ^ 0x00FA_u64.rotate_left(40)),
            n_429: 0,
            base_user_token: config.user_token.clone(),
        };
        let managed = config
            .managed_companies
            .as_ref()
            .map(|ids| ids.iter().copied().collect());
        Self {
            config,
            managed,
            hooks,
            state: Mutex::new(state),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, SimState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn manages(&self, company: u64) -> bool {
        self.managed.as_ref().is_none_or(|m| m.contains(&company))
    }

    /// `GET /companies` items: the managed ones (`my`) or every one served.
    pub(crate) fn company_list(&self, s: &SimState, my: bool) -> Vec<Value> {
        s.companies
            .values()
            .filter(|c| !my || self.manages(c.id))
            .map(|c| json!({"id": c.id, "title": c.title, "timezone_name": c.tz.name()}))
            .collect()
    }

    /// Queues a webhook delivery of each event, if webhooks are on.
    pub(crate) fn emit(&self, s: &SimState, events: &[WebhookEvent]) {
        if let Some(url) = &s.webhook_url {
            for e in events {
                self.hooks.send(url, e);
            }
        }
    }
}

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/api/v1/auth", post(auth))
        .route(
            "/api/v1/company/{company}/clients/search",
            post(clients_search),
        )
        .route(
            "/api/v1/company/{company}/clients/visits/search",
            post(visits_search),
        )
        .route("/api/v1/clients/{company}", get(clients_list))
        .route("/api/v1/client/{company}/{client}", get(client_one))
        .route("/api/v1/records/{company}", get(records))
        .route("/api/v1/services/{company}", get(services_list))
        .route("/api/v1/services/{company}/{id}", get(services_one))
        .route("/api/v1/company/{company}/services", get(services_list))
        .route("/api/v1/company/{company}/services/{id}", get(services_one))
        .route("/api/v1/service_categories/{company}", get(categories_list))
        .route(
            "/api/v1/service_categories/{company}/{id}",
            get(categories_one),
        )
        .route(
            "/api/v1/company/{company}/service_categories",
            get(categories_list),
        )
        .route(
            "/api/v1/company/{company}/service_categories/{id}",
            get(categories_one),
        )
        .route("/api/v1/staff/{company}", get(staff_list))
        .route("/api/v1/staff/{company}/{id}", get(staff_one))
        .route("/api/v1/company/{company}/staff", get(staff_list))
        .route("/api/v1/company/{company}/staff/{id}", get(staff_one))
        .route("/api/v1/companies", get(companies))
        .fallback(other)
        .with_state(shared)
}

// ---------------------------------------------------------------- envelope

fn envelope_error(status: StatusCode, message: &str, errors: Option<Value>) -> Response {
    let mut meta = Map::new();
    meta.insert("message".into(), json!(message));
    if let Some(e) = errors {
        meta.insert("errors".into(), e);
    }
    let body = json!({"success": false, "data": null, "meta": meta});
    (status, axum::Json(body)).into_response()
}

fn validation_error(field: &str, message: &str) -> Response {
    envelope_error(
        StatusCode::UNPROCESSABLE_ENTITY,
        "Validation error",
        Some(json!({ field: [message] })),
    )
}

/// A successful answer; cut in the middle when the gate said so.
fn success(status: StatusCode, data: Value, meta: Value, truncate: bool) -> Response {
    let body = json!({"success": true, "data": data, "meta": meta}).to_string();
    let body = if truncate {
        let mut cut = body.len() / 2;
        while !body.is_char_boundary(cut) {
            cut -= 1;
        }
        body[..cut].to_string()
    } else {
        body
    };
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

// ---------------------------------------------------------------- the gate

/// What the handler needs to know once a request passed the gate.
struct Pass {
    truncate: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Needs {
    Partner,
    User,
}

struct AuthHeader {
    partner: Option<String>,
    user: Option<String>,
}

fn parse_authorization(headers: &HeaderMap) -> AuthHeader {
    let mut out = AuthHeader {
        partner: None,
        user: None,
    };
    let Some(raw) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return out;
    };
    for part in raw.split(',') {
        let part = part.trim();
        if let Some(t) = part.strip_prefix("Bearer ") {
            out.partner = Some(t.trim().to_string());
        } else if let Some(t) = part.strip_prefix("User ") {
            out.user = Some(t.trim().to_string());
        }
    }
    out
}

/// Seconds until one more request fits in every window, at least 1.
fn seconds_until_free(times: &VecDeque<Instant>, limits: &SimLimits, now: Instant) -> u64 {
    let mut wait = Duration::ZERO;
    for (len, max) in windows_of(limits) {
        let inside: Vec<&Instant> = times
            .iter()
            .filter(|&&t| now.duration_since(t) < len)
            .collect();
        if inside.len() >= max {
            let oldest = inside[inside.len() - max];
            wait = wait.max((*oldest + len).saturating_duration_since(now));
        }
    }
    wait.as_secs_f64().ceil().max(1.0) as u64
}

const SECOND: Duration = Duration::from_secs(1);

fn windows_of(limits: &SimLimits) -> Vec<(Duration, usize)> {
    let mut w = Vec::new();
    if let Some(n) = limits.per_second {
        w.push((SECOND, n.max(1) as usize));
    }
    if let Some(n) = limits.per_minute {
        w.push((Duration::from_secs(60), n.max(1) as usize));
    }
    w
}

/// Who shares a budget with this request.
fn scope_key(scope: LimitScope, peer: SocketAddr, headers: &HeaderMap) -> String {
    match scope {
        LimitScope::PerIp => peer.ip().to_string(),
        LimitScope::PerToken => headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string(),
    }
}

/// Counts the request, then enforces (in order) the limits, injected 429 and
/// 5xx, the `Accept` header, the tokens and (for [`Needs::User`]) access to
/// the company. Every answer, refusals included, waits for the latency; the
/// request is counted in the windows at its arrival, before that wait.
async fn gate(
    shared: &Shared,
    peer: SocketAddr,
    headers: &HeaderMap,
    endpoint: &'static str,
    needs: Needs,
    company: Option<&str>,
) -> Result<Pass, Response> {
    let (wait, outcome) = gate_now(shared, peer, headers, endpoint, needs, company);
    if !wait.is_zero() {
        tokio::time::sleep(wait).await;
    }
    outcome
}

/// The decision of [`gate`] and how long to wait before answering.
fn gate_now(
    shared: &Shared,
    peer: SocketAddr,
    headers: &HeaderMap,
    endpoint: &'static str,
    needs: Needs,
    company: Option<&str>,
) -> (Duration, Result<Pass, Response>) {
    let mut s = shared.lock();
    let s = &mut *s;
    let now = Instant::now();
    s.stats.requests += 1;
    *s.stats
        .per_endpoint
        .entry(endpoint.to_string())
        .or_default() += 1;
    if let Some(id) = company.and_then(|c| c.parse::<u64>().ok()) {
        *s.stats.per_company.entry(id).or_default() += 1;
    }
    let latency = s.latency.sample(&mut s.latency_rng);
    maybe_change_data(shared, s);

    // Limits, by arrival time.
    let key = scope_key(s.limits.scope, peer, headers);
    let windows = windows_of(&s.limits);
    let mut refused = None;
    if !windows.is_empty() {
        let longest = windows.iter().map(|w| w.0).max().unwrap_or_default();
        let cap = windows.iter().map(|w| w.1).max().unwrap_or(1);
        let times = s.windows.entry(key.clone()).or_default();
        while times
            .front()
            .is_some_and(|&t| now.duration_since(t) >= longest)
        {
            times.pop_front();
        }
        let full: Vec<Duration> = windows
            .iter()
            .filter(|&&(len, max)| {
                times
                    .iter()
                    .filter(|&&t| now.duration_since(t) < len)
                    .count()
                    >= max
            })
            .map(|w| w.0)
            .collect();
        if full.is_empty() {
            times.push_back(now);
            while times.len() > cap {
                times.pop_front();
            }
        } else {
            refused = Some(seconds_until_free(times, &s.limits, now));
            s.stats.limit_breaches += 1;
            for len in full {
                if len == SECOND {
                    s.stats.breaches_per_second += 1;
                } else {
                    s.stats.breaches_per_minute += 1;
                }
            }
        }
    }
    s.accounting
        .arrive(&mut s.stats.peaks, &key, now, refused.is_none());
    if let Some(wait) = refused {
        return (latency, Err(too_many(s, Some(wait))));
    }
    let (extra, outcome) = checks(shared, s, headers, needs, company);
    (latency + extra, outcome)
}

/// Everything after the limits: injected faults, request shape, credentials,
/// access; and the slow-answer delay of a request that passes.
fn checks(
    shared: &Shared,
    s: &mut SimState,
    headers: &HeaderMap,
    needs: Needs,
    company: Option<&str>,
) -> (Duration, Result<Pass, Response>) {
    // Injected faults.
    if s.faults.random_429_rate > 0.0 && s.rng.gen_bool(s.faults.random_429_rate.min(1.0)) {
        return (Duration::ZERO, Err(too_many(s, Some(1))));
    }
    if s.faults.error_5xx_rate > 0.0 && s.rng.gen_bool(s.faults.error_5xx_rate.min(1.0)) {
        s.stats.responses_5xx += 1;
        let status = [
            StatusCode::INTERNAL_SERVER_ERROR,
            StatusCode::BAD_GATEWAY,
            StatusCode::SERVICE_UNAVAILABLE,
        ][s.rng.gen_range(0..3)];
        return (
            Duration::ZERO,
            Err((status, "<html><body>temporarily unavailable</body></html>").into_response()),
        );
    }
    let refuse = |s: &mut SimState, status: StatusCode, message: &str| {
        if status == StatusCode::UNAUTHORIZED {
            s.stats.responses_401 += 1;
        } else {
            s.stats.responses_4xx += 1;
        }
        (Duration::ZERO, Err(envelope_error(status, message, None)))
    };

    // Request shape and credentials.
    let accept_ok = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains(ACCEPT));
    if shared.config.require_accept_header && !accept_ok {
        return refuse(
            s,
            StatusCode::BAD_REQUEST,
            "Accept header must be application/vnd.yclients.v2+json",
        );
    }
    let auth = parse_authorization(headers);
    if auth.partner.as_deref() != Some(shared.config.partner_token.as_str()) {
        return refuse(s, StatusCode::UNAUTHORIZED, "Partner authentication failed");
    }
    if needs == Needs::User {
        if auth.user.as_deref() != Some(s.user_token.as_str()) {
            return refuse(s, StatusCode::UNAUTHORIZED, "User authentication failed");
        }
        s.token_uses += 1;
        if let Some(n) = s.faults.revoke_token_after_requests {
            if s.token_uses > n {
                s.rotate_token();
                return refuse(s, StatusCode::UNAUTHORIZED, "User token revoked");
            }
        }
        if let Some(raw) = company {
            let known = raw
                .parse::<u64>()
                .ok()
                .is_some_and(|id| s.companies.contains_key(&id) && shared.manages(id));
            if !known {
                return refuse(s, StatusCode::FORBIDDEN, "No access to the company");
            }
        }
    }

    let slow = if s.faults.slow_rate > 0.0 && s.rng.gen_bool(s.faults.slow_rate.min(1.0)) {
        s.faults.slow_delay
    } else {
        Duration::ZERO
    };
    let truncate =
        s.faults.truncated_rate > 0.0 && s.rng.gen_bool(s.faults.truncated_rate.min(1.0));
    if truncate {
        s.stats.truncated += 1;
    }
    (slow, Ok(Pass { truncate }))
}

fn too_many(s: &mut SimState, wait_secs: Option<u64>) -> Response {
    s.stats.responses_429 += 1;
    s.n_429 += 1;
    let send = match s.limits.retry_after {
        RetryAfter::Never => false,
        RetryAfter::Always => true,
        RetryAfter::EveryNth(n) => n > 0 && s.n_429.is_multiple_of(u64::from(n)),
    };
    let mut resp = envelope_error(StatusCode::TOO_MANY_REQUESTS, "Too many requests", None);
    if let (true, Some(w)) = (send, wait_secs) {
        if let Ok(v) = HeaderValue::from_str(&w.to_string()) {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
    }
    resp
}

fn maybe_change_data(shared: &Shared, s: &mut SimState) {
    let Some(change) = s.faults.change_during_sync else {
        return;
    };
    if change.every_requests == 0 || !s.stats.requests.is_multiple_of(change.every_requests) {
        return;
    }
    let now = Utc::now();
    let hooks_on = s.webhook_url.is_some();
    let rng = &mut s.rng;
    let Some(c) = s.companies.values_mut().next() else {
        return;
    };
    let before = if hooks_on {
        c.deleted_records()
    } else {
        Default::default()
    };
    let ids = c.change_records(change.fraction, rng, now);
    if hooks_on {
        let events = c.record_events(&ids, &before);
        shared.emit(s, &events);
    }
}

fn count_4xx(shared: &Shared) {
    shared.lock().stats.responses_4xx += 1;
}

// ---------------------------------------------------------------- parsing

fn params(q: Vec<(String, String)>) -> HashMap<String, String> {
    q.into_iter().collect()
}

fn parse_u64(p: &HashMap<String, String>, name: &str, default: u64) -> Result<u64, Response> {
    match p.get(name) {
        None => Ok(default),
        Some(v) => v
            .parse::<u64>()
            .map_err(|_| validation_error(name, "must be a non-negative integer")),
    }
}

fn parse_day(p: &HashMap<String, String>, name: &str) -> Result<Option<NaiveDate>, Response> {
    match p.get(name) {
        None => Ok(None),
        Some(v) if v.is_empty() => Ok(None),
        Some(v) => NaiveDate::parse_from_str(v, "%Y-%m-%d")
            .map(Some)
            .map_err(|_| validation_error(name, "must be a date YYYY-MM-DD")),
    }
}

/// ISO 8601 with or without an offset; without one, local time in `tz`.
fn parse_instant(text: &str, tz: Tz) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    if let Ok(t) = DateTime::<FixedOffset>::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%z") {
        return Some(t.with_timezone(&Utc));
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M"] {
        if let Ok(n) = NaiveDateTime::parse_from_str(text, fmt) {
            return tz
                .from_local_datetime(&n)
                .earliest()
                .map(|t| t.with_timezone(&Utc));
        }
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| {
            tz.from_local_datetime(&d.and_time(chrono::NaiveTime::MIN))
                .earliest()
                .map(|t| t.with_timezone(&Utc))
        })
}

fn parse_instant_param(
    p: &HashMap<String, String>,
    name: &str,
    tz: Tz,
) -> Result<Option<DateTime<Utc>>, Response> {
    match p.get(name) {
        None => Ok(None),
        Some(v) if v.is_empty() => Ok(None),
        Some(v) => parse_instant(v, tz)
            .map(Some)
            .ok_or_else(|| validation_error(name, "must be an ISO 8601 date and time")),
    }
}

fn flag(p: &HashMap<String, String>, name: &str) -> bool {
    matches!(p.get(name).map(String::as_str), Some("1" | "true"))
}

fn parse_body(body: &Bytes) -> Result<Map<String, Value>, Response> {
    if body.is_empty() {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(envelope_error(
            StatusCode::BAD_REQUEST,
            "Request body must be a JSON object",
            None,
        )),
    }
}

fn company_id(raw: &str) -> u64 {
    raw.parse().unwrap_or(0)
}

/// The company a request names (the gate already checked access).
fn company_of<'a>(s: &'a SimState, raw: &str) -> Result<&'a CompanyData, Response> {
    s.companies
        .get(&company_id(raw))
        .ok_or_else(|| envelope_error(StatusCode::FORBIDDEN, "No access to the company", None))
}

/// Items before page `page` (from 1) of `size` items; saturates instead of
/// overflowing on huge numbers.
fn offset(page: u64, size: u64) -> usize {
    usize::try_from(page.saturating_sub(1).saturating_mul(size)).unwrap_or(usize::MAX)
}

// ---------------------------------------------------------------- handlers

type St = AxState<Arc<Shared>>;
type Peer = ConnectInfo<SocketAddr>;

async fn auth(
    AxState(shared): St,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let pass = match gate(&shared, peer, &headers, "auth", Needs::Partner, None).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let body = match parse_body(&body) {
        Ok(b) => b,
        Err(r) => {
            count_4xx(&shared);
            return r;
        }
    };
    let login = body.get("login").and_then(Value::as_str);
    let password = body.get("password").and_then(Value::as_str);
    if login.is_none() || password.is_none() {
        count_4xx(&shared);
        return validation_error("login", "login and password are required");
    }
    let mut s = shared.lock();
    if login != Some(shared.config.login.as_str())
        || password != Some(shared.config.password.as_str())
    {
        s.stats.responses_401 += 1;
        return envelope_error(
            StatusCode::UNAUTHORIZED,
            "Incorrect login or password",
            None,
        );
    }
    s.stats.logins += 1;
    let data = json!({
        "id": 1,
        "user_token": s.user_token,
        "name": "Owner",
        "phone": "79000000000",
        "login": shared.config.login,
        "email": shared.config.login,
        "avatar": "",
    });
    success(StatusCode::CREATED, data, json!([]), pass.truncate)
}

async fn clients_search(
    AxState(shared): St,
    ConnectInfo(peer): Peer,
    Path(company): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let pass = match gate(
        &shared,
        peer,
        &headers,
        "clients_search",
        Needs::User,
        Some(&company),
    )
    .await
    {
        Ok(p) => p,
        Err(r) => return r,
    };
    let result = (|| {
        let body = parse_body(&body)?;
        let int = |name: &str, default: u64| -> Result<u64, Response> {
            match body.get(name) {
                None | Some(Value::Null) => Ok(default),
                Some(v) => v
                    .as_u64()
                    .ok_or_else(|| validation_error(name, "must be a positive integer")),
            }
        };
        let page = int("page", 1)?;
        let page_size = int("page_size", 25)?;
        if page == 0 {
            return Err(validation_error("page", "must be at least 1"));
        }
        if page_size == 0 || page_size > u64::from(shared.config.max_clients_page_size) {
            return Err(validation_error(
                "page_size",
                &format!(
                    "must be between 1 and {}",
                    shared.config.max_clients_page_size
                ),
            ));
        }
        let fields: Vec<String> = match body.get("fields") {
            None | Some(Value::Null) => vec!["id".into()],
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect(),
            Some(_) => return Err(validation_error("fields", "must be a list of field names")),
        };
        if body
            .get("filters")
            .and_then(Value::as_array)
            .is_some_and(|f| !f.is_empty())
        {
            return Err(validation_error(
                "filters",
                "filters are not supported by the simulator",
            ));
        }
        let order_by = body.get("order_by").and_then(Value::as_str).unwrap_or("id");
        let desc = body.get("order_by_direction").and_then(Value::as_str) == Some("desc");
        let s = shared.lock();
        let c = company_of(&s, &company)?;
        let mut rows: Vec<&super::data::ClientRow> = c.clients.iter().collect();
        match order_by {
            "id" => {}
            "name" => rows.sort_by(|a, b| {
                let n =
                    |r: &super::data::ClientRow| r.value["name"].as_str().unwrap_or("").to_string();
                n(a).cmp(&n(b)).then(a.id.cmp(&b.id))
            }),
            "last_change_date" => rows.sort_by_key(|r| (r.last_change, r.id)),
            _ => return Err(validation_error("order_by", "unknown order")),
        }
        if desc {
            rows.reverse();
        }
        let total = rows.len();
        let start = offset(page, page_size);
        let data: Vec<Value> = rows
            .iter()
            .skip(start)
            .take(page_size as usize)
            .map(|r| {
                let mut out = Map::new();
                for f in &fields {
                    if let Some(v) = r.value.get(f) {
                        out.insert(f.clone(), v.clone());
                    }
                }
                Value::Object(out)
            })
            .collect();
        Ok(success(
            StatusCode::OK,
            Value::Array(data),
            json!({"total_count": total}),
            pass.truncate,
        ))
    })();
    result.unwrap_or_else(|r| {
        count_4xx(&shared);
        r
    })
}

async fn clients_list(
    AxState(shared): St,
    ConnectInfo(peer): Peer,
    Path(company): Path<String>,
    Query(q): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Response {
    if shared.lock().clients_list_gone {
        // As an unknown path: the partner token is checked, nothing else.
        if let Err(r) = gate(
            &shared,
            peer,
            &headers,
            "clients_list",
            Needs::Partner,
            Some(&company),
        )
        .await
        {
            return r;
        }
        count_4xx(&shared);
        return envelope_error(StatusCode::NOT_FOUND, "Not found", None);
    }
    let pass = match gate(
        &shared,
        peer,
        &headers,
        "clients_list",
        Needs::User,
        Some(&company),
    )
    .await
    {
        Ok(p) => p,
        Err(r) => return r,
    };
    let result = (|| {
        let p = params(q);
        let page = parse_u64(&p, "page", 1)?.max(1);
        let count = parse_u64(&p, "count", 20)?;
        let max = u64::from(shared.config.max_clients_list_count);
        if count == 0 || count > max {
            return Err(validation_error(
                "count",
                &format!("must be between 1 and {max}"),
            ));
        }
        let s = shared.lock();
        let c = company_of(&s, &company)?;
        let after = parse_instant_param(&p, "changed_after", c.tz)?;
        let before = parse_instant_param(&p, "changed_before", c.tz)?;
        let rows: Vec<&Value> = c
            .clients
            .iter()
            .filter(|r| after.is_none_or(|a| r.last_change >= a))
            .filter(|r| before.is_none_or(|b| r.last_change <= b))
            .map(|r| &r.value)
            .collect();
        let total = rows.len();
        let data: Vec<Value> = rows
            .into_iter()
            .skip(offset(page, count))
            .take(count as usize)
            .cloned()
            .collect();
        Ok(success(
            StatusCode::OK,
            Value::Array(data),
            json!({"page": page, "total_count": total}),
            pass.truncate,
        ))
    })();
    result.unwrap_or_else(|r| {
        count_4xx(&shared);
        r
    })
}

async fn client_one(
    AxState(shared): St,
    ConnectInfo(peer): Peer,
    Path((company, client)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let pass = match gate(
        &shared,
        peer,
        &headers,
        "client",
        Needs::User,
        Some(&company),
    )
    .await
    {
        Ok(p) => p,
        Err(r) => return r,
    };
    let found = {
        let s = shared.lock();
        let id = client.parse::<i64>().ok();
        s.companies
            .get(&company_id(&company))
            .zip(id)
            .and_then(|(c, id)| c.find(Resource::Client, id))
    };
    match found {
        Some(v) => success(StatusCode::OK, v, json!([]), pass.truncate),
        None => {
            count_4xx(&shared);
            envelope_error(StatusCode::NOT_FOUND, "Client not found", None)
        }
    }
}

async fn records(
    AxState(shared): St,
    ConnectInfo(peer): Peer,
    Path(company): Path<String>,
    Query(q): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Response {
    let pass = match gate(
        &shared,
        peer,
        &headers,
        "records",
        Needs::User,
        Some(&company),
    )
    .await
    {
        Ok(p) => p,
        Err(r) => return r,
    };
    let result = (|| {
        let p = params(q);
        let page = parse_u64(&p, "page", 1)?;
        if page == 0 {
            return Err(validation_error("page", "must be at least 1"));
        }
        let count = parse_u64(&p, "count", 50)?;
        let max = u64::from(shared.config.max_records_count);
        if count == 0 || count > max {
            return Err(validation_error(
                "count",
                &format!("must be between 1 and {max}"),
            ));
        }
        let start = parse_day(&p, "start_date")?;
        let end = parse_day(&p, "end_date")?;
        let c_start = parse_day(&p, "c_start_date")?;
        let c_end = parse_day(&p, "c_end_date")?;
        let client_id = match p.get("client_id") {
            Some(v) => Some(
                v.parse::<i64>()
                    .map_err(|_| validation_error("client_id", "must be an integer"))?,
            ),
            None => None,
        };
        let staff_id = match p.get("staff_id") {
            Some(v) => Some(
                v.parse::<i64>()
                    .map_err(|_| validation_error("staff_id", "must be an integer"))?,
            ),
            None => None,
        };
        let with_deleted = flag(&p, "with_deleted");
        let s = shared.lock();
        let c = company_of(&s, &company)?;
        let after = parse_instant_param(&p, "changed_after", c.tz)?;
        let before = parse_instant_param(&p, "changed_before", c.tz)?;
        let keep = |r: &&RecordRow| {
            (with_deleted || !r.deleted)
                && start.is_none_or(|d| r.date >= d)
                && end.is_none_or(|d| r.date <= d)
                && c_start.is_none_or(|d| r.created_day >= d)
                && c_end.is_none_or(|d| r.created_day <= d)
                && after.is_none_or(|a| r.last_change >= a)
                && before.is_none_or(|b| r.last_change <= b)
                && client_id.is_none_or(|id| r.client_id == Some(id))
                && staff_id.is_none_or(|id| r.staff_id == id)
        };
        let total = c.records.iter().filter(keep).count();
        let data: Vec<Value> = c
            .records
            .iter()
            .filter(keep)
            .skip(offset(page, count))
            .take(count as usize)
            .map(|r| r.value.clone())
            .collect();
        Ok(success(
            StatusCode::OK,
            Value::Array(data),
            json!({"page": page, "total_count": total}),
            pass.truncate,
        ))
    })();
    result.unwrap_or_else(|r| {
        count_4xx(&shared);
        r
    })
}

async fn visits_search(
    AxState(shared): St,
    ConnectInfo(peer): Peer,
    Path(company): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let pass = match gate(
        &shared,
        peer,
        &headers,
        "visits_search",
        Needs::User,
        Some(&company),
    )
    .await
    {
        Ok(p) => p,
        Err(r) => return r,
    };
    let result = (|| {
        let body = parse_body(&body)?;
        let day = |name: &str| -> Result<Option<NaiveDate>, Response> {
            match body.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => NaiveDate::parse_from_str(s, "%Y-%m-%d")
                    .map(Some)
                    .map_err(|_| validation_error(name, "must be a date YYYY-MM-DD")),
                Some(_) => Err(validation_error(name, "must be a date YYYY-MM-DD")),
            }
        };
        let from = day("from")?;
        let to = day("to")?;
        let attendance = body.get("attendance").and_then(Value::as_i64);
        let s = shared.lock();
        let c = company_of(&s, &company)?;
        let client_id = match (body.get("client_id"), body.get("client_phone")) {
            (Some(Value::Number(n)), _) => n
                .as_i64()
                .ok_or_else(|| validation_error("client_id", "must be an integer"))?,
            (_, Some(Value::String(phone))) if !phone.is_empty() => {
                let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
                c.clients
                    .iter()
                    .find(|r| {
                        let p = match &r.value["phone"] {
                            Value::String(s) => s.chars().filter(char::is_ascii_digit).collect(),
                            Value::Number(n) => n.to_string(),
                            _ => String::new(),
                        };
                        !p.is_empty() && p == digits
                    })
                    .map(|r| r.id)
                    .ok_or_else(|| {
                        envelope_error(StatusCode::NOT_FOUND, "Client not found", None)
                    })?
            }
            _ => {
                return Err(validation_error(
                    "client_id",
                    "client_id or client_phone is required",
                ))
            }
        };
        if c.clients
            .binary_search_by_key(&client_id, |r| r.id)
            .is_err()
        {
            return Err(envelope_error(
                StatusCode::NOT_FOUND,
                "Client not found",
                None,
            ));
        }
        // Newest first.
        let mut items: Vec<&RecordRow> = c
            .records
            .iter()
            .filter(|r| r.client_id == Some(client_id) && !r.deleted)
            .filter(|r| from.is_none_or(|d| r.date >= d) && to.is_none_or(|d| r.date <= d))
            .filter(|r| attendance.is_none_or(|a| r.value["attendance"].as_i64() == Some(a)))
            .collect();
        items.sort_by_key(|r| std::cmp::Reverse((r.datetime, r.id)));
        let mut take = items.len().min(VISITS_PAGE);
        if take > 0 {
            let last_day = items[take - 1].date;
            while take < items.len() && items[take].date == last_day {
                take += 1;
            }
        }
        let cursor = if take < items.len() {
            let to = items[take - 1]
                .date
                .pred_opt()
                .unwrap_or(items[take - 1].date);
            json!({
                "from": from.map(|d| d.format("%Y-%m-%d").to_string()),
                "to": to.format("%Y-%m-%d").to_string(),
            })
        } else {
            Value::Null
        };
        let records: Vec<Value> = items[..take].iter().map(|r| r.value.clone()).collect();
        Ok(success(
            StatusCode::OK,
            json!({"records": records, "goods_transactions": []}),
            json!({"dateCursor": cursor}),
            pass.truncate,
        ))
    })();
    result.unwrap_or_else(|r| {
        count_4xx(&shared);
        r
    })
}

async fn other(AxState(shared): St, ConnectInfo(peer): Peer, headers: HeaderMap) -> Response {
    if let Err(r) = gate(&shared, peer, &headers, "other", Needs::Partner, None).await {
        return r;
    }
    count_4xx(&shared);
    envelope_error(StatusCode::NOT_FOUND, "Not found", None)
}

// ---------------------------------------------------------------- catalogue

/// Whether a `staff` list (ids or `{id, ...}` objects) names `staff_id`.
fn lists_staff(value: &Value, staff_id: i64) -> bool {
    value["staff"]
        .as_array()
        .is_some_and(|l| l.iter().any(|s| id_of(s) == Some(staff_id)))
}

fn int_filter(p: &HashMap<String, String>, name: &str) -> Result<Option<i64>, Response> {
    match p.get(name).map(|v| v.trim()) {
        None | Some("") => Ok(None),
        Some(v) => v
            .parse::<i64>()
            .map(Some)
            .map_err(|_| validation_error(name, "must be an integer")),
    }
}

/// `GET` a whole catalogue list (filters: `staff_id` for services and
/// categories, `category_id` for services), or one entry with `id`.
async fn catalogue(
    shared: Arc<Shared>,
    peer: SocketAddr,
    headers: HeaderMap,
    resource: Resource,
    company: String,
    id: Option<String>,
    q: Vec<(String, String)>,
) -> Response {
    let (endpoint, missing) = match resource {
        Resource::Service => ("services", "Service not found"),
        Resource::ServiceCategory => ("service_categories", "Service category not found"),
        _ => ("staff", "Staff member not found"),
    };
    let pass = match gate(
        &shared,
        peer,
        &headers,
        endpoint,
        Needs::User,
        Some(&company),
    )
    .await
    {
        Ok(p) => p,
        Err(r) => return r,
    };
    let result = (|| {
        let s = shared.lock();
        let c = company_of(&s, &company)?;
        if let Some(raw) = id {
            return raw
                .trim()
                .parse::<i64>()
                .ok()
                .and_then(|id| c.find(resource, id))
                .map(|v| success(StatusCode::OK, v, json!([]), pass.truncate))
                .ok_or_else(|| envelope_error(StatusCode::NOT_FOUND, missing, None));
        }
        let p = params(q);
        let (staff_id, category_id) = match resource {
            Resource::Service => (int_filter(&p, "staff_id")?, int_filter(&p, "category_id")?),
            Resource::ServiceCategory => (int_filter(&p, "staff_id")?, None),
            _ => (None, None),
        };
        let data: Vec<Value> = c
            .catalogue(resource)
            .iter()
            .filter(|e| staff_id.is_none_or(|sid| lists_staff(&e.value, sid)))
            .filter(|e| category_id.is_none_or(|cid| e.value["category_id"].as_i64() == Some(cid)))
            .map(|e| e.value.clone())
            .collect();
        let total = data.len();
        Ok(success(
            StatusCode::OK,
            Value::Array(data),
            json!({"total_count": total}),
            pass.truncate,
        ))
    })();
    result.unwrap_or_else(|r| {
        count_4xx(&shared);
        r
    })
}

async fn services_list(
    AxState(shared): St,
    ConnectInfo(peer): Peer,
    Path(company): Path<String>,
    Query(q): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Response {
    catalogue(shared, peer, headers, Resource::Service, company, None, q).await
}

async fn services_one(
    AxState(shared): St,
    ConnectInfo(peer): Peer,
    Path((company, id)): Path<(String, String)>,
    Query(q): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Response {
    catalogue(
        shared,
        peer,
        headers,
        Resource::Service,
        company,
        Some(id),
        q,
    )
    .await
}

async fn categories_list(
    AxState(shared): St,
    ConnectInfo(peer): Peer,
    Path(company): Path<String>,
    Query(q): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Response {
    catalogue(
        shared,
        peer,
        headers,
        Resource::ServiceCategory,
        company,
        None,
        q,
    )
    .await
}

async fn categories_one(
    AxState(shared): St,
    ConnectInfo(peer): Peer,
    Path((company, id)): Path<(String, String)>,
    Query(q): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Response {
    catalogue(
        shared,
        peer,
        headers,
        Resource::ServiceCategory,
        company,
        Some(id),
        q,
    )
    .await
}

async fn staff_list(
    AxState(shared): St,
    ConnectInfo(peer): Peer,
    Path(company): Path<String>,
    Query(q): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Response {
    catalogue(shared, peer, headers, Resource::Staff, company, None, q).await
}

async fn staff_one(
    AxState(shared): St,
    ConnectInfo(peer): Peer,
    Path((company, id)): Path<(String, String)>,
    Query(q): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Response {
    catalogue(shared, peer, headers, Resource::Staff, company, Some(id), q).await
}

/// `GET /companies`: with `my=1` (both tokens) the companies the user
/// manages; without it (partner token only) every company served.
async fn companies(
    AxState(shared): St,
    ConnectInfo(peer): Peer,
    Query(q): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Response {
    let my = flag(&params(q), "my");
    let needs = if my { Needs::User } else { Needs::Partner };
    let pass = match gate(&shared, peer, &headers, "companies", needs, None).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let data = {
        let s = shared.lock();
        shared.company_list(&s, my)
    };
    let total = data.len();
    success(
        StatusCode::OK,
        Value::Array(data),
        json!({"total_count": total}),
        pass.truncate,
    )
}
