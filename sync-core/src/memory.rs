//! In-memory store.

/// An in-memory Store and CheckpointStore, for tests and examples.
#[derive(Debug, Default)]
pub struct MemoryStore {}
