//! Raw IP sockets for VRRP (IP protocol 112), one per interface and family.
//!
//! Sending: the kernel builds the IP header. The source address is chosen
//! per packet with an `IP_PKTINFO` / `IPV6_PKTINFO` control message in
//! `sendmsg`, not with `bind()`: a raw socket bound to a local address only
//! receives datagrams addressed to that address, which would lose the
//! multicast adverts. The control message also names the interface.
//! TTL / hop limit is 255 for multicast (RFC 5798 §5.1.1.3); a unicast advert may carry its
//! own (`unicast_ttl`) in an `IP_TTL` / `IPV6_HOPLIMIT` control message. Without one, IPv4
//! unicast leaves with 255 and IPv6 unicast with the kernel's default hop limit (the
//! interface's `hop_limit` sysctl), as keepalived sends them. The TOS / traffic class is 0xc0
//! (network control), as keepalived sends.
//!
//! Receiving: an IPv4 raw socket hands over the IP header with the data; its
//! TTL, addresses and header length are read from it, and the interface is the
//! one the socket is bound to (no control message per datagram). An IPv6 raw socket
//! delivers only the payload, so the hop limit comes from `IPV6_HOPLIMIT`
//! and the destination and interface from `IPV6_PKTINFO`.
//!
//! A malformed datagram (truncated header, wrong protocol, longer than the
//! caller's buffer) is not an error: it is logged at debug level and dropped.
//!
//! VRRPv2 with IPsec AH authentication (keepalived's `auth_type AH`) goes
//! over IPv4 protocol 51 instead ([`VrrpSocket::open_ah`]): the ICV covers
//! the IPv4 header, so the socket sends whole datagrams that
//! `hav_core::wire::ah` built (`IP_HDRINCL`; the kernel fills in the header
//! checksum only, which the ICV does not cover), and receives them whole.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::AsFd;
use std::task::{Context, Poll};

use nix::sys::socket::{setsockopt, sockopt};
use socket2::{Domain, InterfaceIndexOrAddress, Protocol, Socket, Type};
use tokio::io::unix::AsyncFd;

use super::error::{NetError, Result};
use super::sys;

/// IP protocol number of VRRP.
pub const IPPROTO_VRRP: i32 = 112;
/// IP protocol number of the IPsec Authentication Header.
pub const IPPROTO_AH: i32 = 51;
/// The IPv4 VRRP multicast group (RFC 5798 §5.1.1.2).
pub const VRRP_GROUP_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// The IPv6 VRRP multicast group (RFC 5798 §5.1.2.2).
pub const VRRP_GROUP_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);
/// TTL / hop limit of every VRRP packet.
pub const VRRP_TTL: u8 = 255;
/// IPv4 TOS / IPv6 traffic class: DSCP CS6 (network control), as keepalived.
pub const VRRP_TOS: u8 = 0xc0;

/// Address family of a [`VrrpSocket`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// IPv4 (VRRPv2 or v3).
    V4,
    /// IPv6 (VRRPv3).
    V6,
}

impl Family {
    /// The family of an address.
    pub fn of(addr: IpAddr) -> Family {
        match addr {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }
}

/// Where a received VRRP message came from; `&buf[offset..offset + len]`
/// is the VRRP message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    /// IP source address.
    pub src: IpAddr,
    /// IP destination address (the multicast group, or ours for unicast).
    pub dst: IpAddr,
    /// IPv4 TTL or IPv6 hop limit; VRRP drops anything but 255.
    pub ttl: u8,
    /// Interface the packet arrived on.
    pub ifindex: u32,
    /// Start of the VRRP message in the caller's buffer; for an AH socket,
    /// of the whole IPv4 datagram (0).
    pub offset: usize,
    /// Length of the VRRP message, or of the whole datagram (AH).
    pub len: usize,
    /// Whether this is an IPv4 datagram with an Authentication Header
    /// (from an [`VrrpSocket::open_ah`] socket), for
    /// `hav_core::vrrp::Engine::receive_ah`.
    pub ah: bool,
}

/// A raw protocol-112 socket bound to one interface and one family, or a
/// protocol-51 (AH) IPv4 socket that sends and receives whole datagrams.
#[derive(Debug)]
pub struct VrrpSocket {
    fd: AsyncFd<Socket>,
    ifindex: u32,
    ifname: String,
    family: Family,
    ah: bool,
}

impl VrrpSocket {
    /// Opens the socket on interface `ifindex` / `ifname` and joins
    /// `groups` (normally [`VRRP_GROUP_V4`] or [`VRRP_GROUP_V6`]; empty for
    /// unicast-only peers). Must be called inside a tokio runtime.
    ///
    /// # Errors
    /// [`NetError::Invalid`] when a group is not a multicast address of
    /// `family`; [`NetError::Socket`] naming the option that failed (for
    /// instance `SO_BINDTODEVICE` on an unknown interface).
    pub fn open(ifindex: u32, ifname: &str, family: Family, groups: &[IpAddr]) -> Result<Self> {
        Self::open_proto(ifindex, ifname, family, groups, false)
    }

    /// Opens an IPv4 raw socket for IP protocol 51 (IPsec AH) on interface
    /// `ifindex` / `ifname`, with `IP_HDRINCL`, and joins `groups`:
    /// [`VrrpSocket::send_to`] and [`VrrpSocket::send_queued`] then take
    /// whole IPv4 datagrams, and [`Received`] gives whole datagrams
    /// (`ah: true`). Must be called inside a tokio runtime.
    ///
    /// # Errors
    /// As [`VrrpSocket::open`], and `IP_HDRINCL`.
    pub fn open_ah(ifindex: u32, ifname: &str, groups: &[IpAddr]) -> Result<Self> {
        Self::open_proto(ifindex, ifname, Family::V4, groups, true)
    }

    fn open_proto(ifindex: u32, ifname: &str, family: Family, groups: &[IpAddr], ah: bool) -> Result<Self> {
        for g in groups {
            if Family::of(*g) != family || !g.is_multicast() {
                return Err(NetError::Invalid {
                    what: "multicast group",
                    detail: format!("{g} for a {family:?} socket on {ifname}"),
                });
            }
        }
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(NetError::Invalid {
                what: "context",
                detail: format!("VrrpSocket on {ifname} must be opened inside a tokio runtime"),
            });
        }
        let err = |op: &str| {
            let op = op.to_owned();
            move |e| NetError::socket(op, ifname, e)
        };
        let domain = match family {
            Family::V4 => Domain::IPV4,
            Family::V6 => Domain::IPV6,
        };
        let (proto, what) = if ah { (IPPROTO_AH, "socket(SOCK_RAW, 51)") } else { (IPPROTO_VRRP, "socket(SOCK_RAW, 112)") };
        let sock = Socket::new(domain, Type::RAW, Some(Protocol::from(proto))).map_err(err(what))?;
        sock.set_nonblocking(true).map_err(err("O_NONBLOCK"))?;
        sock.bind_device(Some(ifname.as_bytes()))
            .map_err(err("SO_BINDTODEVICE"))?;
        let ttl = u32::from(VRRP_TTL);
        match family {
            Family::V4 => {
                sock.set_ttl(ttl).map_err(err("IP_TTL"))?;
                sock.set_multicast_ttl_v4(ttl)
                    .map_err(err("IP_MULTICAST_TTL"))?;
                sock.set_multicast_loop_v4(false)
                    .map_err(err("IP_MULTICAST_LOOP"))?;
                sock.set_tos(u32::from(VRRP_TOS)).map_err(err("IP_TOS"))?;
                if ah {
                    sock.set_header_included_v4(true).map_err(err("IP_HDRINCL"))?;
                }
                for g in groups {
                    if let IpAddr::V4(g) = g {
                        sock.join_multicast_v4_n(g, &InterfaceIndexOrAddress::Index(ifindex))
                            .map_err(err(&format!("IP_ADD_MEMBERSHIP {g}")))?;
                    }
                }
            }
            Family::V6 => {
                sock.set_multicast_hops_v6(ttl)
                    .map_err(err("IPV6_MULTICAST_HOPS"))?;
                sock.set_multicast_loop_v6(false)
                    .map_err(err("IPV6_MULTICAST_LOOP"))?;
                sock.set_multicast_if_v6(ifindex)
                    .map_err(err("IPV6_MULTICAST_IF"))?;
                sock.set_tclass_v6(u32::from(VRRP_TOS))
                    .map_err(err("IPV6_TCLASS"))?;
                sock.set_recv_hoplimit_v6(true)
                    .map_err(err("IPV6_RECVHOPLIMIT"))?;
                setsockopt(&sock, sockopt::Ipv6RecvPacketInfo, &true)
                    .map_err(|e| NetError::socket("IPV6_RECVPKTINFO", ifname, e.into()))?;
                for g in groups {
                    if let IpAddr::V6(g) = g {
                        sock.join_multicast_v6(g, ifindex)
                            .map_err(err(&format!("IPV6_JOIN_GROUP {g}")))?;
                    }
                }
            }
        }
        let fd = sys::async_socket(sock).map_err(err("register with tokio"))?;
        Ok(VrrpSocket {
            fd,
            ifindex,
            ifname: ifname.to_owned(),
            family,
            ah,
        })
    }

    /// Interface index the socket is bound to.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// Interface name the socket is bound to.
    pub fn ifname(&self) -> &str {
        &self.ifname
    }

    /// Address family.
    pub fn family(&self) -> Family {
        self.family
    }

    /// Whether this is an AH socket ([`VrrpSocket::open_ah`]).
    pub fn is_ah(&self) -> bool {
        self.ah
    }

    /// Waits for the next well-formed VRRP datagram and returns where its
    /// VRRP message sits in `buf`. Malformed datagrams are dropped.
    ///
    /// Cancel-safe: a datagram is either fully received or left queued.
    pub async fn recv(&self, buf: &mut [u8]) -> Result<Received> {
        std::future::poll_fn(|cx| self.poll_recv(cx, buf)).await
    }

    /// Receives the next well-formed VRRP datagram into `buf` if one is queued, or registers
    /// `cx` to be woken when the socket becomes readable. Malformed datagrams are dropped.
    pub fn poll_recv(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<Result<Received>> {
        let mut got = Vec::with_capacity(1);
        loop {
            match self.poll_recv_many(cx, std::slice::from_mut(&mut &mut *buf), &mut got) {
                Poll::Ready(Ok(_)) => {
                    if let Some((_, r)) = got.pop() {
                        return Poll::Ready(Ok(r));
                    }
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    /// Receives what is queued, up to one datagram into each of `bufs` with one `recvmmsg`,
    /// or registers `cx` to be woken when the socket becomes readable. Returns how many of
    /// `bufs` were used; each well-formed VRRP datagram among them is pushed to `got` with the
    /// index of its buffer. Malformed datagrams are dropped (their buffers count as used).
    /// This lets one task drain many sockets without a task, a buffer or a syscall per datagram.
    pub fn poll_recv_many<B: AsMut<[u8]>>(&self, cx: &mut Context<'_>, bufs: &mut [B], got: &mut Vec<(usize, Received)>) -> Poll<Result<usize>> {
        loop {
            let mut guard = match self.fd.poll_read_ready(cx) {
                Poll::Ready(Ok(g)) => g,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(NetError::socket("poll", &self.ifname, e))),
                Poll::Pending => return Poll::Pending,
            };
            let each = |i: usize, buf: &mut [u8], meta: &sys::RecvMeta| {
                if meta.truncated {
                    tracing::debug!(ifname = %self.ifname, "dropping VRRP datagram longer than the {}-byte buffer", buf.len());
                    return;
                }
                let parsed = match self.family {
                    Family::V4 => parse_v4(&buf[..meta.len.min(buf.len())], self.ifindex, self.ah),
                    Family::V6 => parse_v6(meta, self.ifindex),
                };
                match parsed {
                    Ok(r) => got.push((i, r)),
                    Err(why) => tracing::debug!(ifname = %self.ifname, src = ?meta.src, "dropping datagram: {why}"),
                }
            };
            // IPv4 reads the sender from the IP header; IPv6 needs it from the kernel.
            let n = match sys::recvmmsg(self.fd.get_ref().as_fd(), bufs, self.family == Family::V6, each) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    guard.clear_ready();
                    continue;
                }
                Err(e) => return Poll::Ready(Err(NetError::socket("recvmmsg", &self.ifname, e))),
            };
            if n < bufs.len().min(sys::MMSG_MAX) {
                // Fewer than asked for: the queue is empty now. Readiness that arrived since
                // stays set (tokio clears only the readiness this guard saw), so the next
                // call need not hit EAGAIN to find out.
                guard.clear_ready();
            }
            return Poll::Ready(Ok(n));
        }
    }

    /// Sends one VRRP message from `src` to `dst` (the group or a unicast
    /// peer). The kernel builds the IP header.
    ///
    /// # Errors
    /// [`NetError::Invalid`] when an address is not of the socket's family;
    /// [`NetError::Socket`] from `sendmsg`, e.g. `EINVAL` when `src` is not
    /// an address of this host (or an IPv6 address still tentative), or
    /// `EAGAIN` when the socket buffer is full.
    pub fn send_to(&self, vrrp: &[u8], src: IpAddr, dst: IpAddr) -> Result<()> {
        let m = self.datagram(vrrp, src, dst, None)?;
        sys::sendmmsg(self.fd.get_ref().as_fd(), &[m])
            .map(|_| ())
            .map_err(|e| NetError::socket(format!("sendmsg {src} -> {dst}"), &self.ifname, e))
    }

    /// Sends everything queued in `out` with as few `sendmmsg` calls as it takes, and empties
    /// it. A message the kernel refuses is reported to `failed` and skipped; the rest still go.
    pub fn send_queued(&self, out: &mut Outbox, mut failed: impl FnMut(IpAddr, NetError)) {
        let mut batch: Vec<sys::OutDatagram<'_>> = Vec::with_capacity(out.msgs.len().min(sys::MMSG_MAX));
        let mut i = 0;
        while i < out.msgs.len() {
            batch.clear();
            for m in out.msgs[i..].iter().take(sys::MMSG_MAX) {
                match self.datagram(&out.bytes[m.start..m.end], m.src, m.dst, m.ttl) {
                    Ok(d) => batch.push(d),
                    Err(e) => {
                        // Only the leading messages can be skipped here; stop the batch before
                        // a bad one and report it when it leads.
                        if batch.is_empty() {
                            failed(m.dst, e);
                            i += 1;
                        }
                        break;
                    }
                }
            }
            if batch.is_empty() {
                continue;
            }
            match sys::sendmmsg(self.fd.get_ref().as_fd(), &batch) {
                Ok(n) => i += n.max(1),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let m = &out.msgs[i];
                    failed(m.dst, NetError::socket(format!("sendmsg {} -> {}", m.src, m.dst), &self.ifname, e));
                    i += 1;
                }
            }
        }
        drop(batch);
        out.clear();
    }

    fn datagram<'a>(&self, vrrp: &'a [u8], src: IpAddr, dst: IpAddr, ttl: Option<u8>) -> Result<sys::OutDatagram<'a>> {
        if Family::of(src) != self.family || Family::of(dst) != self.family {
            return Err(NetError::Invalid {
                what: "address family",
                detail: format!("{src} -> {dst} on the {:?} socket of {}", self.family, self.ifname),
            });
        }
        let dst = match dst {
            IpAddr::V4(d) => SocketAddr::V4(SocketAddrV4::new(d, 0)),
            IpAddr::V6(d) => {
                let scope = if needs_scope(d) { self.ifindex } else { 0 };
                SocketAddr::V6(SocketAddrV6::new(d, 0, 0, scope))
            }
        };
        Ok(sys::OutDatagram { buf: vrrp, dst, src, ifindex: self.ifindex, ttl })
    }
}

/// VRRP messages queued for one socket, sent together by [`VrrpSocket::send_queued`]: the
/// adverts of many instances that fall due at the same tick leave in one `sendmmsg`. The
/// buffers are kept, so queueing allocates nothing once warm.
#[derive(Debug, Default)]
pub struct Outbox {
    bytes: Vec<u8>,
    msgs: Vec<Queued>,
}

#[derive(Debug, Clone, Copy)]
struct Queued {
    start: usize,
    end: usize,
    src: IpAddr,
    dst: IpAddr,
    ttl: Option<u8>,
}

impl Outbox {
    /// Queues a message of `len` bytes from `src` to `dst`, written by `fill` into a zeroed
    /// buffer, to leave with TTL / hop limit `ttl` (`None`: the socket's); nothing is queued
    /// when `fill` fails.
    pub fn push_with<E>(&mut self, len: usize, src: IpAddr, dst: IpAddr, ttl: Option<u8>, fill: impl FnOnce(&mut [u8]) -> core::result::Result<(), E>) -> core::result::Result<(), E> {
        let start = self.bytes.len();
        self.bytes.resize(start + len, 0);
        match fill(&mut self.bytes[start..]) {
            Ok(()) => {
                self.msgs.push(Queued { start, end: start + len, src, dst, ttl });
                Ok(())
            }
            Err(e) => {
                self.bytes.truncate(start);
                Err(e)
            }
        }
    }

    /// Messages queued.
    pub fn len(&self) -> usize {
        self.msgs.len()
    }

    /// Nothing queued.
    pub fn is_empty(&self) -> bool {
        self.msgs.is_empty()
    }

    fn clear(&mut self) {
        self.bytes.clear();
        self.msgs.clear();
    }
}

/// Link-local unicast and link/interface-local multicast need a scope id.
fn needs_scope(a: Ipv6Addr) -> bool {
    let s = a.segments()[0];
    (s & 0xffc0) == 0xfe80 || (a.is_multicast() && (s & 0x000f) <= 2)
}

/// Reads the IPv4 header the raw socket hands over with the data.
fn parse_v4(
    pkt: &[u8],
    ifindex: u32,
    ah: bool,
) -> std::result::Result<Received, String> {
    if pkt.len() < 20 {
        return Err(format!("{} bytes, shorter than an IPv4 header", pkt.len()));
    }
    if pkt[0] >> 4 != 4 {
        return Err(format!("IP version {}", pkt[0] >> 4));
    }
    let ihl = usize::from(pkt[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([pkt[2], pkt[3]]));
    if ihl < 20 || ihl > pkt.len() || total < ihl {
        return Err(format!("bad IPv4 header length {ihl} / total {total}"));
    }
    if i32::from(pkt[9]) != if ah { IPPROTO_AH } else { IPPROTO_VRRP } {
        return Err(format!("IP protocol {}", pkt[9]));
    }
    let end = total.min(pkt.len());
    // AH: the whole datagram, for the ICV.
    let (offset, len) = if ah { (0, end) } else { (ihl, end - ihl) };
    let src = Ipv4Addr::new(pkt[12], pkt[13], pkt[14], pkt[15]);
    let dst = Ipv4Addr::new(pkt[16], pkt[17], pkt[18], pkt[19]);
    Ok(Received {
        src: IpAddr::V4(src),
        dst: IpAddr::V4(dst),
        ttl: pkt[8],
        ifindex,
        offset,
        len,
        ah,
    })
}

/// Collects what the IPv6 control messages said.
fn parse_v6(meta: &sys::RecvMeta, ifindex: u32) -> std::result::Result<Received, String> {
    let Some(SocketAddr::V6(src)) = meta.src else {
        return Err(format!("no IPv6 source address ({:?})", meta.src));
    };
    let Some((pkt_ifindex, dst)) = meta.pktinfo_v6 else {
        return Err("no IPV6_PKTINFO".into());
    };
    let Some(ttl) = meta.hop_limit else {
        return Err("no IPV6_HOPLIMIT".into());
    };
    Ok(Received {
        src: IpAddr::V6(*src.ip()),
        dst: IpAddr::V6(dst),
        ttl,
        ifindex: if pkt_ifindex == 0 {
            ifindex
        } else {
            pkt_ifindex
        },
        offset: 0,
        len: meta.len,
        ah: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // keepalived's advert from the fixture capture vrrpv2-advert.pcap.
    const CAPTURE: &str =
        "45c0002800020000ff70d02d0a630001e00000122101960100013e670a6300320000000000000000";

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn test_parse_v4_capture() {
        let pkt = hex(CAPTURE);
        let r = parse_v4(&pkt, 7, false).unwrap();
        assert_eq!(r.src, IpAddr::V4(Ipv4Addr::new(10, 99, 0, 1)));
        assert_eq!(r.dst, IpAddr::V4(VRRP_GROUP_V4));
        assert_eq!(r.ttl, 255);
        assert_eq!(r.ifindex, 7);
        assert_eq!((r.offset, r.len), (20, 20));
        assert_eq!(pkt[r.offset], 0x21);
    }

    #[test]
    fn test_parse_v4_ah_gives_the_whole_datagram() {
        // keepalived's AH advert, fixture vrrpv2-ah.pcap, with 2 bytes of link padding.
        let mut pkt = hex("45c0004000010000ff33d0530a630001e0000012700400000a63000100000001c378e5a95af63370c24ecad72107960102013c610a6300320000000000000000");
        pkt.extend_from_slice(&[0, 0]);
        let r = parse_v4(&pkt, 3, true).unwrap();
        assert!(r.ah);
        assert_eq!((r.offset, r.len, r.ttl), (0, 64, 255));
        assert_eq!(r.src, IpAddr::V4(Ipv4Addr::new(10, 99, 0, 1)));
        // An AH socket takes protocol 51 only, a VRRP socket 112 only.
        assert!(parse_v4(&pkt, 3, false).unwrap_err().contains("protocol 51"));
        assert!(parse_v4(&hex(CAPTURE), 3, true).unwrap_err().contains("protocol 112"));
    }

    #[test]
    fn test_parse_v4_skips_options_and_padding() {
        let mut pkt = hex(CAPTURE);
        // IHL 6: a 4-byte option (NOP NOP NOP EOL) before the payload.
        pkt[0] = 0x46;
        pkt.splice(20..20, [1, 1, 1, 0]);
        pkt[3] += 4;
        // Ethernet-style trailing padding beyond the total length.
        pkt.extend_from_slice(&[0; 6]);
        let r = parse_v4(&pkt, 1, false).unwrap();
        assert_eq!((r.offset, r.len), (24, 20));
        assert_eq!(pkt[r.offset], 0x21);
    }

    #[test]
    fn test_parse_v4_rejects_garbage() {
        assert!(parse_v4(&[0x45; 10], 1, false).is_err());
        let mut pkt = hex(CAPTURE);
        pkt[0] = 0x65;
        assert!(parse_v4(&pkt, 1, false).is_err());
        let mut pkt = hex(CAPTURE);
        pkt[0] = 0x4f; // IHL 60 > packet
        assert!(parse_v4(&pkt, 1, false).is_err());
        let mut pkt = hex(CAPTURE);
        pkt[9] = 6;
        assert!(parse_v4(&pkt, 1, false).is_err());
        let mut pkt = hex(CAPTURE);
        pkt[2] = 0;
        pkt[3] = 8; // total < IHL
        assert!(parse_v4(&pkt, 1, false).is_err());
    }

    #[test]
    fn test_parse_v6_needs_control_messages() {
        let src: SocketAddrV6 = "[fe80::1%3]:0".parse().unwrap();
        let mut meta = sys::RecvMeta {
            len: 20,
            src: Some(SocketAddr::V6(src)),
            ..Default::default()
        };
        assert!(parse_v6(&meta, 3).is_err());
        meta.pktinfo_v6 = Some((3, VRRP_GROUP_V6));
        assert!(parse_v6(&meta, 3).is_err());
        meta.hop_limit = Some(255);
        let r = parse_v6(&meta, 3).unwrap();
        assert_eq!(r.src, IpAddr::V6(*src.ip()));
        assert_eq!(r.dst, IpAddr::V6(VRRP_GROUP_V6));
        assert_eq!((r.ttl, r.ifindex, r.offset, r.len), (255, 3, 0, 20));
    }

    #[test]
    fn test_needs_scope() {
        assert!(needs_scope("fe80::1".parse().unwrap()));
        assert!(needs_scope(VRRP_GROUP_V6));
        assert!(!needs_scope("2001:db8::1".parse().unwrap()));
        assert!(!needs_scope("ff05::12".parse().unwrap()));
    }

    #[tokio::test]
    async fn test_open_rejects_bad_groups() {
        let e = VrrpSocket::open(
            1,
            "lo",
            Family::V4,
            &[IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))],
        )
        .unwrap_err();
        assert!(matches!(e, NetError::Invalid { .. }));
        assert!(e.to_string().contains("10.0.0.1"));
        let e = VrrpSocket::open(1, "lo", Family::V6, &[IpAddr::V4(VRRP_GROUP_V4)]).unwrap_err();
        assert!(e.to_string().contains("on lo"));
    }
}
