//! Configuration: where the API is, the credentials, and how to page.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sync_core::{Secret, SyncError, Tz};
use url::Url;

/// The public API base.
pub const DEFAULT_BASE_URL: &str = "https://api.yclients.com/api/v1";
/// Largest `page_size` of the clients search (documented).
pub const MAX_CLIENTS_PAGE_SIZE: u32 = 200;

/// Environment variable names read by [`YclientsConfig::from_env`].
pub mod env {
    /// Partner token (required).
    pub const PARTNER_TOKEN: &str = "YCLIENTS_PARTNER_TOKEN";
    /// User token (optional when login and password are given).
    pub const USER_TOKEN: &str = "YCLIENTS_USER_TOKEN";
    /// Login (phone or e-mail) for `POST /auth`.
    pub const LOGIN: &str = "YCLIENTS_LOGIN";
    /// Password for `POST /auth`.
    pub const PASSWORD: &str = "YCLIENTS_PASSWORD";
    /// API base URL (default [`super::DEFAULT_BASE_URL`]).
    pub const BASE_URL: &str = "YCLIENTS_BASE_URL";
    /// Company id, or several separated by commas (required).
    pub const COMPANY_ID: &str = "YCLIENTS_COMPANY_ID";
    /// The companies' IANA time zone (default `Europe/Moscow`).
    pub const TZ: &str = "YCLIENTS_TZ";
    /// `count` of `GET /records` pages (default 200).
    pub const RECORDS_PAGE_SIZE: &str = "YCLIENTS_RECORDS_PAGE_SIZE";
    /// Days re-fetched at each delta run (default 3).
    pub const RECHECK_DAYS: &str = "YCLIENTS_RECHECK_DAYS";
}

/// How a delta run of the clients stream finds changed clients (the search
/// has no change filter).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientsDelta {
    /// The deprecated `GET /clients/{id}?changed_after=` list, the only
    /// documented client delta (a request per 200 changed clients). Where
    /// it answers 404 (gone), that run walks every page of the search
    /// instead. Deleted clients are not in it: the periodic full scan
    /// ([`FullScanSchedule`]) finds them.
    #[default]
    #[serde(alias = "deprecated_changed_after")]
    ChangedAfter,
    /// Walk every page of the search again (`clients / 200` requests); the
    /// store's content hash keeps unchanged clients unchanged.
    Rescan,
}

/// When a delta run of the clients stream is replaced by a full scan: every
/// client fetched again and the stored ones no longer listed marked
/// deleted (the delta cannot see deletions). A scan is due when either
/// limit is reached; with neither set, only an explicit `--force` scans.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FullScanSchedule {
    /// Days since the last completed full run.
    pub every_days: Option<u32>,
    /// Completed delta runs since the last completed full run.
    pub every_runs: Option<u32>,
}

impl Default for FullScanSchedule {
    /// Weekly.
    fn default() -> Self {
        Self {
            every_days: Some(7),
            every_runs: None,
        }
    }
}

/// Which spelling of the catalogue paths to use: the documentation has
/// both, and both are served.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CataloguePaths {
    /// `/services/{company_id}`, `/service_categories/{company_id}`,
    /// `/staff/{company_id}` (API v1 reference).
    #[default]
    Legacy,
    /// `/company/{company_id}/services` and so on (newer documentation).
    Company,
}

/// Everything the YClients source needs. `Debug` hides the secrets.
#[derive(Clone)]
pub struct YclientsConfig {
    /// API base, e.g. `https://api.yclients.com/api/v1`.
    pub base_url: Url,
    /// Partner token (`Authorization: Bearer <partner>`).
    pub partner_token: Secret,
    /// A user token given directly; used until the server rejects it.
    pub user_token: Option<Secret>,
    /// Login for `POST /auth` (with `password`); enables re-login on 401.
    pub login: Option<String>,
    /// Password for `POST /auth`.
    pub password: Option<Secret>,
    /// Companies to sync (one source per company, sharing one limiter).
    pub company_ids: Vec<u64>,
    /// The companies' time zone: a record's day is its local visit day.
    pub tz: Tz,
    /// `count` of `GET /records` pages. The maximum is not documented (200
    /// is safe; libraries use 200 to 1000).
    pub records_page_size: u32,
    /// `page_size` of the clients search, at most 200.
    pub clients_page_size: u32,
    /// Local days (ending today) fetched again at every delta run, besides
    /// `changed_after`.
    pub recheck_days: u32,
    /// Extra look-back for `changed_after`, because the zone the server
    /// reads it in is not documented. `None`: the company zone's UTC offset
    /// (covers a server that ignores the offset we send).
    pub changed_after_slack: Option<Duration>,
    /// Ask for deleted records too (`with_deleted=1`), so that deletions are
    /// stored as such.
    pub include_deleted: bool,
    /// What the server's limits are counted by: every source with the same
    /// key shares one request budget. `None`: `yclients:<API host>` (the
    /// limits are per IP address; set a key of your own, e.g. with the
    /// egress address, when several machines sync behind different ones).
    pub budget_key: Option<String>,
    /// How changed clients are found.
    pub clients_delta: ClientsDelta,
    /// When a clients delta becomes a full scan (to find deleted clients).
    pub clients_full_scan: FullScanSchedule,
    /// Which spelling of the catalogue paths to ask for.
    pub catalogue_paths: CataloguePaths,
    /// Timeout of one HTTP request.
    pub request_timeout: Duration,
}

impl fmt::Debug for YclientsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("YclientsConfig")
            .field("base_url", &self.base_url.as_str())
            .field("partner_token", &self.partner_token)
            .field("user_token", &self.user_token.as_ref().map(|_| "***"))
            .field("login", &self.login)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("company_ids", &self.company_ids)
            .field("tz", &self.tz)
            .field("records_page_size", &self.records_page_size)
            .field("clients_page_size", &self.clients_page_size)
            .field("recheck_days", &self.recheck_days)
            .field("changed_after_slack", &self.changed_after_slack)
            .field("include_deleted", &self.include_deleted)
            .field("budget_key", &self.budget_key)
            .field("clients_delta", &self.clients_delta)
            .field("clients_full_scan", &self.clients_full_scan)
            .field("catalogue_paths", &self.catalogue_paths)
            .field("request_timeout", &self.request_timeout)
            .finish_non_exhaustive()
    }
}

/// The same settings as read from a config file (TOML or JSON); every field
/// optional, environment variables fill the gaps (see
/// [`YclientsConfig::from_file_and_env`]).
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct YclientsFileConfig {
    /// See [`YclientsConfig::base_url`].
    pub base_url: Option<String>,
    /// See [`YclientsConfig::partner_token`].
    pub partner_token: Option<Secret>,
    /// See [`YclientsConfig::user_token`].
    pub user_token: Option<Secret>,
    /// See [`YclientsConfig::login`].
    pub login: Option<String>,
    /// See [`YclientsConfig::password`].
    pub password: Option<Secret>,
    /// See [`YclientsConfig::company_ids`].
    pub company_ids: Option<Vec<u64>>,
    /// IANA name, see [`YclientsConfig::tz`].
    pub tz: Option<String>,
    /// See [`YclientsConfig::records_page_size`].
    pub records_page_size: Option<u32>,
    /// See [`YclientsConfig::clients_page_size`].
    pub clients_page_size: Option<u32>,
    /// See [`YclientsConfig::recheck_days`].
    pub recheck_days: Option<u32>,
    /// See [`YclientsConfig::include_deleted`].
    pub include_deleted: Option<bool>,
    /// See [`YclientsConfig::budget_key`].
    pub budget_key: Option<String>,
    /// See [`YclientsConfig::clients_delta`].
    pub clients_delta: Option<ClientsDelta>,
    /// See [`FullScanSchedule::every_days`].
    pub clients_full_scan_every_days: Option<u32>,
    /// See [`FullScanSchedule::every_runs`].
    pub clients_full_scan_every_runs: Option<u32>,
    /// See [`YclientsConfig::catalogue_paths`].
    pub catalogue_paths: Option<CataloguePaths>,
    /// Seconds, see [`YclientsConfig::request_timeout`].
    pub request_timeout_secs: Option<u64>,
}

impl fmt::Debug for YclientsFileConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("YclientsFileConfig")
            .field("base_url", &self.base_url)
            .field("partner_token", &self.partner_token.as_ref().map(|_| "***"))
            .field("user_token", &self.user_token.as_ref().map(|_| "***"))
            .field("login", &self.login)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("company_ids", &self.company_ids)
            .finish_non_exhaustive()
    }
}

impl YclientsConfig {
    /// A config with the defaults: public base URL, Europe/Moscow, pages of
    /// 200, 3 re-check days, deleted records included, one budget per API
    /// host, client deltas by `changed_after` with a weekly full scan.
    pub fn new(partner_token: Secret, company_ids: Vec<u64>) -> Self {
        Self {
            base_url: Url::parse(DEFAULT_BASE_URL).expect("the default base URL is valid"),
            partner_token,
            user_token: None,
            login: None,
            password: None,
            company_ids,
            tz: chrono_tz::Europe::Moscow,
            records_page_size: 200,
            clients_page_size: MAX_CLIENTS_PAGE_SIZE,
            recheck_days: 3,
            changed_after_slack: None,
            include_deleted: true,
            budget_key: None,
            clients_delta: ClientsDelta::ChangedAfter,
            clients_full_scan: FullScanSchedule::default(),
            catalogue_paths: CataloguePaths::Legacy,
            request_timeout: Duration::from_secs(30),
        }
    }

    /// Sets the base URL (e.g. a simulator's).
    pub fn with_base_url(mut self, base_url: &str) -> sync_core::Result<Self> {
        self.base_url = parse_base_url(base_url)?;
        Ok(self)
    }

    /// Sets login and password for `POST /auth`.
    pub fn with_login(mut self, login: impl Into<String>, password: Secret) -> Self {
        self.login = Some(login.into());
        self.password = Some(password);
        self
    }

    /// Sets a user token to use directly.
    pub fn with_user_token(mut self, token: Secret) -> Self {
        self.user_token = Some(token);
        self
    }

    /// Reads the configuration from the process environment (names in
    /// [`env`]).
    pub fn from_env() -> sync_core::Result<Self> {
        Self::from_file_and_lookup(YclientsFileConfig::default(), |name| {
            std::env::var(name).ok()
        })
    }

    /// A file's settings, with environment variables for what the file
    /// leaves out (the file wins where both are set).
    pub fn from_file_and_env(file: YclientsFileConfig) -> sync_core::Result<Self> {
        Self::from_file_and_lookup(file, |name| std::env::var(name).ok())
    }

    /// Like [`YclientsConfig::from_file_and_env`] with `lookup` in place of
    /// the environment (for tests).
    pub fn from_file_and_lookup(
        file: YclientsFileConfig,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> sync_core::Result<Self> {
        let var = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let partner = file
            .partner_token
            .or_else(|| var(env::PARTNER_TOKEN).map(Secret::new))
            .ok_or_else(|| missing(env::PARTNER_TOKEN, "the partner token"))?;
        let company_ids = match file.company_ids {
            Some(ids) => ids,
            None => {
                let raw = var(env::COMPANY_ID)
                    .ok_or_else(|| missing(env::COMPANY_ID, "the company id"))?;
                parse_company_ids(&raw)?
            }
        };
        let mut config = Self::new(partner, company_ids);
        if let Some(base) = file.base_url.or_else(|| var(env::BASE_URL)) {
            config.base_url = parse_base_url(&base)?;
        }
        config.user_token = file
            .user_token
            .or_else(|| var(env::USER_TOKEN).map(Secret::new));
        config.login = file.login.or_else(|| var(env::LOGIN));
        config.password = file
            .password
            .or_else(|| var(env::PASSWORD).map(Secret::new));
        if let Some(tz) = file.tz.or_else(|| var(env::TZ)) {
            config.tz = tz.trim().parse().map_err(|_| {
                SyncError::invalid_input(format!("{}: unknown time zone {tz:?}", env::TZ))
            })?;
        }
        if let Some(n) = file.records_page_size {
            config.records_page_size = n;
        } else if let Some(v) = var(env::RECORDS_PAGE_SIZE) {
            config.records_page_size = parse_number(env::RECORDS_PAGE_SIZE, &v)?;
        }
        if let Some(n) = file.recheck_days {
            config.recheck_days = n;
        } else if let Some(v) = var(env::RECHECK_DAYS) {
            config.recheck_days = parse_number(env::RECHECK_DAYS, &v)?;
        }
        if let Some(n) = file.clients_page_size {
            config.clients_page_size = n;
        }
        if let Some(b) = file.include_deleted {
            config.include_deleted = b;
        }
        if let Some(key) = file.budget_key {
            config.budget_key = Some(key);
        }
        if let Some(d) = file.clients_delta {
            config.clients_delta = d;
        }
        if let Some(n) = file.clients_full_scan_every_days {
            config.clients_full_scan.every_days = Some(n);
        }
        if let Some(n) = file.clients_full_scan_every_runs {
            config.clients_full_scan.every_runs = Some(n);
        }
        if let Some(p) = file.catalogue_paths {
            config.catalogue_paths = p;
        }
        if let Some(s) = file.request_timeout_secs {
            config.request_timeout = Duration::from_secs(s);
        }
        config.validate()?;
        Ok(config)
    }

    /// Checks the settings; the error names what is wrong.
    pub fn validate(&self) -> sync_core::Result<()> {
        if self.company_ids.is_empty() {
            return Err(missing(env::COMPANY_ID, "the company id"));
        }
        self.validate_account()
    }

    /// Checks every setting but the companies (to list the account's
    /// companies first).
    pub fn validate_account(&self) -> sync_core::Result<()> {
        if self.partner_token.is_empty() {
            return Err(missing(env::PARTNER_TOKEN, "the partner token"));
        }
        match (&self.login, &self.password) {
            (Some(_), None) => return Err(missing(env::PASSWORD, "the password (a login is set)")),
            (None, Some(_)) => return Err(missing(env::LOGIN, "the login (a password is set)")),
            _ => {}
        }
        // Tokens go into the Authorization header: say which one cannot,
        // never what it holds.
        let header_safe = |s: &Secret| s.expose().bytes().all(|b| (0x20..0x7f).contains(&b));
        if !header_safe(&self.partner_token) {
            return Err(SyncError::invalid_input(format!(
                "{} holds characters a token cannot have (control characters or non-ASCII)",
                env::PARTNER_TOKEN
            )));
        }
        if self.user_token.as_ref().is_some_and(|t| !header_safe(t)) {
            return Err(SyncError::invalid_input(format!(
                "{} holds characters a token cannot have (control characters or non-ASCII)",
                env::USER_TOKEN
            )));
        }
        if self.user_token.is_none() && self.login.is_none() {
            return Err(SyncError::invalid_input(format!(
                "set {} or both {} and {}",
                env::USER_TOKEN,
                env::LOGIN,
                env::PASSWORD
            )));
        }
        if self.records_page_size == 0 {
            return Err(SyncError::invalid_input(format!(
                "{} must be at least 1",
                env::RECORDS_PAGE_SIZE
            )));
        }
        if self.clients_page_size == 0 || self.clients_page_size > MAX_CLIENTS_PAGE_SIZE {
            return Err(SyncError::invalid_input(format!(
                "clients page size must be between 1 and {MAX_CLIENTS_PAGE_SIZE}, got {}",
                self.clients_page_size
            )));
        }
        if self.request_timeout.is_zero() {
            return Err(SyncError::invalid_input("request timeout must be positive"));
        }
        let FullScanSchedule {
            every_days,
            every_runs,
        } = self.clients_full_scan;
        if every_days == Some(0) || every_runs == Some(0) {
            return Err(SyncError::invalid_input(
                "the clients full scan is every 1 or more days (or delta runs); leave it out for none",
            ));
        }
        Ok(())
    }

    /// Whether the source can log in again after a 401.
    pub fn can_login(&self) -> bool {
        self.login.is_some() && self.password.is_some()
    }

    /// The key of the request budget: [`YclientsConfig::budget_key`], or
    /// `yclients:<API host>`.
    pub fn budget_key(&self) -> String {
        self.budget_key
            .clone()
            .unwrap_or_else(|| default_budget_key(&self.base_url))
    }
}

/// The budget key of an API at `base_url` when none is configured:
/// `yclients:` and its host (and port).
pub fn default_budget_key(base_url: &Url) -> String {
    let host = base_url.host_str().unwrap_or("unknown");
    match base_url.port() {
        Some(port) => format!("yclients:{host}:{port}"),
        None => format!("yclients:{host}"),
    }
}

fn missing(var: &str, what: &str) -> SyncError {
    SyncError::invalid_input(format!("{what} is missing: set {var}"))
}

fn parse_number(var: &str, v: &str) -> sync_core::Result<u32> {
    v.trim()
        .parse()
        .map_err(|_| SyncError::invalid_input(format!("{var} must be a whole number, got {v:?}")))
}

fn parse_company_ids(raw: &str) -> sync_core::Result<Vec<u64>> {
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<u64>().map_err(|_| {
                SyncError::invalid_input(format!("{}: {s:?} is not a company id", env::COMPANY_ID))
            })
        })
        .collect::<sync_core::Result<Vec<_>>>()
        .and_then(|ids| {
            if ids.is_empty() {
                Err(missing(env::COMPANY_ID, "the company id"))
            } else {
                Ok(ids)
            }
        })
}

fn parse_base_url(raw: &str) -> sync_core::Result<Url> {
    let url = Url::parse(raw.trim()).map_err(|e| {
        SyncError::invalid_input(format!("{}: {raw:?} is not a URL: {e}", env::BASE_URL))
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(SyncError::invalid_input(format!(
            "{}: {raw:?} must be an http or https URL",
            env::BASE_URL
        )));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn from_environment_with_login() {
        let c = YclientsConfig::from_file_and_lookup(
            YclientsFileConfig::default(),
            lookup(&[
                (env::PARTNER_TOKEN, "partner-xyz"),
                (env::LOGIN, "me@example.test"),
                (env::PASSWORD, "pw-secret"),
                (env::COMPANY_ID, "101, 202"),
                (env::BASE_URL, "http://127.0.0.1:9/api/v1"),
                (env::TZ, "Asia/Yekaterinburg"),
                (env::RECHECK_DAYS, "5"),
            ]),
        )
        .unwrap();
        assert_eq!(c.company_ids, vec![101, 202]);
        assert_eq!(c.tz, chrono_tz::Asia::Yekaterinburg);
        assert_eq!(c.recheck_days, 5);
        assert!(c.can_login());
        assert_eq!(c.base_url.as_str(), "http://127.0.0.1:9/api/v1");
        let debug = format!("{c:?}");
        assert!(
            !debug.contains("partner-xyz") && !debug.contains("pw-secret"),
            "{debug}"
        );
    }

    #[test]
    fn missing_settings_are_named() {
        let err = |vars: &[(&str, &str)]| {
            YclientsConfig::from_file_and_lookup(YclientsFileConfig::default(), lookup(vars))
                .unwrap_err()
                .to_string()
        };
        assert!(err(&[]).contains(env::PARTNER_TOKEN));
        assert!(err(&[(env::PARTNER_TOKEN, "p")]).contains(env::COMPANY_ID));
        let e = err(&[(env::PARTNER_TOKEN, "p"), (env::COMPANY_ID, "1")]);
        assert!(e.contains(env::USER_TOKEN) && e.contains(env::LOGIN), "{e}");
        let e = err(&[
            (env::PARTNER_TOKEN, "p"),
            (env::COMPANY_ID, "1"),
            (env::LOGIN, "x"),
        ]);
        assert!(e.contains(env::PASSWORD), "{e}");
        let e = err(&[
            (env::PARTNER_TOKEN, "p"),
            (env::COMPANY_ID, "abc"),
            (env::USER_TOKEN, "u"),
        ]);
        assert!(e.contains("abc"), "{e}");
        let e = err(&[
            (env::PARTNER_TOKEN, "p"),
            (env::COMPANY_ID, "1"),
            (env::USER_TOKEN, "u"),
            (env::BASE_URL, "ftp://x"),
        ]);
        assert!(e.contains(env::BASE_URL), "{e}");
    }

    #[test]
    fn file_wins_over_environment() {
        let file: YclientsFileConfig = serde_json::from_value(serde_json::json!({
            "partner_token": "from-file",
            "user_token": "tok",
            "company_ids": [7],
            "records_page_size": 300,
            "budget_key": "yclients:office"
        }))
        .unwrap();
        assert!(!format!("{file:?}").contains("from-file"));
        let c = YclientsConfig::from_file_and_lookup(
            file,
            lookup(&[(env::PARTNER_TOKEN, "from-env"), (env::COMPANY_ID, "1")]),
        )
        .unwrap();
        assert_eq!(c.partner_token.expose(), "from-file");
        assert_eq!(c.company_ids, vec![7]);
        assert_eq!(c.records_page_size, 300);
        assert_eq!(c.budget_key(), "yclients:office");
        let mut bad = c.clone();
        bad.clients_page_size = 201;
        assert!(bad.validate().unwrap_err().to_string().contains("200"));
    }
}
