//! The sans-IO VRRP instance: section 6 of RFC 5798 as updated by RFC 9568
//! (VRRPv3), and RFC 3768 (VRRPv2), with keepalived's extensions (FAULT,
//! tracking, preempt_delay, gratuitous ARP schedule).
//!
//! # Driving an instance
//! - Call [`Instance::handle`] with [`Input::Startup`] once, then with every
//!   received advertisement for this VRID, every tracked-object change and
//!   link change, and [`Input::Timer`] whenever `now >= poll_at()`.
//! - Carry out the returned [`Action`]s in order.
//! - Sleep until [`Instance::poll_at`]. A `Timer` input before that instant
//!   is a no-op, so hosts may wake early; they must compare the clock with the
//!   deadline themselves rather than trust that a sleep ended on time.

use core::net::IpAddr;

use super::config::InstanceConfig;
use super::track::{TrackId, TrackSet, TrackStatus, Tracked, Verdict};
use crate::fmt::{debug, trace};
use crate::time::{Duration, Instant};
use crate::wire::{VrrpAddresses, VrrpAuth, VrrpRepr, VrrpVersion};

/// The externally visible state of an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum State {
    /// Not started, or shut down.
    Initialize,
    /// Watching the master.
    Backup,
    /// Holding the virtual addresses and advertising.
    Master,
    /// keepalived's FAULT: the link or a tracked object is down.
    Fault,
}

impl State {
    /// keepalived's upper-case name, as notify scripts and the FIFO print it.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Initialize => "INIT",
            State::Backup => "BACKUP",
            State::Master => "MASTER",
            State::Fault => "FAULT",
        }
    }
}

/// Why a transition happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Reason {
    /// Startup as the address owner, or startup as a non-owner (to Backup).
    Startup,
    /// Master_Down_Timer expired: no advert from a master in time.
    MasterDown,
    /// A priority-0 advert and the skew time that followed it.
    MasterShutdown,
    /// A higher priority (or equal with a larger address) advertised.
    Preempted,
    /// preempt_delay ran out while a lower-priority master advertised.
    PreemptDelay,
    /// The link or a tracked object failed.
    Fault,
    /// The fault cleared.
    FaultCleared,
    /// The sync group moved this member.
    Sync,
    /// An operator's standby or takeover command.
    Admin,
    /// Shutdown.
    Shutdown,
}

/// Why a received advertisement was dropped. Counted per reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u8)]
pub enum DropReason {
    /// IP TTL / hop limit is not 255.
    Ttl = 0,
    /// The VRRP version differs from ours.
    Version,
    /// Not our VRID.
    Vrid,
    /// The authentication type differs from ours.
    AuthType,
    /// The simple-text password differs from ours.
    AuthPass,
    /// VRRPv2: the advert interval differs from ours.
    Interval,
    /// VRRPv3: the advert interval is zero.
    ZeroInterval,
    /// The address list differs from ours, and the sender is not the owner.
    Addresses,
    /// Unicast mode: the source is not a configured peer.
    UnicastSrc,
    /// Our own advert, looped back.
    Own,
    /// The address family differs from ours.
    Family,
    /// Received in a state that ignores adverts (Initialize, Fault).
    NotListening,
    /// The VRRP checksum does not match.
    Checksum,
    /// The message does not parse: too short, an address count or length that does not add
    /// up, an unknown type, an authentication type we do not know, a zero VRRPv2 interval.
    Malformed,
    /// IPsec AH: the integrity check value does not match (another `auth_pass`, or a
    /// changed packet), or the SPI is not the sender's address.
    AhIcv,
    /// IPsec AH: the sequence number is not above the last one taken (a replay, or a
    /// sender that restarted its count while this instance remembers a higher one).
    AhReplay,
}

impl DropReason {
    /// Number of reasons, for counter tables.
    pub const COUNT: usize = 16;

    /// All reasons, in counter order.
    pub const ALL: [DropReason; Self::COUNT] = [
        DropReason::Ttl,
        DropReason::Version,
        DropReason::Vrid,
        DropReason::AuthType,
        DropReason::AuthPass,
        DropReason::Interval,
        DropReason::ZeroInterval,
        DropReason::Addresses,
        DropReason::UnicastSrc,
        DropReason::Own,
        DropReason::Family,
        DropReason::NotListening,
        DropReason::Checksum,
        DropReason::Malformed,
        DropReason::AhIcv,
        DropReason::AhReplay,
    ];

    /// A short name for logs and metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::Ttl => "ttl",
            DropReason::Version => "version",
            DropReason::Vrid => "vrid",
            DropReason::AuthType => "auth_type",
            DropReason::AuthPass => "auth_pass",
            DropReason::Interval => "interval",
            DropReason::ZeroInterval => "zero_interval",
            DropReason::Addresses => "addresses",
            DropReason::UnicastSrc => "unicast_src",
            DropReason::Own => "own",
            DropReason::Family => "family",
            DropReason::NotListening => "not_listening",
            DropReason::Checksum => "checksum",
            DropReason::Malformed => "malformed",
            DropReason::AhIcv => "ah_icv",
            DropReason::AhReplay => "ah_replay",
        }
    }

    /// The reason to count for a message that [`crate::wire::VrrpRepr::parse`] refused.
    pub fn from_wire(e: crate::wire::Error) -> Self {
        use crate::wire::Error;
        match e {
            Error::Checksum => DropReason::Checksum,
            Error::Version(_) => DropReason::Version,
            Error::AddressFamily | Error::V2OverIpv6 | Error::MixedFamilies => DropReason::Family,
            Error::AuthType(_) => DropReason::AuthType,
            Error::AhIcv => DropReason::AhIcv,
            _ => DropReason::Malformed,
        }
    }
}

/// An operator override, from the control socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum AdminMode {
    /// Elect normally.
    #[default]
    Auto,
    /// Give up mastership: advertise priority 1 (priority 0 once, on leaving).
    Standby,
    /// Take mastership: advertise priority 254 and become master at once.
    Takeover,
}

/// A received advertisement, already parsed by [`crate::wire`].
#[derive(Debug, Clone, Copy)]
pub struct Advert<'a> {
    /// The IP source address.
    pub src: IpAddr,
    /// The IP TTL or hop limit.
    pub ttl: u8,
    /// The parsed VRRP message.
    pub repr: &'a VrrpRepr<'a>,
}

/// An input to [`Instance::handle`].
#[derive(Debug, Clone, Copy)]
pub enum Input<'a> {
    /// Leave Initialize.
    Startup,
    /// An advertisement for this VRID arrived.
    Advert(Advert<'a>),
    /// `now` has reached [`Instance::poll_at`] (spurious calls are no-ops).
    Timer,
    /// Shut down: a master sends priority 0 and releases the addresses.
    Shutdown,
    /// The instance's own interface went up or down.
    Link {
        /// Whether the link is running.
        up: bool,
    },
    /// A tracked object changed.
    Track {
        /// The host's handle of the object.
        id: TrackId,
        /// Its new status.
        status: TrackStatus,
    },
    /// The sync group moves this member to Master, Backup or Fault.
    Sync(State),
    /// An operator override.
    Admin(AdminMode),
    /// What came of the host's attempt to install the addresses after
    /// [`Action::AddVips`]: `held: false` (the kernel refused one) makes the
    /// instance give up mastership and stay in FAULT for a back-off that
    /// doubles with each consecutive failure (1 s up to 64 s), so a node that
    /// cannot hold its addresses never advertises as master.
    Vips {
        /// Whether every address is installed.
        held: bool,
    },
}

/// An action the host carries out, in the order returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Action {
    /// The state changed: log it, run notify scripts, write the FIFO.
    Transition {
        /// The state left.
        from: State,
        /// The state entered.
        to: State,
        /// Why.
        reason: Reason,
    },
    /// Send an advertisement with this priority to the group or to every
    /// peer ([`Instance::advert_repr`] builds it).
    SendAdvert {
        /// The priority to advertise (0 when giving up mastership).
        priority: u8,
    },
    /// Install the virtual addresses. `accept` false asks the host to drop
    /// traffic addressed to them (Accept_Mode off, not the owner).
    AddVips {
        /// Whether packets to the VIPs are accepted locally.
        accept: bool,
    },
    /// Remove the virtual addresses.
    RemoveVips,
    /// Send gratuitous ARP (IPv4) or unsolicited NA (IPv6) for every VIP,
    /// `repeat` times each.
    SendGarp {
        /// Messages per address.
        repeat: u8,
    },
    /// A received advert was dropped.
    Discard(DropReason),
}

/// Actions returned by one `handle` call.
pub type Actions = heapless::Vec<Action, 8>;

/// Counters for status and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Counters {
    /// Adverts accepted.
    pub adverts_rx: u64,
    /// Adverts sent (each `SendAdvert` counts once, whatever the peer count).
    pub adverts_tx: u64,
    /// Priority-0 adverts accepted.
    pub prio_zero_rx: u64,
    /// Priority-0 adverts sent.
    pub prio_zero_tx: u64,
    /// State transitions.
    pub transitions: u64,
    /// Times this instance became master.
    pub became_master: u64,
    /// Dropped adverts, indexed by `DropReason as usize`.
    pub drops: [u64; DropReason::COUNT],
    /// Times the host could not install the addresses ([`Input::Vips`]).
    pub vip_failures: u64,
}

// The deadlines live inside the state they belong to, so a timer of another
// state cannot exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Initialize,
    Backup {
        master_down_at: Instant,
        // Master_Adver_Interval: learned from the master in VRRPv3.
        master_adver_int: Duration,
        // Set while a lower-priority master is tolerated for preempt_delay.
        preempt_at: Option<Instant>,
        // The master sent priority 0: the timer holds Skew_Time only.
        master_left: bool,
    },
    Master {
        adver_at: Instant,
        // A delayed burst: when, and its messages per address.
        garp_at: Option<(Instant, u8)>,
        refresh_at: Option<Instant>,
        // The paced rounds of a burst in progress: the next round, and the rounds left.
        rounds: Option<(Instant, u8)>,
    },
    Fault {
        // Set after the host failed to install the addresses: the fault holds
        // until then, whatever the link and the tracked objects say.
        vip_retry_at: Option<Instant>,
    },
}

/// One VRRP instance (one VRID on one interface and address family).
#[derive(Debug, Clone)]
pub struct Instance {
    config: InstanceConfig,
    phase: Phase,
    tracks: TrackSet,
    link_up: bool,
    sync_fault: bool,
    admin: AdminMode,
    // The priority advertised now: configured, moved by tracking and admin.
    priority: u8,
    own_fault: bool,
    // Consecutive failures to install the addresses, for the back-off.
    vip_failures: u8,
    master_addr: Option<IpAddr>,
    counters: Counters,
    // When the state last changed (the `now` of that input).
    since: Option<Instant>,
    // The priority of the last lower-priority advert this master accepted,
    // until the host takes it (`poll_rx_lower`).
    rx_lower: Option<u8>,
    // IPsec AH: the sequence number of the last advert sent or taken (one
    // counter for both, as keepalived keeps it), and the IP identification
    // of the last advert sent.
    ah_seq: u32,
    ip_id: u16,
}

impl Instance {
    /// A new instance in Initialize. The config must pass
    /// [`InstanceConfig::validate`]; the link is assumed up.
    pub fn new(config: InstanceConfig) -> Self {
        let priority = config.priority;
        Instance {
            config,
            phase: Phase::Initialize,
            tracks: TrackSet::new(),
            link_up: true,
            sync_fault: false,
            admin: AdminMode::Auto,
            priority,
            own_fault: false,
            vip_failures: 0,
            master_addr: None,
            counters: Counters::default(),
            since: None,
            rx_lower: None,
            ah_seq: 0,
            ip_id: 0,
        }
    }

    /// Adds a tracked object before startup. Returns it back when full.
    pub fn track(&mut self, t: Tracked) -> Result<(), Tracked> {
        self.tracks.push(t)?;
        self.recompute();
        Ok(())
    }

    /// The configuration.
    pub fn config(&self) -> &InstanceConfig {
        &self.config
    }

    /// The current state.
    pub fn state(&self) -> State {
        match self.phase {
            Phase::Initialize => State::Initialize,
            Phase::Backup { .. } => State::Backup,
            Phase::Master { .. } => State::Master,
            Phase::Fault { .. } => State::Fault,
        }
    }

    /// The priority this instance advertises now.
    pub fn effective_priority(&self) -> u8 {
        self.priority
    }

    /// When the state last changed: the `now` of the input that changed it.
    pub fn since(&self) -> Option<Instant> {
        self.since
    }

    /// Whether the instance is in fault for a reason of its own (link, tracking, addresses it
    /// could not hold), as opposed to its sync group holding it there.
    pub fn own_faulted(&self) -> bool {
        self.own_fault || matches!(self.phase, Phase::Fault { vip_retry_at: Some(_) })
    }

    /// Whether its sync group holds it in fault.
    pub fn sync_faulted(&self) -> bool {
        self.sync_fault
    }

    /// Whether the link runs, as last fed with [`Input::Link`].
    pub fn link_up(&self) -> bool {
        self.link_up
    }

    /// The current master's address, as far as this instance knows.
    pub fn master_addr(&self) -> Option<IpAddr> {
        self.master_addr
    }

    /// The counters.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The tracked objects.
    pub fn tracked(&self) -> impl Iterator<Item = &Tracked> {
        self.tracks.iter()
    }

    /// The operator override in force.
    pub fn admin(&self) -> AdminMode {
        self.admin
    }

    /// Master_Adver_Interval as this instance knows it: learned from the
    /// master in VRRPv3 Backup, else our own Advertisement_Interval.
    pub fn master_adver_int(&self) -> Duration {
        match self.phase {
            Phase::Backup { master_adver_int, .. } => master_adver_int,
            _ => self.config.adver_int,
        }
    }

    /// Skew_Time for a master interval: VRRPv3 `((256 - Priority) *
    /// Master_Adver_Interval) / 256`; VRRPv2 `(256 - Priority) / 256` s.
    pub fn skew_time(&self, master_adver_int: Duration) -> Duration {
        let p = 256 - u64::from(self.priority);
        match self.config.version {
            VrrpVersion::V3 => Duration::from_micros(p * master_adver_int.total_micros() / 256),
            VrrpVersion::V2 => Duration::from_micros(p * 1_000_000 / 256),
        }
    }

    /// Master_Down_Interval: `3 * Master_Adver_Interval + Skew_Time` (VRRPv2
    /// uses its own Advertisement_Interval), with
    /// [`InstanceConfig::down_timer_adverts`] in place of the 3.
    pub fn master_down_interval(&self, master_adver_int: Duration) -> Duration {
        let base = match self.config.version {
            VrrpVersion::V3 => master_adver_int,
            VrrpVersion::V2 => self.config.adver_int,
        };
        base.saturating_mul(u64::from(self.config.down_timer_adverts)) + self.skew_time(master_adver_int)
    }

    /// The priority of the lower-priority advert this instance, as master,
    /// accepted since the last call (keepalived's MASTER_RX_LOWER_PRI: the
    /// host runs `notify_master_rx_lower_pri`). Call it after each
    /// [`Instance::handle`] with an advert; only the last one is kept.
    pub fn poll_rx_lower(&mut self) -> Option<u8> {
        self.rx_lower.take()
    }

    /// IPsec AH: the sequence number and IP identification of the advert of
    /// the last `SendAdvert` action (the same for each of its destinations):
    /// the host builds the datagram with them ([`crate::wire::ah`]).
    pub fn ah_seq(&self) -> (u32, u16) {
        (self.ah_seq, self.ip_id)
    }

    /// IPsec AH replay check, for an advert whose ICV and SPI passed: takes
    /// `seq` and returns true when it is above the last sequence number sent
    /// or taken, else counts [`DropReason::AhReplay`] and returns false. As
    /// keepalived, the check comes before the advert's other checks, and
    /// the counter is the one the instance sends with: a backup that
    /// becomes master goes on from the old master's count.
    pub fn ah_take_seq(&mut self, seq: u32) -> bool {
        if seq > self.ah_seq {
            self.ah_seq = seq;
            true
        } else {
            self.count_drop(DropReason::AhReplay);
            false
        }
    }

    /// The advertisement to send for a `SendAdvert { priority }` action.
    pub fn advert_repr(&self, priority: u8) -> VrrpRepr<'_> {
        VrrpRepr {
            version: self.config.version,
            vrid: self.config.vrid,
            priority,
            max_adver_int: self.config.adver_int.total_centis().min(u64::from(u16::MAX)) as u16,
            auth: self.config.auth,
            addresses: VrrpAddresses::List(&self.config.vips),
        }
    }

    /// Where adverts go: the unicast peers, or the multicast group.
    pub fn advert_destinations(&self) -> impl Iterator<Item = IpAddr> + '_ {
        let group = if self.config.is_unicast() { None } else { Some(self.config.mcast_group) };
        self.config.peers.iter().copied().chain(group)
    }

    /// The next instant at which [`Input::Timer`] has work, if any.
    pub fn poll_at(&self) -> Option<Instant> {
        self.poll_window().map(|(at, _)| at)
    }

    /// The next deadline and the latest instant the host may deliver it at.
    ///
    /// Deadlines that decide mastership (Master_Down, preempt_delay, the end of
    /// a fault back-off) must be met to the microsecond: both instants are the
    /// same. A master's own timers (adverts, gratuitous ARP rounds) may be
    /// delivered up to one grid step late, the grid being a twentieth of the
    /// advert interval (100 µs to 10 ms) counted from [`Instant::ZERO`], so that
    /// the timers of many instances fall on the same instants and share one
    /// wake-up. An advert at most 5% late is far inside any backup's
    /// Master_Down_Interval.
    pub fn poll_window(&self) -> Option<(Instant, Instant)> {
        match self.phase {
            Phase::Initialize | Phase::Fault { vip_retry_at: None } => None,
            Phase::Fault { vip_retry_at: Some(at) } => Some((at, at)),
            Phase::Backup { master_down_at, preempt_at, .. } => {
                let at = preempt_at.map_or(master_down_at, |p| p.min(master_down_at));
                Some((at, at))
            }
            Phase::Master { adver_at, garp_at, refresh_at, rounds } => {
                let mut t = adver_at;
                for x in [garp_at.map(|g| g.0), refresh_at, rounds.map(|r| r.0)].into_iter().flatten() {
                    t = t.min(x);
                }
                let grid = (self.config.adver_int.total_micros() / 20).clamp(100, 10_000);
                let latest = Instant::from_micros(t.total_micros().div_ceil(grid).saturating_mul(grid));
                Some((t, latest))
            }
        }
    }

    /// Feeds one input at `now` and returns the actions to carry out.
    ///
    /// `now` must not go backwards between calls.
    pub fn handle(&mut self, now: Instant, input: Input<'_>) -> Actions {
        let mut out = Actions::new();
        match input {
            Input::Startup => self.startup(now, &mut out),
            Input::Advert(adv) => self.on_advert(now, adv, &mut out),
            Input::Timer => self.on_timer(now, &mut out),
            Input::Shutdown => self.shutdown(&mut out),
            Input::Link { up } => {
                self.link_up = up;
                self.on_health_change(now, &mut out);
            }
            Input::Track { id, status } => {
                if self.tracks.set(id, status) {
                    self.on_health_change(now, &mut out);
                }
            }
            Input::Sync(target) => self.on_sync(now, target, &mut out),
            Input::Vips { held } => self.on_vips(now, held, &mut out),
            Input::Admin(mode) => {
                self.admin = mode;
                match (mode, self.state()) {
                    (AdminMode::Takeover, State::Backup) => {
                        self.recompute();
                        self.become_master(now, Reason::Admin, &mut out)
                    }
                    (AdminMode::Standby, State::Master) => {
                        self.recompute();
                        self.leave_master(now, Reason::Admin, true, &mut out)
                    }
                    _ => self.on_health_change(now, &mut out),
                }
            }
        }
        self.note_change(now, &out);
        out
    }

    fn note_change(&mut self, now: Instant, out: &Actions) {
        if out.iter().any(|a| matches!(a, Action::Transition { .. })) {
            self.since = Some(now);
        }
    }

    fn faulted(&self) -> bool {
        self.own_fault || self.sync_fault || matches!(self.phase, Phase::Fault { vip_retry_at: Some(_) })
    }

    fn on_vips(&mut self, now: Instant, held: bool, out: &mut Actions) {
        if held {
            self.vip_failures = 0;
            return;
        }
        self.counters.vip_failures += 1;
        let backoff = Duration::from_secs(1u64 << self.vip_failures.min(6));
        self.vip_failures = self.vip_failures.saturating_add(1);
        // Only a master asked for the addresses; a report that arrives after it
        // left (a sync group moved it on) is counted and nothing more.
        if let Phase::Master { .. } = self.phase {
            if self.link_up {
                self.send_advert(0, out);
            }
            // Whatever part of the addresses went in comes out again.
            push(out, Action::RemoveVips);
            self.master_addr = None;
            self.set_phase(Phase::Fault { vip_retry_at: Some(now + backoff) }, Reason::Fault, out);
        }
    }

    /// Applies a new configuration (a reload) to the running instance and
    /// returns what follows from it. The instance keeps its state where the new
    /// config allows it:
    /// - a master stays master: it advertises at once with its new priority and
    ///   interval, installs its (possibly new) addresses and sends gratuitous
    ///   ARP / NA for them; addresses dropped from the config are the host's to
    ///   remove, as only it knows where they were installed;
    /// - a master or backup that the new config puts in fault (a tracked
    ///   interface that is down, say) leaves with a priority-0 advert and
    ///   releases its addresses;
    /// - a backup keeps watching the master, and its Master_Down timer moves
    ///   earlier if the new priority shortens it; one that becomes the address
    ///   owner takes over;
    /// - an instance in fault that the new config clears starts electing.
    ///
    /// `tracks` replaces the tracked objects, with their current status.
    /// The caller keeps [`InstanceConfig::vrid`] and the address family: a
    /// config that changes those is another instance.
    pub fn reconfigure(&mut self, now: Instant, config: InstanceConfig, tracks: TrackSet) -> Actions {
        let mut out = Actions::new();
        let old = core::mem::replace(&mut self.config, config);
        let old_priority = self.priority;
        self.tracks = tracks;
        self.recompute();
        let changed = old != self.config || old_priority != self.priority;
        match self.phase {
            Phase::Initialize => {}
            Phase::Fault { .. } => {
                if !self.faulted() {
                    self.enter_running(now, Reason::FaultCleared, &mut out);
                }
            }
            Phase::Backup { .. } | Phase::Master { .. } if self.faulted() => self.enter_fault(&mut out),
            Phase::Master { garp_at, refresh_at, rounds, .. } if changed => {
                self.send_advert(self.priority, &mut out);
                let refresh_at = match (refresh_at, self.config.garp.master_refresh) {
                    (_, d) if d == Duration::ZERO => None,
                    (Some(r), d) if d == old.garp.master_refresh => Some(r),
                    (_, d) => Some(now + d),
                };
                let mut phase_rounds = rounds;
                if old.vips != self.config.vips || old.accept != self.config.accept {
                    push(&mut out, Action::AddVips { accept: self.config.accept || self.config.is_owner() });
                    phase_rounds = self.start_rounds(now, self.config.garp.master_repeat, &mut out);
                }
                self.phase = Phase::Master {
                    adver_at: now + self.config.adver_int,
                    garp_at,
                    refresh_at,
                    rounds: phase_rounds,
                };
            }
            Phase::Master { .. } => {}
            Phase::Backup { master_down_at, master_adver_int, preempt_at, master_left } => {
                if self.priority == 255 {
                    self.become_master(now, Reason::Startup, &mut out);
                } else if changed {
                    let mai = match self.config.version {
                        VrrpVersion::V3 => master_adver_int,
                        VrrpVersion::V2 => self.config.adver_int,
                    };
                    let fresh = if master_left { now + self.skew_time(mai) } else { now + self.master_down_interval(mai) };
                    self.phase = Phase::Backup {
                        master_down_at: master_down_at.min(fresh),
                        master_adver_int: mai,
                        preempt_at: preempt_at.filter(|_| self.config.preempt),
                        master_left,
                    };
                }
            }
        }
        self.note_change(now, &out);
        out
    }

    // Starts a burst of `repeat` gratuitous ARP / NA rounds: all at once without
    // an interval, else the first round now and the others paced by the master
    // phase's timer. Returns the rounds still to send.
    fn start_rounds(&mut self, now: Instant, repeat: u8, out: &mut Actions) -> Option<(Instant, u8)> {
        if repeat == 0 {
            return None;
        }
        let interval = self.config.garp.interval;
        if interval == Duration::ZERO {
            push(out, Action::SendGarp { repeat });
            return None;
        }
        push(out, Action::SendGarp { repeat: 1 });
        (repeat > 1).then(|| (now + interval, repeat - 1))
    }

    // Recomputes priority and own fault from link, tracking and admin.
    fn recompute(&mut self) {
        let verdict = self.tracks.verdict(self.config.priority);
        self.own_fault = !self.link_up || verdict == Verdict::Fault;
        let tracked = match verdict {
            Verdict::Priority(p) => p,
            Verdict::Fault => self.config.priority,
        };
        self.priority = match self.admin {
            AdminMode::Auto => tracked,
            AdminMode::Standby => 1,
            AdminMode::Takeover => tracked.max(254),
        };
    }

    fn startup(&mut self, now: Instant, out: &mut Actions) {
        if self.phase != Phase::Initialize {
            return;
        }
        self.recompute();
        if !self.config.is_owner() || self.faulted() {
            // Addresses a previous run left behind (it crashed, or was killed)
            // must not stay on a node that is not master: release them first.
            push(out, Action::RemoveVips);
        }
        self.enter_running(now, Reason::Startup, out);
    }

    // Initialize or Fault -> Master (owner) or Backup.
    fn enter_running(&mut self, now: Instant, reason: Reason, out: &mut Actions) {
        if self.faulted() {
            self.set_phase(Phase::Fault { vip_retry_at: None }, reason_fault(reason), out);
        } else if self.priority == 255 {
            self.become_master(now, reason, out);
        } else {
            self.enter_backup(now, reason, out);
        }
    }

    fn shutdown(&mut self, out: &mut Actions) {
        if let Phase::Master { .. } = self.phase {
            self.send_advert(0, out);
            push(out, Action::RemoveVips);
        }
        self.master_addr = None;
        self.set_phase(Phase::Initialize, Reason::Shutdown, out);
    }

    fn on_health_change(&mut self, now: Instant, out: &mut Actions) {
        let before = self.priority;
        self.recompute();
        match self.phase {
            Phase::Initialize => {}
            Phase::Fault { .. } => {
                if !self.faulted() {
                    self.enter_running(now, Reason::FaultCleared, out);
                }
            }
            Phase::Backup { .. } | Phase::Master { .. } if self.faulted() => {
                self.enter_fault(out);
            }
            Phase::Master { .. } => {
                // Tell the backups at once: one that now outranks us preempts
                // without waiting for the next interval.
                if before != self.priority {
                    self.send_advert(self.priority, out);
                }
            }
            Phase::Backup { .. } => {
                if self.priority == 255 {
                    self.become_master(now, Reason::Startup, out);
                }
            }
        }
    }

    fn enter_fault(&mut self, out: &mut Actions) {
        if let Phase::Master { .. } = self.phase {
            // A priority-0 advert lets a backup take over after its skew time
            // instead of Master_Down_Interval; pointless when the link is down.
            if self.link_up {
                self.send_advert(0, out);
            }
            push(out, Action::RemoveVips);
        }
        self.master_addr = None;
        self.set_phase(Phase::Fault { vip_retry_at: None }, Reason::Fault, out);
    }

    fn on_sync(&mut self, now: Instant, target: State, out: &mut Actions) {
        match target {
            State::Fault => {
                self.sync_fault = true;
                if matches!(self.phase, Phase::Backup { .. } | Phase::Master { .. }) {
                    self.enter_fault(out);
                }
            }
            State::Master | State::Backup => {
                self.sync_fault = false;
                match (self.phase, target) {
                    (Phase::Fault { .. }, _) if !self.faulted() => {
                        self.enter_running(now, Reason::Sync, out);
                        if target == State::Master && self.state() == State::Backup {
                            self.become_master(now, Reason::Sync, out);
                        }
                    }
                    (Phase::Backup { .. }, State::Master) => {
                        self.become_master(now, Reason::Sync, out)
                    }
                    (Phase::Master { .. }, State::Backup) if self.priority != 255 => {
                        self.leave_master(now, Reason::Sync, false, out)
                    }
                    _ => {}
                }
            }
            State::Initialize => {}
        }
    }

    fn on_timer(&mut self, now: Instant, out: &mut Actions) {
        match self.phase {
            Phase::Backup { master_down_at, preempt_at, master_left, .. } => {
                if preempt_at.is_some_and(|p| p <= now) {
                    self.become_master(now, Reason::PreemptDelay, out);
                } else if master_down_at <= now {
                    let reason = if master_left { Reason::MasterShutdown } else { Reason::MasterDown };
                    self.become_master(now, reason, out);
                }
            }
            Phase::Master { mut adver_at, mut garp_at, mut refresh_at, mut rounds } => {
                if adver_at <= now {
                    self.send_advert(self.priority, out);
                    adver_at = next_deadline(adver_at, self.config.adver_int, now);
                }
                if let Some((at, left)) = rounds {
                    if at <= now {
                        push(out, Action::SendGarp { repeat: 1 });
                        rounds = (left > 1).then(|| (next_deadline(at, self.config.garp.interval, now), left - 1));
                    }
                }
                if let Some((at, repeat)) = garp_at {
                    if at <= now {
                        garp_at = None;
                        // A burst that starts while another is paced replaces it.
                        if repeat > 0 {
                            rounds = self.start_rounds(now, repeat, out);
                        }
                    }
                }
                if let Some(at) = refresh_at {
                    if at <= now {
                        let repeat = self.config.garp.master_refresh_repeat;
                        if repeat > 0 {
                            rounds = self.start_rounds(now, repeat, out);
                        }
                        refresh_at = Some(next_deadline(at, self.config.garp.master_refresh, now));
                    }
                }
                self.phase = Phase::Master { adver_at, garp_at, refresh_at, rounds };
            }
            Phase::Fault { vip_retry_at: Some(at) } => {
                if at <= now {
                    self.phase = Phase::Fault { vip_retry_at: None };
                    if !self.faulted() {
                        self.enter_running(now, Reason::FaultCleared, out);
                    }
                }
            }
            Phase::Initialize | Phase::Fault { vip_retry_at: None } => {}
        }
    }

    fn become_master(&mut self, now: Instant, reason: Reason, out: &mut Actions) {
        let g = self.config.garp;
        let garp_at = (g.master_repeat > 0 && g.master_delay > Duration::ZERO)
            .then(|| (now + g.master_delay, g.master_repeat));
        let refresh_at =
            (g.master_refresh > Duration::ZERO).then(|| now + g.master_refresh);
        self.set_phase(
            Phase::Master { adver_at: now + self.config.adver_int, garp_at, refresh_at, rounds: None },
            reason,
            out,
        );
        self.counters.became_master += 1;
        self.master_addr = Some(self.config.primary_addr);
        self.send_advert(self.priority, out);
        push(out, Action::AddVips { accept: self.config.accept || self.config.is_owner() });
        let rounds = self.start_rounds(now, g.master_repeat, out);
        if let Phase::Master { rounds: r, .. } = &mut self.phase {
            *r = rounds;
        }
    }

    // Master -> Backup. `announce` sends priority 0 first so that the others
    // take over after their skew time (standby).
    fn leave_master(&mut self, now: Instant, reason: Reason, announce: bool, out: &mut Actions) {
        if announce {
            self.send_advert(0, out);
        }
        push(out, Action::RemoveVips);
        self.enter_backup(now, reason, out);
    }

    // Backup with no known master, waiting Master_Down_Interval for one.
    fn enter_backup(&mut self, now: Instant, reason: Reason, out: &mut Actions) {
        let mai = self.config.adver_int;
        let master_down_at = now + self.master_down_interval(mai);
        self.master_addr = None;
        self.set_phase(
            Phase::Backup { master_down_at, master_adver_int: mai, preempt_at: None, master_left: false },
            reason,
            out,
        );
    }

    fn send_advert(&mut self, priority: u8, out: &mut Actions) {
        if let VrrpAuth::Ah(_) = self.config.auth {
            // keepalived stops counting at 0xFFFFFFFE (136 years of 1 s adverts).
            if self.ah_seq <= 0xFFFF_FFFD {
                self.ah_seq += 1;
            }
            self.ip_id = self.ip_id.wrapping_add(1).max(1);
        }
        self.counters.adverts_tx += 1;
        if priority == 0 {
            self.counters.prio_zero_tx += 1;
        }
        push(out, Action::SendAdvert { priority });
    }

    /// Counts a message for this instance that was dropped before it could be
    /// handed over (it did not parse).
    pub fn count_drop(&mut self, reason: DropReason) {
        self.counters.drops[reason as usize] += 1;
    }

    fn discard(&mut self, reason: DropReason, out: &mut Actions) {
        self.counters.drops[reason as usize] += 1;
        trace!("vrrp: drop advert: {}", reason.as_str());
        push(out, Action::Discard(reason));
    }

    // RFC 3768 / RFC 9568 section 7.1: the receiver's checks.
    fn check(&self, adv: &Advert<'_>) -> Result<(), DropReason> {
        let r = adv.repr;
        let c = &self.config;
        if adv.src.is_ipv6() != c.primary_addr.is_ipv6() {
            return Err(DropReason::Family);
        }
        if adv.src == c.primary_addr {
            return Err(DropReason::Own);
        }
        if !c.ttl_ok(adv.src, adv.ttl) {
            return Err(DropReason::Ttl);
        }
        if r.version != c.version {
            return Err(DropReason::Version);
        }
        if r.vrid != c.vrid {
            return Err(DropReason::Vrid);
        }
        if c.is_unicast() && c.check_unicast_src && !c.peers.contains(&adv.src) {
            return Err(DropReason::UnicastSrc);
        }
        match c.version {
            VrrpVersion::V2 => {
                match (r.auth, c.auth) {
                    (VrrpAuth::None, VrrpAuth::None) => {}
                    (VrrpAuth::Simple(a), VrrpAuth::Simple(b)) if a != b => {
                        return Err(DropReason::AuthPass)
                    }
                    (VrrpAuth::Simple(_), VrrpAuth::Simple(_)) => {}
                    // The AH ICV, SPI and sequence number were checked with the
                    // datagram (Engine::receive_ah); the VRRP data bytes are not a key.
                    (VrrpAuth::Ah(_), VrrpAuth::Ah(_)) => {}
                    _ => return Err(DropReason::AuthType),
                }
                if u64::from(r.max_adver_int) * 10_000 != c.adver_int.total_micros() {
                    return Err(DropReason::Interval);
                }
            }
            VrrpVersion::V3 => {
                if r.max_adver_int == 0 {
                    return Err(DropReason::ZeroInterval);
                }
            }
        }
        if c.check_adv_addr
            && r.priority != 255
            && !r.addresses.same_as(&VrrpAddresses::List(&c.vips))
        {
            return Err(DropReason::Addresses);
        }
        Ok(())
    }

    fn on_advert(&mut self, now: Instant, adv: Advert<'_>, out: &mut Actions) {
        if let Err(reason) = self.check(&adv) {
            return self.discard(reason, out);
        }
        let prio = adv.repr.priority;
        let adv_int = Duration::from_centis(u64::from(adv.repr.max_adver_int));
        match self.phase {
            Phase::Initialize | Phase::Fault { .. } => self.discard(DropReason::NotListening, out),
            Phase::Backup { master_adver_int, preempt_at, .. } => {
                self.accepted(prio);
                if prio == 0 {
                    // The master is leaving: take over after Skew_Time only.
                    let master_down_at = now + self.skew_time(master_adver_int);
                    self.master_addr = None;
                    self.phase = Phase::Backup {
                        master_down_at,
                        master_adver_int,
                        preempt_at: None,
                        master_left: true,
                    };
                    return;
                }
                let mai = match self.config.version {
                    VrrpVersion::V3 => adv_int,
                    VrrpVersion::V2 => self.config.adver_int,
                };
                let lower = prio < self.priority;
                let preempt_at = if self.config.preempt && lower {
                    if self.config.preempt_delay == Duration::ZERO {
                        // Discard: Master_Down_Timer runs out and we preempt.
                        return;
                    }
                    Some(preempt_at.unwrap_or(now + self.config.preempt_delay))
                } else {
                    None
                };
                self.master_addr = Some(adv.src);
                self.phase = Phase::Backup {
                    master_down_at: now + self.master_down_interval(mai),
                    master_adver_int: mai,
                    preempt_at,
                    master_left: false,
                };
            }
            Phase::Master { adver_at, garp_at, refresh_at, rounds } => {
                self.accepted(prio);
                if prio == 0 {
                    self.send_advert(self.priority, out);
                    self.phase = Phase::Master {
                        adver_at: now + self.config.adver_int,
                        garp_at,
                        refresh_at,
                        rounds,
                    };
                } else if prio > self.priority
                    || (prio == self.priority
                        && addr_key(adv.src) > addr_key(self.config.primary_addr))
                {
                    if self.config.higher_prio_send_advert {
                        // keepalived's higher_prio_send_advert: one advert of
                        // ours first, so the other master, hearing a lower
                        // priority, re-sends its gratuitous ARPs.
                        self.send_advert(self.priority, out);
                    }
                    push(out, Action::RemoveVips);
                    let mai = match self.config.version {
                        VrrpVersion::V3 => adv_int,
                        VrrpVersion::V2 => self.config.adver_int,
                    };
                    let master_down_at = now + self.master_down_interval(mai);
                    self.master_addr = Some(adv.src);
                    self.set_phase(
                        Phase::Backup { master_down_at, master_adver_int: mai, preempt_at: None, master_left: false },
                        Reason::Preempted,
                        out,
                    );
                } else {
                    self.rx_lower = Some(prio);
                    if let VrrpAuth::Ah(_) = self.config.auth {
                        // As keepalived: go on from the lower-priority sender's count
                        // plus one, so that it takes our next advert.
                        self.ah_seq = self.ah_seq.saturating_add(1);
                    }
                    // keepalived asserts mastership to the lower-priority
                    // sender at once (and restarts its advert timer), so a
                    // split brain heals within one advert; lower_prio_no_advert
                    // keeps to the RFCs, which only discard the advert.
                    let adver_at = if self.config.lower_prio_no_advert {
                        adver_at
                    } else {
                        self.send_advert(self.priority, out);
                        now + self.config.adver_int
                    };
                    let g = self.config.garp;
                    let garp_at = if g.lower_prio_repeat > 0 {
                        Some((now + g.lower_prio_delay, g.lower_prio_repeat))
                    } else {
                        garp_at
                    };
                    self.phase = Phase::Master { adver_at, garp_at, refresh_at, rounds };
                }
            }
        }
    }

    fn accepted(&mut self, prio: u8) {
        self.counters.adverts_rx += 1;
        if prio == 0 {
            self.counters.prio_zero_rx += 1;
        }
    }

    fn set_phase(&mut self, phase: Phase, reason: Reason, out: &mut Actions) {
        let from = self.state();
        self.phase = phase;
        let to = self.state();
        if from != to {
            self.counters.transitions += 1;
            debug!("vrrp: vrid {} {} -> {}", self.config.vrid, from.as_str(), to.as_str());
            push(out, Action::Transition { from, to, reason });
        }
    }
}

fn reason_fault(reason: Reason) -> Reason {
    match reason {
        Reason::Startup | Reason::FaultCleared | Reason::Sync => Reason::Fault,
        r => r,
    }
}

// The next periodic deadline after `prev`, without drifting, but never in the
// past when the host fell behind.
fn next_deadline(prev: Instant, period: Duration, now: Instant) -> Instant {
    let next = prev + period;
    if next <= now { now + period } else { next }
}

// Unsigned comparison of addresses in network byte order (RFC 9568 6.4.3).
fn addr_key(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

fn push(out: &mut Actions, a: Action) {
    // Eight slots hold the longest sequence one input produces (four).
    let _ = out.push(a);
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::vrrp::{GarpConfig, TrackSet, TrackStatus, Tracked};
    use core::net::Ipv4Addr;

    const VIP: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 100));

    fn ip(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, last))
    }

    fn config(version: VrrpVersion, prio: u8, me: u8) -> InstanceConfig {
        let mut c = InstanceConfig::new(7, ip(me));
        c.version = version;
        c.priority = prio;
        c.vips.push(VIP).unwrap();
        c
    }

    fn vips() -> [IpAddr; 1] {
        [VIP]
    }

    fn repr(version: VrrpVersion, prio: u8, cs: u16, vips: &[IpAddr]) -> VrrpRepr<'_> {
        VrrpRepr {
            version,
            vrid: 7,
            priority: prio,
            max_adver_int: cs,
            auth: VrrpAuth::None,
            addresses: VrrpAddresses::List(vips),
        }
    }

    fn advert<'a>(src: u8, r: &'a VrrpRepr<'a>) -> Input<'a> {
        Input::Advert(Advert { src: ip(src), ttl: 255, repr: r })
    }

    fn t(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    fn transitions(a: &Actions) -> heapless::Vec<(State, State, Reason), 4> {
        a.iter()
            .filter_map(|a| match *a {
                Action::Transition { from, to, reason } => Some((from, to, reason)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn test_timer_formulas() {
        // RFC 9568: Skew_Time = ((256 - Priority) * Master_Adver_Interval) / 256.
        let i = Instance::new(config(VrrpVersion::V3, 200, 2));
        let mai = Duration::from_centis(100);
        assert_eq!(i.skew_time(mai), Duration::from_micros(56 * 1_000_000 / 256));
        assert_eq!(i.master_down_interval(mai), Duration::from_micros(3_000_000 + 218_750));
        // RFC 3768: Skew_Time = (256 - Priority) / 256 s, Master_Down_Interval
        // uses the own Advertisement_Interval.
        let mut c = config(VrrpVersion::V2, 100, 2);
        c.adver_int = Duration::from_secs(2);
        let i = Instance::new(c);
        assert_eq!(i.skew_time(Duration::from_secs(9)), Duration::from_micros(609_375));
        assert_eq!(i.master_down_interval(Duration::from_secs(9)), Duration::from_micros(6_609_375));
    }

    #[test]
    fn test_owner_takes_over_at_once() {
        let mut i = Instance::new(config(VrrpVersion::V3, 255, 2));
        let a = i.handle(t(0), Input::Startup);
        assert_eq!(i.state(), State::Master);
        assert_eq!(a[0], Action::Transition { from: State::Initialize, to: State::Master, reason: Reason::Startup });
        assert_eq!(a[1], Action::SendAdvert { priority: 255 });
        assert_eq!(a[2], Action::AddVips { accept: true });
        assert_eq!(a[3], Action::SendGarp { repeat: 5 });
        assert_eq!(i.poll_at(), Some(t(1000)));
    }

    #[test]
    fn test_backup_master_down_and_adverts() {
        let mut i = Instance::new(config(VrrpVersion::V3, 100, 2));
        i.handle(t(0), Input::Startup);
        assert_eq!(i.state(), State::Backup);
        let mdi = 3_000_000 + 156 * 1_000_000 / 256;
        assert_eq!(i.poll_at(), Some(Instant::from_micros(mdi)));
        // A spurious timer is a no-op.
        assert!(i.handle(t(100), Input::Timer).is_empty());
        // A master's advert resets the timer, learning its interval (50 cs).
        let v = vips();
        let r = repr(VrrpVersion::V3, 150, 50, &v);
        assert!(i.handle(t(1000), advert(1, &r)).is_empty());
        assert_eq!(i.master_adver_int(), Duration::from_centis(50));
        assert_eq!(i.master_addr(), Some(ip(1)));
        let mdi = 1_500_000 + 156 * 500_000 / 256;
        assert_eq!(i.poll_at(), Some(t(1000) + Duration::from_micros(mdi)));
        // Silence: master down.
        let at = i.poll_at().unwrap();
        let a = i.handle(at, Input::Timer);
        assert_eq!(transitions(&a).as_slice(), &[(State::Backup, State::Master, Reason::MasterDown)]);
        // As master we advertise our own interval.
        assert_eq!(i.poll_at(), Some(at + Duration::from_secs(1)));
        let a = i.handle(at + Duration::from_secs(1), Input::Timer);
        assert_eq!(a.as_slice(), &[Action::SendAdvert { priority: 100 }]);
        assert_eq!(i.counters().adverts_tx, 2);
    }

    #[test]
    fn test_priority_zero_skew_only() {
        let mut i = Instance::new(config(VrrpVersion::V3, 100, 2));
        i.handle(t(0), Input::Startup);
        let v = vips();
        let r = repr(VrrpVersion::V3, 200, 100, &v);
        i.handle(t(500), advert(1, &r));
        let r0 = repr(VrrpVersion::V3, 0, 100, &v);
        i.handle(t(800), advert(1, &r0));
        assert_eq!(i.poll_at(), Some(t(800) + Duration::from_micros(156 * 1_000_000 / 256)));
        let a = i.handle(i.poll_at().unwrap(), Input::Timer);
        assert_eq!(transitions(&a).as_slice(), &[(State::Backup, State::Master, Reason::MasterShutdown)]);
    }

    #[test]
    fn test_shutdown_sends_priority_zero() {
        let mut i = Instance::new(config(VrrpVersion::V2, 255, 2));
        i.handle(t(0), Input::Startup);
        let a = i.handle(t(10), Input::Shutdown);
        assert_eq!(a[0], Action::SendAdvert { priority: 0 });
        assert_eq!(a[1], Action::RemoveVips);
        assert_eq!(i.state(), State::Initialize);
        assert_eq!(i.poll_at(), None);
        assert_eq!(i.counters().prio_zero_tx, 1);
    }

    #[test]
    fn test_preempt_and_nopreempt() {
        let v = vips();
        let low = repr(VrrpVersion::V2, 50, 100, &v);
        // Preempt: a lower-priority master's adverts are discarded, so the
        // Master_Down_Timer runs out.
        let mut i = Instance::new(config(VrrpVersion::V2, 100, 2));
        i.handle(t(0), Input::Startup);
        let down = i.poll_at().unwrap();
        i.handle(t(1000), advert(1, &low));
        assert_eq!(i.poll_at(), Some(down));
        // nopreempt: they keep resetting it.
        let mut c = config(VrrpVersion::V2, 100, 2);
        c.preempt = false;
        let mut i = Instance::new(c);
        i.handle(t(0), Input::Startup);
        i.handle(t(1000), advert(1, &low));
        assert_eq!(i.poll_at(), Some(t(1000) + i.master_down_interval(Duration::from_secs(1))));
    }

    #[test]
    fn test_preempt_delay() {
        let mut c = config(VrrpVersion::V2, 100, 2);
        c.preempt_delay = Duration::from_secs(10);
        let mut i = Instance::new(c);
        i.handle(t(0), Input::Startup);
        let v = vips();
        let low = repr(VrrpVersion::V2, 50, 100, &v);
        for s in 1..10 {
            assert!(i.handle(t(s * 1000), advert(1, &low)).is_empty());
            assert_eq!(i.state(), State::Backup);
        }
        assert_eq!(i.poll_at(), Some(t(11_000)));
        let a = i.handle(t(11_000), Input::Timer);
        assert_eq!(transitions(&a).as_slice(), &[(State::Backup, State::Master, Reason::PreemptDelay)]);
    }

    #[test]
    fn test_master_receives_higher_lower_equal() {
        let v = vips();
        let mut i = Instance::new(config(VrrpVersion::V3, 255, 5));
        i.handle(t(0), Input::Startup);
        // Lower priority: answer at once (split brain heals in one advert).
        let low = repr(VrrpVersion::V3, 100, 100, &v);
        let a = i.handle(t(300), advert(9, &low));
        assert_eq!(a.as_slice(), &[Action::SendAdvert { priority: 255 }]);
        assert_eq!(i.state(), State::Master);
        // Equal priority, smaller sender address: we stay.
        let eq = repr(VrrpVersion::V3, 255, 100, &v);
        i.handle(t(400), advert(4, &eq));
        assert_eq!(i.state(), State::Master);
        // Equal priority, larger sender address: we yield.
        let a = i.handle(t(500), advert(6, &eq));
        assert_eq!(a[0], Action::RemoveVips);
        assert_eq!(transitions(&a).as_slice(), &[(State::Master, State::Backup, Reason::Preempted)]);
        // Higher priority from master state.
        let mut i = Instance::new(config(VrrpVersion::V3, 100, 5));
        i.handle(t(0), Input::Startup);
        let at = i.poll_at().unwrap();
        i.handle(at, Input::Timer);
        let high = repr(VrrpVersion::V3, 101, 20, &v);
        i.handle(at + Duration::from_millis(1), advert(1, &high));
        assert_eq!(i.state(), State::Backup);
        assert_eq!(i.master_adver_int(), Duration::from_centis(20));
        // Priority 0 to a master: advertise at once, reset the timer.
        let mut i = Instance::new(config(VrrpVersion::V3, 255, 5));
        i.handle(t(0), Input::Startup);
        let zero = repr(VrrpVersion::V3, 0, 100, &v);
        let a = i.handle(t(700), advert(1, &zero));
        assert_eq!(a.as_slice(), &[Action::SendAdvert { priority: 255 }]);
        assert_eq!(i.poll_at(), Some(t(1700)));
    }

    #[test]
    fn test_ttl_multicast_255_unicast_within_the_peer_bounds() {
        let mut c = config(VrrpVersion::V2, 100, 2);
        assert!(c.ttl_ok(ip(1), 255) && !c.ttl_ok(ip(1), 254), "multicast: 255 only");
        c.peers.push(ip(1)).unwrap();
        c.peers.push(ip(3)).unwrap();
        c.peer_ttl.push((250, 254)).unwrap();
        // A routed peer: its bounds decide.
        assert!(c.ttl_ok(ip(1), 250) && c.ttl_ok(ip(1), 254));
        assert!(!c.ttl_ok(ip(1), 249) && !c.ttl_ok(ip(1), 255));
        // A peer without bounds, and a source that is no peer: any TTL (the source check
        // decides about the latter).
        assert!(c.ttl_ok(ip(3), 1) && c.ttl_ok(ip(9), 64));
    }

    #[test]
    fn test_receiver_checks() {
        let v = vips();
        let mut c = config(VrrpVersion::V2, 100, 2);
        c.auth = VrrpAuth::Simple(*b"secret\0\0");
        c.peers.push(ip(1)).unwrap();
        c.peer_ttl.push((255, 255)).unwrap();
        let mut i = Instance::new(c);
        i.handle(t(0), Input::Startup);
        let mut r = repr(VrrpVersion::V2, 150, 100, &v);
        r.auth = VrrpAuth::Simple(*b"secret\0\0");
        let ok = |i: &mut Instance, src: u8, ttl: u8, r: &VrrpRepr<'_>| {
            i.handle(t(10), Input::Advert(Advert { src: ip(src), ttl, repr: r }))
        };
        assert!(ok(&mut i, 1, 255, &r).is_empty());
        assert_eq!(ok(&mut i, 1, 254, &r)[0], Action::Discard(DropReason::Ttl));
        assert_eq!(ok(&mut i, 3, 255, &r)[0], Action::Discard(DropReason::UnicastSrc));
        assert_eq!(ok(&mut i, 2, 255, &r)[0], Action::Discard(DropReason::Own));
        let mut bad = r;
        bad.auth = VrrpAuth::Simple(*b"wrong\0\0\0");
        assert_eq!(ok(&mut i, 1, 255, &bad)[0], Action::Discard(DropReason::AuthPass));
        bad.auth = VrrpAuth::None;
        assert_eq!(ok(&mut i, 1, 255, &bad)[0], Action::Discard(DropReason::AuthType));
        let mut bad = r;
        bad.max_adver_int = 200;
        assert_eq!(ok(&mut i, 1, 255, &bad)[0], Action::Discard(DropReason::Interval));
        let mut bad = r;
        bad.version = VrrpVersion::V3;
        assert_eq!(ok(&mut i, 1, 255, &bad)[0], Action::Discard(DropReason::Version));
        let mut bad = r;
        bad.vrid = 8;
        assert_eq!(ok(&mut i, 1, 255, &bad)[0], Action::Discard(DropReason::Vrid));
        let other = [ip(200)];
        let mut bad = r;
        bad.addresses = VrrpAddresses::List(&other);
        assert_eq!(ok(&mut i, 1, 255, &bad)[0], Action::Discard(DropReason::Addresses));
        // ... unless the sender is the owner.
        bad.priority = 255;
        assert!(ok(&mut i, 1, 255, &bad).is_empty());
        assert_eq!(i.counters().drops[DropReason::Ttl as usize], 1);
        assert_eq!(i.counters().adverts_rx, 2);
    }

    #[test]
    fn test_tracking_priority_and_fault() {
        let mut i = Instance::new(config(VrrpVersion::V3, 255, 2));
        i.track(Tracked::new(1, 0, false, TrackStatus::Up)).unwrap();
        i.track(Tracked::new(2, -20, false, TrackStatus::Up)).unwrap();
        i.handle(t(0), Input::Startup);
        assert_eq!(i.state(), State::Master);
        // Weight 0 down: FAULT, with a priority-0 advert so backups take over fast.
        let a = i.handle(t(10), Input::Track { id: 1, status: TrackStatus::Down });
        assert_eq!(a[0], Action::SendAdvert { priority: 0 });
        assert_eq!(a[1], Action::RemoveVips);
        assert_eq!(i.state(), State::Fault);
        assert_eq!(i.poll_at(), None);
        let a = i.handle(t(20), Input::Track { id: 1, status: TrackStatus::Up });
        assert_eq!(transitions(&a).as_slice(), &[(State::Fault, State::Master, Reason::FaultCleared)]);
        // Link down: FAULT without an advert (the link cannot carry it).
        let a = i.handle(t(30), Input::Link { up: false });
        assert_eq!(a[0], Action::RemoveVips);
        i.handle(t(40), Input::Link { up: true });
        assert_eq!(i.state(), State::Master);

        let mut i = Instance::new(config(VrrpVersion::V3, 100, 2));
        i.track(Tracked::new(2, -20, false, TrackStatus::Up)).unwrap();
        i.handle(t(0), Input::Startup);
        i.handle(i.poll_at().unwrap(), Input::Timer);
        let a = i.handle(t(5000), Input::Track { id: 2, status: TrackStatus::Down });
        assert_eq!(a.as_slice(), &[Action::SendAdvert { priority: 80 }]);
        assert_eq!(i.effective_priority(), 80);
    }

    #[test]
    fn test_fault_at_startup() {
        let mut i = Instance::new(config(VrrpVersion::V3, 100, 2));
        i.handle(t(0), Input::Link { up: false });
        let a = i.handle(t(0), Input::Startup);
        assert_eq!(transitions(&a).as_slice(), &[(State::Initialize, State::Fault, Reason::Fault)]);
    }

    #[test]
    fn test_garp_schedule() {
        let mut c = config(VrrpVersion::V3, 255, 2);
        c.garp = GarpConfig {
            master_delay: Duration::from_millis(1500),
            master_repeat: 3,
            master_refresh: Duration::from_secs(4),
            master_refresh_repeat: 2,
            lower_prio_delay: Duration::from_millis(200),
            lower_prio_repeat: 1,
            interval: Duration::ZERO,
        };
        let mut i = Instance::new(c);
        i.handle(t(0), Input::Startup);
        let mut garps: heapless::Vec<(u64, u8), 16> = heapless::Vec::new();
        while let Some(at) = i.poll_at() {
            if at > t(8500) {
                break;
            }
            for a in i.handle(at, Input::Timer) {
                if let Action::SendGarp { repeat } = a {
                    garps.push((at.total_millis(), repeat)).unwrap();
                }
            }
        }
        assert_eq!(garps.as_slice(), &[(1500, 3), (4000, 2), (8000, 2)]);
        let v = vips();
        let low = repr(VrrpVersion::V3, 10, 100, &v);
        i.handle(t(8600), advert(1, &low));
        assert_eq!(i.poll_at(), Some(t(8800)));
        assert!(i.handle(t(8800), Input::Timer).contains(&Action::SendGarp { repeat: 1 }));
    }

    #[test]
    fn test_admin_standby_takeover() {
        let mut i = Instance::new(config(VrrpVersion::V3, 200, 2));
        i.handle(t(0), Input::Startup);
        i.handle(i.poll_at().unwrap(), Input::Timer);
        let a = i.handle(t(5000), Input::Admin(AdminMode::Standby));
        assert_eq!(a[0], Action::SendAdvert { priority: 0 });
        assert_eq!(i.state(), State::Backup);
        assert_eq!(i.effective_priority(), 1);
        let a = i.handle(t(6000), Input::Admin(AdminMode::Takeover));
        assert_eq!(i.state(), State::Master);
        assert!(a.contains(&Action::SendAdvert { priority: 254 }));
        i.handle(t(7000), Input::Admin(AdminMode::Auto));
        assert_eq!(i.effective_priority(), 200);
    }

    #[test]
    fn test_reconfigure_keeps_state_where_it_can() {
        // A master whose priority drops stays master and tells the backups at once.
        let mut i = Instance::new(config(VrrpVersion::V3, 200, 2));
        i.handle(t(0), Input::Startup);
        i.handle(i.poll_at().unwrap(), Input::Timer);
        let mut c = config(VrrpVersion::V3, 120, 2);
        let a = i.reconfigure(t(5000), c.clone(), TrackSet::new());
        assert_eq!(a.as_slice(), &[Action::SendAdvert { priority: 120 }]);
        assert_eq!(i.state(), State::Master);
        assert_eq!(i.poll_at(), Some(t(6000)));
        // A new address list is installed and announced, without a transition.
        c.vips.push(ip(101)).unwrap();
        let a = i.reconfigure(t(5500), c.clone(), TrackSet::new());
        assert_eq!(
            a.as_slice(),
            &[Action::SendAdvert { priority: 120 }, Action::AddVips { accept: false }, Action::SendGarp { repeat: 5 }]
        );
        // The same config again: nothing at all.
        assert!(i.reconfigure(t(5600), c, TrackSet::new()).is_empty());

        // A backup made the owner takes over at once.
        let mut b = Instance::new(config(VrrpVersion::V3, 100, 2));
        b.handle(t(0), Input::Startup);
        let a = b.reconfigure(t(100), config(VrrpVersion::V3, 255, 2), TrackSet::new());
        assert_eq!(transitions(&a).as_slice(), &[(State::Backup, State::Master, Reason::Startup)]);
        // A backup whose priority rises waits less for the master, never more.
        let mut b = Instance::new(config(VrrpVersion::V3, 10, 2));
        b.handle(t(0), Input::Startup);
        let before = b.poll_at().unwrap();
        assert!(b.reconfigure(t(10), config(VrrpVersion::V3, 250, 2), TrackSet::new()).is_empty());
        assert!(b.poll_at().unwrap() < before);

        // An instance in fault that the new config clears starts electing.
        let mut f = Instance::new(config(VrrpVersion::V3, 100, 2));
        f.track(Tracked::new(1, 0, false, TrackStatus::Down)).unwrap();
        f.handle(t(0), Input::Startup);
        assert_eq!(f.state(), State::Fault);
        let a = f.reconfigure(t(10), config(VrrpVersion::V3, 100, 2), TrackSet::new());
        assert_eq!(transitions(&a).as_slice(), &[(State::Fault, State::Backup, Reason::FaultCleared)]);
    }

    #[test]
    fn test_startup_releases_leftovers_unless_owner() {
        let mut i = Instance::new(config(VrrpVersion::V3, 100, 2));
        let a = i.handle(t(0), Input::Startup);
        assert_eq!(a[0], Action::RemoveVips);
        let mut o = Instance::new(config(VrrpVersion::V3, 255, 2));
        assert!(!o.handle(t(0), Input::Startup).contains(&Action::RemoveVips));
        // An owner that starts in FAULT will not install them: it releases
        // what a previous run left behind too (simulator seed 657).
        let mut f = Instance::new(config(VrrpVersion::V3, 255, 2));
        f.track(Tracked::new(1, 0, false, TrackStatus::Down)).unwrap();
        let a = f.handle(t(0), Input::Startup);
        assert_eq!(a[0], Action::RemoveVips);
        assert_eq!(f.state(), State::Fault);
    }

    // A master with priority 200 at 10.0.0.5, 1 s adverts, started at t=0,
    // and the instant 600 ms after it became master (its next advert is due
    // 400 ms later).
    fn master_200(c: impl FnOnce(&mut InstanceConfig)) -> (Instance, Instant) {
        let mut cfg = config(VrrpVersion::V3, 200, 5);
        c(&mut cfg);
        let mut i = Instance::new(cfg);
        i.handle(t(0), Input::Startup);
        let at = i.poll_at().unwrap();
        i.handle(at, Input::Timer);
        assert_eq!(i.state(), State::Master);
        (i, at + Duration::from_millis(600))
    }

    #[test]
    fn test_lower_prio_no_advert() {
        let v = vips();
        let low = repr(VrrpVersion::V3, 100, 100, &v);
        // keepalived's default: answer a lower priority at once and restart the advert timer.
        let (mut i, now) = master_200(|_| {});
        let a = i.handle(now, advert(9, &low));
        assert_eq!(a.as_slice(), &[Action::SendAdvert { priority: 200 }]);
        assert_eq!(i.poll_at(), Some(now + Duration::from_secs(1)));
        assert_eq!(i.poll_rx_lower(), Some(100));
        assert_eq!(i.poll_rx_lower(), None);
        // lower_prio_no_advert: nothing on the wire, the advert timer as it was, the event still.
        let (mut i, now) = master_200(|c| c.lower_prio_no_advert = true);
        let due = i.poll_at().unwrap();
        let tx = i.counters().adverts_tx;
        let a = i.handle(now, advert(9, &low));
        assert!(a.is_empty(), "{a:?}");
        assert_eq!(i.poll_at(), Some(due));
        assert_eq!(i.counters().adverts_tx, tx);
        assert_eq!(i.state(), State::Master);
        assert_eq!(i.poll_rx_lower(), Some(100));
        // The garp_lower_prio burst does not depend on it.
        let (mut i, now) = master_200(|c| {
            c.lower_prio_no_advert = true;
            c.garp.lower_prio_repeat = 2;
            c.garp.lower_prio_delay = Duration::ZERO;
        });
        i.handle(now, advert(9, &low));
        assert_eq!(i.poll_at(), Some(now));
        assert!(i.handle(now, Input::Timer).contains(&Action::SendGarp { repeat: 2 }));
        // A higher priority, a priority 0 and a backup's view are no MASTER_RX_LOWER_PRI.
        let (mut i, _) = master_200(|_| {});
        i.handle(t(5000), advert(9, &repr(VrrpVersion::V3, 0, 100, &v)));
        assert_eq!(i.poll_rx_lower(), None);
        i.handle(t(5100), advert(9, &repr(VrrpVersion::V3, 250, 100, &v)));
        assert_eq!(i.state(), State::Backup);
        i.handle(t(5200), advert(9, &low));
        assert_eq!(i.poll_rx_lower(), None);
    }

    #[test]
    fn test_higher_prio_send_advert() {
        let v = vips();
        let high = repr(VrrpVersion::V3, 250, 100, &v);
        // Default: give way without a word.
        let (mut i, _) = master_200(|_| {});
        let a = i.handle(t(5000), advert(9, &high));
        assert!(!a.iter().any(|a| matches!(a, Action::SendAdvert { .. })), "{a:?}");
        assert_eq!(i.state(), State::Backup);
        // higher_prio_send_advert: our own advert first, then release and backup.
        let (mut i, _) = master_200(|c| c.higher_prio_send_advert = true);
        let a = i.handle(t(5000), advert(9, &high));
        assert_eq!(a[0], Action::SendAdvert { priority: 200 });
        assert_eq!(a[1], Action::RemoveVips);
        assert_eq!(transitions(&a).as_slice(), &[(State::Master, State::Backup, Reason::Preempted)]);
        // Equal priority, larger address: the same.
        let (mut i, _) = master_200(|c| c.higher_prio_send_advert = true);
        let a = i.handle(t(5000), advert(9, &repr(VrrpVersion::V3, 200, 100, &v)));
        assert_eq!(a[0], Action::SendAdvert { priority: 200 });
        assert_eq!(i.state(), State::Backup);
    }

    #[test]
    fn test_down_timer_adverts() {
        let v = vips();
        for (n, vers) in [(1u8, VrrpVersion::V3), (5, VrrpVersion::V3), (100, VrrpVersion::V2), (3, VrrpVersion::V2)] {
            let mut c = config(vers, 150, 5);
            c.down_timer_adverts = n;
            assert_eq!(c.validate(), Ok(()));
            let mut i = Instance::new(c);
            let skew = i.skew_time(Duration::from_secs(1));
            assert_eq!(i.master_down_interval(Duration::from_secs(1)), Duration::from_secs(u64::from(n)) + skew);
            // A backup hearing a master at t=1 s takes over N intervals and the skew later.
            i.handle(t(0), Input::Startup);
            i.handle(t(1000), advert(9, &repr(vers, 200, 100, &v)));
            let at = t(1000) + Duration::from_secs(u64::from(n)) + skew;
            assert_eq!(i.poll_at(), Some(at), "down_timer_adverts {n}");
            assert!(i.handle(t(1000) + Duration::from_secs(u64::from(n)), Input::Timer).is_empty());
            let a = i.handle(at, Input::Timer);
            assert_eq!(transitions(&a).as_slice(), &[(State::Backup, State::Master, Reason::MasterDown)]);
        }
        // VRRPv3 uses the interval learned from the master.
        let mut c = config(VrrpVersion::V3, 150, 5);
        c.down_timer_adverts = 2;
        let mut i = Instance::new(c);
        i.handle(t(0), Input::Startup);
        i.handle(t(1000), advert(9, &repr(VrrpVersion::V3, 200, 50, &v)));
        let mai = Duration::from_centis(50);
        assert_eq!(i.poll_at(), Some(t(1000) + Duration::from_millis(1000) + i.skew_time(mai)));
        for bad in [0u8, 101, 255] {
            let mut c = config(VrrpVersion::V3, 150, 5);
            c.down_timer_adverts = bad;
            assert_eq!(c.validate(), Err(crate::vrrp::ConfigError::DownTimerAdverts));
        }
    }
}
