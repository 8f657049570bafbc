//! What the server saw, by arrival time: the highest number of requests in
//! any sliding 1-second and 60-second window per budget key, and the arrival
//! times of every request (for combined rates over a run).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Duration;

use tokio::time::Instant;

use super::{Arrival, WindowPeaks};

const SECOND: Duration = Duration::from_secs(1);
const MINUTE: Duration = Duration::from_secs(60);

/// Arrival times inside the last second and the last minute.
#[derive(Debug, Default)]
struct Sliding {
    second: VecDeque<Instant>,
    minute: VecDeque<Instant>,
}

impl Sliding {
    /// Adds `now` and returns how many requests the windows ending at `now`
    /// hold (`now` included). A request `len` or more before `now` is out,
    /// as in the limit windows.
    fn push(&mut self, now: Instant) -> (u64, u64) {
        for (q, len) in [(&mut self.second, SECOND), (&mut self.minute, MINUTE)] {
            while q.front().is_some_and(|&t| now.duration_since(t) >= len) {
                q.pop_front();
            }
            q.push_back(now);
        }
        (self.second.len() as u64, self.minute.len() as u64)
    }
}

#[derive(Debug, Default)]
struct KeyWindows {
    arrived: Sliding,
    counted: Sliding,
}

/// Peaks and arrivals since the start or the last reset.
#[derive(Debug)]
pub(crate) struct Accounting {
    epoch: Instant,
    arrivals: Vec<Arrival>,
    windows: HashMap<String, KeyWindows>,
}

impl Accounting {
    pub(crate) fn new() -> Self {
        Self {
            epoch: Instant::now(),
            arrivals: Vec::new(),
            windows: HashMap::new(),
        }
    }

    /// Forgets everything; arrival times count from now on.
    pub(crate) fn reset(&mut self) {
        *self = Self::new();
    }

    /// A request arrived at `now` under budget `key`; `counted` says whether
    /// the limit windows counted it (false: answered 429 for a full window).
    pub(crate) fn arrive(
        &mut self,
        peaks: &mut BTreeMap<String, WindowPeaks>,
        key: &str,
        now: Instant,
        counted: bool,
    ) {
        let w = self.windows.entry(key.to_string()).or_default();
        let (second, minute) = w.arrived.push(now);
        let peak = peaks.entry(key.to_string()).or_default();
        peak.per_second = peak.per_second.max(second);
        peak.per_minute = peak.per_minute.max(minute);
        if counted {
            let (second, minute) = w.counted.push(now);
            peak.counted_per_second = peak.counted_per_second.max(second);
            peak.counted_per_minute = peak.counted_per_minute.max(minute);
        }
        self.arrivals.push(Arrival {
            at: now.saturating_duration_since(self.epoch),
            over_limit: !counted,
        });
    }

    pub(crate) fn arrivals(&self) -> Vec<Arrival> {
        self.arrivals.clone()
    }

    /// Requests per whole second since the epoch (index 0 is the first
    /// second); empty before the first request.
    pub(crate) fn per_second(&self) -> Vec<u64> {
        let mut out: Vec<u64> = Vec::new();
        for a in &self.arrivals {
            let i = a.at.as_secs() as usize;
            if out.len() <= i {
                out.resize(i + 1, 0);
            }
            out[i] += 1;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peaks_follow_sliding_windows() {
        let mut a = Accounting::new();
        let mut peaks = BTreeMap::new();
        let t0 = a.epoch;
        let ms = Duration::from_millis;
        // Whole seconds would hold 3 and 2; the window (200, 1200] ms
        // holds 4 of them.
        for (at, counted) in [
            (0, true),
            (600, true),
            (900, false),
            (1100, true),
            (1200, true),
        ] {
            a.arrive(&mut peaks, "k", t0 + ms(at), counted);
        }
        a.arrive(&mut peaks, "other", t0 + ms(1300), true);
        let p = peaks["k"];
        assert_eq!(p.per_second, 4);
        assert_eq!(p.counted_per_second, 3);
        assert_eq!(p.per_minute, 5);
        assert_eq!(p.counted_per_minute, 4);
        assert_eq!(peaks["other"].per_second, 1, "keys are apart");
        assert_eq!(a.per_second(), vec![3, 3]);
        assert_eq!(a.arrivals().iter().filter(|x| x.over_limit).count(), 1);
        // Exactly one second apart: the older one is out.
        let mut b = Accounting::new();
        let mut peaks = BTreeMap::new();
        b.arrive(&mut peaks, "k", b.epoch, true);
        b.arrive(&mut peaks, "k", b.epoch + SECOND, true);
        assert_eq!(peaks["k"].per_second, 1);
        assert_eq!(peaks["k"].per_minute, 2);
    }
}
