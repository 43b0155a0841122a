//! The HTTP calls a user of mediahost makes, with the checks a user would make on the answers.
//!
//! Every wait is bounded. A [`Client`] dropped while its test is panicking prints the tail of
//! the host's log, so a failing assertion comes with what the host said at the time.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

/// How long a job may take to reach COMPLETED or FAILED.
pub const JOB_TIMEOUT: Duration = Duration::from_secs(120);
const POLL_EVERY: Duration = Duration::from_millis(150);

pub struct Client {
    http: reqwest::Client,
    base: String,
    host_log: PathBuf,
    warnings: Vec<String>,
}

impl Drop for Client {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for warning in &self.warnings {
                eprintln!("[e2e] warning: {warning}");
            }
            eprintln!(
                "--- mediahost log tail ({}) ---\n{}\n--- end of mediahost log ---",
                self.host_log.display(),
                crate::process::log_tail(&self.host_log, 80)
            );
        }
    }
}

/// An RFC 9457 problem answer, already checked for the contract's shape.
#[derive(Debug)]
pub struct Problem {
    pub status: StatusCode,
    pub content_type: String,
    pub body: Value,
}

impl Problem {
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }
}

impl Client {
    /// A client for the host at `base`; on a panicking drop it prints `warnings` and the tail of
    /// `host_log`.
    pub fn new(base: String, host_log: PathBuf, warnings: Vec<String>) -> Client {
        let http = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(60))
            .build()
            .expect("build the HTTP client");
        Client {
            http,
            base,
            host_log,
            warnings,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        let url = self.url(path);
        self.http
            .get(&url)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}"))
    }

    /// `GET path`, asserting 200 and a JSON body.
    /// The answers of the API's own routes are checked against the wire contract.
    pub async fn get_json(&self, path: &str) -> Value {
        let resp = self.get(path).await;
        let what = format!("GET {path}");
        let body = json_body(resp, StatusCode::OK, &what).await;
        check_contract(path, &body, &what);
        body
    }

    /// Asserts `GET /healthz` answers 200 `{"status":"ok"}`.
    pub async fn assert_healthy(&self) {
        let body = self.get_json("/healthz").await;
        assert_eq!(body["status"], "ok", "GET /healthz body: {body}");
    }

    /// `POST /v1/uploads`, then `PUT` the file's bytes to the returned `upload_url`.
    /// Returns the storage URI to use as a job input.
    pub async fn upload(&self, path: &Path) -> String {
        let filename = path
            .file_name()
            .and_then(|n| n.to_str())
            .expect("upload a file with a UTF-8 name");
        self.upload_as(path, filename).await
    }

    /// Like [`Client::upload`], under another file name.
    pub async fn upload_as(&self, path: &Path, filename: &str) -> String {
        self.upload_with_grant(path, filename).await.0
    }

    /// Uploads like [`Client::upload_as`]; returns the URI and the host's upload grant
    /// (`uri`, `upload_url`, `method`, `expires_at`).
    pub async fn upload_with_grant(&self, path: &Path, filename: &str) -> (String, Value) {
        let resp = self
            .http
            .post(self.url("/v1/uploads"))
            .json(&json!({ "filename": filename }))
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST /v1/uploads: {e}"));
        let grant = json_body(resp, StatusCode::CREATED, "POST /v1/uploads").await;
        conforms::<mediahost_api::UploadGrant>(&grant, "POST /v1/uploads");
        let uri = grant["uri"]
            .as_str()
            .unwrap_or_else(|| panic!("upload grant without uri: {grant}"))
            .to_string();
        let upload_url = grant["upload_url"]
            .as_str()
            .unwrap_or_else(|| panic!("upload grant without upload_url: {grant}"));
        assert!(
            uri.ends_with(&format!("/{filename}")),
            "upload URI {uri} should keep the file name {filename}"
        );
        let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        let resp = self
            .http
            .put(upload_url)
            .body(bytes)
            .send()
            .await
            .unwrap_or_else(|e| panic!("PUT {upload_url}: {e}"));
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        assert!(
            status.is_success(),
            "PUT to upload_url {upload_url} answered {status}: {text}"
        );
        (uri, grant)
    }

    /// `POST /v1/jobs` with a JSON body; the raw response.
    pub async fn submit(&self, body: &Value) -> reqwest::Response {
        self.http
            .post(self.url("/v1/jobs"))
            .json(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST /v1/jobs: {e}"))
    }

    /// `POST /v1/jobs` with raw bytes as `application/json` (for malformed bodies).
    pub async fn submit_raw(&self, body: &'static str) -> reqwest::Response {
        self.http
            .post(self.url("/v1/jobs"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST /v1/jobs: {e}"))
    }

    /// Submits a job, asserts 202 with a new job PENDING (or COMPLETED when the result cache
    /// answered it, saying from which job), and returns its id.
    pub async fn submit_ok(&self, body: &Value) -> String {
        let resp = self.submit(body).await;
        let job = json_body(resp, StatusCode::ACCEPTED, &format!("POST /v1/jobs {body}")).await;
        conforms::<mediahost_api::Job>(&job, "POST /v1/jobs");
        let cached = job["state"] == "COMPLETED" && job["cached"]["job"].is_string();
        assert!(
            job["state"] == "PENDING" || cached,
            "a new job starts PENDING, or COMPLETED from the result cache: {job}"
        );
        job["id"]
            .as_str()
            .unwrap_or_else(|| panic!("202 without a job id: {job}"))
            .to_string()
    }

    /// `GET /v1/jobs/{id}`, asserting 200 and that the answer is exactly a contract `Job`.
    pub async fn job(&self, id: &str) -> Value {
        self.get_json(&format!("/v1/jobs/{id}")).await
    }

    /// `GET /v1/jobs/{id}` read through the wire contract.
    pub async fn job_typed(&self, id: &str) -> mediahost_api::Job {
        serde_json::from_value(self.job(id).await).expect("checked by job()")
    }

    /// Polls the job until COMPLETED or FAILED; panics with the job JSON after [`JOB_TIMEOUT`].
    pub async fn wait_terminal(&self, id: &str) -> Value {
        let deadline = Instant::now() + JOB_TIMEOUT;
        loop {
            let job = self.job(id).await;
            match job["state"].as_str() {
                Some("COMPLETED" | "FAILED" | "DEAD" | "CANCELLED") => return job,
                Some("PENDING" | "PROCESSING") => {}
                other => panic!("job {id} has an unknown state {other:?}: {job:#}"),
            }
            if Instant::now() >= deadline {
                panic!(
                    "job {id} not finished after {}s; last seen:\n{job:#}",
                    JOB_TIMEOUT.as_secs()
                );
            }
            tokio::time::sleep(POLL_EVERY).await;
        }
    }

    /// Submits a job and waits for it to finish.
    pub async fn run_job(&self, body: &Value) -> Value {
        let id = self.submit_ok(body).await;
        self.wait_terminal(&id).await
    }

    /// Runs a job and asserts it COMPLETED with at least one output.
    pub async fn run_job_ok(&self, body: &Value) -> Value {
        let job = self.run_job(body).await;
        assert_completed(&job);
        job
    }

    /// GETs a `download_url` and writes the bytes to `dest`.
    pub async fn download(&self, download_url: &str, dest: &Path) -> PathBuf {
        let resp = self
            .http
            .get(download_url)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {download_url}: {e}"));
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .unwrap_or_else(|e| panic!("read body of {download_url}: {e}"));
        assert!(
            status == StatusCode::OK,
            "GET download_url {download_url} answered {status}: {}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(500)])
        );
        std::fs::write(dest, &bytes).unwrap_or_else(|e| panic!("write {}: {e}", dest.display()));
        dest.to_path_buf()
    }

    /// Downloads the job's only (or first) output into `dir` with the output's container as
    /// extension; asserts the size matches what the job reported.
    pub async fn download_output(&self, job: &Value, dir: &Path, stem: &str) -> PathBuf {
        let output = &job["outputs"][0];
        let url = output["download_url"]
            .as_str()
            .unwrap_or_else(|| panic!("output without download_url: {job:#}"));
        let ext = output["container"].as_str().unwrap_or("bin");
        let path = self.download(url, &dir.join(format!("{stem}.{ext}"))).await;
        let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        assert!(len > 0, "downloaded output is empty: {job:#}");
        if let Some(size) = output["size_bytes"].as_u64() {
            assert_eq!(
                size, len,
                "size_bytes in the job vs. bytes downloaded: {job:#}"
            );
        }
        path
    }
}

/// Asserts a job COMPLETED with outputs and no error.
pub fn assert_completed(job: &Value) {
    assert_eq!(job["state"], "COMPLETED", "job did not complete:\n{job:#}");
    assert!(
        job["error"].is_null(),
        "completed job carries an error:\n{job:#}"
    );
    let outputs = job["outputs"].as_array();
    assert!(
        outputs.is_some_and(|o| !o.is_empty()),
        "completed job has no outputs:\n{job:#}"
    );
}

/// Asserts `value` is exactly what the wire contract's `T` describes: it parses as a `T`, and
/// writing that `T` back gives the same JSON (no member the contract lacks, none missing).
pub fn conforms<T: serde::de::DeserializeOwned + serde::Serialize>(value: &Value, what: &str) -> T {
    let typed: T = serde_json::from_value(value.clone()).unwrap_or_else(|e| {
        panic!(
            "{what} does not fit the contract's {}: {e}\n{value:#}",
            std::any::type_name::<T>()
        )
    });
    let back = serde_json::to_value(&typed).expect("a contract type serializes");
    assert_eq!(
        &back,
        value,
        "{what} carries members the contract's {} does not describe, or lacks some",
        std::any::type_name::<T>()
    );
    typed
}

/// Checks the answer of `GET path` against the contract type of that route, for the API's own
/// JSON routes.
fn check_contract(path: &str, body: &Value, what: &str) {
    let path = path.split('?').next().unwrap_or(path);
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segments.as_slice() {
        ["healthz"] => {
            conforms::<mediahost_api::Health>(body, what);
        }
        ["readyz"] => {
            conforms::<mediahost_api::Ready>(body, what);
        }
        ["v1", "queue"] => {
            conforms::<mediahost_api::QueueDepth>(body, what);
        }
        ["v1", "jobs"] => {
            conforms::<mediahost_api::JobList>(body, what);
        }
        ["v1", "jobs", _] => {
            conforms::<mediahost_api::Job>(body, what);
        }
        ["v1", "jobs", _, "logs"] => {
            conforms::<mediahost_api::JobLogs>(body, what);
        }
        ["v1", "presets"] => {
            conforms::<mediahost_api::PresetList>(body, what);
        }
        ["v1", "presets", _] => {
            conforms::<mediahost_api::Preset>(body, what);
        }
        ["v1", "presets", _, _] => {
            conforms::<mediahost_api::PresetVersion>(body, what);
        }
        _ => {}
    }
}

/// A job view without its signed download URLs (which differ from answer to answer, and which
/// webhooks leave out), to compare the same job seen in different places.
pub fn without_download_urls(job: &Value) -> Value {
    let mut job = job.clone();
    if let Some(outputs) = job.get_mut("outputs").and_then(Value::as_array_mut) {
        for output in outputs {
            if let Some(o) = output.as_object_mut() {
                o.remove("download_url");
            }
            if let Some(objects) = output.get_mut("objects").and_then(Value::as_array_mut) {
                for object in objects.iter_mut().filter_map(Value::as_object_mut) {
                    object.remove("download_url");
                }
            }
        }
    }
    job
}

/// Reads a response body as JSON after asserting its status.
pub async fn json_body(resp: reqwest::Response, expected: StatusCode, what: &str) -> Value {
    let status = resp.status();
    let text = resp
        .text()
        .await
        .unwrap_or_else(|e| panic!("{what}: read body: {e}"));
    assert_eq!(status, expected, "{what} answered {status}: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{what}: body is not JSON ({e}): {text}"))
}

/// Asserts an error answer follows the contract: the status, `application/problem+json`, and a
/// body with the stable `code`, a matching `status` and `type`, a title and a non-empty detail.
pub async fn expect_problem(resp: reqwest::Response, status: u16, code: &str) -> Problem {
    let got = resp.status();
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let text = resp.text().await.unwrap_or_default();
    assert_eq!(
        got.as_u16(),
        status,
        "expected {status} {code}, got {got}: {text}"
    );
    assert!(
        content_type.starts_with("application/problem+json"),
        "error content-type is {content_type:?}, expected application/problem+json; body: {text}"
    );
    let body: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("problem body is not JSON ({e}): {text}"));
    conforms::<mediahost_api::Problem>(&body, "a problem document");
    assert_eq!(body["code"], code, "problem code: {body:#}");
    assert_eq!(body["status"], status, "problem status field: {body:#}");
    let dashed = code.to_lowercase().replace('_', "-");
    assert_eq!(
        body["type"].as_str().unwrap_or(""),
        format!("https://mediahost.dev/problems/{dashed}"),
        "problem type: {body:#}"
    );
    assert!(
        body["title"].as_str().is_some_and(|t| !t.is_empty()),
        "problem without a title: {body:#}"
    );
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| !d.trim().is_empty()),
        "problem without a detail message: {body:#}"
    );
    Problem {
        status: got,
        content_type,
        body,
    }
}

/// Sends a request whose headers announce `announced` body bytes, then only the first 64 KiB
/// of them, and returns the whole answer as text (the request asks the host to close after it).
/// For refusals a host must give before reading a body: a client that sent all of a large body
/// could find the connection closed under it, since the host never reads the rest.
pub async fn refused_before_body(
    base_url: &str,
    request_line: &str,
    headers: &[(&str, &str)],
    announced: usize,
    limit: Duration,
) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let authority = base_url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(authority)
        .await
        .expect("connect to the host");
    let mut head = format!("{request_line} HTTP/1.1\r\nHost: {authority}\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!(
        "Content-Length: {announced}\r\nConnection: close\r\n\r\n"
    ));
    stream
        .write_all(head.as_bytes())
        .await
        .expect("send the headers");
    let _ = stream.write_all(&vec![0u8; announced.min(64 << 10)]).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(limit, stream.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).into_owned()
}
