//! The `hav-linux` command line: `-t` (config test) on every fixture and on broken configs (exit codes
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
            let out = hav(&["-t", "-f", p.to_str().expect("utf-8")]);
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
    let out = hav(&["-t", "-f", f.to_str().expect("utf-8")]);
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
    let out = hav(&["-t", "-f", "/nonexistent/keepalived.conf"]);
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
    let out = hav(&["-t", "-f", cfg.to_str().expect("utf-8"), "--policy", wat.to_str().expect("utf-8")]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("old.wat") && err.contains("99"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

fn hav_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_hav-linux"));
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("running hav-linux")
}

fn a_fixture() -> String {
    fixtures().join("annotated-defaults.conf").to_str().expect("utf-8").to_owned()
}

#[test]
fn version_is_printed_as_keepalived_prints_it() {
    for flag in ["-v", "--version"] {
        let out = hav(&[flag]);
        assert_eq!(out.status.code(), Some(0));
        let err = String::from_utf8_lossy(&out.stderr);
        let first = err.lines().next().unwrap_or("");
        // What configuration tools match: "Keepalived vX.Y.Z " and more on the first line.
        let rest = first.strip_prefix("Keepalived v").unwrap_or_else(|| panic!("{first}"));
        let (version, more) = rest.split_once(' ').unwrap_or_else(|| panic!("{first}"));
        assert_eq!(version.split('.').filter(|p| p.parse::<u32>().is_ok()).count(), 3, "{first}");
        assert!(more.contains("hav-linux"), "{first}");
    }
}

#[test]
fn signum_prints_the_numbers_keepalived_prints() {
    let have_keepalived = Command::new("keepalived").arg("--signum=STOP").output().is_ok_and(|o| o.status.success());
    let expect = [("STOP", "15"), ("RELOAD", "1"), ("DATA", "10"), ("STATS", "12")];
    for (f, n) in expect {
        let out = hav(&[&format!("--signum={f}")]);
        assert_eq!((out.status.code(), String::from_utf8_lossy(&out.stdout).trim()), (Some(0), n), "{f}");
    }
    for f in ["STOP", "RELOAD", "DATA", "STATS", "STATS_CLEAR", "JSON"] {
        let out = hav(&["--signum", f]);
        assert_eq!(out.status.code(), Some(0), "{f}");
        if have_keepalived {
            let k = Command::new("keepalived").arg(format!("--signum={f}")).output().expect("keepalived");
            assert_eq!(String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&k.stdout), "--signum={f}");
        }
    }
    let out = hav(&["--signum=NOPE"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Unknown sigfunc NOPE"));
}

/// Every option keepalived's own `--help` lists is one hav takes, with the same short letter.
#[test]
fn every_option_keepalived_lists_is_accepted() {
    use clap::CommandFactory as _;
    let Ok(out) = Command::new("keepalived").arg("--help").output() else {
        eprintln!("skipped: keepalived is not installed (scripts/install-deps installs it)");
        return;
    };
    let help = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let cmd = hav_linux::cli::args::Args::command();
    let mut n = 0;
    for line in help.lines().map(str::trim_start).filter(|l| l.starts_with('-')) {
        let words: Vec<&str> = line.split([' ', ',', '=', '[']).filter(|w| w.starts_with('-')).collect();
        let short = words.iter().find(|w| w.len() == 2 && !w.starts_with("--")).and_then(|w| w.chars().nth(1));
        let Some(long) = words.iter().find_map(|w| w.strip_prefix("--")) else { continue };
        if long == "help" {
            continue;
        }
        let arg = cmd
            .get_arguments()
            .find(|a| a.get_long() == Some(long) || a.get_all_aliases().is_some_and(|al| al.contains(&long)))
            .unwrap_or_else(|| panic!("keepalived's --{long} is not an option of hav-linux"));
        assert_eq!(arg.get_short(), short, "--{long}");
        n += 1;
    }
    assert!(n >= 30, "only {n} options read from keepalived --help:\n{help}");
}

#[test]
fn config_test_writes_to_its_log_file() {
    let dir = std::env::temp_dir().join(format!("hav-cli-tlog-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let log = dir.join("test.log");
    let out = hav(&[&format!("-t{}", log.display()), "-f", "/nonexistent/keepalived.conf"]);
    assert_eq!(out.status.code(), Some(1));
    let out = hav(&[&format!("--config-test={}", log.display()), "-f", "/nonexistent/other.conf"]);
    assert_eq!(out.status.code(), Some(1));
    let text = std::fs::read_to_string(&log).expect("log file");
    assert!(text.contains("/nonexistent/keepalived.conf") && text.contains("/nonexistent/other.conf"), "{text}");
    // Clustered with other letters, as getopt reads them.
    let out = hav(&[&format!("-Dt{}", log.display()), "-f", &a_fixture()]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn options_hav_cannot_honour_warn_once_each() {
    let out = hav(&["-t", "-f", &a_fixture(), "-r", "/tmp/v.pid", "-c", "/tmp/c.pid", "-b", "/tmp/b.pid", "--perf"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    for w in ["-r /tmp/v.pid:", "-c /tmp/c.pid:", "-b /tmp/b.pid:", "--perf:"] {
        assert_eq!(err.matches(w).count(), 1, "{w} in:\n{err}");
    }
    // Options hav honours (or that cost nothing to honour) say nothing; a bad facility does.
    let out = hav(&["-t", "-f", &a_fixture(), "-S", "9"]);
    assert_eq!(String::from_utf8_lossy(&out.stderr).matches("-S 9: invalid log facility").count(), 1, "{}", String::from_utf8_lossy(&out.stderr));
    let out = hav(&["-t", "-f", &a_fixture(), "-l", "-D", "-G", "-B", "-R", "-n", "-u", "022", "-S", "0"]);
    assert!(!String::from_utf8_lossy(&out.stderr).contains("WARN"), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn genhash_mode_is_refused() {
    let out = hav(&["-T", "-u", "http://localhost/"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("genhash"));
}

#[test]
fn hav_options_moved_to_long_names() {
    // -l is keepalived's --log-console and takes no value: "debug" is no subcommand.
    assert_eq!(hav(&["-l", "debug", "-t", "-f", &a_fixture()]).status.code(), Some(2));
    let out = hav(&["--log-level", "debug", "-t", "-f", &a_fixture()]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let out = hav_env(&["-t", "-f", &a_fixture()], &[("HAV_LOG", "warn")]);
    assert_eq!(out.status.code(), Some(0));
    // -s is keepalived's --namespace: the control socket is --control.
    let out = hav(&["status", "-s", "../x"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a network namespace name"));
    let help = String::from_utf8_lossy(&hav(&["--help"]).stdout).into_owned();
    for opt in ["--log-level", "--control", "--log-format", "--policy", "--metrics", "--dont-fork", "--namespace", "--config-test"] {
        assert!(help.contains(opt), "{opt} missing from --help");
    }
}

/// A config in a temp dir of its own; the caller removes the dir.
fn config_file(tag: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("hav-cli-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let f = dir.join("keepalived.conf");
    std::fs::write(&f, text).expect("write");
    f
}

#[test]
fn config_id_selects_conditional_lines_and_dump_shows_the_expansion() {
    let text = "@lb1 $PRIO=150\n@^lb1 $PRIO=100\nvrrp_instance VI_1 {\n  interface eth0\n  virtual_router_id 51\n  \
                priority $PRIO\n  virtual_ipaddress {\n~SEQ(n, 10, 11)    192.0.2.${n}/24\n  }\n}\n";
    let f = config_file("id", text);
    let path = f.to_str().expect("utf-8");
    for (id, prio) in [("lb1", "150"), ("lb2", "100")] {
        let out = hav(&["-t", "-d", "-i", id, "-f", path]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "-i {id}: {}", String::from_utf8_lossy(&out.stderr));
        // -t -d prints the configuration as the sections read it: the definition chosen by the
        // config id substituted, the sequence replicated.
        assert!(stdout.contains(&format!("priority {prio}")), "-i {id}:\n{stdout}");
        assert!(stdout.contains("192.0.2.10/24") && stdout.contains("192.0.2.11/24"), "-i {id}:\n{stdout}");
        assert!(!stdout.contains("~SEQ") && !stdout.contains("$PRIO"), "-i {id}:\n{stdout}");
    }
    let _ = std::fs::remove_dir_all(f.parent().expect("dir"));
}

#[test]
fn strict_turns_warnings_into_a_failing_check() {
    // keepalived runs this (state SLAVE is taken as BACKUP), so hav does, with a warning.
    let text = "vrrp_instance VI_1 {\n  state SLAVE\n  interface eth0\n  virtual_router_id 51\n  priority 100\n  \
                virtual_ipaddress {\n    192.0.2.10/24\n  }\n}\n";
    let f = config_file("strict", text);
    let path = f.to_str().expect("utf-8");
    let lax = hav(&["-t", "-f", path]);
    assert!(lax.status.success(), "{}", String::from_utf8_lossy(&lax.stderr));
    assert!(String::from_utf8_lossy(&lax.stderr).contains("warning:"), "no warning for state SLAVE");
    let strict = hav(&["-t", "--strict", "-f", path]);
    assert_eq!(strict.status.code(), Some(1), "{}", String::from_utf8_lossy(&strict.stderr));
    assert!(String::from_utf8_lossy(&strict.stderr).contains("--strict"));
    let _ = std::fs::remove_dir_all(f.parent().expect("dir"));
}

#[test]
fn all_config_makes_a_missing_include_an_error() {
    let text = "include /nonexistent/hav-missing-*.conf\ninclude /nonexistent/hav-missing.conf\n";
    let f = config_file("all", text);
    let path = f.to_str().expect("utf-8");
    let lax = hav(&["-t", "-f", path]);
    assert!(lax.status.success(), "a missing plain include is a warning: {}", String::from_utf8_lossy(&lax.stderr));
    let all = hav(&["-t", "-e", "-f", path]);
    assert_eq!(all.status.code(), Some(1), "with -e it is an error: {}", String::from_utf8_lossy(&all.stderr));
    let _ = std::fs::remove_dir_all(f.parent().expect("dir"));
}

/// Route and rule options named in iproute2's files (rt_tables and rt_tables.d, rt_protos,
/// rt_scopes, rt_realms), as keepalived and ip(8) read them: `-t` takes the names a file defines
/// and refuses, at their location, one it does not. `HAV_IPROUTE2_DIR` stands in for
/// /etc/iproute2.
#[test]
fn check_takes_iproute2_names() {
    let dir = std::env::temp_dir().join(format!("hav-cli-iproute2-{}", std::process::id()));
    let names = dir.join("iproute2");
    std::fs::create_dir_all(names.join("rt_tables.d")).expect("dir");
    std::fs::write(names.join("rt_tables"), "254 main\n100 vips\n").expect("rt_tables");
    std::fs::write(names.join("rt_tables.d/extra.conf"), "0xc8 extra\n").expect("rt_tables.d");
    std::fs::write(names.join("rt_protos"), "99 hav_proto\n").expect("rt_protos");
    std::fs::write(names.join("rt_scopes"), "100 myscope\n").expect("rt_scopes");
    std::fs::write(names.join("rt_realms"), "7 edge\n").expect("rt_realms");
    let conf = dir.join("keepalived.conf");
    let run = |text: &str| {
        std::fs::write(&conf, text).expect("write");
        let out = Command::new(env!("CARGO_BIN_EXE_hav-linux"))
            .args(["-t", "-f", conf.to_str().expect("utf-8")])
            .env("HAV_IPROUTE2_DIR", &names)
            .output()
            .expect("running hav-linux");
        (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    // Without no_track, hav says which protocol number it replaces: the name was read.
    let (code, err) = run("static_routes {\n  10.8.0.0/24 dev lo protocol hav_proto\n}\n");
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("keepalived.conf:2:31: protocol 99:"), "{err}");
    let good = "static_routes {\n  10.8.0.0/24 dev lo table vips scope myscope realms edge/edge\n  blackhole 10.7.0.0/24 table extra\n}\nstatic_rules {\n  from 10.8.0.0/24 table vips priority 100\n}\n";
    let (code, err) = run(good);
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("warning"), "every name is known: {err}");
    // keepalived skips a route it cannot read, with a warning; so does hav.
    let (code, err) = run("static_routes {\n  10.8.0.0/24 dev lo table nosuch\n}\n");
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("keepalived.conf:2:28: invalid table (a number, main, local, default or a name in rt_tables) 'nosuch'"), "{err}");
    let (code, err) = run("static_routes {\n  10.8.0.0/24 dev lo protocol hav_proto2\n}\n");
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("keepalived.conf:2:") && err.contains("'hav_proto2'"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
