//! Object storage behind one interface: a local directory (the default) or S3.
//!
//! Jobs name their inputs and outputs by URI (`local://key` or `s3://bucket/key`); clients move
//! bytes with signed URLs, so media never has to pass through the job API.

pub mod local;
pub mod s3;

use std::path::Path;
use std::time::Duration;

use crate::error::{ApiError, ErrorCode};

/// A validated object key: `/`-separated segments of safe characters, no `..`, no leading `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectKey(String);

impl ObjectKey {
    pub fn parse(key: &str) -> Option<Self> {
        let ok = !key.is_empty()
            && key.len() <= 512
            && key.split('/').all(|seg| {
                !seg.is_empty()
                    && seg != "."
                    && seg != ".."
                    && seg
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
            });
        ok.then(|| Self(key.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A storage failure, with whether the object was simply absent.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("object '{0}' does not exist")]
    NotFound(String),
    #[error("{0}")]
    Failed(String),
}

pub enum Storage {
    Local(local::LocalStorage),
    S3(s3::S3Storage),
}

impl Storage {
    /// The URI clients use to name an object.
    pub fn uri(&self, key: &ObjectKey) -> String {
        match self {
            Self::Local(_) => format!("local://{key}"),
            Self::S3(s) => format!("s3://{}/{key}", s.bucket()),
        }
    }

    /// Parses a URI of this storage back to its key; anything else is `INPUT_URI_INVALID`.
    pub fn parse_uri(&self, uri: &str) -> Result<ObjectKey, ApiError> {
        let key = match self {
            Self::Local(_) => uri.strip_prefix("local://"),
            Self::S3(s) => uri
                .strip_prefix("s3://")
                .and_then(|rest| rest.strip_prefix(s.bucket()))
                .and_then(|rest| rest.strip_prefix('/')),
        };
        let example = self.uri(&ObjectKey("uploads/<id>/<file>".into()));
        key.and_then(ObjectKey::parse).ok_or_else(|| {
            ApiError::new(
                ErrorCode::InputUriInvalid,
                format!(
                    "'{uri}' is not an object URI of this host's storage; expected the form \
                     {example}, as POST /v1/uploads returns"
                ),
            )
        })
    }

    /// A URL to PUT an object to; with `size`, the store accepts only a body of exactly that
    /// many bytes (signed into the URL, so a client cannot change it).
    pub async fn presign_put(
        &self,
        key: &ObjectKey,
        ttl: Duration,
        size: Option<u64>,
    ) -> Result<String, StorageError> {
        match self {
            Self::Local(s) => Ok(s.signed_url("PUT", key, ttl, size)),
            Self::S3(s) => s.presign_put(key, ttl, size).await,
        }
    }

    pub async fn presign_get(
        &self,
        key: &ObjectKey,
        ttl: Duration,
    ) -> Result<String, StorageError> {
        match self {
            Self::Local(s) => Ok(s.signed_url("GET", key, ttl, None)),
            Self::S3(s) => s.presign_get(key, ttl).await,
        }
    }

    /// The object's size, or `NotFound`.
    pub async fn size(&self, key: &ObjectKey) -> Result<u64, StorageError> {
        match self {
            Self::Local(s) => s.size(key).await,
            Self::S3(s) => s.size(key).await,
        }
    }

    pub async fn download(&self, key: &ObjectKey, dest: &Path) -> Result<u64, StorageError> {
        match self {
            Self::Local(s) => s.download(key, dest).await,
            Self::S3(s) => s.download(key, dest).await,
        }
    }

    pub async fn upload(
        &self,
        src: &Path,
        key: &ObjectKey,
        content_type: &str,
    ) -> Result<(), StorageError> {
        match self {
            Self::Local(s) => s.upload(src, key).await,
            Self::S3(s) => s.upload(src, key, content_type).await,
        }
    }

    /// Writes a small object from memory (preset components and their records).
    pub async fn put_bytes(
        &self,
        key: &ObjectKey,
        bytes: bytes::Bytes,
        content_type: &str,
    ) -> Result<(), StorageError> {
        match self {
            Self::Local(s) => s
                .write(
                    key,
                    futures::stream::iter([Ok::<_, std::convert::Infallible>(bytes)]),
                )
                .await
                .map(|_| ()),
            Self::S3(s) => s.put_bytes(key, bytes, content_type).await,
        }
    }

    /// Reads a small object into memory; objects over `max` bytes are refused.
    pub async fn get_bytes(&self, key: &ObjectKey, max: u64) -> Result<Vec<u8>, StorageError> {
        let size = self.size(key).await?;
        if size > max {
            return Err(StorageError::Failed(format!(
                "object '{key}' is {size} bytes, more than the {max} expected"
            )));
        }
        match self {
            Self::Local(s) => s.read(key).await,
            Self::S3(s) => s.get_bytes(key).await,
        }
    }

    /// A cheap round trip that proves the storage answers.
    pub async fn check(&self) -> Result<(), StorageError> {
        match self {
            Self::Local(s) => s.check().await,
            Self::S3(s) => s.check().await,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Self::Local(_) => "local",
            Self::S3(_) => "s3",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ObjectKey;

    #[test]
    fn keys_cannot_escape_or_smuggle() {
        for bad in [
            "", "/abs", "a/../b", "a//b", "..", "a/./b", "a b", "a\nb", "a%2f",
        ] {
            assert!(ObjectKey::parse(bad).is_none(), "{bad:?} accepted");
        }
        assert!(ObjectKey::parse("uploads/0f3a/speech.wav").is_some());
    }
}
