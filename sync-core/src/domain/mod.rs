//! The domain: records, streams, runs and their reports.

pub(crate) mod record;
pub(crate) mod run;
