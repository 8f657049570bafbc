//! HTML building blocks: escaping, the page layout, links.
//!
//! Every text that comes from the store goes through [`esc`] (or [`enc`]
//! in a URL) before it is put in a page.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use sync_core::RunStatus;

/// `text` escaped for HTML text and attribute values.
pub(crate) fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `text` percent-encoded as one URL path segment or query value.
pub(crate) fn enc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// A UTC time as people read it.
pub(crate) fn time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// Seconds as `1h 02m`, `3m 07s` or `4.2 s`.
pub(crate) fn duration(secs: f64) -> String {
    let whole = secs as u64;
    if whole >= 3600 {
        format!("{}h {:02}m", whole / 3600, (whole % 3600) / 60)
    } else if whole >= 60 {
        format!("{}m {:02}s", whole / 60, whole % 60)
    } else {
        format!("{secs:.1} s")
    }
}

/// A run status as a coloured badge.
pub(crate) fn status(s: RunStatus) -> String {
    format!("<span class=\"status {0}\">{0}</span>", esc(s.as_str()))
}

/// The link to a stream's calendar.
pub(crate) fn calendar_href(stream: &str, year: Option<i32>) -> String {
    match year {
        Some(y) => format!("/streams/{}/calendar?year={y}", enc(stream)),
        None => format!("/streams/{}/calendar", enc(stream)),
    }
}

/// The link to a run.
pub(crate) fn run_href(id: &str) -> String {
    format!("/runs/{}", enc(id))
}

/// Previous / next links of a paginated list at `base` (a path, or a path
/// with a query ending in `&`-less form: the page goes after `?` or `&`).
pub(crate) fn pager(base: &str, page: usize, has_next: bool) -> String {
    let sep = if base.contains('?') { '&' } else { '?' };
    let mut out = String::from("<nav class=\"pager\">");
    if page > 1 {
        let _ = write!(
            out,
            "<a rel=\"prev\" href=\"{}{sep}page={}\">&larr; newer / previous</a> ",
            esc(base),
            page - 1
        );
    }
    let _ = write!(out, "<span>page {page}</span>");
    if has_next {
        let _ = write!(
            out,
            " <a rel=\"next\" href=\"{}{sep}page={}\">next &rarr;</a>",
            esc(base),
            page + 1
        );
    }
    out.push_str("</nav>");
    out
}

const STYLE: &str = r#"
body { font: 14px/1.45 system-ui, sans-serif; margin: 0; color: #1d2330; background: #f6f7f9; }
header { background: #1d2330; color: #fff; padding: .6em 1.2em; display: flex; gap: 1.5em; align-items: baseline; }
header a { color: #cfe0ff; text-decoration: none; }
header .brand { font-weight: 600; color: #fff; }
main { padding: 1em 1.2em; max-width: 1400px; }
h1 { font-size: 1.4em; margin: .2em 0 .6em; }
table { border-collapse: collapse; background: #fff; }
th, td { padding: .3em .6em; border-bottom: 1px solid #e3e6eb; text-align: left; vertical-align: top; }
th { background: #eef1f5; font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.bar { width: 160px; height: 10px; background: #f3c9c9; border-radius: 5px; overflow: hidden; display: inline-block; vertical-align: middle; }
.bar > div { height: 100%; background: #3a9d5d; }
.pct { font-weight: 600; margin-left: .4em; }
.muted { color: #6b7385; }
.error { color: #a32020; }
.status { padding: 0 .4em; border-radius: 3px; font-size: .9em; }
.status.completed { background: #d7f0de; } .status.partial { background: #fbe9c6; }
.status.failed { background: #f6d2d2; } .status.cancelled { background: #e4e4e4; }
.status.in_progress { background: #d6e6fb; }
.cal td { padding: 0; border: none; }
.cal th { background: none; padding: 0 .5em 0 0; font-weight: normal; }
.cal thead th { padding: 0; width: 18px; font-size: .75em; overflow: visible; }
.cal a, .cal span.day { display: block; width: 16px; height: 16px; margin: 1px; border-radius: 2px; }
.day.stored { background: #3a9d5d; } .day.recent { background: #1f6b3b; }
.day.missing { background: #e05252; } .day.outside { background: #e3e6eb; }
.legend span.day { display: inline-block; width: 12px; height: 12px; vertical-align: middle; margin: 0 .3em 0 1em; }
.changes td.path { font-family: ui-monospace, monospace; }
.old { color: #a32020; font-family: ui-monospace, monospace; } .new { color: #1f6b3b; font-family: ui-monospace, monospace; }
pre { margin: 0; white-space: pre-wrap; word-break: break-all; max-width: 70em; font-size: .85em; }
.pager { margin: .8em 0; }
"#;

/// A whole page: `body` (already HTML) in the common layout, `title`
/// escaped here.
pub(crate) fn layout(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · sync dashboard</title><style>{STYLE}</style></head>\
         <body><header><a class=\"brand\" href=\"/\">sync dashboard</a>\
         <a href=\"/\">Overview</a><a href=\"/runs\">Runs</a><a href=\"/live\">Live</a></header>\
         <main>{body}</main></body></html>\n",
        esc(title)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_encodes_urls() {
        assert_eq!(
            esc("<script>alert('x') & \"y\"</script>"),
            "&lt;script&gt;alert(&#39;x&#39;) &amp; &quot;y&quot;&lt;/script&gt;"
        );
        assert_eq!(enc("yclients:101/records"), "yclients%3A101%2Frecords");
        assert_eq!(enc("a b?c=d&e"), "a%20b%3Fc%3Dd%26e");
    }
}
