//! Maglev hashing (`ip_vs_mh.c`).
//!
//! A lookup table of `M` slots (`M` prime, 4093 with the kernel's default
//! `CONFIG_IP_VS_MH_TAB_INDEX=12`) is filled Maglev-style. Every destination
//! gets a permutation: `offset = h1(addr, port) % M`,
//! `skip = h2(addr, port) % (M - 1) + 1`, where `h1`/`h2` are the kernel's
//! `hsiphash` of the 32-bit value `port + fold(addr)` under two fixed keys.
//! Walking the list in order, each destination in turn claims its next free
//! preferred slot, `turns` times per round, with
//! `turns = (last_weight / gcd) >> rshift` (at least 1 for a non-zero
//! weight, 0 for weight 0) until all slots are taken. The table is rebuilt
//! on every add, delete and edit, from `last_weight` (the latest non-zero
//! weight), so a destination edited to weight 0 keeps its slots but is not
//! chosen.
//!
//! A packet goes to slot `h1(sport_or_0 + fold(saddr)) % M`; an overloaded
//! or weight-0 destination there yields nothing, unless
//! [`IP_VS_SVC_F_SCHED_MH_FALLBACK`]
//! is set, in which case slots `h1(roffset + ...) % M` are probed for
//! `roffset = ihash, ihash + 1, ...`.
//!
//! The table is `M` `u32`s held inline (16 KiB for the default size).

use super::{
    fold_addr, ConnKey, Dest, DestChange, Schedule, IP_VS_SVC_F_SCHED_MH_FALLBACK,
    IP_VS_SVC_F_SCHED_MH_PORT,
};
use crate::time::Instant;

/// The table sizes the kernel allows, for `CONFIG_IP_VS_MH_TAB_INDEX` 8..=17.
pub const MH_PRIMES: [usize; 10] = [251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65521, 131071];

/// The kernel's default table size (`CONFIG_IP_VS_MH_TAB_INDEX` = 12).
pub const MH_TAB_SIZE_DEFAULT: usize = 4093;

/// `generate_hash_secret`: the first key (offsets and lookups).
pub const MH_HASH1: [u64; 2] = [2_654_435_761, 2_654_435_761];
/// `generate_hash_secret`: the second key (skips).
pub const MH_HASH2: [u64; 2] = [2_654_446_892, 2_654_446_892];

const NONE: u32 = u32::MAX;

/// The kernel's `hsiphash` on a 64-bit kernel: SipHash-1-3 over `data`
/// with the 128-bit key `key`, truncated to 32 bits.
pub fn hsiphash(data: &[u8], key: &[u64; 2]) -> u32 {
    let mut v = [
        0x736f_6d65_7073_6575 ^ key[0],
        0x646f_7261_6e64_6f6d ^ key[1],
        0x6c79_6765_6e65_7261 ^ key[0],
        0x7465_6462_7974_6573 ^ key[1],
    ];
    fn round(v: &mut [u64; 4]) {
        v[0] = v[0].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(13) ^ v[0];
        v[0] = v[0].rotate_left(32);
        v[2] = v[2].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(16) ^ v[2];
        v[0] = v[0].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(21) ^ v[0];
        v[2] = v[2].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(17) ^ v[2];
        v[2] = v[2].rotate_left(32);
    }
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        let m = u64::from_le_bytes(w);
        v[3] ^= m;
        round(&mut v);
        v[0] ^= m;
    }
    let mut tail = [0u8; 8];
    let rest = chunks.remainder();
    tail[..rest.len()].copy_from_slice(rest);
    let b = ((data.len() as u64) << 56) | u64::from_le_bytes(tail);
    v[3] ^= b;
    round(&mut v);
    v[0] ^= b;
    v[2] ^= 0xff;
    round(&mut v);
    round(&mut v);
    round(&mut v);
    (v[0] ^ v[1] ^ v[2] ^ v[3]) as u32
}

/// `ip_vs_mh_hashkey`: hsiphash of the native-endian `u32`
/// `offset + port + fold(addr)` (little-endian, as on x86-64 and arm64).
pub fn mh_hashkey(addr: &core::net::IpAddr, port: u16, key: &[u64; 2], offset: u32) -> u32 {
    let v = offset.wrapping_add(u32::from(port)).wrapping_add(fold_addr(addr));
    hsiphash(&v.to_le_bytes(), key)
}

fn gcd(mut a: i32, mut b: i32) -> i32 {
    while b != 0 {
        let t = a % b;
        a = b;
        b = t;
    }
    a
}

/// `fls`: position of the highest set bit, 1-based; 0 for 0.
fn fls(x: i32) -> i32 {
    if x == 0 {
        0
    } else {
        32 - (x as u32).leading_zeros() as i32
    }
}

/// Maglev-hashing state: the lookup table (indices into the list), scratch
/// space for the permutations and the service flags. `M` must be one of
/// [`MH_PRIMES`]; with any other size the table stays empty and nothing is
/// scheduled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mh<const M: usize = MH_TAB_SIZE_DEFAULT> {
    lookup: [u32; M],
    /// Next preferred slot of each destination while populating.
    perm: [u32; M],
    flags: u32,
}

impl<const M: usize> Mh<M> {
    /// `init_service` for a service with `svc_flags` and the current list.
    pub fn new(svc_flags: u32, dests: &[Dest]) -> Self {
        let mut s = Mh { lookup: [NONE; M], perm: [0; M], flags: svc_flags };
        s.reassign(dests);
        s
    }

    /// Changes the service flags; no rebuild needed.
    pub fn set_flags(&mut self, svc_flags: u32) {
        self.flags = svc_flags;
    }

    /// `IP_VS_MH_TAB_BITS` for this table size, or `None` if `M` is not a
    /// size the kernel allows.
    fn tab_bits() -> Option<i32> {
        let idx = MH_PRIMES.iter().position(|&p| p == M)?;
        Some((idx as i32 + 8) / 2)
    }

    /// The destination index in slot `slot`, if any.
    pub fn slot(&self, slot: usize) -> Option<usize> {
        match self.lookup.get(slot) {
            Some(&i) if i != NONE => Some(i as usize),
            _ => None,
        }
    }

    /// `ip_vs_mh_reassign`: gcd and shift of the last weights, then the
    /// permutations and the population of the table.
    fn reassign(&mut self, dests: &[Dest]) {
        let Some(tab_bits) = Self::tab_bits() else {
            self.lookup = [NONE; M];
            return;
        };
        let n = dests.len();
        if n > M {
            // -EINVAL in the kernel: the old table stays.
            return;
        }
        let g = dests
            .iter()
            .map(|d| d.last_weight)
            .filter(|&w| w > 0)
            .fold(0, |g, w| if g > 0 { gcd(w, g) } else { w });
        if g < 1 {
            self.lookup = [NONE; M];
            return;
        }
        let mw = dests.iter().map(|d| d.last_weight).fold(0, i32::max) / g;
        let rshift = (fls(mw) - tab_bits).max(0);
        let turns = |d: &Dest| -> i32 {
            let lw = d.last_weight;
            let t = (lw / g) >> rshift;
            if t != 0 {
                t
            } else {
                i32::from(lw != 0)
            }
        };
        let m = M as u32;
        for (p, d) in self.perm.iter_mut().zip(dests) {
            *p = mh_hashkey(&d.addr, d.port, &MH_HASH1, 0) % m;
        }
        // Every slot gets filled, so a slot is "taken" exactly when it was
        // assigned in this population: the table doubles as the bitmap.
        self.lookup = [NONE; M];
        let mut filled = 0usize;
        let mut dt_count = 0i32;
        let mut j = 0usize;
        while filled < M {
            if j == n {
                j = 0;
            }
            while j < n {
                let d = &dests[j];
                let t = turns(d);
                if t < 1 {
                    j += 1;
                    continue;
                }
                let mut c = self.perm[j];
                if self.lookup[c as usize] != NONE {
                    let skip = mh_hashkey(&d.addr, d.port, &MH_HASH2, 0) % (m - 1) + 1;
                    while self.lookup[c as usize] != NONE {
                        c += skip;
                        if c >= m {
                            c -= m;
                        }
                    }
                    self.perm[j] = c;
                }
                self.lookup[c as usize] = j as u32;
                filled += 1;
                if filled == M {
                    return;
                }
                dt_count += 1;
                if dt_count >= t {
                    dt_count = 0;
                    j += 1;
                }
            }
        }
    }
}

impl<const M: usize> Schedule for Mh<M> {
    fn handle_change(&mut self, dests: &[Dest], _change: DestChange) {
        self.reassign(dests);
    }

    fn schedule(&mut self, dests: &[Dest], conn: &ConnKey, _now: Instant) -> Option<usize> {
        if M == 0 {
            return None;
        }
        let m = M as u32;
        let port = if self.flags & IP_VS_SVC_F_SCHED_MH_PORT != 0 { conn.hash_sport() } else { 0 };
        let ihash = mh_hashkey(&conn.src, port, &MH_HASH1, 0) % m;
        let first = self.slot(ihash as usize).filter(|&i| i < dests.len())?;
        if dests[first].is_available() {
            return Some(first);
        }
        if self.flags & IP_VS_SVC_F_SCHED_MH_FALLBACK == 0 {
            return None;
        }
        for offset in 0..m {
            let roffset = (offset + ihash) % m;
            let hash = mh_hashkey(&conn.src, port, &MH_HASH1, roffset) % m;
            let i = self.slot(hash as usize).filter(|&i| i < dests.len())?;
            if dests[i].is_available() {
                return Some(i);
            }
        }
        None
    }
}

#[cfg(test)]
mod test {
    use super::super::testutil::*;
    use super::super::IP_VS_SVC_F_SCHED1;
    use super::*;
    use core::net::Ipv4Addr;

    /// `lib/siphash_kunit.c`, 64-bit: hsiphash of bytes 0..i under key
    /// 00..0f.
    const VECTORS: [u32; 64] = [
        0x050fc4dc, 0x7d57ca93, 0x4dc7d44d, 0xe7ddf7fb, 0x88d38328, 0x49533b67, 0xc59f22a7,
        0x9bb11140, 0x8d299a8e, 0x6c063de4, 0x92ff097f, 0xf94dc352, 0x57b4d9a2, 0x1229ffa7,
        0xc0f95d34, 0x2a519956, 0x7d908b66, 0x63dbd80c, 0xb473e63e, 0x8d297d1c, 0xa6cce040,
        0x2b45f844, 0xa320872e, 0xdae6c123, 0x67349c8c, 0x705b0979, 0xca9913a5, 0x4ade3b35,
        0xef6cd00d, 0x4ab1e1f4, 0x43c5e663, 0x8c21d1bc, 0x16a7b60d, 0x7a8ff9bf, 0x1f2a753e,
        0xbf186b91, 0xada26206, 0xa3c33057, 0xae3a36a1, 0x7b108392, 0x99e41531, 0x3f1ad944,
        0xc8138825, 0xc28949a6, 0xfaf8876b, 0x9f042196, 0x68b1d623, 0x8b5114fd, 0xdf074c46,
        0x12cc86b3, 0x0a52098f, 0x9d292f9a, 0xa2f41f12, 0x43a71ed0, 0x73f0bce6, 0x70a7e980,
        0x243c6d75, 0xfdb71513, 0xa67d8a08, 0xb7e8f148, 0xf7a644ee, 0x0f1837f2, 0x4b6694e0,
        0xb7bbb3a8,
    ];

    #[test]
    fn test_hsiphash_vectors() {
        let key = [0x0706_0504_0302_0100, 0x0f0e_0d0c_0b0a_0908];
        let mut input = [0u8; 64];
        for (i, b) in input.iter_mut().enumerate() {
            *b = i as u8;
        }
        for (i, v) in VECTORS.iter().enumerate() {
            assert_eq!(hsiphash(&input[..i], &key), *v, "length {i}");
        }
    }

    fn counts<const M: usize>(s: &Mh<M>, n: usize) -> heapless::Vec<usize, 8> {
        let mut c: heapless::Vec<usize, 8> = (0..n).map(|_| 0).collect();
        for slot in 0..M {
            c[s.slot(slot).unwrap()] += 1;
        }
        c
    }

    #[test]
    fn test_mh_population_counts() {
        // Equal weights claim round robin: 4093 = 3 * 1364 + 1.
        let dests = [d(1, 1), d(2, 1), d(3, 1)];
        let s: Mh = Mh::new(0, &dests);
        assert_eq!(&counts(&s, 3)[..], &[1365, 1364, 1364]);
        // Turns 2 and 1 per round: 4093 = 1364 rounds of 3, then one more for A.
        let dests = [d(1, 2), d(2, 1)];
        let s: Mh = Mh::new(0, &dests);
        assert_eq!(&counts(&s, 2)[..], &[2729, 1364]);
        // Each destination's first claim is its own offset slot when free.
        let off = mh_hashkey(&dests[0].addr, 80, &MH_HASH1, 0) as usize % 4093;
        assert_eq!(s.slot(off), Some(0));
        // M = 251 has TAB_BITS 4: weight 1000 -> fls 10, shift 6, turns 15;
        // weight 1 -> turns 1. 251 = 15 * 16 + 11.
        let dests = [d(1, 1000), d(2, 1)];
        let s: Mh<251> = Mh::new(0, &dests);
        assert_eq!(&counts(&s, 2)[..], &[236, 15]);
        // Zero last weights: empty table.
        let dests = [Dest { last_weight: 0, ..d(1, 0) }];
        let s: Mh<251> = Mh::new(0, &dests);
        assert_eq!(s.slot(0), None);
        // Not a kernel size: nothing is ever scheduled.
        let mut bad: Mh<250> = Mh::new(0, &[d(1, 1)]);
        let c = conn(Ipv4Addr::new(198, 51, 100, 7), 1);
        assert_eq!(bad.schedule(&[d(1, 1)], &c, Instant::ZERO), None);
    }

    #[test]
    fn test_mh_schedule_and_fallback() {
        let mut dests = [d(1, 1), d(2, 1), d(3, 1), d(4, 1)];
        let mut s: Mh = Mh::new(0, &dests);
        let c = conn(Ipv4Addr::new(198, 51, 100, 7), 1234);
        let ihash = mh_hashkey(&c.src, 0, &MH_HASH1, 0) as usize % 4093;
        let owner = s.slot(ihash).unwrap();
        assert_eq!(s.schedule(&dests, &c, Instant::ZERO), Some(owner));
        // The weight goes to 0 (last_weight kept): the table does not
        // change, the owner is refused, and without fallback nothing else.
        dests[owner].weight = 0;
        s.handle_change(&dests, DestChange::Updated { index: owner });
        assert_eq!(s.slot(ihash), Some(owner));
        assert_eq!(s.schedule(&dests, &c, Instant::ZERO), None);
        s.set_flags(IP_VS_SVC_F_SCHED1);
        let expect = (0..4093u32)
            .map(|o| {
                let r = (o + ihash as u32) % 4093;
                s.slot(mh_hashkey(&c.src, 0, &MH_HASH1, r) as usize % 4093).unwrap()
            })
            .find(|&i| dests[i].is_available());
        let got = s.schedule(&dests, &c, Instant::ZERO);
        assert_eq!(got, expect);
        assert_ne!(got, Some(owner));
        for x in dests.iter_mut() {
            x.overloaded = true;
        }
        assert_eq!(s.schedule(&dests, &c, Instant::ZERO), None);
    }
}
