//! Value parsing shared by the typed sections: numbers with ranges, timers,
//! addresses, booleans, scripts, and the unknown-keyword policy.

use std::net::IpAddr;
use std::time::Duration;

use super::error::{ConfigError, Location, Warning};
use super::parser::{Arg, Node};

/// A command line to run: the string as written plus its argv.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Script {
    /// The command line as written (quotes removed around a fully quoted one).
    pub command: String,
    /// The command split into program and arguments (shell-like quoting with
    /// `'...'`, `"..."` and `\`; no expansion).
    pub argv: Vec<String>,
    /// Who runs it, for the notify form `COMMAND [USER [GROUP]]`; `None` for the default
    /// script user (and always for `script` and `misc_path`, which have a `user` keyword).
    pub user: Option<RunAs>,
}

/// A user, and optionally a group, that a script runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunAs {
    /// User name.
    pub user: String,
    /// Group name; the user's primary group when absent.
    pub group: Option<String>,
}

/// Collects warnings while the typed sections are built.
#[derive(Debug, Default)]
pub(crate) struct Ctx {
    pub(crate) warnings: Vec<Warning>,
    /// The priority the next rule without one gets (keepalived counts down from 16384, in
    /// the order it reads them).
    pub(crate) next_rule_priority: u32,
}

impl Ctx {
    pub(crate) fn warn(&mut self, at: &Location, message: impl Into<String>) {
        self.warnings.push(Warning { location: at.clone(), message: message.into() });
    }

    /// Warns that a keyword the match arm has read is not acted on yet, with
    /// the keyword table's text for it (see [`super::keywords`]).
    pub(crate) fn not_acted(&mut self, node: &Node, path: &str) {
        if let Some(super::keywords::Support::Parsed(text)) = super::keywords::block(path).and_then(|b| b.get(&node.keyword)).map(|k| k.support) {
            let block = super::keywords::block_name(path);
            self.warn(&node.loc, format!("'{}' in {block}: read, but {text}", node.keyword));
        }
    }

    /// Handles a keyword that no match arm took, by the keyword table of the
    /// block at `path`: a keyword hav ignores warns once with the table's
    /// text (its block, if it has one, is checked for typos and skipped); a
    /// keyword the table does not list is an error with a suggestion.
    pub(crate) fn unknown(&mut self, node: &Node, path: &str) -> Result<(), ConfigError> {
        use super::keywords::{block, block_name, Support};
        let table = block(path);
        let block_label = block_name(path);
        match table.and_then(|b| b.get(&node.keyword)).map(|k| k.support) {
            Some(Support::Ignored(text)) | Some(Support::Parsed(text)) => {
                self.warn(&node.loc, format!("'{}' in {block_label}: {text}", node.keyword));
                let inner = if path == super::keywords::TOP { node.keyword.clone() } else { format!("{path}/{}", node.keyword) };
                if let (Some(children), Some(_)) = (&node.block, block(&inner)) {
                    for c in children {
                        self.check_known(c, &inner)?;
                    }
                }
                Ok(())
            }
            Some(Support::Acted) | Some(Support::Extension(_)) => Err(ConfigError::invalid(
                &node.loc,
                format!("'{}' in {block_label} is in hav's keyword table but its parser did not take it (a hav bug)", node.keyword),
            )),
            None => Err(self.unknown_error(node, path)),
        }
    }

    /// Checks, without warning, that every keyword in an ignored block is one
    /// keepalived knows there.
    fn check_known(&mut self, node: &Node, path: &str) -> Result<(), ConfigError> {
        let Some(table) = super::keywords::block(path) else { return Ok(()) };
        if table.get(&node.keyword).is_none() {
            return Err(self.unknown_error(node, path));
        }
        let inner = format!("{path}/{}", node.keyword);
        if let (Some(children), Some(_)) = (&node.block, super::keywords::block(&inner)) {
            for c in children {
                self.check_known(c, &inner)?;
            }
        }
        Ok(())
    }

    fn unknown_error(&self, node: &Node, path: &str) -> ConfigError {
        let names = super::keywords::block(path).into_iter().flat_map(|b| b.keywords()).map(|k| k.name);
        ConfigError::UnknownKeyword {
            at: node.loc.clone(),
            keyword: node.keyword.clone(),
            block: super::keywords::block_name(path).to_string(),
            suggestion: closest(&node.keyword, names),
        }
    }

    fn scalar<'n>(&mut self, node: &'n Node) -> Result<&'n Arg, ConfigError> {
        if node.block.is_some() {
            return Err(ConfigError::invalid(&node.loc, format!("'{}' does not take a block", node.keyword)));
        }
        let Some(first) = node.args.first() else {
            return Err(ConfigError::invalid(&node.loc, format!("missing value for '{}'", node.keyword)));
        };
        Ok(first)
    }

    /// The single value of `node`; warns when more follow.
    pub(crate) fn value<'n>(&mut self, node: &'n Node) -> Result<&'n Arg, ConfigError> {
        let first = self.scalar(node)?;
        self.no_more(node, 1);
        Ok(first)
    }

    /// Warns about arguments from index `from` on.
    pub(crate) fn no_more(&mut self, node: &Node, from: usize) {
        if let Some(extra) = node.args.get(from) {
            self.warn(&extra.loc, format!("extra arguments after '{}' ignored", node.keyword));
        }
    }

    /// The value as a string.
    pub(crate) fn string(&mut self, node: &Node) -> Result<String, ConfigError> {
        Ok(self.value(node)?.text.clone())
    }

    /// An integer value within `min..=max`.
    pub(crate) fn int(&mut self, node: &Node, min: i64, max: i64) -> Result<i64, ConfigError> {
        let arg = self.value(node)?;
        int_arg(arg, &node.keyword, min, max)
    }

    /// An unsigned 32-bit value within `min..=max`.
    pub(crate) fn u32(&mut self, node: &Node, min: u32, max: u32) -> Result<u32, ConfigError> {
        let v = self.int(node, i64::from(min), i64::from(max))?;
        Ok(u32::try_from(v).unwrap_or(max))
    }

    /// `down_timer_adverts` / `vrrp_down_timer_adverts`: 1..=100 adverts. keepalived logs a
    /// value out of range and keeps the default; so does hav (`None`), with a warning.
    pub(crate) fn down_timer_adverts(&mut self, node: &Node) -> Result<Option<u8>, ConfigError> {
        let v = self.int(node, i64::MIN, i64::MAX)?;
        match u8::try_from(v) {
            Ok(n @ 1..=100) => Ok(Some(n)),
            _ => {
                self.warn(&node.loc, format!("{} {v} is outside 1..100; the default is kept, as keepalived does", node.keyword));
                Ok(None)
            }
        }
    }

    /// A time in seconds, fractions allowed.
    pub(crate) fn timer(&mut self, node: &Node) -> Result<Duration, ConfigError> {
        let arg = self.value(node)?;
        timer_arg(arg, &node.keyword)
    }

    /// A flag: present means on; an optional `on|off|true|false|yes|no` value.
    pub(crate) fn flag(&mut self, node: &Node) -> Result<bool, ConfigError> {
        if node.block.is_some() {
            return Err(ConfigError::invalid(&node.loc, format!("'{}' does not take a block", node.keyword)));
        }
        match node.args.first() {
            None => Ok(true),
            Some(a) => {
                self.no_more(node, 1);
                bool_arg(a, &node.keyword)
            }
        }
    }

    /// An IP address.
    pub(crate) fn ip(&mut self, node: &Node) -> Result<IpAddr, ConfigError> {
        let arg = self.value(node)?;
        ip_arg(arg)
    }

    /// A TCP/UDP port.
    pub(crate) fn port(&mut self, node: &Node) -> Result<u16, ConfigError> {
        let v = self.int(node, 0, 65535)?;
        Ok(u16::try_from(v).unwrap_or(0))
    }

    /// A script: every argument from the first on.
    pub(crate) fn script(&mut self, node: &Node) -> Result<Script, ConfigError> {
        self.scalar(node)?;
        script_args(node, 0)
    }

    /// A notify script as keepalived writes it: `COMMAND [USER [GROUP]]`, the command quoted
    /// when it has arguments (`notify_master "/x.sh master" root`). The group may be written
    /// `:GROUP`.
    pub(crate) fn notify_script(&mut self, node: &Node) -> Result<Script, ConfigError> {
        let first = self.scalar(node)?;
        if let Some(extra) = node.args.get(3) {
            return Err(ConfigError::invalid(
                &extra.loc,
                format!("'{}' takes COMMAND [USER [GROUP]]; quote a command with arguments", node.keyword),
            ));
        }
        let argv = split_command(&first.text).ok_or_else(|| ConfigError::invalid(&first.loc, "unbalanced quote in command"))?;
        if argv.is_empty() {
            return Err(ConfigError::invalid(&first.loc, format!("empty command for '{}'", node.keyword)));
        }
        let user = node.args.get(1).map(|u| RunAs { user: u.text.clone(), group: node.args.get(2).map(|g| g.text.clone()) });
        Ok(Script { command: first.text.clone(), argv, user })
    }

    /// The statements of the block of `node`, which must have one.
    pub(crate) fn children<'n>(&mut self, node: &'n Node) -> Result<&'n [Node], ConfigError> {
        match &node.block {
            Some(b) => Ok(b),
            None => Err(ConfigError::invalid(&node.loc, format!("'{}' needs a block: {} {{ ... }}", node.keyword, node.keyword))),
        }
    }

    /// The name argument of a named block (`vrrp_instance NAME { ... }`).
    pub(crate) fn block_name(&mut self, node: &Node) -> Result<String, ConfigError> {
        match node.args.first() {
            Some(a) => {
                self.no_more(node, 1);
                Ok(a.text.clone())
            }
            None => Err(ConfigError::invalid(&node.loc, format!("'{}' needs a name", node.keyword))),
        }
    }
}

/// Parses an integer argument within `min..=max`.
pub(crate) fn int_arg(arg: &Arg, what: &str, min: i64, max: i64) -> Result<i64, ConfigError> {
    let v: i64 = arg
        .text
        .parse()
        .map_err(|_| ConfigError::invalid(&arg.loc, format!("'{}' needs an integer, got '{}'", what, arg.text)))?;
    if v < min || v > max {
        return Err(ConfigError::invalid(&arg.loc, format!("{what} must be between {min} and {max}, got {v}")));
    }
    Ok(v)
}

/// Parses a non-negative time in seconds (fractions allowed, at most a year).
pub(crate) fn timer_arg(arg: &Arg, what: &str) -> Result<Duration, ConfigError> {
    let v: f64 = arg
        .text
        .parse()
        .map_err(|_| ConfigError::invalid(&arg.loc, format!("'{}' needs a time in seconds, got '{}'", what, arg.text)))?;
    if !v.is_finite() || !(0.0..=31_536_000.0).contains(&v) {
        return Err(ConfigError::invalid(&arg.loc, format!("{what} must be a time between 0 and 31536000 seconds, got '{}'", arg.text)));
    }
    Ok(Duration::from_secs_f64(v))
}

/// Parses `on|off|true|false|yes|no` (any case).
pub(crate) fn bool_arg(arg: &Arg, what: &str) -> Result<bool, ConfigError> {
    match arg.text.to_ascii_lowercase().as_str() {
        "on" | "true" | "yes" => Ok(true),
        "off" | "false" | "no" => Ok(false),
        _ => Err(ConfigError::invalid(&arg.loc, format!("'{}' needs on|off|true|false|yes|no, got '{}'", what, arg.text))),
    }
}

/// Parses an IPv4 or IPv6 address (an IPv6 zone `%if` is not accepted).
pub(crate) fn ip_arg(arg: &Arg) -> Result<IpAddr, ConfigError> {
    arg.text.parse().map_err(|_| ConfigError::invalid(&arg.loc, format!("invalid IP address '{}'", arg.text)))
}

/// Parses a port number.
pub(crate) fn port_arg(arg: &Arg, what: &str) -> Result<u16, ConfigError> {
    let v = int_arg(arg, what, 0, 65535)?;
    Ok(u16::try_from(v).unwrap_or(0))
}

/// Builds a [`Script`] from the arguments of `node` starting at `from`.
pub(crate) fn script_args(node: &Node, from: usize) -> Result<Script, ConfigError> {
    let args = node.args.get(from..).unwrap_or(&[]);
    let Some(first) = args.first() else {
        return Err(ConfigError::invalid(&node.loc, format!("missing command for '{}'", node.keyword)));
    };
    if args.len() == 1 {
        let argv = split_command(&first.text)
            .ok_or_else(|| ConfigError::invalid(&first.loc, "unbalanced quote in command"))?;
        if argv.is_empty() {
            return Err(ConfigError::invalid(&first.loc, format!("empty command for '{}'", node.keyword)));
        }
        return Ok(Script { command: first.text.clone(), argv, user: None });
    }
    let command = args.iter().map(|a| a.text.as_str()).collect::<Vec<_>>().join(" ");
    let argv = args.iter().map(|a| a.text.clone()).collect();
    Ok(Script { command, argv, user: None })
}

/// Splits a script's command line into program and arguments, as keepalived
/// does (keepalived.conf(5), "Quoted strings"): blanks separate words; `"..."`
/// and `'...'` keep blanks and are removed, and may be glued to the rest of a
/// word; `\` escapes, inside quotes too: `\a \b \E \f \n \r \t \v`, `\nnn`
/// (up to three octal digits), `\xXX` (up to two hex digits), `\cC` (control-C),
/// and `\C` for any other `C` is `C` itself (so `\"` is a `"` that neither
/// opens nor closes a quote). Byte values above 0x7f become the characters
/// U+0080 to U+00FF. `None` on an unbalanced quote or a final `\`.
pub fn split_command(s: &str) -> Option<Vec<String>> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        match c {
            '\\' => {
                in_word = true;
                let e = *chars.get(i)?;
                i += 1;
                let byte = |v: u32| char::from(u8::try_from(v & 0xff).unwrap_or(0));
                let decoded = match e {
                    'x' if chars.get(i).is_some_and(char::is_ascii_hexdigit) => {
                        let mut v = 0;
                        for _ in 0..2 {
                            match chars.get(i).and_then(|d| d.to_digit(16)) {
                                Some(d) => {
                                    v = v * 16 + d;
                                    i += 1;
                                }
                                None => break,
                            }
                        }
                        byte(v)
                    }
                    'c' if i < chars.len() => {
                        i += 1;
                        byte(u32::from(chars[i - 1]) & 0x1f)
                    }
                    '0'..='7' => {
                        let mut v = e.to_digit(8).unwrap_or(0);
                        for _ in 0..2 {
                            match chars.get(i).and_then(|d| d.to_digit(8)) {
                                Some(d) => {
                                    v = v * 8 + d;
                                    i += 1;
                                }
                                None => break,
                            }
                        }
                        byte(v)
                    }
                    'a' => '\u{7}',
                    'b' => '\u{8}',
                    'E' => '\u{1b}',
                    'f' => '\u{c}',
                    'n' => '\n',
                    'r' => '\r',
                    't' => '\t',
                    'v' => '\u{b}',
                    other => other,
                };
                cur.push(decoded);
            }
            '"' | '\'' if quote.is_none() => {
                in_word = true;
                quote = Some(c);
            }
            q if quote == Some(q) => quote = None,
            c if quote.is_none() && c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if quote.is_some() {
        return None;
    }
    if in_word {
        out.push(cur);
    }
    Some(out)
}

/// The candidate closest to `word` by edit distance, when close enough to be
/// a plausible typo.
pub(crate) fn closest<'a>(word: &str, candidates: impl Iterator<Item = &'a str>) -> Option<String> {
    let limit = (word.chars().count() / 3).clamp(1, 3);
    candidates
        .map(|c| (levenshtein(word, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c.to_string())
}

fn levenshtein(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// A `targets { ... }` block (WASM_CHECK, policy vrrp_script): the endpoints a policy may
/// reach. Each line is a host-call kind (`tcp_connect`, `http_get`, `dns_query`, `udp_probe`)
/// and the `IP PORT` pairs it may reach; a line of bare pairs (the older form) allows every
/// kind, with a warning.
pub(crate) fn targets_block(ctx: &mut Ctx, n: &Node) -> Result<Vec<super::check::PolicyTarget>, ConfigError> {
    use super::check::{HostCall, HostCalls, PolicyTarget};
    let mut out = Vec::new();
    for t in ctx.children(n)? {
        let head = Arg { text: t.keyword.clone(), quoted: false, loc: t.loc.clone() };
        let (calls, words): (HostCalls, Vec<&Arg>) = match HostCall::from_name(&t.keyword) {
            Some(call) => {
                if t.args.is_empty() {
                    return Err(ConfigError::invalid(&t.loc, format!("'{call}' needs 'IP PORT' pairs")));
                }
                (HostCalls::only(call), t.args.iter().collect())
            }
            None => {
                if ip_arg(&head).is_err() && t.keyword.bytes().all(|b| b.is_ascii_alphabetic() || b == b'_') {
                    let kinds: Vec<&str> = HostCall::ALL.iter().map(|c| c.name()).collect();
                    return Err(ConfigError::invalid(
                        &t.loc,
                        format!("'{}' is not a host call; targets lines start with one of {} (or are bare 'IP PORT' pairs)", t.keyword, kinds.join(", ")),
                    ));
                }
                ctx.warn(
                    &t.loc,
                    "targets entry without a host call kind allows every kind (tcp_connect, http_get, dns_query, udp_probe); start the line with the one the policy uses",
                );
                (HostCalls::ALL, std::iter::once(&head).chain(t.args.iter()).collect())
            }
        };
        if words.len() % 2 != 0 {
            return Err(ConfigError::invalid(&t.loc, "targets entries are 'IP PORT' pairs"));
        }
        for pair in words.chunks(2) {
            out.push(PolicyTarget { addr: std::net::SocketAddr::new(ip_arg(pair[0])?, port_arg(pair[1], "port")?), calls });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_split_command() {
        assert_eq!(
            split_command("/etc/notify.sh 'a b' \"c\\\"d\" e\\ f").expect("balanced"),
            vec!["/etc/notify.sh", "a b", "c\"d", "e f"]
        );
        assert_eq!(split_command("x 'y"), None);
        assert_eq!(split_command("x \\"), None);
        // keepalived.conf(5): '\"' is a '"' that does not quote; escapes work inside quotes.
        assert_eq!(split_command("a \\\"b c\\\""), Some(vec!["a".into(), "\"b".into(), "c\"".into()]));
        assert_eq!(
            split_command("\\x41\\101\\cA\\t'\\n' \"\\E\"").expect("balanced"),
            vec!["AA\u{1}\t\n", "\u{1b}"]
        );
        assert_eq!(split_command("  ").expect("balanced"), Vec::<String>::new());
    }

    #[test]
    fn test_closest() {
        let known = ["priority", "preempt", "interface"];
        assert_eq!(closest("priorty", known.iter().copied()).as_deref(), Some("priority"));
        assert_eq!(closest("interfac", known.iter().copied()).as_deref(), Some("interface"));
        assert_eq!(closest("zzzzzzzz", known.iter().copied()), None);
    }
}
