//! IPVS sections: `virtual_server`, `real_server`, `virtual_server_group`.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::check::{CheckDefaults, Checker, CHECKER_KEYWORDS};
use super::error::{ConfigError, Location};
use super::parser::{Arg, Node};
use super::value::{int_arg, ip_arg, port_arg, Ctx, Script};

/// What a virtual server is keyed on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum VirtualServerKey {
    /// `virtual_server IP PORT`.
    Addr(SocketAddr),
    /// `virtual_server fwmark N`.
    Fwmark(u32),
    /// `virtual_server group NAME`.
    Group(String),
}

/// `tunnel_type` of the TUN forwarding method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TunnelType {
    /// IP-in-IP (the default).
    Ipip,
    /// Generic UDP encapsulation to this port.
    Gue {
        /// Destination UDP port.
        port: u16,
    },
    /// GRE.
    Gre,
}

/// `lb_kind` / `lvs_method`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LbKind {
    /// Masquerading.
    Nat,
    /// Direct routing.
    Dr,
    /// Tunnelling.
    Tun(TunnelType),
}

/// `protocol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// TCP (default).
    Tcp,
    /// UDP.
    Udp,
    /// SCTP.
    Sctp,
}

/// `ip_family`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpFamily {
    /// `inet`.
    Inet,
    /// `inet6`.
    Inet6,
}

/// Scheduler flags (`flag-1`..`flag-3`, and their `sh-*`/`mh-*` names) and one-packet scheduling.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SchedFlags {
    /// `sh-fallback` / `mh-fallback` / `flag-1`.
    pub fallback: bool,
    /// `sh-port` / `mh-port` / `flag-2`.
    pub port: bool,
    /// `flag-3`.
    pub flag3: bool,
    /// `ops`: one-packet scheduling (UDP).
    pub ops: bool,
}

/// `sorry_server IP PORT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SorryServer {
    /// Address and port (port 0 for fwmark services).
    pub addr: SocketAddr,
    /// `sorry_server_lvs_method`; the virtual server's when absent.
    pub lvs_method: Option<LbKind>,
    /// `sorry_server_inhibit`.
    pub inhibit: bool,
}

/// A typed `real_server IP [PORT] { ... }`.
#[derive(Debug, Clone, PartialEq)]
pub struct RealServer {
    /// Address and port (port 0 when omitted, e.g. under fwmark).
    pub addr: SocketAddr,
    /// Where `real_server` is written.
    pub location: Location,
    /// `weight`, default 1.
    pub weight: i32,
    /// `inhibit_on_failure`: set weight 0 instead of removing; the virtual server's when absent.
    pub inhibit_on_failure: bool,
    /// `notify_up`.
    pub notify_up: Option<Script>,
    /// `notify_down`.
    pub notify_down: Option<Script>,
    /// `uthreshold`: upper connection threshold.
    pub uthreshold: Option<u32>,
    /// `lthreshold`: lower connection threshold.
    pub lthreshold: Option<u32>,
    /// `lvs_method` override.
    pub lb_kind: Option<LbKind>,
    /// Health checkers.
    pub checkers: Vec<Checker>,
}

/// A typed `virtual_server ... { ... }`, keepalived defaults applied.
#[derive(Debug, Clone, PartialEq)]
pub struct VirtualServer {
    /// What the service is keyed on.
    pub key: VirtualServerKey,
    /// Where `virtual_server` is written.
    pub location: Location,
    /// `delay_loop`, default 60 s.
    pub delay_loop: Duration,
    /// `lb_algo` / `lvs_sched`, default `wlc`.
    pub lb_algo: String,
    /// `lb_kind` / `lvs_method`, default NAT.
    pub lb_kind: LbKind,
    /// `persistence_timeout` in seconds; `persistence_timeout` without value = 360.
    pub persistence_timeout: Option<u32>,
    /// `persistence_granularity` netmask.
    pub persistence_granularity: Option<String>,
    /// `persistence_engine`.
    pub persistence_engine: Option<String>,
    /// `protocol`, default TCP.
    pub protocol: Protocol,
    /// `ha_suspend`.
    pub ha_suspend: bool,
    /// `virtualhost` for HTTP checkers.
    pub virtualhost: Option<String>,
    /// `alpha`.
    pub alpha: bool,
    /// `omega`.
    pub omega: bool,
    /// `quorum`, default 1.
    pub quorum: u32,
    /// `quorum_up`.
    pub quorum_up: Option<Script>,
    /// `quorum_down`.
    pub quorum_down: Option<Script>,
    /// `hysteresis`, default 0.
    pub hysteresis: u32,
    /// `sorry_server`.
    pub sorry_server: Option<SorryServer>,
    /// `inhibit_on_failure` default for real servers.
    pub inhibit_on_failure: bool,
    /// `retry` default for checkers.
    pub retry: Option<u32>,
    /// `delay_before_retry` default for checkers.
    pub delay_before_retry: Option<Duration>,
    /// `warmup` default for checkers.
    pub warmup: Option<Duration>,
    /// `connect_timeout` default for checkers.
    pub connect_timeout: Option<Duration>,
    /// Scheduler flags.
    pub sched_flags: SchedFlags,
    /// `ip_family`.
    pub ip_family: Option<IpFamily>,
    /// `real_server` entries.
    pub real_servers: Vec<RealServer>,
    /// `weight` (1..=65535): keepalived hands it to IPVS; hav does not yet.
    pub weight: Option<u32>,
    /// `announce` (a hav extension): hold the VIP as a route while the virtual server has quorum.
    pub announce: Option<super::announce::Announce>,
}

fn socket_addr(ip: &Arg, port: Option<&Arg>) -> Result<SocketAddr, ConfigError> {
    let ip = ip_arg(ip)?;
    let port = match port {
        Some(p) => port_arg(p, "port")?,
        None => 0,
    };
    Ok(SocketAddr::new(ip, port))
}

fn lb_kind(ctx: &mut Ctx, n: &Node) -> Result<LbKind, ConfigError> {
    let a = ctx.string_first(n)?;
    let first = &n.args[0];
    let kind = match a.to_ascii_uppercase().as_str() {
        "NAT" => LbKind::Nat,
        "DR" => LbKind::Dr,
        "TUN" => {
            let mut t = TunnelType::Ipip;
            let mut i = 1;
            while let Some(opt) = n.args.get(i) {
                match opt.text.as_str() {
                    "type" | "tunnel_type" => {
                        let v = n.args.get(i + 1).ok_or_else(|| ConfigError::invalid(&opt.loc, "missing tunnel type"))?;
                        match v.text.as_str() {
                            "ipip" => t = TunnelType::Ipip,
                            "gre" => t = TunnelType::Gre,
                            "gue" => {
                                let p = n.args.get(i + 2).filter(|p| p.text == "port").ok_or_else(|| {
                                    ConfigError::invalid(&v.loc, "tunnel type gue needs 'port N'")
                                })?;
                                let pv = n.args.get(i + 3).ok_or_else(|| ConfigError::invalid(&p.loc, "missing value for 'port'"))?;
                                t = TunnelType::Gue { port: port_arg(pv, "port")? };
                                i += 2;
                            }
                            other => {
                                return Err(ConfigError::invalid(&v.loc, format!("tunnel type must be ipip, gue or gre, got '{other}'")))
                            }
                        }
                        i += 2;
                    }
                    "nocsum" | "csum" | "remcsum" | "nocksum" | "cksum" | "remcksum" => i += 1,
                    other => return Err(ConfigError::invalid(&opt.loc, format!("unknown TUN option '{other}'"))),
                }
            }
            return Ok(LbKind::Tun(t));
        }
        _ => return Err(ConfigError::invalid(&first.loc, format!("{} must be NAT, DR or TUN, got '{a}'", n.keyword))),
    };
    ctx.no_more(n, 1);
    Ok(kind)
}

const SCHEDULERS: &[&str] = &["rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh", "twos"];

const VS: &str = "virtual_server";
const RS: &str = "virtual_server/real_server";

impl VirtualServer {
    pub(crate) fn from_node(ctx: &mut Ctx, n: &Node) -> Result<Self, ConfigError> {
        let key = match n.args.first() {
            None => return Err(ConfigError::invalid(&n.loc, "virtual_server needs 'IP PORT', 'fwmark N' or 'group NAME'")),
            Some(a) if a.text == "fwmark" => {
                let v = n.args.get(1).ok_or_else(|| ConfigError::invalid(&a.loc, "missing value for 'fwmark'"))?;
                VirtualServerKey::Fwmark(u32::try_from(int_arg(v, "fwmark", 1, i64::from(u32::MAX))?).unwrap_or(1))
            }
            Some(a) if a.text == "group" => {
                let v = n.args.get(1).ok_or_else(|| ConfigError::invalid(&a.loc, "missing value for 'group'"))?;
                VirtualServerKey::Group(v.text.clone())
            }
            Some(a) => {
                let port = n.args.get(1).ok_or_else(|| ConfigError::invalid(&a.loc, "virtual_server IP needs a PORT"))?;
                VirtualServerKey::Addr(socket_addr(a, Some(port))?)
            }
        };
        let mut vs = VirtualServer {
            key,
            location: n.loc.clone(),
            delay_loop: Duration::from_secs(60),
            lb_algo: "wlc".into(),
            lb_kind: LbKind::Nat,
            persistence_timeout: None,
            persistence_granularity: None,
            persistence_engine: None,
            protocol: Protocol::Tcp,
            ha_suspend: false,
            virtualhost: None,
            alpha: false,
            omega: false,
            quorum: 1,
            quorum_up: None,
            quorum_down: None,
            hysteresis: 0,
            sorry_server: None,
            inhibit_on_failure: false,
            retry: None,
            delay_before_retry: None,
            warmup: None,
            connect_timeout: None,
            sched_flags: SchedFlags::default(),
            ip_family: None,
            real_servers: Vec::new(),
            weight: None,
            announce: None,
        };
        let mut sorry_method = None;
        let mut sorry_inhibit = false;
        let children = ctx.children(n)?;
        // Real servers need every virtual-server-level default, wherever in the
        // block it is written, so they are read in a second pass.
        for e in children {
            match e.keyword.as_str() {
                "real_server" => {}
                "delay_loop" => {
                    vs.delay_loop = ctx.timer(e)?;
                    if vs.delay_loop.is_zero() {
                        return Err(ConfigError::invalid(&e.args[0].loc, "delay_loop must be greater than 0"));
                    }
                }
                "lb_algo" | "lvs_sched" => {
                    let a = ctx.value(e)?;
                    if !SCHEDULERS.contains(&a.text.as_str()) {
                        ctx.warn(&a.loc, format!("scheduler '{}' is not one hav knows ({}); passed to IPVS as is", a.text, SCHEDULERS.join(" ")));
                    }
                    vs.lb_algo = a.text.clone();
                }
                "lb_kind" | "lvs_method" => vs.lb_kind = lb_kind(ctx, e)?,
                "persistence_timeout" => {
                    vs.persistence_timeout = match e.args.first() {
                        None => Some(360),
                        Some(a) if a.text == "0" => {
                            // keepalived refuses 0 and runs the service without persistence.
                            ctx.warn(&a.loc, "persistence_timeout 0 is out of range (1..=2678400); the virtual server runs without persistence, as keepalived does");
                            None
                        }
                        Some(_) => Some(ctx.u32(e, 1, 2_678_400)?),
                    }
                }
                "persistence_granularity" => vs.persistence_granularity = Some(ctx.string(e)?),
                "persistence_engine" => vs.persistence_engine = Some(ctx.string(e)?),
                "protocol" => {
                    let a = ctx.value(e)?;
                    vs.protocol = match a.text.to_ascii_uppercase().as_str() {
                        "TCP" => Protocol::Tcp,
                        "UDP" => Protocol::Udp,
                        "SCTP" => Protocol::Sctp,
                        _ => return Err(ConfigError::invalid(&a.loc, format!("protocol must be TCP, UDP or SCTP, got '{}'", a.text))),
                    };
                }
                "ha_suspend" => vs.ha_suspend = ctx.flag(e)?,
                "virtualhost" => vs.virtualhost = Some(ctx.string(e)?),
                "alpha" => vs.alpha = ctx.flag(e)?,
                "no_alpha" => vs.alpha = false,
                "omega" => vs.omega = ctx.flag(e)?,
                "no_omega" => vs.omega = false,
                "quorum" => {
                    vs.quorum = match e.args.first() {
                        Some(a) if a.text == "0" => {
                            ctx.warn(&a.loc, "quorum 0 is out of range (1..); quorum 1 is used, as keepalived does");
                            1
                        }
                        _ => ctx.u32(e, 1, u32::MAX)?,
                    }
                }
                "weight" => {
                    vs.weight = Some(ctx.u32(e, 1, 65535)?);
                    ctx.not_acted(e, VS);
                }
                "quorum_up" => vs.quorum_up = Some(ctx.notify_script(e)?),
                "quorum_down" => vs.quorum_down = Some(ctx.notify_script(e)?),
                "hysteresis" => vs.hysteresis = ctx.u32(e, 0, u32::MAX)?,
                "sorry_server" => {
                    let ip = ctx.string_first(e).map(|_| &e.args[0])?;
                    let addr = socket_addr(ip, e.args.get(1))?;
                    ctx.no_more(e, 2);
                    vs.sorry_server = Some(SorryServer { addr, lvs_method: None, inhibit: false });
                }
                "sorry_server_inhibit" => sorry_inhibit = ctx.flag(e)?,
                "sorry_server_lvs_method" => sorry_method = Some(lb_kind(ctx, e)?),
                "inhibit_on_failure" => vs.inhibit_on_failure = ctx.flag(e)?,
                "retry" => vs.retry = Some(ctx.u32(e, 0, u32::MAX)?),
                "delay_before_retry" => vs.delay_before_retry = Some(ctx.timer(e)?),
                "warmup" => vs.warmup = Some(ctx.timer(e)?),
                "connect_timeout" => vs.connect_timeout = Some(ctx.timer(e)?),
                "sh-port" | "mh-port" | "flag-2" => vs.sched_flags.port = ctx.flag(e)?,
                "sh-fallback" | "mh-fallback" | "flag-1" => vs.sched_flags.fallback = ctx.flag(e)?,
                "flag-3" => vs.sched_flags.flag3 = ctx.flag(e)?,
                "ops" => vs.sched_flags.ops = ctx.flag(e)?,
                "announce" => vs.announce = Some(super::announce::Announce::from_node(ctx, e)?),
                "ip_family" => {
                    let a = ctx.value(e)?;
                    vs.ip_family = Some(match a.text.as_str() {
                        "inet" => IpFamily::Inet,
                        "inet6" => IpFamily::Inet6,
                        _ => return Err(ConfigError::invalid(&a.loc, format!("ip_family must be inet or inet6, got '{}'", a.text))),
                    });
                }
                _ => ctx.unknown(e, VS)?,
            }
        }
        if let Some(s) = vs.sorry_server.as_mut() {
            s.lvs_method = sorry_method;
            s.inhibit = sorry_inhibit;
        }
        let defaults = CheckDefaults {
            connect_timeout: vs.connect_timeout,
            retry: vs.retry,
            delay_before_retry: vs.delay_before_retry,
            delay_loop: None,
            warmup: vs.warmup,
            alpha: Some(vs.alpha),
        };
        for e in children.iter().filter(|e| e.keyword == "real_server") {
            let rs = RealServer::from_node(ctx, e, &vs, &defaults)?;
            vs.real_servers.push(rs);
        }
        if let Some(a) = &vs.announce {
            super::announce::check_virtual_server(ctx, &vs, a)?;
        }
        Ok(vs)
    }
}

impl RealServer {
    fn from_node(ctx: &mut Ctx, n: &Node, vs: &VirtualServer, vs_defaults: &CheckDefaults) -> Result<Self, ConfigError> {
        let ip = n.args.first().ok_or_else(|| ConfigError::invalid(&n.loc, "real_server needs 'IP [PORT]'"))?;
        let addr = socket_addr(ip, n.args.get(1))?;
        ctx.no_more(n, 2);
        let mut rs = RealServer {
            addr,
            location: n.loc.clone(),
            weight: 1,
            inhibit_on_failure: vs.inhibit_on_failure,
            notify_up: None,
            notify_down: None,
            uthreshold: None,
            lthreshold: None,
            lb_kind: None,
            checkers: Vec::new(),
        };
        let mut defaults = *vs_defaults;
        let Some(children) = &n.block else {
            return Ok(rs);
        };
        for e in children {
            match e.keyword.as_str() {
                k if CHECKER_KEYWORDS.contains(&k) || k == "ICMP_CHECK" => {}
                "weight" => rs.weight = i32::try_from(ctx.int(e, 0, 65535)?).unwrap_or(1),
                "inhibit_on_failure" => rs.inhibit_on_failure = ctx.flag(e)?,
                "notify_up" => rs.notify_up = Some(ctx.notify_script(e)?),
                "notify_down" => rs.notify_down = Some(ctx.notify_script(e)?),
                "uthreshold" => rs.uthreshold = Some(ctx.u32(e, 0, u32::MAX)?),
                "lthreshold" => rs.lthreshold = Some(ctx.u32(e, 0, u32::MAX)?),
                "lvs_method" | "lb_kind" => rs.lb_kind = Some(lb_kind(ctx, e)?),
                "connect_timeout" => defaults.connect_timeout = Some(ctx.timer(e)?),
                "retry" => defaults.retry = Some(ctx.u32(e, 0, u32::MAX)?),
                "delay_before_retry" => defaults.delay_before_retry = Some(ctx.timer(e)?),
                "delay_loop" => defaults.delay_loop = Some(ctx.timer(e)?),
                "warmup" => defaults.warmup = Some(ctx.timer(e)?),
                "alpha" => defaults.alpha = Some(ctx.flag(e)?),
                "no_alpha" => defaults.alpha = Some(false),
                _ => ctx.unknown(e, RS)?,
            }
        }
        if let (Some(l), Some(u)) = (rs.lthreshold, rs.uthreshold) {
            if l > u {
                return Err(ConfigError::invalid(&n.loc, format!("lthreshold {l} is above uthreshold {u}")));
            }
        }
        for e in children.iter().filter(|e| CHECKER_KEYWORDS.contains(&e.keyword.as_str()) || e.keyword == "ICMP_CHECK") {
            let mut c = Checker::from_node(ctx, e, &defaults, vs.delay_loop)?;
            match &mut c.kind {
                super::check::CheckKind::Http(h) if h.virtualhost.is_none() => h.virtualhost.clone_from(&vs.virtualhost),
                super::check::CheckKind::Wasm(w) => w.protocol = vs.protocol,
                _ => {}
            }
            rs.checkers.push(c);
        }
        Ok(rs)
    }
}

/// One entry of a `virtual_server_group`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VsgEntry {
    /// `IP PORT` or `IP-LAST PORT` (a range in the last IPv4 octet / IPv6 group).
    Range {
        /// First address.
        first: IpAddr,
        /// Last address (equal to `first` for a single address).
        last: IpAddr,
        /// Port.
        port: u16,
    },
    /// `fwmark N`.
    Fwmark(u32),
}

/// A typed `virtual_server_group NAME { ... }`.
#[derive(Debug, Clone, PartialEq)]
pub struct VirtualServerGroup {
    /// The group name.
    pub name: String,
    /// Where `virtual_server_group` is written.
    pub location: Location,
    /// The entries.
    pub entries: Vec<VsgEntry>,
}

fn ip_range(text: &str, loc: &Location) -> Result<(IpAddr, IpAddr), ConfigError> {
    let bad = || ConfigError::invalid(loc, format!("invalid address or range '{text}' (use IP or IP-LAST, like 10.0.0.1-10)"));
    let Some((first, last)) = text.rsplit_once('-') else {
        let ip: IpAddr = text.parse().map_err(|_| bad())?;
        return Ok((ip, ip));
    };
    let ip: IpAddr = first.parse().map_err(|_| bad())?;
    match ip {
        IpAddr::V4(v4) => {
            let end: u8 = last.parse().map_err(|_| bad())?;
            let o = v4.octets();
            if end < o[3] {
                return Err(bad());
            }
            Ok((ip, IpAddr::V4([o[0], o[1], o[2], end].into())))
        }
        IpAddr::V6(v6) => {
            let end = u16::from_str_radix(last, 16).map_err(|_| bad())?;
            let mut s = v6.segments();
            if end < s[7] {
                return Err(bad());
            }
            s[7] = end;
            Ok((ip, IpAddr::V6(s.into())))
        }
    }
}

impl VirtualServerGroup {
    pub(crate) fn from_node(ctx: &mut Ctx, n: &Node) -> Result<Self, ConfigError> {
        let name = ctx.block_name(n)?;
        let mut g = VirtualServerGroup { name, location: n.loc.clone(), entries: Vec::new() };
        for e in ctx.children(n)? {
            if e.keyword == "fwmark" {
                g.entries.push(VsgEntry::Fwmark(ctx.u32(e, 1, u32::MAX)?));
                continue;
            }
            let (first, last) = ip_range(&e.keyword, &e.loc)?;
            let port = match e.args.first() {
                Some(p) => port_arg(p, "port")?,
                None => 0,
            };
            ctx.no_more(e, 1);
            g.entries.push(VsgEntry::Range { first, last, port });
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

    fn nodes(src: &str) -> Vec<Node> {
        Loader::new().load_str(Arc::from(Path::new("l.conf")), src).expect("parses")
    }

    #[test]
    fn test_defaults_and_inheritance() {
        let n = nodes("virtual_server 10.0.0.1 80 {\nconnect_timeout 7\nreal_server 10.0.0.2 8080 {\nTCP_CHECK {\n}\n}\n}");
        let vs = VirtualServer::from_node(&mut Ctx::default(), &n[0]).expect("valid");
        assert_eq!(vs.lb_algo, "wlc");
        assert_eq!(vs.lb_kind, LbKind::Nat);
        assert_eq!(vs.delay_loop, Duration::from_secs(60));
        let c = &vs.real_servers[0].checkers[0];
        assert_eq!(c.common.connect_timeout, Duration::from_secs(7));
        assert_eq!(c.common.delay_loop, Duration::from_secs(60));
        assert_eq!(vs.real_servers[0].weight, 1);
    }

    #[test]
    fn test_wasm_check_takes_the_virtual_server_protocol() {
        // `protocol` after the real server still applies to its WASM_CHECK.
        let n = nodes("virtual_server 10.0.0.1 53 {\nreal_server 10.0.0.2 53 {\nWASM_CHECK {\npolicy p\n}\n}\nprotocol UDP\n}");
        let vs = VirtualServer::from_node(&mut Ctx::default(), &n[0]).expect("valid");
        let super::super::check::CheckKind::Wasm(w) = &vs.real_servers[0].checkers[0].kind else { panic!("not wasm") };
        assert_eq!(w.protocol, Protocol::Udp);
    }

    #[test]
    fn test_tun_gue() {
        let n = nodes("virtual_server fwmark 5 {\nlvs_method TUN type gue port 6080\nsh-port\n}");
        let vs = VirtualServer::from_node(&mut Ctx::default(), &n[0]).expect("valid");
        assert_eq!(vs.key, VirtualServerKey::Fwmark(5));
        assert_eq!(vs.lb_kind, LbKind::Tun(TunnelType::Gue { port: 6080 }));
        assert!(vs.sched_flags.port);
    }

    #[test]
    fn test_group_ranges() {
        let n = nodes("virtual_server_group G {\n10.0.0.1-10 80\n10.0.0.20 443\nfwmark 3\n}");
        let g = VirtualServerGroup::from_node(&mut Ctx::default(), &n[0]).expect("valid");
        assert_eq!(
            g.entries[0],
            VsgEntry::Range { first: "10.0.0.1".parse().expect("ip"), last: "10.0.0.10".parse().expect("ip"), port: 80 }
        );
        assert_eq!(g.entries[2], VsgEntry::Fwmark(3));
        let n = nodes("virtual_server_group G {\n10.0.0.9-3 80\n}");
        let e = VirtualServerGroup::from_node(&mut Ctx::default(), &n[0]).expect_err("backwards");
        assert_eq!(e.location().line, 2);
    }

    #[test]
    fn test_bad_port() {
        let n = nodes("virtual_server 10.0.0.1 70000 {\n}");
        let e = VirtualServer::from_node(&mut Ctx::default(), &n[0]).expect_err("port");
        assert_eq!(e.to_string(), "l.conf:1:25: port must be between 0 and 65535, got 70000");
    }
}
