//! keepalived's configuration language (keepalived.conf(5), "ADVANCED
//! CONFIGURATION", "Quoted strings", `include`): one test per construct, each
//! on a small configuration in a temp dir, and the errors, located as
//! FILE:LINE:COL.
//!
//! Where the configuration is one keepalived reads too, Debian's
//! `keepalived -t -f FILE -i ID` checks it with the same config id: it must
//! accept what hav accepts and reject what hav rejects. Without keepalived on
//! the PATH those checks are skipped (and fail under CI=true).

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hav_linux::config::parser::Loader;
use hav_linux::config::value::split_command;
use hav_linux::config::{expand, load_with, ConfigError, IncludeCheck, Loaded, Options};
use hav_tests::netns::{skip_unless, Need};

/// A fresh directory under the temp dir, unique per test and process.
fn temp_dir(tag: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!("hav-lang-{tag}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst)));
    std::fs::create_dir_all(&dir).expect("temp dir");
    // keepalived refuses a configuration under a directory others may write to only when it
    // runs scripts as root; the temp dir is canonical so paths in messages compare equal.
    dir.canonicalize().expect("canonical temp dir")
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).expect("mkdir");
    }
    std::fs::write(&p, text).expect("write temp file");
    p
}

fn load(path: &Path, id: &str) -> Loaded {
    match load_with(path, &Options::with_config_id(id)) {
        Ok(l) => l,
        Err(e) => panic!("{} must load with config id {id}: {e}", path.display()),
    }
}

fn load_err(path: &Path, id: &str) -> ConfigError {
    match load_with(path, &Options::with_config_id(id)) {
        Ok(_) => panic!("{} must not load with config id {id}", path.display()),
        Err(e) => e,
    }
}

fn warnings(l: &Loaded) -> Vec<String> {
    l.warnings.iter().map(ToString::to_string).collect()
}

/// The warnings about includes (the sections have their own, about
/// `dynamic_interfaces` for one).
fn include_warnings(l: &Loaded) -> Vec<String> {
    l.warnings.iter().filter(|w| w.message.starts_with("include")).map(ToString::to_string).collect()
}

/// keepalived's verdict on `path` with config id `id` (`keepalived -t`), or
/// `None` when keepalived is not installed (and not under CI=true).
fn keepalived_accepts(test: &str, path: &Path, id: &str) -> Option<bool> {
    if skip_unless(test, &[Need::Keepalived]) {
        return None;
    }
    let out = Command::new("keepalived")
        .arg("-t")
        .arg("-f")
        .arg(path)
        .args(["-i", id])
        .output()
        .expect("run keepalived -t");
    if !out.status.success() {
        eprintln!("keepalived -t -f {} -i {id}: {}\n{}", path.display(), out.status, String::from_utf8_lossy(&out.stderr));
    }
    Some(out.status.success())
}

fn keepalived_agrees(test: &str, path: &Path, id: &str, hav_accepts: bool) {
    if let Some(accepts) = keepalived_accepts(test, path, id) {
        assert_eq!(accepts, hav_accepts, "keepalived -t -i {id} on {} disagrees with hav", path.display());
    }
}

/// Interfaces need not exist (keepalived -t checks them otherwise), and scripts run as root
/// (keepalived -t fails without a script user). Four lines.
const GLOBAL: &str = "global_defs {\n    dynamic_interfaces\n    enable_script_security\n    script_user root }\n";

fn ip(s: &str) -> IpAddr {
    s.parse().expect("address")
}

// ---------------------------------------------------------------------------
// @ID / @^ID conditional lines

#[test]
fn conditional_lines_follow_the_config_id() {
    let dir = temp_dir("cond");
    let main = write(
        &dir,
        "keepalived.conf",
        "global_defs {\n\
         \x20   dynamic_interfaces\n\
         \x20   @main   router_id main_router\n\
         \x20   @backup router_id backup_router\n\
         \x20   @main\n\
         }\n\
         vrrp_instance VRRP {\n\
         \x20   interface hvt0\n\
         \x20   virtual_router_id 7\n\
         \x20   @main    unicast_src_ip 192.0.2.4\n\
         \x20   @backup  unicast_src_ip 192.0.2.5\n\
         \x20   unicast_peer {\n\
         \x20       @^main    192.0.2.4\n\
         \x20       @^backup  192.0.2.5\n\
         \x20       @^backup2 192.0.2.6\n\
         \x20   }\n\
         \x20   virtual_ipaddress {\n\
         \x20       192.0.2.100/24\n\
         \x20   }\n\
         }\n",
    );
    let l = load(&main, "main");
    assert_eq!(l.config.global.router_id.as_deref(), Some("main_router"));
    let vi = &l.config.vrrp_instances[0];
    assert_eq!(vi.unicast_src_ip, Some(ip("192.0.2.4")));
    let peers: Vec<_> = vi.unicast_peers.iter().map(|p| p.address).collect();
    assert_eq!(peers, [ip("192.0.2.5"), ip("192.0.2.6")]);

    let l = load(&main, "elsewhere");
    assert_eq!(l.config.global.router_id, None);
    let vi = &l.config.vrrp_instances[0];
    assert_eq!(vi.unicast_src_ip, None);
    let peers: Vec<_> = vi.unicast_peers.iter().map(|p| p.address).collect();
    assert_eq!(peers, [ip("192.0.2.4"), ip("192.0.2.5"), ip("192.0.2.6")]);

    keepalived_agrees("conditional_lines_follow_the_config_id", &main, "main", true);
    keepalived_agrees("conditional_lines_follow_the_config_id", &main, "elsewhere", true);
}

#[test]
fn default_config_id_is_the_host_name_up_to_the_first_dot() {
    let id = hav_linux::config::default_config_id();
    let host = nix::unistd::gethostname().expect("hostname").to_string_lossy().into_owned();
    assert_eq!(id, host.split('.').next().unwrap_or_default());
    assert_eq!(Options::default().config_id, id);
}

#[test]
fn conditional_on_a_block_opening_drops_only_that_line() {
    // keepalived drops the '@other' line alone and reads the block's contents at the outer
    // level; hav stops at the first line kept inside the dropped block.
    let dir = temp_dir("condblock");
    let main = write(
        &dir,
        "keepalived.conf",
        &format!("{GLOBAL}@other vrrp_instance VI_X {{\n    interface hvt0\n    virtual_router_id 9\n    virtual_ipaddress {{\n        192.0.2.9/24\n    }}\n}}\n"),
    );
    let e = load_err(&main, "main");
    let m = main.display();
    assert_eq!(
        e.to_string(),
        format!(
            "{m}:6:5: this line is inside the block opened by '@other vrrp_instance VI_X {{' at {m}:5:1, which was dropped because of '@other': keepalived drops only that line, not its block; put '@other' on every line of the block"
        )
    );
    keepalived_agrees("conditional_on_a_block_opening_drops_only_that_line", &main, "main", false);
    // With the config id it names, the block is read.
    assert_eq!(load(&main, "other").config.vrrp_instances.len(), 1);

    // Every line of the block marked: dropped whole, as intended.
    let main = write(
        &dir,
        "marked.conf",
        &format!("{GLOBAL}@other vrrp_instance VI_X {{\n@other     interface hvt0\n@other     virtual_router_id 9\n@other }}\n"),
    );
    assert!(load(&main, "main").config.vrrp_instances.is_empty());
    keepalived_agrees("conditional_on_a_block_opening_drops_only_that_line", &main, "main", true);

    // The opening brace on the next line, unmarked.
    let main = write(&dir, "nextline.conf", &format!("{GLOBAL}@other vrrp_instance VI_X\n{{\n    virtual_router_id 9\n}}\n"));
    let e = load_err(&main, "main");
    let m = main.display();
    assert_eq!(
        e.to_string(),
        format!("{m}:6:1: this '{{' opens a block for the line that '@other' dropped at {m}:5:1: keepalived drops only that line, not the block; put '@other' on every line of the block")
    );
}

// ---------------------------------------------------------------------------
// $NAME=value definitions

#[test]
fn definitions_are_substituted_when_used() {
    let dir = temp_dir("defs");
    let main = write(
        &dir,
        "keepalived.conf",
        &format!(
            "{GLOBAL}\
             $ADDRESS_BASE=192.0.${{ADDRESS_BASE_SUB}}\n\
             $ADDRESS_BASE_SUB=2\n\
             $PRI=150\n\
             $IF_MAIN=@main\n\
             vrrp_instance VI_1 {{\n\
             \x20   interface hvt0\n\
             \x20   virtual_router_id 1\n\
             \x20   priority $PRI\n\
             \x20   $IF_MAIN advert_int 3\n\
             \x20   virtual_ipaddress {{\n\
             \x20       ${{ADDRESS_BASE}}.10/24\n\
             $ADDRESS_BASE_SUB=3\n\
             \x20       ${{ADDRESS_BASE}}.11/24\n\
             \x20   }}\n\
             }}\n\
             $PRI=90\n\
             $EMPTY=\n\
             vrrp_instance VI_2 {{\n\
             \x20   interface hvt0$EMPTY\n\
             \x20   virtual_router_id 2\n\
             \x20   priority $PRI\n\
             \x20   notify_master \"/bin/echo $PRI.5\"\n\
             \x20   virtual_ipaddress {{\n\
             \x20       192.0.2.20/24\n\
             \x20   }}\n\
             }}\n"
        ),
    );
    let l = load(&main, "main");
    let vi1 = l.config.instance("VI_1").expect("VI_1");
    assert_eq!(vi1.priority, 150);
    assert_eq!(vi1.advert_int, Duration::from_secs(3));
    let vips: Vec<IpAddr> = vi1.virtual_ipaddresses.iter().map(|v| v.address).collect();
    assert_eq!(vips, [ip("192.0.2.10"), ip("192.0.3.11")]);
    let vi2 = l.config.instance("VI_2").expect("VI_2");
    assert_eq!(vi2.priority, 90);
    // A reference may follow text; an empty value is allowed.
    assert_eq!(vi2.interface.as_deref(), Some("hvt0"));
    // $NAME ends at a blank, ',', ')' or the line end: '$PRI.5' is left as written, and hav
    // says so since PRI is defined.
    assert_eq!(vi2.notify.master.as_ref().map(|s| s.argv.clone()), Some(vec!["/bin/echo".to_string(), "$PRI.5".to_string()]));
    assert!(warnings(&l).iter().any(|w| w.contains("$PRI is not substituted here")), "{:?}", warnings(&l));
    // Not main: the conditional that a definition produced drops the line.
    assert_eq!(load(&main, "backup").config.instance("VI_1").expect("VI_1").advert_int, Duration::from_secs(1));
    keepalived_agrees("definitions_are_substituted_when_used", &main, "main", true);
}

#[test]
fn multi_line_definitions_expand_to_lines() {
    let dir = temp_dir("multi");
    let main = write(
        &dir,
        "keepalived.conf",
        &format!(
            "{GLOBAL}\
             $INSTANCE= \\\n\
             vrrp_instance VI_${{NUM}} {{ \\\n\
             \x20   interface hvt${{NUM}} \\\n\
             \x20   virtual_router_id 1${{NUM}} \\\n\
             \x20   @high priority 130 \\\n\
             \x20   @low priority 120 \\\n\
             \x20   virtual_ipaddress {{ \\\n\
             \x20       192.0.2.${{NUM}}/24 \\\n\
             \x20   }} \\\n\
             }}\n\
             \n\
             $NUM=1\n\
             $INSTANCE\n\
             $NUM=2\n\
             $INSTANCE\n"
        ),
    );
    let l = load(&main, "high");
    let names: Vec<&str> = l.config.vrrp_instances.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["VI_1", "VI_2"]);
    let vi2 = &l.config.vrrp_instances[1];
    assert_eq!((vi2.interface.as_deref(), vi2.virtual_router_id, vi2.priority), (Some("hvt2"), 12, 130));
    assert_eq!(vi2.virtual_ipaddresses[0].address, ip("192.0.2.2"));
    // The instance is located where its text is written, and says where it was substituted.
    assert_eq!((vi2.location.line, vi2.location.col), (6, 1));
    assert_eq!(vi2.location.trail(), format!(" (in $INSTANCE substituted at {}:19:1)", main.display()));
    assert_eq!(load(&main, "low").config.vrrp_instances[0].priority, 120);
    keepalived_agrees("multi_line_definitions_expand_to_lines", &main, "high", true);

    // A comment line ends the definition (keepalived's VRRP and checker processes read a copy
    // of the configuration in which it is an empty line): the next line is read on its own.
    let main = write(
        &dir,
        "comment.conf",
        &format!("{GLOBAL}$INSTANCE= \\\nvrrp_instance VI_${{NUM}} {{ \\\n! a comment\n    virtual_router_id 1${{NUM}} \\\n}}\n"),
    );
    assert_eq!(
        load_err(&main, "high").to_string(),
        format!("{}:8:24: 'NUM' is not defined (keepalived would leave '${{NUM}}' in place and read its braces as a block)", main.display())
    );
    keepalived_agrees("multi_line_definitions_expand_to_lines", &main, "high", false);

    // An error in the definition's text is located there, with the substitution named.
    let main = write(&dir, "typo.conf", "$BODY= \\\n  virtual_router_id 3 \\\n  priorty 5\n\nvrrp_instance V {\n$BODY\n}\n");
    let e = load_err(&main, "x");
    let m = main.display();
    assert_eq!(
        e.to_string(),
        format!("{m}:3:3: unknown keyword 'priorty' in vrrp_instance (did you mean 'priority'?) (in $BODY substituted at {m}:6:1)")
    );
}

#[test]
fn definitions_made_in_an_include_hold_after_it() {
    let dir = temp_dir("incdefs");
    write(&dir, "defs.conf", "$VRID=42\n$VIP=192.0.2.42/24\n");
    let main = write(
        &dir,
        "keepalived.conf",
        &format!(
            "{GLOBAL}include defs.conf\nvrrp_instance A {{\n    interface hvt0\n    virtual_router_id $VRID\n    virtual_ipaddress {{\n        $VIP\n    }}\n}}\n$VRID=43\nvrrp_instance B {{\n    interface hvt0\n    virtual_router_id $VRID\n    virtual_ipaddress {{\n        192.0.2.43/24\n    }}\n}}\n"
        ),
    );
    let l = load(&main, "x");
    assert_eq!(l.config.instance("A").expect("A").virtual_router_id, 42);
    assert_eq!(l.config.instance("A").expect("A").virtual_ipaddresses[0].address, ip("192.0.2.42"));
    assert_eq!(l.config.instance("B").expect("B").virtual_router_id, 43);
    keepalived_agrees("definitions_made_in_an_include_hold_after_it", &main, "x", true);
}

#[test]
fn undefined_references() {
    let dir = temp_dir("undef");
    // keepalived leaves an undefined reference in place: scripts keep their '$' words.
    let main = write(
        &dir,
        "keepalived.conf",
        &format!(
            "{GLOBAL}vrrp_instance A {{\n    interface hvt0\n    virtual_router_id 1\n    notify_master \"/bin/echo $UNDEF ${{HOME}}/x\"\n    virtual_ipaddress {{\n        192.0.2.1/24\n    }}\n}}\n"
        ),
    );
    let l = load(&main, "x");
    let m = l.config.vrrp_instances[0].notify.master.as_ref().expect("notify_master");
    assert_eq!(m.argv, ["/bin/echo", "$UNDEF", "${HOME}/x"]);
    keepalived_agrees("undefined_references", &main, "x", true);

    // Outside quotes, keepalived would read the braces of an undefined ${NAME} as a block.
    let main = write(&dir, "braces.conf", &format!("{GLOBAL}vrrp_instance A {{\n    virtual_router_id ${{UNDEF}}\n}}\n"));
    let e = load_err(&main, "x");
    assert_eq!(
        e.to_string(),
        format!(
            "{}:6:23: 'UNDEF' is not defined (keepalived would leave '${{UNDEF}}' in place and read its braces as a block)",
            main.display()
        )
    );
    keepalived_agrees("undefined_references", &main, "x", false);
}

#[test]
fn parameterised_definitions_are_only_the_builtins() {
    let dir = temp_dir("params");
    let main = write(&dir, "k.conf", "$ADDR(a,b)=10.0.$a.$b\n");
    let e = load_err(&main, "x");
    assert_eq!(
        e.to_string(),
        format!("{}:1:1: '$ADDR(...)=' is not a definition: keepalived has no parameterised definitions (only the built-in ${{_RANDOM MIN MAX}} and ${{_ENV NAME}} take parameters), and would read this line as a keyword", main.display())
    );

    let main = write(&dir, "use.conf", "$PRI=100\nvrrp_instance A {\n    virtual_router_id 1\n    priority ${PRI 1 2}\n}\n");
    let e = load_err(&main, "x");
    assert_eq!(
        e.to_string(),
        format!("{}:4:14: 'PRI' takes no parameters: keepalived has no parameterised definitions (only ${{_RANDOM MIN MAX}} and ${{_ENV NAME}} take parameters)", main.display())
    );

    let main = write(
        &dir,
        "random.conf",
        "vrrp_instance A {\n    interface hvt0\n    virtual_router_id ${_RANDOM 7 7}\n    priority ${_RANDOM 1 99}\n    virtual_ipaddress {\n        192.0.2.7/24\n    }\n}\n",
    );
    let l = load(&main, "x");
    assert_eq!(l.config.vrrp_instances[0].virtual_router_id, 7);
    assert!((1..=99).contains(&l.config.vrrp_instances[0].priority));

    let main = write(&dir, "badrandom.conf", "vrrp_instance A {\n    virtual_router_id ${_RANDOM 1 2 3}\n}\n");
    assert_eq!(load_err(&main, "x").to_string(), format!("{}:2:23: ${{_RANDOM}} takes 0 to 2 parameters, 3 given", main.display()));
    let main = write(&dir, "badrandom2.conf", "vrrp_instance A {\n    virtual_router_id ${_RANDOM one}\n}\n");
    assert_eq!(load_err(&main, "x").to_string(), format!("{}:2:23: ${{_RANDOM}} takes numbers only (MIN MAX), got 'one'", main.display()));
}

#[test]
fn builtin_definitions() {
    let dir = temp_dir("builtin");
    write(&dir, "sub/check.conf", "vrrp_script chk {\n    script \"${_PWD}/check.sh ${_HASH}${_BANG}\"\n}\n");
    let main = write(
        &dir,
        "keepalived.conf",
        "global_defs {\n    router_id r_${_INSTANCE}\n}\ninclude sub/check.conf\nvrrp_script top {\n    script ${_PWD}/top.sh\n}\n",
    );
    let l = load(&main, "node7");
    assert_eq!(l.config.global.router_id.as_deref(), Some("r_node7"));
    let chk = l.config.script("chk").and_then(|s| s.script.as_ref()).expect("chk");
    assert_eq!(chk.argv, [format!("{}/sub/check.sh", dir.display()), "#!".to_string()]);
    let top = l.config.script("top").and_then(|s| s.script.as_ref()).expect("top");
    assert_eq!(top.argv, [format!("{}/top.sh", dir.display())]);
}

// ---------------------------------------------------------------------------
// ~SEQ and ~LST

#[test]
fn sequences_and_lists_replicate_lines() {
    let dir = temp_dir("seq");
    let main = write(
        &dir,
        "keepalived.conf",
        &format!(
            "{GLOBAL}vrrp_instance A {{\n\
             \x20   interface hvt0\n\
             \x20   virtual_router_id 1\n\
             \x20   virtual_ipaddress {{\n\
             \x20       ~SEQ(A, 3) 192.0.2.${{A}}/24\n\
             \x20       ~SEQ(B, 12, 10) 192.0.2.${{B}}/24\n\
             \x20       ~SEQ(C, 20, 5, 30) 192.0.2.${{C}}/24\n\
             \x20       ~LST(D, 40, 41) 192.0.2.${{D}}/24\n\
             \x20       ~LST({{E, F}}, {{50, 51}}, {{52, 53}}) 192.0.${{E}}.${{F}}/24\n\
             \x20       ~LST(G, 60, 61) ~SEQ(H, 1, 2) 198.51.${{G}}.${{H}}/24\n\
             \x20   }}\n\
             \x20   virtual_ipaddress_excluded {{\n\
             \x20       ~SEQx(X, 0x90, 0x10, 0xc0) fe80::20:${{X}}:1/64\n\
             \x20   }}\n\
             }}\n"
        ),
    );
    let l = load(&main, "x");
    let vi = &l.config.vrrp_instances[0];
    let vips: Vec<String> = vi.virtual_ipaddresses.iter().map(|v| v.address.to_string()).collect();
    assert_eq!(
        vips,
        [
            "192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.12", "192.0.2.11", "192.0.2.10", "192.0.2.20", "192.0.2.25",
            "192.0.2.30", "192.0.2.40", "192.0.2.41", "192.0.50.51", "192.0.52.53", "198.51.60.1", "198.51.60.2",
            "198.51.61.1", "198.51.61.2",
        ]
    );
    let excluded: Vec<String> = vi.virtual_ipaddresses_excluded.iter().map(|v| v.address.to_string()).collect();
    assert_eq!(excluded, ["fe80::20:90:1", "fe80::20:a0:1", "fe80::20:b0:1", "fe80::20:c0:1"]);
    // Replicated lines say which round they are.
    assert_eq!(
        vi.virtual_ipaddresses[1].location.trail(),
        format!(" (with A=2 from the ~SEQ at {}:9:9)", main.display())
    );
    keepalived_agrees("sequences_and_lists_replicate_lines", &main, "x", true);
}

#[test]
fn bad_sequences_are_located() {
    let dir = temp_dir("badseq");
    // A valid body, so that keepalived's verdict is about the ~SEQ/~LST itself.
    let body = "global_defs { router_id r }";
    let seq = "(~SEQ(var, [start,] [step,] end) line)";
    let cases = [
        ("~SEQ(N, 1, 0, 5)", format!("1:9: invalid ~SEQ: the step is 0 {seq}"), true),
        ("~SEQ(N, 5, 1, 1)", format!("1:9: invalid ~SEQ: a step of 1 never goes from 5 to 1 {seq}"), true),
        ("~SEQ(N, a, 3)", "1:9: invalid ~SEQ: a number expected, got 'a'".to_string(), true),
        ("~SEQ(N, 1, 3", format!("1:5: invalid ~SEQ: ')' missing {seq}"), true),
        ("~SEQx(N, -1, 3)", format!("1:10: invalid ~SEQ: ~SEQx takes only numbers that are not negative {seq}"), true),
        ("~SEQ N, 3)", format!("1:6: invalid ~SEQ: '(' expected {seq}"), true),
        ("~SEQUENCE(N, 3)", format!("1:5: invalid ~SEQ: '(' expected {seq}"), true),
        // keepalived takes any variable name, which no reference can then name.
        ("~SEQ(1N, 3)", "1:6: invalid ~SEQ: '1N' is not a variable name (letters, digits and '_', not starting with a digit)".to_string(), false),
        ("~LST(A, 1, {2, 3})", "1:12: invalid ~LST: 2 values for 1 variable(s)".to_string(), true),
        ("~LST(A 1)", "1:8: invalid ~LST: ',' expected after the variable".to_string(), true),
    ];
    for (i, (line, expected, compare)) in cases.into_iter().enumerate() {
        let path = write(&dir, &format!("s{i}.conf"), &format!("{line} {body}\n"));
        let e = load_err(&path, "x");
        assert_eq!(e.to_string(), format!("{}:{expected}", path.display()), "{line}");
        if compare {
            keepalived_agrees("bad_sequences_are_located", &path, "x", false);
        }
    }
    // The same body with a good ~SEQ is accepted by both.
    let path = write(&dir, "good.conf", &format!("~SEQ(N, 1, 2) {body}\n"));
    load(&path, "x");
    keepalived_agrees("bad_sequences_are_located", &path, "x", true);
}

// ---------------------------------------------------------------------------
// include

fn instance(name: &str, vrid: u8) -> String {
    format!("vrrp_instance {name} {{\n    interface hvt0\n    virtual_router_id {vrid}\n    virtual_ipaddress {{\n        192.0.2.{vrid}/24\n    }}\n}}\n")
}

#[test]
fn include_brace_and_wildcard_globs() {
    let dir = temp_dir("glob");
    write(&dir, "a.conf", &instance("A", 1));
    write(&dir, "b.conf", &instance("B", 2));
    write(&dir, "conf.d/x/1.conf", &instance("X1", 3));
    write(&dir, "conf.d/x/2.conf", &instance("X2", 4));
    write(&dir, "conf.d/y/1.conf", &instance("Y1", 5));
    write(&dir, "conf.d/z/1.conf", &instance("Z1", 6));
    write(&dir, "conf.d/x/.hidden.conf", "garbage {\n");
    let main = write(&dir, "keepalived.conf", &format!("{GLOBAL}include {{b,a}}.conf\ninclude conf.d/{{y,x}}/*.conf\n"));
    let l = load(&main, "x");
    let names: Vec<&str> = l.config.vrrp_instances.iter().map(|i| i.name.as_str()).collect();
    // Alternatives in the order written, each alternative's matches sorted.
    assert_eq!(names, ["B", "A", "Y1", "X1", "X2"]);
    assert!(include_warnings(&l).is_empty(), "{:?}", warnings(&l));
    keepalived_agrees("include_brace_and_wildcard_globs", &main, "x", true);
}

#[test]
fn relative_includes_resolve_from_the_including_file() {
    let dir = temp_dir("rel");
    write(&dir, "sub/inner.conf", "include leaf.conf\ninclude ../top.conf\n");
    write(&dir, "sub/leaf.conf", &instance("LEAF", 1));
    write(&dir, "top.conf", &instance("TOP", 2));
    // A block may open in one file and close in another, as keepalived reads includes line by line.
    write(&dir, "sub/open.conf", "vrrp_instance SPLIT {\n    interface hvt0\n    virtual_ipaddress {\n        192.0.2.3/24\n    }\n");
    let main = write(&dir, "keepalived.conf", &format!("{GLOBAL}include sub/inner.conf\ninclude sub/open.conf\n    virtual_router_id 3\n}}\n"));
    let l = load(&main, "x");
    let names: Vec<&str> = l.config.vrrp_instances.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["LEAF", "TOP", "SPLIT"]);
    assert!(l.config.vrrp_instances[0].location.file.ends_with("sub/leaf.conf"));
    keepalived_agrees("relative_includes_resolve_from_the_including_file", &main, "x", true);
}

#[test]
fn include_checks_decide_between_warning_and_error() {
    let dir = temp_dir("checks");
    std::fs::create_dir_all(dir.join("empty")).expect("mkdir");
    write(&dir, "a.conf", &instance("A", 1));
    let m = |name: &str, text: &str| write(&dir, name, &format!("{GLOBAL}{text}\n"));

    // A missing plain include: a warning. keepalived logs it and goes on.
    let main = m("missing.conf", "include nothere.conf");
    let l = load(&main, "x");
    assert_eq!(
        include_warnings(&l),
        [format!(
            "{}:5:9: include: '{}/nothere.conf' does not exist; skipped (keepalived only warns; 'includem' or include_check match makes it an error)",
            main.display(),
            dir.display()
        )]
    );
    keepalived_agrees("include_checks_decide_between_warning_and_error", &main, "x", true);

    // A wildcard that matches nothing: silent.
    let main = m("empty.conf", "include empty/*.conf");
    assert!(include_warnings(&load(&main, "x")).is_empty());
    keepalived_agrees("include_checks_decide_between_warning_and_error", &main, "x", true);

    // includem: a missing file is an error; includew: so is a wildcard matching nothing.
    let main = m("includem.conf", "includem nothere.conf");
    assert_eq!(
        load_err(&main, "x").to_string(),
        format!("{}:5:10: cannot read '{}/nothere.conf': included file not found", main.display(), dir.display())
    );
    keepalived_agrees("include_checks_decide_between_warning_and_error", &main, "x", false);
    let main = m("includew.conf", "includew empty/*.conf");
    assert_eq!(load_err(&main, "x").to_string(), format!("{}:5:10: include: no file matches '{}/empty/*.conf'", main.display(), dir.display()));
    keepalived_agrees("include_checks_decide_between_warning_and_error", &main, "x", false);

    // A brace alternative that is missing: the others are read, with a warning; includeb
    // makes it an error.
    let main = m("brace.conf", "include {a,nothere}.conf");
    let l = load(&main, "x");
    assert_eq!(l.config.vrrp_instances.len(), 1);
    assert_eq!(include_warnings(&l).len(), 1, "{:?}", warnings(&l));
    keepalived_agrees("include_checks_decide_between_warning_and_error", &main, "x", true);
    let main = m("braceb.conf", "includeb {a,nothere}.conf");
    assert!(load_err(&main, "x").to_string().contains("include: some of the files"));
    keepalived_agrees("include_checks_decide_between_warning_and_error", &main, "x", false);

    // include_check in global_defs applies to the includes after it.
    let main = write(&dir, "check.conf", "global_defs {\n    dynamic_interfaces\n    include_check match\n}\ninclude nothere.conf\n");
    assert!(matches!(load_err(&main, "x"), ConfigError::Io { .. }));
    keepalived_agrees("include_checks_decide_between_warning_and_error", &main, "x", false);
    // ... and keepalived's -e checks everything from the start.
    let main = m("all.conf", "include nothere.conf");
    let opts = Options { config_id: "x".into(), include_check: IncludeCheck::ALL };
    assert!(load_with(&main, &opts).is_err());

    // keepalived skips an executable file that a pattern matches.
    write(&dir, "exec.d/a.conf", &instance("E1", 7));
    let exe = write(&dir, "exec.d/b.conf", &instance("E2", 8));
    std::fs::set_permissions(&exe, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
    let main = m("exec.conf", "include exec.d/*.conf");
    let l = load(&main, "x");
    assert_eq!(l.config.vrrp_instances.len(), 1);
    assert!(include_warnings(&l)[0].contains("is not a regular non-executable file; skipped"), "{:?}", warnings(&l));
    keepalived_agrees("include_checks_decide_between_warning_and_error", &main, "x", true);
}

#[test]
fn include_loop_is_an_error_naming_the_chain() {
    let dir = temp_dir("loop");
    let a = write(&dir, "a.conf", "include b.conf\n");
    let b = write(&dir, "b.conf", "\ninclude a.conf\n");
    let e = load_err(&a, "x");
    assert_eq!(
        e.to_string(),
        format!(
            "{b}:2:9: include cycle: {a} -> {b} -> {a} (in a file included from {a}:1:9)",
            a = a.display(),
            b = b.display()
        )
    );
}

// ---------------------------------------------------------------------------
// Quoting, escapes, comments

#[test]
fn quoted_words_reach_the_sections_intact() {
    let src = "notify_master \"/usr/local/bin/notify.sh 'a b' \\\"c\\\"\" keepalived_script users\n\
               notify_backup '/usr/local/bin/x.sh arg' root\n\
               router_id it's\n\
               x \"{braces} # not a comment\" \"\" y # a comment\n";
    let nodes = Loader::with_options(Options::with_config_id("x")).load_str(Arc::from(Path::new("q.conf")), src).expect("parses");
    let args = |i: usize| nodes[i].args.iter().map(|a| (a.text.as_str(), a.quoted)).collect::<Vec<_>>();
    assert_eq!(args(0), [("/usr/local/bin/notify.sh 'a b' \\\"c\\\"", true), ("keepalived_script", false), ("users", false)]);
    assert_eq!(args(1), [("/usr/local/bin/x.sh arg", true), ("root", false)]);
    assert_eq!(args(2), [("it's", false)]);
    assert_eq!(args(3), [("{braces} # not a comment", true), ("", true), ("y", false)]);
    assert_eq!((nodes[3].args[1].loc.line, nodes[3].args[1].loc.col), (4, 30));
    // The command's escapes are decoded once, when it is split.
    assert_eq!(split_command(&nodes[0].args[0].text).expect("splits"), ["/usr/local/bin/notify.sh", "a b", "\"c\""]);
}

#[test]
fn script_escapes_follow_keepalived_conf_5() {
    // The example of keepalived.conf(5), "Quoted strings".
    let src = "$SG_NAME=SG1\n$INST=low\n$USER=user\n\
               notify_master \"/etc/keepalived/notify_event.sh ' spaces\\\\x20f\\x69le ' '\\\"s p a c e \\\"' ${SG_NAME}.$INST master\" $USER group\n";
    let nodes = Loader::with_options(Options::with_config_id("x")).load_str(Arc::from(Path::new("q.conf")), src).expect("parses");
    let n = &nodes[0];
    assert_eq!(n.args.len(), 3);
    assert_eq!((n.args[1].text.as_str(), n.args[2].text.as_str()), ("user", "group"));
    assert_eq!(
        split_command(&n.args[0].text).expect("splits"),
        ["/etc/keepalived/notify_event.sh", " spaces\\x20file ", "\"s p a c e \"", "SG1.low", "master"]
    );
}

#[test]
fn comments_and_escaped_comment_characters() {
    let dir = temp_dir("comments");
    let main = write(
        &dir,
        "keepalived.conf",
        "global_defs {  # opens\n    router_id a\\#b\\!c ! a comment\n    notification_email_from \"x#y!z\" # another\n! a whole line\n# another whole line\n    smtp_server 192.0.2.1 25#glued\n}\n",
    );
    let l = load(&main, "x");
    assert_eq!(l.config.global.router_id.as_deref(), Some("a#b!c"));
    assert_eq!(l.config.global.notification_email_from.as_deref(), Some("x#y!z"));
    assert_eq!(l.config.global.smtp_server.as_ref().map(|s| s.port), Some(25));
}

#[test]
fn backslash_continues_only_definitions() {
    let dir = temp_dir("cont");
    let main = write(&dir, "keepalived.conf", "global_defs {\n    router_id r1 \\\n}\n");
    let l = load(&main, "x");
    // As in keepalived: the blanks before the '\' go, the '\' stays.
    assert_eq!(l.config.global.router_id.as_deref(), Some("r1\\"));
    let w = warnings(&l);
    assert!(
        w.contains(&format!(
            "{}:2:18: a '\\' at the end of a line continues only a $NAME= definition (keepalived.conf(5)); here it is kept as a character",
            main.display()
        )),
        "{w:?}"
    );
}

#[test]
fn unterminated_quote_is_located() {
    let dir = temp_dir("quote");
    let main = write(&dir, "keepalived.conf", "global_defs {\n    router_id \"abc\n}\n");
    assert_eq!(load_err(&main, "x").to_string(), format!("{}:2:15: unterminated quoted string", main.display()));
    keepalived_agrees("unterminated_quote_is_located", &main, "x", false);
    // Also on a line that a condition drops: keepalived reads comments and quotes first.
    let main = write(&dir, "dropped.conf", "@other router_id \"abc\n");
    assert_eq!(load_err(&main, "x").to_string(), format!("{}:1:18: unterminated quoted string", main.display()));
}

// ---------------------------------------------------------------------------
// expand (hav-linux --check -d)

#[test]
fn expand_prints_the_configuration_the_sections_read() {
    let dir = temp_dir("expand");
    write(&dir, "vips.conf", "virtual_ipaddress {\n    ~SEQ(N, 2) 192.0.2.${N}/24\n}\n");
    let main = write(
        &dir,
        "keepalived.conf",
        "$PRI=150\nglobal_defs {\n    dynamic_interfaces\n    router_id a\\#1   # comment\n}\nvrrp_instance VI_1 {\n    interface hvt0\n    virtual_router_id 1\n    @main priority $PRI\n    @^main priority 50\n    include vips.conf\n}\n",
    );
    let text = expand(&main, "main").expect("expands");
    let m = main.display();
    let v = dir.join("vips.conf");
    assert_eq!(
        text,
        format!(
            "# from {m}:2\nglobal_defs {{\n    dynamic_interfaces\n    router_id a\\#1\n}}\nvrrp_instance VI_1 {{\n    interface hvt0\n    virtual_router_id 1\n    priority 150\n# from {v}:1\n    virtual_ipaddress {{\n        192.0.2.1/24\n        192.0.2.2/24\n    }}\n# from {m}:12\n}}\n",
            v = v.display()
        )
    );
    // The expanded text is the same configuration.
    let again = write(&dir, "expanded.conf", &text);
    let (a, b) = (load(&main, "main").config, load(&again, "other").config);
    assert_eq!(a.global.router_id, b.global.router_id);
    let (ia, ib) = (&a.vrrp_instances[0], &b.vrrp_instances[0]);
    assert_eq!((ia.priority, &ia.virtual_ipaddresses.len()), (ib.priority, &ib.virtual_ipaddresses.len()));
    keepalived_agrees("expand_prints_the_configuration_the_sections_read", &again, "other", true);
}
