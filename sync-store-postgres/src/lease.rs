//! The lease on a stream: at most one live run per stream.
//!
//! A run holds a session-level advisory lock on a connection of its own
//! (outside the pool) until it finishes. Postgres drops the lock when that
//! session ends, also when the process holding it dies (SIGKILL, a lost
//! machine), so a dead run never blocks the next one.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, MutexGuard};

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Connection};
use sync_core::StreamId;

use crate::error::{Doing, Error};

/// First key of our advisory locks ("sync"), so that they do not collide
/// with other users of advisory locks in the same database.
const LEASE_SPACE: i32 = 0x7379_6e63;

/// `source/stream`, the name of a stream in lock keys and messages.
pub(crate) fn stream_key(stream: &StreamId) -> String {
    format!("{}/{}", stream.source, stream.stream)
}

/// Opens a session and takes the stream's advisory lock on it without
/// waiting; `None` when another session holds it.
pub(crate) async fn try_lock(
    options: &PgConnectOptions,
    stream: &StreamId,
) -> Result<Option<PgConnection>, Error> {
    let mut conn = options
        .connect()
        .await
        .doing("opening the lease connection")?;
    let taken: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1, hashtext($2))")
        .bind(LEASE_SPACE)
        .bind(stream_key(stream))
        .fetch_one(&mut conn)
        .await
        .doing("taking the stream's lease")?;
    if taken {
        Ok(Some(conn))
    } else {
        // Best effort: the session ends either way.
        let _ = conn.close().await;
        Ok(None)
    }
}

/// The lease sessions this store instance holds, by run id.
#[derive(Default)]
pub(crate) struct Leases {
    held: Mutex<HashMap<String, (String, PgConnection)>>,
}

impl fmt::Debug for Leases {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let runs: Vec<String> = self.lock().keys().cloned().collect();
        f.debug_struct("Leases").field("runs", &runs).finish()
    }
}

impl Leases {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, (String, PgConnection)>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether `run` already holds the lease of `stream`.
    pub(crate) fn holds(&self, run: &str, stream: &StreamId) -> bool {
        self.lock()
            .get(run)
            .is_some_and(|(key, _)| *key == stream_key(stream))
    }

    /// Keeps the lease session of `run`.
    pub(crate) fn keep(&self, run: &str, stream: &StreamId, conn: PgConnection) {
        self.lock()
            .insert(run.to_owned(), (stream_key(stream), conn));
    }

    /// Ends the lease session of `run`, if any, releasing the lock.
    pub(crate) async fn release(&self, run: &str) {
        let held = self.lock().remove(run);
        if let Some((key, mut conn)) = held {
            // Unlock before closing: the server drops a closed session's
            // locks only when its backend has exited, a moment later, and a
            // run started right after this one would find the lease taken.
            let unlocked = sqlx::query("SELECT pg_advisory_unlock($1, hashtext($2))")
                .bind(LEASE_SPACE)
                .bind(&key)
                .execute(&mut conn)
                .await;
            if let Err(e) = unlocked {
                tracing::debug!(run, error = %e, "unlocking the lease failed; closing the session");
            }
            if let Err(e) = conn.close().await {
                // The session is gone either way, and its lock with it.
                tracing::debug!(run, error = %e, "closing the lease connection failed");
            }
        }
    }
}
