//! Text output for people: coverage, calendars, run tables, changes.

use std::fmt::Write as _;
use std::time::Duration;

use chrono::{Datelike, NaiveDate};
use sync_core::{CoverageSummary, RateLimits, RecordChange, RunReport, Schedule};

/// `Historical sync: 45.0% complete (120/267 days)` and the gaps.
pub(crate) fn coverage(label: &str, c: &CoverageSummary<NaiveDate>) -> String {
    let mut out = format!(
        "{label}: {} complete ({}/{} days)\n",
        percent_text(c.percent()),
        c.covered,
        c.total
    );
    if c.gaps.is_empty() {
        out.push_str("No gaps.\n");
    } else {
        let missing: u128 = c.gaps.iter().map(|g| g.len()).sum();
        let _ = writeln!(out, "Gaps ({} ranges, {missing} days):", c.gaps.len());
        for g in c.gaps.iter().take(20) {
            if g.first == g.last {
                let _ = writeln!(out, "  {}", g.first);
            } else {
                let _ = writeln!(out, "  {} .. {} ({} days)", g.first, g.last, g.len());
            }
        }
        if c.gaps.len() > 20 {
            let _ = writeln!(out, "  ... and {} more", c.gaps.len() - 20);
        }
    }
    out
}

/// A percentage with one decimal, rounded down, so that 99.96% never shows
/// as 100.0%.
pub(crate) fn percent_text(percent: f64) -> String {
    format!("{:.1}%", (percent * 10.0).floor() / 10.0)
}

/// One line per month: `#` covered, `.` missing, blank outside the target.
pub(crate) fn calendar(
    c: &CoverageSummary<NaiveDate>,
    covered: &dyn Fn(NaiveDate) -> bool,
) -> String {
    let mut out = String::from("           1        10        20        30\n");
    let (first, last) = (c.target.first, c.target.last);
    let mut month = NaiveDate::from_ymd_opt(first.year(), first.month(), 1).unwrap_or(first);
    while month <= last {
        let _ = write!(out, "  {}-{:02}  ", month.year(), month.month());
        let mut day = month;
        while day.month() == month.month() {
            out.push(if day < first || day > last {
                ' '
            } else if covered(day) {
                '#'
            } else {
                '.'
            });
            match day.succ_opt() {
                Some(d) => day = d,
                None => break,
            }
        }
        out.push('\n');
        month = day;
        if month.day() != 1 {
            break;
        }
    }
    out.push_str("  # stored   . missing\n");
    out
}

/// The run history as a table.
pub(crate) fn runs_table(runs: &[RunReport]) -> String {
    if runs.is_empty() {
        return "No runs yet.\n".to_string();
    }
    let mut out = format!(
        "{:<29} {:<11} {:<20} {:>8} {:>8} {:>8} {:>9} {:>7} {:>6} {:>8} {:>5}  {}\n",
        "RUN",
        "STATUS",
        "STARTED (UTC)",
        "DURATION",
        "CREATED",
        "UPDATED",
        "UNCHANGED",
        "DELETED",
        "FAILED",
        "REQUESTS",
        "429S",
        "WORKER"
    );
    for r in runs {
        let duration = r
            .finished_at
            .map(|end| human_duration((end - r.started_at).to_std().unwrap_or_default()))
            .unwrap_or_else(|| "-".to_string());
        let _ = writeln!(
            out,
            "{:<29} {:<11} {:<20} {:>8} {:>8} {:>8} {:>9} {:>7} {:>6} {:>8} {:>5}  {}",
            r.id.0,
            r.status.as_str(),
            r.started_at.format("%Y-%m-%d %H:%M:%S"),
            duration,
            r.counts.created,
            r.counts.updated,
            r.counts.unchanged,
            r.counts.deleted,
            r.batches_failed,
            r.requests,
            r.rate_limited,
            r.worker.as_deref().unwrap_or("-")
        );
    }
    out
}

/// The use of the request budget `key` in its windows, from the schedule
/// the store keeps (`None`: never used).
pub(crate) fn budget_use(
    key: &str,
    limits: &RateLimits,
    kept: Option<&(Schedule, Duration)>,
) -> String {
    let Some((schedule, now)) = kept else {
        return format!("Request budget {key}: not used yet");
    };
    let since = |window: Duration| {
        schedule
            .grants()
            .filter(|&t| t <= *now && *now - t < window)
            .count()
    };
    let mut parts = Vec::new();
    if let Some(n) = limits.per_second {
        parts.push(format!(
            "{} of {n} in the last second",
            since(Duration::from_secs(1))
        ));
    }
    if let Some(n) = limits.per_minute {
        parts.push(format!(
            "{} of {n} in the last minute",
            since(Duration::from_secs(60))
        ));
    }
    let ahead = schedule.grants().filter(|&t| t > *now).count();
    if ahead > 0 {
        parts.push(format!("{ahead} reserved ahead"));
    }
    let mut line = format!("Request budget {key} (shared by every process on this store): ");
    line.push_str(&if parts.is_empty() {
        "no limits".to_string()
    } else {
        parts.join(", ")
    });
    if let Some(until) = schedule.paused_until(*now) {
        let _ = write!(
            line,
            "; paused {} more after a 429",
            human_duration(until - *now)
        );
    }
    line
}

/// One run in detail, with what it changed.
pub(crate) fn run_detail(r: &RunReport, changes: &[RecordChange], limit: usize) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Run {} ({}), {} sync of {}",
        r.id,
        r.status,
        mode(r),
        r.stream
    );
    let _ = writeln!(out, "  target:    {}", r.target);
    let _ = writeln!(out, "  started:   {}", r.started_at.to_rfc3339());
    if let Some(end) = r.finished_at {
        let _ = writeln!(out, "  finished:  {}", end.to_rfc3339());
    }
    let _ = writeln!(
        out,
        "  records:   {} created, {} updated, {} unchanged, {} deleted",
        r.counts.created, r.counts.updated, r.counts.unchanged, r.counts.deleted
    );
    let _ = writeln!(
        out,
        "  batches:   {} stored, {} failed; {} requests, {} answered 429, {} retries",
        r.batches_done, r.batches_failed, r.requests, r.rate_limited, r.retries
    );
    for e in &r.errors {
        let _ = writeln!(out, "  error:     {e}");
    }
    if changes.is_empty() {
        out.push_str("  No record was created, updated or deleted.\n");
        return out;
    }
    let _ = writeln!(out, "Changes ({}):", changes.len());
    for c in changes.iter().take(limit) {
        let _ = writeln!(out, "  {} {} {}", c.kind.as_str(), c.entity, c.external_id);
        for f in &c.fields {
            let _ = writeln!(
                out,
                "      {}: {} -> {}",
                f.path,
                short(&f.old),
                short(&f.new)
            );
        }
    }
    if changes.len() > limit {
        let _ = writeln!(
            out,
            "  ... and {} more (use --limit)",
            changes.len() - limit
        );
    }
    out
}

fn mode(r: &RunReport) -> &'static str {
    match r.mode {
        sync_core::SyncMode::Full => "full",
        sync_core::SyncMode::Delta => "delta",
    }
}

fn short(v: &serde_json::Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 60 {
        format!("{}...", s.chars().take(57).collect::<String>())
    } else {
        s
    }
}

/// `1h 02m`, `4m 30s`, `12s`.
pub(crate) fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}h {:02}m", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}m {:02}s", s / 60, s % 60)
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sync_core::{IntervalSet, Span};

    #[test]
    fn calendar_marks_covered_and_missing_days() {
        let d = |s: &str| s.parse::<NaiveDate>().unwrap();
        let target = Span::new(d("2024-09-28"), d("2024-10-02")).unwrap();
        let mut set = IntervalSet::new();
        set.insert(Span::new(d("2024-09-29"), d("2024-10-01")).unwrap());
        let c = set.coverage(target);
        let text = calendar(&c, &|day| set.contains(day));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[1], format!("  2024-09  {}.##", " ".repeat(27)));
        assert_eq!(lines[2], format!("  2024-10  #.{}", " ".repeat(29)));
        let summary = coverage("Historical sync", &c);
        assert!(
            summary.starts_with("Historical sync: 60.0% complete (3/5 days)"),
            "{summary}"
        );
        assert!(summary.contains("2024-09-28"));
    }

    #[test]
    fn budget_use_counts_the_grants_in_each_window() {
        let limits = RateLimits {
            per_second: Some(5),
            per_minute: Some(200),
            min_spacing: None,
        };
        assert!(budget_use("k", &limits, None).contains("not used yet"));
        let mut schedule = Schedule::new();
        let slow = sync_core::SlowDown::default();
        for _ in 0..3 {
            schedule.reserve(&limits, Duration::from_secs(100), &slow);
        }
        let later = (schedule.clone(), Duration::from_secs(110));
        let text = budget_use("yclients:api", &limits, Some(&later));
        assert!(text.contains("0 of 5 in the last second"), "{text}");
        assert!(text.contains("3 of 200 in the last minute"), "{text}");
        let long_after = (schedule, Duration::from_secs(1000));
        let text = budget_use("yclients:api", &limits, Some(&long_after));
        assert!(text.contains("0 of 200 in the last minute"), "{text}");
    }
}
