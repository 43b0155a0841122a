//! `POST /v1/jobs`, `GET /v1/jobs`, `GET /v1/jobs/{id}`, `GET /v1/jobs/{id}/events`,
//! `GET /v1/jobs/{id}/logs`, `POST /v1/jobs/{id}/replay` and `POST /v1/jobs/{id}/cancel`.
//!
//! Submission does all the checking a request can get up front: the preset and its version, the
//! params against the preset's schema, the input names against what it declares, and that every
//! input object exists. Accepting and cancelling are lifecycle transitions (`lifecycle`).
//!
//! A submission whose work the result cache holds (`result_cache`) is stored COMPLETED at once,
//! reusing that job's outputs. With `Prefer: wait=N` (RFC 7240, N at most [`MAX_WAIT_S`]) the
//! answer waits up to N seconds for the job to end: `200` with the ended job, else `202` as
//! without it; both say `Preference-Applied: wait=N`.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use mediahost_api as wire;
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{SharedState, parse_body};
use crate::error::{ApiError, ErrorCode};
use crate::job::{Cached, Job, JobState, Outcome, PresetPin, now_rfc3339};
use crate::lifecycle::{Accepted, Cancel};
use crate::preset::params;
use crate::preset::registry::Preset;
use crate::result_cache::{CacheKey, Entry};
use crate::storage::{Fingerprint, ObjectKey, StorageError};

/// How long a download URL in a job view stays valid.
const DOWNLOAD_TTL: Duration = Duration::from_secs(3600);

/// The longest `Prefer: wait` a submission is held for; a longer one is cut to this.
pub const MAX_WAIT_S: u64 = 60;

#[utoipa::path(
    post, path = "/v1/jobs", tag = "jobs",
    request_body = mediahost_api::SubmitJob,
    params(
        ("Idempotency-Key" = Option<String>, Header, description = "A repeat with the same key and body answers the job the first request created"),
        ("Prefer" = Option<String>, Header, description = "`wait=N` (at most 60): answer once the job ends, or after N seconds"),
    ),
    responses(
        (status = 200, description = "The job ended within the `Prefer: wait`, or answered from the result cache, or the idempotent repeat", body = mediahost_api::Job),
        (status = 202, description = "Accepted and queued", body = mediahost_api::Job),
        (status = "default", description = "A problem document (RFC 9457) with a stable `code`", body = mediahost_api::Problem, content_type = "application/problem+json"),
    ),
    security(("api_token" = []))
)]
pub async fn submit(
    State(state): State<SharedState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let wait = prefer_wait(&headers);
    let idempotency = idempotency_key(&headers, &body)?;
    let req: wire::SubmitJob = parse_body(&body)?;
    let preset = state
        .catalog
        .resolve(&req.preset, req.version.as_deref())
        .await?;
    let resolved = params::resolve(&preset.descriptor.params, &req.params)?;
    check_input_names(&preset, req.inputs.keys())?;
    let mut found = BTreeMap::new();
    for (name, uri) in &req.inputs {
        let (_, print) = check_input_exists(&state, name, uri).await?;
        found.insert(name.clone(), (uri.clone(), print));
    }

    let mut job = Job::new(
        PresetPin {
            name: preset.name.clone(),
            version: preset.version.clone(),
            sha256: preset.sha256.clone(),
        },
        req.inputs,
        resolved,
    );
    job.priority = req.priority;
    job.max_attempts = state.max_attempts;
    job.webhook = match req.webhook.as_deref() {
        Some(url) => Some(check_webhook(&state, url).await?),
        None => None,
    };
    job.verbose = req.verbose;
    job.cache = req.cache;
    if job.cache
        && let Some(cache) = &state.result_cache
    {
        for (name, (uri, print)) in &found {
            if let Some(sha) = cache.known_sha256(uri, print).await {
                job.input_sha256.insert(name.clone(), sha);
            }
        }
        if let Some(key) = CacheKey::of(&job, &job.input_sha256, &preset.interface)
            && let Some(entry) = cache.lookup(&key).await
        {
            complete_from_cache(&mut job, entry);
            cache.count(true).await;
        }
    }
    let (status, job) = accept(&state, job, idempotency).await?;
    Ok(answer(&state, status, job, wait).await)
}

/// The seconds of a `Prefer: wait=N` preference (RFC 7240), at most [`MAX_WAIT_S`]; other
/// preferences, and a wait that is not a number, are ignored as the RFC asks.
fn prefer_wait(headers: &HeaderMap) -> Option<u64> {
    headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|pref| {
            let token = pref.split(';').next()?.trim();
            let (name, value) = token.split_once('=')?;
            name.trim()
                .eq_ignore_ascii_case("wait")
                .then(|| value.trim().trim_matches('"').parse::<u64>().ok())
                .flatten()
        })
        .next()
        .map(|s| s.min(MAX_WAIT_S))
}

/// Turns a new job into one COMPLETED from a cache entry: the entry's outputs and report,
/// marked with the job that made them.
fn complete_from_cache(job: &mut Job, entry: Entry) {
    let now = now_rfc3339();
    job.progress = 1.0;
    job.outcome = Some(Outcome::Complete);
    job.outputs = entry.outputs;
    job.report = Some(entry.report);
    job.cached = Some(Cached { job: entry.job });
    job.timings.started_at = Some(now.clone());
    job.timings.finished_at = Some(now);
    job.timings.queue_s = Some(0.0);
    job.timings.run_s = Some(0.0);
    job.timings.ffmpeg_s = Some(0.0);
    job.transition(
        JobState::Completed,
        None,
        Some(format!(
            "answered from the result cache: the outputs of job {}, no ffmpeg run",
            entry.job
        )),
    );
}

/// The answer to a submission: the job as accepted, or with `Prefer: wait` the job once it
/// ended (`200`) or as it stands when the wait is over (the accepted status).
async fn answer(state: &SharedState, status: StatusCode, job: Job, wait: Option<u64>) -> Response {
    let (status, job) = match wait {
        Some(seconds) if !job.state.is_terminal() => {
            match wait_for_end(state, job, Duration::from_secs(seconds)).await {
                (true, job) => (StatusCode::OK, job),
                (false, job) => (status, job),
            }
        }
        Some(_) => (StatusCode::OK, job),
        None => (status, job),
    };
    let mut response = (status, Json(view(state, &job).await)).into_response();
    if let Some(seconds) = wait {
        response.headers_mut().insert(
            "preference-applied",
            HeaderValue::from_str(&format!("wait={seconds}")).expect("a number is a header value"),
        );
        response
            .headers_mut()
            .insert("vary", HeaderValue::from_static("prefer"));
    }
    response
}

/// Waits up to `wait` for the job to end, woken by its ending's announcement and re-reading
/// the record at least once a second; returns whether it ended, and the latest record.
async fn wait_for_end(state: &SharedState, job: Job, wait: Duration) -> (bool, Job) {
    let mut ended = state.endings.subscribe();
    let deadline = tokio::time::Instant::now() + wait;
    let mut latest = job;
    loop {
        if let Ok(Some(read)) = state.jobs.get(&latest.id).await {
            latest = read;
        }
        if latest.state.is_terminal() {
            return (true, latest);
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return (false, latest);
        }
        let reread = (now + Duration::from_secs(1)).min(deadline);
        loop {
            tokio::select! {
                message = ended.recv() => match message {
                    Ok(id) if id != latest.id => continue,
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => break,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                        tokio::time::sleep_until(reread).await;
                        break;
                    }
                },
                () = tokio::time::sleep_until(reread) => break,
            }
        }
    }
}

/// A webhook URL must be absolute http(s), at most 2 KiB, and reach only addresses the host's
/// webhook policy allows (`422 WEBHOOK_URL_INVALID` otherwise).
async fn check_webhook(state: &SharedState, url: &str) -> Result<String, ApiError> {
    let parsed = reqwest::Url::parse(url)
        .ok()
        .filter(|u| {
            matches!(u.scheme(), "http" | "https") && u.host().is_some() && url.len() <= 2048
        })
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::RequestMalformed,
                format!(
                    "webhook '{url}' is not an absolute http:// or https:// URL of at most 2048 \
                     bytes"
                ),
            )
            .with("param", "webhook")
        })?;
    state.webhooks.check(&parsed).await.map_err(|e| {
        ApiError::new(ErrorCode::WebhookUrlInvalid, e.to_string()).with("param", "webhook")
    })?;
    Ok(parsed.to_string())
}

/// The `Idempotency-Key` header, if any, as (Redis key, SHA-256 of the body).
fn idempotency_key(
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Option<(String, String)>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .ok()
        .filter(|k| !k.is_empty() && k.len() <= 255)
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::RequestMalformed,
                "Idempotency-Key must be 1-255 visible ASCII characters (a UUID is a good choice)",
            )
        })?;
    Ok(Some((
        hex::encode(Sha256::digest(key.as_bytes())),
        hex::encode(Sha256::digest(body)),
    )))
}

/// `POST /v1/jobs/{id}/replay`: a new job with the identical inputs, pinned version and params.
/// The version need not resolve any more: a yanked version replays. With `{"verbose": true}`
/// the replay logs every ffmpeg step's stderr.
#[utoipa::path(
    post, path = "/v1/jobs/{id}/replay", tag = "jobs",
    params(("id" = String, Path, description = "The job's id")),
    request_body(content = Option<mediahost_api::ReplayJob>),
    responses((status = 202, description = "The new job", body = mediahost_api::Job), (status = "default", description = "A problem document (RFC 9457) with a stable `code`", body = mediahost_api::Problem, content_type = "application/problem+json")),
    security(("api_token" = []))
)]
pub async fn replay(
    State(state): State<SharedState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<wire::Job>), ApiError> {
    let req: wire::ReplayJob = parse_body(&body)?;
    let original = load(&state, &id).await?;
    let pin = &original.preset;
    match state.catalog.get(&pin.name, &pin.version).await {
        Some(p) if p.sha256 == pin.sha256 => {}
        _ => {
            return Err(ApiError::new(
                ErrorCode::PresetVersionNotFound,
                format!(
                    "job {id} ran {}@{} (sha256 {}), which this host's catalog no longer has",
                    pin.name, pin.version, pin.sha256
                ),
            ));
        }
    }
    let mut job = Job::new(
        original.preset.clone(),
        original.inputs.clone(),
        original.params.clone(),
    );
    job.replay_of = Some(original.id);
    job.priority = original.priority;
    job.webhook = original.webhook.clone();
    job.verbose = req.verbose || original.verbose;
    job.max_attempts = state.max_attempts;
    // A replay is asked for to run the job again: the cache neither answers nor keeps it.
    job.cache = false;
    let (status, job) = accept(&state, job, None).await?;
    Ok((status, Json(view(&state, &job).await)))
}

/// `POST /v1/jobs/{id}/cancel`: a pending job is cancelled at once; a running one has its
/// ffmpeg killed and scratch removed by its worker within about a second (`202`, and the job
/// turns `CANCELLED`).
#[utoipa::path(
    post, path = "/v1/jobs/{id}/cancel", tag = "jobs",
    params(("id" = String, Path, description = "The job's id")),
    responses(
        (status = 200, description = "Cancelled while pending", body = mediahost_api::Job),
        (status = 202, description = "Running: its worker stops it within about a second", body = mediahost_api::Job),
        (status = "default", description = "A problem document (RFC 9457) with a stable `code`", body = mediahost_api::Problem, content_type = "application/problem+json"),
    ),
    security(("api_token" = []))
)]
pub async fn cancel(
    State(state): State<SharedState>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<wire::Job>), ApiError> {
    let uuid = parse_id(&id)?;
    let not_found = || ApiError::new(ErrorCode::JobNotFound, format!("no job with id {id}"));
    match state.lifecycle.cancel(&uuid).await.map_err(unavailable)? {
        Some(Cancel::Cancelled(job)) => {
            state
                .jobs
                .log(&job.id, "host", "cancelled while pending")
                .await;
            Ok((StatusCode::OK, Json(view(&state, &job).await)))
        }
        Some(Cancel::Requested(job)) => {
            state
                .jobs
                .log(&job.id, "host", "cancel requested while running")
                .await;
            let mut answer = view(&state, &job).await;
            answer.cancel_requested = true;
            Ok((StatusCode::ACCEPTED, Json(answer)))
        }
        Some(Cancel::Refused(s)) => Err(ApiError::new(
            ErrorCode::JobNotCancellable,
            format!(
                "job {id} is already {}; there is nothing to cancel",
                s.as_str()
            ),
        )),
        Some(Cancel::Missing) => Err(not_found()),
        None => Err(ApiError::new(
            ErrorCode::QueueUnavailable,
            "the job kept changing while it was being cancelled; retry the request",
        )),
    }
}

fn unavailable(e: redis::RedisError) -> ApiError {
    ApiError::new(
        ErrorCode::QueueUnavailable,
        format!("Redis failed: {e}; retry the request"),
    )
}

/// Every input name is one the preset declares, and every required one is given.
pub(super) fn check_input_names<'a>(
    preset: &Preset,
    names: impl Iterator<Item = &'a String> + Clone,
) -> Result<(), ApiError> {
    crate::recheck::input_names(preset, names)
        .map_err(|m| ApiError::new(ErrorCode::InputsInvalid, m.message).with("input", m.input))
}

/// The input URI names an object of this host's storage that exists; returns its key and its
/// fingerprint (which the result cache reads the input's hash by).
pub(super) async fn check_input_exists(
    state: &SharedState,
    name: &str,
    uri: &str,
) -> Result<(ObjectKey, Fingerprint), ApiError> {
    let key = state
        .storage
        .parse_uri(uri)
        .map_err(|e| e.with("input", name))?;
    crate::recheck::input_key(&key)
        .map_err(|why| ApiError::new(ErrorCode::InputUriInvalid, why).with("input", name))?;
    match state.storage.fingerprint(&key).await {
        Ok(print) => Ok((key, print)),
        Err(StorageError::NotFound(_)) => Err(ApiError::new(
            ErrorCode::InputNotFound,
            format!(
                "input '{name}' ({uri}) has no object; upload it first \
                 (POST /v1/uploads, then PUT the bytes)"
            ),
        )
        .with("input", name)),
        Err(StorageError::Failed(why)) => Err(ApiError::new(ErrorCode::StorageFailed, why)),
    }
}

/// Stores a new job and queues it, in one atomic step; with an idempotency key, a repeat of the
/// request answers the job the first one created instead.
async fn accept(
    state: &SharedState,
    job: Job,
    idempotency: Option<(String, String)>,
) -> Result<(StatusCode, Job), ApiError> {
    let body_hash = idempotency.as_ref().map(|(_, h)| h.clone());
    let accepted = state
        .lifecycle
        .accept(&job, idempotency)
        .await
        .map_err(|e| {
            ApiError::new(
                ErrorCode::QueueUnavailable,
                format!("the job was not accepted because Redis failed: {e}; retry the request"),
            )
        })?;
    if let Accepted::Duplicate { id, body_sha256 } = accepted {
        if Some(body_sha256) != body_hash {
            return Err(ApiError::new(
                ErrorCode::IdempotencyKeyReused,
                format!(
                    "this Idempotency-Key created job {id} with another request body; use a new \
                     key for a new job"
                ),
            ));
        }
        let original = load(state, &id).await?;
        return Ok((StatusCode::OK, original));
    }
    tracing::info!(job_id = %job.id, preset = %job.preset.name, version = %job.preset.version, priority = job.priority.as_str(), cached = job.cached.is_some(), "job accepted");
    Ok((StatusCode::ACCEPTED, job))
}

fn parse_id(id: &str) -> Result<Uuid, ApiError> {
    id.parse()
        .map_err(|_| ApiError::new(ErrorCode::JobNotFound, format!("'{id}' is not a job id")))
}

async fn load(state: &SharedState, id: &str) -> Result<Job, ApiError> {
    let uuid = parse_id(id)?;
    state
        .jobs
        .get(&uuid)
        .await
        .map_err(|e| ApiError::new(ErrorCode::QueueUnavailable, e.to_string()))?
        .ok_or_else(|| ApiError::new(ErrorCode::JobNotFound, format!("no job with id {id}")))
}

#[utoipa::path(
    get, path = "/v1/jobs/{id}", tag = "jobs",
    params(("id" = String, Path, description = "The job's id")),
    responses((status = 200, description = "The job", body = mediahost_api::Job), (status = "default", description = "A problem document (RFC 9457) with a stable `code`", body = mediahost_api::Problem, content_type = "application/problem+json")),
    security(("api_token" = []))
)]
pub async fn get(
    State(state): State<SharedState>,
    Path(id): Path<String>,
) -> Result<Json<wire::Job>, ApiError> {
    let job = load(&state, &id).await?;
    Ok(Json(view(&state, &job).await))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("prefer", HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn prefer_wait_is_read_as_rfc_7240_writes_it() {
        assert_eq!(prefer_wait(&headers(&[])), None);
        assert_eq!(prefer_wait(&headers(&["wait=5"])), Some(5));
        assert_eq!(prefer_wait(&headers(&["respond-async, Wait=7"])), Some(7));
        assert_eq!(
            prefer_wait(&headers(&["return=minimal", "wait=\"3\""])),
            Some(3)
        );
        assert_eq!(prefer_wait(&headers(&["wait=10; foo=bar"])), Some(10));
        assert_eq!(prefer_wait(&headers(&["wait=3600"])), Some(MAX_WAIT_S));
        assert_eq!(prefer_wait(&headers(&["wait=soon", "respond-async"])), None);
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only jobs in this state (PENDING, PROCESSING, COMPLETED, FAILED, DEAD, CANCELLED).
    state: Option<String>,
    /// At most this many jobs (1-500, default 50).
    limit: Option<usize>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// `GET /v1/jobs?state=FAILED&limit=50&cursor=...`: jobs newest first, optionally of one state;
/// `next_cursor` pages on. Scans at most 2,000 jobs per request, so a rare state may answer a
/// short page with a `next_cursor`.
#[utoipa::path(
    get, path = "/v1/jobs", tag = "jobs",
    params(ListQuery),
    responses((status = 200, description = "Jobs, newest first", body = mediahost_api::JobList), (status = "default", description = "A problem document (RFC 9457) with a stable `code`", body = mediahost_api::Problem, content_type = "application/problem+json")),
    security(("api_token" = []))
)]
pub async fn list(
    State(state): State<SharedState>,
    Query(q): Query<ListQuery>,
) -> Result<Json<wire::JobList>, ApiError> {
    let wanted = match q.state.as_deref() {
        None => None,
        Some(text) => Some(
            serde_json::from_value::<JobState>(json!(text.to_ascii_uppercase())).map_err(|_| {
                ApiError::new(
                    ErrorCode::RequestMalformed,
                    format!(
                        "state '{text}' is not one of PENDING, PROCESSING, COMPLETED, FAILED, \
                         DEAD, CANCELLED"
                    ),
                )
            })?,
        ),
    };
    let limit = q.limit.unwrap_or(50).clamp(1, 500);
    let (mut before_ms, mut before_id) = match q.cursor.as_deref() {
        None => (u64::MAX, None),
        Some(c) => {
            let (ms, id) = c
                .split_once('-')
                .and_then(|(ms, id)| Some((ms.parse::<u64>().ok()?, id.to_owned())))
                .ok_or_else(|| {
                    ApiError::new(
                        ErrorCode::RequestMalformed,
                        "cursor is not one this API returned; start without one",
                    )
                })?;
            (ms, Some(id))
        }
    };
    let mut found = Vec::new();
    let mut scanned = 0;
    let mut more = true;
    while found.len() < limit && scanned < 2000 && more {
        let page = state
            .jobs
            .page_before(before_ms, before_id.as_deref(), 200)
            .await
            .map_err(unavailable)?;
        more = page.len() == 200;
        for (job_ms, job) in page {
            scanned += 1;
            before_ms = job_ms;
            before_id = Some(job.id.to_string());
            if wanted.is_none_or(|w| w == job.state) {
                found.push(job.summary());
                if found.len() == limit {
                    break;
                }
            }
        }
    }
    let next = (more || found.len() == limit)
        .then(|| before_id.map(|id| format!("{before_ms}-{id}")))
        .flatten();
    Ok(Json(wire::JobList {
        jobs: found,
        next_cursor: next,
    }))
}

/// `GET /v1/jobs/{id}/events`: server-sent events, one per change of state or progress, ending
/// after the terminal state. At most `--max-event-streams` are open at once; the stream holds
/// its permit until it ends or its client goes away.
#[utoipa::path(
    get, path = "/v1/jobs/{id}/events", tag = "jobs",
    params(("id" = String, Path, description = "The job's id")),
    responses(
        (status = 200, description = "Server-sent events, one per change of state or progress; the stream ends after the terminal state", content_type = "text/event-stream", body = mediahost_api::JobEventFrame),
        (status = "default", description = "A problem document (RFC 9457) with a stable `code`", body = mediahost_api::Problem, content_type = "application/problem+json"),
    ),
    security(("api_token" = []))
)]
pub async fn events(
    State(state): State<SharedState>,
    Path(id): Path<String>,
) -> Result<Sse<impl futures::Stream<Item = Result<Event, std::convert::Infallible>>>, ApiError> {
    let permit = state
        .event_streams
        .clone()
        .try_acquire_owned()
        .map_err(|_| {
            ApiError::new(
                ErrorCode::HostOverloaded,
                format!(
                    "{} job event streams are open on this host, its limit (--max-event-streams); \
                 retry later, or poll GET /v1/jobs/{id}",
                    state.max_event_streams
                ),
            )
        })?;
    let first = load(&state, &id).await?;
    let stream = futures::stream::unfold(
        (Some(first), None::<(JobState, u32, f64, String)>, permit),
        move |(next, last, permit)| {
            let state = state.clone();
            async move {
                let mut job = next?;
                loop {
                    let outputs = serde_json::to_string(&job.output_progress).unwrap_or_default();
                    let now = (job.state, job.attempts, job.progress, outputs);
                    if last.as_ref() != Some(&now) {
                        let kind = match &last {
                            Some((s, a, _, _)) if *s == job.state && *a == job.attempts => {
                                wire::JobEventKind::Progress
                            }
                            _ => wire::JobEventKind::State,
                        };
                        let data = serde_json::to_string(&view(&state, &job).await)
                            .expect("a job view serializes");
                        let event = Event::default().event(kind.as_str()).data(data);
                        let after = if job.state.is_terminal() {
                            None
                        } else {
                            Some(job.clone())
                        };
                        return Some((Ok(event), (after, Some(now), permit)));
                    }
                    tokio::time::sleep(Duration::from_millis(250)).await;
                    job = match state.jobs.get(&job.id).await {
                        Ok(Some(j)) => j,
                        Ok(None) => return None,
                        Err(_) => job,
                    };
                }
            }
        },
    );
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

#[utoipa::path(
    get, path = "/v1/jobs/{id}/logs", tag = "jobs",
    params(("id" = String, Path, description = "The job's id")),
    responses((status = 200, description = "The job's log", body = mediahost_api::JobLogs), (status = "default", description = "A problem document (RFC 9457) with a stable `code`", body = mediahost_api::Problem, content_type = "application/problem+json")),
    security(("api_token" = []))
)]
pub async fn logs(
    State(state): State<SharedState>,
    Path(id): Path<String>,
) -> Result<Json<wire::JobLogs>, ApiError> {
    let job = load(&state, &id).await?;
    let logs = state
        .jobs
        .logs(&job.id)
        .await
        .map_err(|e| ApiError::new(ErrorCode::QueueUnavailable, e.to_string()))?;
    Ok(Json(wire::JobLogs { id: job.id, logs }))
}

/// The job as users see it: the contract's view plus fresh download URLs, for each output's
/// main object (a package's master playlist, a rendition's media playlist) and for every object
/// it holds.
async fn view(state: &SharedState, job: &Job) -> wire::Job {
    let download = async |key: &str| -> Option<String> {
        let key = crate::storage::ObjectKey::parse(key)?;
        state.storage.presign_get(&key, DOWNLOAD_TTL).await.ok()
    };
    let mut view = job.wire();
    for (out, record) in view.outputs.iter_mut().zip(&job.outputs) {
        out.download_url = download(&record.key).await;
        for object in &mut out.objects {
            object.download_url = download(&object.object.key).await;
        }
    }
    view
}
