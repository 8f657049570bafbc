//! Configuration: a TOML file, then environment variables, then flags.
//!
//! Secrets (passwords, tokens) are never read from the TOML file itself and
//! never printed: they come from environment variables or from files named
//! in the TOML (`password_file`, ...), and are held as [`Secret`].

use std::path::{Path, PathBuf};
use std::time::Duration;
use sync_core::plan::Refresh;
use sync_source_scraper::Selectors;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use sync_core::{Secret, Tz};
use sync_source_yclients::{CataloguePaths, ClientsDelta, FullScanSchedule};

use crate::cli::{Cli, SourceKind};
use crate::error::CliError;

/// The TOML file, as written by a person.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileConfig {
    #[serde(default)]
    pub(crate) store: StoreSection,
    #[serde(default)]
    pub(crate) log: LogSection,
    #[serde(default)]
    pub(crate) sync: SyncSection,
    #[serde(default)]
    pub(crate) yclients: YclientsSection,
    #[serde(default)]
    pub(crate) kennel: KennelSection,
    #[serde(default)]
    pub(crate) serve: ServeSection,
}

/// `[serve]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ServeSection {
    /// Where YClients webhooks are received (default `/hooks/yclients`).
    pub(crate) hooks_path: Option<String>,
    /// A file holding the shared secret webhooks must carry.
    pub(crate) hooks_secret_file: Option<PathBuf>,
    // Present only to give a clear error: secrets do not belong here.
    pub(crate) hooks_secret: Option<toml::Value>,
}

/// `[store]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StoreSection {
    pub(crate) database_url: Option<String>,
    pub(crate) sqlite_path: Option<PathBuf>,
}

/// `[log]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LogSection {
    pub(crate) file: Option<PathBuf>,
    pub(crate) rotation: Option<Rotation>,
    pub(crate) level: Option<String>,
}

/// How the JSON log file rotates.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Rotation {
    /// One file, appended to forever (tail -f friendly).
    #[default]
    Never,
    /// A new file per day (`sync.log.YYYY-MM-DD`).
    Daily,
    /// A new file per hour.
    Hourly,
}

/// `[sync]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SyncSection {
    pub(crate) source: Option<SourceKind>,
    pub(crate) from: Option<String>,
    pub(crate) to: Option<String>,
    pub(crate) preset: Option<String>,
    pub(crate) batch_size: Option<u32>,
    pub(crate) interval: Option<String>,
    pub(crate) concurrency: Option<usize>,
    pub(crate) budget: Option<BudgetPlace>,
}

/// Where the request budget is kept (`[sync] budget`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum BudgetPlace {
    /// In the store: shared by every process, restart and machine using
    /// it, so that together they hold the server's limits.
    #[default]
    Store,
    /// In this process only: for a store that is not shared and a server
    /// nobody else calls. Restarts and other processes are not counted.
    Process,
}

/// `[yclients]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct YclientsSection {
    pub(crate) base_url: Option<String>,
    pub(crate) company_ids: Option<Vec<u64>>,
    pub(crate) tz: Option<String>,
    pub(crate) login: Option<String>,
    pub(crate) page_size: Option<u32>,
    pub(crate) recheck_days: Option<u32>,
    pub(crate) clients_delta: Option<ClientsDelta>,
    pub(crate) clients_full_scan_every_days: Option<u32>,
    pub(crate) clients_full_scan_every_runs: Option<u32>,
    pub(crate) catalogue_paths: Option<CataloguePaths>,
    pub(crate) budget_key: Option<String>,
    pub(crate) partner_token_file: Option<PathBuf>,
    pub(crate) user_token_file: Option<PathBuf>,
    pub(crate) password_file: Option<PathBuf>,
    // Present only to give a clear error: secrets do not belong here.
    pub(crate) partner_token: Option<toml::Value>,
    pub(crate) user_token: Option<toml::Value>,
    pub(crate) password: Option<toml::Value>,
}

/// `[kennel]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct KennelSection {
    pub(crate) base_url: Option<String>,
    pub(crate) username: Option<String>,
    pub(crate) tz: Option<String>,
    pub(crate) password_file: Option<PathBuf>,
    pub(crate) min_spacing_ms: Option<u64>,
    pub(crate) per_minute: Option<u32>,
    pub(crate) session_max_age_secs: Option<u64>,
    /// The site's markup, when it differs from the defaults.
    #[serde(default)]
    pub(crate) selectors: Selectors,
    /// Which days a delta run re-checks.
    pub(crate) recheck: Option<RecheckSection>,
    // Present only to give a clear error: secrets do not belong here.
    pub(crate) password: Option<toml::Value>,
}

/// `[kennel.recheck]`: which days a delta run of a source without delta
/// re-reads, by age.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RecheckSection {
    /// Days before today re-read at every delta run (default 14).
    pub(crate) every_run_back_days: Option<u32>,
    /// Days after today re-read at every delta run (default 30).
    pub(crate) every_run_ahead_days: Option<u32>,
    /// Older days: `[days back, re-read every N days]`, nearest first
    /// (default `[[90, 7], [36500, 30]]`: weekly for a quarter, then
    /// monthly). Days beyond the last tier are not re-read.
    pub(crate) tiers: Option<Vec<(u32, u32)>>,
}

impl RecheckSection {
    fn refresh(&self) -> Result<Refresh, CliError> {
        const DAY: u64 = 24 * 60 * 60;
        let mut refresh = Refresh::default();
        if let Some(n) = self.every_run_back_days {
            refresh.every_run_back = n;
        }
        if let Some(n) = self.every_run_ahead_days {
            refresh.every_run_ahead = n;
        }
        if let Some(tiers) = &self.tiers {
            let mut last_back = 0;
            refresh.tiers = Vec::new();
            for &(back, every) in tiers {
                if every == 0 || back <= last_back {
                    return Err(CliError::config(format!(
                        "[kennel.recheck] tiers: [{back}, {every}] must reach further back than the tier before it and re-read at least every day"
                    )));
                }
                last_back = back;
                refresh
                    .tiers
                    .push((back, Duration::from_secs(u64::from(every) * DAY)));
            }
        }
        Ok(refresh)
    }
}

/// The configuration in force, after file, environment and flags.
#[derive(Debug, Serialize)]
pub(crate) struct Settings {
    /// Where the config file was read from, if any.
    pub(crate) config_file: Option<PathBuf>,
    pub(crate) store: StoreSettings,
    pub(crate) log_file: PathBuf,
    pub(crate) log_rotation: Rotation,
    pub(crate) log_level: String,
    pub(crate) source: Option<SourceKind>,
    pub(crate) from: Option<String>,
    pub(crate) to: Option<String>,
    pub(crate) preset: String,
    pub(crate) batch_size: Option<u32>,
    pub(crate) interval: Option<String>,
    /// Requests in flight at most (`None`: the engine's default; the
    /// engine keeps as many in flight as the round trip and the limit need).
    pub(crate) concurrency: Option<usize>,
    pub(crate) budget: BudgetPlace,
    pub(crate) yclients: YclientsSettings,
    pub(crate) kennel: KennelSettings,
    pub(crate) serve: ServeSettings,
}

/// `sync-cli serve` settings.
#[derive(Debug, Serialize)]
pub(crate) struct ServeSettings {
    pub(crate) hooks_path: String,
    /// What a webhook must carry (`?secret=` or the `X-Webhook-Secret`
    /// header), from `SYNC_HOOKS_SECRET` or `hooks_secret_file`.
    #[serde(serialize_with = "masked")]
    pub(crate) hooks_secret: Option<Secret>,
}

/// Which store.
#[derive(Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum StoreSettings {
    /// The embedded default.
    Sqlite {
        /// The database file.
        path: PathBuf,
    },
    /// The production store.
    Postgres {
        /// The URL with its password masked.
        #[serde(rename = "url")]
        masked_url: String,
        #[serde(skip)]
        url: Secret,
    },
}

/// YClients settings.
#[derive(Debug, Serialize)]
pub(crate) struct YclientsSettings {
    pub(crate) base_url: String,
    pub(crate) company_ids: Vec<u64>,
    pub(crate) tz: String,
    pub(crate) login: Option<String>,
    pub(crate) page_size: Option<u32>,
    pub(crate) recheck_days: Option<u32>,
    /// How a clients delta finds changes.
    pub(crate) clients_delta: ClientsDelta,
    /// When a clients delta becomes a full scan.
    pub(crate) clients_full_scan: FullScanSchedule,
    /// Which spelling of the catalogue paths.
    pub(crate) catalogue_paths: CataloguePaths,
    /// What the server's limits are counted by (default: the API host);
    /// give each egress address its own key.
    pub(crate) budget_key: Option<String>,
    #[serde(serialize_with = "masked")]
    pub(crate) partner_token: Option<Secret>,
    #[serde(serialize_with = "masked")]
    pub(crate) user_token: Option<Secret>,
    #[serde(serialize_with = "masked")]
    pub(crate) password: Option<Secret>,
}

/// Kennel booking-site settings.
#[derive(Debug, Serialize)]
pub(crate) struct KennelSettings {
    pub(crate) base_url: Option<String>,
    pub(crate) username: Option<String>,
    pub(crate) tz: String,
    pub(crate) min_spacing_ms: Option<u64>,
    pub(crate) per_minute: Option<u32>,
    pub(crate) session_max_age_secs: Option<u64>,
    /// Paths, selectors and word lists of the site (`[kennel.selectors]`).
    pub(crate) selectors: Selectors,
    /// Which days a delta run re-reads (`[kennel.recheck]`).
    #[serde(skip)]
    pub(crate) recheck: Refresh,
    #[serde(serialize_with = "masked")]
    pub(crate) password: Option<Secret>,
}

fn masked<S: serde::Serializer>(secret: &Option<Secret>, s: S) -> Result<S::Ok, S::Error> {
    match secret {
        Some(_) => s.serialize_str("*** (set)"),
        None => s.serialize_str("(not set)"),
    }
}

/// The default SQLite file.
pub(crate) const DEFAULT_SQLITE_PATH: &str = "data/sync.db";
/// The default log file.
pub(crate) const DEFAULT_LOG_FILE: &str = "logs/sync.log";
/// The default YClients API base.
pub(crate) const DEFAULT_YCLIENTS_URL: &str = "https://api.yclients.com/api/v1";

impl Settings {
    /// Reads the config file (if any) and merges environment and flags.
    pub(crate) fn load(cli: &Cli) -> Result<Self, CliError> {
        let (config_file, file) = read_file_config(cli.config.as_deref())?;
        Self::merge(cli, config_file, file, &|name| std::env::var(name).ok())
    }

    fn merge(
        cli: &Cli,
        config_file: Option<PathBuf>,
        file: FileConfig,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, CliError> {
        reject_inline_secrets(&file)?;
        let env_nonempty = |name: &str| env(name).filter(|v| !v.trim().is_empty());

        // clap already merged flag > environment for these; the file is last.
        let store = match cli.database_url.clone().or(file.store.database_url) {
            Some(url) if !url.trim().is_empty() => {
                if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                    return Err(CliError::config(format!(
                        "database URL must start with postgres:// or postgresql:// (got {})",
                        mask_url(&url)
                    )));
                }
                StoreSettings::Postgres {
                    masked_url: mask_url(&url),
                    url: Secret::new(url),
                }
            }
            _ => StoreSettings::Sqlite {
                path: cli
                    .sqlite
                    .clone()
                    .or(file.store.sqlite_path)
                    .unwrap_or_else(|| PathBuf::from(DEFAULT_SQLITE_PATH)),
            },
        };

        let y = file.yclients;
        let yclients = YclientsSettings {
            base_url: env_nonempty("YCLIENTS_BASE_URL")
                .or(y.base_url)
                .unwrap_or_else(|| DEFAULT_YCLIENTS_URL.to_string()),
            company_ids: match env_nonempty("YCLIENTS_COMPANY_ID") {
                Some(v) => parse_ids(&v, "YCLIENTS_COMPANY_ID")?,
                None => y.company_ids.unwrap_or_default(),
            },
            tz: env_nonempty("YCLIENTS_TZ")
                .or(y.tz)
                .unwrap_or_else(|| "Europe/Moscow".to_string()),
            login: env_nonempty("YCLIENTS_LOGIN").or(y.login),
            page_size: y.page_size,
            recheck_days: y.recheck_days,
            clients_delta: y.clients_delta.unwrap_or_default(),
            budget_key: env_nonempty("YCLIENTS_BUDGET_KEY").or(y.budget_key),
            clients_full_scan: match (
                y.clients_full_scan_every_days,
                y.clients_full_scan_every_runs,
            ) {
                (None, None) => FullScanSchedule::default(),
                (every_days, every_runs) => FullScanSchedule {
                    every_days,
                    every_runs,
                },
            },
            catalogue_paths: y.catalogue_paths.unwrap_or_default(),
            partner_token: secret(
                env_nonempty("YCLIENTS_PARTNER_TOKEN"),
                y.partner_token_file.as_deref(),
                "partner_token_file",
            )?,
            user_token: secret(
                env_nonempty("YCLIENTS_USER_TOKEN"),
                y.user_token_file.as_deref(),
                "user_token_file",
            )?,
            password: secret(
                env_nonempty("YCLIENTS_PASSWORD"),
                y.password_file.as_deref(),
                "[yclients] password_file",
            )?,
        };

        let k = file.kennel;
        let kennel = KennelSettings {
            base_url: env_nonempty("KENNEL_BASE_URL").or(k.base_url),
            username: env_nonempty("KENNEL_USERNAME").or(k.username),
            tz: env_nonempty("KENNEL_TZ")
                .or(k.tz)
                .unwrap_or_else(|| "UTC".to_string()),
            min_spacing_ms: k.min_spacing_ms,
            per_minute: k.per_minute,
            session_max_age_secs: k.session_max_age_secs,
            selectors: k.selectors,
            recheck: match &k.recheck {
                Some(r) => r.refresh()?,
                None => Refresh::default(),
            },
            password: secret(
                env_nonempty("KENNEL_PASSWORD"),
                k.password_file.as_deref(),
                "[kennel] password_file",
            )?,
        };

        let concurrency = file.sync.concurrency;
        if concurrency == Some(0) {
            return Err(CliError::config("[sync] concurrency must be at least 1"));
        }

        Ok(Self {
            config_file,
            store,
            log_file: cli
                .log_file
                .clone()
                .or(file.log.file)
                .unwrap_or_else(|| PathBuf::from(DEFAULT_LOG_FILE)),
            log_rotation: file.log.rotation.unwrap_or_default(),
            log_level: env_nonempty("SYNC_LOG_LEVEL")
                .or(file.log.level)
                .unwrap_or_else(|| "info".to_string()),
            source: file.sync.source,
            from: file.sync.from,
            to: file.sync.to,
            preset: env_nonempty("SYNC_PRESET")
                .or(file.sync.preset)
                .unwrap_or_else(|| "balanced".to_string()),
            batch_size: file.sync.batch_size,
            interval: file.sync.interval,
            concurrency,
            budget: match env_nonempty("SYNC_BUDGET").as_deref() {
                None => file.sync.budget.unwrap_or_default(),
                Some("store") => BudgetPlace::Store,
                Some("process") => BudgetPlace::Process,
                Some(other) => {
                    return Err(CliError::config(format!(
                        "SYNC_BUDGET must be \"store\" or \"process\", not {other:?}"
                    )))
                }
            },
            yclients,
            kennel,
            serve: ServeSettings {
                hooks_path: match file.serve.hooks_path {
                    Some(p) if p.starts_with('/') && p.len() > 1 => p,
                    Some(p) => {
                        return Err(CliError::config(format!(
                            "[serve] hooks_path {p:?} must be a path such as /hooks/yclients"
                        )))
                    }
                    None => "/hooks/yclients".to_string(),
                },
                hooks_secret: secret(
                    env_nonempty("SYNC_HOOKS_SECRET"),
                    file.serve.hooks_secret_file.as_deref(),
                    "[serve] hooks_secret_file",
                )?,
            },
        })
    }

    /// The time zone of a source, parsed.
    pub(crate) fn tz_of(&self, source: SourceKind) -> Result<Tz, CliError> {
        let (name, setting) = match source {
            SourceKind::Kennel => (&self.kennel.tz, "[kennel] tz / KENNEL_TZ"),
            _ => (&self.yclients.tz, "[yclients] tz / YCLIENTS_TZ"),
        };
        parse_tz(name, setting)
    }
}

/// Parses an IANA time zone name, naming the setting on error.
pub(crate) fn parse_tz(name: &str, setting: &str) -> Result<Tz, CliError> {
    name.parse::<Tz>().map_err(|_| {
        CliError::config(format!(
            "unknown time zone {name:?} in {setting}: use an IANA name such as Europe/Moscow"
        ))
    })
}

fn read_file_config(explicit: Option<&Path>) -> Result<(Option<PathBuf>, FileConfig), CliError> {
    let path = match explicit {
        Some(p) => p.to_path_buf(),
        None => {
            let default = PathBuf::from("sync.toml");
            if !default.exists() {
                return Ok((None, FileConfig::default()));
            }
            default
        }
    };
    let text = std::fs::read_to_string(&path).map_err(|e| {
        CliError::config(format!("cannot read config file {}: {e}", path.display()))
    })?;
    let file: FileConfig = toml::from_str(&text).map_err(|e| {
        CliError::config(format!(
            "config file {} is invalid: {}",
            path.display(),
            e.message()
        ))
    })?;
    Ok((Some(path), file))
}

fn reject_inline_secrets(file: &FileConfig) -> Result<(), CliError> {
    let inline = [
        (
            "[yclients] partner_token",
            file.yclients.partner_token.is_some(),
            "YCLIENTS_PARTNER_TOKEN or partner_token_file",
        ),
        (
            "[yclients] user_token",
            file.yclients.user_token.is_some(),
            "YCLIENTS_USER_TOKEN or user_token_file",
        ),
        (
            "[yclients] password",
            file.yclients.password.is_some(),
            "YCLIENTS_PASSWORD or password_file",
        ),
        (
            "[kennel] password",
            file.kennel.password.is_some(),
            "KENNEL_PASSWORD or password_file",
        ),
        (
            "[serve] hooks_secret",
            file.serve.hooks_secret.is_some(),
            "SYNC_HOOKS_SECRET or hooks_secret_file",
        ),
    ];
    for (key, present, instead) in inline {
        if present {
            return Err(CliError::config(format!(
                "{key} must not be written in the config file: set {instead}"
            )));
        }
    }
    Ok(())
}

// A secret from the environment, else from a file; an unreadable file is an
// error naming the setting (never the content).
fn secret(
    from_env: Option<String>,
    file: Option<&Path>,
    setting: &str,
) -> Result<Option<Secret>, CliError> {
    if let Some(v) = from_env {
        return Ok(Some(Secret::new(v.trim().to_string())));
    }
    let Some(path) = file else { return Ok(None) };
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::config(format!("cannot read {setting} {}: {e}", path.display())))?;
    let value = text.trim().to_string();
    if value.is_empty() {
        return Err(CliError::config(format!(
            "{setting} {} is empty",
            path.display()
        )));
    }
    Ok(Some(Secret::new(value)))
}

fn parse_ids(text: &str, setting: &str) -> Result<Vec<u64>, CliError> {
    text.split(',')
        .map(|s| {
            s.trim().parse::<u64>().map_err(|_| {
                CliError::config(format!("{setting}: {:?} is not a company id", s.trim()))
            })
        })
        .collect()
}

/// A URL with its password replaced by `***`.
pub(crate) fn mask_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            u.to_string()
        }
        // Not a URL: show only the scheme-like prefix.
        Err(_) => match url.split_once("://") {
            Some((scheme, _)) => format!("{scheme}://***"),
            None => "***".to_string(),
        },
    }
}

/// Parses `YYYY-MM-DD` or `today` (in `tz`), naming the flag on error.
pub(crate) fn parse_day(text: &str, flag: &str, tz: Tz) -> Result<NaiveDate, CliError> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("today") {
        return Ok(chrono::Utc::now().with_timezone(&tz).date_naive());
    }
    if t.eq_ignore_ascii_case("yesterday") {
        let today = chrono::Utc::now().with_timezone(&tz).date_naive();
        return today
            .pred_opt()
            .ok_or_else(|| CliError::config("no day before today"));
    }
    NaiveDate::parse_from_str(t, "%Y-%m-%d").map_err(|_| {
        CliError::config(format!(
            "{flag} {text:?} is not a date: use YYYY-MM-DD (e.g. 2024-09-01) or `today`"
        ))
    })
}

/// Parses `500ms`, `5s`, `2m`, `1h` or a number of seconds.
pub(crate) fn parse_duration(text: &str, flag: &str) -> Result<Duration, CliError> {
    let t = text.trim();
    let bad = || {
        CliError::config(format!(
            "{flag} {text:?} is not a duration: use e.g. 500ms, 5s, 2m or 1h"
        ))
    };
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let n: f64 = number.parse().map_err(|_| bad())?;
    let secs = match unit.trim() {
        "" | "s" | "sec" | "secs" => n,
        "ms" => n / 1000.0,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(bad()),
    };
    if !secs.is_finite() || !(0.0..=7.0 * 86_400.0).contains(&secs) {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    // Flags given here win over the environment (DATABASE_URL may be set
    // while tests run), as they do for a user.
    fn cli(args: &[&str]) -> Cli {
        let mut v = vec!["sync-cli"];
        v.extend_from_slice(args);
        Cli::try_parse_from(v).unwrap()
    }

    #[test]
    fn precedence_file_then_env_then_flags() {
        let file: FileConfig = toml::from_str(
            "[store]\nsqlite_path = \"file.db\"\n[sync]\npreset = \"night\"\n[yclients]\nlogin = \"file-login\"\ncompany_ids = [1]\n",
        )
        .unwrap();
        let env = |name: &str| match name {
            "YCLIENTS_LOGIN" => Some("env-login".to_string()),
            "YCLIENTS_PASSWORD" => Some("s3cret".to_string()),
            _ => None,
        };
        let s = Settings::merge(
            &cli(&["--database-url", "", "--sqlite", "flag.db", "status"]),
            None,
            file,
            &env,
        )
        .unwrap();
        assert!(matches!(&s.store, StoreSettings::Sqlite { path } if path == Path::new("flag.db")));
        assert_eq!(s.preset, "night");
        assert_eq!(s.yclients.login.as_deref(), Some("env-login"));
        assert_eq!(s.yclients.company_ids, vec![1]);
        let shown = toml::to_string(&s).unwrap();
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("*** (set)"));
    }

    #[test]
    fn secrets_in_the_file_are_refused() {
        let file: FileConfig = toml::from_str("[kennel]\npassword = \"hunter2\"\n").unwrap();
        let e = Settings::merge(&cli(&["status"]), None, file, &|_| None).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("[kennel] password must not be written"),
            "{msg}"
        );
        assert!(!msg.contains("hunter2"));
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        let e = toml::from_str::<FileConfig>("[sync]\nbatchsize = 3\n").unwrap_err();
        assert!(e.message().contains("batchsize"), "{}", e.message());
        assert!(parse_day("2024-13-01", "--from", chrono_tz::UTC)
            .unwrap_err()
            .to_string()
            .contains("--from \"2024-13-01\""));
        assert_eq!(
            parse_duration("500ms", "--interval").unwrap(),
            Duration::from_millis(500)
        );
        assert_eq!(
            parse_duration("2m", "--interval").unwrap(),
            Duration::from_secs(120)
        );
        assert!(parse_duration("fast", "--interval").is_err());
        assert!(parse_tz("Mars/Base", "KENNEL_TZ")
            .unwrap_err()
            .to_string()
            .contains("Mars/Base"));
    }

    #[test]
    fn kennel_selectors_and_budget_settings_are_read() {
        let file: FileConfig = toml::from_str(
            "[sync]\nbudget = \"process\"\n[kennel.selectors]\nappointment_link = \"a.booking\"\n",
        )
        .unwrap();
        let s = Settings::merge(&cli(&["status"]), None, file, &|_| None).unwrap();
        assert_eq!(s.budget, BudgetPlace::Process);
        assert_eq!(s.kennel.selectors.appointment_link, "a.booking");
        // Keys not given keep the real site's defaults.
        assert_eq!(s.kennel.selectors.week_path, Selectors::default().week_path);
        let s = Settings::merge(&cli(&["status"]), None, FileConfig::default(), &|_| None).unwrap();
        assert_eq!(
            s.budget,
            BudgetPlace::Store,
            "the store keeps it by default"
        );
        let e = toml::from_str::<FileConfig>("[kennel.selectors]\nappointment_lnk = \"a\"\n")
            .unwrap_err();
        assert!(e.message().contains("appointment_lnk"), "{}", e.message());
        let file: FileConfig = toml::from_str(
            "[kennel.recheck]\nevery_run_back_days = 3\ntiers = [[30, 2], [400, 14]]\n",
        )
        .unwrap();
        let s = Settings::merge(&cli(&["status"]), None, file, &|_| None).unwrap();
        assert_eq!(s.kennel.recheck.every_run_back, 3);
        assert_eq!(s.kennel.recheck.every_run_ahead, 30);
        assert_eq!(
            s.kennel.recheck.tiers,
            vec![
                (30, Duration::from_secs(2 * 86_400)),
                (400, Duration::from_secs(14 * 86_400))
            ]
        );
        let file: FileConfig =
            toml::from_str("[kennel.recheck]\ntiers = [[30, 2], [20, 14]]\n").unwrap();
        let e = Settings::merge(&cli(&["status"]), None, file, &|_| None).unwrap_err();
        assert!(e.to_string().contains("[20, 14]"), "{e}");
        let e = toml::from_str::<FileConfig>("[sync]\nbudget = \"nowhere\"\n").unwrap_err();
        assert!(e.message().contains("nowhere"), "{}", e.message());
    }

    #[test]
    fn postgres_url_password_is_masked() {
        assert_eq!(
            mask_url("postgres://sync:topsecret@db.example:5432/sync"),
            "postgres://sync:***@db.example:5432/sync"
        );
        let s = Settings::merge(
            &cli(&["--database-url", "postgres://u:pw@localhost/db", "status"]),
            None,
            FileConfig::default(),
            &|_| None,
        )
        .unwrap();
        let shown = toml::to_string(&s).unwrap();
        assert!(!shown.contains(":pw@"), "{shown}");
    }
}
