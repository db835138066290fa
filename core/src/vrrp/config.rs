//! Static configuration of one VRRP instance.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::time::Duration;
use crate::wire::{ChecksumMode, VrrpAuth, VrrpVersion};

/// Virtual addresses carried in one advertisement. Hosts put further
/// addresses in `virtual_ipaddress_excluded`, which never goes on the wire.
pub const MAX_VIPS: usize = 32;
/// Unicast peers of one instance.
pub const MAX_PEERS: usize = 16;
/// Tracked objects (interfaces, scripts, files, policies) of one instance.
pub const MAX_TRACKED: usize = 16;

/// The IPv4 VRRP multicast group, 224.0.0.18.
pub const MCAST_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// The IPv6 VRRP multicast group, ff02::12.
pub const MCAST_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);

/// Gratuitous ARP / unsolicited NA schedule, with keepalived's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct GarpConfig {
    /// Delay before the second burst after becoming master (`garp_master_delay`, 5 s).
    /// Zero means no second burst.
    pub master_delay: Duration,
    /// Messages per address in each burst after becoming master (`garp_master_repeat`, 5).
    pub master_repeat: u8,
    /// Interval of refresh bursts while master (`garp_master_refresh`, 0 = none).
    pub master_refresh: Duration,
    /// Messages per address in a refresh burst (`garp_master_refresh_repeat`, 1).
    pub master_refresh_repeat: u8,
    /// Delay of the burst sent after a lower-priority advert reaches the
    /// master (`garp_lower_prio_delay`, defaults to `master_delay`).
    pub lower_prio_delay: Duration,
    /// Messages per address in that burst (`garp_lower_prio_repeat`, 0 = none).
    pub lower_prio_repeat: u8,
    /// Time between the rounds of a burst (`vrrp_garp_interval` for IPv4,
    /// `vrrp_gna_interval` for IPv6; 0 = the whole burst at once). Each round
    /// sends one message per address; the rounds are core timers of the master
    /// state, so leaving master ends the burst.
    pub interval: Duration,
}

impl Default for GarpConfig {
    fn default() -> Self {
        GarpConfig {
            master_delay: Duration::from_secs(5),
            master_repeat: 5,
            master_refresh: Duration::ZERO,
            master_refresh_repeat: 1,
            lower_prio_delay: Duration::from_secs(5),
            lower_prio_repeat: 0,
            interval: Duration::ZERO,
        }
    }
}

/// Errors in an [`InstanceConfig`], found by [`InstanceConfig::validate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ConfigError {
    /// The VRID is 0; valid ones are 1..=255.
    Vrid,
    /// The priority is 0; valid ones are 1..=255.
    Priority,
    /// The advert interval is out of range for the version: VRRPv2 whole
    /// seconds 1..=255, VRRPv3 centiseconds 1..=4095.
    AdverInt,
    /// VRRPv2 carries IPv4 only.
    V2Ipv6,
    /// A virtual address, peer or the primary address is of the other family.
    MixedFamilies,
    /// No virtual address.
    NoVips,
    /// Authentication is a VRRPv2 feature.
    V3Auth,
    /// `down_timer_adverts` is outside keepalived's 1..=100.
    DownTimerAdverts,
}

impl core::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            ConfigError::Vrid => "virtual_router_id must be 1..255",
            ConfigError::Priority => "priority must be 1..255",
            ConfigError::AdverInt => {
                "advert_int out of range (VRRPv2: 1..255 s, VRRPv3: 0.01..40.95 s)"
            }
            ConfigError::V2Ipv6 => "VRRPv2 does not carry IPv6 addresses",
            ConfigError::MixedFamilies => "addresses of one instance must be of one family",
            ConfigError::NoVips => "an instance needs at least one virtual address",
            ConfigError::V3Auth => "authentication is only defined for VRRPv2",
            ConfigError::DownTimerAdverts => "down_timer_adverts must be 1..100",
        })
    }
}

#[cfg(feature = "std")]
impl std::error::Error for ConfigError {}

/// Everything an instance needs to run, fixed while it runs. A reload
/// builds a new config; [`super::Instance::reconfigure`] keeps the state when
/// only harmless fields changed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct InstanceConfig {
    /// Virtual router identifier, 1..=255.
    pub vrid: u8,
    /// VRRP version on the wire.
    pub version: VrrpVersion,
    /// Configured priority, 1..=255; 255 is the address owner.
    pub priority: u8,
    /// Advertisement_Interval. VRRPv2: whole seconds; VRRPv3: centiseconds.
    pub adver_int: Duration,
    /// Preempt_Mode (keepalived's default true; `nopreempt` clears it).
    pub preempt: bool,
    /// keepalived's `preempt_delay`: how long a lower-priority master is
    /// tolerated before preempting it.
    pub preempt_delay: Duration,
    /// Accept_Mode: a non-owner master accepts packets addressed to the VIPs.
    pub accept: bool,
    /// VRRPv2 authentication (PASS); `VrrpAuth::None` otherwise.
    pub auth: VrrpAuth,
    /// This router's own address on the interface: the advert source and
    /// the tie-breaker between equal priorities.
    pub primary_addr: IpAddr,
    /// Virtual addresses advertised and held while master.
    pub vips: heapless::Vec<IpAddr, MAX_VIPS>,
    /// Unicast peers; empty means multicast to `mcast_group`.
    pub peers: heapless::Vec<IpAddr, MAX_PEERS>,
    /// The TTLs accepted from each peer, `(min, max)` at the peer's index (`(0, 255)` when
    /// absent: keepalived's `min_ttl` / `max_ttl`). Unicast adverts may be routed, so their
    /// TTL is checked only against these; multicast adverts must arrive with TTL 255.
    pub peer_ttl: heapless::Vec<(u8, u8), MAX_PEERS>,
    /// The multicast group adverts go to.
    pub mcast_group: IpAddr,
    /// How the VRRPv3 IPv4 checksum is computed.
    pub checksum_mode: ChecksumMode,
    /// Drop adverts whose address list differs from ours (unless the sender
    /// is the owner). keepalived's `vrrp_skip_check_adv_addr` turns it off.
    pub check_adv_addr: bool,
    /// In unicast mode, drop adverts whose source is not a configured peer.
    pub check_unicast_src: bool,
    /// Gratuitous ARP / NA schedule.
    pub garp: GarpConfig,
    /// keepalived's `lower_prio_no_advert`: a master that receives a
    /// lower-priority advert does not answer it with one of its own (as the
    /// RFCs say). Off by default: keepalived's master answers at once, so a
    /// node that wrongly took over hears the real master within one advert.
    pub lower_prio_no_advert: bool,
    /// keepalived's `higher_prio_send_advert`: a master that receives a
    /// higher-priority advert sends one of its own before it becomes backup,
    /// so the other master (with `garp_lower_prio_repeat`) re-sends its
    /// gratuitous ARPs after a split brain. Off by default.
    pub higher_prio_send_advert: bool,
    /// keepalived's `down_timer_adverts`: the advert intervals in
    /// Master_Down_Interval (`N * Master_Adver_Interval + Skew_Time`),
    /// 1..=100; the RFCs' 3 by default.
    pub down_timer_adverts: u8,
}

impl InstanceConfig {
    /// A config with keepalived's defaults: VRRPv2, priority 100, 1 s adverts,
    /// preempt on, multicast.
    pub fn new(vrid: u8, primary_addr: IpAddr) -> Self {
        InstanceConfig {
            vrid,
            version: if primary_addr.is_ipv6() { VrrpVersion::V3 } else { VrrpVersion::V2 },
            priority: 100,
            adver_int: Duration::from_secs(1),
            preempt: true,
            preempt_delay: Duration::ZERO,
            accept: false,
            auth: VrrpAuth::None,
            primary_addr,
            vips: heapless::Vec::new(),
            peers: heapless::Vec::new(),
            peer_ttl: heapless::Vec::new(),
            mcast_group: if primary_addr.is_ipv6() { MCAST_V6.into() } else { MCAST_V4.into() },
            checksum_mode: ChecksumMode::Rfc,
            check_adv_addr: true,
            check_unicast_src: true,
            garp: GarpConfig::default(),
            lower_prio_no_advert: false,
            higher_prio_send_advert: false,
            down_timer_adverts: 3,
        }
    }

    /// Checks the invariants the instance relies on.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.vrid == 0 {
            return Err(ConfigError::Vrid);
        }
        if self.priority == 0 {
            return Err(ConfigError::Priority);
        }
        let ok_int = match self.version {
            VrrpVersion::V2 => {
                let us = self.adver_int.total_micros();
                us.is_multiple_of(1_000_000) && (1..=255).contains(&(us / 1_000_000))
            }
            VrrpVersion::V3 => {
                let us = self.adver_int.total_micros();
                us.is_multiple_of(10_000) && (1..=4095).contains(&(us / 10_000))
            }
        };
        if !ok_int {
            return Err(ConfigError::AdverInt);
        }
        let v6 = self.primary_addr.is_ipv6();
        if self.version == VrrpVersion::V2 && v6 {
            return Err(ConfigError::V2Ipv6);
        }
        if self.version == VrrpVersion::V3 && self.auth != VrrpAuth::None {
            return Err(ConfigError::V3Auth);
        }
        if !(1..=100).contains(&self.down_timer_adverts) {
            return Err(ConfigError::DownTimerAdverts);
        }
        if self.vips.is_empty() {
            return Err(ConfigError::NoVips);
        }
        let same = |a: &IpAddr| a.is_ipv6() == v6;
        if !self.vips.iter().all(same) || !self.peers.iter().all(same) || !same(&self.mcast_group)
        {
            return Err(ConfigError::MixedFamilies);
        }
        Ok(())
    }

    /// True when this router owns the addresses (priority 255).
    pub fn is_owner(&self) -> bool {
        self.priority == 255
    }

    /// Whether an advert from `src` may have arrived with `ttl`: multicast adverts only with
    /// 255 (RFC 5798 section 7.1); unicast ones within the peer's `(min, max)` bounds, any TTL
    /// from a source that is not a peer (the source check decides about those), as keepalived
    /// accepts routed unicast peers.
    pub fn ttl_ok(&self, src: IpAddr, ttl: u8) -> bool {
        if !self.is_unicast() {
            return ttl == crate::wire::VRRP_TTL;
        }
        match self.peers.iter().position(|p| *p == src) {
            Some(i) => self.peer_ttl.get(i).is_none_or(|&(lo, hi)| (lo..=hi).contains(&ttl)),
            None => true,
        }
    }

    /// True when adverts go to unicast peers instead of the group.
    pub fn is_unicast(&self) -> bool {
        !self.peers.is_empty()
    }
}
