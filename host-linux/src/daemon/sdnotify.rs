//! systemd's service notifications (`sd_notify`): readiness, status, reloads, stopping and the
//! watchdog, as datagrams to the socket systemd names in `$NOTIFY_SOCKET`.
//!
//! The protocol is newline-separated `KEY=VALUE` assignments in one `AF_UNIX` datagram
//! (sd_notify(3)). `$NOTIFY_SOCKET` is a path, or an abstract name written with a leading `@`.
//! Without the variable every call is a no-op, so the daemon calls them unconditionally.
//!
//! What the daemon loop sends, and when:
//!
//! | when | call | datagram |
//! |---|---|---|
//! | the first config is applied, sockets open | [`Notify::ready`] | `READY=1`, `STATUS=…`, `MAINPID=…` |
//! | a reload starts (SIGHUP, `reload`) | [`Notify::reloading`] | `RELOADING=1`, `MONOTONIC_USEC=…` |
//! | the reload is applied, or failed | [`Notify::ready`] | `READY=1`, `STATUS=…` |
//! | the state summary changes | [`Notify::status`] | `STATUS=…` |
//! | SIGTERM / SIGINT, before releasing | [`Notify::stopping`] | `STOPPING=1` |
//! | every [`Watchdog::tick`] | [`Watchdog::kick`] | `WATCHDOG=1` |
//!
//! `RELOADING=1` with `MONOTONIC_USEC` followed by `READY=1` is what `Type=notify-reload`
//! (systemd 253 and later) waits for; with `Type=notify` the same messages are accepted and only
//! show in `systemctl status`.
//!
//! The watchdog is a timer the loop itself waits on ([`Watchdog::tick`]): a loop that is stuck
//! does not reach the select that kicks it, so systemd sees the missed ping, which a task on
//! another thread could not show.

use std::io;
use std::os::linux::net::SocketAddrExt as _;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

/// The environment variable naming the notification socket.
pub const NOTIFY_SOCKET: &str = "NOTIFY_SOCKET";
/// The watchdog timeout in microseconds, set by systemd when `WatchdogSec=` is.
pub const WATCHDOG_USEC: &str = "WATCHDOG_USEC";
/// The process the watchdog settings are meant for.
pub const WATCHDOG_PID: &str = "WATCHDOG_PID";

/// Why `$NOTIFY_SOCKET` names no usable address.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// Neither an absolute path nor `@name`.
    #[error("NOTIFY_SOCKET '{0}' is neither an absolute path nor an abstract '@' name")]
    BadAddress(String),
    /// The path or name does not fit a `sockaddr_un`.
    #[error("NOTIFY_SOCKET '{0}': {1}")]
    Address(String, io::Error),
    /// The sending socket could not be made.
    #[error("notification socket: {0}")]
    Socket(io::Error),
}

/// Parses a `$NOTIFY_SOCKET` value: an absolute path, or `@name` for the abstract namespace.
pub fn parse_address(value: &str) -> Result<SocketAddr, NotifyError> {
    if let Some(name) = value.strip_prefix('@') {
        SocketAddr::from_abstract_name(name.as_bytes()).map_err(|e| NotifyError::Address(value.to_owned(), e))
    } else if value.starts_with('/') {
        SocketAddr::from_pathname(value).map_err(|e| NotifyError::Address(value.to_owned(), e))
    } else {
        // systemd also accepts vsock:CID:PORT; a daemon on the host never gets one.
        Err(NotifyError::BadAddress(value.to_owned()))
    }
}

/// The watchdog settings from `$WATCHDOG_USEC` and `$WATCHDOG_PID`: the timeout when it is set,
/// positive and meant for `pid` (a `$WATCHDOG_PID` that is unset or equal to `pid`).
pub fn watchdog_timeout(usec: Option<&str>, watchdog_pid: Option<&str>, pid: u32) -> Option<Duration> {
    let usec: u64 = usec?.trim().parse().ok().filter(|&u| u > 0)?;
    match watchdog_pid {
        Some(p) if p.trim().parse::<u32>().ok() != Some(pid) => None,
        _ => Some(Duration::from_micros(usec)),
    }
}

/// One notification, built field by field: `KEY=VALUE` lines. Values are made single-line
/// (a newline would start a new assignment).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message(String);

impl Message {
    /// An empty message.
    pub fn new() -> Self {
        Message(String::new())
    }

    /// Adds `key=value`; newlines in `value` become spaces.
    #[must_use]
    pub fn field(mut self, key: &str, value: &str) -> Self {
        self.0.push_str(key);
        self.0.push('=');
        self.0.extend(value.chars().map(|c| if c == '\n' || c == '\r' { ' ' } else { c }));
        self.0.push('\n');
        self
    }

    /// The datagram's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The current `CLOCK_MONOTONIC` time in microseconds, as `MONOTONIC_USEC` wants it.
pub fn monotonic_usec() -> u64 {
    match nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC) {
        Ok(ts) => {
            let secs = u64::try_from(ts.tv_sec()).unwrap_or(0);
            let nanos = u64::try_from(ts.tv_nsec()).unwrap_or(0);
            secs.saturating_mul(1_000_000).saturating_add(nanos / 1_000)
        }
        Err(_) => 0,
    }
}

/// The sender of systemd notifications. Cheap to share by reference; every method is a no-op
/// when the service manager asked for none.
#[derive(Debug)]
pub struct Notify {
    target: Option<(UnixDatagram, SocketAddr)>,
    watchdog: Option<Duration>,
}

impl Notify {
    /// A sender that sends nothing.
    pub fn disabled() -> Self {
        Notify { target: None, watchdog: None }
    }

    /// A sender to the socket `$NOTIFY_SOCKET` names, with the watchdog `$WATCHDOG_USEC` and
    /// `$WATCHDOG_PID` ask for; [`Notify::disabled`] without `$NOTIFY_SOCKET`. The environment
    /// is left as it is.
    pub fn from_env() -> Result<Self, NotifyError> {
        let socket = std::env::var_os(NOTIFY_SOCKET).map(|v| v.to_string_lossy().into_owned());
        let usec = std::env::var(WATCHDOG_USEC).ok();
        let wpid = std::env::var(WATCHDOG_PID).ok();
        Self::from_values(socket.as_deref(), usec.as_deref(), wpid.as_deref())
    }

    /// What [`Notify::from_env`] makes of these values of `$NOTIFY_SOCKET`, `$WATCHDOG_USEC`
    /// and `$WATCHDOG_PID`.
    pub fn from_values(socket: Option<&str>, watchdog_usec: Option<&str>, watchdog_pid: Option<&str>) -> Result<Self, NotifyError> {
        match socket {
            None => Ok(Self::disabled()),
            Some(s) => Self::to_address(s, watchdog_timeout(watchdog_usec, watchdog_pid, std::process::id())),
        }
    }

    /// [`Notify::from_env`], then removes `$NOTIFY_SOCKET`, `$WATCHDOG_USEC` and
    /// `$WATCHDOG_PID` from the environment, so that the scripts the daemon runs do not inherit
    /// them (a script's `systemd-notify` would otherwise speak for the daemon).
    ///
    /// Call it before any other thread is started: changing the environment races with every
    /// thread that reads it.
    pub fn take_from_env() -> Result<Self, NotifyError> {
        let n = Self::from_env();
        for v in [NOTIFY_SOCKET, WATCHDOG_USEC, WATCHDOG_PID] {
            std::env::remove_var(v);
        }
        n
    }

    /// A sender to `address` (a path or `@name`), with an optional watchdog timeout.
    pub fn to_address(address: &str, watchdog: Option<Duration>) -> Result<Self, NotifyError> {
        let addr = parse_address(address)?;
        let sock = UnixDatagram::unbound().map_err(NotifyError::Socket)?;
        // A datagram to a listener whose queue is full must not block the loop; it is dropped.
        sock.set_nonblocking(true).map_err(NotifyError::Socket)?;
        Ok(Notify { target: Some((sock, addr)), watchdog })
    }

    /// Whether a service manager listens.
    pub fn is_enabled(&self) -> bool {
        self.target.is_some()
    }

    /// Sends `msg` as one datagram. `Ok` when there is nobody to send to.
    pub fn send(&self, msg: &Message) -> io::Result<()> {
        let Some((sock, addr)) = &self.target else {
            return Ok(());
        };
        sock.send_to_addr(msg.as_str().as_bytes(), addr).map(|_| ())
    }

    /// Sends and logs a failure at debug level: a lost notification is the service manager's
    /// concern and never the daemon's.
    fn send_logged(&self, msg: &Message) {
        if let Err(e) = self.send(msg) {
            tracing::debug!(error = %e, "systemd notification not sent");
        }
    }

    /// `READY=1` with a status line and our PID: start-up (or a reload) is complete.
    pub fn ready(&self, status: &str) {
        self.send_logged(&Message::new().field("READY", "1").field("STATUS", status).field("MAINPID", &std::process::id().to_string()));
    }

    /// `RELOADING=1` with `MONOTONIC_USEC`: a reload has started; [`Notify::ready`] ends it.
    pub fn reloading(&self) {
        self.send_logged(
            &Message::new().field("RELOADING", "1").field("MONOTONIC_USEC", &monotonic_usec().to_string()).field("STATUS", "reloading"),
        );
    }

    /// `STATUS=`: a one-line summary for `systemctl status`.
    pub fn status(&self, status: &str) {
        self.send_logged(&Message::new().field("STATUS", status));
    }

    /// `STOPPING=1`: shutdown has begun.
    pub fn stopping(&self) {
        self.send_logged(&Message::new().field("STOPPING", "1").field("STATUS", "stopping"));
    }

    /// The watchdog timeout systemd set for us, when it set one.
    pub fn watchdog_timeout(&self) -> Option<Duration> {
        self.watchdog.filter(|_| self.target.is_some())
    }

    /// A timer to kick the watchdog on: half the timeout, as sd_watchdog_enabled(3) advises;
    /// a timer that never fires without a watchdog.
    ///
    /// # Panics
    ///
    /// With a watchdog, when called outside a tokio runtime.
    pub fn watchdog(&self) -> Watchdog<'_> {
        let interval = self.watchdog_timeout().map(|t| {
            let period = (t / 2).max(Duration::from_millis(1));
            let mut i = tokio::time::interval(period);
            // A late loop kicks once and goes on; a burst of kicks would hide nothing.
            i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            i
        });
        Watchdog { notify: self, interval }
    }
}

/// The watchdog's timer, driven by the loop it vouches for. Without a watchdog,
/// [`Watchdog::tick`] never completes, so it can sit in a `select!` unconditionally.
#[derive(Debug)]
pub struct Watchdog<'a> {
    notify: &'a Notify,
    interval: Option<tokio::time::Interval>,
}

impl Watchdog<'_> {
    /// Completes when the next `WATCHDOG=1` is due; never without a watchdog. Cancel-safe.
    pub async fn tick(&mut self) {
        match &mut self.interval {
            Some(i) => {
                i.tick().await;
            }
            None => std::future::pending().await,
        }
    }

    /// Sends `WATCHDOG=1`. Call it from the loop, when [`Watchdog::tick`] completes.
    pub fn kick(&self) {
        self.notify.send_logged(&Message::new().field("WATCHDOG", "1"));
    }

    /// The kick period, when there is a watchdog.
    pub fn period(&self) -> Option<Duration> {
        self.interval.as_ref().map(tokio::time::Interval::period)
    }
}

/// The receiving end of notifications: what the service manager is, for the tests and for
/// `hav-linux` waiting for its detached daemon to become ready.
#[derive(Debug)]
pub struct Listener {
    sock: UnixDatagram,
    address: String,
}

impl Listener {
    /// Binds an abstract socket named `name` (given without the `@`).
    pub fn bind_abstract(name: &str) -> io::Result<Self> {
        let addr = SocketAddr::from_abstract_name(name.as_bytes())?;
        let sock = UnixDatagram::bind_addr(&addr)?;
        Ok(Listener { sock, address: format!("@{name}") })
    }

    /// Binds a socket file at `path`.
    pub fn bind_path(path: &std::path::Path) -> io::Result<Self> {
        let sock = UnixDatagram::bind(path)?;
        Ok(Listener { sock, address: path.to_string_lossy().into_owned() })
    }

    /// The value to put in `$NOTIFY_SOCKET` for senders to reach this listener.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The next datagram, split into its `KEY=VALUE` fields; `None` after `timeout` without one.
    pub fn recv_timeout(&self, timeout: Duration) -> io::Result<Option<Vec<(String, String)>>> {
        self.sock.set_read_timeout(Some(timeout.max(Duration::from_micros(1))))?;
        let mut buf = [0u8; 4096];
        match self.sock.recv(&mut buf) {
            Ok(n) => Ok(Some(parse_fields(&buf[..n]))),
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// Splits a notification into its `KEY=VALUE` lines (lines without `=` are skipped).
pub fn parse_fields(datagram: &[u8]) -> Vec<(String, String)> {
    String::from_utf8_lossy(datagram)
        .lines()
        .filter_map(|l| l.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field<'a>(fields: &'a [(String, String)], key: &str) -> Option<&'a str> {
        fields.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    fn listener(tag: &str) -> Listener {
        Listener::bind_abstract(&format!("hav-sdnotify-test-{tag}-{}", std::process::id())).expect("bind")
    }

    fn recv(l: &Listener) -> Vec<(String, String)> {
        l.recv_timeout(Duration::from_secs(2)).expect("recv").expect("a datagram")
    }

    #[test]
    fn test_parse_address() {
        assert!(parse_address("/run/systemd/notify").is_ok());
        assert!(parse_address("@hav/notify").is_ok());
        assert!(matches!(parse_address("relative/path"), Err(NotifyError::BadAddress(_))));
        assert!(matches!(parse_address(""), Err(NotifyError::BadAddress(_))));
        let long = format!("/{}", "x".repeat(200));
        assert!(matches!(parse_address(&long), Err(NotifyError::Address(..))));
    }

    #[test]
    fn test_message_is_one_line_per_field() {
        let m = Message::new().field("READY", "1").field("STATUS", "two\nlines\r");
        assert_eq!(m.as_str(), "READY=1\nSTATUS=two lines \n");
        assert_eq!(parse_fields(m.as_str().as_bytes()), vec![("READY".into(), "1".into()), ("STATUS".into(), "two lines ".into())]);
    }

    #[test]
    fn test_watchdog_timeout_from_env_values() {
        assert_eq!(watchdog_timeout(Some("30000000"), None, 7), Some(Duration::from_secs(30)));
        assert_eq!(watchdog_timeout(Some("30000000"), Some("7"), 7), Some(Duration::from_secs(30)));
        assert_eq!(watchdog_timeout(Some("30000000"), Some("8"), 7), None, "meant for another process");
        assert_eq!(watchdog_timeout(Some("0"), None, 7), None);
        assert_eq!(watchdog_timeout(Some("soon"), None, 7), None);
        assert_eq!(watchdog_timeout(None, Some("7"), 7), None);
    }

    #[test]
    fn test_disabled_sends_nothing_and_never_ticks() {
        let n = Notify::disabled();
        assert!(!n.is_enabled());
        n.ready("x");
        n.stopping();
        assert!(n.send(&Message::new().field("READY", "1")).is_ok());
        assert_eq!(n.watchdog_timeout(), None);
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("rt");
        rt.block_on(async {
            let mut w = n.watchdog();
            assert_eq!(w.period(), None);
            let r = tokio::time::timeout(Duration::from_millis(50), w.tick()).await;
            assert!(r.is_err(), "a disabled watchdog never ticks");
        });
    }

    #[test]
    fn test_lifecycle_datagrams_on_an_abstract_socket() {
        let l = listener("life");
        let n = Notify::to_address(l.address(), None).expect("notify");
        assert!(n.is_enabled());

        n.ready("2 instances: 1 MASTER, 1 BACKUP");
        let f = recv(&l);
        assert_eq!(field(&f, "READY"), Some("1"));
        assert_eq!(field(&f, "STATUS"), Some("2 instances: 1 MASTER, 1 BACKUP"));
        assert_eq!(field(&f, "MAINPID"), Some(std::process::id().to_string().as_str()));

        let before = monotonic_usec();
        n.reloading();
        let f = recv(&l);
        assert_eq!(field(&f, "RELOADING"), Some("1"));
        let usec: u64 = field(&f, "MONOTONIC_USEC").expect("MONOTONIC_USEC").parse().expect("a number");
        assert!(usec >= before && usec <= monotonic_usec(), "{before} <= {usec}");

        n.ready("reloaded");
        assert_eq!(field(&recv(&l), "READY"), Some("1"));

        n.status("1 instance: MASTER");
        assert_eq!(recv(&l), vec![("STATUS".to_owned(), "1 instance: MASTER".to_owned())]);

        n.stopping();
        assert_eq!(field(&recv(&l), "STOPPING"), Some("1"));
        assert!(l.recv_timeout(Duration::from_millis(20)).expect("recv").is_none());
    }

    #[test]
    fn test_path_socket() {
        let dir = std::env::temp_dir().join(format!("hav-sdnotify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("notify");
        let _ = std::fs::remove_file(&path);
        let l = Listener::bind_path(&path).expect("bind");
        let n = Notify::to_address(l.address(), None).expect("notify");
        n.ready("up");
        assert_eq!(field(&recv(&l), "READY"), Some("1"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn test_a_gone_listener_is_not_an_error_of_the_daemon() {
        let l = listener("gone");
        let n = Notify::to_address(l.address(), None).expect("notify");
        drop(l);
        assert!(n.send(&Message::new().field("READY", "1")).is_err());
        // The logged variants swallow it.
        n.ready("up");
        n.stopping();
    }

    #[test]
    fn test_watchdog_kicks_at_half_the_timeout() {
        let l = listener("wd");
        let n = Notify::to_address(l.address(), Some(Duration::from_millis(200))).expect("notify");
        assert_eq!(n.watchdog_timeout(), Some(Duration::from_millis(200)));
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("rt");
        let t0 = std::time::Instant::now();
        rt.block_on(async {
            let mut w = n.watchdog();
            assert_eq!(w.period(), Some(Duration::from_millis(100)));
            // The first tick of a tokio interval completes at once; the next ones a period apart.
            for _ in 0..3 {
                w.tick().await;
                w.kick();
            }
        });
        let took = t0.elapsed();
        assert!(took >= Duration::from_millis(190) && took < Duration::from_secs(2), "{took:?}");
        for _ in 0..3 {
            assert_eq!(recv(&l), vec![("WATCHDOG".to_owned(), "1".to_owned())]);
        }
    }

    #[test]
    fn test_from_values_as_the_environment_gives_them() {
        // The environment itself is left alone: tests run on parallel threads.
        let l = listener("env");
        let me = std::process::id().to_string();
        let n = Notify::from_values(Some(l.address()), Some("4000000"), Some(&me)).expect("notify");
        assert_eq!(n.watchdog_timeout(), Some(Duration::from_secs(4)));
        n.ready("up");
        assert_eq!(field(&recv(&l), "READY"), Some("1"));
        let other = Notify::from_values(Some(l.address()), Some("4000000"), Some("1")).expect("notify");
        assert!(other.is_enabled() && other.watchdog_timeout().is_none(), "a watchdog meant for pid 1");
        assert!(!Notify::from_values(None, Some("4000000"), None).expect("no socket is no error").is_enabled());
        assert!(Notify::from_values(Some("notify"), None, None).is_err());
    }
}
