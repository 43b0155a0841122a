//! Running ffmpeg and ffprobe as child processes: timeouts, progress, stderr kept for the job.
//!
//! Not here: what the command line says. That is rendered from a validated plan in
//! [`render`], the one place argv is built.

pub mod render;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::Command;

/// Demuxers an input may be read with. Playlist and script demuxers (hls, concat, ffconcat),
/// devices, network-ish and image-sequence demuxers are absent on purpose.
pub const DEMUXER_ALLOWLIST: &str = "wav,w64,aiff,caf,flac,mp3,aac,ac3,eac3,dts,truehd,\
mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,ogg,avi,mpegts,mpeg,flv,asf,wv,ape,tta,amr,\
h264,hevc,m4v,ivf,mjpeg,png_pipe,jpeg_pipe,webp_pipe";

/// Arguments placed before every `-i`: local files only, and only allowlisted demuxers.
pub fn input_guard_args() -> Vec<OsString> {
    [
        "-protocol_whitelist",
        "file",
        "-format_whitelist",
        DEMUXER_ALLOWLIST,
    ]
    .iter()
    .map(Into::into)
    .collect()
}

/// Where the ffmpeg and ffprobe executables are.
#[derive(Debug, Clone)]
pub struct Tools {
    pub ffmpeg: PathBuf,
    pub ffprobe: PathBuf,
}

impl Default for Tools {
    fn default() -> Self {
        Self {
            ffmpeg: "ffmpeg".into(),
            ffprobe: "ffprobe".into(),
        }
    }
}

/// Why a child process did not finish normally.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("could not start {program}: {error}; is it installed?")]
    Spawn { program: String, error: String },
    #[error("{program} ran past its {limit:?} time limit and was killed")]
    Timeout { program: String, limit: Duration },
    #[error("{0}")]
    Io(String),
}

/// What a finished child left behind.
#[derive(Debug)]
pub struct Captured {
    pub success: bool,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub wall: Duration,
}

/// The most stderr kept per process; ffmpeg can be chatty on broken input.
const STDERR_KEEP: usize = 64 << 10;

fn command(program: &Path, args: &[OsString], cwd: Option<&Path>) -> Command {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .kill_on_drop(true);
    if let Some(dir) = cwd {
        cmd.current_dir(dir);
    }
    cmd
}

fn spawn_error(program: &Path, e: std::io::Error) -> RunError {
    RunError::Spawn {
        program: program.display().to_string(),
        error: e.to_string(),
    }
}

/// Runs a program to completion, collecting stdout and the tail of stderr.
pub async fn capture(
    program: &Path,
    args: &[OsString],
    limit: Duration,
) -> Result<Captured, RunError> {
    let started = Instant::now();
    let mut child = command(program, args, None)
        .spawn()
        .map_err(|e| spawn_error(program, e))?;
    let mut stdout = child.stdout.take().expect("piped stdout");
    let stderr = child.stderr.take().expect("piped stderr");
    let work = async {
        let mut out = Vec::new();
        let (read_out, err) = tokio::join!(stdout.read_to_end(&mut out), read_tail(stderr));
        read_out.map_err(|e| RunError::Io(e.to_string()))?;
        let status = child
            .wait()
            .await
            .map_err(|e| RunError::Io(e.to_string()))?;
        Ok::<_, RunError>((status, out, err))
    };
    match tokio::time::timeout(limit, work).await {
        Ok(result) => {
            let (status, stdout, stderr) = result?;
            Ok(Captured {
                success: status.success(),
                stdout,
                stderr,
                wall: started.elapsed(),
            })
        }
        Err(_) => Err(RunError::Timeout {
            program: program.display().to_string(),
            limit,
        }),
    }
}

async fn read_tail(stream: impl tokio::io::AsyncRead + Unpin) -> Vec<u8> {
    let mut reader = BufReader::new(stream);
    let mut kept = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match reader.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                kept.extend_from_slice(&buf[..n]);
                if kept.len() > 2 * STDERR_KEEP {
                    kept.drain(..kept.len() - STDERR_KEEP);
                }
            }
        }
    }
    if kept.len() > STDERR_KEEP {
        kept.drain(..kept.len() - STDERR_KEEP);
    }
    kept
}

/// Runs ffmpeg with `-progress pipe:1` on stdout, reporting the output time reached (seconds).
pub async fn run_with_progress(
    program: &Path,
    args: &[OsString],
    cwd: &Path,
    limit: Duration,
    mut on_progress: impl FnMut(f64),
) -> Result<Captured, RunError> {
    let started = Instant::now();
    let mut child = command(program, args, Some(cwd))
        .spawn()
        .map_err(|e| spawn_error(program, e))?;
    let stdout = child.stdout.take().expect("piped stdout");
    let stderr = child.stderr.take().expect("piped stderr");
    let work = async {
        let progress = async {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(us) = line.strip_prefix("out_time_us=")
                    && let Ok(us) = us.trim().parse::<i64>()
                    && us >= 0
                {
                    on_progress(us as f64 / 1e6);
                }
            }
        };
        let ((), err) = tokio::join!(progress, read_tail(stderr));
        let status = child
            .wait()
            .await
            .map_err(|e| RunError::Io(e.to_string()))?;
        Ok::<_, RunError>((status, err))
    };
    match tokio::time::timeout(limit, work).await {
        Ok(result) => {
            let (status, stderr) = result?;
            Ok(Captured {
                success: status.success(),
                stdout: Vec::new(),
                stderr,
                wall: started.elapsed(),
            })
        }
        Err(_) => Err(RunError::Timeout {
            program: program.display().to_string(),
            limit,
        }),
    }
}

/// The wall-clock limit for an ffmpeg run over `media_s` seconds of media: generous for slow
/// encodes, never unbounded, never a fixed constant that long inputs would hit.
pub fn time_limit(media_s: f64) -> Duration {
    let media_s = if media_s.is_finite() {
        media_s.max(0.0)
    } else {
        0.0
    };
    Duration::from_secs_f64((60.0 + 10.0 * media_s).min(12.0 * 3600.0))
}
