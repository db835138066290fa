//! The multi-instance engine every host drives: one record per instance,
//! VRID demultiplexing, the timer table, sync groups, and the addresses the
//! host holds for each instance.
//!
//! A host owns one [`Engine`]. It adds a [`Record`] per instance (its own data
//! in [`Record::meta`], the core [`Instance`] with its config and link state,
//! and the key adverts arrive under), then:
//! - hands every received VRRP message to [`Engine::receive`] (parsing,
//!   the lookup by interface, family and VRID, and the drop counters live here);
//! - hands every other input of one instance to [`Engine::handle`], or of all
//!   of them to [`Engine::broadcast`];
//! - sleeps until [`Engine::poll_at`] and then calls [`Engine::poll`];
//! - reports what came of installing and removing addresses with
//!   [`Input::Vips`] and [`Engine::vips_released`];
//! - applies a reload with [`Engine::reconfigure`] per changed instance.
//!
//! Every call hands its outputs, in order, to the `out` closure: the actions
//! of each instance tagged with its index, and the sync-group states that all
//! members agree on. Carry them out in that order.
//!
//! Storage is chosen by the host: [`Fixed`] holds everything in `heapless`
//! vectors sized by const generics (no allocator, for firmware), [`Growable`]
//! (feature `alloc`) in `Vec`s.

use core::net::IpAddr;
use core::ops::{Deref, DerefMut};

use super::group::{SyncGroup, MAX_GROUP};
use super::instance::{Action, Advert, DropReason, Input, Instance, State};
use super::track::TrackSet;
use super::InstanceConfig;
use crate::time::{Duration, Instant};
use crate::wire::{VrrpAuth, VrrpPacket, VrrpRepr};

/// Where an instance's adverts arrive: interface, family and VRID. Unique
/// within an engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct VrKey {
    /// The interface index (any host-chosen number on a single-port gateway).
    pub ifindex: u32,
    /// IPv6 instead of IPv4.
    pub ipv6: bool,
    /// The virtual router id.
    pub vrid: u8,
}

/// A growable or fixed vector the engine keeps its tables in.
pub trait Table<T>: Default + Deref<Target = [T]> + DerefMut {
    /// Appends; gives the value back when full.
    fn push(&mut self, value: T) -> Result<(), T>;
    /// Inserts at `at` (`at <= len`); gives the value back when full.
    fn insert(&mut self, at: usize, value: T) -> Result<(), T>;
    /// Removes and returns the element at `at` (`at < len`), shifting the rest.
    fn remove(&mut self, at: usize) -> T;
    /// Removes every element.
    fn clear(&mut self);
}

impl<T, const N: usize> Table<T> for heapless::Vec<T, N> {
    fn push(&mut self, value: T) -> Result<(), T> {
        heapless::Vec::push(self, value)
    }
    fn insert(&mut self, at: usize, value: T) -> Result<(), T> {
        heapless::Vec::insert(self, at, value)
    }
    fn remove(&mut self, at: usize) -> T {
        heapless::Vec::remove(self, at)
    }
    fn clear(&mut self) {
        heapless::Vec::clear(self)
    }
}

#[cfg(feature = "alloc")]
impl<T> Table<T> for alloc::vec::Vec<T> {
    fn push(&mut self, value: T) -> Result<(), T> {
        alloc::vec::Vec::push(self, value);
        Ok(())
    }
    fn insert(&mut self, at: usize, value: T) -> Result<(), T> {
        alloc::vec::Vec::insert(self, at, value);
        Ok(())
    }
    fn remove(&mut self, at: usize) -> T {
        alloc::vec::Vec::remove(self, at)
    }
    fn clear(&mut self) {
        alloc::vec::Vec::clear(self)
    }
}

/// The tables of an engine whose records carry `M`.
pub trait Storage<M> {
    /// One record per instance.
    type Records: Table<Record<M>>;
    /// The VRID index, sorted by key.
    type Index: Table<(VrKey, u16)>;
    /// The sync groups.
    type Groups: Table<Group>;
}

/// Fixed capacities, no allocator: at most `N` instances and `G` sync groups.
#[derive(Debug)]
pub struct Fixed<const N: usize, const G: usize>;

impl<M, const N: usize, const G: usize> Storage<M> for Fixed<N, G> {
    type Records = heapless::Vec<Record<M>, N>;
    type Index = heapless::Vec<(VrKey, u16), N>;
    type Groups = heapless::Vec<Group, G>;
}

/// Tables that grow on the heap.
#[cfg(feature = "alloc")]
#[derive(Debug)]
pub struct Growable;

#[cfg(feature = "alloc")]
impl<M> Storage<M> for Growable {
    type Records = alloc::vec::Vec<Record<M>>;
    type Index = alloc::vec::Vec<(VrKey, u16)>;
    type Groups = alloc::vec::Vec<Group>;
}

/// Whether the host holds an instance's addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum VipHold {
    /// Not installed (never, or removed).
    Released,
    /// Installed after [`Action::AddVips`] (until the host reports otherwise).
    Held,
    /// The host failed to remove them: [`Action::RemoveVips`] is asked for
    /// again at `retry_at`.
    Releasing {
        /// When the removal is asked for again.
        retry_at: Instant,
        /// Failed removals in a row.
        attempts: u8,
    },
}

/// One instance of the engine: the host's data, the core instance (config,
/// link state, election), its key, its sync group and its addresses.
#[derive(Debug, Clone)]
pub struct Record<M> {
    /// The host's data for this instance (its name, where its addresses go,
    /// its notify scripts...).
    pub meta: M,
    key: VrKey,
    inst: Instance,
    group: Option<u16>,
    vips: VipHold,
    release_failures: u64,
    // The next deadline, and the latest it may be delivered (see `Instance::poll_window`);
    // the engine's timer table is this field across its records.
    due: Option<(Instant, Instant)>,
}

impl<M> Record<M> {
    /// A record for `inst` (new, or taken from a previous engine on reload,
    /// with its state and deadlines), receiving under `key`.
    pub fn new(meta: M, key: VrKey, inst: Instance) -> Self {
        let due = inst.poll_window();
        Record { meta, key, inst, group: None, vips: VipHold::Released, release_failures: 0, due }
    }

    /// Where its adverts arrive.
    pub fn key(&self) -> VrKey {
        self.key
    }

    /// The core instance: state, config, counters.
    pub fn instance(&self) -> &Instance {
        &self.inst
    }

    /// Whether the host holds its addresses.
    pub fn vips(&self) -> VipHold {
        self.vips
    }

    /// True unless the addresses are known to be released.
    pub fn holds_vips(&self) -> bool {
        self.vips != VipHold::Released
    }

    /// Failed removals of its addresses, since it was added.
    pub fn release_failures(&self) -> u64 {
        self.release_failures
    }

    /// Its sync group, if any.
    pub fn group(&self) -> Option<usize> {
        self.group.map(usize::from)
    }

    /// Splits the record into its data and its instance (a reload that keeps
    /// the instance builds a new record from them).
    pub fn into_parts(self) -> (M, Instance, VipHold) {
        (self.meta, self.inst, self.vips)
    }

    /// Sets the address state carried over from a previous engine.
    pub fn with_vips(mut self, vips: VipHold) -> Self {
        self.vips = vips;
        self
    }
}

/// A sync group: its members and the state they all last agreed on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    members: SyncGroup,
    agreed: Option<State>,
}

impl Group {
    /// The member indexes.
    pub fn members(&self) -> &[u16] {
        self.members.members()
    }

    /// The state every member was last in together (not Initialize).
    pub fn agreed(&self) -> Option<State> {
        self.agreed
    }
}

/// What an engine call asks the host to do, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Output {
    /// An action of the instance at `idx`.
    Act {
        /// The record index.
        idx: usize,
        /// What to do.
        action: Action,
    },
    /// Every member of sync group `group` is now in `state` (run the group's
    /// notify once).
    Group {
        /// The group index.
        group: usize,
        /// The state they agree on.
        state: State,
    },
}

/// Why [`Engine::add`] or [`Engine::add_group`] refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum AddError {
    /// The table is full.
    Full,
    /// Another instance has the same interface, family and VRID.
    KeyTaken,
    /// A group names an index with no record, a member of another group, or
    /// has more than [`MAX_GROUP`] members.
    BadGroup,
}

impl core::fmt::Display for AddError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            AddError::Full => "too many instances or groups",
            AddError::KeyTaken => "another instance has this VRID on the interface",
            AddError::BadGroup => "a sync group names an unknown instance, one of another group, or too many",
        })
    }
}

/// Messages dropped before any instance saw them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Stray {
    /// Shorter than the VRRP header; for [`Engine::receive_ah`] also a datagram whose IPv4 or
    /// Authentication Header does not parse (too short, an ICV that is not 96 bits).
    pub truncated: u64,
    /// For a VRID (on that interface and family) that no instance runs.
    pub unknown_vrid: u64,
}

/// Where a VRRP message came from, as the host's socket saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    /// The interface it arrived on (its [`VrKey::ifindex`]).
    pub ifindex: u32,
    /// The IP source.
    pub src: IpAddr,
    /// The IP destination.
    pub dst: IpAddr,
    /// The IP TTL or hop limit.
    pub ttl: u8,
}

// Back-off of a failed address removal: 100 ms doubling to 6.4 s.
fn release_backoff(attempts: u8) -> Duration {
    Duration::from_millis(100u64 << attempts.min(6))
}

/// A master accepted a lower-priority advert (keepalived's
/// MASTER_RX_LOWER_PRI), from [`Engine::poll_rx_lower`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct RxLower {
    /// The record index of the master.
    pub idx: usize,
    /// The priority the advert carried.
    pub priority: u8,
}

/// Every VRRP instance of a host. See the [module documentation](self).
pub struct Engine<M, S: Storage<M>> {
    records: S::Records,
    index: S::Index,
    groups: S::Groups,
    stray: Stray,
    // Set by the last `handle`/`receive` whose master accepted a lower-priority advert.
    rx_lower: Option<RxLower>,
    // The earliest latest-delivery time of all records; `None` when it must be found again
    // (the record that held it moved later). Kept so that the host's per-wake-up question
    // costs nothing but after the earliest deadline fired.
    next: core::cell::Cell<Option<Option<Instant>>>,
}

impl<M, S: Storage<M>> Default for Engine<M, S> {
    fn default() -> Self {
        Engine {
            records: Default::default(),
            index: Default::default(),
            groups: Default::default(),
            stray: Stray::default(),
            rx_lower: None,
            next: core::cell::Cell::new(Some(None)),
        }
    }
}

impl<M: core::fmt::Debug, S: Storage<M>> core::fmt::Debug for Engine<M, S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Engine").field("records", &&self.records[..]).field("stray", &self.stray).finish()
    }
}

impl<M, S: Storage<M>> Engine<M, S> {
    /// An empty engine.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a record and returns its index. The instance keeps its state and
    /// deadlines (a record carried over a reload goes on where it was); a new
    /// one starts with [`Input::Startup`] through [`Self::handle`].
    ///
    /// # Errors
    /// The record comes back with [`AddError::KeyTaken`] or [`AddError::Full`].
    // The record comes back whole on failure, without an allocation (no_std): large by design.
    #[allow(clippy::result_large_err)]
    pub fn add(&mut self, rec: Record<M>) -> Result<usize, (Record<M>, AddError)> {
        let idx = self.records.len();
        let Ok(tag) = u16::try_from(idx) else { return Err((rec, AddError::Full)) };
        let at = match self.index.binary_search_by(|(k, _)| k.cmp(&rec.key)) {
            Ok(_) => return Err((rec, AddError::KeyTaken)),
            Err(at) => at,
        };
        if self.index.insert(at, (rec.key, tag)).is_err() {
            return Err((rec, AddError::Full));
        }
        let due = rec.inst.poll_window();
        if let Err(rec) = self.records.push(rec) {
            self.index.remove(at);
            return Err((rec, AddError::Full));
        }
        self.records[idx].due = due;
        self.lower_next(due);
        Ok(idx)
    }

    /// Makes the records at `members` a sync group and returns its index.
    /// The state they all agree on now (members carried over a reload) counts
    /// as already announced.
    ///
    /// # Errors
    /// [`AddError::BadGroup`] or [`AddError::Full`]; nothing changed.
    pub fn add_group(&mut self, members: &[usize]) -> Result<usize, AddError> {
        let gi = self.groups.len();
        let tag = u16::try_from(gi).map_err(|_| AddError::Full)?;
        let mut m: heapless::Vec<u16, MAX_GROUP> = heapless::Vec::new();
        for &i in members {
            let r = self.records.get(i).ok_or(AddError::BadGroup)?;
            let i = u16::try_from(i).map_err(|_| AddError::BadGroup)?;
            if r.group.is_some() || m.contains(&i) {
                return Err(AddError::BadGroup);
            }
            m.push(i).map_err(|_| AddError::BadGroup)?;
        }
        let members = SyncGroup::new(&m).ok_or(AddError::BadGroup)?;
        let agreed = self.common_state(members.members());
        self.groups.push(Group { members, agreed }).map_err(|_| AddError::Full)?;
        for &i in &m {
            self.records[usize::from(i)].group = Some(tag);
        }
        Ok(gi)
    }

    /// The records, by index.
    pub fn records(&self) -> &[Record<M>] {
        &self.records
    }

    /// The sync groups, by index.
    pub fn groups(&self) -> &[Group] {
        &self.groups
    }

    /// The host's data of record `idx`, to change it (an interface that came
    /// back under a new index, say).
    pub fn meta_mut(&mut self, idx: usize) -> Option<&mut M> {
        self.records.get_mut(idx).map(|r| &mut r.meta)
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether there are no records.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Messages dropped before any instance saw them.
    pub fn stray(&self) -> &Stray {
        &self.stray
    }

    /// The record receiving under `key`.
    pub fn lookup(&self, key: &VrKey) -> Option<usize> {
        let at = self.index.binary_search_by(|(k, _)| k.cmp(key)).ok()?;
        Some(usize::from(self.index[at].1))
    }

    /// Moves record `idx` to `key` (its interface came back under a new
    /// index). False when another record has that key or there is no `idx`.
    pub fn rekey(&mut self, idx: usize, key: VrKey) -> bool {
        let Some(old) = self.records.get(idx).map(|r| r.key) else { return false };
        if old == key {
            return true;
        }
        let Ok(tag) = u16::try_from(idx) else { return false };
        let Err(at) = self.index.binary_search_by(|(k, _)| k.cmp(&key)) else { return false };
        // Removing first frees a slot, so the insert cannot fail on a full table.
        let Ok(from) = self.index.binary_search_by(|(k, _)| k.cmp(&old)) else { return false };
        self.index.remove(from);
        let at = if from < at { at - 1 } else { at };
        if self.index.insert(at, (key, tag)).is_err() {
            return false;
        }
        self.records[idx].key = key;
        true
    }

    /// Empties the engine and returns its records, in index order (a reload
    /// builds a new table from them).
    pub fn take_records(&mut self) -> S::Records {
        self.next.set(Some(None));
        self.index.clear();
        self.groups.clear();
        core::mem::take(&mut self.records)
    }

    /// Feeds `input` to record `idx` (no-op without it), then to its sync
    /// group as the input's transitions require.
    pub fn handle(&mut self, now: Instant, idx: usize, input: Input<'_>, out: &mut (impl FnMut(Output) + ?Sized)) {
        let Some(r) = self.records.get_mut(idx) else { return };
        let actions = r.inst.handle(now, input);
        if let Some(priority) = r.inst.poll_rx_lower() {
            self.rx_lower = Some(RxLower { idx, priority });
        }
        self.after(now, idx, &actions, out);
    }

    /// The master that accepted a lower-priority advert in the last
    /// [`Self::receive`] or [`Self::handle`] (and not taken yet): the host
    /// runs its `notify_master_rx_lower_pri`. One message reaches one
    /// instance, so a host that calls this after each message misses none;
    /// otherwise only the latest is kept.
    pub fn poll_rx_lower(&mut self) -> Option<RxLower> {
        self.rx_lower.take()
    }

    /// Feeds `input` to every record, in index order.
    pub fn broadcast(&mut self, now: Instant, input: Input<'_>, out: &mut (impl FnMut(Output) + ?Sized)) {
        for idx in 0..self.records.len() {
            self.handle(now, idx, input, out);
        }
    }

    /// The VRRP message in `bytes` and the index of the instance it is for (by interface,
    /// family and VRID); a message too short to be one, or for a VRID nobody runs, is counted in
    /// [`Self::stray`] and gives `None`.
    fn route<'b>(&mut self, rx: &Received, bytes: &'b [u8]) -> Option<(usize, VrrpPacket<&'b [u8]>)> {
        let Ok(pkt) = VrrpPacket::new_checked(bytes) else {
            self.stray.truncated += 1;
            return None;
        };
        let key = VrKey { ifindex: rx.ifindex, ipv6: rx.src.is_ipv6(), vrid: pkt.vrid() };
        let Some(idx) = self.lookup(&key) else {
            self.stray.unknown_vrid += 1;
            return None;
        };
        Some((idx, pkt))
    }

    /// A VRRP message arrived: finds its instance by interface, family and
    /// VRID, parses it with that instance's checksum mode and hands it over.
    /// A message that is too short or for a VRID nobody runs is counted in
    /// [`Self::stray`]; one that does not parse is counted on its instance by
    /// [`DropReason`] and comes out as [`Action::Discard`].
    pub fn receive(&mut self, now: Instant, rx: &Received, bytes: &[u8], out: &mut (impl FnMut(Output) + ?Sized)) {
        let Some((idx, pkt)) = self.route(rx, bytes) else { return };
        let mode = self.records[idx].inst.config().checksum_mode;
        match VrrpRepr::parse(&pkt, rx.src, rx.dst, mode) {
            // VRRP authentication type AH without an Authentication Header in front
            // (keepalived: "No AH header but auth type is AH").
            Ok(VrrpRepr { auth: VrrpAuth::Ah(_), .. }) => self.drop_advert(idx, DropReason::AuthType, out),
            Ok(repr) => self.handle(now, idx, Input::Advert(Advert { src: rx.src, ttl: rx.ttl, repr: &repr }), out),
            Err(e) => self.drop_advert(idx, DropReason::from_wire(e), out),
        }
    }

    fn drop_advert(&mut self, idx: usize, reason: DropReason, out: &mut (impl FnMut(Output) + ?Sized)) {
        self.records[idx].inst.count_drop(reason);
        out(Output::Act { idx, action: Action::Discard(reason) });
    }

    /// Handles a VRRPv2 advert behind an IPsec Authentication Header (IP
    /// protocol 51): `datagram` is the whole IPv4 datagram, header first, as
    /// an IPv4 raw socket hands it over. Checked in keepalived's order: the
    /// AH must carry VRRP (else the datagram is not ours: ignored), the
    /// instance must use AH ([`DropReason::AuthType`]), the ICV must match
    /// its key, with the TTL zeroed for unicast peers, and the SPI be the
    /// source address ([`DropReason::AhIcv`]), the sequence number must be
    /// above the last one ([`DropReason::AhReplay`], see
    /// [`Instance::ah_take_seq`]); then the advert goes the way of
    /// [`Self::receive`].
    #[cfg(feature = "ah")]
    pub fn receive_ah(&mut self, now: Instant, rx: &Received, datagram: &[u8], out: &mut (impl FnMut(Output) + ?Sized)) {
        use crate::wire::ah::{self, AhPacket, AhRepr, AH_HEADER_LEN};
        let Ok((ihl, total)) = ah::ipv4_layout(datagram) else {
            self.stray.truncated += 1;
            return;
        };
        let Ok(hdr) = AhRepr::parse(&AhPacket::new_unchecked(&datagram[ihl..total])) else {
            self.stray.truncated += 1;
            return;
        };
        if hdr.next_header != crate::wire::VRRP_PROTO {
            return;
        }
        let bytes = &datagram[ihl + AH_HEADER_LEN..total];
        let Some((idx, pkt)) = self.route(rx, bytes) else { return };
        let inst = &mut self.records[idx].inst;
        let config = inst.config();
        let VrrpAuth::Ah(secret) = config.auth else {
            return self.drop_advert(idx, DropReason::AuthType, out);
        };
        let zero_ttl = config.is_unicast();
        let (mode, src, dst) = (config.checksum_mode, rx.src, rx.dst);
        if ah::verify_ipv4(datagram, &secret, zero_ttl).is_err() || IpAddr::V4(hdr.spi.into()) != src {
            return self.drop_advert(idx, DropReason::AhIcv, out);
        }
        if !inst.ah_take_seq(hdr.seq_number) {
            out(Output::Act { idx, action: Action::Discard(DropReason::AhReplay) });
            return;
        }
        match VrrpRepr::parse(&pkt, src, dst, mode) {
            Ok(repr) => self.handle(now, idx, Input::Advert(Advert { src, ttl: rx.ttl, repr: &repr }), out),
            Err(e) => self.drop_advert(idx, DropReason::from_wire(e), out),
        }
    }

    /// Applies a reload to record `idx`: see [`Instance::reconfigure`].
    pub fn reconfigure(
        &mut self,
        now: Instant,
        idx: usize,
        config: InstanceConfig,
        tracks: TrackSet,
        out: &mut (impl FnMut(Output) + ?Sized),
    ) {
        let Some(r) = self.records.get_mut(idx) else { return };
        let actions = r.inst.reconfigure(now, config, tracks);
        self.after(now, idx, &actions, out);
    }

    /// What came of an [`Action::RemoveVips`]: when the host could not remove
    /// them all (`ok` false), the engine asks again after a back-off
    /// (100 ms doubling to 6.4 s) for as long as the instance is not master.
    pub fn vips_released(&mut self, now: Instant, idx: usize, ok: bool) {
        let Some(r) = self.records.get_mut(idx) else { return };
        if ok {
            if matches!(r.vips, VipHold::Releasing { .. }) {
                r.vips = VipHold::Released;
            }
        } else if r.vips != VipHold::Held {
            r.release_failures += 1;
            let attempts = match r.vips {
                VipHold::Releasing { attempts, .. } => attempts.saturating_add(1),
                _ => 0,
            };
            r.vips = VipHold::Releasing { retry_at: now + release_backoff(attempts), attempts };
        }
        self.rearm(idx);
    }

    /// The instant the host must call [`Self::poll`] by: the earliest of the
    /// latest delivery times of every record's next deadline (see
    /// [`Instance::poll_window`]). Deadlines that decide mastership are never
    /// delayed; a master's advert timers round up to a shared grid.
    /// `None` when nothing is armed.
    pub fn poll_at(&self) -> Option<Instant> {
        if let Some(next) = self.next.get() {
            return next;
        }
        let next = self.records.iter().filter_map(|r| r.due.map(|(_, latest)| latest)).min();
        self.next.set(Some(next));
        next
    }

    /// Fires every deadline due at `now`. Spurious calls are no-ops.
    pub fn poll(&mut self, now: Instant, out: &mut (impl FnMut(Output) + ?Sized)) {
        for idx in 0..self.records.len() {
            if self.records[idx].due.is_none_or(|(at, _)| at > now) {
                continue;
            }
            if let VipHold::Releasing { retry_at, attempts } = self.records[idx].vips {
                if retry_at <= now {
                    // Still Releasing until the host says it worked, but no timer of its own
                    // until then: the host answers right after carrying out the action.
                    self.records[idx].vips = VipHold::Releasing { retry_at: Instant::from_micros(u64::MAX), attempts };
                    out(Output::Act { idx, action: Action::RemoveVips });
                }
            }
            if self.records[idx].inst.poll_at().is_some_and(|t| t <= now) {
                self.handle(now, idx, Input::Timer, out);
            } else {
                self.rearm(idx);
            }
        }
    }

    // The bookkeeping after an instance acted: outputs, address state, the
    // sync group, timers and the group's agreement.
    fn after(&mut self, now: Instant, idx: usize, actions: &[Action], out: &mut (impl FnMut(Output) + ?Sized)) {
        let mut moved = false;
        for a in actions {
            self.note(idx, a);
            out(Output::Act { idx, action: *a });
            moved |= matches!(a, Action::Transition { .. });
            let (Some(target), Some(gi)) = (SyncGroup::follow(a), self.records[idx].group) else { continue };
            let members = self.groups[usize::from(gi)].members.clone();
            for &m in members.members() {
                let m = usize::from(m);
                if m == idx {
                    continue;
                }
                let acts = self.records[m].inst.handle(now, Input::Sync(target));
                for b in &acts {
                    self.note(m, b);
                    out(Output::Act { idx: m, action: *b });
                }
                self.rearm(m);
            }
        }
        self.rearm(idx);
        if let Some(gi) = self.records[idx].group {
            moved |= self.settle_group(now, usize::from(gi), out);
        }
        if moved {
            if let Some(gi) = self.records[idx].group {
                let gi = usize::from(gi);
                let now_agreed = self.common_state(self.groups[gi].members.members());
                if now_agreed.is_some() && now_agreed != self.groups[gi].agreed {
                    self.groups[gi].agreed = now_agreed;
                    if let Some(state) = now_agreed {
                        out(Output::Group { group: gi, state });
                    }
                }
            }
        }
    }

    // keepalived's rule: a sync group is in FAULT while any member is faulted for a reason of
    // its own. A member whose own fault appears or clears while the group already holds it in
    // FAULT changes no state, so the invariant is restored here after every input of a member:
    // each member is held in FAULT exactly while another member is faulted on its own, and
    // released (to BACKUP, or MASTER for an owner) when none is. True when a member moved.
    fn settle_group(&mut self, now: Instant, gi: usize, out: &mut (impl FnMut(Output) + ?Sized)) -> bool {
        let members = self.groups[gi].members.clone();
        let own: heapless::Vec<bool, MAX_GROUP> = members
            .members()
            .iter()
            .map(|&m| self.records.get(usize::from(m)).is_some_and(|r| r.inst.own_faulted()))
            .collect();
        let mut moved = false;
        for (k, &m) in members.members().iter().enumerate() {
            let m = usize::from(m);
            let others = own.iter().enumerate().any(|(j, &f)| j != k && f);
            let inst = &self.records[m].inst;
            let input = match (others, inst.sync_faulted()) {
                (true, false) => State::Fault,
                (false, true) => State::Backup,
                _ => continue,
            };
            let acts = self.records[m].inst.handle(now, Input::Sync(input));
            for b in &acts {
                self.note(m, b);
                moved |= matches!(b, Action::Transition { .. });
                out(Output::Act { idx: m, action: *b });
            }
            self.rearm(m);
        }
        moved
    }

    fn note(&mut self, idx: usize, a: &Action) {
        let r = &mut self.records[idx];
        match a {
            Action::AddVips { .. } => r.vips = VipHold::Held,
            Action::RemoveVips
                if !matches!(r.vips, VipHold::Releasing { .. }) => {
                    r.vips = VipHold::Released;
                }
            _ => {}
        }
    }

    fn rearm(&mut self, idx: usize) {
        let r = &self.records[idx];
        let mut due = r.inst.poll_window();
        if let VipHold::Releasing { retry_at, .. } = r.vips {
            if retry_at != Instant::from_micros(u64::MAX) {
                due = Some(match due {
                    Some((at, latest)) => (at.min(retry_at), latest.min(retry_at)),
                    None => (retry_at, retry_at),
                });
            }
        }
        let old = core::mem::replace(&mut self.records[idx].due, due);
        if old.map(|o| o.1) == self.next.get().flatten() && due != old {
            // The record that held the earliest deadline moved: find it again when asked.
            self.next.set(None);
        }
        self.lower_next(due);
    }

    fn lower_next(&self, due: Option<(Instant, Instant)>) {
        if let (Some((_, latest)), Some(next)) = (due, self.next.get()) {
            if next.is_none_or(|n| latest < n) {
                self.next.set(Some(Some(latest)));
            }
        }
    }

    fn common_state(&self, members: &[u16]) -> Option<State> {
        let mut states = members.iter().filter_map(|&m| self.records.get(usize::from(m))).map(|r| r.inst.state());
        let first = states.next()?;
        (first != State::Initialize && states.all(|s| s == first)).then_some(first)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vrrp::{GarpConfig, Reason, TrackStatus, Tracked};
    use crate::wire::{ChecksumMode, VrrpAddresses, VrrpAuth, VrrpVersion};
    use core::net::Ipv4Addr;
    use std::vec::Vec;

    type Eng = Engine<&'static str, Fixed<8, 2>>;

    fn cfg(vrid: u8, priority: u8) -> InstanceConfig {
        let mut c = InstanceConfig::new(vrid, IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)));
        c.priority = priority;
        c.vips.push(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 100 + vrid))).unwrap();
        c
    }

    fn key(vrid: u8) -> VrKey {
        VrKey { ifindex: 2, ipv6: false, vrid }
    }

    fn rec(name: &'static str, vrid: u8, priority: u8) -> Record<&'static str> {
        Record::new(name, key(vrid), Instance::new(cfg(vrid, priority)))
    }

    fn collect(f: impl FnOnce(&mut dyn FnMut(Output))) -> Vec<Output> {
        let mut v = Vec::new();
        f(&mut |o| v.push(o));
        v
    }

    fn acts(out: &[Output], idx: usize) -> Vec<Action> {
        out.iter()
            .filter_map(|o| match *o {
                Output::Act { idx: i, action } if i == idx => Some(action),
                _ => None,
            })
            .collect()
    }

    fn became(out: &[Output], idx: usize, to: State) -> bool {
        acts(out, idx).iter().any(|a| matches!(a, Action::Transition { to: t, .. } if *t == to))
    }

    /// A (priority 200, VRID 1) and B (priority 100, VRID 2), both started at 0.
    fn started() -> Eng {
        let mut e = Eng::new();
        assert_eq!(e.add(rec("A", 1, 200)).ok(), Some(0));
        assert_eq!(e.add(rec("B", 2, 100)).ok(), Some(1));
        let out = collect(|o| e.broadcast(Instant::ZERO, Input::Startup, o));
        // A non-owner starts by releasing whatever a previous run left behind.
        assert_eq!(acts(&out, 0)[0], Action::RemoveVips);
        e
    }

    #[test]
    fn test_keys_are_unique_and_rekeyed() {
        let mut e = started();
        assert_eq!(e.add(rec("C", 1, 50)).err().map(|(_, err)| err), Some(AddError::KeyTaken));
        let v6 = Record::new("C", VrKey { ipv6: true, ..key(1) }, Instance::new(cfg(1, 50)));
        assert_eq!(e.add(v6).ok(), Some(2), "another family is another key");
        assert_eq!(e.lookup(&key(2)), Some(1));
        let moved = VrKey { ifindex: 7, ..key(2) };
        assert!(e.rekey(1, moved));
        assert_eq!((e.lookup(&moved), e.lookup(&key(2))), (Some(1), None));
        assert!(!e.rekey(0, moved), "taken by B");
        assert_eq!(e.lookup(&key(1)), Some(0));
        assert_eq!(e.records()[1].key(), moved);
        // A fixed table refuses the record past its capacity and gives it back.
        let mut small: Engine<&str, Fixed<1, 1>> = Engine::new();
        assert!(small.add(rec("A", 1, 1)).is_ok());
        let (back, err) = small.add(rec("B", 2, 1)).err().unwrap();
        assert_eq!((back.meta, err), ("B", AddError::Full));
    }

    #[test]
    fn test_timers_fire_in_order_and_only_when_due() {
        let mut e = started();
        let a_down = e.records()[0].instance().poll_at().unwrap();
        let b_down = e.records()[1].instance().poll_at().unwrap();
        assert!(a_down < b_down, "the higher priority has the shorter skew");
        assert_eq!(e.poll_at(), Some(a_down), "Master_Down is exact");
        assert!(collect(|o| e.poll(Instant::from_micros(a_down.total_micros() - 1), o)).is_empty());
        let out = collect(|o| e.poll(a_down, o));
        assert!(became(&out, 0, State::Master));
        assert!(acts(&out, 1).is_empty(), "B's timer is not due");
        assert_eq!(e.records()[0].vips(), VipHold::Held);
        // An input that re-arms B makes its old deadline dead.
        collect(|o| e.handle(a_down, 1, Input::Link { up: false }, o));
        assert!(acts(&collect(|o| e.poll(b_down, o)), 1).is_empty());
        assert_eq!(e.records()[1].instance().state(), State::Fault);
    }

    #[test]
    fn test_grid_never_delays_a_deciding_deadline() {
        // A master advertising every second shares the loop with a backup whose Master_Down falls
        // between the master's deadline and the grid step after it.
        let mut e = Eng::new();
        let mut owner = cfg(1, 255);
        owner.adver_int = Duration::from_secs(1);
        e.add(Record::new("M", key(1), Instance::new(owner))).ok().unwrap();
        let t0 = Instant::from_micros(5_001_234);
        collect(|o| e.handle(t0, 0, Input::Startup, o));
        let adv = e.records()[0].instance().poll_window().unwrap();
        assert_eq!(adv.0, t0 + Duration::from_secs(1));
        assert!(adv.1 > adv.0 && adv.1.total_micros().is_multiple_of(10_000), "a master's advert rounds up to its grid (1/20 of 1 s, at most 10 ms): {adv:?}");
        assert_eq!(e.poll_at(), Some(adv.1));
        // The backup's deadline lies inside the advert's slack: the engine wakes for it exactly.
        let mut b = cfg(2, 100);
        b.adver_int = Duration::from_secs(1);
        e.add(Record::new("B", key(2), Instance::new(b))).ok().unwrap();
        let start = Instant::from_micros(adv.0.total_micros() - 3_609_375 + 10);
        collect(|o| e.handle(start, 1, Input::Startup, o));
        let down = e.records()[1].instance().poll_at().unwrap();
        assert!(adv.0 < down && down < adv.1, "{adv:?} {down:?}");
        assert_eq!(e.poll_at(), Some(down));
        // At `down` the backup fires and so does the master's advert, already due.
        let out = collect(|o| e.poll(down, o));
        assert!(became(&out, 1, State::Master));
        assert!(acts(&out, 0).contains(&Action::SendAdvert { priority: 255 }));
    }

    #[test]
    fn test_sync_group_moves_together_and_agrees_once() {
        let mut e = started();
        assert_eq!(e.add_group(&[0, 1]), Ok(0));
        assert_eq!(e.add_group(&[1]), Err(AddError::BadGroup), "a member of another group");
        assert_eq!(e.groups()[0].agreed(), Some(State::Backup));
        let a_down = e.records()[0].instance().poll_at().unwrap();
        let out = collect(|o| e.poll(a_down, o));
        assert!(became(&out, 0, State::Master) && became(&out, 1, State::Master), "{out:?}");
        assert_eq!(out.iter().filter(|o| matches!(o, Output::Group { .. })).count(), 1);
        assert_eq!(*out.last().unwrap(), Output::Group { group: 0, state: State::Master });
        assert_eq!(e.records()[1].vips(), VipHold::Held);
        // B's link fails: the whole group goes to FAULT, both release.
        let out = collect(|o| e.handle(a_down, 1, Input::Link { up: false }, o));
        assert!(acts(&out, 0).contains(&Action::RemoveVips) && acts(&out, 1).contains(&Action::RemoveVips));
        assert_eq!(*out.last().unwrap(), Output::Group { group: 0, state: State::Fault });
        assert!(!e.records()[0].holds_vips() && !e.records()[1].holds_vips());
    }

    #[test]
    fn test_poll_at_is_always_the_earliest_latest_delivery() {
        // The engine caches its next wake-up; random inputs must never leave it stale.
        let mut rng = crate::test_rng::XorShift(0x5eed);
        let mut e: Engine<&str, Fixed<8, 2>> = Engine::new();
        for v in 1..=6u8 {
            let mut c = cfg(v, 50 + 30 * (v % 4));
            c.adver_int = Duration::from_secs(1 + u64::from(v % 3));
            e.add(Record::new("x", key(v), Instance::new(c))).ok().unwrap();
        }
        let mut now = Instant::ZERO;
        collect(|o| e.broadcast(now, Input::Startup, o));
        for _ in 0..5_000 {
            now += Duration::from_micros(rng.below(400_000) as u64);
            let idx = rng.below(6);
            match rng.below(5) {
                0 => drop(collect(|o| e.poll(now, o))),
                1 => drop(collect(|o| e.handle(now, idx, Input::Link { up: rng.below(4) != 0 }, o))),
                2 => drop(collect(|o| e.handle(now, idx, Input::Admin(crate::vrrp::AdminMode::Auto), o))),
                3 => e.vips_released(now, idx, rng.below(2) == 0),
                _ => drop(collect(|o| e.handle(now, idx, Input::Timer, o))),
            }
            let brute = e.records().iter().filter_map(|r| r.due.map(|d| d.1)).min();
            assert_eq!(e.poll_at(), brute);
        }
    }

    #[test]
    fn test_sync_group_stays_in_fault_while_any_member_is_faulted() {
        let mut e = started();
        e.add_group(&[0, 1]).unwrap();
        let down = || {
            let mut t = TrackSet::new();
            t.push(Tracked::new(7, 0, false, TrackStatus::Down)).unwrap();
            t
        };
        let t = Instant::from_millis(10);
        // A faults: the group follows.
        collect(|o| e.reconfigure(t, 0, cfg(1, 200), down(), o));
        // B's own object goes down while the group holds it in FAULT.
        collect(|o| e.reconfigure(t, 1, cfg(2, 100), down(), o));
        // A recovers; B is still down: the whole group stays in FAULT.
        let out = collect(|o| e.reconfigure(t, 0, cfg(1, 200), TrackSet::new(), o));
        let states: Vec<State> = e.records().iter().map(|r| r.instance().state()).collect();
        assert_eq!(states, [State::Fault, State::Fault], "{out:?}");
        // B recovers too: both leave FAULT, and the group agrees on BACKUP.
        let out = collect(|o| e.reconfigure(t, 1, cfg(2, 100), TrackSet::new(), o));
        let states: Vec<State> = e.records().iter().map(|r| r.instance().state()).collect();
        assert_eq!(states, [State::Backup, State::Backup], "{out:?}");
        assert!(out.contains(&Output::Group { group: 0, state: State::Backup }));
    }

    #[test]
    fn test_records_carried_to_a_new_engine_keep_state_and_deadlines() {
        let mut e = started();
        let a_down = e.records()[0].instance().poll_at().unwrap();
        collect(|o| e.poll(a_down, o));
        let before: Vec<_> = e.records().iter().map(|r| r.instance().poll_at()).collect();
        let mut n = Eng::new();
        for r in e.take_records() {
            let (meta, inst, vips) = r.into_parts();
            let k = key(inst.config().vrid);
            n.add(Record::new(meta, k, inst).with_vips(vips)).ok().unwrap();
        }
        assert!(e.is_empty() && e.poll_at().is_none());
        assert_eq!(n.records()[0].instance().state(), State::Master);
        assert_eq!(n.records()[0].vips(), VipHold::Held);
        let after: Vec<_> = n.records().iter().map(|r| r.instance().poll_at()).collect();
        assert_eq!(before, after);
    }

    #[test]
    fn test_failed_release_is_asked_again_until_it_works() {
        let mut e = started();
        let a_down = e.records()[0].instance().poll_at().unwrap();
        collect(|o| e.poll(a_down, o));
        let t = a_down + Duration::from_secs(1);
        let out = collect(|o| e.handle(t, 0, Input::Admin(crate::vrrp::AdminMode::Standby), o));
        assert!(acts(&out, 0).contains(&Action::RemoveVips));
        e.vips_released(t, 0, false);
        assert_eq!(e.records()[0].vips(), VipHold::Releasing { retry_at: t + Duration::from_millis(100), attempts: 0 });
        let retry = t + Duration::from_millis(100);
        assert_eq!(e.records()[0].due, Some((retry, retry)));
        let out = collect(|o| e.poll(t + Duration::from_millis(100), o));
        assert_eq!(acts(&out, 0), [Action::RemoveVips]);
        let t2 = t + Duration::from_millis(100);
        e.vips_released(t2, 0, false);
        assert_eq!(e.records()[0].vips(), VipHold::Releasing { retry_at: t2 + Duration::from_millis(200), attempts: 1 });
        collect(|o| e.poll(t2 + Duration::from_millis(200), o));
        e.vips_released(t2 + Duration::from_millis(200), 0, true);
        assert_eq!(e.records()[0].vips(), VipHold::Released);
        assert_eq!(e.records()[0].release_failures(), 2);
    }

    #[test]
    fn test_receive_counts_what_no_instance_could_see() {
        let mut e = started();
        let src = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 9));
        let dst = IpAddr::V4(crate::vrrp::MCAST_V4);
        let rx = Received { ifindex: 2, src, dst, ttl: 255 };
        collect(|o| e.receive(Instant::ZERO, &rx, &[0x21, 1, 2], o));
        assert_eq!(e.stray().truncated, 1);
        // A well-formed advert for VRID 2 from a higher priority: B follows it.
        let vips = [IpAddr::V4(Ipv4Addr::new(192, 0, 2, 102))];
        let repr = VrrpRepr {
            version: VrrpVersion::V2,
            vrid: 2,
            priority: 150,
            max_adver_int: 100,
            auth: VrrpAuth::None,
            addresses: VrrpAddresses::List(&vips),
        };
        let mut buf = [0u8; 64];
        let n = repr.buffer_len();
        repr.emit(&mut VrrpPacket::new_unchecked(&mut buf[..n]), src, dst, ChecksumMode::Rfc).unwrap();
        collect(|o| e.receive(Instant::ZERO, &rx, &buf[..n], o));
        assert_eq!(e.records()[1].instance().counters().adverts_rx, 1);
        assert_eq!(e.records()[1].instance().master_addr(), Some(src));
        // The same for VRID 9: nobody runs it.
        let mut other = buf;
        other[1] = 9;
        collect(|o| e.receive(Instant::ZERO, &rx, &other[..n], o));
        assert_eq!(e.stray().unknown_vrid, 1);
        // A flipped bit: counted on B by reason, and handed out as a discard.
        let mut bad = buf;
        bad[n - 1] ^= 1;
        let out = collect(|o| e.receive(Instant::ZERO, &rx, &bad[..n], o));
        assert_eq!(acts(&out, 1), [Action::Discard(DropReason::Checksum)]);
        assert_eq!(e.records()[1].instance().counters().drops[DropReason::Checksum as usize], 1);
        // Another interface is another key.
        collect(|o| e.receive(Instant::ZERO, &Received { ifindex: 3, ..rx }, &buf[..n], o));
        assert_eq!(e.stray().unknown_vrid, 2);
    }

    #[test]
    fn test_poll_rx_lower_names_the_master() {
        let mut e = started();
        let a_down = e.records()[0].instance().poll_at().unwrap();
        collect(|o| e.poll(a_down, o));
        assert_eq!(e.records()[0].instance().state(), State::Master);
        let src = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 9));
        let rx = Received { ifindex: 2, src, dst: IpAddr::V4(crate::vrrp::MCAST_V4), ttl: 255 };
        let advert = |vrid: u8, priority: u8, buf: &mut [u8; 64]| {
            let vips = [IpAddr::V4(Ipv4Addr::new(192, 0, 2, 100 + vrid))];
            let repr = VrrpRepr { version: VrrpVersion::V2, vrid, priority, max_adver_int: 100, auth: VrrpAuth::None, addresses: VrrpAddresses::List(&vips) };
            let n = repr.buffer_len();
            repr.emit(&mut VrrpPacket::new_unchecked(&mut buf[..n]), src, rx.dst, ChecksumMode::Rfc).unwrap();
            n
        };
        let mut buf = [0u8; 64];
        assert_eq!(e.poll_rx_lower(), None);
        // A (master, 200) hears 150: it answers, and the host is told once.
        let n = advert(1, 150, &mut buf);
        let out = collect(|o| e.receive(a_down, &rx, &buf[..n], o));
        assert_eq!(acts(&out, 0), [Action::SendAdvert { priority: 200 }]);
        assert_eq!(e.poll_rx_lower(), Some(RxLower { idx: 0, priority: 150 }));
        assert_eq!(e.poll_rx_lower(), None);
        // B (backup, 100) hearing 50 is no master receiving a lower priority.
        let n = advert(2, 50, &mut buf);
        collect(|o| e.receive(a_down, &rx, &buf[..n], o));
        assert_eq!(e.poll_rx_lower(), None);
    }

    #[test]
    fn test_reload_into_fault_releases_the_addresses() {
        let mut e = started();
        let a_down = e.records()[0].instance().poll_at().unwrap();
        collect(|o| e.poll(a_down, o));
        assert!(e.records()[0].holds_vips());
        // The reload adds a tracked interface that is down (weight 0).
        let mut tracks = TrackSet::new();
        tracks.push(Tracked::new(1, 0, false, TrackStatus::Down)).unwrap();
        let t = a_down + Duration::from_millis(10);
        let out = collect(|o| e.reconfigure(t, 0, cfg(1, 200), tracks, o));
        assert_eq!(
            acts(&out, 0),
            [
                Action::SendAdvert { priority: 0 },
                Action::RemoveVips,
                Action::Transition { from: State::Master, to: State::Fault, reason: Reason::Fault },
            ]
        );
        assert!(!e.records()[0].holds_vips());
    }

    #[test]
    fn test_paced_garp_rounds_end_with_mastership() {
        let mut c = cfg(1, 255);
        c.garp = GarpConfig { master_repeat: 5, interval: Duration::from_millis(200), ..GarpConfig::default() };
        let mut e = Eng::new();
        e.add(Record::new("M", key(1), Instance::new(c))).ok().unwrap();
        let out = collect(|o| e.handle(Instant::ZERO, 0, Input::Startup, o));
        assert!(acts(&out, 0).contains(&Action::SendGarp { repeat: 1 }), "the first round at once");
        let mut rounds = 1;
        let mut t = Instant::ZERO;
        while let Some(at) = e.records()[0].instance().poll_at().filter(|&at| at < Instant::from_millis(450)) {
            t = at;
            let out = collect(|o| e.poll(t, o));
            rounds += acts(&out, 0).iter().filter(|a| matches!(a, Action::SendGarp { .. })).count();
        }
        assert_eq!(rounds, 3, "rounds at 0, 200 and 400 ms");
        // A higher priority takes over: no round follows.
        let vips = [IpAddr::V4(Ipv4Addr::new(192, 0, 2, 101))];
        let repr = VrrpRepr {
            version: VrrpVersion::V2,
            vrid: 1,
            priority: 255,
            max_adver_int: 100,
            auth: VrrpAuth::None,
            addresses: VrrpAddresses::List(&vips),
        };
        let src = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 200));
        let out = collect(|o| e.handle(t, 0, Input::Advert(Advert { src, ttl: 255, repr: &repr }), o));
        assert!(became(&out, 0, State::Backup));
        let mut later = Vec::new();
        let end = t + Duration::from_secs(2);
        while let Some(at) = e.records()[0].instance().poll_at().filter(|&at| at < end) {
            later.extend(collect(|o| e.poll(at, o)));
            if e.records()[0].instance().state() != State::Backup {
                break;
            }
        }
        assert!(!later.iter().any(|o| matches!(o, Output::Act { action: Action::SendGarp { .. }, .. })), "{later:?}");
    }

    #[test]
    fn test_vips_that_cannot_be_held_fault_with_back_off() {
        let mut e = Eng::new();
        e.add(rec("A", 1, 200)).ok().unwrap();
        collect(|o| e.handle(Instant::ZERO, 0, Input::Startup, o));
        let mut t = e.poll_at().unwrap();
        for (n, backoff) in [(1u64, 1u64), (2, 2), (3, 4)] {
            let out = collect(|o| e.poll(t, o));
            assert!(became(&out, 0, State::Master));
            let out = collect(|o| e.handle(t, 0, Input::Vips { held: false }, o));
            assert_eq!(
                acts(&out, 0),
                [
                    Action::SendAdvert { priority: 0 },
                    Action::RemoveVips,
                    Action::Transition { from: State::Master, to: State::Fault, reason: Reason::Fault },
                ]
            );
            assert_eq!(e.records()[0].instance().counters().vip_failures, n);
            // It stays in FAULT, whatever else happens, until the back-off ends.
            collect(|o| e.handle(t, 0, Input::Link { up: true }, o));
            assert_eq!(e.records()[0].instance().state(), State::Fault);
            assert_eq!(e.poll_at(), Some(t + Duration::from_secs(backoff)));
            t += Duration::from_secs(backoff);
            let out = collect(|o| e.poll(t, o));
            assert!(became(&out, 0, State::Backup));
            t = e.poll_at().unwrap();
        }
        // Once held, the back-off starts from the beginning again.
        collect(|o| e.poll(t, o));
        collect(|o| e.handle(t, 0, Input::Vips { held: true }, o));
        collect(|o| e.handle(t, 0, Input::Vips { held: false }, o));
        assert_eq!(e.poll_at(), Some(t + Duration::from_secs(1)));
    }

    #[cfg(feature = "ah")]
    mod ah {
        use super::*;
        use crate::wire::ah::{seal_ipv4, AH_HEADER_LEN};
        use crate::wire::test_util::hex;

        /// keepalived 2.2.7's advert: 10.99.0.1 -> 224.0.0.18, AH key 'secret12', seq 1, VRID 7,
        /// priority 150, VIP 10.99.0.50.
        fn captured() -> Vec<u8> {
            hex(include_str!("../../../tests/fixtures/pcap/vrrpv2-ah.hex"))[14..].to_vec()
        }

        fn ah_engine(auth: VrrpAuth) -> Eng {
            let mut c = InstanceConfig::new(7, IpAddr::V4(Ipv4Addr::new(10, 99, 0, 2)));
            c.priority = 100;
            c.auth = auth;
            c.vips.push(IpAddr::V4(Ipv4Addr::new(10, 99, 0, 50))).unwrap();
            let mut e = Eng::new();
            assert_eq!(e.add(Record::new("K", key(7), Instance::new(c))).ok(), Some(0));
            collect(|o| e.broadcast(Instant::ZERO, Input::Startup, o));
            e
        }

        fn rx() -> Received {
            Received { ifindex: 2, src: IpAddr::V4(Ipv4Addr::new(10, 99, 0, 1)), dst: IpAddr::V4(crate::vrrp::MCAST_V4), ttl: 255 }
        }

        fn drops(e: &Eng, r: DropReason) -> u64 {
            e.records()[0].instance().counters().drops[r as usize]
        }

        #[test]
        fn test_keepalived_advert_is_taken_once() {
            let mut e = ah_engine(VrrpAuth::ah(b"secret12"));
            let d = captured();
            collect(|o| e.receive_ah(Instant::ZERO, &rx(), &d, o));
            let i = e.records()[0].instance();
            assert_eq!(i.counters().adverts_rx, 1, "{:?}", i.counters());
            assert_eq!(i.master_addr(), Some(rx().src));
            // The same datagram again is a replay: counted, handed out as a discard.
            let out = collect(|o| e.receive_ah(Instant::ZERO, &rx(), &d, o));
            assert_eq!(acts(&out, 0), [Action::Discard(DropReason::AhReplay)]);
            assert_eq!(drops(&e, DropReason::AhReplay), 1);
            assert_eq!(e.records()[0].instance().counters().adverts_rx, 1);
            // With a higher sequence number (resealed), it is taken again.
            let mut next = d.clone();
            next[31] = 2;
            seal_ipv4(&mut next, b"secret12", false).unwrap();
            collect(|o| e.receive_ah(Instant::ZERO, &rx(), &next, o));
            assert_eq!(e.records()[0].instance().counters().adverts_rx, 2);
            // Link padding after the total length is no part of the datagram.
            let mut padded = next.clone();
            padded[31] = 3;
            seal_ipv4(&mut padded, b"secret12", false).unwrap();
            padded.extend_from_slice(&[0; 6]);
            collect(|o| e.receive_ah(Instant::ZERO, &rx(), &padded, o));
            assert_eq!(e.records()[0].instance().counters().adverts_rx, 3);
        }

        #[test]
        fn test_refused_adverts_are_counted_by_reason() {
            let d = captured();
            // Another key.
            let mut e = ah_engine(VrrpAuth::ah(b"secret13"));
            let out = collect(|o| e.receive_ah(Instant::ZERO, &rx(), &d, o));
            assert_eq!(acts(&out, 0), [Action::Discard(DropReason::AhIcv)]);
            assert_eq!(drops(&e, DropReason::AhIcv), 1);
            // A changed byte (the priority).
            let mut e = ah_engine(VrrpAuth::ah(b"secret12"));
            let mut bad = d.clone();
            bad[20 + AH_HEADER_LEN + 2] = 200;
            collect(|o| e.receive_ah(Instant::ZERO, &rx(), &bad, o));
            assert_eq!(drops(&e, DropReason::AhIcv), 1);
            // A valid ICV over an SPI that is not the source address.
            let mut spi = d.clone();
            spi[27] = 9;
            seal_ipv4(&mut spi, b"secret12", false).unwrap();
            collect(|o| e.receive_ah(Instant::ZERO, &rx(), &spi, o));
            assert_eq!(drops(&e, DropReason::AhIcv), 2);
            // An instance without AH refuses it by type.
            let mut none = ah_engine(VrrpAuth::None);
            collect(|o| none.receive_ah(Instant::ZERO, &rx(), &d, o));
            assert_eq!(drops(&none, DropReason::AuthType), 1);
            // The VRRP message alone, type AH but without the header: refused by type too.
            let plain = &d[20 + AH_HEADER_LEN..];
            collect(|o| e.receive(Instant::ZERO, &rx(), plain, o));
            assert_eq!(drops(&e, DropReason::AuthType), 1);
            assert_eq!(e.records()[0].instance().counters().adverts_rx, 0);
            // Garbage and runts are strays, never a panic.
            let before = e.stray().truncated;
            for n in 0..d.len() {
                collect(|o| e.receive_ah(Instant::ZERO, &rx(), &d[..n], o));
            }
            assert!(e.stray().truncated > before);
            // Another next header is not VRRP: ignored.
            let mut other = d.clone();
            other[20] = 6;
            let out = collect(|o| e.receive_ah(Instant::ZERO, &rx(), &other, o));
            assert!(out.is_empty());
        }

        #[test]
        fn test_master_counts_on_from_what_it_took() {
            let mut e = ah_engine(VrrpAuth::ah(b"secret12"));
            let d = captured();
            // As backup it takes the master's count (1 here), then takes over: its first
            // advert goes on from there.
            let mut at5 = d.clone();
            at5[31] = 5;
            seal_ipv4(&mut at5, b"secret12", false).unwrap();
            collect(|o| e.receive_ah(Instant::ZERO, &rx(), &at5, o));
            assert_eq!(e.records()[0].instance().ah_seq().0, 5);
            let later = Instant::ZERO + Duration::from_secs(10);
            let out = collect(|o| e.poll(later, o));
            assert!(became(&out, 0, State::Master), "{out:?}");
            let (seq, ident) = e.records()[0].instance().ah_seq();
            assert_eq!((seq, ident), (6, 1));
            // A lower-priority advert (priority 50, seq 9): as keepalived, the master answers with
            // the sender's count + 2, which the sender takes.
            let mut low = d.clone();
            low[31] = 9;
            low[20 + AH_HEADER_LEN + 2] = 50;
            // Fix the VRRP checksum for the new priority, then the ICV.
            let v = 20 + AH_HEADER_LEN;
            crate::wire::VrrpPacket::new_unchecked(&mut low[v..]).fill_checksum(&rx().src, &rx().dst, ChecksumMode::Rfc).unwrap();
            seal_ipv4(&mut low, b"secret12", false).unwrap();
            let out = collect(|o| e.receive_ah(later, &rx(), &low, o));
            assert!(acts(&out, 0).iter().any(|a| matches!(a, Action::SendAdvert { .. })), "{out:?}");
            assert_eq!(e.records()[0].instance().ah_seq().0, 11);
        }
    }
}
