//! `hav-linux`: the keepalived-compatible daemon and its command line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use hav_linux::cli;

/// Exit code: the config (or a policy) is invalid.
const EXIT_INVALID: u8 = 1;

/// hav: VRRP and IPVS high availability, keepalived-compatible.
#[derive(Debug, Parser)]
#[command(name = "hav-linux", version, about, long_about = None)]
struct Args {
    /// The keepalived.conf to use.
    #[arg(short = 'f', long = "use-file", env = "HAV_CONFIG", default_value = cli::DEFAULT_CONFIG, global = true)]
    config: PathBuf,

    /// Validate the config (and policies) and exit: 0 valid, 1 invalid, 2 usage error.
    #[arg(short = 't', long = "check", visible_alias = "config-test")]
    check: bool,

    /// A WASM policy module to load; repeat for more.
    #[arg(long = "policy", value_name = "FILE", global = true)]
    policies: Vec<PathBuf>,

    /// Log level or filter (`info`, `debug`, `hav_linux=trace`...); overrides HAV_LOG.
    #[arg(short = 'l', long = "log-level", env = "HAV_LOG", default_value = "info", global = true)]
    log_level: String,

    /// Log format.
    #[arg(long = "log-format", value_enum, default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,

    /// PID file of the daemon.
    #[arg(short = 'p', long = "pid", default_value = cli::DEFAULT_PID, global = true)]
    pid_file: PathBuf,

    /// The daemon's control socket (status, standby, takeover, resume, reload).
    #[arg(short = 's', long = "control", default_value = cli::DEFAULT_CONTROL, global = true)]
    control: PathBuf,

    /// Run only the VRRP part (no checkers, no IPVS), like keepalived -P.
    #[arg(short = 'P', long = "vrrp")]
    vrrp_only: bool,

    /// Run only the checkers and IPVS (no VRRP), like keepalived -C.
    #[arg(short = 'C', long = "lvs")]
    lvs_only: bool,

    /// Serve Prometheus metrics on this address (e.g. 127.0.0.1:9650).
    #[arg(long = "metrics", value_name = "ADDR")]
    metrics: Option<std::net::SocketAddr>,

    #[command(subcommand)]
    cmd: Option<Cmd>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Show the running daemon's instances (as JSON with --json).
    Status {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Hold an instance in BACKUP (it advertises priority 0 if it was master).
    Standby {
        /// Instance name.
        instance: String,
    },
    /// Make an instance take over as master now.
    Takeover {
        /// Instance name.
        instance: String,
    },
    /// Return an instance to the normal election.
    Resume {
        /// Instance name.
        instance: String,
    },
    /// Ask the running daemon to reload its config.
    Reload,
    /// Run a two-router VRRP demo in network namespaces and show a failover.
    Demo,
    /// Program the kernel's IPVS table from the config once, or inspect it.
    Ipvs(hav_linux::lvs::cli::IpvsArgs),
}

fn main() -> ExitCode {
    // wasmtime builds (and drops) an error on every instantiation; with RUST_BACKTRACE set each
    // would capture a backtrace. Panics keep theirs.
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        std::env::set_var("RUST_LIB_BACKTRACE", "0");
    }
    let args = Args::parse();
    cli::init_logging(&args.log_level, matches!(args.log_format, LogFormat::Json));
    let opts = cli::Options {
        config: args.config.clone(),
        policies: args.policies.clone(),
        pid_file: args.pid_file.clone(),
        control: args.control.clone(),
        vrrp: !args.lvs_only,
        lvs: !args.vrrp_only,
        metrics: args.metrics,
    };
    if args.check {
        return if cli::check(&opts) { ExitCode::SUCCESS } else { ExitCode::from(EXIT_INVALID) };
    }
    let result = match args.cmd {
        None => cli::run_daemon(opts),
        Some(Cmd::Status { json }) => cli::status(&opts, json),
        Some(Cmd::Standby { instance }) => cli::control(&opts, "standby", Some(&instance)),
        Some(Cmd::Takeover { instance }) => cli::control(&opts, "takeover", Some(&instance)),
        Some(Cmd::Resume { instance }) => cli::control(&opts, "resume", Some(&instance)),
        Some(Cmd::Reload) => cli::control(&opts, "reload", None),
        Some(Cmd::Demo) => cli::demo(&opts),
        Some(Cmd::Ipvs(a)) => hav_linux::lvs::cli::run(a, &opts.config),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hav-linux: {e:#}");
            ExitCode::from(EXIT_INVALID)
        }
    }
}
