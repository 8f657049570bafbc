//! The lease on a stream: at most one live run per stream.
//!
//! For a database file the lease is an OS file lock (`flock`) on a small
//! file next to it, one per stream. The operating system drops the lock when
//! the holding process ends, even by SIGKILL, so a dead run never blocks the
//! next one. An in-memory database lives in one process: an in-process map
//! is enough there.

use std::collections::HashMap;
use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use serde_json::Value;
use sync_core::{ContentHash, StreamId};

use crate::error::Error;

/// `source/stream`, the name of a stream in lease maps and messages.
pub(crate) fn stream_key(stream: &StreamId) -> String {
    format!("{}/{}", stream.source, stream.stream)
}

/// The lock file of `stream` next to the database at `db`:
/// `<db>.<16 hex digits of the stream's hash>.lease`.
pub(crate) fn lease_path(db: &Path, stream: &StreamId) -> PathBuf {
    let hash = ContentHash::of_json(&Value::String(stream_key(stream)), &[]).to_hex();
    let mut name = db.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{}.lease", &hash[..16]));
    db.with_file_name(name)
}

/// The leases this store instance holds, by run id.
#[derive(Debug, Default)]
pub(crate) struct Leases {
    held: Mutex<HashMap<String, Held>>,
}

#[derive(Debug)]
struct Held {
    stream: String,
    // Kept open for the lock; dropping the file releases it.
    _file: Option<File>,
}

impl Leases {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Held>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes the lease of `stream` for `run`; `false` when another live run
    /// holds it. `db` is the database file (`None` in memory).
    pub(crate) fn take(
        &self,
        run: &str,
        stream: &StreamId,
        db: Option<&Path>,
    ) -> Result<bool, Error> {
        let key = stream_key(stream);
        let mut held = self.lock();
        if let Some(h) = held.get(run) {
            // The same run asking again already holds it.
            return Ok(h.stream == key);
        }
        let file = match db {
            Some(db) => match lock_file(&lease_path(db, stream))? {
                Some(file) => Some(file),
                None => return Ok(false),
            },
            None if held.values().any(|h| h.stream == key) => return Ok(false),
            None => None,
        };
        held.insert(
            run.to_owned(),
            Held {
                stream: key,
                _file: file,
            },
        );
        Ok(true)
    }

    /// Releases the lease `run` holds, if any.
    pub(crate) fn release(&self, run: &str) {
        self.lock().remove(run);
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
