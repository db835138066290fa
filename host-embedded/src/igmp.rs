//! Unsolicited IGMPv2 membership reports (RFC 2236 section 3).
//!
//! smoltcp reports a join once, when the group is added, which is lost when
//! the link is not up yet (a PHY still negotiating, a switch port still
//! learning). The router repeats the report itself after startup and after
//! every link-up, as RFC 2236 recommends ("repeat once or twice after short
//! delays"), sending the frame straight on the driver.

use core::net::{IpAddr, Ipv4Addr};

use hav_core::wire::checksum::internet_checksum;
use hav_core::wire::ethernet::{ipv4_multicast_mac, HEADER_LEN};
use hav_core::wire::ip::{IpHeader, IPV4_HEADER_LEN, TOS_NETWORK_CONTROL};
use hav_core::wire::EthernetAddress;

/// IP protocol number of IGMP.
const IGMP_PROTO: u8 = 2;
/// IGMPv2 Membership Report.
const V2_REPORT: u8 = 0x16;
/// Length of an IGMPv2 message.
const IGMP_LEN: usize = 8;
/// Length of a whole report frame.
pub(crate) const REPORT_FRAME_LEN: usize = HEADER_LEN + IPV4_HEADER_LEN + IGMP_LEN;

/// The Ethernet frame of an IGMPv2 report for `group`, from `mac`/`src`.
pub(crate) fn report_frame(
    mac: EthernetAddress,
    src: Ipv4Addr,
    group: Ipv4Addr,
    ident: u16,
) -> [u8; REPORT_FRAME_LEN] {
    let mut f = [0u8; REPORT_FRAME_LEN];
    f[0..6].copy_from_slice(&ipv4_multicast_mac(&group));
    f[6..12].copy_from_slice(&mac);
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    let header = IpHeader {
        src: IpAddr::V4(src),
        dst: IpAddr::V4(group),
        protocol: IGMP_PROTO,
        // Reports never leave the link.
        hop_limit: 1,
        tos: TOS_NETWORK_CONTROL,
        ident: u32::from(ident),
        dont_frag: false,
        payload_len: IGMP_LEN,
    };
    // The frame has room for exactly this header and both families match,
    // so emit cannot fail.
    let _ = header.emit(&mut f[HEADER_LEN..HEADER_LEN + IPV4_HEADER_LEN]);
    let igmp = &mut f[HEADER_LEN + IPV4_HEADER_LEN..];
    igmp[0] = V2_REPORT;
    igmp[4..8].copy_from_slice(&group.octets());
    let sum = internet_checksum(igmp);
    igmp[2..4].copy_from_slice(&sum.to_be_bytes());
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_report_frame() {
        let group = Ipv4Addr::new(224, 0, 0, 18);
        let src = Ipv4Addr::new(10, 0, 0, 2);
        let mac = [0x02, 0x68, 10, 0, 0, 2];
        let f = report_frame(mac, src, group, 7);
        assert_eq!(f[..6], [0x01, 0x00, 0x5e, 0x00, 0x00, 0x12]);
        assert_eq!(f[6..12], mac);
        assert_eq!(f[12..14], [0x08, 0x00]);
        let (ip, payload) = IpHeader::parse(&f[HEADER_LEN..]).unwrap();
        assert_eq!((ip.src, ip.dst), (IpAddr::V4(src), IpAddr::V4(group)));
        assert_eq!((ip.protocol, ip.hop_limit), (IGMP_PROTO, 1));
        // Type, max response time, checksum, group.
        assert_eq!(payload, [0x16, 0x00, 0x09, 0xed, 224, 0, 0, 18]);
        assert_eq!(internet_checksum(payload), 0);
    }
}
