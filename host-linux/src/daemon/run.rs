//! The daemon loop: sockets, link events, tracked objects and the control socket become
//! hav-core inputs; the actions that come back become adverts, addresses, gratuitous ARP / NA
//! and notifications.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use hav_core::vrrp::{Action, Advert, AdminMode, Input, Instance, State, TrackId, TrackStatus, Tracked};
use hav_core::wire::{VrrpPacket, VrrpRepr};
use serde_json::json;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::control::{self, Envelope};
use super::engine::{Engine, Tagged};
use super::notify::{Kind, Notifier};
use super::plan::{self, IfaceInfo, InstancePlan, TrackObj};
use super::proc::{self, Creds};
use super::track::{self, TrackEvent};
use crate::config::{self, Config};
use crate::net::{Family, LinkEvent, LinkWatcher, Netlink, NetError, Outbox, PacketSocket, Received, SysctlGuard, VrrpSocket};

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

/// The daemon's VRRP sockets by interface name, IPv4 at `[0]` and IPv6 at `[1]` (looked up by
/// `&str` on every advert, with no key to build).
type Socks = [HashMap<String, RxSock>; 2];

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
        let n = socks[0].len() + socks[1].len();
        self.first = if n == 0 { 0 } else { (self.first + 1) % n };
        let mut used = 0;
        for s in socks[0].values().chain(socks[1].values()).cycle().skip(self.first).take(n).filter(|s| s.receive) {
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
}

struct Daemon {
    opts: RunOptions,
    config: Config,
    plans: Vec<InstancePlan>,
    engine: Engine,
    netlink: Netlink,
    start: std::time::Instant,
    // Sending on every interface adverts leave from; receiving on base interfaces only.
    socks: Socks,
    /// AF_PACKET sockets for gratuitous ARP / NA by device name, with the index they are bound to.
    packets: HashMap<String, (u32, PacketSocket)>,
    track_tx: mpsc::Sender<TrackEvent>,
    track_ids: HashMap<TrackObj, TrackId>,
    track_status: HashMap<TrackObj, TrackStatus>,
    track_tasks: HashMap<TrackObj, (JoinHandle<()>, TrackDef)>,
    creds: Option<Creds>,
    notifier: Notifier,
    group_state: HashMap<String, State>,
    held: Vec<bool>,
    vmacs: Vec<String>,
    sysctl: SysctlGuard,
    send_errors: u64,
    policies: super::director::Policies,
    lvs: Option<super::director::Lvs>,
    snapshot: tokio::sync::watch::Sender<Vec<super::track::InstanceSnapshot>>,
}

/// Runs the daemon until SIGTERM / SIGINT. Call inside a tokio runtime.
pub async fn run(opts: RunOptions, loaded: config::Loaded) -> anyhow::Result<()> {
    let netlink = Netlink::new().context("opening rtnetlink")?;
    let (track_tx, mut track_rx) = mpsc::channel::<TrackEvent>(256);
    let (ctl_tx, mut ctl_rx) = mpsc::channel::<Envelope>(16);
    let creds = proc::default_creds(&loaded.config).map_err(anyhow::Error::msg)?;
    let notifier = Notifier::new(&loaded.config, creds);
    let mut d = Daemon {
        opts: opts.clone(),
        config: Config::default(),
        plans: Vec::new(),
        engine: Engine::new(),
        netlink,
        start: std::time::Instant::now(),
        socks: Default::default(),
        packets: HashMap::new(),
        track_tx,
        track_ids: HashMap::new(),
        track_status: HashMap::new(),
        track_tasks: HashMap::new(),
        creds,
        notifier,
        group_state: HashMap::new(),
        held: Vec::new(),
        vmacs: Vec::new(),
        sysctl: SysctlGuard::new(),
        send_errors: 0,
        policies: super::director::Policies::default(),
        lvs: None,
        snapshot: tokio::sync::watch::channel(Vec::new()).0,
    };
    d.policies.set(load_policies(&opts.policies, &loaded.config)?);
    let mut watcher = LinkWatcher::new().context("watching links")?;
    let scrapes = ctl_tx.clone();
    let _ctl = control::serve(&opts.control, ctl_tx)
        .with_context(|| format!("control socket {}", opts.control.display()))?;
    let _pid = PidFile::create(&opts.pid_file)?;
    if let Some(addr) = opts.metrics {
        super::metrics::serve(addr, scrapes).await?;
    }
    if opts.lvs && !loaded.config.virtual_servers.is_empty() {
        // Without IPVS (no ip_vs module, no privilege) the VRRP side still runs, as keepalived's
        // does when its checker process cannot start.
        match super::director::Lvs::start(&loaded.config, d.policies.clone()) {
            Ok(l) => d.lvs = Some(l),
            Err(e) => tracing::error!("LVS disabled, VRRP continues: {e:#}"),
        }
    }
    d.apply(loaded.config)?;
    tracing::info!(instances = d.plans.len(), "hav-linux running");

    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    let mut rx = RxBatch::new();
    let mut timer = crate::net::PreciseTimer::new().context("timerfd")?;
    loop {
        d.flush_adverts();
        d.publish_snapshot();
        timer.arm(d.next_wakeup());
        tokio::select! {
            () = std::future::poll_fn(|cx| rx.poll_fill(cx, &d.socks)) => d.on_batch(&rx),
            Some(ev) = track_rx.recv() => d.on_track(ev.obj, ev.status),
            Some((req, reply)) = ctl_rx.recv() => {
                let r = d.on_control(&req);
                let _ = reply.send(r);
            }
            ev = watcher.next() => match ev {
                Ok(ev) => d.on_link(ev),
                Err(e) => tracing::warn!(error = %e, "link watcher"),
            },
            () = timer.fired() => {
                let now = d.now();
                let acts = d.engine.poll(now);
                d.exec(acts);
            }
            _ = hup.recv() => d.reload(),
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    d.shutdown();
    // The FIFO line of the STOP goes out through the writer task; give it a moment too.
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    d.notifier.drain(std::time::Duration::from_secs(5)).await;
    Ok(())
}

struct PidFile(PathBuf);

impl PidFile {
    fn create(path: &std::path::Path) -> anyhow::Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).ok();
        }
        std::fs::write(path, format!("{}\n", std::process::id()))
            .with_context(|| format!("writing pid file {}", path.display()))?;
        Ok(PidFile(path.to_owned()))
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
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

impl Daemon {
    fn now(&self) -> hav_core::Instant {
        hav_core::Instant::from_micros(u64::try_from(self.start.elapsed().as_micros()).unwrap_or(u64::MAX))
    }

    /// When the loop must wake for the timers. Master_Down and other deciding timers wake it
    /// at their deadline, to the microsecond. A master's advert timer is rounded up to a grid
    /// of a twentieth of its interval (1 to 10 ms), so that the adverts of many instances leave
    /// together: one wake-up and one `sendmmsg` here, one wake-up of each peer, instead of one
    /// per advert. An advert up to 5% late is far inside any peer's Master_Down_Interval.
    fn next_wakeup(&mut self) -> Option<std::time::Instant> {
        let (t, advert) = self.engine.next_timer()?;
        let us = t.total_micros();
        let us = match advert {
            Some(int) => {
                let grid = (int.total_micros() / 20).clamp(1_000, 10_000);
                us.div_ceil(grid) * grid
            }
            None => us,
        };
        Some(self.start + std::time::Duration::from_micros(us))
    }

    /// Plans the VRRP instances of `config` (none without VRRP) and their sync groups, touching
    /// nothing.
    fn plan(&mut self, config: &Config) -> anyhow::Result<(Vec<InstancePlan>, Vec<Vec<usize>>)> {
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

    /// Applies a config: the first one at startup, later ones on reload. On error nothing has
    /// changed.
    fn apply(&mut self, new: Config) -> anyhow::Result<()> {
        let (plans, groups) = self.plan(&new)?;
        self.apply_planned(new, plans, groups)
    }

    fn apply_planned(&mut self, new: Config, plans: Vec<InstancePlan>, groups: Vec<Vec<usize>>) -> anyhow::Result<()> {
        // Old instances, by name.
        let old_engine = std::mem::take(&mut self.engine);
        let old_plans = std::mem::take(&mut self.plans);
        let old_held = std::mem::take(&mut self.held);
        let mut old: HashMap<String, (InstancePlan, Instance, bool)> = HashMap::new();
        for ((p, i), h) in old_plans.into_iter().zip(old_engine.into_instances()).zip(old_held) {
            old.insert(p.name.clone(), (p, i, h));
        }

        self.config = new;
        self.sync_tracks();
        for p in &plans {
            self.ensure_vmac(p);
            self.ensure_socket(&p.iface.name, p.key.ipv6, true);
            let x = p.xmit_iface().to_owned();
            self.ensure_socket(&x, p.key.ipv6, false);
        }

        let now = self.now();
        let mut pending: Vec<(usize, Vec<Input<'static>>, bool)> = Vec::new();
        let mut old_vips_to_drop: Vec<(String, IpAddr, u8)> = Vec::new();
        for p in &plans {
            let kept = old.remove(&p.name);
            let (inst, held, inputs, quiet) = match kept {
                Some((op, inst, held)) if op.same_election(p) => (inst, held, vec![], false),
                Some((op, oinst, held)) => {
                    let was = oinst.state();
                    if held {
                        for v in &op.vips {
                            if !p.vips.iter().any(|n| n.spec.addr == v.spec.addr && n.dev == v.dev) {
                                old_vips_to_drop.push((v.dev.clone(), v.spec.addr, v.spec.prefix));
                            }
                        }
                    }
                    tracing::info!(instance = %p.name, state = was.as_str(), "config changed; restarting the election in the same state");
                    let inst = self.new_instance(p);
                    let mut inputs = vec![Input::Startup];
                    if was == State::Master {
                        inputs.push(Input::Sync(State::Master));
                    }
                    (inst, held && was == State::Master, inputs, true)
                }
                None => (self.new_instance(p), false, vec![Input::Startup], false),
            };
            let idx = self
                .engine
                .add(p.name.clone(), p.key, inst)
                .ok_or_else(|| anyhow::anyhow!("{}: duplicate VRID", p.name))?;
            self.held.push(held);
            pending.push((idx, inputs, quiet));
        }
        for members in &groups {
            self.engine.add_group(members);
        }
        self.plans = plans;

        // Instances gone from the config stop.
        for (name, (op, mut inst, held)) in old {
            tracing::info!(instance = %name, "removed from the config; stopping");
            let acts = inst.handle(now, Input::Shutdown);
            for a in &acts {
                if let Action::SendAdvert { priority } = a {
                    self.send_advert_for(&op, &inst, *priority);
                }
            }
            if held {
                for v in &op.vips {
                    self.del_vip(&v.dev, v.spec.addr, v.spec.prefix);
                }
            }
            self.notifier.changed(Kind::Instance, &name, &op.notify, "STOP", 0, op.smtp_alert);
        }
        for (idx, inputs, quiet) in pending {
            for input in inputs {
                let acts = self.engine.handle(idx, now, input);
                self.exec_quiet(acts, quiet);
            }
        }
        for (dev, addr, prefix) in old_vips_to_drop {
            self.del_vip(&dev, addr, prefix);
        }
        self.drop_unused_sockets();
        Ok(())
    }

    fn new_instance(&mut self, p: &InstancePlan) -> Instance {
        let mut inst = Instance::new(p.core.clone());
        for t in &p.tracks {
            let id = self.track_id(&t.obj);
            let status = self.initial_status(&t.obj);
            if inst.track(Tracked::new(id, t.weight, t.reverse, status)).is_err() {
                tracing::warn!(instance = %p.name, "too many tracked objects");
            }
        }
        if !p.iface.up {
            let _ = inst.handle(self.now(), Input::Link { up: false });
        }
        inst
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
        };
        self.track_status.insert(obj.clone(), s);
        s
    }

    /// Starts the script and file watchers the config uses; stops the others; restarts changed
    /// ones. A definition that only moved in the file (a reload that added lines above it) is
    /// unchanged: its task, and the status it reached, stay.
    fn sync_tracks(&mut self) {
        let mut wanted: HashMap<TrackObj, TrackDef> = HashMap::new();
        for s in &self.config.vrrp_scripts {
            wanted.insert(TrackObj::Script(s.name.clone()), TrackDef::script(s));
        }
        for f in &self.config.vrrp_track_files {
            wanted.insert(TrackObj::File(f.name.clone()), TrackDef::file(f));
        }
        self.track_tasks.retain(|obj, (task, def)| {
            let keep = wanted.get(obj) == Some(def);
            if !keep {
                task.abort();
            }
            keep
        });
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
                track::spawn_script(s, self.creds, self.config.global.enable_script_security, self.track_tx.clone())
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
    }

    /// An interface of some instances exists again under a new index (deleted and created
    /// again, as a network restart does with VLANs and bonds): those instances, their sockets
    /// and VMACs move to it. Their state follows the link as usual (FAULT while it was gone).
    fn rebind(&mut self, ev: &LinkEvent) {
        let moved: Vec<usize> =
            (0..self.plans.len()).filter(|&i| self.plans[i].iface.name == ev.name && self.plans[i].iface.index != ev.index).collect();
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
            let p = &mut self.plans[i];
            p.iface.index = info.index;
            p.iface.mac = info.mac;
            p.iface.addrs.clone_from(&info.addrs);
            p.key.ifindex = info.index;
            if !self.engine.rekey(i, p.key) {
                tracing::error!(instance = %p.name, "another instance has this VRID on the interface");
            }
            stale.extend(p.vmac.as_ref().map(|v| v.name.clone()));
        }
        for name in &stale {
            for socks in &mut self.socks {
                socks.remove(name);
            }
        }
        for &i in &moved {
            let p = self.plans[i].clone();
            self.ensure_vmac(&p);
            self.ensure_socket(&p.iface.name, p.key.ipv6, true);
            self.ensure_socket(p.xmit_iface(), p.key.ipv6, false);
        }
    }

    fn ensure_vmac(&mut self, p: &InstancePlan) {
        let Some(v) = &p.vmac else { return };
        match self.netlink.link_by_name(&v.name) {
            Ok(_) => {}
            Err(_) => match self.netlink.create_macvlan(p.iface.index, &v.name, v.mac) {
                Ok(idx) => {
                    if !self.vmacs.contains(&v.name) {
                        self.vmacs.push(v.name.clone());
                    }
                    if let Err(e) = self.sysctl.prepare_vmac_parent(&p.iface.name) {
                        tracing::warn!(error = %e, "VMAC parent sysctls");
                    }
                    if let Err(e) = self.sysctl.prepare_vmac(&v.name, p.key.ipv6) {
                        tracing::warn!(error = %e, "VMAC sysctls");
                    }
                    if let Err(e) = self.netlink.set_up(idx) {
                        tracing::warn!(vmac = %v.name, error = %e, "VMAC up");
                    }
                    tracing::info!(vmac = %v.name, parent = %p.iface.name, "VMAC created");
                }
                Err(e) => tracing::error!(vmac = %v.name, error = %e, "VMAC not created"),
            },
        }
    }

    fn ensure_socket(&mut self, ifname: &str, ipv6: bool, receive: bool) {
        if let Some(s) = self.socks[usize::from(ipv6)].get(ifname) {
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
        let sock = match VrrpSocket::open(link.index, ifname, family, &groups) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(ifname, error = %e, "VRRP socket");
                return;
            }
        };
        self.socks[usize::from(ipv6)].insert(ifname.to_owned(), RxSock { sock, receive, out: Outbox::default() });
    }

    fn drop_unused_sockets(&mut self) {
        self.flush_adverts();
        let mut used: HashSet<(&str, bool)> = HashSet::new();
        for p in &self.plans {
            used.insert((&p.iface.name, p.key.ipv6));
            used.insert((p.xmit_iface(), p.key.ipv6));
        }
        for (f, socks) in self.socks.iter_mut().enumerate() {
            socks.retain(|k, _| used.contains(&(k.as_str(), f == 1)));
        }
    }

    /// Handles the datagrams of a receive batch.
    fn on_batch(&mut self, rx: &RxBatch) {
        // One clock read for the batch: its datagrams were all queued by now.
        let now = self.now();
        for (i, r) in &rx.got {
            self.on_packet(&rx.bufs[*i], r, now);
        }
    }

    fn on_packet(&mut self, buf: &[u8], rx: &Received, now: hav_core::Instant) {
        let Some(bytes) = buf.get(rx.offset..rx.offset + rx.len) else { return };
        let Ok(pkt) = VrrpPacket::new_checked(bytes) else { return };
        let key = super::engine::VrKey { ifindex: rx.ifindex, ipv6: rx.src.is_ipv6(), vrid: pkt.vrid() };
        let Some(idx) = self.engine.lookup(&key) else {
            tracing::trace!(vrid = key.vrid, src = %rx.src, "advert for a VRID we do not run");
            return;
        };
        let plan = &self.plans[idx];
        if plan.iface.addrs.contains(&rx.src) || rx.src == plan.core.primary_addr {
            return; // our own advert, looped back
        }
        let repr = match VrrpRepr::parse(&pkt, rx.src, rx.dst, plan.core.checksum_mode) {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(instance = %plan.name, src = %rx.src, error = ?e, "malformed advert dropped");
                return;
            }
        };
        let acts = self.engine.handle(idx, now, Input::Advert(Advert { src: rx.src, ttl: rx.ttl, repr: &repr }));
        self.exec(acts);
    }

    fn on_track(&mut self, obj: TrackObj, status: TrackStatus) {
        self.track_status.insert(obj.clone(), status);
        let Some(&id) = self.track_ids.get(&obj) else { return };
        let now = self.now();
        for idx in 0..self.plans.len() {
            if self.plans[idx].tracks.iter().any(|t| t.obj == obj) {
                let acts = self.engine.handle(idx, now, Input::Track { id, status });
                self.exec(acts);
            }
        }
    }

    fn on_link(&mut self, ev: LinkEvent) {
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
        let now = self.now();
        for idx in 0..self.plans.len() {
            if self.plans[idx].iface.index == ev.index && self.plans[idx].iface.up != up {
                self.plans[idx].iface.up = up;
                tracing::info!(instance = %self.plans[idx].name, ifname = %ev.name, up, "link changed");
                if up {
                    if let Some(info) = lookup_iface(&mut self.netlink, &ev.name) {
                        self.plans[idx].iface.addrs = info.addrs;
                    }
                }
                let acts = self.engine.handle(idx, now, Input::Link { up });
                self.exec(acts);
            }
        }
    }

    fn on_control(&mut self, req: &control::Request) -> serde_json::Value {
        let admin = match req.cmd.as_str() {
            "status" => return json!({"ok": true, "instances": self.status()}),
            "metrics" => return json!({"ok": true, "text": super::metrics::render(&self.plans, self.engine.instances())}),
            "reload" => {
                self.reload();
                return json!({"ok": true});
            }
            "standby" => AdminMode::Standby,
            "takeover" => AdminMode::Takeover,
            "resume" => AdminMode::Auto,
            other => return json!({"ok": false, "error": format!("unknown command '{other}'")}),
        };
        let Some(name) = &req.instance else {
            return json!({"ok": false, "error": format!("{} needs an instance", req.cmd)});
        };
        let Some(idx) = self.engine.find(name) else {
            return json!({"ok": false, "error": format!("no instance '{name}'")});
        };
        tracing::info!(instance = %name, cmd = %req.cmd, "operator command");
        let now = self.now();
        let acts = self.engine.handle(idx, now, Input::Admin(admin));
        self.exec(acts);
        json!({"ok": true, "state": self.engine.instances()[idx].state().as_str()})
    }

    fn status(&self) -> serde_json::Value {
        let list: Vec<_> = self
            .plans
            .iter()
            .zip(self.engine.instances())
            .map(|(p, i)| {
                let c = i.counters();
                json!({
                    "name": p.name,
                    "interface": p.iface.name,
                    "vrid": p.core.vrid,
                    "family": if p.key.ipv6 { "inet6" } else { "inet" },
                    "version": if p.core.version == hav_core::wire::VrrpVersion::V2 { 2 } else { 3 },
                    "state": i.state().as_str(),
                    "priority": p.core.priority,
                    "effective_priority": i.effective_priority(),
                    "master": i.master_addr().map(|a| a.to_string()),
                    "admin": format!("{:?}", i.admin()).to_lowercase(),
                    "vips": p.vips.iter().map(|v| format!("{}/{}", v.spec.addr, v.spec.prefix)).collect::<Vec<_>>(),
                    "adverts_rx": c.adverts_rx,
                    "adverts_tx": c.adverts_tx,
                    "transitions": c.transitions,
                    "prio_zero_rx": c.prio_zero_rx,
                    "prio_zero_tx": c.prio_zero_tx,
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

    fn reload(&mut self) {
        tracing::info!(config = %self.opts.config.display(), "reloading");
        let loaded = match config::load(&self.opts.config) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!("reload failed, keeping the running config: {e}");
                return;
            }
        };
        for w in &loaded.warnings {
            tracing::warn!("{w}");
        }
        // Plan before touching anything.
        let (plans, groups) = match self.plan(&loaded.config) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!("reload failed, keeping the running config: {e:#}");
                return;
            }
        };
        let policies = match load_policies(&self.opts.policies, &loaded.config) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!("reload failed, keeping the running config: {e:#}");
                return;
            }
        };
        self.policies.set(policies);
        if self.opts.lvs {
            match &mut self.lvs {
                Some(l) => l.reload(&loaded.config),
                None if !loaded.config.virtual_servers.is_empty() => {
                    match super::director::Lvs::start(&loaded.config, self.policies.clone()) {
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
            tracing::info!(instances = self.plans.len(), "reloaded");
        }
    }

    fn shutdown(&mut self) {
        tracing::info!("stopping");
        let now = self.now();
        let acts = self.engine.broadcast(now, Input::Shutdown);
        self.exec(acts);
        self.flush_adverts();
        for i in 0..self.plans.len() {
            if self.held[i] {
                let vips: Vec<_> = self.plans[i].vips.iter().map(|v| (v.dev.clone(), v.spec.addr, v.spec.prefix)).collect();
                for (dev, a, p) in vips {
                    self.del_vip(&dev, a, p);
                }
            }
            let p = &self.plans[i];
            self.notifier.changed(Kind::Instance, &p.name, &p.notify, "STOP", 0, p.smtp_alert);
        }
        for name in std::mem::take(&mut self.vmacs) {
            if let Ok(l) = self.netlink.link_by_name(&name) {
                let _ = self.netlink.delete_link(l.index);
            }
        }
        if let Err(e) = self.sysctl.restore() {
            tracing::warn!(error = %e, "restoring sysctls");
        }
        if let Some(l) = self.lvs.take() {
            l.stop();
        }
    }

    fn exec(&mut self, acts: Tagged) {
        self.exec_quiet(acts, false);
    }

    /// Carries out actions; `quiet` suppresses notifications (a reload that keeps the state).
    fn exec_quiet(&mut self, acts: Tagged, quiet: bool) {
        let mut changed_groups = false;
        for (idx, a) in acts {
            match a {
                Action::Transition { from, to, reason } => {
                    let inst = &self.engine.instances()[idx];
                    let prio = inst.effective_priority();
                    let p = &self.plans[idx];
                    if quiet {
                        tracing::debug!(instance = %p.name, from = from.as_str(), to = to.as_str(), "restarted over a reload");
                    } else {
                        tracing::info!(instance = %p.name, from = from.as_str(), to = to.as_str(), ?reason, priority = prio, "state change");
                    }
                    if !quiet && to != State::Initialize {
                        self.notifier.changed(Kind::Instance, &p.name, &p.notify, to.as_str(), prio, p.smtp_alert);
                    }
                    changed_groups = true;
                    if let Some(l) = &self.lvs {
                        l.vrrp_state(&p.name, to == State::Master);
                    }
                }
                Action::SendAdvert { priority } => {
                    send_advert(&mut self.socks, &self.plans[idx], &self.engine.instances()[idx], priority);
                }
                Action::AddVips { accept } => {
                    // The advert announcing mastership leaves before the netlink work.
                    self.flush_adverts();
                    if !accept {
                        tracing::debug!(instance = %self.plans[idx].name, "accept mode off: hav does not install drop rules");
                    }
                    let vips = self.plans[idx].vips.clone();
                    for v in vips {
                        self.add_vip(&v.dev, &v.spec);
                    }
                    self.held[idx] = true;
                }
                Action::RemoveVips => {
                    let vips = self.plans[idx].vips.clone();
                    for v in vips {
                        self.del_vip(&v.dev, v.spec.addr, v.spec.prefix);
                    }
                    self.held[idx] = false;
                }
                Action::SendGarp { repeat } => self.send_garp(idx, repeat),
                Action::Discard(reason) => {
                    tracing::debug!(instance = %self.plans[idx].name, reason = reason.as_str(), "advert dropped");
                }
            }
        }
        if changed_groups && !quiet {
            self.group_notify();
        }
    }

    fn group_notify(&mut self) {
        for g in &self.config.vrrp_sync_groups {
            let states: Vec<State> = g
                .group
                .iter()
                .filter_map(|(n, _)| self.engine.find(n).map(|i| self.engine.instances()[i].state()))
                .collect();
            let Some(&first) = states.first() else { continue };
            if first == State::Initialize || !states.iter().all(|s| *s == first) {
                continue;
            }
            if self.group_state.get(&g.name) != Some(&first) {
                self.group_state.insert(g.name.clone(), first);
                tracing::info!(group = %g.name, state = first.as_str(), "sync group state");
                self.notifier.changed(Kind::Group, &g.name, &g.notify, first.as_str(), 0, g.smtp_alert);
            }
        }
    }

    fn send_advert_for(&mut self, p: &InstancePlan, inst: &Instance, priority: u8) {
        send_advert(&mut self.socks, p, inst, priority);
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
fn send_advert(socks: &mut Socks, p: &InstancePlan, inst: &Instance, priority: u8) {
    let Some(s) = socks[usize::from(p.key.ipv6)].get_mut(p.xmit_iface()) else {
        tracing::warn!(instance = %p.name, ifname = %p.xmit_iface(), "no socket to send adverts on");
        return;
    };
    let repr = inst.advert_repr(priority);
    let src = p.core.primary_addr;
    for dst in inst.advert_destinations() {
        let built = s.out.push_with(repr.buffer_len(), src, dst, |buf| {
            let mut pkt = VrrpPacket::new_unchecked(buf);
            repr.emit(&mut pkt, src, dst, p.core.checksum_mode)
        });
        if let Err(e) = built {
            tracing::error!(instance = %p.name, error = ?e, "advert not built");
            return;
        }
    }
}

impl Daemon {

    fn add_vip(&mut self, dev: &str, spec: &crate::net::AddrSpec) {
        let idx = match self.netlink.link_by_name(dev) {
            Ok(l) => l.index,
            Err(e) => {
                tracing::error!(dev, vip = %spec.addr, error = %e, "VIP not added");
                return;
            }
        };
        match self.netlink.add_address(idx, spec) {
            Ok(()) => tracing::info!(dev, vip = %spec.addr, "VIP added"),
            Err(e) if is_exists(&e) => {}
            Err(e) => tracing::error!(dev, vip = %spec.addr, error = %e, "VIP not added"),
        }
    }

    fn del_vip(&mut self, dev: &str, addr: IpAddr, prefix: u8) {
        let Ok(l) = self.netlink.link_by_name(dev) else { return };
        match self.netlink.del_address(l.index, addr, prefix) {
            Ok(()) => tracing::info!(dev, vip = %addr, "VIP removed"),
            Err(e) if is_missing(&e) => {}
            Err(e) => tracing::error!(dev, vip = %addr, error = %e, "VIP not removed"),
        }
    }

    fn send_garp(&mut self, idx: usize, repeat: u8) {
        // The advert that announced mastership goes first.
        self.flush_adverts();
        let p = self.plans[idx].clone();
        let interval = if p.key.ipv6 { self.config.global.vrrp_gna_interval } else { self.config.global.vrrp_garp_interval };
        let mut spaced: Vec<(u32, String, Vec<u8>)> = Vec::new();
        for v in &p.vips {
            let Ok(link) = self.netlink.link_by_name(&v.dev) else { continue };
            let mac = match &p.vmac {
                Some(vm) if v.dev == vm.name => vm.mac,
                _ => link.mac,
            };
            let frame = match v.spec.addr {
                IpAddr::V4(a) => hav_core::wire::gratuitous_arp_frame(mac, a).to_vec(),
                IpAddr::V6(a) => hav_core::wire::unsolicited_na_frame(mac, a, true).to_vec(),
            };
            if !interval.is_zero() {
                spaced.push((link.index, v.dev.clone(), frame));
                continue;
            }
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
        if !spaced.is_empty() {
            // vrrp_garp_interval / vrrp_gna_interval: space the messages in a task of their own
            // so the loop never waits.
            tokio::spawn(async move {
                let socks: Vec<_> =
                    spaced.iter().filter_map(|(i, n, f)| PacketSocket::open(*i, n).ok().map(|s| (s, f))).collect();
                for _ in 0..repeat {
                    for (s, f) in &socks {
                        let _ = s.send_frame(f);
                        tokio::time::sleep(interval).await;
                    }
                }
            });
        }
    }

    fn publish_snapshot(&self) {
        // Only priority policies read it; building it costs O(instances) per event.
        if !self.config.vrrp_scripts.iter().any(|s| s.policy.is_some()) {
            return;
        }
        let snap: Vec<_> = self
            .plans
            .iter()
            .zip(self.engine.instances())
            .map(|(p, i)| super::track::InstanceSnapshot {
                name: p.name.clone(),
                state: i.state(),
                priority: p.core.priority,
                effective: i.effective_priority(),
                scripts: p.tracks.iter().filter_map(|t| match &t.obj {
                    TrackObj::Script(n) => Some(n.clone()),
                    _ => None,
                }).collect(),
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
}

/// The member indexes of every sync group, in plan order.
fn sync_groups(config: &Config, plans: &[InstancePlan]) -> anyhow::Result<Vec<Vec<usize>>> {
    let mut out = Vec::new();
    for g in &config.vrrp_sync_groups {
        let mut members = Vec::new();
        for (name, loc) in &g.group {
            let i = plans
                .iter()
                .position(|p| &p.name == name)
                .ok_or_else(|| anyhow::anyhow!("{loc}: vrrp_sync_group {}: no vrrp_instance {name}", g.name))?;
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
