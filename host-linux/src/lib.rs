//! hav-linux: runs hav-core on Linux.

pub mod check;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod demo;
pub mod health;
pub(crate) mod http;
pub mod ipvs;
pub mod lvs;
pub mod net;
pub mod policy;
pub mod ratelimit;
pub mod resource;
pub mod snmp;
