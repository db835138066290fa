//! What the daemon guarantees when its own machinery fails: a panic in the VRRP thread releases
//! the VIPs (with a priority-0 advert, so the backup takes over after its skew time), and
//! netlink notifications the kernel dropped (ENOBUFS) are made up for by reading links and
//! addresses again. Asserted in namespaces, on `ip addr`, against keepalived as the peer.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use hav_linux::daemon::control::{self, Request};
use hav_tests::netns::{skip_unless, Lab, Need};
use hav_tests::peers::{instance_conf, wait_until, Daemon, Node};
use nix::sys::signal::Signal;

fn hav() -> Daemon {
    Daemon::Hav(PathBuf::from(env!("CARGO_BIN_EXE_hav-linux")))
}

const SETTLE: Duration = Duration::from_secs(8);

fn state(n: &Node<'_>) -> Option<String> {
    let v = control::request(&n.control_path(), &Request { cmd: "status".into(), instance: None }).ok()?;
    v["instances"][0]["state"].as_str().map(str::to_owned)
}

#[test]
fn a_panic_in_the_vrrp_thread_releases_the_vip_and_hands_over_at_once() {
    if skip_unless("a_panic_in_the_vrrp_thread_releases_the_vip_and_hands_over_at_once", &[Need::Root, Need::Keepalived]) {
        return;
    }
    // The daemon honours the fault-injection command only with this set (inherited by the
    // daemons this test starts).
    std::env::set_var("HAV_TEST_PANIC", "1");
    let lab = Lab::new(2).expect("lab");
    let vip = "10.0.0.201";
    let conf = |p| instance_conf("VI_1", 61, p, 2, "1", &["10.0.0.201/24"], "");
    let h = Node::start(&lab.routers[0], hav(), &conf(150));
    let k = Node::start(&lab.routers[1], Daemon::Keepalived, &conf(100));
    assert!(wait_until(SETTLE, || h.holds(vip) && !k.holds(vip)).is_some(), "hav never the only master:\n{}", h.log());
    std::thread::sleep(Duration::from_millis(300));
    let t0 = Instant::now();
    // The control socket is served off the VRRP thread: the panic shows as a connection that
    // closes, or as "daemon stopping", never as an answer from the loop.
    let r = control::request(&h.control_path(), &Request { cmd: "panic".into(), instance: None });
    if let Ok(v) = &r {
        assert_eq!(v["ok"], serde_json::Value::Bool(false), "the daemon answered instead of panicking: {v}");
    }
    // The VIP leaves the panicking node before it exits.
    let gone = wait_until(Duration::from_secs(2), || !h.holds(vip));
    assert!(gone.is_some(), "the VIP stayed on the node whose VRRP thread panicked:\n{}", h.log());
    assert!(wait_until(Duration::from_secs(2), || !h.alive()).is_some(), "hav kept running after the panic");
    // keepalived got the priority-0 advert: it takes over after Skew_Time ((256-100)/256 s),
    // well before the Master_Down_Interval (3.6 s) that a silent death would cost.
    let took = wait_until(Duration::from_secs(6), || k.holds(vip)).map(|_| t0.elapsed());
    let took = took.unwrap_or_else(|| panic!("keepalived never took over:\n{}", k.log()));
    assert!(took < Duration::from_millis(2500), "takeover after {took:?}: no priority-0 advert was sent\n{}", h.log());
    let log = h.log();
    assert!(log.contains("panicked"), "the panic is not in the log:\n{log}");
}

#[test]
fn lost_netlink_events_are_made_up_for_by_reading_again() {
    if skip_unless("lost_netlink_events_are_made_up_for_by_reading_again", &[Need::Root, Need::Keepalived]) {
        return;
    }
    let lab = Lab::new(2).expect("lab");
    let vip = "10.0.0.202";
    let conf = |p| instance_conf("VI_1", 62, p, 2, "1", &["10.0.0.202/24"], "");
    let h = Node::start(&lab.routers[0], hav(), &conf(150));
    let k = Node::start(&lab.routers[1], Daemon::Keepalived, &conf(100));
    assert!(wait_until(SETTLE, || h.holds(vip) && !k.holds(vip)).is_some(), "hav never the only master:\n{}", h.log());
    // An interface of the router's own to make address events on.
    let ns = &lab.routers[0];
    ns.ip(&["link", "add", "fl0", "type", "veth", "peer", "name", "fl1"]).expect("veth");
    ns.link_up("fl0").expect("fl0 up");
    let pid = h.pid.expect("pid");
    // Frozen, the daemon reads nothing: the flood fills its netlink socket, and the kernel drops
    // what comes after, the link going down included.
    ns.signal(pid, Signal::SIGSTOP).expect("SIGSTOP");
    let mut batch = String::new();
    for i in 0..4000u32 {
        let a = format!("10.{}.{}.{}/32", 100 + i / 65536, (i / 256) % 256, i % 256);
        batch.push_str(&format!("address add {a} dev fl0\naddress del {a} dev fl0\n"));
    }
    let file = std::env::temp_dir().join(format!("hav-flood-{}.batch", std::process::id()));
    std::fs::write(&file, batch).expect("batch file");
    ns.ip(&["-batch", file.to_str().expect("utf-8")]).expect("address flood");
    let _ = std::fs::remove_file(&file);
    ns.link_down("eth0").expect("eth0 down");
    ns.signal(pid, Signal::SIGCONT).expect("SIGCONT");
    // On waking it meets ENOBUFS, reads everything again, and finds its link down: FAULT, and
    // the VIP released.
    let fault = wait_until(Duration::from_secs(5), || state(&h).as_deref() == Some("FAULT"));
    let log = h.log();
    assert!(fault.is_some(), "the instance did not see its link go down (state {:?}):\n{log}", state(&h));
    assert!(log.contains("ENOBUFS"), "no netlink overflow was met, the test did not test it:\n{log}");
    assert!(wait_until(Duration::from_secs(2), || !h.holds(vip)).is_some(), "the VIP stayed on a node in FAULT");
    // The link comes back: the instance runs again (and takes its VIP back from keepalived).
    ns.link_up("eth0").expect("eth0 up");
    assert!(wait_until(SETTLE, || h.holds(vip) && !k.holds(vip)).is_some(), "hav did not come back:\n{}", h.log());
}
