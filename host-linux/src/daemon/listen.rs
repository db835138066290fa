//! What the daemon's listeners (the control socket, the metrics endpoint) share: bounds on what
//! one client may cost, and the back-off when `accept` fails.
//!
//! A listener must survive a client that connects and sends nothing, one that sends an endless
//! line, a thousand that connect at once, and the daemon running out of descriptors. So each
//! request is bounded in size, each read and write in time, the clients in number, and an
//! `accept` that fails (EMFILE leaves the connection queued, so the socket stays readable and a
//! retry fails again at once) sleeps before the next try instead of spinning.

use std::io;
use std::time::Duration;

use crate::ratelimit::RateLimit;

/// Bounds on the clients of a listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest request: a control line (without its newline), an HTTP request head.
    pub max_request: usize,
    /// Clients served at once; more are answered with an error and closed at once.
    pub max_clients: usize,
    /// Longest wait for a client to send a request or take a reply.
    pub io_timeout: Duration,
}

impl Limits {
    /// The control socket's: 4 KiB lines, 16 clients, 5 s.
    pub const CONTROL: Limits = Limits { max_request: 4096, max_clients: 16, io_timeout: Duration::from_secs(5) };
    /// The metrics endpoint's: 8 KiB request heads, 16 clients, 5 s.
    pub const METRICS: Limits = Limits { max_request: 8192, max_clients: 16, io_timeout: Duration::from_secs(5) };
}

/// The wait before retrying a failed `accept`: 10 ms, doubling up to 1 s; back to 10 ms after
/// a success.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backoff {
    next: Option<Duration>,
}

impl Backoff {
    /// The first wait.
    pub const MIN: Duration = Duration::from_millis(10);
    /// The longest wait.
    pub const MAX: Duration = Duration::from_secs(1);

    /// A failure: the time to wait before the next try.
    pub fn failed(&mut self) -> Duration {
        let d = self.next.unwrap_or(Self::MIN);
        self.next = Some((d * 2).min(Self::MAX));
        d
    }

    /// A success: the next failure waits [`Backoff::MIN`] again.
    pub fn succeeded(&mut self) {
        self.next = None;
    }
}

/// Whether a failed `accept` concerns only the connection it was taking (reset or aborted
/// before it was accepted), so the next one can be tried at once.
fn transient(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ECONNABORTED | libc::ECONNRESET | libc::EINTR | libc::EPROTO))
}

/// An accept loop's state: its back-off and its log limiter (one line a second).
#[derive(Debug, Clone)]
pub struct AcceptErrors {
    what: &'static str,
    backoff: Backoff,
    log: RateLimit,
}

impl AcceptErrors {
    /// For the listener named `what` (`"control socket"`, `"metrics"`) in the logs.
    pub fn new(what: &'static str) -> Self {
        AcceptErrors { what, backoff: Backoff::default(), log: RateLimit::new(1, Duration::from_secs(1)) }
    }

    /// An accept succeeded.
    pub fn succeeded(&mut self) {
        self.backoff.succeeded();
    }

    /// An accept failed with `e`: logs it (at most once a second, with the count held back)
    /// and returns how long to wait before accepting again (zero for a transient error).
    pub fn failed(&mut self, e: &io::Error) -> Duration {
        let wait = if transient(e) { Duration::ZERO } else { self.backoff.failed() };
        if let Some(suppressed) = self.log.check_now() {
            if crate::resource::is_exhaustion(e) {
                tracing::error!(listener = self.what, error = %e, suppressed, ?wait, "accept failed: hav is out of descriptors or memory");
            } else {
                tracing::warn!(listener = self.what, error = %e, suppressed, ?wait, "accept failed");
            }
        }
        wait
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_backoff_doubles_to_a_second_and_resets() {
        let mut b = Backoff::default();
        let waits: Vec<u64> = (0..10).map(|_| u64::try_from(b.failed().as_millis()).expect("ms")).collect();
        assert_eq!(waits, [10, 20, 40, 80, 160, 320, 640, 1000, 1000, 1000]);
        b.succeeded();
        assert_eq!(b.failed(), Backoff::MIN);
    }

    #[test]
    fn test_accept_errors_wait() {
        let mut a = AcceptErrors::new("test");
        assert_eq!(a.failed(&io::Error::from_raw_os_error(libc::EMFILE)), Duration::from_millis(10));
        assert_eq!(a.failed(&io::Error::from_raw_os_error(libc::EMFILE)), Duration::from_millis(20));
        assert_eq!(a.failed(&io::Error::from_raw_os_error(libc::ECONNABORTED)), Duration::ZERO);
        assert_eq!(a.failed(&io::Error::from_raw_os_error(libc::ENFILE)), Duration::from_millis(40));
        a.succeeded();
        assert_eq!(a.failed(&io::Error::from_raw_os_error(libc::EMFILE)), Duration::from_millis(10));
    }
}
