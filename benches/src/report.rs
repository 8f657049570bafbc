//! Rows of the results table: figure, target, measured, command.

use std::fmt::Write as _;

/// One row of the results table.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// What is measured, e.g. `rate limit: wall / minimum at 100%`.
    pub figure: String,
    /// The target, e.g. `<= 1.05`; `-` when the figure is informative.
    pub target: String,
    /// The measured value, with its unit.
    pub measured: String,
    /// Whether the target is met; `None` when there is no target.
    pub met: Option<bool>,
    /// The command that measures it.
    pub command: String,
}

impl Row {
    /// A row with a target, met or not.
    pub fn checked(
        figure: impl Into<String>,
        target: impl Into<String>,
        measured: impl Into<String>,
        met: bool,
        command: &str,
    ) -> Self {
        Self {
            figure: figure.into(),
            target: target.into(),
            measured: measured.into(),
            met: Some(met),
            command: command.into(),
        }
    }

    /// An informative row, without a target.
    pub fn info(figure: impl Into<String>, measured: impl Into<String>, command: &str) -> Self {
        Self {
            figure: figure.into(),
            target: "-".into(),
            measured: measured.into(),
            met: None,
            command: command.into(),
        }
    }
}

/// The rows as a Markdown table (the form `benches/README.md` uses).
pub fn markdown(rows: &[Row]) -> String {
    let mut out =
        String::from("| figure | target | measured | command |\n| --- | --- | --- | --- |\n");
    for r in rows {
        let verdict = match r.met {
            Some(true) => " (met)",
            Some(false) => " (MISSED)",
            None => "",
        };
        let _ = writeln!(
            out,
            "| {} | {} | {}{} | `{}` |",
            r.figure, r.target, r.measured, verdict, r.command
        );
    }
    out
}

/// Prints the rows as a Markdown table under a heading.
pub fn print(title: &str, rows: &[Row]) {
    println!();
    println!("== {title} ==");
    print!("{}", markdown(rows));
}

/// The machine the figures come from: CPUs, load average, date.
pub fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".into());
    format!(
        "{cpus} CPUs, load average {load}, {}",
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC")
    )
}
