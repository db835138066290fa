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
    vip_ms: u128,
    ping_ms: u128,
}

fn one(master: &Daemon, backup: &Daemon, advert: &str, rss: &mut Vec<(String, u64)>) -> Option<Sample> {
    let lab = Lab::new(2).ok()?;
    let conf = |p| instance_conf("VI_B", 71, p, 3, advert, &["10.0.0.250/24"], "");
    let mut m = Node::start(&lab.routers[0], master.clone(), &conf(150));
    let b = Node::start(&lab.routers[1], backup.clone(), &conf(100));
    wait_until(Duration::from_secs(15), || m.holds("10.0.0.250") && !b.holds("10.0.0.250"))?;
    std::thread::sleep(Duration::from_secs(2));
    rss.push((format!("{:?}", m.daemon), rss_kib(&lab.routers[0])));
    let t0 = Instant::now();
    m.kill();
    wait_until(Duration::from_secs(15), || b.holds("10.0.0.250"))?;
    let vip_ms = t0.elapsed().as_millis();
    let _ = lab.client.ip(&["neigh", "flush", "dev", "eth0"]);
    wait_until(Duration::from_secs(15), || {
        lab.client.run("ping", &["-c1", "-W1", "10.0.0.250"]).map(|o| o.status.success()).unwrap_or(false)
    })?;
    Some(Sample { vip_ms, ping_ms: t0.elapsed().as_millis() })
}

#[test]
#[ignore = "benchmark: run by scripts/bench-failover"]
fn failover_times() {
    if skip_unless_root("failover_times") {
        return;
    }
    let rounds: usize = std::env::var("HAV_BENCH_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(3);
    let advert = std::env::var("HAV_BENCH_ADVERT").unwrap_or_else(|_| "1".into());
    let hav = Daemon::Hav(PathBuf::from(env!("CARGO_BIN_EXE_hav-linux")));
    let ka = Daemon::Keepalived;
    let mut rss = Vec::new();
    println!("failover after SIGKILL + link down, VRRPv3, advert_int {advert} s, {rounds} rounds each");
    println!("expected: 3 x advert + skew (skew = (256 - 100) / 256 x advert) = {:.0} ms", advert.parse::<f64>().unwrap_or(1.0) * (3.0 + 156.0 / 256.0) * 1000.0);
    println!("{:<24} {:>10} {:>10} {:>10} {:>12}", "master -> backup", "vip min", "vip mean", "vip max", "client mean");
    for (name, m, b) in [("hav -> hav", &hav, &hav), ("keepalived -> keepalived", &ka, &ka), ("hav -> keepalived", &hav, &ka), ("keepalived -> hav", &ka, &hav)] {
        let samples: Vec<Sample> = (0..rounds).filter_map(|_| one(m, b, &advert, &mut rss)).collect();
        if samples.is_empty() {
            println!("{name:<24} failed");
            continue;
        }
        let v: Vec<u128> = samples.iter().map(|s| s.vip_ms).collect();
        let mean = v.iter().sum::<u128>() / v.len() as u128;
        let pmean = samples.iter().map(|s| s.ping_ms).sum::<u128>() / samples.len() as u128;
        println!(
            "{name:<24} {:>8} ms {:>7} ms {:>7} ms {:>9} ms",
            v.iter().min().unwrap_or(&0),
            mean,
            v.iter().max().unwrap_or(&0),
            pmean
        );
    }
    for who in ["Hav", "Keepalived"] {
        let r: Vec<u64> = rss.iter().filter(|(d, _)| d.starts_with(who)).map(|(_, k)| *k).collect();
        if !r.is_empty() {
            println!("resident memory of the {who} master (all its processes): {} KiB", r.iter().sum::<u64>() / r.len() as u64);
        }
    }
}
