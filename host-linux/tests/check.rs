//! hav-linux's health checkers (`check/`) against real servers started by the tests on
//! loopback (HTTP, TLS with a self-signed certificate, SMTP, DNS, UDP echo, a refusing TCP
//! port), real scripts and files, and ICMP in a network namespace.
//!
//! Each failure mode must flip the verdict once the retries are used up, and the verdict must
//! recover when the server comes back. Delay loops are 100 ms so the suite is quick; the waits
//! are generous (seconds) so a loaded machine does not fail them.

mod check_support;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use hav_linux::check::Checkers;
use hav_linux::config::check::WasmCheck;
use hav_linux::config::{load_str, Config};
use hav_linux::health::{Health, HealthEvent, PolicyRunner};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};

use check_support::*;

/// A config of one virtual server with one real server at `rs` holding `checker`.
fn one(rs: SocketAddr, checker: &str) -> Config {
    conf(&format!(
        "virtual_server 10.255.0.1 80 {{\n delay_loop 0.1\n real_server {} {} {{\n{checker}\n }}\n}}\n",
        rs.ip(),
        rs.port()
    ))
}

fn conf(text: &str) -> Config {
    match load_str(Path::new("check.conf"), text) {
        Ok(l) => l.config,
        Err(e) => panic!("config does not load: {e}\n{text}"),
    }
}

/// Waits (up to 10 s) for the next event and returns it.
async fn next(rx: &mut UnboundedReceiver<HealthEvent>) -> HealthEvent {
    match tokio::time::timeout(Duration::from_secs(10), rx.recv()).await {
        Ok(Some(e)) => e,
        Ok(None) => panic!("event channel closed"),
        Err(_) => panic!("no health event within 10 s"),
    }
}

/// The next event must be `want` (for checker 0).
async fn expect(rx: &mut UnboundedReceiver<HealthEvent>, want: Health, why: &str) {
    let e = next(rx).await;
    assert_eq!((e.checker, e.health), (0, want), "{why}: got {e:?}");
}

/// No event arrives within `d`.
async fn quiet(rx: &mut UnboundedReceiver<HealthEvent>, d: Duration, why: &str) {
    if let Ok(Some(e)) = tokio::time::timeout(d, rx.recv()).await {
        panic!("{why}: unexpected event {e:?}");
    }
}

const FAST: &str = "delay_loop 0.1\n warmup 0\n connect_timeout 1\n retry 2\n delay_before_retry 0.05\n alpha";
/// The same for MISC_CHECK, which has no connect_timeout in keepalived (misc_timeout instead).
const FAST_MISC: &str = "delay_loop 0.1\n warmup 0\n retry 2\n delay_before_retry 0.05\n alpha";

#[tokio::test]
async fn test_tcp_check_refused_and_back() {
    let srv = TcpServer::start(None).await;
    let addr = srv.addr;
    let (tx, mut rx) = unbounded_channel();
    let c = Checkers::start(&one(addr, &format!("TCP_CHECK {{\n{FAST}\n}}")), tx, None);
    assert_eq!(c.len(), 1);
    expect(&mut rx, Health::Down, "alpha: initial state down").await;
    expect(&mut rx, Health::Up, "listener accepts").await;
    quiet(&mut rx, Duration::from_millis(400), "steady up").await;
    assert!(srv.accepted.load(Ordering::Relaxed) >= 2, "checks keep coming");
    drop(srv); // the port now refuses
    expect(&mut rx, Health::Down, "port refuses").await;
    quiet(&mut rx, Duration::from_millis(300), "steady down").await;
    let _srv = TcpServer::start(Some(addr)).await;
    expect(&mut rx, Health::Up, "listener back").await;
    c.shutdown();
}

#[tokio::test]
async fn test_tcp_check_connect_port_bindto_and_initial_up() {
    // The real server's own port is closed; connect_port points at the listener.
    let srv = TcpServer::start(None).await;
    let rs: SocketAddr = "127.0.0.1:9".parse().unwrap();
    // The checker binds to 127.0.0.2 and a fixed source port.
    let src_port = std::net::TcpListener::bind("127.0.0.2:0").unwrap().local_addr().unwrap().port();
    let cfg = one(
        rs,
        &format!(
            "TCP_CHECK {{\n connect_ip 127.0.0.1\n connect_port {}\n bindto 127.0.0.2\n bind_port {src_port}\n delay_loop 0.1\n warmup 0\n}}",
            srv.addr.port()
        ),
    );
    let (tx, mut rx) = unbounded_channel();
    let _c = Checkers::start(&cfg, tx, None);
    let e = next(&mut rx).await;
    assert_eq!(e.health, Health::Up, "no alpha: starts up");
    assert_eq!(e.rs.rs, rs, "events name the real server, not the connect address");
    quiet(&mut rx, Duration::from_millis(400), "stays up").await;
    assert!(srv.accepted.load(Ordering::Relaxed) >= 2, "checks go to connect_port");
    let want: SocketAddr = format!("127.0.0.2:{src_port}").parse().unwrap();
    assert!(srv.peers.lock().unwrap().iter().all(|p| *p == want), "bindto/bind_port: {:?}", srv.peers.lock().unwrap());
}

#[tokio::test]
async fn test_http_get_status_digest_regex() {
    let srv = HttpServer::start().await;
    let body_md5 = md5_hex(HttpServer::GOOD_BODY);
    let cfg = one(
        srv.addr,
        &format!(
            "HTTP_GET {{\n url {{\n path /health\n digest {body_md5}\n status_code 200-204\n }}\n virtualhost svc.example\n {FAST}\n}}\n\
             HTTP_GET {{\n url {{\n path /status\n regex \"status: (ok|fine)\"\n }}\n {FAST}\n}}"
        ),
    );
    let (tx, mut rx) = unbounded_channel();
    let c = Checkers::start(&cfg, tx, None);
    assert_eq!(c.len(), 2);
    let mut got = Vec::new();
    for _ in 0..4 {
        let e = next(&mut rx).await;
        got.push((e.checker, e.health));
    }
    got.sort_by_key(|(i, h)| (*i, *h == Health::Up));
    assert_eq!(got, vec![(0, Health::Down), (0, Health::Up), (1, Health::Down), (1, Health::Up)], "alpha, then both pass");
    assert!(srv.requests().iter().any(|r| r.starts_with("GET /health HTTP/1.0\r\n") && r.contains("\r\nHost: svc.example\r\n")), "{:?}", srv.requests());

    srv.set_mode(HttpMode::Status500);
    let mut got = [next(&mut rx).await, next(&mut rx).await];
    got.sort_by_key(|e| e.checker);
    assert_eq!((got[0].checker, got[0].health, got[1].checker, got[1].health), (0, Health::Down, 1, Health::Down), "500 fails both");
    srv.set_mode(HttpMode::Good);
    let mut got = [next(&mut rx).await, next(&mut rx).await];
    got.sort_by_key(|e| e.checker);
    assert_eq!((got[0].health, got[1].health), (Health::Up, Health::Up), "recovered");

    // A 200 with another body: the digest fails; the regex still matches ("status: fine").
    srv.set_mode(HttpMode::OtherBody);
    expect(&mut rx, Health::Down, "digest mismatch").await;
    quiet(&mut rx, Duration::from_millis(300), "the regex checker stays up").await;
    srv.set_mode(HttpMode::Good);
    expect(&mut rx, Health::Up, "digest matches again").await;

    // A body that fails the regex only.
    srv.set_mode(HttpMode::RegexFail);
    let e = next(&mut rx).await;
    assert_eq!((e.checker, e.health), (1, Health::Down), "regex does not match");
}

#[tokio::test]
async fn test_ssl_get_self_signed_with_sni() {
    let srv = TlsServer::start(None).await;
    let addr = srv.addr;
    let cfg = one(
        addr,
        &format!("SSL_GET {{\n url {{\n path /\n status_code 200\n }}\n virtualhost app.hav.test\n enable_sni\n {FAST}\n}}"),
    );
    let (tx, mut rx) = unbounded_channel();
    let c = Checkers::start(&cfg, tx, None);
    expect(&mut rx, Health::Down, "alpha").await;
    expect(&mut rx, Health::Up, "self-signed certificate accepted").await;
    assert_eq!(srv.sni().as_deref(), Some("app.hav.test"), "SNI sent");
    assert!(srv.requests().iter().any(|r| r.contains("\r\nHost: app.hav.test\r\n")));
    drop(srv);
    expect(&mut rx, Health::Down, "TLS server gone").await;
    let srv = TlsServer::start(Some(addr)).await;
    expect(&mut rx, Health::Up, "TLS server back").await;
    drop(srv);
    c.shutdown();

    // A plain-text server behind SSL_GET fails the handshake.
    let plain = HttpServer::start().await;
    let (tx, mut rx) = unbounded_channel();
    let _c = Checkers::start(&one(plain.addr, &format!("SSL_GET {{\n url {{\n path /\n }}\n {FAST}\n}}")), tx, None);
    expect(&mut rx, Health::Down, "alpha").await;
    quiet(&mut rx, Duration::from_millis(500), "no TLS, never up").await;
}

#[tokio::test]
async fn test_smtp_check() {
    let srv = SmtpServer::start().await;
    let cfg = one(srv.addr, &format!("SMTP_CHECK {{\n helo_name checker.hav.test\n {FAST}\n}}"));
    let (tx, mut rx) = unbounded_channel();
    let _c = Checkers::start(&cfg, tx, None);
    expect(&mut rx, Health::Down, "alpha").await;
    expect(&mut rx, Health::Up, "220 then 250").await;
    assert!(srv.helos().iter().any(|h| h == "HELO checker.hav.test"), "{:?}", srv.helos());
    srv.refuse.store(true, Ordering::Relaxed);
    expect(&mut rx, Health::Down, "554 greeting").await;
    srv.refuse.store(false, Ordering::Relaxed);
    expect(&mut rx, Health::Up, "greets again").await;
}

#[tokio::test]
async fn test_dns_check() {
    let srv = DnsServer::start().await;
    let cfg = one(srv.addr, &format!("DNS_CHECK {{\n type A\n name www.hav.test\n {FAST}\n}}"));
    let (tx, mut rx) = unbounded_channel();
    let _c = Checkers::start(&cfg, tx, None);
    expect(&mut rx, Health::Down, "alpha").await;
    expect(&mut rx, Health::Up, "NOERROR answer").await;
    assert!(srv.questions().iter().any(|q| q == &("www.hav.test".to_string(), 1)), "{:?}", srv.questions());
    srv.servfail.store(true, Ordering::Relaxed);
    expect(&mut rx, Health::Down, "SERVFAIL").await;
    srv.servfail.store(false, Ordering::Relaxed);
    expect(&mut rx, Health::Up, "answers again").await;
    srv.silent.store(true, Ordering::Relaxed);
    expect(&mut rx, Health::Down, "no answer").await;
    srv.silent.store(false, Ordering::Relaxed);
    expect(&mut rx, Health::Up, "answers again").await;
}

#[tokio::test]
async fn test_udp_check_echo() {
    let srv = UdpEcho::start(None).await;
    let addr = srv.addr;
    let cfg = one(addr, &format!("UDP_CHECK {{\n payload 6861760a\n require_reply 686176\n {FAST}\n}}"));
    let (tx, mut rx) = unbounded_channel();
    let c = Checkers::start(&cfg, tx, None);
    expect(&mut rx, Health::Down, "alpha").await;
    expect(&mut rx, Health::Up, "echo matches").await;
    srv.garble.store(true, Ordering::Relaxed);
    expect(&mut rx, Health::Down, "reply does not match").await;
    srv.garble.store(false, Ordering::Relaxed);
    expect(&mut rx, Health::Up, "matches again").await;
    drop(srv);
    expect(&mut rx, Health::Down, "port unreachable").await;
    let _srv = UdpEcho::start(Some(addr)).await;
    expect(&mut rx, Health::Up, "echo back").await;
    c.shutdown();

    // Without require_reply only an ICMP error fails the check.
    let closed = UdpEcho::start(None).await;
    let addr = closed.addr;
    drop(closed);
    let cfg = one(addr, "UDP_CHECK {\n delay_loop 0.1\n warmup 0\n connect_timeout 0.2\n retry 0\n}");
    let (tx, mut rx) = unbounded_channel();
    let _c = Checkers::start(&cfg, tx, None);
    expect(&mut rx, Health::Up, "initial").await;
    expect(&mut rx, Health::Down, "port unreachable").await;
}

#[tokio::test]
async fn test_misc_check_codes_dynamic_timeout() {
    let dir = TempDir::new("misc");
    let code = dir.path.join("code");
    std::fs::write(&code, "0").unwrap();
    let script = dir.script("check.sh", &format!("#!/bin/sh\nexit $(cat {})\n", code.display()));
    let rs: SocketAddr = "127.0.0.1:80".parse().unwrap();
    let cfg = one(rs, &format!("MISC_CHECK {{\n misc_path \"{}\"\n misc_dynamic\n misc_timeout 2\n {FAST_MISC}\n}}", script.display()));
    let (tx, mut rx) = unbounded_channel();
    let _c = Checkers::start(&cfg, tx, None);
    expect(&mut rx, Health::Down, "alpha").await;
    expect(&mut rx, Health::Up, "exit 0").await;
    std::fs::write(&code, "1").unwrap();
    expect(&mut rx, Health::Down, "exit 1").await;
    std::fs::write(&code, "12").unwrap();
    expect(&mut rx, Health::UpWeight(10), "exit 12 with misc_dynamic").await;
    std::fs::write(&code, "2").unwrap();
    expect(&mut rx, Health::UpWeight(0), "exit 2 with misc_dynamic").await;
    std::fs::write(&code, "0").unwrap();
    expect(&mut rx, Health::Up, "exit 0").await;

    // Without misc_dynamic any non-zero code is down; a hung script is killed on misc_timeout.
    let hang = dir.script("hang.sh", "#!/bin/sh\nsleep 30\n");
    let cfg = one(rs, &format!("MISC_CHECK {{\n misc_path {}\n misc_timeout 0.2\n delay_loop 0.3\n warmup 0\n retry 0\n}}", hang.display()));
    let (tx, mut rx) = unbounded_channel();
    let _c = Checkers::start(&cfg, tx, None);
    expect(&mut rx, Health::Up, "initial").await;
    expect(&mut rx, Health::Down, "killed on misc_timeout").await;
}

#[tokio::test]
async fn test_misc_check_retries_absorb_failures() {
    // The script fails on its 3rd and 4th runs, then succeeds. With retry 2 those two failures
    // are retries of one check and the verdict never changes; with retry 1 it flips and recovers.
    for (retry, want_flip) in [(2, false), (1, true)] {
        let dir = TempDir::new("retry");
        let n = dir.path.join("n");
        std::fs::write(&n, "0").unwrap();
        let script = dir.script(
            "flaky.sh",
            &format!("#!/bin/sh\nn=$(( $(cat {f}) + 1 ))\necho $n > {f}\n[ $n -eq 3 ] && exit 1\n[ $n -eq 4 ] && exit 1\nexit 0\n", f = n.display()),
        );
        let rs: SocketAddr = "127.0.0.1:80".parse().unwrap();
        let cfg = one(rs, &format!("MISC_CHECK {{\n misc_path {}\n misc_timeout 5\n delay_loop 0.1\n warmup 0\n retry {retry}\n delay_before_retry 0.05\n}}", script.display()));
        let (tx, mut rx) = unbounded_channel();
        let _c = Checkers::start(&cfg, tx, None);
        expect(&mut rx, Health::Up, "initial").await;
        if want_flip {
            expect(&mut rx, Health::Down, "retry 1: two failures in a row are down").await;
            expect(&mut rx, Health::Up, "and recovers").await;
        } else {
            // Let it run well past the failing runs.
            while std::fs::read_to_string(&n).unwrap().trim().parse::<u32>().unwrap_or(0) < 8 {
                quiet(&mut rx, Duration::from_millis(100), "retry 2 absorbs two failures").await;
            }
        }
    }
}

#[tokio::test]
async fn test_misc_check_runs_as_user() {
    if hav_tests::netns::skip_unless_root("test_misc_check_runs_as_user") {
        return;
    }
    let dir = TempDir::new("user");
    let script = dir.script("whoami.sh", "#!/bin/sh\n[ \"$(id -u)\" = 65534 ]\n");
    let rs: SocketAddr = "127.0.0.1:80".parse().unwrap();
    let cfg = one(rs, &format!("MISC_CHECK {{\n misc_path {}\n user nobody\n misc_timeout 5\n {FAST_MISC}\n}}", script.display()));
    let (tx, mut rx) = unbounded_channel();
    let _c = Checkers::start(&cfg, tx, None);
    expect(&mut rx, Health::Down, "alpha").await;
    expect(&mut rx, Health::Up, "ran as nobody (uid 65534)").await;
}

#[tokio::test]
async fn test_file_check() {
    let dir = TempDir::new("file");
    let f = dir.path.join("value");
    std::fs::write(&f, "0\n").unwrap();
    let cfg = conf(&format!(
        "vrrp_track_file tf {{\n file {}\n weight 2\n}}\n\
         virtual_server 10.255.0.1 80 {{\n delay_loop 0.1\n real_server 127.0.0.1 80 {{\n weight 5\n\
         FILE_CHECK {{\n track_file tf\n weight 0\n }}\n FILE_CHECK {{\n track_file tf\n }}\n }}\n}}\n",
        f.display()
    ));
    let (tx, mut rx) = unbounded_channel();
    let _c = Checkers::start(&cfg, tx, None);
    let mut got: Vec<(usize, Health)> = Vec::new();
    for _ in 0..2 {
        let e = next(&mut rx).await;
        got.push((e.checker, e.health));
    }
    got.sort_by_key(|g| g.0);
    assert_eq!(got, vec![(0, Health::Up), (1, Health::Up)], "value 0");
    quiet(&mut rx, Duration::from_millis(300), "value 0 stays up").await;
    std::fs::write(&f, "3\n").unwrap();
    let mut got = [next(&mut rx).await, next(&mut rx).await];
    got.sort_by_key(|e| e.checker);
    assert_eq!(got[0].health, Health::Down, "weight 0: non-zero is down");
    assert_eq!(got[1].health, Health::UpWeight(11), "5 + 3 x 2 (track file weight)");
    std::fs::write(&f, "-3\n").unwrap();
    let e = next(&mut rx).await;
    assert_eq!((e.checker, e.health), (1, Health::Down), "5 - 6 < 0 is down");
    std::fs::remove_file(&f).unwrap();
    quiet(&mut rx, Duration::from_millis(300), "missing file is down, already down").await;
    std::fs::write(&f, "0").unwrap();
    let mut got = [next(&mut rx).await, next(&mut rx).await];
    got.sort_by_key(|e| e.checker);
    assert_eq!((got[0].health, got[1].health), (Health::Up, Health::Up), "back to 0");
}

#[tokio::test]
async fn test_ping_check_loopback() {
    let rs: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let (tx, mut rx) = unbounded_channel();
    let _c = Checkers::start(&one(rs, &format!("PING_CHECK {{\n {FAST}\n}}")), tx, None);
    expect(&mut rx, Health::Down, "alpha").await;
    expect(&mut rx, Health::Up, "127.0.0.1 answers").await;
}

#[test]
fn test_ping_check_in_netns() {
    if hav_tests::netns::skip_unless_root("test_ping_check_in_netns") {
        return;
    }
    use hav_tests::netns::{unique, veth, Netns};
    // The checker runs in `a`; `b` (10.77.0.2) answers pings; nobody has 10.77.0.9.
    let a = Netns::new(&unique("pa")).expect("netns a");
    let b = Netns::new(&unique("pb")).expect("netns b");
    let _link = veth(&a, "eth0", &b, "eth0").expect("veth");
    a.add_addr("eth0", "10.77.0.1/24").expect("addr a");
    // In `a` root may open ping sockets (SOCK_DGRAM); the host test above uses whatever the host
    // allows (a raw socket under the default "1 0").
    a.sysctl("ipv4.ping_group_range", "0 2147483647").expect("ping_group_range");
    b.add_addr("eth0", "10.77.0.2/24").expect("addr b");
    let peer = &b;
    a.enter(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(async move {
            let ping = "PING_CHECK {\n delay_loop 0.1\n warmup 0\n connect_timeout 0.3\n retry 1\n delay_before_retry 0.05\n";
            let cfg = conf(&format!(
                "virtual_server 10.255.0.1 80 {{\n delay_loop 0.1\n\
                 real_server 10.77.0.2 80 {{\n {ping} alpha\n }}\n }}\n\
                 real_server 10.77.0.9 80 {{\n {ping} }}\n }}\n}}\n"
            ));
            let (tx, mut rx) = unbounded_channel();
            let _c = Checkers::start(&cfg, tx, None);
            let mut seen = Vec::new();
            while seen.len() < 4 {
                let e = next(&mut rx).await;
                seen.push((e.rs.rs.ip().to_string(), e.health));
            }
            let up: Vec<_> = seen.iter().filter(|s| s.0 == "10.77.0.2").map(|s| s.1).collect();
            let gone: Vec<_> = seen.iter().filter(|s| s.0 == "10.77.0.9").map(|s| s.1).collect();
            assert_eq!(up, vec![Health::Down, Health::Up], "the peer answers");
            assert_eq!(gone, vec![Health::Up, Health::Down], "an absent host does not");
            // Take the peer's link down: it stops answering; bring it back: up again.
            peer.link_down("eth0").expect("link down");
            let e = next(&mut rx).await;
            assert_eq!((e.rs.rs.ip().to_string(), e.health), ("10.77.0.2".into(), Health::Down));
            peer.link_up("eth0").expect("link up");
            let e = next(&mut rx).await;
            assert_eq!((e.rs.rs.ip().to_string(), e.health), ("10.77.0.2".into(), Health::Up));
        });
    });
}

#[tokio::test]
async fn test_ipv6_tcp_ping() {
    let tcp = TcpServer::start(Some("[::1]:0".parse().unwrap())).await;
    let cfg = conf(&format!(
        "virtual_server fd00::1 80 {{\n delay_loop 0.1\n real_server ::1 {} {{\n TCP_CHECK {{\n {FAST}\n }}\n PING_CHECK {{\n {FAST}\n }}\n }}\n}}\n",
        tcp.addr.port()
    ));
    let (tx, mut rx) = unbounded_channel();
    let c = Checkers::start(&cfg, tx, None);
    assert_eq!(c.len(), 2);
    let mut got = Vec::new();
    for _ in 0..4 {
        let e = next(&mut rx).await;
        got.push((e.checker, e.health));
    }
    got.sort_by_key(|(i, h)| (*i, *h == Health::Up));
    assert_eq!(got, vec![(0, Health::Down), (0, Health::Up), (1, Health::Down), (1, Health::Up)], "TCP and ICMPv6 to ::1");
    drop(tcp);
    let e = next(&mut rx).await;
    assert_eq!((e.checker, e.health), (0, Health::Down), "TCP port closed");
}

#[tokio::test]
async fn test_shared_target_one_checker() {
    let srv = TcpServer::start(None).await;
    let a = srv.addr;
    let vs = |vip: &str, check: &str| {
        format!("virtual_server {vip} 80 {{\n delay_loop 0.1\n real_server {} {} {{\n {check}\n }}\n}}\n", a.ip(), a.port())
    };
    let tcp = "TCP_CHECK {\n delay_loop 0.1\n warmup 0\n alpha\n}";
    let text2 = format!("{}{}", vs("10.255.0.1", tcp), vs("10.255.0.2", tcp));
    let (tx, mut rx) = unbounded_channel();
    let mut c = Checkers::start(&conf(&text2), tx, None);
    assert_eq!(c.len(), 1, "one checker for the shared target");
    let mut got = Vec::new();
    for _ in 0..4 {
        let e = next(&mut rx).await;
        got.push((e.rs.vs.clone(), e.health));
    }
    for vip in ["10.255.0.1:80", "10.255.0.2:80"] {
        let mine: Vec<Health> = got.iter().filter(|g| format!("{:?}", g.0).contains(vip)).map(|g| g.1).collect();
        assert_eq!(mine, vec![Health::Down, Health::Up], "{vip}: {got:?}");
    }

    // Reload: a third virtual server shares the running checker and gets its current verdict;
    // the others hear nothing new.
    let text3 = format!("{text2}{}", vs("10.255.0.3", tcp));
    c.reload(&conf(&text3));
    assert_eq!(c.len(), 1);
    let e = next(&mut rx).await;
    assert!(format!("{:?}", e.rs.vs).contains("10.255.0.3:80") && e.health == Health::Up, "{e:?}");
    quiet(&mut rx, Duration::from_millis(300), "unchanged checker keeps its state").await;

    // Another definition on the same target is another checker; removing it stops it.
    let text4 = format!("{text3}{}", vs("10.255.0.4", "TCP_CHECK {\n delay_loop 0.2\n warmup 0\n}"));
    c.reload(&conf(&text4));
    assert_eq!(c.len(), 2);
    let e = next(&mut rx).await;
    assert!(format!("{:?}", e.rs.vs).contains("10.255.0.4:80"), "{e:?}");
    c.reload(&conf(&text2));
    assert_eq!(c.len(), 1);
    drop(srv);
    let mut vss = [next(&mut rx).await, next(&mut rx).await];
    vss.sort_by_key(|e| format!("{:?}", e.rs.vs));
    assert!(vss.iter().all(|e| e.health == Health::Down), "{vss:?}");
    assert!(format!("{:?}", vss[0].rs.vs).contains("10.255.0.1") && format!("{:?}", vss[1].rs.vs).contains("10.255.0.2"));
    quiet(&mut rx, Duration::from_millis(300), "removed virtual servers hear nothing").await;
}

/// A policy runner whose verdict the test sets.
struct FixedPolicy(std::sync::Mutex<Result<Health, String>>);

impl PolicyRunner for FixedPolicy {
    fn check(
        &self,
        _check: &WasmCheck,
        _target: SocketAddr,
        _timeout: Duration,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Health, String>> + Send>> {
        let r = self.0.lock().unwrap().clone();
        Box::pin(async move { r })
    }
}

#[tokio::test]
async fn test_wasm_check_uses_policy_runner() {
    let rs: SocketAddr = "127.0.0.1:80".parse().unwrap();
    let cfg = one(rs, "WASM_CHECK {\n policy http_ok\n delay_loop 0.1\n warmup 0\n retry 0\n}");
    let (tx, mut rx) = unbounded_channel();
    let _c = Checkers::start(&cfg, tx, None);
    expect(&mut rx, Health::Up, "initial").await;
    expect(&mut rx, Health::Down, "no runner: down").await;

    let policy = Arc::new(FixedPolicy(std::sync::Mutex::new(Ok(Health::UpWeight(7)))));
    let (tx, mut rx) = unbounded_channel();
    let _c = Checkers::start(&cfg, tx, Some(policy.clone()));
    expect(&mut rx, Health::Up, "initial").await;
    expect(&mut rx, Health::UpWeight(7), "policy weight").await;
    *policy.0.lock().unwrap() = Err("trap".into());
    expect(&mut rx, Health::Down, "policy failure").await;
    *policy.0.lock().unwrap() = Ok(Health::Up);
    expect(&mut rx, Health::Up, "policy up").await;
}

/// `TCP_CHECK { half_open }` across a veth: a listening port is up, a closed one down (reset), a
/// filtered one down (no answer within connect_timeout), over IPv4 and IPv6, and with SYN cookies
/// forced on the server. The server's application never sees a connection (the listeners' accept
/// queues stay empty, where a plain TCP_CHECK fills them), and no SYN-RECV entry is left behind:
/// the checker's kernel resets every SYN-ACK.
#[test]
fn test_half_open_tcp_check_in_netns() {
    if hav_tests::netns::skip_unless_root("test_half_open_tcp_check_in_netns") {
        return;
    }
    use hav_tests::netns::{unique, veth, Netns};
    let a = Netns::new(&unique("ha")).expect("netns a");
    let b = Netns::new(&unique("hb")).expect("netns b");
    let _link = veth(&a, "eth0", &b, "eth0").expect("veth");
    a.add_addr("eth0", "10.78.0.1/24").expect("addr a");
    a.add_addr("eth0", "fd78::1/64").expect("addr a6");
    b.add_addr("eth0", "10.78.0.2/24").expect("addr b");
    b.add_addr("eth0", "fd78::2/64").expect("addr b6");
    // 8082 is filtered: its SYNs are dropped.
    b.ok("nft", &["add table inet filt"]).expect("nft table");
    b.ok("nft", &["add chain inet filt in { type filter hook input priority 0 ; }"]).expect("nft chain");
    b.ok("nft", &["add rule inet filt in tcp dport 8082 drop"]).expect("nft rule");
    let (l4, l6, plain) = b.enter(|| {
        let l = |a: &str| {
            let l = std::net::TcpListener::bind(a).expect("listen");
            l.set_nonblocking(true).expect("nonblocking");
            l
        };
        (l("10.78.0.2:8080"), l("[fd78::2]:8080"), l("10.78.0.2:8090"))
    });
    let accepted = |l: &std::net::TcpListener| std::iter::from_fn(|| l.accept().ok()).count();
    let syn_recv = || b.ok("ss", &["-Htn", "state", "syn-recv"]).expect("ss");

    for cookies in ["1", "2"] {
        b.sysctl("ipv4.tcp_syncookies", cookies).expect("syncookies");
        let half = "TCP_CHECK {\n half_open\n delay_loop 0.1\n warmup 0\n connect_timeout 0.5\n retry 0\n";
        let cfg = conf(&format!(
            "virtual_server 10.255.0.1 80 {{\n\
             real_server 10.78.0.2 8080 {{\n {half} alpha\n }}\n }}\n\
             real_server 10.78.0.2 8081 {{\n {half} }}\n }}\n\
             real_server 10.78.0.2 8082 {{\n {half} }}\n }}\n\
             real_server 10.78.0.2 8090 {{\n TCP_CHECK {{\n delay_loop 0.1\n warmup 0\n connect_timeout 0.5\n retry 0\n alpha\n }}\n }}\n\
             }}\n\
             virtual_server fd00::1 80 {{\n real_server fd78::2 8080 {{\n {half} alpha\n }}\n }}\n}}\n"
        ));
        let seen = a.enter(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            rt.block_on(async move {
                let (tx, mut rx) = unbounded_channel();
                let _c = Checkers::start(&cfg, tx, None);
                let mut seen = std::collections::HashMap::new();
                // Initial states (5), then a flip each: 8080 v4/v6 and 8090 up, 8081 and 8082 down.
                for _ in 0..10 {
                    let Ok(Some(e)) = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await else {
                        panic!("no health event within 10 s; so far: {seen:?}");
                    };
                    seen.entry(e.rs.rs.to_string()).or_insert_with(Vec::new).push(e.health);
                }
                // A dozen more rounds without a change.
                quiet(&mut rx, Duration::from_millis(1200), "verdicts hold").await;
                seen
            })
        });
        let want = |k: &str, v: &[Health]| assert_eq!(seen.get(k).map(Vec::as_slice), Some(v), "{k} (tcp_syncookies {cookies}): {seen:?}");
        want("10.78.0.2:8080", &[Health::Down, Health::Up]);
        want("[fd78::2]:8080", &[Health::Down, Health::Up]);
        want("10.78.0.2:8081", &[Health::Up, Health::Down]);
        want("10.78.0.2:8082", &[Health::Up, Health::Down]);
        want("10.78.0.2:8090", &[Health::Down, Health::Up]);
        assert_eq!(accepted(&l4), 0, "a half-open probe never completes a connection (tcp_syncookies {cookies})");
        assert_eq!(accepted(&l6), 0, "nor over IPv6");
        assert!(accepted(&plain) > 5, "the plain TCP_CHECK next to them does connect");
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(syn_recv(), "", "no half-open connection is left on the real server (tcp_syncookies {cookies})");
    }
}
