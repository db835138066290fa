//! The desired IPVS table, computed from the configuration and the real
//! servers' state, and the difference between two tables.
//!
//! Everything here is pure: the director feeds it, and the unit tests in
//! `host-linux/tests/ipvs.rs` check it without a kernel.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::config::lvs::{
    IpFamily, LbKind, Protocol as CfgProtocol, RealServer, TunnelType, VirtualServer, VirtualServerGroup,
    VirtualServerKey, VsgEntry,
};
use crate::config::{Config, Location};
use crate::ipvs::wire::{
    IP_VS_SVC_F_ONEPACKET, IP_VS_SVC_F_PERSISTENT, IP_VS_SVC_F_SCHED1, IP_VS_SVC_F_SCHED2, IP_VS_SVC_F_SCHED3,
};
use crate::ipvs::{Dest, DestEntry, Family, Forward, Op, Protocol, Service, ServiceEntry, ServiceKey, Tunnel, TunnelKind};

/// A service and its destinations, in the order they were (or are to be) added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableService {
    /// The service's settings.
    pub service: Service,
    /// Its destinations.
    pub dests: Vec<Dest>,
}

/// An IPVS table: services by key.
pub type Table = BTreeMap<ServiceKey, TableService>;

/// A configuration problem found while building the table (a value the
/// parser accepts but IPVS cannot take).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{location}: {message}")]
pub struct TableError {
    /// Where the virtual server is written.
    pub location: Location,
    /// What is wrong.
    pub message: String,
}

/// The table as the kernel reports it ([`crate::ipvs::Client::table`]).
pub fn from_dump(dump: Vec<(ServiceEntry, Vec<DestEntry>)>) -> Table {
    dump.into_iter()
        .map(|(s, d)| {
            (s.service.key, TableService { service: s.service, dests: d.into_iter().map(|e| e.dest).collect() })
        })
        .collect()
}

/// The IPVS protocol of a configured one.
pub fn protocol(p: CfgProtocol) -> Protocol {
    match p {
        CfgProtocol::Tcp => Protocol::Tcp,
        CfgProtocol::Udp => Protocol::Udp,
        CfgProtocol::Sctp => Protocol::Sctp,
    }
}

/// The forwarding method of an `lb_kind`.
pub fn forward(k: LbKind) -> Forward {
    match k {
        LbKind::Nat => Forward::Masq,
        LbKind::Dr => Forward::Route,
        LbKind::Tun(TunnelType::Ipip) => Forward::Tunnel(Tunnel::IPIP),
        LbKind::Tun(TunnelType::Gue { port }) => Forward::Tunnel(Tunnel { kind: TunnelKind::Gue, port, flags: 0 }),
        LbKind::Tun(TunnelType::Gre) => Forward::Tunnel(Tunnel { kind: TunnelKind::Gre, port: 0, flags: 0 }),
    }
}

/// The address family of a fwmark virtual server: `ip_family`, else its
/// first real server's, else IPv4.
pub fn fwmark_family(vs: &VirtualServer) -> Family {
    match vs.ip_family {
        Some(IpFamily::Inet) => Family::Inet,
        Some(IpFamily::Inet6) => Family::Inet6,
        None => vs.real_servers.first().map(|r| Family::of(&r.addr.ip())).unwrap_or(Family::Inet),
    }
}

fn expand_range(first: IpAddr, last: IpAddr) -> Vec<IpAddr> {
    match (first, last) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            let o = a.octets();
            (o[3]..=b.octets()[3]).map(|x| IpAddr::V4(Ipv4Addr::new(o[0], o[1], o[2], x))).collect()
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            let s = a.segments();
            (s[7]..=b.segments()[7])
                .map(|x| {
                    let mut t = s;
                    t[7] = x;
                    IpAddr::V6(Ipv6Addr::from(t))
                })
                .collect()
        }
        _ => vec![first],
    }
}

/// The kernel services a virtual server stands for: one, or one per
/// address (and fwmark) of its `virtual_server_group`.
pub fn service_keys(vs: &VirtualServer, groups: &[VirtualServerGroup]) -> Vec<ServiceKey> {
    let proto = protocol(vs.protocol);
    match &vs.key {
        VirtualServerKey::Addr(a) => vec![ServiceKey::Addr { protocol: proto, addr: *a }],
        VirtualServerKey::Fwmark(m) => vec![ServiceKey::Fwmark { family: fwmark_family(vs), mark: *m }],
        VirtualServerKey::Group(name) => {
            let Some(g) = groups.iter().find(|g| &g.name == name) else { return Vec::new() };
            let mut out = Vec::new();
            for e in &g.entries {
                match e {
                    VsgEntry::Range { first, last, port } => {
                        for ip in expand_range(*first, *last) {
                            out.push(ServiceKey::Addr { protocol: proto, addr: SocketAddr::new(ip, *port) });
                        }
                    }
                    VsgEntry::Fwmark(m) => out.push(ServiceKey::Fwmark { family: fwmark_family(vs), mark: *m }),
                }
            }
            out
        }
    }
}

/// Parses `persistence_granularity` for `family`: an IPv4 netmask
/// (`255.255.255.0`) or prefix length (`24`); an IPv6 prefix length.
pub fn granularity(text: &str, family: Family) -> Result<u32, String> {
    let text = text.trim().trim_start_matches('/');
    match family {
        Family::Inet => {
            if let Ok(m) = text.parse::<Ipv4Addr>() {
                let v = u32::from(m);
                if v.leading_ones() + v.trailing_zeros() != 32 {
                    return Err(format!("persistence_granularity {text} is not a contiguous netmask"));
                }
                return Ok(v);
            }
            match text.parse::<u32>() {
                Ok(0) => Ok(0),
                Ok(p) if p <= 32 => Ok(u32::MAX << (32 - p)),
                _ => Err(format!("persistence_granularity must be an IPv4 netmask or a prefix length 0..32, got '{text}'")),
            }
        }
        Family::Inet6 => match text.parse::<u32>() {
            Ok(p) if (1..=128).contains(&p) => Ok(p),
            _ => Err(format!("persistence_granularity of an IPv6 service must be a prefix length 1..128, got '{text}'")),
        },
    }
}

/// The kernel service for key `key` of virtual server `vs`.
pub fn service_for(vs: &VirtualServer, key: ServiceKey) -> Result<Service, TableError> {
    let mut s = Service::new(key, &vs.lb_algo);
    if let Some(t) = vs.persistence_timeout {
        s.flags |= IP_VS_SVC_F_PERSISTENT;
        s.timeout = t;
        if let Some(g) = &vs.persistence_granularity {
            s.netmask = granularity(g, key.family())
                .map_err(|message| TableError { location: vs.location.clone(), message })?;
        }
    }
    let f = vs.sched_flags;
    if f.fallback {
        s.flags |= IP_VS_SVC_F_SCHED1;
    }
    if f.port {
        s.flags |= IP_VS_SVC_F_SCHED2;
    }
    if f.flag3 {
        s.flags |= IP_VS_SVC_F_SCHED3;
    }
    if f.ops {
        s.flags |= IP_VS_SVC_F_ONEPACKET;
    }
    s.pe_name.clone_from(&vs.persistence_engine);
    Ok(s)
}

/// The kernel's address for a configured real server of service `key`:
/// without a port, or when not NAT, a real server takes the service's port
/// (direct routing and tunnels cannot change the port).
pub fn dest_addr(key: &ServiceKey, rs: SocketAddr, fwd: Forward) -> SocketAddr {
    let sp = key.port();
    if sp != 0 && (rs.port() == 0 || fwd != Forward::Masq) {
        SocketAddr::new(rs.ip(), sp)
    } else {
        rs
    }
}

/// How the director sees one real server right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RsView {
    /// All its checkers pass (or it has none).
    pub alive: bool,
    /// Its weight while alive (the configured one, or a checker's dynamic weight).
    pub weight: i32,
}

/// The destinations of virtual server `vs` in service `key`, given each real
/// server's view (`views[i]` for `vs.real_servers[i]`) and whether the
/// virtual server has quorum.
pub fn dests_for(vs: &VirtualServer, key: &ServiceKey, views: &[RsView], quorum_up: bool) -> Vec<Dest> {
    let sorry_active = !quorum_up && vs.sorry_server.is_some();
    let mut out: Vec<Dest> = Vec::with_capacity(vs.real_servers.len() + 1);
    let mut seen: HashMap<SocketAddr, usize> = HashMap::with_capacity(vs.real_servers.len());
    let mut push = |d: Dest, out: &mut Vec<Dest>| match seen.get(&d.addr) {
        // The same real server written twice: the last one wins.
        Some(&i) => out[i] = d,
        None => {
            seen.insert(d.addr, out.len());
            out.push(d);
        }
    };
    for (rs, view) in vs.real_servers.iter().zip(views) {
        let weight = if view.alive && !sorry_active {
            view.weight
        } else if rs.inhibit_on_failure {
            0
        } else {
            continue;
        };
        push(rs_dest(vs, rs, key, weight), &mut out);
    }
    if let Some(s) = &vs.sorry_server {
        let weight = if sorry_active {
            1
        } else if s.inhibit {
            0
        } else {
            return out;
        };
        let fwd = forward(s.lvs_method.unwrap_or(vs.lb_kind));
        push(Dest::new(dest_addr(key, s.addr, fwd), fwd, weight), &mut out);
    }
    out
}

fn rs_dest(vs: &VirtualServer, rs: &RealServer, key: &ServiceKey, weight: i32) -> Dest {
    let fwd = forward(rs.lb_kind.unwrap_or(vs.lb_kind));
    Dest {
        addr: dest_addr(key, rs.addr, fwd),
        forward: fwd,
        weight,
        upper_threshold: rs.uthreshold.unwrap_or(0),
        lower_threshold: rs.lthreshold.unwrap_or(0),
    }
}

/// The desired table of a whole configuration. `views(vs_index)` gives the
/// real servers' state (in config order) and `quorum(vs_index)` the quorum
/// state; `active(vs_index)` says whether the virtual server is installed at
/// all (`ha_suspend`, or a subset being reconciled). `views` and `quorum`
/// are only called for active virtual servers.
pub fn desired(
    config: &Config,
    views: impl Fn(usize) -> Vec<RsView>,
    quorum: impl Fn(usize) -> bool,
    active: impl Fn(usize) -> bool,
) -> Result<Table, TableError> {
    let mut t = Table::new();
    for (vi, vs) in config.virtual_servers.iter().enumerate() {
        if !active(vi) {
            continue;
        }
        let views = views(vi);
        let q = quorum(vi);
        for key in service_keys(vs, &config.virtual_server_groups) {
            let service = service_for(vs, key)?;
            let dests = dests_for(vs, &key, &views, q);
            t.insert(key, TableService { service, dests });
        }
    }
    Ok(t)
}

/// Counts of a diff, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DiffCounts {
    /// Services added.
    pub services_added: usize,
    /// Services changed.
    pub services_changed: usize,
    /// Services removed.
    pub services_removed: usize,
    /// Real servers added.
    pub dests_added: usize,
    /// Real servers changed (weight, method, thresholds).
    pub dests_changed: usize,
    /// Real servers removed.
    pub dests_removed: usize,
}

impl DiffCounts {
    /// The counts of `ops`.
    pub fn of(ops: &[Op]) -> Self {
        let mut c = DiffCounts::default();
        for op in ops {
            match op {
                Op::NewService(_) => c.services_added += 1,
                Op::SetService(_) => c.services_changed += 1,
                Op::DelService(_) => c.services_removed += 1,
                Op::NewDest(..) => c.dests_added += 1,
                Op::SetDest(..) => c.dests_changed += 1,
                Op::DelDest(..) => c.dests_removed += 1,
            }
        }
        c
    }

    /// Total operations.
    pub fn total(&self) -> usize {
        self.services_added
            + self.services_changed
            + self.services_removed
            + self.dests_added
            + self.dests_changed
            + self.dests_removed
    }
}

fn same_dest(a: &Dest, b: &Dest) -> bool {
    a.weight == b.weight
        && a.upper_threshold == b.upper_threshold
        && a.lower_threshold == b.lower_threshold
        && match (a.forward, b.forward) {
            (Forward::Tunnel(x), Forward::Tunnel(y)) => {
                x.kind == y.kind
                    && (x.kind != TunnelKind::Gue || x.port == y.port)
                    && (x.kind == TunnelKind::Ipip || x.flags == y.flags)
            }
            (x, y) => x == y,
        }
}

/// The operations that turn the services `scope` of `current` into those of
/// `desired`: services of `scope` missing from `desired` are deleted, the
/// others added or edited, real server by real server. Nothing outside
/// `scope` is touched. Within a service, additions and edits come before
/// removals, so a service never runs empty during a swap.
pub fn diff_scoped(current: &Table, desired: &Table, scope: &BTreeSet<ServiceKey>) -> Vec<Op> {
    let mut ops = Vec::new();
    let mut dels = Vec::new();
    for key in scope {
        match (current.get(key), desired.get(key)) {
            (None, None) => {}
            (Some(_), None) => dels.push(Op::DelService(*key)),
            (None, Some(want)) => {
                ops.push(Op::NewService(want.service.clone()));
                ops.extend(want.dests.iter().map(|d| Op::NewDest(*key, *d)));
            }
            (Some(have), Some(want)) => {
                if have.service != want.service {
                    ops.push(Op::SetService(want.service.clone()));
                }
                let have_d: HashMap<SocketAddr, &Dest> = have.dests.iter().map(|d| (d.addr, d)).collect();
                for d in &want.dests {
                    match have_d.get(&d.addr) {
                        None => ops.push(Op::NewDest(*key, *d)),
                        Some(h) if !same_dest(h, d) => ops.push(Op::SetDest(*key, *d)),
                        Some(_) => {}
                    }
                }
                let want_d: BTreeSet<SocketAddr> = want.dests.iter().map(|d| d.addr).collect();
                ops.extend(have.dests.iter().filter(|d| !want_d.contains(&d.addr)).map(|d| Op::DelDest(*key, d.addr)));
            }
        }
    }
    ops.extend(dels);
    ops
}

/// [`diff_scoped`] over every service of `desired` and the services of
/// `current` listed in `owned` (those this director installed before; the
/// others are left alone).
pub fn diff(current: &Table, desired: &Table, owned: &BTreeSet<ServiceKey>) -> Vec<Op> {
    let mut scope: BTreeSet<ServiceKey> = desired.keys().copied().collect();
    scope.extend(owned.iter().filter(|k| current.contains_key(k)).copied());
    diff_scoped(current, desired, &scope)
}

/// Applies `ops` (those that succeeded) to `table`, the way the kernel does.
pub fn apply_ops(table: &mut Table, ops: &[Op]) {
    for op in ops {
        match op {
            Op::NewService(s) => {
                table.insert(s.key, TableService { service: s.clone(), dests: Vec::new() });
            }
            Op::SetService(s) => {
                if let Some(t) = table.get_mut(&s.key) {
                    t.service = s.clone();
                }
            }
            Op::DelService(k) => {
                table.remove(k);
            }
            Op::NewDest(k, d) => {
                if let Some(t) = table.get_mut(k) {
                    t.dests.insert(0, *d);
                }
            }
            Op::SetDest(k, d) => {
                if let Some(x) = table.get_mut(k).and_then(|t| t.dests.iter_mut().find(|x| x.addr == d.addr)) {
                    *x = *d;
                }
            }
            Op::DelDest(k, a) => {
                if let Some(t) = table.get_mut(k) {
                    t.dests.retain(|x| x.addr != *a);
                }
            }
        }
    }
}

/// The table in `ipvsadm -Sn` form (one `-A` line per service, one `-a` line
/// per real server), for `ipvsadm -R` and for comparing tables in tests.
pub fn to_ipvsadm_rules(t: &Table) -> String {
    let mut s = String::new();
    for (k, svc) in t {
        let kspec = key_spec(k);
        s.push_str(&format!("-A {kspec} -s {}", svc.service.scheduler));
        if svc.service.flags & IP_VS_SVC_F_PERSISTENT != 0 {
            s.push_str(&format!(" -p {}", svc.service.timeout));
            match k.family() {
                Family::Inet if svc.service.netmask != u32::MAX => {
                    s.push_str(&format!(" -M {}", Ipv4Addr::from(svc.service.netmask)))
                }
                Family::Inet6 if svc.service.netmask != 128 => s.push_str(&format!(" -M {}", svc.service.netmask)),
                _ => {}
            }
        }
        let mut fl = Vec::new();
        if svc.service.flags & IP_VS_SVC_F_SCHED1 != 0 {
            fl.push("flag-1");
        }
        if svc.service.flags & IP_VS_SVC_F_SCHED2 != 0 {
            fl.push("flag-2");
        }
        if svc.service.flags & IP_VS_SVC_F_SCHED3 != 0 {
            fl.push("flag-3");
        }
        if !fl.is_empty() {
            s.push_str(&format!(" -b {}", fl.join(",")));
        }
        if svc.service.flags & IP_VS_SVC_F_ONEPACKET != 0 {
            s.push_str(" -o");
        }
        s.push('\n');
        for d in &svc.dests {
            let m = match d.forward {
                Forward::Masq => "-m",
                Forward::Route => "-g",
                Forward::Tunnel(_) => "-i",
                Forward::Local | Forward::Bypass => "-g",
            };
            let addr = match d.addr {
                SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
                a => a.to_string(),
            };
            s.push_str(&format!("-a {kspec} -r {addr} {m} -w {}", d.weight));
            if d.upper_threshold != 0 {
                s.push_str(&format!(" -x {}", d.upper_threshold));
            }
            if d.lower_threshold != 0 {
                s.push_str(&format!(" -y {}", d.lower_threshold));
            }
            s.push('\n');
        }
    }
    s
}

fn key_spec(k: &ServiceKey) -> String {
    match k {
        ServiceKey::Addr { protocol, addr } => {
            let p = match protocol {
                Protocol::Tcp => "-t",
                Protocol::Udp => "-u",
                Protocol::Sctp => "--sctp-service",
            };
            match addr {
                SocketAddr::V6(a) => format!("{p} [{}]:{}", a.ip(), a.port()),
                a => format!("{p} {a}"),
            }
        }
        ServiceKey::Fwmark { family: Family::Inet, mark } => format!("-f {mark}"),
        ServiceKey::Fwmark { family: Family::Inet6, mark } => format!("-f {mark} -6"),
    }
}
