//! Round robin (`ip_vs_rr.c`).
//!
//! The scheduler keeps a cursor on the last chosen destination (or on the
//! list head). Each pick walks on from the cursor, wrapping once, and takes
//! the first destination that is not overloaded and has a weight above zero;
//! the cursor itself is checked last. When the destination under the cursor
//! is deleted, the cursor moves back to its predecessor (or the head), so
//! the destination after the deleted one comes next.

use super::{position_of, ConnKey, Dest, DestChange, DestId, Schedule};
use crate::time::Instant;

/// Round-robin state: the cursor.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rr {
    /// The last chosen destination and where it was; `None` is the list head.
    cursor: Option<(DestId, usize)>,
}

impl Rr {
    /// A new scheduler with the cursor on the list head (`init_service`).
    pub const fn new() -> Self {
        Rr { cursor: None }
    }
}

impl Schedule for Rr {
    fn handle_change(&mut self, dests: &[Dest], change: DestChange) {
        // Only del_dest moves the cursor; add/edit leave it where it is.
        if let DestChange::Removed { index, id } = change {
            if matches!(self.cursor, Some((c, _)) if c == id) {
                self.cursor = index
                    .checked_sub(1)
                    .and_then(|p| dests.get(p).map(|prev| (prev.id(), p)));
            }
        }
    }

    fn schedule(&mut self, dests: &[Dest], _conn: &ConnKey, _now: Instant) -> Option<usize> {
        let n = dests.len();
        // A cursor on a destination that is gone (a change that was not
        // reported) degrades to the head, which the kernel cannot have.
        let start = self.cursor.and_then(|(id, hint)| position_of(dests, &id, hint));
        let hit = match start {
            None => (0..n).find(|&i| dests[i].is_available()),
            Some(c) => (c + 1..n).chain(0..=c).find(|&i| dests[i].is_available()),
        }?;
        self.cursor = Some((dests[hit].id(), hit));
        Some(hit)
    }
}

#[cfg(test)]
mod test {
    use super::super::testutil::*;
    use super::super::DestList;
    use super::*;
    use core::net::Ipv4Addr;

    fn picks(s: &mut Rr, dests: &[Dest], k: usize) -> heapless::Vec<usize, 32> {
        let c = conn(Ipv4Addr::new(198, 51, 100, 7), 1234);
        (0..k).map(|_| s.schedule(dests, &c, Instant::ZERO).unwrap()).collect()
    }

    #[test]
    fn test_rr_cycle_skips_weight0_and_overloaded() {
        let mut dests = [d(1, 1), d(2, 0), d(3, 5), d(4, 1)];
        dests[3].overloaded = true;
        let mut s = Rr::new();
        assert_eq!(&picks(&mut s, &dests, 5)[..], &[0, 2, 0, 2, 0]);
        dests[3].overloaded = false;
        assert_eq!(&picks(&mut s, &dests, 4)[..], &[2, 3, 0, 2]);
    }

    #[test]
    fn test_rr_none_available() {
        let dests = [d(1, 0), d(2, 0)];
        let mut s = Rr::new();
        let c = conn(Ipv4Addr::new(198, 51, 100, 7), 1);
        assert_eq!(s.schedule(&dests, &c, Instant::ZERO), None);
        // A single available server is found again from its own cursor.
        let dests = [d(1, 0), d(2, 3)];
        assert_eq!(&picks(&mut s, &dests, 3)[..], &[1, 1, 1]);
    }

    #[test]
    fn test_rr_delete_cursor_moves_back() {
        // Added 1, 2, 3, 4: kernel order is 4, 3, 2, 1.
        let mut l = DestList::<8>::new();
        for n in 1..=4 {
            l.add(d(n, 1)).unwrap();
        }
        let mut s = Rr::new();
        assert_eq!(&picks(&mut s, l.as_slice(), 2)[..], &[0, 1]); // 4, 3
        let gone = l.as_slice()[1].addr;
        let ch = l.remove(gone, 80).unwrap();
        s.handle_change(l.as_slice(), ch);
        // The cursor went back to 10.0.0.4, so 10.0.0.2 is next.
        let next = picks(&mut s, l.as_slice(), 1)[0];
        assert_eq!(l.as_slice()[next].addr, d(2, 1).addr);
        // Adding puts the newcomer at the head; the cursor stays on 10.0.0.2.
        let ch = l.add(d(9, 1)).unwrap();
        s.handle_change(l.as_slice(), ch);
        let p = picks(&mut s, l.as_slice(), 3);
        let got: heapless::Vec<IpAddr, 4> = p.iter().map(|&i| l.as_slice()[i].addr).collect();
        assert_eq!(&got[..], &[d(1, 1).addr, d(9, 1).addr, d(4, 1).addr]);
    }

    use core::net::IpAddr;
}
