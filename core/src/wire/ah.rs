//! The IP Authentication Header (RFC 2402) as VRRPv2 uses it (RFC 2338
//! §5.3.6.2, keepalived's `auth_type AH`).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! | Next Header   |  Payload Len  |          RESERVED             |
//! |                 Security Parameters Index (SPI)               |
//! |                    Sequence Number Field                      |
//! |          Integrity Check Value, 12 bytes (HMAC-MD5-96)        |
//! ```
//!
//! An advert is one IPv4 datagram: the IPv4 header with protocol 51, this
//! 24-byte header (next header 112, payload length 4), then the VRRPv2
//! message with authentication type 2 and eight zero bytes of
//! authentication data. What keepalived does, and what these functions do:
//!
//! - the SPI is the IPv4 source address; the receiver checks it;
//! - the sequence number counts the sender's adverts from 1, and the
//!   receiver takes a message only if its number is above the last one it
//!   took (the instance keeps that counter, [`crate::vrrp::Instance`]);
//! - the ICV is HMAC-MD5 (RFC 2104) truncated to 96 bits, keyed with the
//!   `auth_pass` as the VRRPv2 authentication data stores it (8 bytes,
//!   zero-padded), over the IPv4 header with the TOS, flags / fragment
//!   offset and checksum zeroed, this header with the ICV zeroed, and the
//!   VRRP message. The TTL is covered as sent (255) for multicast, and
//!   zeroed too for unicast peers;
//! - the IP identification is not zero (a raw socket's kernel would fill a
//!   zero in after the ICV was computed); the IP total length covers the
//!   header as well.
//!
//! The header itself parses and emits without the `ah` feature; computing
//! and checking the ICV needs it (and the `hmac` and `md-5` crates).

#[cfg(feature = "ah")]
use core::net::{IpAddr, Ipv4Addr};

use super::ip::IPV4_HEADER_LEN;
#[cfg(feature = "ah")]
use super::ip::{IpHeader, TOS_NETWORK_CONTROL};
#[cfg(feature = "ah")]
use super::{ChecksumMode, VrrpAuth, VrrpPacket, VRRP_PROTO, VRRP_TTL};
use super::{Error, VrrpRepr};

/// IP protocol number of the Authentication Header.
pub const AH_PROTO: u8 = 51;
/// Length of the header VRRP uses: 12 fixed bytes and a 12-byte ICV.
pub const AH_HEADER_LEN: usize = 24;
/// Length of the HMAC-MD5-96 integrity check value.
pub const AH_ICV_LEN: usize = 12;
/// The payload length field of a 24-byte header: its length in 32-bit
/// words, minus 2.
pub const AH_PAYLOAD_LEN: u8 = 4;

mod field {
    use core::ops::Range;
    pub const NEXT_HEADER: usize = 0;
    pub const PAYLOAD_LEN: usize = 1;
    pub const RESERVED: Range<usize> = 2..4;
    pub const SPI: Range<usize> = 4..8;
    pub const SEQ: Range<usize> = 8..12;
    pub const ICV: Range<usize> = 12..24;
}

fn u32_at(b: &[u8], r: core::ops::Range<usize>) -> u32 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&b[r]);
    u32::from_be_bytes(w)
}

/// A view of an Authentication Header at the start of a buffer (the IPv4
/// payload).
///
/// Once [`AhPacket::check_len`] has passed, no accessor panics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AhPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> AhPacket<T> {
    /// Wraps a buffer without checking its length.
    pub const fn new_unchecked(buffer: T) -> Self {
        AhPacket { buffer }
    }

    /// Wraps a buffer after [`Self::check_len`].
    ///
    /// # Errors
    /// [`Error::Truncated`] when the 24-byte header does not fit.
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Checks that the buffer holds the 24-byte header VRRP uses.
    ///
    /// # Errors
    /// [`Error::Truncated`] when it does not.
    pub fn check_len(&self) -> Result<(), Error> {
        if self.buffer.as_ref().len() < AH_HEADER_LEN {
            Err(Error::Truncated)
        } else {
            Ok(())
        }
    }

    /// Gives the buffer back.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The protocol of the payload (112 for VRRP).
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[field::NEXT_HEADER]
    }

    /// The header length in 32-bit words minus 2 (4 for VRRP's).
    pub fn payload_len(&self) -> u8 {
        self.buffer.as_ref()[field::PAYLOAD_LEN]
    }

    /// The reserved field (zero when sent, ignored when received).
    pub fn reserved(&self) -> u16 {
        let b = &self.buffer.as_ref()[field::RESERVED];
        u16::from_be_bytes([b[0], b[1]])
    }

    /// The Security Parameters Index (keepalived: the sender's address).
    pub fn spi(&self) -> u32 {
        u32_at(self.buffer.as_ref(), field::SPI)
    }

    /// The sequence number.
    pub fn seq_number(&self) -> u32 {
        u32_at(self.buffer.as_ref(), field::SEQ)
    }

    /// The integrity check value.
    pub fn icv(&self) -> &[u8] {
        &self.buffer.as_ref()[field::ICV]
    }

    /// What follows the header (the VRRP message).
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[AH_HEADER_LEN..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> AhPacket<T> {
    /// Sets the next header field.
    pub fn set_next_header(&mut self, v: u8) {
        self.buffer.as_mut()[field::NEXT_HEADER] = v;
    }

    /// Sets the payload length field.
    pub fn set_payload_len(&mut self, v: u8) {
        self.buffer.as_mut()[field::PAYLOAD_LEN] = v;
    }

    /// Sets the reserved field.
    pub fn set_reserved(&mut self, v: u16) {
        self.buffer.as_mut()[field::RESERVED].copy_from_slice(&v.to_be_bytes());
    }

    /// Sets the SPI.
    pub fn set_spi(&mut self, v: u32) {
        self.buffer.as_mut()[field::SPI].copy_from_slice(&v.to_be_bytes());
    }

    /// Sets the sequence number.
    pub fn set_seq_number(&mut self, v: u32) {
        self.buffer.as_mut()[field::SEQ].copy_from_slice(&v.to_be_bytes());
    }

    /// The integrity check value, mutably.
    pub fn icv_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::ICV]
    }
}

/// A parsed Authentication Header (its ICV is checked separately, with the
/// key: [`verify_ipv4`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct AhRepr {
    /// The protocol of the payload.
    pub next_header: u8,
    /// The Security Parameters Index.
    pub spi: u32,
    /// The sequence number.
    pub seq_number: u32,
}

impl AhRepr {
    /// Parses the header.
    ///
    /// # Errors
    /// [`Error::Truncated`] for a buffer shorter than 24 bytes;
    /// [`Error::Malformed`] for a payload length other than 4 (an ICV other
    /// than the 96 bits of HMAC-MD5-96).
    pub fn parse<T: AsRef<[u8]> + ?Sized>(packet: &AhPacket<&T>) -> Result<AhRepr, Error> {
        packet.check_len()?;
        if packet.payload_len() != AH_PAYLOAD_LEN {
            return Err(Error::Malformed);
        }
        Ok(AhRepr {
            next_header: packet.next_header(),
            spi: packet.spi(),
            seq_number: packet.seq_number(),
        })
    }

    /// The length of the emitted header: 24.
    pub const fn buffer_len(&self) -> usize {
        AH_HEADER_LEN
    }

    /// Writes the header with a zero ICV into the first 24 bytes of the
    /// buffer ([`seal_ipv4`] fills the ICV in once the datagram is complete).
    ///
    /// # Errors
    /// [`Error::Truncated`] when the buffer is shorter than 24 bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]> + ?Sized>(
        &self,
        packet: &mut AhPacket<&mut T>,
    ) -> Result<(), Error> {
        packet.check_len()?;
        packet.set_next_header(self.next_header);
        packet.set_payload_len(AH_PAYLOAD_LEN);
        packet.set_reserved(0);
        packet.set_spi(self.spi);
        packet.set_seq_number(self.seq_number);
        packet.icv_mut().fill(0);
        Ok(())
    }
}

/// Where the parts of an IPv4 datagram carrying an Authentication Header
/// are: `(header length, datagram length)`, the AH at the first, the
/// datagram ending at the second (the total length; link padding after it
/// is not part of it).
///
/// # Errors
/// [`Error::Truncated`] when the buffer is shorter than the IPv4 header, the
/// total length or the AH need; [`Error::Malformed`] for another IP version,
/// a header length below 20 or a protocol other than 51.
pub fn ipv4_layout(packet: &[u8]) -> Result<(usize, usize), Error> {
    let first = *packet.first().ok_or(Error::Truncated)?;
    if first >> 4 != 4 {
        return Err(Error::Malformed);
    }
    let ihl = usize::from(first & 0x0f) * 4;
    if ihl < 20 {
        return Err(Error::Malformed);
    }
    if packet.len() < ihl {
        return Err(Error::Truncated);
    }
    if packet[9] != AH_PROTO {
        return Err(Error::Malformed);
    }
    let total = usize::from(u16::from_be_bytes([packet[2], packet[3]]));
    if total > packet.len() || total < ihl + AH_HEADER_LEN {
        return Err(Error::Truncated);
    }
    Ok((ihl, total))
}

/// The length of a whole IPv4 datagram carrying `vrrp` behind an AH:
/// 20 + 24 + [`VrrpRepr::buffer_len`].
pub fn ipv4_advert_len(vrrp: &VrrpRepr<'_>) -> usize {
    IPV4_HEADER_LEN + AH_HEADER_LEN + vrrp.buffer_len()
}

/// Writes a whole IPv4 datagram carrying the VRRPv2 advert `vrrp` behind an
/// Authentication Header, as keepalived sends it, into the first
/// [`ipv4_advert_len`] bytes of `buf`: TOS 0xc0, TTL 255, no fragment flags,
/// identification `ident` (0 is sent as 1), protocol 51; SPI `src`,
/// sequence number `seq`; the ICV keyed with the key of `vrrp.auth`
/// ([`VrrpAuth::Ah`]). `zero_ttl`: as [`ipv4_icv`] (unicast peers).
///
/// # Errors
/// [`Error::AuthType`] when `vrrp.auth` is not AH; [`Error::Truncated`]
/// for a short buffer; what [`VrrpRepr::emit`] refuses.
#[cfg(feature = "ah")]
#[allow(clippy::too_many_arguments)]
pub fn emit_ipv4_advert(
    buf: &mut [u8],
    vrrp: &VrrpRepr<'_>,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    ident: u16,
    seq: u32,
    zero_ttl: bool,
) -> Result<usize, Error> {
    let VrrpAuth::Ah(key) = vrrp.auth else {
        return Err(Error::AuthType(u8::from(vrrp.auth.auth_type())));
    };
    let len = ipv4_advert_len(vrrp);
    let buf = buf.get_mut(..len).ok_or(Error::Truncated)?;
    let (s, d) = (IpAddr::V4(src), IpAddr::V4(dst));
    vrrp.emit(
        &mut VrrpPacket::new_unchecked(&mut buf[IPV4_HEADER_LEN + AH_HEADER_LEN..]),
        s,
        d,
        ChecksumMode::Rfc,
    )?;
    let ah = AhRepr { next_header: VRRP_PROTO, spi: u32::from(src), seq_number: seq };
    ah.emit(&mut AhPacket::new_unchecked(&mut buf[IPV4_HEADER_LEN..]))?;
    let ip = IpHeader {
        src: s,
        dst: d,
        protocol: AH_PROTO,
        hop_limit: VRRP_TTL,
        tos: TOS_NETWORK_CONTROL,
        ident: u32::from(ident.max(1)),
        dont_frag: false,
        payload_len: len - IPV4_HEADER_LEN,
    };
    ip.emit(buf)?;
    seal_ipv4(buf, &key, zero_ttl)?;
    Ok(len)
}

#[cfg(feature = "ah")]
mod icv {
    use hmac::{Hmac, Mac};
    use md5::Md5;

    use super::{ipv4_layout, Error, AH_HEADER_LEN, AH_ICV_LEN};

    type HmacMd5 = Hmac<Md5>;

    /// The MAC over `datagram` (its layout checked), not yet finalised.
    fn mac(datagram: &[u8], key: &[u8], zero_ttl: bool) -> Result<HmacMd5, Error> {
        let (ihl, total) = ipv4_layout(datagram)?;
        // Any key length is valid for HMAC.
        let mut mac = HmacMd5::new_from_slice(key).map_err(|_| Error::Malformed)?;
        // The mutable fields of the IPv4 header count as zero (RFC 2402
        // §3.3.3.1.1.1), as keepalived zeroes them; options are covered as
        // they are.
        let mut fixed = [0u8; 20];
        fixed.copy_from_slice(&datagram[..20]);
        fixed[1] = 0; // TOS
        fixed[6] = 0; // flags, fragment offset
        fixed[7] = 0;
        if zero_ttl {
            fixed[8] = 0;
        }
        fixed[10] = 0; // header checksum
        fixed[11] = 0;
        mac.update(&fixed);
        mac.update(&datagram[20..ihl]);
        let ah = &datagram[ihl..ihl + AH_HEADER_LEN];
        mac.update(&ah[..AH_HEADER_LEN - AH_ICV_LEN]);
        mac.update(&[0u8; AH_ICV_LEN]);
        mac.update(&datagram[ihl + AH_HEADER_LEN..total]);
        Ok(mac)
    }

    /// The HMAC-MD5-96 ICV of a whole IPv4 datagram with an Authentication
    /// Header (whatever its ICV field holds), keyed with `key`. `zero_ttl`:
    /// the TTL counts as zero (keepalived's unicast adverts), else as sent.
    ///
    /// # Errors
    /// As [`ipv4_layout`].
    pub fn ipv4_icv(datagram: &[u8], key: &[u8], zero_ttl: bool) -> Result<[u8; AH_ICV_LEN], Error> {
        let tag = mac(datagram, key, zero_ttl)?.finalize().into_bytes();
        let mut icv = [0u8; AH_ICV_LEN];
        icv.copy_from_slice(&tag[..AH_ICV_LEN]);
        Ok(icv)
    }

    /// Computes the ICV of a complete datagram and writes it into its AH.
    ///
    /// # Errors
    /// As [`ipv4_layout`].
    pub fn seal_ipv4(datagram: &mut [u8], key: &[u8], zero_ttl: bool) -> Result<(), Error> {
        let icv = ipv4_icv(datagram, key, zero_ttl)?;
        let (ihl, _) = ipv4_layout(datagram)?;
        datagram[ihl + AH_HEADER_LEN - AH_ICV_LEN..ihl + AH_HEADER_LEN].copy_from_slice(&icv);
        Ok(())
    }

    /// Checks the ICV of a received datagram in constant time.
    ///
    /// # Errors
    /// As [`ipv4_layout`], and [`Error::AhIcv`] when the ICV does not match
    /// (another key, or a changed packet).
    pub fn verify_ipv4(datagram: &[u8], key: &[u8], zero_ttl: bool) -> Result<(), Error> {
        let m = mac(datagram, key, zero_ttl)?;
        let (ihl, _) = ipv4_layout(datagram)?;
        let icv = &datagram[ihl + AH_HEADER_LEN - AH_ICV_LEN..ihl + AH_HEADER_LEN];
        m.verify_truncated_left(icv).map_err(|_| Error::AhIcv)
    }
}

#[cfg(feature = "ah")]
pub use icv::{ipv4_icv, seal_ipv4, verify_ipv4};

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec::Vec;

    use super::*;
    use crate::wire::ethernet::HEADER_LEN as ETH;
    use crate::wire::test_util::hex;

    const MCAST: &str = include_str!("../../../tests/fixtures/pcap/vrrpv2-ah.hex");
    const UNICAST: &str = include_str!("../../../tests/fixtures/pcap/vrrpv2-ah-unicast.hex");

    /// The IPv4 datagram of a captured frame.
    fn datagram(h: &str) -> Vec<u8> {
        hex(h)[ETH..].to_vec()
    }

    #[test]
    fn test_parse_keepalived_header() {
        let d = datagram(MCAST);
        let (ihl, total) = ipv4_layout(&d).unwrap();
        assert_eq!((ihl, total), (20, 64));
        let p = AhPacket::new_checked(&d[ihl..total]).unwrap();
        let r = AhRepr::parse(&p).unwrap();
        assert_eq!(r.next_header, crate::wire::VRRP_PROTO);
        // keepalived's SPI is its source address, 10.99.0.1.
        assert_eq!(r.spi, 0x0a63_0001);
        assert_eq!(r.seq_number, 1);
        assert_eq!(p.payload_len(), AH_PAYLOAD_LEN);
        assert_eq!(p.reserved(), 0);
        assert_eq!(p.payload().len(), 20);
        assert_eq!(p.icv().len(), AH_ICV_LEN);
    }

    #[test]
    fn test_emit_matches_capture_but_icv() {
        let d = datagram(MCAST);
        let r = AhRepr::parse(&AhPacket::new_checked(&d[20..]).unwrap()).unwrap();
        let mut out = [0xffu8; AH_HEADER_LEN];
        r.emit(&mut AhPacket::new_unchecked(&mut out[..])).unwrap();
        assert_eq!(&out[..12], &d[20..32]);
        assert_eq!(&out[12..], &[0u8; 12]);
        assert_eq!(r.buffer_len(), AH_HEADER_LEN);
        let mut short = [0u8; 23];
        assert_eq!(r.emit(&mut AhPacket::new_unchecked(&mut short[..])), Err(Error::Truncated));
    }

    #[test]
    fn test_parse_rejects_bad_input() {
        let d = datagram(MCAST);
        for n in 0..AH_HEADER_LEN {
            assert_eq!(AhPacket::new_checked(&d[20..20 + n]).unwrap_err(), Error::Truncated);
        }
        let mut bad = d.clone();
        bad[21] = 5;
        assert_eq!(AhRepr::parse(&AhPacket::new_unchecked(&bad[20..])), Err(Error::Malformed));
        // Layout: another protocol, a short total length, IPv6, a runt.
        let mut vrrp = d.clone();
        vrrp[9] = 112;
        assert_eq!(ipv4_layout(&vrrp), Err(Error::Malformed));
        let mut short = d.clone();
        short[3] = 40;
        assert_eq!(ipv4_layout(&short), Err(Error::Truncated));
        assert_eq!(ipv4_layout(&d[..50]), Err(Error::Truncated));
        assert_eq!(ipv4_layout(&[0x60; 40]), Err(Error::Malformed));
        assert_eq!(ipv4_layout(&[0x44; 40]), Err(Error::Malformed));
        assert_eq!(ipv4_layout(&[]), Err(Error::Truncated));
    }

    #[test]
    fn test_mutations_never_panic() {
        use crate::wire::test_util::XorShift;
        let mut rng = XorShift(0x5eed_a11d);
        for base in [datagram(MCAST), datagram(UNICAST)] {
            for _ in 0..5000 {
                let mut b = base.clone();
                for _ in 0..1 + rng.below(4) {
                    let at = rng.below(b.len());
                    b[at] = rng.next() as u8;
                }
                b.truncate(rng.below(b.len() + 1));
                if let Ok((ihl, total)) = ipv4_layout(&b) {
                    assert!(ihl + AH_HEADER_LEN <= total && total <= b.len());
                    let p = AhPacket::new_checked(&b[ihl..total]).expect("the layout leaves room for the AH");
                    let _ = (p.next_header(), p.payload_len(), p.reserved(), p.spi(), p.seq_number(), p.icv(), p.payload());
                    let _ = AhRepr::parse(&p);
                    #[cfg(feature = "ah")]
                    let _ = verify_ipv4(&b, b"secret12", false);
                }
            }
        }
    }

    #[cfg(feature = "ah")]
    mod icv {
        use super::*;

        #[test]
        fn test_icv_of_keepalived_multicast_advert() {
            let d = datagram(MCAST);
            // keepalived's key: auth_pass 'secret12'; the TTL is covered.
            assert_eq!(&ipv4_icv(&d, b"secret12", false).unwrap()[..], &d[32..44]);
            verify_ipv4(&d, b"secret12", false).unwrap();
            assert_eq!(verify_ipv4(&d, b"secret12", true), Err(Error::AhIcv));
            assert_eq!(verify_ipv4(&d, b"secret13", false), Err(Error::AhIcv));
        }

        #[test]
        fn test_icv_of_keepalived_unicast_advert() {
            let d = datagram(UNICAST);
            // auth_pass 'abc' as keepalived stores it, zero-padded to 8
            // bytes (the same HMAC key as 'abc', HMAC pads with zeros too).
            verify_ipv4(&d, b"abc\0\0\0\0\0", true).unwrap();
            verify_ipv4(&d, b"abc", true).unwrap();
            // Unicast zeroes the TTL.
            assert_eq!(verify_ipv4(&d, b"abc\0\0\0\0\0", false), Err(Error::AhIcv));
        }

        #[test]
        fn test_mutable_fields_do_not_count() {
            let d = datagram(MCAST);
            let mut m = d.clone();
            m[1] = 0x10; // TOS
            m[6] = 0x40; // DF
            m[10] ^= 0xff; // checksum
            verify_ipv4(&m, b"secret12", false).unwrap();
            let mut t = d.clone();
            t[8] = 254; // the TTL counts for multicast...
            assert_eq!(verify_ipv4(&t, b"secret12", false), Err(Error::AhIcv));
            // ... and the rest does: the id, the SPI, the sequence, the VRRP message.
            for at in [4, 12, 16, 24, 28, 44, 46, 63] {
                let mut c = d.clone();
                c[at] ^= 1;
                assert_eq!(verify_ipv4(&c, b"secret12", false), Err(Error::AhIcv), "byte {at}");
            }
        }

        fn advert<'a>(vrid: u8, vips: &'a [IpAddr], pass: &[u8]) -> VrrpRepr<'a> {
            VrrpRepr {
                version: crate::wire::VrrpVersion::V2,
                vrid,
                priority: 150,
                max_adver_int: 100,
                auth: VrrpAuth::ah(pass),
                addresses: crate::wire::VrrpAddresses::List(vips),
            }
        }

        #[test]
        fn test_emit_advert_is_keepalived_byte_for_byte() {
            let src = Ipv4Addr::new(10, 99, 0, 1);
            let vips = [IpAddr::V4(Ipv4Addr::new(10, 99, 0, 50))];
            let repr = advert(7, &vips, b"secret12");
            let mut out = [0u8; 64];
            assert_eq!(ipv4_advert_len(&repr), 64);
            let n = emit_ipv4_advert(&mut out, &repr, src, crate::wire::VRRP_MCAST_V4, 1, 1, false).unwrap();
            assert_eq!(n, 64);
            assert_eq!(&out[..], &datagram(MCAST)[..]);
            // Unicast: TTL zeroed in the ICV, the key 'abc' zero-padded.
            let vips = [IpAddr::V4(Ipv4Addr::new(10, 99, 0, 60))];
            let repr = advert(8, &vips, b"abc");
            emit_ipv4_advert(&mut out, &repr, src, Ipv4Addr::new(10, 99, 0, 2), 1, 1, true).unwrap();
            assert_eq!(&out[..], &datagram(UNICAST)[..]);
            // The VRRP message inside parses back, with type AH and zero data.
            let (h, payload) = crate::wire::ip::IpHeader::parse(&out).unwrap();
            assert_eq!(h.protocol, AH_PROTO);
            let p = VrrpPacket::new_checked(&payload[AH_HEADER_LEN..]).unwrap();
            let back = VrrpRepr::parse(&p, h.src, h.dst, ChecksumMode::Rfc).unwrap();
            assert_eq!(back.auth, VrrpAuth::Ah([0; 8]));
        }

        #[test]
        fn test_emit_advert_errors() {
            let vips = [IpAddr::V4(Ipv4Addr::new(10, 99, 0, 50))];
            let mut repr = advert(7, &vips, b"x");
            let (s, d) = (Ipv4Addr::new(10, 0, 0, 1), crate::wire::VRRP_MCAST_V4);
            let mut out = [0u8; 64];
            assert_eq!(emit_ipv4_advert(&mut out[..63], &repr, s, d, 1, 1, false), Err(Error::Truncated));
            // Identification 0 would be filled in by the kernel after the ICV: sent as 1.
            emit_ipv4_advert(&mut out, &repr, s, d, 0, 1, false).unwrap();
            assert_eq!(&out[4..6], &[0, 1]);
            repr.auth = VrrpAuth::simple(b"x");
            assert_eq!(emit_ipv4_advert(&mut out, &repr, s, d, 1, 1, false), Err(Error::AuthType(1)));
        }

        #[test]
        fn test_seal_reproduces_capture() {
            let d = datagram(MCAST);
            let mut s = d.clone();
            s[32..44].fill(0xee);
            seal_ipv4(&mut s, b"secret12", false).unwrap();
            assert_eq!(s, d);
            let u = datagram(UNICAST);
            let mut s = u.clone();
            s[32..44].fill(0);
            seal_ipv4(&mut s, b"abc\0\0\0\0\0", true).unwrap();
            assert_eq!(s, u);
            let mut runt = [0x45u8; 30];
            assert!(seal_ipv4(&mut runt, b"k", false).is_err());
        }
    }
}
