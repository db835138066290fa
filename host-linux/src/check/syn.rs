//! Half-open TCP probes: `TCP_CHECK { half_open }`, a hav extension.
//!
//! A probe sends one SYN from a raw socket. A SYN-ACK means the real server's port listens (up);
//! a reset means it is closed (down); silence until `connect_timeout` means filtered or gone
//! (down), with the SYN sent again every second meanwhile, as the kernel's connect would.
//!
//! No connection is ever made, and none is left half-open on the real server: the SYN comes from
//! a port that a bound, never listening TCP socket holds for the prober, so when the SYN-ACK
//! arrives the kernel finds no socket for it and answers with a reset, which removes the real
//! server's SYN-RECV entry (with SYN cookies on, the server keeps no entry at all). The port is
//! also what keeps the host's own connects from reusing it.
//!
//! One [`SynProber`] runs every half-open check of a [`super::Checkers`], in one task and without
//! a task, timer or channel per check: a raw TCP socket per source address, bound to it and
//! filtered (classic BPF) to the segments for the reserved port; the checks' next events filed
//! by 10 ms slot; and, at each wake-up, the SYNs of every check that fell due sent in one
//! `sendmmsg` per source, and the answers read in `recvmmsg` batches and matched to their
//! checks by the real server's address and port and the acknowledgement of the probe's random
//! sequence number. Checks start on the same slot boundaries as the task-driven ones, so the
//! SYNs of a slot leave back to back. Each check's schedule, retries and verdict are the shared
//! [`Cycle`] rules.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hav_core::wire::checksum;
use socket2::{Domain, Protocol, SockRef, Socket, Type};
use tokio::io::unix::AsyncFd;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::{slot_at_or_after, slot_time, Cycle, ProbeError, Shared, Spec, Verdict};
use crate::net::sys::{OutDatagram, MMSG_MAX};

/// What came back for a probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    /// SYN-ACK: the port listens.
    SynAck,
    /// RST: nothing listens.
    Reset,
}

/// (real server address, real server port, the probe's sequence number).
type Key = (IpAddr, u16, u32);

/// TCP flags.
const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const ACK: u8 = 0x10;

/// Bytes of the SYN: a 20-byte header and an MSS option (a SYN without one gets the 536-byte
/// default, which some servers' SYN cookies encode badly).
const SYN_LEN: usize = 24;

/// How long a resolved source address is used before the route is asked again (a probe that
/// gets no answer asks again at once).
const SOURCE_TTL: Duration = Duration::from_secs(30);

/// The first resend of an unanswered SYN; each next one waits twice as long.
const FIRST_RESEND: Duration = Duration::from_secs(1);

/// The reserved port of one address family, and its raw sockets.
struct Family {
    v4: bool,
    /// The TCP socket that holds `port` (bound, never listening).
    _hold: Socket,
    port: u16,
    /// A raw socket per source address the probes use, bound to it: the kernel hands a raw
    /// socket a copy of every TCP segment to its address, before the port filter runs, so an
    /// unbound one would copy all the host's TCP traffic. Each sends the SYNs from its address
    /// and reads the answers to it.
    socks: Vec<RawSock>,
}

/// A raw socket of a [`Family`], with the task that tells the engine it has something to read.
struct RawSock {
    addr: IpAddr,
    fd: Arc<AsyncFd<Socket>>,
    watch: JoinHandle<()>,
}

impl Drop for RawSock {
    fn drop(&mut self) {
        self.watch.abort();
    }
}

/// A classic BPF program that keeps the TCP segments whose destination port is `port`. On an
/// IPv4 raw socket the filter sees the IP header first, on an IPv6 one the TCP header.
pub fn port_filter(port: u16, v4: bool) -> Vec<libc::sock_filter> {
    let op = |code: u32, jt: u8, jf: u8, k: u32| libc::sock_filter { code: code as u16, jt, jf, k };
    let (ld, ldx, h, ind, abs, b, msh, jmp, jeq, k, ret) = (
        libc::BPF_LD,
        libc::BPF_LDX,
        libc::BPF_H,
        libc::BPF_IND,
        libc::BPF_ABS,
        libc::BPF_B,
        libc::BPF_MSH,
        libc::BPF_JMP,
        libc::BPF_JEQ,
        libc::BPF_K,
        libc::BPF_RET,
    );
    let mut prog = Vec::with_capacity(5);
    if v4 {
        // X = IP header length; A = the half-word at X + 2 (the destination port).
        prog.push(op(ldx | b | msh, 0, 0, 0));
        prog.push(op(ld | h | ind, 0, 0, 2));
    } else {
        prog.push(op(ld | h | abs, 0, 0, 2));
    }
    prog.push(op(jmp | jeq | k, 0, 1, u32::from(port)));
    prog.push(op(ret | k, 0, 0, 0xffff));
    prog.push(op(ret | k, 0, 0, 0));
    prog
}

impl Family {
    fn open(v4: bool) -> io::Result<Family> {
        let domain = if v4 { Domain::IPV4 } else { Domain::IPV6 };
        let hold = Socket::new(domain, Type::STREAM.cloexec(), Some(Protocol::TCP))?;
        if !v4 {
            hold.set_only_v6(true)?;
        }
        let any: SocketAddr = if v4 { (Ipv4Addr::UNSPECIFIED, 0).into() } else { (Ipv6Addr::UNSPECIFIED, 0).into() };
        hold.bind(&any.into())?;
        let port = hold.local_addr()?.as_socket().map(|a| a.port()).unwrap_or(0);
        // A raw socket needs CAP_NET_RAW: find out now, not at the first probe.
        Socket::new(domain, Type::RAW.cloexec(), Some(Protocol::TCP))?;
        Ok(Family { v4, _hold: hold, port, socks: Vec::new() })
    }

    /// The raw socket for source `addr`, opened (bound to it, filtered to the reserved port,
    /// watched) on first use. One whose address cannot be bound (an IPv6 link-local address has
    /// no scope here) stays unbound.
    fn sock(&mut self, addr: IpAddr, ready: &Arc<Notify>) -> io::Result<&Arc<AsyncFd<Socket>>> {
        if let Some(i) = self.socks.iter().position(|s| s.addr == addr) {
            return Ok(&self.socks[i].fd);
        }
        let domain = if self.v4 { Domain::IPV4 } else { Domain::IPV6 };
        let raw = Socket::new(domain, Type::RAW.nonblocking().cloexec(), Some(Protocol::TCP))?;
        raw.attach_filter(&port_filter(self.port, self.v4))?;
        if let Err(e) = raw.bind(&SocketAddr::new(addr, 0).into()) {
            tracing::debug!(%addr, error = %e, "half-open prober: raw socket not bound to its source");
        }
        // Segments that arrived between the socket's creation and its filter.
        let mut junk = [0u8; 64];
        while crate::net::sys::recvmsg(raw.as_fd(), &mut junk).is_ok() {}
        let fd = Arc::new(crate::net::sys::async_socket(raw)?);
        let watch = tokio::spawn(watch(fd.clone(), ready.clone()));
        self.socks.push(RawSock { addr, fd, watch });
        Ok(&self.socks[self.socks.len() - 1].fd)
    }
}

/// Wakes the engine whenever `fd` becomes readable; the engine reads it.
async fn watch(fd: Arc<AsyncFd<Socket>>, ready: Arc<Notify>) {
    loop {
        match fd.readable().await {
            Ok(mut g) => {
                g.clear_ready();
                ready.notify_one();
            }
            Err(e) => {
                tracing::error!(error = %e, "half-open prober: a raw socket failed");
                return;
            }
        }
    }
}

/// A parsed answer: (real server address, its port, our sequence number it acknowledges, answer).
fn parse(bytes: &[u8], from: Option<SocketAddr>, v4: bool, port: u16) -> Option<(Key, Answer)> {
    let (src, tcp) = if v4 {
        let ihl = usize::from(*bytes.first()? & 0x0f) * 4;
        if bytes.len() < ihl + 20 || ihl < 20 {
            return None;
        }
        let src = Ipv4Addr::new(bytes[12], bytes[13], bytes[14], bytes[15]);
        let total = usize::from(u16::from_be_bytes([bytes[2], bytes[3]])).min(bytes.len());
        let tcp = &bytes[ihl..total.max(ihl)];
        // The checksum is not checked: a raw socket sees segments before TCP does, and one that
        // a veth or loopback peer sent still holds the partial sum that checksum offload left
        // for the hardware. The match on the probe's random sequence number is the guard.
        (IpAddr::V4(src), tcp)
    } else {
        // An IPv6 raw socket gets no IP header: the sender's address is the source.
        (from?.ip(), bytes)
    };
    if tcp.len() < 20 {
        return None;
    }
    let sport = u16::from_be_bytes([tcp[0], tcp[1]]);
    let dport = u16::from_be_bytes([tcp[2], tcp[3]]);
    let ack = u32::from_be_bytes([tcp[8], tcp[9], tcp[10], tcp[11]]);
    let flags = tcp[13];
    if dport != port || flags & ACK == 0 || flags & FIN != 0 {
        return None;
    }
    let answer = if flags & RST != 0 {
        Answer::Reset
    } else if flags & SYN != 0 {
        Answer::SynAck
    } else {
        return None;
    };
    Some(((src, sport, ack.wrapping_sub(1)), answer))
}

/// A check the prober was given.
struct Added {
    spec: Arc<Spec>,
    shared: Arc<Shared>,
    intervals: Option<Arc<Mutex<Vec<u32>>>>,
}

/// What the prober is told.
enum Command {
    /// Run this check from now on, under this id.
    Add(u64, Added),
    /// Stop the check of this id.
    Remove(u64),
}

/// The half-open prober of a set of checkers.
pub(crate) struct SynProber {
    inbox: Mutex<Vec<Command>>,
    next_id: AtomicU64,
    wake: Notify,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for SynProber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SynProber").finish_non_exhaustive()
    }
}

impl Drop for SynProber {
    fn drop(&mut self) {
        if let Some(t) = self.task.lock().unwrap_or_else(|p| p.into_inner()).take() {
            t.abort();
        }
    }
}

impl SynProber {
    /// Opens the raw sockets (which needs CAP_NET_RAW) and starts the prober on the current
    /// tokio runtime. A family this host cannot open (no IPv6) is left out; fails when neither
    /// opens.
    ///
    /// # Panics
    /// When called outside a tokio runtime.
    pub(crate) fn start() -> io::Result<Arc<SynProber>> {
        let v4 = Family::open(true);
        let v6 = Family::open(false);
        let (v4, v6) = match (v4, v6) {
            (Err(e), Err(_)) => return Err(e),
            (a, b) => (a.ok(), b.ok()),
        };
        let engine = Engine { v4, v6, ready: Arc::new(Notify::new()), entries: Vec::new(), free: Vec::new(), ids: HashMap::new(), generation: 0, events: BTreeMap::new(), waiting: HashMap::new() };
        let prober = Arc::new(SynProber { inbox: Mutex::new(Vec::new()), next_id: AtomicU64::new(0), wake: Notify::new(), task: Mutex::new(None) });
        // The engine holds the prober weakly (dropping the last Arc stops it), and is spawned
        // once the Arc exists: a task started inside `Arc::new_cyclic` could run on another
        // worker before the Arc can be upgraded.
        let task = tokio::spawn(engine.run(Arc::downgrade(&prober)));
        *prober.task.lock().unwrap_or_else(|p| p.into_inner()) = Some(task);
        Ok(prober)
    }

    /// Runs `spec` (a half-open TCP_CHECK) from now on, reporting to `shared`, until
    /// [`SynProber::remove`] of the id returned.
    pub(crate) fn add(&self, spec: Arc<Spec>, shared: Arc<Shared>, intervals: Option<Arc<Mutex<Vec<u32>>>>) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.command(Command::Add(id, Added { spec, shared, intervals }));
        id
    }

    /// Stops the check that [`SynProber::add`] returned `id` for.
    pub(crate) fn remove(&self, id: u64) {
        self.command(Command::Remove(id));
    }

    fn command(&self, c: Command) {
        self.inbox.lock().unwrap_or_else(|p| p.into_inner()).push(c);
        self.wake.notify_one();
    }
}

/// A SYN that is out.
#[derive(Debug, Clone, Copy)]
struct InFlight {
    key: Key,
    /// The source address its checksum was made with.
    src: IpAddr,
    /// When it is sent again, and the wait after that.
    resend_at: Instant,
    backoff: Duration,
    /// When the probe fails for want of an answer.
    deadline: Instant,
}

/// One check, as the prober runs it.
struct Entry {
    added: Added,
    /// The real server's address and port, `bindto` and `connect_timeout`: the spec's, kept
    /// here because the prober reads them for every probe (the spec is a cache miss away).
    target: SocketAddr,
    bindto: Option<IpAddr>,
    connect_timeout: Duration,
    cycle: Cycle,
    /// A raw socket of its own for sending, when the check sets `bind_if` or `fwmark`.
    sender: Option<Socket>,
    /// The source address the route to the target picks, and when it was asked (a check with
    /// `bindto` uses that instead).
    source: Option<(IpAddr, Instant)>,
    probe: Option<InFlight>,
    /// A retry waits until then.
    retry_at: Option<Instant>,
    /// The engine's generation when the entry's next event was last scheduled; events of
    /// other generations are stale.
    generation: u64,
}

impl Entry {
    fn next_event(&self) -> Instant {
        match (&self.probe, self.retry_at) {
            (Some(p), _) => p.resend_at.min(p.deadline),
            (None, Some(t)) => t,
            (None, None) => self.cycle.next(),
        }
    }

    /// The source address of SYNs to the target: `bindto`, else what the route picks (asked with
    /// a connected UDP socket, which sends nothing), kept for [`SOURCE_TTL`].
    fn source(&mut self, now: Instant) -> io::Result<IpAddr> {
        if let Some(ip) = self.bindto {
            return Ok(ip);
        }
        let spec = &self.added.spec;
        if let Some((ip, at)) = self.source {
            if now.duration_since(at) < SOURCE_TTL {
                return Ok(ip);
            }
        }
        let s = Socket::new(Domain::for_address(spec.target), Type::DGRAM.cloexec(), Some(Protocol::UDP))?;
        super::net::apply_opts(SockRef::from(&s), &spec.common)?;
        s.connect(&spec.target.into())?;
        let ip = s.local_addr()?.as_socket().map(|a| a.ip()).ok_or_else(|| io::Error::other("no source address"))?;
        self.source = Some((ip, now));
        Ok(ip)
    }
}

/// A SYN to send: the entry, its bytes, and the addresses.
struct Out {
    idx: usize,
    seg: [u8; SYN_LEN],
    dst: SocketAddr,
    src: IpAddr,
}

/// The prober's state, owned by its task.
struct Engine {
    v4: Option<Family>,
    v6: Option<Family>,
    /// Notified when a raw socket has something to read.
    ready: Arc<Notify>,
    entries: Vec<Option<Entry>>,
    free: Vec<usize>,
    /// Entries by the id the prober gave their check.
    ids: HashMap<u64, usize>,
    /// Counts every scheduling, so that no two events (even of an entry and a later one in its
    /// place) share a generation.
    generation: u64,
    /// The entries' next events by slot (an event fires at the first slot boundary at or after
    /// its time): (entry, generation).
    events: BTreeMap<u64, Vec<(usize, u64)>>,
    /// The probes that are out.
    waiting: HashMap<Key, usize>,
}

impl Engine {
    async fn run(mut self, prober: std::sync::Weak<SynProber>) {
        let mut out: Vec<Out> = Vec::new();
        loop {
            {
                let Some(p) = prober.upgrade() else { return };
                let commands = std::mem::take(&mut *p.inbox.lock().unwrap_or_else(|p| p.into_inner()));
                for c in commands {
                    match c {
                        Command::Add(id, a) => self.insert(id, a),
                        Command::Remove(id) => self.remove(id),
                    }
                }
            }
            let now = Instant::now();
            while let Some(entry) = self.events.first_entry() {
                if slot_time(*entry.key()) > now {
                    break;
                }
                for (idx, generation) in entry.remove() {
                    self.due(idx, generation, now, &mut out);
                }
            }
            self.send(&mut out);
            // Targets on this host (and near ones) have answered by now: the kernel ran each
            // handshake inside the send.
            self.drain_all();

            let next = self.events.first_key_value().map(|(n, _)| slot_time(*n));
            let Some(p) = prober.upgrade() else { return };
            tokio::select! {
                biased;
                () = p.wake.notified() => {}
                () = self.ready.notified() => {}
                () = async {
                    match next {
                        Some(t) => tokio::time::sleep_until(t).await,
                        None => std::future::pending().await,
                    }
                } => {}
            }
            drop(p);
            self.drain_all();
        }
    }

    fn remove(&mut self, id: u64) {
        let Some(idx) = self.ids.remove(&id) else { return };
        if let Some(p) = self.entries.get_mut(idx).and_then(Option::take).and_then(|e| e.probe) {
            self.waiting.remove(&p.key);
        }
        self.free.push(idx);
    }

    fn insert(&mut self, id: u64, added: Added) {
        let sender = match open_sender(&added.spec) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(target = %added.spec.target, error = %e, "TCP_CHECK half_open: cannot open a raw socket with the check's options; it sends from the shared one");
                None
            }
        };
        let cycle = Cycle::new(&added.spec.common);
        let (target, bindto, connect_timeout) = (added.spec.target, added.spec.common.bindto, added.spec.common.connect_timeout);
        let entry = Entry { added, target, bindto, connect_timeout, cycle, sender, source: None, probe: None, retry_at: None, generation: 0 };
        let idx = match self.free.pop() {
            Some(i) => {
                self.entries[i] = Some(entry);
                i
            }
            None => {
                self.entries.push(Some(entry));
                self.entries.len() - 1
            }
        };
        self.ids.insert(id, idx);
        self.schedule(idx);
    }

    /// Files the entry's next event (a new generation).
    fn schedule(&mut self, idx: usize) {
        if let Some(e) = self.entries.get_mut(idx).and_then(Option::as_mut) {
            self.generation += 1;
            e.generation = self.generation;
            self.events.entry(slot_at_or_after(e.next_event())).or_default().push((idx, e.generation));
        }
    }

    /// The event of entry `idx` is due.
    fn due(&mut self, idx: usize, generation: u64, now: Instant, out: &mut Vec<Out>) {
        let (v4, v6) = (self.v4.as_ref().map_or(0, |f| f.port), self.v6.as_ref().map_or(0, |f| f.port));
        let Some(e) = self.entries.get_mut(idx).and_then(Option::as_mut) else { return };
        if e.generation != generation {
            return;
        }
        let target = e.target;
        let port = if target.is_ipv4() { v4 } else { v6 };
        match e.probe {
            Some(p) if now >= p.deadline => {
                // Perhaps the route, and the source address with it, changed.
                e.source = None;
                let t = e.connect_timeout;
                self.finish(idx, Err(ProbeError::Failed(format!("no answer to SYN within {t:?}"))));
                return;
            }
            Some(mut p) => {
                // Sent again, as the same probe (the same sequence number).
                p.resend_at = now + p.backoff;
                p.backoff = p.backoff.saturating_mul(2);
                e.probe = Some(p);
                if let Ok(seg) = syn_segment(p.src, target, port, p.key.2) {
                    out.push(Out { idx, seg, dst: target, src: p.src });
                }
            }
            None => {
                if e.retry_at.take().is_none() {
                    e.cycle.begin(now, e.added.intervals.as_deref());
                }
                self.start_probe(idx, now, out);
                return;
            }
        }
        self.schedule(idx);
    }

    /// The reserved port of `target`'s family (0 when there is none).
    fn port(&self, target: SocketAddr) -> u16 {
        if target.is_ipv4() { &self.v4 } else { &self.v6 }.as_ref().map_or(0, |f| f.port)
    }

    /// Sends a new probe for entry `idx`.
    fn start_probe(&mut self, idx: usize, now: Instant, out: &mut Vec<Out>) {
        let Some(target) = self.entries.get(idx).and_then(Option::as_ref).map(|e| e.target) else { return };
        let port = self.port(target);
        let Some(e) = self.entries.get_mut(idx).and_then(Option::as_mut) else { return };
        if port == 0 {
            self.finish(idx, Err(ProbeError::Failed("no raw socket for this address family".into())));
            return;
        }
        let src = match e.source(now) {
            Ok(ip) => ip,
            Err(err) => {
                self.finish(idx, Err(ProbeError::io("route", err)));
                return;
            }
        };
        let seq = fastrand::u32(..);
        let seg = match syn_segment(src, target, port, seq) {
            Ok(s) => s,
            Err(err) => {
                self.finish(idx, Err(ProbeError::io("", err)));
                return;
            }
        };
        let key = (target.ip(), target.port(), seq);
        e.probe = Some(InFlight { key, src, resend_at: now + FIRST_RESEND, backoff: FIRST_RESEND * 2, deadline: now + e.connect_timeout });
        self.waiting.insert(key, idx);
        out.push(Out { idx, seg, dst: target, src });
        self.schedule(idx);
    }

    /// Entry `idx`'s probe ended with `result`: retry, or conclude the check.
    fn finish(&mut self, idx: usize, result: Result<Verdict, ProbeError>) {
        let Some(e) = self.entries.get_mut(idx).and_then(Option::as_mut) else { return };
        if let Some(p) = e.probe.take() {
            self.waiting.remove(&p.key);
        }
        match e.cycle.retry_after(&result, &e.added.spec) {
            Some(d) => e.retry_at = Some(Instant::now() + d),
            None => e.cycle.conclude(result, &e.added.spec, &e.added.shared, false),
        }
        self.schedule(idx);
    }

    /// Sends `out` and empties it: the SYNs on the shared sockets in `sendmmsg` batches, those
    /// of checks with their own socket one by one. A SYN the kernel refuses fails its probe.
    fn send(&mut self, out: &mut Vec<Out>) {
        let mut failed: Vec<(usize, io::Error)> = Vec::new();
        // Sources in the order they come (a director probes from one or a few).
        let mut sources: Vec<IpAddr> = Vec::new();
        for o in out.iter() {
            if !sources.contains(&o.src) {
                sources.push(o.src);
            }
        }
        for src in sources {
            let fam = if src.is_ipv4() { self.v4.as_mut() } else { self.v6.as_mut() };
            let Some(fam) = fam else { continue };
            let sock = match fam.sock(src, &self.ready) {
                Ok(s) => s.clone(),
                Err(e) => {
                    failed.extend(out.iter().filter(|o| o.src == src).map(|o| (o.idx, io::Error::new(e.kind(), e.to_string()))));
                    continue;
                }
            };
            let mut batch: Vec<OutDatagram<'_>> = Vec::new();
            let mut idxs: Vec<usize> = Vec::new();
            for o in out.iter().filter(|o| o.src == src) {
                match self.entries[o.idx].as_ref().and_then(|e| e.sender.as_ref()) {
                    // bind_if / fwmark: from the check's own socket (the answer comes to `sock`).
                    Some(own) => {
                        if let Err(e) = own.send_to(&o.seg, &SocketAddr::new(o.dst.ip(), 0).into()) {
                            if e.kind() != io::ErrorKind::WouldBlock {
                                failed.push((o.idx, e));
                            }
                        }
                    }
                    None => {
                        // The socket is bound to `src`: no control message needed.
                        let any = if src.is_ipv4() { IpAddr::V4(Ipv4Addr::UNSPECIFIED) } else { IpAddr::V6(Ipv6Addr::UNSPECIFIED) };
                        batch.push(OutDatagram { buf: &o.seg, dst: SocketAddr::new(o.dst.ip(), 0), src: any, ifindex: 0, ttl: None });
                        idxs.push(o.idx);
                    }
                }
            }
            let mut i = 0;
            while i < batch.len() {
                let end = batch.len().min(i + MMSG_MAX);
                match crate::net::sys::sendmmsg(sock.get_ref().as_fd(), &batch[i..end]) {
                    Ok(n) => i += n.max(1),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break, // resent on its timer
                    Err(e) => {
                        failed.push((idxs[i], e));
                        i += 1;
                    }
                }
            }
        }
        out.clear();
        for (idx, e) in failed {
            self.finish(idx, Err(ProbeError::io("send SYN", e)));
        }
    }

    /// Reads every queued answer on both sockets and concludes the probes they answer.
    fn drain_all(&mut self) {
        let mut answers: Vec<(Key, Answer)> = Vec::new();
        let socks = self.v4.iter().chain(self.v6.iter()).flat_map(|f| f.socks.iter().map(move |s| (f, s)));
        for (fam, sock) in socks {
            let v4 = fam.v4;
            loop {
                let mut bufs = [[0u8; 96]; 32];
                match crate::net::sys::recvmmsg(sock.fd.get_ref().as_fd(), &mut bufs, !v4, |_, b, m| {
                    if let Some(a) = parse(&b[..m.len.min(b.len())], m.src, v4, fam.port) {
                        answers.push(a);
                    }
                }) {
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        if e.kind() != io::ErrorKind::WouldBlock {
                            tracing::warn!(error = %e, "half-open prober: receive failed");
                        }
                        break;
                    }
                }
            }
        }
        for (key, answer) in answers {
            let Some(&idx) = self.waiting.get(&key) else { continue };
            let result = match answer {
                Answer::SynAck => Ok(Verdict::Up),
                Answer::Reset => Err(ProbeError::io("", io::Error::from_raw_os_error(libc::ECONNREFUSED))),
            };
            self.finish(idx, result);
        }
    }
}

/// A raw socket of a check's own, for `bind_if` and `fwmark` (which are per socket); `None`
/// when the check sets neither.
fn open_sender(spec: &Spec) -> io::Result<Option<Socket>> {
    let c = &spec.common;
    if c.bind_if.is_none() && c.fwmark.is_none() {
        return Ok(None);
    }
    let s = Socket::new(Domain::for_address(spec.target), Type::RAW.nonblocking().cloexec(), Some(Protocol::TCP))?;
    super::net::apply_opts(SockRef::from(&s), c)?;
    if let Some(ip) = c.bindto {
        s.bind(&SocketAddr::new(ip, 0).into())?;
    }
    // It only sends: a filter that keeps nothing.
    s.attach_filter(&[libc::sock_filter { code: (libc::BPF_RET | libc::BPF_K) as u16, jt: 0, jf: 0, k: 0 }])?;
    Ok(Some(s))
}

/// A SYN from `src`:`sport` to `target` with sequence number `seq`, checksummed.
fn syn_segment(src: IpAddr, target: SocketAddr, sport: u16, seq: u32) -> io::Result<[u8; SYN_LEN]> {
    let mut seg = [0u8; SYN_LEN];
    seg[0..2].copy_from_slice(&sport.to_be_bytes());
    seg[2..4].copy_from_slice(&target.port().to_be_bytes());
    seg[4..8].copy_from_slice(&seq.to_be_bytes());
    seg[12] = ((SYN_LEN / 4) as u8) << 4;
    seg[13] = SYN;
    seg[14..16].copy_from_slice(&64240u16.to_be_bytes());
    // MSS option: kind 2, length 4; 1460 for IPv4, 1440 for IPv6.
    let mss: u16 = if target.is_ipv4() { 1460 } else { 1440 };
    seg[20..22].copy_from_slice(&[2, 4]);
    seg[22..24].copy_from_slice(&mss.to_be_bytes());
    let pseudo = checksum::pseudo_header(&src, &target.ip(), 6, SYN_LEN as u32)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, format!("source {src} and target {target} are of different families")))?;
    let c = !checksum::combine(&[pseudo, checksum::data(&seg)]);
    seg[16..18].copy_from_slice(&c.to_be_bytes());
    Ok(seg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_syn_segment_checksum_and_fields() {
        let src: IpAddr = "192.0.2.1".parse().unwrap();
        let t: SocketAddr = "192.0.2.7:8080".parse().unwrap();
        let seg = syn_segment(src, t, 40000, 0x01020304).unwrap();
        assert_eq!(u16::from_be_bytes([seg[0], seg[1]]), 40000);
        assert_eq!(u16::from_be_bytes([seg[2], seg[3]]), 8080);
        assert_eq!(&seg[4..8], &[1, 2, 3, 4]);
        assert_eq!(seg[13], SYN);
        assert_eq!(seg[12] >> 4, 6, "data offset: 24 bytes");
        let IpAddr::V4(s) = src else { unreachable!() };
        let IpAddr::V4(d) = t.ip() else { unreachable!() };
        assert_eq!(checksum::combine(&[checksum::pseudo_header_v4(s, d, 6, 24), checksum::data(&seg)]), 0xffff);
        assert!(syn_segment("::1".parse().unwrap(), t, 1, 1).is_err(), "mixed families");
    }

    fn answer_v4(flags: u8, ack: u32, dport: u16) -> Vec<u8> {
        let src = Ipv4Addr::new(192, 0, 2, 7);
        let dst = Ipv4Addr::new(192, 0, 2, 1);
        let mut ip = vec![0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, 6, 0, 0];
        ip.extend_from_slice(&src.octets());
        ip.extend_from_slice(&dst.octets());
        let mut tcp = [0u8; 20];
        tcp[0..2].copy_from_slice(&8080u16.to_be_bytes());
        tcp[2..4].copy_from_slice(&dport.to_be_bytes());
        tcp[8..12].copy_from_slice(&ack.to_be_bytes());
        tcp[12] = 5 << 4;
        tcp[13] = flags;
        let c = !checksum::combine(&[checksum::pseudo_header_v4(src, dst, 6, 20), checksum::data(&tcp)]);
        tcp[16..18].copy_from_slice(&c.to_be_bytes());
        ip.extend_from_slice(&tcp);
        ip
    }

    #[test]
    fn test_parse_answers() {
        let rs: IpAddr = "192.0.2.7".parse().unwrap();
        let p = |b: &[u8]| parse(b, None, true, 40000);
        assert_eq!(p(&answer_v4(SYN | ACK, 101, 40000)), Some(((rs, 8080, 100), Answer::SynAck)));
        assert_eq!(p(&answer_v4(RST | ACK, 0, 40000)), Some(((rs, 8080, u32::MAX), Answer::Reset)));
        assert_eq!(p(&answer_v4(SYN | ACK, 101, 40001)), None, "another port");
        assert_eq!(p(&answer_v4(SYN, 101, 40000)), None, "a SYN without ACK is not an answer");
        assert_eq!(p(&answer_v4(ACK | FIN, 101, 40000)), None);
        let whole = answer_v4(SYN | ACK, 101, 40000);
        for n in 0..whole.len() {
            assert_eq!(p(&whole[..n]), None, "truncated to {n}");
        }
        let v6: SocketAddr = "[2001:db8::7]:0".parse().unwrap();
        let tcp = &answer_v4(SYN | ACK, 5, 40000)[20..];
        assert_eq!(parse(tcp, Some(v6), false, 40000), Some((("2001:db8::7".parse().unwrap(), 8080, 4), Answer::SynAck)));
        assert_eq!(parse(tcp, None, false, 40000), None, "no sender");
    }
}
