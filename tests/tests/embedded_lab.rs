//! hav-embedded's router elects against real peers in the namespace lab:
//! keepalived from Debian's package, and hav-linux (`hav-linux -f
//! keepalived.conf -P`, built when missing). The embedded node is either
//! the std runner `hav-embedded-tap` on a TAP device, or the firmware image
//! itself: the MPS2-AN386 build (host-embedded/firmware/mps2-an386) booted
//! by `qemu-system-arm -M mps2-an386` with its LAN9118 on the same TAP device
//! (the tests named `qemu_*`; the config goes into the image's config sector
//! with QEMU's `-device loader`, its log comes from the emulated UART).
//!
//! Layout: the lab's switch; router 0 (10.0.0.1) runs the peer; a namespace
//! `emb` holds the TAP device `tap0` and a bridge joining it to its `eth0`
//! on the switch, and the runner there owns 10.0.0.2 on the TAP (the
//! namespace's kernel has no address at all; QEMU's node has the same
//! address and MAC); the client (10.0.0.100)
//! pings the VIP 10.0.0.50.
//!
//! Elections: VRRPv2 (1 s, also with PASS authentication), VRRPv3 (0.5 s),
//! VRRPv3 with unicast peers, and VRRPv3 over IPv6 (link-local sources,
//! ff02::12, VIP fd00::50 found by neighbour discovery from the client).
//!
//! Death is SIGKILL (of the runner, or of QEMU: the emulated board stops
//! dead) plus link down, so no priority-0 advert helps the survivor. Each scenario checks: who becomes master and who stays backup;
//! that the master answers ARP and ping for the VIP from the client;
//! failover when the master dies; preemption back when it returns.
//!
//! The runner binary comes from `cargo build -p hav-embedded --features
//! std --bin hav-embedded-tap` (run once by the tests; `HAV_EMBEDDED_TAP`
//! overrides the path); the firmware from `cargo build --release` in
//! host-embedded/firmware/mps2-an386 (run once by the QEMU tests;
//! `HAV_FIRMWARE_QEMU` overrides the path). `bench_failover` (ignored; run
//! by scripts/bench-embedded-failover) prints failover times.

use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hav_tests::netns::{parse_mac, skip_unless, skip_unless_root, unique, Lab, Need, Netns, Veth};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

const VIP: &str = "10.0.0.50";
/// The VIP of the IPv6 elections (VRRPv3 over IPv6, link-local sources:
/// the embedded node's fe80::2, the peer's kernel-made one).
const VIP6: &str = "fd00::50";
const VRID: u8 = 51;

// ---------------------------------------------------------------- binaries

fn target_dir() -> PathBuf {
    // target/debug/deps/embedded_lab-HASH -> target/debug
    let exe = std::env::current_exe().expect("test executable path");
    exe.parent().and_then(Path::parent).expect("target dir").to_path_buf()
}

/// The std runner, (re)built once per test process: `cargo test
/// --workspace` does not build it, as it needs the `std` feature.
fn runner_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("HAV_EMBEDDED_TAP") {
        return PathBuf::from(p);
    }
    let path = target_dir().join("hav-embedded-tap");
    static BUILD: std::sync::Once = std::sync::Once::new();
    BUILD.call_once(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "-p", "hav-embedded", "--features", "std", "--bin", "hav-embedded-tap"])
            .status()
            .expect("run cargo build");
        assert!(status.success(), "building hav-embedded-tap failed");
    });
    assert!(path.exists(), "{} missing: cargo build -p hav-embedded --features std", path.display());
    path
}

/// The MPS2-AN386 firmware ELF, (re)built once per test process with
/// `cargo build --release` in its own workspace (own target directory).
fn firmware_elf() -> PathBuf {
    if let Some(p) = std::env::var_os("HAV_FIRMWARE_QEMU") {
        return PathBuf::from(p);
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../host-embedded/firmware/mps2-an386");
    static BUILD: std::sync::Once = std::sync::Once::new();
    BUILD.call_once(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--release", "--quiet"])
            .current_dir(&dir)
            // The outer cargo's settings are for the host workspace.
            .env_remove("CARGO_TARGET_DIR")
            .env_remove("RUSTFLAGS")
            .status()
            .expect("run cargo build");
        assert!(status.success(), "building the mps2-an386 firmware failed");
    });
    let elf = dir.join("target/thumbv7em-none-eabihf/release/hav-firmware-mps2-an386");
    assert!(elf.exists(), "{} missing: scripts/build-firmware builds it", elf.display());
    elf
}

/// hav-linux's daemon when it has been built (`cargo build -p hav-linux`;
/// `HAV_LINUX` overrides the path).
fn hav_linux_bin() -> Option<PathBuf> {
    let path = std::env::var_os("HAV_LINUX")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join("hav-linux"));
    path.exists().then_some(path)
}

/// hav-linux's daemon, built on first use when missing.
fn hav_linux_bin_built() -> PathBuf {
    static BUILD: std::sync::Once = std::sync::Once::new();
    BUILD.call_once(|| {
        if hav_linux_bin().is_some() {
            return;
        }
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "-p", "hav-linux", "--bin", "hav-linux"])
            .status()
            .expect("run cargo build");
        assert!(status.success(), "building hav-linux failed");
    });
    hav_linux_bin().expect("hav-linux binary after cargo build -p hav-linux")
}

// ---------------------------------------------------------------- scratch dir

/// A directory for configs and logs, removed on drop unless the test
/// failed (then its path and the logs' tails are printed) or
/// `HAV_KEEP_LOGS` is set.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let dir = std::env::temp_dir().join(unique(tag));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Scratch(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::env::var_os("HAV_KEEP_LOGS").is_some() {
            eprintln!("logs kept in {}", self.0.display());
        } else if std::thread::panicking() {
            eprintln!("logs kept in {}", self.0.display());
            for entry in std::fs::read_dir(&self.0).into_iter().flatten().flatten() {
                let p = entry.path();
                if p.extension().is_some_and(|e| e == "log") {
                    let text = std::fs::read_to_string(&p).unwrap_or_default();
                    let tail: Vec<&str> = text.lines().rev().take(40).collect();
                    eprintln!("--- {} (last lines)", p.display());
                    for l in tail.iter().rev() {
                        eprintln!("{l}");
                    }
                }
            }
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fn now_us() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros())
}

fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < end, "timed out after {timeout:?} waiting for {what}");
        sleep(Duration::from_millis(20));
    }
}

fn mac_str(m: [u8; 6]) -> String {
    m.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

// ---------------------------------------------------------------- election settings

/// One election: the same VRID, VIP, version and interval on both nodes.
#[derive(Clone, Copy, Debug)]
struct Election {
    version: u8,
    /// Seconds (VRRPv3 allows fractions).
    advert_int: f64,
    auth_pass: Option<&'static str>,
    /// Unicast adverts between 10.0.0.1 and 10.0.0.2 instead of multicast.
    unicast: bool,
    /// VRRPv3 over IPv6 (VIP6, ff02::12) instead of IPv4.
    ipv6: bool,
}

impl Election {
    fn vip(&self) -> &'static str {
        if self.ipv6 {
            VIP6
        } else {
            VIP
        }
    }

    fn vip_cidr(&self) -> String {
        format!("{}/{}", self.vip(), if self.ipv6 { 64 } else { 24 })
    }

    /// Master_Down_Interval of the slower node, plus slack for the
    /// processes to start.
    fn takeover_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.advert_int * 4.0 + 6.0)
    }
}

// ---------------------------------------------------------------- the embedded node

/// What runs the embedded node's code.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Node {
    /// The std runner `hav-embedded-tap`.
    Runner,
    /// The MPS2-AN386 firmware under qemu-system-arm.
    Qemu,
}

/// The embedded node on `tap0` in a namespace of its own, plugged into the
/// lab's switch through a bridge.
struct Emb {
    node: Node,
    ns: Netns,
    _link: Veth,
    cfg: PathBuf,
    log: PathBuf,
    pid: Option<u32>,
    // QEMU, the console's input, and the thread that stamps its serial
    // output into the log.
    qemu: Option<(Child, std::process::ChildStdin, std::thread::JoinHandle<()>)>,
    // Byte offset of the log where the current run starts.
    start_at: usize,
    mac: [u8; 6],
    encode_args: Vec<String>,
}

/// `hav-embedded-tap encode ARGS`.
fn encode(args: &[String]) {
    let out = Command::new(runner_bin()).args(args).output().expect("run encode");
    assert!(out.status.success(), "encode: {}", String::from_utf8_lossy(&out.stderr));
}

/// One `EVENT` line of the runner.
#[derive(Debug, Clone)]
struct Ev {
    us: u128,
    from: String,
    to: String,
    reason: String,
}

impl Emb {
    fn new(lab: &Lab, dir: &Scratch, e: Election, priority: u8, node: Node) -> io::Result<Emb> {
        let ns = Netns::new(&unique("emb"))?;
        let link = lab.bridge.attach(&ns, Lab::IFNAME)?;
        ns.ip(&["tuntap", "add", "dev", "tap0", "mode", "tap"])?;
        ns.ip(&["link", "add", "br0", "type", "bridge"])?;
        ns.ip(&["link", "set", "tap0", "master", "br0"])?;
        ns.ip(&["link", "set", Lab::IFNAME, "master", "br0"])?;
        for l in ["tap0", "br0", Lab::IFNAME] {
            ns.link_up(l)?;
        }
        let cfg = dir.path("emb.cfg");
        let log = dir.path("emb.log");
        let prio = priority.to_string();
        let ver = e.version.to_string();
        let int = e.advert_int.to_string();
        let vrid = VRID.to_string();
        let mut args = vec![
            "encode", "--address", "10.0.0.2/24", "--vrid", &vrid, "--priority", &prio,
            "--version", &ver, "--advert-int", &int, "--vip", e.vip(),
        ];
        if e.ipv6 {
            args.extend(["--ipv6", "--link-local", "fe80::2"]);
        }
        if let Some(pw) = e.auth_pass {
            args.extend(["--auth-pass", pw]);
        }
        if e.unicast {
            args.extend(["--unicast-peer", "10.0.0.1"]);
        }
        let cfg_s = cfg.to_str().expect("utf-8 path");
        args.extend(["-o", cfg_s]);
        let encode_args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        encode(&encode_args);
        // The runner derives its MAC from the address: 02:68:0a:00:00:02;
        // QEMU's LAN9118 gets the same one.
        let mac = [0x02, 0x68, 10, 0, 0, 2];
        Ok(Emb { node, ns, _link: link, cfg, log, pid: None, qemu: None, start_at: 0, mac, encode_args })
    }

    /// Re-encodes the config with more instance flags.
    fn extra_args(&mut self, extra: &[&str]) {
        let mut args = self.encode_args.clone();
        let out = args.pop().expect("-o FILE");
        args.pop();
        args.extend(extra.iter().map(|s| s.to_string()));
        args.extend(["-o".to_string(), out]);
        encode(&args);
        self.encode_args = args;
    }

    fn start(&mut self) {
        self.ns.link_up(Lab::IFNAME).expect("link up");
        self.start_at = std::fs::metadata(&self.log).map_or(0, |m| m.len() as usize);
        if self.node == Node::Qemu {
            self.start_qemu();
            return;
        }
        let bin = runner_bin();
        let args = ["run", "--tap", "tap0", "--config", self.cfg.to_str().expect("utf-8")];
        let pid = self.ns.spawn(bin.to_str().expect("utf-8"), &args, &self.log).expect("spawn");
        self.pid = Some(pid);
    }

    /// Boots the firmware: the LAN9118 on `tap0` with the node's MAC, the
    /// stored config loaded into the config sector. Each line of the UART
    /// goes to the log with the time it arrived (µs since the epoch), and
    /// each `EVENT` line again in the runner's format, so that both kinds
    /// of node read the same.
    fn start_qemu(&mut self) {
        let elf = firmware_elf();
        let nic = format!("tap,id=uplink,ifname=tap0,script=no,downscript=no,mac={}", mac_str(self.mac));
        let monitor = format!("unix:{},server=on,wait=off", self.monitor_path().display());
        let loader = format!("loader,file={},addr=0x3f0000,force-raw=on", self.cfg.display());
        let mut log = std::fs::File::options().create(true).append(true).open(&self.log).expect("log");
        let stderr = log.try_clone().expect("log");
        let mut child = Command::new("ip")
            .args(["netns", "exec", self.ns.name(), "qemu-system-arm", "-M", "mps2-an386"])
            .args(["-display", "none", "-monitor", &monitor, "-serial", "stdio"])
            .args(["-nic", &nic, "-device", &loader, "-kernel"])
            .arg(&elf)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawn qemu-system-arm");
        let out = child.stdout.take().expect("qemu stdout");
        let console = child.stdin.take().expect("qemu stdin");
        let stamper = std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let us = now_us();
                let line = line.trim_end();
                let _ = writeln!(log, "{us} {line}");
                if let Some((_, ev)) = line.split_once("EVENT vrid=") {
                    let _ = writeln!(log, "EVENT {us} vrid={ev}");
                }
            }
        });
        self.qemu = Some((child, console, stamper));
    }

    fn monitor_path(&self) -> PathBuf {
        self.log.with_extension("mon")
    }

    /// Runs `cmd` on QEMU's monitor (a unix socket) and returns once the
    /// monitor has answered with its next prompt.
    fn monitor(&self, cmd: &str) {
        use std::io::Read;
        let path = self.monitor_path();
        let mut sock = wait_for("QEMU's monitor socket", Duration::from_secs(5), || {
            std::os::unix::net::UnixStream::connect(&path).ok()
        });
        sock.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
        let mut seen = String::new();
        let read_prompt = |sock: &mut std::os::unix::net::UnixStream, seen: &mut String, n: usize| {
            let mut buf = [0u8; 1024];
            while seen.matches("(qemu)").count() < n {
                let got = sock.read(&mut buf).expect("read QEMU's monitor");
                assert!(got > 0, "QEMU's monitor closed: {seen}");
                seen.push_str(&String::from_utf8_lossy(&buf[..got]));
            }
        };
        read_prompt(&mut sock, &mut seen, 1);
        sock.write_all(format!("{cmd}\n").as_bytes()).expect("write QEMU's monitor");
        read_prompt(&mut sock, &mut seen, 2);
    }

    /// Types `line` on the firmware's console (UART 0, QEMU's stdin).
    fn console(&mut self, line: &str) {
        let (_, console, _) = self.qemu.as_mut().expect("the firmware runs");
        console.write_all(format!("{line}\n").as_bytes()).expect("write to the console");
        console.flush().expect("flush the console");
    }

    /// SIGKILL (the runner, or QEMU), then the link goes down.
    fn kill(&mut self) {
        if let Some(pid) = self.pid.take() {
            self.ns.stop(pid).expect("stop runner");
        }
        self.kill_qemu();
        self.ns.link_down(Lab::IFNAME).expect("link down");
    }

    fn kill_qemu(&mut self) {
        if let Some((mut child, _console, stamper)) = self.qemu.take() {
            let _ = child.kill();
            let _ = child.wait();
            let _ = stamper.join();
        }
    }

    /// The state-change events of the current run.
    fn events(&self) -> Vec<Ev> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let text = text.get(self.start_at..).unwrap_or("");
        text.lines()
            .filter_map(|l| {
                let mut w = l.strip_prefix("EVENT ")?.split_whitespace();
                let us = w.next()?.parse().ok()?;
                let _vrid = w.next()?;
                let (from, to) = w.next()?.split_once("->")?;
                let reason = w.next()?.strip_prefix("reason=")?.to_string();
                Some(Ev { us, from: from.into(), to: to.into(), reason })
            })
            .collect()
    }

    fn state(&self) -> Option<String> {
        self.events().last().map(|e| e.to.clone())
    }

    /// Waits for the current run to enter `state` and returns the event.
    fn wait_state(&self, state: &str, timeout: Duration) -> Ev {
        wait_for(&format!("embedded node to enter {state}"), timeout, || {
            self.events().into_iter().rev().find(|e| e.to == state)
        })
    }

    /// Waits for the `n`-th entry into `state` of the current run.
    fn wait_nth_state(&self, state: &str, n: usize, timeout: Duration) -> Ev {
        wait_for(&format!("embedded node to enter {state} (#{n})"), timeout, || {
            self.events().into_iter().filter(|e| e.to == state).nth(n - 1)
        })
    }
}

impl Drop for Emb {
    fn drop(&mut self) {
        if let Some(pid) = self.pid.take() {
            let _ = self.ns.stop(pid);
        }
        self.kill_qemu();
    }
}

// ---------------------------------------------------------------- the peer

#[derive(Clone, Copy, Debug, PartialEq)]
enum PeerKind {
    Keepalived,
    HavLinux,
}

/// keepalived or hav-linux in lab router 0, both configured by the same
/// keepalived.conf.
struct Peer<'l> {
    kind: PeerKind,
    ns: &'l Netns,
    conf: PathBuf,
    log: PathBuf,
    pidfile: PathBuf,
    vrrp_pidfile: PathBuf,
    pid: Option<u32>,
    mac: [u8; 6],
    election: Election,
}

fn keepalived_conf(e: Election, priority: u8) -> String {
    let mut auth = e.auth_pass.map_or(String::new(), |pw| {
        format!("    authentication {{\n        auth_type PASS\n        auth_pass {pw}\n    }}\n")
    });
    if e.unicast {
        auth.push_str("    unicast_src_ip 10.0.0.1\n    unicast_peer {\n        10.0.0.2\n    }\n");
    }
    format!(
        "global_defs {{\n    router_id hav_peer\n    vrrp_version {ver}\n}}\n\
         vrrp_instance VI_1 {{\n    state BACKUP\n    interface eth0\n    virtual_router_id {VRID}\n\
         \x20   priority {priority}\n    advert_int {int}\n{auth}    virtual_ipaddress {{\n        {vip}\n    }}\n}}\n",
        ver = e.version,
        int = e.advert_int,
        vip = e.vip_cidr(),
    )
}

impl<'l> Peer<'l> {
    fn new(kind: PeerKind, lab: &'l Lab, dir: &Scratch, e: Election, priority: u8) -> Peer<'l> {
        let ns = &lab.routers[0];
        let conf = dir.path("keepalived.conf");
        std::fs::write(&conf, keepalived_conf(e, priority)).expect("write keepalived.conf");
        let name = match kind {
            PeerKind::Keepalived => "keepalived",
            PeerKind::HavLinux => "hav-linux",
        };
        Peer {
            kind,
            ns,
            conf,
            log: dir.path(&format!("{name}.log")),
            pidfile: dir.path(&format!("{name}.pid")),
            vrrp_pidfile: dir.path(&format!("{name}-vrrp.pid")),
            pid: None,
            mac: ns.mac(Lab::IFNAME).expect("peer MAC"),
            election: e,
        }
    }

    fn start(&mut self) {
        self.ns.link_up(Lab::IFNAME).expect("link up");
        // A killed peer left its VIP behind; a fresh start has none.
        let _ = self.ns.ip(&["addr", "del", &self.election.vip_cidr(), "dev", Lab::IFNAME]);
        let conf = self.conf.to_str().expect("utf-8").to_string();
        let pid = match self.kind {
            PeerKind::Keepalived => {
                let pidf = self.pidfile.to_str().expect("utf-8").to_string();
                let vpidf = self.vrrp_pidfile.to_str().expect("utf-8").to_string();
                let _ = std::fs::remove_file(&self.vrrp_pidfile);
                self.ns.spawn(
                    "keepalived",
                    &["-n", "-l", "-D", "-P", "-f", &conf, "-p", &pidf, "-r", &vpidf],
                    &self.log,
                )
            }
            PeerKind::HavLinux => {
                let bin = hav_linux_bin_built();
                let pidf = self.pidfile.to_str().expect("utf-8").to_string();
                let sock = self.vrrp_pidfile.with_extension("sock");
                let sock = sock.to_str().expect("utf-8").to_string();
                self.ns.spawn(
                    bin.to_str().expect("utf-8"),
                    &["-n", "-f", &conf, "-P", "-p", &pidf, "--control", &sock],
                    &self.log,
                )
            }
        }
        .expect("spawn peer");
        self.pid = Some(pid);
    }

    /// SIGKILL (keepalived's VRRP child too), then the link goes down.
    fn kill(&mut self) {
        if self.kind == PeerKind::Keepalived {
            if let Some(child) = std::fs::read_to_string(&self.vrrp_pidfile)
                .ok()
                .and_then(|s| s.trim().parse::<i32>().ok())
            {
                let _ = kill(Pid::from_raw(child), Signal::SIGKILL);
            }
        }
        if let Some(pid) = self.pid.take() {
            self.ns.stop(pid).expect("stop peer");
        }
        self.ns.link_down(Lab::IFNAME).expect("link down");
    }

    /// Whether the VIP is on the peer's interface: it is master.
    fn holds_vip(&self) -> bool {
        self.ns
            .ip(&["-o", "addr", "show", "dev", Lab::IFNAME])
            .is_ok_and(|s| s.contains(&format!(" {}/", self.election.vip())))
    }

    fn wait_master(&self, timeout: Duration) {
        wait_for(&format!("{:?} to hold the VIP", self.kind), timeout, || {
            self.holds_vip().then_some(())
        })
    }

    fn wait_backup(&self, timeout: Duration) {
        wait_for(&format!("{:?} to release the VIP", self.kind), timeout, || {
            (!self.holds_vip()).then_some(())
        })
    }
}

impl Drop for Peer<'_> {
    fn drop(&mut self) {
        // The namespace kills its children too; keepalived's VRRP child is
        // not one of them.
        if let Some(child) = std::fs::read_to_string(&self.vrrp_pidfile)
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok())
        {
            let _ = kill(Pid::from_raw(child), Signal::SIGKILL);
        }
        if let Some(pid) = self.pid.take() {
            let _ = self.ns.stop(pid);
        }
    }
}

// ---------------------------------------------------------------- the client

/// The VIP answers ARP and ping from the client, with `mac`. The client's
/// neighbour entry is deleted first, so an ARP request must be answered.
fn assert_vip_answers(lab: &Lab, mac: [u8; 6], who: &str) {
    assert_vip_answers_at(lab, VIP, mac, who);
}

/// [`assert_vip_answers`] for `vip`, IPv4 (ARP) or IPv6 (neighbour
/// discovery; the client needs an address in fd00::/64).
fn assert_vip_answers_at(lab: &Lab, vip: &str, mac: [u8; 6], who: &str) {
    let _ = lab.client.ip(&["neigh", "del", vip, "dev", Lab::IFNAME]);
    let want = mac_str(mac);
    let mut last = String::new();
    // smoltcp drops the packet that made it resolve a neighbour, so the
    // first echo after a takeover may go unanswered: retry.
    let ok = (0..8).any(|_| {
        let out = lab.client.run("ping", &["-c", "1", "-W", "1", vip]).expect("ping");
        let neigh = lab.client.ip(&["neigh", "show", vip, "dev", Lab::IFNAME]).unwrap_or_default();
        last = format!("ping: {} neigh: {}", String::from_utf8_lossy(&out.stdout), neigh.trim());
        let lladdr = neigh
            .split_whitespace()
            .skip_while(|w| *w != "lladdr")
            .nth(1)
            .and_then(parse_mac)
            .map(mac_str);
        out.status.success() && lladdr.as_deref() == Some(want.as_str())
    });
    assert!(ok, "the VIP must answer ARP and ping from {who} ({want}); last: {last}");
}

// ---------------------------------------------------------------- scenarios

/// Both nodes start; the one with priority 150 must win, the other stay
/// backup; the winner is killed and the other takes over; the winner comes
/// back and preempts. The VIP answers from whoever is master.
fn scenario(kind: PeerKind, e: Election, emb_wins: bool) {
    scenario_on(Node::Runner, kind, e, emb_wins);
}

/// [`scenario`] with the embedded node run by `node`.
fn scenario_on(node: Node, kind: PeerKind, e: Election, emb_wins: bool) {
    let lab = Lab::new(1).expect("lab");
    let dir = Scratch::new("emblab");
    let (emb_prio, peer_prio) = if emb_wins { (150, 100) } else { (100, 150) };
    if e.ipv6 {
        ipv6_lab(&lab);
    }
    let mut emb = Emb::new(&lab, &dir, e, emb_prio, node).expect("embedded node");
    let mut peer = Peer::new(kind, &lab, &dir, e, peer_prio);
    let t = e.takeover_timeout();
    peer.start();
    emb.start();
    emb.wait_state("BACKUP", Duration::from_secs(5));

    if emb_wins {
        // 1. The embedded node wins; the peer stays backup.
        let ev = emb.wait_state("MASTER", t);
        assert_eq!(ev.reason, "MasterDown", "{ev:?}");
        sleep(Duration::from_secs_f64(e.advert_int * 4.0));
        assert!(!peer.holds_vip(), "{kind:?} must stay backup while the embedded node is master");
        assert_eq!(emb.events().iter().filter(|e| e.to == "MASTER").count(), 1, "no flapping");
        assert_vip_answers_at(&lab, e.vip(), emb.mac, "the embedded master");

        // 2. The embedded master dies: the peer takes over.
        emb.kill();
        peer.wait_master(t);
        assert_vip_answers_at(&lab, e.vip(), peer.mac, "the peer after failover");

        // 3. It comes back with the higher priority and preempts.
        emb.start();
        emb.wait_state("BACKUP", Duration::from_secs(5));
        emb.wait_state("MASTER", t);
        peer.wait_backup(t);
        assert_vip_answers_at(&lab, e.vip(), emb.mac, "the embedded master after preemption");
    } else {
        // 1. The peer wins; the embedded node stays backup.
        peer.wait_master(t);
        sleep(Duration::from_secs_f64(e.advert_int * 4.0 + 1.0));
        assert_eq!(emb.state().as_deref(), Some("BACKUP"), "events: {:?}", emb.events());
        // A fresh ARP resolution finds the peer's MAC: the embedded backup
        // does not answer for the VIP.
        assert_vip_answers_at(&lab, e.vip(), peer.mac, "the peer master");

        // 2. The peer dies: the embedded node takes over.
        let killed = now_us();
        peer.kill();
        let ev = emb.wait_state("MASTER", t);
        assert_eq!(ev.reason, "MasterDown", "{ev:?}");
        assert!(ev.us > killed, "took over before the master died: {ev:?}");
        assert_vip_answers_at(&lab, e.vip(), emb.mac, "the embedded node after failover");

        // 3. The peer returns with the higher priority and preempts.
        peer.start();
        peer.wait_master(t);
        let ev = emb.wait_nth_state("BACKUP", 2, t);
        assert_eq!((ev.from.as_str(), ev.reason.as_str()), ("MASTER", "Preempted"), "{ev:?}");
        assert_vip_answers_at(&lab, e.vip(), peer.mac, "the peer after preemption");
    }
}

const V2: Election = Election { version: 2, advert_int: 1.0, auth_pass: None, unicast: false, ipv6: false };
const V2_AUTH: Election =
    Election { version: 2, advert_int: 1.0, auth_pass: Some("hav-pw"), unicast: false, ipv6: false };
const V3: Election = Election { version: 3, advert_int: 0.5, auth_pass: None, unicast: false, ipv6: false };
const V3_UNICAST: Election =
    Election { version: 3, advert_int: 0.5, auth_pass: None, unicast: true, ipv6: false };
const V3_IPV6: Election = Election { version: 3, advert_int: 0.5, auth_pass: None, unicast: false, ipv6: true };

/// IPv6 in the lab (the client is fd00::100/64, the peer fd00::1/64): no
/// duplicate address detection on the peer and the client (a VIP added at
/// takeover is usable at once, as keepalived adds it with nodad; a link
/// going up again keeps a usable link-local address), and the peer's
/// link-local address ready.
fn ipv6_lab(lab: &Lab) {
    for ns in [&lab.routers[0], &lab.client] {
        for key in ["ipv6.conf.all.accept_dad", "ipv6.conf.eth0.accept_dad"] {
            ns.sysctl(key, "0").expect("accept_dad");
        }
    }
    let peer = &lab.routers[0];
    wait_for("the peer's link-local address", Duration::from_secs(10), || {
        let out = peer.ip(&["-6", "-o", "addr", "show", "dev", Lab::IFNAME, "scope", "link"]).ok()?;
        (out.contains("fe80::") && !out.contains("tentative")).then_some(())
    });
}

#[test]
fn keepalived_v2_embedded_master() {
    if skip_unless("keepalived_v2_embedded_master", &[Need::Root, Need::Keepalived]) {
        return;
    }
    scenario(PeerKind::Keepalived, V2, true);
}

#[test]
fn keepalived_v2_auth_keepalived_master() {
    if skip_unless("keepalived_v2_auth_keepalived_master", &[Need::Root, Need::Keepalived]) {
        return;
    }
    scenario(PeerKind::Keepalived, V2_AUTH, false);
}

#[test]
fn keepalived_v3_embedded_master() {
    if skip_unless("keepalived_v3_embedded_master", &[Need::Root, Need::Keepalived]) {
        return;
    }
    scenario(PeerKind::Keepalived, V3, true);
}

#[test]
fn keepalived_v3_keepalived_master() {
    if skip_unless("keepalived_v3_keepalived_master", &[Need::Root, Need::Keepalived]) {
        return;
    }
    scenario(PeerKind::Keepalived, V3, false);
}

#[test]
fn keepalived_v3_unicast_embedded_master() {
    if skip_unless("keepalived_v3_unicast_embedded_master", &[Need::Root, Need::Keepalived]) {
        return;
    }
    scenario(PeerKind::Keepalived, V3_UNICAST, true);
}

#[test]
fn hav_linux_v2_embedded_master() {
    if skip_unless_root("hav_linux_v2_embedded_master") {
        return;
    }
    scenario(PeerKind::HavLinux, V2, true);
}

#[test]
fn hav_linux_v2_auth_hav_linux_master() {
    if skip_unless_root("hav_linux_v2_auth_hav_linux_master") {
        return;
    }
    scenario(PeerKind::HavLinux, V2_AUTH, false);
}

#[test]
fn hav_linux_v3_embedded_master() {
    if skip_unless_root("hav_linux_v3_embedded_master") {
        return;
    }
    scenario(PeerKind::HavLinux, V3, true);
}

#[test]
fn hav_linux_v3_hav_linux_master() {
    if skip_unless_root("hav_linux_v3_hav_linux_master") {
        return;
    }
    scenario(PeerKind::HavLinux, V3, false);
}

/// Alone on the LAN, the embedded node joins 224.0.0.18 with IGMP, takes
/// over, sends adverts with TTL 255 at the configured interval and exactly
/// the configured number of gratuitous ARPs for its VIP, from its own MAC.
#[test]
fn embedded_wire_igmp_adverts_garp() {
    if skip_unless_root("embedded_wire_igmp_adverts_garp") {
        return;
    }
    wire_igmp_adverts_garp(Node::Runner);
}

/// [`embedded_wire_igmp_adverts_garp`] for the firmware under QEMU.
#[test]
fn qemu_wire_igmp_adverts_garp() {
    if skip_unless("qemu_wire_igmp_adverts_garp", &[Need::Root, Need::Qemu, Need::Tcpdump]) {
        return;
    }
    wire_igmp_adverts_garp(Node::Qemu);
}

fn wire_igmp_adverts_garp(node: Node) {
    let lab = Lab::new(0).expect("lab");
    let dir = Scratch::new("embwire");
    let mut emb = Emb::new(&lab, &dir, V3, 150, node).expect("embedded node");
    // One burst of 3 at takeover, no second burst.
    emb.extra_args(&["--garp-repeat", "3", "--garp-delay", "0"]);
    let cap = dir.path("tcpdump.log");
    let tcpdump = lab
        .client
        .spawn("tcpdump", &["-n", "-l", "-U", "-e", "-vv", "-i", Lab::IFNAME, "igmp or vrrp or arp"], &cap)
        .expect("tcpdump");
    wait_for("tcpdump to listen", Duration::from_secs(5), || {
        std::fs::read_to_string(&cap).ok()?.contains("listening on").then_some(())
    });
    emb.start();
    emb.wait_state("MASTER", V3.takeover_timeout());
    sleep(Duration::from_millis(1300));
    lab.client.stop(tcpdump).expect("stop tcpdump");
    let text = std::fs::read_to_string(&cap).expect("capture");
    let mac = mac_str(emb.mac);

    assert!(
        text.contains("igmp v2 report 224.0.0.18"),
        "no IGMP join of 224.0.0.18:\n{text}"
    );
    // tcpdump -vv prints the IP header line, then the VRRP line.
    let lines: Vec<&str> = text.lines().collect();
    let adverts: Vec<(&str, &str)> = lines
        .windows(2)
        .filter(|w| w[1].contains("VRRPv3, Advertisement, vrid 51, prio 150"))
        .map(|w| (w[0], w[1]))
        .collect();
    assert!(adverts.len() >= 2, "expected adverts every 0.5 s:\n{text}");
    for (ip, vrrp) in &adverts {
        assert!(ip.contains("ttl 255") && ip.starts_with(|c: char| c.is_ascii_digit()), "{ip}");
        assert!(ip.contains(&mac), "advert not from the node's MAC: {ip}");
        assert!(vrrp.contains("10.0.0.2 > 224.0.0.18") && vrrp.contains(VIP), "{vrrp}");
    }
    let garps = lines
        .iter()
        .filter(|l| l.contains(&format!("who-has {VIP}")) && l.contains(&format!("tell {VIP}")))
        .inspect(|l| assert!(l.contains(&mac), "GARP not from the node's MAC: {l}"))
        .count();
    assert_eq!(garps, 3, "garp_master_repeat 3:\n{text}");
}

#[test]
fn hav_linux_v3_unicast_hav_linux_master() {
    if skip_unless_root("hav_linux_v3_unicast_hav_linux_master") {
        return;
    }
    scenario(PeerKind::HavLinux, V3_UNICAST, false);
}

// ---------------------------------------------------------------- the firmware under QEMU

// The same scenarios with the MPS2-AN386 firmware image as the embedded
// node: the firmware master is killed by killing QEMU; the firmware backup
// takes over when the peer is killed and its link taken down.

const QEMU_NEEDS: &[Need] = &[Need::Root, Need::Qemu];
const QEMU_KEEPALIVED_NEEDS: &[Need] = &[Need::Root, Need::Qemu, Need::Keepalived];

#[test]
fn qemu_keepalived_v2_firmware_master() {
    if skip_unless("qemu_keepalived_v2_firmware_master", QEMU_KEEPALIVED_NEEDS) {
        return;
    }
    scenario_on(Node::Qemu, PeerKind::Keepalived, V2, true);
}

#[test]
fn qemu_keepalived_v2_auth_keepalived_master() {
    if skip_unless("qemu_keepalived_v2_auth_keepalived_master", QEMU_KEEPALIVED_NEEDS) {
        return;
    }
    scenario_on(Node::Qemu, PeerKind::Keepalived, V2_AUTH, false);
}

#[test]
fn qemu_keepalived_v3_keepalived_master() {
    if skip_unless("qemu_keepalived_v3_keepalived_master", QEMU_KEEPALIVED_NEEDS) {
        return;
    }
    scenario_on(Node::Qemu, PeerKind::Keepalived, V3, false);
}

#[test]
fn qemu_keepalived_v3_unicast_firmware_master() {
    if skip_unless("qemu_keepalived_v3_unicast_firmware_master", QEMU_KEEPALIVED_NEEDS) {
        return;
    }
    scenario_on(Node::Qemu, PeerKind::Keepalived, V3_UNICAST, true);
}

#[test]
fn qemu_hav_linux_v3_firmware_master() {
    if skip_unless("qemu_hav_linux_v3_firmware_master", QEMU_NEEDS) {
        return;
    }
    scenario_on(Node::Qemu, PeerKind::HavLinux, V3, true);
}

#[test]
fn qemu_hav_linux_v2_hav_linux_master() {
    if skip_unless("qemu_hav_linux_v2_hav_linux_master", QEMU_NEEDS) {
        return;
    }
    scenario_on(Node::Qemu, PeerKind::HavLinux, V2, false);
}

/// The firmware master stops cleanly (`stop` on its console): it sends a
/// priority-0 advert and releases the VIP, and the peer takes over after
/// Skew_Time (0.305 s at priority 100, 0.5 s), where a silent master would
/// leave it waiting Master_Down_Interval after the last advert (at least
/// 1.805 - 0.5 s).
fn clean_stop(kind: PeerKind) {
    let e = V3;
    let lab = Lab::new(1).expect("lab");
    let dir = Scratch::new("embstop");
    let mut emb = Emb::new(&lab, &dir, e, 150, Node::Qemu).expect("embedded node");
    let mut peer = Peer::new(kind, &lab, &dir, e, 100);
    let t = e.takeover_timeout();
    peer.start();
    emb.start();
    emb.wait_state("MASTER", t);
    sleep(Duration::from_secs_f64(e.advert_int * 4.0));
    assert!(!peer.holds_vip(), "{kind:?} must be backup before the stop");
    let asked = Instant::now();
    emb.console("stop");
    let ev = emb.wait_state("INIT", Duration::from_secs(5));
    assert_eq!((ev.from.as_str(), ev.reason.as_str()), ("MASTER", "Shutdown"), "{ev:?}");
    peer.wait_master(t);
    let took = asked.elapsed();
    eprintln!("{kind:?} took over {took:?} after the firmware's clean stop");
    assert!(
        took < Duration::from_millis(1100),
        "{kind:?} took over {took:?} after the clean stop: not after Skew_Time, so no priority-0 advert"
    );
    assert_vip_answers(&lab, peer.mac, "the peer after the firmware's clean stop");
}

#[test]
fn qemu_keepalived_clean_stop() {
    if skip_unless("qemu_keepalived_clean_stop", QEMU_KEEPALIVED_NEEDS) {
        return;
    }
    clean_stop(PeerKind::Keepalived);
}

#[test]
fn qemu_hav_linux_clean_stop() {
    if skip_unless("qemu_hav_linux_clean_stop", QEMU_NEEDS) {
        return;
    }
    clean_stop(PeerKind::HavLinux);
}

/// VRRPv3 over IPv6 on the wire, from the firmware alone on the LAN: an
/// MLDv2 join of ff02::12 (TO_EX with no source), adverts from its
/// link-local address fe80::2 to ff02::12 with hop limit 255 and the VIP,
/// and exactly the configured number of unsolicited neighbour
/// advertisements (override set) for the VIP, from its MAC.
#[test]
fn qemu_wire_ipv6_mld_adverts_na() {
    if skip_unless("qemu_wire_ipv6_mld_adverts_na", &[Need::Root, Need::Qemu, Need::Tcpdump]) {
        return;
    }
    let lab = Lab::new(0).expect("lab");
    let dir = Scratch::new("embwire6");
    let mut emb = Emb::new(&lab, &dir, V3_IPV6, 150, Node::Qemu).expect("embedded node");
    emb.extra_args(&["--garp-repeat", "3", "--garp-delay", "0"]);
    let cap = dir.path("tcpdump.log");
    let tcpdump = lab
        .client
        .spawn("tcpdump", &["-n", "-l", "-U", "-e", "-vv", "-i", Lab::IFNAME, "ip6"], &cap)
        .expect("tcpdump");
    wait_for("tcpdump to listen", Duration::from_secs(5), || {
        std::fs::read_to_string(&cap).ok()?.contains("listening on").then_some(())
    });
    emb.start();
    emb.wait_state("MASTER", V3_IPV6.takeover_timeout());
    sleep(Duration::from_millis(1300));
    lab.client.stop(tcpdump).expect("stop tcpdump");
    let text = std::fs::read_to_string(&cap).expect("capture");
    let mac = mac_str(emb.mac);
    // tcpdump -vv prints an IPv6 packet on one line.
    let from_node: Vec<&str> = text.lines().filter(|l| l.contains(&format!("{mac} > "))).collect();
    // A join is a CHANGE_TO_EXCLUDE record with no source (RFC 3810 6.1).
    let mld = from_node.iter().any(|l| {
        l.contains("fe80::2 > ff02::16")
            && l.contains("multicast listener report v2")
            && l.contains("[gaddr ff02::12 to_ex { }]")
    });
    assert!(mld, "no MLDv2 join of ff02::12:\n{text}");
    let adverts: Vec<&str> = text.lines().filter(|l| l.contains("VRRPv3, Advertisement, vrid 51, prio 150")).collect();
    assert!(adverts.len() >= 2, "expected adverts every 0.5 s:\n{text}");
    for l in &adverts {
        assert!(from_node.contains(l) && l.contains("hlim 255"), "{l}");
        assert!(l.contains("fe80::2 > ff02::12") && l.contains(VIP6), "{l}");
    }
    let nas: Vec<&str> =
        text.lines().filter(|l| l.contains(&format!("neighbor advertisement, length 32, tgt is {VIP6}"))).collect();
    for l in &nas {
        assert!(from_node.contains(l) && l.contains(&format!("{VIP6} > ff02::1:")), "{l}");
        assert!(l.contains("Flags [override]"), "{l}");
    }
    assert_eq!(nas.len(), 3, "garp_master_repeat 3 unsolicited NAs:\n{text}");
}

/// Without a valid config (an erased sector, then bytes that are not a
/// NodeConfig) the firmware says why in its log, runs no instance and sends
/// nothing: no advert, no gratuitous ARP, for longer than the
/// Master_Down_Interval of any instance it might have run.
#[test]
fn qemu_no_config_holds_nothing() {
    if skip_unless("qemu_no_config_holds_nothing", &[Need::Root, Need::Qemu, Need::Tcpdump]) {
        return;
    }
    let lab = Lab::new(0).expect("lab");
    let dir = Scratch::new("embnocfg");
    let mut emb = Emb::new(&lab, &dir, V2, 150, Node::Qemu).expect("embedded node");
    let mut garbage = vec![40u8, 0];
    garbage.extend((0..40u8).map(|i| i.wrapping_mul(37) | 0x80));
    for (bytes, why) in [
        (vec![0u8; 64], "config: no config stored (erased or empty)"),
        (garbage, "config: stored config is not a postcard NodeConfig"),
    ] {
        std::fs::write(&emb.cfg, &bytes).expect("write the config sector image");
        let cap = dir.path("tcpdump.log");
        let _ = std::fs::remove_file(&cap);
        let tcpdump = lab
            .client
            .spawn("tcpdump", &["-n", "-l", "-U", "-e", "-i", Lab::IFNAME, "vrrp or arp or igmp"], &cap)
            .expect("tcpdump");
        wait_for("tcpdump to listen", Duration::from_secs(5), || {
            std::fs::read_to_string(&cap).ok()?.contains("listening on").then_some(())
        });
        emb.start();
        let log = || std::fs::read_to_string(&emb.log).unwrap_or_default().get(emb.start_at..).unwrap_or("").to_string();
        wait_for("the firmware to say it has no config", Duration::from_secs(5), || {
            let text = log();
            (text.contains(why) && text.contains("no valid config: running no VRRP instance")).then_some(())
        });
        // Longer than the 3.6 s Master_Down_Interval of a priority-100 instance.
        sleep(Duration::from_secs(4));
        lab.client.stop(tcpdump).expect("stop tcpdump");
        assert!(emb.events().is_empty(), "no instance may run: {:?}", emb.events());
        let text = std::fs::read_to_string(&cap).expect("capture");
        let mac = mac_str(emb.mac);
        let sent: Vec<&str> = text.lines().filter(|l| l.contains(&mac)).collect();
        assert!(sent.is_empty(), "the unconfigured firmware sent:\n{}", sent.join("\n"));
        emb.kill();
    }
}

/// Two instances in a sync group on the firmware, against keepalived
/// running the same two in a `vrrp_sync_group` with the higher priority:
/// the firmware backs up both; when keepalived dies, both instances take
/// over together (the group agrees on MASTER) and both VIPs answer from the
/// firmware; when keepalived returns, it preempts both.
#[test]
fn qemu_keepalived_sync_group_two_instances() {
    if skip_unless("qemu_keepalived_sync_group_two_instances", QEMU_KEEPALIVED_NEEDS) {
        return;
    }
    const VIP_B: &str = "10.0.0.51";
    let e = V3;
    let lab = Lab::new(1).expect("lab");
    let dir = Scratch::new("embsync");
    let mut emb = Emb::new(&lab, &dir, e, 100, Node::Qemu).expect("embedded node");
    emb.extra_args(&[
        "--vrid", "52", "--priority", "100", "--version", "3", "--advert-int", "0.5", "--vip", VIP_B,
        "--sync-group", "51,52",
    ]);
    let mut peer = Peer::new(PeerKind::Keepalived, &lab, &dir, e, 150);
    let instance = |name: &str, vrid: u8, vip: &str| {
        format!(
            "vrrp_instance {name} {{\n    state BACKUP\n    interface eth0\n    virtual_router_id {vrid}\n\
             \x20   priority 150\n    advert_int 0.5\n    virtual_ipaddress {{\n        {vip}/24\n    }}\n}}\n"
        )
    };
    let conf = format!(
        "global_defs {{\n    router_id hav_peer\n    vrrp_version 3\n}}\n\
         vrrp_sync_group G {{\n    group {{\n        VI_1\n        VI_2\n    }}\n}}\n{}{}",
        instance("VI_1", VRID, VIP),
        instance("VI_2", 52, VIP_B)
    );
    std::fs::write(&peer.conf, conf).expect("keepalived.conf");
    let t = e.takeover_timeout();
    let peer_holds_b = |peer: &Peer<'_>| {
        peer.ns.ip(&["-o", "-4", "addr", "show", "dev", Lab::IFNAME]).is_ok_and(|s| s.contains(&format!("inet {VIP_B}/")))
    };
    let entered = |emb: &Emb, vrid: u8, to: &str| {
        let text = std::fs::read_to_string(&emb.log).unwrap_or_default();
        let text = text.get(emb.start_at..).unwrap_or("").to_string();
        text.lines().filter(|l| l.starts_with("EVENT ") && l.contains(&format!(" vrid={vrid} ")) && l.contains(&format!("->{to} "))).count()
    };
    let group_master = |emb: &Emb| std::fs::read_to_string(&emb.log).unwrap_or_default().get(emb.start_at..).unwrap_or("").contains("EVENT group=0 MASTER");

    peer.start();
    emb.start();
    peer.wait_master(t);
    wait_for("keepalived to hold both VIPs", t, || peer_holds_b(&peer).then_some(()));
    sleep(Duration::from_secs(3));
    for vrid in [VRID, 52] {
        assert_eq!(entered(&emb, vrid, "MASTER"), 0, "vrid {vrid} must stay backup");
        assert_eq!(entered(&emb, vrid, "BACKUP"), 1, "vrid {vrid} must be backup once");
    }

    peer.kill();
    wait_for("both firmware instances to take over", t, || {
        (entered(&emb, VRID, "MASTER") == 1 && entered(&emb, 52, "MASTER") == 1).then_some(())
    });
    wait_for("the sync group to agree on MASTER", Duration::from_secs(2), || group_master(&emb).then_some(()));
    // One member's Master_Down_Interval ran out; the other followed it.
    let log = std::fs::read_to_string(&emb.log).unwrap_or_default();
    assert!(
        [VRID, 52].iter().any(|v| log.contains(&format!("vrid={v} BACKUP->MASTER reason=Sync"))),
        "no member followed the group:\n{log}"
    );
    assert_vip_answers_at(&lab, VIP, emb.mac, "the firmware, vrid 51");
    assert_vip_answers_at(&lab, VIP_B, emb.mac, "the firmware, vrid 52");

    peer.start();
    peer.wait_master(t);
    wait_for("keepalived to take back both VIPs", t, || peer_holds_b(&peer).then_some(()));
    wait_for("both firmware instances back to BACKUP", t, || {
        (entered(&emb, VRID, "BACKUP") == 2 && entered(&emb, 52, "BACKUP") == 2).then_some(())
    });
    assert_vip_answers_at(&lab, VIP_B, peer.mac, "keepalived after preemption");
}

/// The uplink's link state drives the firmware: the LAN9118's PHY reports
/// the link down (QEMU's `set_link uplink off`), the master goes to FAULT
/// and the peer takes over; the link comes back, the firmware leaves FAULT
/// and, with the higher priority, preempts.
#[test]
fn qemu_keepalived_uplink_link_state() {
    if skip_unless("qemu_keepalived_uplink_link_state", QEMU_KEEPALIVED_NEEDS) {
        return;
    }
    let e = V3;
    let lab = Lab::new(1).expect("lab");
    let dir = Scratch::new("emblink");
    let mut emb = Emb::new(&lab, &dir, e, 150, Node::Qemu).expect("embedded node");
    let mut peer = Peer::new(PeerKind::Keepalived, &lab, &dir, e, 100);
    let t = e.takeover_timeout();
    peer.start();
    emb.start();
    emb.wait_state("MASTER", t);
    sleep(Duration::from_secs_f64(e.advert_int * 4.0));
    assert!(!peer.holds_vip(), "keepalived must be backup while the firmware is master");

    emb.monitor("set_link uplink off");
    let ev = emb.wait_state("FAULT", Duration::from_secs(5));
    assert_eq!((ev.from.as_str(), ev.reason.as_str()), ("MASTER", "Fault"), "{ev:?}");
    peer.wait_master(t);
    assert_vip_answers(&lab, peer.mac, "keepalived while the firmware's link is down");

    emb.monitor("set_link uplink on");
    let ev = emb.wait_nth_state("BACKUP", 2, Duration::from_secs(5));
    assert_eq!((ev.from.as_str(), ev.reason.as_str()), ("FAULT", "FaultCleared"), "{ev:?}");
    let ev = emb.wait_nth_state("MASTER", 2, t);
    assert_eq!(ev.from, "BACKUP", "{ev:?}");
    peer.wait_backup(t);
    assert_vip_answers(&lab, emb.mac, "the firmware after its link came back");
}

// VRRPv3 over IPv6: link-local sources, ff02::12, neighbour discovery
// and ping for the VIP fd00::50 from the client.

#[test]
fn qemu_keepalived_v3_ipv6_firmware_master() {
    if skip_unless("qemu_keepalived_v3_ipv6_firmware_master", QEMU_KEEPALIVED_NEEDS) {
        return;
    }
    scenario_on(Node::Qemu, PeerKind::Keepalived, V3_IPV6, true);
}

#[test]
fn qemu_keepalived_v3_ipv6_keepalived_master() {
    if skip_unless("qemu_keepalived_v3_ipv6_keepalived_master", QEMU_KEEPALIVED_NEEDS) {
        return;
    }
    scenario_on(Node::Qemu, PeerKind::Keepalived, V3_IPV6, false);
}

#[test]
fn qemu_hav_linux_v3_ipv6_firmware_master() {
    if skip_unless("qemu_hav_linux_v3_ipv6_firmware_master", QEMU_NEEDS) {
        return;
    }
    scenario_on(Node::Qemu, PeerKind::HavLinux, V3_IPV6, true);
}

#[test]
fn qemu_hav_linux_v3_ipv6_hav_linux_master() {
    if skip_unless("qemu_hav_linux_v3_ipv6_hav_linux_master", QEMU_NEEDS) {
        return;
    }
    scenario_on(Node::Qemu, PeerKind::HavLinux, V3_IPV6, false);
}

#[test]
fn keepalived_v3_ipv6_embedded_master() {
    if skip_unless("keepalived_v3_ipv6_embedded_master", &[Need::Root, Need::Keepalived]) {
        return;
    }
    scenario(PeerKind::Keepalived, V3_IPV6, true);
}

#[test]
fn qemu_hav_linux_v3_unicast_hav_linux_master() {
    if skip_unless("qemu_hav_linux_v3_unicast_hav_linux_master", QEMU_NEEDS) {
        return;
    }
    scenario_on(Node::Qemu, PeerKind::HavLinux, V3_UNICAST, false);
}

// ---------------------------------------------------------------- benchmark

/// Failover times with priorities 150/100, VRRPv2 (1 s) and VRRPv3
/// (0.5 s): from the SIGKILL of the master to the backup holding the VIP
/// (the embedded node's EVENT time, as its log line arrives; the peer's VIP
/// seen by polling every 2 ms). The embedded node is the std runner and the
/// firmware under QEMU (`HAV_BENCH_NODES=runner,qemu`, the default when
/// qemu-system-arm is installed); the firmware's clock is QEMU's emulated
/// one, so its times are those of the emulation, not of a board.
#[test]
#[ignore = "benchmark: scripts/bench-embedded-failover"]
fn bench_failover() {
    if skip_unless("bench_failover", &[Need::Root, Need::Keepalived]) {
        return;
    }
    let rounds: usize = std::env::var("HAV_BENCH_ROUNDS").ok().and_then(|s| s.parse().ok()).unwrap_or(3);
    let nodes: Vec<Node> = match std::env::var("HAV_BENCH_NODES") {
        Ok(v) => v
            .split(',')
            .map(|n| match n.trim() {
                "runner" => Node::Runner,
                "qemu" => Node::Qemu,
                other => panic!("HAV_BENCH_NODES: unknown node {other:?} (runner, qemu)"),
            })
            .collect(),
        Err(_) if Need::Qemu.unmet().is_none() => vec![Node::Runner, Node::Qemu],
        Err(_) => vec![Node::Runner],
    };
    let versions = match std::env::var("HAV_BENCH_VERSIONS").as_deref() {
        Ok("2") => vec![V2],
        Ok("3") => vec![V3],
        _ => vec![V2, V3],
    };
    let mut kinds = vec![PeerKind::Keepalived];
    if hav_linux_bin().is_some() {
        kinds.push(PeerKind::HavLinux);
    }
    let stat = |v: &[f64]| {
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        let min = v.iter().cloned().fold(f64::MAX, f64::min);
        let max = v.iter().cloned().fold(f64::MIN, f64::max);
        format!("mean {mean:7.3} s  min {min:6.3}  max {max:6.3}  (n={})", v.len())
    };
    if nodes.contains(&Node::Qemu) {
        println!("firmware/QEMU: the MPS2-AN386 image under qemu-system-arm; its times are on QEMU's emulated clock");
    }
    for version in versions {
        let down = 3.0 * version.advert_int;
        println!(
            "VRRPv{} advert_int {} s, priorities 150/100 (Master_Down_Interval of the backup: {:.3} s):",
            version.version,
            version.advert_int,
            down + (256.0 - 100.0) / 256.0 * version.advert_int
        );
        for &node in &nodes {
            let name = match node {
                Node::Runner => "std runner",
                Node::Qemu => "firmware/QEMU",
            };
            for &kind in &kinds {
                let mut emb_takes: Vec<f64> = Vec::new();
                let mut peer_takes: Vec<f64> = Vec::new();
                for _ in 0..rounds {
                    emb_takes.push(measure(node, kind, version, true));
                    peer_takes.push(measure(node, kind, version, false));
                }
                let peer = format!("{kind:?}").to_lowercase();
                println!("  {name} vs {peer}:");
                println!("    {name} backup takes over after {peer} master is killed: {}", stat(&emb_takes));
                println!("    {peer} backup takes over after {name} master is killed: {}", stat(&peer_takes));
            }
        }
    }
}

/// One failover; `emb_backup` says which side survives. Seconds from the
/// kill to the survivor's takeover.
fn measure(node: Node, kind: PeerKind, e: Election, emb_backup: bool) -> f64 {
    let lab = Lab::new(1).expect("lab");
    let dir = Scratch::new("embbench");
    let (emb_prio, peer_prio) = if emb_backup { (100, 150) } else { (150, 100) };
    let mut emb = Emb::new(&lab, &dir, e, emb_prio, node).expect("embedded node");
    let mut peer = Peer::new(kind, &lab, &dir, e, peer_prio);
    let t = e.takeover_timeout();
    peer.start();
    emb.start();
    if emb_backup {
        peer.wait_master(t);
        emb.wait_state("BACKUP", t);
        // Kill at a random phase of the advert interval, as a crash would.
        sleep(Duration::from_secs_f64(e.advert_int * 2.0 + (now_us() % 1000) as f64 / 1000.0 * e.advert_int));
        // The takeover is the next entry into MASTER: when both nodes come up together, the
        // embedded one may have been master for a moment before the peer preempted it.
        let masters = emb.events().iter().filter(|e| e.to == "MASTER").count();
        let killed = now_us();
        peer.kill();
        let ev = emb.wait_nth_state("MASTER", masters + 1, t);
        assert!(ev.us >= killed, "the embedded node became master before its peer was killed: {ev:?}");
        (ev.us - killed) as f64 / 1e6
    } else {
        emb.wait_state("MASTER", t);
        sleep(Duration::from_secs_f64(e.advert_int * 2.0 + (now_us() % 1000) as f64 / 1000.0 * e.advert_int));
        let killed = Instant::now();
        emb.kill();
        let end = killed + t;
        while !peer.holds_vip() {
            assert!(Instant::now() < end, "{kind:?} did not take over");
            sleep(Duration::from_millis(2));
        }
        killed.elapsed().as_secs_f64()
    }
}
