//! Running ffmpeg and ffprobe as child processes: timeouts, progress, stderr kept for the job.
//!
//! Not here: what the command line says. That is rendered from a validated plan in
//! [`render`], the one place argv is built.

pub mod confine;
pub mod render;

use std::ffi::OsString;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::Command;

use confine::DirAccess;

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

/// Where the ffmpeg and ffprobe executables are, and how they are contained.
#[derive(Debug, Clone)]
pub struct Tools {
    pub ffmpeg: PathBuf,
    pub ffprobe: PathBuf,
    /// Run children in a fresh network namespace (no interfaces but a downed loopback).
    pub isolate_network: bool,
    /// Confine children's filesystem access with Landlock.
    pub confine_fs: bool,
}

impl Default for Tools {
    fn default() -> Self {
        Self {
            ffmpeg: "ffmpeg".into(),
            ffprobe: "ffprobe".into(),
            isolate_network: false,
            confine_fs: false,
        }
    }
}

impl Tools {
    /// Checks which containment mechanisms work here; returns what is missing, to be reported.
    pub async fn detect() -> (Self, Vec<String>) {
        let mut tools = Self::default();
        let mut missing = Vec::new();
        let version = vec![OsString::from("-version")];
        let limit = Duration::from_secs(10);
        let try_with = |tools: Tools| {
            let version = version.clone();
            async move { capture(&tools.ffprobe, &version, limit, &tools, None).await }
        };
        let netns = Self {
            isolate_network: true,
            ..tools.clone()
        };
        match try_with(netns).await {
            Ok(_) => tools.isolate_network = true,
            Err(e) => missing.push(format!(
                "ffmpeg runs without a private network namespace ({e}); only its protocol \
                 whitelist keeps it off the network"
            )),
        }
        let landlock = Self {
            confine_fs: true,
            ..tools.clone()
        };
        match confine::supported() {
            Err(e) => missing.push(format!(
                "ffmpeg's filesystem access is not confined: {e}; only the demuxer, protocol \
                 and filter allowlists keep it to the job's files"
            )),
            Ok(()) => match try_with(landlock).await {
                Ok(out) if out.success => tools.confine_fs = true,
                Ok(out) => missing.push(format!(
                    "ffmpeg does not run under Landlock: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                )),
                Err(e) => missing.push(format!("ffmpeg does not run under Landlock: {e}")),
            },
        }
        for tool in [&tools.ffmpeg, &tools.ffprobe] {
            if let Err(e) = capture(tool, &version, limit, &tools, None).await {
                missing.push(format!("{} does not run: {e}", tool.display()));
            }
        }
        (tools, missing)
    }
}

/// Resource limits on every ffmpeg/ffprobe child.
const MAX_FILE_BYTES: u64 = 64 << 30;
const MAX_ADDRESS_SPACE: u64 = 16 << 30;
const MAX_OPEN_FILES: u64 = 1024;

/// Applied in the child between fork and exec: only async-signal-safe system calls.
fn contain(
    parent: libc::pid_t,
    isolate_network: bool,
    cpu_s: u64,
    fs: Option<&OwnedFd>,
) -> std::io::Result<()> {
    // Die with the worker: a worker killed with SIGKILL must not leave its ffmpeg running. (The
    // signal follows the thread that spawned the child: a runtime thread, which lives as long
    // as the worker.) If the worker died before this line, stop here.
    // SAFETY: prctl and getppid take plain values.
    unsafe {
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        if libc::getppid() != parent {
            return Err(std::io::Error::other(
                "the worker exited while starting ffmpeg",
            ));
        }
    }
    let limit = |resource, value: u64| {
        let rl = libc::rlimit {
            rlim_cur: value,
            rlim_max: value,
        };
        // SAFETY: setrlimit with a valid pointer to an initialised struct.
        if unsafe { libc::setrlimit(resource, &rl) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    };
    limit(libc::RLIMIT_CPU, cpu_s)?;
    limit(libc::RLIMIT_FSIZE, MAX_FILE_BYTES)?;
    limit(libc::RLIMIT_AS, MAX_ADDRESS_SPACE)?;
    limit(libc::RLIMIT_NOFILE, MAX_OPEN_FILES)?;
    limit(libc::RLIMIT_CORE, 0)?;
    // SAFETY: unshare takes flags only.
    if isolate_network && unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if let Some(fd) = fs {
        confine::enforce(fd)?;
    }
    Ok(())
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

fn command(
    program: &Path,
    args: &[OsString],
    dir: Option<(&Path, DirAccess)>,
    limit: Duration,
    tools: &Tools,
) -> Result<Command, RunError> {
    let mut cmd = Command::new(program);
    let isolate_network = tools.isolate_network;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get() as u64);
    let cpu_s = limit.as_secs().max(1) * threads;
    let fs = if tools.confine_fs {
        confine::ruleset(dir).map_err(|error| RunError::Spawn {
            program: program.display().to_string(),
            error: format!("cannot build its Landlock ruleset: {error}"),
        })?
    } else {
        None
    };
    // SAFETY: `contain` makes only async-signal-safe system calls and allocates nothing.
    unsafe {
        let parent = std::process::id() as libc::pid_t;
        cmd.pre_exec(move || contain(parent, isolate_network, cpu_s, fs.as_ref()));
    }
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .kill_on_drop(true);
    if let Some((dir, DirAccess::ReadWrite)) = dir {
        cmd.current_dir(dir);
    }
    Ok(cmd)
}

fn spawn_error(program: &Path, e: std::io::Error) -> RunError {
    RunError::Spawn {
        program: program.display().to_string(),
        error: e.to_string(),
    }
}

/// Runs a program to completion, collecting stdout and the tail of stderr. `readable` is the
/// one directory it may read besides the system's.
pub async fn capture(
    program: &Path,
    args: &[OsString],
    limit: Duration,
    tools: &Tools,
    readable: Option<&Path>,
) -> Result<Captured, RunError> {
    let started = Instant::now();
    let mut child = command(
        program,
        args,
        readable.map(|d| (d, DirAccess::Read)),
        limit,
        tools,
    )?
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
    tools: &Tools,
    args: &[OsString],
    cwd: &Path,
    limit: Duration,
    mut on_progress: impl FnMut(f64),
) -> Result<Captured, RunError> {
    let started = Instant::now();
    let program = tools.ffmpeg.as_path();
    let mut child = command(
        program,
        args,
        Some((cwd, DirAccess::ReadWrite)),
        limit,
        tools,
    )?
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

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> (PathBuf, Vec<OsString>) {
        ("bash".into(), vec!["-c".into(), script.into()])
    }

    #[tokio::test]
    async fn children_get_no_network_and_resource_limits() {
        let (tools, missing) = Tools::detect().await;
        if !tools.isolate_network {
            assert!(
                missing.iter().any(|m| m.contains("network namespace")),
                "a missing network namespace must be reported: {missing:?}"
            );
            return;
        }
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let (program, args) = sh(&format!(
            "exec 3<>/dev/tcp/127.0.0.1/{port} && echo connected; ulimit -n; ulimit -c"
        ));
        let out = capture(&program, &args, Duration::from_secs(10), &tools, None)
            .await
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(!stdout.contains("connected"), "{stdout}");
        assert!(
            listener.accept().is_err(),
            "the loopback listener was reached"
        );
        assert_eq!(
            stdout.lines().collect::<Vec<_>>(),
            [MAX_OPEN_FILES.to_string().as_str(), "0"]
        );
    }

    #[tokio::test]
    async fn children_reach_only_the_directory_they_are_given() {
        let (tools, missing) = Tools::detect().await;
        if !tools.confine_fs {
            assert!(
                missing.iter().any(|m| m.contains("Landlock")),
                "missing confinement must be reported: {missing:?}"
            );
            return;
        }
        let job = tempfile::tempdir().unwrap();
        let other = tempfile::tempdir().unwrap();
        std::fs::write(job.path().join("input"), "job bytes").unwrap();
        std::fs::write(other.path().join("canary"), "canary bytes").unwrap();
        let read = |path: &Path| format!("cat {}", path.display());
        let limit = Duration::from_secs(10);

        let (program, args) = sh(&read(&job.path().join("input")));
        let out = capture(&program, &args, limit, &tools, Some(job.path()))
            .await
            .unwrap();
        assert!(out.success, "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(out.stdout, b"job bytes");

        for target in [other.path().join("canary"), PathBuf::from("/etc/hostname")] {
            let (program, args) = sh(&read(&target));
            let out = capture(&program, &args, limit, &tools, Some(job.path()))
                .await
                .unwrap();
            assert!(!out.success, "{} was readable", target.display());
            assert!(out.stdout.is_empty());
        }

        let (program, args) = sh(&format!("echo x > {}/written", job.path().display()));
        let out = capture(&program, &args, limit, &tools, Some(job.path()))
            .await
            .unwrap();
        assert!(!out.success, "a read-only job directory was written to");
    }

    #[test]
    fn time_limits_grow_with_the_media() {
        assert_eq!(time_limit(0.0), Duration::from_secs(60));
        assert!(time_limit(3600.0) > Duration::from_secs(3600));
        assert_eq!(time_limit(f64::NAN), Duration::from_secs(60));
        assert_eq!(time_limit(1e12), Duration::from_secs(12 * 3600));
    }
}
