//! The daemon: runs hav-core instances on real sockets.

pub mod control;
pub mod director;
pub mod dump;
pub(crate) mod fifo;
pub mod listen;
pub mod metrics;
pub mod notify;
pub mod pidfile;
pub mod sdnotify;
pub mod plan;
pub mod proc;
pub mod rtprio;
pub mod run;
pub mod snapshot;
pub mod track;
pub mod track_process;
pub mod vroutes;
