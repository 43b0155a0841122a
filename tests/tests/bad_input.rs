//! What a user gets back when they get something wrong: a specific status and stable code in an
//! `application/problem+json` body for bad requests, a FAILED job with code, step and message for
//! bad media, and a host that keeps serving afterwards.

use mediahost_e2e::client::{expect_problem, json_body};
use mediahost_e2e::media::Fixtures;
use mediahost_e2e::{Client, Host};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// A real uploaded input, so each test fails only for the reason it is about.
async fn speech_uri(client: &Client) -> String {
    client.upload(&Fixtures::get().speech).await
}

fn normalize(uri: &str, params: Value) -> Value {
    json!({ "preset": "loudness-normalize", "inputs": { "main": uri }, "params": params })
}

/// The host still answers health checks and still runs a normal job to completion.
async fn assert_still_works(client: &Client) {
    client.assert_healthy().await;
    let uri = speech_uri(client).await;
    client
        .run_job_ok(&normalize(&uri, json!({ "target_lufs": -23.0 })))
        .await;
}

#[tokio::test]
async fn unknown_preset_is_404_preset_not_found() {
    let client = Host::shared_local().client();
    let uri = speech_uri(&client).await;
    let resp = client
        .submit(&json!({ "preset": "no-such-preset", "inputs": { "main": uri }, "params": {} }))
        .await;
    let problem = expect_problem(resp, 404, "PRESET_NOT_FOUND").await;
    assert!(
        problem.body["detail"]
            .as_str()
            .unwrap()
            .contains("no-such-preset"),
        "the detail names the preset asked for: {:#}",
        problem.body
    );
    client.assert_healthy().await;
}

#[tokio::test]
async fn unsatisfiable_version_is_422_preset_version_not_found() {
    let client = Host::shared_local().client();
    let uri = speech_uri(&client).await;
    let mut body = normalize(&uri, json!({}));
    body["version"] = json!("^9");
    let resp = client.submit(&body).await;
    expect_problem(resp, 422, "PRESET_VERSION_NOT_FOUND").await;
    client.assert_healthy().await;
}

#[tokio::test]
async fn unparseable_version_is_422_version_requirement_invalid() {
    let client = Host::shared_local().client();
    let uri = speech_uri(&client).await;
    let mut body = normalize(&uri, json!({}));
    body["version"] = json!("newest please");
    let resp = client.submit(&body).await;
    expect_problem(resp, 422, "VERSION_REQUIREMENT_INVALID").await;
    client.assert_healthy().await;
}

#[tokio::test]
async fn param_of_the_wrong_type_is_422_params_invalid() {
    let client = Host::shared_local().client();
    let uri = speech_uri(&client).await;
    let resp = client
        .submit(&normalize(&uri, json!({ "target_lufs": "loud" })))
        .await;
    let problem = expect_problem(resp, 422, "PARAMS_INVALID").await;
    assert_eq!(problem.body["param"], "target_lufs", "{:#}", problem.body);
    client.assert_healthy().await;
}

#[tokio::test]
async fn param_out_of_range_is_422_params_invalid() {
    let client = Host::shared_local().client();
    let uri = speech_uri(&client).await;
    let resp = client
        .submit(&normalize(&uri, json!({ "target_lufs": -100 })))
        .await;
    let problem = expect_problem(resp, 422, "PARAMS_INVALID").await;
    assert_eq!(problem.body["param"], "target_lufs", "{:#}", problem.body);
    client.assert_healthy().await;
}

#[tokio::test]
async fn unknown_param_is_422_params_invalid() {
    let client = Host::shared_local().client();
    let uri = speech_uri(&client).await;
    let resp = client
        .submit(&normalize(
            &uri,
            json!({ "target_lufs": -23, "make_it_pop": true }),
        ))
        .await;
    let problem = expect_problem(resp, 422, "PARAMS_INVALID").await;
    assert_eq!(problem.body["param"], "make_it_pop", "{:#}", problem.body);
    client.assert_healthy().await;
}

#[tokio::test]
async fn malformed_json_is_400_request_malformed() {
    let client = Host::shared_local().client();
    let resp = client
        .submit_raw(r#"{"preset": "loudness-normalize", "inputs": {"main": "#)
        .await;
    expect_problem(resp, 400, "REQUEST_MALFORMED").await;
    client.assert_healthy().await;
}

#[tokio::test]
async fn wrong_body_shape_is_400_request_malformed() {
    let client = Host::shared_local().client();
    let resp = client
        .submit(&json!({ "preset": "loudness-normalize", "inputs": "speech.wav" }))
        .await;
    expect_problem(resp, 400, "REQUEST_MALFORMED").await;
    client.assert_healthy().await;
}

#[tokio::test]
async fn missing_or_unknown_input_names_are_422_inputs_invalid() {
    let client = Host::shared_local().client();
    let uri = speech_uri(&client).await;
    let resp = client
        .submit(&json!({ "preset": "loudness-normalize", "inputs": {}, "params": {} }))
        .await;
    expect_problem(resp, 422, "INPUTS_INVALID").await;
    let resp = client
        .submit(&json!({
            "preset": "loudness-normalize",
            "inputs": { "main": uri, "sidechain": uri },
            "params": {},
        }))
        .await;
    expect_problem(resp, 422, "INPUTS_INVALID").await;
    client.assert_healthy().await;
}

#[tokio::test]
async fn input_uri_outside_the_hosts_storage_is_422_input_uri_invalid() {
    let client = Host::shared_local().client();
    for uri in [
        "file:///etc/passwd",
        "s3://someone-elses-bucket/uploads/a.wav",
        "http://127.0.0.1:1/a.wav",
        "local://../../etc/passwd",
    ] {
        let resp = client.submit(&normalize(uri, json!({}))).await;
        let problem = expect_problem(resp, 422, "INPUT_URI_INVALID").await;
        assert_eq!(problem.body["input"], "main", "{uri}: {:#}", problem.body);
    }
    client.assert_healthy().await;
}

#[tokio::test]
async fn input_uri_with_no_object_is_422_input_not_found() {
    let client = Host::shared_local().client();
    let uri = format!(
        "local://uploads/{}/never-uploaded.wav",
        uuid::Uuid::new_v4()
    );
    let resp = client.submit(&normalize(&uri, json!({}))).await;
    let problem = expect_problem(resp, 422, "INPUT_NOT_FOUND").await;
    assert_eq!(problem.body["input"], "main", "{:#}", problem.body);
    client.assert_healthy().await;
}

#[tokio::test]
async fn text_file_fails_the_job_with_input_unreadable_at_probe() {
    let client = Host::shared_local().client();
    let uri = client.upload(&Fixtures::get().not_media).await;
    let job = client.run_job(&normalize(&uri, json!({}))).await;
    assert_eq!(job["state"], "FAILED", "{job:#}");
    assert_eq!(job["error"]["code"], "INPUT_UNREADABLE", "{job:#}");
    assert_eq!(job["error"]["step"], "probe", "{job:#}");
    let message = job["error"]["message"].as_str().unwrap_or("");
    assert!(
        message.contains("Invalid data found when processing input"),
        "the message carries ffprobe's reason: {job:#}"
    );
    assert!(
        job["outputs"].as_array().is_none_or(|o| o.is_empty()),
        "a failed job delivers nothing: {job:#}"
    );
    assert_still_works(&client).await;
}

#[tokio::test]
async fn video_without_audio_is_refused_by_the_preset() {
    let client = Host::shared_local().client();
    let uri = client.upload(&Fixtures::get().video_only).await;
    let job = client.run_job(&normalize(&uri, json!({}))).await;
    assert_eq!(job["state"], "FAILED", "{job:#}");
    assert_eq!(job["error"]["code"], "PRESET_REFUSED", "{job:#}");
    assert_eq!(job["error"]["step"], "plan", "{job:#}");
    let message = job["error"]["message"].as_str().unwrap_or("");
    assert!(
        message.contains("NO_AUDIO") || message.to_lowercase().contains("no audio"),
        "the message says there is no audio: {job:#}"
    );
    assert_still_works(&client).await;
}

#[tokio::test]
async fn unknown_job_is_404_job_not_found() {
    let client = Host::shared_local().client();
    let resp = client
        .get(&format!("/v1/jobs/{}", uuid::Uuid::new_v4()))
        .await;
    expect_problem(resp, 404, "JOB_NOT_FOUND").await;
    client.assert_healthy().await;
}

#[tokio::test]
async fn presets_are_listed_with_their_param_schemas() {
    let client = Host::shared_local().client();
    let resp = client.get("/v1/presets").await;
    let listing = json_body(resp, StatusCode::OK, "GET /v1/presets").await;
    let presets = listing["presets"]
        .as_array()
        .unwrap_or_else(|| panic!("no presets array: {listing:#}"));

    let version = |name: &str| -> Value {
        let preset = presets
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("{name} is not listed: {listing:#}"));
        assert!(
            preset["summary"].as_str().is_some_and(|s| !s.is_empty()),
            "{name} has no summary: {preset:#}"
        );
        preset["versions"]
            .as_array()
            .and_then(|v| v.iter().find(|v| v["version"] == "1.0.0"))
            .unwrap_or_else(|| panic!("{name} 1.0.0 is not listed: {preset:#}"))
            .clone()
    };

    for name in ["loudness-normalize", "audio-convert"] {
        let v = version(name);
        let params = v["params"]
            .as_array()
            .unwrap_or_else(|| panic!("{name} has no params list: {v:#}"));
        assert!(!params.is_empty(), "{name} declares no params: {v:#}");
        for p in params {
            assert!(
                p["name"].as_str().is_some_and(|n| !n.is_empty()),
                "{name}: {p:#}"
            );
            assert!(
                p["description"].as_str().is_some_and(|d| !d.is_empty()),
                "{name}: {p:#}"
            );
            assert!(p["required"].is_boolean(), "{name}: {p:#}");
            let kind = p["type"].as_str().unwrap_or("");
            assert!(
                ["number", "integer", "boolean", "text", "choice"].contains(&kind),
                "{name}: param type {kind:?}: {p:#}"
            );
            if kind == "choice" {
                assert!(
                    p["options"].as_array().is_some_and(|o| !o.is_empty()),
                    "{name}: a choice param lists its options: {p:#}"
                );
            }
        }
        let inputs = v["inputs"].to_string();
        assert!(
            inputs.contains("\"main\""),
            "{name} declares its input 'main': {v:#}"
        );
    }

    let normalize = version("loudness-normalize");
    let target = normalize["params"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "target_lufs")
        .unwrap_or_else(|| panic!("loudness-normalize has no target_lufs: {normalize:#}"));
    assert_eq!(target["type"], "number", "{target:#}");
    let (min, max) = (target["min"].as_f64(), target["max"].as_f64());
    assert!(
        min.is_some_and(|m| m > -100.0 && m <= -23.0) && max.is_some_and(|m| m >= -14.0),
        "target_lufs range must include -23..-14 and exclude -100: {target:#}"
    );
}
