//! Locality-based least connection with replication (`ip_vs_lblcr.c`).
//!
//! Per packet *destination* address the scheduler keeps a set of servers,
//! newest first. A packet goes to the set's weighted-least-connection member
//! (skipping overloaded, weight-0 and deleted servers). If there is none, or
//! it is "overloaded" in lblc's sense (see [`lblc`](super::lblc)), a server
//! is picked by weighted least connection over the whole list and added to
//! the set. When the set has more than one member and has not changed for
//! the expiration time (sysctl `lblcr_expiration`, 24 h), its most loaded
//! member is removed, once per packet.
//!
//! Time, collection of unused entries and capacity work as in
//! [`lblc`](super::lblc): `L` addresses at most (a power of two, at least
//! 2), and `S` servers per set; when either is full the kernel's behaviour
//! on allocation failure applies (served, not remembered).
//!
//! A set member deleted from the service stays in the set, as in the
//! kernel's trash; it is never chosen, and for the "most loaded" choice its
//! weight and overhead are the last ones seen while it was in the list (the
//! kernel reads the live counters of the trashed server).

use core::net::IpAddr;

use heapless::FnvIndexMap;

use super::lblc::{lblc_overloaded, Collector};
use super::{position_of, weighted_least, ConnKey, Dest, DestChange, DestId, Schedule};
use crate::time::{Duration, Instant};

/// A member of a server set, with the last values seen for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Member {
    id: DestId,
    hint: usize,
    weight: i32,
    overhead: i32,
}

/// The server set and use times of one destination address.
#[derive(Debug, Clone)]
struct Entry<const S: usize> {
    /// Newest first, as `list_add_rcu` links them.
    set: heapless::Vec<Member, S>,
    lastmod: Instant,
    lastuse: Instant,
}

impl<const S: usize> Entry<S> {
    /// Refreshes the members' cached values from the list; returns, per
    /// member, its current index in `dests` (`None` when deleted).
    fn resolve(&mut self, dests: &[Dest]) -> heapless::Vec<Option<usize>, S> {
        self.set
            .iter_mut()
            .map(|m| {
                let at = position_of(dests, &m.id, m.hint);
                if let Some(i) = at {
                    m.hint = i;
                    m.weight = dests[i].weight;
                    m.overhead = dests[i].conn_overhead();
                }
                at
            })
            .collect()
    }

    /// `ip_vs_dest_set_min`: the member to use, as an index into `dests`.
    fn min(&self, dests: &[Dest], at: &[Option<usize>]) -> Option<usize> {
        let mut least: Option<(usize, i32)> = None;
        for &i in at.iter().flatten() {
            let d = &dests[i];
            if !d.is_available() {
                continue;
            }
            let doh = d.conn_overhead();
            let better = match least {
                None => true,
                Some((l, loh)) => {
                    i64::from(loh) * i64::from(d.weight) > i64::from(doh) * i64::from(dests[l].weight)
                }
            };
            if better {
                least = Some((i, doh));
            }
        }
        least.map(|(i, _)| i)
    }

    /// `ip_vs_dest_set_max`: position in the set of the most loaded member
    /// with a weight above zero (overload flags and deletion ignored).
    fn max(&self) -> Option<usize> {
        let mut most: Option<usize> = None;
        for (k, m) in self.set.iter().enumerate() {
            if m.weight <= 0 {
                continue;
            }
            let better = match most {
                None => true,
                Some(j) => {
                    let b = &self.set[j];
                    i64::from(b.overhead) * i64::from(m.weight)
                        < i64::from(m.overhead) * i64::from(b.weight)
                }
            };
            if better {
                most = Some(k);
            }
        }
        most
    }

    /// `ip_vs_dest_set_insert` with the duplicate check.
    fn insert(&mut self, dests: &[Dest], i: usize, now: Instant) {
        let d = &dests[i];
        if self.set.iter().any(|m| m.id == d.id()) {
            return;
        }
        let m = Member { id: d.id(), hint: i, weight: d.weight, overhead: d.conn_overhead() };
        if self.set.insert(0, m).is_ok() {
            self.lastmod = now;
        }
    }
}

/// Locality-based least-connection-with-replication state for up to `L`
/// destination addresses of up to `S` servers each.
#[derive(Debug, Clone)]
pub struct Lblcr<const L: usize = 256, const S: usize = 16> {
    table: FnvIndexMap<IpAddr, Entry<S>, L>,
    gc: Collector,
}

impl<const L: usize, const S: usize> Lblcr<L, S> {
    /// `init_service` at `now`; the collection timer starts here.
    pub fn new(now: Instant) -> Self {
        Lblcr { table: FnvIndexMap::new(), gc: Collector::new(now) }
    }

    /// Sets the `lblcr_expiration` sysctl (default 24 hours): both the idle
    /// time after which an entry is collected and the time a set must stay
    /// unchanged before it shrinks.
    pub fn set_expiration(&mut self, expiration: Duration) {
        self.gc.expiration = expiration;
    }

    /// Number of remembered destination addresses.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// Size of the server set remembered for `daddr`.
    pub fn set_len(&self, daddr: &IpAddr) -> usize {
        self.table.get(daddr).map_or(0, |e| e.set.len())
    }

    /// When the next collection check is due (checks also run from `schedule`).
    pub fn poll_at(&self) -> Instant {
        self.gc.next_check()
    }

    /// Runs the collection checks due at `now`; a no-op when none is due.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.gc.run(&mut self.table, |e: &Entry<S>| e.lastuse, now);
    }
}

impl<const L: usize, const S: usize> Schedule for Lblcr<L, S> {
    fn handle_change(&mut self, _dests: &[Dest], _change: DestChange) {}

    fn schedule(&mut self, dests: &[Dest], conn: &ConnKey, now: Instant) -> Option<usize> {
        self.handle_timeout(now);
        let expiration = self.gc.expiration;
        if let Some(en) = self.table.get_mut(&conn.dst) {
            en.lastuse = now;
            let at = en.resolve(dests);
            let dest = en.min(dests, &at);
            if en.set.len() > 1 && now > en.lastmod + expiration {
                if let Some(k) = en.max() {
                    en.set.remove(k);
                    en.lastmod = now;
                }
            }
            if let Some(i) = dest {
                if !lblc_overloaded(&dests[i], dests) {
                    return Some(i);
                }
            }
            let i = weighted_least(dests, Dest::conn_overhead)?;
            en.insert(dests, i, now);
            return Some(i);
        }
        let i = weighted_least(dests, Dest::conn_overhead)?;
        let d = &dests[i];
        let mut set = heapless::Vec::new();
        let m = Member { id: d.id(), hint: i, weight: d.weight, overhead: d.conn_overhead() };
        if set.push(m).is_ok() {
            let _ = self.table.insert(conn.dst, Entry { set, lastmod: now, lastuse: now });
        }
        Some(i)
    }
}

#[cfg(test)]
mod test {
    use super::super::testutil::*;
    use super::*;
    use core::net::Ipv4Addr;

    #[test]
    fn test_lblcr_replicates_and_shrinks() {
        let mut dests = [d(1, 2), d(2, 2), d(3, 2)];
        let mut s: Lblcr<16, 4> = Lblcr::new(Instant::ZERO);
        s.set_expiration(Duration::from_secs(100));
        let c = conn(Ipv4Addr::new(198, 51, 100, 7), 1234);
        let t0 = Instant::from_millis(1);
        assert_eq!(s.schedule(&dests, &c, t0), Some(0));
        assert_eq!(s.set_len(&c.dst), 1);
        // Server 0 over its weight while server 2 is idle: add the wlc pick.
        dests[0].activeconns = 3;
        dests[1].activeconns = 1;
        assert_eq!(s.schedule(&dests, &c, t0), Some(2));
        assert_eq!(s.set_len(&c.dst), 2);
        // Now the set {2, 0} yields its least loaded member, 2.
        dests[2].activeconns = 1;
        assert_eq!(s.schedule(&dests, &c, t0), Some(2));
        // After the expiration without change, the most loaded (0) leaves,
        // but the pick was made before that.
        let t1 = t0 + Duration::from_secs(101);
        assert_eq!(s.schedule(&dests, &c, t1), Some(2));
        assert_eq!(s.set_len(&c.dst), 1);
        // Only once per expiration period: a set of one never shrinks.
        assert_eq!(s.schedule(&dests, &c, t1 + Duration::from_secs(500)), Some(2));
        assert_eq!(s.set_len(&c.dst), 1);
    }

    #[test]
    fn test_lblcr_skips_unavailable_members() {
        let mut dests = [d(1, 1), d(2, 1)];
        let mut s: Lblcr<16, 4> = Lblcr::new(Instant::ZERO);
        let c = conn(Ipv4Addr::new(198, 51, 100, 7), 1234);
        assert_eq!(s.schedule(&dests, &c, Instant::ZERO), Some(0));
        // The only member is overloaded: wlc over the list, which adds 1.
        dests[0].overloaded = true;
        assert_eq!(s.schedule(&dests, &c, Instant::ZERO), Some(1));
        assert_eq!(s.set_len(&c.dst), 2);
        // A deleted member is never chosen.
        dests[0].overloaded = false;
        dests[0].activeconns = 0;
        dests[1].activeconns = 5;
        let only0 = [d(1, 1)];
        assert_eq!(s.schedule(&only0, &c, Instant::ZERO), Some(0));
        let only1 = [dests[1]];
        assert_eq!(s.schedule(&only1, &c, Instant::ZERO), Some(0));
        let zero = [d(1, 0), d(2, 0)];
        assert_eq!(s.schedule(&zero, &c, Instant::ZERO), None);
    }

    #[test]
    fn test_lblcr_set_capacity() {
        let mut dests = [d(1, 1), d(2, 1), d(3, 1)];
        let mut s: Lblcr<2, 1> = Lblcr::new(Instant::ZERO);
        let c = conn(Ipv4Addr::new(198, 51, 100, 7), 1234);
        assert_eq!(s.schedule(&dests, &c, Instant::ZERO), Some(0));
        dests[0].activeconns = 5;
        // Full set: served by wlc, not remembered.
        assert_eq!(s.schedule(&dests, &c, Instant::ZERO), Some(1));
        assert_eq!(s.set_len(&c.dst), 1);
    }
}
