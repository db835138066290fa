//! `hav-embedded-tap encode` / `decode`: the stored config the firmware
//! reads from flash, written and read back by the std tool, and bad input
//! refused with a message that names it.

use std::path::PathBuf;
use std::process::{Command, Output};

use hav_embedded::NodeConfig;

fn tool(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hav-embedded-tap")).args(args).output().expect("run tool")
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hav-embedded-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir.join(name)
}

#[test]
fn test_encode_decode_roundtrip() {
    let out = scratch("node.cfg");
    let o = out.to_str().unwrap();
    let r = tool(&[
        "encode", "--address", "192.168.1.2/24", "--mac", "02:00:00:00:00:07",
        "--vrid", "51", "--priority", "150", "--version", "3", "--advert-int", "0.5",
        "--vip", "192.168.1.1", "--vip", "192.168.1.9", "--nopreempt",
        "--vrid", "52", "--auth-pass", "secret", "--vip", "192.168.1.3",
        "--unicast-peer", "192.168.1.4", "--garp-repeat", "2", "-o", o,
    ]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let bytes = std::fs::read(&out).unwrap();
    let node = NodeConfig::from_stored(&bytes).expect("stored config decodes");
    assert_eq!(node.mac, Some([2, 0, 0, 0, 0, 7]));
    assert_eq!(node.prefix_len, 24);
    assert_eq!(node.instances.len(), 2);
    let (a, b) = (&node.instances[0], &node.instances[1]);
    assert_eq!((a.vrid, a.priority, a.preempt, a.vips.len()), (51, 150, false, 2));
    assert_eq!(a.adver_int, hav_core::Duration::from_centis(50));
    assert_eq!(a.version, hav_core::wire::VrrpVersion::V3);
    assert_eq!(b.auth, hav_core::wire::VrrpAuth::simple(b"secret"));
    assert_eq!((b.peers.len(), b.garp.master_repeat), (1, 2));

    let r = tool(&["decode", o]);
    assert!(r.status.success());
    let text = String::from_utf8_lossy(&r.stdout);
    assert!(text.contains("192.168.1.9") && text.contains("vrid: 52"), "{text}");
    let _ = std::fs::remove_file(&out);
}

#[test]
fn test_bad_input_is_named() {
    let out = scratch("bad.cfg");
    let o = out.to_str().unwrap();
    let cases: [(&[&str], &str); 6] = [
        (&["encode", "--address", "10.0.0.2", "-o", o], "--address: want A.B.C.D/LEN"),
        (&["encode", "--address", "10.0.0.2/24", "--vrid", "1", "-o", o], "at least one virtual address"),
        (&["encode", "--address", "10.0.0.2/24", "--priority", "9"], "--priority: comes after --vrid"),
        (
            &["encode", "--address", "10.0.0.2/24", "--vrid", "1", "--vip", "10.0.0.9",
              "--version", "2", "--advert-int", "0.5", "-o", o],
            "advert_int out of range",
        ),
        (&["encode", "--address", "10.0.0.2/24", "--vrid", "x"], "--vrid: bad value x"),
        (&["run", "--tap"], "--tap: missing value"),
    ];
    for (args, want) in cases {
        let r = tool(args);
        let err = String::from_utf8_lossy(&r.stderr);
        assert_eq!(r.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: want {want:?} in {err:?}");
    }
    std::fs::write(&out, [4, 0, 0xff, 0xff, 0xff, 0xff]).unwrap();
    let r = tool(&["decode", o]);
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(err.contains(o) && err.contains("not a postcard NodeConfig"), "{err}");
    let _ = std::fs::remove_file(&out);
}

/// `config` writes from a keepalived.conf the same stored config as
/// `encode` with the equivalent flags, and names what it ignored.
#[test]
fn test_config_from_keepalived_conf() {
    let conf = scratch("keepalived.conf");
    std::fs::write(
        &conf,
        "global_defs {\n  router_id gw\n  vrrp_version 3\n}\n\
         vrrp_instance VI_1 {\n  state MASTER\n  interface eth0\n  virtual_router_id 51\n  priority 150\n\
         \x20 advert_int 0.5\n  garp_master_repeat 2\n  virtual_ipaddress {\n    10.0.0.50/24 dev eth0\n  }\n}\n\
         vrrp_instance VI_6 {\n  interface eth0\n  virtual_router_id 52\n  priority 120\n  advert_int 1\n\
         \x20 virtual_ipaddress {\n    fd00::50/64\n  }\n}\n",
    )
    .unwrap();
    let (from_conf, from_flags) = (scratch("conf.cfg"), scratch("flags.cfg"));
    let node = ["--address", "10.0.0.2/24", "--link-local", "fe80::2"];
    let mut args = vec!["config", conf.to_str().unwrap()];
    args.extend(node);
    args.extend(["-o", from_conf.to_str().unwrap()]);
    let r = tool(&args);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(err.contains("ignored: vrrp_instance VI_1: state"), "{err}");

    let mut args = vec!["encode"];
    args.extend(node);
    args.extend([
        "--vrid", "51", "--priority", "150", "--advert-int", "0.5", "--garp-repeat", "2",
        "--vip", "10.0.0.50", "--version", "3",
        "--vrid", "52", "--priority", "120", "--advert-int", "1", "--vip", "fd00::50", "--ipv6",
        "-o", from_flags.to_str().unwrap(),
    ]);
    let r = tool(&args);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let a = NodeConfig::from_stored(&std::fs::read(&from_conf).unwrap()).unwrap();
    let b = NodeConfig::from_stored(&std::fs::read(&from_flags).unwrap()).unwrap();
    assert_eq!(a, b);
    assert_eq!(a.instances[1].primary_addr, "fe80::2".parse::<std::net::IpAddr>().unwrap());
    assert_eq!(a.instances[0].version, hav_core::wire::VrrpVersion::V3);

    let mut args = vec!["config", conf.to_str().unwrap(), "--instance", "VI_6"];
    args.extend(node);
    args.extend(["-o", from_conf.to_str().unwrap()]);
    assert!(tool(&args).status.success());
    let only = NodeConfig::from_stored(&std::fs::read(&from_conf).unwrap()).unwrap();
    assert_eq!(only.instances.iter().map(|c| c.vrid).collect::<Vec<_>>(), [52]);
    for p in [conf, from_conf, from_flags] {
        let _ = std::fs::remove_file(p);
    }
}
