//! One `Instance::handle` call: the cost the core adds to every advert and timer.
// criterion_group! defines an undocumented function.
#![allow(missing_docs)]

use core::net::{IpAddr, Ipv4Addr};

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use hav_core::vrrp::{Advert, Input, Instance, InstanceConfig};
use hav_core::wire::{VrrpAddresses, VrrpAuth, VrrpRepr, VrrpVersion};
use hav_core::{Duration, Instant};

fn instance(prio: u8) -> Instance {
    let mut c = InstanceConfig::new(51, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)));
    c.version = VrrpVersion::V3;
    c.priority = prio;
    c.adver_int = Duration::from_centis(1);
    for i in 0..3 {
        c.vips.push(IpAddr::V4(Ipv4Addr::new(10, 0, 1, i))).unwrap();
    }
    let mut i = Instance::new(c);
    i.handle(Instant::ZERO, Input::Startup);
    i
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("vrrp_handle");
    g.throughput(Throughput::Elements(1));

    let vips: Vec<IpAddr> = (0..3).map(|i| IpAddr::V4(Ipv4Addr::new(10, 0, 1, i))).collect();
    let repr = VrrpRepr {
        version: VrrpVersion::V3,
        vrid: 51,
        priority: 200,
        max_adver_int: 1,
        auth: VrrpAuth::None,
        addresses: VrrpAddresses::List(&vips),
    };
    let src = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
    let mut backup = instance(100);
    let mut now = Instant::ZERO;
    g.bench_function("backup_rx_advert", |b| {
        b.iter(|| {
            now += Duration::from_millis(10);
            black_box(backup.handle(now, Input::Advert(Advert { src, ttl: 255, repr: &repr })))
        })
    });

    let mut master = instance(255);
    g.bench_function("master_timer", |b| {
        b.iter(|| {
            let at = master.poll_at().unwrap();
            black_box(master.handle(at, Input::Timer))
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
