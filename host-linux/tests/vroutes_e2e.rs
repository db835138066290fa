//! keepalived's `virtual_routes`, `virtual_rules`, `static_ipaddress`, `static_routes` and
//! `static_rules` in the namespace lab: the same config runs under Debian's keepalived and under
//! hav, each in a lab of its own, and the kernel's routing tables and rules (`ip route show
//! table all`, `ip rule show`, both families) must be the same while the instance is master and
//! after the daemon stopped. A reload of hav changes the set without touching unchanged entries
//! (`ip monitor` is the witness), and the virtual entries come and go with mastership while the
//! static ones stay.

use std::time::Duration;

use hav_tests::netns::{skip_unless, Lab, Need, Netns};
use hav_tests::peers::{wait_until, Daemon, Node};

fn hav() -> Daemon {
    Daemon::Hav(env!("CARGO_BIN_EXE_hav-linux").into())
}

const CONFIG: &str = "global_defs {
    default_interface eth0
}
static_ipaddress {
    10.9.0.1/24 dev eth0
    10.9.1.1/24
}
static_routes {
    10.8.0.0/24 via 10.0.0.254 dev eth0 table 100 metric 5
    blackhole 10.7.0.0/24
    2001:db8:7::/64 via fd00::fe dev eth0 metric 300
}
static_rules {
    from 10.9.0.0/24 table 100 priority 100
    from 2001:db8:7::/64 table 100 priority 101
    from 10.30.0.0/16 table 100
}
vrrp_instance A {
    interface eth0
    state MASTER
    virtual_router_id 71
    priority 255
    advert_int 1
    virtual_ipaddress {
        10.0.0.71/24
    }
    virtual_routes {
        10.6.0.0/24 via 10.0.0.254
        src 10.0.0.71 10.5.0.0/24 via 10.0.0.254 dev eth0 table 200 metric 7 protocol 99
        unreachable 10.4.0.0/24
        10.3.0.0/24 nexthop via 10.0.0.253 dev eth0 weight 1 nexthop via 10.0.0.252 dev eth0 weight 2
        10.2.0.0/24 via 10.0.0.254 dev eth0 onlink mtu 1400 advmss 1300
        prohibit 10.1.0.0/24 table 200
        throw 10.11.0.0/16 table 200
        10.12.0.0/24 dev eth0 scope link table 300 tos 0x10
        2001:db8:8::/64 via fd00::fe dev eth0 table 200
        10.13.0.0/24 via 10.0.0.254 dev eth0 no_track
        10.14.0.0/24 dev eth0 protocol bird no_track
        10.15.0.0/24 via 10.0.0.254 or 10.0.0.253 dev eth0
    }
    virtual_rules {
        from 10.0.0.71 table 200 priority 200
        to 10.5.0.0/24 fwmark 0x10/0xff table 200 priority 201
        iif eth0 table 200 priority 202
        not from 10.0.0.0/8 goto 32766 priority 203
        from 10.20.0.0/16 unreachable priority 204
        to 10.21.0.0/16 table 300 priority 205 sport 1000-2000 dport 80 ipproto tcp
        from 2001:db8:9::/48 table 200 priority 206
        uidrange 1000-2000 table 300 priority 207
        lookup main suppress_prefixlength 0 priority 208
        oif eth0 tos 0x10 table 300 priority 209 no_track
        from 10.22.0.0/16 table 300 priority 210 protocol 99
        from 10.32.0.0/16 table 300
    }
}
";

/// The routes and rules of both families, one line each, without what differs between two
/// labs (the interface's random link-local address), sorted.
fn tables(ns: &Netns) -> Vec<String> {
    let mut out = Vec::new();
    for (what, args) in [
        ("route4", &["-4", "-o", "route", "show", "table", "all"][..]),
        ("route6", &["-6", "-o", "route", "show", "table", "all"][..]),
        ("rule4", &["-4", "rule", "show"][..]),
        ("rule6", &["-6", "rule", "show"][..]),
    ] {
        let text = ns.ip(args).expect("ip");
        for l in text.lines() {
            if l.contains("fe80::") && !l.starts_with("fe80::/64") {
                continue;
            }
            out.push(format!("{what}: {}", l.split_whitespace().collect::<Vec<_>>().join(" ")));
        }
    }
    out.sort();
    out
}

/// What the daemon adds to a fresh lab router while master, and what it leaves after stop.
fn run(daemon: Daemon, name: &str) -> (Vec<String>, Vec<String>, Vec<String>) {
    let lab = Lab::new(1).expect("lab");
    let r = &lab.routers[0];
    // Gateways answer on the switch, as a real next hop would (the kernel checks them).
    lab.client.add_addr("eth0", "10.0.0.254/24").expect("addr");
    let before = tables(r);
    let mut node = Node::start(r, daemon, CONFIG);
    let master = wait_until(Duration::from_secs(10), || node.holds("10.0.0.71"));
    assert!(master.is_some(), "{name} never became master\n{}", node.log());
    // keepalived installs routes and rules right after the VIPs; give both a moment.
    let settled = wait_until(Duration::from_secs(5), || tables(r).iter().any(|l| l.contains("10.13.0.0/24")) && tables(r).iter().any(|l| l.contains("209:")));
    assert!(settled.is_some(), "{name}: routes never installed\n{}\n{}", tables(r).join("\n"), node.log());
    std::thread::sleep(Duration::from_millis(500));
    let master = tables(r);
    assert!(node.terminate(), "{name}: SIGTERM");
    let after = tables(r);
    (before, master, after)
}

fn diff(a: &[String], b: &[String]) -> String {
    let mut s = String::new();
    for l in a.iter().filter(|l| !b.contains(l)) {
        s.push_str(&format!("  only hav:        {l}\n"));
    }
    for l in b.iter().filter(|l| !a.contains(l)) {
        s.push_str(&format!("  only keepalived: {l}\n"));
    }
    s
}

/// hav installs exactly what keepalived installs, and removes what it does at stop.
#[test]
fn routes_and_rules_match_keepalived() {
    if skip_unless("routes_and_rules_match_keepalived", &[Need::Root, Need::Keepalived]) {
        return;
    }
    let (h_before, h_master, h_after) = run(hav(), "hav");
    let (k_before, k_master, k_after) = run(Daemon::Keepalived, "keepalived");
    assert_eq!(h_before, k_before, "the two labs differ before start:\n{}", diff(&h_before, &k_before));
    // Real entries, not an empty comparison: the virtual and static ones are there.
    for want in ["10.3.0.0/24", "unreachable 10.4.0.0/24", "throw 10.11.0.0/16", "2001:db8:8::/64", "203: not from 10.0.0.0/8", "10.9.1.0/24", "16384: from 10.30.0.0/16", "16383: from 10.32.0.0/16"] {
        assert!(h_master.iter().any(|l| l.contains(want)), "hav: no {want}:\n{}", h_master.join("\n"));
    }
    assert_eq!(h_master, k_master, "while master:\n{}", diff(&h_master, &k_master));
    assert_eq!(h_after, k_after, "after stop:\n{}", diff(&h_after, &k_after));
    assert_eq!(h_after, h_before, "hav left entries behind:\n{}", diff(&h_after, &h_before));
}

/// A reload with one virtual route, one virtual rule and one static route changed: those move,
/// and nothing unchanged is deleted (`ip monitor` sees every deletion).
#[test]
fn reload_changes_only_what_changed() {
    if skip_unless("reload_changes_only_what_changed", &[Need::Root]) {
        return;
    }
    let lab = Lab::new(1).expect("lab");
    let r = &lab.routers[0];
    lab.client.add_addr("eth0", "10.0.0.254/24").expect("addr");
    let mut node = Node::start(r, hav(), CONFIG);
    let ready = wait_until(Duration::from_secs(10), || tables(r).iter().any(|l| l.contains("209:")));
    assert!(ready.is_some(), "never master with its rules\n{}", node.log());
    let log = node.dir.join("monitor.log");
    let mon = r.spawn("ip", &["monitor", "route", "rule"], &log).expect("ip monitor");
    std::thread::sleep(Duration::from_millis(300));
    let changed = CONFIG
        .replace("10.6.0.0/24 via 10.0.0.254\n", "10.16.0.0/24 via 10.0.0.254\n")
        .replace("iif eth0 table 200 priority 202", "iif eth0 table 201 priority 202")
        .replace("blackhole 10.7.0.0/24", "blackhole 10.17.0.0/24");
    node.write_config(&changed);
    node.signal(nix::sys::signal::Signal::SIGHUP);
    let moved = wait_until(Duration::from_secs(10), || {
        let t = tables(r);
        t.iter().any(|l| l.contains("10.16.0.0/24")) && t.iter().any(|l| l.contains("202: from all iif eth0 lookup 201"))
    });
    assert!(moved.is_some(), "reload not applied:\n{}\n{}", tables(r).join("\n"), node.log());
    std::thread::sleep(Duration::from_millis(500));
    let _ = r.stop(mon);
    let events = std::fs::read_to_string(&log).unwrap_or_default();
    let deleted: Vec<&str> = events.lines().filter(|l| l.starts_with("Deleted")).collect();
    let t = tables(r);
    assert!(!t.iter().any(|l| l.contains("10.6.0.0/24") || l.contains("10.7.0.0/24") || l.contains("lookup 200 proto keepalived") && l.starts_with("rule4: 202:")), "{}", t.join("\n"));
    assert!(t.iter().any(|l| l.contains("blackhole 10.17.0.0/24")), "{}", t.join("\n"));
    assert_eq!(deleted.len(), 3, "exactly the three changed entries go:\n{events}");
    for gone in ["10.6.0.0/24", "10.7.0.0/24", "202:"] {
        assert!(deleted.iter().any(|l| l.contains(gone)), "{gone} not deleted:\n{events}");
    }
    assert!(node.terminate(), "SIGTERM");
    assert!(!tables(r).iter().any(|l| l.contains("keepalived")), "left behind:\n{}", tables(r).join("\n"));
}

/// Virtual routes and rules follow mastership, static ones the daemon: hav, master, gives way to
/// a keepalived of higher priority (its virtual entries go, the static ones stay), takes over
/// again when that one stops (they come back), and removes everything at its stop.
#[test]
fn virtual_entries_follow_mastership() {
    if skip_unless("virtual_entries_follow_mastership", &[Need::Root, Need::Keepalived]) {
        return;
    }
    let lab = Lab::new(2).expect("lab");
    let (r0, r1) = (&lab.routers[0], &lab.routers[1]);
    lab.client.add_addr("eth0", "10.0.0.254/24").expect("addr");
    let before = tables(r0);
    let mut h = Node::start(r0, hav(), &CONFIG.replace("priority 255", "priority 100"));
    let virtual_in = |t: &[String]| t.iter().any(|l| l.contains("10.6.0.0/24")) && t.iter().any(|l| l.starts_with("rule4: 200:"));
    let static_in = |t: &[String]| t.iter().any(|l| l.contains("10.8.0.0/24")) && t.iter().any(|l| l.starts_with("rule4: 100:"));
    assert!(wait_until(Duration::from_secs(10), || virtual_in(&tables(r0))).is_some(), "hav never master\n{}", h.log());
    let k = "vrrp_instance A {\n interface eth0\n virtual_router_id 71\n priority 200\n advert_int 1\n virtual_ipaddress {\n  10.0.0.71/24\n }\n}\n";
    let mut k = Node::start(r1, Daemon::Keepalived, k);
    let gone = wait_until(Duration::from_secs(10), || !virtual_in(&tables(r0)) && !h.holds("10.0.0.71"));
    assert!(gone.is_some(), "hav kept its virtual entries as backup:\n{}\n{}", tables(r0).join("\n"), h.log());
    let t = tables(r0);
    assert!(static_in(&t), "static entries went with mastership:\n{}", t.join("\n"));
    assert!(!t.iter().any(|l| l.contains("10.2.0.0/24") || l.starts_with("rule4: 209:")), "virtual entries left:\n{}", t.join("\n"));
    assert!(k.terminate(), "keepalived SIGTERM");
    let back = wait_until(Duration::from_secs(10), || virtual_in(&tables(r0)));
    assert!(back.is_some(), "virtual entries not back with mastership:\n{}\n{}", tables(r0).join("\n"), h.log());
    assert!(h.terminate(), "hav SIGTERM");
    assert_eq!(tables(r0), before, "hav left entries behind");
}
