//! Finding Redis: the configured URL, or 127.0.0.1:6379, or a private `redis-server` this
//! process starts (with an append-only file under the data directory) and stops on exit.
//!
//! The private server requires a random password, kept in `<data-dir>/redis/password` (mode
//! 0600) and handed to redis-server in a 0600 configuration file, never on its command line (any
//! local user can read a command line), so a local process that can reach the port cannot rewrite
//! job records.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

/// A redis-server this process started; killed when dropped.
pub struct PrivateRedis {
    _child: Child,
}

async fn answers(url: &str) -> bool {
    let Ok(client) = redis::Client::open(url) else {
        return false;
    };
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_millis(500)))
        .set_response_timeout(Some(Duration::from_millis(500)));
    match client
        .get_multiplexed_async_connection_with_config(&config)
        .await
    {
        Ok(mut conn) => redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .is_ok(),
        Err(_) => false,
    }
}

/// Resolves the Redis URL to use, starting a private server when that is the only way.
pub async fn locate(
    configured: Option<&str>,
    data_dir: &Path,
) -> anyhow::Result<(String, Option<PrivateRedis>)> {
    if let Some(url) = configured {
        return Ok((url.to_owned(), None));
    }
    let default = "redis://127.0.0.1:6379";
    if answers(default).await {
        return Ok((default.to_owned(), None));
    }
    let dir = data_dir.join("redis");
    std::fs::create_dir_all(&dir)?;
    let (url, private) = start(&dir).await.map_err(|e| {
        anyhow::anyhow!(
            "nothing answers at {default} and a private redis-server could not be started: {e}"
        )
    })?;
    Ok((url, Some(private)))
}

/// Starts a private redis-server keeping its files (and its password) in `dir`.
async fn start(dir: &Path) -> anyhow::Result<(String, PrivateRedis)> {
    let dir = std::fs::canonicalize(dir)?;
    let password = password(&dir)?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let conf = dir.join("redis.conf");
    write_private(
        &conf,
        format!(
            "bind 127.0.0.1\nport {port}\nsave \"\"\nappendonly yes\nprotected-mode yes\n\
             requirepass {password}\ndir \"{}\"\n",
            dir.display().to_string().escape_default()
        )
        .as_bytes(),
    )?;
    let child = Command::new("redis-server")
        .arg(&conf)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            anyhow::anyhow!(
                "redis-server did not start ({e}); install it (apt-get install redis-server) \
                 or pass --redis"
            )
        })?;
    let url = format!("redis://:{password}@127.0.0.1:{port}");
    let started = Instant::now();
    while !answers(&url).await {
        if started.elapsed() > Duration::from_secs(10) {
            anyhow::bail!("the private redis-server on port {port} did not answer within 10 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tracing::info!(port, dir = %dir.display(), "started a private redis-server (password in redis/password)");
    Ok((url, PrivateRedis { _child: child }))
}

/// The private server's password: read from `dir/password`, or created there (mode 0600).
fn password(dir: &Path) -> anyhow::Result<String> {
    let mut fresh = [0u8; 32];
    rand::fill(&mut fresh[..]);
    let path = dir.join("password");
    let bytes = crate::secret::read_or_create(&path, hex::encode(fresh).into_bytes())
        .map_err(|e| anyhow::anyhow!("cannot read or create {}: {e}", path.display()))?;
    let password = String::from_utf8_lossy(&bytes).trim().to_owned();
    if password.is_empty() || !password.bytes().all(|b| b.is_ascii_alphanumeric()) {
        anyhow::bail!(
            "{} must hold letters and digits only; remove it to make a new password",
            path.display()
        );
    }
    Ok(password)
}

/// Writes `bytes` to `path`, readable and writable by this user only, replacing what was there.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let _ = std::fs::remove_file(path);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[tokio::test]
    async fn the_private_server_needs_its_password() {
        if std::process::Command::new("redis-server")
            .arg("--version")
            .output()
            .is_err()
        {
            panic!("redis-server is not installed; scripts/install-deps installs it");
        }
        let data = tempfile::tempdir().unwrap();
        // Started directly (not through `locate`, which prefers a server on 6379 when one runs).
        let dir = data.path().join("redis");
        std::fs::create_dir_all(&dir).unwrap();
        let (url, _server) = start(&dir).await.unwrap();
        let secret = std::fs::read_to_string(dir.join("password")).unwrap();
        assert!(url.contains(secret.trim()));
        for file in ["password", "redis.conf"] {
            let mode = std::fs::metadata(dir.join(file))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{file}");
        }
        assert!(answers(&url).await, "the password opens the server");
        let without = url.replace(&format!(":{}@", secret.trim()), "");
        assert!(
            !answers(&without).await,
            "the server answered without its password"
        );
        let wrong = url.replace(secret.trim(), "wrong");
        assert!(
            !answers(&wrong).await,
            "the server answered a wrong password"
        );
    }
}
