//! Parses arbitrary bytes as a VRRP message, as both versions would arrive
//! (IPv4 and IPv6 addresses, both checksum modes), with the checksum as
//! given and once more with it made valid so the checks after it are
//! reached. Whatever parses must emit into `buffer_len()` bytes and parse
//! back to an equal value. The lower-layer parsers get the same bytes.
#![no_main]

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hav_core::wire::ip::IpHeader;
use hav_core::wire::{
    ArpPacket, ArpRepr, ChecksumMode, NdiscPacket, NeighborAdvert, VrrpPacket, VrrpRepr,
};
use libfuzzer_sys::fuzz_target;

/// The address pairs of the seed captures, so their checksums verify.
const PAIRS: [(IpAddr, IpAddr); 2] = [
    (
        IpAddr::V4(Ipv4Addr::new(10, 99, 0, 1)),
        IpAddr::V4(Ipv4Addr::new(224, 0, 0, 18)),
    ),
    (
        IpAddr::V6(Ipv6Addr::new(
            0xfe80, 0, 0, 0, 0x3401, 0xfbff, 0xfe43, 0xdcd3,
        )),
        IpAddr::V6(Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12)),
    ),
];
const MODES: [ChecksumMode; 2] = [ChecksumMode::Rfc, ChecksumMode::V3Ipv4NoPseudoHeader];

fn roundtrip(bytes: &[u8], src: IpAddr, dst: IpAddr, mode: ChecksumMode) {
    let Ok(packet) = VrrpPacket::new_checked(bytes) else {
        return;
    };
    // Once check_len passed, no accessor panics.
    let _ = (
        packet.version(),
        packet.msg_type(),
        packet.vrid(),
        packet.priority(),
    );
    let _ = (
        packet.count_ip_addrs(),
        packet.auth_type(),
        packet.adver_int(),
    );
    let _ = (packet.max_adver_int(), packet.rsvd(), packet.checksum());
    let _ = (
        packet.address_bytes(false),
        packet.address_bytes(true),
        packet.auth_data(),
    );
    let Ok(repr) = VrrpRepr::parse(&packet, src, dst, mode) else {
        return;
    };
    assert_eq!(
        repr.buffer_len(),
        bytes.len(),
        "a parsed message is exactly buffer_len long"
    );
    let mut out = vec![0u8; repr.buffer_len()];
    repr.emit(&mut VrrpPacket::new_unchecked(&mut out[..]), src, dst, mode)
        .expect("a parsed repr emits");
    let again = VrrpRepr::parse(&VrrpPacket::new_unchecked(&out[..]), src, dst, mode)
        .expect("an emitted repr parses");
    assert_eq!(again, repr);
}

fuzz_target!(|data: &[u8]| {
    let mut fixed = data.to_vec();
    for (src, dst) in PAIRS {
        for mode in MODES {
            roundtrip(data, src, dst, mode);
            if fixed.len() >= 8 {
                let mut p = VrrpPacket::new_unchecked(&mut fixed[..]);
                if p.fill_checksum(&src, &dst, mode).is_ok() {
                    roundtrip(&fixed, src, dst, mode);
                }
            }
        }
    }
    // The takeover frames' and IP parsers must not panic either.
    let _ = IpHeader::parse(data);
    if let Ok(p) = ArpPacket::new_checked(data) {
        let _ = ArpRepr::parse(&p);
    }
    if let Ok(p) = NdiscPacket::new_checked(data) {
        let (IpAddr::V6(s), IpAddr::V6(d)) = PAIRS[1] else {
            return;
        };
        let _ = p.target_lladdr();
        let _ = NeighborAdvert::parse(&p, &s, &d);
    }
});
