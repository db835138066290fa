//! From the typed config to what the daemon runs: one [`InstancePlan`] per
//! `vrrp_instance`, with interfaces resolved and hav-core's
//! [`InstanceConfig`] built. Pure apart from the interface lookup, which the
//! caller supplies, so it is tested without a network.

use std::collections::HashMap;
use std::net::IpAddr;

use hav_core::vrrp::{GarpConfig, InstanceConfig, VrKey, MAX_PEERS, MAX_VIPS};
use hav_core::wire::{VrrpAuth, VrrpVersion as WireVersion};
use hav_core::Duration as CoreDuration;

use crate::config::error::Location;
use crate::config::vrrp::{AuthType, Notify, VrrpInstance, VrrpVersion};
use crate::config::{Config, Warning};
use crate::net::netlink::AddrSpec;

/// What the daemon needs to know about one interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfaceInfo {
    /// Interface index.
    pub index: u32,
    /// Interface name.
    pub name: String,
    /// Hardware address.
    pub mac: [u8; 6],
    /// Running (up with carrier).
    pub up: bool,
    /// Its addresses, in kernel order.
    pub addrs: Vec<IpAddr>,
}

/// A tracked object, shared by every instance that tracks it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TrackObj {
    /// `track_interface NAME`.
    Interface(String),
    /// `track_script NAME` (a `vrrp_script`).
    Script(String),
    /// `track_file NAME` (a `vrrp_track_file`).
    File(String),
    /// `track_process NAME` (a `vrrp_track_process`).
    Process(String),
}

impl std::fmt::Display for TrackObj {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TrackObj::Interface(n) => write!(f, "interface:{n}"),
            TrackObj::Script(n) => write!(f, "script:{n}"),
            TrackObj::File(n) => write!(f, "file:{n}"),
            TrackObj::Process(n) => write!(f, "process:{n}"),
        }
    }
}

/// One tracked object of an instance, with the weight that applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackUse {
    /// The object.
    pub obj: TrackObj,
    /// keepalived's weight (0: down means FAULT).
    pub weight: i16,
    /// `reverse`.
    pub reverse: bool,
}

/// A virtual address to install, and on which interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VipPlan {
    /// The address and its attributes.
    pub spec: AddrSpec,
    /// The interface name (`dev`, or the instance's interface or VMAC).
    pub dev: String,
}

/// `use_vmac`: the macvlan to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmacPlan {
    /// Its name (`vrrp.VRID` by default).
    pub name: String,
    /// Its MAC, 00-00-5E-00-01-VRID (or 02-VRID for IPv6).
    pub mac: [u8; 6],
    /// Send adverts from the base interface instead.
    pub xmit_base: bool,
}

/// What the daemon keeps beside the core instance for one `vrrp_instance`: the host's half of
/// its engine record. The key, the election config and the link state live in the record
/// itself ([`hav_core::vrrp::Record`]), not here.
#[derive(Debug, Clone, PartialEq)]
pub struct InstancePlan {
    /// The instance name.
    pub name: String,
    /// Where it is written.
    pub location: Location,
    /// The base interface's name (adverts arrive there; its index is the record's key).
    pub ifname: String,
    /// The base interface's hardware address.
    pub mac: [u8; 6],
    /// The base interface's addresses as last read.
    pub addrs: Vec<IpAddr>,
    /// Addresses installed while master: carried ones, then excluded ones.
    pub vips: Vec<VipPlan>,
    /// The VMAC, if any.
    pub vmac: Option<VmacPlan>,
    /// Tracked objects.
    pub tracks: Vec<TrackUse>,
    /// Notify scripts.
    pub notify: Notify,
    /// `smtp_alert`.
    pub smtp_alert: bool,
    /// Instances named `state MASTER` (logged; the election decides).
    pub want_master: bool,
    /// `promote_secondaries`: the sysctl of that name is set on the interface (and the VMAC).
    pub promote_secondaries: bool,
    /// `dont_track_primary`: the interface's link state does not fault the instance (losing
    /// the address its adverts leave from still does).
    pub dont_track_primary: bool,
    /// `garp_extra_if` / `vrrp_garp_extra_if` in effect: every interval while master, one
    /// gratuitous ARP / unsolicited NA for each of these VIPs (indexes into `vips`).
    pub garp_extra: Option<GarpExtra>,
    /// `unicast_ttl`: the TTL / hop limit of adverts to unicast peers (`None`: the socket's,
    /// 255 for IPv4 and the kernel's default hop limit for IPv6, as keepalived).
    pub unicast_ttl: Option<u8>,
}

/// The periodic gratuitous ARP / NA on the extra interfaces of an instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GarpExtra {
    /// Between two rounds.
    pub interval: std::time::Duration,
    /// The VIPs announced each round (indexes into [`InstancePlan::vips`]): the first on each
    /// interface that keepalived's rule selects.
    pub vips: Vec<usize>,
}

/// keepalived's selection for `garp_extra_if`: the VIPs (and excluded VIPs) on an interface
/// other than the instance's own (its VMAC when it has one), only with `all` (the VMACs that
/// keepalived also counts are other instances' in hav's model), plus the instance's own when
/// adverts leave from the base interface (`vmac_xmit_base`); the first address of each
/// interface. None when no address lies on another interface (keepalived turns it off).
fn garp_extra(setting: Option<crate::config::vrrp::GarpExtraIf>, vips: &[VipPlan], own: &str, xmit_base: bool) -> Option<GarpExtra> {
    let setting = setting.filter(|g| !g.interval.is_zero() && g.all)?;
    if !vips.iter().any(|v| v.dev != own) {
        return None;
    }
    let mut devs: Vec<&str> = Vec::new();
    let mut chosen = Vec::new();
    for (i, v) in vips.iter().enumerate() {
        if (v.dev == own && !xmit_base) || devs.contains(&v.dev.as_str()) {
            continue;
        }
        devs.push(&v.dev);
        chosen.push(i);
    }
    Some(GarpExtra { interval: setting.interval, vips: chosen })
}

impl InstancePlan {
    /// The interface adverts are sent from.
    pub fn xmit_iface(&self) -> &str {
        match &self.vmac {
            Some(v) if !v.xmit_base => &v.name,
            _ => &self.ifname,
        }
    }
}

/// One planned instance: the host's data, where its adverts arrive, its election config, and
/// whether its interface is running now.
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    /// The host's data.
    pub meta: InstancePlan,
    /// Interface, family and VRID.
    pub key: VrKey,
    /// hav-core's config.
    pub core: InstanceConfig,
    /// The interface is up with carrier.
    pub up: bool,
}

/// The error of a plan: the config is valid, but cannot run on this host.
#[derive(Debug, thiserror::Error)]
#[error("{at}: vrrp_instance {name}: {message}")]
pub struct PlanError {
    /// Where the instance is written.
    pub at: Location,
    /// The instance.
    pub name: String,
    /// What is wrong.
    pub message: String,
}

/// The VMAC of a VRID (RFC 5798 section 7.3).
pub fn vmac_of(vrid: u8, ipv6: bool) -> [u8; 6] {
    hav_core::wire::vmac(vrid, ipv6)
}

fn to_core_duration(d: std::time::Duration) -> CoreDuration {
    CoreDuration::from_micros(u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

fn clamp_u8(v: u32) -> u8 {
    u8::try_from(v).unwrap_or(u8::MAX)
}

fn clamp_weight(w: i32) -> i16 {
    i16::try_from(w.clamp(-254, 254)).unwrap_or(0)
}

/// Builds the plans of every instance in `config`. `lookup` resolves an interface name.
/// Warnings (VIPs moved out of the advert, ...) are appended to `warnings`.
pub fn plan(
    config: &Config,
    lookup: &mut dyn FnMut(&str) -> Option<IfaceInfo>,
    warnings: &mut Vec<Warning>,
) -> Result<Vec<Planned>, PlanError> {
    let mut out = Vec::with_capacity(config.vrrp_instances.len());
    let mut seen: HashMap<VrKey, &str> = HashMap::new();
    for inst in &config.vrrp_instances {
        let p = plan_one(config, inst, lookup, warnings)?;
        if let Some(other) = seen.insert(p.key, &inst.name) {
            return Err(err(
                inst,
                format!(
                    "virtual_router_id {} on {} is already used by vrrp_instance {other}",
                    p.core.vrid, p.meta.ifname
                ),
            ));
        }
        out.push(p);
    }
    Ok(out)
}

/// Interface indexes from here up stand for interfaces that do not exist yet
/// (`dynamic_interfaces`); the kernel's own indexes stay far below.
const PENDING_BASE: u32 = 0xF000_0000;

/// The stand-in index of the missing interface `name`: one per name, in the pending range.
fn pending_index(name: &str) -> u32 {
    let h = name.bytes().fold(0x811c_9dc5_u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193));
    PENDING_BASE | (h & 0x0FFF_FFFF)
}

/// Whether an instance's interface index is a stand-in for an interface that does not exist
/// yet (`dynamic_interfaces`).
pub fn is_pending(ifindex: u32) -> bool {
    ifindex >= PENDING_BASE
}

fn err(inst: &VrrpInstance, message: String) -> PlanError {
    PlanError { at: inst.location.clone(), name: inst.name.clone(), message }
}

fn plan_one(
    config: &Config,
    inst: &VrrpInstance,
    lookup: &mut dyn FnMut(&str) -> Option<IfaceInfo>,
    warnings: &mut Vec<Warning>,
) -> Result<Planned, PlanError> {
    // The config refuses an instance without interface unless it is unicast;
    // keepalived puts that one's addresses on default_interface (eth0 unless set).
    let ifname = inst.interface.as_deref().or(config.global.default_interface.as_deref()).unwrap_or("eth0");
    let iface = match lookup(ifname) {
        Some(i) => i,
        // keepalived's dynamic_interfaces: the instance waits in FAULT until the interface
        // appears (the daemon plans it again then).
        None if config.global.dynamic_interfaces => {
            warnings.push(Warning {
                location: inst.location.clone(),
                message: format!(
                    "vrrp_instance {}: interface {ifname} does not exist yet; the instance waits in FAULT until it appears (dynamic_interfaces)",
                    inst.name
                ),
            });
            IfaceInfo { index: pending_index(ifname), name: ifname.to_owned(), mac: [0; 6], up: false, addrs: Vec::new() }
        }
        None => return Err(err(inst, format!("interface '{ifname}' not found (dynamic_interfaces lets an instance wait for it)"))),
    };
    // An instance without addresses (no_virtual_ipaddress) is IPv4 unless its peers say otherwise.
    let ipv6 = inst.family() == Some(crate::config::Family::V6);
    let version = match inst.version {
        VrrpVersion::V2 if ipv6 => {
            warnings.push(Warning {
                location: inst.location.clone(),
                message: format!("vrrp_instance {}: IPv6 needs VRRPv3, using version 3", inst.name),
            });
            WireVersion::V3
        }
        VrrpVersion::V2 => WireVersion::V2,
        VrrpVersion::V3 => WireVersion::V3,
    };

    let src = match inst.unicast_src_ip.or(inst.mcast_src_ip) {
        Some(a) => a,
        // A missing interface, or one without the address yet (dynamic_interfaces): the instance
        // waits in FAULT and nothing is sent until it is planned again.
        None if is_pending(iface.index) || (config.global.dynamic_interfaces && primary_addr(&iface, ipv6).is_none()) => {
            if ipv6 {
                std::net::Ipv6Addr::UNSPECIFIED.into()
            } else {
                std::net::Ipv4Addr::UNSPECIFIED.into()
            }
        }
        None => primary_addr(&iface, ipv6).ok_or_else(|| {
            err(
                inst,
                format!(
                    "interface {} has no {} address to send adverts from",
                    iface.name,
                    if ipv6 { "link-local IPv6" } else { "IPv4" }
                ),
            )
        })?,
    };

    let mut core = InstanceConfig::new(inst.virtual_router_id, src);
    core.version = version;
    core.priority = inst.priority;
    core.adver_int = to_core_duration(inst.advert_int);
    if version == WireVersion::V2 {
        let secs = core.adver_int.total_micros().div_ceil(1_000_000).max(1);
        core.adver_int = CoreDuration::from_secs(secs);
    } else {
        let cs = core.adver_int.total_micros().div_ceil(10_000).clamp(1, 4095);
        core.adver_int = CoreDuration::from_centis(cs);
    }
    core.preempt = inst.preempt;
    core.preempt_delay = to_core_duration(inst.preempt_delay);
    core.accept = inst.accept;
    core.auth = match (&inst.authentication, version) {
        (Some(a), WireVersion::V2) if a.auth_type == AuthType::Pass => {
            let mut pass = [0u8; 8];
            for (d, s) in pass.iter_mut().zip(a.auth_pass.bytes()) {
                *d = s;
            }
            VrrpAuth::Simple(pass)
        }
        // IPsec AH (RFC 2338 5.3.6.2): the key is the auth_pass as keepalived stores it.
        (Some(a), WireVersion::V2) if a.auth_type == AuthType::Ah => VrrpAuth::ah(a.auth_pass.as_bytes()),
        (Some(_), _) => {
            warnings.push(Warning {
                location: inst.location.clone(),
                message: format!("vrrp_instance {}: VRRPv3 has no authentication; ignored", inst.name),
            });
            VrrpAuth::None
        }
        (None, _) => VrrpAuth::None,
    };
    core.mcast_group = if ipv6 {
        config.global.vrrp_mcast_group6.into()
    } else {
        config.global.vrrp_mcast_group4.into()
    };
    core.check_unicast_src = inst.check_unicast_src;
    core.check_adv_addr = !config.global.vrrp_skip_check_adv_addr;
    for p in &inst.unicast_peers {
        let peer = &p.address;
        if peer.is_ipv6() != ipv6 {
            return Err(err(inst, format!("unicast_peer {peer} is not of the instance's address family")));
        }
        if core.peers.push(*peer).is_err() || core.peer_ttl.push((p.min_ttl, p.max_ttl)).is_err() {
            return Err(err(inst, format!("more than {MAX_PEERS} unicast peers")));
        }
    }
    core.garp = GarpConfig {
        master_delay: to_core_duration(inst.garp.master_delay),
        master_repeat: clamp_u8(inst.garp.master_repeat),
        master_refresh: inst.garp.master_refresh.map(to_core_duration).unwrap_or(CoreDuration::ZERO),
        master_refresh_repeat: clamp_u8(inst.garp.master_refresh_repeat),
        lower_prio_delay: to_core_duration(inst.garp.lower_prio_delay),
        lower_prio_repeat: clamp_u8(inst.garp.lower_prio_repeat),
        interval: to_core_duration(if ipv6 { config.global.vrrp_gna_interval } else { config.global.vrrp_garp_interval }),
    };
    core.lower_prio_no_advert = inst.lower_prio_no_advert;
    core.higher_prio_send_advert = inst.higher_prio_send_advert;
    core.down_timer_adverts = inst.down_timer_adverts;

    let vmac = inst.vmac.as_ref().map(|v| VmacPlan {
        name: v.name.clone().unwrap_or_else(|| format!("vrrp.{}", inst.virtual_router_id)),
        mac: vmac_of(inst.virtual_router_id, ipv6),
        xmit_base: v.xmit_base,
    });
    let vip_dev = vmac.as_ref().map(|v| v.name.clone()).unwrap_or_else(|| iface.name.clone());

    let mut vips = Vec::new();
    let mut excluded = Vec::new();
    for v in &inst.virtual_ipaddresses {
        let spec = addr_spec(v);
        let dev = v.dev.clone().unwrap_or_else(|| vip_dev.clone());
        if v.address.is_ipv6() != ipv6 || core.vips.len() == MAX_VIPS {
            warnings.push(Warning {
                location: v.location.clone(),
                message: format!(
                    "vrrp_instance {}: {} is not carried in adverts ({})",
                    inst.name,
                    v.address,
                    if v.address.is_ipv6() != ipv6 { "other address family" } else { "too many addresses" }
                ),
            });
            excluded.push(VipPlan { spec, dev });
            continue;
        }
        if !core.vips.contains(&v.address) {
            let _ = core.vips.push(v.address);
        }
        vips.push(VipPlan { spec, dev });
    }
    for v in &inst.virtual_ipaddresses_excluded {
        let dev = v.dev.clone().unwrap_or_else(|| vip_dev.clone());
        excluded.push(VipPlan { spec: addr_spec(v), dev });
    }
    vips.extend(excluded);

    core.validate()
        .map_err(|e| err(inst, format!("{e}")))?;

    let mut tracks = Vec::new();
    let mut push_track = |t: TrackUse| {
        if !tracks.iter().any(|u: &TrackUse| u.obj == t.obj) {
            tracks.push(t);
        }
    };
    for ti in &inst.track_interfaces {
        push_track(TrackUse { obj: TrackObj::Interface(ti.name.clone()), weight: clamp_weight(ti.weight), reverse: ti.reverse });
    }
    let groups = config.vrrp_sync_groups.iter().filter(|g| g.group.iter().any(|(n, _)| *n == inst.name));
    let group_tracks: Vec<_> = groups.collect();
    for ts in inst.track_scripts.iter().chain(group_tracks.iter().flat_map(|g| g.track_scripts.iter())) {
        let script = config
            .script(&ts.name)
            .ok_or_else(|| err(inst, format!("track_script {} names no vrrp_script", ts.name)))?;
        push_track(TrackUse {
            obj: TrackObj::Script(ts.name.clone()),
            // A priority policy's delta counts once unless a weight scales it.
            weight: clamp_weight(ts.weight.unwrap_or(if script.policy.is_some() { 1 } else { script.weight })),
            reverse: ts.reverse || script.reverse,
        });
    }
    for tf in inst.track_files.iter().chain(group_tracks.iter().flat_map(|g| g.track_files.iter())) {
        let file = config
            .vrrp_track_files
            .iter()
            .find(|f| f.name == tf.name)
            .ok_or_else(|| err(inst, format!("track_file {} names no vrrp_track_file", tf.name)))?;
        push_track(TrackUse {
            obj: TrackObj::File(tf.name.clone()),
            weight: clamp_weight(tf.weight.unwrap_or(file.weight)),
            reverse: tf.reverse || file.reverse,
        });
    }
    for tp in inst.track_processes.iter().chain(group_tracks.iter().flat_map(|g| g.track_processes.iter())) {
        let process = config
            .vrrp_track_processes
            .iter()
            .find(|p| p.name == tp.name)
            .ok_or_else(|| err(inst, format!("track_process {} names no vrrp_track_process", tp.name)))?;
        push_track(TrackUse {
            obj: TrackObj::Process(tp.name.clone()),
            weight: clamp_weight(tp.weight.unwrap_or(process.weight)),
            reverse: tp.reverse || process.reverse,
        });
    }
    for g in &group_tracks {
        for ti in &g.track_interfaces {
            push_track(TrackUse { obj: TrackObj::Interface(ti.name.clone()), weight: clamp_weight(ti.weight), reverse: ti.reverse });
        }
    }
    // keepalived: in a sync group, tracking weights are ignored (a failure faults the member,
    // and so the group) unless the group says sync_group_tracking_weight.
    if !group_tracks.is_empty() && !group_tracks.iter().any(|g| g.tracking_weight) {
        // A WASM priority policy's value is hav's own: it keeps its scale.
        let policy = |t: &TrackUse| matches!(&t.obj, TrackObj::Script(n) if config.script(n).is_some_and(|s| s.policy.is_some()));
        for t in tracks.iter_mut().filter(|t| t.weight != 0 && !policy(t)) {
            warnings.push(Warning {
                location: inst.location.clone(),
                message: format!(
                    "vrrp_instance {}: the weight of tracked {} is ignored in a sync group (a failure faults the instance), as keepalived does; sync_group_tracking_weight keeps it",
                    inst.name,
                    t.obj
                ),
            });
            t.weight = 0;
        }
    }
    if tracks.len() > hav_core::vrrp::MAX_TRACKED {
        return Err(err(inst, format!("more than {} tracked objects", hav_core::vrrp::MAX_TRACKED)));
    }

    let mut want_master = inst.state == crate::config::vrrp::VrrpState::Master;
    if want_master && matches!(core.auth, VrrpAuth::Ah(_)) && core.priority != 255 {
        // keepalived: a backup must hear an advert (and its AH sequence number) first.
        warnings.push(Warning {
            location: inst.location.clone(),
            message: format!("vrrp_instance {}: state MASTER is incompatible with AH authentication; starting as BACKUP, as keepalived does", inst.name),
        });
        want_master = false;
    }
    let own = vmac.as_ref().map_or(iface.name.as_str(), |v| v.name.as_str());
    let garp_extra = garp_extra(inst.garp_extra_if, &vips, own, vmac.as_ref().is_some_and(|v| v.xmit_base));
    let meta = InstancePlan {
        name: inst.name.clone(),
        location: inst.location.clone(),
        ifname: iface.name,
        mac: iface.mac,
        addrs: iface.addrs,
        vips,
        vmac,
        tracks,
        notify: inst.notify.clone(),
        smtp_alert: inst.smtp_alert || group_tracks.iter().any(|g| g.smtp_alert),
        want_master,
        promote_secondaries: inst.promote_secondaries,
        dont_track_primary: inst.dont_track_primary,
        unicast_ttl: inst.unicast_ttl,
        garp_extra,
    };
    let up = iface.up || inst.dont_track_primary;
    Ok(Planned { meta, key: VrKey { ifindex: iface.index, ipv6, vrid: inst.virtual_router_id }, core, up })
}

fn primary_addr(iface: &IfaceInfo, ipv6: bool) -> Option<IpAddr> {
    iface.addrs.iter().copied().find(|a| match a {
        IpAddr::V4(_) => !ipv6,
        IpAddr::V6(v6) => ipv6 && (v6.segments()[0] & 0xffc0) == 0xfe80,
    })
}

/// The address `v` as rtnetlink gets it.
pub(crate) fn addr_spec(v: &crate::config::vrrp::VirtualIp) -> AddrSpec {
    let mut spec = AddrSpec::new(v.address, v.prefix_len);
    spec.broadcast = v.broadcast;
    spec.label = v.label.clone();
    spec.scope = match v.scope.as_deref() {
        None | Some("global") | Some("universe") => libc::RT_SCOPE_UNIVERSE,
        Some("site") => libc::RT_SCOPE_SITE,
        Some("link") => libc::RT_SCOPE_LINK,
        Some("host") => libc::RT_SCOPE_HOST,
        Some("nowhere") => libc::RT_SCOPE_NOWHERE,
        Some(n) => n.parse().unwrap_or(libc::RT_SCOPE_UNIVERSE),
    };
    spec.nodad = v.address.is_ipv6();
    spec.peer = v.peer.as_deref().and_then(|p| p.parse().ok());
    for f in &v.flags {
        use crate::net::netlink as nl;
        match f.split_once(' ').map_or((f.as_str(), ""), |(k, v)| (k, v)) {
            ("home", _) => spec.flags |= nl::IFA_F_HOMEADDRESS,
            ("mngtmpaddr", _) => spec.flags |= nl::IFA_F_MANAGETEMPADDR,
            ("noprefixroute", _) => spec.flags |= nl::IFA_F_NOPREFIXROUTE,
            ("autojoin", _) => spec.flags |= nl::IFA_F_MCAUTOJOIN,
            ("preferred_lft", "forever") => spec.preferred_lft = None,
            ("preferred_lft", secs) => spec.preferred_lft = secs.parse().ok(),
            _ => {}
        }
    }
    // keepalived adds an IPv6 `autojoin` (multicast) address deprecated: it is never picked as a
    // source address.
    if v.address.is_ipv6() && spec.flags & crate::net::netlink::IFA_F_MCAUTOJOIN != 0 && !v.flags.iter().any(|f| f.starts_with("preferred_lft")) {
        spec.preferred_lft = Some(0);
    }
    spec
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Config, String> {
        crate::config::load_str(std::path::Path::new("t.conf"), text).map(|l| l.config).map_err(|e| e.to_string())
    }

    fn planned(text: &str) -> Vec<Planned> {
        let cfg = load(text).expect("config");
        let mut lookup = |name: &str| -> Option<IfaceInfo> {
            let index = match name {
                "eth0" => 2,
                "eth1" => 3,
                _ => return None,
            };
            Some(IfaceInfo {
                index,
                name: name.to_owned(),
                mac: [2, 0, 0, 0, 0, index as u8],
                up: true,
                addrs: vec!["10.0.0.1".parse().unwrap(), format!("fe80::{index}").parse().unwrap()],
            })
        };
        plan(&cfg, &mut lookup, &mut Vec::new()).expect("plan")
    }

    fn inst(name: &str, iface: &str, vrid: u8, extra: &str, vip: &str) -> String {
        format!("vrrp_instance {name} {{\n interface {iface}\n virtual_router_id {vrid}\n priority 100\n {extra}\n virtual_ipaddress {{\n  {vip}\n }}\n}}\n")
    }

    /// keepalived's selection of the addresses `garp_extra_if` announces.
    #[test]
    fn test_garp_extra_if_selection() {
        let vips = "10.0.0.5/24\n  10.0.0.6/24\n  10.0.1.5/24 dev eth1\n  10.0.1.6/24 dev eth1";
        let extra = |text: &str| planned(text)[0].meta.garp_extra.clone();
        // `all`: the first address on each interface but the instance's own.
        let g = extra(&inst("A", "eth0", 1, "garp_extra_if all 30", vips)).expect("on");
        assert_eq!((g.interval, g.vips), (std::time::Duration::from_secs(30), vec![2]));
        // The global default, and the instance's own 0 turning it off.
        let global = "global_defs {\n vrrp_garp_extra_if 30 all\n}\n";
        assert_eq!(extra(&format!("{global}{}", inst("A", "eth0", 1, "", vips))).map(|g| g.vips), Some(vec![2]));
        assert_eq!(extra(&format!("{global}{}", inst("A", "eth0", 1, "garp_extra_if 0", vips))), None);
        // Without `all` keepalived sends on other VMACs only: none here.
        assert_eq!(extra(&inst("A", "eth0", 1, "garp_extra_if 30", vips)), None);
        // Nothing on another interface: off.
        assert_eq!(extra(&inst("A", "eth0", 1, "garp_extra_if all 30", "10.0.0.5/24")), None);
        // With a VMAC, eth0 is another interface; the VMAC itself only with vmac_xmit_base.
        let vmac = "10.0.0.5/24\n  10.0.0.7/24 dev eth0";
        assert_eq!(extra(&inst("A", "eth0", 1, "use_vmac\n garp_extra_if all 30", vmac)).map(|g| g.vips), Some(vec![1]));
        assert_eq!(extra(&inst("A", "eth0", 1, "use_vmac\n vmac_xmit_base\n garp_extra_if all 30", vmac)).map(|g| g.vips), Some(vec![0, 1]));
    }

    #[test]
    fn sync_group_members_ignore_tracking_weights_unless_the_group_keeps_them() {
        let script = "vrrp_script chk {\n script /bin/true\n weight -20\n}\n";
        let member = inst("A", "eth0", 7, "track_script {\n  chk\n }\n track_interface {\n  eth1 weight 10\n }", "10.0.0.10/24");
        let weights = |p: &Planned| p.meta.tracks.iter().map(|t| t.weight).collect::<Vec<_>>();
        // Alone: the weights apply.
        assert_eq!(weights(&planned(&(script.to_owned() + &member))[0]), [10, -20]);
        // In a sync group: ignored (a failure faults the member), with a warning each.
        let group = "vrrp_sync_group G {\n group {\n  A\n }\n}\n";
        let text = script.to_owned() + group + &member;
        assert_eq!(weights(&planned(&text)[0]), [0, 0]);
        let cfg = load(&text).expect("config");
        let mut w = Vec::new();
        let mut lookup = |n: &str| (n == "eth0").then(|| IfaceInfo { index: 2, name: n.into(), mac: [2, 0, 0, 0, 0, 2], up: true, addrs: vec!["10.0.0.1".parse().expect("ip")] });
        plan(&cfg, &mut lookup, &mut w).expect("plan");
        assert_eq!(w.iter().filter(|w| w.message.contains("ignored in a sync group")).count(), 2, "{w:?}");
        // sync_group_tracking_weight: they apply again.
        let group = "vrrp_sync_group G {\n group {\n  A\n }\n sync_group_tracking_weight\n}\n";
        assert_eq!(weights(&planned(&(script.to_owned() + group + &member))[0]), [10, -20]);
    }

    #[test]
    fn a_vrid_is_unique_per_lan_and_family() {
        // Two instances with VRID 7 on eth0: the second is refused where it is written.
        let e = load(&(inst("A", "eth0", 7, "", "10.0.0.10/24") + &inst("B", "eth0", 7, "", "10.0.0.11/24"))).unwrap_err();
        assert!(e.contains("t.conf:10:1") && e.contains("like vrrp_instance A"), "{e}");
        // Two VMACs on one parent share its LAN: the same VRID twice is as wrong there.
        let e = load(&(inst("A", "eth0", 7, "use_vmac vrrp.7a", "10.0.0.10/24") + &inst("B", "eth0", 7, "use_vmac vrrp.7b", "10.0.0.11/24"))).unwrap_err();
        assert!(e.contains("like vrrp_instance A"), "{e}");
        // Other LANs, or the other family on the same LAN (separate routers, RFC 5798 5.2.3).
        let p = planned(&(inst("A", "eth0", 7, "", "10.0.0.10/24") + &inst("B", "eth1", 7, "", "10.0.0.11/24")));
        assert_ne!(p[0].key, p[1].key);
        let p = planned(&(inst("A", "eth0", 7, "", "10.0.0.10/24") + &inst("B", "eth0", 7, "version 3", "fd00::10/64")));
        assert_eq!((p[0].key.ipv6, p[1].key.ipv6), (false, true));
    }

    #[test]
    fn ah_keys_the_instance_with_the_auth_pass_and_starts_it_as_backup() {
        let ah = |pass: &str, extra: &str| format!("authentication {{\n  auth_type AH\n  auth_pass {pass}\n }}\n {extra}");
        // Keyed as keepalived keys it: the auth_pass zero-padded to 8 bytes.
        let p = planned(&inst("A", "eth0", 7, &ah("abc", ""), "10.0.0.10/24"));
        assert_eq!(p[0].core.auth, VrrpAuth::Ah(*b"abc\0\0\0\0\0"));
        assert_eq!(p[0].core.validate(), Ok(()));
        // state MASTER waits as BACKUP for the master's sequence number, with a warning...
        let text = inst("A", "eth0", 7, &ah("abc", "state MASTER"), "10.0.0.10/24");
        let cfg = load(&text).expect("config");
        let mut w = Vec::new();
        let mut lookup = |n: &str| (n == "eth0").then(|| IfaceInfo { index: 2, name: n.into(), mac: [2, 0, 0, 0, 0, 2], up: true, addrs: vec!["10.0.0.1".parse().expect("ip")] });
        let p = plan(&cfg, &mut lookup, &mut w).expect("plan");
        assert!(!p[0].meta.want_master);
        assert!(w.iter().any(|w| w.message.contains("incompatible with AH")), "{w:?}");
        // ... unless it owns the addresses (priority 255); PASS keeps its wish.
        let owner = text.replace("priority 100", "priority 255");
        assert!(planned(&owner)[0].meta.want_master);
        let pass = inst("A", "eth0", 7, "authentication {\n  auth_type PASS\n  auth_pass abc\n }\n state MASTER", "10.0.0.10/24");
        assert!(planned(&pass)[0].meta.want_master);
        // VRRPv3 has no authentication: AH is ignored there as PASS is.
        let v3 = inst("A", "eth0", 7, &ah("abc", "version 3"), "10.0.0.10/24");
        assert_eq!(planned(&v3)[0].core.auth, VrrpAuth::None);
    }

    #[test]
    fn master_advert_options_reach_the_core() {
        let opts = |p: &Planned| (p.core.lower_prio_no_advert, p.core.higher_prio_send_advert, p.core.down_timer_adverts);
        let p = planned(&inst("A", "eth0", 7, "", "10.0.0.10/24"));
        assert_eq!(opts(&p[0]), (false, false, 3));
        // The global defaults, and an instance that overrides them.
        let g = "global_defs {\n vrrp_lower_prio_no_advert\n vrrp_higher_prio_send_advert\n vrrp_down_timer_adverts 5\n}\n";
        let own = "lower_prio_no_advert off\n higher_prio_send_advert no\n down_timer_adverts 1";
        let p = planned(&(g.to_owned() + &inst("A", "eth0", 7, "", "10.0.0.10/24") + &inst("B", "eth0", 8, own, "10.0.0.11/24")));
        assert_eq!(opts(&p[0]), (true, true, 5));
        assert_eq!(opts(&p[1]), (false, false, 1));
        assert_eq!(p[0].core.validate(), Ok(()));
        // vrrp_strict implies lower_prio_no_advert and clears higher_prio_send_advert.
        let p = planned(&("global_defs {\n vrrp_strict\n vrrp_higher_prio_send_advert\n}\n".to_owned() + &inst("A", "eth0", 7, "lower_prio_no_advert off", "10.0.0.10/24")));
        assert_eq!(opts(&p[0]), (true, false, 3));
    }
}
