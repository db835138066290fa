//! Failover benchmark (run by `scripts/bench-failover`, not by `cargo test`): in the namespace
//! lab, the master is killed (SIGKILL + link down) and the time until the backup holds the VIP
//! and until a client reaches it again is measured, for hav and keepalived as master and as
//! backup, with the same advert_int. Also prints each daemon's resident memory.
//!
//! The RFC's figure is read off the wire too: a raw socket in the client's namespace timestamps
//! every advert on the LAN, and the gap from the old master's last advert (priority 0 on
//! SIGTERM) to the new master's first is set against Master_Down_Interval (kill) or the skew
//! time (SIGTERM). Unlike the VIP time, it leaves out the kill and the `ip` polling.

use std::io::Read;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hav_tests::netns::{skip_unless, Lab, Need};
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
    /// Old master's last advert to new master's first, on the wire.
    wire_ms: Option<f64>,
}

/// Adverts seen on the LAN: (arrival, source, priority).
type Seen = Vec<(Instant, Ipv4Addr, u8)>;

/// A capture of the VRRP adverts on the lab's LAN, from the client's namespace.
struct Wire {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Seen>,
}

impl Wire {
    fn start(lab: &Lab) -> Option<Wire> {
        let sock = lab
            .client
            .enter(|| -> std::io::Result<socket2::Socket> {
                let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::RAW, Some(socket2::Protocol::from(112)))?;
                s.join_multicast_v4(&Ipv4Addr::new(224, 0, 0, 18), &Ipv4Addr::new(10, 0, 0, 100))?;
                s.set_read_timeout(Some(Duration::from_millis(20)))?;
                Ok(s)
            })
            .ok()?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut seen = Seen::new();
            let mut buf = [0u8; 1500];
            while !flag.load(Ordering::Relaxed) {
                let Ok(n) = (&sock).read(&mut buf) else { continue };
                let at = Instant::now();
                let ihl = usize::from(buf[0] & 0x0f) * 4;
                if n >= ihl + 8 {
                    seen.push((at, Ipv4Addr::new(buf[12], buf[13], buf[14], buf[15]), buf[ihl + 2]));
                }
            }
            seen
        });
        Some(Wire { stop, thread })
    }

    /// The gap in ms between `old`'s last advert and `new`'s first after it, once the event
    /// at `t0` happened.
    fn gap(self, t0: Instant, old: Ipv4Addr, new: Ipv4Addr) -> Option<f64> {
        self.stop.store(true, Ordering::Relaxed);
        let seen = self.thread.join().ok()?;
        let first_new = seen.iter().find(|(t, src, prio)| *t >= t0 && *src == new && *prio > 0)?.0;
        let last_old = seen.iter().filter(|(t, src, _)| *t < first_new && *src == old).map(|(t, _, _)| *t).max()?;
        Some((first_new - last_old).as_secs_f64() * 1000.0)
    }
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
    // The capture runs a while before the event, to see the old master's last adverts.
    let wire = Wire::start(&lab);
    std::thread::sleep(Duration::from_secs(2));
    rss.push((format!("{:?}", m.daemon), rss_kib(&lab.routers[0])));
    let t0 = Instant::now();
    match how {
        How::Kill => m.kill(),
        How::Term => m.signal(nix::sys::signal::Signal::SIGTERM),
    }
    poll_until(Duration::from_secs(15), || b.holds("10.0.0.250"))?;
    let vip_ms = t0.elapsed().as_secs_f64() * 1000.0;
    std::thread::sleep(Duration::from_millis(50));
    let wire_ms = wire.and_then(|w| w.gap(t0, Lab::router_v4(0), Lab::router_v4(1)));
    let _ = lab.client.ip(&["neigh", "flush", "dev", "eth0"]);
    wait_until(Duration::from_secs(15), || {
        lab.client.run("ping", &["-c1", "-W1", "10.0.0.250"]).map(|o| o.status.success()).unwrap_or(false)
    })?;
    Some(Sample { vip_ms, ping_ms: t0.elapsed().as_secs_f64() * 1000.0, wire_ms })
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[test]
#[ignore = "benchmark: run by scripts/bench-failover"]
fn failover_times() {
    if skip_unless("failover_times", &[Need::Root, Need::Keepalived]) {
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
        println!("{:<10} {:<24} {:>10} {:>10} {:>10} {:>12}   {:<34}", "event", "master -> backup", "median", "p99", "max", "client mean", "on the wire: median / p99 (over RFC)");
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
                let mut w: Vec<f64> = samples.iter().filter_map(|s| s.wire_ms).collect();
                w.sort_by(f64::total_cmp);
                let rfc = if how == How::Kill { mdi } else { skew };
                let wire = if w.is_empty() {
                    "no capture".to_string()
                } else {
                    let (m, p) = (pct(&w, 0.5), pct(&w, 0.99));
                    format!("{m:.1} / {p:.1} ms ({:+.1} / {:+.1} ms)", m - rfc, p - rfc)
                };
                println!(
                    "{ev:<10} {name:<24} {:>7.1} ms {:>7.1} ms {:>7.1} ms {:>9.1} ms   {wire}",
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
