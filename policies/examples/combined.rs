//! A policy combining two probes: the service port must accept a TCP connection, and an HTTP
//! health endpoint (often another port, listed in the WASM_CHECK's `targets`) must answer 2xx.
//!
//! `args`: `health=IP:PORT` (default: the real server itself), `path=/health` (default `/`),
//! `timeout_ms=N` (default 1000).
#![cfg_attr(target_arch = "wasm32", no_std)]

use hav_policy::{arg, arg_addr, arg_parse, http_get, tcp, tcp_connect, CheckRequest, CheckResponse, CheckVerdict, HttpGet};

fn check(req: &CheckRequest<'_>) -> CheckResponse<'static> {
    let down = |message| CheckResponse { verdict: CheckVerdict::Down, message };
    let timeout_ms = arg_parse(req.args, "timeout_ms").unwrap_or(1000);
    if tcp_connect(req.target, timeout_ms).is_err() {
        return down("service port does not accept connections");
    }
    let health = arg_addr(req.args, "health").map(tcp).unwrap_or(req.target);
    let get = HttpGet { target: health, host: "", path: arg(req.args, "path").unwrap_or("/"), tls: false, timeout_ms };
    let mut buf = [0u8; 512];
    match http_get(&get, &mut buf) {
        Ok(r) if (200..300).contains(&r.status) => {
            CheckResponse { verdict: CheckVerdict::Up, message: "service port and health endpoint fine" }
        }
        Ok(_) => down("health endpoint answers with an error status"),
        Err(_) => down("health endpoint unreachable"),
    }
}

hav_policy::check!(check);
