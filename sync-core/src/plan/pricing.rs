//! Rate planning: from the limits a server documents and the size of a job,
//! how many requests it takes, how fast they may go, how to cut the job into
//! batches and how long it lasts, for each pace preset.
//!
//! ```
//! use sync_core::plan::{plan, Preset, Workload};
//! use sync_core::RateLimits;
//!
//! // YClients: 200 requests a minute and 5 a second; 900 clients, one
//! // visit-history request each.
//! let limits = RateLimits::new(Some(5), Some(200));
//! let job = Workload::PerItem { items: 900, requests_per_item: 1.0 };
//! let p = plan(&limits, &job, &Preset::Aggressive).unwrap();
//! assert_eq!(p.requests, 900);
//! // Four whole minutes of 200 and 100 more, sent 5 a second, each window
//! // held 2% longer than the server's: the last one leaves 4 min 24 s
//! // after the first.
//! assert_eq!(p.eta.as_secs(), 264);
//! ```
//!
//! # How the ETA is computed
//!
//! The ETA replays the schedule of [`crate::RateLimiter`] for the effective
//! limits: each request goes at the earliest instant at which no window (per
//! second, per minute) would hold too many and the minimum spacing since the
//! previous one has passed. Requests of a window are therefore sent in bursts
//! (5 at once each second under 5/s), and the last, partial minute ends early.
//! Each window is held 2% longer than the server's, as the limiter does (a
//! guard against delays between grant and arrival): 900 requests under
//! 200/min and 5/s take 4 min 24 s, against the 4 min 30 s of `900 / 200 per
//! minute`. Between two batches the next request waits at
//! least [`PaceSettings::batch_interval`] after the last one of the previous
//! batch.
//!
//! The ETA is the time from the first request to the last one with no server
//! latency: a lower bound on the wall time of a run that keeps the limiter
//! busy. It does not include the wait until [`PaceSettings::start_at`]. The
//! first [`EXACT_REQUESTS`] requests (and batches) are replayed exactly; the
//! rest, if any, is added at the sustained rate (off by less than one
//! window).

use std::fmt;
use std::num::NonZeroU32;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Days, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

use crate::error::{Result, SyncError};
use crate::limit::limits::{guarded, RateLimits};
use crate::limit::schedule::{Schedule, SlowDown};

/// How many requests (and batches) the ETA replays one by one; beyond this
/// the rest is added at the sustained rate. 250,000 requests are 21 hours at
/// 200 a minute, and replay in a few milliseconds.
pub const EXACT_REQUESTS: u64 = 250_000;

/// At or above this pressure (share of the budget or of the per-second
/// burst in use) a plan is [`Risk::High`].
pub const HIGH_RISK_PRESSURE: f64 = 0.95;
/// At or above this pressure (and below the high one) a plan is
/// [`Risk::Medium`].
pub const MEDIUM_RISK_PRESSURE: f64 = 0.75;
/// [`recommend`] picks [`Preset::Night`] when the job would take longer than
/// this at [`Preset::Balanced`].
pub const NIGHT_AFTER: Duration = Duration::from_secs(60 * 60);

/// How fast to go and how to cut the work: what a preset stands for.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PaceSettings {
    /// Share of the documented limits to use, in `(0, 1]` (0.8 = 80%).
    /// Counts are scaled down (rounded down, at least 1) and the minimum
    /// spacing scaled up, as [`RateLimits::scaled`] does.
    pub utilization: f64,
    /// Pause between two batches (after the last request of one, before the
    /// first of the next). Zero for none.
    pub batch_interval: Duration,
    /// How long one batch should take at the sustained rate; sets the batch
    /// size. Must be positive. Keep it well under a session's life (the
    /// booking site drops sessions after about 6 minutes) and short enough
    /// that losing the batch in flight costs little.
    pub target_batch_duration: Duration,
    /// Local time of day at which the run should start (in the business's
    /// time zone), if it should wait for one.
    pub start_at: Option<NaiveTime>,
}

impl PaceSettings {
    /// Checks the settings: utilization a number in `(0, 1]`, a positive
    /// target batch duration.
    pub fn validate(&self) -> Result<()> {
        let u = self.utilization;
        if !(u.is_finite() && u > 0.0 && u <= 1.0) {
            return Err(SyncError::invalid_input(format!(
                "utilization must be a share in (0, 1] (0.8 = 80%), got {u}"
            )));
        }
        if self.target_batch_duration.is_zero() {
            return Err(SyncError::invalid_input(
                "target batch duration must be longer than zero",
            ));
        }
        Ok(())
    }

    /// The first instant at or after `now` at which the wall clock in `tz`
    /// shows [`Self::start_at`]; `None` when there is no start time (start
    /// now). When that local time does not exist on a day (a DST jump), the
    /// first local time after it that exists is used.
    pub fn next_start(&self, now: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
        let start = self.start_at?;
        let today = now.with_timezone(&tz).date_naive();
        (0..3)
            .filter_map(|d| today.checked_add_days(Days::new(d)))
            .filter_map(|day| first_existing_instant(day.and_time(start), tz))
            .find(|t| *t >= now)
    }
}

// The UTC instant of a local date-time, or of the first local time after it
// that exists (DST gaps are at most a few hours).
fn first_existing_instant(local: chrono::NaiveDateTime, tz: Tz) -> Option<DateTime<Utc>> {
    let mut t = local;
    for _ in 0..(4 * 4) {
        if let Some(at) = tz.from_local_datetime(&t).earliest() {
            return Some(at.with_timezone(&Utc));
        }
        t = t.checked_add_signed(chrono::Duration::minutes(15))?;
    }
    None
}

/// A named pace, or custom settings.
///
/// Every named preset keeps batches between 2 and 4 minutes: well inside the
/// booking site's 6-minute session (a batch rarely needs a new login half
/// way), and short enough that a killed run loses little (only the batch in
/// flight is redone).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Preset {
    /// 100% of the limits, no pause, 4-minute batches. The limiter holds
    /// every window exactly, so this does not break the documented limits,
    /// but it leaves no room for anything else on the same budget (YClients
    /// counts every company synced from one IP address together) nor for a
    /// server that counts a little differently: expect some 429s. Use it
    /// only when nothing else uses the credentials and speed matters.
    Aggressive,
    /// 80% of the limits, 5 s between batches, 3-minute batches. A fifth of
    /// the budget stays free for other clients of the same account or IP
    /// and for retries, and the short pause after each checkpoint lets their
    /// bursts through. The default for daytime runs.
    Balanced,
    /// 50% of the limits, 30 s between batches, 2-minute batches: for
    /// business hours on a shared budget or a fragile site. Short batches
    /// are checkpointed often, so little is redone after an interruption.
    Conservative,
    /// 90% of the limits from 01:00 local time, no pause, 4-minute batches:
    /// for long jobs, when the business's own staff and integrations are
    /// idle and the shared budget is free. 10% stays free for retries.
    Night,
    /// Settings given by the user.
    Custom(PaceSettings),
}

impl Preset {
    /// The four named presets, in the order of the strategies table.
    pub const ALL: [Preset; 4] = [
        Preset::Aggressive,
        Preset::Balanced,
        Preset::Conservative,
        Preset::Night,
    ];

    /// The lower-case name: `aggressive`, `balanced`, `conservative`,
    /// `night` or `custom`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Aggressive => "aggressive",
            Self::Balanced => "balanced",
            Self::Conservative => "conservative",
            Self::Night => "night",
            Self::Custom(_) => "custom",
        }
    }

    /// The settings the preset stands for.
    pub fn settings(&self) -> PaceSettings {
        const MINUTE: u64 = 60;
        let pace = |utilization, pause_s, batch_min, start_at| PaceSettings {
            utilization,
            batch_interval: Duration::from_secs(pause_s),
            target_batch_duration: Duration::from_secs(batch_min * MINUTE),
            start_at,
        };
        match self {
            Self::Aggressive => pace(1.0, 0, 4, None),
            Self::Balanced => pace(0.8, 5, 3, None),
            Self::Conservative => pace(0.5, 30, 2, None),
            Self::Night => pace(0.9, 0, 4, NaiveTime::from_hms_opt(1, 0, 0)),
            Self::Custom(settings) => *settings,
        }
    }
}

impl fmt::Display for Preset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Preset {
    type Err = SyncError;

    /// Parses a named preset, ignoring case and surrounding spaces.
    fn from_str(s: &str) -> Result<Self> {
        let name = s.trim();
        Self::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(name))
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(Preset::name).collect();
                SyncError::invalid_input(format!(
                    "unknown pace preset {name:?}; valid presets: {}",
                    names.join(", ")
                ))
            })
    }
}

/// The size of a job, in the units batches are made of.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Workload {
    /// One or more requests per item, e.g. YClients visit history: at least
    /// one request per client, one more per 25 visits. Batches are made of
    /// items.
    PerItem {
        /// Items to fetch (clients, appointments, days). Zero is an empty job.
        items: u64,
        /// Average requests per item; positive (it may be below 1 when one
        /// request serves several items, e.g. 1/7 for week pages per day).
        requests_per_item: f64,
    },
    /// Records listed page by page within date windows, e.g. YClients
    /// records by visit date. Batches are made of windows.
    Paged {
        /// Records in the whole range. Zero still costs one request per
        /// window.
        records: u64,
        /// Records per page (YClients: 200); positive.
        page_size: u32,
        /// Date windows queried separately (each costs at least one
        /// request); positive.
        windows: u64,
    },
}

impl Workload {
    /// How many requests the job costs.
    ///
    /// `PerItem`: `ceil(items × requests_per_item)`, at least 1 when there
    /// is an item. `Paged`: with records
    /// spread evenly over the windows, `windows × max(1, ceil(records /
    /// (windows × page_size)))`; the real count lies between
    /// `max(windows, ceil(records / page_size))` and `ceil(records /
    /// page_size) + windows`. Saturates at `u64::MAX`.
    ///
    /// Errors with [`SyncError::InvalidInput`] when a parameter is zero,
    /// negative or not a number.
    pub fn requests(&self) -> Result<u64> {
        self.validate()?;
        Ok(match *self {
            Self::PerItem {
                items,
                requests_per_item,
            } => {
                if items == 0 {
                    0
                } else {
                    // `as` saturates: more than u64::MAX requests count as
                    // u64::MAX. Any item costs something: at least 1.
                    (ceil_tolerant(items as f64 * requests_per_item) as u64).max(1)
                }
            }
            Self::Paged {
                records,
                page_size,
                windows,
            } => {
                let per_window_capacity = u128::from(windows) * u128::from(page_size);
                let pages_per_window = u128::from(records).div_ceil(per_window_capacity).max(1);
                u64::try_from(u128::from(windows) * pages_per_window).unwrap_or(u64::MAX)
            }
        })
    }

    /// How many units the job is cut into batches by: items or windows.
    pub fn units(&self) -> u64 {
        match *self {
            Self::PerItem { items, .. } => items,
            Self::Paged { windows, .. } => windows,
        }
    }

    /// The name of the unit, for people: `items` or `windows`.
    pub fn unit_name(&self) -> &'static str {
        match self {
            Self::PerItem { .. } => "items",
            Self::Paged { .. } => "windows",
        }
    }

    fn validate(&self) -> Result<()> {
        match *self {
            Self::PerItem {
                requests_per_item, ..
            } => {
                if !(requests_per_item.is_finite() && requests_per_item > 0.0) {
                    return Err(SyncError::invalid_input(format!(
                        "requests per item must be a positive number, got {requests_per_item}"
                    )));
                }
            }
            Self::Paged {
                page_size, windows, ..
            } => {
                if page_size == 0 {
                    return Err(SyncError::invalid_input("page size must be at least 1"));
                }
                if windows == 0 {
                    return Err(SyncError::invalid_input(
                        "a paged workload needs at least one date window",
                    ));
                }
            }
        }
        Ok(())
    }
}

/// How likely a plan is to meet 429s.
///
/// The rule: the pressure is the larger of the budget use (effective
/// sustained rate / documented sustained rate) and the burst use (most
/// requests the effective limits let into one second / documented
/// per-second limit). Pressure of [`HIGH_RISK_PRESSURE`] or more is `High`,
/// of [`MEDIUM_RISK_PRESSURE`] or more `Medium`, anything less `Low`.
/// Unlimited servers are `Low`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Risk {
    /// Plenty of headroom.
    Low,
    /// Some headroom: fine unless something else uses the same budget hard.
    Medium,
    /// At or next to the limit: any other traffic on the budget, or a
    /// server counting differently, leads to 429s.
    High,
}

impl Risk {
    /// `low`, `medium` or `high`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
        }
    }
}

impl fmt::Display for Risk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One row of the strategies table: how a job runs under one preset.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Plan {
    /// The preset planned for.
    pub preset: Preset,
    /// Its settings.
    pub settings: PaceSettings,
    /// The limits the limiter should hold: the documented ones scaled by the
    /// utilization.
    pub limits: RateLimits,
    /// Requests the job costs.
    pub requests: u64,
    /// Units (items or windows) the job is cut into batches by.
    pub units: u64,
    /// Time between requests at the sustained rate (zero when unlimited).
    pub pacing: Duration,
    /// Sustained rate in requests per second; `None` when unlimited.
    pub rate_per_second: Option<f64>,
    /// Sustained rate in requests per minute; `None` when unlimited.
    pub rate_per_minute: Option<f64>,
    /// Units per batch, so that one batch takes about the target batch
    /// duration at the sustained rate; at least 1, at most all units.
    pub batch_size: u64,
    /// Number of batches (`ceil(units / batch_size)`).
    pub batches: u64,
    /// Pause between two batches.
    pub batch_interval: Duration,
    /// Time from the first request to the last, pauses included (see the
    /// module documentation); zero when unlimited.
    pub eta: Duration,
    /// Share of the documented sustained budget used while a batch runs
    /// (0.8 = 80%); `None` when unlimited.
    pub budget_use: Option<f64>,
    /// How likely the plan is to meet 429s.
    pub risk: Risk,
    /// Local time of day to start at, if any.
    pub start_at: Option<NaiveTime>,
}

impl Plan {
    /// The batch size as the engine's splitters take it (capped at
    /// `u32::MAX`).
    pub fn batch_size_nonzero(&self) -> NonZeroU32 {
        NonZeroU32::new(u32::try_from(self.batch_size).unwrap_or(u32::MAX))
            .unwrap_or(NonZeroU32::MIN)
    }

    /// About how long one full batch takes at the sustained rate.
    pub fn batch_duration(&self) -> Duration {
        match (self.rate_per_second, self.units) {
            (Some(rate), units) if units > 0 => {
                let per_unit = self.requests as f64 / units as f64;
                secs_to_duration(self.batch_size as f64 * per_unit / rate)
            }
            _ => Duration::ZERO,
        }
    }
}

/// Plans `workload` under `limits` (the documented ones) at `preset`.
///
/// Errors with [`SyncError::InvalidInput`] for invalid settings (see
/// [`PaceSettings::validate`]), an invalid workload (see
/// [`Workload::requests`]) or a limit of zero requests.
pub fn plan(limits: &RateLimits, workload: &Workload, preset: &Preset) -> Result<Plan> {
    let settings = preset.settings();
    settings.validate()?;
    validate_limits(limits)?;
    let requests = workload.requests()?;
    let units = workload.units();
    let effective = scale_checked(limits, settings.utilization)?;

    let rate = effective.sustained_rate();
    let pacing = rate.map_or(Duration::ZERO, |r| secs_to_duration(1.0 / r));
    let batch_size = batch_size(units, requests, rate, settings.target_batch_duration);
    let batches = units.div_ceil(batch_size);
    let layout = Layout {
        units,
        requests,
        batch_size,
        batches,
    };
    let eta = match rate {
        Some(rate) => replay_eta(&effective, &layout, settings.batch_interval, rate),
        None => Duration::ZERO,
    };
    let budget_use = rate.zip(limits.sustained_rate()).map(|(e, d)| e / d);
    let risk = risk(limits, &effective, budget_use);

    Ok(Plan {
        preset: *preset,
        settings,
        limits: effective,
        requests,
        units,
        pacing,
        rate_per_second: rate,
        rate_per_minute: rate.map(|r| r * 60.0),
        batch_size,
        batches,
        batch_interval: settings.batch_interval,
        eta,
        budget_use,
        risk,
        start_at: settings.start_at,
    })
}

/// Plans `workload` at each of [`Preset::ALL`], in that order.
pub fn plan_all(limits: &RateLimits, workload: &Workload) -> Result<Vec<Plan>> {
    Preset::ALL
        .iter()
        .map(|preset| plan(limits, workload, preset))
        .collect()
}

/// The preset to use when the user did not choose one.
///
/// The rule: [`Preset::Balanced`] when the job takes at most
/// [`NIGHT_AFTER`] (one hour) at that pace: a short job loses little by
/// leaving a fifth of the budget free. Longer jobs get [`Preset::Night`]: a
/// job that would hold the shared budget for hours is better run when the
/// business is closed, and runs faster there (90%). [`Preset::Aggressive`]
/// is never recommended: it leaves no headroom, so it is for a user who
/// knows nothing else uses the budget.
pub fn recommend(limits: &RateLimits, workload: &Workload) -> Result<Preset> {
    let balanced = plan(limits, workload, &Preset::Balanced)?;
    Ok(if balanced.eta <= NIGHT_AFTER {
        Preset::Balanced
    } else {
        Preset::Night
    })
}

/// One way of fetching the same data, e.g. "visits per client".
#[derive(Clone, Debug, PartialEq)]
pub struct Strategy {
    /// A short name for people.
    pub name: String,
    /// What it costs.
    pub workload: Workload,
}

impl Strategy {
    /// A strategy named `name` costing `workload`.
    pub fn new(name: impl Into<String>, workload: Workload) -> Self {
        Self {
            name: name.into(),
            workload,
        }
    }
}

/// The cost of one strategy at one preset.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct StrategyEstimate {
    /// The strategy's name.
    pub name: String,
    /// Requests it costs.
    pub requests: u64,
    /// How long it takes.
    pub eta: Duration,
    /// The whole plan.
    pub plan: Plan,
}

/// Strategies priced side by side, and the cheapest.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct StrategyComparison {
    /// One estimate per strategy, in the order given.
    pub estimates: Vec<StrategyEstimate>,
    /// Index in `estimates` of the cheapest: fewest requests, then shortest
    /// ETA, then the first given.
    pub cheapest_index: usize,
}

impl StrategyComparison {
    /// The cheapest strategy's estimate.
    pub fn cheapest(&self) -> &StrategyEstimate {
        &self.estimates[self.cheapest_index]
    }
}

/// Prices each strategy at `preset` and picks the cheapest (fewest requests;
/// ties by ETA, then by order). Errors with [`SyncError::InvalidInput`] when
/// `strategies` is empty or any of them cannot be planned.
pub fn compare_strategies(
    limits: &RateLimits,
    preset: &Preset,
    strategies: &[Strategy],
) -> Result<StrategyComparison> {
    let estimates = strategies
        .iter()
        .map(|s| {
            let plan = plan(limits, &s.workload, preset).map_err(|e| match e {
                SyncError::InvalidInput { message } => {
                    SyncError::invalid_input(format!("strategy {:?}: {message}", s.name))
                }
                other => other,
            })?;
            Ok(StrategyEstimate {
                name: s.name.clone(),
                requests: plan.requests,
                eta: plan.eta,
                plan,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let cheapest_index = estimates
        .iter()
        .enumerate()
        .min_by_key(|(i, e)| (e.requests, e.eta, *i))
        .map(|(i, _)| i)
        .ok_or_else(|| SyncError::invalid_input("no strategy to compare"))?;
    Ok(StrategyComparison {
        estimates,
        cheapest_index,
    })
}

fn validate_limits(limits: &RateLimits) -> Result<()> {
    for (name, n) in [
        ("per-second", limits.per_second),
        ("per-minute", limits.per_minute),
    ] {
        if n == Some(0) {
            return Err(SyncError::invalid_input(format!(
                "a {name} limit of 0 requests allows nothing; leave it unset for no limit"
            )));
        }
    }
    Ok(())
}

// `limits.scaled(utilization)`, refusing a spacing too long to represent
// (which `scaled` would panic on).
fn scale_checked(limits: &RateLimits, utilization: f64) -> Result<RateLimits> {
    if let Some(spacing) = limits.min_spacing {
        Duration::try_from_secs_f64(spacing.as_secs_f64() / utilization).map_err(|_| {
            SyncError::invalid_input(format!(
                "utilization {utilization} stretches the {spacing:?} spacing beyond any duration"
            ))
        })?;
    }
    Ok(limits.scaled(utilization))
}

fn batch_size(units: u64, requests: u64, rate: Option<f64>, target: Duration) -> u64 {
    if units == 0 {
        return 1;
    }
    let Some(rate) = rate else {
        return units;
    };
    let requests_per_unit = requests as f64 / units as f64;
    let per_batch = floor_tolerant(target.as_secs_f64() * rate / requests_per_unit);
    // `as` saturates (and maps NaN to 0), then the clamp keeps it in 1..=units.
    (per_batch as u64).clamp(1, units)
}

/// How the requests fall into batches.
struct Layout {
    units: u64,
    requests: u64,
    batch_size: u64,
    batches: u64,
}

impl Layout {
    /// Requests spent on the first `units` units: `ceil(units × requests /
    /// total units)`, so that every batch gets its share and they add up.
    fn requests_before(&self, units: u64) -> u64 {
        if self.units == 0 {
            return 0;
        }
        let r = (u128::from(units) * u128::from(self.requests)).div_ceil(u128::from(self.units));
        u64::try_from(r).unwrap_or(u64::MAX)
    }

    fn batch_requests(&self, batch: u64) -> u64 {
        let start = batch.saturating_mul(self.batch_size).min(self.units);
        let end = start.saturating_add(self.batch_size).min(self.units);
        self.requests_before(end) - self.requests_before(start)
    }
}

/// Replays the limiter's schedule (see the module documentation).
fn replay_eta(limits: &RateLimits, layout: &Layout, pause: Duration, rate: f64) -> Duration {
    let mut schedule = Replay::new(limits);
    let (mut granted, mut steps) = (0u64, 0u64);
    for batch in 0..layout.batches {
        if batch > 0 {
            schedule.pause(pause);
        }
        let n = layout.batch_requests(batch);
        let exact = n.min(EXACT_REQUESTS.saturating_sub(steps));
        for _ in 0..exact {
            schedule.grant();
        }
        granted += exact;
        // A batch without requests still costs a step (and its pause).
        steps = steps.saturating_add(exact.max(1));
        let pauses_left = layout.batches - batch - 1;
        if exact < n || (steps >= EXACT_REQUESTS && pauses_left > 0) {
            // Too long to replay: add the rest at the sustained rate, with
            // the limiter's 2% window guard.
            let left = layout.requests - granted;
            let pauses = pause.saturating_mul(u32::try_from(pauses_left).unwrap_or(u32::MAX));
            let guard = guarded(Duration::from_secs(1)).as_secs_f64();
            let tail = secs_to_duration(left as f64 / rate * guard).saturating_add(pauses);
            return schedule.clock.saturating_add(tail);
        }
    }
    schedule.clock
}

/// The limiter's schedule (the one in `crate::limit::schedule`), replayed
/// greedily: each request as early as the windows allow, in time since the
/// first request.
struct Replay {
    limits: RateLimits,
    schedule: Schedule,
    slow: SlowDown,
    // Earliest time of the next grant: the last grant, or the end of a pause.
    clock: Duration,
}

impl Replay {
    fn new(limits: &RateLimits) -> Self {
        Self {
            limits: *limits,
            schedule: Schedule::new(),
            slow: SlowDown::default(),
            clock: Duration::ZERO,
        }
    }

    fn grant(&mut self) {
        self.clock = self.schedule.reserve(&self.limits, self.clock, &self.slow);
    }

    fn pause(&mut self, pause: Duration) {
        self.clock = self.clock.saturating_add(pause);
    }
}

fn risk(documented: &RateLimits, effective: &RateLimits, budget_use: Option<f64>) -> Risk {
    let Some(budget_use) = budget_use else {
        return Risk::Low;
    };
    let burst_use = documented
        .per_second
        .map(|allowed| most_in_one_second(effective) / f64::from(allowed))
        .unwrap_or(0.0);
    let pressure = budget_use.max(burst_use);
    if pressure >= HIGH_RISK_PRESSURE {
        Risk::High
    } else if pressure >= MEDIUM_RISK_PRESSURE {
        Risk::Medium
    } else {
        Risk::Low
    }
}

// The most requests `limits` let into one second.
fn most_in_one_second(limits: &RateLimits) -> f64 {
    let by_spacing = limits
        .min_spacing
        .filter(|d| !d.is_zero())
        .map(|d| (1_000_000_000u128.div_ceil(d.as_nanos())) as f64);
    [
        limits.per_second.map(f64::from),
        limits.per_minute.map(f64::from),
        by_spacing,
    ]
    .into_iter()
    .flatten()
    .fold(f64::INFINITY, f64::min)
}

fn secs_to_duration(secs: f64) -> Duration {
    Duration::try_from_secs_f64(secs).unwrap_or(if secs > 0.0 {
        Duration::MAX
    } else {
        Duration::ZERO
    })
}

// Products like 10 × 1.1 land a hair above 11; do not count that as 12.
fn ceil_tolerant(x: f64) -> f64 {
    let r = x.round();
    if (x - r).abs() <= 1e-9 * r.abs().max(1.0) {
        r
    } else {
        x.ceil()
    }
}

// And 3 × (1/3) a hair below 1: do not count that as 0.
fn floor_tolerant(x: f64) -> f64 {
    let r = x.round();
    if (x - r).abs() <= 1e-9 * r.abs().max(1.0) {
        r
    } else {
        x.floor()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limit::limiter::RateLimiter;

    fn yclients() -> RateLimits {
        RateLimits::new(Some(5), Some(200))
    }
    fn clients(n: u64) -> Workload {
        Workload::PerItem {
            items: n,
            requests_per_item: 1.0,
        }
    }
    fn custom(utilization: f64) -> Preset {
        Preset::Custom(PaceSettings {
            utilization,
            batch_interval: Duration::ZERO,
            target_batch_duration: Duration::from_secs(240),
            start_at: None,
        })
    }

    #[test]
    fn visits_per_client_at_each_preset() {
        let job = clients(900);

        // Aggressive, 5/s and 200/min, windows held 2% longer (1.02 s and
        // 61.2 s): 200 requests go in 40 seconds of 5, 200 ms apart (0 s..
        // 40.58 s), the next 200 from 61.2 s, ... the 801st at 4 x 61.2 =
        // 244.8 s; the last 100 in 20 seconds of 5, the 900th at 244.8 +
        // 19 x 1.02 + 0.8 = 264.98 s (the steady-state 900 / 200 per minute
        // would say 4 min 30 s).
        // Batches: 240 s × 10/3 requests/s = 800 clients, so 800 + 100.
        let p = plan(&yclients(), &job, &Preset::Aggressive).unwrap();
        assert_eq!(p.requests, 900);
        assert_eq!(p.eta, Duration::from_millis(264_980));
        assert_eq!(p.pacing, Duration::from_millis(300));
        assert_eq!((p.batch_size, p.batches), (800, 2));
        assert!((p.budget_use.unwrap() - 1.0).abs() < 1e-9);
        assert_eq!(p.risk, Risk::High);
        assert!((p.rate_per_minute.unwrap() - 200.0).abs() < 1e-9);

        // Balanced, 80%: 4/s and 160/min. 160 requests in 40 seconds of 4,
        // 250 ms apart (0..40.53 s), a new 160 every 61.2 s; the 900th is
        // request 100 of the sixth minute: 5 x 61.2 + 24 x 1.02 + 0.75 =
        // 331.23 s (the steady state 900 / 160 per minute would say 5 min
        // 37.5 s).
        // Batches: 180 s × 8/3 per s = 480 clients, so 480 + 420; the 5 s
        // pause after request 480 ends at 167.18 s, before the per-minute
        // window lets request 481 go at 183.6 s anyway, so it costs nothing.
        let p = plan(&yclients(), &job, &Preset::Balanced).unwrap();
        assert_eq!(p.eta, Duration::from_millis(331_230));
        assert_eq!(p.pacing, Duration::from_millis(375));
        assert_eq!(p.limits, RateLimits::new(Some(4), Some(160)));
        assert_eq!((p.batch_size, p.batches), (480, 2));
        assert!((p.budget_use.unwrap() - 0.8).abs() < 1e-9);
        assert_eq!(p.risk, Risk::Medium);

        // Night, 90%: 4/s (4.5 rounded down) and 180/min: a minute's 180 go
        // in 45 seconds of 4; the 900th is the last of the fifth minute:
        // 4 x 61.2 + 44 x 1.02 + 0.75 = 290.43 s. Budget use 3/s of 10/3
        // per s = 0.9.
        let p = plan(&yclients(), &job, &Preset::Night).unwrap();
        assert_eq!(p.eta, Duration::from_millis(290_430));
        assert!((p.budget_use.unwrap() - 0.9).abs() < 1e-9);
        assert_eq!(p.risk, Risk::Medium);
        assert_eq!(p.start_at, NaiveTime::from_hms_opt(1, 0, 0));

        // Conservative, 50%: 2/s and 100/min, 100 per minute (1.67/s).
        // Batches of 120 s × 5/3 per s = 200 clients: 4 × 200 + 100. A batch
        // of 200 takes 61.2 + 49 x 1.02 + 0.5 = 111.68 s, then a 30 s pause:
        // 4 × 141.68 s, and the last 100 go in 50.48 s: 566.72 + 50.48 =
        // 617.20 s.
        let p = plan(&yclients(), &job, &Preset::Conservative).unwrap();
        assert_eq!((p.batch_size, p.batches), (200, 5));
        assert_eq!(p.eta, Duration::from_millis(617_200));
        assert!((p.budget_use.unwrap() - 0.5).abs() < 1e-9);
        assert_eq!(p.risk, Risk::Low);
    }

    #[test]
    fn records_by_date_window_are_cheaper() {
        // 20,000 records, 200 a page: 100 pages when in one window. In 12
        // monthly windows of about 1,667 records: 9 pages each, 108 requests.
        let one = Workload::Paged {
            records: 20_000,
            page_size: 200,
            windows: 1,
        };
        assert_eq!(one.requests().unwrap(), 100);
        let monthly = Workload::Paged {
            records: 20_000,
            page_size: 200,
            windows: 12,
        };
        assert_eq!(monthly.requests().unwrap(), 108);
        // An empty range still costs one request per window.
        let empty = Workload::Paged {
            records: 0,
            page_size: 200,
            windows: 7,
        };
        assert_eq!(empty.requests().unwrap(), 7);

        let strategies = [
            Strategy::new("visits per client", clients(900)),
            Strategy::new("records by date window", monthly),
        ];
        let c = compare_strategies(&yclients(), &Preset::Balanced, &strategies).unwrap();
        assert_eq!(c.cheapest_index, 1);
        assert_eq!(c.cheapest().name, "records by date window");
        assert_eq!(c.estimates[0].requests, 900);
        assert_eq!(c.estimates[1].requests, 108);
        // 108 requests at 4/s: 27 seconds of 4 (250 ms apart), 1.02 s
        // apart; the last at 26 x 1.02 + 0.75 = 27.27 s.
        assert_eq!(c.estimates[1].eta, Duration::from_millis(27_270));
    }

    #[test]
    fn ties_go_to_the_shorter_eta_then_the_first() {
        let same = Strategy::new("a", clients(50));
        let also = Strategy::new("b", clients(50));
        let c = compare_strategies(&yclients(), &Preset::Balanced, &[same, also]).unwrap();
        assert_eq!(c.cheapest_index, 0);
        assert!(compare_strategies(&yclients(), &Preset::Balanced, &[]).is_err());
        let bad = Strategy::new(
            "broken",
            Workload::Paged {
                records: 1,
                page_size: 0,
                windows: 1,
            },
        );
        let e = compare_strategies(&yclients(), &Preset::Balanced, &[bad]).unwrap_err();
        assert!(e.to_string().contains("broken"), "{e}");
    }

    #[test]
    fn booking_site_keeps_batches_inside_a_session() {
        // A year of schedule: 53 week pages and 400 appointment pages, 453
        // requests, counted per appointment: 1.1325 requests each.
        let site = RateLimits::UNLIMITED.with_min_spacing(Duration::from_millis(1500));
        let job = Workload::PerItem {
            items: 400,
            requests_per_item: 1.1325,
        };
        assert_eq!(job.requests().unwrap(), 453);

        // Aggressive: one request every 1.5 s, 452 gaps: 678 s (11 min 18 s).
        // 240 s hold 160 requests = 141 appointments (160 / 1.1325, rounded
        // down): batches of 141, 141, 118.
        let p = plan(&site, &job, &Preset::Aggressive).unwrap();
        assert_eq!(p.eta, Duration::from_secs(678));
        assert_eq!((p.batch_size, p.batches), (141, 3));
        assert_eq!(p.risk, Risk::High);

        // Balanced: spacing 1.5 / 0.8 = 1.875 s; 180 s hold 96 requests = 84
        // appointments; 5 batches (4 × 84 + 64). 448 gaps of 1.875 s inside
        // batches and 4 of 5 s between them: 840 + 20 = 860 s.
        let p = plan(&site, &job, &Preset::Balanced).unwrap();
        assert_eq!(p.limits.min_spacing, Some(Duration::from_millis(1875)));
        assert_eq!((p.batch_size, p.batches), (84, 5));
        assert_eq!(p.eta, Duration::from_secs(860));

        // Every preset keeps a batch well inside a 6-minute session.
        for p in plan_all(&site, &job).unwrap() {
            assert!(p.batch_duration() <= Duration::from_secs(4 * 60), "{p:?}");
            assert!(p.batch_duration() > Duration::ZERO);
        }
    }

    #[test]
    fn eta_grows_as_utilization_falls() {
        let job = clients(900);
        let etas: Vec<Duration> = [1.0, 0.9, 0.8, 0.5, 0.25, 0.1]
            .into_iter()
            .map(|u| plan(&yclients(), &job, &custom(u)).unwrap().eta)
            .collect();
        assert!(etas.windows(2).all(|w| w[0] < w[1]), "{etas:?}");
        // The named presets, sorted by utilization: 100%, 90%, 80%, 50%.
        let mut by_use: Vec<(f64, Duration)> = Preset::ALL
            .iter()
            .map(|p| {
                (
                    p.settings().utilization,
                    plan(&yclients(), &job, p).unwrap().eta,
                )
            })
            .collect();
        by_use.sort_by(|a, b| b.0.total_cmp(&a.0));
        assert!(by_use.windows(2).all(|w| w[0].1 < w[1].1), "{by_use:?}");
    }

    #[test]
    fn batches_cover_every_item() {
        for items in [1, 7, 799, 800, 801, 12_345] {
            for p in plan_all(&yclients(), &clients(items)).unwrap() {
                assert!(p.batch_size >= 1);
                assert!(p.batch_size * p.batches >= items, "{p:?}");
                assert!(p.batch_size * (p.batches - 1) < items, "{p:?}");
            }
        }
    }

    #[test]
    fn unlimited_is_instant_and_low_risk() {
        let p = plan(
            &RateLimits::UNLIMITED,
            &clients(1000),
            &Preset::Conservative,
        )
        .unwrap();
        assert_eq!((p.eta, p.pacing), (Duration::ZERO, Duration::ZERO));
        assert_eq!((p.batch_size, p.batches), (1000, 1));
        assert_eq!(
            (p.risk, p.budget_use, p.rate_per_second),
            (Risk::Low, None, None)
        );
    }

    #[test]
    fn empty_job_costs_nothing() {
        let p = plan(&yclients(), &clients(0), &Preset::Balanced).unwrap();
        assert_eq!((p.requests, p.batches, p.eta), (0, 0, Duration::ZERO));
        assert_eq!(p.batch_size, 1);
    }

    #[test]
    fn invalid_inputs_are_errors() {
        let bad_presets = [f64::NAN, 0.0, -0.5, 1.5, f64::INFINITY].map(custom);
        for preset in bad_presets {
            let e = plan(&yclients(), &clients(10), &preset).unwrap_err();
            assert!(matches!(e, SyncError::InvalidInput { .. }), "{e}");
            assert!(e.to_string().contains("utilization"), "{e}");
        }
        let zero_batch = Preset::Custom(PaceSettings {
            target_batch_duration: Duration::ZERO,
            ..Preset::Balanced.settings()
        });
        assert!(plan(&yclients(), &clients(10), &zero_batch).is_err());

        for rpi in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let w = Workload::PerItem {
                items: 10,
                requests_per_item: rpi,
            };
            assert!(w.requests().is_err());
            assert!(plan(&yclients(), &w, &Preset::Balanced).is_err());
        }
        for (page_size, windows) in [(0, 1), (200, 0)] {
            let w = Workload::Paged {
                records: 10,
                page_size,
                windows,
            };
            assert!(matches!(w.requests(), Err(SyncError::InvalidInput { .. })));
        }
        for limits in [
            RateLimits::new(Some(0), None),
            RateLimits::new(None, Some(0)),
        ] {
            let e = plan(&limits, &clients(10), &Preset::Balanced).unwrap_err();
            assert!(e.to_string().contains("0 requests"), "{e}");
        }
        // A tiny utilization that would stretch the spacing past any duration.
        let spaced = RateLimits::UNLIMITED.with_min_spacing(Duration::from_secs(10));
        assert!(plan(&spaced, &clients(10), &custom(1e-300)).is_err());
        assert!(recommend(
            &yclients(),
            &Workload::PerItem {
                items: 1,
                requests_per_item: 0.0
            }
        )
        .is_err());
    }

    #[test]
    fn extreme_inputs_do_not_panic() {
        let huge = Workload::PerItem {
            items: u64::MAX,
            requests_per_item: 1e300,
        };
        let p = plan(&yclients(), &huge, &Preset::Conservative).unwrap();
        assert_eq!(p.requests, u64::MAX);
        assert!(p.eta > Duration::from_secs(60 * 60 * 24 * 365));
        // `RateLimits::scaled` would panic on this spacing: refused instead.
        let endless = RateLimits::UNLIMITED.with_min_spacing(Duration::MAX);
        assert!(plan(&endless, &clients(3), &Preset::Aggressive).is_err());
        let slow = RateLimits::UNLIMITED.with_min_spacing(Duration::from_secs(u64::MAX / 4));
        let p = plan(&slow, &clients(5), &Preset::Aggressive).unwrap();
        assert_eq!(p.eta, Duration::MAX);
        let paged = Workload::Paged {
            records: u64::MAX,
            page_size: 1,
            windows: u64::MAX,
        };
        assert_eq!(paged.requests().unwrap(), u64::MAX);
        plan(
            &RateLimits::new(Some(u32::MAX), Some(u32::MAX)),
            &paged,
            &Preset::Night,
        )
        .unwrap();
        let tiny = Workload::PerItem {
            items: u64::MAX,
            requests_per_item: 1e-300,
        };
        assert_eq!(tiny.requests().unwrap(), 1);
        plan(&yclients(), &tiny, &Preset::Balanced).unwrap();
    }

    #[test]
    fn long_jobs_are_extrapolated_at_the_sustained_rate() {
        // 1,000,000 requests at exactly 200/min (no per-second limit): the
        // first 250,000 replayed, the rest at 0.306 s each (0.3 s and the 2%
        // guard). The exact answer would be 4,999 guarded minutes of 61.2 s
        // plus the bursts of the last one.
        let limits = RateLimits::new(None, Some(200));
        let p = plan(&limits, &clients(1_000_000), &custom(1.0)).unwrap();
        let steady = Duration::from_millis(1_000_000 * 61_200 / 200);
        assert!(
            p.eta <= steady && p.eta + Duration::from_millis(61_200) >= steady,
            "{:?}",
            p.eta
        );
    }

    #[test]
    fn recommendation_rule() {
        // 900 clients: 5 min 24 s at balanced, well under an hour.
        assert_eq!(
            recommend(&yclients(), &clients(900)).unwrap(),
            Preset::Balanced
        );
        // 20,000 clients at 160/min: 125 minutes.
        assert_eq!(
            recommend(&yclients(), &clients(20_000)).unwrap(),
            Preset::Night
        );
        assert_eq!(
            recommend(&RateLimits::UNLIMITED, &clients(1 << 40)).unwrap(),
            Preset::Balanced
        );
    }

    #[test]
    fn preset_names() {
        for p in Preset::ALL {
            assert_eq!(p.to_string().parse::<Preset>().unwrap(), p);
        }
        assert_eq!(" NIGHT ".parse::<Preset>().unwrap(), Preset::Night);
        assert_eq!("Balanced".parse::<Preset>().unwrap(), Preset::Balanced);
        let e = "turbo".parse::<Preset>().unwrap_err();
        assert!(matches!(e, SyncError::InvalidInput { .. }));
        let msg = e.to_string();
        for name in ["aggressive", "balanced", "conservative", "night", "turbo"] {
            assert!(msg.contains(name), "{msg}");
        }
        assert!("custom".parse::<Preset>().is_err());
        assert_eq!(custom(0.3).to_string(), "custom");
        assert_eq!(custom(0.3).settings().utilization, 0.3);
        for p in Preset::ALL {
            p.settings().validate().unwrap();
        }
    }

    #[test]
    fn night_starts_at_one_local_time() {
        use chrono_tz::Europe::Berlin;
        let night = Preset::Night.settings();
        let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        // 22:00 in Berlin (summer, UTC+2) -> 01:00 next day = 23:00 UTC.
        let start = night
            .next_start(at("2024-07-01T20:00:00Z"), Berlin)
            .unwrap();
        assert_eq!(start, at("2024-07-01T23:00:00Z"));
        // 00:30 local -> 01:00 the same night.
        let start = night
            .next_start(at("2024-01-14T23:30:00Z"), Berlin)
            .unwrap();
        assert_eq!(start, at("2024-01-15T00:00:00Z"));
        // Exactly at the start time: start now.
        assert_eq!(night.next_start(start, Berlin), Some(start));
        // A start time that does not exist (02:30 on the spring-forward
        // night) becomes the first one that does: 03:00 CEST = 01:00 UTC.
        let odd = PaceSettings {
            start_at: NaiveTime::from_hms_opt(2, 30, 0),
            ..night
        };
        let start = odd.next_start(at("2024-03-30T23:30:00Z"), Berlin).unwrap();
        assert_eq!(start, at("2024-03-31T01:00:00Z"));
        assert_eq!(Preset::Balanced.settings().next_start(start, Berlin), None);
    }

    /// The plan's ETA is what the real limiter takes, for limits whose
    /// windows interact in different ways (bursts, spacing, a per-minute
    /// limit that binds only at the end of each minute).
    #[tokio::test(start_paused = true)]
    async fn eta_matches_the_limiter() {
        let cases = [
            (RateLimits::new(Some(5), Some(200)), 900),
            (RateLimits::new(Some(4), Some(160)), 900),
            (
                RateLimits::new(Some(5), Some(298)).with_min_spacing(Duration::from_millis(100)),
                1000,
            ),
            (
                RateLimits::new(Some(3), None).with_min_spacing(Duration::from_millis(250)),
                50,
            ),
            (
                RateLimits::new(None, Some(30)).with_min_spacing(Duration::from_millis(1500)),
                70,
            ),
        ];
        for (limits, requests) in cases {
            let planned = plan(&limits, &clients(requests), &custom(1.0)).unwrap().eta;
            let limiter = RateLimiter::new(limits);
            let start = tokio::time::Instant::now();
            for _ in 0..requests {
                limiter.acquire().await;
            }
            let took = tokio::time::Instant::now() - start;
            // The limiter's timer wakes on whole milliseconds.
            let apart = planned.abs_diff(took);
            assert!(
                apart <= Duration::from_millis(2),
                "{limits:?}, {requests} requests: planned {planned:?}, took {took:?}"
            );
        }
    }
}
