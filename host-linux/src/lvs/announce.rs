//! Announcing virtual servers to the host's routing daemon (a hav extension, `announce` in a
//! `virtual_server`): active-active directors behind ECMP.
//!
//! hav speaks no routing protocol. For each address of an announced virtual server it holds
//! two kernel routes, both with the configured route protocol (`proto`, default 250):
//!
//! - `local VIP dev DEV table local`, from the first apply to the end of a clean stop: the
//!   kernel delivers the VIP to this host (so IPVS sees it) without an address on any
//!   interface. An address would give FRR's zebra a connected route for the same prefix, which
//!   it prefers to the kernel route, so the kernel route would never be redistributed (and
//!   `redistribute connected` would announce the VIP whatever its health);
//! - `blackhole VIP table T metric M`, while the virtual server has quorum, is not suspended
//!   (`ha_suspend`) and its services are in the kernel: the route FRR redistributes
//!   (`redistribute kernel`, or `ip import-table T` + `redistribute table T`). Locally the
//!   `local` route wins (table local is looked up first), so the blackhole drops nothing.
//!
//! On the first reconciliation, every blackhole or local host route of a configured `proto`
//! that the configuration does not ask for is deleted (left by a run that crashed); those it
//! asks for are adopted. A clean stop withdraws the blackhole routes, waits the longest
//! `drain_time` of the virtual servers it withdrew, then the director removes its services, and
//! last the local routes go. Route failures are logged and never stop the director.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::Duration;

use crate::config::announce::Announce;
use crate::config::Config;
use crate::ipvs::ServiceKey;
use crate::net::route::{HostRoute, RouteKind, TABLE_LOCAL};
use crate::net::Netlink;

use super::table;

/// The routes a configuration asks for in one state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoutePlan {
    /// `local` routes (held while the director runs).
    pub local: BTreeSet<HostRoute>,
    /// `blackhole` routes (held while each virtual server is healthy).
    pub announced: BTreeSet<HostRoute>,
    /// The drain time of each announced route's virtual server.
    pub drain: BTreeMap<HostRoute, Duration>,
    /// The route protocols the configuration uses.
    pub protos: BTreeSet<u8>,
}

/// The addresses virtual server `vi` stands for (its own, or its group's; fwmarks have none).
pub fn addresses(config: &Config, vi: usize) -> Vec<IpAddr> {
    let vs = &config.virtual_servers[vi];
    let mut out: Vec<IpAddr> = Vec::new();
    for k in table::service_keys(vs, &config.virtual_server_groups) {
        if let ServiceKey::Addr { addr, .. } = k {
            if !out.contains(&addr.ip()) {
                out.push(addr.ip());
            }
        }
    }
    out
}

fn blackhole(a: &Announce, dst: IpAddr) -> HostRoute {
    HostRoute { dst, table: a.table, proto: a.proto, metric: a.metric, kind: RouteKind::Blackhole }
}

fn local(a: &Announce, dst: IpAddr, oif: u32) -> HostRoute {
    HostRoute { dst, table: TABLE_LOCAL, proto: a.proto, metric: 0, kind: RouteKind::Local { oif } }
}

/// The routes `config` asks for: `healthy(vi)` says whether virtual server `vi` is to be
/// announced now; `ifindex(dev)` resolves a link (a virtual server whose `dev` does not
/// resolve gets neither route: without local delivery the announced route would attract
/// traffic only to drop it).
pub fn plan(config: &Config, healthy: impl Fn(usize) -> bool, mut ifindex: impl FnMut(&str) -> Option<u32>) -> RoutePlan {
    let mut p = RoutePlan::default();
    for (vi, vs) in config.virtual_servers.iter().enumerate() {
        let Some(a) = &vs.announce else { continue };
        p.protos.insert(a.proto);
        let Some(oif) = ifindex(&a.dev) else { continue };
        let up = healthy(vi);
        for ip in addresses(config, vi) {
            p.local.insert(local(a, ip, oif));
            if up {
                let r = blackhole(a, ip);
                p.announced.insert(r);
                let d = p.drain.entry(r).or_default();
                *d = (*d).max(a.drain_time);
            }
        }
    }
    p
}

/// Holds the routes of announced virtual servers (see the module documentation).
#[derive(Debug, Default)]
pub struct Announcer {
    nl: Option<Netlink>,
    /// Routes this director added (or adopted) and still holds.
    held: BTreeSet<HostRoute>,
    /// Drain time of each held blackhole route.
    drain: BTreeMap<HostRoute, Duration>,
    /// Route protocols already swept for stale routes.
    swept: BTreeSet<u8>,
}

impl Announcer {
    /// An announcer that has touched nothing yet (the netlink socket opens on first use).
    pub fn new() -> Self {
        Announcer::default()
    }

    /// The routes held now.
    pub fn held(&self) -> &BTreeSet<HostRoute> {
        &self.held
    }

    fn netlink(&mut self) -> Option<&mut Netlink> {
        if self.nl.is_none() {
            match Netlink::new() {
                Ok(n) => self.nl = Some(n),
                Err(e) => tracing::error!(error = %e, "announce: no rtnetlink socket; routes are not held"),
            }
        }
        self.nl.as_mut()
    }

    /// Makes the held routes those `config` asks for while `healthy(vi)`: withdraws first, then
    /// adds the local routes, then the announced ones.
    pub fn reconcile(&mut self, config: &Config, healthy: impl Fn(usize) -> bool) {
        let any = config.virtual_servers.iter().any(|v| v.announce.is_some());
        if !any && self.held.is_empty() {
            return;
        }
        let Some(nl) = self.netlink() else { return };
        let want = plan(config, healthy, |dev| match nl.link_by_name(dev) {
            Ok(l) => Some(l.index),
            Err(e) => {
                tracing::error!(dev, error = %e, "announce: the VIP's link is missing; its virtual servers are not announced");
                None
            }
        });
        let fresh: Vec<u8> = want.protos.iter().filter(|p| !self.swept.contains(p)).copied().collect();
        for proto in fresh {
            self.sweep(proto, &want);
            self.swept.insert(proto);
        }
        let all_want: BTreeSet<HostRoute> = want.local.union(&want.announced).copied().collect();
        let gone: Vec<HostRoute> = self.held.difference(&all_want).copied().collect();
        // Withdrawals before the local routes they depend on.
        let (bh, lo): (Vec<HostRoute>, Vec<HostRoute>) = gone.into_iter().partition(|r| r.kind == RouteKind::Blackhole);
        for r in bh.iter().chain(&lo) {
            self.delete(r);
        }
        let mut delivered = BTreeSet::new();
        for r in &want.local {
            if self.add(r) {
                delivered.insert(r.dst);
            }
        }
        for r in &want.announced {
            // Only an address the kernel delivers here (by our local route, or an address
            // someone else put on a link) is announced: otherwise traffic would be attracted to
            // be dropped.
            if delivered.contains(&r.dst) {
                self.add(r);
            }
        }
        self.drain = want.drain;
    }

    /// Adds `r` unless held; whether it (or, for a local route, the kernel's own for an
    /// address) is in place afterwards.
    fn add(&mut self, r: &HostRoute) -> bool {
        if self.held.contains(r) {
            return true;
        }
        let Some(nl) = self.nl.as_mut() else { return false };
        match nl.add_host_route(r) {
            Ok(true) => {
                if r.kind == RouteKind::Blackhole {
                    tracing::info!(route = %r, "announce: route added");
                } else {
                    tracing::debug!(route = %r, "announce: local route added");
                }
                self.held.insert(*r);
                true
            }
            Ok(false) if r.kind == RouteKind::Blackhole => {
                tracing::warn!(route = %r, "announce: a route for this address, table and metric exists and is not hav's; left alone");
                false
            }
            Ok(false) => {
                tracing::debug!(route = %r, "announce: the address is local already");
                true
            }
            Err(e) => {
                tracing::error!(route = %r, error = %e, "announce: route not added");
                false
            }
        }
    }

    fn delete(&mut self, r: &HostRoute) {
        let Some(nl) = self.nl.as_mut() else { return };
        match nl.del_host_route(r) {
            Ok(()) => {
                if r.kind == RouteKind::Blackhole {
                    tracing::info!(route = %r, "announce: route withdrawn");
                }
                self.held.remove(r);
            }
            Err(e) => tracing::error!(route = %r, error = %e, "announce: route not deleted"),
        }
    }

    /// Deletes the host routes of `proto` that `want` does not ask for; adopts those it does.
    fn sweep(&mut self, proto: u8, want: &RoutePlan) {
        let Some(nl) = self.nl.as_mut() else { return };
        let found = match nl.host_routes(proto) {
            Ok(f) => f,
            Err(e) => {
                tracing::error!(proto, error = %e, "announce: routes not read; stale ones stay");
                return;
            }
        };
        for r in found {
            if want.local.contains(&r) || want.announced.contains(&r) {
                self.held.insert(r);
            } else {
                tracing::info!(route = %r, "announce: stale route removed");
                if let Err(e) = nl.del_host_route(&r) {
                    tracing::error!(route = %r, error = %e, "announce: stale route not deleted");
                }
            }
        }
    }

    /// Withdraws every announced (blackhole) route; returns how long to drain: the longest
    /// `drain_time` among them, zero when none was held.
    pub fn withdraw_all(&mut self) -> Duration {
        let bh: Vec<HostRoute> = self.held.iter().filter(|r| r.kind == RouteKind::Blackhole).copied().collect();
        let mut drain = Duration::ZERO;
        for r in &bh {
            drain = drain.max(self.drain.get(r).copied().unwrap_or_default());
            self.delete(r);
        }
        drain
    }

    /// Deletes every route still held (the local ones, after the services are gone).
    pub fn release(&mut self) {
        let all: Vec<HostRoute> = self.held.iter().copied().collect();
        let (bh, lo): (Vec<HostRoute>, Vec<HostRoute>) = all.into_iter().partition(|r| r.kind == RouteKind::Blackhole);
        for r in bh.iter().chain(&lo) {
            self.delete(r);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn load(text: &str) -> (Config, Vec<String>) {
        let l = crate::config::load_str(Path::new("a.conf"), text).expect("valid");
        (l.config, l.warnings.iter().map(|w| w.to_string()).collect())
    }

    const CONF: &str = "\
virtual_server_group G {
  192.0.2.20-21 80
  fwmark 7
}
virtual_server 192.0.2.10 80 {
  lb_algo mh
  mh-fallback
  inhibit_on_failure
  announce {
    table 200
    proto 251
    metric 10
    drain_time 3
  }
  real_server 10.0.0.1 80 {
  }
}
virtual_server group G {
  lb_algo mh
  mh-fallback
  inhibit_on_failure
  announce
  real_server 10.0.0.1 80 {
  }
}
virtual_server 192.0.2.30 80 {
  real_server 10.0.0.1 80 {
  }
}
";

    #[test]
    fn test_plan_follows_health() {
        let (c, w) = load(CONF);
        assert!(w.is_empty(), "{w:?}");
        let a = c.virtual_servers[0].announce.as_ref().expect("announce");
        assert_eq!((a.table, a.proto, a.metric, a.drain_time, a.dev.as_str()), (200, 251, 10, Duration::from_secs(3), "lo"));
        let d = c.virtual_servers[1].announce.as_ref().expect("announce");
        assert_eq!((d.table, d.proto, d.metric, d.drain_time), (254, 250, 0, Duration::from_secs(5)));
        assert!(c.virtual_servers[2].announce.is_none());

        let all = plan(&c, |_| true, |_| Some(1));
        let ips = |s: &BTreeSet<HostRoute>| s.iter().map(|r| r.dst.to_string()).collect::<Vec<_>>();
        assert_eq!(ips(&all.local), ["192.0.2.10", "192.0.2.20", "192.0.2.21"]);
        assert_eq!(ips(&all.announced), ["192.0.2.10", "192.0.2.20", "192.0.2.21"]);
        assert_eq!(all.protos, BTreeSet::from([250, 251]));
        let r10 = all.announced.iter().find(|r| r.dst.to_string() == "192.0.2.10").expect("route");
        assert_eq!((r10.table, r10.proto, r10.metric, r10.kind), (200, 251, 10, RouteKind::Blackhole));
        assert_eq!(all.drain[r10], Duration::from_secs(3));
        assert!(all.local.iter().all(|r| r.table == TABLE_LOCAL && r.kind == RouteKind::Local { oif: 1 }));

        // The group loses quorum: its routes are withdrawn, the local ones stay.
        let some = plan(&c, |vi| vi == 0, |_| Some(1));
        assert_eq!(ips(&some.announced), ["192.0.2.10"]);
        assert_eq!(some.local, all.local);

        // Without the link, nothing for it.
        let none = plan(&c, |_| true, |_| None);
        assert!(none.local.is_empty() && none.announced.is_empty());
    }

    #[test]
    fn test_warnings_for_inconsistent_directors() {
        let (_, w) = load("virtual_server 192.0.2.10 80 {\n  lb_algo wlc\n  announce\n  real_server 10.0.0.1 80 {\n  }\n}\n");
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].starts_with("a.conf:3:") && w[0].contains("lb_algo mh"), "{w:?}");
        let (_, w) = load("virtual_server 192.0.2.10 80 {\n  lb_algo mh\n  announce\n  real_server 10.0.0.1 80 {\n  }\n}\n");
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("inhibit_on_failure") && w[0].contains("10.0.0.1:80"), "{w:?}");
        let (_, w) = load("virtual_server 192.0.2.10 80 {\n  lb_algo mh\n  inhibit_on_failure\n  announce\n  real_server 10.0.0.1 80 {\n  }\n}\n");
        assert!(w.len() == 1 && w[0].contains("mh-fallback"), "{w:?}");
    }

    #[test]
    fn test_bad_announce() {
        let e = crate::config::load_str(Path::new("a.conf"), "virtual_server fwmark 3 {\n  announce\n}\n").expect_err("fwmark");
        assert!(e.to_string().starts_with("a.conf:2:"), "{e}");
        let e = crate::config::load_str(Path::new("a.conf"), "virtual_server 192.0.2.1 80 {\n  announce {\n    table 255\n  }\n}\n")
            .expect_err("local table");
        assert!(e.to_string().starts_with("a.conf:3:"), "{e}");
        let e = crate::config::load_str(Path::new("a.conf"), "virtual_server 192.0.2.1 80 {\n  announce {\n    tabel 20\n  }\n}\n")
            .expect_err("typo");
        assert!(e.to_string().starts_with("a.conf:3:5: unknown keyword 'tabel'"), "{e}");
        let e = crate::config::load_str(Path::new("a.conf"), "virtual_server 192.0.2.1 80 {\n  announce {\n    proto 2\n  }\n}\n")
            .expect_err("kernel proto");
        assert!(e.to_string().starts_with("a.conf:3:"), "{e}");
    }
}
