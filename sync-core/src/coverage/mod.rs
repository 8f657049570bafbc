//! What is covered: sets of days and keys, coverage of a target, gaps.

pub(crate) mod checkpoint;
pub(crate) mod interval;
