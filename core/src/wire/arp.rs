//! ARP over Ethernet for IPv4 (RFC 826), for the gratuitous ARP a new
//! master sends for each virtual IPv4 address (RFC 5798 6.4.1, RFC 5227 3).
//!
//! Like keepalived, the gratuitous ARP is a *request*: who-has VIP, tell
//! VIP, target hardware address ff:ff:ff:ff:ff:ff, broadcast, from the
//! interface MAC or the virtual MAC ([`super::vmac`]).

use core::net::Ipv4Addr;

use super::ethernet::{self, mac, EtherType, EthernetAddress, EthernetFrame, EthernetRepr};
use super::Error;

/// Length of an Ethernet/IPv4 ARP packet.
pub const ARP_LEN: usize = 28;
/// Length of an Ethernet frame carrying one ARP packet (without the FCS and
/// padding to 60 bytes, which the NIC adds).
pub const ARP_FRAME_LEN: usize = ethernet::HEADER_LEN + ARP_LEN;

const HTYPE_ETHERNET: u16 = 1;
const PTYPE_IPV4: u16 = 0x0800;

mod field {
    use core::ops::Range;
    pub const HTYPE: Range<usize> = 0..2;
    pub const PTYPE: Range<usize> = 2..4;
    pub const HLEN: usize = 4;
    pub const PLEN: usize = 5;
    pub const OPER: Range<usize> = 6..8;
    pub const SHA: Range<usize> = 8..14;
    pub const SPA: Range<usize> = 14..18;
    pub const THA: Range<usize> = 18..24;
    pub const TPA: Range<usize> = 24..28;
}

/// The ARP operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ArpOperation {
    /// 1: request.
    Request,
    /// 2: reply.
    Reply,
    /// Any other value.
    Unknown(u16),
}

impl From<u16> for ArpOperation {
    fn from(v: u16) -> Self {
        match v {
            1 => ArpOperation::Request,
            2 => ArpOperation::Reply,
            other => ArpOperation::Unknown(other),
        }
    }
}

impl From<ArpOperation> for u16 {
    fn from(v: ArpOperation) -> Self {
        match v {
            ArpOperation::Request => 1,
            ArpOperation::Reply => 2,
            ArpOperation::Unknown(other) => other,
        }
    }
}

/// A view of an ARP packet laid out for Ethernet and IPv4 (6-byte hardware
/// and 4-byte protocol addresses).
///
/// Once [`ArpPacket::check_len`] has passed, no accessor panics;
/// [`ArpRepr::parse`] checks that the layout really is Ethernet/IPv4.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

fn u16_at(b: &[u8], r: core::ops::Range<usize>) -> u16 {
    let s = &b[r];
    u16::from_be_bytes([s[0], s[1]])
}

fn ipv4(b: &[u8]) -> Ipv4Addr {
    Ipv4Addr::new(b[0], b[1], b[2], b[3])
}

impl<T: AsRef<[u8]>> ArpPacket<T> {
    /// Wraps a buffer without checking its length.
    pub const fn new_unchecked(buffer: T) -> Self {
        ArpPacket { buffer }
    }

    /// Wraps a buffer after [`Self::check_len`].
    ///
    /// # Errors
    /// [`Error::Truncated`] when the buffer is shorter than 28 bytes.
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Checks that the buffer holds an Ethernet/IPv4 ARP packet's 28 bytes.
    ///
    /// # Errors
    /// [`Error::Truncated`] when it does not.
    pub fn check_len(&self) -> Result<(), Error> {
        if self.buffer.as_ref().len() < ARP_LEN {
            Err(Error::Truncated)
        } else {
            Ok(())
        }
    }

    /// Gives the buffer back.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Hardware type (1 = Ethernet).
    pub fn hardware_type(&self) -> u16 {
        u16_at(self.buffer.as_ref(), field::HTYPE)
    }

    /// Protocol type (0x0800 = IPv4).
    pub fn protocol_type(&self) -> u16 {
        u16_at(self.buffer.as_ref(), field::PTYPE)
    }

    /// Hardware address length (6).
    pub fn hardware_len(&self) -> u8 {
        self.buffer.as_ref()[field::HLEN]
    }

    /// Protocol address length (4).
    pub fn protocol_len(&self) -> u8 {
        self.buffer.as_ref()[field::PLEN]
    }

    /// The operation.
    pub fn operation(&self) -> ArpOperation {
        ArpOperation::from(u16_at(self.buffer.as_ref(), field::OPER))
    }

    /// Sender hardware address.
    pub fn source_hardware_addr(&self) -> EthernetAddress {
        mac(&self.buffer.as_ref()[field::SHA])
    }

    /// Sender protocol address.
    pub fn source_protocol_addr(&self) -> Ipv4Addr {
        ipv4(&self.buffer.as_ref()[field::SPA])
    }

    /// Target hardware address.
    pub fn target_hardware_addr(&self) -> EthernetAddress {
        mac(&self.buffer.as_ref()[field::THA])
    }

    /// Target protocol address.
    pub fn target_protocol_addr(&self) -> Ipv4Addr {
        ipv4(&self.buffer.as_ref()[field::TPA])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> ArpPacket<T> {
    /// Sets the hardware type.
    pub fn set_hardware_type(&mut self, v: u16) {
        self.buffer.as_mut()[field::HTYPE].copy_from_slice(&v.to_be_bytes());
    }

    /// Sets the protocol type.
    pub fn set_protocol_type(&mut self, v: u16) {
        self.buffer.as_mut()[field::PTYPE].copy_from_slice(&v.to_be_bytes());
    }

    /// Sets the hardware address length.
    pub fn set_hardware_len(&mut self, v: u8) {
        self.buffer.as_mut()[field::HLEN] = v;
    }

    /// Sets the protocol address length.
    pub fn set_protocol_len(&mut self, v: u8) {
        self.buffer.as_mut()[field::PLEN] = v;
    }

    /// Sets the operation.
    pub fn set_operation(&mut self, v: ArpOperation) {
        self.buffer.as_mut()[field::OPER].copy_from_slice(&u16::from(v).to_be_bytes());
    }

    /// Sets the sender hardware address.
    pub fn set_source_hardware_addr(&mut self, v: EthernetAddress) {
        self.buffer.as_mut()[field::SHA].copy_from_slice(&v);
    }

    /// Sets the sender protocol address.
    pub fn set_source_protocol_addr(&mut self, v: Ipv4Addr) {
        self.buffer.as_mut()[field::SPA].copy_from_slice(&v.octets());
    }

    /// Sets the target hardware address.
    pub fn set_target_hardware_addr(&mut self, v: EthernetAddress) {
        self.buffer.as_mut()[field::THA].copy_from_slice(&v);
    }

    /// Sets the target protocol address.
    pub fn set_target_protocol_addr(&mut self, v: Ipv4Addr) {
        self.buffer.as_mut()[field::TPA].copy_from_slice(&v.octets());
    }
}

/// An Ethernet/IPv4 ARP packet as a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ArpRepr {
    /// Request or reply.
    pub operation: ArpOperation,
    /// Sender MAC address.
    pub source_hardware_addr: EthernetAddress,
    /// Sender IPv4 address.
    pub source_protocol_addr: Ipv4Addr,
    /// Target MAC address.
    pub target_hardware_addr: EthernetAddress,
    /// Target IPv4 address.
    pub target_protocol_addr: Ipv4Addr,
}

impl ArpRepr {
    /// The gratuitous ARP keepalived sends for `ip` from `mac`: a request
    /// with `ip` as sender and target and a broadcast target MAC.
    pub const fn gratuitous(mac: EthernetAddress, ip: Ipv4Addr) -> Self {
        ArpRepr {
            operation: ArpOperation::Request,
            source_hardware_addr: mac,
            source_protocol_addr: ip,
            target_hardware_addr: ethernet::BROADCAST,
            target_protocol_addr: ip,
        }
    }

    /// Whether this announces its own address (sender and target protocol
    /// addresses equal), as a gratuitous ARP does.
    pub fn is_gratuitous(&self) -> bool {
        self.source_protocol_addr == self.target_protocol_addr
    }

    /// Parses an Ethernet/IPv4 ARP packet.
    ///
    /// # Errors
    /// [`Error::Truncated`] for a short buffer, [`Error::Malformed`] for
    /// other hardware or protocol types or address lengths.
    pub fn parse<T: AsRef<[u8]>>(packet: &ArpPacket<T>) -> Result<Self, Error> {
        packet.check_len()?;
        if packet.hardware_type() != HTYPE_ETHERNET
            || packet.protocol_type() != PTYPE_IPV4
            || packet.hardware_len() != 6
            || packet.protocol_len() != 4
        {
            return Err(Error::Malformed);
        }
        Ok(ArpRepr {
            operation: packet.operation(),
            source_hardware_addr: packet.source_hardware_addr(),
            source_protocol_addr: packet.source_protocol_addr(),
            target_hardware_addr: packet.target_hardware_addr(),
            target_protocol_addr: packet.target_protocol_addr(),
        })
    }

    /// The ARP packet length, 28.
    pub const fn buffer_len(&self) -> usize {
        ARP_LEN
    }

    /// Writes the ARP packet.
    ///
    /// # Errors
    /// [`Error::Truncated`] when the buffer is shorter than 28 bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut ArpPacket<T>,
    ) -> Result<(), Error> {
        packet.check_len()?;
        packet.set_hardware_type(HTYPE_ETHERNET);
        packet.set_protocol_type(PTYPE_IPV4);
        packet.set_hardware_len(6);
        packet.set_protocol_len(4);
        packet.set_operation(self.operation);
        packet.set_source_hardware_addr(self.source_hardware_addr);
        packet.set_source_protocol_addr(self.source_protocol_addr);
        packet.set_target_hardware_addr(self.target_hardware_addr);
        packet.set_target_protocol_addr(self.target_protocol_addr);
        Ok(())
    }

    /// Writes the whole Ethernet frame (42 bytes) into the start of `buf`:
    /// broadcast destination, the sender MAC as source, EtherType ARP.
    ///
    /// # Errors
    /// [`Error::Truncated`] when `buf` is shorter than [`ARP_FRAME_LEN`].
    pub fn emit_frame(&self, buf: &mut [u8]) -> Result<(), Error> {
        let buf = buf.get_mut(..ARP_FRAME_LEN).ok_or(Error::Truncated)?;
        let mut frame = EthernetFrame::new_unchecked(buf);
        EthernetRepr {
            src_addr: self.source_hardware_addr,
            dst_addr: ethernet::BROADCAST,
            ethertype: EtherType::Arp,
        }
        .emit(&mut frame)?;
        self.emit(&mut ArpPacket::new_unchecked(frame.payload_mut()))
    }

    /// The whole Ethernet frame, as [`Self::emit_frame`] writes it.
    pub fn frame(&self) -> [u8; ARP_FRAME_LEN] {
        let mut out = [0u8; ARP_FRAME_LEN];
        // The array has exactly the frame's length, so this cannot fail.
        let _ = self.emit_frame(&mut out);
        out
    }
}

/// The gratuitous ARP frame keepalived sends for `ip` from `mac`: the
/// shortcut both hosts use on takeover.
pub fn gratuitous_arp_frame(mac: EthernetAddress, ip: Ipv4Addr) -> [u8; ARP_FRAME_LEN] {
    ArpRepr::gratuitous(mac, ip).frame()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::test_util::hex;

    const VIP: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 50);

    #[test]
    fn test_emit_garp_fixtures() {
        let cases: [(&str, EthernetAddress); 3] = [
            (
                include_str!("../../../tests/fixtures/pcap/garp-become-master-r1.hex"),
                [0xaa, 0xcb, 0x6e, 0x51, 0x1e, 0x7d],
            ),
            (
                include_str!("../../../tests/fixtures/pcap/garp-takeover-r2.hex"),
                [0xe6, 0xa4, 0xd2, 0xd7, 0xfa, 0xc2],
            ),
            (
                include_str!("../../../tests/fixtures/pcap/garp-vmac.hex"),
                crate::wire::vmac(1, false),
            ),
        ];
        for (text, mac) in cases {
            let want = hex(text);
            assert_eq!(gratuitous_arp_frame(mac, VIP)[..], want[..]);
            let mut buf = [0u8; 64];
            ArpRepr::gratuitous(mac, VIP).emit_frame(&mut buf).unwrap();
            assert_eq!(buf[..ARP_FRAME_LEN], want[..]);
        }
    }

    #[test]
    fn test_parse_garp_fixture() {
        let f = hex(include_str!(
            "../../../tests/fixtures/pcap/garp-vmac.hex"
        ));
        let eth = EthernetFrame::new_checked(&f[..]).unwrap();
        assert_eq!(eth.ethertype(), EtherType::Arp);
        assert_eq!(eth.dst_addr(), ethernet::BROADCAST);
        let repr = ArpRepr::parse(&ArpPacket::new_checked(eth.payload()).unwrap()).unwrap();
        assert_eq!(repr, ArpRepr::gratuitous(crate::wire::vmac(1, false), VIP));
        assert!(repr.is_gratuitous());
        assert_eq!(repr.operation, ArpOperation::Request);
        assert_eq!(repr.buffer_len(), ARP_LEN);
    }

    #[test]
    fn test_parse_arp_errors() {
        let f = hex(include_str!(
            "../../../tests/fixtures/pcap/garp-takeover-r2.hex"
        ));
        let arp = &f[ethernet::HEADER_LEN..];
        assert_eq!(
            ArpPacket::new_checked(&arp[..27]).unwrap_err(),
            Error::Truncated
        );
        for (at, v) in [(1, 6u8), (2, 0x86), (4, 8), (5, 16)] {
            let mut m = arp.to_vec();
            m[at] = v;
            let p = ArpPacket::new_checked(&m[..]).unwrap();
            assert_eq!(ArpRepr::parse(&p), Err(Error::Malformed));
        }
        let mut m = arp.to_vec();
        m[7] = 9;
        let op = ArpRepr::parse(&ArpPacket::new_checked(&m[..]).unwrap())
            .unwrap()
            .operation;
        assert_eq!(op, ArpOperation::Unknown(9));
        assert_eq!(u16::from(ArpOperation::Reply), 2);
        let g = ArpRepr::gratuitous([2; 6], VIP);
        assert_eq!(g.emit_frame(&mut [0u8; 41]), Err(Error::Truncated));
        assert_eq!(
            g.emit(&mut ArpPacket::new_unchecked(&mut [0u8; 27][..])),
            Err(Error::Truncated)
        );
    }
}
