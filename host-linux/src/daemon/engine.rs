//! The instance table: every hav-core instance of the daemon, their sync
//! groups and a timer heap. Pure logic, no I/O: the daemon feeds it inputs
//! and carries out the actions it returns.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

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

/// What the engine keeps beside each instance.
#[derive(Debug)]
pub struct Slot {
    /// The config's instance name.
    pub name: String,
    /// Its demultiplexing key.
    pub key: VrKey,
    /// The sync group it belongs to, if any.
    pub group: Option<usize>,
    // The deadline in the heap that is still live.
    armed: Option<Instant>,
}

/// Every instance of the daemon.
#[derive(Debug, Default)]
pub struct Engine {
    // Parallel to `slots`; a plain slice so sync groups can move members.
    insts: Vec<Instance>,
    slots: Vec<Slot>,
    groups: Vec<SyncGroup>,
    by_key: HashMap<VrKey, usize>,
    // (deadline, slot). An entry is live when it equals the slot's `armed`.
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
        if self.by_key.contains_key(&key) {
            return None;
        }
        let idx = self.slots.len();
        self.slots.push(Slot { name, key, group: None, armed: None });
        self.insts.push(inst);
        self.by_key.insert(key, idx);
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

    /// Instance index by where an advert arrived.
    pub fn lookup(&self, key: &VrKey) -> Option<usize> {
        self.by_key.get(key).copied()
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
        let mut touched = vec![idx];
        for a in actions {
            out.push((idx, *a));
            let (Some(target), Some(gi)) = (SyncGroup::follow(a), self.slots[idx].group) else {
                continue;
            };
            self.groups[gi].propagate(now, &mut self.insts, idx, target, |i, a| {
                out.push((i, a));
                touched.push(i);
            });
        }
        for i in touched {
            self.rearm(i);
        }
    }

    fn rearm(&mut self, idx: usize) {
        let at = self.insts[idx].poll_at();
        let slot = &mut self.slots[idx];
        if at != slot.armed {
            slot.armed = at;
            if let Some(t) = at {
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

    /// The earliest deadline of any instance.
    pub fn poll_at(&mut self) -> Option<Instant> {
        while let Some(&Reverse((t, i))) = self.heap.peek() {
            if self.slots[i].armed == Some(t) {
                return Some(t);
            }
            self.heap.pop();
        }
        None
    }

    /// Fires every timer due at `now`.
    pub fn poll(&mut self, now: Instant) -> Tagged {
        let mut out = Tagged::new();
        while let Some(&Reverse((t, i))) = self.heap.peek() {
            if t > now {
                break;
            }
            self.heap.pop();
            if self.slots[i].armed != Some(t) {
                continue;
            }
            self.slots[i].armed = None;
            out.extend(self.handle(i, now, Input::Timer));
        }
        out
    }
}
