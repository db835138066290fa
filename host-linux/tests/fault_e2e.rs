//! hav-linux in the field: signals it does not use, a reload into FAULT, a restart after a
//! crash with a stale VIP, a second daemon on the same files, a VIP that cannot be added, the
//! primary address taken away, gratuitous ARPs after a release, and hostile adverts. Every
//! test asserts on what a client sees (`ip addr` in the namespaces, frames on the wire), not
//! on log lines alone: no VIP lost, no second master.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use hav_linux::daemon::control::{self, Request};
use hav_tests::capture::{AddrMonitor, Capture};
use hav_tests::inject::{build, Advert, Craft, Injector};
use hav_tests::netns::{skip_unless, Lab, Need};
use hav_tests::peers::{instance_conf, wait_until, workdir, Daemon, Node};
use nix::sys::signal::Signal;
use serde_json::Value;

fn hav() -> Daemon {
    Daemon::Hav(PathBuf::from(env!("CARGO_BIN_EXE_hav-linux")))
}

/// Election settles within 3 x advert + skew; allow for a loaded CI machine.
const SETTLE: Duration = Duration::from_secs(8);

/// A backup takes over a silent master after Master_Down_Interval: 3 x 1 s + skew (< 1 s) for
/// the 1 s adverts used here, plus 1 s for a loaded machine.
const TAKEOVER: Duration = Duration::from_secs(5);

/// `status` over the control socket.
fn status(n: &Node<'_>) -> Option<Value> {
    control::request(&n.control_path(), &Request { cmd: "status".into(), instance: None }).ok()
}

/// The state of the node's first instance, as `status` says.
fn state(n: &Node<'_>) -> Option<String> {
    status(n)?["instances"][0]["state"].as_str().map(str::to_owned)
}

/// An operator command (`standby`, `takeover`, `resume`) for `instance`.
fn command(n: &Node<'_>, cmd: &str, instance: &str) -> Value {
    control::request(&n.control_path(), &Request { cmd: cmd.into(), instance: Some(instance.into()) }).expect("control")
}

/// Every packet the daemon counts as dropped, wherever it counts them: the sum of the numbers
/// under any key that names drops (`dropped` of each instance, and a daemon-level object for
/// packets that reach no instance, whatever its exact name).
fn drop_total(v: &Value) -> u64 {
    fn sum(v: &Value) -> u64 {
        match v {
            Value::Number(n) => n.as_u64().unwrap_or(0),
            Value::Object(m) => m.values().map(sum).sum(),
            Value::Array(a) => a.iter().map(sum).sum(),
            _ => 0,
        }
    }
    match v {
        Value::Object(m) => m.iter().map(|(k, v)| if k.to_ascii_lowercase().contains("drop") { sum(v) } else { drop_total(v) }).sum(),
        Value::Array(a) => a.iter().map(drop_total).sum(),
        _ => 0,
    }
}

/// Polls `f` every 20 ms for `d`; the first failure's message, if any.
fn always(d: Duration, mut f: impl FnMut() -> Result<(), String>) -> Result<(), String> {
    let t0 = Instant::now();
    while t0.elapsed() < d {
        f().map_err(|e| format!("after {:?}: {e}", t0.elapsed()))?;
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

fn lines_with(text: &str, pat: &str) -> usize {
    text.lines().filter(|l| l.contains(pat)).count()
}

// ------------------------------------------------------------------------------------ signals

#[test]
fn info_signals_leave_the_master_alone() {
    // keepalived uses SIGUSR1 (dump data), SIGUSR2 (dump stats) and SIGRTMIN+2 (dump JSON);
    // operators and their tooling send them. hav must neither die nor let go of its VIP.
    if skip_unless("info_signals_leave_the_master_alone", &[Need::Root, Need::Keepalived]) {
        return;
    }
    let lab = Lab::new(2).expect("lab");
    let vip = "10.0.0.200";
    let conf = |p| instance_conf("VI_1", 51, p, 2, "1", &["10.0.0.200/24"], "");
    let h = Node::start(&lab.routers[0], hav(), &conf(150));
    let k = Node::start(&lab.routers[1], Daemon::Keepalived, &conf(100));
    assert!(wait_until(SETTLE, || h.holds(vip) && !k.holds(vip)).is_some(), "hav never the only master:\n{}", h.log());
    let pid = h.pid.expect("pid");
    let sigs = [libc::SIGUSR1, libc::SIGUSR2, libc::SIGRTMIN() + 2];
    for _ in 0..5 {
        for s in sigs {
            for _ in 0..3 {
                if h.alive() {
                    h.signal_raw(s);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
    // Past Master_Down_Interval (3.6 s): a master that stopped advertising would have lost
    // the VIP to keepalived by then.
    let r = always(Duration::from_secs(5), || {
        if !h.alive() || h.pid != Some(pid) {
            return Err("hav died".into());
        }
        if !h.holds(vip) {
            return Err("hav lost its VIP".into());
        }
        if k.holds(vip) {
            return Err("keepalived took the VIP".into());
        }
        Ok(())
    });
    assert!(r.is_ok(), "{} after SIGUSR1/SIGUSR2/SIGRTMIN+2:\n{}", r.unwrap_err(), h.log());
    assert_eq!(state(&h).as_deref(), Some("MASTER"));
}

// -------------------------------------------------------------------------- reload into FAULT

fn reload_into_fault(peer: Daemon, vip: &str, vrid: u8) {
    let lab = Lab::new(2).expect("lab");
    // eth1: admin up, but its veth peer is down, so it has no carrier.
    let r0 = &lab.routers[0];
    r0.ip(&["link", "add", "eth1", "type", "veth", "peer", "name", "eth1p"]).expect("veth");
    r0.link_up("eth1").expect("eth1 up");
    let cidr = format!("{vip}/24");
    let conf = |p, extra: &str| instance_conf("VI_1", vrid, p, 2, "1", &[&cidr], extra);
    let h = Node::start(r0, hav(), &conf(150, ""));
    let k = Node::start(&lab.routers[1], peer, &conf(100, ""));
    assert!(wait_until(SETTLE, || h.holds(vip) && !k.holds(vip)).is_some(), "hav never the only master:\n{}", h.log());

    h.write_config(&conf(150, "  track_interface {\n    eth1\n  }"));
    h.signal(Signal::SIGHUP);
    let t = wait_until(Duration::from_secs(1), || state(&h).as_deref() == Some("FAULT") && !h.holds(vip));
    assert!(
        t.is_some(),
        "1 s after a reload that tracks a down interface: state {:?}, VIP held {}:\n{}",
        state(&h),
        h.holds(vip),
        h.log()
    );
    assert!(wait_until(TAKEOVER, || k.holds(vip)).is_some(), "{:?} did not take over from the faulted hav", k.daemon);
    let r = always(Duration::from_secs(2), || if h.holds(vip) { Err("hav holds the VIP again".into()) } else { Ok(()) });
    assert!(r.is_ok(), "{}:\n{}", r.unwrap_err(), h.log());
}

#[test]
fn reload_into_fault_hands_over_to_keepalived() {
    if skip_unless("reload_into_fault_hands_over_to_keepalived", &[Need::Root, Need::Keepalived]) {
        return;
    }
    reload_into_fault(Daemon::Keepalived, "10.0.0.201", 52);
}

#[test]
fn reload_into_fault_hands_over_to_hav() {
    if skip_unless("reload_into_fault_hands_over_to_hav", &[Need::Root]) {
        return;
    }
    reload_into_fault(hav(), "10.0.0.202", 53);
}

// ------------------------------------------------------------------ restart after a crash

fn restart_after_crash(peer: Daemon, vip: &str, vrid: u8) {
    let lab = Lab::new(2).expect("lab");
    let cidr = format!("{vip}/24");
    let conf = |p| instance_conf("VI_1", vrid, p, 2, "1", &[&cidr], "");
    let mut h = Node::start(&lab.routers[0], hav(), &conf(150));
    let p = Node::start(&lab.routers[1], peer, &conf(100));
    assert!(wait_until(SETTLE, || h.holds(vip) && !p.holds(vip)).is_some(), "hav never the only master:\n{}", h.log());
    // Dead node: SIGKILL, link down. Its VIP stays on its interface.
    h.crash();
    assert!(h.holds(vip), "a SIGKILLed hav cannot have removed its VIP");
    assert!(wait_until(TAKEOVER + Duration::from_secs(1), || p.holds(vip)).is_some(), "{:?} did not take over", p.daemon);

    // It boots again, now with a lower priority than the running master, the stale VIP still
    // on its interface.
    h.write_config(&conf(50));
    let t0 = Instant::now();
    h.restart_after_crash();
    let gone = wait_until(Duration::from_millis(1200), || !h.holds(vip));
    assert!(gone.is_some(), "the stale VIP is still on the restarted hav {:?} after its start:\n{}", t0.elapsed(), h.log());
    eprintln!("stale VIP removed {:?} after the start", t0.elapsed());
    let r = always(Duration::from_secs(5), || match (h.holds(vip), p.holds(vip)) {
        (true, true) => Err("both hold the VIP".into()),
        (_, false) => Err(format!("{:?} lost the VIP", p.daemon)),
        _ => Ok(()),
    });
    assert!(r.is_ok(), "{}:\n{}", r.unwrap_err(), h.log());
    assert_eq!(state(&h).as_deref(), Some("BACKUP"), "{:?}", status(&h));
}

#[test]
fn restart_after_crash_removes_the_stale_vip_keepalived_peer() {
    if skip_unless("restart_after_crash_removes_the_stale_vip_keepalived_peer", &[Need::Root, Need::Keepalived]) {
        return;
    }
    restart_after_crash(Daemon::Keepalived, "10.0.0.203", 54);
}

#[test]
fn restart_after_crash_removes_the_stale_vip_hav_peer() {
    if skip_unless("restart_after_crash_removes_the_stale_vip_hav_peer", &[Need::Root]) {
        return;
    }
    restart_after_crash(hav(), "10.0.0.204", 55);
}

// ---------------------------------------------------------------- one daemon per config

#[test]
fn a_second_daemon_on_the_same_pid_file_or_socket_exits() {
    if skip_unless("a_second_daemon_on_the_same_pid_file_or_socket_exits", &[Need::Root]) {
        return;
    }
    let lab = Lab::new(1).expect("lab");
    let vip = "10.0.0.205";
    let h = Node::start(&lab.routers[0], hav(), &instance_conf("VI_1", 56, 200, 3, "0.1", &["10.0.0.205/24"], ""));
    assert!(wait_until(SETTLE, || h.holds(vip)).is_some(), "hav never master:\n{}", h.log());
    let first = h.pid.expect("pid");
    let pid_file = h.dir.join("hav.pid");
    let sock = h.control_path();
    let bin = env!("CARGO_BIN_EXE_hav-linux");
    let conf = h.config_path();
    let second = |pid: &PathBuf, sock: &PathBuf| {
        let t0 = Instant::now();
        let out = lab.routers[0]
            .run(
                "timeout",
                &["5", bin, "-n", "-f", conf.to_str().expect("utf-8"), "-p", pid.to_str().expect("utf-8"), "--control", sock.to_str().expect("utf-8")],
            )
            .expect("run a second hav-linux");
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        (out.status.code(), t0.elapsed(), text)
    };
    let first_unaffected = |what: &str| {
        assert!(h.alive() && h.pid == Some(first), "{what}: the first daemon died:\n{}", h.log());
        let in_file = std::fs::read_to_string(&pid_file).unwrap_or_default();
        assert_eq!(in_file.trim(), first.to_string(), "{what}: the pid file no longer names the first daemon");
        assert_eq!(state(&h).as_deref(), Some("MASTER"), "{what}: the first daemon's socket does not answer");
        assert!(h.holds(vip), "{what}: the VIP went");
    };

    // The same pid file, another control socket.
    let (code, took, text) = second(&pid_file, &h.dir.join("other.sock"));
    assert!(
        code.is_some_and(|c| c != 0 && c != 124) && took < Duration::from_secs(3),
        "a second daemon on the same pid file did not exit at once with an error (exit {code:?} after {took:?}; 124 = killed by timeout):\n{text}"
    );
    assert!(text.contains(pid_file.to_str().expect("utf-8")), "the error does not name the pid file:\n{text}");
    first_unaffected("same pid file");

    // The same control socket, another pid file.
    let (code, took, text) = second(&h.dir.join("other.pid"), &sock);
    assert!(
        code.is_some_and(|c| c != 0 && c != 124) && took < Duration::from_secs(3),
        "a second daemon on the same control socket did not exit at once with an error (exit {code:?} after {took:?}):\n{text}"
    );
    assert!(text.contains(sock.to_str().expect("utf-8")), "the error does not name the control socket:\n{text}");
    first_unaffected("same control socket");
}

// ------------------------------------------------------------------ a VIP that cannot be added

#[test]
fn a_vip_that_cannot_be_added_faults_instead_of_advertising() {
    // One of hav's VIPs names an interface the namespace does not have. hav must not claim
    // mastership it cannot deliver: its instance is FAULT, it stops advertising, and the
    // lower-priority keepalived becomes master with both addresses.
    if skip_unless("a_vip_that_cannot_be_added_faults_instead_of_advertising", &[Need::Root, Need::Keepalived, Need::Tcpdump]) {
        return;
    }
    let lab = Lab::new(2).expect("lab");
    let dir = workdir("vipfail");
    let cap = Capture::start(&lab.client, "eth0", &["ip", "proto", "112"], &dir, "vrrp").expect("tcpdump");
    let (a, b) = ("10.0.0.206", "10.0.0.207");
    let h = Node::start(&lab.routers[0], hav(), &instance_conf("VI_1", 57, 200, 2, "1", &["10.0.0.206/24", "10.0.0.207/24 dev eth9"], ""));
    let k = Node::start(&lab.routers[1], Daemon::Keepalived, &instance_conf("VI_1", 57, 100, 2, "1", &["10.0.0.206/24", "10.0.0.207/24"], ""));
    let faulted = wait_until(Duration::from_secs(10), || state(&h).as_deref() == Some("FAULT"));
    let keepalived_master = wait_until(SETTLE, || k.holds(a) && k.holds(b) && !h.holds(a));
    let stable = always(Duration::from_secs(3), || {
        if h.holds(a) || h.holds(b) {
            Err("hav holds a VIP".into())
        } else if !(k.holds(a) && k.holds(b)) {
            Err("keepalived lost a VIP".into())
        } else {
            Ok(())
        }
    });
    let frames = cap.stop().expect("capture");
    let hav_adverts: Vec<u64> = frames
        .iter()
        .filter_map(|f| f.vrrp_v4().filter(|v| v.src == Ipv4Addr::new(10, 0, 0, 1) && v.vrid == 57 && v.priority > 0).map(|_| f.ts_us))
        .collect();
    assert!(h.alive(), "hav exited on a VIP it cannot add:\n{}", h.log());
    assert!(faulted.is_some(), "the instance is not FAULT ({:?}):\n{}", state(&h), h.log());
    // Master_Down at start (3.2 s) may end in one advert before the address fails; one advert
    // interval later it must have stopped.
    if let Some(&first) = hav_adverts.first() {
        let late: Vec<f64> = hav_adverts.iter().filter(|&&t| t > first + 1_500_000).map(|&t| (t - first) as f64 / 1e6).collect();
        assert!(late.is_empty(), "hav kept advertising as master ({} adverts, the last {:?} s after its first)", hav_adverts.len(), late.last());
    }
    assert!(keepalived_master.is_some(), "keepalived did not become master of both VIPs:\n{}", h.log());
    assert!(stable.is_ok(), "{}", stable.unwrap_err());
    let _ = std::fs::remove_dir_all(&dir);
}

// ---------------------------------------------------------------- the primary address goes

#[test]
fn losing_the_primary_address_faults_and_hands_over() {
    if skip_unless("losing_the_primary_address_faults_and_hands_over", &[Need::Root, Need::Keepalived]) {
        return;
    }
    let lab = Lab::new(2).expect("lab");
    // A /32 VIP: deleting 10.0.0.1/24 must not take the VIP with it as a secondary of the /24.
    let vip = "10.0.0.208";
    let conf = |p| instance_conf("VI_1", 58, p, 2, "1", &["10.0.0.208/32"], "");
    let h = Node::start(&lab.routers[0], hav(), &conf(150));
    let k = Node::start(&lab.routers[1], Daemon::Keepalived, &conf(100));
    assert!(wait_until(SETTLE, || h.holds(vip) && !k.holds(vip)).is_some(), "hav never the only master:\n{}", h.log());
    lab.routers[0].ip(&["addr", "del", "10.0.0.1/24", "dev", "eth0"]).expect("addr del");
    let faulted = wait_until(Duration::from_secs(2), || state(&h).as_deref() == Some("FAULT"));
    assert!(faulted.is_some(), "no FAULT 2 s after the advert source address went ({:?}):\n{}", state(&h), h.log());
    assert!(wait_until(TAKEOVER, || k.holds(vip) && !h.holds(vip)).is_some(), "keepalived did not take over:\n{}", h.log());
    // The address comes back: hav (150) takes its VIP back.
    lab.routers[0].add_addr("eth0", "10.0.0.1/24").expect("addr add");
    assert!(wait_until(SETTLE, || h.holds(vip) && !k.holds(vip)).is_some(), "hav did not recover:\n{}", h.log());
}

// ------------------------------------------------------------- no GARP after the release

#[test]
fn no_gratuitous_arp_after_the_vip_is_released() {
    // Spaced GARPs (5 x 0.2 s) still going when the instance leaves MASTER would point the
    // segment back at a node that no longer has the VIP.
    if skip_unless("no_gratuitous_arp_after_the_vip_is_released", &[Need::Root, Need::Tcpdump]) {
        return;
    }
    let lab = Lab::new(1).expect("lab");
    let dir = workdir("garp");
    let vip: Ipv4Addr = "10.0.0.209".parse().expect("ip");
    let conf = instance_conf("VI_G", 59, 200, 2, "1", &["10.0.0.209/24"], "  garp_master_repeat 5")
        .replace("global_defs {\n", "global_defs {\n  vrrp_garp_interval 0.2\n  vrrp_garp_master_repeat 5\n");
    let mac = lab.routers[0].mac("eth0").expect("mac");
    let cap = Capture::start(&lab.client, "eth0", &["arp"], &dir, "arp").expect("tcpdump");
    let mon = AddrMonitor::start(&lab.routers[0], &dir, "r0").expect("ip monitor");
    let h = Node::start(&lab.routers[0], hav(), &conf);
    let t = Instant::now();
    while !h.holds("10.0.0.209") {
        assert!(t.elapsed() < SETTLE, "hav never master:\n{}", h.log());
        std::thread::sleep(Duration::from_millis(2));
    }
    let r = command(&h, "standby", "VI_G");
    assert_eq!(r["ok"], true, "{r}");
    assert!(wait_until(Duration::from_secs(2), || !h.holds("10.0.0.209")).is_some(), "standby kept the VIP");
    std::thread::sleep(Duration::from_secs(2));
    let frames = cap.stop().expect("capture");
    let events = mon.stop();
    let removed = events
        .iter()
        .find(|e| e.deleted && e.addr == std::net::IpAddr::V4(vip))
        .map(|e| e.ts_us)
        .expect("ip monitor saw the VIP removed");
    let garps: Vec<u64> = frames.iter().filter(|f| f.gratuitous_arp() == Some((mac, vip))).map(|f| f.ts_us).collect();
    let rel = |t: u64| (t as f64 - removed as f64) / 1e3;
    let before = garps.iter().filter(|&&t| t <= removed).count();
    let after: Vec<f64> = garps.iter().filter(|&&t| t > removed + 20_000).map(|&t| rel(t)).collect();
    eprintln!("GARPs at {:?} ms relative to the VIP's removal", garps.iter().map(|&t| rel(t)).collect::<Vec<_>>());
    assert!(
        before >= 1,
        "no GARP before the release: none sent on becoming master, or the capture missed them ({} ARP frames)",
        frames.len()
    );
    assert!(after.is_empty(), "gratuitous ARPs for the released VIP {after:?} ms after it was removed:\n{}", h.log());
    let _ = std::fs::remove_dir_all(&dir);
}

// ---------------------------------------------------------------------- hostile adverts

#[test]
fn hostile_adverts_are_counted_and_do_not_flap_notifications() {
    if skip_unless("hostile_adverts_are_counted_and_do_not_flap_notifications", &[Need::Root]) {
        return;
    }
    let lab = Lab::new(2).expect("lab");
    let dir = workdir("hostile");
    let out = dir.join("notify.out");
    let script = dir.join("notify.sh");
    std::fs::write(&script, format!("#!/bin/sh\necho \"$@\" >> {}\n", out.display())).expect("script");
    std::process::Command::new("chmod").arg("755").arg(&script).status().expect("chmod");
    let vip: Ipv4Addr = "10.0.0.210".parse().expect("ip");
    // Priority 250: with a learned interval of 1 cs, its skew time after a priority-0 advert
    // is 6/256 cs (0.23 ms), so each 255/0 pair of the flood is two transitions.
    let conf = instance_conf("VI_H", 80, 250, 3, "1", &["10.0.0.210/24"], &format!("  notify {}", script.display()));
    let h = Node::start(&lab.routers[0], hav(), &conf);
    assert!(wait_until(SETTLE, || h.holds("10.0.0.210")).is_some(), "hav never master:\n{}", h.log());
    std::thread::sleep(Duration::from_millis(500));
    let st0 = status(&h).expect("status");
    let adv = |priority: u8| Advert { version: 3, vrid: 80, priority, interval_cs: 1, vips: vec![vip] };
    let attacker = Ipv4Addr::new(10, 0, 0, 2);

    // Malformed, each kind 50 times at 200/s, every one claiming priority 255.
    const EACH: usize = 50;
    lab.routers[1].enter(|| {
        let inj = Injector::new(attacker, 255).expect("raw socket");
        for craft in [Craft::BadChecksum, Craft::Truncated, Craft::BadVersion] {
            let m = build(&adv(255), craft, attacker);
            inj.paced(EACH, 200.0, |_| m.clone()).expect("send");
        }
        inj.set_ttl(1).expect("ttl");
        let m = build(&adv(255), Craft::Valid, attacker);
        inj.paced(EACH, 200.0, |_| m.clone()).expect("send");
    });
    std::thread::sleep(Duration::from_millis(500));
    assert!(h.alive(), "hav died on malformed adverts:\n{}", h.log());
    // The CLI's own status --json, as an operator reads it.
    let cli = std::process::Command::new(env!("CARGO_BIN_EXE_hav-linux"))
        .args(["status", "--json", "--control"])
        .arg(h.control_path())
        .output()
        .expect("hav-linux status --json");
    let st1: Value = serde_json::from_slice(&cli.stdout).unwrap_or_else(|e| panic!("status --json: {e}: {}", String::from_utf8_lossy(&cli.stdout)));
    let counted = drop_total(&st1).saturating_sub(drop_total(&st0));
    eprintln!("drops after the malformed adverts: {}", serde_json::to_string(&st1).unwrap_or_default());
    // Every finding is collected, so one run reports all of them.
    let mut broken: Vec<String> = Vec::new();
    let inst = &st1["instances"][0];
    if inst["state"] != "MASTER" {
        broken.push(format!("a malformed or TTL-1 advert moved the instance: {st1}"));
    }
    if inst["transitions"] != st0["instances"][0]["transitions"] {
        broken.push("a malformed or TTL-1 advert caused a transition".into());
    }
    if inst["dropped"]["ttl"].as_u64().unwrap_or(0) < EACH as u64 {
        broken.push(format!("TTL-1 adverts not counted as ttl drops: {st1}"));
    }
    if counted < 4 * EACH as u64 {
        broken.push(format!(
            "{counted} drops counted for {} malformed or TTL-1 adverts (bad checksum, truncated, bad version, TTL 1; {EACH} each): {st1}",
            4 * EACH
        ));
    }

    // The flood: 2,000 adverts alternating priority 255 and 0 at 1 kHz.
    let notified = || std::fs::read_to_string(&out).map(|s| s.lines().count()).unwrap_or(0);
    let (n0, logged0) = (notified(), lines_with(&h.log(), "state change"));
    let m255 = build(&adv(255), Craft::Valid, attacker);
    let m0 = build(&adv(0), Craft::Valid, attacker);
    lab.routers[1].enter(|| {
        let inj = Injector::new(attacker, 255).expect("raw socket");
        inj.paced(2000, 1000.0, |n| if n % 2 == 0 { m255.clone() } else { m0.clone() }).expect("send");
    });
    // The last advert was priority 0: hav takes over after its skew time; notify scripts end.
    std::thread::sleep(Duration::from_secs(3));
    assert!(h.alive(), "hav died in the flood:\n{}", h.log());
    let st2 = status(&h).expect("status");
    let flips = st2["instances"][0]["transitions"].as_u64().unwrap_or(0).saturating_sub(st1["instances"][0]["transitions"].as_u64().unwrap_or(0));
    let (runs, logged) = (notified().saturating_sub(n0), lines_with(&h.log(), "state change").saturating_sub(logged0));
    eprintln!("flood: {flips} transitions, {runs} notify runs, {logged} 'state change' log lines");
    if wait_until(SETTLE, || h.holds("10.0.0.210")).is_none() {
        broken.push(format!("hav did not end the flood as master: {st2}"));
    }
    if runs >= 20 {
        broken.push(format!("{runs} notify runs for a 2,000-advert flood ({flips} transitions): notifications are not coalesced"));
    }
    if logged > 40 {
        broken.push(format!("{logged} 'state change' log lines for the flood ({flips} transitions): transition logs are not rate-limited"));
    }
    assert!(broken.is_empty(), "{}", broken.join("\n"));
    let _ = std::fs::remove_dir_all(&dir);
}

// ------------------------------------------------------------- dont_track_primary

/// `dont_track_primary` (keepalived's cross-connect setups): an instance whose own interface has
/// no carrier runs anyway and takes its VIP; without the keyword it stays in FAULT and holds
/// nothing. Debian's keepalived and hav alike, each on a router of its own.
#[test]
fn dont_track_primary_runs_on_a_link_without_carrier() {
    if skip_unless("dont_track_primary_runs_on_a_link_without_carrier", &[Need::Root, Need::Keepalived]) {
        return;
    }
    let vip = "10.9.0.61";
    let conf = |extra: &str| {
        format!(
            "global_defs {{\n  router_id DTP\n  vrrp_garp_master_delay 0\n}}\n\
             vrrp_instance DTP {{\n  state BACKUP\n  interface eth1\n  virtual_router_id 61\n  priority 150\n  advert_int 1\n{extra}\n  \
             virtual_ipaddress {{\n    {vip}/24\n  }}\n}}\n"
        )
    };
    for daemon in [hav(), Daemon::Keepalived] {
        for dont in [true, false] {
            let lab = Lab::new(1).expect("lab");
            let r0 = &lab.routers[0];
            // eth1: admin up with an address, but its veth peer is down: no carrier.
            r0.ip(&["link", "add", "eth1", "type", "veth", "peer", "name", "eth1p"]).expect("veth");
            r0.link_up("eth1").expect("eth1 up");
            r0.add_addr("eth1", "10.9.0.1/24").expect("eth1 addr");
            let n = Node::start(r0, daemon.clone(), &conf(if dont { "  dont_track_primary" } else { "" }));
            if dont {
                let t = wait_until(SETTLE, || n.holds(vip));
                assert!(t.is_some(), "{daemon:?} with dont_track_primary: no VIP on the link without carrier:\n{}", n.log());
            } else {
                let r = always(TAKEOVER, || if n.holds(vip) { Err(format!("{daemon:?} holds the VIP on a link without carrier")) } else { Ok(()) });
                assert!(r.is_ok(), "{}:\n{}", r.unwrap_err(), n.log());
                if matches!(daemon, Daemon::Hav(_)) {
                    assert_eq!(state(&n).as_deref(), Some("FAULT"), "{}", n.log());
                }
            }
        }
    }
}
