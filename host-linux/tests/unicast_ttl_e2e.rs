//! `unicast_ttl` on the wire, hav beside Debian's keepalived in the namespace lab: the same
//! config (IPv4 and IPv6 instances to a unicast peer, with and without `unicast_ttl`, and one
//! multicast instance) runs under each daemon in a lab of its own, and the client captures the
//! adverts' TTL / hop limit. keepalived's semantics, which hav must match:
//!
//! - IPv4 unicast adverts leave with `unicast_ttl`, 255 without it;
//! - IPv6 unicast adverts leave with `unicast_ttl` as hop limit, and without it with the
//!   kernel's default hop limit (the interface's `hop_limit` sysctl; the lab sets 33 to tell
//!   it from 64 and 255);
//! - multicast adverts always leave with 255.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use hav_tests::capture::{Capture, Frame};
use hav_tests::netns::{skip_unless, Lab, Need};
use hav_tests::peers::{wait_until, workdir, Daemon, Node};

fn hav() -> Daemon {
    Daemon::Hav(env!("CARGO_BIN_EXE_hav-linux").into())
}

const CONF: &str = "global_defs {
  router_id TTL
  vrrp_garp_master_delay 0
}
vrrp_instance V4_TTL {
  interface eth0
  virtual_router_id 71
  priority 255
  advert_int 1
  unicast_src_ip 10.0.0.1
  unicast_peer {
    10.0.0.100
  }
  unicast_ttl 7
  virtual_ipaddress {
    10.0.0.171/32
  }
}
vrrp_instance V4_DEFAULT {
  interface eth0
  virtual_router_id 72
  priority 255
  advert_int 1
  unicast_src_ip 10.0.0.1
  unicast_peer {
    10.0.0.100
  }
  virtual_ipaddress {
    10.0.0.172/32
  }
}
vrrp_instance V6_TTL {
  interface eth0
  virtual_router_id 73
  version 3
  priority 255
  advert_int 1
  unicast_src_ip fd00::1
  unicast_peer {
    fd00::100
  }
  unicast_ttl 9
  virtual_ipaddress {
    fd00::173/64
  }
}
vrrp_instance V6_DEFAULT {
  interface eth0
  virtual_router_id 74
  version 3
  priority 255
  advert_int 1
  unicast_src_ip fd00::1
  unicast_peer {
    fd00::100
  }
  virtual_ipaddress {
    fd00::174/64
  }
}
vrrp_instance V4_MULTICAST {
  interface eth0
  virtual_router_id 75
  priority 255
  advert_int 1
  virtual_ipaddress {
    10.0.0.175/32
  }
}
";

/// The interface's default hop limit in the router namespace.
const HOP_LIMIT: &str = "33";

/// (VRID, IPv6, destination) of a captured VRRP advert and its TTL / hop limit.
fn advert(f: &Frame) -> Option<((u8, bool, IpAddr), u8)> {
    let d = &f.data;
    if d.len() < 14 {
        return None;
    }
    let ip = &d[14..];
    match u16::from_be_bytes([d[12], d[13]]) {
        0x0800 if ip.len() >= 20 && ip[9] == 112 => {
            let ihl = usize::from(ip[0] & 0x0f) * 4;
            let vrid = *ip.get(ihl + 1)?;
            let dst = IpAddr::from([ip[16], ip[17], ip[18], ip[19]]);
            Some(((vrid, false, dst), ip[8]))
        }
        0x86dd if ip.len() >= 42 && ip[6] == 112 => {
            let dst: [u8; 16] = ip[24..40].try_into().ok()?;
            Some(((ip[41], true, IpAddr::from(dst)), ip[7]))
        }
        _ => None,
    }
}

/// Runs the config under `daemon` and returns the TTLs seen per (VRID, IPv6, destination).
fn ttls(daemon: Daemon, who: &str) -> BTreeMap<(u8, bool, IpAddr), Vec<u8>> {
    let lab = Lab::new(1).expect("lab");
    let r = &lab.routers[0];
    r.sysctl("ipv6.conf.eth0.hop_limit", HOP_LIMIT).expect("hop_limit");
    let dir = workdir("uttl");
    let cap = Capture::start(&lab.client, "eth0", &["ip", "proto", "112", "or", "ip6", "proto", "112"], &dir, who).expect("tcpdump");
    let node = Node::start(r, daemon, CONF);
    let all = wait_until(Duration::from_secs(10), || {
        ["10.0.0.171", "10.0.0.172", "fd00::173", "fd00::174", "10.0.0.175"].iter().all(|v| node.holds(v))
    });
    assert!(all.is_some(), "{who}: not master of every instance\n{}", node.log());
    std::thread::sleep(Duration::from_millis(2_500));
    let frames = cap.stop().expect("capture");
    let log = node.log();
    drop(node);
    let mut seen: BTreeMap<_, Vec<u8>> = BTreeMap::new();
    for (k, ttl) in frames.iter().filter_map(advert) {
        let v = seen.entry(k).or_default();
        if !v.contains(&ttl) {
            v.push(ttl);
        }
    }
    eprintln!("{who}: {seen:?}");
    assert!(!seen.is_empty(), "{who}: no adverts captured\n{log}");
    let _ = std::fs::remove_dir_all(&dir);
    seen
}

#[test]
fn unicast_adverts_leave_with_unicast_ttl_as_from_keepalived() {
    if skip_unless("unicast_adverts_leave_with_unicast_ttl_as_from_keepalived", &[Need::Root, Need::Keepalived, Need::Tcpdump]) {
        return;
    }
    let (k, h) = std::thread::scope(|s| {
        let k = s.spawn(|| ttls(Daemon::Keepalived, "keepalived"));
        let h = s.spawn(|| ttls(hav(), "hav"));
        (k.join().unwrap_or_else(|e| std::panic::resume_unwind(e)), h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
    });
    let hop: u8 = HOP_LIMIT.parse().expect("number");
    let peer4: IpAddr = "10.0.0.100".parse().expect("ip");
    let peer6: IpAddr = "fd00::100".parse().expect("ip");
    let group: IpAddr = "224.0.0.18".parse().expect("ip");
    let expected: BTreeMap<(u8, bool, IpAddr), Vec<u8>> = [
        ((71, false, peer4), vec![7]),
        ((72, false, peer4), vec![255]),
        ((73, true, peer6), vec![9]),
        ((74, true, peer6), vec![hop]),
        ((75, false, group), vec![255]),
    ]
    .into_iter()
    .collect();
    assert_eq!(k, expected, "keepalived's adverts are not what this test takes as its semantics");
    assert_eq!(h, expected, "hav's adverts differ from keepalived's");
}
