//! `vrrp_track_process`: counts the processes that match a definition and reports the tracker
//! up while the count is within `quorum..=quorum_max`.
//!
//! The count starts from a scan of `/proc` and then follows the kernel's process connector
//! (NETLINK_CONNECTOR, multicast group CN_IDX_PROC, subscribed with PROC_CN_MCAST_LISTEN):
//! FORK, EXEC, COMM and EXIT events of whole processes (thread events are skipped). When the
//! socket overflows (ENOBUFS) events are lost, so `/proc` is scanned again. Where the connector
//! cannot be opened (no CAP_NET_ADMIN, a kernel without CONFIG_PROC_EVENTS) `/proc` is scanned
//! every [`POLL_WITHOUT_CONNECTOR`] instead, with an error logged once.
//!
//! As keepalived.conf(5) says: without parameters or `full_command` the process name
//! (`/proc/PID/comm`) must equal `process`; otherwise argv\[0] must, and the parameters are
//! compared as `param_match` says. A quorum reached by a fork counts after `fork_delay`, a
//! quorum lost by an exit after `terminate_delay`; a change that undoes a pending one cancels
//! it. [`Quorum`] holds that logic without I/O; [`spawn`] drives it.

use std::collections::HashSet;
use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::Duration;

use hav_core::vrrp::TrackStatus;
use tokio::io::unix::AsyncFd;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::track::TrackEvent;
use crate::config::{ParamMatch, TrackProcessDef};

/// How often `/proc` is scanned when the process connector cannot be used.
pub const POLL_WITHOUT_CONNECTOR: Duration = Duration::from_secs(1);

/// What a process is matched on.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProcInfo {
    /// `/proc/PID/comm` (the name in `stat`).
    pub comm: String,
    /// `/proc/PID/cmdline`, split at its NUL bytes (empty when not read).
    pub argv: Vec<String>,
}

/// Whether the process matches the definition.
pub fn matches(def: &TrackProcessDef, p: &ProcInfo) -> bool {
    let name = if def.full_command { p.argv.first().map(String::as_str) } else { Some(p.comm.as_str()) };
    if name != Some(def.process.as_str()) {
        return false;
    }
    let have = p.argv.get(1..).unwrap_or(&[]);
    let want = &def.params[..];
    match def.param_match {
        ParamMatch::None => true,
        ParamMatch::Exact => have == want,
        ParamMatch::Partial => have.len() >= want.len() && have[..want.len()] == *want,
        ParamMatch::Initial => match want.split_last() {
            None => true,
            Some((last, init)) => {
                have.len() >= want.len() && have[..init.len()] == *init && have[init.len()].starts_with(last.as_str())
            }
        },
    }
}

/// Why the count changed: which delay applies to the flip it causes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// An exec, a rename or a changed command line: counts at once.
    Exec,
    /// A matching process forked: a quorum gained waits `fork_delay`.
    Fork,
    /// A matching process exited: a quorum lost waits `terminate_delay`.
    Exit,
    /// A rescan after lost events: a gain waits `fork_delay`, a loss `terminate_delay`.
    Rescan,
}

/// The tracker's state: the count, the reported status and the pending flip's deadline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quorum {
    min: u32,
    max: u32,
    fork_delay: Duration,
    terminate_delay: Duration,
    count: u32,
    up: bool,
    pending: Option<Instant>,
}

impl Quorum {
    /// The tracker with `count` matching processes, its status taken at once.
    pub fn new(def: &TrackProcessDef, count: u32) -> Self {
        let mut q = Quorum {
            min: def.quorum,
            max: def.quorum_max,
            fork_delay: def.fork_delay,
            terminate_delay: def.terminate_delay,
            count,
            up: false,
            pending: None,
        };
        q.up = q.in_quorum();
        q
    }

    fn in_quorum(&self) -> bool {
        self.count >= self.min && self.count <= self.max
    }

    /// The reported status.
    pub fn up(&self) -> bool {
        self.up
    }

    /// The count.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// When [`Quorum::handle_timeout`] is due, if a flip is pending.
    pub fn poll_at(&self) -> Option<Instant> {
        self.pending
    }

    /// The count is now `count`, for `cause`; returns the new status when it flips now.
    pub fn handle_count(&mut self, now: Instant, count: u32, cause: Cause) -> Option<bool> {
        self.count = count;
        let want = self.in_quorum();
        if want == self.up {
            // Back where the reported status is: a pending flip has nothing left to do.
            self.pending = None;
            return None;
        }
        let delay = match cause {
            Cause::Exec => Duration::ZERO,
            Cause::Fork => self.fork_delay,
            Cause::Exit => self.terminate_delay,
            Cause::Rescan if want => self.fork_delay,
            Cause::Rescan => self.terminate_delay,
        };
        if delay.is_zero() {
            self.pending = None;
            self.up = want;
            return Some(want);
        }
        if self.pending.is_none() {
            self.pending = Some(now + delay);
        }
        None
    }

    /// Takes the pending flip when it is due; returns the new status when it flips. A call
    /// before the deadline, or with none pending, does nothing.
    pub fn handle_timeout(&mut self, now: Instant) -> Option<bool> {
        match self.pending {
            Some(at) if at <= now => {
                self.pending = None;
                let want = self.in_quorum();
                (want != self.up).then(|| {
                    self.up = want;
                    want
                })
            }
            _ => None,
        }
    }
}

/// Reads what a process is matched on; `None` for a zombie or a process gone. The command
/// line is read only when `cmdline` (it may be swapped out).
pub fn read_proc(root: &Path, pid: i32, cmdline: bool) -> Option<ProcInfo> {
    let dir = root.join(pid.to_string());
    let stat = std::fs::read(dir.join("stat")).ok()?;
    let stat = String::from_utf8_lossy(&stat);
    // `PID (COMM) STATE ...`: COMM may hold anything, ')' too; the last ')' ends it.
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat.get(open + 1..close)?.to_owned();
    if stat.get(close + 1..)?.trim_start().starts_with('Z') {
        return None;
    }
    let argv = if cmdline {
        let raw = std::fs::read(dir.join("cmdline")).ok()?;
        let raw = raw.strip_suffix(&[0]).unwrap_or(&raw);
        if raw.is_empty() {
            Vec::new()
        } else {
            raw.split(|&b| b == 0).map(|a| String::from_utf8_lossy(a).into_owned()).collect()
        }
    } else {
        Vec::new()
    };
    Some(ProcInfo { comm, argv })
}

/// The processes under `root` (a `/proc`) that match the definition.
pub fn scan(root: &Path, def: &TrackProcessDef) -> HashSet<i32> {
    let Ok(dir) = std::fs::read_dir(root) else { return HashSet::new() };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| pid > 0 && read_proc(root, pid, def.full_command).is_some_and(|p| matches(def, &p)))
        .collect()
}

/// A process event of the connector, for whole processes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProcEvent {
    /// A process forked.
    Fork {
        /// The parent's process id.
        parent: i32,
        /// The child's.
        child: i32,
    },
    /// A process ran exec.
    Exec {
        /// Its process id.
        pid: i32,
    },
    /// A process renamed itself.
    Comm {
        /// Its process id.
        pid: i32,
        /// Its new name.
        comm: String,
    },
    /// A process exited.
    Exit {
        /// Its process id.
        pid: i32,
    },
}

/// The matched processes of one definition and its quorum, fed with events.
#[derive(Debug)]
pub struct Tracker {
    def: TrackProcessDef,
    root: std::path::PathBuf,
    pids: HashSet<i32>,
    quorum: Quorum,
}

impl Tracker {
    /// Scans `root` (a `/proc`) for the definition's processes.
    pub fn new(def: TrackProcessDef, root: &Path) -> Self {
        let pids = scan(root, &def);
        let quorum = Quorum::new(&def, count_of(&pids));
        Tracker { def, root: root.to_owned(), pids, quorum }
    }

    /// The quorum state.
    pub fn quorum(&self) -> &Quorum {
        &self.quorum
    }

    /// Takes one event; returns the new status when it flips now.
    pub fn handle_event(&mut self, now: Instant, ev: &ProcEvent) -> Option<bool> {
        let (changed, cause) = match ev {
            ProcEvent::Fork { parent, child } => {
                // A child is what its parent was until it execs (its own EXEC event follows).
                (self.pids.contains(parent) && self.pids.insert(*child), Cause::Fork)
            }
            ProcEvent::Exec { pid } => {
                let now_matches = read_proc(&self.root, *pid, self.def.full_command).is_some_and(|p| matches(&self.def, &p));
                (self.set(*pid, now_matches), Cause::Exec)
            }
            ProcEvent::Comm { pid, comm } if !self.def.full_command => {
                let p = ProcInfo { comm: comm.clone(), argv: Vec::new() };
                (self.set(*pid, matches(&self.def, &p)), Cause::Exec)
            }
            ProcEvent::Comm { .. } => (false, Cause::Exec),
            ProcEvent::Exit { pid } => (self.pids.remove(pid), Cause::Exit),
        };
        if !changed {
            return None;
        }
        tracing::debug!(track_process = %self.def.name, event = ?ev, count = self.pids.len(), "matching processes changed");
        self.quorum.handle_count(now, count_of(&self.pids), cause)
    }

    /// Events were lost: counts again from `/proc`.
    pub fn rescan(&mut self, now: Instant) -> Option<bool> {
        self.pids = scan(&self.root, &self.def);
        self.quorum.handle_count(now, count_of(&self.pids), Cause::Rescan)
    }

    /// See [`Quorum::handle_timeout`].
    pub fn handle_timeout(&mut self, now: Instant) -> Option<bool> {
        self.quorum.handle_timeout(now)
    }

    fn set(&mut self, pid: i32, matched: bool) -> bool {
        if matched {
            self.pids.insert(pid)
        } else {
            self.pids.remove(&pid)
        }
    }
}

fn count_of(pids: &HashSet<i32>) -> u32 {
    u32::try_from(pids.len()).unwrap_or(u32::MAX)
}

// Kernel UAPI: linux/netlink.h, linux/connector.h, linux/cn_proc.h.
const NLMSG_HDRLEN: usize = 16;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const CN_MSG_LEN: usize = 20;
const CN_IDX_PROC: u32 = 1;
const CN_VAL_PROC: u32 = 1;
const PROC_CN_MCAST_LISTEN: u32 = 1;
const PROC_EVENT_FORK: u32 = 0x0000_0001;
const PROC_EVENT_EXEC: u32 = 0x0000_0002;
const PROC_EVENT_COMM: u32 = 0x0000_0200;
const PROC_EVENT_EXIT: u32 = 0x8000_0000;
// struct proc_event: what (u32), cpu (u32), timestamp_ns (u64), then the event's data.
const EVENT_DATA: usize = 16;

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn i32_at(b: &[u8], at: usize) -> Option<i32> {
    Some(i32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// The subscription message: a netlink header, a `cn_msg` to the proc connector, and
/// PROC_CN_MCAST_LISTEN.
fn listen_message() -> Vec<u8> {
    let len = NLMSG_HDRLEN + CN_MSG_LEN + 4;
    let mut m = Vec::with_capacity(len);
    m.extend_from_slice(&u32::try_from(len).unwrap_or(0).to_ne_bytes());
    m.extend_from_slice(&NLMSG_DONE.to_ne_bytes());
    m.extend_from_slice(&0u16.to_ne_bytes()); // flags
    m.extend_from_slice(&0u32.to_ne_bytes()); // seq
    m.extend_from_slice(&std::process::id().to_ne_bytes());
    m.extend_from_slice(&CN_IDX_PROC.to_ne_bytes());
    m.extend_from_slice(&CN_VAL_PROC.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes()); // seq
    m.extend_from_slice(&0u32.to_ne_bytes()); // ack
    m.extend_from_slice(&4u16.to_ne_bytes()); // data length
    m.extend_from_slice(&0u16.to_ne_bytes()); // flags
    m.extend_from_slice(&PROC_CN_MCAST_LISTEN.to_ne_bytes());
    m
}

/// The process events in one datagram of the connector. Anything else (acks, other
/// connectors, truncated messages, thread events) is skipped.
pub fn parse_events(buf: &[u8]) -> Vec<ProcEvent> {
    let mut out = Vec::new();
    let mut at = 0;
    while let (Some(len), Some(kind)) = (u32_at(buf, at), buf.get(at + 4..at + 6)) {
        let len = usize::try_from(len).unwrap_or(0);
        if len < NLMSG_HDRLEN || at + len > buf.len() {
            break;
        }
        let kind = u16::from_ne_bytes([kind[0], kind[1]]);
        let msg = &buf[at + NLMSG_HDRLEN..at + len];
        if kind != NLMSG_ERROR && u32_at(msg, 0) == Some(CN_IDX_PROC) && u32_at(msg, 4) == Some(CN_VAL_PROC) {
            if let Some(ev) = msg.get(CN_MSG_LEN..).and_then(parse_event) {
                out.push(ev);
            }
        }
        // NLMSG_ALIGN
        at += (len + 3) & !3;
    }
    out
}

fn parse_event(ev: &[u8]) -> Option<ProcEvent> {
    let what = u32_at(ev, 0)?;
    let d = EVENT_DATA;
    match what {
        PROC_EVENT_FORK => {
            let (parent_tgid, child_pid, child_tgid) = (i32_at(ev, d + 4)?, i32_at(ev, d + 8)?, i32_at(ev, d + 12)?);
            // A new thread is not a new process.
            (child_pid == child_tgid).then_some(ProcEvent::Fork { parent: parent_tgid, child: child_tgid })
        }
        PROC_EVENT_EXEC => Some(ProcEvent::Exec { pid: i32_at(ev, d + 4)? }),
        PROC_EVENT_COMM => {
            let (pid, tgid) = (i32_at(ev, d)?, i32_at(ev, d + 4)?);
            let raw = ev.get(d + 8..d + 24)?;
            let comm = raw.split(|&b| b == 0).next().unwrap_or(raw);
            // A thread's name is not the process's.
            (pid == tgid).then(|| ProcEvent::Comm { pid, comm: String::from_utf8_lossy(comm).into_owned() })
        }
        PROC_EVENT_EXIT => {
            let (pid, tgid) = (i32_at(ev, d)?, i32_at(ev, d + 4)?);
            (pid == tgid).then_some(ProcEvent::Exit { pid })
        }
        _ => None,
    }
}

/// Opens a process-connector socket, subscribed; non-blocking.
fn open_connector() -> io::Result<socket2::Socket> {
    use nix::sys::socket::{bind, sendto, MsgFlags, NetlinkAddr};
    let sock = socket2::Socket::new(
        socket2::Domain::from(libc::AF_NETLINK),
        socket2::Type::DGRAM,
        Some(socket2::Protocol::from(libc::NETLINK_CONNECTOR)),
    )?;
    // Room for bursts (a service manager stopping a thousand processes at once).
    let _ = sock.set_recv_buffer_size(1 << 20);
    bind(sock.as_raw_fd(), &NetlinkAddr::new(0, CN_IDX_PROC)).map_err(io::Error::from)?;
    sendto(sock.as_raw_fd(), &listen_message(), &NetlinkAddr::new(0, 0), MsgFlags::empty()).map_err(io::Error::from)?;
    sock.set_nonblocking(true)?;
    Ok(sock)
}

/// Starts the task tracking `def`. It sends the status found by its first scan at once, then
/// every flip.
pub fn spawn(def: TrackProcessDef, tx: mpsc::Sender<TrackEvent>) -> JoinHandle<()> {
    tokio::spawn(run(def, Path::new("/proc").to_owned(), tx))
}

/// Waits until the connector is readable; never, without one.
async fn readable(c: Option<&AsyncFd<socket2::Socket>>) -> io::Result<tokio::io::unix::AsyncFdReadyGuard<'_, socket2::Socket>> {
    match c {
        Some(c) => c.readable().await,
        None => std::future::pending().await,
    }
}

async fn run(def: TrackProcessDef, root: std::path::PathBuf, tx: mpsc::Sender<TrackEvent>) {
    let obj = super::plan::TrackObj::Process(def.name.clone());
    let name = def.name.clone();
    let send = |up: bool| {
        tracing::info!(track_process = %name, state = if up { "up" } else { "down" }, "vrrp_track_process changed");
        TrackEvent { obj: obj.clone(), status: if up { TrackStatus::Up } else { TrackStatus::Down } }
    };
    // Subscribe first, then scan: an event during the scan is applied after it, which is
    // harmless (a process counted twice is one pid in the set).
    let conn = match open_connector().and_then(crate::net::sys::async_socket) {
        Ok(fd) => Some(fd),
        Err(e) => {
            tracing::error!(track_process = %def.name, error = %e, "process connector not available; scanning /proc every second instead");
            None
        }
    };
    let mut tracker = Tracker::new(def, &root);
    tracing::info!(track_process = %name, count = tracker.quorum().count(), up = tracker.quorum().up(), "vrrp_track_process started");
    let first = tracker.quorum().up();
    if tx.send(TrackEvent { obj: obj.clone(), status: if first { TrackStatus::Up } else { TrackStatus::Down } }).await.is_err() {
        return;
    }
    let mut buf = vec![0u8; 16 * 1024];
    let mut poll = tokio::time::interval(POLL_WITHOUT_CONNECTOR);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let deadline = tracker.quorum().poll_at();
        let mut flips = Vec::new();
        tokio::select! {
            _ = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {}
            _ = poll.tick(), if conn.is_none() => flips.extend(tracker.rescan(Instant::now())),
            r = readable(conn.as_ref()) => {
                let mut guard = match r {
                    Ok(g) => g,
                    Err(e) => {
                        tracing::error!(track_process = %name, error = %e, "process connector failed");
                        continue;
                    }
                };
                let fd = guard.get_inner().as_raw_fd();
                loop {
                    match nix::sys::socket::recv(fd, &mut buf, nix::sys::socket::MsgFlags::MSG_DONTWAIT) {
                        Ok(n) => {
                            let now = Instant::now();
                            for ev in parse_events(&buf[..n]) {
                                flips.extend(tracker.handle_event(now, &ev));
                            }
                        }
                        Err(nix::errno::Errno::EAGAIN) => {
                            guard.clear_ready();
                            break;
                        }
                        Err(nix::errno::Errno::ENOBUFS) => {
                            tracing::warn!(track_process = %name, "process events lost (receive buffer overflow); scanning /proc again");
                            flips.extend(tracker.rescan(Instant::now()));
                        }
                        Err(nix::errno::Errno::EINTR) => {}
                        Err(e) => {
                            tracing::error!(track_process = %name, error = %e, "process connector read failed");
                            guard.clear_ready();
                            break;
                        }
                    }
                }
            }
        }
        // The I/O layer compares the clock with the deadline itself.
        flips.extend(tracker.handle_timeout(Instant::now()));
        for up in flips {
            if tx.send(send(up)).await.is_err() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(body: &str) -> TrackProcessDef {
        let text = format!("vrrp_track_process tp {{\n{body}\n}}\n");
        let loaded = crate::config::load_str(Path::new("t.conf"), &text).expect("config");
        loaded.config.vrrp_track_processes[0].clone()
    }

    fn proc_info(comm: &str, argv: &[&str]) -> ProcInfo {
        ProcInfo { comm: comm.into(), argv: argv.iter().map(|s| s.to_string()).collect() }
    }

    #[test]
    fn test_match_name_is_exact() {
        let d = def("process ssh");
        assert!(matches(&d, &proc_info("ssh", &["/usr/bin/ssh", "-v"])), "parameters are not compared");
        assert!(!matches(&d, &proc_info("sshd", &[])), "no pattern match: ssh is not sshd");
        let d = def("process /usr/bin/ssh\nfull_command");
        assert!(matches(&d, &proc_info("x", &["/usr/bin/ssh", "-v"])));
        assert!(!matches(&d, &proc_info("ssh", &["ssh"])), "argv[0] as written");
    }

    #[test]
    fn test_match_params() {
        let exact = def("process sleep 1000");
        assert!(matches(&exact, &proc_info("sleep", &["sleep", "1000"])));
        assert!(!matches(&exact, &proc_info("sleep", &["sleep", "1000", "x"])));
        assert!(!matches(&exact, &proc_info("sleep", &["sleep", "100"])));
        let none = def("process sleep\nparam_match");
        assert!(matches(&none, &proc_info("sleep", &["sleep"])));
        assert!(!matches(&none, &proc_info("sleep", &["sleep", "1"])));
        let partial = def("process app -c\nparam_match partial");
        assert!(matches(&partial, &proc_info("app", &["app", "-c", "x.conf"])));
        assert!(!matches(&partial, &proc_info("app", &["app", "-cx"])));
        assert!(!matches(&partial, &proc_info("app", &["app"])));
        let initial = def("process app -c /etc/ap\nparam_match initial");
        assert!(matches(&initial, &proc_info("app", &["app", "-c", "/etc/app.conf", "-d"])));
        assert!(!matches(&initial, &proc_info("app", &["app", "-cx", "/etc/app.conf"])), "only the last may be longer");
        assert!(!matches(&initial, &proc_info("app", &["app", "-c"])));
    }

    #[test]
    fn test_quorum_flips_at_once_without_delays() {
        let d = def("process a\nquorum 2\nquorum_max 3");
        let t0 = Instant::now();
        let mut q = Quorum::new(&d, 1);
        assert!(!q.up());
        assert_eq!(q.handle_count(t0, 2, Cause::Exec), Some(true));
        assert_eq!(q.handle_count(t0, 3, Cause::Fork), None);
        assert_eq!(q.handle_count(t0, 4, Cause::Fork), Some(false), "above quorum_max is down");
        assert_eq!(q.handle_count(t0, 3, Cause::Exit), Some(true));
        assert_eq!(q.poll_at(), None);
    }

    #[test]
    fn test_fork_and_terminate_delays() {
        let d = def("process a\nfork_delay 2\nterminate_delay 1");
        let t0 = Instant::now();
        let mut q = Quorum::new(&d, 1);
        assert!(q.up());
        // An exit that the parent's re-fork undoes within terminate_delay: no flip at all.
        assert_eq!(q.handle_count(t0, 0, Cause::Exit), None);
        assert_eq!(q.poll_at(), Some(t0 + Duration::from_secs(1)));
        assert_eq!(q.handle_count(t0 + Duration::from_millis(500), 1, Cause::Fork), None);
        assert_eq!(q.poll_at(), None, "the pending loss is cancelled");
        assert!(q.up());
        // An exit that stays: down after terminate_delay, not before.
        assert_eq!(q.handle_count(t0, 0, Cause::Exit), None);
        assert_eq!(q.handle_timeout(t0 + Duration::from_millis(999)), None);
        assert_eq!(q.handle_timeout(t0 + Duration::from_secs(1)), Some(false));
        // A fork gains the quorum after fork_delay; an exec at once.
        assert_eq!(q.handle_count(t0, 1, Cause::Fork), None);
        assert_eq!(q.poll_at(), Some(t0 + Duration::from_secs(2)));
        assert_eq!(q.handle_timeout(t0 + Duration::from_secs(2)), Some(true));
        assert_eq!(q.handle_count(t0, 0, Cause::Exit), None);
        assert_eq!(q.handle_count(t0, 1, Cause::Exec), None, "back in quorum before the loss counted");
        assert_eq!(q.handle_timeout(t0 + Duration::from_secs(5)), None);
        assert!(q.up());
        // A rescan takes the delay of its direction.
        assert_eq!(q.handle_count(t0, 0, Cause::Rescan), None);
        assert_eq!(q.poll_at(), Some(t0 + Duration::from_secs(1)));
    }

    #[test]
    fn test_delay_sets_both() {
        let d = def("process a\ndelay 0.5");
        assert_eq!((d.fork_delay, d.terminate_delay), (Duration::from_millis(500), Duration::from_millis(500)));
    }

    /// A fake /proc: `pid (comm) S ...` in stat, NUL-separated cmdline.
    fn fake_proc(dir: &Path, pid: i32, comm: &str, state: char, argv: &[&str]) {
        let d = dir.join(pid.to_string());
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("stat"), format!("{pid} ({comm}) {state} 1 1 1 0 -1\n")).unwrap();
        let mut cmd = Vec::new();
        for a in argv {
            cmd.extend_from_slice(a.as_bytes());
            cmd.push(0);
        }
        std::fs::write(d.join("cmdline"), cmd).unwrap();
    }

    #[test]
    fn test_tracker_follows_events_and_rescans() {
        let root = std::env::temp_dir().join(format!("hav-tp-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        fake_proc(&root, 10, "nginx", 'S', &["nginx: master"]);
        fake_proc(&root, 11, "nginx", 'Z', &[]);
        fake_proc(&root, 12, "weird) name", 'S', &["x"]);
        let mut t = Tracker::new(def("process nginx\nquorum 2"), &root);
        assert_eq!(t.quorum().count(), 1, "a zombie does not count");
        assert!(!t.quorum().up());
        let now = Instant::now();
        assert_eq!(t.handle_event(now, &ProcEvent::Fork { parent: 99, child: 20 }), None, "an unknown parent's child");
        assert_eq!(t.handle_event(now, &ProcEvent::Fork { parent: 10, child: 21 }), Some(true));
        assert_eq!(t.handle_event(now, &ProcEvent::Comm { pid: 21, comm: "worker".into() }), Some(false));
        fake_proc(&root, 30, "nginx", 'S', &["nginx"]);
        assert_eq!(t.handle_event(now, &ProcEvent::Exec { pid: 30 }), Some(true));
        std::fs::remove_dir_all(root.join("30")).unwrap();
        assert_eq!(t.handle_event(now, &ProcEvent::Exit { pid: 30 }), Some(false));
        // Events lost: the rescan finds what /proc holds.
        fake_proc(&root, 31, "nginx", 'S', &["nginx"]);
        assert_eq!(t.rescan(now), Some(true));
        assert_eq!(t.quorum().count(), 2);
        let named = Tracker::new(def("process \"weird) name\""), &root);
        assert_eq!(named.quorum().count(), 1, "a name holding ')'");
        std::fs::remove_dir_all(&root).unwrap();
    }

    fn nl_event(what: u32, data: &[i32], comm: Option<&str>) -> Vec<u8> {
        let mut payload = Vec::new();
        payload.extend_from_slice(&what.to_ne_bytes());
        payload.extend_from_slice(&0u32.to_ne_bytes());
        payload.extend_from_slice(&0u64.to_ne_bytes());
        for d in data {
            payload.extend_from_slice(&d.to_ne_bytes());
        }
        if let Some(c) = comm {
            let mut raw = [0u8; 16];
            raw[..c.len()].copy_from_slice(c.as_bytes());
            payload.extend_from_slice(&raw);
        }
        let mut cn = Vec::new();
        for v in [CN_IDX_PROC, CN_VAL_PROC, 0, 0] {
            cn.extend_from_slice(&v.to_ne_bytes());
        }
        cn.extend_from_slice(&u16::try_from(payload.len()).unwrap().to_ne_bytes());
        cn.extend_from_slice(&0u16.to_ne_bytes());
        cn.extend_from_slice(&payload);
        let mut m = Vec::new();
        m.extend_from_slice(&u32::try_from(NLMSG_HDRLEN + cn.len()).unwrap().to_ne_bytes());
        m.extend_from_slice(&NLMSG_DONE.to_ne_bytes());
        m.extend_from_slice(&[0; 10]);
        m.extend_from_slice(&cn);
        m
    }

    #[test]
    fn test_parse_events() {
        let fork = nl_event(PROC_EVENT_FORK, &[1, 1, 42, 42], None);
        assert_eq!(parse_events(&fork), vec![ProcEvent::Fork { parent: 1, child: 42 }]);
        assert!(parse_events(&nl_event(PROC_EVENT_FORK, &[1, 1, 43, 42], None)).is_empty(), "a thread");
        assert_eq!(parse_events(&nl_event(PROC_EVENT_EXEC, &[42, 42], None)), vec![ProcEvent::Exec { pid: 42 }]);
        assert_eq!(parse_events(&nl_event(PROC_EVENT_COMM, &[42, 42], Some("web"))), vec![ProcEvent::Comm { pid: 42, comm: "web".into() }]);
        assert_eq!(parse_events(&nl_event(PROC_EVENT_EXIT, &[42, 42, 0, 17, 1, 1], None)), vec![ProcEvent::Exit { pid: 42 }]);
        assert!(parse_events(&nl_event(PROC_EVENT_EXIT, &[43, 42, 0, 17, 1, 1], None)).is_empty(), "a thread exits");
        let mut two = fork.clone();
        two.extend(nl_event(PROC_EVENT_EXEC, &[42, 42], None));
        assert_eq!(parse_events(&two).len(), 2);
        assert!(parse_events(&fork[..fork.len() - 1]).is_empty(), "truncated");
        assert_eq!(listen_message().len(), 40);
    }

    /// The real connector (root): a child's fork, exec and exit arrive.
    #[tokio::test]
    async fn test_connector_delivers_exec_and_exit() {
        if !nix::unistd::geteuid().is_root() {
            assert!(std::env::var_os("CI").is_none(), "the process connector needs root under CI");
            eprintln!("skipped: needs root");
            return;
        }
        let sock = crate::net::sys::async_socket(open_connector().expect("connector")).expect("register");
        let mut child = std::process::Command::new("sleep").arg("0.2").spawn().expect("sleep");
        let pid = i32::try_from(child.id()).unwrap();
        let (mut exec, mut exit) = (false, false);
        let mut buf = vec![0u8; 16384];
        let deadline = Instant::now() + Duration::from_secs(5);
        while !(exec && exit) && Instant::now() < deadline {
            let Ok(Ok(mut g)) = tokio::time::timeout(Duration::from_secs(1), sock.readable()).await else { continue };
            match nix::sys::socket::recv(g.get_inner().as_raw_fd(), &mut buf, nix::sys::socket::MsgFlags::MSG_DONTWAIT) {
                Ok(n) => {
                    for ev in parse_events(&buf[..n]) {
                        exec |= ev == ProcEvent::Exec { pid };
                        exit |= ev == ProcEvent::Exit { pid };
                    }
                }
                Err(_) => g.clear_ready(),
            }
            if !exit {
                let _ = child.try_wait();
            }
        }
        let _ = child.wait();
        assert!(exec && exit, "exec {exec} exit {exit}");
    }
}
