//! IPVS wire encoding (checked against the values of linux/ip_vs.h), table
//! diffs and the director's keepalived semantics, without a kernel. The same
//! code is run against a real kernel by tests/vm/ipvs-suite.sh.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;

use hav_linux::config::{self, Config};
use hav_linux::health::{Health, HealthEvent, RealServerRef};
use hav_linux::ipvs::wire::{self, Attrs, NlMsg, Writer};
use hav_linux::ipvs::{
    explain, Dest, Family, Forward, IpvsError, Op, Protocol, Service, ServiceKey, SyncDaemon, SyncState, Tunnel,
    TunnelKind,
};
use hav_linux::lvs::table::{self, Table, TableService};
use hav_linux::lvs::Runtime;

fn sa(s: &str) -> SocketAddr {
    s.parse().expect("socket address")
}

fn tcp(s: &str) -> ServiceKey {
    ServiceKey::Addr { protocol: Protocol::Tcp, addr: sa(s) }
}

/// The one message in `bytes`, and its genl attributes.
fn one_msg(bytes: &[u8]) -> (NlMsg<'_>, u8, Attrs<'_>) {
    let msgs: Vec<NlMsg<'_>> = wire::messages(bytes).collect();
    assert_eq!(msgs.len(), 1);
    let m = msgs[0];
    let (cmd, attrs) = wire::genl_attrs(&m).expect("genl header");
    (m, cmd, attrs)
}

#[test]
fn test_constants_match_ip_vs_h() {
    // linux/ip_vs.h
    assert_eq!(wire::cmd::NEW_SERVICE, 1);
    assert_eq!(wire::cmd::GET_DEST, 8);
    assert_eq!(wire::cmd::NEW_DAEMON, 9);
    assert_eq!(wire::cmd::GET_INFO, 15);
    assert_eq!(wire::cmd::FLUSH, 17);
    assert_eq!(wire::svc_attr::NETMASK, 9);
    assert_eq!(wire::svc_attr::STATS64, 12);
    assert_eq!(wire::dest_attr::ADDR_FAMILY, 11);
    assert_eq!(wire::dest_attr::TUN_TYPE, 13);
    assert_eq!(wire::dest_attr::TUN_FLAGS, 15);
    assert_eq!(wire::daemon_attr::MCAST_TTL, 8);
    assert_eq!(wire::IP_VS_CONN_F_DROUTE, 3);
    assert_eq!(wire::IP_VS_CONN_F_TUNNEL, 2);
    assert_eq!(wire::IP_VS_SVC_F_ONEPACKET, 4);
    assert_eq!(wire::IP_VS_SVC_F_SCHED2, 0x10);
    assert_eq!(wire::SVC_FLAGS_USER, 0x3d);
}

#[test]
fn test_new_service_bytes() {
    let mut s = Service::new(tcp("10.0.0.1:80"), "rr");
    s.flags = wire::IP_VS_SVC_F_PERSISTENT;
    s.timeout = 50;
    s.netmask = 0xffff_ff00;
    let b = wire::encode(0x1c, 7, &Op::NewService(s));
    let ne16 = |v: u16| v.to_ne_bytes().to_vec();
    let ne32 = |v: u32| v.to_ne_bytes().to_vec();
    let mut want: Vec<u8> = Vec::new();
    // nlmsghdr: len, type = family, flags = REQUEST|ACK, seq, pid 0
    want.extend(ne32(0)); // patched below
    want.extend(ne16(0x1c));
    want.extend(ne16(0x05));
    want.extend(ne32(7));
    want.extend(ne32(0));
    // genlmsghdr: cmd NEW_SERVICE, version 1
    want.extend([1, 1, 0, 0]);
    // IPVS_CMD_ATTR_SERVICE | NLA_F_NESTED
    let nest_at = want.len();
    want.extend(ne16(0));
    want.extend(ne16(1 | 0x8000));
    want.extend(ne16(6)); // AF: u16 host order, padded
    want.extend(ne16(1));
    want.extend(ne16(2));
    want.extend([0, 0]);
    want.extend(ne16(6)); // PROTOCOL
    want.extend(ne16(2));
    want.extend(ne16(6));
    want.extend([0, 0]);
    want.extend(ne16(20)); // ADDR: 16 bytes (nf_inet_addr)
    want.extend(ne16(3));
    want.extend([10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    want.extend(ne16(6)); // PORT: big endian
    want.extend(ne16(4));
    want.extend([0x00, 0x50, 0, 0]);
    want.extend(ne16(7)); // SCHED_NAME "rr\0"
    want.extend(ne16(6));
    want.extend([b'r', b'r', 0, 0]);
    want.extend(ne16(12)); // FLAGS: struct ip_vs_flags { flags, mask }
    want.extend(ne16(7));
    want.extend(ne32(1));
    want.extend(ne32(0x3d));
    want.extend(ne16(8)); // TIMEOUT
    want.extend(ne16(8));
    want.extend(ne32(50));
    want.extend(ne16(8)); // NETMASK: big endian
    want.extend(ne16(9));
    want.extend([0xff, 0xff, 0xff, 0x00]);
    let nest_len = (want.len() - nest_at) as u16;
    want[nest_at..nest_at + 2].copy_from_slice(&nest_len.to_ne_bytes());
    let total = want.len() as u32;
    want[..4].copy_from_slice(&total.to_ne_bytes());
    assert_eq!(b, want);
}

#[test]
fn test_ipv6_and_fwmark_services() {
    let mut s = Service::new(ServiceKey::Addr { protocol: Protocol::Udp, addr: sa("[2001:db8::1]:443") }, "wlc");
    s.flags = wire::IP_VS_SVC_F_PERSISTENT | wire::IP_VS_SVC_F_ONEPACKET;
    s.netmask = 64;
    let b = wire::encode(30, 1, &Op::SetService(s.clone()));
    let (_, cmd, attrs) = one_msg(&b);
    assert_eq!(cmd, wire::cmd::SET_SERVICE);
    let nest = attrs.get(wire::cmd_attr::SERVICE).expect("service").nested();
    assert_eq!(nest.get(wire::svc_attr::AF).and_then(|a| a.u16()), Some(wire::AF_INET6));
    assert_eq!(nest.get(wire::svc_attr::PROTOCOL).and_then(|a| a.u16()), Some(17));
    assert_eq!(nest.get(wire::svc_attr::PORT).map(|a| a.payload.to_vec()), Some(vec![0x01, 0xbb]));
    // IPv6 netmask: a prefix length, in host order.
    assert_eq!(nest.get(wire::svc_attr::NETMASK).map(|a| a.payload.to_vec()), Some(64u32.to_ne_bytes().to_vec()));
    let back = wire::parse_service(nest).expect("parses");
    assert_eq!(back.service, s);

    let f = Service::new(ServiceKey::Fwmark { family: Family::Inet, mark: 7 }, "sh");
    let b = wire::encode(30, 2, &Op::DelService(f.key));
    let (m, cmd, attrs) = one_msg(&b);
    assert_eq!(cmd, wire::cmd::DEL_SERVICE);
    assert_eq!(m.flags, wire::NLM_F_REQUEST | wire::NLM_F_ACK);
    let nest = attrs.get(wire::cmd_attr::SERVICE).expect("service").nested();
    let types: Vec<u16> = nest.clone().map(|a| a.ty).collect();
    assert_eq!(types, vec![wire::svc_attr::AF, wire::svc_attr::FWMARK]);
    assert_eq!(nest.get(wire::svc_attr::FWMARK).and_then(|a| a.u32()), Some(7));
}

#[test]
fn test_dest_tunnel_encoding() {
    let key = tcp("10.0.0.1:80");
    let d = Dest {
        addr: sa("10.0.1.2:80"),
        forward: Forward::Tunnel(Tunnel { kind: TunnelKind::Gue, port: 6080, flags: wire::IP_VS_TUNNEL_ENCAP_FLAG_CSUM }),
        weight: 5,
        upper_threshold: 100,
        lower_threshold: 10,
    };
    let b = wire::encode(30, 3, &Op::NewDest(key, d));
    let (_, cmd, attrs) = one_msg(&b);
    assert_eq!(cmd, wire::cmd::NEW_DEST);
    assert!(attrs.get(wire::cmd_attr::SERVICE).is_some());
    let nest = attrs.get(wire::cmd_attr::DEST).expect("dest").nested();
    assert_eq!(nest.get(wire::dest_attr::FWD_METHOD).and_then(|a| a.u32()), Some(2));
    assert_eq!(nest.get(wire::dest_attr::WEIGHT).and_then(|a| a.u32()), Some(5));
    assert_eq!(nest.get(wire::dest_attr::U_THRESH).and_then(|a| a.u32()), Some(100));
    assert_eq!(nest.get(wire::dest_attr::L_THRESH).and_then(|a| a.u32()), Some(10));
    assert_eq!(nest.get(wire::dest_attr::TUN_TYPE).and_then(|a| a.u8()), Some(1));
    assert_eq!(nest.get(wire::dest_attr::TUN_PORT).map(|a| a.payload.to_vec()), Some(vec![0x17, 0xc0]));
    assert_eq!(nest.get(wire::dest_attr::TUN_FLAGS).and_then(|a| a.u16()), Some(1));
    assert_eq!(nest.get(wire::dest_attr::PORT).map(|a| a.payload.to_vec()), Some(vec![0, 80]));
    let back = wire::parse_dest(nest, Family::Inet).expect("parses");
    assert_eq!(back.dest, d);

    // A delete carries only the address.
    let b = wire::encode(30, 4, &Op::DelDest(key, d.addr));
    let (_, _, attrs) = one_msg(&b);
    let types: Vec<u16> = attrs.get(wire::cmd_attr::DEST).expect("dest").nested().map(|a| a.ty).collect();
    assert_eq!(types, vec![wire::dest_attr::ADDR, wire::dest_attr::PORT, wire::dest_attr::ADDR_FAMILY]);
}

#[test]
fn test_daemon_encoding() {
    let d = SyncDaemon {
        state: SyncState::Backup,
        ifname: "eth0".into(),
        sync_id: 9,
        maxlen: Some(1400),
        group: Some("224.0.0.81".parse().expect("ip")),
        port: Some(8848),
        ttl: Some(2),
    };
    let mut w = Writer::new();
    w.begin(30, wire::NLM_F_REQUEST, 1, wire::cmd::NEW_DAEMON, 1);
    wire::put_daemon(&mut w, &d);
    w.end();
    let (_, _, attrs) = one_msg(w.as_slice());
    let nest = attrs.get(wire::cmd_attr::DAEMON).expect("daemon").nested();
    assert_eq!(nest.get(wire::daemon_attr::STATE).and_then(|a| a.u32()), Some(2));
    assert_eq!(nest.get(wire::daemon_attr::MCAST_IFN).and_then(|a| a.string()), Some("eth0".into()));
    assert_eq!(nest.get(wire::daemon_attr::MCAST_GROUP).map(|a| a.payload.to_vec()), Some(vec![224, 0, 0, 81]));
    // The sync daemon's port is in host order (unlike service ports).
    assert_eq!(nest.get(wire::daemon_attr::MCAST_PORT).map(|a| a.payload.to_vec()), Some(8848u16.to_ne_bytes().to_vec()));
    assert_eq!(wire::parse_daemon(nest).expect("parses"), d);
}

#[test]
fn test_error_replies() {
    // NLMSG_ERROR, -EEXIST, capped, with an extended-ACK message.
    let mut b = Vec::new();
    let body_len = 16 + 4 + 16 + 12;
    b.extend((body_len as u32).to_ne_bytes());
    b.extend(wire::NLMSG_ERROR.to_ne_bytes());
    b.extend((wire::NLM_F_CAPPED | wire::NLM_F_ACK_TLVS).to_ne_bytes());
    b.extend(42u32.to_ne_bytes());
    b.extend(0u32.to_ne_bytes());
    b.extend((-libc::EEXIST).to_ne_bytes());
    b.extend([0u8; 16]); // the request's header
    b.extend(11u16.to_ne_bytes());
    b.extend(wire::NLMSGERR_ATTR_MSG.to_ne_bytes());
    b.extend(*b"exists\0\0");
    let m = wire::messages(&b).next().expect("one message");
    assert_eq!(m.seq, 42);
    assert_eq!(wire::parse_error(&m), Some((libc::EEXIST, Some("exists".into()))));

    let e = IpvsError::Kernel {
        op: "NEW_DEST",
        target: Op::NewDest(tcp("10.0.0.1:80"), Dest::new(sa("10.0.0.2:80"), Forward::Masq, 1)).target(),
        errno: libc::EEXIST,
        reason: explain(wire::cmd::NEW_DEST, libc::EEXIST),
        ext: None,
    };
    assert_eq!(
        e.to_string(),
        "IPVS NEW_DEST real server 10.0.0.2:80 of service TCP 10.0.0.1:80: the real server already exists in this service [EEXIST]"
    );
    assert!(explain(wire::cmd::NEW_SERVICE, libc::ENOENT).contains("no such scheduler"));
    assert!(explain(wire::cmd::SET_DEST, libc::ENOENT).contains("no such real server"));
    assert!(explain(wire::cmd::DEL_SERVICE, libc::ESRCH).contains("no such service"));
}

#[test]
fn test_malformed_replies_do_not_panic() {
    for bytes in [&[][..], &[1, 2, 3], &[200, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]] {
        for m in wire::messages(bytes) {
            let _ = wire::parse_error(&m);
        }
    }
    let attrs = Attrs::new(&[8, 0, 1, 0, 1]);
    assert_eq!(attrs.count(), 0);
    assert!(wire::parse_service(Attrs::new(&[])).is_err());
    assert!(wire::parse_dest(Attrs::new(&[6, 0, 2, 0, 0, 80, 0, 0]), Family::Inet).is_err());
}

/// A service: key, scheduler, real servers with weights.
type Spec<'a> = (ServiceKey, &'a str, &'a [(&'a str, i32)]);

fn table_of(entries: &[Spec<'_>]) -> Table {
    entries
        .iter()
        .map(|(k, sched, dests)| {
            (
                *k,
                TableService {
                    service: Service::new(*k, sched),
                    dests: dests.iter().map(|(a, w)| Dest::new(sa(a), Forward::Masq, *w)).collect(),
                },
            )
        })
        .collect()
}

#[test]
fn test_diff_only_the_difference() {
    let a = tcp("10.0.0.1:80");
    let b = tcp("10.0.0.2:80");
    let cur = table_of(&[(a, "rr", &[("10.1.0.1:80", 1), ("10.1.0.2:80", 1), ("10.1.0.3:80", 1)])]);
    let owned: BTreeSet<ServiceKey> = [a].into();
    assert!(table::diff(&cur, &cur, &owned).is_empty());

    let want = table_of(&[(a, "rr", &[("10.1.0.1:80", 1), ("10.1.0.2:80", 5), ("10.1.0.4:80", 1)])]);
    let ops = table::diff(&cur, &want, &owned);
    assert_eq!(
        ops,
        vec![
            Op::SetDest(a, Dest::new(sa("10.1.0.2:80"), Forward::Masq, 5)),
            Op::NewDest(a, Dest::new(sa("10.1.0.4:80"), Forward::Masq, 1)),
            Op::DelDest(a, sa("10.1.0.3:80")),
        ]
    );
    let mut applied = cur.clone();
    table::apply_ops(&mut applied, &ops);
    assert!(table::diff(&applied, &want, &owned).is_empty());

    // A scheduler change edits the service in place.
    let want = table_of(&[(a, "wlc", &[("10.1.0.1:80", 1), ("10.1.0.2:80", 1), ("10.1.0.3:80", 1)])]);
    assert_eq!(table::diff(&cur, &want, &owned), vec![Op::SetService(Service::new(a, "wlc"))]);

    // A service someone else installed is left alone; one we own goes.
    let cur2 = table_of(&[(a, "rr", &[]), (b, "rr", &[("10.1.0.9:80", 1)])]);
    let want2 = table_of(&[(a, "rr", &[])]);
    assert!(table::diff(&cur2, &want2, &owned).is_empty());
    let owned2: BTreeSet<ServiceKey> = [a, b].into();
    assert_eq!(table::diff(&cur2, &want2, &owned2), vec![Op::DelService(b)]);

    // A new service comes with its real servers.
    let want3 = table_of(&[(a, "rr", &[]), (b, "sh", &[("10.1.0.9:80", 2)])]);
    assert_eq!(
        table::diff(&want2, &want3, &owned),
        vec![Op::NewService(Service::new(b, "sh")), Op::NewDest(b, Dest::new(sa("10.1.0.9:80"), Forward::Masq, 2))]
    );
}

fn load(text: &str) -> Config {
    match config::load_str(Path::new("t.conf"), text) {
        Ok(l) => l.config,
        Err(e) => panic!("config: {e}"),
    }
}

fn down(rt: &mut Runtime, c: &Config, vs: usize, rs: &str, health: Health) -> Option<hav_linux::lvs::state::Change> {
    let v = &c.virtual_servers[vs];
    rt.verdict(c, &HealthEvent { rs: RealServerRef::new(v, sa(rs)), checker: 0, health })
}

fn dests(t: &Table, key: &str) -> Vec<(String, i32)> {
    let mut v: Vec<(String, i32)> =
        t.get(&tcp(key)).map(|s| s.dests.iter().map(|d| (d.addr.to_string(), d.weight)).collect()).unwrap_or_default();
    v.sort();
    v
}

const POOL: &str = "
virtual_server 10.0.0.1 80 {
    lb_algo wrr
    lb_kind NAT
    quorum 4
    hysteresis 1
    sorry_server 10.9.9.9 8080
    real_server 10.1.0.1 80 {
        weight 3
        TCP_CHECK {
            connect_timeout 1
        }
    }
    real_server 10.1.0.2 80 {
        weight 2
        inhibit_on_failure
        TCP_CHECK {
            connect_timeout 1
        }
    }
}
";

#[test]
fn test_inhibit_quorum_hysteresis_sorry() {
    let c = load(POOL);
    let mut rt = Runtime::new();
    rt.adopt(&c);
    let t = rt.desired(&c).expect("table");
    assert_eq!(dests(&t, "10.0.0.1:80"), vec![("10.1.0.1:80".into(), 3), ("10.1.0.2:80".into(), 2)]);

    // 10.1.0.2 down: inhibit_on_failure keeps it at weight 0; live weight 3 >= 4 - 1 keeps quorum.
    let ch = down(&mut rt, &c, 0, "10.1.0.2:80", Health::Down).expect("changes");
    assert_eq!((ch.alive, ch.quorum), (Some(false), None));
    let t = rt.desired(&c).expect("table");
    assert_eq!(dests(&t, "10.0.0.1:80"), vec![("10.1.0.1:80".into(), 3), ("10.1.0.2:80".into(), 0)]);

    // 10.1.0.1 down too: live weight 0 < 3, quorum lost; the sorry server replaces them.
    let ch = down(&mut rt, &c, 0, "10.1.0.1:80", Health::Down).expect("changes");
    assert_eq!(ch.quorum, Some(false));
    let t = rt.desired(&c).expect("table");
    assert_eq!(dests(&t, "10.0.0.1:80"), vec![("10.1.0.2:80".into(), 0), ("10.9.9.9:8080".into(), 1)]);

    // A repeated verdict changes nothing.
    assert_eq!(down(&mut rt, &c, 0, "10.1.0.1:80", Health::Down), None);

    // 10.1.0.1 back: live 3 < 4 + 1, still no quorum (hysteresis).
    let ch = down(&mut rt, &c, 0, "10.1.0.1:80", Health::Up).expect("changes");
    assert_eq!((ch.alive, ch.quorum), (Some(true), None));
    assert!(!rt.quorum_up(&c.virtual_servers[0]));
    // 10.1.0.2 back: live 5 >= 5, quorum regained; the sorry server leaves.
    let ch = down(&mut rt, &c, 0, "10.1.0.2:80", Health::Up).expect("changes");
    assert_eq!(ch.quorum, Some(true));
    let t = rt.desired(&c).expect("table");
    assert_eq!(dests(&t, "10.0.0.1:80"), vec![("10.1.0.1:80".into(), 3), ("10.1.0.2:80".into(), 2)]);

    // Dynamic weight from a checker.
    down(&mut rt, &c, 0, "10.1.0.1:80", Health::UpWeight(7)).expect("changes");
    let t = rt.desired(&c).expect("table");
    assert_eq!(dests(&t, "10.0.0.1:80"), vec![("10.1.0.1:80".into(), 7), ("10.1.0.2:80".into(), 2)]);

    // A reload keeps the verdicts.
    down(&mut rt, &c, 0, "10.1.0.2:80", Health::Down).expect("changes");
    rt.adopt(&c);
    let t = rt.desired(&c).expect("table");
    assert_eq!(dests(&t, "10.0.0.1:80"), vec![("10.1.0.1:80".into(), 7), ("10.1.0.2:80".into(), 0)]);
}

#[test]
fn test_sorry_inhibit_alpha_and_removal() {
    let c = load(
        "virtual_server 10.0.0.1 80 {
            sorry_server 10.9.9.9 80
            sorry_server_inhibit
            alpha
            real_server 10.1.0.1 80 {
                TCP_CHECK {
                    connect_timeout 1
                }
            }
            real_server 10.1.0.2 80 {
                weight 4
            }
        }",
    );
    let mut rt = Runtime::new();
    rt.adopt(&c);
    // alpha: 10.1.0.1 starts down (removed); 10.1.0.2 has no checker and is up; quorum 1 holds,
    // so the inhibited sorry server sits at weight 0.
    let t = rt.desired(&c).expect("table");
    assert_eq!(dests(&t, "10.0.0.1:80"), vec![("10.1.0.2:80".into(), 4), ("10.9.9.9:80".into(), 0)]);
    down(&mut rt, &c, 0, "10.1.0.1:80", Health::Up).expect("changes");
    let t = rt.desired(&c).expect("table");
    assert_eq!(
        dests(&t, "10.0.0.1:80"),
        vec![("10.1.0.1:80".into(), 1), ("10.1.0.2:80".into(), 4), ("10.9.9.9:80".into(), 0)]
    );
    // --all-up ignores alpha.
    let mut rt = Runtime::new();
    rt.set_assume_up(true);
    rt.adopt(&c);
    assert_eq!(dests(&rt.desired(&c).expect("table"), "10.0.0.1:80").len(), 3);
}

#[test]
fn test_service_settings_from_config() {
    let c = load(
        "virtual_server_group G {
            10.0.0.1-3 80
            fwmark 9
        }
        virtual_server group G {
            lb_algo sh
            sh-port
            sh-fallback
            lb_kind DR
            persistence_timeout 30
            persistence_granularity 255.255.0.0
            real_server 10.1.0.1 8080 {
                weight 2
            }
            real_server 10.1.0.2 {
                weight 2
                lb_kind NAT
            }
        }
        virtual_server 2001:db8::1 53 {
            protocol UDP
            ops
            lb_kind TUN type gue port 6080
            persistence_timeout
            persistence_granularity 64
            real_server 2001:db8::10 53 {
            }
        }",
    );
    let mut rt = Runtime::new();
    rt.adopt(&c);
    let t = rt.desired(&c).expect("table");
    assert_eq!(t.len(), 5);
    for ip in ["10.0.0.1", "10.0.0.2", "10.0.0.3"] {
        let s = &t[&tcp(&format!("{ip}:80"))];
        assert_eq!(s.service.scheduler, "sh");
        assert_eq!(s.service.flags, wire::IP_VS_SVC_F_PERSISTENT | wire::IP_VS_SVC_F_SCHED1 | wire::IP_VS_SVC_F_SCHED2);
        assert_eq!((s.service.timeout, s.service.netmask), (30, 0xffff_0000));
        // DR takes the service's port; NAT without a port too.
        let d: Vec<(SocketAddr, Forward)> = s.dests.iter().map(|d| (d.addr, d.forward)).collect();
        assert_eq!(d, vec![(sa("10.1.0.1:80"), Forward::Route), (sa("10.1.0.2:80"), Forward::Masq)]);
    }
    let fw = &t[&ServiceKey::Fwmark { family: Family::Inet, mark: 9 }];
    assert_eq!(fw.dests[0].addr, sa("10.1.0.1:8080"));
    let v6 = &t[&ServiceKey::Addr { protocol: Protocol::Udp, addr: sa("[2001:db8::1]:53") }];
    assert_eq!(v6.service.flags, wire::IP_VS_SVC_F_PERSISTENT | wire::IP_VS_SVC_F_ONEPACKET);
    assert_eq!((v6.service.timeout, v6.service.netmask), (360, 64));
    assert_eq!(v6.dests[0].forward, Forward::Tunnel(Tunnel { kind: TunnelKind::Gue, port: 6080, flags: 0 }));

    let bad = load("virtual_server 10.0.0.1 80 {\npersistence_timeout 5\npersistence_granularity 255.0.255.0\n}");
    let e = Runtime::new().desired(&bad).expect_err("non-contiguous mask");
    assert!(e.to_string().starts_with("t.conf:1:1: persistence_granularity"), "{e}");
}

#[test]
fn test_ha_suspend_follows_vrrp() {
    let c = load(
        "vrrp_instance VI_1 {
            interface lo
            virtual_router_id 5
            virtual_ipaddress {
                10.0.0.1
            }
        }
        virtual_server 10.0.0.1 80 {
            ha_suspend
            real_server 10.1.0.1 80 {
            }
        }
        virtual_server 10.0.0.2 80 {
            ha_suspend
            real_server 10.1.0.1 80 {
            }
        }",
    );
    let mut rt = Runtime::new();
    rt.adopt(&c);
    let t = rt.desired(&c).expect("table");
    // 10.0.0.2 belongs to no instance: ha_suspend has nothing to follow.
    assert_eq!(t.keys().copied().collect::<Vec<_>>(), vec![tcp("10.0.0.2:80")]);
    assert!(rt.set_master("VI_1", true));
    assert_eq!(rt.desired(&c).expect("table").len(), 2);
    assert!(rt.set_master("VI_1", false));
    assert_eq!(rt.desired(&c).expect("table").len(), 1);
}

#[test]
fn test_rules_render_like_ipvsadm_save() {
    let c = load(
        "virtual_server 10.0.0.1 80 {
            lb_algo rr
            persistence_timeout 50
            real_server 10.1.0.1 80 {
                weight 3
            }
        }",
    );
    let mut rt = Runtime::new();
    rt.adopt(&c);
    let t = rt.desired(&c).expect("table");
    assert_eq!(table::to_ipvsadm_rules(&t), "-A -t 10.0.0.1:80 -s rr -p 50\n-a -t 10.0.0.1:80 -r 10.1.0.1:80 -m -w 3\n");
}

#[test]
fn test_same_for_director_ignores_locations_and_checker_details() {
    let a = load(POOL);
    // Shifted lines, another file name, another connect_timeout: the same to the director.
    let shifted = format!("\n\n{}", POOL.replace("connect_timeout 1", "connect_timeout 5"));
    let b = match config::load_str(Path::new("other.conf"), &shifted) {
        Ok(l) => l.config,
        Err(e) => panic!("config: {e}"),
    };
    assert_ne!(a.virtual_servers[0], b.virtual_servers[0]);
    assert!(hav_linux::lvs::state::same_for_director(&a.virtual_servers[0], &b.virtual_servers[0]));
    // A weight is not.
    let c = load(&POOL.replace("weight 2", "weight 3"));
    assert!(!hav_linux::lvs::state::same_for_director(&a.virtual_servers[0], &c.virtual_servers[0]));
    // Nor is inhibit_on_failure, nor the sorry server.
    let d = load(&POOL.replace("        inhibit_on_failure\n", ""));
    assert!(!hav_linux::lvs::state::same_for_director(&a.virtual_servers[0], &d.virtual_servers[0]));
    let e = load(&POOL.replace("10.9.9.9 8080", "10.9.9.9 8081"));
    assert!(!hav_linux::lvs::state::same_for_director(&a.virtual_servers[0], &e.virtual_servers[0]));
}
