//! `/`: every stream with its coverage, gaps and last run.

use std::fmt::Write as _;

use axum::extract::State;
use axum::response::Html;

use crate::data::{self, StreamView};
use crate::error::PageError;
use crate::html::{self, esc};
use crate::Dashboard;

pub(crate) async fn page(State(d): State<Dashboard>) -> Result<Html<String>, PageError> {
    let streams = data::streams(&d).await?;
    let mut body = String::from("<h1>Streams</h1>");
    if streams.is_empty() {
        body.push_str("<p>No runs in the store yet: run <code>sync-cli run</code> or <code>sync-cli demo</code>.</p>");
    } else {
        body.push_str(
            "<table id=\"streams\"><thead><tr><th>Stream</th><th>Coverage</th><th>Target</th>\
             <th class=\"num\">Gaps</th><th>Last run</th><th></th></tr></thead><tbody>",
        );
        for s in &streams {
            row(&mut body, s);
        }
        body.push_str("</tbody></table>");
        body.push_str(
            "<p class=\"muted\">Coverage of a day stream is the share of its target's days whose \
             records are stored. The target is the configured range (<code>from</code>/<code>to</code> \
             in the settings) when there is one, else the span from the first to the last stored day \
             of the stream. Ids are sparse and only the source knows which exist, so an id stream's \
             share is of the batches of ids its last run fetched that were stored.</p>",
        );
    }
    if !d.inner.store_label.is_empty() {
        let _ = write!(
            body,
            "<p class=\"muted\">Store: {}</p>",
            esc(&d.inner.store_label)
        );
    }
    Ok(Html(html::layout("Overview", &body)))
}

fn row(out: &mut String, s: &StreamView) {
    let width = s.percent.clamp(0.0, 100.0);
    let target = match (&s.target_first, &s.target_last) {
        (Some(a), Some(b)) if s.units == "ids" => format!(
            "{} ids stored ({} to {}); {} of {} batches of {}",
            s.ids_stored.unwrap_or(0),
            esc(a),
            esc(b),
            s.covered,
            s.total,
            esc(s.basis.describe())
        ),
        (Some(a), Some(b)) => format!(
            "{} of {} {} ({} to {}; {})",
            s.covered,
            s.total,
            esc(s.units),
            esc(a),
            esc(b),
            esc(s.basis.describe())
        ),
        _ => esc(s.basis.describe()),
    };
    let last_run = match &s.last_run {
        Some(r) => format!(
            "{} <a href=\"{}\">{}</a><br><span class=\"muted\">{}</span>",
            html::status(r.status),
            esc(&html::run_href(&r.id)),
            esc(&r.id),
            esc(&html::time(r.finished_at.unwrap_or(r.started_at)))
        ),
        None => "<span class=\"muted\">none</span>".into(),
    };
    let calendar = if s.units == "days" {
        format!(
            "<a href=\"{}\">calendar</a>",
            esc(&html::calendar_href(&s.id, s.calendar_year))
        )
    } else {
        String::new()
    };
    let _ = write!(
        out,
        "<tr data-stream=\"{id}\"><td>{id}</td>\
         <td><span class=\"bar\"><div style=\"width:{width:.1}%\"></div></span>\
         <span class=\"pct\">{pct}</span></td><td>{target}</td><td class=\"num\">{gaps}</td>\
         <td>{last_run}</td><td>{calendar}</td></tr>",
        id = esc(&s.id),
        pct = esc(&s.percent_text),
        gaps = s.gaps,
    );
}
