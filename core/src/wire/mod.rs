//! Wire formats: VRRP v2/v3 advertisements, and the gratuitous ARP and
//! unsolicited Neighbor Advertisement frames a new master sends.
//!
//! Every format has the two types smoltcp uses:
//!
//! - a `Packet<T: AsRef<[u8]>>` view over a buffer, with one getter per
//!   field (and a setter when `T: AsMut<[u8]>`). `new_checked` runs
//!   `check_len`; **once `check_len` has passed, no accessor panics**;
//! - a `Repr`, the validated value, with `parse`, `buffer_len` and `emit`.
//!   **`emit` into a buffer of exactly `buffer_len()` bytes never panics**;
//!   it returns an [`Error`] for a value that cannot go on the wire.
//!
//! Nothing here allocates. A parsed [`VrrpRepr`] borrows its address list
//! from the packet; one built for sending borrows the caller's `&[IpAddr]`
//! (see [`VrrpAddresses`]).
//!
//! Bad input never panics: it is an [`Error`]. The socket layer above is
//! expected to count and drop such packets, not to fail.

pub mod ah;
pub mod arp;
pub mod checksum;
pub mod ethernet;
pub mod ip;
pub mod ndisc;
mod vrrp;

use core::net::{Ipv4Addr, Ipv6Addr};

pub use self::arp::{gratuitous_arp_frame, ArpOperation, ArpPacket, ArpRepr, ARP_FRAME_LEN};
pub use self::ethernet::{EtherType, EthernetAddress, EthernetFrame, EthernetRepr};
pub use self::ndisc::{unsolicited_na_frame, NdiscPacket, NeighborAdvert, NA_FRAME_LEN};
pub use self::vrrp::{
    ChecksumMode, VrrpAddressIter, VrrpAddresses, VrrpAuth, VrrpAuthType, VrrpMessageType,
    VrrpPacket, VrrpRepr, VrrpVersion, VRRP_HEADER_LEN, VRRP_V2_AUTH_LEN,
};

/// IP protocol number of VRRP (IANA), for the IPv4 protocol field and the
/// IPv6 next header.
pub const VRRP_PROTO: u8 = 112;
/// The IPv4 multicast group VRRP advertisements go to, 224.0.0.18.
pub const VRRP_MCAST_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// The IPv6 multicast group VRRP advertisements go to, ff02::12.
pub const VRRP_MCAST_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);
/// The IPv4 TTL / IPv6 hop limit of every advertisement; a receiver drops
/// adverts with any other value (RFC 3768 7.1, RFC 5798 7.1).
pub const VRRP_TTL: u8 = 255;

/// The virtual router MAC address of `vrid` (RFC 5798 7.3):
/// `00-00-5E-00-01-{VRID}` for IPv4 and `00-00-5E-00-02-{VRID}` for IPv6.
pub const fn vmac(vrid: u8, ipv6: bool) -> EthernetAddress {
    [0x00, 0x00, 0x5e, 0x00, if ipv6 { 0x02 } else { 0x01 }, vrid]
}

/// Why bytes could not be parsed, or a value could not be emitted.
///
/// A small `Copy` value: the socket layer counts it and drops the packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Error {
    /// The buffer is shorter than the fixed header, or than the header's
    /// counts and lengths say it is; or an emit buffer is too small.
    Truncated,
    /// The buffer is longer than the address count (and, for VRRPv2, the
    /// authentication data) account for.
    AddressCount,
    /// A VRRP advertisement with no address; the minimum count is 1.
    NoAddresses,
    /// The VRRP version field is neither 2 nor 3.
    Version(u8),
    /// The VRRP type is not Advertisement (1), the only one defined.
    Type(u8),
    /// The checksum does not match.
    Checksum,
    /// The IPsec AH integrity check value of a VRRPv2 advert does not match
    /// (another `auth_pass`, or a changed packet).
    AhIcv,
    /// A VRRPv2 authentication type that is not 0, 1 or 2.
    AuthType(u8),
    /// VRRPv3 carries no authentication, but the repr to emit has some.
    V3Auth,
    /// VRRPv2 is IPv4 only, but an IPv6 address is involved.
    V2OverIpv6,
    /// The source and destination addresses are of different families, or
    /// the address list is not of the packet's family.
    AddressFamily,
    /// The address list to emit mixes IPv4 and IPv6.
    MixedFamilies,
    /// More than 255 addresses to emit.
    TooManyAddresses,
    /// An advert interval that the version cannot carry: VRRPv2 whole
    /// seconds 1..=255 (0 is rejected on parse, as it cannot be emitted),
    /// VRRPv3 centiseconds 0..=4095.
    Interval,
    /// A lower-layer header (Ethernet, IP, ARP, ICMPv6) is malformed or not
    /// the expected kind.
    Malformed,
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Error::Truncated => f.write_str("truncated packet"),
            Error::AddressCount => f.write_str("packet length does not match the address count"),
            Error::NoAddresses => f.write_str("advertisement without addresses"),
            Error::Version(v) => write!(f, "unsupported VRRP version {v}"),
            Error::Type(t) => write!(f, "unsupported VRRP message type {t}"),
            Error::Checksum => f.write_str("bad checksum"),
            Error::AhIcv => f.write_str("IPsec AH integrity check value does not match"),
            Error::AuthType(t) => write!(f, "unknown VRRPv2 authentication type {t}"),
            Error::V3Auth => f.write_str("VRRPv3 has no authentication"),
            Error::V2OverIpv6 => f.write_str("VRRPv2 does not run over IPv6"),
            Error::AddressFamily => f.write_str("address family mismatch"),
            Error::MixedFamilies => f.write_str("address list mixes IPv4 and IPv6"),
            Error::TooManyAddresses => f.write_str("more than 255 addresses"),
            Error::Interval => f.write_str("advertisement interval out of range"),
            Error::Malformed => f.write_str("malformed lower-layer header"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for Error {}

/// Test helpers shared by the files of this module.
#[cfg(test)]
pub(crate) mod test_util {
    extern crate std;
    use std::vec::Vec;

    /// Decodes a fixture's hex text (whitespace ignored).
    pub fn hex(s: &str) -> Vec<u8> {
        let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
        assert!(digits.len().is_multiple_of(2), "odd hex length");
        digits
            .chunks(2)
            .map(|p| {
                let n = |c: u8| (c as char).to_digit(16).expect("hex digit") as u8;
                n(p[0]) << 4 | n(p[1])
            })
            .collect()
    }

    /// The frames of a classic little- or big-endian pcap file.
    pub fn pcap_frames(file: &[u8]) -> Vec<&[u8]> {
        assert!(file.len() >= 24, "pcap global header");
        let le = match file[..4] {
            [0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1] => true,
            [0xa1, 0xb2, 0xc3, 0xd4] | [0xa1, 0xb2, 0x3c, 0x4d] => false,
            _ => panic!("not a pcap file"),
        };
        let u32_at = |b: &[u8], at: usize| {
            let w = [b[at], b[at + 1], b[at + 2], b[at + 3]];
            if le {
                u32::from_le_bytes(w)
            } else {
                u32::from_be_bytes(w)
            }
        };
        assert_eq!(u32_at(file, 20), 1, "link type Ethernet");
        let mut frames = Vec::new();
        let mut at = 24;
        while at + 16 <= file.len() {
            let incl = u32_at(file, at + 8) as usize;
            at += 16;
            frames.push(&file[at..at + incl]);
            at += incl;
        }
        assert_eq!(at, file.len(), "pcap ends on a record boundary");
        frames
    }

    pub use crate::test_rng::XorShift;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_vmac() {
        assert_eq!(vmac(1, false), [0x00, 0x00, 0x5e, 0x00, 0x01, 0x01]);
        assert_eq!(vmac(61, true), [0x00, 0x00, 0x5e, 0x00, 0x02, 61]);
        assert_eq!(vmac(255, false), [0x00, 0x00, 0x5e, 0x00, 0x01, 0xff]);
    }

    #[test]
    fn test_error_display() {
        extern crate std;
        use std::string::ToString;
        assert_eq!(Error::Version(4).to_string(), "unsupported VRRP version 4");
        assert_eq!(
            Error::AuthType(9).to_string(),
            "unknown VRRPv2 authentication type 9"
        );
    }
}
