//! Minimal IPv4 and IPv6 headers: enough for a host that builds whole IP
//! packets (a raw-IP socket on smoltcp, a TAP device, the NA frame) and for
//! tests that take captures apart.
//!
//! Not handled: IPv4 options on emit, fragments (a fragment is
//! [`Error::Malformed`]) and IPv6 extension headers (the next header is
//! reported as the protocol).

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{checksum, Error};

/// Length of an IPv4 header without options.
pub const IPV4_HEADER_LEN: usize = 20;
/// Length of the fixed IPv6 header.
pub const IPV6_HEADER_LEN: usize = 40;
/// The type of service keepalived gives adverts: precedence 6 (network control).
pub const TOS_NETWORK_CONTROL: u8 = 0xc0;

/// The fields of an IPv4 or IPv6 header that VRRP and NDISC care about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpHeader {
    /// Source address; its family is the header's.
    pub src: IpAddr,
    /// Destination address, of the same family as `src`.
    pub dst: IpAddr,
    /// IPv4 protocol / IPv6 next header.
    pub protocol: u8,
    /// IPv4 TTL / IPv6 hop limit.
    pub hop_limit: u8,
    /// IPv4 type of service / IPv6 traffic class.
    pub tos: u8,
    /// IPv4 identification; IPv6 flow label (20 bits).
    pub ident: u32,
    /// IPv4 don't-fragment flag; ignored for IPv6.
    pub dont_frag: bool,
    /// Length of the payload after the header.
    pub payload_len: usize,
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

impl IpHeader {
    /// Parses the header at the start of `packet` and returns it with the
    /// payload (trailing link-layer padding removed).
    ///
    /// # Errors
    /// [`Error::Truncated`] for a short buffer or a length field pointing
    /// past it; [`Error::Malformed`] for another version, a bad IHL or a
    /// fragment; [`Error::Checksum`] for a bad IPv4 header checksum.
    pub fn parse(packet: &[u8]) -> Result<(IpHeader, &[u8]), Error> {
        match packet.first().map(|b| b >> 4) {
            None => Err(Error::Truncated),
            Some(4) => Self::parse_v4(packet),
            Some(6) => Self::parse_v6(packet),
            Some(_) => Err(Error::Malformed),
        }
    }

    fn parse_v4(p: &[u8]) -> Result<(IpHeader, &[u8]), Error> {
        if p.len() < IPV4_HEADER_LEN {
            return Err(Error::Truncated);
        }
        let hl = usize::from(p[0] & 0x0f) * 4;
        if hl < IPV4_HEADER_LEN {
            return Err(Error::Malformed);
        }
        let total = usize::from(u16_at(p, 2));
        if hl > p.len() || total > p.len() {
            return Err(Error::Truncated);
        }
        if total < hl {
            return Err(Error::Malformed);
        }
        let flags_frag = u16_at(p, 6);
        // More-fragments set or a non-zero offset: a piece, not a packet.
        if flags_frag & 0x3fff != 0 {
            return Err(Error::Malformed);
        }
        if checksum::data(&p[..hl]) != 0xffff {
            return Err(Error::Checksum);
        }
        let h = IpHeader {
            src: IpAddr::V4(Ipv4Addr::new(p[12], p[13], p[14], p[15])),
            dst: IpAddr::V4(Ipv4Addr::new(p[16], p[17], p[18], p[19])),
            protocol: p[9],
            hop_limit: p[8],
            tos: p[1],
            ident: u32::from(u16_at(p, 4)),
            dont_frag: flags_frag & 0x4000 != 0,
            payload_len: total - hl,
        };
        Ok((h, &p[hl..total]))
    }

    fn parse_v6(p: &[u8]) -> Result<(IpHeader, &[u8]), Error> {
        if p.len() < IPV6_HEADER_LEN {
            return Err(Error::Truncated);
        }
        let plen = usize::from(u16_at(p, 4));
        if IPV6_HEADER_LEN + plen > p.len() {
            return Err(Error::Truncated);
        }
        let word = u32::from_be_bytes([p[0], p[1], p[2], p[3]]);
        let addr = |at: usize| {
            let mut o = [0u8; 16];
            o.copy_from_slice(&p[at..at + 16]);
            IpAddr::V6(Ipv6Addr::from(o))
        };
        let h = IpHeader {
            src: addr(8),
            dst: addr(24),
            protocol: p[6],
            hop_limit: p[7],
            tos: (word >> 20) as u8,
            ident: word & 0x000f_ffff,
            dont_frag: false,
            payload_len: plen,
        };
        Ok((h, &p[IPV6_HEADER_LEN..IPV6_HEADER_LEN + plen]))
    }

    /// The header length: 20 for IPv4, 40 for IPv6.
    pub fn header_len(&self) -> usize {
        if self.src.is_ipv6() {
            IPV6_HEADER_LEN
        } else {
            IPV4_HEADER_LEN
        }
    }

    /// Header plus payload length.
    pub fn buffer_len(&self) -> usize {
        self.header_len() + self.payload_len
    }

    /// Writes the header (IPv4 with its checksum) into the start of `buf`.
    ///
    /// # Errors
    /// [`Error::Truncated`] when `buf` is shorter than [`Self::header_len`]
    /// or the payload length does not fit the length field;
    /// [`Error::AddressFamily`] when `src` and `dst` differ in family.
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), Error> {
        let buf = buf.get_mut(..self.header_len()).ok_or(Error::Truncated)?;
        match (self.src, self.dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                let total = u16::try_from(self.payload_len + IPV4_HEADER_LEN)
                    .map_err(|_| Error::Truncated)?;
                buf[0] = 0x45;
                buf[1] = self.tos;
                buf[2..4].copy_from_slice(&total.to_be_bytes());
                buf[4..6].copy_from_slice(&(self.ident as u16).to_be_bytes());
                buf[6..8].copy_from_slice(&if self.dont_frag { [0x40, 0] } else { [0, 0] });
                buf[8] = self.hop_limit;
                buf[9] = self.protocol;
                buf[10..12].copy_from_slice(&[0, 0]);
                buf[12..16].copy_from_slice(&s.octets());
                buf[16..20].copy_from_slice(&d.octets());
                let sum = checksum::internet_checksum(buf);
                buf[10..12].copy_from_slice(&sum.to_be_bytes());
                Ok(())
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                let plen = u16::try_from(self.payload_len).map_err(|_| Error::Truncated)?;
                let word = 6u32 << 28 | u32::from(self.tos) << 20 | (self.ident & 0x000f_ffff);
                buf[0..4].copy_from_slice(&word.to_be_bytes());
                buf[4..6].copy_from_slice(&plen.to_be_bytes());
                buf[6] = self.protocol;
                buf[7] = self.hop_limit;
                buf[8..24].copy_from_slice(&s.octets());
                buf[24..40].copy_from_slice(&d.octets());
                Ok(())
            }
            _ => Err(Error::AddressFamily),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ethernet::HEADER_LEN as ETH;
    use crate::wire::test_util::hex;

    const V4: &str =
        include_str!("../../../tests/fixtures/pcap/vrrpv2-advert-3vip-authpass.hex");
    const V6: &str = include_str!("../../../tests/fixtures/pcap/vrrpv3-ipv6-2vip.hex");

    #[test]
    fn test_parse_ipv4() {
        let f = hex(V4);
        let (h, payload) = IpHeader::parse(&f[ETH..]).unwrap();
        assert_eq!(h.src, IpAddr::V4(Ipv4Addr::new(10, 99, 0, 1)));
        assert_eq!(h.dst, IpAddr::V4(crate::wire::VRRP_MCAST_V4));
        assert_eq!(h.protocol, crate::wire::VRRP_PROTO);
        assert_eq!(h.hop_limit, 255);
        assert_eq!(h.tos, TOS_NETWORK_CONTROL);
        assert_eq!(payload.len(), 28);
    }

    #[test]
    fn test_parse_ipv6() {
        let f = hex(V6);
        let (h, payload) = IpHeader::parse(&f[ETH..]).unwrap();
        assert_eq!(
            h.src,
            IpAddr::V6("fe80::3401:fbff:fe43:dcd3".parse().unwrap())
        );
        assert_eq!(h.dst, IpAddr::V6(crate::wire::VRRP_MCAST_V6));
        assert_eq!(
            (h.protocol, h.hop_limit, h.tos, h.ident),
            (112, 255, 0xc0, 0xc22be)
        );
        assert_eq!(payload.len(), 40);
    }

    #[test]
    fn test_emit_ip_headers() {
        for text in [V4, V6] {
            let f = hex(text);
            let (h, _) = IpHeader::parse(&f[ETH..]).unwrap();
            let mut out = [0u8; IPV6_HEADER_LEN];
            h.emit(&mut out).unwrap();
            assert_eq!(out[..h.header_len()], f[ETH..ETH + h.header_len()]);
            assert_eq!(
                h.emit(&mut out[..h.header_len() - 1]),
                Err(Error::Truncated)
            );
        }
        let mut bad = IpHeader::parse(&hex(V4)[ETH..]).unwrap().0;
        bad.dst = IpAddr::V6(Ipv6Addr::LOCALHOST);
        assert_eq!(bad.emit(&mut [0u8; 40]), Err(Error::AddressFamily));
    }

    #[test]
    fn test_parse_ip_errors() {
        let f = hex(V4);
        let p = &f[ETH..];
        assert_eq!(IpHeader::parse(&[]).unwrap_err(), Error::Truncated);
        assert_eq!(IpHeader::parse(&p[..19]).unwrap_err(), Error::Truncated);
        assert_eq!(IpHeader::parse(&p[..40]).unwrap_err(), Error::Truncated);
        let mut m = p.to_vec();
        m[0] = 0x55;
        assert_eq!(IpHeader::parse(&m).unwrap_err(), Error::Malformed);
        let mut m = p.to_vec();
        m[0] = 0x44;
        assert_eq!(IpHeader::parse(&m).unwrap_err(), Error::Malformed);
        let mut m = p.to_vec();
        m[6] = 0x20; // more fragments
        assert_eq!(IpHeader::parse(&m).unwrap_err(), Error::Malformed);
        let mut m = p.to_vec();
        m[8] = 254; // TTL changed, checksum stale
        assert_eq!(IpHeader::parse(&m).unwrap_err(), Error::Checksum);
        let v6 = hex(V6);
        assert_eq!(
            IpHeader::parse(&v6[ETH..ETH + 60]).unwrap_err(),
            Error::Truncated
        );
        assert_eq!(
            IpHeader::parse(&v6[ETH..ETH + 30]).unwrap_err(),
            Error::Truncated
        );
    }
}
