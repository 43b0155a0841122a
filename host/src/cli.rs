//! `mediahost preset ...`: the preset registry from a terminal, through a running host's HTTP API.
//!
//! `push` publishes a component, `list` and `show` read the registry, `yank` retires a version,
//! and `plan` dry-runs a version's planning. Publishing and yanking send the admin token: the
//! `--admin-token` flag (or `MEDIAHOST_ADMIN_TOKEN`), else the `admin-token` file in the data
//! directory, which is where a host on the same machine keeps it.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde_json::{Map, Value, json};

use crate::config::Options;

#[derive(Args, Debug, Clone)]
pub struct PresetArgs {
    /// Base URL of the host's API (default: http:// and --listen).
    #[arg(long, env = "MEDIAHOST_URL", global = true)]
    pub url: Option<String>,
    #[command(subcommand)]
    pub command: PresetCommand,
}

#[derive(Subcommand, Debug, Clone)]
pub enum PresetCommand {
    /// Publish a component (.wasm) as a new preset version; it is live on every process within
    /// a second.
    Push {
        /// The built component, e.g. presets-wasm/released/loudness-normalize-1.2.0.wasm.
        file: PathBuf,
    },
    /// List presets and their versions.
    List,
    /// Show a preset with all its versions, or one version.
    Show {
        name: String,
        version: Option<String>,
    },
    /// Yank a version: new jobs no longer resolve to it; jobs pinned to it still run and replay.
    Yank { name: String, version: String },
    /// Dry-run one planning call of a version: the validated plan and the ffmpeg command lines
    /// the host would run. Nothing runs.
    Plan {
        name: String,
        version: String,
        /// An input, as NAME=URI (an uploaded object, probed by the host) or NAME=@FILE (media
        /// info JSON, as a dry run's answer shows it under "inputs"). Repeat for each input.
        #[arg(long = "input", value_name = "NAME=URI|NAME=@FILE", required = true)]
        inputs: Vec<String>,
        /// Params as a JSON object.
        #[arg(long, default_value = "{}")]
        params: String,
        /// The planning round to call (a later round needs --analyses with what the earlier
        /// rounds asked to measure).
        #[arg(long, default_value_t = 1)]
        round: u32,
        /// Analysis results for a later round, as a JSON array (or @FILE), in the form a dry
        /// run's answer shows requests under "analyses".
        #[arg(long, default_value = "[]")]
        analyses: String,
        /// Print the whole answer as JSON instead of the command lines.
        #[arg(long)]
        json: bool,
    },
}

/// Runs a preset command; prints what happened and returns the process's exit code.
pub async fn run(args: PresetArgs, opts: &Options) -> ExitCode {
    match execute(args, opts).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("mediahost: {message}");
            ExitCode::FAILURE
        }
    }
}

struct Api {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Api {
    async fn send(&self, request: reqwest::RequestBuilder) -> Result<Value, String> {
        let request = match &self.token {
            Some(t) => request.bearer_auth(t),
            None => request,
        };
        let response = request
            .send()
            .await
            .map_err(|e| format!("cannot reach the host at {}: {e}", self.base))?;
        let status = response.status();
        let body: Value = response
            .json()
            .await
            .map_err(|e| format!("the host answered {status} with a body that is not JSON: {e}"))?;
        if status.is_success() {
            Ok(body)
        } else {
            Err(format!(
                "{} ({status}): {}",
                body["code"].as_str().unwrap_or("ERROR"),
                body["detail"].as_str().unwrap_or("no detail")
            ))
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

async fn execute(args: PresetArgs, opts: &Options) -> Result<(), String> {
    let base = args
        .url
        .unwrap_or_else(|| opts.public_url())
        .trim_end_matches('/')
        .to_owned();
    let token = opts.admin_token.clone().or_else(|| {
        std::fs::read_to_string(opts.admin_token_file())
            .ok()
            .map(|t| t.trim().to_owned())
    });
    let api = Api {
        http: reqwest::Client::new(),
        base,
        token,
    };
    match args.command {
        PresetCommand::Push { file } => {
            let bytes =
                std::fs::read(&file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
            let v = api
                .send(
                    api.http
                        .post(api.url("/v1/presets"))
                        .header("content-type", "application/wasm")
                        .body(bytes),
                )
                .await?;
            println!(
                "published {}@{} (sha256 {}, {})",
                v["name"].as_str().unwrap_or("?"),
                v["version"].as_str().unwrap_or("?"),
                v["sha256"].as_str().unwrap_or("?"),
                v["interface"].as_str().unwrap_or("?"),
            );
        }
        PresetCommand::List => {
            let v = api.send(api.http.get(api.url("/v1/presets"))).await?;
            for preset in v["presets"].as_array().into_iter().flatten() {
                println!(
                    "{}  {}",
                    preset["name"].as_str().unwrap_or("?"),
                    preset["summary"].as_str().unwrap_or("")
                );
                for version in preset["versions"].as_array().into_iter().flatten() {
                    let yanked = if version["yanked"] == json!(true) {
                        "  (yanked)"
                    } else {
                        ""
                    };
                    println!(
                        "    {}  {}{yanked}",
                        version["version"].as_str().unwrap_or("?"),
                        version["published_at"].as_str().unwrap_or(""),
                    );
                }
            }
        }
        PresetCommand::Show { name, version } => {
            let path = match version {
                Some(v) => format!("/v1/presets/{name}/{v}"),
                None => format!("/v1/presets/{name}"),
            };
            let v = api.send(api.http.get(api.url(&path))).await?;
            println!("{}", pretty(&v));
        }
        PresetCommand::Yank { name, version } => {
            let v = api
                .send(
                    api.http
                        .delete(api.url(&format!("/v1/presets/{name}/{version}"))),
                )
                .await?;
            println!(
                "yanked {name}@{version} at {}; jobs pinned to it still run",
                v["yanked_at"].as_str().unwrap_or("?")
            );
        }
        PresetCommand::Plan {
            name,
            version,
            inputs,
            params,
            round,
            analyses,
            json,
        } => {
            let params: Map<String, Value> = serde_json::from_str(&params)
                .map_err(|e| format!("--params is not a JSON object: {e}"))?;
            let analyses: Value = match analyses.strip_prefix('@') {
                Some(file) => std::fs::read_to_string(file)
                    .map_err(|e| format!("cannot read {file}: {e}"))
                    .and_then(|t| serde_json::from_str(&t).map_err(|e| format!("{file}: {e}")))?,
                None => serde_json::from_str(&analyses)
                    .map_err(|e| format!("--analyses is not JSON: {e}"))?,
            };
            let mut given = Map::new();
            for input in inputs {
                let (input, value) = input
                    .split_once('=')
                    .ok_or_else(|| format!("--input '{input}' is not NAME=URI or NAME=@FILE"))?;
                let value = match value.strip_prefix('@') {
                    Some(file) => {
                        let text = std::fs::read_to_string(file)
                            .map_err(|e| format!("cannot read {file}: {e}"))?;
                        serde_json::from_str(&text)
                            .map_err(|e| format!("{file} is not JSON: {e}"))?
                    }
                    None => json!(value),
                };
                given.insert(input.to_owned(), value);
            }
            let v = api
                .send(
                    api.http
                        .post(api.url(&format!("/v1/presets/{name}/{version}/plan")))
                        .json(&json!({
                            "inputs": given,
                            "params": params,
                            "round": round,
                            "analyses": analyses,
                        })),
                )
                .await?;
            if json {
                println!("{}", pretty(&v));
            } else {
                print_plan(&v);
            }
        }
    }
    Ok(())
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

fn print_plan(v: &Value) {
    println!(
        "# {}@{}, round {}: {}",
        v["preset"]["name"].as_str().unwrap_or("?"),
        v["preset"]["version"].as_str().unwrap_or("?"),
        v["round"],
        if v["decision"] == "finish" {
            "finished plan"
        } else {
            "more work before the final plan"
        }
    );
    for line in v["logs"].as_array().into_iter().flatten() {
        println!(
            "# preset [{}] {}",
            line["level"].as_str().unwrap_or(""),
            line["message"].as_str().unwrap_or("")
        );
    }
    for command in v["commands"].as_array().into_iter().flatten() {
        println!("# step '{}'", command["step"].as_str().unwrap_or("?"));
        println!("{}", command["command"].as_str().unwrap_or(""));
    }
    for analysis in v["analyses"].as_array().into_iter().flatten() {
        println!("# analysis requested: {analysis}");
    }
    if v["report"].is_object() {
        println!("# report: {}", v["report"]);
    }
}
