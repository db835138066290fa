//! A deterministic simulator: 2 to 16 routers on one simulated LAN, each one
//! hav-core [`Engine`] running one to three virtual routers.
//!
//! A seed fixes everything: the virtual routers (VRIDs, intervals, address
//! lists, which router runs which and at what priority, a sync group), the
//! LAN's delay and loss, how the simulated host fails to install or remove
//! addresses, and a schedule of partitions, heals, crashes, restarts,
//! priority changes and reloads. Each router is driven as a real host drives
//! it: adverts cross the LAN as real VRRP bytes (emitted by
//! `hav_core::wire`) and enter through [`Engine::receive`]; timers are
//! [`Engine::poll_at`] and [`Engine::poll`] and nothing else; a reload goes
//! through [`Engine::reconfigure`]; the addresses are installed in and
//! removed from a simulated kernel, and what came of it is reported with
//! [`Input::Vips`] and [`Engine::vips_released`]. The engines use [`Fixed`]
//! storage, the `no_std` path firmware takes. Time is simulated: a run of
//! minutes takes milliseconds, and the same seed always gives the same trace.
//!
//! Some promises hold at every instant and are checked after every engine
//! call (see [`Violation`]: an instance holds its addresses exactly while it
//! is master, the kernel has what the engine thinks it has, a failed removal
//! is asked for again, a reload into FAULT releases). The election's
//! promises are checked after every heal, once the routers had time to
//! converge. A failing seed's trace is printed and can be replayed with
//! `HAV_SIM_SEED=<seed> cargo test -p hav-tests --test sim replay`.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, VecDeque};
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hav_core::vrrp::{
    Action, DropReason, Engine, Fixed, Input, Instance, InstanceConfig, Output, Received, Record,
    State, TrackSet, TrackStatus, Tracked, VipHold, VrKey,
};
use hav_core::wire::{ChecksumMode, VrrpPacket, VrrpVersion};
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

    /// One element of a non-empty slice.
    pub fn pick<T: Copy>(&mut self, from: &[T]) -> T {
        from[self.range(0, from.len() as u64 - 1) as usize]
    }
}

/// Instances one simulated router runs at most: the capacity of its
/// [`Fixed`] engine.
pub const MAX_INSTANCES: usize = 3;
/// Addresses each virtual router's lists are drawn from (a contiguous part).
pub const VIP_POOL: usize = 4;
/// The tracked object every instance of a router shares (its value moves the
/// priority, as an uplink's weight would).
pub const TRACK_ROUTER: u16 = 1;
/// The tracked object a reload adds with weight 0 ([`Change::TrackDown`]).
pub const TRACK_FAULT: u16 = 2;

type SimEngine = Engine<usize, Fixed<MAX_INSTANCES, 1>>;

/// One virtual router of a scenario: a VRID and who runs it.
#[derive(Debug, Clone)]
pub struct VirtualRouter {
    /// The VRID.
    pub vrid: u8,
    /// Its Advertisement_Interval at the start.
    pub adver_int: Duration,
    /// Its virtual addresses at the start.
    pub vips: Vec<IpAddr>,
    /// The configured priority of each router at the start; `None` where the
    /// router does not run it.
    pub priorities: Vec<Option<u8>>,
}

/// The shape of one simulated scenario, derived from a seed.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// The seed everything came from.
    pub seed: u64,
    /// Number of routers.
    pub routers: usize,
    /// VRRP version of every instance.
    pub version: VrrpVersion,
    /// IPv6 instead of IPv4 (VRRPv3 only).
    pub ipv6: bool,
    /// Unicast peers instead of multicast.
    pub unicast: bool,
    /// The shortest Advertisement_Interval: every interval of the run is one
    /// or two times it.
    pub adver_int: Duration,
    /// The longest Advertisement_Interval any config has during the run.
    pub max_adver_int: Duration,
    /// The virtual routers (one to [`MAX_INSTANCES`]). Every router runs
    /// the first one.
    pub vrs: Vec<VirtualRouter>,
    /// On every router, the first two virtual routers are one sync group
    /// (every router runs both, at one priority).
    pub sync_group: bool,
    /// Preempt_Mode of every instance.
    pub preempt: bool,
    /// keepalived's `lower_prio_no_advert` on every instance: a master does not answer a
    /// lower priority.
    pub lower_prio_no_advert: bool,
    /// keepalived's `higher_prio_send_advert` on every instance: a master advertises once
    /// before giving way.
    pub higher_prio_send_advert: bool,
    /// Time between gratuitous ARP / NA rounds (zero: one burst).
    pub garp_interval: Duration,
    /// While the LAN is disturbed, the host sometimes fails to install an
    /// instance's addresses (and reports `held: false`).
    pub vip_failures: bool,
    /// While the LAN is disturbed, the host sometimes fails to remove them.
    pub release_failures: bool,
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
    /// Router i's daemon is killed (kill -9): no more packets, and its
    /// addresses stay in the kernel.
    Crash(usize),
    /// Router i's daemon starts again.
    Restart(usize),
    /// The router-wide tracked value of router i changes (every instance).
    Priority(usize, i32),
    /// Router i shuts down cleanly (priority 0) and stays down.
    Stop(usize),
    /// Router i's config is reloaded with these changes, each for one
    /// virtual router (an index into [`Scenario::vrs`]). A dead router's
    /// config changes for its next start.
    Reload(usize, Vec<(usize, Change)>),
    /// The object [`Change::TrackDown`] added to router i's instance of
    /// virtual router v comes up.
    TrackUp(usize, usize),
}

/// What a reload changes in one instance's config.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// The configured priority.
    Priority(u8),
    /// The Advertisement_Interval.
    AdverInt(Duration),
    /// The virtual addresses.
    Vips(Vec<IpAddr>),
    /// A tracked object of weight 0 is added, and it is down: FAULT.
    TrackDown,
    /// That object is removed again.
    Untrack,
}

fn vip(ipv6: bool, v: usize, j: usize) -> IpAddr {
    if ipv6 {
        IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 1 + v as u16, 0x100 + j as u16))
    } else {
        IpAddr::V4(Ipv4Addr::new(10, 0, 1 + v as u8, 100 + j as u8))
    }
}

// One to three contiguous addresses of virtual router v's pool.
fn pick_vips(rng: &mut Rng, ipv6: bool, v: usize) -> Vec<IpAddr> {
    let count = rng.range(1, 3) as usize;
    let first = rng.range(0, (VIP_POOL - count) as u64) as usize;
    (first..first + count).map(|j| vip(ipv6, v, j)).collect()
}

impl Scenario {
    /// The scenario of `seed`.
    pub fn from_seed(seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let n = rng.range(2, 16) as usize;
        let version = if rng.chance(0.5) { VrrpVersion::V3 } else { VrrpVersion::V2 };
        let ipv6 = version == VrrpVersion::V3 && rng.chance(0.3);
        let unicast = rng.chance(0.25);
        let base = match version {
            VrrpVersion::V2 => Duration::from_secs(rng.range(1, 2)),
            VrrpVersion::V3 => Duration::from_centis([1, 5, 10, 50, 100][rng.range(0, 4) as usize]),
        };
        let owner = rng.chance(0.2);
        let preempt = rng.chance(0.75);
        let sync_group = rng.chance(0.3);
        let garp_interval =
            if rng.chance(0.3) { Duration::from_millis(rng.range(1, 100)) } else { Duration::ZERO };
        let vip_failures = rng.chance(0.3);
        let release_failures = rng.chance(0.3);
        let k = rng.range(if sync_group { 2 } else { 1 }, MAX_INSTANCES as u64) as usize;
        let mut vrs: Vec<VirtualRouter> = Vec::new();
        for v in 0..k {
            let vrid = loop {
                let id = rng.range(1, 255) as u8;
                if !vrs.iter().any(|x| x.vrid == id) {
                    break id;
                }
            };
            let adver_int = base.saturating_mul(rng.range(1, 2));
            let vips = pick_vips(&mut rng, ipv6, v);
            let mut priorities = Vec::with_capacity(n);
            for i in 0..n {
                priorities.push(if sync_group && v == 1 {
                    vrs[0].priorities[i]
                } else if v > 0 && !rng.chance(0.7) {
                    None
                } else if owner && i == 0 && v == 0 {
                    Some(255)
                } else {
                    Some(rng.range(1, 254) as u8)
                });
            }
            if priorities.iter().all(Option::is_none) {
                priorities[v % n] = Some(rng.range(1, 254) as u8);
            }
            vrs.push(VirtualRouter { vrid, adver_int, vips, priorities });
        }
        // Delays stay well under the interval, as on a LAN.
        let max_delay = Duration::from_micros(rng.range(0, (base.total_micros() / 10).min(20_000)));
        let mai = base.total_micros();
        let longest = 2 * mai;
        let settle = Duration::from_micros(4 * longest + 1_000_000 + 2 * max_delay.total_micros());

        // What the schedule has done so far, to keep it sound: who is alive,
        // each config's priority, interval and addresses, which instances a
        // reload put in fault.
        let mut alive = vec![true; n];
        let mut prio: Vec<Vec<Option<u8>>> = vrs.iter().map(|vr| vr.priorities.clone()).collect();
        let mut ints: Vec<Duration> = vrs.iter().map(|vr| vr.adver_int).collect();
        let mut lists: Vec<Vec<IpAddr>> = vrs.iter().map(|vr| vr.vips.clone()).collect();
        let mut faulted = vec![vec![false; n]; k];
        // Each router's last reload: two rolling reloads that overlap must
        // reach every router in the same order.
        let mut reloaded = vec![Instant::ZERO; n];
        let runs = |prio: &[Vec<Option<u8>>], v: usize| -> Vec<usize> {
            (0..n).filter(|&i| prio[v][i].is_some()).collect()
        };
        // The virtual routers a reload of one of them must change too.
        let together = |v: usize| -> Vec<usize> { if sync_group && v < 2 { vec![0, 1] } else { vec![v] } };
        let restore = |rng: &mut Rng, i: usize, v: usize| {
            if rng.chance(0.5) { Event::TrackUp(i, v) } else { Event::Reload(i, vec![(v, Change::Untrack)]) }
        };

        let mut t = Instant::ZERO + settle;
        let mut events: Vec<(Instant, Event)> = Vec::new();
        let mut heals = vec![Instant::ZERO];
        for _ in 0..rng.range(1, 6) {
            // A disturbed period of a few events.
            for _ in 0..rng.range(1, 4) {
                t += Duration::from_micros(rng.range(0, 3 * mai));
                let i = rng.range(0, n as u64 - 1) as usize;
                match rng.range(0, 9) {
                    0 | 1 => events.push((t, Event::Partition((0..n).map(|_| rng.range(0, 2) as u8).collect()))),
                    2 => events.push((t, Event::Loss(rng.range(10, 90) as u8))),
                    3 => {
                        alive[i] = false;
                        events.push((t, Event::Crash(i)));
                    }
                    4 => events.push((t, Event::Priority(i, rng.range(0, 120) as i32 - 60))),
                    5 => {
                        alive[i] = false;
                        events.push((t, Event::Stop(i)));
                    }
                    6 => {
                        // A new priority; the owner's (255) only where nobody else owns.
                        let v = rng.pick(&(0..k).filter(|&v| prio[v][i].is_some()).collect::<Vec<_>>());
                        let free = (0..n).all(|j| j == i || prio[v][j] != Some(255));
                        let p = if free && rng.chance(0.15) { 255 } else { rng.range(1, 254) as u8 };
                        let changes = together(v)
                            .into_iter()
                            .map(|w| {
                                prio[w][i] = Some(p);
                                (w, Change::Priority(p))
                            })
                            .collect();
                        events.push((t, Event::Reload(i, changes)));
                    }
                    7 => {
                        let v = rng.range(0, k as u64 - 1) as usize;
                        let change = if rng.chance(0.5) {
                            let new = if ints[v] == base { base.saturating_mul(2) } else { base };
                            // VRRPv2 drops adverts of another interval: the fleet changes it.
                            if version == VrrpVersion::V3 && rng.chance(0.5) {
                                let j = rng.pick(&runs(&prio, v));
                                events.push((t, Event::Reload(j, vec![(v, Change::AdverInt(new))])));
                                continue;
                            }
                            ints[v] = new;
                            Change::AdverInt(new)
                        } else {
                            // Adverts of another address list are dropped too.
                            let new = loop {
                                let l = pick_vips(&mut rng, ipv6, v);
                                if l != lists[v] {
                                    break l;
                                }
                            };
                            lists[v].clone_from(&new);
                            Change::Vips(new)
                        };
                        // A rolling reload, within one interval.
                        for j in runs(&prio, v) {
                            let at = reloaded[j].max(t + Duration::from_micros(rng.range(0, mai)));
                            reloaded[j] = at;
                            events.push((at, Event::Reload(j, vec![(v, change.clone())])));
                        }
                    }
                    _ => {
                        let v = rng.pick(&(0..k).filter(|&v| prio[v][i].is_some()).collect::<Vec<_>>());
                        if faulted[v][i] {
                            faulted[v][i] = false;
                            let ev = restore(&mut rng, i, v);
                            events.push((t, ev));
                        } else {
                            faulted[v][i] = true;
                            events.push((t, Event::Reload(i, vec![(v, Change::TrackDown)])));
                            if rng.chance(0.4) {
                                faulted[v][i] = false;
                                let at = t + Duration::from_micros(rng.range(0, 2 * mai));
                                let ev = restore(&mut rng, i, v);
                                events.push((at, ev));
                            }
                        }
                    }
                }
            }
            // Heal, bring most of the dead back and clear most faults.
            let last = events.iter().map(|e| e.0).max().unwrap_or(t);
            t = t.max(last) + Duration::from_micros(rng.range(0, 2 * mai));
            for (i, a) in alive.iter_mut().enumerate() {
                if !*a && rng.chance(0.7) {
                    *a = true;
                    events.push((t, Event::Restart(i)));
                }
            }
            for (v, row) in faulted.iter_mut().enumerate() {
                for (i, f) in row.iter_mut().enumerate() {
                    if *f && rng.chance(0.6) {
                        *f = false;
                        let ev = restore(&mut rng, i, v);
                        events.push((t, ev));
                    }
                }
            }
            events.push((t, Event::Heal));
            heals.push(t);
            t += settle;
        }
        // Stable: events at one instant keep the order they were made in.
        events.sort_by_key(|e| e.0);
        let max_adver_int = events
            .iter()
            .filter_map(|(_, e)| match e {
                Event::Reload(_, c) => c.iter().find_map(|(_, c)| match c {
                    Change::AdverInt(d) => Some(*d),
                    _ => None,
                }),
                _ => None,
            })
            .chain(vrs.iter().map(|vr| vr.adver_int))
            .max()
            .unwrap_or(base);
        // Drawn after everything else, so that the schedules of known seeds stay as they were.
        let lower_prio_no_advert = rng.chance(0.3);
        let higher_prio_send_advert = rng.chance(0.3);
        Scenario {
            seed,
            routers: n,
            version,
            ipv6,
            unicast,
            adver_int: base,
            max_adver_int,
            vrs,
            sync_group,
            preempt,
            lower_prio_no_advert,
            higher_prio_send_advert,
            garp_interval,
            vip_failures,
            release_failures,
            max_delay,
            events,
            heals,
            end: t,
        }
    }

    /// The time every router needs after a heal, for the longest interval of
    /// the run: three times Master_Adver_Interval, plus Skew_Time at its
    /// largest (priority 1), plus the largest delay.
    pub fn convergence_bound(&self) -> Duration {
        let mai = self.max_adver_int;
        let skew = match self.version {
            VrrpVersion::V3 => mai,
            VrrpVersion::V2 => Duration::from_secs(1),
        };
        mai.saturating_mul(3) + skew + self.max_delay
    }

    /// Router i's own address.
    pub fn addr(&self, i: usize) -> IpAddr {
        if self.ipv6 {
            IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1 + i as u16))
        } else {
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1 + i as u8))
        }
    }

    /// Every address virtual router v may have.
    pub fn vip_pool(&self, v: usize) -> impl Iterator<Item = IpAddr> + '_ {
        (0..VIP_POOL).map(move |j| vip(self.ipv6, v, j))
    }

    /// Router i's config of virtual router v at the start, if it runs it.
    pub fn config(&self, i: usize, v: usize) -> Option<InstanceConfig> {
        let vr = &self.vrs[v];
        let mut c = InstanceConfig::new(vr.vrid, self.addr(i));
        c.version = self.version;
        c.priority = vr.priorities[i]?;
        c.adver_int = vr.adver_int;
        c.preempt = self.preempt;
        c.lower_prio_no_advert = self.lower_prio_no_advert;
        c.higher_prio_send_advert = self.higher_prio_send_advert;
        c.garp.interval = self.garp_interval;
        for a in &vr.vips {
            c.vips.push(*a).expect("three VIPs fit");
        }
        if self.unicast {
            for j in (0..self.routers).filter(|&j| j != i && vr.priorities[j].is_some()) {
                c.peers.push(self.addr(j)).expect("16 peers fit");
            }
        }
        Some(c)
    }
}

/// A broken promise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Violation {
    /// After a heal, not exactly one master among the live routers running
    /// a VRID that are not in FAULT (none if all are).
    Masters {
        /// When.
        at: Instant,
        /// The VRID.
        vrid: u8,
        /// Routers that were master.
        masters: Vec<usize>,
    },
    /// After a heal, with preemption on, the master is not the highest
    /// priority.
    NotHighest {
        /// When.
        at: Instant,
        /// The VRID.
        vrid: u8,
        /// The master.
        master: usize,
        /// The rightful master.
        expected: usize,
    },
    /// After a heal, two live routers had a VIP in their kernel (addresses
    /// whose removal failed and is still to be retried aside).
    VipTwice {
        /// When.
        at: Instant,
        /// The address.
        vip: IpAddr,
        /// Holders.
        holders: Vec<usize>,
    },
    /// After a heal, the members of a router's sync group were not in one
    /// state.
    GroupSplit {
        /// When.
        at: Instant,
        /// The router.
        router: usize,
        /// The members' states.
        states: Vec<State>,
    },
    /// The engine said an instance holds its addresses while it was not
    /// master.
    VipsNotMaster {
        /// When.
        at: Instant,
        /// The router.
        router: usize,
        /// The VRID.
        vrid: u8,
        /// Its state.
        state: State,
    },
    /// An instance was master without its addresses held (or stayed master
    /// after the host reported that it could not install them).
    MasterWithoutVips {
        /// When.
        at: Instant,
        /// The router.
        router: usize,
        /// The VRID.
        vrid: u8,
        /// What the engine said of its addresses.
        hold: VipHold,
    },
    /// The simulated kernel and the engine disagreed: addresses missing
    /// while held, or present while released.
    Kernel {
        /// When.
        at: Instant,
        /// The router.
        router: usize,
        /// The VRID.
        vrid: u8,
        /// What the engine said of its addresses.
        hold: VipHold,
    },
    /// A failed removal was not asked for again by the engine's own
    /// deadline.
    NoRetry {
        /// When.
        at: Instant,
        /// The router.
        router: usize,
        /// The VRID.
        vrid: u8,
    },
    /// A reload put an instance in FAULT and its addresses stayed held.
    FaultHolds {
        /// When.
        at: Instant,
        /// The router.
        router: usize,
        /// The VRID.
        vrid: u8,
    },
    /// One of our own adverts was dropped as malformed or with a bad
    /// checksum.
    BadAdvert {
        /// When.
        at: Instant,
        /// The receiving router.
        router: usize,
        /// Why.
        reason: DropReason,
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
pub const BUDGET: u64 = 4_000_000;

/// What a run exercised, to show that the checks were not vacuous.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Adverts sent.
    pub adverts: u64,
    /// Transitions.
    pub transitions: u64,
    /// Reconfigures of a running instance.
    pub reconfigures: u64,
    /// Reconfigures after which the instance was in FAULT.
    pub reconfigure_faults: u64,
    /// Installs the host failed (`Input::Vips { held: false }`).
    pub vip_failures: u64,
    /// ... of which came while the instance was master (the FAULT back-off).
    pub vip_backoffs: u64,
    /// Removals the host failed (`vips_released(.., false)`).
    pub release_failures: u64,
    /// Removals the engine asked for again after a failure.
    pub release_retries: u64,
    /// Transitions out of FAULT.
    pub faults_cleared: u64,
    /// Sync-group agreements announced.
    pub group_outputs: u64,
    /// Messages the engine dropped for a VRID it does not run.
    pub unknown_vrid: u64,
    /// Adverts dropped by an instance, by reason.
    pub discards: [u64; DropReason::COUNT],
}

struct Router {
    engine: Option<SimEngine>,
    delta: i32,
    // The router's config file: per virtual router, its config and the
    // status of the object a reload made it track, if any.
    files: Vec<Option<File>>,
    // The addresses installed on its interface.
    kernel: BTreeSet<IpAddr>,
    // Failed removals, by record, and when the engine must ask again.
    retry_due: Vec<(usize, Instant)>,
}

#[derive(Clone)]
struct File {
    config: InstanceConfig,
    fault_track: Option<TrackStatus>,
}

// What the host reports back after carrying out an address action.
#[derive(Clone, Copy)]
enum Report {
    Installed { idx: usize, held: bool },
    Removed { idx: usize, ok: bool },
}

#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Packet {
    at: Instant,
    seq: u64,
    from: usize,
    to: usize,
    dst: IpAddr,
    bytes: Vec<u8>,
}

// The engine's marker for a retry handed out and not yet answered.
const ASKED: Instant = Instant::from_micros(u64::MAX);

/// One simulation run.
pub struct Sim {
    sc: Scenario,
    rng: Rng,
    now: Instant,
    routers: Vec<Router>,
    island: Vec<u8>,
    loss: u8,
    // Between the first event of a disturbed period and its heal: the host
    // may fail address operations.
    disturbed: bool,
    // The last transition out of FAULT: the election converges again from
    // there.
    unsettled: Instant,
    wire: BinaryHeap<Reverse<Packet>>,
    seq: u64,
    steps: u64,
    found: Vec<Violation>,
    /// What the run exercised.
    pub stats: Stats,
    /// Human-readable trace of everything that happened.
    pub trace: String,
}

impl Sim {
    /// A simulation of `sc`; nothing runs until [`Sim::run`].
    pub fn new(sc: Scenario) -> Self {
        let n = sc.routers;
        let rng = Rng::new(sc.seed.wrapping_mul(31).wrapping_add(7));
        let mut trace = String::new();
        let _ = writeln!(
            trace,
            "seed {} n={} {:?} ipv6={} unicast={} int={}ms..{}ms preempt={} lower_prio_no_advert={} higher_prio_send_advert={} \
             sync_group={} garp_interval={}ms vip_failures={} release_failures={} max_delay={}us",
            sc.seed,
            n,
            sc.version,
            sc.ipv6,
            sc.unicast,
            sc.adver_int.total_millis(),
            sc.max_adver_int.total_millis(),
            sc.preempt,
            sc.lower_prio_no_advert,
            sc.higher_prio_send_advert,
            sc.sync_group,
            sc.garp_interval.total_millis(),
            sc.vip_failures,
            sc.release_failures,
            sc.max_delay.total_micros()
        );
        for vr in &sc.vrs {
            let _ = writeln!(
                trace,
                "  vrid {} int={}ms vips={:?} prio={:?}",
                vr.vrid,
                vr.adver_int.total_millis(),
                vr.vips,
                vr.priorities
            );
        }
        let routers = (0..n)
            .map(|i| Router {
                engine: None,
                delta: 0,
                files: (0..sc.vrs.len())
                    .map(|v| sc.config(i, v).map(|config| File { config, fault_track: None }))
                    .collect(),
                kernel: BTreeSet::new(),
                retry_due: Vec::new(),
            })
            .collect();
        Sim {
            routers,
            island: vec![0; n],
            loss: 0,
            disturbed: false,
            unsettled: Instant::ZERO,
            wire: BinaryHeap::new(),
            seq: 0,
            steps: 0,
            found: Vec::new(),
            stats: Stats::default(),
            rng,
            now: Instant::ZERO,
            sc,
            trace,
        }
    }

    fn key(&self, v: usize) -> VrKey {
        VrKey { ifindex: 1, ipv6: self.sc.ipv6, vrid: self.sc.vrs[v].vrid }
    }

    fn tracks(&self, i: usize, v: usize) -> TrackSet {
        let r = &self.routers[i];
        let mut t = TrackSet::new();
        t.push(Tracked::new(TRACK_ROUTER, 1, false, TrackStatus::Value(r.delta))).expect("fits");
        if let Some(status) = r.files[v].as_ref().and_then(|f| f.fault_track) {
            t.push(Tracked::new(TRACK_FAULT, 0, false, status)).expect("fits");
        }
        t
    }

    // The record of virtual router v on router i, if its daemon runs.
    fn record(&self, i: usize, v: usize) -> Option<usize> {
        self.routers[i].engine.as_ref()?.lookup(&self.key(v))
    }

    fn start(&mut self, i: usize) {
        let mut e = SimEngine::new();
        let mut idx = Vec::new();
        for v in 0..self.sc.vrs.len() {
            let Some(f) = self.routers[i].files[v].as_ref() else { continue };
            let mut inst = Instance::new(f.config.clone());
            for t in self.tracks(i, v).iter() {
                inst.track(*t).expect("two tracked objects fit");
            }
            match e.add(Record::new(v, self.key(v), inst)) {
                Ok(x) => idx.push(x),
                Err((_, err)) => panic!("seed {}: r{i}: {err}", self.sc.seed),
            }
        }
        if self.sc.sync_group {
            e.add_group(&idx[..2]).expect("the first two instances make a group");
        }
        // The daemon starts by removing addresses no instance configures (a
        // reload while it was down dropped them); its instances release
        // their own at startup.
        let configured: BTreeSet<IpAddr> =
            self.routers[i].files.iter().flatten().flat_map(|f| f.config.vips.iter().copied()).collect();
        self.routers[i].kernel.retain(|a| configured.contains(a));
        self.routers[i].engine = Some(e);
        self.call(i, |e, now, out| e.broadcast(now, Input::Startup, out));
    }

    // One engine call on router i, and everything a host does after it: the
    // outputs carried out in order, then what came of the address actions
    // reported, and so on until the engine has nothing more to say.
    fn call(&mut self, i: usize, f: impl FnOnce(&mut SimEngine, Instant, &mut dyn FnMut(Output))) {
        let now = self.now;
        let mut outs = Vec::new();
        let Some(e) = self.routers[i].engine.as_mut() else { return };
        f(e, now, &mut |o| outs.push(o));
        let mut reports = VecDeque::new();
        self.apply(i, &outs, &mut reports);
        while let Some(report) = reports.pop_front() {
            outs.clear();
            let e = self.routers[i].engine.as_mut().expect("a router that acted runs");
            match report {
                Report::Installed { idx, held } => {
                    e.handle(now, idx, Input::Vips { held }, &mut |o| outs.push(o));
                }
                Report::Removed { idx, ok } => {
                    e.vips_released(now, idx, ok);
                    if !ok {
                        match e.records()[idx].vips() {
                            VipHold::Releasing { retry_at, .. } if retry_at != ASKED => {
                                self.routers[i].retry_due.push((idx, retry_at));
                            }
                            // The instance is master again: its addresses are wanted.
                            VipHold::Held => {}
                            hold => {
                                let vrid = e.records()[idx].instance().config().vrid;
                                let _ = writeln!(self.trace, "r{i} vrid {vrid}: failed removal left {hold:?}");
                                self.found.push(Violation::NoRetry { at: now, router: i, vrid });
                            }
                        }
                    }
                }
            }
            self.apply(i, &outs, &mut reports);
            if let Report::Installed { idx, held: false } = report {
                let rec = &self.routers[i].engine.as_ref().expect("runs").records()[idx];
                if rec.instance().state() == State::Master {
                    let vrid = rec.instance().config().vrid;
                    let hold = rec.vips();
                    self.found.push(Violation::MasterWithoutVips { at: now, router: i, vrid, hold });
                }
            }
        }
        self.invariants(i);
    }

    fn apply(&mut self, i: usize, outs: &[Output], reports: &mut VecDeque<Report>) {
        let now = self.now;
        for o in outs {
            let (idx, action) = match *o {
                Output::Group { group, state } => {
                    self.stats.group_outputs += 1;
                    let _ =
                        writeln!(self.trace, "{:>12}us r{i} group {group} all {}", now.total_micros(), state.as_str());
                    continue;
                }
                Output::Act { idx, action } => (idx, action),
            };
            let e = self.routers[i].engine.as_ref().expect("a router that acted runs");
            let rec = &e.records()[idx];
            let vrid = rec.instance().config().vrid;
            let vips: Vec<IpAddr> = rec.instance().config().vips.iter().copied().collect();
            let hold = rec.vips();
            let state = rec.instance().state();
            let prio = rec.instance().effective_priority();
            match action {
                Action::Transition { from, to, reason } => {
                    self.stats.transitions += 1;
                    if from == State::Fault {
                        self.stats.faults_cleared += 1;
                        self.unsettled = now;
                    }
                    let _ = writeln!(
                        self.trace,
                        "{:>12}us r{i} vrid {vrid} {} -> {} ({reason:?}) prio {}",
                        now.total_micros(),
                        from.as_str(),
                        to.as_str(),
                        prio
                    );
                }
                Action::SendAdvert { priority } => self.send(i, idx, priority),
                Action::AddVips { .. } => {
                    self.routers[i].retry_due.retain(|&(x, _)| x != idx);
                    let fail = self.sc.vip_failures
                        && self.disturbed
                        && self.rng.chance(0.3);
                    // A failed install leaves part of the addresses in.
                    let n = if fail { vips.len() / 2 } else { vips.len() };
                    self.routers[i].kernel.extend(vips[..n].iter().copied());
                    if fail {
                        self.stats.vip_failures += 1;
                        if state == State::Master {
                            self.stats.vip_backoffs += 1;
                        }
                        let _ = writeln!(self.trace, "{:>12}us r{i} vrid {vrid} install fails", now.total_micros());
                    }
                    reports.push_back(Report::Installed { idx, held: !fail });
                }
                Action::RemoveVips => {
                    if self.routers[i].retry_due.iter().any(|&(x, _)| x == idx)
                        || matches!(hold, VipHold::Releasing { retry_at: ASKED, .. })
                    {
                        self.stats.release_retries += 1;
                    }
                    self.routers[i].retry_due.retain(|&(x, _)| x != idx);
                    let fail = self.sc.release_failures && self.disturbed && self.rng.chance(0.3);
                    if fail {
                        self.stats.release_failures += 1;
                        let _ = writeln!(self.trace, "{:>12}us r{i} vrid {vrid} removal fails", now.total_micros());
                    } else {
                        self.routers[i].kernel.retain(|a| !vips.contains(a));
                    }
                    reports.push_back(Report::Removed { idx, ok: !fail });
                }
                Action::SendGarp { .. } => {}
                Action::Discard(reason) => {
                    self.stats.discards[reason as usize] += 1;
                    if matches!(reason, DropReason::Checksum | DropReason::Malformed) {
                        self.found.push(Violation::BadAdvert { at: now, router: i, reason });
                    }
                }
            }
        }
    }

    // The promises that hold after every engine call of router i.
    fn invariants(&mut self, i: usize) {
        let r = &self.routers[i];
        let Some(e) = r.engine.as_ref() else { return };
        let at = self.now;
        for rec in e.records() {
            let inst = rec.instance();
            let (state, hold, vrid) = (inst.state(), rec.vips(), inst.config().vrid);
            if hold == VipHold::Held && state != State::Master {
                self.found.push(Violation::VipsNotMaster { at, router: i, vrid, state });
            }
            if state == State::Master && hold != VipHold::Held {
                self.found.push(Violation::MasterWithoutVips { at, router: i, vrid, hold });
            }
            let vips = &inst.config().vips;
            let kernel_ok = match hold {
                VipHold::Held => vips.iter().all(|a| r.kernel.contains(a)),
                VipHold::Released => !vips.iter().any(|a| r.kernel.contains(a)),
                VipHold::Releasing { retry_at, .. } => {
                    if retry_at == ASKED || retry_at < at {
                        self.found.push(Violation::NoRetry { at, router: i, vrid });
                    }
                    true
                }
            };
            if !kernel_ok {
                self.found.push(Violation::Kernel { at, router: i, vrid, hold });
            }
        }
    }

    fn send(&mut self, from: usize, idx: usize, priority: u8) {
        self.stats.adverts += 1;
        let e = self.routers[from].engine.as_ref().expect("a sender runs");
        let inst = e.records()[idx].instance();
        let repr = inst.advert_repr(priority);
        let src = inst.config().primary_addr;
        let frames: Vec<(IpAddr, Vec<u8>)> = inst
            .advert_destinations()
            .map(|dst| {
                let mut bytes = vec![0u8; repr.buffer_len()];
                repr.emit(&mut VrrpPacket::new_unchecked(&mut bytes[..]), src, dst, ChecksumMode::Rfc)
                    .expect("our own advert emits");
                (dst, bytes)
            })
            .collect();
        for (dst, bytes) in frames {
            let targets: Vec<usize> = if dst.is_multicast() {
                (0..self.routers.len()).filter(|&j| j != from).collect()
            } else {
                (0..self.routers.len()).filter(|&j| self.sc.addr(j) == dst).collect()
            };
            for to in targets {
                if self.island[to] != self.island[from] || self.rng.range(0, 99) < u64::from(self.loss) {
                    continue;
                }
                let delay = self.rng.range(0, self.sc.max_delay.total_micros());
                self.seq += 1;
                self.wire.push(Reverse(Packet {
                    at: self.now + Duration::from_micros(delay),
                    seq: self.seq,
                    from,
                    to,
                    dst,
                    bytes: bytes.clone(),
                }));
            }
        }
    }

    fn deliver(&mut self, p: Packet) {
        let Some(e) = self.routers[p.to].engine.as_ref() else { return };
        let strays = e.stray().unknown_vrid;
        let rx = Received { ifindex: 1, src: self.sc.addr(p.from), dst: p.dst, ttl: 255 };
        self.call(p.to, move |e, now, out| e.receive(now, &rx, &p.bytes, out));
        if let Some(e) = self.routers[p.to].engine.as_ref() {
            self.stats.unknown_vrid += e.stray().unknown_vrid - strays;
        }
    }

    fn event(&mut self, ev: &Event) {
        let _ = writeln!(self.trace, "{:>12}us event {ev:?}", self.now.total_micros());
        self.disturbed = *ev != Event::Heal;
        match *ev {
            Event::Partition(ref islands) => self.island.clone_from(islands),
            Event::Loss(p) => self.loss = p,
            Event::Heal => {
                self.island.iter_mut().for_each(|x| *x = 0);
                self.loss = 0;
            }
            Event::Crash(i) => {
                self.routers[i].engine = None;
                self.routers[i].retry_due.clear();
            }
            Event::Stop(i) => {
                self.call(i, |e, now, out| e.broadcast(now, Input::Shutdown, out));
                self.routers[i].engine = None;
                self.routers[i].retry_due.clear();
            }
            Event::Restart(i) => {
                if self.routers[i].engine.is_none() {
                    self.start(i);
                }
            }
            Event::Priority(i, d) => {
                self.routers[i].delta = d;
                let input = Input::Track { id: TRACK_ROUTER, status: TrackStatus::Value(d) };
                self.call(i, |e, now, out| e.broadcast(now, input, out));
            }
            Event::Reload(i, ref changes) => {
                for (v, c) in changes {
                    self.reload(i, *v, c);
                }
            }
            Event::TrackUp(i, v) => {
                let Some(f) = self.routers[i].files[v].as_mut() else { return };
                if f.fault_track.is_some() {
                    f.fault_track = Some(TrackStatus::Up);
                }
                if let Some(idx) = self.record(i, v) {
                    let input = Input::Track { id: TRACK_FAULT, status: TrackStatus::Up };
                    self.call(i, |e, now, out| e.handle(now, idx, input, out));
                }
            }
        }
    }

    fn reload(&mut self, i: usize, v: usize, change: &Change) {
        let Some(f) = self.routers[i].files[v].as_mut() else { return };
        let old: Vec<IpAddr> = f.config.vips.iter().copied().collect();
        match *change {
            Change::Priority(p) => f.config.priority = p,
            Change::AdverInt(d) => f.config.adver_int = d,
            Change::Vips(ref list) => {
                f.config.vips.clear();
                for a in list {
                    f.config.vips.push(*a).expect("three VIPs fit");
                }
            }
            Change::TrackDown => f.fault_track = Some(TrackStatus::Down),
            Change::Untrack => f.fault_track = None,
        }
        let config = f.config.clone();
        let tracks = self.tracks(i, v);
        let Some(idx) = self.record(i, v) else { return };
        self.stats.reconfigures += 1;
        self.call(i, move |e, now, out| e.reconfigure(now, idx, config, tracks, out));
        // Addresses dropped from the config are the host's to remove.
        let r = &mut self.routers[i];
        let e = r.engine.as_ref().expect("runs");
        let rec = &e.records()[idx];
        let new = &rec.instance().config().vips;
        r.kernel.retain(|a| !old.contains(a) || new.contains(a));
        if rec.instance().state() == State::Fault {
            self.stats.reconfigure_faults += 1;
            let released = match rec.vips() {
                VipHold::Held => false,
                VipHold::Released => !new.iter().any(|a| r.kernel.contains(a)),
                // A removal that failed: the retry is checked on its own.
                VipHold::Releasing { .. } => true,
            };
            if !released {
                let vrid = rec.instance().config().vrid;
                self.found.push(Violation::FaultHolds { at: self.now, router: i, vrid });
            }
        }
    }

    fn next_timer(&self) -> Option<(Instant, usize)> {
        self.routers.iter().enumerate().filter_map(|(i, r)| r.engine.as_ref()?.poll_at().map(|t| (t, i))).min()
    }

    // Failed removals whose retry should have come before `t`.
    fn overdue(&mut self, t: Instant) {
        for (i, r) in self.routers.iter().enumerate() {
            let Some(e) = r.engine.as_ref() else { continue };
            for &(idx, due) in r.retry_due.iter().filter(|&&(_, due)| due < t) {
                let vrid = e.records()[idx].instance().config().vrid;
                let _ = writeln!(self.trace, "r{i} vrid {vrid}: the retry due at {}us never came", due.total_micros());
                self.found.push(Violation::NoRetry { at: t, router: i, vrid });
            }
        }
    }

    /// Advances to `until`, processing packets and timers in time order.
    /// Returns false on an advert storm or a broken promise.
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
                let _ = writeln!(self.trace, "advert storm at {}us", self.now.total_micros());
                self.found.push(Violation::Storm { at: self.now });
                return false;
            }
            self.overdue(next);
            self.now = next;
            if pkt == Some(next) {
                let Some(Reverse(p)) = self.wire.pop() else { break };
                self.deliver(p);
            } else if let Some((_, i)) = timer {
                self.call(i, |e, now, out| e.poll(now, out));
            }
            if !self.found.is_empty() {
                return false;
            }
        }
        self.overdue(until);
        self.now = until;
        self.found.is_empty()
    }

    fn check(&mut self) {
        let at = self.now;
        for (v, vr) in self.sc.vrs.iter().enumerate() {
            let (mut eligible, mut masters) = (Vec::new(), Vec::new());
            for (i, r) in self.routers.iter().enumerate() {
                let Some(e) = r.engine.as_ref() else { continue };
                let Some(rec) = e.records().iter().find(|rec| rec.meta == v) else { continue };
                let inst = rec.instance();
                match inst.state() {
                    State::Master => {
                        masters.push(i);
                        eligible.push((inst.effective_priority(), i));
                    }
                    State::Backup => eligible.push((inst.effective_priority(), i)),
                    State::Fault | State::Initialize => {}
                }
            }
            if masters.len() != usize::from(!eligible.is_empty()) {
                self.found.push(Violation::Masters { at, vrid: vr.vrid, masters: masters.clone() });
            }
            // The rightful master: highest effective priority, then highest address.
            if let (true, [master], Some(&(best, expected))) = (self.sc.preempt, &masters[..], eligible.iter().max()) {
                let mine = eligible.iter().find(|e| e.1 == *master).map_or(0, |e| e.0);
                if *master != expected && mine < best {
                    self.found.push(Violation::NotHighest { at, vrid: vr.vrid, master: *master, expected });
                }
            }
        }
        let mut holders: BTreeMap<IpAddr, Vec<usize>> = BTreeMap::new();
        for (i, r) in self.routers.iter().enumerate() {
            let Some(e) = r.engine.as_ref() else { continue };
            let stale: BTreeSet<IpAddr> = e
                .records()
                .iter()
                .filter(|rec| matches!(rec.vips(), VipHold::Releasing { .. }))
                .flat_map(|rec| rec.instance().config().vips.iter().copied())
                .collect();
            for a in r.kernel.difference(&stale) {
                holders.entry(*a).or_default().push(i);
            }
            if let Some(g) = e.groups().first() {
                let states: Vec<State> =
                    g.members().iter().map(|&m| e.records()[usize::from(m)].instance().state()).collect();
                if states.windows(2).any(|w| w[0] != w[1]) {
                    self.found.push(Violation::GroupSplit { at, router: i, states });
                }
            }
        }
        for (vip, holders) in holders {
            if holders.len() > 1 {
                self.found.push(Violation::VipTwice { at, vip, holders });
            }
        }
    }

    fn finish(&mut self) -> Vec<Violation> {
        if let Some(v) = self.found.first() {
            let _ = writeln!(self.trace, "violation: {v:?}");
        }
        core::mem::take(&mut self.found)
    }

    /// Runs the whole scenario and returns what broke, if anything.
    ///
    /// After each heal it waits for the convergence bound (counted again
    /// from any later transition out of FAULT: the end of a back-off), then
    /// samples the election's promises every quarter interval until the next
    /// disturbance.
    pub fn run(&mut self) -> Vec<Violation> {
        for i in 0..self.routers.len() {
            self.start(i);
        }
        let events = self.sc.events.clone();
        let mut next_event = 0;
        let heals = self.sc.heals.clone();
        let bound = self.sc.convergence_bound();
        let step = Duration::from_micros((self.sc.adver_int.total_micros() / 4).max(1));
        for &heal in &heals {
            // Replay the events up to this heal.
            while next_event < events.len() && events[next_event].0 <= heal {
                let (t, ref ev) = events[next_event];
                if !self.advance(t) {
                    return self.finish();
                }
                self.event(ev);
                next_event += 1;
                if !self.found.is_empty() {
                    return self.finish();
                }
            }
            if !self.advance(heal) {
                return self.finish();
            }
            let quiet_end = events.get(next_event).map_or(self.sc.end, |e| e.0);
            let mut t = heal + bound;
            while t < quiet_end {
                if !self.advance(t) {
                    return self.finish();
                }
                if t >= self.unsettled + bound {
                    self.check();
                    if !self.found.is_empty() {
                        return self.finish();
                    }
                }
                t += step;
            }
        }
        self.finish()
    }
}
