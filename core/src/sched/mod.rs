//! The Linux IPVS schedulers as pure algorithms.
//!
//! Every scheduler of the kernel's `net/netfilter/ipvs/` is here, and each
//! picks the same real server as the kernel's scheduler of the same name
//! given the same destination list, weights, connection counters, packet
//! addresses and ports: [`rr`], [`wrr`], [`lc`], [`wlc`], [`sed`], [`nq`],
//! [`dh`], [`sh`], [`mh`], [`lblc`], [`lblcr`], [`fo`] and [`ovf`].
//! They share one trait, [`Schedule`], and one enum, [`Scheduler`], that
//! dispatches to each of them without `dyn`.
//!
//! # The destination list and its order
//! The kernel keeps a service's real servers in `svc->destinations` and
//! every scheduler walks that list from its head; ties go to whoever comes
//! first. A new destination is linked at the **head** of the list
//! (`list_add_rcu`), an edit keeps its place, a delete unlinks it. So the
//! list is ordered newest-added first. [`DestList`] keeps a list in exactly
//! that order and returns the [`DestChange`] to hand to
//! [`Schedule::handle_change`]; a host that keeps its own `Vec<Dest>` must
//! insert at index 0 and report the same changes.
//!
//! # Call contract
//! - Build the scheduler with [`Scheduler::new`] from the current list
//!   (the kernel's `init_service`).
//! - After every add, delete or edit (weight change) of a destination, call
//!   [`Schedule::handle_change`] with the list as it is *after* the change
//!   (the kernel's `add_dest`/`del_dest`/`upd_dest`).
//! - Connection counters and the overload flag change without notice: the
//!   kernel reads them at scheduling time, and so do we.
//! - [`Schedule::schedule`] returns an index into the slice it was given.
//!
//! Weights follow the kernel: `i32`, with 0 meaning quiesced. Negative
//! weights are rejected by the kernel; here they are treated like 0.
//! Counters are `u32` and are read as the kernel's `atomic_t` (`i32`, with
//! wrapping arithmetic) where the kernel does so.

use core::net::IpAddr;

use crate::time::Instant;

pub mod dh;
pub mod fo;
pub mod lblc;
pub mod lblcr;
pub mod lc;
pub mod mh;
pub mod nq;
pub mod ovf;
pub mod rr;
pub mod sed;
pub mod sh;
pub mod wlc;
pub mod wrr;

pub use dh::Dh;
pub use fo::Fo;
pub use lblc::Lblc;
pub use lblcr::Lblcr;
pub use lc::Lc;
pub use mh::Mh;
pub use nq::Nq;
pub use ovf::Ovf;
pub use rr::Rr;
pub use sed::Sed;
pub use sh::Sh;
pub use wlc::Wlc;
pub use wrr::Wrr;

/// `IP_VS_SVC_F_SCHED1`: the first scheduler-specific service flag.
pub const IP_VS_SVC_F_SCHED1: u32 = 0x0008;
/// `IP_VS_SVC_F_SCHED2`: the second scheduler-specific service flag.
pub const IP_VS_SVC_F_SCHED2: u32 = 0x0010;
/// `IP_VS_SVC_F_SCHED3`: the third scheduler-specific service flag.
pub const IP_VS_SVC_F_SCHED3: u32 = 0x0020;
/// `IP_VS_SVC_F_SCHED_SH_FALLBACK`: sh looks further when the hashed server is unavailable.
pub const IP_VS_SVC_F_SCHED_SH_FALLBACK: u32 = IP_VS_SVC_F_SCHED1;
/// `IP_VS_SVC_F_SCHED_SH_PORT`: sh also hashes the client's source port.
pub const IP_VS_SVC_F_SCHED_SH_PORT: u32 = IP_VS_SVC_F_SCHED2;
/// `IP_VS_SVC_F_SCHED_MH_FALLBACK`: mh looks further when the hashed server is unavailable.
pub const IP_VS_SVC_F_SCHED_MH_FALLBACK: u32 = IP_VS_SVC_F_SCHED1;
/// `IP_VS_SVC_F_SCHED_MH_PORT`: mh also hashes the client's source port.
pub const IP_VS_SVC_F_SCHED_MH_PORT: u32 = IP_VS_SVC_F_SCHED2;

/// `IP_VS_DEST_F_AVAILABLE`: the destination is linked in its service.
pub const IP_VS_DEST_F_AVAILABLE: u32 = 0x0001;
/// `IP_VS_DEST_F_OVERLOAD`: the destination is over its upper connection threshold.
pub const IP_VS_DEST_F_OVERLOAD: u32 = 0x0002;

/// IP protocol number of TCP.
pub const IPPROTO_TCP: u8 = 6;
/// IP protocol number of UDP.
pub const IPPROTO_UDP: u8 = 17;
/// IP protocol number of SCTP.
pub const IPPROTO_SCTP: u8 = 132;

/// Identity of a destination within a service: address and port, as the
/// kernel's `ip_vs_lookup_dest` compares them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
// No defmt::Format: defmt has no impl for core::net addresses.
pub struct DestId {
    /// Real server address.
    pub addr: IpAddr,
    /// Real server port (host order).
    pub port: u16,
}

/// A real server of a virtual service, with the counters the schedulers read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dest {
    /// Real server address.
    pub addr: IpAddr,
    /// Real server port (host order).
    pub port: u16,
    /// Current weight; 0 quiesces the server.
    pub weight: i32,
    /// The latest non-zero weight (the kernel's `last_weight`, used by mh).
    /// [`DestList`] maintains it; set it to `weight` when adding by hand.
    pub last_weight: i32,
    /// Active connections (`activeconns`).
    pub activeconns: u32,
    /// Inactive connections (`inactconns`).
    pub inactconns: u32,
    /// Persistent connection templates (`persistconns`); no scheduler reads it.
    pub persistconns: u32,
    /// `IP_VS_DEST_F_OVERLOAD`: set by the host from the upper/lower
    /// connection thresholds as the kernel does.
    pub overloaded: bool,
}

impl Dest {
    /// A destination with `weight`, no connections and not overloaded.
    pub const fn new(addr: IpAddr, port: u16, weight: i32) -> Self {
        Dest {
            addr,
            port,
            weight,
            last_weight: weight,
            activeconns: 0,
            inactconns: 0,
            persistconns: 0,
            overloaded: false,
        }
    }

    /// This destination's identity.
    pub const fn id(&self) -> DestId {
        DestId { addr: self.addr, port: self.port }
    }

    /// The kernel's `ip_vs_dest_conn_overhead`: `(activeconns << 8) + inactconns`,
    /// computed in `int` as the kernel does (wrapping).
    pub const fn conn_overhead(&self) -> i32 {
        (self.activeconns as i32).wrapping_shl(8).wrapping_add(self.inactconns as i32)
    }

    /// `activeconns` as the kernel reads it (an `atomic_t`).
    pub(crate) const fn active(&self) -> i32 {
        self.activeconns as i32
    }

    /// Not overloaded and weight above zero: may take a new connection.
    pub const fn is_available(&self) -> bool {
        !self.overloaded && self.weight > 0
    }
}

/// The packet being scheduled: the first packet of a new connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
// No defmt::Format: defmt has no impl for core::net addresses.
pub struct ConnKey {
    /// IP protocol number ([`IPPROTO_TCP`], [`IPPROTO_UDP`], [`IPPROTO_SCTP`], ...).
    pub protocol: u8,
    /// Client (source) address: sh and mh hash it.
    pub src: IpAddr,
    /// Client (source) port: sh and mh hash it with their port flag.
    pub sport: u16,
    /// Destination address of the packet: dh, lblc and lblcr hash it.
    pub dst: IpAddr,
    /// Destination port of the packet.
    pub dport: u16,
}

impl ConnKey {
    /// A TCP connection from `src:sport` to `dst:dport`.
    pub const fn tcp(src: IpAddr, sport: u16, dst: IpAddr, dport: u16) -> Self {
        ConnKey { protocol: IPPROTO_TCP, src, sport, dst, dport }
    }

    /// The source port as sh/mh read it: only TCP, UDP and SCTP have one.
    pub(crate) const fn hash_sport(&self) -> u16 {
        match self.protocol {
            IPPROTO_TCP | IPPROTO_UDP | IPPROTO_SCTP => self.sport,
            _ => 0,
        }
    }
}

/// What changed in the destination list; the argument of
/// [`Schedule::handle_change`]. Indices are positions in kernel order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
// No defmt::Format: defmt has no impl for core::net addresses.
pub enum DestChange {
    /// A destination was added; it is at `index` (0 in kernel order).
    Added {
        /// Its position in the list after the change.
        index: usize,
    },
    /// A destination was removed.
    Removed {
        /// The position it had before the change.
        index: usize,
        /// Its identity.
        id: DestId,
    },
    /// A destination was edited in place (weight, thresholds, forwarding).
    Updated {
        /// Its position in the list.
        index: usize,
    },
}

/// Errors of [`DestList`] operations, mirroring the kernel's refusals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum DestListError {
    /// The destination already exists (`-EEXIST`).
    Exists,
    /// No such destination (`-ENOENT`).
    NotFound,
    /// A negative weight (`-ERANGE`).
    BadWeight,
    /// The list is at its capacity.
    Full,
}

impl core::fmt::Display for DestListError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            DestListError::Exists => "destination already exists",
            DestListError::NotFound => "no such destination",
            DestListError::BadWeight => "weight out of range",
            DestListError::Full => "destination list full",
        })
    }
}

#[cfg(feature = "std")]
impl std::error::Error for DestListError {}

/// A service's destinations in the kernel's order (newest added first), for
/// up to `N` destinations.
#[derive(Debug, Clone)]
pub struct DestList<const N: usize> {
    dests: heapless::Vec<Dest, N>,
}

impl<const N: usize> Default for DestList<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> DestList<N> {
    /// An empty list.
    pub const fn new() -> Self {
        DestList { dests: heapless::Vec::new() }
    }

    /// The destinations in kernel order.
    pub fn as_slice(&self) -> &[Dest] {
        &self.dests
    }

    /// Mutable access to counters and overload flags. Changing `weight`,
    /// `addr` or `port` here bypasses the scheduler: use [`DestList::set_weight`].
    pub fn as_mut_slice(&mut self) -> &mut [Dest] {
        &mut self.dests
    }

    /// Position of the destination `addr:port`.
    pub fn find(&self, addr: IpAddr, port: u16) -> Option<usize> {
        self.dests.iter().position(|d| d.addr == addr && d.port == port)
    }

    /// Adds `dest` at the head of the list, as `ip_vs_add_dest` does.
    /// Its `last_weight` is set to its weight.
    pub fn add(&mut self, mut dest: Dest) -> Result<DestChange, DestListError> {
        if dest.weight < 0 {
            return Err(DestListError::BadWeight);
        }
        if self.find(dest.addr, dest.port).is_some() {
            return Err(DestListError::Exists);
        }
        dest.last_weight = dest.weight;
        self.dests.insert(0, dest).map_err(|_| DestListError::Full)?;
        Ok(DestChange::Added { index: 0 })
    }

    /// Removes `addr:port`, as `ip_vs_del_dest` does.
    pub fn remove(&mut self, addr: IpAddr, port: u16) -> Result<DestChange, DestListError> {
        let index = self.find(addr, port).ok_or(DestListError::NotFound)?;
        let d = self.dests.remove(index);
        Ok(DestChange::Removed { index, id: d.id() })
    }

    /// Sets the weight of `addr:port` in place, as `ip_vs_edit_dest` does;
    /// `last_weight` keeps the latest non-zero weight.
    pub fn set_weight(
        &mut self,
        addr: IpAddr,
        port: u16,
        weight: i32,
    ) -> Result<DestChange, DestListError> {
        if weight < 0 {
            return Err(DestListError::BadWeight);
        }
        let index = self.find(addr, port).ok_or(DestListError::NotFound)?;
        let d = &mut self.dests[index];
        if weight != 0 {
            d.last_weight = weight;
        }
        d.weight = weight;
        Ok(DestChange::Updated { index })
    }
}

/// One IPVS scheduling algorithm.
pub trait Schedule {
    /// Tells the scheduler that the list changed; `dests` is the list after
    /// the change. Call it after every add, delete and edit, in order.
    fn handle_change(&mut self, dests: &[Dest], change: DestChange);

    /// Picks a destination for a new connection: an index into `dests`, or
    /// `None` when the kernel would find no destination available. `now` is
    /// only read by lblc and lblcr.
    fn schedule(&mut self, dests: &[Dest], conn: &ConnKey, now: Instant) -> Option<usize>;
}

/// The names of the schedulers, as `ipvsadm -s` spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SchedKind {
    /// Round robin.
    Rr,
    /// Weighted round robin.
    Wrr,
    /// Least connection.
    Lc,
    /// Weighted least connection.
    Wlc,
    /// Shortest expected delay.
    Sed,
    /// Never queue.
    Nq,
    /// Destination hashing.
    Dh,
    /// Source hashing.
    Sh,
    /// Maglev hashing.
    Mh,
    /// Locality-based least connection.
    Lblc,
    /// Locality-based least connection with replication.
    Lblcr,
    /// Weighted fail over.
    Fo,
    /// Weighted overflow.
    Ovf,
}

impl SchedKind {
    /// Every scheduler.
    pub const ALL: [SchedKind; 13] = [
        SchedKind::Rr,
        SchedKind::Wrr,
        SchedKind::Lc,
        SchedKind::Wlc,
        SchedKind::Sed,
        SchedKind::Nq,
        SchedKind::Dh,
        SchedKind::Sh,
        SchedKind::Mh,
        SchedKind::Lblc,
        SchedKind::Lblcr,
        SchedKind::Fo,
        SchedKind::Ovf,
    ];

    /// The kernel's name of the scheduler.
    pub const fn name(self) -> &'static str {
        match self {
            SchedKind::Rr => "rr",
            SchedKind::Wrr => "wrr",
            SchedKind::Lc => "lc",
            SchedKind::Wlc => "wlc",
            SchedKind::Sed => "sed",
            SchedKind::Nq => "nq",
            SchedKind::Dh => "dh",
            SchedKind::Sh => "sh",
            SchedKind::Mh => "mh",
            SchedKind::Lblc => "lblc",
            SchedKind::Lblcr => "lblcr",
            SchedKind::Fo => "fo",
            SchedKind::Ovf => "ovf",
        }
    }

    /// The scheduler called `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        SchedKind::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// Any scheduler, dispatched by `match`.
///
/// `L` is the capacity of the lblc/lblcr locality tables (a power of two,
/// at least 2), `S` the capacity of an lblcr server set, `M` the mh lookup
/// table size (one of the kernel's primes; 4093 is the kernel's default).
/// The value holds every table inline; hosts with a large `L` should box it.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)]
pub enum Scheduler<const L: usize = 256, const S: usize = 16, const M: usize = 4093> {
    /// [`rr`].
    Rr(Rr),
    /// [`wrr`].
    Wrr(Wrr),
    /// [`lc`].
    Lc(Lc),
    /// [`wlc`].
    Wlc(Wlc),
    /// [`sed`].
    Sed(Sed),
    /// [`nq`].
    Nq(Nq),
    /// [`dh`].
    Dh(Dh),
    /// [`sh`].
    Sh(Sh),
    /// [`mh`].
    Mh(Mh<M>),
    /// [`lblc`].
    Lblc(Lblc<L>),
    /// [`lblcr`].
    Lblcr(Lblcr<L, S>),
    /// [`fo`].
    Fo(Fo),
    /// [`ovf`].
    Ovf(Ovf),
}

impl<const L: usize, const S: usize, const M: usize> Scheduler<L, S, M> {
    /// The kernel's `init_service`: a `kind` scheduler for a service with
    /// flags `svc_flags` (`IP_VS_SVC_F_*`) and destinations `dests`, at `now`.
    pub fn new(kind: SchedKind, svc_flags: u32, dests: &[Dest], now: Instant) -> Self {
        match kind {
            SchedKind::Rr => Scheduler::Rr(Rr::new()),
            SchedKind::Wrr => Scheduler::Wrr(Wrr::new(dests)),
            SchedKind::Lc => Scheduler::Lc(Lc),
            SchedKind::Wlc => Scheduler::Wlc(Wlc),
            SchedKind::Sed => Scheduler::Sed(Sed),
            SchedKind::Nq => Scheduler::Nq(Nq),
            SchedKind::Dh => Scheduler::Dh(Dh::new(dests)),
            SchedKind::Sh => Scheduler::Sh(Sh::new(svc_flags, dests)),
            SchedKind::Mh => Scheduler::Mh(Mh::new(svc_flags, dests)),
            SchedKind::Lblc => Scheduler::Lblc(Lblc::new(now)),
            SchedKind::Lblcr => Scheduler::Lblcr(Lblcr::new(now)),
            SchedKind::Fo => Scheduler::Fo(Fo),
            SchedKind::Ovf => Scheduler::Ovf(Ovf),
        }
    }

    /// Which scheduler this is.
    pub const fn kind(&self) -> SchedKind {
        match self {
            Scheduler::Rr(_) => SchedKind::Rr,
            Scheduler::Wrr(_) => SchedKind::Wrr,
            Scheduler::Lc(_) => SchedKind::Lc,
            Scheduler::Wlc(_) => SchedKind::Wlc,
            Scheduler::Sed(_) => SchedKind::Sed,
            Scheduler::Nq(_) => SchedKind::Nq,
            Scheduler::Dh(_) => SchedKind::Dh,
            Scheduler::Sh(_) => SchedKind::Sh,
            Scheduler::Mh(_) => SchedKind::Mh,
            Scheduler::Lblc(_) => SchedKind::Lblc,
            Scheduler::Lblcr(_) => SchedKind::Lblcr,
            Scheduler::Fo(_) => SchedKind::Fo,
            Scheduler::Ovf(_) => SchedKind::Ovf,
        }
    }
}

impl<const L: usize, const S: usize, const M: usize> Schedule for Scheduler<L, S, M> {
    fn handle_change(&mut self, dests: &[Dest], change: DestChange) {
        match self {
            Scheduler::Rr(s) => s.handle_change(dests, change),
            Scheduler::Wrr(s) => s.handle_change(dests, change),
            Scheduler::Lc(s) => s.handle_change(dests, change),
            Scheduler::Wlc(s) => s.handle_change(dests, change),
            Scheduler::Sed(s) => s.handle_change(dests, change),
            Scheduler::Nq(s) => s.handle_change(dests, change),
            Scheduler::Dh(s) => s.handle_change(dests, change),
            Scheduler::Sh(s) => s.handle_change(dests, change),
            Scheduler::Mh(s) => s.handle_change(dests, change),
            Scheduler::Lblc(s) => s.handle_change(dests, change),
            Scheduler::Lblcr(s) => s.handle_change(dests, change),
            Scheduler::Fo(s) => s.handle_change(dests, change),
            Scheduler::Ovf(s) => s.handle_change(dests, change),
        }
    }

    fn schedule(&mut self, dests: &[Dest], conn: &ConnKey, now: Instant) -> Option<usize> {
        match self {
            Scheduler::Rr(s) => s.schedule(dests, conn, now),
            Scheduler::Wrr(s) => s.schedule(dests, conn, now),
            Scheduler::Lc(s) => s.schedule(dests, conn, now),
            Scheduler::Wlc(s) => s.schedule(dests, conn, now),
            Scheduler::Sed(s) => s.schedule(dests, conn, now),
            Scheduler::Nq(s) => s.schedule(dests, conn, now),
            Scheduler::Dh(s) => s.schedule(dests, conn, now),
            Scheduler::Sh(s) => s.schedule(dests, conn, now),
            Scheduler::Mh(s) => s.schedule(dests, conn, now),
            Scheduler::Lblc(s) => s.schedule(dests, conn, now),
            Scheduler::Lblcr(s) => s.schedule(dests, conn, now),
            Scheduler::Fo(s) => s.schedule(dests, conn, now),
            Scheduler::Ovf(s) => s.schedule(dests, conn, now),
        }
    }
}

/// Folds an address to the 32 bits the kernel's hash functions read, in
/// host order: the IPv4 address, or the XOR of the four words of an IPv6 one.
pub(crate) fn fold_addr(addr: &IpAddr) -> u32 {
    match addr {
        IpAddr::V4(a) => u32::from(*a),
        IpAddr::V6(a) => {
            let o = a.octets();
            let w = |i: usize| u32::from_be_bytes([o[i], o[i + 1], o[i + 2], o[i + 3]]);
            w(0) ^ w(4) ^ w(8) ^ w(12)
        }
    }
}

/// The kernel's `hash_32(val, bits)` (`GOLDEN_RATIO_32`, high bits), for
/// `1 <= bits <= 32`.
pub(crate) const fn hash_32(val: u32, bits: u32) -> u32 {
    let h = val.wrapping_mul(0x61C8_8647);
    if bits == 0 {
        0
    } else {
        h >> (32 - if bits > 32 { 32 } else { bits })
    }
}

/// Position of `id` in `dests`, trying `hint` first.
pub(crate) fn position_of(dests: &[Dest], id: &DestId, hint: usize) -> Option<usize> {
    match dests.get(hint) {
        Some(d) if d.addr == id.addr && d.port == id.port => Some(hint),
        _ => dests.iter().position(|d| d.addr == id.addr && d.port == id.port),
    }
}

/// The weighted least-connection pick shared by wlc, lblc and lblcr:
/// first available destination, then strictly smaller
/// `overhead / weight` (compared as `loh * w > doh * lw` in 64 bits).
pub(crate) fn weighted_least(dests: &[Dest], overhead: impl Fn(&Dest) -> i32) -> Option<usize> {
    let first = dests.iter().position(Dest::is_available)?;
    let mut least = first;
    let mut loh = overhead(&dests[first]);
    for (i, d) in dests.iter().enumerate().skip(first + 1) {
        // The kernel only skips overloaded servers here; a weight-0 server
        // can only win if an overhead wrapped negative, which we refuse.
        if !d.is_available() {
            continue;
        }
        let doh = overhead(d);
        if i64::from(loh) * i64::from(d.weight) > i64::from(doh) * i64::from(dests[least].weight) {
            least = i;
            loh = doh;
        }
    }
    Some(least)
}

#[cfg(test)]
pub(crate) mod testutil {
    //! Shared helpers for the scheduler tests.
    use super::*;
    use core::net::Ipv4Addr;

    /// `10.0.0.n:80` with `weight`.
    pub fn d(n: u8, weight: i32) -> Dest {
        Dest::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, n)), 80, weight)
    }

    /// A TCP connection from `src:sport` to 192.0.2.1:80.
    pub fn conn(src: Ipv4Addr, sport: u16) -> ConnKey {
        ConnKey::tcp(IpAddr::V4(src), sport, IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 80)
    }

    pub use crate::test_rng::XorShift as Rng;
}

#[cfg(test)]
mod test {
    use super::testutil::*;
    use super::*;
    use core::net::{Ipv4Addr, Ipv6Addr};

    #[test]
    fn test_dest_list_order() {
        let mut l = DestList::<8>::new();
        assert_eq!(l.add(d(1, 1)), Ok(DestChange::Added { index: 0 }));
        l.add(d(2, 1)).unwrap();
        l.add(d(3, 1)).unwrap();
        let order: heapless::Vec<u16, 8> = l.as_slice().iter().map(|x| u16::from(x.id().addr.to_string_octet())).collect();
        assert_eq!(&order[..], &[3, 2, 1]);
        assert_eq!(l.add(d(2, 5)), Err(DestListError::Exists));
        let a2 = d(2, 0).addr;
        assert_eq!(l.set_weight(a2, 80, 0), Ok(DestChange::Updated { index: 1 }));
        assert_eq!(l.as_slice()[1].weight, 0);
        assert_eq!(l.as_slice()[1].last_weight, 1);
        assert_eq!(l.set_weight(a2, 80, -1), Err(DestListError::BadWeight));
        assert_eq!(l.remove(a2, 80), Ok(DestChange::Removed { index: 1, id: d(2, 0).id() }));
        assert_eq!(l.remove(a2, 80), Err(DestListError::NotFound));
        let mut small = DestList::<1>::new();
        small.add(d(1, 1)).unwrap();
        assert_eq!(small.add(d(2, 1)), Err(DestListError::Full));
    }

    trait LastOctet {
        fn to_string_octet(&self) -> u8;
    }
    impl LastOctet for IpAddr {
        fn to_string_octet(&self) -> u8 {
            match self {
                IpAddr::V4(a) => a.octets()[3],
                IpAddr::V6(a) => a.octets()[15],
            }
        }
    }

    #[test]
    fn test_fold_and_hash32() {
        assert_eq!(fold_addr(&IpAddr::V4(Ipv4Addr::new(1, 2, 3, 4))), 0x0102_0304);
        let v6 = Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 0, 0, 0xffff, 0x0001);
        // 0x20010db8 ^ 0x00000001 ^ 0x00000000 ^ 0xffff0001
        assert_eq!(fold_addr(&IpAddr::V6(v6)), 0x2001_0db8 ^ 0x0000_0001 ^ 0xffff_0001);
        // hash_32(1, 8) = 0x61c88647 >> 24
        assert_eq!(hash_32(1, 8), 0x61);
        assert_eq!(hash_32(2, 10), 0xc3910c8e_u32 >> 22);
        assert_eq!(Dest { activeconns: 2, inactconns: 3, ..d(1, 1) }.conn_overhead(), 515);
        // Wraps like the kernel's int arithmetic instead of panicking.
        assert!(Dest { activeconns: u32::MAX, inactconns: u32::MAX, ..d(1, 1) }.conn_overhead() < 0);
    }

    #[test]
    fn test_kind_names() {
        for k in SchedKind::ALL {
            assert_eq!(SchedKind::from_name(k.name()), Some(k));
        }
        assert_eq!(SchedKind::from_name("twos"), None);
    }

    /// Random lists and connections: no scheduler ever picks a weight-0 (or
    /// negative) server, nor an overloaded one except lblc's cached entry,
    /// which the kernel does not check for the overload flag.
    #[test]
    fn test_never_weight0_or_overloaded() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for round in 0..60 {
            let n = rng.below(12) + 1;
            let mut dests: heapless::Vec<Dest, 16> = heapless::Vec::new();
            for i in 0..n {
                let w = match rng.below(4) {
                    0 => 0,
                    1 => -(rng.below(3) as i32),
                    _ => rng.below(70_000) as i32,
                };
                let mut x = d(i as u8 + 1, w);
                x.activeconns = rng.next() as u32 >> (rng.below(32) as u32);
                x.inactconns = rng.next() as u32 >> (rng.below(32) as u32);
                x.overloaded = rng.below(3) == 0;
                dests.push(x).unwrap();
            }
            for kind in SchedKind::ALL {
                let now = Instant::from_micros(round * 1_000_000);
                let flags = if rng.below(2) == 0 { 0 } else { IP_VS_SVC_F_SCHED1 | IP_VS_SVC_F_SCHED2 };
                let mut s: Scheduler<16, 4, 251> = Scheduler::new(kind, flags, &dests, now);
                for c in 0..40u32 {
                    let src = Ipv4Addr::from(rng.next() as u32);
                    let mut key = conn(src, rng.next() as u16);
                    key.dst = IpAddr::V4(Ipv4Addr::from(0xc000_0200 | (c % 3)));
                    if let Some(i) = s.schedule(&dests, &key, now) {
                        assert!(dests[i].weight > 0, "{} picked weight {}", kind.name(), dests[i].weight);
                        if kind != SchedKind::Lblc {
                            assert!(!dests[i].overloaded, "{} picked an overloaded server", kind.name());
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn test_empty_list() {
        for kind in SchedKind::ALL {
            let mut s: Scheduler<16, 4, 251> = Scheduler::new(kind, 0, &[], Instant::ZERO);
            let key = conn(Ipv4Addr::new(198, 51, 100, 1), 1000);
            assert_eq!(s.schedule(&[], &key, Instant::ZERO), None, "{}", kind.name());
        }
    }
}
