//! AgentX protocol version 1 (RFC 2741): the messages between a master agent (snmpd) and a
//! subagent, over a stream socket.
//!
//! ```text
//!  0               1               2               3
//! | h.version (1) |  h.type (1)   |    h.flags    |  <reserved>   |
//! |                          h.sessionID                          |
//! |                        h.transactionID                        |
//! |                           h.packetID                          |
//! |                        h.payload_length                       |
//! |  [context: octet string, with NON_DEFAULT_CONTEXT]            |
//! |  the PDU's own fields                                         |
//! ```
//!
//! Every field after the header is a multiple of 4 bytes long. The header's `NETWORK_BYTE_ORDER`
//! flag says how the integers of that one message are written: [`Message::parse`] reads either
//! order, [`Message::emit`] always writes network byte order (and sets the flag).
//!
//! What a peer can make the parser allocate is bounded by the payload, which is bounded by
//! [`MAX_PAYLOAD`]: every element of a list takes at least 4 bytes of it, and an object
//! identifier has at most [`MAX_SUBIDS`] sub-identifiers. Once [`frame_len`] has accepted a
//! frame, [`Message::parse`] never panics; [`Message::emit`] never panics.

use std::fmt;

/// The length of the fixed header.
pub const HEADER_LEN: usize = 20;
/// The largest payload accepted. An SNMP message is at most 64 KiB on the transports snmpd
/// serves, and the requests a master sends a subagent are smaller than the SNMP messages they
/// come from; four times that leaves room for any request a master sends.
pub const MAX_PAYLOAD: u32 = 256 * 1024;
/// The most sub-identifiers in an object identifier (RFC 2578, section 3.5).
pub const MAX_SUBIDS: usize = 128;

/// Header flags (RFC 2741, section 6.1).
pub mod flags {
    /// Register: an instance, not a subtree.
    pub const INSTANCE_REGISTRATION: u8 = 0x01;
    /// IndexAllocate: a new index.
    pub const NEW_INDEX: u8 = 0x02;
    /// IndexAllocate: any index.
    pub const ANY_INDEX: u8 = 0x04;
    /// A context octet string follows the header.
    pub const NON_DEFAULT_CONTEXT: u8 = 0x08;
    /// The message's integers are big-endian.
    pub const NETWORK_BYTE_ORDER: u8 = 0x10;
}

/// Why a message does not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Shorter than the header, or than a field it announces.
    #[error("message truncated")]
    Truncated,
    /// `h.version` is not 1.
    #[error("AgentX version {0}, not 1")]
    Version(u8),
    /// `h.payload_length` is over [`MAX_PAYLOAD`].
    #[error("payload of {0} bytes is over the limit")]
    TooLong(u32),
    /// `h.payload_length` is not a multiple of 4.
    #[error("payload length {0} is not a multiple of 4")]
    Misaligned(u32),
    /// An object identifier with more than [`MAX_SUBIDS`] sub-identifiers.
    #[error("object identifier of {0} sub-identifiers")]
    OidTooLong(u8),
    /// A varbind of a type RFC 2741 does not define (its length is unknown).
    #[error("unknown value type {0}")]
    ValueType(u16),
}

/// The PDU types (RFC 2741, section 6.1). Unknown codes parse as `Unknown(n)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum PduType {
    Open,
    Close,
    Register,
    Unregister,
    Get,
    GetNext,
    GetBulk,
    TestSet,
    CommitSet,
    UndoSet,
    CleanupSet,
    Notify,
    Ping,
    IndexAllocate,
    IndexDeallocate,
    AddAgentCaps,
    RemoveAgentCaps,
    Response,
    Unknown(u8),
}

impl From<u8> for PduType {
    fn from(v: u8) -> Self {
        use PduType::*;
        match v {
            1 => Open,
            2 => Close,
            3 => Register,
            4 => Unregister,
            5 => Get,
            6 => GetNext,
            7 => GetBulk,
            8 => TestSet,
            9 => CommitSet,
            10 => UndoSet,
            11 => CleanupSet,
            12 => Notify,
            13 => Ping,
            14 => IndexAllocate,
            15 => IndexDeallocate,
            16 => AddAgentCaps,
            17 => RemoveAgentCaps,
            18 => Response,
            n => Unknown(n),
        }
    }
}

impl From<PduType> for u8 {
    fn from(t: PduType) -> u8 {
        use PduType::*;
        match t {
            Open => 1,
            Close => 2,
            Register => 3,
            Unregister => 4,
            Get => 5,
            GetNext => 6,
            GetBulk => 7,
            TestSet => 8,
            CommitSet => 9,
            UndoSet => 10,
            CleanupSet => 11,
            Notify => 12,
            Ping => 13,
            IndexAllocate => 14,
            IndexDeallocate => 15,
            AddAgentCaps => 16,
            RemoveAgentCaps => 17,
            Response => 18,
            Unknown(n) => n,
        }
    }
}

impl PduType {
    /// Whether a context may follow the header (RFC 2741, section 6.1.1).
    fn has_context(self) -> bool {
        use PduType::*;
        matches!(
            self,
            Register
                | Unregister
                | Get
                | GetNext
                | GetBulk
                | TestSet
                | Notify
                | Ping
                | IndexAllocate
                | IndexDeallocate
                | AddAgentCaps
                | RemoveAgentCaps
        )
    }
}

/// `c.reason` of a Close-PDU (RFC 2741, section 6.2.2). Unknown codes parse as `Unknown(n)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum CloseReason {
    Other,
    ParseError,
    ProtocolError,
    Timeouts,
    Shutdown,
    ByManager,
    Unknown(u8),
}

impl From<u8> for CloseReason {
    fn from(v: u8) -> Self {
        match v {
            1 => CloseReason::Other,
            2 => CloseReason::ParseError,
            3 => CloseReason::ProtocolError,
            4 => CloseReason::Timeouts,
            5 => CloseReason::Shutdown,
            6 => CloseReason::ByManager,
            n => CloseReason::Unknown(n),
        }
    }
}

impl From<CloseReason> for u8 {
    fn from(r: CloseReason) -> u8 {
        match r {
            CloseReason::Other => 1,
            CloseReason::ParseError => 2,
            CloseReason::ProtocolError => 3,
            CloseReason::Timeouts => 4,
            CloseReason::Shutdown => 5,
            CloseReason::ByManager => 6,
            CloseReason::Unknown(n) => n,
        }
    }
}

/// `res.error` values (RFC 2741, section 6.2.16): the SNMP error-status values, and the
/// AgentX administrative errors from 256.
pub mod error {
    /// Success.
    pub const NO_ERROR: u16 = 0;
    /// SNMP tooBig.
    pub const TOO_BIG: u16 = 1;
    /// SNMP genErr.
    pub const GEN_ERR: u16 = 5;
    /// SNMP notWritable.
    pub const NOT_WRITABLE: u16 = 17;
    /// SNMP commitFailed.
    pub const COMMIT_FAILED: u16 = 14;
    /// SNMP undoFailed.
    pub const UNDO_FAILED: u16 = 15;
    /// The master refused the session.
    pub const OPEN_FAILED: u16 = 256;
    /// The session is not open.
    pub const NOT_OPEN: u16 = 257;
    /// Another session registered the same subtree at the same priority.
    pub const DUPLICATE_REGISTRATION: u16 = 263;
    /// The message did not parse.
    pub const PARSE_ERROR: u16 = 266;
    /// The master refused the request.
    pub const REQUEST_DENIED: u16 = 267;
    /// The master could not process the request.
    pub const PROCESSING_ERROR: u16 = 268;
}

/// An object identifier. The derived order is SNMP's lexicographic order: sub-identifier by
/// sub-identifier, a prefix before everything it prefixes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Oid(pub Vec<u32>);

impl Oid {
    /// The null identifier (no sub-identifiers).
    pub const fn null() -> Oid {
        Oid(Vec::new())
    }

    /// Whether it has no sub-identifiers.
    pub fn is_null(&self) -> bool {
        self.0.is_empty()
    }

    /// The sub-identifiers.
    pub fn as_slice(&self) -> &[u32] {
        &self.0
    }

    /// Whether `prefix` is a prefix of it (or all of it).
    pub fn starts_with(&self, prefix: &[u32]) -> bool {
        self.0.starts_with(prefix)
    }

    /// It, followed by `more`.
    pub fn join(prefix: &[u32], more: &[u32]) -> Oid {
        let mut v = Vec::with_capacity(prefix.len() + more.len());
        v.extend_from_slice(prefix);
        v.extend_from_slice(more);
        Oid(v)
    }

    fn encoded_len(&self) -> usize {
        let (_, rest) = self.compressed();
        4 + 4 * rest.len().min(u8::MAX as usize)
    }

    // The `prefix` form of section 5.1: 1.3.6.1.X.rest becomes prefix X and rest.
    fn compressed(&self) -> (u8, &[u32]) {
        match self.0.as_slice() {
            [1, 3, 6, 1, x, rest @ ..] if (1..=255).contains(x) => (*x as u8, rest),
            all => (0, all),
        }
    }
}

impl From<&[u32]> for Oid {
    fn from(v: &[u32]) -> Oid {
        Oid(v.to_vec())
    }
}

impl fmt::Display for Oid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            write!(f, "{s}")?;
        }
        Ok(())
    }
}

/// A varbind's value (RFC 2741, section 5.4).
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Value {
    Integer(i32),
    OctetString(Vec<u8>),
    Null,
    ObjectIdentifier(Oid),
    IpAddress([u8; 4]),
    Counter32(u32),
    Gauge32(u32),
    TimeTicks(u32),
    Opaque(Vec<u8>),
    Counter64(u64),
    NoSuchObject,
    NoSuchInstance,
    EndOfMibView,
}

impl Value {
    fn type_code(&self) -> u16 {
        match self {
            Value::Integer(_) => 2,
            Value::OctetString(_) => 4,
            Value::Null => 5,
            Value::ObjectIdentifier(_) => 6,
            Value::IpAddress(_) => 64,
            Value::Counter32(_) => 65,
            Value::Gauge32(_) => 66,
            Value::TimeTicks(_) => 67,
            Value::Opaque(_) => 68,
            Value::Counter64(_) => 70,
            Value::NoSuchObject => 128,
            Value::NoSuchInstance => 129,
            Value::EndOfMibView => 130,
        }
    }

    fn encoded_len(&self) -> usize {
        match self {
            Value::Integer(_) | Value::Counter32(_) | Value::Gauge32(_) | Value::TimeTicks(_) => 4,
            Value::Counter64(_) => 8,
            Value::OctetString(s) | Value::Opaque(s) => octets_len(s.len()),
            Value::IpAddress(_) => octets_len(4),
            Value::ObjectIdentifier(o) => o.encoded_len(),
            Value::Null | Value::NoSuchObject | Value::NoSuchInstance | Value::EndOfMibView => 0,
        }
    }
}

/// A name and its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VarBind {
    /// The object instance.
    pub name: Oid,
    /// Its value, or an exception.
    pub value: Value,
}

impl VarBind {
    fn encoded_len(&self) -> usize {
        4 + self.name.encoded_len() + self.value.encoded_len()
    }
}

/// A range of object identifiers to search (RFC 2741, section 5.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchRange {
    /// Where the search starts.
    pub start: Oid,
    /// Whether `start` itself qualifies.
    pub include: bool,
    /// The first identifier past the range; null: no bound.
    pub end: Oid,
}

/// A PDU, without its header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pdu {
    /// A subagent opens a session.
    Open {
        /// Seconds the master should wait for this subagent's answers (0: its default).
        timeout: u8,
        /// What the subagent is, as an identifier (may be null).
        id: Oid,
        /// What the subagent is, in words.
        descr: Vec<u8>,
    },
    /// Either side ends the session.
    Close {
        /// Why.
        reason: CloseReason,
    },
    /// A subagent claims a subtree (this codec does not carry the range form).
    Register {
        /// Seconds the master should wait for answers about this subtree (0: the session's).
        timeout: u8,
        /// Lower values win when registrations overlap (127 is the default).
        priority: u8,
        /// The subtree.
        subtree: Oid,
    },
    /// The master asks for the exact instances named.
    Get {
        /// One per varbind of the SNMP request.
        ranges: Vec<SearchRange>,
    },
    /// The master asks for the instances following the ones named.
    GetNext {
        /// One per varbind of the SNMP request.
        ranges: Vec<SearchRange>,
    },
    /// The master asks for several successors at once.
    GetBulk {
        /// The first ranges are answered once each.
        non_repeaters: u16,
        /// The others are answered up to this many times each.
        max_repetitions: u16,
        /// The ranges.
        ranges: Vec<SearchRange>,
    },
    /// The master asks whether a set would succeed.
    TestSet {
        /// The values to set.
        varbinds: Vec<VarBind>,
    },
    /// The master commits a set.
    CommitSet,
    /// The master undoes a set.
    UndoSet,
    /// The master ends a set.
    CleanupSet,
    /// A subagent sends a notification.
    Notify {
        /// `sysUpTime.0` (optional), `snmpTrapOID.0`, then the notification's objects.
        varbinds: Vec<VarBind>,
    },
    /// A subagent checks that the master is there.
    Ping,
    /// An answer to any of the others.
    Response {
        /// The master's sysUpTime (in answers from a master).
        sys_uptime: u32,
        /// `res.error`: see [`error`].
        error: u16,
        /// The 1-based varbind the error is about, or 0.
        index: u16,
        /// The varbinds.
        varbinds: Vec<VarBind>,
    },
    /// Any other type: its payload is not read.
    Other(PduType),
}

impl Pdu {
    /// Its type.
    pub fn pdu_type(&self) -> PduType {
        match self {
            Pdu::Open { .. } => PduType::Open,
            Pdu::Close { .. } => PduType::Close,
            Pdu::Register { .. } => PduType::Register,
            Pdu::Get { .. } => PduType::Get,
            Pdu::GetNext { .. } => PduType::GetNext,
            Pdu::GetBulk { .. } => PduType::GetBulk,
            Pdu::TestSet { .. } => PduType::TestSet,
            Pdu::CommitSet => PduType::CommitSet,
            Pdu::UndoSet => PduType::UndoSet,
            Pdu::CleanupSet => PduType::CleanupSet,
            Pdu::Notify { .. } => PduType::Notify,
            Pdu::Ping => PduType::Ping,
            Pdu::Response { .. } => PduType::Response,
            Pdu::Other(t) => *t,
        }
    }
}

/// A whole message: the header's identifiers, the context, and the PDU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// `h.sessionID`: assigned by the master in its answer to Open.
    pub session_id: u32,
    /// `h.transactionID`: the master's request it belongs to.
    pub transaction_id: u32,
    /// `h.packetID`: matches an answer to its request.
    pub packet_id: u32,
    /// A non-default context, for the PDU types that carry one.
    pub context: Option<Vec<u8>>,
    /// The PDU.
    pub pdu: Pdu,
}

/// The length of the first whole message in `buf`, `Ok(None)` while more bytes are needed.
/// Checks the header (version, payload length limit and alignment), so that a reader never
/// buffers more than [`HEADER_LEN`] + [`MAX_PAYLOAD`] bytes for one message.
pub fn frame_len(buf: &[u8]) -> Result<Option<usize>, Error> {
    let Some(h) = buf.get(..HEADER_LEN) else { return Ok(None) };
    if h[0] != 1 {
        return Err(Error::Version(h[0]));
    }
    let raw: [u8; 4] = [h[16], h[17], h[18], h[19]];
    let len = if h[2] & flags::NETWORK_BYTE_ORDER != 0 { u32::from_be_bytes(raw) } else { u32::from_le_bytes(raw) };
    if len > MAX_PAYLOAD {
        return Err(Error::TooLong(len));
    }
    if len % 4 != 0 {
        return Err(Error::Misaligned(len));
    }
    let total = HEADER_LEN + len as usize;
    Ok((buf.len() >= total).then_some(total))
}

impl Message {
    /// Parses one whole message (as [`frame_len`] delimits it; bytes past the payload are
    /// ignored).
    ///
    /// Checks, in order: the header ([`frame_len`]), that the payload is all there, the
    /// context, then the PDU's fields in their order. A PDU shorter than its fields is
    /// [`Error::Truncated`]; bytes after the last field are ignored.
    pub fn parse(buf: &[u8]) -> Result<Message, Error> {
        let total = frame_len(buf)?.ok_or(Error::Truncated)?;
        let h = &buf[..HEADER_LEN];
        let be = h[2] & flags::NETWORK_BYTE_ORDER != 0;
        let mut hr = Reader { buf: &h[4..], pos: 0, be };
        let (session_id, transaction_id, packet_id) = (hr.u32()?, hr.u32()?, hr.u32()?);
        let pdu_type = PduType::from(h[1]);
        let mut r = Reader { buf: &buf[HEADER_LEN..total], pos: 0, be };
        let context =
            if pdu_type.has_context() && h[2] & flags::NON_DEFAULT_CONTEXT != 0 { Some(r.octets()?) } else { None };
        let pdu = match pdu_type {
            PduType::Open => {
                let timeout = r.u8()?;
                r.skip(3)?;
                let (id, _) = r.oid()?;
                Pdu::Open { timeout, id, descr: r.octets()? }
            }
            PduType::Close => Pdu::Close { reason: CloseReason::from(r.u8()?) },
            PduType::Register => {
                let (timeout, priority, range_subid) = (r.u8()?, r.u8()?, r.u8()?);
                r.skip(1)?;
                let (subtree, _) = r.oid()?;
                if range_subid != 0 {
                    r.u32()?;
                }
                Pdu::Register { timeout, priority, subtree }
            }
            PduType::Get => Pdu::Get { ranges: r.ranges()? },
            PduType::GetNext => Pdu::GetNext { ranges: r.ranges()? },
            PduType::GetBulk => {
                let (non_repeaters, max_repetitions) = (r.u16()?, r.u16()?);
                Pdu::GetBulk { non_repeaters, max_repetitions, ranges: r.ranges()? }
            }
            PduType::TestSet => Pdu::TestSet { varbinds: r.varbinds()? },
            PduType::CommitSet => Pdu::CommitSet,
            PduType::UndoSet => Pdu::UndoSet,
            PduType::CleanupSet => Pdu::CleanupSet,
            PduType::Notify => Pdu::Notify { varbinds: r.varbinds()? },
            PduType::Ping => Pdu::Ping,
            PduType::Response => {
                let (sys_uptime, error, index) = (r.u32()?, r.u16()?, r.u16()?);
                Pdu::Response { sys_uptime, error, index, varbinds: r.varbinds()? }
            }
            t => Pdu::Other(t),
        };
        Ok(Message { session_id, transaction_id, packet_id, context, pdu })
    }

    /// The length [`Message::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        let ctx = match &self.context {
            Some(c) if self.pdu.pdu_type().has_context() => octets_len(c.len()),
            _ => 0,
        };
        let body = match &self.pdu {
            Pdu::Open { id, descr, .. } => 4 + id.encoded_len() + octets_len(descr.len()),
            Pdu::Close { .. } => 4,
            Pdu::Register { subtree, .. } => 4 + subtree.encoded_len(),
            Pdu::Get { ranges } | Pdu::GetNext { ranges } => ranges_len(ranges),
            Pdu::GetBulk { ranges, .. } => 4 + ranges_len(ranges),
            Pdu::TestSet { varbinds } | Pdu::Notify { varbinds } => varbinds_len(varbinds),
            Pdu::Response { varbinds, .. } => 8 + varbinds_len(varbinds),
            Pdu::CommitSet | Pdu::UndoSet | Pdu::CleanupSet | Pdu::Ping | Pdu::Other(_) => 0,
        };
        HEADER_LEN + ctx + body
    }

    /// The message in network byte order, `NETWORK_BYTE_ORDER` set. An [`Pdu::Other`] is
    /// written as a bare header. Never panics; identifiers of more than 255 sub-identifiers
    /// (after the 1.3.6.1.X prefix) are cut to 255, which the parser's limit keeps from
    /// happening to anything that came from a peer.
    pub fn emit(&self) -> Vec<u8> {
        let mut w = Writer(Vec::with_capacity(self.buffer_len()));
        let pdu_type = self.pdu.pdu_type();
        let context = self.context.as_ref().filter(|_| pdu_type.has_context());
        let mut f = flags::NETWORK_BYTE_ORDER;
        if context.is_some() {
            f |= flags::NON_DEFAULT_CONTEXT;
        }
        w.0.extend_from_slice(&[1, pdu_type.into(), f, 0]);
        w.u32(self.session_id);
        w.u32(self.transaction_id);
        w.u32(self.packet_id);
        w.u32(0); // the payload length, filled in below
        if let Some(c) = context {
            w.octets(c);
        }
        match &self.pdu {
            Pdu::Open { timeout, id, descr } => {
                w.0.extend_from_slice(&[*timeout, 0, 0, 0]);
                w.oid(id, false);
                w.octets(descr);
            }
            Pdu::Close { reason } => w.0.extend_from_slice(&[(*reason).into(), 0, 0, 0]),
            Pdu::Register { timeout, priority, subtree } => {
                w.0.extend_from_slice(&[*timeout, *priority, 0, 0]);
                w.oid(subtree, false);
            }
            Pdu::Get { ranges } | Pdu::GetNext { ranges } => w.ranges(ranges),
            Pdu::GetBulk { non_repeaters, max_repetitions, ranges } => {
                w.u16(*non_repeaters);
                w.u16(*max_repetitions);
                w.ranges(ranges);
            }
            Pdu::TestSet { varbinds } | Pdu::Notify { varbinds } => w.varbinds(varbinds),
            Pdu::Response { sys_uptime, error, index, varbinds } => {
                w.u32(*sys_uptime);
                w.u16(*error);
                w.u16(*index);
                w.varbinds(varbinds);
            }
            Pdu::CommitSet | Pdu::UndoSet | Pdu::CleanupSet | Pdu::Ping | Pdu::Other(_) => {}
        }
        let len = u32::try_from(w.0.len() - HEADER_LEN).unwrap_or(u32::MAX);
        w.0[16..20].copy_from_slice(&len.to_be_bytes());
        w.0
    }
}

fn octets_len(n: usize) -> usize {
    4 + n.div_ceil(4) * 4
}

fn ranges_len(ranges: &[SearchRange]) -> usize {
    ranges.iter().map(|r| r.start.encoded_len() + r.end.encoded_len()).sum()
}

fn varbinds_len(vbs: &[VarBind]) -> usize {
    vbs.iter().map(VarBind::encoded_len).sum()
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    be: bool,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        let end = self.pos.checked_add(n).ok_or(Error::Truncated)?;
        let s = self.buf.get(self.pos..end).ok_or(Error::Truncated)?;
        self.pos = end;
        Ok(s)
    }

    fn skip(&mut self, n: usize) -> Result<(), Error> {
        self.take(n).map(drop)
    }

    fn at_end(&self) -> bool {
        self.pos >= self.buf.len()
    }

    fn u8(&mut self) -> Result<u8, Error> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, Error> {
        let b: [u8; 2] = self.take(2)?.try_into().map_err(|_| Error::Truncated)?;
        Ok(if self.be { u16::from_be_bytes(b) } else { u16::from_le_bytes(b) })
    }

    fn u32(&mut self) -> Result<u32, Error> {
        let b: [u8; 4] = self.take(4)?.try_into().map_err(|_| Error::Truncated)?;
        Ok(if self.be { u32::from_be_bytes(b) } else { u32::from_le_bytes(b) })
    }

    fn u64(&mut self) -> Result<u64, Error> {
        let b: [u8; 8] = self.take(8)?.try_into().map_err(|_| Error::Truncated)?;
        Ok(if self.be { u64::from_be_bytes(b) } else { u64::from_le_bytes(b) })
    }

    /// An identifier and its `include` byte.
    fn oid(&mut self) -> Result<(Oid, bool), Error> {
        let (n, prefix, include) = (self.u8()?, self.u8()?, self.u8()?);
        self.skip(1)?;
        if n as usize > MAX_SUBIDS {
            return Err(Error::OidTooLong(n));
        }
        // Checked before allocating: the sub-identifiers must all be in the payload.
        if self.buf.len().saturating_sub(self.pos) < 4 * n as usize {
            return Err(Error::Truncated);
        }
        let mut v = Vec::with_capacity(n as usize + if prefix != 0 { 5 } else { 0 });
        if prefix != 0 {
            v.extend_from_slice(&[1, 3, 6, 1, u32::from(prefix)]);
        }
        for _ in 0..n {
            v.push(self.u32()?);
        }
        Ok((Oid(v), include != 0))
    }

    fn octets(&mut self) -> Result<Vec<u8>, Error> {
        let n = self.u32()? as usize;
        let s = self.take(n)?.to_vec();
        self.skip(n.next_multiple_of(4) - n)?;
        Ok(s)
    }

    fn ranges(&mut self) -> Result<Vec<SearchRange>, Error> {
        let mut out = Vec::new();
        while !self.at_end() {
            let (start, include) = self.oid()?;
            let (end, _) = self.oid()?;
            out.push(SearchRange { start, include, end });
        }
        Ok(out)
    }

    fn varbinds(&mut self) -> Result<Vec<VarBind>, Error> {
        let mut out = Vec::new();
        while !self.at_end() {
            let t = self.u16()?;
            self.skip(2)?;
            let (name, _) = self.oid()?;
            let value = match t {
                2 => Value::Integer(self.u32()? as i32),
                4 => Value::OctetString(self.octets()?),
                5 => Value::Null,
                6 => Value::ObjectIdentifier(self.oid()?.0),
                64 => {
                    let s = self.octets()?;
                    Value::IpAddress(s.as_slice().try_into().map_err(|_| Error::Truncated)?)
                }
                65 => Value::Counter32(self.u32()?),
                66 => Value::Gauge32(self.u32()?),
                67 => Value::TimeTicks(self.u32()?),
                68 => Value::Opaque(self.octets()?),
                70 => Value::Counter64(self.u64()?),
                128 => Value::NoSuchObject,
                129 => Value::NoSuchInstance,
                130 => Value::EndOfMibView,
                t => return Err(Error::ValueType(t)),
            };
            out.push(VarBind { name, value });
        }
        Ok(out)
    }
}

struct Writer(Vec<u8>);

impl Writer {
    fn u16(&mut self, v: u16) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }

    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }

    fn oid(&mut self, oid: &Oid, include: bool) {
        let (prefix, rest) = oid.compressed();
        let rest = &rest[..rest.len().min(u8::MAX as usize)];
        self.0.extend_from_slice(&[rest.len() as u8, prefix, u8::from(include), 0]);
        for s in rest {
            self.u32(*s);
        }
    }

    fn octets(&mut self, s: &[u8]) {
        self.u32(u32::try_from(s.len()).unwrap_or(u32::MAX));
        self.0.extend_from_slice(s);
        self.0.resize(self.0.len() + (s.len().next_multiple_of(4) - s.len()), 0);
    }

    fn ranges(&mut self, ranges: &[SearchRange]) {
        for r in ranges {
            self.oid(&r.start, r.include);
            self.oid(&r.end, false);
        }
    }

    fn varbinds(&mut self, vbs: &[VarBind]) {
        for vb in vbs {
            self.u16(vb.value.type_code());
            self.u16(0);
            self.oid(&vb.name, false);
            match &vb.value {
                Value::Integer(v) => self.u32(*v as u32),
                Value::Counter32(v) | Value::Gauge32(v) | Value::TimeTicks(v) => self.u32(*v),
                Value::Counter64(v) => self.0.extend_from_slice(&v.to_be_bytes()),
                Value::OctetString(s) | Value::Opaque(s) => self.octets(s),
                Value::IpAddress(a) => self.octets(a),
                Value::ObjectIdentifier(o) => self.oid(o, false),
                Value::Null | Value::NoSuchObject | Value::NoSuchInstance | Value::EndOfMibView => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    fn oid(s: &[u32]) -> Oid {
        Oid(s.to_vec())
    }

    // Captured from net-snmp 5.9.3's snmpd (Debian 12) on its AgentX socket, talking to a
    // subagent that opened session 5 and registered 1.3.6.1.2.1.207.

    /// snmpd's answer to Open: sysUpTime 714, no error, and a varbind echoing the description.
    const OPEN_RESPONSE: &str = "0112100000000005000000000000000100000020000002ca0000000000040000\
                                 0200000000000000000000000000000363617000";
    /// snmpd's answer to Register.
    const REGISTER_RESPONSE: &str =
        "0112100000000005000000000000000200000018000002ca00000000000500000202000000000001000000cf";
    /// `snmpget 1.3.6.1.2.1.207.1.2.1.0`.
    const GET: &str =
        "01051000000000050000000200000003000000200602000000000001000000cf0000000100000002000000010000000000000000";
    /// `snmpgetnext 1.3.6.1.2.1.207`: the range ends where the registration does.
    const GETNEXT: &str = "01061000000000050000000400000005000000180202000000000001000000cf0202000000000001000000d0";
    /// `snmpbulkget 1.3.6.1.2.1.207.1.2`: snmpd sends each repetition to a subagent as a
    /// GetNext.
    const GETNEXT_BULK: &str =
        "01061000000000050000000600000007000000200402000000000001000000cf00000001000000020202000000000001000000d0";
    /// snmpd's answer to a Notify (session 7): the notification's varbinds echoed.
    const NOTIFY_RESPONSE: &str = "0112100000000007000000000000000400000074000006030000000000060000\
                                   0606000000000003000000010000000100000004000000010000000004020100\
                                   00000001000000cf0000000000000001000400000a02000000000001000000cf\
                                   0000000100000001000000010000000100000003000000020000000100000001\
                                   00000004 0a000001";
    /// snmpd's answer to Ping (session 7).
    const PING_RESPONSE: &str = "01121000000000070000000000000003000000080000060300000000";

    fn parse_hex(s: &str) -> Message {
        let b = hex(&s.replace(' ', ""));
        assert_eq!(frame_len(&b), Ok(Some(b.len())));
        Message::parse(&b).unwrap()
    }

    #[test]
    fn test_parse_captured_responses() {
        let m = parse_hex(OPEN_RESPONSE);
        assert_eq!((m.session_id, m.transaction_id, m.packet_id), (5, 0, 1));
        assert_eq!(
            m.pdu,
            Pdu::Response {
                sys_uptime: 714,
                error: 0,
                index: 0,
                varbinds: vec![VarBind { name: oid(&[0, 0]), value: Value::OctetString(b"cap".to_vec()) }],
            }
        );
        let m = parse_hex(REGISTER_RESPONSE);
        assert_eq!(m.packet_id, 2);
        let Pdu::Response { varbinds, .. } = m.pdu else { panic!() };
        assert_eq!(varbinds, vec![VarBind { name: oid(&[1, 3, 6, 1, 2, 1, 207]), value: Value::Null }]);
        let m = parse_hex(PING_RESPONSE);
        assert_eq!(m.pdu, Pdu::Response { sys_uptime: 0x603, error: 0, index: 0, varbinds: vec![] });
        let m = parse_hex(NOTIFY_RESPONSE);
        let Pdu::Response { varbinds, .. } = m.pdu else { panic!() };
        assert_eq!(varbinds.len(), 2);
        assert_eq!(varbinds[0].name, oid(&[1, 3, 6, 1, 6, 3, 1, 1, 4, 1, 0]));
        assert_eq!(varbinds[0].value, Value::ObjectIdentifier(oid(&[1, 3, 6, 1, 2, 1, 207, 0, 1])));
        assert_eq!(varbinds[1].name, oid(&[1, 3, 6, 1, 2, 1, 207, 1, 1, 1, 1, 3, 2, 1, 1]));
        assert_eq!(varbinds[1].value, Value::OctetString(vec![10, 0, 0, 1]));
    }

    #[test]
    fn test_parse_captured_requests() {
        let m = parse_hex(GET);
        assert_eq!((m.session_id, m.transaction_id, m.packet_id, m.context.as_ref()), (5, 2, 3, None));
        assert_eq!(
            m.pdu,
            Pdu::Get {
                ranges: vec![SearchRange {
                    start: oid(&[1, 3, 6, 1, 2, 1, 207, 1, 2, 1, 0]),
                    include: false,
                    end: Oid::null()
                }]
            }
        );
        let m = parse_hex(GETNEXT);
        assert_eq!(
            m.pdu,
            Pdu::GetNext {
                ranges: vec![SearchRange {
                    start: oid(&[1, 3, 6, 1, 2, 1, 207]),
                    include: false,
                    end: oid(&[1, 3, 6, 1, 2, 1, 208])
                }]
            }
        );
        let m = parse_hex(GETNEXT_BULK);
        let Pdu::GetNext { ranges } = m.pdu else { panic!() };
        assert_eq!(ranges[0].start, oid(&[1, 3, 6, 1, 2, 1, 207, 1, 2]));
        assert!(!ranges[0].include);
        assert_eq!(ranges[0].end, oid(&[1, 3, 6, 1, 2, 1, 208]));
    }

    #[test]
    fn test_emit_open_and_register() {
        // The bytes snmpd accepted from the capturing subagent.
        let open = Message {
            session_id: 0,
            transaction_id: 0,
            packet_id: 1,
            context: None,
            pdu: Pdu::Open { timeout: 5, id: Oid::null(), descr: b"cap".to_vec() },
        };
        assert_eq!(
            open.emit(),
            hex("0101100000000000000000000000000100000010050000000000000000000003636170 00".replace(' ', "").as_str())
        );
        assert_eq!(open.emit().len(), open.buffer_len());
        let reg = Message {
            session_id: 5,
            transaction_id: 0,
            packet_id: 2,
            context: None,
            pdu: Pdu::Register { timeout: 0, priority: 127, subtree: oid(&[1, 3, 6, 1, 2, 1, 207]) },
        };
        assert_eq!(
            reg.emit(),
            hex("01031000000000050000000000000002000000100 07f000002020000000000010000 00cf".replace(' ', "").as_str())
        );
    }

    #[test]
    fn test_emit_response_answers_captured_get() {
        let get = parse_hex(GET);
        let resp = Message {
            session_id: get.session_id,
            transaction_id: get.transaction_id,
            packet_id: get.packet_id,
            context: None,
            pdu: Pdu::Response {
                sys_uptime: 0,
                error: 0,
                index: 0,
                varbinds: vec![VarBind { name: oid(&[1, 3, 6, 1, 2, 1, 207, 1, 2, 1, 0]), value: Value::Counter64(7) }],
            },
        };
        let b = resp.emit();
        assert_eq!(
            b,
            hex("01121000000000050000000200000003000000300000000000000000004600000602000000000001000000cf\
                 00000001000000020000000100000000 0000000000000007"
                .replace(' ', "")
                .as_str())
        );
        assert_eq!(Message::parse(&b).unwrap(), resp);
    }

    #[test]
    fn test_parse_little_endian() {
        // A GetBulk in the host order of a little-endian master (NETWORK_BYTE_ORDER clear),
        // with a non-default context "ctx": non-repeaters 1, max-repetitions 3, two ranges.
        let mut b = vec![1, 7, flags::NON_DEFAULT_CONTEXT, 0];
        for v in [9u32, 10, 11, 0] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        b.extend_from_slice(&3u32.to_le_bytes());
        b.extend_from_slice(b"ctx\0");
        b.extend_from_slice(&1u16.to_le_bytes());
        b.extend_from_slice(&3u16.to_le_bytes());
        for start in [[1u32, 207], [1, 208]] {
            b.extend_from_slice(&[2, 2, 1, 0]);
            for s in start {
                b.extend_from_slice(&s.to_le_bytes());
            }
            b.extend_from_slice(&[0, 0, 0, 0]);
        }
        let len = (b.len() - HEADER_LEN) as u32;
        b[16..20].copy_from_slice(&len.to_le_bytes());
        let m = Message::parse(&b).unwrap();
        assert_eq!((m.session_id, m.transaction_id, m.packet_id), (9, 10, 11));
        assert_eq!(m.context.as_deref(), Some(&b"ctx"[..]));
        let r = |s: &[u32]| SearchRange { start: oid(s), include: true, end: Oid::null() };
        assert_eq!(
            m.pdu,
            Pdu::GetBulk {
                non_repeaters: 1,
                max_repetitions: 3,
                ranges: vec![r(&[1, 3, 6, 1, 2, 1, 207]), r(&[1, 3, 6, 1, 2, 1, 208])]
            }
        );
        // Emitted again in network byte order, it parses to the same message.
        let again = Message::parse(&m.emit()).unwrap();
        assert_eq!(again, m);
        assert_ne!(m.emit()[2] & flags::NETWORK_BYTE_ORDER, 0);
    }

    fn every_pdu() -> Vec<Pdu> {
        let vb = |v: Value| VarBind { name: oid(&[1, 3, 6, 1, 4, 1, 9, 9]), value: v };
        let all_values = vec![
            vb(Value::Integer(-5)),
            vb(Value::OctetString(b"hello".to_vec())),
            vb(Value::Null),
            vb(Value::ObjectIdentifier(oid(&[1, 3, 6, 1, 2, 1, 207, 0, 1]))),
            vb(Value::IpAddress([192, 0, 2, 1])),
            vb(Value::Counter32(u32::MAX)),
            vb(Value::Gauge32(7)),
            vb(Value::TimeTicks(100)),
            vb(Value::Opaque(vec![1, 2, 3, 4, 5, 6, 7, 8])),
            vb(Value::Counter64(u64::MAX - 1)),
            vb(Value::NoSuchObject),
            vb(Value::NoSuchInstance),
            vb(Value::EndOfMibView),
            // Not under 1.3.6.1: no prefix compression.
            VarBind { name: oid(&[0, 0]), value: Value::OctetString(vec![]) },
            // 1.3.6.1.X exactly: a prefix and no sub-identifiers.
            VarBind { name: oid(&[1, 3, 6, 1, 4]), value: Value::Null },
        ];
        let ranges = vec![
            SearchRange { start: oid(&[1, 3, 6, 1, 2, 1, 207]), include: true, end: oid(&[1, 3, 6, 1, 2, 1, 208]) },
            SearchRange { start: Oid::null(), include: false, end: Oid::null() },
        ];
        vec![
            Pdu::Open { timeout: 5, id: oid(&[1, 3, 6, 1, 4, 1, 8072]), descr: b"hav".to_vec() },
            Pdu::Close { reason: CloseReason::Shutdown },
            Pdu::Register { timeout: 0, priority: 127, subtree: oid(&[1, 3, 6, 1, 2, 1, 207]) },
            Pdu::Get { ranges: ranges.clone() },
            Pdu::GetNext { ranges: ranges.clone() },
            Pdu::GetBulk { non_repeaters: 1, max_repetitions: 10, ranges },
            Pdu::TestSet { varbinds: all_values.clone() },
            Pdu::CommitSet,
            Pdu::UndoSet,
            Pdu::CleanupSet,
            Pdu::Notify { varbinds: all_values.clone() },
            Pdu::Ping,
            Pdu::Response { sys_uptime: 123, error: error::NOT_WRITABLE, index: 1, varbinds: all_values },
            Pdu::Other(PduType::IndexAllocate),
            Pdu::Other(PduType::Unknown(99)),
        ]
    }

    #[test]
    fn test_round_trip_every_pdu() {
        for pdu in every_pdu() {
            for context in [None, Some(b"ctx1".to_vec()), Some(b"c".to_vec())] {
                let m = Message { session_id: 1, transaction_id: 2, packet_id: 3, context, pdu: pdu.clone() };
                let b = m.emit();
                assert_eq!(b.len(), m.buffer_len(), "{pdu:?}");
                assert_eq!(b.len() % 4, 0);
                let mut back = Message::parse(&b).unwrap();
                if !pdu.pdu_type().has_context() {
                    // Not carried by this type.
                    assert_eq!(back.context, None);
                    back.context = m.context.clone();
                }
                assert_eq!(back, m);
            }
        }
    }

    #[test]
    fn test_header_checks() {
        let ping = Message { session_id: 1, transaction_id: 0, packet_id: 1, context: None, pdu: Pdu::Ping }.emit();
        assert_eq!(frame_len(&ping[..19]), Ok(None));
        let mut v2 = ping.clone();
        v2[0] = 2;
        assert_eq!(frame_len(&v2), Err(Error::Version(2)));
        assert_eq!(Message::parse(&v2), Err(Error::Version(2)));
        // The length is refused from the header alone, before anything is buffered.
        let mut long = ping[..HEADER_LEN].to_vec();
        long[16..20].copy_from_slice(&(MAX_PAYLOAD + 4).to_be_bytes());
        assert_eq!(frame_len(&long), Err(Error::TooLong(MAX_PAYLOAD + 4)));
        long[16..20].copy_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(frame_len(&long), Err(Error::TooLong(u32::MAX)));
        let mut odd = ping[..HEADER_LEN].to_vec();
        odd[16..20].copy_from_slice(&6u32.to_be_bytes());
        assert_eq!(frame_len(&odd), Err(Error::Misaligned(6)));
        // A payload announced and not all there.
        let mut short = ping.clone();
        short[16..20].copy_from_slice(&8u32.to_be_bytes());
        assert_eq!(frame_len(&short), Ok(None));
        assert_eq!(Message::parse(&short), Err(Error::Truncated));
    }

    #[test]
    fn test_field_checks() {
        let frame = |pdu_type: u8, payload: &[u8]| {
            let mut b = vec![1, pdu_type, flags::NETWORK_BYTE_ORDER, 0];
            b.extend_from_slice(&[0; 12]);
            b.extend_from_slice(&(payload.len() as u32).to_be_bytes());
            b.extend_from_slice(payload);
            b
        };
        // An identifier of 129 sub-identifiers, all present.
        let mut p = vec![129, 0, 0, 0];
        p.extend(std::iter::repeat_n(0u8, 129 * 4));
        p.extend_from_slice(&[0, 0, 0, 0]);
        assert_eq!(Message::parse(&frame(5, &p)), Err(Error::OidTooLong(129)));
        // 128 is the limit.
        let mut p = vec![128, 0, 0, 0];
        p.extend(std::iter::repeat_n(0u8, 128 * 4));
        p.extend_from_slice(&[0, 0, 0, 0]);
        let Pdu::Get { ranges } = Message::parse(&frame(5, &p)).unwrap().pdu else { panic!() };
        assert_eq!(ranges[0].start.0.len(), 128);
        // An identifier announcing more sub-identifiers than the payload holds.
        assert_eq!(Message::parse(&frame(5, &[100, 0, 0, 0, 0, 0, 0, 1])), Err(Error::Truncated));
        // A range without its end.
        assert_eq!(Message::parse(&frame(6, &[0, 0, 0, 0])), Err(Error::Truncated));
        // An octet string longer than the payload.
        assert_eq!(
            Message::parse(&frame(18, &[0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xf0])),
            Err(Error::Truncated)
        );
        // A value type RFC 2741 does not define.
        assert_eq!(
            Message::parse(&frame(18, &[0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0])),
            Err(Error::ValueType(3))
        );
        // An IpAddress of 5 bytes.
        assert_eq!(
            Message::parse(&frame(12, &[0, 64, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 1, 2, 3, 4, 5, 0, 0, 0])),
            Err(Error::Truncated)
        );
    }

    #[test]
    fn test_truncations_and_noise_never_panic() {
        let mut rng = fastrand::Rng::with_seed(2741);
        for pdu in every_pdu() {
            let b =
                Message { session_id: 1, transaction_id: 2, packet_id: 3, context: Some(b"x".to_vec()), pdu }.emit();
            // Every shorter payload, the header's length adjusted to it (kept aligned).
            for cut in (HEADER_LEN..b.len()).step_by(4) {
                let mut t = b[..cut].to_vec();
                t[16..20].copy_from_slice(&((cut - HEADER_LEN) as u32).to_be_bytes());
                let _ = Message::parse(&t);
            }
            // Random bytes in place of the payload.
            for _ in 0..200 {
                let mut t = b.clone();
                for x in &mut t[HEADER_LEN..] {
                    if rng.u8(..4) == 0 {
                        *x = rng.u8(..);
                    }
                }
                if let Ok(m) = Message::parse(&t) {
                    // Whatever parses emits without panicking.
                    let _ = m.emit();
                }
            }
        }
    }

    #[test]
    fn test_oid_order_and_display() {
        let a = oid(&[1, 3, 6, 1, 2, 1, 207, 1]);
        let b = oid(&[1, 3, 6, 1, 2, 1, 207, 1, 0]);
        let c = oid(&[1, 3, 6, 1, 2, 1, 207, 2]);
        let d = oid(&[1, 3, 6, 1, 2, 1, 207, 10]);
        assert!(a < b && b < c && c < d);
        assert_eq!(a.to_string(), "1.3.6.1.2.1.207.1");
        assert_eq!(Oid::null().to_string(), "");
    }
}
