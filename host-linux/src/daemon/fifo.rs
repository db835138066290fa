//! keepalived's notify FIFOs: `notify_fifo` (VRRP and checker lines), `vrrp_notify_fifo` and
//! `lvs_notify_fifo` (`PATH [USER [GROUP]]`), and their readers, `notify_fifo_script`,
//! `vrrp_notify_fifo_script` and `lvs_notify_fifo_script`.
//!
//! As keepalived does: a FIFO that does not exist is created (mode 0600, owned by USER:GROUP
//! when given) and removed at stop; one that exists is used as it is and left in place. The
//! daemon holds it open for reading and writing, without blocking, from start to stop: lines
//! written before a reader opens it wait in the pipe, a reader never reads end-of-file while
//! the daemon runs, and a full pipe loses lines rather than stalling anything. A reader script
//! is started with the FIFO's path as its last argument, as its own user or `script_user`, and
//! stopped with SIGTERM to its process group.
//!
//! Differences from keepalived: the FIFO is held open by the daemon, where keepalived's
//! processes each open and close it, which can end a reader's `while read` loop at the first
//! close; at stop hav lets a running reader take what is left in the pipe (up to a second)
//! before SIGTERM; a reload that leaves a FIFO and its reader unchanged keeps both, where
//! keepalived restarts the reader.

use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::config::global::FifoSpec;
use crate::config::value::Script;
use crate::config::Config;

use super::proc::{self, Runner, Service};

/// How long a stop waits for a running reader to empty the pipe.
const DRAIN: Duration = Duration::from_secs(1);

/// Which lines a FIFO gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stream {
    /// `INSTANCE "VI_1" MASTER 100`, `GROUP "G" BACKUP 0`.
    Vrrp,
    /// `RS [10.0.0.2]:tcp:80 [10.0.0.1]:tcp:80 UP`, `VS [10.0.0.1]:tcp:80 DOWN`.
    Lvs,
}

/// The FIFOs `config` asks for, with their readers and the keywords that set them. One path
/// named by two keywords (keepalived wants them apart) is one FIFO with both streams and the
/// first keyword's reader.
pub(crate) fn wanted(config: &Config) -> Vec<Want> {
    let g = &config.global;
    let mut out: Vec<Want> = Vec::new();
    for (spec, script, keyword, vrrp, lvs) in [
        (&g.notify_fifo, &g.notify_fifo_script, "notify_fifo", true, true),
        (&g.vrrp_notify_fifo, &g.vrrp_notify_fifo_script, "vrrp_notify_fifo", true, false),
        (&g.lvs_notify_fifo, &g.lvs_notify_fifo_script, "lvs_notify_fifo", false, true),
    ] {
        let Some(spec) = spec else { continue };
        match out.iter_mut().find(|w| w.spec.path == spec.path) {
            Some(w) => {
                w.vrrp |= vrrp;
                w.lvs |= lvs;
            }
            None => out.push(Want { spec: spec.clone(), script: script.clone(), keyword, vrrp, lvs }),
        }
    }
    out
}

/// A FIFO the config asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Want {
    pub(crate) spec: FifoSpec,
    pub(crate) script: Option<Script>,
    pub(crate) keyword: &'static str,
    /// Gets VRRP lines.
    pub(crate) vrrp: bool,
    /// Gets checker (LVS) lines.
    pub(crate) lvs: bool,
}

/// An open FIFO, and its reader.
#[derive(Debug)]
pub(crate) struct Output {
    pub(crate) want: Want,
    file: std::fs::File,
    /// Created by the daemon: removed at stop.
    created: bool,
    reader: Option<Service>,
    /// Lines lost to a full pipe, since it was opened.
    pub(crate) lost: u64,
    lost_log: crate::ratelimit::RateLimit,
}

impl Output {
    /// Opens (creating if need be) the FIFO `want` names, and starts its reader with `runner`.
    /// `Err` says why the FIFO cannot be used; a reader that cannot start is logged, and the
    /// FIFO is used without it. Call inside a tokio runtime.
    pub(crate) fn open(want: Want, runner: &Runner) -> Result<Output, String> {
        let path = Path::new(&want.spec.path);
        let kw = want.keyword;
        let created = match std::fs::symlink_metadata(path) {
            Ok(md) if md.file_type().is_fifo() => false,
            Ok(_) => return Err(format!("{kw} {}: exists and is not a FIFO", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o600))
                    .map_err(|e| format!("{kw} {}: creating it: {e}", path.display()))?;
                if let Some(owner) = &want.spec.owner {
                    let owned = proc::resolve(owner).and_then(|c| {
                        nix::unistd::chown(path, Some(c.uid), Some(c.gid)).map_err(|e| format!("chown to {}: {e}", owner.user))
                    });
                    if let Err(e) = owned {
                        let _ = std::fs::remove_file(path);
                        return Err(format!("{kw} {}: {e}", path.display()));
                    }
                }
                true
            }
            Err(e) => return Err(format!("{kw} {}: {e}", path.display())),
        };
        // Read and write, so that the open never waits for a reader nor fails for want of one;
        // not following a symlink planted in its place.
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW)
            .open(path)
            .map_err(|e| {
                if created {
                    let _ = std::fs::remove_file(path);
                }
                format!("{kw} {}: opening it: {e}", path.display())
            })?;
        let reader = want.script.as_ref().and_then(|s| {
            let what = format!("{kw}_script");
            match runner.start(s, std::slice::from_ref(&want.spec.path), &what) {
                Ok(r) => Some(r),
                Err(e) => {
                    tracing::error!(script = %s.command, fifo = %path.display(), "{what} not started: {e}");
                    None
                }
            }
        });
        tracing::info!(fifo = %path.display(), created, reader = reader.is_some(), "{kw} open");
        Ok(Output { want, file, created, reader, lost: 0, lost_log: crate::ratelimit::RateLimit::new(1, Duration::from_secs(10)) })
    }

    /// Writes those of `lines` its streams take (each shorter than `PIPE_BUF`, so each lands
    /// whole or not at all); those that do not fit in the pipe are lost, and counted.
    pub(crate) fn write(&mut self, lines: &[(Stream, String)]) {
        let mine: Vec<&str> = lines
            .iter()
            .filter(|(s, _)| match s {
                Stream::Vrrp => self.want.vrrp,
                Stream::Lvs => self.want.lvs,
            })
            .map(|(_, l)| l.as_str())
            .collect();
        for (i, l) in mine.iter().enumerate() {
            // Below PIPE_BUF a write is whole or refused; a short count cannot happen.
            let written = (&self.file).write(l.as_bytes()).and_then(|n| {
                if n == l.len() {
                    Ok(())
                } else {
                    Err(std::io::Error::other(format!("short write ({n} of {} bytes)", l.len())))
                }
            });
            match written {
                Ok(()) => {}
                Err(e) => {
                    let lost = (mine.len() - i) as u64;
                    self.lost += lost;
                    if let Some(held_back) = self.lost_log.check_now() {
                        tracing::warn!(fifo = %self.want.spec.path, error = %e, lost, total = self.lost, held_back, "{}: lines not written (nobody reads it?)", self.want.keyword);
                    }
                    return;
                }
            }
        }
    }

    /// Lets a running reader take what is left in the pipe (up to `DRAIN`), stops it, closes
    /// the FIFO and removes it if the daemon created it.
    pub(crate) async fn close(self) {
        let Output { want, file, created, reader, .. } = self;
        if let Some(r) = reader {
            let end = Instant::now() + DRAIN;
            while !r.finished() && Instant::now() < end && crate::net::sys::unread_bytes(file.as_fd()).is_ok_and(|n| n > 0) {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            r.stop().await;
        }
        drop(file);
        if created {
            if let Err(e) = std::fs::remove_file(&want.spec.path) {
                tracing::debug!(fifo = %want.spec.path, error = %e, "removing the FIFO");
            }
        }
    }
}
