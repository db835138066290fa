//! ldirectord.cf, the configuration of heartbeat's Linux Director Daemon, read as the
//! keepalived.conf statements it is equivalent to.
//!
//! An ldirectord.cf is a list of `name=value` lines (blanks around `=` allowed, `#` starts a
//! comment line). A line that is not indented is a global option or a `virtual=` line; the
//! indented lines after a `virtual=` line (ldirectord(8): at least 4 spaces or a tab) are that
//! virtual service's options. Some options (`checktimeout`, `quiescent`, `fallback`...) may be
//! written at both levels; the virtual section's value wins.
//!
//! [`parse`] turns the file into the [`Node`]s a keepalived.conf with the same meaning would
//! parse to (`virtual_server` blocks with their `real_server`s and checkers), each statement
//! carrying the location of the ldirectord.cf line it comes from. The configuration loader
//! builds them exactly as it builds a keepalived.conf (so the daemon, `--check` and `-d` see
//! one model), and [`print`] writes them as keepalived.conf text (`hav-linux convert`).
//!
//! Where ldirectord does something hav has no equivalent for (an FTP or MySQL login check,
//! e-mail alerts), the option is accepted with a warning at its line that says what hav does
//! instead. A line that ldirectord does not know is an error with its location and, when one is
//! close, a suggestion. docs/ldirectord.md has the whole mapping.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;

use super::error::{ConfigError, Location, Warning};
use super::parser::{Arg, Node};
use super::value::closest;

/// ldirectord's defaults (ldirectord(8)).
const DEFAULT_CHECKTIMEOUT: u32 = 5;
const DEFAULT_NEGOTIATETIMEOUT: u32 = 30;
const DEFAULT_CHECKINTERVAL: u32 = 10;
const DEFAULT_SCHEDULER: &str = "wrr";
const DEFAULT_CHECKCOMMAND: &str = "/bin/true";

/// The most real servers one `real=A->B` range may stand for.
pub const MAX_RANGE: u32 = 4096;

/// Where an option may be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// Only outside virtual sections.
    Global,
    /// Only inside a virtual section.
    Virtual,
    /// Both; the virtual section's value overrides the global one.
    Both,
}

/// Every option ldirectord(8) documents, and where it may be written.
const OPTIONS: &[(&str, Scope)] = &[
    ("virtual", Scope::Global),
    ("virtual6", Scope::Global),
    ("autoreload", Scope::Global),
    ("callback", Scope::Global),
    ("logfile", Scope::Global),
    ("execute", Scope::Global),
    ("supervised", Scope::Global),
    ("fork", Scope::Global),
    ("maintenancedir", Scope::Global),
    ("checktimeout", Scope::Both),
    ("negotiatetimeout", Scope::Both),
    ("connecttimeout", Scope::Both),
    ("checkinterval", Scope::Both),
    ("checkcount", Scope::Both),
    ("failurecount", Scope::Both),
    ("fallback", Scope::Both),
    ("fallback6", Scope::Both),
    ("fallbackcommand", Scope::Both),
    ("emailalert", Scope::Both),
    ("emailalertfrom", Scope::Both),
    ("emailalertfreq", Scope::Both),
    ("emailalertstatus", Scope::Both),
    ("smtp", Scope::Both),
    ("quiescent", Scope::Both),
    ("readdquiescent", Scope::Both),
    ("cleanstop", Scope::Both),
    ("real", Scope::Virtual),
    ("real6", Scope::Virtual),
    ("checktype", Scope::Virtual),
    ("service", Scope::Virtual),
    ("checkcommand", Scope::Virtual),
    ("checkport", Scope::Virtual),
    ("request", Scope::Virtual),
    ("receive", Scope::Virtual),
    ("httpmethod", Scope::Virtual),
    ("virtualhost", Scope::Virtual),
    ("login", Scope::Virtual),
    ("passwd", Scope::Virtual),
    ("database", Scope::Virtual),
    ("secret", Scope::Virtual),
    ("scheduler", Scope::Virtual),
    ("persistent", Scope::Virtual),
    ("netmask", Scope::Virtual),
    ("protocol", Scope::Virtual),
    ("monitorfile", Scope::Virtual),
    ("ops", Scope::Virtual),
];

/// The services of ldirectord's negotiate checks.
const SERVICES: &[&str] = &[
    "dns", "ftp", "http", "https", "http_proxy", "imap", "imaps", "ldap", "mysql", "nntp", "none", "oracle", "pgsql", "pop",
    "pops", "radius", "simpletcp", "sip", "smtp", "submission",
];

/// Port names hav knows without /etc/services (which would make a configuration mean different
/// things on different hosts).
const PORT_NAMES: &[(&str, u16)] = &[
    ("ftp", 21),
    ("ssh", 22),
    ("telnet", 23),
    ("smtp", 25),
    ("domain", 53),
    ("http", 80),
    ("www", 80),
    ("pop3", 110),
    ("nntp", 119),
    ("imap", 143),
    ("imap2", 143),
    ("ldap", 389),
    ("https", 443),
    ("submission", 587),
    ("ldaps", 636),
    ("imaps", 993),
    ("pop3s", 995),
    ("ms-sql-s", 1433),
    ("oracle", 1521),
    ("radius", 1812),
    ("mysql", 3306),
    ("squid", 3128),
    ("sip", 5060),
    ("postgresql", 5432),
];

/// The service ldirectord checks when a virtual service on `port` names none.
fn default_service(port: u16) -> &'static str {
    match port {
        21 => "ftp",
        25 => "smtp",
        53 => "dns",
        80 => "http",
        110 => "pop",
        119 => "nntp",
        143 => "imap",
        389 => "ldap",
        443 => "https",
        587 => "submission",
        993 => "imaps",
        995 => "pops",
        1521 => "oracle",
        1812 => "radius",
        3128 => "http_proxy",
        3306 => "mysql",
        5432 => "pgsql",
        5060 => "sip",
        _ => "none",
    }
}

/// Whether `text` reads as an ldirectord.cf: its first line that is not blank or a comment is
/// `name=value`, which no keepalived.conf line is (keepalived's definitions start with `$`).
pub fn is_ldirectord(text: &str) -> bool {
    let Some(line) = text.lines().map(str::trim).find(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('!')) else {
        return false;
    };
    let Some((name, _)) = line.split_once('=') else { return false };
    let name = name.trim_end();
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A value with the location where it is written.
#[derive(Debug, Clone)]
struct At<T> {
    value: T,
    loc: Location,
}

impl<T> At<T> {
    fn new(value: T, loc: Location) -> Self {
        At { value, loc }
    }
}

/// One significant line: `key=value`.
#[derive(Debug, Clone)]
struct Line {
    key: String,
    key_loc: Location,
    /// The value as written, comment and outer blanks removed.
    raw: String,
    value_loc: Location,
    indented: bool,
    /// Indented by fewer than 4 spaces and no tab.
    shallow: bool,
}

impl Line {
    /// The value, without the double quotes around the whole of it.
    fn value(&self) -> String {
        unquote(&self.raw).to_string()
    }

    fn at(&self) -> At<String> {
        At::new(self.value(), self.value_loc.clone())
    }
}

fn unquote(s: &str) -> &str {
    if s.len() >= 2 && s.starts_with('"') && s.ends_with('"') {
        &s[1..s.len() - 1]
    } else {
        s
    }
}

/// The character index of `#` that starts a trailing comment (after a blank, outside quotes).
fn comment_start(chars: &[char]) -> Option<usize> {
    let mut quote = false;
    for (i, &c) in chars.iter().enumerate() {
        match c {
            '"' => quote = !quote,
            '#' if !quote && (i == 0 || chars[i - 1].is_whitespace()) => return Some(i),
            _ => {}
        }
    }
    None
}

fn col(i: usize) -> u32 {
    u32::try_from(i + 1).unwrap_or(u32::MAX)
}

fn split_line(file: &Arc<Path>, lineno: u32, raw: &str) -> Result<Option<Line>, ConfigError> {
    let chars: Vec<char> = raw.trim_end_matches(['\r', '\n']).chars().collect();
    let Some(first) = chars.iter().position(|c| !c.is_whitespace()) else { return Ok(None) };
    if chars[first] == '#' {
        return Ok(None);
    }
    let loc = |i: usize| Location::new(file.clone(), lineno, col(i));
    let end = comment_start(&chars[first..]).map_or(chars.len(), |c| first + c);
    let Some(eq) = chars[first..end].iter().position(|&c| c == '=').map(|p| first + p) else {
        let word: String = chars[first..end].iter().collect::<String>().trim_end().to_string();
        return Err(ConfigError::invalid(
            &loc(first),
            format!("'{word}' is not an ldirectord.cf line: expected 'name=value'"),
        ));
    };
    let key: String = chars[first..eq].iter().collect::<String>().trim_end().to_string();
    if key.is_empty() {
        return Err(ConfigError::invalid(&loc(first), "a line starts with '=': expected 'name=value'"));
    }
    if !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(ConfigError::invalid(&loc(first), format!("'{key}' is not an ldirectord.cf option name")));
    }
    let mut v = eq + 1;
    while v < end && chars[v].is_whitespace() {
        v += 1;
    }
    let value: String = chars[v..end].iter().collect::<String>().trim_end().to_string();
    let indent = &chars[..first];
    Ok(Some(Line {
        key,
        key_loc: loc(first),
        raw: value,
        value_loc: loc(v.min(end)),
        indented: first > 0,
        shallow: first > 0 && !indent.contains(&'\t') && first < 4,
    }))
}

/// ldirectord's forwarding methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Gate,
    Masq,
    Ipip,
}

impl Method {
    fn parse(s: &str) -> Option<Method> {
        match s {
            "gate" => Some(Method::Gate),
            "masq" => Some(Method::Masq),
            "ipip" => Some(Method::Ipip),
            _ => None,
        }
    }

    /// keepalived's `lb_kind` for it.
    fn lb_kind(self) -> &'static str {
        match self {
            Method::Gate => "DR",
            Method::Masq => "NAT",
            Method::Ipip => "TUN",
        }
    }
}

#[derive(Debug, Clone)]
struct Fallback {
    ip: IpAddr,
    port: Option<u16>,
    method: Option<Method>,
    loc: Location,
}

#[derive(Debug, Clone)]
struct Real {
    ip: IpAddr,
    port: Option<u16>,
    method: Method,
    weight: u32,
    request: Option<String>,
    receive: Option<String>,
    loc: Location,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CheckType {
    Connect,
    Negotiate,
    Ping,
    External,
    Off,
    On,
    /// Negotiate every Nth check, connect otherwise.
    Combined(u32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Proto {
    Tcp,
    Udp,
    Fwm,
}

/// The options that may be written at both levels.
#[derive(Debug, Clone, Default)]
struct Shared {
    checktimeout: Option<At<u32>>,
    negotiatetimeout: Option<At<u32>>,
    checkinterval: Option<At<u32>>,
    checkcount: Option<At<u32>>,
    failurecount: Option<At<u32>>,
    quiescent: Option<At<bool>>,
    fallback: Option<Fallback>,
    fallback6: Option<Fallback>,
    fallbackcommand: Option<At<String>>,
}

impl Shared {
    /// This level's values, the `outer` level's where this one has none.
    fn over(&self, outer: &Shared) -> Shared {
        Shared {
            checktimeout: self.checktimeout.clone().or_else(|| outer.checktimeout.clone()),
            negotiatetimeout: self.negotiatetimeout.clone().or_else(|| outer.negotiatetimeout.clone()),
            checkinterval: self.checkinterval.clone().or_else(|| outer.checkinterval.clone()),
            checkcount: self.checkcount.clone().or_else(|| outer.checkcount.clone()),
            failurecount: self.failurecount.clone().or_else(|| outer.failurecount.clone()),
            quiescent: self.quiescent.clone().or_else(|| outer.quiescent.clone()),
            fallback: self.fallback.clone().or_else(|| outer.fallback.clone()),
            fallback6: self.fallback6.clone().or_else(|| outer.fallback6.clone()),
            fallbackcommand: self.fallbackcommand.clone().or_else(|| outer.fallbackcommand.clone()),
        }
    }
}

#[derive(Debug, Clone)]
enum VirtualKey {
    Addr(SocketAddr),
    Fwmark(u32),
}

#[derive(Debug, Clone)]
struct Virtual {
    key: VirtualKey,
    loc: Location,
    shared: Shared,
    reals: Vec<Real>,
    checktype: Option<At<CheckType>>,
    service: Option<At<String>>,
    checkcommand: Option<At<String>>,
    checkport: Option<At<u16>>,
    request: Option<At<String>>,
    receive: Option<At<String>>,
    httpmethod: Option<At<String>>,
    virtualhost: Option<At<String>>,
    /// `login`, `passwd`, `database`, `secret`: only ldirectord's own checks use them.
    credentials: Vec<At<String>>,
    scheduler: Option<At<String>>,
    persistent: Option<At<u32>>,
    netmask: Option<At<String>>,
    protocol: Option<At<Proto>>,
    ops: Option<At<bool>>,
}

/// Reads the warnings and builds the statements.
struct Reader {
    warnings: Vec<Warning>,
    /// Where each option was last set, per section, to warn about a value written twice.
    seen: Vec<(String, Location)>,
    /// `fork=yes`: ldirectord then honours a virtual section's checkinterval.
    fork: bool,
}

impl Reader {
    fn warn(&mut self, at: &Location, message: impl Into<String>) {
        self.warnings.push(Warning { location: at.clone(), message: message.into() });
    }

    fn once(&mut self, line: &Line) {
        if let Some((_, first)) = self.seen.iter().find(|(k, _)| *k == line.key) {
            let first = first.clone();
            self.warn(&line.key_loc, format!("'{}' is set again; this value replaces the one at {first}", line.key));
        }
        self.seen.retain(|(k, _)| *k != line.key);
        self.seen.push((line.key.clone(), line.key_loc.clone()));
    }
}

fn number(line: &Line, min: u32, max: u32) -> Result<At<u32>, ConfigError> {
    let v = line.value();
    let n: u32 = v
        .parse()
        .map_err(|_| ConfigError::invalid(&line.value_loc, format!("'{}' needs a number, got '{v}'", line.key)))?;
    if n < min || n > max {
        return Err(ConfigError::invalid(&line.value_loc, format!("{} must be between {min} and {max}, got {n}", line.key)));
    }
    Ok(At::new(n, line.value_loc.clone()))
}

fn yes_no(line: &Line) -> Result<At<bool>, ConfigError> {
    let v = line.value();
    let b = match v.to_ascii_lowercase().as_str() {
        "yes" => true,
        "no" => false,
        _ => return Err(ConfigError::invalid(&line.value_loc, format!("'{}' needs yes or no, got '{v}'", line.key))),
    };
    Ok(At::new(b, line.value_loc.clone()))
}

fn port_of(s: &str, at: &Location) -> Result<u16, ConfigError> {
    if let Ok(p) = s.parse::<u16>() {
        return Ok(p);
    }
    if let Some((_, p)) = PORT_NAMES.iter().find(|(n, _)| *n == s) {
        return Ok(*p);
    }
    Err(ConfigError::invalid(at, format!("'{s}' is not a port number or a service name hav knows (hav does not read /etc/services; write the number)")))
}

fn ip_of(s: &str, at: &Location) -> Result<IpAddr, ConfigError> {
    s.parse::<IpAddr>().map_err(|_| {
        if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.') {
            ConfigError::invalid(at, format!("'{s}' is a host name: hav needs an IP address here (ldirectord resolves names when it starts; write the address)"))
        } else {
            ConfigError::invalid(at, format!("'{s}' is not an IP address"))
        }
    })
}

/// `ADDR[:PORT]`, `[V6]` or `[V6]:PORT`.
fn addr_port(s: &str, at: &Location) -> Result<(IpAddr, Option<u16>), ConfigError> {
    if let Some(rest) = s.strip_prefix('[') {
        let Some((addr, after)) = rest.split_once(']') else {
            return Err(ConfigError::invalid(at, format!("'{s}': '[' without ']'")));
        };
        let ip: std::net::Ipv6Addr =
            addr.parse().map_err(|_| ConfigError::invalid(at, format!("'{addr}' is not an IPv6 address")))?;
        return match after {
            "" => Ok((IpAddr::V6(ip), None)),
            p => match p.strip_prefix(':') {
                Some(p) => Ok((IpAddr::V6(ip), Some(port_of(p, at)?))),
                None => Err(ConfigError::invalid(at, format!("'{s}': expected ':PORT' after ']'"))),
            },
        };
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok((ip, None));
    }
    match s.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => Ok((ip_of(host, at)?, Some(port_of(port, at)?))),
        Some(_) => Err(ConfigError::invalid(at, format!("'{s}' is not ADDRESS:PORT (write an IPv6 address in brackets: [2001:db8::1]:80)"))),
        None => Ok((ip_of(s, at)?, None)),
    }
}

/// The words of a `real=` or `fallback=` value: blank-separated, `"..."` quoted, a `,` between
/// the two quoted strings optional. Each word with whether it was quoted and its location.
fn words(line: &Line) -> Result<Vec<(String, bool, Location)>, ConfigError> {
    let chars: Vec<char> = line.raw.chars().collect();
    let base = line.value_loc.col as usize;
    let loc = |i: usize| Location::new(line.value_loc.file.clone(), line.value_loc.line, col(base - 1 + i));
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() || c == ',' {
            i += 1;
            continue;
        }
        if c == '"' {
            let Some(close) = chars[i + 1..].iter().position(|&q| q == '"') else {
                return Err(ConfigError::invalid(&loc(i), "unterminated quoted string"));
            };
            out.push((chars[i + 1..i + 1 + close].iter().collect(), true, loc(i)));
            i += close + 2;
            continue;
        }
        let start = i;
        while i < chars.len() && !chars[i].is_whitespace() && chars[i] != '"' && chars[i] != ',' {
            i += 1;
        }
        out.push((chars[start..i].iter().collect(), false, loc(start)));
    }
    Ok(out)
}

fn real_line(line: &Line) -> Result<Vec<Real>, ConfigError> {
    let ws = words(line)?;
    let Some((first, _, first_loc)) = ws.first() else {
        return Err(ConfigError::invalid(&line.value_loc, format!("'{}' needs ADDRESS[:PORT] gate|masq|ipip [WEIGHT] [\"REQUEST\", \"RECEIVE\"]", line.key)));
    };
    // A range `A->B[:PORT]` of IPv4 addresses.
    let (ips, port) = match first.split_once("->") {
        Some((a, b)) => {
            let (last, port) = addr_port(b, first_loc)?;
            let first_ip = ip_of(a, first_loc)?;
            let (IpAddr::V4(lo), IpAddr::V4(hi)) = (first_ip, last) else {
                return Err(ConfigError::invalid(first_loc, "a range of real servers is of IPv4 addresses only"));
            };
            let (lo, hi) = (u32::from(lo), u32::from(hi));
            if lo > hi {
                return Err(ConfigError::invalid(first_loc, format!("range '{first}' runs backwards")));
            }
            if hi - lo >= MAX_RANGE {
                return Err(ConfigError::invalid(first_loc, format!("range '{first}' holds more than {MAX_RANGE} addresses")));
            }
            ((lo..=hi).map(|n| IpAddr::V4(Ipv4Addr::from(n))).collect::<Vec<_>>(), port)
        }
        None => {
            let (ip, port) = addr_port(first, first_loc)?;
            (vec![ip], port)
        }
    };
    let Some((m, _, m_loc)) = ws.get(1) else {
        return Err(ConfigError::invalid(&line.value_loc, format!("'{}' needs a forwarding method after the address: gate, masq or ipip", line.key)));
    };
    let method = Method::parse(m).ok_or_else(|| ConfigError::invalid(m_loc, format!("forwarding method must be gate, masq or ipip, got '{m}'")))?;
    let mut rest = ws[2..].iter().peekable();
    let mut weight = 1;
    if let Some((w, false, w_loc)) = rest.peek() {
        weight = w.parse::<u32>().ok().filter(|w| *w <= 65535).ok_or_else(|| {
            ConfigError::invalid(w_loc, format!("real server weight must be a number 0..65535, got '{w}'"))
        })?;
        rest.next();
    }
    let mut strings = Vec::new();
    for (s, quoted, at) in rest {
        if !quoted {
            return Err(ConfigError::invalid(at, format!("unexpected '{s}': the request and receive strings of a real server are quoted")));
        }
        strings.push(s.clone());
    }
    if strings.len() > 2 {
        return Err(ConfigError::invalid(&ws[ws.len() - 1].2, "a real server takes at most two quoted strings: \"REQUEST\", \"RECEIVE\""));
    }
    let mut strings = strings.into_iter();
    let (request, receive) = (strings.next(), strings.next());
    Ok(ips
        .into_iter()
        .map(|ip| Real { ip, port, method, weight, request: request.clone(), receive: receive.clone(), loc: line.key_loc.clone() })
        .collect())
}

fn fallback_line(line: &Line) -> Result<Fallback, ConfigError> {
    let ws = words(line)?;
    let Some((first, _, at)) = ws.first() else {
        return Err(ConfigError::invalid(&line.value_loc, format!("'{}' needs ADDRESS[:PORT] [gate|masq|ipip]", line.key)));
    };
    let (ip, port) = addr_port(first, at)?;
    let method = match ws.get(1) {
        None => None,
        Some((m, _, m_loc)) => {
            Some(Method::parse(m).ok_or_else(|| ConfigError::invalid(m_loc, format!("forwarding method must be gate, masq or ipip, got '{m}'")))?)
        }
    };
    if let Some((extra, _, x)) = ws.get(2) {
        return Err(ConfigError::invalid(x, format!("unexpected '{extra}' after the forwarding method")));
    }
    Ok(Fallback { ip, port, method, loc: line.key_loc.clone() })
}

fn virtual_line(line: &Line) -> Result<Virtual, ConfigError> {
    let v = line.value();
    let key = if !v.is_empty() && v.chars().all(|c| c.is_ascii_digit()) {
        let mark: u32 = v
            .parse()
            .ok()
            .filter(|m| *m > 0)
            .ok_or_else(|| ConfigError::invalid(&line.value_loc, format!("firewall mark must be 1..{}, got '{v}'", u32::MAX)))?;
        VirtualKey::Fwmark(mark)
    } else {
        match addr_port(&v, &line.value_loc)? {
            (ip, Some(port)) => VirtualKey::Addr(SocketAddr::new(ip, port)),
            (_, None) => {
                return Err(ConfigError::invalid(&line.value_loc, format!("'{}' needs ADDRESS:PORT or a firewall mark, got '{v}'", line.key)))
            }
        }
    };
    if let (VirtualKey::Addr(a), "virtual6") = (&key, line.key.as_str()) {
        if a.is_ipv4() {
            return Err(ConfigError::invalid(&line.value_loc, "virtual6 takes an IPv6 address: [2001:db8::1]:80"));
        }
    }
    Ok(Virtual {
        key,
        loc: line.key_loc.clone(),
        shared: Shared::default(),
        reals: Vec::new(),
        checktype: None,
        service: None,
        checkcommand: None,
        checkport: None,
        request: None,
        receive: None,
        httpmethod: None,
        virtualhost: None,
        credentials: Vec::new(),
        scheduler: None,
        persistent: None,
        netmask: None,
        protocol: None,
        ops: None,
    })
}

fn unknown(line: &Line, section: &str) -> ConfigError {
    ConfigError::UnknownKeyword {
        at: line.key_loc.clone(),
        keyword: line.key.clone(),
        block: format!("ldirectord.cf {section}"),
        suggestion: closest(&line.key, OPTIONS.iter().map(|(n, _)| *n)),
    }
}

/// An option of the `Both` scope, or one hav only warns about.
fn shared_option(r: &mut Reader, s: &mut Shared, line: &Line) -> Result<(), ConfigError> {
    match line.key.as_str() {
        "checktimeout" | "connecttimeout" => s.checktimeout = Some(number(line, 1, 31_536_000)?),
        "negotiatetimeout" => s.negotiatetimeout = Some(number(line, 1, 31_536_000)?),
        "checkinterval" => s.checkinterval = Some(number(line, 1, 31_536_000)?),
        "checkcount" => s.checkcount = Some(number(line, 1, 1000)?),
        "failurecount" => s.failurecount = Some(number(line, 1, 1000)?),
        "quiescent" => s.quiescent = Some(yes_no(line)?),
        "fallback" | "fallback6" => {
            let f = fallback_line(line)?;
            let v6 = line.key == "fallback6";
            if f.ip.is_ipv6() != v6 {
                let want = if v6 { "an IPv6 address in brackets" } else { "an IPv4 address (fallback6 takes IPv6)" };
                return Err(ConfigError::invalid(&line.value_loc, format!("'{}' takes {want}", line.key)));
            }
            if v6 {
                s.fallback6 = Some(f);
            } else {
                s.fallback = Some(f);
            }
        }
        "fallbackcommand" => {
            let c = line.at();
            if c.value.trim().is_empty() {
                return Err(ConfigError::invalid(&line.value_loc, "fallbackcommand needs a command"));
            }
            s.fallbackcommand = Some(c);
        }
        "emailalert" | "emailalertfrom" | "emailalertfreq" | "emailalertstatus" | "smtp" => {
            r.warn(&line.key_loc, format!("'{}': hav sends no e-mail; a real server's notify_up/notify_down script can (see docs/ldirectord.md)", line.key));
        }
        "readdquiescent" => {
            if !yes_no(line)?.value {
                r.warn(&line.key_loc, "readdquiescent=no: hav keeps its IPVS table as configured and puts back a quiescent real server that was removed by hand");
            }
        }
        "cleanstop" => {
            if !yes_no(line)?.value {
                r.warn(&line.key_loc, "cleanstop=no: hav removes its virtual services when it stops unless started with -I (--dont-release-ipvs)");
            }
        }
        _ => return Ok(()),
    }
    Ok(())
}

fn global_option(r: &mut Reader, line: &Line) -> Result<(), ConfigError> {
    match line.key.as_str() {
        "autoreload" if yes_no(line)?.value => {
            r.warn(&line.key_loc, "autoreload=yes: hav does not watch its configuration file; it reloads on SIGHUP or 'hav-linux reload'");
        }
        "callback" => r.warn(&line.key_loc, "'callback': hav runs no command when its configuration file changes"),
        "logfile" => r.warn(&line.key_loc, "'logfile': hav logs to stderr (the journal under systemd), or to a file with -g"),
        "execute" => r.warn(&line.key_loc, "'execute': hav does not start other configurations; run one hav-linux per configuration"),
        "supervised" if yes_no(line)?.value => {
            r.warn(&line.key_loc, "supervised=yes: hav stays in the foreground with -n (--dont-fork)");
        }
        // hav checks every real server concurrently, what fork=yes is for; it decides a warning.
        "fork" => r.fork = yes_no(line)?.value,
        "maintenancedir" => r.warn(&line.key_loc, "'maintenancedir': hav does not force real servers down by files in a directory"),
        _ => {}
    }
    Ok(())
}

fn virtual_option(r: &mut Reader, v: &mut Virtual, line: &Line) -> Result<(), ConfigError> {
    match line.key.as_str() {
        "real" | "real6" => {
            let reals = real_line(line)?;
            for rs in &reals {
                if (line.key == "real6") != rs.ip.is_ipv6() {
                    let want = if line.key == "real6" { "real6 takes an IPv6 address in brackets" } else { "an IPv6 real server is written real6=[ADDRESS]:PORT" };
                    return Err(ConfigError::invalid(&line.value_loc, want));
                }
            }
            v.reals.extend(reals);
        }
        "checktype" => {
            let s = line.value();
            let t = match s.as_str() {
                "connect" => CheckType::Connect,
                "negotiate" => CheckType::Negotiate,
                "ping" => CheckType::Ping,
                "external" | "external-perl" => CheckType::External,
                "off" => CheckType::Off,
                "on" => CheckType::On,
                n => match n.parse::<u32>() {
                    Ok(n) if n >= 1 => CheckType::Combined(n),
                    _ => {
                        return Err(ConfigError::invalid(
                            &line.value_loc,
                            format!("checktype must be connect, external, external-perl, negotiate, off, on, ping or a number N >= 1, got '{s}'"),
                        ))
                    }
                },
            };
            v.checktype = Some(At::new(t, line.value_loc.clone()));
        }
        "service" => {
            let s = line.value();
            if !SERVICES.contains(&s.as_str()) {
                let hint = closest(&s, SERVICES.iter().copied()).map(|h| format!(" (did you mean '{h}'?)")).unwrap_or_default();
                return Err(ConfigError::invalid(&line.value_loc, format!("service must be one of {}, got '{s}'{hint}", SERVICES.join(" "))));
            }
            v.service = Some(At::new(s, line.value_loc.clone()));
        }
        "checkcommand" => v.checkcommand = Some(line.at()),
        "checkport" => v.checkport = Some(At::new(u16::try_from(number(line, 1, 65535)?.value).unwrap_or(1), line.value_loc.clone())),
        "request" => v.request = Some(line.at()),
        "receive" => v.receive = Some(line.at()),
        "httpmethod" => {
            let m = line.value().to_ascii_uppercase();
            if m != "GET" && m != "HEAD" {
                return Err(ConfigError::invalid(&line.value_loc, format!("httpmethod must be GET or HEAD, got '{}'", line.value())));
            }
            v.httpmethod = Some(At::new(m, line.value_loc.clone()));
        }
        "virtualhost" => v.virtualhost = Some(line.at()),
        "login" | "passwd" | "database" | "secret" => v.credentials.push(At::new(line.key.clone(), line.key_loc.clone())),
        "scheduler" => {
            let s = line.value();
            if s.is_empty() || !s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
                return Err(ConfigError::invalid(&line.value_loc, format!("'{s}' is not a scheduler name")));
            }
            v.scheduler = Some(At::new(s, line.value_loc.clone()));
        }
        "persistent" => v.persistent = Some(number(line, 0, 2_678_400)?),
        "netmask" => v.netmask = Some(line.at()),
        "protocol" => {
            let p = match line.value().as_str() {
                "tcp" => Proto::Tcp,
                "udp" => Proto::Udp,
                "fwm" => Proto::Fwm,
                other => return Err(ConfigError::invalid(&line.value_loc, format!("protocol must be tcp, udp or fwm, got '{other}'"))),
            };
            v.protocol = Some(At::new(p, line.value_loc.clone()));
        }
        "monitorfile" => r.warn(&line.key_loc, "'monitorfile': hav logs check results with its other messages, not to a file of their own"),
        "ops" => v.ops = Some(yes_no(line)?),
        _ => {}
    }
    Ok(())
}

/// The ldirectord.cf `text`, read as if from `file`, as the keepalived.conf statements it
/// means, and the warnings met on the way. Errors and warnings name `FILE:LINE:COL` of the
/// ldirectord.cf.
pub fn parse(file: &Path, text: &str) -> Result<(Vec<Node>, Vec<Warning>), ConfigError> {
    let file: Arc<Path> = Arc::from(file);
    let mut r = Reader { warnings: Vec::new(), seen: Vec::new(), fork: false };
    let mut global = Shared::default();
    let mut global_seen = Vec::new();
    let mut virtuals: Vec<Virtual> = Vec::new();
    let mut open = false;
    for (i, raw) in text.lines().enumerate() {
        let lineno = u32::try_from(i + 1).unwrap_or(u32::MAX);
        let Some(line) = split_line(&file, lineno, raw)? else { continue };
        let scope = OPTIONS.iter().find(|(n, _)| *n == line.key).map(|(_, s)| *s);
        if line.key == "virtual" || line.key == "virtual6" {
            if line.indented {
                return Err(ConfigError::invalid(&line.key_loc, format!("'{}' starts a virtual section and is not indented", line.key)));
            }
            // Options set twice are counted per section.
            if open {
                r.seen.clear();
            } else {
                global_seen = std::mem::take(&mut r.seen);
            }
            virtuals.push(virtual_line(&line)?);
            open = true;
            continue;
        }
        if line.indented {
            let Some(v) = virtuals.last_mut().filter(|_| open) else {
                return Err(ConfigError::invalid(&line.key_loc, "an indented line belongs to a virtual section, and no virtual= line is before it"));
            };
            if line.shallow {
                r.warn(&line.key_loc, "ldirectord wants the lines of a virtual section indented by at least 4 spaces or a tab");
            }
            match scope {
                None => return Err(unknown(&line, "virtual section")),
                Some(Scope::Global) => {
                    return Err(ConfigError::invalid(&line.key_loc, format!("'{}' is a global option: write it without indentation, outside the virtual sections", line.key)))
                }
                Some(_) => {}
            }
            if line.key != "real" && line.key != "real6" {
                r.once(&line);
            }
            shared_option(&mut r, &mut v.shared, &line)?;
            virtual_option(&mut r, v, &line)?;
        } else {
            if open {
                open = false;
                r.seen = std::mem::take(&mut global_seen);
            }
            match scope {
                None => return Err(unknown(&line, "global section")),
                Some(Scope::Virtual) => {
                    let hint = if virtuals.is_empty() { "after a virtual= line" } else { "under its virtual= line" };
                    return Err(ConfigError::invalid(
                        &line.key_loc,
                        format!("'{}' belongs to a virtual section: indent it (4 spaces or a tab) {hint}", line.key),
                    ));
                }
                Some(_) => {}
            }
            r.once(&line);
            shared_option(&mut r, &mut global, &line)?;
            global_option(&mut r, &line)?;
        }
    }
    if virtuals.is_empty() {
        r.warn(&Location::file(file.clone()), "no virtual= section: there is no virtual service to run");
    }
    let mut nodes = Vec::new();
    for v in &virtuals {
        nodes.push(virtual_server(&mut r, v, &global)?);
    }
    Ok((nodes, r.warnings))
}

// ---- keepalived statements ----

fn arg(text: impl Into<String>, loc: &Location) -> Arg {
    let text = text.into();
    Arg { quoted: needs_quotes(&text), text, loc: loc.clone() }
}

fn stmt(keyword: &str, loc: &Location, args: &[String]) -> Node {
    Node { keyword: keyword.to_string(), loc: loc.clone(), args: args.iter().map(|a| arg(a.clone(), loc)).collect(), block: None }
}

fn stmt1(keyword: &str, loc: &Location, value: impl ToString) -> Node {
    stmt(keyword, loc, &[value.to_string()])
}

fn flag(keyword: &str, loc: &Location) -> Node {
    stmt(keyword, loc, &[])
}

fn block(keyword: &str, loc: &Location, args: &[String], children: Vec<Node>) -> Node {
    let mut n = stmt(keyword, loc, args);
    n.block = Some(children);
    n
}

/// A string of ldirectord.cf as the text of a keepalived.conf argument: a `"` escaped, so that
/// the argument can be written in double quotes, and a final lone `\` doubled.
fn text_arg(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                out.push('\\');
                out.push(chars.next().unwrap_or('\\'));
            }
            '"' => out.push_str("\\\""),
            c => out.push(c),
        }
    }
    out
}

/// What checks a real server, in keepalived's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Probe {
    Tcp,
    Ping,
    Http { tls: bool },
    Dns,
    Smtp,
    Misc,
}

impl Probe {
    fn keyword(self) -> &'static str {
        match self {
            Probe::Tcp => "TCP_CHECK",
            Probe::Ping => "PING_CHECK",
            Probe::Http { tls: false } => "HTTP_GET",
            Probe::Http { tls: true } => "SSL_GET",
            Probe::Dns => "DNS_CHECK",
            Probe::Smtp => "SMTP_CHECK",
            Probe::Misc => "MISC_CHECK",
        }
    }

    /// Whether ldirectord times it with negotiatetimeout (else checktimeout).
    fn negotiates(self) -> bool {
        matches!(self, Probe::Http { .. } | Probe::Dns | Probe::Smtp)
    }

    fn uses_request(self) -> bool {
        matches!(self, Probe::Http { .. } | Probe::Dns)
    }
}

/// The checkers of one virtual service: each with the delay between its runs when that is not
/// the virtual service's.
struct Plan {
    probes: Vec<(Probe, Option<u32>)>,
}

fn connect_probe(proto: Proto) -> Probe {
    // ldirectord(8): ping is the connect check of UDP services.
    if proto == Proto::Udp {
        Probe::Ping
    } else {
        Probe::Tcp
    }
}

fn negotiate_probe(r: &mut Reader, service: &str, at: &Location, proto: Proto) -> Option<Probe> {
    let connect = connect_probe(proto);
    let instead = |p: Probe| match p {
        Probe::Ping => "PING_CHECK (ICMP echo, ldirectord's connect check for UDP)",
        _ => "TCP_CHECK (a TCP connect to the check port)",
    };
    match service {
        "none" => None,
        "http" => Some(Probe::Http { tls: false }),
        "https" => Some(Probe::Http { tls: true }),
        "smtp" | "submission" => Some(Probe::Smtp),
        "dns" => {
            if proto != Proto::Udp {
                r.warn(at, "service=dns: hav's DNS_CHECK queries over UDP, also for a TCP virtual service");
            }
            Some(Probe::Dns)
        }
        other => {
            r.warn(at, format!("service={other}: hav has no {other} check; it checks with {} instead", instead(connect)));
            Some(connect)
        }
    }
}

fn plan(r: &mut Reader, v: &Virtual, proto: Proto, interval: u32) -> Plan {
    let ct = v.checktype.as_ref().map_or(CheckType::Negotiate, |c| c.value);
    let ct_loc = v.checktype.as_ref().map_or(&v.loc, |c| &c.loc).clone();
    let port = match v.key {
        VirtualKey::Addr(a) => Some(a.port()),
        VirtualKey::Fwmark(_) => None,
    };
    let (service, service_loc) = match &v.service {
        Some(s) => (s.value.clone(), s.loc.clone()),
        None => (port.map_or("none", default_service).to_string(), ct_loc.clone()),
    };
    let probes = match ct {
        CheckType::On | CheckType::Off => Vec::new(),
        CheckType::Connect => vec![(connect_probe(proto), None)],
        CheckType::Ping => vec![(Probe::Ping, None)],
        CheckType::External => vec![(Probe::Misc, None)],
        CheckType::Negotiate => negotiate_probe(r, &service, &service_loc, proto).into_iter().map(|p| (p, None)).collect(),
        CheckType::Combined(n) => {
            let connect = connect_probe(proto);
            match negotiate_probe(r, &service, &service_loc, proto) {
                Some(p) if p != connect => vec![(connect, None), (p, Some(interval.saturating_mul(n)))],
                _ => vec![(connect, None)],
            }
        }
    };
    Plan { probes }
}

/// Which request strings hav's checks use, to warn about the ones nothing uses.
fn warn_unused(r: &mut Reader, v: &Virtual, plan: &Plan, service: &str) {
    let uses_request = plan.probes.iter().any(|(p, _)| p.uses_request());
    let uses_receive = plan.probes.iter().any(|(p, _)| matches!(p, Probe::Http { .. }));
    let uses_vhost = uses_receive;
    let checker = plan.probes.last().map_or("no check".to_string(), |(p, _)| p.keyword().to_string());
    if !uses_request {
        if let Some(q) = &v.request {
            r.warn(&q.loc, format!("'request' is not used: hav checks this service with {checker}"));
        }
    }
    if !uses_receive {
        if let Some(q) = &v.receive {
            let why = if plan.probes.iter().any(|(p, _)| *p == Probe::Dns) {
                "hav's DNS_CHECK needs a NOERROR answer and does not compare the addresses".to_string()
            } else {
                format!("hav checks this service with {checker}")
            };
            r.warn(&q.loc, format!("'receive' is not used: {why}"));
        }
    }
    if !uses_vhost {
        if let Some(q) = &v.virtualhost {
            r.warn(&q.loc, format!("'virtualhost' is not used: hav checks this service with {checker}"));
        }
    }
    for c in &v.credentials {
        r.warn(&c.loc, format!("'{}' is not used: hav has no {service} login check; it checks this service with {checker}", c.value));
    }
    if let Some(m) = &v.httpmethod {
        if m.value == "HEAD" && uses_receive {
            r.warn(&m.loc, "httpmethod=HEAD: hav's HTTP_GET sends GET");
        }
    }
    if !plan.probes.iter().any(|(p, _)| *p == Probe::Misc) {
        if let Some(c) = &v.checkcommand {
            r.warn(&c.loc, format!("'checkcommand' is not used: the checktype is not external; hav checks this service with {checker}"));
        }
    }
}

/// `path`, and the address, port and host name an `http://HOST[:PORT]/PATH` request names.
struct HttpTarget {
    path: String,
    ip: Option<IpAddr>,
    port: Option<u16>,
    host: Option<String>,
}

fn http_target(request: &str, at: &Location) -> Result<HttpTarget, ConfigError> {
    let rest = request.strip_prefix("http://").or_else(|| request.strip_prefix("https://"));
    let Some(rest) = rest else {
        return Ok(HttpTarget { path: format!("/{}", request.trim_start_matches('/')), ip: None, port: None, host: None });
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i..].to_string()),
        None => (rest, "/".to_string()),
    };
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (a, after) = v6.split_once(']').ok_or_else(|| ConfigError::invalid(at, format!("'{authority}': '[' without ']'")))?;
        (a.to_string(), after.strip_prefix(':').map(|p| port_of(p, at)).transpose()?)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(port_of(p, at)?)),
            None => (authority.to_string(), None),
        }
    };
    match host.parse::<IpAddr>() {
        Ok(ip) => Ok(HttpTarget { path, ip: Some(ip), port, host: None }),
        Err(_) => Ok(HttpTarget { path, ip: None, port, host: Some(host) }),
    }
}

struct Timeouts {
    check: u32,
    negotiate: u32,
    interval: u32,
}

fn checker(v: &Virtual, shared: &Shared, rs: &Real, rs_port: u16, probe: Probe, every: Option<u32>, t: &Timeouts) -> Result<Node, ConfigError> {
    let loc = &rs.loc;
    let mut body = Vec::new();
    let check_port = v.checkport.as_ref().map(|p| p.value);
    let mut connect_ip = None;
    let mut connect_port = check_port;
    match probe {
        Probe::Http { .. } => {
            let req = rs.request.clone().or_else(|| v.request.as_ref().map(|q| q.value.clone())).unwrap_or_else(|| "/".into());
            let req_loc = v.request.as_ref().filter(|_| rs.request.is_none()).map_or(loc, |q| &q.loc);
            let target = http_target(&req, req_loc)?;
            let receive = rs.receive.clone().or_else(|| v.receive.as_ref().map(|q| q.value.clone()));
            let mut url = vec![stmt1("path", req_loc, text_arg(&target.path))];
            if let Some(re) = receive {
                let at = v.receive.as_ref().filter(|_| rs.receive.is_none()).map_or(loc, |q| &q.loc);
                // ldirectord's receive is a Perl regexp; one hav's engine cannot read would fail
                // every check, so it is an error now rather than a dead pool later.
                if let Err(e) = regex::bytes::Regex::new(&re) {
                    let why = e.to_string().lines().last().unwrap_or_default().trim().to_string();
                    return Err(ConfigError::invalid(
                        at,
                        format!("receive '{re}' is not a regex hav can use ({why}; look-around and backreferences are Perl's only)"),
                    ));
                }
                url.push(stmt1("regex", at, text_arg(&re)));
            }
            body.push(block("url", req_loc, &[], url));
            let vhost = v.virtualhost.as_ref().map(|h| (h.value.clone(), h.loc.clone())).or_else(|| target.host.clone().map(|h| (h, req_loc.clone())));
            if let Some((h, at)) = vhost {
                body.push(stmt1("virtualhost", &at, text_arg(&h)));
            }
            connect_ip = target.ip;
            if target.port.is_some() {
                connect_port = target.port;
            }
        }
        Probe::Dns => {
            body.push(stmt1("type", loc, "A"));
            let req = rs.request.clone().or_else(|| v.request.as_ref().map(|q| q.value.clone()));
            if let Some(name) = req.filter(|n| n.parse::<IpAddr>().is_err()) {
                body.push(stmt1("name", loc, text_arg(&name)));
            }
        }
        Probe::Misc => {
            let cmd = v.checkcommand.as_ref().map_or(DEFAULT_CHECKCOMMAND.to_string(), |c| c.value.clone());
            let (vip, vport) = match v.key {
                VirtualKey::Addr(a) => (a.ip().to_string(), a.port()),
                VirtualKey::Fwmark(m) => (m.to_string(), check_port.unwrap_or(0)),
            };
            let at = v.checkcommand.as_ref().map_or(loc, |c| &c.loc);
            body.push(stmt1("misc_path", at, text_arg(&format!("{cmd} {vip} {vport} {} {rs_port}", rs.ip))));
            body.push(stmt1("misc_timeout", at, t.check));
        }
        Probe::Tcp | Probe::Ping | Probe::Smtp => {}
    }
    if let Some(ip) = connect_ip {
        body.push(stmt1("connect_ip", loc, ip));
    }
    if let Some(p) = connect_port.filter(|_| !matches!(probe, Probe::Ping | Probe::Misc)) {
        body.push(stmt1("connect_port", v.checkport.as_ref().map_or(loc, |c| &c.loc), p));
    }
    if probe != Probe::Misc {
        let timeout = if probe.negotiates() { t.negotiate } else { t.check };
        body.push(stmt1("connect_timeout", loc, timeout));
    }
    if let Some(d) = every {
        body.push(stmt1("delay_loop", v.checktype.as_ref().map_or(loc, |c| &c.loc), d));
    }
    let failures = shared.failurecount.as_ref().map_or(1, |f| f.value);
    let tries = if probe == Probe::Ping { failures.saturating_mul(shared.checkcount.as_ref().map_or(1, |c| c.value)) } else { failures };
    body.push(stmt1("retry", shared.failurecount.as_ref().map_or(loc, |f| &f.loc), tries - 1));
    if failures > 1 {
        body.push(stmt1("delay_before_retry", shared.failurecount.as_ref().map_or(loc, |f| &f.loc), t.interval));
    }
    Ok(block(probe.keyword(), loc, &[], body))
}

fn virtual_server(r: &mut Reader, v: &Virtual, global: &Shared) -> Result<Node, ConfigError> {
    let shared = v.shared.over(global);
    let loc = &v.loc;
    let (vport, v6) = match v.key {
        VirtualKey::Addr(a) => (Some(a.port()), a.is_ipv6()),
        VirtualKey::Fwmark(_) => (None, v.reals.first().is_some_and(|r| r.ip.is_ipv6())),
    };
    let proto = match (&v.protocol, &v.key) {
        (Some(p), VirtualKey::Fwmark(_)) if p.value != Proto::Fwm => {
            return Err(ConfigError::invalid(&p.loc, "a firewall-mark virtual service has protocol=fwm"));
        }
        (Some(p), VirtualKey::Addr(_)) if p.value == Proto::Fwm => {
            return Err(ConfigError::invalid(&p.loc, "protocol=fwm is for a firewall-mark virtual service; this one has an address and port (tcp or udp)"));
        }
        (Some(p), _) => p.value,
        (None, VirtualKey::Fwmark(_)) => Proto::Fwm,
        (None, VirtualKey::Addr(a)) if a.port() == 53 => Proto::Udp,
        (None, VirtualKey::Addr(_)) => Proto::Tcp,
    };
    let interval = shared.checkinterval.as_ref().map_or(DEFAULT_CHECKINTERVAL, |c| c.value);
    if let Some(c) = v.shared.checkinterval.as_ref().filter(|_| !r.fork) {
        r.warn(&c.loc, "checkinterval in a virtual section: ldirectord honours it only with fork=yes; hav always does");
    }
    let t = Timeouts {
        check: shared.checktimeout.as_ref().or(shared.negotiatetimeout.as_ref()).map_or(DEFAULT_CHECKTIMEOUT, |c| c.value),
        negotiate: shared.negotiatetimeout.as_ref().or(shared.checktimeout.as_ref()).map_or(DEFAULT_NEGOTIATETIMEOUT, |c| c.value),
        interval,
    };
    let checktype = v.checktype.as_ref().map_or(CheckType::Negotiate, |c| c.value);
    let plan = plan(r, v, proto, interval);
    let service = v.service.as_ref().map_or_else(|| vport.map_or("none", default_service).to_string(), |s| s.value.clone());
    warn_unused(r, v, &plan, &service);
    if let Some(c) = &shared.checkcount {
        if !plan.probes.iter().any(|(p, _)| *p == Probe::Ping) {
            r.warn(&c.loc, "checkcount applies to ping checks only (and is deprecated for failurecount); not used here");
        }
    }
    if checktype == CheckType::Off {
        let at = v.checktype.as_ref().map_or(loc, |c| &c.loc);
        r.warn(at, "checktype=off: the virtual service is created without its real and fallback servers, as ldirectord activates none");
    }

    let mut body = Vec::new();
    body.push(stmt1("delay_loop", shared.checkinterval.as_ref().map_or(loc, |c| &c.loc), interval));
    let sched = v.scheduler.as_ref().map_or(DEFAULT_SCHEDULER.to_string(), |s| s.value.clone());
    body.push(stmt1("lb_algo", v.scheduler.as_ref().map_or(loc, |s| &s.loc), sched));
    let method = v.reals.first().map(|r| r.method).or_else(|| shared.fallback.as_ref().and_then(|f| f.method)).unwrap_or(Method::Gate);
    body.push(stmt1("lb_kind", v.reals.first().map_or(loc, |r| &r.loc), method.lb_kind()));
    let proto_loc = v.protocol.as_ref().map_or(loc, |p| &p.loc);
    match proto {
        Proto::Udp => body.push(stmt1("protocol", proto_loc, "UDP")),
        Proto::Tcp => body.push(stmt1("protocol", proto_loc, "TCP")),
        Proto::Fwm => {}
    }
    let quiescent = shared.quiescent.as_ref().is_none_or(|q| q.value);
    if quiescent {
        body.push(flag("inhibit_on_failure", shared.quiescent.as_ref().map_or(loc, |q| &q.loc)));
    }
    if let Some(p) = v.persistent.as_ref().filter(|p| p.value > 0) {
        body.push(stmt1("persistence_timeout", &p.loc, p.value));
    }
    if let Some(m) = &v.netmask {
        let ok = if v6 { m.value.parse::<u8>().is_ok_and(|p| (1..=128).contains(&p)) } else { netmask_v4(&m.value) };
        if !ok {
            let want = if v6 { "a prefix length 1..128 for an IPv6 service" } else { "a dotted-quad IPv4 netmask (255.255.255.0)" };
            return Err(ConfigError::invalid(&m.loc, format!("netmask must be {want}, got '{}'", m.value)));
        }
        if v.persistent.as_ref().is_none_or(|p| p.value == 0) {
            r.warn(&m.loc, "netmask is the granularity of persistence, and this service has no 'persistent'; passed on as persistence_granularity");
        }
        body.push(stmt1("persistence_granularity", &m.loc, m.value.clone()));
    }
    if let Some(o) = &v.ops {
        if o.value {
            if proto != Proto::Udp {
                return Err(ConfigError::invalid(&o.loc, "ops=yes is for UDP services only"));
            }
            body.push(flag("ops", &o.loc));
        }
    }
    // ldirectord takes fallback for IPv4 services and fallback6 for IPv6 ones.
    let (misplaced, other) = if v6 { (v.shared.fallback.as_ref(), "fallback6") } else { (v.shared.fallback6.as_ref(), "fallback") };
    if let Some(f) = misplaced {
        let family = if v6 { "IPv6" } else { "IPv4" };
        r.warn(&f.loc, format!("this fallback's address family is not the {family} service's; ignored (write {other}=)"));
    }
    let fallback = if v6 { shared.fallback6.as_ref() } else { shared.fallback.as_ref() };
    if let Some(f) = fallback.filter(|_| checktype != CheckType::Off) {
        if f.ip.is_ipv6() != v6 {
            return Err(ConfigError::invalid(&f.loc, "the fallback server's address family differs from its virtual service's"));
        }
        let port = f.port.or(vport).unwrap_or(0);
        body.push(stmt(
            "sorry_server",
            &f.loc,
            &[f.ip.to_string(), port.to_string()],
        ));
        if let Some(m) = f.method.filter(|m| *m != method) {
            body.push(stmt1("sorry_server_lvs_method", &f.loc, m.lb_kind()));
        }
        if quiescent {
            body.push(flag("sorry_server_inhibit", &f.loc));
        }
    }
    if let Some(c) = &shared.fallbackcommand {
        // ldirectord runs it with "start" when the last real server goes down and with "stop"
        // when the first comes back: keepalived's quorum scripts with the default quorum of 1.
        body.push(stmt1("quorum_up", &c.loc, text_arg(&format!("{} stop", c.value))));
        body.push(stmt1("quorum_down", &c.loc, text_arg(&format!("{} start", c.value))));
    }

    if checktype != CheckType::Off {
        let uses_request = plan.probes.iter().any(|(p, _)| p.uses_request());
        let uses_receive = plan.probes.iter().any(|(p, _)| matches!(p, Probe::Http { .. }));
        let dns = plan.probes.iter().any(|(p, _)| *p == Probe::Dns);
        let mut told: Option<&Location> = None;
        for rs in &v.reals {
            // One warning per real= line, also when a range makes it many real servers.
            if told != Some(&rs.loc) {
                let request = rs.request.as_deref().or(v.request.as_ref().map(|q| q.value.as_str()));
                let what = if rs.request.is_some() && !uses_request {
                    Some("its request string is not used".to_string())
                } else if rs.receive.is_some() && !uses_receive {
                    Some("its receive string is not used".to_string())
                } else {
                    None
                };
                if let Some(what) = what {
                    let checker = plan.probes.last().map_or("no check", |(p, _)| p.keyword());
                    r.warn(&rs.loc, format!("real server: {what}: hav checks this service with {checker}"));
                }
                if dns && request.is_some_and(|q| q.parse::<IpAddr>().is_ok()) && (rs.request.is_some() || told.is_none()) {
                    r.warn(
                        rs.request.as_ref().map_or_else(|| v.request.as_ref().map_or(&rs.loc, |q| &q.loc), |_| &rs.loc),
                        "a PTR lookup: hav's DNS_CHECK asks no PTR record; it asks for the SOA of '.' instead",
                    );
                }
                told = Some(&rs.loc);
            }
            if rs.ip.is_ipv6() != v6 && !matches!(v.key, VirtualKey::Fwmark(_)) {
                return Err(ConfigError::invalid(&rs.loc, "the real server's address family differs from its virtual service's"));
            }
            let port = match (vport, rs.method) {
                (Some(vp), Method::Gate | Method::Ipip) => {
                    if rs.port.is_some_and(|p| p != vp) {
                        r.warn(&rs.loc, format!("a real server reached by {} gets the virtual service's port {vp}, as in ldirectord (port mapping needs masq)", if rs.method == Method::Gate { "gate" } else { "ipip" }));
                    }
                    vp
                }
                (Some(vp), Method::Masq) => rs.port.unwrap_or(vp),
                (None, _) => rs.port.unwrap_or(0),
            };
            let mut rb = vec![stmt1("weight", &rs.loc, rs.weight)];
            if rs.method != method {
                rb.push(stmt1("lvs_method", &rs.loc, rs.method.lb_kind()));
            }
            for (probe, every) in &plan.probes {
                if port == 0 && v.checkport.is_none() && !matches!(probe, Probe::Ping | Probe::Misc) {
                    return Err(ConfigError::invalid(
                        &rs.loc,
                        format!("{} of a real server without a port: set checkport in this virtual section", probe.keyword()),
                    ));
                }
                rb.push(checker(v, &shared, rs, port, *probe, *every, &t)?);
            }
            body.push(block("real_server", &rs.loc, &[rs.ip.to_string(), port.to_string()], rb));
        }
    }
    let args = match v.key {
        VirtualKey::Addr(a) => vec![a.ip().to_string(), a.port().to_string()],
        VirtualKey::Fwmark(m) => vec!["fwmark".to_string(), m.to_string()],
    };
    Ok(block("virtual_server", loc, &args, body))
}

fn netmask_v4(s: &str) -> bool {
    s.parse::<Ipv4Addr>().is_ok_and(|m| {
        let bits = u32::from(m);
        bits.leading_ones() + bits.trailing_zeros() == 32
    })
}

// ---- keepalived.conf text ----

/// Whether an argument must be written in double quotes to read back as the same text.
fn needs_quotes(text: &str) -> bool {
    text.is_empty() || text.chars().any(|c| c.is_whitespace() || matches!(c, '{' | '}' | '"' | '\'' | '#' | '!' | '$' | '\\' | '@' | '~'))
}

fn write_node(out: &mut String, n: &Node, depth: usize) {
    out.push_str(&"    ".repeat(depth));
    out.push_str(&n.keyword);
    for a in &n.args {
        out.push(' ');
        if needs_quotes(&a.text) {
            out.push('"');
            out.push_str(&a.text);
            out.push('"');
        } else {
            out.push_str(&a.text);
        }
    }
    match &n.block {
        None => out.push('\n'),
        Some(children) => {
            out.push_str(" {\n");
            for c in children {
                write_node(out, c, depth + 1);
            }
            out.push_str(&"    ".repeat(depth));
            out.push_str("}\n");
        }
    }
}

/// The statements [`parse`] made, as keepalived.conf text that loads to the same
/// configuration. Each `virtual_server` is preceded by a comment naming the line of the
/// ldirectord.cf it comes from.
pub fn print(nodes: &[Node]) -> String {
    let mut out = String::new();
    for n in nodes {
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&format!("# from {}\n", n.loc));
        write_node(&mut out, n, 0);
    }
    out
}

/// `vs` with every location set to one place: what two files that differ only in where things
/// are written mean the same (a converted file against its ldirectord.cf, in the tests).
pub fn same_places(mut vs: Vec<super::VirtualServer>) -> Vec<super::VirtualServer> {
    let here = Location::file(Arc::from(Path::new("-")));
    for v in &mut vs {
        v.location = here.clone();
        for r in &mut v.real_servers {
            r.location = here.clone();
            for c in &mut r.checkers {
                c.location = here.clone();
                if let super::CheckKind::Http(h) = &mut c.kind {
                    h.urls.iter_mut().for_each(|u| u.location = here.clone());
                }
            }
        }
    }
    vs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes(text: &str) -> Result<(String, Vec<String>), ConfigError> {
        let (n, w) = parse(Path::new("ld.cf"), text)?;
        Ok((print(&n), w.iter().map(ToString::to_string).collect()))
    }

    fn err(text: &str) -> String {
        parse(Path::new("ld.cf"), text).expect_err("an error").to_string()
    }

    #[test]
    fn test_detects_by_first_line() {
        assert!(is_ldirectord("# ldirectord\n\nchecktimeout=3\n"));
        assert!(is_ldirectord("virtual = 10.0.0.1:80\n"));
        assert!(is_ldirectord("chektimeout=3\n"), "a typo still reads as ldirectord.cf, for its error");
        assert!(!is_ldirectord("! keepalived\nglobal_defs {\n}\n"));
        assert!(!is_ldirectord("$IF=eth0\nvrrp_instance A {\n}\n"));
        assert!(!is_ldirectord("include a=b.conf\n"));
        assert!(!is_ldirectord(""));
    }

    #[test]
    fn test_sample_http_service() {
        let (text, warnings) = nodes(
            "checktimeout=3\ncheckinterval=1\nautoreload=yes\nquiescent=no\n\nvirtual=192.168.6.240:80\n\treal=192.168.6.2:80 gate\n\treal=192.168.6.3:80 gate 3\n\tfallback=127.0.0.1:80 gate\n\tservice=http\n\tscheduler=rr\n\tprotocol=tcp\n\tchecktype=negotiate\n\tcheckport=80\n\trequest=\"index.html\"\n\treceive=\"Test Page\"\n\tvirtualhost=www.x.y.z\n",
        )
        .expect("valid");
        let want = "# from ld.cf:6:1
virtual_server 192.168.6.240 80 {
    delay_loop 1
    lb_algo rr
    lb_kind DR
    protocol TCP
    sorry_server 127.0.0.1 80
    real_server 192.168.6.2 80 {
        weight 1
        HTTP_GET {
            url {
                path /index.html
                regex \"Test Page\"
            }
            virtualhost www.x.y.z
            connect_port 80
            connect_timeout 3
            retry 0
        }
    }
    real_server 192.168.6.3 80 {
        weight 3
        HTTP_GET {
            url {
                path /index.html
                regex \"Test Page\"
            }
            virtualhost www.x.y.z
            connect_port 80
            connect_timeout 3
            retry 0
        }
    }
}
";
        assert_eq!(text, want);
        assert_eq!(warnings, ["ld.cf:3:1: autoreload=yes: hav does not watch its configuration file; it reloads on SIGHUP or 'hav-linux reload'"]);
    }

    #[test]
    fn test_defaults_quiescent_wrr_and_timeouts() {
        // Nothing set: wrr, quiescent (inhibit_on_failure), checkinterval 10, negotiatetimeout 30.
        let (text, w) = nodes("virtual=10.0.0.1:443\n    real=10.0.1.1:443 masq\n").expect("valid");
        assert!(w.is_empty(), "{w:?}");
        for line in ["delay_loop 10", "lb_algo wrr", "lb_kind NAT", "inhibit_on_failure", "SSL_GET {", "path /", "connect_timeout 30", "retry 0"] {
            assert!(text.contains(line), "{line} in {text}");
        }
        // checktimeout only: the negotiate timeout takes it too; negotiatetimeout only: connect checks take it.
        let (text, _) = nodes("checktimeout=7\nvirtual=10.0.0.1:80\n    real=10.0.1.1:80 gate\n").expect("valid");
        assert!(text.contains("connect_timeout 7"), "{text}");
        let (text, _) = nodes("negotiatetimeout=9\nvirtual=10.0.0.1:22\n    real=10.0.1.1:22 gate\n    checktype=connect\n").expect("valid");
        assert!(text.contains("TCP_CHECK {") && text.contains("connect_timeout 9"), "{text}");
        // The virtual section overrides the global value.
        let (text, _) = nodes("checktimeout=7\nvirtual=10.0.0.1:22\n    real=10.0.1.1:22 gate\n    checktype=connect\n    checktimeout=2\n").expect("valid");
        assert!(text.contains("connect_timeout 2") && !text.contains("connect_timeout 7"), "{text}");
    }

    #[test]
    fn test_checktypes() {
        let base = "virtual=10.0.0.1:80\n    real=10.0.1.1:80 gate\n    checkinterval=4\n";
        let (on, _) = nodes(&format!("{base}    checktype=on\n")).expect("on");
        assert!(on.contains("real_server 10.0.1.1 80") && !on.contains("_CHECK") && !on.contains("HTTP_GET"), "{on}");
        let (off, w) = nodes(&format!("{base}    checktype=off\nfallback=127.0.0.1:80\n")).expect("off");
        assert!(!off.contains("real_server") && !off.contains("sorry_server"), "{off}");
        assert!(w.iter().any(|w| w.starts_with("ld.cf:4:15: checktype=off")), "{w:?}");
        let (ping, _) = nodes(&format!("{base}    checktype=ping\n    checkcount=3\n    failurecount=2\n")).expect("ping");
        assert!(ping.contains("PING_CHECK {") && ping.contains("retry 5") && ping.contains("delay_before_retry 4"), "{ping}");
        let (n, _) = nodes(&format!("{base}    checktype=3\n    request=\"/health\"\n")).expect("combined");
        let tcp = n.find("TCP_CHECK").expect("connect every interval");
        let http = n.find("HTTP_GET").expect("negotiate");
        assert!(tcp < http && n.contains("delay_loop 12") && n.contains("path /health"), "{n}");
        let (ext, _) = nodes(&format!("{base}    checktype=external\n    checkcommand=\"/usr/local/bin/check\"\n")).expect("external");
        assert!(ext.contains("misc_path \"/usr/local/bin/check 10.0.0.1 80 10.0.1.1 80\"") && ext.contains("misc_timeout 5"), "{ext}");
        let (ext, _) = nodes(&format!("{base}    checktype=external-perl\n")).expect("external-perl");
        assert!(ext.contains("misc_path \"/bin/true 10.0.0.1 80 10.0.1.1 80\""), "{ext}");
        // UDP: ldirectord's connect check is a ping.
        let (udp, _) = nodes("virtual=10.0.0.1:5060\n    real=10.0.1.1:5060 gate\n    protocol=udp\n    checktype=connect\n").expect("udp");
        assert!(udp.contains("protocol UDP") && udp.contains("PING_CHECK"), "{udp}");
    }

    #[test]
    fn test_services() {
        let svc = |s: &str, port: u16| nodes(&format!("virtual=10.0.0.1:{port}\n    real=10.0.1.1:{port} masq\n    service={s}\n")).expect(s);
        assert!(svc("smtp", 25).0.contains("SMTP_CHECK {"));
        assert!(svc("submission", 587).0.contains("SMTP_CHECK {"));
        let (dns, w) = nodes("virtual=10.0.0.1:53\n    real=10.0.1.1:53 masq\n    service=dns\n    request=\"www.example.com\"\n    receive=\"192.0.2.1\"\n").expect("dns");
        assert!(dns.contains("protocol UDP") && dns.contains("DNS_CHECK {") && dns.contains("type A") && dns.contains("name www.example.com"), "{dns}");
        assert!(w.iter().any(|w| w.starts_with("ld.cf:5:13: 'receive' is not used")), "{w:?}");
        for (s, port) in [("ftp", 21), ("imap", 143), ("pop", 110), ("ldap", 389), ("nntp", 119), ("mysql", 3306), ("pgsql", 5432), ("simpletcp", 7), ("http_proxy", 3128), ("oracle", 1521), ("imaps", 993), ("pops", 995)] {
            let (t, w) = svc(s, port);
            assert!(t.contains("TCP_CHECK {"), "{s}: {t}");
            assert!(w.iter().any(|w| w.starts_with("ld.cf:3:13: ") && w.contains(&format!("service={s}: hav has no {s} check"))), "{s}: {w:?}");
        }
        let (t, w) = nodes("virtual=10.0.0.1:1812\n    real=10.0.1.1:1812 gate\n    protocol=udp\n    service=radius\n    secret=\"s\"\n").expect("radius");
        assert!(t.contains("PING_CHECK"), "{t}");
        assert!(w.iter().any(|w| w.contains("'secret' is not used")), "{w:?}");
        let (t, _) = svc("none", 8080);
        assert!(t.contains("real_server") && !t.contains("CHECK") && !t.contains("_GET"), "{t}");
        // Without a service line, the port picks one: 80 is http, 8080 none.
        assert!(nodes("virtual=10.0.0.1:80\n    real=10.0.1.1:80 gate\n").expect("80").0.contains("HTTP_GET"));
        assert!(!nodes("virtual=10.0.0.1:8080\n    real=10.0.1.1:8080 gate\n").expect("8080").0.contains("CHECK"));
    }

    #[test]
    fn test_real_forms() {
        let (t, _) = nodes(
            "virtual=10.0.0.1:80\n    real=10.0.1.1->10.0.1.3:80 gate 5\n    real=10.0.2.1:8080 masq 2 \"/a.html\", \"ok\"\n    real=10.0.3.1 ipip\n    request=\"b.html\"\n",
        )
        .expect("valid");
        for rs in ["real_server 10.0.1.1 80", "real_server 10.0.1.2 80", "real_server 10.0.1.3 80", "real_server 10.0.2.1 8080", "real_server 10.0.3.1 80"] {
            assert!(t.contains(rs), "{rs} in {t}");
        }
        assert_eq!(t.matches("weight 5").count(), 3);
        assert!(t.contains("lvs_method NAT") && t.contains("lvs_method TUN"), "{t}");
        assert!(t.contains("path /a.html") && t.contains("regex ok") && t.contains("path /b.html"), "{t}");
        // gate takes the virtual port; port mapping is for masq only.
        let (t, w) = nodes("virtual=10.0.0.1:80\n    real=10.0.1.1:8080 gate\n").expect("valid");
        assert!(t.contains("real_server 10.0.1.1 80"), "{t}");
        assert!(w[0].starts_with("ld.cf:2:5: a real server reached by gate gets the virtual service's port 80"), "{w:?}");
        // An http:// request names the address and port to check.
        let (t, _) = nodes("virtual=10.0.0.1:80\n    real=10.0.1.1:80 gate 1 \"http://10.0.9.9:8081/st\", \"up\"\n").expect("valid");
        assert!(t.contains("path /st") && t.contains("connect_ip 10.0.9.9") && t.contains("connect_port 8081"), "{t}");
        let (t, _) = nodes("virtual=10.0.0.1:80\n    real=10.0.1.1:80 gate 1 \"http://www.example.com/st\",\"up\"\n").expect("valid");
        assert!(t.contains("virtualhost www.example.com") && !t.contains("connect_ip"), "{t}");
    }

    #[test]
    fn test_ipv6_fwmark_and_persistence() {
        let (t, _) = nodes("virtual6=[2001:db8::5]:119\n    real6=[2001:db8:0:1::4]:119 masq\n    service=nntp\n    persistent=600\n    netmask=64\nfallback6=[::1]:119\n").expect("v6");
        assert!(t.contains("virtual_server 2001:db8::5 119") && t.contains("real_server 2001:db8:0:1::4 119"), "{t}");
        assert!(t.contains("persistence_timeout 600") && t.contains("persistence_granularity 64") && t.contains("sorry_server ::1 119"), "{t}");
        let (t, _) = nodes("virtual=1\n    real=10.0.1.1 gate\n    real=10.0.1.2 gate\n    fallback=127.0.0.1:80 gate\n    service=http\n    checkport=80\n    protocol=fwm\n    persistent=300\n    netmask=255.255.255.0\n").expect("fwmark");
        assert!(t.contains("virtual_server fwmark 1") && t.contains("real_server 10.0.1.1 0") && t.contains("connect_port 80"), "{t}");
        assert!(!t.contains("protocol"), "{t}");
        assert!(t.contains("persistence_granularity 255.255.255.0") && t.contains("sorry_server_inhibit"), "{t}");
        // A fwmark service's connect check needs a port from somewhere.
        let e = err("virtual=2\n    real=10.0.1.1 gate\n    checktype=connect\n");
        assert_eq!(e, "ld.cf:2:5: TCP_CHECK of a real server without a port: set checkport in this virtual section");
    }

    #[test]
    fn test_fallback_and_fallbackcommand() {
        let (t, _) = nodes("fallback=127.0.0.1:8000 masq\nfallbackcommand=\"/etc/ha.d/fb.sh\"\nvirtual=10.0.0.1:80\n    real=10.0.1.1:80 gate\n    checktype=on\n").expect("valid");
        assert!(t.contains("sorry_server 127.0.0.1 8000\n    sorry_server_lvs_method NAT\n    sorry_server_inhibit"), "{t}");
        assert!(t.contains("quorum_up \"/etc/ha.d/fb.sh stop\"") && t.contains("quorum_down \"/etc/ha.d/fb.sh start\""), "{t}");
    }

    #[test]
    fn test_warned_options() {
        let (_, w) = nodes(
            "emailalert=\"root@example.com\"\nlogfile=\"local0\"\nmaintenancedir=/etc/ha.d/maint\ncleanstop=no\nsupervised=yes\nfork=no\nvirtual=10.0.0.1:80\n    real=10.0.1.1:80 gate\n    monitorfile=\"/var/log/m\"\n    httpmethod=HEAD\n    checkinterval=3\n    checkcount=2\n",
        )
        .expect("valid");
        let at: Vec<&str> = w.iter().map(|w| w.split(' ').next().unwrap_or("")).collect();
        assert_eq!(at, ["ld.cf:1:1:", "ld.cf:2:1:", "ld.cf:3:1:", "ld.cf:4:1:", "ld.cf:5:1:", "ld.cf:9:5:", "ld.cf:11:19:", "ld.cf:10:16:", "ld.cf:12:16:"], "{w:#?}");
    }

    #[test]
    fn test_errors_have_locations() {
        assert_eq!(err("checktimeout=3\nchecktimout=4\n"), "ld.cf:2:1: unknown keyword 'checktimout' in ldirectord.cf global section (did you mean 'checktimeout'?)");
        assert_eq!(err("virtual=10.0.0.1:80\n    reel=10.0.1.1:80 gate\n"), "ld.cf:2:5: unknown keyword 'reel' in ldirectord.cf virtual section (did you mean 'real'?)");
        assert_eq!(err("virtual=10.0.0.1:80\nreal=10.0.1.1:80 gate\n"), "ld.cf:2:1: 'real' belongs to a virtual section: indent it (4 spaces or a tab) under its virtual= line");
        assert_eq!(err("    real=10.0.1.1:80 gate\n"), "ld.cf:1:5: an indented line belongs to a virtual section, and no virtual= line is before it");
        assert_eq!(err("virtual=10.0.0.1:80\n\tautoreload=yes\n"), "ld.cf:2:2: 'autoreload' is a global option: write it without indentation, outside the virtual sections");
        assert_eq!(err("virtual=10.0.0.1:80\n    real=10.0.1.1:80 route\n"), "ld.cf:2:22: forwarding method must be gate, masq or ipip, got 'route'");
        assert_eq!(err("virtual=10.0.0.1:80\n    real=10.0.1.1:80\n"), "ld.cf:2:10: 'real' needs a forwarding method after the address: gate, masq or ipip");
        assert_eq!(err("virtual=10.0.0.1:80\n    real=web1:80 gate\n"), "ld.cf:2:10: 'web1' is a host name: hav needs an IP address here (ldirectord resolves names when it starts; write the address)");
        assert_eq!(err("virtual=10.0.0.1\n"), "ld.cf:1:9: 'virtual' needs ADDRESS:PORT or a firewall mark, got '10.0.0.1'");
        assert_eq!(err("virtual=10.0.0.1:80\n    checktype=sometimes\n").split(": ").next(), Some("ld.cf:2:15"));
        assert_eq!(err("virtual=10.0.0.1:80\n    service=htttp\n"), format!("ld.cf:2:13: service must be one of {}, got 'htttp' (did you mean 'http'?)", SERVICES.join(" ")));
        assert_eq!(err("virtual=10.0.0.1:80\n    protocol=fwm\n"), "ld.cf:2:14: protocol=fwm is for a firewall-mark virtual service; this one has an address and port (tcp or udp)");
        assert_eq!(err("virtual=10.0.0.1:80\n    netmask=255.0.255.0\n    persistent=60\n"), "ld.cf:2:13: netmask must be a dotted-quad IPv4 netmask (255.255.255.0), got '255.0.255.0'");
        assert_eq!(err("quiescent=maybe\n"), "ld.cf:1:11: 'quiescent' needs yes or no, got 'maybe'");
        assert_eq!(err("checkinterval=0\n"), "ld.cf:1:15: checkinterval must be between 1 and 31536000, got 0");
        assert_eq!(err("virtual=10.0.0.1:80\n    real=10.0.1.9->10.0.1.1:80 gate\n"), "ld.cf:2:10: range '10.0.1.9->10.0.1.1:80' runs backwards");
        assert_eq!(err("virtual=10.0.0.1:80\n    real=10.0.1.1:80 gate 1 \"/x\" \"y\" \"z\"\n"), "ld.cf:2:38: a real server takes at most two quoted strings: \"REQUEST\", \"RECEIVE\"");
        assert_eq!(err("virtual=10.0.0.1:80\n    real=10.0.1.1:80 gate 1 \"/x\n"), "ld.cf:2:29: unterminated quoted string");
        assert_eq!(err("virtual=10.0.0.1:80\n    real=[2001:db8::1]:80 gate\n"), "ld.cf:2:10: an IPv6 real server is written real6=[ADDRESS]:PORT");
        assert_eq!(err("garbage line\n"), "ld.cf:1:1: 'garbage line' is not an ldirectord.cf line: expected 'name=value'");
        assert_eq!(err("virtual=10.0.0.1:http\n    real=10.0.1.1:www gate\n    real=10.0.1.2:gopher gate\n"), "ld.cf:3:10: 'gopher' is not a port number or a service name hav knows (hav does not read /etc/services; write the number)");
    }

    #[test]
    fn test_remaining_options() {
        // connecttimeout is read as checktimeout; ops for UDP.
        let (t, w) = nodes("connecttimeout=6\nvirtual=10.0.0.1:9000\n    real=10.0.1.1:9000 masq\n    protocol=udp\n    ops=yes\n    checktype=connect\n").expect("valid");
        assert!(t.contains("    ops\n") && t.contains("PING_CHECK {\n            connect_timeout 6"), "{t}");
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(err("virtual=10.0.0.1:9000\n    ops=yes\n"), "ld.cf:2:9: ops=yes is for UDP services only");
        let (t, w) = nodes("checktimeout=3\n").expect("valid");
        assert_eq!((t.as_str(), w.as_slice()), ("", ["ld.cf: no virtual= section: there is no virtual service to run".to_string()].as_slice()));
        let (_, w) = nodes("callback=\"/x\"\nexecute=\"other.cf\"\nreaddquiescent=no\nreaddquiescent=yes\nemailalertfrom=a@b\nsmtp=192.0.2.25\nsupervised=no\nautoreload=no\n").expect("valid");
        let at: Vec<&str> = w.iter().map(|w| w.split(' ').next().unwrap_or("")).collect();
        // readdquiescent=yes is what hav does; set twice, it warns that it replaces the first.
        assert_eq!(at, ["ld.cf:1:1:", "ld.cf:2:1:", "ld.cf:3:1:", "ld.cf:4:1:", "ld.cf:5:1:", "ld.cf:6:1:", "ld.cf:"], "{w:#?}");
        assert!(w[3].contains("'readdquiescent' is set again"), "{w:?}");
        assert_eq!(err("virtual6=10.0.0.1:80\n"), "ld.cf:1:10: virtual6 takes an IPv6 address: [2001:db8::1]:80");
        assert_eq!(err("fallback6=127.0.0.1:80\n"), "ld.cf:1:11: 'fallback6' takes an IPv6 address in brackets");
        assert_eq!(err("fallback=[::1]:80\n"), "ld.cf:1:10: 'fallback' takes an IPv4 address (fallback6 takes IPv6)");
        assert_eq!(err("virtual=10.0.0.1:80\n    httpmethod=POST\n"), "ld.cf:2:16: httpmethod must be GET or HEAD, got 'POST'");
        assert_eq!(err("virtual=10.0.0.1:80\n    virtual=10.0.0.2:80\n"), "ld.cf:2:5: 'virtual' starts a virtual section and is not indented");
        // A global line between virtual sections ends the one before it.
        assert_eq!(err("virtual=10.0.0.1:80\nquiescent=no\n    real=10.0.1.1:80 gate\n"), "ld.cf:3:5: an indented line belongs to a virtual section, and no virtual= line is before it");
    }

    #[test]
    fn test_receive_regex_and_fallback_family() {
        let e = err("virtual=10.0.0.1:80\n    real=10.0.1.1:80 gate\n    receive=\"(?!down)\"\n");
        assert!(e.starts_with("ld.cf:3:13: receive '(?!down)' is not a regex hav can use ("), "{e}");
        let (t, w) = nodes("virtual6=[2001:db8::1]:80\n    real6=[2001:db8::2]:80 gate\n    fallback=127.0.0.1:80\n    checktype=on\n").expect("valid");
        assert!(!t.contains("sorry_server"), "{t}");
        assert_eq!(w, ["ld.cf:3:5: this fallback's address family is not the IPv6 service's; ignored (write fallback6=)"]);
    }

    /// One-character edits of a fixture (a deletion, or one of the characters the syntax turns
    /// on inserted) load or fails with a located error, never panics, and when it loads,
    /// its printed form loads to the same virtual servers.
    #[test]
    fn test_edits_of_the_sample_never_panic_and_round_trip() {
        use crate::config::{load_ldirectord, load_str};
        let sample = include_str!("../../../tests/fixtures/ldirectord/mixed.cf");
        let chars: Vec<char> = sample.chars().collect();
        let strip = super::same_places;
        let (mut loaded, mut failed) = (0, 0);
        // Every third position keeps the test quick in debug builds; the edits cycle through the
        // positions, so each edit meets every kind of place.
        let edits = [None, Some('='), Some('"'), Some('\t'), Some(' '), Some('#'), Some(':'), Some('9'), Some('>')];
        for i in (0..chars.len()).step_by(3) {
            for edit in [edits[(i / 3) % edits.len()], edits[(i / 3 + 4) % edits.len()]] {
                let mut c = chars.clone();
                match edit {
                    None => {
                        c.remove(i);
                    }
                    Some(x) => c.insert(i, x),
                }
                let text: String = c.into_iter().collect();
                match load_ldirectord(Path::new("ld.cf"), &text) {
                    Ok(l) => {
                        loaded += 1;
                        let (nodes, _) = parse(Path::new("ld.cf"), &text).expect("parsed once");
                        let printed = print(&nodes);
                        let again = load_str(Path::new("k.conf"), &printed).unwrap_or_else(|e| panic!("{e}\n{printed}"));
                        assert_eq!(strip(l.config.virtual_servers), strip(again.config.virtual_servers), "{text}");
                    }
                    Err(e) => {
                        failed += 1;
                        assert!(e.location().line >= 1, "{e}");
                    }
                }
            }
        }
        assert!(loaded > 0 && failed > 0, "{loaded} loaded, {failed} failed");
    }

    #[test]
    fn test_unused_per_real_strings_and_ptr() {
        let (_, w) = nodes("virtual=10.0.0.1:22\n    real=10.0.1.1->10.0.1.3:22 gate 1 \"/x\", \"y\"\n    checktype=connect\n").expect("valid");
        assert_eq!(w, ["ld.cf:2:5: real server: its request string is not used: hav checks this service with TCP_CHECK"]);
        let (t, w) = nodes("virtual=10.0.0.1:53\n    real=10.0.1.1:53 masq\n    real=10.0.1.2:53 masq\n    request=\"192.0.2.1\"\n").expect("valid");
        assert!(t.contains("DNS_CHECK {") && !t.contains("name "), "{t}");
        assert_eq!(w, ["ld.cf:4:13: a PTR lookup: hav's DNS_CHECK asks no PTR record; it asks for the SOA of '.' instead"]);
    }

    #[test]
    fn test_comments_blanks_and_repeats() {
        let (t, w) = nodes("# c\n\nvirtual = 10.0.0.1:80   # the web\n    real = 10.0.1.1:80 gate\n    scheduler=wlc\n    scheduler=rr\n").expect("valid");
        assert!(t.contains("lb_algo rr") && !t.contains("wlc"), "{t}");
        assert_eq!(w, ["ld.cf:6:5: 'scheduler' is set again; this value replaces the one at ld.cf:5:5"]);
        let (_, w) = nodes("fork=yes\nvirtual=10.0.0.1:80\n    real=10.0.1.1:80 gate\n    checkinterval=2\n").expect("fork");
        assert!(w.is_empty(), "with fork=yes ldirectord honours checkinterval too: {w:?}");
        let (_, w) = nodes("virtual=10.0.0.1:80\n  real=10.0.1.1:80 gate\n").expect("shallow");
        assert!(w[0].starts_with("ld.cf:2:3: ldirectord wants the lines of a virtual section indented"), "{w:?}");
    }

    #[test]
    fn test_quoting_survives_printing() {
        assert_eq!(text_arg("a\"b"), "a\\\"b");
        assert_eq!(text_arg("end\\"), "end\\\\");
        assert!(needs_quotes("Test Page") && needs_quotes("a#b") && needs_quotes("") && !needs_quotes("/index.html"));
    }
}
