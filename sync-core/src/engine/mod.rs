//! The engine: a run, its options and its progress events.

pub(crate) mod options;
pub(crate) mod pipeline;
pub(crate) mod progress;
pub(crate) mod runner;
