//! What a command is about: the source, the local days, the preset. Read
//! from flags and settings only; nothing here talks to a source.

use std::str::FromStr;

use chrono::NaiveDate;
use sync_core::plan::Preset;
use sync_core::{Span, SyncMode, Target, Tz};

use crate::cli::{SourceKind, TargetArgs};
use crate::config::{parse_day, Settings};
use crate::error::CliError;

/// The source named by the flag or the config file.
pub(crate) fn source_kind(settings: &Settings, args: &TargetArgs) -> Result<SourceKind, CliError> {
    args.source.or(settings.source).ok_or_else(|| {
        CliError::config(
            "no source given: pass --source yclients, --source yclients-clients, \
             --source yclients-all or --source kennel \
             (or set `source` in the [sync] section of the config file)",
        )
    })
}

/// The local day range of the target, from flags or the config file.
pub(crate) fn day_range(
    settings: &Settings,
    args: &TargetArgs,
    tz: Tz,
) -> Result<(NaiveDate, NaiveDate), CliError> {
    let from = args
        .from
        .as_deref()
        .or(settings.from.as_deref())
        .ok_or_else(|| {
            CliError::config("no start date: pass --from YYYY-MM-DD (or set `from` in [sync])")
        })?;
    let to = args
        .to
        .as_deref()
        .or(settings.to.as_deref())
        .unwrap_or("today");
    let first = parse_day(from, "--from", tz)?;
    let last = parse_day(to, "--to", tz)?;
    if last < first {
        return Err(CliError::config(format!(
            "date range is inverted: --from {first} is after --to {last}"
        )));
    }
    Ok((first, last))
}

/// The target of a command: local days for records and boardings (for a
/// whole YClients company, the days of its records; its other streams say
/// their own targets); every client id for clients (the engine asks the
/// source which exist, after taking the stream's lease).
pub(crate) fn target(
    kind: SourceKind,
    settings: &Settings,
    args: &TargetArgs,
    tz: Tz,
    mode: SyncMode,
) -> Result<Target, CliError> {
    match kind {
        SourceKind::YclientsClients => Ok(Target::Keys(Span {
            first: 1,
            last: i64::MAX,
        })),
        _ => {
            // A delta run needs no range; the default target is still shown.
            if mode == SyncMode::Delta && args.from.is_none() && settings.from.is_none() {
                let today = chrono::Utc::now().with_timezone(&tz).date_naive();
                return Ok(Target::days(today, today, tz)?);
            }
            let (first, last) = day_range(settings, args, tz)?;
            Ok(Target::days(first, last, tz)?)
        }
    }
}

/// The preset named by the flag, the environment or the config file.
pub(crate) fn preset(name: &str) -> Result<Preset, CliError> {
    Preset::from_str(name).map_err(CliError::from)
}
