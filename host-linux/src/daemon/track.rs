//! Tracked objects that the daemon polls: `vrrp_script` (run every interval, with rise/fall and
//! a timeout) and `vrrp_track_file` (a number in a file, re-read when it changes).

use std::time::Duration;

use hav_core::vrrp::TrackStatus;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::proc::{self, Creds, Runner};
use crate::config::{TrackFileDef, VrrpScript};

/// A tracked object's new status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackEvent {
    /// `script:NAME` or `file:NAME`, as [`super::plan::TrackObj`] renders.
    pub obj: super::plan::TrackObj,
    /// The status.
    pub status: TrackStatus,
}

/// Counts consecutive results and says when `rise` successes or `fall` failures flip the state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RiseFall {
    rise: u32,
    fall: u32,
    up: bool,
    run: u32,
}

impl RiseFall {
    /// Starts `up` (or down with `init_fail`).
    pub fn new(rise: u32, fall: u32, up: bool) -> Self {
        RiseFall { rise: rise.max(1), fall: fall.max(1), up, run: 0 }
    }

    /// The current state.
    pub fn up(&self) -> bool {
        self.up
    }

    /// A result that counts at once, whatever `fall` says (a script that may not run at all);
    /// returns `Some(false)` when the state flips.
    pub fn fail_now(&mut self) -> Option<bool> {
        self.run = 0;
        std::mem::replace(&mut self.up, false).then_some(false)
    }

    /// Feeds one result; returns the new state when it flips.
    pub fn feed(&mut self, ok: bool) -> Option<bool> {
        if ok == self.up {
            self.run = 0;
            return None;
        }
        self.run += 1;
        let need = if ok { self.rise } else { self.fall };
        if self.run >= need {
            self.up = ok;
            self.run = 0;
            Some(ok)
        } else {
            None
        }
    }
}

/// Starts the task running `script` every interval. Sends a [`TrackEvent`] on every flip.
///
/// The script runs through [`Runner::run`]: as its `user`, else `creds` (the default script
/// user), with script security when `secure` (`enable_script_security`). A run that is refused
/// (no such program, not executable, unknown user, insecure path) puts the script down at once,
/// whatever its `fall`; its timeout is `timeout`, else the interval.
pub fn spawn_script(
    script: VrrpScript,
    creds: Option<Creds>,
    secure: bool,
    tx: mpsc::Sender<TrackEvent>,
) -> JoinHandle<()> {
    spawn_script_with(script, Runner::new(secure, creds), tx)
}

/// [`spawn_script`] with the script settings given whole.
pub fn spawn_script_with(script: VrrpScript, runner: Runner, tx: mpsc::Sender<TrackEvent>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let obj = super::plan::TrackObj::Script(script.name.clone());
        // vrrp_script with `policy` (no `script`): run by the policy host, not here.
        let Some(command) = script.script.clone() else {
            tracing::warn!(script = %script.name, "vrrp_script has a policy, not a script; not run by the script task");
            return;
        };
        let timeout = script.timeout.unwrap_or(script.interval);
        let mut rf = RiseFall::new(script.rise, script.fall, !script.init_fail);
        let mut tick = tokio::time::interval(script.interval.max(Duration::from_millis(10)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let what = format!("vrrp_script {}", script.name);
        // A failing script is a verdict, not news: a few debug lines of it per 10 s.
        let mut failed_log = crate::ratelimit::RateLimit::new(3, Duration::from_secs(10));
        loop {
            tick.tick().await;
            let outcome = runner.run(&command, script.user.as_ref(), &[], timeout, &what).await;
            let flip = match &outcome {
                proc::Outcome::NoResources(e) => {
                    // hav could not fork: the script did not fail, its status stands.
                    crate::resource::report_exhaustion(&what, e);
                    continue;
                }
                proc::Outcome::Refused(_) => rf.fail_now(),
                o => {
                    if !o.success() {
                        if let Some(held_back) = failed_log.check_now() {
                            tracing::debug!(script = %script.name, outcome = ?o, held_back, "vrrp_script failed");
                        }
                    }
                    rf.feed(o.success())
                }
            };
            if let Some(up) = flip {
                tracing::info!(script = %script.name, state = if up { "up" } else { "down" }, "vrrp_script changed");
                let status = if up { TrackStatus::Up } else { TrackStatus::Down };
                if tx.send(TrackEvent { obj: obj.clone(), status }).await.is_err() {
                    return;
                }
            }
        }
    })
}

/// The value of a track file: its first number, 0 when empty or unreadable (as keepalived).
pub fn read_track_file(path: &str) -> i32 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|w| w.parse::<i64>().ok()))
        .map(|v| i32::try_from(v.clamp(i64::from(i32::MIN), i64::from(i32::MAX))).unwrap_or(0))
        .unwrap_or(0)
}

/// Creates the file with `init_file` when asked to.
pub fn init_track_file(def: &TrackFileDef) {
    if let Some(init) = def.init_file {
        if init.overwrite || !std::path::Path::new(&def.file).exists() {
            if let Err(e) = std::fs::write(&def.file, format!("{}\n", init.value)) {
                tracing::warn!(file = %def.file, error = %e, "init_file not written");
            }
        }
    }
}

/// How often track files are re-read.
pub const FILE_POLL: Duration = Duration::from_millis(250);

/// Starts the task watching a track file; sends its value whenever it changes.
pub fn spawn_file(def: TrackFileDef, tx: mpsc::Sender<TrackEvent>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let obj = super::plan::TrackObj::File(def.name.clone());
        let mut last = read_track_file(&def.file);
        let mut tick = tokio::time::interval(FILE_POLL);
        loop {
            tick.tick().await;
            let v = read_track_file(&def.file);
            if v != last {
                last = v;
                tracing::info!(file = %def.file, value = v, "track file changed");
                if tx.send(TrackEvent { obj: obj.clone(), status: TrackStatus::Value(v) }).await.is_err() {
                    return;
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A vrrp_script that hav cannot fork (out of descriptors) keeps its status: with `fall 1`
    /// a single failed run would send it down. In a child process: its descriptor limit is cut
    /// to the bone.
    #[test]
    fn test_script_status_stands_without_descriptors() {
        if !crate::resource::testing::in_child(module_path!(), "test_script_status_stands_without_descriptors") {
            return;
        }
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(async {
            let text = "vrrp_script chk {\n script true\n interval 1\n rise 1\n fall 1\n}\n";
            let loaded = crate::config::load_str(std::path::Path::new("test.conf"), text).expect("config");
            let mut script = loaded.config.vrrp_scripts[0].clone();
            script.interval = Duration::from_millis(50);
            let (tx, mut rx) = mpsc::channel(16);
            // A first run sets up what tokio keeps for child processes (its SIGCHLD pipe).
            let t = Duration::from_secs(5);
            let first = Runner::new(false, None).run(script.script.as_ref().expect("script"), None, &[], t, "first").await;
            assert!(first.success());
            let task = spawn_script(script, None, false, tx);
            tokio::time::sleep(Duration::from_millis(120)).await;
            let hold = crate::resource::testing::exhaust_descriptors();
            tokio::time::sleep(Duration::from_millis(500)).await;
            drop(hold);
            tokio::time::sleep(Duration::from_millis(200)).await;
            task.abort();
            let mut events = Vec::new();
            while let Ok(ev) = rx.try_recv() {
                events.push(ev.status);
            }
            assert!(events.is_empty(), "the script was never down: {events:?}");
            assert!(crate::resource::exhaustion_count() > 0, "the runs were tried and reported");
        });
    }

    #[test]
    fn rise_fall_counts_consecutive_results() {
        let mut rf = RiseFall::new(2, 3, true);
        assert_eq!(rf.feed(false), None);
        assert_eq!(rf.feed(false), None);
        assert_eq!(rf.feed(true), None, "a success resets the failure run");
        assert_eq!(rf.feed(false), None);
        assert_eq!(rf.feed(false), None);
        assert_eq!(rf.feed(false), Some(false));
        assert!(!rf.up());
        assert_eq!(rf.feed(true), None);
        assert_eq!(rf.feed(true), Some(true));
    }
}

/// What a priority policy is told about the instance that tracks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceSnapshot {
    /// The instance.
    pub name: String,
    /// Its state.
    pub state: hav_core::vrrp::State,
    /// Its configured priority.
    pub priority: u8,
    /// Its effective priority.
    pub effective: u8,
    /// The vrrp_scripts it tracks.
    pub scripts: Vec<String>,
}

/// Starts the task running a `vrrp_script` whose source is a WASM policy: every interval its
/// priority entry runs for the first instance tracking it. `Delta(d)` becomes the value `d`
/// (times the track weight, 1 by default), `Fault` faults the instance. A policy that fails
/// (trap, budget, bad output, forbidden call) counts as a failed run: after `fall` of them the
/// script is down and contributes nothing. The policy set logs why, once per failed run
/// (rate-limited); this task logs only changes of state.
///
/// The policy runs on the policy runtime ([`crate::policy::PolicySet::priority`]), never on
/// the runtime of this task.
pub fn spawn_policy_script(
    script: VrrpScript,
    policies: super::director::Policies,
    snapshot: tokio::sync::watch::Receiver<Vec<InstanceSnapshot>>,
    tx: mpsc::Sender<TrackEvent>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let obj = super::plan::TrackObj::Script(script.name.clone());
        let mut rf = RiseFall::new(script.rise, script.fall, !script.init_fail);
        let mut last: Option<TrackStatus> = None;
        let mut tick = tokio::time::interval(script.interval.max(Duration::from_millis(10)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(set) = policies.get() else {
                tracing::error!(script = %script.name, "no policy set loaded");
                continue;
            };
            let inst = snapshot.borrow().iter().find(|i| i.scripts.contains(&script.name)).cloned();
            let Some(inst) = inst else { continue };
            let req = hav_core::policy::PriorityRequest {
                instance: &inst.name,
                state: inst.state,
                priority: inst.priority,
                effective: inst.effective,
                args: script.args.as_deref().unwrap_or(""),
                now_ms: 0,
            };
            let status = match set.priority(&script.name, req).await {
                Ok(o) => {
                    rf.feed(true);
                    match o.verdict {
                        hav_core::policy::PriorityVerdict::Delta(d) => TrackStatus::Value(i32::from(d)),
                        hav_core::policy::PriorityVerdict::Fault => TrackStatus::Fault,
                    }
                }
                Err(_) => {
                    match rf.feed(false) {
                        Some(false) => TrackStatus::Down,
                        _ if !rf.up() => TrackStatus::Down,
                        _ => match last {
                            Some(s) => s,
                            None => continue,
                        },
                    }
                }
            };
            if last != Some(status) {
                tracing::info!(script = %script.name, status = ?status, "vrrp_script (policy) changed");
                last = Some(status);
                if tx.send(TrackEvent { obj: obj.clone(), status }).await.is_err() {
                    return;
                }
            }
        }
    })
}
