//! Weighted fail over (`ip_vs_fo.c`).
//!
//! Picks the non-overloaded destination with the highest weight; the first
//! in list order wins ties. Weight 0 is never picked.

use super::{ConnKey, Dest, DestChange, Schedule};
use crate::time::Instant;

/// Fail-over scheduler; it has no state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Fo;

impl Schedule for Fo {
    fn handle_change(&mut self, _dests: &[Dest], _change: DestChange) {}

    fn schedule(&mut self, dests: &[Dest], _conn: &ConnKey, _now: Instant) -> Option<usize> {
        let mut best: Option<usize> = None;
        let mut hw = 0;
        for (i, d) in dests.iter().enumerate() {
            if !d.overloaded && d.weight > hw {
                best = Some(i);
                hw = d.weight;
            }
        }
        best
    }
}

#[cfg(test)]
mod test {
    use super::super::testutil::*;
    use super::*;
    use core::net::Ipv4Addr;

    #[test]
    fn test_fo() {
        let c = conn(Ipv4Addr::new(198, 51, 100, 7), 1234);
        let mut s = Fo;
        let mut dests = [d(1, 5), d(2, 7), d(3, 7), d(4, 0)];
        assert_eq!(s.schedule(&dests, &c, Instant::ZERO), Some(1));
        dests[1].overloaded = true;
        assert_eq!(s.schedule(&dests, &c, Instant::ZERO), Some(2));
        dests[2].weight = 0;
        assert_eq!(s.schedule(&dests, &c, Instant::ZERO), Some(0));
        assert_eq!(s.schedule(&dests[3..], &c, Instant::ZERO), None);
    }
}
