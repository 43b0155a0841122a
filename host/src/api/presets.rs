//! The preset registry over HTTP: list and show versions, publish a component and yank a
//! version (both behind the admin token, checked before the body is read), and dry-run a
//! version's planning (a few at a time, so they cannot crowd out jobs).

use std::collections::BTreeMap;
use std::time::Duration;

use axum::Json;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use semver::Version;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::auth::{check_bearer, digest};
use super::jobs::{check_input_exists, check_input_names};
use super::{SharedState, parse_body};
use crate::error::{ApiError, ErrorCode};
use crate::media::probe;
use crate::model;
use crate::plan::dry_run::{self, DryRun};
use crate::preset::catalog::MAX_COMPONENT_BYTES;
use crate::preset::params;
use crate::preset::registry::Listing;

/// One version as the API shows it: the published record, the yank and the declared schema.
fn version_json(l: &Listing) -> Value {
    let p = &l.preset;
    json!({
        "name": p.name,
        "version": p.version.to_string(),
        "summary": p.descriptor.summary,
        "sha256": p.sha256,
        "size_bytes": l.record.size_bytes,
        "interface": l.record.interface,
        "origin": l.record.origin,
        "published_at": l.record.published_at,
        "yanked": l.yanked_at.is_some(),
        "yanked_at": l.yanked_at,
        "inputs": p.descriptor.inputs.iter().map(|i| json!({
            "name": i.name,
            "description": i.description,
            "required": i.required,
        })).collect::<Vec<_>>(),
        "params": p.descriptor.params.iter().map(params::schema_json).collect::<Vec<_>>(),
    })
}

/// A preset with its versions, newest first; its summary is the newest live version's.
fn preset_json(name: &str, versions: &[Listing]) -> Value {
    let summary = versions
        .iter()
        .rev()
        .find(|l| l.yanked_at.is_none())
        .or(versions.last())
        .map(|l| l.preset.descriptor.summary.clone())
        .unwrap_or_default();
    let latest = versions
        .iter()
        .rev()
        .find(|l| l.yanked_at.is_none())
        .map(|l| l.preset.version.to_string());
    json!({
        "name": name,
        "summary": summary,
        "latest": latest,
        "versions": versions.iter().rev().map(version_json).collect::<Vec<_>>(),
    })
}

pub async fn list(State(state): State<SharedState>) -> Json<Value> {
    let presets: Vec<Value> = state
        .catalog
        .registry()
        .all()
        .iter()
        .map(|(name, versions)| preset_json(name, versions))
        .collect();
    Json(json!({ "presets": presets }))
}

fn no_preset(name: &str) -> ApiError {
    ApiError::new(
        ErrorCode::PresetNotFound,
        format!("no preset named '{name}'; GET /v1/presets lists the presets this host has"),
    )
    .with("preset", name)
}

pub async fn show(
    State(state): State<SharedState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let all = state.catalog.registry().all();
    let (name, versions) = all
        .iter()
        .find(|(n, _)| *n == name)
        .ok_or_else(|| no_preset(&name))?;
    Ok(Json(preset_json(name, versions)))
}

fn parse_version(name: &str, text: &str) -> Result<Version, ApiError> {
    Version::parse(text).map_err(|e| {
        ApiError::new(
            ErrorCode::RequestMalformed,
            format!(
                "'{text}' is not an exact version ({e}); name one, as in /v1/presets/{name}/1.0.0"
            ),
        )
    })
}

async fn listing(state: &SharedState, name: &str, version: &str) -> Result<Listing, ApiError> {
    let version = parse_version(name, version)?;
    state.catalog.get(name, &version).await;
    state
        .catalog
        .registry()
        .listing(name, &version)
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::PresetNotFound,
                format!(
                    "{name}@{version} is not published; GET /v1/presets/{name} lists its versions"
                ),
            )
            .with("preset", name)
        })
}

pub async fn show_version(
    State(state): State<SharedState>,
    Path((name, version)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let listing = listing(&state, &name, &version).await?;
    Ok(Json(version_json(&listing)))
}

/// Checks `Authorization: Bearer <admin token>` in constant time.
fn require_admin(state: &SharedState, headers: &HeaderMap) -> Result<(), ApiError> {
    check_bearer(
        headers,
        &[digest(&state.admin_token)],
        "publishing and yanking need the admin token: send 'Authorization: Bearer <token>' (the \
         host's --admin-token, or the file admin-token in its data directory)",
        "the admin token is not this host's; check --admin-token or MEDIAHOST_ADMIN_TOKEN",
    )
}

/// A request that carries the admin token. It reads only the headers, so as an extractor before
/// the body it refuses a request before a byte of its body is read: an unauthenticated client
/// cannot make the host buffer a component-sized body.
pub struct Admin;

impl FromRequestParts<SharedState> for Admin {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &SharedState,
    ) -> Result<Self, Self::Rejection> {
        // The unread body is left on the connection, so it cannot carry another request: say
        // so, or a client would send its next request on a connection the server is closing.
        require_admin(state, &parts.headers)
            .map(|()| Admin)
            .map_err(|e| ([(header::CONNECTION, "close")], e).into_response())
    }
}

/// A publish whose announced length fits the component limit. Like [`Admin`] it reads only the
/// headers, so a body announced over the limit is refused before a byte of it is read.
pub struct WithinLimit;

impl FromRequestParts<SharedState> for WithinLimit {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &SharedState) -> Result<Self, Response> {
        let announced = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        match announced {
            Some(n) if n > MAX_COMPONENT_BYTES => {
                Err(([(header::CONNECTION, "close")], too_large()).into_response())
            }
            _ => Ok(WithinLimit),
        }
    }
}

fn too_large() -> ApiError {
    ApiError::new(
        ErrorCode::PresetTooLarge,
        format!("the component is larger than the {MAX_COMPONENT_BYTES} bytes this host accepts"),
    )
}

/// `POST /v1/presets` with the component's bytes as the body.
pub async fn publish(
    State(state): State<SharedState>,
    _admin: Admin,
    _size: WithinLimit,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            too_large()
        } else {
            ApiError::new(ErrorCode::RequestMalformed, e.body_text())
        }
    })?;
    if body.is_empty() {
        return Err(ApiError::new(
            ErrorCode::PresetInvalid,
            "the body is empty; send the component's bytes (curl --data-binary @preset.wasm)",
        ));
    }
    let listing = state.catalog.publish(body).await?;
    Ok((StatusCode::CREATED, Json(version_json(&listing))))
}

/// `DELETE /v1/presets/{name}/{version}`: yanks the version.
pub async fn yank(
    State(state): State<SharedState>,
    _admin: Admin,
    Path((name, version)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let version = parse_version(&name, &version)?;
    let listing = state.catalog.yank(&name, &version).await?;
    Ok(Json(version_json(&listing)))
}

/// An input of a dry run: an object URI to probe, or media info as a job's round would get it.
#[derive(Deserialize)]
#[serde(untagged)]
enum DryRunInput {
    Uri(String),
    Media(Box<model::MediaInfo>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DryRunRequest {
    inputs: BTreeMap<String, DryRunInput>,
    #[serde(default)]
    params: Map<String, Value>,
    #[serde(default = "first_round")]
    round: u32,
    #[serde(default)]
    produced: BTreeMap<String, model::MediaInfo>,
    #[serde(default)]
    analyses: Vec<model::AnalysisResult>,
}

fn first_round() -> u32 {
    1
}

/// How long a dry run waits for its turn before it is answered `503 HOST_OVERLOADED`.
const DRY_RUN_WAIT: Duration = Duration::from_secs(10);

/// `POST /v1/presets/{name}/{version}/plan`: one planning call, validated and rendered, not run.
pub async fn dry_run(
    State(state): State<SharedState>,
    Path((name, version)): Path<(String, String)>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let listing = listing(&state, &name, &version).await?;
    let req: DryRunRequest = parse_body(&body)?;
    // One permit covers probing the inputs and the preset call: both are work an anonymous
    // client can ask of this process.
    let _turn = tokio::time::timeout(DRY_RUN_WAIT, state.dry_runs.acquire())
        .await
        .map_err(|_| {
            ApiError::new(
                ErrorCode::HostOverloaded,
                format!(
                    "too many dry runs are running on this host; none finished within \
                     {DRY_RUN_WAIT:?}: retry later"
                ),
            )
        })?
        .map_err(ApiError::internal)?;
    let preset = listing.preset;
    let resolved = params::resolve(&preset.descriptor.params, &req.params)?;
    check_input_names(&preset, req.inputs.keys())?;
    let mut inputs = BTreeMap::new();
    for (input, given) in req.inputs {
        let info = match given {
            DryRunInput::Media(info) => *info,
            DryRunInput::Uri(uri) => probe_uri(&state, &input, &uri).await?,
        };
        inputs.insert(input, info);
    }
    let answer = dry_run::plan(
        state.runtime.clone(),
        preset,
        DryRun {
            round: req.round,
            inputs,
            produced: req.produced,
            analyses: req.analyses,
            params: resolved,
        },
    )
    .await?;
    Ok(Json(answer))
}

/// Downloads an input into a scratch directory of its own and probes it, as a worker would.
async fn probe_uri(
    state: &SharedState,
    name: &str,
    uri: &str,
) -> Result<model::MediaInfo, ApiError> {
    let (key, _) = check_input_exists(state, name, uri).await?;
    let dir = tempfile::Builder::new()
        .prefix("dry-run-")
        .tempdir_in(&state.scratch_root)
        .map_err(ApiError::internal)?;
    let path = dir.path().join(name);
    state
        .storage
        .download(&key, &path)
        .await
        .map_err(|e| ApiError::new(ErrorCode::StorageFailed, format!("input '{name}': {e}")))?;
    probe::probe(&state.tools, &path).await.map_err(|e| {
        ApiError::new(
            e.code(ErrorCode::InputUnreadable),
            format!("input '{name}' is not readable media: {e}"),
        )
        .with("input", name)
    })
}
