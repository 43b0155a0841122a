//! The job CLI against a real deployment, as a user at a shell would drive it: `mediahost
//! upload`, then `mediahost job submit|wait|get|logs|list|replay|cancel`, checking what each
//! prints and the exit codes scripts rely on (0 completed, 1 the job failed or was cancelled,
//! 2 the command itself failed: a refusal, or a timeout).

use std::process::Output;

use mediahost_api::{Job, JobList, JobState};
use mediahost_e2e::deployment::Deployment;
use mediahost_e2e::host::presets_dir;
use mediahost_e2e::{media, process};
use uuid::Uuid;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Both streams of a run, for assertion messages.
fn shown(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}--- stderr\n{}",
        out.status.code(),
        text(&out.stdout),
        text(&out.stderr)
    )
}

fn ok(out: Output) -> String {
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    text(&out.stdout)
}

/// The id a command printed as its only line.
fn id_of(stdout: &str) -> Uuid {
    stdout
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("not a job id ({e}): {stdout:?}"))
}

#[tokio::test]
async fn a_user_runs_follows_and_inspects_jobs_from_the_command_line() {
    let d = Deployment::start("cli", &presets_dir(), &[]).await;
    let f = process::fixture_dir("cli-media");
    let wav = media::sine(&f.path().join("tone.wav"), 1.0);
    let wav = wav.to_str().unwrap();
    let notes = media::not_media(&f.path().join("notes.wav"));
    let notes = notes.to_str().unwrap();

    // An upload prints the object URI to name it by.
    let uri = ok(d.cli(&["upload", wav])).trim().to_owned();
    assert!(uri.starts_with("local://uploads/"), "{uri}");

    // No worker yet: a job stays PENDING, so a short wait times out with exit code 2 and the
    // job goes on; cancelling it works, and waiting for it then reports CANCELLED with 1.
    let pending = id_of(&ok(d.cli(&[
        "job",
        "submit",
        "audio-convert",
        "--input",
        &format!("main={uri}"),
        "--param",
        "codec=flac",
    ])));
    let out = d.cli(&["job", "wait", &pending.to_string(), "--timeout", "1"]);
    assert_eq!(out.status.code(), Some(2), "{}", shown(&out));
    assert!(
        text(&out.stderr).contains("still PENDING"),
        "{}",
        shown(&out)
    );
    let cancelled = ok(d.cli(&["job", "cancel", &pending.to_string()]));
    assert!(cancelled.contains("CANCELLED"), "{cancelled}");
    let out = d.cli(&["job", "wait", &pending.to_string()]);
    assert_eq!(out.status.code(), Some(1), "{}", shown(&out));

    // With a worker, a local file is uploaded and the job followed to its end. The test's
    // stderr is not a terminal, so progress comes as plain lines, no escape codes.
    let _worker = d.worker("worker-a", &["--concurrency", "1"]);
    let out = d.cli(&[
        "job",
        "submit",
        "audio-convert",
        "--input",
        &format!("main={wav}"),
        "--param",
        "codec=flac",
        "--wait",
    ]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    assert!(
        !stderr.contains('\u{1b}'),
        "no escape codes off a terminal: {stderr}"
    );
    let progress: Vec<&str> = stderr
        .lines()
        .filter(|l| {
            ["PENDING ", "PROCESSING ", "COMPLETED "]
                .iter()
                .any(|s| l.starts_with(s))
        })
        .collect();
    assert_eq!(
        progress.last().copied(),
        Some("COMPLETED 100%"),
        "the progress lines end in COMPLETED: {stderr}"
    );
    let first = stdout.lines().next().unwrap_or_default();
    assert!(first.ends_with("COMPLETED"), "{stdout}");
    let id: Uuid = first
        .split_whitespace()
        .nth(1)
        .and_then(|i| i.parse().ok())
        .unwrap_or_else(|| panic!("the outcome names the job: {stdout}"));

    // `get --json` is the contract's job; the summary above showed its output's URI.
    let job: Job = serde_json::from_str(&ok(d.cli(&["job", "get", &id.to_string(), "--json"])))
        .expect("job get --json is a mediahost_api::Job");
    assert_eq!(job.state, JobState::Completed);
    assert_eq!(job.preset.name, "audio-convert");
    let output = &job.outputs[0];
    assert_eq!(output.container, "flac", "{output:?}");
    assert!(
        stdout.contains(&format!("uri       {}", output.uri)),
        "the outcome shows the output's URI {}: {stdout}",
        output.uri
    );
    assert!(stdout.contains("download  http"), "{stdout}");
    let summary = ok(d.cli(&["job", "get", &id.to_string()]));
    assert!(
        summary.contains(&format!("audio-convert@{}", job.preset.version))
            && summary.contains("attempts   1 of"),
        "{summary}"
    );

    let logs = ok(d.cli(&["job", "logs", &id.to_string()]));
    assert!(
        logs.lines().count() >= 3 && logs.contains("ffmpeg"),
        "one line per log entry: {logs}"
    );

    let listed = ok(d.cli(&["job", "list", "--state", "COMPLETED"]));
    assert!(listed.contains(&id.to_string()), "{listed}");
    assert!(
        !listed.contains(&pending.to_string()),
        "only COMPLETED jobs: {listed}"
    );
    let list: JobList = serde_json::from_str(&ok(d.cli(&["job", "list", "--json"]))).unwrap();
    assert!(list.jobs.iter().any(|j| j.id == pending));

    let replay = id_of(&ok(d.cli(&["job", "replay", &id.to_string()])));
    assert_ne!(replay, id);
    let replayed = ok(d.cli(&["job", "wait", &replay.to_string()]));
    assert!(replayed.contains("COMPLETED"), "{replayed}");

    // On a terminal (a pseudo-terminal from util-linux's `script`), `wait` draws bars instead of
    // lines: the job's bar full at 100 % and COMPLETED.
    let on_terminal = std::process::Command::new("script")
        .args(["--quiet", "--return", "--command"])
        .arg(format!(
            "{} job wait {replay} --url {} --admin-token {}",
            mediahost_e2e::host::mediahost_binary().display(),
            d.base_url(),
            mediahost_e2e::deployment::ADMIN_TOKEN
        ))
        .arg("/dev/null")
        .env("TERM", "xterm")
        .output()
        .expect("run script(1) from util-linux");
    let screen = text(&on_terminal.stdout);
    assert_eq!(
        on_terminal.status.code(),
        Some(0),
        "{}",
        shown(&on_terminal)
    );
    assert!(
        screen.contains(&format!("job [{}] 100% COMPLETED", "=".repeat(32))),
        "no finished bar on a terminal: {screen:?}"
    );
    assert!(
        !screen.contains("COMPLETED 100%"),
        "plain lines on a terminal: {screen:?}"
    );

    // A finished job cannot be cancelled: the host's code, and exit code 2.
    let out = d.cli(&["job", "cancel", &id.to_string()]);
    assert_eq!(out.status.code(), Some(2), "{}", shown(&out));
    assert!(
        text(&out.stderr).contains("JOB_NOT_CANCELLABLE (409"),
        "{}",
        shown(&out)
    );

    // A file that is not media fails the job: wait exits 1 and says why.
    let failing = id_of(&ok(d.cli(&[
        "job",
        "submit",
        "audio-convert",
        "--input",
        &format!("main={notes}"),
        "--param",
        "codec=flac",
    ])));
    let out = d.cli(&["job", "wait", &failing.to_string()]);
    assert_eq!(out.status.code(), Some(1), "{}", shown(&out));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("FAILED") && stdout.contains("INPUT_UNREADABLE at probe"),
        "{}",
        shown(&out)
    );

    // Refusals read as the problem's code; an unknown job is one.
    let out = d.cli(&["job", "get", &Uuid::new_v4().to_string()]);
    assert_eq!(out.status.code(), Some(2), "{}", shown(&out));
    assert!(
        text(&out.stderr).contains("JOB_NOT_FOUND (404"),
        "{}",
        shown(&out)
    );
}
