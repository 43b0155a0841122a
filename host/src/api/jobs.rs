//! `POST /v1/jobs`, `GET /v1/jobs/{id}` and `GET /v1/jobs/{id}/logs`.
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
use crate::storage::StorageError;

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
        .registry
        .resolve(&req.preset, req.version.as_deref())?;
    let resolved = params::resolve(&preset.descriptor.params, &req.params)?;

    let declared = &preset.descriptor.inputs;
    if let Some(unknown) = req
        .inputs
        .keys()
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
        .find(|d| d.required && !req.inputs.contains_key(&d.name))
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
    for (name, uri) in &req.inputs {
        let key = state
            .storage
            .parse_uri(uri)
            .map_err(|e| e.with("input", name.as_str()))?;
        match state.storage.size(&key).await {
            Ok(_) => {}
            Err(StorageError::NotFound(_)) => {
                return Err(ApiError::new(
                    ErrorCode::InputNotFound,
                    format!(
                        "input '{name}' ({uri}) has no object; upload it first \
                         (POST /v1/uploads, then PUT the bytes)"
                    ),
                )
                .with("input", name.as_str()));
            }
            Err(StorageError::Failed(why)) => {
                return Err(ApiError::new(ErrorCode::StorageFailed, why));
            }
        }
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
    Ok((StatusCode::ACCEPTED, Json(view(&state, &job).await)))
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
        "timings": job.timings,
    })
}
