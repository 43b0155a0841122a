//! `PUT`/`GET /v1/objects/{key}`: the signed URLs of the local-directory storage.
//!
//! A PUT is held to the upload cap, or to the exact size its URL was signed for: an announced
//! `Content-Length` over it is refused before a byte is read, and a body that turns out larger is
//! stopped as it streams, storing nothing.
//!
//! Not here: signing (that is [`crate::storage::local`]).

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::SharedState;
use crate::error::{ApiError, ErrorCode};
use crate::storage::local::{LocalStorage, Size, WriteError};
use crate::storage::{ObjectKey, Storage, StorageError};

/// The signature a URL the host handed out carries.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Signed {
    /// When the URL expires, in Unix seconds.
    expires: u64,
    /// The exact size a PUT URL was signed for, when the client declared one.
    size: Option<u64>,
    sig: String,
}

fn authorize<'a>(
    state: &'a SharedState,
    method: &str,
    key: &str,
    signed: &Signed,
) -> Result<(&'a LocalStorage, ObjectKey), ApiError> {
    let Storage::Local(local) = state.storage.as_ref() else {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            "this host stores objects in S3; use the presigned URLs it hands out",
        ));
    };
    let key = ObjectKey::parse(key)
        .ok_or_else(|| ApiError::new(ErrorCode::SignatureInvalid, "invalid object key"))?;
    if !local.verify(method, &key, signed.expires, signed.size, &signed.sig) {
        return Err(ApiError::new(
            ErrorCode::SignatureInvalid,
            "the URL's signature is invalid or it has expired; ask for a new one",
        ));
    }
    Ok((local, key))
}

#[utoipa::path(
    put, path = "/v1/objects/{key}", tag = "uploads",
    params(("key" = String, Path, description = "The object key (may contain `/`)"), Signed),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 201, description = "Stored"), (status = "default", description = "A problem document (RFC 9457) with a stable `code`", body = mediahost_api::Problem, content_type = "application/problem+json")),
)]
pub async fn put_object(
    State(state): State<SharedState>,
    Path(key): Path<String>,
    Query(signed): Query<Signed>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let (local, key) = authorize(&state, "PUT", &key, &signed)?;
    let cap = state.max_upload_bytes;
    let too_large = |what: String| {
        ApiError::new(
            ErrorCode::UploadTooLarge,
            format!(
                "{what}; this host accepts uploads of at most {cap} bytes (--max-upload-mib) \
                 and nothing was stored"
            ),
        )
    };
    let mismatch = |declared: u64, what: String| {
        ApiError::new(
            ErrorCode::UploadInvalid,
            format!(
                "this URL was signed for exactly {declared} bytes but {what}; nothing was \
                 stored: PUT the declared size, or ask POST /v1/uploads for a new URL"
            ),
        )
    };
    let announced = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(n) = announced {
        if n > cap {
            return Err(too_large(format!("the body announces {n} bytes")));
        }
        if let Some(declared) = signed.size
            && n != declared
        {
            return Err(mismatch(declared, format!("the body announces {n}")));
        }
    }
    let size = match signed.size {
        Some(declared) if declared <= cap => Size::Exactly(declared),
        _ => Size::AtMost(cap),
    };
    let written = local
        .write_sized(&key, body.into_data_stream(), size)
        .await
        .map_err(|e| match (e, size) {
            (WriteError::OverLimit { .. }, Size::Exactly(declared)) => {
                mismatch(declared, "the body is larger".into())
            }
            (WriteError::OverLimit { limit }, Size::AtMost(_)) => {
                too_large(format!("the body is larger than {limit} bytes"))
            }
            (WriteError::Short { expected, written }, _) => {
                mismatch(expected, format!("the body was {written}"))
            }
            (WriteError::Storage(e), _) => ApiError::new(ErrorCode::StorageFailed, e.to_string()),
        })?;
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({"uri": state.storage.uri(&key), "size_bytes": written})),
    )
        .into_response())
}

#[utoipa::path(
    get, path = "/v1/objects/{key}", tag = "uploads",
    params(("key" = String, Path, description = "The object key (may contain `/`)"), Signed),
    responses((status = 200, description = "The object's bytes", content_type = "application/octet-stream", body = Vec<u8>), (status = "default", description = "A problem document (RFC 9457) with a stable `code`", body = mediahost_api::Problem, content_type = "application/problem+json")),
)]
pub async fn get_object(
    State(state): State<SharedState>,
    Path(key): Path<String>,
    Query(signed): Query<Signed>,
) -> Result<Response, ApiError> {
    let (local, key) = authorize(&state, "GET", &key, &signed)?;
    let size = local.size(&key).await;
    let file = local.open_read(&key).await.map_err(|e| match e {
        StorageError::NotFound(_) => ApiError::new(ErrorCode::NotFound, e.to_string()),
        StorageError::Failed(_) => ApiError::new(ErrorCode::StorageFailed, e.to_string()),
    })?;
    let body = Body::from_stream(tokio_util::io::ReaderStream::new(file));
    let mut response = (StatusCode::OK, body).into_response();
    if let Ok(size) = size {
        response
            .headers_mut()
            .insert(header::CONTENT_LENGTH, size.into());
    }
    let meta = local.meta(&key).await;
    let content_type = meta
        .as_ref()
        .and_then(|m| header::HeaderValue::from_str(&m.content_type).ok())
        .unwrap_or(header::HeaderValue::from_static("application/octet-stream"));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, content_type);
    if let Some(meta) = meta {
        headers.insert(
            header::CACHE_CONTROL,
            header::HeaderValue::from_static(meta.cache.header()),
        );
    }
    Ok(response)
}
