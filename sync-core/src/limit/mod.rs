//! Limits, the schedule of requests under them, and the budgets that hold
//! them at run time.

pub(crate) mod budget;
pub(crate) mod limiter;
pub(crate) mod limits;
pub(crate) mod schedule;
pub(crate) mod shared;
