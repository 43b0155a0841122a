//! A private S3-compatible server (`s3s-fs`) for one test binary, and a SigV4 query-string
//! presigner so the harness can check the server on its own, independent of the host.
//!
//! Buckets are directories under the server's root, so creating one is a `mkdir`. The presigner
//! is deliberately small (path-style URLs, `UNSIGNED-PAYLOAD`, only the `host` header signed): it
//! is what the harness self-test needs, not a general S3 client.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::process::{self, Daemon};

pub const REGION: &str = "us-east-1";

pub struct S3Server {
    daemon: Daemon,
    port: u16,
    root: PathBuf,
    access_key: String,
    secret_key: String,
    _dir: tempfile::TempDir,
}

impl S3Server {
    /// Starts `s3s-fs` on a free 127.0.0.1 port with a fresh root directory and random keys.
    pub fn start() -> S3Server {
        let program = s3s_fs_binary();
        let dir = process::fixture_dir("s3");
        let root = dir.path().join("root");
        std::fs::create_dir_all(&root).expect("create the s3s-fs root directory");
        let access_key =
            format!("AKE2E{}", &uuid::Uuid::new_v4().simple().to_string()[..12]).to_uppercase();
        let secret_key = uuid::Uuid::new_v4().simple().to_string();
        let mut last_log = String::new();
        for _attempt in 0..3 {
            let port = process::free_port();
            let mut command = Command::new(&program);
            command
                .args(["--host", "127.0.0.1", "--port"])
                .arg(port.to_string())
                .args(["--access-key", &access_key, "--secret-key", &secret_key])
                .arg(&root)
                .env(
                    "RUST_LOG",
                    std::env::var("E2E_S3_LOG").unwrap_or_else(|_| "info".into()),
                );
            let log = dir.path().join(format!("s3s-fs-{port}.log"));
            let mut daemon = Daemon::spawn("s3s-fs", command, &log);
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let deadline = Instant::now() + Duration::from_secs(15);
            while Instant::now() < deadline {
                if daemon.exited().is_some() {
                    break;
                }
                if TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok() {
                    return S3Server {
                        daemon,
                        port,
                        root,
                        access_key,
                        secret_key,
                        _dir: dir,
                    };
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            last_log = daemon.log_tail(20);
        }
        panic!(
            "s3s-fs did not accept connections on 127.0.0.1 after 3 tries; its log:\n{last_log}"
        );
    }

    /// `http://127.0.0.1:<port>`
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn access_key(&self) -> &str {
        &self.access_key
    }

    pub fn secret_key(&self) -> &str {
        &self.secret_key
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn log_tail(&self, lines: usize) -> String {
        self.daemon.log_tail(lines)
    }

    /// Stops the server: storage is unavailable until [`S3Server::resume`].
    pub fn stop(&mut self) {
        self.daemon.stop(Duration::from_secs(2));
    }

    /// Starts the server again on the same port, root and keys.
    pub fn resume(&mut self) {
        let mut command = Command::new(s3s_fs_binary());
        command
            .args(["--host", "127.0.0.1", "--port"])
            .arg(self.port.to_string())
            .args([
                "--access-key",
                &self.access_key,
                "--secret-key",
                &self.secret_key,
            ])
            .arg(&self.root);
        let log = self
            ._dir
            .path()
            .join(format!("s3s-fs-{}-resumed.log", self.port));
        self.daemon = Daemon::spawn("s3s-fs", command, &log);
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let deadline = Instant::now() + Duration::from_secs(15);
        while TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_err() {
            assert!(
                Instant::now() < deadline,
                "s3s-fs did not come back: {}",
                self.daemon.log_tail(20)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Creates a bucket (s3s-fs keeps each bucket as a directory under its root).
    pub fn create_bucket(&self, bucket: &str) {
        std::fs::create_dir_all(self.root.join(bucket))
            .unwrap_or_else(|e| panic!("create bucket directory {bucket}: {e}"));
    }

    /// A path-style SigV4 presigned URL for `method` on `bucket/key`, valid for `expires_s`.
    pub fn presign(&self, method: &str, bucket: &str, key: &str, expires_s: u32) -> String {
        presign(&Presign {
            method,
            endpoint_host: &format!("127.0.0.1:{}", self.port),
            bucket,
            key,
            access_key: &self.access_key,
            secret_key: &self.secret_key,
            region: REGION,
            expires_s,
            now: SystemTime::now(),
        })
    }
}

/// Where `s3s-fs` is: `$S3S_FS_BIN`, PATH, or cargo's bin directory.
pub fn s3s_fs_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("S3S_FS_BIN") {
        return PathBuf::from(path);
    }
    if let Some(path) = process::which("s3s-fs") {
        return path;
    }
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")));
    if let Some(path) = cargo_home.map(|h| h.join("bin/s3s-fs"))
        && process::is_executable(&path)
    {
        return path;
    }
    panic!(
        "s3s-fs is not installed: run `scripts/install-deps --test` \
         (it runs `cargo install s3s-fs@0.14.1 --features binary --locked`)"
    )
}

/// Everything a presigned URL depends on.
pub struct Presign<'a> {
    pub method: &'a str,
    /// `host[:port]` exactly as the client will send it in the Host header.
    pub endpoint_host: &'a str,
    pub bucket: &'a str,
    pub key: &'a str,
    pub access_key: &'a str,
    pub secret_key: &'a str,
    pub region: &'a str,
    pub expires_s: u32,
    pub now: SystemTime,
}

/// AWS Signature Version 4, query-string form, for a path-style `http://` URL.
pub fn presign(p: &Presign<'_>) -> String {
    let (date, amz_date) = amz_dates(p.now);
    let scope = format!("{date}/{}/s3/aws4_request", p.region);
    let path = format!(
        "/{}/{}",
        uri_encode(p.bucket, true),
        uri_encode(p.key, false)
    );
    let mut query = [
        ("X-Amz-Algorithm", "AWS4-HMAC-SHA256".to_string()),
        ("X-Amz-Credential", format!("{}/{scope}", p.access_key)),
        ("X-Amz-Date", amz_date.clone()),
        ("X-Amz-Expires", p.expires_s.to_string()),
        ("X-Amz-SignedHeaders", "host".to_string()),
    ]
    .map(|(k, v)| (uri_encode(k, true), uri_encode(&v, true)));
    query.sort();
    let canonical_query = query
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let canonical_request = format!(
        "{}\n{path}\n{canonical_query}\nhost:{}\n\nhost\nUNSIGNED-PAYLOAD",
        p.method, p.endpoint_host
    );
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex(&Sha256::digest(canonical_request.as_bytes()))
    );
    let k_date = hmac(format!("AWS4{}", p.secret_key).as_bytes(), date.as_bytes());
    let k_region = hmac(&k_date, p.region.as_bytes());
    let k_service = hmac(&k_region, b"s3");
    let k_signing = hmac(&k_service, b"aws4_request");
    let signature = hex(&hmac(&k_signing, string_to_sign.as_bytes()));
    format!(
        "http://{}{path}?{canonical_query}&X-Amz-Signature={signature}",
        p.endpoint_host
    )
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// RFC 3986 encoding as SigV4 wants it: unreserved characters stay, `/` stays in paths.
fn uri_encode(s: &str, encode_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b'/' if !encode_slash => out.push('/'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// (`YYYYMMDD`, `YYYYMMDDTHHMMSSZ`) in UTC.
fn amz_dates(now: SystemTime) -> (String, String) {
    let secs = now
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    let date = format!("{y:04}{m:02}{d:02}");
    let time = format!("{:02}{:02}{:02}", rem / 3600, rem % 3600 / 60, rem % 60);
    (date.clone(), format!("{date}T{time}Z"))
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_utc_calendar_dates() {
        let t = UNIX_EPOCH + Duration::from_secs(1_709_251_199); // 2024-02-29T23:59:59Z
        assert_eq!(amz_dates(t), ("20240229".into(), "20240229T235959Z".into()));
    }
}
