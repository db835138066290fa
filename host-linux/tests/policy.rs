//! WASM policy host: hostile policies are contained with the right error, the example policies
//! (built by scripts/build-policies) give the right verdicts against real servers on loopback,
//! host calls reach only allowed targets, and a looping policy does not delay a timer of the
//! caller's runtime.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use hav_core::policy::{
    CheckResponse, CheckVerdict, History, HostRequest, PriorityRequest, PriorityVerdict, Proto, Target,
};
use hav_core::vrrp::State;
use hav_linux::config::{load_str, Config};
use hav_linux::health::{Health, PolicyRunner};
use hav_linux::config::Protocol;
use hav_linux::policy::{CheckTarget, HostCall, PolicyError, PolicyLimits, PolicySet, PolicyTarget};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// The example policies, built once per test run.
fn examples() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf();
        let dir = root.join("target/policies");
        let st = std::process::Command::new(root.join("scripts/build-policies"))
            .arg(&dir)
            .status()
            .expect("run scripts/build-policies");
        assert!(st.success(), "scripts/build-policies failed");
        dir
    })
}

fn example(name: &str) -> PathBuf {
    examples().join(format!("{name}.wasm"))
}

fn temp_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("hav-policy-test-{}", std::process::id()));
        std::fs::create_dir_all(&d).expect("temp dir");
        d
    })
}

fn write_wat(name: &str, text: &str) -> PathBuf {
    let p = temp_dir().join(format!("{name}.wat"));
    std::fs::write(&p, text).expect("write wat");
    p
}

/// A minimal policy module with `extra` items and the given `hav_check` body.
fn wat_check(extra: &str, body: &str) -> String {
    format!(
        r#"(module
  {extra}
  (memory (export "memory") 1)
  (func (export "hav_abi_version") (result i32) (i32.const 1))
  (func (export "hav_alloc") (param i32) (result i32) (i32.const 4096))
  (func (export "hav_check") (param i32 i32) (result i64) {body})
)"#
    )
}

fn wat_bytes(b: &[u8]) -> String {
    b.iter().map(|x| format!("\\{x:02x}")).collect()
}

fn limits() -> PolicyLimits {
    PolicyLimits { cpu: Duration::from_millis(100), ..PolicyLimits::default() }
}

fn load(paths: &[PathBuf]) -> Result<PolicySet, PolicyError> {
    PolicySet::load_with(paths, &Config::default(), limits())
}

async fn run(
    set: &PolicySet,
    name: &str,
    target: impl Into<CheckTarget>,
    args: &str,
    extra: &[PolicyTarget],
) -> Result<(CheckVerdict, String), PolicyError> {
    set.run_check(name, target, args, extra, History::default(), Duration::from_secs(5)).await.map(|o| (o.verdict, o.message))
}

/// A real server of a UDP virtual server.
fn udp_server_target(addr: SocketAddr) -> CheckTarget {
    CheckTarget { addr, protocol: Protocol::Udp }
}

/// Some address nobody listens on (a port just freed).
fn closed_port() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr")
}

struct Server {
    addr: SocketAddr,
    hits: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A TCP listener that accepts and counts connections, and closes them.
async fn tcp_server() -> Server {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let task = tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            h.fetch_add(1, Ordering::SeqCst);
            drop(s);
        }
    });
    Server { addr, hits, task }
}

/// A tiny HTTP/1.1 server: `/health` 200 "status: all good", `/fail` 503, `/slow` 200 after
/// `slow`, anything else 404. With `silent`, it accepts and never answers.
async fn http_server(slow: Duration, silent: bool) -> Server {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let task = tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            h.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut req = Vec::new();
                let mut buf = [0u8; 1024];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                if silent {
                    tokio::time::sleep(Duration::from_secs(60)).await;
                    return;
                }
                let line = String::from_utf8_lossy(&req);
                let path = line.split(' ').nth(1).unwrap_or("/").to_string();
                let (status, body) = match path.as_str() {
                    "/health" => (200, "status: all good"),
                    "/fail" => (503, "overloaded"),
                    "/slow" => {
                        tokio::time::sleep(slow).await;
                        (200, "slow but fine")
                    }
                    _ => (404, "no such page"),
                };
                let resp =
                    format!("HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
                let _ = s.write_all(resp.as_bytes()).await;
            });
        }
    });
    Server { addr, hits, task }
}

// ---- load-time rejection -------------------------------------------------------------------

#[test]
fn forbidden_import_is_rejected_at_load() {
    let p = write_wat(
        "wasi",
        &wat_check(r#"(import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))"#, "(i64.const 0)"),
    );
    let e = load(&[p]).expect_err("must be rejected");
    assert!(matches!(e, PolicyError::ForbiddenImport { ref module, ref name, .. } if module == "wasi_snapshot_preview1" && name == "fd_write"), "{e}");
    assert!(e.to_string().contains("forbidden import wasi_snapshot_preview1::fd_write"), "{e}");
    // The right name with the wrong type is refused too.
    let p = write_wat("badtype", &wat_check(r#"(import "hav" "now_ms" (func (result i32)))"#, "(i64.const 0)"));
    let e = load(&[p]).expect_err("must be rejected");
    assert!(matches!(e, PolicyError::ForbiddenImport { ref name, .. } if name == "now_ms"), "{e}");
    // An imported memory is not a capability either.
    let p = write_wat("importmem", &wat_check(r#"(import "hav" "mem" (memory 1))"#, "(i64.const 0)").replace(r#"(memory (export "memory") 1)"#, ""));
    let e = load(&[p]).expect_err("must be rejected");
    assert!(matches!(e, PolicyError::ForbiddenImport { .. }), "{e}");
}

#[test]
fn wrong_abi_version_is_rejected_at_load() {
    let p = write_wat("abi2", &wat_check("", "(i64.const 0)").replace("(i32.const 1))", "(i32.const 2))"));
    let e = load(&[p]).expect_err("must be rejected");
    assert!(matches!(e, PolicyError::AbiVersion { found: 2, expected: 1, .. }), "{e}");
    assert!(e.to_string().contains("ABI version 2"), "{e}");
}

#[test]
fn missing_entries_are_rejected_at_load() {
    let no_entry = r#"(module (memory (export "memory") 1)
        (func (export "hav_abi_version") (result i32) (i32.const 1))
        (func (export "hav_alloc") (param i32) (result i32) (i32.const 0)))"#;
    let e = load(&[write_wat("noentry", no_entry)]).expect_err("must be rejected");
    assert!(matches!(e, PolicyError::NoEntry { .. }), "{e}");
    let no_alloc = wat_check("", "(i64.const 0)").replace(r#"(func (export "hav_alloc") (param i32) (result i32) (i32.const 4096))"#, "");
    let e = load(&[write_wat("noalloc", &no_alloc)]).expect_err("must be rejected");
    assert!(matches!(e, PolicyError::MissingExport { name: "hav_alloc", .. }), "{e}");
    let bad_sig = wat_check("", "(i64.const 0)").replace("(param i32 i32) (result i64) (i64.const 0)", "(param i32) (result i64) (i64.const 0)");
    let e = load(&[write_wat("badsig", &bad_sig)]).expect_err("must be rejected");
    assert!(matches!(e, PolicyError::ExportType { name: "hav_check", .. }), "{e}");
    let e = load(&[temp_dir().join("does-not-exist.wasm")]).expect_err("must be rejected");
    assert!(matches!(e, PolicyError::Read { .. }), "{e}");
    let e = load(&[write_wat("garbage", "this is not wasm")]).expect_err("must be rejected");
    assert!(matches!(e, PolicyError::Compile { .. }), "{e}");
}

#[test]
fn looping_start_function_is_stopped_at_load() {
    let p = write_wat("startloop", &wat_check(r#"(func $spin (loop $l (br $l))) (start $spin)"#, "(i64.const 0)"));
    let t = Instant::now();
    let e = load(&[p]).expect_err("must be rejected");
    assert!(matches!(e, PolicyError::CpuBudget { .. }), "{e}");
    assert!(t.elapsed() < Duration::from_secs(5), "took {:?}", t.elapsed());
}

#[test]
fn config_references_resolve_with_located_errors() {
    let conf = r#"virtual_server 10.0.0.1 80 {
    real_server 10.0.0.2 80 {
        WASM_CHECK {
            policy no_such_policy
        }
    }
}
"#;
    let c = load_str(Path::new("/etc/hav/keepalived.conf"), conf).expect("config").config;
    let e = PolicySet::load_with(&[example("tcp_connect")], &c, limits()).expect_err("unknown name");
    assert!(e.to_string().starts_with("/etc/hav/keepalived.conf:3:9: unknown policy 'no_such_policy' (known: tcp_connect)"), "{e}");

    // A priority-only policy used as a check.
    let conf = "vrrp_script s {\n    policy tcp_connect\n}\n";
    let c = load_str(Path::new("k.conf"), conf).expect("config").config;
    let e = PolicySet::load_with(&[example("tcp_connect")], &c, limits()).expect_err("no priority entry");
    assert!(e.to_string().starts_with("k.conf:1:1: policy 'tcp_connect' has no priority entry"), "{e}");

    // Paths resolve relative to the config file and are loaded on demand.
    let conf = format!("vrrp_script lat {{\n    policy {}\n    args delta=-7\n}}\n", example("static_verdict").display());
    let c = load_str(Path::new("k.conf"), &conf).expect("config").config;
    let set = PolicySet::load_with(&[], &c, limits()).expect("loads");
    assert_eq!(set.names(), vec![example("static_verdict").display().to_string()]);
    let rel = "vrrp_script lat {\n    policy static_verdict.wasm\n}\n";
    let c = load_str(&examples().join("k.conf"), rel).expect("config").config;
    PolicySet::load_with(&[], &c, limits()).expect("relative path loads");
}

// ---- hostile policies at run time ----------------------------------------------------------

async fn hostile(name: &str, extra: &str, body: &str) -> PolicyError {
    let set = load(&[write_wat(name, &wat_check(extra, body))]).expect("loads");
    run(&set, name, closed_port(), "", &[]).await.expect_err("must fail")
}

#[tokio::test]
async fn infinite_loop_hits_the_cpu_budget() {
    let t = Instant::now();
    let e = hostile("spin", "", "(loop $l (br $l)) (i64.const 0)").await;
    assert!(matches!(e, PolicyError::CpuBudget { .. }), "{e}");
    assert!(e.to_string().contains("CPU budget of 100ms exhausted"), "{e}");
    assert!(t.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn infinite_loop_runs_out_of_fuel_in_fuel_mode() {
    let p = write_wat("spinfuel", &wat_check("", "(loop $l (br $l)) (i64.const 0)"));
    let set = PolicySet::load_with(&[p], &Config::default(), PolicyLimits { fuel: Some(1_000_000), ..limits() }).expect("loads");
    let e = run(&set, "spinfuel", closed_port(), "", &[]).await.expect_err("must fail");
    assert!(matches!(e, PolicyError::CpuBudget { ref budget, .. } if budget == "1000000 fuel"), "{e}");
}

#[tokio::test]
async fn memory_bomb_hits_the_memory_cap() {
    let e = hostile("bomb", "", "(loop $l (drop (memory.grow (i32.const 16))) (br $l)) (i64.const 0)").await;
    assert!(matches!(e, PolicyError::Memory { cap, .. } if cap == 16 << 20), "{e}");
}

#[tokio::test]
async fn deep_recursion_overflows_the_stack() {
    let e = hostile(
        "recurse",
        "(func $r (param i32) (result i32) (call $r (i32.add (local.get 0) (i32.const 1))))",
        "(drop (call $r (i32.const 0))) (i64.const 0)",
    )
    .await;
    assert!(matches!(e, PolicyError::StackOverflow { .. }), "{e}");
}

#[tokio::test]
async fn trap_is_a_failed_check() {
    let e = hostile("trap", "", "unreachable").await;
    assert!(matches!(e, PolicyError::Trap { ref message, .. } if message.contains("unreachable")), "{e}");
    let e = hostile("divzero", "", "(drop (i32.div_u (i32.const 1) (i32.const 0))) (i64.const 0)").await;
    assert!(matches!(e, PolicyError::Trap { ref message, .. } if message.contains("divide by zero")), "{e}");
}

#[tokio::test]
async fn huge_and_garbage_output_are_refused() {
    let e = hostile("huge", "", "(i64.const 1000000)").await;
    assert!(matches!(e, PolicyError::OutputTooLarge { len: 1_000_000, cap: 16384, .. }), "{e}");
    let e = hostile("outside", "", "(i64.const 0x7fff000000000010)").await;
    assert!(matches!(e, PolicyError::BadOutput { ref message, .. } if message.contains("outside memory")), "{e}");
    let e = hostile("garbage", r#"(data (i32.const 0) "\ff\ff\ff\ff\ff")"#, "(i64.const 5)").await;
    assert!(matches!(e, PolicyError::BadOutput { ref message, .. } if message.contains("not a CheckResponse")), "{e}");
}

#[tokio::test]
async fn wall_clock_timeout_includes_host_calls() {
    // The HTTP server accepts and never answers; the policy asks for a 60 s HTTP timeout, the
    // run gets 300 ms.
    let srv = http_server(Duration::ZERO, true).await;
    let set = load(&[example("http_check")]).expect("loads");
    let t = Instant::now();
    let e = set
        .run_check("http_check", srv.addr, "path=/health timeout_ms=60000", &[], History::default(), Duration::from_millis(300))
        .await
        .expect_err("must time out");
    assert!(matches!(e, PolicyError::Timeout { .. }), "{e}");
    assert!(t.elapsed() < Duration::from_secs(5), "took {:?}", t.elapsed());
    assert_eq!(srv.hits.load(Ordering::SeqCst), 1);
}

// ---- capabilities --------------------------------------------------------------------------

/// A policy that makes one TCP-connect host call to `to` and answers Down "denied" when the
/// host refused it (-2), Up "called" otherwise.
fn connect_probe(name: &str, to: SocketAddr) -> PathBuf {
    let req = postcard::to_allocvec(&HostRequest::TcpConnect {
        target: Target { addr: to.ip(), port: to.port(), proto: Proto::Tcp },
        timeout_ms: 1000,
    })
    .expect("encode");
    let denied = postcard::to_allocvec(&CheckResponse { verdict: CheckVerdict::Down, message: "denied" }).expect("encode");
    let called = postcard::to_allocvec(&CheckResponse { verdict: CheckVerdict::Up, message: "called" }).expect("encode");
    let extra = format!(
        r#"(import "hav" "host_call" (func $hc (param i32 i32 i32 i32) (result i32)))
  (data (i32.const 0) "{}") (data (i32.const 256) "{}") (data (i32.const 512) "{}")"#,
        wat_bytes(&req),
        wat_bytes(&denied),
        wat_bytes(&called)
    );
    let body = format!(
        "(if (result i64) (i32.eq (call $hc (i32.const 0) (i32.const {}) (i32.const 8192) (i32.const 1024)) (i32.const -2)) (then (i64.const {})) (else (i64.const {})))",
        req.len(),
        hav_core::policy::pack(256, denied.len() as u32),
        hav_core::policy::pack(512, called.len() as u32),
    );
    write_wat(name, &wat_check(&extra, &body))
}

#[tokio::test]
async fn host_call_to_a_target_not_allowed_is_refused() {
    let allowed = tcp_server().await;
    let forbidden = tcp_server().await;
    let set = load(&[connect_probe("to_forbidden", forbidden.addr), connect_probe("to_allowed", allowed.addr)]).expect("loads");
    // The real server being checked is `allowed`; the policy tries `forbidden`.
    let (v, m) = run(&set, "to_forbidden", allowed.addr, "", &[]).await.expect("runs");
    assert_eq!((v, m.as_str()), (CheckVerdict::Down, "denied"));
    assert_eq!(forbidden.hits.load(Ordering::SeqCst), 0, "the forbidden target saw a connection");
    // Listed in the check's targets, it is reachable.
    let (v, m) = run(&set, "to_forbidden", allowed.addr, "", &[PolicyTarget::new(HostCall::TcpConnect, forbidden.addr)]).await.expect("runs");
    assert_eq!((v, m.as_str()), (CheckVerdict::Up, "called"));
    // The real server itself is always allowed.
    let (v, _) = run(&set, "to_allowed", allowed.addr, "", &[]).await.expect("runs");
    assert_eq!(v, CheckVerdict::Up);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(forbidden.hits.load(Ordering::SeqCst), 1);
    assert_eq!(allowed.hits.load(Ordering::SeqCst), 1);
}

/// A policy that makes one host call (`req`) and answers Down "denied" when the host refused it
/// (HostError::Denied, -2), Up "answered" when it answered, Down "failed" on any other error.
fn call_probe(name: &str, req: &HostRequest<'_>) -> PathBuf {
    let req = postcard::to_allocvec(req).expect("encode");
    let msg = |v, m| postcard::to_allocvec(&CheckResponse { verdict: v, message: m }).expect("encode");
    let (denied, answered, failed) =
        (msg(CheckVerdict::Down, "denied"), msg(CheckVerdict::Up, "answered"), msg(CheckVerdict::Down, "failed"));
    let extra = format!(
        r#"(import "hav" "host_call" (func $hc (param i32 i32 i32 i32) (result i32)))
  (data (i32.const 0) "{}") (data (i32.const 1024) "{}") (data (i32.const 1280) "{}") (data (i32.const 1536) "{}")"#,
        wat_bytes(&req),
        wat_bytes(&denied),
        wat_bytes(&answered),
        wat_bytes(&failed)
    );
    let pack = |at, m: &Vec<u8>| hav_core::policy::pack(at, m.len() as u32);
    let body = format!(
        "(local $rc i32)
         (local.set $rc (call $hc (i32.const 0) (i32.const {len}) (i32.const 8192) (i32.const 4096)))
         (if (result i64) (i32.eq (local.get $rc) (i32.const -2))
           (then (i64.const {d}))
           (else (if (result i64) (i32.ge_s (local.get $rc) (i32.const 0)) (then (i64.const {a})) (else (i64.const {f})))))",
        len = req.len(),
        d = pack(1024, &denied),
        a = pack(1280, &answered),
        f = pack(1536, &failed),
    );
    write_wat(name, &wat_check(&extra, &body))
}

/// One request of each kind of host call, to `to`.
fn each_call(to: SocketAddr) -> [(HostCall, HostRequest<'static>); 4] {
    let target = Target { addr: to.ip(), port: to.port(), proto: Proto::Tcp };
    let udp = Target { proto: Proto::Udp, ..target };
    [
        (HostCall::TcpConnect, HostRequest::TcpConnect { target, timeout_ms: 500 }),
        (HostCall::HttpGet, HostRequest::HttpGet { target, host: "", path: "/", tls: false, timeout_ms: 500, max_body: 64 }),
        (HostCall::DnsQuery, HostRequest::DnsQuery { server: udp, name: "ok.test", qtype: 1, timeout_ms: 500 }),
        (HostCall::UdpProbe, HostRequest::UdpProbe { target: udp, payload: b"ping", expect_reply: false, timeout_ms: 500 }),
    ]
}

/// A TCP listener and a UDP socket on the same loopback port, counting connections and
/// datagrams.
async fn tcp_and_udp_server() -> (Server, Server) {
    loop {
        let tcp = tcp_server().await;
        let Ok(sock) = tokio::net::UdpSocket::bind(tcp.addr).await else { continue };
        let hits = Arc::new(AtomicUsize::new(0));
        let h = hits.clone();
        let task = tokio::spawn(async move {
            let mut buf = [0u8; 1500];
            while sock.recv_from(&mut buf).await.is_ok() {
                h.fetch_add(1, Ordering::SeqCst);
            }
        });
        let addr = tcp.addr;
        return (tcp, Server { addr, hits, task });
    }
}

#[tokio::test]
async fn host_call_allowed_for_one_kind_is_refused_for_the_others() {
    let real = tcp_server().await;
    let (x_tcp, x_udp) = tcp_and_udp_server().await;
    let x = x_tcp.addr;
    let calls = each_call(x);
    let paths: Vec<PathBuf> = calls.iter().map(|(c, req)| call_probe(&format!("kind_{c}"), req)).collect();
    let set = load(&paths).expect("loads");
    // X is allowed for tcp_connect only: UDP, DNS and HTTP to it are refused before any I/O.
    let extra = [PolicyTarget::new(HostCall::TcpConnect, x)];
    for (call, _) in &calls {
        let (v, m) = run(&set, &format!("kind_{call}"), real.addr, "", &extra).await.expect("runs");
        let want = if *call == HostCall::TcpConnect { "answered" } else { "denied" };
        assert_eq!((v, m.as_str()), (if want == "answered" { CheckVerdict::Up } else { CheckVerdict::Down }, want), "{call}");
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(x_tcp.hits.load(Ordering::SeqCst), 1, "only the tcp_connect reached X over TCP");
    assert_eq!(x_udp.hits.load(Ordering::SeqCst), 0, "a datagram reached X");

    // The real server being checked: a TCP virtual server's takes tcp_connect and http_get only,
    // a UDP virtual server's udp_probe and dns_query only.
    let calls = each_call(real.addr);
    let paths: Vec<PathBuf> = calls.iter().map(|(c, req)| call_probe(&format!("real_{c}"), req)).collect();
    let set = load(&paths).expect("loads");
    for (call, _) in &calls {
        let name = format!("real_{call}");
        let (_, m) = run(&set, &name, real.addr, "", &[]).await.expect("runs");
        let tcp_kind = matches!(call, HostCall::TcpConnect | HostCall::HttpGet);
        assert_eq!(m == "denied", !tcp_kind, "{call} to the real server of a TCP virtual server: {m}");
        let (_, m) = run(&set, &name, udp_server_target(real.addr), "", &[]).await.expect("runs");
        assert_eq!(m == "denied", tcp_kind, "{call} to the real server of a UDP virtual server: {m}");
        let sctp = CheckTarget { addr: real.addr, protocol: Protocol::Sctp };
        let (_, m) = run(&set, &name, sctp, "", &[]).await.expect("runs");
        assert_eq!(m, "denied", "{call} to the real server of an SCTP virtual server");
    }
}

/// Collects what tracing writes.
#[derive(Clone, Default)]
struct LogBuf(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogBuf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).extend_from_slice(b);
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl LogBuf {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    }
}

std::thread_local! {
    /// Where this thread's log lines go while [`capture_logs`] holds it; nowhere otherwise.
    static CAPTURE: std::cell::RefCell<Option<LogBuf>> = const { std::cell::RefCell::new(None) };
}

/// Writes to the calling thread's capture buffer, if it has one.
struct ThreadWriter;

impl std::io::Write for ThreadWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        CAPTURE.with(|c| c.borrow_mut().as_mut().map_or(Ok(b.len()), |buf| buf.write(b)))
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Sends this thread's log lines (DEBUG and up) to `buf` until the guard drops.
///
/// One global subscriber for the whole test binary, routing by thread, and not one scoped
/// subscriber per test: tracing-core caches each callsite's interest from the first thread
/// that reaches it, and while a single scoped subscriber is registered it asks only that
/// thread's default. Another test's thread (with none) reaching the policy host's WARN line
/// first switched it off for everyone, and a test saw no line at all (CI, stop 23).
fn capture_logs(buf: LogBuf) -> impl Drop {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::Layer;
    static GLOBAL: std::sync::Once = std::sync::Once::new();
    GLOBAL.call_once(|| {
        // Decided per event (which thread?), so never cached per callsite.
        let capturing = tracing_subscriber::filter::dynamic_filter_fn(|m, _| {
            *m.level() <= tracing::Level::DEBUG && CAPTURE.with(|c| c.borrow().is_some())
        })
        .with_max_level_hint(tracing::Level::DEBUG);
        let layer = tracing_subscriber::fmt::layer().with_writer(|| ThreadWriter).with_ansi(false).with_filter(capturing);
        tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer)).expect("the only global subscriber");
    });
    struct Release;
    impl Drop for Release {
        fn drop(&mut self) {
            CAPTURE.with(|c| c.borrow_mut().take());
        }
    }
    CAPTURE.with(|c| *c.borrow_mut() = Some(buf));
    Release
}

#[tokio::test]
async fn loopback_is_refused_unless_listed() {
    let real = tcp_server().await;
    let (lo_tcp, lo_udp) = tcp_and_udp_server().await;
    let calls = each_call(lo_tcp.addr);
    let paths: Vec<PathBuf> = calls.iter().map(|(c, req)| call_probe(&format!("lo_{c}"), req)).collect();
    let set = load(&paths).expect("loads");
    for (call, _) in &calls {
        let (v, m) = run(&set, &format!("lo_{call}"), real.addr, "", &[]).await.expect("runs");
        assert_eq!((v, m.as_str()), (CheckVerdict::Down, "denied"), "{call} to an unlisted loopback endpoint");
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!((lo_tcp.hits.load(Ordering::SeqCst), lo_udp.hits.load(Ordering::SeqCst)), (0, 0));
    // Listed for its kind, it is reachable.
    let (v, m) = run(&set, "lo_udp_probe", real.addr, "", &[PolicyTarget::new(HostCall::UdpProbe, lo_tcp.addr)]).await.expect("runs");
    assert_eq!((v, m.as_str()), (CheckVerdict::Up, "answered"));
}

/// The cloud metadata service (169.254.169.254) is refused when not listed, with a clear log
/// line. Runs in a network namespace of its own with no interface up, so that not even a
/// broken allow-list could send a packet anywhere: a call let through fails with "network
/// unreachable" instead of being denied.
#[test]
#[allow(unsafe_code)]
fn metadata_service_is_refused_unless_listed() {
    let metadata: SocketAddr = "169.254.169.254:80".parse().expect("addr");
    let calls = each_call(metadata);
    let paths: Vec<PathBuf> = calls.iter().map(|(c, req)| call_probe(&format!("metadata_{c}"), req)).collect();
    let outcome = std::thread::spawn(move || {
        // SAFETY: unshare(2) with CLONE_NEWNET moves only this thread to a new network namespace.
        if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
            return None;
        }
        let logs = LogBuf::default();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        // Inline (no policy runtime threads): every host call's socket is made on this thread,
        // inside the new namespace.
        let set = PolicySet::load_with(&paths, &Config::default(), PolicyLimits { workers: 0, ..limits() }).expect("loads");
        let real: SocketAddr = "10.255.0.1:80".parse().expect("addr");
        let mut seen = Vec::new();
        let capture = capture_logs(logs.clone());
        rt.block_on(async {
            for (call, _) in calls {
                let name = format!("metadata_{call}");
                let unlisted = run(&set, &name, real, "", &[]).await.expect("runs").1;
                let listed = run(&set, &name, real, "", &[PolicyTarget::new(call, metadata)]).await.expect("runs").1;
                seen.push((call, unlisted, listed));
            }
        });
        drop(capture);
        Some((seen, logs.text()))
    })
    .join()
    .expect("thread");
    let Some((seen, logs)) = outcome else {
        eprintln!("skipped: cannot unshare a network namespace (needs CAP_SYS_ADMIN)");
        return;
    };
    for (call, unlisted, listed) in seen {
        assert_eq!(unlisted, "denied", "{call} to the metadata service");
        // Let through, it fails on the (absent) network, or is sent nowhere (a UDP probe
        // without a reply has nothing to wait for), but is not denied.
        assert_ne!(listed, "denied", "{call} to the metadata service, listed");
    }
    // One line per run, naming the policy, the call, the endpoint and why.
    for call in HostCall::ALL {
        let why = format!("host calls refused: 1 (first: {call} to 169.254.169.254:80: 169.254.169.254:80 is not among the endpoints this policy may reach)");
        let lines: Vec<&str> = logs.lines().filter(|l| l.contains(&format!("policy=\"metadata_{call}\""))).collect();
        assert_eq!(lines.iter().filter(|l| l.contains(&why)).count(), 1, "no clear log line for {call}:\n{logs}");
        assert!(lines.iter().all(|l| l.contains("WARN") || l.contains("DEBUG")), "{lines:?}");
    }
}

// ---- example policies against real servers -------------------------------------------------

#[tokio::test]
async fn tcp_connect_example() {
    let srv = tcp_server().await;
    let set = load(&[example("tcp_connect")]).expect("loads");
    assert_eq!(run(&set, "tcp_connect", srv.addr, "", &[]).await.expect("runs").0, CheckVerdict::Up);
    let (v, m) = run(&set, "tcp_connect", closed_port(), "", &[]).await.expect("runs");
    assert_eq!((v, m.as_str()), (CheckVerdict::Down, "connection refused"));
}

#[tokio::test]
async fn http_check_example_matches_status_and_body() {
    let srv = http_server(Duration::ZERO, false).await;
    let set = load(&[example("http_check")]).expect("loads");
    let cases = [
        ("path=/health status=200 body=good", CheckVerdict::Up, "status and body match"),
        ("path=/health", CheckVerdict::Up, "status and body match"),
        ("path=/health status=200 body=bad", CheckVerdict::Down, "body does not match"),
        ("path=/fail status=200", CheckVerdict::Down, "unexpected status"),
        ("path=/fail status=500-599 body=overloaded", CheckVerdict::Up, "status and body match"),
        ("path=/nope", CheckVerdict::Down, "unexpected status"),
    ];
    for (args, verdict, message) in cases {
        let (v, m) = run(&set, "http_check", srv.addr, args, &[]).await.expect("runs");
        assert_eq!((v, m.as_str()), (verdict, message), "args {args}");
    }
    let (v, m) = run(&set, "http_check", closed_port(), "path=/health", &[]).await.expect("runs");
    assert_eq!((v, m.as_str()), (CheckVerdict::Down, "request failed"));
}

/// A server that answers every request with `head` and then `repeat`, forever or `times` times.
async fn endless_server(head: &'static [u8], repeat: &'static [u8], times: Option<usize>) -> Server {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let task = tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            h.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut req = [0u8; 1024];
                let _ = s.read(&mut req).await;
                if s.write_all(head).await.is_err() {
                    return;
                }
                let mut n = 0;
                while times.is_none_or(|t| n < t) && s.write_all(repeat).await.is_ok() {
                    n += 1;
                }
            });
        }
    });
    Server { addr, hits, task }
}

#[tokio::test]
async fn http_get_host_call_bounds_chunked_bodies() {
    const HEAD: &[u8] = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    let set = load(&[example("http_check")]).expect("loads");
    // Endless chunks: the body is cut at the policy's max_body and the call answers at once.
    let bomb = endless_server(HEAD, b"8\r\nzzzzzzzz\r\n", None).await;
    let t = Instant::now();
    let (v, m) = run(&set, "http_check", bomb.addr, "path=/ body=zzzz", &[]).await.expect("runs");
    assert_eq!((v, m.as_str()), (CheckVerdict::Up, "status and body match"));
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    // The largest chunk size, then data: cut the same way.
    let huge = endless_server(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\n", b"zzzz", None).await;
    let (v, m) = run(&set, "http_check", huge.addr, "path=/ body=zzzz", &[]).await.expect("runs");
    assert_eq!((v, m.as_str()), (CheckVerdict::Up, "status and body match"));
    // ... then the connection closing inside it, or a size past 64 bits: a failed call.
    for head in [&b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\nab"[..], b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\n"] {
        let srv = endless_server(head, b"", Some(0)).await;
        let (v, m) = run(&set, "http_check", srv.addr, "path=/", &[]).await.expect("runs");
        assert_eq!((v, m.as_str()), (CheckVerdict::Down, "request failed"));
    }
    // A normal chunked body.
    let ok = endless_server(HEAD, b"4\r\ngood\r\n0\r\n\r\n", Some(1)).await;
    let (v, m) = run(&set, "http_check", ok.addr, "path=/ body=good", &[]).await.expect("runs");
    assert_eq!((v, m.as_str()), (CheckVerdict::Up, "status and body match"));
}

#[tokio::test]
async fn combined_example_needs_both_probes_and_allowed_targets() {
    let service = tcp_server().await;
    let health = http_server(Duration::ZERO, false).await;
    let set = load(&[example("combined")]).expect("loads");
    let args = format!("health={} path=/health", health.addr);
    let health_get = [PolicyTarget::new(HostCall::HttpGet, health.addr)];
    let (v, m) = run(&set, "combined", service.addr, &args, &health_get).await.expect("runs");
    assert_eq!((v, m.as_str()), (CheckVerdict::Up, "service port and health endpoint fine"));
    let bad = format!("health={} path=/fail", health.addr);
    let (v, m) = run(&set, "combined", service.addr, &bad, &health_get).await.expect("runs");
    assert_eq!((v, m.as_str()), (CheckVerdict::Down, "health endpoint answers with an error status"));
    let (v, m) = run(&set, "combined", closed_port(), &args, &health_get).await.expect("runs");
    assert_eq!((v, m.as_str()), (CheckVerdict::Down, "service port does not accept connections"));
    // Without the health endpoint in the targets, or with it for another kind of call, the host
    // refuses the second probe.
    let hits = health.hits.load(Ordering::SeqCst);
    for extra in [vec![], vec![PolicyTarget::new(HostCall::TcpConnect, health.addr), PolicyTarget::new(HostCall::UdpProbe, health.addr)]] {
        let (v, m) = run(&set, "combined", service.addr, &args, &extra).await.expect("runs");
        assert_eq!((v, m.as_str()), (CheckVerdict::Down, "health endpoint unreachable"));
    }
    assert_eq!(health.hits.load(Ordering::SeqCst), hits);
}

#[tokio::test]
async fn latency_priority_example_via_vrrp_script() {
    let srv = http_server(Duration::from_millis(300), false).await;
    let conf = format!(
        "vrrp_script fast {{\n policy latency_priority\n args target={a} path=/health threshold_ms=100 delta=-25\n targets {{\n  http_get {ip} {port}\n }}\n}}\n\
         vrrp_script slow {{\n policy latency_priority\n args target={a} path=/slow threshold_ms=100 delta=-25\n targets {{\n  {ip} {port}\n }}\n}}\n\
         vrrp_script gone {{\n policy latency_priority\n args target={c} threshold_ms=100\n targets {{\n  http_get {cip} {cport}\n }}\n}}\n\
         vrrp_script sneaky {{\n policy latency_priority\n args target={a} path=/health\n}}\n\
         vrrp_script wrong_kind {{\n policy latency_priority\n args target={a} path=/health\n targets {{\n  tcp_connect {ip} {port}\n  udp_probe {ip} {port}\n }}\n}}\n",
        a = srv.addr,
        ip = srv.addr.ip(),
        port = srv.addr.port(),
        c = closed_port(),
        cip = "127.0.0.1",
        cport = closed_port().port(),
    );
    let loaded = load_str(Path::new("k.conf"), &conf).expect("config");
    // `slow` uses the older form (bare pairs: every kind), with a warning.
    assert_eq!(loaded.warnings.len(), 1, "{:?}", loaded.warnings);
    let c = loaded.config;
    let set = PolicySet::load_with(&[example("latency_priority")], &c, limits()).expect("loads");
    let req = PriorityRequest { instance: "VI_1", state: State::Master, priority: 100, effective: 100, args: "", now_ms: 0 };
    let o = set.priority("fast", req).await.expect("runs");
    assert_eq!((o.verdict, o.message.as_str()), (PriorityVerdict::Delta(0), "latency fine"));
    let o = set.priority("slow", req).await.expect("runs");
    assert_eq!((o.verdict, o.message.as_str()), (PriorityVerdict::Delta(-25), "latency over threshold"));
    let o = set.priority("gone", req).await.expect("runs");
    assert_eq!((o.verdict, o.message.as_str()), (PriorityVerdict::Fault, "probe failed"));
    // No targets: the probe is refused, which this policy turns into FAULT.
    let hits = srv.hits.load(Ordering::SeqCst);
    let o = set.priority("sneaky", req).await.expect("runs");
    assert_eq!(o.verdict, PriorityVerdict::Fault);
    // Allowed for tcp_connect and udp_probe only: its http_get is refused as well.
    let o = set.priority("wrong_kind", req).await.expect("runs");
    assert_eq!(o.verdict, PriorityVerdict::Fault);
    assert_eq!(srv.hits.load(Ordering::SeqCst), hits);
    let e = set.priority("nothing", req).await.expect_err("unknown");
    assert!(matches!(e, PolicyError::Unknown(_)), "{e}");
}

#[tokio::test]
async fn policy_runner_trait_and_history() {
    let srv = tcp_server().await;
    let conf = format!(
        "virtual_server 10.0.0.1 80 {{\n real_server {} {} {{\n  WASM_CHECK {{\n   policy {}\n  }}\n }}\n}}\n",
        srv.addr.ip(),
        srv.addr.port(),
        example("static_verdict").display()
    );
    let c = load_str(Path::new("k.conf"), &conf).expect("config").config;
    let set = PolicySet::load_with(&[example("tcp_connect")], &c, limits()).expect("loads");
    let hav_linux::config::CheckKind::Wasm(w) = &c.virtual_servers[0].real_servers[0].checkers[0].kind else {
        panic!("not a WASM_CHECK")
    };
    let runner: Arc<dyn PolicyRunner> = Arc::new(set.clone());
    assert_eq!(runner.check(w, srv.addr, Duration::from_secs(2)).await, Ok(Health::Up));
    let mut down = w.clone();
    down.args = Some("verdict=down".into());
    assert_eq!(runner.check(&down, srv.addr, Duration::from_secs(2)).await, Ok(Health::Down));
    let mut weight = w.clone();
    weight.args = Some("verdict=weight:7".into());
    assert_eq!(runner.check(&weight, srv.addr, Duration::from_secs(2)).await, Ok(Health::UpWeight(7)));
    let mut tcp = w.clone();
    tcp.policy = "tcp_connect".into();
    assert_eq!(runner.check(&tcp, srv.addr, Duration::from_secs(2)).await, Ok(Health::Up));
    let mut bad = w.clone();
    bad.policy = "nope".into();
    let e = runner.check(&bad, srv.addr, Duration::from_secs(2)).await.expect_err("unknown policy");
    assert!(e.contains("unknown policy 'nope'"), "{e}");
}

// ---- the caller's runtime keeps its timing --------------------------------------------------

#[tokio::test(flavor = "current_thread")]
async fn looping_policies_do_not_delay_the_callers_timer() {
    let p = write_wat("spin_timer", &wat_check("", "(loop $l (br $l)) (i64.const 0)"));
    let set = PolicySet::load_with(&[p], &Config::default(), PolicyLimits { cpu: Duration::from_millis(100), ..limits() })
        .expect("loads");
    let target = closed_port();
    let mut runs = Vec::new();
    for _ in 0..4 {
        let set = set.clone();
        runs.push(tokio::spawn(async move {
            let mut errors = Vec::new();
            for _ in 0..3 {
                errors.push(run(&set, "spin_timer", target, "", &[]).await.expect_err("loops"));
            }
            errors
        }));
    }
    // The stand-in for VRRP adverts: a 100 ms interval on the caller's (single-threaded) runtime.
    let period = Duration::from_millis(100);
    let start = tokio::time::Instant::now();
    let mut tick = tokio::time::interval_at(start + period, period);
    let mut worst = Duration::ZERO;
    for i in 1..=12u32 {
        tick.tick().await;
        let late = tokio::time::Instant::now().saturating_duration_since(start + period * i);
        worst = worst.max(late);
    }
    for r in runs {
        for e in r.await.expect("task") {
            assert!(matches!(e, PolicyError::CpuBudget { .. }), "{e}");
        }
    }
    println!("worst timer lateness with 4 looping policies: {worst:?}");
    assert!(worst < Duration::from_millis(50), "timer was {worst:?} late");
}

// ---- DNS and UDP host calls -----------------------------------------------------------------

/// A UDP server on loopback: a DNS responder (answers NOERROR with one A record for
/// `ok.test`, NXDOMAIN otherwise) when `dns`, an echo server (prefixing "echo:") otherwise.
async fn udp_server(dns: bool) -> Server {
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let addr = sock.local_addr().expect("addr");
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let task = tokio::spawn(async move {
        let mut buf = [0u8; 1500];
        while let Ok((n, from)) = sock.recv_from(&mut buf).await {
            h.fetch_add(1, Ordering::SeqCst);
            let q = &buf[..n];
            let reply = if dns {
                if n < 12 {
                    continue;
                }
                let ok = q[12..].starts_with(b"\x02ok\x04test\x00");
                let mut r = q.to_vec();
                r[2] = 0x81; // QR, RD
                r[3] = if ok { 0x80 } else { 0x83 }; // RA, rcode 0 / 3
                r[6..8].copy_from_slice(&(u16::from(ok)).to_be_bytes());
                if ok {
                    r.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1]);
                }
                r
            } else {
                [b"echo:".as_slice(), q].concat()
            };
            let _ = sock.send_to(&reply, from).await;
        }
    });
    Server { addr, hits, task }
}

#[tokio::test]
async fn probe_example_dns_and_udp() {
    let dns = udp_server(true).await;
    let echo = udp_server(false).await;
    let set = load(&[example("probe")]).expect("loads");
    let cases = [
        (dns.addr, "kind=dns name=ok.test", CheckVerdict::Up, "DNS answer"),
        (dns.addr, "kind=dns name=ok.test. qtype=1", CheckVerdict::Up, "DNS answer"),
        (dns.addr, "kind=dns name=missing.test", CheckVerdict::Down, "DNS error rcode"),
        (dns.addr, "kind=dns name=ok.test min_answers=2", CheckVerdict::Down, "too few answers"),
        (echo.addr, "kind=udp payload=ping expect=echo:ping", CheckVerdict::Up, "UDP reply"),
        (echo.addr, "kind=udp payload=ping expect=pong", CheckVerdict::Down, "reply does not match"),
        (echo.addr, &format!("kind=dns name=ok.test server={}", dns.addr), CheckVerdict::Down, "target not allowed"),
    ];
    for (target, args, verdict, message) in cases {
        let (v, m) = run(&set, "probe", udp_server_target(target), args, &[]).await.expect("runs");
        assert_eq!((v, m.as_str()), (verdict, message), "args {args}");
    }
    // The DNS server named in args is reachable once it is in the targets for dns_query, not
    // for udp_probe.
    let args = format!("kind=dns name=ok.test server={}", dns.addr);
    let (v, _) = run(&set, "probe", udp_server_target(echo.addr), &args, &[PolicyTarget::new(HostCall::DnsQuery, dns.addr)]).await.expect("runs");
    assert_eq!(v, CheckVerdict::Up);
    let (v, m) = run(&set, "probe", udp_server_target(echo.addr), &args, &[PolicyTarget::new(HostCall::UdpProbe, dns.addr)]).await.expect("runs");
    assert_eq!((v, m.as_str()), (CheckVerdict::Down, "target not allowed"));
    // A real server of a TCP virtual server takes no UDP or DNS host calls.
    let hits = (dns.hits.load(Ordering::SeqCst), echo.hits.load(Ordering::SeqCst));
    let (v, m) = run(&set, "probe", dns.addr, "kind=dns name=ok.test", &[]).await.expect("runs");
    assert_eq!((v, m.as_str()), (CheckVerdict::Down, "target not allowed"));
    let (v, m) = run(&set, "probe", echo.addr, "kind=udp payload=ping", &[]).await.expect("runs");
    assert_eq!((v, m.as_str()), (CheckVerdict::Down, "target not allowed"));
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!((dns.hits.load(Ordering::SeqCst), echo.hits.load(Ordering::SeqCst)), hits);
    // Nothing listens: ICMP port unreachable, or no answer.
    let silent = {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        s.local_addr().expect("addr")
    };
    let (v, m) = run(&set, "probe", udp_server_target(silent), "kind=udp payload=x timeout_ms=300", &[]).await.expect("runs");
    assert_eq!(v, CheckVerdict::Down);
    assert!(m == "port unreachable" || m == "no answer in time", "{m}");
}

#[tokio::test]
async fn host_call_budget_and_input_cap() {
    let srv = tcp_server().await;
    // Calls host_call 17 times (the budget is 16 per run); answers Down "budget" when the last
    // call was refused with HostError::Budget (-7), Up otherwise.
    let req = postcard::to_allocvec(&HostRequest::TcpConnect {
        target: Target { addr: srv.addr.ip(), port: srv.addr.port(), proto: Proto::Tcp },
        timeout_ms: 1000,
    })
    .expect("encode");
    let refused = postcard::to_allocvec(&CheckResponse { verdict: CheckVerdict::Down, message: "budget" }).expect("encode");
    let fine = postcard::to_allocvec(&CheckResponse { verdict: CheckVerdict::Up, message: "no budget" }).expect("encode");
    let extra = format!(
        r#"(import "hav" "host_call" (func $hc (param i32 i32 i32 i32) (result i32)))
  (data (i32.const 0) "{}") (data (i32.const 256) "{}") (data (i32.const 512) "{}")
  (global $n (mut i32) (i32.const 0)) (global $last (mut i32) (i32.const 0))"#,
        wat_bytes(&req),
        wat_bytes(&refused),
        wat_bytes(&fine)
    );
    let body = format!(
        "(loop $l (global.set $last (call $hc (i32.const 0) (i32.const {len}) (i32.const 8192) (i32.const 1024)))
           (global.set $n (i32.add (global.get $n) (i32.const 1)))
           (br_if $l (i32.lt_u (global.get $n) (i32.const 17))))
         (if (result i64) (i32.eq (global.get $last) (i32.const -7)) (then (i64.const {a})) (else (i64.const {b})))",
        len = req.len(),
        a = hav_core::policy::pack(256, refused.len() as u32),
        b = hav_core::policy::pack(512, fine.len() as u32),
    );
    let set = load(&[write_wat("callspam", &wat_check(&extra, &body))]).expect("loads");
    let (v, m) = run(&set, "callspam", srv.addr, "", &[]).await.expect("runs");
    assert_eq!((v, m.as_str()), (CheckVerdict::Down, "budget"));
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(srv.hits.load(Ordering::SeqCst), 16, "the 17th call must not reach the server");

    let set = load(&[example("static_verdict")]).expect("loads");
    let big = "x".repeat(70 * 1024);
    let e = run(&set, "static_verdict", srv.addr, &big, &[]).await.expect_err("too big");
    assert!(matches!(e, PolicyError::InputTooLarge { cap: 65536, .. }), "{e}");
}

#[test]
fn duplicate_policy_names_are_rejected() {
    let a = temp_dir().join("a");
    let b = temp_dir().join("b");
    std::fs::create_dir_all(&a).expect("mkdir");
    std::fs::create_dir_all(&b).expect("mkdir");
    let text = wat_check("", "(i64.const 0)");
    std::fs::write(a.join("same.wat"), &text).expect("write");
    std::fs::write(b.join("same.wat"), &text).expect("write");
    let e = load(&[a.join("same.wat"), b.join("same.wat")]).expect_err("duplicate");
    assert!(matches!(e, PolicyError::DuplicateName { ref name, .. } if name == "same"), "{e}");
    // The same file twice is one policy.
    let set = load(&[a.join("same.wat"), a.join("same.wat")]).expect("loads");
    assert_eq!(set.names(), vec!["same".to_string()]);
}

#[path = "check_support/mod.rs"]
mod check_support;

#[tokio::test]
async fn https_host_call_with_sni() {
    let server = check_support::TlsServer::start(None).await;
    let set = load(&[example("http_check")]).expect("load");
    let (v, msg) = run(&set, "http_check", server.addr, "tls=1 host=app.hav.test path=/ status=200", &[]).await.expect("run");
    assert_eq!(v, CheckVerdict::Up, "{msg}");
    assert_eq!(server.sni().as_deref(), Some("app.hav.test"));
    assert!(server.requests().iter().any(|r| r.contains("Host: app.hav.test")), "{:?}", server.requests());
    // Plain HTTP to a TLS port is not an answer.
    let (v, _) = run(&set, "http_check", server.addr, "path=/ timeout_ms=500", &[]).await.expect("run");
    assert_eq!(v, CheckVerdict::Down);
}

// ---- hostile policies: load time, logs, floods (issue 15) ------------------------------------

/// Runs `f` on a thread of its own with a current-thread runtime and a subscriber that
/// collects every line at debug level and up. With `workers: 0` in the set's limits, the
/// policy runs (and logs) on that thread.
fn with_logs<T: Send + 'static>(f: impl FnOnce(&tokio::runtime::Runtime) -> T + Send + 'static) -> (T, String) {
    std::thread::spawn(move || {
        let logs = LogBuf::default();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let capture = capture_logs(logs.clone());
        let out = f(&rt);
        drop(capture);
        (out, logs.text())
    })
    .join()
    .expect("thread")
}

/// Limits of their own (one engine per distinct limits), running inline so logs land on the
/// test's thread.
fn inline_limits(tag: u32) -> PolicyLimits {
    PolicyLimits { workers: 0, max_concurrency: 100 + tag, cpu: Duration::from_secs(2), ..limits() }
}

/// The CheckResponse `Up "ok"` at offset 512, and the packed pointer/length returning it.
fn up_ok() -> (String, i64) {
    let ok = postcard::to_allocvec(&CheckResponse { verdict: CheckVerdict::Up, message: "ok" }).expect("encode");
    (format!(r#"(data (i32.const 512) "{}")"#, wat_bytes(&ok)), hav_core::policy::pack(512, ok.len() as u32))
}

#[test]
fn huge_data_segment_and_memory_are_refused_at_load_with_the_policy_name() {
    let small = PolicyLimits { memory: 1 << 20, ..limits() };
    // 2 MiB of active data against a 1 MiB memory cap; the module itself declares one page.
    let data = "a".repeat(2 << 20);
    let p = write_wat("bigdata", &wat_check(&format!(r#"(data (i32.const 0) "{data}")"#), "(i64.const 0)"));
    let t = Instant::now();
    let e = PolicySet::load_with(&[p], &Config::default(), small.clone()).expect_err("refused");
    assert!(matches!(e, PolicyError::DataTooLarge { ref policy, active, cap, .. } if policy == "bigdata" && active == 2 << 20 && cap == 1 << 20), "{e}");
    assert!(e.to_string().starts_with("policy bigdata ("), "{e}");
    assert!(e.to_string().contains("active data segments of 2097152 bytes, more than the memory cap of 1048576"), "{e}");
    assert!(t.elapsed() < Duration::from_secs(5), "refused before compiling: {:?}", t.elapsed());
    // Passive segments are copied only by memory.init, within memory: not counted.
    let p = write_wat("passive", &wat_check(r#"(data "passive bytes")"#, "(i64.const 0)"));
    PolicySet::load_with(&[p], &Config::default(), small.clone()).expect("passive data loads");
    // An initial memory past the cap.
    let p = write_wat("bigmem", &wat_check("", "(i64.const 0)").replace(r#"(memory (export "memory") 1)"#, r#"(memory (export "memory") 17)"#));
    let e = PolicySet::load_with(&[p], &Config::default(), small).expect_err("refused");
    assert!(matches!(e, PolicyError::MemoryTooLarge { ref policy, declared, .. } if policy == "bigmem" && declared == 17 << 16), "{e}");
}

/// A module (binary, in the temp dir) with a lot of straight-line code: `functions` functions
/// of `ops` additions each.
fn big_code(name: &str, functions: usize, ops: usize) -> PathBuf {
    let body = "(local.set 0 (i32.add (local.get 0) (local.get 1)))".repeat(ops);
    let funcs: String = (0..functions).map(|i| format!("(func $f{i} (param i32 i32) (result i32) {body} (local.get 0))\n")).collect();
    let bytes = wat::parse_str(wat_check(&funcs, "(i64.const 0)")).expect("wat");
    let p = temp_dir().join(format!("{name}.wasm"));
    std::fs::write(&p, bytes).expect("write");
    p
}

#[test]
fn slow_compiling_module_is_abandoned_at_its_deadline() {
    // Tens of thousands of instructions per function: far over 10 ms of compiling anywhere.
    let p = big_code("slowcompile", 40, 8_000);
    let tight = PolicyLimits { compile_timeout: Duration::from_millis(10), max_concurrency: 90, ..limits() };
    let mut errors = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        let e = PolicySet::load_with(std::slice::from_ref(&p), &Config::default(), tight.clone()).expect_err("too slow");
        errors.push((e, t.elapsed()));
    }
    for (e, took) in &errors {
        assert!(matches!(e, PolicyError::CompileTimeout { ref policy, .. } if policy == "slowcompile"), "{e}");
        assert!(*took < Duration::from_secs(3), "the load waited {took:?}");
    }
    // Two abandoned compiles still run: the third does not start a third thread.
    assert!(errors[0].0.to_string().contains("not compiled within 10ms: compiling took longer"), "{}", errors[0].0);
    assert!(errors[2].0.to_string().contains("earlier compiles past their deadline still run"), "{}", errors[2].0);
}

#[test]
fn function_over_the_size_cap_is_refused_before_compiling() {
    let capped = PolicyLimits { max_function_size: 16 << 10, max_concurrency: 91, ..limits() };
    let p = big_code("bigfunc", 1, 4_000);
    let t = Instant::now();
    let e = PolicySet::load_with(&[p], &Config::default(), capped.clone()).expect_err("refused");
    assert!(matches!(e, PolicyError::TooComplex { ref policy, ref message, .. } if policy == "bigfunc" && message.starts_with("function 0 has ") && message.ends_with("bytes of code, more than the cap of 16384")), "{e}");
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    let many = PolicyLimits { max_functions: 10, ..capped };
    let e = PolicySet::load_with(&[big_code("manyfuncs", 20, 1)], &Config::default(), many).expect_err("refused");
    assert!(e.to_string().contains("functions, more than the cap of 10"), "{e}");
}

#[test]
fn unchanged_modules_are_not_recompiled_on_reload() {
    let own = PolicyLimits { max_concurrency: 92, ..limits() };
    let dir = temp_dir().join("reload");
    std::fs::create_dir_all(&dir).expect("dir");
    let a = dir.join("a.wat");
    let b = dir.join("b.wat");
    std::fs::write(&a, wat_check("", "(i64.const 0)")).expect("write");
    std::fs::write(&b, wat_check("", "(i64.const 1)")).expect("write");
    let first = PolicySet::load_with(&[a.clone(), b.clone()], &Config::default(), own.clone()).expect("loads");
    let base = first.module_stats();
    assert_eq!((base.compiled, base.reused), (2, 0));
    // A reload while the first set still runs: b changed, a did not.
    std::fs::write(&b, wat_check("", "(i64.const 2)")).expect("write");
    let second = PolicySet::load_with(&[a.clone(), b.clone()], &Config::default(), own.clone()).expect("loads");
    let s = second.module_stats();
    assert_eq!((s.compiled, s.reused), (3, 1), "only the changed module is compiled");
    // The same bytes under another name are the same module.
    let c = dir.join("c.wat");
    std::fs::copy(&a, &c).expect("copy");
    let third = PolicySet::load_with(&[a, b, c], &Config::default(), own).expect("loads");
    let s = third.module_stats();
    assert_eq!((s.compiled, s.reused), (3, 4));
    assert_eq!(third.names(), vec!["a".to_string(), "b".to_string(), "c".to_string()]);
}

#[test]
fn log_flood_is_bounded_and_cannot_forge_lines() {
    let (resp, packed) = up_ok();
    let msg = "guest says hi\nINFO hav: forged line\r\x1b[2K";
    let extra = format!(
        r#"(import "hav" "log" (func $log (param i32 i32 i32))) (data (i32.const 0) "{}") {resp}"#,
        wat_bytes(msg.as_bytes())
    );
    let body = format!(
        "(local $i i32) (loop $l (call $log (i32.const 2) (i32.const 0) (i32.const {len}))
           (local.set $i (i32.add (local.get $i) (i32.const 1)))
           (br_if $l (i32.lt_u (local.get $i) (i32.const 5000))))
         (i64.const {packed})",
        len = msg.len()
    );
    let p = write_wat("logflood", &wat_check(&extra, &body));
    let target = closed_port();
    let ((), logs) = with_logs(move |rt| {
        let set = PolicySet::load_with(&[p], &Config::default(), inline_limits(1)).expect("loads");
        for _ in 0..5 {
            let (v, _) = rt.block_on(run(&set, "logflood", target, "", &[])).expect("runs");
            assert_eq!(v, CheckVerdict::Up, "the flood does not fail the check");
        }
    });
    let guest: Vec<&str> = logs.lines().filter(|l| l.contains("guest says hi")).collect();
    assert_eq!(guest.len(), 16 + 4, "16 lines in the first run, then the policy's rate (20 per 10 s):\n{logs}");
    assert!(guest.iter().all(|l| l.contains(r"guest says hi\nINFO hav: forged line\r\u{1b}[2K")), "{guest:?}");
    assert!(!logs.lines().any(|l| l.starts_with("INFO hav: forged")), "a guest forged a line:\n{logs}");
    // One summary line per run (at most 3 per 10 s for one policy and caller).
    let summaries: Vec<&str> = logs.lines().filter(|l| l.contains("policy check ran") && l.contains("guest log lines dropped")).collect();
    assert_eq!(summaries.len(), 3, "{logs}");
    assert!(summaries[0].contains("guest log lines dropped: 4984"), "{}", summaries[0]);
}

/// A policy hammering the host with calls to an endpoint it may not reach, 20,000 times in
/// one run: every call is refused without I/O, the run ends, and the log has one line for it.
#[test]
fn host_call_flood_to_loopback_and_metadata_gets_one_line_per_run() {
    let srv = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let lo = srv.local_addr().expect("addr");
    srv.set_nonblocking(true).expect("nonblocking");
    let metadata: SocketAddr = "169.254.169.254:80".parse().expect("addr");
    let (resp, packed) = up_ok();
    let mut paths = Vec::new();
    for (name, to) in [("flood_lo", lo), ("flood_metadata", metadata)] {
        let req = postcard::to_allocvec(&HostRequest::TcpConnect {
            target: Target { addr: to.ip(), port: to.port(), proto: Proto::Tcp },
            timeout_ms: 1000,
        })
        .expect("encode");
        let extra = format!(
            r#"(import "hav" "host_call" (func $hc (param i32 i32 i32 i32) (result i32))) (data (i32.const 0) "{}") {resp}"#,
            wat_bytes(&req)
        );
        let body = format!(
            "(local $i i32) (loop $l (drop (call $hc (i32.const 0) (i32.const {len}) (i32.const 8192) (i32.const 1024)))
               (local.set $i (i32.add (local.get $i) (i32.const 1)))
               (br_if $l (i32.lt_u (local.get $i) (i32.const 20000))))
             (i64.const {packed})",
            len = req.len()
        );
        paths.push(write_wat(name, &wat_check(&extra, &body)));
    }
    let (took, logs) = with_logs(move |rt| {
        let set = PolicySet::load_with(&paths, &Config::default(), inline_limits(2)).expect("loads");
        let t = Instant::now();
        for name in ["flood_lo", "flood_metadata"] {
            for _ in 0..2 {
                let (v, _) = rt.block_on(run(&set, name, closed_port(), "", &[])).expect("runs");
                assert_eq!(v, CheckVerdict::Up);
            }
        }
        t.elapsed()
    });
    assert!(srv.accept().is_err(), "a refused call reached the loopback server");
    println!("4 runs of 20,000 refused host calls: {took:?}");
    for (name, to) in [("flood_lo", lo), ("flood_metadata", metadata)] {
        let lines: Vec<&str> = logs.lines().filter(|l| l.contains(&format!("policy=\"{name}\"")) && !l.contains("policy loaded")).collect();
        assert_eq!(lines.len(), 2, "one line per run for {name}:\n{logs}");
        let why = format!("host calls refused: 16 (first: tcp_connect to {to}: {to} is not among the endpoints this policy may reach); host calls past the per-run budget: 19984");
        assert!(lines.iter().all(|l| l.contains("WARN") && l.contains(&why)), "{lines:?}");
    }
}

/// A priority policy whose `targets` name a server that answers with an endless chunked body:
/// the body is cut at the policy's max_body, the run ends at once, and the verdict stands.
#[tokio::test]
async fn chunked_body_bomb_from_a_listed_server() {
    let bomb = endless_server(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", b"1000\r\nzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz", None).await;
    let conf = format!(
        "vrrp_script bomb {{\n policy latency_priority\n args target={a} path=/ threshold_ms=2000 delta=-25\n targets {{\n  http_get {ip} {port}\n }}\n}}\n",
        a = bomb.addr,
        ip = bomb.addr.ip(),
        port = bomb.addr.port()
    );
    let c = load_str(Path::new("k.conf"), &conf).expect("config").config;
    let set = PolicySet::load_with(&[example("latency_priority")], &c, limits()).expect("loads");
    let req = PriorityRequest { instance: "VI_1", state: State::Master, priority: 100, effective: 100, args: "", now_ms: 0 };
    for _ in 0..3 {
        let t = Instant::now();
        let o = set.priority("bomb", req).await.expect("runs");
        assert_eq!((o.verdict, o.message.as_str()), (PriorityVerdict::Delta(0), "latency fine"));
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    }
}

/// `PolicySet::priority(...).await` runs the policy on the policy runtime: the caller's thread
/// spends next to no CPU while a policy burns its whole budget.
#[test]
fn priority_runs_on_the_policy_runtime_not_the_callers() {
    fn thread_cpu() -> Duration {
        let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID).expect("clock");
        Duration::new(t.tv_sec() as u64, t.tv_nsec() as u32)
    }
    let wat = r#"(module
  (memory (export "memory") 1)
  (func (export "hav_abi_version") (result i32) (i32.const 1))
  (func (export "hav_alloc") (param i32) (result i32) (i32.const 4096))
  (func (export "hav_priority") (param i32 i32) (result i64) (loop $l (br $l)) (i64.const 0)))"#;
    let p = write_wat("spin_priority", wat);
    let set = PolicySet::load_with(&[p], &Config::default(), PolicyLimits { cpu: Duration::from_millis(200), ..limits() }).expect("loads");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let req = PriorityRequest { instance: "VI_1", state: State::Master, priority: 100, effective: 100, args: "", now_ms: 0 };
    let before = thread_cpu();
    let e = rt.block_on(set.priority("spin_priority", req)).expect_err("spins");
    let used = thread_cpu() - before;
    assert!(matches!(e, PolicyError::CpuBudget { .. }), "{e}");
    assert!(used < Duration::from_millis(50), "the caller's thread ran the policy: {used:?} of CPU");
}
