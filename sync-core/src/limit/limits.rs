//! The limits a server documents, and how windows are held.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The limits a server documents, all held at once.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RateLimits {
    /// Requests in any one-second window.
    pub per_second: Option<u32>,
    /// Requests in any sixty-second window.
    pub per_minute: Option<u32>,
    /// Minimum time between two requests.
    #[serde(with = "opt_millis", default)]
    pub min_spacing: Option<Duration>,
}

impl RateLimits {
    /// No limit at all.
    pub const UNLIMITED: Self = Self {
        per_second: None,
        per_minute: None,
        min_spacing: None,
    };

    /// `per_second` and `per_minute` limits.
    pub fn new(per_second: Option<u32>, per_minute: Option<u32>) -> Self {
        Self {
            per_second,
            per_minute,
            min_spacing: None,
        }
    }

    /// Adds a minimum spacing between requests.
    pub fn with_min_spacing(mut self, spacing: Duration) -> Self {
        self.min_spacing = Some(spacing);
        self
    }

    /// The limits scaled to a share of them (`utilization` in `(0, 1]`, e.g.
    /// 0.8 for 80%). Counts round down but never below one; spacing grows.
    pub fn scaled(&self, utilization: f64) -> Self {
        let u = if utilization.is_finite() && utilization > 0.0 {
            utilization.min(1.0)
        } else {
            1.0
        };
        let scale = |n: u32| ((f64::from(n) * u).floor() as u32).max(1);
        Self {
            per_second: self.per_second.map(scale),
            per_minute: self.per_minute.map(scale),
            min_spacing: self
                .min_spacing
                .map(|d| Duration::try_from_secs_f64(d.as_secs_f64() / u).unwrap_or(Duration::MAX)),
        }
    }

    /// The highest rate the limits allow over a long run, in requests per
    /// second; `None` when unlimited.
    pub fn sustained_rate(&self) -> Option<f64> {
        [
            self.per_second.map(f64::from),
            self.per_minute.map(|n| f64::from(n) / 60.0),
            self.min_spacing
                .filter(|d| !d.is_zero())
                .map(|d| 1.0 / d.as_secs_f64()),
        ]
        .into_iter()
        .flatten()
        .reduce(f64::min)
    }

    /// Whether no limit is set.
    pub fn is_unlimited(&self) -> bool {
        self.sustained_rate().is_none()
    }

    /// The windows to enforce: (length, how many requests fit).
    pub(crate) fn windows(&self) -> Vec<(Duration, u32)> {
        let mut w = Vec::new();
        if let Some(n) = self.per_second {
            w.push((Duration::from_secs(1), n.max(1)));
        }
        if let Some(n) = self.per_minute {
            w.push((Duration::from_secs(60), n.max(1)));
        }
        w
    }
}

mod opt_millis {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub(super) fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&(d.as_millis() as u64)),
            None => s.serialize_none(),
        }
    }
    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.map(Duration::from_millis))
    }
}

/// A window as the limiter holds it: 2% longer than the server's.
///
/// The server counts arrival times, the limiter grant times, and the delay
/// between the two varies (timer wake-up, scheduling, the network): when
/// request k arrives later after its grant than request k+N, the server
/// would see N+1 requests in one window. Measured against the simulator at
/// 100% of its limits, 2% removes every 429 (see benches/README.md) and
/// costs 2% of the budget (200 requests take 61.2 s instead of 60 s).
pub(crate) fn guarded(window: Duration) -> Duration {
    window + window / 50
}
