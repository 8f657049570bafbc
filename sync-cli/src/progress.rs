//! Progress on the terminal: a bar when stderr is a terminal, plain lines
//! otherwise (logs, CI, pipes).

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

use std::io::Write as _;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use sync_core::{ProgressEvent, ProgressFn};

use crate::render::{self, human_duration};

/// A progress callback for the engine.
pub(crate) fn reporter(label: String, plain: bool) -> ProgressFn {
    let plain = plain || !std::io::stderr().is_terminal();
    if plain {
        Arc::new(move |e: &ProgressEvent| {
            if let Some(line) = plain_line(&label, e) {
                // A closed stderr is no reason to stop a sync.
                let _ = writeln!(std::io::stderr(), "{line}");
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
            ProgressEvent::RunStarted { batches, .. } => bar.set_length(*batches),
            ProgressEvent::BatchFinished {
                counts,
                units_covered,
                units_total,
                batches_done,
                batches_expected,
                eta,
                ..
            } => {
                bar.set_length(*batches_expected);
                bar.set_position(*batches_done);
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
                bar.println(format!("batch {span} failed: {error}"));
            }
            ProgressEvent::Waiting { what, waited } => {
                bar.println(format!(
                    "still waiting for {what} ({})",
                    human_duration(*waited)
                ));
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
            requests_expected,
            ..
        } => format!(
            "{label}: run {run} started: about {batches} batches and {requests_expected} requests to do, {units_covered}/{units_total} already covered"
        ),
        ProgressEvent::BatchFinished {
            span,
            counts,
            units_covered,
            units_total,
            batches_done,
            batches_expected,
            requests,
            eta,
            ..
        } => format!(
            "{label}: batch {batches_done}/{batches_expected} ({span}) done: {} created, {} updated, {} unchanged; {} covered, {requests} requests{}",
            counts.created,
            counts.updated,
            counts.unchanged,
            percent(*units_covered, *units_total),
            eta.map(|d| format!(", ETA {}", human_duration(d)))
                .unwrap_or_default()
        ),
        ProgressEvent::Waiting { what, waited } => {
            format!("{label}: still waiting for {what} ({})", human_duration(*waited))
        }
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
    render::percent_text(basis_points as f64 / 100.0)
}
