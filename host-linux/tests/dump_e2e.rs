//! keepalived's state dumps, from hav-linux and from Debian's keepalived side by side: the
//! same instance config runs as master on one node and backup on the other, once with hav as
//! the master and keepalived as the backup and once the other way round; each daemon gets
//! SIGUSR1, SIGUSR2 and SIGRTMIN+2 and writes `keepalived.data`, `keepalived.stats` and
//! `keepalived.json` into its `TMPDIR`. Both files of a role (hav's master and keepalived's
//! master, hav's backup and keepalived's backup) are read with the same parser
//! (`hav_tests::kadump`, serde_json for the JSON) and must have the same fields, with the same
//! values except the ones listed (times, counts that depend on when the signal landed, and the
//! deliberate differences documented in `hav_linux::daemon::dump`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hav_tests::kadump::{self, diff, Dump};
use hav_tests::netns::{skip_unless, Lab, Need, Netns};
use hav_tests::peers::{instance_conf, wait_until, Daemon, Node};
use serde_json::Value;

fn hav() -> Daemon {
    Daemon::Hav(PathBuf::from(env!("CARGO_BIN_EXE_hav-linux")))
}

/// Election settles within 3 x advert + skew; allow for a loaded CI machine.
const SETTLE: Duration = Duration::from_secs(10);

/// The three dumps of one daemon, and the files' modes.
struct Dumps {
    data: Dump,
    stats: Dump,
    json: Value,
    modes: Vec<u32>,
}

const FILES: [&str; 3] = ["keepalived.data", "keepalived.stats", "keepalived.json"];

/// Removes old dumps from `dir`, signals `node` and reads all three files.
fn dumps(node: &Node<'_>, dir: &Path) -> Dumps {
    use std::os::unix::fs::PermissionsExt as _;
    let texts = kadump::request(node, dir, &FILES);
    let modes = FILES.iter().map(|f| std::fs::metadata(dir.join(f)).expect("stat").permissions().mode() & 0o7777).collect();
    let json = serde_json::from_str(&texts[2]).unwrap_or_else(|e| panic!("{:?}: keepalived.json: {e}", node.daemon));
    Dumps { data: kadump::parse(&texts[0]), stats: kadump::parse(&texts[1]), json, modes }
}

/// A dump directory for a node (its `TMPDIR`).
fn tmpdir(tag: &str) -> PathBuf {
    hav_tests::peers::workdir(tag)
}

/// `ns`'s IPv6 link-local address on eth0.
fn link_local(ns: &Netns) -> String {
    let out = ns.ip(&["-6", "-o", "addr", "show", "dev", "eth0", "scope", "link"]).expect("ip addr");
    out.split_whitespace()
        .find_map(|w| w.strip_prefix("fe80").map(|_| w.split('/').next().unwrap_or(w).to_owned()))
        .expect("a link-local address")
}


/// Counts that depend on when each daemon started and got the signal.
const COUNTS: [&str; 2] = ["Advertisements/Received", "Advertisements/Sent"];

/// Compares keepalived's dumps `k` and hav's `h` of instance `name` in one role. `ignore` adds
/// instance lines whose values are expected to differ.
fn compare(role: &str, name: &str, k: &Dumps, h: &Dumps, ignore: &[&str], json_ignore: &[&str]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut say = |what: String| problems.push(format!("{role}: {what}"));
    assert_eq!(k.modes, h.modes, "{role}: file modes (keepalived, hav)");

    let titles: Vec<&str> = k.data.titles().into_iter().filter(|t| *t != "VRRP Sockpool").collect();
    if h.data.titles() != titles {
        say(format!("sections: keepalived {titles:?}, hav {:?}", h.data.titles()));
    }
    let g = |d: &Dump| d.section("Global definitions").map(kadump::Section::as_node);
    match (g(&k.data), g(&h.data)) {
        (Some(kg), Some(hg)) => {
            diff(&kg, &hg, ("keepalived", "hav"), &["nftables", "libnftnl"]).into_iter().for_each(|p| say(format!("globals: {p}")))
        }
        _ => say("no Global definitions".into()),
    }

    // Times, and what hav writes instead of keepalived's socket numbers.
    let mut ign = vec!["Last transition", "Read timeout", "fd_in", "No sockets allocated"];
    ign.extend_from_slice(ignore);
    match (k.data.instance(name), h.data.instance(name)) {
        (Some(kd), Some(hd)) => diff(kd, hd, ("keepalived", "hav"), &ign).into_iter().for_each(|p| say(format!("data: {p}"))),
        (kd, hd) => say(format!("instance {name} in keepalived's data: {}, in hav's: {}", kd.is_some(), hd.is_some())),
    }
    if let (Some(ks), Some(hs)) = (k.data.section("Interfaces"), h.data.section("Interfaces")) {
        for hr in &hs.entries {
            let Some(kr) = ks.record("Name", &hr.value) else {
                say(format!("interface {} only in hav's data", hr.value));
                continue;
            };
            // Two nodes: their own MAC and link-local address, maybe another index.
            let mut ign = kadump::IF_ONLY_KEEPALIVED.to_vec();
            ign.extend(["MAC", "IPv6 address", "index", "IPv4 address"]);
            diff(kr, hr, ("keepalived", "hav"), &ign).into_iter().for_each(|p| say(format!("interface {}: {p}", hr.value)));
        }
    }

    match (k.stats.instance(name), h.stats.instance(name)) {
        (Some(ks), Some(hs)) => {
            diff(ks, hs, ("keepalived", "hav"), &COUNTS).into_iter().for_each(|p| say(format!("stats: {p}")));
            for c in COUNTS {
                let n = |x: &kadump::Node| x.get(c).and_then(|v| v.parse::<i64>().ok());
                match (n(ks), n(hs)) {
                    (Some(a), Some(b)) if (a - b).abs() <= 3 => {}
                    (a, b) => say(format!("stats: {c}: keepalived {a:?}, hav {b:?}")),
                }
            }
        }
        (ks, hs) => say(format!("instance {name} in keepalived's stats: {}, in hav's: {}", ks.is_some(), hs.is_some())),
    }

    let one = |v: &Value| v.as_array().and_then(|a| a.iter().find(|i| i["data"]["iname"] == name)).cloned();
    match (one(&k.json), one(&h.json)) {
        (Some(kj), Some(hj)) => {
            for part in ["data", "stats"] {
                let keys = |v: &Value| v[part].as_object().map(|o| o.keys().cloned().collect::<BTreeSet<_>>()).unwrap_or_default();
                if keys(&kj) != keys(&hj) {
                    say(format!("JSON {part} fields: keepalived {:?}, hav {:?}", keys(&kj), keys(&hj)));
                }
                for (f, kv) in kj[part].as_object().into_iter().flatten() {
                    let hv = &hj[part][f];
                    let same = match f.as_str() {
                        f if json_ignore.contains(&f) => true,
                        // Both started together; each took its last transition within the settle time.
                        "last_transition" => kv.as_f64().zip(hv.as_f64()).is_some_and(|(a, b)| a > 0.0 && (a - b).abs() < 15.0),
                        "advert_rcvd" | "advert_sent" => kv.as_i64().zip(hv.as_i64()).is_some_and(|(a, b)| (a - b).abs() <= 3),
                        _ => kv == hv,
                    };
                    if !same {
                        say(format!("JSON {part}.{f}: keepalived {kv}, hav {hv}"));
                    }
                }
            }
        }
        (kj, hj) => say(format!("instance {name} in keepalived's JSON: {}, in hav's: {}", kj.is_some(), hj.is_some())),
    }
    problems
}

/// `config` on router `i` of `lab`, dumping into `dir`.
fn start<'a>(lab: &'a Lab, i: usize, d: Daemon, config: &str, dir: &Path) -> Node<'a> {
    let t = dir.to_str().expect("utf-8 path");
    Node::start_env(&lab.routers[i], d, config, &[], &[("TMPDIR", t)])
}

/// One instance config on two labs: keepalived master with hav backup, hav master with
/// keepalived backup. `check` gets the dumps (keepalived master, hav master, keepalived
/// backup, hav backup) and the masters' link-local addresses (keepalived's, hav's).
fn run_both_ways(version: u8, advert: &str, vip: &str, extra: &str, check: impl Fn(&[Dumps; 4], [String; 2])) {
    let vip_cidr = if vip.contains(':') { format!("{vip}/64") } else { format!("{vip}/24") };
    let conf = |prio| instance_conf("VI_1", 51, prio, version, advert, &[&vip_cidr], extra);
    let (la, lb) = (Lab::new(2).expect("lab"), Lab::new(2).expect("lab"));
    let dirs: Vec<PathBuf> = ["kam", "hab", "ham", "kab"].iter().map(|t| tmpdir(t)).collect();
    // The masters first: a backup started with them could win the first election while the
    // master's IPv6 link-local address is still tentative (it would then count a mastership).
    let ka_master = start(&la, 0, Daemon::Keepalived, &conf(150), &dirs[0]);
    let hav_master = start(&lb, 0, hav(), &conf(150), &dirs[2]);
    let up = || ka_master.holds(vip) && hav_master.holds(vip);
    assert!(wait_until(SETTLE, up).is_some(), "the masters did not take the VIP");
    let hav_backup = start(&la, 1, hav(), &conf(100), &dirs[1]);
    let ka_backup = start(&lb, 1, Daemon::Keepalived, &conf(100), &dirs[3]);
    let settled = || ka_master.holds(vip) && !hav_backup.holds(vip) && hav_master.holds(vip) && !ka_backup.holds(vip);
    assert!(wait_until(SETTLE, settled).is_some(), "the masters did not settle");
    // A few adverts more, so that both backups have heard their master.
    std::thread::sleep(Duration::from_secs(3));
    let d = [
        dumps(&ka_master, &dirs[0]),
        dumps(&hav_master, &dirs[2]),
        dumps(&ka_backup, &dirs[3]),
        dumps(&hav_backup, &dirs[1]),
    ];
    let masters = [link_local(&la.routers[0]), link_local(&lb.routers[0])];
    check(&d, masters);
    assert!(settled(), "the election moved while dumping");
    for dir in dirs {
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[test]
fn dumps_match_keepalived_v2_pass() {
    if skip_unless("dumps_match_keepalived_v2_pass", &[Need::Root, Need::Keepalived]) {
        return;
    }
    let auth = "  authentication {\n    auth_type PASS\n    auth_pass s3cr3t\n  }";
    run_both_ways(2, "1", "10.0.0.200", auth, |d, _| {
        let mut p = compare("master", "VI_1", &d[0], &d[1], &[], &[]);
        // A backup's master priority: hav-core does not keep it (hav writes 0).
        p.extend(compare("backup", "VI_1", &d[2], &d[3], &["Master priority"], &["master_priority"]));
        assert!(p.is_empty(), "hav's dumps differ from keepalived's:\n{}", p.join("\n"));
        // The values a monitoring script reads.
        let hm = d[1].data.instance("VI_1").expect("VI_1");
        assert_eq!(hm.get("State"), Some("MASTER"));
        assert_eq!(hm.items("Virtual IP (1)"), ["10.0.0.200/24 dev eth0 scope global set"]);
        let hb = d[3].data.instance("VI_1").expect("VI_1");
        assert_eq!((hb.get("State"), hb.get("Master router")), (Some("BACKUP"), Some("10.0.0.1")));
        assert_eq!(d[1].json[0]["data"]["state"], 2);
        assert_eq!(d[3].json[0]["stats"]["become_master"], 0);
    });
}

#[test]
fn dumps_match_keepalived_v3_ipv6() {
    if skip_unless("dumps_match_keepalived_v3_ipv6", &[Need::Root, Need::Keepalived]) {
        return;
    }
    run_both_ways(3, "0.5", "fd00::200", "", |d, masters| {
        // Each node's own link-local source address, and its interface index in the group line.
        let own = ["Using src_ip", "Multicast address", "Master router"];
        let mut p = compare("master", "VI_1", &d[0], &d[1], &own, &[]);
        let mut own_b = own.to_vec();
        own_b.push("Master priority");
        p.extend(compare("backup", "VI_1", &d[2], &d[3], &own_b, &["master_priority"]));
        assert!(p.is_empty(), "hav's dumps differ from keepalived's:\n{}", p.join("\n"));
        // Each backup names its own master by its link-local address.
        let master = |x: &Dumps| x.data.instance("VI_1").and_then(|i| i.get("Master router")).map(str::to_owned);
        assert_eq!(master(&d[2]).as_deref(), Some(masters[1].as_str()), "keepalived's backup under hav");
        assert_eq!(master(&d[3]).as_deref(), Some(masters[0].as_str()), "hav's backup under keepalived");
        let hm = d[1].data.instance("VI_1").expect("VI_1");
        assert_eq!(hm.get("Advert interval"), Some("500 milli-sec"));
        assert!(hm.child("Using Native IPv6").is_some());
    });
}

/// Dumps requested as fast as a monitoring loop gone wrong can send them: hav's master keeps
/// advertising on time (keepalived's backup never takes over) and every dump is whole.
#[test]
fn dump_storm_keeps_mastership() {
    if skip_unless("dump_storm_keeps_mastership", &[Need::Root, Need::Keepalived]) {
        return;
    }
    let lab = Lab::new(2).expect("lab");
    let dir = tmpdir("storm");
    let conf = |prio| instance_conf("VI_1", 51, prio, 3, "0.1", &["10.0.0.200/24"], "");
    let m = start(&lab, 0, hav(), &conf(150), &dir);
    let b = Node::start(&lab.routers[1], Daemon::Keepalived, &conf(100));
    assert!(wait_until(SETTLE, || m.holds("10.0.0.200") && !b.holds("10.0.0.200")).is_some(), "hav did not become master");
    let t0 = std::time::Instant::now();
    let mut n = 0;
    while t0.elapsed() < Duration::from_secs(3) {
        m.signal_raw(libc::SIGUSR1);
        m.signal_raw(libc::SIGUSR2);
        m.signal_raw(libc::SIGRTMIN() + 2);
        n += 1;
        assert!(!b.holds("10.0.0.200"), "keepalived took over after {n} rounds of dump signals");
        if n % 10 == 0 {
            let text = std::fs::read_to_string(dir.join("keepalived.json")).unwrap_or_default();
            if !text.is_empty() {
                serde_json::from_str::<Value>(&text).expect("a whole JSON dump");
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(wait_until(Duration::from_secs(5), || dir.join("keepalived.data").exists()).is_some(), "no data dump");
    assert!(m.holds("10.0.0.200") && !b.holds("10.0.0.200"));
    let _ = std::fs::remove_dir_all(dir);
}
