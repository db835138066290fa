//! Routes over rtnetlink: the host routes an announced virtual server is held by
//! (`lvs::announce`): a `blackhole` route the host's routing daemon redistributes, and a
//! `local` route that makes the kernel deliver the VIP to IPVS without an address on any
//! interface (an address would give the routing daemon a connected route for the same
//! prefix, which it prefers to the kernel route and would announce unconditionally).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use neli::consts::nl::NlmF;
use neli::consts::rtnl::{RtAddrFamily, RtScope, RtTable, Rta, Rtm, Rtn, Rtprot};
use neli::rtnl::{Rtmsg, RtmsgBuilder};
use neli::types::RtBuffer;

use super::error::Result;
use super::netlink::{family_of, ip_bytes, kernel_err, nl_err, rtattr, Netlink};

/// `RT_TABLE_MAIN`.
pub const TABLE_MAIN: u32 = 254;
/// `RT_TABLE_LOCAL`.
pub const TABLE_LOCAL: u32 = 255;

/// The kind of a host route hav holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RouteKind {
    /// `blackhole`: what the routing daemon redistributes (locally the `local` route wins).
    Blackhole,
    /// `local ... dev IFINDEX`: the kernel delivers the address to this host.
    Local {
        /// The link it points at (`lo` or a dummy).
        oif: u32,
    },
}

/// A host route (/32 or /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HostRoute {
    /// The address.
    pub dst: IpAddr,
    /// The table (`ip route ... table N`), 1..=2^32-1.
    pub table: u32,
    /// The route protocol (`proto N`).
    pub proto: u8,
    /// The metric (`metric N`, RTA_PRIORITY).
    pub metric: u32,
    /// Blackhole or local.
    pub kind: RouteKind,
}

impl HostRoute {
    fn prefix(&self) -> u8 {
        if self.dst.is_ipv4() {
            32
        } else {
            128
        }
    }

    fn msg(&self) -> Result<Rtmsg> {
        let mut attrs = RtBuffer::new();
        attrs.push(rtattr(Rta::Dst, ip_bytes(self.dst).as_slice())?);
        attrs.push(rtattr(Rta::Table, self.table)?);
        if self.metric != 0 {
            attrs.push(rtattr(Rta::Priority, self.metric)?);
        }
        let (ty, scope) = match self.kind {
            RouteKind::Blackhole => (Rtn::Blackhole, RtScope::Universe),
            RouteKind::Local { oif } => {
                attrs.push(rtattr(Rta::Oif, oif)?);
                (Rtn::Local, RtScope::Host)
            }
        };
        // Tables past 255 are in RTA_TABLE only.
        let table = u8::try_from(self.table).map(RtTable::from).unwrap_or(RtTable::Unspec);
        RtmsgBuilder::default()
            .rtm_family(family_of(self.dst))
            .rtm_dst_len(self.prefix())
            .rtm_src_len(0)
            .rtm_tos(0)
            .rtm_table(table)
            .rtm_protocol(Rtprot::from(self.proto))
            .rtm_scope(scope)
            .rtm_type(ty)
            .rtattrs(attrs)
            .build()
            .map_err(|e| nl_err("RTM_NEWROUTE", e))
    }
}

impl std::fmt::Display for HostRoute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.kind {
            RouteKind::Blackhole => write!(f, "blackhole {}/{}", self.dst, self.prefix())?,
            RouteKind::Local { oif } => write!(f, "local {}/{} dev#{oif}", self.dst, self.prefix())?,
        }
        write!(f, " table {} proto {}", self.table, self.proto)?;
        if self.metric != 0 {
            write!(f, " metric {}", self.metric)?;
        }
        Ok(())
    }
}

fn route_from_msg(m: &Rtmsg) -> Option<HostRoute> {
    let attrs = m.rtattrs().get_attr_handle();
    let dst = match (*m.rtm_family(), attrs.get_attribute(Rta::Dst)) {
        (RtAddrFamily::Inet, Some(a)) => IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(a.rta_payload().as_ref()).ok()?)),
        (RtAddrFamily::Inet6, Some(a)) => IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(a.rta_payload().as_ref()).ok()?)),
        _ => return None,
    };
    let table = attrs.get_attr_payload_as::<u32>(Rta::Table).unwrap_or_else(|_| u32::from(u8::from(*m.rtm_table())));
    let metric = attrs.get_attr_payload_as::<u32>(Rta::Priority).unwrap_or(0);
    let kind = match *m.rtm_type() {
        Rtn::Blackhole => RouteKind::Blackhole,
        Rtn::Local => RouteKind::Local { oif: attrs.get_attr_payload_as::<u32>(Rta::Oif).unwrap_or(0) },
        _ => return None,
    };
    let full = if dst.is_ipv4() { 32 } else { 128 };
    if *m.rtm_dst_len() != full {
        return None;
    }
    Some(HostRoute { dst, table, proto: u8::from(*m.rtm_protocol()), metric, kind })
}

impl Netlink {
    /// Adds `r`. Returns `false` when a route with the same key is already there (someone
    /// else's, e.g. the local route of an address; it is left as it is).
    pub fn add_host_route(&mut self, r: &HostRoute) -> Result<bool> {
        let msg = r.msg()?;
        match self.request::<_, Rtmsg>("RTM_NEWROUTE", Rtm::Newroute, NlmF::CREATE | NlmF::EXCL, msg) {
            Ok(_) => Ok(true),
            Err(Ok((errno, _))) if errno == libc::EEXIST => Ok(false),
            Err(Ok((errno, m))) => Err(kernel_err("RTM_NEWROUTE", r.to_string(), errno, m)),
            Err(Err(e)) => Err(e),
        }
    }

    /// Deletes `r` (matched on address, table, protocol, type and metric). Deleting a route
    /// that is gone succeeds.
    pub fn del_host_route(&mut self, r: &HostRoute) -> Result<()> {
        let msg = r.msg()?;
        match self.request::<_, Rtmsg>("RTM_DELROUTE", Rtm::Delroute, NlmF::empty(), msg) {
            Ok(_) => Ok(()),
            Err(Ok((errno, _))) if errno == libc::ESRCH || errno == libc::ENOENT => Ok(()),
            Err(Ok((errno, m))) => Err(kernel_err("RTM_DELROUTE", r.to_string(), errno, m)),
            Err(Err(e)) => Err(e),
        }
    }

    /// The blackhole and local host routes of protocol `proto` in every table.
    pub fn host_routes(&mut self, proto: u8) -> Result<Vec<HostRoute>> {
        let mut out = Vec::new();
        for fam in [RtAddrFamily::Inet, RtAddrFamily::Inet6] {
            let msg = RtmsgBuilder::default()
                .rtm_family(fam)
                .rtm_dst_len(0)
                .rtm_src_len(0)
                .rtm_tos(0)
                .rtm_table(RtTable::Unspec)
                .rtm_protocol(Rtprot::Unspec)
                .rtm_scope(RtScope::Universe)
                .rtm_type(Rtn::Unspec)
                .build()
                .map_err(|e| nl_err("RTM_GETROUTE", e))?;
            let msgs: Vec<Rtmsg> = match self.request("RTM_GETROUTE", Rtm::Getroute, NlmF::DUMP, msg) {
                Ok(m) => m,
                // A kernel without IPv6 has no table to dump.
                Err(Ok((errno, _))) if fam == RtAddrFamily::Inet6 && errno == libc::EAFNOSUPPORT => continue,
                Err(Ok((errno, m))) => return Err(kernel_err("RTM_GETROUTE", "dump".into(), errno, m)),
                Err(Err(e)) => return Err(e),
            };
            out.extend(msgs.iter().filter(|m| u8::from(*m.rtm_protocol()) == proto).filter_map(route_from_msg));
        }
        Ok(out)
    }
}

