//! The request budget every request to a source draws from.

use std::fmt::Debug;
use std::time::Duration;

use async_trait::async_trait;

use crate::error::Result;
use crate::limit::limits::RateLimits;
use crate::limit::schedule::Schedule;

/// Where the permission to send one request comes from: the limits of one
/// server (an API host, an egress address), shared by every task, process
/// or machine that uses it.
///
/// [`RateLimiter`](crate::RateLimiter) keeps a budget in memory, for one
/// process; stores keep budgets that processes share. The engine calls
/// [`Budget::acquire`] right before each request (through
/// [`FetchContext::request`](crate::FetchContext::request)) and
/// [`Budget::rate_limited`] for each 429.
#[async_trait]
pub trait Budget: Send + Sync + Debug {
    /// Waits until one more request may be sent now without breaking any
    /// window, and records it as sent. Dropping the future while it waits
    /// leaves its slot unused, which never breaks a window.
    ///
    /// Fails when the budget cannot be read (a store that is down): a
    /// request must not go out unbudgeted.
    async fn acquire(&self) -> Result<()>;

    /// The server answered 429: everyone sharing the budget pauses
    /// (`retry_after` when the server gave one, else a backoff) and then
    /// slows down for a while.
    async fn rate_limited(&self, retry_after: Option<Duration>) -> Result<()>;

    /// The limits this budget holds (the documented ones scaled to the
    /// share in use).
    fn limits(&self) -> RateLimits;

    /// What the budget is for, for people (e.g. `yclients:api.yclients.com`).
    fn name(&self) -> String;
}

/// Where request budgets are kept, so that every process using the store
/// shares them (see [`SharedBudget`](crate::SharedBudget), which holds the
/// logic; stores only keep the state).
#[async_trait]
pub trait BudgetStore: Send + Sync + Debug {
    /// Runs `update` on the schedule kept under `key`, atomically for every
    /// process that shares the store (read under a lock, changed, written
    /// back, committed: no two updates of a key interleave). `update` gets
    /// the schedule (empty for a key never seen) and the store's clock as
    /// time since the Unix epoch; the clock is returned too. Every process
    /// of a store must read the same clock (the database server's, or the
    /// machine's for a local file).
    async fn update_schedule(
        &self,
        key: &str,
        update: &mut (dyn for<'s> FnMut(&'s mut Schedule, std::time::Duration) + Send),
    ) -> Result<std::time::Duration>;

    /// The schedule kept under `key` and the store's clock, to show a
    /// budget's use; `None` for a key never used.
    async fn schedule(&self, key: &str) -> Result<Option<(Schedule, std::time::Duration)>>;
}
