//! The AgentX subagent against Debian's net-snmp: snmpd as the master agent (AgentX on a Unix
//! socket in a temporary directory, SNMP on 127.0.0.1 at a free high port), the subagent fed
//! by a fake control channel serving a made-up [`Snapshot`], and snmpwalk, snmpbulkwalk,
//! snmpget and snmpset reading VRRPv3-MIB back by numeric OIDs (Debian ships no IETF MIB
//! files). snmptrapd receives the notifications snmpd forwards. snmpd is restarted under the
//! subagent, which registers again.
//!
//! Needs snmpd, snmptrapd and the snmp tools (scripts/install-deps); without them the test is
//! skipped, except under `CI=true`, where it fails.

use std::net::{IpAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use hav_core::vrrp::{AdminMode, Counters, DropReason, GarpConfig, Reason, State, Stray, VipHold};
use hav_core::wire::{VrrpAuth, VrrpVersion};
use hav_linux::daemon::control::{Envelope, Reply};
use hav_linux::daemon::snapshot::{Event, InstanceView, Snapshot};
use tokio::process::{Child, Command};
use tokio::sync::{broadcast, mpsc};

const MIB: &str = ".1.3.6.1.2.1.207";
const OPS: &str = ".1.3.6.1.2.1.207.1.1.1.1";
const ASSOC: &str = ".1.3.6.1.2.1.207.1.1.2.1";
const STATS: &str = ".1.3.6.1.2.1.207.1.2";
const STATS_ENTRY: &str = ".1.3.6.1.2.1.207.1.2.5.1";

/// Where a tool is: the PATH, or the sbin directories a non-root PATH lacks.
fn tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

struct Tools {
    snmpd: PathBuf,
    snmptrapd: PathBuf,
    snmpwalk: PathBuf,
    snmpbulkwalk: PathBuf,
    snmpget: PathBuf,
    snmpset: PathBuf,
}

fn tools() -> Result<Tools, Vec<&'static str>> {
    let find = |n: &'static str, missing: &mut Vec<&'static str>| {
        tool(n).unwrap_or_else(|| {
            missing.push(n);
            PathBuf::new()
        })
    };
    let mut missing = Vec::new();
    let t = Tools {
        snmpd: find("snmpd", &mut missing),
        snmptrapd: find("snmptrapd", &mut missing),
        snmpwalk: find("snmpwalk", &mut missing),
        snmpbulkwalk: find("snmpbulkwalk", &mut missing),
        snmpget: find("snmpget", &mut missing),
        snmpset: find("snmpset", &mut missing),
    };
    if missing.is_empty() {
        Ok(t)
    } else {
        Err(missing)
    }
}

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// The temporary directory, snmpd and snmptrapd; dropping it stops them and removes the
/// directory.
struct Lab {
    dir: PathBuf,
    tools: Tools,
    port: u16,
    trap_port: u16,
    snmpd: Option<Child>,
    trapd: Option<Child>,
}

impl Drop for Lab {
    fn drop(&mut self) {
        for c in [self.snmpd.as_mut(), self.trapd.as_mut()].into_iter().flatten() {
            let _ = c.start_kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Lab {
    fn new(tools: Tools) -> Lab {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir =
            std::env::temp_dir().join(format!("hav-snmp-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed)));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let (port, trap_port) = (free_udp_port(), free_udp_port());
        let conf = format!(
            "master agentx\n\
             agentXSocket {sock}\n\
             agentXPerms 0600 0700\n\
             agentaddress udp:127.0.0.1:{port}\n\
             rocommunity public 127.0.0.1\n\
             rwcommunity private 127.0.0.1\n\
             trap2sink 127.0.0.1:{trap_port} public\n",
            sock = dir.join("agentx").display()
        );
        std::fs::write(dir.join("snmpd.conf"), conf).expect("snmpd.conf");
        std::fs::write(dir.join("snmptrapd.conf"), "disableAuthorization yes\n").expect("snmptrapd.conf");
        Lab { dir, tools, port, trap_port, snmpd: None, trapd: None }
    }

    fn socket(&self) -> PathBuf {
        self.dir.join("agentx")
    }

    /// A net-snmp command that reads no configuration or MIB of the machine.
    fn command(&self, program: &Path) -> Command {
        let mut c = Command::new(program);
        c.env("SNMPCONFPATH", &self.dir)
            .env("SNMP_PERSISTENT_DIR", self.dir.join("persist"))
            .env("MIBS", "")
            .arg("-m")
            .arg("")
            .stdin(Stdio::null())
            .kill_on_drop(true);
        c
    }

    async fn start_snmpd(&mut self) {
        let mut c = self.command(&self.tools.snmpd);
        c.args(["-f", "-C", "-c"])
            .arg(self.dir.join("snmpd.conf"))
            .arg("-Lf")
            .arg(self.dir.join("snmpd.log"))
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        self.snmpd = Some(c.spawn().expect("starting snmpd"));
        wait_for("snmpd's AgentX socket", || self.socket().exists()).await;
    }

    async fn stop_snmpd(&mut self) {
        let mut c = self.snmpd.take().expect("snmpd running");
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(c.id().expect("pid") as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = tokio::time::timeout(Duration::from_secs(10), c.wait()).await.expect("snmpd stops on SIGTERM");
    }

    async fn start_trapd(&mut self) {
        let log = self.dir.join("traps.log");
        let mut c = self.command(&self.tools.snmptrapd);
        c.args(["-f", "-C", "-On", "-c"])
            .arg(self.dir.join("snmptrapd.conf"))
            .arg("-Lf")
            .arg(&log)
            .arg(format!("udp:127.0.0.1:{}", self.trap_port))
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        self.trapd = Some(c.spawn().expect("starting snmptrapd"));
        wait_for("snmptrapd's start", || std::fs::read_to_string(&log).is_ok_and(|s| s.contains("NET-SNMP version")))
            .await;
    }

    fn traps(&self) -> String {
        std::fs::read_to_string(self.dir.join("traps.log")).unwrap_or_default()
    }

    /// Runs a client with `args` after the common options, against the agent.
    async fn client(&self, program: &Path, community: &str, args: &[&str]) -> (bool, String) {
        let mut c = self.command(program);
        c.args(["-v2c", "-c", community, "-On", "-Oe", "-Ox", "-Ot", "-t", "3", "-r", "1"])
            .arg(format!("127.0.0.1:{}", self.port))
            .args(args);
        let out = c.output().await.expect("running a net-snmp client");
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        (out.status.success(), text)
    }

    async fn walk(&self, bulk: bool) -> Vec<(String, String)> {
        let program = if bulk { &self.tools.snmpbulkwalk } else { &self.tools.snmpwalk };
        let (ok, text) = self.client(program, "public", &[MIB]).await;
        assert!(ok, "walk failed: {text}");
        parse_walk(&text)
    }

    async fn get(&self, oid: &str) -> String {
        let (_, text) = self.client(&self.tools.snmpget, "public", &[oid]).await;
        text.trim().to_owned()
    }
}

/// `OID = TYPE: value` lines, joined when a hex string wraps.
fn parse_walk(text: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        match line.split_once(" = ") {
            Some((oid, v)) if oid.starts_with('.') => out.push((oid.to_owned(), v.trim().to_owned())),
            _ => {
                if let Some(last) = out.last_mut() {
                    last.1.push(' ');
                    last.1.push_str(line.trim());
                }
            }
        }
    }
    out
}

fn numeric(oid: &str) -> Vec<u32> {
    oid.trim_start_matches('.').split('.').map(|s| s.parse().expect("numeric OID")).collect()
}

async fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    for _ in 0..200 {
        if ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

fn instance(ipv6: bool, state: State) -> InstanceView {
    let (primary, vips, master): (IpAddr, Vec<IpAddr>, Option<IpAddr>) = if ipv6 {
        ("fe80::1".parse().unwrap(), vec!["2001:db8::51".parse().unwrap()], Some("fe80::2".parse().unwrap()))
    } else {
        ("192.0.2.1".parse().unwrap(), vec!["192.0.2.11".parse().unwrap(), "192.0.2.10".parse().unwrap()], None)
    };
    let mut counters = Counters { became_master: 3, adverts_rx: 20, prio_zero_tx: 1, ..Counters::default() };
    counters.drops[DropReason::Checksum as usize] = 4;
    counters.drops[DropReason::Ttl as usize] = 2;
    InstanceView {
        name: if ipv6 { "VI_6".into() } else { "VI_4".into() },
        ifname: "eth0".into(),
        ifindex: 2,
        xmit_ifname: "eth0".into(),
        vmac: None,
        vrid: 51,
        ipv6,
        version: VrrpVersion::V3,
        state,
        want_master: false,
        priority: 150,
        effective_priority: 140,
        primary_addr: primary,
        master_addr: master,
        vips,
        vip_specs: Vec::new(),
        peers: Vec::new(),
        adver_int_cs: 100,
        master_adver_int_cs: 100,
        preempt: true,
        preempt_delay_ms: 0,
        accept: ipv6,
        admin: AdminMode::Auto,
        hold: VipHold::Released,
        counters,
        since: Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_000)),
        tracks: Vec::new(),
        link_up: true,
        deadline: None,
        master_down_us: 3_000_000,
        mac: [2, 0, 0, 0, 0, 1],
        addrs: vec![primary],
        auth: VrrpAuth::None,
        mcast_group: if ipv6 { "ff02::12".parse().unwrap() } else { "224.0.0.18".parse().unwrap() },
        garp: GarpConfig::default(),
        check_adv_addr: false,
        check_unicast_src: false,
    }
}

/// The daemon's loop as the subagent sees it: answers `snapshot` with the current value, and
/// counts the requests.
fn fake_daemon(snap: Arc<Mutex<Snapshot>>, asked: Arc<AtomicUsize>) -> mpsc::Sender<Envelope> {
    let (tx, mut rx) = mpsc::channel::<Envelope>(16);
    tokio::spawn(async move {
        while let Some((req, reply)) = rx.recv().await {
            assert_eq!(req.cmd, "snapshot");
            asked.fetch_add(1, Ordering::Relaxed);
            let s = snap.lock().unwrap().clone();
            let _ = reply.send(Reply::Snapshot(Box::new(s)));
        }
    });
    tx
}

async fn wait_registered(lab: &Lab, oid: &str) -> String {
    for _ in 0..40 {
        let v = lab.get(oid).await;
        if !v.contains("No Such Object") && v.contains(" = ") {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("the subagent did not register: {}", lab.get(oid).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snmpd_serves_vrrpv3_mib_and_forwards_notifications() {
    let tools = match tools() {
        Ok(t) => t,
        Err(missing) => {
            let unmet: Vec<String> = missing.iter().map(|m| format!("needs {m} (scripts/install-deps)")).collect();
            let unmet: Vec<&str> = unmet.iter().map(String::as_str).collect();
            match hav_tests::netns::skip_decision("snmp_e2e", &unmet, std::env::var("CI").ok().as_deref()) {
                hav_tests::netns::SkipDecision::Skip(r) => {
                    eprintln!("SKIPPED {r}");
                    return;
                }
                hav_tests::netns::SkipDecision::Fail(r) => panic!("{r}"),
                hav_tests::netns::SkipDecision::Run => unreachable!(),
            }
        }
    };
    let mut lab = Lab::new(tools);
    lab.start_trapd().await;

    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_030);
    let snap = Arc::new(Mutex::new(Snapshot {
        at,
        // The daemon is younger than snmpd: the discontinuity times are snmpd's uptime when
        // it started (set below, once snmpd runs).
        started: SystemTime::UNIX_EPOCH,
        instances: vec![instance(false, State::Master), instance(true, State::Backup)],
        stray: Stray { truncated: 0, unknown_vrid: 9 },
        vip_errors: 0,
        send_errors: 0,
        groups: Vec::new(),
    }));
    let asked = Arc::new(AtomicUsize::new(0));
    let control = fake_daemon(snap.clone(), asked.clone());
    let (events, events_rx) = broadcast::channel::<Event>(64);

    // The subagent starts before snmpd: it keeps trying until the socket answers.
    let agent = tokio::spawn(hav_linux::snmp::run(lab.socket(), control, events_rx));
    tokio::time::sleep(Duration::from_millis(300)).await;
    lab.start_snmpd().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    snap.lock().unwrap().started = SystemTime::now();
    let status_v4 = format!("{OPS}.6.2.51.1");
    assert_eq!(wait_registered(&lab, &status_v4).await, format!("{status_v4} = INTEGER: 3"));
    // A fresh snapshot for what follows (the one registration waited on may be a second old).
    tokio::time::sleep(Duration::from_millis(1100)).await;

    // The walk: every object, in strictly increasing order, with the values of the snapshot.
    let asked_before = asked.load(Ordering::Relaxed);
    let t = std::time::Instant::now();
    let walk = lab.walk(false).await;
    let walk_secs = t.elapsed().as_secs() as usize;
    // 4 global counters, 11 + 13 columns for each of 2 rows, 3 associated addresses.
    assert_eq!(walk.len(), 4 + 2 * 24 + 3, "{walk:#?}");
    let oids: Vec<Vec<u32>> = walk.iter().map(|(o, _)| numeric(o)).collect();
    assert!(oids.windows(2).all(|w| w[0] < w[1]), "not in order: {walk:#?}");
    // One snapshot per second of walking at most.
    assert!(
        asked.load(Ordering::Relaxed) - asked_before <= walk_secs + 2,
        "{} snapshots",
        asked.load(Ordering::Relaxed) - asked_before
    );
    let value = |oid: String| {
        walk.iter()
            .find(|(o, _)| *o == oid)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("{oid} missing: {walk:#?}"))
    };
    assert_eq!(value(format!("{OPS}.3.2.51.1")), "Hex-STRING: C0 00 02 01");
    assert_eq!(value(format!("{OPS}.3.2.51.2")), "Hex-STRING: FE 80 00 00 00 00 00 00 00 00 00 00 00 00 00 02");
    assert_eq!(value(format!("{OPS}.4.2.51.1")), "Hex-STRING: C0 00 02 01");
    assert_eq!(value(format!("{OPS}.5.2.51.1")), "Hex-STRING: 00 00 5E 00 01 33");
    assert_eq!(value(format!("{OPS}.5.2.51.2")), "Hex-STRING: 00 00 5E 00 02 33");
    assert_eq!(value(format!("{OPS}.6.2.51.2")), "INTEGER: 2");
    assert_eq!(value(format!("{OPS}.7.2.51.1")), "Gauge32: 140");
    assert_eq!(value(format!("{OPS}.8.2.51.1")), "INTEGER: 2");
    assert_eq!(value(format!("{OPS}.9.2.51.1")), "INTEGER: 100");
    assert_eq!(value(format!("{OPS}.10.2.51.1")), "INTEGER: 1");
    assert_eq!(value(format!("{OPS}.11.2.51.1")), "INTEGER: 2");
    assert_eq!(value(format!("{OPS}.11.2.51.2")), "INTEGER: 1");
    // TimeTicks print as a bare number with -Ot.
    assert_eq!(value(format!("{OPS}.12.2.51.1")), "3000");
    assert_eq!(value(format!("{OPS}.13.2.51.1")), "INTEGER: 1");
    assert_eq!(value(format!("{ASSOC}.2.2.51.1.4.192.0.2.10")), "INTEGER: 1");
    assert_eq!(value(format!("{ASSOC}.2.2.51.1.4.192.0.2.11")), "INTEGER: 1");
    assert_eq!(value(format!("{ASSOC}.2.2.51.2.16.32.1.13.184.0.0.0.0.0.0.0.0.0.0.0.81")), "INTEGER: 1");
    assert_eq!(value(format!("{STATS}.1.0")), "Counter64: 8");
    assert_eq!(value(format!("{STATS}.2.0")), "Counter64: 0");
    assert_eq!(value(format!("{STATS}.3.0")), "Counter64: 9");
    assert_eq!(value(format!("{STATS_ENTRY}.1.2.51.1")), "Counter32: 3");
    assert_eq!(value(format!("{STATS_ENTRY}.2.2.51.1")), "INTEGER: 3");
    assert_eq!(value(format!("{STATS_ENTRY}.3.2.51.1")), "Counter64: 26");
    assert_eq!(value(format!("{STATS_ENTRY}.5.2.51.1")), "Counter64: 2");
    assert_eq!(value(format!("{STATS_ENTRY}.8.2.51.2")), "Counter64: 1");
    assert_eq!(value(format!("{STATS_ENTRY}.13.2.51.2")), "Gauge32: 1000");
    // The daemon started after snmpd: the discontinuity is snmpd's uptime then (a few
    // hundredths of a second after it started), and the same for the rows.
    let disc = value(format!("{STATS}.4.0"));
    let ticks: u32 = disc.parse().unwrap_or_else(|_| panic!("{disc}"));
    assert!((1..3000).contains(&ticks), "{disc}");
    assert_eq!(value(format!("{STATS_ENTRY}.12.2.51.1")), disc);

    // snmpbulkwalk finds the same objects.
    let bulk = lab.walk(true).await;
    assert_eq!(bulk.iter().map(|(o, _)| o).collect::<Vec<_>>(), walk.iter().map(|(o, _)| o).collect::<Vec<_>>());
    for ((o, a), (_, b)) in walk.iter().zip(&bulk) {
        // TimeTicks (bare numbers) are the master's clock, re-read as the walks go.
        if a.parse::<u32>().is_err() {
            assert_eq!(a, b, "{o}");
        }
    }

    // A row that does not exist, an object the MIB does not have; a set is refused.
    let missing = format!("{OPS}.6.9.9.1");
    assert_eq!(lab.get(&missing).await, format!("{missing} = No Such Instance currently exists at this OID"));
    assert!(lab.get(&format!("{MIB}.1.1.1.1.1.2.51.1")).await.contains("No Such Object"));
    let (ok, text) = lab.client(&lab.tools.snmpset, "private", &[&status_v4, "i", "2"]).await;
    assert!(!ok && text.contains("notWritable"), "{text}");

    // A state change shows within a second (the snapshot's age at most).
    snap.lock().unwrap().instances[0].state = State::Backup;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(lab.get(&status_v4).await, format!("{status_v4} = INTEGER: 2"));

    // Notifications: vrrpv3NewMaster with the master's address and the reason, then
    // vrrpv3ProtoError with its reason.
    events
        .send(Event::Transition {
            instance: "VI_4".into(),
            ifindex: 2,
            vrid: 51,
            ipv6: false,
            from: State::Backup,
            to: State::Master,
            reason: Reason::MasterDown,
            master: Some("192.0.2.1".parse().unwrap()),
        })
        .unwrap();
    wait_for("vrrpv3NewMaster", || lab.traps().contains(&format!("{MIB}.0.1"))).await;
    let traps = lab.traps();
    let line = traps.lines().skip_while(|l| !l.contains(&format!("{MIB}.0.1"))).take(3).collect::<Vec<_>>().join(" ");
    assert!(line.contains(&format!("{OPS}.3.2.51.1 = Hex-STRING: C0 00 02 01")), "{traps}");
    assert!(line.contains(&format!("{STATS_ENTRY}.2.2.51.1 = INTEGER: 3")), "{traps}");
    events
        .send(Event::ProtoError {
            instance: "VI_4".into(),
            ifindex: 2,
            vrid: 51,
            ipv6: false,
            reason: DropReason::Checksum,
        })
        .unwrap();
    wait_for("vrrpv3ProtoError", || lab.traps().contains(&format!("{MIB}.0.2"))).await;
    assert!(lab.traps().contains(&format!("{STATS_ENTRY}.6.2.51.1 = INTEGER: 3")), "{}", lab.traps());
    // The notes show in the MIB too.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(lab.get(&format!("{STATS_ENTRY}.6.2.51.1")).await, format!("{STATS_ENTRY}.6.2.51.1 = INTEGER: 3"));

    // snmpd restarts: the subagent opens a session again and registers again.
    lab.stop_snmpd().await;
    lab.start_snmpd().await;
    wait_registered(&lab, &status_v4).await;
    assert_eq!(lab.walk(true).await.len(), walk.len());

    agent.abort();
}
