//! Filesystem confinement of ffmpeg and ffprobe with Landlock: the system's libraries and
//! configuration read-only, the job's own directory as the task needs it, nothing else.
//!
//! The ruleset is built in the parent (it allocates); the child only enforces it between fork
//! and exec, with two system calls. Where the kernel has Landlock ABI 6, the ruleset also scopes
//! signals and abstract unix sockets to the child's own domain.
//!
//! Not here: namespaces, uid, seccomp and limits (that is [`super::jail`]).

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use landlock::{
    ABI, Access, AccessFs, Ruleset, RulesetAttr, RulesetCreatedAttr, Scope, path_beneath_rules,
};

/// The Landlock ABI whose rights are handled; newer kernels enforce at least this much.
const ABI_VERSION: ABI = ABI::V3;

/// What the child may read besides its job directory: programs and libraries, the loader's
/// cache and the few configuration files ffmpeg's libraries open. Missing paths are skipped.
/// The rest of `/etc`, `/proc`, `/sys`, `/home`, `/root`, `/tmp` and the host's data directory
/// are out of reach.
const SYSTEM_READ_ONLY: &[&str] = &[
    "/usr",
    "/lib",
    "/lib64",
    "/lib32",
    "/bin",
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/localtime",
    "/etc/fonts",
    "/etc/OpenCL",
    "/dev/null",
    "/dev/zero",
    "/dev/urandom",
];

/// How a child may use its job directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirAccess {
    Read,
    ReadWrite,
}

/// Builds a ruleset: system paths read-only plus `dir` with the given access. `Ok(None)` when
/// the kernel does not enforce Landlock.
pub fn ruleset(dir: Option<(&Path, DirAccess)>) -> Result<Option<OwnedFd>, String> {
    let read = AccessFs::from_read(ABI_VERSION);
    let all = AccessFs::from_all(ABI_VERSION);
    // Best effort: kernels before ABI 6 ignore the scopes; the PID namespace and the seccomp
    // filter of `jail` hold there.
    let mut created = Ruleset::default()
        .handle_access(all)
        .and_then(|r| r.scope(Scope::AbstractUnixSocket | Scope::Signal))
        .and_then(|r| r.create())
        .and_then(|r| r.add_rules(path_beneath_rules(SYSTEM_READ_ONLY, read)))
        .map_err(|e| e.to_string())?;
    if let Some((dir, access)) = dir {
        let rights = match access {
            DirAccess::Read => read,
            DirAccess::ReadWrite => all,
        };
        created = created
            .add_rules(path_beneath_rules([dir], rights))
            .map_err(|e| e.to_string())?;
    }
    Ok(created.into())
}

/// Tells whether this kernel enforces Landlock at all.
pub fn supported() -> Result<(), String> {
    let status = Ruleset::default()
        .handle_access(AccessFs::from_all(ABI_VERSION))
        .and_then(|r| r.create())
        .map_err(|e| e.to_string())?;
    let fd: Option<OwnedFd> = status.into();
    fd.map(|_| ())
        .ok_or_else(|| "the kernel does not enforce Landlock".to_owned())
}

/// Enforces a ruleset on the calling process. Only async-signal-safe system calls.
pub fn enforce(fd: &OwnedFd) -> std::io::Result<()> {
    // SAFETY: prctl and landlock_restrict_self take plain integers.
    unsafe {
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        if libc::syscall(libc::SYS_landlock_restrict_self, fd.as_raw_fd(), 0) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Refuses a data directory the jail exposes read-only to every ffmpeg (inside `/usr`, `/lib`,
/// `/etc/fonts`, ...): every job could then read every other job's files and the host's secrets.
pub fn check_data_dir(data_dir: &Path) -> Result<(), String> {
    let data = data_dir.canonicalize().map_err(|e| {
        format!(
            "cannot resolve the data directory {}: {e}",
            data_dir.display()
        )
    })?;
    for exposed in SYSTEM_READ_ONLY {
        let Ok(exposed) = PathBuf::from(exposed).canonicalize() else {
            continue;
        };
        if data.starts_with(&exposed) {
            return Err(format!(
                "the data directory {} is inside {}, which every ffmpeg process may read; \
                 choose a --data-dir outside {}",
                data.display(),
                exposed.display(),
                SYSTEM_READ_ONLY.join(", ")
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_data_directory_the_jail_can_read_is_refused() {
        let err = check_data_dir(Path::new("/usr/share")).unwrap_err();
        assert!(err.contains("/usr"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        check_data_dir(dir.path()).unwrap();
        assert!(check_data_dir(&dir.path().join("missing")).is_err());
    }
}
