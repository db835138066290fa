//! What the `hav-linux` command does; `main.rs` only parses arguments.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use anyhow::Context as _;

use crate::config;
use crate::daemon::control::{self, Request};
use crate::daemon::plan::{self, IfaceInfo};
use crate::daemon::run::{self, RunOptions};

/// keepalived's default config path.
pub const DEFAULT_CONFIG: &str = "/etc/keepalived/keepalived.conf";
/// Default PID file.
pub const DEFAULT_PID: &str = "/run/hav-linux.pid";
/// Default control socket.
pub const DEFAULT_CONTROL: &str = "/run/hav-linux.sock";

/// The command line, parsed.
#[derive(Debug, Clone)]
pub struct Options {
    /// The config file.
    pub config: PathBuf,
    /// `--policy` modules.
    pub policies: Vec<PathBuf>,
    /// PID file.
    pub pid_file: PathBuf,
    /// Control socket.
    pub control: PathBuf,
    /// Run VRRP.
    pub vrrp: bool,
    /// Run checkers and IPVS.
    pub lvs: bool,
    /// Metrics address.
    pub metrics: Option<std::net::SocketAddr>,
}

/// Sets up tracing: `filter` is an env-filter directive (`info`, `hav_linux=debug`...).
pub fn init_logging(filter: &str, json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter).unwrap_or_else(|e| {
        eprintln!("hav-linux: bad log filter '{filter}' ({e}); using info");
        tracing_subscriber::EnvFilter::new("info")
    });
    use std::io::IsTerminal as _;
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    if json {
        b.json().init();
    } else {
        b.init();
    }
}

/// A stand-in for interfaces when validating a config away from its host: every name resolves,
/// with an IPv4 and a link-local IPv6 address.
fn placeholder_iface(name: &str) -> Option<IfaceInfo> {
    Some(IfaceInfo {
        index: 1 + name.bytes().fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b))) % 100_000,
        name: name.to_owned(),
        mac: [0x02, 0, 0, 0, 0, 1],
        up: true,
        addrs: vec![IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1))],
    })
}

/// Loads and fully validates the config (everything but the existence of interfaces), printing
/// warnings and errors with their locations. `Err` when invalid.
pub fn validate(opts: &Options) -> Result<config::Loaded, String> {
    let loaded = config::load(&opts.config).map_err(|e| e.to_string())?;
    let mut warnings = Vec::new();
    let plans = plan::plan(&loaded.config, &mut placeholder_iface, &mut warnings).map_err(|e| e.to_string())?;
    for g in &loaded.config.vrrp_sync_groups {
        for (name, loc) in &g.group {
            if !plans.iter().any(|p| &p.meta.name == name) {
                return Err(format!("{loc}: vrrp_sync_group {}: no vrrp_instance {name}", g.name));
            }
        }
    }
    for w in &warnings {
        eprintln!("warning: {w}");
    }
    run::load_policies(&opts.policies, &loaded.config).map_err(|e| format!("{e:#}"))?;
    Ok(loaded)
}

/// `--check`: validate and report (on stdout, errors on stderr); whether the config is valid.
pub fn check(opts: &Options) -> bool {
    match validate(opts) {
        Ok(loaded) => {
            for w in &loaded.warnings {
                eprintln!("warning: {w}");
            }
            let c = &loaded.config;
            println!(
                "{}: OK ({} vrrp_instance, {} vrrp_sync_group, {} vrrp_script, {} virtual_server)",
                opts.config.display(),
                c.vrrp_instances.len(),
                c.vrrp_sync_groups.len(),
                c.vrrp_scripts.len(),
                c.virtual_servers.len()
            );
            true
        }
        Err(e) => {
            eprintln!("error: {e}");
            false
        }
    }
}

/// Runs the daemon in the foreground until SIGTERM.
pub fn run_daemon(opts: Options) -> anyhow::Result<()> {
    // Thousands of checkers and scripts need more than the usual soft limit of 1024
    // descriptors; the hard limit is what the administrator allows.
    match crate::resource::raise_nofile_limit() {
        Ok((before, after)) => tracing::debug!(before, after, "RLIMIT_NOFILE soft limit"),
        Err(e) => tracing::warn!(error = %e, "RLIMIT_NOFILE not raised"),
    }
    let loaded = config::load(&opts.config).map_err(|e| anyhow::anyhow!("{e}"))?;
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    // The VRRP loop owns its thread: sockets, timers and adverts are handled where they wake up,
    // with no hop between threads. Checkers get a runtime of their own (daemon::director), and
    // policies theirs (policy::PolicySet).
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let ropts = RunOptions {
        config: opts.config.clone(),
        control: opts.control.clone(),
        pid_file: opts.pid_file.clone(),
        metrics: opts.metrics,
        vrrp: opts.vrrp,
        lvs: opts.lvs,
        policies: opts.policies.clone(),
    };
    rt.block_on(run::run(ropts, loaded))
}

/// `status`: prints the daemon's instances.
pub fn status(opts: &Options, json: bool) -> anyhow::Result<()> {
    let reply = control::request(&opts.control, &Request { cmd: "status".into(), instance: None })
        .map_err(anyhow::Error::msg)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&reply)?);
        return Ok(());
    }
    println!("{:<16} {:<10} {:>4} {:<7} {:>4} {:<16} VIPS", "INSTANCE", "INTERFACE", "VRID", "STATE", "PRIO", "MASTER");
    for i in reply["instances"].as_array().into_iter().flatten() {
        println!(
            "{:<16} {:<10} {:>4} {:<7} {:>4} {:<16} {}",
            i["name"].as_str().unwrap_or("?"),
            i["interface"].as_str().unwrap_or("?"),
            i["vrid"],
            i["state"].as_str().unwrap_or("?"),
            i["effective_priority"],
            i["master"].as_str().unwrap_or("-"),
            i["vips"].as_array().map(|v| v.iter().filter_map(|x| x.as_str()).collect::<Vec<_>>().join(",")).unwrap_or_default()
        );
    }
    Ok(())
}

/// An admin command (`standby`, `takeover`, `resume`, `reload`).
pub fn control(opts: &Options, cmd: &str, instance: Option<&str>) -> anyhow::Result<()> {
    let reply = control::request(&opts.control, &Request { cmd: cmd.into(), instance: instance.map(str::to_owned) })
        .map_err(anyhow::Error::msg)?;
    if reply["ok"].as_bool() == Some(true) {
        match reply["state"].as_str() {
            Some(s) => println!("{}: {s}", instance.unwrap_or("")),
            None => println!("ok"),
        }
        Ok(())
    } else {
        anyhow::bail!("{}", reply["error"].as_str().unwrap_or("failed"))
    }
}

/// `demo`: two routers in network namespaces, a failover, then cleanup.
pub fn demo(opts: &Options) -> anyhow::Result<()> {
    crate::demo::run(opts)
}
