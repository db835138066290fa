//! The contract between the health checkers (`check/`) and the IPVS director (`lvs/`).
//!
//! A checker watches one target and reports a [`Health`] for every real server that shares it.
//! The director combines the reports of a real server's checkers (all must be up) and reconciles
//! the kernel table.

use std::net::SocketAddr;

use crate::config::lvs::{Protocol, VirtualServer, VirtualServerKey};

/// One real server of one virtual server, as written in the config.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RealServerRef {
    /// The virtual server's key (address, fwmark or group).
    pub vs: VirtualServerKey,
    /// The virtual server's protocol.
    pub protocol: Protocol,
    /// The real server's address and port.
    pub rs: SocketAddr,
}

impl RealServerRef {
    /// The reference to real server `rs` of `vs`.
    pub fn new(vs: &VirtualServer, rs: SocketAddr) -> Self {
        RealServerRef { vs: vs.key.clone(), protocol: vs.protocol, rs }
    }
}

/// A checker's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// The check passes.
    Up,
    /// The check fails (after its retries).
    Down,
    /// The check passes and sets the weight (MISC_CHECK with `misc_dynamic`, exit code - 2).
    UpWeight(u32),
}

/// A verdict for one checker of one real server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthEvent {
    /// The real server.
    pub rs: RealServerRef,
    /// Which of the real server's checkers (its index in `RealServer::checkers`).
    pub checker: usize,
    /// The verdict.
    pub health: Health,
}

/// Runs WASM_CHECK policies for the checkers. The policy host (`policy/`) implements it; the
/// checkers (`check/`) call it, so neither module depends on the other.
pub trait PolicyRunner: Send + Sync + 'static {
    /// Runs `check`'s policy against real server `target` within `timeout` (wall clock, host
    /// calls included). `Err` carries the reason a policy failed (trap, budget, bad output...),
    /// which counts as a failed check.
    fn check(
        &self,
        check: &crate::config::check::WasmCheck,
        target: SocketAddr,
        timeout: std::time::Duration,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Health, String>> + Send>>;
}
