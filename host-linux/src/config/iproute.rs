//! Routes and policy rules as keepalived.conf writes them: the lines of `virtual_routes`,
//! `virtual_rules`, `static_routes` and `static_rules`, in `ip route add` / `ip rule add`
//! syntax (keepalived.conf(5): full option names only, no abbreviations).
//!
//! A line keepalived would skip (an option it does not know, a value that does not parse) is
//! skipped here too, with a warning at its location; an option keepalived knows and hav does not
//! pass to the kernel is dropped from the entry with a warning that says so. The result is
//! plain data ([`RouteSpec`], [`RuleSpec`]); `net::vroute` encodes it for rtnetlink.

use std::net::IpAddr;

use super::error::Location;
use super::parser::{Arg, Node};
use super::value::Ctx;

/// `RTPROT_KEEPALIVED` (linux/rtnetlink.h): the protocol keepalived gives its routes and rules.
pub const PROTO_KEEPALIVED: u8 = 18;
/// `RT_TABLE_MAIN`.
pub const TABLE_MAIN: u32 = 254;
/// The priority keepalived gives the first rule written without one; the next gets one less.
pub const FIRST_RULE_PRIORITY: u32 = 16384;

/// `RTAX_*` (linux/rtnetlink.h): route metrics.
pub mod rtax {
    /// `RTAX_LOCK`: the bit mask of locked metrics.
    pub const LOCK: u16 = 1;
    /// `RTAX_MTU`.
    pub const MTU: u16 = 2;
    /// `RTAX_WINDOW`.
    pub const WINDOW: u16 = 3;
    /// `RTAX_RTT`.
    pub const RTT: u16 = 4;
    /// `RTAX_RTTVAR`.
    pub const RTTVAR: u16 = 5;
    /// `RTAX_SSTHRESH`.
    pub const SSTHRESH: u16 = 6;
    /// `RTAX_CWND`.
    pub const CWND: u16 = 7;
    /// `RTAX_ADVMSS`.
    pub const ADVMSS: u16 = 8;
    /// `RTAX_REORDERING`.
    pub const REORDERING: u16 = 9;
    /// `RTAX_HOPLIMIT`.
    pub const HOPLIMIT: u16 = 10;
    /// `RTAX_INITCWND`.
    pub const INITCWND: u16 = 11;
    /// `RTAX_FEATURES`.
    pub const FEATURES: u16 = 12;
    /// `RTAX_RTO_MIN`.
    pub const RTO_MIN: u16 = 13;
    /// `RTAX_INITRWND`.
    pub const INITRWND: u16 = 14;
    /// `RTAX_QUICKACK`.
    pub const QUICKACK: u16 = 15;
    /// `RTAX_CC_ALGO` (a string).
    pub const CC_ALGO: u16 = 16;
    /// `RTAX_FASTOPEN_NO_COOKIE`.
    pub const FASTOPEN_NO_COOKIE: u16 = 17;
    /// `RTAX_FEATURE_ECN`.
    pub const FEATURE_ECN: u32 = 1;
}

/// `RTN_*`: the type of a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RouteType {
    /// `unicast` (the default).
    Unicast,
    /// `local`.
    Local,
    /// `broadcast`.
    Broadcast,
    /// `anycast`.
    Anycast,
    /// `multicast`.
    Multicast,
    /// `blackhole`.
    Blackhole,
    /// `unreachable`.
    Unreachable,
    /// `prohibit`.
    Prohibit,
    /// `throw`.
    Throw,
}

impl RouteType {
    fn parse(word: &str) -> Option<Self> {
        Some(match word {
            "unicast" => RouteType::Unicast,
            "local" => RouteType::Local,
            "broadcast" => RouteType::Broadcast,
            "anycast" => RouteType::Anycast,
            "multicast" => RouteType::Multicast,
            "blackhole" => RouteType::Blackhole,
            "unreachable" => RouteType::Unreachable,
            "prohibit" => RouteType::Prohibit,
            "throw" => RouteType::Throw,
            _ => return None,
        })
    }

    /// The `RTN_*` number (linux/rtnetlink.h).
    pub fn rtn(self) -> u8 {
        match self {
            RouteType::Unicast => 1,
            RouteType::Local => 2,
            RouteType::Broadcast => 3,
            RouteType::Anycast => 4,
            RouteType::Multicast => 5,
            RouteType::Blackhole => 6,
            RouteType::Unreachable => 7,
            RouteType::Prohibit => 8,
            RouteType::Throw => 9,
        }
    }
}

/// How a route is added when a matching one exists (keepalived.conf(5)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddMode {
    /// The default, `ip route prepend`: `NLM_F_CREATE`.
    Prepend,
    /// `add`: `NLM_F_CREATE | NLM_F_EXCL`.
    Add,
    /// `append`: `NLM_F_CREATE | NLM_F_APPEND`.
    Append,
}

/// One `nexthop` of a multipath route.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Nexthop {
    /// `via ADDR`.
    pub via: Option<IpAddr>,
    /// `dev IF`.
    pub dev: Option<String>,
    /// `weight N` (1..=256).
    pub weight: u16,
    /// `onlink`.
    pub onlink: bool,
}

/// A route as the kernel gets it (interfaces by name, resolved when it is installed).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RouteSpec {
    /// IPv6 (an IPv6 address in it, or `inet6`).
    pub ipv6: bool,
    /// The route type.
    pub kind: RouteType,
    /// The destination.
    pub dst: IpAddr,
    /// Its prefix length.
    pub dst_len: u8,
    /// `from ADDR/PFX` (source-specific routing, RTA_SRC).
    pub from: Option<(IpAddr, u8)>,
    /// `src ADDR` (preferred source, RTA_PREFSRC).
    pub src: Option<IpAddr>,
    /// `via`/`gw ADDR`.
    pub via: Option<IpAddr>,
    /// `dev`/`oif IF`.
    pub dev: Option<String>,
    /// `scope`; derived as ip(8) does when absent.
    pub scope: Option<u8>,
    /// `table` (main by default).
    pub table: u32,
    /// `metric`/`priority`/`preference`.
    pub metric: Option<u32>,
    /// `protocol` (keepalived's own, 18, by default).
    pub protocol: u8,
    /// `tos`.
    pub tos: u8,
    /// `onlink`.
    pub onlink: bool,
    /// `realms [FROM/]TO` (RTA_FLOW).
    pub realms: Option<u32>,
    /// `pref low|medium|high` (IPv6 router preference, RTA_PREF).
    pub pref: Option<u8>,
    /// `expires N` (IPv6, seconds).
    pub expires: Option<u32>,
    /// Route metrics (`RTAX_*`, value), in the order written; `lock` goes into `RTAX_LOCK`.
    pub metrics: Vec<(u16, u32)>,
    /// `congctl [lock] NAME` (RTAX_CC_ALGO).
    pub congctl: Option<String>,
    /// `nexthop ...` (and the deprecated `or`).
    pub nexthops: Vec<Nexthop>,
    /// `add` / `append` / prepend (the default).
    pub mode: AddMode,
}

/// One line of `virtual_routes` / `static_routes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// What the kernel gets.
    pub spec: RouteSpec,
    /// `no_track`.
    pub no_track: bool,
    /// The line as written (words joined by one space), for messages.
    pub text: String,
    /// Where it is.
    pub location: Location,
}

/// The action of a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RuleAction {
    /// `table N` / `lookup N`: `FR_ACT_TO_TBL`.
    Table(u32),
    /// `goto N`: `FR_ACT_GOTO`.
    Goto(u32),
    /// `nop`: `FR_ACT_NOP`.
    Nop,
    /// `blackhole`: `FR_ACT_BLACKHOLE`.
    Blackhole,
    /// `unreachable`: `FR_ACT_UNREACHABLE`.
    Unreachable,
    /// `prohibit`: `FR_ACT_PROHIBIT`.
    Prohibit,
}

/// A policy rule as the kernel gets it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RuleSpec {
    /// IPv6.
    pub ipv6: bool,
    /// `not`: `FIB_RULE_INVERT`.
    pub invert: bool,
    /// `from ADDR/PFX`.
    pub from: Option<(IpAddr, u8)>,
    /// `to ADDR/PFX`.
    pub to: Option<(IpAddr, u8)>,
    /// `iif`/`dev IF` (by name: the kernel matches names).
    pub iif: Option<String>,
    /// `oif IF`.
    pub oif: Option<String>,
    /// `priority`/`preference`/`order`; the kernel picks one when absent.
    pub priority: Option<u32>,
    /// `fwmark MARK[/MASK]`.
    pub fwmark: Option<(u32, Option<u32>)>,
    /// `tos`/`dsfield`.
    pub tos: u8,
    /// `realms [FROM/]TO`.
    pub realms: Option<u32>,
    /// What the rule does; `None` with `l3mdev` (the table is the device's).
    pub action: Option<RuleAction>,
    /// `l3mdev`.
    pub l3mdev: bool,
    /// `uidrange START-END`.
    pub uidrange: Option<(u32, u32)>,
    /// `sport N[-M]`.
    pub sport: Option<(u16, u16)>,
    /// `dport N[-M]`.
    pub dport: Option<(u16, u16)>,
    /// `ipproto P`.
    pub ipproto: Option<u8>,
    /// `suppress_prefixlength N`.
    pub suppress_prefixlen: Option<u32>,
    /// `suppress_ifgroup N`.
    pub suppress_ifgroup: Option<u32>,
    /// `tunnel-id N`.
    pub tun_id: Option<u64>,
    /// `protocol`: keepalived's own (18) unless `no_track`; none for a `no_track` rule without
    /// one.
    pub protocol: Option<u8>,
}

/// One line of `virtual_rules` / `static_rules`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// What the kernel gets.
    pub spec: RuleSpec,
    /// `no_track`.
    pub no_track: bool,
    /// The line as written, for messages.
    pub text: String,
    /// Where it is.
    pub location: Location,
}

/// Which block a line is in: `track_group` is for static entries, `no_track` for virtual ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// `virtual_routes` / `virtual_rules`.
    Virtual,
    /// `static_routes` / `static_rules`.
    Static,
}

/// The words of a line: the keyword, then its arguments.
fn words(n: &Node) -> Vec<Arg> {
    let mut v = vec![Arg { text: n.keyword.clone(), quoted: false, loc: n.loc.clone() }];
    v.extend(n.args.iter().cloned());
    v
}

fn line_text(w: &[Arg]) -> String {
    w.iter().map(|a| a.text.as_str()).collect::<Vec<_>>().join(" ")
}

/// A number as ip(8) reads it: decimal, or hexadecimal after `0x`.
fn num(text: &str) -> Option<u64> {
    match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => text.parse().ok(),
    }
}

fn num_in(text: &str, max: u64) -> Option<u64> {
    num(text).filter(|v| *v <= max)
}

/// `ADDR[/PFX]`, `default`, `any` or `all`; `ipv6` chooses the family of the words.
fn prefix(text: &str, ipv6: bool) -> Option<(IpAddr, u8)> {
    if matches!(text, "default" | "any" | "all") {
        let a: IpAddr = if ipv6 { "::".parse().ok()? } else { "0.0.0.0".parse().ok()? };
        return Some((a, 0));
    }
    let (a, p) = match text.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (text, None),
    };
    let ip: IpAddr = a.parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let len = match p {
        None => max,
        Some(p) => p.parse::<u8>().ok().filter(|l| *l <= max)?,
    };
    Some((ip, len))
}

/// The directories iproute2 reads its name files from, in order: `HAV_IPROUTE2_DIR` (tests),
/// else /etc/iproute2, then the distribution's defaults.
fn iproute2_dirs() -> Vec<std::path::PathBuf> {
    match std::env::var_os("HAV_IPROUTE2_DIR") {
        Some(d) => vec![d.into()],
        None => ["/etc/iproute2", "/usr/share/iproute2", "/usr/lib/iproute2"].iter().map(std::path::PathBuf::from).collect(),
    }
}

/// The number of `name` in iproute2's name file `file` (`rt_tables`, `rt_protos`, `rt_scopes`,
/// `rt_realms`): its lines are `NUMBER NAME` (decimal or 0x hex) with `#` comments, and
/// `FILE.d/*.conf` add to it, as ip(8) reads them; the first directory that names it wins. Read
/// once per (directory, file) and kept.
fn iproute2_name(file: &str, name: &str) -> Option<u32> {
    iproute2_name_in(&iproute2_dirs(), file, name)
}

/// [`iproute2_name`] over these directories.
fn iproute2_name_in(dirs: &[std::path::PathBuf], file: &str, name: &str) -> Option<u32> {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    type Names = HashMap<String, u32>;
    static CACHE: OnceLock<Mutex<HashMap<(std::path::PathBuf, String), Names>>> = OnceLock::new();
    let read = |dir: &std::path::Path| -> Names {
        let mut out = Names::new();
        let mut files = vec![dir.join(file)];
        if let Ok(d) = std::fs::read_dir(dir.join(format!("{file}.d"))) {
            let mut extra: Vec<_> = d.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "conf")).collect();
            extra.sort();
            files.extend(extra);
        }
        for f in files {
            let Ok(text) = std::fs::read_to_string(&f) else { continue };
            for line in text.lines() {
                let line = line.split('#').next().unwrap_or("");
                let mut w = line.split_whitespace();
                let (Some(num), Some(n)) = (w.next(), w.next()) else { continue };
                let v = match num.strip_prefix("0x").or_else(|| num.strip_prefix("0X")) {
                    Some(h) => u32::from_str_radix(h, 16).ok(),
                    None => num.parse().ok(),
                };
                if let Some(v) = v {
                    out.entry(n.to_string()).or_insert(v);
                }
            }
        }
        out
    };
    let mut cache = CACHE.get_or_init(Mutex::default).lock().unwrap_or_else(|p| p.into_inner());
    dirs.iter().find_map(|dir| cache.entry((dir.clone(), file.to_string())).or_insert_with(|| read(dir)).get(name).copied())
}

/// `main`, `local`, `default`, a name from iproute2's `rt_tables`, or a number (0 is not a
/// table).
fn table(text: &str) -> Option<u32> {
    match text {
        "main" => Some(TABLE_MAIN),
        "local" => Some(255),
        "default" => Some(253),
        t => num_in(t, u64::from(u32::MAX))
            .and_then(|v| u32::try_from(v).ok())
            .or_else(|| iproute2_name("rt_tables", t))
            .filter(|v| *v != 0),
    }
}

/// Route protocol names (linux/rtnetlink.h `RTPROT_*`) or a number.
fn protocol(text: &str) -> Option<u8> {
    Some(match text {
        "redirect" => 1,
        "kernel" => 2,
        "boot" => 3,
        "static" => 4,
        "gated" => 8,
        "ra" => 9,
        "mrt" => 10,
        "zebra" => 11,
        "bird" => 12,
        "dnrouted" => 13,
        "xorp" => 14,
        "ntk" => 15,
        "dhcp" => 16,
        "keepalived" => 18,
        "babel" => 42,
        "bgp" => 186,
        "isis" => 187,
        "ospf" => 188,
        "rip" => 189,
        "eigrp" => 192,
        t => return num_in(t, 255).and_then(|v| u8::try_from(v).ok()).or_else(|| iproute2_name("rt_protos", t).and_then(|v| u8::try_from(v).ok())),
    })
}

/// Scope names (`RT_SCOPE_*`) or a number.
fn scope(text: &str) -> Option<u8> {
    Some(match text {
        "global" | "universe" => 0,
        "site" => 200,
        "link" => 253,
        "host" => 254,
        "nowhere" => 255,
        t => return num_in(t, 255).and_then(|v| u8::try_from(v).ok()).or_else(|| iproute2_name("rt_scopes", t).and_then(|v| u8::try_from(v).ok())),
    })
}

/// `[FROM/]TO` realms, numbers or names from iproute2's `rt_realms`: `FROM << 16 | TO`.
fn realms(text: &str) -> Option<u32> {
    let realm = |t: &str| num_in(t, 0xffff).or_else(|| iproute2_name("rt_realms", t).map(u64::from).filter(|v| *v <= 0xffff));
    let (from, to) = match text.split_once('/') {
        Some((f, t)) => (realm(f)?, realm(t)?),
        None => (0, realm(text)?),
    };
    u32::try_from(from << 16 | to).ok()
}

/// `N` or `N-M`.
fn range<T: TryFrom<u64> + Copy + PartialOrd>(text: &str, max: u64) -> Option<(T, T)> {
    let (a, b) = match text.split_once('-') {
        Some((a, b)) => (num_in(a, max)?, num_in(b, max)?),
        None => {
            let v = num_in(text, max)?;
            (v, v)
        }
    };
    let (a, b) = (T::try_from(a).ok()?, T::try_from(b).ok()?);
    (a <= b).then_some((a, b))
}

/// IP protocol names `ipproto` takes, or a number.
fn ipproto(text: &str) -> Option<u8> {
    Some(match text.to_ascii_lowercase().as_str() {
        "icmp" => 1,
        "tcp" => 6,
        "udp" => 17,
        "ipv6-icmp" | "icmpv6" => 58,
        "sctp" => 132,
        t => return num_in(t, 255).and_then(|v| u8::try_from(v).ok()),
    })
}

/// A time metric (`rtt`, `rttvar`, `rto_min`): a raw number as ip(8) passes it, or with a
/// `s`/`ms` suffix, converted to the kernel's unit (milliseconds times `scale`).
fn time_metric(text: &str, scale: u64) -> Option<u32> {
    let ms = |v: &str, mul: u64| v.parse::<u64>().ok().map(|v| v * mul * scale);
    let v = if let Some(v) = text.strip_suffix("msecs").or_else(|| text.strip_suffix("msec")).or_else(|| text.strip_suffix("ms")) {
        ms(v, 1)?
    } else if let Some(v) = text.strip_suffix("secs").or_else(|| text.strip_suffix("sec")).or_else(|| text.strip_suffix('s')) {
        ms(v, 1000)?
    } else {
        num(text)?
    };
    u32::try_from(v).ok()
}

/// Reads the words of one line, one option at a time.
struct Words<'a> {
    w: &'a [Arg],
    i: usize,
}

impl<'a> Words<'a> {
    fn next(&mut self) -> Option<&'a Arg> {
        let a = self.w.get(self.i)?;
        self.i += 1;
        Some(a)
    }

    fn peek(&self) -> Option<&'a Arg> {
        self.w.get(self.i)
    }

    /// The value after option `opt`.
    fn value(&mut self, opt: &Arg) -> Result<&'a Arg, Skip> {
        self.next().ok_or_else(|| Skip(opt.loc.clone(), format!("missing value for '{}'", opt.text)))
    }
}

/// Why a line is skipped: where, and what is wrong there.
struct Skip(Location, String);

fn bad(at: &Arg, what: &str) -> Skip {
    Skip(at.loc.clone(), format!("invalid {what} '{}'", at.text))
}

/// Parses one route line. `None` when keepalived would skip it (warned at its location).
pub(crate) fn route(ctx: &mut Ctx, n: &Node, origin: Origin) -> Option<Route> {
    let w = words(n);
    let text = line_text(&w);
    if n.block.is_some() {
        ctx.warn(&n.loc, format!("route '{text}' takes no block; skipped, as keepalived does"));
        return None;
    }
    match parse_route(ctx, &w, origin) {
        Ok((spec, no_track)) => Some(Route { spec, no_track, text, location: n.loc.clone() }),
        Err(Skip(at, why)) => {
            ctx.warn(&at, format!("{why}; the route '{text}' is skipped, as keepalived does"));
            None
        }
    }
}

fn parse_route(ctx: &mut Ctx, w: &[Arg], origin: Origin) -> Result<(RouteSpec, bool), Skip> {
    // The family first: `inet6` or any IPv6 address on the line makes it IPv6.
    let ipv6 = w.iter().any(|a| a.text == "inet6")
        || w.iter().any(|a| a.text.split('/').next().and_then(|t| t.parse::<IpAddr>().ok()).is_some_and(|ip| ip.is_ipv6()));
    let mut r = RouteSpec {
        ipv6,
        kind: RouteType::Unicast,
        dst: if ipv6 { IpAddr::from([0u16; 8]) } else { IpAddr::from([0u8; 4]) },
        dst_len: 0,
        from: None,
        src: None,
        via: None,
        dev: None,
        scope: None,
        table: TABLE_MAIN,
        metric: None,
        protocol: PROTO_KEEPALIVED,
        tos: 0,
        onlink: false,
        realms: None,
        pref: None,
        expires: None,
        metrics: Vec::new(),
        congctl: None,
        nexthops: Vec::new(),
        mode: AddMode::Prepend,
    };
    let mut no_track = false;
    let mut proto_at = None;
    let mut dst_seen = false;
    let mut lock = 0u32;
    let mut ws = Words { w, i: 0 };
    let addr = |a: &Arg, what: &str| -> Result<IpAddr, Skip> {
        let ip: IpAddr = a.text.parse().map_err(|_| bad(a, what))?;
        if ip.is_ipv6() != ipv6 {
            return Err(Skip(a.loc.clone(), format!("{what} {ip} is not of the route's family")));
        }
        Ok(ip)
    };
    while let Some(opt) = ws.next() {
        let o = opt.text.as_str();
        if let Some(t) = RouteType::parse(o) {
            if !dst_seen && r.kind == RouteType::Unicast {
                r.kind = t;
                continue;
            }
        }
        match o {
            "inet" | "inet6" => {}
            "src" => r.src = Some(addr(ws.value(opt)?, "src address")?),
            "from" => {
                let v = ws.value(opt)?;
                r.from = Some(prefix(&v.text, ipv6).ok_or_else(|| bad(v, "source prefix"))?);
            }
            "to" | "dst" => {
                let v = ws.value(opt)?;
                (r.dst, r.dst_len) = prefix(&v.text, ipv6).ok_or_else(|| bad(v, "destination"))?;
                dst_seen = true;
            }
            "via" | "gw" => {
                let v = ws.value(opt)?;
                // `via inet6 ADDR`: the family word of ip(8).
                let v = if matches!(v.text.as_str(), "inet" | "inet6") { ws.value(v)? } else { v };
                let ip: IpAddr = v.text.parse().map_err(|_| bad(v, "gateway"))?;
                if ip.is_ipv6() != ipv6 {
                    ctx.warn(&v.loc, format!("gateway {ip} of the other family (RTA_VIA) is not passed by hav; the route is installed without it"));
                } else {
                    r.via = Some(ip);
                }
            }
            "or" => {
                let v = ws.value(opt)?;
                let second = addr(v, "gateway")?;
                ctx.warn(&opt.loc, "'or' is deprecated (keepalived says so too): the two gateways go in as two nexthops without a dev of their own, as keepalived sends them (with the route's 'dev' the kernel refuses that; use 'nexthop via A dev D nexthop via B dev D')");
                if r.nexthops.is_empty() {
                    let first = r.via.take().ok_or_else(|| Skip(opt.loc.clone(), "'or' needs a 'via' before it".into()))?;
                    r.nexthops.push(Nexthop { via: Some(first), dev: None, weight: 1, onlink: false });
                    r.nexthops.push(Nexthop { via: Some(second), dev: None, weight: 1, onlink: false });
                }
            }
            "dev" | "oif" => r.dev = Some(ws.value(opt)?.text.clone()),
            "scope" => {
                let v = ws.value(opt)?;
                r.scope = Some(scope(&v.text).ok_or_else(|| bad(v, "scope"))?);
            }
            "table" => {
                let v = ws.value(opt)?;
                r.table = table(&v.text).ok_or_else(|| bad(v, "table (a number, main, local, default or a name in rt_tables)"))?;
            }
            "vrf" => {
                let v = ws.value(opt)?;
                ctx.warn(&opt.loc, format!("'vrf {}': hav does not look up VRF tables; the route goes to its table option (main by default)", v.text));
            }
            "metric" | "priority" | "preference" => {
                let v = ws.value(opt)?;
                r.metric = Some(num_in(&v.text, u64::from(u32::MAX)).and_then(|m| u32::try_from(m).ok()).ok_or_else(|| bad(v, "metric"))?);
            }
            "protocol" => {
                let v = ws.value(opt)?;
                r.protocol = protocol(&v.text).ok_or_else(|| bad(v, "protocol"))?;
                proto_at = Some(v.loc.clone());
            }
            "tos" | "dsfield" => {
                let v = ws.value(opt)?;
                r.tos = num_in(&v.text, 255).and_then(|t| u8::try_from(t).ok()).ok_or_else(|| bad(v, "tos"))?;
            }
            "onlink" => r.onlink = true,
            "realms" => {
                let v = ws.value(opt)?;
                r.realms = Some(realms(&v.text).ok_or_else(|| bad(v, "realms (numbers)"))?);
            }
            "pref" => {
                let v = ws.value(opt)?;
                // ICMPV6_ROUTER_PREF_* (linux/icmpv6.h).
                r.pref = Some(match v.text.as_str() {
                    "low" => 3,
                    "medium" => 0,
                    "high" => 1,
                    _ => return Err(bad(v, "pref (low, medium or high)")),
                });
            }
            "expires" => {
                let v = ws.value(opt)?;
                r.expires = Some(num_in(&v.text, u64::from(u32::MAX)).and_then(|e| u32::try_from(e).ok()).ok_or_else(|| bad(v, "expires"))?);
            }
            "mtu" | "advmss" | "hoplimit" | "window" | "cwnd" | "ssthresh" | "reordering" | "initcwnd" | "initrwnd" | "rtt" | "rttvar"
            | "rto_min" | "quickack" | "fastopen_no_cookie" => {
                let mut v = ws.value(opt)?;
                let (ty, scale) = match o {
                    "mtu" => (rtax::MTU, 0),
                    "advmss" => (rtax::ADVMSS, 0),
                    "hoplimit" => (rtax::HOPLIMIT, 0),
                    "window" => (rtax::WINDOW, 0),
                    "cwnd" => (rtax::CWND, 0),
                    "ssthresh" => (rtax::SSTHRESH, 0),
                    "reordering" => (rtax::REORDERING, 0),
                    "initcwnd" => (rtax::INITCWND, 0),
                    "initrwnd" => (rtax::INITRWND, 0),
                    "rtt" => (rtax::RTT, 8),
                    "rttvar" => (rtax::RTTVAR, 4),
                    "rto_min" => (rtax::RTO_MIN, 1),
                    "quickack" => (rtax::QUICKACK, 0),
                    _ => (rtax::FASTOPEN_NO_COOKIE, 0),
                };
                if v.text == "lock" {
                    lock |= 1 << ty;
                    v = ws.value(v)?;
                }
                let val = if scale == 0 {
                    num_in(&v.text, u64::from(u32::MAX)).and_then(|x| u32::try_from(x).ok())
                } else {
                    time_metric(&v.text, scale)
                };
                let val = val.ok_or_else(|| bad(v, o))?;
                r.metrics.retain(|(t, _)| *t != ty);
                r.metrics.push((ty, val));
            }
            "features" => {
                let v = ws.value(opt)?;
                if v.text != "ecn" {
                    return Err(bad(v, "feature (ecn)"));
                }
                r.metrics.retain(|(t, _)| *t != rtax::FEATURES);
                r.metrics.push((rtax::FEATURES, rtax::FEATURE_ECN));
            }
            "congctl" => {
                let mut v = ws.value(opt)?;
                if v.text == "lock" {
                    lock |= 1 << rtax::CC_ALGO;
                    v = ws.value(v)?;
                }
                r.congctl = Some(v.text.clone());
            }
            "nexthop" => {
                let mut nh = Nexthop { via: None, dev: None, weight: 1, onlink: false };
                while let Some(a) = ws.peek() {
                    match a.text.as_str() {
                        "via" | "gw" => {
                            ws.next();
                            let v = ws.value(a)?;
                            nh.via = Some(addr(v, "gateway")?);
                        }
                        "dev" => {
                            ws.next();
                            nh.dev = Some(ws.value(a)?.text.clone());
                        }
                        "weight" => {
                            ws.next();
                            let v = ws.value(a)?;
                            nh.weight = num(&v.text).filter(|x| (1..=256).contains(x)).and_then(|x| u16::try_from(x).ok()).ok_or_else(|| bad(v, "weight (1..256)"))?;
                        }
                        "onlink" => {
                            ws.next();
                            nh.onlink = true;
                        }
                        _ => break,
                    }
                }
                r.nexthops.push(nh);
            }
            "add" => r.mode = AddMode::Add,
            "append" => r.mode = AddMode::Append,
            "prepend" => r.mode = AddMode::Prepend,
            "no_track" => {
                if origin == Origin::Static {
                    ctx.warn(&opt.loc, "no_track is for virtual routes; ignored here");
                }
                no_track = true;
            }
            "track_group" => {
                let v = ws.value(opt)?;
                ctx.warn(&opt.loc, format!("track_group {}: hav has no track groups; nothing tracks this route", v.text));
            }
            "encap" | "as" | "ttl-propagate" | "ttl" | "id" | "tc" => {
                // Options of MPLS and lightweight tunnels: hav stops reading the line here.
                ctx.warn(&opt.loc, format!("'{o}' (MPLS/encapsulation) is not passed by hav; the route is installed without it and the rest of the line"));
                break;
            }
            _ if !dst_seen && prefix(o, ipv6).is_some() => {
                (r.dst, r.dst_len) = prefix(o, ipv6).ok_or_else(|| bad(opt, "destination"))?;
                dst_seen = true;
            }
            _ => {
                let hint = match o {
                    "proto" => " (keepalived takes 'protocol')",
                    "prio" => " (keepalived takes 'priority', 'metric' or 'preference')",
                    "lookup" => " (routes take 'table')",
                    _ => "",
                };
                return Err(Skip(opt.loc.clone(), format!("unknown route option '{o}'{hint}")));
            }
        }
    }
    if !dst_seen {
        let at = w[0].loc.clone();
        return Err(Skip(at, "no destination".into()));
    }
    if r.dst.is_ipv6() != ipv6 || r.from.is_some_and(|f| f.0.is_ipv6() != ipv6) {
        return Err(Skip(w[0].loc.clone(), "addresses of both families".into()));
    }
    if lock != 0 {
        r.metrics.insert(0, (rtax::LOCK, lock));
    }
    if !no_track {
        r.protocol = tracked_protocol(ctx, Some(r.protocol), proto_at, "route");
    }
    Ok((r, no_track))
}

/// Parses one rule line. `None` when keepalived would skip it.
pub(crate) fn rule(ctx: &mut Ctx, n: &Node, origin: Origin) -> Option<Rule> {
    let w = words(n);
    let text = line_text(&w);
    if n.block.is_some() {
        ctx.warn(&n.loc, format!("rule '{text}' takes no block; skipped, as keepalived does"));
        return None;
    }
    match parse_rule(ctx, &w, origin) {
        Ok((mut spec, no_track)) => {
            if spec.priority.is_none() {
                let p = ctx.next_rule_priority;
                ctx.next_rule_priority = p.saturating_sub(1);
                spec.priority = Some(p);
                ctx.warn(
                    &n.loc,
                    format!("rule '{text}' has no priority: it gets {p}, as keepalived gives it (one less for each such rule, in file order); keepalived.conf(5): rules need a preference"),
                );
            }
            Some(Rule { spec, no_track, text, location: n.loc.clone() })
        }
        Err(Skip(at, why)) => {
            ctx.warn(&at, format!("{why}; the rule '{text}' is skipped, as keepalived does"));
            None
        }
    }
}

fn parse_rule(ctx: &mut Ctx, w: &[Arg], origin: Origin) -> Result<(RuleSpec, bool), Skip> {
    let ipv6 = w.iter().any(|a| a.text == "inet6")
        || w.iter().any(|a| a.text.split('/').next().and_then(|t| t.parse::<IpAddr>().ok()).is_some_and(|ip| ip.is_ipv6()));
    let mut r = RuleSpec {
        ipv6,
        invert: false,
        from: None,
        to: None,
        iif: None,
        oif: None,
        priority: None,
        fwmark: None,
        tos: 0,
        realms: None,
        action: None,
        l3mdev: false,
        uidrange: None,
        sport: None,
        dport: None,
        ipproto: None,
        suppress_prefixlen: None,
        suppress_ifgroup: None,
        tun_id: None,
        protocol: None,
    };
    let mut no_track = false;
    let mut proto_at = None;
    let mut ws = Words { w, i: 0 };
    let u32v = |v: &Arg, what: &str| -> Result<u32, Skip> {
        num_in(&v.text, u64::from(u32::MAX)).and_then(|x| u32::try_from(x).ok()).ok_or_else(|| bad(v, what))
    };
    while let Some(opt) = ws.next() {
        let o = opt.text.as_str();
        match o {
            "inet" | "inet6" => {}
            "not" => r.invert = true,
            "from" | "to" => {
                let v = ws.value(opt)?;
                let p = prefix(&v.text, ipv6).ok_or_else(|| bad(v, "prefix"))?;
                // `from all` / `to all`: no selector.
                let p = (p.1 != 0).then_some(p);
                if o == "from" {
                    r.from = p;
                } else {
                    r.to = p;
                }
            }
            "iif" | "dev" => r.iif = Some(ws.value(opt)?.text.clone()),
            "oif" => r.oif = Some(ws.value(opt)?.text.clone()),
            "priority" | "preference" | "order" => r.priority = Some(u32v(ws.value(opt)?, "priority")?),
            "fwmark" => {
                let v = ws.value(opt)?;
                let (m, mask) = match v.text.split_once('/') {
                    Some((m, k)) => (m, Some(k)),
                    None => (v.text.as_str(), None),
                };
                let m = num_in(m, u64::from(u32::MAX)).and_then(|x| u32::try_from(x).ok()).ok_or_else(|| bad(v, "fwmark"))?;
                let mask = match mask {
                    Some(k) => Some(num_in(k, u64::from(u32::MAX)).and_then(|x| u32::try_from(x).ok()).ok_or_else(|| bad(v, "fwmark mask"))?),
                    None => None,
                };
                r.fwmark = Some((m, mask));
            }
            "tos" | "dsfield" => {
                let v = ws.value(opt)?;
                r.tos = num_in(&v.text, 255).and_then(|t| u8::try_from(t).ok()).ok_or_else(|| bad(v, "tos"))?;
            }
            "realms" => {
                let v = ws.value(opt)?;
                r.realms = Some(realms(&v.text).ok_or_else(|| bad(v, "realms (numbers)"))?);
            }
            "table" | "lookup" => {
                let v = ws.value(opt)?;
                r.action = Some(RuleAction::Table(table(&v.text).ok_or_else(|| bad(v, "table (a number, main, local, default or a name in rt_tables)"))?));
            }
            "goto" => r.action = Some(RuleAction::Goto(u32v(ws.value(opt)?, "goto target")?)),
            "nop" => r.action = Some(RuleAction::Nop),
            "blackhole" => r.action = Some(RuleAction::Blackhole),
            "unreachable" => r.action = Some(RuleAction::Unreachable),
            "prohibit" => r.action = Some(RuleAction::Prohibit),
            "type" => {
                let v = ws.value(opt)?;
                r.action = Some(match v.text.as_str() {
                    "blackhole" => RuleAction::Blackhole,
                    "unreachable" => RuleAction::Unreachable,
                    "prohibit" => RuleAction::Prohibit,
                    "nop" => RuleAction::Nop,
                    _ => return Err(bad(v, "rule type")),
                });
            }
            "l3mdev" => r.l3mdev = true,
            "uidrange" => {
                let v = ws.value(opt)?;
                r.uidrange = Some(range::<u32>(&v.text, u64::from(u32::MAX)).ok_or_else(|| bad(v, "uidrange"))?);
            }
            "sport" | "dport" => {
                let v = ws.value(opt)?;
                if !v.text.contains('-') {
                    // keepalived 2.2/2.3 read a port range with sscanf("%hu-%hu") and take only two
                    // numbers: a single port is refused and the rule goes in without it.
                    ctx.warn(&v.loc, format!("'{o} {}': keepalived takes a range only (write {0}-{0}); the rule is installed without {o}, as keepalived does", v.text));
                    continue;
                }
                let p = Some(range::<u16>(&v.text, 65535).ok_or_else(|| bad(v, "port range"))?);
                if o == "sport" {
                    r.sport = p;
                } else {
                    r.dport = p;
                }
            }
            "ipproto" => {
                let v = ws.value(opt)?;
                r.ipproto = Some(ipproto(&v.text).ok_or_else(|| bad(v, "ipproto"))?);
            }
            "suppress_prefixlength" | "sup_pl" => r.suppress_prefixlen = Some(u32v(ws.value(opt)?, "prefix length")?),
            "suppress_ifgroup" | "sup_group" => r.suppress_ifgroup = Some(u32v(ws.value(opt)?, "interface group")?),
            "tunnel-id" => {
                let v = ws.value(opt)?;
                r.tun_id = Some(num(&v.text).ok_or_else(|| bad(v, "tunnel-id"))?);
            }
            "protocol" => {
                let v = ws.value(opt)?;
                r.protocol = Some(protocol(&v.text).ok_or_else(|| bad(v, "protocol"))?);
                proto_at = Some(v.loc.clone());
            }
            "no_track" => {
                if origin == Origin::Static {
                    ctx.warn(&opt.loc, "no_track is for virtual rules; ignored here");
                }
                no_track = true;
            }
            "track_group" => {
                let v = ws.value(opt)?;
                ctx.warn(&opt.loc, format!("track_group {}: hav has no track groups; nothing tracks this rule", v.text));
            }
            _ => {
                let hint = match o {
                    "pref" | "prio" => " (keepalived takes 'priority', 'preference' or 'order')",
                    "proto" => " (keepalived takes 'protocol')",
                    _ => "",
                };
                return Err(Skip(opt.loc.clone(), format!("unknown rule option '{o}'{hint}")));
            }
        }
    }
    if [r.from, r.to].iter().flatten().any(|p| p.0.is_ipv6() != ipv6) {
        return Err(Skip(w[0].loc.clone(), "addresses of both families".into()));
    }
    if r.action.is_none() && !r.l3mdev {
        let at = w[0].loc.clone();
        return Err(Skip(at, "no action (table, goto, nop, blackhole, unreachable, prohibit or l3mdev)".into()));
    }
    if !no_track {
        r.protocol = Some(tracked_protocol(ctx, r.protocol, proto_at, "rule"));
    }
    Ok((r, no_track))
}

/// The protocol of a route or rule without `no_track`: keepalived recognises the entries it
/// tracks by its own protocol, so it replaces any other (and says so); hav does the same, so the
/// kernel holds what keepalived would put there.
fn tracked_protocol(ctx: &mut Ctx, given: Option<u8>, at: Option<Location>, what: &str) -> u8 {
    if let (Some(p), Some(at)) = (given, at) {
        if p != PROTO_KEEPALIVED {
            ctx.warn(&at, format!("protocol {p}: a {what} without no_track gets protocol keepalived (18), as keepalived gives it; add no_track to keep {p}"));
        }
    }
    PROTO_KEEPALIVED
}

/// keepalived watches the virtual routes and rules it tracks (those without `no_track`): one
/// deleted by someone else takes the instance out of master. hav does not watch them; said once
/// per block that has such entries.
fn untracked(ctx: &mut Ctx, n: &Node, origin: Origin, tracked: bool) {
    if origin == Origin::Virtual && tracked {
        ctx.warn(
            &n.loc,
            format!("{}: hav does not watch these for deletion (keepalived does unless no_track): one deleted by hand stays deleted and the instance stays master, as with no_track", n.keyword),
        );
    }
}

/// Every route line of a block.
pub(crate) fn routes(ctx: &mut Ctx, n: &Node, origin: Origin) -> Result<Vec<Route>, super::ConfigError> {
    let mut out = Vec::new();
    for c in ctx.children(n)? {
        out.extend(route(ctx, c, origin));
    }
    untracked(ctx, n, origin, out.iter().any(|r| !r.no_track));
    Ok(out)
}

/// Every rule line of a block.
pub(crate) fn rules(ctx: &mut Ctx, n: &Node, origin: Origin) -> Result<Vec<Rule>, super::ConfigError> {
    let mut out = Vec::new();
    for c in ctx.children(n)? {
        out.extend(rule(ctx, c, origin));
    }
    untracked(ctx, n, origin, out.iter().any(|r| !r.no_track));
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::path::Path;

    fn load(block: &str, line: &str) -> crate::config::Loaded {
        crate::config::load_str(Path::new("/t/k.conf"), &format!("{block} {{\n  {line}\n}}\n")).expect("valid")
    }

    /// The route of `static_routes { TEXT }`.
    pub(crate) fn route_spec(text: &str) -> RouteSpec {
        let l = load("static_routes", text);
        assert_eq!(l.config.static_routes.len(), 1, "{text}: {:?}", l.warnings);
        l.config.static_routes[0].spec.clone()
    }

    /// The rule of `static_rules { TEXT }`.
    pub(crate) fn rule_spec(text: &str) -> RuleSpec {
        let l = load("static_rules", text);
        assert_eq!(l.config.static_rules.len(), 1, "{text}: {:?}", l.warnings);
        l.config.static_rules[0].spec.clone()
    }

    fn skipped(block: &str, text: &str) -> String {
        let l = load(block, text);
        assert!(l.config.static_routes.is_empty() && l.config.static_rules.is_empty(), "{text} was not skipped");
        l.warnings.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")
    }

    #[test]
    fn test_parse_route_options() {
        let r = route_spec("src 10.0.0.70 to 10.5.0.0/24 via 10.0.0.254 dev eth1 table 200 metric 7 protocol bird scope link tos 0x10 onlink");
        assert!(!r.ipv6);
        assert_eq!((r.dst, r.dst_len), ("10.5.0.0".parse().unwrap(), 24));
        assert_eq!(r.src, Some("10.0.0.70".parse().unwrap()));
        assert_eq!(r.via, Some("10.0.0.254".parse().unwrap()));
        assert_eq!(r.dev.as_deref(), Some("eth1"));
        assert_eq!((r.table, r.metric, r.protocol, r.scope, r.tos, r.onlink), (200, Some(7), PROTO_KEEPALIVED, Some(253), 0x10, true));
        assert_eq!(route_spec("10.5.0.0/24 dev eth0 protocol bird no_track").protocol, 12);
        assert_eq!(r.mode, AddMode::Prepend);
        let r = route_spec("blackhole 2001:db8::/64 table main append");
        assert!(r.ipv6);
        assert_eq!((r.kind, r.dst_len, r.table, r.protocol, r.mode), (RouteType::Blackhole, 64, TABLE_MAIN, PROTO_KEEPALIVED, AddMode::Append));
        let r = route_spec("default gw 10.0.0.1 table 100");
        assert_eq!((r.dst, r.dst_len, r.via), ("0.0.0.0".parse().unwrap(), 0, Some("10.0.0.1".parse().unwrap())));
        let r = route_spec("10.1.0.0/16 via 10.0.0.1 or 10.0.0.2 dev eth0");
        assert_eq!(r.nexthops.len(), 2);
        assert_eq!(r.via, None);
        let r = route_spec("10.2.0.0/16 dev eth0 mtu lock 1400 rtt 10ms realms 3/4 congctl cubic features ecn");
        assert_eq!(r.metrics, vec![(rtax::LOCK, 1 << rtax::MTU), (rtax::MTU, 1400), (rtax::RTT, 80), (rtax::FEATURES, 1)]);
        assert_eq!((r.realms, r.congctl.as_deref()), (Some(3 << 16 | 4), Some("cubic")));
    }

    #[test]
    fn test_route_lines_keepalived_skips_are_skipped() {
        // keepalived 2.2 knows 'protocol', not 'proto': the whole route goes, with a hint.
        let w = skipped("static_routes", "10.5.0.0/24 via 10.0.0.254 proto 99");
        assert!(w.contains("k.conf:2:") && w.contains("unknown route option 'proto'") && w.contains("'protocol'"), "{w}");
        let w = skipped("static_routes", "10.5.0.0/24 via 10.0.0.256");
        assert!(w.contains("invalid gateway '10.0.0.256'"), "{w}");
        let w = skipped("static_routes", "via 10.0.0.1");
        assert!(w.contains("no destination"), "{w}");
        let w = skipped("static_routes", "10.5.0.0/24 via fe80::1");
        assert!(w.contains("addresses of both families"), "{w}");
    }

    #[test]
    fn test_parse_rule_options() {
        let r = rule_spec("from 192.168.28.0/24 to 192.168.29.0/26 table 300 iif eth0 oif eth1 tos 22 fwmark 24/12 preference 39 realms 30/20");
        assert_eq!(r.from, Some(("192.168.28.0".parse().unwrap(), 24)));
        assert_eq!(r.to, Some(("192.168.29.0".parse().unwrap(), 26)));
        assert_eq!((r.iif.as_deref(), r.oif.as_deref()), (Some("eth0"), Some("eth1")));
        assert_eq!((r.tos, r.fwmark, r.priority, r.realms), (22, Some((24, Some(12))), Some(39), Some(30 << 16 | 20)));
        assert_eq!(r.action, Some(RuleAction::Table(300)));
        let r = rule_spec("to 1:2:3:4:5:6:7:0/112 from 7:6:5:4:3:2::/96 table 6908 uidrange 10000-19999 priority 7");
        assert!(r.ipv6);
        assert_eq!(r.uidrange, Some((10000, 19999)));
        let r = rule_spec("to 1:2:3:4:6:6:7:0/112 l3mdev protocol 12 ipproto UDP sport 10-20 dport 20-20 priority 8 no_track");
        assert!(r.l3mdev && r.action.is_none());
        assert_eq!((r.protocol, r.ipproto, r.sport, r.dport), (Some(12), Some(17), Some((10, 20)), Some((20, 20))));
        assert_eq!(rule_spec("from 10.0.0.0/8 table 1 priority 3 protocol 12").protocol, Some(PROTO_KEEPALIVED));
        assert_eq!(rule_spec("from 10.0.0.0/8 table 1 priority 3 no_track").protocol, None);
        let l = load("static_rules", "from 10.0.0.0/8 table 1 priority 3 dport 80");
        assert_eq!(l.config.static_rules[0].spec.dport, None, "keepalived drops a single port");
        assert!(l.warnings.iter().any(|w| w.to_string().contains("80-80")), "{:?}", l.warnings);
        assert_eq!(rule_spec("from all lookup main suppress_prefixlength 0 priority 9").suppress_prefixlen, Some(0));
        assert_eq!(rule_spec("fwmark 1 unreachable priority 10").action, Some(RuleAction::Unreachable));
    }

    #[test]
    fn test_rule_warnings() {
        let w = skipped("static_rules", "from 10.0.0.0/8 table 1 pref 5");
        assert!(w.contains("unknown rule option 'pref'") && w.contains("'priority'"), "{w}");
        let w = skipped("static_rules", "from 10.0.0.0/8 priority 5");
        assert!(w.contains("no action"), "{w}");
        let text = "static_rules {\n from 10.0.0.0/8 table 1\n from 10.1.0.0/16 table 1 priority 4\n}\n\
                    vrrp_instance A {\n interface eth0\n virtual_router_id 7\n virtual_rules {\n  from 10.2.0.0/16 table 2\n }\n}\n";
        let l = crate::config::load_str(Path::new("/t/k.conf"), text).expect("valid");
        let prios: Vec<Option<u32>> = l.config.static_rules.iter().chain(&l.config.vrrp_instances[0].virtual_rules).map(|r| r.spec.priority).collect();
        assert_eq!(prios, vec![Some(16384), Some(4), Some(16383)]);
        assert!(l.warnings.iter().any(|w| w.to_string().contains("it gets 16384")), "{:?}", l.warnings);
    }

    #[test]
    fn test_virtual_routes_in_an_instance() {
        let text = "vrrp_instance A {\n interface eth0\n virtual_router_id 7\n virtual_ipaddress {\n  10.0.0.7\n }\n \
                    virtual_routes {\n  10.8.0.0/24 via 10.0.0.254 no_track\n  bogus\n }\n virtual_rules {\n  from 10.0.0.7 table 7 priority 70\n }\n}\n";
        let l = crate::config::load_str(Path::new("/t/k.conf"), text).expect("valid");
        let i = &l.config.vrrp_instances[0];
        assert_eq!(i.virtual_routes.len(), 1);
        assert!(i.virtual_routes[0].no_track);
        assert_eq!(i.virtual_routes[0].text, "10.8.0.0/24 via 10.0.0.254 no_track");
        assert_eq!(i.virtual_routes[0].location.line, 8);
        assert_eq!(i.virtual_rules[0].spec.priority, Some(70));
        assert!(l.warnings.iter().any(|w| w.to_string().starts_with("/t/k.conf:9:3: unknown route option 'bogus'")), "{:?}", l.warnings);
        // The rules block has a tracked entry: one warning at it; the routes are all no_track.
        let watch: Vec<String> = l.warnings.iter().map(ToString::to_string).filter(|w| w.contains("does not watch")).collect();
        assert_eq!(watch.len(), 1, "{watch:?}");
        assert!(watch[0].starts_with("/t/k.conf:11:2: virtual_rules:"), "{watch:?}");
    }

    #[test]
    fn test_iproute2_names() {
        let base = std::env::temp_dir().join(format!("hav-iproute2-{}", std::process::id()));
        let (a, b) = (base.join("etc"), base.join("usr"));
        std::fs::create_dir_all(a.join("rt_tables.d")).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        std::fs::write(a.join("rt_tables"), "# reserved\n255\tlocal\n100 vips\n0x65 hexed # comment\nbroken\n").unwrap();
        std::fs::write(a.join("rt_tables.d/x.conf"), "200 extra\n").unwrap();
        std::fs::write(a.join("rt_tables.d/ignored.txt"), "201 nope\n").unwrap();
        std::fs::write(b.join("rt_tables"), "100 shadowed\n7 vips\n9 lower\n").unwrap();
        let dirs = [a.clone(), b.clone()];
        let n = |name| iproute2_name_in(&dirs, "rt_tables", name);
        assert_eq!(n("vips"), Some(100), "the first directory wins");
        assert_eq!(n("hexed"), Some(0x65));
        assert_eq!(n("extra"), Some(200), "rt_tables.d/*.conf");
        assert_eq!(n("nope"), None, "only .conf files in rt_tables.d");
        assert_eq!(n("lower"), Some(9), "the next directory");
        assert_eq!(n("broken"), None);
        assert_eq!(iproute2_name_in(&dirs, "rt_protos", "vips"), None, "another file");
        std::fs::remove_dir_all(&base).unwrap();
    }
}
