//! WASM policies inside the running daemon, in the namespace lab against keepalived: a priority
//! policy moves mastership, and a hostile (looping) policy is contained while the adverts keep
//! their interval and the master keeps its VIP.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hav_tests::netns::{skip_unless, Lab, Need};
use hav_tests::peers::{instance_conf, wait_until, workdir, Daemon, Node};
use nix::sys::signal::Signal;

const SETTLE: Duration = Duration::from_secs(8);

fn hav() -> Daemon {
    Daemon::Hav(PathBuf::from(env!("CARGO_BIN_EXE_hav-linux")))
}

/// `target/policies/NAME.wasm`, built by scripts/build-policies.
fn example(name: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("root").to_path_buf();
    let dir = root.join("target/policies");
    if !dir.join(format!("{name}.wasm")).exists() {
        let st = std::process::Command::new(root.join("scripts/build-policies")).arg(&dir).status().expect("build-policies");
        assert!(st.success());
    }
    dir.join(format!("{name}.wasm"))
}

fn policy_script(policy: &str, args: &str, interval: &str) -> String {
    format!("vrrp_script pol {{\n  policy {policy}\n  args {args}\n  interval {interval}\n}}\n")
}

#[test]
fn priority_policy_moves_mastership() {
    if skip_unless("priority_policy_moves_mastership", &[Need::Root, Need::Keepalived]) {
        return;
    }
    let lab = Lab::new(2).expect("lab");
    let wasm = example("static_verdict");
    let track = "  track_script {\n    pol\n  }";
    let conf = |delta: i32| {
        format!("{}{}", policy_script("static_verdict", &format!("delta={delta}"), "1"), instance_conf("VI_P", 64, 150, 3, "1", &["10.0.0.220/24"], track))
    };
    let h = Node::start_with(&lab.routers[0], hav(), &conf(0), &["--policy", wasm.to_str().expect("utf-8")]);
    let k = Node::start(&lab.routers[1], Daemon::Keepalived, &instance_conf("VI_P", 64, 120, 3, "1", &["10.0.0.220/24"], ""));
    assert!(wait_until(SETTLE, || h.holds("10.0.0.220") && !k.holds("10.0.0.220")).is_some(), "hav not master");
    // The policy now answers -60: 150 - 60 = 90 < 120, keepalived preempts.
    h.write_config(&conf(-60));
    h.signal(Signal::SIGHUP);
    assert!(wait_until(SETTLE, || k.holds("10.0.0.220") && !h.holds("10.0.0.220")).is_some(), "a negative delta did not hand over");
    let st = hav_linux::daemon::control::request(&h.control_path(), &hav_linux::daemon::control::Request { cmd: "status".into(), instance: None }).expect("status");
    assert_eq!(st["instances"][0]["effective_priority"], 90, "{st}");
    h.write_config(&conf(0));
    h.signal(Signal::SIGHUP);
    assert!(wait_until(SETTLE, || h.holds("10.0.0.220") && !k.holds("10.0.0.220")).is_some(), "did not take back mastership");
}

/// Receives VRRP adverts of `vrid` on the client's interface for `secs` and returns their
/// arrival times.
fn capture_adverts(lab: &Lab, vrid: u8, secs: u64) -> Vec<Instant> {
    lab.client.enter(move || {
        use socket2::{Domain, Protocol, Socket, Type};
        let s = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(112))).expect("raw socket");
        s.join_multicast_v4(&"224.0.0.18".parse().expect("group"), &"10.0.0.100".parse().expect("addr")).expect("join");
        s.set_read_timeout(Some(Duration::from_millis(200))).expect("timeout");
        let mut out = Vec::new();
        let end = Instant::now() + Duration::from_secs(secs);
        let mut buf = [0u8; 2048];
        while Instant::now() < end {
            let Ok(n) = std::io::Read::read(&mut &s, &mut buf) else { continue };
            let bytes = &buf[..n];
            let ihl = usize::from(bytes.first().copied().unwrap_or(0) & 0x0f) * 4;
            if bytes.get(ihl + 1) == Some(&vrid) {
                out.push(Instant::now());
            }
        }
        out
    })
}

#[test]
fn hostile_policy_is_contained_and_adverts_keep_their_interval() {
    if skip_unless("hostile_policy_is_contained_and_adverts_keep_their_interval", &[Need::Root, Need::Keepalived]) {
        return;
    }
    let lab = Lab::new(2).expect("lab");
    let dir = workdir("spin");
    let wat = dir.join("spin.wat");
    std::fs::write(
        &wat,
        r#"(module
  (memory (export "memory") 1)
  (func (export "hav_abi_version") (result i32) (i32.const 1))
  (func (export "hav_alloc") (param i32) (result i32) (i32.const 4096))
  (func (export "hav_priority") (param i32 i32) (result i64) (loop $l (br $l)) (i64.const 0)))"#,
    )
    .expect("wat");
    let track = "  track_script {\n    pol\n  }";
    let conf = format!("{}{}", policy_script("spin", "x=1", "0.2"), instance_conf("VI_H", 65, 150, 3, "1", &["10.0.0.221/24"], track));
    let h = Node::start_with(&lab.routers[0], hav(), &conf, &["--policy", wat.to_str().expect("utf-8")]);
    let k = Node::start(&lab.routers[1], Daemon::Keepalived, &instance_conf("VI_H", 65, 100, 3, "1", &["10.0.0.221/24"], ""));
    assert!(wait_until(SETTLE, || h.holds("10.0.0.221") && !k.holds("10.0.0.221")).is_some(), "hav not master");
    let times = capture_adverts(&lab, 65, 6);
    assert!(times.len() >= 5, "only {} adverts in 6 s", times.len());
    let worst = times.windows(2).map(|w| w[1] - w[0]).max().expect("gaps");
    assert!(worst < Duration::from_millis(1300), "an advert was late by {:?} while the policy looped", worst);
    assert!(h.holds("10.0.0.221") && !k.holds("10.0.0.221"), "mastership moved");
    let log = h.log();
    assert!(log.contains("priority policy failed") && log.contains("CPU budget"), "no reason logged:\n{log}");
    let _ = std::fs::remove_dir_all(&dir);
}
