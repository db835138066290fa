//! An AgentX subagent (RFC 2741) serving VRRPv3-MIB (RFC 6527) read-only through the host's
//! SNMP agent, as keepalived's `-x` with `enable_snmp_rfcv3` does with net-snmp's snmpd.
//! KEEPALIVED-MIB (keepalived's `enable_snmp_vrrp`) and VRRP-MIB (RFC 2787) are not served.
//!
//! [`run`] connects to the master agent's socket (`agentXSocket`, `/var/agentx/master` by
//! default), opens a session, registers `vrrpv3MIB` (1.3.6.1.2.1.207) and answers GET, GETNEXT
//! and GETBULK from a [`Snapshot`] the daemon's loop takes on request (one per [`mib::REFRESH`]
//! at most, so that a walk costs the loop one snapshot a second). Sets are refused
//! (`notWritable`). Transitions to Master and protocol errors the loop announces become the
//! notifications `vrrpv3NewMaster` and `vrrpv3ProtoError`, which snmpd forwards to its trap
//! sinks.
//!
//! The session is checked with a Ping every [`PING_INTERVAL`]; when the master closes it, stops
//! answering or goes away (snmpd restarts), the subagent connects again, backing off from
//! [`BACKOFF_MIN`] to [`BACKOFF_MAX`], and registers again.
//!
//! What a master can cost is bounded: one message of at most [`agentx::MAX_PAYLOAD`] bytes is
//! buffered, an answer has at most [`mib::MAX_ANSWER`] varbinds, writes and the master's answers
//! time out ([`IO_TIMEOUT`]), and notifications are rate-limited ([`NEW_MASTER_RATE`],
//! [`PROTO_ERROR_RATE`]; a hostile VRRP peer can cause protocol errors at line rate).

pub mod agentx;
pub mod mib;

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::UnixStream;
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::daemon::control::{Envelope, Reply, Request};
use crate::daemon::snapshot::{Event, Snapshot};
use crate::ratelimit::RateLimit;
use agentx::{error, CloseReason, Message, Oid, Pdu};
use mib::{Notes, Notification, View};

/// The master agent's socket when none is configured (net-snmp's and RFC 2741's default).
pub const DEFAULT_SOCKET: &str = "/var/agentx/master";
/// How often the session is checked; a Ping still unanswered at the next one ends it.
pub const PING_INTERVAL: Duration = Duration::from_secs(15);
/// Connecting, writing a message, and the master's answer to Open and Register.
pub const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a request waits for the daemon's snapshot before it is answered `genErr`.
pub const SNAPSHOT_TIMEOUT: Duration = Duration::from_secs(1);
/// The first wait before connecting again.
pub const BACKOFF_MIN: Duration = Duration::from_millis(250);
/// The longest wait before connecting again.
pub const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// `vrrpv3NewMaster` notifications per second at most (a failover of every instance at once
/// is notified in full up to this).
pub const NEW_MASTER_RATE: u32 = 1000;
/// `vrrpv3ProtoError` notifications per second at most.
pub const PROTO_ERROR_RATE: u32 = 10;
/// `o.timeout` of the session: seconds snmpd waits for an answer (a snapshot can take up to
/// [`SNAPSHOT_TIMEOUT`]).
const SESSION_TIMEOUT: u8 = 5;
const DESCRIPTION: &str = "hav VRRPv3-MIB subagent";

/// Why a session ended.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// Connecting, reading or writing failed.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The master sent something that does not parse.
    #[error("unparsable message from the master: {0}")]
    Parse(#[from] agentx::Error),
    /// The master closed the connection.
    #[error("the master closed the connection")]
    Eof,
    /// The master closed the session.
    #[error("the master closed the session ({0:?})")]
    Closed(CloseReason),
    /// The master refused Open or Register.
    #[error("the master refused {what} (AgentX error {code}{hint})")]
    Refused {
        /// What was refused.
        what: &'static str,
        /// `res.error`.
        code: u16,
        /// What it likely means.
        hint: &'static str,
    },
    /// The master did not answer in time.
    #[error("the master did not answer {0} in time")]
    Timeout(&'static str),
}

/// The master agent's socket from a net-snmp transport address as keepalived takes it (`-A`,
/// `snmp_socket`): a path, or `unix:` and a path. `None` for the other transports (`tcp:HOST:PORT`,
/// `udp:...`, a bare `HOST:PORT`), which this subagent does not speak, and for an empty path.
pub fn socket_path(spec: &str) -> Option<PathBuf> {
    let spec = spec.trim();
    let path = spec.strip_prefix("unix:").unwrap_or(spec);
    let other = path.is_empty() || (spec == path && !path.starts_with('/') && path.contains(':'));
    (!other).then(|| PathBuf::from(path))
}

/// Runs the subagent for good: connects to the master agent at `socket`, serves VRRPv3-MIB
/// from snapshots asked of the daemon's loop on `control`, sends the notifications `events`
/// announce, and connects again whenever the session ends. Call on the daemon's auxiliary
/// runtime (never on the VRRP loop's: it waits for that loop's answers).
pub async fn run(socket: PathBuf, control: mpsc::Sender<Envelope>, events: broadcast::Receiver<Event>) -> ! {
    Subagent::new(socket, control, events).run().await
}

struct Subagent {
    socket: PathBuf,
    control: mpsc::Sender<Envelope>,
    events: broadcast::Receiver<Event>,
    events_open: bool,
    notes: Notes,
    /// The last snapshot and when it was taken; the view built from it (and the notes), until
    /// either changes.
    snapshot: Option<(Instant, Box<Snapshot>)>,
    view: Option<View>,
    /// When asking for a snapshot last failed: not asked again within [`mib::REFRESH`].
    snapshot_failed: Option<Instant>,
    /// The master's sysUpTime as last reported, and when.
    uptime: Option<(u32, Instant)>,
    new_master_limit: RateLimit,
    proto_error_limit: RateLimit,
    log_snapshot: RateLimit,
}

/// One connection: the halves of the socket, the bytes read and not yet parsed, and the
/// session's identifiers.
struct Conn {
    rd: OwnedReadHalf,
    wr: OwnedWriteHalf,
    buf: Vec<u8>,
    session_id: u32,
    packet_id: u32,
}

impl Conn {
    async fn connect(path: &Path) -> Result<Conn, SessionError> {
        let stream = tokio::time::timeout(IO_TIMEOUT, UnixStream::connect(path))
            .await
            .map_err(|_| SessionError::Timeout("connect"))??;
        let (rd, wr) = stream.into_split();
        Ok(Conn { rd, wr, buf: Vec::with_capacity(4096), session_id: 0, packet_id: 0 })
    }

    /// The next whole message. Cancel-safe: what was read stays in the buffer.
    async fn read(&mut self) -> Result<Message, SessionError> {
        loop {
            if let Some(n) = agentx::frame_len(&self.buf)? {
                let msg = Message::parse(&self.buf[..n]);
                self.buf.drain(..n);
                return Ok(msg?);
            }
            let mut chunk = [0u8; 8192];
            let got = self.rd.read(&mut chunk).await?;
            if got == 0 {
                return Err(SessionError::Eof);
            }
            self.buf.extend_from_slice(&chunk[..got]);
        }
    }

    async fn write(&mut self, msg: &Message) -> Result<(), SessionError> {
        let bytes = msg.emit();
        tokio::time::timeout(IO_TIMEOUT, self.wr.write_all(&bytes))
            .await
            .map_err(|_| SessionError::Timeout("a write"))??;
        Ok(())
    }

    /// Sends a PDU of our own; returns its packet id.
    async fn send(&mut self, pdu: Pdu) -> Result<u32, SessionError> {
        self.packet_id = self.packet_id.wrapping_add(1);
        let msg =
            Message { session_id: self.session_id, transaction_id: 0, packet_id: self.packet_id, context: None, pdu };
        self.write(&msg).await?;
        Ok(self.packet_id)
    }

    /// Sends a PDU and waits for its Response (anything else the master sends meanwhile is
    /// dropped: it comes before the session is registered).
    async fn request(&mut self, pdu: Pdu, what: &'static str) -> Result<(Message, u32, u16), SessionError> {
        let id = self.send(pdu).await?;
        let deadline = tokio::time::Instant::now() + IO_TIMEOUT;
        loop {
            let msg =
                tokio::time::timeout_at(deadline, self.read()).await.map_err(|_| SessionError::Timeout(what))??;
            match msg.pdu {
                Pdu::Response { sys_uptime, error, .. } if msg.packet_id == id => return Ok((msg, sys_uptime, error)),
                Pdu::Close { reason } => return Err(SessionError::Closed(reason)),
                _ => continue,
            }
        }
    }

    /// Answers the master's request `req` with `pdu`.
    async fn answer(&mut self, req: &Message, pdu: Pdu) -> Result<(), SessionError> {
        let msg = Message {
            session_id: req.session_id,
            transaction_id: req.transaction_id,
            packet_id: req.packet_id,
            context: None,
            pdu,
        };
        self.write(&msg).await
    }
}

fn response(error: u16, index: u16, varbinds: Vec<agentx::VarBind>) -> Pdu {
    Pdu::Response { sys_uptime: 0, error, index, varbinds }
}

impl Subagent {
    fn new(socket: PathBuf, control: mpsc::Sender<Envelope>, events: broadcast::Receiver<Event>) -> Subagent {
        Subagent {
            socket,
            control,
            events,
            events_open: true,
            notes: Notes::default(),
            snapshot: None,
            view: None,
            snapshot_failed: None,
            uptime: None,
            new_master_limit: RateLimit::new(NEW_MASTER_RATE, Duration::from_secs(1)),
            proto_error_limit: RateLimit::new(PROTO_ERROR_RATE, Duration::from_secs(1)),
            log_snapshot: RateLimit::new(1, Duration::from_secs(60)),
        }
    }

    async fn run(mut self) -> ! {
        let mut backoff = BACKOFF_MIN;
        // Connection failures are logged once until a session opens: snmpd may well be absent
        // for hours.
        let mut failing = false;
        loop {
            let opened = Instant::now();
            let ended = self.session(&mut failing).await;
            let Err(e) = ended;
            if failing {
                tracing::debug!(socket = %self.socket.display(), "SNMP: AgentX master unreachable: {e}");
            } else {
                tracing::warn!(socket = %self.socket.display(), "SNMP: no AgentX session: {e}; trying again");
                failing = true;
            }
            // A session that lasted a while was healthy: start the back-off again.
            if opened.elapsed() > BACKOFF_MAX * 2 {
                backoff = BACKOFF_MIN;
            }
            self.wait(backoff).await;
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }

    /// Sleeps for `d`, noting the events meanwhile (their notifications are lost: there is no
    /// session to send them on).
    async fn wait(&mut self, d: Duration) {
        let sleep = tokio::time::sleep(d);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                () = &mut sleep => return,
                ev = self.events.recv(), if self.events_open => {
                    if let Some(n) = self.on_event(ev) {
                        tracing::debug!(?n, "SNMP: no AgentX session; notification dropped");
                    }
                }
            }
        }
    }

    /// One session, from connecting to its end.
    async fn session(&mut self, failing: &mut bool) -> Result<std::convert::Infallible, SessionError> {
        let mut conn = Conn::connect(&self.socket).await?;
        let open = Pdu::Open { timeout: SESSION_TIMEOUT, id: Oid::null(), descr: DESCRIPTION.as_bytes().to_vec() };
        let (msg, uptime, code) = conn.request(open, "Open").await?;
        if code != error::NO_ERROR {
            return Err(SessionError::Refused { what: "Open", code, hint: "" });
        }
        conn.session_id = msg.session_id;
        self.set_uptime(uptime);
        let register = Pdu::Register { timeout: 0, priority: 127, subtree: Oid::from(mib::VRRPV3_MIB) };
        let (_, uptime, code) = conn.request(register, "Register").await?;
        if code != error::NO_ERROR {
            let hint = if code == error::DUPLICATE_REGISTRATION {
                ": another subagent (keepalived?) serves VRRPV3-MIB"
            } else {
                ""
            };
            return Err(SessionError::Refused { what: "Register", code, hint });
        }
        self.set_uptime(uptime);
        // The master's sysUpTime is the clock of the view's timestamps.
        self.view = None;
        *failing = false;
        tracing::info!(socket = %self.socket.display(), session = conn.session_id, "SNMP: serving VRRPV3-MIB through the AgentX master");

        let start = tokio::time::Instant::now() + PING_INTERVAL;
        let mut ping = tokio::time::interval_at(start, PING_INTERVAL);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut ping_sent: Option<u32> = None;
        loop {
            tokio::select! {
                msg = conn.read() => {
                    let msg = match msg {
                        Ok(m) => m,
                        Err(SessionError::Parse(e)) => {
                            // The stream cannot be trusted past a message that does not parse.
                            let _ = conn.send(Pdu::Close { reason: CloseReason::ParseError }).await;
                            return Err(SessionError::Parse(e));
                        }
                        Err(e) => return Err(e),
                    };
                    if let Pdu::Response { sys_uptime, error, .. } = msg.pdu {
                        self.set_uptime(sys_uptime);
                        if ping_sent == Some(msg.packet_id) {
                            ping_sent = None;
                        } else if error != error::NO_ERROR {
                            tracing::debug!(error, packet = msg.packet_id, "SNMP: the master refused a notification");
                        }
                        continue;
                    }
                    self.on_request(&mut conn, msg).await?;
                }
                ev = self.events.recv(), if self.events_open => {
                    if let Some(n) = self.on_event(ev) {
                        self.notify(&mut conn, &n).await?;
                    }
                }
                _ = ping.tick() => {
                    if ping_sent.is_some() {
                        return Err(SessionError::Timeout("Ping"));
                    }
                    ping_sent = Some(conn.send(Pdu::Ping).await?);
                }
            }
        }
    }

    async fn on_request(&mut self, conn: &mut Conn, msg: Message) -> Result<(), SessionError> {
        let pdu = match &msg.pdu {
            Pdu::Get { .. } | Pdu::GetNext { .. } | Pdu::GetBulk { .. } => {
                // Only the default context was registered: any other one holds nothing.
                let empty = View::default();
                let view = if msg.context.is_some() { Some(&empty) } else { self.view().await };
                match view.and_then(|v| v.answer(&msg.pdu)) {
                    Some(a) => response(a.error, a.index, a.varbinds),
                    None => response(error::GEN_ERR, 1, Vec::new()),
                }
            }
            Pdu::TestSet { varbinds } => response(error::NOT_WRITABLE, u16::from(!varbinds.is_empty()), Vec::new()),
            Pdu::CommitSet => response(error::COMMIT_FAILED, 0, Vec::new()),
            Pdu::UndoSet => response(error::UNDO_FAILED, 0, Vec::new()),
            Pdu::Close { reason } => return Err(SessionError::Closed(*reason)),
            // CleanupSet is not answered; nothing else is a request to a subagent.
            other => {
                if !matches!(other, Pdu::CleanupSet) {
                    tracing::debug!(pdu = ?other.pdu_type(), "SNMP: ignoring an AgentX message");
                }
                return Ok(());
            }
        };
        conn.answer(&msg, pdu).await
    }

    /// The view to answer from: the last one while its snapshot is younger than
    /// [`mib::REFRESH`], else a new one. `None` when the daemon gives no snapshot and none was
    /// had before.
    async fn view(&mut self) -> Option<&View> {
        let fresh = self.snapshot.as_ref().is_some_and(|(t, _)| t.elapsed() < mib::REFRESH);
        let failed_lately = self.snapshot_failed.is_some_and(|t| t.elapsed() < mib::REFRESH);
        if !fresh && !failed_lately {
            match snapshot(&self.control).await {
                Ok(s) => {
                    self.notes.retain(&s);
                    self.snapshot = Some((Instant::now(), s));
                    self.snapshot_failed = None;
                    self.view = None;
                }
                Err(e) => {
                    self.snapshot_failed = Some(Instant::now());
                    if self.log_snapshot.check_now().is_some() {
                        tracing::warn!("SNMP: no snapshot from the daemon ({e}); answering from the last one, if any");
                    }
                }
            }
        }
        let (_, snap) = self.snapshot.as_ref()?;
        if self.view.is_none() {
            let d = discontinuity(self.uptime, snap.started, SystemTime::now());
            self.view = Some(View::build(snap, &self.notes, d));
        }
        self.view.as_ref()
    }

    /// Notes an event; returns the notification to send, if the rate allows one.
    fn on_event(&mut self, ev: Result<Event, broadcast::error::RecvError>) -> Option<Notification> {
        let ev = match ev {
            Ok(ev) => ev,
            Err(broadcast::error::RecvError::Lagged(n)) => {
                tracing::debug!(lost = n, "SNMP: fell behind the daemon's events");
                return None;
            }
            Err(broadcast::error::RecvError::Closed) => {
                self.events_open = false;
                return None;
            }
        };
        // The notes show from the view's next build, at most mib::REFRESH from now: rebuilding
        // it per event would let a flood of protocol errors cost a build per request.
        let note = self.notes.handle(&ev, SystemTime::now())?;
        let (limit, what) = match note {
            Notification::NewMaster { .. } => (&mut self.new_master_limit, "vrrpv3NewMaster"),
            Notification::ProtoError { .. } => (&mut self.proto_error_limit, "vrrpv3ProtoError"),
        };
        let held = limit.check_now()?;
        if held > 0 {
            tracing::debug!(held_back = held, "SNMP: {what} notifications over the rate were dropped");
        }
        Some(note)
    }

    async fn notify(&mut self, conn: &mut Conn, n: &Notification) -> Result<(), SessionError> {
        conn.send(Pdu::Notify { varbinds: n.varbinds() }).await.map(drop)
    }

    fn set_uptime(&mut self, ticks: u32) {
        self.uptime = Some((ticks, Instant::now()));
    }
}

/// The master's sysUpTime when the daemon started (`started`), from its sysUpTime `uptime`
/// reported at some instant; 0 when the daemon is the older (the counters then began before
/// the master's clock did, and the MIB says 0 for "no discontinuity since").
fn discontinuity(uptime: Option<(u32, Instant)>, started: SystemTime, now: SystemTime) -> u32 {
    let Some((ticks, at)) = uptime else { return 0 };
    let master_now = u64::from(ticks) + (at.elapsed().as_millis() / 10) as u64;
    let daemon_age = (now.duration_since(started).unwrap_or_default().as_millis() / 10) as u64;
    master_now.checked_sub(daemon_age).map_or(0, |t| t as u32)
}

/// Asks the daemon's loop for a snapshot.
async fn snapshot(control: &mpsc::Sender<Envelope>) -> Result<Box<Snapshot>, &'static str> {
    let (tx, rx) = oneshot::channel();
    let req = Request { cmd: "snapshot".into(), instance: None };
    let asked = async {
        control.send((req, tx)).await.map_err(|_| "the daemon's loop is gone")?;
        rx.await.map_err(|_| "the daemon's loop dropped the request")
    };
    match tokio::time::timeout(SNAPSHOT_TIMEOUT, asked).await {
        Err(_) => Err("the daemon's loop did not answer in time"),
        Ok(Err(e)) => Err(e),
        Ok(Ok(Reply::Snapshot(s))) => Ok(s),
        Ok(Ok(Reply::Json(_))) => Err("the daemon answered something else than a snapshot"),
    }
}

#[cfg(test)]
mod tests {
    use super::agentx::{SearchRange, HEADER_LEN};
    use super::*;
    use tokio::net::UnixListener;

    /// The daemon's loop, answering every request with the sample snapshot.
    fn fake_daemon() -> mpsc::Sender<Envelope> {
        let (tx, mut rx) = mpsc::channel::<Envelope>(4);
        tokio::spawn(async move {
            while let Some((_, reply)) = rx.recv().await {
                let _ = reply.send(Reply::Snapshot(Box::new(mib::tests::sample())));
            }
        });
        tx
    }

    async fn read_msg(s: &mut UnixStream) -> Option<Message> {
        let mut buf = vec![0u8; HEADER_LEN];
        tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut buf))
            .await
            .expect("the subagent is silent")
            .ok()?;
        let total = loop {
            match agentx::frame_len(&buf).unwrap() {
                Some(n) => break n,
                None => {
                    let len = u32::from_be_bytes(buf[16..20].try_into().unwrap()) as usize;
                    let mut rest = vec![0u8; len];
                    s.read_exact(&mut rest).await.unwrap();
                    buf.extend(rest);
                }
            }
        };
        Some(Message::parse(&buf[..total]).unwrap())
    }

    async fn send(s: &mut UnixStream, m: Message) {
        s.write_all(&m.emit()).await.unwrap();
    }

    fn answer(to: &Message, session_id: u32, error: u16) -> Message {
        Message {
            session_id,
            transaction_id: to.transaction_id,
            packet_id: to.packet_id,
            context: None,
            pdu: Pdu::Response { sys_uptime: 1000, error, index: 0, varbinds: Vec::new() },
        }
    }

    /// Accepts a connection and answers Open and Register (the latter with `register`).
    async fn accept(l: &UnixListener, session_id: u32, register: u16) -> UnixStream {
        let (mut s, _) =
            tokio::time::timeout(Duration::from_secs(5), l.accept()).await.expect("the subagent connects").unwrap();
        let open = read_msg(&mut s).await.unwrap();
        assert!(matches!(open.pdu, Pdu::Open { timeout: SESSION_TIMEOUT, .. }), "{open:?}");
        send(&mut s, answer(&open, session_id, error::NO_ERROR)).await;
        let reg = read_msg(&mut s).await.unwrap();
        assert_eq!(reg.session_id, session_id);
        assert_eq!(reg.pdu, Pdu::Register { timeout: 0, priority: 127, subtree: Oid::from(mib::VRRPV3_MIB) });
        send(&mut s, answer(&reg, session_id, register)).await;
        s
    }

    fn request(session_id: u32, packet_id: u32, pdu: Pdu) -> Message {
        Message { session_id, transaction_id: packet_id + 1000, packet_id, context: None, pdu }
    }

    #[tokio::test]
    async fn a_hostile_or_departing_master_is_survived() {
        let dir = std::env::temp_dir().join(format!("hav-agentx-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("master");
        let l = UnixListener::bind(&path).unwrap();
        let (_events, events_rx) = broadcast::channel(4);
        let agent = tokio::spawn(run(path.clone(), fake_daemon(), events_rx));

        // Session 1: a GetBulk asking for 100 x 65535 varbinds gets at most MAX_ANSWER.
        let mut s = accept(&l, 42, error::NO_ERROR).await;
        let all = SearchRange {
            start: Oid::from(mib::VRRPV3_MIB),
            include: false,
            end: Oid::from(&[1u32, 3, 6, 1, 2, 1, 208][..]),
        };
        send(
            &mut s,
            request(
                42,
                7,
                Pdu::GetBulk { non_repeaters: 0, max_repetitions: u16::MAX, ranges: vec![all.clone(); 100] },
            ),
        )
        .await;
        let r = read_msg(&mut s).await.unwrap();
        assert_eq!((r.session_id, r.transaction_id, r.packet_id), (42, 1007, 7));
        let Pdu::Response { error, varbinds, .. } = r.pdu else { panic!("{r:?}") };
        assert_eq!(error, error::NO_ERROR);
        // 100 repeaters: 20 repetitions fit in MAX_ANSWER (the sample has 79 objects).
        assert_eq!(varbinds.len(), 2000);
        assert!(varbinds.len() <= mib::MAX_ANSWER);
        // One repeater: the whole view, then one endOfMibView, and the answer stops.
        send(
            &mut s,
            request(42, 70, Pdu::GetBulk { non_repeaters: 0, max_repetitions: u16::MAX, ranges: vec![all.clone()] }),
        )
        .await;
        let r = read_msg(&mut s).await.unwrap();
        let Pdu::Response { varbinds, .. } = r.pdu else { panic!("{r:?}") };
        assert_eq!(varbinds.len(), 80);
        assert_eq!(varbinds[79].value, agentx::Value::EndOfMibView);
        // A set is refused, a non-default context holds nothing.
        send(
            &mut s,
            request(
                42,
                8,
                Pdu::TestSet {
                    varbinds: vec![agentx::VarBind {
                        name: Oid::from(mib::VRRPV3_MIB),
                        value: agentx::Value::Integer(1),
                    }],
                },
            ),
        )
        .await;
        let r = read_msg(&mut s).await.unwrap();
        assert!(matches!(r.pdu, Pdu::Response { error: error::NOT_WRITABLE, index: 1, .. }), "{r:?}");
        let mut ctx = request(42, 9, Pdu::GetNext { ranges: vec![all.clone()] });
        ctx.context = Some(b"other".to_vec());
        send(&mut s, ctx).await;
        let r = read_msg(&mut s).await.unwrap();
        let Pdu::Response { varbinds, .. } = r.pdu else { panic!() };
        assert_eq!(varbinds[0].value, agentx::Value::EndOfMibView);
        // A message announcing a payload of 4 GiB: closed as a parse error, nothing buffered.
        let mut huge =
            Message { session_id: 42, transaction_id: 0, packet_id: 10, context: None, pdu: Pdu::Ping }.emit();
        huge[1] = 5;
        huge[16..20].copy_from_slice(&0xffff_fff0u32.to_be_bytes());
        s.write_all(&huge).await.unwrap();
        let r = read_msg(&mut s).await.unwrap();
        assert_eq!(r.pdu, Pdu::Close { reason: CloseReason::ParseError });
        assert!(read_msg(&mut s).await.is_none(), "the subagent hangs up");

        // Session 2: the registration is refused; the subagent hangs up and tries again.
        let mut s = accept(&l, 43, error::DUPLICATE_REGISTRATION).await;
        assert!(read_msg(&mut s).await.is_none());

        // Session 3: registered, then the master shuts down.
        let mut s = accept(&l, 44, error::NO_ERROR).await;
        send(&mut s, request(44, 1, Pdu::Close { reason: CloseReason::Shutdown })).await;
        assert!(read_msg(&mut s).await.is_none());

        // Session 4: the master goes away without a word; the subagent comes back.
        let s = accept(&l, 45, error::NO_ERROR).await;
        drop(s);
        let s = accept(&l, 46, error::NO_ERROR).await;
        drop(s);
        agent.abort();
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn socket_paths_as_keepalived_takes_them() {
        assert_eq!(socket_path("/var/agentx/master"), Some(PathBuf::from("/var/agentx/master")));
        assert_eq!(socket_path("unix:/run/agentx"), Some(PathBuf::from("/run/agentx")));
        assert_eq!(socket_path("agentx.sock"), Some(PathBuf::from("agentx.sock")));
        assert_eq!(socket_path("tcp:localhost:705"), None);
        assert_eq!(socket_path("udp:127.0.0.1:705"), None);
        assert_eq!(socket_path("localhost:705"), None);
        assert_eq!(socket_path("unix:"), None);
        assert_eq!(socket_path(""), None);
    }

    #[test]
    fn discontinuity_is_the_masters_uptime_when_the_daemon_started() {
        let now = SystemTime::now();
        // The master has run 100 s; the daemon started 30 s ago: at 70 s of the master's clock.
        let up = Some((10_000, Instant::now()));
        let d = discontinuity(up, now - Duration::from_secs(30), now);
        assert!((6_999..=7_001).contains(&d), "{d}");
        // The daemon is older than the master: no discontinuity since the master started.
        assert_eq!(discontinuity(up, now - Duration::from_secs(300), now), 0);
        assert_eq!(discontinuity(None, now, now), 0);
    }
}
