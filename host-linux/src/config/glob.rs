//! The file name patterns of `include`, as keepalived expands them with
//! glob(3) and `GLOB_BRACE | GLOB_MARK`.
//!
//! - `{a,b}` alternatives are expanded first, left to right, and may nest;
//!   each alternative is globbed on its own and its matches are sorted (byte
//!   order), so `{b,a}.conf` gives `b.conf` before `a.conf`;
//! - `*`, `?` and `[...]` (`[!...]`, `[^...]`, ranges) match within one path
//!   component and never match a leading `.`;
//! - `\` makes the next character literal;
//! - a component without wildcards is taken as written, so a pattern with no
//!   wildcards names one file, which may be missing.
//!
//! What did not match is counted the way keepalived counts it (a directory
//! that could not be read, a named file that does not exist), because that
//! decides between "missing" and "matched nothing" (see `include_check` in
//! keepalived.conf(5)).

use std::path::{Component, Path, PathBuf};

/// What a pattern expanded to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Globbed {
    /// The existing paths, alternative by alternative, each sorted.
    pub paths: Vec<PathBuf>,
    /// Named files (no wildcard) that do not exist, and directories that a
    /// wildcard could not be matched in.
    pub missing: usize,
    /// Whether a wildcard had to be matched against a directory.
    pub wildcards: bool,
    /// Whether the pattern has a `{...}` group.
    pub braces: bool,
}

/// Expands `pattern` against the file system.
pub fn glob(pattern: &Path) -> Globbed {
    let text = pattern.to_string_lossy();
    let mut out = Globbed { braces: has_brace(&text), ..Globbed::default() };
    for alt in expand_braces(&text) {
        let mut found = Vec::new();
        glob_one(Path::new(&alt), &mut found, &mut out);
        found.sort_by(|a, b| a.as_os_str().as_encoded_bytes().cmp(b.as_os_str().as_encoded_bytes()));
        out.paths.extend(found);
    }
    out
}

/// Whether `s` has a `{` that is not escaped.
pub fn has_brace(s: &str) -> bool {
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                chars.next();
            }
            '{' => return true,
            _ => {}
        }
    }
    false
}

/// Whether `s` has a `*`, `?` or `[` that is not escaped.
pub fn has_wildcard(s: &str) -> bool {
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                chars.next();
            }
            '*' | '?' | '[' => return true,
            _ => {}
        }
    }
    false
}

/// Expands the first `{...}` group of `s` and then, recursively, the rest.
/// An unbalanced `{` is literal.
pub fn expand_braces(s: &str) -> Vec<String> {
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 2,
            '{' => {
                if let Some((alts, close)) = brace_group(&chars, i) {
                    let prefix: String = chars[..i].iter().collect();
                    let suffix: String = chars[close + 1..].iter().collect();
                    return alts.into_iter().flat_map(|a| expand_braces(&format!("{prefix}{a}{suffix}"))).collect();
                }
                i += 1;
            }
            _ => i += 1,
        }
    }
    vec![s.to_string()]
}

/// The top-level alternatives of the group opening at `open`, and where it closes.
fn brace_group(chars: &[char], open: usize) -> Option<(Vec<String>, usize)> {
    let mut depth = 0usize;
    let mut alts = Vec::new();
    let mut cur = String::new();
    let mut i = open + 1;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\\' => {
                cur.push(c);
                if let Some(&n) = chars.get(i + 1) {
                    cur.push(n);
                }
                i += 2;
                continue;
            }
            '{' => depth += 1,
            '}' if depth == 0 => {
                alts.push(cur);
                return Some((alts, i));
            }
            '}' => depth -= 1,
            ',' if depth == 0 => {
                alts.push(std::mem::take(&mut cur));
                i += 1;
                continue;
            }
            _ => {}
        }
        cur.push(c);
        i += 1;
    }
    None
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn glob_one(pattern: &Path, found: &mut Vec<PathBuf>, out: &mut Globbed) {
    let comps: Vec<Component<'_>> = pattern.components().collect();
    let mut current: Vec<PathBuf> = vec![PathBuf::new()];
    let mut literal_tail = true;
    for comp in &comps {
        let text = comp.as_os_str().to_string_lossy();
        let mut next = Vec::new();
        if matches!(comp, Component::Normal(_)) && has_wildcard(&text) {
            literal_tail = false;
            out.wildcards = true;
            let pat: Vec<char> = text.chars().collect();
            for dir in &current {
                let read_from = if dir.as_os_str().is_empty() { Path::new(".") } else { dir.as_path() };
                let Ok(entries) = std::fs::read_dir(read_from) else {
                    out.missing += 1;
                    continue;
                };
                for e in entries.filter_map(Result::ok) {
                    let name = e.file_name().to_string_lossy().into_owned();
                    let chars: Vec<char> = name.chars().collect();
                    let hidden = chars.first() == Some(&'.') && pat.first() != Some(&'.');
                    if !hidden && glob_match(&pat, &chars) {
                        next.push(dir.join(&name));
                    }
                }
            }
        } else {
            literal_tail = true;
            let part = unescape(&text);
            for p in &current {
                next.push(if matches!(comp, Component::Normal(_)) { p.join(&part) } else { p.join(comp.as_os_str()) });
            }
        }
        current = next;
    }
    for p in current {
        if p.symlink_metadata().is_ok() {
            found.push(p);
        } else if literal_tail {
            // A name written out in full that is not there.
            out.missing += 1;
        }
    }
}

/// Matches one path component against a pattern (`*`, `?`, `[abc]`,
/// `[a-z]`, `[!x]`, `\x`).
pub fn glob_match(pat: &[char], name: &[char]) -> bool {
    match pat.first() {
        None => name.is_empty(),
        Some('*') => (0..=name.len()).any(|i| glob_match(&pat[1..], &name[i..])),
        Some('?') => !name.is_empty() && glob_match(&pat[1..], &name[1..]),
        Some('\\') if pat.len() > 1 => name.first() == Some(&pat[1]) && glob_match(&pat[2..], &name[1..]),
        Some('[') => {
            let Some(&c) = name.first() else { return false };
            let mut i = 1;
            let negate = matches!(pat.get(1), Some('!') | Some('^'));
            if negate {
                i += 1;
            }
            let mut matched = false;
            let mut first = true;
            while i < pat.len() && (first || pat[i] != ']') {
                first = false;
                if i + 2 < pat.len() && pat[i + 1] == '-' && pat[i + 2] != ']' {
                    if pat[i] <= c && c <= pat[i + 2] {
                        matched = true;
                    }
                    i += 3;
                } else {
                    if pat[i] == c {
                        matched = true;
                    }
                    i += 1;
                }
            }
            if i >= pat.len() {
                // No closing bracket: the '[' is literal.
                return c == '[' && glob_match(&pat[1..], &name[1..]);
            }
            matched != negate && glob_match(&pat[i + 1..], &name[1..])
        }
        Some(&p) => name.first() == Some(&p) && glob_match(&pat[1..], &name[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_glob_match() {
        let m = |p: &str, n: &str| glob_match(&p.chars().collect::<Vec<_>>(), &n.chars().collect::<Vec<_>>());
        assert!(m("*.conf", "a.conf"));
        assert!(!m("*.conf", "a.conf~"));
        assert!(m("vi_?.conf", "vi_1.conf"));
        assert!(m("[a-c]x", "bx"));
        assert!(!m("[!a-c]x", "bx"));
        assert!(m("*", ""));
        assert!(m("a\\*", "a*"));
        assert!(!m("a\\*", "ab"));
    }

    #[test]
    fn test_expand_braces() {
        assert_eq!(expand_braces("a{b,c}d"), ["abd", "acd"]);
        assert_eq!(expand_braces("{foo/{,cat,dog},bar}"), ["foo/", "foo/cat", "foo/dog", "bar"]);
        assert_eq!(expand_braces("x{y"), ["x{y"]);
        assert_eq!(expand_braces("x\\{a,b}"), ["x\\{a,b}"]);
        assert_eq!(expand_braces("{a,b}{1,2}"), ["a1", "a2", "b1", "b2"]);
    }

    #[test]
    fn test_meta_detection() {
        assert!(has_brace("a{b}"));
        assert!(!has_brace("a\\{b}"));
        assert!(has_wildcard("*.conf"));
        assert!(!has_wildcard("a\\*.conf"));
    }
}
