//! Weighted round robin (`ip_vs_wrr.c`).
//!
//! State: `mw`, the maximum weight lowered by `di - 1`; `di`, the greatest
//! common divisor of the positive weights; `cw`, the current weight; and a
//! cursor. Each pass over the list takes destinations that are not
//! overloaded and whose weight is at least `cw`; after a pass `cw` drops by
//! `di`, and below 1 it starts again at `mw`. Any change to the list resets
//! the cursor to the head and recomputes `mw`/`di`, keeping `cw` where it
//! can (`ip_vs_wrr_dest_changed`).
//!
//! With weights 4, 3, 2 (in list order) the picks are
//! A A B A B C A B C, then again.

use super::{position_of, ConnKey, Dest, DestChange, DestId, Schedule};
use crate::time::Instant;

/// Weighted round-robin state (`struct ip_vs_wrr_mark`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wrr {
    /// Current destination and its last known position; `None` is the head.
    cl: Option<(DestId, usize)>,
    /// Current weight.
    cw: i32,
    /// Maximum weight, minus `di - 1`.
    mw: i32,
    /// Decreasing interval: the gcd of the positive weights.
    di: i32,
}

fn gcd(mut a: i32, mut b: i32) -> i32 {
    while b != 0 {
        let t = a % b;
        a = b;
        b = t;
    }
    a
}

fn gcd_weight(dests: &[Dest]) -> i32 {
    let g = dests
        .iter()
        .map(|d| d.weight)
        .filter(|&w| w > 0)
        .fold(0, |g, w| if g > 0 { gcd(w, g) } else { w });
    if g > 0 {
        g
    } else {
        1
    }
}

fn max_weight(dests: &[Dest]) -> i32 {
    dests.iter().map(|d| d.weight).fold(0, i32::max)
}

impl Wrr {
    /// `init_service` for the current list.
    pub fn new(dests: &[Dest]) -> Self {
        let di = gcd_weight(dests);
        let mw = max_weight(dests) - (di - 1);
        Wrr { cl: None, cw: mw, mw, di }
    }

    /// The current weight (`cw`); exposed for tests and debugging.
    pub const fn current_weight(&self) -> i32 {
        self.cw
    }
}

impl Schedule for Wrr {
    fn handle_change(&mut self, dests: &[Dest], _change: DestChange) {
        self.cl = None;
        self.di = gcd_weight(dests);
        self.mw = max_weight(dests) - (self.di - 1);
        if self.cw > self.mw || self.cw == 0 {
            self.cw = self.mw;
        } else if self.di > 1 {
            self.cw = (self.cw / self.di) * self.di + 1;
        }
    }

    fn schedule(&mut self, dests: &[Dest], _conn: &ConnKey, _now: Instant) -> Option<usize> {
        let n = dests.len();
        if self.mw == 0 || n == 0 {
            return None;
        }
        // Positions: Some(i) is dests[i], None is the list head.
        let last = self.cl.and_then(|(id, hint)| position_of(dests, &id, hint));
        // Highest weight a pass can accept; used only to skip passes that
        // cannot find anything (huge weights would otherwise spin).
        let best = dests.iter().filter(|d| !d.overloaded).map(|d| d.weight).fold(0, i32::max);
        let mut stop: Option<usize> = None;
        let mut last_pass = false;
        let mut restarted = false;
        let mut from = last;
        loop {
            let begin = from.map_or(0, |i| i + 1);
            for (i, d) in dests.iter().enumerate().skip(begin) {
                if !d.overloaded && d.weight >= self.cw {
                    self.cl = Some((d.id(), i));
                    return Some(i);
                }
                if stop == Some(i) {
                    self.cl = Some((d.id(), i));
                    return None;
                }
            }
            let full_pass = from.is_none();
            from = None;
            if full_pass && !last_pass {
                // Passes with cw above both `best` and `di` find nothing,
                // cannot reach cw <= 0 and leave last_pass false: skip them.
                let floor = best.max(self.di);
                if self.cw - self.di > floor {
                    let k = (self.cw - floor - 1) / self.di;
                    self.cw -= k * self.di;
                }
            }
            self.cw -= self.di;
            if self.cw <= 0 {
                self.cw = self.mw;
                if last_pass || last.is_none() {
                    self.cl = None;
                    return None;
                }
                restarted = true;
            }
            last_pass = self.cw <= self.di;
            if last_pass && restarted && last.is_some() {
                stop = last;
            }
        }
    }
}

#[cfg(test)]
mod test {
    use super::super::testutil::*;
    use super::super::DestList;
    use super::*;
    use core::net::Ipv4Addr;

    fn run(s: &mut Wrr, dests: &[Dest], k: usize) -> heapless::Vec<Option<usize>, 64> {
        let c = conn(Ipv4Addr::new(198, 51, 100, 7), 1234);
        (0..k).map(|_| s.schedule(dests, &c, Instant::ZERO)).collect()
    }

    #[test]
    fn test_wrr_432() {
        let dests = [d(1, 4), d(2, 3), d(3, 2)];
        let mut s = Wrr::new(&dests);
        let got = run(&mut s, &dests, 18);
        let one = [0, 0, 1, 0, 1, 2, 0, 1, 2];
        for (i, g) in got.iter().enumerate() {
            assert_eq!(*g, Some(one[i % 9]), "pick {i}");
        }
    }

    #[test]
    fn test_wrr_gcd() {
        // Weights 4, 2: di = 2, mw = 4 - 1 = 3; passes at cw 3 and 1.
        let dests = [d(1, 4), d(2, 2)];
        let mut s = Wrr::new(&dests);
        let got = run(&mut s, &dests, 6);
        assert_eq!(&got[..], &[Some(0), Some(0), Some(1), Some(0), Some(0), Some(1)]);
    }

    #[test]
    fn test_wrr_weight0_and_overload() {
        let mut dests = [d(1, 0), d(2, 2), d(3, 1)];
        let mut s = Wrr::new(&dests);
        assert_eq!(&run(&mut s, &dests, 3)[..], &[Some(1), Some(1), Some(2)]);
        dests[1].overloaded = true;
        assert_eq!(&run(&mut s, &dests, 3)[..], &[Some(2), Some(2), Some(2)]);
        dests[2].overloaded = true;
        assert_eq!(&run(&mut s, &dests, 2)[..], &[None, None]);
        let zero = [d(1, 0), d(2, 0)];
        let mut s = Wrr::new(&zero);
        assert_eq!(&run(&mut s, &zero, 1)[..], &[None]);
    }

    #[test]
    fn test_wrr_change_resets_cursor() {
        let mut l = DestList::<4>::new();
        let mut s = Wrr::new(l.as_slice());
        for n in [1, 2] {
            let ch = l.add(d(n, 1)).unwrap();
            s.handle_change(l.as_slice(), ch);
        }
        // Order: 10.0.0.2, 10.0.0.1.
        assert_eq!(&run(&mut s, l.as_slice(), 1)[..], &[Some(0)]);
        let ch = l.set_weight(d(1, 0).addr, 80, 1).unwrap();
        s.handle_change(l.as_slice(), ch);
        // The cursor is back at the head: 10.0.0.2 again.
        assert_eq!(&run(&mut s, l.as_slice(), 3)[..], &[Some(0), Some(1), Some(0)]);
        // Weights 6, 3: di = 3, mw = 4; cw = 1 stays (1 / 3 * 3 + 1), so
        // the first pass still takes everyone, then passes restart at 4.
        let ch = l.set_weight(d(1, 0).addr, 80, 3).unwrap();
        s.handle_change(l.as_slice(), ch);
        let ch = l.set_weight(d(2, 0).addr, 80, 6).unwrap();
        s.handle_change(l.as_slice(), ch);
        assert_eq!(s.current_weight(), 1);
        assert_eq!(&run(&mut s, l.as_slice(), 5)[..], &[Some(0), Some(1), Some(0), Some(0), Some(1)]);
    }

    #[test]
    fn test_wrr_huge_weights_terminate() {
        let dests = [d(1, i32::MAX), d(2, 1)];
        let mut s = Wrr::new(&dests);
        let got = run(&mut s, &dests, 4);
        assert_eq!(&got[..], &[Some(0), Some(0), Some(0), Some(0)]);
        let mut dests = dests;
        dests[0].overloaded = true;
        assert_eq!(&run(&mut s, &dests, 2)[..], &[Some(1), Some(1)]);
    }
}
