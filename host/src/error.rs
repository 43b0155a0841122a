//! The one taxonomy of failures, shared by the HTTP API, job records and (later) webhooks.
//!
//! Every rejection a user can see carries a stable [`ErrorCode`], the step that failed and a
//! message that says what to do next. HTTP errors are rendered as RFC 9457 problem documents;
//! job failures are stored in the job record with the same codes.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

pub use mediahost_api::{ErrorCode, JobError};

/// An error answered to an HTTP request as an RFC 9457 problem document.
#[derive(Debug)]
pub struct ApiError {
    pub code: ErrorCode,
    pub detail: String,
    /// Extra members of the problem document, such as `param` or `input`.
    pub extra: Map<String, Value>,
}

impl ApiError {
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        Self {
            code,
            detail: detail.into(),
            extra: Map::new(),
        }
    }

    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.extra.insert(key.to_owned(), value.into());
        self
    }

    pub fn internal(err: impl std::fmt::Display) -> Self {
        tracing::error!(error = %err, "internal error while answering a request");
        Self::new(ErrorCode::Internal, format!("internal error: {err}"))
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.detail)
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut problem = mediahost_api::Problem::new(self.code, self.detail);
        problem.extra = self.extra;
        let status =
            StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_string(&problem).expect("a problem document serializes");
        (
            status,
            [(header::CONTENT_TYPE, "application/problem+json")],
            body,
        )
            .into_response()
    }
}

impl From<JobError> for ApiError {
    /// A job failure answered to a request (a dry run): the same code, with the step.
    fn from(e: JobError) -> Self {
        ApiError::new(e.code, e.message).with("step", e.step)
    }
}
