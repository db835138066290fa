//! `hav-linux mh-lookup`: which real server the kernel's `mh` (Maglev) scheduler picks for a
//! flow, computed offline with hav-core's kernel-exact model, and whether several directors'
//! configurations build the same table (every director behind ECMP must, or a flow that moves
//! between directors moves between real servers).
//!
//! ```text
//! hav-linux -f dir1.conf mh-lookup --vs 192.0.2.10:80 --src 198.51.100.7:40000 [--proto tcp]
//! hav-linux -f dir1.conf mh-lookup --vs 192.0.2.10:80 --compare dir2.conf --compare dir3.conf
//! ```
//!
//! The table is the one a director builds from a fresh start: the real servers added in
//! configuration order (each at the head of the kernel's list, as `ip_vs_add_dest` does), with
//! their configured weights, then each `--down` real server failed as the director fails it
//! (weight 0 under `inhibit_on_failure`, which keeps its `last_weight` and so its slots;
//! removed otherwise). A real director's list also depends on its history: a real server removed
//! and added again comes back at the head, which is why announced virtual servers want
//! `inhibit_on_failure`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use hav_core::sched::mh::MH_TAB_SIZE_DEFAULT;
use hav_core::sched::{ConnKey, Dest as CoreDest, Mh, Schedule as _};

use super::table::{self, RsView};
use crate::config::{self, Config, VirtualServer};
use crate::ipvs::{Protocol, ServiceKey};

/// `hav-linux mh-lookup`.
#[derive(Debug, clap::Args)]
pub struct MhLookupArgs {
    /// The service: VIP:PORT (a virtual_server's own address, or one of its group's).
    #[arg(long = "vs", value_name = "VIP:PORT")]
    pub vs: SocketAddr,
    /// The client's address and port (the flow's source), repeatable; without it only the
    /// tables are described and compared.
    #[arg(long = "src", value_name = "IP:PORT")]
    pub src: Vec<SocketAddr>,
    /// The protocol: tcp, udp or sctp.
    #[arg(long = "proto", default_value = "tcp", value_parser = ["tcp", "udp", "sctp"])]
    pub proto: String,
    /// Model this real server (ADDR:PORT as configured) as failed; repeatable.
    #[arg(long = "down", value_name = "ADDR:PORT")]
    pub down: Vec<SocketAddr>,
    /// Another director's configuration: report whether its mh table for the service differs
    /// (and where the flow goes there); repeatable.
    #[arg(long = "compare", value_name = "CONF")]
    pub compare: Vec<PathBuf>,
}

/// One director's mh table for one service, as its kernel builds it.
#[derive(Debug, Clone)]
pub struct MhModel {
    /// The destinations in the kernel's list order.
    pub dests: Vec<(SocketAddr, i32, i32)>,
    /// The service flags (`mh-fallback`, `mh-port`).
    pub flags: u32,
    /// The scheduler the configuration names.
    pub scheduler: String,
    /// Slot -> index into `dests`.
    pub slots: Vec<Option<usize>>,
    sched: Box<Mh<MH_TAB_SIZE_DEFAULT>>,
    core: Vec<CoreDest>,
}

fn protocol(name: &str) -> Protocol {
    match name {
        "udp" => Protocol::Udp,
        "sctp" => Protocol::Sctp,
        _ => Protocol::Tcp,
    }
}

/// The virtual server of `config` that serves `key`.
pub fn find<'c>(config: &'c Config, key: &ServiceKey) -> Option<&'c VirtualServer> {
    config.virtual_servers.iter().find(|vs| table::service_keys(vs, &config.virtual_server_groups).contains(key))
}

impl MhModel {
    /// The table `vs` makes for service `key` with the real servers `down` failed.
    pub fn build(vs: &VirtualServer, key: &ServiceKey, down: &[SocketAddr]) -> Result<MhModel, table::TableError> {
        let service = table::service_for(vs, *key)?;
        let all_up: Vec<RsView> = vs.real_servers.iter().map(|r| RsView { alive: true, weight: r.weight }).collect();
        // The kernel's list: each added at the head.
        let mut list: Vec<crate::ipvs::Dest> = table::dests_for(vs, key, &all_up, true);
        list.reverse();
        let mut core: Vec<CoreDest> = list.iter().map(|d| CoreDest::new(d.addr.ip(), d.addr.port(), d.weight)).collect();
        // Failures, as the director applies them: weight 0 keeps last_weight (inhibit), else
        // the destination leaves the list.
        let views: Vec<RsView> =
            vs.real_servers.iter().map(|r| RsView { alive: !down.contains(&r.addr), weight: r.weight }).collect();
        let after = table::dests_for(vs, key, &views, true);
        core.retain(|d| after.iter().any(|a| a.addr.ip() == d.addr && a.addr.port() == d.port));
        for d in &mut core {
            if let Some(a) = after.iter().find(|a| a.addr.ip() == d.addr && a.addr.port() == d.port) {
                d.weight = a.weight;
                if a.weight != 0 {
                    d.last_weight = a.weight;
                }
            }
        }
        let sched = Box::new(Mh::<MH_TAB_SIZE_DEFAULT>::new(service.flags, &core));
        let slots = (0..MH_TAB_SIZE_DEFAULT).map(|s| sched.slot(s).filter(|&i| i < core.len())).collect();
        let dests = core.iter().map(|d| (SocketAddr::new(d.addr, d.port), d.weight, d.last_weight)).collect();
        Ok(MhModel { dests, flags: service.flags, scheduler: service.scheduler, slots, sched, core })
    }

    /// The real server the kernel picks for a new flow `proto` `src` -> `vip`.
    pub fn lookup(&mut self, proto: Protocol, src: SocketAddr, vip: SocketAddr) -> Option<SocketAddr> {
        let conn = ConnKey { protocol: proto.ipproto(), src: src.ip(), sport: src.port(), dst: vip.ip(), dport: vip.port() };
        let i = self.sched.schedule(&self.core, &conn, hav_core::Instant::from_micros(0))?;
        self.dests.get(i).map(|d| d.0)
    }

    /// The slot table by real server (not by list index), for comparing directors.
    pub fn by_server(&self) -> Vec<Option<SocketAddr>> {
        self.slots.iter().map(|s| s.map(|i| self.dests[i].0)).collect()
    }
}

/// How two directors' tables for one service compare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comparison {
    /// Slots that map to another real server.
    pub differing_slots: usize,
    /// Why: the settings that differ.
    pub reasons: Vec<String>,
}

/// Compares `b` to `a`.
pub fn compare(a: &MhModel, b: &MhModel) -> Comparison {
    let (sa, sb) = (a.by_server(), b.by_server());
    let differing_slots = sa.iter().zip(&sb).filter(|(x, y)| x != y).count();
    let mut reasons = Vec::new();
    if a.scheduler != b.scheduler {
        reasons.push(format!("scheduler {} here, {} there", a.scheduler, b.scheduler));
    }
    let addrs = |m: &MhModel| m.dests.iter().map(|d| d.0).collect::<Vec<_>>();
    let (xa, xb) = (addrs(a), addrs(b));
    let only_a: Vec<String> = xa.iter().filter(|x| !xb.contains(x)).map(|x| x.to_string()).collect();
    let only_b: Vec<String> = xb.iter().filter(|x| !xa.contains(x)).map(|x| x.to_string()).collect();
    if !only_a.is_empty() {
        reasons.push(format!("real servers only here: {}", only_a.join(" ")));
    }
    if !only_b.is_empty() {
        reasons.push(format!("real servers only there: {}", only_b.join(" ")));
    }
    let common_a: Vec<SocketAddr> = xa.iter().filter(|x| xb.contains(x)).copied().collect();
    let common_b: Vec<SocketAddr> = xb.iter().filter(|x| xa.contains(x)).copied().collect();
    if common_a != common_b {
        reasons.push("real servers in another order (the kernel's list follows the order they were added)".into());
    }
    for (addr, w, lw) in &a.dests {
        if let Some((_, w2, lw2)) = b.dests.iter().find(|d| d.0 == *addr) {
            if (w, lw) != (w2, lw2) {
                reasons.push(format!("{addr}: weight {w} here, {w2} there"));
            }
        }
    }
    if a.flags != b.flags {
        reasons.push(format!("service flags {:#x} here, {:#x} there (mh-fallback, mh-port)", a.flags, b.flags));
    }
    Comparison { differing_slots, reasons }
}

/// `println!` that does not panic when stdout is closed (`| head`).
macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($t)*);
    }};
}

fn load(path: &Path) -> anyhow::Result<Config> {
    let loaded = config::load(path).map_err(|e| anyhow::anyhow!("{e}"))?;
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    Ok(loaded.config)
}

fn model_of(path: &Path, key: &ServiceKey, down: &[SocketAddr]) -> anyhow::Result<MhModel> {
    let config = load(path)?;
    let vs = find(&config, key).ok_or_else(|| anyhow::anyhow!("{}: no virtual server serves {key:?}", path.display()))?;
    if vs.lb_algo != "mh" {
        anyhow::bail!(
            "{}: the virtual server at {} schedules with {}, not mh: which real server takes a flow depends on each director's own state",
            path.display(),
            vs.location,
            vs.lb_algo
        );
    }
    Ok(MhModel::build(vs, key, down)?)
}

fn describe(m: &MhModel) -> String {
    let mut per: Vec<(SocketAddr, usize)> = m.dests.iter().map(|d| (d.0, 0)).collect();
    for s in m.slots.iter().flatten() {
        per[*s].1 += 1;
    }
    per.iter()
        .zip(&m.dests)
        .map(|((a, n), (_, w, _))| format!("{a} weight {w}: {n} slots"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Runs `hav-linux mh-lookup` with the configuration at `config_path`.
pub fn run(args: MhLookupArgs, config_path: &Path) -> anyhow::Result<()> {
    let proto = protocol(&args.proto);
    let key = ServiceKey::Addr { protocol: proto, addr: args.vs };
    let mut here = model_of(config_path, &key, &args.down)?;
    let m = MH_TAB_SIZE_DEFAULT;
    out!("{}: {} {} mh table ({m} slots, kernel list order): {}", config_path.display(), args.proto, args.vs, describe(&here));
    for &src in &args.src {
        let pick = here.lookup(proto, src, args.vs);
        match pick {
            Some(rs) => out!("{}: {} {src} -> {} => {rs}", config_path.display(), args.proto, args.vs),
            None => out!("{}: {} {src} -> {} => none (no available real server for its slot)", config_path.display(), args.proto, args.vs),
        }
    }
    let mut differ = false;
    for other in &args.compare {
        let mut there = model_of(other, &key, &args.down)?;
        let c = compare(&here, &there);
        if c.differing_slots == 0 {
            out!("{}: same mh table", other.display());
        } else {
            differ = true;
            out!(
                "{}: mh table DIFFERS in {} of {m} slots ({:.1}% of flows go elsewhere): {}",
                other.display(),
                c.differing_slots,
                c.differing_slots as f64 * 100.0 / m as f64,
                if c.reasons.is_empty() { "no setting differs".into() } else { c.reasons.join("; ") }
            );
        }
        for &src in &args.src {
            let pick = there.lookup(proto, src, args.vs);
            out!(
                "{}: {} {src} -> {} => {}",
                other.display(),
                args.proto,
                args.vs,
                pick.map(|p| p.to_string()).unwrap_or_else(|| "none".into())
            );
        }
    }
    if differ {
        anyhow::bail!("the directors' mh tables differ");
    }
    Ok(())
}

/// The real server for a flow from `src` in `config`'s service `vip` (TCP), all real servers
/// up: for tests and the lab.
pub fn pick(config: &Config, vip: SocketAddr, src: SocketAddr) -> Option<SocketAddr> {
    let key = ServiceKey::Addr { protocol: Protocol::Tcp, addr: vip };
    let vs = find(config, &key)?;
    MhModel::build(vs, &key, &[]).ok()?.lookup(Protocol::Tcp, src, vip)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(rs: &[(&str, u32)], extra: &str) -> Config {
        let mut s = format!("virtual_server 192.0.2.10 80 {{\n lb_algo mh\n lb_kind DR\n {extra}\n");
        for (a, w) in rs {
            s.push_str(&format!(" real_server {a} 80 {{\n  weight {w}\n }}\n"));
        }
        s.push_str("}\n");
        config::load_str(Path::new("t.conf"), &s).expect("valid").config
    }

    fn key() -> ServiceKey {
        ServiceKey::Addr { protocol: Protocol::Tcp, addr: "192.0.2.10:80".parse().expect("addr") }
    }

    fn model(c: &Config, down: &[&str]) -> MhModel {
        let down: Vec<SocketAddr> = down.iter().map(|d| d.parse().expect("addr")).collect();
        MhModel::build(&c.virtual_servers[0], &key(), &down).expect("model")
    }

    #[test]
    fn test_same_config_same_table_and_picks() {
        let a = conf(&[("10.0.0.1", 1), ("10.0.0.2", 1), ("10.0.0.3", 1)], "");
        let (mut x, y) = (model(&a, &[]), model(&a, &[]));
        assert_eq!(compare(&x, &y), Comparison { differing_slots: 0, reasons: vec![] });
        // The kernel's list is in reverse order of addition.
        assert_eq!(x.dests[0].0, "10.0.0.3:80".parse::<SocketAddr>().expect("addr"));
        // Every slot is filled, about a third each.
        let per = |m: &MhModel, i: usize| m.slots.iter().filter(|s| **s == Some(i)).count();
        for i in 0..3 {
            assert!((1300..=1430).contains(&per(&x, i)), "{}", per(&x, i));
        }
        assert!(x.slots.iter().all(Option::is_some));
        let vip = "192.0.2.10:80".parse().expect("addr");
        let p = x.lookup(Protocol::Tcp, "198.51.100.7:40000".parse().expect("addr"), vip);
        assert!(p.is_some());
        assert_eq!(pick(&a, vip, "198.51.100.7:40000".parse().expect("addr")), p);
    }

    #[test]
    fn test_differences_are_found_and_explained() {
        let a = model(&conf(&[("10.0.0.1", 1), ("10.0.0.2", 1), ("10.0.0.3", 1)], ""), &[]);
        // The list order decides who wins a slot two real servers reach in the same round:
        // some orders of the same servers build another table.
        let orders = [["10.0.0.2", "10.0.0.1", "10.0.0.3"], ["10.0.0.1", "10.0.0.3", "10.0.0.2"], ["10.0.0.3", "10.0.0.2", "10.0.0.1"]];
        let mut max = 0;
        for o in orders {
            let m = model(&conf(&[(o[0], 1), (o[1], 1), (o[2], 1)], ""), &[]);
            let c = compare(&a, &m);
            assert!(c.reasons.iter().any(|r| r.contains("order")), "{c:?}");
            eprintln!("{o:?}: {} slots differ", c.differing_slots);
            max = max.max(c.differing_slots);
        }
        assert!(max > 0, "no order changed the table");
        let weight = model(&conf(&[("10.0.0.1", 1), ("10.0.0.2", 2), ("10.0.0.3", 1)], ""), &[]);
        let c = compare(&a, &weight);
        assert!(c.differing_slots > 500, "{c:?}");
        assert_eq!(c.reasons, ["10.0.0.2:80: weight 1 here, 2 there"]);
        let fewer = model(&conf(&[("10.0.0.1", 1), ("10.0.0.2", 1)], ""), &[]);
        let c = compare(&a, &fewer);
        assert!(c.reasons.iter().any(|r| r.contains("only here: 10.0.0.3:80")), "{c:?}");
        // Maglev: removing one of three moves (about) only its own third.
        assert!((1200..=1500).contains(&c.differing_slots), "{c:?}");
    }

    #[test]
    fn test_inhibited_failure_keeps_the_table_and_moves_only_its_flows() {
        let c = conf(&[("10.0.0.1", 1), ("10.0.0.2", 1), ("10.0.0.3", 1)], "inhibit_on_failure\n mh-fallback");
        let vip: SocketAddr = "192.0.2.10:80".parse().expect("addr");
        let mut up = model(&c, &[]);
        let mut down = model(&c, &["10.0.0.2:80"]);
        // Weight 0 keeps last_weight: the slots stay where they were.
        assert_eq!(compare(&up, &down).differing_slots, 0);
        let mut moved = 0;
        for p in 0..2000u16 {
            let src = SocketAddr::new([198, 51, 100, (p % 200) as u8].into(), 30000 + p);
            let (a, b) = (up.lookup(Protocol::Tcp, src, vip), down.lookup(Protocol::Tcp, src, vip));
            assert!(b.is_some());
            assert_ne!(b, Some("10.0.0.2:80".parse().expect("addr")));
            if a != b {
                assert_eq!(a, Some("10.0.0.2:80".parse().expect("addr")), "only the failed server's flows move");
                moved += 1;
            }
        }
        assert!(moved > 0);
        // Without inhibit_on_failure the server leaves the list and the table is rebuilt.
        let c = conf(&[("10.0.0.1", 1), ("10.0.0.2", 1), ("10.0.0.3", 1)], "");
        let gone = model(&c, &["10.0.0.2:80"]);
        assert_eq!(gone.dests.len(), 2);
    }
}
