//! Scheduler conformance: the kernel's IPVS against hav-core's schedulers.
//!
//! Run inside the UML guest (tests/vm/ipvs-suite.sh sets up the addresses):
//!
//! ```text
//! ipvs-conform --vip 192.0.2.1 --rs 10.99.1.1,10.99.1.2,10.99.1.3,10.99.1.4 \
//!     --clients 10.98.0.1-40 --conns 120 rr wrr lc wlc sed nq dh sh sh+port fo ovf mh mh+port
//! ```
//!
//! One process does everything, because process starts are slow in UML: it
//! listens on every real server address (port 8080), and for each scheduler
//! creates a NAT service `VIP:PORT` (a fresh port per scheduler) with
//! `ipvsadm`, then opens `--conns` TCP connections to it, each from a
//! client address chosen in a fixed order and a kernel-chosen source port,
//! keeping them all open. The real server that accepts a connection is the
//! kernel's choice; hav-core's scheduler, fed the same destination list (in
//! kernel order), weights, counters and packet, must make the same one.
//! Halfway through, one real server's weight is edited in both (set to 0
//! for the `+fallback` variants, to make the fallback probe). At the end
//! `ipvsadm -Lnc` must list every connection on the real server that
//! accepted it.
//!
//! Prints `ok - ...` / `not ok - ...` lines; exits 1 if any scheduler
//! disagreed once.

use std::collections::HashMap;
use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant as StdInstant};

use hav_core::sched::{
    ConnKey, Dest, DestList, SchedKind, Schedule, Scheduler, IP_VS_SVC_F_SCHED_MH_FALLBACK, IP_VS_SVC_F_SCHED_MH_PORT,
    IP_VS_SVC_F_SCHED_SH_FALLBACK, IP_VS_SVC_F_SCHED_SH_PORT,
};
use hav_core::time::Instant;
use socket2::{Domain, Socket, Type};

const RS_PORT: u16 = 8080;
const WEIGHTS: [i32; 4] = [4, 1, 3, 2];

struct Args {
    vip: IpAddr,
    rs: Vec<IpAddr>,
    clients: Vec<IpAddr>,
    conns: usize,
    scheds: Vec<String>,
    base_port: u16,
}

fn usage() -> ! {
    eprintln!(
        "usage: ipvs-conform --vip IP --rs IP,IP,... --clients FIRST-LAST [--conns N] [--base-port P] SCHED[+port|+fallback]...\n\
         (IPv4 or IPv6; a client range varies the last octet, or the last group of an IPv6 address, in hex)"
    );
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut a = Args { vip: IpAddr::V4(Ipv4Addr::UNSPECIFIED), rs: Vec::new(), clients: Vec::new(), conns: 100, scheds: Vec::new(), base_port: 8100 };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut val = || it.next().unwrap_or_else(|| usage());
        match arg.as_str() {
            "--vip" => a.vip = val().parse().unwrap_or_else(|_| usage()),
            "--rs" => a.rs = val().split(',').map(|s| s.parse().unwrap_or_else(|_| usage())).collect(),
            "--clients" => {
                let v = val();
                let (first, last) = v.rsplit_once('-').unwrap_or_else(|| usage());
                a.clients = match first.parse::<IpAddr>().unwrap_or_else(|_| usage()) {
                    IpAddr::V4(f) => {
                        let last: u8 = last.parse().unwrap_or_else(|_| usage());
                        let o = f.octets();
                        (o[3]..=last).map(|x| IpAddr::V4(Ipv4Addr::new(o[0], o[1], o[2], x))).collect()
                    }
                    IpAddr::V6(f) => {
                        let last = u16::from_str_radix(last, 16).unwrap_or_else(|_| usage());
                        let seg = f.segments();
                        (seg[7]..=last)
                            .map(|x| {
                                let mut t = seg;
                                t[7] = x;
                                IpAddr::V6(Ipv6Addr::from(t))
                            })
                            .collect()
                    }
                };
            }
            "--conns" => a.conns = val().parse().unwrap_or_else(|_| usage()),
            "--base-port" => a.base_port = val().parse().unwrap_or_else(|_| usage()),
            s if s.starts_with('-') => usage(),
            s => a.scheds.push(s.to_owned()),
        }
    }
    if a.vip.is_unspecified() || a.rs.is_empty() || a.rs.len() > WEIGHTS.len() || a.clients.is_empty() || a.scheds.is_empty() {
        usage();
    }
    a
}

fn ipvsadm(args: &[String]) -> Result<String, String> {
    let out = Command::new("ipvsadm").args(args).output().map_err(|e| format!("ipvsadm: {e}"))?;
    if !out.status.success() {
        return Err(format!("ipvsadm {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn sv(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

/// Opens a connection from `src` (kernel-chosen port) to `dst`; returns the
/// stream and its local address, or `None` when the connection is refused
/// or times out (no real server available).
fn connect(src: IpAddr, dst: SocketAddr) -> std::io::Result<Option<(TcpStream, SocketAddr)>> {
    let s = Socket::new(Domain::for_address(dst), Type::STREAM, None)?;
    s.bind(&SocketAddr::new(src, 0).into())?;
    // Close with RST: no TIME_WAIT pile-up between runs.
    s.set_linger(Some(Duration::ZERO))?;
    match s.connect_timeout(&dst.into(), Duration::from_secs(2)) {
        Ok(()) => {}
        Err(e) if matches!(e.kind(), ErrorKind::ConnectionRefused | ErrorKind::TimedOut | ErrorKind::ConnectionReset) => {
            return Ok(None)
        }
        Err(e) => return Err(e),
    }
    let local = s.local_addr()?.as_socket().ok_or_else(|| std::io::Error::other("no local address"))?;
    Ok(Some((s.into(), local)))
}

/// Waits until one of the listeners accepts the connection from `peer`;
/// returns the listener's index and the accepted stream.
fn accept_from(listeners: &[TcpListener], peer: SocketAddr) -> std::io::Result<Option<(usize, TcpStream)>> {
    let deadline = StdInstant::now() + Duration::from_secs(2);
    let mut stray = Vec::new();
    loop {
        for (i, l) in listeners.iter().enumerate() {
            match l.accept() {
                Ok((s, p)) if p == peer => return Ok(Some((i, s))),
                Ok((s, _)) => stray.push(s),
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
        if StdInstant::now() > deadline {
            return Ok(None);
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// `(client ip:port) -> real server ip:port` of the connections to `vip` in `ipvsadm -Lnc`.
fn kernel_conns(vip: SocketAddr) -> Result<HashMap<SocketAddr, SocketAddr>, String> {
    let out = ipvsadm(&sv(&["-Lnc"]))?;
    let mut m = HashMap::new();
    for line in out.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        // pro expire state source virtual destination
        if f.len() == 6 && f[0] == "TCP" {
            if let (Ok(src), Ok(v), Ok(d)) = (f[3].parse(), f[4].parse::<SocketAddr>(), f[5].parse()) {
                if v == vip {
                    m.insert(src, d);
                }
            }
        }
    }
    Ok(m)
}

struct Outcome {
    agree: usize,
    total: usize,
    first_mismatch: Option<String>,
    served: Vec<usize>,
}

fn run_one(a: &Args, name: &str, port: u16, listeners: &[TcpListener]) -> Result<Outcome, String> {
    let (base, opt) = name.split_once('+').unwrap_or((name, ""));
    let kind = SchedKind::from_name(base).ok_or_else(|| format!("unknown scheduler {base}"))?;
    let (flags, flag_arg) = match (base, opt) {
        (_, "") => (0, None),
        ("sh", "port") => (IP_VS_SVC_F_SCHED_SH_PORT, Some("sh-port")),
        ("sh", "fallback") => (IP_VS_SVC_F_SCHED_SH_FALLBACK, Some("sh-fallback")),
        ("mh", "port") => (IP_VS_SVC_F_SCHED_MH_PORT, Some("mh-port")),
        ("mh", "fallback") => (IP_VS_SVC_F_SCHED_MH_FALLBACK, Some("mh-fallback")),
        _ => return Err(format!("unknown scheduler option {name}")),
    };
    let vip = SocketAddr::new(a.vip, port);
    let vs = vip.to_string();
    let mut add = sv(&["-A", "-t", &vs, "-s", base]);
    if let Some(f) = flag_arg {
        add.extend(sv(&["-b", f]));
    }
    ipvsadm(&add)?;
    let now = Instant::ZERO;
    // As the kernel: the scheduler is set up on the empty service, then
    // told about each real server as it is added.
    let mut list: DestList<16> = DestList::new();
    let mut sched: Scheduler = Scheduler::new(kind, flags, list.as_slice(), now);
    for (i, ip) in a.rs.iter().enumerate() {
        let rs = SocketAddr::new(*ip, RS_PORT).to_string();
        ipvsadm(&sv(&["-a", "-t", &vs, "-r", &rs, "-m", "-w", &WEIGHTS[i].to_string()]))?;
        let change = list.add(Dest::new(*ip, RS_PORT, WEIGHTS[i])).map_err(|e| e.to_string())?;
        sched.handle_change(list.as_slice(), change);
    }
    let mut open: Vec<(TcpStream, TcpStream)> = Vec::new();
    let mut chosen: Vec<(SocketAddr, SocketAddr)> = Vec::new();
    let mut out = Outcome { agree: 0, total: 0, first_mismatch: None, served: vec![0; a.rs.len()] };
    for k in 0..a.conns {
        if k == a.conns / 2 {
            // Edit a weight halfway: both sides must follow. With a
            // fallback flag, quiesce the server instead (weight 0), so the
            // hash lands on an unavailable server and the fallback probes.
            let w = if opt == "fallback" { 0 } else { 5 };
            let ip = a.rs[1 % a.rs.len()];
            let rs = SocketAddr::new(ip, RS_PORT).to_string();
            ipvsadm(&sv(&["-e", "-t", &vs, "-r", &rs, "-m", "-w", &w.to_string()]))?;
            let change = list.set_weight(ip, RS_PORT, w).map_err(|e| e.to_string())?;
            sched.handle_change(list.as_slice(), change);
        }
        let src = a.clients[(k * 7 + k / a.clients.len()) % a.clients.len()];
        let conn = connect(src, vip).map_err(|e| format!("connect from {src}: {e}"))?;
        let (kernel, local) = match conn {
            None => (None, None),
            Some((stream, local)) => match accept_from(listeners, local).map_err(|e| format!("accept: {e}"))? {
                Some((i, server)) => {
                    open.push((stream, server));
                    (Some(i), Some(local))
                }
                None => (None, Some(local)),
            },
        };
        // The model sees the packet the kernel saw (for a refused
        // connection the source port does not matter to any scheduler but
        // sh/mh with the port flag, which never refuse while servers are up).
        let sport = local.map(|l| l.port()).unwrap_or(0);
        let key = ConnKey::tcp(src, sport, vip.ip(), vip.port());
        let model = sched.schedule(list.as_slice(), &key, now).map(|i| list.as_slice()[i].addr);
        let kernel_ip = kernel.map(|i| a.rs[i]);
        out.total += 1;
        if model == kernel_ip {
            out.agree += 1;
        } else if out.first_mismatch.is_none() {
            out.first_mismatch = Some(format!(
                "connection #{k} from {src}:{sport}: kernel chose {}, hav-core {}",
                kernel_ip.map(|i| i.to_string()).unwrap_or("nothing".into()),
                model.map(|i| i.to_string()).unwrap_or("nothing".into())
            ));
        }
        // Count the connection where the kernel put it: it stays open, so
        // it is an active connection of that real server from now on.
        if let Some(i) = kernel {
            out.served[i] += 1;
            let ip = a.rs[i];
            if let Some(d) = list.as_mut_slice().iter_mut().find(|d| d.addr == ip) {
                d.activeconns += 1;
            }
            if let Some(l) = local {
                chosen.push((l, SocketAddr::new(ip, RS_PORT)));
            }
        }
    }
    // ipvsadm -Lnc must show every connection where it was accepted. It
    // reads /proc/net/ip_vs_conn in pieces while older entries expire, which
    // can skip a line: read it again (up to 3 times) for the ones missing.
    let mut table = kernel_conns(vip)?;
    for _ in 0..2 {
        if chosen.iter().all(|(c, _)| table.contains_key(c)) {
            break;
        }
        for (k, v) in kernel_conns(vip)? {
            table.entry(k).or_insert(v);
        }
    }
    for (client, rs) in &chosen {
        match table.get(client) {
            Some(t) if t == rs => {}
            other => {
                return Err(format!(
                    "ipvsadm -Lnc shows {client} -> {vip} on {other:?}, but {rs} accepted it"
                ))
            }
        }
    }
    drop(open);
    ipvsadm(&sv(&["-D", "-t", &vs]))?;
    Ok(out)
}

fn main() {
    let a = parse_args();
    let listeners: Vec<TcpListener> = a
        .rs
        .iter()
        .map(|ip| {
            let l = TcpListener::bind(SocketAddr::new(*ip, RS_PORT))
                .unwrap_or_else(|e| panic!("listen on {ip}:{RS_PORT}: {e}"));
            l.set_nonblocking(true).expect("nonblocking");
            l
        })
        .collect();
    let mut failed = 0;
    let fam = if a.vip.is_ipv6() { "IPv6 " } else { "" };
    for (i, name) in a.scheds.iter().enumerate() {
        let port = a.base_port + i as u16;
        let t = StdInstant::now();
        match run_one(&a, name, port, &listeners) {
            Ok(o) if o.agree == o.total => println!(
                "ok - {fam}scheduler {name}: {}/{} connections on the same real server in the kernel and hav-core (per server {:?}; {:.1} s)",
                o.agree,
                o.total,
                o.served,
                t.elapsed().as_secs_f64()
            ),
            Ok(o) => {
                failed += 1;
                println!(
                    "not ok - {fam}scheduler {name}: {}/{} agree; first difference: {}",
                    o.agree,
                    o.total,
                    o.first_mismatch.unwrap_or_default()
                );
            }
            Err(e) => {
                failed += 1;
                println!("not ok - {fam}scheduler {name}: {e}");
                let _ = ipvsadm(&sv(&["-D", "-t", &SocketAddr::new(a.vip, port).to_string()]));
            }
        }
    }
    std::process::exit(if failed == 0 { 0 } else { 1 });
}
