//! State-change notifications: notify scripts, notify FIFOs and SMTP alerts, with keepalived's
//! arguments and line formats.
//!
//! - `notify_master` / `notify_backup` / `notify_fault` / `notify_stop` run without arguments;
//! - `notify` runs with `TYPE NAME STATE PRIORITY` (`INSTANCE "VI_1" MASTER 100`);
//! - each FIFO gets the line `TYPE "NAME" STATE PRIORITY`;
//! - with `smtp_alert`, a mail goes to every `notification_email` through `smtp_server`;
//! - a master that receives a lower-priority advert runs `notify_master_rx_lower_pri` without
//!   arguments and writes `INSTANCE "NAME" MASTER_RX_LOWER_PRI PRIORITY` (its own priority) to
//!   the FIFOs, as keepalived does; `notify` is not run for it. These go through a lane of
//!   their own ([`Notifier::master_rx_lower`]), so a stream of such adverts neither delays
//!   nor replaces the notification of a state change, and runs at most one script per
//!   [`MIN_GAP`].
//!
//! A flood of transitions (a hostile peer flipping an instance between MASTER and BACKUP a
//! thousand times a second) must not fork a thousand scripts a second nor queue a thousand
//! mails. So, for each instance and each sync group, at most one notification runs at a time
//! (scripts and mail each on their own): a transition arriving while one runs becomes the
//! pending one, replacing any pending before it. The last state always gets its notification;
//! the states in between are skipped, counted ([`Notifier::skipped`]) and logged. Runs for one
//! instance also start at least [`MIN_GAP`] apart, so a fast script cannot be forked once per
//! flip either. FIFO lines are cheap and all written, through a bounded queue that drops its
//! oldest lines (counted and logged) rather than grow or block.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::proc::{self, Creds, Runner};
use crate::config::global::SmtpServer;
use crate::config::vrrp::Notify;
use crate::config::{Config, Script};
use crate::ratelimit::{KeyedRateLimit, RateLimit};

use super::fifo::Stream;

/// How long a notify script may run.
pub const NOTIFY_TIMEOUT: Duration = Duration::from_secs(30);

/// The least time between the starts of two notifications of one instance (or group) on one
/// channel. A single transition is notified at once; only a second one within this time waits
/// (an instance flapping that fast is notified of where it ended, a quarter second late), so a
/// flood forks at most four scripts a second per instance however fast they run.
pub const MIN_GAP: Duration = Duration::from_millis(250);

/// FIFO lines queued at most; beyond, the oldest are dropped.
pub const FIFO_QUEUE: usize = 1024;

/// What changed state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A `vrrp_instance`.
    Instance,
    /// A `vrrp_sync_group`.
    Group,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Instance => "INSTANCE",
            Kind::Group => "GROUP",
        }
    }
}

/// Where mail goes.
#[derive(Debug, Clone)]
pub struct Smtp {
    /// The relay.
    pub server: SmtpServer,
    /// Connect (and per-reply) timeout.
    pub timeout: Duration,
    /// `notification_email_from`.
    pub from: String,
    /// `notification_email`.
    pub to: Vec<String>,
    /// `router_id`, used in the subject and HELO.
    pub router_id: String,
}

/// The two ways a transition is notified that cost something: scripts and mail. Each has its
/// own one-at-a-time lane per instance, so a slow relay does not hold scripts back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Channel {
    Scripts,
    Mail,
    RxLower,
}

/// One lane: an instance's (or group's) scripts, or its mail.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    kind: Kind,
    name: String,
    channel: Channel,
}

/// The notification of one transition, on one channel.
#[derive(Debug)]
enum Job {
    /// Scripts to run one after the other, with their extra arguments and their name in the
    /// log (`notify_master VI_1`).
    Scripts { state: String, scripts: Vec<(Script, Vec<String>, String)> },
    /// A mail.
    Mail { state: String, subject: String, body: String },
    /// A master received a lower-priority advert: the FIFO line and `notify_master_rx_lower_pri`.
    RxLower { line: String, script: Option<(Script, String)> },
}

impl Job {
    fn state(&self) -> &str {
        match self {
            Job::Scripts { state, .. } | Job::Mail { state, .. } => state,
            Job::RxLower { .. } => RX_LOWER,
        }
    }
}

/// A lane's state. It lives as long as the notifier (one per instance and channel).
#[derive(Debug)]
struct Lane {
    /// A worker task is running this lane.
    busy: bool,
    /// The notification to run next; a newer transition replaces it.
    pending: Option<Job>,
    /// When the last notification started.
    last_start: Option<Instant>,
    /// Transitions skipped since the last log line about them.
    skipped: u64,
    log: RateLimit,
}

impl Lane {
    fn new() -> Lane {
        Lane { busy: false, pending: None, last_start: None, skipped: 0, log: RateLimit::new(1, Duration::from_secs(10)) }
    }
}

/// The notify FIFO queue: bounded, oldest dropped; and the FIFOs it is written to.
#[derive(Debug)]
struct Fifo {
    outs: Mutex<Vec<super::fifo::Output>>,
    /// Some FIFO is open: lines are queued only then.
    active: AtomicBool,
    queue: Mutex<VecDeque<(super::fifo::Stream, String)>>,
    dropped: AtomicU64,
    /// The writer holds lines it took from the queue and has not written yet.
    writing: AtomicBool,
    wake: tokio::sync::Notify,
}

#[derive(Debug)]
struct Inner {
    /// Where lanes and the FIFO writer run: the runtime `Notifier::new` was called in.
    handle: tokio::runtime::Handle,
    /// How scripts run: as whom, with which checks (enable_script_security); replaced on
    /// reload ([`Notifier::set_runner`]).
    runner: std::sync::RwLock<Runner>,
    fifo: Arc<Fifo>,
    smtp: Option<Smtp>,
    lanes: Mutex<HashMap<Key, Lane>>,
    workers: Mutex<Vec<JoinHandle<()>>>,
    skipped: AtomicU64,
    /// Failed runs, logged at most [`FAILED_LOG_BURST`] a minute per script.
    failed_log: Mutex<KeyedRateLimit<String>>,
}

/// Failed notify script runs logged per script and minute.
const FAILED_LOG_BURST: u32 = 3;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing in these locks is left half-updated by a panic worth refusing service over.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Sends notifications; cheap to clone into tasks.
#[derive(Debug, Clone)]
pub struct Notifier {
    inner: Arc<Inner>,
}

impl Notifier {
    /// From the global settings, scripts that name no user running as `creds` (`None`: hav's
    /// own user, which `enable_script_security` refuses). Notifications run on the tokio
    /// runtime this is called in, wherever [`Notifier::changed`] is called from.
    ///
    /// # Panics
    /// When called outside a tokio runtime.
    pub fn new(config: &Config, creds: Option<Creds>) -> Self {
        Self::with_runner(config, Runner::new(config.global.enable_script_security, creds))
    }

    /// [`Notifier::new`] with the script settings given whole.
    ///
    /// # Panics
    /// When called outside a tokio runtime.
    pub fn with_runner(config: &Config, runner: Runner) -> Self {
        let handle = tokio::runtime::Handle::current();
        let fifo = Arc::new(Fifo {
            outs: Mutex::new(Vec::new()),
            active: AtomicBool::new(false),
            queue: Mutex::new(VecDeque::new()),
            dropped: AtomicU64::new(0),
            writing: AtomicBool::new(false),
            wake: tokio::sync::Notify::new(),
        });
        handle.spawn(fifo_writer(fifo.clone()));
        fifo.reconfigure(super::fifo::wanted(config), &runner);
        let router_id = config.global.router_id.clone().unwrap_or_else(|| {
            nix::unistd::gethostname().map(|h| h.to_string_lossy().into_owned()).unwrap_or_else(|_| "hav".into())
        });
        let smtp = config.global.smtp_server.clone().map(|server| Smtp {
            server,
            timeout: config.global.smtp_connect_timeout,
            from: config
                .global
                .notification_email_from
                .clone()
                .unwrap_or_else(|| format!("hav@{router_id}")),
            to: config.global.notification_email.clone(),
            router_id,
        });
        Notifier {
            inner: Arc::new(Inner {
                handle,
                runner: std::sync::RwLock::new(runner),
                fifo,
                smtp,
                lanes: Mutex::new(HashMap::new()),
                workers: Mutex::new(Vec::new()),
                skipped: AtomicU64::new(0),
                failed_log: Mutex::new(KeyedRateLimit::new(FAILED_LOG_BURST, Duration::from_secs(60), 1024)),
            }),
        }
    }

    /// `name` entered `state` (`MASTER`, `BACKUP`, `FAULT`, `STOP`) with `priority`.
    ///
    /// Cheap and non-blocking, callable from any thread: the FIFO line is queued, the scripts
    /// and the mail are handed to the instance's lanes, which run them (on the notifier's
    /// runtime) now or, while a previous notification of the same instance runs, after it
    /// (replacing any transition still waiting there).
    pub fn changed(&self, kind: Kind, name: &str, notify: &Notify, state: &str, priority: u8, smtp_alert: bool) {
        let specific = match state {
            "MASTER" => &notify.master,
            "BACKUP" => &notify.backup,
            "FAULT" => &notify.fault,
            "STOP" => &notify.stop,
            _ => &None,
        };
        self.announce(kind, name, notify, state, specific.as_ref(), priority, smtp_alert);
    }

    /// Instance `name`, with `priority`, was removed by a reload: as keepalived, `notify` and
    /// the FIFO are told `FAULT`, and `notify_fault` is not run; with `notify_deleted` they are
    /// told `DELETED`, and its script, if it names one, is run.
    pub fn removed(&self, name: &str, notify: &Notify, priority: u8, smtp_alert: bool) {
        if notify.send_deleted {
            self.announce(Kind::Instance, name, notify, "DELETED", notify.deleted.as_ref(), priority, smtp_alert);
        } else {
            self.announce(Kind::Instance, name, notify, "FAULT", None, priority, smtp_alert);
        }
    }

    /// Queues `state`'s notifications: `specific` (the `notify_STATE` script, if any), then
    /// `notify` with `TYPE NAME STATE PRIORITY`, the FIFO line and the mail.
    #[allow(clippy::too_many_arguments)]
    fn announce(&self, kind: Kind, name: &str, notify: &Notify, state: &str, specific: Option<&Script>, priority: u8, smtp_alert: bool) {
        let mut scripts = Vec::new();
        if let Some(s) = specific {
            scripts.push((s.clone(), Vec::new(), format!("notify_{} {name}", state.to_ascii_lowercase())));
        }
        if let Some(s) = &notify.notify {
            let args = vec![kind.as_str().to_owned(), name.to_owned(), state.to_owned(), priority.to_string()];
            scripts.push((s.clone(), args, format!("notify {name}")));
        }
        if !scripts.is_empty() {
            self.submit(Key { kind, name: name.to_owned(), channel: Channel::Scripts }, Job::Scripts { state: state.to_owned(), scripts });
        }
        self.inner.fifo.push(Stream::Vrrp, fifo_line(kind, name, state, priority));
        if smtp_alert {
            if let Some(smtp) = &self.inner.smtp {
                let subject = format!("[{}] VRRP {} {} - Entering {} state", smtp.router_id, kind_word(kind), name, state);
                let body = format!("=> VRRP {} {} is now {} (priority {}) <=\r\n", kind_word(kind), name, state, priority);
                self.submit(Key { kind, name: name.to_owned(), channel: Channel::Mail }, Job::Mail { state: state.to_owned(), subject, body });
            }
        }
    }

    /// Instance `name`, master with `priority`, received a lower-priority advert: queues
    /// `notify_master_rx_lower_pri` and the FIFO line on the instance's own lane for these
    /// (a newer one replaces one still waiting there). Cheap; callable from any thread.
    pub fn master_rx_lower(&self, name: &str, notify: &Notify, priority: u8) {
        if notify.master_rx_lower_pri.is_none() && !self.inner.fifo.active.load(Ordering::Relaxed) {
            return;
        }
        let script = notify.master_rx_lower_pri.clone().map(|s| (s, format!("notify_master_rx_lower_pri {name}")));
        let line = fifo_line(Kind::Instance, name, RX_LOWER, priority);
        self.submit(Key { kind: Kind::Instance, name: name.to_owned(), channel: Channel::RxLower }, Job::RxLower { line, script });
    }

    /// Runs the scripts of later notifications with `runner`'s settings (a reload changed
    /// `script_user` or `enable_script_security`). Cheap; callable from any thread.
    pub fn set_runner(&self, runner: Runner) {
        *self.inner.runner.write().unwrap_or_else(|p| p.into_inner()) = runner;
    }

    /// Transitions whose notification was skipped because a later one replaced it, since
    /// start (for metrics).
    pub fn skipped(&self) -> u64 {
        self.inner.skipped.load(Ordering::Relaxed)
    }

    /// FIFO lines dropped because the queue was full, since start (for metrics).
    pub fn fifo_dropped(&self) -> u64 {
        self.inner.fifo.dropped.load(Ordering::Relaxed)
    }

    /// Opens the FIFOs a reloaded `config` asks for and closes those it no longer does; one
    /// whose settings and reader are unchanged stays open, its reader running. Call inside
    /// the notifier's runtime.
    pub fn set_fifos(&self, config: &Config) {
        let runner = self.inner.runner.read().unwrap_or_else(|p| p.into_inner()).clone();
        self.inner.fifo.reconfigure(super::fifo::wanted(config), &runner);
    }

    /// A checker (LVS) line for `notify_fifo` and `lvs_notify_fifo`: queued like the VRRP lines.
    /// Cheap; callable from any thread.
    pub fn lvs_line(&self, line: String) {
        self.inner.fifo.push(Stream::Lvs, line);
    }

    /// [`Notifier::lvs_line`] for the director.
    pub fn lvs_sink(&self) -> crate::lvs::FifoSink {
        let n = self.clone();
        crate::lvs::FifoSink::new(move |line| n.lvs_line(line))
    }

    /// At stop, after [`Notifier::drain`]: each FIFO's reader gets a moment to read what is
    /// left and is stopped; FIFOs the daemon created are removed.
    pub async fn close_fifos(&self) {
        let outs = std::mem::take(&mut *lock(&self.inner.fifo.outs));
        self.inner.fifo.active.store(false, Ordering::Relaxed);
        for o in outs {
            o.close().await;
        }
    }

    /// Waits (at most `limit`) for the notifications still running or pending, and for the
    /// FIFO queue to be written: at shutdown, so that `notify_stop` and the last mails are not
    /// cut off.
    pub async fn drain(&self, limit: Duration) {
        let _ = tokio::time::timeout(limit, async {
            loop {
                let handles: Vec<_> = std::mem::take(&mut *lock(&self.inner.workers));
                let fifo_busy = self.inner.fifo.busy();
                if handles.is_empty() && !fifo_busy {
                    return;
                }
                for h in handles {
                    let _ = h.await;
                }
                if fifo_busy {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        })
        .await;
    }

    /// Hands `job` to its lane: runs it now when the lane is idle, else leaves it pending
    /// (replacing, and counting as skipped, a job already pending).
    fn submit(&self, key: Key, job: Job) {
        let mut lanes = lock(&self.inner.lanes);
        let lane = lanes.entry(key.clone()).or_insert_with(Lane::new);
        if lane.pending.replace(job).is_some() {
            lane.skipped += 1;
            self.inner.skipped.fetch_add(1, Ordering::Relaxed);
        }
        if lane.busy {
            return;
        }
        lane.busy = true;
        drop(lanes);
        let inner = self.inner.clone();
        let h = self.inner.handle.spawn(async move { inner.work(key).await });
        let mut workers = lock(&self.inner.workers);
        workers.retain(|h| !h.is_finished());
        workers.push(h);
    }
}

impl Inner {
    /// A lane's worker: runs its pending jobs one at a time, [`MIN_GAP`] apart, until none is
    /// left.
    async fn work(self: Arc<Self>, key: Key) {
        loop {
            let wait = {
                let mut lanes = lock(&self.lanes);
                let Some(lane) = lanes.get_mut(&key) else { return };
                if lane.pending.is_none() {
                    lane.busy = false;
                    return;
                }
                lane.last_start.map(|t| t + MIN_GAP)
            };
            if let Some(t) = wait {
                tokio::time::sleep_until(t).await;
            }
            let (job, skipped) = {
                let mut lanes = lock(&self.lanes);
                let Some(lane) = lanes.get_mut(&key) else { return };
                let Some(job) = lane.pending.take() else { continue };
                lane.last_start = Some(Instant::now());
                let skipped = if lane.skipped > 0 && lane.log.check_now().is_some() { std::mem::take(&mut lane.skipped) } else { 0 };
                (job, skipped)
            };
            if skipped > 0 {
                tracing::warn!(
                    kind = key.kind.as_str(),
                    name = %key.name,
                    channel = ?key.channel,
                    skipped,
                    total = self.skipped.load(Ordering::Relaxed),
                    state = job.state(),
                    "state changes came faster than their notifications ran: intermediate states skipped, the latest is notified"
                );
            }
            self.run(job).await;
        }
    }

    async fn run(&self, job: Job) {
        match job {
            Job::Scripts { scripts, .. } => {
                for (s, args, what) in scripts {
                    self.run_script(&s, &args, &what).await;
                }
            }
            Job::RxLower { line, script } => {
                self.fifo.push(Stream::Vrrp, line);
                if let Some((s, what)) = script {
                    self.run_script(&s, &[], &what).await;
                }
            }
            Job::Mail { subject, body, .. } => {
                if let Some(smtp) = &self.smtp {
                    if let Err(e) = send_mail(smtp, &subject, &body).await {
                        tracing::warn!(server = %smtp.server.host, error = %e, "smtp_alert not sent");
                    }
                }
            }
        }
    }
}

impl Inner {
    async fn run_script(&self, s: &Script, args: &[String], what: &str) {
        // Refusals, timeouts and failed starts are logged by the runner.
        let runner = self.runner.read().unwrap_or_else(|p| p.into_inner()).clone();
        let outcome = runner.run(s, None, args, NOTIFY_TIMEOUT, what).await;
        if let proc::Outcome::NoResources(e) = &outcome {
            crate::resource::report_exhaustion(what, e);
        }
        if matches!(outcome, proc::Outcome::Exited(c) if c != 0) || matches!(outcome, proc::Outcome::Signaled(_)) {
            let held = lock(&self.failed_log).check(&what.to_owned(), std::time::Instant::now());
            if let Some(held_back) = held {
                tracing::warn!(script = %s.command, ?outcome, held_back, "{what}: notify script failed");
            }
        }
    }
}

/// keepalived's word, in the FIFO, for a master that received a lower-priority advert.
pub const RX_LOWER: &str = "MASTER_RX_LOWER_PRI";

fn kind_word(kind: Kind) -> &'static str {
    match kind {
        Kind::Instance => "Instance",
        Kind::Group => "Group",
    }
}

/// The FIFO line for a change: `INSTANCE "VI_1" MASTER 100`.
pub fn fifo_line(kind: Kind, name: &str, state: &str, priority: u8) -> String {
    format!("{} \"{}\" {} {}\n", kind.as_str(), name, state, priority)
}

impl Fifo {
    /// Queues a line, dropping the oldest when the queue is full; nothing when no FIFO is open.
    fn push(&self, stream: Stream, line: String) {
        if !self.active.load(Ordering::Relaxed) {
            return;
        }
        let mut q = lock(&self.queue);
        if q.len() >= FIFO_QUEUE {
            q.pop_front();
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
        q.push_back((stream, line));
        drop(q);
        self.wake.notify_one();
    }

    /// Keeps the open FIFOs that `wanted` lists unchanged, closes the others and opens the new
    /// ones: at once, but for one at the path of a FIFO being closed, which opens after that
    /// one is closed (and removed, if the daemon created it). Call inside a tokio runtime.
    fn reconfigure(self: &Arc<Self>, wanted: Vec<super::fifo::Want>, runner: &proc::Runner) {
        let mut outs = lock(&self.outs);
        let (keep, gone): (Vec<_>, Vec<_>) = std::mem::take(&mut *outs).into_iter().partition(|o| wanted.contains(&o.want));
        *outs = keep;
        let (later, now): (Vec<_>, Vec<_>) = wanted
            .into_iter()
            .filter(|w| !outs.iter().any(|o| o.want == *w))
            .partition(|w| gone.iter().any(|g| g.want.spec.path == w.spec.path));
        for w in now {
            self.open_into(&mut outs, w, runner);
        }
        self.active.store(!outs.is_empty() || !later.is_empty(), Ordering::Relaxed);
        drop(outs);
        if gone.is_empty() {
            return;
        }
        let (me, runner) = (self.clone(), runner.clone());
        tokio::spawn(async move {
            for o in gone {
                o.close().await;
            }
            let mut outs = lock(&me.outs);
            for w in later {
                me.open_into(&mut outs, w, &runner);
            }
            me.active.store(!outs.is_empty(), Ordering::Relaxed);
        });
    }

    fn open_into(&self, outs: &mut Vec<super::fifo::Output>, want: super::fifo::Want, runner: &proc::Runner) {
        match super::fifo::Output::open(want, runner) {
            Ok(o) => outs.push(o),
            Err(e) => tracing::error!("{e}; its lines are not written"),
        }
    }

    /// Lines are queued or being written.
    fn busy(&self) -> bool {
        // Under the queue lock: the writer raises `writing` under it as it takes a batch.
        let q = lock(&self.queue);
        !q.is_empty() || self.writing.load(Ordering::Acquire)
    }
}

/// Writes the queued lines to every open FIFO, in batches.
async fn fifo_writer(fifo: Arc<Fifo>) {
    let mut dropped_seen = 0;
    let mut dropped_log = RateLimit::new(1, Duration::from_secs(10));
    loop {
        let batch: Vec<(Stream, String)> = {
            let mut q = lock(&fifo.queue);
            if !q.is_empty() {
                fifo.writing.store(true, Ordering::Release);
            }
            q.drain(..).collect()
        };
        if batch.is_empty() {
            fifo.wake.notified().await;
            continue;
        }
        let dropped = fifo.dropped.load(Ordering::Relaxed);
        if dropped > dropped_seen && dropped_log.check_now().is_some() {
            tracing::warn!(dropped = dropped - dropped_seen, total = dropped, "notify fifo: queue full, oldest lines dropped");
            dropped_seen = dropped;
        }
        // Non-blocking writes to FIFOs held open: nothing here waits.
        for o in lock(&fifo.outs).iter_mut() {
            o.write(&batch);
        }
        fifo.writing.store(false, Ordering::Release);
    }
}


/// Sends one mail through `smtp` (RFC 5321: EHLO, falling back to HELO; no auth, no TLS, as
/// keepalived's relay setup).
pub async fn send_mail(smtp: &Smtp, subject: &str, body: &str) -> Result<(), String> {
    if smtp.to.is_empty() {
        return Err("no notification_email configured".into());
    }
    let addr = format!("{}:{}", smtp.server.host, smtp.server.port);
    let t = smtp.timeout;
    let stream = tokio::time::timeout(t, TcpStream::connect(&addr))
        .await
        .map_err(|_| format!("connect to {addr}: timed out"))?
        .map_err(|e| format!("connect to {addr}: {e}"))?;
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r);
    expect(&mut r, t, 220).await?;
    let helo = &smtp.router_id;
    w.write_all(format!("EHLO {helo}\r\n").as_bytes()).await.map_err(|e| e.to_string())?;
    if expect(&mut r, t, 250).await.is_err() {
        w.write_all(format!("HELO {helo}\r\n").as_bytes()).await.map_err(|e| e.to_string())?;
        expect(&mut r, t, 250).await?;
    }
    w.write_all(format!("MAIL FROM:<{}>\r\n", smtp.from).as_bytes()).await.map_err(|e| e.to_string())?;
    expect(&mut r, t, 250).await?;
    for to in &smtp.to {
        w.write_all(format!("RCPT TO:<{to}>\r\n").as_bytes()).await.map_err(|e| e.to_string())?;
        expect(&mut r, t, 250).await?;
    }
    w.write_all(b"DATA\r\n").await.map_err(|e| e.to_string())?;
    expect(&mut r, t, 354).await?;
    let mut msg = format!("From: {}\r\nTo: {}\r\nSubject: {}\r\n", smtp.from, smtp.to.join(", "), subject);
    msg.push_str("Content-Type: text/plain; charset=utf-8\r\n\r\n");
    for line in body.lines() {
        // Dot-stuffing (RFC 5321 section 4.5.2).
        if line.starts_with('.') {
            msg.push('.');
        }
        msg.push_str(line);
        msg.push_str("\r\n");
    }
    msg.push_str(".\r\n");
    w.write_all(msg.as_bytes()).await.map_err(|e| e.to_string())?;
    expect(&mut r, t, 250).await?;
    w.write_all(b"QUIT\r\n").await.map_err(|e| e.to_string())?;
    let _ = expect(&mut r, t, 221).await;
    Ok(())
}

async fn expect<R: AsyncBufReadExt + Unpin>(r: &mut R, t: Duration, code: u16) -> Result<(), String> {
    loop {
        let mut line = String::new();
        let n = tokio::time::timeout(t, r.read_line(&mut line))
            .await
            .map_err(|_| format!("no reply (expected {code})"))?
            .map_err(|e| e.to_string())?;
        if n == 0 {
            return Err(format!("connection closed (expected {code})"));
        }
        let got: u16 = line.get(..3).and_then(|c| c.parse().ok()).ok_or_else(|| format!("bad reply '{}'", line.trim_end()))?;
        // "250-..." continues a multi-line reply; "250 ..." ends it.
        if line.as_bytes().get(3) == Some(&b'-') {
            continue;
        }
        return if got == code { Ok(()) } else { Err(format!("expected {code}, got '{}'", line.trim_end())) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn temp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("hav-notify-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&d).expect("dir");
        d
    }

    /// A `notify` script that appends its arguments to `out` and takes `secs` to run.
    fn logging_script(dir: &std::path::Path, out: &std::path::Path, secs: &str) -> Script {
        let sh = dir.join("notify.sh");
        std::fs::write(&sh, format!("#!/bin/sh\necho \"$@\" >> {}\nsleep {secs}\n", out.display())).expect("script");
        let sh = sh.to_str().expect("utf-8").to_owned();
        Script { command: format!("/bin/sh {sh}"), argv: vec!["/bin/sh".into(), sh], user: None }
    }

    #[tokio::test]
    async fn test_flood_is_coalesced_and_the_last_state_wins() {
        let dir = temp("flood");
        let out = dir.join("calls");
        let notify = Notify { notify: Some(logging_script(&dir, &out, "0.2")), ..Notify::default() };
        let n = Notifier::new(&Config::default(), None);
        let states = ["MASTER", "BACKUP"];
        // A thousand flips in about a second, the loop yielding between them as the daemon's
        // does between adverts.
        for i in 0..1000 {
            n.changed(Kind::Instance, "VI_1", &notify, states[i % 2], 100, false);
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        // A last, different state, to tell it apart from the alternation.
        n.changed(Kind::Instance, "VI_1", &notify, "FAULT", 0, false);
        n.drain(Duration::from_secs(10)).await;
        let calls = std::fs::read_to_string(&out).expect("the script ran");
        let lines: Vec<&str> = calls.lines().collect();
        // One 0.2 s run at a time over a second or two of flood, plus the last one.
        assert!((2..=12).contains(&lines.len()), "one run at a time, the pending one replaced: {lines:?}");
        assert_eq!(lines.first(), Some(&"INSTANCE VI_1 MASTER 100"), "the first transition ran at once");
        assert_eq!(lines.last(), Some(&"INSTANCE VI_1 FAULT 0"), "the last state wins");
        assert!(n.skipped() >= 1001 - 12, "skipped {}", n.skipped());
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A removed instance: FAULT to `notify` without `notify_fault`, by default; DELETED and
    /// the `notify_deleted` script with that keyword; DELETED alone with the bare keyword.
    #[tokio::test]
    async fn test_removed_says_fault_or_deleted() {
        let dir = temp("removed");
        let (out, ran) = (dir.join("calls"), dir.join("ran"));
        let marker = |word: &str| {
            let sh = dir.join(format!("{word}.sh"));
            std::fs::write(&sh, format!("#!/bin/sh\necho {word} >> {}\n", ran.display())).expect("script");
            let sh = sh.to_str().expect("utf-8").to_owned();
            Script { command: format!("/bin/sh {sh}"), argv: vec!["/bin/sh".into(), sh], user: None }
        };
        let base = Notify { notify: Some(logging_script(&dir, &out, "0")), fault: Some(marker("fault")), stop: Some(marker("stop")), ..Notify::default() };
        let n = Notifier::new(&Config::default(), None);
        n.removed("VI_1", &base, 90, false);
        n.removed("VI_2", &Notify { send_deleted: true, deleted: Some(marker("deleted")), ..base.clone() }, 80, false);
        n.removed("VI_3", &Notify { send_deleted: true, ..base.clone() }, 70, false);
        n.drain(Duration::from_secs(10)).await;
        let mut calls: Vec<String> = std::fs::read_to_string(&out).expect("ran").lines().map(str::to_owned).collect();
        calls.sort();
        assert_eq!(calls, ["INSTANCE VI_1 FAULT 90", "INSTANCE VI_2 DELETED 80", "INSTANCE VI_3 DELETED 70"]);
        assert_eq!(std::fs::read_to_string(&ran).expect("ran"), "deleted\n", "only notify_deleted's script, once");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn test_instances_do_not_wait_for_each_other() {
        let dir = temp("lanes");
        let out = dir.join("calls");
        let notify = Notify { notify: Some(logging_script(&dir, &out, "0.3")), ..Notify::default() };
        let n = Notifier::new(&Config::default(), None);
        let t = Instant::now();
        n.changed(Kind::Instance, "VI_1", &notify, "MASTER", 100, false);
        n.changed(Kind::Instance, "VI_2", &notify, "MASTER", 100, false);
        n.changed(Kind::Group, "G1", &notify, "MASTER", 0, false);
        n.drain(Duration::from_secs(10)).await;
        assert!(t.elapsed() < Duration::from_millis(800), "three lanes ran side by side: {:?}", t.elapsed());
        let calls = std::fs::read_to_string(&out).expect("ran");
        assert_eq!(calls.lines().count(), 3, "{calls}");
        assert_eq!(n.skipped(), 0);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn test_changed_from_outside_the_runtime() {
        let dir = temp("thread");
        let out = dir.join("calls");
        let notify = Notify { notify: Some(logging_script(&dir, &out, "0")), ..Notify::default() };
        let n = Notifier::new(&Config::default(), None);
        let (n2, notify2) = (n.clone(), notify.clone());
        // The VRRP loop runs on a runtime of its own; the notifier's work stays on its own.
        std::thread::spawn(move || n2.changed(Kind::Instance, "VI_1", &notify2, "MASTER", 100, false)).join().expect("thread");
        n.drain(Duration::from_secs(5)).await;
        assert_eq!(std::fs::read_to_string(&out).expect("ran"), "INSTANCE VI_1 MASTER 100\n");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A reload's script settings apply to the next notifications: with script security and no
    /// script user, the same script is refused.
    #[tokio::test]
    async fn test_set_runner_applies_to_later_notifications() {
        let dir = temp("runner");
        let out = dir.join("calls");
        let notify = Notify { notify: Some(logging_script(&dir, &out, "0")), ..Notify::default() };
        let n = Notifier::new(&Config::default(), None);
        n.changed(Kind::Instance, "VI_1", &notify, "MASTER", 100, false);
        n.drain(Duration::from_secs(5)).await;
        n.set_runner(Runner::new(true, None));
        tokio::time::sleep(MIN_GAP).await;
        n.changed(Kind::Instance, "VI_1", &notify, "BACKUP", 100, false);
        n.drain(Duration::from_secs(5)).await;
        assert_eq!(std::fs::read_to_string(&out).expect("ran"), "INSTANCE VI_1 MASTER 100\n");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn test_rx_lower_runs_without_arguments_on_its_own_lane() {
        let dir = temp("rxlower");
        let (out, rx_out) = (dir.join("calls"), dir.join("rx"));
        let rx = dir.join("rx.sh");
        std::fs::write(&rx, format!("#!/bin/sh\necho \"rx $#\" >> {}\n", rx_out.display())).expect("script");
        let rx = rx.to_str().expect("utf-8").to_owned();
        let notify = Notify {
            notify: Some(logging_script(&dir, &out, "0")),
            master_rx_lower_pri: Some(Script { command: format!("/bin/sh {rx}"), argv: vec!["/bin/sh".into(), rx], user: None }),
            ..Notify::default()
        };
        let n = Notifier::new(&Config::default(), None);
        // A second of lower-priority adverts at 1 kHz, with one state change in the middle.
        let t = Instant::now();
        for i in 0..1000 {
            n.master_rx_lower("VI_1", &notify, 150);
            if i == 500 {
                n.changed(Kind::Instance, "VI_1", &notify, "MASTER", 150, false);
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let secs = t.elapsed().as_secs_f64();
        n.drain(Duration::from_secs(10)).await;
        let runs = std::fs::read_to_string(&rx_out).expect("the rx script ran");
        assert!(runs.lines().all(|l| l == "rx 0"), "run without arguments: {runs}");
        // One run per MIN_GAP at most, plus the one pending at the end.
        let most = (secs / MIN_GAP.as_secs_f64()).ceil() as usize + 2;
        assert!((2..=most).contains(&runs.lines().count()), "{} runs in {secs:.2} s", runs.lines().count());
        // The state change is notified (and `notify` is not run for MASTER_RX_LOWER_PRI).
        assert_eq!(std::fs::read_to_string(&out).expect("notify ran"), "INSTANCE VI_1 MASTER 150\n");
        // Nothing configured for it: nothing queued.
        n.master_rx_lower("VI_2", &Notify::default(), 150);
        assert!(!lock(&n.inner.lanes).keys().any(|k| k.name == "VI_2"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A FIFO in a scratch directory named after `tag`, a thread reading it to the end, and a
    /// write end held open, so that the reader's EOF waits for the test to drop it (after the
    /// notifier closed its own end).
    fn fifo(tag: &str) -> (PathBuf, PathBuf, std::thread::JoinHandle<String>, std::fs::File) {
        let dir = temp(tag);
        let path = dir.join("fifo");
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600)).expect("mkfifo");
        let p = path.clone();
        let reader = std::thread::spawn(move || std::fs::read_to_string(p).expect("read fifo"));
        let keep = std::fs::OpenOptions::new().write(true).open(&path).expect("open for write");
        (dir, path, reader, keep)
    }

    /// keepalived's FIFO line for a master that received a lower priority, with no
    /// notify_master_rx_lower_pri configured: `INSTANCE "VI_1" MASTER_RX_LOWER_PRI 150`.
    #[tokio::test]
    async fn test_fifo_gets_master_rx_lower_pri() {
        let (dir, path, reader, keep) = fifo("fifo-rx");
        let mut config = Config::default();
        config.global.vrrp_notify_fifo = Some(spec(&path));
        let n = Notifier::new(&config, None);
        n.changed(Kind::Instance, "VI_1", &Notify::default(), "MASTER", 150, false);
        n.master_rx_lower("VI_1", &Notify::default(), 150);
        n.drain(Duration::from_secs(5)).await;
        n.close_fifos().await;
        assert!(path.exists(), "a FIFO the daemon did not create stays");
        drop(keep);
        drop(n);
        let text = tokio::task::spawn_blocking(move || reader.join().expect("reader")).await.expect("join");
        assert_eq!(text, "INSTANCE \"VI_1\" MASTER 150\nINSTANCE \"VI_1\" MASTER_RX_LOWER_PRI 150\n");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn test_fifo_queue_drops_oldest() {
        let f = Fifo {
            outs: Mutex::new(Vec::new()),
            active: AtomicBool::new(true),
            queue: Mutex::new(VecDeque::new()),
            dropped: AtomicU64::new(0),
            writing: AtomicBool::new(false),
            wake: tokio::sync::Notify::new(),
        };
        for i in 0..FIFO_QUEUE + 10 {
            f.push(Stream::Vrrp, format!("{i}\n"));
        }
        let q = lock(&f.queue);
        assert_eq!(q.len(), FIFO_QUEUE);
        assert_eq!(q.front().map(|(_, l)| l.as_str()), Some("10\n"));
        assert_eq!(f.dropped.load(Ordering::Relaxed), 10);
    }

    #[tokio::test]
    async fn test_fifo_gets_every_line() {
        let (dir, path, reader, keep) = fifo("fifo");
        let mut config = Config::default();
        config.global.notify_fifo = Some(spec(&path));
        let n = Notifier::new(&config, None);
        for i in 0..100u8 {
            n.changed(Kind::Instance, "VI_1", &Notify::default(), if i % 2 == 0 { "MASTER" } else { "BACKUP" }, i, false);
        }
        n.drain(Duration::from_secs(5)).await;
        n.close_fifos().await;
        drop(keep);
        drop(n);
        let text = tokio::task::spawn_blocking(move || reader.join().expect("reader")).await.expect("join");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 100, "{text}");
        assert_eq!(lines[0], "INSTANCE \"VI_1\" MASTER 0");
        assert_eq!(lines[99], "INSTANCE \"VI_1\" BACKUP 99");
        let _ = std::fs::remove_dir_all(&dir);
    }

    async fn until_contains(path: &std::path::Path, what: &str) {
        let seen = async {
            while !std::fs::read_to_string(path).is_ok_and(|t| t.contains(what)) {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(5), seen).await.unwrap_or_else(|_| panic!("{} never had {what}", path.display()));
    }

    fn spec(path: &std::path::Path) -> crate::config::global::FifoSpec {
        crate::config::global::FifoSpec { path: path.to_str().expect("utf-8").to_owned(), owner: None }
    }

    fn mode_and_owner(path: &std::path::Path) -> (bool, u32, u32) {
        use std::os::unix::fs::{FileTypeExt, MetadataExt};
        let md = std::fs::symlink_metadata(path).expect("stat");
        (md.file_type().is_fifo(), md.mode() & 0o777, md.uid())
    }

    /// A missing FIFO is created (0600, owned by the USER given), holds lines written before
    /// any reader came, and is removed at stop.
    #[tokio::test]
    async fn test_fifo_is_created_buffers_and_is_removed() {
        let dir = temp("fifo-create");
        let path = dir.join("made.fifo");
        let mut config = Config::default();
        let root = nix::unistd::geteuid().is_root();
        let owner = root.then(|| crate::config::value::RunAs { user: "nobody".into(), group: None });
        config.global.vrrp_notify_fifo = Some(crate::config::global::FifoSpec { owner, ..spec(&path) });
        let n = Notifier::new(&config, None);
        let (fifo, mode, uid) = mode_and_owner(&path);
        assert!(fifo && mode == 0o600, "mode {mode:o}");
        if root {
            let nobody = proc::resolve(&crate::config::value::RunAs { user: "nobody".into(), group: None }).expect("nobody");
            assert_eq!(uid, nobody.uid.as_raw(), "owned by the USER given");
        }
        n.changed(Kind::Instance, "VI_1", &Notify::default(), "MASTER", 100, false);
        n.drain(Duration::from_secs(5)).await;
        // A reader that opens it only now still gets the line.
        use std::io::Read;
        use std::os::unix::fs::OpenOptionsExt;
        let mut r = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(&path).expect("open");
        let mut buf = [0u8; 256];
        let got = r.read(&mut buf).expect("read");
        assert_eq!(&buf[..got], b"INSTANCE \"VI_1\" MASTER 100\n");
        n.close_fifos().await;
        assert!(!path.exists(), "a FIFO the daemon created is removed at stop");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Something at the path that is not a FIFO is left alone, and no line goes anywhere.
    #[tokio::test]
    async fn test_fifo_path_that_is_a_file_is_refused() {
        let dir = temp("fifo-file");
        let path = dir.join("plain");
        std::fs::write(&path, "keep me").expect("file");
        let mut config = Config::default();
        config.global.notify_fifo = Some(spec(&path));
        let n = Notifier::new(&config, None);
        n.changed(Kind::Instance, "VI_1", &Notify::default(), "MASTER", 100, false);
        n.drain(Duration::from_secs(5)).await;
        n.close_fifos().await;
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "keep me");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The reader script gets the FIFO's path last, reads every line (no end-of-file while the
    /// daemon runs), and gets SIGTERM at stop only after it read them.
    #[tokio::test]
    async fn test_fifo_reader_script_runs_until_stop() {
        let dir = temp("fifo-reader");
        let path = dir.join("n.fifo");
        let out = dir.join("out");
        let sh = dir.join("reader.sh");
        std::fs::write(
            &sh,
            format!(
                "#!/bin/sh\necho \"args $*\" >> {o}\ntrap 'echo term >> {o}; exit 0' TERM\nwhile read -r l; do echo \"$l\" >> {o}; done < \"$2\"\necho eof >> {o}\n",
                o = out.display()
            ),
        )
        .expect("script");
        let sh = sh.to_str().expect("utf-8").to_owned();
        let mut config = Config::default();
        config.global.notify_fifo = Some(spec(&path));
        config.global.notify_fifo_script = Some(Script { command: format!("/bin/sh {sh} first"), argv: vec!["/bin/sh".into(), sh, "first".into()], user: None });
        let n = Notifier::new(&config, None);
        for (i, st) in ["BACKUP", "MASTER", "FAULT"].into_iter().enumerate() {
            n.changed(Kind::Instance, "VI_1", &Notify::default(), st, 100 + i as u8, false);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // A reload with the same settings keeps the reader.
        n.set_fifos(&config);
        n.changed(Kind::Group, "G", &Notify::default(), "MASTER", 0, false);
        n.drain(Duration::from_secs(5)).await;
        // A line read is not yet a line written out: wait for the last one before the stop.
        until_contains(&out, "GROUP").await;
        n.close_fifos().await;
        let text = std::fs::read_to_string(&out).expect("the reader ran");
        let want = format!(
            "args first {}\nINSTANCE \"VI_1\" BACKUP 100\nINSTANCE \"VI_1\" MASTER 101\nINSTANCE \"VI_1\" FAULT 102\nGROUP \"G\" MASTER 0\nterm\n",
            path.display()
        );
        assert_eq!(text, want, "one reader, every line, then SIGTERM (no end-of-file)");
        assert!(!path.exists());
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A reload that moves the FIFO closes the old one (its reader stopped, the FIFO removed)
    /// and opens the new one with a new reader.
    #[tokio::test]
    async fn test_reload_moves_the_fifo_and_its_reader() {
        let dir = temp("fifo-move");
        let (a, b) = (dir.join("a.fifo"), dir.join("b.fifo"));
        let out = dir.join("out");
        let sh = dir.join("reader.sh");
        std::fs::write(&sh, format!("#!/bin/sh\ntrap 'echo \"term $1\" >> {o}; exit 0' TERM\nwhile read -r l; do echo \"$1 $l\" >> {o}; done < \"$1\"\n", o = out.display()))
            .expect("script");
        let sh = sh.to_str().expect("utf-8").to_owned();
        let mut config = Config::default();
        config.global.vrrp_notify_fifo = Some(spec(&a));
        config.global.vrrp_notify_fifo_script = Some(Script { command: format!("/bin/sh {sh}"), argv: vec!["/bin/sh".into(), sh], user: None });
        let n = Notifier::new(&config, None);
        n.changed(Kind::Instance, "VI_1", &Notify::default(), "MASTER", 100, false);
        n.drain(Duration::from_secs(5)).await;
        until_contains(&out, "MASTER").await;
        config.global.vrrp_notify_fifo = Some(spec(&b));
        n.set_fifos(&config);
        let moved = async {
            while a.exists() || !b.exists() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(5), moved).await.expect("a closed and removed, b created");
        n.changed(Kind::Instance, "VI_1", &Notify::default(), "BACKUP", 100, false);
        n.drain(Duration::from_secs(5)).await;
        until_contains(&out, "BACKUP").await;
        n.close_fifos().await;
        let text = std::fs::read_to_string(&out).expect("readers ran");
        let (a, b) = (a.display(), b.display());
        assert_eq!(text, format!("{a} INSTANCE \"VI_1\" MASTER 100\nterm {a}\n{b} INSTANCE \"VI_1\" BACKUP 100\nterm {b}\n"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
