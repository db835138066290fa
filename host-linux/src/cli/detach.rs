//! Running in the background, as keepalived does without `-n`: what `Type=forking` units
//! (RHEL's keepalived.service) and init scripts expect.
//!
//! hav does not `fork()` a process that may already hold threads or a runtime; it starts
//! itself again, detached, with the same arguments, and waits until the new daemon is up
//! before it exits: the daemon says `READY=1` on a notification socket this process listens on
//! (the daemon's systemd notifications, [`crate::daemon::sdnotify`]), or its PID file names it.
//! So when the starting process exits with 0, the PID file is in place and the daemon runs;
//! when the daemon fails during start-up, the starting process exits with its status, after its
//! messages on the same stderr.

use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use crate::daemon::sdnotify::{self, Listener};

/// Set in the environment of the detached daemon; it then starts a session of its own.
pub const DETACHED_ENV: &str = "HAV_LINUX_DETACHED";

/// How long the starting process waits for the daemon to be ready before it leaves it be.
pub const READY_TIMEOUT: Duration = Duration::from_secs(90);

/// Whether this process is the detached daemon (and forgets it: the variable is removed).
///
/// Call it before any thread is started.
pub fn take_detached_mark() -> bool {
    let marked = std::env::var_os(DETACHED_ENV).is_some();
    if marked {
        std::env::remove_var(DETACHED_ENV);
    }
    marked
}

/// In the detached daemon: a session of its own (no controlling terminal, no SIGHUP when the
/// starting terminal closes). stdin and stdout were set to /dev/null by [`spawn_and_wait`];
/// stderr stays where the daemon logs.
pub fn become_session_leader() {
    if let Err(e) = nix::unistd::setsid() {
        eprintln!("hav-linux: setsid: {e}");
    }
}

/// Starts this program again in the background with the same arguments, waits until it is
/// ready (its `READY=1`, or `pid_file` holding its PID) and returns the exit code for this
/// process: success once the daemon is ready, or the daemon's own failure status.
pub fn spawn_and_wait(pid_file: &Path) -> ExitCode {
    match spawn_and_wait_inner(pid_file) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("hav-linux: cannot start in the background: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn spawn_and_wait_inner(pid_file: &Path) -> anyhow::Result<ExitCode> {
    use anyhow::Context as _;
    let exe = std::env::current_exe().context("finding this program")?;
    let listener = Listener::bind_abstract(&format!("hav-linux/start/{}/{}", std::process::id(), fastrand::u64(..)))
        .context("binding the start-up notification socket")?;
    let mut child = Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env(DETACHED_ENV, "1")
        .env(sdnotify::NOTIFY_SOCKET, listener.address())
        .env_remove(sdnotify::WATCHDOG_USEC)
        .env_remove(sdnotify::WATCHDOG_PID)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .context("starting the daemon")?;
    let pid = child.id();
    let t0 = Instant::now();
    loop {
        if let Some(fields) = listener.recv_timeout(Duration::from_millis(100)).context("start-up notifications")? {
            if fields.iter().any(|(k, v)| k == "READY" && v == "1") {
                return Ok(ExitCode::SUCCESS);
            }
        }
        if let Some(status) = child.try_wait().context("waiting for the daemon")? {
            let code = status.code().and_then(|c| u8::try_from(c).ok()).filter(|&c| c != 0).unwrap_or(1);
            return Ok(ExitCode::from(code));
        }
        if std::fs::read_to_string(pid_file).is_ok_and(|s| s.trim().parse::<u32>().ok() == Some(pid)) {
            return Ok(ExitCode::SUCCESS);
        }
        if t0.elapsed() > READY_TIMEOUT {
            eprintln!("hav-linux: the daemon (pid {pid}) is not ready after {} s; leaving it running", READY_TIMEOUT.as_secs());
            return Ok(ExitCode::SUCCESS);
        }
    }
}
