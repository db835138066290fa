//! The operators' corpus (`tests/fixtures/corpus/`) run by both daemons, field by field: every
//! file with `vrrp_instance` blocks that Debian's keepalived accepts (`keepalived -t`, or that
//! the index says keepalived runs) is started once under keepalived (`-P`: the VRRP process
//! only) and once under hav-linux, each in a network namespace of its own that has every
//! interface the file names: a veth whose other end sits in a stub namespace, with the same MAC
//! address, `10.99.N.1/24` and the link-local `fe80::N` in both runs (so interface lines can be
//! compared too), plus each instance's `unicast_src_ip` on its interface so that both daemons
//! can bind it. The files run as published: nothing is rewritten (scripts and notify commands
//! that do not exist stay so; both daemons see the same missing files).
//!
//! Each daemon gets SIGUSR1 and SIGRTMIN+2 and writes keepalived 2.2's data dump and JSON dump
//! (`keepalived.data`, `keepalived.json` in its `TMPDIR`); the data dumps are read with
//! `hav_tests::kadump` and compared section by section (global definitions, VRRP instances,
//! sync groups, VRRP scripts, interfaces) with `kadump::differences`, the JSON dumps instance by
//! instance (their `data` objects; `stats` are counters). Every difference is printed per file, with why it is expected when it
//! is: a value that depends on when the dump was taken (times, state, script results and what
//! follows from them) ([`RUNTIME`]), a line only keepalived writes ([`KEEPALIVED_ONLY`]), or a
//! deliberate difference documented in `hav_linux::daemon::dump` ([`DELIBERATE`]). Where hav
//! does not do what keepalived does and the fix lies outside the dump and the config reader, the
//! difference is listed per file ([`KNOWN`], [`CANNOT_RUN`]); an entry there that no longer shows
//! fails the test too, so that the list shrinks with the fixes. Any other difference fails.
//!
//! Five files run at once, both daemons of a file side by side; the whole corpus takes about
//! 15 s.

use std::path::PathBuf;
use std::time::Duration;

use hav_tests::corpus::{self, Entry};
use hav_tests::kadump::{self, differences, Difference, Dump, Node as Line, Section};
use hav_tests::netns::{self, skip_unless, Need, Netns};
use hav_tests::peers::{wait_until, workdir, Daemon, Node};
use serde_json::Value;

fn hav() -> Daemon {
    Daemon::Hav(PathBuf::from(env!("CARGO_BIN_EXE_hav-linux")))
}

/// How long after start a daemon is given before the dump: its scripts have run once.
const SETTLE: Duration = Duration::from_millis(1500);

/// Files run at once (each starts two daemons in four namespaces).
const PARALLEL: usize = 5;

/// An expected difference: in `section`, a path (inside a record) starting with `path`, where
/// `when` holds, and why. `path` `""` is a whole record that only keepalived writes.
struct Why {
    section: &'static str,
    path: &'static str,
    reason: &'static str,
    when: fn(&Difference) -> bool,
}

const fn why(section: &'static str, path: &'static str, reason: &'static str) -> Why {
    Why { section, path, reason, when: |_| true }
}

/// A command keepalived printed with the path it resolved its program to (`'/usr/bin/killall'
/// '-0' 'haproxy'`), hav as written (`'killall' '-0' 'haproxy'`).
fn resolved_program(d: &Difference) -> bool {
    let (Some(k), Some(h)) = (&d.a, &d.b) else { return false };
    let (Some((kp, krest)), Some((hp, hrest))) = (k.split_once("' "), h.split_once("' ")) else { return false };
    // In the JSON dump, inside a list of strings: `["'/usr/bin/killall' ...`.
    let hp = hp.trim_start_matches(['[', '"', '\'']);
    !hp.is_empty() && !hp.contains('/') && kp.ends_with(&format!("/{hp}")) && krest == hrest
}

/// An SMTP server hav prints as its name, keepalived as the address it resolved.
fn smtp_name(d: &Difference) -> bool {
    d.b.as_deref().is_some_and(|h| h.parse::<std::net::IpAddr>().is_err()) && d.a.as_deref().is_some_and(|k| k.parse::<std::net::IpAddr>().is_ok())
}

const TOPO: &str = "VRRP Topology";
const SCRIPTS: &str = "VRRP Scripts";
const IFS: &str = "Interfaces";
const GLOBAL: &str = "Global definitions";
/// The instances' `data` objects in the JSON dump.
const JSON: &str = "JSON data";

/// Values that depend on when the dump was taken: when the daemon started, which state it has
/// reached, whether its scripts have failed `fall` times yet.
const RUNTIME: &[Why] = &[
    why(TOPO, "Last transition", "a time"),
    why(TOPO, "Read timeout", "a time"),
    why(TOPO, "State", "state: neither daemon has a peer; when each leaves BACKUP depends on the dump's moment"),
    why(TOPO, "Wantstate", "state (hav: the state itself, documented in dump.rs)"),
    why(TOPO, "Master router", "state (hav writes (none) with no master heard; keepalived its stale buffer)"),
    why(TOPO, "Master priority", "state (hav-core does not keep it; documented in dump.rs)"),
    why(TOPO, "Effective priority", "follows the scripts' results so far"),
    why(TOPO, "Total priority", "follows the scripts' results so far"),
    why(TOPO, "Master down timer", "skew time from the effective priority, which follows the scripts' results"),
    why(TOPO, "Number of interface and track script faults", "follows the scripts' results so far"),
    why(SCRIPTS, "Result", "the script's results so far"),
    why(SCRIPTS, "Status", "the script's results so far"),
    why(SCRIPTS, "State", "whether the script is running at the dump's moment"),
    why(SCRIPTS, "Init state", "whether the script has run yet (hav writes keepalived's value once it has; documented in dump.rs)"),
    why(JSON, "last_transition", "a time"),
    why(JSON, "state", "state: neither daemon has a peer; when each leaves BACKUP depends on the dump's moment"),
    why(JSON, "wantstate", "state (hav: the state itself, documented in dump.rs)"),
    why(JSON, "master_priority", "state (hav-core does not keep it; documented in dump.rs)"),
    why(JSON, "effective_priority", "follows the scripts' results so far"),
    why(JSON, "total_priority", "follows the scripts' results so far"),
];

/// Lines and records only keepalived writes (documented in `hav_linux::daemon::dump`).
const KEEPALIVED_ONLY: &[Why] = &[
    why("VRRP Sockpool", "", "keepalived's per-instance sockets; hav's are per interface and family"),
    why(GLOBAL, "nftables", "hav has no nftables table of its own"),
    why(GLOBAL, "libnftnl", "hav has no nftables table of its own"),
    why(IFS, "", "keepalived lists every interface of the namespace, hav those its instances use"),
    why(IFS, "Seen up", "keepalived's interface bookkeeping"),
    why(IFS, "Delayed state change running", "keepalived's interface bookkeeping"),
    why(IFS, "Up debounce timer", "keepalived's interface bookkeeping"),
    why(IFS, "Down debounce timer", "keepalived's interface bookkeeping"),
    why(IFS, "MTU", "keepalived's interface bookkeeping"),
    why(IFS, "HW Type", "keepalived's interface bookkeeping"),
    why(IFS, "NIC netlink status update", "keepalived's interface bookkeeping"),
    why(IFS, "Reset ARP config counter", "keepalived's interface bookkeeping"),
    why(IFS, "Original arp_ignore", "keepalived's interface bookkeeping"),
    why(IFS, "Original arp_filter", "keepalived's interface bookkeeping"),
    why(IFS, "Original promote_secondaries", "keepalived's interface bookkeeping"),
    why(IFS, "Reset promote_secondaries counter", "keepalived's interface bookkeeping"),
    why(IFS, "Not IPv6 forwarding", "keepalived's interface bookkeeping"),
    why(IFS, "IPv6 forwarding", "keepalived's interface bookkeeping"),
    why(IFS, "rp_filter", "keepalived's interface bookkeeping (what it set on a VMAC's base interface)"),
    why(IFS, "Additional IPv4 addresses", "hav's interface snapshot holds the primary IPv4 address only"),
];

/// Deliberate differences, documented in `hav_linux::daemon::dump`.
const DELIBERATE: &[Why] = &[
    why(TOPO, "fd_in", "hav's sockets are per interface and family: it writes No sockets allocated"),
    why(TOPO, "No sockets allocated", "hav's sockets are per interface and family"),
    Why {
        section: SCRIPTS,
        path: "Command",
        reason: "commands print as written; keepalived prints the path it resolved the program to",
        when: resolved_program,
    },
    Why {
        section: JSON,
        path: "track_script",
        reason: "commands print as written; keepalived prints the path it resolved the program to",
        when: resolved_program,
    },
    Why { section: GLOBAL, path: "Smtp server", reason: "hav prints the name as written, keepalived the address it resolved", when: smtp_name },
    why(GLOBAL, "Smtp HELO name", "hav greets with the router ID (smtp_helo_name ignored); keepalived with smtp_helo_name, default the host name"),
];

/// Where hav does not do what keepalived does, and the fix lies outside the dump and the
/// config reader (listed per file, so that each entry must still be seen; see the report).
/// None at present: a script whose program does not exist is disabled by both daemons at
/// start (dropped from its instances and groups and from the `VRRP Scripts` section).
const KNOWN: &[(&str, &str, &str, &str)] = &[];

/// Files hav refuses to run, with the error hav stops with and why.
const CANNOT_RUN: &[(&str, &str, &str)] = &[
    (
        "031-TBC-task.conf",
        "at least one virtual address",
        "an instance without virtual_ipaddress: Debian's keepalived 2.2.7 refuses it at start too ('(VI_1) No VIP specified; at least one is required', checked by hand in a namespace), and `hav-linux -t` refuses it",
    ),
    (
        "057-aliyun-eni.conf",
        "at least one virtual address",
        "an instance without virtual_ipaddress: Debian's keepalived 2.2.7 refuses it at start too ('(VI_1) No VIP specified; at least one is required', checked by hand in a namespace), and `hav-linux -t` refuses it",
    ),
];

/// One difference found, with where.
struct Found {
    section: String,
    record: String,
    diff: Difference,
}

impl Found {
    fn say(&self) -> String {
        let d = self.diff.describe(("keepalived", "hav"));
        if self.record.is_empty() {
            format!("[{}] {d}", self.section)
        } else {
            format!("[{}] {}: {d}", self.section, self.record)
        }
    }

    /// Why this difference is expected, if it is.
    fn why(&self) -> Option<(&'static str, &'static str)> {
        let rules = [("runtime", RUNTIME), ("keepalived only", KEEPALIVED_ONLY), ("deliberate", DELIBERATE)];
        rules.into_iter().find_map(|(kind, list)| {
            list.iter()
                .find(|w| {
                    w.section == self.section
                        && (w.when)(&self.diff)
                        && if w.path.is_empty() {
                            self.diff.path.is_empty() && self.diff.b.is_none()
                        } else {
                            !self.diff.path.is_empty() && self.diff.path.starts_with(w.path)
                        }
                })
                .map(|w| (kind, w.reason))
        })
    }
}

/// The differences between keepalived's section `k` and hav's `h`: top-level lines that hold
/// others are records, matched by key and value (` VRRP Instance = VI_1`); the other lines are
/// compared as one record.
fn compare_section(title: &str, k: &Section, h: &Section) -> Vec<Found> {
    let mut out = Vec::new();
    let is_record = |n: &&Line| !n.children.is_empty();
    let leaves = |s: &Section| Line {
        key: String::new(),
        value: String::new(),
        children: s.entries.iter().filter(|n| n.children.is_empty()).cloned().collect(),
    };
    let found = |record: String, diff: Difference| Found { section: title.to_owned(), record, diff };
    out.extend(differences(&leaves(k), &leaves(h)).into_iter().map(|d| found(String::new(), d)));
    for kr in k.entries.iter().filter(is_record) {
        let label = format!("{} = {}", kr.key, kr.value);
        match h.entries.iter().filter(is_record).find(|hr| hr.key == kr.key && hr.value == kr.value) {
            Some(hr) => out.extend(differences(kr, hr).into_iter().map(|d| found(label.clone(), d))),
            None => out.push(found(label, Difference { path: String::new(), a: Some(kr.value.clone()), b: None })),
        }
    }
    for hr in h.entries.iter().filter(is_record) {
        if !k.entries.iter().filter(is_record).any(|kr| hr.key == kr.key && hr.value == kr.value) {
            out.push(found(format!("{} = {}", hr.key, hr.value), Difference { path: String::new(), a: None, b: Some(hr.value.clone()) }));
        }
    }
    out
}

/// Every difference between keepalived's data dump `k` and hav's `h`.
fn compare(k: &Dump, h: &Dump) -> Vec<Found> {
    let mut out = Vec::new();
    let mut titles: Vec<&str> = k.titles();
    titles.extend(h.titles().into_iter().filter(|t| !k.titles().contains(t)));
    for t in titles {
        match (k.section(t), h.section(t)) {
            (Some(ks), Some(hs)) => out.extend(compare_section(t, ks, hs)),
            (ks, hs) => out.push(Found {
                section: t.to_owned(),
                record: String::new(),
                diff: Difference { path: String::new(), a: ks.map(|_| "section".into()), b: hs.map(|_| "section".into()) },
            }),
        }
    }
    out
}

/// One daemon's network: namespace `ns` with the file's interfaces, their other ends in `stub`.
struct Net {
    ns: Netns,
    _stub: Netns,
}

/// A namespace with `interfaces` (veth ends named so, with fixed MACs and addresses: the same
/// for both daemons) and `unicast` source addresses on theirs.
fn net(interfaces: &[String], unicast: &[(String, String)]) -> Net {
    let ns = Netns::new(&netns::unique("cd")).expect("namespace");
    let stub = Netns::new(&netns::unique("cs")).expect("namespace");
    for (i, name) in interfaces.iter().enumerate() {
        let n = i + 1;
        let peer = format!("p{n}");
        netns::ip(&["link", "add", name, "netns", ns.name(), "type", "veth", "peer", "name", &peer, "netns", stub.name()])
            .unwrap_or_else(|e| panic!("veth {name}: {e}"));
        let mac = format!("02:00:00:00:00:{n:02x}");
        ns.ip(&["link", "set", "dev", name, "address", &mac, "addrgenmode", "none"]).expect("MAC");
        ns.link_up(name).expect("up");
        stub.link_up(&peer).expect("up");
        ns.add_addr(name, &format!("10.99.{n}.1/24")).expect("IPv4 address");
        ns.add_addr(name, &format!("fe80::{n}/64")).expect("link-local address");
    }
    for (ifname, addr) in unicast {
        ns.add_addr(ifname, &format!("{addr}/32")).unwrap_or_else(|e| panic!("unicast_src_ip {addr} on {ifname}: {e}"));
    }
    Net { ns, _stub: stub }
}

/// Runs `text` under `daemon` in `n`, asks for the data dump once the daemon is up and settled,
/// stops the daemon; the dump, or why there is none (with the daemon's log).
fn run(n: &Net, daemon: Daemon, text: &str) -> Result<Dumps, String> {
    let dir = workdir("cdd");
    let dump = run_in(n, daemon, text, &dir);
    let _ = std::fs::remove_dir_all(&dir);
    dump
}

fn run_in(n: &Net, daemon: Daemon, text: &str, dir: &std::path::Path) -> Result<Dumps, String> {
    let t = dir.to_str().expect("utf-8 path").to_owned();
    let mut node = Node::start_env(&n.ns, daemon.clone(), text, &[], &[("TMPDIR", &t)]);
    // Ready: keepalived's VRRP process wrote its pid file; hav opened its control socket.
    let ready = match daemon {
        Daemon::Keepalived => node.dir.join("v.pid"),
        Daemon::Hav(_) => node.control_path(),
    };
    let up = wait_until(Duration::from_secs(10), || ready.exists() || !node.alive());
    if up.is_none() || !node.alive() {
        return Err(format!("{daemon:?} did not start:\n{}", node.log()));
    }
    std::thread::sleep(SETTLE);
    if !node.alive() {
        return Err(format!("{daemon:?} exited:\n{}", node.log()));
    }
    let files = ["keepalived.data", "keepalived.json"];
    let asked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| kadump::request(&node, dir, &files)));
    let Ok(texts) = asked else {
        return Err(format!("{daemon:?} wrote no dump:\n{}", node.log()));
    };
    if !node.terminate() {
        return Err(format!("{daemon:?} did not stop on SIGTERM"));
    }
    let json = serde_json::from_str(&texts[1]).map_err(|e| format!("{daemon:?}: keepalived.json: {e}"))?;
    Ok(Dumps { data: kadump::parse(&texts[0]), json })
}

/// A daemon's data dump (SIGUSR1) and JSON dump (SIGRTMIN+2).
struct Dumps {
    data: Dump,
    json: Value,
}

/// The differences between the `data` objects of keepalived's JSON dump `k` and hav's `h`,
/// instance by instance (by `iname`); the `stats` objects are counters and not compared.
fn compare_json(k: &Value, h: &Value) -> Vec<Found> {
    let mut out = Vec::new();
    let data = |v: &Value| -> Vec<(String, serde_json::Map<String, Value>)> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|i| {
                let d = i["data"].as_object()?;
                Some((d.get("iname")?.as_str()?.to_owned(), d.clone()))
            })
            .collect()
    };
    let (kd, hd) = (data(k), data(h));
    let found = |record: String, path: &str, a: Option<&Value>, b: Option<&Value>| Found {
        section: JSON.to_owned(),
        record,
        diff: Difference { path: path.to_owned(), a: a.map(Value::to_string), b: b.map(Value::to_string) },
    };
    for (name, kf) in &kd {
        let record = format!("iname = {name}");
        let Some((_, hf)) = hd.iter().find(|(n, _)| n == name) else {
            out.push(found(record, "", Some(&Value::String(name.clone())), None));
            continue;
        };
        for (f, kv) in kf {
            if hf.get(f) != Some(kv) {
                out.push(found(record.clone(), f, Some(kv), hf.get(f)));
            }
        }
        for (f, hv) in hf {
            if !kf.contains_key(f) {
                out.push(found(record.clone(), f, None, Some(hv)));
            }
        }
    }
    for (name, _) in hd.iter().filter(|(n, _)| !kd.iter().any(|(m, _)| m == n)) {
        out.push(found(format!("iname = {name}"), "", None, Some(&Value::String(name.clone()))));
    }
    out
}

/// What one file gave.
struct Outcome {
    file: String,
    found: Vec<Found>,
    error: Option<String>,
}

fn one(e: &Entry) -> Outcome {
    let text = e.text();
    let interfaces = corpus::interface_names(&text);
    let unicast = corpus::unicast_sources(&text);
    let (kn, hn) = (net(&interfaces, &unicast), net(&interfaces, &unicast));
    let (k, h) = std::thread::scope(|s| {
        let k = s.spawn(|| run(&kn, Daemon::Keepalived, &text));
        let h = s.spawn(|| run(&hn, hav(), &text));
        (k.join().expect("keepalived run"), h.join().expect("hav run"))
    });
    match (k, h) {
        (Ok(k), Ok(h)) => {
            let mut found = compare(&k.data, &h.data);
            found.extend(compare_json(&k.json, &h.json));
            if k.data.section(TOPO).is_none() {
                found.push(Found {
                    section: TOPO.into(),
                    record: String::new(),
                    diff: Difference { path: "(no instances in keepalived's dump)".into(), a: None, b: None },
                });
            }
            Outcome { file: e.file.clone(), found, error: None }
        }
        (k, h) => {
            let error = [k.err(), h.err()].into_iter().flatten().collect::<Vec<_>>().join("\n");
            Outcome { file: e.file.clone(), found: Vec::new(), error: Some(error) }
        }
    }
}

#[test]
fn corpus_dumps_match_keepalived() {
    if skip_unless("corpus_dumps_match_keepalived", &[Need::Root, Need::Keepalived]) {
        return;
    }
    let ci = std::env::var("CI").is_ok_and(|v| v.trim().eq_ignore_ascii_case("true") || v.trim() == "1");
    let mut cases = Vec::new();
    for e in corpus::entries() {
        if corpus::vrrp_instances(&e.text()).is_empty() {
            continue;
        }
        match corpus::keepalived_accepts(&e.path()) {
            Some(true) => cases.push(e),
            Some(false) if e.expect == "runs" => cases.push(e),
            Some(false) => {}
            None => {
                assert!(!ci, "cannot run keepalived -t (unshare missing?)");
                eprintln!("corpus_dumps_match_keepalived: cannot run keepalived -t; skipped");
                return;
            }
        }
    }
    // The corpus has 20 such files; fewer means keepalived refuses what it accepted before.
    assert!(cases.len() >= 20, "only {} corpus files with VRRP instances that keepalived accepts", cases.len());

    let mut outcomes = Vec::new();
    for chunk in cases.chunks(PARALLEL) {
        outcomes.extend(std::thread::scope(|s| {
            let handles: Vec<_> = chunk.iter().map(|e| s.spawn(|| one(e))).collect();
            handles.into_iter().map(|h| h.join().expect("a corpus run")).collect::<Vec<_>>()
        }));
    }

    let mut failures = Vec::new();
    let mut known_seen = vec![false; KNOWN.len()];
    for o in &outcomes {
        println!("== {}", o.file);
        let cannot = CANNOT_RUN.iter().find(|c| c.0 == o.file);
        match (&o.error, cannot) {
            (Some(err), Some((_, what, reason))) if err.contains(what) => {
                println!("   hav cannot run it -- known: {reason}");
                continue;
            }
            (Some(err), _) => {
                println!("   did not run: {err}");
                failures.push(format!("{}: {err}", o.file));
                continue;
            }
            (None, Some(_)) => failures.push(format!("{}: hav runs it now; take it off CANNOT_RUN", o.file)),
            (None, None) => {}
        }
        for f in &o.found {
            let known = KNOWN.iter().position(|(file, section, path, _)| {
                *file == o.file && *section == f.section && (if path.is_empty() { f.diff.path.is_empty() } else { f.diff.path.starts_with(path) })
            });
            match (f.why(), known) {
                (Some((kind, reason)), _) => println!("   {} -- {kind}: {reason}", f.say()),
                (None, Some(k)) => {
                    known_seen[k] = true;
                    println!("   {} -- known hav gap: {}", f.say(), KNOWN[k].3);
                }
                (None, None) => {
                    println!("   {} -- UNEXPLAINED", f.say());
                    failures.push(format!("{}: {}", o.file, f.say()));
                }
            }
        }
    }
    for (k, seen) in KNOWN.iter().zip(known_seen) {
        if !seen {
            failures.push(format!("{}: the known difference in [{}] {} is gone; take it off KNOWN", k.0, k.1, k.2));
        }
    }
    println!("{} corpus files compared; {} unexplained differences", outcomes.len(), failures.len());
    assert!(failures.is_empty(), "hav's dumps differ from keepalived's:\n{}", failures.join("\n"));
}

/// The classification: a runtime field is expected, a configured one is not, whole records
/// only keepalived has are expected only in the interfaces section.
#[test]
fn differences_are_classified() {
    let d = |path: &str, a: Option<&str>, b: Option<&str>| Difference { path: path.into(), a: a.map(Into::into), b: b.map(Into::into) };
    let f = |section: &str, diff| Found { section: section.into(), record: "VRRP Instance = VI_1".into(), diff };
    assert_eq!(f(TOPO, d("State", Some("MASTER"), Some("BACKUP"))).why().map(|w| w.0), Some("runtime"));
    assert_eq!(f(TOPO, d("Priority", Some("100"), Some("101"))).why(), None);
    assert_eq!(f(TOPO, d("", Some("VI_1"), None)).why(), None);
    assert_eq!(f(IFS, d("", Some("lo"), None)).why().map(|w| w.0), Some("keepalived only"));
    assert_eq!(f(IFS, d("", None, Some("eth9"))).why(), None);
    assert_eq!(f(SCRIPTS, d("Timeout", Some("0 sec"), Some("3 sec"))).why(), None);
}
