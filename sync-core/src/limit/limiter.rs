//! The in-memory rate limiter: a [`Budget`] for the tasks of one process.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use crate::error::Result;
use crate::limit::budget::Budget;
use crate::limit::limits::RateLimits;
use crate::limit::schedule::{Schedule, SlowDown};

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

/// An async rate limiter holding every window of [`RateLimits`] at once, in
/// memory.
///
/// Share one instance (in an `Arc`) between every task of the process that
/// uses the same server: the server counts them together. Grants are first
/// come, first served. To share a budget between processes, use a budget
/// kept in a store instead.
#[derive(Debug)]
pub struct RateLimiter {
    limits: RateLimits,
    slow: SlowDown,
    name: String,
    origin: Instant,
    schedule: Mutex<Schedule>,
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
    pub fn with_slow_down(limits: RateLimits, slow: SlowDown) -> Self {
        Self {
            limits,
            slow,
            name: "in-memory budget".into(),
            origin: Instant::now(),
            schedule: Mutex::new(Schedule::new()),
            granted: AtomicU64::new(0),
            rate_limited: AtomicU64::new(0),
            waited_ms: AtomicU64::new(0),
        }
    }

    /// Names the limiter in messages (e.g. the server it paces).
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The limits this limiter holds.
    pub fn limits(&self) -> RateLimits {
        self.limits
    }

    fn schedule(&self) -> std::sync::MutexGuard<'_, Schedule> {
        self.schedule.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until one more request may be sent without breaking any window,
    /// and counts it as sent.
    ///
    /// The slot is reserved before waiting, so concurrent callers are served
    /// in order and never share a slot. Dropping the future while it waits
    /// leaves the slot unused, which is always safe. A caller that wakes
    /// more than 10 ms after its slot (a busy machine) leaves that slot
    /// unused and takes the next: sent later, the request could reach the
    /// server right before the next slot's. 10 ms is half the windows'
    /// guard; less gives up slots to the few milliseconds a busy task
    /// delays a wake-up.
    pub async fn acquire(&self) {
        const LATE: Duration = Duration::from_millis(10);
        const TRIES: u32 = 3;
        for attempt in 1..=TRIES {
            let now = Instant::now();
            let at = {
                let mut s = self.schedule();
                self.origin + s.reserve(&self.limits, now - self.origin, &self.slow)
            };
            if at > now {
                self.waited_ms
                    .fetch_add((at - now).as_millis() as u64, Ordering::Relaxed);
                tokio::time::sleep_until(at).await;
            }
            if attempt == TRIES || Instant::now() <= at + LATE {
                break;
            }
            tracing::debug!(
                late_ms = (Instant::now() - at).as_millis() as u64,
                "woke late for a request slot; taking the next"
            );
        }
        self.granted.fetch_add(1, Ordering::Relaxed);
    }

    /// Tells the limiter the server answered 429. Every caller pauses for
    /// `retry_after` when the server gave one, otherwise for a backoff that
    /// doubles with each 429 in a row (with ±25% jitter); after the pause the
    /// limiter runs at half the pace and climbs back to full pace.
    pub fn on_rate_limited(&self, retry_after: Option<Duration>) {
        self.rate_limited.fetch_add(1, Ordering::Relaxed);
        let jitter = 0.75 + rand::random::<f64>() * 0.5;
        let now = Instant::now() - self.origin;
        self.schedule()
            .rate_limited(now, retry_after, &self.slow, jitter);
    }

    /// Counters so far.
    pub fn stats(&self) -> LimiterStats {
        LimiterStats {
            granted: self.granted.load(Ordering::Relaxed),
            rate_limited: self.rate_limited.load(Ordering::Relaxed),
            waited_ms: self.waited_ms.load(Ordering::Relaxed),
        }
    }

    /// The share of the full pace the limiter runs at now (1.0 at full
    /// speed, less for a while after a 429).
    pub fn pace_share(&self) -> f64 {
        let now = Instant::now() - self.origin;
        self.schedule().pace_share(now, &self.slow)
    }
}

#[async_trait]
impl Budget for RateLimiter {
    async fn acquire(&self) -> Result<()> {
        RateLimiter::acquire(self).await;
        Ok(())
    }

    async fn rate_limited(&self, retry_after: Option<Duration>) -> Result<()> {
        self.on_rate_limited(retry_after);
        Ok(())
    }

    fn limits(&self) -> RateLimits {
        self.limits
    }

    fn name(&self) -> String {
        self.name.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

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
        // Each window held 2% longer (1.02 s, 61.2 s), grants 200 ms apart
        // within a second: the very last of 600 goes at 162.98 s. Any
        // slower would waste budget.
        let elapsed = times.iter().max().unwrap().duration_since(start);
        assert_eq!(elapsed, Duration::from_millis(162_980));
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
    async fn retry_after_pauses_everyone_then_the_pace_recovers_within_seconds() {
        let limits = RateLimits::new(Some(10), None);
        let limiter = RateLimiter::new(limits);
        limiter.acquire().await;
        limiter.on_rate_limited(Some(Duration::from_secs(7)));
        let t0 = Instant::now();
        limiter.acquire().await;
        assert!(Instant::now() - t0 >= Duration::from_secs(7));
        assert!((limiter.pace_share() - 0.5).abs() < 0.05);
        // Half the pace right after the pause: 5/s instead of 10/s.
        let t1 = Instant::now();
        limiter.acquire().await;
        assert!(Instant::now() - t1 >= Duration::from_millis(190));
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(limiter.pace_share(), 1.0);
        assert_eq!(limiter.stats().rate_limited, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn backoff_without_retry_after_grows_for_429s_in_a_row() {
        let limiter = RateLimiter::unlimited();
        let mut pauses = Vec::new();
        for _ in 0..3 {
            limiter.on_rate_limited(None);
            let t = Instant::now();
            limiter.acquire().await;
            pauses.push(Instant::now() - t);
        }
        // 1 s, 2 s, 4 s, each +-25%.
        let within = |d: Duration, lo: u64, hi: u64| {
            d >= Duration::from_millis(lo) && d <= Duration::from_millis(hi)
        };
        assert!(within(pauses[0], 750, 1250), "{pauses:?}");
        assert!(within(pauses[1], 1500, 2500), "{pauses:?}");
        assert!(within(pauses[2], 3000, 5000), "{pauses:?}");
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
