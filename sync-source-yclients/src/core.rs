//! The HTTP client shared by every YClients source: headers, the user
//! token, the envelope, errors. One attempt per call: retries, renewals and
//! pacing are the core's.

use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sync_core::{parse_retry_after, FetchContext, Secret, SyncError};

use crate::config::YclientsConfig;
use crate::error::Error;

/// The media type every request asks for.
pub const ACCEPT_V2: &str = "application/vnd.yclients.v2+json";

/// One request to the API.
#[derive(Clone, Debug)]
pub(crate) struct ApiRequest {
    /// Path under the base, e.g. `/records/101`.
    pub(crate) path: String,
    pub(crate) kind: RequestKind,
}

#[derive(Clone, Debug)]
pub(crate) enum RequestKind {
    Get(Vec<(&'static str, String)>),
    Post(Value),
}

impl ApiRequest {
    pub(crate) fn get(path: String, query: Vec<(&'static str, String)>) -> Self {
        Self {
            path,
            kind: RequestKind::Get(query),
        }
    }

    pub(crate) fn post(path: String, body: Value) -> Self {
        Self {
            path,
            kind: RequestKind::Post(body),
        }
    }

    /// Method, path and query, for messages (never credentials).
    fn describe(&self) -> String {
        match &self.kind {
            RequestKind::Get(q) if q.is_empty() => format!("GET {}", self.path),
            RequestKind::Get(q) => {
                let q: Vec<String> = q.iter().map(|(k, v)| format!("{k}={v}")).collect();
                format!("GET {}?{}", self.path, q.join("&"))
            }
            RequestKind::Post(body) => {
                let page = body
                    .get("page")
                    .map(|p| format!(" page {p}"))
                    .unwrap_or_default();
                format!("POST {}{page}", self.path)
            }
        }
    }
}

/// The `{success, data, meta}` envelope of a successful answer.
#[derive(Clone, Debug)]
pub(crate) struct Envelope {
    pub(crate) data: Value,
    pub(crate) meta: Value,
}

impl Envelope {
    /// `meta.total_count`, when the server gave it.
    pub(crate) fn total_count(&self) -> Option<u64> {
        let v = self.meta.get("total_count")?;
        v.as_u64()
            .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
    }
}

/// The YClients HTTP client: one per set of credentials, shared (in an
/// `Arc`) by the sources of every company synced with them.
///
/// It speaks the protocol only: one attempt per call, a 401 reported as
/// [`SyncError::AuthExpired`] (the core's session wrapper then calls
/// [`YclientsApi::login`] and repeats the request once), 429 as
/// [`SyncError::RateLimited`] with the `Retry-After` the server sent.
#[derive(Debug)]
pub struct YclientsApi {
    http: reqwest::Client,
    base: String,
    partner: Secret,
    login: Option<(String, Secret)>,
    /// The user token in use: the one given in the configuration until the
    /// server rejects it, then whatever a login gets.
    token: Mutex<Option<Secret>>,
    /// What the server said when it last rejected the token (redacted), for
    /// the error when the sync cannot log in again.
    rejected: Mutex<Option<String>>,
    budget_key: String,
}

impl YclientsApi {
    /// A client for `config` (its account settings validated first; the
    /// companies are not needed to talk to the API).
    pub fn new(config: &YclientsConfig) -> sync_core::Result<Self> {
        config.validate_account()?;
        let http = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .connect_timeout(config.request_timeout.min(Duration::from_secs(10)))
            .build()
            .map_err(|e| SyncError::fatal(format!("cannot build the HTTP client: {e}")))?;
        let login = match (&config.login, &config.password) {
            (Some(l), Some(p)) => Some((l.clone(), p.clone())),
            _ => None,
        };
        Ok(Self {
            http,
            base: config.base_url.as_str().trim_end_matches('/').to_string(),
            partner: config.partner_token.clone(),
            login,
            token: Mutex::new(config.user_token.clone()),
            rejected: Mutex::new(None),
            budget_key: config.budget_key(),
        })
    }

    /// Whether a 401 can be answered by logging in again.
    pub fn can_login(&self) -> bool {
        self.login.is_some()
    }

    /// What the server's limits are counted by.
    pub fn budget_key(&self) -> &str {
        &self.budget_key
    }

    /// Requests one login makes: one `POST /auth` when login and password
    /// are set, none with a user token alone.
    pub fn login_requests(&self) -> u32 {
        u32::from(self.login.is_some())
    }

    fn token(&self) -> std::sync::MutexGuard<'_, Option<Secret>> {
        self.token.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes sure a user token is at hand: nothing to do while one is
    /// (given, or from an earlier login); else `POST /auth` when login and
    /// password are set, or [`SyncError::Unauthenticated`] naming what to
    /// set.
    pub async fn login(&self, ctx: &FetchContext) -> sync_core::Result<()> {
        if self.token().is_some() {
            return Ok(());
        }
        let Some((login, password)) = &self.login else {
            let said = self
                .rejected
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone()
                .map(|m| format!(" ({m})"))
                .unwrap_or_default();
            return Err(SyncError::Unauthenticated {
                message: format!(
                    "the user token was rejected{said}; set {} and {} to let the sync log in",
                    crate::config::env::LOGIN,
                    crate::config::env::PASSWORD
                ),
            });
        };
        let request = ApiRequest::post(
            "/auth".into(),
            json!({"login": login, "password": password.expose()}),
        );
        let envelope = match self.send(ctx, &request, None).await {
            Ok(e) => e,
            // A rejected login is final: logging in again will not help.
            Err(Error::Unauthorized { message, .. })
            | Err(Error::Forbidden { message, .. })
            | Err(Error::Rejected { message, .. }) => {
                return Err(SyncError::Unauthenticated {
                    message: format!("POST /auth: login rejected: {message}"),
                })
            }
            Err(e) => return Err(e.into()),
        };
        let token = envelope
            .data
            .get("user_token")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| SyncError::bad_data("POST /auth: the answer has no data.user_token"))?;
        *self.token() = Some(Secret::new(token));
        tracing::debug!("logged in to YClients");
        Ok(())
    }

    /// Sends `request` once with the partner and user tokens. A 401 forgets
    /// the token and is [`SyncError::AuthExpired`].
    pub(crate) async fn call(
        &self,
        ctx: &FetchContext,
        request: &ApiRequest,
    ) -> sync_core::Result<Envelope> {
        self.exchange(ctx, request).await.map_err(SyncError::from)
    }

    /// Like [`YclientsApi::call`], with a 404 as `Ok(None)`: for endpoints
    /// that may be gone (the deprecated clients list).
    pub(crate) async fn call_unless_gone(
        &self,
        ctx: &FetchContext,
        request: &ApiRequest,
    ) -> sync_core::Result<Option<Envelope>> {
        match self.exchange(ctx, request).await {
            Ok(envelope) => Ok(Some(envelope)),
            Err(Error::NotFound { what, message }) => {
                tracing::debug!(request = %what, %message, "404 from YClients");
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn exchange(&self, ctx: &FetchContext, request: &ApiRequest) -> Result<Envelope, Error> {
        let token = self.token().clone().ok_or_else(|| Error::Expired {
            message: "no user token yet".into(),
        })?;
        match self.send(ctx, request, Some(&token)).await {
            Err(Error::Unauthorized { what, message }) => {
                let message = format!("{what}: 401 unauthorized: {message}");
                let mut current = self.token();
                // Another request may have logged in since this one left.
                if current.as_ref() == Some(&token) {
                    *current = None;
                    *self.rejected.lock().unwrap_or_else(|e| e.into_inner()) =
                        Some(message.clone());
                }
                Err(Error::Expired { message })
            }
            other => other,
        }
    }

    fn headers(&self, user: Option<&Secret>) -> Result<HeaderMap, String> {
        let mut h = HeaderMap::new();
        h.insert(ACCEPT, HeaderValue::from_static(ACCEPT_V2));
        h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let auth = match user {
            Some(u) => format!("Bearer {}, User {}", self.partner.expose(), u.expose()),
            None => format!("Bearer {}", self.partner.expose()),
        };
        let mut value = HeaderValue::from_str(&auth)
            .map_err(|_| "a token holds characters not allowed in a header".to_string())?;
        value.set_sensitive(true);
        h.insert(AUTHORIZATION, value);
        Ok(h)
    }

    /// Replaces every secret in `text` by `***` (a server might echo one).
    fn redact(&self, text: &str, user: Option<&Secret>) -> String {
        let mut out = text.to_string();
        let mut secrets = vec![self.partner.expose()];
        if let Some(u) = user {
            secrets.push(u.expose());
        }
        if let Some((_, p)) = &self.login {
            secrets.push(p.expose());
        }
        for s in secrets.into_iter().filter(|s| s.len() >= 4) {
            out = out.replace(s, "***");
        }
        out
    }

    /// One HTTP exchange, after the limiter said yes.
    async fn send(
        &self,
        ctx: &FetchContext,
        request: &ApiRequest,
        user: Option<&Secret>,
    ) -> Result<Envelope, Error> {
        let what = request.describe();
        let headers = self.headers(user).map_err(|message| Error::Unexpected {
            what: what.clone(),
            message,
        })?;
        let url = format!("{}{}", self.base, request.path);
        let builder = match &request.kind {
            RequestKind::Get(q) => self.http.get(&url).query(q),
            RequestKind::Post(body) => self.http.post(&url).json(body),
        }
        .headers(headers);
        let req = builder.build().map_err(|source| Error::Build {
            what: what.clone(),
            source,
        })?;
        ctx.request().await.map_err(Error::Budget)?;
        let resp = self
            .http
            .execute(req)
            .await
            .map_err(|source| Error::Transport {
                // The host is named: a wrong base URL shows at once. The
                // query (it may hold ids) stays as `what` gives it.
                what: format!("{what} at {}", self.base),
                timeout: source.is_timeout(),
                source: source.without_url(),
            })?;
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()));
        let body = resp.bytes().await.map_err(|source| Error::Transport {
            what: what.clone(),
            timeout: source.is_timeout(),
            source: source.without_url(),
        })?;
        if status == StatusCode::TOO_MANY_REQUESTS {
            tracing::debug!(request = %what, ?retry_after, "429 from YClients");
            return Err(Error::RateLimited { retry_after });
        }
        if status.is_success() {
            return parse_envelope(&what, &body, |m| self.redact(m, user));
        }
        let message = self.redact(&error_message(&body), user);
        let code = status.as_u16();
        Err(match code {
            401 => Error::Unauthorized { what, message },
            402 | 403 => Error::Forbidden {
                what,
                status: code,
                message,
            },
            404 => Error::NotFound { what, message },
            408 => Error::Server { what, status: code },
            _ if status.is_server_error() => Error::Server { what, status: code },
            _ if status.is_client_error() => Error::Rejected {
                what,
                status: code,
                message,
            },
            _ => Error::Unexpected {
                what,
                message: format!("status {code}"),
            },
        })
    }
}

/// `meta.message` plus `meta.errors`, or the start of a non-JSON body.
fn error_message(body: &[u8]) -> String {
    match serde_json::from_slice::<Value>(body) {
        Ok(v) => {
            let meta = &v["meta"];
            let mut m = meta
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("no message")
                .to_string();
            if let Some(errors) = meta.get("errors").filter(|e| !e.is_null()) {
                m.push_str(&format!(" {}", shorten(&errors.to_string(), 400)));
            }
            m
        }
        Err(_) => {
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            if text.is_empty() {
                "empty body".into()
            } else {
                format!("non-JSON body: {}", shorten(text, 200))
            }
        }
    }
}

fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let cut: String = s.chars().take(max).collect();
        format!("{cut}…")
    }
}

/// Parses a 2xx body. A body that ends early is a flaky link (retry); any
/// other JSON error is bad data; `success: false` is bad data too.
fn parse_envelope(
    what: &str,
    body: &[u8],
    redact: impl Fn(&str) -> String,
) -> Result<Envelope, Error> {
    let value: Value = serde_json::from_slice(body).map_err(|source| {
        if source.is_eof() {
            Error::Truncated {
                what: what.to_string(),
                source,
            }
        } else {
            Error::Malformed {
                what: what.to_string(),
                source,
            }
        }
    })?;
    let Value::Object(mut map) = value else {
        return Err(Error::Unexpected {
            what: what.to_string(),
            message: "the body is not a JSON object".into(),
        });
    };
    let success = map.get("success").and_then(Value::as_bool).unwrap_or(true);
    let meta = map.remove("meta").unwrap_or(Value::Null);
    if !success {
        let message = meta
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("success is false")
            .to_string();
        return Err(Error::Unexpected {
            what: what.to_string(),
            message: redact(&message),
        });
    }
    Ok(Envelope {
        data: map.remove("data").unwrap_or(Value::Null),
        meta,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_errors_are_classified() {
        let id = |s: &str| s.to_string();
        assert!(matches!(
            parse_envelope("x", br#"{"success": true, "data": [1, 2"#, id),
            Err(Error::Truncated { .. })
        ));
        assert!(matches!(
            parse_envelope("x", b"<html>oops</html>", id),
            Err(Error::Malformed { .. })
        ));
        assert!(matches!(
            parse_envelope(
                "x",
                br#"{"success": false, "data": null, "meta": {"message": "no"}}"#,
                id
            ),
            Err(Error::Unexpected { .. })
        ));
        assert!(matches!(
            parse_envelope("x", b"[]", id),
            Err(Error::Unexpected { .. })
        ));
        let ok = parse_envelope(
            "x",
            br#"{"success": true, "data": [], "meta": {"total_count": "12"}}"#,
            id,
        )
        .unwrap();
        assert_eq!(ok.total_count(), Some(12));
        let e: SyncError = Error::Truncated {
            what: "x".into(),
            source: serde_json::from_slice::<Value>(b"[").unwrap_err(),
        }
        .into();
        assert!(e.is_retryable());
    }

    #[test]
    fn error_messages_carry_meta() {
        let m = error_message(br#"{"success":false,"data":null,"meta":{"message":"Bad","errors":{"count":["too big"]}}}"#);
        assert_eq!(m, r#"Bad {"count":["too big"]}"#);
        assert_eq!(error_message(b""), "empty body");
        assert!(error_message(b"<html>503</html>").starts_with("non-JSON body"));
    }
}
