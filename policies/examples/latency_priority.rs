//! A priority policy: lower the VRRP priority when a measured latency crosses a threshold, and
//! put the instance in FAULT when the probe fails.
//!
//! `args`: `target=IP:PORT` (required; must be in the vrrp_script's `targets`),
//! `path=/` (measure an HTTP GET; without it, a TCP connect), `threshold_ms=N` (default 100),
//! `delta=-N` (default -20), `timeout_ms=N` (default 1000).
#![cfg_attr(target_arch = "wasm32", no_std)]

use hav_policy::{
    arg, arg_addr, arg_parse, http_get, log, tcp, tcp_connect, HttpGet, Level, PriorityRequest, PriorityResponse,
    PriorityVerdict,
};

fn priority(req: &PriorityRequest<'_>) -> PriorityResponse<'static> {
    let Some(addr) = arg_addr(req.args, "target") else {
        return PriorityResponse { verdict: PriorityVerdict::Fault, message: "missing 'target' argument" };
    };
    let threshold_us = arg_parse::<u32>(req.args, "threshold_ms").unwrap_or(100).saturating_mul(1000);
    let delta = arg_parse::<i16>(req.args, "delta").unwrap_or(-20);
    let timeout_ms = arg_parse(req.args, "timeout_ms").unwrap_or(1000);
    let rtt_us = match arg(req.args, "path") {
        Some(path) => {
            let mut buf = [0u8; 256];
            let get = HttpGet { target: tcp(addr), host: "", path, tls: false, timeout_ms };
            http_get(&get, &mut buf).map(|r| r.rtt_us)
        }
        None => tcp_connect(tcp(addr), timeout_ms),
    };
    match rtt_us {
        Err(e) => {
            log!(Level::Warn, "{}: probe failed: {}", req.instance, e);
            PriorityResponse { verdict: PriorityVerdict::Fault, message: "probe failed" }
        }
        Ok(rtt) if rtt > threshold_us => {
            log!(Level::Info, "{}: latency {} us over {} us", req.instance, rtt, threshold_us);
            PriorityResponse { verdict: PriorityVerdict::Delta(delta), message: "latency over threshold" }
        }
        Ok(_) => PriorityResponse { verdict: PriorityVerdict::Delta(0), message: "latency fine" },
    }
}

hav_policy::priority!(priority);
