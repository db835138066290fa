//! hav-linux in keepalived's place: the command lines of Debian's and RHEL's keepalived units,
//! with the option sets their environment files carry, run with hav-linux as the program.
//!
//! Debian's unit (read from the installed keepalived package) starts
//! `keepalived --dont-fork $DAEMON_ARGS` with `Type=notify`; RHEL's starts
//! `keepalived $KEEPALIVED_OPTIONS` (`-D` by default) with `Type=forking` and
//! `PIDFile=/run/keepalived.pid`, so the daemon must detach and its PID file must name it when
//! the starting process exits. Each command line is config-tested with `-t`, then run as a
//! short-lived daemon in a network namespace: its VIP comes up, SIGHUP (the units' ExecReload)
//! keeps it running, SIGTERM stops it and releases the VIP.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hav_tests::netns::{self, Netns};

const VIP: &str = "10.77.0.100";

fn hav_bin() -> &'static str {
    env!("CARGO_BIN_EXE_hav-linux")
}

const CONF: &str = "global_defs {\n  vrrp_version 3\n}\nvrrp_instance VI_1 {\n  interface eth0\n  virtual_router_id 77\n  priority 100\n  advert_int 0.1\n  virtual_ipaddress {\n    10.77.0.100/24\n  }\n}\n";

/// A namespace with `eth0` (one end of a veth pair) addressed, and a scratch directory.
struct Node {
    ns: Netns,
    dir: PathBuf,
}

impl Node {
    fn new(tag: &str) -> Node {
        let ns = Netns::new(&netns::unique(tag)).expect("netns");
        ns.ip(&["link", "add", "eth0", "type", "veth", "peer", "name", "eth1"]).expect("veth");
        ns.link_up("eth0").expect("up");
        ns.link_up("eth1").expect("up");
        ns.add_addr("eth0", "10.77.0.1/24").expect("addr");
        let dir = std::env::temp_dir().join(format!("hav-dropin-{}", ns.name()));
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(dir.join("keepalived.conf"), CONF).expect("conf");
        Node { ns, dir }
    }

    fn conf(&self) -> PathBuf {
        self.dir.join("keepalived.conf")
    }

    fn holds_vip(&self) -> bool {
        self.ns.ip(&["-4", "addr", "show", "dev", "eth0"]).is_ok_and(|o| o.contains(&format!("{VIP}/")))
    }

    /// hav-linux with `args` as a unit would start it (the config through HAV_CONFIG, since the
    /// units name none), plus `-s NS` and paths in the scratch directory.
    fn command(&self, args: &[String]) -> Command {
        let mut c = Command::new(hav_bin());
        c.args(args)
            .args(["-s", self.ns.name(), "--control"])
            .arg(self.dir.join("hav.sock"))
            .env("HAV_CONFIG", self.conf())
            .env_remove("NOTIFY_SOCKET")
            .stdin(Stdio::null());
        c
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("daemon.log")).unwrap_or_default()
    }

    fn log_file(&self) -> std::fs::File {
        std::fs::OpenOptions::new().create(true).append(true).open(self.dir.join("daemon.log")).expect("log")
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        // A daemon a failed test left running (it was started with -s, not by the Netns, so
        // deleting the namespace would not stop it): found by its pid files, killed.
        let pid_files = [PathBuf::from(format!("/run/hav-linux-{}.pid", self.ns.name())), self.dir.join("keepalived.pid")];
        for f in pid_files {
            if let Some(pid) = std::fs::read_to_string(&f).ok().and_then(|s| s.trim().parse::<i32>().ok()) {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
                let _ = std::fs::remove_file(&f);
            }
        }
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        } else {
            eprintln!("logs kept in {}", self.dir.display());
        }
    }
}

fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let t0 = Instant::now();
    while t0.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    f()
}

fn alive(pid: u32) -> bool {
    // A zombie is not alive: the state field of /proc/PID/stat.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| s.rsplit_once(')').is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')))
}

fn kill(pid: u32, sig: nix::sys::signal::Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(i32::try_from(pid).expect("pid")), sig).expect("kill");
}

/// The words of an `ExecStart=` line with `$VAR` expanded as systemd expands an unquoted
/// `$VAR`: split at whitespace, nothing when empty.
fn expand_exec(line: &str, var: &str, value: &str) -> Vec<String> {
    line.split_whitespace()
        .flat_map(|w| {
            if w == format!("${var}") {
                value.split_whitespace().map(str::to_owned).collect()
            } else {
                vec![w.to_owned()]
            }
        })
        .collect()
}

/// `KEY="value"` from a shell-style environment file.
fn env_value(text: &str, key: &str) -> Option<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .map(|v| v.trim().trim_matches('"').to_owned())
}

/// `-t` with the unit's arguments: the config is valid.
fn config_test(node: &Node, args: &[String]) {
    let mut a = args.to_vec();
    a.push("-t".into());
    let out = node.command(&a).output().expect("hav-linux -t");
    assert_eq!(out.status.code(), Some(0), "{a:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// Debian: `ExecStart=/usr/sbin/keepalived --dont-fork $DAEMON_ARGS`, `Type=notify`,
/// `ExecReload=/bin/kill -HUP $MAINPID`.
#[test]
fn debian_unit_command_lines() {
    if netns::skip_unless_root("debian_unit_command_lines") {
        return;
    }
    let unit = ["/lib/systemd/system/keepalived.service", "/usr/lib/systemd/system/keepalived.service"]
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok());
    let Some(unit) = unit else {
        eprintln!("skipped: keepalived's unit is not installed (scripts/install-deps installs keepalived)");
        return;
    };
    let exec = unit.lines().find_map(|l| l.strip_prefix("ExecStart=")).expect("ExecStart");
    assert!(exec.contains("$DAEMON_ARGS"), "{exec}");
    assert!(unit.lines().any(|l| l == "ExecReload=/bin/kill -HUP $MAINPID"), "{unit}");
    let default = std::fs::read_to_string("/etc/default/keepalived").ok().and_then(|t| env_value(&t, "DAEMON_ARGS")).unwrap_or_default();
    let examples = [default.as_str(), "-D", "-D -d -S 0", "-P -D", "--log-detail --dump-conf --log-facility=local1", "-l -D -G -X"];
    for daemon_args in examples {
        let node = Node::new("deb");
        let mut args = expand_exec(exec, "DAEMON_ARGS", daemon_args);
        assert!(Path::new(&args[0]).ends_with("keepalived"), "{exec}");
        args.remove(0);
        config_test(&node, &args);
        let mut child = node.command(&args).stdout(Stdio::null()).stderr(node.log_file()).spawn().expect("spawn");
        let pid = child.id();
        assert!(wait_until(Duration::from_secs(10), || node.holds_vip()), "{args:?}: VIP never came\n{}", node.log());
        let pid_file = PathBuf::from(format!("/run/hav-linux-{}.pid", node.ns.name()));
        assert_eq!(std::fs::read_to_string(&pid_file).expect("pid file").trim(), pid.to_string(), "--dont-fork: the started process is the daemon");
        kill(pid, nix::sys::signal::Signal::SIGHUP);
        std::thread::sleep(Duration::from_millis(300));
        assert!(child.try_wait().expect("wait").is_none(), "{args:?}: SIGHUP ended the daemon\n{}", node.log());
        assert!(node.holds_vip(), "{args:?}: the VIP went at the reload");
        kill(pid, nix::sys::signal::Signal::SIGTERM);
        assert!(wait_until(Duration::from_secs(10), || child.try_wait().expect("wait").is_some()), "{args:?}: SIGTERM");
        assert!(child.wait().expect("status").success(), "{args:?}\n{}", node.log());
        assert!(!node.holds_vip(), "{args:?}: VIP left behind");
        assert!(!pid_file.exists(), "{args:?}: pid file left behind");
        if daemon_args.contains("-d") || daemon_args.contains("--dump-conf") {
            assert!(node.log().contains("virtual_router_id") || node.log().contains("vrid"), "{args:?}: no config dump\n{}", node.log());
        }
    }
}

/// RHEL: `ExecStart=/usr/sbin/keepalived $KEEPALIVED_OPTIONS` with `Type=forking`,
/// `PIDFile=/run/keepalived.pid`, `KillMode=process`, and `KEEPALIVED_OPTIONS="-D"` in
/// /etc/sysconfig/keepalived.
#[test]
fn rhel_unit_command_lines_detach() {
    if netns::skip_unless_root("rhel_unit_command_lines_detach") {
        return;
    }
    let exec = "/usr/sbin/keepalived $KEEPALIVED_OPTIONS";
    for options in ["-D", "-D -d -S 0", "-D -P", "--log-detail --vrrp"] {
        let node = Node::new("rhel");
        let pid_file = node.dir.join("keepalived.pid");
        let mut args = expand_exec(exec, "KEEPALIVED_OPTIONS", options);
        args.remove(0);
        config_test(&node, &args);
        // systemd's PIDFile= is keepalived's default pid file; a scratch one here.
        args.extend(["-p".to_owned(), pid_file.to_str().expect("utf-8").to_owned()]);
        let t0 = Instant::now();
        let mut starter = node.command(&args).stdout(Stdio::null()).stderr(node.log_file()).spawn().expect("spawn");
        let started = wait_until(Duration::from_secs(20), || starter.try_wait().expect("wait").is_some());
        assert!(started, "{args:?}: the starting process never exited\n{}", node.log());
        assert!(starter.wait().expect("status").success(), "{args:?}\n{}", node.log());
        // Type=forking: when the starter has exited, the PID file names the running daemon.
        let pid: u32 = std::fs::read_to_string(&pid_file).expect("pid file at exit").trim().parse().expect("a pid");
        assert_ne!(pid, starter.id());
        assert!(alive(pid), "{args:?}: the daemon is not running\n{}", node.log());
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
        let fields: Vec<&str> = stat.rsplit_once(')').expect("stat").1.split_whitespace().collect();
        assert_eq!(fields[3], pid.to_string(), "the daemon leads a session of its own: {stat}");
        assert!(wait_until(Duration::from_secs(10), || node.holds_vip()), "{args:?}: VIP never came\n{}", node.log());
        kill(pid, nix::sys::signal::Signal::SIGHUP);
        std::thread::sleep(Duration::from_millis(300));
        assert!(alive(pid) && node.holds_vip(), "{args:?}: SIGHUP\n{}", node.log());
        kill(pid, nix::sys::signal::Signal::SIGTERM);
        assert!(wait_until(Duration::from_secs(10), || !alive(pid)), "{args:?}: SIGTERM");
        assert!(wait_until(Duration::from_secs(2), || !pid_file.exists()), "{args:?}: pid file left behind");
        assert!(!node.holds_vip(), "{args:?}: VIP left behind");
        eprintln!("{options}: detached and ready in {:?}", t0.elapsed());
    }
}

/// A Type=notify unit that forgot --dont-fork: hav stays the process systemd started (with
/// NOTIFY_SOCKET set, systemd expects the notifications from it).
#[test]
fn notify_socket_keeps_the_daemon_in_the_foreground() {
    if netns::skip_unless_root("notify_socket_keeps_the_daemon_in_the_foreground") {
        return;
    }
    let node = Node::new("ntfy");
    // A socket file: abstract names belong to a network namespace, and the daemon runs in its own.
    let sock_path = std::env::temp_dir().join(format!("hav-dropin-{}.notify", node.ns.name()));
    let _ = std::fs::remove_file(&sock_path);
    let listener = hav_linux::daemon::sdnotify::Listener::bind_path(&sock_path).expect("listener");
    let mut child =
        node.command(&["-D".to_owned()]).env("NOTIFY_SOCKET", listener.address()).stdout(Stdio::null()).stderr(node.log_file()).spawn().expect("spawn");
    let pid_file = PathBuf::from(format!("/run/hav-linux-{}.pid", node.ns.name()));
    let named = wait_until(Duration::from_secs(10), || std::fs::read_to_string(&pid_file).is_ok_and(|s| s.trim() == child.id().to_string()));
    assert!(named, "the started process is not the daemon\n{}", node.log());
    assert!(wait_until(Duration::from_secs(10), || node.holds_vip()), "VIP never came\n{}", node.log());
    // What systemd hears: READY=1 with a status once the config is applied...
    let mut heard: Vec<Vec<(String, String)>> = Vec::new();
    let listen_until = |want: &str, heard: &mut Vec<Vec<(String, String)>>| {
        let t0 = std::time::Instant::now();
        while t0.elapsed() < Duration::from_secs(10) {
            if let Some(m) = listener.recv_timeout(Duration::from_millis(200)).expect("recv") {
                let done = m.iter().any(|(k, v)| format!("{k}={v}") == want);
                heard.push(m);
                if done {
                    return true;
                }
            }
        }
        false
    };
    assert!(listen_until("READY=1", &mut heard), "no READY=1: {heard:?}\n{}", node.log());
    let ready = heard.iter().find(|m| m.iter().any(|(k, _)| k == "READY")).expect("ready");
    assert!(ready.iter().any(|(k, v)| k == "STATUS" && v.starts_with("1 instances:")), "READY=1 without the state summary: {ready:?}");
    // The summary follows the election (the VIP is held, so the instance is master by now).
    let mastered = heard.iter().any(|m| m.iter().any(|(k, v)| k == "STATUS" && v.contains("1 master")))
        || listen_until("STATUS=1 instances: 1 master, 0 backup, 0 fault", &mut heard);
    assert!(mastered, "no STATUS with the instance as master: {heard:?}");
    // ...RELOADING=1 (with MONOTONIC_USEC) and READY=1 again around a reload...
    kill(child.id(), nix::sys::signal::Signal::SIGHUP);
    heard.clear();
    assert!(listen_until("READY=1", &mut heard), "no READY=1 after the reload: {heard:?}\n{}", node.log());
    let reloading = heard.iter().position(|m| m.iter().any(|(k, v)| k == "RELOADING" && v == "1"));
    let reloading = reloading.unwrap_or_else(|| panic!("no RELOADING=1 before READY=1: {heard:?}"));
    assert!(heard[reloading].iter().any(|(k, _)| k == "MONOTONIC_USEC"), "RELOADING=1 without MONOTONIC_USEC: {heard:?}");
    // ...and STOPPING=1 on SIGTERM.
    kill(child.id(), nix::sys::signal::Signal::SIGTERM);
    heard.clear();
    assert!(listen_until("STOPPING=1", &mut heard), "no STOPPING=1: {heard:?}\n{}", node.log());
    assert!(wait_until(Duration::from_secs(10), || child.try_wait().expect("wait").is_some()));
    assert!(node.log().contains("staying in the foreground"), "{}", node.log());
    let _ = std::fs::remove_file(&sock_path);
}

/// `-S FACILITY`: log lines go to syslog (one datagram each, `<PRI>hav-linux[PID]: ...`, the
/// priority from the facility and the level) and not to stderr; with `-l` to both; with `-G`
/// to stderr only. The syslog socket is one the test binds (HAV_SYSLOG_SOCKET), as rsyslog or
/// journald binds /dev/log.
#[test]
fn log_facility_sends_to_syslog() {
    if netns::skip_unless_root("log_facility_sends_to_syslog") {
        return;
    }
    for (options, to_syslog, to_stderr) in
        [(&["-S", "local3"][..], true, false), (&["-S", "local3", "-l"][..], true, true), (&["-G", "-S", "local3"][..], false, true)]
    {
        let node = Node::new("slog");
        let sock = node.dir.join("log");
        let rx = std::os::unix::net::UnixDatagram::bind(&sock).expect("bind the syslog socket");
        rx.set_read_timeout(Some(Duration::from_millis(200))).expect("timeout");
        let mut args: Vec<String> = vec!["-n".into()];
        args.extend(options.iter().map(|s| (*s).to_owned()));
        let mut child = node.command(&args).env("HAV_SYSLOG_SOCKET", &sock).stdout(Stdio::null()).stderr(node.log_file()).spawn().expect("spawn");
        assert!(wait_until(Duration::from_secs(10), || node.holds_vip()), "{options:?}: VIP never came\n{}", node.log());
        std::thread::sleep(Duration::from_millis(200));
        kill(child.id(), nix::sys::signal::Signal::SIGTERM);
        assert!(wait_until(Duration::from_secs(10), || child.try_wait().expect("wait").is_some()), "{options:?}: SIGTERM");
        let mut lines = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = rx.recv(&mut buf) {
            lines.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        // local3 is facility 19: info is <158>, warnings <156>.
        let head = format!("<158>hav-linux[{}]: ", child.id());
        let master = lines.iter().find(|l| l.contains("state change") && l.contains("MASTER"));
        if to_syslog {
            let master = master.unwrap_or_else(|| panic!("{options:?}: no state change to MASTER on syslog: {lines:?}"));
            assert!(master.starts_with(&head), "{options:?}: {master:?} does not start with {head:?}");
            assert!(!master.contains('\n') && !master.contains("INFO"), "{options:?}: one line, the level in the priority: {master:?}");
            assert!(lines.iter().any(|l| l.starts_with(&head) && l.contains("stopping")), "{options:?}: no stop line: {lines:?}");
        } else {
            assert!(lines.is_empty(), "{options:?}: -G, yet syslog got {lines:?}");
        }
        let on_stderr = node.log().lines().any(|l| l.contains("state change") && l.contains("MASTER"));
        assert_eq!(on_stderr, to_stderr, "{options:?}: stderr:\n{}", node.log());
    }
}
