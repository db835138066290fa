//! `vrrp_track_process` in the running daemon: a process the test starts and kills moves the
//! instance to FAULT and back (weight 0), and moves its priority (a weight).
//!
//! The process connector only delivers events in the initial network namespace, so the daemon
//! runs in the host's, on a veth pair the test creates there (and deletes, whatever happens).
//! The tracked process is a copy of sleep(1) under a name unique to the test.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use hav_linux::daemon::control::{self, Request};
use hav_tests::netns::{ip, skip_unless, unique, Need};
use hav_tests::peers::{wait_until, workdir};
use serde_json::Value;

/// Everything the test set up on the host, undone on drop.
struct HostLab {
    veth: String,
    dir: PathBuf,
    daemon: Option<Child>,
    /// The daemon is Debian's keepalived (its state is read from its log).
    keepalived: bool,
    tracked: Vec<Child>,
    /// The second octet of the lab's addresses.
    net: u8,
}

impl Drop for HostLab {
    fn drop(&mut self) {
        self.stop_daemon();
        for c in &mut self.tracked {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = ip(&["link", "del", &self.veth]);
        if std::thread::panicking() {
            eprintln!("daemon log:\n{}", std::fs::read_to_string(self.dir.join("daemon.log")).unwrap_or_default());
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl HostLab {
    /// A veth pair in the host namespace, up, with 10.NET.0.1/24 on the end the daemon uses
    /// (each test its own NET: they run in parallel).
    fn new(tag: &str, net: u8) -> HostLab {
        let veth = unique(tag);
        let peer = unique("p");
        ip(&["link", "add", &veth, "type", "veth", "peer", "name", &peer]).expect("veth");
        let mut lab = HostLab { veth, dir: workdir(tag), daemon: None, keepalived: false, tracked: Vec::new(), net: 0 };
        ip(&["addr", "add", &format!("10.{net}.0.1/24"), "dev", &lab.veth]).expect("addr");
        lab.net = net;
        ip(&["link", "set", &peer, "up"]).expect("up");
        ip(&["link", "set", &lab.veth, "up"]).expect("up");
        lab
    }

    /// A copy of sleep(1) named `name` (its comm), in the work directory.
    fn program(&self, name: &str) -> PathBuf {
        let sleep = ["/usr/bin/sleep", "/bin/sleep"].into_iter().map(Path::new).find(|p| p.exists()).expect("sleep(1)");
        let p = self.dir.join(name);
        std::fs::copy(sleep, &p).expect("copy");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        p
    }

    fn start_tracked(&mut self, prog: &Path, args: &[&str]) -> u32 {
        let c = Command::new(prog).args(args).stdin(Stdio::null()).spawn().expect("tracked process");
        let pid = c.id();
        self.tracked.push(c);
        pid
    }

    fn kill_tracked(&mut self, pid: u32) {
        let i = self.tracked.iter().position(|c| c.id() == pid).expect("started here");
        let mut c = self.tracked.remove(i);
        c.kill().expect("kill");
        c.wait().expect("reap");
    }

    fn start_daemon(&mut self, config: &str) {
        let conf = self.dir.join("keepalived.conf");
        std::fs::write(&conf, config).expect("config");
        let log = std::fs::File::create(self.dir.join("daemon.log")).expect("log");
        let child = Command::new(env!("CARGO_BIN_EXE_hav-linux"))
            .args(["--dont-fork", "-f"])
            .arg(&conf)
            .arg("--control")
            .arg(self.dir.join("hav.sock"))
            .arg("--pid")
            .arg(self.dir.join("hav.pid"))
            .args(["--log-level", "debug"])
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("hav-linux");
        self.daemon = Some(child);
    }

    /// keepalived -P (VRRP only) in the foreground, logging to the console.
    fn start_keepalived(&mut self, config: &str) {
        let conf = self.dir.join("keepalived.conf");
        std::fs::write(&conf, config).expect("config");
        let log = std::fs::File::create(self.dir.join("daemon.log")).expect("log");
        let child = Command::new("keepalived")
            .args(["-n", "-l", "-D", "-P", "-f"])
            .arg(&conf)
            .arg("-p")
            .arg(self.dir.join("k.pid"))
            .arg("-r")
            .arg(self.dir.join("v.pid"))
            .arg("-c")
            .arg(self.dir.join("c.pid"))
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("keepalived");
        self.daemon = Some(child);
        self.keepalived = true;
    }

    /// SIGTERM (keepalived's parent stops its VRRP child and releases the VIP), SIGKILL after 5 s.
    fn stop_daemon(&mut self) {
        let Some(mut c) = self.daemon.take() else { return };
        let pid = nix::unistd::Pid::from_raw(i32::try_from(c.id()).expect("pid"));
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        if wait_until(Duration::from_secs(5), || matches!(c.try_wait(), Ok(Some(_)))).is_none() {
            let _ = c.kill();
        }
        let _ = c.wait();
    }

    /// The instance's state: `status` for hav, the last state line of keepalived's log.
    fn state(&self) -> Option<String> {
        if !self.keepalived {
            return self.instance().map(|i| i.0);
        }
        let log = std::fs::read_to_string(self.dir.join("daemon.log")).ok()?;
        log.lines().rev().find_map(|l| {
            let l = l.to_ascii_uppercase();
            let at = l.find("ENTERING ")?;
            let rest = &l[at + "ENTERING ".len()..];
            Some(rest.strip_suffix(" STATE").or_else(|| rest.split(" STATE ").next()).unwrap_or(rest).trim().to_owned())
        })
    }

    fn wait_state(&self, what: &str, limit: Duration, want: &str) {
        let ok = wait_until(limit, || self.state().as_deref() == Some(want));
        assert!(ok.is_some(), "{what}: state is {:?}", self.state());
    }

    fn status(&self) -> Option<Value> {
        control::request(&self.dir.join("hav.sock"), &Request { cmd: "status".into(), instance: None }).ok()
    }

    /// The first instance's state and effective priority.
    fn instance(&self) -> Option<(String, u64)> {
        let s = self.status()?;
        let i = &s["instances"][0];
        Some((i["state"].as_str()?.to_owned(), i["effective_priority"].as_u64()?))
    }

    fn wait_for(&self, what: &str, limit: Duration, want: impl Fn(&str, u64) -> bool) {
        let ok = wait_until(limit, || self.instance().is_some_and(|(s, p)| want(&s, p)));
        assert!(ok.is_some(), "{what}: instance is {:?}", self.instance());
    }
}

fn config(lab: &HostLab, tracker: &str, track: &str) -> String {
    config_adv(lab, tracker, track, "0.2")
}

fn config_adv(lab: &HostLab, tracker: &str, track: &str, advert: &str) -> String {
    let (veth, net) = (&lab.veth, lab.net);
    format!(
        "global_defs {{\n  router_id tp\n  vrrp_garp_master_delay 0\n}}\n{tracker}\n\
         vrrp_instance VI {{\n  state BACKUP\n  interface {veth}\n  virtual_router_id 71\n  priority 100\n  advert_int {advert}\n  \
         track_process {{\n    {track}\n  }}\n  virtual_ipaddress {{\n    10.{net}.0.100/24\n  }}\n}}\n"
    )
}

/// Election in a lone node: Master_Down_Interval at 0.2 s adverts, and a loaded machine.
const SETTLE: Duration = Duration::from_secs(6);

#[test]
fn a_tracked_process_faults_the_instance_while_it_is_missing() {
    if skip_unless("a_tracked_process_faults_the_instance_while_it_is_missing", &[Need::Root]) {
        return;
    }
    let mut lab = HostLab::new("tpf", 213);
    let name = unique("s");
    let prog = lab.program(&name);
    let tracker = format!("vrrp_track_process proc {{\n  process {name}\n}}\n");
    lab.start_daemon(&config(&lab, &tracker, "proc"));
    lab.wait_for("no process: FAULT", SETTLE, |s, _| s == "FAULT");
    // As keepalived: straight to FAULT at startup, never BACKUP first (a notify_backup).
    let log = std::fs::read_to_string(lab.dir.join("daemon.log")).expect("log");
    assert!(!log.contains("to=\"BACKUP\""), "BACKUP before the first scan:\n{log}");
    let pid = lab.start_tracked(&prog, &["1000"]);
    lab.wait_for("process running: MASTER", SETTLE, |s, _| s == "MASTER");
    lab.kill_tracked(pid);
    // An exit event, no delay: FAULT at once (well within a second).
    lab.wait_for("process killed: FAULT", Duration::from_secs(1), |s, _| s == "FAULT");
    let a = lab.start_tracked(&prog, &["1000"]);
    lab.wait_for("process back: MASTER", SETTLE, |s, _| s == "MASTER");
    lab.kill_tracked(a);
    lab.wait_for("killed again: FAULT", Duration::from_secs(1), |s, _| s == "FAULT");
}

#[test]
fn a_tracked_process_with_a_weight_moves_the_priority_by_its_quorum() {
    if skip_unless("a_tracked_process_with_a_weight_moves_the_priority_by_its_quorum", &[Need::Root]) {
        return;
    }
    let mut lab = HostLab::new("tpw", 214);
    let name = unique("s");
    let prog = lab.program(&name);
    let argv0 = prog.to_str().expect("utf-8").to_owned();
    // Matched on the full command line: argv[0] as run, the first parameter, a prefix of the
    // second. Two of them make the quorum; a third breaks quorum_max; a loss counts after
    // terminate_delay.
    let tracker = format!(
        "vrrp_track_process workers {{\n  process {argv0} 1000\n  param_match partial\n  quorum 2\n  quorum_max 2\n  \
         terminate_delay 1.5\n  weight 30\n}}\n"
    );
    lab.start_daemon(&config(&lab, &tracker, "workers weight -20"));
    lab.wait_for("no quorum: priority 80", SETTLE, |s, p| s == "MASTER" && p == 80);
    let a = lab.start_tracked(&prog, &["1000"]);
    let _other = lab.start_tracked(&prog, &["999"]);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(lab.instance().map(|i| i.1), Some(80), "one match (999 does not match) is no quorum");
    let b = lab.start_tracked(&prog, &["1000", "1"]);
    lab.wait_for("quorum: priority 100", Duration::from_secs(2), |_, p| p == 100);
    let c = lab.start_tracked(&prog, &["1000"]);
    lab.wait_for("above quorum_max: priority 80", Duration::from_secs(2), |_, p| p == 80);
    lab.kill_tracked(c);
    lab.wait_for("quorum again (after terminate_delay, as keepalived): priority 100", Duration::from_secs(4), |_, p| p == 100);
    // A loss waits terminate_delay.
    lab.kill_tracked(b);
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(lab.instance().map(|i| i.1), Some(100), "terminate_delay holds the quorum");
    lab.wait_for("quorum lost after terminate_delay: priority 80", Duration::from_secs(3), |_, p| p == 80);
    lab.kill_tracked(a);
}

/// The same config and the same process under hav and under Debian's keepalived: both fault
/// while the process is missing, become master once it runs, and fault at once when it is
/// killed.
#[test]
fn hav_and_keepalived_track_the_same_process_the_same_way() {
    if skip_unless("hav_and_keepalived_track_the_same_process_the_same_way", &[Need::Root, Need::Keepalived]) {
        return;
    }
    for keepalived in [false, true] {
        let who = if keepalived { "keepalived" } else { "hav" };
        let mut lab = HostLab::new("tpk", 215);
        let name = unique("k");
        let prog = lab.program(&name);
        let tracker = format!("vrrp_track_process proc {{\n  process {name}\n}}\n");
        let conf = config_adv(&lab, &tracker, "proc", "1");
        if keepalived {
            lab.start_keepalived(&conf);
        } else {
            lab.start_daemon(&conf);
        }
        lab.wait_state(&format!("{who}, no process: FAULT"), SETTLE, "FAULT");
        let pid = lab.start_tracked(&prog, &["1000"]);
        lab.wait_state(&format!("{who}, process running: MASTER"), SETTLE, "MASTER");
        lab.kill_tracked(pid);
        lab.wait_state(&format!("{who}, process killed: FAULT"), Duration::from_millis(1500), "FAULT");
    }
}
