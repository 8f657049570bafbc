//! Structured JSON logs to a file, and short human lines on stderr.

use std::path::Path;

use tracing_appender::non_blocking::WorkerGuard;
use tracing_appender::rolling::{RollingFileAppender, Rotation as AppenderRotation};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, EnvFilter, Layer};

use crate::config::Rotation;
use crate::error::CliError;

/// Starts logging: one JSON object per line appended to `file` (timestamp,
/// level, message, run id, batch, counts, ...). People read the terminal
/// output of the commands and the progress lines; the file is for `tail -f`
/// and for tools.
/// Keep the guard alive until the end of `main` so the file is flushed.
pub(crate) fn init(file: &Path, rotation: Rotation, level: &str) -> Result<WorkerGuard, CliError> {
    let dir = match file.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => Path::new(".").to_path_buf(),
    };
    let name = file
        .file_name()
        .ok_or_else(|| CliError::config(format!("log file {} has no file name", file.display())))?;
    std::fs::create_dir_all(&dir).map_err(|e| {
        CliError::config(format!(
            "cannot create log directory {}: {e}",
            dir.display()
        ))
    })?;
    let rotation = match rotation {
        Rotation::Never => AppenderRotation::NEVER,
        Rotation::Daily => AppenderRotation::DAILY,
        Rotation::Hourly => AppenderRotation::HOURLY,
    };
    let appender = RollingFileAppender::builder()
        .rotation(rotation)
        .filename_prefix(name.to_string_lossy().into_owned())
        .build(&dir)
        .map_err(|e| CliError::config(format!("cannot open log file {}: {e}", file.display())))?;
    let (writer, guard) = tracing_appender::non_blocking(appender);

    let filter = EnvFilter::try_new(format!(
        "{level},sqlx=warn,hyper=warn,reqwest=warn,h2=warn,axum=warn,tower=warn"
    ))
    .map_err(|e| CliError::config(format!("log level {level:?} is invalid: {e}")))?;
    let json = fmt::layer()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_target(true)
        .with_writer(writer)
        .with_filter(filter);
    tracing_subscriber::registry()
        .with(json)
        .try_init()
        .map_err(|e| CliError::failure(format!("cannot start logging: {e}")))?;
    Ok(guard)
}
