//! `mediahost upload FILE`: puts a local file into the host's storage the way every client does
//! (`POST /v1/uploads` for a grant, then the bytes PUT to its signed URL, straight to the store)
//! and prints the object URI, to name the file by in a job's inputs.
//!
//! The file is streamed, never read into memory whole, with a byte progress bar on a terminal.
//!
//! Not here: jobs (`job`, whose `submit` uploads local input files through [`upload_file`]).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use futures::TryStreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use mediahost_api::{NewUpload, UploadGrant};
use reqwest::Method;
use reqwest::header::CONTENT_LENGTH;
use tokio_util::io::ReaderStream;

use super::{Api, CliError, Connection, EXIT_CODES_HELP, exit_with, stderr_is_terminal};
use crate::config::Options;

#[derive(Args, Debug, Clone)]
#[command(after_help = EXIT_CODES_HELP)]
pub struct UploadArgs {
    #[command(flatten)]
    pub connection: Connection,
    /// The file to upload.
    pub file: PathBuf,
    /// Print the upload's grant (uri, size_bytes, ...) as JSON instead of the URI.
    #[arg(long)]
    pub json: bool,
}

/// Runs `mediahost upload`; prints the object URI and returns the process's exit code.
pub async fn run(args: UploadArgs, opts: &Options) -> ExitCode {
    let api = Api::for_jobs(args.connection, opts);
    exit_with(upload_file(&api, &args.file).await.map(|grant| {
        if args.json {
            println!(
                "{}",
                serde_json::to_string_pretty(&grant).unwrap_or_default()
            );
        } else {
            println!("{}", grant.uri);
        }
        ExitCode::SUCCESS
    }))
}

/// Uploads the file at `path`; returns its grant, whose `uri` names the stored object.
pub(super) async fn upload_file(api: &Api, path: &Path) -> Result<UploadGrant, CliError> {
    let cannot =
        |e: std::io::Error| CliError::Other(format!("cannot read {}: {e}", path.display()));
    let file = tokio::fs::File::open(path).await.map_err(cannot)?;
    let metadata = file.metadata().await.map_err(cannot)?;
    if !metadata.is_file() {
        return Err(CliError::Other(format!("{} is not a file", path.display())));
    }
    let size = metadata.len();
    let request = NewUpload {
        filename: path.file_name().map(|n| n.to_string_lossy().into_owned()),
        size_bytes: Some(size),
    };
    let grant: UploadGrant = api
        .send(api.request(Method::POST, "/v1/uploads").json(&request))
        .await?;

    let bar = if stderr_is_terminal() {
        byte_bar(size, request.filename.as_deref().unwrap_or_default())
    } else {
        ProgressBar::hidden()
    };
    let counted = bar.clone();
    let body = ReaderStream::with_capacity(file, 256 * 1024)
        .inspect_ok(move |chunk| counted.inc(chunk.len() as u64));

    // The URL carries its own signature: no bearer token (an object store would refuse one).
    let method = Method::from_bytes(grant.method.as_bytes()).unwrap_or(Method::PUT);
    let mut put = api.http().request(method, &grant.upload_url);
    let headers = grant.headers.clone().unwrap_or_default();
    for (name, value) in &headers {
        put = put.header(name, value);
    }
    // A declared length, not chunked: signed URLs (S3's) accept exactly the size they name.
    if !headers
        .keys()
        .any(|k| k.eq_ignore_ascii_case("content-length"))
    {
        put = put.header(CONTENT_LENGTH, size);
    }
    let response = put
        .body(reqwest::Body::wrap_stream(body))
        .send()
        .await
        .map_err(|e| {
            bar.abandon();
            CliError::Other(format!(
                "uploading {} failed: {}",
                path.display(),
                super::with_causes(&e)
            ))
        })?;
    if !response.status().is_success() {
        bar.abandon();
        return Err(super::refusal(response).await);
    }
    bar.finish();
    Ok(grant)
}

/// A bar counting `size` bytes, labelled `name`.
fn byte_bar(size: u64, name: &str) -> ProgressBar {
    let style = ProgressStyle::with_template(
        "{prefix:>16} [{bar:32}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
    )
    .expect("a valid template")
    .progress_chars("=> ");
    ProgressBar::new(size)
        .with_style(style)
        .with_prefix(name.to_owned())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_byte_bar_template_is_valid() {
        let bar = super::byte_bar(10, "a.wav");
        bar.inc(4);
        assert_eq!(bar.position(), 4);
    }
}
