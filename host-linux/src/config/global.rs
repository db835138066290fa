//! `global_defs { ... }`.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use super::error::ConfigError;
use super::parser::Node;
use super::value::{port_arg, Ctx, RunAs};
use super::vrrp::VrrpVersion;

/// The SMTP server that alert mails go through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpServer {
    /// Host name or address.
    pub host: String,
    /// Port; 25 unless given.
    pub port: u16,
}

/// `lvs_sync_daemon INTERFACE VRRP_INSTANCE [id N] [maxlen N] [port N] [ttl N] [group IP]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LvsSyncDaemon {
    /// Interface the IPVS sync daemon sends on.
    pub interface: String,
    /// The VRRP instance whose state decides master/backup sync.
    pub instance: String,
    /// Sync id (0..=255).
    pub id: Option<u8>,
    /// Maximum sync message length.
    pub maxlen: Option<u16>,
    /// UDP port.
    pub port: Option<u16>,
    /// Multicast TTL.
    pub ttl: Option<u8>,
    /// Multicast group.
    pub group: Option<std::net::IpAddr>,
    /// Where the keyword is written.
    pub location: super::error::Location,
}

/// The typed `global_defs` block with keepalived's defaults applied.
#[derive(Debug, Clone, PartialEq)]
pub struct GlobalDefs {
    /// `router_id` (also the old `lvs_id`); the host name when absent.
    pub router_id: Option<String>,
    /// `notification_email { ... }` recipients.
    pub notification_email: Vec<String>,
    /// `notification_email_from`.
    pub notification_email_from: Option<String>,
    /// `smtp_server HOST [PORT]`.
    pub smtp_server: Option<SmtpServer>,
    /// `smtp_connect_timeout`, default 30 s.
    pub smtp_connect_timeout: Duration,
    /// `vrrp_mcast_group4`, default 224.0.0.18.
    pub vrrp_mcast_group4: Ipv4Addr,
    /// `vrrp_mcast_group6`, default ff02::12.
    pub vrrp_mcast_group6: Ipv6Addr,
    /// `vrrp_garp_master_delay`: second burst of gratuitous ARPs after becoming master, default 5 s.
    pub vrrp_garp_master_delay: Duration,
    /// `vrrp_garp_master_repeat`: gratuitous ARPs per burst, default 5.
    pub vrrp_garp_master_repeat: u32,
    /// `vrrp_garp_master_refresh`: periodic refresh while master; none by default.
    pub vrrp_garp_master_refresh: Option<Duration>,
    /// `vrrp_garp_master_refresh_repeat`, default 1.
    pub vrrp_garp_master_refresh_repeat: u32,
    /// `vrrp_garp_lower_prio_delay`; the master delay when absent.
    pub vrrp_garp_lower_prio_delay: Option<Duration>,
    /// `vrrp_garp_lower_prio_repeat`; the master repeat when absent.
    pub vrrp_garp_lower_prio_repeat: Option<u32>,
    /// `vrrp_garp_interval`, default 0 (no pacing).
    pub vrrp_garp_interval: Duration,
    /// `vrrp_gna_interval`, default 0 (no pacing).
    pub vrrp_gna_interval: Duration,
    /// `vrrp_strict`: RFC-strict mode.
    pub vrrp_strict: bool,
    /// `vrrp_lower_prio_no_advert`: the default of the instances' `lower_prio_no_advert`.
    pub vrrp_lower_prio_no_advert: bool,
    /// `vrrp_higher_prio_send_advert`: the default of the instances' `higher_prio_send_advert`.
    pub vrrp_higher_prio_send_advert: bool,
    /// `vrrp_down_timer_adverts` (1..=100): the default of the instances' `down_timer_adverts`, 3.
    pub vrrp_down_timer_adverts: u8,
    /// `nftables [NAME]`, `nftables_priority`, `nftables_counters`: the tables of accept mode
    /// off ([`crate::net::nft`]); keepalived's defaults when none is given.
    pub nftables: crate::net::nft::Settings,
    /// `vrrp_version`, default 2; instances may override.
    pub vrrp_version: VrrpVersion,
    /// `vrrp_check_unicast_src`.
    pub vrrp_check_unicast_src: bool,
    /// `vrrp_skip_check_adv_addr`.
    pub vrrp_skip_check_adv_addr: bool,
    /// `script_user USER [GROUP]`.
    pub script_user: Option<RunAs>,
    /// `enable_script_security`.
    pub enable_script_security: bool,
    /// `notify_fifo PATH [USER [GROUP]]`: VRRP (and, in keepalived, checker) events.
    pub notify_fifo: Option<FifoSpec>,
    /// `vrrp_notify_fifo PATH [USER [GROUP]]`: VRRP events.
    pub vrrp_notify_fifo: Option<FifoSpec>,
    /// `lvs_notify_fifo PATH [USER [GROUP]]`: checker events.
    pub lvs_notify_fifo: Option<FifoSpec>,
    /// `lvs_sync_daemon ...`.
    pub lvs_sync_daemon: Option<LvsSyncDaemon>,
    /// `vrrp_garp_extra_if [all] SECONDS`: the instances' default `garp_extra_if`.
    pub vrrp_garp_extra_if: Option<super::vrrp::GarpExtraIf>,
    /// `vrrp_rt_priority N` (1..=99): the VRRP thread runs under `SCHED_RR` at N from the start.
    pub vrrp_rt_priority: Option<i32>,
    /// `vrrp_rlimit_rttime MICROS` (old spelling `vrrp_rlimit_rtime`): `RLIMIT_RTTIME` while the
    /// VRRP thread runs realtime; default 10000, as keepalived.
    pub vrrp_rlimit_rttime: u64,
    /// `min_auto_priority_delay MICROS` (1..=10000000, default 1 s): how late a timer must fire
    /// before the VRRP thread's realtime priority is raised (with `max_auto_priority`).
    pub min_auto_priority_delay: Duration,
    /// `max_auto_priority [N]`: the cap of the realtime priority the VRRP thread is raised to
    /// when its timers fire late (no value: 99); `0` (the default) and `-1` never raise it.
    pub max_auto_priority: Option<i32>,
    /// `dynamic_interfaces`: configured interfaces may be absent at start-up.
    pub dynamic_interfaces: bool,
    /// `default_interface`: where a unicast instance without `interface`
    /// runs and where addresses without `dev` go when the instance has no
    /// interface; keepalived's default is `eth0`.
    pub default_interface: Option<String>,
    /// `startup_script`: run, and waited for, when the daemon starts, before anything else.
    pub startup_script: Option<super::value::Script>,
    /// `startup_script_timeout`, default 10 s.
    pub startup_script_timeout: Duration,
    /// `shutdown_script`: run, and waited for, when the daemon stops, after everything else.
    pub shutdown_script: Option<super::value::Script>,
    /// `shutdown_script_timeout`, default 10 s.
    pub shutdown_script_timeout: Duration,
    /// `notify_fifo_script COMMAND [USER [GROUP]]`: the reader of `notify_fifo`, started by
    /// the daemon with the FIFO's path as its last argument.
    pub notify_fifo_script: Option<super::value::Script>,
    /// `vrrp_notify_fifo_script`: the reader of `vrrp_notify_fifo`, likewise.
    pub vrrp_notify_fifo_script: Option<super::value::Script>,
    /// `lvs_notify_fifo_script`: the reader of `lvs_notify_fifo`, likewise.
    pub lvs_notify_fifo_script: Option<super::value::Script>,
    /// `vrrp_startup_delay`: the daemon waits this long before it starts its instances.
    pub vrrp_startup_delay: Option<Duration>,
    /// `vrrp_delay_after_boot` (keepalived 2.4): like `vrrp_startup_delay`, counted from boot.
    pub vrrp_delay_after_boot: Option<Duration>,
}

impl GlobalDefs {
    /// How long the daemon waits before it starts its instances: `vrrp_startup_delay`, or what
    /// is left of `vrrp_delay_after_boot` after `uptime`, whichever is longer.
    pub fn startup_delay(&self, uptime: Duration) -> Duration {
        let after_boot = self.vrrp_delay_after_boot.map_or(Duration::ZERO, |d| d.saturating_sub(uptime));
        self.vrrp_startup_delay.unwrap_or_default().max(after_boot)
    }
}

impl Default for GlobalDefs {
    fn default() -> Self {
        GlobalDefs {
            router_id: None,
            notification_email: Vec::new(),
            notification_email_from: None,
            smtp_server: None,
            smtp_connect_timeout: Duration::from_secs(30),
            vrrp_mcast_group4: Ipv4Addr::new(224, 0, 0, 18),
            vrrp_mcast_group6: Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12),
            vrrp_garp_master_delay: Duration::from_secs(5),
            vrrp_garp_master_repeat: 5,
            vrrp_garp_master_refresh: None,
            vrrp_garp_master_refresh_repeat: 1,
            vrrp_garp_lower_prio_delay: None,
            vrrp_garp_lower_prio_repeat: None,
            vrrp_garp_interval: Duration::ZERO,
            vrrp_gna_interval: Duration::ZERO,
            vrrp_strict: false,
            vrrp_lower_prio_no_advert: false,
            vrrp_higher_prio_send_advert: false,
            vrrp_down_timer_adverts: 3,
            nftables: crate::net::nft::Settings::default(),
            vrrp_version: VrrpVersion::V2,
            vrrp_check_unicast_src: false,
            vrrp_skip_check_adv_addr: false,
            script_user: None,
            enable_script_security: false,
            notify_fifo: None,
            vrrp_notify_fifo: None,
            lvs_notify_fifo: None,
            lvs_sync_daemon: None,
            max_auto_priority: None,
            vrrp_rt_priority: None,
            vrrp_rlimit_rttime: 10_000,
            min_auto_priority_delay: Duration::from_secs(1),
            vrrp_garp_extra_if: None,
            dynamic_interfaces: false,
            default_interface: None,
            startup_script: None,
            startup_script_timeout: Duration::from_secs(10),
            shutdown_script: None,
            shutdown_script_timeout: Duration::from_secs(10),
            notify_fifo_script: None,
            vrrp_notify_fifo_script: None,
            lvs_notify_fifo_script: None,
            vrrp_startup_delay: None,
            vrrp_delay_after_boot: None,
        }
    }
}

const BLOCK: &str = "global_defs";

impl GlobalDefs {
    /// Applies the statements of one `global_defs` block (several blocks merge).
    pub(crate) fn apply(&mut self, ctx: &mut Ctx, nodes: &[Node]) -> Result<(), ConfigError> {
        for n in nodes {
            match n.keyword.as_str() {
                "router_id" | "lvs_id" => self.router_id = Some(ctx.string(n)?),
                "notification_email" => {
                    for e in ctx.children(n)? {
                        self.notification_email.push(e.keyword.clone());
                        self.notification_email.extend(e.args.iter().map(|a| a.text.clone()));
                    }
                }
                "notification_email_from" => self.notification_email_from = Some(ctx.string(n)?),
                "smtp_server" => {
                    let host = ctx.string_first(n)?;
                    let port = match n.args.get(1) {
                        Some(a) => port_arg(a, "smtp_server port")?,
                        None => 25,
                    };
                    ctx.no_more(n, 2);
                    self.smtp_server = Some(SmtpServer { host, port });
                }
                "smtp_connect_timeout" => self.smtp_connect_timeout = ctx.timer(n)?,
                "vrrp_mcast_group4" => {
                    let arg = ctx.value(n)?;
                    let ip: Ipv4Addr = arg
                        .text
                        .parse()
                        .map_err(|_| ConfigError::invalid(&arg.loc, format!("invalid IPv4 address '{}'", arg.text)))?;
                    if !ip.is_multicast() {
                        return Err(ConfigError::invalid(&arg.loc, format!("vrrp_mcast_group4 {ip} is not a multicast address")));
                    }
                    self.vrrp_mcast_group4 = ip;
                }
                "vrrp_mcast_group6" => {
                    let arg = ctx.value(n)?;
                    let ip: Ipv6Addr = arg
                        .text
                        .parse()
                        .map_err(|_| ConfigError::invalid(&arg.loc, format!("invalid IPv6 address '{}'", arg.text)))?;
                    if !ip.is_multicast() {
                        return Err(ConfigError::invalid(&arg.loc, format!("vrrp_mcast_group6 {ip} is not a multicast address")));
                    }
                    self.vrrp_mcast_group6 = ip;
                }
                "vrrp_garp_master_delay" => self.vrrp_garp_master_delay = ctx.timer(n)?,
                "vrrp_garp_master_repeat" => self.vrrp_garp_master_repeat = ctx.u32(n, 0, 65535)?,
                "vrrp_garp_master_refresh" => {
                    let t = ctx.timer(n)?;
                    self.vrrp_garp_master_refresh = (!t.is_zero()).then_some(t);
                }
                "vrrp_garp_master_refresh_repeat" => self.vrrp_garp_master_refresh_repeat = ctx.u32(n, 1, 65535)?,
                "vrrp_garp_lower_prio_delay" => self.vrrp_garp_lower_prio_delay = Some(ctx.timer(n)?),
                "vrrp_garp_lower_prio_repeat" => self.vrrp_garp_lower_prio_repeat = Some(ctx.u32(n, 0, 65535)?),
                "vrrp_garp_interval" => self.vrrp_garp_interval = ctx.timer(n)?,
                "vrrp_gna_interval" => self.vrrp_gna_interval = ctx.timer(n)?,
                "vrrp_strict" => self.vrrp_strict = ctx.flag(n)?,
                "vrrp_garp_extra_if" | "vrrp_vmac_garp_intvl" => {
                    self.vrrp_garp_extra_if = Some(super::vrrp::GarpExtraIf::from_node(ctx, n, 1, "vrrp_garp_extra_if")?);
                }
                "vrrp_lower_prio_no_advert" => self.vrrp_lower_prio_no_advert = ctx.flag(n)?,
                "vrrp_higher_prio_send_advert" => self.vrrp_higher_prio_send_advert = ctx.flag(n)?,
                "vrrp_down_timer_adverts" => {
                    if let Some(v) = ctx.down_timer_adverts(n)? {
                        self.vrrp_down_timer_adverts = v;
                    }
                }
                "nftables" => {
                    if let Some(a) = n.args.first() {
                        // nft's identifiers: a letter, then letters, digits, '_', '.', '-'.
                        let ok = a.text.len() < 64
                            && a.text.starts_with(|c: char| c.is_ascii_alphabetic())
                            && a.text.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
                        if !ok {
                            return Err(ConfigError::invalid(&a.loc, format!("nftables: '{}' is not a table name", a.text)));
                        }
                        self.nftables.table.clone_from(&a.text);
                    }
                    ctx.no_more(n, 1);
                }
                "nftables_priority" => self.nftables.priority = i32::try_from(ctx.int(n, -1000, 1000)?).unwrap_or(-1),
                "nftables_counters" => self.nftables.counters = true,
                // keepalived 2.2 matches link-local VIPs by interface index with or without it,
                // as hav does.
                "nftables_ifindex" => {}
                "vrrp_iptables" => {
                    ctx.warn(&n.loc, "vrrp_iptables: hav drops traffic for accept mode off with nftables (table 'keepalived'), not iptables chains".to_owned());
                }
                "vrrp_version" => self.vrrp_version = VrrpVersion::from_node(ctx, n)?,
                "vrrp_check_unicast_src" => self.vrrp_check_unicast_src = ctx.flag(n)?,
                "vrrp_skip_check_adv_addr" => self.vrrp_skip_check_adv_addr = ctx.flag(n)?,
                "script_user" => {
                    let user = ctx.string_first(n)?;
                    let group = n.args.get(1).map(|a| a.text.clone());
                    ctx.no_more(n, 2);
                    self.script_user = Some(RunAs { user, group });
                }
                "enable_script_security" => {
                    // keepalived's handler takes no value and ignores any given.
                    if let Some(extra) = n.args.first() {
                        ctx.warn(&extra.loc, format!("enable_script_security takes no value; '{}' ignored and script security is on, as keepalived does", extra.text));
                    }
                    self.enable_script_security = true;
                }
                "default_interface" => self.default_interface = Some(ctx.string(n)?),
                "vrrp_min_garp" => {
                    if ctx.flag(n)? {
                        // As keepalived: one message, no repeat or refresh, no delay, for every
                        // value still at its default (later keywords override).
                        let d = GlobalDefs::default();
                        if self.vrrp_garp_master_repeat == d.vrrp_garp_master_repeat {
                            self.vrrp_garp_master_repeat = 1;
                        }
                        if self.vrrp_garp_master_refresh == d.vrrp_garp_master_refresh {
                            self.vrrp_garp_master_refresh = None;
                        }
                        if self.vrrp_garp_master_refresh_repeat == d.vrrp_garp_master_refresh_repeat {
                            self.vrrp_garp_master_refresh_repeat = 1;
                        }
                        if self.vrrp_garp_master_delay == d.vrrp_garp_master_delay {
                            self.vrrp_garp_master_delay = Duration::ZERO;
                        }
                    }
                }
                "startup_script" | "shutdown_script" => {
                    let script = ctx.script(n)?;
                    let slot = if n.keyword == "startup_script" { &mut self.startup_script } else { &mut self.shutdown_script };
                    *slot = Some(script);
                    ctx.not_acted(n, BLOCK);
                }
                "startup_script_timeout" | "shutdown_script_timeout" => {
                    let t = Duration::from_secs(u64::from(ctx.u32(n, 1, 1000)?));
                    let slot = if n.keyword == "startup_script_timeout" { &mut self.startup_script_timeout } else { &mut self.shutdown_script_timeout };
                    *slot = t;
                    ctx.not_acted(n, BLOCK);
                }
                "notify_fifo_script" | "vrrp_notify_fifo_script" | "lvs_notify_fifo_script" => {
                    // keepalived's form, as for notify scripts: COMMAND [USER [GROUP]].
                    let script = ctx.notify_script(n)?;
                    match n.keyword.as_str() {
                        "notify_fifo_script" => self.notify_fifo_script = Some(script),
                        "vrrp_notify_fifo_script" => self.vrrp_notify_fifo_script = Some(script),
                        _ => self.lvs_notify_fifo_script = Some(script),
                    }
                    ctx.not_acted(n, BLOCK);
                }
                "vrrp_startup_delay" | "vrrp_delay_after_boot" => {
                    let t = ctx.timer(n)?;
                    if n.keyword == "vrrp_startup_delay" {
                        self.vrrp_startup_delay = Some(t);
                    } else {
                        self.vrrp_delay_after_boot = Some(t);
                    }
                }
                "notify_fifo" => self.notify_fifo = Some(fifo_spec(ctx, n)?),
                "vrrp_notify_fifo" => self.vrrp_notify_fifo = Some(fifo_spec(ctx, n)?),
                "lvs_notify_fifo" => {
                    self.lvs_notify_fifo = Some(fifo_spec(ctx, n)?);
                    ctx.not_acted(n, BLOCK);
                }
                "lvs_sync_daemon" => self.lvs_sync_daemon = Some(sync_daemon(ctx, n)?),
                "max_auto_priority" => {
                    self.max_auto_priority = Some(match n.args.first() {
                        None => 99,
                        Some(_) => i32::try_from(ctx.int(n, -1, 99)?).unwrap_or(-1),
                    });
                }
                "min_auto_priority_delay" => {
                    self.min_auto_priority_delay = Duration::from_micros(u64::try_from(ctx.int(n, 1, 10_000_000)?).unwrap_or(1));
                }
                "vrrp_rt_priority" => {
                    // keepalived clamps to the SCHED_RR range, with a warning.
                    let v = ctx.int(n, i64::from(i32::MIN), i64::from(i32::MAX))?;
                    let clamped = v.clamp(1, 99);
                    if clamped != v {
                        ctx.warn(&n.loc, format!("vrrp_rt_priority {v} is outside 1..=99 (SCHED_RR); {clamped} is used, as keepalived does"));
                    }
                    self.vrrp_rt_priority = i32::try_from(clamped).ok();
                }
                "vrrp_rlimit_rttime" | "vrrp_rlimit_rtime" => {
                    if n.keyword == "vrrp_rlimit_rtime" {
                        ctx.warn(&n.loc, "'vrrp_rlimit_rtime' is deprecated (keepalived reads it as 'vrrp_rlimit_rttime'); read as 'vrrp_rlimit_rttime'");
                    }
                    // Halved for the soft limit, which must not be 0: keepalived takes 1 as 2.
                    self.vrrp_rlimit_rttime = u64::try_from(ctx.int(n, 1, i64::from(u32::MAX))?).unwrap_or(2).max(2);
                }
                "dynamic_interfaces" => self.dynamic_interfaces = true,
                _ => ctx.unknown(n, BLOCK)?,
            }
        }
        Ok(())
    }
}

fn sync_daemon(ctx: &mut Ctx, n: &Node) -> Result<LvsSyncDaemon, ConfigError> {
    let interface = ctx.string_first(n)?;
    let Some(instance) = n.args.get(1) else {
        return Err(ConfigError::invalid(&n.loc, "lvs_sync_daemon needs INTERFACE and VRRP_INSTANCE"));
    };
    let mut d = LvsSyncDaemon {
        interface,
        instance: instance.text.clone(),
        id: None,
        maxlen: None,
        port: None,
        ttl: None,
        group: None,
        location: n.loc.clone(),
    };
    let mut i = 2;
    while let Some(opt) = n.args.get(i) {
        let Some(val) = n.args.get(i + 1) else {
            return Err(ConfigError::invalid(&opt.loc, format!("missing value for '{}'", opt.text)));
        };
        match opt.text.as_str() {
            "id" => d.id = Some(u8::try_from(super::value::int_arg(val, "id", 0, 255)?).unwrap_or(0)),
            "maxlen" => d.maxlen = Some(u16::try_from(super::value::int_arg(val, "maxlen", 1, 65507)?).unwrap_or(0)),
            "port" => d.port = Some(port_arg(val, "port")?),
            "ttl" => d.ttl = Some(u8::try_from(super::value::int_arg(val, "ttl", 1, 255)?).unwrap_or(1)),
            "group" => d.group = Some(super::value::ip_arg(val)?),
            other => return Err(ConfigError::invalid(&opt.loc, format!("unknown lvs_sync_daemon option '{other}'"))),
        }
        i += 2;
    }
    Ok(d)
}

impl Ctx {
    /// The first argument as a string; extra arguments are the caller's business.
    pub(crate) fn string_first(&mut self, node: &Node) -> Result<String, ConfigError> {
        if node.block.is_some() {
            return Err(ConfigError::invalid(&node.loc, format!("'{}' does not take a block", node.keyword)));
        }
        node.args
            .first()
            .map(|a| a.text.clone())
            .ok_or_else(|| ConfigError::invalid(&node.loc, format!("missing value for '{}'", node.keyword)))
    }
}

/// One of keepalived's notify FIFOs: `notify_fifo PATH [USER [GROUP]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FifoSpec {
    /// Where the FIFO is.
    pub path: String,
    /// Who owns it when the daemon creates it (mode 0600); the daemon's user when absent.
    pub owner: Option<RunAs>,
}

fn fifo_spec(ctx: &mut Ctx, n: &Node) -> Result<FifoSpec, ConfigError> {
    let path = ctx.string_first(n)?;
    ctx.no_more(n, 3);
    let owner = n.args.get(1).map(|u| RunAs { user: u.text.clone(), group: n.args.get(2).map(|g| g.text.clone()) });
    Ok(FifoSpec { path, owner })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parser::Loader;
    use std::path::Path;
    use std::sync::Arc;

    fn global(src: &str) -> Result<(GlobalDefs, Ctx), ConfigError> {
        let nodes = Loader::new().load_str(Arc::from(Path::new("g.conf")), src)?;
        let mut ctx = Ctx::default();
        let mut g = GlobalDefs::default();
        g.apply(&mut ctx, &nodes)?;
        Ok((g, ctx))
    }

    #[test]
    fn test_defaults_and_values() {
        let (g, ctx) = global("smtp_server 10.0.0.1 2525\nvrrp_version 3\nvrrp_garp_interval 0.5\nlvs_flush\n").expect("valid");
        assert_eq!(g.smtp_server, Some(SmtpServer { host: "10.0.0.1".into(), port: 2525 }));
        assert_eq!(g.vrrp_version, VrrpVersion::V3);
        assert_eq!(g.vrrp_garp_interval, Duration::from_millis(500));
        assert_eq!(g.smtp_connect_timeout, Duration::from_secs(30));
        assert_eq!(g.vrrp_mcast_group4, Ipv4Addr::new(224, 0, 0, 18));
        // Only lvs_flush is ignored; vrrp_garp_interval is acted on.
        assert_eq!(ctx.warnings.len(), 1, "{:?}", ctx.warnings);
        assert!(ctx.warnings[0].message.contains("lvs_flush"), "{:?}", ctx.warnings);
    }

    #[test]
    fn test_bad_mcast_group() {
        let e = global("vrrp_mcast_group4 10.0.0.1").expect_err("not multicast");
        assert_eq!(e.to_string(), "g.conf:1:19: vrrp_mcast_group4 10.0.0.1 is not a multicast address");
    }

    #[test]
    fn test_typo() {
        let e = global("router_di x").expect_err("typo");
        assert_eq!(e.to_string(), "g.conf:1:1: unknown keyword 'router_di' in global_defs (did you mean 'router_id'?)");
    }
}
