//! What the pages show, read from the store once per request and shared by
//! the HTML pages and the JSON API. Every read is bounded: a page of runs,
//! a page of changes, one year of days, one day's records.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use serde::Serialize;
use serde_json::Value;
use sync_core::{
    Coverage, DayRange, ExistingQuery, RecordChange, RunId, RunReport, RunStatus, Span, StreamId,
};

use crate::error::Failure;
use crate::Dashboard;

/// How many recent runs the stream list is drawn from.
pub(crate) const RUN_HISTORY: usize = 1000;
/// Runs per page of the history.
pub(crate) const RUNS_PER_PAGE: usize = 50;
/// Changed records per page of a run.
pub(crate) const CHANGES_PER_PAGE: usize = 100;
/// Records per page of a day.
pub(crate) const RECORDS_PER_PAGE: usize = 50;
/// The last page number accepted (deeper pages of the run history would
/// read too many runs).
pub(crate) const MAX_PAGE: usize = 1000;
/// The last page of a run's changes (an offset the store can skip fast).
pub(crate) const MAX_CHANGES_PAGE: usize = 100_000;
/// A stored day checked this recently is shown as re-checked.
pub(crate) const RECENT: Duration = Duration::hours(24);

// ------------------------------------------------------------- parameters

/// The first value of query parameter `name`.
pub(crate) fn param<'a>(query: &'a [(String, String)], name: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// `?page=`: 1 when absent, else a whole number from 1 to `max`.
pub(crate) fn page_param(query: &[(String, String)], max: usize) -> Result<usize, Failure> {
    match param(query, "page") {
        None | Some("") => Ok(1),
        Some(text) => match text.trim().parse::<usize>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(Failure::BadRequest(format!(
                "page {text:?} is not a page number: use a whole number from 1 to {max}"
            ))),
        },
    }
}

/// `?year=`: a year from 1900 to 2999; `None` when absent.
pub(crate) fn year_param(query: &[(String, String)]) -> Result<Option<i32>, Failure> {
    match param(query, "year") {
        None | Some("") => Ok(None),
        Some(text) => match text.trim().parse::<i32>() {
            Ok(y) if (1900..=2999).contains(&y) => Ok(Some(y)),
            _ => Err(Failure::BadRequest(format!(
                "year {text:?} is not a year: use four digits, e.g. 2025"
            ))),
        },
    }
}

/// A day in a path, `YYYY-MM-DD`.
pub(crate) fn day_param(text: &str) -> Result<NaiveDate, Failure> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| {
        Failure::BadRequest(format!(
            "{text:?} is not a day: use YYYY-MM-DD, e.g. 2025-06-30"
        ))
    })
}

/// A stream in a path: `SOURCE/STREAM` (percent-encoded as one segment).
pub(crate) fn stream_param(text: &str) -> Result<StreamId, Failure> {
    match text.rsplit_once('/') {
        Some((source, stream)) if !source.is_empty() && !stream.is_empty() => {
            Ok(StreamId::new(source, stream))
        }
        _ => Err(Failure::BadRequest(format!(
            "{text:?} is not a stream: use SOURCE/STREAM, as the overview links"
        ))),
    }
}

/// A percentage with one decimal, rounded down, so that 99.96% never shows
/// as 100.0%.
pub(crate) fn percent_text(percent: f64) -> String {
    format!("{:.1}%", (percent * 10.0).floor() / 10.0)
}

fn count(n: u128) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

// ------------------------------------------------------------------- runs

/// A run as the pages show it.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct RunView {
    pub(crate) id: String,
    pub(crate) stream: String,
    pub(crate) mode: String,
    pub(crate) target: String,
    pub(crate) status: RunStatus,
    pub(crate) started_at: DateTime<Utc>,
    pub(crate) finished_at: Option<DateTime<Utc>>,
    /// Seconds from start to end (to now while in progress).
    pub(crate) duration_secs: f64,
    pub(crate) created: u64,
    pub(crate) updated: u64,
    pub(crate) unchanged: u64,
    pub(crate) deleted: u64,
    /// Records that failed: the batches that failed (their records are
    /// not counted one by one).
    pub(crate) batches_failed: u64,
    pub(crate) batches_done: u64,
    pub(crate) requests: u64,
    pub(crate) rate_limited: u64,
    pub(crate) retries: u64,
    /// Requests a second over the run so far.
    pub(crate) requests_per_second: f64,
    pub(crate) worker: Option<String>,
    pub(crate) dry_run: bool,
    pub(crate) errors: Vec<String>,
}

impl RunView {
    pub(crate) fn of(r: &RunReport, now: DateTime<Utc>) -> Self {
        let end = r.finished_at.unwrap_or(now);
        let secs = ((end - r.started_at).num_milliseconds().max(0) as f64) / 1000.0;
        Self {
            id: r.id.0.clone(),
            stream: r.stream.to_string(),
            mode: r.mode.as_str().to_string(),
            target: r.target.clone(),
            status: r.status,
            started_at: r.started_at,
            finished_at: r.finished_at,
            duration_secs: secs,
            created: r.counts.created,
            updated: r.counts.updated,
            unchanged: r.counts.unchanged,
            deleted: r.counts.deleted,
            batches_failed: r.batches_failed,
            batches_done: r.batches_done,
            requests: r.requests,
            rate_limited: r.rate_limited,
            retries: r.retries,
            requests_per_second: if secs > 0.0 {
                r.requests as f64 / secs
            } else {
                0.0
            },
            worker: r.worker.clone(),
            dry_run: r.dry_run,
            errors: r.errors.clone(),
        }
    }
}

/// One page of the run history, newest first.
#[derive(Debug, Serialize)]
pub(crate) struct RunsPage {
    pub(crate) page: usize,
    pub(crate) per_page: usize,
    pub(crate) has_next: bool,
    pub(crate) runs: Vec<RunView>,
}

pub(crate) async fn runs_page(d: &Dashboard, page: usize) -> Result<RunsPage, Failure> {
    let skip = (page - 1) * RUNS_PER_PAGE;
    let runs = d
        .inner
        .checkpoints
        .runs(None, skip + RUNS_PER_PAGE + 1)
        .await?;
    let now = Utc::now();
    let mut runs: Vec<RunView> = runs
        .iter()
        .skip(skip)
        .map(|r| RunView::of(r, now))
        .collect();
    let has_next = runs.len() > RUNS_PER_PAGE;
    runs.truncate(RUNS_PER_PAGE);
    Ok(RunsPage {
        page,
        per_page: RUNS_PER_PAGE,
        has_next,
        runs,
    })
}

/// One run and a page of what it changed.
#[derive(Debug, Serialize)]
pub(crate) struct RunDetail {
    pub(crate) run: RunView,
    pub(crate) page: usize,
    pub(crate) per_page: usize,
    pub(crate) has_next: bool,
    pub(crate) changes: Vec<RecordChange>,
}

pub(crate) async fn run_detail(d: &Dashboard, id: &str, page: usize) -> Result<RunDetail, Failure> {
    let id = RunId(id.to_string());
    let Some(run) = d.inner.checkpoints.run(&id).await? else {
        return Err(Failure::NotFound(format!(
            "no run {:?}: the run history lists the runs",
            id.0
        )));
    };
    let mut changes = d
        .inner
        .checkpoints
        .run_changes_page(&id, (page - 1) * CHANGES_PER_PAGE, CHANGES_PER_PAGE + 1)
        .await?;
    let has_next = changes.len() > CHANGES_PER_PAGE;
    changes.truncate(CHANGES_PER_PAGE);
    Ok(RunDetail {
        run: RunView::of(&run, Utc::now()),
        page,
        per_page: CHANGES_PER_PAGE,
        has_next,
        changes,
    })
}

/// The runs in progress.
#[derive(Debug, Serialize)]
pub(crate) struct Live {
    pub(crate) now: DateTime<Utc>,
    pub(crate) runs: Vec<RunView>,
}

pub(crate) async fn live(d: &Dashboard) -> Result<Live, Failure> {
    // Runs in progress are the newest ones; a page of the history holds them.
    let runs = d.inner.checkpoints.runs(None, 200).await?;
    let now = Utc::now();
    Ok(Live {
        now,
        runs: runs
            .iter()
            .filter(|r| r.status == RunStatus::InProgress)
            .map(|r| RunView::of(r, now))
            .collect(),
    })
}

// ---------------------------------------------------------------- streams

/// What a stream's coverage percentage is measured against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Basis {
    /// The configured target range (`from`/`to` of the settings).
    ConfiguredRange,
    /// From the first to the last covered day.
    CoveredSpan,
    /// Id streams: the batches of the last run (the ids the source listed
    /// then) stored, of all its batches.
    LastRunBatches,
    /// Nothing covered yet.
    Nothing,
}

impl Basis {
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Self::ConfiguredRange => "the configured range",
            Self::CoveredSpan => "the span from the first to the last stored day",
            Self::LastRunBatches => "the batches of ids the last run fetched",
            Self::Nothing => "nothing stored yet",
        }
    }
}

/// A stream and how much of its target is stored.
#[derive(Debug, Serialize)]
pub(crate) struct StreamView {
    /// `SOURCE/STREAM`.
    pub(crate) id: String,
    pub(crate) source: String,
    pub(crate) stream: String,
    /// `days`, `ids`, or `none` when nothing is covered. For days the
    /// target is a day range; for ids, the last run's batches.
    pub(crate) units: &'static str,
    pub(crate) basis: Basis,
    /// First and last unit of the target (days as `YYYY-MM-DD`).
    pub(crate) target_first: Option<String>,
    pub(crate) target_last: Option<String>,
    /// Units of the target stored, and in the target (days; for id
    /// streams, batches).
    pub(crate) covered: u64,
    pub(crate) total: u64,
    /// `covered / total` in percent.
    pub(crate) percent: f64,
    /// The same, one decimal, rounded down (`100.0%` only when complete).
    pub(crate) percent_text: String,
    /// Maximal missing ranges in the target (id streams: the last run's
    /// failed batches).
    pub(crate) gaps: usize,
    /// Id streams: how many ids are stored.
    pub(crate) ids_stored: Option<u64>,
    pub(crate) last_run: Option<RunView>,
    /// The year the calendar opens on (the last covered day's).
    pub(crate) calendar_year: Option<i32>,
}

/// The day target of a stream: the configured range, else the covered span.
fn day_target(d: &Dashboard, c: &Coverage) -> (Option<DayRange>, Basis) {
    if let Some(range) = d.inner.target {
        return (Some(range), Basis::ConfiguredRange);
    }
    let mut spans = c.days.spans();
    match spans.next() {
        Some(first) => {
            let last = c.days.spans().last().unwrap_or(first);
            (Span::new(first.first, last.last), Basis::CoveredSpan)
        }
        None => (None, Basis::Nothing),
    }
}

fn stream_view(
    d: &Dashboard,
    id: &StreamId,
    c: &Coverage,
    last_run: Option<&RunReport>,
) -> StreamView {
    let now = Utc::now();
    let mut v = StreamView {
        id: id.to_string(),
        source: id.source.clone(),
        stream: id.stream.clone(),
        units: "none",
        basis: Basis::Nothing,
        target_first: None,
        target_last: None,
        covered: 0,
        total: 0,
        percent: 0.0,
        percent_text: percent_text(0.0),
        gaps: 0,
        ids_stored: None,
        last_run: last_run.map(|r| RunView::of(r, now)),
        calendar_year: None,
    };
    if !c.days.is_empty() || (c.keys.is_empty() && d.inner.target.is_some()) {
        let (target, basis) = day_target(d, c);
        v.units = "days";
        v.basis = basis;
        if let Some(t) = target {
            let s = c.days.coverage(t);
            v.target_first = Some(t.first.to_string());
            v.target_last = Some(t.last.to_string());
            v.covered = count(s.covered);
            v.total = count(s.total);
            v.percent = s.percent();
            v.gaps = s.gaps.len();
            v.calendar_year = Some(
                c.days
                    .spans()
                    .last()
                    .map(|s| s.last.min(t.last).year())
                    .unwrap_or(t.last.year()),
            );
        }
    } else if let (Some(first), Some(last)) = (c.keys.spans().next(), c.keys.spans().last()) {
        // Ids are sparse and only the source knows which exist: the
        // share is of the last run's batches (the ids it listed) stored.
        v.units = "ids";
        v.target_first = Some(first.first.to_string());
        v.target_last = Some(last.last.to_string());
        v.ids_stored = Some(count(c.keys.len()));
        if let Some(r) = last_run {
            let batches = r.batches_done + r.batches_failed;
            v.basis = Basis::LastRunBatches;
            v.covered = r.batches_done;
            v.total = batches;
            v.percent = r
                .batches_done
                .saturating_mul(10_000)
                .checked_div(batches)
                .map_or(
                    // Nothing was left to fetch: complete if it says so.
                    if r.status == RunStatus::Completed {
                        100.0
                    } else {
                        0.0
                    },
                    |bp| bp as f64 / 100.0,
                );
            v.gaps = usize::try_from(r.batches_failed).unwrap_or(usize::MAX);
        }
    }
    v.percent_text = percent_text(v.percent);
    v
}

/// Every stream of the recent run history, sorted by id.
pub(crate) async fn streams(d: &Dashboard) -> Result<Vec<StreamView>, Failure> {
    let runs = d.inner.checkpoints.runs(None, RUN_HISTORY).await?;
    let mut last: BTreeMap<StreamId, &RunReport> = BTreeMap::new();
    for r in &runs {
        // Newest first: the first seen is the last run.
        last.entry(r.stream.clone()).or_insert(r);
    }
    let mut out = Vec::with_capacity(last.len());
    for (id, run) in &last {
        let c = d.inner.checkpoints.coverage(id).await?;
        out.push(stream_view(d, id, &c, Some(run)));
    }
    Ok(out)
}

/// The stream, if the store knows it (it has coverage or runs).
async fn known_stream(d: &Dashboard, id: &StreamId) -> Result<(Coverage, Vec<RunReport>), Failure> {
    let c = d.inner.checkpoints.coverage(id).await?;
    let runs = d.inner.checkpoints.runs(Some(id), 1).await?;
    if c.is_empty() && runs.is_empty() {
        return Err(Failure::NotFound(format!(
            "no stream {id}: the overview lists the streams"
        )));
    }
    Ok((c, runs))
}

// --------------------------------------------------------------- calendar

/// The state of one day.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum DayState {
    /// Covered: its records are stored.
    Stored,
    /// Covered, and fetched again within the last 24 hours.
    Recent,
    /// In the target, not covered.
    Missing,
    /// Outside the target.
    Outside,
}

impl DayState {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Stored => "stored",
            Self::Recent => "recent",
            Self::Missing => "missing",
            Self::Outside => "outside",
        }
    }
}

/// One day of a calendar.
#[derive(Debug, Serialize)]
pub(crate) struct DayView {
    pub(crate) date: NaiveDate,
    pub(crate) state: DayState,
    /// Records stored for the day (not deleted).
    pub(crate) count: u64,
    /// When its records were last fetched, if covered.
    pub(crate) checked_at: Option<DateTime<Utc>>,
}

/// One month of a calendar.
#[derive(Debug, Serialize)]
pub(crate) struct MonthView {
    pub(crate) month: u32,
    pub(crate) days: Vec<DayView>,
}

/// A year of one stream's days.
#[derive(Debug, Serialize)]
pub(crate) struct Calendar {
    pub(crate) stream: String,
    pub(crate) year: i32,
    pub(crate) basis: Basis,
    pub(crate) target_first: Option<NaiveDate>,
    pub(crate) target_last: Option<NaiveDate>,
    /// Days of the year in the target: stored, missing.
    pub(crate) stored_days: u64,
    pub(crate) missing_days: u64,
    /// Records stored in the year.
    pub(crate) records: u64,
    /// Years with any day of the target, to browse to.
    pub(crate) years: Vec<i32>,
    pub(crate) months: Vec<MonthView>,
}

pub(crate) async fn calendar(
    d: &Dashboard,
    id: &StreamId,
    year: Option<i32>,
) -> Result<Calendar, Failure> {
    let (c, _) = known_stream(d, id).await?;
    let (target, basis) = day_target(d, &c);
    let year = year
        .or_else(|| target.map(|t| t.last.year()))
        .unwrap_or_else(|| Utc::now().year());
    let first = NaiveDate::from_ymd_opt(year, 1, 1)
        .ok_or_else(|| Failure::BadRequest(format!("no year {year}")))?;
    let last = NaiveDate::from_ymd_opt(year, 12, 31)
        .ok_or_else(|| Failure::BadRequest(format!("no year {year}")))?;
    let year_range = Span::new(first, last).unwrap_or(Span::single(first));
    let counts = d.inner.store.day_counts(id, year_range).await?;
    let checked = d.inner.checkpoints.last_checked(id, year_range).await?;
    let now = Utc::now();
    let mut checks = checked.iter().peekable();
    let mut months: Vec<MonthView> = (1..=12)
        .map(|month| MonthView {
            month,
            days: Vec::new(),
        })
        .collect();
    let (mut stored_days, mut missing_days) = (0, 0);
    for day in year_range.iter() {
        while checks.peek().is_some_and(|(r, _)| r.last < day) {
            checks.next();
        }
        let checked_at = checks
            .peek()
            .filter(|(r, _)| r.contains(day))
            .map(|(_, t)| *t);
        let in_target = target.is_some_and(|t| t.contains(day));
        let covered = c.days.contains(day);
        let state = match (covered, in_target) {
            (true, _) if checked_at.is_some_and(|t| now - t < RECENT) => DayState::Recent,
            (true, _) => DayState::Stored,
            (false, true) => DayState::Missing,
            (false, false) => DayState::Outside,
        };
        if in_target {
            if covered {
                stored_days += 1;
            } else {
                missing_days += 1;
            }
        }
        months[day.month0() as usize].days.push(DayView {
            date: day,
            state,
            count: counts.get(&day).copied().unwrap_or(0),
            checked_at,
        });
    }
    let mut years: BTreeSet<i32> = BTreeSet::new();
    if let Some(t) = target {
        years.extend(t.first.year()..=t.last.year());
    }
    for s in c.days.spans() {
        years.extend(s.first.year()..=s.last.year());
    }
    years.insert(year);
    Ok(Calendar {
        stream: id.to_string(),
        year,
        basis,
        target_first: target.map(|t| t.first),
        target_last: target.map(|t| t.last),
        stored_days,
        missing_days,
        records: counts.values().sum(),
        years: years.into_iter().collect(),
        months,
    })
}

// -------------------------------------------------------------------- day

/// A stored record, as a day's page lists it.
#[derive(Debug, Serialize)]
pub(crate) struct RecordRow {
    pub(crate) entity: String,
    pub(crate) external_id: String,
    pub(crate) deleted: bool,
    pub(crate) last_changed: DateTime<Utc>,
    pub(crate) payload: Value,
}

/// One day of one stream: its state and a page of its records.
#[derive(Debug, Serialize)]
pub(crate) struct DayPage {
    pub(crate) stream: String,
    pub(crate) date: NaiveDate,
    pub(crate) covered: bool,
    pub(crate) checked_at: Option<DateTime<Utc>>,
    /// Records stored for the day (not deleted).
    pub(crate) count: u64,
    /// The entity listed (the stream's name in the singular).
    pub(crate) entity: String,
    /// Records of the entity on the day, deleted ones included.
    pub(crate) listed: usize,
    pub(crate) page: usize,
    pub(crate) per_page: usize,
    pub(crate) has_next: bool,
    pub(crate) records: Vec<RecordRow>,
}

/// The entity a day stream stores: its name in the singular (`records` →
/// `record`, `boardings` → `boarding`).
fn entity_of(id: &StreamId) -> String {
    id.stream
        .strip_suffix('s')
        .unwrap_or(&id.stream)
        .to_string()
}

pub(crate) async fn day(
    d: &Dashboard,
    id: &StreamId,
    date: NaiveDate,
    page: usize,
) -> Result<DayPage, Failure> {
    let (c, _) = known_stream(d, id).await?;
    let range = Span::single(date);
    let count = d
        .inner
        .store
        .day_counts(id, range)
        .await?
        .get(&date)
        .copied()
        .unwrap_or(0);
    let checked_at = d
        .inner
        .checkpoints
        .last_checked(id, range)
        .await?
        .first()
        .map(|(_, t)| *t);
    let entity = entity_of(id);
    // One day's records: bounded by what a day holds.
    let mut rows = d
        .inner
        .store
        .existing(
            id,
            &ExistingQuery::InDays {
                entity: entity.clone(),
                range,
            },
        )
        .await?;
    rows.sort_by(|a, b| a.external_id.cmp(&b.external_id));
    let listed = rows.len();
    let skip = (page - 1) * RECORDS_PER_PAGE;
    let records: Vec<RecordRow> = rows
        .into_iter()
        .skip(skip)
        .take(RECORDS_PER_PAGE)
        .map(|r| RecordRow {
            entity: r.entity,
            external_id: r.external_id,
            deleted: r.deleted,
            last_changed: r.last_changed,
            payload: r.payload,
        })
        .collect();
    Ok(DayPage {
        stream: id.to_string(),
        date,
        covered: c.days.contains(date),
        checked_at,
        count,
        entity,
        listed,
        page,
        per_page: RECORDS_PER_PAGE,
        has_next: skip + RECORDS_PER_PAGE < listed,
        records,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn bad_parameters_are_refused() {
        assert_eq!(page_param(&q(&[]), 10).unwrap(), 1);
        assert_eq!(page_param(&q(&[("page", "3")]), 10).unwrap(), 3);
        for bad in ["-1", "0", "abc", "11", "1.5", "99999999999999999999999"] {
            assert!(page_param(&q(&[("page", bad)]), 10).is_err(), "{bad}");
        }
        assert_eq!(year_param(&q(&[("year", "2025")])).unwrap(), Some(2025));
        for bad in ["abc", "-5", "25", "30000"] {
            assert!(year_param(&q(&[("year", bad)])).is_err(), "{bad}");
        }
        assert!(day_param("2025-02-30").is_err());
        assert!(stream_param("records").is_err());
        assert_eq!(
            stream_param("yclients:101/records").unwrap(),
            StreamId::new("yclients:101", "records")
        );
    }

    #[test]
    fn percent_is_rounded_down() {
        assert_eq!(percent_text(99.96), "99.9%");
        assert_eq!(percent_text(100.0), "100.0%");
    }
}
