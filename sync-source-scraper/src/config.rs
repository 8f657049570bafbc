//! Configuration of the scraper source.

use std::time::Duration;

use chrono_tz::Tz;
use sync_core::{RateLimits, RetryPolicy, Secret, SyncError};
use url::Url;

use crate::site::Selectors;

/// Environment variable with the site's base URL.
pub const ENV_BASE_URL: &str = "KENNEL_BASE_URL";
/// Environment variable with the staff login.
pub const ENV_USERNAME: &str = "KENNEL_USERNAME";
/// Environment variable with the password.
pub const ENV_PASSWORD: &str = "KENNEL_PASSWORD";
/// Environment variable with the kennel's IANA time zone.
pub const ENV_TZ: &str = "KENNEL_TZ";
/// Optional environment variable: session max age in seconds.
pub const ENV_SESSION_MAX_AGE_SECS: &str = "KENNEL_SESSION_MAX_AGE_SECS";

/// How to reach and read the booking site.
///
/// `Debug` shows no secret: the password is a [`Secret`], and
/// [`ScraperConfig::validate`] refuses a base URL that carries credentials.
#[derive(Clone, Debug)]
pub struct ScraperConfig {
    /// Where the site lives, e.g. `https://kennel.example.com/`.
    pub base_url: Url,
    /// The staff login.
    pub username: String,
    /// The password.
    pub password: Secret,
    /// The kennel's time zone: pages show local times, and a boarding
    /// belongs to its local check-in day.
    pub tz: Tz,
    /// Log in again before a batch when the session is older than this. The
    /// site ends sessions after about 6 minutes.
    pub session_max_age: Duration,
    /// Pacing of requests (through the core limiter).
    pub limits: RateLimits,
    /// Time limit of one request.
    pub request_timeout: Duration,
    /// On a first fetch of days (not a re-check), skip the detail page of
    /// an appointment whose list entry is unchanged when its stored copy
    /// belongs to another batch's day, or when this source read the page
    /// less than [`crate::REUSE_WITHIN`] ago (weeks overlap). Re-checks
    /// (`--force`, a delta's re-check by age) always read every detail page,
    /// since price, notes and pet details change there only. Off: every
    /// listed detail page is read on every fetch.
    pub reuse_unchanged: bool,
    /// Paths, selectors and word lists of the site (`[kennel.selectors]`).
    pub selectors: Selectors,
}

impl ScraperConfig {
    /// The limits the in-house importer kept: 1.5 s between requests, at
    /// most 30 a minute.
    pub fn polite_limits() -> RateLimits {
        RateLimits::new(None, Some(30)).with_min_spacing(Duration::from_millis(1500))
    }

    /// The retries the in-house importer made: after about 5 s, then
    /// longer, up to 5 minutes. The engine's policy for this source (the
    /// source itself never retries).
    pub fn polite_retry() -> RetryPolicy {
        RetryPolicy {
            max_retries: 3,
            initial_delay: Duration::from_secs(5),
            max_delay: Duration::from_secs(300),
            max_elapsed: Duration::from_secs(7 * 60),
            ..RetryPolicy::default()
        }
    }

    /// A configuration with the polite defaults: session max age 5 min 30 s,
    /// [`Self::polite_limits`], 30 s request timeout, unchanged rows reused,
    /// the real site's [`Selectors`].
    pub fn new(base_url: Url, username: impl Into<String>, password: Secret, tz: Tz) -> Self {
        Self {
            base_url,
            username: username.into(),
            password,
            tz,
            session_max_age: Duration::from_secs(5 * 60 + 30),
            limits: Self::polite_limits(),
            request_timeout: Duration::from_secs(30),
            reuse_unchanged: true,
            selectors: Selectors::default(),
        }
    }

    /// Reads `KENNEL_BASE_URL`, `KENNEL_USERNAME`, `KENNEL_PASSWORD`,
    /// `KENNEL_TZ` and optionally `KENNEL_SESSION_MAX_AGE_SECS` from the
    /// environment; an error names the variable that is missing or wrong.
    pub fn from_env() -> Result<Self, SyncError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Like [`Self::from_env`], reading variables through `get`.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, SyncError> {
        let required = |name: &str| {
            get(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
                .ok_or_else(|| {
                    SyncError::invalid_input(format!("environment variable {name} is not set"))
                })
        };
        let base_url = required(ENV_BASE_URL)?;
        let base_url = Url::parse(&base_url)
            .map_err(|e| SyncError::invalid_input(format!("{ENV_BASE_URL} is not a URL ({e})")))?;
        let username = required(ENV_USERNAME)?;
        // The password is taken as is (spaces may be part of it).
        let password = get(ENV_PASSWORD)
            .filter(|p| !p.is_empty())
            .map(Secret::new)
            .ok_or_else(|| {
                SyncError::invalid_input(format!("environment variable {ENV_PASSWORD} is not set"))
            })?;
        let tz_name = required(ENV_TZ)?;
        let tz: Tz = tz_name.parse().map_err(|_| {
            SyncError::invalid_input(format!("{ENV_TZ} `{tz_name}` is not an IANA time zone"))
        })?;
        let mut config = Self::new(base_url, username, password, tz);
        if let Some(secs) = get(ENV_SESSION_MAX_AGE_SECS).filter(|v| !v.trim().is_empty()) {
            let secs: u64 = secs.trim().parse().map_err(|_| {
                SyncError::invalid_input(format!(
                    "{ENV_SESSION_MAX_AGE_SECS} `{secs}` is not a number of seconds"
                ))
            })?;
            config.session_max_age = Duration::from_secs(secs);
        }
        config.validate()?;
        Ok(config)
    }

    /// Checks the settings; an error names the one that is wrong.
    pub fn validate(&self) -> Result<(), SyncError> {
        let url = &self.base_url;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(SyncError::invalid_input(format!(
                "base URL must be http(s) with a host: {url}"
            )));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(SyncError::invalid_input(
                "base URL must not contain credentials; set the username and password separately",
            ));
        }
        if self.username.trim().is_empty() {
            return Err(SyncError::invalid_input("username is empty"));
        }
        if self.password.is_empty() {
            return Err(SyncError::invalid_input("password is empty"));
        }
        if self.session_max_age.is_zero() {
            return Err(SyncError::invalid_input(
                "session max age must be more than zero",
            ));
        }
        if self.request_timeout.is_zero() {
            return Err(SyncError::invalid_input(
                "request timeout must be more than zero",
            ));
        }
        self.selectors.check()
    }

    /// `kennel:<host>` (with the port when the URL names one).
    pub fn source_name(&self) -> String {
        let host = self.base_url.host_str().unwrap_or("unknown");
        match self.base_url.port() {
            Some(port) => format!("kennel:{host}:{port}"),
            None => format!("kennel:{host}"),
        }
    }
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
        move |k| map.get(k).cloned()
    }

    const FULL: &[(&str, &str)] = &[
        (ENV_BASE_URL, "https://kennel.example.com/"),
        (ENV_USERNAME, "staff"),
        (ENV_PASSWORD, "s3cret pass"),
        (ENV_TZ, "Europe/Berlin"),
    ];

    #[test]
    fn reads_every_variable_and_hides_the_password() {
        let c = ScraperConfig::from_lookup(lookup(FULL)).unwrap();
        assert_eq!(c.base_url.as_str(), "https://kennel.example.com/");
        assert_eq!(c.username, "staff");
        assert_eq!(c.password.expose(), "s3cret pass");
        assert_eq!(c.tz, chrono_tz::Europe::Berlin);
        assert_eq!(c.session_max_age, Duration::from_secs(330));
        assert_eq!(c.limits.min_spacing, Some(Duration::from_millis(1500)));
        assert_eq!(c.limits.per_minute, Some(30));
        assert_eq!(c.source_name(), "kennel:kennel.example.com");
        assert!(!format!("{c:?}").contains("s3cret"));
    }

    #[test]
    fn missing_or_bad_variables_are_named() {
        for missing in [ENV_BASE_URL, ENV_USERNAME, ENV_PASSWORD, ENV_TZ] {
            let vars: Vec<_> = FULL
                .iter()
                .copied()
                .filter(|(k, _)| *k != missing)
                .collect();
            let e = ScraperConfig::from_lookup(lookup(&vars)).unwrap_err();
            assert!(e.to_string().contains(missing), "{e}");
            assert_eq!(e.kind(), "invalid_input");
        }
        let mut vars = FULL.to_vec();
        vars[3] = (ENV_TZ, "Mars/Olympus");
        let e = ScraperConfig::from_lookup(lookup(&vars)).unwrap_err();
        assert!(
            e.to_string().contains("KENNEL_TZ") && e.to_string().contains("Mars/Olympus"),
            "{e}"
        );
        let mut vars = FULL.to_vec();
        vars[0] = (ENV_BASE_URL, "https://u:hunter2@kennel.example.com/");
        let e = ScraperConfig::from_lookup(lookup(&vars)).unwrap_err();
        assert!(
            !e.to_string().contains("hunter2") && e.to_string().contains("credentials"),
            "{e}"
        );
        vars.push((ENV_SESSION_MAX_AGE_SECS, "soon"));
        vars[0] = FULL[0];
        let e = ScraperConfig::from_lookup(lookup(&vars)).unwrap_err();
        assert!(e.to_string().contains(ENV_SESSION_MAX_AGE_SECS), "{e}");
    }

    #[test]
    fn port_is_part_of_the_source_name() {
        let mut vars = FULL.to_vec();
        vars[0] = (ENV_BASE_URL, "http://127.0.0.1:8080");
        vars.push((ENV_SESSION_MAX_AGE_SECS, "60"));
        let c = ScraperConfig::from_lookup(lookup(&vars)).unwrap();
        assert_eq!(c.source_name(), "kennel:127.0.0.1:8080");
        assert_eq!(c.session_max_age, Duration::from_secs(60));
    }
}
