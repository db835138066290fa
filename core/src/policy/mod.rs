//! The policy ABI: the types a WASM policy and its host exchange.
//!
//! Messages are postcard-encoded and passed through the guest's linear
//! memory. Both sides use these types: the host (hav-linux, wasmtime) and the
//! guest SDK (hav-policy, no_std, wasm32). Strings and byte strings borrow
//! from the buffer they were decoded from, so neither side needs to copy.
//!
//! # Module interface (ABI version [`ABI_VERSION`])
//! A policy is a core WASM module that exports:
//! - [`EXPORT_ABI_VERSION`]`() -> i32`: the ABI version the module was built for;
//! - [`EXPORT_ALLOC`]`(len: i32) -> i32`: room for an input of `len` bytes;
//! - [`EXPORT_CHECK`]`(ptr: i32, len: i32) -> i64` and/or
//!   [`EXPORT_PRIORITY`]`(ptr: i32, len: i32) -> i64`: read a
//!   [`CheckRequest`] / [`PriorityRequest`] and return a [`CheckResponse`] /
//!   [`PriorityResponse`] packed as `(ptr << 32) | len`;
//! - `memory`.
//!
//! and may import from module [`IMPORT_MODULE`] only:
//! - [`IMPORT_HOST_CALL`]`(req_ptr: i32, req_len: i32, resp_ptr: i32, resp_cap: i32) -> i32`:
//!   carries out a [`HostRequest`]; writes a [`HostResponse`] and returns its
//!   length, or a negative [`HostError`] code (`-(code)`), or, when the
//!   response does not fit, `-(0x1_0000 + needed)`, so the guest can retry
//!   with a bigger buffer;
//! - [`IMPORT_NOW_MS`]`() -> i64`: milliseconds of monotonic time;
//! - [`IMPORT_LOG`]`(level: i32, ptr: i32, len: i32)`: a UTF-8 log line.

use core::net::IpAddr;

use crate::vrrp::State;

/// The ABI version described here. The host refuses other versions.
pub const ABI_VERSION: u32 = 1;

/// Export: the ABI version.
pub const EXPORT_ABI_VERSION: &str = "hav_abi_version";
/// Export: input buffer allocation.
pub const EXPORT_ALLOC: &str = "hav_alloc";
/// Export: the check entry.
pub const EXPORT_CHECK: &str = "hav_check";
/// Export: the priority entry.
pub const EXPORT_PRIORITY: &str = "hav_priority";
/// The only import module a policy may use.
pub const IMPORT_MODULE: &str = "hav";
/// Import: a capability call.
pub const IMPORT_HOST_CALL: &str = "host_call";
/// Import: monotonic milliseconds.
pub const IMPORT_NOW_MS: &str = "now_ms";
/// Import: logging.
pub const IMPORT_LOG: &str = "log";
/// Offset added to the needed size in a host call's "buffer too small" answer.
pub const HOST_CALL_TOO_SMALL: i32 = 0x1_0000;

/// Transport protocol of a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Proto {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// SCTP.
    Sctp,
}

/// A network endpoint: a real server, or a target the operator allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Target {
    /// Address.
    pub addr: IpAddr,
    /// Port (0 for ICMP-like probes).
    pub port: u16,
    /// Protocol.
    pub proto: Proto,
}

/// A check's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum CheckVerdict {
    /// The target works.
    Up,
    /// The target does not work.
    Down,
    /// The target works, with this weight (MISC_CHECK's dynamic weight).
    Weight(u32),
}

/// What the host remembers of earlier checks of this target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct History {
    /// Consecutive successes up to now.
    pub successes: u32,
    /// Consecutive failures up to now.
    pub failures: u32,
    /// The verdict in force, if any.
    pub last: Option<CheckVerdict>,
}

/// Input of the check entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CheckRequest<'a> {
    /// The real server being checked.
    pub target: Target,
    /// The operator's name for this check.
    pub name: &'a str,
    /// Free-form arguments from the config (`args` in a WASM_CHECK block).
    pub args: &'a str,
    /// Earlier results.
    pub history: History,
    /// Monotonic milliseconds when the check started.
    pub now_ms: u64,
}

/// Output of the check entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CheckResponse<'a> {
    /// The verdict.
    pub verdict: CheckVerdict,
    /// Why, for the log.
    pub message: &'a str,
}

/// Input of the priority entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PriorityRequest<'a> {
    /// The VRRP instance's name.
    pub instance: &'a str,
    /// Its state.
    pub state: State,
    /// Its configured priority.
    pub priority: u8,
    /// Its effective priority before this policy's contribution.
    pub effective: u8,
    /// Free-form arguments from the config.
    pub args: &'a str,
    /// Monotonic milliseconds.
    pub now_ms: u64,
}

/// A priority policy's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum PriorityVerdict {
    /// Add this to the priority (it is clamped to 1..=254 afterwards).
    Delta(i16),
    /// Put the instance in FAULT.
    Fault,
}

/// Output of the priority entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PriorityResponse<'a> {
    /// The verdict.
    pub verdict: PriorityVerdict,
    /// Why, for the log.
    pub message: &'a str,
}

/// A capability call from a policy. The host refuses any target the
/// operator did not allow for this policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum HostRequest<'a> {
    /// Open a TCP connection and close it.
    TcpConnect {
        /// Where.
        target: Target,
        /// Give up after this long.
        timeout_ms: u32,
    },
    /// An HTTP/1.1 GET (HTTPS when `tls`).
    HttpGet {
        /// Where.
        target: Target,
        /// `Host` header and TLS SNI; empty for the address.
        host: &'a str,
        /// The request path.
        path: &'a str,
        /// Use TLS.
        tls: bool,
        /// Give up after this long.
        timeout_ms: u32,
        /// Read at most this much of the body.
        max_body: u32,
    },
    /// A DNS query over UDP.
    DnsQuery {
        /// The server.
        server: Target,
        /// The name to query.
        name: &'a str,
        /// The query type (1 = A, 28 = AAAA, ...).
        qtype: u16,
        /// Give up after this long.
        timeout_ms: u32,
    },
    /// Send a UDP datagram and optionally wait for a reply.
    UdpProbe {
        /// Where.
        target: Target,
        /// What to send.
        payload: &'a [u8],
        /// Wait for a reply.
        expect_reply: bool,
        /// Give up after this long.
        timeout_ms: u32,
    },
}

/// The host's answer to a [`HostRequest`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum HostResponse<'a> {
    /// The TCP connection opened.
    Connected {
        /// Time to connect, in microseconds.
        rtt_us: u32,
    },
    /// The HTTP response.
    Http {
        /// Status code.
        status: u16,
        /// The body, cut at `max_body`.
        body: &'a [u8],
        /// Time to the complete response, in microseconds.
        rtt_us: u32,
    },
    /// The DNS answer.
    Dns {
        /// The response code.
        rcode: u8,
        /// Number of answer records.
        answers: u16,
        /// Round trip, in microseconds.
        rtt_us: u32,
    },
    /// The UDP probe's outcome.
    Udp {
        /// The reply, empty when none was expected.
        reply: &'a [u8],
        /// Round trip, in microseconds (0 when no reply was expected).
        rtt_us: u32,
    },
}

/// Why a host call failed. Returned to the guest as a negative code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[repr(i32)]
pub enum HostError {
    /// The request did not decode.
    BadRequest = 1,
    /// The target is not allowed for this policy.
    Denied = 2,
    /// No answer in time.
    Timeout = 3,
    /// Connection refused.
    Refused = 4,
    /// Network unreachable or other I/O failure.
    Io = 5,
    /// The peer answered with something that is not the protocol.
    Protocol = 6,
    /// The call budget of this policy run is used up.
    Budget = 7,
}

impl HostError {
    /// The error for a negative code from [`IMPORT_HOST_CALL`].
    pub fn from_code(code: i32) -> Option<HostError> {
        Some(match code {
            1 => HostError::BadRequest,
            2 => HostError::Denied,
            3 => HostError::Timeout,
            4 => HostError::Refused,
            5 => HostError::Io,
            6 => HostError::Protocol,
            7 => HostError::Budget,
            _ => return None,
        })
    }
}

/// Packs a guest buffer into an entry's `i64` return value.
pub const fn pack(ptr: u32, len: u32) -> i64 {
    (((ptr as u64) << 32) | len as u64) as i64
}

/// Unpacks an entry's `i64` return value into `(ptr, len)`.
pub const fn unpack(v: i64) -> (u32, u32) {
    let v = v as u64;
    ((v >> 32) as u32, v as u32)
}

#[cfg(test)]
mod test {
    use super::*;
    use core::net::Ipv4Addr;
    use std::vec::Vec;

    fn roundtrip<T>(v: &T)
    where
        T: serde::Serialize + for<'de> serde::Deserialize<'de> + PartialEq + core::fmt::Debug,
    {
        let bytes: Vec<u8> = postcard::to_allocvec(v).unwrap();
        let back: T = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(&back, v);
    }

    const T: Target =
        Target { addr: IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)), port: 8080, proto: Proto::Tcp };

    #[test]
    fn test_postcard_roundtrip() {
        let req = CheckRequest {
            target: T,
            name: "web",
            args: "path=/health",
            history: History { successes: 3, failures: 0, last: Some(CheckVerdict::Up) },
            now_ms: 123_456,
        };
        let bytes = postcard::to_allocvec(&req).unwrap();
        let back: CheckRequest<'_> = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(back, req);
        // Borrowed strings point into the buffer: no copy.
        let start = bytes.as_ptr() as usize;
        assert!((start..start + bytes.len()).contains(&(back.name.as_ptr() as usize)));

        let resp = PriorityResponse { verdict: PriorityVerdict::Delta(-20), message: "slow" };
        let bytes = postcard::to_allocvec(&resp).unwrap();
        assert_eq!(postcard::from_bytes::<PriorityResponse<'_>>(&bytes).unwrap(), resp);
        let req = PriorityRequest {
            instance: "VI_1",
            state: State::Master,
            priority: 100,
            effective: 90,
            args: "",
            now_ms: 1,
        };
        let bytes = postcard::to_allocvec(&req).unwrap();
        assert_eq!(postcard::from_bytes::<PriorityRequest<'_>>(&bytes).unwrap(), req);
        let call = HostRequest::UdpProbe { target: T, payload: b"ping", expect_reply: true, timeout_ms: 500 };
        let bytes = postcard::to_allocvec(&call).unwrap();
        assert_eq!(postcard::from_bytes::<HostRequest<'_>>(&bytes).unwrap(), call);
        let ans = HostResponse::Http { status: 200, body: b"ok", rtt_us: 900 };
        let bytes = postcard::to_allocvec(&ans).unwrap();
        assert_eq!(postcard::from_bytes::<HostResponse<'_>>(&bytes).unwrap(), ans);
        roundtrip(&History::default());
        roundtrip(&HostError::Denied);
    }

    #[test]
    fn test_garbage_is_an_error() {
        // A guest returning garbage must decode to an error, never panic.
        for bytes in [&[][..], &[0xff; 3], &[7, 1, 2], &[0, 200, 200, 200, 200, 200, 200]] {
            assert!(postcard::from_bytes::<CheckResponse<'_>>(bytes).is_err());
        }
    }

    #[test]
    fn test_pack_and_codes() {
        assert_eq!(unpack(pack(0x1234, 0xffff_fff0)), (0x1234, 0xffff_fff0));
        for e in [HostError::Denied, HostError::Budget, HostError::Timeout] {
            assert_eq!(HostError::from_code(e as i32), Some(e));
        }
        assert_eq!(HostError::from_code(99), None);
    }
}
