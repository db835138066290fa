//! hav's own resources: file descriptors, memory and processes.
//!
//! Running out of them is hav's trouble, not the trouble of the server a checker probes nor of
//! the script it runs. A checker that cannot open a socket (EMFILE) has learnt nothing about
//! the server, so it must not declare it down and pull it out of IPVS; a `vrrp_script` that
//! cannot be forked has not failed, so it must not lower the priority. Those places ask
//! [`is_exhaustion`] / [`is_spawn_exhaustion`], keep the previous verdict, and call
//! [`report_exhaustion`], which logs at most once a second for the whole daemon (every checker
//! hits the limit at the same moment) and says how many reports it held back.
//!
//! At start-up [`raise_nofile_limit`] lifts the soft descriptor limit to the hard one, so the
//! common 1024 default does not cap a director with thousands of checkers.

// getrlimit/setrlimit: nix has them behind its `resource` feature, which hav does not build;
// two libc calls on a plain struct are all this needs.
#![allow(unsafe_code)]

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::ratelimit::SharedRateLimit;

/// Whether `e` says the process (or the system) is out of descriptors or memory: `EMFILE`,
/// `ENFILE`, `ENOMEM`, `ENOBUFS`. Such an error says nothing about the peer of the socket.
pub fn is_exhaustion(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE | libc::ENOMEM | libc::ENOBUFS))
}

/// [`is_exhaustion`] for a failed process spawn, which adds `EAGAIN` (fork: the process or
/// thread limit is reached). Such an error says nothing about the program.
pub fn is_spawn_exhaustion(e: &io::Error) -> bool {
    is_exhaustion(e) || e.raw_os_error() == Some(libc::EAGAIN)
}

static EXHAUSTED: AtomicU64 = AtomicU64::new(0);
static EXHAUSTED_LOG: SharedRateLimit = SharedRateLimit::new(1, Duration::from_secs(1));

/// Records that `what` (`"TCP_CHECK 10.0.0.1:80"`, `"vrrp_script chk_nginx"`) could not run
/// because hav is out of resources, and logs it at most once a second across the daemon.
pub fn report_exhaustion(what: &str, error: &dyn std::fmt::Display) {
    EXHAUSTED.fetch_add(1, Ordering::Relaxed);
    if let Some(suppressed) = EXHAUSTED_LOG.check_now() {
        tracing::error!(
            what,
            error = %error,
            suppressed,
            "hav is out of descriptors or memory: skipped, the previous result stands"
        );
    }
}

/// How many times [`report_exhaustion`] was called since start (for metrics).
pub fn exhaustion_count() -> u64 {
    EXHAUSTED.load(Ordering::Relaxed)
}

/// The soft and hard `RLIMIT_NOFILE`.
pub fn nofile_limit() -> io::Result<(u64, u64)> {
    let mut r = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `r` is a valid, writable rlimit; getrlimit only writes into it.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((r.rlim_cur, r.rlim_max))
}

/// Sets the soft `RLIMIT_NOFILE` to `soft`, keeping the hard limit.
pub fn set_nofile_soft(soft: u64) -> io::Result<()> {
    let (_, hard) = nofile_limit()?;
    let r = libc::rlimit { rlim_cur: soft, rlim_max: hard };
    // SAFETY: `r` is a valid rlimit that setrlimit only reads.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &r) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit (when the hard limit is unlimited, to the
/// kernel's `fs.nr_open`). Returns the soft limit before and after. Call once at start-up,
/// before threads that open descriptors start.
pub fn raise_nofile_limit() -> io::Result<(u64, u64)> {
    let (soft, hard) = nofile_limit()?;
    let target = if hard == libc::RLIM_INFINITY {
        // The kernel refuses an unlimited descriptor limit; nr_open is the most it takes.
        std::fs::read_to_string("/proc/sys/fs/nr_open").ok().and_then(|s| s.trim().parse().ok()).unwrap_or(soft)
    } else {
        hard
    };
    if target <= soft {
        return Ok((soft, soft));
    }
    set_nofile_soft(target)?;
    Ok((soft, nofile_limit()?.0))
}

/// Puts the calling thread under `SCHED_RR` at `priority` (1..=99), with
/// `SCHED_RESET_ON_FORK` so that the scripts it starts run under the normal policy: keepalived's
/// realtime priority for its VRRP process, applied to hav's VRRP thread.
pub fn set_thread_realtime(priority: i32) -> io::Result<()> {
    let p = libc::sched_param { sched_priority: priority };
    // SAFETY: `p` is a valid sched_param that the call only reads; pid 0 is the calling thread.
    if unsafe { libc::sched_setscheduler(0, libc::SCHED_RR | libc::SCHED_RESET_ON_FORK, &p) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The calling thread's scheduling policy (without `SCHED_RESET_ON_FORK`) and realtime priority.
pub fn thread_scheduling() -> io::Result<(i32, i32)> {
    // SAFETY: no arguments but the calling thread (pid 0).
    let policy = unsafe { libc::sched_getscheduler(0) };
    if policy < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut p = libc::sched_param { sched_priority: 0 };
    // SAFETY: `p` is a valid, writable sched_param.
    if unsafe { libc::sched_getparam(0, &mut p) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((policy & !libc::SCHED_RESET_ON_FORK, p.sched_priority))
}

/// `RLIMIT_RTTIME` as keepalived sets it with realtime scheduling: `micros` hard (the kernel
/// kills a realtime thread that runs that long without blocking), half of it soft (SIGXCPU
/// first, which the daemon logs).
pub fn set_rttime_limit(micros: u64) -> io::Result<()> {
    let r = libc::rlimit { rlim_cur: micros / 2, rlim_max: micros };
    // SAFETY: `r` is a valid rlimit that setrlimit only reads.
    if unsafe { libc::setrlimit(libc::RLIMIT_RTTIME, &r) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Helpers for tests that need a process of their own (a tiny descriptor limit must not starve
/// the other tests of the same binary).
#[cfg(test)]
pub(crate) mod testing {
    /// Set in the child to the name of the test it runs.
    const CHILD: &str = "HAV_TEST_CHILD";

    /// Runs test `name` of module `module` (pass `module_path!()`) again in a child process of
    /// this test binary. Returns `true` in the child, where the test goes on with its body;
    /// in the parent, waits for the child and returns `false` (panicking when the child failed),
    /// and the test returns.
    pub(crate) fn in_child(module: &str, name: &str) -> bool {
        in_child_with(module, name, |_| {})
    }

    /// [`in_child`], with `configure` setting up the child's command (user, environment).
    pub(crate) fn in_child_with(module: &str, name: &str, configure: impl FnOnce(&mut std::process::Command)) -> bool {
        let path = format!("{}::{name}", module.split_once("::").map_or(module, |(_, rest)| rest));
        if std::env::var(CHILD).is_ok_and(|v| v == path) {
            return true;
        }
        let exe = std::env::current_exe().expect("test binary path");
        let mut cmd = std::process::Command::new(exe);
        cmd.args([path.as_str(), "--exact", "--nocapture", "--test-threads=1"]).env(CHILD, &path);
        configure(&mut cmd);
        let out = cmd.output().expect("running the test in a child");
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "child {path} failed:\n{text}");
        assert!(text.contains("1 passed"), "child {path} did not run the test:\n{text}");
        false
    }

    /// Uses up every descriptor the process may open (after cutting its soft limit to a few
    /// more than it has open); dropping the result gives them back. Only for a test running in
    /// a child of its own ([`in_child`]).
    pub(crate) fn exhaust_descriptors() -> Vec<std::fs::File> {
        let open = std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(64);
        super::set_nofile_soft(u64::try_from(open).unwrap_or(64) + 32).expect("lower RLIMIT_NOFILE");
        let mut held = Vec::new();
        loop {
            match std::fs::File::open("/dev/null") {
                Ok(f) => held.push(f),
                Err(e) if e.raw_os_error() == Some(libc::EMFILE) => return held,
                Err(e) => panic!("opening /dev/null: {e}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_classification() {
        for errno in [libc::EMFILE, libc::ENFILE, libc::ENOMEM, libc::ENOBUFS] {
            assert!(is_exhaustion(&io::Error::from_raw_os_error(errno)), "errno {errno}");
            assert!(is_spawn_exhaustion(&io::Error::from_raw_os_error(errno)), "errno {errno}");
        }
        assert!(is_spawn_exhaustion(&io::Error::from_raw_os_error(libc::EAGAIN)));
        for errno in [libc::ECONNREFUSED, libc::ETIMEDOUT, libc::EHOSTUNREACH, libc::ENOENT, libc::EACCES, libc::EAGAIN] {
            assert!(!is_exhaustion(&io::Error::from_raw_os_error(errno)), "errno {errno} is the peer's");
        }
        assert!(!is_exhaustion(&io::Error::new(io::ErrorKind::TimedOut, "connect timed out")));
    }

    #[test]
    fn test_raise_is_idempotent() {
        // Raising to the hard limit in the test process is harmless (the test harness does not
        // use select()); a second call finds nothing to do.
        let (_, after) = raise_nofile_limit().expect("raise");
        let (soft, hard) = nofile_limit().expect("limits");
        assert_eq!(soft, after);
        assert!(soft <= hard);
        assert_eq!(raise_nofile_limit().expect("raise again"), (soft, soft));
    }

    #[test]
    fn test_report_counts() {
        let before = exhaustion_count();
        report_exhaustion("test", &"EMFILE");
        report_exhaustion("test", &"EMFILE");
        assert!(exhaustion_count() >= before + 2);
    }
}
