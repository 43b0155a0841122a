//! mediahost's wire contract: every request a client sends and every answer, event and webhook
//! it receives, as Rust types with their OpenAPI schemas.
//!
//! The host's handlers and webhook outbox build these types, the `mediahost job` CLI and the
//! end-to-end tests read them, and `/openapi.json` is generated from them, so the three cannot
//! drift apart. A job looks the same wherever it appears: `GET /v1/jobs/{id}`, each event of
//! `GET /v1/jobs/{id}/events` and a webhook's `data` are all a [`Job`].
//!
//! Compatibility: answers may gain fields in a minor release; clients ignore fields they do not
//! know (nothing here denies unknown fields in answers). Requests deny unknown fields, so a
//! misspelt option is an error rather than silently ignored.

mod codes;
mod jobs;
mod presets;
mod service;

pub use codes::ErrorCode;
pub use jobs::*;
pub use presets::*;
pub use service::*;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// An RFC 9457 problem document: how every error of the API is answered
/// (`Content-Type: application/problem+json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem: `https://mediahost.dev/problems/<code in kebab-case>`.
    #[serde(rename = "type")]
    pub kind: String,
    /// A short summary of the kind of problem, the same for every occurrence of its code.
    pub title: String,
    /// The HTTP status of the answer.
    pub status: u16,
    /// What went wrong this time and what to do about it.
    pub detail: String,
    /// The stable machine-readable code.
    pub code: ErrorCode,
    /// Members some problems add, such as `param`, `input`, `preset` or `step`.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub extra: Map<String, Value>,
}

impl Problem {
    /// The problem document for `code` with `detail`.
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        let slug = code.as_str().to_ascii_lowercase().replace('_', "-");
        Self {
            kind: format!("https://mediahost.dev/problems/{slug}"),
            title: code.title().to_owned(),
            status: code.http_status(),
            detail: detail.into(),
            code,
            extra: Map::new(),
        }
    }
}

/// A JSON object whose members the contract does not fix (params, reports, media info).
pub type Object = Map<String, Value>;
