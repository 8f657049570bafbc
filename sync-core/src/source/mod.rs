//! Sources and the wrappers the core adds to them: retries, sessions,
//! pacing.

pub(crate) mod api;
pub(crate) mod context;
pub(crate) mod paced;
pub(crate) mod retry;
pub(crate) mod retry_after;
pub(crate) mod session;
