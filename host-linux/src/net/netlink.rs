//! rtnetlink (NETLINK_ROUTE) over neli: links, addresses, VMAC macvlans, and
//! an async link-event watcher.
//!
//! [`Netlink`] is synchronous on purpose: each request is one datagram and
//! its answer arrives in microseconds, so the daemon calls it inline. It owns
//! a plain neli socket (no router thread); every request carries `NLM_F_ACK`
//! and a fresh sequence number, and the reply is read until its ACK, error or
//! `NLMSG_DONE`. Replies to another sequence number (left over from a request
//! that failed half way) are skipped.
//!
//! A netlink socket belongs to the network namespace of the thread that
//! created it, which is what lets tests drive another namespace.

use std::collections::VecDeque;
use std::fmt::Debug;
use std::io::{self, Cursor};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd;

use neli::consts::nl::{NlmF, Nlmsg, NlmsgerrAttr};
use neli::consts::rtnl::{Ifa, IfaF, Iff, Ifla, IflaInfo, RtAddrFamily, RtScope, Rtm};
use neli::consts::socket::NlFamily;
use neli::err::SocketError;
use neli::nl::{NlPayload, Nlmsghdr, NlmsghdrBuilder};
use neli::rtnl::{Ifaddrmsg, IfaddrmsgBuilder, Ifinfomsg, IfinfomsgBuilder, RtattrBuilder};
use neli::socket::synchronous::NlSocketHandle;
use neli::types::{Buffer, RtBuffer};
use neli::utils::Groups;
use neli::{FromBytesWithInput, Size, ToBytes};
use tokio::io::unix::AsyncFd;

use super::error::{NetError, Result};

/// Longest interface name the kernel accepts (IFNAMSIZ - 1).
pub const IFNAMSIZ_MAX: usize = 15;

// linux/if_link.h: IFLA_MACVLAN_MODE and enum macvlan_mode.
const IFLA_MACVLAN_MODE: u16 = 1;
const MACVLAN_MODE_PRIVATE: u32 = 1;

/// One network interface as rtnetlink reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkInfo {
    /// Interface index.
    pub index: u32,
    /// Interface name.
    pub name: String,
    /// Hardware address; all zeros when the link has no 6-byte address.
    pub mac: [u8; 6],
    /// Administratively up (`IFF_UP`) and with carrier (`IFF_LOWER_UP`).
    pub up: bool,
    /// MTU in bytes.
    pub mtu: u32,
    /// `IFLA_INFO_KIND` (`"veth"`, `"macvlan"`, ...); `None` for physical
    /// devices.
    pub kind: Option<String>,
    /// `IFLA_LINK`: the lower device of a macvlan/vlan, or the peer index of
    /// a veth.
    pub parent: Option<u32>,
}

/// One address of an interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfAddr {
    /// The local address.
    pub addr: IpAddr,
    /// Prefix length.
    pub prefix: u8,
    /// IPv4 label (`eth0:vip`); IPv6 addresses have none.
    pub label: Option<String>,
}

/// An address to add with [`Netlink::add_address`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddrSpec {
    /// The address.
    pub addr: IpAddr,
    /// Prefix length (at most 32 for IPv4, 128 for IPv6).
    pub prefix: u8,
    /// IPv4 broadcast address; ignored for IPv6.
    pub broadcast: Option<Ipv4Addr>,
    /// IPv4 label, at most 15 bytes; ignored for IPv6 (the kernel has no
    /// IPv6 labels).
    pub label: Option<String>,
    /// `RT_SCOPE_*` (0 universe, 200 site, 253 link, 254 host).
    pub scope: u8,
    /// Set `IFA_F_NODAD` (IPv6 only): the address is usable at once instead
    /// of staying tentative for a DAD round. VIPs want this: a backup that
    /// still holds the VIP on the wire would otherwise make DAD fail.
    pub nodad: bool,
    /// The other end of a point-to-point address (`peer`): sent as
    /// `IFA_ADDRESS`, with `addr` as `IFA_LOCAL`.
    pub peer: Option<IpAddr>,
    /// More `IFA_F_*` flags ([`IFA_F_HOMEADDRESS`], [`IFA_F_MANAGETEMPADDR`],
    /// [`IFA_F_NOPREFIXROUTE`], [`IFA_F_MCAUTOJOIN`]), sent in `IFA_FLAGS`.
    pub flags: u32,
    /// Preferred lifetime in seconds (IPv6; 0 makes the address deprecated);
    /// forever when `None`.
    pub preferred_lft: Option<u32>,
}

/// `IFA_F_HOMEADDRESS` (`home`): a Mobile IPv6 home address.
pub const IFA_F_HOMEADDRESS: u32 = 0x10;
/// `IFA_F_MANAGETEMPADDR` (`mngtmpaddr`): privacy addresses are made from this prefix.
pub const IFA_F_MANAGETEMPADDR: u32 = 0x100;
/// `IFA_F_NOPREFIXROUTE` (`noprefixroute`): no prefix route for the address.
pub const IFA_F_NOPREFIXROUTE: u32 = 0x200;
/// `IFA_F_MCAUTOJOIN` (`autojoin`): join the multicast group of the address.
pub const IFA_F_MCAUTOJOIN: u32 = 0x400;
const IFA_F_NODAD: u32 = 0x02;

impl AddrSpec {
    /// A global-scope address with no broadcast, label or flags.
    pub fn new(addr: IpAddr, prefix: u8) -> Self {
        AddrSpec {
            addr,
            prefix,
            broadcast: None,
            label: None,
            scope: libc::RT_SCOPE_UNIVERSE,
            nodad: false,
            peer: None,
            flags: 0,
            preferred_lft: None,
        }
    }
}

/// A synchronous rtnetlink client.
pub struct Netlink {
    sock: NlSocketHandle,
    seq: u32,
}

impl Debug for Netlink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Netlink")
            .field("fd", &self.sock.as_raw_fd())
            .field("seq", &self.seq)
            .finish()
    }
}

fn sock_err(op: &'static str) -> impl FnOnce(SocketError) -> NetError {
    move |e| NetError::Netlink {
        op,
        detail: e.to_string(),
    }
}

pub(super) fn nl_err(op: &'static str, e: impl std::fmt::Display) -> NetError {
    NetError::Netlink {
        op,
        detail: e.to_string(),
    }
}

pub(crate) fn check_ifname(name: &str) -> Result<()> {
    if name.is_empty()
        || name.len() > IFNAMSIZ_MAX
        || name.contains(['/', '\0'])
        || name.chars().any(char::is_whitespace)
        || name == "."
        || name == ".."
    {
        return Err(NetError::Invalid {
            what: "interface name",
            detail: format!("{name:?} (1 to {IFNAMSIZ_MAX} bytes, no '/', NUL or spaces)"),
        });
    }
    Ok(())
}

fn check_prefix(addr: IpAddr, prefix: u8) -> Result<()> {
    let max = if addr.is_ipv4() { 32 } else { 128 };
    if prefix > max {
        return Err(NetError::Invalid {
            what: "prefix length",
            detail: format!("{addr}/{prefix} (at most {max})"),
        });
    }
    Ok(())
}

pub(super) fn family_of(addr: IpAddr) -> RtAddrFamily {
    match addr {
        IpAddr::V4(_) => RtAddrFamily::Inet,
        IpAddr::V6(_) => RtAddrFamily::Inet6,
    }
}

fn is_up(flags: &Iff) -> bool {
    flags.contains(Iff::UP) && flags.contains(Iff::LOWERUP)
}

fn link_from_msg(msg: &Ifinfomsg) -> Option<LinkInfo> {
    let attrs = msg.rtattrs().get_attr_handle();
    let name = attrs
        .get_attr_payload_as_with_len::<String>(Ifla::Ifname)
        .ok()?
        .trim_end_matches('\0')
        .to_owned();
    let mut mac = [0u8; 6];
    if let Some(a) = attrs.get_attribute(Ifla::Address) {
        let bytes: &[u8] = a.rta_payload().as_ref();
        if bytes.len() == 6 {
            mac.copy_from_slice(bytes);
        }
    }
    let mtu = attrs.get_attr_payload_as::<u32>(Ifla::Mtu).unwrap_or(0);
    let parent = attrs
        .get_attr_payload_as::<u32>(Ifla::Link)
        .ok()
        .filter(|&p| p != 0);
    let kind = attrs
        .get_nested_attributes::<IflaInfo>(Ifla::Linkinfo)
        .ok()
        .and_then(|info| {
            info.get_attr_payload_as_with_len::<String>(IflaInfo::Kind)
                .ok()
        })
        .map(|k| k.trim_end_matches('\0').to_owned());
    Some(LinkInfo {
        index: u32::try_from(*msg.ifi_index()).ok()?,
        name,
        mac,
        up: is_up(msg.ifi_flags()),
        mtu,
        kind,
        parent,
    })
}

fn addr_from_msg(msg: &Ifaddrmsg) -> Option<IfAddr> {
    let attrs = msg.rtattrs().get_attr_handle();
    // IFA_LOCAL is the local address; IFA_ADDRESS is the peer on
    // point-to-point links. IPv6 only sends IFA_ADDRESS.
    let raw = attrs
        .get_attribute(Ifa::Local)
        .or_else(|| attrs.get_attribute(Ifa::Address))?;
    let bytes: &[u8] = raw.rta_payload().as_ref();
    let addr = match *msg.ifa_family() {
        RtAddrFamily::Inet => IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(bytes).ok()?)),
        RtAddrFamily::Inet6 => IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(bytes).ok()?)),
        _ => return None,
    };
    let label = attrs
        .get_attr_payload_as_with_len::<String>(Ifa::Label)
        .ok()
        .map(|l| l.trim_end_matches('\0').to_owned());
    Some(IfAddr {
        addr,
        prefix: *msg.ifa_prefixlen(),
        label,
    })
}

pub(super) fn ip_bytes(addr: IpAddr) -> Vec<u8> {
    match addr {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

pub(super) fn rtattr<T, P>(ty: T, payload: P) -> Result<neli::rtnl::Rtattr<T, Buffer>>
where
    T: Size,
    P: Size + ToBytes,
{
    RtattrBuilder::default()
        .rta_type(ty)
        .rta_payload(payload)
        .build()
        .map_err(|e| nl_err("build attribute", e))
}

/// How a request failed: `Ok((errno, extended-ACK text))` when the kernel
/// answered NLMSG_ERROR, `Err(_)` when the conversation itself failed.
pub(super) type Refused = std::result::Result<(i32, Option<String>), NetError>;

/// Whether an errno means "this address/link is already gone".
fn already_gone(errno: i32) -> bool {
    errno == libc::EADDRNOTAVAIL || errno == libc::ENOENT || errno == libc::ENODEV
}

impl Netlink {
    /// Opens a NETLINK_ROUTE socket in the calling thread's network namespace.
    pub fn new() -> Result<Self> {
        let sock = NlSocketHandle::connect(NlFamily::Route, None, Groups::empty())
            .map_err(sock_err("connect NETLINK_ROUTE"))?;
        // Extended ACKs carry the kernel's reason in plain text; older
        // kernels reject the option, which only costs us that text.
        let _ = sock.enable_ext_ack(true);
        Ok(Netlink { sock, seq: 0 })
    }

    /// Sends one request and collects the payloads of its answer.
    ///
    /// Returns the payloads; the errno (and extended-ACK text) of the
    /// kernel's NLMSG_ERROR as `Err(Ok(_))`; transport failures as
    /// `Err(Err(_))`.
    pub(super) fn request<P, R>(
        &mut self,
        op: &'static str,
        ty: Rtm,
        flags: NlmF,
        payload: P,
    ) -> std::result::Result<Vec<R>, Refused>
    where
        P: Size + ToBytes + Debug,
        R: Size + FromBytesWithInput<Input = usize> + Debug,
    {
        self.seq = self.seq.wrapping_add(1).max(1);
        let seq = self.seq;
        let msg = NlmsghdrBuilder::default()
            .nl_type(ty)
            .nl_flags(flags | NlmF::REQUEST | NlmF::ACK)
            .nl_seq(seq)
            .nl_pid(0)
            .nl_payload(NlPayload::Payload(payload))
            .build()
            .map_err(|e| Err(nl_err(op, e)))?;
        self.sock.send(&msg).map_err(|e| Err(sock_err(op)(e)))?;

        let mut out = Vec::new();
        loop {
            let (iter, _groups) = self
                .sock
                .recv::<u16, Buffer>()
                .map_err(|e| Err(sock_err(op)(e)))?;
            for m in iter {
                let m: Nlmsghdr<u16, Buffer> = m.map_err(|e| Err(nl_err(op, e)))?;
                if *m.nl_seq() != seq {
                    continue;
                }
                let done = *m.nl_type() == u16::from(Nlmsg::Done);
                match m.nl_payload() {
                    NlPayload::Ack(_) => return Ok(out),
                    NlPayload::Err(e) => {
                        let errno = -*e.error();
                        let msg = e
                            .ext_ack()
                            .get_attr_handle()
                            .get_attr_payload_as_with_len::<String>(NlmsgerrAttr::Msg)
                            .ok()
                            .map(|s| s.trim_end_matches('\0').to_owned());
                        return Err(Ok((errno, msg)));
                    }
                    _ if done => return Ok(out),
                    NlPayload::Payload(buf) => {
                        let bytes: &[u8] = buf.as_ref();
                        let parsed = R::from_bytes_with_input(&mut Cursor::new(bytes), bytes.len())
                            .map_err(|e| Err(nl_err(op, e)))?;
                        out.push(parsed);
                    }
                    NlPayload::DumpExtAck(_) | NlPayload::Empty => {}
                }
            }
        }
    }

    /// Like `request`, with the kernel errno turned into a [`NetError::Kernel`].
    fn call<P, R>(
        &mut self,
        op: &'static str,
        target: impl FnOnce() -> String,
        ty: Rtm,
        flags: NlmF,
        payload: P,
    ) -> Result<Vec<R>>
    where
        P: Size + ToBytes + Debug,
        R: Size + FromBytesWithInput<Input = usize> + Debug,
    {
        self.request(op, ty, flags, payload).map_err(|e| match e {
            Err(e) => e,
            Ok((errno, msg)) => kernel_err(op, target(), errno, msg),
        })
    }

    /// Every link of the namespace.
    pub fn links(&mut self) -> Result<Vec<LinkInfo>> {
        let msg = IfinfomsgBuilder::default()
            .ifi_family(RtAddrFamily::Unspecified)
            .build()
            .map_err(|e| nl_err("RTM_GETLINK", e))?;
        let msgs: Vec<Ifinfomsg> = self.call(
            "RTM_GETLINK",
            || "all links".into(),
            Rtm::Getlink,
            NlmF::DUMP,
            msg,
        )?;
        Ok(msgs.iter().filter_map(link_from_msg).collect())
    }

    /// The link called `name`.
    ///
    /// # Errors
    /// [`NetError::NoSuchInterface`] naming it when there is none;
    /// [`NetError::Invalid`] when the name cannot be an interface name.
    pub fn link_by_name(&mut self, name: &str) -> Result<LinkInfo> {
        check_ifname(name)?;
        let mut attrs = RtBuffer::new();
        attrs.push(rtattr(Ifla::Ifname, name)?);
        let msg = IfinfomsgBuilder::default()
            .ifi_family(RtAddrFamily::Unspecified)
            .rtattrs(attrs)
            .build()
            .map_err(|e| nl_err("RTM_GETLINK", e))?;
        self.get_link(msg, |l| l.name == name, || format!("link {name:?}"), || NetError::NoSuchInterface {
            name: name.into(),
        })
    }

    /// The link with index `index`.
    ///
    /// # Errors
    /// [`NetError::NoSuchIndex`] when there is none.
    pub fn link_by_index(&mut self, index: u32) -> Result<LinkInfo> {
        let ifi_index = i32::try_from(index)
            .ok()
            .filter(|&i| i > 0)
            .ok_or(NetError::NoSuchIndex { index })?;
        let msg = IfinfomsgBuilder::default()
            .ifi_family(RtAddrFamily::Unspecified)
            .ifi_index(ifi_index)
            .build()
            .map_err(|e| nl_err("RTM_GETLINK", e))?;
        self.get_link(msg, |l| l.index == index, || format!("ifindex {index}"), || NetError::NoSuchIndex { index })
    }

    /// One RTM_GETLINK: the answer that `is_it` picks, `missing()` when the kernel has no such
    /// link (ENODEV, or an answer about another one).
    fn get_link(
        &mut self,
        msg: Ifinfomsg,
        is_it: impl Fn(&LinkInfo) -> bool,
        what: impl FnOnce() -> String,
        missing: impl Fn() -> NetError,
    ) -> Result<LinkInfo> {
        match self.request::<_, Ifinfomsg>("RTM_GETLINK", Rtm::Getlink, NlmF::empty(), msg) {
            Ok(msgs) => msgs.iter().filter_map(link_from_msg).find(|l| is_it(l)).ok_or_else(&missing),
            Err(Ok((errno, _))) if errno == libc::ENODEV => Err(missing()),
            Err(Ok((errno, msg))) => Err(kernel_err("RTM_GETLINK", what(), errno, msg)),
            Err(Err(e)) => Err(e),
        }
    }

    /// The IPv4 and IPv6 addresses of link `index`, in kernel order (the
    /// primary IPv4 address first).
    ///
    /// # Errors
    /// [`NetError::NoSuchIndex`] when the link does not exist.
    pub fn addresses(&mut self, index: u32) -> Result<Vec<IfAddr>> {
        self.link_by_index(index)?;
        let msg = IfaddrmsgBuilder::default()
            .ifa_family(RtAddrFamily::Unspecified)
            .ifa_prefixlen(0)
            .ifa_scope(RtScope::Universe)
            .ifa_index(index)
            .build()
            .map_err(|e| nl_err("RTM_GETADDR", e))?;
        let msgs: Vec<Ifaddrmsg> = self.call(
            "RTM_GETADDR",
            || format!("ifindex {index}"),
            Rtm::Getaddr,
            NlmF::DUMP,
            msg,
        )?;
        // Without strict checking the kernel dumps every link's addresses.
        Ok(msgs
            .iter()
            .filter(|m| *m.ifa_index() == index)
            .filter_map(addr_from_msg)
            .collect())
    }

    /// Adds an address to link `index`. Adding an address that is already
    /// there (same address and prefix) succeeds.
    pub fn add_address(&mut self, index: u32, spec: &AddrSpec) -> Result<()> {
        check_prefix(spec.addr, spec.prefix)?;
        let mut attrs = RtBuffer::new();
        let bytes = ip_bytes(spec.addr);
        attrs.push(rtattr(Ifa::Local, bytes.as_slice())?);
        match spec.peer {
            Some(peer) if peer.is_ipv4() == spec.addr.is_ipv4() => attrs.push(rtattr(Ifa::Address, ip_bytes(peer).as_slice())?),
            Some(peer) => {
                return Err(NetError::Invalid { what: "peer address", detail: format!("{peer} is not of the family of {}", spec.addr) })
            }
            None => attrs.push(rtattr(Ifa::Address, bytes.as_slice())?),
        }
        let all_flags = spec.flags | if spec.nodad && spec.addr.is_ipv6() { IFA_F_NODAD } else { 0 };
        if all_flags & !0xff != 0 || spec.flags != 0 {
            // The flags that do not fit the header's byte (kernel 3.14 and later).
            attrs.push(rtattr(Ifa::Flags, all_flags)?);
        }
        if let (Some(preferred), true) = (spec.preferred_lft, spec.addr.is_ipv6()) {
            // struct ifa_cacheinfo: ifa_prefered, ifa_valid (forever), cstamp, tstamp.
            let mut ci = Vec::with_capacity(16);
            for v in [preferred, u32::MAX, 0, 0] {
                ci.extend_from_slice(&v.to_ne_bytes());
            }
            attrs.push(rtattr(Ifa::Cacheinfo, ci.as_slice())?);
        }
        let mut flags = IfaF::empty();
        if spec.addr.is_ipv4() {
            if let Some(brd) = spec.broadcast {
                attrs.push(rtattr(Ifa::Broadcast, brd.octets())?);
            }
            if let Some(label) = &spec.label {
                check_label(label)?;
                attrs.push(rtattr(Ifa::Label, label.as_str())?);
            }
        } else if spec.nodad {
            flags |= IfaF::NODAD;
        }
        let msg = IfaddrmsgBuilder::default()
            .ifa_family(family_of(spec.addr))
            .ifa_prefixlen(spec.prefix)
            .ifa_flags(flags)
            .ifa_scope(RtScope::from(spec.scope))
            .ifa_index(index)
            .rtattrs(attrs)
            .build()
            .map_err(|e| nl_err("RTM_NEWADDR", e))?;
        match self.request::<_, Ifaddrmsg>(
            "RTM_NEWADDR",
            Rtm::Newaddr,
            NlmF::CREATE | NlmF::EXCL,
            msg,
        ) {
            Ok(_) => Ok(()),
            Err(Ok((errno, _))) if errno == libc::EEXIST => Ok(()),
            Err(Ok((errno, _))) if errno == libc::ENODEV => Err(NetError::NoSuchIndex { index }),
            Err(Ok((errno, msg))) => Err(kernel_err(
                "RTM_NEWADDR",
                format!("{}/{} on ifindex {index}", spec.addr, spec.prefix),
                errno,
                msg,
            )),
            Err(Err(e)) => Err(e),
        }
    }

    /// Removes `addr/prefix` from link `index`. Removing an address (or from
    /// a link) that is already gone succeeds.
    pub fn del_address(&mut self, index: u32, addr: IpAddr, prefix: u8) -> Result<()> {
        check_prefix(addr, prefix)?;
        let mut attrs = RtBuffer::new();
        let bytes = ip_bytes(addr);
        attrs.push(rtattr(Ifa::Local, bytes.as_slice())?);
        // IPv4: the kernel matches IFA_ADDRESS against the address's peer when it has one, so
        // it is left out and the local address alone names it (a `peer` VIP is removed too).
        if addr.is_ipv6() {
            attrs.push(rtattr(Ifa::Address, bytes.as_slice())?);
        }
        let msg = IfaddrmsgBuilder::default()
            .ifa_family(family_of(addr))
            .ifa_prefixlen(prefix)
            .ifa_scope(RtScope::Universe)
            .ifa_index(index)
            .rtattrs(attrs)
            .build()
            .map_err(|e| nl_err("RTM_DELADDR", e))?;
        match self.request::<_, Ifaddrmsg>("RTM_DELADDR", Rtm::Deladdr, NlmF::empty(), msg) {
            Ok(_) => Ok(()),
            Err(Ok((errno, _))) if already_gone(errno) => Ok(()),
            Err(Ok((errno, msg))) => Err(kernel_err(
                "RTM_DELADDR",
                format!("{addr}/{prefix} on ifindex {index}"),
                errno,
                msg,
            )),
            Err(Err(e)) => Err(e),
        }
    }

    /// Creates a macvlan `name` on link `parent` with hardware address `mac`
    /// (a VRRP virtual MAC, 00:00:5e:00:01:VRID or 00:00:5e:00:02:VRID), and
    /// returns its index. The link is left down; see [`Netlink::set_up`].
    ///
    /// The mode is `private`, as keepalived's VMACs: the kernel neither
    /// forwards between sibling macvlans of one parent nor loops one VMAC's
    /// adverts and gratuitous ARPs into another, so each VMAC behaves like a
    /// separate NIC on the wire, which is what VRRP expects of a router.
    ///
    /// Idempotent: when a macvlan of that name already exists on `parent`
    /// with `mac`, its index is returned.
    ///
    /// # Errors
    /// [`NetError::LinkConflict`] when `name` exists but is something else.
    pub fn create_macvlan(&mut self, parent: u32, name: &str, mac: [u8; 6]) -> Result<u32> {
        check_ifname(name)?;
        if let Some(index) = self.existing_macvlan(parent, name, mac)? {
            return Ok(index);
        }
        let parent_i32 = i32::try_from(parent)
            .ok()
            .filter(|&p| p > 0)
            .ok_or(NetError::NoSuchIndex { index: parent })?;
        let mut data = RtBuffer::<u16, Buffer>::new();
        data.push(rtattr(IFLA_MACVLAN_MODE, MACVLAN_MODE_PRIVATE)?);
        let mut info = RtBuffer::<IflaInfo, Buffer>::new();
        info.push(rtattr(IflaInfo::Kind, "macvlan")?);
        info.push(rtattr(IflaInfo::Data, data)?);
        let mut attrs = RtBuffer::<Ifla, Buffer>::new();
        attrs.push(rtattr(Ifla::Ifname, name)?);
        attrs.push(rtattr(Ifla::Link, parent_i32 as u32)?);
        attrs.push(rtattr(Ifla::Address, mac)?);
        attrs.push(rtattr(Ifla::Linkinfo, info)?);
        let msg = IfinfomsgBuilder::default()
            .ifi_family(RtAddrFamily::Unspecified)
            .rtattrs(attrs)
            .build()
            .map_err(|e| nl_err("RTM_NEWLINK", e))?;
        match self.request::<_, Ifinfomsg>(
            "RTM_NEWLINK",
            Rtm::Newlink,
            NlmF::CREATE | NlmF::EXCL,
            msg,
        ) {
            Ok(_) => {}
            // Lost a race with another creator: the check below decides.
            Err(Ok((errno, _))) if errno == libc::EEXIST => {}
            Err(Ok((errno, _))) if errno == libc::ENODEV => {
                return Err(NetError::NoSuchIndex { index: parent })
            }
            Err(Ok((errno, msg))) => {
                return Err(kernel_err(
                    "RTM_NEWLINK",
                    format!("macvlan {name:?} on ifindex {parent}"),
                    errno,
                    msg,
                ))
            }
            Err(Err(e)) => return Err(e),
        }
        self.existing_macvlan(parent, name, mac)?
            .ok_or_else(|| NetError::NoSuchInterface { name: name.into() })
    }

    fn existing_macvlan(&mut self, parent: u32, name: &str, mac: [u8; 6]) -> Result<Option<u32>> {
        let link = match self.link_by_name(name) {
            Ok(link) => link,
            Err(NetError::NoSuchInterface { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let conflict = |detail: String| NetError::LinkConflict {
            name: name.into(),
            detail,
        };
        if link.kind.as_deref() != Some("macvlan") {
            return Err(conflict(format!("kind {:?}, wanted macvlan", link.kind)));
        }
        if link.parent != Some(parent) {
            return Err(conflict(format!(
                "parent {:?}, wanted ifindex {parent}",
                link.parent
            )));
        }
        if link.mac != mac {
            return Err(conflict(format!(
                "mac {}, wanted {}",
                fmt_mac(&link.mac),
                fmt_mac(&mac)
            )));
        }
        Ok(Some(link.index))
    }

    fn set_flags(&mut self, index: u32, up: bool) -> Result<()> {
        let op = "RTM_NEWLINK";
        let ifi_index = i32::try_from(index)
            .ok()
            .filter(|&i| i > 0)
            .ok_or(NetError::NoSuchIndex { index })?;
        let builder = IfinfomsgBuilder::default()
            .ifi_family(RtAddrFamily::Unspecified)
            .ifi_index(ifi_index);
        let builder = if up { builder.up() } else { builder.down() };
        let msg = builder.build().map_err(|e| nl_err(op, e))?;
        match self.request::<_, Ifinfomsg>(op, Rtm::Newlink, NlmF::empty(), msg) {
            Ok(_) => Ok(()),
            Err(Ok((errno, _))) if errno == libc::ENODEV => Err(NetError::NoSuchIndex { index }),
            Err(Ok((errno, msg))) => Err(kernel_err(
                op,
                format!("set ifindex {index} {}", if up { "up" } else { "down" }),
                errno,
                msg,
            )),
            Err(Err(e)) => Err(e),
        }
    }

    /// Sets link `index` administratively up.
    pub fn set_up(&mut self, index: u32) -> Result<()> {
        self.set_flags(index, true)
    }

    /// Sets link `index` administratively down.
    pub fn set_down(&mut self, index: u32) -> Result<()> {
        self.set_flags(index, false)
    }

    /// Deletes link `index`. Deleting a link that is already gone succeeds.
    pub fn delete_link(&mut self, index: u32) -> Result<()> {
        let Some(ifi_index) = i32::try_from(index).ok().filter(|&i| i > 0) else {
            return Ok(());
        };
        let msg = IfinfomsgBuilder::default()
            .ifi_family(RtAddrFamily::Unspecified)
            .ifi_index(ifi_index)
            .build()
            .map_err(|e| nl_err("RTM_DELLINK", e))?;
        match self.request::<_, Ifinfomsg>("RTM_DELLINK", Rtm::Dellink, NlmF::empty(), msg) {
            Ok(_) => Ok(()),
            Err(Ok((errno, _))) if errno == libc::ENODEV => Ok(()),
            Err(Ok((errno, msg))) => Err(kernel_err(
                "RTM_DELLINK",
                format!("ifindex {index}"),
                errno,
                msg,
            )),
            Err(Err(e)) => Err(e),
        }
    }
}

fn check_label(label: &str) -> Result<()> {
    if label.is_empty() || label.len() > IFNAMSIZ_MAX || label.contains('\0') {
        return Err(NetError::Invalid {
            what: "address label",
            detail: format!("{label:?} (1 to {IFNAMSIZ_MAX} bytes)"),
        });
    }
    Ok(())
}

pub(super) fn kernel_err(op: &'static str, target: String, errno: i32, msg: Option<String>) -> NetError {
    let target = match msg {
        Some(m) if !m.is_empty() => format!("{target} ({m})"),
        _ => target,
    };
    NetError::Kernel {
        op,
        target,
        source: io::Error::from_raw_os_error(errno),
    }
}

/// Formats a MAC address as `aa:bb:cc:dd:ee:ff`.
pub fn fmt_mac(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// A link changed state (from an `RTM_NEWLINK` / `RTM_DELLINK` notification).
///
/// The kernel sends `RTM_NEWLINK` for many changes (flags, MTU, address,
/// statistics), so consecutive events can carry the same `up`; consumers
/// should compare with the state they already know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkEvent {
    /// Interface index.
    pub index: u32,
    /// Interface name.
    pub name: String,
    /// `IFF_UP` and `IFF_LOWER_UP`; always false when `deleted`.
    pub up: bool,
    /// The link was removed (`RTM_DELLINK`).
    pub deleted: bool,
}

/// An address was added to or removed from a link (`RTM_NEWADDR` /
/// `RTM_DELADDR`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddrEvent {
    /// The link's index.
    pub index: u32,
    /// The address.
    pub addr: IpAddr,
    /// Its prefix length.
    pub prefix: u8,
    /// Removed rather than added.
    pub deleted: bool,
}

/// What a [`LinkWatcher`] reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchEvent {
    /// A link changed.
    Link(LinkEvent),
    /// An address changed (only with [`LinkWatcher::with_addresses`]).
    Addr(AddrEvent),
}

/// Watches link state changes (netlink group `RTNLGRP_LINK`), and with
/// [`LinkWatcher::with_addresses`] address changes too.
///
/// The netlink socket is non-blocking and registered with tokio's reactor
/// through [`AsyncFd`]; no extra thread.
pub struct LinkWatcher {
    fd: AsyncFd<NlSocketHandle>,
    pending: VecDeque<WatchEvent>,
}

impl Debug for LinkWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkWatcher")
            .field("fd", &self.fd.get_ref().as_raw_fd())
            .field("pending", &self.pending.len())
            .finish()
    }
}

impl LinkWatcher {
    /// Subscribes to link notifications in the calling thread's network
    /// namespace. Must be called inside a tokio runtime.
    pub fn new() -> Result<Self> {
        Self::subscribe(&[libc::RTNLGRP_LINK])
    }

    /// Subscribes to link and address (IPv4 and IPv6) notifications.
    pub fn with_addresses() -> Result<Self> {
        Self::subscribe(&[libc::RTNLGRP_LINK, libc::RTNLGRP_IPV4_IFADDR, libc::RTNLGRP_IPV6_IFADDR])
    }

    fn subscribe(groups: &[u32]) -> Result<Self> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(NetError::Netlink {
                op: "link watcher",
                detail: "must be created inside a tokio runtime".into(),
            });
        }
        let sock = NlSocketHandle::connect(
            NlFamily::Route,
            None,
            Groups::new_groups(groups),
        )
        .map_err(sock_err("subscribe RTNLGRP_LINK"))?;
        set_nonblocking(sock.as_raw_fd()).map_err(|e| NetError::Netlink {
            op: "link watcher O_NONBLOCK",
            detail: e.to_string(),
        })?;
        let fd = super::sys::async_netlink(sock).map_err(|e| NetError::Netlink {
            op: "link watcher register",
            detail: e.to_string(),
        })?;
        Ok(LinkWatcher {
            fd,
            pending: VecDeque::new(),
        })
    }

    /// The next link event (address events are skipped).
    ///
    /// Cancel-safe: events already read stay queued for the next call.
    ///
    /// # Errors
    /// An error whose [`NetError::raw_os_error`] is `ENOBUFS` means the
    /// kernel dropped notifications because they were not read fast enough:
    /// re-read the link table with [`Netlink::links`]. The watcher stays
    /// usable.
    pub async fn next(&mut self) -> Result<LinkEvent> {
        loop {
            if let WatchEvent::Link(ev) = self.next_event().await? {
                return Ok(ev);
            }
        }
    }

    /// The next link or address event.
    ///
    /// Cancel-safe: events already read stay queued for the next call.
    ///
    /// # Errors
    /// As [`Self::next`]: after `ENOBUFS` re-read links and addresses.
    pub async fn next_event(&mut self) -> Result<WatchEvent> {
        loop {
            if let Some(ev) = self.pending.pop_front() {
                return Ok(ev);
            }
            let mut guard = self.fd.readable().await.map_err(|e| NetError::Netlink {
                op: "link watcher poll",
                detail: e.to_string(),
            })?;
            let res = guard.try_io(|inner| match inner.get_ref().recv::<u16, Buffer>() {
                Ok((iter, _)) => {
                    let mut out = Vec::new();
                    for m in iter {
                        match m {
                            Ok(m) => out.extend(event_from_msg(m)),
                            Err(e) => {
                                tracing::debug!("dropping undecodable link notification: {e}");
                            }
                        }
                    }
                    Ok(Ok(out))
                }
                Err(SocketError::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                    Err(io::Error::from(io::ErrorKind::WouldBlock))
                }
                Err(SocketError::Io(e)) => Ok(Err(NetError::socket(
                    "netlink recv (RTNLGRP_LINK)",
                    "*",
                    e.raw_os_error().map_or_else(
                        || io::Error::new(e.kind(), e.to_string()),
                        io::Error::from_raw_os_error,
                    ),
                ))),
                Err(e) => Ok(Err(sock_err("link watcher recv")(e))),
            });
            match res {
                Ok(Ok(Ok(events))) => self.pending.extend(events),
                Ok(Ok(Err(e))) => return Err(e),
                Ok(Err(e)) => {
                    return Err(NetError::Netlink {
                        op: "link watcher recv",
                        detail: e.to_string(),
                    })
                }
                // Spurious readiness; wait again.
                Err(_would_block) => {}
            }
        }
    }
}

fn event_from_msg(m: Nlmsghdr<u16, Buffer>) -> Option<WatchEvent> {
    let ty = *m.nl_type();
    if ty == u16::from(Rtm::Newaddr) || ty == u16::from(Rtm::Deladdr) {
        let deleted = ty == u16::from(Rtm::Deladdr);
        let typed: Nlmsghdr<Rtm, Ifaddrmsg> = m.to_typed().ok()?;
        let msg = typed.get_payload()?;
        let a = addr_from_msg(msg)?;
        return Some(WatchEvent::Addr(AddrEvent { index: *msg.ifa_index(), addr: a.addr, prefix: a.prefix, deleted }));
    }
    let deleted = if ty == u16::from(Rtm::Newlink) {
        false
    } else if ty == u16::from(Rtm::Dellink) {
        true
    } else {
        return None;
    };
    let typed: Nlmsghdr<Rtm, Ifinfomsg> = m.to_typed().ok()?;
    let link = link_from_msg(typed.get_payload()?)?;
    Some(WatchEvent::Link(LinkEvent {
        index: link.index,
        name: link.name,
        up: link.up && !deleted,
        deleted,
    }))
}

pub(crate) fn set_nonblocking(fd: std::os::fd::RawFd) -> nix::Result<()> {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    let flags = OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL)?);
    fcntl(fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_check_ifname() {
        assert!(check_ifname("eth0").is_ok());
        assert!(check_ifname("a23456789012345").is_ok());
        for bad in ["", "a234567890123456", "a/b", "a b", ".", ".."] {
            let e = check_ifname(bad).unwrap_err();
            assert!(matches!(e, NetError::Invalid { .. }), "{bad:?}");
            assert!(e.to_string().contains(&format!("{bad:?}")));
        }
    }

    #[test]
    fn test_check_prefix() {
        assert!(check_prefix("10.0.0.1".parse().unwrap(), 32).is_ok());
        assert!(check_prefix("10.0.0.1".parse().unwrap(), 33).is_err());
        assert!(check_prefix("fe80::1".parse().unwrap(), 128).is_ok());
        let e = check_prefix("fe80::1".parse().unwrap(), 129).unwrap_err();
        assert!(e.to_string().contains("fe80::1/129"));
    }

    #[test]
    fn test_fmt_mac() {
        assert_eq!(fmt_mac(&[0, 0, 0x5e, 0, 1, 0x2a]), "00:00:5e:00:01:2a");
    }

    #[test]
    fn test_already_gone() {
        assert!(already_gone(libc::EADDRNOTAVAIL));
        assert!(already_gone(libc::ENODEV));
        assert!(!already_gone(libc::EPERM));
    }

    #[test]
    fn test_kernel_err_carries_ext_ack() {
        let e = kernel_err(
            "RTM_NEWLINK",
            "macvlan \"x\"".into(),
            libc::EINVAL,
            Some("bad mode".into()),
        );
        assert_eq!(e.raw_os_error(), Some(libc::EINVAL));
        assert!(e.to_string().contains("bad mode"));
    }
}
