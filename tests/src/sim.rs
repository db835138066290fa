//! A deterministic simulator: 2 to 16 hav-core routers on one simulated LAN.
//!
//! A seed fixes everything: the routers' priorities, the advert interval, the
//! LAN's delay and loss, and a schedule of partitions, heals, crashes,
//! restarts and priority changes. Adverts cross the LAN as real VRRP bytes
//! (emitted and parsed by `hav_core::wire`). Time is simulated: a run of
//! minutes takes milliseconds, and the same seed always gives the same trace.
//!
//! After every heal, [`Sim::run`] checks the election's promises (see
//! [`Violation`]); a failing seed's trace is printed and can be replayed with
//! `HAV_SIM_SEED=<seed> cargo test -p hav-tests --test sim replay`.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hav_core::vrrp::{Action, Advert, Input, Instance, InstanceConfig, State, TrackStatus, Tracked};
use hav_core::wire::{ChecksumMode, VrrpPacket, VrrpRepr, VrrpVersion};
use hav_core::{Duration, Instant};

/// splitmix64: small, fast and the same on every platform.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }

    /// True with probability `p` (0..=1).
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
}

/// The shape of one simulated scenario, derived from a seed.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// The seed everything came from.
    pub seed: u64,
    /// VRRP version of every router.
    pub version: VrrpVersion,
    /// IPv6 instead of IPv4 (VRRPv3 only).
    pub ipv6: bool,
    /// Unicast peers instead of multicast.
    pub unicast: bool,
    /// The common Advertisement_Interval.
    pub adver_int: Duration,
    /// Configured priority of each router.
    pub priorities: Vec<u8>,
    /// Preempt_Mode of every router.
    pub preempt: bool,
    /// Largest one-way LAN delay.
    pub max_delay: Duration,
    /// The schedule of disturbances.
    pub events: Vec<(Instant, Event)>,
    /// Instants at which the LAN is whole again and stays so for a while.
    pub heals: Vec<Instant>,
    /// End of the run.
    pub end: Instant,
}

/// A scheduled disturbance.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// Routers are split into islands (`island[i]` of router i).
    Partition(Vec<u8>),
    /// Packet loss on every delivery, in percent.
    Loss(u8),
    /// The LAN is whole again: no islands, no loss.
    Heal,
    /// Router i stops (kill -9 and link down).
    Crash(usize),
    /// Router i starts again.
    Restart(usize),
    /// Router i's tracked priority delta changes.
    Priority(usize, i32),
    /// Router i shuts down cleanly (priority 0) and stays down.
    Stop(usize),
}

impl Scenario {
    /// The scenario of `seed`.
    pub fn from_seed(seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let n = rng.range(2, 16) as usize;
        let version = if rng.chance(0.5) { VrrpVersion::V3 } else { VrrpVersion::V2 };
        let ipv6 = version == VrrpVersion::V3 && rng.chance(0.3);
        let unicast = rng.chance(0.25);
        let adver_int = match version {
            VrrpVersion::V2 => Duration::from_secs(rng.range(1, 2)),
            VrrpVersion::V3 => Duration::from_centis([1, 5, 10, 50, 100][rng.range(0, 4) as usize]),
        };
        let owner = rng.chance(0.2);
        let priorities: Vec<u8> = (0..n)
            .map(|i| if owner && i == 0 { 255 } else { rng.range(1, 254) as u8 })
            .collect();
        let preempt = rng.chance(0.75);
        // Delays stay well under the interval, as on a LAN.
        let max_delay =
            Duration::from_micros(rng.range(0, (adver_int.total_micros() / 10).min(20_000)));
        let mai = adver_int.total_micros();
        let settle = Duration::from_micros(4 * mai + 1_000_000 + 2 * max_delay.total_micros());
        let mut t = Instant::ZERO + settle;
        let mut events = Vec::new();
        let mut heals = vec![Instant::ZERO];
        let mut alive = vec![true; n];
        for _ in 0..rng.range(1, 6) {
            // A disturbed period of a few events.
            for _ in 0..rng.range(1, 4) {
                t += Duration::from_micros(rng.range(0, 3 * mai));
                let ev = match rng.range(0, 6) {
                    0 | 1 => Event::Partition((0..n).map(|_| rng.range(0, 2) as u8).collect()),
                    2 => Event::Loss(rng.range(10, 90) as u8),
                    3 => {
                        let i = rng.range(0, n as u64 - 1) as usize;
                        alive[i] = false;
                        Event::Crash(i)
                    }
                    4 => Event::Priority(
                        rng.range(0, n as u64 - 1) as usize,
                        rng.range(0, 120) as i32 - 60,
                    ),
                    _ => {
                        let i = rng.range(0, n as u64 - 1) as usize;
                        alive[i] = false;
                        Event::Stop(i)
                    }
                };
                events.push((t, ev));
            }
            // Heal, and bring most of the dead back.
            t += Duration::from_micros(rng.range(0, 2 * mai));
            for (i, a) in alive.iter_mut().enumerate() {
                if !*a && rng.chance(0.7) {
                    *a = true;
                    events.push((t, Event::Restart(i)));
                }
            }
            events.push((t, Event::Heal));
            heals.push(t);
            t += settle;
        }
        Scenario {
            seed,
            version,
            ipv6,
            unicast,
            adver_int,
            priorities,
            preempt,
            max_delay,
            events,
            heals,
            end: t,
        }
    }

    /// The time every router needs after a heal: 3 x Master_Adver_Interval
    /// + Skew_Time (at its largest, for priority 1) + the largest delay.
    pub fn convergence_bound(&self) -> Duration {
        let mai = self.adver_int;
        let skew = match self.version {
            VrrpVersion::V3 => mai,
            VrrpVersion::V2 => Duration::from_secs(1),
        };
        mai.saturating_mul(3) + skew + self.max_delay
    }

    fn addr(&self, i: usize) -> IpAddr {
        if self.ipv6 {
            IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1 + i as u16))
        } else {
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1 + i as u8))
        }
    }

    fn vip(&self) -> IpAddr {
        if self.ipv6 {
            IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 0x100))
        } else {
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, 100))
        }
    }

    /// The config of router `i`.
    pub fn config(&self, i: usize) -> InstanceConfig {
        let mut c = InstanceConfig::new(42, self.addr(i));
        c.version = self.version;
        c.priority = self.priorities[i];
        c.adver_int = self.adver_int;
        c.preempt = self.preempt;
        c.vips.push(self.vip()).expect("one VIP fits");
        if self.unicast {
            for j in (0..self.priorities.len()).filter(|&j| j != i) {
                c.peers.push(self.addr(j)).expect("16 peers fit");
            }
        }
        c
    }
}

/// A broken promise, found after a heal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Violation {
    /// Not exactly one master among the live routers once converged.
    Masters {
        /// When.
        at: Instant,
        /// Routers that were master.
        masters: Vec<usize>,
    },
    /// With preemption on, the master is not the highest priority.
    NotHighest {
        /// When.
        at: Instant,
        /// The master.
        master: usize,
        /// The rightful master.
        expected: usize,
    },
    /// Two routers held the VIP at once once converged.
    VipTwice {
        /// When.
        at: Instant,
        /// Holders.
        holders: Vec<usize>,
    },
    /// The routers kept exchanging packets without time moving on (an
    /// advert storm): more than [`STORM`] steps at one instant.
    Storm {
        /// When.
        at: Instant,
    },
}

/// Steps allowed at one simulated instant before a run counts as a storm.
pub const STORM: u32 = 100_000;
/// Steps allowed in one run (packets plus timers) before it counts as a
/// storm: a healthy run of the longest scenario takes far fewer.
pub const BUDGET: u64 = 2_000_000;

struct Router {
    inst: Option<Instance>,
    delta: i32,
    holds_vip: bool,
}

#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Packet {
    at: Instant,
    seq: u64,
    from: usize,
    to: usize,
    bytes: Vec<u8>,
}

/// One simulation run.
pub struct Sim {
    sc: Scenario,
    rng: Rng,
    now: Instant,
    routers: Vec<Router>,
    island: Vec<u8>,
    loss: u8,
    wire: BinaryHeap<Reverse<Packet>>,
    seq: u64,
    steps: u64,
    /// Human-readable trace of everything that happened.
    pub trace: String,
}

impl Sim {
    /// A simulation of `sc`; nothing runs until [`Sim::run`].
    pub fn new(sc: Scenario) -> Self {
        let n = sc.priorities.len();
        let rng = Rng::new(sc.seed.wrapping_mul(31).wrapping_add(7));
        let mut trace = String::new();
        let _ = writeln!(
            trace,
            "seed {} n={} {:?} ipv6={} unicast={} int={}ms prio={:?} preempt={} max_delay={}us",
            sc.seed,
            n,
            sc.version,
            sc.ipv6,
            sc.unicast,
            sc.adver_int.total_millis(),
            sc.priorities,
            sc.preempt,
            sc.max_delay.total_micros()
        );
        Sim {
            routers: (0..n).map(|_| Router { inst: None, delta: 0, holds_vip: false }).collect(),
            island: vec![0; n],
            loss: 0,
            wire: BinaryHeap::new(),
            seq: 0,
            steps: 0,
            rng,
            now: Instant::ZERO,
            sc,
            trace,
        }
    }

    fn start(&mut self, i: usize) {
        let mut inst = Instance::new(self.sc.config(i));
        inst.track(Tracked::new(1, 1, false, TrackStatus::Value(self.routers[i].delta)))
            .expect("one tracked object fits");
        let actions = inst.handle(self.now, Input::Startup);
        self.routers[i].inst = Some(inst);
        self.apply(i, &actions);
    }

    fn effective(&self, i: usize) -> u8 {
        self.routers[i].inst.as_ref().map_or(0, |r| r.effective_priority())
    }

    fn apply(&mut self, i: usize, actions: &[Action]) {
        for a in actions {
            match *a {
                Action::Transition { from, to, reason } => {
                    let _ = writeln!(
                        self.trace,
                        "{:>12}us r{i} {} -> {} ({reason:?}) prio {}",
                        self.now.total_micros(),
                        from.as_str(),
                        to.as_str(),
                        self.effective(i)
                    );
                }
                Action::SendAdvert { priority } => self.send(i, priority),
                Action::AddVips { .. } => self.routers[i].holds_vip = true,
                Action::RemoveVips => self.routers[i].holds_vip = false,
                Action::SendGarp { .. } | Action::Discard(_) => {}
            }
        }
    }

    fn send(&mut self, from: usize, priority: u8) {
        let inst = self.routers[from].inst.as_ref().expect("a sender runs");
        let repr = inst.advert_repr(priority);
        let src = inst.config().primary_addr;
        let dests: Vec<IpAddr> = inst.advert_destinations().collect();
        for dst in dests {
            let mut bytes = vec![0u8; repr.buffer_len()];
            repr.emit(&mut VrrpPacket::new_unchecked(&mut bytes[..]), src, dst, ChecksumMode::Rfc)
                .expect("our own advert emits");
            let targets: Vec<usize> = if dst.is_multicast() {
                (0..self.routers.len()).filter(|&j| j != from).collect()
            } else {
                (0..self.routers.len()).filter(|&j| self.sc.addr(j) == dst).collect()
            };
            for to in targets {
                if self.island[to] != self.island[from] || self.rng.range(0, 99) < u64::from(self.loss)
                {
                    continue;
                }
                let delay = self.rng.range(0, self.sc.max_delay.total_micros());
                self.seq += 1;
                self.wire.push(Reverse(Packet {
                    at: self.now + Duration::from_micros(delay),
                    seq: self.seq,
                    from,
                    to,
                    bytes: bytes.clone(),
                }));
            }
        }
    }

    fn deliver(&mut self, p: Packet) {
        let Some(inst) = self.routers[p.to].inst.as_mut() else { return };
        let src = self.sc.addr(p.from);
        let dst = inst.config().mcast_group;
        let dst = if self.sc.unicast { self.sc.addr(p.to) } else { dst };
        let Ok(pkt) = VrrpPacket::new_checked(&p.bytes[..]) else {
            panic!("seed {}: our own advert failed check_len", self.sc.seed)
        };
        let repr = match VrrpRepr::parse(&pkt, src, dst, ChecksumMode::Rfc) {
            Ok(r) => r,
            Err(e) => panic!("seed {}: our own advert did not parse: {e:?}", self.sc.seed),
        };
        let actions = inst.handle(self.now, Input::Advert(Advert { src, ttl: 255, repr: &repr }));
        self.apply(p.to, &actions);
    }

    fn event(&mut self, ev: &Event) {
        let _ = writeln!(self.trace, "{:>12}us event {ev:?}", self.now.total_micros());
        match *ev {
            Event::Partition(ref islands) => self.island.clone_from(islands),
            Event::Loss(p) => self.loss = p,
            Event::Heal => {
                self.island.iter_mut().for_each(|x| *x = 0);
                self.loss = 0;
            }
            Event::Crash(i) => {
                self.routers[i].inst = None;
                self.routers[i].holds_vip = false;
            }
            Event::Stop(i) => {
                if let Some(mut inst) = self.routers[i].inst.take() {
                    let actions = inst.handle(self.now, Input::Shutdown);
                    self.routers[i].inst = Some(inst);
                    self.apply(i, &actions);
                    self.routers[i].inst = None;
                }
            }
            Event::Restart(i) => {
                if self.routers[i].inst.is_none() {
                    self.start(i);
                }
            }
            Event::Priority(i, d) => {
                self.routers[i].delta = d;
                if let Some(inst) = self.routers[i].inst.as_mut() {
                    let actions =
                        inst.handle(self.now, Input::Track { id: 1, status: TrackStatus::Value(d) });
                    self.apply(i, &actions);
                }
            }
        }
    }

    fn next_timer(&self) -> Option<(Instant, usize)> {
        self.routers
            .iter()
            .enumerate()
            .filter_map(|(i, r)| r.inst.as_ref()?.poll_at().map(|t| (t, i)))
            .min()
    }

    /// Advances to `until`, processing packets and timers in time order.
    /// Returns false on an advert storm.
    fn advance(&mut self, until: Instant) -> bool {
        let mut same_instant = 0u32;
        loop {
            let pkt = self.wire.peek().map(|p| p.0.at);
            let timer = self.next_timer();
            let next = match (pkt, timer) {
                (Some(p), Some((t, _))) => p.min(t),
                (Some(p), None) => p,
                (None, Some((t, _))) => t,
                (None, None) => break,
            };
            if next > until {
                break;
            }
            same_instant = if next == self.now { same_instant + 1 } else { 0 };
            self.steps += 1;
            if same_instant > STORM || self.steps > BUDGET {
                return false;
            }
            self.now = next;
            if pkt == Some(next) {
                let Some(Reverse(p)) = self.wire.pop() else { break };
                self.deliver(p);
            } else if let Some((_, i)) = timer {
                let inst = self.routers[i].inst.as_mut().expect("timer of a live router");
                let actions = inst.handle(self.now, Input::Timer);
                self.apply(i, &actions);
            }
        }
        self.now = until;
        true
    }

    fn masters(&self) -> Vec<usize> {
        (0..self.routers.len())
            .filter(|&i| self.routers[i].inst.as_ref().is_some_and(|r| r.state() == State::Master))
            .collect()
    }

    // The rightful master: highest effective priority, then highest address.
    fn rightful(&self) -> Option<usize> {
        (0..self.routers.len())
            .filter(|&i| self.routers[i].inst.is_some())
            .max_by_key(|&i| (self.effective(i), i))
    }

    fn check(&self, out: &mut Vec<Violation>) {
        let at = self.now;
        let live = self.routers.iter().any(|r| r.inst.is_some());
        let masters = self.masters();
        if live && masters.len() != 1 || !live && !masters.is_empty() {
            out.push(Violation::Masters { at, masters: masters.clone() });
        }
        let holders: Vec<usize> =
            (0..self.routers.len()).filter(|&i| self.routers[i].holds_vip).collect();
        if holders.len() > 1 {
            out.push(Violation::VipTwice { at, holders });
        }
        if self.sc.preempt && masters.len() == 1 {
            if let Some(expected) = self.rightful() {
                if masters[0] != expected && self.effective(masters[0]) < self.effective(expected) {
                    out.push(Violation::NotHighest { at, master: masters[0], expected });
                }
            }
        }
    }

    fn storm(&mut self, mut violations: Vec<Violation>) -> Vec<Violation> {
        let _ = writeln!(self.trace, "advert storm at {}us", self.now.total_micros());
        violations.push(Violation::Storm { at: self.now });
        violations
    }

    /// Runs the whole scenario and returns what broke, if anything.
    ///
    /// After each heal it waits for the convergence bound, then samples the
    /// promises every quarter interval until the next disturbance.
    pub fn run(&mut self) -> Vec<Violation> {
        let n = self.routers.len();
        for i in 0..n {
            self.start(i);
        }
        let mut violations = Vec::new();
        let events = self.sc.events.clone();
        let mut next_event = 0;
        let heals = self.sc.heals.clone();
        let bound = self.sc.convergence_bound();
        for (h, &heal) in heals.iter().enumerate() {
            // Replay the events up to this heal.
            while next_event < events.len() && events[next_event].0 <= heal {
                let (t, ref ev) = events[next_event];
                if !self.advance(t) {
                    return self.storm(violations);
                }
                self.event(ev);
                next_event += 1;
            }
            if !self.advance(heal) {
                return self.storm(violations);
            }
            let quiet_end = events.get(next_event).map_or(self.sc.end, |e| e.0);
            let converged = heal + bound;
            let step = Duration::from_micros((self.sc.adver_int.total_micros() / 4).max(1));
            let mut t = converged;
            let before = violations.len();
            while t < quiet_end {
                if !self.advance(t) {
                    return self.storm(violations);
                }
                self.check(&mut violations);
                if violations.len() > before {
                    let _ = writeln!(self.trace, "violation after heal {h}: {:?}", violations.last());
                    return violations;
                }
                t += step;
            }
        }
        violations
    }
}
