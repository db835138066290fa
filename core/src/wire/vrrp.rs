//! VRRP advertisements: version 2 (RFC 3768) and version 3 (RFC 5798, as
//! updated by RFC 9568).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! |Version| Type  | Virtual Rtr ID|   Priority    | Count IPvX Addr|
//! v2: |  Auth Type    |   Adver Int   |          Checksum           |
//! v3: |(rsvd) |     Max Adver Int     |          Checksum           |
//! |                 IPvX Address(es), 4 or 16 bytes each          |
//! v2: |             Authentication Data, 8 bytes                    |
//! ```
//!
//! The VRRPv2 checksum covers the VRRP message alone. The VRRPv3 checksum
//! also covers the IPv4 or IPv6 pseudo-header, so parse and emit take the
//! IP source and destination. Some implementations leave the IPv4
//! pseudo-header out of the VRRPv3 checksum; [`ChecksumMode`] selects that
//! behaviour for interoperating with them.

use core::iter::FusedIterator;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{checksum, Error, VRRP_PROTO};

/// Length of the fixed VRRP header, before the addresses.
pub const VRRP_HEADER_LEN: usize = 8;
/// Length of the VRRPv2 authentication data after the addresses.
pub const VRRP_V2_AUTH_LEN: usize = 8;

const V4_LEN: usize = 4;
const V6_LEN: usize = 16;

const fn addr_len(ipv6: bool) -> usize {
    if ipv6 {
        V6_LEN
    } else {
        V4_LEN
    }
}

mod field {
    use core::ops::Range;
    pub const VER_TYPE: usize = 0;
    pub const VRID: usize = 1;
    pub const PRIORITY: usize = 2;
    pub const COUNT: usize = 3;
    /// v2: auth type; v3: reserved nibble and the top 4 interval bits.
    pub const AUTH_TYPE: usize = 4;
    /// v2: advert interval in seconds.
    pub const ADVER_INT: usize = 5;
    /// v3: reserved (4 bits) and max advert interval (12 bits).
    pub const MAX_ADVER_INT: Range<usize> = 4..6;
    pub const CHECKSUM: Range<usize> = 6..8;
    pub const ADDRESSES: usize = 8;
}

/// The VRRP protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum VrrpVersion {
    /// VRRPv2, RFC 3768: IPv4 only, interval in seconds, optional
    /// simple-text authentication.
    V2,
    /// VRRPv3, RFC 5798 / RFC 9568: IPv4 and IPv6, interval in
    /// centiseconds, no authentication.
    V3,
}

impl VrrpVersion {
    /// The value of the version field, 2 or 3.
    pub const fn number(self) -> u8 {
        match self {
            VrrpVersion::V2 => 2,
            VrrpVersion::V3 => 3,
        }
    }
}

impl TryFrom<u8> for VrrpVersion {
    type Error = Error;

    /// # Errors
    /// [`Error::Version`] for anything but 2 and 3.
    fn try_from(v: u8) -> Result<Self, Error> {
        match v {
            2 => Ok(VrrpVersion::V2),
            3 => Ok(VrrpVersion::V3),
            other => Err(Error::Version(other)),
        }
    }
}

/// The VRRP message type field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum VrrpMessageType {
    /// ADVERTISEMENT (1), the only type defined.
    Advertisement,
    /// Any other value.
    Unknown(u8),
}

impl From<u8> for VrrpMessageType {
    fn from(v: u8) -> Self {
        match v {
            1 => VrrpMessageType::Advertisement,
            other => VrrpMessageType::Unknown(other),
        }
    }
}

impl From<VrrpMessageType> for u8 {
    fn from(v: VrrpMessageType) -> Self {
        match v {
            VrrpMessageType::Advertisement => 1,
            VrrpMessageType::Unknown(other) => other,
        }
    }
}

/// The VRRPv2 authentication type field (RFC 3768 5.3.6, RFC 2338 5.3.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum VrrpAuthType {
    /// 0: no authentication.
    None,
    /// 1: simple text password (RFC 2338; kept by keepalived's `PASS`).
    Simple,
    /// 2: IP Authentication Header (RFC 2338; keepalived's `AH`).
    Ah,
    /// Any other value.
    Unknown(u8),
}

impl From<u8> for VrrpAuthType {
    fn from(v: u8) -> Self {
        match v {
            0 => VrrpAuthType::None,
            1 => VrrpAuthType::Simple,
            2 => VrrpAuthType::Ah,
            other => VrrpAuthType::Unknown(other),
        }
    }
}

impl From<VrrpAuthType> for u8 {
    fn from(v: VrrpAuthType) -> Self {
        match v {
            VrrpAuthType::None => 0,
            VrrpAuthType::Simple => 1,
            VrrpAuthType::Ah => 2,
            VrrpAuthType::Unknown(other) => other,
        }
    }
}

/// VRRPv2 authentication of an advertisement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum VrrpAuth {
    /// No authentication; always the case for VRRPv3.
    #[default]
    None,
    /// A simple-text password of exactly 8 bytes, zero-padded.
    Simple([u8; 8]),
    /// IPsec AH (RFC 2338 §5.3.6.2, keepalived's `AH`): the VRRP message
    /// carries authentication type 2 and zero authentication data; an
    /// Authentication Header in front of it ([`crate::wire::ah`]) carries
    /// the HMAC-MD5-96 ICV. To emit (and in a config) this holds the key,
    /// the `auth_pass` as [`VrrpAuth::ah`] stores it; parsed, it holds zeros:
    /// the message's 8 authentication data bytes carry nothing under AH (the
    /// key never goes on the wire, keepalived sends zeros), so a parsed
    /// message emits as it parsed. It says nothing about the ICV, which is
    /// checked at the IP layer before.
    Ah([u8; 8]),
}

impl VrrpAuth {
    /// A simple-text password as keepalived builds it: truncated to 8 bytes,
    /// or padded with zero bytes to 8.
    pub fn simple(pass: &[u8]) -> Self {
        let mut data = [0u8; 8];
        let n = pass.len().min(8);
        data[..n].copy_from_slice(&pass[..n]);
        VrrpAuth::Simple(data)
    }

    /// An AH key as keepalived stores the `auth_pass`: truncated to 8
    /// bytes, or padded with zero bytes to 8.
    pub fn ah(pass: &[u8]) -> Self {
        match Self::simple(pass) {
            VrrpAuth::Simple(d) => VrrpAuth::Ah(d),
            other => other,
        }
    }

    /// The authentication type this value is sent with.
    pub const fn auth_type(&self) -> VrrpAuthType {
        match self {
            VrrpAuth::None => VrrpAuthType::None,
            VrrpAuth::Simple(_) => VrrpAuthType::Simple,
            VrrpAuth::Ah(_) => VrrpAuthType::Ah,
        }
    }

    /// The 8 bytes of authentication data on the wire (zeros for `None`
    /// and for AH, whose key never goes on the wire).
    pub const fn data(&self) -> [u8; 8] {
        match self {
            VrrpAuth::None | VrrpAuth::Ah(_) => [0; 8],
            VrrpAuth::Simple(d) => *d,
        }
    }
}

/// How the VRRPv3 checksum over IPv4 is computed.
///
/// VRRPv2 checksums never cover a pseudo-header and VRRPv3 over IPv6
/// always does; the mode only changes VRRPv3 over IPv4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ChecksumMode {
    /// As RFC 5798 / RFC 9568 specify: the IPv4 pseudo-header is included.
    #[default]
    Rfc,
    /// The IPv4 pseudo-header is left out, as some vendors do; for
    /// interoperating with them only.
    V3Ipv4NoPseudoHeader,
}

/// A view of a VRRP message (v2 or v3) in a buffer: the IP payload.
///
/// Once [`VrrpPacket::check_len`] has passed, no accessor panics. The
/// variable part (addresses, v2 authentication data) depends on the address
/// family, which the packet does not carry, so its accessors take the family
/// and return `None` when the buffer is too short for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VrrpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> VrrpPacket<T> {
    /// Wraps a buffer without checking its length.
    pub const fn new_unchecked(buffer: T) -> Self {
        VrrpPacket { buffer }
    }

    /// Wraps a buffer after [`Self::check_len`].
    ///
    /// # Errors
    /// [`Error::Truncated`] when the fixed header does not fit.
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Checks that the buffer holds the 8-byte fixed header, so that no
    /// field accessor panics.
    ///
    /// # Errors
    /// [`Error::Truncated`] when it does not.
    pub fn check_len(&self) -> Result<(), Error> {
        if self.buffer.as_ref().len() < VRRP_HEADER_LEN {
            Err(Error::Truncated)
        } else {
            Ok(())
        }
    }

    /// Gives the buffer back.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The version field (2 or 3 when valid).
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_TYPE] >> 4
    }

    /// The type field.
    pub fn msg_type(&self) -> VrrpMessageType {
        VrrpMessageType::from(self.buffer.as_ref()[field::VER_TYPE] & 0x0f)
    }

    /// The virtual router identifier.
    pub fn vrid(&self) -> u8 {
        self.buffer.as_ref()[field::VRID]
    }

    /// The sender's priority; 0 means the master is leaving.
    pub fn priority(&self) -> u8 {
        self.buffer.as_ref()[field::PRIORITY]
    }

    /// The number of addresses the message says it carries.
    pub fn count_ip_addrs(&self) -> u8 {
        self.buffer.as_ref()[field::COUNT]
    }

    /// VRRPv2: the authentication type.
    pub fn auth_type(&self) -> VrrpAuthType {
        VrrpAuthType::from(self.buffer.as_ref()[field::AUTH_TYPE])
    }

    /// VRRPv2: the advertisement interval, in seconds.
    pub fn adver_int(&self) -> u8 {
        self.buffer.as_ref()[field::ADVER_INT]
    }

    /// VRRPv3: the reserved bits in front of the interval (zero when sent,
    /// ignored when received).
    pub fn rsvd(&self) -> u8 {
        self.buffer.as_ref()[field::AUTH_TYPE] >> 4
    }

    /// VRRPv3: the maximum advertisement interval, in centiseconds (12 bits).
    pub fn max_adver_int(&self) -> u16 {
        let b = &self.buffer.as_ref()[field::MAX_ADVER_INT];
        u16::from_be_bytes([b[0], b[1]]) & 0x0fff
    }

    /// The checksum field.
    pub fn checksum(&self) -> u16 {
        let b = &self.buffer.as_ref()[field::CHECKSUM];
        u16::from_be_bytes([b[0], b[1]])
    }

    /// The length of the address list for the family.
    pub fn addresses_len(&self, ipv6: bool) -> usize {
        usize::from(self.count_ip_addrs()) * addr_len(ipv6)
    }

    /// The raw address list for the family, or `None` when the buffer is
    /// too short for `count_ip_addrs` addresses.
    pub fn address_bytes(&self, ipv6: bool) -> Option<&[u8]> {
        let end = field::ADDRESSES + self.addresses_len(ipv6);
        self.buffer.as_ref().get(field::ADDRESSES..end)
    }

    /// VRRPv2: the 8 bytes of authentication data after the (IPv4)
    /// addresses, or `None` when the buffer is too short.
    pub fn auth_data(&self) -> Option<[u8; 8]> {
        let start = field::ADDRESSES + self.addresses_len(false);
        let b = self.buffer.as_ref().get(start..start + VRRP_V2_AUTH_LEN)?;
        let mut d = [0u8; 8];
        d.copy_from_slice(b);
        Some(d)
    }

    /// The length a valid message with this header has for the family:
    /// header, addresses and (v2) authentication data.
    pub fn expected_len(&self, ipv6: bool) -> usize {
        let auth = if self.version() == 2 {
            VRRP_V2_AUTH_LEN
        } else {
            0
        };
        VRRP_HEADER_LEN + self.addresses_len(ipv6) + auth
    }

    /// The sum of the pseudo-header the checksum of this message covers:
    /// zero when it covers none.
    fn pseudo_sum(&self, src: &IpAddr, dst: &IpAddr, mode: ChecksumMode) -> Result<u16, Error> {
        if self.version() != 3 {
            return Ok(0);
        }
        if let (IpAddr::V4(_), IpAddr::V4(_), ChecksumMode::V3Ipv4NoPseudoHeader) = (src, dst, mode)
        {
            return Ok(0);
        }
        let len = u32::try_from(self.buffer.as_ref().len()).map_err(|_| Error::Truncated)?;
        checksum::pseudo_header(src, dst, VRRP_PROTO, len)
    }

    /// Whether the checksum is right for the whole buffer, sent from `src`
    /// to `dst`. The version field selects the algorithm (v3: with the
    /// pseudo-header, subject to `mode`; anything else: without).
    pub fn verify_checksum(&self, src: &IpAddr, dst: &IpAddr, mode: ChecksumMode) -> bool {
        match self.pseudo_sum(src, dst, mode) {
            Ok(p) => checksum::combine(&[p, checksum::data(self.buffer.as_ref())]) == 0xffff,
            Err(_) => false,
        }
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> VrrpPacket<T> {
    /// Sets the version field (4 bits).
    pub fn set_version(&mut self, v: u8) {
        let b = &mut self.buffer.as_mut()[field::VER_TYPE];
        *b = (*b & 0x0f) | (v << 4);
    }

    /// Sets the type field (4 bits).
    pub fn set_msg_type(&mut self, t: VrrpMessageType) {
        let b = &mut self.buffer.as_mut()[field::VER_TYPE];
        *b = (*b & 0xf0) | (u8::from(t) & 0x0f);
    }

    /// Sets the virtual router identifier.
    pub fn set_vrid(&mut self, v: u8) {
        self.buffer.as_mut()[field::VRID] = v;
    }

    /// Sets the priority.
    pub fn set_priority(&mut self, v: u8) {
        self.buffer.as_mut()[field::PRIORITY] = v;
    }

    /// Sets the address count.
    pub fn set_count_ip_addrs(&mut self, v: u8) {
        self.buffer.as_mut()[field::COUNT] = v;
    }

    /// VRRPv2: sets the authentication type.
    pub fn set_auth_type(&mut self, t: VrrpAuthType) {
        self.buffer.as_mut()[field::AUTH_TYPE] = u8::from(t);
    }

    /// VRRPv2: sets the advertisement interval in seconds.
    pub fn set_adver_int(&mut self, secs: u8) {
        self.buffer.as_mut()[field::ADVER_INT] = secs;
    }

    /// VRRPv3: sets the maximum advertisement interval (its low 12 bits)
    /// and clears the reserved bits.
    pub fn set_max_adver_int(&mut self, centis: u16) {
        let v = (centis & 0x0fff).to_be_bytes();
        self.buffer.as_mut()[field::MAX_ADVER_INT].copy_from_slice(&v);
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, v: u16) {
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&v.to_be_bytes());
    }

    /// The address list for the family, mutably, or `None` when the buffer
    /// is too short for `count_ip_addrs` addresses.
    pub fn address_bytes_mut(&mut self, ipv6: bool) -> Option<&mut [u8]> {
        let end = field::ADDRESSES + self.addresses_len(ipv6);
        self.buffer.as_mut().get_mut(field::ADDRESSES..end)
    }

    /// VRRPv2: the authentication data after the (IPv4) addresses,
    /// mutably, or `None` when the buffer is too short.
    pub fn auth_data_mut(&mut self) -> Option<&mut [u8]> {
        let start = field::ADDRESSES + self.addresses_len(false);
        self.buffer
            .as_mut()
            .get_mut(start..start + VRRP_V2_AUTH_LEN)
    }

    /// Computes the checksum over the whole buffer and writes it.
    ///
    /// # Errors
    /// [`Error::AddressFamily`] when a VRRPv3 pseudo-header is needed and
    /// `src` and `dst` differ in family.
    pub fn fill_checksum(
        &mut self,
        src: &IpAddr,
        dst: &IpAddr,
        mode: ChecksumMode,
    ) -> Result<(), Error> {
        self.set_checksum(0);
        let p = self.pseudo_sum(src, dst, mode)?;
        let sum = checksum::combine(&[p, checksum::data(self.buffer.as_ref())]);
        self.set_checksum(!sum);
        Ok(())
    }
}

/// The virtual addresses of an advertisement, without an allocator: either
/// the raw list inside a parsed packet, or a caller's slice to emit.
///
/// `==` compares the addresses in order, whatever the variant;
/// [`VrrpAddresses::same_as`] ignores the order.
#[derive(Debug, Clone, Copy)]
pub enum VrrpAddresses<'a> {
    /// Addresses as they are on the wire: 4 (IPv4) or 16 (IPv6) bytes each.
    /// A trailing partial address is ignored.
    Wire {
        /// Whether the addresses are IPv6.
        v6: bool,
        /// The concatenated addresses.
        bytes: &'a [u8],
    },
    /// A list of addresses, all of one family for emit.
    List(&'a [IpAddr]),
}

impl<'a> VrrpAddresses<'a> {
    /// The number of addresses.
    pub fn len(&self) -> usize {
        match self {
            VrrpAddresses::Wire { v6, bytes } => bytes.len() / addr_len(*v6),
            VrrpAddresses::List(l) => l.len(),
        }
    }

    /// Whether there is no address.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the addresses are IPv6 (for a list: whether the first one
    /// is; an empty list counts as IPv4).
    pub fn is_ipv6(&self) -> bool {
        match self {
            VrrpAddresses::Wire { v6, .. } => *v6,
            VrrpAddresses::List(l) => l.first().is_some_and(IpAddr::is_ipv6),
        }
    }

    /// The addresses, in order.
    pub fn iter(&self) -> VrrpAddressIter<'a> {
        match *self {
            VrrpAddresses::Wire { v6, bytes } => VrrpAddressIter::Wire {
                v6,
                chunks: bytes.chunks_exact(addr_len(v6)),
            },
            VrrpAddresses::List(l) => VrrpAddressIter::List(l.iter()),
        }
    }

    /// Whether both hold the same addresses, in any order (as multisets:
    /// duplicates count).
    pub fn same_as(&self, other: &VrrpAddresses<'_>) -> bool {
        if self.len() != other.len() {
            return false;
        }
        // At most 255 addresses on the wire, usually a handful: quadratic
        // counting needs no allocation and is cheap enough.
        self.iter().enumerate().all(|(i, a)| {
            // Count each distinct address once, at its first occurrence.
            if self.iter().take(i).any(|b| b == a) {
                return true;
            }
            self.iter().filter(|&b| b == a).count() == other.iter().filter(|&b| b == a).count()
        })
    }

    /// Checks that every address is of the family `ipv6`.
    fn check_family(&self, ipv6: bool) -> Result<(), Error> {
        match self {
            VrrpAddresses::Wire { v6, .. } => {
                if *v6 == ipv6 {
                    Ok(())
                } else {
                    Err(Error::AddressFamily)
                }
            }
            VrrpAddresses::List(l) => {
                let first = l.first().map(IpAddr::is_ipv6);
                if l.iter().any(|a| Some(a.is_ipv6()) != first) {
                    Err(Error::MixedFamilies)
                } else if first.is_some_and(|f| f != ipv6) {
                    Err(Error::AddressFamily)
                } else {
                    Ok(())
                }
            }
        }
    }
}

impl PartialEq for VrrpAddresses<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for VrrpAddresses<'_> {}

impl<'a> IntoIterator for VrrpAddresses<'a> {
    type Item = IpAddr;
    type IntoIter = VrrpAddressIter<'a>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// Iterator over [`VrrpAddresses`].
#[derive(Debug, Clone)]
pub enum VrrpAddressIter<'a> {
    /// Over raw wire bytes.
    Wire {
        /// Whether the chunks are IPv6 addresses.
        v6: bool,
        /// The remaining addresses.
        chunks: core::slice::ChunksExact<'a, u8>,
    },
    /// Over a list.
    List(core::slice::Iter<'a, IpAddr>),
}

impl Iterator for VrrpAddressIter<'_> {
    type Item = IpAddr;

    fn next(&mut self) -> Option<IpAddr> {
        match self {
            VrrpAddressIter::Wire { v6: false, chunks } => {
                let c = chunks.next()?;
                Some(IpAddr::V4(Ipv4Addr::new(c[0], c[1], c[2], c[3])))
            }
            VrrpAddressIter::Wire { v6: true, chunks } => {
                let c = chunks.next()?;
                let mut o = [0u8; V6_LEN];
                o.copy_from_slice(c);
                Some(IpAddr::V6(Ipv6Addr::from(o)))
            }
            VrrpAddressIter::List(it) => it.next().copied(),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match self {
            VrrpAddressIter::Wire { chunks, .. } => chunks.size_hint(),
            VrrpAddressIter::List(it) => it.size_hint(),
        }
    }
}

impl ExactSizeIterator for VrrpAddressIter<'_> {}
impl FusedIterator for VrrpAddressIter<'_> {}

/// A validated VRRP advertisement.
///
/// The state machine works with this value only; it never sees bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VrrpRepr<'a> {
    /// Protocol version.
    pub version: VrrpVersion,
    /// Virtual router identifier (the wire allows 0; instances use 1..=255).
    pub vrid: u8,
    /// Sender priority; 0 = the master is leaving, 255 = address owner.
    pub priority: u8,
    /// The advertisement interval in centiseconds, for both versions. A
    /// VRRPv2 interval of N seconds is N * 100; on emit a VRRPv2 interval is
    /// rounded up to whole seconds, at least 1.
    pub max_adver_int: u16,
    /// VRRPv2 authentication; always [`VrrpAuth::None`] for VRRPv3.
    pub auth: VrrpAuth,
    /// The virtual addresses.
    pub addresses: VrrpAddresses<'a>,
}

impl<'a> VrrpRepr<'a> {
    /// Parses and validates a VRRP message that arrived from `src` to `dst`
    /// (the IP header's addresses, used by the VRRPv3 checksum).
    ///
    /// The addresses of the result borrow the packet's buffer. The buffer
    /// must be exactly the IP payload: trailing bytes are an error.
    ///
    /// # Errors
    /// In the order checked: [`Error::Truncated`] (no fixed header),
    /// [`Error::Version`], [`Error::Type`], [`Error::AddressFamily`] (`src`
    /// and `dst` of different families), [`Error::V2OverIpv6`],
    /// [`Error::NoAddresses`], [`Error::Truncated`] / [`Error::AddressCount`]
    /// (buffer shorter / longer than the count implies),
    /// [`Error::Checksum`], then for VRRPv2
    /// [`Error::AuthType`] and [`Error::Interval`] (interval 0).
    pub fn parse<T: AsRef<[u8]> + ?Sized>(
        packet: &VrrpPacket<&'a T>,
        src: IpAddr,
        dst: IpAddr,
        mode: ChecksumMode,
    ) -> Result<VrrpRepr<'a>, Error> {
        packet.check_len()?;
        let version = VrrpVersion::try_from(packet.version())?;
        if let VrrpMessageType::Unknown(t) = packet.msg_type() {
            return Err(Error::Type(t));
        }
        if src.is_ipv6() != dst.is_ipv6() {
            return Err(Error::AddressFamily);
        }
        let v6 = src.is_ipv6();
        if version == VrrpVersion::V2 && v6 {
            return Err(Error::V2OverIpv6);
        }
        if packet.count_ip_addrs() == 0 {
            return Err(Error::NoAddresses);
        }
        // Borrow with the buffer's own lifetime, not the view's.
        let buf: &'a [u8] = AsRef::<[u8]>::as_ref(packet.buffer);
        let expected = packet.expected_len(v6);
        if buf.len() < expected {
            return Err(Error::Truncated);
        }
        if buf.len() > expected {
            return Err(Error::AddressCount);
        }
        if !packet.verify_checksum(&src, &dst, mode) {
            return Err(Error::Checksum);
        }
        let alen = packet.addresses_len(v6);
        let bytes = buf
            .get(field::ADDRESSES..field::ADDRESSES + alen)
            .ok_or(Error::Truncated)?;
        let addresses = VrrpAddresses::Wire { v6, bytes };
        let (max_adver_int, auth) = match version {
            VrrpVersion::V2 => {
                let auth = match packet.auth_type() {
                    VrrpAuthType::None => VrrpAuth::None,
                    VrrpAuthType::Simple => {
                        VrrpAuth::Simple(packet.auth_data().ok_or(Error::Truncated)?)
                    }
                    VrrpAuthType::Ah => {
                        packet.auth_data().ok_or(Error::Truncated)?;
                        VrrpAuth::Ah([0; 8])
                    }
                    VrrpAuthType::Unknown(t) => return Err(Error::AuthType(t)),
                };
                let secs = packet.adver_int();
                if secs == 0 {
                    return Err(Error::Interval);
                }
                (u16::from(secs) * 100, auth)
            }
            VrrpVersion::V3 => (packet.max_adver_int(), VrrpAuth::None),
        };
        Ok(VrrpRepr {
            version,
            vrid: packet.vrid(),
            priority: packet.priority(),
            max_adver_int,
            auth,
            addresses,
        })
    }

    /// The length of the emitted message: 8 + 4 or 16 per address, + 8 for
    /// VRRPv2 authentication data.
    pub fn buffer_len(&self) -> usize {
        let auth = match self.version {
            VrrpVersion::V2 => VRRP_V2_AUTH_LEN,
            VrrpVersion::V3 => 0,
        };
        VRRP_HEADER_LEN + self.addresses.len() * addr_len(self.addresses.is_ipv6()) + auth
    }

    /// The VRRPv2 advertisement interval in whole seconds: the centiseconds
    /// rounded up, at least 1.
    fn v2_secs(&self) -> Result<u8, Error> {
        let secs = u32::from(self.max_adver_int).div_ceil(100).max(1);
        u8::try_from(secs).map_err(|_| Error::Interval)
    }

    /// Writes the message into the first [`Self::buffer_len`] bytes of the
    /// packet's buffer, with the checksum for `src` -> `dst`. Nothing is
    /// written when an error is returned.
    ///
    /// # Errors
    /// [`Error::AddressFamily`] (`src`/`dst` or the addresses of another
    /// family), [`Error::V2OverIpv6`], [`Error::V3Auth`],
    /// [`Error::NoAddresses`], [`Error::TooManyAddresses`],
    /// [`Error::MixedFamilies`], [`Error::Interval`] (VRRPv2 over 255 s,
    /// VRRPv3 over 4095 cs) and [`Error::Truncated`] (buffer too short).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]> + ?Sized>(
        &self,
        packet: &mut VrrpPacket<&mut T>,
        src: IpAddr,
        dst: IpAddr,
        mode: ChecksumMode,
    ) -> Result<(), Error> {
        if src.is_ipv6() != dst.is_ipv6() {
            return Err(Error::AddressFamily);
        }
        let v6 = src.is_ipv6();
        let (auth_type, interval) = match self.version {
            VrrpVersion::V2 if v6 => return Err(Error::V2OverIpv6),
            VrrpVersion::V2 => (self.auth.auth_type(), self.v2_secs()?),
            VrrpVersion::V3 if self.auth != VrrpAuth::None => return Err(Error::V3Auth),
            VrrpVersion::V3 if self.max_adver_int > 0x0fff => return Err(Error::Interval),
            VrrpVersion::V3 => (VrrpAuthType::None, 0),
        };
        let count = self.addresses.len();
        if count == 0 {
            return Err(Error::NoAddresses);
        }
        let count = u8::try_from(count).map_err(|_| Error::TooManyAddresses)?;
        self.addresses.check_family(v6)?;
        let len = self.buffer_len();
        let buf = AsMut::<[u8]>::as_mut(&mut *packet.buffer)
            .get_mut(..len)
            .ok_or(Error::Truncated)?;
        let mut p = VrrpPacket::new_unchecked(buf);
        p.set_version(self.version.number());
        p.set_msg_type(VrrpMessageType::Advertisement);
        p.set_vrid(self.vrid);
        p.set_priority(self.priority);
        p.set_count_ip_addrs(count);
        match self.version {
            VrrpVersion::V2 => {
                p.set_auth_type(auth_type);
                p.set_adver_int(interval);
                let data = self.auth.data();
                p.auth_data_mut()
                    .ok_or(Error::Truncated)?
                    .copy_from_slice(&data);
            }
            VrrpVersion::V3 => p.set_max_adver_int(self.max_adver_int),
        }
        let out = p.address_bytes_mut(v6).ok_or(Error::Truncated)?;
        for (chunk, addr) in out
            .chunks_exact_mut(addr_len(v6))
            .zip(self.addresses.iter())
        {
            match addr {
                IpAddr::V4(a) => chunk.copy_from_slice(&a.octets()),
                IpAddr::V6(a) => chunk.copy_from_slice(&a.octets()),
            }
        }
        p.fill_checksum(&src, &dst, mode)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec;
    use std::vec::Vec;

    use super::*;
    use crate::wire::ethernet::{self, EthernetFrame};
    use crate::wire::ip::IpHeader;
    use crate::wire::test_util::{hex, pcap_frames, XorShift};

    macro_rules! fixture {
        ($name:literal) => {
            include_str!(concat!("../../../tests/fixtures/pcap/", $name, ".hex"))
        };
    }
    macro_rules! pcap {
        ($name:literal) => {
            include_bytes!(concat!("../../../tests/fixtures/pcap/", $name, ".pcap"))
        };
    }

    /// IP source, destination and VRRP payload of an Ethernet frame.
    fn strip(frame: &[u8]) -> (IpAddr, IpAddr, u8, Vec<u8>) {
        let eth = EthernetFrame::new_checked(frame).expect("ethernet header");
        let (h, payload) = IpHeader::parse(eth.payload()).expect("ip header");
        assert_eq!(h.protocol, crate::wire::VRRP_PROTO);
        (h.src, h.dst, h.hop_limit, payload.to_vec())
    }

    fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(a, b, c, d))
    }

    fn v6(s: &str) -> IpAddr {
        IpAddr::V6(s.parse().expect("ipv6 literal"))
    }

    const SRC4: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 99, 0, 1));
    const DST4: IpAddr = IpAddr::V4(crate::wire::VRRP_MCAST_V4);

    struct Case {
        hex: &'static str,
        version: VrrpVersion,
        vrid: u8,
        priority: u8,
        centis: u16,
        auth: VrrpAuth,
        addrs: Vec<IpAddr>,
    }

    fn vips4(n: u8) -> Vec<IpAddr> {
        (0..n).map(|i| v4(10, 99, 0, 50 + i)).collect()
    }

    /// Every VRRP .hex fixture with the values its .txt states.
    fn cases() -> Vec<Case> {
        use VrrpVersion::{V2, V3};
        let c = |hex, version, vrid, priority, centis, auth, addrs| Case {
            hex,
            version,
            vrid,
            priority,
            centis,
            auth,
            addrs,
        };
        vec![
            c(
                fixture!("vrrpv2-advert"),
                V2,
                1,
                150,
                100,
                VrrpAuth::None,
                vips4(1),
            ),
            c(
                fixture!("vrrpv2-advert-3vip-authpass"),
                V2,
                1,
                150,
                100,
                VrrpAuth::Simple(*b"secret12"),
                vips4(3),
            ),
            c(
                fixture!("vrrpv2-prio0"),
                V2,
                1,
                0,
                100,
                VrrpAuth::None,
                vips4(1),
            ),
            c(
                fixture!("vrrpv3-advert"),
                V3,
                1,
                150,
                100,
                VrrpAuth::None,
                vips4(1),
            ),
            c(
                fixture!("vrrpv3-advert-10ms"),
                V3,
                1,
                150,
                1,
                VrrpAuth::None,
                vips4(1),
            ),
            c(
                fixture!("vrrpv3-advert-3vip"),
                V3,
                1,
                150,
                100,
                VrrpAuth::None,
                vips4(3),
            ),
            c(
                fixture!("vrrpv3-advert-vmac"),
                V3,
                1,
                150,
                100,
                VrrpAuth::None,
                vips4(1),
            ),
            c(
                fixture!("vrrpv3-prio0"),
                V3,
                1,
                0,
                100,
                VrrpAuth::None,
                vips4(1),
            ),
            c(
                fixture!("vrrpv3-ipv6-2vip"),
                V3,
                61,
                120,
                100,
                VrrpAuth::None,
                vec![v6("fe80::61"), v6("fd00:99::50")],
            ),
        ]
    }

    fn parse(
        bytes: &[u8],
        src: IpAddr,
        dst: IpAddr,
        mode: ChecksumMode,
    ) -> Result<VrrpRepr<'_>, Error> {
        VrrpRepr::parse(&VrrpPacket::new_checked(bytes)?, src, dst, mode)
    }

    fn emit(
        repr: &VrrpRepr<'_>,
        src: IpAddr,
        dst: IpAddr,
        mode: ChecksumMode,
    ) -> Result<Vec<u8>, Error> {
        let mut out = vec![0u8; repr.buffer_len()];
        repr.emit(&mut VrrpPacket::new_unchecked(&mut out[..]), src, dst, mode)?;
        Ok(out)
    }

    /// Rewrites the checksum after a test has changed a field.
    fn refill(bytes: &mut [u8], src: IpAddr, dst: IpAddr) {
        VrrpPacket::new_unchecked(bytes)
            .fill_checksum(&src, &dst, ChecksumMode::Rfc)
            .unwrap();
    }

    #[test]
    fn test_parse_fixtures() {
        for case in cases() {
            let (src, dst, ttl, bytes) = strip(&hex(case.hex));
            assert_eq!(ttl, crate::wire::VRRP_TTL);
            let repr = parse(&bytes, src, dst, ChecksumMode::Rfc).unwrap();
            assert_eq!(repr.version, case.version);
            assert_eq!(repr.vrid, case.vrid);
            assert_eq!(repr.priority, case.priority);
            assert_eq!(repr.max_adver_int, case.centis);
            assert_eq!(repr.auth, case.auth);
            assert_eq!(repr.addresses.len(), case.addrs.len());
            assert_eq!(repr.addresses.is_ipv6(), src.is_ipv6());
            assert!(repr.addresses.iter().eq(case.addrs.iter().copied()));
            assert_eq!(repr.addresses, VrrpAddresses::List(&case.addrs));
            let p = VrrpPacket::new_checked(&bytes[..]).unwrap();
            assert_eq!(p.version(), case.version.number());
            assert_eq!(p.msg_type(), VrrpMessageType::Advertisement);
            assert!(p.verify_checksum(&src, &dst, ChecksumMode::Rfc));
        }
    }

    #[test]
    fn test_parse_fixture_sources() {
        let (src, dst, _, _) = strip(&hex(fixture!("vrrpv3-ipv6-2vip")));
        assert_eq!(src, v6("fe80::3401:fbff:fe43:dcd3"));
        assert_eq!(dst, IpAddr::V6(crate::wire::VRRP_MCAST_V6));
        let frame = hex(fixture!("vrrpv3-advert-vmac"));
        let eth = EthernetFrame::new_checked(&frame[..]).unwrap();
        assert_eq!(eth.src_addr(), crate::wire::vmac(1, false));
        let (src, dst, _, _) = strip(&frame);
        assert_eq!((src, dst), (SRC4, DST4));
    }

    #[test]
    fn test_emit_fixtures_byte_for_byte() {
        for case in cases() {
            let (src, dst, _, bytes) = strip(&hex(case.hex));
            // From the parsed (wire-borrowing) repr ...
            let parsed = parse(&bytes, src, dst, ChecksumMode::Rfc).unwrap();
            assert_eq!(parsed.buffer_len(), bytes.len());
            assert_eq!(emit(&parsed, src, dst, ChecksumMode::Rfc).unwrap(), bytes);
            // ... and from a repr built the way an instance builds it.
            let built = VrrpRepr {
                version: case.version,
                vrid: case.vrid,
                priority: case.priority,
                max_adver_int: case.centis,
                auth: case.auth,
                addresses: VrrpAddresses::List(&case.addrs),
            };
            assert_eq!(built, parsed);
            assert_eq!(emit(&built, src, dst, ChecksumMode::Rfc).unwrap(), bytes);
        }
    }

    #[test]
    fn test_parse_every_vrrp_frame_in_pcaps() {
        let files: [&[u8]; 11] = [
            pcap!("failover-v2-sigkill-full"),
            pcap!("vrrpv2-advert"),
            pcap!("vrrpv2-advert-3vip-authpass"),
            pcap!("vrrpv2-prio0"),
            pcap!("vrrpv3-advert"),
            pcap!("vrrpv3-advert-10ms"),
            pcap!("vrrpv3-advert-3vip"),
            pcap!("vrrpv3-advert-vmac"),
            pcap!("vrrpv3-prio0"),
            pcap!("vrrpv3-ipv6-2vip"),
            pcap!("garp-vmac"),
        ];
        let mut seen = 0;
        for file in files {
            for frame in pcap_frames(file) {
                let Ok(eth) = EthernetFrame::new_checked(frame) else {
                    continue;
                };
                let Ok((h, payload)) = IpHeader::parse(eth.payload()) else {
                    continue;
                };
                if h.protocol != crate::wire::VRRP_PROTO {
                    continue;
                }
                let repr = parse(payload, h.src, h.dst, ChecksumMode::Rfc).unwrap();
                assert_eq!(
                    emit(&repr, h.src, h.dst, ChecksumMode::Rfc).unwrap(),
                    payload
                );
                seen += 1;
            }
        }
        assert!(seen >= 10, "only {seen} VRRP frames found");
    }

    #[test]
    fn test_checksum_mode_v3_ipv4() {
        let (src, dst, _, bytes) = strip(&hex(fixture!("vrrpv3-advert")));
        let mode = ChecksumMode::V3Ipv4NoPseudoHeader;
        assert_eq!(parse(&bytes, src, dst, mode), Err(Error::Checksum));
        let repr = parse(&bytes, src, dst, ChecksumMode::Rfc).unwrap();
        let vendor = emit(&repr, src, dst, mode).unwrap();
        assert_ne!(vendor, bytes);
        assert_eq!(vendor[..6], bytes[..6]);
        // Without the pseudo-header the checksum covers the message alone.
        let mut zeroed = vendor.clone();
        zeroed[6..8].copy_from_slice(&[0, 0]);
        assert_eq!(
            u16::from_be_bytes([vendor[6], vendor[7]]),
            checksum::internet_checksum(&zeroed)
        );
        assert_eq!(parse(&vendor, src, dst, mode).unwrap(), repr);
        assert_eq!(
            parse(&vendor, src, dst, ChecksumMode::Rfc),
            Err(Error::Checksum)
        );
        // The v3 pseudo-header covers the addresses: another source fails.
        assert_eq!(
            parse(&bytes, v4(10, 99, 0, 2), dst, ChecksumMode::Rfc),
            Err(Error::Checksum)
        );
        assert_eq!(parse(&vendor, v4(10, 99, 0, 2), dst, mode).unwrap(), repr);
    }

    #[test]
    fn test_checksum_mode_ignored_for_v2_and_ipv6() {
        for name in [
            fixture!("vrrpv2-advert-3vip-authpass"),
            fixture!("vrrpv3-ipv6-2vip"),
        ] {
            let (src, dst, _, bytes) = strip(&hex(name));
            let mode = ChecksumMode::V3Ipv4NoPseudoHeader;
            let repr = parse(&bytes, src, dst, mode).unwrap();
            assert_eq!(emit(&repr, src, dst, mode).unwrap(), bytes);
        }
        // VRRPv2 has no pseudo-header: any IPv4 addresses verify.
        let (_, _, _, bytes) = strip(&hex(fixture!("vrrpv2-advert")));
        assert!(parse(&bytes, v4(1, 2, 3, 4), v4(5, 6, 7, 8), ChecksumMode::Rfc).is_ok());
    }

    #[test]
    fn test_emit_v2_interval_rounding() {
        let vips = vips4(1);
        let mut r = VrrpRepr {
            version: VrrpVersion::V2,
            vrid: 7,
            priority: 100,
            max_adver_int: 0,
            auth: VrrpAuth::None,
            addresses: VrrpAddresses::List(&vips),
        };
        for (centis, secs) in [
            (0, 1),
            (1, 1),
            (50, 1),
            (100, 1),
            (101, 2),
            (150, 2),
            (25500, 255),
        ] {
            r.max_adver_int = centis;
            let out = emit(&r, SRC4, DST4, ChecksumMode::Rfc).unwrap();
            assert_eq!(VrrpPacket::new_checked(&out[..]).unwrap().adver_int(), secs);
            let back = parse(&out, SRC4, DST4, ChecksumMode::Rfc).unwrap();
            assert_eq!(back.max_adver_int, u16::from(secs) * 100);
        }
        r.max_adver_int = 25501;
        assert_eq!(
            emit(&r, SRC4, DST4, ChecksumMode::Rfc),
            Err(Error::Interval)
        );
    }

    #[test]
    fn test_emit_v3_interval_bounds() {
        let vips = vips4(1);
        let mut r = VrrpRepr {
            version: VrrpVersion::V3,
            vrid: 7,
            priority: 100,
            max_adver_int: 4095,
            auth: VrrpAuth::None,
            addresses: VrrpAddresses::List(&vips),
        };
        let out = emit(&r, SRC4, DST4, ChecksumMode::Rfc).unwrap();
        assert_eq!(out[4..6], [0x0f, 0xff]);
        assert_eq!(
            parse(&out, SRC4, DST4, ChecksumMode::Rfc)
                .unwrap()
                .max_adver_int,
            4095
        );
        r.max_adver_int = 4096;
        assert_eq!(
            emit(&r, SRC4, DST4, ChecksumMode::Rfc),
            Err(Error::Interval)
        );
    }

    #[test]
    fn test_parse_v3_ignores_reserved_bits() {
        let (src, dst, _, mut bytes) = strip(&hex(fixture!("vrrpv3-advert")));
        bytes[4] |= 0xa0;
        refill(&mut bytes, src, dst);
        let repr = parse(&bytes, src, dst, ChecksumMode::Rfc).unwrap();
        assert_eq!(repr.max_adver_int, 100);
        assert_eq!(VrrpPacket::new_checked(&bytes[..]).unwrap().rsvd(), 0xa);
    }

    #[test]
    fn test_auth_simple_pads_and_truncates() {
        assert_eq!(
            VrrpAuth::simple(b"secret"),
            VrrpAuth::Simple(*b"secret\0\0")
        );
        assert_eq!(
            VrrpAuth::simple(b"secret12"),
            VrrpAuth::Simple(*b"secret12")
        );
        assert_eq!(
            VrrpAuth::simple(b"longerpassword"),
            VrrpAuth::Simple(*b"longerpa")
        );
        assert_eq!(VrrpAuth::simple(b""), VrrpAuth::Simple([0; 8]));
        assert_eq!(VrrpAuth::None.data(), [0; 8]);
        assert_eq!(VrrpAuth::simple(b"x").auth_type(), VrrpAuthType::Simple);
    }

    #[test]
    fn test_addresses_same_as() {
        let a = [v4(1, 1, 1, 1), v4(2, 2, 2, 2), v4(3, 3, 3, 3)];
        let b = [v4(3, 3, 3, 3), v4(1, 1, 1, 1), v4(2, 2, 2, 2)];
        let wire = [1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3];
        let w = VrrpAddresses::Wire {
            v6: false,
            bytes: &wire,
        };
        assert!(VrrpAddresses::List(&a).same_as(&VrrpAddresses::List(&b)));
        assert!(w.same_as(&VrrpAddresses::List(&b)));
        assert_eq!(w, VrrpAddresses::List(&a));
        assert_ne!(w, VrrpAddresses::List(&b));
        assert!(!w.same_as(&VrrpAddresses::List(&a[..2])));
        // Duplicates count.
        let d1 = [v4(1, 1, 1, 1), v4(1, 1, 1, 1), v4(2, 2, 2, 2)];
        let d2 = [v4(1, 1, 1, 1), v4(2, 2, 2, 2), v4(2, 2, 2, 2)];
        assert!(!VrrpAddresses::List(&d1).same_as(&VrrpAddresses::List(&d2)));
        // Same bytes, other family.
        let w6 = VrrpAddresses::Wire {
            v6: true,
            bytes: &[0u8; 16],
        };
        let w4 = VrrpAddresses::Wire {
            v6: false,
            bytes: &[0u8; 16],
        };
        assert_eq!((w6.len(), w4.len()), (1, 4));
        assert!(!w6.same_as(&w4));
        // A trailing partial address is ignored.
        assert_eq!(
            VrrpAddresses::Wire {
                v6: false,
                bytes: &wire[..11]
            }
            .len(),
            2
        );
        assert!(VrrpAddresses::List(&[]).is_empty());
        assert!(!VrrpAddresses::List(&[]).is_ipv6());
        assert_eq!(w.iter().len(), 3);
        assert_eq!(w.into_iter().nth(2), Some(v4(3, 3, 3, 3)));
    }

    #[test]
    fn test_parse_errors() {
        let (src, dst, _, good) = strip(&hex(fixture!("vrrpv2-advert")));
        let rfc = ChecksumMode::Rfc;
        let mutated = |f: &dyn Fn(&mut Vec<u8>)| {
            let mut b = good.clone();
            f(&mut b);
            b
        };
        let fixed = |f: &dyn Fn(&mut Vec<u8>)| {
            let mut b = mutated(f);
            refill(&mut b, src, dst);
            b
        };

        // Truncated: shorter than the fixed header, then than the count says.
        assert_eq!(
            VrrpPacket::new_checked(&good[..7]).unwrap_err(),
            Error::Truncated
        );
        assert_eq!(parse(&good[..7], src, dst, rfc), Err(Error::Truncated));
        assert_eq!(
            parse(&good[..good.len() - 1], src, dst, rfc),
            Err(Error::Truncated)
        );
        assert_eq!(
            parse(&mutated(&|b| b[3] = 2), src, dst, rfc),
            Err(Error::Truncated)
        );
        // AddressCount: trailing bytes beyond what the count accounts for.
        assert_eq!(
            parse(&mutated(&|b| b.push(0)), src, dst, rfc),
            Err(Error::AddressCount)
        );
        let (s3, d3, _, v3_3) = strip(&hex(fixture!("vrrpv3-advert-3vip")));
        let mut fewer = v3_3.clone();
        fewer[3] = 2;
        assert_eq!(parse(&fewer, s3, d3, rfc), Err(Error::AddressCount));
        // NoAddresses.
        assert_eq!(
            parse(&mutated(&|b| b[3] = 0), src, dst, rfc),
            Err(Error::NoAddresses)
        );
        // Version and type.
        assert_eq!(
            parse(&mutated(&|b| b[0] = 0x11), src, dst, rfc),
            Err(Error::Version(1))
        );
        assert_eq!(
            parse(&mutated(&|b| b[0] = 0x41), src, dst, rfc),
            Err(Error::Version(4))
        );
        assert_eq!(
            parse(&mutated(&|b| b[0] = 0x22), src, dst, rfc),
            Err(Error::Type(2))
        );
        assert_eq!(
            parse(&mutated(&|b| b[0] = 0x20), src, dst, rfc),
            Err(Error::Type(0))
        );
        // Checksum.
        assert_eq!(
            parse(&mutated(&|b| b[2] = 151), src, dst, rfc),
            Err(Error::Checksum)
        );
        assert_eq!(
            parse(&mutated(&|b| b[7] ^= 1), src, dst, rfc),
            Err(Error::Checksum)
        );
        // Authentication types, with valid checksums.
        // AH parses: its ICV is checked at the IP layer (wire::ah).
        assert_eq!(
            parse(&fixed(&|b| b[4] = 2), src, dst, rfc).map(|r| r.auth),
            Ok(VrrpAuth::Ah([0; 8]))
        );
        // Whatever its data bytes hold (the fuzzer sent one with a 64 in them), an AH message
        // parses with zeros, so it emits as it parsed.
        let odd = fixed(&|b| {
            b[4] = 2;
            let n = b.len();
            b[n - 3] = 64;
        });
        let repr = parse(&odd, src, dst, rfc).expect("parses");
        assert_eq!(repr.auth, VrrpAuth::Ah([0; 8]));
        let mut out = vec![0u8; repr.buffer_len()];
        repr.emit(&mut VrrpPacket::new_unchecked(&mut out[..]), src, dst, rfc).expect("emits");
        assert_eq!(parse(&out, src, dst, rfc), Ok(repr));
        assert_eq!(
            parse(&fixed(&|b| b[4] = 3), src, dst, rfc),
            Err(Error::AuthType(3))
        );
        assert_eq!(
            parse(&fixed(&|b| b[4] = 255), src, dst, rfc),
            Err(Error::AuthType(255))
        );
        // Interval 0 cannot be emitted again, so it does not parse.
        assert_eq!(
            parse(&fixed(&|b| b[5] = 0), src, dst, rfc),
            Err(Error::Interval)
        );
        // Families.
        let s6 = v6("fe80::1");
        let d6 = IpAddr::V6(crate::wire::VRRP_MCAST_V6);
        assert_eq!(parse(&good, s6, d6, rfc), Err(Error::V2OverIpv6));
        assert_eq!(parse(&good, src, d6, rfc), Err(Error::AddressFamily));
        assert_eq!(parse(&good, s6, dst, rfc), Err(Error::AddressFamily));
        // An IPv4 VRRPv3 message read as IPv6 is too short for its count.
        let (_, _, _, v3) = strip(&hex(fixture!("vrrpv3-advert")));
        assert_eq!(parse(&v3, s6, d6, rfc), Err(Error::Truncated));
        // A simple password with a valid checksum parses.
        let with_pass = fixed(&|b| {
            b[4] = 1;
            b[12..20].copy_from_slice(b"abc\0\0\0\0\0");
        });
        assert_eq!(
            parse(&with_pass, src, dst, rfc).unwrap().auth,
            VrrpAuth::simple(b"abc")
        );
    }

    #[test]
    fn test_packet_accessors_short_buffers() {
        let (_, _, _, good) = strip(&hex(fixture!("vrrpv2-advert-3vip-authpass")));
        let p = VrrpPacket::new_checked(&good[..8]).unwrap();
        assert_eq!(p.count_ip_addrs(), 3);
        assert_eq!(p.address_bytes(false), None);
        assert_eq!(p.auth_data(), None);
        assert_eq!(p.auth_type(), VrrpAuthType::Simple);
        assert_eq!(p.adver_int(), 1);
        let p = VrrpPacket::new_checked(&good[..]).unwrap();
        assert_eq!(p.address_bytes(false).map(<[u8]>::len), Some(12));
        assert_eq!(p.address_bytes(true), None);
        assert_eq!(p.auth_data(), Some(*b"secret12"));
        assert_eq!(p.expected_len(false), good.len());
        assert_eq!(p.checksum(), 0xbab9);
        assert_eq!(VrrpAuthType::from(7), VrrpAuthType::Unknown(7));
        assert_eq!(u8::from(VrrpAuthType::Ah), 2);
        assert_eq!(VrrpMessageType::from(9), VrrpMessageType::Unknown(9));
        assert_eq!(VrrpVersion::try_from(3), Ok(VrrpVersion::V3));
        assert_eq!(VrrpVersion::try_from(0), Err(Error::Version(0)));
    }

    #[test]
    fn test_emit_errors() {
        let vips = vips4(2);
        let six = [v6("fd00::1")];
        let mixed = [v4(10, 0, 0, 1), v6("fd00::1")];
        let many: Vec<IpAddr> = (0..256u16)
            .map(|i| v4(10, 0, (i >> 8) as u8, i as u8))
            .collect();
        let base = VrrpRepr {
            version: VrrpVersion::V3,
            vrid: 1,
            priority: 100,
            max_adver_int: 100,
            auth: VrrpAuth::None,
            addresses: VrrpAddresses::List(&vips),
        };
        let rfc = ChecksumMode::Rfc;
        let s6 = v6("fe80::1");
        let d6 = IpAddr::V6(crate::wire::VRRP_MCAST_V6);
        let mut buf = [0u8; 8 + 256 * 16];
        let mut go = |r: &VrrpRepr<'_>, s: IpAddr, d: IpAddr| {
            let n = r.buffer_len().min(buf.len());
            r.emit(&mut VrrpPacket::new_unchecked(&mut buf[..n]), s, d, rfc)
        };
        assert_eq!(go(&base, SRC4, d6), Err(Error::AddressFamily));
        assert_eq!(go(&base, s6, d6), Err(Error::AddressFamily));
        let r = VrrpRepr {
            addresses: VrrpAddresses::List(&six),
            ..base
        };
        assert_eq!(go(&r, SRC4, DST4), Err(Error::AddressFamily));
        let r = VrrpRepr {
            addresses: VrrpAddresses::Wire {
                v6: true,
                bytes: &[0; 16],
            },
            ..base
        };
        assert_eq!(go(&r, SRC4, DST4), Err(Error::AddressFamily));
        let r = VrrpRepr {
            addresses: VrrpAddresses::List(&mixed),
            ..base
        };
        assert_eq!(go(&r, SRC4, DST4), Err(Error::MixedFamilies));
        assert_eq!(go(&r, s6, d6), Err(Error::MixedFamilies));
        let r = VrrpRepr {
            addresses: VrrpAddresses::List(&many),
            ..base
        };
        assert_eq!(go(&r, SRC4, DST4), Err(Error::TooManyAddresses));
        assert_eq!(
            go(
                &VrrpRepr {
                    addresses: VrrpAddresses::List(&many[..255]),
                    ..base
                },
                SRC4,
                DST4
            ),
            Ok(())
        );
        let r = VrrpRepr {
            addresses: VrrpAddresses::List(&[]),
            ..base
        };
        assert_eq!(go(&r, SRC4, DST4), Err(Error::NoAddresses));
        let r = VrrpRepr {
            auth: VrrpAuth::simple(b"pw"),
            ..base
        };
        assert_eq!(go(&r, SRC4, DST4), Err(Error::V3Auth));
        let r = VrrpRepr {
            version: VrrpVersion::V2,
            addresses: VrrpAddresses::List(&six),
            ..base
        };
        assert_eq!(go(&r, s6, d6), Err(Error::V2OverIpv6));
        // A buffer one byte short.
        let mut short = vec![0u8; base.buffer_len() - 1];
        assert_eq!(
            base.emit(
                &mut VrrpPacket::new_unchecked(&mut short[..]),
                SRC4,
                DST4,
                rfc
            ),
            Err(Error::Truncated)
        );
        assert!(short.iter().all(|&b| b == 0), "nothing written on error");
        // A longer buffer: the message is its first buffer_len() bytes.
        let mut long = vec![0xeeu8; base.buffer_len() + 5];
        base.emit(
            &mut VrrpPacket::new_unchecked(&mut long[..]),
            SRC4,
            DST4,
            rfc,
        )
        .unwrap();
        assert_eq!(
            parse(&long[..base.buffer_len()], SRC4, DST4, rfc).unwrap(),
            base
        );
        assert_eq!(long[base.buffer_len()..], [0xee; 5]);
    }

    #[test]
    fn test_emit_v2_auth_roundtrip() {
        let vips = vips4(3);
        let r = VrrpRepr {
            version: VrrpVersion::V2,
            vrid: 1,
            priority: 150,
            max_adver_int: 100,
            auth: VrrpAuth::simple(b"secret12"),
            addresses: VrrpAddresses::List(&vips),
        };
        let (src, dst, _, bytes) = strip(&hex(fixture!("vrrpv2-advert-3vip-authpass")));
        assert_eq!(emit(&r, src, dst, ChecksumMode::Rfc).unwrap(), bytes);
    }

    /// Random byte mutations of every fixture never panic, and whatever
    /// parses re-emits to something that parses to the same value.
    #[test]
    fn test_parse_mutations_never_panic() {
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        let mut parsed = 0usize;
        let modes = [ChecksumMode::Rfc, ChecksumMode::V3Ipv4NoPseudoHeader];
        for case in cases() {
            let (src, dst, _, bytes) = strip(&hex(case.hex));
            for _ in 0..3000 {
                let mut b = bytes.clone();
                for _ in 0..1 + rng.below(4) {
                    let at = rng.below(b.len());
                    b[at] = rng.next() as u8;
                }
                match rng.below(8) {
                    0 => b.truncate(rng.below(b.len() + 1)),
                    1 => b.extend((0..rng.below(40)).map(|_| rng.next() as u8)),
                    // Make the checksum right half of the time, so the
                    // checks after it are reached.
                    2..=5 if b.len() >= 8 => {
                        let _ = VrrpPacket::new_unchecked(&mut b[..]).fill_checksum(
                            &src,
                            &dst,
                            ChecksumMode::Rfc,
                        );
                    }
                    _ => {}
                }
                for mode in modes {
                    for (s, d) in [(src, dst), (SRC4, DST4), (v6("fe80::1"), v6("ff02::12"))] {
                        let Ok(p) = VrrpPacket::new_checked(&b[..]) else {
                            continue;
                        };
                        // Accessors never panic once check_len passed.
                        let _ = (
                            p.version(),
                            p.msg_type(),
                            p.vrid(),
                            p.priority(),
                            p.checksum(),
                        );
                        let _ = (p.auth_type(), p.adver_int(), p.max_adver_int(), p.rsvd());
                        let _ = (p.address_bytes(true), p.address_bytes(false), p.auth_data());
                        let Ok(repr) = VrrpRepr::parse(&p, s, d, mode) else {
                            continue;
                        };
                        parsed += 1;
                        let out = emit(&repr, s, d, mode).expect("a parsed repr emits");
                        assert_eq!(parse(&out, s, d, mode), Ok(repr));
                    }
                }
            }
        }
        assert!(parsed > 1000, "too few mutations parsed: {parsed}");
    }

    #[test]
    fn test_strip_helper_rejects_non_ip() {
        let garp = hex(include_str!(
            "../../../tests/fixtures/pcap/garp-vmac.hex"
        ));
        let eth = EthernetFrame::new_checked(&garp[..]).unwrap();
        assert_eq!(eth.ethertype(), ethernet::EtherType::Arp);
        assert!(IpHeader::parse(eth.payload()).is_err());
    }
}
