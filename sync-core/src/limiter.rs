//! The run-time rate limiter: every window at once, shared by every task that
//! uses the same credentials, slowing down on 429.
//!
//! Why not `governor`: GCRA with a burst allows more than the burst inside
//! one window (5/s with burst 5 lets 9 requests through in the first second),
//! while the servers we talk to count requests in sliding or calendar
//! windows. This limiter keeps, for each window, the times of the last N
//! granted requests and grants the next one only when the oldest of them has
//! left the window: no window can ever hold more than N, whatever the burst.
//! Memory is bounded by the largest limit (200 instants for 200/min).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

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
    fn windows(&self) -> Vec<(Duration, u32)> {
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

/// How the limiter reacts to a 429.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SlowDown {
    /// Pause after a 429 without Retry-After, doubled for each one in a row.
    pub initial_backoff: Duration,
    /// Longest pause after a 429 without Retry-After.
    pub max_backoff: Duration,
    /// Longest Retry-After honoured (a larger one is capped).
    pub max_retry_after: Duration,
    /// How many granted requests it takes to halve the slow-down again.
    pub recovery_requests: u32,
}

impl Default for SlowDown {
    fn default() -> Self {
        Self {
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            max_retry_after: Duration::from_secs(300),
            recovery_requests: 20,
        }
    }
}

/// Counters of a limiter, for run reports and benchmarks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LimiterStats {
    /// Requests granted.
    pub granted: u64,
    /// 429 answers reported.
    pub rate_limited: u64,
    /// Total time callers spent waiting, in milliseconds.
    pub waited_ms: u64,
}

#[derive(Debug)]
struct Window {
    length: Duration,
    max: usize,
    // Grant times, oldest first; never more than `max` entries.
    granted: VecDeque<Instant>,
}

#[derive(Debug)]
struct State {
    windows: Vec<Window>,
    last_grant: Option<Instant>,
    paused_until: Option<Instant>,
    // 1.0 = full speed; 2.0 = half the sustained rate, and so on.
    slowdown: f64,
    consecutive_429: u32,
    grants_since_429: u32,
}

/// An async rate limiter holding every window of [`RateLimits`] at once.
///
/// Share one instance (in an `Arc`) between every task that uses the same
/// credentials or IP address: the server counts them together. Grants are
/// first come, first served.
#[derive(Debug)]
pub struct RateLimiter {
    limits: RateLimits,
    slow_down: SlowDown,
    state: Mutex<State>,
    granted: AtomicU64,
    rate_limited: AtomicU64,
    waited_ms: AtomicU64,
}

impl RateLimiter {
    /// A limiter for `limits` with the default reaction to 429.
    pub fn new(limits: RateLimits) -> Self {
        Self::with_slow_down(limits, SlowDown::default())
    }

    /// A limiter that never waits (but still pauses after a 429).
    pub fn unlimited() -> Self {
        Self::new(RateLimits::UNLIMITED)
    }

    /// A limiter with a custom reaction to 429.
    pub fn with_slow_down(limits: RateLimits, slow_down: SlowDown) -> Self {
        let windows = limits
            .windows()
            .into_iter()
            .map(|(length, max)| Window {
                length,
                max: max as usize,
                granted: VecDeque::with_capacity(max as usize),
            })
            .collect();
        Self {
            limits,
            slow_down,
            state: Mutex::new(State {
                windows,
                last_grant: None,
                paused_until: None,
                slowdown: 1.0,
                consecutive_429: 0,
                grants_since_429: 0,
            }),
            granted: AtomicU64::new(0),
            rate_limited: AtomicU64::new(0),
            waited_ms: AtomicU64::new(0),
        }
    }

    /// The limits this limiter holds.
    pub fn limits(&self) -> RateLimits {
        self.limits
    }

    /// Waits until one more request may be sent without breaking any window,
    /// and counts it as sent.
    ///
    /// The slot is reserved before waiting, so concurrent callers are served
    /// in order and never share a slot. Dropping the future while it waits
    /// leaves the slot unused, which is always safe.
    pub async fn acquire(&self) {
        let now = Instant::now();
        let at = self.reserve(now);
        if at > now {
            self.waited_ms
                .fetch_add((at - now).as_millis() as u64, Ordering::Relaxed);
            tokio::time::sleep_until(at).await;
        }
    }

    fn reserve(&self, now: Instant) -> Instant {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let mut at = now;
        if let Some(p) = s.paused_until {
            at = at.max(p);
        }
        if let Some(last) = s.last_grant {
            // First come, first served: never before an earlier reservation.
            at = at.max(last);
            let mut spacing = self.limits.min_spacing.unwrap_or_default();
            if s.slowdown > 1.0 {
                if let Some(rate) = self.limits.sustained_rate() {
                    spacing = spacing.max(Duration::from_secs_f64(s.slowdown / rate));
                }
            }
            at = at.max(last + spacing);
        }
        for w in &s.windows {
            if w.granted.len() >= w.max {
                // The oldest of the last `max` grants must leave the window.
                let oldest = w.granted[w.granted.len() - w.max];
                at = at.max(oldest + guarded(w.length));
            }
        }
        for w in &mut s.windows {
            if w.granted.len() == w.max {
                w.granted.pop_front();
            }
            w.granted.push_back(at);
        }
        s.last_grant = Some(at);
        if s.slowdown > 1.0 {
            s.grants_since_429 += 1;
            if s.grants_since_429 >= self.slow_down.recovery_requests {
                s.grants_since_429 = 0;
                s.slowdown /= 2.0;
                if s.slowdown < 1.01 {
                    s.slowdown = 1.0;
                    s.consecutive_429 = 0;
                }
            }
        }
        self.granted.fetch_add(1, Ordering::Relaxed);
        at
    }

    /// Tells the limiter the server answered 429. Every caller pauses for
    /// `retry_after` when the server gave one, otherwise for a backoff that
    /// doubles with each 429 in a row (with jitter); after the pause the
    /// limiter runs at a reduced rate and recovers gradually.
    pub fn on_rate_limited(&self, retry_after: Option<Duration>) {
        self.rate_limited.fetch_add(1, Ordering::Relaxed);
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.consecutive_429 = s.consecutive_429.saturating_add(1);
        s.grants_since_429 = 0;
        s.slowdown = (s.slowdown * 2.0).min(16.0);
        let pause = match retry_after {
            Some(d) => d.min(self.slow_down.max_retry_after),
            None => {
                let exp = s.consecutive_429.saturating_sub(1).min(16);
                let base = self
                    .slow_down
                    .initial_backoff
                    .saturating_mul(1u32 << exp)
                    .min(self.slow_down.max_backoff);
                // +-25% jitter so that independent clients do not retry in step.
                base.mul_f64(0.75 + rand::random::<f64>() * 0.5)
            }
        };
        let until = Instant::now() + pause;
        s.paused_until = Some(s.paused_until.map_or(until, |p| p.max(until)));
    }

    /// Counters so far.
    pub fn stats(&self) -> LimiterStats {
        LimiterStats {
            granted: self.granted.load(Ordering::Relaxed),
            rate_limited: self.rate_limited.load(Ordering::Relaxed),
            waited_ms: self.waited_ms.load(Ordering::Relaxed),
        }
    }

    /// The current slow-down factor (1.0 at full speed).
    pub fn slowdown(&self) -> f64 {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .slowdown
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// Checks that no window of `limits` holds too many of `times`.
    fn assert_windows_hold(times: &[Instant], limits: RateLimits) {
        let mut times = times.to_vec();
        times.sort();
        for (len, max) in limits.windows() {
            for (i, &t) in times.iter().enumerate() {
                let inside = times[i..].iter().take_while(|&&u| u < t + len).count();
                assert!(
                    inside <= max as usize,
                    "{inside} requests in a {len:?} window starting at request {i} (max {max})"
                );
            }
        }
        if let Some(sp) = limits.min_spacing {
            for pair in times.windows(2) {
                assert!(
                    pair[1] - pair[0] >= sp,
                    "spacing {:?} < {sp:?}",
                    pair[1] - pair[0]
                );
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn many_tasks_never_exceed_any_window() {
        let limits = RateLimits::new(Some(5), Some(200));
        let limiter = Arc::new(RateLimiter::new(limits));
        let times = Arc::new(Mutex::new(Vec::new()));
        let start = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..30 {
            let (l, t) = (limiter.clone(), times.clone());
            tasks.push(tokio::spawn(async move {
                for _ in 0..20 {
                    l.acquire().await;
                    t.lock().unwrap().push(Instant::now());
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let times = times.lock().unwrap().clone();
        assert_eq!(times.len(), 600);
        assert_windows_hold(&times, limits);
        // 600 requests at 200/min and 5/s, each window held 2% longer (1.02 s,
        // 61.2 s): five every 1.02 s, so 200 by 39.78 s; the next 200 from
        // 61.2 s, the last 200 from 122.4 s, the very last at 162.18 s. Any
        // slower would waste budget.
        let elapsed = times.iter().max().unwrap().duration_since(start);
        assert_eq!(elapsed, Duration::from_millis(162_180));
        assert_eq!(limiter.stats().granted, 600);
    }

    #[tokio::test(start_paused = true)]
    async fn min_spacing_is_held() {
        let limits = RateLimits::new(None, None).with_min_spacing(Duration::from_millis(1500));
        let limiter = RateLimiter::new(limits);
        let mut times = Vec::new();
        for _ in 0..10 {
            limiter.acquire().await;
            times.push(Instant::now());
        }
        assert_windows_hold(&times, limits);
        assert_eq!(times[9] - times[0], Duration::from_millis(13_500));
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_pauses_everyone_then_recovers() {
        let limits = RateLimits::new(Some(10), None);
        let limiter = RateLimiter::new(limits);
        limiter.acquire().await;
        limiter.on_rate_limited(Some(Duration::from_secs(7)));
        let t0 = Instant::now();
        limiter.acquire().await;
        assert!(Instant::now() - t0 >= Duration::from_secs(7));
        assert_eq!(limiter.slowdown(), 2.0);
        // Slowed down: 5/s instead of 10/s, until enough grants went through.
        let t1 = Instant::now();
        limiter.acquire().await;
        assert!(Instant::now() - t1 >= Duration::from_millis(200));
        for _ in 0..40 {
            limiter.acquire().await;
        }
        assert_eq!(limiter.slowdown(), 1.0);
        assert_eq!(limiter.stats().rate_limited, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn backoff_without_retry_after_grows() {
        let limiter = RateLimiter::unlimited();
        let mut pauses = Vec::new();
        for _ in 0..3 {
            limiter.on_rate_limited(None);
            let t = Instant::now();
            limiter.acquire().await;
            pauses.push(Instant::now() - t);
        }
        // 1 s, 2 s, 4 s, each +-25%.
        assert!(
            pauses[0] >= Duration::from_millis(750) && pauses[0] <= Duration::from_millis(1250)
        );
        assert!(
            pauses[1] >= Duration::from_millis(1500) && pauses[1] <= Duration::from_millis(2500)
        );
        assert!(
            pauses[2] >= Duration::from_millis(3000) && pauses[2] <= Duration::from_millis(5000)
        );
    }

    #[test]
    fn scaled_limits_and_sustained_rate() {
        let l = RateLimits::new(Some(5), Some(200));
        assert_eq!(l.sustained_rate(), Some(200.0 / 60.0));
        let half = l.scaled(0.5);
        assert_eq!((half.per_second, half.per_minute), (Some(2), Some(100)));
        assert_eq!(l.scaled(0.01).per_second, Some(1));
        assert!(RateLimits::UNLIMITED.is_unlimited());
        let spaced = RateLimits::UNLIMITED.with_min_spacing(Duration::from_secs(2));
        assert_eq!(spaced.sustained_rate(), Some(0.5));
        // Scaling never panics, even where the spacing overflows.
        let huge = RateLimits::UNLIMITED
            .with_min_spacing(Duration::MAX)
            .scaled(0.5);
        assert_eq!(huge.min_spacing, Some(Duration::MAX));
    }
}
