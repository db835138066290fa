//! Locality-based least connection (`ip_vs_lblc.c`).
//!
//! The scheduler remembers, per packet *destination* address, the real
//! server it last chose. A remembered server is used again while it is
//! still in the list, has a weight above zero and is not "overloaded" in
//! lblc's sense: more active connections than its weight while some server
//! (any server of the list) has fewer than half its weight in active
//! connections. The kernel does not look at `IP_VS_DEST_F_OVERLOAD` for the
//! remembered server, and neither does this. Otherwise it picks by weighted
//! least connection (as wlc, skipping overloaded servers) and remembers that.
//!
//! # Time
//! The kernel stamps entries with `jiffies`; here with the `now` passed to
//! [`Schedule::schedule`]. A host that wants tick-exact expiry passes `now`
//! rounded down to its kernel's jiffy (`1 / HZ`). Entries are collected by a
//! periodic check, run lazily from `schedule` at the instants the kernel's
//! timer would fire: every 60 s from creation. Every 30th check removes the
//! entries unused for [`LBLC_EXPIRATION_DEFAULT`] (the sysctl
//! `lblc_expiration`, settable with [`Lblc::set_expiration`]); the others do
//! nothing unless the table holds more than 16384 entries, in which case
//! entries unused for 6 minutes are removed bucket by bucket from a rover
//! until `(entries - 16384) * 4 / 3` are gone.
//!
//! # Capacity
//! The kernel's table grows without bound. This one holds `L` entries (`L`
//! a power of two, at least 2). When it is full a new address is served but
//! not remembered, which is what the kernel does when its allocation fails.

use core::net::IpAddr;

use heapless::FnvIndexMap;

use super::{fold_addr, hash_32, position_of, weighted_least, ConnKey, Dest, DestChange, DestId, Schedule};
use crate::time::{Duration, Instant};

/// `IP_VS_LBLC_TAB_BITS` (and lblcr's): the kernel's hash buckets, which
/// decide the order of the partial collection.
pub const LBLC_TAB_BITS: u32 = 10;
/// `IP_VS_LBLC_TAB_SIZE`.
pub const LBLC_TAB_SIZE: usize = 1 << LBLC_TAB_BITS;
/// `CHECK_EXPIRE_INTERVAL`: period of the collection timer.
pub const CHECK_EXPIRE_INTERVAL: Duration = Duration::from_secs(60);
/// `ENTRY_TIMEOUT`: idle time after which a partial collection may remove an entry.
pub const ENTRY_TIMEOUT: Duration = Duration::from_secs(6 * 60);
/// `DEFAULT_EXPIRATION`: the default of the `lblc_expiration` and `lblcr_expiration` sysctls.
pub const LBLC_EXPIRATION_DEFAULT: Duration = Duration::from_secs(24 * 60 * 60);
/// `COUNT_FOR_FULL_EXPIRATION`: every this many checks, a full check.
pub const COUNT_FOR_FULL_EXPIRATION: u32 = 30;
/// `max_size` of the table: above this many entries partial collection starts.
pub const LBLC_MAX_SIZE: usize = LBLC_TAB_SIZE * 16;

/// The kernel's bucket of a destination address in the locality tables.
pub(crate) fn bucket_of(addr: &IpAddr) -> usize {
    hash_32(fold_addr(addr), LBLC_TAB_BITS) as usize
}

/// The periodic collection shared by lblc and lblcr.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Collector {
    next_check: Instant,
    rover: usize,
    counter: u32,
    pub(crate) expiration: Duration,
}

impl Collector {
    pub(crate) fn new(now: Instant) -> Self {
        Collector {
            next_check: now + CHECK_EXPIRE_INTERVAL,
            rover: 0,
            counter: 1,
            expiration: LBLC_EXPIRATION_DEFAULT,
        }
    }

    pub(crate) fn next_check(&self) -> Instant {
        self.next_check
    }

    /// Runs every check due at or before `now`, each at its own instant.
    pub(crate) fn run<V, const L: usize>(
        &mut self,
        map: &mut FnvIndexMap<IpAddr, V, L>,
        lastuse: impl Fn(&V) -> Instant,
        now: Instant,
    ) {
        if now < self.next_check {
            return;
        }
        // After a long silence, whole cycles of 30 checks in a row change
        // nothing the last full check of the run does not; skip them.
        let period = CHECK_EXPIRE_INTERVAL.total_micros();
        let behind = (now - self.next_check).total_micros() / period;
        let cycle = u64::from(COUNT_FOR_FULL_EXPIRATION);
        if behind > 2 * cycle && map.len() <= LBLC_MAX_SIZE {
            let skip = (behind - cycle) / cycle * cycle;
            self.next_check += Duration::from_micros(skip.saturating_mul(period));
        }
        while now >= self.next_check {
            let t = self.next_check;
            self.check(map, &lastuse, t);
            self.next_check = t + CHECK_EXPIRE_INTERVAL;
        }
    }

    /// `ip_vs_lblc_check_expire` at instant `t`.
    fn check<V, const L: usize>(
        &mut self,
        map: &mut FnvIndexMap<IpAddr, V, L>,
        lastuse: &impl Fn(&V) -> Instant,
        t: Instant,
    ) {
        if self.counter.is_multiple_of(COUNT_FOR_FULL_EXPIRATION) {
            let exp = self.expiration;
            map.retain(|_, v| t < lastuse(v) + exp);
            self.counter = 1;
            return;
        }
        let entries = map.len();
        if entries <= LBLC_MAX_SIZE {
            self.counter += 1;
            return;
        }
        let max = LBLC_MAX_SIZE as i64;
        let mut goal = ((entries as i64 - max) * 4 / 3).min(max / 2);
        let mut stale = [0u32; LBLC_TAB_SIZE];
        for (k, v) in map.iter() {
            if t >= lastuse(v) + ENTRY_TIMEOUT {
                stale[bucket_of(k)] += 1;
            }
        }
        let mut visited = [false; LBLC_TAB_SIZE];
        let mut j = self.rover;
        for _ in 0..LBLC_TAB_SIZE {
            j = (j + 1) & (LBLC_TAB_SIZE - 1);
            visited[j] = true;
            goal -= i64::from(stale[j]);
            if goal <= 0 {
                break;
            }
        }
        self.rover = j;
        map.retain(|k, v| !(visited[bucket_of(k)] && t >= lastuse(v) + ENTRY_TIMEOUT));
    }
}

/// lblc and lblcr's "overloaded": more active connections than weight while
/// some server of the list has less than half its weight.
pub(crate) fn lblc_overloaded(dest: &Dest, dests: &[Dest]) -> bool {
    dest.active() > dest.weight
        && dests.iter().any(|d| d.active().wrapping_mul(2) < d.weight)
}

/// A remembered destination for one destination address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    dest: DestId,
    hint: usize,
    lastuse: Instant,
}

/// Locality-based least-connection state for up to `L` destination addresses.
#[derive(Debug, Clone)]
pub struct Lblc<const L: usize = 256> {
    table: FnvIndexMap<IpAddr, Entry, L>,
    gc: Collector,
}

impl<const L: usize> Lblc<L> {
    /// `init_service` at `now`; the collection timer starts here.
    pub fn new(now: Instant) -> Self {
        Lblc { table: FnvIndexMap::new(), gc: Collector::new(now) }
    }

    /// Sets the `lblc_expiration` sysctl (default 24 hours).
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

    /// When the next collection check is due. Checks also run from
    /// `schedule`, so calling [`Lblc::handle_timeout`] is optional.
    pub fn poll_at(&self) -> Instant {
        self.gc.next_check()
    }

    /// Runs the collection checks due at `now`; a no-op when none is due.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.gc.run(&mut self.table, |e: &Entry| e.lastuse, now);
    }
}

impl<const L: usize> Schedule for Lblc<L> {
    fn handle_change(&mut self, _dests: &[Dest], _change: DestChange) {}

    fn schedule(&mut self, dests: &[Dest], conn: &ConnKey, now: Instant) -> Option<usize> {
        self.handle_timeout(now);
        if let Some(en) = self.table.get_mut(&conn.dst) {
            en.lastuse = now;
            // A server no longer in the list is in the kernel's trash: not
            // available.
            if let Some(i) = position_of(dests, &en.dest, en.hint) {
                en.hint = i;
                let d = &dests[i];
                if d.weight > 0 && !lblc_overloaded(d, dests) {
                    return Some(i);
                }
            }
        }
        let i = weighted_least(dests, Dest::conn_overhead)?;
        let id = dests[i].id();
        match self.table.get_mut(&conn.dst) {
            Some(en) if en.dest == id => {}
            Some(en) => *en = Entry { dest: id, hint: i, lastuse: now },
            None => {
                // Full: serve without remembering, as on allocation failure.
                let _ = self.table.insert(conn.dst, Entry { dest: id, hint: i, lastuse: now });
            }
        }
        Some(i)
    }
}

#[cfg(test)]
mod test {
    use super::super::testutil::*;
    use super::*;
    use core::net::Ipv4Addr;

    fn to(c: &mut ConnKey, n: u8) {
        c.dst = IpAddr::V4(Ipv4Addr::new(192, 0, 2, n));
    }

    #[test]
    fn test_lblc_sticky_then_wlc() {
        let mut dests = [d(1, 2), d(2, 2)];
        let mut s: Lblc<16> = Lblc::new(Instant::ZERO);
        let mut c = conn(Ipv4Addr::new(198, 51, 100, 7), 1234);
        to(&mut c, 1);
        let t = Instant::from_millis(10);
        assert_eq!(s.schedule(&dests, &c, t), Some(0));
        // Remembered even though server 1 is now less loaded by wlc.
        dests[0].activeconns = 2;
        assert_eq!(s.schedule(&dests, &c, t), Some(0));
        // A new address goes by wlc.
        to(&mut c, 2);
        assert_eq!(s.schedule(&dests, &c, t), Some(1));
        // activeconns > weight and server 1 below half its weight: re-pick.
        to(&mut c, 1);
        dests[0].activeconns = 3;
        assert_eq!(s.schedule(&dests, &c, t), Some(1));
        assert_eq!(s.schedule(&dests, &c, t), Some(1));
        assert_eq!(s.len(), 2);
    }

    #[test]
    fn test_lblc_overload_rule_and_flag() {
        let mut dests = [d(1, 2), d(2, 2)];
        let mut s: Lblc<16> = Lblc::new(Instant::ZERO);
        let c = conn(Ipv4Addr::new(198, 51, 100, 7), 1234);
        assert_eq!(s.schedule(&dests, &c, Instant::ZERO), Some(0));
        // Over its weight, but nobody is under half: keep it.
        dests[0].activeconns = 3;
        dests[1].activeconns = 1;
        assert_eq!(s.schedule(&dests, &c, Instant::ZERO), Some(0));
        // The kernel ignores the overload flag of a remembered server.
        dests[0].overloaded = true;
        assert_eq!(s.schedule(&dests, &c, Instant::ZERO), Some(0));
        // Weight 0 is never used, remembered or not.
        dests[0].weight = 0;
        assert_eq!(s.schedule(&dests, &c, Instant::ZERO), Some(1));
        dests[1].overloaded = true;
        assert_eq!(s.schedule(&dests, &c, Instant::ZERO), Some(1));
        dests[1].weight = 0;
        assert_eq!(s.schedule(&dests, &c, Instant::ZERO), None);
    }

    #[test]
    fn test_lblc_removed_dest_and_full_table() {
        let dests = [d(1, 1), d(2, 1)];
        let mut s: Lblc<2> = Lblc::new(Instant::ZERO);
        let mut c = conn(Ipv4Addr::new(198, 51, 100, 7), 1234);
        assert_eq!(s.schedule(&dests, &c, Instant::ZERO), Some(0));
        // Server 10.0.0.1 deleted: the entry points to the trash, re-pick.
        let after = [d(2, 1)];
        assert_eq!(s.schedule(&after, &c, Instant::ZERO), Some(0));
        assert_eq!(s.schedule(&dests, &c, Instant::ZERO), Some(1));
        for n in 2..6 {
            to(&mut c, n);
            assert!(s.schedule(&dests, &c, Instant::ZERO).is_some());
        }
        assert_eq!(s.len(), 2);
    }

    #[test]
    fn test_lblc_expiry() {
        let mut dests = [d(1, 1), d(2, 1)];
        let mut s: Lblc<16> = Lblc::new(Instant::ZERO);
        s.set_expiration(Duration::from_secs(30 * 60));
        let c = conn(Ipv4Addr::new(198, 51, 100, 7), 1234);
        assert_eq!(s.schedule(&dests, &c, Instant::ZERO), Some(0));
        dests[0].activeconns = 1;
        // Checks at 60 s, 120 s, ...; the 30th (at 1800 s) is full and removes
        // entries with lastuse + 1800 s <= 1800 s: ours, used at 0.
        assert_eq!(s.poll_at(), Instant::from_millis(60_000));
        s.handle_timeout(Instant::from_millis(1_799_999));
        assert_eq!(s.len(), 1);
        s.handle_timeout(Instant::from_millis(1_800_000));
        assert_eq!(s.len(), 0);
        assert_eq!(s.schedule(&dests, &c, Instant::from_millis(1_800_000)), Some(1));
        // The next full check is 30 checks later; a long silence is caught up.
        assert_eq!(s.schedule(&dests, &c, Instant::from_millis(1_900_000)), Some(1));
        s.handle_timeout(Instant::from_millis(100_000_000));
        assert!(s.is_empty());
        assert_eq!(s.poll_at(), Instant::from_millis(100_020_000));
    }
}
