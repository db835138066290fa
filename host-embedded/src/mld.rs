//! Unsolicited MLDv2 reports (RFC 3810 section 6.1): the join of the VRRP
//! group ff02::12.
//!
//! smoltcp announces an IPv6 join with a CHANGE_TO_INCLUDE record with no
//! source, which RFC 3810 reads as leaving the group, and only once; a
//! snooping switch with a querier would then stop forwarding the adverts.
//! The router sends the join itself, as CHANGE_TO_EXCLUDE with no source
//! (RFC 3810 section 6.1: "join" = TO_EX({})), with the IGMP reports'
//! schedule: after startup and after every link-up, repeated.

use core::net::{IpAddr, Ipv6Addr};

use hav_core::wire::checksum;
use hav_core::wire::ethernet::HEADER_LEN;
use hav_core::wire::ip::{IpHeader, IPV6_HEADER_LEN};
use hav_core::wire::EthernetAddress;

/// IPv6 next header: Hop-by-Hop Options.
const HOP_BY_HOP: u8 = 0;
/// IPv6 next header: ICMPv6.
const ICMPV6: u8 = 58;
/// ICMPv6 type of an MLDv2 report.
const MLDV2_REPORT: u8 = 143;
/// Multicast address record type CHANGE_TO_EXCLUDE_MODE.
const CHANGE_TO_EXCLUDE: u8 = 4;
/// All MLDv2-capable routers, where reports go.
const ALL_MLDV2_ROUTERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x16);
/// The Hop-by-Hop header: next header ICMPv6, length 0 (8 bytes), Router
/// Alert (type 5, length 2, value 0: MLD), PadN of 2 bytes.
const HBH: [u8; 8] = [ICMPV6, 0, 5, 2, 0, 0, 1, 0];
/// The ICMPv6 message: 8 bytes of header and one 20-byte record.
const MLD_LEN: usize = 8 + 20;
/// Length of a whole report frame.
pub(crate) const REPORT_FRAME_LEN: usize = HEADER_LEN + IPV6_HEADER_LEN + HBH.len() + MLD_LEN;

/// The Ethernet frame of an MLDv2 report joining `group`, from `mac` and
/// the link-local address `src`.
pub(crate) fn report_frame(mac: EthernetAddress, src: Ipv6Addr, group: Ipv6Addr) -> [u8; REPORT_FRAME_LEN] {
    let mut f = [0u8; REPORT_FRAME_LEN];
    let dst = ALL_MLDV2_ROUTERS.octets();
    f[0..6].copy_from_slice(&[0x33, 0x33, dst[12], dst[13], dst[14], dst[15]]);
    f[6..12].copy_from_slice(&mac);
    f[12..14].copy_from_slice(&0x86ddu16.to_be_bytes());
    let header = IpHeader {
        src: IpAddr::V6(src),
        dst: IpAddr::V6(ALL_MLDV2_ROUTERS),
        protocol: HOP_BY_HOP,
        // Reports never leave the link.
        hop_limit: 1,
        tos: 0,
        ident: 0,
        dont_frag: false,
        payload_len: HBH.len() + MLD_LEN,
    };
    let ip_end = HEADER_LEN + IPV6_HEADER_LEN;
    // The frame has room for exactly this header and both families match,
    // so emit cannot fail.
    let _ = header.emit(&mut f[HEADER_LEN..ip_end]);
    f[ip_end..ip_end + HBH.len()].copy_from_slice(&HBH);
    let mld = &mut f[ip_end + HBH.len()..];
    mld[0] = MLDV2_REPORT;
    // Code 0, checksum, reserved; one record.
    mld[6..8].copy_from_slice(&1u16.to_be_bytes());
    // Record: type, no auxiliary data, no source, the group.
    mld[8] = CHANGE_TO_EXCLUDE;
    mld[12..28].copy_from_slice(&group.octets());
    let pseudo = checksum::pseudo_header_v6(&src, &ALL_MLDV2_ROUTERS, ICMPV6, MLD_LEN as u32);
    let sum = !checksum::combine(&[pseudo, checksum::data(mld)]);
    mld[2..4].copy_from_slice(&sum.to_be_bytes());
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_report_frame() {
        let group: Ipv6Addr = "ff02::12".parse().unwrap();
        let src: Ipv6Addr = "fe80::2".parse().unwrap();
        let mac = [0x02, 0x68, 10, 0, 0, 2];
        let f = report_frame(mac, src, group);
        assert_eq!(f[..6], [0x33, 0x33, 0, 0, 0, 0x16]);
        assert_eq!(f[6..12], mac);
        assert_eq!(f[12..14], [0x86, 0xdd]);
        let (ip, payload) = IpHeader::parse(&f[HEADER_LEN..]).unwrap();
        assert_eq!((ip.src, ip.dst), (IpAddr::V6(src), IpAddr::V6(ALL_MLDV2_ROUTERS)));
        assert_eq!((ip.protocol, ip.hop_limit, payload.len()), (HOP_BY_HOP, 1, 36));
        assert_eq!(payload[..8], HBH);
        let mld = &payload[8..];
        assert_eq!(mld[0], 143);
        assert_eq!(mld[6..8], [0, 1]);
        assert_eq!(mld[8..12], [4, 0, 0, 0]);
        assert_eq!(mld[12..], group.octets());
        let pseudo = checksum::pseudo_header_v6(&src, &ALL_MLDV2_ROUTERS, ICMPV6, 28);
        assert_eq!(checksum::combine(&[pseudo, checksum::data(mld)]), 0xffff);
    }
}
