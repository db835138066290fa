//! keepalived's state dumps, in keepalived 2.2's formats: the data dump that SIGUSR1 asks for
//! (`keepalived.data`), the statistics that SIGUSR2 asks for (`keepalived.stats`) and the JSON
//! dump of SIGRTMIN+2 (`keepalived.json`), so that the scripts and monitoring written for
//! keepalived read hav's the same way.
//!
//! Rendering is pure: it reads a [`Snapshot`] that the VRRP loop took and the [`Config`] the
//! loop runs, and is meant to run off the loop (the auxiliary runtime), followed by [`write`].
//!
//! # Where the files go
//! Like keepalived: in the directory named by `TMPDIR` when that is an absolute path, else
//! `/tmp` ([`dir`]). keepalived's `tmp_config_directory` is not it (that option places copies
//! of the config); keepalived's `data_use_instance` renames the data dump after the `-i`
//! instance and network namespace, which hav does not have, so the names are always
//! `keepalived.data`, `keepalived.stats` and `keepalived.json`, mode 0600 as keepalived's
//! (its default umask is 0177). Each file is written whole into a new temporary file beside it
//! (refused if the name exists, links not followed) and then renamed over the old one, so a
//! reader never sees half a dump; keepalived renames its temporary file into place when it
//! opens it, before writing, so a reader of its file can.
//!
//! # Fields
//! Every VRRP field keepalived prints is printed, and with keepalived's wording. What hav has
//! no value for is printed the way keepalived prints it unset, or omitted where keepalived omits
//! it unset:
//!
//! - `Master priority` / `master_priority`: 0 (hav-core does not keep the master's priority).
//! - `Master router` of a backup that knows no master: `(none)` (keepalived prints whatever its
//!   address buffer last held).
//! - `Number of config faults` and `Number of track scripts init`: 0.
//! - `Total priority`: the effective priority (hav-core keeps only the clamped sum).
//! - Sockets: `No sockets allocated` (hav's sockets are per interface and family, not per
//!   instance); the `VRRP Sockpool` section is not written.
//! - Gratuitous ARP for secondary VMACs, notify priority changes, promote_secondaries,
//!   dont_track_primary off, virtual routes and rules: keepalived's defaults (hav has none of
//!   these).
//! - Global definitions that hav accepts and ignores (process priorities, SNMP, DBus, netlink
//!   buffers, LVS flush...): keepalived's defaults; `nftables ...` and `libnftnl version` lines
//!   are not written (hav has no nftables).
//! - Interfaces: only those the instances run on or track, with the lines hav knows (name,
//!   index, addresses, MAC, running or not, the instances tracking it); keepalived lists every
//!   interface with its MTU, hardware type, debounce timers, ARP settings and whether IPv6 is
//!   forwarded there.
//! - `VRRP Scripts`: `Result` is `rise` when the script is up and 0 when down; `Init state` is
//!   `unknown` (keepalived's value once started).
//!
//! Deliberate differences in values:
//!
//! - Times (`Last transition`, `Read timeout`) are written in UTC (keepalived: local time); the
//!   seconds since the epoch before them are the same.
//! - `Smtp server` is the name or address as written (keepalived prints the address it resolved
//!   at load); `Smtp HELO name` is the router ID, which hav greets with (keepalived: its
//!   `smtp_helo_name`, by default the host name).
//! - Commands print as written in the config (`'/bin/echo' 'x'`); keepalived prints the path
//!   it resolved (`'/usr/bin/echo' 'x'`).
//! - `Check unicast src : yes` for every unicast instance: hav always checks that a unicast
//!   advert comes from a configured peer.
//! - `Wantstate` / `wantstate` is the state itself (before start: the configured `state`):
//!   hav changes state in one step; keepalived may show where a sync group is about to take a
//!   member.
//! - `Flags: none`, or `Flags:` with `Using unicast` only; `Flags:` alone for nopreempt or
//!   use_vmac, as keepalived (it has more flags it prints no line for).
//! - Statistics (SIGUSR2 and the JSON `stats`) from hav's counters: `advert_rcvd` counts the
//!   adverts an instance accepted (keepalived also counts some it then drops for their address
//!   list); `packet_len_err` counts every message that did not parse (keepalived splits unknown
//!   types and authentication types out, which hav cannot: those are 0);
//!   `advert_interval_err` counts VRRPv2 interval mismatches and VRRPv3 zero intervals
//!   (keepalived 2.2 never counts it); `release_master` is the number of times the instance
//!   left MASTER. Drops keepalived has no name for (checksum, version, VRID, own adverts,
//!   family, unicast source, received while not listening) are in the metrics only.
//! - JSON: `/` is not escaped as `\/`, and whole numbers of seconds print without a fraction,
//!   as keepalived's `%g` does (`1`, `0.5`); `last_transition` keeps its fraction.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{self, Write as _};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use hav_core::vrrp::{Counters, DropReason, State, VipHold};
use hav_core::wire::{VrrpAuth, VrrpVersion};
use serde::Serialize;

use super::snapshot::{InstanceView, Snapshot};
use crate::config::vrrp::{Notify, VirtualIp};
use crate::config::{Config, Script, VrrpInstance};

/// Which dump.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `keepalived.data`, on SIGUSR1.
    Data,
    /// `keepalived.stats`, on SIGUSR2.
    Stats,
    /// `keepalived.json`, on SIGRTMIN+2.
    Json,
}

impl Kind {
    /// The file name keepalived uses.
    pub fn file_name(self) -> &'static str {
        match self {
            Kind::Data => "keepalived.data",
            Kind::Stats => "keepalived.stats",
            Kind::Json => "keepalived.json",
        }
    }

    /// The signal that asks for it.
    pub fn signal(self) -> i32 {
        match self {
            Kind::Data => libc::SIGUSR1,
            Kind::Stats => libc::SIGUSR2,
            Kind::Json => libc::SIGRTMIN() + 2,
        }
    }

    /// Renders this dump.
    pub fn render(self, snap: &Snapshot, config: &Config) -> String {
        match self {
            Kind::Data => data(snap, config),
            Kind::Stats => stats(snap),
            Kind::Json => json(snap, config),
        }
    }
}

/// The directory the dumps go to: `TMPDIR` when it is an absolute path, else `/tmp`, as
/// keepalived does (its build's `--with-tmp-dir` is `/tmp` in Debian's package). Read on every
/// call, so it follows the daemon's environment.
pub fn dir() -> PathBuf {
    dir_from(std::env::var_os("TMPDIR").as_deref())
}

fn dir_from(tmpdir: Option<&std::ffi::OsStr>) -> PathBuf {
    match tmpdir.map(Path::new) {
        Some(p) if p.is_absolute() => p.to_path_buf(),
        _ => PathBuf::from("/tmp"),
    }
}

/// Renders `kind` and writes it into [`dir`]: what the daemon does on the dump signals.
///
/// # Errors
/// As [`write`].
pub fn dump(kind: Kind, snap: &Snapshot, config: &Config) -> io::Result<PathBuf> {
    write(kind, &dir(), &kind.render(snap, config))
}

/// Writes `text` as `dir/<kind's file name>`: into a new temporary file in `dir` (created
/// exclusively, links not followed, mode 0600 as keepalived's default umask leaves its dumps),
/// then renamed over the file. Returns the file's path.
///
/// # Errors
/// When the temporary file cannot be created or written, or the rename fails (the temporary
/// file is then removed).
pub fn write(kind: Kind, dir: &Path, text: &str) -> io::Result<PathBuf> {
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    let path = dir.join(kind.file_name());
    let mut last = None;
    for _ in 0..16 {
        let suffix: String = (0..6).map(|_| fastrand::alphanumeric()).collect();
        let tmp = dir.join(format!("{}{suffix}", kind.file_name()));
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&tmp);
        let mut file = match file {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                last = Some(e);
                continue;
            }
            Err(e) => return Err(e),
        };
        // The umask may have taken bits the mode asked for; keepalived sets the mode after.
        let done = file
            .set_permissions(std::fs::Permissions::from_mode(0o600))
            .and_then(|()| file.write_all(text.as_bytes()))
            .and_then(|()| std::fs::rename(&tmp, &path));
        if let Err(e) = done {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        return Ok(path);
    }
    Err(last.unwrap_or_else(|| io::Error::from(io::ErrorKind::AlreadyExists)))
}

// --- shared pieces --------------------------------------------------------------------------

fn state_str(s: State) -> &'static str {
    match s {
        State::Initialize => "INIT",
        State::Backup => "BACKUP",
        State::Master => "MASTER",
        State::Fault => "FAULT",
    }
}

fn state_num(s: State) -> u8 {
    match s {
        State::Initialize => 0,
        State::Backup => 1,
        State::Master => 2,
        State::Fault => 3,
    }
}

/// keepalived's wanted state: where it is going. hav changes state in one step, so that is the
/// state itself, or the configured one before the instance has started.
fn want(i: &InstanceView) -> State {
    match i.state {
        State::Initialize if i.want_master => State::Master,
        State::Initialize => State::Backup,
        s => s,
    }
}

fn secs(d: hav_core::Duration) -> u64 {
    d.total_micros() / 1_000_000
}

/// `printf("%g")` for the values keepalived prints so: six significant digits, no trailing
/// zeros, no fraction for whole numbers.
fn g(x: f64) -> String {
    if x == x.trunc() && x.abs() < 1e15 {
        return format!("{}", x as i64);
    }
    let digits = if x == 0.0 { 0 } else { x.abs().log10().floor() as i32 };
    let decimals = usize::try_from((5 - digits).max(0)).unwrap_or(0);
    let s = format!("{x:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s
    }
}

/// Seconds and microseconds since the epoch (0 for unset or earlier times).
fn epoch(t: Option<SystemTime>) -> (u64, u32) {
    t.and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map_or((0, 0), |d| (d.as_secs(), d.subsec_micros()))
}

/// keepalived's `SECS.USECS (Www Mmm dd hh:mm:ss.uuuuuu yyyy)`, in UTC.
fn time_line(t: Option<SystemTime>) -> String {
    let (s, us) = epoch(t);
    let days = s / 86_400;
    let rem = s % 86_400;
    let (y, m, d) = civil(days);
    const WD: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MON: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    format!(
        "{s}.{us:06} ({} {} {d:>2} {:02}:{:02}:{:02}.{us:06} {y})",
        WD[(days % 7) as usize],
        MON[(m - 1) as usize],
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01.
fn civil(days: u64) -> (u64, u64, u64) {
    // Howard Hinnant's days-to-civil, for days on or after the epoch.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

/// keepalived's `cmd_str`: each word in single quotes, separated by spaces.
fn cmd_str(s: &Script) -> String {
    let mut out = String::with_capacity(s.command.len() + 2 * s.argv.len() + 2);
    for (n, w) in s.argv.iter().enumerate() {
        if n > 0 {
            out.push(' ');
        }
        if n == 0 && (w.starts_with('<') || w.starts_with('>')) {
            out.push_str(w);
        } else {
            let _ = write!(out, "'{w}'");
        }
    }
    out
}

fn scope_name(scope: Option<&str>) -> &str {
    match scope {
        None | Some("global") | Some("universe") | Some("0") => "global",
        Some("site") | Some("200") => "site",
        Some("link") | Some("253") => "link",
        Some("host") | Some("254") => "host",
        Some("nowhere") | Some("255") => "nowhere",
        Some(other) => other,
    }
}

fn mac_str(mac: &[u8; 6]) -> String {
    mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

/// What the renderers need from the daemon's environment, read once per dump.
struct Ids {
    /// uid:gid of notify scripts (the default script user).
    notify: (u32, u32),
    /// The daemon's own uid:gid (FIFOs).
    own: (u32, u32),
}

impl Ids {
    fn new(config: &Config) -> Ids {
        let own = (nix::unistd::getuid().as_raw(), nix::unistd::getgid().as_raw());
        let notify = match super::proc::default_creds(config) {
            Ok(Some(c)) => (c.uid.as_raw(), c.gid.as_raw()),
            _ => own,
        };
        Ids { notify, own }
    }

    fn script(&self, user: Option<&crate::config::value::RunAs>) -> (u32, u32) {
        match user.map(super::proc::resolve) {
            Some(Ok(c)) => (c.uid.as_raw(), c.gid.as_raw()),
            _ => self.notify,
        }
    }
}

/// One instance's config, found by name once per dump.
fn by_name(config: &Config) -> HashMap<&str, &VrrpInstance> {
    config.vrrp_instances.iter().map(|i| (i.name.as_str(), i)).collect()
}

/// A tracked object of an instance, from the snapshot's `kind:name`.
struct Track<'a> {
    kind: &'a str,
    name: &'a str,
    weight: i16,
    status: &'a str,
    reverse: bool,
}

fn tracks<'a>(i: &'a InstanceView, cfg: Option<&VrrpInstance>, config: &Config) -> Vec<Track<'a>> {
    i.tracks
        .iter()
        .map(|(obj, weight, status)| {
            let (kind, name) = obj.split_once(':').unwrap_or(("", obj.as_str()));
            let reverse = cfg.is_some_and(|c| match kind {
                "interface" => c.track_interfaces.iter().any(|t| t.name == name && t.reverse),
                "script" => {
                    c.track_scripts.iter().any(|t| t.name == name && t.reverse)
                        || config.script(name).is_some_and(|s| s.reverse)
                }
                "file" => {
                    c.track_files.iter().any(|t| t.name == name && t.reverse)
                        || config.vrrp_track_files.iter().any(|f| f.name == name && f.reverse)
                }
                _ => false,
            });
            Track { kind, name, weight: *weight, status: status.as_str(), reverse }
        })
        .collect()
}

/// Whether a tracked object holds its instance in FAULT (down with weight 0, or a policy's
/// FAULT), as keepalived counts `num_script_if_fault`.
fn faults(t: &Track<'_>) -> bool {
    let down = if t.reverse { t.status == "Up" } else { t.status == "Down" };
    t.status == "Fault" || (t.weight == 0 && down)
}

/// The addresses carried in adverts and the excluded ones, as the config writes them.
fn vip_lists<'c>(i: &InstanceView, cfg: Option<&'c VrrpInstance>) -> (Vec<&'c VirtualIp>, Vec<&'c VirtualIp>) {
    let Some(c) = cfg else { return (Vec::new(), Vec::new()) };
    let mut vips = Vec::new();
    let mut excluded = Vec::new();
    for v in &c.virtual_ipaddresses {
        if i.vips.contains(&v.address) && !vips.iter().any(|w: &&VirtualIp| w.address == v.address) {
            vips.push(v);
        } else {
            excluded.push(v);
        }
    }
    excluded.extend(c.virtual_ipaddresses_excluded.iter());
    (vips, excluded)
}

/// keepalived's `format_ipaddress`.
fn format_vip(v: &VirtualIp, i: &InstanceView, set: bool) -> String {
    let mut s = String::with_capacity(64);
    let full = if v.address.is_ipv4() { 32 } else { 128 };
    let _ = write!(s, "{}", v.address);
    if v.prefix_len != full {
        let _ = write!(s, "/{}", v.prefix_len);
    }
    if let Some(b) = v.broadcast.filter(|_| v.address.is_ipv4()) {
        let _ = write!(s, " brd {b}");
    }
    let vmac = i.vmac.as_ref().map(|(n, _)| n.as_str());
    let dev = v.dev.as_deref().or(vmac).unwrap_or(&i.ifname);
    let _ = write!(s, " dev {dev}");
    if Some(dev) == vmac {
        let _ = write!(s, "@{}", i.ifname);
    }
    let _ = write!(s, " scope {}", scope_name(v.scope.as_deref()));
    if let Some(l) = &v.label {
        let _ = write!(s, " label {l}");
    }
    if let Some(p) = &v.peer {
        let _ = write!(s, " peer {p}");
        if !p.contains('/') {
            let _ = write!(s, "/{}", v.prefix_len);
        }
    }
    // keepalived's order; `nodad` is the same flag as `-nodad`.
    for f in ["home", "-nodad", "noprefixroute", "autojoin"] {
        if v.flags.iter().any(|x| x == f || (f == "-nodad" && x == "nodad")) {
            let _ = write!(s, " {f}");
        }
    }
    if v.no_track {
        s.push_str(" no_track");
    }
    if v.address.is_ipv6() {
        let lft = v.flags.iter().find_map(|f| f.strip_prefix("preferred_lft "));
        match lft {
            Some("0") => s.push_str(" deprecated"),
            Some(n) if n != "forever" && n != "infinite" => {
                let _ = write!(s, " preferred_lft {n}");
            }
            _ => s.push_str(" preferred_lft forever"),
        }
    }
    if set {
        s.push_str(" set");
    }
    s
}

fn vips_set(i: &InstanceView) -> bool {
    i.hold == VipHold::Held
}

// --- keepalived.data ------------------------------------------------------------------------

/// Renders `keepalived.data`: global definitions, every instance (`VRRP Topology`), sync
/// groups, scripts, track files and the instances' interfaces.
pub fn data(snap: &Snapshot, config: &Config) -> String {
    let mut s = String::with_capacity(4096 + snap.instances.len() * 2048);
    let ids = Ids::new(config);
    let cfgs = by_name(config);
    global(&mut s, config, &ids);
    if !snap.instances.is_empty() {
        s.push_str("------< VRRP Topology >------\n");
        let groups: HashMap<&str, &str> = snap
            .groups
            .iter()
            .flat_map(|(g, members, _)| members.iter().map(move |m| (m.as_str(), g.as_str())))
            .collect();
        for i in &snap.instances {
            instance(&mut s, i, cfgs.get(i.name.as_str()).copied(), config, groups.get(i.name.as_str()).copied(), &ids);
        }
    }
    sync_groups(&mut s, snap, config, &ids);
    scripts(&mut s, snap, config, &ids);
    track_files(&mut s, snap, config);
    interfaces(&mut s, snap, &cfgs);
    s
}

fn global(s: &mut String, config: &Config, ids: &Ids) {
    let g = &config.global;
    let on = |b: bool| if b { "true" } else { "false" };
    s.push_str("------< Global definitions >------\n");
    s.push_str(" Network namespace = (default)\n Network namespace ipvs = (main namespace)\n");
    let router_id = g.router_id.clone().unwrap_or_else(|| {
        nix::unistd::gethostname().ok().and_then(|h| h.into_string().ok()).unwrap_or_default()
    });
    let _ = writeln!(s, " Router ID = {router_id}");
    if let Some(smtp) = &g.smtp_server {
        let _ = writeln!(s, " Smtp server = {}\n Smtp server port = {}", smtp.host, smtp.port);
        // hav greets the server with the router ID (smtp_helo_name is ignored).
        let _ = writeln!(s, " Smtp HELO name = {router_id}");
        let _ = writeln!(s, " Smtp server connection timeout = {}", g.smtp_connect_timeout.as_secs());
    }
    if let Some(from) = &g.notification_email_from {
        let _ = writeln!(s, " Email notification from = {from}\n Email notification to:");
        for to in &g.notification_email {
            let _ = writeln!(s, "   {to}");
        }
    }
    s.push_str(
        " Default smtp_alert = unset\n Default smtp_alert_vrrp = unset\n Default smtp_alert_checker = unset\n \
         Checkers log all failures = false\n No test config before reload\n",
    );
    let _ = writeln!(s, " Dynamic interfaces = {}", on(g.dynamic_interfaces));
    if g.dynamic_interfaces {
        s.push_str(" Allow interface changes = false\n");
    }
    s.push_str(" Default interface = eth0\n Disable local IGMP = no\n");
    if let Some(l) = &g.lvs_sync_daemon {
        let _ = writeln!(s, " LVS syncd vrrp instance = {}\n LVS syncd interface = {}", l.instance, l.interface);
        let _ = writeln!(s, " LVS syncd syncid = {}", l.id.unwrap_or(0));
        if let Some(m) = l.maxlen {
            let _ = writeln!(s, " LVS syncd maxlen = {m}");
        }
        if let Some(a) = l.group {
            let _ = writeln!(s, " LVS mcast group {a}");
        }
        if let Some(p) = l.port {
            let _ = writeln!(s, " LVS syncd mcast port = {p}");
        }
        if let Some(t) = l.ttl {
            let _ = writeln!(s, " LVS syncd mcast ttl = {t}");
        }
    }
    s.push_str(" LVS flush = false\n LVS flush on stop = disabled\n");
    let fifos = [
        ("Global", &g.notify_fifo, &g.notify_fifo_script),
        ("VRRP", &g.vrrp_notify_fifo, &g.vrrp_notify_fifo_script),
        ("LVS", &g.lvs_notify_fifo, &g.lvs_notify_fifo_script),
    ];
    let user_ids = |u: Option<&crate::config::value::RunAs>, or: (u32, u32)| {
        u.and_then(|u| super::proc::resolve(u).ok()).map_or(or, |c| (c.uid.as_raw(), c.gid.as_raw()))
    };
    for (what, fifo, script) in fifos {
        if let Some(f) = fifo {
            let (u, g) = user_ids(f.owner.as_ref(), ids.own);
            let _ = writeln!(s, " {what} notify fifo = {}, uid:gid {u}:{g}", f.path);
            if let Some(sc) = script {
                // As the reader is started: the FIFO's path last.
                let mut run = sc.clone();
                run.argv.push(f.path.clone());
                let (u, g) = user_ids(sc.user.as_ref(), ids.notify);
                let _ = writeln!(s, " {what} notify fifo script = {}, uid:gid {u}:{g}", cmd_str(&run));
            }
        }
    }
    s.push_str(" FIFO write vrrp states on reload = false\n VRRP notify priority changes = false\n");
    let _ = writeln!(s, " VRRP IPv4 mcast group = {}\n VRRP IPv6 mcast group = {}", g.vrrp_mcast_group4, g.vrrp_mcast_group6);
    let _ = writeln!(s, " Gratuitous ARP delay = {}", g.vrrp_garp_master_delay.as_secs());
    let _ = writeln!(s, " Gratuitous ARP repeat = {}", g.vrrp_garp_master_repeat);
    let _ = writeln!(s, " Gratuitous ARP refresh timer = {}", g.vrrp_garp_master_refresh.map_or(0, |d| d.as_secs()));
    let _ = writeln!(s, " Gratuitous ARP refresh repeat = {}", g.vrrp_garp_master_refresh_repeat);
    let lower_delay = g.vrrp_garp_lower_prio_delay.unwrap_or(g.vrrp_garp_master_delay);
    let _ = writeln!(s, " Gratuitous ARP lower priority delay = {}", lower_delay.as_secs());
    let lower_rep = g.vrrp_garp_lower_prio_repeat.unwrap_or(g.vrrp_garp_master_repeat);
    let _ = writeln!(s, " Gratuitous ARP lower priority repeat = {lower_rep}");
    let _ = writeln!(s, " Num adverts before down = {}", g.vrrp_down_timer_adverts);
    let (what, secs) = g.vrrp_garp_extra_if.map_or(("VMAC", 0), |x| (if x.all { "i/f" } else { "VMAC" }, x.interval.as_secs()));
    let _ = writeln!(s, " Gratuitous ARP for each secondary {what} = {secs}s");
    let _ = writeln!(s, " Send advert after receive lower priority advert = {}", !g.vrrp_lower_prio_no_advert);
    let _ = writeln!(s, " Send advert after receive higher priority advert = {}", g.vrrp_higher_prio_send_advert);
    let _ = writeln!(s, " Gratuitous ARP interval = {:.6}", g.vrrp_garp_interval.as_secs_f64());
    let _ = writeln!(s, " Gratuitous NA interval = {:.6}", g.vrrp_gna_interval.as_secs_f64());
    let v = match g.vrrp_version {
        crate::config::VrrpVersion::V2 => 2,
        crate::config::VrrpVersion::V3 => 3,
    };
    let _ = writeln!(s, " VRRP default protocol version = {v}");
    let _ = writeln!(s, " VRRP check unicast_src = {}", on(g.vrrp_check_unicast_src));
    let _ = writeln!(s, " VRRP skip check advert addresses = {}", on(g.vrrp_skip_check_adv_addr));
    let _ = writeln!(s, " VRRP strict mode = {}", on(g.vrrp_strict));
    match g.max_auto_priority {
        Some(-1) => s.push_str(" Max auto priority = Disabled\n"),
        p => {
            let _ = writeln!(s, " Max auto priority = {}", p.unwrap_or(0));
        }
    }
    let _ = writeln!(s, " Min auto priority delay = {} usecs", g.min_auto_priority_delay.as_micros());
    for p in ["VRRP", "Checker", "BFD"] {
        let (rt, limit) = if p == "VRRP" { (g.vrrp_rt_priority.unwrap_or(0), g.vrrp_rlimit_rttime) } else { (0, 10_000) };
        let _ = writeln!(s, " {p} process priority = 0\n {p} don't swap = false\n {p} realtime priority = {rt}\n {p} realtime limit = {limit}");
    }
    s.push_str(
        " SNMP vrrp disabled\n SNMP checker disabled\n SNMP RFCv2 disabled\n SNMP RFCv3 disabled\n \
         SNMP traps disabled\n SNMP socket = default (unix:/var/agentx/master)\n DBus disabled\n DBus service name = \n",
    );
    let _ = writeln!(s, " Script security {}", if g.enable_script_security { "enabled" } else { "disabled" });
    let _ = writeln!(s, " Default script uid:gid {}:{}", ids.notify.0, ids.notify.1);
    for k in [
        "vrrp_netlink_cmd_rcv_bufs",
        "vrrp_netlink_cmd_rcv_bufs_force",
        "vrrp_netlink_monitor_rcv_bufs",
        "vrrp_netlink_monitor_rcv_bufs_force",
        "process_monitor_rcv_bufs",
        "process_monitor_rcv_bufs_force",
        "lvs_netlink_cmd_rcv_bufs",
        "lvs_netlink_cmd_rcv_bufs_force",
        "lvs_netlink_monitor_rcv_bufs",
        "lvs_netlink_monitor_rcv_bufs_force",
        "rs_init_notifies",
        "no_checker_emails",
    ] {
        let _ = writeln!(s, " {k} = 0");
    }
    s.push_str(" rx_bufs_multiples = 3\n umask = 0177\n");
}

fn instance(s: &mut String, i: &InstanceView, cfg: Option<&VrrpInstance>, config: &Config, group: Option<&str>, ids: &Ids) {
    let v3 = i.version == VrrpVersion::V3;
    let unicast = !i.peers.is_empty();
    let _ = writeln!(s, " VRRP Instance = {}", i.name);
    let _ = writeln!(s, "   VRRP Version = {}", if v3 { 3 } else { 2 });
    if let Some(g) = group {
        let _ = writeln!(s, "   Sync group = {g}");
    }
    if i.ipv6 {
        s.push_str("   Using Native IPv6\n");
    }
    let _ = writeln!(s, "   State = {}", state_str(i.state));
    if i.state == State::Backup {
        match i.master_addr {
            Some(a) => {
                let _ = writeln!(s, "   Master router = {a}");
            }
            None => s.push_str("   Master router = (none)\n"),
        }
        s.push_str("   Master priority = 0\n");
        if v3 {
            let _ = writeln!(s, "   Master advert int = {:.2} sec", i.master_adver_int_cs as f64 / 100.0);
        }
    }
    // keepalived counts nopreempt and use_vmac among its flags but prints no line for them.
    let silent_flags = i.vmac.is_some() || cfg.is_some_and(|c| !c.preempt);
    if unicast {
        s.push_str("   Flags:\n     Using unicast\n");
    } else if silent_flags {
        s.push_str("   Flags:\n");
    } else {
        s.push_str("   Flags: none\n");
    }
    let _ = writeln!(s, "   Wantstate = {}", state_str(want(i)));
    s.push_str("   Number of config faults = 0\n");
    let tr = tracks(i, cfg, config);
    let nfault = tr.iter().filter(|t| faults(t)).count() + usize::from(!i.link_up);
    let _ = writeln!(s, "   Number of interface and track script faults = {nfault}");
    s.push_str("   Number of track scripts init = 0\n");
    let _ = writeln!(s, "   Last transition = {}", time_line(i.since));
    match i.deadline {
        Some(t) => {
            let _ = writeln!(s, "   Read timeout = {}", time_line(Some(t)));
        }
        None => s.push_str("   Read timeout = DISABLED\n"),
    }
    let _ = writeln!(s, "   Master down timer = {} usecs", i.master_down_us);
    match &i.vmac {
        Some((name, _)) => {
            let xmit_base = i.xmit_ifname == i.ifname;
            let _ = writeln!(
                s,
                "   Use VMAC, i/f name {name}, is_up = {}, xmit_base = {}",
                if i.link_up { "true" } else { "false" },
                if xmit_base { "true" } else { "false" }
            );
            let _ = writeln!(s, "   Interface = {name}, vmac on {}{}", i.ifname, if xmit_base { ", xmit base i/f" } else { "" });
        }
        None => {
            let _ = writeln!(s, "   Interface = {}", i.ifname);
        }
    }
    if cfg.is_some_and(|c| c.dont_track_primary) {
        s.push_str("   VRRP interface tracking disabled\n");
    }
    if !i.check_adv_addr {
        s.push_str("   Skip checking advert IP addresses\n");
    }
    if config.global.vrrp_strict {
        s.push_str("   Enforcing strict VRRP compliance\n");
    }
    let from_config = cfg.is_some_and(|c| c.unicast_src_ip.or(c.mcast_src_ip).is_some());
    let _ = writeln!(s, "   Using src_ip = {}{}", i.primary_addr, if from_config { " (from configuration)" } else { "" });
    if !unicast {
        if i.ipv6 {
            let _ = writeln!(s, "   Multicast address {}, ifindex {}", i.mcast_group, i.ifindex);
        } else {
            let _ = writeln!(s, "   Multicast address {}", i.mcast_group);
        }
    }
    let gp = &i.garp;
    let _ = writeln!(s, "   Gratuitous ARP delay = {}", secs(gp.master_delay));
    let _ = writeln!(s, "   Gratuitous ARP repeat = {}", gp.master_repeat);
    let _ = writeln!(s, "   Gratuitous ARP refresh = {}", secs(gp.master_refresh));
    let _ = writeln!(s, "   Gratuitous ARP refresh repeat = {}", gp.master_refresh_repeat);
    let _ = writeln!(s, "   Gratuitous ARP lower priority delay = {}", secs(gp.lower_prio_delay));
    let _ = writeln!(s, "   Gratuitous ARP lower priority repeat = {}", gp.lower_prio_repeat);
    let (adverts, no_advert, send_higher) = cfg.map_or((3, false, false), |c| (c.down_timer_adverts, c.lower_prio_no_advert, c.higher_prio_send_advert));
    let _ = writeln!(s, "   Down timer adverts = {adverts}");
    let _ = writeln!(s, "   Send advert after receive lower priority advert = {}", !no_advert);
    let _ = writeln!(s, "   Send advert after receive higher priority advert = {send_higher}");
    let _ = writeln!(s, "   Virtual Router ID = {}", i.vrid);
    let _ = writeln!(s, "   Priority = {}", i.priority);
    let _ = writeln!(s, "   Effective priority = {}", i.effective_priority);
    let _ = writeln!(s, "   Total priority = {}", i.effective_priority);
    if v3 {
        let _ = writeln!(s, "   Advert interval = {} milli-sec", i.adver_int_cs * 10);
        if i.state == State::Backup {
            let _ = writeln!(s, "   Master advert interval = {} milli-sec", i.master_adver_int_cs * 10);
        }
    } else {
        let _ = writeln!(s, "   Advert interval = {} sec", i.adver_int_cs / 100);
    }
    let _ = writeln!(s, "   Accept = {}", if i.accept { "enabled" } else { "disabled" });
    let _ = writeln!(s, "   Preempt = {}", if i.preempt { "enabled" } else { "disabled" });
    if i.preempt_delay_ms > 0 {
        let _ = writeln!(s, "   Preempt delay = {} secs", g(i.preempt_delay_ms as f64 / 1000.0));
    }
    s.push_str("   Promote_secondaries = disabled\n");
    match i.auth {
        VrrpAuth::Simple(pass) => {
            let end = pass.iter().position(|&b| b == 0).unwrap_or(pass.len());
            let _ = writeln!(s, "   Authentication type = SIMPLE_PASSWORD\n   Password = {}", String::from_utf8_lossy(&pass[..end]));
        }
        // keepalived prints no password for AH.
        VrrpAuth::Ah(_) => s.push_str("   Authentication type = IPSEC_AH\n"),
        VrrpAuth::None if !v3 => s.push_str("   Authentication type = none\n"),
        VrrpAuth::None => {}
    }
    let (vips, excluded) = vip_lists(i, cfg);
    let set = vips_set(i);
    if !vips.is_empty() {
        let _ = writeln!(s, "   Virtual IP ({}):", vips.len());
        for v in &vips {
            let _ = writeln!(s, "     {}", format_vip(v, i, set));
        }
    }
    if !excluded.is_empty() {
        s.push_str("   Virtual IP Excluded :\n");
        for v in &excluded {
            let _ = writeln!(s, "     {}", format_vip(v, i, set));
        }
    }
    if unicast {
        // keepalived: IPv4 defaults to 255; IPv6 leaves the kernel's hop limit and says nothing.
        match (cfg.and_then(|c| c.unicast_ttl), i.ipv6) {
            (Some(t), _) => {
                let _ = writeln!(s, "   Unicast TTL = {t}");
            }
            (None, false) => s.push_str("   Unicast TTL = 255\n"),
            (None, true) => {}
        }
        let _ = writeln!(s, "   Check unicast src : {}", if i.check_unicast_src { "yes" } else { "no" });
        s.push_str("   Unicast Peer :\n");
        for p in &i.peers {
            let (lo, hi) = cfg.and_then(|c| c.unicast_peers.iter().find(|u| u.address == *p)).map_or((0, 255), |u| (u.min_ttl, u.max_ttl));
            let _ = writeln!(s, "     {p} min_ttl {lo} max_ttl {hi}");
        }
        s.push_str("   Unicast checksum compatibility = no\n");
    }
    s.push_str("   No sockets allocated\n");
    for (kind, heading, sep) in [("interface", "interfaces", ""), ("script", "scripts", ""), ("file", "files", ",")] {
        let mut first = true;
        for t in tr.iter().filter(|t| t.kind == kind) {
            if first {
                let _ = writeln!(s, "   Tracked {heading} :");
                first = false;
            }
            let _ = writeln!(s, "     {}{sep} weight {}{}", t.name, t.weight, if t.reverse { " reverse" } else { "" });
        }
    }
    let smtp = cfg.is_some_and(|c| c.smtp_alert)
        || config.vrrp_sync_groups.iter().any(|sg| sg.smtp_alert && sg.group.iter().any(|(n, _)| *n == i.name));
    let _ = writeln!(s, "   Using smtp notification = {}", if smtp { "yes" } else { "no" });
    let deleted = cfg.is_some_and(|c| c.notify.send_deleted);
    let _ = writeln!(s, "   Notify deleted = {}", if deleted { "Deleted" } else { "Fault" });
    if let Some(c) = cfg {
        notify_lines(s, &c.notify, ids.notify, true);
    }
    s.push_str("   Notify priority changes = false\n");
}

/// The notify scripts, in keepalived's order; `instance` adds the instance-only ones.
fn notify_lines(s: &mut String, n: &Notify, (uid, gid): (u32, u32), instance: bool) {
    let mut line = |what: &str, sc: &Option<Script>| {
        if let Some(sc) = sc {
            let _ = writeln!(s, "   {what} state transition script = {}, uid:gid {uid}:{gid}", cmd_str(sc));
        }
    };
    line("Backup", &n.backup);
    line("Master", &n.master);
    line("Fault", &n.fault);
    line("Stop", &n.stop);
    if instance {
        line("Deleted", &n.deleted);
    }
    line("Generic", &n.notify);
    if instance {
        line("Master rx lower pri", &n.master_rx_lower_pri);
    }
}

fn sync_groups(s: &mut String, snap: &Snapshot, config: &Config, ids: &Ids) {
    if snap.groups.is_empty() {
        return;
    }
    s.push_str("------< VRRP Sync groups >------\n");
    let states: HashMap<&str, State> = snap.instances.iter().map(|i| (i.name.as_str(), i.state)).collect();
    for (name, members, agreed) in &snap.groups {
        let _ = writeln!(s, " VRRP Sync Group = {name}, {}", agreed.map_or("INIT", state_str));
        let count = |st: State| members.iter().filter(|m| states.get(m.as_str()) == Some(&st)).count();
        let _ = writeln!(s, "   Num member fault {}, num member init {}", count(State::Fault), count(State::Initialize));
        if !members.is_empty() {
            s.push_str("   VRRP member instances :\n");
            for m in members {
                let _ = writeln!(s, "     {m}");
            }
        }
        let cfg = config.vrrp_sync_groups.iter().find(|g| &g.name == name);
        let _ = writeln!(s, "   Using smtp notification = {}", if cfg.is_some_and(|g| g.smtp_alert) { "yes" } else { "no" });
        if let Some(g) = cfg {
            if !g.track_interfaces.is_empty() {
                s.push_str("   Tracked interfaces :\n");
                for t in &g.track_interfaces {
                    let _ = writeln!(s, "     {} weight {}{}", t.name, t.weight, if t.reverse { " reverse" } else { "" });
                }
            }
            for (heading, list, sep) in [("scripts", &g.track_scripts, ""), ("files", &g.track_files, ",")] {
                if list.is_empty() {
                    continue;
                }
                let _ = writeln!(s, "   Tracked {heading} :");
                for t in list {
                    let w = t.weight.unwrap_or_else(|| default_weight(config, heading, &t.name));
                    let _ = writeln!(s, "     {}{sep} weight {w}{}", t.name, if t.reverse { " reverse" } else { "" });
                }
            }
            notify_lines(s, &g.notify, ids.notify, false);
        }
    }
}

fn default_weight(config: &Config, heading: &str, name: &str) -> i32 {
    if heading == "scripts" {
        config.script(name).map_or(0, |s| s.weight)
    } else {
        config.vrrp_track_files.iter().find(|f| f.name == name).map_or(0, |f| f.weight)
    }
}

/// The instances tracking `kind:name`, with their weights.
fn trackers<'a>(snap: &'a Snapshot, obj: &'a str) -> impl Iterator<Item = (&'a str, i16)> + 'a {
    snap.instances
        .iter()
        .flat_map(move |i| i.tracks.iter().filter(move |(o, _, _)| o == obj).map(move |(_, w, _)| (i.name.as_str(), *w)))
}

/// The status of `kind:name` as the first instance tracking it saw it.
fn status_of<'a>(snap: &'a Snapshot, obj: &str) -> Option<&'a str> {
    snap.instances.iter().flat_map(|i| i.tracks.iter()).find(|(o, _, _)| o == obj).map(|(_, _, st)| st.as_str())
}

fn scripts(s: &mut String, snap: &Snapshot, config: &Config, ids: &Ids) {
    if config.vrrp_scripts.is_empty() {
        return;
    }
    s.push_str("------< VRRP Scripts >------\n");
    for sc in &config.vrrp_scripts {
        let obj = format!("script:{}", sc.name);
        let _ = writeln!(s, " VRRP Script = {}", sc.name);
        let command = match (&sc.script, &sc.policy) {
            (Some(c), _) => cmd_str(c),
            (None, Some(p)) => format!("policy {p}"),
            (None, None) => String::new(),
        };
        let _ = writeln!(s, "   Command = {command}");
        let _ = writeln!(s, "   Interval = {} sec", sc.interval.as_secs());
        // The configured timeout, 0 when unset (the script then gets its interval).
        let _ = writeln!(s, "   Timeout = {} sec", sc.timeout.map_or(0, |t| t.as_secs()));
        let _ = writeln!(s, "   Weight = {}{}", sc.weight, if sc.reverse { " reverse" } else { "" });
        let _ = writeln!(s, "   Rise = {}\n   Fall = {}", sc.rise, sc.fall);
        let good = match status_of(snap, &obj) {
            Some("Down") | Some("Fault") => false,
            Some(_) => true,
            None => !sc.init_fail,
        };
        let _ = writeln!(s, "   Result = {}", if good { sc.rise } else { 0 });
        s.push_str("   Insecure = no\n   Init state = unknown\n");
        let _ = writeln!(s, "   Status = {}", if good { "GOOD" } else { "BAD" });
        let (uid, gid) = ids.script(sc.user.as_ref());
        let _ = writeln!(s, "   Script uid:gid = {uid}:{gid}");
        s.push_str("   VRRP instances :\n   Tracking instances :\n");
        for (name, w) in trackers(snap, &obj) {
            let _ = writeln!(s, "     {name}, weight {w}");
        }
        s.push_str("   State = idle\n");
    }
}

fn track_files(s: &mut String, snap: &Snapshot, config: &Config) {
    if config.vrrp_track_files.is_empty() {
        return;
    }
    s.push_str("------< VRRP Track files >------\n");
    for f in &config.vrrp_track_files {
        let obj = format!("file:{}", f.name);
        let _ = writeln!(s, " Track file = {}\n   File = {}", f.name, f.file);
        let status = status_of(snap, &obj)
            .and_then(|st| st.strip_prefix("Value(").and_then(|v| v.strip_suffix(')')))
            .and_then(|v| v.parse::<i64>().ok())
            .unwrap_or(0);
        let _ = writeln!(s, "   Status = {status}");
        let _ = writeln!(s, "   Weight = {}{}", f.weight, if f.reverse { " reverse" } else { "" });
        s.push_str("   Tracking instances :\n");
        for (name, w) in trackers(snap, &obj) {
            let _ = writeln!(s, "     {name}, weight {w}");
        }
    }
}

fn interfaces(s: &mut String, snap: &Snapshot, cfgs: &HashMap<&str, &VrrpInstance>) {
    // Base interfaces of the instances first, then interfaces only tracked, each once.
    let mut names: Vec<&str> = Vec::new();
    for i in &snap.instances {
        if !names.contains(&i.ifname.as_str()) {
            names.push(&i.ifname);
        }
    }
    let tracked: Vec<&str> = snap
        .instances
        .iter()
        .flat_map(|i| i.tracks.iter())
        .filter_map(|(o, _, _)| o.strip_prefix("interface:"))
        .collect();
    for t in tracked {
        if !names.contains(&t) {
            names.push(t);
        }
    }
    if names.is_empty() {
        return;
    }
    let vips: Vec<IpAddr> = snap.instances.iter().flat_map(|i| i.vip_specs.iter().map(|v| v.0)).collect();
    s.push_str("------< Interfaces >------\n");
    for name in names {
        let _ = writeln!(s, " Name = {name}");
        let base = snap.instances.iter().find(|i| i.ifname == name);
        let running = match base {
            Some(i) => i.link_up,
            None => status_of(snap, &format!("interface:{name}")) == Some("Up"),
        };
        if let Some(i) = base {
            let _ = writeln!(s, "   index = {}", i.ifindex);
            let v4 = i.addrs.iter().find(|a| a.is_ipv4() && !vips.contains(a));
            let v6 = i.addrs.iter().find(|a| matches!(a, IpAddr::V6(v) if (v.segments()[0] & 0xffc0) == 0xfe80));
            let none = || "(none)".to_owned();
            let _ = writeln!(s, "   IPv4 address = {}", v4.map_or_else(none, ToString::to_string));
            let _ = writeln!(s, "   IPv6 address = {}", v6.map_or_else(none, ToString::to_string));
            let _ = writeln!(s, "   MAC = {}\n   MAC broadcast = ff:ff:ff:ff:ff:ff", mac_str(&i.mac));
        }
        let _ = writeln!(s, "   State = {}", if running { "UP, RUNNING" } else { "not UP, not RUNNING" });
        let mut list: Vec<(&str, i16)> = snap
            .instances
            .iter()
            .filter(|i| i.ifname == name && !cfgs.get(i.name.as_str()).is_some_and(|c| c.dont_track_primary))
            .map(|i| (i.name.as_str(), 0))
            .collect();
        let obj = format!("interface:{name}");
        list.extend(trackers(snap, &obj));
        if !list.is_empty() {
            s.push_str("   Tracking VRRP instances :\n");
            for (n, w) in list {
                let _ = writeln!(s, "     {n}, weight {w}");
            }
        }
    }
}

// --- keepalived.stats -----------------------------------------------------------------------

/// keepalived's statistics of one instance, from hav's counters (see the module documentation
/// for how each is counted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Stats {
    /// Adverts accepted.
    pub advert_rcvd: u64,
    /// Adverts sent.
    pub advert_sent: u64,
    /// Times it became master.
    pub become_master: u64,
    /// Times it left master.
    pub release_master: u64,
    /// Messages that did not parse.
    pub packet_len_err: u64,
    /// VRRPv2 interval mismatches and VRRPv3 zero intervals.
    pub advert_interval_err: u64,
    /// TTL / hop limit not 255.
    pub ip_ttl_err: u64,
    /// Unknown message type (folded into `packet_len_err` by hav: 0).
    pub invalid_type_rcvd: u64,
    /// Address list differs.
    pub addr_list_err: u64,
    /// Unknown authentication type (folded into `packet_len_err` by hav: 0).
    pub invalid_authtype: u64,
    /// Authentication type differs.
    pub authtype_mismatch: u64,
    /// Wrong password.
    pub auth_failure: u64,
    /// Priority-0 adverts received.
    pub pri_zero_rcvd: u64,
    /// Priority-0 adverts sent.
    pub pri_zero_sent: u64,
}

impl Stats {
    /// keepalived's counters of an instance in `state` with hav's `counters`.
    pub fn of(c: &Counters, state: State) -> Stats {
        let d = |r: DropReason| c.drops[r as usize];
        Stats {
            advert_rcvd: c.adverts_rx,
            advert_sent: c.adverts_tx,
            become_master: c.became_master,
            release_master: c.became_master.saturating_sub(u64::from(state == State::Master)),
            packet_len_err: d(DropReason::Malformed),
            advert_interval_err: d(DropReason::Interval) + d(DropReason::ZeroInterval),
            ip_ttl_err: d(DropReason::Ttl),
            invalid_type_rcvd: 0,
            addr_list_err: d(DropReason::Addresses),
            invalid_authtype: 0,
            authtype_mismatch: d(DropReason::AuthType),
            // keepalived counts a bad AH ICV, SPI or sequence number as an auth failure too.
            auth_failure: d(DropReason::AuthPass) + d(DropReason::AhIcv) + d(DropReason::AhReplay),
            pri_zero_rcvd: c.prio_zero_rx,
            pri_zero_sent: c.prio_zero_tx,
        }
    }
}

/// Renders `keepalived.stats`.
pub fn stats(snap: &Snapshot) -> String {
    let mut s = String::with_capacity(snap.instances.len() * 420);
    for i in &snap.instances {
        let t = Stats::of(&i.counters, i.state);
        let _ = write!(
            s,
            "VRRP Instance: {}\n  Advertisements:\n    Received: {}\n    Sent: {}\n  Became master: {}\n  \
             Released master: {}\n  Packet Errors:\n    Length: {}\n    TTL: {}\n    Invalid Type: {}\n    \
             Advertisement Interval: {}\n    Address List: {}\n  Authentication Errors:\n    Invalid Type: {}\n    \
             Type Mismatch: {}\n    Failure: {}\n  Priority Zero:\n    Received: {}\n    Sent: {}\n",
            i.name,
            t.advert_rcvd,
            t.advert_sent,
            t.become_master,
            t.release_master,
            t.packet_len_err,
            t.ip_ttl_err,
            t.invalid_type_rcvd,
            t.advert_interval_err,
            t.addr_list_err,
            t.invalid_authtype,
            t.authtype_mismatch,
            t.auth_failure,
            t.pri_zero_rcvd,
            t.pri_zero_sent
        );
    }
    s
}

// --- keepalived.json ------------------------------------------------------------------------

/// A number of seconds as keepalived's `%g` prints it: whole numbers without a fraction.
#[derive(Debug, Clone, Copy)]
struct Secs(f64);

impl Serialize for Secs {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0 == self.0.trunc() && self.0.abs() < 1e15 {
            s.serialize_i64(self.0 as i64)
        } else {
            s.serialize_f64(self.0)
        }
    }
}

/// One instance's `data` object, in keepalived's field order.
#[derive(Serialize)]
struct JsonData<'a> {
    iname: &'a str,
    dont_track_primary: u8,
    skip_check_adv_addr: u8,
    strict_mode: u8,
    vmac_ifname: &'a str,
    ifp_ifname: &'a str,
    master_priority: u8,
    last_transition: f64,
    garp_delay: Secs,
    garp_refresh: u64,
    garp_rep: u8,
    garp_refresh_rep: u8,
    garp_lower_prio_delay: u64,
    garp_lower_prio_rep: u8,
    lower_prio_no_advert: u8,
    higher_prio_send_advert: u8,
    vrid: u8,
    base_priority: u8,
    effective_priority: u8,
    vipset: bool,
    promote_secondaries: bool,
    adver_int: Secs,
    master_adver_int: Secs,
    accept: u8,
    nopreempt: bool,
    preempt_delay: u64,
    state: u8,
    wantstate: u8,
    version: u8,
    smtp_alert: bool,
    notify_deleted: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    script_backup: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    script_master: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    script_fault: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    script_stop: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    script_deleted: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    script: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    script_master_rx_lower_pri: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    vips: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    evips: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    track_ifp: Vec<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    track_script: Vec<String>,
    auth_type: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    auth_data: Option<String>,
}

#[derive(Serialize)]
struct JsonInstance<'a> {
    data: JsonData<'a>,
    stats: Stats,
}

/// Renders `keepalived.json`: an array with one `{"data": ..., "stats": ...}` per instance.
pub fn json(snap: &Snapshot, config: &Config) -> String {
    let cfgs = by_name(config);
    let list: Vec<JsonInstance<'_>> = snap
        .instances
        .iter()
        .map(|i| {
            let cfg = cfgs.get(i.name.as_str()).copied();
            let (vips, excluded) = vip_lists(i, cfg);
            let set = vips_set(i);
            let tr = tracks(i, cfg, config);
            let (auth_type, auth_data) = match i.auth {
                VrrpAuth::Simple(pass) => {
                    let end = pass.iter().position(|&b| b == 0).unwrap_or(pass.len());
                    (1, Some(String::from_utf8_lossy(&pass[..end]).into_owned()))
                }
                // keepalived's JSON dump writes the AH key as it does a password.
                VrrpAuth::Ah(pass) => {
                    let end = pass.iter().position(|&b| b == 0).unwrap_or(pass.len());
                    (2, Some(String::from_utf8_lossy(&pass[..end]).into_owned()))
                }
                VrrpAuth::None => (0, None),
            };
            let (sec, us) = epoch(i.since);
            let notify = cfg.map(|c| &c.notify);
            let script = |f: fn(&Notify) -> &Option<Script>| notify.and_then(|n| f(n).as_ref()).map(cmd_str);
            let data = JsonData {
                iname: &i.name,
                dont_track_primary: u8::from(cfg.is_some_and(|c| c.dont_track_primary)),
                skip_check_adv_addr: u8::from(!i.check_adv_addr),
                strict_mode: u8::from(config.global.vrrp_strict),
                vmac_ifname: i.vmac.as_ref().map_or("", |(n, _)| n.as_str()),
                ifp_ifname: i.vmac.as_ref().map_or(i.ifname.as_str(), |(n, _)| n.as_str()),
                master_priority: 0,
                last_transition: sec as f64 + f64::from(us) / 1e6,
                garp_delay: Secs(i.garp.master_delay.total_micros() as f64 / 1e6),
                garp_refresh: secs(i.garp.master_refresh),
                garp_rep: i.garp.master_repeat,
                garp_refresh_rep: i.garp.master_refresh_repeat,
                garp_lower_prio_delay: secs(i.garp.lower_prio_delay),
                garp_lower_prio_rep: i.garp.lower_prio_repeat,
                lower_prio_no_advert: u8::from(cfg.is_some_and(|c| c.lower_prio_no_advert)),
                higher_prio_send_advert: u8::from(cfg.is_some_and(|c| c.higher_prio_send_advert)),
                vrid: i.vrid,
                base_priority: i.priority,
                effective_priority: i.effective_priority,
                vipset: set,
                promote_secondaries: false,
                adver_int: Secs(i.adver_int_cs as f64 / 100.0),
                master_adver_int: Secs(i.master_adver_int_cs as f64 / 100.0),
                accept: u8::from(i.accept),
                nopreempt: !i.preempt,
                preempt_delay: i.preempt_delay_ms / 1000,
                state: state_num(i.state),
                wantstate: state_num(want(i)),
                version: if i.version == VrrpVersion::V3 { 3 } else { 2 },
                smtp_alert: cfg.is_some_and(|c| c.smtp_alert),
                notify_deleted: notify.is_some_and(|n| n.send_deleted),
                script_backup: script(|n| &n.backup),
                script_master: script(|n| &n.master),
                script_fault: script(|n| &n.fault),
                script_stop: script(|n| &n.stop),
                script_deleted: script(|n| &n.deleted),
                script: script(|n| &n.notify),
                script_master_rx_lower_pri: script(|n| &n.master_rx_lower_pri),
                vips: vips.iter().map(|v| format_vip(v, i, set)).collect(),
                evips: excluded.iter().map(|v| format_vip(v, i, set)).collect(),
                track_ifp: tr.iter().filter(|t| t.kind == "interface").map(|t| t.name).collect(),
                track_script: tr
                    .iter()
                    .filter(|t| t.kind == "script")
                    .map(|t| match config.script(t.name) {
                        Some(sc) => sc.script.as_ref().map_or_else(|| sc.policy.clone().unwrap_or_default(), cmd_str),
                        None => t.name.to_owned(),
                    })
                    .collect(),
                auth_type,
                auth_data,
            };
            JsonInstance { data, stats: Stats::of(&i.counters, i.state) }
        })
        .collect();
    let mut out = serde_json::to_string(&list).unwrap_or_else(|_| "[]".to_owned());
    out.push('\n');
    out
}


#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::time::{Duration, Instant};

    use hav_core::vrrp::{Instance, Record, Stray};
    use hav_tests::kadump::{self, diff, Node};
    use serde_json::Value;

    use super::*;
    use crate::daemon::plan::{plan, IfaceInfo, InstancePlan};

    const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/keepalived-dumps");

    /// keepalived's dumps in `tests/fixtures/keepalived-dumps/<case>/`.
    struct Captured {
        data: kadump::Dump,
        stats_text: String,
        stats: kadump::Dump,
        json: Value,
    }

    fn captured(case: &str) -> Captured {
        let read = |f: &str| std::fs::read_to_string(format!("{DIR}/{case}/{f}")).expect("fixture");
        let stats_text = read("keepalived.stats");
        Captured {
            data: kadump::parse(&read("keepalived.data")),
            stats: kadump::parse(&stats_text),
            stats_text,
            json: serde_json::from_str(&read("keepalived.json")).expect("keepalived's JSON"),
        }
    }

    fn config(file: &str, prio: &str) -> Config {
        let text = std::fs::read_to_string(format!("{DIR}/{file}")).expect("fixture config").replace("PRIO", prio);
        crate::config::load_str(Path::new(file), &text).expect("config").config
    }

    /// `config` planned on node `node` of capture.sh's lab (eth0 with 10.0.0.N and the
    /// link-local address of 02:00:00:00:00:0N), captured as the loop would.
    fn snapshot(config: &Config, node: u8) -> Snapshot {
        let mut lookup = |name: &str| -> Option<IfaceInfo> {
            let (index, mac, addrs) = match name {
                "eth0" => (
                    2,
                    [2, 0, 0, 0, 0, node],
                    vec![format!("10.0.0.{node}").parse().ok()?, format!("fe80::ff:fe00:{node}").parse().ok()?],
                ),
                "lo" => (1, [0; 6], vec!["127.0.0.1".parse().ok()?]),
                _ => return None,
            };
            Some(IfaceInfo { index, name: name.to_owned(), mac, up: true, addrs })
        };
        let records: Vec<Record<InstancePlan>> = plan(config, &mut lookup, &mut Vec::new())
            .expect("plan")
            .into_iter()
            .map(|p| Record::new(p.meta, p.key, Instance::new(p.core)))
            .collect();
        let groups: Vec<_> = config
            .vrrp_sync_groups
            .iter()
            .map(|g| (g.name.clone(), g.group.iter().map(|(n, _)| n.clone()).collect(), None))
            .collect();
        Snapshot::capture(&records, &groups, Stray::default(), (0, 0), (SystemTime::now(), Instant::now()))
    }

    fn at(epoch: &str) -> SystemTime {
        let t = epoch.split_whitespace().next().expect("time");
        let (s, us) = t.split_once('.').expect("SECS.USECS");
        UNIX_EPOCH + Duration::from_secs(s.parse().expect("secs")) + Duration::from_micros(us.parse().expect("usecs"))
    }

    /// Gives the instance the run-time state keepalived's dump shows (hav's own run would have
    /// its own times and counts): state, times, master, counters, priority.
    fn run_like(i: &mut InstanceView, kd: &Node, st: &Node) {
        i.state = match kd.get("State") {
            Some("MASTER") => State::Master,
            Some("BACKUP") => State::Backup,
            Some("FAULT") => State::Fault,
            _ => State::Initialize,
        };
        i.hold = if i.state == State::Master { VipHold::Held } else { VipHold::Released };
        i.since = kd.get("Last transition").map(at);
        i.deadline = kd.get("Read timeout").filter(|t| *t != "DISABLED").map(at);
        // keepalived's stale address buffer (the multicast group) stands for an unknown master.
        i.master_addr = kd.get("Master router").and_then(|a| a.parse::<IpAddr>().ok()).filter(|a| !a.is_multicast());
        if i.state == State::Master {
            i.master_addr = Some(i.primary_addr);
        }
        if let Some(ms) = kd.get("Master advert interval") {
            i.master_adver_int_cs = ms.trim_end_matches(" milli-sec").parse::<u64>().expect("ms") / 10;
        }
        i.effective_priority = kd.get("Effective priority").and_then(|p| p.parse().ok()).expect("priority");
        i.master_down_us = kd.get("Master down timer").and_then(|t| t.trim_end_matches(" usecs").parse().ok()).expect("timer");
        let n = |p: &str| st.get(p).and_then(|v| v.parse::<u64>().ok()).expect("counter");
        i.counters.adverts_rx = n("Advertisements/Received");
        i.counters.adverts_tx = n("Advertisements/Sent");
        i.counters.became_master = n("Became master");
        i.counters.prio_zero_rx = n("Priority Zero/Received");
        i.counters.prio_zero_tx = n("Priority Zero/Sent");
    }


    /// Compares hav's dumps of `snap` with keepalived's, instance by instance; `ignore` names
    /// the instance lines known to differ (each with the reason in the module documentation).
    fn compare(k: &Captured, snap: &Snapshot, config: &Config, ignore: &[&str], json_ignore: &[&str]) {
        let hav = kadump::parse(&data(snap, config));
        let mut problems = Vec::new();
        // The sections, in keepalived's order, without the socket pool.
        let titles: Vec<&str> = k.data.titles().into_iter().filter(|t| *t != "VRRP Sockpool").collect();
        assert_eq!(hav.titles(), titles);
        let g = |d: &kadump::Dump| d.section("Global definitions").expect("globals").as_node();
        problems.extend(diff(&g(&k.data), &g(&hav), ("keepalived", "hav"), &["nftables", "libnftnl"]));
        let mut ignore_all = vec!["fd_in", "No sockets allocated"];
        ignore_all.extend_from_slice(ignore);
        for i in &snap.instances {
            let (kd, hd) = (k.data.instance(&i.name).expect("keepalived instance"), hav.instance(&i.name).expect("hav instance"));
            problems.extend(diff(kd, hd, ("keepalived", "hav"), &ignore_all).into_iter().map(|p| format!("{}: {p}", i.name)));
        }
        for (title, key) in [("VRRP Sync groups", "VRRP Sync Group"), ("VRRP Scripts", "VRRP Script"), ("VRRP Track files", "Track file")] {
            let (Some(ks), Some(hs)) = (k.data.section(title), hav.section(title)) else { continue };
            for r in ks.entries.iter().filter(|e| e.key == key) {
                let h = hs.record(key, &r.value).unwrap_or_else(|| panic!("hav has no {key} = {}", r.value));
                problems.extend(diff(r, h, ("keepalived", "hav"), &["Command"]).into_iter().map(|p| format!("{}: {p}", r.value)));
            }
        }
        let ks = k.data.section("Interfaces").expect("keepalived interfaces");
        let hs = hav.section("Interfaces").expect("hav interfaces");
        for h in &hs.entries {
            let kr = ks.record("Name", &h.value).unwrap_or_else(|| panic!("keepalived has no interface {}", h.value));
            let mut ign = kadump::IF_ONLY_KEEPALIVED.to_vec();
            if !snap.instances.iter().any(|i| i.ifname == h.value) {
                // Only tracked: hav knows whether it runs, not its flags or addresses.
                ign.extend(["index", "IPv4 address", "IPv6 address", "MAC", "State"]);
            }
            problems.extend(diff(kr, h, ("keepalived", "hav"), &ign).into_iter().map(|p| format!("{}: {p}", h.value)));
        }
        assert_eq!(stats(snap), k.stats_text, "keepalived.stats");
        let hj: Value = serde_json::from_str(&json(snap, config)).expect("hav's JSON");
        let (ka, ha) = (k.json.as_array().expect("array"), hj.as_array().expect("array"));
        assert_eq!(ka.len(), ha.len());
        for (kx, hx) in ka.iter().zip(ha) {
            let name = kx["data"]["iname"].as_str().expect("iname");
            assert_eq!(kx["stats"], hx["stats"], "{name}: JSON stats");
            let (kd, hd) = (kx["data"].as_object().expect("data"), hx["data"].as_object().expect("data"));
            let keys = |o: &serde_json::Map<String, Value>| o.keys().cloned().collect::<BTreeSet<_>>();
            assert_eq!(keys(kd), keys(hd), "{name}: JSON data fields");
            for (f, kv) in kd {
                let hv = &hd[f];
                let same = match (kv.as_f64(), hv.as_f64()) {
                    _ if json_ignore.contains(&f.as_str()) => true,
                    (Some(a), Some(b)) if f == "last_transition" => (a - b).abs() < 1e-5,
                    _ => kv == hv,
                };
                if !same {
                    problems.push(format!("{name}: JSON {f}: keepalived {kv}, hav {hv}"));
                }
            }
        }
        assert!(problems.is_empty(), "hav's dumps differ from keepalived's:\n{}", problems.join("\n"));
    }

    #[test]
    fn test_simple_master_as_keepalived() {
        let k = captured("simple/master");
        let config = config("simple.conf", "150");
        let mut snap = snapshot(&config, 1);
        assert_eq!(snap.instances[0].master_down_us, 3_414_062, "Master_Down_Interval of priority 150");
        let name = snap.instances[0].name.clone();
        run_like(&mut snap.instances[0], k.data.instance(&name).expect("VI_1"), k.stats.instance(&name).expect("VI_1"));
        compare(&k, &snap, &config, &[], &[]);
    }

    #[test]
    fn test_simple_backup_as_keepalived() {
        let k = captured("simple/backup");
        let config = config("simple.conf", "100");
        let mut snap = snapshot(&config, 2);
        let name = snap.instances[0].name.clone();
        run_like(&mut snap.instances[0], k.data.instance(&name).expect("VI_1"), k.stats.instance(&name).expect("VI_1"));
        compare(&k, &snap, &config, &["Master priority"], &["master_priority"]);
    }

    /// Three instances (tracked objects, excluded VIPs, notify scripts, VRRPv3 over IPv6, unicast,
    /// a sync group), every one BACKUP (early) and settled.
    #[test]
    fn test_rich_as_keepalived() {
        for case in ["rich/early", "rich/settled"] {
            let k = captured(case);
            let config = config("rich.conf", "");
            let mut snap = snapshot(&config, 1);
            for i in &mut snap.instances {
                let name = i.name.clone();
                run_like(i, k.data.instance(&name).expect("instance"), k.stats.instance(&name).expect("stats"));
                if name == "VI_4" {
                    i.tracks = vec![
                        ("interface:lo".into(), -20, "Up".into()),
                        ("script:chk_ok".into(), 10, "Up".into()),
                        ("file:tf".into(), 2, "Value(0)".into()),
                    ];
                }
            }
            let states: Vec<State> = snap.instances.iter().map(|i| i.state).collect();
            snap.groups[0].2 = Some(states[1]);
            compare(
                &k,
                &snap,
                &config,
                // keepalived: a backup's master priority (hav-core does not keep it), a stale
                // buffer for an unknown master, flags it has no line for, VI_U about to follow
                // its group, resolved command paths; hav always checks a unicast source.
                &[
                    "Master priority",
                    "Master router",
                    "Flags",
                    "Wantstate",
                    "Master state transition script",
                    "Generic state transition script",
                    "Check unicast src",
                ],
                &["master_priority", "wantstate", "script", "script_master", "track_script"],
            );
        }
    }

    /// The advert options as keepalived 2.2.7 prints them for this config (its SIGUSR1 dump):
    /// the globals in the global section, an instance's own values (or the globals) in its.
    #[test]
    fn test_master_advert_options_as_keepalived() {
        let text = "global_defs {\n vrrp_lower_prio_no_advert\n vrrp_higher_prio_send_advert\n vrrp_down_timer_adverts 7\n}\n\
                    vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 50\n priority 150\n lower_prio_no_advert off\n \
                    down_timer_adverts 5\n virtual_ipaddress {\n  10.0.0.100/24\n }\n}\n";
        let config = crate::config::load_str(Path::new("k.conf"), text).expect("config").config;
        let snap = snapshot(&config, 1);
        let out = data(&snap, &config);
        for line in [
            " Num adverts before down = 7\n",
            " Send advert after receive lower priority advert = false\n",
            " Send advert after receive higher priority advert = true\n",
            "   Down timer adverts = 5\n   Send advert after receive lower priority advert = true\n   Send advert after receive higher priority advert = true\n",
        ] {
            assert!(out.contains(line), "no {line:?} in\n{out}");
        }
        // Master_Down_Interval: 5 x 1 s + (256 - 150) / 256 s.
        assert_eq!(snap.instances[0].master_down_us, 5_414_062);
    }

    /// Lines the operators' corpus showed keepalived writing from the config alone: the HELO
    /// line under an SMTP server, a script's timeout as configured (0 unset), `Flags:` alone
    /// for nopreempt and for use_vmac, no `Configured interface` for a VMAC on its own base.
    #[test]
    fn test_config_lines_as_keepalived() {
        let text = "global_defs {\n router_id R1\n smtp_server 192.0.2.25\n}\n\
                    vrrp_script s {\n script /bin/true\n interval 4\n}\n\
                    vrrp_script t {\n script /bin/true\n interval 4\n timeout 2\n}\n\
                    vrrp_instance A {\n interface eth0\n virtual_router_id 1\n priority 100\n nopreempt\n \
                    track_script {\n  s\n  t\n }\n virtual_ipaddress {\n  10.0.0.100\n }\n}\n\
                    vrrp_instance B {\n interface eth0\n virtual_router_id 2\n priority 100\n use_vmac\n \
                    virtual_ipaddress {\n  10.0.0.101\n }\n}\n\
                    vrrp_instance C {\n interface eth0\n virtual_router_id 3\n priority 100\n \
                    virtual_ipaddress {\n  10.0.0.102\n }\n}\n";
        let config = crate::config::load_str(Path::new("k.conf"), text).expect("config").config;
        let d = kadump::parse(&data(&snapshot(&config, 1), &config));
        let g = d.section("Global definitions").expect("globals");
        assert_eq!((g.get("Smtp server"), g.get("Smtp HELO name")), (Some("192.0.2.25"), Some("R1")));
        let sc = d.section("VRRP Scripts").expect("scripts");
        assert_eq!(sc.record("VRRP Script", "s").and_then(|r| r.get("Timeout")), Some("0 sec"));
        assert_eq!(sc.record("VRRP Script", "t").and_then(|r| r.get("Timeout")), Some("2 sec"));
        let flags = |n: &str| d.instance(n).and_then(|i| i.get("Flags")).map(str::to_owned);
        assert_eq!(flags("A").as_deref(), Some(""));
        assert_eq!(flags("B").as_deref(), Some(""));
        assert_eq!(flags("C").as_deref(), Some("none"));
        let b = d.instance("B").expect("B");
        assert_eq!(b.get("Interface"), Some("vrrp.2, vmac on eth0"));
        assert!(b.child("Configured interface").is_none());
    }

    #[test]
    fn test_stats_names_hav_counters() {
        let mut c = Counters { adverts_rx: 7, adverts_tx: 9, became_master: 3, prio_zero_rx: 1, prio_zero_tx: 2, ..Counters::default() };
        for (r, n) in [
            (DropReason::Malformed, 11),
            (DropReason::Interval, 12),
            (DropReason::ZeroInterval, 1),
            (DropReason::Ttl, 14),
            (DropReason::Addresses, 15),
            (DropReason::AuthType, 16),
            (DropReason::AuthPass, 17),
            (DropReason::Checksum, 100),
        ] {
            c.drops[r as usize] = n;
        }
        let s = Stats::of(&c, State::Master);
        assert_eq!(
            s,
            Stats {
                advert_rcvd: 7,
                advert_sent: 9,
                become_master: 3,
                release_master: 2,
                packet_len_err: 11,
                advert_interval_err: 13,
                ip_ttl_err: 14,
                invalid_type_rcvd: 0,
                addr_list_err: 15,
                invalid_authtype: 0,
                authtype_mismatch: 16,
                auth_failure: 17,
                pri_zero_rcvd: 1,
                pri_zero_sent: 2,
            }
        );
        assert_eq!(Stats::of(&c, State::Backup).release_master, 3);
        // AH refusals are auth failures, as keepalived counts them.
        c.drops[DropReason::AhIcv as usize] = 2;
        c.drops[DropReason::AhReplay as usize] = 1;
        assert_eq!(Stats::of(&c, State::Master).auth_failure, 20);
    }

    #[test]
    fn test_time_line_is_ctime_in_utc() {
        let t = UNIX_EPOCH + Duration::from_micros(1_796_617_098_206_370);
        assert_eq!(time_line(Some(t)), "1796617098.206370 (Mon Dec  7 04:18:18.206370 2026)");
        assert_eq!(time_line(None), "0.000000 (Thu Jan  1 00:00:00.000000 1970)");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert!(time_line(Some(leap)).contains("Tue Feb 29 00:00:00.000000 2000"), "{}", time_line(Some(leap)));
    }

    #[test]
    fn test_g_is_printf_g() {
        for (x, s) in [(2.0, "2"), (0.5, "0.5"), (1.25, "1.25"), (0.001, "0.001"), (123.456789, "123.457"), (0.0, "0")] {
            assert_eq!(g(x), s, "{x}");
        }
    }

    #[test]
    fn test_dir_follows_tmpdir() {
        assert_eq!(dir_from(Some("/run/x".as_ref())), PathBuf::from("/run/x"));
        assert_eq!(dir_from(Some("relative".as_ref())), PathBuf::from("/tmp"));
        assert_eq!(dir_from(None), PathBuf::from("/tmp"));
    }

    #[test]
    fn test_write_replaces_atomically_with_mode_0600() {
        use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
        let dir = std::env::temp_dir().join(format!("hav-dump-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let p = write(Kind::Stats, &dir, "one\n").expect("write");
        assert_eq!(p, dir.join("keepalived.stats"));
        // A reader holding the old file keeps reading the old text: the new one is a new inode.
        let ino = std::fs::metadata(&p).expect("meta").ino();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        write(Kind::Stats, &dir, "two\n").expect("write");
        let meta = std::fs::metadata(&p).expect("meta");
        assert_ne!(meta.ino(), ino);
        assert_eq!(meta.mode() & 0o777, 0o600);
        assert_eq!(std::fs::read_to_string(&p).expect("read"), "two\n");
        // Nothing else is left in the directory.
        let names: Vec<_> = std::fs::read_dir(&dir).expect("ls").map(|e| e.expect("entry").file_name()).collect();
        assert_eq!(names, [std::ffi::OsString::from("keepalived.stats")]);
        // A link planted at the name is replaced, not followed.
        let target = dir.join("target");
        std::fs::write(&target, "keep\n").expect("target");
        let _ = std::fs::remove_file(&p);
        std::os::unix::fs::symlink(&target, &p).expect("symlink");
        write(Kind::Stats, &dir, "three\n").expect("write");
        assert_eq!(std::fs::read_to_string(&target).expect("target"), "keep\n");
        assert!(!std::fs::symlink_metadata(&p).expect("meta").file_type().is_symlink());
        assert!(write(Kind::Data, &dir.join("missing"), "x").is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
