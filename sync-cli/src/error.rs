//! Errors of the command line and their exit codes.

use std::fmt;

use sync_core::SyncError;

/// Exit codes, so scripts can tell outcomes apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ExitCode {
    /// Everything asked was done.
    Success = 0,
    /// The run failed (source or database error).
    Failure = 1,
    /// Bad configuration or input; nothing was done.
    BadConfig = 2,
    /// The credentials were rejected.
    AuthFailed = 3,
    /// Some batches failed; the rest was stored. Run again to retry them.
    Partial = 4,
    /// Another run of the same stream is in progress.
    Busy = 5,
    /// Cancelled (Ctrl-C); finished batches are kept.
    Cancelled = 130,
}

/// An error with the exit code it ends the program with.
#[derive(Debug)]
pub(crate) struct CliError {
    pub(crate) code: ExitCode,
    pub(crate) message: String,
}

impl CliError {
    /// Bad configuration or input.
    pub(crate) fn config(message: impl Into<String>) -> Self {
        Self {
            code: ExitCode::BadConfig,
            message: message.into(),
        }
    }

    /// Any other failure.
    pub(crate) fn failure(message: impl Into<String>) -> Self {
        Self {
            code: ExitCode::Failure,
            message: message.into(),
        }
    }

    /// Stdout was closed by its reader: nothing more to say, and nothing
    /// wrong with the command.
    pub(crate) fn closed_pipe() -> Self {
        Self {
            code: ExitCode::Success,
            message: String::new(),
        }
    }

    /// Whether this is [`CliError::closed_pipe`].
    pub(crate) fn is_closed_pipe(&self) -> bool {
        self.code == ExitCode::Success && self.message.is_empty()
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CliError {}

impl From<SyncError> for CliError {
    fn from(e: SyncError) -> Self {
        let code = match &e {
            SyncError::InvalidInput { .. } => ExitCode::BadConfig,
            SyncError::Unauthenticated { .. } | SyncError::AuthExpired { .. } => {
                ExitCode::AuthFailed
            }
            SyncError::Busy { .. } => ExitCode::Busy,
            SyncError::Cancelled => ExitCode::Cancelled,
            _ => ExitCode::Failure,
        };
        Self {
            code,
            message: e.to_string(),
        }
    }
}
