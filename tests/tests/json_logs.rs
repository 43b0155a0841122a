//! Operations a user sees from outside: `--log-format json` makes every line the host writes a
//! JSON object, each line logged while a job is handled carrying that job's `job_id`; and
//! `/metrics` has the queue-wait and run-time histograms per preset, valid and consistent.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use mediahost_e2e::host::{Host, StorageKind, presets_dir};
use mediahost_e2e::{media, process};
use serde_json::{Value, json};

/// The host's log as JSON lines, once it holds `needle` (the worker logs a job's last line
/// just after recording its outcome, which a client may see first).
async fn json_log(host: &Host, needle: &str) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let text = std::fs::read_to_string(host.log_path()).expect("host log");
        if text.contains(needle) || Instant::now() > deadline {
            return text
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| match serde_json::from_str::<Value>(l) {
                    Ok(v @ Value::Object(_)) => v,
                    _ => panic!("a log line that is not a JSON object: {l:?}\n{text}"),
                })
                .collect();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_carry_the_job_id_and_metrics_have_histograms_per_preset() {
    let host = Host::start_with_args(
        StorageKind::Local,
        &presets_dir(),
        &["--log-format", "json", "--concurrency", "1"],
    )
    .unwrap_or_else(|why| panic!("{why}"));
    let client = host.client();
    let f = process::fixture_dir("json-logs-media");
    let uri = client
        .upload(&media::sine(&f.path().join("t.wav"), 1.0))
        .await;
    let body = json!({"preset": "audio-convert", "inputs": {"main": uri},
                      "params": {"codec": "flac"}, "cache": false});
    let job = client.run_job_ok(&body).await;
    let id = job["id"].as_str().unwrap().to_owned();

    let lines = json_log(&host, "attempt recorded").await;
    for line in &lines {
        for field in ["timestamp", "level", "target"] {
            assert!(line[field].is_string(), "no {field}: {line}");
        }
    }
    let of_job = |message: &str| -> &Value {
        lines
            .iter()
            .find(|l| l["message"] == message && l["job_id"] == id.as_str())
            .unwrap_or_else(|| panic!("no {message:?} line with job_id {id}: {lines:#?}"))
    };
    // The API's line, and the worker's first and last.
    of_job("job accepted");
    let started = of_job("job started");
    assert_eq!(started["preset"], "audio-convert", "{started}");
    assert_eq!(started["spans"], json!(["job"]), "{started}");
    of_job("attempt recorded");
    // Every line the worker wrote while it ran the job names it, whatever module wrote it.
    let first = lines
        .iter()
        .position(|l| l["message"] == "job started")
        .unwrap();
    let last = lines
        .iter()
        .rposition(|l| l["message"] == "attempt recorded")
        .unwrap();
    for line in &lines[first..=last] {
        assert_eq!(
            line["job_id"],
            id.as_str(),
            "a line without the job's id: {line}"
        );
    }
    // A line about no job carries none.
    assert!(
        lines
            .iter()
            .any(|l| l["message"] == "API listening" && l.get("job_id").is_none()),
        "{lines:#?}"
    );

    let metrics = client.get("/metrics").await.text().await.unwrap();
    let histograms = histograms(&metrics);
    for family in [
        "mediahost_job_queue_wait_seconds",
        "mediahost_job_run_seconds",
    ] {
        assert!(
            metrics.contains(&format!("# TYPE {family} histogram")),
            "{metrics}"
        );
        let (buckets, sum, count) = histograms
            .get(&(family.to_owned(), "audio-convert".to_owned()))
            .unwrap_or_else(|| panic!("no {family} for audio-convert:\n{metrics}"));
        assert_eq!(*count, 1.0, "one attempt ran: {metrics}");
        assert!(*sum > 0.0, "{metrics}");
        assert!(buckets.len() > 10, "{buckets:?}");
        assert!(
            buckets
                .windows(2)
                .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1),
            "{family} buckets are ascending and cumulative: {buckets:?}"
        );
        assert_eq!(
            buckets.last().unwrap(),
            &(f64::INFINITY, *count),
            "{metrics}"
        );
        // The one observation is in the first bucket at or above its value, and only there.
        let first_holding = buckets.iter().find(|(_, n)| *n == 1.0).unwrap().0;
        let below = buckets.iter().rev().find(|(le, _)| *le < first_holding);
        assert!(
            *sum <= first_holding && below.is_none_or(|(le, _)| sum > le),
            "{family}: sum {sum} is not in its bucket (le {first_holding}): {metrics}"
        );
    }
    let run = &histograms[&(
        "mediahost_job_run_seconds".to_owned(),
        "audio-convert".to_owned(),
    )];
    let reported = job["timings"]["run_s"].as_f64().unwrap();
    assert!(
        (run.1 - reported).abs() < 0.01,
        "the histogram's sum {} is the job's run_s {reported}",
        run.1
    );
}

/// (family, preset) → (buckets as (le, cumulative count), sum, count), from the text format.
type Histograms = BTreeMap<(String, String), (Vec<(f64, f64)>, f64, f64)>;

fn histograms(text: &str) -> Histograms {
    let mut out = Histograms::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value: {line}"));
        let Some((name, labels)) = series.split_once('{') else {
            continue;
        };
        let label = |key: &str| -> Option<String> {
            let start = labels.find(&format!("{key}=\""))? + key.len() + 2;
            Some(labels[start..].split('"').next()?.to_owned())
        };
        let Some(preset) = label("preset") else {
            continue;
        };
        for (suffix, slot) in [("_bucket", 0), ("_sum", 1), ("_count", 2)] {
            let Some(family) = name.strip_suffix(suffix) else {
                continue;
            };
            if !family.starts_with("mediahost_job_") {
                continue;
            }
            let entry = out.entry((family.to_owned(), preset.clone())).or_default();
            match slot {
                0 => {
                    let le = label("le").unwrap_or_else(|| panic!("bucket without le: {line}"));
                    let le = if le == "+Inf" {
                        f64::INFINITY
                    } else {
                        le.parse().unwrap()
                    };
                    entry.0.push((le, value));
                }
                1 => entry.1 = value,
                _ => entry.2 = value,
            }
        }
    }
    out
}
