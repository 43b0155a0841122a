//! Which scratch directories belong to a live worker. An attempt holds an `flock` on
//! `<locks>/<job>-<attempt>` while it runs (the name of its scratch directory, see
//! `pipeline::Scratch`); when a worker starts, it removes every scratch directory whose lock it
//! can take: its worker crashed (a lock dies with its process), so nothing else removes it.
//!
//! Not here: the scratch directory itself (`pipeline`), kept failures (`pipeline::sweep_failed`).

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// An attempt's hold on its scratch directory; released (and its file removed) when dropped.
pub struct ScratchLock {
    file: File,
    path: PathBuf,
}

fn try_lock(file: &File) -> bool {
    // SAFETY: flock on a descriptor we own.
    unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
}

/// The file at `path` is still the one `file` opened (not removed and made anew meanwhile).
fn still_at(file: &File, path: &Path) -> bool {
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
        _ => false,
    }
}

impl ScratchLock {
    /// Takes the lock of the scratch directory `name`.
    pub fn take(locks: &Path, name: &str) -> io::Result<Self> {
        std::fs::create_dir_all(locks)?;
        let path = locks.join(name);
        for _ in 0..10 {
            let file = File::options()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)?;
            if try_lock(&file) && still_at(&file, &path) {
                return Ok(Self { file, path });
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Err(io::Error::new(
            io::ErrorKind::WouldBlock,
            format!("{} is held by another process", path.display()),
        ))
    }
}

impl Drop for ScratchLock {
    fn drop(&mut self) {
        if still_at(&self.file, &self.path) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Removes the scratch directories (under `scratch_root`) of attempts whose worker is gone, and
/// their lock files. Returns how many it removed.
pub fn sweep_crashed(locks: &Path, scratch_root: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(locks) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(file) = File::options().write(true).open(&path) else {
            continue;
        };
        if !try_lock(&file) || !still_at(&file, &path) {
            continue;
        }
        let dir = scratch_root.join(entry.file_name());
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => {
                removed += 1;
                tracing::info!(dir = %dir.display(), "removed the scratch of a worker that stopped");
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot remove a stopped worker's scratch");
                continue;
            }
        }
        let _ = std::fs::remove_file(&path);
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_scratch_of_a_gone_worker_is_swept() {
        let root = tempfile::tempdir().unwrap();
        let (locks, scratch) = (root.path().join("locks"), root.path().join("scratch"));
        for name in ["live-1", "crashed-1"] {
            std::fs::create_dir_all(scratch.join(name).join("work")).unwrap();
        }
        let live = ScratchLock::take(&locks, "live-1").unwrap();
        // A crashed worker leaves its lock file behind, unlocked.
        drop(File::create(locks.join("crashed-1")).unwrap());

        assert_eq!(sweep_crashed(&locks, &scratch), 1);
        assert!(
            scratch.join("live-1").exists(),
            "a running attempt's scratch stays"
        );
        assert!(!scratch.join("crashed-1").exists());
        assert!(!locks.join("crashed-1").exists());

        drop(live);
        assert!(
            !locks.join("live-1").exists(),
            "a finished attempt removes its lock"
        );
        assert!(ScratchLock::take(&locks, "live-1").is_ok());
    }

    #[test]
    fn a_held_lock_cannot_be_taken_twice() {
        let root = tempfile::tempdir().unwrap();
        let _held = ScratchLock::take(root.path(), "job-1").unwrap();
        assert!(ScratchLock::take(root.path(), "job-1").is_err());
    }
}
