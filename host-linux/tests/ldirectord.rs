//! ldirectord.cf: `hav-linux -t` runs the fixtures in tests/fixtures/ldirectord as they are,
//! `hav-linux convert` prints keepalived.conf that passes `-t` too, and both load to the same
//! virtual servers; located errors; the model the sample loads to.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use hav_linux::config::{self, CheckKind, LbKind, VirtualServerKey};

fn hav(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hav-linux")).args(args).output().expect("running hav-linux")
}

fn fixtures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/ldirectord");
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("fixtures")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "cf"))
        .collect();
    v.sort();
    assert!(v.len() >= 4, "only {} fixtures", v.len());
    v
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/ldirectord").join(name)
}

fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("hav-ldirectord-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

use hav_linux::config::ldirectord::same_places as meaning;

#[test]
fn check_runs_every_fixture_and_its_conversion() {
    for f in fixtures() {
        let name = f.file_name().expect("name").to_string_lossy().into_owned();
        let out = hav(&["-t", "-f", f.to_str().expect("utf-8")]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(stdout.contains(": OK (0 vrrp_instance") && !stdout.contains(" 0 virtual_server)"), "{name}: {stdout}");

        let conv = hav(&["convert", f.to_str().expect("utf-8")]);
        assert!(conv.status.success(), "{name}: {}", String::from_utf8_lossy(&conv.stderr));
        let text = String::from_utf8(conv.stdout).expect("utf-8");
        assert!(text.contains("virtual_server "), "{name}: {text}");
        let dir = temp_dir(&name);
        let ka = dir.join("keepalived.conf");
        std::fs::write(&ka, &text).expect("write");
        let out2 = hav(&["-t", "-f", ka.to_str().expect("utf-8")]);
        assert!(out2.status.success(), "{name} converted: {}\n{text}", String::from_utf8_lossy(&out2.stderr));
        // The same count line: the same number of virtual servers.
        let counts = |s: &str| s.split(": OK ").nth(1).map(str::to_owned);
        assert_eq!(counts(&stdout), counts(&String::from_utf8_lossy(&out2.stdout)), "{name}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn conversion_loads_to_the_same_virtual_servers() {
    for f in fixtures() {
        let direct = config::load(&f).unwrap_or_else(|e| panic!("{e}"));
        let (text, warnings) = config::convert_ldirectord(&f).unwrap_or_else(|e| panic!("{e}"));
        // convert warns what loading warns, at the same lines of the ldirectord.cf.
        assert_eq!(warnings, direct.warnings, "{}", f.display());
        let dir = temp_dir(&format!("rt-{}", f.file_name().expect("name").to_string_lossy()));
        let ka = dir.join("keepalived.conf");
        std::fs::write(&ka, &text).expect("write");
        let converted = config::load(&ka).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let _ = std::fs::remove_dir_all(&dir);
        assert!(!direct.config.virtual_servers.is_empty());
        assert_eq!(meaning(direct.config.virtual_servers), meaning(converted.config.virtual_servers), "{}", f.display());
        // Locations of the direct load point into the ldirectord.cf.
    }
}

fn addr(s: &str) -> VirtualServerKey {
    VirtualServerKey::Addr(s.parse::<SocketAddr>().expect("addr"))
}

#[test]
fn the_sample_loads_as_ldirectord_means_it() {
    let f = fixture("sample.cf");
    let l = config::load(&f).expect("sample loads");
    let vs = &l.config.virtual_servers;
    assert_eq!(vs.len(), 15);
    let web = &vs[0];
    assert_eq!(web.key, addr("192.168.6.240:80"));
    assert_eq!(web.location.line, 25, "the virtual= line");
    assert_eq!((web.lb_algo.as_str(), web.lb_kind, web.delay_loop), ("rr", LbKind::Dr, Duration::from_secs(1)));
    assert!(!web.inhibit_on_failure, "quiescent=no");
    assert_eq!(web.sorry_server.as_ref().map(|s| s.addr), Some("127.0.0.1:80".parse().expect("addr")));
    assert_eq!(web.real_servers.len(), 3);
    let rs = &web.real_servers[0];
    assert_eq!((rs.addr, rs.weight, rs.location.line), ("192.168.6.2:80".parse().expect("addr"), 1, 26));
    let CheckKind::Http(h) = &rs.checkers[0].kind else { panic!("{:?}", rs.checkers) };
    assert!(!h.tls);
    assert_eq!(h.urls[0].path, "/index.html");
    assert_eq!(h.urls[0].regex.as_deref(), Some("Test Page"));
    assert_eq!(h.virtualhost.as_deref(), Some("www.x.y.z"));
    let c = &rs.checkers[0].common;
    assert_eq!((c.connect_port, c.connect_timeout, c.retry), (Some(80), Duration::from_secs(3), 0));

    assert_eq!(vs[1].key, VirtualServerKey::Fwmark(1));
    assert_eq!(vs[1].real_servers[0].addr, "192.168.6.2:0".parse().expect("addr"));
    // 192.168.6.2->192.168.6.7 is six real servers, and one more.
    assert_eq!(vs[2].real_servers.len(), 7);
    assert_eq!(vs[2].real_servers[5].addr, "192.168.6.7:80".parse().expect("addr"));
    // https with masq: SSL_GET, NAT.
    assert_eq!(vs[3].lb_kind, LbKind::Nat);
    assert!(matches!(&vs[3].real_servers[0].checkers[0].kind, CheckKind::Http(h) if h.tls));
    // ftp: a TCP connect, and a warning that says so, at the service line.
    assert_eq!(vs[4].real_servers[0].checkers[0].kind, CheckKind::Tcp);
    let file = f.display().to_string();
    let said = |at: &str, what: &str| l.warnings.iter().any(|w| w.to_string().starts_with(&format!("{file}:{at}: ")) && w.to_string().contains(what));
    assert!(said("96:10", "service=ftp: hav has no ftp check; it checks with TCP_CHECK"), "{:#?}", l.warnings);
    assert!(said("99:2", "'scheduler' is set again"), "{:#?}", l.warnings);
    assert_eq!(vs[4].lb_algo, "rr");
    // smtp: SMTP_CHECK, persistent.
    assert!(matches!(vs[5].real_servers[0].checkers[0].kind, CheckKind::Smtp(_)));
    assert_eq!(vs[5].persistence_timeout, Some(600));
    // UDP dns: DNS_CHECK of the A record.
    let dns = &vs[10];
    assert_eq!(dns.protocol, config::Protocol::Udp);
    assert!(matches!(&dns.real_servers[0].checkers[0].kind, CheckKind::Dns(d) if d.name == "x.y.z" && d.query_type == "A"));
    // checktype=on: no checker, the real servers are always up.
    assert!(vs[11].real_servers.iter().all(|r| r.checkers.is_empty()));
    // ping with checkcount=3: three tries.
    assert_eq!(vs[12].real_servers[0].checkers[0].kind, CheckKind::Ping);
    assert_eq!(vs[12].real_servers[0].checkers[0].common.retry, 2);
    // IPv6.
    assert_eq!(vs[14].key, addr("[2001:db8::5]:119"));
    assert_eq!(vs[14].sorry_server.as_ref().map(|s| s.addr), Some("[::1]:119".parse().expect("addr")));
}

#[test]
fn mixed_globals_checktype_n_and_external() {
    let l = config::load(&fixture("mixed.cf")).expect("loads");
    let vs = &l.config.virtual_servers;
    let web = &vs[0];
    assert_eq!(web.key, VirtualServerKey::Fwmark(10));
    assert!(web.inhibit_on_failure, "quiescent = yes");
    assert_eq!((web.persistence_timeout, web.persistence_granularity.as_deref()), (Some(1800), Some("255.255.255.0")));
    assert!(web.quorum_down.as_ref().is_some_and(|s| s.argv == ["/etc/ha.d/resource.d/sorry-page", "start"]));
    assert!(web.quorum_up.as_ref().is_some_and(|s| s.argv == ["/etc/ha.d/resource.d/sorry-page", "stop"]));
    let rs = &web.real_servers[0];
    assert_eq!(rs.weight, 100);
    // checktype = 4: a connect every checkinterval, the negotiate every 4th.
    assert_eq!(rs.checkers.len(), 2);
    assert_eq!(rs.checkers[0].kind, CheckKind::Tcp);
    assert_eq!((rs.checkers[0].common.delay_loop, rs.checkers[0].common.connect_timeout), (Duration::from_secs(6), Duration::from_secs(4)));
    assert!(matches!(&rs.checkers[1].kind, CheckKind::Http(h) if h.urls[0].regex.as_deref() == Some("^alive")));
    assert_eq!((rs.checkers[1].common.delay_loop, rs.checkers[1].common.connect_timeout), (Duration::from_secs(24), Duration::from_secs(10)));
    // failurecount = 3: two retries, a checkinterval apart.
    assert_eq!((rs.checkers[1].common.retry, rs.checkers[1].common.delay_before_retry), (2, Duration::from_secs(6)));
    let api = &vs[1];
    assert!(!api.inhibit_on_failure, "the virtual section's quiescent = no wins");
    let CheckKind::Misc(m) = &api.real_servers[1].checkers[0].kind else { panic!("{:?}", api.real_servers[1].checkers) };
    assert_eq!(m.misc_path.argv, ["/usr/local/lib/ldirectord/check_api", "203.0.113.10", "8443", "198.51.100.22", "8443"]);
    assert_eq!(m.misc_timeout, Some(Duration::from_secs(4)));
    let text: Vec<String> = l.warnings.iter().map(ToString::to_string).collect();
    for what in ["'emailalert': hav sends no e-mail", "'logfile'", "service=mysql: hav has no mysql check", "'passwd' is not used"] {
        assert!(text.iter().any(|w| w.contains(what)), "{what}: {text:#?}");
    }
}

#[test]
fn errors_name_the_ldirectord_line() {
    let dir = temp_dir("errors");
    let f = dir.join("ldirectord.cf");
    std::fs::write(&f, "checktimeout=3\nvirtual=10.0.0.1:80\n\treal=10.0.1.1:80 gate\n\trecieve=\"ok\"\n").expect("write");
    let p = f.to_str().expect("utf-8");
    let want = format!("{p}:4:2: unknown keyword 'recieve' in ldirectord.cf virtual section (did you mean 'receive'?)");
    let out = hav(&["-t", "-f", p]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains(&want), "{}", String::from_utf8_lossy(&out.stderr));
    let out = hav(&["convert", p]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains(&want), "{}", String::from_utf8_lossy(&out.stderr));
    let out = hav(&["convert", "/nonexistent/ldirectord.cf"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/ldirectord.cf"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn check_dump_prints_the_keepalived_equivalent() {
    let f = fixture("kubernetes-api.cf");
    let out = hav(&["-t", "-d", "-f", f.to_str().expect("utf-8")]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("virtual_server 192.168.1.21 6443 {") && text.contains("SSL_GET {") && text.contains("path /healthz"), "{text}");
    assert!(text.contains("inhibit_on_failure") && text.contains("lb_algo wrr"), "{text}");
}
