//! The PID file, and with it the rule of one daemon per config: the file is locked
//! (`flock(LOCK_EX|LOCK_NB)`) for as long as the daemon runs, so a second daemon given the same
//! PID file refuses to start and says which process holds it.
//!
//! The lock, not the file's existence, is what counts: a PID file left behind by a daemon that
//! was killed is not locked (the kernel drops the lock with the process) and is taken over.

use std::fs::File;
use std::io::{self, Read as _, Seek as _, Write as _};
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

/// Why the PID file could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum PidFileError {
    /// Another process holds the lock: another daemon runs with this PID file.
    #[error("another hav-linux ({}) holds {}", match .pid { Some(p) => format!("pid {p}"), None => "pid not written yet".into() }, .path.display())]
    Held {
        /// The PID file.
        path: PathBuf,
        /// The PID written in it, when it could be read.
        pid: Option<u32>,
    },
    /// The file (or its directory) could not be created, locked or written.
    #[error("pid file {}: {source}", .path.display())]
    Io {
        /// The PID file.
        path: PathBuf,
        /// What failed.
        source: io::Error,
    },
}

/// A PID file holding our PID, locked for the life of the value. Dropping it removes the file
/// (then releases the lock).
#[derive(Debug)]
pub struct PidFile {
    path: PathBuf,
    // Never read: holding it holds the lock. Dropped after the file is removed (fields drop
    // after `Drop::drop`), so no other daemon can lock the old file before it is gone.
    _lock: Flock<File>,
}

impl PidFile {
    /// Creates `path`'s directory and the file when missing, locks it and writes our PID and a
    /// newline. Fails with [`PidFileError::Held`] when another process has it locked.
    ///
    /// The file is opened without truncating, so a refused start leaves the running daemon's
    /// PID in place.
    pub fn acquire(path: &Path) -> Result<PidFile, PidFileError> {
        let io_err = |source| PidFileError::Io { path: path.to_owned(), source };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io_err)?;
        }
        // A holder exiting between our open and our lock unlinks the file we opened; we would
        // then hold a lock on a file nobody else can see. Retry until the locked file is the
        // one at `path`.
        for _ in 0..8 {
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o644)
                .open(path)
                .map_err(io_err)?;
            let mut lock = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(l) => l,
                Err((mut file, Errno::EWOULDBLOCK)) => {
                    let mut text = String::new();
                    let pid = file.read_to_string(&mut text).ok().and_then(|_| text.trim().parse().ok());
                    return Err(PidFileError::Held { path: path.to_owned(), pid });
                }
                Err((_, e)) => return Err(io_err(e.into())),
            };
            let ours = lock.metadata().map_err(io_err)?;
            match std::fs::metadata(path) {
                Ok(there) if there.dev() == ours.dev() && there.ino() == ours.ino() => {}
                Ok(_) => continue,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_err(e)),
            }
            lock.set_len(0).map_err(io_err)?;
            lock.rewind().map_err(io_err)?;
            lock.write_all(format!("{}\n", std::process::id()).as_bytes()).map_err(io_err)?;
            return Ok(PidFile { path: path.to_owned(), _lock: lock });
        }
        Err(io_err(io::Error::other("the file keeps being replaced while it is locked")))
    }

    /// The PID file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("hav-pidfile-{}-{name}", std::process::id())).join("hav.pid")
    }

    #[test]
    fn test_second_acquire_is_refused_with_the_holder_pid() {
        let path = temp("second");
        let first = PidFile::acquire(&path).expect("first");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), format!("{}\n", std::process::id()));
        // A second open file description conflicts with the first even in the same process.
        let err = PidFile::acquire(&path).expect_err("second must fail");
        let msg = err.to_string();
        assert_eq!(msg, format!("another hav-linux (pid {}) holds {}", std::process::id(), path.display()));
        assert!(matches!(err, PidFileError::Held { pid: Some(_), .. }));
        // The refused attempt left the holder's PID in place.
        assert_eq!(std::fs::read_to_string(&path).expect("read"), format!("{}\n", std::process::id()));
        drop(first);
        assert!(!path.exists(), "dropping removes the file");
        let again = PidFile::acquire(&path).expect("free again after drop");
        drop(again);
        let _ = std::fs::remove_dir_all(path.parent().expect("dir"));
    }

    #[test]
    fn test_stale_file_is_taken_over() {
        let path = temp("stale");
        std::fs::create_dir_all(path.parent().expect("dir")).expect("dir");
        // Left behind by a daemon that was killed: a PID, longer than ours, and no lock.
        std::fs::write(&path, "4000000000\nleftover\n").expect("write");
        let p = PidFile::acquire(&path).expect("stale file taken over");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), format!("{}\n", std::process::id()));
        drop(p);
        let _ = std::fs::remove_dir_all(path.parent().expect("dir"));
    }

    #[test]
    fn test_held_by_another_process() {
        let path = temp("other");
        std::fs::create_dir_all(path.parent().expect("dir")).expect("dir");
        std::fs::write(&path, "").expect("create");
        // flock(1) from util-linux holds the lock in another process while its child sleeps
        // (`-o`: the child does not inherit the lock, so killing flock(1) releases it).
        let Ok(mut holder) = std::process::Command::new("flock")
            .args(["-o", "-x", "-n"])
            .arg(&path)
            .args(["sh", "-c", &format!("echo $$ > {}; exec sleep 5", path.display())])
            .spawn()
        else {
            eprintln!("skipped: no flock(1)");
            return;
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let err = loop {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            if !text.trim().is_empty() {
                break PidFile::acquire(&path).expect_err("held by flock(1)");
            }
            assert!(std::time::Instant::now() < deadline, "flock(1) did not start");
            std::thread::sleep(std::time::Duration::from_millis(10));
        };
        let holder_pid = std::fs::read_to_string(&path).expect("read").trim().to_owned();
        assert_eq!(err.to_string(), format!("another hav-linux (pid {holder_pid}) holds {}", path.display()));
        let _ = holder.kill();
        let _ = holder.wait();
        if let Ok(pid) = holder_pid.parse() {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
        }
        // The holder is gone, and the kernel dropped its lock with it.
        drop(PidFile::acquire(&path).expect("taken over after the holder died"));
        let _ = std::fs::remove_dir_all(path.parent().expect("dir"));
    }
}
