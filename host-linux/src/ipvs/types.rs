//! The IPVS table as typed values: services, destinations, sync daemons.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use super::wire::{
    cmd, AF_INET, AF_INET6, IP_VS_CONN_F_BYPASS, IP_VS_CONN_F_DROUTE, IP_VS_CONN_F_FWD_MASK,
    IP_VS_CONN_F_LOCALNODE, IP_VS_CONN_F_MASQ, IP_VS_CONN_F_TUNNEL, IP_VS_CONN_F_TUNNEL_TYPE_GRE,
    IP_VS_CONN_F_TUNNEL_TYPE_GUE, IP_VS_CONN_F_TUNNEL_TYPE_IPIP, IP_VS_STATE_BACKUP, IP_VS_STATE_MASTER,
};

/// An address family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    /// IPv4.
    Inet,
    /// IPv6.
    Inet6,
}

impl Family {
    /// `AF_INET` / `AF_INET6`.
    pub const fn af(self) -> u16 {
        match self {
            Family::Inet => AF_INET,
            Family::Inet6 => AF_INET6,
        }
    }

    /// The family of an `AF_*` value.
    pub const fn from_af(af: u16) -> Option<Self> {
        match af {
            AF_INET => Some(Family::Inet),
            AF_INET6 => Some(Family::Inet6),
            _ => None,
        }
    }

    /// The family of `ip`.
    pub const fn of(ip: &IpAddr) -> Self {
        match ip {
            IpAddr::V4(_) => Family::Inet,
            IpAddr::V6(_) => Family::Inet6,
        }
    }
}

/// A virtual service's transport protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    /// TCP (6).
    Tcp,
    /// UDP (17).
    Udp,
    /// SCTP (132).
    Sctp,
}

impl Protocol {
    /// The IP protocol number.
    pub const fn ipproto(self) -> u8 {
        match self {
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
            Protocol::Sctp => 132,
        }
    }

    /// The protocol of an IP protocol number.
    pub const fn from_ipproto(p: u8) -> Option<Self> {
        match p {
            6 => Some(Protocol::Tcp),
            17 => Some(Protocol::Udp),
            132 => Some(Protocol::Sctp),
            _ => None,
        }
    }

    /// `TCP`, `UDP` or `SCTP`, as ipvsadm prints it.
    pub const fn name(self) -> &'static str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::Sctp => "SCTP",
        }
    }
}

/// What identifies a virtual service in the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ServiceKey {
    /// Protocol, virtual address and port.
    Addr {
        /// The protocol.
        protocol: Protocol,
        /// The virtual address and port.
        addr: SocketAddr,
    },
    /// A firewall mark (of an address family).
    Fwmark {
        /// The address family.
        family: Family,
        /// The mark (non-zero).
        mark: u32,
    },
}

impl ServiceKey {
    /// The service's address family.
    pub fn family(&self) -> Family {
        match self {
            ServiceKey::Addr { addr, .. } => Family::of(&addr.ip()),
            ServiceKey::Fwmark { family, .. } => *family,
        }
    }

    /// The service's port (0 for fwmark services).
    pub fn port(&self) -> u16 {
        match self {
            ServiceKey::Addr { addr, .. } => addr.port(),
            ServiceKey::Fwmark { .. } => 0,
        }
    }
}

impl fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServiceKey::Addr { protocol, addr } => write!(f, "{} {addr}", protocol.name()),
            ServiceKey::Fwmark { family: Family::Inet, mark } => write!(f, "FWM {mark}"),
            ServiceKey::Fwmark { family: Family::Inet6, mark } => write!(f, "FWM {mark} IPv6"),
        }
    }
}

/// A virtual service's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// Its identity.
    pub key: ServiceKey,
    /// Scheduler name (`rr`, `wlc`, ...).
    pub scheduler: String,
    /// `IP_VS_SVC_F_*` flags (persistent, one-packet, scheduler flags); never `HASHED`.
    pub flags: u32,
    /// Persistence timeout in seconds.
    pub timeout: u32,
    /// Persistence granularity: for IPv4 a netmask as a host-order integer
    /// (`0xffffff00` for /24), for IPv6 a prefix length.
    pub netmask: u32,
    /// Persistence engine (`sip`).
    pub pe_name: Option<String>,
}

impl Service {
    /// A non-persistent service with scheduler `scheduler` and no flags.
    pub fn new(key: ServiceKey, scheduler: &str) -> Self {
        let netmask = match key.family() {
            Family::Inet => u32::MAX,
            Family::Inet6 => 128,
        };
        Service { key, scheduler: scheduler.to_owned(), flags: 0, timeout: 0, netmask, pe_name: None }
    }

    /// The 4 bytes of `IPVS_SVC_ATTR_NETMASK`: an IPv4 mask in network
    /// order, an IPv6 prefix length in host order.
    pub fn netmask_bytes(&self) -> [u8; 4] {
        match self.key.family() {
            Family::Inet => self.netmask.to_be_bytes(),
            Family::Inet6 => self.netmask.to_ne_bytes(),
        }
    }

    /// The inverse of [`Service::netmask_bytes`].
    pub fn netmask_from_bytes(family: Family, b: [u8; 4]) -> u32 {
        match family {
            Family::Inet => u32::from_be_bytes(b),
            Family::Inet6 => u32::from_ne_bytes(b),
        }
    }
}

/// Counters of a service or destination.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Connections scheduled.
    pub conns: u64,
    /// Packets in.
    pub inpkts: u64,
    /// Packets out.
    pub outpkts: u64,
    /// Bytes in.
    pub inbytes: u64,
    /// Bytes out.
    pub outbytes: u64,
}

/// A service as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceEntry {
    /// The settings.
    pub service: Service,
    /// The counters.
    pub stats: Stats,
}

/// The encapsulation of the tunnelling forwarding method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TunnelKind {
    /// IP-in-IP.
    Ipip,
    /// Generic UDP encapsulation.
    Gue,
    /// GRE.
    Gre,
}

impl TunnelKind {
    /// `IP_VS_CONN_F_TUNNEL_TYPE_*`.
    pub const fn wire(self) -> u8 {
        match self {
            TunnelKind::Ipip => IP_VS_CONN_F_TUNNEL_TYPE_IPIP,
            TunnelKind::Gue => IP_VS_CONN_F_TUNNEL_TYPE_GUE,
            TunnelKind::Gre => IP_VS_CONN_F_TUNNEL_TYPE_GRE,
        }
    }

    /// The kind of an `IP_VS_CONN_F_TUNNEL_TYPE_*` value.
    pub const fn from_wire(v: u8) -> Option<Self> {
        match v {
            IP_VS_CONN_F_TUNNEL_TYPE_IPIP => Some(TunnelKind::Ipip),
            IP_VS_CONN_F_TUNNEL_TYPE_GUE => Some(TunnelKind::Gue),
            IP_VS_CONN_F_TUNNEL_TYPE_GRE => Some(TunnelKind::Gre),
            _ => None,
        }
    }
}

/// Tunnel parameters (`IPVS_DEST_ATTR_TUN_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tunnel {
    /// Encapsulation.
    pub kind: TunnelKind,
    /// Destination UDP port (GUE only; 0 otherwise).
    pub port: u16,
    /// `IP_VS_TUNNEL_ENCAP_FLAG_*` (GUE and GRE).
    pub flags: u16,
}

impl Tunnel {
    /// Plain IP-in-IP.
    pub const IPIP: Tunnel = Tunnel { kind: TunnelKind::Ipip, port: 0, flags: 0 };
}

/// The forwarding method of a destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Forward {
    /// NAT (`-m`).
    Masq,
    /// Local node.
    Local,
    /// Tunnelling (`-i`).
    Tunnel(Tunnel),
    /// Direct routing (`-g`).
    Route,
    /// Cache bypass.
    Bypass,
}

impl Forward {
    /// The `IP_VS_CONN_F_*` forwarding value.
    pub const fn conn_flags(self) -> u32 {
        match self {
            Forward::Masq => IP_VS_CONN_F_MASQ,
            Forward::Local => IP_VS_CONN_F_LOCALNODE,
            Forward::Tunnel(_) => IP_VS_CONN_F_TUNNEL,
            Forward::Route => IP_VS_CONN_F_DROUTE,
            Forward::Bypass => IP_VS_CONN_F_BYPASS,
        }
    }

    /// The method of an `IP_VS_CONN_F_*` value; `tunnel` is used for tunnels.
    pub const fn from_conn_flags(v: u32, tunnel: Tunnel) -> Option<Self> {
        match v & IP_VS_CONN_F_FWD_MASK {
            IP_VS_CONN_F_MASQ => Some(Forward::Masq),
            IP_VS_CONN_F_LOCALNODE => Some(Forward::Local),
            IP_VS_CONN_F_TUNNEL => Some(Forward::Tunnel(tunnel)),
            IP_VS_CONN_F_DROUTE => Some(Forward::Route),
            IP_VS_CONN_F_BYPASS => Some(Forward::Bypass),
            _ => None,
        }
    }

    /// `Masq`, `Route`, `Tunnel`..., as ipvsadm prints it.
    pub const fn name(self) -> &'static str {
        match self {
            Forward::Masq => "Masq",
            Forward::Local => "Local",
            Forward::Tunnel(_) => "Tunnel",
            Forward::Route => "Route",
            Forward::Bypass => "Bypass",
        }
    }
}

/// A destination (real server) of a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Dest {
    /// Address and port.
    pub addr: SocketAddr,
    /// Forwarding method.
    pub forward: Forward,
    /// Weight; 0 quiesces.
    pub weight: i32,
    /// Upper connection threshold (0: none).
    pub upper_threshold: u32,
    /// Lower connection threshold (0: none).
    pub lower_threshold: u32,
}

impl Dest {
    /// A destination without thresholds.
    pub const fn new(addr: SocketAddr, forward: Forward, weight: i32) -> Self {
        Dest { addr, forward, weight, upper_threshold: 0, lower_threshold: 0 }
    }
}

/// A destination as the kernel reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DestEntry {
    /// The settings.
    pub dest: Dest,
    /// Active connections.
    pub active_conns: u32,
    /// Inactive connections.
    pub inactive_conns: u32,
    /// Persistent connection templates.
    pub persistent_conns: u32,
    /// Counters.
    pub stats: Stats,
}

/// The kernel's connection timeouts in seconds; 0 in a set request leaves
/// that one unchanged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timeouts {
    /// Established TCP.
    pub tcp: u32,
    /// TCP after FIN.
    pub tcp_fin: u32,
    /// UDP.
    pub udp: u32,
}

/// Role of a connection-sync daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SyncState {
    /// Sends the connection table.
    Master,
    /// Receives it.
    Backup,
}

impl SyncState {
    /// `IP_VS_STATE_*`.
    pub const fn wire(self) -> u32 {
        match self {
            SyncState::Master => IP_VS_STATE_MASTER,
            SyncState::Backup => IP_VS_STATE_BACKUP,
        }
    }

    /// The state of an `IP_VS_STATE_*` value.
    pub const fn from_wire(v: u32) -> Option<Self> {
        match v {
            IP_VS_STATE_MASTER => Some(SyncState::Master),
            IP_VS_STATE_BACKUP => Some(SyncState::Backup),
            _ => None,
        }
    }
}

/// A connection-sync daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncDaemon {
    /// Master or backup.
    pub state: SyncState,
    /// The interface it multicasts on.
    pub ifname: String,
    /// Sync id.
    pub sync_id: u32,
    /// Maximum message length.
    pub maxlen: Option<u16>,
    /// Multicast group.
    pub group: Option<IpAddr>,
    /// UDP port.
    pub port: Option<u16>,
    /// Multicast TTL.
    pub ttl: Option<u8>,
}

/// `IPVS_CMD_GET_INFO`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Info {
    /// `IP_VS_VERSION_CODE` (0x010201 is 1.2.1).
    pub version: u32,
    /// Connection hash table size.
    pub conn_tab_size: u32,
}

impl Info {
    /// `major.minor.patch`.
    pub fn version_string(&self) -> String {
        format!("{}.{}.{}", self.version >> 16, (self.version >> 8) & 0xff, self.version & 0xff)
    }
}

/// One change to the table; a batch of them goes to [`super::Client::apply`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Add a service.
    NewService(Service),
    /// Change a service's settings.
    SetService(Service),
    /// Delete a service and its destinations.
    DelService(ServiceKey),
    /// Add a destination.
    NewDest(ServiceKey, Dest),
    /// Change a destination.
    SetDest(ServiceKey, Dest),
    /// Delete a destination.
    DelDest(ServiceKey, SocketAddr),
}

impl Op {
    /// The `IPVS_CMD_*` of the request.
    pub const fn cmd(&self) -> u8 {
        match self {
            Op::NewService(_) => cmd::NEW_SERVICE,
            Op::SetService(_) => cmd::SET_SERVICE,
            Op::DelService(_) => cmd::DEL_SERVICE,
            Op::NewDest(..) => cmd::NEW_DEST,
            Op::SetDest(..) => cmd::SET_DEST,
            Op::DelDest(..) => cmd::DEL_DEST,
        }
    }

    /// The service the op is about.
    pub fn service(&self) -> &ServiceKey {
        match self {
            Op::NewService(s) | Op::SetService(s) => &s.key,
            Op::DelService(k) | Op::NewDest(k, _) | Op::SetDest(k, _) | Op::DelDest(k, _) => k,
        }
    }

    /// What the op is about, for messages: `TCP 10.0.0.1:80` or `TCP 10.0.0.1:80 -> 10.0.0.2:80`.
    pub fn target(&self) -> String {
        match self {
            Op::NewService(s) | Op::SetService(s) => format!("service {} (scheduler {})", s.key, s.scheduler),
            Op::DelService(k) => format!("service {k}"),
            Op::NewDest(k, d) | Op::SetDest(k, d) => format!("real server {} of service {k}", d.addr),
            Op::DelDest(k, a) => format!("real server {a} of service {k}"),
        }
    }
}
