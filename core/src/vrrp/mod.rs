//! The sans-IO VRRP engine: instances, tracking, sync groups, and the
//! multi-instance [`Engine`] every host drives.
//!
//! ```
//! use core::net::{IpAddr, Ipv4Addr};
//! use hav_core::vrrp::{Action, Input, Instance, InstanceConfig, State};
//! use hav_core::{Duration, Instant};
//!
//! let mut cfg = InstanceConfig::new(51, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)));
//! cfg.priority = 100;
//! cfg.vips.push(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 100))).unwrap();
//! let mut vr = Instance::new(cfg);
//!
//! let t0 = Instant::ZERO;
//! vr.handle(t0, Input::Startup);
//! assert_eq!(vr.state(), State::Backup);
//!
//! // No master advertises: after Master_Down_Interval (3 s + skew) we take over.
//! let at = vr.poll_at().unwrap();
//! assert_eq!(at - t0, Duration::from_micros(3_000_000 + 156 * 1_000_000 / 256));
//! let actions = vr.handle(at, Input::Timer);
//! assert_eq!(vr.state(), State::Master);
//! assert!(actions.contains(&Action::AddVips { accept: false }));
//! ```

mod config;
mod engine;
mod group;
mod instance;
mod track;

pub use config::{
    ConfigError, GarpConfig, InstanceConfig, MAX_PEERS, MAX_TRACKED, MAX_VIPS, MCAST_V4, MCAST_V6,
};
#[cfg(feature = "alloc")]
pub use engine::Growable;
pub use engine::{
    AddError, Engine, Fixed, Group, Output, Received, Record, RxLower, Storage, Stray, Table, VipHold,
    VrKey,
};
pub use group::{SyncGroup, MAX_GROUP};
pub use instance::{
    Action, Actions, AdminMode, Advert, Counters, DropReason, Input, Instance, Reason, State,
};
pub use track::{TrackId, TrackSet, TrackStatus, Tracked, Verdict};
