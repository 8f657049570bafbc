//! Planning: targets and batches, windows sized by density, and what a run
//! costs at each pace preset.
//!
//! The same planner prices a run (`Engine::plan`) and drives it
//! (`Engine::run`): the plan's requests are the run's.

pub(crate) mod job;
pub(crate) mod pricing;
pub(crate) mod split;
pub(crate) mod target;
pub(crate) mod windows;

pub use job::{JobPlan, Refresh};
pub use pricing::{
    compare_strategies, plan, plan_all, recommend, PaceSettings, Plan, Preset, Risk, Strategy,
    StrategyComparison, StrategyEstimate, Workload, EXACT_REQUESTS, HIGH_RISK_PRESSURE,
    MEDIUM_RISK_PRESSURE, NIGHT_AFTER,
};
pub use split::{chunk_ids, split, split_uncovered};
pub use target::{local_day_of, local_day_start_utc, local_days_utc_bounds};
pub use windows::WindowPlanner;
