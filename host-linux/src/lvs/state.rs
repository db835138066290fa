//! The director's runtime state, without a kernel: each real server's
//! checker verdicts, each virtual server's quorum, which VRRP instances are
//! master. Pure, so the semantics are unit-tested (`host-linux/tests/ipvs.rs`).

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};

use super::table::{self, RsView, Table, TableError};
use crate::config::lvs::{Protocol as CfgProtocol, RealServer, VirtualServer, VirtualServerKey};
use crate::config::Config;
use crate::health::{Health, HealthEvent};
use crate::ipvs::ServiceKey;

/// Runtime state of one real server.
#[derive(Debug, Clone, PartialEq, Eq)]
struct RsState {
    /// One verdict per checker; `None` until the checker reports.
    verdicts: Vec<Option<Health>>,
    /// The `alpha` of each checker (start failed).
    alpha: Vec<bool>,
}

impl RsState {
    fn new(rs: &RealServer) -> Self {
        let alpha: Vec<bool> = rs.checkers.iter().map(|c| c.common.alpha).collect();
        RsState { verdicts: vec![None; alpha.len()], alpha }
    }

    fn view(&self, configured: i32, assume_up: bool) -> RsView {
        let mut alive = true;
        let mut weight = configured;
        for (v, alpha) in self.verdicts.iter().zip(&self.alpha) {
            match v {
                Some(Health::Up) => {}
                Some(Health::UpWeight(w)) => weight = i32::try_from(*w).unwrap_or(i32::MAX),
                Some(Health::Down) => alive = false,
                None if *alpha && !assume_up => alive = false,
                None => {}
            }
        }
        RsView { alive, weight }
    }
}

/// Runtime state of one virtual server.
#[derive(Debug, Clone)]
struct VsState {
    /// By configured real server address.
    rs: HashMap<SocketAddr, RsState>,
    quorum_up: bool,
}

type VsId = (VirtualServerKey, CfgProtocol);

fn vs_id(vs: &VirtualServer) -> VsId {
    (vs.key.clone(), vs.protocol)
}

/// What a verdict changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    /// The virtual server (index into `Config::virtual_servers`).
    pub vs: usize,
    /// The real server (index into its `real_servers`).
    pub rs: usize,
    /// `Some(alive)` when the real server came up or went down.
    pub alive: Option<bool>,
    /// `Some(up)` when the virtual server gained or lost quorum.
    pub quorum: Option<bool>,
}

/// Checker verdicts, quorum and VRRP state, for one configuration at a time.
#[derive(Debug, Clone, Default)]
pub struct Runtime {
    state: HashMap<VsId, VsState>,
    masters: HashSet<String>,
    assume_up: bool,
}

/// The summed weight of the live real servers.
pub fn live_weight(views: &[RsView]) -> i64 {
    views.iter().filter(|v| v.alive).map(|v| i64::from(v.weight.max(0))).sum()
}

/// The next quorum state: a virtual server with quorum keeps it down to
/// `quorum - hysteresis`; one without regains it at `quorum + hysteresis`.
pub fn next_quorum(vs: &VirtualServer, up: bool, live: i64) -> bool {
    let q = i64::from(vs.quorum);
    let h = i64::from(vs.hysteresis);
    if up {
        live >= q - h
    } else {
        live >= q + h
    }
}

/// Whether two virtual servers are the same to the director: equal in
/// everything that shapes the table, the verdict state and the scripts
/// (where they are written, and the checkers' own settings, do not count).
pub fn same_for_director(a: &VirtualServer, b: &VirtualServer) -> bool {
    a.key == b.key
        && a.protocol == b.protocol
        && a.lb_algo == b.lb_algo
        && a.lb_kind == b.lb_kind
        && a.persistence_timeout == b.persistence_timeout
        && a.persistence_granularity == b.persistence_granularity
        && a.persistence_engine == b.persistence_engine
        && a.ha_suspend == b.ha_suspend
        && a.alpha == b.alpha
        && a.omega == b.omega
        && a.quorum == b.quorum
        && a.quorum_up == b.quorum_up
        && a.quorum_down == b.quorum_down
        && a.hysteresis == b.hysteresis
        && a.sorry_server == b.sorry_server
        && a.inhibit_on_failure == b.inhibit_on_failure
        && a.sched_flags == b.sched_flags
        && a.ip_family == b.ip_family
        && a.real_servers.len() == b.real_servers.len()
        && a.real_servers.iter().zip(&b.real_servers).all(|(x, y)| {
            x.addr == y.addr
                && x.weight == y.weight
                && x.inhibit_on_failure == y.inhibit_on_failure
                && x.notify_up == y.notify_up
                && x.notify_down == y.notify_down
                && x.uthreshold == y.uthreshold
                && x.lthreshold == y.lthreshold
                && x.lb_kind == y.lb_kind
                && x.checkers.len() == y.checkers.len()
                && x.checkers.iter().zip(&y.checkers).all(|(c, d)| c.common.alpha == d.common.alpha)
        })
}

impl Runtime {
    /// No state yet: every VRRP instance is taken as not master.
    pub fn new() -> Self {
        Runtime::default()
    }

    /// Treat checkers that have not reported as passing, even under `alpha`.
    pub fn set_assume_up(&mut self, on: bool) {
        self.assume_up = on;
    }

    /// Records a VRRP instance's state; returns whether it changed.
    pub fn set_master(&mut self, instance: &str, master: bool) -> bool {
        if master {
            self.masters.insert(instance.to_owned())
        } else {
            self.masters.remove(instance)
        }
    }

    /// Whether `instance` is master.
    pub fn is_master(&self, instance: &str) -> bool {
        self.masters.contains(instance)
    }

    /// Rebuilds the state for `config`, keeping each real server's verdicts
    /// (when its checkers are the same in number) and each virtual server's
    /// quorum state. New virtual servers start with quorum when their live
    /// weight reaches `quorum`.
    pub fn adopt(&mut self, config: &Config) {
        self.adopt_keeping(config, |_| false);
    }

    /// [`Runtime::adopt`], taking the state of the virtual servers `same`
    /// says are unchanged (by index) over as it is, without looking at it.
    pub fn adopt_keeping(&mut self, config: &Config, same: impl Fn(usize) -> bool) {
        let mut state = HashMap::with_capacity(config.virtual_servers.len());
        for (vi, vs) in config.virtual_servers.iter().enumerate() {
            let id = vs_id(vs);
            let old = self.state.remove(&id);
            if same(vi) {
                if let Some(o) = old {
                    state.insert(id, o);
                    continue;
                }
            }
            let mut rs_map = HashMap::with_capacity(vs.real_servers.len());
            for rs in &vs.real_servers {
                let fresh = RsState::new(rs);
                let kept = old
                    .as_ref()
                    .and_then(|o| o.rs.get(&rs.addr))
                    .filter(|o| o.alpha.len() == fresh.alpha.len())
                    .cloned();
                rs_map.insert(rs.addr, kept.unwrap_or(fresh));
            }
            let mut vst = VsState { rs: rs_map, quorum_up: true };
            let live = live_weight(&Self::views_of(&vst, vs, self.assume_up));
            vst.quorum_up = match &old {
                Some(o) => next_quorum(vs, o.quorum_up, live),
                None => live >= i64::from(vs.quorum),
            };
            state.insert(id, vst);
        }
        self.state = state;
    }

    fn views_of(st: &VsState, vs: &VirtualServer, assume_up: bool) -> Vec<RsView> {
        vs.real_servers
            .iter()
            .map(|rs| match st.rs.get(&rs.addr) {
                Some(r) => r.view(rs.weight, assume_up),
                None => RsView { alive: true, weight: rs.weight },
            })
            .collect()
    }

    /// How each real server of `vs` stands (in config order).
    pub fn views(&self, vs: &VirtualServer) -> Vec<RsView> {
        match self.state.get(&vs_id(vs)) {
            Some(st) => Self::views_of(st, vs, self.assume_up),
            None => vs.real_servers.iter().map(|rs| RsView { alive: true, weight: rs.weight }).collect(),
        }
    }

    /// Whether `vs` has quorum.
    pub fn quorum_up(&self, vs: &VirtualServer) -> bool {
        self.state.get(&vs_id(vs)).map(|s| s.quorum_up).unwrap_or(true)
    }

    /// Whether `vs` is installed: not `ha_suspend`, or a VRRP instance
    /// holding one of its addresses is master (or none holds them).
    pub fn active(&self, config: &Config, vs: &VirtualServer) -> bool {
        if !vs.ha_suspend {
            return true;
        }
        let addrs: Vec<IpAddr> = table::service_keys(vs, &config.virtual_server_groups)
            .iter()
            .filter_map(|k| match k {
                ServiceKey::Addr { addr, .. } => Some(addr.ip()),
                ServiceKey::Fwmark { .. } => None,
            })
            .collect();
        let mut owners = config.vrrp_instances.iter().filter(|i| {
            i.virtual_ipaddresses.iter().chain(&i.virtual_ipaddresses_excluded).any(|v| addrs.contains(&v.address))
        });
        let mut any = false;
        let master = owners.any(|i| {
            any = true;
            self.masters.contains(&i.name)
        });
        master || !any
    }

    /// Records a checker's verdict. Returns what changed, or `None` when the
    /// real server's state (alive, weight) did not change or the event is
    /// about something `config` does not have.
    pub fn verdict(&mut self, config: &Config, ev: &HealthEvent) -> Option<Change> {
        let vi = config
            .virtual_servers
            .iter()
            .position(|vs| vs.key == ev.rs.vs && vs.protocol == ev.rs.protocol)?;
        let vs = &config.virtual_servers[vi];
        let ri = vs.real_servers.iter().position(|r| r.addr == ev.rs.rs)?;
        let rs_cfg = &vs.real_servers[ri];
        let assume_up = self.assume_up;
        let vst = self.state.get_mut(&vs_id(vs))?;
        let st = vst.rs.get_mut(&ev.rs.rs)?;
        if ev.checker >= st.verdicts.len() {
            return None;
        }
        let before = st.view(rs_cfg.weight, assume_up);
        st.verdicts[ev.checker] = Some(ev.health);
        let after = st.view(rs_cfg.weight, assume_up);
        if before == after {
            return None;
        }
        let live = live_weight(&Self::views_of(vst, vs, assume_up));
        let q = next_quorum(vs, vst.quorum_up, live);
        let quorum = (q != vst.quorum_up).then_some(q);
        vst.quorum_up = q;
        Some(Change { vs: vi, rs: ri, alive: (before.alive != after.alive).then_some(after.alive), quorum })
    }

    /// The table `config` asks for in this state.
    pub fn desired(&self, config: &Config) -> Result<Table, TableError> {
        self.desired_of(config, |_| true)
    }

    /// The part of [`Runtime::desired`] that comes from the virtual servers
    /// `pick` selects (by index); suspended ones are left out as well.
    pub fn desired_of(&self, config: &Config, pick: impl Fn(usize) -> bool) -> Result<Table, TableError> {
        table::desired(
            config,
            |vi| self.views(&config.virtual_servers[vi]),
            |vi| self.quorum_up(&config.virtual_servers[vi]),
            |vi| pick(vi) && self.active(config, &config.virtual_servers[vi]),
        )
    }
}
