//! Simulator of the hosted kennel booking web app that `sync-source-scraper`
//! scrapes, written from `reference/booking-site.md`.
//!
//! A loopback web server ([`BookingSim::start`]) with:
//! - a login form with hidden anti-forgery inputs (`GET`/`POST /login`);
//!   success is a 302 that sets the `bk_session` cookie, failure a 200 with
//!   the form and "Invalid username or password.";
//! - sessions that die a fixed time after login ([`BookingSimConfig::session_ttl`]);
//!   an expired session is answered by a redirect to `/login` or by a 200
//!   with the login form ([`ExpiredStyle`]);
//! - seven-day schedule pages (`/schedule`, `/schedule/days-7/Y/M/D`) chained
//!   by `rel="next"` links, and detail pages (`/schedule/a/{id}/{ts}`, 404
//!   once deleted), from seeded deterministic data: multi-day boardings,
//!   daycare and grooming entries, cancellations, entities and odd
//!   whitespace in names;
//! - optional faults ([`Faults`]): 5xx pages, slow pages, truncated HTML and
//!   layout noise; and request counters ([`BookingSimStats`]).
//!
//! [`RunningBookingSim::boardings`] gives the exact current data, in the
//! terms of the scraper's `boarding` payload, for comparisons.

mod data;
mod html;
mod server;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use chrono_tz::Tz;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use serde_json::{json, Value};

use data::{Appointment, Kind, CANCELLED};

/// How the site answers a request whose session has expired.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ExpiredStyle {
    /// `302 Found` with `Location: /login?redirect_to=...`.
    Redirect,
    /// `200 OK` with the login form in the body.
    LoginFormIn200,
    /// Alternates between the two.
    #[default]
    Mixed,
}

/// Faults the simulator injects into schedule and detail pages (never into
/// the login pages, so login behaviour stays deterministic).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Faults {
    /// Share of pages answered with a 500/502/503 HTML error page.
    pub error_5xx_rate: f64,
    /// Share of pages delayed by `slow_delay`.
    pub slow_rate: f64,
    /// Delay of a slow page.
    pub slow_delay: Duration,
    /// Share of pages cut off in the middle (no closing `</html>`).
    pub truncated_rate: f64,
    /// Adds clutter to pages (wrappers, comments, scripts, extra classes and
    /// attributes, a second detail layout) without changing the data.
    pub layout_noise: bool,
}

/// Limits the simulator checks requests against; requests that break them
/// are still served but counted in [`BookingSimStats::breaches`].
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RateCheck {
    /// Minimum time between two requests.
    pub min_spacing: Option<Duration>,
    /// Requests in any sixty-second window.
    pub per_minute: Option<u32>,
}

/// Configuration of a simulated booking site.
#[derive(Clone, Debug)]
pub struct BookingSimConfig {
    /// Seed of the data (same seed, same data).
    pub seed: u64,
    /// First day with appointments.
    pub start: NaiveDate,
    /// Number of days with appointments.
    pub days: u32,
    /// The kennel's time zone: pages show local times, weeks are local days.
    pub tz: Tz,
    /// Average boardings checking in per day.
    pub boardings_per_day: u32,
    /// Average daycare and grooming entries per day (not boardings).
    pub daycare_per_day: u32,
    /// The staff login.
    pub username: String,
    /// The staff password.
    pub password: String,
    /// How long a session lives after login.
    pub session_ttl: Duration,
    /// How an expired session is answered.
    pub expired_style: ExpiredStyle,
    /// Whether cancelled appointments stay on the schedule (with
    /// `data-status="cancelled"`); when false they vanish from it.
    pub list_cancelled: bool,
    /// Injected faults.
    pub faults: Faults,
    /// Limits to count breaches against.
    pub rate_check: Option<RateCheck>,
}

impl Default for BookingSimConfig {
    fn default() -> Self {
        Self {
            seed: 42,
            start: NaiveDate::from_ymd_opt(2025, 1, 1).unwrap_or_default(),
            days: 365,
            tz: chrono_tz::America::New_York,
            boardings_per_day: 6,
            daycare_per_day: 3,
            username: "staff@happytails.test".into(),
            password: "correct horse battery".into(),
            session_ttl: Duration::from_secs(6 * 60),
            expired_style: ExpiredStyle::Mixed,
            list_cancelled: true,
            faults: Faults::default(),
            rate_check: None,
        }
    }
}

/// Counters of what the simulator served.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct BookingSimStats {
    /// Every request.
    pub requests: u64,
    /// Successful logins.
    pub logins: u64,
    /// Rejected logins (bad credentials or bad form token).
    pub login_failures: u64,
    /// Sessions found expired (each counted once).
    pub session_expiries: u64,
    /// Requests answered with the login page or a redirect to it because the
    /// session was missing or expired.
    pub unauthenticated: u64,
    /// 5xx pages injected.
    pub errors_injected: u64,
    /// Slow pages injected.
    pub slow_injected: u64,
    /// Truncated pages injected.
    pub truncated_injected: u64,
    /// Requests per route, e.g. `GET /schedule/a`.
    pub per_path: BTreeMap<String, u64>,
    /// Requests that broke the [`RateCheck`].
    pub breaches: u64,
}

impl BookingSimStats {
    /// Requests counted for a route such as `GET /schedule/days-7`.
    pub fn path(&self, route: &str) -> u64 {
        self.per_path.get(route).copied().unwrap_or(0)
    }
}

/// A boarding as the site holds it, in the terms of the scraper's `boarding`
/// payload (see `notes/payloads.md`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SimBoarding {
    /// The site's appointment id.
    pub appointment_id: String,
    /// Pet name.
    pub pet: String,
    /// Client name.
    pub client: String,
    /// Service type (the detail page's `h1`).
    pub service: String,
    /// Status text of the detail page.
    pub status: String,
    /// Check-in, UTC.
    pub check_in: DateTime<Utc>,
    /// Check-out, UTC.
    pub check_out: Option<DateTime<Utc>>,
    /// Price in the site's currency.
    pub price: Option<f64>,
    /// Notes.
    pub notes: Option<String>,
    /// The list row's `data-event_type`.
    pub event_type: String,
    /// Local check-in day in the kennel's time zone.
    pub check_in_day: NaiveDate,
    /// Cancelled or deleted at the site.
    pub deleted: bool,
}

impl SimBoarding {
    /// The payload fields the scraper produces (all but `list_fingerprint`).
    pub fn payload(&self) -> Value {
        let ts = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
        json!({
            "appointment_id": self.appointment_id,
            "pet": self.pet,
            "client": self.client,
            "service": self.service,
            "status": self.status,
            "check_in": ts(self.check_in),
            "check_out": self.check_out.map(ts),
            "price": self.price,
            "notes": self.notes,
            "event_type": self.event_type,
        })
    }
}

/// Changes to one appointment; `None` leaves a field as it is.
///
/// Pet, client, status, check-in and check-out show on the schedule list
/// (so an importer that skips unchanged rows sees them); price, notes and
/// service show only on the detail page.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BookingEdit {
    /// New pet name.
    pub pet: Option<String>,
    /// New client name.
    pub client: Option<String>,
    /// New service type.
    pub service: Option<String>,
    /// New status text.
    pub status: Option<String>,
    /// New check-in.
    pub check_in: Option<DateTime<Utc>>,
    /// New check-out (`Some(None)` removes it).
    pub check_out: Option<Option<DateTime<Utc>>>,
    /// New price in cents (`Some(None)` removes it).
    pub price_cents: Option<Option<i64>>,
    /// New notes (`Some(None)` removes them).
    pub notes: Option<Option<String>>,
}

/// One change made by [`RunningBookingSim::mutate_random`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Mutation {
    /// Cancelled the appointment.
    Cancelled(u64),
    /// Moved the check-out a day later (shows on the list).
    Extended(u64),
    /// Deleted the appointment (detail page 404).
    Deleted(u64),
}

/// Why the simulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum BookingSimError {
    /// Binding the loopback listener failed.
    #[error("cannot bind the booking simulator to 127.0.0.1: {0}")]
    Bind(#[from] std::io::Error),
}

/// Entry point: starts simulated booking sites.
#[derive(Debug)]
pub struct BookingSim;

impl BookingSim {
    /// Generates the seeded data and serves it on `127.0.0.1:0`.
    pub async fn start(config: BookingSimConfig) -> Result<RunningBookingSim, BookingSimError> {
        let appointments = data::generate(&config);
        let shared = Arc::new(server::Shared::new(config, appointments));
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let app = server::router(shared.clone());
        let task = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
                let _ = stop_rx.await;
            });
            if let Err(e) = serve.await {
                tracing::warn!(error = %e, "booking simulator stopped with an error");
            }
        });
        Ok(RunningBookingSim {
            addr,
            shared,
            stop: Some(stop_tx),
            task: Some(task),
        })
    }
}

/// A running simulated site. Dropping it stops the server.
#[derive(Debug)]
pub struct RunningBookingSim {
    addr: SocketAddr,
    shared: Arc<server::Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl RunningBookingSim {
    /// `http://127.0.0.1:<port>` (no trailing slash).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The socket address served.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The time zone of the site.
    pub fn tz(&self) -> Tz {
        self.shared.config.tz
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> BookingSimStats {
        self.shared.lock().stats.clone()
    }

    /// Resets the counters to zero.
    pub fn reset_stats(&self) {
        self.shared.lock().stats = BookingSimStats::default();
    }

    /// Replaces the injected faults.
    pub fn set_faults(&self, faults: Faults) {
        self.shared.lock().faults = faults;
    }

    /// Ends every live session now (the next request finds it expired).
    pub fn expire_sessions(&self) {
        self.shared.lock().expire_all();
    }

    /// Every boarding an importer could have seen, sorted by id: those on the
    /// site now (cancelled ones marked deleted when the list shows them or
    /// they were cancelled after start) and those deleted since start
    /// (marked deleted, with their last data).
    pub fn boardings(&self) -> Vec<SimBoarding> {
        let inner = self.shared.lock();
        let tz = self.shared.config.tz;
        let list_cancelled = self.shared.config.list_cancelled;
        inner
            .appointments
            .iter()
            .filter(|a| a.kind == Kind::Boarding)
            .filter(|a| list_cancelled || !(a.seeded_cancelled && a.is_cancelled()))
            .map(|a| SimBoarding {
                appointment_id: a.id.to_string(),
                pet: a.pet.clone(),
                client: a.client.clone(),
                service: a.service.clone(),
                status: a.status.clone(),
                check_in: a.check_in,
                check_out: a.check_out,
                price: a.price_cents.map(|c| c as f64 / 100.0),
                notes: a.notes.clone(),
                event_type: a.event_type.clone(),
                check_in_day: a.local_days(tz).0,
                deleted: a.removed || a.is_cancelled(),
            })
            .collect()
    }

    /// Ids of every appointment (boardings and others), not deleted.
    pub fn appointment_ids(&self) -> Vec<u64> {
        let inner = self.shared.lock();
        inner
            .appointments
            .iter()
            .filter(|a| !a.removed)
            .map(|a| a.id)
            .collect()
    }

    /// Cancels an appointment; false when unknown or deleted.
    pub fn cancel(&self, id: u64) -> bool {
        self.edit(
            id,
            BookingEdit {
                status: Some(CANCELLED.to_string()),
                ..BookingEdit::default()
            },
        )
    }

    /// Applies `edit`; false when the appointment is unknown or deleted.
    pub fn edit(&self, id: u64, edit: BookingEdit) -> bool {
        let mut inner = self.shared.lock();
        let Some(a) = inner.find_mut(id) else {
            return false;
        };
        if a.removed {
            return false;
        }
        apply(a, edit);
        true
    }

    /// Deletes an appointment: it leaves the schedule and its detail page
    /// answers 404. False when unknown or already deleted.
    pub fn delete(&self, id: u64) -> bool {
        let mut inner = self.shared.lock();
        match inner.find_mut(id) {
            Some(a) if !a.removed => {
                a.removed = true;
                true
            }
            _ => false,
        }
    }

    /// Cancels, extends or deletes about `fraction` of the live boardings,
    /// chosen with `seed`; returns what it did, sorted by id.
    pub fn mutate_random(&self, fraction: f64, seed: u64) -> Vec<Mutation> {
        let mut rng = StdRng::seed_from_u64(seed);
        let fraction = if fraction.is_finite() {
            fraction.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let mut inner = self.shared.lock();
        let mut done = Vec::new();
        for a in inner.appointments.iter_mut() {
            if a.kind != Kind::Boarding || a.removed || a.is_cancelled() || !rng.gen_bool(fraction)
            {
                continue;
            }
            match rng.gen_range(0..3) {
                0 => {
                    a.status = CANCELLED.to_string();
                    done.push(Mutation::Cancelled(a.id));
                }
                1 => {
                    a.check_out =
                        Some(a.check_out.unwrap_or(a.check_in) + chrono::Duration::days(1));
                    done.push(Mutation::Extended(a.id));
                }
                _ => {
                    a.removed = true;
                    done.push(Mutation::Deleted(a.id));
                }
            }
        }
        done
    }

    /// Stops the server and waits for it to finish.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for RunningBookingSim {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

fn apply(a: &mut Appointment, edit: BookingEdit) {
    let BookingEdit {
        pet,
        client,
        service,
        status,
        check_in,
        check_out,
        price_cents,
        notes,
    } = edit;
    if let Some(v) = pet {
        a.pet = v;
    }
    if let Some(v) = client {
        a.client = v;
    }
    if let Some(v) = service {
        a.kind = data::kind_of_service(&v);
        a.service = v;
    }
    if let Some(v) = status {
        a.status = v;
    }
    if let Some(v) = check_in {
        a.check_in = v;
    }
    if let Some(v) = check_out {
        a.check_out = v;
    }
    if let Some(v) = price_cents {
        a.price_cents = v;
    }
    if let Some(v) = notes {
        a.notes = v;
    }
}

#[cfg(test)]
mod tests;
