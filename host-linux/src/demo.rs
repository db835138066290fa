//! `hav-linux demo`: a two-router VRRP lab in network namespaces. It starts two daemons (this
//! binary) on a bridge, shows who is master, fails the master, measures the takeover, brings it
//! back (preemption), then removes everything. Needs root and iproute2.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};

use crate::cli::Options;
use crate::daemon::control::{self, Request};

const NS: [&str; 5] = ["havdemo-br", "havdemo-r1", "havdemo-r2", "havdemo-r3", "havdemo-cl"];
const ROUTERS: [(&str, u8); 3] = [("r1", 150), ("r2", 100), ("r3", 50)];

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
         version 3\n  priority {priority}\n  advert_int 1\n  virtual_ipaddress {{\n    10.99.0.100/24\n  }}\n}}\n"
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

/// Pings the VIP from the client every 10 ms in the background; counts sent and answered.
struct Pinger {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<(u32, u32)>>,
}

impl Pinger {
    fn start() -> Pinger {
        use std::sync::atomic::{AtomicBool, Ordering};
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::spawn(move || {
            let (mut sent, mut got) = (0, 0);
            while !s.load(Ordering::Relaxed) {
                // One echo with a 100 ms deadline; then the next, 10 ms later.
                let ok = Command::new("ip")
                    .args(["netns", "exec", NS[4], "ping", "-c1", "-W0.1", "-q", "10.99.0.100"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|st| st.success());
                sent += 1;
                got += u32::from(ok);
                std::thread::sleep(Duration::from_millis(10));
            }
            (sent, got)
        });
        Pinger { stop, thread: Some(thread) }
    }

    fn finish(mut self) -> (u32, u32) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.take().and_then(|t| t.join().ok()).unwrap_or((0, 0))
    }
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
        let port = format!("p{}", i + 1);
        let addr = if i == 3 { "10.99.0.200/24".to_owned() } else { format!("10.99.0.{}/24", i + 1) };
        ip(&["-n", NS[0], "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns", ns])?;
        ip(&["-n", NS[0], "link", "set", &port, "master", "br0", "up"])?;
        ip(&["-n", ns, "addr", "add", &addr, "dev", "eth0"])?;
        ip(&["-n", ns, "link", "set", "eth0", "up"])?;
    }
    println!("lab: routers r1 r2 r3 and a client on one bridge; VIP 10.99.0.100 (VRRPv3, advert_int 1 s)");
    let t0 = Instant::now();
    let stamp = || format!("[{:>6.2} s]", t0.elapsed().as_secs_f64());
    let mut socks = Vec::new();
    for (i, (name, prio)) in ROUTERS.iter().enumerate() {
        let conf = dir.join(format!("{name}.conf"));
        std::fs::write(&conf, config(*prio, name))?;
        let sock = dir.join(format!("{name}.sock"));
        let log = std::fs::File::create(dir.join(format!("{name}.log")))?;
        let child = Command::new("ip")
            .args(["netns", "exec", NS[i + 1]])
            .arg(&exe)
            .arg("--dont-fork")
            .arg("-f")
            .arg(&conf)
            .arg("--control")
            .arg(&sock)
            .arg("--pid")
            .arg(dir.join(format!("{name}.pid")))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("starting a daemon")?;
        lab.daemons.push(child);
        socks.push(sock);
        println!("{} started {name} (priority {prio})", stamp());
    }
    let show = |socks: &[PathBuf]| {
        let states: Vec<String> = ROUTERS.iter().zip(socks).map(|((n, _), s)| format!("{n} {}", state(s))).collect();
        println!("{}   {}", stamp(), states.join(", "));
    };
    if wait_for(&socks[0], "MASTER", Duration::from_secs(10)).is_none() {
        bail!("r1 did not become master; logs in {}", dir.display());
    }
    println!("{} r1 is master (3 x advert_int + skew after start, as RFC 5798 says)", stamp());
    std::thread::sleep(Duration::from_millis(1500));
    show(&socks);
    let pinger = Pinger::start();
    std::thread::sleep(Duration::from_secs(1));
    println!("{} the client pings the VIP every 10 ms; killing r1 (SIGKILL, link down)", stamp());
    ip(&["-n", NS[0], "link", "set", "p1", "down"])?;
    if let Some(d) = lab.daemons.first_mut() {
        let _ = d.kill();
        let _ = d.wait();
    }
    let failover = match wait_for(&socks[1], "MASTER", Duration::from_secs(10)) {
        Some(t) => t,
        None => bail!("r2 did not take over; logs in {}", dir.display()),
    };
    println!("{} r2 took over the VIP: failover {} ms after the kill", stamp(), failover.as_millis());
    std::thread::sleep(Duration::from_secs(1));
    let (sent, got) = pinger.finish();
    show(&socks);
    println!("{} client pings: {sent} sent, {got} answered, {} lost", stamp(), sent - got);
    println!("{} stopping r2 cleanly (SIGTERM: it advertises priority 0)", stamp());
    if let Some(d) = lab.daemons.get(1) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(i32::try_from(d.id()).unwrap_or(0)), nix::sys::signal::Signal::SIGTERM);
    }
    match wait_for(&socks[2], "MASTER", Duration::from_secs(10)) {
        Some(t) => println!("{} r3 took over after {} ms (skew time only, no 3 x advert wait)", stamp(), t.as_millis()),
        None => bail!("r3 did not take over; logs in {}", dir.display()),
    }
    show(&socks);
    println!("{} cleaning up", stamp());
    Ok(())
}
