//! hav's metrics as Prometheus itself reads them: hav-linux runs one instance in a namespace
//! with `--metrics` on the namespace's loopback; `promtool check metrics` accepts a scrape, and
//! Debian's Prometheus, started in the same namespace and scraping every second, answers its
//! HTTP API (`/api/v1/query`) with the instance's state and advert counters. The instance's
//! name has double quotes, backslashes and spaces (a quoted name in the config), so the label
//! value goes through the text format's escapes and must come back from Prometheus as the name
//! hav reports on its control socket.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use hav_linux::daemon::control::{self, Request};
use hav_tests::netns::{skip_unless, Lab, Need, Netns};
use hav_tests::peers::{wait_until, workdir, Daemon, Node};
use serde_json::Value;

fn hav() -> Daemon {
    Daemon::Hav(PathBuf::from(env!("CARGO_BIN_EXE_hav-linux")))
}

const METRICS: &str = "127.0.0.1:9650";
const PROMETHEUS: &str = "127.0.0.1:9090";

/// `GET path` from `addr` inside `ns` (HTTP/1.0: no chunking, the server closes); the status
/// code and the body.
fn get(ns: &Netns, addr: &str, path: &str) -> Option<(u16, String)> {
    let (addr, path) = (addr.to_owned(), path.to_owned());
    ns.enter(move || {
        let mut s = std::net::TcpStream::connect(&addr).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        s.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes()).ok()?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).ok()?;
        let text = String::from_utf8(raw).ok()?;
        let (head, body) = text.split_once("\r\n\r\n")?;
        let code = head.split_whitespace().nth(1)?.parse().ok()?;
        Some((code, body.to_owned()))
    })
}

/// The samples of an instant query: each series' labels and value.
fn query(ns: &Netns, promql: &str) -> Vec<(serde_json::Map<String, Value>, f64)> {
    let q: String = promql
        .bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b == b'_' { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect();
    let Some((200, body)) = get(ns, PROMETHEUS, &format!("/api/v1/query?query={q}")) else { return Vec::new() };
    let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    v["data"]["result"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| Some((r["metric"].as_object()?.clone(), r["value"][1].as_str()?.parse().ok()?)))
        .collect()
}

/// The value of the series of `metric` that belongs to instance `name`. Prometheus renames the
/// scraped `instance` label to `exported_instance` (its own `instance` is the target), so the
/// series is found by the value, under whichever label carries it.
fn ours(ns: &Netns, metric: &str, name: &str) -> Option<f64> {
    query(ns, metric).into_iter().find(|(labels, _)| labels.values().any(|v| v == name)).map(|(_, v)| v)
}

/// The text format's escaping of a label value.
fn escaped(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn promtool_check(text: &str) -> (bool, String) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool");
    child.stdin.take().expect("stdin").write_all(text.as_bytes()).expect("writing to promtool");
    let out = child.wait_with_output().expect("promtool");
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), said)
}

fn prometheus_config(dir: &Path) -> PathBuf {
    let p = dir.join("prometheus.yml");
    let text = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: hav\n    \
         scrape_timeout: 1s\n    static_configs:\n      - targets: ['{METRICS}']\n"
    );
    std::fs::write(&p, text).expect("prometheus.yml");
    p
}

#[test]
fn prometheus_reads_hav_metrics() {
    if skip_unless("prometheus_reads_hav_metrics", &[Need::Root, Need::Prometheus]) {
        return;
    }
    let lab = Lab::new(1).expect("lab");
    let ns = &lab.routers[0];
    let conf = "vrrp_instance 'VI \"q\" \\ b' {\n  state BACKUP\n  interface eth0\n  virtual_router_id 51\n  \
                priority 150\n  advert_int 1\n  virtual_ipaddress {\n    10.0.0.200/24\n  }\n}\n";
    let hav = Node::start_with(ns, hav(), conf, &["--metrics", METRICS]);
    assert!(wait_until(Duration::from_secs(10), || hav.holds("10.0.0.200")).is_some(), "hav did not become master");
    let status = control::request(&hav.control_path(), &Request { cmd: "status".into(), instance: None }).expect("status");
    let name = status["instances"][0]["name"].as_str().expect("the instance's name").to_owned();
    assert!(name.contains('"') && name.contains('\\') && name.contains(' '), "{name:?}");

    // promtool accepts a scrape as it is served.
    let (code, text) = get(ns, METRICS, "/metrics").expect("scraping hav");
    assert_eq!(code, 200, "{text}");
    let line = format!("hav_vrrp_state{{instance=\"{}\"}} 2\n", escaped(&name));
    assert!(text.contains(&line), "no {line:?} in:\n{text}");
    let (ok, said) = promtool_check(&text);
    assert!(ok, "promtool check metrics refused hav's metrics:\n{said}\n--- metrics:\n{text}");

    // Prometheus scrapes it and answers for it.
    let dir = workdir("prom");
    let config = prometheus_config(&dir);
    let args = [
        format!("--config.file={}", config.display()),
        format!("--storage.tsdb.path={}", dir.join("data").display()),
        format!("--web.listen-address={PROMETHEUS}"),
        "--log.level=warn".to_owned(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    ns.spawn("prometheus", &args, &dir.join("prometheus.log")).expect("starting prometheus");
    let log = || std::fs::read_to_string(dir.join("prometheus.log")).unwrap_or_default();
    let up = wait_until(Duration::from_secs(30), || query(ns, "up{job=\"hav\"}").iter().any(|(_, v)| *v == 1.0));
    assert!(up.is_some(), "Prometheus never scraped hav successfully; its log:\n{}", log());
    let ours = |metric: &str| ours(ns, metric, &name);
    let state = wait_until(Duration::from_secs(10), || ours("hav_vrrp_state").is_some());
    assert!(state.is_some(), "no hav_vrrp_state for {name:?}: {:?}", query(ns, "hav_vrrp_state"));
    assert_eq!(ours("hav_vrrp_state"), Some(2.0), "state: master");
    assert_eq!(ours("hav_vrrp_priority"), Some(150.0));
    assert_eq!(ours("hav_vrrp_became_master_total"), Some(1.0));
    assert_eq!(ours("hav_vrrp_adverts_rx_total"), Some(0.0), "nobody else advertises");
    // The advert counter moves with the adverts (one a second).
    let first = ours("hav_vrrp_adverts_tx_total").expect("adverts sent");
    assert!(first >= 1.0, "{first}");
    let grew = wait_until(Duration::from_secs(10), || ours("hav_vrrp_adverts_tx_total").is_some_and(|n| n >= first + 2.0));
    assert!(grew.is_some(), "hav_vrrp_adverts_tx_total stayed at {first}");
    let dropped = query(ns, "sum(hav_vrrp_dropped_total)");
    assert_eq!(dropped.first().map(|(_, v)| *v), Some(0.0), "{dropped:?}");
    drop(hav);
    let _ = std::fs::remove_dir_all(dir);
}
