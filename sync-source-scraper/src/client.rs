//! The HTTP side: one cookie session, logins, and page fetches that notice
//! an expired session, log in again once and repeat the request.
//!
//! Redirects are never followed blindly: a redirect to the login page is how
//! the site says the session is gone (the other way is a 200 with the login
//! form), and a login succeeds with a redirect elsewhere.

use std::sync::Mutex;
use std::time::Duration;

use reqwest::header::{LOCATION, RETRY_AFTER};
use reqwest::{Response, StatusCode};
use sync_core::{FetchContext, RetryPolicy, Secret, SyncError};
use tokio::time::Instant;
use url::Url;

use crate::config::ScraperConfig;
use crate::error::ScrapeError;
use crate::site::Site;

/// Redirects followed for one page (other than to the login page).
const MAX_REDIRECTS: usize = 5;
/// Logins one request may need when its session keeps expiring.
const MAX_LOGINS_PER_REQUEST: usize = 3;

/// A page fetched with a live session.
#[derive(Debug)]
pub(crate) enum Fetched {
    /// The page's HTML, complete.
    Page(String),
    /// 404 or 410: the thing is gone.
    NotFound,
}

/// One answer, before session handling.
#[derive(Debug)]
enum Answer {
    Body(String),
    Login,
    NotFound,
    Redirect(Url),
}

#[derive(Debug, Default)]
struct Session {
    /// Bumped at each successful login, so that tasks which saw the same
    /// expired session log in only once between them.
    generation: u64,
    logged_in_at: Option<Instant>,
}

/// The site, reached with one cookie session.
pub(crate) struct SiteClient {
    http: reqwest::Client,
    base_url: Url,
    username: String,
    password: Secret,
    retry: RetryPolicy,
    session_max_age: Duration,
    site: Site,
    login_lock: tokio::sync::Mutex<()>,
    session: Mutex<Session>,
}

impl std::fmt::Debug for SiteClient {
    // Never prints the cookie jar or the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SiteClient")
            .field("base_url", &self.base_url.as_str())
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

fn transport(url: &Url, e: reqwest::Error) -> SyncError {
    ScrapeError::Transport {
        url: url.clone(),
        timeout: e.is_timeout(),
        source: e.without_url(),
    }
    .into()
}

fn retry_after(resp: &Response) -> Option<Duration> {
    let v = resp.headers().get(RETRY_AFTER)?.to_str().ok()?;
    v.trim().parse::<u64>().ok().map(Duration::from_secs)
}

fn location(resp: &Response, url: &Url) -> Option<Url> {
    let l = resp.headers().get(LOCATION)?.to_str().ok()?;
    url.join(l).ok()
}

impl SiteClient {
    pub(crate) fn new(config: &ScraperConfig) -> Result<Self, SyncError> {
        let site = Site::new(config.selectors.clone())?;
        let http = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(config.request_timeout)
            .user_agent(concat!("sync-source-scraper/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| SyncError::Fatal {
                message: "cannot build the HTTP client".into(),
                source: Some(Box::new(e)),
            })?;
        Ok(Self {
            http,
            base_url: config.base_url.clone(),
            username: config.username.clone(),
            password: config.password.clone(),
            retry: config.retry.clone(),
            session_max_age: config.session_max_age,
            site,
            login_lock: tokio::sync::Mutex::new(()),
            session: Mutex::new(Session::default()),
        })
    }

    pub(crate) fn site(&self) -> &Site {
        &self.site
    }

    pub(crate) fn base_url(&self) -> &Url {
        &self.base_url
    }

    fn session(&self) -> std::sync::MutexGuard<'_, Session> {
        self.session.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn generation(&self) -> u64 {
        self.session().generation
    }

    /// Whether there is no session or it is older than the max age.
    pub(crate) fn session_is_stale(&self) -> bool {
        self.session()
            .logged_in_at
            .is_none_or(|t| t.elapsed() >= self.session_max_age)
    }

    /// Logs in now.
    pub(crate) async fn login(&self, ctx: &FetchContext) -> Result<(), SyncError> {
        self.login_unless_renewed(ctx, None).await
    }

    /// Logs in when the session is stale (before a batch).
    pub(crate) async fn ensure_fresh(&self, ctx: &FetchContext) -> Result<(), SyncError> {
        if self.session_is_stale() {
            let seen = self.generation();
            tracing::debug!(user = %self.username, "session missing or old; logging in");
            self.login_unless_renewed(ctx, Some(seen)).await?;
        }
        Ok(())
    }

    /// Logs in, unless `seen` is given and another task has logged in since
    /// that generation (one login per expired session, however many tasks
    /// noticed it).
    async fn login_unless_renewed(
        &self,
        ctx: &FetchContext,
        seen: Option<u64>,
    ) -> Result<(), SyncError> {
        let _guard = self.login_lock.lock().await;
        if seen.is_some_and(|g| g != self.generation()) {
            return Ok(());
        }
        self.retry.retry(ctx, || self.login_once(ctx)).await
    }

    async fn login_once(&self, ctx: &FetchContext) -> Result<(), SyncError> {
        let login_url = self.site.login_url(&self.base_url)?;
        ctx.acquire().await?;
        tracing::debug!(url = %login_url, "GET login form");
        let resp = self
            .http
            .get(login_url.clone())
            .send()
            .await
            .map_err(|e| transport(&login_url, e))?;
        let status = resp.status();
        if status.is_redirection() {
            // Some sites send a logged-in user away from the form.
            return match location(&resp, &login_url) {
                Some(to) if !self.site.is_login_location(&to) => {
                    self.logged_in();
                    Ok(())
                }
                _ => Err(ScrapeError::UnexpectedStatus {
                    status: status.as_u16(),
                    url: login_url,
                }
                .into()),
            };
        }
        let body = self.body_or_status_error(ctx, resp, &login_url).await?;
        let form = self.site.parse_login_form(&body, &login_url)?;

        let mut fields = form.hidden.clone();
        fields.push((form.username_field.clone(), self.username.clone()));
        fields.push((
            form.password_field.clone(),
            self.password.expose().to_string(),
        ));
        ctx.acquire().await?;
        tracing::debug!(url = %form.action, user = %self.username, "POST login form");
        let resp = self
            .http
            .post(form.action.clone())
            .form(&fields)
            .send()
            .await
            .map_err(|e| transport(&form.action, e))?;
        let status = resp.status();
        if status.is_redirection() {
            return match location(&resp, &form.action) {
                Some(to) if self.site.is_login_location(&to) => {
                    Err(self.rejected("the site sent us back to the login page"))
                }
                _ => {
                    self.logged_in();
                    Ok(())
                }
            };
        }
        if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
            return Err(self.rejected(&format!("HTTP {}", status.as_u16())));
        }
        let body = self.body_or_status_error(ctx, resp, &form.action).await?;
        if self.site.is_login_page(&body) {
            let message = self
                .site
                .login_error_message(&body)
                .unwrap_or_else(|| "the login form was shown again".to_string());
            return Err(self.rejected(&message));
        }
        // A 200 without the form: the site showed the dashboard directly.
        self.logged_in();
        Ok(())
    }

    fn rejected(&self, site_message: &str) -> SyncError {
        let password = self.password.expose();
        let message = if password.is_empty() {
            site_message.to_string()
        } else {
            site_message.replace(password, "***")
        };
        ScrapeError::LoginRejected {
            user: self.username.clone(),
            message,
        }
        .into()
    }

    fn logged_in(&self) {
        let mut s = self.session();
        s.generation += 1;
        s.logged_in_at = Some(Instant::now());
        tracing::info!(user = %self.username, generation = s.generation, "logged in");
    }

    /// The body of a 2xx answer, checked for truncation; an error for 429
    /// and 5xx and anything else unexpected.
    async fn body_or_status_error(
        &self,
        ctx: &FetchContext,
        resp: Response,
        url: &Url,
    ) -> Result<String, SyncError> {
        let status = resp.status();
        if status == StatusCode::TOO_MANY_REQUESTS {
            let retry_after = retry_after(&resp);
            ctx.rate_limited(retry_after);
            return Err(ScrapeError::RateLimited { retry_after }.into());
        }
        if status.is_server_error() {
            return Err(ScrapeError::Server {
                status: status.as_u16(),
                url: url.clone(),
            }
            .into());
        }
        if !status.is_success() {
            return Err(ScrapeError::UnexpectedStatus {
                status: status.as_u16(),
                url: url.clone(),
            }
            .into());
        }
        let body = resp.text().await.map_err(|e| transport(url, e))?;
        self.site.check_complete(&body, url)?;
        Ok(body)
    }

    /// One GET, classified.
    async fn get_once(&self, ctx: &FetchContext, url: &Url) -> Result<Answer, SyncError> {
        ctx.acquire().await?;
        tracing::debug!(url = %url, "GET");
        let resp = self
            .http
            .get(url.clone())
            .send()
            .await
            .map_err(|e| transport(url, e))?;
        let status = resp.status();
        if status.is_redirection() {
            return match location(&resp, url) {
                Some(to) if self.site.is_login_location(&to) => Ok(Answer::Login),
                Some(to) => Ok(Answer::Redirect(to)),
                None => Err(ScrapeError::UnexpectedStatus {
                    status: status.as_u16(),
                    url: url.clone(),
                }
                .into()),
            };
        }
        match status {
            StatusCode::NOT_FOUND | StatusCode::GONE => return Ok(Answer::NotFound),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => return Ok(Answer::Login),
            _ => {}
        }
        let body = self.body_or_status_error(ctx, resp, url).await?;
        if self.site.is_login_page(&body) {
            return Ok(Answer::Login);
        }
        Ok(Answer::Body(body))
    }

    fn session_lost(&self, url: &Url) -> SyncError {
        ScrapeError::SessionLost {
            url: url.clone(),
            user: self.username.clone(),
        }
        .into()
    }

    /// A GET with retries (5xx, timeouts, truncation, 429) and redirects
    /// followed, except to the login page.
    async fn get_answer(&self, ctx: &FetchContext, url: &Url) -> Result<Answer, SyncError> {
        let mut current = url.clone();
        for _ in 0..=MAX_REDIRECTS {
            let target = current.clone();
            match self
                .retry
                .retry(ctx, || self.get_once(ctx, &target))
                .await?
            {
                Answer::Redirect(to) => current = to,
                other => return Ok(other),
            }
        }
        Err(ScrapeError::Invalid {
            url: url.clone(),
            what: format!("more than {MAX_REDIRECTS} redirects"),
        }
        .into())
    }

    /// A page with a live session: when the site shows the login page (by
    /// redirect or in a 200), logs in again and repeats the request. A login
    /// page as the very first answer after a fresh login means the site does
    /// not keep the session: an authentication error. A session that ends
    /// again later (while a temporary error is retried) is renewed again, at
    /// most [`MAX_LOGINS_PER_REQUEST`] times.
    pub(crate) async fn get(&self, ctx: &FetchContext, url: &Url) -> Result<Fetched, SyncError> {
        let mut seen = self.generation();
        let mut answer = self.get_answer(ctx, url).await?;
        let mut logins = 0;
        while matches!(answer, Answer::Login) {
            if logins == MAX_LOGINS_PER_REQUEST {
                return Err(self.session_lost(url));
            }
            logins += 1;
            tracing::info!(url = %url, logins, "session expired; logging in again");
            self.login_unless_renewed(ctx, Some(seen)).await?;
            seen = self.generation();
            answer = match self.get_once(ctx, url).await {
                Ok(Answer::Login) => return Err(self.session_lost(url)),
                Err(e) if !e.is_retryable() => return Err(e),
                Ok(Answer::Redirect(_)) | Err(_) => self.get_answer(ctx, url).await?,
                Ok(other) => other,
            };
        }
        match answer {
            Answer::Body(body) => Ok(Fetched::Page(body)),
            Answer::NotFound => Ok(Fetched::NotFound),
            // get_answer follows redirects and only returns the others.
            Answer::Login | Answer::Redirect(_) => Err(ScrapeError::Invalid {
                url: url.clone(),
                what: "unexpected redirect".into(),
            }
            .into()),
        }
    }
}
