//! The HTTP API (axum): thin handlers over the registry, the job store, the queue and storage.
//!
//! Which routes need what: the job API (jobs, uploads, preset listings, dry runs) needs an API
//! token when `--api-tokens` is set; publishing and yanking need the admin token; the signed
//! object URLs carry their own signature; `/healthz`, `/readyz` and `/metrics` are open.

mod auth;
mod dashboard;
mod jobs;
mod objects;
pub mod openapi;
mod presets;
mod problems;
mod queue;
mod serve;
mod uploads;

pub use auth::ApiTokens;
pub use serve::serve;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::header;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::response::IntoResponse;
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use bytes::Bytes;
use serde::de::DeserializeOwned;
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
        .route("/v1/queue", get(queue::depth))
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
        .route("/openapi.json", get(openapi::openapi_json))
        // The dashboard's pages (not API: `/`, `/dashboard/...`); its data is the job API's.
        .merge(dashboard::routes())
        .merge(job_api)
        .merge(own_auth)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(from_fn(problems::every_error_a_problem))
        .layer(DefaultBodyLimit::max(1 << 20))
        .with_state(state)
}

#[utoipa::path(
    get, path = "/healthz", tag = "service",
    responses((status = 200, description = "The process is up", body = mediahost_api::Health)),
)]
async fn healthz(State(state): State<SharedState>) -> Json<mediahost_api::Health> {
    Json(mediahost_api::Health {
        status: "ok".to_owned(),
        storage: state.storage.kind().to_owned(),
        presets: state.catalog.registry().len(),
        warnings: [state.warnings.clone(), state.catalog.warnings()].concat(),
    })
}

/// Ready when Redis and storage both answer within two seconds and every preset version this
/// process knew of at start has been attempted (loaded, or failed); `503` naming what is not,
/// with `presets: {loaded, total}` while loading.
#[utoipa::path(
    get, path = "/readyz", tag = "service",
    responses(
        (status = 200, description = "Ready to take jobs", body = mediahost_api::Ready),
        (status = 503, description = "Not ready: a problem document naming what is not, with `ready`, `redis`, `storage` and `presets` beside its code", body = mediahost_api::Problem, content_type = "application/problem+json"),
    ),
)]
async fn readyz(State(state): State<SharedState>) -> Result<Json<mediahost_api::Ready>, ApiError> {
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
    let loading = state.catalog.loading();
    let presets = mediahost_api::PresetLoading {
        loaded: loading.attempted,
        total: loading.total,
        status: if loading.done { "ok" } else { "loading" }.to_owned(),
    };
    // Not ready: a problem document (as every error answer is) naming the first thing that is
    // not, with what each part said beside it.
    let unready = if redis != "ok" {
        Some((ErrorCode::QueueUnavailable, redis.clone()))
    } else if storage != "ok" {
        Some((ErrorCode::StorageFailed, storage.clone()))
    } else if !loading.done {
        Some((
            ErrorCode::PresetLoading,
            format!(
                "loading presets: {} of {} attempted",
                loading.attempted, loading.total
            ),
        ))
    } else {
        None
    };
    if let Some((code, detail)) = unready {
        return Err(ApiError::new(code, detail)
            .with("ready", false)
            .with("redis", redis)
            .with("storage", storage)
            .with(
                "presets",
                serde_json::to_value(presets).expect("serializes"),
            ));
    }
    Ok(Json(mediahost_api::Ready {
        status: "ready".to_owned(),
        redis,
        storage,
        presets,
    }))
}

#[utoipa::path(
    get, path = "/metrics", tag = "service",
    responses(
        (status = 200, description = "Prometheus text exposition", content_type = "text/plain", body = String),
        (status = "default", description = "A problem document", body = mediahost_api::Problem, content_type = "application/problem+json"),
    ),
)]
async fn metrics(State(state): State<SharedState>) -> Result<impl IntoResponse, ApiError> {
    let text = state.metrics.render(&state.queue).await.map_err(|e| {
        ApiError::new(
            ErrorCode::QueueUnavailable,
            format!("metrics are kept in Redis, which failed: {e}"),
        )
    })?;
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text))
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        "this endpoint does not take that method; /openapi.json lists each endpoint's methods",
    )
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
