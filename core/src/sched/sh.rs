//! Source hashing (`ip_vs_sh.c`).
//!
//! A 256-bucket table is filled from the destination list in order, each
//! destination taking as many consecutive buckets as its weight (at least
//! one, also for weight 0), wrapping around the list until all buckets are
//! full; it is rebuilt on every add, delete and edit. A packet goes to
//! bucket `(offset + hash_32(port + fold(saddr), 8)) & 255` with offset 0,
//! where `port` is the client's source port with
//! [`IP_VS_SVC_F_SCHED_SH_PORT`] (TCP, UDP
//! and SCTP only) and 0 otherwise. A destination that is overloaded or has
//! weight 0 yields no destination, unless
//! [`IP_VS_SVC_F_SCHED_SH_FALLBACK`]
//! is set: then offsets 0..255 are tried from the original bucket on.

use super::{
    fold_addr, hash_32, ConnKey, Dest, DestChange, Schedule, IP_VS_SVC_F_SCHED_SH_FALLBACK,
    IP_VS_SVC_F_SCHED_SH_PORT,
};
use crate::time::Instant;

/// `IP_VS_SH_TAB_BITS`.
pub const SH_TAB_BITS: u32 = 8;
/// `IP_VS_SH_TAB_SIZE`.
pub const SH_TAB_SIZE: usize = 1 << SH_TAB_BITS;

const NONE: u32 = u32::MAX;

/// Source-hashing state: the bucket table and the service flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sh {
    buckets: [u32; SH_TAB_SIZE],
    flags: u32,
}

impl Sh {
    /// `init_service` for a service with `svc_flags` and the current list.
    pub fn new(svc_flags: u32, dests: &[Dest]) -> Self {
        let mut s = Sh { buckets: [NONE; SH_TAB_SIZE], flags: svc_flags };
        s.reassign(dests);
        s
    }

    /// Changes the service flags (`ipvsadm -E ... -b`); no rebuild needed.
    pub fn set_flags(&mut self, svc_flags: u32) {
        self.flags = svc_flags;
    }

    fn reassign(&mut self, dests: &[Dest]) {
        if dests.is_empty() {
            self.buckets = [NONE; SH_TAB_SIZE];
            return;
        }
        let mut p = 0usize;
        let mut count = 0i32;
        for b in self.buckets.iter_mut() {
            if p == dests.len() {
                p = 0;
            }
            *b = u32::try_from(p).unwrap_or(NONE);
            count += 1;
            if count >= dests[p].weight {
                p += 1;
                count = 0;
            }
        }
    }

    /// `ip_vs_sh_hashkey`: the bucket of `addr`/`port` at `offset`.
    pub fn hashkey(addr: &core::net::IpAddr, port: u16, offset: u32) -> usize {
        let v = u32::from(port).wrapping_add(fold_addr(addr));
        (offset.wrapping_add(hash_32(v, SH_TAB_BITS)) as usize) & (SH_TAB_SIZE - 1)
    }

    fn at(&self, dests: &[Dest], bucket: usize) -> Option<usize> {
        let i = *self.buckets.get(bucket)?;
        if i == NONE || i as usize >= dests.len() {
            None
        } else {
            Some(i as usize)
        }
    }
}

impl Schedule for Sh {
    fn handle_change(&mut self, dests: &[Dest], _change: DestChange) {
        self.reassign(dests);
    }

    fn schedule(&mut self, dests: &[Dest], conn: &ConnKey, _now: Instant) -> Option<usize> {
        let port = if self.flags & IP_VS_SVC_F_SCHED_SH_PORT != 0 { conn.hash_sport() } else { 0 };
        let ihash = Self::hashkey(&conn.src, port, 0);
        let first = self.at(dests, ihash)?;
        if dests[first].is_available() {
            return Some(first);
        }
        if self.flags & IP_VS_SVC_F_SCHED_SH_FALLBACK == 0 {
            return None;
        }
        for offset in 0..SH_TAB_SIZE {
            let roffset = ((offset + ihash) % SH_TAB_SIZE) as u32;
            let i = self.at(dests, Self::hashkey(&conn.src, port, roffset))?;
            if dests[i].is_available() {
                return Some(i);
            }
        }
        None
    }
}

#[cfg(test)]
mod test {
    use super::super::testutil::*;
    use super::super::{IPPROTO_UDP, IP_VS_SVC_F_SCHED1, IP_VS_SVC_F_SCHED2};
    use super::*;
    use core::net::{IpAddr, Ipv4Addr};

    #[test]
    fn test_sh_table_weights() {
        // Weights 2, 0, 1: buckets A A B C A A B C ...
        let dests = [d(1, 2), d(2, 0), d(3, 1)];
        let s = Sh::new(0, &dests);
        assert_eq!(&s.buckets[..8], &[0, 0, 1, 2, 0, 0, 1, 2]);
        // Weight larger than the table: one server takes every bucket.
        let big = [d(1, 1000), d(2, 1)];
        let s = Sh::new(0, &big);
        assert!(s.buckets.iter().all(|&b| b == 0));
    }

    #[test]
    fn test_sh_hash() {
        // 198.51.100.7 = 0xc6336407; * 0x61c88647 = 0xab1467f1 (mod 2^32) -> 0xab.
        let a = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7));
        assert_eq!(0xc633_6407u32.wrapping_mul(0x61c8_8647), 0xab14_67f1);
        assert_eq!(Sh::hashkey(&a, 0, 0), 0xab);
        // With the port: 0xc6336407 + 1234.
        let v = 0xc633_6407u32 + 1234;
        assert_eq!(Sh::hashkey(&a, 1234, 0), (v.wrapping_mul(0x61c8_8647) >> 24) as usize);
        // The offset is added after hashing, modulo 256.
        assert_eq!(Sh::hashkey(&a, 0, 0x60), (0xab + 0x60) & 0xff);
    }

    #[test]
    fn test_sh_schedule_and_fallback() {
        // 5 servers of weight 1: bucket b holds server b % 5.
        let mut dests = [d(1, 1), d(2, 1), d(3, 1), d(4, 1), d(5, 1)];
        let mut s = Sh::new(0, &dests);
        let mut c = conn(Ipv4Addr::new(198, 51, 100, 7), 1234);
        // Bucket 0xab = 171 -> server 171 % 5 = 1.
        assert_eq!(s.schedule(&dests, &c, Instant::ZERO), Some(1));
        // The port flag hashes the source port, for TCP/UDP/SCTP only.
        s.set_flags(IP_VS_SVC_F_SCHED2);
        let with_port = Sh::hashkey(&c.src, 1234, 0) % 5;
        assert_eq!(s.schedule(&dests, &c, Instant::ZERO), Some(with_port));
        c.protocol = 1; // ICMP: port reads as 0
        assert_eq!(s.schedule(&dests, &c, Instant::ZERO), Some(1));
        c.protocol = IPPROTO_UDP;
        assert_eq!(s.schedule(&dests, &c, Instant::ZERO), Some(with_port));
        // No fallback: the hashed server down means no server.
        s.set_flags(0);
        dests[1].overloaded = true;
        assert_eq!(s.schedule(&dests, &c, Instant::ZERO), None);
        // Fallback: offset o probes bucket (o + 171 + 171) & 255 = o + 86:
        // bucket 86 is server 1 again, bucket 87 server 2.
        s.set_flags(IP_VS_SVC_F_SCHED1);
        assert_eq!(s.schedule(&dests, &c, Instant::ZERO), Some(2));
        dests[2].weight = 0;
        s.handle_change(&dests, DestChange::Updated { index: 2 });
        // The table changed (weight 0 still takes one bucket); recompute.
        let expect = (0..256)
            .map(|o| s.buckets[(o + 86) & 255] as usize)
            .find(|&i| dests[i].is_available());
        assert_eq!(s.schedule(&dests, &c, Instant::ZERO), expect);
        for x in dests.iter_mut() {
            x.overloaded = true;
        }
        assert_eq!(s.schedule(&dests, &c, Instant::ZERO), None);
    }
}
