//! The keyword table against keepalived's keyword list and against the
//! parsers; `docs/keywords.md` against the table; the configurations keepalived
//! runs by dropping or defaulting a value; operators' configurations.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use hav_linux::config::keywords::{self, Support, BLOCKS, TOP};
use hav_linux::config::{load_str, ConfigError, Loaded};
use hav_tests::corpus::{self, keepalived_accepts};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn load(text: &str) -> Result<Loaded, ConfigError> {
    load_str(Path::new("k.conf"), text)
}

fn warnings(l: &Loaded) -> Vec<String> {
    l.warnings.iter().map(ToString::to_string).collect()
}

/// keepalived's keywords: (block path, keyword, since).
fn keepalived_keywords() -> Vec<(String, String, String)> {
    let text = std::fs::read_to_string(repo().join("tests/fixtures/keepalived-keywords.tsv")).expect("keyword list");
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f[0].to_string(), f[1].to_string(), f[2].to_string())
        })
        .collect()
}

#[test]
fn every_keepalived_keyword_is_in_the_table() {
    let mut missing = Vec::new();
    for (path, kw, _) in keepalived_keywords() {
        if keywords::block(&path).and_then(|b| b.get(&kw)).is_none() {
            missing.push(format!("{path}: {kw}"));
        }
    }
    assert!(missing.is_empty(), "keepalived keywords hav does not know:\n{}", missing.join("\n"));
}

#[test]
fn the_table_lists_no_keyword_keepalived_lacks_unless_marked() {
    let known: HashSet<(String, String)> = keepalived_keywords().into_iter().map(|(b, k, _)| (b, k)).collect();
    let blocks: HashSet<&str> = known.iter().map(|(b, _)| b.as_str()).collect();
    let mut wrong = Vec::new();
    for b in BLOCKS {
        for k in b.keywords() {
            let in_keepalived = known.contains(&(b.path.to_string(), k.name.to_string()));
            let extension = matches!(k.support, Support::Extension(_));
            // Blocks keepalived does not have (WASM_CHECK, ICMP_CHECK) are hav's whole.
            if blocks.contains(b.path) && in_keepalived == extension {
                wrong.push(format!("{}: {} ({:?})", b.path, k.name, k.support));
            }
        }
    }
    assert!(wrong.is_empty(), "marked wrongly (Extension means keepalived 2.3/2.4 lacks it):\n{}", wrong.join("\n"));
}

#[test]
fn docs_keywords_md_matches_the_table() {
    let path = repo().join("docs/keywords.md");
    let want = keywords::markdown();
    if std::env::var_os("HAV_WRITE_DOCS").is_some() {
        std::fs::write(&path, &want).expect("write docs/keywords.md");
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(have == want, "docs/keywords.md differs from the keyword table; run HAV_WRITE_DOCS=1 cargo test -p hav-linux --test config_keywords");
}

/// Arguments of the block keywords on the way to a block.
fn opener(segment: &str) -> &'static str {
    match segment {
        "vrrp_instance" => "vrrp_instance V {\n interface eth0\n virtual_router_id 1\n no_virtual_ipaddress\n",
        "vrrp_sync_group" => "vrrp_sync_group G {\n group {\n  V\n }\n",
        "vrrp_script" => "vrrp_script S {\n script /bin/true\n",
        "track_file" => "track_file F {\n file /tmp/f\n",
        "vrrp_track_file" => "vrrp_track_file F {\n file /tmp/f\n",
        "vrrp_track_process" => "vrrp_track_process P {\n",
        "bfd_instance" => "bfd_instance B {\n",
        "track_group" => "track_group T {\n",
        "virtual_server" => "virtual_server 10.0.0.1 80 {\n",
        "real_server" => "real_server 10.0.0.2 80 {\n",
        "url" => "url {\n path /\n",
        "FILE_CHECK" => "FILE_CHECK {\n track_file F\n",
        "WASM_CHECK" => "WASM_CHECK {\n policy p.wasm\n",
        "HTTP_GET" => "HTTP_GET {\n url {\n  path /\n }\n",
        "SSL_GET" => "SSL_GET {\n url {\n  path /\n }\n",
        "MISC_CHECK" => "MISC_CHECK {\n misc_path /bin/true\n",
        "authentication" => "authentication {\n auth_type PASS\n auth_pass x\n",
        other => Box::leak(format!("{other} {{\n").into_boxed_str()),
    }
}

/// A configuration with `line` inside the block at `path`; the line number of `line`.
fn placed(path: &str, line: &str) -> (String, u32) {
    let mut text = String::new();
    if path.starts_with("vrrp_sync_group") {
        text.push_str(opener("vrrp_instance"));
        text.push_str("}\n");
    }
    if path.contains("FILE_CHECK") {
        text.push_str("track_file F {\n file /tmp/f\n}\n");
    }
    let segments: Vec<&str> = if path == TOP { Vec::new() } else { path.split('/').collect() };
    for s in &segments {
        text.push_str(opener(s));
    }
    let at = u32::try_from(text.lines().count()).unwrap_or(0) + 1;
    text.push_str(line);
    text.push('\n');
    for _ in &segments {
        text.push_str("}\n");
    }
    (text, at)
}

fn sample(name: &str) -> &'static [&'static str] {
    match name {
        "mcast_dst_ip" => &["224.0.0.19"],
        "virtual_routes" | "virtual_rules" | "vrrp_track_process" | "bfd_instance" | "garp_group" | "track_group" | "SSL"
        | "auth_hmac" | "host" | "static_ipaddress" | "static_routes" | "static_rules" | "linkbeat_interfaces"
        | "interface_up_down_delays" | "BFD_CHECK" => &["{\n}"],
        "vrrp_track_process_b" => &[],
        _ => &["", "1", "/tmp/x"],
    }
}

/// Whether the block at `path` sits in (or is) a block whose keyword hav ignores.
fn in_ignored_block(path: &str) -> bool {
    let mut parent = TOP.to_string();
    for seg in path.split('/') {
        let ignored = keywords::block(&parent).and_then(|b| b.get(seg)).is_some_and(|k| matches!(k.support, Support::Ignored(_)));
        if ignored {
            return true;
        }
        parent = if parent == TOP { seg.to_string() } else { format!("{parent}/{seg}") };
    }
    false
}

/// Every keyword of the table placed in its block: none is unknown or falls
/// through its parser; an ignored or not-acted keyword warns exactly once, on
/// its own line.
#[test]
fn every_table_keyword_is_handled_by_its_parser() {
    let mut wrong = Vec::new();
    for b in BLOCKS {
        for k in b.keywords() {
            let mut outcome = None;
            for arg in sample(k.name) {
                let line = if arg.is_empty() { k.name.to_string() } else { format!("{} {arg}", k.name) };
                let (text, at) = placed(b.path, &line);
                match load(&text) {
                    Ok(l) => {
                        let here: Vec<String> =
                            l.warnings.iter().filter(|w| w.location.line == at).map(ToString::to_string).collect();
                        outcome = Some(Ok(here));
                        break;
                    }
                    Err(e) => outcome = Some(Err(e)),
                }
            }
            let label = format!("{} {}", b.path, k.name);
            match (k.support, outcome.expect("tried")) {
                (_, Err(e @ ConfigError::UnknownKeyword { .. })) => wrong.push(format!("{label}: {e}")),
                (_, Err(e)) if e.to_string().contains("hav bug") => wrong.push(format!("{label}: {e}")),
                // Inside a block hav ignores, the block's keyword warned once for all.
                (Support::Ignored(_), Ok(here)) if in_ignored_block(b.path) => {
                    if !here.is_empty() {
                        wrong.push(format!("{label}: warned inside an ignored block: {here:?}"));
                    }
                }
                (Support::Ignored(_) | Support::Parsed(_), Ok(here)) => {
                    let naming = here.iter().filter(|w| w.contains(&format!("'{}'", k.name))).count();
                    if naming != 1 {
                        wrong.push(format!("{label}: {naming} warnings naming it: {here:?}"));
                    }
                }
                (Support::Ignored(_) | Support::Parsed(_), Err(e)) => wrong.push(format!("{label}: never loaded: {e}")),
                (Support::Acted | Support::Extension(_), Ok(here)) => {
                    if here.iter().any(|w| w.contains("read, but") || w.contains("; ignored")) {
                        wrong.push(format!("{label}: acted on, yet warned: {here:?}"));
                    }
                }
                (Support::Acted | Support::Extension(_), Err(_)) => {}
            }
        }
    }
    assert!(wrong.is_empty(), "{} keywords mishandled:\n{}", wrong.len(), wrong.join("\n"));
}

#[test]
fn an_unknown_keyword_is_an_error_with_a_suggestion() {
    let e = load("global_defs {\n  vrrp_garp_intervall 1\n}\n").expect_err("typo");
    assert_eq!(e.to_string(), "k.conf:2:3: unknown keyword 'vrrp_garp_intervall' in global_defs (did you mean 'vrrp_garp_interval'?)");
    let e = load("vrrp_track_process P {\n  proces x\n}\n").expect_err("typo inside an ignored block");
    assert!(e.to_string().starts_with("k.conf:2:3: unknown keyword 'proces' in vrrp_track_process"), "{e}");
    let e = load("virtual_server 10.0.0.1 80 {\n real_server 10.0.0.2 80 {\n  TCP_CHECK {\n   misc_path /bin/true\n  }\n }\n}\n")
        .expect_err("a MISC_CHECK keyword in TCP_CHECK");
    assert!(matches!(e, ConfigError::UnknownKeyword { .. }), "{e}");
}

fn one_instance(body: &str) -> String {
    format!("vrrp_instance V {{\n interface eth0\n virtual_router_id 1\n{body}\n}}\n")
}

fn accepts_with(text: &str, needle: &str) -> Loaded {
    let l = load(text).unwrap_or_else(|e| panic!("keepalived runs this; hav refused: {e}\n{text}"));
    let w = warnings(&l);
    assert!(w.iter().any(|m| m.contains(needle)), "no warning with '{needle}': {w:?}");
    l
}

#[test]
fn keywords_keepalived_accepts_load_with_one_warning_each() {
    // Acted on now: no warning at all.
    for line in ["promote_secondaries", "notify_master_rx_lower_pri /bin/true", "lower_prio_no_advert", "higher_prio_send_advert", "down_timer_adverts 5", "dont_track_primary"] {
        let l = load(&one_instance(&format!(" virtual_ipaddress {{\n  10.0.0.9\n }}\n {line}"))).expect("loads");
        assert!(l.warnings.is_empty(), "{line}: {:?}", warnings(&l));
    }
    let cases: &[(&str, &str)] = &[
        ("mcast_dst_ip 224.0.0.19", "'mcast_dst_ip'"),
        ("v3_checksum_as_v2", "'v3_checksum_as_v2'"),
        ("vrf red", "'vrf'"),
        ("use_vmac_addr", "'use_vmac_addr'"),
        ("timer_expired_backup", "'timer_expired_backup'"),
    ];
    for (line, needle) in cases {
        let l = accepts_with(&one_instance(&format!(" virtual_ipaddress {{\n  10.0.0.9\n }}\n {line}")), needle);
        assert_eq!(l.warnings.len(), 1, "{line}: {:?}", warnings(&l));
    }
    // Acted on now: the VRRP thread's realtime scheduling, garp_extra_if, strict mode.
    for g in ["vrrp_rlimit_rttime 10000", "max_auto_priority 50", "max_auto_priority", "vrrp_rt_priority 5", "min_auto_priority_delay 500000", "vrrp_garp_extra_if all 60", "vrrp_strict"] {
        let l = load(&format!("global_defs {{\n {g}\n}}\n")).expect("loads");
        assert!(l.warnings.is_empty(), "{g}: {:?}", warnings(&l));
    }
    let globals = ["lvs_flush_on_stop", "log_unknown_vrids", "process_names", "vmac_prefix vrrp", "nftables_ipvs", "v3_checksum_as_v2"];
    for g in globals {
        let name = g.split(' ').next().unwrap_or(g);
        let l = accepts_with(&format!("global_defs {{\n {g}\n}}\n"), &format!("'{name}'"));
        assert_eq!(l.warnings.len(), 1, "{g}: {:?}", warnings(&l));
    }
    // The 2.2+ name of vrrp_track_file.
    let l = load("track_file F {\n file /tmp/f\n}\nvrrp_instance V {\n interface eth0\n virtual_router_id 1\n no_virtual_ipaddress\n track_file {\n  F\n }\n}\n")
        .expect("track_file NAME {}");
    assert!(l.warnings.is_empty(), "{:?}", warnings(&l));
    assert_eq!(l.config.vrrp_track_files[0].name, "F");
    accepts_with("SSL {\n password x\n ca /c\n}\n", "'SSL'");
    accepts_with(
        "virtual_server 10.0.0.1 80 {\n hashed\n weight 2\n snmp_name web\n real_server 10.0.0.2 80 {\n  TCP_CHECK {\n   log_all_failures\n  }\n }\n}\n",
        "'hashed'",
    );
    let l = load("virtual_server 10.0.0.1 80 {\n hashed\n weight 2\n snmp_name web\n real_server 10.0.0.2 80 {\n  TCP_CHECK {\n   log_all_failures\n  }\n }\n}\n").expect("runs");
    assert_eq!(l.warnings.len(), 4, "{:?}", warnings(&l));
}

#[test]
fn an_instance_without_addresses_or_interface_runs_as_keepalived_runs_it() {
    let l = load(&one_instance(" no_virtual_ipaddress")).expect("no VIPs on purpose");
    assert!(l.warnings.is_empty(), "{:?}", warnings(&l));
    accepts_with(&one_instance(""), "has no virtual_ipaddress");
    // Unicast without interface: keepalived runs it (addresses go to default_interface).
    let l = load("global_defs {\n default_interface eth1\n}\nvrrp_instance V {\n virtual_router_id 1\n unicast_src_ip 10.0.0.1\n unicast_peer {\n  10.0.0.2\n }\n virtual_ipaddress {\n  10.0.0.9\n }\n}\n")
        .expect("unicast without interface");
    assert_eq!(l.config.global.default_interface.as_deref(), Some("eth1"));
    // Multicast without interface: keepalived refuses the instance ("Unknown interface!").
    let e = load("vrrp_instance V {\n virtual_router_id 1\n}\n").expect_err("multicast without interface");
    assert!(e.to_string().contains("has no 'interface'"), "{e}");
}

#[test]
fn values_keepalived_defaults_are_defaulted_with_a_warning() {
    let l = accepts_with(&one_instance(" state SLAVE\n no_virtual_ipaddress"), "unknown state 'SLAVE'");
    assert_eq!(l.config.vrrp_instances[0].state, hav_linux::config::VrrpState::Backup);
    let l = accepts_with(&one_instance(" no_virtual_ipaddress\n authentication {\n  auth_type PASS;\n  auth_pass x\n }"), "unknown auth_type 'PASS;'");
    assert!(l.config.vrrp_instances[0].authentication.is_none());
    let l = load(&one_instance(" no_virtual_ipaddress\n authentication {\n  auth_type AH\n  auth_pass x\n }")).expect("AH parses");
    // AH is implemented: no warning says otherwise.
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    assert_eq!(
        l.config.vrrp_instances[0].authentication.as_ref().map(|a| a.auth_type),
        Some(hav_linux::config::vrrp::AuthType::Ah)
    );
    let l = accepts_with(&one_instance(" version 2\n virtual_ipaddress {\n  fd00::1\n }"), "runs version 3");
    assert_eq!(l.config.vrrp_instances[0].version, hav_linux::config::VrrpVersion::V3);
    let l = accepts_with(&one_instance(" virtual_ipaddress {\n  10.0.0.9\n  fd00::1\n }"), "not of the instance's address family");
    assert_eq!(l.config.vrrp_instances[0].virtual_ipaddresses.len(), 1);
    let l = accepts_with(&one_instance(" no_virtual_ipaddress\n track_script {\n  nosuch\n }"), "vrrp_script 'nosuch' is not defined");
    assert!(l.config.vrrp_instances[0].track_scripts.is_empty());
    let l = accepts_with("global_defs {\n enable_script_security 1\n}\n", "takes no value");
    assert!(l.config.global.enable_script_security);
    let vs = "virtual_server 10.0.0.1 80 {\n persistence_timeout 0\n quorum 0\n real_server 10.0.0.2 80 {\n }\n}\n";
    let l = accepts_with(vs, "without persistence");
    assert_eq!(l.config.virtual_servers[0].persistence_timeout, None);
    assert_eq!(l.config.virtual_servers[0].quorum, 1);
    assert!(warnings(&l).iter().any(|w| w.contains("quorum 1 is used")));
}

#[test]
fn unicast_peers_are_read_as_keepalived_reads_them() {
    let l = accepts_with(
        &one_instance(" no_virtual_ipaddress\n unicast_src_ip 10.0.0.1\n unicast_peer {\n  10.0.0.2 10.0.0.3\n  10.0.0.4 min_ttl 250 max_ttl 255\n }"),
        "a second address on one unicast_peer line",
    );
    let i = &l.config.vrrp_instances[0];
    let peers: Vec<String> = i.unicast_peers.iter().map(|p| p.address.to_string()).collect();
    assert_eq!(peers, ["10.0.0.2", "10.0.0.4"]);
    assert_eq!((i.unicast_peers[1].min_ttl, i.unicast_peers[1].max_ttl), (250, 255));
    // A TTL bound turns on the source check, as in keepalived; without one it is off.
    assert!(i.check_unicast_src);
    let l = load(&one_instance(" no_virtual_ipaddress\n unicast_peer {\n  10.0.0.2\n }")).expect("valid");
    assert!(!l.config.vrrp_instances[0].check_unicast_src);
    let l = load(&format!("global_defs {{\n vrrp_check_unicast_src\n}}\n{}", one_instance(" no_virtual_ipaddress\n unicast_peer {\n  10.0.0.2\n }")))
        .expect("valid");
    assert!(l.config.vrrp_instances[0].check_unicast_src);
}

#[test]
fn address_options_are_kept_and_reported() {
    let l = load(&one_instance(
        " virtual_ipaddress {\n  10.0.0.9/24 peer 10.0.0.10/24\n  10.0.0.11/24 preferred_lft 0 home noprefixroute autojoin no_track\n  fd00::1/64 mngtmpaddr\n  10.0.0.12/24 bogus\n }",
    ))
    .expect("runs");
    let i = &l.config.vrrp_instances[0];
    // keepalived takes `peer ADDR`; a prefix there is the address's own, with a warning.
    assert_eq!(i.virtual_ipaddresses[0].peer.as_deref(), Some("10.0.0.10"));
    assert!(i.virtual_ipaddresses[1].no_track);
    // Kept for the kernel: noprefixroute and autojoin; preferred_lft and home are IPv6 options.
    assert_eq!(i.virtual_ipaddresses[1].flags, ["noprefixroute", "autojoin"]);
    let w = warnings(&l);
    for opt in ["peer 10.0.0.10/24", "preferred_lft on IPv4", "'home' is for IPv6", "'no_track'", "unknown address option 'bogus'"] {
        assert!(w.iter().any(|m| m.contains(opt)), "{opt}: {w:?}");
    }
    for acted in ["noprefixroute", "autojoin"] {
        assert!(!w.iter().any(|m| m.contains(acted)), "{acted} is passed to the kernel, yet warned: {w:?}");
    }
    // The IPv6 address is of the other family: dropped with a warning, as keepalived drops it.
    assert_eq!(i.virtual_ipaddresses.len(), 3);
}

#[test]
fn vrrp_strict_means_what_it_means_in_keepalived() {
    let g = "global_defs {\n vrrp_strict\n}\n";
    let l = load(&format!("{g}{}", one_instance(" state MASTER\n priority 100\n authentication {\n  auth_type PASS\n  auth_pass x\n }\n virtual_ipaddress {\n  10.0.0.9\n }")))
        .expect("runs");
    let i = &l.config.vrrp_instances[0];
    assert!(i.authentication.is_none(), "no authentication in strict mode");
    assert!(!i.accept, "accept off unless owner");
    assert_eq!(i.state, hav_linux::config::VrrpState::Backup, "the initial state follows priority 255");
    assert_eq!((i.garp.lower_prio_repeat, i.garp.lower_prio_delay), (0, std::time::Duration::ZERO));
    let l = load(&format!("{g}{}", one_instance(" priority 255\n virtual_ipaddress {\n  10.0.0.9\n }"))).expect("owner");
    assert!(l.config.vrrp_instances[0].accept);
    let e = load(&format!("{g}{}", one_instance(" unicast_peer {\n  10.0.0.2\n }\n virtual_ipaddress {\n  10.0.0.9\n }"))).expect_err("no unicast");
    assert!(e.to_string().contains("strict mode"), "{e}");
    // state MASTER without a priority owns the address, as in keepalived.
    let l = load(&one_instance(" state MASTER\n no_virtual_ipaddress")).expect("valid");
    assert_eq!(l.config.vrrp_instances[0].priority, 255);
}

// ---- operators' configurations -------------------------------------------------

/// Every operator's configuration that keepalived accepts (or that the index
/// says keepalived runs, with warnings for values it defaults), hav accepts.
#[test]
fn operators_configs_keepalived_accepts_hav_accepts() {
    let entries = corpus::entries();
    assert!(entries.len() >= 50, "the corpus has {} files", entries.len());
    let have_keepalived = Command::new("keepalived").arg("--version").output().is_ok();
    if std::env::var_os("CI").is_some() {
        assert!(have_keepalived, "keepalived is not installed (scripts/install-deps installs it)");
    }
    let (mut ka_ok, mut hav_ok, mut both, mut failures) = (0, 0, 0, Vec::new());
    for e in &entries {
        let path = e.path();
        let text = e.text();
        let hav = load_str(&path, &text);
        let ka = if have_keepalived { keepalived_accepts(&path) } else { None };
        if ka == Some(true) {
            ka_ok += 1;
        }
        if hav.is_ok() {
            hav_ok += 1;
        }
        let must = ka == Some(true) || e.expect == "runs";
        if must && hav.is_ok() {
            both += 1;
        }
        if let (true, Err(err)) = (must, &hav) {
            failures.push(format!("{} ({}): {err}", e.file, e.source));
        }
        if ka == Some(true) && e.expect == "rejected" {
            failures.push(format!("{} ({}): keepalived accepts it but the index lists it as rejected", e.file, e.source));
        }
    }
    println!(
        "corpus: {} files; keepalived -t accepts {ka_ok}; hav accepts {hav_ok}; of those hav must accept, {both} pass",
        entries.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
