//! Runs and their reports: what every run did, kept in the run history.

use std::fmt;
use std::ops::AddAssign;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::record::StreamId;

/// Identifies one run. Made by the engine before the run starts, so that log
/// lines can carry it from the first one.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RunId(pub String);

impl RunId {
    /// A new id: the UTC start time and a random suffix, e.g.
    /// `20261125T023000Z-3f9a1c`. Sorts by start time.
    pub fn generate(now: DateTime<Utc>) -> Self {
        let suffix: u32 = rand::random::<u32>() & 0x00ff_ffff;
        Self(format!("{}-{suffix:06x}", now.format("%Y%m%dT%H%M%S%.3fZ")))
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a run is, or how it ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Running (or killed before it could say otherwise).
    InProgress,
    /// Every batch was stored.
    Completed,
    /// Some batches failed; the others were stored.
    Partial,
    /// The run stopped on an error.
    Failed,
    /// The run was cancelled; finished batches were kept.
    Cancelled,
}

impl RunStatus {
    /// The snake_case name used in stores and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InProgress => "in_progress",
            Self::Completed => "completed",
            Self::Partial => "partial",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    /// Parses [`RunStatus::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "in_progress" => Self::InProgress,
            "completed" => Self::Completed,
            "partial" => Self::Partial,
            "failed" => Self::Failed,
            "cancelled" => Self::Cancelled,
            _ => return None,
        })
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Full import of the target, or only what changed since the last run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncMode {
    /// Fetch every uncovered unit of the target.
    #[default]
    Full,
    /// Fetch only what changed since the last successful run.
    Delta,
}

impl SyncMode {
    /// The snake_case name used in stores and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Full => "full",
            Self::Delta => "delta",
        }
    }

    /// Parses [`SyncMode::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "full" => Self::Full,
            "delta" => Self::Delta,
            _ => return None,
        })
    }
}

/// Record counts of a commit or a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordCounts {
    /// Records stored for the first time.
    pub created: u64,
    /// Records whose content changed.
    pub updated: u64,
    /// Records fetched again with the same content (not rewritten).
    pub unchanged: u64,
    /// Records newly marked deleted.
    pub deleted: u64,
}

impl RecordCounts {
    /// All records seen.
    pub fn total(&self) -> u64 {
        self.created + self.updated + self.unchanged + self.deleted
    }
}

impl AddAssign for RecordCounts {
    fn add_assign(&mut self, o: Self) {
        self.created += o.created;
        self.updated += o.updated;
        self.unchanged += o.unchanged;
        self.deleted += o.deleted;
    }
}

/// Everything a run did, as kept in the run history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    /// The run.
    pub id: RunId,
    /// The stream it synced.
    pub stream: StreamId,
    /// Full or delta.
    pub mode: SyncMode,
    /// What it was asked to cover, for people (e.g. `days 2024-09-01..=2024-12-31`).
    pub target: String,
    /// Start time.
    pub started_at: DateTime<Utc>,
    /// End time, once ended.
    pub finished_at: Option<DateTime<Utc>>,
    /// Status.
    pub status: RunStatus,
    /// Record counts.
    pub counts: RecordCounts,
    /// Batches stored.
    pub batches_done: u64,
    /// Batches that failed (their units stay uncovered).
    pub batches_failed: u64,
    /// Requests made to the source.
    pub requests: u64,
    /// HTTP 429 answers seen.
    pub rate_limited: u64,
    /// Retries made (requests or batches tried again).
    pub retries: u64,
    /// Error messages, one per failed batch or fatal error (no secrets).
    pub errors: Vec<String>,
    /// Nothing was written (fetch and count only).
    pub dry_run: bool,
    /// The worker that ran it, when it was one of several sharing a queue
    /// (see `Engine::run_worker`); such runs take no lease on the stream.
    #[serde(default)]
    pub worker: Option<String>,
}

impl RunReport {
    /// A report for a run that starts now.
    pub fn start(
        id: RunId,
        stream: StreamId,
        mode: SyncMode,
        target: impl Into<String>,
        started_at: DateTime<Utc>,
    ) -> Self {
        Self {
            id,
            stream,
            mode,
            target: target.into(),
            started_at,
            finished_at: None,
            status: RunStatus::InProgress,
            counts: RecordCounts::default(),
            batches_done: 0,
            batches_failed: 0,
            requests: 0,
            rate_limited: 0,
            retries: 0,
            errors: Vec::new(),
            dry_run: false,
            worker: None,
        }
    }

    /// How long the run took (so far).
    pub fn duration(&self) -> chrono::Duration {
        self.finished_at.unwrap_or_else(Utc::now) - self.started_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_match_serde() {
        for mode in [SyncMode::Full, SyncMode::Delta] {
            assert_eq!(SyncMode::parse(mode.as_str()), Some(mode));
            let json = serde_json::to_string(&mode).unwrap();
            assert_eq!(json, format!("\"{}\"", mode.as_str()));
        }
        for status in [
            RunStatus::InProgress,
            RunStatus::Completed,
            RunStatus::Partial,
            RunStatus::Failed,
            RunStatus::Cancelled,
        ] {
            assert_eq!(RunStatus::parse(status.as_str()), Some(status));
            let json = serde_json::to_string(&status).unwrap();
            assert_eq!(json, format!("\"{}\"", status.as_str()));
        }
        assert_eq!(SyncMode::parse("Full"), None);
        assert_eq!(SyncMode::parse(""), None);
    }
}
