//! Opening what ffmpeg left in a job's scratch directory without trusting it: no symlink is
//! followed on the way (O_NOFOLLOW at every component below the job directory) and the file
//! must be a regular one. The host then probes and uploads that very file.
//!
//! Not here: where outputs are named (that is [`super::render`]).

use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

/// A regular file inside a job directory, opened without following symlinks.
#[derive(Debug)]
pub struct CheckedFile {
    file: File,
    pub len: u64,
}

impl CheckedFile {
    /// A path that names this open file (not whatever is at its old name now), for code that
    /// takes paths. Valid while `self` lives.
    pub fn fd_path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/self/fd/{}", self.file.as_raw_fd()))
    }
}

fn open_at(dir: libc::c_int, name: &[u8], flags: libc::c_int) -> std::io::Result<File> {
    let name = std::ffi::CString::new(name).map_err(std::io::Error::other)?;
    // SAFETY: a valid directory fd (or AT_FDCWD) and a NUL-terminated name.
    let fd = unsafe {
        libc::openat(
            dir,
            name.as_ptr(),
            flags | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` was just opened and is owned by nobody else.
    Ok(unsafe { File::from_raw_fd(fd) })
}

/// Opens `path`, which lies inside `job_dir`, refusing symlinks anywhere below `job_dir` and
/// anything but a regular file. `job_dir` itself is the host's and is opened as it is.
pub fn open_regular(job_dir: &Path, path: &Path) -> std::io::Result<CheckedFile> {
    let refuse = |why: &str| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{} {why}", path.display()),
        )
    };
    let inside = path
        .strip_prefix(job_dir)
        .map_err(|_| refuse("is not inside the job's directory"))?;
    let names: Vec<&[u8]> = inside
        .components()
        .map(|c| match c {
            Component::Normal(name) => Ok(name.as_bytes()),
            _ => Err(refuse("is not a plain path")),
        })
        .collect::<Result<_, _>>()?;
    let Some((last, dirs)) = names.split_last() else {
        return Err(refuse("names no file"));
    };
    let mut dir = open_at(
        libc::AT_FDCWD,
        job_dir.as_os_str().as_bytes(),
        libc::O_RDONLY | libc::O_DIRECTORY,
    )?;
    for name in dirs {
        dir = open_at(dir.as_raw_fd(), name, libc::O_RDONLY | libc::O_DIRECTORY)
            .map_err(|e| refuse(&format!("has a parent that is not a plain directory: {e}")))?;
    }
    let file = open_at(dir.as_raw_fd(), last, libc::O_RDONLY | libc::O_NONBLOCK).map_err(|e| {
        match e.raw_os_error() {
            Some(libc::ELOOP) => refuse("is a symlink"),
            _ => refuse(&format!("cannot be opened: {e}")),
        }
    })?;
    let meta = file.metadata()?;
    if !meta.file_type().is_file() {
        return Err(refuse("is not a regular file"));
    }
    Ok(CheckedFile {
        len: meta.len(),
        file,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_reached_without_symlinks_are_opened() {
        let job = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        let out = job.path().join("out");
        std::fs::create_dir(&out).unwrap();
        std::fs::write(out.join("a.wav"), b"data").unwrap();
        std::fs::write(elsewhere.path().join("secret"), b"secret").unwrap();
        std::os::unix::fs::symlink(elsewhere.path().join("secret"), out.join("b.wav")).unwrap();
        std::os::unix::fs::symlink(elsewhere.path(), job.path().join("work")).unwrap();
        std::fs::create_dir(out.join("c.wav")).unwrap();

        let ok = open_regular(job.path(), &out.join("a.wav")).unwrap();
        assert_eq!(ok.len, 4);
        assert_eq!(std::fs::read(ok.fd_path()).unwrap(), b"data");

        let err = open_regular(job.path(), &out.join("b.wav")).unwrap_err();
        assert!(err.to_string().contains("symlink"), "{err}");
        let err = open_regular(job.path(), &job.path().join("work/secret")).unwrap_err();
        assert!(err.to_string().contains("not a plain directory"), "{err}");
        let err = open_regular(job.path(), &out.join("c.wav")).unwrap_err();
        assert!(err.to_string().contains("not a regular file"), "{err}");
        assert!(open_regular(job.path(), &elsewhere.path().join("secret")).is_err());
    }
}
