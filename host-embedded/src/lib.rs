//! hav-embedded: hav's VRRP election on a microcontroller, on smoltcp under
//! embassy.
//!
//! The crate is `no_std` and needs no allocator. It runs hav-core's
//! [`hav_core::vrrp::Engine`] (instances, sync groups, gratuitous ARP pacing)
//! over any [`embassy_net_driver::Driver`]
//! (an MCU's Ethernet MAC, or a Linux TAP device for the lab) with:
//!
//! - smoltcp's `Interface` driven directly (embassy-net's `Stack` holds a
//!   single IPv4 address, and a master needs its VIPs beside its own), so
//!   that the node answers ARP and ping for a VIP while it is master;
//! - raw IP sockets for protocol 112 (IPv4 and IPv6), an IGMP join of
//!   224.0.0.18 (its report repeated after startup and after each link-up)
//!   and an MLDv2 join of ff02::12 (likewise repeated);
//! - gratuitous ARP and unsolicited NA frames, written straight to the
//!   driver, on takeover;
//! - timers from embassy-time;
//! - logging through `defmt` or `log` (features of the same names);
//! - the node config as postcard bytes ([`NodeConfig::from_stored`]), as
//!   firmware reads it from flash.
//!
//! Every election decision is hav-core's: the [`Router`] turns packets,
//! deadlines and link changes into inputs, and actions into I/O.
//!
//! The `std` feature builds `hav-embedded-tap`, the same router on a Linux
//! TAP interface (embassy's std executor and time driver,
//! embassy-net-tuntap), which joins the namespace lab of `hav-tests`.
#![cfg_attr(not(any(test, feature = "std")), no_std)]

#[macro_use]
mod fmt;

mod config;
mod device;
mod igmp;
mod mld;
mod router;

pub use config::{ConfigError, NodeConfig, MAX_GROUPS, MAX_IFACE_ADDRS, MAX_INSTANCES, MAX_STORED_LEN};
pub use router::{Event, Resources, Router, RouterError, RAW_BUFFER, RAW_PACKETS, SHUTDOWN_FLUSH};
