//! Accept mode off (`vrrp_strict`) in the namespace lab: hav installs the nftables drop rules
//! keepalived installs, in the same tables with the same layout, so rule sets and monitoring
//! written for keepalived's tables keep working.
//!
//! The same config runs under Debian's keepalived and under hav, each alone in a lab of its
//! own (one router, one client). For each: once master, traffic to the VIPs is dropped (the
//! client's ping to a VIP goes unanswered while the router's own address answers), and
//! `nft list ruleset` in the router's namespace is taken; after SIGTERM the tables are gone.
//! The two listings must be the same.

use std::time::Duration;

use hav_tests::netns::{skip_unless, Lab, Need, Netns};
use hav_tests::peers::{wait_until, Daemon, Node};

const CONF: &str = "global_defs {
    vrrp_strict
}
vrrp_instance A {
    interface eth0
    virtual_router_id 51
    priority 200
    advert_int 0.5
    version 3
    virtual_ipaddress {
        10.0.0.50/32
        10.0.0.51/24
    }
}
vrrp_instance B {
    interface eth0
    virtual_router_id 52
    version 3
    priority 200
    advert_int 0.5
    virtual_ipaddress {
        fe80::50/64
        fd00::50/64
    }
    virtual_ipaddress_excluded {
        fd00::51/64
    }
}
";

fn ruleset(ns: &Netns) -> String {
    ns.ok("nft", &["list", "ruleset"]).expect("nft list ruleset")
}

fn answers(lab: &Lab, addr: &str) -> bool {
    lab.client.run("ping", &["-c", "1", "-W", "1", addr]).is_ok_and(|o| o.status.success())
}

/// Runs `daemon` with the config until it is master with its rules in place; returns the
/// ruleset it installed.
fn rules_of(daemon: Daemon, name: &str) -> String {
    let lab = Lab::new(1).expect("lab");
    let r = &lab.routers[0];
    assert_eq!(ruleset(r).trim(), "", "{name}: a new namespace has no rules");
    let mut node = Node::start(r, daemon, CONF);
    let up = wait_until(Duration::from_secs(15), || {
        node.holds("10.0.0.50") && node.holds("fd00::50") && {
            let rs = ruleset(r);
            rs.contains("10.0.0.51") && rs.contains("fd00::51") && rs.contains("fe80::50")
        }
    });
    assert!(up.is_some(), "{name}: not master with its drop rules within 15 s\n{}\n{}", ruleset(r), node.log());
    let rules = ruleset(r);
    // The rules do what they are for: the VIPs are unreachable, the router's own address is not.
    assert!(answers(&lab, "10.0.0.1"), "{name}: the router's own address does not answer");
    assert!(!answers(&lab, "10.0.0.50"), "{name}: the VIP answers with accept mode off\n{rules}");
    assert!(answers(&lab, "fd00::1"), "{name}: the router's own IPv6 address does not answer");
    assert!(!answers(&lab, "fd00::50"), "{name}: the IPv6 VIP answers with accept mode off\n{rules}");
    assert!(node.terminate(), "{name}: did not stop on SIGTERM");
    let gone = wait_until(Duration::from_secs(5), || ruleset(r).trim().is_empty());
    assert!(gone.is_some(), "{name}: rules left after SIGTERM:\n{}", ruleset(r));
    rules
}

#[test]
fn accept_off_drops_the_vips_in_keepalived_tables() {
    if skip_unless("accept_off_drops_the_vips_in_keepalived_tables", &[Need::Root, Need::Keepalived]) {
        return;
    }
    let hav = rules_of(Daemon::Hav(env!("CARGO_BIN_EXE_hav-linux").into()), "hav");
    let keepalived = rules_of(Daemon::Keepalived, "keepalived");
    assert!(hav.contains("table ip keepalived") && hav.contains("table ip6 keepalived"), "{hav}");
    assert_eq!(hav, keepalived, "hav's tables differ from keepalived's");
}
