//! The HTTP API (axum): thin handlers over the registry, the job store, the queue and storage.
//!
//! Which routes need what: the job API (jobs, uploads, preset listings, dry runs) needs an API
//! token when `--api-tokens` is set; publishing and yanking need the admin token; the signed
//! object URLs carry their own signature; `/healthz`, `/readyz` and `/metrics` are open.

mod auth;
mod jobs;
mod objects;
mod presets;
mod serve;
mod uploads;

pub use auth::ApiTokens;
pub use serve::serve;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::middleware::from_fn_with_state;
use axum::response::IntoResponse;
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::Duration;

use crate::error::{ApiError, ErrorCode};
use crate::ffmpeg::Tools;
use crate::job::JobStore;
use crate::metrics::Metrics;
use crate::preset::catalog::{Catalog, MAX_COMPONENT_BYTES};
use crate::preset::runtime::Runtime;
use crate::queue::Queue;
use crate::storage::Storage;

pub struct AppState {
    pub catalog: Arc<Catalog>,
    pub runtime: Arc<Runtime>,
    pub tools: Tools,
    /// Where dry runs download inputs to probe them.
    pub scratch_root: PathBuf,
    /// The bearer token publishing and yanking need.
    pub admin_token: String,
    /// Attempts a job gets before a retryable failure makes it DEAD.
    pub max_attempts: u32,
    /// The most bytes one upload may carry (`--max-upload-mib`).
    pub max_upload_bytes: u64,
    pub metrics: Metrics,
    /// Every change of a job's state (accept, cancel).
    pub lifecycle: crate::lifecycle::Lifecycle,
    pub storage: Arc<Storage>,
    pub jobs: JobStore,
    pub queue: Queue,
    /// What the host found missing at start (e.g. a containment mechanism), shown in /healthz.
    pub warnings: Vec<String>,
    /// Dry runs (probing their inputs and the preset call) running at once in this process.
    pub dry_runs: tokio::sync::Semaphore,
    /// The tokens the job API needs (`--api-tokens`); `None`: it is open.
    pub api_tokens: Option<ApiTokens>,
    /// Which webhook URLs a job may name (`--webhook-allow`).
    pub webhooks: Arc<crate::webhook::UrlPolicy>,
    /// One permit per open job event stream (`--max-event-streams`).
    pub event_streams: Arc<tokio::sync::Semaphore>,
    pub max_event_streams: usize,
    /// How long a client has for a request's headers, then its body (`--request-timeout-s`).
    pub request_timeout: Duration,
    /// The result cache (`None` with `--result-cache-entries 0`).
    pub result_cache: Option<Arc<crate::result_cache::ResultCache>>,
    /// Job endings as they are announced, for `Prefer: wait`.
    pub endings: Arc<crate::lifecycle::Endings>,
}

pub type SharedState = Arc<AppState>;

pub fn router(state: SharedState) -> Router {
    let job_api = Router::new()
        .route("/v1/uploads", post(uploads::create))
        .route("/v1/jobs", post(jobs::submit).get(jobs::list))
        .route("/v1/jobs/{id}/events", get(jobs::events))
        .route("/v1/jobs/{id}", get(jobs::get))
        .route("/v1/jobs/{id}/logs", get(jobs::logs))
        .route("/v1/jobs/{id}/replay", post(jobs::replay))
        .route("/v1/jobs/{id}/cancel", post(jobs::cancel))
        .route("/v1/presets", get(presets::list))
        .route("/v1/presets/{name}", get(presets::show))
        .route("/v1/presets/{name}/{version}", get(presets::show_version))
        .route("/v1/presets/{name}/{version}/plan", post(presets::dry_run))
        .route_layer(from_fn_with_state(state.clone(), serve::whole_body))
        .route_layer(from_fn_with_state(state.clone(), auth::require_api_token));
    // Routes with authorization of their own (the admin token, a URL's signature), whose
    // bodies are uploads.
    let own_auth = Router::new()
        .route(
            "/v1/objects/{*key}",
            put(objects::put_object)
                .get(objects::get_object)
                .layer(DefaultBodyLimit::disable()),
        )
        .route(
            "/v1/presets",
            post(presets::publish).layer(DefaultBodyLimit::max(MAX_COMPONENT_BYTES)),
        )
        .route("/v1/presets/{name}/{version}", delete(presets::yank))
        .route_layer(from_fn_with_state(state.clone(), serve::between_chunks));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .merge(job_api)
        .merge(own_auth)
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(1 << 20))
        .with_state(state)
}

async fn healthz(State(state): State<SharedState>) -> Json<Value> {
    Json(json!({
        "status": "ok",
        "storage": state.storage.kind(),
        "presets": state.catalog.registry().len(),
        "warnings": state.warnings,
    }))
}

/// Ready when Redis and storage both answer within two seconds; `503` naming what does not.
async fn readyz(State(state): State<SharedState>) -> (StatusCode, Json<Value>) {
    let limit = Duration::from_secs(2);
    let redis = match tokio::time::timeout(
        limit,
        redis::cmd("PING").query_async::<String>(&mut state.jobs.connection()),
    )
    .await
    {
        Ok(Ok(_)) => "ok".to_owned(),
        Ok(Err(e)) => format!("Redis failed: {e}"),
        Err(_) => "Redis did not answer within 2 s".to_owned(),
    };
    let storage = match tokio::time::timeout(limit, state.storage.check()).await {
        Ok(Ok(())) => "ok".to_owned(),
        Ok(Err(e)) => format!("storage failed: {e}"),
        Err(_) => "storage did not answer within 2 s".to_owned(),
    };
    let ready = redis == "ok" && storage == "ok";
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({
            "status": if ready { "ready" } else { "unready" },
            "redis": redis,
            "storage": storage,
        })),
    )
}

async fn metrics(State(state): State<SharedState>) -> Result<impl IntoResponse, ApiError> {
    let text = state.metrics.render(&state.queue).await.map_err(|e| {
        ApiError::new(
            ErrorCode::QueueUnavailable,
            format!("metrics are kept in Redis, which failed: {e}"),
        )
    })?;
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text))
}

async fn not_found() -> ApiError {
    ApiError::new(
        ErrorCode::NotFound,
        "no such endpoint; see the README for the API",
    )
}

/// Parses a JSON body, answering `400 REQUEST_MALFORMED` with serde's reason when it does not fit.
pub(crate) fn parse_body<T: DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    if body.is_empty() {
        return serde_json::from_slice(b"{}").map_err(|e| {
            ApiError::new(
                ErrorCode::RequestMalformed,
                format!("the request needs a JSON body: {e}"),
            )
        });
    }
    serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            ErrorCode::RequestMalformed,
            format!("the body is not valid JSON for this endpoint: {e}"),
        )
    })
}
