//! `POST /v1/uploads`: a fresh object key and a signed URL to PUT the bytes to.
//!
//! A client may declare the upload's `size_bytes`; the URL then accepts exactly that size, signed
//! in (for S3 as the signed `Content-Length`), and a size over the upload cap is refused here.
//!
//! Not here: receiving the bytes (the store's, or [`super::objects`] for local storage).

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use bytes::Bytes;
use mediahost_api::{NewUpload, UploadGrant};

use super::{SharedState, parse_body};
use crate::error::{ApiError, ErrorCode};
use crate::storage::ObjectKey;

/// How long an upload URL stays valid.
const UPLOAD_TTL: Duration = Duration::from_secs(3600);

/// Keeps the safe characters of a client's file name, so it can be part of a key.
fn clean_filename(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(100)
        .collect();
    let cleaned = cleaned.trim_start_matches('.').to_owned();
    if cleaned.is_empty() {
        "upload".into()
    } else {
        cleaned
    }
}

#[utoipa::path(
    post, path = "/v1/uploads", tag = "uploads",
    request_body(content = Option<mediahost_api::NewUpload>),
    responses((status = 201, description = "Where to PUT the bytes", body = mediahost_api::UploadGrant), (status = "default", description = "A problem document (RFC 9457) with a stable `code`", body = mediahost_api::Problem, content_type = "application/problem+json")),
    security(("api_token" = []))
)]
pub async fn create(
    State(state): State<SharedState>,
    body: Bytes,
) -> Result<(StatusCode, Json<UploadGrant>), ApiError> {
    let req: NewUpload = parse_body(&body)?;
    let filename = clean_filename(req.filename.as_deref().unwrap_or("upload"));
    let key = ObjectKey::parse(&format!("uploads/{}/{filename}", uuid::Uuid::new_v4()))
        .ok_or_else(|| ApiError::new(ErrorCode::UploadInvalid, "the file name is not usable"))?;
    if let Some(size) = req.size_bytes
        && size > state.max_upload_bytes
    {
        return Err(ApiError::new(
            ErrorCode::UploadTooLarge,
            format!(
                "size_bytes {size} is over this host's upload cap of {} bytes \
                 (--max-upload-mib); split or compress the file",
                state.max_upload_bytes
            ),
        ));
    }
    let url = state
        .storage
        .presign_put(&key, UPLOAD_TTL, req.size_bytes)
        .await
        .map_err(|e| ApiError::new(ErrorCode::StorageFailed, e.to_string()))?;
    let expires = humantime::format_rfc3339_seconds(SystemTime::now() + UPLOAD_TTL).to_string();
    let grant = UploadGrant {
        uri: state.storage.uri(&key),
        upload_url: url,
        method: "PUT".to_owned(),
        expires_at: expires,
        max_bytes: req.size_bytes.unwrap_or(state.max_upload_bytes),
        size_bytes: req.size_bytes,
        headers: req
            .size_bytes
            .map(|size| BTreeMap::from([("content-length".to_owned(), size.to_string())])),
    };
    Ok((StatusCode::CREATED, Json(grant)))
}

#[cfg(test)]
mod tests {
    use super::clean_filename;

    #[test]
    fn file_names_lose_paths_and_odd_characters() {
        assert_eq!(clean_filename("../../etc/passwd"), "passwd");
        assert_eq!(clean_filename("my talk (final).wav"), "my_talk__final_.wav");
        assert_eq!(clean_filename("..."), "upload");
        assert_eq!(clean_filename(""), "upload");
    }
}
