//! What an attacker gets from mediahost: hostile presets (endless loops, unbounded memory and
//! recursion, panics, enormous plans, forbidden filters, codecs and containers, paths and
//! injection strings in every string field, WASI calls for files, environment and network) and
//! hostile media (playlists and concat scripts posing as audio, an AVI carrying an HLS playlist
//! in a GAB2 subtitle chunk, truncated and corrupt files, absurd header values).
//!
//! Every case must end with a specific code within a stated bound, must never put the canary
//! (a random token in a file the attacks point at) or `/etc/passwd` into a job's JSON, its log
//! or its outputs, and must never reach the loopback listener the attacks point at. After each
//! test the host must still run an ordinary job. Each case prints a row (attack, outcome, time
//! to contain, canary leaked); run with `--nocapture` to see the table.
//!
//! The hostile presets live in `tests/fixtures/hostile-presets`; [`mediahost_e2e::hostile`] builds
//! them with its `build.sh` when a component is missing or older than its sources.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use mediahost_e2e::host::StorageKind;
use mediahost_e2e::{Client, Host, hostile, media, process};
use serde_json::{Value, json};

/// A preset call is bounded at 100 ms, so a faulting preset is contained in well under this.
const PRESET_BOUND: Duration = Duration::from_secs(10);
/// Validation happens before ffmpeg runs.
const PLAN_BOUND: Duration = Duration::from_secs(10);
/// Hostile media is stopped at probe (or in a short ffmpeg run over a second of audio).
const MEDIA_BOUND: Duration = Duration::from_secs(20);
const POLL_EVERY: Duration = Duration::from_millis(50);

/// A line of `/etc/passwd` on every Linux: seeing it anywhere means the file was read.
const PASSWD_MARK: &str = "root:x:0:";

// ---- the suite: host, canary, listener ----------------------------------------------------------

struct Suite {
    host: Host,
    canary: Canary,
    listener: Listener,
    media: tempfile::TempDir,
    _presets: tempfile::TempDir,
}

/// A WAV whose title and comment tags are a random token, so any path by which ffmpeg or a preset
/// reads it (as a file, a playlist segment, a concat entry) would carry the token into a probe,
/// a log or an output. Its path does not contain the token.
struct Canary {
    token: String,
    path: PathBuf,
}

/// A loopback TCP listener the attacks point at; it counts every connection it accepts.
struct Listener {
    port: u16,
    connections: &'static AtomicUsize,
}

impl Listener {
    fn start() -> Listener {
        static CONNECTIONS: AtomicUsize = AtomicUsize::new(0);
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the canary listener");
        let port = listener.local_addr().expect("listener address").port();
        std::thread::Builder::new()
            .name("canary-listener".into())
            .spawn(move || {
                for stream in listener.incoming().flatten() {
                    CONNECTIONS.fetch_add(1, Ordering::SeqCst);
                    eprintln!(
                        "[adversarial] the canary listener was reached from {:?}",
                        stream.peer_addr()
                    );
                }
            })
            .expect("start the listener thread");
        Listener {
            port,
            connections: &CONNECTIONS,
        }
    }

    fn reached(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{path}", self.port)
    }
}

fn suite() -> &'static Suite {
    static SUITE: OnceLock<Result<Suite, String>> = OnceLock::new();
    match SUITE.get_or_init(start_suite) {
        Ok(suite) => suite,
        Err(why) => panic!("{why}"),
    }
}

fn start_suite() -> Result<Suite, String> {
    // The host takes one presets directory: the built-in presets, every hostile one, and a file
    // that is not a component at all.
    let presets = hostile::presets_with("presets", &hostile::components()?)?;
    std::fs::write(
        presets.path().join("not-a-component.wasm"),
        b"\0asm\x01\0\0\0 this is not a component",
    )
    .map_err(|e| e.to_string())?;

    let media = process::fixture_dir("adversarial-media");
    let token = format!("CANARY{}", uuid::Uuid::new_v4().simple());
    let path = media.path().join("secret.wav");
    media::run(
        ffmpeg()
            .args(["-f", "lavfi", "-i", "sine=f=440:d=1:r=48000"])
            .args(["-metadata", &format!("title={token}")])
            .args(["-metadata", &format!("comment={token}")])
            .arg(&path),
        "ffmpeg canary",
    );
    let host = Host::start_with_presets(StorageKind::Local, presets.path())?;
    eprintln!(
        "[adversarial] | {:<44} | {:<18} | {:>7} | canary leaked |",
        "attack", "outcome", "time"
    );
    Ok(Suite {
        host,
        canary: Canary { token, path },
        listener: Listener::start(),
        media,
        _presets: presets,
    })
}

fn ffmpeg() -> Command {
    let mut command = Command::new("ffmpeg");
    command.args(["-hide_banner", "-nostdin", "-nostats", "-v", "error", "-y"]);
    command
}

// ---- one attack ---------------------------------------------------------------------------------

/// Submits `body`, waits at most `within` for a terminal state and checks the containment rules;
/// returns the job. `expect` lists the acceptable outcomes: error codes, or `COMPLETED`.
async fn attack(
    client: &Client,
    label: &str,
    body: Value,
    expect: &[&str],
    within: Duration,
) -> Value {
    let s = suite();
    let id = client.submit_ok(&body).await;
    let started = Instant::now();
    let job = loop {
        let job = client.job(&id).await;
        if matches!(job["state"].as_str(), Some("COMPLETED" | "FAILED")) {
            break job;
        }
        assert!(
            started.elapsed() < within,
            "{label}: job {id} not contained within {within:?}, still {}:\n{job:#}",
            job["state"]
        );
        tokio::time::sleep(POLL_EVERY).await;
    };
    let elapsed = started.elapsed();
    let outcome = match job["state"].as_str() {
        Some("COMPLETED") => "COMPLETED".to_string(),
        _ => job["error"]["code"].as_str().unwrap_or("?").to_string(),
    };

    // Everything the user can see: the job, its log, its outputs.
    let logs = client.get_json(&format!("/v1/jobs/{id}/logs")).await;
    let mut seen = format!("{job}\n{logs}").into_bytes();
    for output in job["outputs"].as_array().into_iter().flatten() {
        if let Some(url) = output["download_url"].as_str() {
            let bytes = client.http().get(url).send().await;
            let bytes = bytes.expect("download an output").bytes().await;
            seen.extend_from_slice(&bytes.expect("read an output"));
        }
    }
    let leaked = contains(&seen, s.canary.token.as_bytes());
    let passwd = contains(&seen, PASSWD_MARK.as_bytes());
    eprintln!(
        "[adversarial] | {:<44} | {:<18} | {:>6.2}s | {:<13} |",
        clip(label, 44),
        outcome,
        elapsed.as_secs_f64(),
        if leaked || passwd { "YES" } else { "no" }
    );

    assert!(
        !leaked,
        "{label}: the canary token leaked:\n{job:#}\n{logs:#}"
    );
    assert!(!passwd, "{label}: /etc/passwd leaked:\n{job:#}\n{logs:#}");
    assert_eq!(
        s.listener.reached(),
        0,
        "{label}: the canary listener was reached"
    );
    assert!(s.host.is_running(), "{label}: the host died");
    assert!(
        expect.contains(&outcome.as_str()),
        "{label}: expected one of {expect:?}, got {outcome}:\n{job:#}"
    );
    assert!(
        elapsed < within,
        "{label}: took {elapsed:?}, bound {within:?}"
    );
    if outcome != "COMPLETED" {
        assert!(
            job["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{label}: a failure says why:\n{job:#}"
        );
        assert!(
            job["outputs"].as_array().is_none_or(|o| o.is_empty()),
            "{label}: a failed job delivers nothing:\n{job:#}"
        );
    }
    job
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn clip(s: &str, max: usize) -> String {
    let shown: String = s.escape_debug().collect();
    if shown.chars().count() <= max {
        shown
    } else {
        shown.chars().take(max - 1).chain(['…']).collect()
    }
}

/// Asserts the failure happened at `step` (the job's `error.step`).
fn assert_step(job: &Value, step: &str) {
    assert_eq!(job["error"]["step"], step, "{job:#}");
}

/// A one-second mono tone, uploaded: the ordinary input the preset attacks run on.
async fn tone_uri(client: &Client) -> String {
    static TONE: OnceLock<PathBuf> = OnceLock::new();
    let path = TONE.get_or_init(|| {
        let path = suite().media.path().join("tone.wav");
        media::run(
            ffmpeg()
                .args(["-f", "lavfi", "-i", "sine=f=440:d=1:r=48000"])
                .arg(&path),
            "ffmpeg tone",
        );
        path
    });
    client.upload(path).await
}

fn job(preset: &str, uri: &str, params: Value) -> Value {
    json!({ "preset": preset, "inputs": { "main": uri }, "params": params })
}

/// The host still answers health checks and still runs an ordinary job to completion, and the
/// listener was never reached.
async fn assert_still_works(client: &Client) {
    client.assert_healthy().await;
    let uri = tone_uri(client).await;
    client
        .run_job_ok(&job("audio-convert", &uri, json!({ "codec": "flac" })))
        .await;
    assert_eq!(
        suite().listener.reached(),
        0,
        "the canary listener was reached"
    );
}

fn client() -> Client {
    suite().host.client()
}

// ---- hostile presets: faults --------------------------------------------------------------------

/// Runs a preset that faults in `plan`; the job must fail with PRESET_FAILED at plan, its message
/// saying how the sandbox stopped it (`says`: "deadline" or "trapped").
async fn preset_fault(preset: &str, label: &str, says: &str) -> Value {
    let client = client();
    let uri = tone_uri(&client).await;
    let failed = attack(
        &client,
        label,
        job(preset, &uri, json!({})),
        &["PRESET_FAILED"],
        PRESET_BOUND,
    )
    .await;
    assert_step(&failed, "plan");
    let message = failed["error"]["message"].as_str().unwrap_or("");
    assert!(
        message.contains(says),
        "{label}: the message says {says:?}: {failed:#}"
    );
    assert_still_works(&client).await;
    failed
}

#[tokio::test]
async fn endless_loop_in_plan_is_stopped_by_the_deadline() {
    preset_fault("hostile-loop", "preset: infinite loop in plan", "deadline").await;
}

#[tokio::test]
async fn unbounded_allocation_in_plan_is_stopped_by_the_memory_cap() {
    preset_fault("hostile-memory", "preset: unbounded allocation", "trapped").await;
}

#[tokio::test]
async fn unbounded_recursion_in_plan_is_stopped() {
    preset_fault(
        "hostile-recursion",
        "preset: unbounded recursion",
        "trapped",
    )
    .await;
}

/// The panic's message, which the preset writes to stderr before it traps, is in the job's log.
#[tokio::test]
async fn panic_in_plan_fails_the_job() {
    let failed = preset_fault("hostile-panic", "preset: panic", "trapped").await;
    let id = failed["id"].as_str().unwrap();
    let logs = client().get_json(&format!("/v1/jobs/{id}/logs")).await;
    assert!(
        logs.to_string()
            .contains("hostile-panic: giving up in round 1"),
        "the panic message is in the job's log: {logs:#}"
    );
}

#[tokio::test]
async fn a_preset_that_never_finishes_planning_fails_after_the_round_limit() {
    let client = client();
    let uri = tone_uri(&client).await;
    let body = job("hostile-plan", &uri, json!({ "attack": "endless_rounds" }));
    let failed = attack(
        &client,
        "preset: endless planning rounds",
        body,
        &["PRESET_FAILED"],
        PRESET_BOUND,
    )
    .await;
    assert_step(&failed, "plan");
    assert_still_works(&client).await;
}

#[tokio::test]
async fn components_that_cannot_describe_themselves_are_refused_at_load() {
    let client = client();
    let health = client.get_json("/healthz").await;
    let warnings = health["warnings"].to_string();
    for file in ["hostile-describe-1.0.0.wasm", "not-a-component.wasm"] {
        assert!(
            warnings.contains(file),
            "/healthz warns about {file}: {health:#}"
        );
    }
    let listing = client.get_json("/v1/presets").await.to_string();
    assert!(
        !listing.contains("hostile-describe"),
        "refused presets are not listed: {listing}"
    );
    for name in ["hostile-loop", "hostile-plan", "audio-convert"] {
        assert!(listing.contains(name), "{name} is listed: {listing}");
    }
    eprintln!(
        "[adversarial] | {:<44} | {:<18} | {:>7} | {:<13} |",
        "preset: describe loops / not a component", "refused at load", "-", "no"
    );
    assert_still_works(&client).await;
}

/// The host links the filesystem and sockets that language runtimes import, but with nothing
/// behind them: no preopened directory, no environment, no network. A preset that tries to read
/// files, list `/`, read the environment and connect to the loopback listener loads and plans,
/// and every one of those calls fails: nothing leaks and the listener is never reached.
#[tokio::test]
async fn a_preset_trying_files_env_or_sockets_gets_nothing() {
    let s = suite();
    let client = client();
    let listing = client.get_json("/v1/presets").await.to_string();
    assert!(listing.contains("hostile-wasi"), "listed: {listing}");

    let uri = tone_uri(&client).await;
    let addr = format!("127.0.0.1:{}", s.listener.port);
    let path = s.canary.path.display().to_string();
    let body = job("hostile-wasi", &uri, json!({ "path": path, "addr": addr }));
    let job = attack(
        &client,
        "preset: WASI file/env/dir/TCP calls",
        body,
        &["COMPLETED"],
        PRESET_BOUND,
    )
    .await;
    let report = &job["report"];
    for call in ["file", "passwd", "root", "tcp"] {
        let got = report[call].as_str().unwrap_or("");
        assert!(got.starts_with("error"), "{call} did not fail: {got}");
    }
    assert_eq!(report["env"], "", "no environment: {report}");
    assert_still_works(&client).await;
}

// ---- hostile presets: plans ---------------------------------------------------------------------

/// Runs `hostile-plan` once per target, expecting PLAN_REJECTED at validate each time.
async fn rejected_plans(client: &Client, attack_name: &str, targets: &[&str]) {
    let uri = tone_uri(client).await;
    for target in targets {
        let label = format!("plan {attack_name}: {target}");
        let body = job(
            "hostile-plan",
            &uri,
            json!({ "attack": attack_name, "target": target }),
        );
        let failed = attack(client, &label, body, &["PLAN_REJECTED"], PLAN_BOUND).await;
        assert_step(&failed, "validate");
    }
}

#[tokio::test]
async fn oversized_plans_are_stopped_before_anything_runs() {
    let client = client();
    let uri = tone_uri(&client).await;
    // One past each cap of plan::validate (16 steps, 64 nodes, 32 args, 16 outputs) is rejected
    // by the validator; 10,000 may instead run the preset past its deadline while building it.
    let cases = [
        ("steps", 17, &["PLAN_REJECTED"][..]),
        ("nodes", 65, &["PLAN_REJECTED"]),
        ("args", 33, &["PLAN_REJECTED"]),
        ("outputs", 17, &["PLAN_REJECTED"]),
        ("text", 1, &["PLAN_REJECTED"]),
        ("steps", 10_000, &["PLAN_REJECTED", "PRESET_FAILED"]),
        ("nodes", 10_000, &["PLAN_REJECTED", "PRESET_FAILED"]),
        ("args", 10_000, &["PLAN_REJECTED", "PRESET_FAILED"]),
        ("outputs", 10_000, &["PLAN_REJECTED", "PRESET_FAILED"]),
    ];
    for (shape, count, expect) in cases {
        let body = job(
            "hostile-oversized-plan",
            &uri,
            json!({ "shape": shape, "count": count }),
        );
        let label = match shape {
            "text" => "oversized plan: 1 MiB metadata value".to_string(),
            _ => format!("oversized plan: {count} {shape}"),
        };
        let failed = attack(&client, &label, body, expect, PLAN_BOUND).await;
        let step = if failed["error"]["code"] == "PLAN_REJECTED" {
            "validate"
        } else {
            "plan"
        };
        assert_step(&failed, step);
    }
    assert_still_works(&client).await;
}

#[tokio::test]
async fn filters_that_open_files_or_urls_are_rejected() {
    let s = suite();
    let client = client();
    let canary = s.canary.path.display().to_string();
    let url = s.listener.url("x.wav");
    rejected_plans(&client, "movie", &["/etc/passwd", &canary, &url]).await;
    rejected_plans(&client, "amovie", &["/etc/passwd", &canary, &url]).await;
    let smuggled = format!("anull,amovie=filename={canary}");
    rejected_plans(
        &client,
        "filter_name",
        &["sendcmd", "zmq", "ladspa", &smuggled, "anull[x];[x]amovie"],
    )
    .await;
    assert_still_works(&client).await;
}

#[tokio::test]
async fn codecs_and_containers_outside_the_allowlist_are_rejected() {
    let client = client();
    rejected_plans(
        &client,
        "codec",
        &[
            "rawvideo",
            "libx264rgb",
            "aac -i /etc/passwd",
            "flac\\n-i /etc/passwd",
            "copy",
        ],
    )
    .await;
    rejected_plans(
        &client,
        "container",
        &["hls", "image2", "tee", "segment", "flac -f tee"],
    )
    .await;
    rejected_plans(&client, "sample_format", &["s16 -i /etc/passwd", "s16\\0"]).await;
    assert_still_works(&client).await;
}

#[tokio::test]
async fn paths_and_odd_names_are_rejected_as_names() {
    let client = client();
    let names = [
        "../../etc/x",
        "/etc/x",
        "main/../../x",
        "main\\0x",
        "Main",
        "a b",
    ];
    rejected_plans(&client, "output_name", &names).await;
    rejected_plans(&client, "step_name", &names).await;
    rejected_plans(
        &client,
        "input_ref",
        &["../../etc/passwd", "/etc/passwd", "other"],
    )
    .await;
    rejected_plans(
        &client,
        "analysis_source",
        &["../../etc/passwd", "/etc/passwd"],
    )
    .await;
    assert_still_works(&client).await;
}

#[tokio::test]
async fn injection_in_filter_arguments_and_labels_is_rejected() {
    let s = suite();
    let client = client();
    let canary = s.canary.path.display().to_string();
    let movie = format!("1dB[a];amovie={canary}[b];[a][b]amix");
    rejected_plans(
        &client,
        "filter_arg_value",
        &[
            "1dB:enable=0",
            "1dB'",
            "1dB;",
            "1dB,amovie=/etc/passwd",
            &movie,
            "1dB\\n",
            "1dB\\0",
            "-i /etc/passwd",
        ],
    )
    .await;
    rejected_plans(
        &client,
        "filter_list_value",
        &[
            "stereo:sample_rates=8000",
            "mono,amovie=/etc/passwd",
            "mono[x]",
            "mono\\n",
        ],
    )
    .await;
    rejected_plans(
        &client,
        "filter_arg_name",
        &["volume=1:enable", "filename", "f", "i"],
    )
    .await;
    rejected_plans(
        &client,
        "label",
        &["a]", "a];[0:a]amovie=/etc/passwd[b", "x y", "a\\n"],
    )
    .await;
    assert_still_works(&client).await;
}

#[tokio::test]
async fn muxer_encoder_and_metadata_injection_is_rejected() {
    let client = client();
    rejected_plans(
        &client,
        "muxer_option",
        &[
            "f",
            "i",
            "hls_segment_filename",
            "movflags",
            "-i /etc/passwd",
        ],
    )
    .await;
    rejected_plans(
        &client,
        "encoder_option",
        &["i", "filter_complex", "f", "dump_attachment"],
    )
    .await;
    rejected_plans(
        &client,
        "metadata_key",
        &["title=x -i /etc/passwd", "a b", "a\\nb", ""],
    )
    .await;
    rejected_plans(&client, "metadata_value", &["x\\ny", "x\\0y", "x\\ry"]).await;
    rejected_plans(&client, "stream_metadata_value", &["x\\ny", "x\\0y"]).await;
    assert_still_works(&client).await;
}

#[tokio::test]
async fn shell_and_filtergraph_syntax_in_a_metadata_value_stays_inert_data() {
    let client = client();
    let uri = tone_uri(&client).await;
    // Printable text is a legitimate tag value; it must reach the output as exactly one value.
    let value = "it's: a; [test], -i /etc/passwd $(id) `id` | \" -f tee";
    let body = job(
        "hostile-plan",
        &uri,
        json!({ "attack": "metadata_value", "target": value }),
    );
    let done = attack(
        &client,
        "plan metadata_value: quotes, ; [ , -i",
        body,
        &["COMPLETED"],
        PLAN_BOUND,
    )
    .await;
    let dir = tempfile::tempdir().expect("a temp dir");
    let output = client.download_output(&done, dir.path(), "out").await;
    let probe = media::probe(&output);
    let tags = &probe["format"]["tags"];
    let title = tags["title"].as_str().or(tags["TITLE"].as_str());
    assert_eq!(
        title,
        Some(value),
        "the value arrives as one tag: {probe:#}"
    );
    assert_still_works(&client).await;
}

#[tokio::test]
async fn a_refusal_carrying_injection_strings_is_reported_as_a_refusal() {
    let client = client();
    let uri = tone_uri(&client).await;
    let target = "X\\n\"code\": \"COMPLETED\"\\0 -i /etc/passwd";
    let body = job(
        "hostile-plan",
        &uri,
        json!({ "attack": "refusal", "target": target }),
    );
    let failed = attack(
        &client,
        "preset: refusal with injection text",
        body,
        &["PRESET_REFUSED"],
        PLAN_BOUND,
    )
    .await;
    assert_step(&failed, "plan");
    assert_still_works(&client).await;
}

// ---- hostile media ------------------------------------------------------------------------------

/// Uploads `bytes` as `filename` and runs `preset` on it.
async fn media_attack(
    client: &Client,
    label: &str,
    filename: &str,
    bytes: &[u8],
    preset: &str,
    expect: &[&str],
) -> Value {
    let dir = suite()
        .media
        .path()
        .join(uuid::Uuid::new_v4().simple().to_string());
    std::fs::create_dir_all(&dir).expect("a media dir");
    let path = dir.join(filename);
    std::fs::write(&path, bytes).expect("write hostile media");
    let uri = client.upload(&path).await;
    attack(
        client,
        label,
        job(preset, &uri, json!({})),
        expect,
        MEDIA_BOUND,
    )
    .await
}

fn playlist(canary: &Path, url: &str) -> String {
    format!(
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:0\n\
         #EXTINF:1.0,\n{}\n#EXTINF:1.0,\nfile://{}\n#EXTINF:1.0,\n{url}\n#EXT-X-ENDLIST\n",
        canary.display(),
        canary.display()
    )
}

#[tokio::test]
async fn playlists_and_scripts_posing_as_media_are_unreadable() {
    let s = suite();
    let client = client();
    let hls = playlist(&s.canary.path, &s.listener.url("x.ts"));
    let concat = format!(
        "ffconcat version 1.0\nfile '{}'\nfile '{}'\n",
        s.canary.path.display(),
        s.listener.url("x.wav")
    );
    let cases: [(&str, &str, &[u8]); 4] = [
        ("media: HLS playlist named .wav", "song.wav", hls.as_bytes()),
        (
            "media: HLS playlist named .m3u8",
            "song.m3u8",
            hls.as_bytes(),
        ),
        (
            "media: ffconcat script named .wav",
            "song.wav",
            concat.as_bytes(),
        ),
        (
            "media: ffconcat script named .ffconcat",
            "list.ffconcat",
            concat.as_bytes(),
        ),
    ];
    for (label, filename, bytes) in cases {
        for preset in ["loudness-normalize", "audio-convert"] {
            let label = format!("{label} ({preset})");
            let failed = media_attack(
                &client,
                &label,
                filename,
                bytes,
                preset,
                &["INPUT_UNREADABLE"],
            )
            .await;
            assert_step(&failed, "probe");
        }
    }
    assert_still_works(&client).await;
}

#[tokio::test]
async fn avi_with_a_playlist_in_a_gab2_subtitle_is_contained() {
    let s = suite();
    let client = client();
    let hls = playlist(&s.canary.path, &s.listener.url("x.ts"));
    let avi = gab2_avi(hls.as_bytes());
    // ffmpeg parses the GAB2 chunk but only accepts SRT/ASS inside it: the file probes as one
    // subtitle stream of unknown codec, and the audio presets refuse it.
    for preset in ["loudness-normalize", "audio-convert"] {
        let label = format!("media: AVI + GAB2 HLS playlist ({preset})");
        let failed = media_attack(
            &client,
            &label,
            "clip.avi",
            &avi,
            preset,
            &["PRESET_REFUSED", "INPUT_UNREADABLE"],
        )
        .await;
        assert_ne!(failed["error"]["step"], "ffmpeg", "{failed:#}");
    }
    assert_still_works(&client).await;
}

#[tokio::test]
async fn truncated_and_corrupt_files_fail_with_a_specific_code() {
    let client = client();
    let dir = suite().media.path();
    let wav = std::fs::read(tone(dir, "wav", &[])).expect("read the WAV");
    let m4a = std::fs::read(tone(dir, "m4a", &["-c:a", "aac"])).expect("read the M4A");
    let data = find(&wav, b"data").expect("the WAV has a data chunk");
    let moov = find(&m4a, b"moov").expect("the M4A has a moov box");

    let mut moov_smashed = m4a.clone();
    moov_smashed[moov + 4..(moov + 200).min(m4a.len())].fill(0xff);
    let mut noise = m4a.clone();
    let mut x: u32 = 0x9e37_79b9;
    for byte in noise.iter_mut().step_by(97) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        *byte = x as u8;
    }
    let cases: Vec<(&str, &str, Vec<u8>, &[&str])> = vec![
        (
            "media: WAV cut inside its header",
            "a.wav",
            wav[..30].to_vec(),
            &["INPUT_UNREADABLE"],
        ),
        // The header promises more samples than there are: ffmpeg decodes what is there.
        (
            "media: WAV cut inside its samples",
            "a.wav",
            wav[..data + 8 + 2000].to_vec(),
            &["COMPLETED"],
        ),
        (
            "media: M4A cut in half (no moov)",
            "a.m4a",
            m4a[..m4a.len() / 2].to_vec(),
            &["INPUT_UNREADABLE"],
        ),
        (
            "media: M4A with its moov overwritten",
            "a.m4a",
            moov_smashed,
            &["INPUT_UNREADABLE"],
        ),
        (
            "media: M4A with every 97th byte random",
            "a.m4a",
            noise,
            &["INPUT_UNREADABLE", "FFMPEG_FAILED", "PRESET_REFUSED"],
        ),
    ];
    for (label, filename, bytes, expect) in cases {
        media_attack(&client, label, filename, &bytes, "audio-convert", expect).await;
    }
    assert_still_works(&client).await;
}

#[tokio::test]
async fn absurd_header_values_fail_with_a_specific_code() {
    let client = client();
    let dir = suite().media.path();
    let wav = std::fs::read(tone(dir, "wav", &[])).expect("read the WAV");
    let data = find(&wav, b"data").expect("the WAV has a data chunk");
    let fmt = find(&wav, b"fmt ").expect("the WAV has a fmt chunk");
    let patched = |offset: usize, value: &[u8]| {
        let mut bytes = wav.clone();
        bytes[offset..offset + value.len()].copy_from_slice(value);
        bytes
    };
    let y4m = [
        b"YUV4MPEG2 W100000 H100000 F25:1 Ip A1:1 C420jpeg\nFRAME\n".as_slice(),
        &[0u8; 1000],
    ]
    .concat();
    let cases: Vec<(&str, &str, Vec<u8>, &[&str])> = vec![
        // A 4 GiB data chunk over 96 KB of samples: read to the end of the file, nothing more.
        (
            "media: WAV claiming a 4 GiB data chunk",
            "a.wav",
            patched(data + 4, &0xffff_fff0u32.to_le_bytes()),
            &["COMPLETED"],
        ),
        (
            "media: WAV with sample rate 0",
            "a.wav",
            patched(fmt + 12, &0u32.to_le_bytes()),
            &["INPUT_UNREADABLE"],
        ),
        (
            "media: WAV with 65535 channels",
            "a.wav",
            patched(fmt + 10, &u16::MAX.to_le_bytes()),
            &["INPUT_UNREADABLE"],
        ),
        (
            "media: WAV with sample rate 4294967295",
            "a.wav",
            patched(fmt + 12, &u32::MAX.to_le_bytes()),
            &["INPUT_UNREADABLE", "PRESET_REFUSED", "FFMPEG_FAILED"],
        ),
        // yuv4mpegpipe is not an allowed demuxer.
        (
            "media: y4m claiming 100000x100000",
            "a.y4m",
            y4m,
            &["INPUT_UNREADABLE"],
        ),
        // png_pipe is allowed; ffmpeg refuses the size, and there is no audio to convert.
        (
            "media: PNG claiming 100000x100000",
            "a.png",
            huge_png(),
            &["INPUT_UNREADABLE", "PRESET_REFUSED"],
        ),
    ];
    for (label, filename, bytes, expect) in cases {
        media_attack(&client, label, filename, &bytes, "audio-convert", expect).await;
    }
    assert_still_works(&client).await;
}

/// A two-second 48 kHz tone in `dir/tone-2s.<ext>`, made once per extension.
fn tone(dir: &Path, ext: &str, codec: &[&str]) -> PathBuf {
    static MADE: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
    let path = dir.join(format!("tone-2s.{ext}"));
    let mut made = MADE.lock().unwrap_or_else(|e| e.into_inner());
    if !made.contains(&path) {
        media::run(
            ffmpeg()
                .args(["-f", "lavfi", "-i", "sine=f=440:d=2:r=48000"])
                .args(codec)
                .arg(&path),
            "ffmpeg two-second tone",
        );
        made.push(path.clone());
    }
    path
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn riff_chunk(tag: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut chunk = tag.to_vec();
    chunk.extend_from_slice(&(data.len() as u32).to_le_bytes());
    chunk.extend_from_slice(data);
    if data.len() % 2 == 1 {
        chunk.push(0);
    }
    chunk
}

fn riff_list(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    riff_chunk(b"LIST", &[kind.as_slice(), data].concat())
}

/// A minimal AVI whose only stream is a text subtitle (`txts`) and whose only packet is a GAB2
/// subtitle carrying `payload` (the 2017 technique: ffmpeg probed the embedded subtitle with any
/// demuxer, HLS included). Layout: `RIFF AVI ` > `hdrl` (`avih`, `strl` (`strh` txts, `strf`)) >
/// `movi` (`00tx`: "GAB2\0", version 2, UTF-16 name, flags, size, payload).
fn gab2_avi(payload: &[u8]) -> Vec<u8> {
    let u32s = |values: &[u32]| {
        values
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect::<Vec<_>>()
    };
    // µs per frame, max bytes/s, padding, flags, frames, initial frames, streams, buffer size,
    // width, height, 4 reserved.
    let avih = u32s(&[40_000, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0]);
    let mut strh = b"txts".to_vec();
    // handler, flags, priority + language, initial frames, scale, rate, start, length, buffer
    // size, quality, sample size, frame rectangle.
    strh.extend(u32s(&[0, 0, 0, 0, 1, 1, 0, 1, 0, 0, 0, 0, 0]));
    let name: Vec<u8> = "playlist"
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    let mut gab2 = b"GAB2\0".to_vec();
    gab2.extend_from_slice(&2u16.to_le_bytes());
    gab2.extend_from_slice(&(name.len() as u32).to_le_bytes());
    gab2.extend_from_slice(&name);
    gab2.extend_from_slice(&4u16.to_le_bytes());
    gab2.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    gab2.extend_from_slice(payload);
    let strl = [riff_chunk(b"strh", &strh), riff_chunk(b"strf", &[0; 4])].concat();
    let hdrl = [riff_chunk(b"avih", &avih), riff_list(b"strl", &strl)].concat();
    let body = [
        b"AVI ".as_slice(),
        &riff_list(b"hdrl", &hdrl),
        &riff_list(b"movi", &riff_chunk(b"00tx", &gab2)),
    ]
    .concat();
    riff_chunk(b"RIFF", &body)
}

/// A PNG whose header claims 100000x100000 RGB pixels, with a tiny image body.
fn huge_png() -> Vec<u8> {
    let chunk = |tag: &[u8; 4], data: &[u8]| {
        let mut out = (data.len() as u32).to_be_bytes().to_vec();
        out.extend_from_slice(tag);
        out.extend_from_slice(data);
        out.extend_from_slice(&crc32(&[tag.as_slice(), data].concat()).to_be_bytes());
        out
    };
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&100_000u32.to_be_bytes());
    ihdr.extend_from_slice(&100_000u32.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    // A stored (uncompressed) zlib stream of 16 zero bytes, with its Adler-32.
    let idat = [
        &[0x78, 0x01, 0x01, 0x10, 0x00, 0xef, 0xff][..],
        &[0; 16],
        &[0x00, 0x10, 0x00, 0x01],
    ]
    .concat();
    [
        b"\x89PNG\r\n\x1a\n".as_slice(),
        &chunk(b"IHDR", &ihdr),
        &chunk(b"IDAT", &idat),
        &chunk(b"IEND", &[]),
    ]
    .concat()
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn the_crafted_files_are_what_they_claim() {
    // The check value of CRC-32 (ISO-HDLC).
    assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
    let avi = gab2_avi(b"#EXTM3U\n");
    assert_eq!(&avi[..4], b"RIFF");
    assert_eq!(&avi[8..12], b"AVI ");
    assert_eq!(
        u32::from_le_bytes(avi[4..8].try_into().unwrap()) as usize,
        avi.len() - 8
    );
    assert!(find(&avi, b"GAB2\0\x02\0").is_some());
}
