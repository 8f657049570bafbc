//! Progress on the terminal: a bar when stderr is a terminal, plain lines
//! otherwise (logs, CI, pipes).

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use sync_core::engine::ProgressFn;
use sync_core::ProgressEvent;

/// A progress callback for the engine.
pub(crate) fn reporter(label: String, plain: bool) -> ProgressFn {
    let plain = plain || !std::io::stderr().is_terminal();
    if plain {
        Arc::new(move |e: &ProgressEvent| {
            if let Some(line) = plain_line(&label, e) {
                eprintln!("{line}");
            }
        })
    } else {
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix} [{bar:30.cyan/blue}] {pos}/{len} batches  {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_prefix(label);
        bar.enable_steady_tick(Duration::from_millis(200));
        Arc::new(move |e: &ProgressEvent| match e {
            ProgressEvent::RunStarted { batches, .. } => bar.set_length(*batches as u64),
            ProgressEvent::BatchFinished {
                counts,
                units_covered,
                units_total,
                eta,
                ..
            } => {
                bar.inc(1);
                bar.set_message(format!(
                    "{} covered, +{} new, {} updated{}",
                    percent(*units_covered, *units_total),
                    counts.created,
                    counts.updated,
                    eta.map(|d| format!(", ETA {}", human_duration(d)))
                        .unwrap_or_default()
                ));
            }
            ProgressEvent::BatchFailed { span, error, .. } => {
                bar.inc(1);
                bar.println(format!("batch {span} failed: {error}"));
            }
            ProgressEvent::RunFinished { .. } => bar.finish_and_clear(),
            _ => {}
        })
    }
}

fn plain_line(label: &str, e: &ProgressEvent) -> Option<String> {
    Some(match e {
        ProgressEvent::RunStarted {
            run,
            batches,
            units_total,
            units_covered,
            ..
        } => format!(
            "{label}: run {run} started: {batches} batches to do, {units_covered}/{units_total} already covered"
        ),
        ProgressEvent::BatchFinished {
            index,
            span,
            counts,
            units_covered,
            units_total,
            eta,
        } => format!(
            "{label}: batch {} ({span}) done: {} created, {} updated, {} unchanged; {} covered{}",
            index + 1,
            counts.created,
            counts.updated,
            counts.unchanged,
            percent(*units_covered, *units_total),
            eta.map(|d| format!(", ETA {}", human_duration(d)))
                .unwrap_or_default()
        ),
        ProgressEvent::BatchFailed { index, span, error } => {
            format!("{label}: batch {} ({span}) failed: {error}", index + 1)
        }
        _ => return None,
    })
}

fn percent(covered: u64, total: u64) -> String {
    let basis_points = if total == 0 {
        10_000
    } else {
        u128::from(covered) * 10_000 / u128::from(total)
    };
    crate::render::percent_text(basis_points as f64 / 100.0)
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
