//! Announced virtual servers' routes against the real kernel, in a network namespace: the
//! announcer holds `blackhole VIP` while the virtual server is healthy and `local VIP dev lo`
//! while it runs, sweeps stale routes of its protocol at start, leaves other routes alone, and
//! releases everything (`ip route` is the witness, not the announcer's own state).
//! The whole director (IPVS + FRR) runs in tests/vm/anycast-lab.sh.

use std::path::Path;

use hav_linux::config;
use hav_linux::lvs::announce::Announcer;
use hav_tests::netns::{skip_unless_root, unique, Netns};

const CONF: &str = "\
virtual_server 192.0.2.10 80 {
  lb_algo mh
  mh-fallback
  inhibit_on_failure
  announce {
    table 200
    proto 251
    metric 7
    drain_time 1
  }
  real_server 10.0.0.1 80 {
  }
}
virtual_server 192.0.2.11 80 {
  lb_algo mh
  mh-fallback
  inhibit_on_failure
  announce {
    proto 251
  }
  real_server 10.0.0.1 80 {
  }
}
";

fn routes(ns: &Netns) -> String {
    let mut s = ns.ip(&["route", "show", "table", "all", "proto", "251"]).expect("ip route");
    s = s.lines().map(|l| l.split_whitespace().collect::<Vec<_>>().join(" ")).collect::<Vec<_>>().join("\n");
    s
}

#[test]
fn announcer_holds_withdraws_sweeps_and_releases() {
    if skip_unless_root("announcer_holds_withdraws_sweeps_and_releases") {
        return;
    }
    let ns = Netns::new(&unique("an")).expect("netns");
    ns.link_up("lo").expect("lo up");
    // Left by a crashed run: a stale route of hav's protocol, and one of another protocol that
    // must stay.
    ns.ip(&["route", "add", "blackhole", "192.0.2.99/32", "proto", "251"]).expect("stale");
    ns.ip(&["route", "add", "blackhole", "192.0.2.98/32", "proto", "static"]).expect("other");
    let c = config::load_str(Path::new("a.conf"), CONF).expect("valid").config;

    let mut a = Announcer::new();
    ns.enter(|| a.reconcile(&c, |_| true));
    let r = routes(&ns);
    assert!(r.contains("blackhole 192.0.2.10 table 200 metric 7"), "{r}");
    assert!(r.lines().any(|l| l == "blackhole 192.0.2.11"), "{r}");
    assert!(r.contains("local 192.0.2.10 dev lo table local"), "{r}");
    assert!(r.contains("local 192.0.2.11 dev lo table local"), "{r}");
    assert!(!r.contains("192.0.2.99"), "stale route swept: {r}");
    let other = ns.ip(&["route", "show", "192.0.2.98"]).expect("ip route");
    assert!(other.contains("blackhole 192.0.2.98"), "another protocol's route stays: {other}");
    // The kernel delivers the VIP here, with no address on any link.
    let addrs = ns.ip(&["-o", "addr"]).expect("ip addr");
    assert!(!addrs.contains("192.0.2.10"), "{addrs}");
    let got = ns.ip(&["route", "get", "192.0.2.10"]).expect("route get");
    assert!(got.starts_with("local 192.0.2.10 dev lo"), "{got}");

    // The second virtual server loses quorum: its route goes, its local route stays.
    ns.enter(|| a.reconcile(&c, |vi| vi == 0));
    let r = routes(&ns);
    assert!(!r.contains("blackhole 192.0.2.11"), "{r}");
    assert!(r.contains("blackhole 192.0.2.10"), "{r}");
    assert!(r.contains("local 192.0.2.11 dev lo table local"), "{r}");

    // A new announcer (a restart) adopts what it wants and withdraws nothing it keeps.
    let mut b = Announcer::new();
    ns.enter(|| b.reconcile(&c, |vi| vi == 0));
    assert_eq!(b.held().len(), 3, "{:?}", b.held());
    assert_eq!(routes(&ns), r);

    // A clean stop: withdraw (drain time of the withdrawn routes), then release the rest.
    let drain = ns.enter(|| b.withdraw_all());
    assert_eq!(drain, std::time::Duration::from_secs(1));
    let r = routes(&ns);
    assert!(!r.contains("blackhole"), "{r}");
    assert!(r.contains("local 192.0.2.10"), "{r}");
    ns.enter(|| b.release());
    assert_eq!(routes(&ns), "");
    assert!(ns.ip(&["route", "show", "192.0.2.98"]).expect("ip route").contains("blackhole"));
}

#[test]
fn an_address_already_local_is_announced_and_left_in_place() {
    if skip_unless_root("an_address_already_local_is_announced_and_left_in_place") {
        return;
    }
    let ns = Netns::new(&unique("an")).expect("netns");
    ns.link_up("lo").expect("lo up");
    ns.add_addr("lo", "192.0.2.11/32").expect("addr");
    let c = config::load_str(Path::new("a.conf"), CONF).expect("valid").config;
    let mut a = Announcer::new();
    ns.enter(|| a.reconcile(&c, |_| true));
    assert!(routes(&ns).contains("blackhole 192.0.2.11"), "{}", routes(&ns));
    ns.enter(|| {
        a.withdraw_all();
        a.release();
    });
    assert_eq!(routes(&ns), "");
    let got = ns.ip(&["route", "get", "192.0.2.11"]).expect("route get");
    assert!(got.starts_with("local 192.0.2.11"), "the address's own local route stays: {got}");
}

#[test]
fn an_ipv6_virtual_server_gets_slash_128_routes() {
    if skip_unless_root("an_ipv6_virtual_server_gets_slash_128_routes") {
        return;
    }
    let ns = Netns::new(&unique("an")).expect("netns");
    ns.link_up("lo").expect("lo up");
    let conf = "virtual_server 2001:db8::10 80 {\n  lb_algo mh\n  mh-fallback\n  inhibit_on_failure\n  announce {\n    proto 251\n  }\n  real_server 2001:db8:1::1 80 {\n  }\n}\n";
    let c = config::load_str(Path::new("a.conf"), conf).expect("valid").config;
    let mut a = Announcer::new();
    ns.enter(|| a.reconcile(&c, |_| true));
    let r = ns.ip(&["-6", "route", "show", "table", "all", "proto", "251"]).expect("ip route");
    assert!(r.contains("blackhole 2001:db8::10 "), "{r}");
    assert!(r.contains("local 2001:db8::10 dev lo table local"), "{r}");
    let got = ns.ip(&["-6", "route", "get", "2001:db8::10"]).expect("route get");
    assert!(got.starts_with("local 2001:db8::10"), "{got}");
    ns.enter(|| {
        a.withdraw_all();
        a.release();
    });
    assert_eq!(ns.ip(&["-6", "route", "show", "table", "all", "proto", "251"]).expect("ip route").trim(), "");
}

#[test]
fn a_reload_moves_routes_to_the_new_settings_and_drops_unannounced_ones() {
    if skip_unless_root("a_reload_moves_routes_to_the_new_settings_and_drops_unannounced_ones") {
        return;
    }
    let ns = Netns::new(&unique("an")).expect("netns");
    ns.link_up("lo").expect("lo up");
    let c = config::load_str(Path::new("a.conf"), CONF).expect("valid").config;
    let mut a = Announcer::new();
    ns.enter(|| a.reconcile(&c, |_| true));
    // The reload: the first virtual server moves to metric 9 in the main table, the second
    // is no longer announced.
    let text = CONF.replacen("    table 200\n", "", 1).replacen("metric 7", "metric 9", 1).replacen("  announce {\n    proto 251\n  }\n", "", 1);
    let c2 = config::load_str(Path::new("a.conf"), &text).expect("valid").config;
    assert!(c2.virtual_servers[1].announce.is_none());
    ns.enter(|| a.reconcile(&c2, |_| true));
    let r = routes(&ns);
    assert_eq!(r, "blackhole 192.0.2.10 metric 9\nlocal 192.0.2.10 dev lo table local scope host", "{r}");
    ns.enter(|| {
        a.withdraw_all();
        a.release();
    });
    assert_eq!(routes(&ns), "");
}
