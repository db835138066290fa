//! The Internet checksum (RFC 1071) and the IPv4/IPv6 pseudo-headers that
//! upper-layer checksums cover.
//!
//! [`data`] and the pseudo-header functions return the folded one's
//! complement *sum*; [`combine`] adds sums; the value that goes on the wire
//! is the complement of the total, `!combine(&[..])`. A buffer whose
//! checksum field is already filled in sums to `0xffff` when it is correct.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::Error;

/// Folds a 32-bit accumulator into 16 bits with end-around carry.
const fn fold(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// The one's complement sum of `bytes` taken as big-endian 16-bit words;
/// an odd last byte is padded with a zero byte.
pub fn data(bytes: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    // Eight bytes per step keep the accumulator far from overflow: four
    // words of at most 0xffff each, folded after every chunk.
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]))
            + u32::from(u16::from_be_bytes([c[2], c[3]]))
            + u32::from(u16::from_be_bytes([c[4], c[5]]))
            + u32::from(u16::from_be_bytes([c[6], c[7]]));
        sum = (sum & 0xffff) + (sum >> 16);
    }
    let mut words = chunks.remainder().chunks_exact(2);
    for w in &mut words {
        sum += u32::from(u16::from_be_bytes([w[0], w[1]]));
    }
    if let [last] = words.remainder() {
        sum += u32::from(*last) << 8;
    }
    fold(sum)
}

/// The one's complement sum of partial sums.
pub fn combine(sums: &[u16]) -> u16 {
    fold(sums.iter().map(|&s| u32::from(s)).sum())
}

/// The sum of the IPv4 pseudo-header (RFC 768 / RFC 793): source,
/// destination, a zero byte, the protocol and the upper-layer length.
pub fn pseudo_header_v4(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, len: u16) -> u16 {
    let s = src.octets();
    let d = dst.octets();
    combine(&[
        u16::from_be_bytes([s[0], s[1]]),
        u16::from_be_bytes([s[2], s[3]]),
        u16::from_be_bytes([d[0], d[1]]),
        u16::from_be_bytes([d[2], d[3]]),
        u16::from(protocol),
        len,
    ])
}

/// The sum of the IPv6 pseudo-header (RFC 8200 8.1): source, destination,
/// the 32-bit upper-layer length, three zero bytes and the next header.
pub fn pseudo_header_v6(src: &Ipv6Addr, dst: &Ipv6Addr, next_header: u8, len: u32) -> u16 {
    combine(&[
        data(&src.octets()),
        data(&dst.octets()),
        (len >> 16) as u16,
        len as u16,
        u16::from(next_header),
    ])
}

/// The pseudo-header sum for either family.
///
/// # Errors
/// [`Error::AddressFamily`] when `src` and `dst` are of different families;
/// [`Error::Truncated`] when an IPv4 `len` does not fit 16 bits.
pub fn pseudo_header(src: &IpAddr, dst: &IpAddr, protocol: u8, len: u32) -> Result<u16, Error> {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let len = u16::try_from(len).map_err(|_| Error::Truncated)?;
            Ok(pseudo_header_v4(*s, *d, protocol, len))
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => Ok(pseudo_header_v6(s, d, protocol, len)),
        _ => Err(Error::AddressFamily),
    }
}

/// The checksum field value for `bytes` (whose own checksum field must be
/// zero): the complement of their sum.
pub fn internet_checksum(bytes: &[u8]) -> u16 {
    !data(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_checksum_rfc1071_example() {
        // RFC 1071 section 3 example: the sum of 0001 f203 f4f5 f6f7 is ddf2.
        let b = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(data(&b), 0xddf2);
        assert_eq!(internet_checksum(&b), !0xddf2);
    }

    #[test]
    fn test_checksum_odd_and_chunked() {
        assert_eq!(data(&[]), 0);
        assert_eq!(data(&[0xab]), 0xab00);
        assert_eq!(data(&[0x12, 0x34, 0x56]), 0x1234 + 0x5600);
        // A long run of 0xff words folds to 0xffff, not zero; the odd
        // last byte then adds 0xff00, which is -0x00ff.
        assert_eq!(data(&[0xff; 1000]), 0xffff);
        assert_eq!(data(&[0xff; 1001]), 0xff00);
        // The chunked loop agrees with a naive word sum.
        let bytes: [u8; 37] = core::array::from_fn(|i| (i * 37 + 11) as u8);
        let mut naive: u32 = 0;
        for w in bytes.chunks(2) {
            let hi = u32::from(w[0]) << 8;
            naive += hi | w.get(1).map_or(0, |&b| u32::from(b));
        }
        assert_eq!(data(&bytes), fold(naive));
    }

    #[test]
    fn test_checksum_ipv4_header() {
        // The IPv4 header of the vrrpv2-advert fixture: its checksum d02d
        // makes the header sum to ffff.
        let h = [
            0x45, 0xc0, 0x00, 0x28, 0x00, 0x02, 0x00, 0x00, 0xff, 0x70, 0xd0, 0x2d, 0x0a, 0x63,
            0x00, 0x01, 0xe0, 0x00, 0x00, 0x12,
        ];
        assert_eq!(data(&h), 0xffff);
    }

    #[test]
    fn test_pseudo_header_families() {
        let v4 = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
        let v6 = IpAddr::V6(Ipv6Addr::LOCALHOST);
        assert_eq!(pseudo_header(&v4, &v6, 112, 8), Err(Error::AddressFamily));
        assert_eq!(pseudo_header(&v4, &v4, 112, 70_000), Err(Error::Truncated));
        assert_eq!(
            pseudo_header(&v4, &v4, 112, 8),
            Ok(combine(&[0x0a00, 0x0001, 0x0a00, 0x0001, 112, 8]))
        );
        assert_eq!(
            pseudo_header(&v6, &v6, 58, 0x0001_0002),
            Ok(combine(&[1, 1, 1, 2, 58]))
        );
    }
}
