//! `hav-linux demo`: a two-router VRRP lab in network namespaces. It starts two daemons (this
//! binary) on a bridge, shows who is master, fails the master, measures the takeover, brings it
//! back (preemption), then removes everything. Needs root and iproute2.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};

use crate::cli::Options;
use crate::daemon::control::{self, Request};

const NS: [&str; 3] = ["havdemo-br", "havdemo-r1", "havdemo-r2"];

struct Lab {
    dir: PathBuf,
    daemons: Vec<Child>,
}

impl Drop for Lab {
    fn drop(&mut self) {
        for d in &mut self.daemons {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(i32::try_from(d.id()).unwrap_or(0)),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        for d in &mut self.daemons {
            let deadline = Instant::now() + Duration::from_secs(3);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = d.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = d.kill();
            let _ = d.wait();
        }
        for ns in NS {
            let _ = Command::new("ip").args(["netns", "del", ns]).stderr(Stdio::null()).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn ip(args: &[&str]) -> anyhow::Result<()> {
    let st = Command::new("ip").args(args).status().with_context(|| "running ip (iproute2)")?;
    if !st.success() {
        bail!("ip {} failed", args.join(" "));
    }
    Ok(())
}

fn config(priority: u8, addr: &str) -> String {
    format!(
        "global_defs {{\n  router_id demo-{addr}\n}}\n\
         vrrp_instance VI_DEMO {{\n  state BACKUP\n  interface eth0\n  virtual_router_id 51\n  \
         priority {priority}\n  advert_int 1\n  virtual_ipaddress {{\n    10.99.0.100/24\n  }}\n}}\n"
    )
}

fn state(sock: &Path) -> String {
    control::request(sock, &Request { cmd: "status".into(), instance: None })
        .ok()
        .and_then(|r| r["instances"][0]["state"].as_str().map(str::to_owned))
        .unwrap_or_else(|| "-".into())
}

fn wait_for(sock: &Path, want: &str, limit: Duration) -> Option<Duration> {
    let t0 = Instant::now();
    while t0.elapsed() < limit {
        if state(sock) == want {
            return Some(t0.elapsed());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// Runs the demo.
pub fn run(_opts: &Options) -> anyhow::Result<()> {
    if !nix::unistd::geteuid().is_root() {
        bail!("the demo creates network namespaces: run it as root");
    }
    let exe = std::env::current_exe().context("finding this binary")?;
    let dir = std::env::temp_dir().join(format!("hav-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut lab = Lab { dir: dir.clone(), daemons: Vec::new() };
    for ns in NS {
        let _ = Command::new("ip").args(["netns", "del", ns]).stderr(Stdio::null()).status();
        ip(&["netns", "add", ns])?;
        ip(&["-n", ns, "link", "set", "lo", "up"])?;
    }
    ip(&["-n", NS[0], "link", "add", "br0", "type", "bridge"])?;
    ip(&["-n", NS[0], "link", "set", "br0", "up"])?;
    for (i, ns) in NS[1..].iter().enumerate() {
        let host = format!("r{}", i + 1);
        ip(&["-n", NS[0], "link", "add", &host, "type", "veth", "peer", "name", "eth0", "netns", ns])?;
        ip(&["-n", NS[0], "link", "set", &host, "master", "br0", "up"])?;
        ip(&["-n", ns, "addr", "add", &format!("10.99.0.{}/24", i + 1), "dev", "eth0"])?;
        ip(&["-n", ns, "link", "set", "eth0", "up"])?;
    }
    let mut socks = Vec::new();
    for (i, (ns, prio)) in [(NS[1], 150u8), (NS[2], 100u8)].into_iter().enumerate() {
        let conf = dir.join(format!("r{}.conf", i + 1));
        std::fs::write(&conf, config(prio, &format!("r{}", i + 1)))?;
        let sock = dir.join(format!("r{}.sock", i + 1));
        let log = std::fs::File::create(dir.join(format!("r{}.log", i + 1)))?;
        let child = Command::new("ip")
            .args(["netns", "exec", ns])
            .arg(&exe)
            .arg("-f")
            .arg(&conf)
            .arg("--control")
            .arg(&sock)
            .arg("--pid")
            .arg(dir.join(format!("r{}.pid", i + 1)))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("starting a daemon")?;
        lab.daemons.push(child);
        socks.push(sock);
        println!("started r{} (priority {prio}) in namespace {ns}", i + 1);
    }
    let show = |socks: &[PathBuf]| println!("  r1: {:<7} r2: {}", state(&socks[0]), state(&socks[1]));
    println!("waiting for the election (3 x advert_int + skew)...");
    if wait_for(&socks[0], "MASTER", Duration::from_secs(10)).is_none() {
        bail!("r1 did not become master; logs in {}", dir.display());
    }
    wait_for(&socks[1], "BACKUP", Duration::from_secs(5));
    show(&socks);
    println!("failing r1 (its link goes down)...");
    ip(&["-n", NS[0], "link", "set", "r1", "down"])?;
    match wait_for(&socks[1], "MASTER", Duration::from_secs(10)) {
        Some(t) => println!("r2 took over the VIP 10.99.0.100 after {} ms", t.as_millis()),
        None => bail!("r2 did not take over; logs in {}", dir.display()),
    }
    show(&socks);
    println!("bringing r1 back (it preempts with the higher priority)...");
    ip(&["-n", NS[0], "link", "set", "r1", "up"])?;
    match wait_for(&socks[1], "BACKUP", Duration::from_secs(10)) {
        Some(t) => println!("r1 is master again after {} ms", t.as_millis()),
        None => bail!("r1 did not preempt; logs in {}", dir.display()),
    }
    show(&socks);
    println!("cleaning up");
    Ok(())
}
