//! `announce`: a hav extension inside `virtual_server` (keepalived has no such keyword).
//!
//! ```text
//! virtual_server 192.0.2.10 80 {
//!     lb_algo mh
//!     mh-fallback
//!     lb_kind DR
//!     inhibit_on_failure
//!     announce {          # or plain `announce` for the defaults
//!         table 254       # route table of the announced route (default 254, main)
//!         proto 250       # route protocol of every route hav adds (default 250)
//!         metric 0        # its metric (default 0)
//!         drain_time 5    # seconds between the withdrawal and the IPVS removal at a stop (default 5)
//!         dev lo          # the link the VIP is delivered on (default lo)
//!     }
//!     real_server ...
//! }
//! ```
//!
//! While the virtual server has quorum (and is not suspended by `ha_suspend`), the director
//! holds `blackhole VIP/32 table T proto P metric M`, which the host's routing daemon
//! redistributes (FRR: `redistribute kernel`, or `ip import-table T` and `redistribute table T`),
//! and withdraws it when quorum is lost. While the daemon runs it also holds
//! `local VIP/32 dev DEV table local proto P`, so the kernel delivers the VIP to IPVS without an
//! address on any interface. See `lvs::announce` and the README.

use std::time::Duration;

use super::error::{ConfigError, Location};
use super::parser::Node;
use super::value::Ctx;

/// The route protocol hav's routes carry unless `proto` says otherwise: not one of
/// `/etc/iproute2/rt_protos`' registered numbers, nor one FRR's zebra uses for its own routes.
pub const DEFAULT_PROTO: u8 = 250;
/// `RT_TABLE_MAIN`.
pub const DEFAULT_TABLE: u32 = 254;
/// The default `drain_time`.
pub const DEFAULT_DRAIN: Duration = Duration::from_secs(5);

/// A virtual server's `announce` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announce {
    /// Where `announce` is written.
    pub location: Location,
    /// `table`: the route table of the announced route.
    pub table: u32,
    /// `proto`: the route protocol of hav's routes.
    pub proto: u8,
    /// `metric`.
    pub metric: u32,
    /// `drain_time`: at a clean stop, the time between the withdrawal and the removal of the
    /// IPVS services.
    pub drain_time: Duration,
    /// `dev`: the link the VIP's local route points at.
    pub dev: String,
}

const PATH: &str = "virtual_server/announce";

impl Announce {
    /// The defaults, written at `location`.
    pub fn defaults(location: Location) -> Self {
        Announce {
            location,
            table: DEFAULT_TABLE,
            proto: DEFAULT_PROTO,
            metric: 0,
            drain_time: DEFAULT_DRAIN,
            dev: "lo".into(),
        }
    }

    pub(crate) fn from_node(ctx: &mut Ctx, n: &Node) -> Result<Self, ConfigError> {
        let mut a = Announce::defaults(n.loc.clone());
        ctx.no_more(n, 0);
        let Some(children) = &n.block else { return Ok(a) };
        for e in children {
            match e.keyword.as_str() {
                "table" => {
                    a.table = ctx.u32(e, 1, u32::MAX)?;
                    if a.table == 255 {
                        return Err(ConfigError::invalid(&e.args[0].loc, "table 255 is the kernel's local table; announce into main (254) or a table of its own"));
                    }
                }
                "proto" => {
                    let v = ctx.u32(e, 3, 255)?;
                    a.proto = u8::try_from(v).unwrap_or(DEFAULT_PROTO);
                    if a.proto == 11 || (186..=198).contains(&a.proto) {
                        ctx.warn(&e.args[0].loc, format!("proto {} is one FRR's zebra uses for its own routes: zebra deletes such routes when it starts", a.proto));
                    }
                }
                "metric" => a.metric = ctx.u32(e, 0, u32::MAX)?,
                "drain_time" => a.drain_time = ctx.timer(e)?,
                "dev" => {
                    a.dev = ctx.string(e)?;
                    if a.dev.is_empty() || a.dev.len() > 15 || a.dev.contains(['/', ' ']) {
                        return Err(ConfigError::invalid(&e.args[0].loc, format!("'{}' is not an interface name", a.dev)));
                    }
                }
                _ => ctx.unknown(e, PATH)?,
            }
        }
        Ok(a)
    }
}

/// What an announced virtual server needs for every director behind ECMP to pick the same real
/// server for a flow; warnings (at `announce`) for what is missing, an error for a virtual
/// server without an address.
pub(crate) fn check_virtual_server(ctx: &mut Ctx, vs: &super::lvs::VirtualServer, a: &Announce) -> Result<(), ConfigError> {
    if let super::lvs::VirtualServerKey::Fwmark(_) = vs.key {
        return Err(ConfigError::invalid(
            &a.location,
            "a fwmark virtual server has no address to announce (announce a virtual_server_group of addresses)",
        ));
    }
    if vs.lb_algo != "mh" {
        ctx.warn(
            &a.location,
            format!(
                "announced virtual server schedules with '{}': directors behind ECMP pick the same real server for a flow only with lb_algo mh",
                vs.lb_algo
            ),
        );
        return Ok(());
    }
    if let Some(rs) = vs.real_servers.iter().find(|r| !r.inhibit_on_failure) {
        ctx.warn(
            &a.location,
            format!(
                "announced mh virtual server: real server {} (at line {}) is removed when it fails and comes back at the head of the kernel's list, so directors that saw different failures build different mh tables; inhibit_on_failure keeps its place",
                rs.addr, rs.location.line
            ),
        );
    }
    if !vs.sched_flags.fallback && vs.real_servers.iter().any(|r| r.inhibit_on_failure) {
        ctx.warn(&a.location, "announced mh virtual server without mh-fallback: the flows of a failed (inhibited) real server are dropped instead of moved");
    }
    Ok(())
}
