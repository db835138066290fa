//! hav-linux's `net` module against the real kernel, in network namespaces:
//! two namespaces `a` and `b` joined by a veth pair (`eth0` on both sides).
//!
//! Every test skips with a message when not run as root, and cleans up its
//! namespaces on drop, also when it fails.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hav_linux::net::netlink::fmt_mac;
use hav_linux::net::packet::ETH_P_ARP;
use hav_linux::net::vrrp_socket::{VRRP_GROUP_V4, VRRP_GROUP_V6};
use hav_linux::net::{
    AddrSpec, Family, LinkEvent, LinkWatcher, NetError, Netlink, PacketSocket, Received,
    SysctlGuard, VrrpSocket,
};
use hav_tests::netns::{skip_unless_root, unique, veth, Netns, Veth};

const IF: &str = "eth0";
const TIMEOUT: Duration = Duration::from_secs(5);

/// keepalived's VRRPv2 advert from the fixture capture vrrpv2-advert.pcap:
/// vrid 1, prio 150, 1 VIP (10.99.0.50), no auth.
const ADVERT: [u8; 20] = [
    0x21, 0x01, 0x96, 0x01, 0x00, 0x01, 0x3e, 0x67, 0x0a, 0x63, 0x00, 0x32, 0, 0, 0, 0, 0, 0, 0, 0,
];

struct Pair {
    // Dropped first: the namespaces would take it with them anyway.
    _link: Veth,
    a: Netns,
    b: Netns,
}

const A4: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 1);
const B4: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 2);
const A6_LL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0xa);
const B6_LL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0xb);
const A6: Ipv6Addr = Ipv6Addr::new(0xfd01, 0, 0, 0, 0, 0, 0, 1);
const B6: Ipv6Addr = Ipv6Addr::new(0xfd01, 0, 0, 0, 0, 0, 0, 2);

fn pair() -> Pair {
    let a = Netns::new(&unique("a")).expect("netns a");
    let b = Netns::new(&unique("b")).expect("netns b");
    let link = veth(&a, IF, &b, IF).expect("veth");
    for (ns, v4, ll, gl) in [(&a, A4, A6_LL, A6), (&b, B4, B6_LL, B6)] {
        ns.add_addr(IF, &format!("{v4}/24")).unwrap();
        ns.add_addr(IF, &format!("{ll}/64")).unwrap();
        ns.add_addr(IF, &format!("{gl}/64")).unwrap();
    }
    Pair { _link: link, a, b }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn ifindex(name: &str) -> u32 {
    Netlink::new().unwrap().link_by_name(name).unwrap().index
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < TIMEOUT, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Opens a VrrpSocket in `rx` and one in `tx`, sends `ADVERT` from `src` to
/// `dst` every 50 ms until `rx` got one, and returns what `rx` received and
/// the VRRP bytes.
fn exchange(
    p: &Pair,
    family: Family,
    groups: Vec<IpAddr>,
    src: IpAddr,
    dst: IpAddr,
) -> (Received, Vec<u8>, u32) {
    let ready = AtomicBool::new(false);
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        let receiver = s.spawn(|| {
            p.b.enter(|| {
                rt().block_on(async {
                    let index = ifindex(IF);
                    let sock = VrrpSocket::open(index, IF, family, &groups).unwrap();
                    ready.store(true, Ordering::SeqCst);
                    let mut buf = [0u8; 1500];
                    let r = tokio::time::timeout(TIMEOUT, sock.recv(&mut buf)).await;
                    done.store(true, Ordering::SeqCst);
                    let r = r.expect("no VRRP packet received").unwrap();
                    (r, buf[r.offset..r.offset + r.len].to_vec(), index)
                })
            })
        });
        wait_for("receiver", || ready.load(Ordering::SeqCst));
        p.a.enter(|| {
            rt().block_on(async {
                let sock = VrrpSocket::open(ifindex(IF), IF, family, &[]).unwrap();
                let start = Instant::now();
                while !done.load(Ordering::SeqCst) && start.elapsed() < TIMEOUT {
                    sock.send_to(&ADVERT, src, dst).unwrap();
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            })
        });
        receiver.join().unwrap()
    })
}

#[test]
fn test_vip_add_list_remove() {
    if skip_unless_root("test_vip_add_list_remove") {
        return;
    }
    let p = pair();
    let vip4 = IpAddr::V4(Ipv4Addr::new(10, 1, 0, 100));
    let vip6 = IpAddr::V6(Ipv6Addr::new(0xfd01, 0, 0, 0, 0, 0, 0, 0x100));
    let (index, link) = p.a.enter(|| {
        let mut nl = Netlink::new().unwrap();
        let link = nl.link_by_name(IF).unwrap();
        assert_eq!(nl.link_by_index(link.index).unwrap(), link);
        let spec = AddrSpec {
            label: Some("eth0:vip".into()),
            broadcast: Some(Ipv4Addr::new(10, 1, 0, 255)),
            ..AddrSpec::new(vip4, 32)
        };
        nl.add_address(link.index, &spec).unwrap();
        // Idempotent.
        nl.add_address(link.index, &spec).unwrap();
        let spec6 = AddrSpec {
            nodad: true,
            ..AddrSpec::new(vip6, 64)
        };
        nl.add_address(link.index, &spec6).unwrap();
        nl.add_address(link.index, &spec6).unwrap();
        let addrs = nl.addresses(link.index).unwrap();
        let v4 = addrs.iter().find(|a| a.addr == vip4).expect("VIP listed");
        assert_eq!((v4.prefix, v4.label.as_deref()), (32, Some("eth0:vip")));
        assert!(addrs.iter().any(|a| a.addr == vip6 && a.prefix == 64));
        assert!(addrs
            .iter()
            .any(|a| a.addr == IpAddr::V4(A4) && a.prefix == 24));
        // Only this link's addresses.
        assert!(!addrs.iter().any(|a| a.addr.is_loopback()));
        (link.index, link)
    });
    assert_eq!(link.name, IF);
    assert_eq!(link.mac, p.a.mac(IF).unwrap());
    assert_eq!(link.mtu, 1500);
    assert!(link.up);
    assert_eq!(link.kind.as_deref(), Some("veth"));

    let shown = p.a.ip(&["-o", "addr", "show", "dev", IF]).unwrap();
    assert!(
        shown.contains("inet 10.1.0.100/32 brd 10.1.0.255"),
        "{shown}"
    );
    assert!(shown.contains("eth0:vip"), "{shown}");
    let line6 = shown
        .lines()
        .find(|l| l.contains("fd01::100/64"))
        .expect(&shown);
    assert!(!line6.contains("tentative"), "{line6}");

    p.a.enter(|| {
        let mut nl = Netlink::new().unwrap();
        nl.del_address(index, vip4, 32).unwrap();
        nl.del_address(index, vip4, 32).unwrap();
        nl.del_address(index, vip6, 64).unwrap();
        nl.del_address(index, vip6, 64).unwrap();
        // Gone link: still "already gone".
        nl.del_address(99_999, vip4, 32).unwrap();
        let addrs = nl.addresses(index).unwrap();
        assert!(!addrs.iter().any(|a| a.addr == vip4 || a.addr == vip6));
    });
    let shown = p.a.ip(&["-o", "addr", "show", "dev", IF]).unwrap();
    assert!(
        !shown.contains("10.1.0.100") && !shown.contains("fd01::100"),
        "{shown}"
    );
}

#[test]
fn test_netlink_errors_name_their_target() {
    if skip_unless_root("test_netlink_errors_name_their_target") {
        return;
    }
    let p = pair();
    p.a.enter(|| {
        let mut nl = Netlink::new().unwrap();
        let e = nl.link_by_name("hvnosuch0").unwrap_err();
        assert!(matches!(&e, NetError::NoSuchInterface { name } if name == "hvnosuch0"));
        assert!(e.to_string().contains("hvnosuch0"));
        let e = nl.link_by_name("name-longer-than-15").unwrap_err();
        assert!(matches!(e, NetError::Invalid { .. }), "{e}");
        assert!(matches!(
            nl.link_by_index(99_999),
            Err(NetError::NoSuchIndex { index: 99_999 })
        ));
        assert!(matches!(
            nl.addresses(99_999),
            Err(NetError::NoSuchIndex { .. })
        ));
        let spec = AddrSpec::new(IpAddr::V4(Ipv4Addr::new(10, 9, 9, 9)), 24);
        let e = nl.add_address(99_999, &spec).unwrap_err();
        assert!(e.to_string().contains("99999"), "{e}");
        let bad = AddrSpec::new(IpAddr::V4(Ipv4Addr::new(10, 9, 9, 9)), 33);
        let e = nl.add_address(1, &bad).unwrap_err();
        assert!(e.to_string().contains("10.9.9.9/33"), "{e}");
        assert!(!nl.links().unwrap().is_empty());
        // A VrrpSocket on a missing interface names it.
        rt().block_on(async {
            let e = VrrpSocket::open(99_999, "hvnosuch0", Family::V4, &[]).unwrap_err();
            assert!(e.to_string().contains("hvnosuch0"), "{e}");
            assert_eq!(e.raw_os_error(), Some(libc::ENODEV));
        });
    });
}

#[test]
fn test_vrrp_v4_multicast() {
    if skip_unless_root("test_vrrp_v4_multicast") {
        return;
    }
    let p = pair();
    let (r, bytes, b_index) = exchange(
        &p,
        Family::V4,
        vec![IpAddr::V4(VRRP_GROUP_V4)],
        IpAddr::V4(A4),
        IpAddr::V4(VRRP_GROUP_V4),
    );
    assert_eq!(bytes, ADVERT);
    assert_eq!(r.src, IpAddr::V4(A4));
    assert_eq!(r.dst, IpAddr::V4(VRRP_GROUP_V4));
    assert_eq!(r.ttl, 255);
    assert_eq!(r.ifindex, b_index);
    assert_eq!(r.offset, 20);
}

#[test]
fn test_vrrp_v4_wire_format() {
    // TOS 0xc0, TTL 255, multicast MAC, as keepalived's capture shows.
    if skip_unless_root("test_vrrp_v4_wire_format") {
        return;
    }
    let p = pair();
    let ready = AtomicBool::new(false);
    let done = AtomicBool::new(false);
    let frame = std::thread::scope(|s| {
        let receiver = s.spawn(|| {
            p.b.enter(|| {
                rt().block_on(async {
                    let cap = PacketSocket::listen(ifindex(IF), IF, 0x0800).unwrap();
                    ready.store(true, Ordering::SeqCst);
                    let mut buf = [0u8; 2048];
                    let frame = tokio::time::timeout(TIMEOUT, async {
                        loop {
                            let n = cap.recv_frame(&mut buf).await.unwrap();
                            if n >= 34 && buf[23] == 112 {
                                return buf[..n].to_vec();
                            }
                        }
                    })
                    .await;
                    done.store(true, Ordering::SeqCst);
                    frame.expect("no VRRP frame captured")
                })
            })
        });
        wait_for("capture", || ready.load(Ordering::SeqCst));
        p.a.enter(|| {
            rt().block_on(async {
                let sock = VrrpSocket::open(ifindex(IF), IF, Family::V4, &[]).unwrap();
                while !done.load(Ordering::SeqCst) {
                    sock.send_to(&ADVERT, IpAddr::V4(A4), IpAddr::V4(VRRP_GROUP_V4))
                        .unwrap();
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            })
        });
        receiver.join().unwrap()
    });
    assert_eq!(&frame[0..6], &[0x01, 0x00, 0x5e, 0x00, 0x00, 0x12]);
    assert_eq!(&frame[6..12], &p.a.mac(IF).unwrap());
    let ip = &frame[14..];
    assert_eq!(ip[0], 0x45);
    assert_eq!(ip[1], 0xc0, "TOS");
    assert_eq!(ip[8], 255, "TTL");
    assert_eq!(&ip[12..16], &A4.octets());
    assert_eq!(&ip[20..40], &ADVERT);
}

#[test]
fn test_vrrp_v4_unicast() {
    if skip_unless_root("test_vrrp_v4_unicast") {
        return;
    }
    let p = pair();
    let (r, bytes, _) = exchange(&p, Family::V4, vec![], IpAddr::V4(A4), IpAddr::V4(B4));
    assert_eq!(bytes, ADVERT);
    assert_eq!((r.src, r.dst, r.ttl), (IpAddr::V4(A4), IpAddr::V4(B4), 255));
}

#[test]
fn test_vrrp_v6_multicast() {
    if skip_unless_root("test_vrrp_v6_multicast") {
        return;
    }
    let p = pair();
    let (r, bytes, b_index) = exchange(
        &p,
        Family::V6,
        vec![IpAddr::V6(VRRP_GROUP_V6)],
        IpAddr::V6(A6_LL),
        IpAddr::V6(VRRP_GROUP_V6),
    );
    assert_eq!(bytes, ADVERT);
    assert_eq!(r.src, IpAddr::V6(A6_LL));
    assert_eq!(r.dst, IpAddr::V6(VRRP_GROUP_V6));
    assert_eq!(r.ttl, 255);
    assert_eq!(r.ifindex, b_index);
    assert_eq!(r.offset, 0);
}

#[test]
fn test_vrrp_v6_unicast() {
    if skip_unless_root("test_vrrp_v6_unicast") {
        return;
    }
    let p = pair();
    let (r, bytes, _) = exchange(&p, Family::V6, vec![], IpAddr::V6(A6), IpAddr::V6(B6));
    assert_eq!(bytes, ADVERT);
    // Without unicast_ttl, IPv6 unicast leaves with the kernel's default hop limit (64 in a
    // new namespace), as keepalived's does.
    assert_eq!((r.src, r.dst, r.ttl), (IpAddr::V6(A6), IpAddr::V6(B6), 64));
}

#[test]
fn test_vrrp_send_errors() {
    if skip_unless_root("test_vrrp_send_errors") {
        return;
    }
    let p = pair();
    p.a.enter(|| {
        rt().block_on(async {
            let sock = VrrpSocket::open(ifindex(IF), IF, Family::V4, &[]).unwrap();
            let e = sock
                .send_to(&ADVERT, IpAddr::V6(A6), IpAddr::V4(VRRP_GROUP_V4))
                .unwrap_err();
            assert!(matches!(e, NetError::Invalid { .. }), "{e}");
            // A source address this host does not have.
            let e = sock
                .send_to(
                    &ADVERT,
                    IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
                    IpAddr::V4(VRRP_GROUP_V4),
                )
                .unwrap_err();
            assert!(
                e.to_string().contains("192.0.2.1") && e.to_string().contains(IF),
                "{e}"
            );
        })
    });
}

/// A gratuitous ARP request for `vip` from `mac` (RFC 5227 §3 layout).
fn garp(mac: [u8; 6], vip: Ipv4Addr) -> Vec<u8> {
    let mut f = Vec::with_capacity(42);
    f.extend_from_slice(&[0xff; 6]);
    f.extend_from_slice(&mac);
    f.extend_from_slice(&ETH_P_ARP.to_be_bytes());
    f.extend_from_slice(&[0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01]);
    f.extend_from_slice(&mac);
    f.extend_from_slice(&vip.octets());
    f.extend_from_slice(&[0xff; 6]);
    f.extend_from_slice(&vip.octets());
    f
}

#[test]
fn test_gratuitous_arp_updates_neighbour() {
    if skip_unless_root("test_gratuitous_arp_updates_neighbour") {
        return;
    }
    let p = pair();
    p.b.sysctl("ipv4.conf.eth0.arp_accept", "1").unwrap();
    let vip = Ipv4Addr::new(10, 1, 0, 50);
    let a_mac = p.a.mac(IF).unwrap();
    let frame = garp(a_mac, vip);
    let ready = AtomicBool::new(false);
    let done = AtomicBool::new(false);
    let captured = std::thread::scope(|s| {
        let receiver = s.spawn(|| {
            p.b.enter(|| {
                rt().block_on(async {
                    let cap = PacketSocket::listen(ifindex(IF), IF, ETH_P_ARP).unwrap();
                    ready.store(true, Ordering::SeqCst);
                    let mut buf = [0u8; 2048];
                    let n = tokio::time::timeout(TIMEOUT, cap.recv_frame(&mut buf)).await;
                    done.store(true, Ordering::SeqCst);
                    buf[..n.expect("no ARP frame").unwrap()].to_vec()
                })
            })
        });
        wait_for("capture", || ready.load(Ordering::SeqCst));
        p.a.enter(|| {
            let sock = PacketSocket::open(ifindex(IF), IF).unwrap();
            let start = Instant::now();
            while !done.load(Ordering::SeqCst) && start.elapsed() < TIMEOUT {
                sock.send_frame(&frame).unwrap();
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        receiver.join().unwrap()
    });
    assert_eq!(&captured[..42], &frame[..]);
    let want = format!("lladdr {}", fmt_mac(&a_mac));
    wait_for("neighbour entry", || {
        p.b.ip(&["neigh", "show", &vip.to_string(), "dev", IF])
            .map(|s| s.contains(&want))
            .unwrap_or(false)
    });
}

#[test]
fn test_macvlan_vmac() {
    if skip_unless_root("test_macvlan_vmac") {
        return;
    }
    let p = pair();
    let vmac = [0x00, 0x00, 0x5e, 0x00, 0x01, 0x2a];
    let name = "vrrp.42";
    let index = p.a.enter(|| {
        let mut nl = Netlink::new().unwrap();
        let parent = nl.link_by_name(IF).unwrap().index;
        let index = nl.create_macvlan(parent, name, vmac).unwrap();
        assert_eq!(nl.create_macvlan(parent, name, vmac).unwrap(), index);
        let link = nl.link_by_index(index).unwrap();
        assert_eq!((link.name.as_str(), link.mac, link.up), (name, vmac, false));
        assert_eq!(
            (link.kind.as_deref(), link.parent),
            (Some("macvlan"), Some(parent))
        );
        let e = nl
            .create_macvlan(parent, name, [0, 0, 0x5e, 0, 1, 0x2b])
            .unwrap_err();
        assert!(matches!(e, NetError::LinkConflict { .. }), "{e}");
        assert!(e.to_string().contains("00:00:5e:00:01:2b"), "{e}");
        let e = nl.create_macvlan(parent, IF, vmac).unwrap_err();
        assert!(matches!(e, NetError::LinkConflict { .. }), "{e}");
        let e = nl.create_macvlan(99_999, "vrrp.43", vmac).unwrap_err();
        assert!(matches!(e, NetError::NoSuchIndex { index: 99_999 }), "{e}");

        let mut guard = SysctlGuard::new();
        guard.prepare_vmac_parent(IF).unwrap();
        guard.prepare_vmac(name, true).unwrap();
        nl.set_up(index).unwrap();
        assert!(nl.link_by_index(index).unwrap().up);
        let get = |k: &str| std::fs::read_to_string(format!("/proc/sys/net/{k}")).unwrap();
        assert_eq!(get("ipv4/conf/eth0/arp_ignore").trim(), "1");
        assert_eq!(get("ipv4/conf/eth0/arp_announce").trim(), "2");
        assert_eq!(get("ipv6/conf/vrrp.42/accept_dad").trim(), "0");
        guard.restore().unwrap();
        assert_eq!(get("ipv4/conf/eth0/arp_ignore").trim(), "0");
        assert_eq!(get("ipv4/conf/eth0/arp_announce").trim(), "0");
        assert_eq!(get("ipv6/conf/vrrp.42/accept_dad").trim(), "1");
        index
    });
    let shown = p.a.ip(&["-d", "-o", "link", "show", "dev", name]).unwrap();
    assert!(shown.contains("macvlan mode private"), "{shown}");
    assert!(shown.contains("link/ether 00:00:5e:00:01:2a"), "{shown}");
    assert!(shown.contains(",UP,"), "{shown}");
    p.a.enter(|| {
        let mut nl = Netlink::new().unwrap();
        nl.delete_link(index).unwrap();
        nl.delete_link(index).unwrap();
        assert!(matches!(
            nl.link_by_name(name),
            Err(NetError::NoSuchInterface { .. })
        ));
    });
    assert!(p.a.ip(&["link", "show", "dev", name]).is_err());
}

#[test]
fn test_link_watcher_sees_down_up_and_delete() {
    if skip_unless_root("test_link_watcher_sees_down_up_and_delete") {
        return;
    }
    let p = pair();
    let ready = AtomicBool::new(false);
    let events: Vec<LinkEvent> = std::thread::scope(|s| {
        let watcher = s.spawn(|| {
            p.b.enter(|| {
                rt().block_on(async {
                    let mut w = LinkWatcher::new().unwrap();
                    ready.store(true, Ordering::SeqCst);
                    let mut seen = Vec::new();
                    let got_all = |seen: &[LinkEvent]| {
                        let down = seen.iter().position(|e| e.name == IF && !e.up);
                        let up =
                            down.and_then(|d| seen[d..].iter().position(|e| e.name == IF && e.up));
                        up.is_some() && seen.iter().any(|e| e.name == "hvdummy0" && e.deleted)
                    };
                    while !got_all(&seen) {
                        let ev = tokio::time::timeout(TIMEOUT, w.next())
                            .await
                            .unwrap_or_else(|_| panic!("missing link events; saw {seen:?}"))
                            .unwrap();
                        seen.push(ev);
                    }
                    seen
                })
            })
        });
        wait_for("watcher", || ready.load(Ordering::SeqCst));
        p.b.link_down(IF).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        p.b.link_up(IF).unwrap();
        p.b.ip(&[
            "link", "add", "hvdummy0", "type", "veth", "peer", "name", "hvdummy1",
        ])
        .unwrap();
        p.b.ip(&["link", "del", "hvdummy0"]).unwrap();
        watcher.join().unwrap()
    });
    let eth0 = events.iter().find(|e| e.name == IF).unwrap();
    assert_eq!(eth0.index, p.b.ifindex(IF).unwrap());
    assert!(!eth0.deleted);
}
