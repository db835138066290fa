//! `hav-linux mh-lookup`: the real server of a flow from the config, and the comparison of
//! directors' configs (exit status 1 when their mh tables differ), as an operator runs it.

use std::path::PathBuf;
use std::process::Command;

fn conf(dir: &std::path::Path, name: &str, w2: u32, algo: &str) -> PathBuf {
    let p = dir.join(name);
    let text = format!(
        "virtual_server 192.0.2.10 80 {{\n  lb_algo {algo}\n  mh-fallback\n  mh-port\n  lb_kind DR\n  inhibit_on_failure\n  announce\n  \
         real_server 10.0.0.1 80 {{\n  }}\n  real_server 10.0.0.2 80 {{\n    weight {w2}\n  }}\n  real_server 10.0.0.3 80 {{\n  }}\n}}\n"
    );
    std::fs::write(&p, text).expect("write conf");
    p
}

fn run(args: &[&str]) -> (i32, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_hav-linux")).args(args).output().expect("running hav-linux");
    (o.status.code().unwrap_or(-1), String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

#[test]
fn mh_lookup_prints_the_real_server_and_compares_directors() {
    let dir = std::env::temp_dir().join(format!("hav-mh-lookup-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let d1 = conf(&dir, "d1.conf", 1, "mh");
    let d2 = conf(&dir, "d2.conf", 1, "mh");
    let d3 = conf(&dir, "d3.conf", 2, "mh");
    let (d1s, d2s, d3s) = (d1.to_str().expect("utf-8"), d2.to_str().expect("utf-8"), d3.to_str().expect("utf-8"));

    let (rc, out, err) = run(&["-f", d1s, "mh-lookup", "--vs", "192.0.2.10:80", "--src", "198.51.100.7:40000", "--compare", d2s]);
    assert_eq!(rc, 0, "{out}{err}");
    let picks: Vec<&str> = out.lines().filter(|l| l.contains(" => ")).map(|l| l.rsplit(" => ").next().unwrap_or("")).collect();
    assert_eq!(picks.len(), 2, "{out}");
    assert_eq!(picks[0], picks[1], "same config, same real server: {out}");
    assert!(picks[0].starts_with("10.0.0."), "{out}");
    assert!(out.contains("d2.conf: same mh table"), "{out}");

    // Source ports are hashed (mh-port): flows of one client spread over the real servers.
    let mut seen = std::collections::BTreeSet::new();
    for port in 40000..40040 {
        let src = format!("198.51.100.7:{port}");
        let (rc, out, _) = run(&["-f", d1s, "mh-lookup", "--vs", "192.0.2.10:80", "--src", &src]);
        assert_eq!(rc, 0);
        seen.insert(out.lines().last().unwrap_or("").rsplit(" => ").next().unwrap_or("").to_owned());
    }
    assert_eq!(seen.len(), 3, "{seen:?}");

    let (rc, out, err) = run(&["-f", d1s, "mh-lookup", "--vs", "192.0.2.10:80", "--compare", d2s, "--compare", d3s]);
    assert_eq!(rc, 1, "{out}{err}");
    assert!(out.contains("d3.conf: mh table DIFFERS in ") && out.contains("10.0.0.2:80: weight 1 here, 2 there"), "{out}");
    assert!(err.contains("differ"), "{err}");

    // Not mh: no per-flow answer, and the config warns at its announce line.
    let wlc = conf(&dir, "wlc.conf", 1, "wlc");
    let (rc, _, err) = run(&["-f", wlc.to_str().expect("utf-8"), "mh-lookup", "--vs", "192.0.2.10:80", "--src", "198.51.100.7:1"]);
    assert_eq!(rc, 1);
    assert!(err.contains("wlc.conf:7:") && err.contains("lb_algo mh"), "{err}");
    assert!(err.contains("not mh"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
