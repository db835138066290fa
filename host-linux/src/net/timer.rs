//! A one-shot timer with microsecond precision for the VRRP loop.
//!
//! tokio's timer wheel has a resolution of one millisecond and rounds up, so a Master_Down
//! timer would fire up to a millisecond late. This one is a `timerfd` (an hrtimer in the
//! kernel) watched by tokio: it wakes the loop at the deadline itself. Re-arming costs one
//! `timerfd_settime`, done only when the deadline comes earlier or the timer has fired.

use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFlags, TimerSetTimeFlags};
use tokio::io::unix::AsyncFd;

use super::sys;

/// One deadline at a time; see the module docs.
#[derive(Debug)]
pub struct PreciseTimer {
    fd: AsyncFd<sys::TimerFd>,
    armed: Option<Instant>,
}

impl PreciseTimer {
    /// A disarmed timer. Must be called inside a tokio runtime.
    ///
    /// # Errors
    /// When the timerfd cannot be created or registered.
    pub fn new() -> std::io::Result<Self> {
        // std's Instant is CLOCK_MONOTONIC on Linux, as this timer is.
        let t = nix::sys::timerfd::TimerFd::new(ClockId::CLOCK_MONOTONIC, TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC)?;
        Ok(PreciseTimer { fd: sys::async_timer(sys::TimerFd(t))?, armed: None })
    }

    /// Sets the deadline. A later deadline than the one armed (or none) leaves the timer as it
    /// is: firing early costs the caller one empty turn, far fewer than a `timerfd_settime` for
    /// every advert that pushes a Master_Down timer back. An earlier one re-arms at once.
    pub fn arm(&mut self, at: Option<Instant>) {
        match (self.armed, at) {
            (Some(cur), Some(t)) if t >= cur => return,
            (Some(_), None) | (None, None) => return,
            _ => {}
        }
        self.armed = at;
        let r = match at {
            // A relative one-shot; zero would disarm, so a passed deadline fires in 1 ns.
            Some(t) => {
                let d = t.saturating_duration_since(Instant::now()).max(Duration::from_nanos(1));
                self.fd.get_ref().0.set(Expiration::OneShot(TimeSpec::from_duration(d)), TimerSetTimeFlags::empty())
            }
            None => Ok(()),
        };
        if let Err(e) = r {
            tracing::error!(error = %e, "timerfd_settime");
        }
    }

    /// Waits until the armed deadline passes (or an earlier one, see [`PreciseTimer::arm`]);
    /// forever when disarmed. Cancel-safe.
    pub async fn fired(&mut self) {
        if self.armed.is_none() {
            return std::future::pending().await;
        }
        loop {
            let Ok(mut guard) = self.fd.readable().await else {
                return std::future::pending().await;
            };
            let mut buf = [0u8; 8];
            match nix::unistd::read(guard.get_inner().as_raw_fd(), &mut buf) {
                Ok(_) => {
                    self.armed = None;
                    return;
                }
                Err(nix::errno::Errno::EAGAIN) => guard.clear_ready(),
                Err(nix::errno::Errno::EINTR) => {}
                Err(e) => {
                    tracing::error!(error = %e, "reading the timerfd");
                    return std::future::pending().await;
                }
            }
        }
    }
}
