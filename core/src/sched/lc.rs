//! Least connection (`ip_vs_lc.c`).
//!
//! Picks the destination with the smallest overhead
//! `(activeconns << 8) + inactconns` ([`Dest::conn_overhead`], compared
//! unsigned as the kernel does), skipping overloaded and weight-0
//! destinations; the first in list order wins ties.

use super::{ConnKey, Dest, DestChange, Schedule};
use crate::time::Instant;

/// Least-connection scheduler; it has no state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Lc;

impl Schedule for Lc {
    fn handle_change(&mut self, _dests: &[Dest], _change: DestChange) {}

    fn schedule(&mut self, dests: &[Dest], _conn: &ConnKey, _now: Instant) -> Option<usize> {
        let mut least: Option<(usize, u32)> = None;
        for (i, d) in dests.iter().enumerate() {
            if !d.is_available() {
                continue;
            }
            // The kernel keeps the overhead in an unsigned int here.
            let doh = d.conn_overhead() as u32;
            if least.is_none_or(|(_, loh)| doh < loh) {
                least = Some((i, doh));
            }
        }
        least.map(|(i, _)| i)
    }
}

#[cfg(test)]
mod test {
    use super::super::testutil::*;
    use super::*;
    use core::net::Ipv4Addr;

    #[test]
    fn test_lc() {
        let c = conn(Ipv4Addr::new(198, 51, 100, 7), 1234);
        let mut s = Lc;
        let mut dests = [d(1, 1), d(2, 100), d(3, 1), d(4, 0)];
        // Ties go to the first in list order.
        assert_eq!(s.schedule(&dests, &c, Instant::ZERO), Some(0));
        // One active connection outweighs 255 inactive ones.
        dests[0].activeconns = 1;
        dests[1].inactconns = 255;
        dests[2].inactconns = 256;
        assert_eq!(s.schedule(&dests, &c, Instant::ZERO), Some(1));
        dests[1].inactconns = 257;
        assert_eq!(s.schedule(&dests, &c, Instant::ZERO), Some(0));
        // Weight does not matter beyond zero; weight 0 and overload exclude.
        dests[0].overloaded = true;
        assert_eq!(s.schedule(&dests, &c, Instant::ZERO), Some(2));
        // Only the weight-0 server is left: none.
        dests[1].overloaded = true;
        dests[2].overloaded = true;
        assert_eq!(s.schedule(&dests, &c, Instant::ZERO), None);
        let none = [d(1, 0)];
        assert_eq!(s.schedule(&none, &c, Instant::ZERO), None);
    }
}
