//! Scripts in the running daemon go through one path: with `enable_script_security` and
//! `script_user`, a notify script runs as the script user with `PATH` as its whole
//! environment, and a root `vrrp_script` reached through a symlink in a directory a user owns
//! is refused (the log says why, the script counts as down); a script whose program is missing
//! or unsafe at start is disabled, as keepalived disables it.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hav_tests::netns::{skip_unless, Lab, Need};
use hav_tests::peers::{instance_conf, wait_until, Daemon, Node};

fn hav() -> Daemon {
    Daemon::Hav(PathBuf::from(env!("CARGO_BIN_EXE_hav-linux")))
}

/// A root-owned 0755 directory outside any world-writable one, so that script security can
/// pass through it.
fn secure_dir(tag: &str) -> PathBuf {
    let d = PathBuf::from(format!("/run/hav-scripts-e2e-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("dir");
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    d
}

fn script(path: &Path, body: &str) {
    std::fs::write(path, format!("#!/bin/sh\n{body}\n")).expect("write");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

#[test]
fn scripts_run_as_the_script_user_with_a_clean_environment_and_insecure_ones_are_refused() {
    if skip_unless("scripts_run_as_the_script_user_with_a_clean_environment_and_insecure_ones_are_refused", &[Need::Root]) {
        return;
    }
    let lab = Lab::new(1).expect("lab");
    let dir = secure_dir("daemon");
    // Where the notify script (run as nobody) writes.
    let out = dir.join("out");
    std::fs::create_dir(&out).expect("mkdir");
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let notify = dir.join("notify.sh");
    script(
        &notify,
        // Written aside and renamed: the test reads a file as soon as it exists.
        &format!(
            "id -u > {o}/.uid.$3 && mv {o}/.uid.$3 {o}/uid.$3\ntr '\\0' '\\n' < /proc/$$/environ > {o}/.env.$3 && mv {o}/.env.$3 {o}/env.$3",
            o = out.display()
        ),
    );
    let good = dir.join("good.sh");
    script(&good, "exit 0");
    // root -> /run/...: a safe link to a link in a directory nobody owns, to the good script.
    let user_dir = dir.join("user");
    std::fs::create_dir(&user_dir).expect("mkdir");
    nix::unistd::chown(&user_dir, Some(nix::unistd::Uid::from_raw(65534)), Some(nix::unistd::Gid::from_raw(65534))).expect("chown");
    std::os::unix::fs::symlink(&good, user_dir.join("inner")).expect("symlink");
    // At start `bad` links straight to the good script (secure): it is tracked. Made insecure
    // once the daemon runs, it is refused at its next run (hav checks before every run).
    let bad = dir.join("bad");
    std::os::unix::fs::symlink(&good, &bad).expect("symlink");
    let conf = format!(
        "global_defs {{\n  enable_script_security\n  script_user nobody\n}}\n\
         vrrp_script good {{\n  script {good}\n  interval 0.2\n}}\n\
         vrrp_script bad {{\n  script {bad}\n  user root\n  interval 0.2\n  weight -50\n}}\n{inst}",
        good = good.display(),
        bad = bad.display(),
        inst = instance_conf(
            "VI_S",
            68,
            200,
            3,
            "0.1",
            &["10.0.0.224/24"],
            &format!("  notify {}\n  track_script {{\n    good\n    bad\n  }}", notify.display())
        ),
    );
    let h = Node::start(&lab.routers[0], hav(), &conf);
    let master = wait_until(Duration::from_secs(8), || out.join("env.MASTER").exists() && out.join("uid.MASTER").exists());
    let log = h.log();
    assert!(master.is_some(), "no notify for MASTER:\n{log}");
    let uid = std::fs::read_to_string(out.join("uid.MASTER")).expect("uid");
    assert_eq!(uid.trim(), "65534", "the notify script ran as script_user nobody");
    let env = std::fs::read_to_string(out.join("env.MASTER")).expect("env");
    assert_eq!(env.lines().collect::<Vec<_>>(), vec![format!("PATH={}", hav_linux::daemon::proc::SCRIPT_PATH)], "the whole environment");
    let priority_is = |h: &Node<'_>, p: i64| {
        wait_until(Duration::from_secs(5), || {
            let req = hav_linux::daemon::control::Request { cmd: "status".into(), instance: None };
            hav_linux::daemon::control::request(&h.control_path(), &req).is_ok_and(|st| st["instances"][0]["effective_priority"] == p)
        })
        .is_some()
    };
    assert!(priority_is(&h, 200), "both scripts succeed at first:\n{}", h.log());
    // Now the root script goes through the user's directory: refused, so it is down: 200 - 50.
    std::fs::remove_file(&bad).expect("rm");
    std::os::unix::fs::symlink(user_dir.join("inner"), &bad).expect("symlink");
    let down = priority_is(&h, 150);
    let log = h.log();
    assert!(down, "the refused script did not count as down:\n{log}");
    let why = format!("vrrp_script bad: not run: enable_script_security: {} is owned by uid 65534, not root", user_dir.display());
    assert!(log.contains(&why), "no line saying why:\n{log}");
    // Refused every 200 ms, logged a couple of times.
    assert!(log.matches(&why).count() <= hav_linux::daemon::proc::LOG_BURST as usize, "{log}");
    assert!(!log.contains("vrrp_script good: not run"), "{log}");
    drop(h);
    // Insecure already at start: disabled, as keepalived disables it ("Disabling track script
    // bad due to insecure"): not tracked at all, so the priority stays 200, with a warning at
    // the vrrp_script block.
    let h = Node::start(&lab.routers[0], hav(), &conf);
    assert!(priority_is(&h, 200), "a script disabled at start weighed on the priority:\n{}", h.log());
    std::thread::sleep(Duration::from_millis(600));
    assert!(priority_is(&h, 200), "a script disabled at start weighed on the priority:\n{}", h.log());
    let log = h.log();
    assert!(log.contains("vrrp_script bad: enable_script_security:") && log.contains("the script is disabled"), "no warning:\n{log}");
    assert!(!log.contains("vrrp_script bad: not run"), "a disabled script was run:\n{log}");
    drop(h);
    let _ = std::fs::remove_dir_all(&dir);
}

/// keepalived's notify form, `COMMAND [USER [GROUP]]`, for VRRP notify scripts and the LVS
/// `notify_up`/`notify_down`/`quorum_up`/`quorum_down`; a fourth word is an error.
#[test]
fn notify_scripts_take_keepalived_user_and_group() {
    let inst = instance_conf("VI_1", 1, 100, 2, "1", &["10.0.0.1/24"], "  notify_master \"/etc/hav/m.sh a b\" nobody :nogroup\n  notify /etc/hav/n.sh");
    let lvs = "virtual_server 10.0.0.9 80 {\n quorum_up \"/bin/q up\" root\n real_server 10.0.0.2 80 {\n  notify_down /bin/d nobody nogroup\n }\n}\n";
    let c = hav_linux::config::load_str(Path::new("k.conf"), &format!("{inst}{lvs}")).expect("config").config;
    let n = &c.vrrp_instances[0].notify;
    let m = n.master.as_ref().expect("notify_master");
    assert_eq!(m.argv, vec!["/etc/hav/m.sh", "a", "b"]);
    let u = m.user.as_ref().expect("user");
    assert_eq!((u.user.as_str(), u.group.as_deref()), ("nobody", Some(":nogroup")));
    assert_eq!(n.notify.as_ref().expect("notify").user, None);
    let vs = &c.virtual_servers[0];
    assert_eq!(vs.quorum_up.as_ref().and_then(|s| s.user.as_ref()).map(|u| u.user.as_str()), Some("root"));
    let d = vs.real_servers[0].notify_down.as_ref().expect("notify_down");
    assert_eq!((d.argv.clone(), d.user.as_ref().and_then(|u| u.group.clone())), (vec!["/bin/d".to_string()], Some("nogroup".to_string())));
    // As root, `:nogroup` is the group nogroup.
    let creds = hav_linux::daemon::proc::resolve(u).expect("resolves");
    assert_eq!((creds.uid.as_raw(), creds.gid.as_raw()), (65534, 65534));
    let bad = instance_conf("VI_1", 1, 100, 2, "1", &["10.0.0.1/24"], "  notify_master /x.sh one two three");
    let e = hav_linux::config::load_str(Path::new("k.conf"), &bad).expect_err("four words");
    assert!(e.to_string().contains("'notify_master' takes COMMAND [USER [GROUP]]; quote a command with arguments"), "{e}");
}

/// keepalived disables at start a `vrrp_script` whose program does not exist ("Disabling track
/// script ... since not found/accessible") and drops it from the instances that track it, and
/// drops a notify script that does not exist: with weight 0 the missing script would fault the
/// instance, yet both daemons become MASTER (it is not tracked at all), and hav says so at the
/// script's block.
#[test]
fn a_track_script_whose_program_is_missing_is_disabled_as_by_keepalived() {
    if skip_unless("a_track_script_whose_program_is_missing_is_disabled_as_by_keepalived", &[Need::Root, Need::Keepalived]) {
        return;
    }
    let conf = format!(
        "vrrp_script gone {{\n  script \"/nonexistent/hav-check arg\"\n  interval 0.2\n}}\n{}",
        instance_conf("VI_G", 69, 150, 3, "0.2", &["10.0.0.225/24"], "  notify_master /nonexistent/hav-notify\n  track_script {\n    gone\n  }")
    );
    let run = |daemon: Daemon| {
        let lab = Lab::new(1).expect("lab");
        let node = Node::start(&lab.routers[0], daemon, &conf);
        let master = wait_until(Duration::from_secs(8), || node.holds("10.0.0.225"));
        std::thread::sleep(Duration::from_millis(600));
        (master.is_some() && node.holds("10.0.0.225"), node.log())
    };
    let ((k, klog), (h, hlog)) = std::thread::scope(|s| {
        let k = s.spawn(|| run(Daemon::Keepalived));
        let h = s.spawn(|| run(hav()));
        (k.join().unwrap_or_else(|e| std::panic::resume_unwind(e)), h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
    });
    assert!(k, "keepalived did not become master with a missing track script:\n{klog}");
    assert!(klog.contains("Disabling track script gone"), "keepalived did not say it disabled the script:\n{klog}");
    assert!(h, "hav did not become master with a missing track script (as keepalived):\n{hlog}");
    assert!(hlog.contains(":1:1: vrrp_script gone: /nonexistent") && hlog.contains("the script is disabled"), "{hlog}");
    assert!(hlog.contains("notify_master '/nonexistent/hav-notify'") && hlog.contains("disabled (never run)"), "{hlog}");
    assert!(!hlog.contains("not run:"), "hav tried to run a disabled script:\n{hlog}");
}

/// keepalived's `startup_script` runs, and is waited for, before the instances start, and its
/// `shutdown_script` after they have stopped: the first sees no VIP, the second sees it gone.
/// Debian's keepalived and hav alike, each on a router of its own.
#[test]
fn startup_and_shutdown_scripts_run_before_and_after_the_instances() {
    if skip_unless("startup_and_shutdown_scripts_run_before_and_after_the_instances", &[Need::Root, Need::Keepalived]) {
        return;
    }
    let vip = "10.0.0.226";
    let run = |daemon: Daemon, tag: &str| {
        let dir = secure_dir(tag);
        let out = dir.join("out");
        // Each records when it ran and whether the VIP was on an interface then; the startup
        // script also takes a second, which the daemon must wait for.
        let rec = |name: &str, path: &Path, sleep: &str| {
            script(path, &format!("{sleep}if ip -o addr | grep -q ' {vip}/'; then v=vip; else v=novip; fi\necho \"{name} $v\" >> {}", out.display()));
        };
        rec("start", &dir.join("start.sh"), "sleep 1\n");
        rec("stop", &dir.join("stop.sh"), "");
        let conf = format!(
            "global_defs {{\n  startup_script {}\n  startup_script_timeout 5\n  shutdown_script {}\n}}\n{}",
            dir.join("start.sh").display(),
            dir.join("stop.sh").display(),
            instance_conf("VI_S", 70, 255, 2, "1", &[&format!("{vip}/24")], "")
        );
        let lab = Lab::new(1).expect("lab");
        let mut node = Node::start(&lab.routers[0], daemon, &conf);
        let master = wait_until(Duration::from_secs(10), || node.holds(vip)).is_some();
        let before_stop = std::fs::read_to_string(&out).unwrap_or_default();
        let stopped = node.terminate();
        let after = std::fs::read_to_string(&out).unwrap_or_default();
        let log = node.log();
        let _ = std::fs::remove_dir_all(&dir);
        (master, stopped, before_stop, after, log)
    };
    for (daemon, tag) in [(Daemon::Keepalived, "ka-life"), (hav(), "hav-life")] {
        let (master, stopped, before_stop, after, log) = run(daemon.clone(), tag);
        assert!(master, "{daemon:?} never took the VIP:\n{log}");
        assert!(stopped, "{daemon:?} did not stop:\n{log}");
        assert_eq!(before_stop, "start novip\n", "{daemon:?}: the startup script ran once, before the VIP was added:\n{log}");
        assert_eq!(after, "start novip\nstop novip\n", "{daemon:?}: the shutdown script ran once, after the VIP was removed:\n{log}");
    }
}
