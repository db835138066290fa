//! The operators' keepalived.conf corpus in `tests/fixtures/corpus/`: its index (where each
//! file comes from, and whether keepalived accepts it), the interfaces a file names, and
//! keepalived's verdict on a file.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The corpus directory.
pub fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/corpus")
}

/// One line of `INDEX.tsv`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The file name in the corpus directory.
    pub file: String,
    /// Repository, path and commit it was taken from.
    pub source: String,
    /// `accepted` (`keepalived -t` passes), `runs` (keepalived runs it, warning about values it
    /// drops or defaults) or `rejected`.
    pub expect: String,
}

impl Entry {
    /// The file's path.
    pub fn path(&self) -> PathBuf {
        dir().join(&self.file)
    }

    /// The file's text.
    ///
    /// # Panics
    /// When the file cannot be read.
    pub fn text(&self) -> String {
        std::fs::read_to_string(self.path()).unwrap_or_else(|e| panic!("{}: {e}", self.file))
    }
}

/// The index, in file order.
///
/// # Panics
/// When `INDEX.tsv` cannot be read.
pub fn entries() -> Vec<Entry> {
    let index = std::fs::read_to_string(dir().join("INDEX.tsv")).expect("corpus index");
    index
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            let at = |i: usize| f.get(i).copied().unwrap_or_default();
            Entry { file: at(0).to_owned(), source: format!("{} {} {}", at(1), at(2), at(3)), expect: at(4).to_owned() }
        })
        .collect()
}

/// A line without its comment (`#` or `!` to the end).
fn uncommented(line: &str) -> &str {
    line.split(['#', '!']).next().unwrap_or("")
}

/// Interface names the file uses (after `interface`, `dev`, `default_interface`,
/// `lvs_sync_daemon_interface`, in `track_interface` blocks), sorted, for a namespace where
/// they exist.
pub fn interface_names(text: &str) -> Vec<String> {
    let valid = |s: &str| {
        !s.is_empty() && s.len() <= 15 && s.chars().all(|c| c.is_ascii_alphanumeric() || "._-@".contains(c)) && s != "lo"
    };
    let mut out = Vec::new();
    let mut in_track = false;
    for line in text.lines() {
        let words: Vec<&str> = uncommented(line).split_whitespace().collect();
        if words.first() == Some(&"track_interface") {
            in_track = true;
            continue;
        }
        if in_track {
            if words.contains(&"}") {
                in_track = false;
            }
            if let Some(w) = words.first().filter(|w| **w != "}") {
                out.push((*w).to_string());
            }
        }
        for pair in words.windows(2) {
            if matches!(pair[0], "interface" | "dev" | "default_interface" | "lvs_sync_daemon_interface") {
                out.push(pair[1].to_string());
            }
        }
    }
    out.retain(|n| valid(n));
    out.sort();
    out.dedup();
    out
}

/// The names of the `vrrp_instance` blocks, in file order.
pub fn vrrp_instances(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| {
            let mut w = uncommented(l).split_whitespace();
            (w.next() == Some("vrrp_instance")).then(|| w.next().unwrap_or_default().trim_end_matches('{').to_owned())
        })
        .collect()
}

/// Each `unicast_src_ip` with the `interface` of its `vrrp_instance` block (the block's own
/// `interface` line, before or after it).
pub fn unicast_sources(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let (mut ifname, mut src): (Option<String>, Option<String>) = (None, None);
    let mut flush = |ifname: &mut Option<String>, src: &mut Option<String>| {
        if let (Some(i), Some(s)) = (ifname.take(), src.take()) {
            out.push((i, s));
        }
        *ifname = None;
        *src = None;
    };
    for line in text.lines() {
        let words: Vec<&str> = uncommented(line).split_whitespace().collect();
        match words.as_slice() {
            ["vrrp_instance", ..] => flush(&mut ifname, &mut src),
            ["interface", name, ..] => ifname = Some((*name).to_owned()),
            ["unicast_src_ip", addr, ..] => src = Some((*addr).to_owned()),
            _ => {}
        }
    }
    flush(&mut ifname, &mut src);
    out
}

/// keepalived's verdict on `file` in a fresh network namespace that has the interfaces the
/// file names (so that only the configuration is judged): true when `keepalived -t` passes.
/// `None` when keepalived or unshare is missing.
pub fn keepalived_accepts(file: &Path) -> Option<bool> {
    let text = std::fs::read_to_string(file).ok()?;
    let mut script = String::new();
    for (n, name) in interface_names(&text).iter().enumerate() {
        script.push_str(&format!("ip link add '{name}' type veth peer name hvp{n} 2>/dev/null; "));
    }
    script.push_str(&format!("exec keepalived -t -f '{}' >/dev/null 2>&1", file.display()));
    let out = Command::new("unshare").args(["-n", "sh", "-c", &script]).output().ok()?;
    match out.status.code() {
        Some(0) => Some(true),
        Some(127) | None => None,
        Some(_) => Some(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "vrrp_instance A {
  interface eth0 # uplink
  unicast_src_ip 10.1.1.1
  track_interface {
    eth2
  }
  virtual_ipaddress {
    10.1.1.9 dev eth1
  }
}
# vrrp_instance C {
vrrp_instance B {
  unicast_src_ip 10.2.2.2
  interface ens18
}
";

    #[test]
    fn test_reads_the_text() {
        assert_eq!(interface_names(TEXT), ["ens18", "eth0", "eth1", "eth2"]);
        assert_eq!(vrrp_instances(TEXT), ["A", "B"]);
        assert_eq!(
            unicast_sources(TEXT),
            [("eth0".to_owned(), "10.1.1.1".to_owned()), ("ens18".to_owned(), "10.2.2.2".to_owned())]
        );
    }

    #[test]
    fn test_index_lists_every_file() {
        let e = entries();
        assert!(e.len() >= 50, "{} entries", e.len());
        assert!(e.iter().all(|e| e.path().is_file() && !e.source.trim().is_empty()));
    }
}
