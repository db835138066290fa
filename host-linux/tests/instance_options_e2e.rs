//! keepalived options the daemon acts on, in the namespace lab: `promote_secondaries` (the
//! interface's sysctl set while running, restored at stop) and `vrrp_startup_delay` (the
//! instances start only after it).

use std::time::{Duration, Instant};

use hav_tests::netns::{skip_unless, Lab, Need, Netns};
use hav_tests::peers::{wait_until, Daemon, Node};

fn hav() -> Daemon {
    Daemon::Hav(env!("CARGO_BIN_EXE_hav-linux").into())
}

fn promote(ns: &Netns) -> String {
    ns.ok("cat", &["/proc/sys/net/ipv4/conf/eth0/promote_secondaries"]).expect("sysctl").trim().to_owned()
}

#[test]
fn promote_secondaries_is_set_while_running() {
    if skip_unless("promote_secondaries_is_set_while_running", &[Need::Root]) {
        return;
    }
    let lab = Lab::new(1).expect("lab");
    let r = &lab.routers[0];
    assert_eq!(promote(r), "0", "a new namespace's default");
    let conf = "vrrp_instance A {\n  interface eth0\n  virtual_router_id 61\n  priority 255\n  advert_int 1\n  promote_secondaries\n  \
                virtual_ipaddress {\n    10.0.0.61/24\n  }\n}\n";
    let mut node = Node::start(r, hav(), conf);
    assert!(wait_until(Duration::from_secs(10), || node.holds("10.0.0.61")).is_some(), "{}", node.log());
    assert_eq!(promote(r), "1", "promote_secondaries not set on eth0\n{}", node.log());
    // The VIP is a secondary of 10.0.0.1/24, the address the sysctl is about.
    let addrs = r.ip(&["-4", "addr", "show", "dev", "eth0"]).expect("ip");
    assert!(addrs.contains("10.0.0.61/24") && addrs.contains("secondary"), "{addrs}");
    assert!(node.terminate(), "SIGTERM");
    assert_eq!(promote(r), "0", "promote_secondaries not restored at stop");
}

#[test]
fn vrrp_startup_delay_holds_the_instances_back() {
    if skip_unless("vrrp_startup_delay_holds_the_instances_back", &[Need::Root]) {
        return;
    }
    let lab = Lab::new(1).expect("lab");
    let r = &lab.routers[0];
    // An address owner takes over at once: without the delay it holds the VIP within a second.
    let conf = "global_defs {\n  vrrp_startup_delay 2.5\n}\nvrrp_instance A {\n  interface eth0\n  virtual_router_id 62\n  priority 255\n  \
                advert_int 1\n  virtual_ipaddress {\n    10.0.0.62/32\n  }\n}\n";
    let t0 = Instant::now();
    let node = Node::start(r, hav(), conf);
    let held = wait_until(Duration::from_secs(10), || node.holds("10.0.0.62"));
    let after = t0.elapsed();
    assert!(held.is_some(), "VIP never held\n{}", node.log());
    assert!(after >= Duration::from_millis(2500), "VIP held {after:?} after start, before vrrp_startup_delay 2.5\n{}", node.log());
    assert!(after < Duration::from_secs(6), "VIP held only {after:?} after start\n{}", node.log());
    assert!(node.log().contains("vrrp_startup_delay"), "{}", node.log());
}

const VIP_OPTIONS: &str = "vrrp_instance A {
    interface eth0
    virtual_router_id 63
    priority 255
    advert_int 1
    virtual_ipaddress {
        10.0.0.70/32 peer 10.0.0.200
        10.0.0.71/24 noprefixroute
    }
}
vrrp_instance B {
    interface eth0
    virtual_router_id 64
    version 3
    priority 255
    advert_int 1
    virtual_ipaddress {
        fe80::70/64
        fd00::70/64 home noprefixroute
        fd00::71/64 preferred_lft 0
        fd00::72/64 mngtmpaddr
        ff05::1:3/128 autojoin
    }
}
";

const OPTION_VIPS: [&str; 7] = ["10.0.0.70 ", "10.0.0.71/", "fe80::70/", "fd00::70/", "fd00::71/", "fd00::72/", "ff05::1:3/"];

/// The VIPs' lines of `ip -o addr show dev eth0`, from the family on (the interface index
/// dropped), sorted.
fn vip_lines(ns: &Netns) -> Vec<String> {
    let out = ns.ip(&["-o", "addr", "show", "dev", "eth0"]).expect("ip addr");
    let mut v: Vec<String> = out
        .lines()
        .filter(|l| OPTION_VIPS.iter().any(|a| l.contains(&format!("inet {a}")) || l.contains(&format!("inet6 {a}"))))
        .map(|l| l.split_once("eth0").map_or(l, |x| x.1).split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    v.sort();
    v
}

fn addresses_of(daemon: Daemon, name: &str) -> Vec<String> {
    let lab = Lab::new(1).expect("lab");
    let r = &lab.routers[0];
    let mut node = Node::start(r, daemon, VIP_OPTIONS);
    let all = wait_until(Duration::from_secs(10), || vip_lines(r).len() == OPTION_VIPS.len());
    assert!(all.is_some(), "{name}: VIPs {:?}\n{}", vip_lines(r), node.log());
    std::thread::sleep(Duration::from_millis(300));
    let lines = vip_lines(r);
    assert!(node.terminate(), "{name}: SIGTERM");
    if name == "hav" {
        // keepalived 2.2 leaves the `peer` address behind at stop; hav removes every VIP.
        assert_eq!(vip_lines(r), Vec::<String>::new(), "hav left VIPs at stop");
    }
    lines
}

/// Address options (peer, home, noprefixroute, mngtmpaddr, autojoin, preferred_lft) reach the
/// kernel as they do from keepalived: `ip addr` shows the same VIPs with the same flags.
#[test]
fn vip_options_reach_the_kernel_as_from_keepalived() {
    if skip_unless("vip_options_reach_the_kernel_as_from_keepalived", &[Need::Root, Need::Keepalived]) {
        return;
    }
    let hav = addresses_of(hav(), "hav");
    let keepalived = addresses_of(Daemon::Keepalived, "keepalived");
    assert!(hav.iter().any(|l| l.contains("peer 10.0.0.200/32")), "{hav:?}");
    assert!(hav.iter().any(|l| l.contains("fd00::70/64") && l.contains("home") && l.contains("noprefixroute")), "{hav:?}");
    assert_eq!(hav, keepalived, "hav's VIPs differ from keepalived's");
}

/// Routed unicast: keepalived and hav on two subnets with a router between them, so each
/// advert arrives with TTL 254. hav accepts a peer's adverts within its `min_ttl`/`max_ttl`
/// (keepalived's rule for unicast peers: routed peers work) and stays backup behind
/// keepalived; with `min_ttl 255` the same adverts are dropped and hav takes over.
#[test]
fn routed_unicast_peers_within_their_ttl_bounds() {
    if skip_unless("routed_unicast_peers_within_their_ttl_bounds", &[Need::Root, Need::Keepalived]) {
        return;
    }
    let (a, r, b) = (
        Netns::new(&hav_tests::netns::unique("ua")).expect("ns"),
        Netns::new(&hav_tests::netns::unique("ur")).expect("ns"),
        Netns::new(&hav_tests::netns::unique("ub")).expect("ns"),
    );
    let _l1 = hav_tests::netns::veth(&a, "eth0", &r, "ra").expect("veth");
    let _l2 = hav_tests::netns::veth(&b, "eth0", &r, "rb").expect("veth");
    a.add_addr("eth0", "10.61.1.1/24").expect("addr");
    b.add_addr("eth0", "10.61.2.1/24").expect("addr");
    r.add_addr("ra", "10.61.1.254/24").expect("addr");
    r.add_addr("rb", "10.61.2.254/24").expect("addr");
    r.sysctl("ipv4.ip_forward", "1").expect("forwarding");
    a.ip(&["route", "add", "default", "via", "10.61.1.254"]).expect("route");
    b.ip(&["route", "add", "default", "via", "10.61.2.254"]).expect("route");
    let conf = |src: &str, peer: &str, prio: u8, ttl: &str| {
        format!(
            "vrrp_instance U {{\n  interface eth0\n  virtual_router_id 65\n  priority {prio}\n  advert_int 0.5\n  version 3\n  \
             unicast_src_ip {src}\n  unicast_peer {{\n    {peer} {ttl}\n  }}\n  virtual_ipaddress {{\n    10.61.9.9/32\n  }}\n}}\n"
        )
    };
    let k = Node::start(&a, Daemon::Keepalived, &conf("10.61.1.1", "10.61.2.1", 200, ""));
    assert!(wait_until(Duration::from_secs(10), || k.holds("10.61.9.9")).is_some(), "keepalived never master\n{}", k.log());
    // Within the bounds: hav hears keepalived (TTL 254) and stays backup.
    let mut h = Node::start(&b, hav(), &conf("10.61.2.1", "10.61.1.1", 100, "min_ttl 250 max_ttl 255"));
    std::thread::sleep(Duration::from_secs(4));
    assert!(!h.holds("10.61.9.9"), "hav took over from a routed peer it hears\n{}", h.log());
    assert!(k.holds("10.61.9.9"), "keepalived lost the VIP\n{}", k.log());
    assert!(h.terminate(), "SIGTERM");
    // Outside them: the same adverts are dropped, hav becomes master (two masters, as
    // keepalived's own min_ttl makes them).
    let h = Node::start(&b, hav(), &conf("10.61.2.1", "10.61.1.1", 100, "min_ttl 255"));
    let took = wait_until(Duration::from_secs(10), || h.holds("10.61.9.9"));
    assert!(took.is_some(), "hav did not drop adverts below its min_ttl\n{}", h.log());
}

/// `dynamic_interfaces`: an instance whose interface does not exist at start waits in FAULT
/// (the others run), and starts when the interface appears, as keepalived does; without the
/// option the daemon refuses the config and names the interface.
#[test]
fn dynamic_interfaces_start_when_the_interface_appears() {
    if skip_unless("dynamic_interfaces_start_when_the_interface_appears", &[Need::Root]) {
        return;
    }
    let lab = Lab::new(1).expect("lab");
    let r = &lab.routers[0];
    let instances = "vrrp_instance LATE {\n  interface late0\n  virtual_router_id 66\n  priority 255\n  advert_int 1\n  \
                     virtual_ipaddress {\n    10.66.0.66/32\n  }\n}\n\
                     vrrp_instance NOW {\n  interface eth0\n  virtual_router_id 67\n  priority 255\n  advert_int 1\n  \
                     virtual_ipaddress {\n    10.0.0.67/32\n  }\n}\n";
    // Without dynamic_interfaces: refused, naming the interface.
    let node = Node::start(r, hav(), instances);
    assert!(wait_until(Duration::from_secs(10), || !node.alive()).is_some(), "started with a missing interface\n{}", node.log());
    assert!(node.log().contains("late0"), "{}", node.log());
    drop(node);
    let mut node = Node::start(r, hav(), &format!("global_defs {{\n  dynamic_interfaces\n}}\n{instances}"));
    assert!(wait_until(Duration::from_secs(10), || node.holds("10.0.0.67")).is_some(), "the other instance did not run\n{}", node.log());
    std::thread::sleep(Duration::from_millis(500));
    assert!(!node.holds("10.66.0.66"), "a VIP on an interface that does not exist");
    // The interface appears (a veth pair inside the router): the instance starts on it.
    r.ip(&["link", "add", "late0", "type", "veth", "peer", "name", "late1"]).expect("veth");
    r.add_addr("late0", "10.66.0.1/24").expect("addr");
    r.link_up("late0").expect("up");
    r.link_up("late1").expect("up");
    let held = wait_until(Duration::from_secs(10), || {
        r.ip(&["-4", "addr", "show", "dev", "late0"]).is_ok_and(|o| o.contains("10.66.0.66/32"))
    });
    assert!(held.is_some(), "the waiting instance did not start on late0\n{}", node.log());
    assert!(node.holds("10.0.0.67"), "the other instance lost its VIP\n{}", node.log());
    assert!(node.terminate(), "SIGTERM");
}
