//! Running external programs (vrrp_script, notify scripts) as keepalived does: as the script
//! user, in their own process group, killed when they outlive their timeout.

use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::{Gid, Group, Pid, Uid, User};
use tokio::process::Command;

use crate::config::value::RunAs;
use crate::config::{Config, Script};

/// The user and group a script runs as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Creds {
    /// User id.
    pub uid: Uid,
    /// Group id.
    pub gid: Gid,
}

/// Resolves `user [group]`.
pub fn resolve(run_as: &RunAs) -> Result<Creds, String> {
    let user = User::from_name(&run_as.user)
        .map_err(|e| format!("looking up user {}: {e}", run_as.user))?
        .ok_or_else(|| format!("unknown user '{}'", run_as.user))?;
    let gid = match &run_as.group {
        Some(g) => {
            Group::from_name(g)
                .map_err(|e| format!("looking up group {g}: {e}"))?
                .ok_or_else(|| format!("unknown group '{g}'"))?
                .gid
        }
        None => user.gid,
    };
    Ok(Creds { uid: user.uid, gid })
}

/// The default script user: `global_defs script_user`, else `keepalived_script` when that user
/// exists, else the daemon's own user.
pub fn default_creds(config: &Config) -> Result<Option<Creds>, String> {
    if let Some(r) = &config.global.script_user {
        return resolve(r).map(Some);
    }
    match User::from_name("keepalived_script") {
        Ok(Some(u)) => Ok(Some(Creds { uid: u.uid, gid: u.gid })),
        _ => Ok(None),
    }
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Exited with this code.
    Exited(i32),
    /// Killed by a signal it did not ask for.
    Signaled(i32),
    /// Outlived its timeout and was killed.
    TimedOut,
    /// Could not be started.
    SpawnFailed(String),
    /// Could not be started because hav is out of descriptors, memory or processes
    /// ([`crate::resource::is_spawn_exhaustion`]). Says nothing about the script: callers keep
    /// its previous result and report it with [`crate::resource::report_exhaustion`].
    NoResources(String),
}

impl Outcome {
    /// Exit code 0.
    pub fn success(&self) -> bool {
        *self == Outcome::Exited(0)
    }
}

/// Runs `script` with `extra` arguments appended, as `creds`, killing its whole process group
/// after `timeout`.
pub async fn run(script: &Script, extra: &[String], creds: Option<Creds>, timeout: Duration) -> Outcome {
    let Some((prog, args)) = script.argv.split_first() else {
        return Outcome::SpawnFailed("empty command".into());
    };
    let mut cmd = Command::new(prog);
    cmd.args(args)
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .kill_on_drop(true);
    if let Some(c) = creds {
        cmd.uid(c.uid.as_raw()).gid(c.gid.as_raw());
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) if crate::resource::is_spawn_exhaustion(&e) => return Outcome::NoResources(format!("{prog}: {e}")),
        Err(e) => return Outcome::SpawnFailed(format!("{prog}: {e}")),
    };
    let pgid = child.id().and_then(|id| i32::try_from(id).ok()).map(Pid::from_raw);
    match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) => {
            use std::os::unix::process::ExitStatusExt;
            match (status.code(), status.signal()) {
                (Some(c), _) => Outcome::Exited(c),
                (None, Some(s)) => Outcome::Signaled(s),
                (None, None) => Outcome::Exited(-1),
            }
        }
        Ok(Err(e)) => Outcome::SpawnFailed(format!("{prog}: waiting: {e}")),
        Err(_) => {
            if let Some(pg) = pgid {
                let _ = killpg(pg, Signal::SIGKILL);
            }
            let _ = child.wait().await;
            Outcome::TimedOut
        }
    }
}

/// With `enable_script_security`: why a script that runs as root must not run, if it must not.
/// A script is unsafe when its program, or a directory above it, can be written by someone other
/// than root (owned by another user, or group/world-writable).
pub fn insecure(script: &Script, creds: Option<Creds>) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    if creds.is_some_and(|c| !c.uid.is_root()) {
        return None;
    }
    let prog = script.argv.first()?;
    let path = if prog.contains('/') {
        std::path::PathBuf::from(prog)
    } else {
        let dirs = std::env::var_os("PATH").unwrap_or_else(|| "/usr/sbin:/usr/bin:/sbin:/bin".into());
        std::env::split_paths(&dirs).map(|d| d.join(prog)).find(|p| p.is_file())?
    };
    let mut p = path.canonicalize().ok()?;
    loop {
        let md = std::fs::metadata(&p).ok()?;
        if md.uid() != 0 {
            return Some(format!("{} is owned by uid {}", p.display(), md.uid()));
        }
        // Writable by group (unless the group is root's) or by anyone; directories with the
        // sticky bit (like /tmp) still let others replace only their own files.
        let sticky = md.is_dir() && md.mode() & 0o1000 != 0;
        if md.mode() & 0o002 != 0 && !sticky || md.mode() & 0o020 != 0 && md.gid() != 0 {
            return Some(format!("{} is writable by non-root users", p.display()));
        }
        if !p.pop() || p.as_os_str().is_empty() {
            return None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script(cmd: &str) -> Script {
        Script { command: cmd.into(), argv: vec![cmd.into()] }
    }

    /// Out of descriptors, a script cannot start; that is [`Outcome::NoResources`], not a
    /// failure of the script, and runs succeed again once descriptors are back. In a child
    /// process: its descriptor limit is cut to the bone.
    #[test]
    fn test_spawn_without_descriptors_is_no_resources() {
        if !crate::resource::testing::in_child(module_path!(), "test_spawn_without_descriptors_is_no_resources") {
            return;
        }
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(async {
            let t = Duration::from_secs(5);
            // A first run sets up what tokio keeps for child processes (its SIGCHLD pipe).
            assert_eq!(run(&script("true"), &[], None, t).await, Outcome::Exited(0));
            let hold = crate::resource::testing::exhaust_descriptors();
            let o = run(&script("true"), &[], None, t).await;
            assert!(matches!(o, Outcome::NoResources(ref e) if e.contains("os error 24")), "{o:?}");
            assert!(!o.success());
            drop(hold);
            assert_eq!(run(&script("true"), &[], None, t).await, Outcome::Exited(0));
            // A program that does not exist is the script's failure, not hav's.
            assert!(matches!(run(&script("/nonexistent/hav-script"), &[], None, t).await, Outcome::SpawnFailed(_)));
        });
    }

    #[test]
    fn script_security_rejects_writable_paths() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root to own test files as root");
            return;
        }
        assert_eq!(insecure(&script("/bin/sh"), None), None);
        assert_eq!(insecure(&script("sh"), None), None, "found through PATH");
        let dir = std::env::temp_dir().join(format!("hav-sec-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let f = dir.join("chk.sh");
        std::fs::write(&f, "#!/bin/sh\n").expect("write");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let s = script(f.to_str().expect("utf-8"));
        assert_eq!(insecure(&s, None), None);
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o777)).expect("chmod");
        assert!(insecure(&s, None).is_some_and(|w| w.contains("writable")));
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).expect("chmod");
        assert!(insecure(&s, None).is_some(), "a world-writable directory lets anyone swap the script");
        // Running as another user is not a root escalation.
        let nobody = Creds { uid: Uid::from_raw(65534), gid: Gid::from_raw(65534) };
        assert_eq!(insecure(&s, Some(nobody)), None);
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
