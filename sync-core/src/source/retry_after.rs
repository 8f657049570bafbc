//! `Retry-After`, read once for every source.

use std::time::{Duration, SystemTime};

/// Reads a `Retry-After` header value: delay seconds (`120`, also `1.5`,
/// which some servers send) or an HTTP date (`Wed, 21 Oct 2015 07:28:00
/// GMT`), relative to `now`. A date in the past is zero; anything else
/// (negative, not a number, not a date) is `None`, so that the caller falls
/// back to its own backoff.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0)
            .then(|| Duration::try_from_secs_f64(secs).ok())
            .flatten();
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let at = SystemTime::UNIX_EPOCH
        .checked_add(Duration::from_secs(u64::try_from(at.timestamp()).ok()?))?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_470);
        assert_eq!(parse_retry_after("3", now), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_retry_after(" 1.5 ", now),
            Some(Duration::from_millis(1500))
        );
        // 2015-10-21 07:28:00 UTC is 10 s after `now`.
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        for bad in ["-1", "soon", "", "inf", "NaN", "1e400"] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad:?}");
        }
    }
}
