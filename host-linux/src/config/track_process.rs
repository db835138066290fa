//! `vrrp_track_process NAME { ... }`: a process whose presence (a quorum of
//! matching processes) is tracked like a `vrrp_script`'s result, as
//! keepalived.conf(5) documents it.
//!
//! Where keepalived logs a bad value and keeps the default (a second
//! `process`, a quorum outside quorum_max, a delay out of range, an unknown
//! `param_match`), hav warns at the value and does the same. A block without
//! `process` is dropped with a warning; references to it are then dropped too.

use std::time::Duration;

use super::error::{ConfigError, Location};
use super::parser::Node;
use super::value::{int_arg, timer_arg, Ctx};

/// How the parameters of a process are compared with the configured ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ParamMatch {
    /// Parameters are not compared (no parameters and no `param_match`).
    #[default]
    None,
    /// The parameters are exactly the configured ones (none when none are configured).
    Exact,
    /// The first parameters are the configured ones; more may follow.
    Partial,
    /// As `Partial`, and the last configured parameter may be a prefix of the process's.
    Initial,
}

/// A typed `vrrp_track_process NAME { ... }`.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackProcessDef {
    /// The name, referenced by `track_process`.
    pub name: String,
    /// Where `vrrp_track_process` is written.
    pub location: Location,
    /// `process NAME`: the process name (comm) or, with `full_command`, argv[0] as written.
    pub process: String,
    /// The parameters after the name in `process`.
    pub params: Vec<String>,
    /// `param_match`; `Exact` when parameters are given without it.
    pub param_match: ParamMatch,
    /// Match `/proc/PID/cmdline` instead of the process name (set by parameters and
    /// `param_match` too).
    pub full_command: bool,
    /// `weight` (-254..=254), default 0: down faults the instance.
    pub weight: i32,
    /// `weight W reverse`.
    pub reverse: bool,
    /// `quorum`: the fewest matching processes for up, default 1 (0 with `quorum_max 0`).
    pub quorum: u32,
    /// `quorum_max`: the most matching processes for up, default unlimited.
    pub quorum_max: u32,
    /// `fork_delay` (or `delay`): how long a quorum reached by a fork waits before it counts.
    pub fork_delay: Duration,
    /// `terminate_delay` (or `delay`): how long a quorum lost by an exit waits before it counts.
    pub terminate_delay: Duration,
}

impl TrackProcessDef {
    /// Whether `count` matching processes make the tracker up.
    pub fn in_quorum(&self, count: u32) -> bool {
        count >= self.quorum && count <= self.quorum_max
    }

    /// Reads the block; `None` (with a warning) when it names no process, as keepalived drops it.
    pub(crate) fn from_node(ctx: &mut Ctx, n: &Node) -> Result<Option<Self>, ConfigError> {
        let name = ctx.block_name(n)?;
        let mut t = TrackProcessDef {
            name,
            location: n.loc.clone(),
            process: String::new(),
            params: Vec::new(),
            param_match: ParamMatch::None,
            full_command: false,
            weight: 0,
            reverse: false,
            quorum: 1,
            quorum_max: u32::MAX,
            fork_delay: Duration::ZERO,
            terminate_delay: Duration::ZERO,
        };
        let mut have_process = false;
        let mut have_weight = false;
        for e in ctx.children(n)? {
            match e.keyword.as_str() {
                "process" => {
                    let Some(first) = e.args.first() else {
                        return Err(ConfigError::invalid(&e.loc, "missing value for 'process'"));
                    };
                    if have_process {
                        ctx.warn(&e.loc, format!("vrrp_track_process {}: process already set; '{}' ignored, as keepalived does", t.name, first.text));
                        continue;
                    }
                    have_process = true;
                    t.process = first.text.clone();
                    t.params = e.args[1..].iter().map(|a| a.text.clone()).collect();
                    if !t.params.is_empty() {
                        if t.param_match == ParamMatch::None {
                            t.param_match = ParamMatch::Exact;
                        }
                        t.full_command = true;
                    }
                }
                "param_match" => {
                    let m = match e.args.first().map(|a| a.text.as_str()) {
                        None => Some(ParamMatch::Exact),
                        Some("initial") => Some(ParamMatch::Initial),
                        Some("partial") => Some(ParamMatch::Partial),
                        Some(other) => {
                            ctx.warn(&e.args[0].loc, format!("invalid param_match type '{other}' (initial or partial); ignored, as keepalived does"));
                            None
                        }
                    };
                    if let Some(m) = m {
                        ctx.no_more(e, 1);
                        t.param_match = m;
                        t.full_command = true;
                    }
                }
                "weight" => {
                    let Some(v) = e.args.first() else {
                        return Err(ConfigError::invalid(&e.loc, "missing value for 'weight'"));
                    };
                    if have_weight {
                        ctx.warn(&e.loc, format!("vrrp_track_process {}: weight already set; ignored, as keepalived does", t.name));
                        continue;
                    }
                    have_weight = true;
                    t.weight = i32::try_from(int_arg(v, "weight", -254, 254)?).unwrap_or(0);
                    match e.args.get(1) {
                        Some(r) if r.text == "reverse" => {
                            t.reverse = true;
                            ctx.no_more(e, 2);
                        }
                        Some(r) => ctx.warn(&r.loc, format!("unknown weight option '{}' ignored", r.text)),
                        None => {}
                    }
                }
                "quorum" => {
                    let q = u32::try_from(ctx.int(e, 1, 65535)?).unwrap_or(1);
                    if q > t.quorum_max {
                        ctx.warn(&e.loc, format!("quorum {q} is greater than quorum_max {}; ignored, as keepalived does", t.quorum_max));
                    } else {
                        t.quorum = q;
                    }
                }
                "quorum_max" => {
                    let q = u32::try_from(ctx.int(e, 0, 65535)?).unwrap_or(0);
                    // quorum_max 0 (down while any runs) is allowed when quorum was not raised.
                    if (q != 0 || t.quorum > 1) && q < t.quorum {
                        ctx.warn(&e.loc, format!("quorum_max {q} is less than quorum {}; ignored, as keepalived does", t.quorum));
                    } else {
                        t.quorum_max = q;
                        t.quorum = if q == 0 { 0 } else { t.quorum.max(1) };
                    }
                }
                "delay" | "terminate_delay" | "fork_delay" => {
                    let arg = ctx.value(e)?;
                    let d = timer_arg(arg, &e.keyword)?;
                    if d < Duration::from_micros(1) || d > Duration::from_secs(3600) {
                        ctx.warn(&arg.loc, format!("{} must be between 0.000001 and 3600 seconds; ignored, as keepalived does", e.keyword));
                        continue;
                    }
                    if e.keyword != "fork_delay" {
                        t.terminate_delay = d;
                    }
                    if e.keyword != "terminate_delay" {
                        t.fork_delay = d;
                    }
                }
                "full_command" => {
                    ctx.no_more(e, 0);
                    t.full_command = true;
                }
                _ => ctx.unknown(e, "vrrp_track_process")?,
            }
        }
        if !have_process {
            ctx.warn(&n.loc, format!("vrrp_track_process {} names no process; dropped, as keepalived does", t.name));
            return Ok(None);
        }
        Ok(Some(t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(body: &str) -> crate::config::Loaded {
        let text = format!("vrrp_track_process tp {{\n{body}\n}}\n");
        crate::config::load_str(std::path::Path::new("t.conf"), &text).expect("config")
    }

    #[test]
    fn test_defaults() {
        let l = load("process nginx");
        let t = &l.config.vrrp_track_processes[0];
        assert_eq!((t.process.as_str(), t.weight, t.quorum, t.quorum_max), ("nginx", 0, 1, u32::MAX));
        assert_eq!(t.param_match, ParamMatch::None);
        assert!(!t.full_command);
        assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    }

    #[test]
    fn test_params_and_options() {
        let l = load("process /usr/sbin/haproxy -f \"a b\"\nparam_match partial\nweight -20 reverse\nquorum 2\nquorum_max 4\ndelay 1.5\nfork_delay 0.25");
        let t = &l.config.vrrp_track_processes[0];
        assert_eq!(t.process, "/usr/sbin/haproxy");
        assert_eq!(t.params, vec!["-f".to_string(), "a b".to_string()]);
        assert_eq!(t.param_match, ParamMatch::Partial);
        assert!(t.full_command);
        assert_eq!((t.weight, t.reverse, t.quorum, t.quorum_max), (-20, true, 2, 4));
        assert_eq!(t.terminate_delay, Duration::from_millis(1500));
        assert_eq!(t.fork_delay, Duration::from_millis(250));
    }

    #[test]
    fn test_param_match_alone_means_no_parameters() {
        let t = load("process sleep\nparam_match").config.vrrp_track_processes[0].clone();
        assert_eq!(t.param_match, ParamMatch::Exact);
        assert!(t.params.is_empty() && t.full_command);
    }

    #[test]
    fn test_quorum_rules_as_keepalived() {
        let t = load("process a\nquorum_max 0").config.vrrp_track_processes[0].clone();
        assert_eq!((t.quorum, t.quorum_max), (0, 0));
        assert!(t.in_quorum(0) && !t.in_quorum(1));
        let l = load("process a\nquorum 3\nquorum_max 2");
        let t = &l.config.vrrp_track_processes[0];
        assert_eq!((t.quorum, t.quorum_max), (3, u32::MAX), "quorum_max below quorum is ignored");
        assert!(l.warnings.iter().any(|w| w.message.contains("quorum_max 2 is less than quorum 3")), "{:?}", l.warnings);
        let l = load("process a\nquorum_max 2\nquorum 3\ndelay 0\nparam_match exactly");
        let t = &l.config.vrrp_track_processes[0];
        assert_eq!((t.quorum, t.quorum_max, t.fork_delay), (1, 2, Duration::ZERO));
        assert_eq!(l.warnings.len(), 3, "{:?}", l.warnings);
    }

    #[test]
    fn test_no_process_drops_block_and_references() {
        let text = "vrrp_track_process tp {\n quorum 2\n}\nvrrp_instance v {\n interface lo\n virtual_router_id 1\n priority 100\n track_process {\n  tp weight 10\n }\n}\n";
        let l = crate::config::load_str(std::path::Path::new("t.conf"), text).expect("config");
        assert!(l.config.vrrp_track_processes.is_empty());
        assert!(l.config.vrrp_instances[0].track_processes.is_empty());
        assert!(l.warnings.iter().any(|w| w.message.contains("names no process")), "{:?}", l.warnings);
        assert!(l.warnings.iter().any(|w| w.message.contains("vrrp_track_process 'tp' is not defined")), "{:?}", l.warnings);
    }
}
