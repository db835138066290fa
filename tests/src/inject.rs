//! Crafted VRRP over IPv4 from a lab namespace: well-formed adverts with any priority and
//! interval, and malformed ones (bad checksum, cut short, unknown version), sent to the VRRP
//! group 224.0.0.18 with the TTL asked for.
//!
//! The messages are built with hav-core's emitter and then damaged byte by byte, so each one
//! is wrong in exactly one way. [`Injector`] sends from a raw socket (the kernel writes the IP
//! header, with the interface's address as source); open it on a thread that has entered the
//! namespace ([`crate::netns::Netns::enter`]), or run the `vrrp-inject` binary with
//! `ip netns exec`.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};

use hav_core::wire::{ChecksumMode, VrrpAddresses, VrrpAuth, VrrpPacket, VrrpRepr, VrrpVersion};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

/// The VRRP IPv4 multicast group.
pub const VRRP_GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);

/// How a message is damaged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Craft {
    /// Well-formed.
    Valid,
    /// The checksum is off by one.
    BadChecksum,
    /// Claims one more address than it carries (the last four bytes are missing).
    Truncated,
    /// Version 4 in the version nibble (checksum recomputed, so only the version is wrong).
    BadVersion,
}

impl Craft {
    /// Parses `valid`, `bad-checksum`, `truncated` or `bad-version`.
    pub fn parse(s: &str) -> Option<Craft> {
        Some(match s {
            "valid" => Craft::Valid,
            "bad-checksum" => Craft::BadChecksum,
            "truncated" => Craft::Truncated,
            "bad-version" => Craft::BadVersion,
            _ => return None,
        })
    }
}

/// An advertisement to craft.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advert {
    /// 2 or 3.
    pub version: u8,
    /// Virtual router id.
    pub vrid: u8,
    /// Priority.
    pub priority: u8,
    /// Interval in centiseconds (VRRPv2: whole seconds are sent).
    pub interval_cs: u16,
    /// The virtual addresses it lists.
    pub vips: Vec<Ipv4Addr>,
}

/// The one's-complement Internet checksum of `data`.
fn inet_checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for c in data.chunks(2) {
        let w = u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]);
        sum += u32::from(w);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// The VRRP message (IP payload) for `adv` from `src`, damaged as `craft` says.
///
/// # Panics
/// When `adv` cannot be emitted (no addresses, VRRPv2 interval over 255 s).
pub fn build(adv: &Advert, craft: Craft, src: Ipv4Addr) -> Vec<u8> {
    let addrs: Vec<IpAddr> = adv.vips.iter().map(|a| IpAddr::V4(*a)).collect();
    let repr = VrrpRepr {
        version: if adv.version == 2 { VrrpVersion::V2 } else { VrrpVersion::V3 },
        vrid: adv.vrid,
        priority: adv.priority,
        max_adver_int: adv.interval_cs,
        auth: VrrpAuth::None,
        addresses: VrrpAddresses::List(&addrs),
    };
    let mut buf = vec![0u8; repr.buffer_len()];
    let mut pkt = VrrpPacket::new_unchecked(&mut buf);
    repr.emit(&mut pkt, IpAddr::V4(src), IpAddr::V4(VRRP_GROUP), ChecksumMode::Rfc).expect("emit advert");
    match craft {
        Craft::Valid => {}
        Craft::BadChecksum => {
            let c = u16::from_be_bytes([buf[6], buf[7]]).wrapping_add(1);
            buf[6..8].copy_from_slice(&c.to_be_bytes());
        }
        Craft::Truncated => {
            buf[3] = buf[3].saturating_add(1);
            refill_checksum(&mut buf, adv.version, src);
        }
        Craft::BadVersion => {
            buf[0] = 0x40 | (buf[0] & 0x0f);
            refill_checksum(&mut buf, adv.version, src);
        }
    }
    buf
}

/// Recomputes the checksum over `buf` as it is (v3 with the IPv4 pseudo-header).
fn refill_checksum(buf: &mut [u8], version: u8, src: Ipv4Addr) {
    buf[6..8].copy_from_slice(&[0, 0]);
    let mut data = Vec::with_capacity(12 + buf.len());
    if version == 3 {
        data.extend_from_slice(&src.octets());
        data.extend_from_slice(&VRRP_GROUP.octets());
        data.extend_from_slice(&[0, 112]);
        data.extend_from_slice(&u16::try_from(buf.len()).unwrap_or(u16::MAX).to_be_bytes());
    }
    data.extend_from_slice(buf);
    let c = inet_checksum(&data);
    buf[6..8].copy_from_slice(&c.to_be_bytes());
}

/// A raw IPv4 socket for protocol 112 that sends to the VRRP group from one address.
#[derive(Debug)]
pub struct Injector {
    sock: Socket,
    src: Ipv4Addr,
}

impl Injector {
    /// Opens the socket in the calling thread's namespace, sending multicast from the
    /// interface that has `src`, with `ttl`.
    ///
    /// # Errors
    /// When the socket cannot be opened (no CAP_NET_RAW) or configured.
    pub fn new(src: Ipv4Addr, ttl: u8) -> io::Result<Injector> {
        let sock = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(112)))?;
        sock.set_multicast_if_v4(&src)?;
        sock.set_multicast_loop_v4(false)?;
        sock.set_multicast_ttl_v4(u32::from(ttl))?;
        sock.bind(&SockAddr::from(SocketAddr::V4(SocketAddrV4::new(src, 0))))?;
        Ok(Injector { sock, src })
    }

    /// Sets the TTL of what follows.
    ///
    /// # Errors
    /// From setsockopt.
    pub fn set_ttl(&self, ttl: u8) -> io::Result<()> {
        self.sock.set_multicast_ttl_v4(u32::from(ttl))
    }

    /// The source address.
    pub fn src(&self) -> Ipv4Addr {
        self.src
    }

    /// Sends one message (an IP payload).
    ///
    /// # Errors
    /// From sendto.
    pub fn send(&self, payload: &[u8]) -> io::Result<()> {
        let to = SockAddr::from(SocketAddr::V4(SocketAddrV4::new(VRRP_GROUP, 0)));
        self.sock.send_to(payload, &to).map(drop)
    }

    /// Sends `count` messages, the n-th being `msg(n)`, at `rate` per second (paced against the
    /// clock, so a late send does not slow the rest); returns how many went out.
    ///
    /// # Errors
    /// The first send error.
    pub fn paced(&self, count: usize, rate: f64, mut msg: impl FnMut(usize) -> Vec<u8>) -> io::Result<usize> {
        let t0 = Instant::now();
        let step = Duration::from_secs_f64(1.0 / rate.max(1e-3));
        for n in 0..count {
            let due = t0 + step.mul_f64(n as f64);
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
            self.send(&msg(n))?;
        }
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hav_core::wire::Error;

    fn adv(version: u8) -> Advert {
        Advert { version, vrid: 80, priority: 255, interval_cs: 1, vips: vec![Ipv4Addr::new(10, 0, 0, 250)] }
    }

    fn parse(buf: &[u8], src: Ipv4Addr) -> Result<(u8, u8), Error> {
        let pkt = VrrpPacket::new_checked(buf)?;
        let r = VrrpRepr::parse(&pkt, IpAddr::V4(src), IpAddr::V4(VRRP_GROUP), ChecksumMode::Rfc)?;
        Ok((r.vrid, r.priority))
    }

    #[test]
    fn test_each_craft_is_wrong_in_one_way() {
        let src = Ipv4Addr::new(10, 0, 0, 2);
        for v in [2, 3] {
            assert_eq!(parse(&build(&adv(v), Craft::Valid, src), src), Ok((80, 255)));
            assert_eq!(parse(&build(&adv(v), Craft::BadChecksum, src), src), Err(Error::Checksum));
            assert!(matches!(parse(&build(&adv(v), Craft::Truncated, src), src), Err(Error::Truncated | Error::AddressCount)));
            assert!(matches!(parse(&build(&adv(v), Craft::BadVersion, src), src), Err(Error::Version(4))));
        }
    }

    #[test]
    fn test_craft_parse() {
        assert_eq!(Craft::parse("bad-checksum"), Some(Craft::BadChecksum));
        assert_eq!(Craft::parse("nope"), None);
    }
}
