//! The node's configuration: its address and its VRRP instances, stored as
//! postcard bytes (in flash on a board, in a file for the std runner).
//!
//! The stored form is a little-endian `u16` length followed by that many
//! bytes of postcard-encoded [`NodeConfig`]. The length prefix lets firmware
//! tell a written config from erased flash (`0xffff`) without parsing.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hav_core::vrrp::{self, InstanceConfig};
use serde::{Deserialize, Serialize};

/// Instances one node runs.
pub const MAX_INSTANCES: usize = 4;
/// Sync groups of one node.
pub const MAX_GROUPS: usize = 2;
/// Addresses smoltcp's interface holds: the node's own plus every VIP of
/// the instances that are master at once (smoltcp's `iface-max-addr-count-8`).
pub const MAX_IFACE_ADDRS: usize = 8;
/// Longest stored config (prefix included) that [`NodeConfig::from_stored`]
/// reads and [`NodeConfig::to_stored`] writes.
pub const MAX_STORED_LEN: usize = 2048;

/// Everything a node needs: its interface and its instances.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeConfig {
    /// The Ethernet address; `None` keeps the driver's.
    pub mac: Option<[u8; 6]>,
    /// The node's own IPv4 address (every instance's `primary_addr`).
    pub address: Ipv4Addr,
    /// Prefix length of the node's subnet.
    pub prefix_len: u8,
    /// The VRRP instances: IPv4 (VRRPv2 or VRRPv3), whose `primary_addr` is
    /// [`NodeConfig::address`]; IPv6 (VRRPv3), whose `primary_addr` is the
    /// node's IPv6 link-local address (the same for every IPv6 instance; the
    /// router puts it on the interface).
    pub instances: heapless::Vec<InstanceConfig, MAX_INSTANCES>,
    /// Sync groups, each the VRIDs of its members: they change state together
    /// (keepalived's `vrrp_sync_group`).
    pub groups: heapless::Vec<heapless::Vec<u8, MAX_INSTANCES>, MAX_GROUPS>,
}

/// Why a stored config was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ConfigError {
    /// No length prefix, or erased flash (`0xffff`).
    Missing,
    /// The length prefix points past the stored bytes.
    Truncated,
    /// The bytes are not a postcard `NodeConfig`.
    Decode,
    /// The config does not fit the buffer it is encoded into.
    Encode,
    /// Instance `index` is invalid (hav-core's check).
    Instance {
        /// Position in [`NodeConfig::instances`].
        index: u8,
        /// hav-core's reason.
        error: vrrp::ConfigError,
    },
    /// IPv6 instance `index` has a `primary_addr` that is not link-local
    /// (fe80::/10), or another one than an earlier IPv6 instance.
    Ipv6 {
        /// Position in [`NodeConfig::instances`].
        index: u8,
    },
    /// Instance `index` has a `primary_addr` other than the node's address.
    PrimaryAddr {
        /// Position in [`NodeConfig::instances`].
        index: u8,
    },
    /// Two instances share a VRID.
    DuplicateVrid(u8),
    /// The node's address plus all VIPs exceed [`MAX_IFACE_ADDRS`].
    TooManyVips,
    /// The prefix length is over 32, or the MAC is multicast.
    Interface,
    /// No instance at all.
    NoInstances,
    /// A sync group names a VRID no instance has, or one already in a group.
    Group(u8),
}

impl core::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ConfigError::Missing => f.write_str("no config stored (erased or empty)"),
            ConfigError::Truncated => f.write_str("stored config is shorter than its length prefix"),
            ConfigError::Decode => f.write_str("stored config is not a postcard NodeConfig"),
            ConfigError::Encode => f.write_str("config does not fit the output buffer"),
            ConfigError::Instance { index, error } => write!(f, "instance {index}: {error}"),
            ConfigError::Ipv6 { index } => write!(
                f,
                "instance {index}: an IPv6 instance's primary_addr must be the node's one link-local address"
            ),
            ConfigError::PrimaryAddr { index } => {
                write!(f, "instance {index}: primary_addr differs from the node address")
            }
            ConfigError::DuplicateVrid(v) => write!(f, "two instances use virtual_router_id {v}"),
            ConfigError::TooManyVips => write!(
                f,
                "the node's addresses and all VIPs exceed {MAX_IFACE_ADDRS} interface addresses"
            ),
            ConfigError::Interface => f.write_str("bad prefix length or multicast MAC address"),
            ConfigError::NoInstances => f.write_str("no VRRP instance configured"),
            ConfigError::Group(v) => write!(f, "sync group member {v}: no such instance, or already in a group"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for ConfigError {}

impl NodeConfig {
    /// A node at `address/prefix_len` with no instance yet.
    pub fn new(address: Ipv4Addr, prefix_len: u8) -> Self {
        NodeConfig { mac: None, address, prefix_len, instances: heapless::Vec::new(), groups: heapless::Vec::new() }
    }

    /// Checks what the router relies on: valid instances on the node's
    /// addresses (its IPv4 address; one IPv6 link-local address), distinct
    /// VRIDs, and room for every VIP on the interface.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.prefix_len > 32 || self.mac.is_some_and(|m| m[0] & 1 == 1) {
            return Err(ConfigError::Interface);
        }
        if self.instances.is_empty() {
            return Err(ConfigError::NoInstances);
        }
        let mut vips = 0usize;
        for (i, c) in self.instances.iter().enumerate() {
            let index = i as u8;
            c.validate().map_err(|error| ConfigError::Instance { index, error })?;
            match c.primary_addr {
                IpAddr::V6(a) => {
                    let link_local = a.segments()[0] & 0xffc0 == 0xfe80;
                    if !link_local || self.link_local().is_some_and(|l| l != a) {
                        return Err(ConfigError::Ipv6 { index });
                    }
                }
                IpAddr::V4(a) if a != self.address => {
                    return Err(ConfigError::PrimaryAddr { index })
                }
                IpAddr::V4(_) => {}
            }
            if self.instances[..i].iter().any(|o| o.vrid == c.vrid) {
                return Err(ConfigError::DuplicateVrid(c.vrid));
            }
            // The owner's VIP is the node's own address: no extra slot.
            vips += c.vips.iter().filter(|v| **v != IpAddr::V4(self.address)).count();
        }
        let own = 1 + usize::from(self.link_local().is_some());
        if own + vips > MAX_IFACE_ADDRS {
            return Err(ConfigError::TooManyVips);
        }
        for (gi, g) in self.groups.iter().enumerate() {
            for (k, vrid) in g.iter().enumerate() {
                let known = self.instances.iter().any(|c| c.vrid == *vrid);
                let twice = g[..k].contains(vrid) || self.groups[..gi].iter().any(|o| o.contains(vrid));
                if !known || twice {
                    return Err(ConfigError::Group(*vrid));
                }
            }
        }
        Ok(())
    }

    /// The node's IPv6 link-local address: the `primary_addr` of its first
    /// IPv6 instance, if it has one.
    pub fn link_local(&self) -> Option<Ipv6Addr> {
        self.instances.iter().find_map(|c| match c.primary_addr {
            IpAddr::V6(a) => Some(a),
            IpAddr::V4(_) => None,
        })
    }

    /// Decodes and validates a stored config: `u16` LE length, then postcard.
    pub fn from_stored(bytes: &[u8]) -> Result<NodeConfig, ConfigError> {
        let (len, rest) = match bytes {
            [a, b, rest @ ..] => (usize::from(u16::from_le_bytes([*a, *b])), rest),
            _ => return Err(ConfigError::Missing),
        };
        if len == 0xffff || len == 0 {
            return Err(ConfigError::Missing);
        }
        let body = rest.get(..len).ok_or(ConfigError::Truncated)?;
        let cfg: NodeConfig = postcard::from_bytes(body).map_err(|_| ConfigError::Decode)?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Encodes the config in its stored form into `buf` and returns the
    /// bytes written.
    pub fn to_stored<'b>(&self, buf: &'b mut [u8]) -> Result<&'b [u8], ConfigError> {
        let (head, body) = buf.split_at_mut_checked(2).ok_or(ConfigError::Encode)?;
        let n = postcard::to_slice(self, body).map_err(|_| ConfigError::Encode)?.len();
        let len = u16::try_from(n).map_err(|_| ConfigError::Encode)?;
        head.copy_from_slice(&len.to_le_bytes());
        Ok(&buf[..2 + n])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hav_core::wire::VrrpVersion;
    use hav_core::Duration;

    fn node() -> NodeConfig {
        let addr = Ipv4Addr::new(10, 0, 0, 2);
        let mut n = NodeConfig::new(addr, 24);
        let mut c = InstanceConfig::new(51, IpAddr::V4(addr));
        c.version = VrrpVersion::V3;
        c.adver_int = Duration::from_centis(50);
        c.vips.push(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 50))).unwrap();
        n.instances.push(c).unwrap();
        n
    }

    #[test]
    fn test_stored_roundtrip() {
        let n = node();
        let mut buf = [0u8; MAX_STORED_LEN];
        let bytes = n.to_stored(&mut buf).unwrap();
        assert_eq!(NodeConfig::from_stored(bytes).unwrap(), n);
        // Trailing flash after the config is ignored.
        let mut flash = [0xffu8; 512];
        flash[..bytes.len()].copy_from_slice(bytes);
        assert_eq!(NodeConfig::from_stored(&flash).unwrap(), n);
    }

    #[test]
    fn test_stored_errors() {
        assert_eq!(NodeConfig::from_stored(&[0xff; 16]), Err(ConfigError::Missing));
        assert_eq!(NodeConfig::from_stored(&[1]), Err(ConfigError::Missing));
        assert_eq!(NodeConfig::from_stored(&[9, 0, 1, 2]), Err(ConfigError::Truncated));
        assert_eq!(NodeConfig::from_stored(&[2, 0, 0xff, 0xff]), Err(ConfigError::Decode));
        let mut n = node();
        n.instances[0].vrid = 0;
        let mut buf = [0u8; MAX_STORED_LEN];
        let bytes = n.to_stored(&mut buf).unwrap();
        assert!(matches!(
            NodeConfig::from_stored(bytes),
            Err(ConfigError::Instance { index: 0, .. })
        ));
        assert_eq!(node().to_stored(&mut [0u8; 4]), Err(ConfigError::Encode));
    }

    #[test]
    fn test_validate() {
        let mut n = node();
        n.instances[0].primary_addr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 3));
        assert_eq!(n.validate(), Err(ConfigError::PrimaryAddr { index: 0 }));
        let mut n = node();
        let dup = n.instances[0].clone();
        n.instances.push(dup).unwrap();
        assert_eq!(n.validate(), Err(ConfigError::DuplicateVrid(51)));
        let mut n = node();
        for i in 0..7 {
            n.instances[0].vips.push(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 60 + i))).unwrap();
        }
        assert_eq!(n.validate(), Err(ConfigError::TooManyVips));
        let mut n = node();
        n.mac = Some([1, 0, 0, 0, 0, 1]);
        assert_eq!(n.validate(), Err(ConfigError::Interface));
        assert_eq!(NodeConfig::new(Ipv4Addr::LOCALHOST, 8).validate(), Err(ConfigError::NoInstances));
        assert_eq!(node().validate(), Ok(()));
        let mut n = node();
        n.groups.push(heapless::Vec::from_slice(&[51, 52]).unwrap()).unwrap();
        assert_eq!(n.validate(), Err(ConfigError::Group(52)));
        n.groups[0].pop();
        assert_eq!(n.validate(), Ok(()));
    }

    #[test]
    fn test_validate_ipv6() {
        let ll: Ipv6Addr = "fe80::2".parse().unwrap();
        let v6 = |vrid, primary: Ipv6Addr| {
            let mut c = InstanceConfig::new(vrid, IpAddr::V6(primary));
            c.vips.push(IpAddr::V6("fd00::50".parse().unwrap())).unwrap();
            c
        };
        let mut n = node();
        n.instances.push(v6(52, ll)).unwrap();
        assert_eq!(n.validate(), Ok(()));
        assert_eq!(n.link_local(), Some(ll));
        let mut buf = [0u8; MAX_STORED_LEN];
        let bytes = n.to_stored(&mut buf).unwrap();
        assert_eq!(NodeConfig::from_stored(bytes).unwrap(), n);
        // A second IPv6 instance on another link-local address.
        let mut m = n.clone();
        m.instances.push(v6(53, "fe80::3".parse().unwrap())).unwrap();
        assert_eq!(m.validate(), Err(ConfigError::Ipv6 { index: 2 }));
        // Not link-local.
        let mut m = node();
        m.instances.push(v6(52, "fd00::2".parse().unwrap())).unwrap();
        assert_eq!(m.validate(), Err(ConfigError::Ipv6 { index: 1 }));
        // The link-local address takes an interface slot: 10.0.0.2,
        // fe80::2, 10.0.0.50, fd00::50 and 4 more VIPs fill the 8.
        for i in 0..4 {
            n.instances[0].vips.push(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 60 + i))).unwrap();
        }
        assert_eq!(n.validate(), Ok(()));
        n.instances[0].vips.push(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 70))).unwrap();
        assert_eq!(n.validate(), Err(ConfigError::TooManyVips));
    }
}
