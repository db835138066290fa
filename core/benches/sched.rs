//! Picks per second of every IPVS scheduler over 1,000 real servers, with a
//! different client (and destination) address for every pick.
#![allow(missing_docs)]

use std::net::{IpAddr, Ipv4Addr};

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use hav_core::sched::{ConnKey, Dest, DestList, SchedKind, Schedule, Scheduler};
use hav_core::Instant;

const SERVERS: usize = 1000;

fn servers() -> DestList<1024> {
    let mut l = DestList::new();
    for i in 0..SERVERS {
        let addr = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i as u32));
        let d = Dest::new(addr, 80, 1 + (i % 7) as i32);
        // add() links at the head, as the kernel does.
        let _ = l.add(d);
    }
    for (i, d) in l.as_mut_slice().iter_mut().enumerate() {
        d.activeconns = (i * 37 % 101) as u32;
        d.inactconns = (i * 53 % 211) as u32;
    }
    l
}

fn bench_sched(c: &mut Criterion) {
    let list = servers();
    let dests = list.as_slice();
    let mut group = c.benchmark_group("sched_1000_servers");
    group.throughput(Throughput::Elements(1));
    for kind in SchedKind::ALL {
        let mut s: Box<Scheduler<4096, 16>> = Box::new(Scheduler::new(kind, 0, dests, Instant::ZERO));
        let mut n: u32 = 0;
        group.bench_function(kind.name(), |b| {
            b.iter(|| {
                n = n.wrapping_add(0x9e37_79b9);
                let src = IpAddr::V4(Ipv4Addr::from(n));
                let dst = IpAddr::V4(Ipv4Addr::from(0xc000_0200 | (n >> 22)));
                let key = ConnKey::tcp(src, (n >> 16) as u16, dst, 80);
                black_box(s.schedule(dests, black_box(&key), Instant::ZERO))
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_sched);
criterion_main!(benches);
