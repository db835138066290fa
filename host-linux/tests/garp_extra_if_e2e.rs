//! `garp_extra_if` / `vrrp_garp_extra_if` on the wire, hav beside Debian's keepalived in the
//! namespace lab. A master instance on `eth0` holds one VIP there and one on a second
//! interface (`eth1`, a veth pair to the client). With `garp_extra_if all 2` (or the global
//! `vrrp_garp_extra_if all 2`), after the burst of becoming master, both daemons send one
//! gratuitous ARP for the VIP on `eth1` about every 2 s (keepalived checks the interval when it
//! sends an advert, so its rounds come 2 to 3 s apart), and none periodically on `eth0`, the
//! instance's own interface. Without the keyword, or without `all` (keepalived then sends on
//! VMAC interfaces only), neither sends any after the burst.

use std::net::Ipv4Addr;
use std::time::Duration;

use hav_tests::capture::{Capture, Frame};
use hav_tests::netns::{skip_unless, veth, Lab, Need};
use hav_tests::peers::{instance_conf, wait_until, workdir, Daemon, Node};

fn hav() -> Daemon {
    Daemon::Hav(env!("CARGO_BIN_EXE_hav-linux").into())
}

const OWN_VIP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 230);
const EXTRA_VIP: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 50);
/// How long the wire is watched after the VIPs appear.
const WATCH: Duration = Duration::from_millis(7_600);

/// Times (ms after the first gratuitous ARP for `vip`) of the gratuitous ARPs for `vip`.
fn garps(frames: &[Frame], vip: Ipv4Addr) -> Vec<f64> {
    let ts: Vec<u64> = frames.iter().filter(|f| f.gratuitous_arp().is_some_and(|(_, ip)| ip == vip)).map(|f| f.ts_us).collect();
    let t0 = ts.first().copied().unwrap_or(0);
    ts.iter().map(|t| (t - t0) as f64 / 1e3).collect()
}

/// The gratuitous ARPs after the burst of becoming master (which lasts a few ms).
fn periodic(times: &[f64]) -> Vec<f64> {
    times.iter().copied().filter(|&t| t > 500.0).collect()
}

/// Runs `daemon` with `instance_extra` in the instance and `global_extra` in global_defs;
/// returns the gratuitous ARP times for the VIP on eth0 and the one on eth1.
fn run(daemon: Daemon, who: &str, instance_extra: &str, global_extra: &str) -> Seen {
    let lab = Lab::new(1).expect("lab");
    let r = &lab.routers[0];
    let _link = veth(r, "eth1", &lab.client, "x1").expect("veth");
    r.add_addr("eth1", "10.0.1.1/24").expect("addr");
    let dir = workdir("gxif");
    let conf = instance_conf("VI_X", 70, 255, 2, "1", &["10.0.0.230/24", "10.0.1.50/24 dev eth1"], instance_extra)
        .replace("global_defs {\n", &format!("global_defs {{\n{global_extra}\n"));
    let own = Capture::start(&lab.client, "eth0", &["arp"], &dir, &format!("{who}-eth0")).expect("tcpdump");
    let extra = Capture::start(&lab.client, "x1", &["arp"], &dir, &format!("{who}-x1")).expect("tcpdump");
    let node = Node::start(r, daemon, &conf);
    let held = wait_until(Duration::from_secs(8), || node.holds(&OWN_VIP.to_string()) && node.holds(&EXTRA_VIP.to_string()));
    assert!(held.is_some(), "{who}: never master\n{}", node.log());
    std::thread::sleep(WATCH);
    let log = node.log();
    drop(node);
    let (own, extra) = (own.stop().expect("capture"), extra.stop().expect("capture"));
    let _ = std::fs::remove_dir_all(&dir);
    let seen = (garps(&own, OWN_VIP), garps(&extra, EXTRA_VIP));
    eprintln!("{who} [{instance_extra}|{global_extra}]: eth0 {:?}, eth1 {:?}", seen.0, seen.1);
    assert!(!seen.0.is_empty() && !seen.1.is_empty(), "{who}: no burst on becoming master\n{log}");
    seen
}

/// What one daemon sent: gratuitous ARP times on eth0 and on eth1.
type Seen = (Vec<f64>, Vec<f64>);

fn both(instance_extra: &str, global_extra: &str) -> [(&'static str, Seen); 2] {
    std::thread::scope(|s| {
        let k = s.spawn(|| run(Daemon::Keepalived, "keepalived", instance_extra, global_extra));
        let h = s.spawn(|| run(hav(), "hav", instance_extra, global_extra));
        [("keepalived", k.join().unwrap_or_else(|e| std::panic::resume_unwind(e))), ("hav", h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))]
    })
}

#[test]
fn garp_extra_if_refreshes_the_other_interfaces_as_keepalived_does() {
    if skip_unless("garp_extra_if_refreshes_the_other_interfaces_as_keepalived_does", &[Need::Root, Need::Keepalived, Need::Tcpdump]) {
        return;
    }
    let mut broken = Vec::new();
    for (inst, global) in [("  garp_extra_if all 2", ""), ("", "  vrrp_garp_extra_if all 2")] {
        for (who, (own, extra)) in both(inst, global) {
            let p = periodic(&extra);
            let gaps: Vec<f64> = std::iter::once(p.first().copied().unwrap_or(0.0)).chain(p.windows(2).map(|w| w[1] - w[0])).collect();
            if p.len() < 2 || gaps.iter().any(|g| !(1_900.0..=3_150.0).contains(g)) {
                broken.push(format!("{who} [{inst}{global}]: eth1 rounds at {p:?} ms (gaps {gaps:?}), expected one every 2-3 s"));
            }
            if !periodic(&own).is_empty() {
                broken.push(format!("{who} [{inst}{global}]: periodic gratuitous ARP on the instance's own interface: {own:?}"));
            }
        }
    }
    for (inst, global) in [("", ""), ("  garp_extra_if 2", "")] {
        for (who, (own, extra)) in both(inst, global) {
            if !periodic(&extra).is_empty() || !periodic(&own).is_empty() {
                broken.push(format!("{who} [{inst}{global}]: gratuitous ARP after the burst: eth0 {own:?}, eth1 {extra:?}"));
            }
        }
    }
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}
