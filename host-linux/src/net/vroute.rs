//! keepalived's routes and policy rules over rtnetlink: `virtual_routes`, `virtual_rules`,
//! `static_routes`, `static_rules` ([`RouteSpec`], [`RuleSpec`], parsed by `config::iproute`).
//!
//! A route is `RTM_NEWROUTE` / `RTM_DELROUTE` with the attributes of linux/rtnetlink.h (nested
//! `RTA_METRICS` and `RTA_MULTIPATH` encoded here); a rule is `RTM_NEWRULE` / `RTM_DELRULE`,
//! whose header (`struct fib_rule_hdr`) has the layout of `struct rtmsg` (family, dst_len,
//! src_len, tos, table, two reserved bytes, action, flags), with the `FRA_*` attributes of
//! linux/fib_rules.h. Interfaces are named in the specs and resolved when a request is built.


use neli::consts::nl::NlmF;
use neli::consts::rtnl::{RtAddrFamily, RtScope, RtTable, Rta, Rtm, RtmF, Rtn, Rtprot};
use neli::rtnl::{Rtmsg, RtmsgBuilder};
use neli::types::RtBuffer;

pub use crate::config::iproute::{AddMode, RouteSpec, RouteType, RuleAction, RuleSpec};

use super::error::{NetError, Result};
use super::netlink::{ip_bytes, kernel_err, nl_err, rtattr, Netlink};

// linux/rtnetlink.h
const RTA_DST: u16 = 1;
const RTA_SRC: u16 = 2;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RTA_PRIORITY: u16 = 6;
const RTA_PREFSRC: u16 = 7;
const RTA_METRICS: u16 = 8;
const RTA_MULTIPATH: u16 = 9;
const RTA_FLOW: u16 = 11;
const RTA_TABLE: u16 = 15;
const RTA_PREF: u16 = 20;
const RTA_EXPIRES: u16 = 23;
const RTNH_F_ONLINK: u8 = 4;
const RT_SCOPE_UNIVERSE: u8 = 0;

// linux/fib_rules.h
const FRA_DST: u16 = 1;
const FRA_SRC: u16 = 2;
const FRA_IIFNAME: u16 = 3;
const FRA_GOTO: u16 = 4;
const FRA_PRIORITY: u16 = 6;
const FRA_FWMARK: u16 = 10;
const FRA_FLOW: u16 = 11;
const FRA_TUN_ID: u16 = 12;
const FRA_SUPPRESS_IFGROUP: u16 = 13;
const FRA_SUPPRESS_PREFIXLEN: u16 = 14;
const FRA_TABLE: u16 = 15;
const FRA_FWMASK: u16 = 16;
const FRA_OIFNAME: u16 = 17;
const FRA_L3MDEV: u16 = 19;
const FRA_UID_RANGE: u16 = 20;
const FRA_PROTOCOL: u16 = 21;
const FRA_IP_PROTO: u16 = 22;
const FRA_SPORT_RANGE: u16 = 23;
const FRA_DPORT_RANGE: u16 = 24;
const FR_ACT_TO_TBL: u8 = 1;
const FR_ACT_GOTO: u8 = 2;
const FR_ACT_NOP: u8 = 3;
const FR_ACT_BLACKHOLE: u8 = 6;
const FR_ACT_UNREACHABLE: u8 = 7;
const FR_ACT_PROHIBIT: u8 = 8;
const FIB_RULE_INVERT: u32 = 2;

fn family(ipv6: bool) -> RtAddrFamily {
    if ipv6 {
        RtAddrFamily::Inet6
    } else {
        RtAddrFamily::Inet
    }
}

/// A table number in the header's byte, when it fits (else the attribute carries it).
fn table_byte(t: u32) -> RtTable {
    u8::try_from(t).map(RtTable::from).unwrap_or(RtTable::Unspec)
}

/// Appends one `struct rtattr` (length, type, payload, padding to 4 bytes) to `out`.
fn push_attr(out: &mut Vec<u8>, ty: u16, payload: &[u8]) {
    let len = 4 + payload.len();
    out.extend_from_slice(&(len as u16).to_ne_bytes());
    out.extend_from_slice(&ty.to_ne_bytes());
    out.extend_from_slice(payload);
    out.resize(out.len() + (4 - len % 4) % 4, 0);
}

/// The `RTA_METRICS` payload: one `RTAX_*` attribute per metric.
fn metrics_payload(r: &RouteSpec) -> Vec<u8> {
    let mut out = Vec::new();
    for (ty, v) in &r.metrics {
        push_attr(&mut out, *ty, &v.to_ne_bytes());
    }
    if let Some(cc) = &r.congctl {
        let mut s = cc.as_bytes().to_vec();
        s.push(0);
        push_attr(&mut out, crate::config::iproute::rtax::CC_ALGO, &s);
    }
    out
}

/// The `RTA_MULTIPATH` payload: a `struct rtnexthop` per nexthop (length, flags, hops =
/// weight - 1, ifindex), each followed by its `RTA_GATEWAY`.
fn multipath_payload(r: &RouteSpec, ifindex: &mut dyn FnMut(&str) -> Result<u32>) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    for nh in &r.nexthops {
        let mut attrs = Vec::new();
        if let Some(via) = nh.via {
            push_attr(&mut attrs, RTA_GATEWAY, &ip_bytes(via));
        }
        // The route's own `dev` is its RTA_OIF, not the nexthops' (as keepalived sends it).
        let index = match nh.dev.as_deref() {
            Some(d) => ifindex(d)?,
            None => 0,
        };
        let len = 8 + attrs.len();
        out.extend_from_slice(&(len as u16).to_ne_bytes());
        out.push(if nh.onlink { RTNH_F_ONLINK } else { 0 });
        out.push(u8::try_from(nh.weight.saturating_sub(1)).unwrap_or(u8::MAX));
        out.extend_from_slice(&(index as i32).to_ne_bytes());
        out.extend_from_slice(&attrs);
    }
    Ok(out)
}

/// The `RTM_NEWROUTE` / `RTM_DELROUTE` message of `r`, interfaces resolved by `ifindex`.
pub fn route_msg(r: &RouteSpec, ifindex: &mut dyn FnMut(&str) -> Result<u32>) -> Result<Rtmsg> {
    let mut attrs = RtBuffer::new();
    attrs.push(rtattr(Rta::from(RTA_TABLE), r.table)?);
    if r.dst_len != 0 {
        attrs.push(rtattr(Rta::from(RTA_DST), ip_bytes(r.dst).as_slice())?);
    }
    if let Some((from, _)) = r.from {
        attrs.push(rtattr(Rta::from(RTA_SRC), ip_bytes(from).as_slice())?);
    }
    if let Some(src) = r.src {
        attrs.push(rtattr(Rta::from(RTA_PREFSRC), ip_bytes(src).as_slice())?);
    }
    if let Some(via) = r.via {
        attrs.push(rtattr(Rta::from(RTA_GATEWAY), ip_bytes(via).as_slice())?);
    }
    if let Some(dev) = &r.dev {
        attrs.push(rtattr(Rta::from(RTA_OIF), ifindex(dev)?)?);
    }
    if !r.nexthops.is_empty() {
        attrs.push(rtattr(Rta::from(RTA_MULTIPATH), multipath_payload(r, ifindex)?.as_slice())?);
    }
    if let Some(m) = r.metric {
        attrs.push(rtattr(Rta::from(RTA_PRIORITY), m)?);
    }
    if let Some(f) = r.realms {
        attrs.push(rtattr(Rta::from(RTA_FLOW), f)?);
    }
    if let Some(p) = r.pref {
        attrs.push(rtattr(Rta::from(RTA_PREF), p)?);
    }
    if let Some(e) = r.expires {
        attrs.push(rtattr(Rta::from(RTA_EXPIRES), e)?);
    }
    let metrics = metrics_payload(r);
    if !metrics.is_empty() {
        attrs.push(rtattr(Rta::from(RTA_METRICS), metrics.as_slice())?);
    }
    let flags = if r.onlink { u32::from(RTNH_F_ONLINK) } else { 0 };
    RtmsgBuilder::default()
        .rtm_family(family(r.ipv6))
        .rtm_dst_len(r.dst_len)
        .rtm_src_len(r.from.map_or(0, |f| f.1))
        .rtm_tos(r.tos)
        .rtm_table(table_byte(r.table))
        .rtm_protocol(Rtprot::from(r.protocol))
        // keepalived sends scope global unless `scope` is written (ip(8) would derive one).
        .rtm_scope(RtScope::from(r.scope.unwrap_or(RT_SCOPE_UNIVERSE)))
        .rtm_type(Rtn::from(r.kind.rtn()))
        .rtm_flags(RtmF::from_bits_retain(flags))
        .rtattrs(attrs)
        .build()
        .map_err(|e| nl_err("RTM_NEWROUTE", e))
}

fn action_byte(a: Option<RuleAction>) -> u8 {
    match a {
        None | Some(RuleAction::Table(_)) => FR_ACT_TO_TBL,
        Some(RuleAction::Goto(_)) => FR_ACT_GOTO,
        Some(RuleAction::Nop) => FR_ACT_NOP,
        Some(RuleAction::Blackhole) => FR_ACT_BLACKHOLE,
        Some(RuleAction::Unreachable) => FR_ACT_UNREACHABLE,
        Some(RuleAction::Prohibit) => FR_ACT_PROHIBIT,
    }
}

fn name_z(name: &str) -> Vec<u8> {
    let mut v = name.as_bytes().to_vec();
    v.push(0);
    v
}

/// The `RTM_NEWRULE` / `RTM_DELRULE` message of `r` (a `fib_rule_hdr`, laid out as an rtmsg).
pub fn rule_msg(r: &RuleSpec) -> Result<Rtmsg> {
    let mut attrs = RtBuffer::new();
    let a = |ty: u16| Rta::from(ty);
    if let Some(p) = r.priority {
        attrs.push(rtattr(a(FRA_PRIORITY), p)?);
    }
    if let Some((ip, _)) = r.from {
        attrs.push(rtattr(a(FRA_SRC), ip_bytes(ip).as_slice())?);
    }
    if let Some((ip, _)) = r.to {
        attrs.push(rtattr(a(FRA_DST), ip_bytes(ip).as_slice())?);
    }
    if let Some(i) = &r.iif {
        attrs.push(rtattr(a(FRA_IIFNAME), name_z(i).as_slice())?);
    }
    if let Some(o) = &r.oif {
        attrs.push(rtattr(a(FRA_OIFNAME), name_z(o).as_slice())?);
    }
    if let Some((mark, mask)) = r.fwmark {
        attrs.push(rtattr(a(FRA_FWMARK), mark)?);
        if let Some(m) = mask {
            attrs.push(rtattr(a(FRA_FWMASK), m)?);
        }
    }
    if let Some(f) = r.realms {
        attrs.push(rtattr(a(FRA_FLOW), f)?);
    }
    let mut table = 0;
    match r.action {
        Some(RuleAction::Table(t)) => {
            table = t;
            attrs.push(rtattr(a(FRA_TABLE), t)?);
        }
        Some(RuleAction::Goto(t)) => attrs.push(rtattr(a(FRA_GOTO), t)?),
        _ => {}
    }
    if r.l3mdev {
        attrs.push(rtattr(a(FRA_L3MDEV), 1u8)?);
    }
    if let Some((s, e)) = r.uidrange {
        let mut v = s.to_ne_bytes().to_vec();
        v.extend_from_slice(&e.to_ne_bytes());
        attrs.push(rtattr(a(FRA_UID_RANGE), v.as_slice())?);
    }
    for (ty, range) in [(FRA_SPORT_RANGE, r.sport), (FRA_DPORT_RANGE, r.dport)] {
        if let Some((s, e)) = range {
            let mut v = s.to_ne_bytes().to_vec();
            v.extend_from_slice(&e.to_ne_bytes());
            attrs.push(rtattr(a(ty), v.as_slice())?);
        }
    }
    if let Some(p) = r.ipproto {
        attrs.push(rtattr(a(FRA_IP_PROTO), p)?);
    }
    if let Some(l) = r.suppress_prefixlen {
        attrs.push(rtattr(a(FRA_SUPPRESS_PREFIXLEN), l)?);
    }
    if let Some(g) = r.suppress_ifgroup {
        attrs.push(rtattr(a(FRA_SUPPRESS_IFGROUP), g)?);
    }
    if let Some(id) = r.tun_id {
        // Network byte order, as the kernel reads it.
        attrs.push(rtattr(a(FRA_TUN_ID), id.to_be_bytes().as_slice())?);
    }
    if let Some(p) = r.protocol {
        attrs.push(rtattr(a(FRA_PROTOCOL), p)?);
    }
    RtmsgBuilder::default()
        .rtm_family(family(r.ipv6))
        .rtm_dst_len(r.to.map_or(0, |t| t.1))
        .rtm_src_len(r.from.map_or(0, |f| f.1))
        .rtm_tos(r.tos)
        .rtm_table(table_byte(table))
        // res1, res2
        .rtm_protocol(Rtprot::from(0))
        .rtm_scope(RtScope::from(0))
        .rtm_type(Rtn::from(action_byte(r.action)))
        .rtm_flags(RtmF::from_bits_retain(if r.invert { FIB_RULE_INVERT } else { 0 }))
        .rtattrs(attrs)
        .build()
        .map_err(|e| nl_err("RTM_NEWRULE", e))
}

/// A route for messages: where it goes, in which table.
fn route_target(r: &RouteSpec) -> String {
    format!("route {}/{} table {}", r.dst, r.dst_len, r.table)
}

fn rule_target(r: &RuleSpec) -> String {
    match r.priority {
        Some(p) => format!("rule priority {p}"),
        None => "rule".into(),
    }
}

impl Netlink {
    fn ifindex_of(&mut self, name: &str) -> Result<u32> {
        self.link_by_name(name).map(|l| l.index)
    }

    /// Adds route `r` as keepalived does (prepend unless `add`/`append`). A route that is
    /// already there counts as added.
    pub fn add_vroute(&mut self, r: &RouteSpec) -> Result<()> {
        let msg = route_msg(r, &mut |d| self.ifindex_of(d))?;
        let flags = match r.mode {
            AddMode::Prepend => NlmF::CREATE,
            AddMode::Add => NlmF::CREATE | NlmF::EXCL,
            AddMode::Append => NlmF::CREATE | NlmF::APPEND,
        };
        match self.request::<_, Rtmsg>("RTM_NEWROUTE", Rtm::Newroute, flags, msg) {
            Ok(_) => Ok(()),
            Err(Ok((errno, _))) if errno == libc::EEXIST => Ok(()),
            Err(Ok((errno, m))) => Err(kernel_err("RTM_NEWROUTE", route_target(r), errno, m)),
            Err(Err(e)) => Err(e),
        }
    }

    /// Deletes route `r`. A route (or interface) that is gone counts as deleted.
    pub fn del_vroute(&mut self, r: &RouteSpec) -> Result<()> {
        let msg = match route_msg(r, &mut |d| self.ifindex_of(d)) {
            Ok(m) => m,
            // Its interface went, and the kernel took its routes with it.
            Err(NetError::NoSuchInterface { .. }) => return Ok(()),
            Err(e) => return Err(e),
        };
        match self.request::<_, Rtmsg>("RTM_DELROUTE", Rtm::Delroute, NlmF::empty(), msg) {
            Ok(_) => Ok(()),
            Err(Ok((errno, _))) if errno == libc::ESRCH || errno == libc::ENOENT || errno == libc::ENODEV => Ok(()),
            Err(Ok((errno, m))) => Err(kernel_err("RTM_DELROUTE", route_target(r), errno, m)),
            Err(Err(e)) => Err(e),
        }
    }

    /// Adds rule `r`. A rule that is already there counts as added.
    pub fn add_rule(&mut self, r: &RuleSpec) -> Result<()> {
        let msg = rule_msg(r)?;
        match self.request::<_, Rtmsg>("RTM_NEWRULE", Rtm::Newrule, NlmF::CREATE | NlmF::EXCL, msg) {
            Ok(_) => Ok(()),
            Err(Ok((errno, _))) if errno == libc::EEXIST => Ok(()),
            Err(Ok((errno, m))) => Err(kernel_err("RTM_NEWRULE", rule_target(r), errno, m)),
            Err(Err(e)) => Err(e),
        }
    }

    /// Deletes rule `r`. A rule that is gone counts as deleted.
    pub fn del_rule(&mut self, r: &RuleSpec) -> Result<()> {
        let msg = rule_msg(r)?;
        match self.request::<_, Rtmsg>("RTM_DELRULE", Rtm::Delrule, NlmF::empty(), msg) {
            Ok(_) => Ok(()),
            Err(Ok((errno, _))) if errno == libc::ENOENT || errno == libc::ESRCH => Ok(()),
            Err(Ok((errno, m))) => Err(kernel_err("RTM_DELRULE", rule_target(r), errno, m)),
            Err(Err(e)) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use neli::ToBytes;
    use std::io::Cursor;

    fn spec(text: &str) -> RouteSpec {
        crate::config::iproute::tests::route_spec(text)
    }

    fn bytes(m: &Rtmsg) -> Vec<u8> {
        let mut c = Cursor::new(Vec::new());
        m.to_bytes(&mut c).expect("serialise");
        c.into_inner()
    }

    /// The attribute `ty` of an encoded message (after the 12-byte header).
    fn attr(b: &[u8], ty: u16) -> Option<Vec<u8>> {
        let mut i = 12;
        while i + 4 <= b.len() {
            let len = usize::from(u16::from_ne_bytes([b[i], b[i + 1]]));
            let t = u16::from_ne_bytes([b[i + 2], b[i + 3]]);
            if t == ty {
                return Some(b[i + 4..i + len].to_vec());
            }
            i += (len + 3) & !3;
        }
        None
    }

    #[test]
    fn test_route_header_and_attributes() {
        let r = spec("src 10.0.0.70 10.5.0.0/24 via 10.0.0.254 dev eth0 table 200 metric 7");
        let b = bytes(&route_msg(&r, &mut |d| if d == "eth0" { Ok(3) } else { Err(NetError::NoSuchInterface { name: d.into() }) }).unwrap());
        // family, dst_len, src_len, tos, table, protocol, scope, type
        assert_eq!(&b[..8], &[libc::AF_INET as u8, 24, 0, 0, 200, 18, 0, 1]);
        assert_eq!(attr(&b, RTA_DST), Some(vec![10, 5, 0, 0]));
        assert_eq!(attr(&b, RTA_GATEWAY), Some(vec![10, 0, 0, 254]));
        assert_eq!(attr(&b, RTA_PREFSRC), Some(vec![10, 0, 0, 70]));
        assert_eq!(attr(&b, RTA_OIF), Some(3u32.to_ne_bytes().to_vec()));
        assert_eq!(attr(&b, RTA_PRIORITY), Some(7u32.to_ne_bytes().to_vec()));
        assert_eq!(attr(&b, RTA_TABLE), Some(200u32.to_ne_bytes().to_vec()));
    }

    #[test]
    fn test_route_scope_type_and_big_table() {
        let b = bytes(&route_msg(&spec("10.6.0.0/24 dev eth0 table 1000"), &mut |_| Ok(2)).unwrap());
        assert_eq!(b[4], 0, "table 1000 is in RTA_TABLE only");
        assert_eq!(b[6], RT_SCOPE_UNIVERSE, "scope global unless written, as keepalived sends it");
        assert_eq!(attr(&b, RTA_TABLE), Some(1000u32.to_ne_bytes().to_vec()));
        let b = bytes(&route_msg(&spec("blackhole 10.7.0.0/24"), &mut |_| unreachable!()).unwrap());
        assert_eq!((b[6], b[7]), (RT_SCOPE_UNIVERSE, 6));
        assert_eq!(attr(&b, RTA_OIF), None);
    }

    #[test]
    fn test_route_metrics_and_multipath() {
        let r = spec("10.3.0.0/24 nexthop via 10.0.0.253 dev eth0 weight 1 nexthop via 10.0.0.252 weight 3 onlink mtu lock 1400 advmss 1300");
        assert!(!r.onlink && r.nexthops[1].onlink);
        let b = bytes(&route_msg(&r, &mut |_| Ok(5)).unwrap());
        let mp = attr(&b, RTA_MULTIPATH).expect("multipath");
        // Two rtnexthops of 8 + 8 bytes: len 16, flags, hops (weight - 1), ifindex, RTA_GATEWAY.
        assert_eq!(mp.len(), 32);
        assert_eq!(&mp[..4], &[16, 0, 0, 0]);
        assert_eq!(i32::from_ne_bytes(mp[4..8].try_into().unwrap()), 5);
        assert_eq!(&mp[12..16], &[10, 0, 0, 253]);
        assert_eq!(&mp[16..20], &[16, 0, RTNH_F_ONLINK, 2]);
        assert_eq!(i32::from_ne_bytes(mp[20..24].try_into().unwrap()), 0, "no dev: ifindex 0");
        assert_eq!(attr(&b, RTA_GATEWAY), None);
        let m = attr(&b, RTA_METRICS).expect("metrics");
        // RTAX_LOCK (bit of RTAX_MTU), RTAX_MTU, RTAX_ADVMSS.
        let words: Vec<u32> = m.chunks(4).map(|c| u32::from_ne_bytes(c.try_into().unwrap())).collect();
        let head = |ty: u16| u32::from(8u16) | u32::from(ty) << 16;
        assert_eq!(words, vec![head(1), 1 << 2, head(2), 1400, head(8), 1300]);
    }

    #[test]
    fn test_rule_encoding() {
        let r = crate::config::iproute::tests::rule_spec("not from 10.9.0.0/24 to 10.5.0.0/16 fwmark 0x10/0xff iif eth0 table 100 priority 100 sport 10-20 ipproto udp");
        let b = bytes(&rule_msg(&r).unwrap());
        // family, dst_len, src_len, tos, table, res1, res2, action; flags
        assert_eq!(&b[..8], &[libc::AF_INET as u8, 16, 24, 0, 100, 0, 0, FR_ACT_TO_TBL]);
        assert_eq!(u32::from_ne_bytes(b[8..12].try_into().unwrap()), FIB_RULE_INVERT);
        assert_eq!(attr(&b, FRA_SRC), Some(vec![10, 9, 0, 0]));
        assert_eq!(attr(&b, FRA_DST), Some(vec![10, 5, 0, 0]));
        assert_eq!(attr(&b, FRA_PRIORITY), Some(100u32.to_ne_bytes().to_vec()));
        assert_eq!(attr(&b, FRA_FWMARK), Some(0x10u32.to_ne_bytes().to_vec()));
        assert_eq!(attr(&b, FRA_FWMASK), Some(0xffu32.to_ne_bytes().to_vec()));
        assert_eq!(attr(&b, FRA_IIFNAME), Some(b"eth0\0".to_vec()));
        assert_eq!(attr(&b, FRA_PROTOCOL), Some(vec![18]));
        assert_eq!(attr(&b, FRA_IP_PROTO), Some(vec![17]));
        let mut ports = 10u16.to_ne_bytes().to_vec();
        ports.extend_from_slice(&20u16.to_ne_bytes());
        assert_eq!(attr(&b, FRA_SPORT_RANGE), Some(ports));
        let b = bytes(&rule_msg(&crate::config::iproute::tests::rule_spec("from all goto 300 priority 5")).unwrap());
        assert_eq!(b[7], FR_ACT_GOTO);
        assert_eq!(attr(&b, FRA_GOTO), Some(300u32.to_ne_bytes().to_vec()));
        assert_eq!(attr(&b, FRA_SRC), None, "from all is no selector");
    }
}
