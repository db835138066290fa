//! What a master puts on the wire when another router's advert reaches it, hav beside Debian's
//! keepalived in the namespace lab, for the keywords that change it:
//!
//! - a lower priority: keepalived answers at once with an advert of its own (and restarts its
//!   advert timer) and runs `notify_master_rx_lower_pri` without arguments; with
//!   `lower_prio_no_advert` (or `vrrp_strict`) it stays silent until its next periodic advert;
//! - a higher priority: keepalived gives way without a word, or, with
//!   `higher_prio_send_advert`, sends one advert first; it takes over again
//!   `down_timer_adverts` intervals (3 by default) plus its skew time after that advert.
//!
//! Each case runs once with keepalived and once with hav, each in a lab of its own (one router
//! and a client namespace that captures and sends the other router's adverts), and asserts the
//! same wire behaviour of both.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hav_tests::capture::{Capture, Frame};
use hav_tests::inject::{build, Advert, Craft, Injector};
use hav_tests::netns::{skip_unless, Lab, Need};
use hav_tests::peers::{instance_conf, wait_until, workdir, Daemon, Node};

fn hav() -> Daemon {
    Daemon::Hav(PathBuf::from(env!("CARGO_BIN_EXE_hav-linux")))
}

const NEEDS: &[Need] = &[Need::Root, Need::Keepalived, Need::Tcpdump];
const VRID: u8 = 61;
const VIP: &str = "10.0.0.211";
/// The router under test (router 0 of the lab) and the client that plays the other router.
const ROUTER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const OTHER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);
/// The priority of the router under test: Skew_Time (256 - 150) / 256 s = 414 ms.
const PRIO: u8 = 150;
const SKEW_MS: f64 = 414.0;
/// An answer is an advert from the router within this time of the advert it answers (both
/// daemons answer within a few milliseconds; a periodic advert falls in such a window after
/// a given injection 3% of the time).
const ANSWER_MS: f64 = 30.0;

/// The VRRPv2 advert the other router sends, with `priority`.
fn other_advert(priority: u8) -> Vec<u8> {
    let adv = Advert { version: 2, vrid: VRID, priority, interval_cs: 100, vips: vec![VIP.parse().expect("ip")] };
    build(&adv, Craft::Valid, OTHER)
}

/// What one run saw: when the other router's adverts went out, and when (and with which
/// priority) the router under test advertised, in milliseconds from the capture's first frame.
#[derive(Debug)]
struct Seen {
    injected: Vec<f64>,
    ours: Vec<(f64, u8)>,
    /// Whether the router held the VIP just after each injection.
    held_after: Vec<bool>,
    /// What notify_master_rx_lower_pri wrote, one line per run (`$#`).
    rx_lower_runs: String,
    log: String,
}

impl Seen {
    fn from_frames(frames: &[Frame]) -> (Vec<f64>, Vec<(f64, u8)>) {
        let t0 = frames.first().map_or(0, |f| f.ts_us);
        let ms = |f: &Frame| (f.ts_us - t0) as f64 / 1e3;
        let mut injected = Vec::new();
        let mut ours = Vec::new();
        for f in frames {
            let Some(v) = f.vrrp_v4().filter(|v| v.vrid == VRID) else { continue };
            if v.src == OTHER {
                injected.push(ms(f));
            } else if v.src == ROUTER {
                ours.push((ms(f), v.priority));
            }
        }
        (injected, ours)
    }

    /// How many injected adverts the router answered (an advert of its own within
    /// [`ANSWER_MS`]).
    fn answered(&self) -> usize {
        self.injected.iter().filter(|&&t| self.ours.iter().any(|&(o, p)| p == PRIO && o > t && o - t <= ANSWER_MS)).count()
    }

    /// The router's adverts after `t` ms (exclusive), as offsets from `t`.
    fn ours_after(&self, t: f64) -> Vec<f64> {
        self.ours.iter().filter(|&&(o, _)| o > t).map(|&(o, _)| o - t).collect()
    }
}

/// Runs `daemon` as a priority-150 master with `instance_extra` in its instance and
/// `global_extra` in global_defs, sends it `count` adverts with priority `priority` 300 ms
/// apart once it is master, and records the wire for `after` more.
fn run(daemon: Daemon, instance_extra: &str, global_extra: &str, priority: u8, count: usize, after: Duration) -> Seen {
    let lab = Lab::new(1).expect("lab");
    let dir = workdir("madv");
    let rx_out = dir.join("rx_lower.out");
    let script = write_rx_script(&dir, &rx_out);
    let extra = format!("{instance_extra}\n  notify_master_rx_lower_pri {}", script.display());
    let conf = instance_conf("VI_M", VRID, PRIO, 2, "1", &[&format!("{VIP}/24")], &extra)
        .replace("global_defs {\n", &format!("global_defs {{\n{global_extra}\n"));
    let cap = Capture::start(&lab.client, "eth0", &["ip", "proto", "112"], &dir, "vrrp").expect("tcpdump");
    let node = Node::start(&lab.routers[0], daemon, &conf);
    assert!(wait_until(Duration::from_secs(8), || node.holds(VIP)).is_some(), "never master:\n{}", node.log());
    // Away from the adverts of becoming master.
    std::thread::sleep(Duration::from_millis(1_150));
    let msg = other_advert(priority);
    let mut held_after = Vec::new();
    lab.client.enter(|| {
        let inj = Injector::new(OTHER, 255).expect("raw socket");
        for _ in 0..count {
            inj.send(&msg).expect("send");
            std::thread::sleep(Duration::from_millis(300));
            held_after.push(node.holds(VIP));
        }
    });
    std::thread::sleep(after);
    let frames = cap.stop().expect("capture");
    let (injected, ours) = Seen::from_frames(&frames);
    let rx_lower_runs = std::fs::read_to_string(&rx_out).unwrap_or_default();
    let seen = Seen { injected, ours, held_after, rx_lower_runs, log: node.log() };
    drop(node);
    let _ = std::fs::remove_dir_all(&dir);
    seen
}

fn write_rx_script(dir: &Path, out: &Path) -> PathBuf {
    let script = dir.join("rx_lower.sh");
    std::fs::write(&script, format!("#!/bin/sh\necho \"$#\" >> {}\n", out.display())).expect("script");
    std::process::Command::new("chmod").arg("755").arg(&script).status().expect("chmod");
    script
}

/// Runs the same case with keepalived and with hav side by side, each in its own lab.
fn both(instance_extra: &str, global_extra: &str, priority: u8, count: usize, after: Duration) -> [(&'static str, Seen); 2] {
    std::thread::scope(|s| {
        let k = s.spawn(|| run(Daemon::Keepalived, instance_extra, global_extra, priority, count, after));
        let h = s.spawn(|| run(hav(), instance_extra, global_extra, priority, count, after));
        let k = k.join().unwrap_or_else(|e| std::panic::resume_unwind(e));
        let h = h.join().unwrap_or_else(|e| std::panic::resume_unwind(e));
        [("keepalived", k), ("hav", h)]
    })
}

#[test]
fn a_master_answers_a_lower_priority_unless_lower_prio_no_advert() {
    if skip_unless("a_master_answers_a_lower_priority_unless_lower_prio_no_advert", NEEDS) {
        return;
    }
    const N: usize = 5;
    let mut broken = Vec::new();
    // keepalived's default: every lower-priority advert is answered at once, and the master
    // runs notify_master_rx_lower_pri without arguments.
    for (who, seen) in both("", "", 100, N, Duration::from_millis(500)) {
        eprintln!("{who} default: injected {:?}, ours {:?}, rx_lower {:?}", seen.injected, seen.ours, seen.rx_lower_runs);
        if seen.injected.len() != N {
            broken.push(format!("{who}: the capture saw {} of {N} injected adverts", seen.injected.len()));
        }
        if seen.answered() != N {
            broken.push(format!("{who} (default) answered {} of {N} lower-priority adverts: {seen:?}", seen.answered()));
        }
        if !seen.held_after.iter().all(|&h| h) {
            broken.push(format!("{who} gave up the VIP to a lower priority: {:?}\n{}", seen.held_after, seen.log));
        }
        let runs: Vec<&str> = seen.rx_lower_runs.lines().collect();
        if runs.is_empty() || runs.iter().any(|&l| l != "0") {
            broken.push(format!("{who}: notify_master_rx_lower_pri runs {runs:?}, expected at least one, each without arguments"));
        }
    }
    // lower_prio_no_advert (instance), vrrp_lower_prio_no_advert (global) and vrrp_strict: the
    // master stays on its one-second rhythm.
    for (name, inst, global) in [
        ("lower_prio_no_advert", "  lower_prio_no_advert", ""),
        ("vrrp_lower_prio_no_advert", "", "  vrrp_lower_prio_no_advert"),
        ("vrrp_strict", "", "  vrrp_strict"),
    ] {
        for (who, seen) in both(inst, global, 100, N, Duration::from_millis(500)) {
            eprintln!("{who} {name}: injected {:?}, ours {:?}", seen.injected, seen.ours);
            if seen.injected.len() != N {
                broken.push(format!("{who} {name}: the capture saw {} of {N} injected adverts", seen.injected.len()));
                continue;
            }
            let first = seen.injected[0];
            let before = seen.ours.iter().rev().find(|&&(o, _)| o < first).map(|&(o, _)| o);
            let gaps: Vec<f64> = seen.ours.windows(2).filter(|w| before.is_some_and(|b| w[0].0 >= b)).map(|w| w[1].0 - w[0].0).collect();
            if seen.answered() > 1 || gaps.iter().any(|g| (g - 1000.0).abs() > 100.0) {
                broken.push(format!("{who} with {name} answered a lower priority ({} answered; advert gaps {gaps:?} ms)", seen.answered()));
            }
            if !seen.held_after.iter().all(|&h| h) {
                broken.push(format!("{who} {name} gave up the VIP to a lower priority"));
            }
        }
    }
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}

#[test]
fn a_master_sends_one_advert_before_yielding_with_higher_prio_send_advert() {
    if skip_unless("a_master_sends_one_advert_before_yielding_with_higher_prio_send_advert", NEEDS) {
        return;
    }
    let mut broken = Vec::new();
    // (keywords, an advert before yielding, down_timer_adverts)
    let cases: [(&str, &str, &str, bool, u32); 3] = [
        ("defaults", "", "", false, 3),
        ("higher_prio_send_advert + down_timer_adverts 1", "  higher_prio_send_advert\n  down_timer_adverts 1", "", true, 1),
        ("vrrp_higher_prio_send_advert + vrrp_down_timer_adverts 2", "", "  vrrp_higher_prio_send_advert\n  vrrp_down_timer_adverts 2", true, 2),
    ];
    for (name, inst, global, answers, n) in cases {
        // One advert with priority 200; the master yields and, hearing nothing more, takes
        // over again N x 1 s + 414 ms later.
        let takeover = f64::from(n) * 1000.0 + SKEW_MS;
        for (who, seen) in both(inst, global, 200, 1, Duration::from_millis(takeover as u64 + 800)) {
            eprintln!("{who} {name}: injected {:?}, ours {:?}", seen.injected, seen.ours);
            let Some(&t) = seen.injected.first() else {
                broken.push(format!("{who} {name}: the capture missed the injected advert"));
                continue;
            };
            let after = seen.ours_after(t);
            let quick: Vec<f64> = after.iter().copied().filter(|&d| d <= ANSWER_MS).collect();
            if answers != (quick.len() == 1) || quick.len() > 1 {
                broken.push(format!("{who} {name}: adverts within {ANSWER_MS} ms of a higher priority: {quick:?}, expected {}", if answers { "one" } else { "none" }));
            }
            if seen.held_after.first() != Some(&false) {
                broken.push(format!("{who} {name}: still holds the VIP 300 ms after a higher priority"));
            }
            // The next advert is the takeover after Master_Down_Interval.
            match after.iter().copied().find(|&d| d > ANSWER_MS) {
                Some(d) if (d - takeover).abs() <= 150.0 => {}
                other => broken.push(format!("{who} {name}: advertised again after {other:?} ms, expected {takeover} ms (down_timer_adverts {n})")),
            }
        }
    }
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}
