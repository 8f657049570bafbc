//! Windows sized by density: how many days the next window of a paged
//! listing should hold.
//!
//! A window costs one request per page of records it holds, and at least
//! one. Records fall on days at random, so a window planned to fill exactly
//! one page overflows about half the time and then costs two requests for
//! little more than one page; windows planned to fill a whole number of
//! pages, with a margin, waste much less of their last page. The planner
//! picks the window length (whole days, at least one) that costs the fewest
//! requests per day, given the density of records per day and how much the
//! counts vary, filling at most `max_pages` pages so that a window in
//! flight stays small (memory, and what a kill loses).
//!
//! The density comes first from a cheap count over the range (a probe),
//! then from the windows just fetched: a weighted average over the recent
//! windows follows seasons without chasing noise. The spread of the counts
//! around the density (their dispersion, 1 for records scattered at random)
//! is learnt the same way.

/// Plans the lengths of day windows for a listing of `page_size` records a
/// page.
#[derive(Clone, Debug, PartialEq)]
pub struct WindowPlanner {
    page_size: u32,
    max_pages: u32,
    // Weighted sums of the recent observations: records and days.
    records: f64,
    days: f64,
    // Weighted sums for the dispersion: squared deviations over expectation.
    spread: f64,
    spread_weight: f64,
}

/// How much each older observation counts, relative to the next one.
const DECAY: f64 = 0.75;
/// Most days one window may hold when there seem to be no records at all.
pub(crate) const MAX_WINDOW_DAYS: u64 = 366;

impl WindowPlanner {
    /// A planner for pages of `page_size` records, windows of at most
    /// `max_pages` pages, knowing nothing yet (one day at a time until it
    /// learns).
    pub fn new(page_size: u32, max_pages: u32) -> Self {
        Self {
            page_size: page_size.max(1),
            max_pages: max_pages.max(1),
            records: 0.0,
            days: 0.0,
            spread: 0.0,
            spread_weight: 0.0,
        }
    }

    /// Starts from a count: `items` records in `days` days (a probe).
    pub fn with_probe(mut self, items: u64, days: u64) -> Self {
        if days > 0 {
            // Weighs like a couple of windows' worth of observations.
            let weight = 2.0 / days as f64;
            self.records = items as f64 * weight;
            self.days = days as f64 * weight;
        }
        self
    }

    /// Records per day, as estimated now (`None` before anything is known).
    pub fn density(&self) -> Option<f64> {
        (self.days > 0.0).then(|| self.records / self.days)
    }

    /// How much window counts vary around the density (1: as if records
    /// fell on days at random), learnt from the windows seen.
    pub fn dispersion(&self) -> f64 {
        const PRIOR: f64 = 2.0;
        ((self.spread + PRIOR) / (self.spread_weight + PRIOR)).clamp(1.0, 20.0)
    }

    /// Learns from a window that held `records` records in `days` days.
    pub fn observe(&mut self, days: u64, records: u64) {
        if days == 0 {
            return;
        }
        if let Some(density) = self.density() {
            let expected = density * days as f64;
            if expected >= 1.0 {
                let deviation = records as f64 - expected;
                self.spread = self.spread * DECAY + deviation * deviation / expected;
                self.spread_weight = self.spread_weight * DECAY + 1.0;
            }
        }
        self.records = self.records * DECAY + records as f64;
        self.days = self.days * DECAY + days as f64;
    }

    /// Expected requests of a window of `days` days: pages of its records,
    /// at least one.
    pub fn expected_requests(&self, days: u64) -> f64 {
        let Some(density) = self.density() else {
            return 1.0;
        };
        let mean = density * days as f64;
        expected_pages(mean, self.dispersion() * mean, self.page_size)
    }

    /// How many days the next window should hold, out of `available`
    /// consecutive days still to fetch (at least 1, at most `available`).
    pub fn next_len(&self, available: u64) -> u64 {
        if available <= 1 {
            return 1;
        }
        let Some(density) = self.density() else {
            // Nothing known yet: one day, to learn.
            return 1;
        };
        let longest = self.longest(density).min(available);
        // Within a few windows of the end, plan the rest exactly (the last
        // window should not be a sliver); farther away, the best steady
        // length.
        let horizon = longest.saturating_mul(4);
        if available <= horizon {
            return self.best_split(available, longest);
        }
        let mut best = (f64::INFINITY, 1);
        for days in 1..=longest {
            let per_day = self.expected_requests(days) / days as f64;
            if per_day < best.0 - 1e-12 {
                best = (per_day, days);
            }
        }
        best.1
    }

    /// The longest window worth planning: its expected records fill at most
    /// `max_pages` pages (or [`MAX_WINDOW_DAYS`] when there are hardly any).
    fn longest(&self, density: f64) -> u64 {
        let capacity = f64::from(self.max_pages) * f64::from(self.page_size);
        if density <= capacity / MAX_WINDOW_DAYS as f64 {
            return MAX_WINDOW_DAYS;
        }
        ((capacity / density).floor() as u64).clamp(1, MAX_WINDOW_DAYS)
    }

    /// The first window of the cheapest way to cut `days` days into windows
    /// of at most `longest` days.
    fn best_split(&self, days: u64, longest: u64) -> u64 {
        let n = days as usize;
        let cost: Vec<f64> = (0..=longest).map(|d| self.expected_requests(d)).collect();
        // best[i]: fewest expected requests for the last i days.
        let mut best = vec![0.0f64; n + 1];
        let mut first = vec![0u64; n + 1];
        for i in 1..=n {
            let mut b = (f64::INFINITY, 1u64);
            for len in 1..=(longest as usize).min(i) {
                let c = cost[len] + best[i - len];
                if c < b.0 - 1e-12 {
                    b = (c, len as u64);
                }
            }
            best[i] = b.0;
            first[i] = b.1;
        }
        first[n]
    }

    /// Expected requests of cutting `days` consecutive days as this planner
    /// would, with what it knows now (for the plan of a run).
    pub fn expected_requests_for(&self, days: u64) -> (u64, f64) {
        let mut left = days;
        let (mut windows, mut requests) = (0u64, 0.0);
        while left > 0 {
            let len = self.next_len(left);
            windows += 1;
            requests += self.expected_requests(len);
            left -= len;
        }
        (windows, requests)
    }
}

/// Expected pages (at least one) of a count with `mean` and `variance`, at
/// `page_size` a page: `1 + sum over k >= 1 of P(count > k * page_size)`,
/// the count taken as normal (with a continuity correction).
fn expected_pages(mean: f64, variance: f64, page_size: u32) -> f64 {
    if mean <= 0.0 {
        return 1.0;
    }
    let sd = variance.max(mean).sqrt();
    let page = f64::from(page_size);
    let mut pages = 1.0;
    let mut k = 1.0;
    loop {
        let z = (k * page + 0.5 - mean) / sd;
        let over = 1.0 - normal_cdf(z);
        if over < 1e-6 && k * page > mean {
            return pages;
        }
        pages += over;
        k += 1.0;
    }
}

// Abramowitz and Stegun 7.1.26: |error| < 1.5e-7, plenty for planning.
fn normal_cdf(z: f64) -> f64 {
    let x = z / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * x.abs());
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let erf = 1.0 - poly * (-x * x).exp();
    let erf = if x >= 0.0 { erf } else { -erf };
    0.5 * (1.0 + erf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_normal_cdf_is_close() {
        assert!((normal_cdf(0.0) - 0.5).abs() < 1e-7);
        assert!((normal_cdf(1.96) - 0.975).abs() < 1e-4);
        assert!((normal_cdf(-1.96) - 0.025).abs() < 1e-4);
    }

    #[test]
    fn a_window_always_costs_a_request_and_pages_grow_with_records() {
        assert_eq!(expected_pages(0.0, 0.0, 200), 1.0);
        assert!((expected_pages(50.0, 50.0, 200) - 1.0).abs() < 1e-6);
        let two = expected_pages(300.0, 300.0, 200);
        assert!((two - 2.0).abs() < 1e-3, "{two}");
        // Right at one page, about half the windows overflow.
        let edge = expected_pages(200.0, 200.0, 200);
        assert!((1.4..1.6).contains(&edge), "{edge}");
    }

    #[test]
    fn twenty_thousand_records_in_two_years_cost_little_more_than_their_pages() {
        // The figure the issue sets: 20,000 records over 730 days, 200 a page:
        // at most 1.1 x (100 + 3) requests, probe and login included.
        let p = WindowPlanner::new(200, 5).with_probe(20_000, 730);
        let (windows, requests) = p.expected_requests_for(730);
        assert!(
            requests <= 110.0,
            "{requests} requests in {windows} windows"
        );
        assert!(windows >= 20, "{windows} windows: checkpoints too coarse");
    }

    #[test]
    fn lengths_follow_the_density() {
        let sparse = WindowPlanner::new(200, 5).with_probe(10, 1000);
        assert_eq!(sparse.next_len(10_000), MAX_WINDOW_DAYS);
        assert_eq!(sparse.next_len(30), 30);
        let dense = WindowPlanner::new(200, 5).with_probe(50_000, 10);
        assert_eq!(dense.next_len(100), 1, "never below one day");
        let unknown = WindowPlanner::new(200, 5);
        assert_eq!(unknown.next_len(100), 1);
        assert_eq!(unknown.next_len(0), 1);
    }

    #[test]
    fn observations_move_the_density() {
        let mut p = WindowPlanner::new(200, 5).with_probe(1000, 100);
        assert!((p.density().unwrap() - 10.0).abs() < 1e-9);
        for _ in 0..20 {
            p.observe(10, 300);
        }
        assert!((p.density().unwrap() - 30.0).abs() < 0.5);
        // Counts that swing widely raise the dispersion.
        let mut q = WindowPlanner::new(200, 5).with_probe(1000, 100);
        for i in 0..20 {
            q.observe(10, if i % 2 == 0 { 0 } else { 200 });
        }
        assert!(q.dispersion() > 5.0, "{}", q.dispersion());
    }

    #[test]
    fn the_end_of_a_range_is_not_left_as_a_sliver() {
        let p = WindowPlanner::new(200, 5).with_probe(20_000, 730);
        let steady = p.next_len(10_000);
        let near_end = steady + 2;
        let first = p.next_len(near_end);
        let (_, cost) = p.expected_requests_for(near_end);
        let naive = p.expected_requests(steady) + p.expected_requests(2);
        assert!(cost <= naive + 1e-9, "{first}: {cost} > {naive}");
    }
}
