//! Secrets the host keeps in its data directory (the URL-signing key, the admin token), created
//! on first use so that the embedded defaults need no set-up.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Reads the secret at `path`, or creates it (mode 0600) holding `fresh`. Several processes may
/// start at once: exactly one creates the file and the others read what it wrote.
pub fn read_or_create(path: &Path, fresh: Vec<u8>) -> std::io::Result<Vec<u8>> {
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(mut f) => {
            f.write_all(&fresh)?;
            f.sync_all()?;
            Ok(fresh)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            // Another process may be writing it right now: wait for the whole secret.
            for _ in 0..50 {
                let existing = std::fs::read(path)?;
                if existing.len() >= fresh.len() {
                    return Ok(existing);
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(std::io::Error::other(format!(
                "{} is shorter than {} bytes; remove it to make a new one",
                path.display(),
                fresh.len()
            )))
        }
        Err(e) => Err(e),
    }
}

/// The admin token: given, or the one in `path` (created with a random token).
pub fn admin_token(given: Option<&str>, path: &Path) -> anyhow::Result<String> {
    if let Some(token) = given.map(str::trim).filter(|t| !t.is_empty()) {
        return Ok(token.to_owned());
    }
    let mut fresh = [0u8; 32];
    rand::fill(&mut fresh[..]);
    let bytes = read_or_create(path, hex::encode(fresh).into_bytes())
        .map_err(|e| anyhow::anyhow!("cannot read or create {}: {e}", path.display()))?;
    let token = String::from_utf8_lossy(&bytes).trim().to_owned();
    if token.is_empty() {
        anyhow::bail!("{} is empty; remove it to make a new token", path.display());
    }
    Ok(token)
}
