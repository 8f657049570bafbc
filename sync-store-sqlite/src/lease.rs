//! The lease on a stream: at most one live run per stream.
//!
//! For a database file the lease is an OS file lock (`flock`) on a small
//! file next to it, one per stream. The operating system drops the lock when
//! the holding process ends, even by SIGKILL, so a dead run never blocks the
//! next one. An in-memory database lives in one process: the store's own
//! bookkeeping of its runs is enough there.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

use serde_json::Value;
use sync_core::{ContentHash, StreamId};
use sync_store_sql::stream_key;

use crate::error::Error;

/// A lease held: the locked file (none in memory). Dropping it releases
/// the lock.
#[derive(Debug)]
pub(crate) struct FileLease {
    _file: Option<File>,
}

/// The lock file of `stream` next to the database at `db`:
/// `<db>.<16 hex digits of the stream's hash>.lease`.
pub(crate) fn lease_path(db: &Path, stream: &StreamId) -> PathBuf {
    let hash = ContentHash::of_json(&Value::String(stream_key(stream)), &[]).to_hex();
    let mut name = db.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{}.lease", &hash[..16]));
    db.with_file_name(name)
}

/// Takes the lease of `stream` on the database at `db` (`None` in memory);
/// `None` when another open lock file (this process or another) holds it.
pub(crate) fn take(db: Option<&Path>, stream: &StreamId) -> Result<Option<FileLease>, Error> {
    match db {
        Some(db) => {
            Ok(lock_file(&lease_path(db, stream))?.map(|file| FileLease { _file: Some(file) }))
        }
        None => Ok(Some(FileLease { _file: None })),
    }
}

/// Opens `path` and takes an exclusive lock without waiting; `None` when
/// another open file (this process or another) holds it.
#[allow(clippy::incompatible_msrv)] // File::try_lock: Rust 1.89; the toolchain is newer.
fn lock_file(path: &Path) -> Result<Option<File>, Error> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|source| Error::Io {
            doing: "opening the lease file",
            path: path.to_owned(),
            source,
        })?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(TryLockError::WouldBlock) => Ok(None),
        Err(TryLockError::Error(source)) => Err(Error::Io {
            doing: "locking the lease file",
            path: path.to_owned(),
            source,
        }),
    }
}
