//! Half-open TCP probes: `TCP_CHECK { half_open }`, a hav extension.
//!
//! A probe sends one SYN from a raw socket. A SYN-ACK means the real server's port listens (up);
//! a reset means it is closed (down); silence until `connect_timeout` means filtered or gone
//! (down), with the SYN sent again every second meanwhile, as the kernel's connect would.
//!
//! No connection is ever made, and none is left half-open on the real server: the SYN comes from
//! a port that a bound, never listening TCP socket holds for the prober, so when the SYN-ACK
//! arrives the kernel finds no socket for it and answers with a reset, which removes the real
//! server's SYN-RECV entry (with SYN cookies on, the server keeps no entry at all). The port is
//! also what keeps the host's own connects from reusing it.
//!
//! One [`SynProber`] serves every half-open check of a [`super::Checkers`]: a raw TCP socket per
//! address family, with a socket filter so that it only receives segments for the reserved
//! port, and one reader task that hands each answer to the probe waiting for it, matched by the
//! real server's address and port and the acknowledgement of the probe's random sequence number.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsFd;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hav_core::wire::checksum;
use socket2::{Domain, Protocol, SockRef, Socket, Type};
use tokio::io::unix::AsyncFd;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::config::check::CheckCommon;

/// What came back for a probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    /// SYN-ACK: the port listens.
    SynAck,
    /// RST: nothing listens.
    Reset,
}

/// (real server address, real server port, the probe's sequence number).
type Key = (IpAddr, u16, u32);

/// TCP flags.
const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const ACK: u8 = 0x10;

/// Bytes of the SYN: a 20-byte header and an MSS option (a SYN without one gets the 536-byte
/// default, which some servers' SYN cookies encode badly).
const SYN_LEN: usize = 24;

/// How long a resolved source address is used before the route is asked again (a probe that
/// gets no answer asks again at once).
const SOURCE_TTL: Duration = Duration::from_secs(30);

/// The raw socket and reserved port of one address family.
struct Family {
    raw: AsyncFd<Socket>,
    /// The TCP socket that holds `port` (bound, never listening).
    _hold: Socket,
    port: u16,
}

type Pending = Mutex<HashMap<Key, oneshot::Sender<Answer>>>;

/// The half-open prober of a set of checkers.
pub(crate) struct SynProber {
    v4: Option<Arc<Family>>,
    v6: Option<Arc<Family>>,
    pending: Arc<Pending>,
    readers: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for SynProber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SynProber").field("v4", &self.v4.as_ref().map(|f| f.port)).field("v6", &self.v6.as_ref().map(|f| f.port)).finish()
    }
}

impl Drop for SynProber {
    fn drop(&mut self) {
        for r in &self.readers {
            r.abort();
        }
    }
}

/// A classic BPF program that keeps the TCP segments whose destination port is `port`. On an
/// IPv4 raw socket the filter sees the IP header first, on an IPv6 one the TCP header.
fn port_filter(port: u16, v4: bool) -> Vec<libc::sock_filter> {
    let op = |code: u32, jt: u8, jf: u8, k: u32| libc::sock_filter { code: code as u16, jt, jf, k };
    let (ld, ldx, h, ind, abs, b, msh, jmp, jeq, k, ret) = (
        libc::BPF_LD,
        libc::BPF_LDX,
        libc::BPF_H,
        libc::BPF_IND,
        libc::BPF_ABS,
        libc::BPF_B,
        libc::BPF_MSH,
        libc::BPF_JMP,
        libc::BPF_JEQ,
        libc::BPF_K,
        libc::BPF_RET,
    );
    let mut prog = Vec::with_capacity(5);
    if v4 {
        // X = IP header length; A = the half-word at X + 2 (the destination port).
        prog.push(op(ldx | b | msh, 0, 0, 0));
        prog.push(op(ld | h | ind, 0, 0, 2));
    } else {
        prog.push(op(ld | h | abs, 0, 0, 2));
    }
    prog.push(op(jmp | jeq | k, 0, 1, u32::from(port)));
    prog.push(op(ret | k, 0, 0, 0xffff));
    prog.push(op(ret | k, 0, 0, 0));
    prog
}

impl Family {
    fn open(v4: bool) -> io::Result<Family> {
        let domain = if v4 { Domain::IPV4 } else { Domain::IPV6 };
        let hold = Socket::new(domain, Type::STREAM.cloexec(), Some(Protocol::TCP))?;
        if !v4 {
            hold.set_only_v6(true)?;
        }
        let any: SocketAddr = if v4 { (Ipv4Addr::UNSPECIFIED, 0).into() } else { (Ipv6Addr::UNSPECIFIED, 0).into() };
        hold.bind(&any.into())?;
        let port = hold.local_addr()?.as_socket().map(|a| a.port()).unwrap_or(0);
        let raw = Socket::new(domain, Type::RAW.nonblocking().cloexec(), Some(Protocol::TCP))?;
        raw.attach_filter(&port_filter(port, v4))?;
        // Segments that arrived between the socket's creation and its filter.
        let mut junk = [0u8; 64];
        while crate::net::sys::recvmsg(raw.as_fd(), &mut junk).is_ok() {}
        let raw = crate::net::sys::async_socket(raw)?;
        Ok(Family { raw, _hold: hold, port })
    }
}

/// A parsed answer: (real server address, its port, our sequence number it acknowledges, answer).
fn parse(bytes: &[u8], from: Option<SocketAddr>, v4: bool, port: u16) -> Option<(Key, Answer)> {
    let (src, tcp) = if v4 {
        let ihl = usize::from(*bytes.first()? & 0x0f) * 4;
        if bytes.len() < ihl + 20 || ihl < 20 {
            return None;
        }
        let src = Ipv4Addr::new(bytes[12], bytes[13], bytes[14], bytes[15]);
        let total = usize::from(u16::from_be_bytes([bytes[2], bytes[3]])).min(bytes.len());
        let tcp = &bytes[ihl..total.max(ihl)];
        // The checksum is not checked: a raw socket sees segments before TCP does, and one that
        // a veth or loopback peer sent still holds the partial sum that checksum offload left
        // for the hardware. The match on the probe's random sequence number is the guard.
        (IpAddr::V4(src), tcp)
    } else {
        // An IPv6 raw socket gets no IP header: the sender's address is the source.
        (from?.ip(), bytes)
    };
    if tcp.len() < 20 {
        return None;
    }
    let sport = u16::from_be_bytes([tcp[0], tcp[1]]);
    let dport = u16::from_be_bytes([tcp[2], tcp[3]]);
    let ack = u32::from_be_bytes([tcp[8], tcp[9], tcp[10], tcp[11]]);
    let flags = tcp[13];
    if dport != port || flags & ACK == 0 || flags & FIN != 0 {
        return None;
    }
    let answer = if flags & RST != 0 {
        Answer::Reset
    } else if flags & SYN != 0 {
        Answer::SynAck
    } else {
        return None;
    };
    Some(((src, sport, ack.wrapping_sub(1)), answer))
}

/// Reads what is queued on a family's raw socket (one `recvmmsg`, up to 32 segments) and hands
/// each answer to the probe waiting for it. `WouldBlock` when nothing was queued.
fn drain(family: &Family, v4: bool, pending: &Pending) -> io::Result<usize> {
    let mut bufs = [[0u8; 96]; 32];
    let mut got: [Option<(Key, Answer)>; 32] = [None; 32];
    let n = crate::net::sys::recvmmsg(family.raw.get_ref().as_fd(), &mut bufs, !v4, |i, b, m| {
        got[i] = parse(&b[..m.len.min(b.len())], m.src, v4, family.port);
    })?;
    if got.iter().any(Option::is_some) {
        let mut p = pending.lock().unwrap_or_else(|p| p.into_inner());
        for (key, answer) in got.iter().flatten() {
            if let Some(tx) = p.remove(key) {
                let _ = tx.send(*answer);
            }
        }
    }
    Ok(n)
}

/// Waits for answers on a family's raw socket and hands them to the probes waiting for them
/// (the probes drain the socket themselves right after sending, which settles local targets;
/// this is for the rest).
async fn read_answers(family: Arc<Family>, v4: bool, pending: Arc<Pending>) {
    loop {
        let mut guard = match family.raw.readable().await {
            Ok(g) => g,
            Err(e) => {
                tracing::error!(error = %e, "half-open prober: the raw socket failed; half-open checks time out from now");
                return;
            }
        };
        loop {
            match drain(&family, v4, &pending) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    guard.clear_ready();
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    tracing::warn!(error = %e, "half-open prober: receive failed");
                    guard.clear_ready();
                    break;
                }
            }
        }
    }
}

/// Removes a probe's entry when the probe ends, however it ends.
struct Waiting<'a> {
    pending: &'a Pending,
    key: Key,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.pending.lock().unwrap_or_else(|p| p.into_inner()).remove(&self.key);
    }
}

impl SynProber {
    /// Opens the raw sockets (which needs CAP_NET_RAW) and starts their readers on the current
    /// tokio runtime. A family this host cannot open (no IPv6) is left out; fails when neither
    /// opens.
    ///
    /// # Panics
    /// When called outside a tokio runtime.
    pub(crate) fn start() -> io::Result<SynProber> {
        let pending: Arc<Pending> = Arc::default();
        let v4 = Family::open(true);
        let v6 = Family::open(false);
        let (v4, v6) = match (v4, v6) {
            (Err(e), Err(_)) => return Err(e),
            (a, b) => (a.ok().map(Arc::new), b.ok().map(Arc::new)),
        };
        let mut readers = Vec::new();
        for (f, is_v4) in [(&v4, true), (&v6, false)] {
            if let Some(f) = f {
                readers.push(tokio::spawn(read_answers(f.clone(), is_v4, pending.clone())));
            }
        }
        Ok(SynProber { v4, v6, pending, readers })
    }
}

/// The per-check state of a half-open TCP_CHECK.
#[derive(Debug)]
pub(crate) struct HalfOpenProbe {
    /// The source address the route to the target picks (or `bindto`), and when it was looked up.
    source: Mutex<Option<(IpAddr, Instant)>>,
    /// A raw socket of its own for sending, when the check sets `bind_if`, `fwmark` or `bindto`.
    sender: Option<Socket>,
}

impl HalfOpenProbe {
    /// The probe of `target` with the check's options.
    pub(crate) fn new(target: SocketAddr, c: &CheckCommon) -> io::Result<HalfOpenProbe> {
        let sender = if c.bind_if.is_some() || c.fwmark.is_some() || c.bindto.is_some() {
            let s = Socket::new(Domain::for_address(target), Type::RAW.nonblocking().cloexec(), Some(Protocol::TCP))?;
            super::net::apply_opts(SockRef::from(&s), c)?;
            if let Some(ip) = c.bindto {
                s.bind(&SocketAddr::new(ip, 0).into())?;
            }
            // It only sends: a filter that keeps nothing.
            s.attach_filter(&[libc::sock_filter { code: (libc::BPF_RET | libc::BPF_K) as u16, jt: 0, jf: 0, k: 0 }])?;
            Some(s)
        } else {
            None
        };
        Ok(HalfOpenProbe { source: Mutex::new(None), sender })
    }

    /// The source address of SYNs to `target`: `bindto`, else what the route picks (looked up
    /// with a connected UDP socket, which sends nothing).
    fn source(&self, target: SocketAddr, c: &CheckCommon) -> io::Result<IpAddr> {
        if let Some(ip) = c.bindto {
            return Ok(ip);
        }
        let now = Instant::now();
        let mut cached = self.source.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((ip, at)) = *cached {
            if now.duration_since(at) < SOURCE_TTL {
                return Ok(ip);
            }
        }
        let s = Socket::new(Domain::for_address(target), Type::DGRAM.cloexec(), Some(Protocol::UDP))?;
        super::net::apply_opts(SockRef::from(&s), c)?;
        s.connect(&target.into())?;
        let ip = s.local_addr()?.as_socket().map(|a| a.ip()).ok_or_else(|| io::Error::other("no source address"))?;
        *cached = Some((ip, now));
        Ok(ip)
    }

    /// One probe: `Ok` on a SYN-ACK, `ECONNREFUSED` on a reset, `TimedOut` after
    /// `connect_timeout` without an answer.
    pub(crate) async fn check(&self, prober: &SynProber, target: SocketAddr, c: &CheckCommon) -> io::Result<()> {
        let v4 = target.is_ipv4();
        let family = if v4 { &prober.v4 } else { &prober.v6 };
        let Some(family) = family else {
            return Err(io::Error::new(io::ErrorKind::Unsupported, "no raw socket for this address family"));
        };
        let src = self.source(target, c)?;
        let seq = fastrand::u32(..);
        let seg = syn_segment(src, target, family.port, seq)?;
        let key = (target.ip(), target.port(), seq);
        let (tx, mut rx) = oneshot::channel();
        prober.pending.lock().unwrap_or_else(|p| p.into_inner()).insert(key, tx);
        let _waiting = Waiting { pending: &prober.pending, key };
        let sock = self.sender.as_ref().unwrap_or(family.raw.get_ref());
        let dst = SocketAddr::new(target.ip(), 0).into();
        let deadline = Instant::now() + c.connect_timeout;
        let mut resend = Duration::from_secs(1);
        loop {
            sock.send_to(&seg, &dst)?;
            // A target on this host (or a very near one) has answered by now: the kernel ran the
            // handshake inside send_to. Reading here settles it without a timer or a wake-up.
            let _ = drain(family, v4, &prober.pending);
            match rx.try_recv() {
                Ok(Answer::SynAck) => return Ok(()),
                Ok(Answer::Reset) => return Err(io::Error::from_raw_os_error(libc::ECONNREFUSED)),
                Err(_) => {}
            }
            let wake = (Instant::now() + resend).min(deadline);
            match tokio::time::timeout_at(wake, &mut rx).await {
                Ok(Ok(Answer::SynAck)) => return Ok(()),
                Ok(Ok(Answer::Reset)) => return Err(io::Error::from_raw_os_error(libc::ECONNREFUSED)),
                Ok(Err(_)) => return Err(io::Error::other("the half-open prober stopped")),
                Err(_) if Instant::now() >= deadline => {
                    // Perhaps the route, and the source address with it, changed.
                    *self.source.lock().unwrap_or_else(|p| p.into_inner()) = None;
                    return Err(io::Error::new(io::ErrorKind::TimedOut, format!("no answer to SYN within {:?}", c.connect_timeout)));
                }
                Err(_) => resend = resend.saturating_mul(2),
            }
        }
    }
}

/// A SYN from `src`:`sport` to `target` with sequence number `seq`, checksummed.
fn syn_segment(src: IpAddr, target: SocketAddr, sport: u16, seq: u32) -> io::Result<[u8; SYN_LEN]> {
    let mut seg = [0u8; SYN_LEN];
    seg[0..2].copy_from_slice(&sport.to_be_bytes());
    seg[2..4].copy_from_slice(&target.port().to_be_bytes());
    seg[4..8].copy_from_slice(&seq.to_be_bytes());
    seg[12] = ((SYN_LEN / 4) as u8) << 4;
    seg[13] = SYN;
    seg[14..16].copy_from_slice(&64240u16.to_be_bytes());
    // MSS option: kind 2, length 4; 1460 for IPv4, 1440 for IPv6.
    let mss: u16 = if target.is_ipv4() { 1460 } else { 1440 };
    seg[20..22].copy_from_slice(&[2, 4]);
    seg[22..24].copy_from_slice(&mss.to_be_bytes());
    let pseudo = checksum::pseudo_header(&src, &target.ip(), 6, SYN_LEN as u32)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, format!("source {src} and target {target} are of different families")))?;
    let c = !checksum::combine(&[pseudo, checksum::data(&seg)]);
    seg[16..18].copy_from_slice(&c.to_be_bytes());
    Ok(seg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_syn_segment_checksum_and_fields() {
        let src: IpAddr = "192.0.2.1".parse().unwrap();
        let t: SocketAddr = "192.0.2.7:8080".parse().unwrap();
        let seg = syn_segment(src, t, 40000, 0x01020304).unwrap();
        assert_eq!(u16::from_be_bytes([seg[0], seg[1]]), 40000);
        assert_eq!(u16::from_be_bytes([seg[2], seg[3]]), 8080);
        assert_eq!(&seg[4..8], &[1, 2, 3, 4]);
        assert_eq!(seg[13], SYN);
        assert_eq!(seg[12] >> 4, 6, "data offset: 24 bytes");
        let IpAddr::V4(s) = src else { unreachable!() };
        let IpAddr::V4(d) = t.ip() else { unreachable!() };
        assert_eq!(checksum::combine(&[checksum::pseudo_header_v4(s, d, 6, 24), checksum::data(&seg)]), 0xffff);
        assert!(syn_segment("::1".parse().unwrap(), t, 1, 1).is_err(), "mixed families");
    }

    fn answer_v4(flags: u8, ack: u32, dport: u16) -> Vec<u8> {
        let src = Ipv4Addr::new(192, 0, 2, 7);
        let dst = Ipv4Addr::new(192, 0, 2, 1);
        let mut ip = vec![0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, 6, 0, 0];
        ip.extend_from_slice(&src.octets());
        ip.extend_from_slice(&dst.octets());
        let mut tcp = [0u8; 20];
        tcp[0..2].copy_from_slice(&8080u16.to_be_bytes());
        tcp[2..4].copy_from_slice(&dport.to_be_bytes());
        tcp[8..12].copy_from_slice(&ack.to_be_bytes());
        tcp[12] = 5 << 4;
        tcp[13] = flags;
        let c = !checksum::combine(&[checksum::pseudo_header_v4(src, dst, 6, 20), checksum::data(&tcp)]);
        tcp[16..18].copy_from_slice(&c.to_be_bytes());
        ip.extend_from_slice(&tcp);
        ip
    }

    #[test]
    fn test_parse_answers() {
        let rs: IpAddr = "192.0.2.7".parse().unwrap();
        let p = |b: &[u8]| parse(b, None, true, 40000);
        assert_eq!(p(&answer_v4(SYN | ACK, 101, 40000)), Some(((rs, 8080, 100), Answer::SynAck)));
        assert_eq!(p(&answer_v4(RST | ACK, 0, 40000)), Some(((rs, 8080, u32::MAX), Answer::Reset)));
        assert_eq!(p(&answer_v4(SYN | ACK, 101, 40001)), None, "another port");
        assert_eq!(p(&answer_v4(SYN, 101, 40000)), None, "a SYN without ACK is not an answer");
        assert_eq!(p(&answer_v4(ACK | FIN, 101, 40000)), None);
        let whole = answer_v4(SYN | ACK, 101, 40000);
        for n in 0..whole.len() {
            assert_eq!(p(&whole[..n]), None, "truncated to {n}");
        }
        let v6: SocketAddr = "[2001:db8::7]:0".parse().unwrap();
        let tcp = &answer_v4(SYN | ACK, 5, 40000)[20..];
        assert_eq!(parse(tcp, Some(v6), false, 40000), Some((("2001:db8::7".parse().unwrap(), 8080, 4), Answer::SynAck)));
        assert_eq!(parse(tcp, None, false, 40000), None, "no sender");
    }
}
