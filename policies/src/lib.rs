//! hav-policy: the guest SDK for hav WASM policies.
//!
//! A policy is a `cdylib` built for `wasm32-unknown-unknown`. This crate provides everything the
//! ABI of [`hav_core::policy`] asks of it:
//! - the `hav_abi_version` and `hav_alloc` exports and the `memory` (linked in by depending on
//!   this crate);
//! - [`check!`] and [`priority!`], which turn a plain function into the `hav_check` /
//!   `hav_priority` export (postcard decoding of the request, encoding of the response);
//! - safe wrappers for the host calls: [`tcp_connect`], [`http_get`], [`dns_query`],
//!   [`udp_probe`], plus [`now_ms`] and [`log()`] / [`log!`];
//! - [`arg`] and friends to read the free-form `args` string of the config.
//!
//! ```ignore
//! #![cfg_attr(target_arch = "wasm32", no_std)]
//! use hav_policy::{tcp_connect, CheckRequest, CheckResponse, CheckVerdict};
//!
//! fn check(req: &CheckRequest<'_>) -> CheckResponse<'static> {
//!     match tcp_connect(req.target, 1000) {
//!         Ok(_) => CheckResponse { verdict: CheckVerdict::Up, message: "connected" },
//!         Err(_) => CheckResponse { verdict: CheckVerdict::Down, message: "no connection" },
//!     }
//! }
//! hav_policy::check!(check);
//! ```
//!
//! No allocator is needed: requests are decoded in place (strings borrow from the input buffer)
//! and responses are encoded into a static buffer. On other targets than wasm32 the host calls
//! answer [`HostError::Denied`], so policies compile (and their pure logic can be unit-tested)
//! on the build machine.
#![cfg_attr(not(test), no_std)]
// The ABI boundary needs raw pointers into linear memory and `#[no_mangle]` exports; every
// `unsafe` block below says why it is sound.
#![allow(unsafe_code)]

use core::cell::UnsafeCell;
use core::fmt;
use core::net::SocketAddr;

pub use hav_core::policy::{
    CheckRequest, CheckResponse, CheckVerdict, History, HostError, HostRequest, HostResponse, PriorityRequest,
    PriorityResponse, PriorityVerdict, Proto, Target, ABI_VERSION,
};
pub use hav_core::vrrp::State;

/// Largest request the guest accepts, bytes.
pub const INPUT_CAP: usize = 64 * 1024;
/// Largest response the guest can produce, bytes.
pub const OUTPUT_CAP: usize = 4 * 1024;
/// Largest encoded host-call request, bytes.
const HOST_REQUEST_CAP: usize = 2048;

/// A static byte buffer shared with the host through linear memory.
struct Buf<const N: usize>(UnsafeCell<[u8; N]>);

// SAFETY: a WASM policy instance is single-threaded; the buffers are only touched by the
// export functions below, which the host never runs concurrently within an instance.
unsafe impl<const N: usize> Sync for Buf<N> {}

static INPUT: Buf<INPUT_CAP> = Buf(UnsafeCell::new([0; INPUT_CAP]));
static OUTPUT: Buf<OUTPUT_CAP> = Buf(UnsafeCell::new([0; OUTPUT_CAP]));

/// ABI export: the version this policy was built for.
#[no_mangle]
pub extern "C" fn hav_abi_version() -> i32 {
    ABI_VERSION as i32
}

/// ABI export: where the host writes a request of `len` bytes (0 when it does not fit).
#[no_mangle]
pub extern "C" fn hav_alloc(len: i32) -> i32 {
    if len < 0 || len as usize > INPUT_CAP {
        return 0;
    }
    INPUT.0.get() as usize as i32
}

#[cfg(all(target_arch = "wasm32", not(test)))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    // A panic is a trap: the host counts the run as failed and logs it.
    core::arch::wasm32::unreachable()
}

#[cfg(target_arch = "wasm32")]
mod sys {
    #[link(wasm_import_module = "hav")]
    extern "C" {
        pub fn host_call(req_ptr: i32, req_len: i32, resp_ptr: i32, resp_cap: i32) -> i32;
        pub fn now_ms() -> i64;
        pub fn log(level: i32, ptr: i32, len: i32);
    }
}

#[cfg(not(target_arch = "wasm32"))]
#[allow(clippy::missing_safety_doc)]
mod sys {
    //! Off wasm32 there is no host: every call is refused.
    pub unsafe fn host_call(_: i32, _: i32, _: i32, _: i32) -> i32 {
        -(super::HostError::Denied as i32)
    }
    pub unsafe fn now_ms() -> i64 {
        0
    }
    pub unsafe fn log(_: i32, _: i32, _: i32) {}
}

/// Machinery for the macros; not a stable API.
#[doc(hidden)]
pub mod __private {
    use super::*;

    /// Decodes the request the host wrote into the input buffer.
    pub fn input<T: serde::Deserialize<'static>>(len: i32) -> Option<T> {
        if len < 0 || len as usize > INPUT_CAP {
            return None;
        }
        // SAFETY: the host wrote `len` bytes at the address `hav_alloc` returned, before calling
        // the entry; nothing writes the buffer until the entry returns. The slice is valid for
        // the whole call (instances do not outlive a call).
        let bytes: &'static [u8] = unsafe { core::slice::from_raw_parts(INPUT.0.get() as *const u8, len as usize) };
        postcard::from_bytes(bytes).ok()
    }

    /// Encodes `v` into the output buffer and packs its place for the host.
    pub fn output<T: serde::Serialize>(v: &T) -> i64 {
        // SAFETY: only the entry that is returning writes the output buffer, once, and the host
        // reads it after the entry returned.
        let out: &mut [u8; OUTPUT_CAP] = unsafe { &mut *OUTPUT.0.get() };
        match postcard::to_slice(v, out) {
            Ok(used) => hav_core::policy::pack(used.as_ptr() as usize as u32, used.len() as u32),
            // Too big for the buffer: an empty output, which the host reports as bad output.
            Err(_) => hav_core::policy::pack(0, 0),
        }
    }
}

/// Turns `fn(&CheckRequest<'_>) -> CheckResponse<'_>` into the `hav_check` export.
///
/// A request that does not decode gets a `Down` verdict saying so.
#[macro_export]
macro_rules! check {
    ($f:path) => {
        /// hav ABI export: the check entry.
        #[allow(unsafe_code)]
        #[no_mangle]
        pub extern "C" fn hav_check(_ptr: i32, len: i32) -> i64 {
            match $crate::__private::input::<$crate::CheckRequest<'static>>(len) {
                Some(req) => {
                    let resp: $crate::CheckResponse<'_> = $f(&req);
                    $crate::__private::output(&resp)
                }
                None => $crate::__private::output(&$crate::CheckResponse {
                    verdict: $crate::CheckVerdict::Down,
                    message: "hav-policy: the request did not decode",
                }),
            }
        }
    };
}

/// Turns `fn(&PriorityRequest<'_>) -> PriorityResponse<'_>` into the `hav_priority` export.
///
/// A request that does not decode gets a `Fault` verdict saying so.
#[macro_export]
macro_rules! priority {
    ($f:path) => {
        /// hav ABI export: the priority entry.
        #[allow(unsafe_code)]
        #[no_mangle]
        pub extern "C" fn hav_priority(_ptr: i32, len: i32) -> i64 {
            match $crate::__private::input::<$crate::PriorityRequest<'static>>(len) {
                Some(req) => {
                    let resp: $crate::PriorityResponse<'_> = $f(&req);
                    $crate::__private::output(&resp)
                }
                None => $crate::__private::output(&$crate::PriorityResponse {
                    verdict: $crate::PriorityVerdict::Fault,
                    message: "hav-policy: the request did not decode",
                }),
            }
        }
    };
}

/// Why a host call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// The host refused or could not carry out the call.
    Host(HostError),
    /// The response buffer is too small; this many bytes are needed.
    BufferTooSmall(usize),
    /// The request does not fit the request buffer (a UDP payload that is too big, say).
    TooBig,
    /// The host's answer did not decode, or was not the answer to this kind of call.
    Decode,
    /// A code this SDK does not know.
    Unknown(i32),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Host(e) => write!(f, "host: {e:?}"),
            Error::BufferTooSmall(n) => write!(f, "response buffer too small, {n} bytes needed"),
            Error::TooBig => f.write_str("request too big"),
            Error::Decode => f.write_str("host answer did not decode"),
            Error::Unknown(c) => write!(f, "unknown host code {c}"),
        }
    }
}

/// Sends `req` to the host; the answer borrows from `resp`.
pub fn host_call<'b>(req: &HostRequest<'_>, resp: &'b mut [u8]) -> Result<HostResponse<'b>, Error> {
    let mut rbuf = [0u8; HOST_REQUEST_CAP];
    let r = postcard::to_slice(req, &mut rbuf).map_err(|_| Error::TooBig)?;
    let cap = resp.len().min(i32::MAX as usize) as i32;
    // SAFETY: both pointers and lengths describe live buffers of this call; the host writes at
    // most `cap` bytes into `resp` and reads `r`.
    let n = unsafe { sys::host_call(r.as_ptr() as usize as i32, r.len() as i32, resp.as_mut_ptr() as usize as i32, cap) };
    if n < 0 {
        let c = n.checked_neg().unwrap_or(i32::MAX);
        if c >= hav_core::policy::HOST_CALL_TOO_SMALL {
            return Err(Error::BufferTooSmall((c - hav_core::policy::HOST_CALL_TOO_SMALL) as usize));
        }
        return Err(HostError::from_code(c).map(Error::Host).unwrap_or(Error::Unknown(n)));
    }
    let n = (n as usize).min(resp.len());
    postcard::from_bytes(&resp[..n]).map_err(|_| Error::Decode)
}

/// A TCP target at `addr`.
pub fn tcp(addr: SocketAddr) -> Target {
    Target { addr: addr.ip(), port: addr.port(), proto: Proto::Tcp }
}

/// A UDP target at `addr`.
pub fn udp(addr: SocketAddr) -> Target {
    Target { addr: addr.ip(), port: addr.port(), proto: Proto::Udp }
}

/// Opens (and closes) a TCP connection to `target`; the connect time in microseconds.
pub fn tcp_connect(target: Target, timeout_ms: u32) -> Result<u32, Error> {
    let mut buf = [0u8; 32];
    match host_call(&HostRequest::TcpConnect { target, timeout_ms }, &mut buf)? {
        HostResponse::Connected { rtt_us } => Ok(rtt_us),
        _ => Err(Error::Decode),
    }
}

/// An HTTP GET request.
#[derive(Debug, Clone, Copy)]
pub struct HttpGet<'a> {
    /// Where.
    pub target: Target,
    /// `Host` header; empty for the address.
    pub host: &'a str,
    /// The request path, starting with `/`.
    pub path: &'a str,
    /// HTTPS. The Linux host has no TLS client yet and answers [`HostError::Protocol`].
    pub tls: bool,
    /// Give up after this long.
    pub timeout_ms: u32,
}

/// An HTTP response; the body borrows from the caller's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpReply<'b> {
    /// Status code.
    pub status: u16,
    /// The body, cut to fit the buffer.
    pub body: &'b [u8],
    /// Time to the complete response, microseconds.
    pub rtt_us: u32,
}

/// Bytes of a response that are not body (variant, status, lengths, time).
const HTTP_OVERHEAD: usize = 24;

/// GETs `req`; at most `buf.len() - 24` bytes of body are returned.
pub fn http_get<'b>(req: &HttpGet<'_>, buf: &'b mut [u8]) -> Result<HttpReply<'b>, Error> {
    let max_body = buf.len().saturating_sub(HTTP_OVERHEAD).min(u32::MAX as usize) as u32;
    let call = HostRequest::HttpGet {
        target: req.target,
        host: req.host,
        path: req.path,
        tls: req.tls,
        timeout_ms: req.timeout_ms,
        max_body,
    };
    match host_call(&call, buf)? {
        HostResponse::Http { status, body, rtt_us } => Ok(HttpReply { status, body, rtt_us }),
        _ => Err(Error::Decode),
    }
}

/// A DNS answer's summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DnsReply {
    /// Response code (0 = NOERROR, 3 = NXDOMAIN...).
    pub rcode: u8,
    /// Number of answer records.
    pub answers: u16,
    /// Round trip, microseconds.
    pub rtt_us: u32,
}

/// Asks DNS server `server` for `name` of type `qtype` (1 = A, 28 = AAAA...).
pub fn dns_query(server: Target, name: &str, qtype: u16, timeout_ms: u32) -> Result<DnsReply, Error> {
    let mut buf = [0u8; 32];
    match host_call(&HostRequest::DnsQuery { server, name, qtype, timeout_ms }, &mut buf)? {
        HostResponse::Dns { rcode, answers, rtt_us } => Ok(DnsReply { rcode, answers, rtt_us }),
        _ => Err(Error::Decode),
    }
}

/// A UDP probe's outcome; the reply borrows from the caller's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpReply<'b> {
    /// The reply (empty when none was expected).
    pub reply: &'b [u8],
    /// Round trip, microseconds (0 when no reply was expected).
    pub rtt_us: u32,
}

/// Sends `payload` to `target`, and waits for a reply when `expect_reply`.
pub fn udp_probe<'b>(
    target: Target,
    payload: &[u8],
    expect_reply: bool,
    timeout_ms: u32,
    buf: &'b mut [u8],
) -> Result<UdpReply<'b>, Error> {
    match host_call(&HostRequest::UdpProbe { target, payload, expect_reply, timeout_ms }, buf)? {
        HostResponse::Udp { reply, rtt_us } => Ok(UdpReply { reply, rtt_us }),
        _ => Err(Error::Decode),
    }
}

/// Monotonic milliseconds (the host's clock).
pub fn now_ms() -> u64 {
    // SAFETY: an import without arguments.
    unsafe { sys::now_ms() as u64 }
}

/// Log levels, as the host's `log` import numbers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum Level {
    /// Error.
    Error = 0,
    /// Warning.
    Warn = 1,
    /// Information.
    Info = 2,
    /// Debugging.
    Debug = 3,
    /// Tracing.
    Trace = 4,
}

/// Logs `line` through the host (which caps length and count).
pub fn log(level: Level, line: &str) {
    // SAFETY: the pointer and length describe `line`, which the host only reads.
    unsafe { sys::log(level as i32, line.as_ptr() as usize as i32, line.len() as i32) }
}

/// A fixed-size text buffer for formatting without an allocator; output past `N` bytes is cut.
pub struct Line<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> Line<N> {
    /// An empty line.
    pub const fn new() -> Self {
        Line { buf: [0; N], len: 0 }
    }

    /// The text so far.
    pub fn as_str(&self) -> &str {
        match core::str::from_utf8(&self.buf[..self.len]) {
            Ok(s) => s,
            // Cut inside a character: drop the partial character.
            Err(e) => core::str::from_utf8(&self.buf[..e.valid_up_to()]).unwrap_or(""),
        }
    }
}

impl<const N: usize> Default for Line<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> fmt::Write for Line<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let n = s.len().min(N - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

/// Formats and logs a line: `log!(Level::Info, "rtt {} us", rtt)`.
#[macro_export]
macro_rules! log {
    ($level:expr, $($fmt:tt)+) => {{
        let mut line = $crate::Line::<256>::new();
        let _ = core::fmt::Write::write_fmt(&mut line, format_args!($($fmt)+));
        $crate::log($level, line.as_str());
    }};
}

/// The value of `key=value` in a whitespace-separated `args` string.
pub fn arg<'a>(args: &'a str, key: &str) -> Option<&'a str> {
    args.split_whitespace().find_map(|w| w.split_once('=').filter(|(k, _)| *k == key).map(|(_, v)| v))
}

/// [`arg`] parsed as `T`; `None` when absent or malformed.
pub fn arg_parse<T: core::str::FromStr>(args: &str, key: &str) -> Option<T> {
    arg(args, key).and_then(|v| v.parse().ok())
}

/// [`arg`] parsed as `IP:PORT` (`[v6]:PORT` for IPv6).
pub fn arg_addr(args: &str, key: &str) -> Option<SocketAddr> {
    arg_parse(args, key)
}

#[cfg(test)]
mod test {
    use super::*;
    use core::fmt::Write;

    #[test]
    fn test_args() {
        let a = "path=/health status=200 target=127.0.0.1:8080 body=ok=yes";
        assert_eq!(arg(a, "path"), Some("/health"));
        assert_eq!(arg_parse::<u16>(a, "status"), Some(200));
        assert_eq!(arg_addr(a, "target"), Some("127.0.0.1:8080".parse().unwrap()));
        assert_eq!(arg(a, "body"), Some("ok=yes"));
        assert_eq!(arg(a, "missing"), None);
        assert_eq!(arg_parse::<u16>("status=abc", "status"), None);
    }

    #[test]
    fn test_line_cuts() {
        let mut l = Line::<8>::new();
        write!(l, "rtt {} us", 12345).unwrap();
        assert_eq!(l.as_str(), "rtt 1234");
        let mut l = Line::<4>::new();
        l.write_str("aé€").unwrap();
        assert_eq!(l.as_str(), "aé");
    }

    #[test]
    fn test_output_roundtrip() {
        let resp = CheckResponse { verdict: CheckVerdict::Weight(7), message: "fine" };
        let packed = __private::output(&resp);
        let (ptr, len) = hav_core::policy::unpack(packed);
        assert!(len > 0 && (len as usize) < OUTPUT_CAP);
        let _ = ptr; // a truncated host pointer off wasm32
        // SAFETY (test): read back the static output buffer this thread just wrote.
        let out = unsafe { &*OUTPUT.0.get() };
        assert_eq!(postcard::from_bytes::<CheckResponse<'_>>(&out[..len as usize]).unwrap(), resp);
    }

    #[test]
    fn test_off_wasm_host_calls_are_denied() {
        let t = tcp("127.0.0.1:1".parse().unwrap());
        assert_eq!(tcp_connect(t, 10), Err(Error::Host(HostError::Denied)));
    }
}
