//! Running external programs, one way for all of them: `vrrp_script`s, notify scripts,
//! MISC_CHECK, LVS `notify_up`/`notify_down` and `quorum_up`/`quorum_down`.
//!
//! [`Runner::run`] does what keepalived does for a script, and a little more:
//! - **who**: the script's own `USER [GROUP]` (the `user` keyword, or the words after a notify
//!   command), else `global_defs script_user`, else `keepalived_script` when that user exists,
//!   else hav's own user. With `enable_script_security`, hav's own user is not a fallback: a
//!   script without a user of its own is refused when neither of the others is there.
//! - **what**: the command's program, looked up in [`SCRIPT_PATH`] when it names no directory,
//!   followed symlink by symlink to the file that runs. That file is what is executed (the
//!   configured name stays `argv[0]`), so a link swapped after the check changes nothing. A
//!   program that does not exist, is not a regular file or is not executable for the user is
//!   refused, never run.
//! - **script security** (`enable_script_security`), when the script would run with root's
//!   privileges (as uid 0 or gid 0, or a set-user/group-id root file): every directory on the
//!   way, every symlink followed and the file itself must be owned by root, and neither the
//!   file nor a directory may be writable by group (unless it is root's group) or others (a
//!   directory with the sticky bit, like `/tmp`, lets others replace only their own entries).
//!   Anything else is refused. Scripts run as another user are that user's business.
//! - **how**: no stdin, stdout or stderr; `/` as working directory; an environment holding
//!   `PATH` ([`SCRIPT_PATH`]) and nothing else (keepalived passes its own environment minus
//!   `IFS`, `LD_PRELOAD` and `LD_LIBRARY_PATH`, and documents none for notify scripts, which get
//!   their state as arguments); a process group of its own.
//! - **how long**: past its timeout the whole process group gets SIGTERM, and SIGKILL
//!   [`TERM_GRACE`] later (keepalived's two steps), so children it forked die with it; if the
//!   caller stops waiting (a reload, shutdown) the group gets SIGKILL. The process is reaped by
//!   tokio: no thread per child, no zombie.
//!
//! The checks run before every run: a script made writable, or replaced, after start is refused
//! from then on. Refusals, timeouts and failed starts are logged here, rate-limited per script
//! ([`LOG_BURST`] per [`LOG_PERIOD`]); callers log exit codes at the level they mean, and report
//! hav's own exhaustion ([`Outcome::NoResources`]).

use std::collections::VecDeque;
use std::ffi::OsString;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, LazyLock, Mutex, RwLock};
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::sys::wait::{waitid, Id, WaitPidFlag, WaitStatus};
use nix::unistd::{Gid, Group, Pid, Uid, User};
use tokio::process::Command;

use crate::config::value::RunAs;
use crate::config::{Config, Script};
use crate::ratelimit::KeyedRateLimit;

/// The `PATH` scripts run with, and where a command without a `/` is looked up.
pub const SCRIPT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Between the SIGTERM and the SIGKILL of a script's process group after its timeout.
pub const TERM_GRACE: Duration = Duration::from_secs(2);

/// Lines about one script (refused, timed out, not started) let through per [`LOG_PERIOD`].
pub const LOG_BURST: u32 = 2;
/// The window of [`LOG_BURST`].
pub const LOG_PERIOD: Duration = Duration::from_secs(60);

/// Symlinks followed at most while resolving a program (as the kernel's limit).
const MAX_LINKS: usize = 40;

/// The user and group a script runs as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Creds {
    /// User id.
    pub uid: Uid,
    /// Group id.
    pub gid: Gid,
}

/// Resolves `user [group]`. A group written `:GROUP` (keepalived's request for supplementary
/// groups) is `GROUP`; a lone `:` is the user's group. Supplementary groups are not set: a
/// script run as another user has none.
pub fn resolve(run_as: &RunAs) -> Result<Creds, String> {
    let user = User::from_name(&run_as.user)
        .map_err(|e| format!("looking up user {}: {e}", run_as.user))?
        .ok_or_else(|| format!("unknown user '{}'", run_as.user))?;
    let group = run_as.group.as_deref().map(|g| g.strip_prefix(':').unwrap_or(g)).filter(|g| !g.is_empty());
    let gid = match group {
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
/// exists, else `None` (the daemon's own user, unless script security is on).
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
    /// Outlived its timeout; its process group was killed.
    TimedOut,
    /// Not run: no such program, not executable, unknown user, or refused by script security.
    Refused(String),
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

/// Who runs a script that names no user.
#[derive(Debug, Clone, PartialEq, Eq)]
enum DefaultUser {
    /// hav's own user.
    Own,
    /// `script_user`, or `keepalived_script`.
    As(Creds),
    /// None may: scripts without a user of their own are refused, for this reason.
    Missing(Arc<str>),
}

/// A program checked and ready to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    /// The file executed: every symlink resolved.
    pub program: PathBuf,
    /// Who runs it; `None` for hav's own user.
    pub creds: Option<Creds>,
}

/// How hav runs scripts: `enable_script_security` and the default user. Cheap to clone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Runner {
    secure: bool,
    default: DefaultUser,
    grace: Duration,
}

/// The script settings MISC_CHECKs run with (the checkers are started without them).
static FOR_CHECKS: RwLock<Option<Runner>> = RwLock::new(None);

/// Per script: lines about runs that did not happen or were cut short.
static LOG: LazyLock<Mutex<KeyedRateLimit<String>>> = LazyLock::new(|| Mutex::new(KeyedRateLimit::new(LOG_BURST, LOG_PERIOD, 4096)));

impl Runner {
    /// With script security on or off, and `default` running scripts that name no user (`None`:
    /// hav's own user, which script security refuses).
    pub fn new(secure: bool, default: Option<Creds>) -> Runner {
        let default = match (default, secure) {
            (Some(c), _) => DefaultUser::As(c),
            (None, false) => DefaultUser::Own,
            (None, true) => DefaultUser::Missing(
                "enable_script_security: no default script user (set script_user, or create the user keepalived_script)".into(),
            ),
        };
        Runner { secure, default, grace: TERM_GRACE }
    }

    /// From `global_defs`: `enable_script_security`, `script_user` (or `keepalived_script`).
    /// A `script_user` that does not resolve leaves scripts without a user of their own
    /// refused, as keepalived does.
    pub fn from_config(config: &Config) -> Runner {
        let secure = config.global.enable_script_security;
        match default_creds(config) {
            Ok(c) => Runner::new(secure, c),
            Err(e) => {
                tracing::error!(error = %e, "script_user: scripts without a user of their own will not run");
                Runner { secure, default: DefaultUser::Missing(format!("script_user: {e}").into()), grace: TERM_GRACE }
            }
        }
    }

    /// The same, with another delay between SIGTERM and SIGKILL after a timeout.
    pub fn with_term_grace(mut self, grace: Duration) -> Runner {
        self.grace = grace;
        self
    }

    /// Makes these the settings of MISC_CHECK scripts (the director calls it on start and on
    /// every reload).
    pub fn install_for_checks(self) {
        *FOR_CHECKS.write().unwrap_or_else(|p| p.into_inner()) = Some(self);
    }

    /// The settings of MISC_CHECK scripts: the last installed, else no script security and
    /// hav's own user.
    pub fn for_checks() -> Runner {
        FOR_CHECKS.read().unwrap_or_else(|p| p.into_inner()).clone().unwrap_or_else(|| Runner::new(false, None))
    }

    /// Who runs `script` and which file: `user`, else the script's own `USER [GROUP]`, else the
    /// default user; the program looked up and resolved; script security applied. `Err` says
    /// why it must not run.
    pub fn prepare(&self, script: &Script, user: Option<&RunAs>) -> Result<Prepared, String> {
        let creds = match user.or(script.user.as_ref()) {
            Some(u) => Some(resolve(u)?),
            None => match &self.default {
                DefaultUser::Own => None,
                DefaultUser::As(c) => Some(*c),
                DefaultUser::Missing(why) => return Err(why.to_string()),
            },
        };
        let Some(prog) = script.argv.first() else { return Err("empty command".into()) };
        let (uid, gid) = match creds {
            Some(c) => (c.uid, c.gid),
            None => (nix::unistd::geteuid(), nix::unistd::getegid()),
        };
        let path = if prog.contains('/') {
            // Relative to `/`, the scripts' working directory (keepalived reads them so too).
            Path::new("/").join(prog)
        } else {
            std::env::split_paths(SCRIPT_PATH)
                .map(|d| d.join(prog))
                .find(|p| std::fs::metadata(p).is_ok_and(|m| m.is_file() && executable(&m, uid, gid)))
                .ok_or_else(|| format!("{prog}: not found in {SCRIPT_PATH}"))?
        };
        let walk = walk(&path)?;
        let (program, md) = walk.last().cloned().ok_or_else(|| format!("{}: nothing to run", path.display()))?;
        if !md.is_file() {
            return Err(format!("{}: not a regular file", program.display()));
        }
        if !executable(&md, uid, gid) {
            return Err(format!("{}: not executable by uid {uid} gid {gid}", program.display()));
        }
        let setid_root = (md.mode() & 0o4100 == 0o4100 && md.uid() == 0) || (md.mode() & 0o2010 == 0o2010 && md.gid() == 0);
        if self.secure && (uid.is_root() || gid.as_raw() == 0 || setid_root) {
            for (p, m) in &walk {
                insecure(p, m).map_or(Ok(()), |why| Err(format!("enable_script_security: {why}")))?;
            }
        }
        Ok(Prepared { program, creds })
    }

    /// Runs `script` with `extra` arguments appended, as [`Runner::prepare`] says, for at most
    /// `timeout`. `what` names it in the log (`"vrrp_script chk"`, `"notify_master VI_1"`).
    ///
    /// Refusals, timeouts and failures to start are logged here (rate-limited per `what`);
    /// exit codes, and [`Outcome::NoResources`], are the caller's to judge and report. Dropping the future kills the script's group.
    pub async fn run(&self, script: &Script, user: Option<&RunAs>, extra: &[String], timeout: Duration, what: &str) -> Outcome {
        let outcome = self.run_quiet(script, user, extra, timeout).await;
        let why = match &outcome {
            Outcome::Exited(_) | Outcome::Signaled(_) | Outcome::NoResources(_) => return outcome,
            Outcome::Refused(why) => format!("not run: {why}"),
            Outcome::TimedOut => format!("killed (with its process group) after its timeout of {timeout:?}"),
            Outcome::SpawnFailed(e) => format!("could not start: {e}"),
        };
        let held = LOG.lock().unwrap_or_else(|p| p.into_inner()).check(&what.to_owned(), Instant::now());
        if let Some(held_back) = held {
            match outcome {
                Outcome::Refused(_) => tracing::error!(script = %script.command, held_back, "{what}: {why}"),
                _ => tracing::warn!(script = %script.command, held_back, "{what}: {why}"),
            }
        }
        outcome
    }

    async fn run_quiet(&self, script: &Script, user: Option<&RunAs>, extra: &[String], timeout: Duration) -> Outcome {
        let prepared = match self.prepare(script, user) {
            Ok(p) => p,
            Err(why) => return Outcome::Refused(why),
        };
        let mut cmd = command(&prepared, script, extra);
        let prog = prepared.program.display();
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) if crate::resource::is_spawn_exhaustion(&e) => return Outcome::NoResources(format!("{prog}: {e}")),
            Err(e) => return Outcome::SpawnFailed(format!("{prog}: {e}")),
        };
        let Some(pid) = child.id().and_then(|id| i32::try_from(id).ok()).map(Pid::from_raw) else {
            return Outcome::SpawnFailed(format!("{prog}: no pid"));
        };
        // The child leads its group, and stays unreaped until the group was signalled: its id
        // cannot name another group meanwhile.
        let mut group = GroupGuard(Some(pid));
        match tokio::time::timeout(timeout, child.wait()).await {
            Ok(Ok(status)) => {
                group.0 = None;
                use std::os::unix::process::ExitStatusExt;
                match (status.code(), status.signal()) {
                    (Some(c), _) => Outcome::Exited(c),
                    (None, Some(s)) => Outcome::Signaled(s),
                    (None, None) => Outcome::Exited(-1),
                }
            }
            Ok(Err(e)) => Outcome::SpawnFailed(format!("{prog}: waiting: {e}")),
            Err(_) => {
                end_group(pid, group, &mut child, self.grace).await;
                Outcome::TimedOut
            }
        }
    }
}

/// The command that runs `script` as `prepared` says, with `extra` arguments appended: a clean
/// environment, `/` as its working directory, no standard streams, a process group of its own,
/// killed when dropped.
fn command(prepared: &Prepared, script: &Script, extra: &[String]) -> Command {
    let argv0 = script.argv.first().map(String::as_str).unwrap_or_default();
    let mut cmd = Command::new(&prepared.program);
    cmd.arg0(argv0)
        .args(script.argv.iter().skip(1))
        .args(extra)
        .env_clear()
        .env("PATH", SCRIPT_PATH)
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .kill_on_drop(true);
    if let Some(c) = prepared.creds {
        cmd.uid(c.uid.as_raw()).gid(c.gid.as_raw());
    }
    cmd
}

/// A script that runs as long as the daemon does (a notify FIFO's reader). Watched from a task
/// of its own: an exit is logged, not restarted (keepalived's way).
#[derive(Debug)]
pub struct Service {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<()>,
}

impl Runner {
    /// Starts `script` with `extra` arguments appended, as [`Runner::prepare`] says, to run
    /// until [`Service::stop`]. `what` names it in the log. Call inside a tokio runtime.
    pub fn start(&self, script: &Script, extra: &[String], what: &str) -> Result<Service, String> {
        let prepared = self.prepare(script, None)?;
        let mut child = command(&prepared, script, extra).spawn().map_err(|e| format!("{}: {e}", prepared.program.display()))?;
        let pid = child.id().and_then(|id| i32::try_from(id).ok()).map(Pid::from_raw).ok_or("no pid")?;
        tracing::info!(script = %script.command, pid = pid.as_raw(), "{what} started");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let (what, grace) = (what.to_owned(), self.grace);
        let done = tokio::spawn(async move {
            let mut group = GroupGuard(Some(pid));
            tokio::select! {
                status = child.wait() => {
                    group.0 = None;
                    match status {
                        Ok(st) => tracing::warn!(pid = pid.as_raw(), status = %st, "{what} exited; not started again until a reload or restart"),
                        Err(e) => tracing::warn!(pid = pid.as_raw(), error = %e, "{what}: waiting"),
                    }
                }
                _ = rx => {
                    end_group(pid, group, &mut child, grace).await;
                    tracing::info!(pid = pid.as_raw(), "{what} stopped");
                }
            }
        });
        Ok(Service { stop: Some(tx), done })
    }
}

impl Service {
    /// SIGTERM to its process group, SIGKILL after the runner's grace; returns once it is gone.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let _ = (&mut self.done).await;
    }

    /// Whether it has ended (by itself, or stopped).
    pub fn finished(&self) -> bool {
        self.done.is_finished()
    }
}

/// Ends the process group that `child` (`pid`) leads: SIGTERM, up to `grace` for the leader to
/// exit, then SIGKILL to whatever is left of the group (`group`, dropped), the leader reaped.
async fn end_group(pid: Pid, group: GroupGuard, child: &mut tokio::process::Child, grace: Duration) {
    let _ = killpg(pid, Signal::SIGTERM);
    let end = tokio::time::Instant::now() + grace;
    while !exited(pid) && tokio::time::Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    drop(group);
    let _ = child.wait().await;
}

/// Whether `pid` (our child) has ended, without reaping it.
fn exited(pid: Pid) -> bool {
    !matches!(
        waitid(Id::Pid(pid), WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT),
        Ok(WaitStatus::StillAlive)
    )
}

/// SIGKILLs a process group when dropped, unless disarmed (`.0 = None`).
struct GroupGuard(Option<Pid>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pgid) = self.0 {
            let _ = killpg(pgid, Signal::SIGKILL);
        }
    }
}

/// Whether the mode bits let `uid`/`gid` execute the file (root: any execute bit).
fn executable(md: &std::fs::Metadata, uid: Uid, gid: Gid) -> bool {
    let mode = md.mode();
    if uid.is_root() {
        mode & 0o111 != 0
    } else if md.uid() == uid.as_raw() {
        mode & 0o100 != 0
    } else if md.gid() == gid.as_raw() {
        mode & 0o010 != 0
    } else {
        mode & 0o001 != 0
    }
}

/// Follows `path` (absolute) one component at a time to the file it names, reading every
/// symlink on the way. Returns everything it looked at, in order: `/`, each directory, each
/// symlink followed, and last the file itself (under its real path). A component that does not
/// exist, or a file where a directory should be, is an error.
fn walk(path: &Path) -> Result<Vec<(PathBuf, std::fs::Metadata)>, String> {
    let stat = |p: &Path| std::fs::symlink_metadata(p).map_err(|e| format!("{}: {e}", p.display()));
    let root = PathBuf::from("/");
    let mut seen = vec![(root.clone(), stat(&root)?)];
    let mut cur = root;
    let mut pending: VecDeque<OsString> = parts(path);
    let mut links = 0;
    while let Some(part) = pending.pop_front() {
        if part == ".." {
            cur.pop();
            continue;
        }
        let next = cur.join(&part);
        let md = stat(&next)?;
        let is_link = md.file_type().is_symlink();
        seen.push((next.clone(), md.clone()));
        if is_link {
            links += 1;
            if links > MAX_LINKS {
                return Err(format!("{}: more than {MAX_LINKS} symlinks", path.display()));
            }
            let target = std::fs::read_link(&next).map_err(|e| format!("{}: {e}", next.display()))?;
            if target.is_absolute() {
                cur = PathBuf::from("/");
            }
            let mut more = parts(&target);
            more.extend(pending);
            pending = more;
            continue;
        }
        if !pending.is_empty() && !md.is_dir() {
            return Err(format!("{}: not a directory", next.display()));
        }
        cur = next;
    }
    // The file itself is last; the walk ending on a directory is caught by the caller.
    if seen.last().is_some_and(|(p, _)| *p != cur) {
        let md = stat(&cur)?;
        seen.push((cur, md));
    }
    Ok(seen)
}

/// The normal components of `p` (`.` dropped, `..` kept, the root implied).
fn parts(p: &Path) -> VecDeque<OsString> {
    p.components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
        })
        .collect()
}

/// Why `p` lets someone other than root change what runs, if it does: not owned by root, or
/// (a file, or a directory without the sticky bit) writable by a group other than root's or
/// by anyone. A symlink's own mode means nothing; its owner and directory do.
fn insecure(p: &Path, md: &std::fs::Metadata) -> Option<String> {
    if md.uid() != 0 {
        return Some(format!("{} is owned by uid {}, not root", p.display(), md.uid()));
    }
    let ft = md.file_type();
    let sticky_dir = ft.is_dir() && md.mode() & 0o1000 != 0;
    if ft.is_symlink() || sticky_dir {
        return None;
    }
    if md.mode() & 0o002 != 0 {
        return Some(format!("{} is writable by anyone", p.display()));
    }
    if md.mode() & 0o020 != 0 && md.gid() != 0 {
        return Some(format!("{} is writable by group {}", p.display(), md.gid()));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn script(cmd: &str) -> Script {
        let argv = crate::config::value::split_command(cmd).expect("command");
        Script { command: cmd.into(), argv, user: None }
    }

    fn root() -> bool {
        if nix::unistd::geteuid().is_root() {
            return true;
        }
        eprintln!("skipped: needs root to own test files as root and to switch users");
        false
    }

    /// A fresh directory, root-owned 0755, under `/run` (not below a world-writable one, so a
    /// secure walk can pass through it).
    fn secure_dir(tag: &str) -> PathBuf {
        let d = PathBuf::from(format!("/run/hav-proc-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("dir");
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        d
    }

    fn write_script(path: &Path, body: &str) {
        std::fs::write(path, format!("#!/bin/sh\n{body}\n")).expect("write");
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }

    fn nobody() -> Creds {
        resolve(&RunAs { user: "nobody".into(), group: None }).expect("nobody")
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
            let r = Runner::new(false, None);
            // A first run sets up what tokio keeps for child processes (its SIGCHLD pipe).
            assert_eq!(r.run(&script("true"), None, &[], t, "t").await, Outcome::Exited(0));
            let hold = crate::resource::testing::exhaust_descriptors();
            let o = r.run(&script("true"), None, &[], t, "t").await;
            assert!(matches!(o, Outcome::NoResources(ref e) if e.contains("os error 24")), "{o:?}");
            assert!(!o.success());
            drop(hold);
            assert_eq!(r.run(&script("true"), None, &[], t, "t").await, Outcome::Exited(0));
        });
    }

    #[test]
    fn test_missing_program_is_refused() {
        let r = Runner::new(false, None);
        let e = r.prepare(&script("/nonexistent/hav-script arg"), None).expect_err("missing");
        assert!(e.contains("/nonexistent: No such file"), "{e}");
        let e = r.prepare(&script("hav-no-such-program"), None).expect_err("PATH miss");
        assert_eq!(e, format!("hav-no-such-program: not found in {SCRIPT_PATH}"));
        // Refused under script security as well: missing is not secure.
        let e = Runner::new(true, None).prepare(&script("/nonexistent/x"), Some(&RunAs { user: "root".into(), group: None }));
        assert!(e.is_err());
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let o = rt.block_on(r.run(&script("/nonexistent/hav-script"), None, &[], Duration::from_secs(1), "t"));
        assert!(matches!(o, Outcome::Refused(_)), "{o:?}");
    }

    #[test]
    fn test_path_lookup_and_symlinks_resolve_to_the_real_file() {
        let r = Runner::new(false, None);
        let p = r.prepare(&script("sh -c true"), None).expect("sh");
        assert!(p.program.is_absolute() && p.program.file_name().is_some(), "{p:?}");
        let real = std::fs::canonicalize("/bin/sh").expect("canonical");
        assert_eq!(p.program, real, "PATH lookup, then every link followed");
        // A directory is not a program.
        assert!(r.prepare(&script("/tmp"), None).expect_err("dir").contains("not a regular file"));
    }

    #[test]
    fn test_script_security_rejects_writable_paths() {
        if !root() {
            return;
        }
        let secure = Runner::new(true, None);
        let as_root = RunAs { user: "root".into(), group: None };
        assert!(secure.prepare(&script("/bin/sh"), Some(&as_root)).is_ok());
        assert!(secure.prepare(&script("sh"), Some(&as_root)).is_ok(), "found through PATH");
        let dir = secure_dir("sec");
        let f = dir.join("chk.sh");
        write_script(&f, "exit 0");
        let s = script(f.to_str().expect("utf-8"));
        assert!(secure.prepare(&s, Some(&as_root)).is_ok());
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o777)).expect("chmod");
        assert!(secure.prepare(&s, Some(&as_root)).expect_err("777").contains("writable by anyone"));
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o775)).expect("chmod");
        nix::unistd::chown(&f, None, Some(nobody().gid)).expect("chgrp");
        assert!(secure.prepare(&s, Some(&as_root)).expect_err("g+w").contains("writable by group"));
        nix::unistd::chown(&f, None, Some(Gid::from_raw(0))).expect("chgrp");
        assert!(secure.prepare(&s, Some(&as_root)).is_ok(), "group-writable by root's group is fine");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).expect("chmod");
        assert!(secure.prepare(&s, Some(&as_root)).is_err(), "a world-writable directory lets anyone swap the script");
        // Not root: the script runs as another user, who can only hurt itself. Without script
        // security nothing is checked but existence and the execute bit.
        assert!(secure.prepare(&s, Some(&RunAs { user: "nobody".into(), group: None })).is_ok());
        assert!(Runner::new(false, None).prepare(&s, Some(&as_root)).is_ok());
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    /// A root-owned symlink in a safe directory, pointing to a symlink in a directory a user
    /// owns, pointing to a safe file: keepalived's check of the written path and of the real
    /// path would both pass; the link in the user's directory can be swapped, so it is refused.
    #[test]
    fn test_symlink_through_a_user_writable_directory_is_refused() {
        if !root() {
            return;
        }
        let secure = Runner::new(true, None);
        let as_root = RunAs { user: "root".into(), group: None };
        let dir = secure_dir("link");
        let user_dir = dir.join("user");
        std::fs::create_dir(&user_dir).expect("mkdir");
        nix::unistd::chown(&user_dir, Some(nobody().uid), Some(nobody().gid)).expect("chown");
        let real = dir.join("real.sh");
        write_script(&real, "exit 0");
        let inner = user_dir.join("inner");
        std::os::unix::fs::symlink(&real, &inner).expect("symlink");
        // A symlink a root process makes is root's: the danger is the directory.
        let outer = dir.join("outer");
        std::os::unix::fs::symlink(&inner, &outer).expect("symlink");
        let e = secure.prepare(&script(outer.to_str().expect("utf-8")), Some(&as_root)).expect_err("via a user's directory");
        assert!(e.contains("/user is owned by uid 65534"), "{e}");
        // Straight to the file, or through a link in a safe directory: fine, and the file that
        // runs is the real one.
        let safe = dir.join("safe");
        std::os::unix::fs::symlink("real.sh", &safe).expect("symlink");
        let p = secure.prepare(&script(safe.to_str().expect("utf-8")), Some(&as_root)).expect("safe link");
        assert_eq!(p.program, real);
        // A symlink owned by a user, in a safe directory, is refused too.
        let theirs = dir.join("theirs");
        std::os::unix::fs::symlink(&real, &theirs).expect("symlink");
        nix::unistd::fchownat(None, &theirs, Some(nobody().uid), None, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW).expect("lchown");
        let e = secure.prepare(&script(theirs.to_str().expect("utf-8")), Some(&as_root)).expect_err("user's link");
        assert!(e.contains("theirs is owned by uid 65534"), "{e}");
        // In a sticky world-writable directory (/tmp) a user's link is refused by its owner.
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn test_default_user_under_script_security() {
        let secure = Runner::new(true, None);
        let e = secure.prepare(&script("/bin/true"), None).expect_err("no default user");
        assert!(e.contains("no default script user"), "{e}");
        let p = Runner::new(true, Some(nobody())).prepare(&script("/bin/true"), None).expect("script_user");
        assert_eq!(p.creds, Some(nobody()));
        // The notify form's USER GROUP, and a `user` keyword over it.
        let mut s = script("/bin/true");
        s.user = Some(RunAs { user: "nobody".into(), group: Some(":root".into()) });
        let p = secure.prepare(&s, None).expect("own user");
        assert_eq!(p.creds, Some(Creds { uid: nobody().uid, gid: Gid::from_raw(0) }));
        let p = secure.prepare(&s, Some(&RunAs { user: "root".into(), group: None })).expect("user keyword");
        assert_eq!(p.creds.map(|c| c.uid), Some(Uid::from_raw(0)));
        assert!(secure.prepare(&script("/bin/true"), Some(&RunAs { user: "hav-no-such-user".into(), group: None })).is_err());
    }

    fn alive(pid: i32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|s| !s.rsplit(')').next().is_some_and(|r| r.trim_start().starts_with('Z')))
    }

    /// A script that outlives its timeout is killed with its whole process group: a child it
    /// forked dies too, even one that ignores SIGTERM (SIGKILL follows the grace). The script
    /// itself is reaped.
    #[tokio::test]
    async fn test_timeout_kills_the_process_group() {
        let dir = secure_dir("timeout");
        let pids = dir.join("pids");
        let sh = dir.join("slow.sh");
        write_script(
            &sh,
            &format!("sleep 30 &\necho $! >> {p}\n(trap '' TERM; exec sleep 30) &\necho $! >> {p}\necho $$ >> {p}\nsleep 30", p = pids.display()),
        );
        let r = Runner::new(false, None).with_term_grace(Duration::from_millis(300));
        let t = Instant::now();
        let o = r.run(&script(sh.to_str().expect("utf-8")), None, &[], Duration::from_millis(300), "slow").await;
        assert_eq!(o, Outcome::TimedOut);
        assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
        let pids: Vec<i32> = std::fs::read_to_string(&pids).expect("pids").lines().map(|l| l.parse().expect("pid")).collect();
        assert_eq!(pids.len(), 3);
        // Orphans are reaped by init (or a subreaper) a moment later.
        let end = Instant::now() + Duration::from_secs(3);
        while pids.iter().any(|&p| alive(p)) && Instant::now() < end {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        for p in &pids {
            assert!(!alive(*p), "process {p} of the script's group survived");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A script sees `PATH` and nothing else of hav's environment, runs in `/`, gets its
    /// arguments, and `$0` is the configured name.
    #[tokio::test]
    async fn test_environment_is_clean() {
        let dir = secure_dir("env");
        let out = dir.join("env");
        let sh = dir.join("env.sh");
        write_script(&sh, &format!("tr '\\0' '\\n' < /proc/$$/environ > {o}\npwd >> {o}\necho \"$0 $*\" >> {o}", o = out.display()));
        let r = Runner::new(false, None);
        let s = script(&format!("{} a 'b c'", sh.display()));
        let o = r.run(&s, None, &["MASTER".into()], Duration::from_secs(5), "env").await;
        assert_eq!(o, Outcome::Exited(0));
        let text = std::fs::read_to_string(&out).expect("out");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines, vec![format!("PATH={SCRIPT_PATH}").as_str(), "/", &format!("{} a b c MASTER", sh.display())], "{text}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// `USER` runs the script as that user.
    #[tokio::test]
    async fn test_runs_as_the_script_user() {
        if !root() {
            return;
        }
        let r = Runner::new(true, Some(nobody()));
        let o = r.run(&script("/bin/sh -c 'test $(id -u) = 65534 && test $(id -G) = 65534'"), None, &[], Duration::from_secs(5), "id").await;
        assert_eq!(o, Outcome::Exited(0), "as script_user nobody, no supplementary groups");
    }
}
