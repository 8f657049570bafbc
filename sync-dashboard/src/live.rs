//! `/live`: the runs in progress, refreshed every second from `/api/live`.

use axum::extract::State;
use axum::response::Html;

use crate::data;
use crate::error::PageError;
use crate::html::{self, esc};
use crate::Dashboard;

/// Polls `/api/live` every second and rewrites the table with
/// `textContent` only (store text is never parsed as HTML). The request
/// rate is measured between two polls.
const SCRIPT: &str = r#"
(function () {
  const body = document.querySelector('#live tbody');
  const total = document.getElementById('live-total-requests');
  const stamp = document.getElementById('live-updated');
  let last = {};
  function cell(tr, cls, text) {
    const td = document.createElement('td');
    td.className = cls;
    td.textContent = text;
    tr.appendChild(td);
  }
  function draw(data) {
    const now = Date.now();
    const rows = [];
    let sum = 0;
    for (const r of data.runs) {
      sum += r.requests;
      const prev = last[r.id];
      let rate = r.requests_per_second;
      if (prev && now > prev.t) { rate = (r.requests - prev.requests) * 1000 / (now - prev.t); }
      last[r.id] = { t: now, requests: r.requests };
      const tr = document.createElement('tr');
      tr.dataset.run = r.id;
      const a = document.createElement('a');
      a.href = '/runs/' + encodeURIComponent(r.id);
      a.textContent = r.id;
      const td = document.createElement('td');
      td.appendChild(a);
      tr.appendChild(td);
      cell(tr, 'stream', r.stream);
      cell(tr, 'num elapsed', r.duration_secs.toFixed(0) + ' s');
      cell(tr, 'num batches', String(r.batches_done));
      cell(tr, 'num created', String(r.created));
      cell(tr, 'num updated', String(r.updated));
      cell(tr, 'num unchanged', String(r.unchanged));
      cell(tr, 'num requests', String(r.requests));
      cell(tr, 'num rate', rate.toFixed(1) + '/s');
      cell(tr, 'num limited', String(r.rate_limited));
      cell(tr, 'worker', r.worker || '');
      rows.push(tr);
    }
    if (rows.length === 0) {
      const tr = document.createElement('tr');
      const td = document.createElement('td');
      td.colSpan = 11; td.className = 'muted'; td.textContent = 'No run in progress.';
      tr.appendChild(td); rows.push(tr);
    }
    body.replaceChildren(...rows);
    total.textContent = String(sum);
    stamp.textContent = new Date().toISOString();
  }
  function poll() {
    fetch('/api/live', { cache: 'no-store' })
      .then(function (r) { return r.json(); })
      .then(draw)
      .catch(function () { stamp.textContent = 'cannot reach the dashboard'; })
      .finally(function () { setTimeout(poll, 1000); });
  }
  poll();
})();
"#;

pub(crate) async fn page(State(d): State<Dashboard>) -> Result<Html<String>, PageError> {
    let live = data::live(&d).await?;
    let mut body = String::from(
        "<h1>Runs in progress</h1><p>Requests in all: <strong id=\"live-total-requests\">",
    );
    body.push_str(
        &live
            .runs
            .iter()
            .map(|r| r.requests)
            .sum::<u64>()
            .to_string(),
    );
    body.push_str(
        "</strong> · updated <span id=\"live-updated\" class=\"muted\"></span></p>\
         <table id=\"live\"><thead><tr><th>Run</th><th>Stream</th><th class=\"num\">Elapsed</th>\
         <th class=\"num\">Batches</th><th class=\"num\">Created</th><th class=\"num\">Updated</th>\
         <th class=\"num\">Unchanged</th><th class=\"num\">Requests</th><th class=\"num\">Rate</th>\
         <th class=\"num\">429s</th><th>Worker</th></tr></thead><tbody>",
    );
    for r in &live.runs {
        body.push_str(&format!(
            "<tr data-run=\"{id}\"><td><a href=\"{href}\">{id}</a></td><td class=\"stream\">{}</td>\
             <td class=\"num elapsed\">{:.0} s</td><td class=\"num batches\">{}</td>\
             <td class=\"num created\">{}</td><td class=\"num updated\">{}</td>\
             <td class=\"num unchanged\">{}</td><td class=\"num requests\">{}</td>\
             <td class=\"num rate\">{:.1}/s</td><td class=\"num limited\">{}</td><td class=\"worker\">{}</td></tr>",
            esc(&r.stream),
            r.duration_secs,
            r.batches_done,
            r.created,
            r.updated,
            r.unchanged,
            r.requests,
            r.requests_per_second,
            r.rate_limited,
            esc(r.worker.as_deref().unwrap_or("")),
            id = esc(&r.id),
            href = esc(&html::run_href(&r.id)),
        ));
    }
    if live.runs.is_empty() {
        body.push_str("<tr><td colspan=\"11\" class=\"muted\">No run in progress.</td></tr>");
    }
    body.push_str("</tbody></table><p class=\"muted\">Refreshed every second. A run killed without ending stays in progress until the next run of its stream repairs its row.</p>");
    body.push_str("<script>");
    body.push_str(SCRIPT);
    body.push_str("</script>");
    Ok(Html(html::layout("Live", &body)))
}
