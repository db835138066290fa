//! VRRP parse + validate and emit, on keepalived's captured adverts.
// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use core::net::IpAddr;

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use hav_core::wire::ip::IpHeader;
use hav_core::wire::{ChecksumMode, EthernetFrame, VrrpPacket, VrrpRepr};

const V2: &str = include_str!("../../tests/fixtures/pcap/vrrpv2-advert-3vip-authpass.hex");
const V3: &str = include_str!("../../tests/fixtures/pcap/vrrpv3-advert-3vip.hex");
const V3_IPV6: &str = include_str!("../../tests/fixtures/pcap/vrrpv3-ipv6-2vip.hex");

fn hex(s: &str) -> Vec<u8> {
    let d: Vec<u8> = s.bytes().filter(|b| b.is_ascii_hexdigit()).collect();
    d.chunks(2)
        .map(|p| {
            let n = |c: u8| (c as char).to_digit(16).expect("hex") as u8;
            n(p[0]) << 4 | n(p[1])
        })
        .collect()
}

/// Source, destination and VRRP payload of a captured frame.
fn vrrp(frame: &str) -> (IpAddr, IpAddr, Vec<u8>) {
    let f = hex(frame);
    let eth = EthernetFrame::new_checked(&f[..]).expect("ethernet");
    let (h, payload) = IpHeader::parse(eth.payload()).expect("ip");
    (h.src, h.dst, payload.to_vec())
}

/// Parse + validate (checksum included), then emit, for each capture.
fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("wire");
    g.throughput(Throughput::Elements(1));
    for (name, frame) in [
        ("v2_auth_3vip", V2),
        ("v3_ipv4_3vip", V3),
        ("v3_ipv6_2vip", V3_IPV6),
    ] {
        let (src, dst, bytes) = vrrp(frame);
        g.bench_function(format!("parse_{name}"), |b| {
            b.iter(|| {
                let p = VrrpPacket::new_checked(black_box(&bytes[..])).expect("header");
                black_box(VrrpRepr::parse(&p, src, dst, ChecksumMode::Rfc).expect("valid"));
            })
        });
        let p = VrrpPacket::new_checked(&bytes[..]).expect("header");
        let repr = VrrpRepr::parse(&p, src, dst, ChecksumMode::Rfc).expect("valid");
        let mut out = vec![0u8; repr.buffer_len()];
        g.bench_function(format!("emit_{name}"), |b| {
            b.iter(|| {
                black_box(&repr)
                    .emit(
                        &mut VrrpPacket::new_unchecked(&mut out[..]),
                        src,
                        dst,
                        ChecksumMode::Rfc,
                    )
                    .expect("emits");
                black_box(&out);
            })
        });
        assert_eq!(out, bytes, "{name}: emit reproduces the capture");
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
