//! Real servers on loopback for the checker tests. Each one runs on the test's tokio runtime and
//! stops (its port closes) when dropped.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::task::JoinHandle;

fn any() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// Binds `addr`, retrying for a while: a just-dropped server's task may not have closed yet.
async fn bind_tcp(addr: Option<SocketAddr>) -> TcpListener {
    for _ in 0..100 {
        match TcpListener::bind(addr.unwrap_or_else(any)).await {
            Ok(l) => return l,
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    panic!("cannot bind {addr:?}")
}

async fn bind_udp(addr: Option<SocketAddr>) -> UdpSocket {
    for _ in 0..100 {
        match UdpSocket::bind(addr.unwrap_or_else(any)).await {
            Ok(s) => return s,
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    panic!("cannot bind {addr:?}")
}

/// Aborts a server task when dropped.
pub struct Task(JoinHandle<()>);

impl Drop for Task {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A TCP listener that accepts and closes, counting connections.
pub struct TcpServer {
    pub addr: SocketAddr,
    pub accepted: Arc<AtomicUsize>,
    /// The clients' addresses, latest last.
    pub peers: Arc<Mutex<Vec<SocketAddr>>>,
    _task: Task,
}

impl TcpServer {
    pub async fn start(addr: Option<SocketAddr>) -> TcpServer {
        let l = bind_tcp(addr).await;
        let addr = l.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let peers = Arc::new(Mutex::new(Vec::new()));
        let (n, p) = (accepted.clone(), peers.clone());
        let task = tokio::spawn(async move {
            while let Ok((s, peer)) = l.accept().await {
                n.fetch_add(1, Ordering::Relaxed);
                p.lock().unwrap().push(peer);
                drop(s);
            }
        });
        TcpServer { addr, accepted, peers, _task: Task(task) }
    }
}

/// What [`HttpServer`] answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum HttpMode {
    /// 200 with [`HttpServer::GOOD_BODY`].
    Good = 0,
    /// 500.
    Status500 = 1,
    /// 200 with another body that still says "status: fine".
    OtherBody = 2,
    /// 200 with "status: broken" on /status; /health stays good.
    RegexFail = 3,
}

/// An HTTP/1.x server whose answers the test switches; it records request heads.
pub struct HttpServer {
    pub addr: SocketAddr,
    mode: Arc<AtomicU8>,
    requests: Arc<Mutex<Vec<String>>>,
    _task: Task,
}

async fn read_head<S: tokio::io::AsyncRead + Unpin>(s: &mut S) -> Option<String> {
    let mut buf = Vec::new();
    let mut b = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = s.read(&mut b).await.ok()?;
        if n == 0 || buf.len() > 65536 {
            return None;
        }
        buf.extend_from_slice(&b[..n]);
    }
    Some(String::from_utf8_lossy(&buf).into_owned())
}

fn http_answer(mode: u8, head: &str) -> Vec<u8> {
    let path = head.split_whitespace().nth(1).unwrap_or("/");
    let (status, body) = match mode {
        1 => ("500 Internal Server Error", "oops\n"),
        2 => ("200 OK", "status: fine\n"),
        3 if path == "/status" => ("200 OK", "status: broken\n"),
        _ => ("200 OK", HttpServer::GOOD_BODY),
    };
    format!("HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).into_bytes()
}

impl HttpServer {
    pub const GOOD_BODY: &'static str = "status: ok\nall good\n";

    pub async fn start() -> HttpServer {
        let l = bind_tcp(None).await;
        let addr = l.local_addr().unwrap();
        let mode = Arc::new(AtomicU8::new(0));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (m, r) = (mode.clone(), requests.clone());
        let task = tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                let (m, r) = (m.clone(), r.clone());
                tokio::spawn(async move {
                    let Some(head) = read_head(&mut s).await else { return };
                    let answer = http_answer(m.load(Ordering::Relaxed), &head);
                    r.lock().unwrap().push(head);
                    let _ = s.write_all(&answer).await;
                    let _ = s.shutdown().await;
                });
            }
        });
        HttpServer { addr, mode, requests, _task: Task(task) }
    }

    pub fn set_mode(&self, m: HttpMode) {
        self.mode.store(m as u8, Ordering::Relaxed);
    }

    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

/// An HTTPS server with a fresh self-signed certificate for `app.hav.test`; records the SNI
/// name and the request heads.
pub struct TlsServer {
    pub addr: SocketAddr,
    sni: Arc<Mutex<Option<String>>>,
    requests: Arc<Mutex<Vec<String>>>,
    _task: Task,
}

impl TlsServer {
    pub async fn start(addr: Option<SocketAddr>) -> TlsServer {
        let ck = rcgen::generate_simple_self_signed(vec!["app.hav.test".to_string()]).expect("self-signed cert");
        let cert = ck.cert.der().clone();
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(rustls::pki_types::PrivatePkcs8KeyDer::from(ck.key_pair.serialize_der()));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .expect("server config");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
        let l = bind_tcp(addr).await;
        let addr = l.local_addr().unwrap();
        let sni = Arc::new(Mutex::new(None));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (sn, rq) = (sni.clone(), requests.clone());
        let task = tokio::spawn(async move {
            while let Ok((s, _)) = l.accept().await {
                let (acceptor, sn, rq) = (acceptor.clone(), sn.clone(), rq.clone());
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(s).await else { return };
                    *sn.lock().unwrap() = tls.get_ref().1.server_name().map(str::to_owned);
                    let Some(head) = read_head(&mut tls).await else { return };
                    rq.lock().unwrap().push(head.clone());
                    let _ = tls.write_all(&http_answer(0, &head)).await;
                    let _ = tls.shutdown().await;
                });
            }
        });
        TlsServer { addr, sni, requests, _task: Task(task) }
    }

    pub fn sni(&self) -> Option<String> {
        self.sni.lock().unwrap().clone()
    }

    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

/// An SMTP greeter: "220", then "250" to HELO, "221" to QUIT; with `refuse`, greets "554".
pub struct SmtpServer {
    pub addr: SocketAddr,
    pub refuse: Arc<AtomicBool>,
    helos: Arc<Mutex<Vec<String>>>,
    _task: Task,
}

impl SmtpServer {
    pub async fn start() -> SmtpServer {
        let l = bind_tcp(None).await;
        let addr = l.local_addr().unwrap();
        let refuse = Arc::new(AtomicBool::new(false));
        let helos = Arc::new(Mutex::new(Vec::new()));
        let (rf, hl) = (refuse.clone(), helos.clone());
        let task = tokio::spawn(async move {
            while let Ok((s, _)) = l.accept().await {
                let (rf, hl) = (rf.clone(), hl.clone());
                tokio::spawn(async move { smtp_session(s, rf.load(Ordering::Relaxed), hl).await });
            }
        });
        SmtpServer { addr, refuse, helos, _task: Task(task) }
    }

    pub fn helos(&self) -> Vec<String> {
        self.helos.lock().unwrap().clone()
    }
}

async fn smtp_session(s: TcpStream, refuse: bool, helos: Arc<Mutex<Vec<String>>>) {
    let mut s = BufReader::new(s);
    if refuse {
        let _ = s.get_mut().write_all(b"554 no service here\r\n").await;
        return;
    }
    let _ = s.get_mut().write_all(b"220-smtp.hav.test ESMTP\r\n220 test greeter\r\n").await;
    let mut line = String::new();
    while s.read_line(&mut line).await.unwrap_or(0) > 0 {
        let cmd = line.trim_end().to_string();
        line.clear();
        let answer: &[u8] = if cmd.to_ascii_uppercase().starts_with("HELO ") {
            helos.lock().unwrap().push(cmd);
            b"250 hello\r\n"
        } else if cmd.eq_ignore_ascii_case("QUIT") {
            let _ = s.get_mut().write_all(b"221 bye\r\n").await;
            return;
        } else {
            b"502 not implemented\r\n"
        };
        let _ = s.get_mut().write_all(answer).await;
    }
}

/// A DNS responder over UDP: answers every query NOERROR (or SERVFAIL, or not at all), and
/// records the questions (name, type).
pub struct DnsServer {
    pub addr: SocketAddr,
    pub servfail: Arc<AtomicBool>,
    pub silent: Arc<AtomicBool>,
    questions: Arc<Mutex<Vec<(String, u16)>>>,
    _task: Task,
}

/// (name, qtype) of a query's first question.
fn question(q: &[u8]) -> Option<(String, u16)> {
    let mut i = 12;
    let mut labels = Vec::new();
    loop {
        let len = usize::from(*q.get(i)?);
        i += 1;
        if len == 0 {
            break;
        }
        labels.push(String::from_utf8_lossy(q.get(i..i + len)?).into_owned());
        i += len;
    }
    let t = u16::from_be_bytes([*q.get(i)?, *q.get(i + 1)?]);
    Some((labels.join("."), t))
}

impl DnsServer {
    pub async fn start() -> DnsServer {
        let sock = bind_udp(None).await;
        let addr = sock.local_addr().unwrap();
        let servfail = Arc::new(AtomicBool::new(false));
        let silent = Arc::new(AtomicBool::new(false));
        let questions = Arc::new(Mutex::new(Vec::new()));
        let (sf, si, qs) = (servfail.clone(), silent.clone(), questions.clone());
        let task = tokio::spawn(async move {
            let mut buf = [0u8; 1500];
            while let Ok((n, from)) = sock.recv_from(&mut buf).await {
                let q = &buf[..n];
                let Some(question) = question(q) else { continue };
                qs.lock().unwrap().push(question.clone());
                if si.load(Ordering::Relaxed) {
                    continue;
                }
                // Header: same id, QR + RD, RA, rcode; one question echoed, one A answer.
                let rcode = if sf.load(Ordering::Relaxed) { 2 } else { 0 };
                let qend = n;
                let mut r = Vec::with_capacity(n + 16);
                r.extend_from_slice(&q[..2]);
                r.push(0x81);
                r.push(0x80 | rcode);
                r.extend_from_slice(&[0, 1, 0, if rcode == 0 { 1 } else { 0 }, 0, 0, 0, 0]);
                r.extend_from_slice(&q[12..qend]);
                if rcode == 0 {
                    r.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1]);
                }
                let _ = sock.send_to(&r, from).await;
            }
        });
        DnsServer { addr, servfail, silent, questions, _task: Task(task) }
    }

    pub fn questions(&self) -> Vec<(String, u16)> {
        self.questions.lock().unwrap().clone()
    }
}

/// A UDP echo; with `garble` it echoes the bytes inverted.
pub struct UdpEcho {
    pub addr: SocketAddr,
    pub garble: Arc<AtomicBool>,
    _task: Task,
}

impl UdpEcho {
    pub async fn start(addr: Option<SocketAddr>) -> UdpEcho {
        let sock = bind_udp(addr).await;
        let addr = sock.local_addr().unwrap();
        let garble = Arc::new(AtomicBool::new(false));
        let g = garble.clone();
        let task = tokio::spawn(async move {
            let mut buf = [0u8; 2048];
            while let Ok((n, from)) = sock.recv_from(&mut buf).await {
                if g.load(Ordering::Relaxed) {
                    buf[..n].iter_mut().for_each(|b| *b = !*b);
                }
                let _ = sock.send_to(&buf[..n], from).await;
            }
        });
        UdpEcho { addr, garble, _task: Task(task) }
    }
}

/// A temporary directory, removed on drop.
pub struct TempDir {
    pub path: PathBuf,
}

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!("hav-check-{}-{tag}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed)));
        std::fs::create_dir_all(&path).unwrap();
        // Scripts may run as another user (MISC_CHECK `user`).
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        TempDir { path }
    }

    /// Writes an executable script.
    pub fn script(&self, name: &str, text: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let p = self.path.join(name);
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// MD5 of `s`, lower-case hex.
pub fn md5_hex(s: &str) -> String {
    use md5::Digest;
    md5::Md5::digest(s.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}
