//! The on-disk cache of compiled preset components.
//!
//! Compiling a component takes a few hundred milliseconds; loading its compiled artifact takes a
//! few. Artifacts are keyed by the component's SHA-256 and the engine's compatibility hash (which
//! changes with the wasmtime version and its settings), so a stale artifact is never used: it
//! simply misses. A corrupt or incompatible file is removed and the component compiled again.
//!
//! The artifacts are `Component::serialize()` output, whether this process compiled the component
//! or a `compile-preset` child did (`preset::compile`), which writes to a
//! [`temp_path`](ArtifactCache::temp_path) that is then [`adopt`](ArtifactCache::adopt)ed.
//!
//! Not here: which components exist (that is `preset::catalog`).

use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

use wasmtime::Engine;
use wasmtime::component::Component;

pub struct ArtifactCache {
    dir: PathBuf,
    /// The engine's compatibility hash, as hex: part of every artifact's file name.
    compat: String,
}

impl ArtifactCache {
    pub fn open(dir: PathBuf, engine: &Engine) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&dir).map_err(|e| {
            anyhow::anyhow!(
                "cannot create the preset artifact cache {}: {e}",
                dir.display()
            )
        })?;
        let mut hasher = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Ok(Self {
            dir,
            compat: format!("{:016x}", hasher.finish()),
        })
    }

    fn path(&self, sha256: &str) -> PathBuf {
        self.dir.join(format!("{sha256}-{}.cwasm", self.compat))
    }

    /// The cached artifact of the component with this hash, if there is a usable one.
    pub fn get(&self, engine: &Engine, sha256: &str) -> Option<Component> {
        if !is_hex_digest(sha256) {
            return None;
        }
        let path = self.path(sha256);
        if !path.exists() {
            return None;
        }
        // SAFETY: `deserialize_file` trusts the file to be an artifact this engine produced. Only
        // this host writes the cache directory (inside its data directory), under a name that
        // binds the component's hash and the engine's compatibility hash, and writes it whole
        // (a temporary file renamed into place). Anyone able to write there could equally replace
        // the host's own binary.
        match unsafe { Component::deserialize_file(engine, &path) } {
            Ok(component) => Some(component),
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "unusable cached artifact; compiling again");
                let _ = std::fs::remove_file(&path);
                None
            }
        }
    }

    /// Stores a compiled component's artifact. A failure only costs a compile next time.
    pub fn put(&self, sha256: &str, component: &Component) {
        if !is_hex_digest(sha256) {
            return;
        }
        let path = self.path(sha256);
        if let Err(e) = component
            .serialize()
            .map_err(|e| std::io::Error::other(format!("{e:#}")))
            .and_then(|bytes| write_atomically(&path, &bytes))
        {
            tracing::warn!(file = %path.display(), error = %e, "could not cache a compiled preset");
        }
    }
}

impl ArtifactCache {
    /// A fresh file name in the cache directory for an artifact being written (by a compile
    /// child), to be [`adopt`](Self::adopt)ed or removed.
    pub fn temp_path(&self) -> PathBuf {
        self.dir
            .join(format!("compiling-{}.tmp", uuid::Uuid::new_v4()))
    }

    /// Makes a complete artifact written at `written` (see [`temp_path`](Self::temp_path)) the
    /// cached artifact of `sha256`, by renaming it into place. A failure only costs a compile
    /// next time.
    pub fn adopt(&self, sha256: &str, written: &Path) {
        let renamed = if is_hex_digest(sha256) {
            std::fs::File::open(written)
                .and_then(|f| f.sync_all())
                .and_then(|()| std::fs::rename(written, self.path(sha256)))
        } else {
            Err(std::io::Error::other("not a digest"))
        };
        if let Err(e) = renamed {
            tracing::warn!(file = %written.display(), error = %e, "could not cache a compiled preset");
            let _ = std::fs::remove_file(written);
        }
    }
}

fn is_hex_digest(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension(format!("tmp-{}", uuid::Uuid::new_v4()));
    let result = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine() -> Engine {
        Engine::default()
    }

    const SHA: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn an_artifact_is_found_again_and_a_corrupt_one_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine();
        let cache = ArtifactCache::open(dir.path().to_owned(), &engine).unwrap();
        assert!(cache.get(&engine, SHA).is_none(), "empty cache");

        let bytes = wat::parse_str("(component)").unwrap();
        let component = Component::new(&engine, &bytes).unwrap();
        cache.put(SHA, &component);
        assert!(cache.get(&engine, SHA).is_some(), "cached artifact is used");

        let file = cache.path(SHA);
        std::fs::write(&file, b"not an artifact").unwrap();
        assert!(
            cache.get(&engine, SHA).is_none(),
            "corrupt artifact is a miss"
        );
        assert!(!file.exists(), "and is removed");
    }

    #[test]
    fn another_engine_configuration_never_sees_the_artifact() {
        let dir = tempfile::tempdir().unwrap();
        let plain = engine();
        let mut config = wasmtime::Config::new();
        config.epoch_interruption(true);
        let other = Engine::new(&config).unwrap();
        let a = ArtifactCache::open(dir.path().to_owned(), &plain).unwrap();
        let b = ArtifactCache::open(dir.path().to_owned(), &other).unwrap();
        let component = Component::new(&plain, wat::parse_str("(component)").unwrap()).unwrap();
        a.put(SHA, &component);
        assert_ne!(a.path(SHA), b.path(SHA));
        assert!(b.get(&other, SHA).is_none());
    }

    #[test]
    fn names_that_are_not_digests_are_never_paths() {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine();
        let cache = ArtifactCache::open(dir.path().to_owned(), &engine).unwrap();
        assert!(cache.get(&engine, "../../etc/passwd").is_none());
    }
}
