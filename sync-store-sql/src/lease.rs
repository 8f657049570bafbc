//! The leases a store instance holds: at most one live run per stream.
//!
//! How a lease is held differs (an OS file lock, an advisory lock on a
//! session of its own): that is [`crate::Dialect::take_lease`]. Which run
//! holds which stream's lease is kept here.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use sync_core::StreamId;

/// `source/stream`, the name of a stream in lease maps, lock keys and
/// messages.
pub fn stream_key(stream: &StreamId) -> String {
    format!("{}/{}", stream.source, stream.stream)
}

/// The leases of one store instance, by run id.
pub(crate) struct Leases<L> {
    held: Mutex<HashMap<String, (String, L)>>,
}

impl<L> Default for Leases<L> {
    fn default() -> Self {
        Self {
            held: Mutex::default(),
        }
    }
}

/// Who holds the lease of a stream, as seen from this store instance.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Holder {
    /// The run asking holds it already.
    This,
    /// Another run of this store instance holds it.
    Other,
    /// No run of this instance holds it.
    None,
}

impl<L> Leases<L> {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, (String, L)>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Who of this instance holds the lease of `stream` (its key), for `run`.
    pub(crate) fn holder(&self, run: &str, stream: &str) -> Holder {
        let held = self.lock();
        if held.get(run).is_some_and(|(key, _)| key == stream) {
            Holder::This
        } else if held.values().any(|(key, _)| key == stream) {
            Holder::Other
        } else {
            Holder::None
        }
    }

    /// Keeps the lease of `run`; returns the one it held before, if any.
    pub(crate) fn keep(&self, run: &str, stream: String, lease: L) -> Option<L> {
        self.lock()
            .insert(run.to_owned(), (stream, lease))
            .map(|(_, lease)| lease)
    }

    /// Takes back the lease of `run`, if it holds one.
    pub(crate) fn remove(&self, run: &str) -> Option<L> {
        self.lock().remove(run).map(|(_, lease)| lease)
    }

    /// The runs holding leases.
    pub(crate) fn runs(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_run_per_stream_within_an_instance() {
        let leases = Leases::<u8>::default();
        assert_eq!(leases.holder("r1", "a/b"), Holder::None);
        assert!(leases.keep("r1", "a/b".into(), 1).is_none());
        assert_eq!(leases.holder("r1", "a/b"), Holder::This);
        assert_eq!(leases.holder("r2", "a/b"), Holder::Other);
        assert_eq!(leases.holder("r2", "a/c"), Holder::None);
        assert_eq!(leases.remove("r1"), Some(1));
        assert_eq!(leases.holder("r2", "a/b"), Holder::None);
    }
}
