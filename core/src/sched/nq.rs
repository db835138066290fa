//! Never queue (`ip_vs_nq.c`).
//!
//! The first destination (in list order) with no active connection wins at
//! once; otherwise it is sed: smallest `(activeconns + 1) / weight`, strict
//! 64-bit comparison, ties to list order.

use super::sed::sed_overhead;
use super::{ConnKey, Dest, DestChange, Schedule};
use crate::time::Instant;

/// Never-queue scheduler; it has no state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Nq;

impl Schedule for Nq {
    fn handle_change(&mut self, _dests: &[Dest], _change: DestChange) {}

    fn schedule(&mut self, dests: &[Dest], _conn: &ConnKey, _now: Instant) -> Option<usize> {
        let mut least: Option<(usize, i32)> = None;
        for (i, d) in dests.iter().enumerate() {
            if !d.is_available() {
                continue;
            }
            let doh = sed_overhead(d);
            if d.active() == 0 {
                return Some(i);
            }
            let better = match least {
                None => true,
                Some((l, loh)) => {
                    i64::from(loh) * i64::from(d.weight)
                        > i64::from(doh) * i64::from(dests[l].weight)
                }
            };
            if better {
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
    fn test_nq() {
        let c = conn(Ipv4Addr::new(198, 51, 100, 7), 1234);
        let mut s = Nq;
        let mut dests = [d(1, 1), d(2, 10), d(3, 1)];
        dests[0].activeconns = 1;
        dests[1].activeconns = 1;
        // An idle server wins regardless of weight.
        assert_eq!(s.schedule(&dests, &c, Instant::ZERO), Some(2));
        dests[2].activeconns = 5;
        // (1+1)/1, (1+1)/10, (5+1)/1: the weight-10 one.
        assert_eq!(s.schedule(&dests, &c, Instant::ZERO), Some(1));
        // An idle but overloaded or weight-0 server does not count.
        dests[0].activeconns = 0;
        dests[0].overloaded = true;
        assert_eq!(s.schedule(&dests, &c, Instant::ZERO), Some(1));
        dests[0].overloaded = false;
        dests[0].weight = 0;
        assert_eq!(s.schedule(&dests, &c, Instant::ZERO), Some(1));
        assert_eq!(s.schedule(&[d(1, 0)], &c, Instant::ZERO), None);
    }
}
