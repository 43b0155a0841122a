//! The process jail of ffmpeg and ffprobe, applied between fork and exec: its own session, a
//! PID namespace it is PID 1 of, no network, an unprivileged uid without capabilities, no
//! sockets (seccomp), resource limits, and Landlock (see [`super::confine`]).
//!
//! Not here: which files the child may touch (that is [`super::confine`]'s ruleset), and what
//! the command line says (that is [`super::render`]).

use std::os::fd::OwnedFd;

use super::confine;

/// The uid and gid ffmpeg runs as when the host runs as root: `nobody` on most systems.
pub const JAIL_UID: libc::uid_t = 65534;
pub const JAIL_GID: libc::gid_t = 65534;

/// Resource limits on every child.
pub const MAX_FILE_BYTES: u64 = 64 << 30;
const MAX_ADDRESS_SPACE: u64 = 16 << 30;
pub const MAX_OPEN_FILES: u64 = 1024;

/// Which mechanisms to apply; each one was checked to work at start ([`super::Tools::detect`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct Mechanisms {
    /// A fresh network namespace (no interfaces but a downed loopback).
    pub network_namespace: bool,
    /// A fresh PID namespace the program is PID 1 of: it can signal nothing outside it, and
    /// whatever it starts dies with it.
    pub pid_namespace: bool,
    /// A user namespace, so that a host that is not root may create the other namespaces.
    pub user_namespace: bool,
    /// Run as [`JAIL_UID`]/[`JAIL_GID`] with no supplementary groups (the host is root).
    pub drop_user: bool,
    /// The seccomp filter that makes `socket()` and `io_uring_setup()` fail.
    pub no_sockets: bool,
}

/// Everything the child needs, prepared in the parent: the child must not allocate.
pub struct Jail {
    pub parent: libc::pid_t,
    pub mechanisms: Mechanisms,
    pub cpu_s: u64,
    pub file_bytes: u64,
    pub landlock: Option<OwnedFd>,
}

/// Tells whether the host runs as root (and so must hand ffmpeg an unprivileged uid).
pub fn host_is_root() -> bool {
    // SAFETY: geteuid takes nothing and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn check(ret: libc::c_int) -> std::io::Result<()> {
    if ret != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

fn limit(resource: libc::__rlimit_resource_t, value: u64) -> std::io::Result<()> {
    let rl = libc::rlimit {
        rlim_cur: value,
        rlim_max: value,
    };
    // SAFETY: setrlimit with a valid pointer to an initialised struct.
    check(unsafe { libc::setrlimit(resource, &rl) })
}

impl Jail {
    /// Applied in the child between fork and exec: only async-signal-safe system calls.
    pub fn enter(&self) -> std::io::Result<()> {
        // SAFETY: every call below takes plain values or pointers to initialised locals.
        unsafe {
            // Its own session and process group: a signal to the host's group (systemd's
            // KillMode=control-group, Ctrl-C) does not reach it; the host signals this group.
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            // Die with the worker. (The signal follows the thread that spawned the child: a
            // runtime thread, which lives as long as the worker.) If it died already, stop.
            check(libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL))?;
            if libc::getppid() != self.parent {
                return Err(std::io::Error::other(
                    "the worker exited while starting ffmpeg",
                ));
            }
        }
        limit(libc::RLIMIT_CPU, self.cpu_s)?;
        limit(libc::RLIMIT_FSIZE, self.file_bytes)?;
        limit(libc::RLIMIT_AS, MAX_ADDRESS_SPACE)?;
        limit(libc::RLIMIT_NOFILE, MAX_OPEN_FILES)?;
        limit(libc::RLIMIT_CORE, 0)?;
        let m = self.mechanisms;
        let mut flags = 0;
        if m.user_namespace {
            flags |= libc::CLONE_NEWUSER;
        }
        if m.network_namespace {
            flags |= libc::CLONE_NEWNET;
        }
        if m.pid_namespace {
            flags |= libc::CLONE_NEWPID;
        }
        // SAFETY: unshare takes flags only.
        if flags != 0 {
            check(unsafe { libc::unshare(flags) })?;
        }
        if m.pid_namespace {
            become_pid_one()?;
        }
        if m.drop_user {
            // SAFETY: setgroups with an empty list; setgid/setuid take plain ids.
            unsafe {
                check(libc::setgroups(0, std::ptr::null()))?;
                check(libc::setgid(JAIL_GID))?;
                check(libc::setuid(JAIL_UID))?;
                // A change of credentials clears the parent-death signal: set it again.
                check(libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL))?;
            }
        }
        // SAFETY: prctl takes plain integers.
        unsafe {
            check(libc::prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_CLEAR_ALL,
                0,
                0,
                0,
            ))?;
            check(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))?;
        }
        if let Some(fd) = &self.landlock {
            confine::enforce(fd)?;
        }
        if m.no_sockets {
            forbid_sockets()?;
        }
        Ok(())
    }
}

/// After `unshare(CLONE_NEWPID)` the next child is PID 1 of the new namespace. Forks: the child
/// returns and goes on to exec the program; this process stays as a small parent that waits
/// for it and exits the same way, so the host sees the program's status. When PID 1 dies the
/// kernel kills everything else in the namespace: nothing it started is left behind.
fn become_pid_one() -> std::io::Result<()> {
    // SAFETY: fork in a single-threaded child; both sides then make only async-signal-safe calls.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(std::io::Error::last_os_error());
    }
    if pid == 0 {
        // PID 1 dies with the parent the host holds (kill_on_drop, timeouts).
        // SAFETY: prctl takes plain integers.
        return check(unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) });
    }
    // SAFETY: only async-signal-safe calls; this process never returns into Rust's spawn code.
    unsafe {
        // Close everything, stdio and the pipe that reports exec errors to the host included,
        // so that only PID 1 holds them and the host's reads end when it does.
        libc::syscall(libc::SYS_close_range, 0, u32::MAX, 0);
        // The host's handlers were copied by fork: a signal meant to stop this process (from
        // the host or an operator) must stop it, and then PID 1 dies with it.
        for sig in [
            libc::SIGCHLD,
            libc::SIGTERM,
            libc::SIGINT,
            libc::SIGHUP,
            libc::SIGQUIT,
        ] {
            libc::signal(sig, libc::SIG_DFL);
        }
        let mut status = 0;
        loop {
            let r = libc::waitpid(pid, &mut status, 0);
            if r == pid {
                break;
            }
            if r < 0 && *libc::__errno_location() != libc::EINTR {
                libc::_exit(127);
            }
        }
        if libc::WIFSIGNALED(status) {
            let sig = libc::WTERMSIG(status);
            libc::signal(sig, libc::SIG_DFL);
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, sig);
            libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
            libc::kill(libc::getpid(), sig);
            libc::_exit(128 + sig);
        }
        libc::_exit(libc::WEXITSTATUS(status));
    }
}

const fn stmt(code: u16, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

const fn jump(code: u16, k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xC000_003E;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xC000_00B7;

const BPF_LD_W_ABS: u16 = 0x20;
const BPF_JEQ_K: u16 = 0x15;
const BPF_JGE_K: u16 = 0x35;
const BPF_RET_K: u16 = 0x06;
const RET_KILL_PROCESS: u32 = 0x8000_0000;
const RET_ERRNO_EACCES: u32 = 0x0005_0000 | libc::EACCES as u32;
const RET_ALLOW: u32 = 0x7fff_0000;
/// The x32 ABI's syscall numbers on x86_64: refused as a whole.
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// No socket can be created, so none can be connected to a unix socket (pathname or abstract)
/// or anything else; io_uring is refused too, since its socket operations bypass seccomp.
/// ffmpeg needs neither: its protocols are whitelisted to `file`.
const FILTER: [libc::sock_filter; 9] = [
    stmt(BPF_LD_W_ABS, 4),
    jump(BPF_JEQ_K, AUDIT_ARCH, 1, 0),
    stmt(BPF_RET_K, RET_KILL_PROCESS),
    stmt(BPF_LD_W_ABS, 0),
    jump(BPF_JGE_K, X32_SYSCALL_BIT, 3, 0),
    jump(BPF_JEQ_K, libc::SYS_socket as u32, 2, 0),
    jump(BPF_JEQ_K, libc::SYS_io_uring_setup as u32, 1, 0),
    stmt(BPF_RET_K, RET_ALLOW),
    stmt(BPF_RET_K, RET_ERRNO_EACCES),
];

fn forbid_sockets() -> std::io::Result<()> {
    let prog = libc::sock_fprog {
        len: FILTER.len() as u16,
        filter: FILTER.as_ptr().cast_mut(),
    };
    // SAFETY: the filter is a static array that outlives the call; no_new_privs is already set.
    check(unsafe {
        libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER,
            &prog as *const libc::sock_fprog,
        )
    })
}

/// Stops a child's whole process group (the session it leads), and with it its PID namespace.
pub fn kill_group(pid: u32) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    // SAFETY: kill takes plain values; a group that is gone already gives ESRCH, ignored.
    unsafe {
        libc::kill(-pid, libc::SIGKILL);
    }
}
