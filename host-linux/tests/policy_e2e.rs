//! WASM policies inside the running daemon, in the namespace lab against keepalived: a priority
//! policy moves mastership, and a hostile (looping) policy is contained while the adverts keep
//! their interval and the master keeps its VIP.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hav_tests::capture::{Capture, Frame};
use hav_tests::netns::{skip_unless, Lab, Need};
use hav_tests::peers::{instance_conf, wait_until, workdir, Daemon, Node};
use nix::sys::signal::Signal;

const SETTLE: Duration = Duration::from_secs(8);

fn hav() -> Daemon {
    Daemon::Hav(PathBuf::from(env!("CARGO_BIN_EXE_hav-linux")))
}

/// `target/policies/NAME.wasm`, built by scripts/build-policies.
fn example(name: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("root").to_path_buf();
    let dir = root.join("target/policies");
    if !dir.join(format!("{name}.wasm")).exists() {
        let st = std::process::Command::new(root.join("scripts/build-policies")).arg(&dir).status().expect("build-policies");
        assert!(st.success());
    }
    dir.join(format!("{name}.wasm"))
}

fn policy_script(policy: &str, args: &str, interval: &str) -> String {
    format!("vrrp_script pol {{\n  policy {policy}\n  args {args}\n  interval {interval}\n}}\n")
}

#[test]
fn priority_policy_moves_mastership() {
    if skip_unless("priority_policy_moves_mastership", &[Need::Root, Need::Keepalived]) {
        return;
    }
    let lab = Lab::new(2).expect("lab");
    let wasm = example("static_verdict");
    let track = "  track_script {\n    pol\n  }";
    let conf = |delta: i32| {
        format!("{}{}", policy_script("static_verdict", &format!("delta={delta}"), "1"), instance_conf("VI_P", 64, 150, 3, "1", &["10.0.0.220/24"], track))
    };
    let h = Node::start_with(&lab.routers[0], hav(), &conf(0), &["--policy", wasm.to_str().expect("utf-8")]);
    let k = Node::start(&lab.routers[1], Daemon::Keepalived, &instance_conf("VI_P", 64, 120, 3, "1", &["10.0.0.220/24"], ""));
    assert!(wait_until(SETTLE, || h.holds("10.0.0.220") && !k.holds("10.0.0.220")).is_some(), "hav not master");
    // The policy now answers -60: 150 - 60 = 90 < 120, keepalived preempts.
    h.write_config(&conf(-60));
    h.signal(Signal::SIGHUP);
    assert!(wait_until(SETTLE, || k.holds("10.0.0.220") && !h.holds("10.0.0.220")).is_some(), "a negative delta did not hand over");
    let st = hav_linux::daemon::control::request(&h.control_path(), &hav_linux::daemon::control::Request { cmd: "status".into(), instance: None }).expect("status");
    assert_eq!(st["instances"][0]["effective_priority"], 90, "{st}");
    h.write_config(&conf(0));
    h.signal(Signal::SIGHUP);
    assert!(wait_until(SETTLE, || h.holds("10.0.0.220") && !k.holds("10.0.0.220")).is_some(), "did not take back mastership");
}

/// Receives VRRP adverts of `vrid` on the client's interface for `secs` and returns their
/// arrival times.
fn capture_adverts(lab: &Lab, vrid: u8, secs: u64) -> Vec<Instant> {
    lab.client.enter(move || {
        use socket2::{Domain, Protocol, Socket, Type};
        let s = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(112))).expect("raw socket");
        s.join_multicast_v4(&"224.0.0.18".parse().expect("group"), &"10.0.0.100".parse().expect("addr")).expect("join");
        s.set_read_timeout(Some(Duration::from_millis(200))).expect("timeout");
        let mut out = Vec::new();
        let end = Instant::now() + Duration::from_secs(secs);
        let mut buf = [0u8; 2048];
        while Instant::now() < end {
            let Ok(n) = std::io::Read::read(&mut &s, &mut buf) else { continue };
            let bytes = &buf[..n];
            let ihl = usize::from(bytes.first().copied().unwrap_or(0) & 0x0f) * 4;
            if bytes.get(ihl + 1) == Some(&vrid) {
                out.push(Instant::now());
            }
        }
        out
    })
}

#[test]
fn hostile_policy_is_contained_and_adverts_keep_their_interval() {
    if skip_unless("hostile_policy_is_contained_and_adverts_keep_their_interval", &[Need::Root, Need::Keepalived]) {
        return;
    }
    let _one = TIMING.lock().unwrap_or_else(|p| p.into_inner());
    let lab = Lab::new(2).expect("lab");
    let dir = workdir("spin");
    let wat = dir.join("spin.wat");
    std::fs::write(
        &wat,
        r#"(module
  (memory (export "memory") 1)
  (func (export "hav_abi_version") (result i32) (i32.const 1))
  (func (export "hav_alloc") (param i32) (result i32) (i32.const 4096))
  (func (export "hav_priority") (param i32 i32) (result i64) (loop $l (br $l)) (i64.const 0)))"#,
    )
    .expect("wat");
    let track = "  track_script {\n    pol\n  }";
    let conf = format!("{}{}", policy_script("spin", "x=1", "0.2"), instance_conf("VI_H", 65, 150, 3, "1", &["10.0.0.221/24"], track));
    let h = Node::start_with(&lab.routers[0], hav(), &conf, &["--policy", wat.to_str().expect("utf-8")]);
    let k = Node::start(&lab.routers[1], Daemon::Keepalived, &instance_conf("VI_H", 65, 100, 3, "1", &["10.0.0.221/24"], ""));
    assert!(wait_until(SETTLE, || h.holds("10.0.0.221") && !k.holds("10.0.0.221")).is_some(), "hav not master");
    let times = capture_adverts(&lab, 65, 6);
    assert!(times.len() >= 5, "only {} adverts in 6 s", times.len());
    let worst = times.windows(2).map(|w| w[1] - w[0]).max().expect("gaps");
    assert!(worst < Duration::from_millis(1300), "an advert was late by {:?} while the policy looped", worst);
    assert!(h.holds("10.0.0.221") && !k.holds("10.0.0.221"), "mastership moved");
    let log = h.log();
    assert!(log.contains("priority policy failed") && log.contains("CPU budget"), "no reason logged:\n{log}");
    let _ = std::fs::remove_dir_all(&dir);
}

// ---- the VRRP thread keeps its 10 ms adverts (issue 15) --------------------------------------

/// The timing-sensitive tests run one at a time: two 10 ms instances and their hostile loads
/// on a small machine would measure each other.
static TIMING: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The largest advert gap allowed in these tests: 3 intervals of 10 ms (`advert_int 0.01`).
const MAX_GAP: Duration = Duration::from_millis(30);

/// A priority policy (delta 0) with a `custom_bytes`-byte custom section named `hav-ballast`
/// filled with `fill`: a valid module of about that size, whose bytes (and digest) change
/// with `fill`.
fn ballast_policy(path: &Path, custom_bytes: usize, fill: u8) {
    let resp = postcard::to_allocvec(&hav_core::policy::PriorityResponse { verdict: hav_core::policy::PriorityVerdict::Delta(0), message: "ballast" })
        .expect("encode");
    let data: String = resp.iter().map(|b| format!("\\{b:02x}")).collect();
    let wat = format!(
        r#"(module
  (memory (export "memory") 1)
  (data (i32.const 512) "{data}")
  (func (export "hav_abi_version") (result i32) (i32.const 1))
  (func (export "hav_alloc") (param i32) (result i32) (i32.const 4096))
  (func (export "hav_priority") (param i32 i32) (result i64) (i64.const {packed})))"#,
        packed = hav_core::policy::pack(512, resp.len() as u32)
    );
    let mut bytes = wat::parse_str(wat).expect("wat");
    // A custom section: id 0, size, then the name and the payload.
    let name = b"hav-ballast";
    let mut body = vec![name.len() as u8];
    body.extend_from_slice(name);
    body.resize(body.len() + custom_bytes, fill);
    bytes.push(0);
    let mut n = body.len();
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        bytes.push(if n == 0 { b } else { b | 0x80 });
        if n == 0 {
            break;
        }
    }
    bytes.extend_from_slice(&body);
    std::fs::write(path, bytes).expect("write policy");
}

/// Arrival times (µs) of the VRRP adverts of `vrid` from `src` in `frames`, and whether any
/// other router advertised it.
fn adverts(frames: &[Frame], vrid: u8, src: std::net::Ipv4Addr) -> (Vec<u64>, Vec<std::net::Ipv4Addr>) {
    let mut times = Vec::new();
    let mut others = Vec::new();
    for f in frames {
        if let Some(v) = f.vrrp_v4().filter(|v| v.vrid == vrid) {
            if v.src == src {
                times.push(f.ts_us);
            } else if v.priority > 0 && !others.contains(&v.src) {
                others.push(v.src);
            }
        }
    }
    (times, others)
}

/// The largest gap between consecutive times, and a histogram line of the gaps.
fn gaps(times: &[u64]) -> (Duration, String) {
    let gaps: Vec<u64> = times.windows(2).map(|w| w[1].saturating_sub(w[0])).collect();
    let worst = gaps.iter().copied().max().unwrap_or(0);
    let mut sorted = gaps.clone();
    sorted.sort_unstable();
    let pct = |p: usize| sorted.get(sorted.len().saturating_sub(1) * p / 100).copied().unwrap_or(0) as f64 / 1000.0;
    let line = format!("{} adverts, gaps p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms", times.len(), pct(50), pct(99), worst as f64 / 1000.0);
    (Duration::from_micros(worst), line)
}

/// Lines of `log` containing `what`.
fn count(log: &str, what: &str) -> usize {
    log.lines().filter(|l| l.contains(what)).count()
}

/// hav (VRRPv3, 10 ms adverts) is master against keepalived while it reloads configs naming
/// ten 5 MiB policies: new modules, the same again (nothing compiled), new ones again. The
/// policies are read, hashed and compiled on a worker; on the wire the adverts never pause for
/// more than three intervals, and keepalived never becomes master.
#[test]
fn reloading_ten_large_policies_keeps_the_advert_interval() {
    if skip_unless("reloading_ten_large_policies_keeps_the_advert_interval", &[Need::Root, Need::Keepalived, Need::Tcpdump]) {
        return;
    }
    let _one = TIMING.lock().unwrap_or_else(|p| p.into_inner());
    let lab = Lab::new(2).expect("lab");
    let dir = workdir("bigpol");
    let vip = "10.0.0.222";
    let conf = |generation: u8| {
        let mut c = String::new();
        for i in 0..10u8 {
            let p = dir.join(format!("g{generation}_p{i}.wasm"));
            if !p.exists() {
                ballast_policy(&p, 5 << 20, generation.wrapping_mul(16).wrapping_add(i));
            }
            c.push_str(&format!("vrrp_script p{i} {{\n  policy {}\n  interval 0.5\n}}\n", p.display()));
        }
        let track = "  track_script {\n    p0\n  }";
        c + &instance_conf("VI_R", 66, 200, 3, "0.01", &[&format!("{vip}/24")], track)
    };
    let h = Node::start(&lab.routers[0], hav(), &conf(0));
    let k = Node::start(&lab.routers[1], Daemon::Keepalived, &instance_conf("VI_R", 66, 100, 3, "0.01", &[&format!("{vip}/24")], ""));
    assert!(wait_until(SETTLE, || h.holds(vip) && !k.holds(vip)).is_some(), "hav not master:\n{}", h.log());
    let cap = Capture::start(&lab.client, "eth0", &["ip", "proto", "112"], &dir, "vrrp").expect("tcpdump");
    let mut keepalived_master = false;
    let reloads: [u8; 3] = [1, 1, 2];
    for (n, generation) in reloads.iter().enumerate() {
        h.write_config(&conf(*generation));
        let t = Instant::now();
        h.signal(Signal::SIGHUP);
        let done = wait_until(Duration::from_secs(120), || {
            keepalived_master |= k.holds(vip);
            count(&h.log(), "reloaded") > n
        });
        assert!(done.is_some(), "reload {} not done:\n{}", n + 1, h.log());
        eprintln!("reload {} (generation {generation}) took {:?}", n + 1, t.elapsed());
        // Some adverts after the swap too.
        std::thread::sleep(Duration::from_millis(300));
        keepalived_master |= k.holds(vip);
    }
    let frames = cap.stop().expect("capture");
    let log = h.log();
    let (times, others) = adverts(&frames, 66, Lab::router_v4(0));
    let (worst, line) = gaps(&times);
    eprintln!("during the reloads: {line}");
    assert!(!keepalived_master && others.is_empty(), "keepalived became master ({others:?}); {line}");
    assert!(h.holds(vip), "hav lost its VIP");
    assert!(times.len() > 100, "{line}");
    assert!(worst <= MAX_GAP, "an advert gap of {worst:?} (more than 3 intervals) during the reloads; {line}");
    // The second reload named the same files: nothing compiled.
    assert_eq!(count(&log, "compiled=true"), 30, "10 at start, 10 for generation 1, 10 for generation 2:\n{log}");
    assert_eq!(count(&log, "compiled=false"), 10, "{log}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A policy module file (WAT) with `hav_priority` running `body`, and `extra` items.
fn hostile_policy(dir: &Path, name: &str, extra: &str, body: &str) -> PathBuf {
    let p = dir.join(format!("{name}.wat"));
    std::fs::write(
        &p,
        format!(
            r#"(module
  {extra}
  (memory (export "memory") 1)
  (func (export "hav_abi_version") (result i32) (i32.const 1))
  (func (export "hav_alloc") (param i32) (result i32) (i32.const 4096))
  (func (export "hav_priority") (param i32 i32) (result i64) {body}))"#
        ),
    )
    .expect("write policy");
    p
}

/// A host call loop: `times` TCP connects to `to`, then a trap (the run fails too).
fn call_flood(to: std::net::SocketAddr, times: u32) -> (String, String) {
    let req = postcard::to_allocvec(&hav_core::policy::HostRequest::TcpConnect {
        target: hav_core::policy::Target { addr: to.ip(), port: to.port(), proto: hav_core::policy::Proto::Tcp },
        timeout_ms: 1000,
    })
    .expect("encode");
    let data: String = req.iter().map(|b| format!("\\{b:02x}")).collect();
    (
        format!(r#"(import "hav" "host_call" (func $hc (param i32 i32 i32 i32) (result i32))) (data (i32.const 0) "{data}")"#),
        format!(
            "(local $i i32) (loop $l (drop (call $hc (i32.const 0) (i32.const {len}) (i32.const 8192) (i32.const 1024)))
               (local.set $i (i32.add (local.get $i) (i32.const 1)))
               (br_if $l (i32.lt_u (local.get $i) (i32.const {times})))) unreachable",
            len = req.len()
        ),
    )
}

/// Hostile priority policies run in the daemon every 20 ms while hav is master with 10 ms
/// adverts: a CPU loop, a memory bomb, a log flood forging lines, host-call floods at loopback
/// and the metadata service (neither listed), and an endless chunked body from a server it may
/// reach. Each is contained; the adverts keep their interval on the wire; keepalived stays
/// backup; the log says why, in one line per run, a few per policy.
#[test]
fn hostile_policies_in_the_daemon_keep_the_advert_interval() {
    if skip_unless("hostile_policies_in_the_daemon_keep_the_advert_interval", &[Need::Root, Need::Keepalived, Need::Tcpdump]) {
        return;
    }
    let _one = TIMING.lock().unwrap_or_else(|p| p.into_inner());
    let lab = Lab::new(2).expect("lab");
    let dir = workdir("hostile");
    // A server in hav's namespace, on loopback, answering every request with chunks forever.
    let bomb = lab.routers[0].enter(|| std::net::TcpListener::bind("127.0.0.1:0")).expect("bind");
    let bomb_addr = bomb.local_addr().expect("addr");
    std::thread::spawn(move || {
        for s in bomb.incoming() {
            let Ok(mut s) = s else { return };
            std::thread::spawn(move || {
                use std::io::{Read, Write};
                let mut req = [0u8; 1024];
                let _ = s.read(&mut req);
                if s.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n").is_err() {
                    return;
                }
                while s.write_all(b"8\r\nzzzzzzzz\r\n").is_ok() {}
            });
        }
    });
    let msg = "flooding\nINFO hav_linux: forged";
    let msg_data: String = msg.bytes().map(|b| format!("\\{b:02x}")).collect();
    let (lo_extra, lo_body) = call_flood("127.0.0.1:22".parse().expect("addr"), 50_000);
    let (md_extra, md_body) = call_flood("169.254.169.254:80".parse().expect("addr"), 50_000);
    let policies = [
        ("h_spin", hostile_policy(&dir, "h_spin", "", "(loop $l (br $l)) (i64.const 0)")),
        ("h_memory", hostile_policy(&dir, "h_memory", "", "(loop $l (drop (memory.grow (i32.const 16))) (br $l)) (i64.const 0)")),
        (
            "h_logs",
            hostile_policy(
                &dir,
                "h_logs",
                &format!(r#"(import "hav" "log" (func $log (param i32 i32 i32))) (data (i32.const 0) "{msg_data}")"#),
                &format!("(loop $l (call $log (i32.const 1) (i32.const 0) (i32.const {})) (br $l)) (i64.const 0)", msg.len()),
            ),
        ),
        ("h_calls_lo", hostile_policy(&dir, "h_calls_lo", &lo_extra, &lo_body)),
        ("h_calls_md", hostile_policy(&dir, "h_calls_md", &md_extra, &md_body)),
    ];
    let mut conf = String::new();
    for (name, path) in &policies {
        // A timeout long enough for the CPU and memory limits to be what stops them.
        conf.push_str(&format!("vrrp_script {name} {{\n  policy {}\n  interval 0.02\n  timeout 2\n}}\n", path.display()));
    }
    conf.push_str(&format!(
        "vrrp_script h_chunks {{\n  policy {}\n  args target={bomb_addr} path=/ threshold_ms=5000\n  interval 0.02\n  timeout 2\n  targets {{\n    http_get {} {}\n  }}\n}}\n",
        example("latency_priority").display(),
        bomb_addr.ip(),
        bomb_addr.port()
    ));
    let names: Vec<&str> = policies.iter().map(|(n, _)| *n).chain(["h_chunks"]).collect();
    let track = format!("  track_script {{\n{}  }}", names.iter().map(|n| format!("    {n}\n")).collect::<String>());
    let vip = "10.0.0.223";
    conf.push_str(&instance_conf("VI_X", 67, 200, 3, "0.01", &[&format!("{vip}/24")], &track));
    let h = Node::start(&lab.routers[0], hav(), &conf);
    let k = Node::start(&lab.routers[1], Daemon::Keepalived, &instance_conf("VI_X", 67, 100, 3, "0.01", &[&format!("{vip}/24")], ""));
    assert!(wait_until(SETTLE, || h.holds(vip) && !k.holds(vip)).is_some(), "hav not master:\n{}", h.log());
    let lines_before = h.log().lines().count();
    let cap = Capture::start(&lab.client, "eth0", &["ip", "proto", "112"], &dir, "vrrp").expect("tcpdump");
    let mut keepalived_master = false;
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(6) {
        keepalived_master |= k.holds(vip);
        std::thread::sleep(Duration::from_millis(20));
    }
    let frames = cap.stop().expect("capture");
    let log = h.log();
    let (times, others) = adverts(&frames, 67, Lab::router_v4(0));
    let (worst, line) = gaps(&times);
    eprintln!("with six hostile policies every 20 ms: {line}; {} log lines in 6 s", log.lines().count() - lines_before);
    assert!(h.alive(), "hav died:\n{log}");
    assert!(!keepalived_master && others.is_empty(), "keepalived became master ({others:?}); {line}");
    assert!(times.len() > 300, "{line}");
    assert!(worst <= MAX_GAP, "an advert gap of {worst:?} (more than 3 intervals) while the policies ran; {line}");
    // Why, per policy, in the lines of the runs.
    let why = [
        ("h_spin", "CPU budget"),
        ("h_memory", "memory cap"),
        ("h_logs", "guest log lines dropped"),
        ("h_calls_lo", "host calls refused: 16 (first: tcp_connect to 127.0.0.1:22: 127.0.0.1:22 is not among the endpoints this policy may reach)"),
        ("h_calls_md", "host calls refused: 16 (first: tcp_connect to 169.254.169.254:80: 169.254.169.254:80 is not among the endpoints this policy may reach)"),
    ];
    for (name, reason) in why {
        let runs: Vec<&str> = log.lines().filter(|l| l.contains("priority policy") && l.contains(&format!("script=\"{name}\""))).collect();
        assert!(runs.iter().any(|l| l.contains(reason)), "no line for {name} saying '{reason}':\n{}", runs.join("\n"));
        // Every 20 ms for 8 s or more, and a few lines: the rate limit holds.
        assert!(runs.len() <= 3 * 4, "{} lines for {name}", runs.len());
    }
    assert!(!log.lines().any(|l| l.starts_with("INFO hav_linux: forged")), "a guest forged a log line");
    let guest = count(&log, "flooding\\nINFO hav_linux: forged");
    assert!((1..=20 * 2).contains(&guest), "{guest} guest lines");
    // The chunk bomb: cut at the policy's buffer, answered, fine.
    assert!(!log.lines().any(|l| l.contains("script=\"h_chunks\"") && l.contains("priority policy failed")), "h_chunks failed:\n{log}");
    let _ = std::fs::remove_dir_all(&dir);
}
