//! The instance table: every hav-core instance of the daemon, their sync
//! groups and a timer heap. Pure logic, no I/O: the daemon feeds it inputs
//! and carries out the actions it returns.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use hav_core::vrrp::{Action, Input, Instance, SyncGroup};
use hav_core::Instant;

/// Where an instance listens: its interface and family, and its VRID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VrKey {
    /// Interface index.
    pub ifindex: u32,
    /// IPv6 instead of IPv4.
    pub ipv6: bool,
    /// Virtual router id.
    pub vrid: u8,
}

/// Instance index by [`VrKey`]: a table of the 255 VRIDs for each interface and family, found by
/// a scan (a host runs VRRP on few interfaces), so looking up an advert hashes nothing.
#[derive(Debug, Default)]
struct KeyIndex(Vec<((u32, bool), Box<[Option<u32>; 256]>)>);

impl KeyIndex {
    /// Where the table of `k`'s interface and family is.
    fn find(&self, k: &VrKey) -> Option<usize> {
        self.0.iter().position(|(at, _)| *at == (k.ifindex, k.ipv6))
    }

    fn get(&self, k: &VrKey) -> Option<usize> {
        self.0[self.find(k)?].1[usize::from(k.vrid)].map(|i| i as usize)
    }

    /// False when the key is taken (or the index too large for the table).
    fn insert(&mut self, k: VrKey, idx: usize) -> bool {
        let Ok(idx) = u32::try_from(idx) else { return false };
        let t = match self.find(&k) {
            Some(p) => p,
            None => {
                self.0.push(((k.ifindex, k.ipv6), Box::new([None; 256])));
                self.0.len() - 1
            }
        };
        let slot = &mut self.0[t].1[usize::from(k.vrid)];
        if slot.is_some() {
            return false;
        }
        *slot = Some(idx);
        true
    }

    fn remove(&mut self, k: &VrKey) {
        if let Some(t) = self.find(k) {
            self.0[t].1[usize::from(k.vrid)] = None;
        }
    }
}

/// What the engine keeps beside each instance.
#[derive(Debug)]
pub struct Slot {
    /// The config's instance name.
    pub name: String,
    /// Its demultiplexing key.
    pub key: VrKey,
    /// The sync group it belongs to, if any.
    pub group: Option<usize>,
    // The instance's deadline.
    armed: Option<Instant>,
    // Its entry in the heap, at or before `armed`: a deadline that moves later (a backup's
    // Master_Down at every advert) is not pushed again until this entry comes up.
    queued: Option<Instant>,
}

/// Every instance of the daemon.
#[derive(Debug, Default)]
pub struct Engine {
    // Parallel to `slots`; a plain slice so sync groups can move members.
    insts: Vec<Instance>,
    slots: Vec<Slot>,
    groups: Vec<SyncGroup>,
    by_key: KeyIndex,
    // (deadline, slot). An entry is live when it equals the slot's `queued`.
    heap: BinaryHeap<Reverse<(Instant, usize)>>,
}

/// Actions of one or more instances, tagged with the instance index.
pub type Tagged = Vec<(usize, Action)>;

impl Engine {
    /// An empty engine.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an instance; returns its index, or `None` when another instance
    /// already uses the same interface, family and VRID.
    /// The instance's timer is armed from its current `poll_at`, so a running
    /// instance moved in from another engine (a reload) keeps its deadlines.
    pub fn add(&mut self, name: String, key: VrKey, inst: Instance) -> Option<usize> {
        let idx = self.slots.len();
        if !self.by_key.insert(key, idx) {
            return None;
        }
        self.slots.push(Slot { name, key, group: None, armed: None, queued: None });
        self.insts.push(inst);
        self.rearm(idx);
        Some(idx)
    }

    /// Takes the instances out, in index order (for a reload).
    pub fn into_instances(self) -> Vec<Instance> {
        self.insts
    }

    /// Adds a sync group of instance indexes; returns its index.
    pub fn add_group(&mut self, members: &[usize]) -> Option<usize> {
        let m: Vec<u16> = members.iter().map(|&i| u16::try_from(i).ok()).collect::<Option<_>>()?;
        let g = SyncGroup::new(&m)?;
        let gi = self.groups.len();
        for &i in members {
            self.slots.get_mut(i)?.group = Some(gi);
        }
        self.groups.push(g);
        Some(gi)
    }

    /// The instances' metadata.
    pub fn slots(&self) -> &[Slot] {
        &self.slots
    }

    /// The instances, indexed like [`Self::slots`].
    pub fn instances(&self) -> &[Instance] {
        &self.insts
    }

    /// Number of instances.
    pub fn len(&self) -> usize {
        self.insts.len()
    }

    /// Whether there are no instances.
    pub fn is_empty(&self) -> bool {
        self.insts.is_empty()
    }

    /// Instance index by name.
    pub fn find(&self, name: &str) -> Option<usize> {
        self.slots.iter().position(|s| s.name == name)
    }

    /// Moves instance `idx` to `key` (its interface came back under a new index). False when
    /// another instance has that key already, or there is no such instance.
    pub fn rekey(&mut self, idx: usize, key: VrKey) -> bool {
        let Some(slot) = self.slots.get_mut(idx) else { return false };
        if slot.key == key {
            return true;
        }
        if !self.by_key.insert(key, idx) {
            return false;
        }
        self.by_key.remove(&slot.key);
        slot.key = key;
        true
    }

    /// Instance index by where an advert arrived.
    pub fn lookup(&self, key: &VrKey) -> Option<usize> {
        self.by_key.get(key)
    }

    /// Feeds `input` to instance `idx` (and its sync group), re-arming timers.
    pub fn handle(&mut self, idx: usize, now: Instant, input: Input<'_>) -> Tagged {
        let mut out = Tagged::new();
        let Some(inst) = self.insts.get_mut(idx) else { return out };
        let actions = inst.handle(now, input);
        self.collect(idx, now, actions.as_slice(), &mut out);
        out
    }

    /// Feeds `input` to every instance.
    pub fn broadcast(&mut self, now: Instant, input: Input<'_>) -> Tagged {
        let mut out = Tagged::new();
        for idx in 0..self.insts.len() {
            out.extend(self.handle(idx, now, input));
        }
        out
    }

    fn collect(&mut self, idx: usize, now: Instant, actions: &[Action], out: &mut Tagged) {
        let start = out.len();
        for a in actions {
            out.push((idx, *a));
            let (Some(target), Some(gi)) = (SyncGroup::follow(a), self.slots[idx].group) else {
                continue;
            };
            self.groups[gi].propagate(now, &mut self.insts, idx, target, |i, a| out.push((i, a)));
        }
        // The instance, and every group member that acted with it (re-arming is idempotent).
        self.rearm(idx);
        for k in start..out.len() {
            let i = out[k].0;
            if i != idx {
                self.rearm(i);
            }
        }
    }

    fn rearm(&mut self, idx: usize) {
        let at = self.insts[idx].poll_at();
        let slot = &mut self.slots[idx];
        slot.armed = at;
        if let Some(t) = at {
            if slot.queued.is_none_or(|q| t < q) {
                slot.queued = Some(t);
                self.heap.push(Reverse((t, idx)));
            }
        }
    }

    /// The earliest live deadline, and when it is a master's advert timer, the advert
    /// interval: such a timer may fire a little late and share a wake-up with others, unlike
    /// one that decides mastership.
    pub fn next_timer(&mut self) -> Option<(Instant, Option<hav_core::Duration>)> {
        let t = self.poll_at()?;
        let Reverse((_, i)) = *self.heap.peek()?;
        let inst = &self.insts[i];
        Some((t, (inst.state() == hav_core::vrrp::State::Master).then(|| inst.config().adver_int)))
    }

    /// The earliest deadline of any instance. Entries that were superseded are dropped, and
    /// one whose deadline moved later goes back in at its deadline.
    pub fn poll_at(&mut self) -> Option<Instant> {
        while let Some(&Reverse((t, i))) = self.heap.peek() {
            let slot = &mut self.slots[i];
            if slot.queued != Some(t) {
                self.heap.pop(); // an earlier entry of the slot replaced it
                continue;
            }
            match slot.armed {
                Some(d) if d == t => return Some(t),
                Some(d) => {
                    slot.queued = Some(d);
                    self.heap.pop();
                    self.heap.push(Reverse((d, i)));
                }
                None => {
                    slot.queued = None;
                    self.heap.pop();
                }
            }
        }
        None
    }

    /// Fires every timer due at `now`.
    pub fn poll(&mut self, now: Instant) -> Tagged {
        let mut out = Tagged::new();
        while let Some(t) = self.poll_at() {
            if t > now {
                break;
            }
            let Some(Reverse((_, i))) = self.heap.pop() else { break };
            self.slots[i].armed = None;
            self.slots[i].queued = None;
            out.extend(self.handle(i, now, Input::Timer));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hav_core::vrrp::{InstanceConfig, State};
    use std::net::{IpAddr, Ipv4Addr};

    fn inst(vrid: u8, priority: u8) -> Instance {
        let mut c = InstanceConfig::new(vrid, IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)));
        c.priority = priority;
        Instance::new(c)
    }

    fn key(vrid: u8) -> VrKey {
        VrKey { ifindex: 2, ipv6: false, vrid }
    }

    fn became_master(out: &Tagged, idx: usize) -> bool {
        out.iter().any(|(i, a)| *i == idx && matches!(a, Action::Transition { to: State::Master, .. }))
    }

    /// Two instances started at 0: A (priority 200) and B (priority 100), both backups.
    fn started() -> Engine {
        let mut e = Engine::new();
        assert_eq!(e.add("A".into(), key(1), inst(1, 200)), Some(0));
        assert_eq!(e.add("B".into(), key(2), inst(2, 100)), Some(1));
        e.broadcast(Instant::ZERO, Input::Startup);
        e
    }

    #[test]
    fn a_key_is_taken_once() {
        let mut e = started();
        assert_eq!(e.add("C".into(), key(1), inst(1, 50)), None, "same interface, family and VRID");
        assert_eq!(e.add("C".into(), VrKey { ipv6: true, ..key(1) }, inst(1, 50)), Some(2), "other family");
        assert_eq!(e.find("B"), Some(1));
        assert_eq!(e.lookup(&key(2)), Some(1));
        // B's interface comes back under a new index: adverts are looked up there.
        let moved = VrKey { ifindex: 7, ..key(2) };
        assert!(e.rekey(1, moved));
        assert_eq!((e.lookup(&moved), e.lookup(&key(2))), (Some(1), None));
        assert!(!e.rekey(0, moved), "taken by B");
        assert_eq!(e.lookup(&key(1)), Some(0));
    }

    #[test]
    fn timers_fire_in_deadline_order_and_only_when_due() {
        let mut e = started();
        let a_down = e.instances()[0].poll_at().expect("A waits for Master_Down");
        let b_down = e.instances()[1].poll_at().expect("B waits for Master_Down");
        assert!(a_down < b_down, "the higher priority has the shorter skew");
        // The earliest deadline is A's, a deciding timer (not a master's advert).
        assert_eq!(e.next_timer(), Some((a_down, None)));
        // Nothing is due a microsecond early.
        assert!(e.poll(Instant::from_micros(a_down.total_micros() - 1)).is_empty());
        let out = e.poll(a_down);
        assert!(became_master(&out, 0));
        assert!(out.iter().all(|(i, _)| *i == 0), "B's timer is not due: {out:?}");
        assert_eq!(e.instances()[0].state(), State::Master);
        // Next: B's Master_Down, or A's advert timer if that is earlier; an advert timer
        // carries its interval.
        let a_adv = e.instances()[0].poll_at().expect("master advert timer");
        let want = if a_adv < b_down { (a_adv, Some(e.instances()[0].config().adver_int)) } else { (b_down, None) };
        assert_eq!(e.next_timer(), Some(want));
        // An input that re-arms a timer makes the old heap entry stale: it never fires.
        let out = e.handle(1, a_down, Input::Link { up: false });
        assert!(out.iter().any(|(_, a)| matches!(a, Action::Transition { to: State::Fault, .. })));
        assert!(e.poll(b_down).iter().all(|(i, _)| *i == 0), "B is in Fault; its old timer is dead");
        assert_eq!(e.instances()[1].state(), State::Fault);
    }

    #[test]
    fn a_sync_group_moves_together() {
        let mut e = started();
        assert_eq!(e.add_group(&[0, 1]), Some(0));
        let a_down = e.instances()[0].poll_at().expect("A waits");
        let out = e.poll(a_down);
        assert!(became_master(&out, 0));
        assert!(became_master(&out, 1), "B follows A at once: {out:?}");
        assert_eq!(e.instances()[1].state(), State::Master);
        // B's own Master_Down entry is stale now; B's next deadline is its advert timer.
        assert_eq!(e.slots()[1].armed, e.instances()[1].poll_at());
    }

    #[test]
    fn instances_moved_to_a_new_engine_keep_their_deadlines() {
        let e = started();
        let before: Vec<_> = e.instances().iter().map(Instance::poll_at).collect();
        let mut n = Engine::new();
        for (i, (inst, name)) in e.into_instances().into_iter().zip(["A", "B"]).enumerate() {
            assert_eq!(n.add(name.into(), key(u8::try_from(i + 1).unwrap()), inst), Some(i));
        }
        assert_eq!(n.next_timer(), Some((before[0].unwrap(), None)));
        assert!(became_master(&n.poll(before[0].unwrap()), 0));
    }
}
