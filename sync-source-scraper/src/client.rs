//! The HTTP side: one cookie session, the login form, and single page
//! fetches that say when the session is gone. One attempt per call: the
//! core retries, renews the session and paces.
//!
//! Redirects are never followed blindly: a redirect to the login page is how
//! the site says the session is gone (the other way is a 200 with the login
//! form), and a login succeeds with a redirect elsewhere. Other redirects
//! are followed, each hop a request of its own.

use std::time::{Duration, SystemTime};

use reqwest::header::{LOCATION, RETRY_AFTER};
use reqwest::{Response, StatusCode};
use sync_core::{parse_retry_after, FetchContext, Secret, SyncError};
use url::Url;

use crate::config::ScraperConfig;
use crate::error::ScrapeError;
use crate::site::Site;

/// Redirects followed for one page (other than to the login page).
const MAX_REDIRECTS: usize = 5;

/// A page fetched with a live session.
#[derive(Debug)]
pub(crate) enum Fetched {
    /// The page's HTML, complete.
    Page(String),
    /// 404 or 410: the thing is gone.
    NotFound,
}

/// The site, reached with one cookie session.
pub(crate) struct SiteClient {
    http: reqwest::Client,
    base_url: Url,
    username: String,
    password: Secret,
    site: Site,
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
    parse_retry_after(v, SystemTime::now())
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
            .connect_timeout(config.request_timeout.min(Duration::from_secs(10)))
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
            site,
        })
    }

    pub(crate) fn site(&self) -> &Site {
        &self.site
    }

    pub(crate) fn base_url(&self) -> &Url {
        &self.base_url
    }

    /// Logs in with the form: `GET` it, post back every hidden input with
    /// the credentials. Two requests (one when the site sends a logged-in
    /// user away from the form).
    pub(crate) async fn login(&self, ctx: &FetchContext) -> Result<(), SyncError> {
        let login_url = self.site.login_url(&self.base_url)?;
        ctx.request().await?;
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
                Some(to) if !self.site.is_login_location(&to) => Ok(()),
                _ => Err(ScrapeError::UnexpectedStatus {
                    status: status.as_u16(),
                    url: login_url,
                }
                .into()),
            };
        }
        let body = self.body_or_status_error(resp, &login_url).await?;
        let form = self.site.parse_login_form(&body, &login_url)?;

        let mut fields = form.hidden.clone();
        fields.push((form.username_field.clone(), self.username.clone()));
        fields.push((
            form.password_field.clone(),
            self.password.expose().to_string(),
        ));
        ctx.request().await?;
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
                _ => Ok(()),
            };
        }
        if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
            return Err(self.rejected(&format!("HTTP {}", status.as_u16())));
        }
        let body = self.body_or_status_error(resp, &form.action).await?;
        if self.site.is_login_page(&body) {
            let message = self
                .site
                .login_error_message(&body)
                .unwrap_or_else(|| "the login form was shown again".to_string());
            return Err(self.rejected(&message));
        }
        // A 200 without the form: the site showed the dashboard directly.
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

    /// The body of a 2xx answer, checked for truncation; an error for 429
    /// and 5xx and anything else unexpected.
    async fn body_or_status_error(&self, resp: Response, url: &Url) -> Result<String, SyncError> {
        let status = resp.status();
        if status == StatusCode::TOO_MANY_REQUESTS {
            return Err(ScrapeError::RateLimited {
                retry_after: retry_after(&resp),
            }
            .into());
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

    fn session_gone(&self, url: &Url) -> SyncError {
        SyncError::AuthExpired {
            message: format!("{url} showed the login page"),
        }
    }

    /// One page, with the session as it is: the login page (by redirect or
    /// in a 200) is [`SyncError::AuthExpired`]; other redirects are
    /// followed, each a request.
    pub(crate) async fn get(&self, ctx: &FetchContext, url: &Url) -> Result<Fetched, SyncError> {
        let mut current = url.clone();
        for _ in 0..=MAX_REDIRECTS {
            ctx.request().await?;
            tracing::debug!(url = %current, "GET");
            let resp = self
                .http
                .get(current.clone())
                .send()
                .await
                .map_err(|e| transport(&current, e))?;
            let status = resp.status();
            if status.is_redirection() {
                match location(&resp, &current) {
                    Some(to) if self.site.is_login_location(&to) => {
                        return Err(self.session_gone(url))
                    }
                    Some(to) => {
                        current = to;
                        continue;
                    }
                    None => {
                        return Err(ScrapeError::UnexpectedStatus {
                            status: status.as_u16(),
                            url: current,
                        }
                        .into())
                    }
                }
            }
            match status {
                StatusCode::NOT_FOUND | StatusCode::GONE => return Ok(Fetched::NotFound),
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                    return Err(self.session_gone(url))
                }
                _ => {}
            }
            let body = self.body_or_status_error(resp, &current).await?;
            if self.site.is_login_page(&body) {
                return Err(self.session_gone(url));
            }
            return Ok(Fetched::Page(body));
        }
        Err(ScrapeError::Invalid {
            url: url.clone(),
            what: format!("more than {MAX_REDIRECTS} redirects"),
        }
        .into())
    }
}
