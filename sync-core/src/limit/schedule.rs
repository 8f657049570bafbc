//! The one schedule of requests under a set of limits, in time since an
//! origin, with the slow-down after a 429. Pure: no clock, no I/O.
//!
//! Every place that decides when a request may go uses it: the in-memory
//! [`RateLimiter`](crate::RateLimiter) (origin: the limiter's creation),
//! the budgets kept in a store and shared by processes (origin: the Unix
//! epoch, on the store's clock), and the planner's ETAs (origin: the first
//! request). So the plan's ETA is the limiter's own schedule.
//!
//! Why not `governor`: GCRA with a burst allows more than the burst inside
//! one window (5/s with burst 5 lets 9 requests through in the first
//! second), while the servers we talk to count requests in sliding or
//! calendar windows. This schedule keeps the times of the recent grants and
//! gives the next slot only when the oldest of the last N has left the
//! window (held 2% longer than the server's, see `guarded`): no window
//! ever holds more than N, whatever the burst.
//!
//! After a 429 the schedule pauses (the server's `Retry-After`, or a backoff
//! that doubles with each 429 in a row) and then runs at half the pace,
//! climbing back to full pace within [`SlowDown::recovery`] (additive
//! increase), so a few 429s cost seconds, not the rest of the run.

use std::collections::VecDeque;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::limit::limits::{guarded, RateLimits};

/// How the schedule reacts to a 429.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SlowDown {
    /// Pause after a 429 without `Retry-After`; doubled for each further
    /// 429 that comes before the pace has recovered.
    pub initial_backoff: Duration,
    /// Longest pause after a 429 without `Retry-After`.
    pub max_backoff: Duration,
    /// Longest `Retry-After` honoured (a larger one is capped).
    pub max_retry_after: Duration,
    /// Share of the pace kept right after the pause (0.5 = half speed).
    pub decrease: f64,
    /// How long, without another 429, the pace takes to climb back from
    /// `decrease` to full speed (linearly).
    pub recovery: Duration,
}

impl Default for SlowDown {
    fn default() -> Self {
        Self {
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            max_retry_after: Duration::from_secs(300),
            decrease: 0.5,
            recovery: Duration::from_secs(4),
        }
    }
}

/// The state of a schedule: recent grants, pause and slow-down. Serialisable
/// so that a store can keep one per budget key.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    /// Times of the recent grants, oldest first (sorted: grants are first
    /// come, first served). Older than the longest window: dropped.
    grants: VecDeque<Duration>,
    /// No grant before this (a 429's pause).
    paused_until: Option<Duration>,
    /// When the pace was last cut (the end of the last 429's pause) and to
    /// which share; the share climbs back linearly from there.
    slowed_at: Option<Duration>,
    slowed_to: f64,
    /// 429s in a row (each before the pace recovered from the previous).
    consecutive_429: u32,
}

/// The longest window any limit holds: grants older than this never matter.
const LONGEST_WINDOW: Duration = Duration::from_secs(60);

impl Schedule {
    /// An empty schedule: the first request may go at once.
    pub fn new() -> Self {
        Self::default()
    }

    /// The earliest time at or after `now` at which one more request may go
    /// under `limits` without breaking any window, the pause or the
    /// slowed pace; reserves that time (later calls never get an earlier
    /// one).
    pub fn reserve(&mut self, limits: &RateLimits, now: Duration, slow: &SlowDown) -> Duration {
        let at = self.earliest(limits, now, slow);
        self.grants.push_back(at);
        self.forget_before(at);
        at
    }

    /// The time [`Schedule::reserve`] would give, without reserving it.
    pub fn earliest(&self, limits: &RateLimits, now: Duration, slow: &SlowDown) -> Duration {
        let mut at = now;
        if let Some(p) = self.paused_until {
            at = at.max(p);
        }
        if let Some(&last) = self.grants.back() {
            // First come, first served: never before an earlier reservation.
            at = at.max(last);
            let mut spacing = limits.min_spacing.unwrap_or_default();
            // Within a second, grants are spread out, not sent in a burst:
            // below the full rate, a request that reaches the server late
            // then cannot meet the next second's burst in one window (at
            // 4/s of 5/s a request may arrive 250 ms late, not 20 ms).
            if let Some(n) = limits.per_second {
                spacing = spacing.max(secs(1.0 / f64::from(n.max(1))));
            }
            let share = self.pace_share(at, slow);
            if share < 1.0 {
                if let Some(rate) = limits.sustained_rate() {
                    spacing = spacing.max(secs(1.0 / (rate * share)));
                }
            }
            at = at.max(last.saturating_add(spacing));
        }
        for (length, max) in limits.windows() {
            let max = max as usize;
            if self.grants.len() >= max {
                // The oldest of the last `max` grants must leave the window.
                let oldest = self.grants[self.grants.len() - max];
                at = at.max(oldest.saturating_add(guarded(length)));
            }
        }
        at
    }

    /// The server answered 429 at `now`: pause for `retry_after` when it
    /// gave one, else for a backoff that doubles with each 429 in a row
    /// (times `jitter`, a factor near 1 so that independent clients do not
    /// retry in step); then run at a reduced pace that recovers.
    pub fn rate_limited(
        &mut self,
        now: Duration,
        retry_after: Option<Duration>,
        slow: &SlowDown,
        jitter: f64,
    ) {
        let recovered = self
            .slowed_at
            .is_none_or(|t| now >= t.saturating_add(slow.recovery));
        self.consecutive_429 = if recovered {
            1
        } else {
            self.consecutive_429.saturating_add(1)
        };
        let pause = match retry_after {
            Some(d) => d.min(slow.max_retry_after),
            None => {
                let doublings = self.consecutive_429.saturating_sub(1).min(16);
                let base = slow
                    .initial_backoff
                    .saturating_mul(1u32 << doublings)
                    .min(slow.max_backoff);
                base.mul_f64(jitter.clamp(0.5, 1.5))
            }
        };
        let until = now.saturating_add(pause);
        self.paused_until = Some(self.paused_until.map_or(until, |p| p.max(until)));
        let share_now = self.pace_share(now, slow);
        self.slowed_to = (share_now * slow.decrease).clamp(0.05, 1.0);
        self.slowed_at = self.paused_until;
    }

    /// The share of the full pace the schedule runs at, at `at`.
    pub fn pace_share(&self, at: Duration, slow: &SlowDown) -> f64 {
        let Some(since) = self.slowed_at else {
            return 1.0;
        };
        if at <= since {
            return self.slowed_to;
        }
        let climbed = if slow.recovery.is_zero() {
            1.0
        } else {
            (at - since).as_secs_f64() / slow.recovery.as_secs_f64()
        };
        (self.slowed_to + (1.0 - self.slowed_to) * climbed).min(1.0)
    }

    /// Until when the schedule is paused after a 429, if it is at `now`.
    pub fn paused_until(&self, now: Duration) -> Option<Duration> {
        self.paused_until.filter(|&p| p > now)
    }

    /// The times of the recent grants, oldest first.
    pub fn grants(&self) -> impl Iterator<Item = Duration> + '_ {
        self.grants.iter().copied()
    }

    fn forget_before(&mut self, now: Duration) {
        let horizon = now.saturating_sub(guarded(LONGEST_WINDOW));
        while self.grants.len() > 1 && self.grants.front().is_some_and(|&t| t < horizon) {
            self.grants.pop_front();
        }
        if self.paused_until.is_some_and(|p| p <= horizon) {
            self.paused_until = None;
        }
    }
}

fn secs(s: f64) -> Duration {
    Duration::try_from_secs_f64(s).unwrap_or(Duration::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Checks that no window of `limits` holds too many of `times`.
    fn assert_windows_hold(times: &[Duration], limits: RateLimits) {
        for (len, max) in limits.windows() {
            for (i, &t) in times.iter().enumerate() {
                let inside = times[i..].iter().take_while(|&&u| u < t + len).count();
                assert!(
                    inside <= max as usize,
                    "{inside} requests in a {len:?} window from request {i} (max {max})"
                );
            }
        }
    }

    #[test]
    fn greedy_schedule_fills_every_window_to_its_limit() {
        let limits = RateLimits::new(Some(5), Some(200));
        let slow = SlowDown::default();
        let mut s = Schedule::new();
        let times: Vec<Duration> = (0..600).map(|_| s.reserve(&limits, ms(0), &slow)).collect();
        assert_windows_hold(&times, limits);
        // Five every 1.02 s, 200 ms apart within each (0, 0.2, ... 0.8,
        // 1.02, 1.22 ...): 200 by 39.78 + 0.8 = 40.58 s, the next 200 from
        // 61.2 s...
        assert_eq!(times[4], ms(800));
        assert_eq!(times[5], ms(1_020));
        assert_eq!(times[199], ms(40_580));
        assert_eq!(times[200], ms(61_200));
        assert_eq!(times[599], ms(162_980));
    }

    #[test]
    fn a_429_pauses_then_the_pace_climbs_back() {
        let limits = RateLimits::new(Some(10), None);
        let slow = SlowDown::default();
        let mut s = Schedule::new();
        s.reserve(&limits, ms(0), &slow);
        s.rate_limited(ms(0), None, &slow, 1.0);
        // Paused for the 1 s backoff.
        assert_eq!(s.reserve(&limits, ms(0), &slow), ms(1000));
        // Then half the pace: 5/s, 200 ms apart.
        assert_eq!(s.reserve(&limits, ms(0), &slow), ms(1200));
        // Four seconds later the pace is full again: 10/s, spread 100 ms
        // apart within the second.
        assert!((s.pace_share(ms(6000), &slow) - 1.0).abs() < 1e-9);
        let late = s.reserve(&limits, ms(6000), &slow);
        assert_eq!(late, ms(6000));
        assert_eq!(s.reserve(&limits, ms(0), &slow), late + ms(100));
    }

    #[test]
    fn each_429_in_a_row_doubles_the_backoff_and_retry_after_wins() {
        let slow = SlowDown::default();
        let mut s = Schedule::new();
        s.rate_limited(ms(0), None, &slow, 1.0);
        assert_eq!(s.paused_until(ms(0)), Some(ms(1000)));
        s.rate_limited(ms(1000), None, &slow, 1.0);
        assert_eq!(s.paused_until(ms(1000)), Some(ms(3000)));
        s.rate_limited(ms(3000), Some(Duration::from_secs(7)), &slow, 1.0);
        assert_eq!(s.paused_until(ms(3000)), Some(ms(10_000)));
        // A 429 long after recovery starts the backoff over.
        s.rate_limited(ms(60_000), None, &slow, 1.0);
        assert_eq!(s.paused_until(ms(60_000)), Some(ms(61_000)));
    }

    #[test]
    fn processes_with_different_shares_hold_the_strictest_together() {
        // One process at 200/min, one at 160/min, sharing one schedule: the
        // second never lets the window hold more than 160, the first never
        // more than 200.
        let full = RateLimits::new(None, Some(200));
        let share = RateLimits::new(None, Some(160));
        let slow = SlowDown::default();
        let mut s = Schedule::new();
        let mut times = Vec::new();
        for i in 0..400 {
            let limits = if i % 2 == 0 { &full } else { &share };
            times.push(s.reserve(limits, ms(0), &slow));
        }
        assert_windows_hold(&times, full);
    }

    #[test]
    fn old_grants_are_forgotten() {
        let limits = RateLimits::new(Some(5), None);
        let slow = SlowDown::default();
        let mut s = Schedule::new();
        for i in 0..1000 {
            s.reserve(&limits, Duration::from_secs(i), &slow);
        }
        assert!(s.grants().count() <= 64, "{}", s.grants().count());
    }

    #[test]
    fn serialises_and_round_trips() {
        let limits = RateLimits::new(Some(5), Some(200));
        let slow = SlowDown::default();
        let mut s = Schedule::new();
        s.reserve(&limits, ms(5), &slow);
        s.rate_limited(ms(10), None, &slow, 1.1);
        let text = serde_json::to_string(&s).unwrap();
        let back: Schedule = serde_json::from_str(&text).unwrap();
        assert_eq!(back, s);
    }
}
