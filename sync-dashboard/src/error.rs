//! What goes wrong answering a request, as an HTML page or a JSON body.

use axum::http::{StatusCode, Uri};
use axum::response::{Html, IntoResponse, Json, Response};
use sync_core::SyncError;

use crate::html;

/// Why a request has no answer.
#[derive(Debug)]
pub(crate) enum Failure {
    /// A parameter is malformed (400).
    BadRequest(String),
    /// Nothing by that name (404).
    NotFound(String),
    /// The store could not answer (500).
    Store(String),
}

impl Failure {
    fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn message(&self) -> &str {
        match self {
            Self::BadRequest(m) | Self::NotFound(m) | Self::Store(m) => m,
        }
    }
}

impl From<SyncError> for Failure {
    fn from(e: SyncError) -> Self {
        Self::Store(format!("the store could not answer: {e}"))
    }
}

/// A failure shown as an HTML page.
#[derive(Debug)]
pub(crate) struct PageError(pub(crate) Failure);

impl From<Failure> for PageError {
    fn from(f: Failure) -> Self {
        Self(f)
    }
}

impl From<SyncError> for PageError {
    fn from(e: SyncError) -> Self {
        Self(e.into())
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let status = self.0.status();
        let body = format!(
            "<h1>{} {}</h1><p class=\"error\">{}</p><p><a href=\"/\">Back to the overview</a></p>",
            status.as_u16(),
            html::esc(status.canonical_reason().unwrap_or("")),
            html::esc(self.0.message())
        );
        (status, Html(html::layout("Error", &body))).into_response()
    }
}

/// A failure as a JSON body: `{"error": "...", "status": 400}`.
#[derive(Debug)]
pub(crate) struct ApiError(pub(crate) Failure);

impl From<Failure> for ApiError {
    fn from(f: Failure) -> Self {
        Self(f)
    }
}

impl From<SyncError> for ApiError {
    fn from(e: SyncError) -> Self {
        Self(e.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.0.status();
        let body = serde_json::json!({ "error": self.0.message(), "status": status.as_u16() });
        (status, Json(body)).into_response()
    }
}

/// Any other path: a 404 page, or a JSON 404 under `/api`.
pub(crate) async fn not_found(uri: Uri) -> Response {
    let failure = Failure::NotFound(format!("no page at {}", uri.path()));
    if uri.path().starts_with("/api/") || uri.path() == "/api" {
        ApiError(failure).into_response()
    } else {
        PageError(failure).into_response()
    }
}
