//! The daemon loop: sockets, link events, tracked objects and the control socket become
//! hav-core inputs; the actions that come back become adverts, addresses, gratuitous ARP / NA
//! and notifications.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use hav_core::vrrp::{
    Action, AdminMode, Engine, Growable, Input, Instance, InstanceConfig, Output, Received as EngineRx, Record, State,
    TrackId, TrackSet, TrackStatus, Tracked, VipHold, VrKey,
};
use hav_core::wire::{VrrpAuth, VrrpPacket};
use serde_json::json;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::control::{self, Envelope, Reply};
use super::notify::{Kind, Notifier};
use super::plan::{self, IfaceInfo, InstancePlan, Planned, TrackObj};
use super::proc;
use super::track::{self, TrackEvent};
use crate::config::{self, Config};
use crate::ratelimit::{KeyedRateLimit, RateLimit};
use crate::net::{
    AddrEvent, Family, LinkEvent, LinkWatcher, Netlink, NetError, Outbox, PacketSocket, Received, SysctlGuard, VrrpSocket,
    WatchEvent,
};

/// How the daemon runs.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The config file (re-read on SIGHUP / reload).
    pub config: PathBuf,
    /// The control socket path.
    pub control: PathBuf,
    /// The PID file path.
    pub pid_file: PathBuf,
    /// Serve metrics here.
    pub metrics: Option<std::net::SocketAddr>,
    /// Run the VRRP instances.
    pub vrrp: bool,
    /// Run the checkers and the IPVS director.
    pub lvs: bool,
    /// `--policy` modules.
    pub policies: Vec<PathBuf>,
    /// systemd notifications (readiness, reloads, stopping, the watchdog).
    pub notify: std::sync::Arc<super::sdnotify::Notify>,
    /// `-d`: dump the config to the log after each reload too.
    pub dump_conf: bool,
    /// `-V`: leave the VIPs and VMACs in place at stop (priority 0 is still sent).
    pub dont_release_vrrp: bool,
    /// `-I`: leave the IPVS services in place at stop.
    pub dont_release_ipvs: bool,
    /// `-a`: log every address added or removed, at info.
    pub address_monitoring: bool,
    /// `--ignore-sigint`: SIGINT does not stop the daemon.
    pub ignore_sigint: bool,
    /// `-x`: run the SNMP AgentX subagent, connecting to snmpd at this socket.
    pub snmp: Option<PathBuf>,
    /// How the config is read on reload too (`-i` config id, `-e` include checks).
    pub load: config::Options,
}

/// Whether the config refers to WASM policies (WASM_CHECK, vrrp_script policy).
pub fn uses_policies(config: &Config) -> bool {
    config.vrrp_scripts.iter().any(|s| s.policy.is_some())
        || config.virtual_servers.iter().flat_map(|v| &v.real_servers).flat_map(|r| &r.checkers).any(|c| {
            matches!(c.kind, crate::config::CheckKind::Wasm(_))
        })
}

/// Loads the policies given on the command line and those the config names; `None` when
/// there are none.
pub fn load_policies(paths: &[PathBuf], config: &Config) -> anyhow::Result<Option<crate::policy::PolicySet>> {
    if paths.is_empty() && !uses_policies(config) {
        return Ok(None);
    }
    crate::policy::PolicySet::load(paths, config).map(Some).map_err(|e| anyhow::anyhow!("{e}"))
}

/// A VRRP socket. Sockets that joined the group (`receive`) are read by the main loop itself,
/// through [`RxBatch`]: no task, channel or buffer per datagram.
struct RxSock {
    sock: VrrpSocket,
    receive: bool,
    /// Adverts queued this loop turn, sent together when it ends.
    out: Outbox,
}

/// The daemon's VRRP sockets by interface name, IPv4 at `[0]`, IPv6 at `[1]` and IPv4 IPsec AH
/// (protocol 51, whole datagrams) at `[2]` ([`sock_slot`]; looked up by `&str` on every advert,
/// with no key to build).
type Socks = [HashMap<String, RxSock>; 3];

/// Where the sockets of an instance of family `ipv6` with authentication `auth` are in [`Socks`].
fn sock_slot(ipv6: bool, auth: &VrrpAuth) -> usize {
    match auth {
        VrrpAuth::Ah(_) if !ipv6 => 2,
        _ => usize::from(ipv6),
    }
}

/// Datagrams per wake-up of the main loop, at most.
const RX_BATCH: usize = 64;

/// The datagrams read in one wake-up of the main loop, in buffers kept from one wake-up to the
/// next.
struct RxBatch {
    bufs: Vec<Box<[u8]>>,
    /// Well-formed datagrams: (buffer index, where the VRRP message sits in it).
    got: Vec<(usize, Received)>,
    /// Socket to read first next time, so that a busy socket cannot starve the others.
    first: usize,
}

impl RxBatch {
    fn new() -> Self {
        RxBatch { bufs: (0..RX_BATCH).map(|_| vec![0u8; 1500].into_boxed_slice()).collect(), got: Vec::with_capacity(RX_BATCH), first: 0 }
    }

    /// Reads what the receive sockets have queued, up to [`RX_BATCH`] datagrams with one
    /// `recvmmsg` per socket; pending (with every socket registered for wake-up) when there is
    /// nothing.
    fn poll_fill(&mut self, cx: &mut std::task::Context<'_>, socks: &Socks) -> std::task::Poll<()> {
        use std::task::Poll;
        self.got.clear();
        let n: usize = socks.iter().map(HashMap::len).sum();
        self.first = if n == 0 { 0 } else { (self.first + 1) % n };
        let mut used = 0;
        for s in socks.iter().flat_map(HashMap::values).cycle().skip(self.first).take(n).filter(|s| s.receive) {
            while used < RX_BATCH {
                let start = self.got.len();
                match s.sock.poll_recv_many(cx, &mut self.bufs[used..], &mut self.got) {
                    Poll::Ready(Ok(k)) => {
                        for g in &mut self.got[start..] {
                            g.0 += used;
                        }
                        used += k;
                    }
                    Poll::Ready(Err(e)) => {
                        tracing::warn!(error = %e, "VRRP receive");
                        break;
                    }
                    Poll::Pending => break,
                }
            }
        }
        if used == 0 {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    }
}

/// What a track task runs, as compared across a reload: its config entry, located nowhere (a
/// definition that moved in the file is the same definition).
#[derive(Debug, PartialEq)]
enum TrackDef {
    Script(config::vrrp::VrrpScript),
    File(config::vrrp::TrackFileDef),
    Process(config::TrackProcessDef),
}

impl TrackDef {
    fn nowhere() -> config::Location {
        config::Location::file(std::sync::Arc::from(std::path::Path::new("")))
    }

    fn script(s: &config::vrrp::VrrpScript) -> Self {
        TrackDef::Script(config::vrrp::VrrpScript { location: Self::nowhere(), ..s.clone() })
    }

    fn file(f: &config::vrrp::TrackFileDef) -> Self {
        TrackDef::File(config::vrrp::TrackFileDef { location: Self::nowhere(), ..f.clone() })
    }

    fn process(p: &config::TrackProcessDef) -> Self {
        TrackDef::Process(config::TrackProcessDef { location: Self::nowhere(), ..p.clone() })
    }
}

/// The VRRP engine of the daemon: one record per instance, the host's half of each in an
/// [`InstancePlan`].
type VrrpEngine = Engine<InstancePlan, Growable>;

/// A config read and its policies compiled on a worker thread, ready to swap in.
type Prepared = Result<(config::Loaded, Option<crate::policy::PolicySet>, proc::Runner), String>;

struct Daemon {
    opts: RunOptions,
    // Shared with the renderers that run off the loop (state dumps).
    config: std::sync::Arc<Config>,
    engine: VrrpEngine,
    netlink: Netlink,
    start: std::time::Instant,
    started_wall: std::time::SystemTime,
    // Sending on every interface adverts leave from; receiving on base interfaces only.
    socks: Socks,
    /// AF_PACKET sockets for gratuitous ARP / NA by device name, with the index they are bound to.
    packets: HashMap<String, (u32, PacketSocket)>,
    track_tx: mpsc::Sender<TrackEvent>,
    track_ids: HashMap<TrackObj, TrackId>,
    track_status: HashMap<TrackObj, TrackStatus>,
    track_tasks: HashMap<TrackObj, (JoinHandle<()>, TrackDef)>,
    /// How scripts run: script_user, enable_script_security (replaced on reload).
    scripts: proc::Runner,
    notifier: Notifier,
    vmacs: Vec<String>,
    sysctl: SysctlGuard,
    send_errors: u64,
    /// Addresses the kernel refused to add or remove, counted for status and metrics.
    vip_errors: u64,
    /// keepalived's virtual and static routes and rules, and static addresses, installed.
    routing: super::vroutes::Routing,
    policies: super::director::Policies,
    lvs: Option<super::director::Lvs>,
    /// Accept mode off: keepalived's nftables drop rules for the VIPs held (started when an
    /// instance of the config needs it).
    firewall: Option<crate::net::nft::Firewall>,
    snapshot: tokio::sync::watch::Sender<Vec<super::track::InstanceSnapshot>>,
    /// Scripts, notifications, policies and paced work run here, never on the VRRP thread.
    aux: tokio::runtime::Handle,
    /// A reload being prepared on a worker thread.
    reloading: bool,
    /// State changes and dropped adverts are logged through these: a hostile peer can cause
    /// them at line rate.
    log_transitions: KeyedRateLimit<String>,
    /// "Received a lower priority" lines, rate-limited per instance the same way.
    log_rx_lower: KeyedRateLimit<String>,
    log_drops: RateLimit,
    /// `garp_extra_if`: when each master instance (by name) sends its next round on the extra
    /// interfaces.
    extra_garps: HashMap<String, std::time::Instant>,
    /// `vrrp_rt_priority` / `max_auto_priority`: the loop thread's realtime scheduling.
    rt: super::rtprio::RtPriority,
    /// The one-line state summary last given to systemd.
    status_line: String,
    /// Whether a transition happened since the summary was last made.
    status_stale: bool,
    /// Transitions and protocol errors as they happen (SNMP notifications read them).
    events: tokio::sync::broadcast::Sender<super::snapshot::Event>,
}

/// The runtime of everything that is not VRRP: track scripts and files, notify scripts, the
/// notify FIFO, SMTP alerts and priority policies. One worker thread of its own, so that a
/// script spawn, a policy slice or a slow FIFO never delays an advert.
fn aux_runtime() -> anyhow::Result<tokio::runtime::Handle> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("hav-aux")
        .enable_all()
        .build()
        .context("starting the auxiliary runtime")?;
    let handle = rt.handle().clone();
    // The runtime lives as long as the process; its thread parks when idle.
    std::mem::forget(rt);
    Ok(handle)
}

/// keepalived's start-up check of the VRRP scripts ([`Config::disable_unrunnable_scripts`]),
/// with `runner`'s own checks (program found, executable by the script's user, script security).
fn disable_unrunnable_scripts(config: &mut Config, runner: &proc::Runner) -> Vec<config::Warning> {
    config.disable_unrunnable_scripts(|script, user| runner.prepare(script, user).map(drop))
}

/// Runs the daemon until SIGTERM / SIGINT. Call inside a tokio runtime.
pub async fn run(opts: RunOptions, mut loaded: config::Loaded) -> anyhow::Result<()> {
    // One daemon per config: the pid file is locked before anything else is touched.
    let _pid = super::pidfile::PidFile::acquire(&opts.pid_file)?;
    let netlink = Netlink::new().context("opening rtnetlink")?;
    let (track_tx, mut track_rx) = mpsc::channel::<TrackEvent>(256);
    let (ctl_tx, mut ctl_rx) = mpsc::channel::<Envelope>(16);
    let (reload_tx, mut reload_rx) = mpsc::channel::<Prepared>(1);
    // An unknown script_user refuses the scripts that would run as it, as keepalived does; it
    // does not stop the daemon.
    let scripts = proc::Runner::from_config(&loaded.config);
    // Scripts whose program cannot run are disabled at start, as keepalived does.
    for w in disable_unrunnable_scripts(&mut loaded.config, &scripts) {
        tracing::warn!("{w}");
    }
    // keepalived's startup_script: run, and waited for (up to its timeout), before anything
    // else starts.
    run_life_script(&scripts, loaded.config.global.startup_script.as_ref(), loaded.config.global.startup_script_timeout, "startup_script").await;
    let shutdown_script = (loaded.config.global.shutdown_script.clone(), loaded.config.global.shutdown_script_timeout);
    let aux = aux_runtime()?;
    let notifier = {
        let _in_aux = aux.enter();
        Notifier::with_runner(&loaded.config, scripts.clone())
    };
    let mut d = Daemon {
        opts: opts.clone(),
        config: std::sync::Arc::new(Config::default()),
        engine: VrrpEngine::new(),
        netlink,
        start: std::time::Instant::now(),
        started_wall: std::time::SystemTime::now(),
        socks: Default::default(),
        packets: HashMap::new(),
        track_tx,
        track_ids: HashMap::new(),
        track_status: HashMap::new(),
        track_tasks: HashMap::new(),
        scripts,
        notifier,
        vmacs: Vec::new(),
        sysctl: SysctlGuard::new(),
        send_errors: 0,
        vip_errors: 0,
        routing: super::vroutes::Routing::default(),
        policies: super::director::Policies::default(),
        lvs: None,
        firewall: None,
        snapshot: tokio::sync::watch::channel(Vec::new()).0,
        aux,
        reloading: false,
        // Per instance: a failover of a thousand instances logs every one of them, a peer
        // flapping one instance at line rate logs a few lines of it every ten seconds.
        log_transitions: KeyedRateLimit::new(5, std::time::Duration::from_secs(10), 65_536),
        log_rx_lower: KeyedRateLimit::new(5, std::time::Duration::from_secs(10), 65_536),
        log_drops: RateLimit::new(20, std::time::Duration::from_secs(1)),
        extra_garps: HashMap::new(),
        rt: super::rtprio::RtPriority::new(&loaded.config.global),
        events: tokio::sync::broadcast::channel(super::snapshot::EVENT_BACKLOG).0,
        status_line: String::new(),
        status_stale: false,
    };
    d.policies.set(load_policies(&opts.policies, &loaded.config)?);
    let mut watcher = LinkWatcher::with_addresses().context("watching links and addresses")?;
    let scrapes = ctl_tx.clone();
    if let Some(socket) = opts.snmp.clone() {
        // The subagent waits on the loop's snapshots and events: auxiliary runtime, never the
        // VRRP thread.
        tracing::info!(socket = %socket.display(), "SNMP subagent (VRRPv3-MIB)");
        d.aux.spawn(crate::snmp::run(socket, ctl_tx.clone(), d.events.subscribe()));
    }
    // The control socket and the metrics listener run on the auxiliary runtime: their clients,
    // and rendering the metrics, never take the VRRP thread's time.
    let _ctl = {
        let _in_aux = d.aux.enter();
        // Its error names the path already.
        control::serve(&opts.control, ctl_tx)?
    };
    if let Some(addr) = opts.metrics {
        d.aux.spawn(super::metrics::serve(addr, scrapes)).await.context("metrics listener")??;
    }
    if opts.lvs && !loaded.config.virtual_servers.is_empty() {
        // Without IPVS (no ip_vs module, no privilege) the VRRP side still runs, as keepalived's
        // does when its checker process cannot start.
        match super::director::Lvs::start(&loaded.config, d.policies.clone(), Some(d.notifier.lvs_sink())) {
            Ok(l) => d.lvs = Some(l),
            Err(e) => tracing::error!("LVS disabled, VRRP continues: {e:#}"),
        }
    }
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let uptime = nix::time::clock_gettime(nix::time::ClockId::CLOCK_BOOTTIME).map_or(std::time::Duration::MAX, std::time::Duration::from);
    let delay = loaded.config.global.startup_delay(uptime);
    if !delay.is_zero() {
        // keepalived's vrrp_startup_delay / vrrp_delay_after_boot: the instances start (and the
        // daemon says READY=1) after it; a stop request meanwhile ends the daemon at once.
        tracing::info!(delay_ms = delay.as_millis() as u64, "vrrp_startup_delay: the instances start after the delay");
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            _ = term.recv() => return Ok(()),
            _ = int.recv(), if !opts.ignore_sigint => return Ok(()),
        }
    }
    let rt_priority = loaded.config.global.vrrp_rt_priority;
    d.apply(loaded.config)?;
    // This thread runs the VRRP loop: keepalived's scheduling settings for its VRRP process.
    d.rt.start(rt_priority, &mut super::rtprio::System);
    tracing::info!(instances = d.engine.len(), "hav-linux running");
    let notify = opts.notify.clone();
    d.status_line = d.summary();
    notify.ready(&d.status_line);
    let mut watchdog = notify.watchdog();

    let mut hup = signal(SignalKind::hangup())?;
    // keepalived writes its data, stats and JSON dumps on these; monitoring sends them on every
    // scrape. hav logs them and goes on (the dumps come with the keepalived command-line issue).
    let mut usr1 = signal(SignalKind::user_defined1())?;
    let mut usr2 = signal(SignalKind::user_defined2())?;
    let mut json_dump = signal(SignalKind::from_raw(libc::SIGRTMIN() + 2))?;
    // RLIMIT_RTTIME's soft limit (with realtime scheduling): logged, as keepalived logs it.
    let mut xcpu = signal(SignalKind::from_raw(libc::SIGXCPU))?;
    let mut rx = RxBatch::new();
    let mut timer = crate::net::PreciseTimer::new().context("timerfd")?;
    loop {
        d.flush_adverts();
        d.publish_snapshot();
        let wake = d.next_wakeup();
        timer.arm(wake);
        tokio::select! {
            () = std::future::poll_fn(|cx| rx.poll_fill(cx, &d.socks)) => d.on_batch(&rx),
            Some(ev) = track_rx.recv() => d.on_track(ev.obj, ev.status),
            Some((req, reply)) = ctl_rx.recv() => {
                let r = d.on_control(&req, &reload_tx);
                let _ = reply.send(r);
            }
            ev = watcher.next_event() => match ev {
                Ok(WatchEvent::Link(ev)) => d.on_link(ev),
                Ok(WatchEvent::Addr(ev)) => d.on_addr(&ev),
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                    tracing::warn!("netlink events were lost (ENOBUFS): reading links and addresses again");
                    // A fresh subscription first (what the old socket still holds is stale, and
                    // its reader's state after the overflow is not to be trusted), then read
                    // everything: nothing that changes after this is missed.
                    match LinkWatcher::with_addresses() {
                        Ok(w) => watcher = w,
                        Err(e) => tracing::error!(error = %e, "link watcher not renewed"),
                    }
                    d.resync();
                }
                Err(e) => tracing::warn!(error = %e, "link watcher"),
            },
            () = timer.fired() => {
                // max_auto_priority: a timer this late means the thread is starved.
                if let Some(w) = wake {
                    d.rt.late(std::time::Instant::now().saturating_duration_since(w), &mut super::rtprio::System);
                }
                let now = d.now();
                let mut out = Vec::new();
                d.engine.poll(now, &mut |o| out.push(o));
                d.exec(out);
                d.send_extra_garps();
            }
            Some(prepared) = reload_rx.recv() => d.finish_reload(prepared),
            _ = hup.recv() => d.start_reload(&reload_tx),
            _ = usr1.recv() => d.dump(super::dump::Kind::Data),
            _ = usr2.recv() => d.dump(super::dump::Kind::Stats),
            _ = json_dump.recv() => d.dump(super::dump::Kind::Json),
            _ = xcpu.recv() => tracing::warn!(priority = d.rt.current(), "SIGXCPU: the realtime VRRP thread ran for half of vrrp_rlimit_rttime without blocking; at the whole the kernel kills hav"),
            () = watchdog.tick() => watchdog.kick(),
            _ = term.recv() => break,
            _ = int.recv() => {
                if !d.opts.ignore_sigint {
                    break;
                }
                tracing::info!("SIGINT ignored (--ignore-sigint)");
            }
        }
        d.update_status();
    }
    notify.stopping();
    d.shutdown();
    // The FIFO line of the STOP goes out through the writer task; give it a moment too.
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    d.notifier.drain(std::time::Duration::from_secs(5)).await;
    // The FIFOs' readers read the last lines and are stopped; FIFOs hav created go.
    d.notifier.close_fifos().await;
    // keepalived's shutdown_script: after everything else has stopped (the VIPs and the IPVS
    // services are gone).
    run_life_script(&d.scripts, shutdown_script.0.as_ref(), shutdown_script.1, "shutdown_script").await;
    Ok(())
}

/// Runs keepalived's `startup_script` or `shutdown_script` (as its user, under script
/// security) and waits for it, for at most `timeout`; its outcome is logged. The configuration
/// the daemon started with is the one that counts: a reload does not run either.
async fn run_life_script(scripts: &proc::Runner, script: Option<&config::value::Script>, timeout: std::time::Duration, what: &str) {
    let Some(script) = script else { return };
    tracing::info!(script = %script.command, "{what}: running");
    match scripts.run(script, script.user.as_ref(), &[], timeout, what).await {
        proc::Outcome::Exited(0) => tracing::info!(script = %script.command, "{what}: done"),
        proc::Outcome::Exited(code) => tracing::warn!(script = %script.command, code, "{what}: exited with a failure"),
        proc::Outcome::Signaled(sig) => tracing::warn!(script = %script.command, sig, "{what}: killed by a signal"),
        proc::Outcome::NoResources(e) => tracing::error!(script = %script.command, error = %e, "{what}: not run"),
        // Logged by the runner.
        proc::Outcome::TimedOut | proc::Outcome::Refused(_) | proc::Outcome::SpawnFailed(_) => {}
    }
}

fn lookup_iface(nl: &mut Netlink, name: &str) -> Option<IfaceInfo> {
    let link = nl.link_by_name(name).ok()?;
    let addrs = nl.addresses(link.index).ok()?.into_iter().map(|a| a.addr).collect();
    Some(IfaceInfo { index: link.index, name: link.name, mac: link.mac, up: link.up, addrs })
}

fn is_exists(e: &NetError) -> bool {
    e.raw_os_error() == Some(libc::EEXIST)
}

fn is_missing(e: &NetError) -> bool {
    matches!(e.raw_os_error(), Some(libc::EADDRNOTAVAIL) | Some(libc::ENOENT) | Some(libc::ENODEV) | Some(libc::ESRCH))
}

/// Whether the instance waits for its interface (dynamic_interfaces): planned before the
/// interface, or the address its adverts leave from, existed.
fn waiting(r: &hav_core::vrrp::Record<InstancePlan>) -> bool {
    plan::is_pending(r.key().ifindex) || r.instance().config().primary_addr.is_unspecified()
}

/// Whether the instance may run on its link: the link is up with carrier (or the instance says
/// `dont_track_primary`), and the address its adverts leave from is still there (losing it is a
/// fault, as a link down is).
fn link_ok(up: bool, plan: &InstancePlan, inst: &Instance) -> bool {
    (up || plan.dont_track_primary) && plan.addrs.contains(&inst.config().primary_addr)
}

impl Daemon {
    fn now(&self) -> hav_core::Instant {
        hav_core::Instant::from_micros(u64::try_from(self.start.elapsed().as_micros()).unwrap_or(u64::MAX))
    }

    /// When the loop must wake: the engine's deadline, which is exact for the timers that decide
    /// mastership and on a shared grid for a master's adverts (see `Instance::poll_window`).
    fn next_wakeup(&self) -> Option<std::time::Instant> {
        let engine = self.engine.poll_at().map(|t| self.start + std::time::Duration::from_micros(t.total_micros()));
        let extra = self.extra_garps.values().min().copied();
        match (engine, extra) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// `garp_extra_if`: the rounds that are due, for the instances still master with their VIPs;
    /// each next one an interval later (keepalived restarts the interval when it sends).
    fn send_extra_garps(&mut self) {
        let now = std::time::Instant::now();
        let due: Vec<String> = self.extra_garps.iter().filter(|(_, &t)| t <= now).map(|(n, _)| n.clone()).collect();
        for name in due {
            let found = self.engine.records().iter().position(|r| r.meta.name == name);
            let Some(idx) = found else {
                self.extra_garps.remove(&name);
                continue;
            };
            let r = &self.engine.records()[idx];
            let Some(extra) = r.meta.garp_extra.clone().filter(|_| r.instance().state() == State::Master) else {
                self.extra_garps.remove(&name);
                continue;
            };
            if r.vips() == VipHold::Held {
                self.send_garp_for(idx, &extra.vips, 1);
            }
            self.extra_garps.insert(name, now + extra.interval);
        }
    }

    /// Plans the VRRP instances of `config` (none without VRRP) and their sync groups, touching
    /// nothing.
    fn plan(&mut self, config: &Config) -> anyhow::Result<(Vec<Planned>, Vec<Vec<usize>>)> {
        if !self.opts.vrrp {
            return Ok((Vec::new(), Vec::new()));
        }
        let mut warnings = Vec::new();
        let nl = &mut self.netlink;
        // VMAC interfaces do not exist yet on first start; resolve the base interfaces only.
        let plans = plan::plan(config, &mut |name| lookup_iface(nl, name), &mut warnings)?;
        for w in &warnings {
            tracing::warn!("{w}");
        }
        let groups = sync_groups(config, &plans)?;
        Ok((plans, groups))
    }

    /// Applies the first config at start-up. On error nothing has changed but stale VMACs.
    fn apply(&mut self, new: Config) -> anyhow::Result<()> {
        let (plans, groups) = self.plan(&new)?;
        // VMACs left by a previous run (it crashed) go, with whatever addresses they carry; the
        // instances that use them create them afresh.
        for p in &plans {
            if let Some(v) = &p.meta.vmac {
                if let Ok(l) = self.netlink.link_by_name(&v.name) {
                    tracing::info!(vmac = %v.name, "removing a VMAC left by a previous run");
                    let _ = self.netlink.delete_link(l.index);
                }
            }
        }
        self.apply_planned(new, plans, groups)
    }

    /// Applies a planned config: the first one, or a reload. Instances that stay (same name,
    /// interface, family and VRID) keep their core instance and are handed the new config with
    /// `reconfigure`, which decides what follows; new ones start; removed ones stop.
    fn apply_planned(&mut self, new: Config, plans: Vec<Planned>, groups: Vec<Vec<usize>>) -> anyhow::Result<()> {
        let now = self.now();
        // Instances that go, or whose key changes, stop first: priority 0 and their addresses
        // released, as on SIGTERM. Their notifications say FAULT, or DELETED with
        // `notify_deleted` (as keepalived's), with the priority they had.
        let stays = |name: &str, key: VrKey| plans.iter().any(|p| p.meta.name == name && p.key == key);
        let leaving: Vec<usize> =
            (0..self.engine.len()).filter(|&i| !stays(&self.engine.records()[i].meta.name, self.engine.records()[i].key())).collect();
        for idx in leaving {
            let r = &self.engine.records()[idx];
            tracing::info!(instance = %r.meta.name, "removed from the config (or moved to another interface or VRID); stopping");
            let mut out = Vec::new();
            self.engine.handle(now, idx, Input::Shutdown, &mut |o| out.push(o));
            self.exec(out);
            let r = &self.engine.records()[idx];
            let _in_aux = self.aux.enter();
            self.notifier.removed(&r.meta.name, &r.meta.notify, r.instance().effective_priority(), r.meta.smtp_alert);
        }
        self.flush_adverts();

        self.config = std::sync::Arc::new(new);
        self.sync_statics();
        self.ensure_firewall(&plans);
        self.sync_tracks();
        for p in plans.iter().filter(|p| !plan::is_pending(p.key.ifindex)) {
            self.ensure_vmac(&p.meta, p.key);
            let slot = sock_slot(p.key.ipv6, &p.core.auth);
            self.ensure_socket(&p.meta.ifname, slot, true);
            let x = p.meta.xmit_iface().to_owned();
            self.ensure_socket(&x, slot, false);
            if p.meta.promote_secondaries {
                self.promote_secondaries(&p.meta);
            }
        }

        let mut old: HashMap<String, hav_core::vrrp::Record<InstancePlan>> =
            self.engine.take_records().into_iter().map(|r| (r.meta.name.clone(), r)).collect();
        // What follows each record once the table is built: the new config for one that stays,
        // the start for a new one. One per instance, briefly, at a reload: its size is no concern.
        #[allow(clippy::large_enum_variant)]
        enum Next {
            Reconfigure(InstanceConfig, TrackSet),
            Start,
        }
        let mut next: Vec<(usize, Next)> = Vec::new();
        let mut obsolete: Vec<(String, IpAddr, u8)> = Vec::new();
        for p in plans {
            let Planned { meta, key, core, up } = p;
            let tracks = self.track_set(&meta);
            let (rec, then) = match old.remove(&meta.name).filter(|r| r.key() == key) {
                Some(r) => {
                    let (old_meta, inst, vips) = r.into_parts();
                    if vips != VipHold::Released {
                        for v in &old_meta.vips {
                            if !meta.vips.iter().any(|n| n.spec.addr == v.spec.addr && n.dev == v.dev) {
                                obsolete.push((v.dev.clone(), v.spec.addr, v.spec.prefix));
                            }
                        }
                    }
                    (Record::new(meta, key, inst).with_vips(vips), Next::Reconfigure(core, tracks))
                }
                None => {
                    let mut inst = Instance::new(core);
                    for t in tracks.iter() {
                        let _ = inst.track(*t);
                    }
                    if !link_ok(up, &meta, &inst) {
                        let _ = inst.handle(now, Input::Link { up: false });
                    }
                    (Record::new(meta, key, inst), Next::Start)
                }
            };
            // Keys were checked unique by the plan and the table grows: this cannot fail.
            let name = rec.meta.name.clone();
            let idx = self.engine.add(rec).map_err(|(_, e)| anyhow::anyhow!("vrrp_instance {name}: {e}"))?;
            next.push((idx, then));
        }
        for members in &groups {
            self.engine.add_group(members).map_err(|e| anyhow::anyhow!("vrrp_sync_group: {e}"))?;
        }
        for (idx, then) in next {
            let mut out = Vec::new();
            match then {
                Next::Reconfigure(core, tracks) => self.engine.reconfigure(now, idx, core, tracks, &mut |o| out.push(o)),
                Next::Start => self.engine.handle(now, idx, Input::Startup, &mut |o| out.push(o)),
            }
            self.exec(out);
        }
        // Addresses dropped from an instance that keeps running: never one that another
        // instance holds now.
        for (dev, addr, prefix) in obsolete {
            let held_elsewhere = self.engine.records().iter().any(|r| {
                r.holds_vips() && r.meta.vips.iter().any(|v| v.spec.addr == addr && v.dev == dev)
            });
            if !held_elsewhere {
                self.del_vip(&dev, addr, prefix);
            }
        }
        self.sync_vroutes();
        self.drop_unused_sockets();
        Ok(())
    }

    /// The tracked objects of an instance, with their current status.
    fn track_set(&mut self, p: &InstancePlan) -> TrackSet {
        let mut set = TrackSet::new();
        for t in &p.tracks {
            let id = self.track_id(&t.obj);
            let status = self.initial_status(&t.obj);
            if set.push(Tracked::new(id, t.weight, t.reverse, status)).is_err() {
                tracing::warn!(instance = %p.name, "too many tracked objects");
            }
        }
        set
    }

    fn track_id(&mut self, obj: &TrackObj) -> TrackId {
        let next = TrackId::try_from(self.track_ids.len()).unwrap_or(TrackId::MAX);
        *self.track_ids.entry(obj.clone()).or_insert(next)
    }

    fn initial_status(&mut self, obj: &TrackObj) -> TrackStatus {
        if let Some(s) = self.track_status.get(obj) {
            return *s;
        }
        let s = match obj {
            TrackObj::Interface(name) => match self.netlink.link_by_name(name) {
                Ok(l) if l.up => TrackStatus::Up,
                _ => TrackStatus::Down,
            },
            TrackObj::Script(name) => match self.config.script(name) {
                Some(s) if s.init_fail => TrackStatus::Down,
                Some(s) if s.policy.is_some() => TrackStatus::Value(0),
                _ => TrackStatus::Up,
            },
            TrackObj::File(name) => match self.config.vrrp_track_files.iter().find(|f| &f.name == name) {
                Some(f) => TrackStatus::Value(track::read_track_file(&f.file)),
                None => TrackStatus::Down,
            },
            // One scan of /proc (the stat files; cmdline only with full_command), as keepalived
            // scans before its instances start: without the quorum an instance starts in FAULT,
            // not in BACKUP for the few milliseconds until the watcher's own scan arrives.
            TrackObj::Process(name) => match self.config.vrrp_track_processes.iter().find(|p| &p.name == name) {
                Some(p) => {
                    let count = super::track_process::scan(std::path::Path::new("/proc"), p).len();
                    if p.in_quorum(u32::try_from(count).unwrap_or(u32::MAX)) {
                        TrackStatus::Up
                    } else {
                        TrackStatus::Down
                    }
                }
                None => TrackStatus::Down,
            },
        };
        self.track_status.insert(obj.clone(), s);
        s
    }

    /// Starts the script, file and process watchers the config uses (on the auxiliary runtime); stops the
    /// others; restarts changed ones. A definition that only moved in the file (a reload that
    /// added lines above it) is unchanged: its task, and the status it reached, stay.
    fn sync_tracks(&mut self) {
        let mut wanted: HashMap<TrackObj, TrackDef> = HashMap::new();
        for s in &self.config.vrrp_scripts {
            wanted.insert(TrackObj::Script(s.name.clone()), TrackDef::script(s));
        }
        for f in &self.config.vrrp_track_files {
            wanted.insert(TrackObj::File(f.name.clone()), TrackDef::file(f));
        }
        for p in &self.config.vrrp_track_processes {
            wanted.insert(TrackObj::Process(p.name.clone()), TrackDef::process(p));
        }
        self.track_tasks.retain(|obj, (task, def)| {
            let keep = wanted.get(obj) == Some(def);
            if !keep {
                task.abort();
            }
            keep
        });
        let _in_aux = self.aux.enter();
        for s in self.config.vrrp_scripts.clone() {
            let obj = TrackObj::Script(s.name.clone());
            if self.track_tasks.contains_key(&obj) {
                continue;
            }
            let def = TrackDef::script(&s);
            self.track_status.remove(&obj);
            let task = if s.policy.is_some() {
                track::spawn_policy_script(s, self.policies.clone(), self.snapshot.subscribe(), self.track_tx.clone())
            } else {
                track::spawn_script_with(s, self.scripts.clone(), self.track_tx.clone())
            };
            self.track_tasks.insert(obj, (task, def));
        }
        for f in self.config.vrrp_track_files.clone() {
            let obj = TrackObj::File(f.name.clone());
            if !self.track_tasks.contains_key(&obj) {
                track::init_track_file(&f);
                let def = TrackDef::file(&f);
                self.track_status.remove(&obj);
                let task = track::spawn_file(f, self.track_tx.clone());
                self.track_tasks.insert(obj, (task, def));
            }
        }
        for p in self.config.vrrp_track_processes.clone() {
            let obj = TrackObj::Process(p.name.clone());
            if !self.track_tasks.contains_key(&obj) {
                let def = TrackDef::process(&p);
                self.track_status.remove(&obj);
                let task = super::track_process::spawn(p, self.track_tx.clone());
                self.track_tasks.insert(obj, (task, def));
            }
        }
    }

    /// An interface of some instances exists again under a new index (deleted and created
    /// again, as a network restart does with VLANs and bonds): those instances, their sockets
    /// and VMACs move to it. Their state follows the link as usual (FAULT while it was gone).
    fn rebind(&mut self, ev: &LinkEvent) {
        let moved: Vec<usize> = (0..self.engine.len())
            .filter(|&i| {
                let r = &self.engine.records()[i];
                r.meta.ifname == ev.name && r.key().ifindex != ev.index
            })
            .collect();
        if moved.is_empty() {
            return;
        }
        let Some(info) = lookup_iface(&mut self.netlink, &ev.name) else { return };
        if info.index != ev.index {
            return; // gone again already; a later event brings the index to use
        }
        tracing::info!(ifname = %ev.name, index = ev.index, instances = moved.len(), "interface back under a new index");
        self.flush_adverts();
        let mut stale = vec![ev.name.clone()];
        for &i in &moved {
            let key = VrKey { ifindex: info.index, ..self.engine.records()[i].key() };
            if !self.engine.rekey(i, key) {
                tracing::error!(instance = %self.engine.records()[i].meta.name, "another instance has this VRID on the interface");
            }
            let Some(p) = self.engine.meta_mut(i) else { continue };
            p.mac = info.mac;
            p.addrs.clone_from(&info.addrs);
            stale.extend(p.vmac.as_ref().map(|v| v.name.clone()));
        }
        for name in &stale {
            for socks in &mut self.socks {
                socks.remove(name);
            }
        }
        for &i in &moved {
            let r = &self.engine.records()[i];
            let (p, key) = (r.meta.clone(), r.key());
            let slot = sock_slot(key.ipv6, &r.instance().config().auth);
            self.ensure_vmac(&p, key);
            self.ensure_socket(&p.ifname, slot, true);
            self.ensure_socket(p.xmit_iface(), slot, false);
        }
    }

    /// `promote_secondaries`: when the interface's primary address goes, the kernel promotes a
    /// secondary (a VIP in the same subnet) instead of deleting them all. Restored at stop.
    fn promote_secondaries(&mut self, p: &InstancePlan) {
        let mut ifaces = vec![p.ifname.as_str()];
        if let Some(v) = &p.vmac {
            ifaces.push(&v.name);
        }
        for ifname in ifaces {
            let r = crate::net::sysctl::ipv4_conf(ifname, "promote_secondaries").and_then(|path| self.sysctl.set(&path, "1"));
            if let Err(e) = r {
                tracing::warn!(instance = %p.name, interface = ifname, error = %e, "promote_secondaries not set");
            }
        }
    }

    fn ensure_vmac(&mut self, p: &InstancePlan, key: VrKey) {
        let Some(v) = &p.vmac else { return };
        match self.netlink.link_by_name(&v.name) {
            Ok(_) => {}
            Err(_) => match self.netlink.create_macvlan(key.ifindex, &v.name, v.mac) {
                Ok(idx) => {
                    if !self.vmacs.contains(&v.name) {
                        self.vmacs.push(v.name.clone());
                    }
                    if let Err(e) = self.sysctl.prepare_vmac_parent(&p.ifname) {
                        tracing::warn!(error = %e, "VMAC parent sysctls");
                    }
                    if let Err(e) = self.sysctl.prepare_vmac(&v.name, key.ipv6) {
                        tracing::warn!(error = %e, "VMAC sysctls");
                    }
                    if let Err(e) = self.netlink.set_up(idx) {
                        tracing::warn!(vmac = %v.name, error = %e, "VMAC up");
                    }
                    tracing::info!(vmac = %v.name, parent = %p.ifname, "VMAC created");
                }
                Err(e) => tracing::error!(vmac = %v.name, error = %e, "VMAC not created"),
            },
        }
    }

    fn ensure_socket(&mut self, ifname: &str, slot: usize, receive: bool) {
        let ipv6 = slot == 1;
        if let Some(s) = self.socks[slot].get(ifname) {
            if !receive || s.receive {
                return;
            }
        }
        let Ok(link) = self.netlink.link_by_name(ifname) else {
            tracing::error!(ifname, "interface not found; no VRRP socket");
            return;
        };
        let family = if ipv6 { Family::V6 } else { Family::V4 };
        let mut groups: Vec<IpAddr> = Vec::new();
        if receive {
            let g: IpAddr = if ipv6 { self.config.global.vrrp_mcast_group6.into() } else { self.config.global.vrrp_mcast_group4.into() };
            groups.push(g);
        }
        let opened = if slot == 2 { VrrpSocket::open_ah(link.index, ifname, &groups) } else { VrrpSocket::open(link.index, ifname, family, &groups) };
        let sock = match opened {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(ifname, error = %e, "VRRP socket");
                return;
            }
        };
        self.socks[slot].insert(ifname.to_owned(), RxSock { sock, receive, out: Outbox::default() });
    }

    fn drop_unused_sockets(&mut self) {
        self.flush_adverts();
        let mut used: HashSet<(&str, usize)> = HashSet::new();
        for r in self.engine.records() {
            let slot = sock_slot(r.key().ipv6, &r.instance().config().auth);
            used.insert((&r.meta.ifname, slot));
            used.insert((r.meta.xmit_iface(), slot));
        }
        for (slot, socks) in self.socks.iter_mut().enumerate() {
            socks.retain(|k, _| used.contains(&(k.as_str(), slot)));
        }
    }

    /// Handles the datagrams of a receive batch.
    fn on_batch(&mut self, rx: &RxBatch) {
        // One clock read for the batch: its datagrams were all queued by now.
        let now = self.now();
        let mut out = Vec::new();
        for (i, r) in &rx.got {
            let Some(bytes) = rx.bufs[*i].get(r.offset..r.offset + r.len) else { continue };
            let from = EngineRx { ifindex: r.ifindex, src: r.src, dst: r.dst, ttl: r.ttl };
            if r.ah {
                self.engine.receive_ah(now, &from, bytes, &mut |o| out.push(o));
            } else {
                self.engine.receive(now, &from, bytes, &mut |o| out.push(o));
            }
            if let Some(rx) = self.engine.poll_rx_lower() {
                self.master_rx_lower(rx.idx, rx.priority, r.src);
            }
        }
        if !out.is_empty() {
            self.exec(out);
        }
    }

    fn on_track(&mut self, obj: TrackObj, status: TrackStatus) {
        self.track_status.insert(obj.clone(), status);
        let Some(&id) = self.track_ids.get(&obj) else { return };
        let now = self.now();
        let mut out = Vec::new();
        for idx in 0..self.engine.len() {
            if self.engine.records()[idx].meta.tracks.iter().any(|t| t.obj == obj) {
                self.engine.handle(now, idx, Input::Track { id, status }, &mut |o| out.push(o));
            }
        }
        self.exec(out);
    }

    fn on_link(&mut self, ev: LinkEvent) {
        tracing::debug!(ifname = %ev.name, index = ev.index, up = ev.up, deleted = ev.deleted, "link event");
        if !ev.deleted && self.engine.records().iter().any(|r| r.meta.ifname == ev.name && waiting(r)) {
            self.start_waiting(&ev.name);
        }
        if !ev.deleted {
            self.rebind(&ev);
        }
        let up = ev.up && !ev.deleted;
        let obj = TrackObj::Interface(ev.name.clone());
        let status = if up { TrackStatus::Up } else { TrackStatus::Down };
        if self.track_ids.contains_key(&obj) && self.track_status.get(&obj) != Some(&status) {
            tracing::info!(ifname = %ev.name, up, "tracked interface changed");
            self.on_track(obj, status);
        }
        let fresh = if up { lookup_iface(&mut self.netlink, &ev.name).map(|i| i.addrs) } else { None };
        for idx in 0..self.engine.len() {
            if self.engine.records()[idx].key().ifindex != ev.index {
                continue;
            }
            if let (Some(addrs), Some(p)) = (&fresh, self.engine.meta_mut(idx)) {
                p.addrs.clone_from(addrs);
            }
            self.feed_link(idx, up);
        }
    }

    /// dynamic_interfaces: instances waited for `ifname` (to exist, or to have the address their
    /// adverts leave from); the config is planned again, and they start on it (the records that
    /// stood in for them stop). When it still cannot be planned, they go on waiting.
    fn start_waiting(&mut self, ifname: &str) {
        let config = (*self.config).clone();
        let replanned = self.plan(&config).and_then(|(plans, groups)| {
            let ready = plans.iter().any(|p| p.meta.ifname == ifname && !p.core.primary_addr.is_unspecified());
            if ready {
                tracing::info!(ifname, "interface ready: starting the instances that wait for it");
                self.apply_planned(config, plans, groups)
            } else {
                Ok(())
            }
        });
        if let Err(e) = replanned {
            tracing::error!(ifname, "instances waiting for the interface not started: {e:#}");
        }
    }

    /// Feeds the link state of record `idx` (up and with its advert source address) when it
    /// differs from what the instance knows.
    fn feed_link(&mut self, idx: usize, up: bool) {
        let r = &self.engine.records()[idx];
        let ok = link_ok(up, &r.meta, r.instance());
        if ok == r.instance().link_up() {
            tracing::trace!(instance = %r.meta.name, up, ok, addrs = ?r.meta.addrs, "link unchanged");
            return;
        }
        let why = if up && !ok { "its advert source address is gone" } else if ok { "up" } else { "down" };
        tracing::info!(instance = %r.meta.name, ifname = %r.meta.ifname, running = ok, why, "link changed");
        let now = self.now();
        let mut out = Vec::new();
        self.engine.handle(now, idx, Input::Link { up: ok }, &mut |o| out.push(o));
        self.exec(out);
    }

    /// An address came or went. Losing the address adverts leave from is a fault; a configured
    /// VIP that appears while its instance does not hold it (a leftover, someone's `ip addr
    /// add`) is removed, so that no node but the master answers for it.
    fn on_addr(&mut self, ev: &AddrEvent) {
        if self.opts.address_monitoring {
            tracing::info!(ifindex = ev.index, addr = %ev.addr, prefix = ev.prefix, removed = ev.deleted, "address change");
        }
        if !ev.deleted {
            let waits = self.engine.records().iter().find(|r| r.key().ifindex == ev.index && waiting(r)).map(|r| r.meta.ifname.clone());
            if let Some(ifname) = waits {
                self.start_waiting(&ifname);
            }
        }
        for idx in 0..self.engine.len() {
            let r = &self.engine.records()[idx];
            if r.key().ifindex == ev.index && (r.instance().config().primary_addr == ev.addr || r.meta.addrs.contains(&ev.addr)) {
                let Some(p) = self.engine.meta_mut(idx) else { continue };
                if ev.deleted {
                    p.addrs.retain(|a| *a != ev.addr);
                } else if !p.addrs.contains(&ev.addr) {
                    p.addrs.push(ev.addr);
                }
                let up = self.netlink.link_by_index(ev.index).map(|l| l.up).unwrap_or(false);
                self.feed_link(idx, up);
            }
        }
        // Only an address some instance configures as a VIP is worth a link lookup: an address
        // flood on other interfaces costs the loop no netlink round trip.
        let configured = self.engine.records().iter().any(|r| r.meta.vips.iter().any(|v| v.spec.addr == ev.addr));
        if !ev.deleted && configured {
            let dev = match self.netlink.link_by_index(ev.index) {
                Ok(l) => l.name,
                Err(_) => return,
            };
            let stale = self.engine.records().iter().any(|r| {
                !r.holds_vips() && !r.instance().config().is_owner() && r.meta.vips.iter().any(|v| v.spec.addr == ev.addr && v.dev == dev)
            });
            let held = self.engine.records().iter().any(|r| {
                r.holds_vips() && r.meta.vips.iter().any(|v| v.spec.addr == ev.addr && v.dev == dev)
            });
            if stale && !held {
                tracing::warn!(dev = %dev, vip = %ev.addr, "a VIP appeared on a node that is not master for it; removing it");
                self.del_vip(&dev, ev.addr, ev.prefix);
            }
        }
    }

    /// Netlink events were lost: reads every instance's link and addresses again and feeds what
    /// changed, and removes VIPs that are present while their instance does not hold them.
    fn resync(&mut self) {
        for idx in 0..self.engine.len() {
            let name = self.engine.records()[idx].meta.ifname.clone();
            match lookup_iface(&mut self.netlink, &name) {
                Some(info) => {
                    if info.index != self.engine.records()[idx].key().ifindex {
                        self.rebind(&LinkEvent { index: info.index, name: info.name.clone(), up: info.up, deleted: false });
                    }
                    if let Some(p) = self.engine.meta_mut(idx) {
                        p.addrs = info.addrs;
                    }
                    self.feed_link(idx, info.up);
                }
                None => self.feed_link(idx, false),
            }
        }
        let tracked: Vec<TrackObj> = self.track_ids.keys().filter(|o| matches!(o, TrackObj::Interface(_))).cloned().collect();
        for obj in tracked {
            let TrackObj::Interface(name) = &obj else { continue };
            let up = self.netlink.link_by_name(name).map(|l| l.up).unwrap_or(false);
            let status = if up { TrackStatus::Up } else { TrackStatus::Down };
            if self.track_status.get(&obj) != Some(&status) {
                self.on_track(obj, status);
            }
        }
        self.release_strays();
    }

    /// Removes every configured VIP found on the host while no instance holds it.
    fn release_strays(&mut self) {
        let mut gone: Vec<(String, IpAddr, u8)> = Vec::new();
        for r in self.engine.records() {
            if r.holds_vips() || r.instance().config().is_owner() {
                continue;
            }
            for v in &r.meta.vips {
                let held = self.engine.records().iter().any(|o| o.holds_vips() && o.meta.vips.iter().any(|w| w.spec.addr == v.spec.addr && w.dev == v.dev));
                if !held {
                    gone.push((v.dev.clone(), v.spec.addr, v.spec.prefix));
                }
            }
        }
        for (dev, addr, prefix) in gone {
            let Ok(l) = self.netlink.link_by_name(&dev) else { continue };
            let present = self.netlink.addresses(l.index).map(|a| a.iter().any(|x| x.addr == addr)).unwrap_or(false);
            if present {
                tracing::warn!(dev = %dev, vip = %addr, "a VIP is present on a node that is not master for it; removing it");
                self.del_vip(&dev, addr, prefix);
            }
        }
    }

    fn on_control(&mut self, req: &control::Request, reload: &mpsc::Sender<Prepared>) -> Reply {
        let admin = match req.cmd.as_str() {
            "status" => return json!({"ok": true, "instances": self.status(), "daemon": self.daemon_status()}).into(),
            // A copy of the state; the listener renders it on its own runtime.
            "metrics" | "snapshot" => return Reply::Snapshot(Box::new(self.snapshot())),
            "reload" => {
                self.start_reload(reload);
                return json!({"ok": true}).into();
            }
            "panic" if std::env::var_os("HAV_TEST_PANIC").is_some() => {
                // Fault injection for the tests: a panic in the VRRP thread must release the VIPs.
                panic!("panic requested on the control socket (HAV_TEST_PANIC is set)");
            }
            "standby" => AdminMode::Standby,
            "takeover" => AdminMode::Takeover,
            "resume" => AdminMode::Auto,
            other => return json!({"ok": false, "error": format!("unknown command '{other}'")}).into(),
        };
        let Some(name) = &req.instance else {
            return json!({"ok": false, "error": format!("{} needs an instance", req.cmd)}).into();
        };
        let Some(idx) = self.find(name) else {
            return json!({"ok": false, "error": format!("no instance '{name}'")}).into();
        };
        tracing::info!(instance = %name, cmd = %req.cmd, "operator command");
        let now = self.now();
        let mut out = Vec::new();
        self.engine.handle(now, idx, Input::Admin(admin), &mut |o| out.push(o));
        self.exec(out);
        json!({"ok": true, "state": self.engine.records()[idx].instance().state().as_str()}).into()
    }

    /// A copy of the VRRP state for the renderers (metrics, dumps, SNMP) to read off the loop.
    pub(crate) fn snapshot(&self) -> super::snapshot::Snapshot {
        let groups: Vec<_> = self
            .config
            .vrrp_sync_groups
            .iter()
            .zip(self.engine.groups())
            .map(|(g, e)| (g.name.clone(), g.group.iter().map(|(n, _)| n.clone()).collect(), e.agreed()))
            .collect();
        super::snapshot::Snapshot::capture(
            self.engine.records(),
            &groups,
            *self.engine.stray(),
            (self.vip_errors, self.send_errors),
            (self.started_wall, self.start),
        )
    }

    /// keepalived's state dumps (SIGUSR1 data, SIGUSR2 stats, SIGRTMIN+2 JSON): the loop takes a
    /// snapshot, and the text is rendered and written on the auxiliary runtime.
    fn dump(&self, kind: super::dump::Kind) {
        let snap = self.snapshot();
        let config = self.config.clone();
        self.aux.spawn_blocking(move || match super::dump::dump(kind, &snap, &config) {
            Ok(path) => tracing::info!(path = %path.display(), "state dump written"),
            Err(e) => tracing::warn!(error = %e, ?kind, "state dump not written"),
        });
    }

    /// One line for `systemctl status`: how many instances are in each state.
    fn summary(&self) -> String {
        let mut n = [0usize; 4];
        for r in self.engine.records() {
            n[match r.instance().state() {
                State::Master => 0,
                State::Backup => 1,
                State::Fault => 2,
                State::Initialize => 3,
            }] += 1;
        }
        format!("{} instances: {} master, {} backup, {} fault", self.engine.len(), n[0], n[1], n[2])
    }

    /// Tells systemd the new summary after transitions (once per loop turn at most).
    fn update_status(&mut self) {
        if !std::mem::take(&mut self.status_stale) {
            return;
        }
        let line = self.summary();
        if line != self.status_line {
            self.opts.notify.status(&line);
            self.status_line = line;
        }
    }

    fn find(&self, name: &str) -> Option<usize> {
        self.engine.records().iter().position(|r| r.meta.name == name)
    }

    fn daemon_status(&self) -> serde_json::Value {
        let s = self.engine.stray();
        json!({
            "dropped": {"truncated": s.truncated, "unknown_vrid": s.unknown_vrid},
            "vip_errors": self.vip_errors,
            "send_errors": self.send_errors,
        })
    }

    fn status(&self) -> serde_json::Value {
        let list: Vec<_> = self
            .engine
            .records()
            .iter()
            .map(|r| {
                let (p, i) = (&r.meta, r.instance());
                let c = i.counters();
                json!({
                    "name": p.name,
                    "interface": p.ifname,
                    "vrid": i.config().vrid,
                    "family": if r.key().ipv6 { "inet6" } else { "inet" },
                    "version": if i.config().version == hav_core::wire::VrrpVersion::V2 { 2 } else { 3 },
                    "state": i.state().as_str(),
                    "priority": i.config().priority,
                    "effective_priority": i.effective_priority(),
                    "master": i.master_addr().map(|a| a.to_string()),
                    "admin": format!("{:?}", i.admin()).to_lowercase(),
                    "vips": p.vips.iter().map(|v| format!("{}/{}", v.spec.addr, v.spec.prefix)).collect::<Vec<_>>(),
                    "holds_vips": r.holds_vips(),
                    "adverts_rx": c.adverts_rx,
                    "adverts_tx": c.adverts_tx,
                    "transitions": c.transitions,
                    "prio_zero_rx": c.prio_zero_rx,
                    "prio_zero_tx": c.prio_zero_tx,
                    "vip_failures": c.vip_failures,
                    "dropped": hav_core::vrrp::DropReason::ALL
                        .iter()
                        .zip(c.drops.iter())
                        .filter(|(_, n)| **n > 0)
                        .map(|(r, n)| (r.as_str().to_owned(), json!(n)))
                        .collect::<serde_json::Map<_, _>>(),
                    "became_master": c.became_master,
                })
            })
            .collect();
        serde_json::Value::Array(list)
    }

    /// SIGHUP or `reload`: reads the config and compiles its policies on a worker thread, so the
    /// VRRP loop never waits for either; [`Self::finish_reload`] swaps the result in.
    fn start_reload(&mut self, done: &mpsc::Sender<Prepared>) {
        if self.reloading {
            tracing::info!("a reload is already being prepared; this one folds into it");
            return;
        }
        tracing::info!(config = %self.opts.config.display(), "reloading");
        self.reloading = true;
        self.opts.notify.reloading();
        let path = self.opts.config.clone();
        let load = self.opts.load.clone();
        let policies = self.opts.policies.clone();
        let done = done.clone();
        self.aux.spawn_blocking(move || {
            let prepared = config::load_with(&path, &load).map_err(|e| e.to_string()).and_then(|mut loaded| {
                let set = load_policies(&policies, &loaded.config).map_err(|e| format!("{e:#}"))?;
                // Looking users up may block: here, not on the loop.
                let runner = proc::Runner::from_config(&loaded.config);
                // As at start: scripts whose program cannot run are disabled (and said so with
                // the load's warnings).
                let disabled = disable_unrunnable_scripts(&mut loaded.config, &runner);
                loaded.warnings.extend(disabled);
                Ok((loaded, set, runner))
            });
            let _ = done.blocking_send(prepared);
        });
    }

    fn finish_reload(&mut self, prepared: Prepared) {
        self.reloading = false;
        self.apply_reload(prepared);
        // Whatever came of it, systemd's reload is over.
        self.status_line = self.summary();
        self.opts.notify.ready(&self.status_line);
    }

    fn apply_reload(&mut self, prepared: Prepared) {
        let (loaded, policies, runner) = match prepared {
            Ok(p) => p,
            Err(e) => {
                tracing::error!("reload failed, keeping the running config: {e}");
                return;
            }
        };
        for w in &loaded.warnings {
            tracing::warn!("{w}");
        }
        if self.opts.dump_conf {
            crate::cli::dump_config(&loaded.config);
        }
        // Plan before touching anything.
        let (plans, groups) = match self.plan(&loaded.config) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!("reload failed, keeping the running config: {e:#}");
                return;
            }
        };
        self.policies.set(policies);
        self.rt.reconfigure(&loaded.config.global);
        if runner != self.scripts {
            // New script settings: later notifications use them, and the command vrrp_scripts
            // start again under them (sync_tracks restarts the tasks removed here).
            self.scripts = runner.clone();
            self.notifier.set_runner(runner);
            self.track_tasks.retain(|_, (task, def)| {
                let keep = !matches!(def, TrackDef::Script(s) if s.script.is_some());
                if !keep {
                    task.abort();
                }
                keep
            });
        }
        {
            // FIFOs added, changed or removed by the reload; unchanged ones stay open.
            let _in_aux = self.aux.enter();
            self.notifier.set_fifos(&loaded.config);
        }
        if self.opts.lvs {
            match &mut self.lvs {
                Some(l) => l.reload(&loaded.config),
                None if !loaded.config.virtual_servers.is_empty() => {
                    match super::director::Lvs::start(&loaded.config, self.policies.clone(), Some(self.notifier.lvs_sink())) {
                        Ok(l) => self.lvs = Some(l),
                        Err(e) => tracing::error!("reload: {e:#}"),
                    }
                }
                None => {}
            }
        }
        if let Err(e) = self.apply_planned(loaded.config, plans, groups) {
            tracing::error!("reload: {e:#}");
        } else {
            tracing::info!(instances = self.engine.len(), "reloaded");
        }
    }

    fn shutdown(&mut self) {
        tracing::info!("stopping");
        let now = self.now();
        let mut out = Vec::new();
        self.engine.broadcast(now, Input::Shutdown, &mut |o| out.push(o));
        if self.opts.dont_release_vrrp {
            // -V: the VIPs and VMACs stay where they are (keepalived's --dont-release-vrrp).
            out.retain(|o| !matches!(o, Output::Act { action: Action::RemoveVips, .. }));
            self.exec(out);
            self.flush_adverts();
            if let Err(e) = self.sysctl.restore() {
                tracing::warn!(error = %e, "restoring sysctls");
            }
            if let Some(l) = self.lvs.take() {
                l.stop_with(!self.opts.dont_release_ipvs);
            }
            if let Some(f) = self.firewall.take() {
                f.stop();
            }
            tracing::info!("VIPs and VMACs left in place (--dont-release-vrrp)");
            return;
        }
        self.exec(out);
        self.flush_adverts();
        // STOP, with the priority each had (keepalived's; the adverts just sent said 0).
        let stops: Vec<_> = self
            .engine
            .records()
            .iter()
            .map(|r| (r.meta.name.clone(), r.meta.notify.clone(), r.instance().effective_priority(), r.meta.smtp_alert))
            .collect();
        for (name, notify, prio, smtp) in stops {
            self.notifier_changed(Kind::Instance, &name, &notify, "STOP", prio, smtp);
        }
        self.release_strays();
        self.routing.clear_all(&mut self.netlink);
        for name in std::mem::take(&mut self.vmacs) {
            if let Ok(l) = self.netlink.link_by_name(&name) {
                let _ = self.netlink.delete_link(l.index);
            }
        }
        if let Err(e) = self.sysctl.restore() {
            tracing::warn!(error = %e, "restoring sysctls");
        }
        if let Some(l) = self.lvs.take() {
            l.stop_with(!self.opts.dont_release_ipvs);
        }
        if let Some(f) = self.firewall.take() {
            f.stop();
        }
    }

    /// Instance `idx`, master, accepted a lower-priority advert from `src`: keepalived's
    /// MASTER_RX_LOWER_PRI (`notify_master_rx_lower_pri`, the FIFO line), paced by the notifier.
    fn master_rx_lower(&mut self, idx: usize, priority: u8, src: std::net::IpAddr) {
        let r = &self.engine.records()[idx];
        let ours = r.instance().effective_priority();
        if let Some(held_back) = self.log_rx_lower.check(&r.meta.name, std::time::Instant::now()) {
            tracing::info!(instance = %r.meta.name, %src, priority, ours, held_back, "master received an advert with a lower priority");
        }
        let _in_aux = self.aux.enter();
        self.notifier.master_rx_lower(&r.meta.name, &r.meta.notify, ours);
    }

    /// Runs notify scripts, the FIFO and SMTP on the auxiliary runtime.
    fn notifier_changed(&self, kind: Kind, name: &str, notify: &crate::config::vrrp::Notify, state: &str, prio: u8, smtp: bool) {
        let _in_aux = self.aux.enter();
        self.notifier.changed(kind, name, notify, state, prio, smtp);
    }

    /// Carries out the engine's outputs, in order. The results of installing and removing
    /// addresses go back to the engine at once, and what it answers is carried out before the
    /// rest, so that no gratuitous ARP follows a release.
    fn exec(&mut self, outs: Vec<Output>) {
        let mut queue: std::collections::VecDeque<Output> = outs.into();
        let mut vips_moved = false;
        while let Some(o) = queue.pop_front() {
            vips_moved |= matches!(o, Output::Act { action: Action::AddVips { .. } | Action::RemoveVips, .. });
            let (idx, a) = match o {
                Output::Group { group, state } => {
                    self.group_changed(group, state);
                    continue;
                }
                Output::Act { idx, action } => (idx, action),
            };
            match a {
                Action::Transition { from, to, reason } => {
                    self.status_stale = true;
                    let r = &self.engine.records()[idx];
                    let prio = r.instance().effective_priority();
                    if let Some(held) = self.log_transitions.check(&r.meta.name, std::time::Instant::now()) {
                        tracing::info!(instance = %r.meta.name, from = from.as_str(), to = to.as_str(), ?reason, priority = prio, held_back = held, "state change");
                    }
                    // garp_extra_if: the first round an interval after becoming master.
                    match &r.meta.garp_extra {
                        Some(g) if to == State::Master => {
                            self.extra_garps.insert(r.meta.name.clone(), std::time::Instant::now() + g.interval);
                        }
                        _ => {
                            self.extra_garps.remove(&r.meta.name);
                        }
                    }
                    if to != State::Initialize {
                        let (name, notify, smtp) = (r.meta.name.clone(), r.meta.notify.clone(), r.meta.smtp_alert);
                        self.notifier_changed(Kind::Instance, &name, &notify, to.as_str(), prio, smtp);
                    }
                    if let Some(l) = &self.lvs {
                        l.vrrp_state(&self.engine.records()[idx].meta.name, to == State::Master);
                    }
                    if self.events.receiver_count() > 0 {
                        let r = &self.engine.records()[idx];
                        let _ = self.events.send(super::snapshot::Event::Transition {
                            instance: r.meta.name.clone(),
                            ifindex: r.key().ifindex,
                            vrid: r.key().vrid,
                            ipv6: r.key().ipv6,
                            from,
                            to,
                            reason,
                            master: r.instance().master_addr(),
                        });
                    }
                }
                Action::SendAdvert { priority } => {
                    let r = &self.engine.records()[idx];
                    send_advert(&mut self.socks, &r.meta, r.key(), r.instance(), priority);
                }
                Action::AddVips { .. } => {
                    // The advert announcing mastership leaves before the netlink work.
                    self.flush_adverts();
                    let held = self.add_vips(idx);
                    if held {
                        self.install_vroutes(idx);
                    }
                    let now = self.now();
                    let mut more = Vec::new();
                    self.engine.handle(now, idx, Input::Vips { held }, &mut |o| more.push(o));
                    for m in more.into_iter().rev() {
                        queue.push_front(m);
                    }
                }
                Action::RemoveVips => {
                    let name = self.engine.records()[idx].meta.name.clone();
                    self.routing.clear_instance(&mut self.netlink, &name);
                    let ok = self.remove_vips(idx);
                    let now = self.now();
                    self.engine.vips_released(now, idx, ok);
                }
                Action::SendGarp { repeat } => {
                    // Only for addresses the instance holds as master, whatever was queued.
                    let r = &self.engine.records()[idx];
                    if r.instance().state() == State::Master && r.vips() == VipHold::Held {
                        self.send_garp(idx, repeat);
                    }
                }
                Action::Discard(reason) => {
                    if self.events.receiver_count() > 0 {
                        let r = &self.engine.records()[idx];
                        let _ = self.events.send(super::snapshot::Event::ProtoError {
                            instance: r.meta.name.clone(),
                            ifindex: r.key().ifindex,
                            vrid: r.key().vrid,
                            ipv6: r.key().ipv6,
                            reason,
                        });
                    }
                    if let Some(held) = self.log_drops.check_now() {
                        tracing::debug!(instance = %self.engine.records()[idx].meta.name, reason = reason.as_str(), held_back = held, "advert dropped");
                    }
                }
            }
        }
        if vips_moved {
            self.sync_firewall();
        }
    }

    /// Starts the nftables worker when an instance of the config runs with accept mode off
    /// (a new one when the table settings changed), and stops it when none does.
    fn ensure_firewall(&mut self, plans: &[Planned]) {
        let wanted = plans.iter().any(|p| !p.core.accept);
        let settings = &self.config.global.nftables;
        let same = self.firewall.as_ref().is_some_and(|f| f.settings() == settings);
        if !wanted || !same {
            if let Some(f) = self.firewall.take() {
                f.stop();
            }
        }
        if wanted && self.firewall.is_none() {
            tracing::info!(table = %settings.table, "accept mode off: VIPs held are dropped by nftables rules");
            self.firewall = Some(crate::net::nft::Firewall::start(settings.clone()));
        }
        self.sync_firewall();
    }

    /// Hands the nftables worker the VIPs to drop: those held by instances with accept mode off.
    fn sync_firewall(&mut self) {
        let Some(f) = self.firewall.as_mut() else { return };
        let mut drops = crate::net::nft::Drops::default();
        for r in self.engine.records().iter().filter(|r| r.vips() == VipHold::Held && !r.instance().config().accept) {
            for v in &r.meta.vips {
                drops.add(v.spec.addr, &v.dev);
            }
        }
        f.set(drops);
    }

    fn group_changed(&mut self, group: usize, state: State) {
        let Some(g) = self.config.vrrp_sync_groups.get(group) else { return };
        tracing::info!(group = %g.name, state = state.as_str(), "sync group state");
        let (name, notify, smtp) = (g.name.clone(), g.notify.clone(), g.smtp_alert);
        self.notifier_changed(Kind::Group, &name, &notify, state.as_str(), 0, smtp);
    }

    /// Sends the adverts queued since the last flush, one `sendmmsg` per socket and batch.
    /// Called when the loop turn ends (before it sleeps) and before anything that must follow
    /// the adverts on the wire (gratuitous ARP, shutdown).
    fn flush_adverts(&mut self) {
        let errors = &mut self.send_errors;
        for s in self.socks.iter_mut().flat_map(HashMap::values_mut) {
            if s.out.is_empty() {
                continue;
            }
            s.sock.send_queued(&mut s.out, |dst, e| {
                *errors += 1;
                if errors.is_power_of_two() {
                    tracing::warn!(%dst, error = %e, count = *errors, "advert not sent");
                }
            });
        }
    }
}

/// Builds one advert of `inst` for each of its destinations and queues it on the socket it
/// leaves from ([`Daemon::flush_adverts`] sends them). A free function over the daemon's
/// sockets, so the hot path borrows the plan and the instance instead of cloning them.
fn send_advert(socks: &mut Socks, p: &InstancePlan, key: VrKey, inst: &Instance, priority: u8) {
    let Some(s) = socks[sock_slot(key.ipv6, &inst.config().auth)].get_mut(p.xmit_iface()) else {
        tracing::warn!(instance = %p.name, ifname = %p.xmit_iface(), "no socket to send adverts on");
        return;
    };
    let repr = inst.advert_repr(priority);
    let src = inst.config().primary_addr;
    let mode = inst.config().checksum_mode;
    if let (VrrpAuth::Ah(_), IpAddr::V4(src4)) = (repr.auth, src) {
        // IPsec AH: whole IPv4 datagrams, one sequence number for every destination.
        let (seq, ident) = inst.ah_seq();
        let zero_ttl = inst.config().is_unicast();
        for dst in inst.advert_destinations() {
            let IpAddr::V4(dst4) = dst else { continue };
            // The header is ours (IP_HDRINCL): unicast_ttl goes into it. The ICV of a unicast
            // advert covers a zeroed TTL, and the kernel fills the header checksum.
            let ttl = if dst.is_multicast() { None } else { p.unicast_ttl };
            let built = s.out.push_with(hav_core::wire::ah::ipv4_advert_len(&repr), src, dst, None, |buf| {
                hav_core::wire::ah::emit_ipv4_advert(buf, &repr, src4, dst4, ident, seq, zero_ttl)?;
                if let (Some(t), Some(b)) = (ttl, buf.get_mut(8)) {
                    *b = t;
                }
                Ok::<(), hav_core::wire::Error>(())
            });
            if let Err(e) = built {
                tracing::error!(instance = %p.name, error = ?e, "advert not built");
                return;
            }
        }
        return;
    }
    for dst in inst.advert_destinations() {
        // Multicast adverts keep the socket's TTL 255; unicast ones carry unicast_ttl.
        let ttl = if dst.is_multicast() { None } else { p.unicast_ttl };
        let built = s.out.push_with(repr.buffer_len(), src, dst, ttl, |buf| {
            let mut pkt = VrrpPacket::new_unchecked(buf);
            repr.emit(&mut pkt, src, dst, mode)
        });
        if let Err(e) = built {
            tracing::error!(instance = %p.name, error = ?e, "advert not built");
            return;
        }
    }
}

/// How often a refused address change is tried again at once (EBUSY, ENOBUFS, EINTR...), before
/// it counts as failed and the engine takes over with its back-off.
const NETLINK_TRIES: usize = 3;

impl Daemon {
    /// Installs the VIPs of record `idx`; false when one of them could not be.
    fn add_vips(&mut self, idx: usize) -> bool {
        let vips = self.engine.records()[idx].meta.vips.clone();
        let mut ok = true;
        for v in vips {
            ok &= self.add_vip(&v.dev, &v.spec);
        }
        if !ok {
            let name = &self.engine.records()[idx].meta.name;
            tracing::error!(instance = %name, "cannot hold its VIPs: giving up mastership (FAULT), trying again after a back-off");
        }
        ok
    }

    /// Installs the virtual routes and rules of record `idx`, after its VIPs.
    fn install_vroutes(&mut self, idx: usize) {
        let name = self.engine.records()[idx].meta.name.clone();
        let config = self.config.clone();
        if let Some(i) = config.instance(&name) {
            self.routing.sync_instance(&mut self.netlink, &name, &i.virtual_routes, &i.virtual_rules);
        }
    }

    /// The static addresses, routes and rules follow the config (keepalived's VRRP process
    /// installs them: not with `-C`).
    fn sync_statics(&mut self) {
        if !self.opts.vrrp {
            return;
        }
        let config = self.config.clone();
        // keepalived.conf(5): an address without `dev` goes on default_interface (eth0).
        let dev = config.global.default_interface.clone().unwrap_or_else(|| "eth0".to_owned());
        let addrs: Vec<(String, crate::net::AddrSpec)> =
            config.static_ipaddresses.iter().map(|v| (v.dev.clone().unwrap_or_else(|| dev.clone()), plan::addr_spec(v))).collect();
        self.routing.sync_statics(&mut self.netlink, &addrs, &config.static_routes, &config.static_rules);
    }

    /// After a config is applied: an instance that holds its VIPs gets its new routes and rules
    /// (unchanged ones stay as they are); the entries of one that holds none, or is gone, go.
    fn sync_vroutes(&mut self) {
        let config = self.config.clone();
        for name in self.routing.instances() {
            let holding = self.engine.records().iter().any(|r| r.meta.name == name && r.vips() == VipHold::Held);
            match config.instance(&name) {
                Some(i) if holding => self.routing.sync_instance(&mut self.netlink, &name, &i.virtual_routes, &i.virtual_rules),
                _ => self.routing.clear_instance(&mut self.netlink, &name),
            }
        }
    }

    /// Removes the VIPs of record `idx`; false when one of them is still there.
    fn remove_vips(&mut self, idx: usize) -> bool {
        let vips = self.engine.records()[idx].meta.vips.clone();
        let mut ok = true;
        for v in vips {
            // An address another instance holds now stays (two instances may share one).
            let shared = self.engine.records().iter().enumerate().any(|(i, r)| {
                i != idx && r.vips() == VipHold::Held && r.meta.vips.iter().any(|w| w.spec.addr == v.spec.addr && w.dev == v.dev)
            });
            if !shared {
                ok &= self.del_vip(&v.dev, v.spec.addr, v.spec.prefix);
            }
        }
        ok
    }

    fn add_vip(&mut self, dev: &str, spec: &crate::net::AddrSpec) -> bool {
        let mut last = None;
        for _ in 0..NETLINK_TRIES {
            let idx = match self.netlink.link_by_name(dev) {
                Ok(l) => l.index,
                Err(e) => {
                    last = Some(e);
                    break;
                }
            };
            match self.netlink.add_address(idx, spec) {
                Ok(()) => {
                    tracing::info!(dev, vip = %spec.addr, "VIP added");
                    return true;
                }
                Err(e) if is_exists(&e) => return true,
                Err(e) => last = Some(e),
            }
        }
        self.vip_errors += 1;
        if let Some(e) = last {
            tracing::error!(dev, vip = %spec.addr, error = %e, count = self.vip_errors, "VIP not added");
        }
        false
    }

    fn del_vip(&mut self, dev: &str, addr: IpAddr, prefix: u8) -> bool {
        let mut last = None;
        for _ in 0..NETLINK_TRIES {
            // A device that is gone took its addresses with it.
            let Ok(l) = self.netlink.link_by_name(dev) else { return true };
            match self.netlink.del_address(l.index, addr, prefix) {
                Ok(()) => {
                    tracing::info!(dev, vip = %addr, "VIP removed");
                    return true;
                }
                Err(e) if is_missing(&e) => return true,
                Err(e) => last = Some(e),
            }
        }
        self.vip_errors += 1;
        if let Some(e) = last {
            tracing::error!(dev, vip = %addr, error = %e, count = self.vip_errors, "VIP not removed; trying again");
        }
        false
    }

    /// Sends `repeat` gratuitous ARP (IPv4) or unsolicited NA (IPv6) messages for each VIP of
    /// record `idx`, back to back. Pacing (`vrrp_garp_interval`) is the engine's: it asks for one
    /// round at a time, and asks no more once the instance left master.
    fn send_garp(&mut self, idx: usize, repeat: u8) {
        let all: Vec<usize> = (0..self.engine.records()[idx].meta.vips.len()).collect();
        self.send_garp_for(idx, &all, repeat);
    }

    /// Gratuitous ARP / unsolicited NA, `repeat` times, for the VIPs of record `idx` at `which`.
    fn send_garp_for(&mut self, idx: usize, which: &[usize], repeat: u8) {
        // The advert that announced mastership goes first.
        self.flush_adverts();
        let r = &self.engine.records()[idx];
        let (vips, vmac, mac) = (r.meta.vips.clone(), r.meta.vmac.clone(), r.meta.mac);
        for v in which.iter().filter_map(|&i| vips.get(i)) {
            let Ok(link) = self.netlink.link_by_name(&v.dev) else { continue };
            let mac = match &vmac {
                Some(vm) if v.dev == vm.name => vm.mac,
                _ if link.mac != [0; 6] => link.mac,
                _ => mac,
            };
            let frame = match v.spec.addr {
                IpAddr::V4(a) => hav_core::wire::gratuitous_arp_frame(mac, a).to_vec(),
                IpAddr::V6(a) => hav_core::wire::unsolicited_na_frame(mac, a, true).to_vec(),
            };
            // A socket bound to an index the name no longer has (the link was created again)
            // is replaced.
            if self.packets.get(&v.dev).is_none_or(|(index, _)| *index != link.index) {
                match PacketSocket::open(link.index, &v.dev) {
                    Ok(s) => {
                        self.packets.insert(v.dev.clone(), (link.index, s));
                    }
                    Err(e) => {
                        tracing::warn!(dev = %v.dev, error = %e, "packet socket");
                        continue;
                    }
                }
            }
            if let Some((_, s)) = self.packets.get(&v.dev) {
                for _ in 0..repeat {
                    if let Err(e) = s.send_frame(&frame) {
                        tracing::debug!(dev = %v.dev, error = %e, "gratuitous ARP/NA not sent");
                    }
                }
            }
        }
    }

    fn publish_snapshot(&self) {
        // Only priority policies read it; building it costs O(instances) per event.
        if !self.config.vrrp_scripts.iter().any(|s| s.policy.is_some()) {
            return;
        }
        let snap: Vec<_> = self
            .engine
            .records()
            .iter()
            .map(|r| super::track::InstanceSnapshot {
                name: r.meta.name.clone(),
                state: r.instance().state(),
                priority: r.instance().config().priority,
                effective: r.instance().effective_priority(),
                scripts: r
                    .meta
                    .tracks
                    .iter()
                    .filter_map(|t| match &t.obj {
                        TrackObj::Script(n) => Some(n.clone()),
                        _ => None,
                    })
                    .collect(),
            })
            .collect();
        self.snapshot.send_if_modified(|old| {
            if *old != snap {
                *old = snap;
                true
            } else {
                false
            }
        });
    }

    /// After a panic of the VRRP thread: the VIPs this node holds go, after a priority-0 advert
    /// for each master, so the backups take over after their skew time and no address stays on
    /// a node that no longer runs VRRP. Best effort, each step on its own.
    fn release_after_panic(&mut self) {
        for idx in 0..self.engine.len() {
            let r = &self.engine.records()[idx];
            if r.instance().state() == State::Master {
                send_advert(&mut self.socks, &r.meta, r.key(), r.instance(), 0);
            }
        }
        self.flush_adverts();
        self.routing.clear_all(&mut self.netlink);
        for idx in 0..self.engine.len() {
            let r = &self.engine.records()[idx];
            if r.holds_vips() || r.instance().state() == State::Master {
                let vips = r.meta.vips.clone();
                for v in vips {
                    self.del_vip(&v.dev, v.spec.addr, v.spec.prefix);
                }
            }
        }
        for name in std::mem::take(&mut self.vmacs) {
            if let Ok(l) = self.netlink.link_by_name(&name) {
                let _ = self.netlink.delete_link(l.index);
            }
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("hav-linux: the VRRP thread panicked: releasing VIPs");
            // A second panic while unwinding would abort before the VIPs are gone.
            let me = std::panic::AssertUnwindSafe(self);
            let _ = std::panic::catch_unwind(move || {
                let d = me;
                d.0.release_after_panic();
            });
        }
    }
}

/// The member indexes of every sync group, in plan order.
fn sync_groups(config: &Config, plans: &[Planned]) -> anyhow::Result<Vec<Vec<usize>>> {
    let mut out = Vec::new();
    for g in &config.vrrp_sync_groups {
        let mut members = Vec::new();
        for (name, loc) in &g.group {
            let i = plans
                .iter()
                .position(|p| &p.meta.name == name)
                .ok_or_else(|| anyhow::anyhow!("{loc}: vrrp_sync_group {}: no vrrp_instance {name}", g.name))?;
            if out.iter().any(|m: &Vec<usize>| m.contains(&i)) || members.contains(&i) {
                anyhow::bail!("{loc}: vrrp_sync_group {}: vrrp_instance {name} is already in a sync group", g.name);
            }
            members.push(i);
        }
        if members.len() > hav_core::vrrp::MAX_GROUP {
            anyhow::bail!("{}: vrrp_sync_group {}: more than {} members", g.location, g.name, hav_core::vrrp::MAX_GROUP);
        }
        out.push(members);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defs(text: &str) -> (TrackDef, TrackDef) {
        let c = config::load_str(std::path::Path::new("t.conf"), text).expect("config").config;
        (TrackDef::script(&c.vrrp_scripts[0]), TrackDef::file(&c.vrrp_track_files[0]))
    }

    #[test]
    fn a_track_that_only_moved_is_the_same_track() {
        let body = "vrrp_script chk {\n script \"/bin/true\"\n interval 2\n weight -20\n}\nvrrp_track_file tf {\n file /tmp/hav-tf\n}\n";
        let (s0, f0) = defs(body);
        // A reload that adds lines above keeps both (their tasks and status survive it)...
        let (s1, f1) = defs(&format!("! a comment\n\n{body}"));
        assert_eq!(s0, s1);
        assert_eq!(f0, f1);
        // ...while a changed definition is a new one.
        let (s2, f2) = defs(&body.replace("interval 2", "interval 3").replace("/tmp/hav-tf", "/tmp/hav-tf2"));
        assert_ne!(s0, s2);
        assert_ne!(f0, f2);
    }
}
