//! The local-directory backend: objects are files under `<data-dir>/objects`.
//!
//! The host itself serves the signed upload and download URLs (`/v1/objects/{key}`), signed with
//! an HMAC key kept in the data directory so that API and worker processes on one machine agree.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::io::AsyncWriteExt;

use super::{ObjectKey, StorageError};

pub struct LocalStorage {
    root: PathBuf,
    public_url: String,
    key: Vec<u8>,
}

impl LocalStorage {
    /// Opens (creating if needed) the object directory and the URL-signing key.
    pub fn open(data_dir: &Path, public_url: &str) -> anyhow::Result<Self> {
        let root = data_dir.join("objects");
        std::fs::create_dir_all(&root)?;
        let key = signing_key(&data_dir.join("url-signing.key"))?;
        Ok(Self {
            root,
            public_url: public_url.trim_end_matches('/').to_owned(),
            key,
        })
    }

    fn path(&self, key: &ObjectKey) -> PathBuf {
        self.root.join(key.as_str())
    }

    fn signature(&self, method: &str, key: &ObjectKey, expires: u64) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("hmac takes any key");
        mac.update(format!("{method}\n{key}\n{expires}").as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    pub fn signed_url(&self, method: &str, key: &ObjectKey, ttl: Duration) -> String {
        let expires = now_unix() + ttl.as_secs();
        let sig = self.signature(method, key, expires);
        format!(
            "{}/v1/objects/{key}?expires={expires}&sig={sig}",
            self.public_url
        )
    }

    /// Checks a signed URL's signature and expiry in constant time.
    pub fn verify(&self, method: &str, key: &ObjectKey, expires: u64, sig: &str) -> bool {
        if expires < now_unix() {
            return false;
        }
        let Ok(given) = hex::decode(sig) else {
            return false;
        };
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("hmac takes any key");
        mac.update(format!("{method}\n{key}\n{expires}").as_bytes());
        mac.verify_slice(&given).is_ok()
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

    pub async fn upload(&self, src: &Path, key: &ObjectKey) -> Result<(), StorageError> {
        let file = tokio::fs::File::open(src)
            .await
            .map_err(|e| StorageError::Failed(format!("cannot read {}: {e}", src.display())))?;
        self.write(key, tokio_util::io::ReaderStream::new(file))
            .await?;
        Ok(())
    }

    /// Writes a stream to an object atomically: a partial upload is never visible.
    pub async fn write<S, E>(&self, key: &ObjectKey, mut body: S) -> Result<u64, StorageError>
    where
        S: futures::Stream<Item = Result<bytes::Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        use futures::StreamExt;
        let dest = self.path(key);
        let parent = dest.parent().expect("object paths have a parent");
        let fail =
            |e: &dyn std::fmt::Display| StorageError::Failed(format!("writing '{key}': {e}"));
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(|e| fail(&e))?;
        let tmp = parent.join(format!(".tmp-{}", uuid::Uuid::new_v4()));
        let mut file = tokio::fs::File::create(&tmp).await.map_err(|e| fail(&e))?;
        let mut written = 0u64;
        let result: Result<(), StorageError> = async {
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|e| fail(&e))?;
                written += chunk.len() as u64;
                file.write_all(&chunk).await.map_err(|e| fail(&e))?;
            }
            file.sync_all().await.map_err(|e| fail(&e))?;
            tokio::fs::rename(&tmp, &dest).await.map_err(|e| fail(&e))
        }
        .await;
        if result.is_err() {
            let _ = tokio::fs::remove_file(&tmp).await;
        }
        result.map(|()| written)
    }

    pub async fn check(&self) -> Result<(), StorageError> {
        tokio::fs::metadata(&self.root)
            .await
            .map(|_| ())
            .map_err(|e| StorageError::Failed(format!("{}: {e}", self.root.display())))
    }
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
        let url = s.signed_url("PUT", &key, Duration::from_secs(60));
        let query = url.split_once('?').unwrap().1;
        let expires: u64 = query.split('&').next().unwrap()[8..].parse().unwrap();
        let sig = query.split("sig=").nth(1).unwrap();
        assert!(s.verify("PUT", &key, expires, sig));
        assert!(!s.verify("GET", &key, expires, sig));
        let other = ObjectKey::parse("uploads/a/c.wav").unwrap();
        assert!(!s.verify("PUT", &other, expires, sig));
        assert!(!s.verify("PUT", &key, expires + 1, sig));
        assert!(!s.verify("PUT", &key, 1, &s.signature("PUT", &key, 1)));
    }
}
