//! One writing trawl process per database.
//!
//! SQLite would let two processes write the same file, one transaction at a
//! time, but two crawls interleaving leases and seen-sets would corrupt the
//! crawl's meaning. So a process that writes holds an exclusive advisory
//! lock (`flock`) on `<db>.lock` for as long as it runs.
//!
//! A killed process cannot leave a stale lock behind: the kernel releases
//! the lock with the process, and the file left on disk means nothing by
//! itself. The pid written into it only makes the refusal message useful.
//! On a clean exit the file is removed; to make that removal safe against a
//! process that opened the file just before, a locker checks after locking
//! that the path still names the file it locked, and starts over if not.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// Why the lock was not taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "{db} is in use by another trawl process{}; wait for it to finish or stop it (Ctrl-C), then run the command again",
        .pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
    )]
    Held { db: PathBuf, pid: Option<u32> },
    #[error("cannot lock {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The held lock; released (and its file removed) when dropped.
#[derive(Debug)]
pub struct DbLock {
    file: File,
    path: PathBuf,
}

/// The lock file that guards `db`.
pub fn lock_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

impl DbLock {
    /// Takes the lock for `db` without waiting.
    pub fn acquire(db: &Path) -> Result<DbLock, LockError> {
        let path = lock_path(db);
        let io = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        loop {
            let mut file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .map_err(io)?;
            match file.try_lock() {
                Ok(()) => {}
                Err(TryLockError::WouldBlock) => {
                    let mut s = String::new();
                    let _ = file.read_to_string(&mut s);
                    return Err(LockError::Held {
                        db: db.to_path_buf(),
                        pid: s.trim().parse().ok(),
                    });
                }
                Err(TryLockError::Error(e)) => return Err(io(e)),
            }
            if !same_file(&file, &path) {
                // Removed (or replaced) by the previous holder between our
                // open and our lock: that file guards nothing any more.
                continue;
            }
            file.set_len(0).map_err(io)?;
            file.rewind().map_err(io)?;
            write!(file, "{}", std::process::id()).map_err(io)?;
            return Ok(DbLock { file, path });
        }
    }

    /// Whether another process holds the lock for `db` right now. Creates
    /// nothing (it works on a read-only file system): a holder's lock file
    /// exists for as long as it holds it, and a shared lock on it is
    /// refused while it does.
    pub fn is_held(db: &Path) -> bool {
        let Ok(file) = File::open(lock_path(db)) else {
            return false;
        };
        match file.try_lock_shared() {
            Ok(()) => {
                let _ = file.unlock();
                false
            }
            Err(TryLockError::WouldBlock) => true,
            Err(TryLockError::Error(_)) => false,
        }
    }
}

impl Drop for DbLock {
    fn drop(&mut self) {
        // Removed while still locked, so whoever opens the path next gets a
        // new file, and whoever opened the old one sees it is gone.
        let _ = std::fs::remove_file(&self.path);
        let _ = self.file.unlock();
    }
}

#[cfg(unix)]
fn same_file(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn same_file(_file: &File, path: &Path) -> bool {
    path.exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_locker_is_refused_with_the_holders_pid_and_drop_releases() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("c.db");
        let first = DbLock::acquire(&db).unwrap();
        assert!(lock_path(&db).exists());
        match DbLock::acquire(&db) {
            Err(LockError::Held { pid, .. }) => assert_eq!(pid, Some(std::process::id())),
            other => panic!("expected Held, got {other:?}"),
        }
        drop(first);
        assert!(!lock_path(&db).exists(), "a clean release removes the file");
        let again = DbLock::acquire(&db).unwrap();
        drop(again);
    }

    #[test]
    fn is_held_answers_without_creating_the_lock_file() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("c.db");
        assert!(!DbLock::is_held(&db));
        assert!(!lock_path(&db).exists());
        let lock = DbLock::acquire(&db).unwrap();
        assert!(DbLock::is_held(&db));
        drop(lock);
        assert!(!DbLock::is_held(&db));
        std::fs::write(lock_path(&db), "999999").unwrap();
        assert!(!DbLock::is_held(&db), "a leftover file is not a holder");
    }

    #[test]
    fn a_leftover_lock_file_without_a_holder_does_not_block() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("c.db");
        std::fs::write(lock_path(&db), "999999").unwrap();
        let lock = DbLock::acquire(&db).unwrap();
        let pid = std::fs::read_to_string(lock_path(&db)).unwrap();
        assert_eq!(pid, std::process::id().to_string());
        drop(lock);
    }
}
