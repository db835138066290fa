//! MISC_CHECK: run a program. Exit 0 is up, 1 is down; with `misc_dynamic`, 2..=255 is up with
//! weight (code - 2). Any other end (other codes without `misc_dynamic`, a signal, the
//! `misc_timeout`) is down. The program runs in its own process group, killed whole on timeout.

use std::process::Stdio;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::{Group, Pid, User};

use super::{ProbeError, Verdict};
use crate::config::check::{CheckCommon, MiscCheck};

/// One MISC_CHECK probe.
pub(super) async fn check(m: &MiscCheck, c: &CheckCommon) -> Result<Verdict, ProbeError> {
    let Some((prog, args)) = m.misc_path.argv.split_first() else {
        return Err(ProbeError::Failed("empty misc_path".into()));
    };
    let mut cmd = tokio::process::Command::new(prog);
    cmd.args(args).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).process_group(0).kill_on_drop(true);
    if let Some(run_as) = &m.user {
        let user = User::from_name(&run_as.user)
            .map_err(|e| format!("user '{}': {e}", run_as.user))?
            .ok_or_else(|| format!("no user '{}'", run_as.user))?;
        let gid = match &run_as.group {
            Some(g) => Group::from_name(g).map_err(|e| format!("group '{g}': {e}"))?.ok_or_else(|| format!("no group '{g}'"))?.gid,
            None => user.gid,
        };
        cmd.uid(user.uid.as_raw()).gid(gid.as_raw());
    }
    let mut child = cmd.spawn().map_err(|e| ProbeError::spawn(&format!("cannot run '{}'", m.misc_path.command), e))?;
    // Kills the script's whole process group if this probe ends early: on misc_timeout, or
    // when the checker is stopped (reload, shutdown) while the script runs.
    let mut group = GroupGuard(child.id().and_then(|p| i32::try_from(p).ok()));
    let timeout = m.misc_timeout.unwrap_or(c.delay_loop);
    let status = match tokio::time::timeout(timeout, child.wait()).await {
        Ok(r) => {
            group.0 = None;
            r.map_err(|e| format!("wait: {e}"))?
        }
        Err(_) => {
            drop(group);
            let _ = child.kill().await;
            return Err(format!("'{}' killed after misc_timeout {timeout:?}", m.misc_path.command).into());
        }
    };
    match status.code() {
        Some(0) => Ok(Verdict::Up),
        Some(code @ 2..=255) if m.misc_dynamic => Ok(Verdict::Weight(u32::try_from(code - 2).unwrap_or(0))),
        Some(code) => Err(format!("'{}' exited {code}", m.misc_path.command).into()),
        None => Err(format!("'{}' ended by {status}", m.misc_path.command).into()),
    }
}

/// SIGKILLs a process group when dropped, unless disarmed (`.0 = None`).
struct GroupGuard(Option<i32>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pgid) = self.0 {
            let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
        }
    }
}
