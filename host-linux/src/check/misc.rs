//! MISC_CHECK: run a program. Exit 0 is up, 1 is down; with `misc_dynamic`, 2..=255 is up with
//! weight (code - 2). Any other end (other codes without `misc_dynamic`, a signal, the
//! `misc_timeout`) is down.
//!
//! The program runs as every script hav runs ([`crate::daemon::proc::Runner`]): as its `user`,
//! else `script_user`, with `enable_script_security`, a clean environment, and its own process
//! group, killed whole on timeout or when the checker stops (reload, shutdown). The settings are
//! those the director installed from `global_defs` ([`Runner::for_checks`]).

use super::{ProbeError, Verdict};
use crate::config::check::{CheckCommon, MiscCheck};
use crate::daemon::proc::{Outcome, Runner};

/// One MISC_CHECK probe.
pub(super) async fn check(m: &MiscCheck, c: &CheckCommon) -> Result<Verdict, ProbeError> {
    probe(&Runner::for_checks(), m, c).await
}

async fn probe(runner: &Runner, m: &MiscCheck, c: &CheckCommon) -> Result<Verdict, ProbeError> {
    let timeout = m.misc_timeout.unwrap_or(c.delay_loop);
    let what = format!("MISC_CHECK {}", m.misc_path.command);
    let cmd = &m.misc_path.command;
    match runner.run(&m.misc_path, m.user.as_ref(), &[], timeout, &what).await {
        Outcome::Exited(0) => Ok(Verdict::Up),
        Outcome::Exited(code @ 2..=255) if m.misc_dynamic => Ok(Verdict::Weight(u32::try_from(code - 2).unwrap_or(0))),
        Outcome::Exited(code) => Err(format!("'{cmd}' exited {code}").into()),
        Outcome::Signaled(s) => Err(format!("'{cmd}' ended by signal {s}").into()),
        Outcome::TimedOut => Err(format!("'{cmd}' killed after misc_timeout {timeout:?}").into()),
        Outcome::Refused(why) => Err(format!("'{cmd}' not run: {why}").into()),
        Outcome::SpawnFailed(e) => Err(format!("cannot run '{cmd}': {e}").into()),
        Outcome::NoResources(e) => Err(ProbeError::NoResources(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::value::RunAs;
    use std::time::Duration;

    fn misc(cmd: &str, user: Option<&str>) -> MiscCheck {
        let argv = crate::config::value::split_command(cmd).expect("command");
        MiscCheck {
            misc_path: crate::config::Script { command: cmd.into(), argv, user: None },
            misc_timeout: Some(Duration::from_secs(5)),
            misc_dynamic: true,
            user: user.map(|u| RunAs { user: u.into(), group: None }),
        }
    }

    fn common() -> CheckCommon {
        let text = "virtual_server 10.0.0.1 80 {\n real_server 10.0.0.2 80 {\n  MISC_CHECK {\n   misc_path /bin/true\n  }\n }\n}\n";
        let c = crate::config::load_str(std::path::Path::new("t.conf"), text).expect("config").config;
        c.virtual_servers[0].real_servers[0].checkers[0].common.clone()
    }

    const AS_NOBODY: &str = "/bin/sh -c 'test $(id -u) = 65534'";

    /// MISC_CHECK runs as its `user`, else as `script_user`; exit codes map as keepalived's.
    #[tokio::test]
    async fn test_misc_check_runs_as_script_user() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root to switch users");
            return;
        }
        let c = common();
        let nobody = crate::daemon::proc::resolve(&RunAs { user: "nobody".into(), group: None }).expect("nobody");
        let own = Runner::new(false, None);
        assert_eq!(probe(&own, &misc(AS_NOBODY, Some("nobody")), &c).await.ok(), Some(Verdict::Up), "its user keyword");
        assert!(probe(&own, &misc(AS_NOBODY, None), &c).await.is_err(), "as root without one");
        let script_user = Runner::new(true, Some(nobody));
        assert_eq!(probe(&script_user, &misc(AS_NOBODY, None), &c).await.ok(), Some(Verdict::Up), "script_user");
        // Installed for the checkers, as the director does.
        script_user.install_for_checks();
        assert_eq!(check(&misc(AS_NOBODY, None), &c).await.ok(), Some(Verdict::Up));
        Runner::new(false, None).install_for_checks();
        assert_eq!(probe(&own, &misc("/bin/sh -c 'exit 12'", None), &c).await.ok(), Some(Verdict::Weight(10)));
    }

    /// With script security and no script user, a MISC_CHECK without its own user is not run.
    #[tokio::test]
    async fn test_misc_check_refused_under_script_security() {
        let c = common();
        let e = probe(&Runner::new(true, None), &misc("/bin/true", None), &c).await.expect_err("refused");
        assert!(e.to_string().contains("not run: enable_script_security"), "{e}");
        let e = probe(&Runner::new(false, None), &misc("/nonexistent/check", None), &c).await.expect_err("refused");
        assert!(e.to_string().contains("not run: /nonexistent"), "{e}");
    }
}
