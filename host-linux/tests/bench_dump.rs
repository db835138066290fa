//! keepalived's state dumps under load (run by `scripts/bench-dump`, not by `cargo test`): two
//! routers run N VRRPv3 instances each (250 per veth link between them, a VRID per instance on
//! its link), master at priority 200 and backup at 100, hav on both and then keepalived on
//! both with the same config. Measured on the master, for each daemon:
//!
//! - how long a dump takes to be complete after its signal (the data dump of SIGUSR1, the stats
//!   of SIGUSR2, the JSON of SIGRTMIN+2): the file is removed, the signal sent, and the file
//!   polled every millisecond until it is there and no process holds it open (keepalived
//!   renames its file into place before writing it); the median and the worst of several;
//! - the largest gap between two adverts of one VRID on the wire (tcpdump on the first link),
//!   over a quiet window and over a window in which SIGUSR1 is sent every `HAV_BENCH_EVERY_MS`
//!   milliseconds: a daemon that renders its dump on the thread that sends the adverts shows the
//!   render time in the second number;
//! - the state changes in both windows (there should be none);
//! - start-up: from spawning the master to READY=1 on the NOTIFY_SOCKET the bench listens on
//!   (as systemd hears a Type=notify unit; for keepalived, which says READY=1 only under
//!   systemd, to the last "Entering BACKUP STATE (init)" of its log) (the
//!   `ready ms` column).
//!
//! Environment: `HAV_BENCH_N` instances (1000), `HAV_BENCH_ADVERT` advert_int in seconds (1),
//! `HAV_BENCH_SECS` length of each window (10), `HAV_BENCH_EVERY_MS` (200), `HAV_BENCH_DAEMONS`
//! (`hav,keepalived`), `HAV_BENCH_CHECK=1` fails the run when hav's dump does not appear
//! within 5 s, hav never says READY=1, hav's largest gap while dumping exceeds three advert intervals (a backup would
//! have taken over) or hav's master changes state while dumping. A backup's own changes are
//! printed, not checked: on a loaded machine a backup that is not scheduled for longer than its
//! Master_Down_Interval takes over whatever the master does. Daemon logs go to files; those of a
//! run with state changes are kept and their place printed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hav_tests::capture::{now_us, Capture};
use hav_tests::netns::{skip_unless, Lab, Need, Netns};
use hav_tests::peers::{wait_until, workdir, Daemon, Node};

const PER_LINK: usize = 250;

fn env<T: std::str::FromStr>(k: &str, d: T) -> T {
    std::env::var(k).ok().and_then(|v| v.parse().ok()).unwrap_or(d)
}

fn config(n: usize, prio: u8, advert: &str) -> String {
    let mut s = String::from("global_defs {\n  router_id dump\n  vrrp_garp_master_delay 0\n  vrrp_garp_master_repeat 1\n}\n");
    for i in 0..n {
        let link = i / PER_LINK;
        let vrid = i % PER_LINK + 1;
        s.push_str(&format!(
            "vrrp_instance D{i} {{\n  interface mv{link}\n  virtual_router_id {vrid}\n  version 3\n  priority {prio}\n  \
             advert_int {advert}\n  virtual_ipaddress {{\n    10.{}.{}.{}/32\n  }}\n}}\n",
            100 + link,
            vrid / 250,
            vrid % 250 + 1
        ));
    }
    s
}

fn vip_count(ns: &Netns) -> usize {
    ns.ip(&["-o", "-4", "addr", "show"]).map(|o| o.lines().filter(|l| l.contains("/32")).count()).unwrap_or(0)
}

fn transitions(node: &Node<'_>) -> usize {
    let log = node.log();
    match node.daemon {
        Daemon::Hav(_) => log.lines().filter(|l| l.contains("state change")).count(),
        Daemon::Keepalived => log.lines().filter(|l| l.contains("Entering")).count(),
    }
}

/// Whether a process of `pids` has `path` open.
fn open_by(pids: &[String], path: &Path) -> bool {
    pids.iter().any(|p| {
        std::fs::read_dir(format!("/proc/{p}/fd"))
            .map(|fds| fds.flatten().any(|fd| std::fs::read_link(fd.path()).is_ok_and(|l| l == path)))
            .unwrap_or(false)
    })
}

/// Removes `file` from `dir`, sends `sig` and waits for the file to be complete: how long it
/// took, and its size; `None` when it was not complete within `limit`. keepalived renames its
/// new file into place when it opens it and writes it afterwards, so the file is complete once
/// no process of the namespace holds it open; hav renames a file already written and closed.
fn appear(node: &Node<'_>, dir: &Path, file: &str, sig: i32, limit: Duration) -> Option<(Duration, u64)> {
    let p = dir.join(file);
    let _ = std::fs::remove_file(&p);
    let pids: Vec<String> = hav_tests::netns::ip(&["netns", "pids", node.ns.name()])
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    let t0 = Instant::now();
    node.signal_raw(sig);
    loop {
        if p.exists() && !open_by(&pids, &p) {
            let size = std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
            return Some((t0.elapsed(), size));
        }
        if t0.elapsed() > limit {
            return None;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The largest gap between two adverts of one VRID sent by `src`, over a window of `secs`
/// seconds during which `during` runs (every `every`, when given).
fn largest_gap(
    ns: &Netns,
    dir: &Path,
    name: &str,
    secs: u64,
    every: Option<Duration>,
    mut during: impl FnMut(),
) -> (Duration, usize) {
    let cap = Capture::start(ns, "mv0", &["ip", "proto", "112", "and", "src", "host", "10.100.255.1"], dir, name).expect("tcpdump");
    let (t0, start_us) = (Instant::now(), now_us());
    while t0.elapsed() < Duration::from_secs(secs) {
        match every {
            Some(e) => {
                during();
                std::thread::sleep(e);
            }
            None => std::thread::sleep(Duration::from_millis(100)),
        }
    }
    let frames = cap.stop().expect("capture");
    let mut last: HashMap<u8, u64> = HashMap::new();
    let mut worst = 0u64;
    let mut adverts = 0;
    for f in frames.iter().filter(|f| f.ts_us >= start_us) {
        let Some(v) = f.vrrp_v4() else { continue };
        adverts += 1;
        if let Some(prev) = last.insert(v.vrid, f.ts_us) {
            worst = worst.max(f.ts_us.saturating_sub(prev));
        }
    }
    (Duration::from_micros(worst), adverts)
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

struct Row {
    daemon: &'static str,
    /// From the master's start to READY=1 on its NOTIFY_SOCKET (`None`: never said).
    ready: Option<Duration>,
    appear: Vec<Option<(Duration, u64)>>,
    stats: Option<Duration>,
    json: Option<Duration>,
    gap_quiet: Duration,
    gap_dumping: Duration,
    dumps_sent: usize,
    /// State changes (master's, backup's) in the quiet window and in the dumping window.
    changes: [(usize, usize); 2],
}

fn run(lab: &Lab, daemon: Daemon, n: usize, advert: &str, secs: u64, every: Duration) -> Row {
    let name = match daemon {
        Daemon::Hav(_) => "hav",
        Daemon::Keepalived => "keepalived",
    };
    let dir = workdir(&format!("bd{name}"));
    let t = dir.to_str().expect("utf-8 path").to_owned();
    // The master as a Type=notify unit starts it: READY=1 on a socket the bench listens on.
    let notify_path = dir.join("notify.sock");
    let listener = hav_linux::daemon::sdnotify::Listener::bind_path(&notify_path).expect("notify socket");
    let t0 = Instant::now();
    let m = Node::start_env(&lab.routers[0], daemon.clone(), &config(n, 200, advert), &[], &[("TMPDIR", &t), ("NOTIFY_SOCKET", listener.address())]);
    let mut ready = None;
    let limit = Duration::from_secs(env("HAV_BENCH_CONVERGE", 180));
    match daemon {
        Daemon::Hav(_) => {
            while ready.is_none() && t0.elapsed() < limit {
                if let Some(msg) = listener.recv_timeout(Duration::from_millis(500)).expect("notify recv") {
                    if msg.iter().any(|(k, v)| k == "READY" && v == "1") {
                        ready = Some(t0.elapsed());
                    }
                }
            }
        }
        // Debian's keepalived says READY=1 only when systemd is its parent: its ready point
        // here is its log's last "Entering BACKUP STATE (init)", every instance started.
        Daemon::Keepalived => {
            let started = || m.log().matches("Entering BACKUP STATE (init)").count() >= n;
            ready = wait_until(limit, started).map(|_| t0.elapsed());
        }
    }
    let b = Node::start(&lab.routers[1], daemon.clone(), &config(n, 100, advert));
    let converged = wait_until(Duration::from_secs(env("HAV_BENCH_CONVERGE", 180)), || {
        vip_count(&lab.routers[0]) == n && vip_count(&lab.routers[1]) == 0
    });
    assert!(converged.is_some(), "{name}: the masters did not settle ({}/{n})", vip_count(&lab.routers[0]));
    std::thread::sleep(Duration::from_secs(2));
    let limit = Duration::from_secs(30);
    let appear_runs: Vec<_> = (0..5)
        .map(|_| {
            let r = appear(&m, &dir, "keepalived.data", libc::SIGUSR1, limit);
            std::thread::sleep(Duration::from_millis(200));
            r
        })
        .collect();
    let stats = appear(&m, &dir, "keepalived.stats", libc::SIGUSR2, limit).map(|r| r.0);
    let json = appear(&m, &dir, "keepalived.json", libc::SIGRTMIN() + 2, limit).map(|r| r.0);
    let counts = || (transitions(&m), transitions(&b));
    let c0 = counts();
    let (gap_quiet, _) = largest_gap(&lab.routers[0], &dir, "quiet", secs, None, || {});
    let c1 = counts();
    let mut dumps_sent = 0;
    let (gap_dumping, _) = largest_gap(&lab.routers[0], &dir, "dumping", secs, Some(every), || {
        m.signal_raw(libc::SIGUSR1);
        dumps_sent += 1;
    });
    std::thread::sleep(Duration::from_secs(1));
    let c2 = counts();
    let changes = [(c1.0 - c0.0, c1.1 - c0.1), (c2.0 - c1.0, c2.1 - c1.1)];
    if changes.iter().any(|c| *c != (0, 0)) {
        let keep = std::env::temp_dir().join(format!("hav-bench-dump-{name}-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&keep);
        let _ = std::fs::copy(m.log_path(), keep.join("master.log"));
        let _ = std::fs::copy(b.log_path(), keep.join("backup.log"));
        eprintln!("{name}: state changes (master, backup) quiet {:?}, dumping {:?}; logs in {}", changes[0], changes[1], keep.display());
    }
    drop(m);
    drop(b);
    std::thread::sleep(Duration::from_secs(1));
    let _ = std::fs::remove_dir_all(&dir);
    Row { daemon: name, ready, appear: appear_runs, stats, json, gap_quiet, gap_dumping, dumps_sent, changes }
}

#[test]
#[ignore = "benchmark: run by scripts/bench-dump"]
fn dump_under_load() {
    if skip_unless("dump_under_load", &[Need::Root, Need::Keepalived, Need::Tcpdump]) {
        return;
    }
    let n: usize = env("HAV_BENCH_N", 1000);
    let advert: String = env("HAV_BENCH_ADVERT", "1".to_owned());
    let secs: u64 = env("HAV_BENCH_SECS", 10);
    let every = Duration::from_millis(env("HAV_BENCH_EVERY_MS", 200));
    let check = env("HAV_BENCH_CHECK", 0u8) == 1;
    let daemons: Vec<String> = env("HAV_BENCH_DAEMONS", "hav,keepalived".to_owned()).split(',').map(str::to_owned).collect();
    let hav = Daemon::Hav(PathBuf::from(env!("CARGO_BIN_EXE_hav-linux")));

    let lab = Lab::new(2).expect("lab");
    let mut pairs = Vec::new();
    for l in 0..n.div_ceil(PER_LINK) {
        let name = format!("mv{l}");
        pairs.push(hav_tests::netns::veth(&lab.routers[0], &name, &lab.routers[1], &name).expect("veth"));
        for (r, ns) in lab.routers.iter().enumerate() {
            ns.add_addr(&name, &format!("10.{}.255.{}/24", 100 + l, r + 1)).expect("addr");
            ns.link_up(&name).expect("up");
        }
    }
    println!(
        "\n{n} instances, VRRPv3 advert_int {advert} s, master (200) and backup (100); dumps of the master; \
         advert gaps on mv0 ({} VRIDs) over {secs} s quiet and {secs} s with SIGUSR1 every {} ms",
        n.min(PER_LINK),
        every.as_millis()
    );
    println!(
        "{:<11} {:>10} {:>20} {:>9} {:>10} {:>10} {:>15} {:>17} {:>15}",
        "daemon",
        "ready ms",
        "SIGUSR1 data ms",
        "size KB",
        "stats ms",
        "json ms",
        "max gap quiet",
        "max gap dumping",
        "changes q/d"
    );
    let mut rows = Vec::new();
    for d in &daemons {
        let daemon = match d.as_str() {
            "hav" => hav.clone(),
            "keepalived" => Daemon::Keepalived,
            other => panic!("HAV_BENCH_DAEMONS: unknown daemon {other}"),
        };
        let r = run(&lab, daemon, n, &advert, secs, every);
        let mut times: Vec<Duration> = r.appear.iter().flatten().map(|x| x.0).collect();
        times.sort();
        let appear = match (times.get(times.len() / 2), times.last()) {
            (Some(med), Some(max)) if times.len() == r.appear.len() => format!("{} (max {})", ms(*med), ms(*max)),
            _ => format!("{}/{} written", times.len(), r.appear.len()),
        };
        let size = r.appear.iter().flatten().map(|x| x.1).max().map_or("-".into(), |b| format!("{:.0}", b as f64 / 1024.0));
        let opt = |d: Option<Duration>| d.map_or("none".into(), ms);
        println!(
            "{:<11} {:>10} {appear:>20} {size:>9} {:>10} {:>10} {:>12} ms {:>14} ms {:>15}   ({} SIGUSR1 sent)",
            r.daemon,
            opt(r.ready),
            opt(r.stats),
            opt(r.json),
            ms(r.gap_quiet),
            ms(r.gap_dumping),
            format!("{}/{}", r.changes[0].0 + r.changes[0].1, r.changes[1].0 + r.changes[1].1),
            r.dumps_sent
        );
        rows.push(r);
    }
    if check {
        let adv = Duration::from_secs_f64(advert.parse::<f64>().expect("HAV_BENCH_ADVERT"));
        for r in rows.iter().filter(|r| r.daemon == "hav") {
            assert!(r.ready.is_some(), "hav never sent READY=1 with {n} instances");
            assert!(
                r.appear.iter().all(|a| a.is_some_and(|(t, _)| t < Duration::from_secs(5))),
                "hav's data dump did not appear within 5 s: {:?}",
                r.appear
            );
            assert!(r.gap_dumping < adv * 3, "hav's adverts stopped for {} ms while dumping", ms(r.gap_dumping));
            assert_eq!(r.changes[1].0, 0, "hav's master changed state while dumping");
        }
    }
}
