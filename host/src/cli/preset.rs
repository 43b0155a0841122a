//! `mediahost preset ...`: the preset registry from a terminal, through a running host's HTTP API.
//!
//! `push` publishes a component, `list` and `show` read the registry, `yank` retires a version,
//! and `plan` dry-runs a version's planning. Publishing and yanking send the admin token: the
//! `--admin-token` flag (or `MEDIAHOST_ADMIN_TOKEN`), else the `admin-token` file in the data
//! directory, which is where a host on the same machine keeps it.
//!
//! Not here: submitting and following jobs (`job`), uploading media (`upload`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use mediahost_api::{
    Decision, DryRunAnswer, DryRunInput, DryRunRequest, Object, Preset, PresetList, PresetVersion,
};
use reqwest::Method;
use serde::Serialize;

use super::{Api, CliError, admin_token};
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

async fn execute(args: PresetArgs, opts: &Options) -> Result<(), CliError> {
    let api = Api::new(args.url, admin_token(opts), opts);
    match args.command {
        PresetCommand::Push { file } => {
            let bytes = std::fs::read(&file)
                .map_err(|e| CliError::Other(format!("cannot read {}: {e}", file.display())))?;
            let v: PresetVersion = api
                .send(
                    api.request(Method::POST, "/v1/presets")
                        .header("content-type", "application/wasm")
                        .body(bytes),
                )
                .await?;
            println!(
                "published {}@{} (sha256 {}, {})",
                v.name, v.version, v.sha256, v.interface,
            );
        }
        PresetCommand::List => {
            let list: PresetList = api.send(api.request(Method::GET, "/v1/presets")).await?;
            for preset in &list.presets {
                println!("{}  {}", preset.name, preset.summary);
                for version in &preset.versions {
                    let yanked = if version.yanked { "  (yanked)" } else { "" };
                    println!("    {}  {}{yanked}", version.version, version.published_at);
                }
            }
        }
        PresetCommand::Show { name, version } => match version {
            Some(v) => {
                let path = format!("/v1/presets/{name}/{v}");
                let shown: PresetVersion = api.send(api.request(Method::GET, &path)).await?;
                println!("{}", pretty(&shown));
            }
            None => {
                let path = format!("/v1/presets/{name}");
                let shown: Preset = api.send(api.request(Method::GET, &path)).await?;
                println!("{}", pretty(&shown));
            }
        },
        PresetCommand::Yank { name, version } => {
            let path = format!("/v1/presets/{name}/{version}");
            let v: PresetVersion = api.send(api.request(Method::DELETE, &path)).await?;
            println!(
                "yanked {name}@{version} at {}; jobs pinned to it still run",
                v.yanked_at.as_deref().unwrap_or("?")
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
            let request = DryRunRequest {
                inputs: dry_run_inputs(inputs)?,
                params: serde_json::from_str(&params)
                    .map_err(|e| CliError::Other(format!("--params is not a JSON object: {e}")))?,
                round,
                produced: BTreeMap::new(),
                analyses: read_analyses(&analyses)?,
            };
            let path = format!("/v1/presets/{name}/{version}/plan");
            let answer: DryRunAnswer = api
                .send(api.request(Method::POST, &path).json(&request))
                .await?;
            if json {
                println!("{}", pretty(&answer));
            } else {
                print_plan(&answer);
            }
        }
    }
    Ok(())
}

/// `--input NAME=URI` or `NAME=@FILE` (media info JSON), by name.
fn dry_run_inputs(inputs: Vec<String>) -> Result<BTreeMap<String, DryRunInput>, CliError> {
    let mut given = BTreeMap::new();
    for input in inputs {
        let (input, value) = input.split_once('=').ok_or_else(|| {
            CliError::Other(format!("--input '{input}' is not NAME=URI or NAME=@FILE"))
        })?;
        let value =
            match value.strip_prefix('@') {
                Some(file) => {
                    let text = std::fs::read_to_string(file)
                        .map_err(|e| CliError::Other(format!("cannot read {file}: {e}")))?;
                    DryRunInput::Media(serde_json::from_str::<Object>(&text).map_err(|e| {
                        CliError::Other(format!("{file} is not a JSON object: {e}"))
                    })?)
                }
                None => DryRunInput::Uri(value.to_owned()),
            };
        given.insert(input.to_owned(), value);
    }
    Ok(given)
}

/// `--analyses`: a JSON array of objects, inline or `@FILE`.
fn read_analyses(analyses: &str) -> Result<Vec<Object>, CliError> {
    match analyses.strip_prefix('@') {
        Some(file) => {
            let text = std::fs::read_to_string(file)
                .map_err(|e| CliError::Other(format!("cannot read {file}: {e}")))?;
            serde_json::from_str(&text).map_err(|e| CliError::Other(format!("{file}: {e}")))
        }
        None => serde_json::from_str(analyses).map_err(|e| {
            CliError::Other(format!("--analyses is not a JSON array of objects: {e}"))
        }),
    }
}

fn pretty(v: &impl Serialize) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

fn print_plan(a: &DryRunAnswer) {
    println!(
        "# {}@{}, round {}: {}",
        a.preset.name,
        a.preset.version,
        a.round,
        if a.decision == Decision::Finish {
            "finished plan"
        } else {
            "more work before the final plan"
        }
    );
    for line in &a.logs {
        println!(
            "# preset [{}] {}",
            line["level"].as_str().unwrap_or(""),
            line["message"].as_str().unwrap_or("")
        );
    }
    for command in &a.commands {
        println!("# step '{}'", command.step);
        println!("{}", command.command);
    }
    for analysis in &a.analyses {
        println!("# analysis requested: {analysis}");
    }
    if let Some(report) = &a.report {
        println!(
            "# report: {}",
            serde_json::to_string(report).unwrap_or_default()
        );
    }
}
