//! Checker scale benchmark: N TCP_CHECK targets (default 10,000) against loopback listeners,
//! `delay_loop` 1 s, for S seconds (default 20). Prints the CPU seconds the checkers use per
//! second of wall time, and the drift of each check's start from the previous one's plus
//! `delay_loop` (p50 / p99 / max).
//!
//! The listeners run in a child process (this binary with `--serve N`), so the CPU figure is the
//! checker process alone (its tokio runtime, kernel time of its connects included).
//!
//! ```text
//! cargo bench -p hav-linux --bench checkers -- --targets 10000 --secs 20 [--threads 0]
//! ```
//! `--threads 0` (default) runs the checkers on a current-thread runtime, `--threads N` on a
//! multi-thread runtime with N workers. Needs `ulimit -n` above N + 100 (scripts/bench-checkers
//! raises it). Run without `--bench` (as `cargo test --benches` does) it is a 2-second smoke run
//! of 100 targets.
//!
//! `--serve N [--http] [--delay-loop D]` is the listener process alone (see [`serve`]): it times
//! every accept and reports, on command, checks per second and interval drift as the targets see
//! them, which is how `scripts/bench-checkers --keepalived` measures hav-linux and keepalived
//! the same way.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hav_linux::check::{CheckerOptions, Checkers};
use hav_linux::health::Health;

struct Args {
    targets: usize,
    secs: u64,
    threads: usize,
    delay_loop: f64,
    serve: Option<usize>,
    /// Addresses the listeners bind to, round robin (default 127.0.0.1-4).
    listen: Vec<String>,
    /// Network namespace to start the listener process in (`ip netns exec`).
    serve_netns: Option<String>,
    /// `TCP_CHECK { half_open }`: raw SYN probes instead of connects.
    half_open: bool,
    /// `--serve` mode: answer HTTP/1.0 requests instead of dropping connections.
    http: bool,
    /// `--spin SECS`: the idle-priority CPU meter alone (see [`spin`]).
    spin: Option<f64>,
}

fn parse_args() -> Args {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let full = argv.iter().any(|a| a == "--bench");
    let mut a = Args { targets: if full { 10_000 } else { 100 }, secs: if full { 20 } else { 2 }, threads: 0, delay_loop: 1.0, serve: None, listen: (1..=4).map(|i| format!("127.0.0.{i}")).collect(), serve_netns: None, half_open: false, http: false, spin: None };
    let mut it = argv.iter();
    while let Some(k) = it.next() {
        let mut val = |name: &str| -> String {
            it.next().cloned().unwrap_or_else(|| {
                eprintln!("{name} needs a value");
                std::process::exit(2)
            })
        };
        let num = |name: &str, v: String| -> f64 {
            v.parse().unwrap_or_else(|_| {
                eprintln!("{name}: not a number: {v}");
                std::process::exit(2)
            })
        };
        match k.as_str() {
            "--targets" => a.targets = num(k, val(k)) as usize,
            "--secs" => a.secs = num(k, val(k)) as u64,
            "--threads" => a.threads = num(k, val(k)) as usize,
            "--delay-loop" => a.delay_loop = num(k, val(k)),
            "--serve" => a.serve = Some(num(k, val(k)) as usize),
            "--listen" => a.listen = val(k).split(',').map(str::to_string).collect(),
            "--serve-netns" => a.serve_netns = Some(val(k)),
            "--half-open" => a.half_open = true,
            "--http" => a.http = true,
            "--spin" => a.spin = Some(num(k, val(k))),
            _ => {} // cargo's --bench and filters
        }
    }
    a
}

/// Child mode: N listeners on the `--listen` addresses, printed one a line, then "READY"; accepts
/// connections until stdin closes. With `--http` each connection's request head is read and
/// answered `HTTP/1.0 200 OK` with a small body, then closed; else it is dropped at once.
///
/// The listeners time every accept, so a daemon under test is measured from outside, the same
/// way whichever it is. Commands on stdin, one a line:
/// - `start`: forget the accepts so far (the measured window starts);
/// - `report LABEL`: print, on stderr, the window's accepts per second and the interval drift
///   (|time between two accepts of one listener - delay_loop|, p50 / p99 / max over all
///   listeners), each line starting `LABEL:`, then `LABEL: end`; the window is reset;
/// - `dump PATH`: write the window's accepts to PATH, `LISTENER SECONDS` a line (seconds from
///   the window's start), for a closer look at where drift comes from.
///
/// At stdin EOF the total number of accepts is printed (stderr) and the process exits.
fn serve(n: usize, listen: &[String], http: bool, delay_loop: f64) {
    use std::sync::{Arc, Mutex};
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async move {
        let accepted = Arc::new(std::sync::atomic::AtomicU64::new(0));
        // Accept times, one list per listener.
        let times: Arc<Mutex<Vec<Vec<Instant>>>> = Arc::new(Mutex::new(vec![Vec::new(); n]));
        let started = Instant::now();
        let mut out = std::io::stdout().lock();
        for i in 0..n {
            let ip = &listen[i % listen.len()];
            let l = match tokio::net::TcpListener::bind((ip.as_str(), 0)).await {
                Ok(l) => l,
                Err(e) => {
                    eprintln!("listener {i}: {e} (raise the open-file limit: ulimit -n {})", n + 1000);
                    std::process::exit(1)
                }
            };
            writeln!(out, "{}", l.local_addr().expect("addr")).expect("stdout");
            let accepted = accepted.clone();
            let times = times.clone();
            tokio::spawn(async move {
                while let Ok((s, _)) = l.accept().await {
                    let now = Instant::now();
                    accepted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if let Ok(mut t) = times.lock() {
                        t[i].push(now);
                    }
                    if http {
                        tokio::spawn(answer_http(s));
                    } else {
                        drop(s);
                    }
                }
            });
        }
        writeln!(out, "READY").expect("stdout");
        out.flush().expect("stdout");
        drop(out);
        let (ltx, mut lrx) = tokio::sync::mpsc::unbounded_channel::<String>();
        // stdin is read on a thread of its own; EOF (the parent gone) ends the loop.
        std::thread::spawn(move || {
            for line in std::io::stdin().lines() {
                let Ok(line) = line else { break };
                if ltx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut window = Instant::now();
        while let Some(line) = lrx.recv().await {
            let now = Instant::now();
            let mut t = times.lock().expect("times");
            if let Some(path) = line.strip_prefix("dump ") {
                let written = std::fs::File::create(path.trim()).and_then(|f| {
                    let mut f = std::io::BufWriter::new(f);
                    for (i, l) in t.iter().enumerate() {
                        for a in l {
                            writeln!(f, "{i} {:.6}", (*a - window).as_secs_f64())?;
                        }
                    }
                    f.flush()
                });
                if let Err(e) = written {
                    eprintln!("dump {}: {e}", path.trim());
                }
                continue;
            }
            if line.trim() == "start" {
                t.iter_mut().for_each(Vec::clear);
                window = now;
            } else if let Some(label) = line.strip_prefix("report") {
                let label = label.trim();
                let secs = (now - window).as_secs_f64();
                let period = Duration::from_secs_f64(delay_loop);
                let mut drift: Vec<Duration> = Vec::new();
                let mut accepts = 0usize;
                let mut silent = 0usize;
                for l in t.iter() {
                    accepts += l.len();
                    if l.is_empty() {
                        silent += 1;
                    }
                    drift.extend(l.windows(2).map(|w| (w[1] - w[0]).abs_diff(period)));
                }
                drift.sort_unstable();
                let ms = |d: Duration| d.as_secs_f64() * 1e3;
                eprintln!("{label}: window {secs:.2} s");
                eprintln!("{label}: accepts {accepts} ({:.1}/s, expected {:.1}/s)", accepts as f64 / secs, n as f64 / delay_loop);
                eprintln!("{label}: listeners never reached {silent}");
                eprintln!(
                    "{label}: drift p50 {:.2} ms p99 {:.2} ms max {:.2} ms ({} intervals)",
                    ms(pct(&drift, 0.5)),
                    ms(pct(&drift, 0.99)),
                    ms(drift.last().copied().unwrap_or_default()),
                    drift.len()
                );
                eprintln!("{label}: end");
                t.iter_mut().for_each(Vec::clear);
                window = now;
            }
        }
        let n = accepted.load(std::sync::atomic::Ordering::Relaxed);
        let secs = started.elapsed().as_secs_f64();
        eprintln!("listeners: {n} connections accepted in {secs:.1} s ({:.0}/s)", n as f64 / secs);
    });
}

/// `--spin SECS`: a CPU meter that does not trust the kernel's CPU accounting. Run at
/// `SCHED_IDLE` (`chrt --idle 0`), it spins for SECS seconds and prints how many loop rounds it made per second. On one CPU it
/// gets exactly the time nothing else wants, so the share of the CPU everything else used in that
/// time is 1 - rounds / (rounds with nothing else running).
///
/// Why: a kernel that counts CPU time in ticks (the UML guest's does: its sched_clock is
/// jiffies) charges a tick to whoever runs when it fires. A process woken by a timer runs right
/// after a tick and, if it is done within the tick (10 ms), is charged nothing, however much it
/// does: hav's checkers, which start on 10 ms slots, showed 0.002 s/s in /proc at 500 checks/s.
fn spin(secs: f64) {
    let t0 = Instant::now();
    let end = Duration::from_secs_f64(secs);
    let mut rounds = 0u64;
    let mut x = 1u64;
    loop {
        for _ in 0..4096 {
            x = std::hint::black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1));
        }
        rounds += 1;
        if rounds.is_multiple_of(16) && t0.elapsed() >= end {
            break;
        }
    }
    println!("{:.1}", rounds as f64 / t0.elapsed().as_secs_f64());
}

/// `--serve --http`: reads the request head (up to a blank line, 4 KiB at most, 2 s at most),
/// answers `HTTP/1.0 200 OK` with a small body and closes.
async fn answer_http(mut s: tokio::net::TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = [0u8; 4096];
    let mut len = 0usize;
    let head = async {
        while len < buf.len() {
            match s.read(&mut buf[len..]).await {
                Ok(0) | Err(_) => return false,
                Ok(k) => len += k,
            }
            if buf[..len].windows(4).any(|w| w == b"\r\n\r\n") {
                return true;
            }
        }
        false
    };
    if let Ok(true) = tokio::time::timeout(Duration::from_secs(2), head).await {
        let _ = s.write_all(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nok\n").await;
        let _ = s.shutdown().await;
    }
}

/// (utime, stime) of this process, in seconds.
fn cpu_seconds() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    // Fields after the ")" that ends the command name; utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')').expect("stat format") + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK).ok().flatten().unwrap_or(100) as f64;
    let t = |i: usize| f[i].parse::<u64>().unwrap_or(0) as f64 / hz;
    (t(11), t(12))
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn main() {
    let args = parse_args();
    if let Some(secs) = args.spin {
        spin(secs);
        return;
    }
    if let Some(n) = args.serve {
        serve(n, &args.listen, args.http, args.delay_loop);
        return;
    }
    let exe = std::env::current_exe().expect("current_exe");
    let mut cmd = match &args.serve_netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns]).arg(exe);
            c
        }
        None => Command::new(exe),
    };
    let mut child = cmd
        .args(["--serve", &args.targets.to_string(), "--listen", &args.listen.join(",")])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("listener process");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut addrs: Vec<SocketAddr> = Vec::with_capacity(args.targets);
    for l in lines.by_ref() {
        let l = l.expect("listener output");
        if l == "READY" {
            break;
        }
        addrs.push(l.parse().expect("listener address"));
    }
    if addrs.len() != args.targets {
        eprintln!("listener process started {} of {} listeners", addrs.len(), args.targets);
        let _ = child.kill();
        std::process::exit(1);
    }

    // 100 real servers per virtual server.
    let mut text = String::new();
    for (v, chunk) in addrs.chunks(100).enumerate() {
        text.push_str(&format!("virtual_server 10.{}.{}.1 80 {{\n delay_loop {}\n", 100 + v / 256, v % 256, args.delay_loop));
        for a in chunk {
            let half = if args.half_open { "   half_open\n" } else { "" };
            text.push_str(&format!(" real_server {} {} {{\n  TCP_CHECK {{\n   connect_timeout 2\n{half}  }}\n }}\n", a.ip(), a.port()));
        }
        text.push_str("}\n");
    }
    let config = hav_linux::config::load_str(Path::new("bench.conf"), &text).expect("bench config").config;

    let rt = if args.threads == 0 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()
    } else {
        tokio::runtime::Builder::new_multi_thread().worker_threads(args.threads).enable_all().build()
    }
    .expect("runtime");
    let period = Duration::from_secs_f64(args.delay_loop);
    let (checks, downs, cpu, wall, mut errs) = rt.block_on(async {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let c = Checkers::start_with(&config, tx, None, CheckerOptions { record_intervals: true });
        let downs = tokio::spawn(async move {
            let mut downs = 0usize;
            while let Some(e) = rx.recv().await {
                if e.health == Health::Down {
                    downs += 1;
                }
            }
            downs
        });
        // Warm-up: first checks are spread over one delay_loop; let the schedule settle.
        tokio::time::sleep(period * 2 + Duration::from_millis(500)).await;
        let _ = c.take_interval_errors();
        let (cpu0, t0) = (cpu_seconds(), Instant::now());
        tokio::time::sleep(Duration::from_secs(args.secs)).await;
        let (cpu1, t1) = (cpu_seconds(), Instant::now());
        let errs = c.take_interval_errors();
        let tasks = c.len();
        c.shutdown();
        let downs = downs.await.unwrap_or(0);
        (tasks, downs, (cpu1.0 - cpu0.0, cpu1.1 - cpu0.1), (t1 - t0).as_secs_f64(), errs)
    });
    // The kernel's share, for scale: one blocking connect + reset-close per target, no runtime.
    // On loopback both ends' TCP work (handshake, the listener's child socket, the reset) runs in
    // the connecting process's syscalls, so it is charged to the checker.
    let floor = {
        let c0 = cpu_seconds();
        let mut ok = 0usize;
        // Three passes: the CPU clock counts in 10 ms ticks.
        for a in (0..3).flat_map(|_| addrs.iter()) {
            if let Ok(s) = std::net::TcpStream::connect_timeout(a, Duration::from_secs(2)) {
                let _ = socket2::SockRef::from(&s).set_linger(Some(Duration::ZERO));
                ok += 1;
            }
        }
        let c1 = cpu_seconds();
        ((c1.0 - c0.0) + (c1.1 - c0.1)) / ok.max(1) as f64
    };
    let half_open = half_open_floor(&addrs, None);
    let half_open_paced = if args.half_open { half_open_floor(&addrs, Some(period)) } else { None };
    drop(child.stdin.take());
    let _ = child.wait();

    errs.sort_unstable();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let mode = if args.threads == 0 { "current_thread".to_string() } else { format!("multi_thread({})", args.threads) };
    println!("checkers: {} TCP_CHECK{} targets ({} tasks), delay_loop {:.3} s, {:.1} s measured, runtime {mode}", args.targets, if args.half_open { " half_open" } else { "" }, checks, args.delay_loop, wall);
    println!("  checks measured      {}  ({:.0}/s, expected {:.0}/s)", errs.len(), errs.len() as f64 / wall, args.targets as f64 / args.delay_loop);
    let total = cpu.0 + cpu.1;
    println!("  cpu                  {:.4} s/s  ({:.1}% of one core; user {:.4} s/s, system {:.4} s/s)", total / wall, 100.0 * total / wall, cpu.0 / wall, cpu.1 / wall);
    println!("  interval drift       p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms", ms(pct(&errs, 0.5)), ms(pct(&errs, 0.99)), ms(errs.last().copied().unwrap_or_default()));
    println!("  down verdicts        {downs}");
    let per_check = (cpu.0 + cpu.1) / errs.len().max(1) as f64;
    println!(
        "  per check            {:.1} us; a bare blocking connect+reset on the same targets costs {:.1} us ({:.1}% of one core at this rate)",
        per_check * 1e6,
        floor * 1e6,
        100.0 * floor * args.targets as f64 / args.delay_loop
    );
    if !args.half_open {
        println!("  ratio to the floor   {:.2}x  (target: at most 1.15x)", per_check / floor.max(f64::MIN_POSITIVE));
    }
    println!(
        "  above bare connects  {:.1}% of one core (the checker's own cost: runtime, timers, epoll)",
        100.0 * (per_check - floor).max(0.0) * args.targets as f64 / args.delay_loop
    );
    match half_open {
        Some((per, answered)) => println!(
            "  half-open floor      {:.1} us per probe ({:.1}% of one core at this rate; {answered} SYN-ACKs): the kernel's least work for any TCP probe of a loopback listener",
            per * 1e6,
            100.0 * per * args.targets as f64 / args.delay_loop
        ),
        None => println!("  half-open floor      not measured (raw sockets need CAP_NET_RAW)"),
    }
    if let (true, Some((per, _))) = (args.half_open, half_open) {
        println!("  half-open ratio      {:.2}x the raw SYN floor back to back", per_check / per.max(f64::MIN_POSITIVE));
    }
    if let Some((per, _)) = half_open_paced {
        println!(
            "  paced SYN floor      {:.1} us per probe: the same SYNs in the checker's pattern (a pass per delay_loop, bursts on 10 ms slots, sleeping between)",
            per * 1e6
        );
        println!("  half-open ratio      {:.2}x the paced SYN floor  (target: at most 1.3x)", per_check / per.max(f64::MIN_POSITIVE));
    }
}

/// The cheapest TCP-level probe there is, for scale: a raw SYN to each target; the listener
/// answers SYN-ACK and the kernel here answers that with a reset (no socket owns the port, which
/// a bound TCP socket reserves). No connection, no accept, no child socket. The raw socket keeps
/// only segments to the reserved port (the filter the half-open checker uses), so it reads the
/// answers and not the SYNs and resets of targets on its own address. Returns the CPU seconds per
/// probe of this process (which, on loopback, does both ends' kernel work), and how many
/// SYN-ACKs came back.
///
/// `paced`: `Some(period)` sends one pass over the targets per period, in bursts on the checker's
/// 10 ms slots, for three periods, sleeping between bursts as the checker does (the same load
/// pattern, so the same cold caches after each sleep); `None` sends five passes back to back.
fn half_open_floor(addrs: &[SocketAddr], paced: Option<Duration>) -> Option<(f64, usize)> {
    use hav_core::wire::checksum;
    use socket2::{Domain, Protocol, Socket, Type};
    let src = std::net::Ipv4Addr::LOCALHOST;
    let hold = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).ok()?;
    hold.bind(&SocketAddr::from((std::net::Ipv4Addr::UNSPECIFIED, 0)).into()).ok()?; // reserves the source port
    let sport = hold.local_addr().ok()?.as_socket()?.port();
    let raw = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::TCP)).ok()?;
    raw.bind(&SocketAddr::from((src, 0)).into()).ok()?;
    raw.attach_filter(&hav_linux::check::tcp_dst_port_filter(sport, true)).ok()?;
    raw.set_nonblocking(true).ok()?;
    let targets: Vec<std::net::SocketAddrV4> = addrs
        .iter()
        .filter_map(|a| match a {
            SocketAddr::V4(a) => Some(*a),
            SocketAddr::V6(_) => None,
        })
        .collect();
    let mut answered = 0usize;
    let mut b = [0u8; 128];
    let passes: usize = if paced.is_some() { 3 } else { 5 };
    let slot = Duration::from_millis(10);
    let per_burst = match paced {
        Some(period) => (targets.len() as f64 * slot.as_secs_f64() / period.as_secs_f64()).ceil().max(1.0) as usize,
        None => usize::MAX,
    };
    let start = Instant::now();
    let c0 = cpu_seconds();
    for (i, a) in (0..passes).flat_map(|_| targets.iter()).enumerate() {
        if i > 0 && i % per_burst == 0 {
            let due = start + slot * u32::try_from(i / per_burst).unwrap_or(u32::MAX);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
        let mut seg = [0u8; 20];
        seg[0..2].copy_from_slice(&sport.to_be_bytes());
        seg[2..4].copy_from_slice(&a.port().to_be_bytes());
        seg[4..8].copy_from_slice(&(i as u32 * 7919 + 1).to_be_bytes());
        seg[12] = 5 << 4; // data offset: 5 words
        seg[13] = 0x02; // SYN
        seg[14..16].copy_from_slice(&64240u16.to_be_bytes());
        let c = !checksum::combine(&[checksum::pseudo_header_v4(src, *a.ip(), 6, 20), checksum::data(&seg)]);
        seg[16..18].copy_from_slice(&c.to_be_bytes());
        let _ = raw.send_to(&seg, &SocketAddr::from((*a.ip(), 0)).into());
        // Read what came back (the checker must see the SYN-ACK).
        while let Ok(n) = std::io::Read::read(&mut &raw, &mut b) {
            let ihl = usize::from(b[0] & 0x0f) * 4;
            if n >= ihl + 14 && b[ihl + 13] & 0x12 == 0x12 {
                answered += 1;
            }
        }
    }
    let c1 = cpu_seconds();
    drop(hold);
    Some((((c1.0 - c0.0) + (c1.1 - c0.1)) / (passes * targets.len()).max(1) as f64, answered))
}
