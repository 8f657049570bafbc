//! `sync-cli`: resumable, rate-limited synchronisation of booking data into
//! a database. See `sync-cli --help`.

mod account;
mod cli;
mod commands;
mod config;
mod demo;
mod error;
mod hooks;
mod logging;
#[macro_use]
mod output;
mod progress;
mod render;
mod serve;
mod sources;
mod stores;
mod targets;

use clap::Parser;

use crate::cli::Cli;
use crate::config::Settings;
use crate::error::ExitCode;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let code = match run(cli) {
        Ok(code) => code,
        Err(e) if e.is_closed_pipe() => e.code,
        Err(e) => {
            use std::io::Write as _;
            let _ = writeln!(std::io::stderr(), "error: {e}");
            e.code
        }
    };
    std::process::ExitCode::from(code as u8)
}

fn run(cli: Cli) -> Result<ExitCode, error::CliError> {
    let settings = Settings::load(&cli)?;
    // The guard flushes the log file when it drops, at the end of `run`.
    let _log_guard = logging::init(
        &settings.log_file,
        settings.log_rotation,
        &settings.log_level,
    )?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| error::CliError::failure(format!("cannot start the async runtime: {e}")))?;
    let result = runtime.block_on(commands::dispatch(cli, settings));
    if let Err(e) = &result {
        if !e.is_closed_pipe() {
            tracing::error!(exit_code = e.code as i32, error = %e.message, "command failed");
        }
    }
    result
}
