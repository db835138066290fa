//! The `hav-linux` command line as clap defines it: keepalived(8)'s options with keepalived's
//! meaning, hav's own options under long names, and hav's subcommands. `main.rs` parses it; the
//! man page and the shell completions are generated from the same definition
//! (`cargo run -p hav-linux --example gen-docs`).
//!
//! keepalived parses with getopt_long, clap does not quite: [`getopt_compat`] rewrites the
//! forms getopt accepts and clap would read differently (an optional argument glued to its short
//! option, `-tFILE`; such an option inside a cluster, `-DtFILE`) before clap sees them.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{ArgAction, Parser, Subcommand, ValueEnum};

/// keepalived's default config path.
pub const DEFAULT_CONFIG: &str = "/etc/keepalived/keepalived.conf";
/// Where `-g` without a file name logs, as keepalived does.
pub const DEFAULT_LOG_FILE: &str = "/tmp/keepalived.log";

const AFTER_HELP: &str = "\
keepalived's options keep keepalived's meaning, so hav-linux runs from keepalived's units and \
scripts unchanged. hav's own options that used short letters keepalived also uses now have long \
names only: --log-level (was -l), --control (was -s), --lvs (same as -C). Options hav cannot \
honour are accepted with a warning. Without -n/--dont-fork the daemon detaches, as keepalived \
does; from systemd use --dont-fork (packaging/hav.service).

Exit status: 0 success; 1 invalid config or policy (-t), or failure; 2 usage error.";

/// hav: VRRP and IPVS high availability, a drop-in for keepalived.
#[derive(Debug, Parser)]
#[command(
    name = "hav-linux",
    version,
    about,
    long_about = "hav: VRRP and IPVS high availability, a drop-in for keepalived. Reads \
                  keepalived.conf and takes keepalived's command-line options.",
    disable_version_flag = true,
    after_help = AFTER_HELP
)]
pub struct Args {
    // ---- keepalived's options, in keepalived's order ----
    /// Use the specified configuration file.
    #[arg(short = 'f', long = "use-file", value_name = "FILE", env = "HAV_CONFIG", default_value = DEFAULT_CONFIG, global = true)]
    pub config: PathBuf,

    /// Only run the VRRP subsystem (no checkers, no IPVS).
    #[arg(short = 'P', long = "vrrp")]
    pub vrrp_only: bool,

    /// Only run the health checkers and IPVS (no VRRP). `--lvs` is hav's older name for it.
    #[arg(short = 'C', long = "check", visible_alias = "lvs")]
    pub checkers_only: bool,

    /// Don't run the BFD subsystem (hav has none: accepted).
    #[arg(short = 'B', long = "no_bfd", alias = "no-bfd")]
    pub no_bfd: bool,

    /// Run every subsystem, even one without configuration (overrides -P and -C).
    #[arg(long = "all")]
    pub all: bool,

    /// Log to the console (stderr) as well as to syslog.
    #[arg(short = 'l', long = "log-console")]
    pub log_console: bool,

    /// Detailed log messages (thread names; twice: also source locations).
    #[arg(short = 'D', long = "log-detail", action = ArgAction::Count)]
    pub log_detail: u8,

    /// Log to syslog with this facility: 0-7 (local0-local7), local0-local7, user or daemon.
    #[arg(short = 'S', long = "log-facility", value_name = "FACILITY")]
    pub log_facility: Option<String>,

    /// Also log to FILE (default /tmp/keepalived.log); the file name is glued: -gFILE, --log-file=FILE.
    #[arg(short = 'g', long = "log-file", value_name = "FILE", num_args = 0..=1, require_equals = true, default_missing_value = DEFAULT_LOG_FILE)]
    pub log_file: Option<PathBuf>,

    /// With -g, flush the log file after each line (hav always does).
    #[arg(long = "flush-log-file")]
    pub flush_log_file: bool,

    /// Don't log via syslog (not even when -S is given or the daemon detaches).
    #[arg(short = 'G', long = "no-syslog")]
    pub no_syslog: bool,

    /// umask for file creation, in numeric form (022, 0x12, 18).
    #[arg(short = 'u', long = "umask", value_name = "MASK")]
    pub umask: Option<String>,

    /// Release the VIPs of an instance leaving MASTER even when this run did not add them.
    #[arg(short = 'X', long = "release-vips")]
    pub release_vips: bool,

    /// Don't remove VRRP VIPs and VMACs when the daemon stops.
    #[arg(short = 'V', long = "dont-release-vrrp")]
    pub dont_release_vrrp: bool,

    /// Don't remove the IPVS topology when the daemon stops.
    #[arg(short = 'I', long = "dont-release-ipvs")]
    pub dont_release_ipvs: bool,

    /// Don't respawn child processes (hav runs one process: accepted).
    #[arg(short = 'R', long = "dont-respawn")]
    pub dont_respawn: bool,

    /// Don't fork: stay in the foreground (what a systemd unit wants).
    #[arg(short = 'n', long = "dont-fork")]
    pub dont_fork: bool,

    /// Dump the configuration data to the log at start-up.
    #[arg(short = 'd', long = "dump-conf")]
    pub dump_conf: bool,

    /// PID file of the daemon (default /run/hav-linux.pid, /run/hav-linux-NAME.pid with -s NAME).
    #[arg(short = 'p', long = "pid", value_name = "FILE", global = true)]
    pub pid_file: Option<PathBuf>,

    /// PID file for the VRRP child process (hav runs one process: accepted, with a warning).
    #[arg(short = 'r', long = "vrrp_pid", alias = "vrrp-pid", value_name = "FILE")]
    pub vrrp_pid_file: Option<PathBuf>,

    /// keepalived's genhash mode (not part of hav: refused).
    #[arg(short = 'T', long = "genhash")]
    pub genhash: bool,

    /// PID file for the checkers child process (hav runs one process: accepted, with a warning).
    #[arg(short = 'c', long = "checkers_pid", alias = "checkers-pid", value_name = "FILE")]
    pub checkers_pid_file: Option<PathBuf>,

    /// Log every address addition and deletion the kernel reports.
    #[arg(short = 'a', long = "address-monitoring")]
    pub address_monitoring: bool,

    /// PID file for the BFD child process (hav has no BFD: accepted, with a warning).
    #[arg(short = 'b', long = "bfd_pid", alias = "bfd-pid", value_name = "FILE")]
    pub bfd_pid_file: Option<PathBuf>,

    /// Enable the SNMP subsystem (AgentX).
    #[arg(short = 'x', long = "snmp")]
    pub snmp: bool,

    /// The SNMP master agent's socket.
    #[arg(short = 'A', long = "snmp-agent-socket", value_name = "FILE")]
    pub snmp_socket: Option<String>,

    /// Run in network namespace NAME (/run/netns/NAME), entered before anything else.
    #[arg(short = 's', long = "namespace", value_name = "NAME", global = true)]
    pub namespace: Option<String>,

    /// Produce a core dump if the daemon terminates abnormally (RLIMIT_CORE unlimited).
    #[arg(short = 'm', long = "core-dump")]
    pub core_dump: bool,

    /// Also set /proc/sys/kernel/core_pattern to PATTERN (default 'core') while running; implies -m.
    #[arg(short = 'M', long = "core-dump-pattern", value_name = "PATTERN", num_args = 0..=1, require_equals = true, default_missing_value = "core")]
    pub core_dump_pattern: Option<String>,

    /// Error if any configuration file is missing (an include pattern matching nothing).
    #[arg(short = 'e', long = "all-config")]
    pub all_config: bool,

    /// Configuration id for conditional lines ('@ID ...'); defaults to the host name.
    #[arg(short = 'i', long = "config-id", value_name = "ID")]
    pub config_id: Option<String>,

    /// With -t: a warning fails the check too (exit 1), for CI pipelines (a hav extension).
    #[arg(long = "strict")]
    pub strict: bool,

    /// Print the signal number for STOP, RELOAD, DATA, STATS, STATS_CLEAR or JSON, and exit.
    #[arg(long = "signum", value_name = "SIGFUNC")]
    pub signum: Option<String>,

    /// Check the configuration (and policies) and exit: 0 valid, 1 invalid, 2 usage error.
    /// Messages go to stderr (`-`), or are appended to LOG_FILE (glued: -tFILE, --config-test=FILE).
    #[arg(short = 't', long = "config-test", value_name = "LOG_FILE", num_args = 0..=1, require_equals = true, default_missing_value = "-")]
    pub config_test: Option<PathBuf>,

    /// keepalived's internal descriptor for its consolidated config (accepted, ignored).
    #[arg(long = "config-fd", value_name = "FD", hide = true)]
    pub config_fd: Option<String>,

    /// Ignore SIGINT (by default it stops the daemon, like SIGTERM).
    #[arg(long = "ignore-sigint")]
    pub ignore_sigint: bool,

    /// keepalived's perf data collection (accepted, with a warning).
    #[arg(long = "perf", value_name = "PERF_TYPE", num_args = 0..=1, require_equals = true, default_missing_value = "run", hide = true)]
    pub perf: Option<String>,

    /// keepalived's debug options (accepted, with a warning).
    #[arg(long = "debug", value_name = "OPTIONS", num_args = 0..=1, require_equals = true, default_missing_value = "all", hide = true)]
    pub debug: Option<String>,

    /// keepalived's memory-check build options (accepted, with a warning).
    #[arg(long = "no-mem-check", hide = true)]
    pub no_mem_check: bool,

    /// keepalived's memory-check build options (accepted, with a warning).
    #[arg(short = 'L', long = "mem-check-log", hide = true)]
    pub mem_check_log: bool,

    /// keepalived's memory-check build options (accepted, with a warning).
    #[arg(short = 'O', long = "openssl-mem-check", hide = true)]
    pub openssl_mem_check: bool,

    /// Display the version (on stderr, as keepalived does) and exit.
    #[arg(short = 'v', long = "version")]
    pub version: bool,

    // ---- hav's own options ----
    /// A WASM policy module to load; repeat for more.
    #[arg(long = "policy", value_name = "FILE", global = true)]
    pub policies: Vec<PathBuf>,

    /// Log level or filter (`info`, `debug`, `hav_linux=trace`...); overrides HAV_LOG.
    #[arg(long = "log-level", value_name = "LEVEL", env = "HAV_LOG", default_value = "info", global = true)]
    pub log_level: String,

    /// Log format.
    #[arg(long = "log-format", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,

    /// The daemon's control socket (status, standby, takeover, resume, reload); default
    /// /run/hav-linux.sock, /run/hav-linux-NAME.sock with -s NAME.
    #[arg(long = "control", value_name = "SOCKET", global = true)]
    pub control: Option<PathBuf>,

    /// Serve Prometheus metrics on this address (e.g. 127.0.0.1:9650).
    #[arg(long = "metrics", value_name = "ADDR")]
    pub metrics: Option<std::net::SocketAddr>,

    /// What to do; without one, run the daemon.
    #[command(subcommand)]
    pub cmd: Option<Cmd>,
}

/// The log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// hav's subcommands.
#[derive(Debug, Subcommand)]
pub enum Cmd {
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
    Ipvs(crate::lvs::cli::IpvsArgs),
    /// Which real server the kernel's mh (Maglev) scheduler picks for a flow, computed from the
    /// config (-f); --compare other directors' configs: do their mh tables differ?
    MhLookup(crate::lvs::mh::MhLookupArgs),
    /// Print the keepalived.conf equivalent of an ldirectord.cf (warnings go to stderr).
    ///
    /// hav also runs an ldirectord.cf as it is (-f /etc/ha.d/ldirectord.cf); what this prints
    /// loads to the same virtual servers. docs/ldirectord.md has the mapping.
    Convert {
        /// The ldirectord.cf to convert.
        #[arg(value_name = "LDIRECTORD_CF")]
        file: PathBuf,
    },
}

/// How a short option of keepalived takes its argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Takes {
    Nothing,
    /// Glued (`-fFILE`) or the next word (`-f FILE`).
    Required,
    /// Glued only (`-tFILE`); `-t FILE` leaves FILE alone.
    Optional(&'static str),
}

/// keepalived's short options, by how they take an argument (its getopt string).
fn takes(c: char) -> Option<Takes> {
    match c {
        'f' | 'S' | 'u' | 'p' | 'r' | 'c' | 'b' | 'A' | 's' | 'i' => Some(Takes::Required),
        't' => Some(Takes::Optional("--config-test")),
        'g' => Some(Takes::Optional("--log-file")),
        'M' => Some(Takes::Optional("--core-dump-pattern")),
        'v' | 'h' | 'l' | 'n' | 'd' | 'D' | 'R' | 'e' | 'm' | 'G' | 'P' | 'C' | 'V' | 'X' | 'a' | 'I' | 'T' | 'B' | 'x'
        | 'L' | 'O' => Some(Takes::Nothing),
        _ => None,
    }
}

/// Rewrites getopt forms clap reads differently, up to the first word that is not an option
/// (a subcommand, whose options are its own): a short option with an optional argument glued
/// to it, alone or at the end of a cluster (`-tFILE`, `-DtFILE`), becomes its long form
/// (`--config-test=FILE`). Everything else passes unchanged.
pub fn getopt_compat<I: IntoIterator<Item = OsString>>(argv: I) -> Vec<OsString> {
    let mut out = Vec::new();
    let mut it = argv.into_iter();
    if let Some(prog) = it.next() {
        out.push(prog);
    }
    let mut value_next = false;
    let mut rest_verbatim = false;
    for arg in it {
        if rest_verbatim || value_next {
            value_next = false;
            out.push(arg);
            continue;
        }
        let Some(s) = arg.to_str() else {
            out.push(arg);
            continue;
        };
        if s == "--" || !s.starts_with('-') || s == "-" {
            rest_verbatim = true;
            out.push(arg);
            continue;
        }
        if let Some(name) = s.strip_prefix("--") {
            // A long option taking a required value in the next word.
            value_next = !name.contains('=')
                && matches!(
                    name,
                    "use-file" | "log-facility" | "umask" | "pid" | "vrrp_pid" | "vrrp-pid" | "checkers_pid" | "checkers-pid"
                        | "bfd_pid" | "bfd-pid" | "snmp-agent-socket" | "namespace" | "config-id" | "signum" | "config-fd"
                        | "policy" | "log-level" | "log-format" | "control" | "metrics"
                );
            out.push(arg);
            continue;
        }
        // A cluster of short options.
        let body = &s[1..];
        let mut flags = String::new();
        let mut rewritten: Option<String> = None;
        for (i, c) in body.char_indices() {
            match takes(c) {
                Some(Takes::Nothing) => flags.push(c),
                Some(Takes::Required) => {
                    value_next = i + c.len_utf8() == body.len();
                    break;
                }
                Some(Takes::Optional(long)) => {
                    let glued = &body[i + c.len_utf8()..];
                    if !glued.is_empty() {
                        rewritten = Some(format!("{long}={glued}"));
                    }
                    break;
                }
                // Unknown to keepalived: clap reports it.
                None => break,
            }
        }
        match rewritten {
            Some(long) => {
                if !flags.is_empty() {
                    out.push(OsString::from(format!("-{flags}")));
                }
                out.push(OsString::from(long));
            }
            None => out.push(arg),
        }
    }
    out
}

/// keepalived's `--signum`: the signal it acts on for SIGFUNC, as the number `kill -s` takes
/// (STOP: SIGTERM, RELOAD: SIGHUP, DATA: SIGUSR1, STATS: SIGUSR2, STATS_CLEAR: SIGRTMAX-1,
/// JSON: SIGRTMIN+2).
pub fn signum(sigfunc: &str) -> Option<i32> {
    Some(match sigfunc {
        "STOP" => libc::SIGTERM,
        "RELOAD" => libc::SIGHUP,
        "DATA" => libc::SIGUSR1,
        "STATS" => libc::SIGUSR2,
        "STATS_CLEAR" => libc::SIGRTMAX() - 1,
        "JSON" => libc::SIGRTMIN() + 2,
        _ => return None,
    })
}

/// Whether `-S` names a facility keepalived knows: 0-7, local0-local7, user or daemon.
pub fn is_log_facility(s: &str) -> bool {
    super::syslog::facility_code(s).is_some()
}

/// Parses `-u`'s numeric mask as strtol with base 0 does (a leading `0` is octal, `0x` hex);
/// `None` when it is not a number or has bits outside 0777.
pub fn parse_umask(s: &str) -> Option<u32> {
    let v = if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        u32::from_str_radix(h, 16).ok()?
    } else if s.len() > 1 && s.starts_with('0') {
        u32::from_str_radix(&s[1..], 8).ok()?
    } else {
        s.parse().ok()?
    };
    (v & !0o777 == 0).then_some(v)
}

/// Whether `name` can be a network namespace under /run/netns.
pub fn is_netns_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains('/') && !name.contains('\0')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compat(args: &[&str]) -> Vec<String> {
        let argv = std::iter::once("hav-linux").chain(args.iter().copied()).map(OsString::from);
        getopt_compat(argv).into_iter().skip(1).map(|a| a.into_string().expect("utf-8")).collect()
    }

    fn parse(args: &[&str]) -> Args {
        let argv = std::iter::once("hav-linux").chain(args.iter().copied()).map(OsString::from);
        Args::try_parse_from(getopt_compat(argv)).unwrap_or_else(|e| panic!("{args:?}: {e}"))
    }

    #[test]
    fn test_definition_is_consistent() {
        use clap::CommandFactory as _;
        Args::command().debug_assert();
    }

    #[test]
    fn test_getopt_compat_rewrites_glued_optional_arguments_only() {
        assert_eq!(compat(&["-t"]), ["-t"]);
        assert_eq!(compat(&["-t/tmp/x.log"]), ["--config-test=/tmp/x.log"]);
        assert_eq!(compat(&["-Dt/tmp/x.log", "-f", "a.conf"]), ["-D", "--config-test=/tmp/x.log", "-f", "a.conf"]);
        assert_eq!(compat(&["-gmy.log", "-Mcore.%p"]), ["--log-file=my.log", "--core-dump-pattern=core.%p"]);
        // A glued required argument keeps its letters, even the ones that look like options.
        assert_eq!(compat(&["-ftest.conf", "-t"]), ["-ftest.conf", "-t"]);
        // The word after an option that takes one is its value, not an option.
        assert_eq!(compat(&["-f", "-tx", "-S", "0"]), ["-f", "-tx", "-S", "0"]);
        assert_eq!(compat(&["--use-file", "-tx"]), ["--use-file", "-tx"]);
        // A subcommand's options are its own.
        assert_eq!(compat(&["ipvs", "apply", "-tx"]), ["ipvs", "apply", "-tx"]);
        assert_eq!(compat(&["-D", "-d", "-S", "0"]), ["-D", "-d", "-S", "0"]);
    }

    #[test]
    fn test_keepalived_short_options() {
        let a = parse(&["-f", "/x.conf", "-P", "-B", "-l", "-DD", "-S", "local3", "-G", "-u", "022", "-X", "-V", "-I", "-R", "-n", "-d"]);
        assert_eq!(a.config, PathBuf::from("/x.conf"));
        assert!(a.vrrp_only && a.no_bfd && a.log_console && a.no_syslog && a.release_vips && a.dont_release_vrrp);
        assert!(a.dont_release_ipvs && a.dont_respawn && a.dont_fork && a.dump_conf);
        assert_eq!(a.log_detail, 2);
        assert_eq!(a.log_facility.as_deref(), Some("local3"));
        assert_eq!(a.umask.as_deref(), Some("022"));

        let a = parse(&["-p", "/p", "-r", "/r", "-c", "/c", "-a", "-b", "/b", "-x", "-A", "/s", "-s", "ns1", "-m", "-e", "-i", "id1"]);
        assert_eq!(a.pid_file, Some(PathBuf::from("/p")));
        assert_eq!(a.vrrp_pid_file, Some(PathBuf::from("/r")));
        assert_eq!(a.checkers_pid_file, Some(PathBuf::from("/c")));
        assert_eq!(a.bfd_pid_file, Some(PathBuf::from("/b")));
        assert_eq!(a.snmp_socket.as_deref(), Some("/s"));
        assert_eq!(a.namespace.as_deref(), Some("ns1"));
        assert_eq!(a.config_id.as_deref(), Some("id1"));
        assert!(a.address_monitoring && a.snmp && a.core_dump && a.all_config);

        let a = parse(&["-C", "-v"]);
        assert!(a.checkers_only && a.version);
        let a = parse(&["-nlDd"]);
        assert!(a.dont_fork && a.log_console && a.dump_conf);
        assert_eq!(a.log_detail, 1);
    }

    #[test]
    fn test_keepalived_long_options() {
        let a = parse(&[
            "--use-file=/x.conf", "--vrrp", "--no_bfd", "--all", "--log-console", "--log-detail", "--log-facility=daemon",
            "--no-syslog", "--umask=18", "--release-vips", "--dont-release-vrrp", "--dont-release-ipvs", "--dont-respawn",
            "--dont-fork", "--dump-conf", "--pid=/p", "--vrrp_pid=/r", "--checkers_pid=/c", "--address-monitoring",
            "--bfd_pid=/b", "--snmp", "--snmp-agent-socket=tcp:localhost:705", "--namespace=ns1", "--core-dump",
            "--all-config", "--config-id=id1", "--ignore-sigint", "--flush-log-file", "--config-fd=5", "--perf",
            "--debug=TpMEvcp", "--no-mem-check", "--mem-check-log", "--openssl-mem-check",
        ]);
        assert_eq!(a.config, PathBuf::from("/x.conf"));
        assert!(a.vrrp_only && a.all && a.ignore_sigint && a.flush_log_file && a.no_mem_check && a.openssl_mem_check);
        assert_eq!(a.snmp_socket.as_deref(), Some("tcp:localhost:705"));
        assert_eq!(a.perf.as_deref(), Some("run"));
        assert_eq!(a.debug.as_deref(), Some("TpMEvcp"));
        let a = parse(&["--check", "--version"]);
        assert!(a.checkers_only && a.version);
        assert!(parse(&["--lvs"]).checkers_only, "hav's older name for -C");
    }

    #[test]
    fn test_optional_arguments() {
        assert_eq!(parse(&["-t"]).config_test, Some(PathBuf::from("-")));
        assert_eq!(parse(&["--config-test"]).config_test, Some(PathBuf::from("-")));
        assert_eq!(parse(&["-t/tmp/t.log"]).config_test, Some(PathBuf::from("/tmp/t.log")));
        assert_eq!(parse(&["--config-test=/tmp/t.log"]).config_test, Some(PathBuf::from("/tmp/t.log")));
        assert_eq!(parse(&["-t", "-f", "/x"]).config_test, Some(PathBuf::from("-")));
        assert_eq!(parse(&["-g"]).log_file, Some(PathBuf::from(DEFAULT_LOG_FILE)));
        assert_eq!(parse(&["-g/var/log/k.log"]).log_file, Some(PathBuf::from("/var/log/k.log")));
        assert_eq!(parse(&["--log-file"]).log_file, Some(PathBuf::from(DEFAULT_LOG_FILE)));
        assert_eq!(parse(&["-M"]).core_dump_pattern.as_deref(), Some("core"));
        assert_eq!(parse(&["-Mcore.%e.%p"]).core_dump_pattern.as_deref(), Some("core.%e.%p"));
        assert_eq!(parse(&["--core-dump-pattern=x"]).core_dump_pattern.as_deref(), Some("x"));
        assert_eq!(parse(&["--signum=JSON"]).signum.as_deref(), Some("JSON"));
        assert_eq!(parse(&["--signum", "JSON"]).signum.as_deref(), Some("JSON"));
    }

    #[test]
    fn test_hav_options_and_subcommands() {
        let a = parse(&["--log-level", "debug", "--control", "/s.sock", "--log-format", "json", "--metrics", "127.0.0.1:9650"]);
        assert_eq!(a.log_level, "debug");
        assert_eq!(a.control, Some(PathBuf::from("/s.sock")));
        assert_eq!(a.log_format, LogFormat::Json);
        let a = parse(&["-s", "ns1", "status", "--json"]);
        assert_eq!(a.namespace.as_deref(), Some("ns1"));
        assert!(matches!(a.cmd, Some(Cmd::Status { json: true })));
        let a = parse(&["standby", "VI_1", "--control", "/x"]);
        assert!(matches!(a.cmd, Some(Cmd::Standby { ref instance }) if instance == "VI_1"));
        assert!(matches!(parse(&["reload"]).cmd, Some(Cmd::Reload)));
        assert!(matches!(parse(&["convert", "/etc/ha.d/ldirectord.cf"]).cmd, Some(Cmd::Convert { ref file }) if file.to_str() == Some("/etc/ha.d/ldirectord.cf")));
    }

    #[test]
    fn test_signum_is_keepalived_list() {
        assert_eq!(signum("STOP"), Some(15));
        assert_eq!(signum("RELOAD"), Some(1));
        assert_eq!(signum("DATA"), Some(10));
        assert_eq!(signum("STATS"), Some(12));
        assert_eq!(signum("JSON"), Some(libc::SIGRTMIN() + 2));
        assert_eq!(signum("STATS_CLEAR"), Some(libc::SIGRTMAX() - 1));
        assert_eq!(signum("json"), None);
        assert_eq!(signum("TDUMP"), None);
    }

    #[test]
    fn test_facility_umask_and_namespace_names() {
        for f in ["0", "7", "local0", "local7", "user", "daemon"] {
            assert!(is_log_facility(f), "{f}");
        }
        for f in ["8", "local8", "kern", "", "local"] {
            assert!(!is_log_facility(f), "{f}");
        }
        assert_eq!(parse_umask("022"), Some(0o22));
        assert_eq!(parse_umask("0x12"), Some(0o22));
        assert_eq!(parse_umask("18"), Some(0o22));
        assert_eq!(parse_umask("0"), Some(0));
        assert_eq!(parse_umask("0777"), Some(0o777));
        assert_eq!(parse_umask("01000"), None);
        assert_eq!(parse_umask("08"), None);
        assert_eq!(parse_umask("-1"), None);
        assert!(is_netns_name("blue"));
        assert!(!is_netns_name("../etc") && !is_netns_name("..") && !is_netns_name(""));
    }
}
