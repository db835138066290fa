//! `hav-linux`: the keepalived-compatible daemon and its command line.

use std::process::ExitCode;

use clap::Parser as _;
use hav_linux::cli::{self, args::Args, args::Cmd, args::LogFormat};

/// Exit code: the config (or a policy) is invalid, or the command failed.
const EXIT_INVALID: u8 = 1;

fn main() -> ExitCode {
    // wasmtime builds (and drops) an error on every instantiation; with RUST_BACKTRACE set each
    // would capture a backtrace. Panics keep theirs.
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        std::env::set_var("RUST_LIB_BACKTRACE", "0");
    }
    let argv = cli::args::getopt_compat(std::env::args_os());
    // keepalived's genhash mode takes over the whole command line, so it is caught before
    // parsing what follows it.
    if argv.get(1).is_some_and(|a| a == "-T" || a == "--genhash") {
        eprintln!("hav-linux: genhash mode (-T) is not part of hav; keepalived's genhash(1) does it");
        return ExitCode::from(EXIT_INVALID);
    }
    let args = Args::parse_from(argv);
    if args.version {
        eprint!("{}", cli::version_text());
        return ExitCode::SUCCESS;
    }
    if let Some(f) = &args.signum {
        return match cli::args::signum(f) {
            Some(n) => {
                println!("{n}");
                ExitCode::SUCCESS
            }
            None => {
                eprintln!("Unknown sigfunc {f}");
                ExitCode::from(EXIT_INVALID)
            }
        };
    }
    if args.genhash {
        eprintln!("hav-linux: genhash mode (-T) is not part of hav; keepalived's genhash(1) does it");
        return ExitCode::from(EXIT_INVALID);
    }
    let detached = cli::detach::take_detached_mark();
    let test = args.config_test.is_some();
    let daemon = args.cmd.is_none() && !test;
    let opts = cli::Options::from_args(&args);

    // keepalived detaches unless told not to; a unit of Type=notify starts it with --dont-fork,
    // and one that did not would expect this process to be the daemon, so hav stays.
    if daemon && !args.dont_fork && !detached {
        if std::env::var_os(hav_linux::daemon::sdnotify::NOTIFY_SOCKET).is_some() {
            eprintln!("hav-linux: started with NOTIFY_SOCKET (a systemd Type=notify unit): staying in the foreground, as with --dont-fork");
        } else {
            return cli::detach::spawn_and_wait(&opts.pid_file);
        }
    }
    if detached {
        cli::detach::become_session_leader();
    }
    if let Some(path) = args.config_test.as_ref().filter(|p| p.as_os_str() != "-") {
        if let Err(e) = cli::redirect_stderr(path) {
            eprintln!("hav-linux: {e:#}");
            return ExitCode::from(EXIT_INVALID);
        }
    }
    if let Some(mask) = &args.umask {
        if let Err(e) = cli::set_umask(mask) {
            // keepalived reports it and carries on with the umask it has.
            eprintln!("hav-linux: {e}");
        }
    }
    // Before anything opens a socket or starts a thread: every thread started after this one
    // entered the namespace is in it too.
    if let Some(ns) = &args.namespace {
        if let Err(e) = cli::enter_namespace(ns) {
            eprintln!("hav-linux: {e:#}");
            return ExitCode::from(EXIT_INVALID);
        }
    }
    let (syslog, console_too) = cli::LogSetup::destinations(&args, daemon, detached);
    cli::init_logging_with(&cli::LogSetup {
        filter: args.log_level.clone(),
        json: args.log_format == LogFormat::Json,
        detail: args.log_detail,
        file: if test { None } else { args.log_file.clone() },
        syslog,
        console_too,
    });
    for w in cli::unhonoured(&args, daemon) {
        tracing::warn!("{w}");
    }
    if test {
        return if cli::check(&opts) { ExitCode::SUCCESS } else { ExitCode::from(EXIT_INVALID) };
    }
    let _core = (daemon && (args.core_dump || args.core_dump_pattern.is_some()))
        .then(|| cli::CoreDumps::enable(args.core_dump_pattern.as_deref()));
    let result = match args.cmd {
        None => cli::run_daemon(opts),
        Some(Cmd::Status { json }) => cli::status(&opts, json),
        Some(Cmd::Standby { instance }) => cli::control(&opts, "standby", Some(&instance)),
        Some(Cmd::Takeover { instance }) => cli::control(&opts, "takeover", Some(&instance)),
        Some(Cmd::Resume { instance }) => cli::control(&opts, "resume", Some(&instance)),
        Some(Cmd::Reload) => cli::control(&opts, "reload", None),
        Some(Cmd::Demo) => cli::demo(&opts),
        Some(Cmd::Ipvs(a)) => hav_linux::lvs::cli::run(a, &opts.config),
        Some(Cmd::MhLookup(a)) => hav_linux::lvs::mh::run(a, &opts.config),
        Some(Cmd::Convert { file }) => hav_linux::config::convert_ldirectord(&file)
            .map(|(text, warnings)| {
                for w in &warnings {
                    eprintln!("warning: {w}");
                }
                print!("{text}");
            })
            .map_err(|e| anyhow::anyhow!("{e}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hav-linux: {e:#}");
            ExitCode::from(EXIT_INVALID)
        }
    }
}
