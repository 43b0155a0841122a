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
use mediahost_api as wire;
use semver::Version;
use serde_json::Value;

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
fn version_view(l: &Listing) -> wire::PresetVersion {
    let p = &l.preset;
    wire::PresetVersion {
        name: p.name.clone(),
        version: p.version.to_string(),
        summary: p.descriptor.summary.clone(),
        sha256: p.sha256.clone(),
        size_bytes: l.record.size_bytes,
        interface: l.record.interface.clone(),
        origin: l.record.origin,
        published_at: l.record.published_at.clone(),
        yanked: l.yanked_at.is_some(),
        yanked_at: l.yanked_at.clone(),
        inputs: p
            .descriptor
            .inputs
            .iter()
            .map(|i| wire::InputSpec {
                name: i.name.clone(),
                description: i.description.clone(),
                required: i.required,
            })
            .collect(),
        params: p.descriptor.params.iter().map(params::schema).collect(),
        compile: None,
    }
}

/// A preset with its versions, newest first; its summary is the newest live version's.
fn preset_view(name: &str, versions: &[Listing]) -> wire::Preset {
    let newest_live = versions.iter().rev().find(|l| l.yanked_at.is_none());
    wire::Preset {
        name: name.to_owned(),
        summary: newest_live
            .or(versions.last())
            .map(|l| l.preset.descriptor.summary.clone())
            .unwrap_or_default(),
        latest: newest_live.map(|l| l.preset.version.to_string()),
        versions: versions.iter().rev().map(version_view).collect(),
    }
}

#[utoipa::path(
    get, path = "/v1/presets", tag = "presets",
    responses((status = 200, description = "Every preset with its versions", body = mediahost_api::PresetList), (status = "default", description = "A problem document (RFC 9457) with a stable `code`", body = mediahost_api::Problem, content_type = "application/problem+json")),
    security(("api_token" = []))
)]
pub async fn list(State(state): State<SharedState>) -> Json<wire::PresetList> {
    let presets = state
        .catalog
        .registry()
        .all()
        .iter()
        .map(|(name, versions)| preset_view(name, versions))
        .collect();
    Json(wire::PresetList { presets })
}

fn no_preset(name: &str) -> ApiError {
    ApiError::new(
        ErrorCode::PresetNotFound,
        format!("no preset named '{name}'; GET /v1/presets lists the presets this host has"),
    )
    .with("preset", name)
}

#[utoipa::path(
    get, path = "/v1/presets/{name}", tag = "presets",
    params(("name" = String, Path)),
    responses((status = 200, description = "The preset with its versions, newest first", body = mediahost_api::Preset), (status = "default", description = "A problem document (RFC 9457) with a stable `code`", body = mediahost_api::Problem, content_type = "application/problem+json")),
    security(("api_token" = []))
)]
pub async fn show(
    State(state): State<SharedState>,
    Path(name): Path<String>,
) -> Result<Json<wire::Preset>, ApiError> {
    let all = state.catalog.registry().all();
    let (name, versions) = all
        .iter()
        .find(|(n, _)| *n == name)
        .ok_or_else(|| no_preset(&name))?;
    Ok(Json(preset_view(name, versions)))
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
    // A version still loading here is waited for (boundedly), then `PRESET_LOADING`.
    state.catalog.lookup(name, &version).await?;
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

#[utoipa::path(
    get, path = "/v1/presets/{name}/{version}", tag = "presets",
    params(("name" = String, Path), ("version" = String, Path, description = "An exact version, as 1.2.0")),
    responses((status = 200, description = "The version", body = mediahost_api::PresetVersion), (status = "default", description = "A problem document (RFC 9457) with a stable `code`", body = mediahost_api::Problem, content_type = "application/problem+json")),
    security(("api_token" = []))
)]
pub async fn show_version(
    State(state): State<SharedState>,
    Path((name, version)): Path<(String, String)>,
) -> Result<Json<wire::PresetVersion>, ApiError> {
    let listing = listing(&state, &name, &version).await?;
    Ok(Json(version_view(&listing)))
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
#[utoipa::path(
    post, path = "/v1/presets", tag = "presets",
    request_body(content = Vec<u8>, content_type = "application/wasm", description = "The component's bytes"),
    responses((status = 201, description = "Published, with what compiling it cost", body = mediahost_api::PresetVersion), (status = "default", description = "A problem document (RFC 9457) with a stable `code`", body = mediahost_api::Problem, content_type = "application/problem+json")),
    security(("admin_token" = []))
)]
pub async fn publish(
    State(state): State<SharedState>,
    _admin: Admin,
    _size: WithinLimit,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<wire::PresetVersion>), ApiError> {
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
    let (listing, cost) = state.catalog.publish(body).await?;
    let mut view = version_view(&listing);
    // What compiling cost this host: wall time, the compile process's peak memory, and
    // whether an artifact compiled before was used instead.
    view.compile = Some(wire::CompileCost {
        ms: cost.ms,
        peak_rss_mib: cost.peak_rss_mib.unwrap_or(0),
        cached: cost.from == crate::preset::runtime::CompiledFrom::Cache,
    });
    Ok((StatusCode::CREATED, Json(view)))
}

/// `DELETE /v1/presets/{name}/{version}`: yanks the version.
#[utoipa::path(
    delete, path = "/v1/presets/{name}/{version}", tag = "presets",
    params(("name" = String, Path), ("version" = String, Path, description = "An exact version, as 1.2.0")),
    responses((status = 200, description = "The yanked version", body = mediahost_api::PresetVersion), (status = "default", description = "A problem document (RFC 9457) with a stable `code`", body = mediahost_api::Problem, content_type = "application/problem+json")),
    security(("admin_token" = []))
)]
pub async fn yank(
    State(state): State<SharedState>,
    _admin: Admin,
    Path((name, version)): Path<(String, String)>,
) -> Result<Json<wire::PresetVersion>, ApiError> {
    let version = parse_version(&name, &version)?;
    let listing = state.catalog.yank(&name, &version).await?;
    Ok(Json(version_view(&listing)))
}

/// How long a dry run waits for its turn before it is answered `503 HOST_OVERLOADED`.
const DRY_RUN_WAIT: Duration = Duration::from_secs(10);

/// `POST /v1/presets/{name}/{version}/plan`: one planning call, validated and rendered, not run.
#[utoipa::path(
    post, path = "/v1/presets/{name}/{version}/plan", tag = "presets",
    params(("name" = String, Path), ("version" = String, Path, description = "An exact version, as 1.2.0")),
    request_body = mediahost_api::DryRunRequest,
    responses((status = 200, description = "The round's plan, validated and rendered", body = mediahost_api::DryRunAnswer), (status = "default", description = "A problem document (RFC 9457) with a stable `code`", body = mediahost_api::Problem, content_type = "application/problem+json")),
    security(("api_token" = []))
)]
pub async fn dry_run(
    State(state): State<SharedState>,
    Path((name, version)): Path<(String, String)>,
    body: Bytes,
) -> Result<Json<wire::DryRunAnswer>, ApiError> {
    let listing = listing(&state, &name, &version).await?;
    let req: wire::DryRunRequest = parse_body(&body)?;
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
            wire::DryRunInput::Media(info) => media_info(&input, info)?,
            wire::DryRunInput::Uri(uri) => probe_uri(&state, &input, &uri).await?,
        };
        inputs.insert(input, info);
    }
    let answer = dry_run::plan(
        state.runtime.clone(),
        preset,
        DryRun {
            round: req.round,
            inputs,
            produced: req
                .produced
                .into_iter()
                .map(|(name, info)| Ok((name.clone(), media_info(&name, info)?)))
                .collect::<Result<_, ApiError>>()?,
            analyses: req
                .analyses
                .into_iter()
                .map(|a| {
                    serde_json::from_value(Value::Object(a)).map_err(|e| {
                        ApiError::new(
                            ErrorCode::RequestMalformed,
                            format!("an analysis result is not one a preset is given: {e}"),
                        )
                    })
                })
                .collect::<Result<_, ApiError>>()?,
            params: resolved,
        },
    )
    .await?;
    Ok(Json(answer))
}

/// Media info a client passed for `name`, read as the preset would be given it.
fn media_info(name: &str, info: wire::Object) -> Result<model::MediaInfo, ApiError> {
    serde_json::from_value(Value::Object(info)).map_err(|e| {
        ApiError::new(
            ErrorCode::RequestMalformed,
            format!("'{name}' is neither an object URI nor media info as ffprobe's summary: {e}"),
        )
        .with("input", name)
    })
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
