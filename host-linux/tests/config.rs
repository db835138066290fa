//! keepalived.conf loading: the real-world fixtures, and located errors.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use hav_linux::config::check::{CheckKind, PolicyTarget};
use hav_linux::config::vrrp::AuthType;
use hav_linux::config::{load, load_str, ConfigError, LbKind, Loaded, Protocol, VirtualServerKey, VrrpState, VrrpVersion};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/keepalived").join(name)
}

fn load_fixture(name: &str) -> Loaded {
    let path = fixture(name);
    match load(&path) {
        Ok(l) => l,
        Err(e) => panic!("{name} must load: {e}"),
    }
}

/// A fresh directory under the temp dir, unique per test and process.
fn temp_dir(tag: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "hav-config-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write temp file");
    p
}

fn err(text: &str) -> String {
    match load_str(Path::new("keepalived.conf"), text) {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(e) => e.to_string(),
    }
}

fn ok(text: &str) -> Loaded {
    match load_str(Path::new("keepalived.conf"), text) {
        Ok(l) => l,
        Err(e) => panic!("expected success, got {e}"),
    }
}

fn instance_with(body: &str) -> String {
    format!("vrrp_instance VI_1 {{\n    interface eth0\n    virtual_router_id 51\n{body}\n}}\n")
}

#[test]
fn all_fixtures_load() {
    let dir = fixture("");
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).expect("fixtures dir") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "conf") {
            if let Err(e) = load(&path) {
                panic!("{} failed: {e}", path.display());
            }
            count += 1;
        }
    }
    assert!(count >= 5, "only {count} fixtures found");
}

#[test]
fn lvs_nat_gateway_typed_values() {
    let l = load_fixture("lvs-nat-gateway.conf");
    let c = &l.config;
    assert_eq!(c.global.router_id.as_deref(), Some("LVS_MASTER"));
    assert_eq!(c.global.notification_email, vec!["qingean@163.com"]);
    assert_eq!(c.global.notification_email_from.as_deref(), Some("admin@test.com"));
    assert_eq!(c.global.smtp_server.as_ref().map(|s| (s.host.as_str(), s.port)), Some(("127.0.0.1", 25)));
    assert_eq!(c.vrrp_instances.len(), 2);
    let gw = c.instance("LAN_GATEWAY").expect("LAN_GATEWAY");
    assert_eq!(gw.virtual_router_id, 62);
    assert_eq!(gw.interface.as_deref(), Some("ens3"));
    assert_eq!(gw.virtual_ipaddresses[0].address, IpAddr::V4(Ipv4Addr::new(192, 168, 102, 165)));
    let vi1 = c.instance("VI_1").expect("VI_1");
    assert_eq!(vi1.state, VrrpState::Master);
    assert_eq!(vi1.authentication.as_ref().map(|a| (a.auth_type, a.auth_pass.as_str())), Some((AuthType::Pass, "1111")));

    assert_eq!(c.virtual_servers.len(), 2);
    let second_port = [80, 80];
    for (vs, _) in c.virtual_servers.iter().zip(second_port) {
        assert_eq!(vs.lb_algo, "rr");
        assert_eq!(vs.lb_kind, LbKind::Nat);
        assert_eq!(vs.persistence_timeout, Some(50));
        assert_eq!(vs.protocol, Protocol::Tcp);
        assert_eq!(vs.delay_loop, Duration::from_secs(6));
        assert_eq!(vs.real_servers.len(), 2);
        for rs in &vs.real_servers {
            assert_eq!(rs.weight, 3);
            assert_eq!(rs.checkers.len(), 1);
            let ch = &rs.checkers[0];
            assert_eq!(ch.kind, CheckKind::Tcp);
            assert_eq!(ch.common.connect_timeout, Duration::from_secs(3));
            assert_eq!(ch.common.retry, 3);
            assert_eq!(ch.common.delay_before_retry, Duration::from_secs(3));
            assert_eq!(ch.common.delay_loop, Duration::from_secs(6));
        }
    }
    assert_eq!(
        c.virtual_servers[1].key,
        VirtualServerKey::Addr(SocketAddr::new(IpAddr::V4(Ipv4Addr::new(193, 168, 140, 80)), 80))
    );
    assert_eq!(c.virtual_servers[1].real_servers[0].checkers[0].common.connect_port, Some(80));
    assert_eq!(c.virtual_servers[0].real_servers[1].addr, "192.168.102.162:80".parse().expect("addr"));
    // The virtual server's location is kept for later messages.
    assert_eq!(c.virtual_servers[1].location.line, 64);
}

#[test]
fn single_master_nbsp_warning_and_values() {
    let l = load_fixture("single-master.conf");
    let c = &l.config;
    assert_eq!(c.global.vrrp_mcast_group4, Ipv4Addr::new(224, 15, 15, 15));
    assert_eq!(c.global.router_id.as_deref(), Some("node1"));
    assert_eq!(c.global.notification_email, vec!["root@localhost"]);
    let vi = c.instance("VI_1").expect("VI_1");
    assert_eq!(vi.interface.as_deref(), Some("eno16777736"));
    assert_eq!(vi.virtual_router_id, 20);
    assert_eq!(vi.virtual_ipaddresses[0].prefix_len, 16);
    assert_eq!(vi.authentication.as_ref().map(|a| a.auth_pass.as_str()), Some("6b8a916c"));

    let nbsp: Vec<String> = l
        .warnings
        .iter()
        .filter(|w| w.message.contains("U+00A0"))
        .map(ToString::to_string)
        .collect();
    assert_eq!(nbsp.len(), 1, "one warning per file: {nbsp:?}");
    let expected_prefix = format!("{}:4:1: ", fixture("single-master.conf").display());
    assert!(nbsp[0].starts_with(&expected_prefix), "{}", nbsp[0]);
    assert!(nbsp[0].contains("18 line(s)"), "{}", nbsp[0]);
}

#[test]
fn track_script_nginx() {
    let l = load_fixture("track-script-nginx.conf");
    let c = &l.config;
    let s = c.script("check_nginx_alive").expect("script");
    assert_eq!(s.interval, Duration::from_secs(2));
    assert_eq!(s.weight, 10);
    assert_eq!(s.script.as_ref().expect("script").command, "/etc/keepalived/check_nginx_alive_or_not.sh");
    assert_eq!(s.script.as_ref().expect("script").argv, vec!["/etc/keepalived/check_nginx_alive_or_not.sh"]);
    assert_eq!((s.rise, s.fall), (1, 1));
    let vi = c.instance("VI_1").expect("VI_1");
    assert_eq!(vi.track_scripts.len(), 1);
    assert_eq!(vi.track_scripts[0].name, "check_nginx_alive");
    assert_eq!(vi.track_scripts[0].weight, None);
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
}

#[test]
fn annotated_defaults_ignored_keywords_warn() {
    let l = load_fixture("annotated-defaults.conf");
    let c = &l.config;
    assert!(c.global.vrrp_strict);
    assert!(c.global.vrrp_skip_check_adv_addr);
    assert_eq!(c.global.notification_email.len(), 3);
    assert_eq!(c.global.router_id.as_deref(), Some("LVS_DEVEL"));
    let vi = c.instance("VI_1").expect("VI_1");
    assert_eq!(vi.virtual_ipaddresses.len(), 3);
    assert!(!vi.accept, "vrrp_strict turns accept off by default");
    // The daemon acts on these now: typed, and no "ignored" warning.
    for kw in ["vrrp_skip_check_adv_addr", "vrrp_garp_interval", "vrrp_gna_interval"] {
        assert!(
            !l.warnings.iter().any(|w| w.message.contains(kw) && w.message.contains("ignored")),
            "{kw} is acted on, yet warned as ignored: {:?}",
            l.warnings
        );
    }
}

#[test]
fn dual_master_two_instances() {
    let l = load_fixture("dual-master-node1.conf");
    let c = &l.config;
    assert_eq!(c.vrrp_instances.len(), 2);
    assert_eq!(c.vrrp_instances[1].state, VrrpState::Backup);
    assert_eq!(c.vrrp_instances[1].priority, 80);
    assert_eq!(c.vrrp_instances[1].version, VrrpVersion::V2);
}

#[test]
fn typo_in_instance_is_located_with_suggestion() {
    let text = instance_with("    priorty 100");
    assert_eq!(
        err(&text),
        "keepalived.conf:4:5: unknown keyword 'priorty' in vrrp_instance (did you mean 'priority'?)"
    );
}

#[test]
fn out_of_range_values_are_located() {
    let e = err("vrrp_instance VI_1 {\n    virtual_router_id 0\n}\n");
    assert_eq!(e, "keepalived.conf:2:23: virtual_router_id must be between 1 and 255, got 0");
    let e = err("vrrp_instance VI_1 {\n    virtual_router_id 256\n}\n");
    assert_eq!(e, "keepalived.conf:2:23: virtual_router_id must be between 1 and 255, got 256");
    assert_eq!(err(&instance_with("  priority 0")), "keepalived.conf:4:12: priority must be between 1 and 255, got 0");
    assert_eq!(err(&instance_with("  priority 256")), "keepalived.conf:4:12: priority must be between 1 and 255, got 256");
    assert_eq!(err(&instance_with("  priority high")), "keepalived.conf:4:12: 'priority' needs an integer, got 'high'");
}

#[test]
fn bad_addresses_are_located() {
    let e = err(&instance_with("  virtual_ipaddress {\n    10.0.0.300\n  }"));
    assert_eq!(e, "keepalived.conf:5:5: invalid IP address '10.0.0.300'");
    let e = err(&instance_with("  virtual_ipaddress {\n    10.0.0.3/40\n  }"));
    assert_eq!(e, "keepalived.conf:5:5: invalid prefix length '/40' for 10.0.0.3 (0..=32)");
    let e = err(&instance_with("  unicast_src_ip 1.2.3"));
    assert_eq!(e, "keepalived.conf:4:18: invalid IP address '1.2.3'");
}

#[test]
fn missing_value_is_located() {
    assert_eq!(err(&instance_with("  priority")), "keepalived.conf:4:3: missing value for 'priority'");
}

#[test]
fn unbalanced_braces_are_located() {
    assert_eq!(
        err("global_defs {\n  router_id x\n\nvrrp_instance VI_1 {\n  virtual_router_id 1\n}\n"),
        "keepalived.conf:1:13: unbalanced '{': this block is never closed"
    );
    assert_eq!(
        err("global_defs {\n  router_id x\n}\n}\n"),
        "keepalived.conf:4:1: unbalanced '}': no block is open here"
    );
}

#[test]
fn brace_on_next_line_and_glued_braces() {
    let l = ok("vrrp_instance VI_1\n{\n  interface eth0\n  virtual_router_id 9\n  virtual_ipaddress\n  {\n    10.0.0.1}\n}\nvirtual_server 10.0.0.1 443{\n  real_server 10.0.0.2 443{\n    weight 2}\n}\n");
    assert_eq!(l.config.vrrp_instances[0].virtual_ipaddresses.len(), 1);
    assert_eq!(l.config.virtual_servers[0].real_servers[0].weight, 2);
}

#[test]
fn quoted_notify_scripts_keep_string_and_argv() {
    let l = ok(&instance_with(
        "  notify_master \"/etc/keepalived/notify.sh master #1\"\n  notify_backup /etc/keepalived/notify.sh backup # comment",
    ));
    let n = &l.config.vrrp_instances[0].notify;
    let m = n.master.as_ref().expect("master");
    assert_eq!(m.command, "/etc/keepalived/notify.sh master #1");
    assert_eq!(m.argv, vec!["/etc/keepalived/notify.sh", "master", "#1"]);
    let b = n.backup.as_ref().expect("backup");
    // keepalived's form: COMMAND [USER [GROUP]]; an unquoted second word is the user.
    assert_eq!(b.argv, vec!["/etc/keepalived/notify.sh"]);
    assert_eq!(b.user.as_ref().map(|u| (u.user.as_str(), u.group.as_deref())), Some(("backup", None)));
    assert_eq!(m.user, None);
}

/// `notify_deleted` takes an optional script: alone it switches a removed instance's
/// notification from FAULT to DELETED; neither form warns.
#[test]
fn notify_deleted_with_and_without_a_script() {
    let l = ok(&instance_with("  no_virtual_ipaddress\n  notify_deleted"));
    let n = &l.config.vrrp_instances[0].notify;
    assert!(n.send_deleted && n.deleted.is_none(), "{n:?}");
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    let l = ok(&instance_with("  no_virtual_ipaddress\n  notify_deleted \"/bin/true deleted\""));
    let n = &l.config.vrrp_instances[0].notify;
    assert!(n.send_deleted, "{n:?}");
    assert_eq!(n.deleted.as_ref().map(|s| s.argv.clone()), Some(vec!["/bin/true".to_owned(), "deleted".to_owned()]));
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    let l = ok(&instance_with("  no_virtual_ipaddress"));
    assert!(!l.config.vrrp_instances[0].notify.send_deleted);
}

#[test]
fn advert_int_rounding_warning_v2_and_fraction_v3() {
    let l = ok(&instance_with("  advert_int 0.3\n  no_virtual_ipaddress"));
    assert_eq!(l.config.vrrp_instances[0].advert_int, Duration::from_secs(1));
    let w: Vec<String> = l.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].starts_with("keepalived.conf:4:14: advert_int 0.3 rounded up to 1 s"), "{}", w[0]);
    assert!(w[0].contains("whole seconds"), "{}", w[0]);

    let l = ok(&instance_with("  version 3\n  advert_int 0.3\n  no_virtual_ipaddress"));
    assert_eq!(l.config.vrrp_instances[0].advert_int, Duration::from_millis(300));
    assert!(l.warnings.is_empty());
}

#[test]
fn ignored_keywords_warn_not_fail() {
    let l = ok("global_defs {\n  lvs_flush\n  enable_traps\n}\n");
    assert_eq!(l.warnings.len(), 2);
    assert_eq!(l.warnings[0].to_string(), "keepalived.conf:2:3: 'lvs_flush' in global_defs: hav does not flush the IPVS table at start-up; it manages only the services it configures; ignored");
}

#[test]
fn semantic_errors() {
    // An undefined script is dropped with a warning, as keepalived drops it
    // (tests/config_keywords.rs); the sync group member below stays an error.
    // Duplicate instance names.
    let one = instance_with("");
    let e = err(&format!("{one}{}", one.replace("virtual_router_id 51", "virtual_router_id 52")));
    assert_eq!(e, "keepalived.conf:6:1: duplicate vrrp_instance 'VI_1' (first defined at keepalived.conf:1:1)");
    // Same VRID on the same interface and family.
    let e = err(&format!("{one}{}", one.replace("VI_1", "VI_2")));
    assert!(e.starts_with("keepalived.conf:6:1: vrrp_instance VI_2 uses virtual_router_id 51 on interface eth0"), "{e}");
    // Sync group member that does not exist.
    let e = err(&format!("{one}vrrp_sync_group G {{\n  group {{\n    VI_1\n    VI_9\n  }}\n}}\n"));
    assert_eq!(e, "keepalived.conf:9:5: sync group 'G' member 'VI_9' is not a vrrp_instance");
    // Unicast peers of the wrong family and IPv6 in VRRPv2 are settled with a
    // warning, as keepalived settles them (tests/config_keywords.rs).
    ok(&instance_with("  version 3\n  virtual_ipaddress {\n    2001:db8::1/64\n  }"));
}

#[test]
fn virtual_server_variants_and_checkers() {
    let l = ok(r#"
virtual_server_group WEB {
    10.0.0.1-10 80
    fwmark 7
}
vrrp_track_file maint {
    file /run/maint
    weight -10 reverse
    init_file 0 overwrite
}
virtual_server group WEB {
    lvs_sched sh
    sh-port
    lvs_method TUN type gre
    protocol UDP
    real_server 10.1.0.1 80 {
        HTTP_GET {
            url {
                path /healthz
                status_code 200-299
                regex "ok#1"
            }
            connect_timeout 2
        }
        MISC_CHECK {
            misc_path "/usr/bin/check.sh --fast"
            misc_dynamic
        }
        FILE_CHECK {
            track_file maint
        }
        WASM_CHECK {
            policy /etc/hav/p.wasm
            targets {
                10.1.0.1 8080
            }
            timeout 1.5
        }
    }
}
"#);
    let vs = &l.config.virtual_servers[0];
    assert_eq!(vs.key, VirtualServerKey::Group("WEB".into()));
    assert!(vs.sched_flags.port);
    assert_eq!(vs.protocol, Protocol::Udp);
    let checks = &vs.real_servers[0].checkers;
    assert_eq!(checks.len(), 4);
    match &checks[0].kind {
        CheckKind::Http(h) => {
            assert_eq!(h.urls[0].status_codes, vec![200..=299]);
            assert_eq!(h.urls[0].regex.as_deref(), Some("ok#1"));
        }
        other => panic!("expected HTTP_GET, got {other:?}"),
    }
    assert_eq!(checks[0].common.connect_timeout, Duration::from_secs(2));
    match &checks[1].kind {
        CheckKind::Misc(m) => assert_eq!(m.misc_path.argv, vec!["/usr/bin/check.sh", "--fast"]),
        other => panic!("expected MISC_CHECK, got {other:?}"),
    }
    match &checks[3].kind {
        CheckKind::Wasm(w) => {
            assert_eq!(w.policy, "/etc/hav/p.wasm");
            // A bare pair (the form before host-call kinds) allows every kind.
            assert_eq!(w.targets, vec![PolicyTarget::any("10.1.0.1:8080".parse::<SocketAddr>().expect("addr"))]);
            assert_eq!(w.protocol, Protocol::Udp);
            assert_eq!(w.timeout, Some(Duration::from_millis(1500)));
        }
        other => panic!("expected WASM_CHECK, got {other:?}"),
    }
    let tf = &l.config.vrrp_track_files[0];
    assert_eq!((tf.weight, tf.reverse), (-10, true));
    assert_eq!(tf.init_file.map(|i| i.overwrite), Some(true));
}

#[test]
fn include_with_glob_relative_to_including_file() {
    let dir = temp_dir("glob");
    std::fs::create_dir_all(dir.join("conf.d")).expect("mkdir");
    write(&dir.join("conf.d"), "a.conf", "vrrp_instance A {\n  interface eth0\n  virtual_router_id 1\n}\n");
    write(&dir.join("conf.d"), "b.conf", "vrrp_instance B {\n  interface eth0\n  virtual_router_id 2\n}\n");
    write(&dir.join("conf.d"), "ignored.txt", "garbage {\n");
    let main = write(&dir, "keepalived.conf", "global_defs {\n  router_id x\n}\ninclude conf.d/*.conf\n");
    let l = load(&main).expect("loads");
    let names: Vec<&str> = l.config.vrrp_instances.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["A", "B"]);
    // Locations inside included files name the included file.
    assert!(l.config.vrrp_instances[1].location.file.ends_with("conf.d/b.conf"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn error_inside_include_names_the_included_file() {
    let dir = temp_dir("incerr");
    let inc = write(&dir, "vi.conf", "vrrp_instance A {\n  virtual_router_id 1\n  priorty 5\n}\n");
    let main = write(&dir, "keepalived.conf", "include vi.conf\n");
    let e = load(&main).expect_err("typo");
    assert_eq!(
        e.to_string(),
        format!(
            "{}:3:3: unknown keyword 'priorty' in vrrp_instance (did you mean 'priority'?) (in a file included from {}:1:9)",
            inc.display(),
            main.display()
        )
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn missing_include_is_located() {
    // keepalived only warns about a missing file named by 'include';
    // 'includem' (or include_check match) makes it an error.
    let dir = temp_dir("missing");
    let main = write(&dir, "keepalived.conf", "global_defs {\n  router_id x\n}\n  include /nonexistent/hav-xyz.conf\n");
    let l = load(&main).expect("a missing plain include is a warning");
    let w: Vec<String> = l.warnings.iter().map(ToString::to_string).collect();
    assert!(
        w.iter().any(|w| w.starts_with(&format!("{}:4:11: include: '/nonexistent/hav-xyz.conf' does not exist", main.display()))),
        "{w:?}"
    );
    let main = write(&dir, "keepalived.conf", "global_defs {\n  router_id x\n}\n  includem /nonexistent/hav-xyz.conf\n");
    let e = load(&main).expect_err("missing includem");
    assert!(matches!(e, ConfigError::Io { .. }));
    let s = e.to_string();
    assert!(s.starts_with(&format!("{}:4:12: cannot read '/nonexistent/hav-xyz.conf'", main.display())), "{s}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn include_cycle_is_detected() {
    let dir = temp_dir("cycle");
    let a = write(&dir, "a.conf", "include b.conf\n");
    let b = write(&dir, "b.conf", "\ninclude a.conf\n");
    let e = load(&a).expect_err("cycle");
    assert!(matches!(e, ConfigError::IncludeCycle { .. }), "{e}");
    let s = e.to_string();
    assert!(s.starts_with(&format!("{}:2:9: include cycle: ", b.display())), "{s}");
    assert!(s.contains("a.conf -> ") && s.ends_with(&format!("a.conf (in a file included from {}:1:9)", a.display())), "{s}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn self_include_depth_is_bounded() {
    // Distinct files including each other in a chain deeper than the limit.
    let dir = temp_dir("depth");
    let n = hav_linux::config::MAX_INCLUDE_DEPTH + 2;
    for i in 0..n {
        write(&dir, &format!("f{i}.conf"), &format!("include f{}.conf\n", i + 1));
    }
    write(&dir, &format!("f{n}.conf"), "");
    let e = load(&dir.join("f0.conf")).expect_err("too deep");
    assert!(matches!(e, ConfigError::IncludeDepth { .. }), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn missing_root_file() {
    let e = load(Path::new("/nonexistent/keepalived.conf")).expect_err("missing");
    assert!(e.to_string().starts_with("/nonexistent/keepalived.conf: cannot read"), "{e}");
}

#[test]
fn bad_input_never_panics() {
    let samples = [
        "", "{", "}", "\"", "vrrp_instance", "vrrp_instance {", "vrrp_instance X { virtual_ipaddress }",
        "virtual_server", "virtual_server 1.2.3.4", "virtual_server fwmark", "virtual_server 1.2.3.4 80 { real_server }",
        "virtual_server 1.2.3.4 80 { real_server 1.1.1.1 1 { HTTP_GET { url } } }",
        "global_defs { smtp_server }", "vrrp_script s { weight }", "vrrp_track_file f { weight }",
        "vrrp_instance X { virtual_router_id 1 track_interface { eth0 weight } }",
        "vrrp_instance X { virtual_router_id 1\n advert_int nan }", "vrrp_instance X { virtual_router_id 1\n advert_int -1 }",
        "virtual_server_group G { 10.0.0.1-x 80 }", "virtual_server 1.2.3.4 80 { lb_kind TUN type gue }",
        "include", "\u{a0}\u{3000}{", "global_defs { lvs_sync_daemon eth0 VI id }",
    ];
    for s in samples {
        let _ = load_str(Path::new("fuzz.conf"), s);
    }
}

#[test]
fn vrrp_script_policy_keyword() {
    let l = ok(r#"vrrp_script lat {
    policy latency_priority
    args target=127.0.0.1:8080 threshold_ms=50 delta=-20
    targets {
        127.0.0.1 8080
        ::1 8080
    }
    interval 2
    weight -20
}
vrrp_script sh {
    script "/bin/true"
}
"#);
    let s = l.config.script("lat").expect("lat");
    assert_eq!(s.policy.as_deref(), Some("latency_priority"));
    assert!(s.script.is_none());
    assert_eq!(s.args.as_deref(), Some("target=127.0.0.1:8080 threshold_ms=50 delta=-20"));
    assert_eq!(
        s.targets,
        vec![
            PolicyTarget::any("127.0.0.1:8080".parse::<SocketAddr>().expect("addr")),
            PolicyTarget::any("[::1]:8080".parse::<SocketAddr>().expect("addr"))
        ]
    );
    assert_eq!(s.interval, Duration::from_secs(2));
    let sh = l.config.script("sh").expect("sh");
    assert!(sh.policy.is_none());
    assert_eq!(sh.script.as_ref().expect("script").command, "/bin/true");
}

#[test]
fn vrrp_script_needs_exactly_one_of_script_and_policy() {
    let e = err("vrrp_script both {\n    script /bin/true\n    policy p.wasm\n}\n");
    assert!(e.starts_with("keepalived.conf:3:5: "), "{e}");
    assert!(e.contains("both 'script' and 'policy'"), "{e}");
    let e = err("vrrp_script none {\n    interval 2\n}\n");
    assert!(e.starts_with("keepalived.conf:1:1: "), "{e}");
    assert!(e.contains("neither 'script' nor 'policy'"), "{e}");
    let e = err("vrrp_script s {\n    script /bin/true\n    args x=1\n}\n");
    assert!(e.contains("'args' and 'targets' need 'policy'"), "{e}");
    let e = err("vrrp_script p {\n    policy x\n    targets {\n        127.0.0.1\n    }\n}\n");
    assert!(e.starts_with("keepalived.conf:4:9: "), "{e}");
    assert!(e.contains("IP PORT"), "{e}");
}

#[test]
fn wasm_check_args() {
    let l = ok(r#"virtual_server 10.0.0.1 80 {
    real_server 10.0.0.2 80 {
        WASM_CHECK {
            policy http_check
            args path=/health status=200 "body=ok"
        }
    }
}
"#);
    match &l.config.virtual_servers[0].real_servers[0].checkers[0].kind {
        CheckKind::Wasm(w) => {
            assert_eq!(w.policy, "http_check");
            assert_eq!(w.args.as_deref(), Some("path=/health status=200 body=ok"));
            assert!(w.targets.is_empty());
        }
        other => panic!("expected WASM_CHECK, got {other:?}"),
    }
}

#[test]
fn checker_retry_defaults_per_type() {
    // keepalived.conf(5): retry 3 for DNS_CHECK, 0 for MISC_CHECK, else 1; delay_before_retry
    // 3 s for HTTP_GET/SSL_GET, delay_loop for DNS_CHECK, else 1 s; explicit values win.
    let l = ok("virtual_server 10.0.0.1 80 {\n delay_loop 7\n real_server 10.0.0.2 80 {\n\
         TCP_CHECK {\n }\n HTTP_GET {\n url {\n path /\n }\n }\n DNS_CHECK {\n }\n MISC_CHECK {\n misc_path /bin/true\n }\n\
         DNS_CHECK {\n retry 1\n delay_before_retry 2\n }\n }\n}\n");
    let got: Vec<(u32, Duration)> =
        l.config.virtual_servers[0].real_servers[0].checkers.iter().map(|c| (c.common.retry, c.common.delay_before_retry)).collect();
    let s = Duration::from_secs;
    assert_eq!(got, vec![(1, s(1)), (1, s(3)), (3, s(7)), (0, s(1)), (1, s(2))]);
}
