//! One writer per folder: an advisory lock on `<dir>/.lock` (`File::try_lock`: `flock` on Unix,
//! `LockFileEx` on Windows), held for as long as the [`DirLock`] lives. The operating system
//! releases it when the process ends, however it ends (a kill, a crash, a power cut), so there is
//! no stale lock to clean up. The file holds the holder's PID as text, so that a second writer is
//! refused at once with "`<dir>` is in use by PID N" instead of waiting or interleaving its files
//! with the first one's.
//!
//! The lock is per open file, not per process: two [`DirLock::acquire`] calls on one folder in one
//! process conflict too (two threads training into one run folder are refused like two processes).

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// File name of the lock inside a locked folder.
pub const LOCK_FILE: &str = ".lock";

/// A held lock on a folder; dropping it releases the lock.
#[derive(Debug)]
pub struct DirLock {
    dir: PathBuf,
    file: File,
}

impl DirLock {
    /// Creates `dir` if needed and takes its lock, or fails at once naming the holder's PID.
    pub fn acquire(dir: &Path) -> Result<DirLock> {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("opening the lock file {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                let holder = match text.trim().parse::<u32>() {
                    Ok(pid) => format!("PID {pid}"),
                    // The holder has locked the file but not yet written its PID.
                    Err(_) => "another process (PID not yet written)".to_string(),
                };
                bail!(
                    "{} is in use by {holder}: one writer at a time; wait for it to finish or stop it \
                     (the lock, {}, is released when that process exits)",
                    dir.display(),
                    path.display()
                );
            }
            Err(TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("locking {}", path.display()));
            }
        }
        let pid = std::process::id().to_string();
        file.set_len(0)
            .and_then(|_| file.seek(SeekFrom::Start(0)))
            .and_then(|_| file.write_all(pid.as_bytes()))
            .and_then(|_| file.flush())
            .with_context(|| format!("writing the PID into {}", path.display()))?;
        Ok(DirLock {
            dir: dir.to_path_buf(),
            file,
        })
    }

    /// The locked folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        // The PID goes first (a reader never sees a PID that no longer holds the lock), then the
        // lock. The file stays: deleting it would let two processes lock two different files.
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_one_folder_is_refused_naming_the_pid_then_granted_after_release() {
        let dir = std::env::temp_dir().join(format!("iclab-lock-unit-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let first = DirLock::acquire(&dir).unwrap();
        assert_eq!(
            fs::read_to_string(dir.join(LOCK_FILE)).unwrap(),
            std::process::id().to_string()
        );
        let e = format!("{:#}", DirLock::acquire(&dir).unwrap_err());
        assert!(
            e.contains(&format!("{} is in use by PID {}", dir.display(), std::process::id())),
            "{e}"
        );
        drop(first);
        let again = DirLock::acquire(&dir).unwrap();
        assert_eq!(again.dir(), dir.as_path());
        drop(again);
        fs::remove_dir_all(&dir).unwrap();
    }
}
