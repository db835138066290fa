//! The capability host calls, carried out on tokio: TCP connect, HTTP GET, DNS query, UDP probe.
//!
//! [`permit`] decides whether a call may reach its endpoint; the caller (the `host_call` import)
//! asks it before [`perform`], which only does the I/O, each call bounded by the smaller of the
//! policy's own timeout and what is left of the run's wall-clock budget.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use hav_core::policy::{HostError, HostRequest, HostResponse, Target};
use tokio::net::{TcpStream, UdpSocket};

use super::{HostCall, PolicyTarget};

/// Most bytes of response heads (interim 1xx heads included).
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
    let deadline = tokio::time::Instant::now() + limit;
    let to = destination(req);
    let work = async {
        match req {
            HostRequest::TcpConnect { .. } => tcp_connect(to).await,
            HostRequest::HttpGet { host, path, tls, max_body, .. } => {
                http_get(to, host, path, *tls, (*max_body as usize).min(MAX_BODY), deadline).await
            }
            HostRequest::DnsQuery { name, qtype, .. } => dns_query(to, name, *qtype).await,
            HostRequest::UdpProbe { payload, expect_reply, .. } => udp_probe(to, payload, *expect_reply).await,
        }
    };
    tokio::time::timeout_at(deadline, work).await.unwrap_or(Err(HostError::Timeout))
}

async fn tcp_connect(to: SocketAddr) -> Result<Answer, HostError> {
    let start = Instant::now();
    let stream = TcpStream::connect(to).await.map_err(|e| io_error(&e))?;
    let rtt_us = micros(start);
    drop(stream);
    Ok(Answer::Connected { rtt_us })
}

/// A byte stream: plain TCP or TLS over it.
trait Stream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Stream for T {}

fn http_error(e: &crate::http::HttpError) -> HostError {
    use crate::http::HttpError;
    match e {
        HttpError::Request(_) => HostError::BadRequest,
        HttpError::Send(e) | HttpError::Receive(e) => io_error(e),
        HttpError::Timeout => HostError::Timeout,
        HttpError::Response(_) => HostError::Protocol,
    }
}

async fn http_get(
    to: SocketAddr,
    host: &str,
    path: &str,
    tls: bool,
    max_body: usize,
    deadline: tokio::time::Instant,
) -> Result<Answer, HostError> {
    if !path.starts_with('/') {
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
    let request = crate::http::get_request("1.1", &host_header, path, "hav-policy").map_err(|e| http_error(&e))?;
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
    let limits = crate::http::Limits { head: MAX_HTTP_HEADER, body: max_body };
    let r = crate::http::exchange(&mut stream, &request, limits, deadline).await.map_err(|e| http_error(&e))?;
    // A body over max_body is cut there, as the ABI says; the rest is not read.
    Ok(Answer::Http { status: r.status, body: r.body, rtt_us: micros(start) })
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
}
