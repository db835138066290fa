//! `hav-linux ipvs ...`: one-shot IPVS reconciliation and table inspection.
//!
//! ```text
//! hav-linux -f CONF ipvs apply [--all-up] [--master VI]... [--down RS]... [--then CONF2]... [--repeat N]
//! hav-linux ipvs dump          # the kernel's table as ipvsadm -R rules
//! hav-linux -f CONF ipvs rules # the config's table (all up) as ipvsadm -R rules
//! hav-linux ipvs flush | info | set-timeouts TCP TCP_FIN UDP
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context as _;

use super::{table, Director, LvsError};
use crate::config::{self, Config};
use crate::health::{Health, HealthEvent, RealServerRef};
use crate::ipvs;

/// `hav-linux ipvs`.
#[derive(Debug, clap::Args)]
pub struct IpvsArgs {
    /// What to do.
    #[command(subcommand)]
    pub cmd: IpvsCmd,
}

/// The `ipvs` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum IpvsCmd {
    /// Reconcile the kernel's IPVS table with the config (-f) once, print what changed and how long it took.
    Apply {
        /// Treat checkers that have not reported as passing, even with `alpha`.
        #[arg(long)]
        all_up: bool,
        /// Consider this VRRP instance master (ha_suspend services, lvs_sync_daemon); repeatable.
        #[arg(long, value_name = "INSTANCE")]
        master: Vec<String>,
        /// Delete every service the config does not name (like keepalived's lvs_flush, but only the difference).
        #[arg(long)]
        prune: bool,
        /// After applying, report this real server (ADDR:PORT as configured) down in every virtual server; repeatable.
        #[arg(long, value_name = "ADDR:PORT")]
        down: Vec<SocketAddr>,
        /// After --down, report this real server up again; repeatable.
        #[arg(long, value_name = "ADDR:PORT")]
        up: Vec<SocketAddr>,
        /// Then reload this config (in the same director); repeatable, in order.
        #[arg(long, value_name = "CONF")]
        then: Vec<PathBuf>,
        /// Finally reload the last config this many more times (no-op reloads).
        #[arg(long, default_value_t = 0)]
        repeat: u32,
        /// Do not run notify/quorum scripts.
        #[arg(long)]
        no_scripts: bool,
        /// On reloads, read every real server back from the kernel instead of trusting the table as last applied.
        #[arg(long)]
        full_dump: bool,
    },
    /// Print the kernel's IPVS table as `ipvsadm -R` rules.
    Dump,
    /// Print the table the config asks for (every real server up) as `ipvsadm -R` rules.
    Rules,
    /// Delete every IPVS service.
    Flush,
    /// Set the connection timeouts in seconds (0 leaves one unchanged).
    SetTimeouts {
        /// Established TCP.
        tcp: u32,
        /// TCP after FIN.
        tcp_fin: u32,
        /// UDP.
        udp: u32,
    },
    /// Print IPVS version, connection table size, timeouts and sync daemons.
    Info,
}

/// `println!` that does not panic when stdout is closed (`| head`).
macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($t)*);
    }};
}

/// `print!` likewise.
macro_rules! out_raw {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout(), $($t)*);
    }};
}

fn load(path: &Path) -> anyhow::Result<Config> {
    let loaded = config::load(path).map_err(|e| anyhow::anyhow!("{e}"))?;
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    Ok(loaded.config)
}

fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn print_result(what: &str, r: Result<super::ApplyReport, LvsError>, t: Instant) -> anyhow::Result<()> {
    match r {
        Ok(rep) => {
            out!("{what}: {rep}; total {:.3} ms", ms(t.elapsed()));
            Ok(())
        }
        Err(LvsError::Partial { report, errors }) => {
            out!("{what}: {report}; total {:.3} ms", ms(t.elapsed()));
            for e in &errors {
                eprintln!("hav-linux: {e}");
            }
            anyhow::bail!("{} IPVS changes failed", errors.len())
        }
        Err(e) => Err(e).with_context(|| what.to_owned()),
    }
}

fn verdicts(d: &mut Director, config: &Config, addr: SocketAddr, health: Health) -> anyhow::Result<()> {
    let mut found = false;
    for vs in &config.virtual_servers {
        for rs in vs.real_servers.iter().filter(|r| r.addr == addr) {
            found = true;
            if rs.checkers.is_empty() {
                eprintln!("hav-linux: real server {addr} at {} has no checker: its state cannot change", rs.location);
            }
            for i in 0..rs.checkers.len() {
                let ev = HealthEvent { rs: RealServerRef::new(vs, addr), checker: i, health };
                let t = Instant::now();
                print_result(&format!("{health:?} {addr} checker {i}"), d.health(&ev), t)?;
            }
        }
    }
    if !found {
        anyhow::bail!("no real server {addr} in the config");
    }
    Ok(())
}

/// Runs `hav-linux ipvs ...` with the config at `config_path`.
pub fn run(args: IpvsArgs, config_path: &Path) -> anyhow::Result<()> {
    match args.cmd {
        IpvsCmd::Apply { all_up, master, prune, down, up, then, repeat, no_scripts, full_dump } => {
            let t = Instant::now();
            let client = ipvs::Client::new()?;
            let mut d = Director::new(client);
            // One shot: routes of announced virtual servers would outlive the command.
            d.set_announce(false);
            d.set_assume_up(all_up);
            d.set_run_scripts(!no_scripts);
            d.set_prune(prune);
            d.set_full_dump(full_dump);
            for m in &master {
                d.vrrp_state(m, true)?;
            }
            let mut config = load(config_path)?;
            // Scripts run as the daemon's would (script_user, enable_script_security), each to
            // its end before the command goes on.
            d.set_scripts(crate::daemon::proc::Runner::from_config(&config), None);
            out!("open+parse: {:.3} ms", ms(t.elapsed()));
            let t = Instant::now();
            print_result(&format!("apply {}", config_path.display()), d.apply(&config), t)?;
            for a in down {
                verdicts(&mut d, &config, a, Health::Down)?;
            }
            for a in up {
                verdicts(&mut d, &config, a, Health::Up)?;
            }
            let mut last = config_path.to_path_buf();
            for p in then {
                let t = Instant::now();
                config = load(&p)?;
                let parse = t.elapsed();
                // The daemon hands its parsed config over; so does this.
                let owned = config.clone();
                let t = Instant::now();
                print_result(&format!("reload {} (parse {:.3} ms)", p.display(), ms(parse)), d.apply_owned(owned), t)?;
                last = p;
            }
            for i in 0..repeat {
                let owned = config.clone();
                let t = Instant::now();
                print_result(&format!("reload#{} {}", i + 1, last.display()), d.apply_owned(owned), t)?;
            }
            Ok(())
        }
        IpvsCmd::Dump => {
            let mut c = ipvs::Client::new()?;
            out_raw!("{}", table::to_ipvsadm_rules(&table::from_dump(c.table()?)));
            Ok(())
        }
        IpvsCmd::Rules => {
            let config = load(config_path)?;
            let t = table::desired(
                &config,
                |vi| {
                    config.virtual_servers[vi]
                        .real_servers
                        .iter()
                        .map(|r| table::RsView { alive: true, weight: r.weight })
                        .collect()
                },
                |_| true,
                |_| true,
            )?;
            out_raw!("{}", table::to_ipvsadm_rules(&t));
            Ok(())
        }
        IpvsCmd::Flush => {
            ipvs::Client::new()?.flush()?;
            Ok(())
        }
        IpvsCmd::SetTimeouts { tcp, tcp_fin, udp } => {
            ipvs::Client::new()?.set_timeouts(&ipvs::Timeouts { tcp, tcp_fin, udp })?;
            Ok(())
        }
        IpvsCmd::Info => {
            let mut c = ipvs::Client::new()?;
            let info = c.info()?;
            let t = c.timeouts()?;
            out!(
                "IPVS {} (connection table size {}), generic netlink family {}",
                info.version_string(),
                info.conn_tab_size,
                c.family_id()
            );
            out!("timeouts: tcp {} s, tcp fin {} s, udp {} s", t.tcp, t.tcp_fin, t.udp);
            for d in c.daemons()? {
                out!(
                    "sync daemon: {:?} on {} syncid {}{}",
                    d.state,
                    d.ifname,
                    d.sync_id,
                    d.group.map(|g| format!(" group {g}")).unwrap_or_default()
                );
            }
            Ok(())
        }
    }
}
