//! Linux networking for the daemon: raw VRRP sockets (IP protocol 112,
//! multicast and unicast), VIPs and VMAC macvlans over rtnetlink, gratuitous
//! ARP / unsolicited NA frames over packet sockets, and per-interface
//! sysctls.
//!
//! Nothing here builds or parses VRRP, ARP or ND messages: `hav_core::wire`
//! does. This module moves bytes and addresses, and turns every kernel error
//! into a [`NetError`] that names the interface, address or path involved.
//!
//! Everything binds to the network namespace of the thread that creates it.

pub mod error;
pub mod netlink;
pub mod nft;
pub mod packet;
pub mod route;
pub(crate) mod sys;
pub mod sysctl;
pub mod timer;
pub mod vroute;
pub mod vrrp_socket;

pub use error::NetError;
pub use netlink::{AddrEvent, AddrSpec, IfAddr, LinkEvent, LinkInfo, LinkWatcher, Netlink, WatchEvent};
pub use packet::PacketSocket;
pub use sysctl::SysctlGuard;
pub use timer::PreciseTimer;
pub use vrrp_socket::{Family, Outbox, Received, VrrpSocket};
