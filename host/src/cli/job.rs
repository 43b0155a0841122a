//! `mediahost job ...`: submit, follow, inspect, cancel and replay jobs on a running host, through
//! its HTTP API and the wire contract's types.
//!
//! `submit` uploads the inputs given as local files first (as `mediahost upload` does), so one
//! command takes a file on this machine to a job; with `--wait` it then follows the job like
//! `wait`. Exit codes are in [`super::EXIT_CODES_HELP`].
//!
//! Not here: the event stream and its display (`wait`, `events`), the upload itself (`upload`).

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use indicatif::HumanBytes;
use mediahost_api::{
    Job, JobList, JobLogs, JobState, Object, Outcome, OutputState, Priority, ReplayJob, SubmitJob,
};
use reqwest::Method;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use uuid::Uuid;

use super::{
    Api, CliError, Connection, EXIT_CODES_HELP, EXIT_JOB_UNSUCCESSFUL, exit_with, upload, wait,
};
use crate::config::Options;

#[derive(Args, Debug, Clone)]
#[command(after_help = EXIT_CODES_HELP)]
pub struct JobArgs {
    #[command(flatten)]
    pub connection: Connection,
    #[command(subcommand)]
    pub command: JobCommand,
}

#[derive(Subcommand, Debug, Clone)]
pub enum JobCommand {
    /// Submit a job: a preset over inputs (object URIs, or local files, uploaded first) with
    /// params. Prints the job's id.
    #[command(after_help = EXIT_CODES_HELP)]
    Submit(SubmitArgs),
    /// Show a job: state, preset version, attempts, timings, outputs, error.
    Get {
        id: Uuid,
        /// Print the job as the API answers it (JSON) instead.
        #[arg(long)]
        json: bool,
    },
    /// Follow a job until it ends, with progress per output, then print how it ended.
    #[command(after_help = EXIT_CODES_HELP)]
    Wait {
        id: Uuid,
        /// Give up after this many seconds (exit code 2); the job goes on.
        #[arg(long, value_name = "SECONDS")]
        timeout: Option<u64>,
        /// Print the ended job as JSON instead of a summary.
        #[arg(long)]
        json: bool,
    },
    /// Print a job's log, one line per entry: time, source, message.
    Logs { id: Uuid },
    /// Cancel a job: a pending one at once, a running one within about a second.
    Cancel { id: Uuid },
    /// Run a job again: the same inputs, params and pinned version. Prints the new job's id.
    Replay {
        id: Uuid,
        /// Log every ffmpeg step's stderr, not only a failing one's.
        #[arg(long)]
        verbose: bool,
    },
    /// List jobs, newest first.
    List {
        /// Only jobs in this state (PENDING, PROCESSING, COMPLETED, FAILED, DEAD, CANCELLED).
        #[arg(long, value_parser = parse_state)]
        state: Option<JobState>,
        /// At most this many (1 to 500; the host's default is 50).
        #[arg(long)]
        limit: Option<u32>,
        /// Continue from where a previous list stopped (the cursor it printed).
        #[arg(long)]
        cursor: Option<String>,
        /// Print the list as the API answers it (JSON) instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args, Debug, Clone)]
pub struct SubmitArgs {
    /// The preset's name, e.g. audio-convert.
    pub preset: String,
    /// A semver requirement for the preset's version (`1`, `^1.2`, `=1.2.0`); default: the
    /// newest live version.
    #[arg(long, value_name = "REQ")]
    pub version: Option<String>,
    /// An input: NAME=URI (an object URI, anything starting with a scheme such as local:// or
    /// s3://) or NAME=FILE (any other value: a local file, uploaded first; write a file name
    /// with a colon as ./name). Repeat for each input.
    #[arg(long = "input", value_name = "NAME=URI|NAME=FILE", required = true)]
    pub inputs: Vec<String>,
    /// Params as a JSON object; --param sets members on top of it.
    #[arg(long, value_name = "JSON")]
    pub params: Option<String>,
    /// One param: the value is read as JSON when it parses (-16, true, "x"), else as text
    /// (flac). Repeat for each param.
    #[arg(long = "param", value_name = "KEY=VALUE")]
    pub param: Vec<String>,
    /// Which queue the job waits in.
    #[arg(long, value_parser = parse_priority, default_value = "normal")]
    pub priority: Priority,
    /// A URL the job's terminal event is POSTed to (Standard Webhooks).
    #[arg(long, value_name = "URL")]
    pub webhook: Option<String>,
    /// Neither answer the job from the result cache nor keep its outputs there.
    #[arg(long)]
    pub no_cache: bool,
    /// Log every ffmpeg step's stderr, not only a failing one's.
    #[arg(long)]
    pub verbose: bool,
    /// Follow the job until it ends, as `job wait` does.
    #[arg(long)]
    pub wait: bool,
    /// With --wait: give up after this many seconds (exit code 2); the job goes on.
    #[arg(long, value_name = "SECONDS", requires = "wait")]
    pub timeout: Option<u64>,
    /// Print the job as JSON (with --wait, the ended job) instead of its id.
    #[arg(long)]
    pub json: bool,
}

/// Runs a job command; prints what happened and returns the process's exit code.
pub async fn run(args: JobArgs, opts: &Options) -> ExitCode {
    let api = Api::for_jobs(args.connection, opts);
    exit_with(execute(&api, args.command).await)
}

async fn execute(api: &Api, command: JobCommand) -> Result<ExitCode, CliError> {
    match command {
        JobCommand::Submit(args) => submit(api, args).await,
        JobCommand::Get { id, json } => {
            let job: Job = api
                .send(api.request(Method::GET, &job_path(id, "")))
                .await?;
            if json {
                println!("{}", pretty(&job));
            } else {
                print!("{}", summary(&job));
            }
            Ok(ExitCode::SUCCESS)
        }
        JobCommand::Wait { id, timeout, json } => {
            let job = wait::follow(api, id, timeout.map(Duration::from_secs)).await?;
            Ok(ended(&job, json))
        }
        JobCommand::Logs { id } => {
            let logs: JobLogs = api
                .send(api.request(Method::GET, &job_path(id, "/logs")))
                .await?;
            for entry in &logs.logs {
                // Continuation lines (ffmpeg's stderr) are indented under their entry.
                let message = entry.message.trim_end().replace('\n', "\n    ");
                println!("{}  {}  {message}", entry.at, entry.source);
            }
            Ok(ExitCode::SUCCESS)
        }
        JobCommand::Cancel { id } => {
            let job: Job = api
                .send(api.request(Method::POST, &job_path(id, "/cancel")))
                .await?;
            if job.cancel_requested {
                println!(
                    "cancel requested: job {id} was {}; its worker stops it within about a second",
                    job.state.as_str()
                );
            } else {
                println!("job {id} is {}", job.state.as_str());
            }
            Ok(ExitCode::SUCCESS)
        }
        JobCommand::Replay { id, verbose } => {
            let replay = ReplayJob { verbose };
            let job: Job = api
                .send(
                    api.request(Method::POST, &job_path(id, "/replay"))
                        .json(&replay),
                )
                .await?;
            println!("{}", job.id);
            Ok(ExitCode::SUCCESS)
        }
        JobCommand::List {
            state,
            limit,
            cursor,
            json,
        } => {
            let mut query = Vec::new();
            if let Some(state) = state {
                query.push(("state", state.as_str().to_owned()));
            }
            if let Some(limit) = limit {
                query.push(("limit", limit.to_string()));
            }
            if let Some(cursor) = cursor {
                query.push(("cursor", cursor));
            }
            let list: JobList = api
                .send(api.request(Method::GET, "/v1/jobs").query(&query))
                .await?;
            if json {
                println!("{}", pretty(&list));
            } else {
                print!("{}", table(&list));
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn submit(api: &Api, args: SubmitArgs) -> Result<ExitCode, CliError> {
    let params = parse_params(args.params.as_deref(), &args.param).map_err(CliError::Other)?;
    let mut inputs = std::collections::BTreeMap::new();
    for input in &args.inputs {
        let (name, source) = parse_input(input).map_err(CliError::Other)?;
        let uri = match source {
            InputSource::Uri(uri) => uri,
            InputSource::File(path) => {
                let grant = upload::upload_file(api, &path).await?;
                eprintln!("uploaded {} as {}", path.display(), grant.uri);
                grant.uri
            }
        };
        inputs.insert(name, uri);
    }
    let request = SubmitJob {
        version: args.version,
        params,
        priority: args.priority,
        webhook: args.webhook,
        verbose: args.verbose,
        cache: !args.no_cache,
        ..SubmitJob::new(args.preset, inputs)
    };
    let job: Job = api
        .send(api.request(Method::POST, "/v1/jobs").json(&request))
        .await?;
    if !args.wait {
        if args.json {
            println!("{}", pretty(&job));
        } else {
            println!("{}", job.id);
        }
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!(
        "submitted job {} ({}@{})",
        job.id, job.preset.name, job.preset.version
    );
    let job = wait::follow(api, job.id, args.timeout.map(Duration::from_secs)).await?;
    Ok(ended(&job, args.json))
}

/// Prints how a followed job ended; its exit code.
fn ended(job: &Job, json: bool) -> ExitCode {
    if json {
        println!("{}", pretty(job));
    } else {
        print!("{}", summary(job));
    }
    match job.state {
        JobState::Completed => ExitCode::SUCCESS,
        _ => ExitCode::from(EXIT_JOB_UNSUCCESSFUL),
    }
}

fn job_path(id: Uuid, rest: &str) -> String {
    format!("/v1/jobs/{id}{rest}")
}

fn pretty(v: &impl Serialize) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

/// A value's name on the wire (`hls-rendition`, `normal`): how the API spells it.
fn wire_name(v: &impl Serialize) -> String {
    match serde_json::to_value(v) {
        Ok(Value::String(s)) => s,
        other => format!("{other:?}"),
    }
}

/// Where a job input comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum InputSource {
    /// An object URI, passed on as it is.
    Uri(String),
    /// A local file, uploaded first.
    File(PathBuf),
}

/// `NAME=URI` or `NAME=FILE`: a value that starts with a URI scheme (RFC 3986: a letter, then
/// letters, digits, `+`, `-` or `.`, then `:`) is a URI; anything else is a file path. A
/// one-letter scheme is not taken for one, so `C:\media\a.wav` stays a path.
fn parse_input(arg: &str) -> Result<(String, InputSource), String> {
    let (name, value) = arg
        .split_once('=')
        .filter(|(name, value)| !name.is_empty() && !value.is_empty())
        .ok_or_else(|| format!("--input '{arg}' is not NAME=URI or NAME=FILE"))?;
    let is_uri = value.split_once(':').is_some_and(|(scheme, _)| {
        scheme.len() > 1
            && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    });
    let source = if is_uri {
        InputSource::Uri(value.to_owned())
    } else {
        InputSource::File(PathBuf::from(value))
    };
    Ok((name.to_owned(), source))
}

/// The params: `--params` (a JSON object), then each `--param KEY=VALUE` on top, its value JSON
/// when it parses as JSON, else the text itself.
fn parse_params(params: Option<&str>, param: &[String]) -> Result<Object, String> {
    let mut object: Object = match params {
        Some(text) => parse_json(text, "--params")?,
        None => Object::new(),
    };
    for arg in param {
        let (key, value) = arg
            .split_once('=')
            .filter(|(key, _)| !key.is_empty())
            .ok_or_else(|| format!("--param '{arg}' is not KEY=VALUE"))?;
        let value = serde_json::from_str::<Value>(value)
            .unwrap_or_else(|_| Value::String(value.to_owned()));
        object.insert(key.to_owned(), value);
    }
    Ok(object)
}

fn parse_json<T: DeserializeOwned>(text: &str, what: &str) -> Result<T, String> {
    serde_json::from_str(text).map_err(|e| format!("{what} is not a JSON object: {e}"))
}

fn parse_state(text: &str) -> Result<JobState, String> {
    serde_json::from_value(Value::String(text.to_ascii_uppercase())).map_err(|_| {
        format!("'{text}' is not one of PENDING, PROCESSING, COMPLETED, FAILED, DEAD, CANCELLED")
    })
}

fn parse_priority(text: &str) -> Result<Priority, String> {
    serde_json::from_value(Value::String(text.to_ascii_lowercase()))
        .map_err(|_| format!("'{text}' is not one of high, normal, low"))
}

fn seconds(s: f64) -> String {
    format!("{s:.2} s")
}

/// A job for people: what it ran, how it went, what it made or why it failed.
fn summary(job: &Job) -> String {
    let mut s = String::new();
    let partial = match job.outcome {
        Some(Outcome::Partial) => "  (partial: an optional output failed)",
        _ => "",
    };
    let _ = writeln!(s, "job {}  {}{partial}", job.id, job.state.as_str());
    let _ = writeln!(s, "  preset     {}@{}", job.preset.name, job.preset.version);
    let _ = write!(s, "  attempts   {} of {}", job.attempts, job.max_attempts);
    match &job.next_attempt_at {
        Some(at) => {
            let _ = writeln!(s, " (next at {at})");
        }
        None => s.push('\n'),
    }
    let _ = writeln!(s, "  priority   {}", job.priority.as_str());
    if let Some(original) = job.replay_of {
        let _ = writeln!(s, "  replay of  {original}");
    }
    if let Some(cached) = &job.cached {
        let _ = writeln!(s, "  cached     the outputs of job {}", cached.job);
    }
    let t = &job.timings;
    let _ = writeln!(s, "  created    {}", t.created_at);
    if let Some(at) = &t.started_at {
        let _ = writeln!(s, "  started    {at}");
    }
    if let Some(at) = &t.finished_at {
        let _ = writeln!(s, "  finished   {at}");
    }
    let took: Vec<String> = [
        ("queued", t.queue_s),
        ("ran", t.run_s),
        ("ffmpeg", t.ffmpeg_s),
    ]
    .into_iter()
    .filter_map(|(what, s)| Some(format!("{what} {}", seconds(s?))))
    .collect();
    if !took.is_empty() {
        let _ = writeln!(s, "  took       {}", took.join(", "));
    }
    if !job.outputs.is_empty() {
        let _ = writeln!(s, "  outputs");
    }
    for o in &job.outputs {
        let mut line = format!(
            "    {}  {}  {}  {}",
            o.name,
            wire_name(&o.kind),
            o.container,
            HumanBytes(o.size_bytes)
        );
        if let Some(d) = o.duration_s {
            let _ = write!(line, "  {}", seconds(d));
        }
        if o.state == OutputState::Failed {
            line.push_str("  FAILED");
        }
        if o.optional {
            line.push_str("  (optional)");
        }
        let _ = writeln!(s, "{line}");
        if !o.uri.is_empty() {
            let _ = writeln!(s, "      uri       {}", o.uri);
        }
        if let Some(url) = &o.download_url {
            let _ = writeln!(s, "      download  {url}");
        }
        if let Some(e) = &o.error {
            let _ = writeln!(s, "      error     {e}");
        }
    }
    if let Some(e) = &job.error {
        let _ = writeln!(s, "  error      {} at {}: {}", e.code, e.step, e.message);
    }
    s
}

/// The list as a table, then the cursor of the next page.
fn table(list: &JobList) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<36}  {:<10}  {:<28}  {:<8}  {:>8}  {:<24}  ERROR",
        "ID", "STATE", "PRESET", "PRIORITY", "ATTEMPTS", "CREATED"
    );
    for j in &list.jobs {
        let error = j
            .error
            .as_ref()
            .map(|e| format!("{} at {}", e.code, e.step))
            .unwrap_or_default();
        let line = format!(
            "{:<36}  {:<10}  {:<28}  {:<8}  {:>8}  {:<24}  {error}",
            j.id,
            j.state.as_str(),
            format!("{}@{}", j.preset.name, j.preset.version),
            j.priority.as_str(),
            j.attempts,
            j.created_at,
        );
        let _ = writeln!(s, "{}", line.trim_end());
    }
    match &list.next_cursor {
        Some(cursor) => {
            let _ = writeln!(s, "next cursor: {cursor}");
        }
        None => {
            let _ = writeln!(s, "(last page)");
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_param_is_json_when_it_parses_else_text() {
        let params = parse_params(
            None,
            &[
                "codec=flac".into(),
                "target_lufs=-16".into(),
                "dual_mono=true".into(),
                "label=\"-16\"".into(),
                "widths=640,1280".into(),
                "note=a=b".into(),
                "empty=".into(),
            ],
        )
        .unwrap();
        assert_eq!(
            Value::Object(params),
            json!({"codec": "flac", "target_lufs": -16, "dual_mono": true, "label": "-16",
                   "widths": "640,1280", "note": "a=b", "empty": ""})
        );
    }

    #[test]
    fn a_param_overrides_the_params_object() {
        let params = parse_params(
            Some(r#"{"codec": "opus", "bitrate": 96}"#),
            &["codec=flac".into()],
        )
        .unwrap();
        assert_eq!(
            Value::Object(params),
            json!({"codec": "flac", "bitrate": 96})
        );
    }

    #[test]
    fn malformed_params_are_refused_with_the_flag_named() {
        assert!(
            parse_params(Some("[1]"), &[])
                .unwrap_err()
                .contains("--params")
        );
        assert!(
            parse_params(None, &["novalue".into()])
                .unwrap_err()
                .contains("--param 'novalue'")
        );
        assert!(parse_params(None, &["=x".into()]).is_err());
    }

    #[test]
    fn an_input_with_a_scheme_is_a_uri_and_anything_else_a_file() {
        let uri = |v: &str| InputSource::Uri(v.to_owned());
        let file = |v: &str| InputSource::File(PathBuf::from(v));
        for (arg, source) in [
            (
                "main=local://uploads/1/a.wav",
                uri("local://uploads/1/a.wav"),
            ),
            (
                "main=s3://bucket/uploads/a.wav",
                uri("s3://bucket/uploads/a.wav"),
            ),
            ("main=x-custom+v1.2:opaque", uri("x-custom+v1.2:opaque")),
            ("main=a.wav", file("a.wav")),
            ("main=/tmp/a.wav", file("/tmp/a.wav")),
            ("main=./notes:v2.wav", file("./notes:v2.wav")),
            ("main=dir/a:b.wav", file("dir/a:b.wav")),
            ("main=C:\\media\\a.wav", file("C:\\media\\a.wav")),
            ("main=2024:take.wav", file("2024:take.wav")),
            ("main=a=b.wav", file("a=b.wav")),
        ] {
            assert_eq!(
                parse_input(arg).unwrap(),
                ("main".to_owned(), source),
                "{arg}"
            );
        }
        for bad in ["main", "=a.wav", "main="] {
            assert!(parse_input(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn states_and_priorities_read_in_any_case() {
        assert_eq!(parse_state("completed"), Ok(JobState::Completed));
        assert_eq!(parse_state("DEAD"), Ok(JobState::Dead));
        assert!(parse_state("done").is_err());
        assert_eq!(parse_priority("HIGH"), Ok(Priority::High));
        assert!(parse_priority("urgent").is_err());
    }
}
