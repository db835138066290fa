//! Many-instance benchmark (run by `scripts/bench-scale`, not by `cargo test`): two routers run
//! N VRRPv3 instances each (250 per interface, on veth links between them, one per 250 VRIDs), hav and
//! then keepalived with the same config. Printed for each: the time from start until every
//! instance has its rightful master, the CPU of the master and of the backup (share of one core)
//! over the measured window, and the state changes in that window (spurious: all of them).
//! Daemon logs go to files, never to pipes.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use hav_tests::netns::{skip_unless, Lab, Need, Netns};
use hav_tests::peers::{wait_until, Daemon, Node};

const PER_LINK: usize = 250;

fn env<T: std::str::FromStr>(k: &str, d: T) -> T {
    std::env::var(k).ok().and_then(|v| v.parse().ok()).unwrap_or(d)
}

fn config(n: usize, prio: u8, advert: &str) -> String {
    let mut s = String::from("global_defs {\n  router_id scale\n  vrrp_garp_master_delay 0\n  vrrp_garp_master_repeat 1\n}\n");
    for i in 0..n {
        let link = i / PER_LINK;
        let vrid = i % PER_LINK + 1;
        s.push_str(&format!(
            "vrrp_instance I{i} {{\n  interface mv{link}\n  virtual_router_id {vrid}\n  version 3\n  priority {prio}\n  advert_int {advert}\n  virtual_ipaddress {{\n    10.{}.{}.{}/32\n  }}\n}}\n",
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

/// CPU ticks (utime + stime) of every process in `ns` except `ip` itself.
fn cpu_ticks(ns: &Netns) -> u64 {
    let pids = hav_tests::netns::ip(&["netns", "pids", ns.name()]).unwrap_or_default();
    pids.split_whitespace()
        .filter_map(|p| std::fs::read_to_string(format!("/proc/{p}/stat")).ok())
        .filter_map(|s| {
            let rest = s.rsplit(')').next()?.split_whitespace().collect::<Vec<_>>();
            Some(rest.get(11)?.parse::<u64>().ok()? + rest.get(12)?.parse::<u64>().ok()?)
        })
        .sum()
}

fn transitions(node: &Node<'_>) -> usize {
    let log = node.log();
    match node.daemon {
        Daemon::Hav(_) => log.lines().filter(|l| l.contains("state change")).count(),
        Daemon::Keepalived => log.lines().filter(|l| l.contains("Entering")).count(),
    }
}

fn run(lab: &Lab, daemon: Daemon, n: usize, advert: &str, secs: u64) -> String {
    let t0 = Instant::now();
    let m = Node::start(&lab.routers[0], daemon.clone(), &config(n, 200, advert));
    let b = Node::start(&lab.routers[1], daemon.clone(), &config(n, 100, advert));
    let conv = wait_until(Duration::from_secs(env("HAV_BENCH_CONVERGE", 180)), || vip_count(&lab.routers[0]) == n && vip_count(&lab.routers[1]) == 0);
    let conv = match conv {
        Some(_) => format!("{:>8.2} s", t0.elapsed().as_secs_f64()),
        None => {
            let log = m.log();
            let tail: Vec<&str> = log.lines().rev().take(15).collect();
            eprintln!("--- master log tail:\n{}", tail.into_iter().rev().collect::<Vec<_>>().join("\n"));
            format!("no ({}/{} after 180 s)", vip_count(&lab.routers[0]), n)
        }
    };
    std::thread::sleep(Duration::from_secs(2));
    let (tm0, tb0, tr0) = (cpu_ticks(&lab.routers[0]), cpu_ticks(&lab.routers[1]), transitions(&m) + transitions(&b));
    let w0 = Instant::now();
    std::thread::sleep(Duration::from_secs(secs));
    let wall = w0.elapsed().as_secs_f64();
    let hz = 100.0; // USER_HZ
    let cm = (cpu_ticks(&lab.routers[0]) - tm0) as f64 / hz / wall * 100.0;
    let cb = (cpu_ticks(&lab.routers[1]) - tb0) as f64 / hz / wall * 100.0;
    let spurious = transitions(&m) + transitions(&b) - tr0;
    let right = vip_count(&lab.routers[0]) == n && vip_count(&lab.routers[1]) == 0;
    let name = match daemon {
        Daemon::Hav(_) => "hav",
        Daemon::Keepalived => "keepalived",
    };
    drop(m);
    drop(b);
    std::thread::sleep(Duration::from_secs(1));
    format!("{name:<11} {conv:>22} {cm:>9.1}% {cb:>9.1}% {spurious:>9} {}", if right { "" } else { "  (masters wrong at the end)" })
}

#[test]
#[ignore = "benchmark: run by scripts/bench-scale"]
fn many_instances() {
    if skip_unless("many_instances", &[Need::Root, Need::Keepalived]) {
        return;
    }
    let secs: u64 = env("HAV_BENCH_SECS", 30);
    let cases: Vec<(usize, String)> = match std::env::var("HAV_BENCH_CASES") {
        Ok(v) => v.split(',').filter_map(|c| c.split_once('x')).filter_map(|(n, a)| Some((n.parse().ok()?, a.to_owned()))).collect(),
        Err(_) => vec![(1000, "0.1".into()), (200, "0.01".into())],
    };
    // HAV_BENCH_DAEMONS=hav runs hav alone (when profiling it).
    let daemons: Vec<String> = std::env::var("HAV_BENCH_DAEMONS").unwrap_or_else(|_| "hav,keepalived".into()).split(',').map(str::to_owned).collect();
    let hav = Daemon::Hav(PathBuf::from(env!("CARGO_BIN_EXE_hav-linux")));
    for (n, advert) in cases {
        let lab = Lab::new(2).expect("lab");
        let links = n.div_ceil(PER_LINK);
        // One L2 segment (a veth pair between the routers) per 250 VRIDs: a VRID is unique per LAN.
        let mut pairs = Vec::new();
        for l in 0..links {
            let name = format!("mv{l}");
            pairs.push(hav_tests::netns::veth(&lab.routers[0], &name, &lab.routers[1], &name).expect("veth"));
            for (r, ns) in lab.routers.iter().enumerate() {
                ns.add_addr(&name, &format!("10.{}.255.{}/24", 100 + l, r + 1)).expect("addr");
                ns.link_up(&name).expect("up");
            }
        }
        println!("\n{n} instances, VRRPv3 advert_int {advert} s, two routers (priority 200 / 100), {secs} s measured");
        println!("{:<11} {:>22} {:>10} {:>10} {:>9}", "daemon", "all masters right after", "cpu master", "cpu backup", "changes");
        if daemons.iter().any(|d| d == "hav") {
            println!("{}", run(&lab, hav.clone(), n, &advert, secs));
        }
        if daemons.iter().any(|d| d == "keepalived") {
            println!("{}", run(&lab, Daemon::Keepalived, n, &advert, secs));
        }
    }
}
