//! keepalived.conf → typed, validated configuration.
//!
//! [`load`] reads a keepalived.conf as ops engineers already have it
//! (comments after values, non-breaking spaces, `80{`, includes with globs)
//! and returns a [`Config`] with keepalived's defaults applied, plus
//! [`Warning`]s. Every error and warning displays as `FILE:LINE:COL: message`.
//!
//! Valid keepalived keywords that hav does not act on are accepted with a
//! warning; anything else unknown is an error with a "did you mean" hint.
//! `WASM_CHECK` (see [`check`]) is a hav extension.
//!
//! keepalived's configuration language (conditional `@id` lines, `$NAME`
//! definitions, `~SEQ`/`~LST`, `include` with globs and brace globs) is
//! handled by [`preprocess`] before the sections are read; [`expand`] shows
//! its result.
//!
//! An ldirectord.cf (heartbeat's Linux Director Daemon) loads too, by the same
//! entry points: its first line (`name=value`, which no keepalived.conf line
//! is) gives it away, and [`ldirectord`] reads it as the `virtual_server`
//! blocks it means.

pub mod announce;
pub mod check;
pub mod error;
pub mod glob;
pub mod global;
pub mod iproute;
pub mod keywords;
pub mod ldirectord;
pub mod lexer;
pub mod lvs;
pub mod parser;
pub mod preprocess;
pub mod track_process;
pub mod value;
pub mod vrrp;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

pub use check::{CheckCommon, CheckKind, Checker};
pub use error::{ConfigError, Location, Via, Warning};
pub use global::GlobalDefs;
pub use lvs::{LbKind, Protocol, RealServer, VirtualServer, VirtualServerGroup, VirtualServerKey};
pub use parser::{Node, MAX_INCLUDE_DEPTH};
pub use preprocess::{default_config_id, IncludeCheck, Options};
pub use value::Script;
pub use track_process::{ParamMatch, TrackProcessDef};
pub use vrrp::{Family, SyncGroup, TrackFileDef, VrrpInstance, VrrpScript, VrrpState, VrrpVersion};

use value::{Ctx, RunAs};
use vrrp::Notify;

/// The whole typed configuration.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Config {
    /// `global_defs` (all blocks merged), defaults applied.
    pub global: GlobalDefs,
    /// `vrrp_script` blocks, in file order.
    pub vrrp_scripts: Vec<VrrpScript>,
    /// `vrrp_track_file` blocks.
    pub vrrp_track_files: Vec<TrackFileDef>,
    /// `vrrp_track_process` blocks.
    pub vrrp_track_processes: Vec<TrackProcessDef>,
    /// `vrrp_instance` blocks.
    pub vrrp_instances: Vec<VrrpInstance>,
    /// `vrrp_sync_group` blocks.
    pub vrrp_sync_groups: Vec<SyncGroup>,
    /// `virtual_server_group` blocks.
    pub virtual_server_groups: Vec<VirtualServerGroup>,
    /// `virtual_server` blocks.
    pub virtual_servers: Vec<VirtualServer>,
    /// `static_ipaddress` blocks: installed at start, removed at stop.
    pub static_ipaddresses: Vec<vrrp::VirtualIp>,
    /// `static_routes` blocks: installed at start, removed at stop.
    pub static_routes: Vec<iproute::Route>,
    /// `static_rules` blocks: installed at start, removed at stop.
    pub static_rules: Vec<iproute::Rule>,
}

impl Config {
    /// The instance called `name`.
    pub fn instance(&self, name: &str) -> Option<&VrrpInstance> {
        self.vrrp_instances.iter().find(|i| i.name == name)
    }

    /// The `vrrp_script` called `name`.
    pub fn script(&self, name: &str) -> Option<&VrrpScript> {
        self.vrrp_scripts.iter().find(|s| s.name == name)
    }

    /// keepalived's check when its VRRP process starts (and on every reload): a `vrrp_script`
    /// whose program cannot run (`runnable` says why: not found, not executable, refused by
    /// script security) is disabled: dropped with the `track_script` entries of instances and
    /// sync groups that name it, so the instances run as if they did not track it (neither
    /// failing nor weighing). A notify script of an instance or sync group that cannot run is
    /// dropped too, and never called. One warning for each, at the `vrrp_script` block or at
    /// the instance or group.
    pub fn disable_unrunnable_scripts(&mut self, runnable: impl Fn(&Script, Option<&RunAs>) -> Result<(), String>) -> Vec<Warning> {
        let mut warnings = Vec::new();
        let mut disabled = HashSet::new();
        self.vrrp_scripts.retain(|vs| {
            let Some(cmd) = &vs.script else { return true };
            match runnable(cmd, vs.user.as_ref()) {
                Ok(()) => true,
                Err(why) => {
                    warnings.push(Warning {
                        location: vs.location.clone(),
                        message: format!(
                            "vrrp_script {}: {why}; the script is disabled and not tracked by any instance or sync group, as keepalived disables a track script whose program is not found or not executable",
                            vs.name
                        ),
                    });
                    disabled.insert(vs.name.clone());
                    false
                }
            }
        });
        let notify = |owner: &str, location: &Location, n: &mut Notify, warnings: &mut Vec<Warning>| {
            let Notify { notify: generic, master, backup, fault, stop, master_rx_lower_pri, deleted, send_deleted: _, locations } = n;
            let slots = [
                ("notify", generic),
                ("notify_master", master),
                ("notify_backup", backup),
                ("notify_fault", fault),
                ("notify_stop", stop),
                ("notify_master_rx_lower_pri", master_rx_lower_pri),
                ("notify_deleted", deleted),
            ];
            for (kw, slot) in slots {
                let Some(cmd) = slot.as_ref() else { continue };
                if let Err(why) = runnable(cmd, None) {
                    warnings.push(Warning {
                        location: locations.get(kw).unwrap_or(location).clone(),
                        message: format!("{owner}: {kw} '{}': {why}; disabled (never run), as keepalived disables a notify script whose program is not found or not executable", cmd.command),
                    });
                    *slot = None;
                }
            }
        };
        for i in &mut self.vrrp_instances {
            i.track_scripts.retain(|t| !disabled.contains(&t.name));
            notify(&format!("vrrp_instance {}", i.name), &i.location, &mut i.notify, &mut warnings);
        }
        for g in &mut self.vrrp_sync_groups {
            g.track_scripts.retain(|t| !disabled.contains(&t.name));
            notify(&format!("vrrp_sync_group {}", g.name), &g.location, &mut g.notify, &mut warnings);
        }
        warnings
    }
}

/// A loaded configuration and the warnings met while loading it.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The configuration.
    pub config: Config,
    /// Accepted-but-ignored keywords, adjusted values, odd whitespace...
    pub warnings: Vec<Warning>,
}

/// Loads the keepalived.conf at `path` and everything it includes, with
/// keepalived's default [`Options`] (the config id is the host name up to
/// its first dot).
///
/// Relative includes resolve against the including file's directory. Errors
/// and warnings name files as `path` names them.
pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
    load_with(path, &Options::default())
}

/// [`load`] with a config id and include checks of the caller's choosing
/// (keepalived's `-i ID` and `-e`).
///
/// An ldirectord.cf loads as the keepalived.conf it is equivalent to ([`ldirectord`]).
pub fn load_with(path: &Path, options: &Options) -> Result<Loaded, ConfigError> {
    if let Some(text) = ldirectord_text(path) {
        return load_ldirectord(path, &text);
    }
    let mut loader = parser::Loader::with_options(options.clone());
    let nodes = loader.load_file(path, None)?;
    build(nodes, loader.warnings)
}

/// Loads configuration text as if read from `file` (which need not exist;
/// relative includes resolve against its directory).
pub fn load_str(file: &Path, text: &str) -> Result<Loaded, ConfigError> {
    load_str_with(file, text, &Options::default())
}

/// [`load_str`] with [`Options`].
pub fn load_str_with(file: &Path, text: &str, options: &Options) -> Result<Loaded, ConfigError> {
    if ldirectord::is_ldirectord(text) {
        return load_ldirectord(file, text);
    }
    let mut loader = parser::Loader::with_options(options.clone());
    let nodes = loader.load_str(Arc::from(file), text)?;
    build(nodes, loader.warnings)
}

/// The configuration at `path` as the sections see it, for `--check -d`:
/// conditional lines resolved against `config_id`, definitions substituted,
/// `~SEQ`/`~LST` lines replicated and includes inlined, each run of lines
/// preceded by a `# from FILE:LINE` comment naming where it came from. The
/// text reads back as the same configuration.
///
/// For an ldirectord.cf, the keepalived.conf it loads as.
pub fn expand(path: &Path, config_id: &str) -> Result<String, ConfigError> {
    if let Some(text) = ldirectord_text(path) {
        return Ok(ldirectord::print(&ldirectord::parse(path, &text)?.0));
    }
    preprocess::expand(path, Options::with_config_id(config_id))
}

/// The text of the file at `path` when it is an ldirectord.cf. A file that cannot be read is
/// left to the keepalived.conf loader, which reports it.
fn ldirectord_text(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok().filter(|t| ldirectord::is_ldirectord(t))
}

/// Loads ldirectord.cf `text`, read from `file`.
pub fn load_ldirectord(file: &Path, text: &str) -> Result<Loaded, ConfigError> {
    let (nodes, warnings) = ldirectord::parse(file, text)?;
    build(nodes, warnings)
}

/// An ldirectord.cf as keepalived.conf text, and the warnings of loading it: what
/// `hav-linux convert` prints. The text loads to the same configuration as the file.
pub fn convert_ldirectord(path: &Path) -> Result<(String, Vec<Warning>), ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
        at: Location::file(Arc::from(path)),
        path: path.to_path_buf(),
        source,
    })?;
    let (nodes, warnings) = ldirectord::parse(path, &text)?;
    let printed = ldirectord::print(&nodes);
    // Whatever the loader has to say about the result (a scheduler it does not know...) is
    // said now, at the ldirectord.cf's lines.
    let loaded = build(nodes, warnings)?;
    Ok((printed, loaded.warnings))
}

fn build(nodes: Vec<Node>, warnings: Vec<Warning>) -> Result<Loaded, ConfigError> {
    let mut ctx = Ctx { warnings, next_rule_priority: iproute::FIRST_RULE_PRIORITY };
    let mut config = Config::default();
    // global_defs first: instances take their defaults from it wherever it is.
    for n in nodes.iter().filter(|n| n.keyword == "global_defs") {
        let children = ctx.children(n)?;
        config.global.apply(&mut ctx, children)?;
    }
    for n in &nodes {
        match n.keyword.as_str() {
            "global_defs" => {}
            "vrrp_instance" => config.vrrp_instances.push(VrrpInstance::from_node(&mut ctx, n, &config.global)?),
            "vrrp_script" => config.vrrp_scripts.push(VrrpScript::from_node(&mut ctx, n)?),
            "vrrp_track_file" | "track_file" => config.vrrp_track_files.push(TrackFileDef::from_node(&mut ctx, n)?),
            "vrrp_track_process" => config.vrrp_track_processes.extend(TrackProcessDef::from_node(&mut ctx, n)?),
            "vrrp_sync_group" => config.vrrp_sync_groups.push(SyncGroup::from_node(&mut ctx, n)?),
            "virtual_server" => config.virtual_servers.push(VirtualServer::from_node(&mut ctx, n)?),
            "virtual_server_group" => config.virtual_server_groups.push(VirtualServerGroup::from_node(&mut ctx, n)?),
            "static_ipaddress" => config.static_ipaddresses.extend(vrrp::virtual_ips(&mut ctx, n)?),
            "static_routes" => config.static_routes.extend(iproute::routes(&mut ctx, n, iproute::Origin::Static)?),
            "static_rules" => config.static_rules.extend(iproute::rules(&mut ctx, n, iproute::Origin::Static)?),
            "include" | "includer" | "includem" | "includew" | "includeb" | "includea" => {
                return Err(ConfigError::invalid(&n.loc, format!("'{}' needs a file name", n.keyword)));
            }
            _ => ctx.unknown(n, keywords::TOP)?,
        }
    }
    settle(&mut config, &mut ctx)?;
    validate(&config, &mut ctx)?;
    Ok(Loaded { config, warnings: ctx.warnings })
}

/// Where keepalived runs a configuration by dropping or defaulting a value
/// that only the whole configuration shows to be wrong, hav does the same and
/// says so.
fn settle(c: &mut Config, ctx: &mut Ctx) -> Result<(), ConfigError> {
    let scripts: HashSet<String> = c.vrrp_scripts.iter().map(|s| s.name.clone()).collect();
    let files: HashSet<String> = c.vrrp_track_files.iter().map(|s| s.name.clone()).collect();
    let processes: HashSet<String> = c.vrrp_track_processes.iter().map(|s| s.name.clone()).collect();
    let drop_missing = |refs: &mut Vec<vrrp::TrackRef>, known: &HashSet<String>, kind: &str, owner: &str, ctx: &mut Ctx| {
        refs.retain(|r| {
            if known.contains(&r.name) {
                return true;
            }
            let hint = value::closest(&r.name, known.iter().map(String::as_str))
                .map(|s| format!(" (did you mean '{s}'?)"))
                .unwrap_or_default();
            ctx.warn(&r.location, format!("{owner}: {kind} '{}' is not defined{hint}; not tracked, as keepalived does", r.name));
            false
        });
    };
    for i in &mut c.vrrp_instances {
        let owner = format!("vrrp_instance {}", i.name);
        drop_missing(&mut i.track_scripts, &scripts, "vrrp_script", &owner, ctx);
        drop_missing(&mut i.track_files, &files, "vrrp_track_file", &owner, ctx);
        drop_missing(&mut i.track_processes, &processes, "vrrp_track_process", &owner, ctx);
    }
    for g in &mut c.vrrp_sync_groups {
        let owner = format!("vrrp_sync_group {}", g.name);
        drop_missing(&mut g.track_scripts, &scripts, "vrrp_script", &owner, ctx);
        drop_missing(&mut g.track_files, &files, "vrrp_track_file", &owner, ctx);
        drop_missing(&mut g.track_processes, &processes, "vrrp_track_process", &owner, ctx);
    }
    Ok(())
}

fn no_duplicates<'a>(kind: &str, items: impl Iterator<Item = (&'a str, &'a Location)>) -> Result<(), ConfigError> {
    let mut seen: HashMap<&str, &Location> = HashMap::new();
    for (name, loc) in items {
        if let Some(first) = seen.insert(name, loc) {
            return Err(ConfigError::invalid(loc, format!("duplicate {kind} '{name}' (first defined at {first})")));
        }
    }
    Ok(())
}

/// The cross-reference checks that need the whole configuration.
fn validate(c: &Config, ctx: &mut Ctx) -> Result<(), ConfigError> {
    no_duplicates("vrrp_instance", c.vrrp_instances.iter().map(|i| (i.name.as_str(), &i.location)))?;
    no_duplicates("vrrp_script", c.vrrp_scripts.iter().map(|i| (i.name.as_str(), &i.location)))?;
    no_duplicates("vrrp_track_file", c.vrrp_track_files.iter().map(|i| (i.name.as_str(), &i.location)))?;
    no_duplicates("vrrp_track_process", c.vrrp_track_processes.iter().map(|i| (i.name.as_str(), &i.location)))?;
    no_duplicates("vrrp_sync_group", c.vrrp_sync_groups.iter().map(|i| (i.name.as_str(), &i.location)))?;
    no_duplicates("virtual_server_group", c.virtual_server_groups.iter().map(|i| (i.name.as_str(), &i.location)))?;

    let scripts: HashSet<&str> = c.vrrp_scripts.iter().map(|s| s.name.as_str()).collect();
    let files: HashSet<&str> = c.vrrp_track_files.iter().map(|s| s.name.as_str()).collect();
    let check_refs = |refs: &[vrrp::TrackRef], known: &HashSet<&str>, kind: &str| -> Result<(), ConfigError> {
        for r in refs {
            if !known.contains(r.name.as_str()) {
                let hint = value::closest(&r.name, known.iter().copied())
                    .map(|s| format!(" (did you mean '{s}'?)"))
                    .unwrap_or_default();
                return Err(ConfigError::invalid(&r.location, format!("{kind} '{}' is not defined{hint}", r.name)));
            }
        }
        Ok(())
    };
    for i in &c.vrrp_instances {
        check_refs(&i.track_scripts, &scripts, "vrrp_script")?;
        check_refs(&i.track_files, &files, "vrrp_track_file")?;
    }
    for g in &c.vrrp_sync_groups {
        check_refs(&g.track_scripts, &scripts, "vrrp_script")?;
        check_refs(&g.track_files, &files, "vrrp_track_file")?;
    }

    let mut member_of: HashMap<&str, &str> = HashMap::new();
    for g in &c.vrrp_sync_groups {
        for (name, loc) in &g.group {
            if c.instance(name).is_none() {
                return Err(ConfigError::invalid(loc, format!("sync group '{}' member '{name}' is not a vrrp_instance", g.name)));
            }
            if let Some(other) = member_of.insert(name, &g.name) {
                return Err(ConfigError::invalid(loc, format!("vrrp_instance '{name}' is already in sync group '{other}'")));
            }
        }
        if g.group.len() == 1 {
            ctx.warn(&g.location, format!("sync group '{}' has only one member", g.name));
        }
    }

    let mut vrids: HashMap<(Option<&str>, Option<Family>, u8), &VrrpInstance> = HashMap::new();
    for i in &c.vrrp_instances {
        let key = (i.interface.as_deref(), i.family(), i.virtual_router_id);
        if let Some(first) = vrids.insert(key, i) {
            return Err(ConfigError::invalid(
                &i.location,
                format!(
                    "vrrp_instance {} uses virtual_router_id {} on interface {} like vrrp_instance {} ({})",
                    i.name,
                    i.virtual_router_id,
                    i.interface.as_deref().unwrap_or("(default)"),
                    first.name,
                    first.location
                ),
            ));
        }
    }

    if let Some(d) = &c.global.lvs_sync_daemon {
        if c.instance(&d.instance).is_none() {
            return Err(ConfigError::invalid(
                &d.location,
                format!("lvs_sync_daemon names vrrp_instance '{}', which is not defined", d.instance),
            ));
        }
    }

    for vs in &c.virtual_servers {
        if let VirtualServerKey::Group(name) = &vs.key {
            if !c.virtual_server_groups.iter().any(|g| &g.name == name) {
                return Err(ConfigError::invalid(&vs.location, format!("virtual_server_group '{name}' is not defined")));
            }
        }
        for rs in &vs.real_servers {
            for ch in &rs.checkers {
                if let CheckKind::File(f) = &ch.kind {
                    if !files.contains(f.track_file.as_str()) {
                        return Err(ConfigError::invalid(&ch.location, format!("vrrp_track_file '{}' is not defined", f.track_file)));
                    }
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_text(text: &str) -> Result<Loaded, ConfigError> {
        load_str(Path::new("m.conf"), text)
    }

    #[test]
    fn test_unknown_top_level() {
        let e = load_text("vrrp_instanc VI {\n}\n").expect_err("typo");
        assert_eq!(e.to_string(), "m.conf:1:1: unknown keyword 'vrrp_instanc' in top level (did you mean 'vrrp_instance'?)");
    }

    #[test]
    fn test_global_after_instance_still_applies() {
        let l = load_text("vrrp_instance A {\ninterface eth0\nvirtual_router_id 1\n}\nglobal_defs {\nvrrp_version 3\n}\n").expect("valid");
        assert_eq!(l.config.vrrp_instances[0].version, VrrpVersion::V3);
    }

    #[test]
    fn test_sync_group_member_once() {
        let e = load_text(
            "vrrp_instance A {\ninterface eth0\nvirtual_router_id 1\n}\nvrrp_sync_group G {\ngroup {\nA\n}\n}\nvrrp_sync_group H {\ngroup {\nA\n}\n}\n",
        )
        .expect_err("twice");
        assert_eq!(e.location().line, 12);
    }

    #[test]
    fn test_unrunnable_scripts_are_disabled() {
        let text = "vrrp_script gone {\n  script \"/no/such/prog\"\n  weight -20\n}\n\
                    vrrp_script here {\n  script \"/bin/true\"\n}\n\
                    vrrp_instance VI {\n  interface eth0\n  virtual_router_id 1\n  no_virtual_ipaddress\n  \
                    notify_master /no/such/notify\n  notify_backup /bin/true\n  track_script {\n    gone\n    here\n  }\n}\n\
                    vrrp_instance VJ {\n  interface eth0\n  virtual_router_id 2\n  no_virtual_ipaddress\n}\n\
                    vrrp_sync_group G {\n  group {\n    VI\n    VJ\n  }\n  track_script {\n    gone\n  }\n  notify /no/such/group\n}\n";
        let mut c = load_text(text).expect("valid").config;
        let w = c.disable_unrunnable_scripts(|s, _| if s.command.starts_with("/no/") { Err(format!("{}: not found", s.command)) } else { Ok(()) });
        // The script is gone from the list, the instance and the group; the runnable one stays.
        assert_eq!(c.vrrp_scripts.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["here"]);
        let vi = c.instance("VI").expect("VI");
        assert_eq!(vi.track_scripts.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(), ["here"]);
        assert!(c.vrrp_sync_groups[0].track_scripts.is_empty());
        // Notify scripts that cannot run are dropped, the others kept.
        assert!(vi.notify.master.is_none());
        assert_eq!(vi.notify.backup.as_ref().map(|s| s.command.as_str()), Some("/bin/true"));
        assert!(c.vrrp_sync_groups[0].notify.notify.is_none());
        // One warning each, where the script, instance or group is written.
        let said: Vec<(u32, bool)> = w.iter().map(|w| (w.location.line, w.message.contains("not found"))).collect();
        assert_eq!(said, [(1, true), (12, true), (32, true)], "{w:?}");
        assert!(w[0].message.starts_with("vrrp_script gone: /no/such/prog: not found; the script is disabled"), "{}", w[0].message);
        assert!(w[1].message.contains("notify_master '/no/such/notify'"), "{}", w[1].message);
        // Nothing to disable: nothing changes.
        let mut again = c.clone();
        assert!(again.disable_unrunnable_scripts(|_, _| Ok(())).is_empty());
        assert_eq!(again, c);
    }
}
