//! VRRP daemons under test in a namespace lab: hav-linux and keepalived (the reference peer),
//! started from config text, stopped cleanly or "killed" (SIGKILL plus link down, since a
//! killed keepalived leaves its VIP behind).
//!
//! A node is master when its VIP is on its interface; that is what clients see, and it works
//! the same for both daemons.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::netns::Netns;

/// Which daemon a node runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Daemon {
    /// hav-linux, from this binary path.
    Hav(PathBuf),
    /// Debian's keepalived.
    Keepalived,
}

/// A running daemon in a namespace.
#[derive(Debug)]
pub struct Node<'a> {
    /// Its namespace.
    pub ns: &'a Netns,
    /// What runs.
    pub daemon: Daemon,
    /// Work directory: config, log, pid files, control socket.
    pub dir: PathBuf,
    /// The daemon's pid (of `ip netns exec`, which execs it).
    pub pid: Option<u32>,
    /// Extra command-line arguments.
    pub args: Vec<String>,
    /// Extra environment variables (`TMPDIR` for where the state dumps go...).
    pub env: Vec<(String, String)>,
}

/// A fresh work directory under the system temp dir.
pub fn workdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(crate::netns::unique(tag));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("creating a work directory");
    d
}

impl<'a> Node<'a> {
    /// Writes `config` and starts the daemon in `ns`.
    pub fn start(ns: &'a Netns, daemon: Daemon, config: &str) -> Node<'a> {
        Self::start_with(ns, daemon, config, &[])
    }

    /// [`Node::start`] with extra command-line arguments.
    pub fn start_with(ns: &'a Netns, daemon: Daemon, config: &str, args: &[&str]) -> Node<'a> {
        Self::start_env(ns, daemon, config, args, &[])
    }

    /// [`Node::start_with`] with extra environment variables.
    pub fn start_env(ns: &'a Netns, daemon: Daemon, config: &str, args: &[&str], env: &[(&str, &str)]) -> Node<'a> {
        let dir = workdir("nd");
        let args = args.iter().map(|a| (*a).to_owned()).collect();
        let env = env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        let mut n = Node { ns, daemon, dir, pid: None, args, env };
        n.write_config(config);
        n.launch();
        n
    }

    /// The config path.
    pub fn config_path(&self) -> PathBuf {
        self.dir.join("keepalived.conf")
    }

    /// The log path.
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("daemon.log")
    }

    /// hav's control socket.
    pub fn control_path(&self) -> PathBuf {
        self.dir.join("hav.sock")
    }

    /// Replaces the config file (for reloads).
    pub fn write_config(&self, config: &str) {
        std::fs::write(self.config_path(), config).expect("writing the config");
    }

    /// Starts (or restarts) the daemon.
    pub fn launch(&mut self) {
        let conf = self.config_path();
        let conf = conf.to_str().expect("utf-8 path");
        let log = self.log_path();
        let d = self.dir.to_str().expect("utf-8 path").to_owned();
        let pid = match &self.daemon {
            Daemon::Hav(bin) => {
                let sock = format!("{d}/hav.sock");
                let pidf = format!("{d}/hav.pid");
                let mut args = vec!["--dont-fork", "-f", conf, "--control", &sock, "--pid", &pidf, "--log-level", "debug"];
                args.extend(self.args.iter().map(String::as_str));
                self.spawn(bin.to_str().expect("utf-8 path"), &args, &log)
            }
            Daemon::Keepalived => {
                let (p, v, c) = (format!("{d}/k.pid"), format!("{d}/v.pid"), format!("{d}/c.pid"));
                let mut args = vec!["-n", "-l", "-D", "-P", "-f", conf, "-p", &p, "-r", &v, "-c", &c];
                args.extend(self.args.iter().map(String::as_str));
                self.spawn("keepalived", &args, &log)
            }
        };
        self.pid = Some(pid.expect("starting the daemon"));
    }

    /// Starts `prog ARGS` in the namespace, through env(1) when there are variables to set
    /// (env execs the program, so the pid is still the daemon's).
    fn spawn(&self, prog: &str, args: &[&str], log: &Path) -> std::io::Result<u32> {
        if self.env.is_empty() {
            return self.ns.spawn(prog, args, log);
        }
        let vars: Vec<String> = self.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let mut all: Vec<&str> = vars.iter().map(String::as_str).collect();
        all.push(prog);
        all.extend_from_slice(args);
        self.ns.spawn("env", &all, log)
    }

    /// SIGKILL, then the link down: a dead node (its VIP may stay on its interface, but
    /// nobody can reach it).
    ///
    /// Every process of the namespace gets SIGKILL (keepalived's VRRP child would otherwise
    /// notice its parent's death and resign cleanly, which is not what a dead node does), after
    /// the link went down, so nothing leaves the node once it is "dead".
    pub fn kill(&mut self) {
        self.ns.link_down("eth0").expect("link down");
        let pids = crate::netns::ip(&["netns", "pids", self.ns.name()]).unwrap_or_default();
        for p in pids.split_whitespace().filter_map(|p| p.parse::<i32>().ok()) {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), Signal::SIGKILL);
        }
        if let Some(pid) = self.pid.take() {
            let _ = self.ns.stop(pid);
        }
        // Wait for the namespace to be empty, so a restart finds no stale daemon.
        let _ = wait_until(Duration::from_secs(5), || {
            crate::netns::ip(&["netns", "pids", self.ns.name()]).map(|o| o.trim().is_empty()).unwrap_or(true)
        });
    }

    /// SIGKILL to every process of the namespace, then the link down: a crash that leaves the
    /// daemon no moment to react (with the link down first, a daemon that watches links could
    /// remove its VIPs before the signal lands). What it had on its interface stays.
    pub fn crash(&mut self) {
        let pids = crate::netns::ip(&["netns", "pids", self.ns.name()]).unwrap_or_default();
        for p in pids.split_whitespace().filter_map(|p| p.parse::<i32>().ok()) {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), Signal::SIGKILL);
        }
        if let Some(pid) = self.pid.take() {
            let _ = self.ns.stop(pid);
        }
        let _ = wait_until(Duration::from_secs(5), || {
            crate::netns::ip(&["netns", "pids", self.ns.name()]).map(|o| o.trim().is_empty()).unwrap_or(true)
        });
        self.ns.link_down("eth0").expect("link down");
    }

    /// Brings the link back (after [`Node::kill`]) and removes leftovers of the dead daemon.
    pub fn revive(&mut self, vips: &[&str]) {
        for v in vips {
            let _ = self.ns.ip(&["addr", "del", v, "dev", "eth0"]);
        }
        self.ns.link_up("eth0").expect("link up");
        self.launch();
    }

    /// Brings the link back after [`Node::crash`] and starts the daemon again, leaving whatever
    /// the dead daemon left on the interface (its VIPs): a node rebooting into a stale state.
    pub fn restart_after_crash(&mut self) {
        self.ns.link_up("eth0").expect("link up");
        self.launch();
    }

    /// Whether the daemon started last is still running (not exited, not a zombie).
    pub fn alive(&self) -> bool {
        self.pid.is_some_and(|pid| Path::new(&format!("/proc/{pid}")).exists() && !is_zombie(pid))
    }

    /// Sends signal number `sig` (real-time signals too, which [`Signal`] cannot name), with
    /// kill(1), since the workspace allows no `unsafe`.
    ///
    /// # Panics
    /// When kill(1) fails (the process is gone).
    pub fn signal_raw(&self, sig: i32) {
        if let Some(pid) = self.pid {
            signal_number(pid, sig).expect("kill");
        }
    }

    /// SIGTERM and wait for the daemon to exit.
    pub fn terminate(&mut self) -> bool {
        let Some(pid) = self.pid.take() else { return true };
        let _ = self.ns.signal(pid, Signal::SIGTERM);
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(10) {
            if !Path::new(&format!("/proc/{pid}")).exists() || is_zombie(pid) {
                let _ = self.ns.stop(pid);
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.ns.stop(pid);
        false
    }

    /// Sends a signal (SIGHUP for a reload).
    pub fn signal(&self, sig: Signal) {
        if let Some(pid) = self.pid {
            self.ns.signal(pid, sig).expect("signal");
        }
    }

    /// Whether `vip` is on `eth0` (or any interface of the namespace).
    pub fn holds(&self, vip: &str) -> bool {
        holds(self.ns, vip)
    }

    /// The log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }
}

/// Sends signal number `sig` to `pid` with kill(1).
///
/// # Errors
/// When kill(1) cannot run or fails.
pub fn signal_number(pid: u32, sig: i32) -> std::io::Result<()> {
    let out = std::process::Command::new("kill").args(["-s", &sig.to_string(), &pid.to_string()]).output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(std::io::Error::other(format!("kill -s {sig} {pid}: {}", String::from_utf8_lossy(&out.stderr).trim())))
    }
}

/// Whether `pid` has exited (or is gone).
pub fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| s.rsplit(')').next().is_some_and(|r| r.trim_start().starts_with('Z')))
        .unwrap_or(true)
}

impl Drop for Node<'_> {
    fn drop(&mut self) {
        if let Some(pid) = self.pid.take() {
            let _ = self.ns.signal(pid, Signal::SIGTERM);
            std::thread::sleep(Duration::from_millis(200));
            let _ = self.ns.stop(pid);
        }
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        } else {
            eprintln!("--- {:?} log ({}):\n{}", self.daemon, self.dir.display(), self.log());
        }
    }
}

/// Whether `vip` (an address, without prefix) is on an interface of `ns`.
pub fn holds(ns: &Netns, vip: &str) -> bool {
    ns.ip(&["-o", "addr", "show"])
        .map(|out| out.split_whitespace().any(|w| w.split('/').next() == Some(vip)))
        .unwrap_or(false)
}

/// Polls `cond` every 20 ms until it holds or `limit` passes; returns how long it took.
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> Option<Duration> {
    let t0 = Instant::now();
    loop {
        if cond() {
            return Some(t0.elapsed());
        }
        if t0.elapsed() > limit {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A keepalived.conf for one instance on `eth0`. `extra` goes inside the instance block.
pub fn instance_conf(name: &str, vrid: u8, priority: u8, version: u8, advert: &str, vips: &[&str], extra: &str) -> String {
    let vips: String = vips.iter().map(|v| format!("    {v}\n")).collect();
    format!(
        "global_defs {{\n  router_id {name}\n  vrrp_version {version}\n  vrrp_garp_master_delay 0\n}}\n\
         vrrp_instance {name} {{\n  state BACKUP\n  interface eth0\n  virtual_router_id {vrid}\n  \
         priority {priority}\n  advert_int {advert}\n{extra}\n  virtual_ipaddress {{\n{vips}  }}\n}}\n"
    )
}
