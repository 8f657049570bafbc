//! `/runs?page=` (the run history) and `/runs/{id}?page=` (one run: its
//! errors and every record it changed, field by field).

use std::fmt::Write as _;

use axum::extract::{Path, Query, State};
use axum::response::Html;
use serde_json::Value;
use sync_core::ChangeKind;

use crate::data::{self, RunDetail, RunView};
use crate::error::PageError;
use crate::html::{self, esc};
use crate::Dashboard;

pub(crate) async fn list_page(
    State(d): State<Dashboard>,
    Query(query): Query<Vec<(String, String)>>,
) -> Result<Html<String>, PageError> {
    let page = data::page_param(&query, data::MAX_PAGE)?;
    let runs = data::runs_page(&d, page).await?;
    let mut body = String::from("<h1>Runs</h1>");
    body.push_str(&runs_table(&runs.runs));
    body.push_str(&html::pager("/runs", runs.page, runs.has_next));
    Ok(Html(html::layout("Runs", &body)))
}

/// The history table.
pub(crate) fn runs_table(runs: &[RunView]) -> String {
    let mut out = String::from(
        "<table id=\"runs\"><thead><tr><th>Run</th><th>Stream</th><th>Status</th><th>Started</th>\
         <th class=\"num\">Duration</th><th class=\"num\">Created</th><th class=\"num\">Updated</th>\
         <th class=\"num\">Unchanged</th><th class=\"num\">Deleted</th><th class=\"num\">Failed batches</th>\
         <th class=\"num\">Requests</th><th class=\"num\">429s</th><th>Worker</th></tr></thead><tbody>",
    );
    for r in runs {
        let _ = write!(
            out,
            "<tr><td><a href=\"{}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
            esc(&html::run_href(&r.id)),
            esc(&r.id),
            esc(&r.stream),
            html::status(r.status),
            esc(&html::time(r.started_at)),
            esc(&html::duration(r.duration_secs)),
            r.created,
            r.updated,
            r.unchanged,
            r.deleted,
            r.batches_failed,
            r.requests,
            r.rate_limited,
            esc(r.worker.as_deref().unwrap_or("")),
        );
    }
    if runs.is_empty() {
        out.push_str("<tr><td colspan=\"13\" class=\"muted\">No runs.</td></tr>");
    }
    out.push_str("</tbody></table>");
    out
}

pub(crate) async fn detail_page(
    State(d): State<Dashboard>,
    Path(id): Path<String>,
    Query(query): Query<Vec<(String, String)>>,
) -> Result<Html<String>, PageError> {
    let page = data::page_param(&query, data::MAX_CHANGES_PAGE)?;
    let detail = data::run_detail(&d, &id, page).await?;
    Ok(Html(html::layout(
        &format!("Run {}", detail.run.id),
        &render_detail(&detail),
    )))
}

fn json(v: &Value) -> String {
    esc(&v.to_string())
}

fn render_detail(d: &RunDetail) -> String {
    let r = &d.run;
    let mut out = format!(
        "<h1>Run {}</h1><p>{} {} of <strong>{}</strong> ({}), target {}; started {}{}; {}.</p>",
        esc(&r.id),
        html::status(r.status),
        esc(&r.mode),
        esc(&r.stream),
        if r.dry_run { "dry run" } else { "written" },
        esc(&r.target),
        esc(&html::time(r.started_at)),
        r.finished_at
            .map(|t| format!(", ended {}", esc(&html::time(t))))
            .unwrap_or_default(),
        esc(&html::duration(r.duration_secs)),
    );
    out.push_str(&runs_table(std::slice::from_ref(r)));
    if !r.errors.is_empty() {
        out.push_str("<h2>Errors</h2><ul class=\"error\">");
        for e in &r.errors {
            let _ = write!(out, "<li>{}</li>", esc(e));
        }
        out.push_str("</ul>");
    }
    out.push_str("<h2>Changed records</h2>");
    out.push_str(
        "<table class=\"changes\"><thead><tr><th>Record</th><th>Change</th><th>Field</th>\
         <th>Old</th><th></th><th>New</th></tr></thead><tbody>",
    );
    for c in &d.changes {
        let record = format!("{}/{}", esc(&c.entity), esc(&c.external_id));
        if c.fields.is_empty() {
            let what = match c.kind {
                ChangeKind::Created => "stored for the first time",
                ChangeKind::Deleted => "marked deleted",
                ChangeKind::Updated => "moved or changed",
            };
            let _ = write!(
                out,
                "<tr class=\"{kind}\"><td>{record}</td><td>{kind}</td><td colspan=\"4\" class=\"muted\">{what}</td></tr>",
                kind = c.kind.as_str(),
            );
        }
        for (i, f) in c.fields.iter().enumerate() {
            let _ = write!(
                out,
                "<tr class=\"{kind} field-change\"><td>{}</td><td>{}</td><td class=\"path\">{}</td>\
                 <td class=\"old\">{}</td><td>&rarr;</td><td class=\"new\">{}</td></tr>",
                if i == 0 { record.as_str() } else { "" },
                if i == 0 { c.kind.as_str() } else { "" },
                esc(&f.path),
                json(&f.old),
                json(&f.new),
                kind = c.kind.as_str(),
            );
        }
    }
    if d.changes.is_empty() {
        out.push_str("<tr><td colspan=\"6\" class=\"muted\">No changes on this page.</td></tr>");
    }
    out.push_str("</tbody></table>");
    out.push_str(&html::pager(&html::run_href(&r.id), d.page, d.has_next));
    out
}
