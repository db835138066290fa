//! What happened on the wire and to the addresses of a namespace, with wall-clock times that
//! can be compared: tcpdump captures ([`Capture`], read back from the pcap file) and
//! `ip -ts monitor address` ([`AddrMonitor`]).
//!
//! Both sides stamp with the realtime clock: the kernel stamps captured frames, `ip monitor`
//! stamps a change when it reads the notification (microseconds later). Times are microseconds
//! since the Unix epoch.

use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hav_core::wire::{ArpPacket, EtherType, EthernetFrame, VrrpPacket};
use nix::sys::signal::Signal;

use crate::netns::Netns;

/// One captured frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// When the kernel saw it, microseconds since the Unix epoch.
    pub ts_us: u64,
    /// The frame from its Ethernet header on.
    pub data: Vec<u8>,
}

impl Frame {
    /// The sender's hardware address and IPv4 address when the frame is a gratuitous ARP
    /// (request or reply whose sender and target protocol addresses are equal).
    pub fn gratuitous_arp(&self) -> Option<([u8; 6], Ipv4Addr)> {
        let eth = EthernetFrame::new_checked(&self.data[..]).ok()?;
        if eth.ethertype() != EtherType::Arp {
            return None;
        }
        let arp = ArpPacket::new_checked(eth.payload()).ok()?;
        let ip = arp.source_protocol_addr();
        (ip == arp.target_protocol_addr()).then_some((arp.source_hardware_addr(), ip))
    }

    /// The IPv4 source, TTL, VRID and priority when the frame is a VRRP message over IPv4.
    pub fn vrrp_v4(&self) -> Option<VrrpSeen> {
        let eth = EthernetFrame::new_checked(&self.data[..]).ok()?;
        if eth.ethertype() != EtherType::Ipv4 {
            return None;
        }
        let ip = eth.payload();
        if ip.len() < 20 || ip[0] >> 4 != 4 || ip[9] != 112 {
            return None;
        }
        let ihl = usize::from(ip[0] & 0x0f) * 4;
        let pkt = VrrpPacket::new_checked(ip.get(ihl..)?).ok()?;
        Some(VrrpSeen {
            src: Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]),
            ttl: ip[8],
            vrid: pkt.vrid(),
            priority: pkt.priority(),
        })
    }
}

/// A VRRP message seen on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VrrpSeen {
    /// IP source.
    pub src: Ipv4Addr,
    /// IP TTL.
    pub ttl: u8,
    /// Virtual router id.
    pub vrid: u8,
    /// Advertised priority.
    pub priority: u8,
}

/// Reads a classic pcap file (either byte order, microsecond or nanosecond stamps).
///
/// # Errors
/// When the header is not pcap's.
pub fn parse_pcap(bytes: &[u8]) -> Result<Vec<Frame>, String> {
    if bytes.len() < 24 {
        return Err(format!("{} bytes: no pcap header", bytes.len()));
    }
    let magic = [bytes[0], bytes[1], bytes[2], bytes[3]];
    let (le, nanos) = match magic {
        [0xd4, 0xc3, 0xb2, 0xa1] => (true, false),
        [0xa1, 0xb2, 0xc3, 0xd4] => (false, false),
        [0x4d, 0x3c, 0xb2, 0xa1] => (true, true),
        [0xa1, 0xb2, 0x3c, 0x4d] => (false, true),
        other => return Err(format!("not a pcap file (magic {other:02x?})")),
    };
    let u32_at = |b: &[u8]| {
        let a = [b[0], b[1], b[2], b[3]];
        if le {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        }
    };
    let mut frames = Vec::new();
    let mut at = 24;
    // A record cut short by the capture's end is left out.
    while at + 16 <= bytes.len() {
        let secs = u64::from(u32_at(&bytes[at..]));
        let frac = u64::from(u32_at(&bytes[at + 4..]));
        let incl = u32_at(&bytes[at + 8..]) as usize;
        let start = at + 16;
        let Some(data) = bytes.get(start..start + incl) else { break };
        let ts_us = secs * 1_000_000 + if nanos { frac / 1_000 } else { frac };
        frames.push(Frame { ts_us, data: data.to_vec() });
        at = start + incl;
    }
    Ok(frames)
}

/// Microseconds since the Unix epoch, now.
pub fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn exited(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| s.rsplit(')').next().is_some_and(|r| r.trim_start().starts_with('Z')))
        .unwrap_or(true)
}

/// Asks a spawned process to stop with SIGINT (tcpdump and `ip monitor` flush on it), waits
/// for it up to 3 s, then reaps (or kills) it.
fn interrupt(ns: &Netns, pid: u32) {
    let _ = ns.signal(pid, Signal::SIGINT);
    let t0 = Instant::now();
    while !exited(pid) && t0.elapsed() < Duration::from_secs(3) {
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = ns.stop(pid);
}

/// tcpdump writing a pcap file inside a namespace.
#[derive(Debug)]
pub struct Capture<'a> {
    ns: &'a Netns,
    pid: Option<u32>,
    file: PathBuf,
}

impl<'a> Capture<'a> {
    /// Starts `tcpdump -i IFNAME -w DIR/NAME.pcap FILTER...` in `ns` and returns once it
    /// listens.
    ///
    /// # Errors
    /// When tcpdump does not start or does not report that it listens within 5 s.
    pub fn start(ns: &'a Netns, ifname: &str, filter: &[&str], dir: &Path, name: &str) -> io::Result<Capture<'a>> {
        let file = dir.join(format!("{name}.pcap"));
        let log = dir.join(format!("{name}.tcpdump.log"));
        let f = file.to_str().ok_or_else(|| io::Error::other("non-UTF-8 path"))?.to_owned();
        let mut args = vec!["-i", ifname, "-n", "-U", "-s", "256", "-w", &f];
        args.extend_from_slice(filter);
        let pid = ns.spawn("tcpdump", &args, &log)?;
        let cap = Capture { ns, pid: Some(pid), file };
        let t0 = Instant::now();
        loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if text.contains("listening on") {
                return Ok(cap);
            }
            if exited(pid) || t0.elapsed() > Duration::from_secs(5) {
                return Err(io::Error::other(format!("tcpdump did not start: {text}")));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Stops tcpdump and returns what it captured.
    ///
    /// # Errors
    /// When the pcap file cannot be read or parsed.
    pub fn stop(mut self) -> io::Result<Vec<Frame>> {
        if let Some(pid) = self.pid.take() {
            interrupt(self.ns, pid);
        }
        let bytes = std::fs::read(&self.file)?;
        parse_pcap(&bytes).map_err(io::Error::other)
    }
}

impl Drop for Capture<'_> {
    fn drop(&mut self) {
        if let Some(pid) = self.pid.take() {
            let _ = self.ns.stop(pid);
        }
    }
}

/// An address added to or deleted from an interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddrEvent {
    /// When `ip monitor` read it, microseconds since the Unix epoch.
    pub ts_us: u64,
    /// Deleted (else added).
    pub deleted: bool,
    /// The interface.
    pub ifname: String,
    /// The address, without prefix length.
    pub addr: IpAddr,
}

/// `ip -ts monitor address` inside a namespace.
#[derive(Debug)]
pub struct AddrMonitor<'a> {
    ns: &'a Netns,
    pid: Option<u32>,
    log: PathBuf,
}

impl<'a> AddrMonitor<'a> {
    /// Starts the monitor (in UTC, so its stamps parse without a time zone) and waits a moment
    /// for it to subscribe.
    ///
    /// # Errors
    /// When it cannot be started.
    pub fn start(ns: &'a Netns, dir: &Path, name: &str) -> io::Result<AddrMonitor<'a>> {
        let log = dir.join(format!("{name}.addrmon.log"));
        let pid = ns.spawn("env", &["TZ=UTC", "ip", "-ts", "monitor", "address"], &log)?;
        std::thread::sleep(Duration::from_millis(200));
        Ok(AddrMonitor { ns, pid: Some(pid), log })
    }

    /// The events so far (the monitor keeps running).
    pub fn events(&self) -> Vec<AddrEvent> {
        parse_addr_monitor(&std::fs::read_to_string(&self.log).unwrap_or_default())
    }

    /// Stops the monitor and returns its events.
    pub fn stop(mut self) -> Vec<AddrEvent> {
        if let Some(pid) = self.pid.take() {
            interrupt(self.ns, pid);
        }
        self.events()
    }
}

impl Drop for AddrMonitor<'_> {
    fn drop(&mut self) {
        if let Some(pid) = self.pid.take() {
            let _ = self.ns.stop(pid);
        }
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parses `[YYYY-MM-DDTHH:MM:SS.uuuuuu]` (UTC) into microseconds since the epoch.
pub fn parse_ts(s: &str) -> Option<u64> {
    let s = s.strip_prefix('[')?.strip_suffix(']')?;
    let (date, time) = s.split_once('T')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, mo, da) = (d.next()??, d.next()??, d.next()??);
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let mut t = hms.split(':').map(|p| p.parse::<i64>().ok());
    let (h, mi, se) = (t.next()??, t.next()??, t.next()??);
    let mut us: i64 = frac.get(..6.min(frac.len()))?.parse().ok()?;
    for _ in frac.len()..6 {
        us *= 10;
    }
    let secs = days_from_civil(y, mo, da) * 86_400 + h * 3_600 + mi * 60 + se;
    u64::try_from(secs * 1_000_000 + us).ok()
}

/// Parses the output of `ip -ts monitor address`.
pub fn parse_addr_monitor(text: &str) -> Vec<AddrEvent> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        let Some(ts) = words.next().and_then(parse_ts) else { continue };
        let mut words = words.peekable();
        let deleted = words.peek() == Some(&"Deleted");
        if deleted {
            words.next();
        }
        // "3: eth0    inet 10.0.0.200/24 scope global secondary eth0"
        let _index = words.next();
        let Some(ifname) = words.next() else { continue };
        let Some(fam) = words.next() else { continue };
        if fam != "inet" && fam != "inet6" {
            continue;
        }
        let Some(addr) = words.next().and_then(|a| a.split('/').next()?.parse().ok()) else { continue };
        out.push(AddrEvent { ts_us: ts, deleted, ifname: ifname.to_owned(), addr });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_parse_ts() {
        // date -u -d 2026-12-07T03:44:22 +%s = 1796615062
        assert_eq!(parse_ts("[2026-12-07T03:44:22.667099]"), Some(1_796_615_062_667_099));
        assert_eq!(parse_ts("[1970-01-01T00:00:01.5]"), Some(1_500_000));
        assert_eq!(parse_ts("2026-12-07T03:44:22.667099"), None);
    }

    #[test]
    fn test_parse_addr_monitor() {
        let text = "[2026-12-07T03:44:22.669958] 1: lo    inet 10.9.9.9/32 scope global lo\n       valid_lft forever preferred_lft forever\n\
                    [2026-12-07T03:44:22.672114] Deleted 1: lo    inet 10.9.9.9/32 scope global lo\n\
                    [2026-12-07T03:44:22.672200] Deleted 2: eth0    inet6 fd00::200/64 scope global\n";
        let ev = parse_addr_monitor(text);
        assert_eq!(ev.len(), 3, "{ev:?}");
        assert!(!ev[0].deleted && ev[1].deleted && ev[2].deleted);
        assert_eq!(ev[1].addr, "10.9.9.9".parse::<IpAddr>().unwrap());
        assert_eq!(ev[1].ts_us - ev[0].ts_us, 2_156);
        assert_eq!(ev[2].ifname, "eth0");
    }

    #[test]
    fn test_parse_pcap_and_garp() {
        // A little-endian microsecond pcap with one gratuitous ARP and one cut record.
        let mut f = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0];
        f.extend_from_slice(&[0; 8]);
        f.extend_from_slice(&65535u32.to_le_bytes());
        f.extend_from_slice(&1u32.to_le_bytes());
        let frame = hav_core::wire::gratuitous_arp_frame([2, 0, 0, 0, 0, 1], Ipv4Addr::new(10, 0, 0, 200));
        f.extend_from_slice(&7u32.to_le_bytes());
        f.extend_from_slice(&25u32.to_le_bytes());
        f.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        f.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        f.extend_from_slice(&frame);
        f.extend_from_slice(&[1, 2, 3]);
        let frames = parse_pcap(&f).unwrap();
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].ts_us, 7_000_025);
        assert_eq!(frames[0].gratuitous_arp(), Some(([2, 0, 0, 0, 0, 1], Ipv4Addr::new(10, 0, 0, 200))));
        assert_eq!(frames[0].vrrp_v4(), None);
        assert!(parse_pcap(&[0; 24]).is_err());
    }
}
