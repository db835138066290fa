//! Prometheus text metrics (`--metrics ADDR`): per-instance state, priorities, advert counters
//! and dropped adverts by reason.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hav_core::vrrp::{Counters, DropReason, State};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, Semaphore};

use super::control::{Envelope, Reply, Request};
use super::listen::{AcceptErrors, Limits};

use super::snapshot::Snapshot;

/// A label value in the text format: backslash, double quote and newline escaped.
fn label(v: &str) -> std::borrow::Cow<'_, str> {
    if !v.contains(['\\', '"', '\n']) {
        return v.into();
    }
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n").into()
}

/// Renders the metrics of every instance, and the daemon's own counters, from a snapshot the
/// VRRP loop took (so that rendering happens off the loop).
pub fn render(snap: &Snapshot) -> String {
    let mut s = String::with_capacity(256 + snap.instances.len() * 1024);
    let _ = writeln!(s, "# HELP hav_vrrp_state Instance state: 0 init, 1 backup, 2 master, 3 fault.");
    let _ = writeln!(s, "# TYPE hav_vrrp_state gauge");
    for i in &snap.instances {
        let v = match i.state {
            State::Initialize => 0,
            State::Backup => 1,
            State::Master => 2,
            State::Fault => 3,
        };
        let _ = writeln!(s, "hav_vrrp_state{{instance=\"{}\"}} {v}", label(&i.name));
    }
    let _ = writeln!(s, "# HELP hav_vrrp_priority Priority advertised now.");
    let _ = writeln!(s, "# TYPE hav_vrrp_priority gauge");
    for i in &snap.instances {
        let _ = writeln!(s, "hav_vrrp_priority{{instance=\"{}\"}} {}", label(&i.name), i.effective_priority);
    }
    for (name, help, f) in [
        ("adverts_rx", "Adverts accepted.", (|c: &Counters| c.adverts_rx) as fn(&Counters) -> u64),
        ("adverts_tx", "Adverts sent.", |c| c.adverts_tx),
        ("transitions", "State changes.", |c| c.transitions),
        ("became_master", "Times the instance became master.", |c| c.became_master),
        ("vip_failures", "Times the VIPs could not be installed.", |c| c.vip_failures),
    ] {
        let _ = writeln!(s, "# HELP hav_vrrp_{name}_total {help}");
        let _ = writeln!(s, "# TYPE hav_vrrp_{name}_total counter");
        for i in &snap.instances {
            let _ = writeln!(s, "hav_vrrp_{name}_total{{instance=\"{}\"}} {}", label(&i.name), f(&i.counters));
        }
    }
    let _ = writeln!(s, "# HELP hav_vrrp_dropped_total Adverts dropped, by reason.");
    let _ = writeln!(s, "# TYPE hav_vrrp_dropped_total counter");
    for i in &snap.instances {
        for (reason, n) in DropReason::ALL.iter().zip(i.counters.drops.iter()) {
            let _ = writeln!(s, "hav_vrrp_dropped_total{{instance=\"{}\",reason=\"{}\"}} {n}", label(&i.name), reason.as_str());
        }
    }
    let _ = writeln!(s, "# HELP hav_vrrp_stray_dropped_total VRRP messages dropped before any instance saw them.");
    let _ = writeln!(s, "# TYPE hav_vrrp_stray_dropped_total counter");
    let _ = writeln!(s, "hav_vrrp_stray_dropped_total{{reason=\"truncated\"}} {}", snap.stray.truncated);
    let _ = writeln!(s, "hav_vrrp_stray_dropped_total{{reason=\"unknown_vrid\"}} {}", snap.stray.unknown_vrid);
    let _ = writeln!(s, "# HELP hav_vip_errors_total Address additions and removals the kernel refused.");
    let _ = writeln!(s, "# TYPE hav_vip_errors_total counter");
    let _ = writeln!(s, "hav_vip_errors_total {}", snap.vip_errors);
    s
}

/// Serves the metrics over HTTP/1.1 on `addr`, with [`Limits::METRICS`]: `GET` (or `HEAD`) of
/// any path answers the Prometheus text, asked of the daemon loop through the control channel
/// (`{"cmd":"metrics"}`) so that the loop renders only when scraped. One request per
/// connection (`Connection: close`).
///
/// Bounded like the control socket: an 8 KiB request head (`431` beyond), 16 clients at once
/// (`503` to more), 5 s to send the request or take the reply; a failing `accept` backs off.
/// Returns once listening; the server runs in a task until the runtime stops.
pub async fn serve(addr: SocketAddr, control: mpsc::Sender<Envelope>) -> std::io::Result<()> {
    serve_with(addr, control, Limits::METRICS).await.map(|_| ())
}

/// [`serve`] with other limits; returns the bound address (tests bind port 0).
pub async fn serve_with(addr: SocketAddr, control: mpsc::Sender<Envelope>, limits: Limits) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    tracing::info!(addr = %local, "metrics listening");
    tokio::spawn(accept_loop(listener, control, limits));
    Ok(local)
}

async fn accept_loop(listener: TcpListener, control: mpsc::Sender<Envelope>, limits: Limits) {
    let slots = Arc::new(Semaphore::new(limits.max_clients));
    let mut errors = AcceptErrors::new("metrics");
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
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            // Best effort and without waiting: a scraper that does not read loses the answer.
            let _ = stream.try_write(&response(503, "Service Unavailable", "too many clients\n", true));
            continue;
        };
        let control = control.clone();
        tokio::spawn(async move {
            if let Err(e) = exchange(stream, &control, limits).await {
                tracing::debug!(error = %e, "metrics connection ended");
            }
            drop(slot);
        });
    }
}

/// How a request head parsed.
#[derive(Debug, PartialEq, Eq)]
enum Head {
    /// `GET` (`head_only` false) or `HEAD`.
    Metrics { head_only: bool },
    /// Another method.
    Method,
    /// Not an HTTP/1.x request line.
    Malformed,
}

/// Parses a complete request head (through the blank line). The path is not looked at: any path
/// serves the metrics, as Prometheus scrapes `/metrics` by default but can be told otherwise.
fn parse_head(head: &[u8]) -> Head {
    let Some(line) = head.split(|&b| b == b'\n').next().and_then(|l| std::str::from_utf8(l).ok()) else {
        return Head::Malformed;
    };
    let mut parts = line.trim_end_matches('\r').split(' ');
    let (Some(method), Some(target), Some(version), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Head::Malformed;
    };
    if target.is_empty() || !(version == "HTTP/1.1" || version == "HTTP/1.0") {
        return Head::Malformed;
    }
    match method {
        "GET" => Head::Metrics { head_only: false },
        "HEAD" => Head::Metrics { head_only: true },
        m if !m.is_empty() && m.bytes().all(|b| b.is_ascii_uppercase()) => Head::Method,
        _ => Head::Malformed,
    }
}

/// A whole response, closing the connection.
fn response(status: u16, reason: &str, body: &str, with_body: bool) -> Vec<u8> {
    let allow = if status == 405 { "Allow: GET, HEAD\r\n" } else { "" };
    let ctype = if status == 200 { "text/plain; version=0.0.4; charset=utf-8" } else { "text/plain; charset=utf-8" };
    let mut out = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n{allow}Connection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if with_body {
        out.extend_from_slice(body.as_bytes());
    }
    out
}

/// What came in before the blank line ending a request head.
enum Incoming {
    /// The client closed first.
    Closed,
    /// The head, through its blank line.
    Head(Vec<u8>),
    /// More than the limit without the blank line.
    TooLong,
}

async fn read_head(s: &mut TcpStream, max: usize) -> std::io::Result<Incoming> {
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    loop {
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            return Ok(Incoming::Closed);
        }
        let from = buf.len().saturating_sub(3);
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf[from..].windows(4).position(|w| w == b"\r\n\r\n") {
            buf.truncate(from + end + 4);
            return Ok(Incoming::Head(buf));
        }
        if buf.len() > max {
            return Ok(Incoming::TooLong);
        }
    }
}

async fn exchange(mut s: TcpStream, control: &mpsc::Sender<Envelope>, limits: Limits) -> std::io::Result<()> {
    let t = limits.io_timeout;
    let head = match tokio::time::timeout(t, read_head(&mut s, limits.max_request)).await {
        Err(_) => return Ok(()),
        Ok(r) => r?,
    };
    let resp = match head {
        Incoming::Closed => return Ok(()),
        Incoming::TooLong => response(431, "Request Header Fields Too Large", "request head too large\n", true),
        Incoming::Head(h) => match parse_head(&h) {
            Head::Malformed => response(400, "Bad Request", "bad request\n", true),
            Head::Method => response(405, "Method Not Allowed", "only GET and HEAD\n", true),
            Head::Metrics { head_only } => {
                let (reply, answer) = oneshot::channel();
                let answer = if control.send((Request { cmd: "metrics".into(), instance: None }, reply)).await.is_err() {
                    None
                } else {
                    tokio::time::timeout(t, answer).await.ok().and_then(Result::ok)
                };
                // Rendered here, on the listener's runtime, not on the VRRP loop.
                let text = match answer {
                    Some(Reply::Snapshot(snap)) => Some(render(&snap)),
                    Some(Reply::Json(v)) => v["text"].as_str().map(str::to_owned),
                    None => None,
                };
                match text {
                    Some(body) => response(200, "OK", &body, !head_only),
                    None => response(503, "Service Unavailable", "the daemon did not answer\n", !head_only),
                }
            }
        },
    };
    match tokio::time::timeout(t, s.write_all(&resp)).await {
        Ok(r) => r?,
        Err(_) => return Ok(()),
    }
    // Half-close and let the client read to the end: closing with its unread bytes (a body it
    // should not have sent) still queued would reset the connection under the response.
    let _ = s.shutdown().await;
    let mut sink = [0u8; 1024];
    let _ = tokio::time::timeout(Duration::from_millis(200), async {
        while matches!(s.read(&mut sink).await, Ok(n) if n > 0) {}
    })
    .await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::{Read as _, Write as _};

    use super::*;

    /// A daemon stand-in answering `metrics` with `text`.
    fn answer(mut rx: mpsc::Receiver<Envelope>, text: &'static str) {
        tokio::spawn(async move {
            while let Some((_, reply)) = rx.recv().await {
                let _ = reply.send(serde_json::json!({"ok": true, "text": text}).into());
            }
        });
    }

    async fn server(limits: Limits) -> SocketAddr {
        let (tx, rx) = mpsc::channel(4);
        answer(rx, "hav_up 1\n");
        serve_with("127.0.0.1:0".parse().expect("addr"), tx, limits).await.expect("serve")
    }

    fn limits() -> Limits {
        Limits { max_request: 256, max_clients: 2, io_timeout: Duration::from_millis(300) }
    }

    /// Sends `req` and reads until the server closes (blocking, off the runtime).
    async fn fetch(addr: SocketAddr, req: &'static [u8]) -> String {
        tokio::task::spawn_blocking(move || {
            let mut s = std::net::TcpStream::connect(addr).expect("connect");
            s.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
            s.write_all(req).expect("send");
            let mut out = String::new();
            s.read_to_string(&mut out).expect("read to close");
            out
        })
        .await
        .expect("join")
    }

    /// An instance name with a quote, a backslash and a newline (the config allows the first
    /// two, in a quoted name) stays one label value: the text format's escapes, no raw newline.
    #[test]
    fn test_label_values_are_escaped() {
        let snap = Snapshot {
            at: std::time::SystemTime::UNIX_EPOCH,
            started: std::time::SystemTime::UNIX_EPOCH,
            instances: vec![super::super::snapshot::InstanceView::for_test("VI \"q\" \\ b\nc")],
            stray: hav_core::vrrp::Stray::default(),
            vip_errors: 0,
            send_errors: 0,
            groups: Vec::new(),
        };
        let text = render(&snap);
        assert!(text.contains("hav_vrrp_state{instance=\"VI \\\"q\\\" \\\\ b\\nc\"} 2\n"), "{text}");
        assert!(text.lines().all(|l| l.starts_with("# ") || l.starts_with("hav_")), "a raw newline split a sample:\n{text}");
        assert_eq!(label("plain"), "plain");
    }

    #[test]
    fn test_parse_head() {
        assert_eq!(parse_head(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"), Head::Metrics { head_only: false });
        assert_eq!(parse_head(b"HEAD / HTTP/1.0\r\n\r\n"), Head::Metrics { head_only: true });
        assert_eq!(parse_head(b"POST /metrics HTTP/1.1\r\n\r\n"), Head::Method);
        assert_eq!(parse_head(b"GET /metrics\r\n\r\n"), Head::Malformed);
        assert_eq!(parse_head(b"GET /metrics HTTP/2\r\n\r\n"), Head::Malformed);
        assert_eq!(parse_head(b"\x16\x03\x01 / HTTP/1.1\r\n\r\n"), Head::Malformed, "a TLS hello is not a method");
    }

    #[tokio::test]
    async fn test_scrape_is_http_1_1() {
        let addr = server(limits()).await;
        let r = fetch(addr, b"GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: text/plain\r\n\r\n").await;
        assert_eq!(
            r,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: 9\r\nConnection: close\r\n\r\nhav_up 1\n"
        );
        let r = fetch(addr, b"HEAD /metrics HTTP/1.1\r\n\r\n").await;
        assert!(r.starts_with("HTTP/1.1 200 OK\r\n") && r.contains("Content-Length: 9\r\n") && r.ends_with("\r\n\r\n"), "{r}");
        let r = fetch(addr, b"POST /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc").await;
        assert!(r.starts_with("HTTP/1.1 405 Method Not Allowed\r\n") && r.contains("Allow: GET, HEAD\r\n"), "{r}");
        let r = fetch(addr, b"hello\r\n\r\n").await;
        assert!(r.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{r}");
    }

    #[tokio::test]
    async fn test_long_head_is_refused() {
        let addr = server(limits()).await;
        let r = tokio::task::spawn_blocking(move || {
            let mut s = std::net::TcpStream::connect(addr).expect("connect");
            s.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
            let _ = s.write_all(format!("GET / HTTP/1.1\r\nX: {}\r\n", "y".repeat(1000)).as_bytes());
            let mut out = String::new();
            let _ = s.read_to_string(&mut out);
            out
        })
        .await
        .expect("join");
        assert!(r.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"), "{r}");
    }

    #[tokio::test]
    async fn test_too_many_clients_and_silent_ones() {
        let addr = server(Limits { max_clients: 1, io_timeout: Duration::from_millis(500), ..limits() }).await;
        let (busy, silent_for) = tokio::task::spawn_blocking(move || {
            // The one slot, taken by a client that sends nothing.
            let mut hog = std::net::TcpStream::connect(addr).expect("connect");
            hog.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
            std::thread::sleep(Duration::from_millis(100));
            let mut s = std::net::TcpStream::connect(addr).expect("connect");
            s.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
            let mut busy = String::new();
            let _ = s.read_to_string(&mut busy);
            // The silent client is closed once its time is up.
            let t = std::time::Instant::now();
            let mut buf = [0u8; 16];
            assert_eq!(hog.read(&mut buf).expect("closed, not timed out"), 0);
            (busy, t.elapsed())
        })
        .await
        .expect("join");
        assert!(busy.starts_with("HTTP/1.1 503 Service Unavailable\r\n"), "{busy}");
        assert!(silent_for < Duration::from_secs(3), "{silent_for:?}");
        // The slot is free again.
        let r = fetch(addr, b"GET / HTTP/1.1\r\n\r\n").await;
        assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
    }

    /// Out of descriptors, `accept` fails with EMFILE and the pending connection stays queued;
    /// the loop must sleep between tries (not spin), and serve the client once descriptors are
    /// back. Runs in a child process: its descriptor limit is cut to the bone.
    #[test]
    fn test_accept_backs_off_without_descriptors() {
        if !crate::resource::testing::in_child(module_path!(), "test_accept_backs_off_without_descriptors") {
            return;
        }
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(async {
            let addr = server(Limits { io_timeout: Duration::from_secs(5), ..limits() }).await;
            // Made before the descriptors run out; connecting takes none.
            let client = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
            let hold = crate::resource::testing::exhaust_descriptors();
            let cpu = || nix::time::clock_gettime(nix::time::ClockId::CLOCK_PROCESS_CPUTIME_ID).expect("cpu clock");
            let cpu0 = cpu();
            client.connect(&addr.into()).expect("queued by the kernel");
            tokio::time::sleep(Duration::from_secs(1)).await;
            let spent = Duration::from(cpu() - cpu0);
            assert!(spent < Duration::from_millis(300), "accept loop spun: {spent:?} of CPU in 1 s");
            drop(hold);
            let mut s: std::net::TcpStream = client.into();
            let r = tokio::task::spawn_blocking(move || {
                s.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
                s.write_all(b"GET / HTTP/1.1\r\n\r\n").expect("send");
                let mut out = String::new();
                s.read_to_string(&mut out).expect("read");
                out
            })
            .await
            .expect("join");
            assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "served once descriptors are back: {r}");
        });
    }
}
