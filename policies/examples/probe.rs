//! DNS and UDP checks as a policy.
//!
//! `args`:
//! - `kind=dns name=NAME [qtype=1] [server=IP:PORT] [min_answers=1]`: up when the server answers
//!   NOERROR with at least `min_answers` records (the server defaults to the real server);
//! - `kind=udp payload=TEXT [expect=TEXT]`: sends `payload` to the real server; up when a reply
//!   comes back (containing `expect`, when given).
//!
//! Both take `timeout_ms=N` (default 1000).
#![cfg_attr(target_arch = "wasm32", no_std)]

use hav_policy::{
    arg, arg_addr, arg_parse, dns_query, udp, udp_probe, CheckRequest, CheckResponse, CheckVerdict, Error, HostError,
    Target,
};

fn down(message: &'static str) -> CheckResponse<'static> {
    CheckResponse { verdict: CheckVerdict::Down, message }
}

fn failure(e: Error) -> CheckResponse<'static> {
    match e {
        Error::Host(HostError::Denied) => down("target not allowed"),
        Error::Host(HostError::Timeout) => down("no answer in time"),
        Error::Host(HostError::Refused) => down("port unreachable"),
        _ => down("probe failed"),
    }
}

fn check(req: &CheckRequest<'_>) -> CheckResponse<'static> {
    let timeout_ms = arg_parse(req.args, "timeout_ms").unwrap_or(1000);
    let real = Target { proto: hav_policy::Proto::Udp, ..req.target };
    match arg(req.args, "kind") {
        Some("dns") => {
            let server = arg_addr(req.args, "server").map(udp).unwrap_or(real);
            let Some(name) = arg(req.args, "name") else { return down("missing 'name' argument") };
            let qtype = arg_parse(req.args, "qtype").unwrap_or(1);
            let min_answers = arg_parse(req.args, "min_answers").unwrap_or(1);
            match dns_query(server, name, qtype, timeout_ms) {
                Ok(r) if r.rcode != 0 => down("DNS error rcode"),
                Ok(r) if r.answers < min_answers => down("too few answers"),
                Ok(_) => CheckResponse { verdict: CheckVerdict::Up, message: "DNS answer" },
                Err(e) => failure(e),
            }
        }
        Some("udp") => {
            let payload = arg(req.args, "payload").unwrap_or("");
            let mut buf = [0u8; 1024];
            match udp_probe(real, payload.as_bytes(), true, timeout_ms, &mut buf) {
                Ok(r) => match arg(req.args, "expect") {
                    Some(want) if !r.reply.windows(want.len().max(1)).any(|w| w == want.as_bytes()) => {
                        down("reply does not match")
                    }
                    _ => CheckResponse { verdict: CheckVerdict::Up, message: "UDP reply" },
                },
                Err(e) => failure(e),
            }
        }
        _ => down("'kind' must be dns or udp"),
    }
}

hav_policy::check!(check);
