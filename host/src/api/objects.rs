//! `PUT`/`GET /v1/objects/{key}`: the signed URLs of the local-directory storage.

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::SharedState;
use crate::error::{ApiError, ErrorCode};
use crate::storage::{ObjectKey, Storage, StorageError, local::LocalStorage};

#[derive(Deserialize)]
pub struct Signed {
    expires: u64,
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
    if !local.verify(method, &key, signed.expires, &signed.sig) {
        return Err(ApiError::new(
            ErrorCode::SignatureInvalid,
            "the URL's signature is invalid or it has expired; ask for a new one",
        ));
    }
    Ok((local, key))
}

pub async fn put_object(
    State(state): State<SharedState>,
    Path(key): Path<String>,
    Query(signed): Query<Signed>,
    body: Body,
) -> Result<Response, ApiError> {
    let (local, key) = authorize(&state, "PUT", &key, &signed)?;
    let written = local
        .write(&key, body.into_data_stream())
        .await
        .map_err(|e| ApiError::new(ErrorCode::StorageFailed, e.to_string()))?;
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({"uri": state.storage.uri(&key), "size_bytes": written})),
    )
        .into_response())
}

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
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/octet-stream"),
    );
    Ok(response)
}
