//! A request budget kept in a store, shared by every process, restart and
//! machine that uses the store: [`SharedBudget`].

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::error::{Result, SyncError};
use crate::limit::budget::{Budget, BudgetStore};
use crate::limit::limits::RateLimits;
use crate::limit::schedule::{Schedule, SlowDown};

/// A slot that comes due later than this after its time is not used: the
/// windows are held 2% longer than the server's (20 ms on one second), and
/// a request sent later than its slot could meet another process's slots.
const LATE: Duration = Duration::from_millis(10);
/// Tries of an unreadable budget before the run is stopped.
const STORE_TRIES: u32 = 3;
/// Requests under a per-second limit of N go at least `SPREAD / N` seconds
/// apart: any N + 1 in a row then span 5% more than the server's second
/// (the windows' own guard is 2%).
///
/// Processes sharing a budget send from different runtimes: a request one
/// process sends late after its slot (a busy machine, a batch committing,
/// the network) meets the on-time slots of another. Measured against the
/// simulator with four `sync-cli` processes on a loaded two-core machine,
/// such delays reached tens of milliseconds and bursts of slots at one
/// instant made them worse (the requests of a burst queue behind each
/// other). Spread slots send one request at a time and leave 50 ms of
/// slack per second, at the cost of 3% of the per-second rate (4.76 of 5
/// a second instead of 4.9); the per-minute window keeps its 2% (1.2 s).
const SPREAD: f64 = 1.05;

/// Slots reserved for this process: store-clock times, with the local
/// instant at which the store's clock read `store_now`.
#[derive(Debug, Default)]
struct Reserved {
    slots: VecDeque<Duration>,
    store_now: Duration,
    local_then: Option<Instant>,
    /// How long the store took, the last time, from reading its clock to
    /// handing the slots over (the write and the commit): slots are asked
    /// for no earlier than that after the store's `now`, or a budget nobody
    /// else uses would get slots already late on arrival, skip them and
    /// ask again, without end, whenever a commit takes longer than `LATE`.
    lead: Duration,
}

impl Reserved {
    fn local(&self, slot: Duration) -> Instant {
        let then = self.local_then.unwrap_or_else(Instant::now);
        if slot >= self.store_now {
            then + (slot - self.store_now)
        } else {
            then.checked_sub(self.store_now - slot).unwrap_or(then)
        }
    }
}

/// A [`Budget`] whose schedule lives in a store ([`BudgetStore`]), keyed by
/// what the server limits: restarts, parallel processes and machines that
/// share the store together never exceed the windows.
///
/// Slots are reserved in small blocks (as many as requests wait, up to
/// `block`), so the store is not asked once per request; a slot that comes
/// due while nobody needs it, or too late, is left unused. The times are
/// the store's clock (the database server's for Postgres), so machines with
/// different clocks agree. A budget that cannot be read stops the run with
/// a message saying so: a request never goes out unbudgeted.
pub struct SharedBudget {
    store: Arc<dyn BudgetStore>,
    key: String,
    limits: RateLimits,
    slow: SlowDown,
    block: usize,
    reserved: Mutex<Reserved>,
    waiting: AtomicUsize,
}

impl fmt::Debug for SharedBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedBudget")
            .field("key", &self.key)
            .field("limits", &self.limits)
            .field("block", &self.block)
            .finish_non_exhaustive()
    }
}

impl SharedBudget {
    /// The budget `key` of `store`, held at `limits` (the documented ones
    /// scaled to the share this process may use; others sharing the key may
    /// use other shares, and each stops where its own share of the common
    /// windows is full).
    pub fn new(store: Arc<dyn BudgetStore>, key: impl Into<String>, limits: RateLimits) -> Self {
        let block = limits.per_second.map_or(4, |n| n.clamp(1, 8) as usize);
        let limits = spread(limits);
        Self {
            store,
            key: key.into(),
            limits,
            slow: SlowDown::default(),
            block,
            reserved: Mutex::new(Reserved::default()),
            waiting: AtomicUsize::new(0),
        }
    }

    /// Reserves at most this many slots at a time (default: the per-second
    /// limit, at most 8).
    pub fn with_block(mut self, block: usize) -> Self {
        self.block = block.max(1);
        self
    }

    /// The key.
    pub fn key(&self) -> &str {
        &self.key
    }

    async fn update(
        &self,
        update: &mut (dyn for<'s> FnMut(&'s mut Schedule, Duration) + Send),
    ) -> Result<Duration> {
        let mut tries = 0;
        loop {
            tries += 1;
            match self.store.update_schedule(&self.key, update).await {
                Ok(now) => return Ok(now),
                Err(e) if e.is_retryable() && tries < STORE_TRIES => {
                    tracing::warn!(budget = %self.key, error = %e, "the request budget could not be read; trying again");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Err(e) => {
                    return Err(SyncError::Fatal {
                        message: format!(
                            "cannot read the request budget {:?} in the store: {e}; no request is sent without it",
                            self.key
                        ),
                        source: Some(Box::new(e)),
                    })
                }
            }
        }
    }

    /// Reserves a block of slots for the requests waiting now.
    async fn reserve(&self, reserved: &mut Reserved) -> Result<()> {
        let n = self.waiting.load(Ordering::Relaxed).clamp(1, self.block);
        let (limits, slow) = (self.limits, self.slow);
        let lead = reserved.lead;
        let mut slots = Vec::with_capacity(n);
        // The local instant at which the store's clock read `now`: taken as
        // soon as the store hands the clock over, not around the whole
        // update. Waiting for the budget's lock (another process holds it,
        // or a SQLite writer commits a batch) and the commit can take far
        // longer than a window's guard; an instant taken around them would
        // put every slot of the block that much early or late, and two
        // processes' slots that much closer together than the schedule.
        let mut read_at = None;
        let store_now = self
            .update(&mut |schedule: &mut Schedule, now: Duration| {
                read_at = Some(Instant::now());
                slots.clear();
                for _ in 0..n {
                    slots.push(schedule.reserve(&limits, now + lead, &slow));
                }
            })
            .await?;
        let read_at = read_at.unwrap_or_else(Instant::now);
        // The next block is asked for the time this hand-over took (at
        // most a second) when it took long enough to matter: a slot handed
        // over well within `LATE` is used as it is, without a sleep on a
        // timer (a millisecond's granularity) for the hand-over's time.
        let handover = Instant::now().saturating_duration_since(read_at);
        reserved.lead = if handover > LATE / 2 {
            handover.min(Duration::from_secs(1))
        } else {
            Duration::ZERO
        };
        reserved.store_now = store_now;
        reserved.local_then = Some(read_at);
        reserved.slots.extend(slots);
        Ok(())
    }
}

/// `limits` with the per-second requests spread (see [`SPREAD`]).
fn spread(limits: RateLimits) -> RateLimits {
    match limits.per_second {
        Some(n) if n > 0 => {
            let spacing = Duration::from_secs_f64(SPREAD / f64::from(n));
            limits.with_min_spacing(spacing.max(limits.min_spacing.unwrap_or_default()))
        }
        _ => limits,
    }
}

#[async_trait]
impl Budget for SharedBudget {
    async fn acquire(&self) -> Result<()> {
        self.waiting.fetch_add(1, Ordering::Relaxed);
        let result = async {
            loop {
                let mut reserved = self.reserved.lock().await;
                let Some(slot) = reserved.slots.pop_front() else {
                    self.reserve(&mut reserved).await?;
                    continue;
                };
                let at = reserved.local(slot);
                if Instant::now() > at + LATE {
                    // Too late to use safely: another process's slots may
                    // follow it closely.
                    continue;
                }
                // The lock is held until the slot: the next waiter takes
                // its slot only then, so a process holds at most a block
                // of slots ahead, however many requests wait. (With every
                // waiter taking a slot at once, a process with many
                // requests waiting reserved block after block, seconds of
                // the shared budget that a killed process took with it.)
                tokio::time::sleep_until(at).await;
                // The wake-up itself can be late (a busy machine, a timer's
                // granularity): a slot is used only on time, whenever the
                // lateness comes.
                if Instant::now() <= at + LATE {
                    drop(reserved);
                    return Ok(());
                }
                tracing::debug!(budget = %self.key, late = ?Instant::now() - at, "woke too late for the slot; taking another");
            }
        }
        .await;
        self.waiting.fetch_sub(1, Ordering::Relaxed);
        result
    }

    async fn rate_limited(&self, retry_after: Option<Duration>) -> Result<()> {
        let slow = self.slow;
        let jitter = 0.75 + rand::random::<f64>() * 0.5;
        self.update(&mut |schedule: &mut Schedule, now: Duration| {
            schedule.rate_limited(now, retry_after, &slow, jitter);
        })
        .await?;
        // Slots reserved before the 429 would ignore its pause.
        self.reserved.lock().await.slots.clear();
        Ok(())
    }

    fn limits(&self) -> RateLimits {
        self.limits
    }

    fn name(&self) -> String {
        self.key.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::MemoryStore;

    fn arrivals_hold(times: &[Instant], limits: RateLimits) {
        let mut times = times.to_vec();
        times.sort();
        for (len, max) in limits.windows() {
            for (i, &t) in times.iter().enumerate() {
                let inside = times[i..].iter().take_while(|&&u| u < t + len).count();
                assert!(
                    inside <= max as usize,
                    "{inside} in a {len:?} window (max {max})"
                );
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn four_processes_and_restarts_never_exceed_the_windows_together() {
        let limits = RateLimits::new(Some(5), Some(200));
        let store = Arc::new(MemoryStore::new());
        let times = Arc::new(std::sync::Mutex::new(Vec::new()));
        let start = Instant::now();
        let mut tasks = Vec::new();
        for process in 0..4 {
            let (store, times) = (store.clone(), times.clone());
            tasks.push(tokio::spawn(async move {
                // Each "process" restarts (a new budget value) every 25
                // requests: the store remembers what its predecessor spent.
                for _life in 0..4 {
                    let budget = SharedBudget::new(store.clone(), "api", limits);
                    for _ in 0..25 {
                        budget.acquire().await.unwrap();
                        times.lock().unwrap().push(Instant::now());
                    }
                }
                process
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let times = times.lock().unwrap().clone();
        assert_eq!(times.len(), 400);
        arrivals_hold(&times, limits);
        // 400 requests: 200 in the first minute window (40 s at 5/s), 200
        // more after 61.2 s: the last near 61.2 + 39.8 s. Slots left unused
        // by a restart cost a little.
        let elapsed = times.iter().max().unwrap().duration_since(start);
        assert!(elapsed <= Duration::from_secs(110), "{elapsed:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_pauses_every_process() {
        let limits = RateLimits::new(Some(10), None);
        let store = Arc::new(MemoryStore::new());
        let a = SharedBudget::new(store.clone(), "api", limits);
        let b = SharedBudget::new(store.clone(), "api", limits);
        a.acquire().await.unwrap();
        a.rate_limited(Some(Duration::from_secs(5))).await.unwrap();
        let t = Instant::now();
        b.acquire().await.unwrap();
        assert!(Instant::now() - t >= Duration::from_secs(5));
        // Another key is not paused.
        let c = SharedBudget::new(store, "other", limits);
        let t = Instant::now();
        c.acquire().await.unwrap();
        assert_eq!(Instant::now(), t);
    }

    /// A budget store (one process's view of a schedule shared by several)
    /// that makes its caller wait for the lock before it reads its clock
    /// (the tokio clock since `origin`), and for the commit after.
    #[derive(Debug)]
    struct Slow {
        origin: Instant,
        schedule: Arc<std::sync::Mutex<Schedule>>,
        lock_wait: Duration,
        commit: Duration,
    }

    #[async_trait]
    impl BudgetStore for Slow {
        async fn update_schedule(
            &self,
            _: &str,
            update: &mut (dyn for<'s> FnMut(&'s mut Schedule, Duration) + Send),
        ) -> Result<Duration> {
            tokio::time::sleep(self.lock_wait).await;
            let now = Instant::now() - self.origin;
            update(&mut self.schedule.lock().unwrap(), now);
            tokio::time::sleep(self.commit).await;
            Ok(now)
        }
        async fn schedule(&self, _: &str) -> Result<Option<(Schedule, Duration)>> {
            Ok(None)
        }
    }

    #[tokio::test(start_paused = true)]
    async fn slots_keep_to_the_store_clock_however_long_the_lock_takes() {
        // One process waits 300 ms for the budget's lock and 40 ms for its
        // commit, the other not at all: both send on the store's schedule.
        let limits = RateLimits::new(Some(5), Some(200));
        let origin = Instant::now();
        let times = Arc::new(std::sync::Mutex::new(Vec::new()));
        let schedule = Arc::new(std::sync::Mutex::new(Schedule::new()));
        let mut tasks = Vec::new();
        for (lock_wait, commit) in [(300, 40), (0, 0)] {
            let store = Arc::new(Slow {
                origin,
                schedule: schedule.clone(),
                lock_wait: Duration::from_millis(lock_wait),
                commit: Duration::from_millis(commit),
            });
            let times = times.clone();
            tasks.push(tokio::spawn(async move {
                let budget = SharedBudget::new(store, "api", limits);
                for _ in 0..30 {
                    budget.acquire().await.unwrap();
                    times.lock().unwrap().push(Instant::now());
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let times = times.lock().unwrap().clone();
        assert_eq!(times.len(), 60);
        arrivals_hold(&times, limits);
    }

    #[derive(Debug)]
    struct Down;

    #[async_trait]
    impl BudgetStore for Down {
        async fn update_schedule(
            &self,
            _: &str,
            _: &mut (dyn for<'s> FnMut(&'s mut Schedule, Duration) + Send),
        ) -> Result<Duration> {
            Err(SyncError::retryable("connection refused"))
        }
        async fn schedule(&self, _: &str) -> Result<Option<(Schedule, Duration)>> {
            Ok(None)
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_unreadable_budget_stops_the_run_with_a_clear_message() {
        let budget = SharedBudget::new(Arc::new(Down), "api", RateLimits::new(Some(5), None));
        let e = budget.acquire().await.unwrap_err();
        assert!(matches!(e, SyncError::Fatal { .. }), "{e:?}");
        assert!(e.to_string().contains("request budget \"api\""), "{e}");
    }
}
