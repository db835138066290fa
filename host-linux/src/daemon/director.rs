//! The daemon's LVS side: the IPVS [`Director`] on a thread of its own (netlink calls block),
//! fed with config reloads, checker verdicts and VRRP state changes; the [`Checkers`] on the
//! runtime; and the policy set shared by WASM_CHECKs and policy vrrp_scripts.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::mpsc;

use crate::check::Checkers;
use crate::config::check::WasmCheck;
use crate::config::Config;
use crate::daemon::proc::Runner;
use crate::health::{Health, HealthEvent, PolicyRunner};
use crate::lvs::Director;
use crate::policy::PolicySet;

enum Cmd {
    Apply(Box<Config>),
    Health(HealthEvent),
    Vrrp { instance: String, master: bool },
    /// Stop; with `true`, remove the services this director installed.
    Stop(std::sync::mpsc::Sender<()>, bool),
}

/// The director thread and the checkers feeding it.
pub struct Lvs {
    tx: std::sync::mpsc::Sender<Cmd>,
    thread: Option<std::thread::JoinHandle<()>>,
    checkers: Checkers,
    forward: tokio::task::JoinHandle<()>,
    // Declared last: dropped after the checkers' handles.
    rt: CheckRuntime,
}

/// The checkers' own runtime (one worker thread, "hav-check"): thousands of checks never
/// share a thread with the VRRP loop, whose adverts keep their timing.
struct CheckRuntime(Option<tokio::runtime::Runtime>);

impl CheckRuntime {
    fn handle(&self) -> Option<tokio::runtime::Handle> {
        self.0.as_ref().map(|rt| rt.handle().clone())
    }

    fn new() -> std::io::Result<Self> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("hav-check")
            .on_thread_unpark(crate::check::wake_clock)
            .enable_all()
            .build()?;
        Ok(CheckRuntime(Some(rt)))
    }

    fn enter(&self) -> Option<tokio::runtime::EnterGuard<'_>> {
        self.0.as_ref().map(|rt| rt.enter())
    }
}

impl Drop for CheckRuntime {
    fn drop(&mut self) {
        // Dropped from the daemon's async loop, where a blocking shutdown would panic.
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

impl std::fmt::Debug for Lvs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lvs").field("checkers", &self.checkers.len()).finish()
    }
}

/// The current policy set, swapped on reload; checkers hold this and always see the latest.
#[derive(Clone, Default)]
pub struct Policies(Arc<RwLock<Option<PolicySet>>>);

impl std::fmt::Debug for Policies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Policies")
    }
}

impl Policies {
    /// Installs a new set. The one it replaces is dropped on a thread of its own: the last
    /// reference to a set may hold modules (and their code mappings) that only it used, and
    /// this is called from the VRRP loop.
    pub fn set(&self, p: Option<PolicySet>) {
        let old = match self.0.write() {
            Ok(mut g) => std::mem::replace(&mut *g, p),
            Err(_) => return,
        };
        if let Some(old) = old {
            let dropper = std::thread::Builder::new().name("hav-policy-drop".into()).spawn(move || drop(old));
            // Without a thread, the set is dropped here: slower, still correct.
            drop(dropper);
        }
    }

    /// The current set.
    pub fn get(&self) -> Option<PolicySet> {
        self.0.read().ok().and_then(|g| g.clone())
    }
}

impl PolicyRunner for Policies {
    fn check(
        &self,
        check: &WasmCheck,
        target: std::net::SocketAddr,
        timeout: Duration,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Health, String>> + Send>> {
        match self.get() {
            Some(set) => PolicyRunner::check(&set, check, target, timeout),
            None => {
                let p = check.policy.clone();
                Box::pin(async move { Err(format!("policy {p} is not loaded")) })
            }
        }
    }
}

impl Lvs {
    /// Opens the IPVS client, applies `config` and starts its checkers on a runtime of their own.
    /// `fifo` takes the real server and virtual server lines of keepalived's notify FIFOs.
    pub fn start(config: &Config, policies: Policies, fifo: Option<crate::lvs::FifoSink>) -> anyhow::Result<Lvs> {
        let client = crate::ipvs::Client::new().map_err(|e| anyhow::anyhow!("IPVS: {e} (is the ip_vs module loaded?)"))?;
        let mut director = Director::new(client);
        director.set_fifo(fifo);
        match director.apply(config) {
            Ok(r) => tracing::info!(report = %r, "IPVS table applied"),
            Err(e) => tracing::error!("IPVS: {e}"),
        }
        let (tx, rx) = std::sync::mpsc::channel::<Cmd>();
        let rt = CheckRuntime::new()?;
        // Notify and quorum scripts run on the checkers' runtime; their settings (and those of
        // MISC_CHECKs) are read on the director thread, off the caller's (user lookups may
        // block).
        let scripts = (Config { global: config.global.clone(), ..Config::default() }, rt.handle());
        let thread = std::thread::Builder::new().name("hav-ipvs".into()).spawn(move || {
            let (global, handle) = scripts;
            set_scripts(&mut director, &global, handle);
            director_loop(director, rx)
        })?;
        let (htx, mut hrx) = mpsc::unbounded_channel::<HealthEvent>();
        let _in_rt = rt.enter();
        let checkers = Checkers::start(config, htx, Some(Arc::new(policies)));
        let fwd = tx.clone();
        let forward = tokio::spawn(async move {
            while let Some(ev) = hrx.recv().await {
                if fwd.send(Cmd::Health(ev)).is_err() {
                    return;
                }
            }
        });
        tracing::info!(checkers = checkers.len(), virtual_servers = config.virtual_servers.len(), "LVS running");
        drop(_in_rt);
        Ok(Lvs { tx, thread: Some(thread), checkers, forward, rt })
    }

    /// A new config: reconcile the table, keep unchanged checkers.
    pub fn reload(&mut self, config: &Config) {
        let _ = self.tx.send(Cmd::Apply(Box::new(config.clone())));
        let _in_rt = self.rt.enter();
        self.checkers.reload(config);
    }

    /// A VRRP instance changed state (lvs_sync_daemon, ha_suspend).
    pub fn vrrp_state(&self, instance: &str, master: bool) {
        let _ = self.tx.send(Cmd::Vrrp { instance: instance.to_owned(), master });
    }

    /// Stops the checkers, then the director (which removes its services).
    pub fn stop(self) {
        self.stop_with(true);
    }

    /// Stops the checkers, then the director; with `remove` false (`-I`, keepalived's
    /// `--dont-release-ipvs`) the services stay in the kernel as they are.
    pub fn stop_with(mut self, remove: bool) {
        self.forward.abort();
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        if self.tx.send(Cmd::Stop(done_tx, remove)).is_ok() {
            let _ = done_rx.recv_timeout(Duration::from_secs(10));
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The script settings of `config`'s `global_defs` for the director's scripts and the
/// MISC_CHECKs.
fn set_scripts(d: &mut Director, config: &Config, rt: Option<tokio::runtime::Handle>) {
    let runner = Runner::from_config(config);
    runner.clone().install_for_checks();
    d.set_scripts(runner, rt);
}

fn director_loop(mut d: Director, rx: std::sync::mpsc::Receiver<Cmd>) {
    let rt = d.script_runtime();
    while let Ok(cmd) = rx.recv() {
        let r = match cmd {
            Cmd::Apply(c) => {
                set_scripts(&mut d, &c, rt.clone());
                d.apply_owned(*c).map(|r| ("reload", r))
            }
            Cmd::Health(ev) => {
                tracing::info!(vs = ?ev.rs.vs, rs = %ev.rs.rs, checker = ev.checker, health = ?ev.health, "checker verdict");
                d.health(&ev).map(|r| ("health", r))
            }
            Cmd::Vrrp { instance, master } => d.vrrp_state(&instance, master).map(|r| ("vrrp", r)),
            Cmd::Stop(done, remove) => {
                match d.shutdown(remove) {
                    Ok(_) if !remove => tracing::info!("IPVS services left in place (--dont-release-ipvs)"),
                    Ok(r) => tracing::info!(report = %r, "IPVS services removed"),
                    Err(e) => tracing::error!("IPVS shutdown: {e}"),
                }
                let _ = done.send(());
                return;
            }
        };
        match r {
            Ok((why, r)) if !r.is_noop() => tracing::info!(cause = why, report = %r, "IPVS updated"),
            Ok(_) => {}
            Err(e) => tracing::error!("IPVS: {e}"),
        }
    }
}
