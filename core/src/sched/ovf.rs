//! Weighted overflow (`ip_vs_ovf.c`).
//!
//! Picks the highest-weight destination that is not overloaded, has a
//! weight above zero and has no more active connections than its weight;
//! the first in list order wins ties. Connections overflow to the next
//! weight once `activeconns > weight`.

use super::{ConnKey, Dest, DestChange, Schedule};
use crate::time::Instant;

/// Overflow scheduler; it has no state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ovf;

impl Schedule for Ovf {
    fn handle_change(&mut self, _dests: &[Dest], _change: DestChange) {}

    fn schedule(&mut self, dests: &[Dest], _conn: &ConnKey, _now: Instant) -> Option<usize> {
        let mut best: Option<(usize, i32)> = None;
        for (i, d) in dests.iter().enumerate() {
            let w = d.weight;
            if d.overloaded || d.active() > w || w <= 0 {
                continue;
            }
            if best.is_none_or(|(_, hw)| w > hw) {
                best = Some((i, w));
            }
        }
        best.map(|(i, _)| i)
    }
}

#[cfg(test)]
mod test {
    use super::super::testutil::*;
    use super::*;
    use core::net::Ipv4Addr;

    #[test]
    fn test_ovf() {
        let c = conn(Ipv4Addr::new(198, 51, 100, 7), 1234);
        let mut s = Ovf;
        let mut dests = [d(1, 2), d(2, 3), d(3, 3)];
        assert_eq!(s.schedule(&dests, &c, Instant::ZERO), Some(1));
        // activeconns == weight still qualifies; one more overflows.
        dests[1].activeconns = 3;
        assert_eq!(s.schedule(&dests, &c, Instant::ZERO), Some(1));
        dests[1].activeconns = 4;
        assert_eq!(s.schedule(&dests, &c, Instant::ZERO), Some(2));
        dests[2].overloaded = true;
        assert_eq!(s.schedule(&dests, &c, Instant::ZERO), Some(0));
        dests[0].activeconns = 3;
        assert_eq!(s.schedule(&dests, &c, Instant::ZERO), None);
        assert_eq!(s.schedule(&[d(1, 0)], &c, Instant::ZERO), None);
    }
}
