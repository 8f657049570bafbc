//! The lease on a stream: at most one live run per stream.
//!
//! A run holds a session-level advisory lock on a connection of its own
//! (outside the pool) until it finishes. Postgres drops the lock when that
//! session ends, also when the process holding it dies (SIGKILL, a lost
//! machine), so a dead run never blocks the next one.

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Connection};
use sync_core::StreamId;
use sync_store_sql::stream_key;

use crate::error::Error;

/// First key of our advisory locks ("sync"), so that they do not collide
/// with other users of advisory locks in the same database.
const LEASE_SPACE: i32 = 0x7379_6e63;

/// A lease held: the session holding the stream's advisory lock.
pub(crate) struct Session {
    key: String,
    conn: PgConnection,
}

/// Opens a session and takes the stream's advisory lock on it without
/// waiting; `None` when another session holds it.
pub(crate) async fn try_lock(
    options: &PgConnectOptions,
    stream: &StreamId,
) -> Result<Option<Session>, Error> {
    let failed = |doing| move |source| Error::Lease { doing, source };
    let mut conn = options
        .connect()
        .await
        .map_err(failed("opening the lease connection"))?;
    let key = stream_key(stream);
    let taken: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1, hashtext($2))")
        .bind(LEASE_SPACE)
        .bind(&key)
        .fetch_one(&mut conn)
        .await
        .map_err(failed("taking the stream's lease"))?;
    if taken {
        Ok(Some(Session { key, conn }))
    } else {
        // Best effort: the session ends either way.
        let _ = conn.close().await;
        Ok(None)
    }
}

/// Ends the lease session, releasing the lock.
pub(crate) async fn release(run: &str, session: Session) {
    let Session { key, mut conn } = session;
    // Unlock before closing: the server drops a closed session's locks only
    // when its backend has exited, a moment later, and a run started right
    // after this one would find the lease taken.
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
