//! The command-line clients of a running host: `mediahost preset ...`, `mediahost job ...` and
//! `mediahost upload`, all speaking the HTTP API through the wire contract (`mediahost_api`).
//!
//! This module holds what they share: where the host is (`--url`, `MEDIAHOST_URL`, else the
//! `--public-url`/`--listen` a host on this machine would use), which bearer token to send, and
//! one typed request function that turns every problem document into `CODE (status): detail`.
//!
//! Not here: the server side of any route (`api/`), or anything that reads Redis or storage
//! directly; these commands only know what the HTTP API tells every other client.

mod events;
pub mod job;
pub mod preset;
pub mod upload;
mod wait;

use std::fmt;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use mediahost_api::Problem;
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde::de::DeserializeOwned;

use crate::config::Options;

pub use job::JobArgs;
pub use preset::PresetArgs;
pub use upload::UploadArgs;

/// `mediahost compile-preset --out <file>`: the host's compile child (`preset::compile`).
#[derive(Args, Debug, Clone)]
pub struct CompilePresetArgs {
    /// Where to write the compiled artifact.
    #[arg(long)]
    pub out: PathBuf,
}

/// The exit code of a job or upload command whose job ended FAILED, DEAD or CANCELLED.
pub const EXIT_JOB_UNSUCCESSFUL: u8 = 1;
/// The exit code of a job or upload command that could not do what it was asked: the host
/// refused the request (a problem document), could not be reached, or a wait timed out.
pub const EXIT_COMMAND_FAILED: u8 = 2;

/// The exit codes of `mediahost job` and `mediahost upload`, for their help.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  done (for wait and submit --wait: the job COMPLETED)
  1  the job ended FAILED, DEAD or CANCELLED (wait and submit --wait)
  2  the command failed: the host refused the request (its CODE is printed), could not be
     reached, or --timeout passed before the job ended";

/// Where the job and upload commands find the host, and the token they send.
#[derive(Args, Debug, Clone)]
pub struct Connection {
    /// Base URL of the host's API (default: --public-url, else http:// and --listen).
    #[arg(long, env = "MEDIAHOST_URL", global = true)]
    pub url: Option<String>,
    /// Bearer token for the job API (one of the host's --api-tokens). Default: the admin
    /// token, as `mediahost preset` finds it (--admin-token, else the data directory's file).
    #[arg(long, env = "MEDIAHOST_TOKEN", global = true, hide_env_values = true)]
    pub token: Option<String>,
}

/// Why a command failed, as the user is told.
#[derive(Debug)]
pub enum CliError {
    /// The host refused the request with a problem document.
    Problem {
        status: StatusCode,
        problem: Problem,
    },
    /// Anything else: the host unreachable, an answer outside the contract, a local file, a
    /// wait that timed out.
    Other(String),
}

impl CliError {
    pub fn other(message: impl Into<String>) -> Self {
        Self::Other(message.into())
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Problem { status, problem } => {
                write!(f, "{} ({status}): {}", problem.code, problem.detail)
            }
            Self::Other(message) => f.write_str(message),
        }
    }
}

/// A client of one host's HTTP API.
pub(crate) struct Api {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Api {
    /// A client of the host at `url` (else the one `opts` describe) sending `token`.
    pub fn new(url: Option<String>, token: Option<String>, opts: &Options) -> Self {
        let base = url
            .unwrap_or_else(|| opts.public_url())
            .trim_end_matches('/')
            .to_owned();
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        Self { http, base, token }
    }

    /// A client for the job and upload commands: `--token`, else the admin token.
    pub fn for_jobs(connection: Connection, opts: &Options) -> Self {
        let token = connection.token.or_else(|| admin_token(opts));
        Self::new(connection.url, token, opts)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A request to `path` of the API, carrying the bearer token.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let request = self.http.request(method, self.url(path));
        match &self.token {
            Some(t) => request.bearer_auth(t),
            None => request,
        }
    }

    /// A plain HTTP client for URLs that carry their own signature (upload URLs): no token.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Sends `request` and reads the answer as `T`; a problem document becomes an error.
    pub async fn send<T: DeserializeOwned>(&self, request: RequestBuilder) -> Result<T, CliError> {
        let response = self.open(request).await?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| CliError::Other(format!("the host's answer ({status}) broke off: {e}")))?;
        serde_json::from_slice(&body).map_err(|e| {
            CliError::Other(format!(
                "the host answered {status} with a body this CLI does not understand ({e}); \
                 is --url a mediahost of this version?"
            ))
        })
    }

    /// Sends `request` and returns the response if it succeeded; a problem document (or any
    /// other unsuccessful answer) becomes an error.
    pub async fn open(&self, request: RequestBuilder) -> Result<Response, CliError> {
        let response = request.send().await.map_err(|e| {
            CliError::Other(format!(
                "cannot reach the host at {}: {}",
                self.base,
                with_causes(&e)
            ))
        })?;
        if response.status().is_success() {
            Ok(response)
        } else {
            Err(refusal(response).await)
        }
    }
}

/// The error an unsuccessful answer stands for: its problem document, or its status and the
/// start of whatever else it said (a proxy's page, an object store's XML).
pub(crate) async fn refusal(response: Response) -> CliError {
    let status = response.status();
    let body = response.bytes().await.unwrap_or_default();
    match serde_json::from_slice::<Problem>(&body) {
        Ok(problem) => CliError::Problem { status, problem },
        Err(_) => {
            let text = String::from_utf8_lossy(&body);
            let text: String = text.trim().chars().take(300).collect();
            CliError::Other(format!("the host answered {status}: {text}"))
        }
    }
}

/// An error with the errors that caused it (reqwest's own message leaves out the reason, such
/// as "Connection refused").
pub(crate) fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

/// The admin token: `--admin-token` (or `MEDIAHOST_ADMIN_TOKEN`), else the `admin-token` file
/// in the data directory, which is where a host on the same machine keeps it.
pub(crate) fn admin_token(opts: &Options) -> Option<String> {
    opts.admin_token.clone().or_else(|| {
        std::fs::read_to_string(opts.admin_token_file())
            .ok()
            .map(|t| t.trim().to_owned())
    })
}

/// Runs a job or upload command's outcome into its exit code, printing an error.
pub(crate) fn exit_with(result: Result<ExitCode, CliError>) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("mediahost: {e}");
            ExitCode::from(EXIT_COMMAND_FAILED)
        }
    }
}

/// Whether progress is drawn as bars (stderr is a terminal) or written as plain lines.
pub(crate) fn stderr_is_terminal() -> bool {
    std::io::IsTerminal::is_terminal(&std::io::stderr())
}

#[cfg(test)]
mod tests {
    use super::*;
    use mediahost_api::ErrorCode;

    #[test]
    fn a_problem_reads_code_status_and_detail() {
        let e = CliError::Problem {
            status: StatusCode::CONFLICT,
            problem: Problem::new(ErrorCode::JobNotCancellable, "the job is COMPLETED"),
        };
        assert_eq!(
            e.to_string(),
            "JOB_NOT_CANCELLABLE (409 Conflict): the job is COMPLETED"
        );
    }

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        crate::config::Cli::command().debug_assert();
    }
}
