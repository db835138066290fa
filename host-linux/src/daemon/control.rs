//! The control socket: a Unix stream socket carrying one JSON request per line and one JSON
//! reply per line.
//!
//! Requests: `{"cmd":"status"}`, `{"cmd":"standby","instance":"VI_1"}`, `{"cmd":"takeover",...}`,
//! `{"cmd":"resume",...}`, `{"cmd":"reload"}`, `{"cmd":"metrics"}` (Prometheus text in `text`).
//! Replies: `{"ok":true,...}` or
//! `{"ok":false,"error":"..."}`.
//!
//! Who may talk to it: root, the daemon's own user, and members (primary or supplementary group)
//! of the socket file's group; the file is mode 0660, and the peer's credentials are checked
//! again on every connection (`SO_PEERCRED`), so a socket reachable by more users through a
//! directory bind mount or a `chmod` still refuses them with `permission denied`. To let a group
//! of operators in, `chgrp` the socket.
//!
//! What a client may cost is bounded ([`Limits::CONTROL`]): a request line of 4 KiB (a longer one
//! is answered with an error and the connection closed), 16 clients at once (more are answered
//! `too many clients` and closed), 5 s to send a request or take a reply.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio::task::JoinHandle;

use super::listen::{AcceptErrors, Limits};
use crate::ratelimit::RateLimit;

/// A request to the daemon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// `status`, `standby`, `takeover`, `resume`, `reload` or `metrics`.
    pub cmd: String,
    /// The instance, for the admin commands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
}

/// What the daemon answers a request with.
#[derive(Debug)]
pub enum Reply {
    /// A JSON reply, written as one line.
    Json(serde_json::Value),
    /// A copy of the VRRP state (for `metrics` and `snapshot`), rendered where the reply is
    /// written, so that the VRRP loop never formats it.
    Snapshot(Box<super::snapshot::Snapshot>),
}

impl Reply {
    /// The reply as the control socket writes it (`{"ok":true,"text":...}` for the metrics).
    pub fn into_json(self) -> serde_json::Value {
        match self {
            Reply::Json(v) => v,
            Reply::Snapshot(s) => serde_json::json!({"ok": true, "text": super::metrics::render(&s)}),
        }
    }
}

impl From<serde_json::Value> for Reply {
    fn from(v: serde_json::Value) -> Self {
        Reply::Json(v)
    }
}

/// A request with the channel its reply goes to.
pub type Envelope = (Request, oneshot::Sender<Reply>);

/// Why the control socket could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// A daemon already answers on the socket.
    #[error("another hav-linux is answering on {}: stop it first, or give each daemon its own --control and --pid", .0.display())]
    InUse(PathBuf),
    /// Something that is not a socket is in the way; it is left alone.
    #[error("{} exists and is not a socket; not replacing it", .0.display())]
    NotASocket(PathBuf),
    /// Creating, binding or setting up the socket failed.
    #[error("control socket {}: {source}", .path.display())]
    Io {
        /// The socket path.
        path: PathBuf,
        /// What failed.
        source: io::Error,
    },
}

/// The listening control socket. Dropping it stops accepting and removes the socket file
/// (sessions already running finish their current request).
#[derive(Debug)]
pub struct ControlSocket {
    path: PathBuf,
    accept: JoinHandle<()>,
}

impl ControlSocket {
    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        self.accept.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Listens on `path` (replacing a stale socket) and forwards requests to `tx`, with
/// [`Limits::CONTROL`]. Refuses with [`ControlError::InUse`] when a daemon answers on `path`.
///
/// # Panics
/// When called outside a tokio runtime.
pub fn serve(path: &Path, tx: mpsc::Sender<Envelope>) -> Result<ControlSocket, ControlError> {
    serve_with(path, tx, Limits::CONTROL)
}

/// [`serve`] with other limits (tests use short timeouts).
///
/// # Panics
/// When called outside a tokio runtime.
pub fn serve_with(path: &Path, tx: mpsc::Sender<Envelope>, limits: Limits) -> Result<ControlSocket, ControlError> {
    let io_err = |source| ControlError::Io { path: path.to_owned(), source };
    if let Ok(md) = std::fs::symlink_metadata(path) {
        use std::os::unix::fs::FileTypeExt;
        if !md.file_type().is_socket() {
            return Err(ControlError::NotASocket(path.to_owned()));
        }
        // A socket nobody answers on is what a killed daemon leaves behind; one that answers
        // belongs to a running daemon, and taking it over would cut that daemon off.
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(ControlError::InUse(path.to_owned()));
        }
        std::fs::remove_file(path).map_err(io_err)?;
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io_err)?;
    }
    let listener = UnixListener::bind(path).map_err(io_err)?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660)).map_err(io_err)?;
    }
    let gid = std::os::unix::fs::MetadataExt::gid(&std::fs::metadata(path).map_err(io_err)?);
    let accept = tokio::spawn(accept_loop(listener, path.to_owned(), gid, tx, limits));
    Ok(ControlSocket { path: path.to_owned(), accept })
}

async fn accept_loop(listener: UnixListener, path: PathBuf, bound_gid: u32, tx: mpsc::Sender<Envelope>, limits: Limits) {
    let slots = Arc::new(Semaphore::new(limits.max_clients));
    let mut errors = AcceptErrors::new("control socket");
    let mut denied_log = RateLimit::new(1, std::time::Duration::from_secs(1));
    let daemon_uid = nix::unistd::geteuid().as_raw();
    loop {
        let stream = match listener.accept().await {
            Ok((s, _)) => {
                errors.succeeded();
                s
            }
            Err(e) => {
                tokio::time::sleep(errors.failed(&e)).await;
                continue;
            }
        };
        // The group is read per connection so that a `chgrp` of the socket takes effect at once.
        let socket_gid = std::fs::metadata(&path).map(|m| std::os::unix::fs::MetadataExt::gid(&m)).unwrap_or(bound_gid);
        let cred = match stream.peer_cred() {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(error = %e, "control: no peer credentials; closing");
                continue;
            }
        };
        let mut peer = Peer { uid: cred.uid(), gid: cred.gid(), groups: Vec::new() };
        if !allowed(&peer, daemon_uid, socket_gid) {
            // Only now, for a peer the ids alone do not let in, are its groups read.
            peer.groups = peer_groups(cred.pid(), peer.uid);
        }
        if !allowed(&peer, daemon_uid, socket_gid) {
            if let Some(suppressed) = denied_log.check_now() {
                tracing::warn!(uid = peer.uid, gid = peer.gid, suppressed, "control: permission denied");
            }
            reject(&stream, "permission denied");
            continue;
        }
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            reject(&stream, "too many clients");
            continue;
        };
        let tx = tx.clone();
        tokio::spawn(async move {
            if let Err(e) = session(stream, tx, limits).await {
                tracing::debug!(error = %e, "control session ended");
            }
            drop(slot);
        });
    }
}

/// Answers `error` without waiting (a client that does not read loses the reply) and closes.
fn reject(stream: &UnixStream, error: &str) {
    let _ = stream.try_write(&reply_line(&serde_json::json!({"ok": false, "error": error})));
}

fn reply_line(v: &serde_json::Value) -> Vec<u8> {
    let mut out = serde_json::to_vec(v).unwrap_or_else(|_| b"{\"ok\":false}".to_vec());
    out.push(b'\n');
    out
}

/// One line of a session.
enum Line {
    /// The client closed.
    End,
    /// A request line, without its newline.
    Request,
    /// More than the limit without a newline.
    TooLong,
}

/// Reads one line of at most `max` bytes (plus its newline) into `buf`.
async fn read_line<R: tokio::io::AsyncBufRead + Unpin>(r: &mut R, buf: &mut Vec<u8>, max: usize) -> io::Result<Line> {
    buf.clear();
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    let n = r.take(limit).read_until(b'\n', buf).await?;
    if n == 0 {
        return Ok(Line::End);
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
        return Ok(Line::Request);
    }
    // No newline: either the limit cut the line, or the client closed after a last line.
    Ok(if buf.len() > max { Line::TooLong } else { Line::Request })
}

async fn session(stream: UnixStream, tx: mpsc::Sender<Envelope>, limits: Limits) -> io::Result<()> {
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r);
    let mut buf = Vec::new();
    loop {
        let line = match tokio::time::timeout(limits.io_timeout, read_line(&mut r, &mut buf, limits.max_request)).await {
            Ok(l) => l?,
            Err(_) => {
                tracing::debug!("control: client sent nothing for {:?}; closing", limits.io_timeout);
                return Ok(());
            }
        };
        let (reply, close) = match line {
            Line::End => return Ok(()),
            Line::TooLong => {
                let error = format!("request longer than {} bytes", limits.max_request);
                (serde_json::json!({"ok": false, "error": error}), true)
            }
            Line::Request => match serde_json::from_slice::<Request>(&buf) {
                Ok(req) => {
                    let (otx, orx) = oneshot::channel();
                    if tx.send((req, otx)).await.is_err() {
                        return Ok(());
                    }
                    let r = orx.await.map(Reply::into_json).unwrap_or_else(|_| serde_json::json!({"ok": false, "error": "daemon stopping"}));
                    (r, false)
                }
                Err(e) => (serde_json::json!({"ok": false, "error": format!("bad request: {e}")}), false),
            },
        };
        match tokio::time::timeout(limits.io_timeout, w.write_all(&reply_line(&reply))).await {
            Ok(r) => r?,
            Err(_) => {
                tracing::debug!("control: client took no reply for {:?}; closing", limits.io_timeout);
                return Ok(());
            }
        }
        if close {
            return Ok(());
        }
    }
}

/// Who is on the other end of a control connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// Effective user id at `connect` time.
    pub uid: u32,
    /// Effective group id at `connect` time.
    pub gid: u32,
    /// Supplementary groups (empty when unknown).
    pub groups: Vec<u32>,
}

/// The supplementary groups of the peer process `pid` (from `SO_PEERCRED`), which runs as `uid`.
fn peer_groups(pid: Option<i32>, uid: u32) -> Vec<u32> {
    pid.and_then(|p| std::fs::read_to_string(format!("/proc/{p}/status")).ok()).map(|s| groups_of(&s, uid)).unwrap_or_default()
}

/// The supplementary groups in a `/proc/PID/status` text, provided its effective uid is `uid`.
///
/// `SO_PEERCRED` does not carry supplementary groups and `SO_PEERGROUPS` needs a raw
/// `getsockopt`; `/proc` is read instead. The PID may have been reused by the time it is read,
/// so the process found there must at least run as the same user, else no group counts.
fn groups_of(status: &str, uid: u32) -> Vec<u32> {
    let field = |name: &str| status.lines().find_map(|l| l.strip_prefix(name)).map(str::split_whitespace);
    let euid = field("Uid:").and_then(|mut f| f.nth(1)).and_then(|v| v.parse::<u32>().ok());
    if euid != Some(uid) {
        return Vec::new();
    }
    field("Groups:").map(|f| f.filter_map(|g| g.parse().ok()).collect()).unwrap_or_default()
}

/// Whether `peer` may use the control socket: root, the daemon's own user (`daemon_uid`), or a
/// member of the socket file's group (`socket_gid`), by its primary or a supplementary group.
pub fn allowed(peer: &Peer, daemon_uid: u32, socket_gid: u32) -> bool {
    peer.uid == 0 || peer.uid == daemon_uid || peer.gid == socket_gid || peer.groups.contains(&socket_gid)
}

/// Sends one request to the daemon at `path` and returns its reply (blocking client for the CLI).
pub fn request(path: &Path, req: &Request) -> Result<serde_json::Value, String> {
    use std::io::{BufRead, Write};
    let mut s = std::os::unix::net::UnixStream::connect(path)
        .map_err(|e| format!("{}: cannot reach the daemon: {e}", path.display()))?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(10))).map_err(|e| e.to_string())?;
    let mut line = serde_json::to_vec(req).map_err(|e| e.to_string())?;
    line.push(b'\n');
    // A daemon that refuses us (permission denied, too many clients) answers and closes at
    // once, possibly before our request is written; its answer is still there to read.
    let sent = s.write_all(&line);
    let mut reply = String::new();
    let read = std::io::BufReader::new(s).read_line(&mut reply);
    if reply.is_empty() {
        if let Err(e) = sent {
            return Err(format!("sending the request: {e}"));
        }
        read.map_err(|e| format!("reading the reply: {e}"))?;
        return Err("the daemon closed the connection without a reply".into());
    }
    serde_json::from_str(&reply).map_err(|e| format!("bad reply from the daemon: {e}"))
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead as _, Read as _, Write as _};
    use std::time::Duration;

    use super::*;

    fn temp_sock(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("hav-ctl-{}-{name}", std::process::id())).join("ctl.sock")
    }

    /// A daemon stand-in answering every request with `{"ok":true,"cmd":CMD}`.
    fn answer(mut rx: mpsc::Receiver<Envelope>) {
        tokio::spawn(async move {
            while let Some((req, reply)) = rx.recv().await {
                let _ = reply.send(serde_json::json!({"ok": true, "cmd": req.cmd}).into());
            }
        });
    }

    fn limits() -> Limits {
        Limits { max_request: 64, max_clients: 2, io_timeout: Duration::from_millis(300) }
    }

    /// Connects, sends `send`, and reads the reply line then whether the daemon closed
    /// (blocking, off the runtime).
    fn exchange(path: &Path, send: &[u8]) -> (String, bool) {
        let mut s = std::os::unix::net::UnixStream::connect(path).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
        let _ = s.write_all(send);
        let mut r = std::io::BufReader::new(s);
        let mut line = String::new();
        r.read_line(&mut line).expect("reply");
        let mut rest = [0u8; 1];
        // A reset is a close too: the daemon closed with our request unread.
        let closed = match r.read(&mut rest) {
            Ok(n) => n == 0,
            Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
        };
        (line, closed)
    }

    #[tokio::test]
    async fn test_request_and_refusal_of_a_second_daemon() {
        let path = temp_sock("second");
        let (tx, rx) = mpsc::channel(4);
        answer(rx);
        let ctl = serve_with(&path, tx, limits()).expect("serve");
        let p = path.clone();
        let reply = tokio::task::spawn_blocking(move || request(&p, &Request { cmd: "status".into(), instance: None }))
            .await
            .expect("join")
            .expect("reply");
        // Tests run as root here, or as the daemon's own user: both allowed.
        assert_eq!(reply, serde_json::json!({"ok": true, "cmd": "status"}));
        let (tx2, _rx2) = mpsc::channel(4);
        let err = serve_with(&path, tx2, limits()).expect_err("a daemon answers");
        assert_eq!(
            err.to_string(),
            format!(
                "another hav-linux is answering on {}: stop it first, or give each daemon its own --control and --pid",
                path.display()
            )
        );
        assert!(path.exists(), "the refused daemon left the running one's socket alone");
        drop(ctl);
        assert!(!path.exists());
        let _ = std::fs::remove_dir_all(path.parent().expect("dir"));
    }

    #[tokio::test]
    async fn test_stale_socket_is_replaced() {
        let path = temp_sock("stale");
        std::fs::create_dir_all(path.parent().expect("dir")).expect("dir");
        drop(std::os::unix::net::UnixListener::bind(&path).expect("bind"));
        assert!(path.exists());
        let (tx, rx) = mpsc::channel(4);
        answer(rx);
        let ctl = serve_with(&path, tx, limits()).expect("a socket nobody answers on is taken over");
        let p = path.clone();
        let (line, _) = tokio::task::spawn_blocking(move || exchange(&p, b"{\"cmd\":\"status\"}\n")).await.expect("join");
        assert!(line.contains("\"ok\":true"), "{line}");
        drop(ctl);
        // A file that is not a socket is never removed.
        std::fs::write(&path, "precious").expect("write");
        let (tx, _rx) = mpsc::channel(4);
        let err = serve_with(&path, tx, limits()).expect_err("not a socket");
        assert!(matches!(err, ControlError::NotASocket(_)), "{err}");
        assert_eq!(std::fs::read_to_string(&path).expect("still there"), "precious");
        let _ = std::fs::remove_dir_all(path.parent().expect("dir"));
    }

    #[tokio::test]
    async fn test_long_line_is_answered_and_closed() {
        let path = temp_sock("long");
        let (tx, rx) = mpsc::channel(4);
        answer(rx);
        let _ctl = serve_with(&path, tx, limits()).expect("serve");
        let p = path.clone();
        let (line, closed) = tokio::task::spawn_blocking(move || {
            let mut long = vec![b'x'; 1000];
            long.push(b'\n');
            exchange(&p, &long)
        })
        .await
        .expect("join");
        assert_eq!(line, "{\"error\":\"request longer than 64 bytes\",\"ok\":false}\n");
        assert!(closed);
        // A line of exactly the limit is still read (and is a bad request, not too long).
        let p = path.clone();
        let (line, _) = tokio::task::spawn_blocking(move || {
            let mut l = vec![b' '; 64];
            l.push(b'\n');
            exchange(&p, &l)
        })
        .await
        .expect("join");
        assert!(line.contains("bad request"), "{line}");
        let _ = std::fs::remove_dir_all(path.parent().expect("dir"));
    }

    #[tokio::test]
    async fn test_too_many_clients() {
        let path = temp_sock("many");
        let (tx, rx) = mpsc::channel(4);
        answer(rx);
        let _ctl = serve_with(&path, tx, Limits { io_timeout: Duration::from_secs(30), ..limits() }).expect("serve");
        let p = path.clone();
        tokio::task::spawn_blocking(move || {
            // Two clients hold the two slots (each proven served by one exchange).
            let mut held = Vec::new();
            for _ in 0..2 {
                let mut s = std::os::unix::net::UnixStream::connect(&p).expect("connect");
                s.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
                s.write_all(b"{\"cmd\":\"status\"}\n").expect("send");
                let mut r = std::io::BufReader::new(s.try_clone().expect("clone"));
                let mut line = String::new();
                r.read_line(&mut line).expect("reply");
                assert!(line.contains("\"ok\":true"), "{line}");
                held.push(s);
            }
            let (line, closed) = exchange(&p, b"{\"cmd\":\"status\"}\n");
            assert_eq!(line, "{\"error\":\"too many clients\",\"ok\":false}\n");
            assert!(closed);
            drop(held);
            // Slots are given back when clients leave.
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            loop {
                let (line, _) = exchange(&p, b"{\"cmd\":\"status\"}\n");
                if line.contains("\"ok\":true") {
                    break;
                }
                assert!(std::time::Instant::now() < deadline, "slots never came back: {line}");
                std::thread::sleep(Duration::from_millis(20));
            }
        })
        .await
        .expect("join");
        let _ = std::fs::remove_dir_all(path.parent().expect("dir"));
    }

    #[tokio::test]
    async fn test_silent_client_times_out() {
        let path = temp_sock("slow");
        let (tx, rx) = mpsc::channel(4);
        answer(rx);
        let _ctl = serve_with(&path, tx, limits()).expect("serve");
        let p = path.clone();
        let waited = tokio::task::spawn_blocking(move || {
            let mut s = std::os::unix::net::UnixStream::connect(&p).expect("connect");
            s.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
            // Half a line, then nothing.
            s.write_all(b"{\"cmd\":").expect("send");
            let t = std::time::Instant::now();
            let mut buf = [0u8; 16];
            assert_eq!(s.read(&mut buf).expect("closed, not timed out"), 0);
            t.elapsed()
        })
        .await
        .expect("join");
        assert!(waited >= Duration::from_millis(250) && waited < Duration::from_secs(3), "{waited:?}");
        let _ = std::fs::remove_dir_all(path.parent().expect("dir"));
    }

    /// A real client running as another user (nobody) is refused, until the socket's group is
    /// its group. Needs root (to run the child as nobody).
    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn test_other_user_is_denied_unless_in_the_socket_group() {
        const SOCK: &str = "HAV_TEST_SOCK";
        const EXPECT: &str = "HAV_TEST_EXPECT";
        let name = "test_other_user_is_denied_unless_in_the_socket_group";
        if let (Ok(sock), Ok(expect)) = (std::env::var(SOCK), std::env::var(EXPECT)) {
            // The child, as nobody.
            assert_ne!(nix::unistd::geteuid().as_raw(), 0);
            let reply = request(Path::new(&sock), &Request { cmd: "status".into(), instance: None }).expect("a reply");
            let want = match expect.as_str() {
                "denied" => serde_json::json!({"ok": false, "error": "permission denied"}),
                _ => serde_json::json!({"ok": true, "cmd": "status"}),
            };
            assert_eq!(reply, want);
            return;
        }
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root to run a client as another user");
            return;
        }
        let path = temp_sock("denied");
        let (tx, rx) = mpsc::channel(4);
        answer(rx);
        let _ctl = serve_with(&path, tx, limits()).expect("serve");
        use std::os::unix::fs::PermissionsExt;
        // Let anyone reach the socket file, so that only the credential check stands in the way.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).expect("chmod");
        let (nobody, nogroup) = (65534, 65534);
        let run = |expect: &'static str| {
            let p = path.clone();
            tokio::task::spawn_blocking(move || {
                crate::resource::testing::in_child_with(module_path!(), name, |cmd| {
                    use std::os::unix::process::CommandExt as _;
                    cmd.uid(nobody).gid(nogroup).env(SOCK, &p).env(EXPECT, expect);
                })
            })
        };
        assert!(!run("denied").await.expect("child"));
        nix::unistd::chown(&path, None, Some(nix::unistd::Gid::from_raw(nogroup))).expect("chgrp");
        assert!(!run("allowed").await.expect("child"));
        let _ = std::fs::remove_dir_all(path.parent().expect("dir"));
    }

    #[test]
    fn test_allowed() {
        let peer = |uid, gid, groups: &[u32]| Peer { uid, gid, groups: groups.to_vec() };
        let (daemon, sock_gid) = (0, 0);
        assert!(allowed(&peer(0, 0, &[]), daemon, sock_gid), "root");
        assert!(!allowed(&peer(1000, 1000, &[27, 100]), daemon, sock_gid));
        assert!(allowed(&peer(1000, 1000, &[27, 0]), daemon, sock_gid), "supplementary member of the socket's group");
        assert!(allowed(&peer(1000, 0, &[]), daemon, sock_gid), "primary member");
        // A daemon running as its own user, socket group `hav` (990).
        assert!(allowed(&peer(995, 995, &[]), 995, 990), "the daemon's own user");
        assert!(allowed(&peer(1000, 1000, &[990]), 995, 990), "an operator in group hav");
        assert!(allowed(&peer(0, 0, &[]), 995, 990), "root always");
        assert!(!allowed(&peer(1000, 1000, &[27]), 995, 990));
    }

    #[test]
    fn test_groups_of() {
        let status = "Name:\tbash\nUid:\t1000\t1000\t1000\t1000\nGid:\t1000\t1000\t1000\t1000\nGroups:\t4 27 1000 \n";
        assert_eq!(groups_of(status, 1000), vec![4, 27, 1000]);
        assert_eq!(groups_of(status, 1001), Vec::<u32>::new(), "a reused PID running as someone else");
        assert_eq!(groups_of("Uid:\t0\t0\t0\t0\nGroups:\t\n", 0), Vec::<u32>::new());
        // Our own process: the parse agrees with getgroups(2).
        let ours = std::fs::read_to_string("/proc/self/status").expect("status");
        let mut want: Vec<u32> = nix::unistd::getgroups().expect("getgroups").iter().map(|g| g.as_raw()).collect();
        let mut got = groups_of(&ours, nix::unistd::geteuid().as_raw());
        want.sort_unstable();
        got.sort_unstable();
        assert_eq!(got, want);
    }
}
