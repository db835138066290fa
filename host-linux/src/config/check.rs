//! Health checkers inside `real_server { ... }`.
//!
//! keepalived's checkers (`TCP_CHECK`, `HTTP_GET`, `SSL_GET`, `SMTP_CHECK`,
//! `DNS_CHECK`, `PING_CHECK`, `UDP_CHECK`, `MISC_CHECK`, `FILE_CHECK`) plus one
//! hav extension, `WASM_CHECK`:
//!
//! ```text
//! WASM_CHECK {
//!     policy /etc/hav/policies/http_ok.wasm   # a path or a policy name
//!     targets {                               # extra endpoints the policy may reach,
//!         http_get 10.0.0.5 8080              # each for one kind of host call
//!         dns_query 10.0.0.53 53  10.0.0.54 53
//!     }
//!     timeout 2                               # wall-clock limit per run
//!     args "path=/health status=200"          # free-form, handed to the policy
//!     delay_loop 5
//!     retry 2
//! }
//! ```
//!
//! A `targets` line starts with the host call it allows (`tcp_connect`, `http_get`,
//! `dns_query`, `udp_probe`; [`HostCall`]) followed by `IP PORT` pairs. A line of bare pairs
//! (the form before kinds existed) allows every kind, with a warning. Besides its `targets`, a
//! WASM_CHECK's policy may reach the real server it checks, by the host calls its virtual
//! server's `protocol` implies ([`HostCalls::for_protocol`]).
//!
//! keepalived itself rejects `WASM_CHECK`; configs using it are hav-only.

use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::time::Duration;

use super::error::{ConfigError, Location};
use super::lvs::Protocol;
use super::parser::Node;
use super::value::{int_arg, Ctx, RunAs, Script};

/// Options every checker shares, defaults already resolved (checker, then
/// real server / virtual server, then keepalived's default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckCommon {
    /// `connect_ip`; the real server's address when absent.
    pub connect_ip: Option<IpAddr>,
    /// `connect_port`; the real server's port when absent.
    pub connect_port: Option<u16>,
    /// `bindto`: source address.
    pub bindto: Option<IpAddr>,
    /// `bind_port`: source port.
    pub bind_port: Option<u16>,
    /// `bind_if`: source interface (for link-local addresses).
    pub bind_if: Option<String>,
    /// `fwmark` to set on check packets.
    pub fwmark: Option<u32>,
    /// `connect_timeout`, default 5 s.
    pub connect_timeout: Duration,
    /// `retry` (old name `nb_get_retry`), default 1.
    pub retry: u32,
    /// `delay_before_retry`, default 1 s.
    pub delay_before_retry: Duration,
    /// `delay_loop`: interval between checks; the virtual server's when absent.
    pub delay_loop: Duration,
    /// `warmup`: random delay before the first check, up to this.
    pub warmup: Option<Duration>,
    /// `alpha`: start the real server as down until the first success.
    pub alpha: bool,
}

/// Checker-level values that fall back to the virtual server / real server.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct CheckDefaults {
    pub(crate) connect_timeout: Option<Duration>,
    pub(crate) retry: Option<u32>,
    pub(crate) delay_before_retry: Option<Duration>,
    pub(crate) delay_loop: Option<Duration>,
    pub(crate) warmup: Option<Duration>,
    pub(crate) alpha: Option<bool>,
}

/// One `url { ... }` of HTTP_GET / SSL_GET.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    /// `path`, required.
    pub path: String,
    /// `digest`: MD5 of the body, hex.
    pub digest: Option<String>,
    /// `status_code` values and ranges; empty means 200-299.
    pub status_codes: Vec<RangeInclusive<u16>>,
    /// `regex`: the body must match.
    pub regex: Option<String>,
    /// `regex_no_match`: invert the regex.
    pub regex_no_match: bool,
    /// `virtualhost` override for this URL.
    pub virtualhost: Option<String>,
    /// Where the url block is.
    pub location: Location,
}

/// HTTP_GET / SSL_GET.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpCheck {
    /// `SSL_GET` (true) or `HTTP_GET`.
    pub tls: bool,
    /// The URLs to fetch.
    pub urls: Vec<Url>,
    /// `virtualhost`: Host header.
    pub virtualhost: Option<String>,
    /// `sni_server_name`.
    pub sni_server_name: Option<String>,
    /// `enable_sni`.
    pub enable_sni: bool,
    /// `http_protocol` (`1.0`, `1.1`, `1.0C`, `1.0K`).
    pub http_protocol: Option<String>,
}

/// SMTP_CHECK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpCheck {
    /// `helo_name`, default the local host name.
    pub helo_name: Option<String>,
}

/// DNS_CHECK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsCheck {
    /// `type`, default SOA.
    pub query_type: String,
    /// `name`, default `.`.
    pub name: String,
}

/// UDP_CHECK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdpCheck {
    /// `payload` (hex), sent in each probe.
    pub payload: Option<Vec<u8>>,
    /// `require_reply [HEX]`: a reply is needed, optionally matching these bytes.
    pub require_reply: Option<Vec<u8>>,
    /// `min_reply_length`.
    pub min_reply_length: Option<u32>,
    /// `max_reply_length`.
    pub max_reply_length: Option<u32>,
}

/// MISC_CHECK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MiscCheck {
    /// `misc_path`, required.
    pub misc_path: Script,
    /// `misc_timeout`; the delay loop when absent.
    pub misc_timeout: Option<Duration>,
    /// `misc_dynamic`: exit code 2..=255 sets weight = code - 2.
    pub misc_dynamic: bool,
    /// `user USER [GROUP]`.
    pub user: Option<RunAs>,
}

/// FILE_CHECK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileCheck {
    /// `track_file NAME`: a `vrrp_track_file`, required.
    pub track_file: String,
    /// `weight W [reverse]`.
    pub weight: Option<i32>,
    /// `reverse`.
    pub reverse: bool,
}

/// A kind of policy host call, as a `targets` line names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HostCall {
    /// `tcp_connect`: open a TCP connection.
    TcpConnect,
    /// `http_get`: an HTTP or HTTPS GET.
    HttpGet,
    /// `dns_query`: a DNS query over UDP.
    DnsQuery,
    /// `udp_probe`: a UDP datagram, and maybe its reply.
    UdpProbe,
}

impl HostCall {
    /// Every kind.
    pub const ALL: [HostCall; 4] = [HostCall::TcpConnect, HostCall::HttpGet, HostCall::DnsQuery, HostCall::UdpProbe];

    /// The config keyword.
    pub fn name(self) -> &'static str {
        match self {
            HostCall::TcpConnect => "tcp_connect",
            HostCall::HttpGet => "http_get",
            HostCall::DnsQuery => "dns_query",
            HostCall::UdpProbe => "udp_probe",
        }
    }

    /// The kind a config keyword names.
    pub fn from_name(name: &str) -> Option<HostCall> {
        HostCall::ALL.into_iter().find(|c| c.name() == name)
    }

    fn bit(self) -> u8 {
        1 << self as u8
    }
}

impl std::fmt::Display for HostCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of [`HostCall`] kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct HostCalls(u8);

impl HostCalls {
    /// No kind.
    pub const NONE: HostCalls = HostCalls(0);
    /// Every kind.
    pub const ALL: HostCalls = HostCalls(0b1111);

    /// The set of one kind.
    pub fn only(call: HostCall) -> HostCalls {
        HostCalls(call.bit())
    }

    /// This set and `call`.
    pub fn with(self, call: HostCall) -> HostCalls {
        HostCalls(self.0 | call.bit())
    }

    /// The kinds in either set.
    pub fn union(self, other: HostCalls) -> HostCalls {
        HostCalls(self.0 | other.0)
    }

    /// Whether `call` is in the set.
    pub fn contains(self, call: HostCall) -> bool {
        self.0 & call.bit() != 0
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The host calls a WASM_CHECK's policy may make to the real server it checks, by the
    /// virtual server's `protocol`: TCP allows `tcp_connect` and `http_get`, UDP allows
    /// `udp_probe` and `dns_query`, SCTP none (no host call speaks SCTP).
    pub fn for_protocol(protocol: Protocol) -> HostCalls {
        match protocol {
            Protocol::Tcp => HostCalls::only(HostCall::TcpConnect).with(HostCall::HttpGet),
            Protocol::Udp => HostCalls::only(HostCall::UdpProbe).with(HostCall::DnsQuery),
            Protocol::Sctp => HostCalls::NONE,
        }
    }
}

impl std::fmt::Display for HostCalls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut first = true;
        for c in HostCall::ALL.into_iter().filter(|c| self.contains(*c)) {
            if !first {
                f.write_str(", ")?;
            }
            first = false;
            f.write_str(c.name())?;
        }
        if first {
            f.write_str("none")?;
        }
        Ok(())
    }
}

/// One endpoint a policy may reach, and by which host calls (a `targets` entry).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PolicyTarget {
    /// The endpoint.
    pub addr: SocketAddr,
    /// The host calls that may reach it.
    pub calls: HostCalls,
}

impl PolicyTarget {
    /// `addr` for `call` only.
    pub fn new(call: HostCall, addr: SocketAddr) -> PolicyTarget {
        PolicyTarget { addr, calls: HostCalls::only(call) }
    }

    /// `addr` for every kind of host call (a `targets` line of bare `IP PORT` pairs).
    pub fn any(addr: SocketAddr) -> PolicyTarget {
        PolicyTarget { addr, calls: HostCalls::ALL }
    }
}

/// WASM_CHECK (hav extension).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WasmCheck {
    /// `policy`: a policy name or a path to a `.wasm` module, required.
    pub policy: String,
    /// `targets { [KIND] IP PORT ... }`: the endpoints the policy may reach besides the real
    /// server, each for the host calls its line names.
    pub targets: Vec<PolicyTarget>,
    /// The `protocol` of the virtual server this check's real server belongs to (TCP outside
    /// one): which host calls may reach the real server ([`HostCalls::for_protocol`]).
    pub protocol: Protocol,
    /// `timeout`: wall-clock limit of one policy run, default the connect timeout.
    pub timeout: Option<Duration>,
    /// `args STRING`: free-form arguments handed to the policy (`CheckRequest::args`).
    pub args: Option<String>,
}

/// What a checker checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckKind {
    /// TCP_CHECK: a TCP connect.
    Tcp,
    /// TCP_CHECK with `half_open` (a hav extension): a raw SYN; a SYN-ACK is up.
    TcpHalfOpen,
    /// HTTP_GET / SSL_GET.
    Http(HttpCheck),
    /// SMTP_CHECK.
    Smtp(SmtpCheck),
    /// DNS_CHECK.
    Dns(DnsCheck),
    /// PING_CHECK: ICMP echo.
    Ping,
    /// UDP_CHECK.
    Udp(UdpCheck),
    /// MISC_CHECK: a script.
    Misc(MiscCheck),
    /// FILE_CHECK: a tracked file's value.
    File(FileCheck),
    /// WASM_CHECK: a hav WASM policy.
    Wasm(WasmCheck),
}

/// One checker of a real server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checker {
    /// What it checks and how.
    pub kind: CheckKind,
    /// Shared options.
    pub common: CheckCommon,
    /// Where the checker block starts.
    pub location: Location,
}

/// The checker block keywords.
pub const CHECKER_KEYWORDS: &[&str] =
    &["TCP_CHECK", "HTTP_GET", "SSL_GET", "SMTP_CHECK", "DNS_CHECK", "PING_CHECK", "UDP_CHECK", "MISC_CHECK", "FILE_CHECK", "WASM_CHECK"];

fn hex_bytes(arg: &super::parser::Arg) -> Result<Vec<u8>, ConfigError> {
    let s = arg.text.trim_start_matches("0x");
    if !s.len().is_multiple_of(2) || !s.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(ConfigError::invalid(&arg.loc, format!("invalid hex string '{}'", arg.text)));
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).map_err(|_| ConfigError::invalid(&arg.loc, "invalid hex string")))
        .collect()
}

fn status_codes(ctx: &mut Ctx, n: &Node) -> Result<Vec<RangeInclusive<u16>>, ConfigError> {
    if n.args.is_empty() {
        ctx.value(n)?;
    }
    let mut out = Vec::new();
    for a in &n.args {
        for part in a.text.split(',').filter(|p| !p.is_empty()) {
            let bad = || ConfigError::invalid(&a.loc, format!("invalid status_code '{part}' (use N or N-M within 100-599)"));
            let (lo, hi) = match part.split_once('-') {
                Some((l, h)) => (l.parse::<u16>().map_err(|_| bad())?, h.parse::<u16>().map_err(|_| bad())?),
                None => {
                    let v = part.parse::<u16>().map_err(|_| bad())?;
                    (v, v)
                }
            };
            if !(100..=599).contains(&lo) || !(100..=599).contains(&hi) || lo > hi {
                return Err(bad());
            }
            out.push(lo..=hi);
        }
    }
    Ok(out)
}

fn url(ctx: &mut Ctx, n: &Node, block: &str) -> Result<Url, ConfigError> {
    let mut u = Url {
        path: String::new(),
        digest: None,
        status_codes: Vec::new(),
        regex: None,
        regex_no_match: false,
        virtualhost: None,
        location: n.loc.clone(),
    };
    let mut path = None;
    for e in ctx.children(n)? {
        match e.keyword.as_str() {
            "path" => path = Some(ctx.string(e)?),
            "digest" => {
                let a = ctx.value(e)?;
                if a.text.len() != 32 || !a.text.chars().all(|c| c.is_ascii_hexdigit()) {
                    return Err(ConfigError::invalid(&a.loc, format!("digest must be 32 hex digits (MD5), got '{}'", a.text)));
                }
                u.digest = Some(a.text.to_ascii_lowercase());
            }
            "status_code" => u.status_codes.extend(status_codes(ctx, e)?),
            "regex" => u.regex = Some(ctx.string(e)?),
            "regex_no_match" => u.regex_no_match = ctx.flag(e)?,
            "virtualhost" => u.virtualhost = Some(ctx.string(e)?),
            _ => ctx.unknown(e, block)?,
        }
    }
    u.path = path.ok_or_else(|| ConfigError::invalid(&n.loc, "url block without 'path'"))?;
    Ok(u)
}

impl Checker {
    /// Parses a checker block. `defaults` are the virtual server / real server
    /// level values for the common options.
    pub(crate) fn from_node(ctx: &mut Ctx, n: &Node, defaults: &CheckDefaults, vs_delay_loop: Duration) -> Result<Self, ConfigError> {
        let block = n.keyword.as_str();
        let mut local = CheckDefaults::default();
        let mut common = CheckCommon {
            connect_ip: None,
            connect_port: None,
            bindto: None,
            bind_port: None,
            bind_if: None,
            fwmark: None,
            connect_timeout: Duration::from_secs(5),
            // keepalived.conf(5): retry defaults to 3 for DNS_CHECK, 0 for MISC_CHECK, else 1;
            // delay_before_retry to 3 s for HTTP_GET/SSL_GET, delay_loop for DNS_CHECK, else 1 s.
            retry: match block {
                "DNS_CHECK" => 3,
                "MISC_CHECK" => 0,
                _ => 1,
            },
            delay_before_retry: Duration::from_secs(if matches!(block, "HTTP_GET" | "SSL_GET") { 3 } else { 1 }),
            delay_loop: vs_delay_loop,
            warmup: None,
            alpha: false,
        };
        let mut http = HttpCheck { tls: block == "SSL_GET", urls: Vec::new(), virtualhost: None, sni_server_name: None, enable_sni: false, http_protocol: None };
        let mut smtp = SmtpCheck { helo_name: None };
        let mut dns = DnsCheck { query_type: "SOA".into(), name: ".".into() };
        let mut udp = UdpCheck { payload: None, require_reply: None, min_reply_length: None, max_reply_length: None };
        let mut misc_path = None;
        let mut misc = (None, false, None);
        let mut file = (None, None, false);
        let mut wasm = (None, Vec::new(), None, None);
        let mut half_open = false;

        let path = format!("virtual_server/real_server/{block}");
        for e in ctx.children(n)? {
            let kw = e.keyword.as_str();
            // The table decides what this checker takes: a keyword keepalived
            // does not know here is an error even where a shared arm below
            // would read it.
            match super::keywords::block(&path).and_then(|b| b.get(kw)).map(|k| k.support) {
                None | Some(super::keywords::Support::Ignored(_)) => {
                    ctx.unknown(e, &path)?;
                    continue;
                }
                _ => {}
            }
            match kw {
                "sni_name" => http.sni_server_name = Some(ctx.string(e)?),
                "connect_ip" => common.connect_ip = Some(ctx.ip(e)?),
                "connect_port" => common.connect_port = Some(ctx.port(e)?),
                "bindto" => common.bindto = Some(ctx.ip(e)?),
                "bind_port" => common.bind_port = Some(ctx.port(e)?),
                "bind_if" => common.bind_if = Some(ctx.string(e)?),
                "fwmark" => common.fwmark = Some(ctx.u32(e, 0, u32::MAX)?),
                "connect_timeout" => local.connect_timeout = Some(ctx.timer(e)?),
                "retry" | "nb_get_retry" => local.retry = Some(ctx.u32(e, 0, u32::MAX)?),
                "delay_before_retry" => local.delay_before_retry = Some(ctx.timer(e)?),
                "delay_loop" => local.delay_loop = Some(ctx.timer(e)?),
                "warmup" => local.warmup = Some(ctx.timer(e)?),
                "alpha" => local.alpha = Some(ctx.flag(e)?),
                "no_alpha" => local.alpha = Some(false),
                _ => {
                    let handled = match block {
                        "HTTP_GET" | "SSL_GET" => match kw {
                            "url" => {
                                http.urls.push(url(ctx, e, &format!("{path}/url"))?);
                                true
                            }
                            "virtualhost" => {
                                http.virtualhost = Some(ctx.string(e)?);
                                true
                            }
                            "sni_server_name" => {
                                http.sni_server_name = Some(ctx.string(e)?);
                                true
                            }
                            "enable_sni" => {
                                http.enable_sni = ctx.flag(e)?;
                                true
                            }
                            "http_protocol" => {
                                http.http_protocol = Some(ctx.string(e)?);
                                true
                            }
                            _ => false,
                        },
                        "TCP_CHECK" => match kw {
                            "half_open" => {
                                half_open = ctx.flag(e)?;
                                true
                            }
                            _ => false,
                        },
                        "SMTP_CHECK" => match kw {
                            "helo_name" => {
                                smtp.helo_name = Some(ctx.string(e)?);
                                true
                            }
                            _ => false,
                        },
                        "DNS_CHECK" => match kw {
                            "type" => {
                                let t = ctx.string(e)?.to_ascii_uppercase();
                                const TYPES: &[&str] = &["A", "NS", "CNAME", "SOA", "MX", "TXT", "AAAA"];
                                if !TYPES.contains(&t.as_str()) {
                                    return Err(ConfigError::invalid(&e.args[0].loc, format!("DNS_CHECK type must be one of {}, got '{t}'", TYPES.join("|"))));
                                }
                                dns.query_type = t;
                                true
                            }
                            "name" => {
                                dns.name = ctx.string(e)?;
                                true
                            }
                            _ => false,
                        },
                        "UDP_CHECK" => match kw {
                            "payload" => {
                                udp.payload = Some(hex_bytes(ctx.value(e)?)?);
                                true
                            }
                            "require_reply" => {
                                udp.require_reply = Some(match e.args.first() {
                                    Some(a) => hex_bytes(a)?,
                                    None => Vec::new(),
                                });
                                true
                            }
                            "min_reply_length" => {
                                udp.min_reply_length = Some(ctx.u32(e, 0, 65535)?);
                                true
                            }
                            "max_reply_length" => {
                                udp.max_reply_length = Some(ctx.u32(e, 0, 65535)?);
                                true
                            }
                            _ => false,
                        },
                        "MISC_CHECK" => match kw {
                            "misc_path" => {
                                misc_path = Some(ctx.script(e)?);
                                true
                            }
                            "misc_timeout" => {
                                misc.0 = Some(ctx.timer(e)?);
                                true
                            }
                            "misc_dynamic" => {
                                misc.1 = ctx.flag(e)?;
                                true
                            }
                            "user" => {
                                let user = ctx.string_first(e)?;
                                misc.2 = Some(RunAs { user, group: e.args.get(1).map(|a| a.text.clone()) });
                                true
                            }
                            _ => false,
                        },
                        "FILE_CHECK" => match kw {
                            "track_file" | "file" => {
                                file.0 = Some(ctx.string(e)?);
                                true
                            }
                            "weight" => {
                                ctx.string_first(e)?;
                                let arg = &e.args[0];
                                file.1 = Some(i32::try_from(int_arg(arg, "weight", -254, 254)?).unwrap_or(0));
                                file.2 = e.args.get(1).is_some_and(|r| r.text == "reverse");
                                true
                            }
                            _ => false,
                        },
                        "WASM_CHECK" => match kw {
                            "policy" => {
                                wasm.0 = Some(ctx.string(e)?);
                                true
                            }
                            "timeout" => {
                                wasm.2 = Some(ctx.timer(e)?);
                                true
                            }
                            "args" => {
                                ctx.string_first(e)?;
                                wasm.3 = Some(e.args.iter().map(|a| a.text.as_str()).collect::<Vec<_>>().join(" "));
                                true
                            }
                            "targets" => {
                                wasm.1.extend(super::value::targets_block(ctx, e)?);
                                true
                            }
                            _ => false,
                        },
                        _ => false,
                    };
                    if !handled {
                        ctx.unknown(e, &path)?;
                    }
                }
            }
        }
        // Resolution order: the checker's own value, the real server / virtual
        // server value, keepalived's default.
        if let Some(v) = local.connect_timeout.or(defaults.connect_timeout) {
            common.connect_timeout = v;
        }
        if let Some(v) = local.retry.or(defaults.retry) {
            common.retry = v;
        }
        if let Some(v) = local.delay_before_retry.or(defaults.delay_before_retry) {
            common.delay_before_retry = v;
        }
        if let Some(v) = local.delay_loop.or(defaults.delay_loop) {
            common.delay_loop = v;
        }
        if block == "DNS_CHECK" && local.delay_before_retry.or(defaults.delay_before_retry).is_none() {
            common.delay_before_retry = common.delay_loop;
        }
        common.warmup = local.warmup.or(defaults.warmup);
        common.alpha = local.alpha.or(defaults.alpha).unwrap_or(false);

        if half_open && common.bind_port.is_some() {
            ctx.warn(&n.loc, "TCP_CHECK half_open: the SYN comes from the port hav reserves for half-open probes; bind_port is not used");
        }
        let kind = match block {
            "TCP_CHECK" if half_open => CheckKind::TcpHalfOpen,
            "TCP_CHECK" => CheckKind::Tcp,
            "HTTP_GET" | "SSL_GET" => {
                if http.urls.is_empty() {
                    return Err(ConfigError::invalid(&n.loc, format!("{block} needs at least one url {{ path ... }}")));
                }
                CheckKind::Http(http)
            }
            "SMTP_CHECK" => CheckKind::Smtp(smtp),
            "DNS_CHECK" => CheckKind::Dns(dns),
            "PING_CHECK" | "ICMP_CHECK" => CheckKind::Ping,
            "UDP_CHECK" => CheckKind::Udp(udp),
            "MISC_CHECK" => CheckKind::Misc(MiscCheck {
                misc_path: misc_path.ok_or_else(|| ConfigError::invalid(&n.loc, "MISC_CHECK needs 'misc_path'"))?,
                misc_timeout: misc.0,
                misc_dynamic: misc.1,
                user: misc.2,
            }),
            "FILE_CHECK" => CheckKind::File(FileCheck {
                track_file: file.0.ok_or_else(|| ConfigError::invalid(&n.loc, "FILE_CHECK needs 'track_file'"))?,
                weight: file.1,
                reverse: file.2,
            }),
            "WASM_CHECK" => CheckKind::Wasm(WasmCheck {
                policy: wasm.0.ok_or_else(|| ConfigError::invalid(&n.loc, "WASM_CHECK needs 'policy'"))?,
                targets: wasm.1,
                protocol: Protocol::Tcp,
                timeout: wasm.2,
                args: wasm.3,
            }),
            other => return Err(ConfigError::invalid(&n.loc, format!("'{other}' is not a checker"))),
        };
        Ok(Checker { kind, common, location: n.loc.clone() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parser::Loader;
    use std::path::Path;
    use std::sync::Arc;

    fn check(src: &str) -> Result<Checker, ConfigError> {
        let nodes = Loader::new().load_str(Arc::from(Path::new("c.conf")), src)?;
        let mut ctx = Ctx::default();
        Checker::from_node(&mut ctx, &nodes[0], &CheckDefaults::default(), Duration::from_secs(60))
    }

    #[test]
    fn test_http_status_ranges() {
        let c = check("HTTP_GET {\nurl {\npath /health\nstatus_code 200-299 301\n}\nnb_get_retry 4\n}").expect("valid");
        let CheckKind::Http(h) = c.kind else { panic!("not http") };
        assert_eq!(h.urls[0].status_codes, vec![200..=299, 301..=301]);
        assert_eq!(c.common.retry, 4);
        assert_eq!(c.common.connect_timeout, Duration::from_secs(5));
    }

    #[test]
    fn test_bad_status_code() {
        let e = check("HTTP_GET {\nurl {\npath /\nstatus_code 299-200\n}\n}").expect_err("bad range");
        assert_eq!(e.to_string(), "c.conf:4:13: invalid status_code '299-200' (use N or N-M within 100-599)");
    }

    #[test]
    fn test_udp_and_wasm() {
        let c = check("UDP_CHECK {\npayload 0a0B\nrequire_reply\n}").expect("valid");
        assert_eq!(c.kind, CheckKind::Udp(UdpCheck { payload: Some(vec![10, 11]), require_reply: Some(vec![]), min_reply_length: None, max_reply_length: None }));
        let c = check("WASM_CHECK {\npolicy http_ok\ntargets {\n10.0.0.1 80 10.0.0.2 81\n}\ntimeout 2\n}").expect("valid");
        let CheckKind::Wasm(w) = c.kind else { panic!("not wasm") };
        assert_eq!(w.targets.len(), 2);
        assert_eq!(w.timeout, Some(Duration::from_secs(2)));
    }

    fn check_warnings(src: &str) -> Result<(Checker, Vec<String>), ConfigError> {
        let nodes = Loader::new().load_str(Arc::from(Path::new("c.conf")), src)?;
        let mut ctx = Ctx::default();
        let c = Checker::from_node(&mut ctx, &nodes[0], &CheckDefaults::default(), Duration::from_secs(60))?;
        Ok((c, ctx.warnings.iter().map(|w| w.to_string()).collect()))
    }

    #[test]
    fn test_wasm_targets_by_host_call() {
        let (c, warnings) = check_warnings(
            "WASM_CHECK {\npolicy p\ntargets {\ntcp_connect 10.0.0.1 80\nhttp_get 10.0.0.1 80 10.0.0.2 8080\ndns_query ::1 53\nudp_probe 10.0.0.3 9\n}\n}",
        )
        .expect("valid");
        let CheckKind::Wasm(w) = c.kind else { panic!("not wasm") };
        let a = |s: &str| s.parse::<SocketAddr>().expect("addr");
        assert_eq!(
            w.targets,
            vec![
                PolicyTarget::new(HostCall::TcpConnect, a("10.0.0.1:80")),
                PolicyTarget::new(HostCall::HttpGet, a("10.0.0.1:80")),
                PolicyTarget::new(HostCall::HttpGet, a("10.0.0.2:8080")),
                PolicyTarget::new(HostCall::DnsQuery, a("[::1]:53")),
                PolicyTarget::new(HostCall::UdpProbe, a("10.0.0.3:9")),
            ]
        );
        assert!(warnings.is_empty(), "{warnings:?}");
        // Outside a virtual server (lvs.rs sets it), the real server counts as TCP.
        assert_eq!(w.protocol, Protocol::Tcp);

        // Bare pairs: every kind, and a warning that says how to narrow it.
        let (c, warnings) = check_warnings("WASM_CHECK {\npolicy p\ntargets {\n10.0.0.1 80\n}\n}").expect("valid");
        let CheckKind::Wasm(w) = c.kind else { panic!("not wasm") };
        assert_eq!(w.targets, vec![PolicyTarget::any(a("10.0.0.1:80"))]);
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].starts_with("c.conf:4:1: ") && warnings[0].contains("allows every kind"), "{warnings:?}");

        let e = check("WASM_CHECK {\npolicy p\ntargets {\ntcp 10.0.0.1 80\n}\n}").expect_err("unknown kind");
        assert_eq!(
            e.to_string(),
            "c.conf:4:1: 'tcp' is not a host call; targets lines start with one of tcp_connect, http_get, dns_query, udp_probe (or are bare 'IP PORT' pairs)"
        );
        let e = check("WASM_CHECK {\npolicy p\ntargets {\nudp_probe 10.0.0.1\n}\n}").expect_err("odd");
        assert!(e.to_string().contains("'IP PORT' pairs"), "{e}");
        let e = check("WASM_CHECK {\npolicy p\ntargets {\ndns_query\n}\n}").expect_err("empty");
        assert!(e.to_string().contains("'dns_query' needs 'IP PORT' pairs"), "{e}");
    }

    #[test]
    fn test_host_calls() {
        let tcp = HostCalls::for_protocol(Protocol::Tcp);
        assert!(tcp.contains(HostCall::TcpConnect) && tcp.contains(HostCall::HttpGet));
        assert!(!tcp.contains(HostCall::UdpProbe) && !tcp.contains(HostCall::DnsQuery));
        assert_eq!(HostCalls::for_protocol(Protocol::Udp).to_string(), "dns_query, udp_probe");
        assert_eq!(HostCalls::for_protocol(Protocol::Sctp), HostCalls::NONE);
        assert_eq!(HostCalls::NONE.to_string(), "none");
        assert_eq!(HostCalls::ALL.to_string(), "tcp_connect, http_get, dns_query, udp_probe");
        for c in HostCall::ALL {
            assert_eq!(HostCall::from_name(c.name()), Some(c));
        }
    }

    #[test]
    fn test_tcp_half_open() {
        assert_eq!(check("TCP_CHECK {\nhalf_open\n}").unwrap().kind, CheckKind::TcpHalfOpen);
        assert_eq!(check("TCP_CHECK {\nhalf_open no\n}").unwrap().kind, CheckKind::Tcp);
        assert_eq!(check("TCP_CHECK {\n}").unwrap().kind, CheckKind::Tcp);
        let e = check("HTTP_GET {\nhalf_open\nurl {\npath /\n}\n}").expect_err("TCP_CHECK only");
        assert!(e.to_string().starts_with("c.conf:2:1: unknown keyword 'half_open' in HTTP_GET"), "{e}");
        let nodes = Loader::new().load_str(Arc::from(Path::new("c.conf")), "TCP_CHECK {\nhalf_open\nbind_port 999\n}").unwrap();
        let mut ctx = Ctx::default();
        Checker::from_node(&mut ctx, &nodes[0], &CheckDefaults::default(), Duration::from_secs(60)).unwrap();
        assert_eq!(ctx.warnings.len(), 1, "{:?}", ctx.warnings);
        assert!(ctx.warnings[0].to_string().contains("bind_port is not used"), "{:?}", ctx.warnings);
    }

    #[test]
    fn test_checker_typo() {
        let e = check("TCP_CHECK {\nconect_timeout 3\n}").expect_err("typo");
        assert!(e.to_string().contains("did you mean 'connect_timeout'"), "{e}");
    }
}
