//! Failover benchmark (run by `scripts/bench-failover`, not by `cargo test`): in the namespace
//! lab, the master is killed (SIGKILL + link down) and the time until the backup holds the VIP
//! and until a client reaches it again is measured, for hav and keepalived as master and as
//! backup, with the same advert_int. Also prints each daemon's resident memory.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use hav_tests::netns::{skip_unless_root, Lab};
use hav_tests::peers::{instance_conf, wait_until, Daemon, Node};

fn rss_kib(ns: &hav_tests::netns::Netns) -> u64 {
    // Every process in the router's namespace belongs to the daemon under test.
    let pids = hav_tests::netns::ip(&["netns", "pids", ns.name()]).unwrap_or_default();
    pids.split_whitespace()
        .filter_map(|p| std::fs::read_to_string(format!("/proc/{p}/status")).ok())
        .filter(|s| !s.contains("Name:\tip\n"))
        .filter_map(|s| s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok()))
        .sum()
}

struct Sample {
    vip_ms: f64,
    ping_ms: f64,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum How {
    /// SIGKILL plus link down.
    Kill,
    /// SIGTERM: the master advertises priority 0.
    Term,
}

/// Polls `cond` as fast as `ip` answers (a few ms), for sub-10 ms adverts.
fn poll_until(limit: Duration, mut cond: impl FnMut() -> bool) -> Option<Duration> {
    let t0 = Instant::now();
    while t0.elapsed() < limit {
        if cond() {
            return Some(t0.elapsed());
        }
    }
    None
}

fn one(master: &Daemon, backup: &Daemon, version: u8, advert: &str, how: How, rss: &mut Vec<(String, u64)>) -> Option<Sample> {
    let lab = Lab::new(2).ok()?;
    let conf = |p| instance_conf("VI_B", 71, p, version, advert, &["10.0.0.250/24"], "");
    let mut m = Node::start(&lab.routers[0], master.clone(), &conf(150));
    let b = Node::start(&lab.routers[1], backup.clone(), &conf(100));
    wait_until(Duration::from_secs(15), || m.holds("10.0.0.250") && !b.holds("10.0.0.250"))?;
    std::thread::sleep(Duration::from_secs(2));
    rss.push((format!("{:?}", m.daemon), rss_kib(&lab.routers[0])));
    let t0 = Instant::now();
    match how {
        How::Kill => m.kill(),
        How::Term => m.signal(nix::sys::signal::Signal::SIGTERM),
    }
    poll_until(Duration::from_secs(15), || b.holds("10.0.0.250"))?;
    let vip_ms = t0.elapsed().as_secs_f64() * 1000.0;
    let _ = lab.client.ip(&["neigh", "flush", "dev", "eth0"]);
    wait_until(Duration::from_secs(15), || {
        lab.client.run("ping", &["-c1", "-W1", "10.0.0.250"]).map(|o| o.status.success()).unwrap_or(false)
    })?;
    Some(Sample { vip_ms, ping_ms: t0.elapsed().as_secs_f64() * 1000.0 })
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[test]
#[ignore = "benchmark: run by scripts/bench-failover"]
fn failover_times() {
    if skip_unless_root("failover_times") {
        return;
    }
    let rounds: usize = std::env::var("HAV_BENCH_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    let hav = Daemon::Hav(PathBuf::from(env!("CARGO_BIN_EXE_hav-linux")));
    let ka = Daemon::Keepalived;
    let mut rss = Vec::new();
    for (version, advert) in [(2u8, "1"), (3u8, "0.01")] {
        let a: f64 = advert.parse().unwrap_or(1.0);
        let mdi = a * (3.0 + 156.0 / 256.0) * 1000.0;
        let skew = a * 156.0 / 256.0 * 1000.0;
        println!("\nVRRPv{version}, advert_int {advert} s, {rounds} rounds each (VIP seen on the backup, polled every few ms)");
        println!("RFC: Master_Down_Interval = 3 x advert + skew = {mdi:.1} ms; skew = {skew:.1} ms");
        println!("{:<10} {:<24} {:>10} {:>10} {:>10} {:>12}", "event", "master -> backup", "median", "p99", "max", "client mean");
        for how in [How::Kill, How::Term] {
            for (name, m, b) in [("hav -> hav", &hav, &hav), ("keepalived -> keepalived", &ka, &ka), ("hav -> keepalived", &hav, &ka), ("keepalived -> hav", &ka, &hav)] {
                let samples: Vec<Sample> = (0..rounds).filter_map(|_| one(m, b, version, advert, how, &mut rss)).collect();
                let ev = if how == How::Kill { "kill -9" } else { "SIGTERM" };
                if samples.is_empty() {
                    println!("{ev:<10} {name:<24} failed");
                    continue;
                }
                let mut v: Vec<f64> = samples.iter().map(|s| s.vip_ms).collect();
                v.sort_by(f64::total_cmp);
                let pmean = samples.iter().map(|s| s.ping_ms).sum::<f64>() / samples.len() as f64;
                println!(
                    "{ev:<10} {name:<24} {:>7.1} ms {:>7.1} ms {:>7.1} ms {:>9.1} ms",
                    pct(&v, 0.5),
                    pct(&v, 0.99),
                    v[v.len() - 1],
                    pmean
                );
            }
        }
    }
    for who in ["Hav", "Keepalived"] {
        let r: Vec<u64> = rss.iter().filter(|(d, _)| d.starts_with(who)).map(|(_, k)| *k).collect();
        if !r.is_empty() {
            println!("resident memory of the {who} master (all its processes): {} KiB", r.iter().sum::<u64>() / r.len() as u64);
        }
    }
}
