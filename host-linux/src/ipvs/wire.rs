//! The IPVS generic-netlink wire format: constants of `linux/ip_vs.h` and
//! `linux/netlink.h`, and a pure encoder/decoder for requests and replies.
//!
//! Nothing here touches a socket, so the encoding is unit-tested byte by
//! byte (`host-linux/tests/ipvs.rs`). Multi-byte attribute values are in host
//! order except where `ip_vs.h` says otherwise: ports
//! (`IPVS_SVC_ATTR_PORT`, `IPVS_DEST_ATTR_PORT`, `IPVS_DEST_ATTR_TUN_PORT`;
//! not `IPVS_DAEMON_ATTR_MCAST_PORT`, which is host order) and the IPv4 persistence netmask
//! (`IPVS_SVC_ATTR_NETMASK`) are big endian; addresses are raw bytes, 16 of
//! them (`union nf_inet_addr`) for IPv4 too, as the kernel copies
//! `sizeof(union nf_inet_addr)` at most and reads the first 4 for IPv4.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::types::{
    Dest, DestEntry, Family, Forward, Info, Op, Protocol, Service, ServiceEntry, ServiceKey, Stats, SyncDaemon,
    SyncState, Timeouts, Tunnel, TunnelKind,
};

/// `IPVS_GENL_NAME`.
pub const IPVS_GENL_NAME: &str = "IPVS";
/// `IPVS_GENL_VERSION`.
pub const IPVS_GENL_VERSION: u8 = 1;

/// `GENL_ID_CTRL`: the generic-netlink controller's family id.
pub const GENL_ID_CTRL: u16 = 0x10;
/// `CTRL_CMD_GETFAMILY`.
pub const CTRL_CMD_GETFAMILY: u8 = 3;
/// `CTRL_ATTR_FAMILY_ID` (u16).
pub const CTRL_ATTR_FAMILY_ID: u16 = 1;
/// `CTRL_ATTR_FAMILY_NAME` (string).
pub const CTRL_ATTR_FAMILY_NAME: u16 = 2;

/// `NLMSG_ERROR`.
pub const NLMSG_ERROR: u16 = 2;
/// `NLMSG_DONE`.
pub const NLMSG_DONE: u16 = 3;
/// `NLM_F_REQUEST`.
pub const NLM_F_REQUEST: u16 = 0x01;
/// `NLM_F_MULTI`.
pub const NLM_F_MULTI: u16 = 0x02;
/// `NLM_F_ACK`.
pub const NLM_F_ACK: u16 = 0x04;
/// `NLM_F_DUMP` (`NLM_F_ROOT | NLM_F_MATCH`).
pub const NLM_F_DUMP: u16 = 0x300;
/// `NLM_F_CAPPED`: an error message carries only the request's header.
pub const NLM_F_CAPPED: u16 = 0x100;
/// `NLM_F_ACK_TLVS`: an error message carries extended-ACK attributes.
pub const NLM_F_ACK_TLVS: u16 = 0x200;
/// `NLMSGERR_ATTR_MSG`: the extended ACK's text.
pub const NLMSGERR_ATTR_MSG: u16 = 1;
/// `NLA_F_NESTED`.
pub const NLA_F_NESTED: u16 = 0x8000;
/// `NLA_TYPE_MASK`.
pub const NLA_TYPE_MASK: u16 = 0x3fff;

/// `IPVS_CMD_*`.
#[allow(missing_docs)]
pub mod cmd {
    pub const NEW_SERVICE: u8 = 1;
    pub const SET_SERVICE: u8 = 2;
    pub const DEL_SERVICE: u8 = 3;
    pub const GET_SERVICE: u8 = 4;
    pub const NEW_DEST: u8 = 5;
    pub const SET_DEST: u8 = 6;
    pub const DEL_DEST: u8 = 7;
    pub const GET_DEST: u8 = 8;
    pub const NEW_DAEMON: u8 = 9;
    pub const DEL_DAEMON: u8 = 10;
    pub const GET_DAEMON: u8 = 11;
    pub const SET_CONFIG: u8 = 12;
    pub const GET_CONFIG: u8 = 13;
    pub const SET_INFO: u8 = 14;
    pub const GET_INFO: u8 = 15;
    pub const ZERO: u8 = 16;
    pub const FLUSH: u8 = 17;

    /// The `IPVS_CMD_` name of `c`, for messages.
    pub fn name(c: u8) -> &'static str {
        match c {
            NEW_SERVICE => "NEW_SERVICE",
            SET_SERVICE => "SET_SERVICE",
            DEL_SERVICE => "DEL_SERVICE",
            GET_SERVICE => "GET_SERVICE",
            NEW_DEST => "NEW_DEST",
            SET_DEST => "SET_DEST",
            DEL_DEST => "DEL_DEST",
            GET_DEST => "GET_DEST",
            NEW_DAEMON => "NEW_DAEMON",
            DEL_DAEMON => "DEL_DAEMON",
            GET_DAEMON => "GET_DAEMON",
            SET_CONFIG => "SET_CONFIG",
            GET_CONFIG => "GET_CONFIG",
            SET_INFO => "SET_INFO",
            GET_INFO => "GET_INFO",
            ZERO => "ZERO",
            FLUSH => "FLUSH",
            _ => "UNKNOWN",
        }
    }
}

/// `IPVS_CMD_ATTR_*`.
#[allow(missing_docs)]
pub mod cmd_attr {
    pub const SERVICE: u16 = 1;
    pub const DEST: u16 = 2;
    pub const DAEMON: u16 = 3;
    pub const TIMEOUT_TCP: u16 = 4;
    pub const TIMEOUT_TCP_FIN: u16 = 5;
    pub const TIMEOUT_UDP: u16 = 6;
}

/// `IPVS_SVC_ATTR_*`.
#[allow(missing_docs)]
pub mod svc_attr {
    pub const AF: u16 = 1;
    pub const PROTOCOL: u16 = 2;
    pub const ADDR: u16 = 3;
    pub const PORT: u16 = 4;
    pub const FWMARK: u16 = 5;
    pub const SCHED_NAME: u16 = 6;
    pub const FLAGS: u16 = 7;
    pub const TIMEOUT: u16 = 8;
    pub const NETMASK: u16 = 9;
    pub const STATS: u16 = 10;
    pub const PE_NAME: u16 = 11;
    pub const STATS64: u16 = 12;
}

/// `IPVS_DEST_ATTR_*`.
#[allow(missing_docs)]
pub mod dest_attr {
    pub const ADDR: u16 = 1;
    pub const PORT: u16 = 2;
    pub const FWD_METHOD: u16 = 3;
    pub const WEIGHT: u16 = 4;
    pub const U_THRESH: u16 = 5;
    pub const L_THRESH: u16 = 6;
    pub const ACTIVE_CONNS: u16 = 7;
    pub const INACT_CONNS: u16 = 8;
    pub const PERSIST_CONNS: u16 = 9;
    pub const STATS: u16 = 10;
    pub const ADDR_FAMILY: u16 = 11;
    pub const STATS64: u16 = 12;
    pub const TUN_TYPE: u16 = 13;
    pub const TUN_PORT: u16 = 14;
    pub const TUN_FLAGS: u16 = 15;
}

/// `IPVS_DAEMON_ATTR_*`.
#[allow(missing_docs)]
pub mod daemon_attr {
    pub const STATE: u16 = 1;
    pub const MCAST_IFN: u16 = 2;
    pub const SYNC_ID: u16 = 3;
    pub const SYNC_MAXLEN: u16 = 4;
    pub const MCAST_GROUP: u16 = 5;
    pub const MCAST_GROUP6: u16 = 6;
    pub const MCAST_PORT: u16 = 7;
    pub const MCAST_TTL: u16 = 8;
}

/// `IPVS_STATS_ATTR_*`.
#[allow(missing_docs)]
pub mod stats_attr {
    pub const CONNS: u16 = 1;
    pub const INPKTS: u16 = 2;
    pub const OUTPKTS: u16 = 3;
    pub const INBYTES: u16 = 4;
    pub const OUTBYTES: u16 = 5;
}

/// `IPVS_INFO_ATTR_*`.
#[allow(missing_docs)]
pub mod info_attr {
    pub const VERSION: u16 = 1;
    pub const CONN_TAB_SIZE: u16 = 2;
}

/// `IP_VS_SVC_F_PERSISTENT`.
pub const IP_VS_SVC_F_PERSISTENT: u32 = 0x0001;
/// `IP_VS_SVC_F_HASHED`: kernel-internal, reported in dumps, never set by us.
pub const IP_VS_SVC_F_HASHED: u32 = 0x0002;
/// `IP_VS_SVC_F_ONEPACKET`.
pub const IP_VS_SVC_F_ONEPACKET: u32 = 0x0004;
/// `IP_VS_SVC_F_SCHED1` (sh-fallback / mh-fallback).
pub const IP_VS_SVC_F_SCHED1: u32 = 0x0008;
/// `IP_VS_SVC_F_SCHED2` (sh-port / mh-port).
pub const IP_VS_SVC_F_SCHED2: u32 = 0x0010;
/// `IP_VS_SVC_F_SCHED3`.
pub const IP_VS_SVC_F_SCHED3: u32 = 0x0020;
/// The service flags a user may set (everything but `HASHED`).
pub const SVC_FLAGS_USER: u32 = IP_VS_SVC_F_PERSISTENT
    | IP_VS_SVC_F_ONEPACKET
    | IP_VS_SVC_F_SCHED1
    | IP_VS_SVC_F_SCHED2
    | IP_VS_SVC_F_SCHED3;

/// `IP_VS_CONN_F_FWD_MASK`.
pub const IP_VS_CONN_F_FWD_MASK: u32 = 0x0007;
/// `IP_VS_CONN_F_MASQ`.
pub const IP_VS_CONN_F_MASQ: u32 = 0x0000;
/// `IP_VS_CONN_F_LOCALNODE`.
pub const IP_VS_CONN_F_LOCALNODE: u32 = 0x0001;
/// `IP_VS_CONN_F_TUNNEL`.
pub const IP_VS_CONN_F_TUNNEL: u32 = 0x0002;
/// `IP_VS_CONN_F_DROUTE`.
pub const IP_VS_CONN_F_DROUTE: u32 = 0x0003;
/// `IP_VS_CONN_F_BYPASS`.
pub const IP_VS_CONN_F_BYPASS: u32 = 0x0004;

/// `IP_VS_CONN_F_TUNNEL_TYPE_IPIP`.
pub const IP_VS_CONN_F_TUNNEL_TYPE_IPIP: u8 = 0;
/// `IP_VS_CONN_F_TUNNEL_TYPE_GUE`.
pub const IP_VS_CONN_F_TUNNEL_TYPE_GUE: u8 = 1;
/// `IP_VS_CONN_F_TUNNEL_TYPE_GRE`.
pub const IP_VS_CONN_F_TUNNEL_TYPE_GRE: u8 = 2;
/// `IP_VS_TUNNEL_ENCAP_FLAG_CSUM`.
pub const IP_VS_TUNNEL_ENCAP_FLAG_CSUM: u16 = 1 << 0;
/// `IP_VS_TUNNEL_ENCAP_FLAG_REMCSUM`.
pub const IP_VS_TUNNEL_ENCAP_FLAG_REMCSUM: u16 = 1 << 1;

/// `IP_VS_STATE_MASTER`.
pub const IP_VS_STATE_MASTER: u32 = 1;
/// `IP_VS_STATE_BACKUP`.
pub const IP_VS_STATE_BACKUP: u32 = 2;

/// `AF_INET`.
pub const AF_INET: u16 = 2;
/// `AF_INET6`.
pub const AF_INET6: u16 = 10;

/// Length of `struct nlmsghdr`.
pub const NLMSG_HDRLEN: usize = 16;
/// Length of `struct genlmsghdr`.
pub const GENL_HDRLEN: usize = 4;

/// Rounds up to the 4-byte netlink alignment.
pub const fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// Appends netlink messages to a buffer: headers, generic-netlink header and
/// attributes, with lengths patched in when a message or nest ends.
#[derive(Debug, Default, Clone)]
pub struct Writer {
    buf: Vec<u8>,
    msg_start: usize,
}

impl Writer {
    /// An empty buffer.
    pub fn new() -> Self {
        Writer::default()
    }

    /// Starts a generic-netlink message of family `ty`.
    pub fn begin(&mut self, ty: u16, flags: u16, seq: u32, cmd: u8, version: u8) {
        self.msg_start = self.buf.len();
        self.buf.extend_from_slice(&0u32.to_ne_bytes()); // nlmsg_len, patched in end()
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(&flags.to_ne_bytes());
        self.buf.extend_from_slice(&seq.to_ne_bytes());
        self.buf.extend_from_slice(&0u32.to_ne_bytes()); // nlmsg_pid: the kernel
        self.buf.extend_from_slice(&[cmd, version, 0, 0]);
    }

    /// Ends the message started by [`Writer::begin`].
    pub fn end(&mut self) {
        let len = (self.buf.len() - self.msg_start) as u32;
        self.buf[self.msg_start..self.msg_start + 4].copy_from_slice(&len.to_ne_bytes());
    }

    /// An attribute with raw payload bytes.
    pub fn bytes(&mut self, ty: u16, payload: &[u8]) {
        let len = 4 + payload.len();
        self.buf.extend_from_slice(&(len as u16).to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(payload);
        self.buf.resize(align4(self.buf.len()), 0);
    }

    /// A u8 attribute.
    pub fn u8(&mut self, ty: u16, v: u8) {
        self.bytes(ty, &[v]);
    }

    /// A u16 attribute in host order.
    pub fn u16(&mut self, ty: u16, v: u16) {
        self.bytes(ty, &v.to_ne_bytes());
    }

    /// A u16 attribute in network order (`__be16`).
    pub fn be16(&mut self, ty: u16, v: u16) {
        self.bytes(ty, &v.to_be_bytes());
    }

    /// A u32 attribute in host order.
    pub fn u32(&mut self, ty: u16, v: u32) {
        self.bytes(ty, &v.to_ne_bytes());
    }

    /// A u32 attribute in network order (`__be32`).
    pub fn be32(&mut self, ty: u16, v: u32) {
        self.bytes(ty, &v.to_be_bytes());
    }

    /// A NUL-terminated string attribute.
    pub fn string(&mut self, ty: u16, s: &str) {
        let mut v = Vec::with_capacity(s.len() + 1);
        v.extend_from_slice(s.as_bytes());
        v.push(0);
        self.bytes(ty, &v);
    }

    /// Opens a nested attribute; close it with [`Writer::nest_end`].
    pub fn nest_begin(&mut self, ty: u16) -> usize {
        let at = self.buf.len();
        self.buf.extend_from_slice(&0u16.to_ne_bytes());
        self.buf.extend_from_slice(&(ty | NLA_F_NESTED).to_ne_bytes());
        at
    }

    /// Closes the nested attribute opened at `at`.
    pub fn nest_end(&mut self, at: usize) {
        let len = (self.buf.len() - at) as u16;
        self.buf[at..at + 2].copy_from_slice(&len.to_ne_bytes());
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Nothing written yet.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The bytes written so far.
    pub fn as_slice(&self) -> &[u8] {
        &self.buf
    }

    /// Forgets everything written.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.msg_start = 0;
    }

    /// The buffer.
    pub fn into_vec(self) -> Vec<u8> {
        self.buf
    }
}

/// 16 address bytes (`union nf_inet_addr`).
pub fn inet_addr(ip: IpAddr) -> [u8; 16] {
    let mut a = [0u8; 16];
    match ip {
        IpAddr::V4(v4) => a[..4].copy_from_slice(&v4.octets()),
        IpAddr::V6(v6) => a = v6.octets(),
    }
    a
}

fn af_of(ip: IpAddr) -> u16 {
    if ip.is_ipv4() {
        AF_INET
    } else {
        AF_INET6
    }
}

/// Writes the attributes that identify `key` (inside `IPVS_CMD_ATTR_SERVICE`).
pub fn put_service_key(w: &mut Writer, key: &ServiceKey) {
    match key {
        ServiceKey::Addr { protocol, addr } => {
            w.u16(svc_attr::AF, af_of(addr.ip()));
            w.u16(svc_attr::PROTOCOL, u16::from(protocol.ipproto()));
            w.bytes(svc_attr::ADDR, &inet_addr(addr.ip()));
            w.be16(svc_attr::PORT, addr.port());
        }
        ServiceKey::Fwmark { family, mark } => {
            w.u16(svc_attr::AF, family.af());
            w.u32(svc_attr::FWMARK, *mark);
        }
    }
}

/// Writes a whole `IPVS_CMD_ATTR_SERVICE` nest: the key, and with `full`
/// the scheduler, flags (`struct ip_vs_flags { flags, mask }`), timeout,
/// netmask and persistence engine the kernel requires for NEW/SET.
pub fn put_service(w: &mut Writer, svc: &Service, full: bool) {
    let at = w.nest_begin(cmd_attr::SERVICE);
    put_service_key(w, &svc.key);
    if full {
        w.string(svc_attr::SCHED_NAME, &svc.scheduler);
        if let Some(pe) = &svc.pe_name {
            w.string(svc_attr::PE_NAME, pe);
        }
        let mut flags = [0u8; 8];
        flags[..4].copy_from_slice(&(svc.flags & SVC_FLAGS_USER).to_ne_bytes());
        flags[4..].copy_from_slice(&SVC_FLAGS_USER.to_ne_bytes());
        w.bytes(svc_attr::FLAGS, &flags);
        w.u32(svc_attr::TIMEOUT, svc.timeout);
        // IPv4: a network-order mask; IPv6: a prefix length in host order
        // (the kernel keeps the raw 32 bits and compares them with 128).
        w.bytes(svc_attr::NETMASK, &svc.netmask_bytes());
    }
    w.nest_end(at);
}

/// Writes the service key alone, nested, as GET_DEST and the DEST commands want.
pub fn put_service_key_nest(w: &mut Writer, key: &ServiceKey) {
    let at = w.nest_begin(cmd_attr::SERVICE);
    put_service_key(w, key);
    w.nest_end(at);
}

/// Writes an `IPVS_CMD_ATTR_DEST` nest. With `full`, everything NEW/SET_DEST
/// require (forwarding method, weight, thresholds) and the tunnel attributes.
pub fn put_dest(w: &mut Writer, dest: &Dest, full: bool) {
    let at = w.nest_begin(cmd_attr::DEST);
    w.bytes(dest_attr::ADDR, &inet_addr(dest.addr.ip()));
    w.be16(dest_attr::PORT, dest.addr.port());
    w.u16(dest_attr::ADDR_FAMILY, af_of(dest.addr.ip()));
    if full {
        w.u32(dest_attr::FWD_METHOD, dest.forward.conn_flags());
        w.u32(dest_attr::WEIGHT, dest.weight as u32);
        w.u32(dest_attr::U_THRESH, dest.upper_threshold);
        w.u32(dest_attr::L_THRESH, dest.lower_threshold);
        if let Forward::Tunnel(t) = dest.forward {
            w.u8(dest_attr::TUN_TYPE, t.kind.wire());
            w.be16(dest_attr::TUN_PORT, t.port);
            w.u16(dest_attr::TUN_FLAGS, t.flags);
        }
    }
    w.nest_end(at);
}

/// Writes an `IPVS_CMD_ATTR_DAEMON` nest for NEW_DAEMON.
pub fn put_daemon(w: &mut Writer, d: &SyncDaemon) {
    let at = w.nest_begin(cmd_attr::DAEMON);
    w.u32(daemon_attr::STATE, d.state.wire());
    w.string(daemon_attr::MCAST_IFN, &d.ifname);
    w.u32(daemon_attr::SYNC_ID, d.sync_id);
    if let Some(m) = d.maxlen {
        w.u16(daemon_attr::SYNC_MAXLEN, m);
    }
    match d.group {
        Some(IpAddr::V4(g)) => w.bytes(daemon_attr::MCAST_GROUP, &g.octets()),
        Some(IpAddr::V6(g)) => w.bytes(daemon_attr::MCAST_GROUP6, &g.octets()),
        None => {}
    }
    if let Some(p) = d.port {
        // Host order, unlike the service and real server ports: the kernel
        // reads it with nla_get_u16 (the UML suite checks it through ipvsadm).
        w.u16(daemon_attr::MCAST_PORT, p);
    }
    if let Some(t) = d.ttl {
        w.u8(daemon_attr::MCAST_TTL, t);
    }
    w.nest_end(at);
}

/// Appends the request for `op` (with `NLM_F_REQUEST | NLM_F_ACK`) to `w`.
pub fn encode_op(w: &mut Writer, family: u16, seq: u32, op: &Op) {
    let flags = NLM_F_REQUEST | NLM_F_ACK;
    w.begin(family, flags, seq, op.cmd(), IPVS_GENL_VERSION);
    match op {
        Op::NewService(s) | Op::SetService(s) => put_service(w, s, true),
        Op::DelService(k) => put_service_key_nest(w, k),
        Op::NewDest(k, d) | Op::SetDest(k, d) => {
            put_service_key_nest(w, k);
            put_dest(w, d, true);
        }
        Op::DelDest(k, addr) => {
            put_service_key_nest(w, k);
            let d = Dest::new(*addr, Forward::Masq, 0);
            put_dest(w, &d, false);
        }
    }
    w.end();
}

/// The request for `op` alone, as bytes.
pub fn encode(family: u16, seq: u32, op: &Op) -> Vec<u8> {
    let mut w = Writer::new();
    encode_op(&mut w, family, seq, op);
    w.into_vec()
}

/// One netlink attribute: its type (flags masked off) and payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attr<'a> {
    /// `nla_type & NLA_TYPE_MASK`.
    pub ty: u16,
    /// The payload, without padding.
    pub payload: &'a [u8],
}

impl<'a> Attr<'a> {
    /// The payload as a u8.
    pub fn u8(&self) -> Option<u8> {
        self.payload.first().copied()
    }
    /// The payload as a host-order u16.
    pub fn u16(&self) -> Option<u16> {
        Some(u16::from_ne_bytes(self.payload.get(..2)?.try_into().ok()?))
    }
    /// The payload as a network-order u16.
    pub fn be16(&self) -> Option<u16> {
        Some(u16::from_be_bytes(self.payload.get(..2)?.try_into().ok()?))
    }
    /// The payload as a host-order u32.
    pub fn u32(&self) -> Option<u32> {
        Some(u32::from_ne_bytes(self.payload.get(..4)?.try_into().ok()?))
    }
    /// The payload as a network-order u32.
    pub fn be32(&self) -> Option<u32> {
        Some(u32::from_be_bytes(self.payload.get(..4)?.try_into().ok()?))
    }
    /// The payload as a host-order u64.
    pub fn u64(&self) -> Option<u64> {
        Some(u64::from_ne_bytes(self.payload.get(..8)?.try_into().ok()?))
    }
    /// The payload as a string (up to the first NUL).
    pub fn string(&self) -> Option<String> {
        let end = self.payload.iter().position(|&b| b == 0).unwrap_or(self.payload.len());
        std::str::from_utf8(&self.payload[..end]).ok().map(str::to_owned)
    }
    /// The attributes nested in the payload.
    pub fn nested(&self) -> Attrs<'a> {
        Attrs::new(self.payload)
    }
}

/// An iterator over the attributes in a byte slice; stops at the first
/// malformed one.
#[derive(Debug, Clone)]
pub struct Attrs<'a> {
    rest: &'a [u8],
}

impl<'a> Attrs<'a> {
    /// The attributes in `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Attrs { rest: bytes }
    }

    /// The first attribute of type `ty`.
    pub fn get(&self, ty: u16) -> Option<Attr<'a>> {
        Iterator::find(&mut self.clone(), |a| a.ty == ty)
    }
}

impl<'a> Iterator for Attrs<'a> {
    type Item = Attr<'a>;
    fn next(&mut self) -> Option<Attr<'a>> {
        if self.rest.len() < 4 {
            return None;
        }
        let len = usize::from(u16::from_ne_bytes([self.rest[0], self.rest[1]]));
        let ty = u16::from_ne_bytes([self.rest[2], self.rest[3]]) & NLA_TYPE_MASK;
        if len < 4 || len > self.rest.len() {
            self.rest = &[];
            return None;
        }
        let payload = &self.rest[4..len];
        self.rest = self.rest.get(align4(len)..).unwrap_or(&[]);
        Some(Attr { ty, payload })
    }
}

/// One netlink message of a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NlMsg<'a> {
    /// `nlmsg_type`.
    pub ty: u16,
    /// `nlmsg_flags`.
    pub flags: u16,
    /// `nlmsg_seq`.
    pub seq: u32,
    /// Everything after the netlink header.
    pub payload: &'a [u8],
}

/// Splits a datagram into its netlink messages; stops at the first
/// malformed one.
pub fn messages(buf: &[u8]) -> impl Iterator<Item = NlMsg<'_>> {
    let mut rest = buf;
    std::iter::from_fn(move || {
        if rest.len() < NLMSG_HDRLEN {
            return None;
        }
        let len = u32::from_ne_bytes(rest[0..4].try_into().ok()?) as usize;
        if len < NLMSG_HDRLEN || len > rest.len() {
            rest = &[];
            return None;
        }
        let m = NlMsg {
            ty: u16::from_ne_bytes(rest[4..6].try_into().ok()?),
            flags: u16::from_ne_bytes(rest[6..8].try_into().ok()?),
            seq: u32::from_ne_bytes(rest[8..12].try_into().ok()?),
            payload: &rest[NLMSG_HDRLEN..len],
        };
        rest = rest.get(align4(len)..).unwrap_or(&[]);
        Some(m)
    })
}

/// The error of an `NLMSG_ERROR` message: `(errno, extended-ACK text)`,
/// errno 0 meaning an ACK.
pub fn parse_error(m: &NlMsg<'_>) -> Option<(i32, Option<String>)> {
    let err = i32::from_ne_bytes(m.payload.get(..4)?.try_into().ok()?);
    let mut text = None;
    if m.flags & NLM_F_ACK_TLVS != 0 {
        let orig_len = u32::from_ne_bytes(m.payload.get(4..8)?.try_into().ok()?) as usize;
        let skip = if m.flags & NLM_F_CAPPED != 0 { NLMSG_HDRLEN } else { align4(orig_len) };
        if let Some(tlvs) = m.payload.get(4 + skip..) {
            text = Attrs::new(tlvs).get(NLMSGERR_ATTR_MSG).and_then(|a| a.string());
        }
    }
    Some((-err, text))
}

/// The attributes of a generic-netlink message (after the genl header), and its command.
pub fn genl_attrs<'a>(m: &NlMsg<'a>) -> Option<(u8, Attrs<'a>)> {
    let cmd = *m.payload.first()?;
    Some((cmd, Attrs::new(m.payload.get(GENL_HDRLEN..)?)))
}

fn addr_from(af: u16, bytes: &[u8]) -> Option<IpAddr> {
    match af {
        AF_INET => Some(IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(bytes.get(..4)?).ok()?))),
        AF_INET6 => Some(IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(bytes.get(..16)?).ok()?))),
        _ => None,
    }
}

fn parse_stats(a: Option<Attr<'_>>, wide: bool) -> Stats {
    let Some(a) = a else { return Stats::default() };
    let get = |ty| {
        a.nested().get(ty).and_then(|x| if wide { x.u64() } else { x.u32().map(u64::from) }).unwrap_or(0)
    };
    Stats {
        conns: get(stats_attr::CONNS),
        inpkts: get(stats_attr::INPKTS),
        outpkts: get(stats_attr::OUTPKTS),
        inbytes: get(stats_attr::INBYTES),
        outbytes: get(stats_attr::OUTBYTES),
    }
}

fn stats_of(attrs: &Attrs<'_>, s64: u16, s32: u16) -> Stats {
    match attrs.get(s64) {
        Some(a) => parse_stats(Some(a), true),
        None => parse_stats(attrs.get(s32), false),
    }
}

/// Decodes the attributes nested in `IPVS_CMD_ATTR_SERVICE` of a GET_SERVICE reply.
pub fn parse_service(nest: Attrs<'_>) -> Result<ServiceEntry, String> {
    let af = nest.get(svc_attr::AF).and_then(|a| a.u16()).ok_or("service without IPVS_SVC_ATTR_AF")?;
    let family = Family::from_af(af).ok_or_else(|| format!("service of unknown address family {af}"))?;
    let key = if let Some(m) = nest.get(svc_attr::FWMARK).and_then(|a| a.u32()).filter(|&m| m != 0) {
        ServiceKey::Fwmark { family, mark: m }
    } else {
        let proto = nest.get(svc_attr::PROTOCOL).and_then(|a| a.u16()).ok_or("service without protocol")?;
        let protocol = u8::try_from(proto)
            .ok()
            .and_then(Protocol::from_ipproto)
            .ok_or_else(|| format!("service of unknown protocol {proto}"))?;
        let ip = nest
            .get(svc_attr::ADDR)
            .and_then(|a| addr_from(af, a.payload))
            .ok_or("service without address")?;
        let port = nest.get(svc_attr::PORT).and_then(|a| a.be16()).ok_or("service without port")?;
        ServiceKey::Addr { protocol, addr: SocketAddr::new(ip, port) }
    };
    let scheduler = nest.get(svc_attr::SCHED_NAME).and_then(|a| a.string()).unwrap_or_default();
    let flags = nest.get(svc_attr::FLAGS).and_then(|a| a.u32()).unwrap_or(0) & SVC_FLAGS_USER;
    let timeout = nest.get(svc_attr::TIMEOUT).and_then(|a| a.u32()).unwrap_or(0);
    let netmask_raw: [u8; 4] =
        nest.get(svc_attr::NETMASK).and_then(|a| a.payload.get(..4)?.try_into().ok()).unwrap_or([0; 4]);
    let pe_name = nest.get(svc_attr::PE_NAME).and_then(|a| a.string()).filter(|s| !s.is_empty());
    let netmask = Service::netmask_from_bytes(key.family(), netmask_raw);
    Ok(ServiceEntry {
        service: Service { key, scheduler, flags, timeout, netmask, pe_name },
        stats: stats_of(&nest, svc_attr::STATS64, svc_attr::STATS),
    })
}

/// Decodes the attributes nested in `IPVS_CMD_ATTR_DEST` of a GET_DEST reply;
/// `svc_family` is the service's (older kernels send no `ADDR_FAMILY`).
pub fn parse_dest(nest: Attrs<'_>, svc_family: Family) -> Result<DestEntry, String> {
    let af = nest.get(dest_attr::ADDR_FAMILY).and_then(|a| a.u16()).unwrap_or(svc_family.af());
    let ip = nest.get(dest_attr::ADDR).and_then(|a| addr_from(af, a.payload)).ok_or("dest without address")?;
    let port = nest.get(dest_attr::PORT).and_then(|a| a.be16()).ok_or("dest without port")?;
    let fwd = nest.get(dest_attr::FWD_METHOD).and_then(|a| a.u32()).ok_or("dest without forwarding method")?;
    let tunnel = Tunnel {
        kind: TunnelKind::from_wire(nest.get(dest_attr::TUN_TYPE).and_then(|a| a.u8()).unwrap_or(0))
            .unwrap_or(TunnelKind::Ipip),
        port: nest.get(dest_attr::TUN_PORT).and_then(|a| a.be16()).unwrap_or(0),
        flags: nest.get(dest_attr::TUN_FLAGS).and_then(|a| a.u16()).unwrap_or(0),
    };
    let forward = Forward::from_conn_flags(fwd, tunnel).ok_or_else(|| format!("dest with unknown forwarding method {fwd}"))?;
    let u32_of = |ty| nest.get(ty).and_then(|a| a.u32()).unwrap_or(0);
    Ok(DestEntry {
        dest: Dest {
            addr: SocketAddr::new(ip, port),
            forward,
            weight: u32_of(dest_attr::WEIGHT) as i32,
            upper_threshold: u32_of(dest_attr::U_THRESH),
            lower_threshold: u32_of(dest_attr::L_THRESH),
        },
        active_conns: u32_of(dest_attr::ACTIVE_CONNS),
        inactive_conns: u32_of(dest_attr::INACT_CONNS),
        persistent_conns: u32_of(dest_attr::PERSIST_CONNS),
        stats: stats_of(&nest, dest_attr::STATS64, dest_attr::STATS),
    })
}

/// Decodes a GET_DAEMON reply's `IPVS_CMD_ATTR_DAEMON` nest.
pub fn parse_daemon(nest: Attrs<'_>) -> Result<SyncDaemon, String> {
    let state = nest.get(daemon_attr::STATE).and_then(|a| a.u32()).ok_or("daemon without state")?;
    let state = SyncState::from_wire(state).ok_or_else(|| format!("daemon in unknown state {state}"))?;
    let group = nest
        .get(daemon_attr::MCAST_GROUP6)
        .and_then(|a| addr_from(AF_INET6, a.payload))
        .or_else(|| nest.get(daemon_attr::MCAST_GROUP).and_then(|a| addr_from(AF_INET, a.payload)))
        .filter(|g| !g.is_unspecified());
    Ok(SyncDaemon {
        state,
        ifname: nest.get(daemon_attr::MCAST_IFN).and_then(|a| a.string()).unwrap_or_default(),
        sync_id: nest.get(daemon_attr::SYNC_ID).and_then(|a| a.u32()).unwrap_or(0),
        maxlen: nest.get(daemon_attr::SYNC_MAXLEN).and_then(|a| a.u16()),
        group,
        port: nest.get(daemon_attr::MCAST_PORT).and_then(|a| a.u16()),
        ttl: nest.get(daemon_attr::MCAST_TTL).and_then(|a| a.u8()),
    })
}

/// Decodes a GET_CONFIG reply.
pub fn parse_timeouts(attrs: Attrs<'_>) -> Timeouts {
    let get = |ty| attrs.get(ty).and_then(|a| a.u32()).unwrap_or(0);
    Timeouts {
        tcp: get(cmd_attr::TIMEOUT_TCP),
        tcp_fin: get(cmd_attr::TIMEOUT_TCP_FIN),
        udp: get(cmd_attr::TIMEOUT_UDP),
    }
}

/// Decodes a GET_INFO reply.
pub fn parse_info(attrs: Attrs<'_>) -> Info {
    Info {
        version: attrs.get(info_attr::VERSION).and_then(|a| a.u32()).unwrap_or(0),
        conn_tab_size: attrs.get(info_attr::CONN_TAB_SIZE).and_then(|a| a.u32()).unwrap_or(0),
    }
}
