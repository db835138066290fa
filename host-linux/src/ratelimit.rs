//! Log rate limiting: at most `burst` events per `period`, and a count of the ones held back.
//!
//! A hostile or broken peer can make the daemon want to log thousands of lines a second
//! (malformed adverts, state flaps, accept failures while out of descriptors). Logging each one
//! costs more than the event itself and buries the lines that matter. A limiter lets the first
//! `burst` events of each window of `period` through and counts the rest; the first event let
//! through once the window reopens carries that count, so the log says how much it left out.
//!
//! - [`RateLimit`]: one limiter, owned by whoever logs (a task, an instance record).
//! - [`SharedRateLimit`]: the same behind a mutex, for a `static` shared by many tasks.
//! - [`KeyedRateLimit`]: one limiter per key (source address, instance name), with a bounded
//!   number of keys, so a peer spoofing many sources cannot grow it without bound.
//!
//! The limiters read no clock themselves: `check(now)` takes the caller's `Instant`, so a loop
//! that already read the clock for its batch pays nothing more, and tests need no sleeping.
//! `check_now()` reads the clock for callers that have none at hand.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use hav_linux::ratelimit::RateLimit;
//!
//! // At most one line a second.
//! let mut limit = RateLimit::new(1, Duration::from_secs(1));
//! for _ in 0..1000 {
//!     if let Some(suppressed) = limit.check(Instant::now()) {
//!         // Logged: `suppressed` events were held back since the previous line.
//!         let _ = suppressed;
//!     }
//! }
//! ```
//!
//! Held-back events are reported by the next event let through. An owner that wants a trailing
//! count reported even when no further event comes calls [`RateLimit::flush`] from a tick.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// At most `burst` events per window of `period`; counts the rest.
///
/// Windows are fixed: one opens at the first event after the previous one ended, so an idle
/// limiter lets the next event through at once.
#[derive(Debug, Clone)]
pub struct RateLimit {
    burst: u32,
    period: Duration,
    /// When the current window opened; `None` before the first event.
    opened: Option<Instant>,
    /// Events let through in the current window.
    passed: u32,
    /// Events held back since the last one let through.
    suppressed: u64,
}

impl RateLimit {
    /// A limiter letting `burst` events through per `period` (a `burst` of 0 is taken as 1: a
    /// limiter that never lets anything through would hide the problem entirely).
    pub const fn new(burst: u32, period: Duration) -> Self {
        RateLimit { burst: if burst == 0 { 1 } else { burst }, period, opened: None, passed: 0, suppressed: 0 }
    }

    /// One event at `now`. `Some(n)` when it may be logged, with `n` the number of events held
    /// back since the previous one let through (log it when non-zero); `None` when it must be
    /// dropped (it is counted).
    ///
    /// `now` should not go backwards; if it does, the current window simply lasts longer.
    pub fn check(&mut self, now: Instant) -> Option<u64> {
        if self.window_over(now) {
            self.opened = Some(now);
            self.passed = 0;
        }
        if self.passed < self.burst {
            self.passed += 1;
            Some(std::mem::take(&mut self.suppressed))
        } else {
            self.suppressed = self.suppressed.saturating_add(1);
            None
        }
    }

    /// [`RateLimit::check`] at `Instant::now()`.
    pub fn check_now(&mut self) -> Option<u64> {
        self.check(Instant::now())
    }

    /// The count of held-back events, once their window is over and no event has reported
    /// them yet (and resets it); `None` otherwise. For owners with a periodic tick that want a
    /// trailing "N more suppressed" line even when the flood stops.
    pub fn flush(&mut self, now: Instant) -> Option<u64> {
        if self.suppressed > 0 && self.window_over(now) {
            Some(std::mem::take(&mut self.suppressed))
        } else {
            None
        }
    }

    /// Events held back and not reported yet.
    pub fn suppressed(&self) -> u64 {
        self.suppressed
    }

    fn window_over(&self, now: Instant) -> bool {
        match self.opened {
            None => true,
            Some(t) => now.saturating_duration_since(t) >= self.period,
        }
    }
}

/// A [`RateLimit`] behind a mutex, constructible in a `static`:
///
/// ```
/// use std::time::Duration;
/// use hav_linux::ratelimit::SharedRateLimit;
///
/// static ACCEPT_FAILED: SharedRateLimit = SharedRateLimit::new(1, Duration::from_secs(1));
/// if let Some(suppressed) = ACCEPT_FAILED.check_now() {
///     let _ = suppressed; // log here
/// }
/// ```
#[derive(Debug)]
pub struct SharedRateLimit(Mutex<RateLimit>);

impl SharedRateLimit {
    /// As [`RateLimit::new`].
    pub const fn new(burst: u32, period: Duration) -> Self {
        SharedRateLimit(Mutex::new(RateLimit::new(burst, period)))
    }

    /// As [`RateLimit::check`]. A poisoned lock is used anyway: the state is two counters.
    pub fn check(&self, now: Instant) -> Option<u64> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).check(now)
    }

    /// As [`RateLimit::check_now`].
    pub fn check_now(&self) -> Option<u64> {
        self.check(Instant::now())
    }
}

/// One [`RateLimit`] per key, for at most `max_keys` keys.
///
/// When the table is full, keys whose window is over are swept out (at most once a `period`,
/// so a flood of new keys costs no more than a lookup each); if it is still full, new keys
/// share one overflow limiter with the same budget. Events of a swept-out key that were held
/// back and not reported are handed to the overflow limiter, so they are still counted.
#[derive(Debug, Clone)]
pub struct KeyedRateLimit<K> {
    burst: u32,
    period: Duration,
    max_keys: usize,
    keys: HashMap<K, RateLimit>,
    overflow: RateLimit,
    last_sweep: Option<Instant>,
}

impl<K: Hash + Eq + Clone> KeyedRateLimit<K> {
    /// `burst` events per `period` for each key, for at most `max_keys` keys (at least 1).
    pub fn new(burst: u32, period: Duration, max_keys: usize) -> Self {
        KeyedRateLimit {
            burst,
            period,
            max_keys: max_keys.max(1),
            keys: HashMap::new(),
            overflow: RateLimit::new(burst, period),
            last_sweep: None,
        }
    }

    /// One event of `key` at `now`; as [`RateLimit::check`].
    pub fn check(&mut self, key: &K, now: Instant) -> Option<u64> {
        if let Some(l) = self.keys.get_mut(key) {
            return l.check(now);
        }
        if self.keys.len() >= self.max_keys {
            self.sweep(now);
        }
        if self.keys.len() >= self.max_keys {
            return self.overflow.check(now);
        }
        self.keys.entry(key.clone()).or_insert_with(|| RateLimit::new(self.burst, self.period)).check(now)
    }

    /// Number of keys with a limiter of their own.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no key has a limiter of its own.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    fn sweep(&mut self, now: Instant) {
        if self.last_sweep.is_some_and(|t| now.saturating_duration_since(t) < self.period) {
            return;
        }
        self.last_sweep = Some(now);
        let overflow = &mut self.overflow;
        self.keys.retain(|_, l| {
            if !l.window_over(now) {
                return true;
            }
            overflow.suppressed = overflow.suppressed.saturating_add(l.suppressed);
            false
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn test_burst_then_count() {
        let t0 = Instant::now();
        let mut l = RateLimit::new(2, S);
        assert_eq!(l.check(t0), Some(0));
        assert_eq!(l.check(t0), Some(0));
        for _ in 0..5 {
            assert_eq!(l.check(t0 + Duration::from_millis(500)), None);
        }
        assert_eq!(l.suppressed(), 5);
        // The window reopens: the first event reports the five held back.
        assert_eq!(l.check(t0 + S), Some(5));
        assert_eq!(l.check(t0 + S), Some(0));
        assert_eq!(l.check(t0 + S), None);
    }

    #[test]
    fn test_idle_limiter_lets_the_next_event_through() {
        let t0 = Instant::now();
        let mut l = RateLimit::new(1, S);
        assert_eq!(l.check(t0), Some(0));
        assert_eq!(l.check(t0 + Duration::from_secs(100)), Some(0));
        // A clock going backwards keeps the window open rather than panicking.
        assert_eq!(l.check(t0), None);
    }

    #[test]
    fn test_zero_burst_is_one() {
        let t0 = Instant::now();
        let mut l = RateLimit::new(0, S);
        assert_eq!(l.check(t0), Some(0));
        assert_eq!(l.check(t0), None);
    }

    #[test]
    fn test_flush_reports_trailing_suppressed() {
        let t0 = Instant::now();
        let mut l = RateLimit::new(1, S);
        l.check(t0);
        l.check(t0);
        l.check(t0);
        assert_eq!(l.flush(t0), None, "window still open");
        assert_eq!(l.flush(t0 + S), Some(2));
        assert_eq!(l.flush(t0 + S), None, "reported once");
        assert_eq!(l.check(t0 + S), Some(0));
    }

    #[test]
    fn test_shared_in_a_static() {
        static L: SharedRateLimit = SharedRateLimit::new(1, Duration::from_secs(3600));
        assert_eq!(L.check_now(), Some(0));
        assert_eq!(L.check_now(), None);
    }

    #[test]
    fn test_keyed_limits_each_key() {
        let t0 = Instant::now();
        let mut k = KeyedRateLimit::new(1, S, 8);
        assert_eq!(k.check(&"a", t0), Some(0));
        assert_eq!(k.check(&"a", t0), None);
        assert_eq!(k.check(&"b", t0), Some(0), "another key has its own budget");
        assert_eq!(k.check(&"a", t0 + S), Some(1));
        assert_eq!(k.len(), 2);
    }

    #[test]
    fn test_keyed_is_bounded() {
        let t0 = Instant::now();
        let mut k = KeyedRateLimit::new(1, S, 4);
        for i in 0..4 {
            assert_eq!(k.check(&i, t0), Some(0));
        }
        k.check(&0, t0);
        // Full and every window open: new keys share the overflow limiter.
        assert_eq!(k.check(&100, t0), Some(0));
        assert_eq!(k.check(&101, t0), None);
        assert_eq!(k.len(), 4);
        // A period later the old keys are swept out; key 0's held-back event moves to the
        // overflow limiter (which held back key 101's), so it is still counted.
        assert_eq!(k.check(&102, t0 + S), Some(0));
        assert_eq!(k.len(), 1);
        assert_eq!(k.overflow.suppressed(), 2);
        for i in 200..10_000 {
            k.check(&i, t0 + S);
        }
        assert!(k.len() <= 4);
    }
}
