//! A copy of the daemon's VRRP state, taken by the VRRP loop in one pass and read elsewhere.
//!
//! Everything that reports state in bulk (Prometheus metrics, keepalived's state dumps, the
//! SNMP subagent) renders from a [`Snapshot`] on another thread: the loop only copies what it
//! knows, which costs a few microseconds per instance, and never formats text or walks a MIB.

use std::net::IpAddr;
use std::time::SystemTime;

use hav_core::vrrp::{AdminMode, Counters, GarpConfig, Record, State, Stray, VipHold};
use hav_core::wire::{VrrpAuth, VrrpVersion};

use super::plan::InstancePlan;

/// One instance as the loop saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceView {
    /// The config's instance name.
    pub name: String,
    /// The base interface.
    pub ifname: String,
    /// Its index.
    pub ifindex: u32,
    /// The interface adverts leave from (the VMAC, or the base interface).
    pub xmit_ifname: String,
    /// The VMAC's name and address, with `use_vmac`.
    pub vmac: Option<(String, [u8; 6])>,
    /// The virtual router id.
    pub vrid: u8,
    /// IPv6 instead of IPv4.
    pub ipv6: bool,
    /// VRRP version on the wire.
    pub version: VrrpVersion,
    /// The state now.
    pub state: State,
    /// The state named in the config (`state MASTER`), as keepalived reports it.
    pub want_master: bool,
    /// Configured priority.
    pub priority: u8,
    /// Priority advertised now (tracking and operator commands applied).
    pub effective_priority: u8,
    /// The advert source.
    pub primary_addr: IpAddr,
    /// The master as this instance knows it.
    pub master_addr: Option<IpAddr>,
    /// The addresses carried in adverts.
    pub vips: Vec<IpAddr>,
    /// Every address installed while master, with prefix and device (excluded ones too).
    pub vip_specs: Vec<(IpAddr, u8, String)>,
    /// Unicast peers (empty: multicast).
    pub peers: Vec<IpAddr>,
    /// Advertisement interval in centiseconds.
    pub adver_int_cs: u64,
    /// Master_Adver_Interval as learned, in centiseconds.
    pub master_adver_int_cs: u64,
    /// Preempt mode.
    pub preempt: bool,
    /// preempt_delay in milliseconds.
    pub preempt_delay_ms: u64,
    /// Accept mode (or the owner).
    pub accept: bool,
    /// The operator override in force.
    pub admin: AdminMode,
    /// Whether the host holds the VIPs.
    pub hold: VipHold,
    /// The instance's counters.
    pub counters: Counters,
    /// When the state last changed, on the wall clock.
    pub since: Option<SystemTime>,
    /// Tracked objects: (kind and name as `interface:eth1`, weight, status as hav-core says).
    pub tracks: Vec<(String, i16, String)>,
    /// Whether the instance's interface is running, as the engine was last told.
    pub link_up: bool,
    /// The instance's next deadline on the wall clock (the next advert of a master, the
    /// master-down time of a backup); `None` when no timer runs (Initialize, Fault).
    pub deadline: Option<SystemTime>,
    /// Master_Down_Interval now, in microseconds (3 x Master_Adver_Interval + Skew_Time).
    pub master_down_us: u64,
    /// The base interface's hardware address.
    pub mac: [u8; 6],
    /// The base interface's addresses as last read.
    pub addrs: Vec<IpAddr>,
    /// The VRRPv2 authentication in force.
    pub auth: VrrpAuth,
    /// The multicast group adverts go to (unused with unicast peers).
    pub mcast_group: IpAddr,
    /// The gratuitous ARP / NA schedule in force.
    pub garp: GarpConfig,
    /// Whether adverts must carry our address list.
    pub check_adv_addr: bool,
    /// Whether unicast adverts must come from a configured peer.
    pub check_unicast_src: bool,
}

#[cfg(test)]
impl InstanceView {
    /// A master of VRID 51 on eth0 with one VIP, named `name`, for renderer tests.
    pub(crate) fn for_test(name: &str) -> InstanceView {
        let a = |s: &str| s.parse::<IpAddr>().expect("address");
        InstanceView {
            name: name.to_owned(),
            ifname: "eth0".into(),
            ifindex: 2,
            xmit_ifname: "eth0".into(),
            vmac: None,
            vrid: 51,
            ipv6: false,
            version: VrrpVersion::V2,
            state: State::Master,
            want_master: false,
            priority: 150,
            effective_priority: 150,
            primary_addr: a("10.0.0.1"),
            master_addr: Some(a("10.0.0.1")),
            vips: vec![a("10.0.0.200")],
            vip_specs: vec![(a("10.0.0.200"), 24, "eth0".into())],
            peers: Vec::new(),
            adver_int_cs: 100,
            master_adver_int_cs: 100,
            preempt: true,
            preempt_delay_ms: 0,
            accept: true,
            admin: AdminMode::Auto,
            hold: VipHold::Held,
            counters: Counters { adverts_tx: 3, became_master: 1, ..Counters::default() },
            since: None,
            tracks: Vec::new(),
            link_up: true,
            deadline: None,
            master_down_us: 3_414_062,
            mac: [2, 0, 0, 0, 0, 1],
            addrs: vec![a("10.0.0.1")],
            auth: VrrpAuth::None,
            mcast_group: a("224.0.0.18"),
            garp: GarpConfig {
                master_delay: hav_core::Duration::ZERO,
                master_repeat: 5,
                master_refresh: hav_core::Duration::ZERO,
                master_refresh_repeat: 1,
                lower_prio_delay: hav_core::Duration::ZERO,
                lower_prio_repeat: 5,
                interval: hav_core::Duration::ZERO,
            },
            check_adv_addr: true,
            check_unicast_src: false,
        }
    }
}

/// The daemon's VRRP state at one instant.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// When it was taken.
    pub at: SystemTime,
    /// When the daemon started.
    pub started: SystemTime,
    /// Every instance, in config order.
    pub instances: Vec<InstanceView>,
    /// Messages dropped before any instance saw them.
    pub stray: Stray,
    /// Address changes the kernel refused.
    pub vip_errors: u64,
    /// Adverts the kernel refused to send.
    pub send_errors: u64,
    /// Sync groups: name, member names, the state all agree on.
    pub groups: Vec<(String, Vec<String>, Option<State>)>,
}

impl Snapshot {
    /// Copies the state of `records`; `started` and `start` tie the engine's monotonic clock
    /// to the wall clock.
    pub fn capture(
        records: &[Record<InstancePlan>],
        groups: &[(String, Vec<String>, Option<State>)],
        stray: Stray,
        errors: (u64, u64),
        clock: (SystemTime, std::time::Instant),
    ) -> Snapshot {
        let (started, start) = clock;
        // One reading of both clocks for the whole pass; engine instants before it (a
        // transition) and after it (a deadline) are placed on the wall clock from it.
        let (mono_now, wall_now) = (std::time::Instant::now(), SystemTime::now());
        let wall = |t: hav_core::Instant| {
            let at = start + std::time::Duration::from_micros(t.total_micros());
            match at.checked_duration_since(mono_now) {
                Some(ahead) => wall_now.checked_add(ahead),
                None => wall_now.checked_sub(mono_now.saturating_duration_since(at)),
            }
        };
        let instances = records
            .iter()
            .map(|r| {
                let (p, i) = (&r.meta, r.instance());
                let c = i.config();
                InstanceView {
                    name: p.name.clone(),
                    ifname: p.ifname.clone(),
                    ifindex: r.key().ifindex,
                    xmit_ifname: p.xmit_iface().to_owned(),
                    vmac: p.vmac.as_ref().map(|v| (v.name.clone(), v.mac)),
                    vrid: c.vrid,
                    ipv6: r.key().ipv6,
                    version: c.version,
                    state: i.state(),
                    want_master: p.want_master,
                    priority: c.priority,
                    effective_priority: i.effective_priority(),
                    primary_addr: c.primary_addr,
                    master_addr: i.master_addr(),
                    vips: c.vips.iter().copied().collect(),
                    vip_specs: p.vips.iter().map(|v| (v.spec.addr, v.spec.prefix, v.dev.clone())).collect(),
                    peers: c.peers.iter().copied().collect(),
                    adver_int_cs: c.adver_int.total_centis(),
                    master_adver_int_cs: i.master_adver_int().total_centis(),
                    preempt: c.preempt,
                    preempt_delay_ms: c.preempt_delay.total_millis(),
                    accept: c.accept || c.is_owner(),
                    admin: i.admin(),
                    hold: r.vips(),
                    counters: *i.counters(),
                    since: i.since().and_then(wall),
                    tracks: p
                        .tracks
                        .iter()
                        .zip(i.tracked())
                        .map(|(u, t)| (u.obj.to_string(), u.weight, format!("{:?}", t.status)))
                        .collect(),
                    link_up: i.link_up(),
                    deadline: i.poll_at().and_then(wall),
                    master_down_us: i.master_down_interval(i.master_adver_int()).total_micros(),
                    mac: p.mac,
                    addrs: p.addrs.clone(),
                    auth: c.auth,
                    mcast_group: c.mcast_group,
                    garp: c.garp,
                    check_adv_addr: c.check_adv_addr,
                    check_unicast_src: c.check_unicast_src,
                }
            })
            .collect();
        Snapshot {
            at: wall_now,
            started,
            instances,
            stray,
            vip_errors: errors.0,
            send_errors: errors.1,
            groups: groups.to_vec(),
        }
    }
}

/// Something the VRRP loop announces as it happens, for readers that must not wait for the
/// next snapshot (SNMP notifications). Sent on a bounded broadcast channel: a reader that falls
/// behind loses the oldest events, never delays the loop.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// An instance changed state.
    Transition {
        /// The instance's name.
        instance: String,
        /// Its interface index, VRID and family (the MIB's row index).
        ifindex: u32,
        /// The VRID.
        vrid: u8,
        /// IPv6 instead of IPv4.
        ipv6: bool,
        /// The state left.
        from: State,
        /// The state entered.
        to: State,
        /// Why, as hav-core says.
        reason: hav_core::vrrp::Reason,
        /// The master as the instance knows it now (itself when it became master).
        master: Option<IpAddr>,
    },
    /// An advert was dropped for a protocol error.
    ProtoError {
        /// The instance's name.
        instance: String,
        /// Its interface index.
        ifindex: u32,
        /// The VRID.
        vrid: u8,
        /// IPv6 instead of IPv4.
        ipv6: bool,
        /// Why.
        reason: hav_core::vrrp::DropReason,
    },
}

/// Events kept for a reader that is behind.
pub const EVENT_BACKLOG: usize = 1024;
