//! Boarding or not: the rules of the reference's "Boarding or not", as a
//! [`Classification`] that says why an appointment is not a boarding.
//!
//! An appointment is **not** a boarding when, in this order:
//! 1. its service type matches a non-boarding word pattern (`d/c`, `dc`,
//!    `add`, `switch day`, `back to N`, `initial eval`) or is exactly `busy`;
//! 2. its status contains `canceled` (a request that was never confirmed);
//! 3. it has line items and every one is a day service (`day`, `daycare`, a
//!    `DC` prefix, `pack`);
//! 4. its stay is shorter than 12 hours.
//!
//! Every word list is a key of [`super::Selectors`].

use std::fmt;

use super::text::normalize;

/// Whether a parsed appointment is a boarding, and if not, why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Classification {
    /// An overnight boarding: it becomes a record.
    Boarding,
    /// Anything else, with the rule that decided it.
    NotBoarding(NotBoarding),
}

impl Classification {
    /// Whether this is a boarding.
    pub(crate) fn is_boarding(&self) -> bool {
        matches!(self, Self::Boarding)
    }
}

impl fmt::Display for Classification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Boarding => f.write_str("boarding"),
            Self::NotBoarding(why) => write!(f, "not a boarding: {why}"),
        }
    }
}

/// Why an appointment is not a boarding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum NotBoarding {
    /// The service type names a non-boarding (daycare, an add-on, a
    /// schedule change, an evaluation, a busy block).
    ServiceType {
        /// The service type as read.
        service_type: String,
        /// The configured pattern or exact word that matched.
        rule: String,
    },
    /// The booking request was cancelled before it was confirmed.
    Cancelled {
        /// The status as read.
        status: String,
    },
    /// Every line item of the price is a day service.
    DayServicesOnly {
        /// The line items' service names.
        services: Vec<String>,
    },
    /// The stay is shorter than the minimum.
    ShortStay {
        /// Minutes from check-in to check-out (negative when check-out is
        /// before check-in).
        minutes: i64,
        /// The configured minimum, in hours.
        min_hours: u32,
    },
}

impl fmt::Display for NotBoarding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ServiceType { service_type, rule } => {
                write!(f, "service type `{service_type}` matches `{rule}`")
            }
            Self::Cancelled { status } => write!(f, "cancelled request (status `{status}`)"),
            Self::DayServicesOnly { services } => {
                write!(f, "only day services ({})", services.join(", "))
            }
            Self::ShortStay { minutes, min_hours } => write!(
                f,
                "stay of {}h{:02} is shorter than {min_hours}h",
                minutes / 60,
                (minutes % 60).abs()
            ),
        }
    }
}

/// One word of a [`WordPattern`].
#[derive(Clone, Debug, PartialEq, Eq)]
enum Word {
    /// Literal characters (lower case).
    Literal(Vec<char>),
    /// One or more ASCII digits (`#`).
    Number,
}

/// A phrase matched as whole words, case-insensitively: the words of the
/// pattern match in order, separated by any run of whitespace; `#` matches a
/// number; a trailing `*` lets the last word continue (a prefix). The match
/// may start anywhere the text has no letter or digit just before it, and
/// must end where the text has no letter or digit just after it (unless the
/// pattern ends with `*`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct WordPattern {
    source: String,
    words: Vec<Word>,
    prefix: bool,
}

impl WordPattern {
    /// Parses a pattern; `None` when it has no word.
    pub(crate) fn parse(pattern: &str) -> Option<Self> {
        let mut text = pattern.trim().to_lowercase();
        let prefix = text.ends_with('*');
        if prefix {
            text.pop();
        }
        let words: Vec<Word> = text
            .split_whitespace()
            .map(|w| match w {
                "#" => Word::Number,
                w => Word::Literal(w.chars().collect()),
            })
            .collect();
        if words.is_empty() {
            return None;
        }
        Some(Self {
            source: pattern.trim().to_string(),
            words,
            prefix,
        })
    }

    /// The pattern as configured.
    pub(crate) fn source(&self) -> &str {
        &self.source
    }

    /// Whether the pattern occurs in `text`.
    pub(crate) fn is_in(&self, text: &str) -> bool {
        let chars: Vec<char> = text.to_lowercase().chars().collect();
        (0..chars.len()).any(|start| {
            let boundary_before = start == 0 || !chars[start - 1].is_alphanumeric();
            boundary_before && self.matches_at(&chars, start)
        })
    }

    fn matches_at(&self, chars: &[char], start: usize) -> bool {
        let mut pos = start;
        for (i, word) in self.words.iter().enumerate() {
            if i > 0 {
                let gap = chars[pos..]
                    .iter()
                    .take_while(|c| c.is_whitespace())
                    .count();
                if gap == 0 {
                    return false;
                }
                pos += gap;
            }
            match word {
                Word::Literal(lit) => {
                    if !chars[pos..].starts_with(lit) {
                        return false;
                    }
                    pos += lit.len();
                }
                Word::Number => {
                    let digits = chars[pos..]
                        .iter()
                        .take_while(|c| c.is_ascii_digit())
                        .count();
                    if digits == 0 {
                        return false;
                    }
                    pos += digits;
                }
            }
        }
        self.prefix || chars.get(pos).is_none_or(|c| !c.is_alphanumeric())
    }
}

/// The rule that makes `service_type` a non-boarding, if any.
pub(crate) fn service_type_rule(
    service_type: &str,
    patterns: &[WordPattern],
    exact: &[String],
) -> Option<String> {
    let normalized = normalize(service_type).to_lowercase();
    if let Some(word) = exact
        .iter()
        .find(|w| normalize(w).to_lowercase() == normalized)
    {
        return Some(format!("exactly `{word}`"));
    }
    patterns
        .iter()
        .find(|p| p.is_in(service_type))
        .map(|p| p.source().to_string())
}

/// Whether a status says the request was cancelled.
pub(crate) fn is_cancelled(status: &str, words: &[WordPattern]) -> bool {
    words.iter().any(|w| w.is_in(status))
}

/// Whether a line item's service is a day service.
pub(crate) fn is_day_service(service: &str, patterns: &[WordPattern], prefixes: &[String]) -> bool {
    let lower = service.trim().to_lowercase();
    patterns.iter().any(|p| p.is_in(service))
        || prefixes
            .iter()
            .any(|p| lower.starts_with(&p.trim().to_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pats(list: &[&str]) -> Vec<WordPattern> {
        list.iter()
            .map(|p| WordPattern::parse(p).unwrap())
            .collect()
    }

    fn defaults() -> (Vec<WordPattern>, Vec<String>) {
        let s = super::super::Selectors::default();
        (
            pats(
                &s.non_boarding_service_patterns
                    .iter()
                    .map(String::as_str)
                    .collect::<Vec<_>>(),
            ),
            s.non_boarding_service_exact,
        )
    }

    #[test]
    fn word_patterns_match_whole_words() {
        let dc = WordPattern::parse("dc").unwrap();
        assert!(dc.is_in("DC:FT"));
        assert!(dc.is_in("PG / DC full"));
        assert!(dc.is_in("dc"));
        assert!(!dc.is_in("DCFT"));
        assert!(!dc.is_in("abdc"));
        let slash = WordPattern::parse("d/c").unwrap();
        assert!(slash.is_in("D/C M/T/W/TH"));
        assert!(!slash.is_in("ad/c"));
        let back = WordPattern::parse("back to #").unwrap();
        assert!(back.is_in("mav back to 4 days"));
        assert!(back.is_in("Back  to\t12"));
        assert!(!back.is_in("back to four days"));
        assert!(!back.is_in("back to 4x"));
        let eval = WordPattern::parse("initial eval*").unwrap();
        assert!(eval.is_in("Initial Evaluation"));
        assert!(eval.is_in("initial eval"));
        assert!(!eval.is_in("initialeval"));
        assert_eq!(WordPattern::parse("  * "), None);
        assert_eq!(WordPattern::parse(""), None);
    }

    #[test]
    fn non_boarding_service_types() {
        let (patterns, exact) = defaults();
        let rule = |s: &str| service_type_rule(s, &patterns, &exact);
        for (service, want) in [
            ("DC:FT", "dc"),
            ("D/C M/T/W/TH", "d/c"),
            ("ADD Leo T/TH", "add"),
            ("Daycare Add-On Day", "add"),
            ("Brinkley switch day", "switch day*"),
            ("Brinkley switch days", "switch day*"),
            ("mav back to 4 days", "back to #"),
            ("Initial Evaluation", "initial eval*"),
            (" Busy ", "exactly `busy`"),
            ("BUSY", "exactly `busy`"),
        ] {
            assert_eq!(rule(service).as_deref(), Some(want), "{service}");
        }
        for boarding in [
            "2/13-18",
            "2/14-15am",
            "3/3-19 (Thur)",
            "B/O Pepper 2/9PM-17",
            "2/28-3/5",
            "Boarding (Nights)",
            "Busy weekend boarding 2/13-18",
            "Holiday Boarding",
            "Staff Boarding (nights)",
            "Maddie 2/13-18",
            "Padded suite",
        ] {
            assert_eq!(rule(boarding), None, "{boarding}");
        }
    }

    #[test]
    fn day_services_and_cancelled_statuses() {
        let s = super::super::Selectors::default();
        let day = pats(&["day", "days", "daycare", "pack"]);
        let yes = |x: &str| is_day_service(x, &day, &s.day_service_prefixes);
        assert!(yes("Daycare Add-On Day"));
        assert!(yes("Daycare"));
        assert!(yes("Half Day"));
        assert!(yes("DC:FT"));
        assert!(yes("dc full time"));
        assert!(yes("Pack Group"));
        assert!(!yes("Boarding (Nights)"));
        assert!(!yes("Holiday Boarding"));
        assert!(!yes("Bath"));
        let cancelled = pats(&["canceled", "cancelled"]);
        assert!(is_cancelled("canceled", &cancelled));
        assert!(is_cancelled("Request canceled", &cancelled));
        assert!(is_cancelled("Cancelled by client", &cancelled));
        assert!(!is_cancelled("Scheduled", &cancelled));
        assert!(!is_cancelled("Uncanceled", &cancelled));
    }

    #[test]
    fn reasons_read_well() {
        let r = NotBoarding::ShortStay {
            minutes: 8 * 60 + 5,
            min_hours: 12,
        };
        assert_eq!(r.to_string(), "stay of 8h05 is shorter than 12h");
        assert_eq!(
            Classification::NotBoarding(NotBoarding::Cancelled {
                status: "Request canceled".into()
            })
            .to_string(),
            "not a boarding: cancelled request (status `Request canceled`)"
        );
    }
}
