//! The IPVS director: keeps the kernel's table equal to what the
//! configuration and the checkers' verdicts ask for, changing only what
//! differs.
//!
//! [`Director`] is synchronous; the daemon runs it on its own thread and
//! feeds it configurations ([`Director::apply`]), checker verdicts
//! ([`Director::health`]) and VRRP state changes ([`Director::vrrp_state`]).
//!
//! Semantics, as keepalived users know them:
//! - a real server is alive when every one of its checkers passes (one with
//!   no checker always is); `alpha` makes a checker start failed;
//! - a dead real server is removed, or kept with weight 0 under
//!   `inhibit_on_failure` (ldirectord's "quiescent");
//! - `quorum`: when the summed weight of the live real servers falls below
//!   `quorum - hysteresis` the virtual server loses quorum (`quorum_down`
//!   runs); it regains it at `quorum + hysteresis` (`quorum_up` runs).
//!   Without quorum and with a `sorry_server`, the sorry server (weight 1)
//!   replaces the real servers; `sorry_server_inhibit` keeps it at weight 0
//!   the rest of the time;
//! - `ha_suspend`: the service exists only while the VRRP instance holding
//!   its virtual address is master;
//! - `lvs_sync_daemon`: master sync while its VRRP instance is master,
//!   backup sync otherwise;
//! - `omega`: [`Director::shutdown`] runs `quorum_down` and the live real
//!   servers' `notify_down`.
//!
//! The first apply reads the kernel's table back and applies the
//! difference; a reload diffs only the virtual servers that changed; a
//! verdict or VRRP change is diffed against the table as last applied, for
//! the services it touches only (see [`Director::apply`]). Services the
//! director never installed are left alone.
//!
//! A virtual server with `announce` (a hav extension) is held as a route for the host's
//! routing daemon while it has quorum, and withdrawn before its services at a clean stop
//! ([`announce`]).

pub mod announce;
pub mod cli;
pub mod mh;
pub mod state;
pub mod table;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::config::{Config, Protocol, RealServer, Script, VirtualServer, VirtualServerKey};
use crate::daemon::proc::{Outcome, Runner};
use crate::health::HealthEvent;
use crate::ipvs::{self, IpvsError, Op, ServiceKey, SyncDaemon, SyncState};

pub use state::Runtime;
pub use table::{DiffCounts, RsView, Table, TableError, TableService};

/// What went wrong in the director.
#[derive(Debug, thiserror::Error)]
pub enum LvsError {
    /// The configuration asks for something IPVS cannot take.
    #[error("{0}")]
    Config(#[from] TableError),
    /// Talking to the kernel failed.
    #[error(transparent)]
    Ipvs(#[from] IpvsError),
    /// Some changes were refused; the others were applied.
    #[error("{} of {} IPVS changes failed; first: {}", .errors.len(), .report.counts.total(), .errors.first().map(|e| e.to_string()).unwrap_or_default())]
    Partial {
        /// What was attempted.
        report: Box<ApplyReport>,
        /// The refusals, each naming its service or real server.
        errors: Vec<IpvsError>,
    },
}

/// What an apply changed, for logs and benchmarks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplyReport {
    /// The changes, by kind.
    pub counts: DiffCounts,
    /// Services the director manages after the apply.
    pub services: usize,
    /// Real servers in them.
    pub dests: usize,
    /// Time spent reading the kernel's table.
    pub dump_time: Duration,
    /// Time spent computing the desired table and the difference.
    pub plan_time: Duration,
    /// Time spent applying the difference.
    pub apply_time: Duration,
    /// Sync daemon change, if any (`"master"`, `"backup"`).
    pub sync: Option<String>,
}

impl ApplyReport {
    /// Whether nothing changed.
    pub fn is_noop(&self) -> bool {
        self.counts.total() == 0 && self.sync.is_none()
    }
}

impl std::fmt::Display for ApplyReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let c = &self.counts;
        write!(
            f,
            "services +{} ~{} -{}, real servers +{} ~{} -{}; table {} services / {} real servers; dump {:.3} ms, plan {:.3} ms, apply {:.3} ms",
            c.services_added,
            c.services_changed,
            c.services_removed,
            c.dests_added,
            c.dests_changed,
            c.dests_removed,
            self.services,
            self.dests,
            self.dump_time.as_secs_f64() * 1e3,
            self.plan_time.as_secs_f64() * 1e3,
            self.apply_time.as_secs_f64() * 1e3,
        )?;
        if let Some(s) = &self.sync {
            write!(f, "; sync daemon {s}")?;
        }
        Ok(())
    }
}

/// Keeps the kernel's IPVS table in line with a configuration and the
/// health of its real servers.
#[derive(Debug)]
pub struct Director {
    client: ipvs::Client,
    config: Option<Config>,
    rt: Runtime,
    /// The kernel's table as last applied (our services only).
    kernel: Table,
    /// Set when the kernel may differ from `kernel` (a refused change).
    dirty: bool,
    owned: BTreeSet<ServiceKey>,
    sync: Option<SyncDaemon>,
    sync_probed: bool,
    prune: bool,
    full_dump: bool,
    run_scripts: bool,
    /// How notify and quorum scripts run (user, script security).
    scripts: Runner,
    /// Where they run; `None` runs each to its end before going on (one-shot commands).
    script_rt: Option<tokio::runtime::Handle>,
    /// Routes of announced virtual servers.
    announcer: announce::Announcer,
    /// Whether `announce` is acted on (off for one-shot commands, which would leave routes).
    announce: bool,
    /// Where real server and virtual server changes go as keepalived's FIFO lines.
    fifo: Option<FifoSink>,
    /// The virtual servers (by FIFO name) whose first FIFO line went out.
    fifo_started: BTreeSet<String>,
}

/// Takes the lines keepalived writes to `notify_fifo` and `lvs_notify_fifo` (newline included).
#[derive(Clone)]
pub struct FifoSink(std::sync::Arc<dyn Fn(String) + Send + Sync>);

impl FifoSink {
    /// A sink calling `f` with each line.
    pub fn new(f: impl Fn(String) + Send + Sync + 'static) -> Self {
        FifoSink(std::sync::Arc::new(f))
    }
}

impl std::fmt::Debug for FifoSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FifoSink")
    }
}

/// A virtual server as keepalived names it in FIFO lines: `[10.0.0.1]:tcp:80`, `FWM 5`, and
/// `[NAME]:0` for a group.
pub fn fifo_vs_name(vs: &VirtualServer) -> String {
    match &vs.key {
        VirtualServerKey::Addr(a) => fifo_trio(*a, vs.protocol),
        VirtualServerKey::Fwmark(m) => format!("FWM {m}"),
        VirtualServerKey::Group(g) => format!("[{g}]:0"),
    }
}

/// `[ADDRESS]:PROTOCOL:PORT`, keepalived's form of an endpoint in FIFO lines.
fn fifo_trio(a: std::net::SocketAddr, p: Protocol) -> String {
    let p = match p {
        Protocol::Tcp => "tcp",
        Protocol::Udp => "udp",
        Protocol::Sctp => "sctp",
    };
    format!("[{}]:{p}:{}", a.ip(), a.port())
}

/// `RS [10.0.0.2]:tcp:80 [10.0.0.1]:tcp:80 UP`: a real server of `vs` came up or went down.
pub fn fifo_rs_line(vs: &VirtualServer, rs: &RealServer, up: bool) -> String {
    format!("RS {} {} {}\n", fifo_trio(rs.addr, vs.protocol), fifo_vs_name(vs), if up { "UP" } else { "DOWN" })
}

/// `VS [10.0.0.1]:tcp:80 DOWN`: `vs` gained or lost its quorum.
pub fn fifo_vs_line(vs: &VirtualServer, up: bool) -> String {
    format!("VS {} {}\n", fifo_vs_name(vs), if up { "UP" } else { "DOWN" })
}

/// How long a `notify_up`/`notify_down`/`quorum_up`/`quorum_down` script may run before its
/// process group is killed.
pub const SCRIPT_TIMEOUT: Duration = Duration::from_secs(30);

/// How long [`Director::shutdown`] waits for its `omega` scripts.
const OMEGA_WAIT: Duration = Duration::from_secs(5);

impl Director {
    /// A director that programs the kernel through `client`.
    pub fn new(client: ipvs::Client) -> Self {
        Director {
            client,
            config: None,
            rt: Runtime::new(),
            kernel: Table::new(),
            dirty: true,
            owned: BTreeSet::new(),
            sync: None,
            sync_probed: false,
            prune: false,
            full_dump: false,
            run_scripts: true,
            scripts: Runner::new(false, None),
            script_rt: None,
            announcer: announce::Announcer::new(),
            announce: true,
            fifo: None,
            fifo_started: BTreeSet::new(),
        }
    }

    /// Where real server and virtual server changes are written as keepalived's FIFO lines.
    pub fn set_fifo(&mut self, sink: Option<FifoSink>) {
        self.fifo = sink;
    }

    fn fifo_line(&self, line: String) {
        if let Some(f) = &self.fifo {
            (f.0)(line);
        }
    }

    /// Whether to hold the routes of announced virtual servers (default on). A one-shot
    /// command turns it off: its routes would outlive it.
    pub fn set_announce(&mut self, on: bool) {
        self.announce = on;
    }

    /// The routes held for announced virtual servers.
    pub fn announced(&self) -> &std::collections::BTreeSet<crate::net::route::HostRoute> {
        self.announcer.held()
    }

    /// Holds the route of each announced virtual server that has quorum, is not suspended and
    /// has all its services in the kernel; withdraws the others.
    fn sync_routes(&mut self) {
        if !self.announce {
            return;
        }
        let Director { config, rt, kernel, announcer, .. } = self;
        let Some(config) = config.as_ref() else { return };
        announcer.reconcile(config, |vi| {
            let vs = &config.virtual_servers[vi];
            rt.active(config, vs)
                && rt.quorum_up(vs)
                && table::service_keys(vs, &config.virtual_server_groups).iter().all(|k| kernel.contains_key(k))
        });
    }

    /// Runs notify and quorum scripts with `runner`'s settings (`script_user`,
    /// `enable_script_security`) on `rt`, without waiting for them. Without a runtime (the
    /// default), each runs to its end, or its timeout, before the director goes on.
    pub fn set_scripts(&mut self, runner: Runner, rt: Option<tokio::runtime::Handle>) {
        self.scripts = runner;
        self.script_rt = rt;
    }

    /// The runtime scripts run on, if any.
    pub fn script_runtime(&self) -> Option<tokio::runtime::Handle> {
        self.script_rt.clone()
    }

    /// Runs a notify/quorum script through the one script path ([`Runner::run`]): its user,
    /// script security, a clean environment, its process group killed after [`SCRIPT_TIMEOUT`].
    /// Returns the task when it runs on the script runtime.
    fn run_script(&self, s: &Script, what: &'static str) -> Option<tokio::task::JoinHandle<()>> {
        tracing::info!(script = %s.command, "running {what} script");
        let (runner, script) = (self.scripts.clone(), s.clone());
        let job = async move {
            let label = format!("{what} {}", script.command);
            match runner.run(&script, None, &[], SCRIPT_TIMEOUT, &label).await {
                Outcome::NoResources(e) => crate::resource::report_exhaustion(&label, &e),
                o @ (Outcome::Exited(_) | Outcome::Signaled(_)) if !o.success() => {
                    tracing::warn!(script = %script.command, outcome = ?o, "{what} script failed")
                }
                // Refusals and timeouts were logged by the runner.
                _ => {}
            }
        };
        match &self.script_rt {
            Some(rt) => Some(rt.spawn(job)),
            None => {
                match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    Ok(rt) => rt.block_on(job),
                    Err(e) => tracing::warn!(script = %s.command, error = %e, "cannot run {what} script"),
                }
                None
            }
        }
    }

    /// Treat checkers that have not reported yet as passing even under
    /// `alpha` (for one-shot applies without checkers).
    pub fn set_assume_up(&mut self, on: bool) {
        self.rt.set_assume_up(on);
    }

    /// Manage every service in the kernel: on [`Director::apply`], delete
    /// the services the config does not name even if this director did not
    /// install them (off by default: other tools' services are left alone).
    pub fn set_prune(&mut self, on: bool) {
        self.prune = on;
    }

    /// Whether to run notify and quorum scripts (default on).
    pub fn set_run_scripts(&mut self, on: bool) {
        self.run_scripts = on;
    }

    /// The IPVS client.
    pub fn client(&mut self) -> &mut ipvs::Client {
        &mut self.client
    }

    /// The table as last applied (the director's services only).
    pub fn table(&self) -> &Table {
        &self.kernel
    }

    /// Loads (or reloads) `config` and reconciles the kernel's table with
    /// it, applying only the difference (never a flush or rebuild).
    ///
    /// The first apply, any apply after a refused change, and every apply
    /// with [`Director::set_full_dump`] or [`Director::set_prune`] read the
    /// kernel's table back (services and their real servers) and diff the
    /// whole configuration against it. Other reloads read the services back
    /// and, when they are exactly as last applied, diff only the virtual
    /// servers that changed ([`state::same_for_director`]), appeared or
    /// went away, against the table as last applied; otherwise they fall
    /// back to the full read. [`Director::resync`] forces one.
    pub fn apply(&mut self, config: &Config) -> Result<ApplyReport, LvsError> {
        self.apply_owned(config.clone())
    }

    /// [`Director::apply`] without copying the configuration (the director
    /// keeps it until the next one).
    pub fn apply_owned(&mut self, config: Config) -> Result<ApplyReport, LvsError> {
        let r = self.apply_table(config);
        self.sync_routes();
        self.fifo_first_lines();
        r
    }

    /// keepalived's FIFO line for a virtual server it starts: `VS ... UP` with its quorum, `VS
    /// ... DOWN` without it when a sorry server stands in (nothing otherwise); once per virtual
    /// server, at start or when a reload adds it.
    fn fifo_first_lines(&mut self) {
        let Director { config, rt, fifo, fifo_started, .. } = self;
        let (Some(config), Some(fifo)) = (config.as_ref(), fifo.as_ref()) else { return };
        let names: BTreeSet<String> = config.virtual_servers.iter().map(fifo_vs_name).collect();
        fifo_started.retain(|n| names.contains(n));
        for vs in &config.virtual_servers {
            if !fifo_started.insert(fifo_vs_name(vs)) {
                continue;
            }
            let up = rt.quorum_up(vs);
            if up || vs.sorry_server.is_some() {
                (fifo.0)(fifo_vs_line(vs, up));
            }
        }
    }

    fn apply_table(&mut self, config: Config) -> Result<ApplyReport, LvsError> {
        let t0 = Instant::now();
        let mut current = Table::new();
        for s in self.client.services()? {
            current.insert(s.service.key, TableService { service: s.service, dests: Vec::new() });
        }
        let dump_services = t0.elapsed();
        let config = match self.apply_incremental(config, &current, dump_services)? {
            Ok(r) => return Ok(r),
            Err(config) => config,
        };
        let config = &config;
        let t_plan = Instant::now();
        if self.prune {
            self.owned.extend(current.keys().copied());
        }
        self.rt.adopt(config);
        let desired = self.rt.desired(config)?;
        // Every service the config names is ours, installed or not (an
        // ha_suspend one left by an earlier run must go when suspended).
        for vs in &config.virtual_servers {
            self.owned.extend(table::service_keys(vs, &config.virtual_server_groups));
        }
        let mut plan_time = t_plan.elapsed();
        // Only the services we care about need their real servers, and
        // only those the cache cannot vouch for need reading.
        let t1 = Instant::now();
        let keys: Vec<ServiceKey> = current
            .keys()
            .filter(|k| desired.contains_key(k) || self.owned.contains(k))
            .copied()
            .collect();
        let mut dumped = 0;
        for k in keys {
            let cached = match self.kernel.get(&k) {
                Some(c) if !self.dirty && !self.full_dump && Some(&c.service) == current.get(&k).map(|t| &t.service) => {
                    Some(c.dests.clone())
                }
                _ => None,
            };
            let dests = match cached {
                Some(d) => d,
                None => {
                    dumped += 1;
                    self.client.dests(&k)?.into_iter().map(|e| e.dest).collect()
                }
            };
            if let Some(t) = current.get_mut(&k) {
                t.dests = dests;
            }
        }
        let dump_time = dump_services + t1.elapsed();
        tracing::debug!(services = current.len(), dumped, "IPVS table read");
        let t2 = Instant::now();
        let ops = table::diff(&current, &desired, &self.owned);
        current.retain(|k, _| desired.contains_key(k) || self.owned.contains(k));
        self.kernel = current;
        self.owned = desired.keys().copied().collect();
        plan_time += t2.elapsed();
        self.config = Some(config.clone());
        let mut report = self.run(ops, dump_time, plan_time)?;
        report.sync = self.reconcile_sync()?;
        Ok(report)
    }

    /// A reload that only looks at the virtual servers that changed, when
    /// the cache can be trusted: the services read back (`current`) are the
    /// ones last applied, with the same settings. `None` when it cannot be
    /// used.
    fn apply_incremental(
        &mut self,
        config: Config,
        current: &Table,
        dump_time: Duration,
    ) -> Result<Result<ApplyReport, Config>, LvsError> {
        if self.dirty || self.full_dump || self.prune {
            return Ok(Err(config));
        }
        let Some(prev) = self.config.take() else { return Ok(Err(config)) };
        // Every service we hold must still be there, unchanged; nothing we
        // do not hold may sit on a key we own.
        let intact = self.kernel.iter().all(|(k, t)| current.get(k).map(|c| &c.service) == Some(&t.service))
            && self.owned.iter().all(|k| current.contains_key(k) == self.kernel.contains_key(k));
        if !intact {
            self.config = Some(prev);
            return Ok(Err(config));
        }
        let config_owned = config;
        let config = &config_owned;
        let t = Instant::now();
        let groups_same = prev.virtual_server_groups.len() == config.virtual_server_groups.len()
            && prev.virtual_server_groups.iter().zip(&config.virtual_server_groups).all(|(a, b)| a.name == b.name && a.entries == b.entries);
        let vips = |c: &Config| -> Vec<(String, Vec<std::net::IpAddr>)> {
            c.vrrp_instances
                .iter()
                .map(|i| (i.name.clone(), i.virtual_ipaddresses.iter().chain(&i.virtual_ipaddresses_excluded).map(|v| v.address).collect()))
                .collect()
        };
        let vrrp_same = vips(&prev) == vips(config);
        let same: Vec<bool> = config
            .virtual_servers
            .iter()
            .enumerate()
            .map(|(vi, vs)| {
                prev.virtual_servers.get(vi).is_some_and(|p| state::same_for_director(p, vs))
                    && (groups_same || !matches!(vs.key, crate::config::VirtualServerKey::Group(_)))
                    && (vrrp_same || !vs.ha_suspend)
            })
            .collect();
        self.rt.adopt_keeping(config, |vi| same[vi]);
        let desired = self.rt.desired_of(config, |vi| !same[vi])?;
        let mut kept = BTreeSet::new();
        let mut named = BTreeSet::new();
        for (vi, vs) in config.virtual_servers.iter().enumerate() {
            let keys = table::service_keys(vs, &config.virtual_server_groups);
            if same[vi] {
                kept.extend(keys);
            } else {
                named.extend(keys);
            }
        }
        // Changed and new virtual servers, and whatever we owned that no
        // unchanged one still names (removed virtual servers).
        let mut scope: BTreeSet<ServiceKey> = named.iter().copied().collect();
        scope.extend(self.owned.iter().filter(|k| !kept.contains(k)).copied());
        let ops = table::diff_scoped(&self.kernel, &desired, &scope);
        self.owned.retain(|k| !scope.contains(k));
        self.owned.extend(desired.keys().copied());
        let plan_time = t.elapsed();
        self.config = Some(config_owned);
        let mut report = self.run(ops, dump_time, plan_time)?;
        report.sync = self.reconcile_sync()?;
        Ok(Ok(report))
    }

    /// Reads the whole kernel table again and reconciles the current
    /// configuration against it (repairs changes made behind our back).
    pub fn resync(&mut self) -> Result<ApplyReport, LvsError> {
        let Some(config) = self.config.take() else { return Ok(ApplyReport::default()) };
        self.dirty = true;
        self.apply_owned(config)
    }

    /// Read every real server back from the kernel on every apply (slower
    /// reloads; off by default).
    pub fn set_full_dump(&mut self, on: bool) {
        self.full_dump = on;
    }

    /// Applies `ops`, updates the cached table and counts.
    fn run(&mut self, ops: Vec<Op>, dump_time: Duration, plan_time: Duration) -> Result<ApplyReport, LvsError> {
        let t = Instant::now();
        let results = if ops.is_empty() {
            Vec::new()
        } else {
            match self.client.apply(&ops) {
                Ok(r) => r,
                Err(e) => {
                    // The socket failed mid-batch: what the kernel holds is unknown.
                    self.dirty = true;
                    return Err(e.into());
                }
            }
        };
        let apply_time = t.elapsed();
        let mut errors = Vec::new();
        let mut done = Vec::with_capacity(ops.len());
        for (op, r) in ops.iter().zip(results) {
            match r {
                Ok(()) => done.push(op.clone()),
                Err(e) => {
                    tracing::warn!(error = %e, "IPVS change refused");
                    errors.push(e);
                }
            }
        }
        table::apply_ops(&mut self.kernel, &done);
        let report = ApplyReport {
            counts: DiffCounts::of(&ops),
            services: self.kernel.len(),
            dests: self.kernel.values().map(|s| s.dests.len()).sum(),
            dump_time,
            plan_time,
            apply_time,
            sync: None,
        };
        if !ops.is_empty() {
            tracing::debug!(%report, "IPVS table reconciled");
        }
        if errors.is_empty() {
            self.dirty = false;
            Ok(report)
        } else {
            self.dirty = true;
            Err(LvsError::Partial { report: Box::new(report), errors })
        }
    }

    /// Reconciles the services of the virtual servers `which` (indices into
    /// the config) against the cached table; a full [`Director::apply`] when
    /// the cache is not trusted.
    fn reconcile_some(&mut self, which: &[usize]) -> Result<ApplyReport, LvsError> {
        let Some(config) = self.config.take() else { return Ok(ApplyReport::default()) };
        if self.dirty {
            return self.apply_owned(config);
        }
        let t = Instant::now();
        let result = (|| {
            let desired = self.rt.desired_of(&config, |vi| which.contains(&vi))?;
            let mut scope = BTreeSet::new();
            for &vi in which {
                scope.extend(table::service_keys(&config.virtual_servers[vi], &config.virtual_server_groups));
            }
            let ops = table::diff_scoped(&self.kernel, &desired, &scope);
            for k in &scope {
                if desired.contains_key(k) {
                    self.owned.insert(*k);
                }
            }
            Ok::<_, LvsError>(ops)
        })();
        self.config = Some(config);
        let ops = result?;
        self.run(ops, Duration::ZERO, t.elapsed())
    }

    /// A checker's verdict. Reconciles only the services of its virtual
    /// server, and only if the verdict changes the real server's state.
    pub fn health(&mut self, ev: &HealthEvent) -> Result<ApplyReport, LvsError> {
        let Some(config) = self.config.as_ref() else { return Ok(ApplyReport::default()) };
        let Some(ch) = self.rt.verdict(config, ev) else { return Ok(ApplyReport::default()) };
        let vs = &config.virtual_servers[ch.vs];
        let rs = &vs.real_servers[ch.rs];
        if let Some(alive) = ch.alive {
            tracing::info!(rs = %rs.addr, vs = ?vs.key, alive, "real server state changed");
            let s = if alive { &rs.notify_up } else { &rs.notify_down };
            if let (Some(s), true) = (s, self.run_scripts) {
                let _ = self.run_script(s, if alive { "notify_up" } else { "notify_down" });
            }
            self.fifo_line(fifo_rs_line(vs, rs, alive));
        }
        if let Some(q) = ch.quorum {
            tracing::info!(vs = ?vs.key, quorum = q, "virtual server quorum changed");
            let s = if q { &vs.quorum_up } else { &vs.quorum_down };
            if let (Some(s), true) = (s, self.run_scripts) {
                let _ = self.run_script(s, if q { "quorum_up" } else { "quorum_down" });
            }
            self.fifo_line(fifo_vs_line(vs, q));
        }
        let r = self.reconcile_some(&[ch.vs]);
        if ch.quorum.is_some() {
            self.sync_routes();
        }
        r
    }

    /// A VRRP instance became master (`true`) or left master. Installs or
    /// removes the `ha_suspend` services its addresses carry, and moves the
    /// `lvs_sync_daemon` between master and backup.
    pub fn vrrp_state(&mut self, instance: &str, master: bool) -> Result<ApplyReport, LvsError> {
        if !self.rt.set_master(instance, master) {
            return Ok(ApplyReport::default());
        }
        let Some(config) = self.config.as_ref() else { return Ok(ApplyReport::default()) };
        let which: Vec<usize> =
            config.virtual_servers.iter().enumerate().filter(|(_, vs)| vs.ha_suspend).map(|(i, _)| i).collect();
        let r = if which.is_empty() { Ok(ApplyReport::default()) } else { self.reconcile_some(&which) };
        self.sync_routes();
        let mut report = r?;
        report.sync = self.reconcile_sync()?;
        Ok(report)
    }

    /// Starts, switches or stops the sync daemon to match the config and
    /// the VRRP state; returns the new role when it changed.
    fn reconcile_sync(&mut self) -> Result<Option<String>, LvsError> {
        let want = self.config.as_ref().and_then(|c| c.global.lvs_sync_daemon.clone()).map(|d| {
            let state = if self.rt.is_master(&d.instance) { SyncState::Master } else { SyncState::Backup };
            SyncDaemon {
                state,
                ifname: d.interface.clone(),
                sync_id: u32::from(d.id.unwrap_or(0)),
                maxlen: d.maxlen,
                group: d.group,
                port: d.port,
                ttl: d.ttl,
            }
        });
        if !self.sync_probed && want.is_some() {
            // Learn what runs: a previous run of ours may have left one.
            self.sync_probed = true;
            let running = self.client.daemons()?;
            let same = |r: &SyncDaemon, w: &SyncDaemon| r.state == w.state && r.ifname == w.ifname && r.sync_id == w.sync_id;
            self.sync = match want.as_ref() {
                Some(w) if running.iter().any(|r| same(r, w)) => want.clone(),
                _ => running.into_iter().next(),
            };
        }
        if want == self.sync {
            return Ok(None);
        }
        if let Some(old) = self.sync.take() {
            match self.client.stop_daemon(old.state) {
                Ok(()) => {}
                Err(e) if e.errno() == Some(libc::ESRCH) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let Some(w) = want else { return Ok(Some("stopped".into())) };
        match self.client.start_daemon(&w) {
            Ok(()) => {}
            Err(e) if e.errno() == Some(libc::EEXIST) => {}
            Err(e) => return Err(e.into()),
        }
        let name = match w.state {
            SyncState::Master => "master",
            SyncState::Backup => "backup",
        };
        tracing::info!(interface = %w.ifname, sync_id = w.sync_id, "IPVS sync daemon now {name}");
        self.sync = Some(w);
        Ok(Some(name.into()))
    }

    /// Stops directing: runs the `omega` scripts (`quorum_down` of virtual
    /// servers with quorum, `notify_down` of live real servers), and with
    /// `remove` deletes the services this director installed and stops the
    /// sync daemon.
    pub fn shutdown(&mut self, remove: bool) -> Result<ApplyReport, LvsError> {
        // Announced virtual servers: the routing daemon withdraws them, then the connections
        // still arriving here drain for a while before the services go.
        if self.announce {
            let drain = self.announcer.withdraw_all();
            if !drain.is_zero() {
                tracing::info!(drain_s = drain.as_secs_f64(), "announced routes withdrawn; draining before the IPVS services go");
                std::thread::sleep(drain);
            }
        }
        if let (Some(config), true) = (self.config.as_ref(), self.run_scripts) {
            let mut running = Vec::new();
            for vs in config.virtual_servers.iter().filter(|v| v.omega) {
                if self.rt.quorum_up(vs) {
                    if let Some(s) = &vs.quorum_down {
                        running.extend(self.run_script(s, "quorum_down"));
                    }
                }
                for (rs, view) in vs.real_servers.iter().zip(self.rt.views(vs)) {
                    if view.alive {
                        if let Some(s) = &rs.notify_down {
                            running.extend(self.run_script(s, "notify_down"));
                        }
                        self.fifo_line(fifo_rs_line(vs, rs, false));
                    }
                }
                // After its real servers, as keepalived writes them.
                if self.rt.quorum_up(vs) {
                    self.fifo_line(fifo_vs_line(vs, false));
                }
            }
            // The runtime they run on stops with the director: wait for them (a while). A task
            // on that runtime reports when they are done and this thread waits on a plain
            // channel: `Handle::block_on` here could panic (a thread that entered a runtime), and
            // a panic would leave the services in the kernel.
            if let (Some(rt), false) = (&self.script_rt, running.is_empty()) {
                let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
                rt.spawn(async move {
                    for t in running {
                        let _ = t.await;
                    }
                    let _ = done_tx.send(());
                });
                let _ = done_rx.recv_timeout(OMEGA_WAIT);
            }
        }
        if !remove {
            return Ok(ApplyReport::default());
        }
        let ops: Vec<Op> = self.owned.iter().filter(|k| self.kernel.contains_key(k)).map(|k| Op::DelService(*k)).collect();
        let report = self.run(ops, Duration::ZERO, Duration::ZERO);
        // The VIPs stop being local only once their services are gone.
        self.announcer.release();
        let report = report?;
        self.owned.clear();
        if let Some(s) = self.sync.take() {
            let _ = self.client.stop_daemon(s.state);
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// keepalived's FIFO lines: `[ADDRESS]:PROTOCOL:PORT` for endpoints, `FWM N` for a fwmark
    /// service, `[NAME]:0` for a group; IPv6 addresses bare inside the brackets.
    #[test]
    fn fifo_lines_name_services_as_keepalived() {
        let text = "virtual_server_group G {\n 10.0.0.9 80\n}\n\
                    virtual_server 10.0.0.1 80 {\n real_server 10.0.0.2 8080 {\n }\n}\n\
                    virtual_server fwmark 5 {\n protocol UDP\n real_server 10.0.0.3 0 {\n }\n}\n\
                    virtual_server group G {\n real_server 10.0.0.4 80 {\n }\n}\n\
                    virtual_server fd00::1 443 {\n protocol SCTP\n real_server fd00::2 443 {\n }\n}\n";
        let c = crate::config::load_str(std::path::Path::new("t.conf"), text).expect("config").config;
        let [a, f, g, six] = [0, 1, 2, 3].map(|i| &c.virtual_servers[i]);
        assert_eq!(fifo_rs_line(a, &a.real_servers[0], true), "RS [10.0.0.2]:tcp:8080 [10.0.0.1]:tcp:80 UP\n");
        assert_eq!(fifo_vs_line(a, false), "VS [10.0.0.1]:tcp:80 DOWN\n");
        assert_eq!(fifo_rs_line(f, &f.real_servers[0], false), "RS [10.0.0.3]:udp:0 FWM 5 DOWN\n");
        assert_eq!(fifo_vs_line(f, true), "VS FWM 5 UP\n");
        assert_eq!(fifo_rs_line(g, &g.real_servers[0], true), "RS [10.0.0.4]:tcp:80 [G]:0 UP\n");
        assert_eq!(fifo_rs_line(six, &six.real_servers[0], true), "RS [fd00::2]:sctp:443 [fd00::1]:sctp:443 UP\n");
    }
}
