//! A TCP_CHECK as a policy: the real server is up when a TCP connection to it opens.
//!
//! `args`: `timeout_ms=N` (default 1000).
#![cfg_attr(target_arch = "wasm32", no_std)]

use hav_policy::{arg_parse, log, tcp_connect, CheckRequest, CheckResponse, CheckVerdict, Error, HostError, Level};

fn check(req: &CheckRequest<'_>) -> CheckResponse<'static> {
    let timeout_ms = arg_parse(req.args, "timeout_ms").unwrap_or(1000);
    let (verdict, message) = match tcp_connect(req.target, timeout_ms) {
        Ok(rtt_us) => {
            log!(Level::Debug, "connected in {} us", rtt_us);
            (CheckVerdict::Up, "connected")
        }
        Err(Error::Host(HostError::Refused)) => (CheckVerdict::Down, "connection refused"),
        Err(Error::Host(HostError::Timeout)) => (CheckVerdict::Down, "connect timed out"),
        Err(Error::Host(HostError::Denied)) => (CheckVerdict::Down, "target not allowed"),
        Err(_) => (CheckVerdict::Down, "connect failed"),
    };
    CheckResponse { verdict, message }
}

hav_policy::check!(check);
