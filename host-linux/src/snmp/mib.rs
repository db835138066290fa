//! VRRPv3-MIB (RFC 6527), read-only: the daemon's [`Snapshot`] as a sorted list of object
//! instances, and the GET, GETNEXT and GETBULK of AgentX over it.
//!
//! ```text
//! vrrpv3MIB                          1.3.6.1.2.1.207
//!   vrrpv3Notifications              .0   (.1 vrrpv3NewMaster, .2 vrrpv3ProtoError)
//!   vrrpv3OperationsTable            .1.1.1.1.<column>.<ifIndex>.<VRID>.<InetAddressType>
//!   vrrpv3AssociatedIpAddrTable      .1.1.2.1.2.<ifIndex>.<VRID>.<type>.<length>.<address bytes>
//!   vrrpv3RouterChecksumErrors ...   .1.2.1.0 to .1.2.4.0
//!   vrrpv3StatisticsTable            .1.2.5.1.<column>.<ifIndex>.<VRID>.<InetAddressType>
//! ```
//!
//! Some objects need what a snapshot does not hold: why an instance last became master, its
//! last protocol error, and when it left Initialize. [`Notes`] collects them from the daemon's
//! [`Event`]s, and tells which events are notifications.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use hav_core::vrrp::{DropReason, Reason, State};

use super::agentx::{error, Oid, Pdu, SearchRange, Value, VarBind};
use crate::daemon::snapshot::{Event, InstanceView, Snapshot};

/// `vrrpv3MIB`, the subtree the subagent registers.
pub const VRRPV3_MIB: &[u32] = &[1, 3, 6, 1, 2, 1, 207];
/// `vrrpv3NewMaster`.
pub const NEW_MASTER: &[u32] = &[1, 3, 6, 1, 2, 1, 207, 0, 1];
/// `vrrpv3ProtoError`.
pub const PROTO_ERROR: &[u32] = &[1, 3, 6, 1, 2, 1, 207, 0, 2];
/// `snmpTrapOID.0` (SNMPv2-MIB), the second varbind of every notification.
pub const SNMP_TRAP_OID: &[u32] = &[1, 3, 6, 1, 6, 3, 1, 1, 4, 1, 0];

/// `vrrpv3OperationsEntry`.
pub const OPERATIONS_ENTRY: &[u32] = &[1, 3, 6, 1, 2, 1, 207, 1, 1, 1, 1];
/// `vrrpv3AssociatedIpAddrEntry`.
pub const ASSOCIATED_ENTRY: &[u32] = &[1, 3, 6, 1, 2, 1, 207, 1, 1, 2, 1];
/// `vrrpv3Statistics`, the parent of the global counters and of the statistics table.
pub const STATISTICS: &[u32] = &[1, 3, 6, 1, 2, 1, 207, 1, 2];
/// `vrrpv3StatisticsEntry`.
pub const STATISTICS_ENTRY: &[u32] = &[1, 3, 6, 1, 2, 1, 207, 1, 2, 5, 1];

/// Columns of `vrrpv3OperationsEntry` (1 and 2 are the not-accessible VRID and address type).
pub mod operations {
    /// `vrrpv3OperationsMasterIpAddr`.
    pub const MASTER_IP: u32 = 3;
    /// `vrrpv3OperationsPrimaryIpAddr`.
    pub const PRIMARY_IP: u32 = 4;
    /// `vrrpv3OperationsVirtualMacAddr`.
    pub const VIRTUAL_MAC: u32 = 5;
    /// `vrrpv3OperationsStatus`.
    pub const STATUS: u32 = 6;
    /// `vrrpv3OperationsPriority`.
    pub const PRIORITY: u32 = 7;
    /// `vrrpv3OperationsAddrCount`.
    pub const ADDR_COUNT: u32 = 8;
    /// `vrrpv3OperationsAdvInterval`.
    pub const ADV_INTERVAL: u32 = 9;
    /// `vrrpv3OperationsPreemptMode`.
    pub const PREEMPT_MODE: u32 = 10;
    /// `vrrpv3OperationsAcceptMode`.
    pub const ACCEPT_MODE: u32 = 11;
    /// `vrrpv3OperationsUpTime`.
    pub const UP_TIME: u32 = 12;
    /// `vrrpv3OperationsRowStatus`.
    pub const ROW_STATUS: u32 = 13;
}

/// The `vrrpv3AssociatedIpAddrEntry` column served (1, the address, is the index).
pub const ASSOCIATED_ROW_STATUS: u32 = 2;

/// The global counters under `vrrpv3Statistics`, each with the instance `.0`.
pub mod global {
    /// `vrrpv3RouterChecksumErrors`.
    pub const CHECKSUM_ERRORS: u32 = 1;
    /// `vrrpv3RouterVersionErrors`.
    pub const VERSION_ERRORS: u32 = 2;
    /// `vrrpv3RouterVrIdErrors`.
    pub const VRID_ERRORS: u32 = 3;
    /// `vrrpv3GlobalStatisticsDiscontinuityTime`.
    pub const DISCONTINUITY_TIME: u32 = 4;
}

/// Columns of `vrrpv3StatisticsEntry`.
pub mod statistics {
    /// `vrrpv3StatisticsMasterTransitions`.
    pub const MASTER_TRANSITIONS: u32 = 1;
    /// `vrrpv3StatisticsNewMasterReason`.
    pub const NEW_MASTER_REASON: u32 = 2;
    /// `vrrpv3StatisticsRcvdAdvertisements`.
    pub const RCVD_ADVERTISEMENTS: u32 = 3;
    /// `vrrpv3StatisticsAdvIntervalErrors`.
    pub const ADV_INTERVAL_ERRORS: u32 = 4;
    /// `vrrpv3StatisticsIpTtlErrors`.
    pub const IP_TTL_ERRORS: u32 = 5;
    /// `vrrpv3StatisticsProtoErrReason`.
    pub const PROTO_ERR_REASON: u32 = 6;
    /// `vrrpv3StatisticsRcvdPriZeroPackets`.
    pub const RCVD_PRI_ZERO: u32 = 7;
    /// `vrrpv3StatisticsSentPriZeroPackets`.
    pub const SENT_PRI_ZERO: u32 = 8;
    /// `vrrpv3StatisticsRcvdInvalidTypePackets`.
    pub const RCVD_INVALID_TYPE: u32 = 9;
    /// `vrrpv3StatisticsAddressListErrors`.
    pub const ADDRESS_LIST_ERRORS: u32 = 10;
    /// `vrrpv3StatisticsPacketLengthErrors`.
    pub const PACKET_LENGTH_ERRORS: u32 = 11;
    /// `vrrpv3StatisticsRowDiscontinuityTime`.
    pub const ROW_DISCONTINUITY_TIME: u32 = 12;
    /// `vrrpv3StatisticsRefreshRate`.
    pub const REFRESH_RATE: u32 = 13;
}

/// The most varbinds in one answer; a GETBULK asking for more gets fewer repetitions. snmpd
/// itself asks for one GETNEXT per repetition, and answers an SNMP GETBULK within its own
/// message size, so this only bounds what a hostile or odd master can ask for.
pub const MAX_ANSWER: usize = 2048;

/// Notes about this many rows at most; events about further rows are not noted (they are
/// still notified). A daemon runs at most a few thousand instances.
pub const MAX_NOTES: usize = 65_536;

/// How long a view may be served after its snapshot was taken, and so the
/// `vrrpv3StatisticsRefreshRate` reported.
pub const REFRESH: Duration = Duration::from_secs(1);

/// A row of the per-router tables: `ifIndex`, VRID and address family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RowKey {
    /// The interface index.
    pub ifindex: u32,
    /// The VRID.
    pub vrid: u8,
    /// IPv6 instead of IPv4.
    pub ipv6: bool,
}

impl RowKey {
    /// The row of an instance.
    pub fn of(i: &InstanceView) -> RowKey {
        RowKey { ifindex: i.ifindex, vrid: i.vrid, ipv6: i.ipv6 }
    }

    /// The row index as sub-identifiers: ifIndex, VRID, InetAddressType (ipv4(1), ipv6(2)).
    pub fn index(self) -> [u32; 3] {
        [self.ifindex, u32::from(self.vrid), if self.ipv6 { 2 } else { 1 }]
    }
}

/// `vrrpv3StatisticsNewMasterReason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MasterReason {
    /// notMaster(0): never master.
    NotMaster = 0,
    /// priority(1): master by priority (the address owner, or the master gave up with priority 0).
    Priority = 1,
    /// preempted(2): took over from a master of lower priority (or by an operator's takeover).
    Preempted = 2,
    /// masterNoResponse(3): the master went silent.
    MasterNoResponse = 3,
}

impl MasterReason {
    /// The reason hav-core gives for a transition to Master, as the MIB says it.
    pub fn from_core(r: Reason) -> MasterReason {
        match r {
            Reason::MasterDown => MasterReason::MasterNoResponse,
            Reason::PreemptDelay | Reason::Preempted | Reason::Admin | Reason::Sync => MasterReason::Preempted,
            // Startup and FaultCleared lead straight to Master only for the address owner;
            // MasterShutdown is the old master advertising priority 0.
            Reason::Startup | Reason::FaultCleared | Reason::MasterShutdown | Reason::Fault | Reason::Shutdown => {
                MasterReason::Priority
            }
        }
    }
}

/// `vrrpv3StatisticsProtoErrReason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProtoErrReason {
    /// noError(0).
    #[default]
    NoError = 0,
    /// ipTtlError(1).
    IpTtl = 1,
    /// versionError(2).
    Version = 2,
    /// checksumError(3).
    Checksum = 3,
    /// vrIdError(4).
    VrId = 4,
}

impl ProtoErrReason {
    /// The MIB's reason for a dropped advert; `None` for the reasons it has no value for
    /// (those are neither noted nor notified).
    pub fn from_drop(r: DropReason) -> Option<ProtoErrReason> {
        match r {
            DropReason::Ttl => Some(ProtoErrReason::IpTtl),
            DropReason::Version => Some(ProtoErrReason::Version),
            DropReason::Checksum => Some(ProtoErrReason::Checksum),
            DropReason::Vrid => Some(ProtoErrReason::VrId),
            _ => None,
        }
    }
}

/// What the events said about one row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RowNotes {
    /// Why it last became master.
    pub master_reason: Option<MasterReason>,
    /// Its last protocol error.
    pub proto_error: ProtoErrReason,
    /// When it last left Initialize (or Fault) for Backup or Master; `None` while it is in
    /// one of those.
    pub up_since: Option<SystemTime>,
}

/// A notification to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notification {
    /// `vrrpv3NewMaster`: the row became master.
    NewMaster {
        /// The row.
        row: RowKey,
        /// `vrrpv3OperationsMasterIpAddr`.
        master: Option<IpAddr>,
        /// `vrrpv3StatisticsNewMasterReason`.
        reason: MasterReason,
    },
    /// `vrrpv3ProtoError`.
    ProtoError {
        /// The row.
        row: RowKey,
        /// `vrrpv3StatisticsProtoErrReason`.
        reason: ProtoErrReason,
    },
}

impl Notification {
    /// The varbinds of a Notify-PDU: `snmpTrapOID.0`, then the notification's objects (the
    /// master puts `sysUpTime.0` first).
    pub fn varbinds(&self) -> Vec<VarBind> {
        let trap = |oid: &[u32]| VarBind { name: Oid::from(SNMP_TRAP_OID), value: Value::ObjectIdentifier(oid.into()) };
        match *self {
            Notification::NewMaster { row, master, reason } => vec![
                trap(NEW_MASTER),
                VarBind {
                    name: instance(OPERATIONS_ENTRY, operations::MASTER_IP, row),
                    value: Value::OctetString(inet(master, row.ipv6)),
                },
                VarBind {
                    name: instance(STATISTICS_ENTRY, statistics::NEW_MASTER_REASON, row),
                    value: Value::Integer(reason as i32),
                },
            ],
            Notification::ProtoError { row, reason } => vec![
                trap(PROTO_ERROR),
                VarBind {
                    name: instance(STATISTICS_ENTRY, statistics::PROTO_ERR_REASON, row),
                    value: Value::Integer(reason as i32),
                },
            ],
        }
    }
}

/// What the daemon's events said, per row, bounded by [`MAX_NOTES`].
#[derive(Debug, Default)]
pub struct Notes {
    rows: HashMap<RowKey, RowNotes>,
}

impl Notes {
    /// Notes an event received at `now`; returns the notification it is, if any. A view built
    /// before shows the notes from its next build.
    pub fn handle(&mut self, ev: &Event, now: SystemTime) -> Option<Notification> {
        match ev {
            Event::Transition { ifindex, vrid, ipv6, from, to, reason, master, .. } => {
                let row = RowKey { ifindex: *ifindex, vrid: *vrid, ipv6: *ipv6 };
                let up = |s: State| matches!(s, State::Backup | State::Master);
                let master_reason = (*to == State::Master).then(|| MasterReason::from_core(*reason));
                self.update(row, |n| {
                    if let Some(r) = master_reason {
                        n.master_reason = Some(r);
                    }
                    if !up(*to) {
                        n.up_since = None;
                    } else if !up(*from) || n.up_since.is_none() {
                        n.up_since = Some(now);
                    }
                });
                master_reason.map(|reason| Notification::NewMaster { row, master: *master, reason })
            }
            Event::ProtoError { ifindex, vrid, ipv6, reason, .. } => {
                let reason = ProtoErrReason::from_drop(*reason)?;
                let row = RowKey { ifindex: *ifindex, vrid: *vrid, ipv6: *ipv6 };
                self.update(row, |n| n.proto_error = reason);
                Some(Notification::ProtoError { row, reason })
            }
        }
    }

    fn update(&mut self, row: RowKey, f: impl FnOnce(&mut RowNotes)) {
        if self.rows.len() < MAX_NOTES || self.rows.contains_key(&row) {
            f(self.rows.entry(row).or_default());
        }
    }

    /// The notes about `row`.
    pub fn get(&self, row: RowKey) -> Option<&RowNotes> {
        self.rows.get(&row)
    }

    /// Forgets the rows `snap` does not have (instances a reload removed).
    pub fn retain(&mut self, snap: &Snapshot) {
        if self.rows.is_empty() {
            return;
        }
        let keep: std::collections::HashSet<RowKey> = snap.instances.iter().map(RowKey::of).collect();
        self.rows.retain(|k, _| keep.contains(k));
    }

    /// How many rows have notes.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether no row has notes.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

/// The MIB at one instant: every object instance, sorted by name.
#[derive(Debug, Clone, Default)]
pub struct View {
    objects: Vec<VarBind>,
}

fn instance(entry: &[u32], column: u32, row: RowKey) -> Oid {
    let mut v = Vec::with_capacity(entry.len() + 4);
    v.extend_from_slice(entry);
    v.push(column);
    v.extend_from_slice(&row.index());
    Oid(v)
}

/// An InetAddress of the row's family: the address, or zeros when there is none (or it is of
/// the other family).
fn inet(addr: Option<IpAddr>, ipv6: bool) -> Vec<u8> {
    match (addr, ipv6) {
        (Some(IpAddr::V4(a)), false) => a.octets().to_vec(),
        (Some(IpAddr::V6(a)), true) => a.octets().to_vec(),
        (_, false) => vec![0; 4],
        (_, true) => vec![0; 16],
    }
}

fn truth(b: bool) -> Value {
    Value::Integer(if b { 1 } else { 2 })
}

fn ticks(d: Duration) -> u32 {
    // TimeTicks wrap (RFC 2578): a modulo, not a saturation.
    (d.as_millis() / 10) as u32
}

impl View {
    /// Builds the view of `snap`. `discontinuity` is the master's sysUpTime when the daemon's
    /// counters started (0 when they started before the master did).
    ///
    /// Rows are served for every instance, VRRPv2 ones included (the MIB's rows are keyed by
    /// interface, VRID and family, not by version); of two instances with the same key (which
    /// the config does not allow), the first is served.
    pub fn build(snap: &Snapshot, notes: &Notes, discontinuity: u32) -> View {
        let mut o: Vec<VarBind> = Vec::with_capacity(4 + snap.instances.len() * 28);
        let mut push = |name: Oid, value: Value| o.push(VarBind { name, value });
        let total = |r: DropReason| snap.instances.iter().map(|i| i.counters.drops[r as usize]).sum::<u64>();
        let scalar = |n: u32| Oid::join(STATISTICS, &[n, 0]);
        push(scalar(global::CHECKSUM_ERRORS), Value::Counter64(total(DropReason::Checksum)));
        push(scalar(global::VERSION_ERRORS), Value::Counter64(total(DropReason::Version)));
        push(
            scalar(global::VRID_ERRORS),
            Value::Counter64(snap.stray.unknown_vrid.saturating_add(total(DropReason::Vrid))),
        );
        push(scalar(global::DISCONTINUITY_TIME), Value::TimeTicks(discontinuity));
        for i in &snap.instances {
            let row = RowKey::of(i);
            let notes = notes.get(row);
            let c = &i.counters;
            let drop = |r: DropReason| c.drops[r as usize];
            let mut vips: Vec<IpAddr> = i.vips.iter().copied().filter(|a| a.is_ipv6() == i.ipv6).collect();
            vips.sort_unstable();
            vips.dedup();
            for a in &vips {
                let bytes = inet(Some(*a), i.ipv6);
                let mut name = instance(ASSOCIATED_ENTRY, ASSOCIATED_ROW_STATUS, row).0;
                name.push(bytes.len() as u32);
                name.extend(bytes.iter().map(|b| u32::from(*b)));
                push(Oid(name), Value::Integer(1));
            }
            let op = |col| instance(OPERATIONS_ENTRY, col, row);
            let master = match i.state {
                State::Master => Some(i.primary_addr),
                _ => i.master_addr,
            };
            let (status, up) = match i.state {
                State::Backup => (2, true),
                State::Master => (3, true),
                // FAULT is not one of the MIB's states: the router waits, as in Initialize.
                State::Initialize | State::Fault => (1, false),
            };
            let up_time = match (up, notes.and_then(|n| n.up_since).or(i.since)) {
                (true, Some(t)) => ticks(snap.at.duration_since(t).unwrap_or_default()),
                _ => 0,
            };
            let vmac = i.vmac.as_ref().map(|v| v.1).unwrap_or([0, 0, 0x5e, 0, if i.ipv6 { 2 } else { 1 }, i.vrid]);
            push(op(operations::MASTER_IP), Value::OctetString(inet(master, i.ipv6)));
            push(op(operations::PRIMARY_IP), Value::OctetString(inet(Some(i.primary_addr), i.ipv6)));
            push(op(operations::VIRTUAL_MAC), Value::OctetString(vmac.to_vec()));
            push(op(operations::STATUS), Value::Integer(status));
            push(op(operations::PRIORITY), Value::Gauge32(u32::from(i.effective_priority)));
            push(op(operations::ADDR_COUNT), Value::Integer(vips.len().min(255) as i32));
            push(op(operations::ADV_INTERVAL), Value::Integer(i.adver_int_cs.min(i32::MAX as u64) as i32));
            push(op(operations::PREEMPT_MODE), truth(i.preempt));
            push(op(operations::ACCEPT_MODE), truth(i.accept));
            push(op(operations::UP_TIME), Value::TimeTicks(up_time));
            push(op(operations::ROW_STATUS), Value::Integer(1));

            let st = |col| instance(STATISTICS_ENTRY, col, row);
            let master_reason = match notes.and_then(|n| n.master_reason) {
                Some(r) => r,
                None if c.became_master == 0 => MasterReason::NotMaster,
                // Became master before the subagent heard of it: the usual way.
                None => MasterReason::MasterNoResponse,
            };
            let received: u64 = c.adverts_rx.saturating_add(
                DropReason::ALL.iter().filter(|r| **r != DropReason::Own).map(|r| drop(*r)).sum::<u64>(),
            );
            push(st(statistics::MASTER_TRANSITIONS), Value::Counter32(c.became_master as u32));
            push(st(statistics::NEW_MASTER_REASON), Value::Integer(master_reason as i32));
            push(st(statistics::RCVD_ADVERTISEMENTS), Value::Counter64(received));
            push(
                st(statistics::ADV_INTERVAL_ERRORS),
                Value::Counter64(drop(DropReason::Interval).saturating_add(drop(DropReason::ZeroInterval))),
            );
            push(st(statistics::IP_TTL_ERRORS), Value::Counter64(drop(DropReason::Ttl)));
            push(
                st(statistics::PROTO_ERR_REASON),
                Value::Integer(notes.map(|n| n.proto_error).unwrap_or_default() as i32),
            );
            push(st(statistics::RCVD_PRI_ZERO), Value::Counter64(c.prio_zero_rx));
            push(st(statistics::SENT_PRI_ZERO), Value::Counter64(c.prio_zero_tx));
            // hav-core counts an unknown type among the messages that do not parse, which are
            // reported as length errors below.
            push(st(statistics::RCVD_INVALID_TYPE), Value::Counter64(0));
            push(st(statistics::ADDRESS_LIST_ERRORS), Value::Counter64(drop(DropReason::Addresses)));
            push(st(statistics::PACKET_LENGTH_ERRORS), Value::Counter64(drop(DropReason::Malformed)));
            push(st(statistics::ROW_DISCONTINUITY_TIME), Value::TimeTicks(discontinuity));
            push(st(statistics::REFRESH_RATE), Value::Gauge32(REFRESH.as_millis() as u32));
        }
        // Stable: of two instances with one key, the first one's objects come first.
        o.sort_by(|a, b| a.name.cmp(&b.name));
        o.dedup_by(|later, first| later.name == first.name);
        View { objects: o }
    }

    /// Every object instance, in order.
    pub fn objects(&self) -> &[VarBind] {
        &self.objects
    }

    /// GET (RFC 2741, section 7.2.3.1): the value of `oid`, `noSuchInstance` when `oid` is
    /// under an object type this MIB serves, `noSuchObject` otherwise.
    pub fn get(&self, oid: &Oid) -> Value {
        match self.objects.binary_search_by(|v| v.name.cmp(oid)) {
            Ok(i) => self.objects[i].value.clone(),
            Err(_) if is_object_type(oid) => Value::NoSuchInstance,
            Err(_) => Value::NoSuchObject,
        }
    }

    /// GETNEXT (RFC 2741, section 7.2.3.2): the first instance after the range's start (or at
    /// it, with `include`) and before its end; `endOfMibView` named by the start otherwise.
    pub fn next(&self, range: &SearchRange) -> VarBind {
        let at =
            self.objects.partition_point(|v| if range.include { v.name < range.start } else { v.name <= range.start });
        match self.objects.get(at) {
            Some(v) if range.end.is_null() || v.name < range.end => v.clone(),
            _ => VarBind { name: range.start.clone(), value: Value::EndOfMibView },
        }
    }

    /// The answer to a Get, GetNext or GetBulk; `None` for any other PDU.
    ///
    /// A Get or GetNext of more than [`MAX_ANSWER`] ranges is answered `tooBig`.
    ///
    /// GETBULK (RFC 2741, section 7.2.3.3): the first `non_repeaters` ranges once, then the
    /// others repeated, each repetition starting after what the previous one found, and
    /// stopping when every repeater has reached the end; at most [`MAX_ANSWER`] varbinds (fewer
    /// repetitions than asked for, as an SNMP agent answers a GetBulk that does not fit).
    pub fn answer(&self, pdu: &Pdu) -> Option<Answer> {
        let ranges = match pdu {
            Pdu::Get { ranges } | Pdu::GetNext { ranges } | Pdu::GetBulk { ranges, .. } => ranges,
            _ => return None,
        };
        let varbinds = match pdu {
            Pdu::Get { .. } | Pdu::GetNext { .. } if ranges.len() > MAX_ANSWER => {
                return Some(Answer { error: error::TOO_BIG, index: 0, varbinds: Vec::new() });
            }
            Pdu::Get { .. } => {
                ranges.iter().map(|r| VarBind { name: r.start.clone(), value: self.get(&r.start) }).collect()
            }
            Pdu::GetNext { .. } => ranges.iter().map(|r| self.next(r)).collect(),
            Pdu::GetBulk { non_repeaters, max_repetitions, .. } => {
                let n = usize::from(*non_repeaters).min(ranges.len()).min(MAX_ANSWER);
                let mut out: Vec<VarBind> = ranges[..n].iter().map(|r| self.next(r)).collect();
                let repeaters = &ranges[n..];
                let reps = match repeaters.len() {
                    0 => 0,
                    r => usize::from(*max_repetitions).min((MAX_ANSWER - n) / r),
                };
                let mut cursor: Vec<SearchRange> = if reps > 0 { repeaters.to_vec() } else { Vec::new() };
                for _ in 0..reps {
                    let mut all_done = true;
                    for r in &mut cursor {
                        let vb = self.next(r);
                        if vb.value != Value::EndOfMibView {
                            all_done = false;
                            r.start = vb.name.clone();
                            r.include = false;
                        }
                        out.push(vb);
                    }
                    if all_done {
                        break;
                    }
                }
                out
            }
            _ => return None,
        };
        Some(Answer { error: error::NO_ERROR, index: 0, varbinds })
    }
}

/// What a request is answered with: `res.error`, `res.index` and the varbinds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// `res.error` (see [`error`]).
    pub error: u16,
    /// `res.index`.
    pub index: u16,
    /// The varbinds.
    pub varbinds: Vec<VarBind>,
}

/// Whether `oid` is under one of the object types served (a column or a global counter).
fn is_object_type(oid: &Oid) -> bool {
    let under = |entry: &[u32], cols: std::ops::RangeInclusive<u32>| {
        oid.starts_with(entry) && oid.0.get(entry.len()).is_some_and(|c| cols.contains(c))
    };
    under(OPERATIONS_ENTRY, operations::MASTER_IP..=operations::ROW_STATUS)
        || under(ASSOCIATED_ENTRY, ASSOCIATED_ROW_STATUS..=ASSOCIATED_ROW_STATUS)
        || under(STATISTICS_ENTRY, statistics::MASTER_TRANSITIONS..=statistics::REFRESH_RATE)
        || under(STATISTICS, global::CHECKSUM_ERRORS..=global::DISCONTINUITY_TIME)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use hav_core::vrrp::{AdminMode, Counters, GarpConfig, Stray, VipHold};
    use hav_core::wire::{VrrpAuth, VrrpVersion};
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn t0() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
    }

    fn inst(ifindex: u32, vrid: u8, ipv6: bool, state: State, vips: &[&str]) -> InstanceView {
        let primary: IpAddr =
            if ipv6 { Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1).into() } else { Ipv4Addr::new(10, 0, 0, 1).into() };
        InstanceView {
            name: format!("VI_{ifindex}_{vrid}"),
            ifname: format!("eth{ifindex}"),
            ifindex,
            xmit_ifname: format!("eth{ifindex}"),
            vmac: None,
            vrid,
            ipv6,
            version: VrrpVersion::V3,
            state,
            want_master: false,
            priority: 100,
            effective_priority: 90,
            primary_addr: primary,
            master_addr: None,
            vips: vips.iter().map(|v| v.parse().unwrap()).collect(),
            vip_specs: Vec::new(),
            peers: Vec::new(),
            adver_int_cs: 100,
            master_adver_int_cs: 100,
            preempt: true,
            preempt_delay_ms: 0,
            accept: false,
            admin: AdminMode::Auto,
            hold: VipHold::Released,
            counters: Counters::default(),
            since: Some(t0() - Duration::from_secs(30)),
            tracks: Vec::new(),
            link_up: true,
            deadline: None,
            master_down_us: 3_000_000,
            mac: [2, 0, 0, 0, 0, 1],
            addrs: vec![primary],
            auth: VrrpAuth::None,
            mcast_group: if ipv6 { "ff02::12".parse().unwrap() } else { "224.0.0.18".parse().unwrap() },
            garp: GarpConfig::default(),
            check_adv_addr: false,
            check_unicast_src: false,
        }
    }

    fn snap(instances: Vec<InstanceView>) -> Snapshot {
        Snapshot {
            at: t0(),
            started: t0() - Duration::from_secs(60),
            instances,
            stray: Stray::default(),
            vip_errors: 0,
            send_errors: 0,
            groups: Vec::new(),
        }
    }

    /// Three routers out of config order: eth3 VRID 51 (IPv4, master), eth2 VRID 1 (IPv6,
    /// backup) and eth2 VRID 1 (IPv4, in fault).
    pub(crate) fn sample() -> Snapshot {
        let mut a = inst(3, 51, false, State::Master, &["192.0.2.10", "192.0.2.9", "192.0.2.10", "2001:db8::1"]);
        a.counters.became_master = 2;
        a.counters.adverts_rx = 10;
        a.counters.drops[DropReason::Ttl as usize] = 3;
        a.counters.drops[DropReason::Checksum as usize] = 4;
        a.counters.drops[DropReason::Own as usize] = 100;
        a.counters.prio_zero_rx = 1;
        a.counters.prio_zero_tx = 2;
        a.vmac = Some(("vrrp.51".into(), [0, 0, 0x5e, 0, 1, 51]));
        let mut b = inst(2, 1, true, State::Backup, &["2001:db8::20"]);
        b.master_addr = Some("fe80::2".parse().unwrap());
        b.counters.drops[DropReason::Version as usize] = 5;
        b.counters.drops[DropReason::Malformed as usize] = 6;
        b.counters.drops[DropReason::Interval as usize] = 7;
        b.counters.drops[DropReason::Addresses as usize] = 8;
        let c = inst(2, 1, false, State::Fault, &[]);
        let mut s = snap(vec![a, b, c]);
        s.stray.unknown_vrid = 11;
        s
    }

    fn oid(parts: &[&[u32]]) -> Oid {
        Oid(parts.concat())
    }

    fn next(v: &View, start: &Oid) -> VarBind {
        v.next(&SearchRange { start: start.clone(), include: false, end: Oid::null() })
    }

    const V4: [u32; 3] = [3, 51, 1];
    const V6: [u32; 3] = [2, 1, 2];
    const FAULT: [u32; 3] = [2, 1, 1];

    #[test]
    fn objects_are_in_strict_lexicographic_order() {
        let v = View::build(&sample(), &Notes::default(), 0);
        let o = v.objects();
        assert!(o.windows(2).all(|w| w[0].name < w[1].name));
        // 4 global counters, 11 + 13 columns for each of 3 rows, 2 + 1 associated addresses.
        assert_eq!(o.len(), 4 + 3 * 24 + 3);
        // Rows within a column: by ifIndex, then VRID, then address type.
        let rows: Vec<_> = o
            .iter()
            .filter(|v| v.name.starts_with(&[OPERATIONS_ENTRY, &[operations::STATUS]].concat()))
            .map(|v| v.name.0[12..].to_vec())
            .collect();
        assert_eq!(rows, vec![FAULT.to_vec(), V6.to_vec(), V4.to_vec()]);
    }

    #[test]
    fn getnext_walks_across_columns_and_tables_to_the_end() {
        let v = View::build(&sample(), &Notes::default(), 0);
        // From the registration: the first column of the first row.
        assert_eq!(next(&v, &Oid::from(VRRPV3_MIB)).name, oid(&[OPERATIONS_ENTRY, &[3], &FAULT]));
        // The last row of a column is followed by the first row of the next column.
        assert_eq!(next(&v, &oid(&[OPERATIONS_ENTRY, &[3], &V4])).name, oid(&[OPERATIONS_ENTRY, &[4], &FAULT]));
        // The operations table is followed by the associated addresses, sorted by address,
        // each once, only of the row's family.
        let first_assoc = next(&v, &oid(&[OPERATIONS_ENTRY, &[13], &V4]));
        assert_eq!(
            first_assoc.name,
            oid(&[ASSOCIATED_ENTRY, &[2], &V6, &[16, 0x20, 1, 0xd, 0xb8], &[0; 10], &[0, 0x20]])
        );
        assert_eq!(first_assoc.value, Value::Integer(1));
        let second = next(&v, &first_assoc.name);
        assert_eq!(second.name, oid(&[ASSOCIATED_ENTRY, &[2], &V4, &[4, 192, 0, 2, 9]]));
        let third = next(&v, &second.name);
        assert_eq!(third.name, oid(&[ASSOCIATED_ENTRY, &[2], &V4, &[4, 192, 0, 2, 10]]));
        // Then the global counters, then the statistics table.
        let checksum = next(&v, &third.name);
        assert_eq!(checksum, VarBind { name: oid(&[STATISTICS, &[1, 0]]), value: Value::Counter64(4) });
        assert_eq!(next(&v, &oid(&[STATISTICS, &[4, 0]])).name, oid(&[STATISTICS_ENTRY, &[1], &FAULT]));
        // The last object is followed by the end of the view, named by the start.
        let last = oid(&[STATISTICS_ENTRY, &[13], &V4]);
        assert_eq!(next(&v, &last), VarBind { name: last.clone(), value: Value::EndOfMibView });
        assert_eq!(next(&v, &Oid::from(&[1u32, 3, 6, 1, 2, 1, 208][..])).value, Value::EndOfMibView);
        // A walk from the registration visits every object once, in order.
        let mut at = Oid::from(VRRPV3_MIB);
        let mut seen = Vec::new();
        loop {
            let vb = next(&v, &at);
            if vb.value == Value::EndOfMibView {
                break;
            }
            at = vb.name.clone();
            seen.push(vb);
        }
        assert_eq!(seen, v.objects());
    }

    #[test]
    fn getnext_honours_include_and_the_range_end() {
        let v = View::build(&sample(), &Notes::default(), 0);
        let status = oid(&[OPERATIONS_ENTRY, &[operations::STATUS], &V6]);
        let incl = v.next(&SearchRange { start: status.clone(), include: true, end: Oid::null() });
        assert_eq!(incl, VarBind { name: status.clone(), value: Value::Integer(2) });
        // The end bounds the search: nothing in [status V6, status V6 + 1) after status V6.
        let bounded = v.next(&SearchRange {
            start: status.clone(),
            include: false,
            end: oid(&[OPERATIONS_ENTRY, &[operations::STATUS], &V4]),
        });
        assert_eq!(bounded, VarBind { name: status.clone(), value: Value::EndOfMibView });
        // An end past the next object does not.
        let open =
            v.next(&SearchRange { start: status, include: false, end: Oid::from(&[1u32, 3, 6, 1, 2, 1, 208][..]) });
        assert_eq!(open.name, oid(&[OPERATIONS_ENTRY, &[operations::STATUS], &V4]));
        // Between two columns, with include, the next existing one.
        let between = v.next(&SearchRange { start: oid(&[OPERATIONS_ENTRY, &[6]]), include: true, end: Oid::null() });
        assert_eq!(between.name, oid(&[OPERATIONS_ENTRY, &[6], &FAULT]));
    }

    #[test]
    fn get_answers_values_and_exceptions() {
        let v = View::build(&sample(), &Notes::default(), 0);
        let get = |parts: &[&[u32]]| v.get(&oid(parts));
        assert_eq!(get(&[OPERATIONS_ENTRY, &[operations::STATUS], &V4]), Value::Integer(3));
        assert_eq!(get(&[OPERATIONS_ENTRY, &[operations::STATUS], &V6]), Value::Integer(2));
        assert_eq!(get(&[OPERATIONS_ENTRY, &[operations::STATUS], &FAULT]), Value::Integer(1));
        // A row that does not exist, a column that does: noSuchInstance.
        assert_eq!(get(&[OPERATIONS_ENTRY, &[operations::STATUS], &[9, 9, 1]]), Value::NoSuchInstance);
        assert_eq!(get(&[STATISTICS, &[1]]), Value::NoSuchInstance);
        assert_eq!(get(&[STATISTICS, &[1, 0, 0]]), Value::NoSuchInstance);
        // Not-accessible columns and objects the MIB does not define: noSuchObject.
        assert_eq!(get(&[OPERATIONS_ENTRY, &[1], &V4]), Value::NoSuchObject);
        assert_eq!(get(&[OPERATIONS_ENTRY, &[14], &V4]), Value::NoSuchObject);
        assert_eq!(get(&[STATISTICS, &[6, 0]]), Value::NoSuchObject);
        assert_eq!(get(&[&[1, 3, 6, 1, 2, 1, 1, 3, 0]]), Value::NoSuchObject);
    }

    #[test]
    fn values_follow_the_mib() {
        let v = View::build(&sample(), &Notes::default(), 4242);
        let get = |e: &[u32], col: u32, row: [u32; 3]| v.get(&oid(&[e, &[col], &row]));
        let o = |col, row| get(OPERATIONS_ENTRY, col, row);
        let s = |col, row| get(STATISTICS_ENTRY, col, row);
        use operations as op;
        use statistics as st;
        // The master is itself; a backup names the master it hears; nobody known: zeros.
        assert_eq!(o(op::MASTER_IP, V4), Value::OctetString(vec![10, 0, 0, 1]));
        let mut fe80_2 = vec![0xfe, 0x80];
        fe80_2.extend([0; 13]);
        fe80_2.push(2);
        assert_eq!(o(op::MASTER_IP, V6), Value::OctetString(fe80_2));
        assert_eq!(o(op::MASTER_IP, FAULT), Value::OctetString(vec![0; 4]));
        assert_eq!(o(op::PRIMARY_IP, FAULT), Value::OctetString(vec![10, 0, 0, 1]));
        // The VMAC in use, else the one RFC 5798 section 7.3 derives.
        assert_eq!(o(op::VIRTUAL_MAC, V4), Value::OctetString(vec![0, 0, 0x5e, 0, 1, 51]));
        assert_eq!(o(op::VIRTUAL_MAC, V6), Value::OctetString(vec![0, 0, 0x5e, 0, 2, 1]));
        assert_eq!(o(op::PRIORITY, V4), Value::Gauge32(90));
        assert_eq!(o(op::ADDR_COUNT, V4), Value::Integer(2));
        assert_eq!(o(op::ADDR_COUNT, FAULT), Value::Integer(0));
        assert_eq!(o(op::ADV_INTERVAL, V4), Value::Integer(100));
        assert_eq!(o(op::PREEMPT_MODE, V4), Value::Integer(1));
        assert_eq!(o(op::ACCEPT_MODE, V4), Value::Integer(2));
        // Up since the last change (no notes): 30 s; in fault: 0.
        assert_eq!(o(op::UP_TIME, V4), Value::TimeTicks(3000));
        assert_eq!(o(op::UP_TIME, FAULT), Value::TimeTicks(0));
        assert_eq!(o(op::ROW_STATUS, FAULT), Value::Integer(1));

        assert_eq!(s(st::MASTER_TRANSITIONS, V4), Value::Counter32(2));
        // Master before any event was seen.
        assert_eq!(s(st::NEW_MASTER_REASON, V4), Value::Integer(MasterReason::MasterNoResponse as i32));
        assert_eq!(s(st::NEW_MASTER_REASON, V6), Value::Integer(0));
        // Accepted, plus dropped ones other than our own looped back.
        assert_eq!(s(st::RCVD_ADVERTISEMENTS, V4), Value::Counter64(10 + 3 + 4));
        assert_eq!(s(st::IP_TTL_ERRORS, V4), Value::Counter64(3));
        assert_eq!(s(st::PROTO_ERR_REASON, V4), Value::Integer(0));
        assert_eq!(s(st::RCVD_PRI_ZERO, V4), Value::Counter64(1));
        assert_eq!(s(st::SENT_PRI_ZERO, V4), Value::Counter64(2));
        assert_eq!(s(st::ADV_INTERVAL_ERRORS, V6), Value::Counter64(7));
        assert_eq!(s(st::ADDRESS_LIST_ERRORS, V6), Value::Counter64(8));
        assert_eq!(s(st::PACKET_LENGTH_ERRORS, V6), Value::Counter64(6));
        assert_eq!(s(st::RCVD_INVALID_TYPE, V6), Value::Counter64(0));
        assert_eq!(s(st::ROW_DISCONTINUITY_TIME, V6), Value::TimeTicks(4242));
        assert_eq!(s(st::REFRESH_RATE, V6), Value::Gauge32(1000));

        let g = |n: u32| v.get(&oid(&[STATISTICS, &[n, 0]]));
        assert_eq!(g(global::CHECKSUM_ERRORS), Value::Counter64(4));
        assert_eq!(g(global::VERSION_ERRORS), Value::Counter64(5));
        assert_eq!(g(global::VRID_ERRORS), Value::Counter64(11));
        assert_eq!(g(global::DISCONTINUITY_TIME), Value::TimeTicks(4242));
    }

    #[test]
    fn empty_snapshot_serves_the_global_counters() {
        let v = View::build(&snap(Vec::new()), &Notes::default(), 0);
        assert_eq!(v.objects().len(), 4);
        assert_eq!(next(&v, &Oid::from(VRRPV3_MIB)).name, oid(&[STATISTICS, &[1, 0]]));
        assert_eq!(
            View::default()
                .answer(&Pdu::GetNext {
                    ranges: vec![SearchRange { start: Oid::from(VRRPV3_MIB), include: false, end: Oid::null() }]
                })
                .unwrap()
                .varbinds[0]
                .value,
            Value::EndOfMibView
        );
    }

    #[test]
    fn duplicate_rows_serve_the_first_instance() {
        let mut second = inst(3, 51, false, State::Backup, &[]);
        second.effective_priority = 7;
        let v = View::build(&snap(vec![inst(3, 51, false, State::Master, &[]), second]), &Notes::default(), 0);
        assert_eq!(v.get(&oid(&[OPERATIONS_ENTRY, &[operations::STATUS], &V4])), Value::Integer(3));
        assert!(v.objects().windows(2).all(|w| w[0].name < w[1].name));
    }

    #[test]
    fn getbulk_repeats_and_stops_at_the_end() {
        let v = View::build(&sample(), &Notes::default(), 0);
        let range = |parts: &[&[u32]]| SearchRange { start: oid(parts), include: false, end: Oid::null() };
        // One non-repeater, two repeaters, three repetitions.
        let a = v
            .answer(&Pdu::GetBulk {
                non_repeaters: 1,
                max_repetitions: 3,
                ranges: vec![
                    range(&[STATISTICS, &[2]]),
                    range(&[OPERATIONS_ENTRY, &[operations::STATUS]]),
                    range(&[STATISTICS_ENTRY, &[1]]),
                ],
            })
            .unwrap();
        assert_eq!(a.error, 0);
        let names: Vec<_> = a.varbinds.iter().map(|v| v.name.clone()).collect();
        assert_eq!(
            names,
            vec![
                oid(&[STATISTICS, &[2, 0]]),
                oid(&[OPERATIONS_ENTRY, &[6], &FAULT]),
                oid(&[STATISTICS_ENTRY, &[1], &FAULT]),
                oid(&[OPERATIONS_ENTRY, &[6], &V6]),
                oid(&[STATISTICS_ENTRY, &[1], &V6]),
                oid(&[OPERATIONS_ENTRY, &[6], &V4]),
                oid(&[STATISTICS_ENTRY, &[1], &V4]),
            ]
        );
        // Near the end: every repeater runs out, and the answer stops after the first
        // repetition that is all endOfMibView.
        let last = oid(&[STATISTICS_ENTRY, &[13], &V6]);
        let a = v
            .answer(&Pdu::GetBulk {
                non_repeaters: 0,
                max_repetitions: 50,
                ranges: vec![SearchRange { start: last.clone(), include: false, end: Oid::null() }],
            })
            .unwrap();
        assert_eq!(a.varbinds.len(), 2);
        assert_eq!(a.varbinds[1], VarBind { name: oid(&[STATISTICS_ENTRY, &[13], &V4]), value: Value::EndOfMibView });
        // The answer is bounded whatever is asked.
        let many = vec![range(&[VRRPV3_MIB]); 100];
        let a = v.answer(&Pdu::GetBulk { non_repeaters: 0, max_repetitions: u16::MAX, ranges: many }).unwrap();
        assert!(a.varbinds.len() <= MAX_ANSWER, "{}", a.varbinds.len());
        let a = v
            .answer(&Pdu::GetBulk {
                non_repeaters: u16::MAX,
                max_repetitions: u16::MAX,
                ranges: vec![range(&[VRRPV3_MIB])],
            })
            .unwrap();
        assert_eq!(a.varbinds.len(), 1);
        // No repeaters: the non-repeaters only.
        let a = v.answer(&Pdu::GetBulk { non_repeaters: 0, max_repetitions: 5, ranges: vec![] }).unwrap();
        assert!(a.varbinds.is_empty());
        // A Get or GetNext of more ranges than an answer may hold: tooBig.
        let a = v.answer(&Pdu::Get { ranges: vec![range(&[VRRPV3_MIB]); MAX_ANSWER + 1] }).unwrap();
        assert_eq!((a.error, a.varbinds.len()), (error::TOO_BIG, 0));
        assert!(v.answer(&Pdu::Ping).is_none());
    }

    fn transition(row: [u32; 3], from: State, to: State, reason: Reason) -> Event {
        Event::Transition {
            instance: "VI".into(),
            ifindex: row[0],
            vrid: row[1] as u8,
            ipv6: row[2] == 2,
            from,
            to,
            reason,
            master: Some("10.0.0.1".parse().unwrap()),
        }
    }

    #[test]
    fn notes_and_notifications_from_events() {
        let mut n = Notes::default();
        let t = t0() - Duration::from_secs(5);
        // Backup: noted as up, nothing to notify.
        let note =
            n.handle(&transition(V4, State::Initialize, State::Backup, Reason::Startup), t - Duration::from_secs(5));
        assert_eq!(note, None);
        let row = RowKey { ifindex: 3, vrid: 51, ipv6: false };
        assert_eq!(n.get(row).unwrap().up_since, Some(t - Duration::from_secs(5)));
        // Master: vrrpv3NewMaster, the reason noted; still up since it left Initialize.
        let note = n.handle(&transition(V4, State::Backup, State::Master, Reason::MasterDown), t);
        assert_eq!(
            note,
            Some(Notification::NewMaster {
                row,
                master: Some("10.0.0.1".parse().unwrap()),
                reason: MasterReason::MasterNoResponse
            })
        );
        let v = View::build(&sample(), &n, 0);
        let get = |e: &[u32], c: u32| v.get(&oid(&[e, &[c], &V4]));
        assert_eq!(get(STATISTICS_ENTRY, statistics::NEW_MASTER_REASON), Value::Integer(3));
        assert_eq!(get(OPERATIONS_ENTRY, operations::UP_TIME), Value::TimeTicks(1000));
        // Another change between up states keeps the time it came up.
        n.handle(&transition(V4, State::Master, State::Backup, Reason::Preempted), t + Duration::from_secs(1));
        assert_eq!(n.get(row).unwrap().up_since, Some(t - Duration::from_secs(5)));
        // Fault: down.
        n.handle(&transition(V4, State::Master, State::Fault, Reason::Fault), t);
        assert_eq!(n.get(row).unwrap().up_since, None);
        assert_eq!(n.get(row).unwrap().master_reason, Some(MasterReason::MasterNoResponse));

        // A protocol error the MIB names: noted and notified; one it does not: neither.
        let perr = |reason| Event::ProtoError { instance: "VI".into(), ifindex: 3, vrid: 51, ipv6: false, reason };
        assert_eq!(
            n.handle(&perr(DropReason::Ttl), t),
            Some(Notification::ProtoError { row, reason: ProtoErrReason::IpTtl })
        );
        assert_eq!(n.handle(&perr(DropReason::AuthPass), t), None);
        assert_eq!(n.get(row).unwrap().proto_error, ProtoErrReason::IpTtl);
        n.handle(&perr(DropReason::Vrid), t);
        let v = View::build(&sample(), &n, 0);
        assert_eq!(v.get(&oid(&[STATISTICS_ENTRY, &[statistics::PROTO_ERR_REASON], &V4])), Value::Integer(4));

        // Rows a reload removed are forgotten.
        n.handle(&transition([7, 7, 1], State::Initialize, State::Backup, Reason::Startup), t);
        assert_eq!(n.len(), 2);
        n.retain(&sample());
        assert_eq!(n.len(), 1);
    }

    #[test]
    fn notes_are_bounded() {
        let mut n = Notes::default();
        for i in 0..MAX_NOTES as u32 + 10 {
            n.handle(&transition([i, 1, 1], State::Initialize, State::Backup, Reason::Startup), t0());
        }
        assert_eq!(n.len(), MAX_NOTES);
        // Past the bound, a transition to master is still notified.
        let note = n.handle(&transition([u32::MAX, 1, 1], State::Backup, State::Master, Reason::PreemptDelay), t0());
        assert!(matches!(note, Some(Notification::NewMaster { reason: MasterReason::Preempted, .. })));
        assert_eq!(n.get(RowKey { ifindex: u32::MAX, vrid: 1, ipv6: false }), None);
        assert_eq!(n.len(), MAX_NOTES);
    }

    #[test]
    fn notification_varbinds() {
        let row = RowKey { ifindex: 3, vrid: 51, ipv6: true };
        let vbs = Notification::NewMaster { row, master: None, reason: MasterReason::Priority }.varbinds();
        assert_eq!(
            vbs[0],
            VarBind { name: Oid::from(SNMP_TRAP_OID), value: Value::ObjectIdentifier(Oid::from(NEW_MASTER)) }
        );
        assert_eq!(
            vbs[1],
            VarBind { name: oid(&[OPERATIONS_ENTRY, &[3], &[3, 51, 2]]), value: Value::OctetString(vec![0; 16]) }
        );
        assert_eq!(vbs[2], VarBind { name: oid(&[STATISTICS_ENTRY, &[2], &[3, 51, 2]]), value: Value::Integer(1) });
        let vbs = Notification::ProtoError { row, reason: ProtoErrReason::Checksum }.varbinds();
        assert_eq!(vbs[0].value, Value::ObjectIdentifier(Oid::from(PROTO_ERROR)));
        assert_eq!(vbs[1], VarBind { name: oid(&[STATISTICS_ENTRY, &[6], &[3, 51, 2]]), value: Value::Integer(3) });
    }
}
