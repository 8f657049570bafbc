//! `/streams/{stream}/calendar?year=` (a year of days, coloured by state)
//! and `/streams/{stream}/days/{date}` (one day's records).

use std::fmt::Write as _;

use axum::extract::{Path, Query, State};
use axum::response::Html;

use crate::data::{self, Calendar, DayPage};
use crate::error::PageError;
use crate::html::{self, enc, esc};
use crate::Dashboard;

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

pub(crate) async fn page(
    State(d): State<Dashboard>,
    Path(stream): Path<String>,
    Query(query): Query<Vec<(String, String)>>,
) -> Result<Html<String>, PageError> {
    let year = data::year_param(&query)?;
    let id = data::stream_param(&stream)?;
    let cal = data::calendar(&d, &id, year).await?;
    Ok(Html(html::layout(
        &format!("{} {}", cal.stream, cal.year),
        &render(&cal),
    )))
}

fn render(cal: &Calendar) -> String {
    let mut out = format!("<h1>{} — {}</h1>", esc(&cal.stream), cal.year);
    let _ = write!(out, "<nav class=\"pager\">");
    for y in &cal.years {
        if *y == cal.year {
            let _ = write!(out, "<strong>{y}</strong> ");
        } else {
            let _ = write!(
                out,
                "<a href=\"{}\">{y}</a> ",
                esc(&html::calendar_href(&cal.stream, Some(*y)))
            );
        }
    }
    out.push_str("</nav>");
    match (cal.target_first, cal.target_last) {
        (Some(a), Some(b)) => {
            let _ = write!(
                out,
                "<p>Target {a} to {b} ({}). This year: <strong id=\"stored-days\">{}</strong> days stored, \
                 <strong id=\"missing-days\">{}</strong> missing; {} records.</p>",
                esc(cal.basis.describe()),
                cal.stored_days,
                cal.missing_days,
                cal.records
            );
        }
        _ => out.push_str("<p>Nothing stored yet.</p>"),
    }
    out.push_str("<table class=\"cal\"><thead><tr><th></th>");
    for d in 1..=31 {
        let _ = write!(
            out,
            "<th class=\"muted\">{}</th>",
            if d % 5 == 0 || d == 1 {
                d.to_string()
            } else {
                String::new()
            }
        );
    }
    out.push_str("</tr></thead><tbody>");
    let stream = enc(&cal.stream);
    for m in &cal.months {
        let _ = write!(out, "<tr><th>{}</th>", MONTHS[(m.month - 1) as usize]);
        for day in &m.days {
            let state = day.state.as_str();
            let checked = day
                .checked_at
                .map(|t| format!(", fetched {}", html::time(t)))
                .unwrap_or_default();
            let title = format!(
                "{}: {state}, {} records stored{checked}",
                day.date, day.count
            );
            let _ = write!(
                out,
                "<td><a class=\"day {state}\" data-date=\"{}\" data-count=\"{}\" title=\"{}\" \
                 href=\"/streams/{stream}/days/{}\"></a></td>",
                day.date,
                day.count,
                esc(&title),
                day.date
            );
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>");
    out.push_str(
        "<p class=\"legend\"><span class=\"day stored\"></span>stored\
         <span class=\"day recent\"></span>stored, fetched in the last 24 hours\
         <span class=\"day missing\"></span>missing\
         <span class=\"day outside\"></span>outside the target</p>\
         <p class=\"muted\">Hover a day for its stored record count; click it for its records.</p>",
    );
    out
}

pub(crate) async fn day_page(
    State(d): State<Dashboard>,
    Path((stream, date)): Path<(String, String)>,
    Query(query): Query<Vec<(String, String)>>,
) -> Result<Html<String>, PageError> {
    let page = data::page_param(&query, data::MAX_PAGE)?;
    let id = data::stream_param(&stream)?;
    let date = data::day_param(&date)?;
    let day = data::day(&d, &id, date, page).await?;
    Ok(Html(html::layout(
        &format!("{} {}", day.stream, day.date),
        &render_day(&day),
    )))
}

fn render_day(day: &DayPage) -> String {
    let mut out = format!("<h1>{} — {}</h1>", esc(&day.stream), day.date);
    let checked = day
        .checked_at
        .map(|t| format!("last fetched {}", html::time(t)))
        .unwrap_or_else(|| "never fetched".into());
    let _ = write!(
        out,
        "<p>{}; {checked}. <strong id=\"day-count\">{}</strong> records stored (not deleted); \
         {} listed (entity <code>{}</code>, deleted ones included).</p>",
        if day.covered {
            "Covered"
        } else {
            "Not covered"
        },
        day.count,
        day.listed,
        esc(&day.entity)
    );
    let year = day.date.format("%Y").to_string().parse().ok();
    let _ = write!(
        out,
        "<p><a href=\"{}\">back to the calendar</a></p>",
        esc(&html::calendar_href(&day.stream, year))
    );
    out.push_str(
        "<table><thead><tr><th>Id</th><th>Deleted</th><th>Last changed</th><th>Payload</th></tr></thead><tbody>",
    );
    for r in &day.records {
        let mut payload = r.payload.to_string();
        if payload.len() > 600 {
            let mut cut = 600;
            while !payload.is_char_boundary(cut) {
                cut -= 1;
            }
            payload.truncate(cut);
            payload.push('…');
        }
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td><pre>{}</pre></td></tr>",
            esc(&r.external_id),
            if r.deleted { "yes" } else { "" },
            esc(&html::time(r.last_changed)),
            esc(&payload)
        );
    }
    out.push_str("</tbody></table>");
    let base = format!("/streams/{}/days/{}", enc(&day.stream), day.date);
    out.push_str(&html::pager(&base, day.page, day.has_next));
    out
}
