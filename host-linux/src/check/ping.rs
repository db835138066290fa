//! PING_CHECK: an ICMP (v4) / ICMPv6 echo request must be answered within `connect_timeout`.
//!
//! Uses an unprivileged ping socket (`SOCK_DGRAM`/`IPPROTO_ICMP`, allowed by
//! `net.ipv4.ping_group_range`) when it can, else a raw socket (root / CAP_NET_RAW).

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU16, Ordering};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use tokio::net::UdpSocket;

use super::ProbeError;
use crate::config::check::CheckCommon;

const ECHO_REQUEST_V4: u8 = 8;
const ECHO_REPLY_V4: u8 = 0;
const ECHO_REQUEST_V6: u8 = 128;
const ECHO_REPLY_V6: u8 = 129;

static SEQ: AtomicU16 = AtomicU16::new(1);

/// The Internet checksum (RFC 1071).
fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for c in data.chunks(2) {
        let w = if c.len() == 2 { u16::from_be_bytes([c[0], c[1]]) } else { u16::from(c[0]) << 8 };
        sum += u32::from(w);
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn open(target: IpAddr, c: &CheckCommon) -> io::Result<(UdpSocket, bool)> {
    let (domain, proto) = match target {
        IpAddr::V4(_) => (Domain::IPV4, Protocol::ICMPV4),
        IpAddr::V6(_) => (Domain::IPV6, Protocol::ICMPV6),
    };
    let (sock, raw) = match Socket::new(domain, Type::DGRAM, Some(proto)) {
        Ok(s) => (s, false),
        Err(_) => (Socket::new(domain, Type::RAW, Some(proto))?, true),
    };
    sock.set_nonblocking(true)?;
    super::net::apply_opts(socket2::SockRef::from(&sock), c)?;
    if let Some(b) = c.bindto {
        sock.bind(&SockAddr::from(SocketAddr::new(b, 0)))?;
    }
    sock.connect(&SockAddr::from(SocketAddr::new(target, 0)))?;
    let std_sock: std::net::UdpSocket = sock.into();
    Ok((UdpSocket::from_std(std_sock)?, raw))
}

/// One echo request/reply exchange.
async fn ping(target: IpAddr, c: &CheckCommon) -> Result<(), ProbeError> {
    let (sock, raw) = open(target, c).map_err(|e| ProbeError::io("ICMP socket", e))?;
    let v6 = target.is_ipv6();
    let id = fastrand::u16(..);
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    let mut pkt = vec![if v6 { ECHO_REQUEST_V6 } else { ECHO_REQUEST_V4 }, 0, 0, 0];
    pkt.extend_from_slice(&id.to_be_bytes());
    pkt.extend_from_slice(&seq.to_be_bytes());
    pkt.extend_from_slice(b"hav-ping-check!!");
    if !v6 {
        // The kernel fills in ICMPv6 checksums (it needs the pseudo header) and, on ping
        // sockets, the identifier; the ICMPv4 checksum is ours to set.
        let sum = checksum(&pkt);
        pkt[2..4].copy_from_slice(&sum.to_be_bytes());
    }
    sock.send(&pkt).await.map_err(|e| ProbeError::io("send", e))?;
    let mut buf = [0u8; 1500];
    loop {
        let n = sock.recv(&mut buf).await.map_err(|e| ProbeError::io("receive", e))?;
        let mut icmp = &buf[..n];
        if raw && !v6 {
            // Raw IPv4 sockets deliver the IP header too.
            let ihl = usize::from(icmp.first().copied().unwrap_or(0) & 0x0f) * 4;
            if icmp.len() < ihl {
                continue;
            }
            icmp = &icmp[ihl..];
        }
        if icmp.len() < 8 {
            continue;
        }
        let want = if v6 { ECHO_REPLY_V6 } else { ECHO_REPLY_V4 };
        // Ping sockets rewrite the identifier and only deliver replies to it; raw sockets see
        // every echo reply from the target, so match ours.
        if icmp[0] == want && icmp[6..8] == seq.to_be_bytes() && (!raw || icmp[4..6] == id.to_be_bytes()) {
            return Ok(());
        }
    }
}

/// One PING_CHECK probe.
pub(super) async fn check(target: SocketAddr, c: &CheckCommon) -> Result<(), ProbeError> {
    let ip = match target.ip() {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    };
    tokio::time::timeout(c.connect_timeout, ping(ip, c))
        .await
        .unwrap_or_else(|_| Err(format!("no echo reply within {:?}", c.connect_timeout).into()))
}


#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_checksum() {
        // RFC 1071's example words.
        let d = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(checksum(&d), !0xddf2);
    }
}
