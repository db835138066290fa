//! Destination hashing (`ip_vs_dh.c`).
//!
//! A 256-bucket table is filled round robin from the destination list
//! (bucket `i` holds destination `i % n`, regardless of weight) and rebuilt
//! when a destination is added or deleted. A packet goes to bucket
//! `hash_32(fold(daddr), 8)`, where `fold` is the IPv4 address or the XOR of
//! the four 32-bit words of an IPv6 address (host order) and `hash_32`
//! multiplies by `0x61C88647` and keeps the high bits. A destination that is
//! overloaded or has weight 0 yields no destination; there is no fallback.

use super::{fold_addr, hash_32, ConnKey, Dest, DestChange, Schedule};
use crate::time::Instant;

/// `IP_VS_DH_TAB_BITS`.
pub const DH_TAB_BITS: u32 = 8;
/// `IP_VS_DH_TAB_SIZE`.
pub const DH_TAB_SIZE: usize = 1 << DH_TAB_BITS;

const NONE: u32 = u32::MAX;

/// Destination-hashing state: the bucket table (indices into the list).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dh {
    buckets: [u32; DH_TAB_SIZE],
}

impl Dh {
    /// `init_service`: the table for the current list.
    pub fn new(dests: &[Dest]) -> Self {
        let mut s = Dh { buckets: [NONE; DH_TAB_SIZE] };
        s.reassign(dests);
        s
    }

    fn reassign(&mut self, dests: &[Dest]) {
        let n = dests.len();
        for (i, b) in self.buckets.iter_mut().enumerate() {
            *b = if n == 0 { NONE } else { u32::try_from(i % n).unwrap_or(NONE) };
        }
    }

    /// The bucket a packet to `daddr` falls in.
    pub fn bucket(daddr: &core::net::IpAddr) -> usize {
        hash_32(fold_addr(daddr), DH_TAB_BITS) as usize
    }
}

impl Schedule for Dh {
    fn handle_change(&mut self, dests: &[Dest], change: DestChange) {
        // The kernel has add_dest and del_dest hooks but no upd_dest; the
        // table does not depend on weights anyway.
        if !matches!(change, DestChange::Updated { .. }) {
            self.reassign(dests);
        }
    }

    fn schedule(&mut self, dests: &[Dest], conn: &ConnKey, _now: Instant) -> Option<usize> {
        let i = *self.buckets.get(Self::bucket(&conn.dst))? as usize;
        dests.get(i).filter(|d| d.is_available()).map(|_| i)
    }
}

#[cfg(test)]
mod test {
    use super::super::testutil::*;
    use super::*;
    use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    #[test]
    fn test_dh_bucket() {
        // 10.0.0.1 = 0x0a000001; 0x0a000001 * 0x61c88647 mod 2^32 = 0x27c88647.
        let a = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(0x0a00_0001u32.wrapping_mul(0x61c8_8647), 0x27c8_8647);
        assert_eq!(Dh::bucket(&a), 0x27);
        // IPv6 folds to 0x20010db8 ^ 1 = 0x20010db9.
        let b = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1));
        assert_eq!(Dh::bucket(&b), (0x2001_0db9u32.wrapping_mul(0x61c8_8647) >> 24) as usize);
    }

    #[test]
    fn test_dh_schedule() {
        let mut dests = [d(1, 1), d(2, 1), d(3, 1)];
        let mut s = Dh::new(&dests);
        let mut c = conn(Ipv4Addr::new(198, 51, 100, 7), 1234);
        c.dst = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
        // Bucket 0x27 = 39; 39 % 3 = 0.
        assert_eq!(s.schedule(&dests, &c, Instant::ZERO), Some(0));
        // The source does not matter.
        c.src = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 9));
        assert_eq!(s.schedule(&dests, &c, Instant::ZERO), Some(0));
        // 10.0.0.2: 0x0a000002 * 0x61c88647 = 0x89910c8e -> 137 % 3 = 2.
        c.dst = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
        assert_eq!(s.schedule(&dests, &c, Instant::ZERO), Some(2));
        c.dst = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
        dests[0].overloaded = true;
        assert_eq!(s.schedule(&dests, &c, Instant::ZERO), None);
        dests[0].overloaded = false;
        dests[0].weight = 0;
        assert_eq!(s.schedule(&dests, &c, Instant::ZERO), None);
        let none: [Dest; 0] = [];
        let mut e = Dh::new(&none);
        assert_eq!(e.schedule(&none, &c, Instant::ZERO), None);
    }
}
