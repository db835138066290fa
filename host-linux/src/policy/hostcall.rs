//! The capability host calls, carried out on tokio: TCP connect, HTTP GET, DNS query, UDP probe.
//!
//! [`permit`] decides whether a call may reach its endpoint; the caller (the `host_call` import)
//! asks it before [`perform`], which only does the I/O, each call bounded by the smaller of the
//! policy's own timeout and what is left of the run's wall-clock budget.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use hav_core::policy::{HostError, HostRequest, HostResponse, Target};

use super::{HostCall, PolicyTarget};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// Most bytes of HTTP headers read before the response counts as not HTTP.
const MAX_HTTP_HEADER: usize = 16 * 1024;
/// Most bytes of a body a policy can ask for.
const MAX_BODY: usize = 1024 * 1024;
/// Most bytes of a UDP reply handed back.
const MAX_UDP_REPLY: usize = 64 * 1024;

/// The owned outcome of a host call; [`Answer::response`] borrows it as the ABI type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Answer {
    Connected { rtt_us: u32 },
    Http { status: u16, body: Vec<u8>, rtt_us: u32 },
    Dns { rcode: u8, answers: u16, rtt_us: u32 },
    Udp { reply: Vec<u8>, rtt_us: u32 },
}

impl Answer {
    /// The ABI view of this answer.
    pub(crate) fn response(&self) -> HostResponse<'_> {
        match self {
            Answer::Connected { rtt_us } => HostResponse::Connected { rtt_us: *rtt_us },
            Answer::Http { status, body, rtt_us } => HostResponse::Http { status: *status, body, rtt_us: *rtt_us },
            Answer::Dns { rcode, answers, rtt_us } => HostResponse::Dns { rcode: *rcode, answers: *answers, rtt_us: *rtt_us },
            Answer::Udp { reply, rtt_us } => HostResponse::Udp { reply, rtt_us: *rtt_us },
        }
    }
}

/// The kind of a request.
pub(crate) fn kind(req: &HostRequest<'_>) -> HostCall {
    match req {
        HostRequest::TcpConnect { .. } => HostCall::TcpConnect,
        HostRequest::HttpGet { .. } => HostCall::HttpGet,
        HostRequest::DnsQuery { .. } => HostCall::DnsQuery,
        HostRequest::UdpProbe { .. } => HostCall::UdpProbe,
    }
}

/// Whether `allowed` lets a `call` reach `to`: some entry lists that address and port for that
/// kind of call. Addresses compare exactly (an IPv4-mapped IPv6 address is not its IPv4
/// address), and nothing is allowed by default, loopback and link-local included. The error
/// says why not, for the log.
pub(crate) fn permit(allowed: &[PolicyTarget], call: HostCall, to: SocketAddr) -> Result<(), String> {
    let calls = allowed.iter().filter(|t| t.addr == to).fold(super::HostCalls::NONE, |acc, t| acc.union(t.calls));
    if calls.contains(call) {
        Ok(())
    } else if calls.is_empty() {
        Err(format!("{call} to {to}: {to} is not among the endpoints this policy may reach"))
    } else {
        Err(format!("{call} to {to}: this policy may reach {to} only by {calls}"))
    }
}

/// The endpoint a request wants to reach.
pub(crate) fn destination(req: &HostRequest<'_>) -> SocketAddr {
    let t: &Target = match req {
        HostRequest::TcpConnect { target, .. }
        | HostRequest::HttpGet { target, .. }
        | HostRequest::UdpProbe { target, .. } => target,
        HostRequest::DnsQuery { server, .. } => server,
    };
    SocketAddr::new(t.addr, t.port)
}

fn requested_timeout(req: &HostRequest<'_>) -> Duration {
    let ms = match req {
        HostRequest::TcpConnect { timeout_ms, .. }
        | HostRequest::HttpGet { timeout_ms, .. }
        | HostRequest::DnsQuery { timeout_ms, .. }
        | HostRequest::UdpProbe { timeout_ms, .. } => *timeout_ms,
    };
    Duration::from_millis(u64::from(ms))
}

fn micros(since: Instant) -> u32 {
    u32::try_from(since.elapsed().as_micros()).unwrap_or(u32::MAX)
}

fn io_error(e: &io::Error) -> HostError {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => HostError::Refused,
        io::ErrorKind::TimedOut => HostError::Timeout,
        _ => HostError::Io,
    }
}

/// Carries out `req` within `left` (the run's remaining wall clock).
pub(crate) async fn perform(req: &HostRequest<'_>, left: Duration) -> Result<Answer, HostError> {
    let limit = requested_timeout(req).min(left);
    if limit.is_zero() {
        return Err(HostError::Timeout);
    }
    let to = destination(req);
    let work = async {
        match req {
            HostRequest::TcpConnect { .. } => tcp_connect(to).await,
            HostRequest::HttpGet { host, path, tls, max_body, .. } => {
                http_get(to, host, path, *tls, (*max_body as usize).min(MAX_BODY)).await
            }
            HostRequest::DnsQuery { name, qtype, .. } => dns_query(to, name, *qtype).await,
            HostRequest::UdpProbe { payload, expect_reply, .. } => udp_probe(to, payload, *expect_reply).await,
        }
    };
    tokio::time::timeout(limit, work).await.unwrap_or(Err(HostError::Timeout))
}

async fn tcp_connect(to: SocketAddr) -> Result<Answer, HostError> {
    let start = Instant::now();
    let stream = TcpStream::connect(to).await.map_err(|e| io_error(&e))?;
    let rtt_us = micros(start);
    drop(stream);
    Ok(Answer::Connected { rtt_us })
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Response head facts needed to know when the body is complete.
struct Head {
    status: u16,
    body_start: usize,
    content_length: Option<usize>,
    chunked: bool,
}

fn parse_head(buf: &[u8]) -> Result<Option<Head>, HostError> {
    let Some(end) = find(buf, b"\r\n\r\n") else {
        return if buf.len() > MAX_HTTP_HEADER { Err(HostError::Protocol) } else { Ok(None) };
    };
    let head = std::str::from_utf8(&buf[..end]).map_err(|_| HostError::Protocol)?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let mut parts = status_line.split(' ');
    let version = parts.next().unwrap_or("");
    if !version.starts_with("HTTP/1.") {
        return Err(HostError::Protocol);
    }
    let status = parts
        .next()
        .and_then(|s| s.parse::<u16>().ok())
        .filter(|s| (100..=999).contains(s))
        .ok_or(HostError::Protocol)?;
    let mut content_length = None;
    let mut chunked = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else { continue };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            content_length = Some(value.parse::<usize>().map_err(|_| HostError::Protocol)?);
        } else if name.eq_ignore_ascii_case("transfer-encoding") && value.to_ascii_lowercase().contains("chunked") {
            chunked = true;
        }
    }
    Ok(Some(Head { status, body_start: end + 4, content_length, chunked }))
}

/// Decodes as much of a chunked body as is there, up to `max` bytes. `done` when the last
/// chunk was seen.
fn dechunk(mut data: &[u8], max: usize) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    loop {
        let Some(eol) = find(data, b"\r\n") else { return (out, false) };
        let size_text = std::str::from_utf8(&data[..eol]).unwrap_or("").split(';').next().unwrap_or("").trim();
        let Ok(size) = usize::from_str_radix(size_text, 16) else { return (out, true) };
        if size == 0 {
            return (out, true);
        }
        data = &data[eol + 2..];
        let take = size.min(data.len());
        out.extend_from_slice(&data[..take]);
        if out.len() >= max {
            out.truncate(max);
            return (out, true);
        }
        if data.len() < size + 2 {
            return (out, false);
        }
        data = &data[size + 2..];
    }
}

/// A byte stream: plain TCP or TLS over it.
trait Stream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Stream for T {}

async fn http_get(to: SocketAddr, host: &str, path: &str, tls: bool, max_body: usize) -> Result<Answer, HostError> {
    if !path.starts_with('/') || path.bytes().any(|b| b.is_ascii_control() || b == b' ') {
        return Err(HostError::BadRequest);
    }
    if host.bytes().any(|b| b.is_ascii_control() || b == b' ') {
        return Err(HostError::BadRequest);
    }
    let host_header = if host.is_empty() {
        match to.ip() {
            IpAddr::V4(a) => format!("{a}:{}", to.port()),
            IpAddr::V6(a) => format!("[{a}]:{}", to.port()),
        }
    } else {
        host.to_string()
    };
    let start = Instant::now();
    let tcp = TcpStream::connect(to).await.map_err(|e| io_error(&e))?;
    let mut stream: Box<dyn Stream> = if tls {
        // SNI: the Host name when it is one, else the address.
        let name = host.split(':').next().filter(|h| !h.is_empty());
        let sni = name
            .and_then(|n| rustls::pki_types::ServerName::try_from(n.to_owned()).ok())
            .unwrap_or_else(|| rustls::pki_types::ServerName::IpAddress(to.ip().into()));
        let conn = tokio_rustls::TlsConnector::from(crate::check::http::tls_config());
        Box::new(conn.connect(sni, tcp).await.map_err(|_| HostError::Protocol)?)
    } else {
        Box::new(tcp)
    };
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: hav-policy\r\nAccept: */*\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.map_err(|e| io_error(&e))?;
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut chunk = [0u8; 8192];
    let mut head: Option<Head> = None;
    loop {
        let n = stream.read(&mut chunk).await.map_err(|e| io_error(&e))?;
        buf.extend_from_slice(&chunk[..n]);
        if head.is_none() {
            head = parse_head(&buf)?;
        }
        if let Some(h) = &head {
            let have = buf.len() - h.body_start;
            let complete = if h.chunked {
                dechunk(&buf[h.body_start..], max_body).1
            } else if let Some(cl) = h.content_length {
                have >= cl.min(max_body)
            } else {
                have >= max_body
            };
            if complete {
                break;
            }
        }
        if n == 0 {
            break;
        }
    }
    let h = head.ok_or(HostError::Protocol)?;
    let rtt_us = micros(start);
    let raw = &buf[h.body_start.min(buf.len())..];
    let mut body = if h.chunked {
        dechunk(raw, max_body).0
    } else {
        let len = h.content_length.unwrap_or(raw.len()).min(raw.len());
        raw[..len].to_vec()
    };
    body.truncate(max_body);
    Ok(Answer::Http { status: h.status, body, rtt_us })
}

fn local_any(to: SocketAddr) -> SocketAddr {
    match to {
        SocketAddr::V4(_) => SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
        SocketAddr::V6(_) => SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0),
    }
}

/// A DNS query message (RFC 1035 4.1): header, one question, class IN, recursion desired.
pub(crate) fn dns_message(id: u16, name: &str, qtype: u16) -> Result<Vec<u8>, HostError> {
    let mut m = Vec::with_capacity(32 + name.len());
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&0x0100u16.to_be_bytes()); // RD
    m.extend_from_slice(&1u16.to_be_bytes()); // QDCOUNT
    m.extend_from_slice(&[0; 6]); // AN, NS, AR counts
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.len() > 253 {
        return Err(HostError::BadRequest);
    }
    if !name.is_empty() {
        for label in name.split('.') {
            if label.is_empty() || label.len() > 63 {
                return Err(HostError::BadRequest);
            }
            m.push(label.len() as u8);
            m.extend_from_slice(label.as_bytes());
        }
    }
    m.push(0);
    m.extend_from_slice(&qtype.to_be_bytes());
    m.extend_from_slice(&1u16.to_be_bytes()); // IN
    Ok(m)
}

fn query_id() -> u16 {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    (nanos ^ (nanos >> 16)) as u16 ^ (std::process::id() as u16)
}

async fn dns_query(to: SocketAddr, name: &str, qtype: u16) -> Result<Answer, HostError> {
    let id = query_id();
    let msg = dns_message(id, name, qtype)?;
    let sock = UdpSocket::bind(local_any(to)).await.map_err(|e| io_error(&e))?;
    sock.connect(to).await.map_err(|e| io_error(&e))?;
    let start = Instant::now();
    sock.send(&msg).await.map_err(|e| io_error(&e))?;
    let mut buf = [0u8; 4096];
    loop {
        let n = sock.recv(&mut buf).await.map_err(|e| io_error(&e))?;
        // Not ours, or not a response: keep waiting (the timeout bounds this).
        if n < 12 || u16::from_be_bytes([buf[0], buf[1]]) != id || buf[2] & 0x80 == 0 {
            continue;
        }
        let rcode = buf[3] & 0x0f;
        let answers = u16::from_be_bytes([buf[6], buf[7]]);
        return Ok(Answer::Dns { rcode, answers, rtt_us: micros(start) });
    }
}

async fn udp_probe(to: SocketAddr, payload: &[u8], expect_reply: bool) -> Result<Answer, HostError> {
    let sock = UdpSocket::bind(local_any(to)).await.map_err(|e| io_error(&e))?;
    sock.connect(to).await.map_err(|e| io_error(&e))?;
    let start = Instant::now();
    sock.send(payload).await.map_err(|e| io_error(&e))?;
    if !expect_reply {
        return Ok(Answer::Udp { reply: Vec::new(), rtt_us: 0 });
    }
    let mut buf = vec![0u8; MAX_UDP_REPLY];
    let n = sock.recv(&mut buf).await.map_err(|e| io_error(&e))?;
    buf.truncate(n);
    Ok(Answer::Udp { reply: buf, rtt_us: micros(start) })
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn test_dns_message() {
        let m = dns_message(0x1234, "a.example.", 28).unwrap();
        assert_eq!(&m[..4], &[0x12, 0x34, 0x01, 0x00]);
        assert_eq!(&m[12..], b"\x01a\x07example\x00\x00\x1c\x00\x01");
        assert_eq!(dns_message(1, "a..b", 1), Err(HostError::BadRequest));
        assert_eq!(dns_message(1, &"x".repeat(64), 1), Err(HostError::BadRequest));
    }

    #[test]
    fn test_permit() {
        let a = |s: &str| s.parse::<SocketAddr>().expect("addr");
        let x = a("10.0.0.5:53");
        let allowed = [PolicyTarget::new(HostCall::TcpConnect, x), PolicyTarget::new(HostCall::HttpGet, a("10.0.0.6:80"))];
        assert_eq!(permit(&allowed, HostCall::TcpConnect, x), Ok(()));
        // Allowed for TCP: not for UDP, DNS or HTTP.
        for call in [HostCall::HttpGet, HostCall::DnsQuery, HostCall::UdpProbe] {
            assert_eq!(
                permit(&allowed, call, x),
                Err(format!("{call} to 10.0.0.5:53: this policy may reach 10.0.0.5:53 only by tcp_connect"))
            );
        }
        // Not listed, for any kind: loopback, the cloud metadata service, another port, the
        // IPv4-mapped form of an allowed address.
        for to in ["127.0.0.1:53", "169.254.169.254:80", "10.0.0.5:54", "[::ffff:10.0.0.5]:53"] {
            for call in HostCall::ALL {
                let e = permit(&allowed, call, a(to)).expect_err(to);
                assert!(e.ends_with("is not among the endpoints this policy may reach"), "{e}");
            }
        }
        // Entries for one endpoint add up.
        let both = [PolicyTarget::new(HostCall::UdpProbe, x), PolicyTarget::new(HostCall::DnsQuery, x)];
        assert_eq!(permit(&both, HostCall::DnsQuery, x), Ok(()));
        assert_eq!(
            permit(&both, HostCall::TcpConnect, x),
            Err("tcp_connect to 10.0.0.5:53: this policy may reach 10.0.0.5:53 only by dns_query, udp_probe".into())
        );
        assert!(permit(&[], HostCall::TcpConnect, x).is_err());
    }

    #[test]
    fn test_parse_head_and_dechunk() {
        let h = parse_head(b"HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nabc").unwrap().unwrap();
        assert_eq!((h.status, h.body_start, h.content_length, h.chunked), (404, 45, Some(3), false));
        assert!(parse_head(b"HTTP/1.1 200 OK\r\n").unwrap().is_none());
        assert_eq!(parse_head(b"SSH-2.0-OpenSSH\r\n\r\n").err(), Some(HostError::Protocol));
        assert_eq!(parse_head(b"HTTP/1.1 abc OK\r\n\r\n").err(), Some(HostError::Protocol));
        assert_eq!(dechunk(b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n", 100), (b"abcde".to_vec(), true));
        assert_eq!(dechunk(b"3\r\nabc\r\n2\r\nd", 100), (b"abcd".to_vec(), false));
        assert_eq!(dechunk(b"3\r\nabc\r\n2\r\nde\r\n", 4), (b"abcd".to_vec(), true));
    }
}
