//! The smallest useful policy: answers a fixed verdict without any host call. Used to measure
//! the host's per-call overhead, and as a template.
//!
//! `args`: `verdict=up|down|weight:N` (default up) for the check entry; `delta=N` (default 0)
//! for the priority entry.
#![cfg_attr(target_arch = "wasm32", no_std)]

use hav_policy::{arg, arg_parse, CheckRequest, CheckResponse, CheckVerdict, PriorityRequest, PriorityResponse, PriorityVerdict};

fn check(req: &CheckRequest<'_>) -> CheckResponse<'static> {
    let verdict = match arg(req.args, "verdict") {
        None | Some("up") => CheckVerdict::Up,
        Some("down") => CheckVerdict::Down,
        Some(w) => match w.strip_prefix("weight:").and_then(|n| n.parse().ok()) {
            Some(n) => CheckVerdict::Weight(n),
            None => return CheckResponse { verdict: CheckVerdict::Down, message: "bad 'verdict' argument" },
        },
    };
    CheckResponse { verdict, message: "static" }
}

fn priority(req: &PriorityRequest<'_>) -> PriorityResponse<'static> {
    PriorityResponse { verdict: PriorityVerdict::Delta(arg_parse(req.args, "delta").unwrap_or(0)), message: "static" }
}

hav_policy::check!(check);
hav_policy::priority!(priority);
