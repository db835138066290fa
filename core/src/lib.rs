//! hav-core: the election engine of hav.
//!
//! `#![no_std]`, no allocator, no `unsafe`. It holds:
//! - [`wire`]: VRRP v2/v3 advertisements (and the gratuitous ARP / unsolicited
//!   NA frames sent on takeover), parsed and emitted in smoltcp's
//!   `Packet`/`Repr` style;
//! - [`vrrp`]: the sans-IO VRRP instance, tracking and sync groups;
//! - [`sched`]: the Linux IPVS schedulers as pure algorithms;
//! - [`policy`]: the ABI types shared by the WASM policy host and guests;
//! - [`time`]: the host-supplied monotonic clock types.
//!
//! The crate never reads a clock, a socket or a file: hosts feed inputs with
//! the current [`time::Instant`] and carry out the actions that come back.
#![no_std]
#![forbid(unsafe_code)]

#[cfg(any(feature = "std", test))]
extern crate std;

#[cfg(feature = "alloc")]
extern crate alloc;

pub(crate) mod fmt;

pub mod policy;
pub mod sched;
pub mod time;
pub mod vrrp;
pub mod wire;

pub use time::{Duration, Instant};

/// The one deterministic PRNG of the crate's tests (mutation and property tests).
#[cfg(test)]
pub(crate) mod test_rng {
    /// xorshift64 (Marsaglia), seeded with any non-zero value.
    pub struct XorShift(pub u64);

    impl XorShift {
        /// The next 64 random bits.
        pub fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            x
        }

        /// A value in `0..n` (`n > 0`).
        pub fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }
}
