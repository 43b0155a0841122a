//! Running ffmpeg and ffprobe as jailed child processes: timeouts, a disk budget, capped output,
//! progress, stderr kept for the job.
//!
//! Not here: what the command line says. That is rendered from a validated plan in
//! [`render`], the one place argv is built. How the child is contained is [`jail`] and
//! [`confine`].

pub mod confine;
pub mod jail;
pub mod output;
pub mod render;

use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::error::ErrorCode;
use confine::DirAccess;

/// Demuxers an input may be read with. Playlist and script demuxers (hls, concat, ffconcat),
/// devices, network-ish and image-sequence demuxers are absent on purpose.
pub const DEMUXER_ALLOWLIST: &str = "wav,w64,aiff,caf,flac,mp3,aac,ac3,eac3,dts,truehd,\
mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,ogg,avi,mpegts,mpeg,flv,asf,wv,ape,tta,amr,\
h264,hevc,m4v,ivf,mjpeg,png_pipe,jpeg_pipe,webp_pipe,tiff_pipe,bmp_pipe,gif";

/// Decoders an input may be decoded with: what presets may plan (see
/// [`crate::plan::allowlist`]) and the common audio, video and image source codecs. Other
/// decoders (and the bugs in them) are never reached; a stream of another codec can still be
/// copied or ignored, but not decoded.
pub const DECODER_ALLOWLIST: &str = "pcm_s8,pcm_u8,pcm_s16le,pcm_s16be,pcm_s24le,pcm_s24be,\
pcm_s32le,pcm_s32be,pcm_s64le,pcm_f32le,pcm_f32be,pcm_f64le,pcm_f64be,pcm_alaw,pcm_mulaw,\
pcm_bluray,pcm_dvd,adpcm_ima_wav,adpcm_ms,flac,alac,wavpack,ape,tta,mp1,mp1float,mp2,mp2float,\
mp3,mp3float,aac,aac_fixed,aac_latm,ac3,ac3_fixed,eac3,dca,truehd,mlp,opus,libopus,vorbis,\
libvorbis,amrnb,amrwb,h264,hevc,vp8,vp9,libvpx,libvpx-vp9,av1,libdav1d,libaom-av1,mpeg4,\
mpeg1video,mpeg2video,h263,theora,vc1,wmv3,prores,dnxhd,mjpeg,png,apng,webp,gif,bmp,tiff";

/// Arguments placed before every `-i` (and ffprobe's input): local files only, and only
/// allowlisted demuxers and decoders.
pub fn input_guard_args() -> Vec<OsString> {
    [
        "-protocol_whitelist",
        "file",
        "-format_whitelist",
        DEMUXER_ALLOWLIST,
        "-codec_whitelist",
        DECODER_ALLOWLIST,
    ]
    .iter()
    .map(Into::into)
    .collect()
}

/// The start of an argv for ffmpeg reading one local file: `flags`, the input guards, then
/// `-i file`.
pub fn guarded_input_argv(flags: &[&str], file: &Path) -> Vec<OsString> {
    let mut args: Vec<OsString> = flags.iter().map(Into::into).collect();
    args.extend(input_guard_args());
    args.push("-i".into());
    args.push(file.as_os_str().to_owned());
    args
}

/// Where the ffmpeg and ffprobe executables are, and how they are contained.
#[derive(Debug, Clone)]
pub struct Tools {
    pub ffmpeg: PathBuf,
    pub ffprobe: PathBuf,
    /// Makes JPEG outputs progressive, which ffmpeg 5.1's mjpeg encoder cannot (Debian's
    /// `libjpeg-turbo-progs`).
    pub jpegtran: PathBuf,
    /// Namespaces, uid, seccomp: what [`jail::Jail::enter`] applies.
    pub jail: jail::Mechanisms,
    /// Confine children's filesystem access with Landlock.
    pub confine_fs: bool,
}

impl Default for Tools {
    fn default() -> Self {
        Self {
            ffmpeg: "ffmpeg".into(),
            ffprobe: "ffprobe".into(),
            jpegtran: "jpegtran".into(),
            jail: jail::Mechanisms::default(),
            confine_fs: false,
        }
    }
}

impl Tools {
    /// Checks which containment mechanisms work here, one after the other on top of those that
    /// did; returns what is missing, to be reported (in `/healthz` `warnings`).
    pub async fn detect() -> (Self, Vec<String>) {
        let mut tools = Self::default();
        let mut missing = Vec::new();
        let root = jail::host_is_root();

        let mut with = tools.clone();
        with.jail.network_namespace = true;
        with.jail.user_namespace = !root;
        match works(&with).await {
            Ok(()) => tools = with,
            Err(e) => missing.push(format!(
                "ffmpeg runs without a private network namespace ({e}); only its protocol \
                 whitelist keeps it off the network"
            )),
        }
        let mut with = tools.clone();
        with.jail.pid_namespace = true;
        match works(&with).await {
            Ok(()) => tools = with,
            Err(e) => missing.push(format!(
                "ffmpeg runs without a PID namespace ({e}); it may signal other processes of \
                 its uid and leave processes behind its job"
            )),
        }
        if root {
            let mut with = tools.clone();
            with.jail.drop_user = true;
            match works(&with).await {
                Ok(()) => tools = with,
                Err(e) => missing.push(format!(
                    "ffmpeg runs as root ({e}); it should run as uid {}",
                    jail::JAIL_UID
                )),
            }
        }
        let mut with = tools.clone();
        with.jail.no_sockets = true;
        match works(&with).await {
            Ok(()) => tools = with,
            Err(e) => missing.push(format!(
                "ffmpeg may open sockets: its seccomp filter does not load ({e}); it may \
                 connect to unix sockets outside its job"
            )),
        }
        match confine::supported() {
            Err(e) => missing.push(format!(
                "ffmpeg's filesystem access is not confined: {e}; only the demuxer, protocol \
                 and filter allowlists keep it to the job's files"
            )),
            Ok(()) => {
                let mut with = tools.clone();
                with.confine_fs = true;
                match works(&with).await {
                    Ok(()) => tools = with,
                    Err(e) => missing.push(format!("ffmpeg does not run under Landlock: {e}")),
                }
            }
        }
        for tool in [&tools.ffmpeg, &tools.ffprobe, &tools.jpegtran] {
            if let Err(e) = capture(tool, &version(), PROBE_LIMIT, &tools, None).await {
                missing.push(format!(
                    "{} does not run: {e} (Debian: apt-get install ffmpeg libjpeg-turbo-progs)",
                    tool.display()
                ));
            }
        }
        (tools, missing)
    }
}

const PROBE_LIMIT: Duration = Duration::from_secs(10);

fn version() -> Vec<OsString> {
    vec!["-version".into()]
}

/// Whether ffprobe runs to success with these mechanisms.
async fn works(tools: &Tools) -> Result<(), String> {
    let out = capture(&tools.ffprobe, &version(), PROBE_LIMIT, tools, None)
        .await
        .map_err(|e| e.to_string())?;
    if !out.success {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_owned());
    }
    Ok(())
}

/// Why a child process did not finish normally.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("could not start {program}: {error}; is it installed?")]
    Spawn { program: String, error: String },
    #[error("could not start {program}: {error}; the host is out of processes, memory or files")]
    Overloaded { program: String, error: String },
    #[error("{program} ran past its {limit:?} time limit and was killed")]
    Timeout { program: String, limit: Duration },
    #[error(
        "{program} was killed by signal {signal}, which the host did not send (an operator, \
         the OOM killer or a shutdown); the job may be retried"
    )]
    Interrupted { program: String, signal: i32 },
    #[error(
        "{program} used {:.1} MiB of the job's scratch space, over its disk budget of {:.1} \
         MiB, and was stopped",
        mib(*used),
        mib(*budget)
    )]
    OverBudget {
        program: String,
        used: u64,
        budget: u64,
    },
    #[error("{program} printed more than {} MiB on stdout and was stopped", limit >> 20)]
    StdoutTooLarge { program: String, limit: usize },
    #[error("{0}")]
    Io(String),
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / f64::from(1 << 20)
}

impl RunError {
    /// The job error code for this failure; `otherwise` for a failure of the program itself.
    pub fn code(&self, otherwise: ErrorCode) -> ErrorCode {
        match self {
            Self::Timeout { .. } => ErrorCode::FfmpegTimeout,
            Self::Interrupted { .. } => ErrorCode::FfmpegInterrupted,
            Self::Overloaded { .. } => ErrorCode::HostOverloaded,
            Self::OverBudget { .. } => ErrorCode::OutputTooLarge,
            Self::Spawn { .. } | Self::StdoutTooLarge { .. } | Self::Io(_) => otherwise,
        }
    }
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
/// The most stdout read from a [`capture`]d process: ffprobe's JSON of a hostile file (long
/// tags escaped six-fold) must not fill the host's memory.
pub const STDOUT_MAX: usize = 16 << 20;
/// The longest line of ffmpeg's `-progress` output looked at (they are a few dozen bytes).
const PROGRESS_LINE_MAX: u64 = 4096;
/// How often a running step's scratch usage is measured against the disk budget.
const DISK_POLL: Duration = Duration::from_millis(150);

/// Kills the child's process group (and so its PID namespace) when dropped: on success, on
/// failure and when the job's task is dropped (a cancel) alike.
struct Group(Option<u32>);

impl Drop for Group {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            jail::kill_group(pid);
        }
    }
}

/// A path inside `dir` passed relative to it (the child starts there): the unprivileged uid
/// need not be able to search the data directory's ancestors.
fn relative_to(arg: &OsString, dir: &Path) -> OsString {
    match Path::new(arg).strip_prefix(dir) {
        Ok(rel) if !rel.as_os_str().is_empty() => Path::new(".").join(rel).into_os_string(),
        _ => arg.clone(),
    }
}

/// Lets the jail's uid reach what it is given when the host made it for itself (a 0700
/// directory, a 0600 file): search on the directory (not listing) and read on the files argv
/// names in it. Landlock, not these bits, is what keeps the child out of everything else.
fn share_with_jail(dir: &Path, args: &[OsString]) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let grant = |path: &Path, bits: u32| -> std::io::Result<()> {
        let meta = std::fs::symlink_metadata(path)?;
        let mode = meta.permissions().mode();
        if mode & bits != bits && !meta.is_symlink() {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode | bits))?;
        }
        Ok(())
    };
    grant(dir, 0o001)?;
    for arg in args {
        let path = Path::new(arg);
        if path.parent() == Some(dir) && path.is_file() {
            grant(path, 0o004)?;
        }
    }
    Ok(())
}

fn spawn(
    program: &Path,
    args: &[OsString],
    dir: Option<(&Path, DirAccess)>,
    limit: Duration,
    tools: &Tools,
    file_bytes: u64,
) -> Result<(Child, Group), RunError> {
    let mut cmd = Command::new(program);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get() as u64);
    let landlock = if tools.confine_fs {
        confine::ruleset(dir).map_err(|error| RunError::Spawn {
            program: program.display().to_string(),
            error: format!("cannot build its Landlock ruleset: {error}"),
        })?
    } else {
        None
    };
    let jail = jail::Jail {
        parent: std::process::id() as libc::pid_t,
        mechanisms: tools.jail,
        cpu_s: limit.as_secs().max(1) * threads,
        file_bytes,
        landlock,
    };
    // SAFETY: `enter` makes only async-signal-safe system calls and allocates nothing.
    unsafe {
        cmd.pre_exec(move || jail.enter());
    }
    match dir {
        Some((dir, _)) => {
            if tools.jail.drop_user {
                share_with_jail(dir, args).map_err(|e| spawn_error(program, e))?;
            }
            // The paths in argv are relative to the job directory: argv[0] names it, so that
            // `ps` still tells which job a process belongs to.
            cmd.current_dir(dir)
                .arg0(format!("{} [{}]", program.display(), dir.display()))
                .args(args.iter().map(|a| relative_to(a, dir)));
        }
        None => {
            cmd.args(args);
        }
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .kill_on_drop(true);
    let child = cmd.spawn().map_err(|e| spawn_error(program, e))?;
    let group = Group(child.id());
    Ok((child, group))
}

fn spawn_error(program: &Path, e: std::io::Error) -> RunError {
    let program = program.display().to_string();
    let error = e.to_string();
    match e.raw_os_error() {
        Some(libc::EMFILE | libc::ENFILE | libc::EAGAIN | libc::ENOMEM) => {
            RunError::Overloaded { program, error }
        }
        _ => RunError::Spawn { program, error },
    }
}

/// What ffmpeg prints when a SIGINT or SIGTERM made it stop early (it then exits with 255).
const STOPPED_BY_SIGNAL: &str = "Exiting normally, received signal ";

/// Whether the child succeeded; a death by a signal (or ffmpeg's exit on one) is an error of
/// its own.
fn exit_status(
    program: &Path,
    status: ExitStatus,
    stderr: &[u8],
    limit: Duration,
    file_bytes: u64,
) -> Result<bool, RunError> {
    let program = program.display().to_string();
    match status.signal() {
        None if status.code() == Some(255) => {
            let stderr = String::from_utf8_lossy(stderr);
            match stderr
                .rfind(STOPPED_BY_SIGNAL)
                .map(|at| &stderr[at + STOPPED_BY_SIGNAL.len()..])
                .and_then(|rest| rest.split('.').next()?.trim().parse().ok())
            {
                Some(signal) => Err(RunError::Interrupted { program, signal }),
                None => Ok(false),
            }
        }
        None => Ok(status.success()),
        Some(libc::SIGXCPU) => Err(RunError::Timeout { program, limit }),
        Some(libc::SIGXFSZ) => Err(RunError::OverBudget {
            program,
            used: file_bytes,
            budget: file_bytes,
        }),
        Some(signal) => Err(RunError::Interrupted { program, signal }),
    }
}

async fn read_capped(
    mut stream: impl tokio::io::AsyncRead + Unpin,
    program: &Path,
) -> Result<Vec<u8>, RunError> {
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let n = stream
            .read(&mut buf)
            .await
            .map_err(|e| RunError::Io(e.to_string()))?;
        if n == 0 {
            return Ok(out);
        }
        if out.len() + n > STDOUT_MAX {
            return Err(RunError::StdoutTooLarge {
                program: program.display().to_string(),
                limit: STDOUT_MAX,
            });
        }
        out.extend_from_slice(&buf[..n]);
    }
}

/// Runs a program to completion, collecting stdout (at most [`STDOUT_MAX`]) and the tail of
/// stderr. `readable` is the one directory it may read besides the system's.
pub async fn capture(
    program: &Path,
    args: &[OsString],
    limit: Duration,
    tools: &Tools,
    readable: Option<&Path>,
) -> Result<Captured, RunError> {
    let started = Instant::now();
    let (mut child, _group) = spawn(
        program,
        args,
        readable.map(|d| (d, DirAccess::Read)),
        limit,
        tools,
        jail::MAX_FILE_BYTES,
    )?;
    let stdout = child.stdout.take().expect("piped stdout");
    let stderr = child.stderr.take().expect("piped stderr");
    let work = async {
        let (out, err) = tokio::try_join!(read_capped(stdout, program), async {
            Ok(read_tail(stderr).await)
        })?;
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
                success: exit_status(program, status, &stderr, limit, jail::MAX_FILE_BYTES)?,
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

/// Bytes of the files under `dir` (symlinks are not followed, their own size counts).
pub fn disk_usage(dir: &Path) -> u64 {
    let mut total = 0;
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            match entry.metadata() {
                Ok(m) if m.is_dir() => pending.push(entry.path()),
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total
}

/// Runs ffmpeg with `-progress pipe:1` on stdout in the job directory `cwd`, reporting the
/// output time reached (seconds). While it runs, the bytes under `cwd` are kept within
/// `disk_budget` (measured every [`DISK_POLL`], and no single file may grow past it).
pub async fn run_with_progress(
    tools: &Tools,
    args: &[OsString],
    cwd: &Path,
    limit: Duration,
    disk_budget: u64,
    on_progress: impl FnMut(f64),
) -> Result<Captured, RunError> {
    run_in(
        &tools.ffmpeg,
        tools,
        args,
        cwd,
        limit,
        disk_budget,
        on_progress,
    )
    .await
}

/// Runs jpegtran as ffmpeg runs: jailed, confined to `cwd`, under the disk budget and `limit`.
pub async fn run_jpegtran(
    tools: &Tools,
    args: &[OsString],
    cwd: &Path,
    limit: Duration,
    disk_budget: u64,
) -> Result<Captured, RunError> {
    run_in(
        &tools.jpegtran,
        tools,
        args,
        cwd,
        limit,
        disk_budget,
        |_| {},
    )
    .await
}

async fn run_in(
    program: &Path,
    tools: &Tools,
    args: &[OsString],
    cwd: &Path,
    limit: Duration,
    disk_budget: u64,
    mut on_progress: impl FnMut(f64),
) -> Result<Captured, RunError> {
    let started = Instant::now();
    let file_bytes = disk_budget.min(jail::MAX_FILE_BYTES);
    let (mut child, _group) = spawn(
        program,
        args,
        Some((cwd, DirAccess::ReadWrite)),
        limit,
        tools,
        file_bytes,
    )?;
    let stdout = child.stdout.take().expect("piped stdout");
    let stderr = child.stderr.take().expect("piped stderr");
    let work = async {
        let progress = async {
            // Lines are read with a cap too: a line longer than any progress line is dropped.
            let mut reader = BufReader::new(stdout);
            let mut line = Vec::new();
            while let Ok(n) = (&mut reader)
                .take(PROGRESS_LINE_MAX)
                .read_until(b'\n', &mut line)
                .await
            {
                if n == 0 {
                    break;
                }
                if let Some(us) = line.strip_prefix(b"out_time_us=")
                    && let Ok(us) = String::from_utf8_lossy(us).trim().parse::<i64>()
                    && us >= 0
                {
                    on_progress(us as f64 / 1e6);
                }
                line.clear();
            }
        };
        let ((), err) = tokio::join!(progress, read_tail(stderr));
        let status = child
            .wait()
            .await
            .map_err(|e| RunError::Io(e.to_string()))?;
        Ok::<_, RunError>((status, err))
    };
    let over_budget = async {
        let mut tick = tokio::time::interval(DISK_POLL);
        loop {
            tick.tick().await;
            let dir = cwd.to_path_buf();
            let used = tokio::task::spawn_blocking(move || disk_usage(&dir))
                .await
                .unwrap_or(0);
            if used > disk_budget {
                return used;
            }
        }
    };
    let program_name = || program.display().to_string();
    tokio::select! {
        finished = tokio::time::timeout(limit, work) => match finished {
            Ok(result) => {
                let (status, stderr) = result?;
                let success = exit_status(program, status, &stderr, limit, file_bytes).map_err(|e| match e {
                    RunError::OverBudget { program, .. } => RunError::OverBudget {
                        program,
                        used: disk_usage(cwd).max(file_bytes),
                        budget: disk_budget,
                    },
                    e => e,
                })?;
                // A program that survives SIGXFSZ fails on EFBIG instead: still the budget.
                if !success {
                    let used = disk_usage(cwd);
                    if used >= disk_budget {
                        return Err(RunError::OverBudget {
                            program: program_name(),
                            used,
                            budget: disk_budget,
                        });
                    }
                }
                Ok(Captured {
                    success,
                    stdout: Vec::new(),
                    stderr,
                    wall: started.elapsed(),
                })
            }
            Err(_) => Err(RunError::Timeout {
                program: program_name(),
                limit,
            }),
        },
        used = over_budget => Err(RunError::OverBudget {
            program: program_name(),
            used,
            budget: disk_budget,
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

/// What a failed ffmpeg's stderr says went wrong, in one line for the job record. Its last line
/// ("Conversion failed!") is often only the consequence, so the first line reporting an error
/// (an encoder refusing its settings, say) leads, and the last follows when it differs.
pub fn failure_summary(stderr: &str) -> String {
    let clip = crate::plan::session::clip;
    let lines = || stderr.lines().map(str::trim).filter(|l| !l.is_empty());
    let Some(last) = lines().next_back() else {
        return "no error output".into();
    };
    let cause = lines().find(|l| {
        let lower = l.to_ascii_lowercase();
        ["error", "cannot", "invalid", "not supported", "unsupported"]
            .iter()
            .any(|word| lower.contains(word))
    });
    match cause {
        Some(cause) if cause != last => format!("{} ({})", clip(cause, 384), clip(last, 128)),
        _ => clip(last, 512),
    }
}

/// Runs Debian's ffmpeg in `dir` to make or read a test's fixtures, quietly and unjailed;
/// returns its stdout, and panics with its stderr when it fails.
#[cfg(test)]
pub(crate) fn run_for_test(dir: &Path, args: &[&str]) -> Vec<u8> {
    let out = std::process::Command::new("ffmpeg")
        .current_dir(dir)
        .args(["-v", "error", "-y"])
        .args(args)
        .output()
        .expect("run ffmpeg");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_is_summarised_by_its_cause_then_its_last_line() {
        let x265 = "x265 [info]: HEVC encoder version 3.5\n\
                    x265 [error]: picture dimensions are out of range for specified level\n\
                    [libx265 @ 0x5] Cannot open libx265 encoder.\n\
                    Conversion failed!\n";
        assert_eq!(
            failure_summary(x265),
            "x265 [error]: picture dimensions are out of range for specified level \
             (Conversion failed!)"
        );
        assert_eq!(
            failure_summary("in.wav: Invalid data found when processing input\n"),
            "in.wav: Invalid data found when processing input"
        );
        assert_eq!(failure_summary("  \n"), "no error output");
    }
    use std::os::unix::fs::PermissionsExt;

    fn sh(script: &str) -> (PathBuf, Vec<OsString>) {
        ("bash".into(), vec!["-c".into(), script.into()])
    }

    const LIMIT: Duration = Duration::from_secs(20);

    /// A job directory as the worker makes it: searchable by the jail's uid, with a `work/`
    /// it owns.
    fn job_dir(tools: &Tools) -> tempfile::TempDir {
        let job = tempfile::tempdir().unwrap();
        std::fs::set_permissions(job.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::create_dir(job.path().join("work")).unwrap();
        if tools.jail.drop_user {
            std::os::unix::fs::chown(
                job.path().join("work"),
                Some(jail::JAIL_UID),
                Some(jail::JAIL_GID),
            )
            .unwrap();
        }
        job
    }

    fn stdout(out: &Captured) -> String {
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    #[tokio::test]
    async fn children_get_no_network_and_resource_limits() {
        let (tools, missing) = Tools::detect().await;
        if !tools.jail.network_namespace {
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
        let out = capture(&program, &args, LIMIT, &tools, None).await.unwrap();
        let stdout = stdout(&out);
        assert!(!stdout.contains("connected"), "{stdout}");
        assert!(
            listener.accept().is_err(),
            "the loopback listener was reached"
        );
        assert_eq!(
            stdout.lines().collect::<Vec<_>>(),
            [jail::MAX_OPEN_FILES.to_string().as_str(), "0"]
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
        // A directory and a file only the host may read, as a dry run's are: the jail's uid
        // is let in.
        let job = tempfile::tempdir().unwrap();
        let other = tempfile::tempdir().unwrap();
        std::fs::set_permissions(other.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(job.path().join("input"), "job bytes").unwrap();
        std::fs::set_permissions(
            job.path().join("input"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        std::fs::write(other.path().join("canary"), "canary bytes").unwrap();
        let read = |path: &Path| format!("cat {}", path.display());

        // Paths inside the job directory are passed relative to it, as ffprobe's input is.
        let out = capture(
            Path::new("cat"),
            &[job.path().join("input").into()],
            LIMIT,
            &tools,
            Some(job.path()),
        )
        .await
        .unwrap();
        assert!(out.success, "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(out.stdout, b"job bytes");

        for target in [other.path().join("canary"), PathBuf::from("/etc/hostname")] {
            let (program, args) = sh(&read(&target));
            let out = capture(&program, &args, LIMIT, &tools, Some(job.path()))
                .await
                .unwrap();
            assert!(!out.success, "{} was readable", target.display());
            assert!(out.stdout.is_empty());
        }

        let (program, args) = sh("echo x > written");
        let out = capture(&program, &args, LIMIT, &tools, Some(job.path()))
            .await
            .unwrap();
        assert!(!out.success, "a read-only job directory was written to");
    }

    #[tokio::test]
    async fn kill_minus_one_reaches_nothing_outside_the_job() {
        let (tools, missing) = Tools::detect().await;
        if !tools.jail.pid_namespace {
            assert!(
                missing.iter().any(|m| m.contains("PID namespace")),
                "a missing PID namespace must be reported: {missing:?}"
            );
            return;
        }
        let mut host_canary = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let (program, args) = sh("sleep 3; echo alive");
        let job_canary = capture(&program, &args, LIMIT, &tools, None);
        // The guard keeps a broken jail from signalling the whole machine: without a PID
        // namespace of its own the shell is not PID 1 and stops there, failing the test.
        let (program, args) = sh("[ $$ = 1 ] || exit 3; kill -KILL -1; echo done");
        let attacker = async {
            tokio::time::sleep(Duration::from_millis(500)).await;
            capture(&program, &args, LIMIT, &tools, None).await
        };
        let (canary, attacker) = tokio::join!(job_canary, attacker);
        let attacker = attacker.unwrap();
        let started = Instant::now();
        let host_alive = host_canary.try_wait().unwrap().is_none();
        let _ = host_canary.kill();
        let _ = host_canary.wait();
        assert!(
            attacker.success,
            "{}",
            String::from_utf8_lossy(&attacker.stderr)
        );
        assert_eq!(stdout(&attacker).trim(), "done");
        assert!(host_alive, "kill -1 in a job killed a process of the host");
        let canary = canary.unwrap();
        assert_eq!(
            stdout(&canary).trim(),
            "alive",
            "kill -1 in a job killed another job"
        );
        println!(
            "kill -KILL -1 from a job: contained, canaries alive ({:?})",
            started.elapsed()
        );
    }

    fn find_process(marker: &str) -> Option<u32> {
        std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
            String::from_utf8_lossy(&cmdline)
                .contains(marker)
                .then_some(pid)
        })
    }

    #[tokio::test]
    async fn a_grandchild_does_not_outlive_its_job() {
        let (tools, missing) = Tools::detect().await;
        if !tools.jail.pid_namespace {
            assert!(
                missing.iter().any(|m| m.contains("PID namespace")),
                "{missing:?}"
            );
            return;
        }
        let marker = format!("4{}.{}", std::process::id() % 1000, 1 + rand_digit());
        // setsid leaves the child's process group: only the namespace can still stop it. Its
        // stdio is closed, so that it does not hold the pipes capture reads.
        let (program, args) = sh(&format!(
            "setsid sleep {marker} <&- >&- 2>&- & sleep 0.3; echo started"
        ));
        let out = capture(&program, &args, LIMIT, &tools, None).await.unwrap();
        assert_eq!(stdout(&out).trim(), "started");
        let started = Instant::now();
        let mut survivor = find_process(&format!("sleep\0{marker}"));
        while survivor.is_some() && started.elapsed() < Duration::from_secs(2) {
            tokio::time::sleep(Duration::from_millis(50)).await;
            survivor = find_process(&format!("sleep\0{marker}"));
        }
        if let Some(pid) = survivor {
            // SAFETY: kill takes plain values.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            panic!("the job's grandchild {pid} survived it");
        }
    }

    fn rand_digit() -> u32 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos() % 9)
    }

    #[tokio::test]
    async fn children_cannot_connect_to_unix_sockets() {
        use std::os::linux::net::SocketAddrExt;
        let (tools, missing) = Tools::detect().await;
        if !tools.jail.no_sockets {
            assert!(missing.iter().any(|m| m.contains("seccomp")), "{missing:?}");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let path = dir.path().join("host.sock");
        let pathname = std::os::unix::net::UnixListener::bind(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o777)).unwrap();
        let name = format!("mediahost-test-{}", std::process::id());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let abstract_ = std::os::unix::net::UnixListener::bind_addr(&addr).unwrap();
        for l in [&pathname, &abstract_] {
            l.set_nonblocking(true).unwrap();
        }
        let connect = |target: String| {
            sh(&format!(
                "socat -u OPEN:/dev/null {target} && echo connected"
            ))
        };
        let pathname_target = format!("UNIX-CONNECT:{}", path.display());
        for (target, listener) in [
            (pathname_target.clone(), &pathname),
            (format!("ABSTRACT-CONNECT:{name}"), &abstract_),
        ] {
            let (program, args) = connect(target.clone());
            let out = capture(&program, &args, LIMIT, &tools, None).await.unwrap();
            assert!(!stdout(&out).contains("connected"), "{target} was reached");
            assert!(listener.accept().is_err(), "{target} was reached");
        }
        // The control: without the filter the same pathname socket is reached, so the test
        // above can fail.
        let mut open = tools.clone();
        open.jail.no_sockets = false;
        open.confine_fs = false;
        let (program, args) = connect(pathname_target);
        let out = capture(&program, &args, LIMIT, &open, None).await.unwrap();
        assert!(
            stdout(&out).contains("connected"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[tokio::test]
    async fn children_run_unprivileged_in_their_own_session() {
        let (tools, missing) = Tools::detect().await;
        if jail::host_is_root() && !tools.jail.drop_user {
            assert!(
                missing.iter().any(|m| m.contains("runs as root")),
                "{missing:?}"
            );
            return;
        }
        // Landlock keeps /proc out of reach; this looks at the other mechanisms.
        let mut tools = tools;
        tools.confine_fs = false;
        let (program, args) =
            sh("grep -E '^(Uid|Gid|Groups|CapPrm|CapEff|CapAmb|NoNewPrivs):' /proc/self/status");
        let out = capture(&program, &args, LIMIT, &tools, None).await.unwrap();
        let status = stdout(&out);
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{name}:")))
                .map(|v| v.split_whitespace().collect::<Vec<_>>())
                .unwrap_or_else(|| panic!("no {name} in {status}"))
        };
        for cap in ["CapPrm", "CapEff", "CapAmb"] {
            assert_eq!(field(cap), ["0000000000000000"], "{status}");
        }
        assert_eq!(field("NoNewPrivs"), ["1"]);
        if jail::host_is_root() {
            assert_eq!(field("Uid"), ["65534"; 4]);
            assert_eq!(field("Gid"), ["65534"; 4]);
            assert!(field("Groups").is_empty(), "{status}");
        }

        // A signal to the host's process group (Ctrl-C, systemd's control-group stop) is not
        // one to the child's: it leads its own session.
        let (program, args) = sh("sleep 5");
        let (child, _group) = spawn(&program, &args, None, LIMIT, &tools, 1 << 20).unwrap();
        let pid = child.id().unwrap();
        let ids = |pid: String| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
            let fields: Vec<String> = stat[stat.rfind(')').unwrap() + 2..]
                .split_whitespace()
                .map(str::to_owned)
                .collect();
            (fields[2].clone(), fields[3].clone())
        };
        let (group, session) = ids(pid.to_string());
        let (our_group, our_session) = ids("self".into());
        assert_eq!(
            (group.as_str(), session.as_str()),
            (pid.to_string().as_str(), pid.to_string().as_str())
        );
        assert_ne!(group, our_group);
        assert_ne!(session, our_session);
    }

    #[tokio::test]
    async fn a_signal_the_host_did_not_send_is_an_interruption() {
        let (tools, _) = Tools::detect().await;
        let (program, args) = sh("sleep 5");
        let (mut child, _group) = spawn(&program, &args, None, LIMIT, &tools, 1 << 20).unwrap();
        // SAFETY: kill takes plain values.
        unsafe { libc::kill(child.id().unwrap() as libc::pid_t, libc::SIGTERM) };
        let status = child.wait().await.unwrap();
        let err = exit_status(&program, status, b"", LIMIT, 1 << 20).unwrap_err();
        assert!(
            matches!(
                err,
                RunError::Interrupted {
                    signal: libc::SIGTERM,
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(
            err.code(ErrorCode::FfmpegFailed),
            ErrorCode::FfmpegInterrupted
        );

        // ffmpeg catches SIGTERM and exits 255 saying so.
        let status = ExitStatus::from_raw(255 << 8);
        let said = b"frame=1\nExiting normally, received signal 15.\n";
        let err = exit_status(&program, status, said, LIMIT, 1 << 20).unwrap_err();
        assert!(
            matches!(err, RunError::Interrupted { signal: 15, .. }),
            "{err}"
        );
        assert!(!exit_status(&program, status, b"Invalid data", LIMIT, 1 << 20).unwrap());

        let overloaded = spawn_error(&program, std::io::Error::from_raw_os_error(libc::EMFILE));
        assert_eq!(
            overloaded.code(ErrorCode::FfmpegFailed),
            ErrorCode::HostOverloaded
        );
    }

    #[tokio::test]
    async fn a_step_over_its_disk_budget_is_stopped() {
        let (tools, _) = Tools::detect().await;
        let budget = 1 << 20;
        // Many small files, none over the per-file limit: the watcher stops it.
        let job = job_dir(&tools);
        let (program, args) = sh(
            "for i in $(seq 200); do head -c 65536 /dev/zero > work/f$i; sleep 0.01; done; \
             echo finished",
        );
        let started = Instant::now();
        let err = run_in(&program, &tools, &args, job.path(), LIMIT, budget, |_| {})
            .await
            .unwrap_err();
        let contained = started.elapsed();
        assert!(
            matches!(err, RunError::OverBudget { used, budget: b, .. } if used > b && b == budget),
            "{err}"
        );
        assert_eq!(err.code(ErrorCode::FfmpegFailed), ErrorCode::OutputTooLarge);
        assert!(contained < Duration::from_secs(10), "{contained:?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
        let after = disk_usage(job.path());
        assert!(
            after < 2 * budget,
            "the writer went on after it was stopped: {after}"
        );
        println!("many small files over a 1 MiB budget: {err} ({contained:?})");

        // One file past the budget: the kernel stops it at the budget (RLIMIT_FSIZE).
        let job = job_dir(&tools);
        let (program, args) = sh("exec head -c 50000000 /dev/zero > work/big");
        let started = Instant::now();
        let err = run_in(&program, &tools, &args, job.path(), LIMIT, budget, |_| {})
            .await
            .unwrap_err();
        assert!(matches!(err, RunError::OverBudget { .. }), "{err}");
        assert!(disk_usage(job.path()) <= budget);
        println!(
            "one file over a 1 MiB budget: {err} ({:?})",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn progress_is_read_line_by_line_with_a_cap() {
        let (tools, _) = Tools::detect().await;
        let job = job_dir(&tools);
        let (program, args) = sh(
            "echo out_time_us=1500000; head -c 50000000 /dev/zero; echo; echo out_time_us=2500000",
        );
        let mut seen = Vec::new();
        let out = run_in(&program, &tools, &args, job.path(), LIMIT, 1 << 20, |t| {
            seen.push(t)
        })
        .await
        .unwrap();
        assert!(out.success);
        assert_eq!(seen, [1.5, 2.5]);
    }

    #[tokio::test]
    async fn stdout_is_read_with_a_cap() {
        let (tools, _) = Tools::detect().await;
        let (program, args) = sh("head -c 100000000 /dev/zero; echo finished >&2");
        let started = Instant::now();
        let err = capture(&program, &args, LIMIT, &tools, None)
            .await
            .unwrap_err();
        assert!(matches!(err, RunError::StdoutTooLarge { .. }), "{err}");
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[tokio::test]
    async fn decoders_are_allowlisted_for_ffmpeg_and_ffprobe() {
        let (tools, _) = Tools::detect().await;
        let job = job_dir(&tools);
        let make = |codec: &str| {
            let path = job.path().join(format!("{codec}.wav"));
            let made = std::process::Command::new(&tools.ffmpeg)
                .args([
                    "-v", "error", "-f", "lavfi", "-i", "sine=d=1", "-c:a", codec,
                ])
                .arg(&path)
                .status()
                .unwrap();
            assert!(made.success(), "{codec}");
            path
        };
        for (codec, allowed) in [("pcm_s16le", true), ("adpcm_yamaha", false)] {
            let input = make(codec);
            let mut probe = input_guard_args();
            probe.extend(["-v", "error", "-show_streams"].map(OsString::from));
            probe.push(input.clone().into());
            let mut decode = input_guard_args();
            decode.extend(["-v", "error", "-i"].map(OsString::from));
            decode.push(input.into());
            decode.extend(["-f", "null", "-"].map(OsString::from));
            for (program, args) in [(&tools.ffprobe, probe), (&tools.ffmpeg, decode)] {
                let out = capture(program, &args, LIMIT, &tools, Some(job.path()))
                    .await
                    .unwrap();
                let stderr = String::from_utf8_lossy(&out.stderr);
                assert_eq!(
                    !stderr.contains("not on whitelist"),
                    allowed,
                    "{} {codec}: {stderr}",
                    program.display()
                );
            }
        }
    }

    #[test]
    fn time_limits_grow_with_the_media() {
        assert_eq!(time_limit(0.0), Duration::from_secs(60));
        assert!(time_limit(3600.0) > Duration::from_secs(3600));
        assert_eq!(time_limit(f64::NAN), Duration::from_secs(60));
        assert_eq!(time_limit(1e12), Duration::from_secs(12 * 3600));
    }
}
