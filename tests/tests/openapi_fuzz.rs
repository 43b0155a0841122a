//! The OpenAPI document against a real host: it is served at `/openapi.json`, and schemathesis
//! (from PyPI, pinned in tests/fuzz/requirements.txt) fuzzes every operation it describes. No
//! answer may be a 5xx, every answer must match its documented status, content type and
//! schema, and every error must be a problem document with a code (tests/fuzz/problem_check.py).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use mediahost_e2e::deployment::{ADMIN_TOKEN, Deployment};
use mediahost_e2e::host::presets_dir;
use mediahost_e2e::process;
use serde_json::{Value, json};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// schemathesis in a virtualenv of its own under the target directory, installed from PyPI
/// when missing or when the pinned requirements changed.
fn schemathesis() -> PathBuf {
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("schemathesis-venv");
    let st = venv.join("bin/st");
    let wanted = std::fs::read_to_string(fuzz_dir().join("requirements.txt")).unwrap();
    let stamp = venv.join("requirements.installed");
    if st.exists() && std::fs::read_to_string(&stamp).is_ok_and(|s| s == wanted) {
        return st;
    }
    let run = |cmd: &mut Command| {
        let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
        assert!(
            out.status.success(),
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let _ = std::fs::remove_dir_all(&venv);
    run(Command::new("python3").args(["-m", "venv"]).arg(&venv));
    run(Command::new(venv.join("bin/pip"))
        .args(["install", "--quiet", "--disable-pip-version-check", "-r"])
        .arg(fuzz_dir().join("requirements.txt")));
    std::fs::write(&stamp, wanted).unwrap();
    st
}

/// What one schemathesis run reported.
struct Run {
    cases: String,
    seconds: f64,
}

/// Runs schemathesis against the deployment's document, with the admin token if `admin`, and
/// the given config file (fixed parameter values) if any, and asserts it found nothing.
fn fuzz(st: &Path, d: &Deployment, admin: bool, config: Option<&Path>) -> Run {
    let mut command = Command::new(st);
    if let Some(config) = config {
        command.arg("--config-file").arg(config);
    }
    command
        .arg("run")
        .arg(format!("{}/openapi.json", d.base_url()))
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,\
             response_schema_conformance,problem_document_with_code",
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            "40",
            "--seed",
            "20261125",
            "--workers",
            "2",
            "--request-timeout",
            "30",
        ])
        .args(if admin {
            vec![
                "--header".to_owned(),
                format!("Authorization: Bearer {ADMIN_TOKEN}"),
            ]
        } else {
            vec![]
        })
        // schemathesis keeps a cache in its working directory: the deployment's, not the tree.
        .current_dir(d.dir.path())
        .env("SCHEMATHESIS_HOOKS", "problem_check")
        .env("PYTHONPATH", fuzz_dir())
        .env("NO_COLOR", "1");
    let started = Instant::now();
    let out = command.output().expect("run schemathesis");
    let seconds = started.elapsed().as_secs_f64();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis found failures:\n{stdout}\n{}\n--- host log ---\n{}",
        String::from_utf8_lossy(&out.stderr),
        d.api.log_tail(40)
    );
    let cases = stdout
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("Test cases:"))
        .nth(1)
        .unwrap_or_else(|| panic!("schemathesis ran no test cases:\n{stdout}"))
        .trim()
        .to_owned();
    assert!(cases.contains("passed"), "{cases}");
    Run { cases, seconds }
}

#[tokio::test(flavor = "multi_thread")]
async fn schemathesis_finds_no_server_error_and_every_error_is_a_problem() {
    let st = tokio::task::spawn_blocking(schemathesis).await.unwrap();
    let d = Deployment::start("openapi-fuzz", &presets_dir(), &[]).await;
    let _worker = d.worker("worker", &[]);

    // The document is served, open like /healthz, and is OpenAPI 3.1.
    let doc: Value = d.client.get_json("/openapi.json").await;
    assert_eq!(doc["openapi"], "3.1.0", "{doc}");
    let operations: usize = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|item| item.as_object().unwrap().len())
        .sum();

    // A finished job and a published preset version, for the second pass to name.
    let media = process::fixture_dir("openapi-fuzz-media");
    let uri = d
        .client
        .upload(&mediahost_e2e::media::sine(
            &media.path().join("t.wav"),
            1.0,
        ))
        .await;
    let job = d
        .client
        .run_job_ok(&json!({"preset": "audio-convert", "inputs": {"main": uri}, "params": {"codec": "flac"}}))
        .await;
    let config = d.dir.path().join("schemathesis.toml");
    std::fs::write(
        &config,
        format!(
            "[parameters]\n\"path.id\" = \"{}\"\n\"path.name\" = \"audio-convert\"\n\
             \"path.version\" = \"1.0.0\"\n",
            job["id"].as_str().unwrap()
        ),
    )
    .unwrap();

    let st_for = st.clone();
    let any = tokio::task::block_in_place(|| fuzz(&st_for, &d, true, None));
    let existing = tokio::task::block_in_place(|| fuzz(&st, &d, false, Some(&config)));
    eprintln!(
        "[openapi_fuzz] {operations} operations described; schemathesis 4.32.5, seed 20261125, \
         up to 40 examples per operation:\n  any values, admin token: {} in {:.1} s\n  \
         an existing job and preset version, no admin token: {} in {:.1} s",
        any.cases, any.seconds, existing.cases, existing.seconds
    );
}
