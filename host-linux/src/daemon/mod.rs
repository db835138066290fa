//! The daemon: runs hav-core instances on real sockets.

pub mod engine;
