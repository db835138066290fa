//! A reader of keepalived's text state dumps: `keepalived.data` (SIGUSR1) and
//! `keepalived.stats` (SIGUSR2), written from the layout keepalived 2.2 prints, so that the
//! tests read keepalived's files and hav's with the same code.
//!
//! The layout: sections open with a `------< Title >------` line (the stats file has none: it
//! is one untitled section). Below, each line is indented, and a line indented deeper than the
//! one before it belongs to that line: ` VRRP Instance = VI_1` holds `   State = MASTER`, which
//! holds nothing; `   Virtual IP (1):` holds its addresses. A line is read as a key and a value:
//!
//! - `Key = value` (the first ` = `);
//! - `Key:` or `Key :` ending the line, a heading whose value is empty;
//! - `Key: value` or `Key : value` (the first `: `);
//! - a few fixed prefixes with the value after a space (`Multicast address 224.0.0.18`,
//!   `fd_in 13, fd_out 14`, `Default script uid:gid 0:0`, ...);
//! - anything else is a key alone (`Using Native IPv6`, a list item such as
//!   `10.0.0.200/24 dev eth0 scope global set`).

/// Lines whose value follows a fixed prefix and a space.
const PREFIXES: &[&str] = &[
    "Multicast address",
    "fd_in",
    "Default script uid:gid",
    "libnftnl version",
    "Num member fault",
    "Reset ARP config counter",
    "Original arp_ignore",
    "Original arp_filter",
    "Original promote_secondaries",
    "Reset promote_secondaries counter",
];

/// One line and the lines it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The key (trimmed).
    pub key: String,
    /// The value (trimmed; empty for headings and lone keys).
    pub value: String,
    /// The lines indented below it.
    pub children: Vec<Node>,
}

/// A `------< Title >------` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// The title (empty for the stats file).
    pub title: String,
    /// Its top-level lines.
    pub entries: Vec<Node>,
}

/// A parsed dump.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dump {
    /// The sections, in file order.
    pub sections: Vec<Section>,
}

/// Lines keepalived writes for every interface that hav does not know (interfaces with IPv6
/// addresses add whether the kernel forwards IPv6 there).
pub const IF_ONLY_KEEPALIVED: &[&str] = &[
    "Seen up",
    "Delayed state change running",
    "Up debounce timer",
    "Down debounce timer",
    "MTU",
    "HW Type",
    "NIC netlink status update",
    "Reset ARP config counter",
    "Original arp_ignore",
    "Original arp_filter",
    "Original promote_secondaries",
    "Reset promote_secondaries counter",
    "Not IPv6 forwarding",
    "IPv6 forwarding",
];

/// Splits one trimmed line into key and value.
pub fn split_line(line: &str) -> (String, String) {
    let line = line.trim();
    if let Some((k, v)) = line.split_once(" = ") {
        return (k.trim().to_owned(), v.trim().to_owned());
    }
    if let Some(k) = line.strip_suffix(" =") {
        return (k.trim().to_owned(), String::new());
    }
    if let Some(k) = line.strip_suffix(':') {
        return (k.trim().to_owned(), String::new());
    }
    if let Some((k, v)) = line.split_once(": ") {
        return (k.trim().to_owned(), v.trim().to_owned());
    }
    for p in PREFIXES {
        if let Some(rest) = line.strip_prefix(p).and_then(|r| r.strip_prefix(' ')) {
            return ((*p).to_owned(), rest.trim().to_owned());
        }
    }
    (line.to_owned(), String::new())
}

/// Parses a `keepalived.data` or `keepalived.stats` text.
pub fn parse(text: &str) -> Dump {
    let mut sections: Vec<Section> = Vec::new();
    // The lines of the section being read, with their indentation, flat; nested at its end.
    let mut flat: Vec<(usize, Node)> = Vec::new();
    let mut title: Option<String> = None;
    let finish = |title: Option<String>, flat: &mut Vec<(usize, Node)>, sections: &mut Vec<Section>| {
        if title.is_none() && flat.is_empty() {
            return;
        }
        let entries = nest(std::mem::take(flat));
        sections.push(Section { title: title.unwrap_or_default(), entries });
    };
    for raw in text.lines() {
        let line = raw.trim_end();
        if line.trim().is_empty() {
            continue;
        }
        if let Some(t) = line.strip_prefix("------<").and_then(|r| r.strip_suffix(">------")) {
            finish(title.take(), &mut flat, &mut sections);
            title = Some(t.trim().to_owned());
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        let (key, value) = split_line(line);
        flat.push((indent, Node { key, value, children: Vec::new() }));
    }
    finish(title, &mut flat, &mut sections);
    Dump { sections }
}

/// Builds the tree of lines from their indentation.
fn nest(flat: Vec<(usize, Node)>) -> Vec<Node> {
    // A stack of open lines; a line closes every open line indented as deep or deeper.
    let mut stack: Vec<(usize, Node)> = Vec::new();
    let mut top: Vec<Node> = Vec::new();
    let close = |stack: &mut Vec<(usize, Node)>, top: &mut Vec<Node>| {
        if let Some((_, n)) = stack.pop() {
            match stack.last_mut() {
                Some((_, parent)) => parent.children.push(n),
                None => top.push(n),
            }
        }
    };
    for (indent, node) in flat {
        while stack.last().is_some_and(|(i, _)| *i >= indent) {
            close(&mut stack, &mut top);
        }
        stack.push((indent, node));
    }
    while !stack.is_empty() {
        close(&mut stack, &mut top);
    }
    top
}

impl Dump {
    /// The section called `title` (`""` for the stats file).
    pub fn section(&self, title: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.title == title)
    }

    /// The titles, in order.
    pub fn titles(&self) -> Vec<&str> {
        self.sections.iter().map(|s| s.title.as_str()).collect()
    }

    /// The record of VRRP instance `name`: in the `VRRP Topology` section of a data dump
    /// (` VRRP Instance = NAME`), or in a stats file (`VRRP Instance: NAME`).
    pub fn instance(&self, name: &str) -> Option<&Node> {
        let s = self.section("VRRP Topology").or_else(|| self.section(""))?;
        s.record("VRRP Instance", name)
    }
}

impl Section {
    /// The top-level line `key = value`.
    pub fn record(&self, key: &str, value: &str) -> Option<&Node> {
        self.entries.iter().find(|n| n.key == key && n.value == value)
    }

    /// The top-level line with this key (the first).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries.iter().find(|n| n.key == key).map(|n| n.value.as_str())
    }

    /// The keys of the top-level lines, in order.
    pub fn keys(&self) -> Vec<String> {
        self.entries.iter().map(|n| n.key.clone()).collect()
    }

    /// The section as one line holding its top-level lines (for [`diff`]).
    pub fn as_node(&self) -> Node {
        Node { key: self.title.clone(), value: String::new(), children: self.entries.clone() }
    }
}

/// One difference between two records: a path ([`Node::paths`]) with its value on each side,
/// `None` on the side that lacks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// The path (`Advertisements/Received`).
    pub path: String,
    /// The value in the first record.
    pub a: Option<String>,
    /// The value in the second record.
    pub b: Option<String>,
}

impl Difference {
    /// Said with `names` naming the sides: `only a: PATH = "v"` or `PATH: a "v", b "w"`.
    pub fn describe(&self, names: (&str, &str)) -> String {
        match (&self.a, &self.b) {
            (Some(v), None) => format!("only {}: {} = {v:?}", names.0, self.path),
            (None, Some(w)) => format!("only {}: {} = {w:?}", names.1, self.path),
            (v, w) => format!("{}: {} {:?}, {} {:?}", self.path, names.0, v.as_deref().unwrap_or(""), names.1, w.as_deref().unwrap_or("")),
        }
    }
}

/// Every path that only one of two records (or sections, with [`Section::as_node`]) has, and
/// every path whose values differ: the first record's paths in order, then those only the
/// second has.
pub fn differences(a: &Node, b: &Node) -> Vec<Difference> {
    fn values(n: &Node, prefix: &str, out: &mut Vec<(String, String)>) {
        for c in &n.children {
            let p = if prefix.is_empty() { c.key.clone() } else { format!("{prefix}/{}", c.key) };
            out.push((p.clone(), c.value.clone()));
            values(c, &p, out);
        }
    }
    let (mut va, mut vb) = (Vec::new(), Vec::new());
    values(a, "", &mut va);
    values(b, "", &mut vb);
    let mut out = Vec::new();
    for (p, v) in &va {
        match vb.iter().find(|(q, _)| q == p) {
            None => out.push(Difference { path: p.clone(), a: Some(v.clone()), b: None }),
            Some((_, w)) if w != v => out.push(Difference { path: p.clone(), a: Some(v.clone()), b: Some(w.clone()) }),
            Some(_) => {}
        }
    }
    for (p, w) in &vb {
        if !va.iter().any(|(q, _)| q == p) {
            out.push(Difference { path: p.clone(), a: None, b: Some(w.clone()) });
        }
    }
    out
}

/// The [`differences`] between two records, except the paths starting with one of `ignore`,
/// each said with `names` naming the sides ([`Difference::describe`]).
pub fn diff(a: &Node, b: &Node, names: (&str, &str), ignore: &[&str]) -> Vec<String> {
    differences(a, b)
        .into_iter()
        .filter(|d| !ignore.iter().any(|i| d.path.starts_with(i)))
        .map(|d| d.describe(names))
        .collect()
}

/// Asks `node` for the dump `files` (`keepalived.data`, `keepalived.stats`, `keepalived.json`)
/// with their signals, after removing old ones from `dir` (the daemon's `TMPDIR`), and returns
/// their texts in the order asked, once all are there.
///
/// # Panics
/// When a file name is not one of the three, or the files are not all there within 5 s.
pub fn request(node: &crate::peers::Node<'_>, dir: &std::path::Path, files: &[&str]) -> Vec<String> {
    for f in files {
        let _ = std::fs::remove_file(dir.join(f));
    }
    for f in files {
        node.signal_raw(match *f {
            "keepalived.data" => nix::libc::SIGUSR1,
            "keepalived.stats" => nix::libc::SIGUSR2,
            "keepalived.json" => nix::libc::SIGRTMIN() + 2,
            other => panic!("no dump is called {other}"),
        });
    }
    let all = || files.iter().all(|f| dir.join(f).exists());
    assert!(
        crate::peers::wait_until(std::time::Duration::from_secs(5), all).is_some(),
        "{:?} wrote {:?} of {files:?} in {} within 5 s",
        node.daemon,
        files.iter().filter(|f| dir.join(f).exists()).collect::<Vec<_>>(),
        dir.display()
    );
    // hav writes by rename: once there, complete. keepalived renames its file into place
    // before writing: read until the text stops growing.
    files
        .iter()
        .map(|f| {
            let read = || std::fs::read_to_string(dir.join(f)).unwrap_or_else(|e| panic!("reading {f}: {e}"));
            let mut text = read();
            loop {
                std::thread::sleep(std::time::Duration::from_millis(50));
                let again = read();
                if again == text {
                    return text;
                }
                text = again;
            }
        })
        .collect()
}

impl Node {
    /// The value of the line below with this key (`a/b` goes down through `a`).
    pub fn get(&self, path: &str) -> Option<&str> {
        self.child(path).map(|n| n.value.as_str())
    }

    /// The line below with this key (`a/b` goes down through `a`).
    pub fn child(&self, path: &str) -> Option<&Node> {
        let mut n = self;
        for k in path.split('/') {
            n = n.children.iter().find(|c| c.key == k)?;
        }
        Some(n)
    }

    /// The keys of the lines held at any depth, as paths (`Advertisements/Received`), in order.
    /// List items (the lines under `Virtual IP (1)`, ...) are keys too.
    pub fn paths(&self) -> Vec<String> {
        let mut out = Vec::new();
        fn walk(n: &Node, prefix: &str, out: &mut Vec<String>) {
            for c in &n.children {
                let p = if prefix.is_empty() { c.key.clone() } else { format!("{prefix}/{}", c.key) };
                out.push(p.clone());
                walk(c, &p, out);
            }
        }
        walk(self, "", &mut out);
        out
    }

    /// The keys of the lines directly below (list items as written).
    pub fn items(&self, path: &str) -> Vec<&str> {
        self.child(path).map(|n| n.children.iter().map(|c| c.key.as_str()).collect()).unwrap_or_default()
    }

    /// The heading below whose key starts with `prefix` (`Virtual IP` finds `Virtual IP (2)`).
    pub fn child_starting(&self, prefix: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.key.starts_with(prefix))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DATA: &str = "------< Global definitions >------
 Router ID = VI_1
 Default script uid:gid 0:0
 DBus service name = 
------< VRRP Topology >------
 VRRP Instance = VI_1
   VRRP Version = 2
   State = MASTER
   Flags: none
   Multicast address 224.0.0.18
   Virtual IP (1):
     10.0.0.200/24 dev eth0 scope global set
   Check unicast src : no
   Unicast Peer :
     10.0.0.2 min_ttl 0 max_ttl 255
   fd_in 13, fd_out 14
 VRRP Instance = VI_6
   Using Native IPv6
   Master router = fe80::1
   Virtual IP (1):
     fd00::210/64 dev eth0 scope global preferred_lft forever
";

    const STATS: &str = "VRRP Instance: VI_1
  Advertisements:
    Received: 0
    Sent: 3
  Became master: 1
  Priority Zero:
    Received: 0
    Sent: 0
";

    #[test]
    fn test_parse_data() {
        let d = parse(DATA);
        assert_eq!(d.titles(), ["Global definitions", "VRRP Topology"]);
        let g = d.section("Global definitions").unwrap();
        assert_eq!(g.get("Router ID"), Some("VI_1"));
        assert_eq!(g.get("Default script uid:gid"), Some("0:0"));
        assert_eq!(g.get("DBus service name"), Some(""));
        let i = d.instance("VI_1").unwrap();
        assert_eq!(i.get("State"), Some("MASTER"));
        assert_eq!(i.get("Flags"), Some("none"));
        assert_eq!(i.get("Multicast address"), Some("224.0.0.18"));
        assert_eq!(i.get("Check unicast src"), Some("no"));
        assert_eq!(i.get("fd_in"), Some("13, fd_out 14"));
        assert_eq!(i.items("Virtual IP (1)"), ["10.0.0.200/24 dev eth0 scope global set"]);
        assert_eq!(i.items("Unicast Peer"), ["10.0.0.2 min_ttl 0 max_ttl 255"]);
        let v6 = d.instance("VI_6").unwrap();
        assert_eq!(v6.get("Master router"), Some("fe80::1"));
        assert!(v6.child("Using Native IPv6").is_some());
        assert_eq!(v6.child_starting("Virtual IP").unwrap().children.len(), 1);
    }

    #[test]
    fn test_diff() {
        let a = parse(DATA);
        let b = parse(&DATA.replace("State = MASTER", "State = BACKUP").replace("   Flags: none\n", ""));
        let (x, y) = (a.instance("VI_1").unwrap(), b.instance("VI_1").unwrap());
        assert_eq!(diff(x, y, ("k", "h"), &[]), ["State: k \"MASTER\", h \"BACKUP\"", "only k: Flags = \"none\""]);
        assert!(diff(x, y, ("k", "h"), &["State", "Flags"]).is_empty());
        let g = a.section("Global definitions").unwrap().as_node();
        assert!(diff(&g, &g, ("k", "h"), &[]).is_empty());
    }

    #[test]
    fn test_parse_stats() {
        let d = parse(STATS);
        assert_eq!(d.titles(), [""]);
        let i = d.instance("VI_1").unwrap();
        assert_eq!(i.get("Advertisements/Sent"), Some("3"));
        assert_eq!(i.get("Priority Zero/Received"), Some("0"));
        assert_eq!(
            i.paths(),
            [
                "Advertisements",
                "Advertisements/Received",
                "Advertisements/Sent",
                "Became master",
                "Priority Zero",
                "Priority Zero/Received",
                "Priority Zero/Sent"
            ]
        );
    }
}
