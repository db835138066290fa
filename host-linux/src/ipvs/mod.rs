//! A client for the kernel's IPVS table over generic netlink (family `"IPVS"`).
//!
//! [`Client`] is synchronous: every request is answered in microseconds, and
//! the director runs on its own thread. Changes go in batches
//! ([`Client::apply`]): many requests, each with `NLM_F_ACK` and its own
//! sequence number, in one datagram; the kernel runs them in order and
//! answers each, so an error names exactly the service or real server it is
//! about and does not stop the rest of the batch. This is what makes a
//! 10,000-server table load in a few system calls.
//!
//! The socket is neli's [`NlSocket`]; the messages are encoded by
//! [`wire`] (pure, unit-tested against the values of `linux/ip_vs.h`).

pub mod types;
pub mod wire;

use std::io;

use neli::consts::socket::{Msg, NlFamily};
use neli::socket::NlSocket;
use neli::utils::Groups;

pub use types::{
    Dest, DestEntry, Family, Forward, Info, Op, Protocol, Service, ServiceEntry, ServiceKey, Stats, SyncDaemon,
    SyncState, Timeouts, Tunnel, TunnelKind,
};
use wire::{cmd, cmd_attr, Writer, IPVS_GENL_VERSION, NLMSG_DONE, NLMSG_ERROR, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST};

/// Requests per datagram in [`Client::apply`]. The kernel queues one ACK per
/// request on our socket before we read any, so a batch must fit in the
/// receive buffer (about 0.8 KiB of buffer accounting per ACK).
pub const BATCH: usize = 128;

/// What went wrong talking to IPVS.
#[derive(Debug, thiserror::Error)]
pub enum IpvsError {
    /// The generic-netlink family "IPVS" is not registered.
    #[error("IPVS is not available in this kernel: {detail} (is the ip_vs module loaded?)")]
    Unavailable {
        /// What the controller said.
        detail: String,
    },
    /// The kernel refused a request.
    #[error("IPVS {op} {target}: {reason}{}", ext.as_ref().map(|e| format!(" ({e})")).unwrap_or_default())]
    Kernel {
        /// The command, e.g. `"NEW_DEST"`.
        op: &'static str,
        /// What it was about, e.g. `real server 10.0.0.2:80 of service TCP 10.0.0.1:80`.
        target: String,
        /// The errno (positive).
        errno: i32,
        /// The errno explained for this command.
        reason: String,
        /// The kernel's extended-ACK text, if any.
        ext: Option<String>,
    },
    /// The socket failed.
    #[error("IPVS netlink socket, {op}: {source}")]
    Io {
        /// The step (`send`, `recv`...).
        op: &'static str,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The kernel's answer could not be decoded.
    #[error("IPVS {op}: malformed reply: {detail}")]
    Protocol {
        /// The command.
        op: &'static str,
        /// What was wrong.
        detail: String,
    },
}

impl IpvsError {
    /// The errno of a kernel refusal.
    pub fn errno(&self) -> Option<i32> {
        match self {
            IpvsError::Kernel { errno, .. } => Some(*errno),
            _ => None,
        }
    }
}

/// Result of the IPVS client.
pub type Result<T> = std::result::Result<T, IpvsError>;

/// What an errno means for command `c` (from the kernel's `ip_vs_ctl.c` behaviour).
pub fn explain(c: u8, errno: i32) -> String {
    let generic = || io::Error::from_raw_os_error(errno).to_string();
    let s = match (c, errno) {
        (cmd::NEW_SERVICE, libc::EEXIST) => "the service already exists",
        (cmd::NEW_SERVICE | cmd::SET_SERVICE, libc::ENOENT) => {
            "no such scheduler or persistence engine (is its ip_vs_* module available?)"
        }
        (cmd::SET_SERVICE | cmd::DEL_SERVICE | cmd::GET_SERVICE | cmd::GET_DEST, libc::ESRCH) => "no such service",
        (cmd::NEW_DEST | cmd::SET_DEST | cmd::DEL_DEST, libc::ESRCH) => "the service does not exist",
        (cmd::NEW_DEST, libc::EEXIST) => "the real server already exists in this service",
        (cmd::SET_DEST | cmd::DEL_DEST, libc::ENOENT) => "no such real server in this service",
        (cmd::NEW_DEST | cmd::SET_DEST, libc::ERANGE) => {
            "weight or thresholds out of range (weight must be >= 0, lower threshold <= upper)"
        }
        (cmd::NEW_DEST | cmd::SET_DEST, libc::EAFNOSUPPORT) => {
            "the real server's address family differs from the service's (only tunnelling may mix them)"
        }
        (_, libc::EAFNOSUPPORT) => "address family not supported by this kernel's IPVS",
        (_, libc::EPROTONOSUPPORT) => "protocol not supported by this kernel's IPVS",
        (cmd::NEW_DAEMON, libc::EEXIST) => "a sync daemon in this state is already running",
        (cmd::NEW_DAEMON, libc::ENODEV) => "no such interface",
        (cmd::DEL_DAEMON, libc::ESRCH) => "no sync daemon in this state is running",
        (_, libc::EPERM) => "not permitted (needs CAP_NET_ADMIN)",
        (_, libc::EINVAL) => "invalid argument (the kernel rejected a value of the request)",
        _ => return generic(),
    };
    format!("{s} [{}]", errno_name(errno))
}

fn errno_name(e: i32) -> &'static str {
    match e {
        libc::EEXIST => "EEXIST",
        libc::ENOENT => "ENOENT",
        libc::ESRCH => "ESRCH",
        libc::ERANGE => "ERANGE",
        libc::EINVAL => "EINVAL",
        libc::EAFNOSUPPORT => "EAFNOSUPPORT",
        libc::EPROTONOSUPPORT => "EPROTONOSUPPORT",
        libc::ENODEV => "ENODEV",
        libc::EPERM => "EPERM",
        _ => "errno",
    }
}

/// A synchronous IPVS client bound to the network namespace of the thread
/// that created it.
pub struct Client {
    sock: NlSocket,
    family: u16,
    seq: u32,
    rbuf: Vec<u8>,
    w: Writer,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ipvs::Client").field("family", &self.family).field("seq", &self.seq).finish()
    }
}

/// One reply message, copied out of the receive buffer.
enum Reply<'a> {
    /// NLMSG_ERROR with errno 0.
    Ack,
    /// NLMSG_ERROR with an errno.
    Error(i32, Option<String>),
    /// NLMSG_DONE.
    Done,
    /// A generic-netlink payload (command, attributes), in the receive buffer.
    Data(&'a [u8]),
}

impl Client {
    /// Opens a generic-netlink socket and resolves the IPVS family.
    pub fn new() -> Result<Self> {
        let sock = NlSocket::connect(NlFamily::Generic, None, Groups::empty())
            .map_err(|source| IpvsError::Io { op: "connect NETLINK_GENERIC", source })?;
        // Room for a whole batch of ACKs; capped by net.core.rmem_max.
        let _ = sock.set_recv_buffer_size(4 << 20);
        let _ = sock.enable_ext_ack(true);
        let mut c = Client { sock, family: 0, seq: std::process::id().wrapping_mul(7919), rbuf: vec![0; 256 << 10], w: Writer::new() };
        c.family = c.resolve_family()?;
        Ok(c)
    }

    /// The IPVS family's generic-netlink id.
    pub fn family_id(&self) -> u16 {
        self.family
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1).max(1);
        self.seq
    }

    fn resolve_family(&mut self) -> Result<u16> {
        let seq = self.next_seq();
        self.w.clear();
        self.w.begin(wire::GENL_ID_CTRL, NLM_F_REQUEST | NLM_F_ACK, seq, wire::CTRL_CMD_GETFAMILY, 1);
        self.w.string(wire::CTRL_ATTR_FAMILY_NAME, wire::IPVS_GENL_NAME);
        self.w.end();
        let replies = self.roundtrip("CTRL_CMD_GETFAMILY", seq).map_err(|e| match e {
            IpvsError::Kernel { reason, .. } => IpvsError::Unavailable { detail: reason },
            e => e,
        })?;
        for r in replies {
            let attrs = wire::Attrs::new(r.get(wire::GENL_HDRLEN..).unwrap_or(&[]));
            if let Some(id) = attrs.get(wire::CTRL_ATTR_FAMILY_ID).and_then(|a| a.u16()) {
                return Ok(id);
            }
        }
        Err(IpvsError::Unavailable { detail: "the controller did not name a family id".into() })
    }

    fn send_buf(&mut self) -> Result<()> {
        let n = self.sock.send(self.w.as_slice(), Msg::empty()).map_err(|source| IpvsError::Io { op: "send", source })?;
        if n != self.w.len() {
            return Err(IpvsError::Io { op: "send", source: io::Error::other("short send") });
        }
        Ok(())
    }

    /// Receives one datagram and hands each message to `f`.
    fn recv_some(&mut self, op: &'static str, mut f: impl FnMut(u32, Reply<'_>)) -> Result<()> {
        let (n, _) = loop {
            match self.sock.recv(&mut self.rbuf[..], Msg::empty()) {
                Ok(r) => break r,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => return Err(IpvsError::Io { op: "recv", source }),
            }
        };
        if n > self.rbuf.len() {
            return Err(IpvsError::Protocol { op, detail: "reply truncated".into() });
        }
        for m in wire::messages(&self.rbuf[..n]) {
            let reply = match m.ty {
                NLMSG_ERROR => match wire::parse_error(&m) {
                    Some((0, _)) => Reply::Ack,
                    Some((e, text)) => Reply::Error(e, text),
                    None => return Err(IpvsError::Protocol { op, detail: "short NLMSG_ERROR".into() }),
                },
                NLMSG_DONE => match wire::parse_error(&m) {
                    Some((e, text)) if e > 0 => Reply::Error(e, text),
                    _ => Reply::Done,
                },
                _ => Reply::Data(m.payload),
            };
            f(m.seq, reply);
        }
        Ok(())
    }

    /// Sends the one request in the writer (sequence `seq`) and hands the
    /// genl payloads of its answer to `each`, until its ACK or NLMSG_DONE.
    fn roundtrip_each(&mut self, op: &'static str, seq: u32, mut each: impl FnMut(&[u8])) -> Result<()> {
        self.send_buf()?;
        let mut end: Option<std::result::Result<(), (i32, Option<String>)>> = None;
        while end.is_none() {
            self.recv_some(op, |s, r| {
                if s != seq || end.is_some() {
                    return;
                }
                match r {
                    Reply::Ack | Reply::Done => end = Some(Ok(())),
                    Reply::Error(e, t) => end = Some(Err((e, t))),
                    Reply::Data(d) => each(d),
                }
            })?;
        }
        match end {
            Some(Err((errno, ext))) => Err(IpvsError::Kernel {
                op,
                target: String::new(),
                errno,
                reason: explain(0, errno),
                ext,
            }),
            _ => Ok(()),
        }
    }

    /// [`Client::roundtrip_each`], collecting the payloads.
    fn roundtrip(&mut self, op: &'static str, seq: u32) -> Result<Vec<Vec<u8>>> {
        let mut out = Vec::new();
        self.roundtrip_each(op, seq, |d| out.push(d.to_vec()))?;
        Ok(out)
    }

    /// One IPVS request; each data message's attributes go to `each`, which
    /// decodes them in place (dumps of 10,000 real servers copy nothing).
    fn request_each(
        &mut self,
        c: u8,
        dump: bool,
        target: impl FnOnce() -> String,
        build: impl FnOnce(&mut Writer),
        mut each: impl FnMut(wire::Attrs<'_>) -> std::result::Result<(), String>,
    ) -> Result<()> {
        let seq = self.next_seq();
        self.w.clear();
        let flags = NLM_F_REQUEST | if dump { NLM_F_DUMP } else { NLM_F_ACK };
        self.w.begin(self.family, flags, seq, c, IPVS_GENL_VERSION);
        build(&mut self.w);
        self.w.end();
        let op = cmd::name(c);
        let mut bad: Option<String> = None;
        self.roundtrip_each(op, seq, |d| {
            if bad.is_none() {
                if let Err(e) = each(wire::Attrs::new(d.get(wire::GENL_HDRLEN..).unwrap_or(&[]))) {
                    bad = Some(e);
                }
            }
        })
        .map_err(|e| match e {
            IpvsError::Kernel { errno, ext, .. } => {
                IpvsError::Kernel { op, target: target(), errno, reason: explain(c, errno), ext }
            }
            e => e,
        })?;
        match bad {
            Some(detail) => Err(IpvsError::Protocol { op, detail }),
            None => Ok(()),
        }
    }

    /// One IPVS request built by `build` (after the genl header), answered by
    /// data messages and/or an ACK; returns the data messages' attribute bytes.
    fn request(
        &mut self,
        c: u8,
        dump: bool,
        target: impl FnOnce() -> String,
        build: impl FnOnce(&mut Writer),
    ) -> Result<Vec<Vec<u8>>> {
        let seq = self.next_seq();
        self.w.clear();
        let flags = NLM_F_REQUEST | if dump { NLM_F_DUMP } else { NLM_F_ACK };
        self.w.begin(self.family, flags, seq, c, IPVS_GENL_VERSION);
        build(&mut self.w);
        self.w.end();
        let op = cmd::name(c);
        self.roundtrip(op, seq).map_err(|e| match e {
            IpvsError::Kernel { errno, ext, .. } => {
                IpvsError::Kernel { op, target: target(), errno, reason: explain(c, errno), ext }
            }
            e => e,
        })
    }

    /// Applies `ops` in order, in batches of [`BATCH`] requests per datagram.
    /// Returns one result per op; the outer error is a socket failure (after
    /// which the table's state is unknown: dump it).
    pub fn apply(&mut self, ops: &[Op]) -> Result<Vec<Result<()>>> {
        let mut results: Vec<Option<Result<()>>> = Vec::with_capacity(ops.len());
        for chunk in ops.chunks(BATCH) {
            self.w.clear();
            let first = self.seq.wrapping_add(1);
            let base = results.len();
            for op in chunk {
                let seq = self.next_seq();
                wire::encode_op(&mut self.w, self.family, seq, op);
                results.push(None);
            }
            self.send_buf()?;
            let mut pending = chunk.len();
            while pending > 0 {
                let res = &mut results;
                self.recv_some("batch", |s, r| {
                    let i = s.wrapping_sub(first) as usize;
                    if i >= chunk.len() || res[base + i].is_some() {
                        return;
                    }
                    let op = &chunk[i];
                    let out = match r {
                        Reply::Ack | Reply::Done => Ok(()),
                        Reply::Error(errno, ext) => Err(IpvsError::Kernel {
                            op: cmd::name(op.cmd()),
                            target: op.target(),
                            errno,
                            reason: explain(op.cmd(), errno),
                            ext,
                        }),
                        Reply::Data(_) => return,
                    };
                    res[base + i] = Some(out);
                    pending -= 1;
                })?;
            }
        }
        Ok(results.into_iter().map(|r| r.unwrap_or(Ok(()))).collect())
    }

    fn one(&mut self, op: Op) -> Result<()> {
        self.apply(std::slice::from_ref(&op))?.pop().unwrap_or(Ok(()))
    }

    /// Adds a service.
    pub fn new_service(&mut self, s: &Service) -> Result<()> {
        self.one(Op::NewService(s.clone()))
    }

    /// Changes a service's scheduler, flags, timeout or netmask.
    pub fn set_service(&mut self, s: &Service) -> Result<()> {
        self.one(Op::SetService(s.clone()))
    }

    /// Deletes a service and its destinations.
    pub fn del_service(&mut self, key: &ServiceKey) -> Result<()> {
        self.one(Op::DelService(*key))
    }

    /// Adds a destination to a service.
    pub fn new_dest(&mut self, key: &ServiceKey, d: &Dest) -> Result<()> {
        self.one(Op::NewDest(*key, *d))
    }

    /// Changes a destination.
    pub fn set_dest(&mut self, key: &ServiceKey, d: &Dest) -> Result<()> {
        self.one(Op::SetDest(*key, *d))
    }

    /// Deletes a destination.
    pub fn del_dest(&mut self, key: &ServiceKey, addr: std::net::SocketAddr) -> Result<()> {
        self.one(Op::DelDest(*key, addr))
    }

    /// Every service (a dump).
    pub fn services(&mut self) -> Result<Vec<ServiceEntry>> {
        let mut out = Vec::new();
        self.request_each(cmd::GET_SERVICE, true, || "all services".into(), |_| {}, |attrs| {
            let nest = attrs.get(cmd_attr::SERVICE).ok_or("no service attribute")?;
            out.push(wire::parse_service(nest.nested())?);
            Ok(())
        })?;
        Ok(out)
    }

    /// One service, or `None` when there is no such service.
    pub fn service(&mut self, key: &ServiceKey) -> Result<Option<ServiceEntry>> {
        let r = self.request(cmd::GET_SERVICE, false, || format!("service {key}"), |w| wire::put_service_key_nest(w, key));
        match r {
            Err(IpvsError::Kernel { errno: libc::ESRCH, .. }) => Ok(None),
            Err(e) => Err(e),
            Ok(msgs) => {
                for m in msgs {
                    let attrs = wire::Attrs::new(m.get(wire::GENL_HDRLEN..).unwrap_or(&[]));
                    if let Some(nest) = attrs.get(cmd_attr::SERVICE) {
                        return wire::parse_service(nest.nested())
                            .map(Some)
                            .map_err(|detail| IpvsError::Protocol { op: "GET_SERVICE", detail });
                    }
                }
                Ok(None)
            }
        }
    }

    /// The destinations of a service (a dump), in the kernel's order.
    pub fn dests(&mut self, key: &ServiceKey) -> Result<Vec<DestEntry>> {
        let mut out = Vec::new();
        let family = key.family();
        self.request_each(
            cmd::GET_DEST,
            true,
            || format!("service {key}"),
            |w| wire::put_service_key_nest(w, key),
            |attrs| {
                let nest = attrs.get(cmd_attr::DEST).ok_or("no dest attribute")?;
                out.push(wire::parse_dest(nest.nested(), family)?);
                Ok(())
            },
        )?;
        Ok(out)
    }

    /// The whole table: every service with its destinations.
    pub fn table(&mut self) -> Result<Vec<(ServiceEntry, Vec<DestEntry>)>> {
        let services = self.services()?;
        let mut out = Vec::with_capacity(services.len());
        for s in services {
            let d = self.dests(&s.service.key)?;
            out.push((s, d));
        }
        Ok(out)
    }

    /// Deletes every service.
    pub fn flush(&mut self) -> Result<()> {
        self.request(cmd::FLUSH, false, || "all services".into(), |_| {}).map(drop)
    }

    /// Zeroes every counter.
    pub fn zero(&mut self) -> Result<()> {
        self.request(cmd::ZERO, false, || "all counters".into(), |_| {}).map(drop)
    }

    /// The connection timeouts.
    pub fn timeouts(&mut self) -> Result<Timeouts> {
        let msgs = self.request(cmd::GET_CONFIG, false, || "timeouts".into(), |_| {})?;
        Ok(wire::parse_timeouts(first_reply(&msgs, "GET_CONFIG")?))
    }

    /// Sets the connection timeouts (0 leaves one unchanged).
    pub fn set_timeouts(&mut self, t: &Timeouts) -> Result<()> {
        self.request(cmd::SET_CONFIG, false, || format!("timeouts {}/{}/{}", t.tcp, t.tcp_fin, t.udp), |w| {
            w.u32(cmd_attr::TIMEOUT_TCP, t.tcp);
            w.u32(cmd_attr::TIMEOUT_TCP_FIN, t.tcp_fin);
            w.u32(cmd_attr::TIMEOUT_UDP, t.udp);
        })
        .map(drop)
    }

    /// IPVS version and connection table size.
    pub fn info(&mut self) -> Result<Info> {
        let msgs = self.request(cmd::GET_INFO, false, || "info".into(), |_| {})?;
        Ok(wire::parse_info(first_reply(&msgs, "GET_INFO")?))
    }

    /// Starts a connection-sync daemon.
    pub fn start_daemon(&mut self, d: &SyncDaemon) -> Result<()> {
        self.request(cmd::NEW_DAEMON, false, || format!("sync daemon {:?} on {} id {}", d.state, d.ifname, d.sync_id), |w| {
            wire::put_daemon(w, d)
        })
        .map(drop)
    }

    /// Stops the sync daemon in `state`.
    pub fn stop_daemon(&mut self, state: SyncState) -> Result<()> {
        self.request(cmd::DEL_DAEMON, false, || format!("sync daemon {state:?}"), |w| {
            let at = w.nest_begin(cmd_attr::DAEMON);
            w.u32(wire::daemon_attr::STATE, state.wire());
            w.nest_end(at);
        })
        .map(drop)
    }

    /// The running sync daemons.
    pub fn daemons(&mut self) -> Result<Vec<SyncDaemon>> {
        let msgs = self.request(cmd::GET_DAEMON, true, || "sync daemons".into(), |_| {})?;
        let mut out = Vec::new();
        for m in msgs {
            let attrs = wire::Attrs::new(m.get(wire::GENL_HDRLEN..).unwrap_or(&[]));
            if let Some(nest) = attrs.get(cmd_attr::DAEMON) {
                out.push(wire::parse_daemon(nest.nested()).map_err(|detail| IpvsError::Protocol { op: "GET_DAEMON", detail })?);
            }
        }
        Ok(out)
    }
}

/// The attributes of the first reply of a GET command.
fn first_reply<'m>(msgs: &'m [Vec<u8>], op: &'static str) -> Result<wire::Attrs<'m>> {
    let m = msgs.first().ok_or_else(|| IpvsError::Protocol { op, detail: "no reply".into() })?;
    Ok(wire::Attrs::new(m.get(wire::GENL_HDRLEN..).unwrap_or(&[])))
}
