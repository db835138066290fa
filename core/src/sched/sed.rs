//! Shortest expected delay (`ip_vs_sed.c`).
//!
//! Like wlc, but the overhead is `activeconns + 1` (the new connection
//! included; inactive connections ignored): picks the smallest
//! `(activeconns + 1) / weight`, strict 64-bit comparison, ties to list order.

use super::{weighted_least, ConnKey, Dest, DestChange, Schedule};
use crate::time::Instant;

/// Shortest-expected-delay scheduler; it has no state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sed;

/// `ip_vs_sed_dest_overhead`: active connections plus one, as an `int`.
pub(crate) fn sed_overhead(d: &Dest) -> i32 {
    d.active().wrapping_add(1)
}

impl Schedule for Sed {
    fn handle_change(&mut self, _dests: &[Dest], _change: DestChange) {}

    fn schedule(&mut self, dests: &[Dest], _conn: &ConnKey, _now: Instant) -> Option<usize> {
        weighted_least(dests, sed_overhead)
    }
}

#[cfg(test)]
mod test {
    use super::super::testutil::*;
    use super::*;
    use core::net::Ipv4Addr;

    #[test]
    fn test_sed() {
        let c = conn(Ipv4Addr::new(198, 51, 100, 7), 1234);
        let mut s = Sed;
        // Idle servers: (0+1)/1 vs (0+1)/3, the heavier one wins.
        let mut dests = [d(1, 1), d(2, 3)];
        assert_eq!(s.schedule(&dests, &c, Instant::ZERO), Some(1));
        // (0+1)/1 vs (2+1)/3: equal, the first keeps it.
        dests[1].activeconns = 2;
        assert_eq!(s.schedule(&dests, &c, Instant::ZERO), Some(0));
        // Inactive connections do not count.
        dests[0].inactconns = 1000;
        assert_eq!(s.schedule(&dests, &c, Instant::ZERO), Some(0));
        dests[0].overloaded = true;
        assert_eq!(s.schedule(&dests, &c, Instant::ZERO), Some(1));
    }
}
