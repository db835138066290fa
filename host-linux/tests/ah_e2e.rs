//! VRRPv2 with IPsec AH authentication (`auth_type AH`) between hav-linux and Debian's
//! keepalived, in a namespace lab of the test's own: one master both ways, failover both ways
//! (the AH sequence number carries over: the new master goes on from the old one's count),
//! unicast peers, a wrong `auth_pass` refused (both become master, hav counts the drops), and
//! hav against hav.
//! A capture checks what hav puts on the wire: protocol 51, keepalived's header layout, an ICV
//! that verifies with the key, sequence numbers that rise.

use std::path::PathBuf;
use std::time::Duration;

use hav_linux::daemon::control::{self, Request};
use hav_tests::capture::Capture;
use hav_tests::netns::{skip_unless, Lab, Need};
use hav_tests::peers::{instance_conf, wait_until, workdir, Daemon, Node};
use serde_json::Value;

fn hav() -> Daemon {
    Daemon::Hav(PathBuf::from(env!("CARGO_BIN_EXE_hav-linux")))
}

/// Election settles within 3 x advert + skew; allow for a loaded CI machine.
const SETTLE: Duration = Duration::from_secs(10);

fn ah(pass: &str) -> String {
    format!("  authentication {{\n    auth_type AH\n    auth_pass {pass}\n  }}")
}

fn conf(prio: u8, vip: &str, pass: &str, extra: &str) -> String {
    instance_conf("VI_AH", 77, prio, 2, "1", &[&format!("{vip}/24")], &format!("{}\n{extra}", ah(pass)))
}

/// hav's first instance, from `status`.
fn status(n: &Node<'_>) -> Option<Value> {
    let s = control::request(&n.control_path(), &Request { cmd: "status".into(), instance: None }).ok()?;
    Some(s["instances"][0].clone())
}

fn counter(n: &Node<'_>, key: &str) -> u64 {
    status(n).and_then(|i| i[key].as_u64()).unwrap_or(0)
}

fn dropped(n: &Node<'_>, reason: &str) -> u64 {
    status(n).and_then(|i| i["dropped"][reason].as_u64()).unwrap_or(0)
}

fn state(n: &Node<'_>) -> String {
    status(n).and_then(|i| i["state"].as_str().map(str::to_owned)).unwrap_or_default()
}

/// Master `m` and backup `b` settle with `m` the only holder of `vip`, and stay so (no flap).
fn settles(m: &Node<'_>, b: &Node<'_>, vip: &str) {
    assert!(
        wait_until(SETTLE, || m.holds(vip) && !b.holds(vip)).is_some(),
        "{:?} never became the only master ({:?} holds: {})",
        m.daemon,
        b.daemon,
        b.holds(vip)
    );
    std::thread::sleep(Duration::from_secs(3));
    assert!(m.holds(vip) && !b.holds(vip), "the election flapped");
}

#[test]
fn keepalived_master_hav_backup_then_hav_takes_over() {
    if skip_unless("keepalived_master_hav_backup_then_hav_takes_over", &[Need::Root, Need::Keepalived]) {
        return;
    }
    let lab = Lab::new(2).expect("lab");
    let vip = "10.0.0.230";
    let mut k = Node::start(&lab.routers[0], Daemon::Keepalived, &conf(150, vip, "secret12", ""));
    let h = Node::start(&lab.routers[1], hav(), &conf(100, vip, "secret12", ""));
    settles(&k, &h, vip);
    // hav takes keepalived's AH adverts: BACKUP, counting them, with no AH drop.
    assert_eq!(state(&h), "BACKUP");
    let rx = counter(&h, "adverts_rx");
    assert!(wait_until(Duration::from_secs(4), || counter(&h, "adverts_rx") >= rx + 2).is_some(), "hav does not take keepalived's adverts: {:?}", status(&h));
    let s = status(&h).expect("status");
    assert_eq!(s["master"].as_str(), Some("10.0.0.1"), "{s}");
    for r in ["ah_icv", "ah_replay", "auth_type", "auth_pass", "checksum", "malformed"] {
        assert_eq!(dropped(&h, r), 0, "hav dropped keepalived's adverts ({r}): {s}");
    }

    // keepalived dies (SIGKILL, link down): hav takes over.
    k.kill();
    assert!(wait_until(SETTLE, || h.holds(vip)).is_some(), "hav did not take over");
    assert!(wait_until(Duration::from_secs(3), || state(&h) == "MASTER").is_some(), "{:?}", status(&h));

    // keepalived comes back (fresh, its count at 0) with the higher priority: it takes hav's
    // AH adverts (or it could not tell hav is there) and preempts; hav takes its adverts and
    // steps down. keepalived logs no AH failure.
    k.revive(&[&format!("{vip}/24")]);
    settles(&k, &h, vip);
    assert_eq!(state(&h), "BACKUP");
    let log = k.log();
    assert!(!log.contains("IPSEC-AH"), "keepalived refused hav's AH adverts:\n{log}");
}

#[test]
fn hav_master_keepalived_backup_and_keepalived_takes_over() {
    if skip_unless("hav_master_keepalived_backup_and_keepalived_takes_over", &[Need::Root, Need::Keepalived, Need::Tcpdump]) {
        return;
    }
    let lab = Lab::new(2).expect("lab");
    let vip = "10.0.0.231";
    let dir = workdir("ahcap");
    let cap = Capture::start(&lab.routers[1], "eth0", &["ip", "proto", "51"], &dir, "ah").expect("tcpdump");
    let mut h = Node::start(&lab.routers[0], hav(), &conf(150, vip, "secret12", ""));
    // keepalived starts once hav runs, so that hav's Master_Down timer is the first to expire
    // and keepalived never has a reason to be master.
    assert!(wait_until(SETTLE, || state(&h) == "BACKUP").is_some(), "hav did not start");
    let k = Node::start(&lab.routers[1], Daemon::Keepalived, &conf(100, vip, "secret12", ""));
    settles(&h, &k, vip);
    let log = k.log();
    assert!(log.contains("Entering BACKUP STATE"), "keepalived:\n{log}");
    assert!(!log.contains("IPSEC-AH"), "keepalived refused hav's AH adverts:\n{log}");
    assert!(!log.contains("Entering MASTER STATE"), "keepalived became master:\n{log}");

    // What hav sent, as keepalived's backup received it.
    let frames = cap.stop().expect("capture");
    let mut seqs = Vec::new();
    for f in frames.iter().filter(|f| f.data.len() > 14 + 20 && f.data[14 + 12..14 + 16] == [10, 0, 0, 1]) {
        let d = &f.data[14..];
        assert_eq!(d[9], 51, "IP protocol");
        assert_eq!((d[1], d[8]), (0xc0, 255), "TOS, TTL");
        assert_ne!(&d[4..6], &[0, 0], "IP id");
        assert_eq!((d[20], d[21]), (112, 4), "AH next header, payload length");
        assert_eq!(&d[24..28], &[10, 0, 0, 1], "SPI = source address");
        hav_core::wire::ah::verify_ipv4(d, b"secret12", false).expect("ICV keyed with the auth_pass");
        assert!(hav_core::wire::ah::verify_ipv4(d, b"secret13", false).is_err());
        assert_eq!((d[44], d[48]), (0x21, 2), "VRRPv2 advert, auth type 2");
        assert_eq!(&d[56..64], &[0; 8], "auth data zero");
        seqs.push(u32::from_be_bytes([d[28], d[29], d[30], d[31]]));
    }
    assert!(seqs.len() >= 3, "too few adverts from hav: {seqs:?}");
    assert!(seqs.windows(2).all(|w| w[1] > w[0]), "sequence numbers do not rise: {seqs:?}");
    let _ = std::fs::remove_dir_all(&dir);

    // hav dies: keepalived takes over; hav comes back (its count at 0), learns keepalived's
    // count as backup and preempts with a higher one, which keepalived takes.
    h.kill();
    assert!(wait_until(SETTLE, || k.holds(vip)).is_some(), "keepalived did not take over");
    h.revive(&[&format!("{vip}/24")]);
    settles(&h, &k, vip);
    assert_eq!(state(&h), "MASTER");
    let log = k.log();
    assert!(!log.contains("IPSEC-AH"), "keepalived refused hav's AH adverts:\n{log}");
}

#[test]
fn ah_over_unicast_peers_both_ways() {
    if skip_unless("ah_over_unicast_peers_both_ways", &[Need::Root, Need::Keepalived]) {
        return;
    }
    let vip = "10.0.0.232";
    let peer = |me: &str, other: &str| format!("  unicast_src_ip {me}\n  unicast_peer {{\n    {other}\n  }}");
    for hav_master in [true, false] {
        let lab = Lab::new(2).expect("lab");
        let (hp, kp) = if hav_master { (150, 100) } else { (100, 150) };
        let h = Node::start(&lab.routers[0], hav(), &conf(hp, vip, "abc", &peer("10.0.0.1", "10.0.0.2")));
        let k = Node::start(&lab.routers[1], Daemon::Keepalived, &conf(kp, vip, "abc", &peer("10.0.0.2", "10.0.0.1")));
        if hav_master {
            settles(&h, &k, vip);
        } else {
            settles(&k, &h, vip);
            assert!(counter(&h, "adverts_rx") >= 2, "{:?}", status(&h));
        }
        assert_eq!(dropped(&h, "ah_icv"), 0, "{:?}", status(&h));
        assert!(!k.log().contains("IPSEC-AH"), "keepalived:\n{}", k.log());
    }
}

#[test]
fn a_wrong_auth_pass_is_refused_both_ways() {
    if skip_unless("a_wrong_auth_pass_is_refused_both_ways", &[Need::Root, Need::Keepalived]) {
        return;
    }
    let lab = Lab::new(2).expect("lab");
    let vip = "10.0.0.233";
    let h = Node::start(&lab.routers[0], hav(), &conf(100, vip, "secret12", ""));
    // keepalived 2.2.7 as master restarts its advert timer on every datagram it reads, refused
    // ones too (unless lower_prio_no_advert): hav's adverts, refused each second, would keep it
    // from advertising at all after the first, and hav would have nothing to refuse.
    let k = Node::start(&lab.routers[1], Daemon::Keepalived, &conf(150, vip, "other", "  lower_prio_no_advert"));
    // Neither takes the other's adverts: both are master.
    assert!(wait_until(SETTLE, || h.holds(vip) && k.holds(vip)).is_some(), "not both master: hav {} keepalived {}", h.holds(vip), k.holds(vip));
    let before = dropped(&h, "ah_icv");
    assert!(wait_until(Duration::from_secs(4), || dropped(&h, "ah_icv") >= before + 2).is_some(), "hav's ah_icv drops do not rise: {:?}", status(&h));
    assert_eq!(counter(&h, "adverts_rx"), 0, "hav took an advert: {:?}", status(&h));
    assert_eq!(state(&h), "MASTER");
    let log = k.log();
    assert!(log.contains("IPSEC-AH : invalid IPSEC HMAC-MD5 value"), "keepalived did not refuse hav's ICV:\n{log}");
}

#[test]
fn hav_and_hav_fail_over_with_ah() {
    if skip_unless("hav_and_hav_fail_over_with_ah", &[Need::Root]) {
        return;
    }
    let lab = Lab::new(2).expect("lab");
    let vip = "10.0.0.234";
    let mut m = Node::start(&lab.routers[0], hav(), &conf(150, vip, "secret12", ""));
    let b = Node::start(&lab.routers[1], hav(), &conf(100, vip, "secret12", ""));
    settles(&m, &b, vip);
    assert_eq!(state(&b), "BACKUP");
    assert!(counter(&b, "adverts_rx") >= 2, "{:?}", status(&b));
    m.kill();
    assert!(wait_until(SETTLE, || b.holds(vip)).is_some(), "the backup did not take over");
    // The old master comes back with its count at 0: it learns the new master's count as backup
    // and preempts with a higher one, which the other takes (no replay drop).
    m.revive(&[&format!("{vip}/24")]);
    settles(&m, &b, vip);
    assert_eq!(dropped(&b, "ah_replay"), 0, "{:?}", status(&b));
    assert_eq!(dropped(&b, "ah_icv"), 0, "{:?}", status(&b));
}
