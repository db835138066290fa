//! Accept mode off (`no_accept`, `vrrp_strict`): nftables rules that drop traffic to and from
//! the VIPs a master holds, in the tables keepalived uses, so that rule sets and monitoring
//! written for keepalived's tables find them where they look.
//!
//! The layout, as Debian's keepalived 2.2 leaves it (`nft list ruleset`), with the table name of
//! `nftables NAME` (default `keepalived`) and the hook priority of `nftables_priority` (default
//! -1, just before the usual filter chains):
//!
//! - `table ip keepalived`: set `vips` (ipv4_addr); chains `out` (hook output: `ip saddr @vips
//!   drop`) and `in` (hook input: `ip daddr @vips drop`).
//! - `table ip6 keepalived`: sets `vips` (ipv6_addr), `neighbor-discovery` (the solicitations
//!   and advertisements, accepted first so that neighbour discovery of the VIPs works) and
//!   `vips_link_local` (ipv6_addr . iface_index: a link-local VIP is one per interface); chains
//!   `out` and `in` that accept neighbour discovery, send link-local traffic to
//!   `out_link_local` / `in_link_local` and drop the rest for `@vips`.
//!
//! `nftables_counters` adds a counter to each drop rule. A family's table exists while a VIP of
//! that family is to be dropped; all are removed when the daemon stops, and leftovers of a
//! daemon that did not stop cleanly are removed at start.
//!
//! The rules are loaded with `nft -f -` (Debian's nftables package), each change as one
//! transaction that replaces the table whole, so a failure leaves the previous rules, never a
//! half-built table. This runs on a thread of its own: the VRRP loop hands over the set it
//! wants and carries on; a burst of changes (a thousand instances becoming master) is one
//! `nft` run.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::io::Write as _;
use std::net::{IpAddr, Ipv6Addr};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// keepalived's default table name.
pub const DEFAULT_TABLE: &str = "keepalived";
/// keepalived's default hook priority (`filter - 1`).
pub const DEFAULT_PRIORITY: i32 = -1;

/// `global_defs` settings of the rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// `nftables NAME`.
    pub table: String,
    /// `nftables_priority`.
    pub priority: i32,
    /// `nftables_counters`.
    pub counters: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings { table: DEFAULT_TABLE.to_owned(), priority: DEFAULT_PRIORITY, counters: false }
    }
}

/// The addresses to drop: global ones, and link-local IPv6 ones with their interface.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Drops {
    /// IPv4 and global IPv6 VIPs.
    pub addrs: BTreeSet<IpAddr>,
    /// Link-local IPv6 VIPs, each with its interface name.
    pub link_local: BTreeSet<(Ipv6Addr, String)>,
}

impl Drops {
    /// Adds one VIP held on `dev`.
    pub fn add(&mut self, addr: IpAddr, dev: &str) {
        match addr {
            IpAddr::V6(a) if a.is_unicast_link_local() => {
                self.link_local.insert((a, dev.to_owned()));
            }
            a => {
                self.addrs.insert(a);
            }
        }
    }

    fn has_v4(&self) -> bool {
        self.addrs.iter().any(IpAddr::is_ipv4)
    }

    fn has_v6(&self) -> bool {
        self.addrs.iter().any(IpAddr::is_ipv6) || !self.link_local.is_empty()
    }
}

/// The `nft -f` script that makes the tables say `drops`: each family's table replaced whole,
/// or removed when it has nothing to drop.
pub fn script(s: &Settings, drops: &Drops) -> String {
    let t = &s.table;
    let p = s.priority;
    let drop = if s.counters { "counter drop" } else { "drop" };
    let mut out = String::new();
    // "add table" is a no-op when it exists: the delete that follows then never fails.
    for fam in ["ip", "ip6"] {
        let _ = writeln!(out, "table {fam} {t} {{}}\ndelete table {fam} {t}");
    }
    if drops.has_v4() {
        let elems = join(drops.addrs.iter().filter(|a| a.is_ipv4()).map(ToString::to_string));
        let _ = write!(
            out,
            "table ip {t} {{\n\tset vips {{\n\t\ttype ipv4_addr\n\t\telements = {{ {elems} }}\n\t}}\n\
             \tchain out {{\n\t\ttype filter hook output priority {p}; policy accept;\n\t\tip saddr @vips {drop}\n\t}}\n\
             \tchain in {{\n\t\ttype filter hook input priority {p}; policy accept;\n\t\tip daddr @vips {drop}\n\t}}\n}}\n"
        );
    }
    if drops.has_v6() {
        let _ = write!(out, "table ip6 {t} {{\n\tset vips {{\n\t\ttype ipv6_addr\n");
        let globals: Vec<String> = drops.addrs.iter().filter(|a| a.is_ipv6()).map(ToString::to_string).collect();
        if !globals.is_empty() {
            let _ = writeln!(out, "\t\telements = {{ {} }}", globals.join(", "));
        }
        let _ = write!(
            out,
            "\t}}\n\tset neighbor-discovery {{\n\t\ttype icmpv6_type\n\t\tflags constant\n\
             \t\telements = {{ nd-neighbor-solicit, nd-neighbor-advert }}\n\t}}\n\
             \tset vips_link_local {{\n\t\ttype ipv6_addr . iface_index\n"
        );
        if !drops.link_local.is_empty() {
            let ll = join(drops.link_local.iter().map(|(a, dev)| format!("{a} . \"{dev}\"")));
            let _ = writeln!(out, "\t\telements = {{ {ll} }}");
        }
        let _ = write!(
            out,
            "\t}}\n\
             \tchain out {{\n\t\ttype filter hook output priority {p}; policy accept;\n\t\ticmpv6 type @neighbor-discovery accept\n\
             \t\tip6 saddr fe80::/10 goto out_link_local\n\t\tip6 saddr @vips {drop}\n\t}}\n\
             \tchain in {{\n\t\ttype filter hook input priority {p}; policy accept;\n\t\ticmpv6 type @neighbor-discovery accept\n\
             \t\tip6 daddr fe80::/10 goto in_link_local\n\t\tip6 daddr @vips {drop}\n\t}}\n\
             \tchain in_link_local {{\n\t\tip6 daddr . iif @vips_link_local {drop}\n\t}}\n\
             \tchain out_link_local {{\n\t\tip6 saddr . oif @vips_link_local {drop}\n\t}}\n}}\n"
        );
    }
    out
}

fn join(it: impl Iterator<Item = String>) -> String {
    it.collect::<Vec<_>>().join(", ")
}

/// Runs `nft -f -` with `script`; `Err` has what nft said.
pub fn load(script: &str) -> Result<(), String> {
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("nft: {e} (is Debian's nftables package installed?)"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(script.as_bytes()).map_err(|e| format!("nft: writing the rules: {e}"))?;
    }
    let out = child.wait_with_output().map_err(|e| format!("nft: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("nft -f: {}", String::from_utf8_lossy(&out.stderr).trim()))
    }
}

enum Msg {
    Set(Drops),
    Stop(mpsc::Sender<()>),
}

/// The thread that keeps the tables in step with what the VRRP loop asks.
pub struct Firewall {
    settings: Settings,
    tx: mpsc::Sender<Msg>,
    last: Drops,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Firewall {
    /// Starts the thread; it first removes the tables a previous daemon may have left.
    pub fn start(settings: Settings) -> Firewall {
        let (tx, rx) = mpsc::channel::<Msg>();
        let s = settings.clone();
        let thread = std::thread::Builder::new()
            .name("hav-nft".into())
            .spawn(move || worker(&s, &rx))
            .map_err(|e| tracing::error!(error = %e, "nftables thread not started: accept mode off is not enforced"))
            .ok();
        Firewall { settings, tx, last: Drops::default(), thread }
    }

    /// The table settings it runs with.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Asks for exactly `drops`; nothing happens when it is what was asked last.
    pub fn set(&mut self, drops: Drops) {
        if drops != self.last {
            self.last = drops.clone();
            let _ = self.tx.send(Msg::Set(drops));
        }
    }

    /// Removes the tables and ends the thread (waits a few seconds at most).
    pub fn stop(mut self) {
        let (done_tx, done_rx) = mpsc::channel();
        if self.tx.send(Msg::Stop(done_tx)).is_ok() {
            let _ = done_rx.recv_timeout(Duration::from_secs(5));
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn worker(settings: &Settings, rx: &mpsc::Receiver<Msg>) {
    let apply = |drops: &Drops| match load(&script(settings, drops)) {
        Ok(()) => tracing::debug!(table = %settings.table, addrs = drops.addrs.len() + drops.link_local.len(), "nftables drop rules loaded"),
        Err(e) => tracing::error!(table = %settings.table, "accept mode off: {e}"),
    };
    apply(&Drops::default());
    while let Ok(msg) = rx.recv() {
        // Only the newest of a burst matters.
        let mut msg = msg;
        while let Ok(next) = rx.try_recv() {
            if matches!(msg, Msg::Stop(_)) {
                break;
            }
            msg = next;
        }
        match msg {
            Msg::Set(d) => apply(&d),
            Msg::Stop(done) => {
                apply(&Drops::default());
                let _ = done.send(());
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_removes_both_tables() {
        let s = script(&Settings::default(), &Drops::default());
        assert_eq!(s, "table ip keepalived {}\ndelete table ip keepalived\ntable ip6 keepalived {}\ndelete table ip6 keepalived\n");
    }

    #[test]
    fn families_and_link_local() {
        let mut d = Drops::default();
        d.add("10.0.0.1".parse().expect("ip"), "eth0");
        d.add("fe80::1".parse().expect("ip"), "eth0");
        let s = script(&Settings { table: "ka".into(), priority: -5, counters: true }, &d);
        assert!(s.contains("table ip ka {\n\tset vips {\n\t\ttype ipv4_addr\n\t\telements = { 10.0.0.1 }"), "{s}");
        assert!(s.contains("priority -5; policy accept;\n\t\tip daddr @vips counter drop"), "{s}");
        // No global IPv6 VIP: the set has no elements line (nft refuses an empty one).
        assert!(s.contains("type ipv6_addr\n\t}"), "{s}");
        assert!(s.contains("elements = { fe80::1 . \"eth0\" }"), "{s}");
    }
}
