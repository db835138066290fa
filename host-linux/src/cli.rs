//! What the `hav-linux` command does; `main.rs` only parses arguments ([`args`]) and calls
//! these.

pub mod args;
pub mod detach;
pub mod syslog;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::config;
use crate::daemon::control::{self, Request};
use crate::daemon::plan::{self, IfaceInfo};
use crate::daemon::run::{self, RunOptions};

pub use args::DEFAULT_CONFIG;

/// Default PID file.
pub const DEFAULT_PID: &str = "/run/hav-linux.pid";
/// Default control socket.
pub const DEFAULT_CONTROL: &str = "/run/hav-linux.sock";

/// The keepalived release whose command line and configuration hav follows. `-v` prints it as
/// keepalived does (`Keepalived vX.Y.Z ...` on the first line of stderr): configuration tools
/// and exporters read it to decide what the daemon understands.
pub const KEEPALIVED_VERSION: &str = "2.2.8";

/// What `-v` / `--version` prints (on stderr, as keepalived does).
pub fn version_text() -> String {
    format!(
        "Keepalived v{KEEPALIVED_VERSION} (hav-linux {}, keepalived-compatible)\n\nhav-linux {}: VRRP and IPVS high availability, a drop-in for keepalived {KEEPALIVED_VERSION}\n",
        env!("CARGO_PKG_VERSION"),
        env!("CARGO_PKG_VERSION")
    )
}

/// The command line, parsed: what the daemon and the subcommands are asked to do.
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
    /// `-n`: stay in the foreground.
    pub dont_fork: bool,
    /// `-s NAME`: the network namespace the process entered.
    pub namespace: Option<String>,
    /// `-D` given this many times: detail in log lines.
    pub log_detail: u8,
    /// `-d`: dump the configuration to the log at start-up (and after each reload).
    pub dump_conf: bool,
    /// `-X`: an instance leaving MASTER releases its VIPs even if this run did not add them.
    pub release_vips: bool,
    /// `-V`: leave VIPs and VMACs in place when the daemon stops.
    pub dont_release_vrrp: bool,
    /// `-I`: leave the IPVS table in place when the daemon stops.
    pub dont_release_ipvs: bool,
    /// `-a`: log every address the kernel adds or deletes.
    pub address_monitoring: bool,
    /// `-x`: run the SNMP subagent.
    pub snmp: bool,
    /// `-A`: the SNMP master agent's socket (keepalived's default when `None`).
    pub snmp_socket: Option<String>,
    /// `-i`: the config id for conditional (`@ID`) config lines.
    pub config_id: Option<String>,
    /// `-e`: a missing include is an error.
    pub all_config: bool,
    /// `--ignore-sigint`: SIGINT does not stop the daemon.
    pub ignore_sigint: bool,
    /// `--strict`: with `-t`, warnings fail the check.
    pub strict: bool,
}

impl Options {
    /// The options of a command line. PID file and control socket default to hav's paths, with
    /// the namespace's name in them under `-s NAME` (one daemon per namespace).
    pub fn from_args(a: &args::Args) -> Options {
        let suffix = a.namespace.as_deref().map(|n| format!("-{n}")).unwrap_or_default();
        let both = a.all || a.vrrp_only == a.checkers_only;
        Options {
            config: a.config.clone(),
            policies: a.policies.clone(),
            pid_file: a.pid_file.clone().unwrap_or_else(|| PathBuf::from(format!("/run/hav-linux{suffix}.pid"))),
            control: a.control.clone().unwrap_or_else(|| PathBuf::from(format!("/run/hav-linux{suffix}.sock"))),
            vrrp: both || a.vrrp_only,
            lvs: both || a.checkers_only,
            metrics: a.metrics,
            dont_fork: a.dont_fork,
            namespace: a.namespace.clone(),
            log_detail: a.log_detail,
            dump_conf: a.dump_conf,
            release_vips: a.release_vips,
            dont_release_vrrp: a.dont_release_vrrp,
            dont_release_ipvs: a.dont_release_ipvs,
            address_monitoring: a.address_monitoring,
            snmp: a.snmp,
            snmp_socket: a.snmp_socket.clone(),
            config_id: a.config_id.clone(),
            all_config: a.all_config,
            ignore_sigint: a.ignore_sigint,
            strict: a.strict,
        }
    }

    /// How the config is read: the config id of `@ID` lines (`-i`, else the host name) and
    /// whether a missing include is an error (`-e`).
    pub fn load_options(&self) -> config::Options {
        let mut o = config::Options::default();
        if let Some(id) = &self.config_id {
            o.config_id.clone_from(id);
        }
        if self.all_config {
            o.include_check = config::IncludeCheck::ALL;
        }
        o
    }
}

/// One warning for each option given that hav accepts but does not act on, for the daemon
/// (`daemon`) or for every command.
///
/// Options the daemon is to act on once `RunOptions` carries them are listed here until then.
pub fn unhonoured(a: &args::Args, daemon: bool) -> Vec<String> {
    let mut w = Vec::new();
    let mut say = |given: bool, text: &str| {
        if given {
            w.push(text.to_owned());
        }
    };
    if let Some(f) = a.log_facility.as_ref().filter(|f| !args::is_log_facility(f)) {
        say(true, &format!("-S {f}: invalid log facility (0-7, local0-local7, user, daemon); using daemon"));
    }
    for (given, opt) in [(&a.vrrp_pid_file, "-r"), (&a.checkers_pid_file, "-c")] {
        if let Some(p) = given {
            say(true, &format!("{opt} {}: hav runs VRRP and the checkers in one process; only the -p PID file is written", p.display()));
        }
    }
    if let Some(p) = &a.bfd_pid_file {
        say(true, &format!("-b {}: hav has no BFD; not written", p.display()));
    }
    say(a.perf.is_some(), "--perf: keepalived's perf collection is not part of hav; ignored");
    say(a.debug.is_some(), "--debug: keepalived's debug options are not part of hav; use --log-level; ignored");
    say(a.no_mem_check || a.mem_check_log || a.openssl_mem_check, "keepalived's memory-check options are not part of hav; ignored");
    say(a.config_fd.is_some(), "--config-fd: keepalived's internal option; ignored");
    if daemon {
        // Until the daemon (RunOptions) takes these.
        say(a.release_vips, "-X: hav always releases the VIPs of an instance that leaves MASTER; accepted");
    }
    w
}

/// Enters the network namespace `/run/netns/NAME` (as `ip netns exec` names them), for this
/// thread and every thread it starts after: call it before any other thread exists.
pub fn enter_namespace(name: &str) -> anyhow::Result<()> {
    if !args::is_netns_name(name) {
        anyhow::bail!("-s {name}: not a network namespace name");
    }
    let path = Path::new("/run/netns").join(name);
    let f = std::fs::File::open(&path).with_context(|| format!("network namespace {name} ({})", path.display()))?;
    nix::sched::setns(&f, nix::sched::CloneFlags::CLONE_NEWNET).with_context(|| format!("entering network namespace {name}"))?;
    Ok(())
}

/// `-u MASK`: sets the process umask; `Err` names a mask that is not one.
pub fn set_umask(mask: &str) -> anyhow::Result<()> {
    let bits = args::parse_umask(mask).ok_or_else(|| anyhow::anyhow!("invalid --umask {mask}"))?;
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(bits));
    Ok(())
}

/// `-m` / `-M`: core dumps on a crash. Restores the previous `core_pattern` when dropped.
#[derive(Debug)]
pub struct CoreDumps {
    restore_pattern: Option<String>,
}

const CORE_PATTERN: &str = "/proc/sys/kernel/core_pattern";

impl CoreDumps {
    /// Raises RLIMIT_CORE to unlimited (or to the hard limit without the privilege to raise
    /// it), and with a pattern sets the kernel's `core_pattern` until dropped.
    pub fn enable(pattern: Option<&str>) -> CoreDumps {
        use nix::sys::resource::{getrlimit, setrlimit, Resource, RLIM_INFINITY};
        if setrlimit(Resource::RLIMIT_CORE, RLIM_INFINITY, RLIM_INFINITY).is_err() {
            let hard = getrlimit(Resource::RLIMIT_CORE).map(|(_, h)| h).unwrap_or(0);
            if let Err(e) = setrlimit(Resource::RLIMIT_CORE, hard, hard) {
                tracing::warn!(error = %e, "-m: core file size limit not raised");
            }
        }
        let restore_pattern = pattern.and_then(|p| {
            let old = std::fs::read_to_string(CORE_PATTERN).ok()?;
            match std::fs::write(CORE_PATTERN, p) {
                Ok(()) => Some(old.trim_end_matches('\n').to_owned()),
                Err(e) => {
                    tracing::warn!(error = %e, pattern = p, "-M: core_pattern not set");
                    None
                }
            }
        });
        CoreDumps { restore_pattern }
    }
}

impl Drop for CoreDumps {
    fn drop(&mut self) {
        if let Some(old) = self.restore_pattern.take() {
            if let Err(e) = std::fs::write(CORE_PATTERN, old) {
                tracing::warn!(error = %e, "core_pattern not restored");
            }
        }
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Default)]
pub struct LogSetup {
    /// An env-filter directive (`info`, `hav_linux=debug`...).
    pub filter: String,
    /// One JSON object per line.
    pub json: bool,
    /// `-D` count: 1 adds thread names, 2 also source locations.
    pub detail: u8,
    /// `-g FILE`: lines are also appended there.
    pub file: Option<PathBuf>,
    /// Lines go to syslog with this facility ([`syslog::facility_code`]).
    pub syslog: Option<u8>,
    /// With `syslog`, lines go to stderr too (`-l`, `--log-console`).
    pub console_too: bool,
}

impl LogSetup {
    /// Where the daemon logs, as keepalived decides it: syslog when `-S FACILITY` is given or
    /// the daemon detached (keepalived's default, facility daemon), unless `-G`; stderr when
    /// syslog is not used, or with `-l` as well. A foreground daemon without `-S` logs to
    /// stderr only (the journal under systemd), where keepalived would use syslog: a deliberate
    /// difference, so a unit's journal has each line once.
    pub fn destinations(a: &args::Args, daemon: bool, detached: bool) -> (Option<u8>, bool) {
        if !daemon || a.no_syslog {
            return (None, true);
        }
        let facility = match &a.log_facility {
            Some(f) => Some(syslog::facility_code(f).unwrap_or(syslog::DAEMON)),
            None if detached => Some(syslog::DAEMON),
            None => None,
        };
        (facility, a.log_console)
    }
}

/// Sets up tracing: `filter` is an env-filter directive (`info`, `hav_linux=debug`...).
pub fn init_logging(filter: &str, json: bool) {
    init_logging_with(&LogSetup { filter: filter.to_owned(), json, ..LogSetup::default() });
}

/// Sets up tracing on stderr, and a log file when one is given (which, if it cannot be opened,
/// is reported and left out).
pub fn init_logging_with(setup: &LogSetup) {
    use std::io::IsTerminal as _;
    use tracing_subscriber::fmt::writer::{BoxMakeWriter, MakeWriterExt as _};
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    use tracing_subscriber::Layer as _;
    let filter = tracing_subscriber::EnvFilter::try_new(&setup.filter).unwrap_or_else(|e| {
        eprintln!("hav-linux: bad log filter '{}' ({e}); using info", setup.filter);
        tracing_subscriber::EnvFilter::new("info")
    });
    let syslog = setup.syslog.and_then(|f| {
        syslog::Syslog::connect(f).map_err(|e| eprintln!("hav-linux: syslog {e}; logging to stderr")).ok()
    });
    let stderr = syslog.is_none() || setup.console_too;
    let file = setup.file.as_ref().and_then(|p| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .map_err(|e| eprintln!("hav-linux: log file {}: {e}; logging to stderr only", p.display()))
            .ok()
    });
    let ansi = stderr && file.is_none() && std::io::stderr().is_terminal();
    // Each line is written whole to the file (no buffer), which is what --flush-log-file asks.
    let console = match (stderr, file) {
        (true, Some(f)) => Some(BoxMakeWriter::new(std::io::stderr.and(std::sync::Mutex::new(f)))),
        (false, Some(f)) => Some(BoxMakeWriter::new(std::sync::Mutex::new(f))),
        (true, None) => Some(BoxMakeWriter::new(std::io::stderr)),
        (false, None) => None,
    };
    let console = console.map(|w| {
        let l = tracing_subscriber::fmt::layer()
            .with_writer(w)
            .with_ansi(ansi)
            .with_thread_names(setup.detail >= 1)
            .with_file(setup.detail >= 2)
            .with_line_number(setup.detail >= 2);
        if setup.json {
            l.json().boxed()
        } else {
            l.boxed()
        }
    });
    // The receiver stamps the time; the priority carries the level.
    let syslog = syslog.map(|w| {
        tracing_subscriber::fmt::layer()
            .with_writer(w)
            .with_ansi(false)
            .without_time()
            .with_level(false)
            .with_thread_names(setup.detail >= 1)
            .with_file(setup.detail >= 2)
            .with_line_number(setup.detail >= 2)
    });
    tracing_subscriber::registry().with(filter).with(console).with(syslog).init();
}

/// `-t LOG_FILE`: from now on stderr appends to `path` (what keepalived's config test does).
pub fn redirect_stderr(path: &Path) -> anyhow::Result<()> {
    use std::os::fd::AsRawFd as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .with_context(|| format!("config-test log file {}", path.display()))?;
    nix::unistd::dup2(f.as_raw_fd(), libc::STDERR_FILENO).context("redirecting stderr")?;
    Ok(())
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
    let loaded = config::load_with(&opts.config, &opts.load_options()).map_err(|e| e.to_string())?;
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
            if opts.dump_conf {
                // -t -d: the configuration as the sections read it, after conditionals,
                // definitions, sequences and includes.
                let id = opts.load_options().config_id;
                match config::expand(&opts.config, &id) {
                    Ok(text) => print!("{text}"),
                    Err(e) => eprintln!("error: {e}"),
                }
            }
            if opts.strict && !loaded.warnings.is_empty() {
                eprintln!("error: {} warning(s), and --strict makes them fail the check", loaded.warnings.len());
                return false;
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
    // Before any thread starts: the variables are read and removed, so that scripts the daemon
    // runs do not inherit them.
    let notify = match crate::daemon::sdnotify::Notify::take_from_env() {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!("{e}; no systemd notifications");
            crate::daemon::sdnotify::Notify::disabled()
        }
    };
    let loaded = config::load_with(&opts.config, &opts.load_options()).map_err(|e| anyhow::anyhow!("{e}"))?;
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    if opts.dump_conf {
        dump_config(&loaded.config);
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
        notify: std::sync::Arc::new(notify),
        dump_conf: opts.dump_conf,
        dont_release_vrrp: opts.dont_release_vrrp,
        dont_release_ipvs: opts.dont_release_ipvs,
        address_monitoring: opts.address_monitoring,
        ignore_sigint: opts.ignore_sigint,
        snmp: snmp_socket(&opts)?,
        load: opts.load_options(),
    };
    rt.block_on(run::run(ropts, loaded))
}

/// `-x` (with `-A`): the AgentX socket the SNMP subagent connects to, when it runs. As in
/// keepalived, `-A` alone only names the socket.
fn snmp_socket(opts: &Options) -> anyhow::Result<Option<PathBuf>> {
    if !opts.snmp {
        return Ok(None);
    }
    let spec = opts.snmp_socket.as_deref().unwrap_or(crate::snmp::DEFAULT_SOCKET);
    match crate::snmp::socket_path(spec) {
        Some(p) => Ok(Some(p)),
        None => anyhow::bail!("-A {spec}: only a Unix AgentX socket (a path or unix:PATH) is supported"),
    }
}

/// `-d`: the configuration as hav understood it, to the log, one line per line of the dump.
pub fn dump_config(config: &config::Config) {
    tracing::info!("------< configuration >------");
    for line in format!("{config:#?}").lines() {
        tracing::info!("{line}");
    }
    tracing::info!("------< end of configuration >------");
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
