//! Health checkers for real servers: keepalived's `TCP_CHECK`, `HTTP_GET`, `SSL_GET`,
//! `SMTP_CHECK`, `DNS_CHECK`, `PING_CHECK`, `UDP_CHECK`, `MISC_CHECK`, `FILE_CHECK`, and hav's
//! `WASM_CHECK`.
//!
//! [`Checkers`] runs one tokio task per distinct (target, check definition). A real server that
//! appears under several virtual servers with the same checker shares that one task; every
//! verdict change is sent as a [`HealthEvent`] to each (real server, checker index) that uses it.
//!
//! Timing follows keepalived.conf(5):
//! - the first check waits a random delay up to `warmup` (default: up to `delay_loop`; `warmup 0`
//!   disables it);
//! - checks start every `delay_loop`, on absolute deadlines (a late check does not push the
//!   following ones back; missed slots are skipped);
//! - a failed check of a server that is up is retried `retry` times, `delay_before_retry` apart,
//!   before the server is declared down; a server that is down is declared up on its first
//!   success;
//! - a server starts up, or down with `alpha`, and that initial state is sent at start.

mod dns;
mod file;
pub(crate) mod http;
mod misc;
mod net;
mod ping;
mod smtp;
mod syn;

/// For benchmarks and tools that probe like the half-open checker does.
pub use syn::port_filter as tcp_dst_port_filter;
mod udp;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::config::check::{CheckCommon, CheckKind, Checker, HttpCheck};
use crate::config::lvs::{RealServer, VirtualServer};
use crate::config::Config;
use crate::health::{Health, HealthEvent, PolicyRunner, RealServerRef};

/// Why a probe concluded no [`Verdict`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum ProbeError {
    /// The server failed the check: counts toward down.
    #[error("{0}")]
    Failed(String),
    /// hav could not run the check: it is out of descriptors or memory
    /// ([`crate::resource::is_exhaustion`]). Nothing was learnt about the server, so its verdict
    /// stands; declaring it down would pull a healthy server out of IPVS for hav's own trouble.
    #[error("{0}")]
    NoResources(String),
}

impl ProbeError {
    /// A failed system call of the probe, described as `what: error`: hav's exhaustion, else
    /// the server's failure (refused, unreachable, timed out...).
    fn io(what: &str, e: std::io::Error) -> ProbeError {
        let msg = if what.is_empty() { e.to_string() } else { format!("{what}: {e}") };
        if crate::resource::is_exhaustion(&e) {
            ProbeError::NoResources(msg)
        } else {
            ProbeError::Failed(msg)
        }
    }

    /// The same error, its message prefixed with `ctx: `.
    fn context(self, ctx: impl std::fmt::Display) -> ProbeError {
        match self {
            ProbeError::Failed(m) => ProbeError::Failed(format!("{ctx}: {m}")),
            ProbeError::NoResources(m) => ProbeError::NoResources(format!("{ctx}: {m}")),
        }
    }
}

impl From<String> for ProbeError {
    fn from(m: String) -> Self {
        ProbeError::Failed(m)
    }
}

/// What one successful probe concluded; a failed probe is an `Err` with its reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// Up, weight unchanged.
    Up,
    /// Down.
    Down,
    /// Up with this weight (MISC_CHECK `misc_dynamic`, a WASM policy).
    Weight(u32),
    /// Up with the real server's weight plus this (FILE_CHECK); below 0 means down.
    Delta(i64),
}

impl Verdict {
    fn health(self, rs_weight: i32) -> Health {
        match self {
            Verdict::Up | Verdict::Delta(0) => Health::Up,
            Verdict::Down => Health::Down,
            Verdict::Weight(w) => Health::UpWeight(w),
            Verdict::Delta(d) => {
                let w = i64::from(rs_weight).saturating_add(d);
                if w < 0 {
                    Health::Down
                } else {
                    Health::UpWeight(u32::try_from(w).unwrap_or(u32::MAX))
                }
            }
        }
    }
}

/// Options for [`Checkers::start_with`].
#[derive(Debug, Clone, Copy, Default)]
pub struct CheckerOptions {
    /// Record, for every check after a task's first, how far the time between its start and the
    /// previous check's start is from `delay_loop` (see [`Checkers::take_interval_errors`]).
    /// Costs a mutex push per check; meant for benchmarks.
    pub record_intervals: bool,
}

/// A real server (one checker of it) that a checker task reports to.
#[derive(Debug)]
struct Subscriber {
    rs: RealServerRef,
    checker: usize,
    weight: i32,
    last: Health,
}

#[derive(Debug)]
struct TaskState {
    verdict: Verdict,
    subs: Vec<Subscriber>,
}

/// What a checker task shares with [`Checkers`].
struct Shared {
    state: Mutex<TaskState>,
    tx: UnboundedSender<HealthEvent>,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, TaskState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records `verdict` and sends an event to every subscriber whose health changes.
    fn set(&self, verdict: Verdict) {
        let mut st = self.lock();
        if st.verdict == verdict {
            return;
        }
        st.verdict = verdict;
        for s in &mut st.subs {
            let h = verdict.health(s.weight);
            if h != s.last {
                s.last = h;
                // A closed receiver means the director is gone; nothing to do about it here.
                let _ = self.tx.send(HealthEvent { rs: s.rs.clone(), checker: s.checker, health: h });
            }
        }
    }

    /// Replaces the subscribers; new ones (and ones whose health changes) get the current health.
    fn resubscribe(&self, subs: Vec<(RealServerRef, usize, i32)>) {
        let mut st = self.lock();
        let verdict = st.verdict;
        let old = std::mem::take(&mut st.subs);
        for (rs, checker, weight) in subs {
            let h = verdict.health(weight);
            let prev = old.iter().find(|s| s.rs == rs && s.checker == checker).map(|s| s.last);
            if prev != Some(h) {
                let _ = self.tx.send(HealthEvent { rs: rs.clone(), checker, health: h });
            }
            st.subs.push(Subscriber { rs, checker, weight, last: h });
        }
    }
}

/// A resolved checker definition: what it probes, and how.
#[derive(Debug)]
pub(crate) struct Spec {
    /// `connect_ip`/`connect_port`, else the real server's address.
    pub(crate) target: SocketAddr,
    pub(crate) common: CheckCommon,
    pub(crate) probe: Probe,
}

/// The probe of a [`Spec`], with what it needs prepared (regexes compiled, files resolved).
#[derive(Debug)]
pub(crate) enum Probe {
    Tcp,
    /// `half_open`: run by the [`syn::SynProber`]; a task of its own connects instead when the
    /// prober cannot start (no CAP_NET_RAW).
    HalfOpen,
    Http(http::HttpProbe),
    Smtp(crate::config::check::SmtpCheck),
    Dns(crate::config::check::DnsCheck),
    Ping,
    Udp(crate::config::check::UdpCheck),
    Misc(crate::config::check::MiscCheck),
    File(file::FileProbe),
    Wasm(crate::config::check::WasmCheck),
}

/// The checker of real server `rs` of `vs`, resolved against the rest of the config: its key
/// (equal keys share one task) and its spec.
fn resolve(config: &Config, vs: &VirtualServer, rs: &RealServer, ch: &Checker) -> (String, Spec) {
    let target = SocketAddr::new(
        ch.common.connect_ip.unwrap_or(rs.addr.ip()),
        ch.common.connect_port.unwrap_or(rs.addr.port()),
    );
    let mut kind = ch.kind.clone();
    if let CheckKind::Http(HttpCheck { virtualhost, .. }) = &mut kind {
        if virtualhost.is_none() {
            virtualhost.clone_from(&vs.virtualhost);
        }
    }
    let file = match &kind {
        CheckKind::File(f) => Some(config.vrrp_track_files.iter().find(|t| t.name == f.track_file).cloned()),
        _ => None,
    };
    let key = format!("{target:?}|{kind:?}|{:?}|{file:?}", ch.common);
    let probe = match kind {
        CheckKind::Tcp => Probe::Tcp,
        CheckKind::TcpHalfOpen => Probe::HalfOpen,
        CheckKind::Http(h) => Probe::Http(http::HttpProbe::new(h, target)),
        CheckKind::Smtp(s) => Probe::Smtp(s),
        CheckKind::Dns(d) => Probe::Dns(d),
        CheckKind::Ping => Probe::Ping,
        CheckKind::Udp(u) => Probe::Udp(u),
        CheckKind::Misc(m) => Probe::Misc(m),
        CheckKind::File(f) => Probe::File(file::FileProbe::new(&f, file.flatten().as_ref())),
        CheckKind::Wasm(w) => Probe::Wasm(w),
    };
    (key, Spec { target, common: ch.common.clone(), probe })
}

/// What a config asks for: key -> (spec, subscribers).
type Wanted = HashMap<String, (Spec, Vec<(RealServerRef, usize, i32)>)>;

fn wanted(config: &Config) -> Wanted {
    let mut out: Wanted = HashMap::new();
    for vs in &config.virtual_servers {
        for rs in &vs.real_servers {
            for (i, ch) in rs.checkers.iter().enumerate() {
                let (key, spec) = resolve(config, vs, rs, ch);
                let sub = (RealServerRef::new(vs, rs.addr), i, rs.weight);
                out.entry(key).or_insert_with(|| (spec, Vec::new())).1.push(sub);
            }
        }
    }
    out
}

struct Running {
    shared: Arc<Shared>,
    stop: Stop,
}

/// How a running checker is stopped.
enum Stop {
    /// Its task is aborted.
    Task(JoinHandle<()>),
    /// The half-open prober runs it, under this id.
    Prober(Arc<syn::SynProber>, u64),
}

impl Stop {
    fn stop(&self) {
        match self {
            Stop::Task(h) => h.abort(),
            Stop::Prober(p, id) => p.remove(*id),
        }
    }
}

/// The running checkers of a configuration. Dropping it stops them.
pub struct Checkers {
    tasks: HashMap<String, Running>,
    tx: UnboundedSender<HealthEvent>,
    policy: Option<Arc<dyn PolicyRunner>>,
    intervals: Option<Arc<Mutex<Vec<u32>>>>,
    /// The half-open prober, started with the first `half_open` check; `Some(None)` once it
    /// could not start (those checks connect instead).
    prober: Option<Option<Arc<syn::SynProber>>>,
}

impl std::fmt::Debug for Checkers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkers").field("tasks", &self.tasks.len()).finish()
    }
}

impl Checkers {
    /// Spawns on the current tokio runtime one checker task per distinct (target, check
    /// definition), shared by every real server (under any virtual server) that has it; each
    /// verdict change is sent on `tx` as a [`HealthEvent`] for every real server / checker index
    /// using it, and the initial state (up, or down with `alpha`) is sent at once.
    ///
    /// `policy` runs `WASM_CHECK`s; without it they report down (with an error log).
    ///
    /// # Panics
    /// When called outside a tokio runtime.
    pub fn start(config: &Config, tx: UnboundedSender<HealthEvent>, policy: Option<Arc<dyn PolicyRunner>>) -> Checkers {
        Self::start_with(config, tx, policy, CheckerOptions::default())
    }

    /// [`Checkers::start`] with options.
    ///
    /// # Panics
    /// When called outside a tokio runtime.
    pub fn start_with(
        config: &Config,
        tx: UnboundedSender<HealthEvent>,
        policy: Option<Arc<dyn PolicyRunner>>,
        options: CheckerOptions,
    ) -> Checkers {
        let mut c = Checkers {
            tasks: HashMap::new(),
            tx,
            policy,
            intervals: options.record_intervals.then(|| Arc::new(Mutex::new(Vec::new()))),
            prober: None,
        };
        c.reload(config);
        c
    }

    /// Applies a new config: checkers whose (target, definition) is unchanged keep running with
    /// their state (real servers newly using them get their current verdict); removed ones stop;
    /// new ones start.
    ///
    /// # Panics
    /// When called outside a tokio runtime.
    pub fn reload(&mut self, config: &Config) {
        let mut wanted = wanted(config);
        self.tasks.retain(|key, run| {
            if wanted.contains_key(key) {
                true
            } else {
                run.stop.stop();
                false
            }
        });
        for (key, (spec, subs)) in wanted.drain() {
            if let Some(run) = self.tasks.get(&key) {
                run.shared.resubscribe(subs);
                continue;
            }
            let initial = if spec.common.alpha { Verdict::Down } else { Verdict::Up };
            let shared = Arc::new(Shared {
                state: Mutex::new(TaskState { verdict: initial, subs: Vec::new() }),
                tx: self.tx.clone(),
            });
            // Subscribers start as "never told": resubscribe sends everyone the initial state.
            shared.resubscribe(subs);
            let spec = Arc::new(spec);
            if let (Probe::HalfOpen, Some(prober)) = (&spec.probe, self.prober()) {
                let id = prober.add(spec, shared.clone(), self.intervals.clone());
                self.tasks.insert(key, Running { shared, stop: Stop::Prober(prober, id) });
                continue;
            }
            let task = Task { spec, shared: shared.clone(), policy: self.policy.clone(), intervals: self.intervals.clone() };
            let handle = tokio::spawn(task.run());
            self.tasks.insert(key, Running { shared, stop: Stop::Task(handle) });
        }
    }

    /// The half-open prober, started on first use; `None` when it cannot start (logged once).
    fn prober(&mut self) -> Option<Arc<syn::SynProber>> {
        self.prober
            .get_or_insert_with(|| {
                syn::SynProber::start()
                    .inspect_err(|e| tracing::error!(error = %e, "TCP_CHECK half_open: cannot open the raw sockets (CAP_NET_RAW is needed); half-open checks connect instead"))
                    .ok()
            })
            .clone()
    }

    /// Number of running checker tasks.
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    /// Whether no checker runs.
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// Takes the interval errors recorded so far (with [`CheckerOptions::record_intervals`]):
    /// for each check, |time since the previous check's start - `delay_loop`|. Checks that
    /// followed retries or skipped slots are not recorded.
    pub fn take_interval_errors(&self) -> Vec<Duration> {
        let Some(iv) = &self.intervals else { return Vec::new() };
        let v = std::mem::take(&mut *iv.lock().unwrap_or_else(|p| p.into_inner()));
        v.into_iter().map(|us| Duration::from_micros(u64::from(us))).collect()
    }

    /// Stops every checker.
    pub fn shutdown(self) {
        drop(self);
    }
}

impl Drop for Checkers {
    fn drop(&mut self) {
        for run in self.tasks.values() {
            run.stop.stop();
        }
    }
}

/// The checker thread's clock, read once per wake-up of its runtime instead of once per check.
///
/// Where reading the clock is a system call (UML has no vDSO), a read per check costs a tenth of
/// a TCP_CHECK. The checks of one slot run back to back after one wake-up, so the time of that
/// wake-up is the time of each of them to within the slot's work; what needs it (skipping the
/// slots of an overrun) is about whole `delay_loop`s. A thread whose runtime does not call
/// `wake_clock` on unpark reads the real clock every time; a thread that runs a long while
/// without parking (a burst after a stall) reads it again every `WAKE_CLOCK_READS` uses, so
/// such a burst is cut short after that many checks.
mod clock {
    use std::cell::Cell;

    use tokio::time::Instant;

    /// Uses of one reading before the clock is read again.
    pub(super) const WAKE_CLOCK_READS: u32 = 32;

    std::thread_local! {
        static WOKE: Cell<Option<(Instant, u32)>> = const { Cell::new(None) };
    }

    /// Records the wake-up time: for the checker runtime's `on_thread_unpark`.
    pub(super) fn woke() {
        WOKE.set(Some((Instant::now(), 0)));
    }

    /// Now, as of this thread's last wake-up (never later than the real now).
    pub(super) fn now() -> Instant {
        match WOKE.get() {
            Some((t, n)) if n < WAKE_CLOCK_READS => {
                WOKE.set(Some((t, n + 1)));
                t
            }
            Some(_) => {
                woke();
                WOKE.get().map_or_else(Instant::now, |(t, _)| t)
            }
            None => Instant::now(),
        }
    }
}

/// For the checker runtime's `on_thread_unpark`: the checks that run until the thread parks
/// again take the time of this wake-up instead of each reading the clock.
pub fn wake_clock() {
    clock::woke();
}

/// Checks start on the boundaries of this slot (when `delay_loop` is a multiple of it), so that
/// the checks that fall due within one slot run back to back in one wake-up of the runtime: with
/// thousands of targets, one wake-up per probe costs as much as the probe (a context switch, a
/// timer-wheel pass, cold caches). Every check still runs exactly `delay_loop` after the last.
const SLOT: Duration = Duration::from_millis(10);

/// The instant slots are counted from (the first call).
fn slot_epoch() -> Instant {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// The number of the first [`SLOT`] boundary at or after `t`.
fn slot_at_or_after(t: Instant) -> u64 {
    let since = t.saturating_duration_since(slot_epoch()).as_nanos();
    u64::try_from(since.div_ceil(SLOT.as_nanos())).unwrap_or(u64::MAX)
}

/// When slot boundary `n` is.
fn slot_time(n: u64) -> Instant {
    slot_epoch() + SLOT.saturating_mul(u32::try_from(n).unwrap_or(u32::MAX))
}

/// `t` moved up to the next [`SLOT`] boundary, when `period` is a multiple of the slot; else `t`.
fn align(t: Instant, period: Duration) -> Instant {
    if !period.as_nanos().is_multiple_of(SLOT.as_nanos()) {
        return t;
    }
    slot_time(slot_at_or_after(t))
}

/// One checker task.
struct Task {
    spec: Arc<Spec>,
    shared: Arc<Shared>,
    policy: Option<Arc<dyn PolicyRunner>>,
    intervals: Option<Arc<Mutex<Vec<u32>>>>,
}

/// The schedule and verdict of one checker, apart from how it probes: when the next check
/// starts, the retries of a failed check, and what a concluded check reports. The checker tasks
/// and the half-open prober (which runs its checks without a task each) both drive one.
#[derive(Debug)]
struct Cycle {
    period: Duration,
    /// When the next check starts.
    next: Instant,
    /// The verdict as the retries see it: a failure of a server that is up is retried.
    up: bool,
    /// Retries of the current check so far.
    tries: u32,
    /// When the previous check started, while its interval to the next one means something.
    prev_start: Option<Instant>,
    /// The verdict last handed to [`Shared::set`]: the same again is not handed on (with
    /// thousands of checks a second, the lock and the cache misses of an unchanged verdict
    /// cost more than the rest of a check).
    reported: Option<Verdict>,
}

impl Cycle {
    /// The first check starts after a random delay up to `warmup` (default `delay_loop`).
    fn new(c: &CheckCommon) -> Cycle {
        let period = c.delay_loop.max(Duration::from_millis(1));
        let warmup = c.warmup.unwrap_or(c.delay_loop);
        let jitter = Duration::from_nanos(fastrand::u64(0..=u64::try_from(warmup.as_nanos()).unwrap_or(u64::MAX)));
        Cycle { period, next: align(Instant::now() + jitter, period), up: !c.alpha, tries: 0, prev_start: None, reported: None }
    }

    /// When the next check starts.
    fn next(&self) -> Instant {
        self.next
    }

    /// A check (not a retry) starts now: records its distance from `delay_loop` after the
    /// previous one.
    fn begin(&mut self, now: Instant, intervals: Option<&Mutex<Vec<u32>>>) {
        if let (Some(iv), Some(prev)) = (intervals, self.prev_start) {
            let err = (now - prev).abs_diff(self.period);
            let us = u32::try_from(err.as_micros()).unwrap_or(u32::MAX);
            iv.lock().unwrap_or_else(|p| p.into_inner()).push(us);
        }
        self.prev_start = Some(now);
        self.tries = 0;
    }

    /// After a probe: `Some(delay)` when the check is to be probed again after `delay` (a
    /// failure of a server that is up, with retries left).
    fn retry_after(&mut self, result: &Result<Verdict, ProbeError>, spec: &Spec) -> Option<Duration> {
        let c = &spec.common;
        match result {
            Err(ProbeError::Failed(e)) if self.up && self.tries < c.retry => {
                self.tries += 1;
                tracing::debug!(target = %spec.target, kind = spec.kind(), error = %e, "check failed, retry {}/{}", self.tries, c.retry);
                Some(c.delay_before_retry)
            }
            _ => None,
        }
    }

    /// Concludes the check with its last probe's result: logs a change, sets the verdict, and
    /// schedules the next check. `no_policy`: a WASM_CHECK without a policy runner.
    fn conclude(&mut self, result: Result<Verdict, ProbeError>, spec: &Spec, shared: &Shared, no_policy: bool) {
        match result {
            Ok(v) => {
                if !self.up {
                    tracing::info!(target = %spec.target, kind = spec.kind(), "check succeeded");
                }
                self.up = true;
                self.report(v, shared);
            }
            Err(ProbeError::NoResources(e)) => {
                crate::resource::report_exhaustion(&format!("{} {}", spec.kind(), spec.target), &e);
            }
            Err(ProbeError::Failed(e)) => {
                if self.up {
                    if matches!(spec.probe, Probe::Wasm(_)) && no_policy {
                        tracing::error!(target = %spec.target, error = %e, "WASM_CHECK cannot run");
                    } else {
                        tracing::warn!(target = %spec.target, kind = spec.kind(), error = %e, "check failed");
                    }
                }
                self.up = false;
                self.report(Verdict::Down, shared);
            }
        }
        self.next += self.period;
        let now = clock::now();
        if self.next <= now {
            // Overran (retries, a slow probe, a stalled runtime): skip the missed slots
            // instead of firing a burst, and don't count the gap as drift.
            let behind = (now - self.next).as_nanos();
            let skip = u32::try_from(behind / self.period.as_nanos() + 1).unwrap_or(u32::MAX);
            self.next += self.period.saturating_mul(skip);
            self.prev_start = None;
        } else if self.tries > 0 {
            self.prev_start = None;
        }
    }
}

impl Cycle {
    fn report(&mut self, v: Verdict, shared: &Shared) {
        if self.reported != Some(v) {
            self.reported = Some(v);
            shared.set(v);
        }
    }
}

impl Spec {
    /// The checker's keyword, for logs.
    pub(crate) fn kind(&self) -> &'static str {
        match self.probe {
            Probe::Tcp | Probe::HalfOpen => "TCP_CHECK",
            Probe::Http(ref h) if h.tls => "SSL_GET",
            Probe::Http(_) => "HTTP_GET",
            Probe::Smtp(_) => "SMTP_CHECK",
            Probe::Dns(_) => "DNS_CHECK",
            Probe::Ping => "PING_CHECK",
            Probe::Udp(_) => "UDP_CHECK",
            Probe::Misc(_) => "MISC_CHECK",
            Probe::File(_) => "FILE_CHECK",
            Probe::Wasm(_) => "WASM_CHECK",
        }
    }
}

impl Task {
    async fn run(self) {
        let mut cycle = Cycle::new(&self.spec.common);
        loop {
            tokio::time::sleep_until(cycle.next()).await;
            // The clock is read only to record intervals: where the clock is a system call
            // (UML), each read costs as much as a tenth of a check.
            let start = if self.intervals.is_some() { Instant::now() } else { cycle.next() };
            cycle.begin(start, self.intervals.as_deref());
            let mut result = self.probe().await;
            while let Some(delay) = cycle.retry_after(&result, &self.spec) {
                tokio::time::sleep(delay).await;
                result = self.probe().await;
            }
            cycle.conclude(result, &self.spec, &self.shared, self.policy.is_none());
        }
    }

    /// One check, without retries.
    async fn probe(&self) -> Result<Verdict, ProbeError> {
        let s = &*self.spec;
        let c = &s.common;
        match &s.probe {
            Probe::Tcp => net::tcp_check(s.target, c).await.map(|()| Verdict::Up).map_err(|e| ProbeError::io("", e)),
            // The prober could not start: a connect tells as much.
            Probe::HalfOpen => net::tcp_check(s.target, c).await.map(|()| Verdict::Up).map_err(|e| ProbeError::io("", e)),
            Probe::Http(h) => h.check(s.target, c).await.map(|()| Verdict::Up),
            Probe::Smtp(m) => smtp::check(m, s.target, c).await.map(|()| Verdict::Up),
            Probe::Dns(d) => dns::check(d, s.target, c).await.map(|()| Verdict::Up),
            Probe::Ping => ping::check(s.target, c).await.map(|()| Verdict::Up),
            Probe::Udp(u) => udp::check(u, s.target, c).await.map(|()| Verdict::Up),
            Probe::Misc(m) => misc::check(m, c).await,
            Probe::File(f) => f.check().await,
            Probe::Wasm(w) => {
                let Some(p) = &self.policy else {
                    return Err(format!("no WASM policy runner for policy '{}'", w.policy).into());
                };
                let timeout = w.timeout.unwrap_or(c.connect_timeout);
                // The runner enforces the timeout; this is the backstop if it does not.
                match tokio::time::timeout(timeout + Duration::from_secs(1), p.check(w, s.target, timeout)).await {
                    Ok(Ok(Health::Up)) => Ok(Verdict::Up),
                    Ok(Ok(Health::UpWeight(w))) => Ok(Verdict::Weight(w)),
                    Ok(Ok(Health::Down)) => Err(format!("policy '{}' says down", w.policy).into()),
                    Ok(Err(e)) => Err(format!("policy '{}' failed: {e}", w.policy).into()),
                    Err(_) => Err(format!("policy '{}' timed out", w.policy).into()),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A check that ends after its next slots passed (a stall) skips them, on the wake clock
    /// as on the real one; an on-time check moves one `delay_loop` on.
    #[test]
    fn an_overrun_skips_the_missed_slots() {
        let text = "virtual_server 10.0.0.1 80 {\n delay_loop 1\n real_server 10.0.0.2 80 {\n  TCP_CHECK {\n  }\n }\n}\n";
        let c = crate::config::load_str(std::path::Path::new("t.conf"), text).expect("config").config;
        let common = c.virtual_servers[0].real_servers[0].checkers[0].common.clone();
        let period = common.delay_loop;
        assert_eq!(period, Duration::from_secs(1));
        let spec = Spec { target: "127.0.0.1:1".parse().expect("addr"), common: common.clone(), probe: Probe::Tcp };
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let shared = Shared { state: Mutex::new(TaskState { verdict: Verdict::Up, subs: Vec::new() }), tx };
        for wake in [false, true] {
            std::thread::scope(|s| {
                s.spawn(|| {
                    let mut cycle = Cycle::new(&common);
                    // Due 3.5 periods ago, and only done now.
                    let due = Instant::now() - period * 7 / 2;
                    cycle.next = due;
                    cycle.prev_start = Some(due);
                    if wake {
                        wake_clock();
                    }
                    let now = clock::now();
                    cycle.conclude(Ok(Verdict::Up), &spec, &shared, false);
                    assert_eq!(cycle.next, due + period * 4, "the next slot after now (wake clock: {wake})");
                    assert!(cycle.next > now);
                    assert_eq!(cycle.prev_start, None, "the gap is not drift");
                    // On time: one period on, the interval counted.
                    let due = cycle.next;
                    cycle.begin(due, None);
                    cycle.conclude(Ok(Verdict::Up), &spec, &shared, false);
                    assert_eq!(cycle.next, due + period);
                    assert_eq!(cycle.prev_start, Some(due));
                });
            });
        }
    }

    #[test]
    fn wake_clock_holds_a_reading_for_a_bounded_number_of_uses() {
        std::thread::spawn(|| {
            // Without a wake-up recorded, every read is the real clock.
            let a = clock::now();
            std::thread::sleep(Duration::from_millis(2));
            assert!(clock::now() >= a + Duration::from_millis(2));
            wake_clock();
            let woke = clock::now();
            std::thread::sleep(Duration::from_millis(2));
            for _ in 1..clock::WAKE_CLOCK_READS {
                assert_eq!(clock::now(), woke, "the wake-up's reading, while it lasts");
            }
            let fresh = clock::now();
            assert!(fresh >= woke + Duration::from_millis(2), "read again after {} uses", clock::WAKE_CLOCK_READS);
            // Never ahead of the real clock.
            assert!(clock::now() <= Instant::now());
        })
        .join()
        .expect("thread");
    }

    #[test]
    fn test_probe_error_classification() {
        let e = |errno| std::io::Error::from_raw_os_error(errno);
        assert!(matches!(ProbeError::io("", e(libc::EMFILE)), ProbeError::NoResources(_)));
        assert!(matches!(ProbeError::io("", e(libc::ENFILE)), ProbeError::NoResources(_)));
        assert!(matches!(ProbeError::io("", e(libc::ENOBUFS)), ProbeError::NoResources(_)));
        assert!(matches!(ProbeError::io("", e(libc::ECONNREFUSED)), ProbeError::Failed(_)));
        assert!(matches!(ProbeError::io("", e(libc::EHOSTUNREACH)), ProbeError::Failed(_)));
        assert!(matches!(ProbeError::io("x", e(libc::ENOENT)), ProbeError::Failed(ref m) if m.starts_with("x: ")));
        assert_eq!(
            ProbeError::io("", e(libc::EMFILE)).context("GET /"),
            ProbeError::NoResources(format!("GET /: {}", e(libc::EMFILE)))
        );
    }

    fn one_tcp_check(addr: SocketAddr) -> Config {
        let text = format!(
            "virtual_server 10.255.0.1 80 {{\n delay_loop 0.05\n real_server {} {} {{\n TCP_CHECK {{\n connect_timeout 1\n retry 0\n warmup 0\n }}\n }}\n}}\n",
            addr.ip(),
            addr.port()
        );
        crate::config::load_str(std::path::Path::new("check.conf"), &text).expect("config").config
    }

    /// Out of descriptors, a TCP_CHECK cannot open its socket: no verdict, and the real server
    /// stays up; once descriptors are back, a refused port is down as before. In a child
    /// process: its descriptor limit is cut to the bone.
    #[test]
    fn test_no_descriptors_is_no_verdict() {
        if !crate::resource::testing::in_child(module_path!(), "test_no_descriptors_is_no_verdict") {
            return;
        }
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("listen");
            let addr = listener.local_addr().expect("addr");
            // Accept and close, so the backlog never fills.
            let acceptor = tokio::spawn(async move {
                while let Ok((s, _)) = listener.accept().await {
                    drop(s);
                }
            });
            let config = one_tcp_check(addr);
            let c = config.virtual_servers[0].real_servers[0].checkers[0].common.clone();
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
            let checkers = Checkers::start(&config, tx, None);
            let first = rx.recv().await.expect("initial event");
            assert_eq!(first.health, Health::Up);
            tokio::time::sleep(Duration::from_millis(150)).await;

            let hold = crate::resource::testing::exhaust_descriptors();
            let probe = net::tcp_check(addr, &c).await.map_err(|e| ProbeError::io("", e));
            assert!(matches!(probe, Err(ProbeError::NoResources(_))), "{probe:?}");
            let before = crate::resource::exhaustion_count();
            // About ten checks without descriptors.
            tokio::time::sleep(Duration::from_millis(500)).await;
            drop(hold);
            assert!(crate::resource::exhaustion_count() > before, "the checks ran and were reported");
            tokio::time::sleep(Duration::from_millis(150)).await;
            let mut events = Vec::new();
            while let Ok(ev) = rx.try_recv() {
                events.push(ev.health);
            }
            assert!(events.is_empty(), "the real server was never down: {events:?}");

            // A real failure still counts.
            acceptor.abort();
            let _ = acceptor.await;
            let down = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.expect("a verdict").expect("event");
            assert_eq!(down.health, Health::Down, "a refused port is down");
            drop(checkers);
        });
    }
}
