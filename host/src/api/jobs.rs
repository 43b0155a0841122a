//! `POST /v1/jobs`, `GET /v1/jobs/{id}`, `GET /v1/jobs/{id}/logs` and
//! `POST /v1/jobs/{id}/replay`.
//!
//! Submission does all the checking a request can get up front: the preset and its version, the
//! params against the preset's schema, the input names against what it declares, and that every
//! input object exists. The job record and its queue entry are written in one transaction.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::{SharedState, parse_body};
use crate::error::{ApiError, ErrorCode};
use crate::job::{Job, PresetPin};
use crate::preset::params;
use crate::preset::registry::Preset;
use crate::storage::{ObjectKey, StorageError};

/// How long a download URL in a job view stays valid.
const DOWNLOAD_TTL: Duration = Duration::from_secs(3600);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SubmitJob {
    preset: String,
    version: Option<String>,
    inputs: BTreeMap<String, String>,
    #[serde(default)]
    params: Map<String, Value>,
}

pub async fn submit(
    State(state): State<SharedState>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let req: SubmitJob = parse_body(&body)?;
    let preset = state
        .catalog
        .resolve(&req.preset, req.version.as_deref())
        .await?;
    let resolved = params::resolve(&preset.descriptor.params, &req.params)?;
    check_input_names(&preset, req.inputs.keys())?;
    for (name, uri) in &req.inputs {
        check_input_exists(&state, name, uri).await?;
    }

    let job = Job::new(
        PresetPin {
            name: preset.name.clone(),
            version: preset.version.clone(),
            sha256: preset.sha256.clone(),
        },
        req.inputs,
        resolved,
    );
    accept(&state, job).await
}

/// `POST /v1/jobs/{id}/replay`: a new job with the identical inputs, pinned version and params.
/// The version need not resolve any more: a yanked version replays.
pub async fn replay(
    State(state): State<SharedState>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
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
    accept(&state, job).await
}

/// Every input name is one the preset declares, and every required one is given.
pub(super) fn check_input_names<'a>(
    preset: &Preset,
    names: impl Iterator<Item = &'a String> + Clone,
) -> Result<(), ApiError> {
    let declared = &preset.descriptor.inputs;
    if let Some(unknown) = names
        .clone()
        .find(|k| !declared.iter().any(|d| &d.name == *k))
    {
        let names: Vec<&str> = declared.iter().map(|d| d.name.as_str()).collect();
        return Err(ApiError::new(
            ErrorCode::InputsInvalid,
            format!(
                "'{}' takes no input named '{unknown}'; its inputs are: {}",
                preset.name,
                names.join(", ")
            ),
        )
        .with("input", unknown.as_str()));
    }
    if let Some(missing) = declared
        .iter()
        .find(|d| d.required && !names.clone().any(|n| n == &d.name))
    {
        return Err(ApiError::new(
            ErrorCode::InputsInvalid,
            format!(
                "'{}' needs an input named '{}': {}",
                preset.name, missing.name, missing.description
            ),
        )
        .with("input", missing.name.as_str()));
    }
    Ok(())
}

/// The input URI names an object of this host's storage that exists; returns its key.
pub(super) async fn check_input_exists(
    state: &SharedState,
    name: &str,
    uri: &str,
) -> Result<ObjectKey, ApiError> {
    let key = state
        .storage
        .parse_uri(uri)
        .map_err(|e| e.with("input", name))?;
    match state.storage.size(&key).await {
        Ok(_) => Ok(key),
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

/// Stores a new job and queues it, in one transaction.
async fn accept(state: &SharedState, job: Job) -> Result<(StatusCode, Json<Value>), ApiError> {
    let body = serde_json::to_string(&job).map_err(ApiError::internal)?;
    let mut pipe = redis::pipe();
    pipe.atomic().set(state.jobs.key(&job.id), body).ignore();
    state.queue.enqueue_into(&mut pipe, &job.id);
    let _: () = pipe
        .query_async(&mut state.jobs.connection())
        .await
        .map_err(|e| {
            ApiError::new(
                ErrorCode::QueueUnavailable,
                format!("the job was not accepted because Redis failed: {e}; retry the request"),
            )
        })?;
    tracing::info!(job = %job.id, preset = %job.preset.name, version = %job.preset.version, "job accepted");
    Ok((StatusCode::ACCEPTED, Json(view(state, &job).await)))
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

pub async fn get(
    State(state): State<SharedState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let job = load(&state, &id).await?;
    Ok(Json(view(&state, &job).await))
}

pub async fn logs(
    State(state): State<SharedState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let job = load(&state, &id).await?;
    let logs = state
        .jobs
        .logs(&job.id)
        .await
        .map_err(|e| ApiError::new(ErrorCode::QueueUnavailable, e.to_string()))?;
    Ok(Json(json!({"id": job.id, "logs": logs})))
}

/// The job as users see it: the record plus fresh download URLs.
async fn view(state: &SharedState, job: &Job) -> Value {
    let mut outputs = Vec::new();
    for out in &job.outputs {
        let mut v = json!({
            "name": out.name,
            "uri": out.uri,
            "container": out.container,
            "size_bytes": out.size_bytes,
            "duration_s": out.duration_s,
            "codecs": out.codecs,
            "streams": out.streams,
        });
        if let Some(key) = crate::storage::ObjectKey::parse(&out.key)
            && let Ok(url) = state.storage.presign_get(&key, DOWNLOAD_TTL).await
        {
            v["download_url"] = json!(url);
        }
        outputs.push(v);
    }
    json!({
        "id": job.id,
        "state": job.state,
        "progress": job.progress,
        "preset": {"name": job.preset.name, "version": job.preset.version.to_string()},
        "inputs": job.inputs,
        "params": job.params,
        "outputs": outputs,
        "report": job.report,
        "error": job.error,
        "attempts": job.attempts,
        "replay_of": job.replay_of,
        "timings": job.timings,
    })
}
