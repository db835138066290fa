//! Weighted least connection (`ip_vs_wlc.c`).
//!
//! Picks the smallest `overhead / weight` with
//! overhead = `(activeconns << 8) + inactconns`, compared as
//! `loh * weight > doh * least_weight` in 64 bits: a later destination
//! must be strictly less loaded to win, so ties go to list order.

use super::{weighted_least, ConnKey, Dest, DestChange, Schedule};
use crate::time::Instant;

/// Weighted least-connection scheduler; it has no state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Wlc;

impl Schedule for Wlc {
    fn handle_change(&mut self, _dests: &[Dest], _change: DestChange) {}

    fn schedule(&mut self, dests: &[Dest], _conn: &ConnKey, _now: Instant) -> Option<usize> {
        weighted_least(dests, Dest::conn_overhead)
    }
}

#[cfg(test)]
mod test {
    use super::super::testutil::*;
    use super::*;
    use core::net::Ipv4Addr;

    #[test]
    fn test_wlc() {
        let c = conn(Ipv4Addr::new(198, 51, 100, 7), 1234);
        let mut s = Wlc;
        let mut dests = [d(1, 1), d(2, 3), d(3, 0)];
        assert_eq!(s.schedule(&dests, &c, Instant::ZERO), Some(0));
        // 256/1 vs 512/3: the second is less loaded.
        dests[0].activeconns = 1;
        dests[1].activeconns = 2;
        assert_eq!(s.schedule(&dests, &c, Instant::ZERO), Some(1));
        // 256/1 vs 768/3: equal, the first keeps it.
        dests[1].activeconns = 3;
        assert_eq!(s.schedule(&dests, &c, Instant::ZERO), Some(0));
        dests[0].overloaded = true;
        assert_eq!(s.schedule(&dests, &c, Instant::ZERO), Some(1));
        // 64-bit products: 2^30 * 4 would wrap to 0 in 32 bits and keep
        // the first; 2^30 / 1 > 1.5 * 2^30 / 4, so the second wins.
        let mut big = [d(1, 1), d(2, 4)];
        big[0].activeconns = 1 << 22;
        big[1].activeconns = 3 << 21;
        assert_eq!(s.schedule(&big, &c, Instant::ZERO), Some(1));
        assert_eq!(s.schedule(&[d(1, 0)], &c, Instant::ZERO), None);
    }
}
