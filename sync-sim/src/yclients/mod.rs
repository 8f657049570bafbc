//! Simulator of the YClients REST API, written from the public reference
//! (`reference/yclients-api.md`), not from the adapter's types.
//!
//! An HTTP server on 127.0.0.1 serving seeded, deterministic data for one or
//! more companies, in the `{success, data, meta}` envelope:
//! - `POST /auth`;
//! - clients: `POST /company/{id}/clients/search`, the deprecated
//!   `GET /clients/{id}` (with `changed_after`), `GET /client/{company}/{id}`;
//! - records: `GET /records/{company}`,
//!   `POST /company/{id}/clients/visits/search`;
//! - the catalogue, both spellings: `GET /services/{company}[/{id}]` and
//!   `/company/{company}/services[/{id}]` (filters `staff_id`,
//!   `category_id`), `GET /service_categories/{company}[/{id}]` and
//!   `/company/{company}/service_categories[/{id}]` (filter `staff_id`),
//!   `GET /staff/{company}[/{id}]` and `/company/{company}/staff[/{id}]`;
//! - `GET /companies?my=1`.
//!
//! It enforces the documented limits (by default 5/s and 200/min per client
//! IP) with 429, counts every request, every breach per window and the
//! highest rate each budget key reached, keeps the arrival times, can delay
//! every answer ([`Latency`]), inject faults (5xx, slow answers, truncated
//! bodies, token revocation, random 429s, data changing during a sync),
//! change data on demand ([`RunningYclientsSim::add`],
//! [`RunningYclientsSim::update`], [`RunningYclientsSim::remove`]) and POST
//! a webhook event for each change.
//!
//! Choices where the reference is silent (documented so that a test can tell):
//! - `changed_after` / `changed_before` are read as ISO 8601; an offset is
//!   honoured, a time without one is read in the company's time zone; both
//!   bounds are inclusive (`changed_after <= last_change <= changed_before`).
//!   Changes made now keep their sub-second instant while
//!   `last_change_date` shows whole seconds.
//! - `GET /records` is ordered by `datetime`, then `id`; default `count` 50,
//!   more than [`YclientsSimConfig::max_records_count`] is a 422.
//! - The deprecated `GET /clients/{company}` is ordered by id, `count`
//!   defaults to 20 and more than [`YclientsSimConfig::max_clients_list_count`]
//!   (200) is a 422, `page=0` is read as 1; `meta` has `page` and
//!   `total_count` (of the filtered list). When gone
//!   ([`YclientsSimConfig::clients_list_gone`]) it answers as an unknown
//!   path does: partner token checked, then 404 with the error envelope.
//! - Clients search without `fields` returns only `id` (as older docs say);
//!   `filters` are not simulated (a non-empty list is a 422).
//! - Visit history: newest first, 25 a page plus the rest of the last page's
//!   day; the next page is asked with `meta.dateCursor` (`{from, to}`) as the
//!   body's `from`/`to`; `dateCursor` is `null` on the last page. Items are
//!   the same record objects `GET /records` serves; deleted ones are left out.
//! - Page numbers so large that the offset overflows give an empty page;
//!   numbers that are not a `u64` are a 422.
//! - A request over the limit is answered 429 and not counted in the window.
//!   A request arrives when its handler starts (its body read); it is
//!   counted in the windows then, before any latency. Peaks
//!   ([`SimStats::peaks`]) use the same windows as the limits (a request one
//!   second or more older is out) and are kept even without limits; with
//!   [`LimitScope::PerToken`] the key is the whole `Authorization` header.
//! - Latency delays every answer the simulator makes (refusals, 404s and
//!   429s too), after the request is counted and before its answer is built;
//!   a slow fault adds its delay on top. Uniform latencies come from their
//!   own seeded generator, so turning latency on does not move the fault
//!   decisions.
//! - Catalogue ids: staff `company*100 + 1..=8`, services
//!   `company*1000 + 1..=12` (the ids records have always used), categories
//!   `company*10000 + 1..=4`, positions `company*10 + 1..=2`. Lists are
//!   ordered by id, carry `meta.total_count` and are never paged; unknown
//!   query parameters are ignored, a filter that is not an integer is a 422,
//!   filters on a one-entry path are ignored; an id that is unknown or not
//!   an integer is a 404.
//! - Catalogue fields: `active`, `fired`, `hidden` and `status` are 0/1
//!   integers, `status` is 0 for every staff member served (removed ones are
//!   left out instead); `rating` is 0 or 4.0..=5.0; `api_id` is `""` unless
//!   set; a service's `staff` is `[{id, seance_length}]`, a category's a list
//!   of ids; `price_min` is the cost records show, `price_max` at least
//!   that; `duration` does not follow records' `seance_length`.
//! - Catalogue coherence: a service's `staff` are the masters who performed
//!   it in some record, a category's the union over its services. One
//!   master is fired three quarters into the range (their later visits went
//!   to the next colleague; earlier ones still name them), another is
//!   hidden, one service is inactive; all stay listed.
//! - `GET /companies?my=1` needs both tokens and lists the companies the
//!   user manages ([`YclientsSimConfig::managed_companies`]); without
//!   `my=1` (any other value included) the partner token is enough and it
//!   lists every company served, as a search of the network would. Items
//!   are `{id, title, timezone_name}`, titles are made from the id; other
//!   parameters are ignored. A company served but not managed answers 403
//!   to its data.
//! - Mutations are methods, not HTTP endpoints. New entities get ids above
//!   every id the company had, never reused after a removal. An update is a
//!   top-level merge (`id` cannot change); clients and records always get
//!   `last_change_date` = now (the other kinds have none). Removing a record
//!   marks it `deleted` (the API leaves deleted records out by default);
//!   removing a client leaves its records naming it, and clients' `visits`
//!   and `spent` are not recomputed; removing a staff member takes them off
//!   services' and categories' `staff` lists (no event for those); removing
//!   a category leaves its services' `category_id` as it was. Records keep
//!   the staff and service names they were written with.
//! - Webhooks: one URL for every company; each event is one `POST` of JSON
//!   `{company_id, resource, resource_id, status, data}` with `data` the
//!   entity as served (for a removal: as last served), plus the configured
//!   header or query parameter; unsigned, never retried, 10 s timeout, one
//!   at a time in the order of the changes unless
//!   [`YclientsSimConfig::webhook_concurrency`] says more. The bulk changes
//!   ([`RunningYclientsSim::change_random`],
//!   [`RunningYclientsSim::touch_random`], [`Faults::change_during_sync`])
//!   send events too: `delete` for a record they delete, `update` otherwise.
//! - [`SimStats::per_company`] counts every request whose path names a
//!   company id, served or not.
//! - Truncated bodies are well framed (a short `Content-Length`) but cut in
//!   the middle of the JSON.

mod accounting;
mod data;
mod mutate;
mod server;
mod webhooks;

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{NaiveDate, Utc};
use chrono_tz::Tz;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use data::{CompanyData, GenSpec};
pub use webhooks::{DeliveryOptions, WebhookEvent, WebhookStats};

/// Errors starting the simulator.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The loopback listener could not be bound.
    #[error("cannot bind 127.0.0.1: {0}")]
    Bind(#[from] std::io::Error),
    /// The configuration makes no sense.
    #[error("invalid simulator config: {0}")]
    Config(String),
}

/// Request limits the simulator enforces; `None` means no limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SimLimits {
    /// Requests in any one-second window.
    pub per_second: Option<u32>,
    /// Requests in any sixty-second window.
    pub per_minute: Option<u32>,
    /// Whether (and how) a 429 carries `Retry-After`.
    pub retry_after: RetryAfter,
    /// Who shares one budget.
    pub scope: LimitScope,
}

impl SimLimits {
    /// The documented limits: 5/s and 200/min per IP, 429 without Retry-After.
    pub const DOCUMENTED: Self = Self {
        per_second: Some(5),
        per_minute: Some(200),
        retry_after: RetryAfter::Never,
        scope: LimitScope::PerIp,
    };

    /// No limit at all.
    pub const UNLIMITED: Self = Self {
        per_second: None,
        per_minute: None,
        retry_after: RetryAfter::Never,
        scope: LimitScope::PerIp,
    };

    /// `per_second` and `per_minute`, per IP, without Retry-After.
    pub fn new(per_second: Option<u32>, per_minute: Option<u32>) -> Self {
        Self {
            per_second,
            per_minute,
            ..Self::DOCUMENTED
        }
    }
}

impl Default for SimLimits {
    fn default() -> Self {
        Self::DOCUMENTED
    }
}

/// Whether a 429 carries a `Retry-After` header (the API does not document
/// one; clients must cope either way).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetryAfter {
    /// Never.
    Never,
    /// Always, with the seconds until the window frees a slot (at least 1).
    Always,
    /// On every n-th 429 only.
    EveryNth(u32),
}

/// Who shares one request budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LimitScope {
    /// Every request from the same IP address (what the reference says).
    PerIp,
    /// Every request with the same `Authorization` header.
    PerToken,
}

/// Faults to inject. Rates are probabilities per request, in `[0, 1]`;
/// decisions come from a seeded generator, so a run is repeatable.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Faults {
    /// Share of requests answered 500/502/503.
    pub error_5xx_rate: f64,
    /// Share of requests answered only after [`Faults::slow_delay`].
    pub slow_rate: f64,
    /// How long a slow answer takes.
    pub slow_delay: Duration,
    /// Share of successful answers whose body is cut in half.
    pub truncated_rate: f64,
    /// Share of requests answered 429 whatever the windows say (not counted
    /// as limit breaches).
    pub random_429_rate: f64,
    /// Rotate the user token after this many requests that used it (the old
    /// one gets 401; `POST /auth` hands out the new one).
    pub revoke_token_after_requests: Option<u64>,
    /// Change data while a sync runs: every `every_requests` requests,
    /// change `fraction` of one company's records.
    pub change_during_sync: Option<ChangeDuringSync>,
}

/// Data changing while a sync runs (see [`Faults::change_during_sync`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ChangeDuringSync {
    /// Change data after every this many requests.
    pub every_requests: u64,
    /// Share of records changed each time.
    pub fraction: f64,
}

/// How long every answer waits before it is sent (on top of
/// [`Faults::slow_delay`] for a slow answer). Requests are counted in the
/// limit windows when they arrive, not when they are answered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Latency {
    /// Answer at once.
    #[default]
    None,
    /// The same wait for every answer.
    Fixed(Duration),
    /// A wait drawn uniformly in `[min, max]` (bounds in either order) from
    /// a generator seeded by [`YclientsSimConfig::seed`].
    Uniform {
        /// Shortest wait.
        min: Duration,
        /// Longest wait.
        max: Duration,
    },
}

impl Latency {
    /// A fixed wait of `ms` milliseconds.
    pub fn fixed_ms(ms: u64) -> Self {
        Self::Fixed(Duration::from_millis(ms))
    }

    /// A wait uniform between `min_ms` and `max_ms` milliseconds.
    pub fn uniform_ms(min_ms: u64, max_ms: u64) -> Self {
        Self::Uniform {
            min: Duration::from_millis(min_ms),
            max: Duration::from_millis(max_ms),
        }
    }

    /// Draws one wait.
    pub(crate) fn sample(&self, rng: &mut StdRng) -> Duration {
        match *self {
            Self::None => Duration::ZERO,
            Self::Fixed(d) => d,
            Self::Uniform { min, max } => {
                let (lo, hi) = if min <= max { (min, max) } else { (max, min) };
                let cap = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
                Duration::from_nanos(rng.gen_range(cap(lo)..=cap(hi)))
            }
        }
    }
}

/// The size of one company's data (see [`YclientsSimConfig::company_sizes`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompanySize {
    /// Clients.
    pub clients: usize,
    /// Records.
    pub records: usize,
}

/// Everything the simulator serves and how it behaves.
#[derive(Clone, Debug)]
pub struct YclientsSimConfig {
    /// Seed of the data (and of fault decisions).
    pub seed: u64,
    /// Company ids served; each gets its own data.
    pub companies: Vec<u64>,
    /// Clients per company (unless [`YclientsSimConfig::company_sizes`]
    /// says otherwise).
    pub clients: usize,
    /// Records per company (unless [`YclientsSimConfig::company_sizes`]
    /// says otherwise).
    pub records: usize,
    /// Sizes of single companies, overriding `clients` and `records`; every
    /// key must be in `companies`. Default: empty.
    pub company_sizes: BTreeMap<u64, CompanySize>,
    /// The companies `GET /companies?my=1` lists (the ones the user
    /// manages); the others answer 403 to company-data requests. `None`
    /// (default): every company in `companies`.
    pub managed_companies: Option<Vec<u64>>,
    /// The last day with records (local); fixed by default so that data is
    /// the same every day.
    pub end_date: NaiveDate,
    /// How many days of records, ending at `end_date`.
    pub days: u32,
    /// The companies' time zone.
    pub tz: Tz,
    /// Limits enforced with 429.
    pub limits: SimLimits,
    /// Wait before every answer. Default: [`Latency::None`].
    pub latency: Latency,
    /// The partner token every request must carry.
    pub partner_token: String,
    /// Login accepted by `POST /auth`.
    pub login: String,
    /// Password accepted by `POST /auth`.
    pub password: String,
    /// The user token `POST /auth` hands out (valid from the start).
    pub user_token: String,
    /// Faults to inject.
    pub faults: Faults,
    /// Largest `count` of `GET /records` (larger is a 422).
    pub max_records_count: u32,
    /// Largest `page_size` of the clients search (larger is a 422).
    pub max_clients_page_size: u32,
    /// Largest `count` of the deprecated clients list.
    pub max_clients_list_count: u32,
    /// The deprecated `GET /clients/{company}` is gone: it answers 404 with
    /// the error envelope. Default: false.
    pub clients_list_gone: bool,
    /// Answer 400 when `Accept` is not `application/vnd.yclients.v2+json`.
    pub require_accept_header: bool,
    /// Where every mutation POSTs a webhook event; `None` (default): no
    /// webhooks.
    pub webhook_url: Option<String>,
    /// An extra header on every webhook POST (a shared secret, say).
    /// Default: none.
    pub webhook_header: Option<(String, String)>,
    /// An extra query parameter added to the webhook URL (the other way to
    /// pass a shared secret). Default: none.
    pub webhook_query: Option<(String, String)>,
    /// Webhook deliveries in flight at once; with 1 (default) they arrive in
    /// the order the events happened.
    pub webhook_concurrency: usize,
}

impl Default for YclientsSimConfig {
    fn default() -> Self {
        Self {
            seed: 42,
            companies: vec![101],
            clients: 1000,
            records: 20_000,
            company_sizes: BTreeMap::new(),
            managed_companies: None,
            end_date: NaiveDate::from_ymd_opt(2025, 6, 30).unwrap_or_default(),
            days: 730,
            tz: chrono_tz::Europe::Moscow,
            limits: SimLimits::DOCUMENTED,
            latency: Latency::None,
            partner_token: "sim-partner-token".into(),
            login: "owner@example.test".into(),
            password: "sim-password".into(),
            user_token: "sim-user-token".into(),
            faults: Faults::default(),
            max_records_count: 200,
            max_clients_page_size: 200,
            max_clients_list_count: 200,
            clients_list_gone: false,
            require_accept_header: true,
            webhook_url: None,
            webhook_header: None,
            webhook_query: None,
            webhook_concurrency: 1,
        }
    }
}

impl YclientsSimConfig {
    /// The first day with records.
    pub fn first_day(&self) -> NaiveDate {
        self.end_date - chrono::Duration::days(i64::from(self.days.max(1)) - 1)
    }

    /// The size of `company`'s data.
    pub fn size_of(&self, company: u64) -> CompanySize {
        self.company_sizes
            .get(&company)
            .cloned()
            .unwrap_or(CompanySize {
                clients: self.clients,
                records: self.records,
            })
    }
}

/// The most requests one budget key sent in any sliding window, by arrival
/// time (see [`SimStats::peaks`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WindowPeaks {
    /// Most requests that arrived in any one second, answered or refused.
    /// At most the per-second limit exactly when no request was refused
    /// for that window.
    pub per_second: u64,
    /// Most requests that arrived in any sixty seconds.
    pub per_minute: u64,
    /// Most requests counted in the limit windows (not refused for a full
    /// window) in any one second; never above the limit.
    pub counted_per_second: u64,
    /// The same over sixty seconds.
    pub counted_per_minute: u64,
}

/// One request's arrival (see [`RunningYclientsSim::arrivals`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Arrival {
    /// When, since the simulator started or its stats were last reset.
    pub at: Duration,
    /// Refused with 429 because a limit window was full.
    pub over_limit: bool,
}

/// Counters of everything the simulator answered.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SimStats {
    /// Every request received.
    pub requests: u64,
    /// Requests that arrived while a limit window was full.
    pub limit_breaches: u64,
    /// Requests that arrived while the per-second window was full.
    pub breaches_per_second: u64,
    /// Requests that arrived while the per-minute window was full (a request
    /// finding both full counts in both).
    pub breaches_per_minute: u64,
    /// 429 answers (breaches and injected ones).
    pub responses_429: u64,
    /// 401 answers.
    pub responses_401: u64,
    /// 5xx answers (injected).
    pub responses_5xx: u64,
    /// Other 4xx answers (400, 403, 404, 422).
    pub responses_4xx: u64,
    /// Answers whose body was cut short.
    pub truncated: u64,
    /// Successful `POST /auth` answers.
    pub logins: u64,
    /// Requests per endpoint: `auth`, `clients_search`, `clients_list`,
    /// `client`, `records`, `visits_search`, `services`,
    /// `service_categories`, `staff`, `companies`, `other`.
    pub per_endpoint: BTreeMap<String, u64>,
    /// Requests per company id named in the path (served or not).
    pub per_company: BTreeMap<u64, u64>,
    /// Peaks per budget key: the client IP (`127.0.0.1`) with
    /// [`LimitScope::PerIp`], the whole `Authorization` header with
    /// [`LimitScope::PerToken`]. Tracked with and without limits.
    pub peaks: BTreeMap<String, WindowPeaks>,
}

impl SimStats {
    /// Requests to one endpoint.
    pub fn endpoint(&self, name: &str) -> u64 {
        self.per_endpoint.get(name).copied().unwrap_or(0)
    }

    /// Requests naming one company.
    pub fn company(&self, id: u64) -> u64 {
        self.per_company.get(&id).copied().unwrap_or(0)
    }

    /// The peaks of one budget key (zero if it sent nothing).
    pub fn peak(&self, key: &str) -> WindowPeaks {
        self.peaks.get(key).copied().unwrap_or_default()
    }

    /// The highest peaks over every key (each field on its own).
    pub fn max_peaks(&self) -> WindowPeaks {
        self.peaks
            .values()
            .fold(WindowPeaks::default(), |a, p| WindowPeaks {
                per_second: a.per_second.max(p.per_second),
                per_minute: a.per_minute.max(p.per_minute),
                counted_per_second: a.counted_per_second.max(p.counted_per_second),
                counted_per_minute: a.counted_per_minute.max(p.counted_per_minute),
            })
    }
}

/// What [`RunningYclientsSim::change_random`] changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Changed {
    /// Ids of changed records.
    pub records: Vec<i64>,
    /// Ids of changed clients.
    pub clients: Vec<i64>,
}

/// A kind of entity: what mutations act on and webhook events name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Resource {
    /// A client (`client`).
    Client,
    /// A record, i.e. an appointment (`record`).
    Record,
    /// A service (`service`).
    Service,
    /// A service category (`service_category`).
    ServiceCategory,
    /// A staff member (`staff`).
    Staff,
}

impl Resource {
    /// Every kind.
    pub const ALL: [Self; 5] = [
        Self::Client,
        Self::Record,
        Self::Service,
        Self::ServiceCategory,
        Self::Staff,
    ];

    /// The name in webhook events.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Client => "client",
            Self::Record => "record",
            Self::Service => "service",
            Self::ServiceCategory => "service_category",
            Self::Staff => "staff",
        }
    }
}

/// What happened to an entity, in a webhook event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventStatus {
    /// Created (`create`).
    Create,
    /// Changed (`update`).
    Update,
    /// Removed, or for a record marked deleted (`delete`).
    Delete,
}

impl EventStatus {
    /// The name in webhook events.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Update => "update",
            Self::Delete => "delete",
        }
    }
}

/// Why a mutation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MutationError {
    /// The simulator serves no such company.
    #[error("no company {0}")]
    UnknownCompany(u64),
    /// No entity with that id.
    #[error("no {} {id} in company {company}", resource.as_str())]
    NotFound {
        /// The company.
        company: u64,
        /// The kind of entity.
        resource: Resource,
        /// The id asked for.
        id: i64,
    },
    /// The fields are not acceptable (not an object, a reference to staff,
    /// a service, a category or a client that does not exist, a bad date).
    #[error("invalid fields: {0}")]
    Invalid(String),
}

/// The simulator's entry point.
#[derive(Debug)]
pub struct YclientsSim;

impl YclientsSim {
    /// Generates the data and starts serving on `127.0.0.1:<free port>`.
    pub async fn start(config: YclientsSimConfig) -> Result<RunningYclientsSim, SimError> {
        if config.companies.is_empty() {
            return Err(SimError::Config("no company".into()));
        }
        if let Some(id) = config
            .company_sizes
            .keys()
            .find(|id| !config.companies.contains(id))
        {
            return Err(SimError::Config(format!(
                "company_sizes names company {id}, which is not served"
            )));
        }
        if let Some(id) = config
            .managed_companies
            .iter()
            .flatten()
            .find(|id| !config.companies.contains(id))
        {
            return Err(SimError::Config(format!(
                "managed_companies names company {id}, which is not served"
            )));
        }
        let webhook_url = config
            .webhook_url
            .as_deref()
            .map(webhooks::parse_url)
            .transpose()?;
        let hooks = webhooks::Hooks::start(
            config.webhook_header.clone(),
            config.webhook_query.clone(),
            config.webhook_concurrency,
        )?;
        let companies = generate_companies(&config)?;
        let shared = Arc::new(server::Shared::new(config, companies, hooks, webhook_url));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let app = server::router(shared.clone());
        let task = tokio::spawn(async move {
            let serve = axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(async {
                let _ = stop_rx.await;
            });
            if let Err(e) = serve.await {
                tracing::warn!(error = %e, "yclients simulator stopped");
            }
        });
        Ok(RunningYclientsSim {
            addr,
            shared,
            stop: Mutex::new(Some(stop_tx)),
            task: Mutex::new(Some(task)),
        })
    }
}

/// Every company's data, each from its own generator: the cost is
/// proportional to the records and clients asked for, and a company's data
/// does not depend on the others.
fn generate_companies(config: &YclientsSimConfig) -> Result<BTreeMap<u64, CompanyData>, SimError> {
    let first_day = config.first_day();
    let specs: Vec<GenSpec> = config
        .companies
        .iter()
        .map(|&id| {
            let size = config.size_of(id);
            GenSpec {
                seed: config.seed,
                company_id: id,
                clients: size.clients,
                records: size.records,
                first_day,
                last_day: config.end_date,
                tz: config.tz,
            }
        })
        .collect();
    Ok(specs
        .iter()
        .map(|s| (s.company_id, CompanyData::generate(s)))
        .collect())
}

/// A running simulator. Dropping it stops the server too.
#[derive(Debug)]
pub struct RunningYclientsSim {
    addr: SocketAddr,
    shared: Arc<server::Shared>,
    stop: Mutex<Option<oneshot::Sender<()>>>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl RunningYclientsSim {
    /// The API base, e.g. `http://127.0.0.1:41234/api/v1`.
    pub fn base_url(&self) -> String {
        format!("http://{}/api/v1", self.addr)
    }

    /// The socket address served.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The configuration it started with (see the setters for what can
    /// change since).
    pub fn config(&self) -> &YclientsSimConfig {
        &self.shared.config
    }

    /// Counters so far.
    pub fn stats(&self) -> SimStats {
        self.shared.lock().stats.clone()
    }

    /// Resets the counters, the peaks and the arrival times (arrivals count
    /// from now on), not the limit windows nor the webhook counters.
    pub fn reset_stats(&self) {
        let mut s = self.shared.lock();
        s.stats = SimStats::default();
        s.accounting.reset();
    }

    /// Every request's arrival since the start or the last
    /// [`RunningYclientsSim::reset_stats`], in order (24 bytes each).
    pub fn arrivals(&self) -> Vec<Arrival> {
        self.shared.lock().accounting.arrivals()
    }

    /// Requests that arrived in each whole second since the start or the
    /// last reset (index 0: the first second), refused ones included.
    pub fn arrivals_per_second(&self) -> Vec<u64> {
        self.shared.lock().accounting.per_second()
    }

    /// The user token currently valid.
    pub fn current_user_token(&self) -> String {
        self.shared.lock().user_token.clone()
    }

    /// Revokes the current user token now (as a password change would); the
    /// next `POST /auth` hands out a new one.
    pub fn revoke_user_token(&self) {
        self.shared.lock().rotate_token();
    }

    /// Every client of `company` as served with all fields, by id (deleted
    /// clients are gone); empty for an unknown company.
    pub fn clients(&self, company: u64) -> Vec<Value> {
        self.list(company, Resource::Client)
    }

    /// Every record of `company` as served (deleted ones included), ordered
    /// by `datetime` then id; empty for an unknown company.
    pub fn records(&self, company: u64) -> Vec<Value> {
        self.list(company, Resource::Record)
    }

    /// Every service of `company` as `GET /services/{company}` serves them,
    /// by id; empty for an unknown company.
    pub fn services(&self, company: u64) -> Vec<Value> {
        self.list(company, Resource::Service)
    }

    /// Every service category of `company` as served, by id.
    pub fn service_categories(&self, company: u64) -> Vec<Value> {
        self.list(company, Resource::ServiceCategory)
    }

    /// Every staff member of `company` as served (fired and hidden ones
    /// included), by id.
    pub fn staff(&self, company: u64) -> Vec<Value> {
        self.list(company, Resource::Staff)
    }

    /// Every entity of one kind, as served; empty for an unknown company.
    pub fn list(&self, company: u64, resource: Resource) -> Vec<Value> {
        let s = self.shared.lock();
        s.companies
            .get(&company)
            .map(|c| c.list(resource))
            .unwrap_or_default()
    }

    /// The companies the user manages, as `GET /companies?my=1` lists them.
    pub fn companies(&self) -> Vec<Value> {
        let s = self.shared.lock();
        self.shared.company_list(&s, true)
    }

    /// Changes `record_fraction` of `company`'s records and `client_fraction`
    /// of its clients (content and `last_change_date`, set to now); about
    /// one changed record in ten is deleted. Deterministic for a `seed`.
    /// Sends a webhook event for each (`delete` for a record it deleted).
    pub fn change_random(
        &self,
        company: u64,
        record_fraction: f64,
        client_fraction: f64,
        seed: u64,
    ) -> Changed {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut s = self.shared.lock();
        let now = Utc::now();
        let hooks_on = s.webhook_url.is_some();
        let Some(c) = s.companies.get_mut(&company) else {
            return Changed::default();
        };
        let deleted_before = if hooks_on {
            c.deleted_records()
        } else {
            HashSet::new()
        };
        let changed = Changed {
            records: c.change_records(record_fraction, &mut rng, now),
            clients: c.change_clients(client_fraction, &mut rng, now),
        };
        if hooks_on {
            let mut events = c.record_events(&changed.records, &deleted_before);
            events.extend(c.client_events(&changed.clients));
            self.shared.emit(&s, &events);
        }
        changed
    }

    /// Bumps only `last_change_date` of `fraction` of `company`'s records
    /// (a change of a volatile field). Returns their ids; sends an `update`
    /// webhook event for each.
    pub fn touch_random(&self, company: u64, fraction: f64, seed: u64) -> Vec<i64> {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut s = self.shared.lock();
        let now = Utc::now();
        let hooks_on = s.webhook_url.is_some();
        let Some(c) = s.companies.get_mut(&company) else {
            return Vec::new();
        };
        let ids = c.touch_records(fraction, &mut rng, now);
        if hooks_on {
            let all = c.deleted_records();
            let events = c.record_events(&ids, &all);
            self.shared.emit(&s, &events);
        }
        ids
    }

    /// Adds an entity to `company`: defaults overlaid with the fields of
    /// `fields` (a JSON object; `id` is ignored, a new one is given). Returns
    /// the entity as served and sends a `create` webhook event.
    ///
    /// A record names existing staff (`staff_id`, default: the first master
    /// not fired), services (`services: [{id}]`, default: the first active
    /// one; `title` and `cost` filled from the catalogue) and client
    /// (`client_id` or `client: {id}`, default none); `date` is local
    /// `"YYYY-MM-DD HH:MM:SS"` (default: [`YclientsSimConfig::end_date`] at
    /// noon), `datetime` follows from it. Clients and records get
    /// `last_change_date` = now.
    pub fn add(
        &self,
        company: u64,
        resource: Resource,
        fields: Value,
    ) -> Result<Value, MutationError> {
        self.mutate(company, resource, EventStatus::Create, |c, now| {
            c.add(resource, fields, now)
        })
    }

    /// Overlays the fields of `patch` (a JSON object) on one entity; clients
    /// and records get `last_change_date` = now. Fields referring to other
    /// entities are checked as in [`RunningYclientsSim::add`] when the patch
    /// writes them. Returns the entity as served and sends an `update`
    /// webhook event.
    pub fn update(
        &self,
        company: u64,
        resource: Resource,
        id: i64,
        patch: Value,
    ) -> Result<Value, MutationError> {
        self.mutate(company, resource, EventStatus::Update, |c, now| {
            c.update(resource, id, patch, now)
        })
    }

    /// Removes one entity: a client disappears from every client list (and
    /// `GET /client` answers 404), a service, category or staff member from
    /// the catalogue (a removed staff member also from the `staff` lists of
    /// services and categories), a record is marked `deleted` with a new
    /// `last_change_date`. Records keep naming removed clients, staff and
    /// services. Returns the entity as last served and sends a `delete`
    /// webhook event.
    pub fn remove(
        &self,
        company: u64,
        resource: Resource,
        id: i64,
    ) -> Result<Value, MutationError> {
        self.mutate(company, resource, EventStatus::Delete, |c, now| {
            c.remove(resource, id, now)
        })
    }

    fn mutate(
        &self,
        company: u64,
        resource: Resource,
        status: EventStatus,
        f: impl FnOnce(&mut CompanyData, chrono::DateTime<Utc>) -> Result<Value, MutationError>,
    ) -> Result<Value, MutationError> {
        let mut s = self.shared.lock();
        let c = s
            .companies
            .get_mut(&company)
            .ok_or(MutationError::UnknownCompany(company))?;
        let value = f(c, Utc::now())?;
        let id = value.get("id").and_then(Value::as_i64).unwrap_or_default();
        let event = WebhookEvent::new(company, resource, id, status, value.clone());
        self.shared.emit(&s, &[event]);
        Ok(value)
    }

    /// The event a webhook would carry for one entity now (`data` as
    /// served), if it exists.
    pub fn event_for(
        &self,
        company: u64,
        resource: Resource,
        id: i64,
        status: EventStatus,
    ) -> Option<WebhookEvent> {
        let s = self.shared.lock();
        let data = s.companies.get(&company)?.find(resource, id)?;
        Some(WebhookEvent::new(company, resource, id, status, data))
    }

    /// A flood: `events` `update` events spread round-robin over the first
    /// `entities` entities of `resource` (in served order), so each gets
    /// `events / entities` of them, give or take one. Fewer entities than
    /// asked if the company has fewer; empty if it has none.
    pub fn flood_events(
        &self,
        company: u64,
        resource: Resource,
        entities: usize,
        events: usize,
    ) -> Vec<WebhookEvent> {
        let items: Vec<Value> = self
            .list(company, resource)
            .into_iter()
            .take(entities)
            .collect();
        if items.is_empty() {
            return Vec::new();
        }
        (0..events)
            .map(|i| {
                let data = items[i % items.len()].clone();
                let id = data.get("id").and_then(Value::as_i64).unwrap_or_default();
                WebhookEvent::new(company, resource, id, EventStatus::Update, data)
            })
            .collect()
    }

    /// POSTs `events` to the webhook URL, reordered and duplicated as
    /// `options` say; returns how many deliveries were queued (0 without a
    /// webhook URL). Returns at once; see
    /// [`RunningYclientsSim::wait_for_webhooks`].
    pub fn deliver_events(&self, events: Vec<WebhookEvent>, options: DeliveryOptions) -> usize {
        let events = webhooks::arrange(events, options);
        let s = self.shared.lock();
        if s.webhook_url.is_none() {
            return 0;
        }
        self.shared.emit(&s, &events);
        events.len()
    }

    /// Points webhooks somewhere else from now on (`None`: stop sending).
    pub fn set_webhook_url(&self, url: Option<&str>) -> Result<(), SimError> {
        let url = url.map(webhooks::parse_url).transpose()?;
        self.shared.lock().webhook_url = url;
        Ok(())
    }

    /// What webhook deliveries got so far.
    pub fn webhook_stats(&self) -> WebhookStats {
        self.shared.hooks.stats()
    }

    /// Resets the webhook counters (deliveries in flight stay pending).
    pub fn reset_webhook_stats(&self) {
        self.shared.hooks.reset();
    }

    /// Waits until no webhook delivery is pending, at most `timeout`;
    /// returns whether they all finished.
    pub async fn wait_for_webhooks(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.shared.hooks.stats().pending == 0 {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Replaces the faults injected from now on.
    pub fn set_faults(&self, faults: Faults) {
        self.shared.lock().faults = faults;
    }

    /// Replaces the limits enforced from now on (windows start empty).
    pub fn set_limits(&self, limits: SimLimits) {
        let mut s = self.shared.lock();
        s.limits = limits;
        s.windows.clear();
    }

    /// Replaces the latency of answers from now on.
    pub fn set_latency(&self, latency: Latency) {
        self.shared.lock().latency = latency;
    }

    /// Makes the deprecated `GET /clients/{company}` gone (404) or back.
    pub fn set_clients_list_gone(&self, gone: bool) {
        self.shared.lock().clients_list_gone = gone;
    }

    /// Stops the server and waits for it.
    pub async fn shutdown(self) {
        let stop = self.stop.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(stop) = stop {
            let _ = stop.send(());
        }
        let task = self.task.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

impl Drop for RunningYclientsSim {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = stop.send(());
        }
    }
}
