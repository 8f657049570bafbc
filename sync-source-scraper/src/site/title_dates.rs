//! Dates written in an appointment's title: `2/13-18` (Feb 13 to 18),
//! `2/14-15am`, `3/3-19 (Thur)` (the suffix is ignored), `B/O Pepper
//! 2/9PM-17` (the leading label is ignored), `2/28-3/5` (across months).
//!
//! - The first `M/D[am|pm]-D[am|pm]` or `M/D[am|pm]-M/D[am|pm]` in the text
//!   with a month 1–12 and days 1–31 is used; the numbers must not be part
//!   of longer numbers. Spaces around the dash and an en dash are accepted.
//! - An end day below the start day (same-month form) rolls into the next
//!   month; an end before the start (cross-month form, `12/28-1/3`) rolls
//!   into the next year.
//! - Titles carry no year: [`TitleDates::resolve`] picks, among the years
//!   around an anchor date, the one that puts the check-in closest to it.

use chrono::{Datelike, NaiveDate};

/// `AM` or `PM` written in a title next to a date.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Half {
    /// Morning.
    Am,
    /// Afternoon or evening.
    Pm,
}

impl Half {
    /// `"AM"` or `"PM"`.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Am => "AM",
            Self::Pm => "PM",
        }
    }
}

/// The stay written in a title, without a year.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TitleDates {
    /// The text that matched, e.g. `2/9PM-17`.
    pub(crate) text: String,
    /// Check-in month, 1–12.
    pub(crate) start_month: u32,
    /// Check-in day, 1–31.
    pub(crate) start_day: u32,
    /// Check-out month when written (`2/28-3/5`).
    pub(crate) end_month: Option<u32>,
    /// Check-out day, 1–31.
    pub(crate) end_day: u32,
    /// `AM`/`PM` written after the check-in day.
    pub(crate) start_half: Option<Half>,
    /// `AM`/`PM` written after the check-out day.
    pub(crate) end_half: Option<Half>,
}

/// A number of 1–2 digits at `at`, not followed by another digit.
fn number(b: &[u8], at: usize) -> Option<(u32, usize)> {
    let len = b[at..].iter().take_while(|c| c.is_ascii_digit()).count();
    if len == 0 || len > 2 {
        return None;
    }
    let n = std::str::from_utf8(&b[at..at + len]).ok()?.parse().ok()?;
    Some((n, at + len))
}

fn half(b: &[u8], at: usize) -> (Option<Half>, usize) {
    match b.get(at..at + 2) {
        Some(b"am") => (Some(Half::Am), at + 2),
        Some(b"pm") => (Some(Half::Pm), at + 2),
        _ => (None, at),
    }
}

fn spaces(b: &[u8], mut at: usize) -> usize {
    while b.get(at) == Some(&b' ') {
        at += 1;
    }
    at
}

fn dash(b: &[u8], at: usize) -> Option<usize> {
    let at = spaces(b, at);
    let at = if b.get(at) == Some(&b'-') {
        at + 1
    } else if b.get(at..at + 3) == Some("–".as_bytes()) {
        at + 3
    } else {
        return None;
    };
    Some(spaces(b, at))
}

fn parse_at(b: &[u8], start: usize) -> Option<(TitleDates, usize)> {
    let (start_month, at) = number(b, start)?;
    if b.get(at) != Some(&b'/') {
        return None;
    }
    let (start_day, at) = number(b, at + 1)?;
    let (start_half, at) = half(b, at);
    let at = dash(b, at)?;
    let (first, at) = number(b, at)?;
    let (end_month, end_day, at) = match (b.get(at), b.get(at + 1)) {
        (Some(b'/'), Some(c)) if c.is_ascii_digit() => {
            let (day, at) = number(b, at + 1)?;
            (Some(first), day, at)
        }
        _ => (None, first, at),
    };
    let (end_half, at) = half(b, at);
    if b.get(at).is_some_and(u8::is_ascii_digit) {
        return None;
    }
    let month_ok = |m: u32| (1..=12).contains(&m);
    let day_ok = |d: u32| (1..=31).contains(&d);
    if !month_ok(start_month)
        || !day_ok(start_day)
        || !day_ok(end_day)
        || end_month.is_some_and(|m| !month_ok(m))
    {
        return None;
    }
    Some((
        TitleDates {
            text: String::new(),
            start_month,
            start_day,
            end_month,
            end_day,
            start_half,
            end_half,
        },
        at,
    ))
}

/// The first stay written in `title`, if any.
pub(crate) fn find(title: &str) -> Option<TitleDates> {
    let lower = title.to_ascii_lowercase();
    let b = lower.as_bytes();
    (0..b.len()).find_map(|i| {
        let starts_number = b[i].is_ascii_digit() && (i == 0 || !b[i - 1].is_ascii_digit());
        if !starts_number {
            return None;
        }
        let (mut dates, end) = parse_at(b, i)?;
        // `end` and `i` are on ASCII bytes (digits, letters a/m/p, dash or
        // spaces, or the end of an en dash), so they are char boundaries.
        dates.text = title.get(i..end).unwrap_or_default().to_string();
        Some(dates)
    })
}

impl TitleDates {
    /// The check-in and check-out dates in the year (one before, the same
    /// as or one after `anchor`'s) that puts the check-in closest to
    /// `anchor`. `None` when no such year gives real dates (`2/30-3/2`).
    pub(crate) fn resolve(&self, anchor: NaiveDate) -> Option<(NaiveDate, NaiveDate)> {
        let y = anchor.year();
        [y - 1, y, y + 1]
            .into_iter()
            .filter_map(|year| self.in_year(year))
            .min_by_key(|(start, _)| (*start - anchor).num_days().abs())
    }

    fn in_year(&self, year: i32) -> Option<(NaiveDate, NaiveDate)> {
        let start = NaiveDate::from_ymd_opt(year, self.start_month, self.start_day)?;
        let (month, day) = match self.end_month {
            Some(m) => (m, self.end_day),
            None if self.end_day >= self.start_day => (self.start_month, self.end_day),
            None => (self.start_month % 12 + 1, self.end_day),
        };
        let end = NaiveDate::from_ymd_opt(year, month, day)?;
        let end = if end < start {
            NaiveDate::from_ymd_opt(year + 1, month, day)?
        } else {
            end
        };
        Some((start, end))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    fn stay(title: &str, anchor: NaiveDate) -> Option<(NaiveDate, NaiveDate)> {
        find(title)?.resolve(anchor)
    }

    #[test]
    fn every_form_of_the_reference() {
        let a = d(2026, 2, 9);
        assert_eq!(stay("2/13-18", a), Some((d(2026, 2, 13), d(2026, 2, 18))));
        let t = find("2/14-15am").unwrap();
        assert_eq!((t.start_half, t.end_half), (None, Some(Half::Am)));
        assert_eq!(t.text, "2/14-15am");
        assert_eq!(stay("2/14-15am", a), Some((d(2026, 2, 14), d(2026, 2, 15))));
        assert_eq!(
            stay("3/3-19 (Thur)", a),
            Some((d(2026, 3, 3), d(2026, 3, 19)))
        );
        let t = find("B/O Pepper 2/9PM-17").unwrap();
        assert_eq!((t.start_half, t.end_half), (Some(Half::Pm), None));
        assert_eq!(t.text, "2/9PM-17");
        assert_eq!(
            stay("B/O Pepper 2/9PM-17", a),
            Some((d(2026, 2, 9), d(2026, 2, 17)))
        );
        assert_eq!(stay("2/28-3/5", a), Some((d(2026, 2, 28), d(2026, 3, 5))));
        assert_eq!(stay("1/31-2/1pm", a), Some((d(2026, 1, 31), d(2026, 2, 1))));
    }

    #[test]
    fn end_below_start_rolls_over() {
        let a = d(2026, 2, 9);
        assert_eq!(stay("1/28-3", a), Some((d(2026, 1, 28), d(2026, 2, 3))));
        assert_eq!(stay("12/28-3", a), Some((d(2025, 12, 28), d(2026, 1, 3))));
        assert_eq!(
            stay("12/30-1/2", d(2026, 12, 1)),
            Some((d(2026, 12, 30), d(2027, 1, 2)))
        );
        // 2/27-1 in a leap year ends on March 1 either way.
        assert_eq!(
            stay("2/27-1", d(2028, 2, 1)),
            Some((d(2028, 2, 27), d(2028, 3, 1)))
        );
    }

    #[test]
    fn year_is_the_one_closest_to_the_anchor() {
        assert_eq!(
            stay("12/20-27", d(2026, 1, 5)),
            Some((d(2025, 12, 20), d(2025, 12, 27)))
        );
        assert_eq!(
            stay("1/2-5", d(2025, 12, 20)),
            Some((d(2026, 1, 2), d(2026, 1, 5)))
        );
        // February 29 only in a leap year near the anchor.
        assert_eq!(
            stay("2/29-3/2", d(2027, 6, 1)),
            Some((d(2028, 2, 29), d(2028, 3, 2)))
        );
        assert_eq!(stay("2/29-3/2", d(2030, 6, 1)), None);
    }

    #[test]
    fn impossible_or_absent_dates() {
        let a = d(2026, 2, 9);
        for text in [
            "Boarding (Nights)",
            "",
            "13/2-5",
            "2/32-4",
            "0/3-4",
            "2/3",
            "2/3-",
            "123/4-5",
            "2/3-456",
            "24/7 care",
            "DC:FT",
            "D/C M/T/W/TH",
        ] {
            assert_eq!(find(text), None, "{text:?}");
        }
        assert_eq!(stay("2/30-3/2", a), None, "no February 30");
        assert_eq!(stay("4/31-5/2", a), None);
        // A later valid form is found after an invalid one.
        assert_eq!(
            stay("13/2-5 then 2/13 - 18", a).map(|s| s.0),
            Some(d(2026, 2, 13))
        );
        assert_eq!(stay("2/13–18", a).map(|s| s.1), Some(d(2026, 2, 18)));
        // Non-ASCII around the dates is fine.
        assert_eq!(stay("Zoë 2/13-18 ✓", a).map(|s| s.1), Some(d(2026, 2, 18)));
    }
}
