//! hav-core: the election engine of hav.
//!
//! `#![no_std]`, no allocator, no `unsafe`. It holds:
//! - [`wire`]: VRRP v2/v3 advertisements (and the gratuitous ARP / unsolicited
//!   NA frames sent on takeover), parsed and emitted in smoltcp's
//!   `Packet`/`Repr` style;
//! - [`vrrp`]: the sans-IO VRRP instance, tracking and sync groups;
//! - [`sched`]: the Linux IPVS schedulers as pure algorithms;
//! - [`policy`]: the ABI types shared by the WASM policy host and guests;
//! - [`time`]: the host-supplied monotonic clock types.
//!
//! The crate never reads a clock, a socket or a file: hosts feed inputs with
//! the current [`time::Instant`] and carry out the actions that come back.
#![no_std]
#![forbid(unsafe_code)]

#[cfg(any(feature = "std", test))]
extern crate std;

pub(crate) mod fmt;

pub mod policy;
pub mod sched;
pub mod time;
pub mod vrrp;
pub mod wire;

pub use time::{Duration, Instant};
