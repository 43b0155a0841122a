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

/// How long caches may keep an object, sent as its `Cache-Control`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CachePolicy {
    /// Never rewritten once complete under its name: HLS segments, init segments, images of a
    /// sequence.
    Immutable,
    /// Read again soon: playlists, which players poll and a retried job may rewrite.
    ShortLived,
    /// Cached only after checking it is still current: files, stills, documents, manifests.
    Revalidate,
}

impl CachePolicy {
    pub fn header(self) -> &'static str {
        match self {
            Self::Immutable => "public, max-age=31536000, immutable",
            Self::ShortLived => "public, max-age=10",
            Self::Revalidate => "no-cache",
        }
    }
}

/// What a stored object is served with: its media type and cache policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    pub content_type: String,
    pub cache: CachePolicy,
}

impl ObjectMeta {
    pub fn new(content_type: &str, cache: CachePolicy) -> Self {
        Self {
            content_type: content_type.to_owned(),
            cache,
        }
    }

    /// The media type and cache policy of an output object, from its file name: the one place
    /// that decides how packaged outputs are served.
    pub fn for_output(file_name: &str) -> Self {
        let ext = file_name.rsplit_once('.').map_or("", |(_, e)| e);
        let (content_type, cache) = match ext {
            "m3u8" => ("application/vnd.apple.mpegurl", CachePolicy::ShortLived),
            "m4s" => ("video/iso.segment", CachePolicy::Immutable),
            "ts" => ("video/mp2t", CachePolicy::Immutable),
            "vtt" => ("text/vtt", CachePolicy::Revalidate),
            "json" => ("application/json", CachePolicy::Revalidate),
            "jpg" | "jpeg" => ("image/jpeg", CachePolicy::Revalidate),
            "png" => ("image/png", CachePolicy::Revalidate),
            "webp" => ("image/webp", CachePolicy::Revalidate),
            "avif" => ("image/avif", CachePolicy::Revalidate),
            "mp4" => ("video/mp4", CachePolicy::Revalidate),
            "mov" => ("video/quicktime", CachePolicy::Revalidate),
            "m4a" => ("audio/mp4", CachePolicy::Revalidate),
            "mkv" => ("video/x-matroska", CachePolicy::Revalidate),
            "webm" => ("video/webm", CachePolicy::Revalidate),
            "wav" => ("audio/wav", CachePolicy::Revalidate),
            "flac" => ("audio/flac", CachePolicy::Revalidate),
            "mp3" => ("audio/mpeg", CachePolicy::Revalidate),
            "ogg" | "opus" => ("audio/ogg", CachePolicy::Revalidate),
            "aac" | "adts" => ("audio/aac", CachePolicy::Revalidate),
            _ => ("application/octet-stream", CachePolicy::Revalidate),
        };
        let mut meta = Self::new(content_type, cache);
        // An fMP4 init segment is rewritten by nothing once its rendition is stored, like the
        // segments that need it.
        if file_name.ends_with("init.mp4") {
            meta.cache = CachePolicy::Immutable;
        }
        meta
    }
}

/// What identifies an object's current bytes without reading them, and their SHA-256 when the
/// store knows it (local storage hashes every write as it streams).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    /// Changes whenever the object is rewritten: local storage's inode, size and modification
    /// time, S3's ETag and size.
    pub version: String,
    pub sha256: Option<String>,
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

    /// What identifies the object's current bytes (see [`Fingerprint`]), or `NotFound`.
    pub async fn fingerprint(&self, key: &ObjectKey) -> Result<Fingerprint, StorageError> {
        match self {
            Self::Local(s) => s.fingerprint(key).await,
            Self::S3(s) => s.fingerprint(key).await,
        }
    }

    pub async fn download(&self, key: &ObjectKey, dest: &Path) -> Result<u64, StorageError> {
        match self {
            Self::Local(s) => s.download(key, dest).await,
            Self::S3(s) => s.download(key, dest).await,
        }
    }

    /// Stores a file as an object served with `meta` (its content type and cache policy).
    pub async fn upload(
        &self,
        src: &Path,
        key: &ObjectKey,
        meta: &ObjectMeta,
    ) -> Result<(), StorageError> {
        match self {
            Self::Local(s) => s.upload(src, key, meta).await,
            Self::S3(s) => s.upload(src, key, meta).await,
        }
    }

    /// Writes a small object from memory (preset components and their records, playlists and
    /// documents the host writes).
    pub async fn put_bytes(
        &self,
        key: &ObjectKey,
        bytes: bytes::Bytes,
        meta: &ObjectMeta,
    ) -> Result<(), StorageError> {
        match self {
            Self::Local(s) => s.put_bytes(key, bytes, meta).await,
            Self::S3(s) => s.put_bytes(key, bytes, meta).await,
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
    use super::{CachePolicy, ObjectKey, ObjectMeta};

    #[test]
    fn packaged_outputs_are_served_with_their_media_type_and_cache_policy() {
        for (name, content_type, cache) in [
            (
                "720p/index.m3u8",
                "application/vnd.apple.mpegurl",
                CachePolicy::ShortLived,
            ),
            (
                "ladder.m3u8",
                "application/vnd.apple.mpegurl",
                CachePolicy::ShortLived,
            ),
            ("720p/init.mp4", "video/mp4", CachePolicy::Immutable),
            (
                "720p/seg_00001.m4s",
                "video/iso.segment",
                CachePolicy::Immutable,
            ),
            ("720p/seg_00001.ts", "video/mp2t", CachePolicy::Immutable),
            ("thumbs.vtt", "text/vtt", CachePolicy::Revalidate),
            ("main.mp4", "video/mp4", CachePolicy::Revalidate),
            ("poster.webp", "image/webp", CachePolicy::Revalidate),
        ] {
            assert_eq!(
                ObjectMeta::for_output(name),
                ObjectMeta::new(content_type, cache),
                "{name}"
            );
        }
    }

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
