//! The API under abuse: webhooks aimed at the host's own machine or the cloud metadata service,
//! a webhook check that held at submit but not at delivery, a receiver that never answers, API
//! tokens, clients that send headers or bodies too slowly, and more event streams than a host
//! keeps open.
//!
//! Every case must end with its code within a stated bound, and an ordinary job must complete
//! after it. Each case prints a row (attack, outcome, time to contain); run with `--nocapture`
//! to see the table.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mediahost_e2e::client::expect_problem;
use mediahost_e2e::deployment::{Deployment, wait_for_state};
use mediahost_e2e::host::{StorageKind, presets_dir};
use mediahost_e2e::{Client, Host, media, process};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A refusal at submit needs no more than a name lookup.
const SUBMIT_BOUND: Duration = Duration::from_secs(5);
/// A delivery waits at most this long behind a receiver that never answers (its own receiver
/// answers at once; the outbox is polled every 200 ms).
const DELIVERY_BOUND: Duration = Duration::from_secs(5);
/// `--request-timeout-s` of the slow-client host, and how long past it a client may hold on.
const REQUEST_TIMEOUT_S: u64 = 2;
const SLOW_CLIENT_BOUND: Duration = Duration::from_secs(10);

fn row(attack: &str, outcome: &str, elapsed: Duration) {
    eprintln!(
        "[api-abuse] | {attack:<52} | {outcome:<22} | {:>6.2}s |",
        elapsed.as_secs_f64()
    );
}

fn convert(input: &str) -> Value {
    json!({"preset": "audio-convert", "inputs": {"main": input}, "params": {"codec": "wav"}})
}

/// An ordinary job completes on `client`'s host.
async fn ordinary_job(client: &Client, input: &str) {
    client.run_job_ok(&convert(input)).await;
}

/// Sends `request` and reads its answer as JSON.
async fn send_json(request: reqwest::RequestBuilder) -> Value {
    request.send().await.unwrap().json().await.unwrap()
}

async fn sine(client: &Client, label: &str) -> String {
    let dir = process::fixture_dir(label);
    client
        .upload(&media::sine(&dir.path().join("tone.wav"), 0.5))
        .await
}

/// What a webhook receiver on 127.0.0.1 has seen: the `webhook-id` of each delivery, when.
#[derive(Clone, Default)]
struct Receiver {
    seen: Arc<Mutex<Vec<(String, Instant)>>>,
    /// Connections accepted, open now, and open at once at most.
    connections: Arc<Mutex<(usize, usize, usize)>>,
}

impl Receiver {
    /// Listens on a free port: answers `204` to every request, or, with `hang`, accepts the
    /// connection and never answers. Returns the URL to give jobs.
    async fn start(&self, hang: bool) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                let (mut socket, _) = listener.accept().await.unwrap();
                {
                    let mut c = me.connections.lock().unwrap();
                    c.0 += 1;
                    c.1 += 1;
                    c.2 = c.2.max(c.1);
                }
                let me = me.clone();
                if hang {
                    // Read whatever comes and never answer, until the host gives up.
                    tokio::spawn(async move {
                        let mut buf = [0u8; 4096];
                        while matches!(socket.read(&mut buf).await, Ok(n) if n > 0) {}
                        me.connections.lock().unwrap().1 -= 1;
                    });
                    continue;
                }
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buf = [0u8; 4096];
                    // The host sends the whole request at once; headers then a JSON body.
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match socket.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buf[..n]),
                        }
                    }
                    let text = String::from_utf8_lossy(&request).to_lowercase();
                    let id = text
                        .lines()
                        .find_map(|l| l.strip_prefix("webhook-id:"))
                        .unwrap_or("")
                        .trim()
                        .to_owned();
                    me.seen.lock().unwrap().push((id, Instant::now()));
                    let _ = socket
                        .write_all(b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n")
                        .await;
                });
            }
        });
        format!("http://127.0.0.1:{port}/hook")
    }

    fn delivered(&self, job: &str) -> Option<Instant> {
        let needle = job.replace('-', "");
        self.seen
            .lock()
            .unwrap()
            .iter()
            .find(|(id, _)| id.contains(&needle))
            .map(|(_, at)| *at)
    }

    fn connections(&self) -> usize {
        self.connections.lock().unwrap().0
    }

    fn most_at_once(&self) -> usize {
        self.connections.lock().unwrap().2
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_to_loopback_link_local_and_mapped_addresses_are_refused_at_submit() {
    let host = Host::start_with_args(StorageKind::Local, &presets_dir(), &["--webhook-allow", ""])
        .unwrap_or_else(|e| panic!("{e}"));
    let client = host.client();
    let input = sine(&client, "ssrf").await;
    let receiver = Receiver::default();
    let open = receiver.start(false).await;
    let port = open.split(':').nth(2).unwrap().split('/').next().unwrap();
    for (attack, url) in [
        (
            "webhook to 127.0.0.1",
            format!("http://127.0.0.1:{port}/hook"),
        ),
        (
            "webhook to localhost",
            format!("http://localhost:{port}/hook"),
        ),
        (
            "webhook to 169.254.169.254 (cloud metadata)",
            "http://169.254.169.254/latest/meta-data/".to_owned(),
        ),
        ("webhook to [::1]", format!("http://[::1]:{port}/hook")),
        (
            "webhook to [::ffff:127.0.0.1]",
            format!("http://[::ffff:127.0.0.1]:{port}/hook"),
        ),
        ("webhook to 0.0.0.0", format!("http://0.0.0.0:{port}/hook")),
    ] {
        let started = Instant::now();
        let mut body = convert(&input);
        body["webhook"] = json!(url);
        let problem = expect_problem(client.submit(&body).await, 422, "WEBHOOK_URL_INVALID").await;
        let elapsed = started.elapsed();
        row(attack, problem.code(), elapsed);
        assert!(elapsed < SUBMIT_BOUND, "{attack}: took {elapsed:?}");
        let detail = problem.body["detail"].as_str().unwrap_or("");
        assert!(
            detail.contains("--webhook-allow"),
            "{attack}: the message should say how to allow it: {detail}"
        );
        assert_eq!(problem.body["param"], "webhook", "{}", problem.body);
        ordinary_job(&client, &input).await;
    }
    assert_eq!(receiver.connections(), 0, "a refused receiver was reached");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loopback_receiver_named_by_webhook_allow_gets_its_event() {
    let host = Host::shared_local();
    let client = host.client();
    let input = sine(&client, "allowed").await;
    let receiver = Receiver::default();
    let url = receiver.start(false).await;
    let started = Instant::now();
    let mut body = convert(&input);
    body["webhook"] = json!(url);
    let id = client.submit_ok(&body).await;
    client.wait_terminal(&id).await;
    while receiver.delivered(&id).is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the allowed receiver got no event"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    row(
        "webhook to 127.0.0.1 with --webhook-allow 127.0.0.1/32",
        "delivered",
        started.elapsed(),
    );
    ordinary_job(&client, &input).await;
}

/// The API process allows 127.0.0.1 but the worker does not: the worker checks again when it
/// delivers, as it would for a name that resolves to loopback by then (DNS rebinding; the
/// resolver-level check is unit-tested in `webhook::tests`). The event is given up, not retried.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_allowed_at_submit_is_checked_again_at_delivery() {
    let d = Deployment::start("recheck", &presets_dir(), &[]).await;
    let _worker = d.worker("worker", &["--webhook-allow", ""]);
    let input = sine(&d.client, "recheck").await;
    let receiver = Receiver::default();
    let url = receiver.start(false).await;
    let mut body = convert(&input);
    body["webhook"] = json!(url);
    let id = d.client.submit_ok(&body).await;
    wait_for_state(&d.client, &id, "COMPLETED", Duration::from_secs(60)).await;
    let started = Instant::now();
    let refused = "mediahost_webhook_deliveries_total{result=\"refused\"} 1";
    loop {
        let metrics = d.client.get("/metrics").await.text().await.unwrap();
        if metrics.contains(refused) {
            break;
        }
        assert!(
            started.elapsed() < DELIVERY_BOUND,
            "no refused delivery within {DELIVERY_BOUND:?}:\n{metrics}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let elapsed = started.elapsed();
    row(
        "webhook allowed at submit, loopback at delivery",
        "refused at delivery",
        elapsed,
    );
    // Given up, not retried: nothing reaches the receiver later either.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(receiver.connections(), 0, "the receiver was reached");
    let metrics = d.client.get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains(refused), "{metrics}");
    assert!(!metrics.contains("result=\"retry\""), "{metrics}");
    let after = d.client.submit_ok(&convert(&input)).await;
    wait_for_state(&d.client, &after, "COMPLETED", Duration::from_secs(60)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_never_answers_does_not_hold_up_another() {
    let host = Host::shared_local();
    let client = host.client();
    let input = sine(&client, "hung").await;
    let hung = Receiver::default();
    let hung_url = hung.start(true).await;
    let good = Receiver::default();
    let good_url = good.start(false).await;

    // Four events for the receiver that never answers, waiting in the outbox first.
    for _ in 0..4 {
        let mut body = convert(&input);
        body["webhook"] = json!(hung_url);
        let id = client.submit_ok(&body).await;
        client.wait_terminal(&id).await;
    }
    let mut body = convert(&input);
    body["webhook"] = json!(good_url);
    let id = client.submit_ok(&body).await;
    client.wait_terminal(&id).await;
    let finished = Instant::now();
    let delivered = loop {
        if let Some(at) = good.delivered(&id) {
            break at.saturating_duration_since(finished);
        }
        assert!(
            finished.elapsed() < DELIVERY_BOUND,
            "the answering receiver waited more than {DELIVERY_BOUND:?} behind one that never \
             answers ({} connections to it)",
            hung.connections()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    row(
        "receiver that never answers, 4 events queued first",
        "other receiver served",
        delivered,
    );
    assert!(
        hung.most_at_once() <= 2,
        "the receiver that never answers got {} deliveries at once; the limit is 2",
        hung.most_at_once()
    );
    ordinary_job(&client, &input).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_api_tokens_the_job_api_needs_one() {
    let host = Host::start_with_args(
        StorageKind::Local,
        &presets_dir(),
        &["--api-tokens", "team-a-secret,team-b-secret"],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let client = host.client();
    let http = client.http();
    for (attack, request) in [
        (
            "GET /v1/jobs without a token",
            http.get(client.url("/v1/jobs")),
        ),
        (
            "POST /v1/jobs without a token",
            http.post(client.url("/v1/jobs"))
                .json(&convert("local://uploads/x.wav")),
        ),
        (
            "POST /v1/uploads with a wrong token",
            http.post(client.url("/v1/uploads"))
                .bearer_auth("team-c-secret")
                .json(&json!({"filename": "a.wav"})),
        ),
        (
            "GET /v1/presets without a token",
            http.get(client.url("/v1/presets")),
        ),
    ] {
        let started = Instant::now();
        let problem = expect_problem(request.send().await.unwrap(), 401, "UNAUTHORIZED").await;
        row(attack, problem.code(), started.elapsed());
        let detail = problem.body["detail"].as_str().unwrap_or("");
        assert!(detail.contains("--api-tokens"), "{detail}");
    }
    for open in ["/healthz", "/readyz", "/metrics"] {
        let status = http.get(client.url(open)).send().await.unwrap().status();
        assert_eq!(status, 200, "{open} stays open");
    }

    // With a token: upload (the signed PUT needs none), submit, poll, to completion.
    let started = Instant::now();
    let token = "team-b-secret";
    let grant = send_json(
        http.post(client.url("/v1/uploads"))
            .bearer_auth(token)
            .json(&json!({"filename": "tone.wav"})),
    )
    .await;
    let dir = process::fixture_dir("tokens");
    let bytes = std::fs::read(media::sine(&dir.path().join("tone.wav"), 0.5)).unwrap();
    let put = http
        .put(grant["upload_url"].as_str().unwrap())
        .body(bytes)
        .send()
        .await
        .unwrap();
    assert!(put.status().is_success(), "{}", put.status());
    let submitted = http
        .post(client.url("/v1/jobs"))
        .bearer_auth(token)
        .json(&convert(grant["uri"].as_str().unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(submitted.status(), 202);
    let id = submitted.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    loop {
        let job = send_json(
            http.get(client.url(&format!("/v1/jobs/{id}")))
                .bearer_auth(token),
        )
        .await;
        if job["state"] == "COMPLETED" {
            break;
        }
        assert!(
            !matches!(job["state"].as_str(), Some("FAILED" | "DEAD")),
            "{job}"
        );
        assert!(started.elapsed() < Duration::from_secs(60), "{job}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    row(
        "ordinary job with an API token",
        "COMPLETED",
        started.elapsed(),
    );
}

/// Sends `head` and then nothing more; returns what the host answered and when the connection
/// closed (`None`: still open after the bound).
async fn stall(host: &Host, head: &[u8], trickle: bool) -> (String, Option<Duration>) {
    let mut socket = connect(host).await;
    socket.write_all(head).await.unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    let closed = loop {
        if started.elapsed() >= SLOW_CLIENT_BOUND {
            break None;
        }
        // One more header byte now and then, so the connection is never idle.
        if trickle && socket.write_all(b"x").await.is_err() {
            break Some(started.elapsed());
        }
        match tokio::time::timeout(Duration::from_millis(500), socket.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break Some(started.elapsed()),
            Ok(Ok(n)) => answer.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
    };
    (String::from_utf8_lossy(&answer).into_owned(), closed)
}

/// A raw connection to `host`'s HTTP port.
async fn connect(host: &Host) -> TcpStream {
    let addr = host.base_url().trim_start_matches("http://").to_owned();
    TcpStream::connect(addr).await.unwrap()
}

/// Asserts that a request `stall` sent was answered 408 REQUEST_TIMEOUT and closed, and prints
/// its row.
fn assert_timed_out(attack: &str, (answer, closed): (String, Option<Duration>)) {
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("REQUEST_TIMEOUT"), "{answer}");
    let closed = closed.unwrap_or_else(|| panic!("not answered: {attack}"));
    row(attack, "REQUEST_TIMEOUT", closed);
}

/// The path (without scheme and host) of the signed URL of a fresh upload grant for `filename`.
async fn upload_path(client: &Client, filename: &str) -> String {
    let grant = send_json(
        client
            .http()
            .post(client.url("/v1/uploads"))
            .json(&json!({"filename": filename})),
    )
    .await;
    let url = grant["upload_url"].as_str().unwrap();
    let path = url.split_once("//").unwrap().1.split_once('/').unwrap().1;
    path.to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_cut_off_within_the_request_timeout() {
    let timeout = REQUEST_TIMEOUT_S.to_string();
    let host = Host::start_with_args(
        StorageKind::Local,
        &presets_dir(),
        &["--request-timeout-s", &timeout],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let client = host.client();
    let input = sine(&client, "slow").await;

    let (_, closed) = stall(
        &host,
        b"GET /v1/jobs HTTP/1.1\r\nHost: mediahost\r\nX-Slow: ",
        true,
    )
    .await;
    let closed = closed.expect("a client that never finishes its headers was not disconnected");
    row("slowloris: headers never finished", "disconnected", closed);

    assert_timed_out(
        "JSON body stalls after 11 of 400 bytes",
        stall(
            &host,
            b"POST /v1/jobs HTTP/1.1\r\nHost: mediahost\r\ncontent-type: application/json\r\n\
              content-length: 400\r\n\r\n{\"preset\": ",
            false,
        )
        .await,
    );

    let path = upload_path(&client, "slow.wav").await;
    let head = format!(
        "PUT /{path} HTTP/1.1\r\nHost: mediahost\r\ncontent-length: 100000\r\n\r\nRIFF0000WAVE"
    );
    assert_timed_out(
        "upload stalls after 12 of 100000 bytes",
        stall(&host, head.as_bytes(), false).await,
    );

    // A slow upload that keeps sending is not cut off: the timeout is between chunks.
    let path = upload_path(&client, "steady.bin").await;
    let mut socket = connect(&host).await;
    let chunks = REQUEST_TIMEOUT_S as usize * 3;
    let head =
        format!("PUT /{path} HTTP/1.1\r\nHost: mediahost\r\ncontent-length: {chunks}\r\n\r\n");
    socket.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    for _ in 0..chunks {
        tokio::time::sleep(Duration::from_millis(500)).await;
        socket.write_all(b"x").await.unwrap();
    }
    let mut answer = [0u8; 12];
    socket.read_exact(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert_eq!(answer, "HTTP/1.1 201", "a steady slow upload was refused");
    row(
        "upload sending a byte every 0.5 s, past the timeout",
        "stored",
        started.elapsed(),
    );

    ordinary_job(&client, &input).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_streams_over_the_cap_are_refused_until_one_closes() {
    // An API process with no worker, so the job stays PENDING and its streams stay open.
    let d = Deployment::start("streams", &presets_dir(), &["--max-event-streams", "2"]).await;
    let input = sine(&d.client, "streams").await;
    let id = d.client.submit_ok(&convert(&input)).await;
    let path = format!("/v1/jobs/{id}/events");
    let open = || async {
        let mut stream = d.client.get(&path).await;
        assert_eq!(stream.status(), 200);
        // The first event (the job's state) arrives at once.
        stream.chunk().await.unwrap().expect("a first event");
        stream
    };
    let first = open().await;
    let _second = open().await;

    let started = Instant::now();
    let problem = expect_problem(d.client.get(&path).await, 503, "HOST_OVERLOADED").await;
    row(
        "third event stream, cap 2",
        problem.code(),
        started.elapsed(),
    );
    assert!(
        problem.body["detail"]
            .as_str()
            .unwrap_or("")
            .contains("--max-event-streams"),
        "{}",
        problem.body
    );

    // The client of one goes away: its permit comes back.
    drop(first);
    let started = Instant::now();
    loop {
        let resp = d.client.get(&path).await;
        if resp.status() == 200 {
            break;
        }
        assert_eq!(resp.status(), 503);
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "a closed stream's permit did not come back"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    row(
        "a stream's client goes away",
        "permit released",
        started.elapsed(),
    );

    let _worker = d.worker("worker", &[]);
    wait_for_state(&d.client, &id, "COMPLETED", Duration::from_secs(60)).await;
}
