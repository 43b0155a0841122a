//! Job webhooks against a real receiver that is down, then up: every event is delivered, a
//! repeated delivery carries the same `webhook-id`, every signature verifies with the
//! `standardwebhooks` crate under both secrets of a rotation, and `410 Gone` disables a URL.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mediahost_e2e::deployment::Deployment;
use mediahost_e2e::host::presets_dir;
use mediahost_e2e::{client, media, process};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

/// Two secrets, as during a rotation: every delivery is signed with both.
const OLD_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const NEW_SECRET: &str = "whsec_c2VjcmV0LWZvci10aGUtcm90YXRpb24tdGVzdA==";

#[derive(Clone, Debug)]
struct Received {
    path: String,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

/// A webhook receiver on `port`: answers 410 on `/gone`, 500 to the first delivery of each
/// event id and 204 after that.
async fn receiver(port: u16, log: Arc<Mutex<Vec<Received>>>) {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    loop {
        let (socket, _) = listener.accept().await.unwrap();
        let log = log.clone();
        tokio::spawn(async move {
            let (read, mut write) = socket.into_split();
            let mut reader = BufReader::new(read);
            let mut line = String::new();
            reader.read_line(&mut line).await.unwrap();
            let path = line.split(' ').nth(1).unwrap_or("").to_owned();
            let mut headers = HashMap::new();
            loop {
                let mut h = String::new();
                reader.read_line(&mut h).await.unwrap();
                let h = h.trim_end();
                if h.is_empty() {
                    break;
                }
                if let Some((k, v)) = h.split_once(':') {
                    headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
                }
            }
            let len: usize = headers
                .get("content-length")
                .and_then(|l| l.parse().ok())
                .unwrap_or(0);
            let mut body = vec![0; len];
            reader.read_exact(&mut body).await.unwrap();
            let id = headers.get("webhook-id").cloned().unwrap_or_default();
            let status = {
                let mut log = log.lock().unwrap();
                let seen = log.iter().any(|r| r.headers.get("webhook-id") == Some(&id));
                log.push(Received {
                    path: path.clone(),
                    headers,
                    body,
                });
                if path == "/gone" {
                    "410 Gone"
                } else if seen {
                    "204 No Content"
                } else {
                    "500 Internal Server Error"
                }
            };
            let answer =
                format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            let _ = write.write_all(answer.as_bytes()).await;
        });
    }
}

fn verify(r: &Received, secret: &str) -> Result<(), String> {
    let mut headers = http::HeaderMap::new();
    for name in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
        let value = r.headers.get(name).ok_or(format!("no {name}"))?;
        headers.insert(name, value.parse().unwrap());
    }
    standardwebhooks::Webhook::new(secret)
        .map_err(|e| e.to_string())?
        .verify(&r.body, &headers)
        .map_err(|e| e.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_is_delivered_signed_once_the_receiver_is_up() {
    let d = Deployment::start("webhooks", &presets_dir(), &[]).await;
    let f = process::fixture_dir("webhooks-media");
    let good = d
        .client
        .upload(&media::sine(&f.path().join("t.wav"), 0.5))
        .await;
    let bad = d
        .client
        .upload(&media::not_media(&f.path().join("notes.txt")))
        .await;
    let port = process::free_port();
    let hook = format!("http://127.0.0.1:{port}/hook");
    let _worker = d.worker(
        "worker-a",
        &[
            "--concurrency",
            "2",
            "--webhook-secrets",
            &format!("{NEW_SECRET},{OLD_SECRET}"),
        ],
    );

    // The receiver is down while the jobs finish.
    let mut ids = BTreeMap::new();
    for (input, expect) in [
        (&good, "job.completed"),
        (&good, "job.completed"),
        (&bad, "job.failed"),
    ] {
        let id = d
            .client
            .submit_ok(
                &json!({"preset": "audio-convert", "inputs": {"main": input},
                "params": {"codec": "wav"}, "webhook": hook}),
            )
            .await;
        ids.insert(id, expect);
    }
    for id in ids.keys() {
        d.client.wait_terminal(id).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;

    let log = Arc::new(Mutex::new(Vec::new()));
    tokio::spawn(receiver(port, log.clone()));
    let up = Instant::now();
    loop {
        let delivered: usize = {
            let log = log.lock().unwrap();
            ids.keys()
                .filter(|job| {
                    log.iter()
                        .filter(|r| {
                            serde_json::from_slice::<Value>(&r.body).unwrap()["data"]["id"]
                                == json!(job)
                        })
                        .count()
                        >= 2
                })
                .count()
        };
        if delivered == ids.len() {
            break;
        }
        assert!(
            up.elapsed() < Duration::from_secs(120),
            "not every event was delivered: {:?}",
            log.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let received = log.lock().unwrap().clone();
    let mut by_id: BTreeMap<String, Vec<&Received>> = BTreeMap::new();
    for r in &received {
        by_id
            .entry(r.headers["webhook-id"].clone())
            .or_default()
            .push(r);
    }
    assert_eq!(by_id.len(), ids.len(), "one event id per job");
    for (event, deliveries) in &by_id {
        assert!(
            deliveries.len() >= 2,
            "{event}: refused once, then accepted"
        );
        let body: Value = serde_json::from_slice(&deliveries[0].body).unwrap();
        let job = body["data"]["id"].as_str().unwrap();
        assert_eq!(body["type"], ids[job], "{body}");
        for d in deliveries {
            assert_eq!(d.body, deliveries[0].body, "a duplicate is the same event");
            verify(d, NEW_SECRET).unwrap_or_else(|e| panic!("new secret: {e}"));
            verify(d, OLD_SECRET).unwrap_or_else(|e| panic!("old secret: {e}"));
        }
        // The webhook's job is the contract's, the same as the API shows it.
        client::conforms::<mediahost_api::WebhookEvent>(&body, "a webhook event");
        let shown = d.client.job(job).await;
        assert_eq!(
            body["data"],
            client::without_download_urls(&shown),
            "webhook vs GET"
        );
        if body["type"] == "job.completed" {
            assert_eq!(body["data"]["outputs"][0]["container"], "wav", "{body}");
        } else {
            assert_eq!(body["data"]["error"]["code"], "INPUT_UNREADABLE", "{body}");
        }
    }
    let tampered = Received {
        body: b"{}".to_vec(),
        ..received[0].clone()
    };
    assert!(
        verify(&tampered, NEW_SECRET).is_err(),
        "a changed body does not verify"
    );
    eprintln!(
        "[webhooks] receiver down then up: {} events, {} deliveries, 0 lost, duplicates share their id",
        by_id.len(),
        received.len()
    );

    // 410 Gone disables the URL: a later job's event is not sent to it.
    let gone = format!("http://127.0.0.1:{port}/gone");
    for _ in 0..2 {
        let id = d
            .client
            .submit_ok(&json!({"preset": "audio-convert", "inputs": {"main": good},
                "params": {"codec": "wav"}, "webhook": gone}))
            .await;
        d.client.wait_terminal(&id).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let to_gone = log
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.path == "/gone")
        .count();
    assert_eq!(to_gone, 1, "after 410, nothing more is sent to that URL");
    let metrics = d.client.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("mediahost_webhook_deliveries_total{result=\"gone\"} 1"),
        "{metrics}"
    );
}
