//! ICMPv6 Neighbor Advertisements (RFC 4861 4.4), for the unsolicited NA a
//! new master sends for each virtual IPv6 address (RFC 5798 6.4.2,
//! RFC 4861 7.2.6).
//!
//! As keepalived sends it: from the virtual address itself to all-nodes
//! ff02::1, hop limit 255, Override set, Solicited clear, Router set when
//! the node forwards IPv6, with a Target Link-Layer Address option.

use core::net::{IpAddr, Ipv6Addr};

use super::ethernet::{self, mac, EtherType, EthernetAddress, EthernetFrame, EthernetRepr};
use super::ip::{IpHeader, IPV6_HEADER_LEN};
use super::{checksum, Error};

/// ICMPv6 type of a Neighbor Advertisement.
pub const ICMPV6_NEIGHBOR_ADVERT: u8 = 136;
/// IPv6 next-header value of ICMPv6.
pub const IPPROTO_ICMPV6: u8 = 58;
/// Option type of the Target Link-Layer Address option.
pub const OPT_TARGET_LLADDR: u8 = 2;
/// The all-nodes multicast group, ff02::1.
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
/// The hop limit of every Neighbor Discovery message.
pub const NDISC_HOP_LIMIT: u8 = 255;

/// Length of a Neighbor Advertisement without options.
pub const NA_HEADER_LEN: usize = 24;
/// Length of a Neighbor Advertisement with the Target Link-Layer Address
/// option for an Ethernet address.
pub const NA_LEN: usize = NA_HEADER_LEN + 8;
/// Length of the IPv6 packet carrying an [`NA_LEN`] advertisement.
pub const NA_PACKET_LEN: usize = IPV6_HEADER_LEN + NA_LEN;
/// Length of the Ethernet frame carrying an [`NA_PACKET_LEN`] packet.
pub const NA_FRAME_LEN: usize = ethernet::HEADER_LEN + NA_PACKET_LEN;

const FLAG_ROUTER: u8 = 0x80;
const FLAG_SOLICITED: u8 = 0x40;
const FLAG_OVERRIDE: u8 = 0x20;

mod field {
    use core::ops::{Range, RangeFrom};
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Range<usize> = 2..4;
    pub const FLAGS: usize = 4;
    pub const RESERVED: Range<usize> = 4..8;
    pub const TARGET: Range<usize> = 8..24;
    pub const OPTIONS: RangeFrom<usize> = 24..;
}

/// A view of an ICMPv6 Neighbor Advertisement.
///
/// Once [`NdiscPacket::check_len`] has passed, no accessor panics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NdiscPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> NdiscPacket<T> {
    /// Wraps a buffer without checking its length.
    pub const fn new_unchecked(buffer: T) -> Self {
        NdiscPacket { buffer }
    }

    /// Wraps a buffer after [`Self::check_len`].
    ///
    /// # Errors
    /// [`Error::Truncated`] when the 24-byte advertisement does not fit.
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Checks that the buffer holds the 24 bytes before the options.
    ///
    /// # Errors
    /// [`Error::Truncated`] when it does not.
    pub fn check_len(&self) -> Result<(), Error> {
        if self.buffer.as_ref().len() < NA_HEADER_LEN {
            Err(Error::Truncated)
        } else {
            Ok(())
        }
    }

    /// Gives the buffer back.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The ICMPv6 type (136 for an advertisement).
    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[field::TYPE]
    }

    /// The ICMPv6 code (0).
    pub fn code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    /// The checksum field.
    pub fn checksum(&self) -> u16 {
        let b = &self.buffer.as_ref()[field::CHECKSUM];
        u16::from_be_bytes([b[0], b[1]])
    }

    /// The Router flag.
    pub fn router_flag(&self) -> bool {
        self.buffer.as_ref()[field::FLAGS] & FLAG_ROUTER != 0
    }

    /// The Solicited flag.
    pub fn solicited_flag(&self) -> bool {
        self.buffer.as_ref()[field::FLAGS] & FLAG_SOLICITED != 0
    }

    /// The Override flag.
    pub fn override_flag(&self) -> bool {
        self.buffer.as_ref()[field::FLAGS] & FLAG_OVERRIDE != 0
    }

    /// The target address.
    pub fn target_addr(&self) -> Ipv6Addr {
        let mut o = [0u8; 16];
        o.copy_from_slice(&self.buffer.as_ref()[field::TARGET]);
        Ipv6Addr::from(o)
    }

    /// The options after the fixed part.
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[field::OPTIONS]
    }

    /// The first Target Link-Layer Address option's Ethernet address.
    ///
    /// # Errors
    /// [`Error::Malformed`] for an option of length 0 or one running past
    /// the buffer.
    pub fn target_lladdr(&self) -> Result<Option<EthernetAddress>, Error> {
        let mut rest = self.options();
        while !rest.is_empty() {
            let (kind, units) = match rest {
                [k, u, ..] => (*k, usize::from(*u)),
                _ => return Err(Error::Malformed),
            };
            let len = units * 8;
            if len == 0 || len > rest.len() {
                return Err(Error::Malformed);
            }
            if kind == OPT_TARGET_LLADDR && len == 8 {
                return Ok(Some(mac(&rest[2..8])));
            }
            rest = &rest[len..];
        }
        Ok(None)
    }

    /// Whether the checksum is right for the whole buffer sent from `src`
    /// to `dst`.
    pub fn verify_checksum(&self, src: &Ipv6Addr, dst: &Ipv6Addr) -> bool {
        let data = self.buffer.as_ref();
        let Ok(len) = u32::try_from(data.len()) else {
            return false;
        };
        let p = checksum::pseudo_header_v6(src, dst, IPPROTO_ICMPV6, len);
        checksum::combine(&[p, checksum::data(data)]) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> NdiscPacket<T> {
    /// Sets the ICMPv6 type.
    pub fn set_msg_type(&mut self, v: u8) {
        self.buffer.as_mut()[field::TYPE] = v;
    }

    /// Sets the ICMPv6 code.
    pub fn set_code(&mut self, v: u8) {
        self.buffer.as_mut()[field::CODE] = v;
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, v: u16) {
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&v.to_be_bytes());
    }

    /// Sets the three flags and clears the reserved bits.
    pub fn set_flags(&mut self, router: bool, solicited: bool, override_flag: bool) {
        let mut f = 0;
        if router {
            f |= FLAG_ROUTER;
        }
        if solicited {
            f |= FLAG_SOLICITED;
        }
        if override_flag {
            f |= FLAG_OVERRIDE;
        }
        self.buffer.as_mut()[field::RESERVED].copy_from_slice(&[f, 0, 0, 0]);
    }

    /// Sets the target address.
    pub fn set_target_addr(&mut self, addr: &Ipv6Addr) {
        self.buffer.as_mut()[field::TARGET].copy_from_slice(&addr.octets());
    }

    /// The options, mutably.
    pub fn options_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::OPTIONS]
    }

    /// Computes the checksum over the whole buffer and writes it.
    pub fn fill_checksum(&mut self, src: &Ipv6Addr, dst: &Ipv6Addr) {
        self.set_checksum(0);
        let data = self.buffer.as_ref();
        // An ICMPv6 message longer than 4 GiB cannot exist in a buffer we
        // are given; saturate rather than fail.
        let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
        let p = checksum::pseudo_header_v6(src, dst, IPPROTO_ICMPV6, len);
        let sum = checksum::combine(&[p, checksum::data(data)]);
        self.set_checksum(!sum);
    }
}

/// A Neighbor Advertisement as a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NeighborAdvert {
    /// The sender is a router.
    pub router: bool,
    /// Sent in answer to a solicitation (never for an unsolicited NA).
    pub solicited: bool,
    /// Override existing cache entries (set for an unsolicited NA).
    pub override_flag: bool,
    /// The address advertised.
    pub target_addr: Ipv6Addr,
    /// The Target Link-Layer Address option.
    pub target_lladdr: Option<EthernetAddress>,
}

impl NeighborAdvert {
    /// The unsolicited NA a new master sends for `target` reachable at
    /// `lladdr`. `router` mirrors whether the node forwards IPv6.
    pub const fn unsolicited(target: Ipv6Addr, lladdr: EthernetAddress, router: bool) -> Self {
        NeighborAdvert {
            router,
            solicited: false,
            override_flag: true,
            target_addr: target,
            target_lladdr: Some(lladdr),
        }
    }

    /// Parses an advertisement sent from `src` to `dst`. Options other than
    /// the Target Link-Layer Address are skipped.
    ///
    /// # Errors
    /// [`Error::Truncated`], [`Error::Malformed`] (another ICMPv6 type or
    /// code, a bad option) or [`Error::Checksum`].
    pub fn parse<T: AsRef<[u8]>>(
        packet: &NdiscPacket<T>,
        src: &Ipv6Addr,
        dst: &Ipv6Addr,
    ) -> Result<Self, Error> {
        packet.check_len()?;
        if packet.msg_type() != ICMPV6_NEIGHBOR_ADVERT || packet.code() != 0 {
            return Err(Error::Malformed);
        }
        if !packet.verify_checksum(src, dst) {
            return Err(Error::Checksum);
        }
        Ok(NeighborAdvert {
            router: packet.router_flag(),
            solicited: packet.solicited_flag(),
            override_flag: packet.override_flag(),
            target_addr: packet.target_addr(),
            target_lladdr: packet.target_lladdr()?,
        })
    }

    /// The ICMPv6 message length: 24, + 8 with the link-layer option.
    pub const fn buffer_len(&self) -> usize {
        if self.target_lladdr.is_some() {
            NA_LEN
        } else {
            NA_HEADER_LEN
        }
    }

    /// Writes the ICMPv6 message into the first [`Self::buffer_len`] bytes,
    /// with the checksum for `src` -> `dst`.
    ///
    /// # Errors
    /// [`Error::Truncated`] when the buffer is too short.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]> + ?Sized>(
        &self,
        packet: &mut NdiscPacket<&mut T>,
        src: &Ipv6Addr,
        dst: &Ipv6Addr,
    ) -> Result<(), Error> {
        let len = self.buffer_len();
        let buf = AsMut::<[u8]>::as_mut(&mut *packet.buffer)
            .get_mut(..len)
            .ok_or(Error::Truncated)?;
        let mut p = NdiscPacket::new_unchecked(buf);
        p.set_msg_type(ICMPV6_NEIGHBOR_ADVERT);
        p.set_code(0);
        p.set_flags(self.router, self.solicited, self.override_flag);
        p.set_target_addr(&self.target_addr);
        if let Some(ll) = self.target_lladdr {
            let opt = p.options_mut();
            opt[0] = OPT_TARGET_LLADDR;
            opt[1] = 1;
            opt[2..8].copy_from_slice(&ll);
        }
        p.fill_checksum(src, dst);
        Ok(())
    }

    /// Writes the IPv6 packet (header + message) from `src` to all-nodes,
    /// hop limit 255, into the start of `buf`; returns its length.
    ///
    /// # Errors
    /// [`Error::Truncated`] when `buf` is too short.
    pub fn emit_ipv6(&self, src: &Ipv6Addr, buf: &mut [u8]) -> Result<usize, Error> {
        let len = IPV6_HEADER_LEN + self.buffer_len();
        let buf = buf.get_mut(..len).ok_or(Error::Truncated)?;
        let (head, body) = buf.split_at_mut(IPV6_HEADER_LEN);
        IpHeader {
            src: IpAddr::V6(*src),
            dst: IpAddr::V6(ALL_NODES),
            protocol: IPPROTO_ICMPV6,
            hop_limit: NDISC_HOP_LIMIT,
            tos: 0,
            ident: 0,
            dont_frag: false,
            payload_len: self.buffer_len(),
        }
        .emit(head)?;
        self.emit(&mut NdiscPacket::new_unchecked(body), src, &ALL_NODES)?;
        Ok(len)
    }

    /// Writes the Ethernet frame (to 33:33:00:00:00:01 from `src_mac`)
    /// carrying [`Self::emit_ipv6`]'s packet; returns its length.
    ///
    /// # Errors
    /// [`Error::Truncated`] when `buf` is too short.
    pub fn emit_frame(
        &self,
        src_mac: EthernetAddress,
        src: &Ipv6Addr,
        buf: &mut [u8],
    ) -> Result<usize, Error> {
        let len = ethernet::HEADER_LEN + IPV6_HEADER_LEN + self.buffer_len();
        let buf = buf.get_mut(..len).ok_or(Error::Truncated)?;
        let mut frame = EthernetFrame::new_unchecked(buf);
        EthernetRepr {
            src_addr: src_mac,
            dst_addr: ethernet::ipv6_multicast_mac(&ALL_NODES),
            ethertype: EtherType::Ipv6,
        }
        .emit(&mut frame)?;
        self.emit_ipv6(src, frame.payload_mut())?;
        Ok(len)
    }
}

/// The unsolicited NA frame keepalived sends for `vip` from `mac` (the
/// interface or virtual MAC, also put in the link-layer option), with the
/// VIP as IPv6 source: the shortcut both hosts use on takeover.
pub fn unsolicited_na_frame(
    mac: EthernetAddress,
    vip: Ipv6Addr,
    router: bool,
) -> [u8; NA_FRAME_LEN] {
    let mut out = [0u8; NA_FRAME_LEN];
    // The array has exactly the frame's length, so this cannot fail.
    let _ = NeighborAdvert::unsolicited(vip, mac, router).emit_frame(mac, &vip, &mut out);
    out
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec::Vec;

    use super::*;
    use crate::wire::test_util::pcap_frames;

    const PCAP: &[u8] = include_bytes!("../../../tests/fixtures/pcap/vrrpv3-ipv6-2vip.pcap");
    const MAC: EthernetAddress = [0x36, 0x01, 0xfb, 0x43, 0xdc, 0xd3];

    /// The NA frames keepalived sent in the capture.
    fn captured_nas() -> Vec<&'static [u8]> {
        pcap_frames(PCAP)
            .into_iter()
            .filter(|f| {
                let Ok(eth) = EthernetFrame::new_checked(*f) else {
                    return false;
                };
                let Ok((h, p)) = IpHeader::parse(eth.payload()) else {
                    return false;
                };
                h.protocol == IPPROTO_ICMPV6 && p.first() == Some(&ICMPV6_NEIGHBOR_ADVERT)
            })
            .collect()
    }

    #[test]
    fn test_parse_captured_na() {
        let nas = captured_nas();
        assert!(nas.len() >= 4, "the capture holds the NA bursts");
        for f in nas {
            let eth = EthernetFrame::new_checked(f).unwrap();
            assert_eq!(eth.dst_addr(), [0x33, 0x33, 0, 0, 0, 1]);
            let (h, payload) = IpHeader::parse(eth.payload()).unwrap();
            let (IpAddr::V6(src), IpAddr::V6(dst)) = (h.src, h.dst) else {
                panic!("ipv6")
            };
            assert_eq!((dst, h.hop_limit), (ALL_NODES, NDISC_HOP_LIMIT));
            let na = NeighborAdvert::parse(&NdiscPacket::new_checked(payload).unwrap(), &src, &dst)
                .unwrap();
            assert_eq!(na, NeighborAdvert::unsolicited(src, MAC, false));
            assert!(
                ["fe80::61", "fd00:99::50"].contains(&std::format!("{}", na.target_addr).as_str())
            );
        }
    }

    #[test]
    fn test_emit_na_matches_capture() {
        for f in captured_nas() {
            let (h, payload) = IpHeader::parse(&f[ethernet::HEADER_LEN..]).unwrap();
            let IpAddr::V6(vip) = h.src else {
                panic!("ipv6")
            };
            // The ICMPv6 message alone ...
            let na = NeighborAdvert::unsolicited(vip, MAC, false);
            let mut icmp = [0u8; NA_LEN];
            na.emit(
                &mut NdiscPacket::new_unchecked(&mut icmp[..]),
                &vip,
                &ALL_NODES,
            )
            .unwrap();
            assert_eq!(icmp[..], payload[..]);
            // ... the IPv6 packet, and the whole frame.
            let mut pkt = [0u8; NA_PACKET_LEN];
            assert_eq!(na.emit_ipv6(&vip, &mut pkt), Ok(NA_PACKET_LEN));
            assert_eq!(pkt[..], f[ethernet::HEADER_LEN..]);
            assert_eq!(unsolicited_na_frame(MAC, vip, false)[..], f[..]);
        }
    }

    #[test]
    fn test_emit_na_router_flag_and_no_option() {
        let vip: Ipv6Addr = "fd00::50".parse().unwrap();
        let frame = unsolicited_na_frame(crate::wire::vmac(7, true), vip, true);
        let (_, payload) = IpHeader::parse(&frame[ethernet::HEADER_LEN..]).unwrap();
        let p = NdiscPacket::new_checked(payload).unwrap();
        assert!(p.router_flag() && p.override_flag() && !p.solicited_flag());
        assert_eq!(p.target_lladdr(), Ok(Some(crate::wire::vmac(7, true))));
        let bare = NeighborAdvert {
            target_lladdr: None,
            ..NeighborAdvert::unsolicited(vip, MAC, false)
        };
        let mut buf = [0u8; NA_HEADER_LEN];
        bare.emit(
            &mut NdiscPacket::new_unchecked(&mut buf[..]),
            &vip,
            &ALL_NODES,
        )
        .unwrap();
        let back = NeighborAdvert::parse(
            &NdiscPacket::new_checked(&buf[..]).unwrap(),
            &vip,
            &ALL_NODES,
        );
        assert_eq!(back, Ok(bare));
    }

    #[test]
    fn test_parse_na_errors() {
        let f = captured_nas()[0];
        let (h, payload) = IpHeader::parse(&f[ethernet::HEADER_LEN..]).unwrap();
        let IpAddr::V6(src) = h.src else {
            panic!("ipv6")
        };
        let parse =
            |b: &[u8]| NeighborAdvert::parse(&NdiscPacket::new_checked(b)?, &src, &ALL_NODES);
        assert_eq!(parse(&payload[..23]), Err(Error::Truncated));
        let with = |at: usize, v: u8, fix: bool| {
            let mut m = payload.to_vec();
            m[at] = v;
            if fix {
                NdiscPacket::new_unchecked(&mut m[..]).fill_checksum(&src, &ALL_NODES);
            }
            parse(&m)
        };
        assert_eq!(with(0, 135, true), Err(Error::Malformed));
        assert_eq!(with(1, 1, true), Err(Error::Malformed));
        assert_eq!(with(30, 0, false), Err(Error::Checksum));
        assert_eq!(with(25, 0, true), Err(Error::Malformed)); // option length 0
        assert_eq!(with(25, 2, true), Err(Error::Malformed)); // option past the end
        assert_eq!(with(24, 1, true).map(|n| n.target_lladdr), Ok(None)); // source ll option
        let na = NeighborAdvert::unsolicited(src, MAC, false);
        assert_eq!(
            na.emit_frame(MAC, &src, &mut [0u8; NA_FRAME_LEN - 1]),
            Err(Error::Truncated)
        );
        assert_eq!(na.emit_ipv6(&src, &mut [0u8; 10]), Err(Error::Truncated));
        let mut short = [0u8; NA_LEN - 1];
        assert_eq!(
            na.emit(
                &mut NdiscPacket::new_unchecked(&mut short[..]),
                &src,
                &ALL_NODES
            ),
            Err(Error::Truncated)
        );
    }
}
