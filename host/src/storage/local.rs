//! The local-directory backend: objects are files under `<data-dir>/objects`, and what an object
//! is served with (content type, cache policy) a small file at the same key under
//! `<data-dir>/object-meta`, written before the object appears.
//!
//! The host itself serves the signed upload and download URLs (`/v1/objects/{key}`), signed with
//! an HMAC key kept in the data directory so that API and worker processes on one machine agree.
//! An upload URL may be signed for one exact size; writes are counted as they stream and stop at
//! their limit, leaving nothing behind. Every write is hashed as it streams: the SHA-256 is kept
//! under `<data-dir>/object-sha256`, bound to the file it was computed for (inode, size, mtime),
//! so the result cache knows an upload's content without reading it again.
//!
//! Not here: the upload cap itself (the API's, from `--max-upload-mib`).

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::{CachePolicy, Fingerprint, ObjectKey, ObjectMeta, StorageError};

pub struct LocalStorage {
    root: PathBuf,
    meta_root: PathBuf,
    sha_root: PathBuf,
    public_url: String,
    key: Vec<u8>,
}

impl LocalStorage {
    /// Opens (creating if needed) the object directory and the URL-signing key.
    pub fn open(data_dir: &Path, public_url: &str) -> anyhow::Result<Self> {
        let root = data_dir.join("objects");
        std::fs::create_dir_all(&root)?;
        let meta_root = data_dir.join("object-meta");
        std::fs::create_dir_all(&meta_root)?;
        let sha_root = data_dir.join("object-sha256");
        std::fs::create_dir_all(&sha_root)?;
        let key = signing_key(&data_dir.join("url-signing.key"))?;
        Ok(Self {
            root,
            meta_root,
            sha_root,
            public_url: public_url.trim_end_matches('/').to_owned(),
            key,
        })
    }

    fn path(&self, key: &ObjectKey) -> PathBuf {
        self.root.join(key.as_str())
    }

    /// The MAC over what a URL grants: method, key, expiry and, when declared, the exact size.
    fn mac(&self, method: &str, key: &ObjectKey, expires: u64, size: Option<u64>) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("hmac takes any key");
        mac.update(format!("{method}\n{key}\n{expires}").as_bytes());
        if let Some(size) = size {
            mac.update(format!("\nsize={size}").as_bytes());
        }
        mac
    }

    fn signature(&self, method: &str, key: &ObjectKey, expires: u64, size: Option<u64>) -> String {
        hex::encode(self.mac(method, key, expires, size).finalize().into_bytes())
    }

    /// A URL granting `method` on `key` for `ttl`; with `size`, only a body of exactly that size.
    pub fn signed_url(
        &self,
        method: &str,
        key: &ObjectKey,
        ttl: Duration,
        size: Option<u64>,
    ) -> String {
        let expires = now_unix() + ttl.as_secs();
        let sig = self.signature(method, key, expires, size);
        let size = size.map(|s| format!("&size={s}")).unwrap_or_default();
        format!(
            "{}/v1/objects/{key}?expires={expires}{size}&sig={sig}",
            self.public_url
        )
    }

    /// Checks a signed URL's signature (which covers its declared size) and expiry in constant
    /// time.
    pub fn verify(
        &self,
        method: &str,
        key: &ObjectKey,
        expires: u64,
        size: Option<u64>,
        sig: &str,
    ) -> bool {
        if expires < now_unix() {
            return false;
        }
        let Ok(given) = hex::decode(sig) else {
            return false;
        };
        self.mac(method, key, expires, size)
            .verify_slice(&given)
            .is_ok()
    }

    pub async fn size(&self, key: &ObjectKey) -> Result<u64, StorageError> {
        match tokio::fs::metadata(self.path(key)).await {
            Ok(m) if m.is_file() => Ok(m.len()),
            Ok(_) => Err(StorageError::NotFound(key.to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(StorageError::NotFound(key.to_string()))
            }
            Err(e) => Err(StorageError::Failed(format!("cannot stat '{key}': {e}"))),
        }
    }

    /// What identifies the object's current bytes (its file's inode, size and modification
    /// time), with their SHA-256 when it was computed as they were written.
    pub async fn fingerprint(&self, key: &ObjectKey) -> Result<Fingerprint, StorageError> {
        let version = match tokio::fs::metadata(self.path(key)).await {
            Ok(m) if m.is_file() => file_version(&m),
            Ok(_) => return Err(StorageError::NotFound(key.to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StorageError::NotFound(key.to_string()));
            }
            Err(e) => return Err(StorageError::Failed(format!("cannot stat '{key}': {e}"))),
        };
        let sha256 = tokio::fs::read_to_string(self.sha_root.join(key.as_str()))
            .await
            .ok()
            .and_then(|text| {
                let (sha, of) = text.trim().split_once(' ')?;
                (of == version).then(|| sha.to_owned())
            });
        Ok(Fingerprint { version, sha256 })
    }

    /// The path to open for reading an object; `NotFound` when it does not exist.
    pub async fn open_read(&self, key: &ObjectKey) -> Result<tokio::fs::File, StorageError> {
        self.size(key).await?;
        tokio::fs::File::open(self.path(key))
            .await
            .map_err(|e| StorageError::Failed(format!("cannot open '{key}': {e}")))
    }

    pub async fn download(&self, key: &ObjectKey, dest: &Path) -> Result<u64, StorageError> {
        self.size(key).await?;
        tokio::fs::copy(self.path(key), dest)
            .await
            .map_err(|e| StorageError::Failed(format!("cannot copy '{key}': {e}")))
    }

    pub async fn read(&self, key: &ObjectKey) -> Result<Vec<u8>, StorageError> {
        match tokio::fs::read(self.path(key)).await {
            Ok(bytes) => Ok(bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(StorageError::NotFound(key.to_string()))
            }
            Err(e) => Err(StorageError::Failed(format!("cannot read '{key}': {e}"))),
        }
    }

    pub async fn upload(
        &self,
        src: &Path,
        key: &ObjectKey,
        meta: &ObjectMeta,
    ) -> Result<(), StorageError> {
        let file = tokio::fs::File::open(src)
            .await
            .map_err(|e| StorageError::Failed(format!("cannot read {}: {e}", src.display())))?;
        self.write_meta(key, meta).await?;
        self.write(key, tokio_util::io::ReaderStream::new(file))
            .await?;
        Ok(())
    }

    pub async fn put_bytes(
        &self,
        key: &ObjectKey,
        bytes: bytes::Bytes,
        meta: &ObjectMeta,
    ) -> Result<(), StorageError> {
        self.write_meta(key, meta).await?;
        self.write(
            key,
            futures::stream::iter([Ok::<_, std::convert::Infallible>(bytes)]),
        )
        .await
        .map(|_| ())
    }

    /// Records what `key` is served with, atomically, before the object itself is written.
    async fn write_meta(&self, key: &ObjectKey, meta: &ObjectMeta) -> Result<(), StorageError> {
        let dest = self.meta_root.join(key.as_str());
        let parent = dest.parent().expect("object paths have a parent");
        let fail = |e: std::io::Error| StorageError::Failed(format!("writing '{key}' meta: {e}"));
        tokio::fs::create_dir_all(parent).await.map_err(fail)?;
        let tmp = parent.join(format!(".tmp-{}", uuid::Uuid::new_v4()));
        let cache = match meta.cache {
            CachePolicy::Immutable => "immutable",
            CachePolicy::ShortLived => "short-lived",
            CachePolicy::Revalidate => "revalidate",
        };
        tokio::fs::write(&tmp, format!("{}\n{cache}\n", meta.content_type))
            .await
            .map_err(fail)?;
        tokio::fs::rename(&tmp, &dest).await.map_err(fail)
    }

    /// What `key` is served with; `None` for objects stored without it (client uploads).
    pub async fn meta(&self, key: &ObjectKey) -> Option<ObjectMeta> {
        let text = tokio::fs::read_to_string(self.meta_root.join(key.as_str()))
            .await
            .ok()?;
        let mut lines = text.lines();
        let content_type = lines.next()?;
        let cache = match lines.next()? {
            "immutable" => CachePolicy::Immutable,
            "short-lived" => CachePolicy::ShortLived,
            "revalidate" => CachePolicy::Revalidate,
            _ => return None,
        };
        Some(ObjectMeta::new(content_type, cache))
    }

    /// Writes a stream to an object atomically: a partial upload is never visible.
    pub async fn write<S, E>(&self, key: &ObjectKey, body: S) -> Result<u64, StorageError>
    where
        S: futures::Stream<Item = Result<bytes::Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        self.write_sized(key, body, Size::AtMost(u64::MAX))
            .await
            .map_err(|e| match e {
                WriteError::Storage(e) => e,
                other => StorageError::Failed(format!("writing '{key}': {other}")),
            })
    }

    /// Writes a stream to an object atomically, holding it to `size`. The count is kept as the
    /// bytes arrive: the first byte over the limit stops the write, and a body of the wrong size
    /// leaves neither the object nor its temporary file behind.
    pub async fn write_sized<S, E>(
        &self,
        key: &ObjectKey,
        mut body: S,
        size: Size,
    ) -> Result<u64, WriteError>
    where
        S: futures::Stream<Item = Result<bytes::Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        use futures::StreamExt;
        let dest = self.path(key);
        let parent = dest.parent().expect("object paths have a parent");
        let fail = |e: &dyn std::fmt::Display| {
            WriteError::Storage(StorageError::Failed(format!("writing '{key}': {e}")))
        };
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(|e| fail(&e))?;
        let tmp = parent.join(format!(".tmp-{}", uuid::Uuid::new_v4()));
        let mut file = tokio::fs::File::create(&tmp).await.map_err(|e| fail(&e))?;
        let limit = match size {
            Size::AtMost(n) | Size::Exactly(n) => n,
        };
        let mut written = 0u64;
        let mut hasher = Sha256::new();
        let result: Result<(), WriteError> = async {
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|e| fail(&e))?;
                written += chunk.len() as u64;
                if written > limit {
                    return Err(WriteError::OverLimit { limit });
                }
                hasher.update(&chunk);
                file.write_all(&chunk).await.map_err(|e| fail(&e))?;
            }
            if let Size::Exactly(expected) = size
                && written != expected
            {
                return Err(WriteError::Short { expected, written });
            }
            file.sync_all().await.map_err(|e| fail(&e))?;
            // The hash names the file by inode, which the rename keeps: written first, it can
            // only ever describe these bytes.
            let version = file_version(&file.metadata().await.map_err(|e| fail(&e))?);
            let sha256 = hex::encode(hasher.finalize());
            self.write_sha256(key, &sha256, &version)
                .await
                .map_err(|e| fail(&e))?;
            tokio::fs::rename(&tmp, &dest).await.map_err(|e| fail(&e))
        }
        .await;
        if result.is_err() {
            drop(file);
            let _ = tokio::fs::remove_file(&tmp).await;
        }
        result.map(|()| written)
    }

    /// Records the SHA-256 of the file `version` will be at `key`, atomically.
    async fn write_sha256(
        &self,
        key: &ObjectKey,
        sha256: &str,
        version: &str,
    ) -> std::io::Result<()> {
        let dest = self.sha_root.join(key.as_str());
        let parent = dest.parent().expect("object paths have a parent");
        tokio::fs::create_dir_all(parent).await?;
        let tmp = parent.join(format!(".tmp-{}", uuid::Uuid::new_v4()));
        tokio::fs::write(&tmp, format!("{sha256} {version}\n")).await?;
        tokio::fs::rename(&tmp, &dest).await
    }

    pub async fn check(&self) -> Result<(), StorageError> {
        tokio::fs::metadata(&self.root)
            .await
            .map(|_| ())
            .map_err(|e| StorageError::Failed(format!("{}: {e}", self.root.display())))
    }
}

/// The size a write is held to.
#[derive(Debug, Clone, Copy)]
pub enum Size {
    AtMost(u64),
    Exactly(u64),
}

/// Why a sized write stopped.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("the body is larger than {limit} bytes")]
    OverLimit { limit: u64 },
    #[error("the body was {written} bytes, not the {expected} expected")]
    Short { expected: u64, written: u64 },
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// A file's identity and state: replaced or rewritten, it has another.
fn file_version(m: &std::fs::Metadata) -> String {
    use std::os::unix::fs::MetadataExt;
    format!("{}-{}-{}.{}", m.ino(), m.len(), m.mtime(), m.mtime_nsec())
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Reads the URL-signing key, creating it if this is the first process on this data directory.
/// Creation is exclusive, so API and worker processes starting together agree on one key.
fn signing_key(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut key = vec![0u8; 32];
    rand::fill(&mut key[..]);
    crate::secret::read_or_create(path, key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_urls_bind_method_key_and_expiry() {
        let dir = tempfile::tempdir().unwrap();
        let s = LocalStorage::open(dir.path(), "http://127.0.0.1:1").unwrap();
        let key = ObjectKey::parse("uploads/a/b.wav").unwrap();
        let url = s.signed_url("PUT", &key, Duration::from_secs(60), None);
        let query = url.split_once('?').unwrap().1;
        let expires: u64 = query.split('&').next().unwrap()[8..].parse().unwrap();
        let sig = query.split("sig=").nth(1).unwrap();
        assert!(s.verify("PUT", &key, expires, None, sig));
        assert!(!s.verify("GET", &key, expires, None, sig));
        let other = ObjectKey::parse("uploads/a/c.wav").unwrap();
        assert!(!s.verify("PUT", &other, expires, None, sig));
        assert!(!s.verify("PUT", &key, expires + 1, None, sig));
        assert!(!s.verify("PUT", &key, expires, Some(0), sig));
        let stale = s.signature("PUT", &key, 1, None);
        assert!(!s.verify("PUT", &key, 1, None, &stale));
    }

    #[test]
    fn signed_urls_bind_a_declared_size() {
        let dir = tempfile::tempdir().unwrap();
        let s = LocalStorage::open(dir.path(), "http://127.0.0.1:1").unwrap();
        let key = ObjectKey::parse("uploads/a/b.wav").unwrap();
        let url = s.signed_url("PUT", &key, Duration::from_secs(60), Some(1000));
        assert!(url.contains("&size=1000&"), "{url}");
        let expires: u64 = url.split("expires=").nth(1).unwrap()[..10].parse().unwrap();
        let sig = url.split("sig=").nth(1).unwrap();
        assert!(s.verify("PUT", &key, expires, Some(1000), sig));
        assert!(!s.verify("PUT", &key, expires, Some(1001), sig));
        assert!(!s.verify("PUT", &key, expires, None, sig));
    }

    #[tokio::test]
    async fn an_object_keeps_what_it_is_served_with() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStorage::open(dir.path(), "http://127.0.0.1:1").unwrap();
        let key = ObjectKey::parse("jobs/j/720p/index.m3u8").unwrap();
        let meta = ObjectMeta::for_output("index.m3u8");
        store
            .put_bytes(&key, bytes::Bytes::from_static(b"#EXTM3U\n"), &meta)
            .await
            .unwrap();
        assert_eq!(store.meta(&key).await, Some(meta));
        assert_eq!(store.read(&key).await.unwrap(), b"#EXTM3U\n");
        let upload = ObjectKey::parse("uploads/u/in.wav").unwrap();
        store
            .write(
                &upload,
                futures::stream::iter([Ok::<_, std::convert::Infallible>(
                    bytes::Bytes::from_static(b"RIFF"),
                )]),
            )
            .await
            .unwrap();
        assert_eq!(
            store.meta(&upload).await,
            None,
            "client uploads carry no meta"
        );
    }

    #[tokio::test]
    async fn a_write_is_hashed_as_it_streams_and_a_rewrite_is_not_mistaken_for_it() {
        let dir = tempfile::tempdir().unwrap();
        let s = LocalStorage::open(dir.path(), "http://127.0.0.1:1").unwrap();
        let key = ObjectKey::parse("uploads/a/photo.jpg").unwrap();
        let body = |parts: &[&'static [u8]]| {
            futures::stream::iter(
                parts
                    .iter()
                    .map(|p| Ok::<_, std::convert::Infallible>(bytes::Bytes::from_static(p)))
                    .collect::<Vec<_>>(),
            )
        };
        s.write(&key, body(&[b"hello ", b"world"])).await.unwrap();
        let first = s.fingerprint(&key).await.unwrap();
        assert_eq!(
            first.sha256.as_deref(),
            Some(hex::encode(Sha256::digest(b"hello world")).as_str())
        );
        s.write(&key, body(&[b"other bytes"])).await.unwrap();
        let second = s.fingerprint(&key).await.unwrap();
        assert_ne!(first.version, second.version);
        assert_eq!(
            second.sha256.as_deref(),
            Some(hex::encode(Sha256::digest(b"other bytes")).as_str())
        );
        // Bytes changed behind the store's back: their hash is unknown, not the old one.
        std::fs::write(
            dir.path().join("objects/uploads/a/photo.jpg"),
            b"tampered!!!",
        )
        .unwrap();
        assert_eq!(s.fingerprint(&key).await.unwrap().sha256, None);
        let missing = ObjectKey::parse("uploads/a/none.jpg").unwrap();
        assert!(matches!(
            s.fingerprint(&missing).await,
            Err(StorageError::NotFound(_))
        ));
    }

    #[tokio::test]
    async fn a_write_over_its_limit_stops_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let s = LocalStorage::open(dir.path(), "http://127.0.0.1:1").unwrap();
        let key = ObjectKey::parse("uploads/a/b.wav").unwrap();
        let chunks =
            (0..4).map(|_| Ok::<_, std::convert::Infallible>(bytes::Bytes::from(vec![0u8; 1000])));
        let err = s
            .write_sized(&key, futures::stream::iter(chunks), Size::AtMost(2500))
            .await
            .unwrap_err();
        assert!(
            matches!(err, WriteError::OverLimit { limit: 2500 }),
            "{err}"
        );
        let left: Vec<_> = std::fs::read_dir(dir.path().join("objects/uploads/a"))
            .unwrap()
            .collect();
        assert!(left.is_empty(), "left behind: {left:?}");
        let chunks =
            (0..2).map(|_| Ok::<_, std::convert::Infallible>(bytes::Bytes::from(vec![0u8; 1000])));
        let n = s
            .write_sized(
                &key,
                futures::stream::iter(chunks.clone()),
                Size::AtMost(2500),
            )
            .await
            .unwrap();
        assert_eq!(n, 2000);
        let other = ObjectKey::parse("uploads/b/b.wav").unwrap();
        let err = s
            .write_sized(&other, futures::stream::iter(chunks), Size::Exactly(2500))
            .await
            .unwrap_err();
        assert!(
            matches!(err, WriteError::Short { written: 2000, .. }),
            "{err}"
        );
        let left: Vec<_> = std::fs::read_dir(dir.path().join("objects/uploads/b"))
            .unwrap()
            .collect();
        assert!(left.is_empty(), "left behind: {left:?}");
    }
}
