//! The soak: three routers (hav, hav, keepalived by default) on one switch with a client,
//! one VRRPv2 instance at 1 s and one VRRPv3 instance at 100 ms, under random faults for
//! minutes, with an observer that reads every router's addresses every 25 ms and checks the
//! invariants a client cares about. Run by `scripts/soak` (ignored by `cargo test`).
//!
//! Faults, one every 2 to 5 s on a router without a fault in progress, chosen by a seeded PRNG
//! (the seed is printed; `HAV_SOAK_SEED` replays the same choices): kill -9 then link down,
//! and a restart 2 to 6 s later (link up, the daemon started again over whatever the dead one
//! left); SIGSTOP for 1 to 5 s; a link flap of 1 to 4 s; a reload (SIGHUP) after one config
//! change (priorities, the v3 advert interval 0.1 <-> 0.2 s, a second VIP added or removed, a
//! track_interface on a link without carrier toggled); a SIGUSR1/SIGUSR2 storm (hav nodes);
//! 10-30 % packet loss (tc netem) on one router's link for 3 to 6 s.
//!
//! Invariants:
//! 1. No two reachable routers (running, not stopped, link up) hold one VIP for longer than
//!    `dual_bound` (see there).
//! 2. A running hav router does not hold a VIP of an instance it does not report as MASTER
//!    (`status`), nor a VIP its config no longer lists, for longer than [`STALE_BOUND`].
//!    keepalived nodes are held to invariant 1 only.
//! 3. No hav process dies but the ones the soak kills. (A dead one is counted and restarted.)
//! 4. Once the faults end and the base configs are back, each instance has exactly one master.
//!
//! Environment: `HAV_SOAK_SECS` (default 120), `HAV_SOAK_SEED`, `HAV_SOAK_ROUTERS` (default
//! `hav,hav,keepalived`), `HAV_SOAK_V3=0` (the v2 instance only), `HAV_SOAK_STATE` (a file
//! the namespaces' names are written to, for scripts/soak to clean up after a kill),
//! `HAV_SOAK_LOGS` (where the daemons' logs are kept when an invariant broke).

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hav_tests::netns::{skip_unless, Lab, Need, Netns};
use hav_tests::peers::{Daemon, Node};
use nix::sys::signal::Signal;
use serde_json::Value;

/// The observer's period.
const TICK: Duration = Duration::from_millis(25);

/// How long a running hav router may hold a VIP that is not its to hold (invariant 2): the
/// time to delete an address after a transition is a few ms; 1 s also covers the observer
/// reading addresses and state at slightly different moments and a loaded machine.
const STALE_BOUND: Duration = Duration::from_secs(1);

/// Invariant 1's bound for an instance whose longest advert interval is `advert`:
/// Master_Down_Interval plus 1 s, that is 3 x advert plus Skew_Time plus 1 s, with
/// Skew_Time < advert (v3: (256 - prio) / 256 x advert; v2 at 1 s: (256 - prio) / 256 s),
/// so 4 x advert plus 1 s: 5 s for VI_A (1 s), 1.8 s for VI_B (0.2 s at most after a reload).
///
/// Why: two reachable routers can both hold a VIP only after one of them could not hear the
/// other (killed, stopped, link down, adverts lost) and took over when Master_Down_Interval
/// ran out. Once both are reachable again, a master that hears a better master's advert
/// yields at once, and adverts come every `advert`; Master_Down_Interval = 3 x advert +
/// Skew_Time is how long the RFC itself lets adverts go missing before it acts, so a dual
/// master must be resolved within it. The 1 s margin covers netem loss (30 % loss drops 3
/// adverts in a row with p = 2.7 %; the margin buys one more advert at 1 s, five at 0.2 s), a
/// restarted daemon's start-up, the observer's period (25 ms plus one `ip` run per router)
/// and the address deletion itself.
fn dual_bound(advert: Duration) -> Duration {
    advert * 4 + Duration::from_secs(1)
}

fn hav_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_hav-linux"))
}

/// splitmix64: small, seedable, good enough to choose faults.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn secs(&mut self, lo: f64, hi: f64) -> Duration {
        let u = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        Duration::from_secs_f64(lo + (hi - lo) * u)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Hav,
    Keepalived,
}

/// What a router's config says; the soak's reloads change it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Conf {
    prio_a: u8,
    prio_b: u8,
    advert_b: &'static str,
    second_vip: bool,
    track: bool,
}

const VIP_A: &str = "10.0.0.150";
const VIP_B: &str = "10.0.0.151";
const VIP_A2: &str = "10.0.0.152";

impl Conf {
    fn text(&self, name: &str, v3: bool) -> String {
        let track = if self.track { "  track_interface {\n    eth1\n  }\n" } else { "" };
        let second = if self.second_vip { format!("    {VIP_A2}/24\n") } else { String::new() };
        let mut s = format!(
            "global_defs {{\n  router_id {name}\n  vrrp_garp_master_delay 0\n  vrrp_skip_check_adv_addr\n}}\n\
             vrrp_instance VI_A {{\n  state BACKUP\n  interface eth0\n  virtual_router_id 100\n  version 2\n  \
             priority {}\n  advert_int 1\n{track}  virtual_ipaddress {{\n    {VIP_A}/24\n{second}  }}\n}}\n",
            self.prio_a
        );
        if v3 {
            s.push_str(&format!(
                "vrrp_instance VI_B {{\n  state BACKUP\n  interface eth0\n  virtual_router_id 101\n  version 3\n  \
                 priority {}\n  advert_int {}\n  virtual_ipaddress {{\n    {VIP_B}/24\n  }}\n}}\n",
                self.prio_b, self.advert_b
            ));
        }
        s
    }
}

struct Router<'a> {
    name: String,
    kind: Kind,
    node: Node<'a>,
    conf: Conf,
    base: Conf,
    /// The daemon should be running (false between a kill and its restart).
    running: bool,
    stopped: bool,
    link_up: bool,
    loss: Option<Loss>,
    /// A fault of this router is in progress until then.
    busy_until: Instant,
    /// When its daemon was started last.
    started: Instant,
    /// Per checked VIP: since when it is held wrongly (invariant 2), and whether reported.
    stale: BTreeMap<&'static str, (Instant, bool)>,
}

impl Router<'_> {
    fn reachable(&self) -> bool {
        self.running && !self.stopped && self.link_up
    }

    fn pids(&self) -> Vec<i32> {
        hav_tests::netns::ip(&["netns", "pids", self.node.ns.name()])
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect()
    }

    fn signal_all(&self, sig: Signal) {
        for p in self.pids() {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), sig);
        }
    }

    fn reload(&self, v3: bool) {
        self.node.write_config(&self.conf.text(&self.name, v3));
        self.node.signal(Signal::SIGHUP);
    }
}

/// `status` with a short timeout, so a stuck daemon cannot stall the observer.
fn status_quick(path: &Path) -> Option<Value> {
    let mut s = std::os::unix::net::UnixStream::connect(path).ok()?;
    s.set_read_timeout(Some(Duration::from_millis(300))).ok()?;
    s.set_write_timeout(Some(Duration::from_millis(300))).ok()?;
    s.write_all(b"{\"cmd\":\"status\"}\n").ok()?;
    let mut line = String::new();
    std::io::BufReader::new(s).read_line(&mut line).ok()?;
    serde_json::from_str(&line).ok()
}

fn instance_state(st: &Value, name: &str) -> Option<String> {
    st["instances"].as_array()?.iter().find(|i| i["name"] == name)?["state"].as_str().map(str::to_owned)
}

/// The IPv4 addresses of a namespace.
fn addresses(r: &Router<'_>) -> Vec<String> {
    r.node
        .ns
        .ip(&["-o", "-4", "addr", "show"])
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().skip_while(|w| *w != "inet").nth(1).and_then(|a| a.split('/').next()).map(str::to_owned))
        .collect()
}

enum Pending {
    Restart(usize),
    Cont(usize),
    LinkUp(usize),
    LossOff(usize),
}

/// How packet loss was put on a router's link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Loss {
    /// `tc qdisc ... netem loss` on eth0 (egress).
    Netem,
    /// An nftables table dropping VRRP at random in and out, for kernels without netem.
    Nft,
}

/// Drops `pct` % of the router's packets: netem when the kernel has it, else nftables.
fn start_loss(ns: &Netns, pct: u64) -> Option<Loss> {
    let ok = |o: std::io::Result<std::process::Output>| o.is_ok_and(|o| o.status.success());
    if ok(ns.run("tc", &["qdisc", "replace", "dev", "eth0", "root", "netem", "loss", &format!("{pct}%")])) {
        return Some(Loss::Netem);
    }
    let rules = format!(
        "table ip havsoak {{\n  chain out {{ type filter hook output priority 0; policy accept; ip protocol 112 numgen random mod 100 < {pct} drop; }}\n  \
         chain in {{ type filter hook input priority 0; policy accept; ip protocol 112 numgen random mod 100 < {pct} drop; }}\n}}\n"
    );
    let mut child = std::process::Command::new("ip")
        .args(["netns", "exec", ns.name(), "nft", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()?;
    child.stdin.take()?.write_all(rules.as_bytes()).ok()?;
    child.wait().ok()?.success().then_some(Loss::Nft)
}

fn stop_loss(ns: &Netns, loss: Option<Loss>) {
    match loss {
        Some(Loss::Netem) => drop(ns.run("tc", &["qdisc", "del", "dev", "eth0", "root"])),
        Some(Loss::Nft) => drop(ns.run("nft", &["delete", "table", "ip", "havsoak"])),
        None => {}
    }
}

struct Soak<'a> {
    routers: Vec<Router<'a>>,
    v3: bool,
    rng: Rng,
    t0: Instant,
    pending: Vec<(Instant, Pending)>,
    faults: BTreeMap<&'static str, u32>,
    breaks: BTreeMap<&'static str, u32>,
    /// Per VIP: since when two reachable routers hold it, and whether reported.
    dual: BTreeMap<&'static str, (Instant, bool)>,
}

impl<'a> Soak<'a> {
    fn log(&self, msg: &str) {
        println!("[{:8.3}] {msg}", self.t0.elapsed().as_secs_f64());
    }

    fn broke(&mut self, inv: &'static str, msg: &str) {
        *self.breaks.entry(inv).or_default() += 1;
        self.log(&format!("BREAK {inv}: {msg}"));
    }

    fn fault(&mut self, kind: &'static str, i: usize, what: &str) {
        *self.faults.entry(kind).or_default() += 1;
        let r = &self.routers[i];
        self.log(&format!("fault {kind} on {} ({:?}): {what}", r.name, r.kind));
    }

    /// Injects one random fault on a router without a fault in progress.
    fn inject(&mut self) {
        let now = Instant::now();
        let free: Vec<usize> = (0..self.routers.len()).filter(|&i| self.routers[i].busy_until <= now && self.routers[i].running).collect();
        // Keep one router of the three undisturbed, so an election always has a candidate.
        let disturbed = self.routers.len() - free.len();
        if free.is_empty() || disturbed + 1 >= self.routers.len() {
            return;
        }
        let i = free[self.rng.below(free.len() as u64) as usize];
        match self.rng.below(6) {
            0 => {
                let back = self.rng.secs(2.0, 6.0);
                self.fault("kill9+linkdown", i, &format!("restart in {:.1} s", back.as_secs_f64()));
                let r = &mut self.routers[i];
                r.node.crash();
                r.running = false;
                r.link_up = false;
                r.stopped = false;
                r.stale.clear();
                r.busy_until = now + back + Duration::from_secs(1);
                self.pending.push((now + back, Pending::Restart(i)));
            }
            1 => {
                let d = self.rng.secs(1.0, 5.0);
                self.fault("sigstop", i, &format!("SIGCONT in {:.1} s", d.as_secs_f64()));
                let r = &mut self.routers[i];
                r.signal_all(Signal::SIGSTOP);
                r.stopped = true;
                r.stale.clear();
                r.busy_until = now + d + Duration::from_secs(1);
                self.pending.push((now + d, Pending::Cont(i)));
            }
            2 => {
                let d = self.rng.secs(1.0, 4.0);
                self.fault("link-flap", i, &format!("up in {:.1} s", d.as_secs_f64()));
                let r = &mut self.routers[i];
                let _ = r.node.ns.link_down("eth0");
                r.link_up = false;
                r.busy_until = now + d + Duration::from_secs(1);
                self.pending.push((now + d, Pending::LinkUp(i)));
            }
            3 => self.reload(i),
            4 if self.routers[i].kind == Kind::Hav => {
                self.fault("sigusr-storm", i, "10 x SIGUSR1, 10 x SIGUSR2");
                let r = &self.routers[i];
                for n in 0..20 {
                    if r.node.alive() {
                        r.node.signal(if n % 2 == 0 { Signal::SIGUSR1 } else { Signal::SIGUSR2 });
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                self.routers[i].busy_until = now + Duration::from_secs(1);
            }
            4 => self.reload(i),
            _ => {
                let loss = 10 + self.rng.below(21);
                let d = self.rng.secs(3.0, 6.0);
                let r = &mut self.routers[i];
                r.loss = start_loss(r.node.ns, loss);
                let how = match r.loss {
                    Some(Loss::Netem) => "tc netem, both ways on eth0",
                    Some(Loss::Nft) => "nft numgen drop of VRRP in and out (no netem in this kernel)",
                    None => "NOT APPLIED: neither tc netem nor nft works here",
                };
                r.busy_until = now + d + Duration::from_secs(1);
                self.pending.push((now + d, Pending::LossOff(i)));
                self.fault("packet-loss", i, &format!("{loss} % for {:.1} s ({how})", d.as_secs_f64()));
            }
        }
    }

    fn reload(&mut self, i: usize) {
        let change = self.rng.below(4);
        let (pa, pb) = (60 + self.rng.below(180) as u8, 60 + self.rng.below(180) as u8);
        let r = &mut self.routers[i];
        let (kind, what) = match change {
            0 => {
                r.conf.prio_a = pa;
                r.conf.prio_b = pb;
                ("reload-priority", format!("priorities {pa}/{pb}"))
            }
            1 if self.v3 => {
                r.conf.advert_b = if r.conf.advert_b == "0.1" { "0.2" } else { "0.1" };
                ("reload-advert-int", format!("VI_B advert_int {}", r.conf.advert_b))
            }
            1 | 2 => {
                r.conf.second_vip = !r.conf.second_vip;
                ("reload-second-vip", format!("second VIP {}", if r.conf.second_vip { "added" } else { "removed" }))
            }
            _ => {
                r.conf.track = !r.conf.track;
                ("reload-track-down-link", format!("track_interface eth1 (no carrier) {}", if r.conf.track { "on" } else { "off" }))
            }
        };
        r.reload(self.v3);
        r.busy_until = Instant::now() + Duration::from_secs(1);
        self.fault(kind, i, &what);
    }

    /// Runs the events that are due (all of them with `all`); returns the routers restarted.
    fn run_pending(&mut self, all: bool) -> Vec<usize> {
        let now = Instant::now();
        let (due, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pending).into_iter().partition(|(t, _)| all || *t <= now);
        self.pending = rest;
        let mut restarted = Vec::new();
        for (_, p) in due {
            match p {
                Pending::Restart(i) => {
                    let r = &mut self.routers[i];
                    r.node.write_config(&r.conf.text(&r.name, self.v3));
                    r.node.restart_after_crash();
                    r.started = Instant::now();
                    r.running = true;
                    r.link_up = true;
                    let name = r.name.clone();
                    self.log(&format!("{name} restarted"));
                    restarted.push(i);
                }
                Pending::Cont(i) => {
                    let r = &mut self.routers[i];
                    r.signal_all(Signal::SIGCONT);
                    r.stopped = false;
                    let name = r.name.clone();
                    self.log(&format!("{name} continued"));
                }
                Pending::LinkUp(i) => {
                    let r = &mut self.routers[i];
                    if r.running {
                        let _ = r.node.ns.link_up("eth0");
                        r.link_up = true;
                    }
                    let name = r.name.clone();
                    self.log(&format!("{name} link up"));
                }
                Pending::LossOff(i) => {
                    let r = &mut self.routers[i];
                    stop_loss(r.node.ns, r.loss.take());
                }
            }
        }
        restarted
    }

    /// The VIPs checked, with their instance and advert interval bound.
    fn vips(&self) -> Vec<(&'static str, &'static str, Duration)> {
        let mut v = vec![("VI_A", VIP_A, dual_bound(Duration::from_secs(1))), ("VI_A", VIP_A2, dual_bound(Duration::from_secs(1)))];
        if self.v3 {
            v.push(("VI_B", VIP_B, dual_bound(Duration::from_millis(200))));
        }
        v
    }

    /// One observation: addresses of every router, state of every hav router, invariants.
    fn observe(&mut self) {
        let now = Instant::now();
        let held: Vec<Vec<String>> = self.routers.iter().map(addresses).collect();
        let states: Vec<Option<Value>> = self
            .routers
            .iter()
            .map(|r| if r.kind == Kind::Hav && r.running && !r.stopped { status_quick(&r.node.control_path()) } else { None })
            .collect();
        // 3: a hav process that died without being killed by the soak.
        for i in 0..self.routers.len() {
            let r = &self.routers[i];
            if r.kind == Kind::Hav && r.running && !r.node.alive() {
                let tail: String = r.node.log().lines().rev().take(3).collect::<Vec<_>>().join(" | ");
                let msg = format!("hav on {} died (log tail: {tail}); restarting it", r.name);
                self.broke("3-hav-died", &msg);
                let r = &mut self.routers[i];
                r.running = false;
                r.stale.clear();
                let _ = r.node.ns.stop(r.node.pid.take().unwrap_or(0));
                r.busy_until = now + Duration::from_secs(3);
                self.pending.push((now + Duration::from_secs(2), Pending::Restart(i)));
            }
        }
        // While the routers disagree on VI_A's address list (a reload added the second VIP on
        // some of them), keepalived drops every advert whose address count differs from its own
        // ("received an unexpected ip number count"), even with vrrp_skip_check_adv_addr: two
        // masters then are the configuration's doing, in keepalived as in hav, and not counted.
        let vip_lists_differ = {
            let mut lists = self.routers.iter().filter(|r| r.running).map(|r| r.conf.second_vip);
            lists.next().is_some_and(|first| lists.any(|x| x != first))
        };
        for (inst, vip, bound) in self.vips() {
            // 1: two reachable holders.
            let holders: Vec<usize> = (0..self.routers.len()).filter(|&i| self.routers[i].reachable() && held[i].iter().any(|a| a == vip)).collect();
            if inst == "VI_A" && vip_lists_differ {
                self.dual.remove(vip);
            } else if holders.len() >= 2 {
                let (since, reported) = *self.dual.entry(vip).or_insert((now, false));
                if !reported && now - since > bound {
                    let names: Vec<&str> = holders.iter().map(|&i| self.routers[i].name.as_str()).collect();
                    let msg = format!("{vip} ({inst}) held by reachable {names:?} for {:?} (bound {bound:?})", now - since);
                    self.dual.insert(vip, (since, true));
                    self.broke("1-two-masters", &msg);
                }
            } else if let Some((since, reported)) = self.dual.remove(vip) {
                if reported {
                    self.log(&format!("{vip}: two masters for {:?} in all", now - since));
                }
            }
            // 2: a running hav router holding a VIP that is not its to hold.
            for i in 0..self.routers.len() {
                let r = &self.routers[i];
                if r.kind != Kind::Hav || !r.running || r.stopped {
                    continue;
                }
                let Some(st) = &states[i] else { continue };
                let state = instance_state(st, inst);
                let listed = vip != VIP_A2 || r.conf.second_vip;
                let wrong = held[i].iter().any(|a| a == vip) && (state.as_deref() != Some("MASTER") || !listed);
                if !wrong {
                    self.routers[i].stale.remove(vip);
                    continue;
                }
                let name = r.name.clone();
                let (since, reported) = *self.routers[i].stale.entry(vip).or_insert((now, false));
                if !reported && now - since > STALE_BOUND {
                    let why = if listed { format!("while {inst} is {state:?}") } else { "that its config no longer lists".into() };
                    let msg = format!("{name} holds {vip} {why} for {:?}", now - since);
                    self.routers[i].stale.insert(vip, (since, true));
                    self.broke("2-vip-on-non-master", &msg);
                }
            }
        }
    }

    /// Observes until `until`, running due events and, when `faults`, injecting faults.
    fn drive(&mut self, until: Instant, faults: bool) {
        let mut next_fault = Instant::now() + self.rng.secs(2.0, 5.0);
        while Instant::now() < until {
            let tick = Instant::now() + TICK;
            self.run_pending(false);
            if faults && Instant::now() >= next_fault {
                self.inject();
                next_fault = Instant::now() + self.rng.secs(2.0, 5.0);
            }
            self.observe();
            if let Some(d) = tick.checked_duration_since(Instant::now()) {
                std::thread::sleep(d);
            }
        }
    }

    /// Ends every fault and reloads the base configs.
    fn heal(&mut self) {
        // Restarts write the base config; a SIGHUP right after a start could land before the
        // daemon handles it.
        for r in &mut self.routers {
            r.conf = r.base.clone();
        }
        let mut restarted = self.run_pending(true);
        // A daemon started in the last second may not handle SIGHUP yet: it gets the base
        // config by a restart only if it was started by this heal, and the others wait.
        let recent = self.routers.iter().map(|r| r.started).max().unwrap_or(self.t0);
        if let Some(d) = (recent + Duration::from_secs(1)).checked_duration_since(Instant::now()) {
            std::thread::sleep(d);
        }
        restarted.sort_unstable();
        for i in 0..self.routers.len() {
            let r = &mut self.routers[i];
            if r.stopped {
                r.signal_all(Signal::SIGCONT);
                r.stopped = false;
            }
            stop_loss(r.node.ns, r.loss.take());
            if !r.link_up && r.running {
                let _ = r.node.ns.link_up("eth0");
                r.link_up = true;
            }
            if restarted.contains(&i) {
                continue;
            }
            if r.running {
                r.reload(self.v3);
            } else {
                r.node.write_config(&r.conf.text(&r.name, self.v3));
                r.node.restart_after_crash();
                    r.started = Instant::now();
                r.running = true;
                r.link_up = true;
            }
        }
        self.log("faults ended; base configs reloaded");
    }
}

fn env_or<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[test]
#[ignore = "soak: run by scripts/soak"]
fn soak() {
    if skip_unless("soak", &[Need::Root, Need::Keepalived]) {
        return;
    }
    let secs: u64 = env_or("HAV_SOAK_SECS", 120);
    let seed: u64 = env_or(
        "HAV_SOAK_SEED",
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1),
    );
    let v3 = std::env::var("HAV_SOAK_V3").map(|v| v != "0").unwrap_or(true);
    let kinds: Vec<Kind> = std::env::var("HAV_SOAK_ROUTERS")
        .unwrap_or_else(|_| "hav,hav,keepalived".into())
        .split(',')
        .map(|k| match k.trim() {
            "hav" => Kind::Hav,
            "keepalived" => Kind::Keepalived,
            other => panic!("HAV_SOAK_ROUTERS: unknown daemon {other:?} (hav, keepalived)"),
        })
        .collect();
    assert!(kinds.len() >= 2, "HAV_SOAK_ROUTERS: at least two routers");
    println!("soak: {secs} s, seed {seed}, routers {kinds:?}, v3 instance {v3} (replay: scripts/soak --secs {secs} --seed {seed})");

    let lab = Lab::new(kinds.len()).expect("lab");
    if let Ok(state) = std::env::var("HAV_SOAK_STATE") {
        let mut names: Vec<&str> = lab.routers.iter().map(|r| r.name()).collect();
        names.push(lab.client.name());
        names.push(lab.bridge.netns().name());
        let _ = std::fs::write(state, names.join("\n") + "\n");
    }
    let mut routers = Vec::new();
    for (i, &kind) in kinds.iter().enumerate() {
        let ns = &lab.routers[i];
        // eth1: up, without carrier (its peer is down), for track_interface toggles.
        ns.ip(&["link", "add", "eth1", "type", "veth", "peer", "name", "eth1p"]).expect("eth1");
        ns.link_up("eth1").expect("eth1 up");
        let prio = [150u8, 120, 100, 90, 80][i.min(4)];
        let base = Conf { prio_a: prio, prio_b: prio, advert_b: "0.1", second_vip: false, track: false };
        let name = format!("r{i}");
        let daemon = match kind {
            Kind::Hav => Daemon::Hav(hav_bin()),
            Kind::Keepalived => Daemon::Keepalived,
        };
        let node = Node::start(ns, daemon, &base.text(&name, v3));
        routers.push(Router {
            name,
            kind,
            node,
            conf: base.clone(),
            base,
            running: true,
            stopped: false,
            link_up: true,
            loss: None,
            busy_until: Instant::now(),
            started: Instant::now(),
            stale: BTreeMap::new(),
        });
    }
    let mut soak = Soak {
        routers,
        v3,
        rng: Rng(seed),
        t0: Instant::now(),
        pending: Vec::new(),
        faults: BTreeMap::new(),
        breaks: BTreeMap::new(),
        dual: BTreeMap::new(),
    };
    // Settle: the first election takes Master_Down_Interval (3.4 s).
    let settle = Instant::now() + Duration::from_secs(6);
    soak.drive(settle, false);
    soak.log("settled; faults start");
    soak.drive(Instant::now() + Duration::from_secs(secs), true);
    soak.heal();
    // Past every Master_Down_Interval: the election settles again, still observed.
    soak.drive(Instant::now() + Duration::from_secs(8), false);
    let mut vips = vec![("VI_A", VIP_A)];
    if v3 {
        vips.push(("VI_B", VIP_B));
    }
    for (inst, vip) in vips {
        let holders: Vec<String> =
            soak.routers.iter().filter(|r| addresses(r).iter().any(|a| a == vip)).map(|r| r.name.clone()).collect();
        if holders.len() != 1 {
            soak.broke("4-one-master-at-the-end", &format!("{inst}: {vip} held by {holders:?} after the faults ended"));
        }
    }
    let stray: Vec<String> = soak.routers.iter().filter(|r| addresses(r).iter().any(|a| a == VIP_A2)).map(|r| r.name.clone()).collect();
    if !stray.is_empty() {
        soak.broke("4-one-master-at-the-end", &format!("{VIP_A2} (no longer configured) still on {stray:?}"));
    }

    let total_faults: u32 = soak.faults.values().sum();
    let total_breaks: u32 = soak.breaks.values().sum();
    println!("\nsoak summary (seed {seed}, {secs} s)");
    println!("faults injected: {total_faults}");
    for (k, n) in &soak.faults {
        println!("  {k:<24} {n}");
    }
    println!("invariant breaks: {total_breaks}");
    for (k, n) in &soak.breaks {
        println!("  {k:<24} {n}");
    }
    if total_breaks > 0 {
        let keep = std::env::var("HAV_SOAK_LOGS").map(PathBuf::from).unwrap_or_else(|_| std::env::temp_dir().join(format!("hav-soak-{seed}")));
        let _ = std::fs::create_dir_all(&keep);
        for r in &soak.routers {
            let _ = std::fs::copy(r.node.log_path(), keep.join(format!("{}-{:?}.log", r.name, r.kind).to_lowercase()));
        }
        println!("daemon logs kept in {}", keep.display());
    }
    // Stop the daemons (cleanly) and take the lab down before failing.
    drop(soak);
    drop(lab);
    assert_eq!(total_breaks, 0, "{total_breaks} invariant breaks; replay with scripts/soak --secs {secs} --seed {seed}");
}
