//! The `hav-linux` command line: `--check` on every fixture and on broken configs (exit codes
//! and located errors), usage errors, and `demo`.

use std::path::Path;
use std::process::{Command, Output};

fn hav(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hav-linux")).args(args).output().expect("running hav-linux")
}

fn fixtures() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/keepalived")
}

#[test]
fn check_accepts_every_fixture() {
    let mut n = 0;
    for e in std::fs::read_dir(fixtures()).expect("fixtures") {
        let p = e.expect("entry").path();
        if p.extension().is_some_and(|x| x == "conf") {
            let out = hav(&["--check", "-f", p.to_str().expect("utf-8")]);
            assert!(out.status.success(), "{}: {}", p.display(), String::from_utf8_lossy(&out.stderr));
            assert!(String::from_utf8_lossy(&out.stdout).contains(": OK ("));
            n += 1;
        }
    }
    assert!(n >= 5, "only {n} fixtures found");
}

fn check_text(text: &str) -> (i32, String) {
    let dir = std::env::temp_dir().join(format!("hav-cli-{}-{}", std::process::id(), text.len()));
    std::fs::create_dir_all(&dir).expect("dir");
    let f = dir.join("keepalived.conf");
    std::fs::write(&f, text).expect("write");
    let out = hav(&["--check", "-f", f.to_str().expect("utf-8")]);
    let _ = std::fs::remove_dir_all(&dir);
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn check_reports_errors_with_their_location_and_exits_1() {
    let (code, err) = check_text("vrrp_instance VI_1 {\n    interface eth0\n    virtual_router_id 51\n    priorty 100\n}\n");
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("keepalived.conf:4:5: unknown keyword 'priorty'"), "{err}");

    // Valid syntax, but two instances share a VRID on one interface.
    let inst = |name: &str| format!("vrrp_instance {name} {{\n  interface eth0\n  virtual_router_id 7\n  virtual_ipaddress {{\n    10.1.1.1\n  }}\n}}\n");
    let (code, err) = check_text(&format!("{}{}", inst("A"), inst("B")));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("keepalived.conf:8:1: vrrp_instance B uses virtual_router_id 7 on interface eth0 like vrrp_instance A"), "{err}");

    // A sync group naming an instance that does not exist.
    let (code, err) = check_text(&format!("{}vrrp_sync_group G {{\n  group {{\n    A\n    NOPE\n  }}\n}}\n", inst("A")));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("NOPE"), "{err}");
}

#[test]
fn check_of_a_missing_file_exits_1_and_names_it() {
    let out = hav(&["--check", "-f", "/nonexistent/keepalived.conf"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/keepalived.conf"));
}

#[test]
fn usage_errors_exit_2() {
    let out = hav(&["--no-such-flag"]);
    assert_eq!(out.status.code(), Some(2));
    let out = hav(&["standby"]);
    assert_eq!(out.status.code(), Some(2), "standby needs an instance");
}

#[test]
fn control_commands_without_a_daemon_fail_clearly() {
    let out = hav(&["status", "--control", "/nonexistent/hav.sock"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot reach the daemon"));
}

#[test]
fn demo_shows_a_failover() {
    if hav_tests::netns::skip_unless_root("demo_shows_a_failover") {
        return;
    }
    let out = hav(&["demo"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("r2 took over the VIP"), "{text}");
    assert!(text.contains("r3 took over after"), "{text}");
    assert!(text.contains("lost") && text.contains("failover"), "{text}");
    let left = Command::new("ip").args(["netns", "list"]).output().expect("ip");
    assert!(!String::from_utf8_lossy(&left.stdout).contains("havdemo"), "the demo left namespaces behind");
}

#[test]
fn check_validates_policies() {
    // A vrrp_script naming a policy that is neither loaded nor a file.
    let conf = "vrrp_script p {\n  policy nosuch\n}\nvrrp_instance VI_1 {\n  interface eth0\n  virtual_router_id 5\n  track_script {\n    p\n  }\n  virtual_ipaddress {\n    10.1.1.1\n  }\n}\n";
    let (code, err) = check_text(conf);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("keepalived.conf:1:1") && err.contains("nosuch"), "{err}");

    // A module with the wrong ABI version, given with --policy.
    let dir = std::env::temp_dir().join(format!("hav-cli-pol-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let wat = dir.join("old.wat");
    std::fs::write(&wat, r#"(module (memory (export "memory") 1) (func (export "hav_abi_version") (result i32) (i32.const 99)) (func (export "hav_alloc") (param i32) (result i32) (i32.const 0)) (func (export "hav_check") (param i32 i32) (result i64) (i64.const 0)))"#).expect("wat");
    let cfg = dir.join("keepalived.conf");
    std::fs::write(&cfg, "global_defs {\n  router_id x\n}\n").expect("conf");
    let out = hav(&["--check", "-f", cfg.to_str().expect("utf-8"), "--policy", wat.to_str().expect("utf-8")]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("old.wat") && err.contains("99"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
