//! `hav-embedded-tap`: the hav-embedded router on a Linux TAP interface, so
//! that the firmware's code joins a namespace lab; and the tool that writes
//! the stored node config the firmware reads from flash.
//!
//! ```text
//! hav-embedded-tap encode NODE INSTANCE... -o FILE   write a stored config
//! hav-embedded-tap config KEEPALIVED.CONF [--instance NAME]... NODE -o FILE
//!                                                    the same from keepalived.conf
//! hav-embedded-tap decode FILE                       print a stored config
//! hav-embedded-tap run --tap NAME --config FILE      run the router
//!
//! NODE:      --address A.B.C.D/LEN [--mac xx:xx:xx:xx:xx:xx]
//!            [--link-local fe80::X]  (the IPv6 instances' address)
//! INSTANCE:  --vrid N (starts an instance) [--ipv6] [--priority N] [--version 2|3]
//!            [--advert-int SECS] --vip ADDR... [--nopreempt]
//!            [--preempt-delay SECS] [--accept] [--auth-pass PW]
//!            [--unicast-peer A.B.C.D]... [--garp-repeat N] [--garp-delay SECS]
//! ```
//!
//! `run` prints one line per state change on stdout, for tests and
//! benchmarks: `EVENT <unix-µs> vrid=<N> <FROM>-><TO> reason=<Reason>`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{SystemTime, UNIX_EPOCH};

use embassy_net_tuntap::TunTapDevice;
use hav_core::vrrp::InstanceConfig;
use hav_core::wire::{VrrpAuth, VrrpVersion};
use hav_core::Duration;
#[path = "tap/kaconf.rs"]
mod kaconf;

use hav_embedded::{Event, NodeConfig, Resources, Router, MAX_STORED_LEN};

fn usage() -> &'static str {
    "usage: hav-embedded-tap encode --address A/LEN [--mac MAC] [--link-local fe80::X] --vrid N [instance flags] -o FILE\n\
     \x20      hav-embedded-tap config KEEPALIVED.CONF [--instance NAME]... --address A/LEN [--mac MAC] [--link-local fe80::X] -o FILE\n\
     \x20      hav-embedded-tap decode FILE\n\
     \x20      hav-embedded-tap run --tap NAME --config FILE\n\
     instance flags: --ipv6 --priority N --version 2|3 --advert-int SECS --vip A (repeat) --nopreempt\n\
     \x20               --preempt-delay SECS --accept --auth-pass PW --unicast-peer A\n\
     \x20               --garp-repeat N --garp-delay SECS"
}

fn parse_secs(flag: &str, v: &str) -> Result<Duration, String> {
    let s: f64 = v.parse().map_err(|_| format!("{flag}: not a number of seconds: {v}"))?;
    if !(0.0..=4095.0).contains(&s) {
        return Err(format!("{flag}: out of range: {v}"));
    }
    Ok(Duration::from_micros((s * 1e6).round() as u64))
}

fn parse_num<T: std::str::FromStr>(flag: &str, v: &str) -> Result<T, String> {
    v.parse().map_err(|_| format!("{flag}: bad value {v}"))
}

fn parse_mac(v: &str) -> Result<[u8; 6], String> {
    let parts: Vec<&str> = v.split(':').collect();
    let mut mac = [0u8; 6];
    if parts.len() != 6 {
        return Err(format!("--mac: bad MAC address {v}"));
    }
    for (m, p) in mac.iter_mut().zip(parts) {
        *m = u8::from_str_radix(p, 16).map_err(|_| format!("--mac: bad MAC address {v}"))?;
    }
    Ok(mac)
}

// Builds a NodeConfig from encode's flags.
fn build_config(args: &[String]) -> Result<(NodeConfig, String), String> {
    let mut node: Option<NodeConfig> = None;
    let mut mac = None;
    let mut link_local = None;
    // Instances made IPv6 by --ipv6 (their address is set at the end).
    let mut ipv6 = Vec::new();
    let mut out = None;
    let mut instances: Vec<InstanceConfig> = Vec::new();
    let mut groups = Vec::new();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || it.next().cloned().ok_or(format!("{flag}: missing value"));
        let need_inst = |instances: &mut Vec<InstanceConfig>| -> Result<(), String> {
            if instances.is_empty() {
                Err(format!("{flag}: comes after --vrid"))
            } else {
                Ok(())
            }
        };
        match flag.as_str() {
            "--address" => {
                let v = value()?;
                let (a, len) = v.split_once('/').ok_or(format!("--address: want A.B.C.D/LEN: {v}"))?;
                let a: Ipv4Addr = parse_num("--address", a)?;
                node = Some(NodeConfig::new(a, parse_num("--address", len)?));
            }
            "--mac" => mac = Some(parse_mac(&value()?)?),
            "--link-local" => link_local = Some(parse_num::<Ipv6Addr>("--link-local", &value()?)?),
            "-o" => out = Some(value()?),
            "--sync-group" => {
                let v = value()?;
                let mut g = heapless::Vec::new();
                for part in v.split(',') {
                    g.push(parse_num("--sync-group", part)?).map_err(|_| "--sync-group: too many members")?;
                }
                groups.push(g);
            }
            "--vrid" => {
                let addr = node.as_ref().ok_or("--vrid: comes after --address")?.address;
                let vrid = parse_num("--vrid", &value()?)?;
                let mut c = InstanceConfig::new(vrid, IpAddr::V4(addr));
                // keepalived's default outside vrrp_strict.
                c.accept = true;
                instances.push(c);
            }
            f => {
                need_inst(&mut instances)?;
                let v = match f {
                    "--nopreempt" | "--accept" | "--ipv6" => String::new(),
                    _ => value()?,
                };
                let Some(c) = instances.last_mut() else { unreachable!() };
                match f {
                    "--priority" => c.priority = parse_num(f, &v)?,
                    "--version" => {
                        c.version = match v.as_str() {
                            "2" => VrrpVersion::V2,
                            "3" => VrrpVersion::V3,
                            _ => return Err(format!("--version: 2 or 3, not {v}")),
                        }
                    }
                    "--advert-int" => c.adver_int = parse_secs(f, &v)?,
                    "--vip" => {
                        let a: IpAddr = parse_num(f, &v)?;
                        c.vips.push(a).map_err(|_| "--vip: too many".to_string())?;
                    }
                    "--ipv6" => ipv6.push(c.vrid),
                    "--nopreempt" => c.preempt = false,
                    "--accept" => c.accept = true,
                    "--preempt-delay" => c.preempt_delay = parse_secs(f, &v)?,
                    "--auth-pass" => c.auth = VrrpAuth::simple(v.as_bytes()),
                    "--unicast-peer" => {
                        let a: IpAddr = parse_num(f, &v)?;
                        c.peers.push(a).map_err(|_| "--unicast-peer: too many")?;
                    }
                    "--garp-repeat" => c.garp.master_repeat = parse_num(f, &v)?,
                    "--garp-delay" => c.garp.master_delay = parse_secs(f, &v)?,
                    "--garp-interval" => c.garp.interval = parse_secs(f, &v)?,
                    _ => return Err(format!("unknown flag {f}\n{}", usage())),
                }
            }
        }
    }
    let mut node = node.ok_or("--address is required")?;
    node.mac = mac;
    for c in instances.iter_mut().filter(|c| ipv6.contains(&c.vrid)) {
        let ll = link_local.ok_or("--ipv6: needs --link-local")?;
        let v6 = InstanceConfig::new(c.vrid, IpAddr::V6(ll));
        c.primary_addr = v6.primary_addr;
        c.mcast_group = v6.mcast_group;
        c.version = VrrpVersion::V3;
    }
    for c in instances {
        node.instances.push(c).map_err(|_| "too many instances")?;
    }
    for g in groups {
        node.groups.push(g).map_err(|_| "too many sync groups")?;
    }
    node.validate().map_err(|e| format!("invalid config: {e}"))?;
    Ok((node, out.ok_or("-o FILE is required")?))
}

fn read_config(path: &str) -> Result<NodeConfig, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{path}: {e}"))?;
    NodeConfig::from_stored(&bytes).map_err(|e| format!("{path}: {e}"))
}

fn print_event(e: &Event) {
    let us = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros());
    match *e {
        Event::Transition { vrid, from, to, reason, .. } => {
            println!("EVENT {us} vrid={vrid} {}->{} reason={reason:?}", from.as_str(), to.as_str());
        }
        Event::Group { group, state } => println!("GROUP {us} group={group} {}", state.as_str()),
    }
}

async fn run(tap: String, config: String) -> Result<(), String> {
    let mut node = read_config(&config)?;
    // A locally administered MAC from the address when none is configured.
    let mac = *node.mac.get_or_insert_with(|| {
        let o = node.address.octets();
        [0x02, 0x68, o[0], o[1], o[2], o[3]]
    });
    let mut device = TunTapDevice::new(&tap).map_err(|e| format!("TAP {tap}: {e}"))?;
    device.set_hardware_address(mac);
    let res: &'static mut Resources<'static> = Box::leak(Box::new(Resources::new()));
    let mut router = Router::new(device, &node, res).map_err(|e| e.to_string())?;
    router.set_observer(print_event);
    log::info!(
        "running {} instance(s) on {tap} as {}/{} ({:02x?})",
        node.instances.len(),
        node.address,
        node.prefix_len,
        mac
    );
    router.run().await
}

#[embassy_executor::main]
async fn main(_spawner: embassy_executor::Spawner) {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    if let Err(e) = real_main().await {
        eprintln!("hav-embedded-tap: {e}");
        std::process::exit(2);
    }
    std::process::exit(0);
}

async fn real_main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("encode") => {
            let (node, out) = build_config(&args[1..])?;
            let mut buf = [0u8; MAX_STORED_LEN];
            let bytes = node.to_stored(&mut buf).map_err(|e| e.to_string())?;
            std::fs::write(&out, bytes).map_err(|e| format!("{out}: {e}"))?;
            println!("wrote {} bytes to {out}", bytes.len());
            Ok(())
        }
        Some("config") => {
            // config KEEPALIVED.CONF [--instance NAME]... NODE... -o FILE
            let conf = args.get(1).ok_or(usage())?;
            let text = std::fs::read_to_string(conf).map_err(|e| format!("{conf}: {e}"))?;
            let mut only = Vec::new();
            let mut node = Vec::new();
            let mut it = args[2..].iter();
            while let Some(a) = it.next() {
                if a == "--instance" {
                    only.push(it.next().ok_or("--instance: missing value")?.clone());
                } else {
                    node.push(a.clone());
                }
            }
            let t = kaconf::translate(&text, &only).map_err(|e| format!("{conf}: {e}"))?;
            for i in &t.ignored {
                eprintln!("{conf}: ignored: {i}");
            }
            node.extend(t.flags);
            let (node, out) = build_config(&node)?;
            let mut buf = [0u8; MAX_STORED_LEN];
            let bytes = node.to_stored(&mut buf).map_err(|e| e.to_string())?;
            std::fs::write(&out, bytes).map_err(|e| format!("{out}: {e}"))?;
            println!("wrote {} bytes to {out} ({} instance(s) from {conf})", bytes.len(), node.instances.len());
            Ok(())
        }
        Some("decode") => {
            let path = args.get(1).ok_or(usage())?;
            println!("{:#?}", read_config(path)?);
            Ok(())
        }
        Some("run") => {
            let (mut tap, mut config) = (None, None);
            let mut it = args[1..].iter();
            while let Some(f) = it.next() {
                let v = it.next().cloned().ok_or(format!("{f}: missing value"))?;
                match f.as_str() {
                    "--tap" => tap = Some(v),
                    "--config" => config = Some(v),
                    _ => return Err(format!("unknown flag {f}\n{}", usage())),
                }
            }
            run(tap.ok_or("--tap is required")?, config.ok_or("--config is required")?).await
        }
        Some("-h" | "--help") => {
            println!("{}", usage());
            Ok(())
        }
        _ => Err(usage().to_string()),
    }
}
