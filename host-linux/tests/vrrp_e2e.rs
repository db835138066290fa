//! End-to-end VRRP in a namespace lab: hav-linux against hav-linux and against keepalived
//! (Debian's, the reference implementation), both ways, v2 and v3, IPv4 and IPv6, multicast and
//! unicast; failover, preemption, SIGTERM, SIGHUP reload, operator commands, notify scripts,
//! the notify FIFO and smtp_alert.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::time::Duration;

use hav_tests::netns::{skip_unless, skip_unless_root, Lab, Need};
use hav_tests::peers::{instance_conf, wait_until, Daemon, Node};
use nix::sys::signal::Signal;

fn hav() -> Daemon {
    Daemon::Hav(PathBuf::from(env!("CARGO_BIN_EXE_hav-linux")))
}

/// Election settles within 3 x advert + skew; allow for a loaded CI machine.
const SETTLE: Duration = Duration::from_secs(8);

/// The client can ping `vip` and its ARP/ND entry for it is `mac`.
fn client_reaches(lab: &Lab, vip: &str, mac: [u8; 6]) -> bool {
    let ping = if vip.contains(':') { vec!["-6", "-c1", "-W1", vip] } else { vec!["-c1", "-W1", vip] };
    let ok = lab.client.run("ping", &ping).map(|o| o.status.success()).unwrap_or(false);
    let neigh = lab.client.ip(&["neigh", "show", vip]).unwrap_or_default();
    let want = mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":");
    ok && neigh.contains(&want)
}

/// Master `a`, backup `b`: settle, kill the master, the backup takes over and the client follows;
/// the master comes back and preempts.
fn failover_both_ways(a: Daemon, b: Daemon, version: u8, advert: &str, vip: &str, extra: &str) {
    let lab = Lab::new(2).expect("lab");
    let vip_cidr = if vip.contains(':') { format!("{vip}/64") } else { format!("{vip}/24") };
    let conf = |prio| instance_conf("VI_1", 51, prio, version, advert, &[&vip_cidr], extra);
    let mut m = Node::start(&lab.routers[0], a, &conf(150));
    let b = Node::start(&lab.routers[1], b, &conf(100));
    assert!(wait_until(SETTLE, || m.holds(vip) && !b.holds(vip)).is_some(), "{:?} never became the only master", m.daemon);
    // Stable: no flapping over a few adverts.
    std::thread::sleep(Duration::from_secs(2));
    assert!(m.holds(vip) && !b.holds(vip), "the election flapped");
    let mac_m = lab.routers[0].mac("eth0").expect("mac");
    assert!(client_reaches(&lab, vip, mac_m), "client cannot reach the VIP on the master");

    m.kill();
    let took = wait_until(SETTLE, || b.holds(vip));
    assert!(took.is_some(), "{:?} did not take over", b.daemon);
    let mac_b = lab.routers[1].mac("eth0").expect("mac");
    let _ = lab.client.ip(&["neigh", "flush", "dev", "eth0"]);
    assert!(wait_until(Duration::from_secs(3), || client_reaches(&lab, vip, mac_b)).is_some(), "client does not follow the VIP");

    m.revive(&[&vip_cidr]);
    assert!(wait_until(SETTLE, || m.holds(vip) && !b.holds(vip)).is_some(), "{:?} did not preempt back", m.daemon);
}

#[test]
fn hav_master_keepalived_backup_v2_pass() {
    if skip_unless("hav_master_keepalived_backup_v2_pass", &[Need::Root, Need::Keepalived]) {
        return;
    }
    let auth = "  authentication {\n    auth_type PASS\n    auth_pass s3cr3t\n  }";
    failover_both_ways(hav(), Daemon::Keepalived, 2, "1", "10.0.0.200", auth);
}

#[test]
fn keepalived_master_hav_backup_v2_pass() {
    if skip_unless("keepalived_master_hav_backup_v2_pass", &[Need::Root, Need::Keepalived]) {
        return;
    }
    let auth = "  authentication {\n    auth_type PASS\n    auth_pass s3cr3t\n  }";
    failover_both_ways(Daemon::Keepalived, hav(), 2, "1", "10.0.0.200", auth);
}

#[test]
fn hav_master_keepalived_backup_v3_subsecond() {
    if skip_unless("hav_master_keepalived_backup_v3_subsecond", &[Need::Root, Need::Keepalived]) {
        return;
    }
    failover_both_ways(hav(), Daemon::Keepalived, 3, "0.5", "10.0.0.201", "");
}

#[test]
fn keepalived_master_hav_backup_v3_ipv6() {
    if skip_unless("keepalived_master_hav_backup_v3_ipv6", &[Need::Root, Need::Keepalived]) {
        return;
    }
    failover_both_ways(Daemon::Keepalived, hav(), 3, "1", "fd00::200", "");
}

#[test]
fn hav_master_keepalived_backup_v3_ipv6() {
    if skip_unless("hav_master_keepalived_backup_v3_ipv6", &[Need::Root, Need::Keepalived]) {
        return;
    }
    failover_both_ways(hav(), Daemon::Keepalived, 3, "1", "fd00::201", "");
}

fn unicast(a: Daemon, b: Daemon, vip: &str) {
    // Each side lists the other as its peer; adverts are unicast.
    let lab = Lab::new(2).expect("lab");
    let cidr = format!("{vip}/24");
    let conf = |prio, me: &str, peer: &str| {
        instance_conf("VI_U", 61, prio, 2, "1", &[&cidr], &format!("  unicast_src_ip {me}\n  unicast_peer {{\n    {peer}\n  }}"))
    };
    let mut h = Node::start(&lab.routers[0], a, &conf(150, "10.0.0.1", "10.0.0.2"));
    let k = Node::start(&lab.routers[1], b, &conf(100, "10.0.0.2", "10.0.0.1"));
    assert!(wait_until(SETTLE, || h.holds(vip) && !k.holds(vip)).is_some(), "{:?} not master over unicast", h.daemon);
    h.kill();
    assert!(wait_until(SETTLE, || k.holds(vip)).is_some(), "{:?} did not take over", k.daemon);
    h.revive(&[&cidr]);
    assert!(wait_until(SETTLE, || h.holds(vip) && !k.holds(vip)).is_some(), "{:?} did not preempt over unicast", h.daemon);
}

#[test]
fn hav_keepalived_unicast_both_ways() {
    if skip_unless("hav_keepalived_unicast_both_ways", &[Need::Root, Need::Keepalived]) {
        return;
    }
    unicast(hav(), Daemon::Keepalived, "10.0.0.210");
    unicast(Daemon::Keepalived, hav(), "10.0.0.210");
}

#[test]
fn hav_hav_unicast() {
    if skip_unless_root("hav_hav_unicast") {
        return;
    }
    unicast(hav(), hav(), "10.0.0.217");
}

#[test]
fn hav_hav_ipv6() {
    if skip_unless_root("hav_hav_ipv6") {
        return;
    }
    failover_both_ways(hav(), hav(), 3, "1", "fd00::202", "");
}

#[test]
fn nopreempt_keeps_the_running_master() {
    if skip_unless_root("nopreempt_keeps_the_running_master") {
        return;
    }
    let lab = Lab::new(2).expect("lab");
    let vip = "10.0.0.218";
    let low = Node::start(&lab.routers[1], hav(), &instance_conf("VI_N", 67, 100, 3, "1", &["10.0.0.218/24"], ""));
    assert!(wait_until(SETTLE, || low.holds(vip)).is_some(), "the only router did not become master");
    // A higher-priority router with nopreempt joins: it must not take over.
    let mut high = Node::start(&lab.routers[0], hav(), &instance_conf("VI_N", 67, 150, 3, "1", &["10.0.0.218/24"], "  nopreempt"));
    std::thread::sleep(Duration::from_secs(6));
    assert!(low.holds(vip) && !high.holds(vip), "nopreempt took over a running master");
    // It does take over when the master dies.
    drop(low);
    assert!(wait_until(SETTLE, || high.holds(vip)).is_some(), "nopreempt backup did not take over a dead master");
    assert!(high.terminate());
}

#[test]
fn hav_hav_failover() {
    if skip_unless_root("hav_hav_failover") {
        return;
    }
    failover_both_ways(hav(), hav(), 3, "1", "10.0.0.202", "");
}

fn sigterm_handover(backup: Daemon, vip: &str) {
    let lab = Lab::new(2).expect("lab");
    let cidr = format!("{vip}/24");
    // A long advert interval: without the priority-0 advert the backup would wait 3 x 5 s.
    let conf = |prio| instance_conf("VI_T", 52, prio, 3, "5", &[&cidr], "");
    let mut h = Node::start(&lab.routers[0], hav(), &conf(150));
    let k = Node::start(&lab.routers[1], backup, &conf(100));
    assert!(wait_until(Duration::from_secs(25), || h.holds(vip)).is_some(), "hav never master");
    assert!(wait_until(Duration::from_secs(2), || !k.holds(vip)).is_some());
    assert!(h.terminate(), "hav did not exit on SIGTERM");
    assert!(!h.holds(vip), "hav left its VIP behind");
    // Skew time only: (256 - 100) / 256 x 5 s = 3.05 s, not 3 x 5 s + skew.
    let took = wait_until(Duration::from_secs(5), || k.holds(vip));
    assert!(took.is_some(), "{:?} did not take over on the priority-0 advert (would take 18 s otherwise)", k.daemon);
}

#[test]
fn sigterm_hands_over_at_once_and_removes_vips() {
    if skip_unless("sigterm_hands_over_at_once_and_removes_vips", &[Need::Root, Need::Keepalived]) {
        return;
    }
    sigterm_handover(Daemon::Keepalived, "10.0.0.203");
}

#[test]
fn hav_hav_sigterm_handover() {
    if skip_unless_root("hav_hav_sigterm_handover") {
        return;
    }
    sigterm_handover(hav(), "10.0.0.219");
}

#[test]
fn reload_keeps_state_and_vips_and_rejects_bad_config() {
    if skip_unless_root("reload_keeps_state_and_vips_and_rejects_bad_config") {
        return;
    }
    let lab = Lab::new(2).expect("lab");
    let two = |prio| {
        format!(
            "{}\nvrrp_instance VI_B {{\n  interface eth0\n  virtual_router_id 54\n  priority {prio}\n  advert_int 1\n  virtual_ipaddress {{\n    10.0.0.205/24\n  }}\n}}\n",
            instance_conf("VI_A", 53, prio, 3, "1", &["10.0.0.204/24"], "")
        )
    };
    let h = Node::start(&lab.routers[0], hav(), &two(150));
    let _peer = Node::start(&lab.routers[1], hav(), &two(100));
    assert!(wait_until(SETTLE, || h.holds("10.0.0.204") && h.holds("10.0.0.205")).is_some(), "not master");

    // Watch address deletions during the reloads.
    let mon_log = h.dir.join("monitor.log");
    let mon = lab.routers[0].spawn("ip", &["monitor", "address"], &mon_log).expect("ip monitor");
    std::thread::sleep(Duration::from_millis(300));

    // 1. Same config: nothing changes.
    h.signal(Signal::SIGHUP);
    // 2. VI_B changes its priority (still the highest); VI_A unchanged; a VIP is added to VI_A's
    //    neighbour list... the held VIPs must never be removed in between.
    let changed = two(150).replace("priority 150\n  advert_int 1\n  virtual_ipaddress {\n    10.0.0.205/24", "priority 140\n  advert_int 1\n  virtual_ipaddress {\n    10.0.0.205/24\n    10.0.0.206/24");
    assert_ne!(changed, two(150));
    std::thread::sleep(Duration::from_millis(500));
    h.write_config(&changed);
    h.signal(Signal::SIGHUP);
    assert!(wait_until(Duration::from_secs(3), || h.holds("10.0.0.206")).is_some(), "new VIP not added on reload");
    // 3. A broken config: the running one stays, and the log says why.
    std::thread::sleep(Duration::from_millis(500));
    h.write_config(&changed.replace("priority 140", "priorty 140"));
    h.signal(Signal::SIGHUP);
    assert!(
        wait_until(Duration::from_secs(3), || h.log().contains("unknown keyword 'priorty'")).is_some(),
        "the log does not say why the reload failed:\n{}",
        h.log()
    );
    std::thread::sleep(Duration::from_secs(2));
    assert!(h.holds("10.0.0.204") && h.holds("10.0.0.205") && h.holds("10.0.0.206"), "a failed reload changed the addresses");
    let _ = lab.routers[0].stop(mon);
    let mon_out = std::fs::read_to_string(&mon_log).unwrap_or_default();
    for vip in ["10.0.0.204", "10.0.0.205"] {
        assert!(
            !mon_out.lines().any(|l| l.starts_with("Deleted") && l.contains(vip)),
            "{vip} was removed during a reload:\n{mon_out}"
        );
    }
    let status = hav_linux::daemon::control::request(&h.control_path(), &hav_linux::daemon::control::Request { cmd: "status".into(), instance: None }).expect("status");
    let states: Vec<_> = status["instances"].as_array().expect("list").iter().map(|i| i["state"].as_str().unwrap_or("").to_owned()).collect();
    assert_eq!(states, ["MASTER", "MASTER"], "{status}");
    let log = h.log();
    assert_eq!(log.lines().filter(|l| l.contains("state change") && l.contains("to=\"MASTER\"")).count(), 2, "an instance re-entered MASTER on reload:\n{log}");
}

#[test]
fn operator_standby_takeover_resume() {
    if skip_unless_root("operator_standby_takeover_resume") {
        return;
    }
    let lab = Lab::new(2).expect("lab");
    let conf = |prio| instance_conf("VI_O", 55, prio, 3, "1", &["10.0.0.207/24"], "");
    let a = Node::start(&lab.routers[0], hav(), &conf(150));
    let b = Node::start(&lab.routers[1], hav(), &conf(100));
    assert!(wait_until(SETTLE, || a.holds("10.0.0.207") && !b.holds("10.0.0.207")).is_some());
    let cmd = |n: &Node<'_>, c: &str| {
        let r = hav_linux::daemon::control::request(
            &n.control_path(),
            &hav_linux::daemon::control::Request { cmd: c.into(), instance: Some("VI_O".into()) },
        )
        .expect("control");
        assert_eq!(r["ok"], true, "{r}");
    };
    cmd(&a, "standby");
    assert!(wait_until(SETTLE, || b.holds("10.0.0.207") && !a.holds("10.0.0.207")).is_some(), "standby did not hand over");
    cmd(&a, "resume");
    assert!(wait_until(SETTLE, || a.holds("10.0.0.207") && !b.holds("10.0.0.207")).is_some(), "resume did not preempt back");
    cmd(&b, "takeover");
    assert!(wait_until(SETTLE, || b.holds("10.0.0.207") && !a.holds("10.0.0.207")).is_some(), "takeover did not take over");
    // The CLI speaks the same protocol.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hav-linux"))
        .args(["status", "--json", "--control"])
        .arg(b.control_path())
        .output()
        .expect("hav-linux status");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("\"MASTER\""), "{text}");
}

#[test]
fn vrrp_script_weight_moves_mastership() {
    if skip_unless("vrrp_script_weight_moves_mastership", &[Need::Root, Need::Keepalived]) {
        return;
    }
    let lab = Lab::new(2).expect("lab");
    let flag = hav_tests::peers::workdir("flag").join("up");
    std::fs::write(&flag, "1").expect("flag");
    let script = format!(
        "vrrp_script chk {{\n  script \"/usr/bin/test -e {}\"\n  interval 1\n  fall 2\n  rise 2\n  weight -60\n}}\n",
        flag.display()
    );
    let hconf = format!("{script}{}", instance_conf("VI_S", 56, 150, 3, "1", &["10.0.0.208/24"], "  track_script {\n    chk\n  }"));
    let h = Node::start(&lab.routers[0], hav(), &hconf);
    let k = Node::start(&lab.routers[1], Daemon::Keepalived, &instance_conf("VI_S", 56, 120, 3, "1", &["10.0.0.208/24"], ""));
    assert!(wait_until(SETTLE, || h.holds("10.0.0.208") && !k.holds("10.0.0.208")).is_some(), "hav not master");
    std::fs::remove_file(&flag).expect("rm flag");
    // 150 - 60 = 90 < 120: keepalived preempts after `fall` failures.
    assert!(wait_until(SETTLE, || k.holds("10.0.0.208") && !h.holds("10.0.0.208")).is_some(), "script failure did not lower the priority");
    std::fs::write(&flag, "1").expect("flag");
    assert!(wait_until(SETTLE, || h.holds("10.0.0.208") && !k.holds("10.0.0.208")).is_some(), "script recovery did not restore the priority");
}

#[test]
fn track_interface_faults_and_recovers() {
    if skip_unless_root("track_interface_faults_and_recovers") {
        return;
    }
    let lab = Lab::new(2).expect("lab");
    lab.routers[0].ip(&["link", "add", "uplink", "type", "veth", "peer", "name", "uplink-p"]).expect("veth");
    lab.routers[0].link_up("uplink-p").expect("up");
    lab.routers[0].link_up("uplink").expect("up");
    let extra = "  track_interface {\n    uplink\n  }";
    let a = Node::start(&lab.routers[0], hav(), &instance_conf("VI_I", 57, 150, 3, "1", &["10.0.0.209/24"], extra));
    let b = Node::start(&lab.routers[1], hav(), &instance_conf("VI_I", 57, 100, 3, "1", &["10.0.0.209/24"], ""));
    assert!(wait_until(SETTLE, || a.holds("10.0.0.209") && !b.holds("10.0.0.209")).is_some());
    lab.routers[0].link_down("uplink").expect("down");
    assert!(wait_until(SETTLE, || b.holds("10.0.0.209") && !a.holds("10.0.0.209")).is_some(), "FAULT did not hand over");
    let st = hav_linux::daemon::control::request(&a.control_path(), &hav_linux::daemon::control::Request { cmd: "status".into(), instance: None }).expect("status");
    assert_eq!(st["instances"][0]["state"], "FAULT", "{st}");
    lab.routers[0].link_up("uplink").expect("up");
    assert!(wait_until(SETTLE, || a.holds("10.0.0.209") && !b.holds("10.0.0.209")).is_some(), "did not recover from FAULT");
}

#[test]
fn vmac_answers_with_the_virtual_mac() {
    if skip_unless("vmac_answers_with_the_virtual_mac", &[Need::Root, Need::Keepalived]) {
        return;
    }
    let lab = Lab::new(2).expect("lab");
    let a = Node::start(&lab.routers[0], hav(), &instance_conf("VI_V", 58, 150, 3, "1", &["10.0.0.211/24"], "  use_vmac"));
    let k = Node::start(&lab.routers[1], Daemon::Keepalived, &instance_conf("VI_V", 58, 100, 3, "1", &["10.0.0.211/24"], "  use_vmac"));
    assert!(wait_until(SETTLE, || a.holds("10.0.0.211") && !k.holds("10.0.0.211")).is_some(), "hav not master with VMAC");
    let vmac = [0x00, 0x00, 0x5e, 0x00, 0x01, 58];
    assert_eq!(lab.routers[0].mac("vrrp.58").expect("vmac link"), vmac);
    assert!(wait_until(Duration::from_secs(3), || client_reaches(&lab, "10.0.0.211", vmac)).is_some(), "the VIP is not answered with the VMAC");
    drop(a);
    // A clean stop removes the VMAC link.
    assert!(lab.routers[0].ip(&["link", "show", "vrrp.58"]).is_err(), "VMAC left behind");
}

/// An SMTP sink: accepts one message, returns its DATA.
fn smtp_sink(listener: std::net::TcpListener) -> String {
    let (s, _) = listener.accept().expect("accept");
    s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let mut w = s.try_clone().expect("clone");
    let mut r = BufReader::new(s);
    w.write_all(b"220 sink ESMTP\r\n").expect("greet");
    let mut data = String::new();
    let mut in_data = false;
    let mut line = String::new();
    while r.read_line(&mut line).unwrap_or(0) > 0 {
        if in_data {
            if line == ".\r\n" {
                in_data = false;
                w.write_all(b"250 queued\r\n").expect("w");
            } else {
                data.push_str(&line);
            }
        } else {
            let cmd = line.to_ascii_uppercase();
            if cmd.starts_with("EHLO") {
                w.write_all(b"250-sink\r\n250 8BITMIME\r\n").expect("w");
            } else if cmd.starts_with("DATA") {
                in_data = true;
                w.write_all(b"354 go\r\n").expect("w");
            } else if cmd.starts_with("QUIT") {
                w.write_all(b"221 bye\r\n").expect("w");
                break;
            } else {
                w.write_all(b"250 ok\r\n").expect("w");
            }
        }
        line.clear();
    }
    data
}

#[test]
fn notify_scripts_fifo_and_smtp_alert() {
    if skip_unless_root("notify_scripts_fifo_and_smtp_alert") {
        return;
    }
    let lab = Lab::new(1).expect("lab");
    let dir = hav_tests::peers::workdir("ntf");
    let out = dir.join("notify.out");
    let master_out = dir.join("master.out");
    let script = dir.join("notify.sh");
    std::fs::write(&script, format!("#!/bin/sh\necho \"$@\" >> {}\n", out.display())).expect("script");
    std::fs::write(dir.join("master.sh"), format!("#!/bin/sh\necho master >> {}\n", master_out.display())).expect("script");
    for f in ["notify.sh", "master.sh"] {
        std::process::Command::new("chmod").args(["755"]).arg(dir.join(f)).status().expect("chmod");
    }
    let fifo = dir.join("notify.fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).expect("mkfifo");
    // Read the FIFO from a thread; opening for read blocks until the daemon writes.
    let fifo_r = fifo.clone();
    let reader = std::thread::spawn(move || {
        let f = std::fs::OpenOptions::new().read(true).write(true).open(&fifo_r).expect("open fifo");
        let mut line = String::new();
        BufReader::new(f).read_line(&mut line).expect("fifo line");
        line
    });
    // The SMTP sink listens inside the router's namespace.
    let listener = lab.routers[0].enter(|| std::net::TcpListener::bind("127.0.0.1:0").expect("bind"));
    let port = listener.local_addr().expect("addr").port();
    let sink = std::thread::spawn(move || smtp_sink(listener));
    let conf = format!(
        "global_defs {{\n  router_id lab-r1\n  notification_email {{\n    ops@example.test\n  }}\n  notification_email_from hav@example.test\n  \
         smtp_server 127.0.0.1 {port}\n  smtp_connect_timeout 5\n  notify_fifo {}\n}}\n\
         vrrp_instance VI_N {{\n  interface eth0\n  virtual_router_id 59\n  priority 255\n  advert_int 1\n  smtp_alert\n  \
         notify {}\n  notify_master {}\n  virtual_ipaddress {{\n    10.0.0.212/24\n  }}\n}}\n",
        fifo.display(),
        script.display(),
        dir.join("master.sh").display()
    );
    let mut h = Node::start(&lab.routers[0], hav(), &conf);
    // Priority 255: the owner is master at once.
    assert!(wait_until(SETTLE, || h.holds("10.0.0.212")).is_some(), "owner not master");
    assert_eq!(reader.join().expect("reader"), "INSTANCE \"VI_N\" MASTER 255\n");
    assert!(wait_until(Duration::from_secs(5), || std::fs::read_to_string(&out).is_ok_and(|s| s.contains("INSTANCE VI_N MASTER 255"))).is_some(), "notify script not run with TYPE NAME STATE PRIORITY");
    assert!(wait_until(Duration::from_secs(5), || std::fs::read_to_string(&master_out).is_ok_and(|s| s.trim() == "master")).is_some(), "notify_master not run");
    let mail = sink.join().expect("sink");
    assert!(mail.contains("Subject: [lab-r1] VRRP Instance VI_N - Entering MASTER state"), "{mail}");
    assert!(mail.contains("To: ops@example.test"), "{mail}");
    assert!(h.terminate());
    // STOP with the priority it had, as keepalived's (the priority-0 advert is on the wire).
    assert!(wait_until(Duration::from_secs(5), || std::fs::read_to_string(&out).is_ok_and(|s| s.contains("INSTANCE VI_N STOP 255"))).is_some(), "no STOP notification");
    let _ = std::fs::remove_dir_all(&dir);
}

/// What one daemon's notify scripts saw: instances B and C taken out by a reload, then a
/// SIGTERM. `notify` lines (from the reload on) and the `notify_STATE` scripts that ran.
fn removal_notifications(lab: &Lab, daemon: Daemon) -> (Vec<String>, Vec<String>, String) {
    let dir = hav_tests::peers::workdir("ndel");
    let (out, ran) = (dir.join("notify.out"), dir.join("ran.out"));
    let script = |name: &str, body: String| {
        let p = dir.join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).expect("script");
        std::process::Command::new("chmod").arg("755").arg(&p).status().expect("chmod");
        p.display().to_string()
    };
    let notify = script("notify.sh", format!("echo \"$@\" >> {}", out.display()));
    let [fault, deleted, stop] = ["fault", "deleted", "stop"].map(|w| script(&format!("{w}.sh"), format!("echo {w} \"$@\" >> {}", ran.display())));
    let inst = |name: &str, vrid: u8, prio: u8, vip: &str, extra: String| {
        format!(
            "vrrp_instance {name} {{\n  state BACKUP\n  interface eth0\n  virtual_router_id {vrid}\n  priority {prio}\n  advert_int 1\n{extra}  virtual_ipaddress {{\n    {vip}\n  }}\n}}\n"
        )
    };
    // A: the owner. B: priority 100 less a failing script's 20, with notify_deleted and a
    // script for it. C: keepalived's default on removal, with a notify_fault that must not run.
    let a = inst("A", 81, 255, "10.0.0.231/24", format!("  notify {notify}\n  notify_stop {stop}\n"));
    let b = inst(
        "B",
        82,
        100,
        "10.0.0.232/24",
        format!("  track_script {{\n    failing\n  }}\n  notify {notify}\n  notify_deleted {deleted}\n  notify_fault {fault}\n"),
    );
    let c = inst("C", 83, 100, "10.0.0.233/24", format!("  notify {notify}\n  notify_fault {fault}\n  notify_stop {stop}\n"));
    let global = "global_defs {\n  script_user root\n  vrrp_garp_master_delay 0\n}\nvrrp_script failing {\n  script /bin/false\n  interval 1\n  weight -20\n}\n";
    let mut n = Node::start(&lab.routers[0], daemon, &format!("{global}{a}{b}{c}"));
    let text = || std::fs::read_to_string(&out).unwrap_or_default();
    assert!(
        wait_until(Duration::from_secs(15), || text().contains("INSTANCE B MASTER 80") && text().contains("INSTANCE C MASTER 100")).is_some(),
        "B and C not master (B at 80):\n{}\n{}",
        text(),
        n.log()
    );
    let before = text().lines().count();
    n.write_config(&format!("{global}{a}"));
    n.signal(Signal::SIGHUP);
    let removed = wait_until(Duration::from_secs(10), || text().lines().count() >= before + 2 && !n.holds("10.0.0.232") && !n.holds("10.0.0.233"));
    assert!(removed.is_some(), "B and C not removed by the reload:\n{}\n{}", text(), n.log());
    assert!(n.holds("10.0.0.231"), "A lost its address in the reload");
    assert!(n.terminate(), "did not stop");
    wait_until(Duration::from_secs(5), || text().contains("STOP"));
    // The scripts of one notification run one after the other: give the last one a moment.
    std::thread::sleep(Duration::from_millis(500));
    let lines: Vec<String> = text().lines().skip(before).map(str::to_owned).collect();
    let mut ran: Vec<String> = std::fs::read_to_string(&ran).unwrap_or_default().lines().map(str::to_owned).collect();
    ran.sort();
    let log = n.log();
    let _ = std::fs::remove_dir_all(&dir);
    (lines, ran, log)
}

/// A reload that removes instances notifies as keepalived does: `FAULT` to `notify` (and
/// not `notify_fault`), or `DELETED` and the `notify_deleted` script with that keyword; all
/// with the priority the instance had. A stop says `STOP` with the priority too. Run against
/// keepalived and hav alike, and compared.
#[test]
fn removed_instances_notify_as_keepalived_does() {
    if skip_unless_root("removed_instances_notify_as_keepalived_does") {
        return;
    }
    let lab = Lab::new(1).expect("lab");
    let want_lines = ["INSTANCE A STOP 255", "INSTANCE B DELETED 80", "INSTANCE C FAULT 100"];
    let want_ran = ["deleted", "stop"];
    let mut seen = Vec::new();
    for daemon in [Daemon::Keepalived, hav()] {
        let name = if matches!(daemon, Daemon::Keepalived) { "keepalived" } else { "hav" };
        let (mut lines, ran, log) = removal_notifications(&lab, daemon);
        lines.sort();
        assert_eq!(lines, want_lines, "{name}: notify after the reload\n{log}");
        assert_eq!(ran, want_ran, "{name}: notify_STATE scripts after the reload (no notify_fault)\n{log}");
        seen.push((lines, ran));
    }
    assert_eq!(seen[0], seen[1], "keepalived and hav differ");
}

/// One daemon with `notify_fifo` (missing, so created) and `notify_fifo_script`: what the
/// reader saw, from its start to the daemon's stop, and whether the FIFO was left behind.
fn fifo_reader_run(lab: &Lab, daemon: Daemon) -> (String, bool, String) {
    let dir = hav_tests::peers::workdir("nfifo");
    let (fifo, out, reader) = (dir.join("n.fifo"), dir.join("reader.out"), dir.join("reader.sh"));
    std::fs::write(
        &reader,
        format!(
            "#!/bin/sh\necho \"args $*\" >> {o}\ntrap 'echo term >> {o}; exit 0' TERM\nwhile read -r l; do echo \"$l\" >> {o}; done < \"$2\"\necho eof >> {o}\n",
            o = out.display()
        ),
    )
    .expect("script");
    std::process::Command::new("chmod").arg("755").arg(&reader).status().expect("chmod");
    let conf = format!(
        "global_defs {{\n  script_user root\n  notify_fifo {}\n  notify_fifo_script \"{} tag\"\n}}\n\
         vrrp_instance F {{\n  interface eth0\n  virtual_router_id 84\n  priority 255\n  advert_int 1\n  virtual_ipaddress {{\n    10.0.0.234/24\n  }}\n}}\n",
        fifo.display(),
        reader.display()
    );
    let mut n = Node::start(&lab.routers[0], daemon, &conf);
    let text = || std::fs::read_to_string(&out).unwrap_or_default();
    // Up to the daemon to get there: keepalived's reader sometimes reads end-of-file first.
    wait_until(SETTLE, || text().contains("INSTANCE \"F\" MASTER 255") || text().contains("eof"));
    assert!(n.terminate(), "did not stop");
    wait_until(Duration::from_secs(5), || text().contains("term") || text().contains("eof"));
    let gone = wait_until(Duration::from_secs(3), || !fifo.exists()).is_some();
    let (seen, left, log) = (text().replace(&fifo.display().to_string(), "FIFO"), !gone, n.log());
    let _ = std::fs::remove_dir_all(&dir);
    (seen, left, log)
}

/// `notify_fifo_script`: started once, with the FIFO's path as its last argument, as by
/// keepalived. hav's reader then reads the state lines without ever reading end-of-file, gets
/// SIGTERM at stop, and the FIFO hav created is gone after it. keepalived's reader does not
/// always get that far: with `notify_fifo` alone, it was seen to read end-of-file at once
/// (keepalived's processes open and close the FIFO), and keepalived to leave the FIFO it
/// created; those are the documented differences.
#[test]
fn notify_fifo_script_reads_the_fifo_as_with_keepalived() {
    if skip_unless_root("notify_fifo_script_reads_the_fifo_as_with_keepalived") {
        return;
    }
    let lab = Lab::new(1).expect("lab");
    let (seen, _, log) = fifo_reader_run(&lab, Daemon::Keepalived);
    let first = |s: &str| s.lines().next().map(str::to_owned);
    assert_eq!(first(&seen).as_deref(), Some("args tag FIFO"), "keepalived: the FIFO last:\n{seen}\n{log}");
    let keepalived_args = first(&seen);
    let (seen, left, log) = fifo_reader_run(&lab, hav());
    let lines: Vec<&str> = seen.lines().collect();
    assert_eq!(first(&seen), keepalived_args, "hav: the reader's arguments as keepalived gives them:\n{seen}\n{log}");
    assert_eq!(lines.iter().filter(|l| l.starts_with("args")).count(), 1, "hav: started once:\n{seen}");
    assert!(lines.contains(&"INSTANCE \"F\" MASTER 255"), "hav:\n{seen}\n{log}");
    assert_eq!(lines.last(), Some(&"term"), "hav: SIGTERM at stop, no end-of-file before:\n{seen}\n{log}");
    assert!(!left, "hav: the FIFO it created is left after the stop");
}

#[test]
fn metrics_endpoint_reports_state_and_counters() {
    if skip_unless_root("metrics_endpoint_reports_state_and_counters") {
        return;
    }
    let lab = Lab::new(1).expect("lab");
    let h = Node::start_with(
        &lab.routers[0],
        hav(),
        &instance_conf("VI_M", 60, 255, 3, "1", &["10.0.0.213/24"], ""),
        &["--metrics", "127.0.0.1:9650"],
    );
    assert!(wait_until(SETTLE, || h.holds("10.0.0.213")).is_some(), "owner not master");
    std::thread::sleep(Duration::from_millis(2500));
    let body = lab.routers[0].enter(|| {
        let mut s = std::net::TcpStream::connect("127.0.0.1:9650").expect("connect");
        s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").expect("write");
        let mut out = String::new();
        std::io::Read::read_to_string(&mut s, &mut out).expect("read");
        out
    });
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    assert!(body.contains("hav_vrrp_state{instance=\"VI_M\"} 2"), "{body}");
    assert!(body.contains("hav_vrrp_priority{instance=\"VI_M\"} 255"), "{body}");
    let sent: u64 = body
        .lines()
        .find(|l| l.starts_with("hav_vrrp_adverts_tx_total{instance=\"VI_M\"}"))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .expect("adverts_tx line");
    assert!(sent >= 2, "{body}");
}

#[test]
fn sync_group_members_move_together() {
    if skip_unless("sync_group_members_move_together", &[Need::Root, Need::Keepalived]) {
        return;
    }
    let lab = Lab::new(2).expect("lab");
    lab.routers[0].ip(&["link", "add", "uplink", "type", "veth", "peer", "name", "uplink-p"]).expect("veth");
    lab.routers[0].link_up("uplink-p").expect("up");
    lab.routers[0].link_up("uplink").expect("up");
    let conf = |prio: u8, track: &str| {
        format!(
            "vrrp_sync_group G {{\n  group {{\n    VI_X\n    VI_Y\n  }}\n}}\n\
             vrrp_instance VI_X {{\n  interface eth0\n  virtual_router_id 62\n  priority {prio}\n  advert_int 1\n{track}\n  virtual_ipaddress {{\n    10.0.0.214/24\n  }}\n}}\n\
             vrrp_instance VI_Y {{\n  interface eth0\n  virtual_router_id 63\n  priority {prio}\n  advert_int 1\n  virtual_ipaddress {{\n    10.0.0.215/24\n  }}\n}}\n"
        )
    };
    let h = Node::start(&lab.routers[0], hav(), &conf(150, "  track_interface {\n    uplink\n  }"));
    let k = Node::start(&lab.routers[1], Daemon::Keepalived, &conf(100, ""));
    let both = |n: &Node<'_>| n.holds("10.0.0.214") && n.holds("10.0.0.215");
    assert!(wait_until(SETTLE, || both(&h) && !k.holds("10.0.0.214") && !k.holds("10.0.0.215")).is_some(), "hav not master of both");
    // Only VI_X tracks the uplink; the group takes VI_Y along.
    lab.routers[0].link_down("uplink").expect("down");
    assert!(
        wait_until(SETTLE, || both(&k) && !h.holds("10.0.0.214") && !h.holds("10.0.0.215")).is_some(),
        "the group did not fail over together"
    );
    lab.routers[0].link_up("uplink").expect("up");
    assert!(wait_until(SETTLE, || both(&h) && !k.holds("10.0.0.214")).is_some(), "the group did not come back together");
}

#[test]
fn vrrp_runs_when_the_kernel_has_no_ipvs() {
    // The lab kernel has no IPVS module; a director config must still elect (keepalived's VRRP
    // process also runs when its checker process cannot).
    if skip_unless("vrrp_runs_when_the_kernel_has_no_ipvs", &[Need::Root, Need::NoIpvs]) {
        return;
    }
    let lab = Lab::new(1).expect("lab");
    let conf = format!(
        "{}virtual_server 10.0.0.216 80 {{\n  lb_algo rr\n  lb_kind DR\n  real_server 10.0.0.50 80 {{\n    TCP_CHECK {{\n      connect_timeout 1\n    }}\n  }}\n}}\n",
        instance_conf("VI_L", 66, 255, 3, "1", &["10.0.0.216/24"], "")
    );
    let h = Node::start(&lab.routers[0], hav(), &conf);
    assert!(wait_until(SETTLE, || h.holds("10.0.0.216")).is_some(), "VRRP did not run:\n{}", h.log());
    assert!(h.log().contains("LVS disabled, VRRP continues"), "{}", h.log());
}

#[test]
fn status_counts_dropped_adverts_by_reason() {
    if skip_unless_root("status_counts_dropped_adverts_by_reason") {
        return;
    }
    // The peer is hav: it keeps advertising as master whatever it receives (keepalived 2.2.7, as
    // master, stops advertising after an advert with a wrong password arrives).
    let lab = Lab::new(2).expect("lab");
    let auth = |p: &str| format!("  authentication {{\n    auth_type PASS\n    auth_pass {p}\n  }}");
    let h = Node::start(&lab.routers[0], hav(), &instance_conf("VI_D", 68, 100, 2, "1", &["10.0.0.222/24"], &auth("right")));
    let _p = Node::start(&lab.routers[1], hav(), &instance_conf("VI_D", 68, 150, 2, "1", &["10.0.0.222/24"], &auth("wrong")));
    let dropped = || {
        hav_linux::daemon::control::request(&h.control_path(), &hav_linux::daemon::control::Request { cmd: "status".into(), instance: None })
            .ok()
            .and_then(|st| st["instances"][0]["dropped"]["auth_pass"].as_u64())
            .unwrap_or(0)
    };
    assert!(wait_until(SETTLE, || dropped() >= 2).is_some(), "no auth_pass drops counted");
    // Adverts with the wrong password are ignored: hav becomes master regardless.
    assert!(wait_until(SETTLE, || h.holds("10.0.0.222")).is_some());
}

#[test]
fn an_interface_created_again_gets_its_instance_back() {
    // hav (priority 200) over keepalived (100). hav's eth0 is deleted, so keepalived takes over;
    // then a new eth0 appears (new index, new MAC), as after a network restart. hav moves its
    // instance and sockets to it and preempts back: it receives and sends on the new link.
    if skip_unless("an_interface_created_again_gets_its_instance_back", &[Need::Root, Need::Keepalived]) {
        return;
    }
    let lab = Lab::new(2).expect("lab");
    let vip = "10.0.0.226";
    let h = Node::start(&lab.routers[0], hav(), &instance_conf("VI_R", 72, 200, 3, "0.1", &["10.0.0.226/24"], ""));
    let k = Node::start(&lab.routers[1], Daemon::Keepalived, &instance_conf("VI_R", 72, 100, 3, "0.1", &["10.0.0.226/24"], ""));
    assert!(wait_until(SETTLE, || h.holds(vip) && !k.holds(vip)).is_some(), "hav is not master:\n{}", h.log());
    let old = lab.routers[0].ifindex("eth0").expect("ifindex");
    lab.unplug(0).expect("unplug");
    assert!(wait_until(SETTLE, || k.holds(vip)).is_some(), "keepalived did not take over");
    assert!(h.log().contains("FAULT"), "hav did not fault with its interface gone:\n{}", h.log());
    let _new = lab.plug(0).expect("plug");
    assert_ne!(lab.routers[0].ifindex("eth0").expect("ifindex"), old, "the new eth0 has a new index");
    assert!(
        wait_until(SETTLE, || h.holds(vip) && !k.holds(vip)).is_some(),
        "hav did not take its VIP back on the new interface:\n{}",
        h.log()
    );
    assert!(h.log().contains("interface back under a new index"), "{}", h.log());
}
