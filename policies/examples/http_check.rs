//! An HTTP check: GET a path on the real server, match the status and look for a string in the
//! body.
//!
//! `args`: `path=/health` (default `/`), `status=200` or `status=200-299` (default 200-299),
//! `body=TEXT` (optional: the body must contain it), `host=NAME` (the `Host` header),
//! `tls=1` (HTTPS; any certificate is accepted, SNI is `host` or the address),
//! `timeout_ms=N` (default 2000).
#![cfg_attr(target_arch = "wasm32", no_std)]

use hav_policy::{arg, arg_parse, http_get, log, CheckRequest, CheckResponse, CheckVerdict, HttpGet, Level};

/// The accepted status range from `status=N` or `status=N-M`.
fn status_range(args: &str) -> Option<(u16, u16)> {
    match arg(args, "status") {
        None => Some((200, 299)),
        Some(s) => match s.split_once('-') {
            Some((lo, hi)) => Some((lo.parse().ok()?, hi.parse().ok()?)),
            None => s.parse().ok().map(|v| (v, v)),
        },
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

fn check(req: &CheckRequest<'_>) -> CheckResponse<'static> {
    let down = |message| CheckResponse { verdict: CheckVerdict::Down, message };
    let Some((lo, hi)) = status_range(req.args) else { return down("bad 'status' argument") };
    let get = HttpGet {
        target: req.target,
        host: arg(req.args, "host").unwrap_or(""),
        path: arg(req.args, "path").unwrap_or("/"),
        tls: arg(req.args, "tls") == Some("1"),
        timeout_ms: arg_parse(req.args, "timeout_ms").unwrap_or(2000),
    };
    let mut buf = [0u8; 4096];
    let reply = match http_get(&get, &mut buf) {
        Ok(r) => r,
        Err(e) => {
            log!(Level::Info, "GET {} failed: {}", get.path, e);
            return down("request failed");
        }
    };
    if reply.status < lo || reply.status > hi {
        log!(Level::Info, "GET {}: status {} not in {}-{}", get.path, reply.status, lo, hi);
        return down("unexpected status");
    }
    if let Some(want) = arg(req.args, "body") {
        if !contains(reply.body, want.as_bytes()) {
            return down("body does not match");
        }
    }
    CheckResponse { verdict: CheckVerdict::Up, message: "status and body match" }
}

hav_policy::check!(check);
