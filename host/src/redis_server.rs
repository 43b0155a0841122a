//! Finding Redis: the configured URL, or 127.0.0.1:6379, or a private `redis-server` this
//! process starts (with an append-only file under the data directory) and stops on exit.

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
    let dir = std::fs::canonicalize(&dir)?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let child = Command::new("redis-server")
        .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
        .args([
            "--save",
            "",
            "--appendonly",
            "yes",
            "--protected-mode",
            "yes",
        ])
        .arg("--dir")
        .arg(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            anyhow::anyhow!(
                "nothing answers at {default} and redis-server could not be started ({e}); \
                 install it (apt-get install redis-server) or pass --redis"
            )
        })?;
    let url = format!("redis://127.0.0.1:{port}");
    let started = Instant::now();
    while !answers(&url).await {
        if started.elapsed() > Duration::from_secs(10) {
            anyhow::bail!("the private redis-server on port {port} did not answer within 10 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tracing::info!(%url, dir = %dir.display(), "started a private redis-server");
    Ok((url, Some(PrivateRedis { _child: child })))
}
