//! Stores: the traits, what a commit does to each record, an in-memory
//! store, and the conformance suite every store passes.

pub(crate) mod api;
pub mod commit;
pub(crate) mod memory;
#[cfg(feature = "testkit")]
pub mod testkit;
