//! What the engine reports while it runs.

use std::time::Duration;

use crate::domain::record::StreamId;
use crate::domain::run::{RecordCounts, RunId, RunReport};

/// What the engine reports while it runs.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum ProgressEvent {
    /// The run started.
    RunStarted {
        /// The run.
        run: RunId,
        /// The stream.
        stream: StreamId,
        /// Batches the run expects to store.
        batches: u64,
        /// Units in the target (saturating).
        units_total: u64,
        /// Units of the target already covered before the run (saturating).
        units_covered: u64,
        /// Requests the run expects to make.
        requests_expected: u64,
    },
    /// A batch started.
    BatchStarted {
        /// Its index.
        index: usize,
        /// What it covers, for people.
        span: String,
    },
    /// A batch was stored (or counted, in a dry run).
    BatchFinished {
        /// Its index.
        index: usize,
        /// What it covers, for people.
        span: String,
        /// Its record counts.
        counts: RecordCounts,
        /// Units of the target covered now (saturating).
        units_covered: u64,
        /// Units in the target (saturating).
        units_total: u64,
        /// Batches stored so far in this run.
        batches_done: u64,
        /// Batches expected in all (grows when windows are cut again).
        batches_expected: u64,
        /// Requests made so far.
        requests: u64,
        /// Requests per second so far.
        request_rate: f64,
        /// Estimated time until the run ends.
        eta: Option<Duration>,
    },
    /// A batch failed; its units stay uncovered.
    BatchFailed {
        /// Its index.
        index: usize,
        /// What it covers, for people.
        span: String,
        /// The error, without secrets.
        error: String,
    },
    /// Something has been waited for longer than a few seconds.
    Waiting {
        /// What, for people.
        what: String,
        /// For how long so far.
        waited: Duration,
    },
    /// The run ended.
    RunFinished {
        /// Its final report.
        report: RunReport,
    },
}

/// The ETA of a run from its requests: what is left at the pace so far.
pub(crate) fn eta(requests_done: u64, requests_left: f64, elapsed: Duration) -> Option<Duration> {
    if requests_done == 0 {
        return None;
    }
    let per_request = elapsed.as_secs_f64() / requests_done as f64;
    Duration::try_from_secs_f64((requests_left.max(0.0)) * per_request).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eta_is_the_pace_so_far_times_what_is_left() {
        assert_eq!(eta(0, 10.0, Duration::from_secs(3)), None);
        assert_eq!(
            eta(10, 30.0, Duration::from_secs(5)),
            Some(Duration::from_secs(15))
        );
        assert_eq!(eta(10, -3.0, Duration::from_secs(5)), Some(Duration::ZERO));
    }
}
