//! A network-namespace lab for end-to-end tests.
//!
//! Every object removes what it created when dropped, also when a test
//! panics: [`Netns`] deletes its namespace (which takes its interfaces with
//! it) and kills the processes it spawned, [`Veth`] deletes its pair,
//! [`Bridge`] deletes the namespace that holds the bridge. The bridge lives
//! in a namespace of its own, so a lab never touches the host's namespace.
//!
//! Names come from [`unique`]: `hvt` + pid + a counter, so parallel tests and
//! parallel test binaries don't collide. Interface names inside a namespace
//! are free (`eth0` in every router).
//!
//! Tests call [`skip_unless`] first with what they need ([`Need::Root`],
//! [`Need::Keepalived`]...): when something is missing they print why and
//! pass, except under `CI=true`, where a skipped lab test would hide a
//! broken CI machine, so they fail with the reason instead.
//!
//! ```no_run
//! use hav_tests::netns::{skip_unless, veth, Need, Netns};
//! if skip_unless("example", &[Need::Root]) { return; }
//! let a = Netns::new(&hav_tests::netns::unique("a")).unwrap();
//! let b = Netns::new(&hav_tests::netns::unique("b")).unwrap();
//! let _link = veth(&a, "eth0", &b, "eth0").unwrap();
//! a.add_addr("eth0", "10.0.0.1/24").unwrap();
//! let index = a.enter(|| std::fs::read_to_string("/sys/class/net/lo/ifindex"));
//! ```

use std::fs::File;
use std::io;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;

use nix::sched::CloneFlags;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// Whether the test runs as root (network namespaces need it).
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Something a lab test needs from the machine it runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Root (euid 0): network namespaces, raw sockets, switching users.
    Root,
    /// Debian's keepalived on the PATH (the reference peer).
    Keepalived,
    /// tcpdump on the PATH (captures on the wire).
    Tcpdump,
    /// A kernel without IPVS (`/proc/net/ip_vs` absent), for tests of how hav runs without it.
    NoIpvs,
    /// Debian's prometheus and promtool on the PATH (scrapes hav's metrics).
    Prometheus,
    /// Debian's qemu-system-arm on the PATH (boots the MPS2-AN386 firmware).
    Qemu,
}

impl Need {
    /// Why a test that needs this cannot run here, or `None` when the machine has it.
    pub fn unmet(self) -> Option<&'static str> {
        let runs = |cmd: &str, arg: &str| {
            Command::new(cmd).arg(arg).stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok()
        };
        let met = match self {
            Need::Root => is_root(),
            Need::Keepalived => runs("keepalived", "--version"),
            Need::Tcpdump => runs("tcpdump", "--version"),
            Need::NoIpvs => !Path::new("/proc/net/ip_vs").exists(),
            Need::Prometheus => runs("prometheus", "--version") && runs("promtool", "--version"),
            Need::Qemu => runs("qemu-system-arm", "--version"),
        };
        (!met).then_some(match self {
            Need::Root => "needs root (euid 0)",
            Need::Keepalived => "needs keepalived on the PATH",
            Need::Tcpdump => "needs tcpdump on the PATH",
            Need::NoIpvs => "needs a kernel without IPVS (/proc/net/ip_vs exists)",
            Need::Prometheus => "needs prometheus and promtool on the PATH",
            Need::Qemu => "needs qemu-system-arm on the PATH",
        })
    }
}

/// What to do with a test, given what it misses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipDecision {
    /// Nothing is missing.
    Run,
    /// Something is missing: print the reason and pass.
    Skip(String),
    /// Something is missing under CI: fail with the reason.
    Fail(String),
}

/// Whether the `CI` variable's value asks for strict runs (`true` or `1`, as CI services set it).
pub fn ci_strict(ci: Option<&str>) -> bool {
    ci.is_some_and(|v| v.trim().eq_ignore_ascii_case("true") || v.trim() == "1")
}

/// The decision for `test`, which misses `unmet` (reasons), with `CI` set to `ci`.
pub fn skip_decision(test: &str, unmet: &[&str], ci: Option<&str>) -> SkipDecision {
    if unmet.is_empty() {
        return SkipDecision::Run;
    }
    let reason = format!("{test}: {}", unmet.join(", "));
    if ci_strict(ci) {
        SkipDecision::Fail(format!("{reason} (CI=true: a lab test may not be skipped)"))
    } else {
        SkipDecision::Skip(reason)
    }
}

/// Returns true, after printing why, when `test` must be skipped because the machine lacks
/// one of `needs`.
///
/// # Panics
/// Instead of skipping, when the environment has `CI=true` (or `CI=1`): a CI run must not pass
/// a test it did not run.
pub fn skip_unless(test: &str, needs: &[Need]) -> bool {
    let unmet: Vec<&str> = needs.iter().filter_map(|n| n.unmet()).collect();
    let ci = std::env::var("CI").ok();
    match skip_decision(test, &unmet, ci.as_deref()) {
        SkipDecision::Run => false,
        SkipDecision::Skip(reason) => {
            eprintln!("SKIPPED {reason}");
            true
        }
        SkipDecision::Fail(reason) => panic!("{reason}"),
    }
}

/// [`skip_unless`] with [`Need::Root`].
///
/// # Panics
/// As [`skip_unless`], under `CI=true` without root.
pub fn skip_unless_root(test: &str) -> bool {
    skip_unless(test, &[Need::Root])
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A name unique to this process and call: `hvt<pid><n><tag>`, at most 15
/// bytes so it also fits an interface name (the tag is cut to fit).
pub fn unique(tag: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut name = format!("hvt{}x{}", std::process::id(), n);
    let room = 15usize.saturating_sub(name.len());
    name.extend(tag.chars().filter(char::is_ascii_alphanumeric).take(room));
    name
}

fn check(what: &str, out: Output) -> io::Result<String> {
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(io::Error::other(format!(
            "{what} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// Runs `ip ARGS` in the host namespace and returns its stdout, or an error
/// with its stderr.
pub fn ip(args: &[&str]) -> io::Result<String> {
    let out = Command::new("ip").args(args).output()?;
    check(&format!("ip {}", args.join(" ")), out)
}

/// A named network namespace (`ip netns add`), deleted on drop.
#[derive(Debug)]
pub struct Netns {
    name: String,
    children: Mutex<Vec<Child>>,
}

impl Netns {
    /// Creates namespace `name` and brings its `lo` up.
    pub fn new(name: &str) -> io::Result<Netns> {
        ip(&["netns", "add", name])?;
        // From here on, drop cleans up.
        let ns = Netns {
            name: name.to_owned(),
            children: Mutex::new(Vec::new()),
        };
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `cmd ARGS` inside the namespace and returns its output whatever
    /// the exit status.
    pub fn run(&self, cmd: &str, args: &[&str]) -> io::Result<Output> {
        Command::new("ip")
            .args(["netns", "exec", &self.name, cmd])
            .args(args)
            .stdin(Stdio::null())
            .output()
    }

    /// Runs `cmd ARGS` inside the namespace; its stdout, or an error with its
    /// stderr when it exits non-zero.
    pub fn ok(&self, cmd: &str, args: &[&str]) -> io::Result<String> {
        let out = self.run(cmd, args)?;
        check(&format!("[{}] {cmd} {}", self.name, args.join(" ")), out)
    }

    /// Runs `ip -n NS ARGS`; its stdout or an error with its stderr.
    pub fn ip(&self, args: &[&str]) -> io::Result<String> {
        let out = Command::new("ip")
            .args(["-n", &self.name])
            .args(args)
            .output()?;
        check(&format!("ip -n {} {}", self.name, args.join(" ")), out)
    }

    /// Starts `cmd ARGS` inside the namespace with stdout and stderr
    /// appended to `log`, and returns its pid. The process is killed when
    /// the namespace is dropped, or earlier with [`Netns::stop`].
    pub fn spawn(&self, cmd: &str, args: &[&str], log: &Path) -> io::Result<u32> {
        let out = File::options().create(true).append(true).open(log)?;
        let err = out.try_clone()?;
        let child = Command::new("ip")
            .args(["netns", "exec", &self.name, cmd])
            .args(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()?;
        let pid = child.id();
        self.lock_children().push(child);
        Ok(pid)
    }

    /// Sends `signal` to a process started with [`Netns::spawn`].
    pub fn signal(&self, pid: u32, signal: Signal) -> io::Result<()> {
        let pid = i32::try_from(pid).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        kill(Pid::from_raw(pid), signal).map_err(io::Error::from)
    }

    /// Kills (SIGKILL) and reaps a process started with [`Netns::spawn`];
    /// `None` when it is not one of ours.
    pub fn stop(&self, pid: u32) -> io::Result<Option<ExitStatus>> {
        let mut children = self.lock_children();
        let Some(pos) = children.iter().position(|c| c.id() == pid) else {
            return Ok(None);
        };
        let mut child = children.swap_remove(pos);
        drop(children);
        // Already exited is fine.
        let _ = child.kill();
        child.wait().map(Some)
    }

    fn lock_children(&self) -> std::sync::MutexGuard<'_, Vec<Child>> {
        self.children.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` on a new thread that has joined this namespace (setns
    /// CLONE_NEWNET), so sockets, netlink and /proc/sys/net opened by `f`
    /// belong to the namespace. `f` may build its own tokio runtime.
    ///
    /// A panic in `f` is propagated to the caller.
    pub fn try_enter<F, R>(&self, f: F) -> io::Result<R>
    where
        F: FnOnce() -> R + Send,
        R: Send,
    {
        let file = File::open(Path::new("/run/netns").join(&self.name))?;
        std::thread::scope(|s| {
            let handle = s.spawn(move || -> io::Result<R> {
                nix::sched::setns(&file, CloneFlags::CLONE_NEWNET).map_err(io::Error::from)?;
                drop(file);
                Ok(f())
            });
            match handle.join() {
                Ok(r) => r,
                Err(panic) => std::panic::resume_unwind(panic),
            }
        })
    }

    /// [`Netns::try_enter`] for tests.
    ///
    /// # Panics
    /// When the namespace cannot be entered, and when `f` panics.
    pub fn enter<F, R>(&self, f: F) -> R
    where
        F: FnOnce() -> R + Send,
        R: Send,
    {
        match self.try_enter(f) {
            Ok(r) => r,
            Err(e) => panic!("cannot enter network namespace {}: {e}", self.name),
        }
    }

    /// `ip addr add CIDR dev IFNAME`, plus `nodad` for IPv6.
    pub fn add_addr(&self, ifname: &str, cidr: &str) -> io::Result<()> {
        let mut args = vec!["addr", "add", cidr, "dev", ifname];
        if cidr.contains(':') {
            args.push("nodad");
        }
        self.ip(&args).map(drop)
    }

    /// `ip link set IFNAME up`.
    pub fn link_up(&self, ifname: &str) -> io::Result<()> {
        self.ip(&["link", "set", ifname, "up"]).map(drop)
    }

    /// `ip link set IFNAME down`.
    pub fn link_down(&self, ifname: &str) -> io::Result<()> {
        self.ip(&["link", "set", ifname, "down"]).map(drop)
    }

    /// Sets `net.KEY` (e.g. `ipv4.conf.eth0.arp_accept`) inside the namespace.
    pub fn sysctl(&self, key: &str, value: &str) -> io::Result<()> {
        let path = Path::new("/proc/sys/net").join(key.replace('.', "/"));
        let value = format!("{value}\n");
        self.try_enter(move || std::fs::write(&path, value))?
    }

    /// The index of `ifname`.
    pub fn ifindex(&self, ifname: &str) -> io::Result<u32> {
        let out = self.ip(&["-o", "link", "show", "dev", ifname])?;
        out.split(':')
            .next()
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| io::Error::other(format!("no index in {out:?}")))
    }

    /// The hardware address of `ifname`.
    pub fn mac(&self, ifname: &str) -> io::Result<[u8; 6]> {
        let out = self.ip(&["-o", "link", "show", "dev", ifname])?;
        let text = out
            .split_whitespace()
            .skip_while(|w| *w != "link/ether")
            .nth(1)
            .ok_or_else(|| io::Error::other(format!("no link/ether in {out:?}")))?;
        parse_mac(text).ok_or_else(|| io::Error::other(format!("bad MAC {text:?}")))
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let children = std::mem::take(&mut *self.lock_children());
        for mut child in children {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Err(e) = ip(&["netns", "del", &self.name]) {
            eprintln!("netns cleanup: {e}");
        }
    }
}

/// Parses `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = s.split(':');
    for b in &mut mac {
        *b = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

/// A veth pair; deleting one end deletes both.
#[derive(Debug)]
pub struct Veth {
    ns: String,
    ifname: String,
}

impl Drop for Veth {
    fn drop(&mut self) {
        // Gone already when its namespace was deleted first: ignore.
        let _ = ip(&["-n", &self.ns, "link", "del", &self.ifname]);
    }
}

/// Creates a veth pair `a_if` in `a` and `b_if` in `b`, both up.
pub fn veth(a: &Netns, a_if: &str, b: &Netns, b_if: &str) -> io::Result<Veth> {
    ip(&[
        "link",
        "add",
        a_if,
        "netns",
        a.name(),
        "type",
        "veth",
        "peer",
        "name",
        b_if,
        "netns",
        b.name(),
    ])?;
    let pair = Veth {
        ns: a.name().to_owned(),
        ifname: a_if.to_owned(),
    };
    a.link_up(a_if)?;
    b.link_up(b_if)?;
    Ok(pair)
}

/// An Ethernet switch: bridge `br0` inside a namespace of its own, with
/// multicast snooping off so VRRP multicast floods like on a dumb switch.
#[derive(Debug)]
pub struct Bridge {
    ns: Netns,
    ports: AtomicU32,
}

impl Bridge {
    /// Creates the switch namespace `name` and its bridge.
    pub fn new(name: &str) -> io::Result<Bridge> {
        let ns = Netns::new(name)?;
        ns.ip(&[
            "link",
            "add",
            "br0",
            "type",
            "bridge",
            "mcast_snooping",
            "0",
        ])?;
        ns.link_up("br0")?;
        Ok(Bridge {
            ns,
            ports: AtomicU32::new(0),
        })
    }

    /// The namespace holding the bridge.
    pub fn netns(&self) -> &Netns {
        &self.ns
    }

    /// Plugs `ns` into the switch with a new interface `ifname` (up).
    pub fn attach(&self, ns: &Netns, ifname: &str) -> io::Result<Veth> {
        let port = format!("p{}", self.ports.fetch_add(1, Ordering::Relaxed));
        let link = veth(ns, ifname, &self.ns, &port)?;
        self.ns.ip(&["link", "set", &port, "master", "br0"])?;
        Ok(link)
    }
}

/// `n` router namespaces and one client namespace on one switch, each with
/// `eth0` up and addressed: router `i` has 10.0.0.(i+1)/24 and fd00::(i+1)/64,
/// the client 10.0.0.100/24 and fd00::100/64 (IPv6 without DAD).
#[derive(Debug)]
pub struct Lab {
    /// Veth pairs (dropped first).
    pub links: Vec<Veth>,
    /// The routers.
    pub routers: Vec<Netns>,
    /// The client.
    pub client: Netns,
    /// The switch.
    pub bridge: Bridge,
}

impl Lab {
    /// Interface name in every lab namespace.
    pub const IFNAME: &'static str = "eth0";

    /// Builds the lab.
    pub fn new(n: usize) -> io::Result<Lab> {
        if n > 99 {
            return Err(io::Error::other("at most 99 routers"));
        }
        let bridge = Bridge::new(&unique("sw"))?;
        let client = Netns::new(&unique("cl"))?;
        let mut lab = Lab {
            links: Vec::new(),
            routers: Vec::new(),
            client,
            bridge,
        };
        lab.links
            .push(lab.bridge.attach(&lab.client, Self::IFNAME)?);
        lab.client.add_addr(Self::IFNAME, "10.0.0.100/24")?;
        lab.client.add_addr(Self::IFNAME, "fd00::100/64")?;
        for i in 0..n {
            let r = Netns::new(&unique(&format!("r{i}")))?;
            lab.routers.push(r);
            let link = lab.plug(i)?;
            lab.links.push(link);
        }
        Ok(lab)
    }

    /// Takes router `i`'s `eth0` away: the interface is deleted, as when a NIC or VLAN goes.
    pub fn unplug(&self, i: usize) -> io::Result<()> {
        self.routers[i].ip(&["link", "del", Self::IFNAME]).map(drop)
    }

    /// Plugs router `i` into the switch with a new `eth0` (a new index and MAC) and its lab
    /// addresses. Dropping the pair unplugs it.
    pub fn plug(&self, i: usize) -> io::Result<Veth> {
        let r = &self.routers[i];
        let link = self.bridge.attach(r, Self::IFNAME)?;
        r.add_addr(Self::IFNAME, &format!("10.0.0.{}/24", i + 1))?;
        r.add_addr(Self::IFNAME, &format!("fd00::{}/64", i + 1))?;
        Ok(link)
    }

    /// Router `i`'s IPv4 address.
    pub fn router_v4(i: usize) -> std::net::Ipv4Addr {
        std::net::Ipv4Addr::new(10, 0, 0, (i + 1) as u8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_unique_fits_ifname() {
        let a = unique("averylongtag");
        let b = unique("averylongtag");
        assert_ne!(a, b);
        assert!(a.len() <= 15, "{a}");
        assert!(a.starts_with("hvt"));
    }

    #[test]
    fn test_parse_mac() {
        assert_eq!(
            parse_mac("00:00:5e:00:01:2a"),
            Some([0, 0, 0x5e, 0, 1, 0x2a])
        );
        assert_eq!(parse_mac("00:00:5e:00:01"), None);
        assert_eq!(parse_mac("00:00:5e:00:01:2a:00"), None);
        assert_eq!(parse_mac("zz:00:5e:00:01:2a"), None);
    }

    #[test]
    fn test_skip_decision() {
        assert_eq!(skip_decision("t", &[], None), SkipDecision::Run);
        assert_eq!(skip_decision("t", &[], Some("true")), SkipDecision::Run);
        assert_eq!(
            skip_decision("t", &["needs root (euid 0)"], None),
            SkipDecision::Skip("t: needs root (euid 0)".into())
        );
        for off in ["false", "0", "", "no"] {
            assert!(matches!(skip_decision("t", &["x"], Some(off)), SkipDecision::Skip(_)), "{off}");
        }
        for on in ["true", "TRUE", "1", " true\n"] {
            match skip_decision("t", &["needs root (euid 0)", "needs keepalived on the PATH"], Some(on)) {
                SkipDecision::Fail(r) => {
                    assert!(r.starts_with("t: needs root (euid 0), needs keepalived on the PATH"), "{r}");
                    assert!(r.contains("CI=true"), "{r}");
                }
                other => panic!("{on:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn test_skip_unless_runs_when_nothing_is_needed() {
        assert!(!skip_unless("t", &[]));
    }

    #[test]
    fn test_netns_lifecycle() {
        if skip_unless_root("test_netns_lifecycle") {
            return;
        }
        let name = unique("life");
        {
            let ns = Netns::new(&name).unwrap();
            let lo = ns.ip(&["-o", "link", "show", "lo"]).unwrap();
            assert!(lo.contains("UP"), "{lo}");
            // enter() really switches the thread's namespace: only lo there.
            // (/proc/net follows the process, /proc/thread-self/net the thread.)
            let inside = ns.enter(|| std::fs::read_to_string("/proc/thread-self/net/dev").unwrap());
            assert_eq!(
                inside.lines().filter(|l| l.contains(':')).count(),
                1,
                "{inside}"
            );
            let pid = ns
                .spawn(
                    "sleep",
                    &["30"],
                    &std::env::temp_dir().join(format!("{name}.log")),
                )
                .unwrap();
            assert!(ns.stop(pid).unwrap().is_some());
            ns.spawn(
                "sleep",
                &["30"],
                &std::env::temp_dir().join(format!("{name}.log")),
            )
            .unwrap();
        }
        let list = ip(&["netns", "list"]).unwrap();
        assert!(!list.split_whitespace().any(|w| w == name), "{list}");
        let _ = std::fs::remove_file(std::env::temp_dir().join(format!("{name}.log")));
    }

    #[test]
    fn test_lab_pings() {
        if skip_unless_root("test_lab_pings") {
            return;
        }
        let lab = Lab::new(2).unwrap();
        let out = lab.routers[0]
            .run("ping", &["-c", "1", "-W", "2", "10.0.0.2"])
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        let out = lab
            .client
            .run("ping", &["-c", "1", "-W", "2", "10.0.0.1"])
            .unwrap();
        assert!(out.status.success());
    }
}
