//! What commands print on stdout. A reader that goes away (`sync-cli status
//! | head -1`) ends the command quietly instead of a panic.

use std::io::Write;

use crate::error::CliError;

/// Writes `text` to stdout as is.
pub(crate) fn print(text: &str) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                CliError::closed_pipe()
            } else {
                CliError::failure(format!("cannot write to stdout: {e}"))
            }
        })
}

/// Writes `text` and a newline to stdout.
pub(crate) fn line(text: &str) -> Result<(), CliError> {
    print(&format!("{text}\n"))
}

/// `println!` that returns [`CliError`] instead of panicking.
macro_rules! outln {
    () => { $crate::output::line("") };
    ($($arg:tt)*) => { $crate::output::line(&format!($($arg)*)) };
}

/// `print!` that returns [`CliError`] instead of panicking.
macro_rules! out {
    ($($arg:tt)*) => { $crate::output::print(&format!($($arg)*)) };
}

/// A line on stderr for people (notes, waits); a closed stderr is no
/// reason to stop.
macro_rules! note {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

pub(crate) use {note, out, outln};
