//! Compiling a preset component to a wasmtime artifact, with its cost bounded and measured.
//!
//! Compiling a language-runtime preset (a Python or JavaScript interpreter in a component) takes
//! seconds and hundreds of MiB, and an allocator rarely gives that memory back to the system.
//! So the server compiles in a child process, `mediahost compile-preset --out <file>` (hidden
//! from `--help`), which reads the component on stdin and writes `Component::serialize()`'s
//! artifact, the format of the on-disk artifact cache (`preset::cache`); the parent maps it with
//! `Component::deserialize_file`. When the child exits, its memory is the system's again. The
//! child runs under an address-space limit (`RLIMIT_AS`) and a wall-clock limit; a child that
//! hits either, crashes or refuses the bytes is a [`LoadError`], never the host's end.
//!
//! Which way a [`Runtime`](super::runtime::Runtime) compiles is its [`Compiler`]: the server
//! (`server::run`, only ever run by the `mediahost` binary) passes [`Compiler::Subprocess`] with
//! `std::env::current_exe()`; library users, unit tests and benches, whose executable is not
//! `mediahost` and has no `compile-preset` subcommand, get [`Compiler::InProcess`] from
//! `Runtime::new`. Both build their engine from [`compile_config`], so an artifact the child
//! writes is one the parent's engine accepts (the pooling allocator the parent adds does not
//! change compiled code, and wasmtime checks compatibility when the artifact is loaded).
//!
//! Not here: whether a compiled component is a preset (`preset::runtime`), or which components
//! exist (`preset::catalog`).

use std::io::{Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use wasmtime::component::Component;
use wasmtime::{Config, Engine};

use super::runtime::{CompiledFrom, LoadError};
use crate::error::ErrorCode;

/// The exit code of a `compile-preset` child whose input is not a valid component (its reason is
/// on stderr): the bytes are to blame, not the host.
const EXIT_INVALID: i32 = 2;

/// The wasmtime settings that shape compiled code, shared by every engine that compiles or runs
/// presets (the runtime's, and the `compile-preset` child's) so that they cannot drift apart.
pub fn compile_config() -> Config {
    let mut config = Config::new();
    config.epoch_interruption(true);
    config.max_wasm_stack(512 << 10);
    config
}

/// How a component that is not in the artifact cache is compiled.
#[derive(Debug, Clone)]
pub enum Compiler {
    /// In this process, on the calling thread. For unit tests and benches, whose executable
    /// cannot run `compile-preset`.
    InProcess,
    /// In a child process running `compile-preset` (see the module docs).
    Subprocess(Subprocess),
}

/// A `mediahost` executable and the limits its compile children run under.
#[derive(Debug, Clone)]
pub struct Subprocess {
    /// The `mediahost` binary (the running one: `std::env::current_exe()`).
    pub exe: PathBuf,
    /// The child's address-space limit (`RLIMIT_AS`), in bytes.
    pub address_space_bytes: u64,
    /// The child is killed after this long.
    pub timeout: Duration,
}

/// What loading one component cost, for the publish answer and the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompileCost {
    pub from: CompiledFrom,
    /// Wall time of compiling (or of loading the cached artifact), waiting for the compile turn
    /// included.
    pub ms: u64,
    /// The compile child's peak resident memory; `None` when no child ran (a cached artifact, or
    /// an in-process compile).
    pub peak_rss_mib: Option<u64>,
}

impl CompileCost {
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "ms": self.ms,
            "peak_rss_mib": self.peak_rss_mib,
            "cached": self.from == CompiledFrom::Cache,
        })
    }
}

/// An engine with exactly the compile settings and no instance pool (which would reserve far
/// more address space than a compile child may have).
pub fn compile_engine() -> anyhow::Result<Engine> {
    Engine::new(&compile_config()).map_err(|e| anyhow::anyhow!("{e:#}"))
}

/// `mediahost compile-preset --out <file>`: the child's side. Reads a component on stdin and
/// writes its compiled artifact to `out`. Exit 0: written; [`EXIT_INVALID`]: not a valid
/// component (the reason on stderr); anything else: the compile could not run.
pub fn child_main(out: &Path) -> ExitCode {
    let mut bytes = Vec::new();
    if let Err(e) = std::io::stdin()
        .take(super::catalog::MAX_COMPONENT_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
    {
        eprintln!("cannot read the component on stdin: {e}");
        return ExitCode::FAILURE;
    }
    let engine = match compile_engine() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("cannot build the compile engine: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let component = match Component::new(&engine, &bytes) {
        Ok(c) => c,
        Err(e) => {
            // One line: the parent reads the reason from stderr.
            let why = format!("{e:#}");
            eprintln!(
                "not a valid WebAssembly component: {}",
                why.split_whitespace().collect::<Vec<_>>().join(" ")
            );
            return ExitCode::from(EXIT_INVALID as u8);
        }
    };
    drop(bytes);
    let written = component
        .serialize()
        .map_err(|e| format!("{e:#}"))
        .and_then(|artifact| {
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .truncate(true)
                .create(true)
                .open(out)
                .map_err(|e| e.to_string())?;
            file.write_all(&artifact).map_err(|e| e.to_string())
        });
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cannot write the artifact to {}: {e}", out.display());
            ExitCode::FAILURE
        }
    }
}

/// The parent's side: compiles `bytes` in a child that writes the artifact to `out`. Returns the
/// child's peak resident memory in MiB.
pub(super) fn in_child(sub: &Subprocess, bytes: &[u8], out: &Path) -> Result<u64, LoadError> {
    let host_trouble = |message: String| LoadError {
        code: ErrorCode::Internal,
        message,
    };
    let limit = sub.address_space_bytes;
    let mut command = Command::new(&sub.exe);
    command
        .arg("compile-preset")
        .arg("--out")
        .arg(out)
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // SAFETY: between fork and exec the closure calls only setrlimit and setpgid, which are
    // async-signal-safe, and allocates nothing.
    unsafe {
        command.pre_exec(move || {
            let address_space = libc::rlimit {
                rlim_cur: limit,
                rlim_max: limit,
            };
            let no_core = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            // A process group of its own: whatever it started is killed with it.
            if libc::setrlimit(libc::RLIMIT_AS, &address_space) != 0
                || libc::setrlimit(libc::RLIMIT_CORE, &no_core) != 0
                || libc::setpgid(0, 0) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = command.spawn().map_err(|e| {
        host_trouble(format!(
            "cannot start the compile process {} compile-preset: {e}",
            sub.exe.display()
        ))
    })?;
    let pid = child.id() as libc::pid_t;
    let mut stdin = child.stdin.take().expect("piped stdin");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let started = Instant::now();
    let (status, rusage, said) = std::thread::scope(|s| {
        // A child that dies early closes its stdin: the write fails, which is fine.
        s.spawn(move || {
            let _ = stdin.write_all(bytes);
        });
        let reader = s.spawn(move || {
            let mut said = Vec::new();
            let _ = (&mut stderr).take(16 << 10).read_to_end(&mut said);
            String::from_utf8_lossy(&said).into_owned()
        });
        let mut killed = false;
        let waited = loop {
            let mut status = 0;
            // SAFETY: an all-zero rusage is valid; wait4 fills it in.
            let mut rusage: libc::rusage = unsafe { std::mem::zeroed() };
            let options = if killed { 0 } else { libc::WNOHANG };
            // SAFETY: `pid` is our own child, not yet reaped (nothing else waits for it: `child`
            // is never waited on, and dropping a `Child` does not wait).
            let got = unsafe { libc::wait4(pid, &mut status, options, &mut rusage) };
            if got == pid {
                break Ok((status, rusage, killed));
            }
            if got < 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                break Err(e);
            }
            if started.elapsed() >= sub.timeout {
                // SAFETY: signalling the process group of our own unreaped child.
                unsafe { libc::kill(-pid, libc::SIGKILL) };
                killed = true;
                continue;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        // Anything the child left behind in its group would hold its stderr open.
        // SAFETY: signalling the child's own process group; it is empty unless the child
        // started processes, and its id cannot be reused while it has members.
        unsafe { libc::kill(-pid, libc::SIGKILL) };
        let said = reader.join().unwrap_or_default();
        waited.map(|(status, rusage, killed)| ((status, killed), rusage, said))
    })
    .map_err(|e| host_trouble(format!("cannot wait for the compile process: {e}")))?;
    drop(child);
    let (status, timed_out) = status;
    // ru_maxrss is in KiB on Linux.
    let peak_rss_mib = (rusage.ru_maxrss.max(0) as u64).div_ceil(1024);
    let status = std::process::ExitStatus::from_raw(status);
    let last_line = said
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .to_owned();
    if timed_out {
        return Err(LoadError::invalid(format!(
            "compiling the component took longer than {} s, this host's limit \
             (--preset-compile-timeout-s)",
            sub.timeout.as_secs()
        )));
    }
    let said_last = if last_line.is_empty() {
        String::new()
    } else {
        format!(": {last_line}")
    };
    match (status.code(), status.signal()) {
        (Some(0), _) => Ok(peak_rss_mib),
        (Some(EXIT_INVALID), _) => Err(LoadError::invalid(said.trim())),
        // The child could not read, write or build its engine: the host's trouble, tried again.
        (Some(1), _) => Err(host_trouble(format!(
            "the compile process failed{said_last}"
        ))),
        // A panic (101) or a signal: these bytes crash the compiler, or need more memory than
        // the limit (an allocation failing aborts). Either way compiling them again would too.
        (code, signal) => {
            let how = match (code, signal) {
                (_, Some(signal)) => format!("was killed by signal {signal}"),
                (Some(code), _) => format!("exited with {code}"),
                _ => "ended".to_owned(),
            };
            Err(LoadError::invalid(format!(
                "the compile process {how} at a peak of {peak_rss_mib} MiB resident{said_last}; \
                 a component that needs more than the {} MiB of address space this host allows \
                 a compile (--preset-compile-memory-mib) ends this way",
                limit >> 20
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::preset::cache::ArtifactCache;
    use crate::preset::runtime::{Runtime, SandboxLimits};

    /// An artifact compiled by the compile child's engine is one the runtime's engine (which
    /// adds the instance pool) finds in the cache and loads: the two configurations agree.
    #[test]
    fn the_compile_engine_and_the_runtime_agree() {
        let bytes = std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../presets-wasm/released/audio-convert-1.0.0.wasm"),
        )
        .unwrap();
        let sha256 = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
        let dir = tempfile::tempdir().unwrap();
        let engine = compile_engine().unwrap();
        let cache = ArtifactCache::open(dir.path().to_owned(), &engine).unwrap();
        cache.put(&sha256, &Component::new(&engine, &bytes).unwrap());

        let runtime = Runtime::new(SandboxLimits::default(), Some(dir.path().to_owned())).unwrap();
        let loaded = runtime.load(&bytes, &sha256).expect("loads");
        assert_eq!(loaded.from, CompiledFrom::Cache);
        assert_eq!(loaded.cost.peak_rss_mib, None);
    }

    /// A stand-in for `mediahost compile-preset`: a shell script, run the way the host runs
    /// its compile child.
    fn child(script: &str, timeout: Duration) -> (Result<u64, LoadError>, tempfile::TempDir) {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("compile");
        std::fs::write(&exe, format!("#!/bin/sh\n{script}\n")).unwrap();
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        let sub = Subprocess {
            exe,
            address_space_bytes: 512 << 20,
            timeout,
        };
        let out = dir.path().join("artifact");
        (in_child(&sub, b"component bytes", &out), dir)
    }

    #[test]
    fn the_child_gets_the_bytes_and_its_limits_and_is_measured() {
        // It reads every byte, writes the artifact, and runs under the address-space limit.
        let (result, dir) = child(
            r#"test "$(cat | wc -c)" = 15 && test "$(ulimit -v)" = 524288 && echo ok > "$3""#,
            Duration::from_secs(10),
        );
        let peak = result.expect("exit 0");
        assert!(peak > 0, "the child's peak RSS is measured");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("artifact")).unwrap(),
            "ok\n"
        );
    }

    #[test]
    fn a_child_that_crashes_or_runs_too_long_is_a_refusal_not_the_hosts_end() {
        let (result, _dir) = child("kill -SEGV $$", Duration::from_secs(10));
        let err = result.expect_err("killed");
        assert_eq!(err.code, ErrorCode::PresetInvalid);
        assert!(err.message.contains("signal 11"), "{}", err.message);
        assert!(
            err.message.contains("--preset-compile-memory-mib"),
            "{}",
            err.message
        );

        let started = Instant::now();
        let (result, _dir) = child("sleep 30", Duration::from_millis(300));
        let err = result.expect_err("timed out");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "killed at its limit"
        );
        assert_eq!(err.code, ErrorCode::PresetInvalid);
        assert!(
            err.message.contains("--preset-compile-timeout-s"),
            "{}",
            err.message
        );

        let (result, _dir) = child(
            "echo 'not a valid WebAssembly component: bad magic' >&2; exit 2",
            Duration::from_secs(10),
        );
        let err = result.expect_err("refused");
        assert_eq!(err.code, ErrorCode::PresetInvalid);
        assert_eq!(err.message, "not a valid WebAssembly component: bad magic");

        // The child could not do its work (a full disk, say): the host's trouble, tried again.
        let (result, _dir) = child("exit 1", Duration::from_secs(10));
        assert_eq!(result.expect_err("failed").code, ErrorCode::Internal);
    }
}
