//! Webhook events: `{company_id, resource, resource_id, status, data}`
//! POSTed to one URL, fire-and-forget, unsigned, never retried; counters of
//! what the receiver answered.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use reqwest::header::{HeaderName, HeaderValue};
use reqwest::Url;
use serde_json::{json, Value};
use tokio::sync::{mpsc, Semaphore};

use super::{EventStatus, Resource, SimError};

/// How long one delivery may take before it counts as failed.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);

/// One webhook event, as the simulator POSTs it.
#[derive(Clone, Debug, PartialEq)]
pub struct WebhookEvent {
    /// The company whose data changed.
    pub company_id: u64,
    /// What kind of entity changed.
    pub resource: Resource,
    /// Its id.
    pub resource_id: i64,
    /// Created, updated or deleted.
    pub status: EventStatus,
    /// The entity as served (for a deletion: as last served).
    pub data: Value,
}

impl WebhookEvent {
    /// An event.
    pub fn new(
        company_id: u64,
        resource: Resource,
        resource_id: i64,
        status: EventStatus,
        data: Value,
    ) -> Self {
        Self {
            company_id,
            resource,
            resource_id,
            status,
            data,
        }
    }

    /// The body POSTed: `{company_id, resource, resource_id, status, data}`.
    pub fn to_json(&self) -> Value {
        json!({
            "company_id": self.company_id,
            "resource": self.resource.as_str(),
            "resource_id": self.resource_id,
            "status": self.status.as_str(),
            "data": self.data,
        })
    }
}

/// How [`RunningYclientsSim::deliver_events`](super::RunningYclientsSim::deliver_events)
/// mangles a list of events before sending them.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct DeliveryOptions {
    /// Send in a seeded random order instead of the given one.
    pub shuffle: bool,
    /// Share of events (in `[0, 1]`) sent a second time.
    pub duplicate_rate: f64,
    /// Seed of the order and of the duplicates.
    pub seed: u64,
}

/// What webhook deliveries got so far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WebhookStats {
    /// Deliveries queued (every event sent, duplicates included).
    pub queued: u64,
    /// Queued and not finished yet.
    pub pending: u64,
    /// Finished deliveries by the HTTP status the receiver answered.
    pub by_status: BTreeMap<u16, u64>,
    /// Deliveries that got no HTTP answer (refused, timed out, bad URL).
    pub failed: u64,
}

impl WebhookStats {
    /// Deliveries answered with `status`.
    pub fn status(&self, status: u16) -> u64 {
        self.by_status.get(&status).copied().unwrap_or(0)
    }

    /// Deliveries that got an HTTP answer, whatever its status.
    pub fn answered(&self) -> u64 {
        self.by_status.values().sum()
    }
}

#[derive(Debug)]
struct Delivery {
    url: Url,
    body: Value,
}

/// The sending side, held by the simulator's shared state.
#[derive(Debug)]
pub(crate) struct Hooks {
    tx: mpsc::UnboundedSender<Delivery>,
    stats: Arc<Mutex<WebhookStats>>,
    query: Option<(String, String)>,
}

fn lock(stats: &Mutex<WebhookStats>) -> MutexGuard<'_, WebhookStats> {
    stats.lock().unwrap_or_else(|e| e.into_inner())
}

/// Parses a webhook URL (http or https).
pub(crate) fn parse_url(url: &str) -> Result<Url, SimError> {
    let parsed =
        Url::parse(url).map_err(|e| SimError::Config(format!("webhook_url {url:?}: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(SimError::Config(format!(
            "webhook_url {url:?}: not http or https"
        )));
    }
    Ok(parsed)
}

impl Hooks {
    /// Starts the dispatcher task: at most `concurrency` deliveries at once
    /// (with 1, in the order queued); an extra `header` on every POST.
    pub(crate) fn start(
        header: Option<(String, String)>,
        query: Option<(String, String)>,
        concurrency: usize,
    ) -> Result<Self, SimError> {
        let header = match header {
            Some((name, value)) => Some((
                HeaderName::from_bytes(name.as_bytes())
                    .map_err(|e| SimError::Config(format!("webhook_header name: {e}")))?,
                HeaderValue::from_str(&value)
                    .map_err(|e| SimError::Config(format!("webhook_header value: {e}")))?,
            )),
            None => None,
        };
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(DELIVERY_TIMEOUT)
            .build()
            .map_err(|e| SimError::Config(format!("webhook client: {e}")))?;
        let (tx, mut rx) = mpsc::unbounded_channel::<Delivery>();
        let stats = Arc::new(Mutex::new(WebhookStats::default()));
        let counters = stats.clone();
        let slots = Arc::new(Semaphore::new(concurrency.max(1)));
        tokio::spawn(async move {
            while let Some(d) = rx.recv().await {
                let Ok(permit) = slots.clone().acquire_owned().await else {
                    break;
                };
                let client = client.clone();
                let header = header.clone();
                let counters = counters.clone();
                tokio::spawn(async move {
                    let mut req = client.post(d.url).json(&d.body);
                    if let Some((name, value)) = header {
                        req = req.header(name, value);
                    }
                    let outcome = req.send().await.map(|r| r.status().as_u16());
                    let mut s = lock(&counters);
                    s.pending = s.pending.saturating_sub(1);
                    match outcome {
                        Ok(status) => *s.by_status.entry(status).or_default() += 1,
                        Err(_) => s.failed += 1,
                    }
                    drop(permit);
                });
            }
        });
        Ok(Self { tx, stats, query })
    }

    /// Queues one delivery of `event` to `url`; returns at once.
    pub(crate) fn send(&self, url: &Url, event: &WebhookEvent) {
        let mut url = url.clone();
        if let Some((k, v)) = &self.query {
            url.query_pairs_mut().append_pair(k, v);
        }
        let mut s = lock(&self.stats);
        s.queued += 1;
        s.pending += 1;
        let delivery = Delivery {
            url,
            body: event.to_json(),
        };
        if self.tx.send(delivery).is_err() {
            s.pending -= 1;
            s.failed += 1;
        }
    }

    pub(crate) fn stats(&self) -> WebhookStats {
        lock(&self.stats).clone()
    }

    pub(crate) fn reset(&self) {
        let mut s = lock(&self.stats);
        let pending = s.pending;
        *s = WebhookStats {
            pending,
            ..WebhookStats::default()
        };
    }
}

/// `events` in the order and with the duplicates `options` ask for.
pub(crate) fn arrange(events: Vec<WebhookEvent>, options: DeliveryOptions) -> Vec<WebhookEvent> {
    let mut rng = StdRng::seed_from_u64(options.seed);
    let rate = options.duplicate_rate.clamp(0.0, 1.0);
    let mut out = Vec::with_capacity(events.len());
    for e in events {
        let twice = rate > 0.0 && rng.gen_bool(rate);
        if twice {
            out.push(e.clone());
        }
        out.push(e);
    }
    if options.shuffle {
        out.shuffle(&mut rng);
    }
    out
}
