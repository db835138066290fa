//! Logging to the host's syslog (`-S FACILITY`, and a detached daemon), as keepalived does.
//!
//! Each tracing event becomes one datagram on the local syslog socket (`/dev/log`, read by
//! rsyslog, syslog-ng or journald): `<PRI>hav-linux[PID]: target: message fields`, the format
//! of RFC 3164 without the optional timestamp (the receiver stamps it), with the facility from
//! `-S` and the severity from the event's level.
//!
//! The socket is non-blocking: a syslog daemon that stops reading costs a lost line (counted,
//! and reported on stderr when it happens first), never a VRRP loop stalled on a full socket.
//! When the daemon restarts, the next line reconnects.

use std::io;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tracing::{Level, Metadata};
use tracing_subscriber::fmt::MakeWriter;

/// The local syslog socket.
pub const DEFAULT_SOCKET: &str = "/dev/log";

/// Names another syslog socket than [`DEFAULT_SOCKET`] (tests; hosts with the socket elsewhere).
pub const SOCKET_ENV: &str = "HAV_SYSLOG_SOCKET";

/// The ident in each line.
pub const IDENT: &str = "hav-linux";

/// The syslog facility code of a `-S` value as keepalived takes it: `0`-`7` are local0-local7
/// (keepalived's numbering), and the names local0-local7, user and daemon. `None` for anything
/// else.
pub fn facility_code(s: &str) -> Option<u8> {
    match s {
        "user" => Some(1),
        "daemon" => Some(3),
        _ => {
            let n = s.strip_prefix("local").unwrap_or(s);
            match n.as_bytes() {
                [d @ b'0'..=b'7'] => Some(16 + (d - b'0')),
                _ => None,
            }
        }
    }
}

/// The facility keepalived logs to without `-S`.
pub const DAEMON: u8 = 3;

/// The syslog severity of a tracing level: error 3, warning 4, info 6, debug and trace 7.
pub fn severity(level: &Level) -> u8 {
    match *level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        _ => 7,
    }
}

/// The head of a line: `<PRI>IDENT[PID]: `.
pub fn head(facility: u8, severity: u8, pid: u32) -> String {
    format!("<{}>{IDENT}[{pid}]: ", u32::from(facility) * 8 + u32::from(severity))
}

struct Shared {
    path: PathBuf,
    sock: Mutex<Option<UnixDatagram>>,
    facility: u8,
    pid: u32,
    dropped: AtomicU64,
}

impl Shared {
    fn connect(&self) -> io::Result<UnixDatagram> {
        let s = UnixDatagram::unbound()?;
        s.connect(&self.path)?;
        s.set_nonblocking(true)?;
        Ok(s)
    }

    /// Sends one line; reconnects once when the receiver went away (a restarted syslog daemon).
    fn send(&self, line: &[u8]) {
        let mut guard = self.sock.lock().unwrap_or_else(|p| p.into_inner());
        for _ in 0..2 {
            if guard.is_none() {
                *guard = self.connect().ok();
            }
            let Some(s) = guard.as_ref() else { break };
            match s.send(line) {
                Ok(_) => return,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => *guard = None,
            }
        }
        if self.dropped.fetch_add(1, Ordering::Relaxed) == 0 {
            eprintln!("hav-linux: syslog {}: a line was lost (the socket is full or gone); further losses are counted", self.path.display());
        }
    }
}

/// A tracing writer that sends each event to syslog as one datagram.
#[derive(Clone)]
pub struct Syslog(Arc<Shared>);

impl Syslog {
    /// Connects to the syslog socket ([`SOCKET_ENV`], else [`DEFAULT_SOCKET`]) with `facility`.
    /// `Err` when nothing listens there.
    pub fn connect(facility: u8) -> io::Result<Syslog> {
        let path = std::env::var_os(SOCKET_ENV).map(PathBuf::from).unwrap_or_else(|| PathBuf::from(DEFAULT_SOCKET));
        let shared = Shared { path, sock: Mutex::new(None), facility, pid: std::process::id(), dropped: AtomicU64::new(0) };
        let s = shared.connect().map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", shared.path.display())))?;
        *shared.sock.lock().unwrap_or_else(|p| p.into_inner()) = Some(s);
        Ok(Syslog(Arc::new(shared)))
    }

    /// Lines lost so far.
    pub fn dropped(&self) -> u64 {
        self.0.dropped.load(Ordering::Relaxed)
    }
}

/// One event being formatted; sent when dropped.
pub struct Line {
    shared: Arc<Shared>,
    buf: Vec<u8>,
    /// Where the message starts, after the head.
    start: usize,
}

impl io::Write for Line {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for Line {
    fn drop(&mut self) {
        while self.buf.last() == Some(&b'\n') {
            self.buf.pop();
        }
        if self.buf.len() > self.start {
            self.shared.send(&self.buf);
        }
    }
}

impl<'a> MakeWriter<'a> for Syslog {
    type Writer = Line;

    fn make_writer(&'a self) -> Line {
        self.line(6)
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> Line {
        self.line(severity(meta.level()))
    }
}

impl Syslog {
    fn line(&self, sev: u8) -> Line {
        let mut buf = Vec::with_capacity(256);
        buf.extend_from_slice(head(self.0.facility, sev, self.0.pid).as_bytes());
        let start = buf.len();
        Line { shared: self.0.clone(), buf, start }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    #[test]
    fn facilities_as_keepalived_numbers_them() {
        assert_eq!(facility_code("0"), Some(16));
        assert_eq!(facility_code("7"), Some(23));
        assert_eq!(facility_code("local3"), Some(19));
        assert_eq!(facility_code("daemon"), Some(3));
        assert_eq!(facility_code("user"), Some(1));
        for bad in ["8", "local8", "kern", "", "local", "03"] {
            assert_eq!(facility_code(bad), None, "{bad}");
        }
    }

    #[test]
    fn one_datagram_per_event_with_priority_and_ident() {
        let dir = std::env::temp_dir().join(format!("hav-syslog-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("log");
        let _ = std::fs::remove_file(&path);
        let rx = UnixDatagram::bind(&path).expect("bind");
        let shared = Shared { path: path.clone(), sock: Mutex::new(None), facility: 19, pid: 42, dropped: AtomicU64::new(0) };
        let s = Syslog(Arc::new(shared));
        {
            let mut w = s.line(severity(&Level::WARN));
            w.write_all(b"hav_linux::daemon: (VI_1) entering MASTER\n").expect("write");
        }
        let mut buf = [0u8; 512];
        let n = rx.recv(&mut buf).expect("recv");
        // local3 (19) * 8 + warning (4) = 156
        assert_eq!(std::str::from_utf8(&buf[..n]).expect("utf8"), "<156>hav-linux[42]: hav_linux::daemon: (VI_1) entering MASTER");
        // The receiver restarts: the next line reconnects.
        drop(rx);
        std::fs::remove_file(&path).expect("rm");
        let rx = UnixDatagram::bind(&path).expect("bind again");
        {
            let mut w = s.make_writer();
            w.write_all(b"again").expect("write");
        }
        let n = rx.recv(&mut buf).expect("recv after restart");
        assert_eq!(&buf[..n], b"<158>hav-linux[42]: again");
        // Nobody listening: the line is lost and counted, nothing blocks or panics.
        drop(rx);
        std::fs::remove_file(&path).expect("rm");
        drop(s.make_writer());
        {
            let mut w = s.make_writer();
            w.write_all(b"lost").expect("write");
        }
        assert_eq!(s.dropped(), 1);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
