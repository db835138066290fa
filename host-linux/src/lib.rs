//! hav-linux: runs hav-core on Linux.

pub mod config;
pub mod daemon;
pub mod net;
