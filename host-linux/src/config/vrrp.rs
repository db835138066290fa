//! VRRP sections: `vrrp_instance`, `vrrp_script`, `vrrp_track_file`,
//! `vrrp_sync_group`.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use super::error::{ConfigError, Location};
use super::global::GlobalDefs;
use super::parser::{Arg, Node};
use super::value::{int_arg, ip_arg, Ctx, RunAs, Script};

/// VRRP protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VrrpVersion {
    /// RFC 3768: IPv4 only, advertisement interval in whole seconds, optional auth.
    V2,
    /// RFC 5798: IPv4 and IPv6, interval in centiseconds.
    V3,
}

impl VrrpVersion {
    pub(crate) fn from_node(ctx: &mut Ctx, n: &Node) -> Result<Self, ConfigError> {
        let arg = ctx.value(n)?;
        match arg.text.as_str() {
            "2" => Ok(VrrpVersion::V2),
            "3" => Ok(VrrpVersion::V3),
            other => Err(ConfigError::invalid(&arg.loc, format!("{} must be 2 or 3, got '{other}'", n.keyword))),
        }
    }
}

/// Address family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

impl Family {
    /// The family of an address.
    pub fn of(ip: &IpAddr) -> Self {
        if ip.is_ipv4() {
            Family::V4
        } else {
            Family::V6
        }
    }
}

/// Initial state of an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VrrpState {
    /// Starts as master (still subject to election).
    Master,
    /// Starts as backup (keepalived's default).
    Backup,
}

/// `auth_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthType {
    /// Simple text password (VRRPv2 only).
    Pass,
    /// IPsec AH with HMAC-MD5-96, as keepalived sends it (VRRPv2 over IPv4 only; RFC 3768
    /// dropped it). See `hav_core::wire::ah`.
    Ah,
}

/// `authentication { auth_type ...; auth_pass ... }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authentication {
    /// The authentication type.
    pub auth_type: AuthType,
    /// The password, at most 8 bytes (longer ones are truncated with a warning).
    pub auth_pass: String,
}

/// One `virtual_ipaddress` entry: `ADDR[/PREFIX] [brd X] [dev IF] [scope S] [label L] ...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtualIp {
    /// The address.
    pub address: IpAddr,
    /// Prefix length; 32 or 128 when not given.
    pub prefix_len: u8,
    /// `brd` / `broadcast` (IPv4 only).
    pub broadcast: Option<Ipv4Addr>,
    /// `dev`: interface; the instance's interface when absent.
    pub dev: Option<String>,
    /// `scope`: `global`, `site`, `link`, `host`, `nowhere` or a number.
    pub scope: Option<String>,
    /// `label` (IPv4 only).
    pub label: Option<String>,
    /// `peer ADDR[/PREFIX]`.
    pub peer: Option<String>,
    /// `no_track`: the address going missing does not fault the instance.
    pub no_track: bool,
    /// Other `ip addr` flags given (`home`, `-nodad`, `noprefixroute`, `autojoin`).
    pub flags: Vec<String>,
    /// Where the entry is.
    pub location: Location,
}

/// One `unicast_peer` entry: `ADDR [min_ttl N] [max_ttl N]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnicastPeer {
    /// The peer's address.
    pub address: IpAddr,
    /// Adverts from this peer with a lower TTL are dropped (default 0).
    pub min_ttl: u8,
    /// Adverts from this peer with a higher TTL are dropped (default 255).
    pub max_ttl: u8,
    /// Where the entry is.
    pub location: Location,
}

/// `track_interface` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackInterface {
    /// Interface name.
    pub name: String,
    /// Priority change while the interface is down; 0 means "fault the instance".
    pub weight: i32,
    /// `weight W reverse`.
    pub reverse: bool,
}

/// A `track_script` or `track_file` reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackRef {
    /// The name of the `vrrp_script` / `vrrp_track_file`.
    pub name: String,
    /// Weight override; the script's/file's own weight when absent.
    pub weight: Option<i32>,
    /// `weight W reverse`.
    pub reverse: bool,
    /// Where the reference is.
    pub location: Location,
}

/// The notify scripts of an instance or sync group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Notify {
    /// `notify`: called with `TYPE NAME STATE PRIORITY` on every change.
    pub notify: Option<Script>,
    /// `notify_master`.
    pub master: Option<Script>,
    /// `notify_backup`.
    pub backup: Option<Script>,
    /// `notify_fault`.
    pub fault: Option<Script>,
    /// `notify_stop`.
    pub stop: Option<Script>,
    /// `notify_master_rx_lower_pri`: run without arguments when the instance, as master,
    /// receives a lower-priority advert.
    pub master_rx_lower_pri: Option<Script>,
    /// `notify_deleted [SCRIPT]`: the script run when a reload removes the instance.
    pub deleted: Option<Script>,
    /// Whether `notify_deleted` is given, with or without a script: a reload that removes the
    /// instance tells `notify` and the FIFO `DELETED` instead of keepalived's default `FAULT`.
    pub send_deleted: bool,
    /// Where each of them is written, by keyword.
    pub locations: std::collections::BTreeMap<String, Location>,
}

impl Notify {
    fn apply(&mut self, ctx: &mut Ctx, n: &Node) -> Result<bool, ConfigError> {
        let slot = match n.keyword.as_str() {
            "notify" => &mut self.notify,
            "notify_master" => &mut self.master,
            "notify_backup" => &mut self.backup,
            "notify_fault" => &mut self.fault,
            "notify_stop" => &mut self.stop,
            "notify_master_rx_lower_pri" => &mut self.master_rx_lower_pri,
            "notify_deleted" => {
                // The script is optional: the keyword alone says DELETED, not FAULT.
                self.send_deleted = true;
                if n.args.is_empty() && n.block.is_none() {
                    self.locations.insert(n.keyword.clone(), n.loc.clone());
                    return Ok(true);
                }
                &mut self.deleted
            }
            _ => return Ok(false),
        };
        *slot = Some(ctx.notify_script(n)?);
        self.locations.insert(n.keyword.clone(), n.loc.clone());
        ctx.not_acted(n, INSTANCE);
        Ok(true)
    }
}

/// Gratuitous ARP / unsolicited NA timing of an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Garp {
    /// Delay of the second burst after becoming master.
    pub master_delay: Duration,
    /// Messages per burst.
    pub master_repeat: u32,
    /// Periodic refresh while master, if any.
    pub master_refresh: Option<Duration>,
    /// Messages per refresh.
    pub master_refresh_repeat: u32,
    /// Delay of the burst sent after a lower-priority advertisement.
    pub lower_prio_delay: Duration,
    /// Messages in that burst.
    pub lower_prio_repeat: u32,
}

/// `use_vmac [NAME]` and `vmac_xmit_base`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vmac {
    /// The macvlan interface name; `vrrp.VRID` when absent.
    pub name: Option<String>,
    /// Send advertisements from the base interface instead of the VMAC.
    pub xmit_base: bool,
}

/// `garp_extra_if [all] SECONDS` (instance) / `vrrp_garp_extra_if [all] SECONDS` (global):
/// while master, one gratuitous ARP / unsolicited NA every `interval` on each interface, other
/// than the instance's own, that carries one of its addresses (keepalived sends it for the
/// first address on each), so that switches keep the MAC. Without `all`, keepalived sends only
/// on VMAC interfaces other than the instance's own: with hav's one VMAC per instance, none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GarpExtraIf {
    /// Between two rounds; zero (instance only) turns the global setting off.
    pub interval: Duration,
    /// `all`: every interface, not only VMACs.
    pub all: bool,
}

impl GarpExtraIf {
    /// Reads `KEYWORD [all] SECONDS` (the words in either order); `min` is the least interval
    /// (keepalived: 0 in an instance, where it disables, and 1 globally). The deprecated
    /// spellings (`vmac_garp_intvl`, `vrrp_vmac_garp_intvl`) warn.
    pub(crate) fn from_node(ctx: &mut Ctx, n: &Node, min: i64, instead: &str) -> Result<Self, ConfigError> {
        if n.keyword != instead {
            ctx.warn(&n.loc, format!("'{}' is deprecated (keepalived 2.2.2 renamed it '{instead}'); read as '{instead}'", n.keyword));
        }
        let mut all = false;
        let mut interval = None;
        for a in &n.args {
            if a.text == "all" {
                all = true;
            } else {
                interval = Some(Duration::from_secs(u64::try_from(int_arg(a, &n.keyword, min, 86_400)?).unwrap_or(0)));
            }
        }
        let Some(interval) = interval else {
            return Err(ConfigError::invalid(&n.loc, format!("'{}' needs an interval in seconds ({min}..=86400), optionally with 'all'", n.keyword)));
        };
        Ok(GarpExtraIf { interval, all })
    }
}

/// A typed `vrrp_instance NAME { ... }`, keepalived defaults applied.
#[derive(Debug, Clone, PartialEq)]
pub struct VrrpInstance {
    /// The instance name.
    pub name: String,
    /// Where `vrrp_instance` is written.
    pub location: Location,
    /// `state`, default BACKUP.
    pub state: VrrpState,
    /// `interface`.
    pub interface: Option<String>,
    /// `virtual_router_id` (1..=255), required.
    pub virtual_router_id: u8,
    /// `priority` (1..=255), default 100.
    pub priority: u8,
    /// `advert_int`, default 1 s (whole seconds with VRRPv2).
    pub advert_int: Duration,
    /// `version`, default the global `vrrp_version`.
    pub version: VrrpVersion,
    /// `preempt` (default) / `nopreempt`.
    pub preempt: bool,
    /// `preempt_delay`, default 0.
    pub preempt_delay: Duration,
    /// `accept` / `no_accept`; default on unless `vrrp_strict`.
    pub accept: bool,
    /// `authentication { ... }`.
    pub authentication: Option<Authentication>,
    /// `virtual_ipaddress { ... }`.
    pub virtual_ipaddresses: Vec<VirtualIp>,
    /// `virtual_ipaddress_excluded { ... }` (not carried in adverts).
    pub virtual_ipaddresses_excluded: Vec<VirtualIp>,
    /// `virtual_routes { ... }`: installed after the VIPs while master.
    pub virtual_routes: Vec<super::iproute::Route>,
    /// `unicast_src_ip`.
    pub unicast_src_ip: Option<IpAddr>,
    /// `unicast_peer { ... }`; empty means multicast.
    pub unicast_peers: Vec<UnicastPeer>,
    /// Adverts must come from one of `unicast_peers` (`check_unicast_src`,
    /// the global `vrrp_check_unicast_src`, or a peer's `min_ttl`/`max_ttl`).
    pub check_unicast_src: bool,
    /// `no_virtual_ipaddress`: the instance has no addresses on purpose.
    pub no_virtual_ipaddress: bool,
    /// `promote_secondaries`: set the interface's sysctl of that name while the instance runs.
    pub promote_secondaries: bool,
    /// `mcast_dst_ip`: the multicast group of this instance (not acted on yet).
    pub mcast_dst_ip: Option<IpAddr>,
    /// `use_vmac_addr` (not acted on yet).
    pub use_vmac_addr: bool,
    /// `vrf NAME` (not acted on yet).
    pub vrf: Option<String>,
    /// `timer_expired_backup` (not acted on yet).
    pub timer_expired_backup: bool,
    /// `track_src_ip` (not acted on yet).
    pub track_src_ip: bool,
    /// `unicast_ttl`: the IPv4 TTL / IPv6 hop limit of the unicast adverts (`None`: 255 for
    /// IPv4, the kernel's default hop limit for IPv6, as keepalived). Dropped, with a warning,
    /// when the instance has no unicast peers.
    pub unicast_ttl: Option<u8>,
    /// `garp_extra_if [all] SECONDS`, else the global `vrrp_garp_extra_if`; `None` (or a zero
    /// interval) sends none.
    pub garp_extra_if: Option<GarpExtraIf>,
    /// `unicast_fault_no_peer` (not acted on yet).
    pub unicast_fault_no_peer: bool,
    /// `strict_mode`; the global `vrrp_strict` when absent.
    pub strict_mode: bool,
    /// `lower_prio_no_advert`: as master, do not answer a lower-priority advert with one of
    /// ours; the global `vrrp_lower_prio_no_advert` when absent, always on in strict mode.
    pub lower_prio_no_advert: bool,
    /// `higher_prio_send_advert`: as master, send an advert before giving way to a higher
    /// priority; the global `vrrp_higher_prio_send_advert` when absent, off in strict mode.
    pub higher_prio_send_advert: bool,
    /// `down_timer_adverts` (1..=100): adverts in Master_Down_Interval; the global
    /// `vrrp_down_timer_adverts` (3) when absent.
    pub down_timer_adverts: u8,
    /// `virtual_rules { ... }`: installed after the routes while master.
    pub virtual_rules: Vec<super::iproute::Rule>,
    /// `use_vmac`.
    pub vmac: Option<Vmac>,
    /// `track_interface { ... }`.
    pub track_interfaces: Vec<TrackInterface>,
    /// `track_script { ... }`.
    pub track_scripts: Vec<TrackRef>,
    /// `track_file { ... }`.
    pub track_files: Vec<TrackRef>,
    /// `track_process { ... }`.
    pub track_processes: Vec<TrackRef>,
    /// Notify scripts.
    pub notify: Notify,
    /// Gratuitous ARP / NA timing, global defaults applied.
    pub garp: Garp,
    /// `smtp_alert`.
    pub smtp_alert: bool,
    /// `debug [LEVEL]`.
    pub debug: Option<u8>,
    /// `dont_track_primary`.
    pub dont_track_primary: bool,
    /// `mcast_src_ip`.
    pub mcast_src_ip: Option<IpAddr>,
    /// `lvs_sync_daemon_interface`.
    pub lvs_sync_daemon_interface: Option<String>,
}

impl VrrpInstance {
    /// The address family of the instance: that of its first virtual
    /// address, else of its first unicast peer.
    pub fn family(&self) -> Option<Family> {
        self.virtual_ipaddresses
            .first()
            .map(|v| Family::of(&v.address))
            .or_else(|| self.unicast_peers.first().map(|p| Family::of(&p.address)))
    }

    /// What keepalived decides at the end of an instance block, where it
    /// drops or defaults a value and runs the instance: the same here, with a
    /// warning each; an error only where keepalived refuses the instance.
    fn settle(&mut self, ctx: &mut Ctx, set: &Explicit) -> Result<(), ConfigError> {
        let name = self.name.clone();
        let family = self.family().unwrap_or(Family::V4);
        self.virtual_ipaddresses.retain(|v| {
            if Family::of(&v.address) == family {
                return true;
            }
            ctx.warn(
                &v.location,
                format!("vrrp_instance {name}: {} is not of the instance's address family; ignored, as keepalived does (use virtual_ipaddress_excluded)", v.address),
            );
            false
        });
        self.unicast_peers.retain(|p| {
            if Family::of(&p.address) == family {
                return true;
            }
            ctx.warn(&p.location, format!("vrrp_instance {name}: unicast_peer {} is not of the instance's address family; ignored, as keepalived does", p.address));
            false
        });
        if let (Some(at), true) = (&set.unicast_ttl, self.unicast_peers.is_empty()) {
            ctx.warn(
                at,
                format!("vrrp_instance {name}: unicast_ttl without unicast_peer has no effect: multicast adverts leave with TTL 255 (keepalived warns and resets it too)"),
            );
            self.unicast_ttl = None;
        }
        if family == Family::V6 && self.version == VrrpVersion::V2 {
            ctx.warn(&self.location, format!("vrrp_instance {name}: VRRP version 2 cannot carry IPv6; the instance runs version 3"));
            self.version = VrrpVersion::V3;
        }
        if self.virtual_ipaddresses.is_empty() && !self.no_virtual_ipaddress {
            ctx.warn(&self.location, format!("vrrp_instance {name} has no virtual_ipaddress; it runs without addresses, as keepalived does (say no_virtual_ipaddress to mean it)"));
        }
        if self.interface.is_none() {
            if self.unicast_peers.is_empty() {
                return Err(ConfigError::invalid(
                    &self.location,
                    format!("vrrp_instance {name} has no 'interface'; keepalived refuses a multicast instance without one (give 'interface', or unicast_src_ip and unicast_peer)"),
                ));
            }
            if self.unicast_src_ip.is_none() {
                return Err(ConfigError::invalid(
                    &self.location,
                    format!("vrrp_instance {name} has neither 'interface' nor 'unicast_src_ip'; keepalived refuses a unicast instance without one of them"),
                ));
            }
        }
        if self.strict_mode {
            if self.authentication.take().is_some() {
                ctx.warn(&self.location, format!("vrrp_instance {name}: strict mode allows no authentication; the instance runs without, as keepalived does"));
            }
            // keepalived refuses unicast peers in strict mode on an interface that can multicast;
            // an instance without `interface` (unicast_src_ip only) keeps them. hav refuses them
            // on any interface (one without multicast, such as a tunnel, is refused too).
            if !self.unicast_peers.is_empty() && self.interface.is_some() {
                return Err(ConfigError::invalid(
                    set.at("unicast_peer", &self.location),
                    format!("vrrp_instance {name}: strict mode (vrrp_strict/strict_mode) does not allow unicast peers on an interface; keepalived refuses the instance"),
                ));
            }
            if self.no_virtual_ipaddress {
                ctx.warn(
                    set.at("no_virtual_ipaddress", &self.location),
                    format!("vrrp_instance {name}: no_virtual_ipaddress is incompatible with strict mode; cleared, as keepalived 2.3 does"),
                );
                self.no_virtual_ipaddress = false;
            }
            if self.virtual_ipaddresses.is_empty() {
                return Err(ConfigError::invalid(
                    &self.location,
                    format!("vrrp_instance {name}: strict mode requires at least one virtual_ipaddress; keepalived refuses the instance"),
                ));
            }
            if !self.preempt_delay.is_zero() {
                ctx.warn(
                    set.at("preempt_delay", &self.location),
                    format!("vrrp_instance {name}: preempt_delay is incompatible with strict mode; reset to 0, as keepalived does"),
                );
                self.preempt_delay = Duration::ZERO;
            }
            if self.down_timer_adverts != 3 {
                ctx.warn(
                    set.at("down_timer_adverts", &self.location),
                    format!("vrrp_instance {name}: down_timer_adverts {} is incompatible with strict mode; reset to 3, as keepalived does", self.down_timer_adverts),
                );
                self.down_timer_adverts = 3;
            }
            if let Some(v) = self.vmac.as_mut().filter(|v| v.xmit_base) {
                ctx.warn(
                    set.at("vmac_xmit_base", &self.location),
                    format!("vrrp_instance {name}: vmac_xmit_base is incompatible with strict mode; reset (adverts leave from the VMAC), as keepalived does"),
                );
                v.xmit_base = false;
            }
            if family == Family::V6 && self.unicast_peers.is_empty() {
                if let Some(first) = self.virtual_ipaddresses.first().filter(|v| !is_link_local(&v.address)) {
                    ctx.warn(
                        &first.location,
                        format!("vrrp_instance {name}: in strict mode the first IPv6 virtual address must be link-local, {} is not (keepalived reports it and runs the instance as written, as hav does)", first.address),
                    );
                }
            }
            let owner = self.priority == 255;
            if (self.state == VrrpState::Master) != owner {
                ctx.warn(
                    &self.location,
                    format!("vrrp_instance {name}: in strict mode the initial state follows priority 255 (address owner); it starts as {}", if owner { "MASTER" } else { "BACKUP" }),
                );
                self.state = if owner { VrrpState::Master } else { VrrpState::Backup };
            }
            if !set.accept {
                self.accept = owner;
            } else if self.accept && !owner && self.version == VrrpVersion::V2 {
                ctx.warn(&self.location, format!("vrrp_instance {name}: accept mode breaks RFC 3768 in strict mode; it is turned off, as keepalived does"));
                self.accept = false;
            }
            if set.lower_prio_no_advert && !self.lower_prio_no_advert {
                ctx.warn(&self.location, format!("vrrp_instance {name}: strict mode requires lower_prio_no_advert; it is turned on, as keepalived does"));
            }
            self.lower_prio_no_advert = true;
            if self.higher_prio_send_advert {
                ctx.warn(&self.location, format!("vrrp_instance {name}: strict mode does not allow higher_prio_send_advert; it is turned off, as keepalived does"));
                self.higher_prio_send_advert = false;
            }
            if set.lower_prio && (self.garp.lower_prio_repeat != 0 || !self.garp.lower_prio_delay.is_zero()) {
                ctx.warn(&self.location, format!("vrrp_instance {name}: strict mode sends no lower-priority GARP burst; garp_lower_prio_* set to 0, as keepalived does"));
            }
            self.garp.lower_prio_repeat = 0;
            self.garp.lower_prio_delay = Duration::ZERO;
        } else if !set.accept {
            self.accept = true;
        }
        if self.version == VrrpVersion::V3 && self.authentication.take().is_some() {
            ctx.warn(&self.location, format!("vrrp_instance {name}: VRRP version 3 has no authentication; ignored, as keepalived does"));
        }
        Ok(())
    }
}

/// Which values an instance block set itself (the rest follow defaults that
/// strict mode changes).
struct Explicit {
    accept: bool,
    lower_prio: bool,
    lower_prio_no_advert: bool,
    /// Where `unicast_ttl` is written.
    unicast_ttl: Option<Location>,
    /// Where each keyword of the block is written (the last, when repeated).
    written: HashMap<String, Location>,
}

impl Explicit {
    /// Where `keyword` is written in the block, else `block` (a value from `global_defs`).
    fn at<'a>(&'a self, keyword: &str, block: &'a Location) -> &'a Location {
        self.written.get(keyword).unwrap_or(block)
    }
}

const INSTANCE: &str = "vrrp_instance";

fn is_link_local(a: &IpAddr) -> bool {
    matches!(a, IpAddr::V6(v) if v.segments()[0] & 0xffc0 == 0xfe80)
}
const AUTH: &str = "vrrp_instance/authentication";

fn u8_of(v: i64) -> u8 {
    u8::try_from(v).unwrap_or(u8::MAX)
}

fn i32_of(v: i64) -> i32 {
    i32::try_from(v).unwrap_or(0)
}

/// Reads the `weight W [reverse]` tail of a tracking entry starting at `i`.
fn weight_tail(ctx: &mut Ctx, n: &Node, i: usize, min: i64, max: i64) -> Result<(Option<i32>, bool), ConfigError> {
    let Some(kw) = n.args.get(i) else { return Ok((None, false)) };
    if kw.text != "weight" {
        return Err(ConfigError::invalid(&kw.loc, format!("expected 'weight', got '{}'", kw.text)));
    }
    let Some(val) = n.args.get(i + 1) else {
        return Err(ConfigError::invalid(&kw.loc, "missing value for 'weight'"));
    };
    let w = i32_of(int_arg(val, "weight", min, max)?);
    let reverse = match n.args.get(i + 2) {
        Some(r) if r.text == "reverse" => {
            ctx.no_more(n, i + 3);
            true
        }
        Some(_) => {
            ctx.no_more(n, i + 2);
            false
        }
        None => false,
    };
    Ok((Some(w), reverse))
}

fn track_refs(ctx: &mut Ctx, n: &Node) -> Result<Vec<TrackRef>, ConfigError> {
    let mut out = Vec::new();
    for e in ctx.children(n)? {
        let (weight, reverse) = weight_tail(ctx, e, 0, -254, 254)?;
        out.push(TrackRef { name: e.keyword.clone(), weight, reverse, location: e.loc.clone() });
    }
    Ok(out)
}

fn track_interfaces(ctx: &mut Ctx, n: &Node) -> Result<Vec<TrackInterface>, ConfigError> {
    let mut out = Vec::new();
    for e in ctx.children(n)? {
        let (weight, reverse) = weight_tail(ctx, e, 0, -254, 254)?;
        out.push(TrackInterface { name: e.keyword.clone(), weight: weight.unwrap_or(0), reverse });
    }
    Ok(out)
}

fn parse_prefix_addr(arg_text: &str, loc: &Location) -> Result<(IpAddr, u8), ConfigError> {
    let (addr, prefix) = match arg_text.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (arg_text, None),
    };
    let ip: IpAddr = addr.parse().map_err(|_| ConfigError::invalid(loc, format!("invalid IP address '{addr}'")))?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let len = match prefix {
        None => max,
        Some(p) => match p.parse::<u8>() {
            Ok(v) if v <= max => v,
            _ => return Err(ConfigError::invalid(loc, format!("invalid prefix length '/{p}' for {ip} (0..={max})"))),
        },
    };
    Ok((ip, len))
}

/// Options of an address that the daemon does not pass to the kernel yet.
const VIP_NOT_ACTED: &str = "the daemon does not pass it to the kernel yet";

fn virtual_ip(ctx: &mut Ctx, n: &Node) -> Result<Option<VirtualIp>, ConfigError> {
    if n.block.is_some() {
        return Err(ConfigError::invalid(&n.loc, "a virtual address does not take a block"));
    }
    let (address, prefix_len) = parse_prefix_addr(&n.keyword, &n.loc)?;
    let mut vip = VirtualIp {
        address,
        prefix_len,
        broadcast: None,
        dev: None,
        scope: None,
        label: None,
        peer: None,
        no_track: false,
        flags: Vec::new(),
        location: n.loc.clone(),
    };
    let mut i = 0;
    let value = |i: usize, opt: &Arg| -> Result<&Arg, ConfigError> {
        n.args.get(i + 1).ok_or_else(|| ConfigError::invalid(&opt.loc, format!("missing value for '{}'", opt.text)))
    };
    while let Some(opt) = n.args.get(i) {
        match opt.text.as_str() {
            "brd" | "broadcast" => {
                let v = value(i, opt)?;
                if address.is_ipv6() {
                    ctx.warn(&opt.loc, format!("{address}: an IPv6 address has no broadcast; the address is skipped, as keepalived does"));
                    return Ok(None);
                }
                vip.broadcast = Some(match v.text.as_str() {
                    // '+' all host bits set, '-' none, as ip(8) and keepalived take them.
                    "+" | "-" if prefix_len <= 30 => {
                        let mask = u32::MAX.checked_shr(u32::from(prefix_len)).unwrap_or(0);
                        let base = u32::from(match address {
                            IpAddr::V4(a) => a,
                            IpAddr::V6(_) => Ipv4Addr::UNSPECIFIED,
                        });
                        Ipv4Addr::from(if v.text == "+" { base | mask } else { base & !mask })
                    }
                    "+" | "-" => {
                        ctx.warn(&v.loc, format!("{address}/{prefix_len}: prefix too long for a broadcast address; none is set"));
                        i += 2;
                        continue;
                    }
                    text => text.parse().map_err(|_| ConfigError::invalid(&v.loc, format!("invalid broadcast address '{text}'")))?,
                });
                i += 2;
            }
            "dev" => {
                vip.dev = Some(value(i, opt)?.text.clone());
                i += 2;
            }
            "scope" => {
                vip.scope = Some(value(i, opt)?.text.clone());
                i += 2;
            }
            "label" => {
                vip.label = Some(value(i, opt)?.text.clone());
                i += 2;
            }
            "peer" => {
                let v = value(i, opt)?;
                let (peer, with_prefix) = match v.text.split_once('/') {
                    Some((a, _)) => (a, true),
                    None => (v.text.as_str(), false),
                };
                let peer: IpAddr = peer.parse().map_err(|_| ConfigError::invalid(&v.loc, format!("invalid peer address '{}'", v.text)))?;
                if peer.is_ipv4() != address.is_ipv4() {
                    return Err(ConfigError::invalid(&v.loc, format!("peer {peer} is not of the family of {address}")));
                }
                if with_prefix {
                    ctx.warn(&v.loc, format!("peer {}: the prefix is the address's own ({address}/{prefix_len}); '/{}' ignored (keepalived 2.2 skips such an address)", v.text, v.text.split_once('/').map_or("", |x| x.1)));
                }
                vip.peer = Some(peer.to_string());
                i += 2;
            }
            "preferred_lft" => {
                let v = value(i, opt)?;
                if v.text != "forever" && v.text.parse::<u32>().is_err() {
                    return Err(ConfigError::invalid(&v.loc, format!("preferred_lft '{}': seconds or 'forever'", v.text)));
                }
                if address.is_ipv4() {
                    ctx.warn(&opt.loc, format!("preferred_lft on IPv4 address {address}: ignored, as keepalived does (IPv6 only)"));
                } else {
                    vip.flags.push(format!("preferred_lft {}", v.text));
                }
                i += 2;
            }
            "valid_lft" | "track_group" => {
                vip.flags.push(format!("{} {}", opt.text, value(i, opt)?.text));
                ctx.warn(&opt.loc, format!("address option '{}': read, but {VIP_NOT_ACTED}", opt.text));
                i += 2;
            }
            "no_track" => {
                vip.no_track = true;
                ctx.warn(&opt.loc, "address option 'no_track': read, but the daemon does not watch its addresses yet");
                i += 1;
            }
            "track" => {
                vip.no_track = false;
                i += 1;
            }
            "-nodad" | "nodad" => {
                vip.flags.push(opt.text.clone());
                i += 1;
            }
            "home" | "mngtmpaddr" if address.is_ipv4() => {
                ctx.warn(&opt.loc, format!("address option '{}' is for IPv6 addresses; ignored on {address}", opt.text));
                i += 1;
            }
            "home" | "noprefixroute" | "autojoin" | "mngtmpaddr" => {
                vip.flags.push(opt.text.clone());
                i += 1;
            }
            "use_vmac" => {
                vip.flags.push(opt.text.clone());
                ctx.warn(&opt.loc, format!("address option '{}': read, but {VIP_NOT_ACTED}", opt.text));
                i += 1;
            }
            other => {
                ctx.warn(&opt.loc, format!("unknown address option '{other}'; ignored, as keepalived does"));
                i += 1;
            }
        }
    }
    Ok(Some(vip))
}

pub(crate) fn virtual_ips(ctx: &mut Ctx, n: &Node) -> Result<Vec<VirtualIp>, ConfigError> {
    let mut out = Vec::new();
    for c in ctx.children(n)? {
        if let Some(v) = virtual_ip(ctx, c)? {
            out.push(v);
        }
    }
    Ok(out)
}

fn unicast_peer(ctx: &mut Ctx, p: &Node) -> Result<UnicastPeer, ConfigError> {
    let head = Arg { text: p.keyword.clone(), quoted: false, loc: p.loc.clone() };
    let mut peer = UnicastPeer { address: ip_arg(&head)?, min_ttl: 0, max_ttl: 255, location: p.loc.clone() };
    let mut i = 0;
    while let Some(opt) = p.args.get(i) {
        match (opt.text.as_str(), p.args.get(i + 1)) {
            ("min_ttl", Some(v)) => peer.min_ttl = u8_of(int_arg(v, "min_ttl", 0, 255)?),
            ("max_ttl", Some(v)) => peer.max_ttl = u8_of(int_arg(v, "max_ttl", 0, 255)?),
            _ => {
                // keepalived reads one peer per line and stops at what it does not know.
                let what = if ip_arg(opt).is_ok() { "a second address on one unicast_peer line" } else { "an unknown unicast_peer option" };
                ctx.warn(&opt.loc, format!("'{}' is {what}; the rest of the line is ignored, as keepalived does (one peer per line)", opt.text));
                break;
            }
        }
        i += 2;
    }
    if peer.min_ttl > peer.max_ttl {
        ctx.warn(&p.loc, format!("unicast_peer {}: min_ttl {} > max_ttl {}; every advert from it is dropped", peer.address, peer.min_ttl, peer.max_ttl));
    }
    Ok(peer)
}

fn state_of(ctx: &mut Ctx, n: &Node) -> Result<VrrpState, ConfigError> {
    let arg = ctx.value(n)?;
    match arg.text.to_ascii_uppercase().as_str() {
        "MASTER" => Ok(VrrpState::Master),
        "BACKUP" => Ok(VrrpState::Backup),
        _ => {
            ctx.warn(&arg.loc, format!("unknown state '{}' (MASTER or BACKUP); BACKUP is used, as keepalived does", arg.text));
            Ok(VrrpState::Backup)
        }
    }
}

fn authentication(ctx: &mut Ctx, n: &Node) -> Result<Option<Authentication>, ConfigError> {
    let mut auth_type = None;
    let mut pass = None;
    for e in ctx.children(n)? {
        match e.keyword.as_str() {
            "auth_type" => {
                let a = ctx.value(e)?;
                auth_type = match a.text.to_ascii_uppercase().as_str() {
                    "PASS" => Some(AuthType::Pass),
                    "AH" => Some(AuthType::Ah),
                    _ => {
                        ctx.warn(
                            &a.loc,
                            format!("unknown auth_type '{}' (PASS or AH); the instance runs without authentication, as keepalived does", a.text),
                        );
                        None
                    }
                };
            }
            "auth_pass" => {
                let a = ctx.value(e)?;
                let mut p = a.text.clone();
                if p.len() > 8 {
                    let mut cut = 8;
                    while !p.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    p.truncate(cut);
                    ctx.warn(&a.loc, format!("auth_pass is longer than 8 characters; truncated to '{p}' as keepalived does"));
                }
                pass = Some(p);
            }
            _ => ctx.unknown(e, AUTH)?,
        }
    }
    let Some(auth_type) = auth_type else {
        if !ctx.warnings.last().is_some_and(|w| w.message.contains("auth_type")) {
            ctx.warn(&n.loc, "authentication block without auth_type; the instance runs without authentication, as keepalived does");
        }
        return Ok(None);
    };
    match pass {
        Some(p) if !p.is_empty() => Ok(Some(Authentication { auth_type, auth_pass: p })),
        _ => {
            ctx.warn(&n.loc, "authentication without auth_pass; the instance runs without authentication, as keepalived does");
            Ok(None)
        }
    }
}

/// Applies the protocol version's resolution and range to a raw `advert_int`.
fn fix_advert_int(ctx: &mut Ctx, raw: f64, version: VrrpVersion, at: &Location) -> Result<Duration, ConfigError> {
    if raw <= 0.0 {
        return Err(ConfigError::invalid(at, "advert_int must be greater than 0"));
    }
    match version {
        VrrpVersion::V2 => {
            if raw > 255.0 {
                return Err(ConfigError::invalid(at, format!("advert_int {raw} is above 255 s, the VRRPv2 maximum")));
            }
            if raw < 1.0 {
                ctx.warn(
                    at,
                    format!(
                        "advert_int {raw} rounded up to 1 s: the VRRPv2 advertisement interval field counts whole seconds (use 'version 3' for sub-second intervals)"
                    ),
                );
                return Ok(Duration::from_secs(1));
            }
            let whole = raw.round();
            if (whole - raw).abs() > f64::EPSILON {
                ctx.warn(
                    at,
                    format!("advert_int {raw} rounded to {whole} s: the VRRPv2 advertisement interval field counts whole seconds"),
                );
            }
            Ok(Duration::from_secs(whole as u64))
        }
        VrrpVersion::V3 => {
            let centis = (raw * 100.0).round();
            if !(1.0..=4095.0).contains(&centis) {
                return Err(ConfigError::invalid(at, format!("advert_int {raw} is outside 0.01..=40.95 s, the VRRPv3 range")));
            }
            Ok(Duration::from_millis(centis as u64 * 10))
        }
    }
}

impl VrrpInstance {
    pub(crate) fn from_node(ctx: &mut Ctx, n: &Node, global: &GlobalDefs) -> Result<Self, ConfigError> {
        let name = ctx.block_name(n)?;
        let mut vi = VrrpInstance {
            name,
            location: n.loc.clone(),
            state: VrrpState::Backup,
            interface: None,
            virtual_router_id: 0,
            priority: 100,
            advert_int: Duration::from_secs(1),
            version: global.vrrp_version,
            preempt: true,
            preempt_delay: Duration::ZERO,
            accept: !global.vrrp_strict,
            authentication: None,
            virtual_ipaddresses: Vec::new(),
            virtual_ipaddresses_excluded: Vec::new(),
            virtual_routes: Vec::new(),
            unicast_src_ip: None,
            unicast_peers: Vec::new(),
            check_unicast_src: global.vrrp_check_unicast_src,
            no_virtual_ipaddress: false,
            promote_secondaries: false,
            mcast_dst_ip: None,
            use_vmac_addr: false,
            vrf: None,
            timer_expired_backup: false,
            track_src_ip: false,
            unicast_ttl: None,
            garp_extra_if: global.vrrp_garp_extra_if,
            unicast_fault_no_peer: false,
            strict_mode: global.vrrp_strict,
            lower_prio_no_advert: global.vrrp_lower_prio_no_advert,
            higher_prio_send_advert: global.vrrp_higher_prio_send_advert,
            down_timer_adverts: global.vrrp_down_timer_adverts,
            virtual_rules: Vec::new(),
            vmac: None,
            track_interfaces: Vec::new(),
            track_scripts: Vec::new(),
            track_files: Vec::new(),
            track_processes: Vec::new(),
            notify: Notify::default(),
            garp: Garp {
                master_delay: global.vrrp_garp_master_delay,
                master_repeat: global.vrrp_garp_master_repeat,
                master_refresh: global.vrrp_garp_master_refresh,
                master_refresh_repeat: global.vrrp_garp_master_refresh_repeat,
                lower_prio_delay: global.vrrp_garp_lower_prio_delay.unwrap_or(global.vrrp_garp_master_delay),
                lower_prio_repeat: global.vrrp_garp_lower_prio_repeat.unwrap_or(global.vrrp_garp_master_repeat),
            },
            smtp_alert: false,
            debug: None,
            dont_track_primary: false,
            mcast_src_ip: None,
            lvs_sync_daemon_interface: None,
        };
        let mut vrid_seen = false;
        let mut priority_seen = false;
        let mut accept_set = false;
        let mut unicast_ttl_at = None;
        let mut advert: Option<(f64, Location)> = None;
        let mut lower_delay_set = false;
        let mut no_advert_set = false;
        let mut lower_repeat_set = false;
        let mut xmit_base = false;
        let mut written = HashMap::new();
        for e in ctx.children(n)? {
            written.insert(e.keyword.clone(), e.loc.clone());
            if vi.notify.apply(ctx, e)? {
                continue;
            }
            match e.keyword.as_str() {
                "state" => vi.state = state_of(ctx, e)?,
                "interface" => vi.interface = Some(ctx.string(e)?),
                "virtual_router_id" => {
                    vi.virtual_router_id = u8_of(ctx.int(e, 1, 255)?);
                    vrid_seen = true;
                }
                "priority" => {
                    vi.priority = u8_of(ctx.int(e, 1, 255)?);
                    priority_seen = true;
                }
                "advert_int" => {
                    let a = ctx.value(e)?;
                    let v: f64 = a.text.parse().ok().filter(|v: &f64| v.is_finite()).ok_or_else(|| {
                        ConfigError::invalid(&a.loc, format!("'advert_int' needs a time in seconds, got '{}'", a.text))
                    })?;
                    advert = Some((v, a.loc.clone()));
                }
                "version" => vi.version = VrrpVersion::from_node(ctx, e)?,
                "nopreempt" => vi.preempt = false,
                "preempt" => vi.preempt = ctx.flag(e)?,
                "preempt_delay" => {
                    let d = ctx.timer(e)?;
                    if d > Duration::from_secs(1000) {
                        return Err(ConfigError::invalid(&e.args[0].loc, "preempt_delay must be between 0 and 1000 seconds"));
                    }
                    vi.preempt_delay = d;
                }
                "accept" => {
                    vi.accept = ctx.flag(e)?;
                    accept_set = true;
                }
                "no_accept" => {
                    vi.accept = false;
                    accept_set = true;
                }
                "authentication" => vi.authentication = authentication(ctx, e)?,
                "virtual_ipaddress" => vi.virtual_ipaddresses.extend(virtual_ips(ctx, e)?),
                "virtual_ipaddress_excluded" => vi.virtual_ipaddresses_excluded.extend(virtual_ips(ctx, e)?),
                "virtual_routes" => vi.virtual_routes.extend(super::iproute::routes(ctx, e, super::iproute::Origin::Virtual)?),
                "virtual_rules" => vi.virtual_rules.extend(super::iproute::rules(ctx, e, super::iproute::Origin::Virtual)?),
                "unicast_src_ip" => vi.unicast_src_ip = Some(ctx.ip(e)?),
                "unicast_peer" => {
                    for p in ctx.children(e)? {
                        let peer = unicast_peer(ctx, p)?;
                        if peer.min_ttl != 0 || peer.max_ttl != 255 {
                            vi.check_unicast_src = true;
                        }
                        if vi.unicast_peers.iter().any(|q| q.address == peer.address) {
                            ctx.warn(&p.loc, format!("unicast_peer {} is given twice; the second is ignored", peer.address));
                            continue;
                        }
                        vi.unicast_peers.push(peer);
                    }
                }
                "check_unicast_src" => vi.check_unicast_src = ctx.flag(e)?,
                "no_virtual_ipaddress" => vi.no_virtual_ipaddress = ctx.flag(e)?,
                "promote_secondaries" => vi.promote_secondaries = ctx.flag(e)?,
                "mcast_dst_ip" => {
                    vi.mcast_dst_ip = Some(ctx.ip(e)?);
                    ctx.not_acted(e, INSTANCE);
                }
                "use_vmac_addr" => {
                    vi.use_vmac_addr = ctx.flag(e)?;
                    ctx.not_acted(e, INSTANCE);
                }
                "vrf" => {
                    vi.vrf = Some(ctx.string(e)?);
                    ctx.not_acted(e, INSTANCE);
                }
                "timer_expired_backup" => {
                    vi.timer_expired_backup = ctx.flag(e)?;
                    ctx.not_acted(e, INSTANCE);
                }
                "track_src_ip" => {
                    vi.track_src_ip = ctx.flag(e)?;
                    ctx.not_acted(e, INSTANCE);
                }
                "garp_extra_if" | "vmac_garp_intvl" => vi.garp_extra_if = Some(GarpExtraIf::from_node(ctx, e, 0, "garp_extra_if")?),
                "unicast_ttl" => {
                    vi.unicast_ttl = Some(u8_of(ctx.int(e, 1, 255)?));
                    unicast_ttl_at = Some(e.loc.clone());
                }
                "unicast_fault_no_peer" => {
                    vi.unicast_fault_no_peer = ctx.flag(e)?;
                    ctx.not_acted(e, INSTANCE);
                }
                "strict_mode" => vi.strict_mode = ctx.flag(e)?,
                "lower_prio_no_advert" => {
                    vi.lower_prio_no_advert = ctx.flag(e)?;
                    no_advert_set = true;
                }
                "higher_prio_send_advert" => vi.higher_prio_send_advert = ctx.flag(e)?,
                "down_timer_adverts" => {
                    if let Some(v) = ctx.down_timer_adverts(e)? {
                        vi.down_timer_adverts = v;
                    }
                }
                "use_vmac" => {
                    vi.vmac = Some(Vmac { name: e.args.first().map(|a| a.text.clone()), xmit_base: false });
                }
                "vmac_xmit_base" => xmit_base = ctx.flag(e)?,
                "track_interface" => vi.track_interfaces.extend(track_interfaces(ctx, e)?),
                "track_script" => vi.track_scripts.extend(track_refs(ctx, e)?),
                "track_file" => vi.track_files.extend(track_refs(ctx, e)?),
                "track_process" => vi.track_processes.extend(track_refs(ctx, e)?),
                "garp_master_delay" => vi.garp.master_delay = ctx.timer(e)?,
                "garp_master_repeat" => vi.garp.master_repeat = ctx.u32(e, 0, 65535)?,
                "garp_master_refresh" => {
                    let t = ctx.timer(e)?;
                    vi.garp.master_refresh = (!t.is_zero()).then_some(t);
                }
                "garp_master_refresh_repeat" => vi.garp.master_refresh_repeat = ctx.u32(e, 1, 65535)?,
                "garp_lower_prio_delay" => {
                    vi.garp.lower_prio_delay = ctx.timer(e)?;
                    lower_delay_set = true;
                }
                "garp_lower_prio_repeat" => {
                    vi.garp.lower_prio_repeat = ctx.u32(e, 0, 65535)?;
                    lower_repeat_set = true;
                }
                "smtp_alert" => vi.smtp_alert = ctx.flag(e)?,
                "debug" => {
                    vi.debug = Some(match e.args.first() {
                        None => 1,
                        Some(_) => u8_of(ctx.int(e, 0, 4)?),
                    });
                    ctx.not_acted(e, INSTANCE);
                }
                "dont_track_primary" => {
                    vi.dont_track_primary = ctx.flag(e)?;
                    ctx.not_acted(e, INSTANCE);
                }
                "mcast_src_ip" => vi.mcast_src_ip = Some(ctx.ip(e)?),
                "lvs_sync_daemon_interface" => {
                    vi.lvs_sync_daemon_interface = Some(ctx.string(e)?);
                    ctx.not_acted(e, INSTANCE);
                }
                _ => ctx.unknown(e, INSTANCE)?,
            }
        }
        // keepalived: an instance that starts as MASTER without a priority owns its addresses.
        if !priority_seen && vi.state == VrrpState::Master {
            vi.priority = 255;
        }
        if !vrid_seen {
            return Err(ConfigError::invalid(&n.loc, format!("vrrp_instance {} has no virtual_router_id", vi.name)));
        }
        // An instance-level garp_master_* without a lower_prio_* counterpart
        // carries over, as the global keywords do.
        if !lower_delay_set && global.vrrp_garp_lower_prio_delay.is_none() {
            vi.garp.lower_prio_delay = vi.garp.master_delay;
        }
        if !lower_repeat_set && global.vrrp_garp_lower_prio_repeat.is_none() {
            vi.garp.lower_prio_repeat = vi.garp.master_repeat;
        }
        if let Some(v) = vi.vmac.as_mut() {
            v.xmit_base = xmit_base;
        }
        vi.settle(ctx, &Explicit { accept: accept_set, lower_prio: lower_delay_set || lower_repeat_set, lower_prio_no_advert: no_advert_set, unicast_ttl: unicast_ttl_at, written })?;
        if let Some((raw, at)) = advert {
            vi.advert_int = fix_advert_int(ctx, raw, vi.version, &at)?;
        }
        Ok(vi)
    }
}

/// A typed `vrrp_script NAME { ... }`.
#[derive(Debug, Clone, PartialEq)]
pub struct VrrpScript {
    /// The script's name, referenced by `track_script`.
    pub name: String,
    /// Where `vrrp_script` is written.
    pub location: Location,
    /// `script`: the command to run. Exactly one of `script` and `policy` is given.
    pub script: Option<Script>,
    /// `policy NAME_OR_PATH` (hav extension): a WASM policy's priority entry instead of a
    /// script; a `--policy` name or a path to a `.wasm` module (relative to this file).
    pub policy: Option<String>,
    /// `args STRING...` (with `policy`): free-form arguments handed to the policy.
    pub args: Option<String>,
    /// `targets { [KIND] IP PORT ... }` (with `policy`): the endpoints the policy's host calls
    /// may reach, each for the host calls its line names; none when empty.
    pub targets: Vec<super::check::PolicyTarget>,
    /// `interval`, default 1 s.
    pub interval: Duration,
    /// `timeout`; the interval when absent.
    pub timeout: Option<Duration>,
    /// `weight` (-253..=253), default 0 (a failure faults the instance).
    pub weight: i32,
    /// `weight W reverse`.
    pub reverse: bool,
    /// `rise`, default 1.
    pub rise: u32,
    /// `fall`, default 1.
    pub fall: u32,
    /// `user USER [GROUP]`.
    pub user: Option<RunAs>,
    /// `init_fail`: start in the failed state.
    pub init_fail: bool,
}

impl VrrpScript {
    pub(crate) fn from_node(ctx: &mut Ctx, n: &Node) -> Result<Self, ConfigError> {
        let name = ctx.block_name(n)?;
        let mut script = None;
        let mut policy = None;
        let mut s = VrrpScript {
            name,
            location: n.loc.clone(),
            script: None,
            policy: None,
            args: None,
            targets: Vec::new(),
            interval: Duration::from_secs(1),
            timeout: None,
            weight: 0,
            reverse: false,
            rise: 1,
            fall: 1,
            user: None,
            init_fail: false,
        };
        for e in ctx.children(n)? {
            match e.keyword.as_str() {
                "script" => script = Some((ctx.script(e)?, e.loc.clone())),
                "policy" => policy = Some((ctx.string(e)?, e.loc.clone())),
                "args" => {
                    ctx.string_first(e)?;
                    s.args = Some(e.args.iter().map(|a| a.text.as_str()).collect::<Vec<_>>().join(" "));
                }
                "targets" => s.targets.extend(super::value::targets_block(ctx, e)?),
                "interval" => s.interval = nonzero_timer(ctx, e)?,
                "timeout" => s.timeout = Some(nonzero_timer(ctx, e)?),
                "weight" => {
                    if e.args.is_empty() {
                        return Err(ConfigError::invalid(&e.loc, "missing value for 'weight'"));
                    }
                    let w = i32_of(int_arg(&e.args[0], "weight", -253, 253)?);
                    s.weight = w;
                    s.reverse = match e.args.get(1) {
                        Some(r) if r.text == "reverse" => true,
                        Some(r) => return Err(ConfigError::invalid(&r.loc, format!("expected 'reverse', got '{}'", r.text))),
                        None => false,
                    };
                }
                "rise" => s.rise = ctx.u32(e, 1, u32::MAX)?,
                "fall" => s.fall = ctx.u32(e, 1, u32::MAX)?,
                "user" => {
                    let user = ctx.string_first(e)?;
                    s.user = Some(RunAs { user, group: e.args.get(1).map(|a| a.text.clone()) });
                }
                "init_fail" => s.init_fail = ctx.flag(e)?,
                _ => ctx.unknown(e, "vrrp_script")?,
            }
        }
        match (script, policy) {
            (Some((sc, _)), None) => s.script = Some(sc),
            (None, Some((p, _))) => s.policy = Some(p),
            (Some(_), Some((_, at))) => {
                return Err(ConfigError::invalid(
                    &at,
                    format!("vrrp_script {} has both 'script' and 'policy'; give exactly one", s.name),
                ))
            }
            (None, None) => {
                return Err(ConfigError::invalid(
                    &n.loc,
                    format!("vrrp_script {} has neither 'script' nor 'policy'; give exactly one", s.name),
                ))
            }
        }
        if s.policy.is_none() && (s.args.is_some() || !s.targets.is_empty()) {
            return Err(ConfigError::invalid(&n.loc, format!("vrrp_script {}: 'args' and 'targets' need 'policy'", s.name)));
        }
        Ok(s)
    }
}

fn nonzero_timer(ctx: &mut Ctx, e: &Node) -> Result<Duration, ConfigError> {
    let d = ctx.timer(e)?;
    if d.is_zero() {
        return Err(ConfigError::invalid(&e.args[0].loc, format!("{} must be greater than 0", e.keyword)));
    }
    Ok(d)
}

/// `init_file [VALUE] [overwrite]` of a `vrrp_track_file`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InitFile {
    /// The value written when the file is created, default 0.
    pub value: i64,
    /// Write it even if the file exists.
    pub overwrite: bool,
}

/// A typed `vrrp_track_file NAME { ... }`.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackFileDef {
    /// The name, referenced by `track_file` and `FILE_CHECK`.
    pub name: String,
    /// Where `vrrp_track_file` is written.
    pub location: Location,
    /// `file PATH`, required.
    pub file: String,
    /// `weight` (-254..=254), default 1.
    pub weight: i32,
    /// `weight W reverse`.
    pub reverse: bool,
    /// `init_file`.
    pub init_file: Option<InitFile>,
}

impl TrackFileDef {
    pub(crate) fn from_node(ctx: &mut Ctx, n: &Node) -> Result<Self, ConfigError> {
        let name = ctx.block_name(n)?;
        let mut file = None;
        let mut t = TrackFileDef { name, location: n.loc.clone(), file: String::new(), weight: 1, reverse: false, init_file: None };
        for e in ctx.children(n)? {
            match e.keyword.as_str() {
                "file" => file = Some(ctx.string(e)?),
                "weight" => {
                    let mut shifted = e.clone();
                    shifted.args.insert(0, Arg { text: "weight".into(), quoted: false, loc: e.loc.clone() });
                    let (w, r) = weight_tail(ctx, &shifted, 0, -254, 254)?;
                    t.weight = w.unwrap_or(1);
                    t.reverse = r;
                }
                "init_file" => {
                    let mut init = InitFile { value: 0, overwrite: false };
                    for a in &e.args {
                        if a.text == "overwrite" {
                            init.overwrite = true;
                        } else {
                            init.value = int_arg(a, "init_file", i64::from(i32::MIN), i64::from(i32::MAX))?;
                        }
                    }
                    t.init_file = Some(init);
                }
                _ => ctx.unknown(e, "vrrp_track_file")?,
            }
        }
        t.file = file.ok_or_else(|| ConfigError::invalid(&n.loc, format!("vrrp_track_file {} has no 'file'", t.name)))?;
        Ok(t)
    }
}

/// A typed `vrrp_sync_group NAME { ... }`.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncGroup {
    /// The group name.
    pub name: String,
    /// Where `vrrp_sync_group` is written.
    pub location: Location,
    /// `group { ... }`: the member instances, with where each is named.
    pub group: Vec<(String, Location)>,
    /// Notify scripts.
    pub notify: Notify,
    /// `track_interface { ... }`.
    pub track_interfaces: Vec<TrackInterface>,
    /// `track_script { ... }`.
    pub track_scripts: Vec<TrackRef>,
    /// `track_file { ... }`.
    pub track_files: Vec<TrackRef>,
    /// `track_process { ... }`.
    pub track_processes: Vec<TrackRef>,
    /// `smtp_alert`.
    pub smtp_alert: bool,
    /// `nopreempt`.
    pub nopreempt: bool,
    /// `sync_group_tracking_weight`: the members' tracking weights apply (keepalived ignores
    /// them in a sync group otherwise: a failure faults the member).
    pub tracking_weight: bool,
}

impl SyncGroup {
    pub(crate) fn from_node(ctx: &mut Ctx, n: &Node) -> Result<Self, ConfigError> {
        let name = ctx.block_name(n)?;
        let mut g = SyncGroup {
            name,
            location: n.loc.clone(),
            group: Vec::new(),
            notify: Notify::default(),
            track_interfaces: Vec::new(),
            track_scripts: Vec::new(),
            track_files: Vec::new(),
            track_processes: Vec::new(),
            smtp_alert: false,
            nopreempt: false,
            tracking_weight: false,
        };
        for e in ctx.children(n)? {
            if g.notify.apply(ctx, e)? {
                continue;
            }
            match e.keyword.as_str() {
                "group" => {
                    for m in ctx.children(e)? {
                        g.group.push((m.keyword.clone(), m.loc.clone()));
                        g.group.extend(m.args.iter().map(|a| (a.text.clone(), a.loc.clone())));
                    }
                }
                "track_interface" => g.track_interfaces.extend(track_interfaces(ctx, e)?),
                "track_script" => g.track_scripts.extend(track_refs(ctx, e)?),
                "track_file" => g.track_files.extend(track_refs(ctx, e)?),
                "track_process" => g.track_processes.extend(track_refs(ctx, e)?),
                "smtp_alert" => g.smtp_alert = ctx.flag(e)?,
                "nopreempt" => g.nopreempt = true,
                "sync_group_tracking_weight" => g.tracking_weight = true,
                _ => ctx.unknown(e, "vrrp_sync_group")?,
            }
        }
        if g.group.is_empty() {
            return Err(ConfigError::invalid(&n.loc, format!("vrrp_sync_group {} has no 'group {{ ... }}' members", g.name)));
        }
        Ok(g)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parser::Loader;
    use std::path::Path;
    use std::sync::Arc;

    fn instance(body: &str) -> Result<(VrrpInstance, Ctx), ConfigError> {
        let src = format!("vrrp_instance V {{\n{body}\ninterface eth0\nno_virtual_ipaddress\n}}\n");
        let nodes = Loader::new().load_str(Arc::from(Path::new("v.conf")), &src)?;
        let mut ctx = Ctx::default();
        let vi = VrrpInstance::from_node(&mut ctx, &nodes[0], &GlobalDefs::default())?;
        Ok((vi, ctx))
    }

    /// An instance with one IPv4 VIP (strict mode refuses one without).
    fn strict(body: &str) -> Result<(VrrpInstance, Ctx), ConfigError> {
        let src = format!("vrrp_instance V {{\n{body}\ninterface eth0\nvirtual_ipaddress {{\n10.0.0.9/24\n}}\n}}\n");
        let nodes = Loader::new().load_str(Arc::from(Path::new("v.conf")), &src)?;
        let mut ctx = Ctx::default();
        let vi = VrrpInstance::from_node(&mut ctx, &nodes[0], &GlobalDefs::default())?;
        Ok((vi, ctx))
    }

    fn said(ctx: &Ctx, what: &str) -> Option<u32> {
        ctx.warnings.iter().find(|w| w.message.contains(what)).map(|w| w.location.line)
    }

    #[test]
    fn test_defaults() {
        let (vi, ctx) = instance("virtual_router_id 7").expect("valid");
        assert_eq!(vi.priority, 100);
        assert_eq!(vi.state, VrrpState::Backup);
        assert_eq!(vi.advert_int, Duration::from_secs(1));
        assert_eq!(vi.version, VrrpVersion::V2);
        assert!(vi.preempt && vi.accept);
        assert_eq!(vi.garp.master_delay, Duration::from_secs(5));
        assert_eq!(vi.garp.lower_prio_repeat, 5);
        assert!(ctx.warnings.is_empty());
    }

    #[test]
    fn test_vip_options() {
        let (vi, _) = instance("virtual_router_id 7\nvirtual_ipaddress {\n10.0.0.1/24 brd 10.0.0.255 dev eth1 scope global label eth1:1\n10.0.0.2/24 no_track\n}")
            .expect("valid");
        let v = &vi.virtual_ipaddresses[0];
        assert_eq!(v.prefix_len, 24);
        assert_eq!(v.broadcast, Some(Ipv4Addr::new(10, 0, 0, 255)));
        assert_eq!(v.dev.as_deref(), Some("eth1"));
        assert_eq!(v.label.as_deref(), Some("eth1:1"));
        assert!(vi.virtual_ipaddresses[1].no_track);
        assert_eq!(vi.virtual_ipaddresses[1].prefix_len, 24);
    }

    #[test]
    fn test_bad_prefix_located() {
        let e = instance("virtual_router_id 7\nvirtual_ipaddress {\n    10.0.0.1/33\n}").expect_err("bad prefix");
        assert_eq!(e.to_string(), "v.conf:4:5: invalid prefix length '/33' for 10.0.0.1 (0..=32)");
    }

    #[test]
    fn test_advert_int_v3_fraction_and_v2_rounding() {
        let (vi, ctx) = instance("virtual_router_id 7\nversion 3\nadvert_int 0.25").expect("valid");
        assert_eq!(vi.advert_int, Duration::from_millis(250));
        assert!(ctx.warnings.is_empty());
        let (vi, ctx) = instance("virtual_router_id 7\nadvert_int 0.5").expect("valid");
        assert_eq!(vi.advert_int, Duration::from_secs(1));
        assert_eq!(ctx.warnings.len(), 1);
        assert!(ctx.warnings[0].message.contains("whole seconds"));
    }

    #[test]
    fn test_auth_pass_truncated() {
        let (vi, ctx) = instance("virtual_router_id 7\nauthentication {\nauth_type PASS\nauth_pass 123456789\n}").expect("valid");
        assert_eq!(vi.authentication.expect("auth").auth_pass, "12345678");
        assert_eq!(ctx.warnings.len(), 1);
    }

    #[test]
    fn test_missing_vrid() {
        let e = instance("priority 10").expect_err("no vrid");
        assert_eq!(e.location().line, 1);
    }

    #[test]
    fn test_track_weights() {
        let (vi, _) = instance("virtual_router_id 7\ntrack_interface {\neth0 weight -20\neth1\n}\ntrack_script {\nchk weight 5 reverse\n}")
            .expect("valid");
        assert_eq!(vi.track_interfaces[0].weight, -20);
        assert_eq!(vi.track_interfaces[1].weight, 0);
        assert_eq!(vi.track_scripts[0].weight, Some(5));
        assert!(vi.track_scripts[0].reverse);
    }

    #[test]
    fn test_master_advert_options() {
        let (vi, ctx) = instance("virtual_router_id 7").expect("valid");
        assert_eq!((vi.lower_prio_no_advert, vi.higher_prio_send_advert, vi.down_timer_adverts), (false, false, 3));
        assert!(ctx.warnings.is_empty());
        let (vi, ctx) = instance("virtual_router_id 7\nlower_prio_no_advert\nhigher_prio_send_advert on\ndown_timer_adverts 100").expect("valid");
        assert_eq!((vi.lower_prio_no_advert, vi.higher_prio_send_advert, vi.down_timer_adverts), (true, true, 100));
        assert!(ctx.warnings.is_empty(), "{:?}", ctx.warnings);
        // keepalived logs a value outside 1..100 and keeps the default.
        for bad in ["0", "101", "-1"] {
            let (vi, ctx) = instance(&format!("virtual_router_id 7\ndown_timer_adverts {bad}")).expect("valid");
            assert_eq!(vi.down_timer_adverts, 3);
            assert_eq!(ctx.warnings.len(), 1, "{bad}");
            assert!(ctx.warnings[0].message.contains("outside 1..100"), "{}", ctx.warnings[0].message);
            assert_eq!(ctx.warnings[0].location.line, 3);
        }
        // Strict mode: lower_prio_no_advert on, higher_prio_send_advert off, each with a warning when written otherwise.
        let (vi, ctx) = strict("virtual_router_id 7\nstrict_mode\nlower_prio_no_advert off\nhigher_prio_send_advert").expect("valid");
        assert_eq!((vi.lower_prio_no_advert, vi.higher_prio_send_advert), (true, false));
        let texts: Vec<&str> = ctx.warnings.iter().map(|w| w.message.as_str()).collect();
        assert!(texts.iter().any(|m| m.contains("requires lower_prio_no_advert")), "{texts:?}");
        assert!(texts.iter().any(|m| m.contains("does not allow higher_prio_send_advert")), "{texts:?}");
        let (vi, _) = strict("virtual_router_id 7\nstrict_mode").expect("valid");
        assert!(vi.lower_prio_no_advert);
    }

    /// keepalived's strict mode (vrrp_strict / strict_mode), rule by rule: what it refuses,
    /// what it resets (with a warning at the keyword), what it only reports.
    #[test]
    fn test_strict_no_vips() {
        // 0 VIPs: refused; no_virtual_ipaddress cleared first (keepalived 2.3), so refused too.
        let e = instance("virtual_router_id 7\nstrict_mode").expect_err("no VIPs");
        assert!(e.to_string().contains("at least one virtual_ipaddress"), "{e}");
        let (_, ctx) = instance("virtual_router_id 7").expect("not strict: runs");
        assert!(ctx.warnings.is_empty(), "{:?}", ctx.warnings);
    }

    #[test]
    fn test_strict_unicast_peers() {
        // Refused on an interface, at the unicast_peer block.
        let e = strict("virtual_router_id 7\nstrict_mode\nunicast_peer {\n10.0.0.2\n}").expect_err("unicast");
        assert!(e.to_string().contains("does not allow unicast peers"), "{e}");
        assert_eq!(e.location().line, 4);
        // Without an interface (unicast_src_ip only) keepalived runs it, and so does hav.
        let src = "vrrp_instance V {\nstrict_mode\nvirtual_router_id 7\nunicast_src_ip 10.0.0.1\nunicast_peer {\n10.0.0.2\n}\nvirtual_ipaddress {\n10.0.0.9/24\n}\n}\n";
        let nodes = Loader::new().load_str(Arc::from(Path::new("v.conf")), src).expect("parse");
        let mut ctx = Ctx::default();
        let vi = VrrpInstance::from_node(&mut ctx, &nodes[0], &GlobalDefs::default()).expect("no interface: runs");
        assert_eq!(vi.unicast_peers.len(), 1);
    }

    #[test]
    fn test_strict_state_auth_accept() {
        // State MASTER only for the owner.
        let (vi, ctx) = strict("virtual_router_id 7\nstrict_mode\nstate MASTER\npriority 100").expect("valid");
        assert_eq!(vi.state, VrrpState::Backup);
        assert!(said(&ctx, "initial state follows priority 255").is_some(), "{:?}", ctx.warnings);
        let (vi, _) = strict("virtual_router_id 7\nstrict_mode\nstate BACKUP\npriority 255").expect("valid");
        assert_eq!(vi.state, VrrpState::Master);
        // No authentication.
        let (vi, ctx) = strict("virtual_router_id 7\nstrict_mode\nauthentication {\nauth_type PASS\nauth_pass x\n}").expect("valid");
        assert!(vi.authentication.is_none());
        assert!(said(&ctx, "allows no authentication").is_some(), "{:?}", ctx.warnings);
        // Accept: off unless owner by default; an explicit accept on VRRPv2 reset.
        let (vi, _) = strict("virtual_router_id 7\nstrict_mode").expect("valid");
        assert!(!vi.accept);
        let (vi, _) = strict("virtual_router_id 7\nstrict_mode\npriority 255").expect("valid");
        assert!(vi.accept);
        let (vi, ctx) = strict("virtual_router_id 7\nstrict_mode\naccept").expect("valid");
        assert!(!vi.accept);
        assert!(said(&ctx, "accept mode breaks RFC 3768").is_some(), "{:?}", ctx.warnings);
        let (vi, _) = strict("virtual_router_id 7\nstrict_mode\nversion 3\naccept").expect("valid");
        assert!(vi.accept, "VRRPv3 allows accept mode");
    }

    #[test]
    fn test_strict_preempt_delay_down_timer_xmit_base() {
        let (vi, ctx) = strict("virtual_router_id 7\nstrict_mode\npreempt_delay 10\ndown_timer_adverts 5\nuse_vmac\nvmac_xmit_base").expect("valid");
        assert_eq!(vi.preempt_delay, Duration::ZERO);
        assert_eq!(vi.down_timer_adverts, 3);
        assert_eq!(vi.vmac.as_ref().map(|v| v.xmit_base), Some(false));
        assert_eq!(said(&ctx, "preempt_delay is incompatible with strict mode"), Some(4), "{:?}", ctx.warnings);
        assert_eq!(said(&ctx, "down_timer_adverts 5 is incompatible with strict mode"), Some(5), "{:?}", ctx.warnings);
        assert_eq!(said(&ctx, "vmac_xmit_base is incompatible with strict mode"), Some(7), "{:?}", ctx.warnings);
        // Not strict: all kept, no warning.
        let (vi, ctx) = strict("virtual_router_id 7\npreempt_delay 10\ndown_timer_adverts 5\nuse_vmac\nvmac_xmit_base").expect("valid");
        assert_eq!((vi.preempt_delay, vi.down_timer_adverts, vi.vmac.map(|v| v.xmit_base)), (Duration::from_secs(10), 5, Some(true)));
        assert!(ctx.warnings.is_empty(), "{:?}", ctx.warnings);
        // nopreempt is allowed in strict mode (keepalived does not touch it).
        let (vi, ctx) = strict("virtual_router_id 7\nstrict_mode\nnopreempt").expect("valid");
        assert!(!vi.preempt);
        assert!(ctx.warnings.is_empty(), "{:?}", ctx.warnings);
    }

    #[test]
    fn test_strict_first_ipv6_vip_link_local() {
        let v6 = |vips: &str, extra: &str| {
            let src = format!("vrrp_instance V {{\nvirtual_router_id 7\nversion 3\ninterface eth0\n{extra}\nvirtual_ipaddress {{\n{vips}\n}}\n}}\n");
            let nodes = Loader::new().load_str(Arc::from(Path::new("v.conf")), &src).expect("parse");
            let mut ctx = Ctx::default();
            VrrpInstance::from_node(&mut ctx, &nodes[0], &GlobalDefs::default()).expect("runs");
            ctx
        };
        let ctx = v6("fd00::9/64\nfe80::9/64", "strict_mode");
        assert_eq!(said(&ctx, "first IPv6 virtual address must be link-local"), Some(7), "{:?}", ctx.warnings);
        assert!(said(&v6("fe80::9/64\nfd00::9/64", "strict_mode"), "link-local").is_none());
        assert!(said(&v6("fd00::9/64", ""), "link-local").is_none(), "only strict mode says so");
    }

    #[test]
    fn test_strict_garps_and_adverts() {
        let (vi, ctx) = strict("virtual_router_id 7\nstrict_mode\ngarp_lower_prio_repeat 3\ngarp_lower_prio_delay 2").expect("valid");
        assert_eq!((vi.garp.lower_prio_repeat, vi.garp.lower_prio_delay), (0, Duration::ZERO));
        assert!(said(&ctx, "sends no lower-priority GARP burst").is_some(), "{:?}", ctx.warnings);
    }

    #[test]
    fn test_garp_extra_if() {
        let (vi, ctx) = instance("virtual_router_id 7\ngarp_extra_if all 100").expect("valid");
        assert_eq!(vi.garp_extra_if, Some(GarpExtraIf { interval: Duration::from_secs(100), all: true }));
        assert!(ctx.warnings.is_empty(), "{:?}", ctx.warnings);
        let (vi, _) = instance("virtual_router_id 7\ngarp_extra_if 0").expect("0 turns it off");
        assert_eq!(vi.garp_extra_if, Some(GarpExtraIf { interval: Duration::ZERO, all: false }));
        let (vi, ctx) = instance("virtual_router_id 7\nvmac_garp_intvl 5 all").expect("old spelling");
        assert_eq!(vi.garp_extra_if, Some(GarpExtraIf { interval: Duration::from_secs(5), all: true }));
        assert_eq!(said(&ctx, "deprecated"), Some(3), "{:?}", ctx.warnings);
        for bad in ["all", "86401", "-1", "x", ""] {
            let e = instance(&format!("virtual_router_id 7\ngarp_extra_if {bad}")).expect_err(bad);
            assert_eq!(e.location().line, 3, "{bad}: {e}");
        }
        // The global one is the default; it needs at least 1 s.
        let g = GlobalDefs { vrrp_garp_extra_if: Some(GarpExtraIf { interval: Duration::from_secs(60), all: false }), ..GlobalDefs::default() };
        let nodes = Loader::new().load_str(Arc::from(Path::new("v.conf")), "vrrp_instance V {\nvirtual_router_id 7\ninterface eth0\nno_virtual_ipaddress\n}\n").expect("parse");
        let vi = VrrpInstance::from_node(&mut Ctx::default(), &nodes[0], &g).expect("valid");
        assert_eq!(vi.garp_extra_if, g.vrrp_garp_extra_if);
        let e = crate::config::load_str(Path::new("g.conf"), "global_defs {\n vrrp_garp_extra_if 0\n}\n").expect_err("0 globally");
        assert_eq!(e.location().line, 2);
    }

    /// The warning says what an address owner in hav does with received adverts (the core's
    /// test_master_receives_higher_lower_equal shows it: answers lower, yields to an equal
    /// priority from a higher address).
    #[test]
    fn test_owner_ignore_adverts_says_what_hav_does() {
        let (_, ctx) = instance("virtual_router_id 7\npriority 255\nowner_ignore_adverts").expect("valid");
        assert_eq!(ctx.warnings.len(), 1, "{:?}", ctx.warnings);
        let w = &ctx.warnings[0];
        assert_eq!(w.location.line, 4);
        assert!(w.message.contains("'owner_ignore_adverts'") && w.message.contains("never dropping them"), "{}", w.message);
        assert!(w.message.contains("gives way to another priority-255 router with a higher address"), "{}", w.message);
    }

    #[test]
    fn test_unicast_ttl() {
        let (vi, ctx) = instance("virtual_router_id 7\nunicast_src_ip 10.0.0.1\nunicast_peer {\n10.0.0.2\n}\nunicast_ttl 7").expect("valid");
        assert_eq!(vi.unicast_ttl, Some(7));
        assert!(ctx.warnings.is_empty(), "{:?}", ctx.warnings);
        let (vi, _) = instance("virtual_router_id 7\nunicast_peer {\n10.0.0.2\n}").expect("valid");
        assert_eq!(vi.unicast_ttl, None, "no unicast_ttl: the family's default when sending");
        // Without unicast peers keepalived warns and drops it; multicast keeps TTL 255.
        let (vi, ctx) = instance("virtual_router_id 7\nunicast_ttl 7").expect("valid");
        assert_eq!(vi.unicast_ttl, None);
        assert_eq!(ctx.warnings.len(), 1, "{:?}", ctx.warnings);
        assert!(ctx.warnings[0].message.contains("unicast_ttl without unicast_peer"), "{}", ctx.warnings[0].message);
        assert_eq!((ctx.warnings[0].location.line, ctx.warnings[0].location.col), (3, 1));
        for bad in ["0", "256", "x"] {
            let e = instance(&format!("virtual_router_id 7\nunicast_ttl {bad}")).expect_err(bad);
            assert_eq!(e.location().line, 3, "{bad}: {e}");
        }
    }
}
