//! The router: hav-core's engine on smoltcp's `Interface`, driven by an
//! embassy task.
//!
//! The router only carries out what the engine decides: received VRRP
//! messages go to [`Engine::receive`], deadlines to [`Engine::poll`], link
//! changes become [`Input::Link`]; the returned [`Output`]s become packets on
//! the raw socket, addresses on the interface and gratuitous ARP frames on
//! the driver. Sync groups, gratuitous ARP pacing and the drop counters are
//! the engine's, the same code as on a Linux director.

use core::future::{poll_fn, Future};
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use core::pin::Pin;
use core::task::{Context, Poll, Waker};

use embassy_net_driver::{Driver, HardwareAddress as DriverAddress, LinkState, TxToken};
use embassy_time::Timer;
use hav_core::vrrp::{Action, Engine, Fixed, Input, Instance, Output, Reason, Received, Record, State, VrKey};
use hav_core::wire::ip::{IpHeader, IPV6_HEADER_LEN, TOS_NETWORK_CONTROL};
use hav_core::wire::{gratuitous_arp_frame, unsolicited_na_frame, VrrpPacket, VRRP_PROTO, VRRP_TTL};
use smoltcp::iface::{
    Config, Interface, PollIngressSingleResult, SocketHandle, SocketSet, SocketStorage,
};
use smoltcp::socket::raw;
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpAddress, IpCidr, IpProtocol, IpVersion};

use crate::config::{ConfigError, NodeConfig, MAX_GROUPS, MAX_INSTANCES};
use crate::device::Adapter;
use crate::{igmp, mld};

/// Packets each raw VRRP socket (IPv4, IPv6) queues in each direction.
pub const RAW_PACKETS: usize = 4;
/// Bytes of packet data each raw VRRP socket queues in each direction. An
/// advert with 8 IPv4 addresses is 60 bytes with its IP header, one with 8
/// IPv6 addresses 176.
pub const RAW_BUFFER: usize = 1024;
/// Prefix length the IPv6 VIPs (and the link-local address) get on the
/// interface, so that hosts of the VIP's /64 are on-link for the answers.
const V6_PREFIX: u8 = 64;
/// Longest [`Router::shutdown`] waits for its priority-0 adverts to leave.
pub const SHUTDOWN_FLUSH: embassy_time::Duration = embassy_time::Duration::from_millis(100);
/// Unsolicited IGMP (and MLD) reports sent after startup and after each link-up.
const IGMP_REPORTS: u8 = 2;
/// Spacing of those reports (and delay of the first).
const IGMP_INTERVAL: hav_core::Duration = hav_core::Duration::from_secs(1);
/// Frames taken from the driver in one pass before the other work (timers)
/// gets its turn.
const INGRESS_BURST: usize = 32;
// Longest advert handled: 255 IPv4 addresses and authentication after an
// IPv4 header, or 63 IPv6 addresses after an IPv6 header.
const MAX_PACKET: usize = IPV6_HEADER_LEN + 8 + 255 * 4 + 8;

/// Memory the router borrows for its sockets; keep it in a `static` (a
/// `StaticCell`) on a board so that it counts as static RAM.
pub struct Resources<'a> {
    rx_meta: [raw::PacketMetadata; RAW_PACKETS],
    rx_buf: [u8; RAW_BUFFER],
    tx_meta: [raw::PacketMetadata; RAW_PACKETS],
    tx_buf: [u8; RAW_BUFFER],
    rx6_meta: [raw::PacketMetadata; RAW_PACKETS],
    rx6_buf: [u8; RAW_BUFFER],
    tx6_meta: [raw::PacketMetadata; RAW_PACKETS],
    tx6_buf: [u8; RAW_BUFFER],
    sockets: [SocketStorage<'a>; 2],
}

impl Resources<'_> {
    /// Empty buffers.
    pub const fn new() -> Self {
        Resources {
            rx_meta: [raw::PacketMetadata::EMPTY; RAW_PACKETS],
            rx_buf: [0; RAW_BUFFER],
            tx_meta: [raw::PacketMetadata::EMPTY; RAW_PACKETS],
            tx_buf: [0; RAW_BUFFER],
            rx6_meta: [raw::PacketMetadata::EMPTY; RAW_PACKETS],
            rx6_buf: [0; RAW_BUFFER],
            tx6_meta: [raw::PacketMetadata::EMPTY; RAW_PACKETS],
            tx6_buf: [0; RAW_BUFFER],
            sockets: [SocketStorage::EMPTY; 2],
        }
    }
}

impl Default for Resources<'_> {
    fn default() -> Self {
        Self::new()
    }
}

/// Outputs one engine call can produce before they are carried out: every
/// instance moving with its sync group, a few actions each.
const MAX_OUTPUTS: usize = 64;

/// Something that happened, reported to the observer set with
/// [`Router::set_observer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Event {
    /// An instance changed state.
    Transition {
        /// The instance's VRID.
        vrid: u8,
        /// The state left.
        from: State,
        /// The state entered.
        to: State,
        /// Why, as hav-core says.
        reason: Reason,
        /// When, on the router's clock (embassy-time).
        at: hav_core::Instant,
    },
    /// Every member of a sync group is now in `state`.
    Group {
        /// The group's position in [`NodeConfig::groups`].
        group: u8,
        /// The state they agree on.
        state: State,
    },
}

/// Why the router could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum RouterError {
    /// The node config is invalid.
    Config(ConfigError),
    /// The config names no MAC and the driver has no Ethernet address.
    NoMac,
}

impl core::fmt::Display for RouterError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            RouterError::Config(e) => write!(f, "config: {e}"),
            RouterError::NoMac => f.write_str("no Ethernet address in the config or the driver"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for RouterError {}

// A gratuitous ARP round the driver has not taken yet (it lacked transmit slots).
#[derive(Debug, Clone, Copy)]
struct Garp {
    rounds_left: u8,
    next_vip: usize,
}

/// The router's half of an engine record: the frames of a gratuitous ARP
/// round still to hand to the driver.
#[derive(Debug, Default)]
struct Vr {
    garp: Option<Garp>,
}

type VrEngine = Engine<Vr, Fixed<MAX_INSTANCES, MAX_GROUPS>>;
type Outputs = heapless::Deque<Output, MAX_OUTPUTS>;

// The single port's interface number in the engine's keys.
const PORT: u32 = 0;

/// One node: its interface, its raw VRRP sockets and its instances.
pub struct Router<'a, D: Driver> {
    device: D,
    iface: Interface,
    sockets: SocketSet<'a>,
    raw: SocketHandle,
    raw6: SocketHandle,
    engine: VrEngine,
    mac: [u8; 6],
    address: Ipv4Addr,
    link_local: Option<Ipv6Addr>,
    link_up: bool,
    started: bool,
    ident: u16,
    timer: Option<(embassy_time::Instant, Timer)>,
    observer: Option<fn(&Event)>,
    // Multicast groups joined, and the next unsolicited report (time, left).
    groups: heapless::Vec<Ipv4Addr, MAX_INSTANCES>,
    groups6: heapless::Vec<Ipv6Addr, MAX_INSTANCES>,
    igmp: Option<(hav_core::Instant, u8)>,
}

fn core_now() -> hav_core::Instant {
    hav_core::Instant::from_micros(embassy_time::Instant::now().as_micros())
}

fn smol_instant(t: hav_core::Instant) -> smoltcp::time::Instant {
    smoltcp::time::Instant::from_micros(t.total_micros() as i64)
}

impl<'a, D: Driver> Router<'a, D> {
    /// Builds the router for `config` (validated here) over `device`.
    ///
    /// The interface gets the node's address; the raw socket for protocol
    /// 112 and the multicast groups are set up. Nothing is sent before
    /// [`Router::run`].
    pub fn new(
        mut device: D,
        config: &NodeConfig,
        res: &'a mut Resources<'a>,
    ) -> Result<Self, RouterError> {
        config.validate().map_err(RouterError::Config)?;
        let mac = match (config.mac, device.hardware_address()) {
            (Some(m), _) => m,
            (None, DriverAddress::Ethernet(m)) => m,
            (None, _) => return Err(RouterError::NoMac),
        };
        let mut cx = Context::from_waker(Waker::noop());
        let now = smol_instant(core_now());
        let mut icfg = Config::new(HardwareAddress::Ethernet(EthernetAddress(mac)));
        icfg.random_seed = u64::from_le_bytes([mac[0], mac[1], mac[2], mac[3], mac[4], mac[5], 0x68, 0x76]);
        let mut iface =
            Interface::new(icfg, &mut Adapter { inner: &mut device, cx: &mut cx }, now);
        let link_local = config.link_local();
        iface.update_ip_addrs(|addrs| {
            // validate() left room for both in the empty list.
            let _ = addrs.push(IpCidr::new(IpAddress::Ipv4(config.address), config.prefix_len));
            if let Some(ll) = link_local {
                let _ = addrs.push(IpCidr::new(IpAddress::Ipv6(ll), V6_PREFIX));
            }
        });
        let mut groups = heapless::Vec::new();
        let mut groups6 = heapless::Vec::new();
        for c in &config.instances {
            let joined = match (c.is_unicast(), c.mcast_group) {
                (true, _) => continue,
                (false, IpAddr::V4(group)) => {
                    if groups.contains(&group) {
                        continue;
                    }
                    // At most one group per instance: the push cannot fail.
                    let _ = groups.push(group);
                    iface.join_multicast_group(group)
                }
                // The router sends the MLD reports (see `mld`); smoltcp's
                // own still goes out.
                (false, IpAddr::V6(group)) if !groups6.contains(&group) => {
                    let _ = groups6.push(group);
                    iface.join_multicast_group(group)
                }
                (false, IpAddr::V6(_)) => continue,
            };
            if joined.is_err() {
                warn!("cannot join the VRRP multicast group");
            }
        }
        // Reborrow the fields one by one: the sockets borrow `res` for 'a.
        let Resources { rx_meta, rx_buf, tx_meta, tx_buf, rx6_meta, rx6_buf, tx6_meta, tx6_buf, sockets } = res;
        let rx = raw::PacketBuffer::new(&mut rx_meta[..], &mut rx_buf[..]);
        let tx = raw::PacketBuffer::new(&mut tx_meta[..], &mut tx_buf[..]);
        let socket = raw::Socket::new(IpVersion::Ipv4, IpProtocol::Unknown(VRRP_PROTO), rx, tx);
        let rx6 = raw::PacketBuffer::new(&mut rx6_meta[..], &mut rx6_buf[..]);
        let tx6 = raw::PacketBuffer::new(&mut tx6_meta[..], &mut tx6_buf[..]);
        let socket6 = raw::Socket::new(IpVersion::Ipv6, IpProtocol::Unknown(VRRP_PROTO), rx6, tx6);
        let mut sockets = SocketSet::new(&mut sockets[..]);
        let raw = sockets.add(socket);
        let raw6 = sockets.add(socket6);
        let mut engine = VrEngine::new();
        for c in &config.instances {
            // validate() bounded the count by MAX_INSTANCES and made the VRIDs unique.
            let key = VrKey { ifindex: PORT, ipv6: c.primary_addr.is_ipv6(), vrid: c.vrid };
            let _ = engine.add(Record::new(Vr::default(), key, Instance::new(c.clone())));
        }
        for g in &config.groups {
            let mut members: heapless::Vec<usize, MAX_INSTANCES> = heapless::Vec::new();
            for vrid in g {
                if let Some(i) = config.instances.iter().position(|c| c.vrid == *vrid) {
                    let _ = members.push(i);
                }
            }
            // validate() checked the members exist and belong to one group each.
            let _ = engine.add_group(&members);
        }
        Ok(Router {
            device,
            iface,
            sockets,
            raw,
            raw6,
            engine,
            mac,
            address: config.address,
            link_local,
            link_up: true,
            started: false,
            ident: 0,
            timer: None,
            observer: None,
            groups,
            groups6,
            igmp: None,
        })
    }

    /// Calls `f` for every [`Event`] (a state change), e.g. to print it.
    pub fn set_observer(&mut self, f: fn(&Event)) {
        self.observer = Some(f);
    }

    /// The instances, in config order.
    pub fn instances(&self) -> impl Iterator<Item = &Instance> {
        self.engine.records().iter().map(Record::instance)
    }

    /// VRRP messages dropped before any instance saw them (too short, a VRID
    /// not configured here).
    pub fn stray(&self) -> hav_core::vrrp::Stray {
        *self.engine.stray()
    }

    /// The Ethernet address the router sends from.
    pub fn mac(&self) -> [u8; 6] {
        self.mac
    }

    /// The interface's addresses now: the node's own, plus the VIPs of the
    /// instances that are master.
    pub fn addresses(&self) -> &[IpCidr] {
        self.iface.ip_addrs()
    }

    /// Runs the node forever: starts the instances, then serves the network
    /// and the timers. Cancel-safe: dropping the future stops the node where
    /// it is, sending nothing; [`Router::shutdown`] then makes it a clean
    /// stop (priority-0 adverts, VIPs released).
    pub async fn run(&mut self) -> ! {
        loop {
            poll_fn(|cx| self.poll(cx)).await;
        }
    }

    /// Stops the node cleanly: every master sends an advert with priority 0
    /// and releases its VIPs, so that a backup takes over after Skew_Time
    /// instead of Master_Down_Interval, and every instance goes back to
    /// Initialize (hav-core's `Input::Shutdown`). Returns once those adverts
    /// have been handed to the driver, or after [`SHUTDOWN_FLUSH`] when it
    /// cannot take them (a unicast peer whose address does not resolve).
    ///
    /// Call it after dropping the [`Router::run`] future. A later
    /// [`Router::run`] starts the instances afresh.
    pub async fn shutdown(&mut self) {
        let now = core_now();
        let mut out = Outputs::new();
        self.engine.broadcast(now, Input::Shutdown, &mut |o| keep(&mut out, o));
        self.apply(now, out);
        self.started = false;
        self.timer = None;
        let give_up = embassy_time::Instant::now() + SHUTDOWN_FLUSH;
        while embassy_time::Instant::now() < give_up {
            let sent = poll_fn(|cx| {
                self.poll_iface(cx, core_now());
                self.send_garps(cx);
                let queued = |h| self.sockets.get::<raw::Socket<'_>>(h).send_queue();
                Poll::Ready(queued(self.raw) == 0 && queued(self.raw6) == 0)
            })
            .await;
            if sent {
                return;
            }
            Timer::after_millis(1).await;
        }
        warn!("vrrp: shutdown adverts not all sent");
    }

    // One pass of work, then the wakers: the driver's (a frame arrived, a
    // transmit slot freed) and the timer of the next deadline.
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let mut passes = 0u8;
        loop {
            passes += 1;
            let now = core_now();
            if !self.started {
                self.started = true;
                self.igmp = Some((now + IGMP_INTERVAL, IGMP_REPORTS));
                let mut out = Outputs::new();
                self.engine.broadcast(now, Input::Startup, &mut |o| keep(&mut out, o));
                self.apply(now, out);
            }
            let up = self.device.link_state(cx) == LinkState::Up;
            if up != self.link_up {
                self.link_up = up;
                info!("link {}", if up { "up" } else { "down" });
                self.igmp = up.then_some((now + IGMP_INTERVAL, IGMP_REPORTS));
                let mut out = Outputs::new();
                self.engine.broadcast(now, Input::Link { up }, &mut |o| keep(&mut out, o));
                self.apply(now, out);
            }
            self.poll_iface(cx, now);
            let mut out = Outputs::new();
            self.engine.poll(now, &mut |o| keep(&mut out, o));
            self.apply(now, out);
            self.send_garps(cx);
            self.send_igmp(cx, now);
            // Flush what the instances queued on the raw socket.
            self.poll_iface(cx, now);

            let mut next = self.engine.poll_at();
            if let Some((t, _)) = self.igmp {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
            if let Some(t) = self.iface.poll_at(smol_instant(now), &self.sockets) {
                let t = hav_core::Instant::from_micros(t.total_micros().max(0) as u64);
                next = Some(next.map_or(t, |n| n.min(t)));
            }
            let Some(mut next) = next else {
                self.timer = None;
                return Poll::Pending;
            };
            if next <= core_now() {
                if passes < 2 {
                    continue;
                }
                // smoltcp still has work it cannot do now (a full transmit
                // queue): look again shortly instead of spinning.
                next = core_now() + hav_core::Duration::from_millis(1);
            }
            let at = embassy_time::Instant::from_micros(next.total_micros());
            let timer = match &mut self.timer {
                Some((t, timer)) if *t == at => timer,
                slot => &mut slot.insert((at, Timer::at(at))).1,
            };
            if Pin::new(timer).poll(cx).is_pending() {
                return Poll::Pending;
            }
        }
    }

    // Frames in, one at a time, each VRRP packet handed to the instances at
    // once (so a burst of other routers' adverts cannot overflow the raw
    // socket's queue), and what they queued out.
    fn poll_iface(&mut self, cx: &mut Context<'_>, now: hav_core::Instant) {
        let ts = smol_instant(now);
        for _ in 0..INGRESS_BURST {
            let mut dev = Adapter { inner: &mut self.device, cx: &mut *cx };
            let r = self.iface.poll_ingress_single(ts, &mut dev, &mut self.sockets);
            self.receive(now);
            let mut dev = Adapter { inner: &mut self.device, cx: &mut *cx };
            self.iface.poll_egress(ts, &mut dev, &mut self.sockets);
            if r == PollIngressSingleResult::None {
                return;
            }
        }
        // More frames wait: come back after the timers had their turn.
        cx.waker().wake_by_ref();
    }

    // Feeds every queued advert to the instances with its VRID.
    fn receive(&mut self, now: hav_core::Instant) {
        self.receive_on(now, self.raw);
        self.receive_on(now, self.raw6);
    }

    fn receive_on(&mut self, now: hav_core::Instant, handle: SocketHandle) {
        let mut buf = [0u8; MAX_PACKET];
        loop {
            let socket = self.sockets.get_mut::<raw::Socket<'_>>(handle);
            let n = match socket.recv_slice(&mut buf) {
                Ok(n) => n,
                Err(raw::RecvError::Truncated) => {
                    debug!("vrrp: oversized packet dropped");
                    continue;
                }
                Err(raw::RecvError::Exhausted) => break,
            };
            self.handle_packet(now, &buf[..n]);
        }
    }

    fn handle_packet(&mut self, now: hav_core::Instant, bytes: &[u8]) {
        // smoltcp checked the IP header on the way in and rebuilt it for the
        // raw socket, so only its fields are read here.
        let Ok((ip, payload)) = IpHeader::parse(bytes) else {
            return debug!("vrrp: malformed IP packet dropped");
        };
        let rx = Received { ifindex: PORT, src: ip.src, dst: ip.dst, ttl: ip.hop_limit };
        let mut out = Outputs::new();
        self.engine.receive(now, &rx, payload, &mut |o| keep(&mut out, o));
        self.apply(now, out);
    }

    // Carries out the engine's outputs in order. The result of installing
    // the addresses goes back to the engine at once, and what it answers
    // comes before the rest.
    fn apply(&mut self, now: hav_core::Instant, mut out: Outputs) {
        while let Some(o) = out.pop_front() {
            let (i, action) = match o {
                Output::Act { idx, action } => (idx, action),
                Output::Group { group, state } => {
                    info!("sync group {}: {}", group, state.as_str());
                    if let Some(f) = self.observer {
                        f(&Event::Group { group: group as u8, state });
                    }
                    continue;
                }
            };
            match action {
                Action::Transition { from, to, reason } => {
                    let vrid = self.engine.records()[i].instance().config().vrid;
                    info!("vrid {}: {} -> {} ({:?})", vrid, from.as_str(), to.as_str(), reason);
                    if let Some(f) = self.observer {
                        f(&Event::Transition { vrid, from, to, reason, at: now });
                    }
                }
                Action::SendAdvert { priority } => self.send_advert(i, priority),
                Action::AddVips { .. } => {
                    let held = self.add_vips(i);
                    let mut more = Outputs::new();
                    self.engine.handle(now, i, Input::Vips { held }, &mut |o| keep(&mut more, o));
                    while let Some(m) = more.pop_back() {
                        if out.push_front(m).is_err() {
                            error!("vrrp: output queue full");
                        }
                    }
                }
                Action::RemoveVips => {
                    self.remove_vips(i);
                    // Nothing of a burst in progress goes out for a released address.
                    if let Some(vr) = self.engine.meta_mut(i) {
                        vr.garp = None;
                    }
                    self.engine.vips_released(now, i, true);
                }
                Action::SendGarp { repeat } => {
                    let r = &self.engine.records()[i];
                    if r.instance().state() == State::Master && r.holds_vips() {
                        if let Some(vr) = self.engine.meta_mut(i) {
                            vr.garp = Some(Garp { rounds_left: repeat, next_vip: 0 });
                        }
                    }
                }
                Action::Discard(reason) => {
                    trace!("vrrp: advert dropped: {}", reason.as_str());
                }
            }
        }
    }

    fn send_advert(&mut self, i: usize, priority: u8) {
        let inst = self.engine.records()[i].instance();
        let repr = inst.advert_repr(priority);
        // validate() made it the node's IPv4 or link-local address.
        let src = inst.config().primary_addr;
        let handle = if src.is_ipv6() { self.raw6 } else { self.raw };
        let mode = inst.config().checksum_mode;
        for dst in inst.advert_destinations() {
            let mut buf = [0u8; MAX_PACKET];
            self.ident = self.ident.wrapping_add(1);
            let header = IpHeader {
                src,
                dst,
                protocol: VRRP_PROTO,
                hop_limit: VRRP_TTL,
                tos: TOS_NETWORK_CONTROL,
                ident: u32::from(self.ident),
                dont_frag: false,
                payload_len: repr.buffer_len(),
            };
            let len = header.buffer_len();
            let head = header.header_len();
            let built = match buf.get_mut(..len) {
                Some(b) => header.emit(b).and_then(|()| {
                    repr.emit(&mut VrrpPacket::new_unchecked(&mut b[head..]), src, dst, mode)
                }),
                None => Err(hav_core::wire::Error::TooManyAddresses),
            };
            if let Err(e) = built {
                error!("vrrp: cannot build advert: {:?}", e);
                return;
            }
            let socket = self.sockets.get_mut::<raw::Socket<'_>>(handle);
            if socket.send_slice(&buf[..len]).is_err() {
                warn!("vrrp: send queue full, advert dropped");
            }
        }
    }

    // A VIP as an interface address: IPv4 /32 (the node's own subnet makes
    // hosts on-link), IPv6 /64 (the node has no other global address).
    fn vip_cidr(vip: &IpAddr) -> IpCidr {
        match vip {
            IpAddr::V4(a) => IpCidr::new(IpAddress::Ipv4(*a), 32),
            IpAddr::V6(a) => IpCidr::new(IpAddress::Ipv6(*a), V6_PREFIX),
        }
    }

    // Installs the instance's addresses; false when the table is full.
    fn add_vips(&mut self, i: usize) -> bool {
        let vips = &self.engine.records()[i].instance().config().vips;
        let mut full = false;
        self.iface.update_ip_addrs(|addrs| {
            for cidr in vips.iter().map(Self::vip_cidr) {
                if addrs.iter().any(|c| c.address() == cidr.address()) {
                    continue;
                }
                full |= addrs.push(cidr).is_err();
            }
        });
        if full {
            error!("vrrp: interface address table full, some VIPs not added");
        }
        !full
    }

    fn remove_vips(&mut self, i: usize) {
        let vips = &self.engine.records()[i].instance().config().vips;
        let own = IpAddress::Ipv4(self.address);
        let ll = self.link_local.map(IpAddress::Ipv6);
        self.iface.update_ip_addrs(|addrs| {
            addrs.retain(|c| {
                let a = c.address();
                a == own || Some(a) == ll || !vips.iter().any(|v| Self::vip_cidr(v).address() == a)
            });
        });
    }

    // Sends the due unsolicited IGMP and MLD reports, one per group.
    fn send_igmp(&mut self, cx: &mut Context<'_>, now: hav_core::Instant) {
        let Some((at, left)) = self.igmp else { return };
        if at > now {
            return;
        }
        for group in self.groups.iter() {
            // Without a transmit slot this round's report is skipped: the
            // next one follows an interval later.
            let Some(tx) = self.device.transmit(cx) else { break };
            self.ident = self.ident.wrapping_add(1);
            let frame = igmp::report_frame(self.mac, self.address, *group, self.ident);
            tx.consume(frame.len(), |buf| buf.copy_from_slice(&frame));
        }
        if let Some(ll) = self.link_local {
            for group in self.groups6.iter() {
                let Some(tx) = self.device.transmit(cx) else { break };
                let frame = mld::report_frame(self.mac, ll, *group);
                tx.consume(frame.len(), |buf| buf.copy_from_slice(&frame));
            }
        }
        self.igmp = (left > 1).then_some((now + IGMP_INTERVAL, left - 1));
    }

    // Sends the pending gratuitous ARP frames straight on the driver, as
    // far as it has transmit slots; the driver wakes us for the rest.
    fn send_garps(&mut self, cx: &mut Context<'_>) {
        for i in 0..self.engine.len() {
            loop {
                let r = &self.engine.records()[i];
                let Some(mut g) = r.meta.garp else { break };
                let vips = &r.instance().config().vips;
                let Some(vip) = vips.get(g.next_vip).copied() else {
                    g.next_vip = 0;
                    g.rounds_left = g.rounds_left.saturating_sub(1);
                    if let Some(vr) = self.engine.meta_mut(i) {
                        vr.garp = (g.rounds_left > 0).then_some(g);
                    }
                    continue;
                };
                g.next_vip += 1;
                let Some(tx) = self.device.transmit(cx) else { return };
                match vip {
                    IpAddr::V4(vip) => {
                        let frame = gratuitous_arp_frame(self.mac, vip);
                        tx.consume(frame.len(), |buf| buf.copy_from_slice(&frame));
                    }
                    IpAddr::V6(vip) => {
                        // Unsolicited NA, override set, from a host (not a router).
                        let frame = unsolicited_na_frame(self.mac, vip, false);
                        tx.consume(frame.len(), |buf| buf.copy_from_slice(&frame));
                    }
                }
                if let Some(vr) = self.engine.meta_mut(i) {
                    vr.garp = Some(g);
                }
            }
        }
    }
}

// Keeps an output for carrying out; a full queue means MAX_OUTPUTS is too
// small for the config, which validate() rules out.
fn keep(out: &mut Outputs, o: Output) {
    if out.push_back(o).is_err() {
        error!("vrrp: output queue full, an output was lost");
    }
}
