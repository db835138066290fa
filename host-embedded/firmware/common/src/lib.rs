//! The board-independent part of hav-embedded's firmware images.
//!
//! A board crate brings what is particular to its hardware: the Ethernet
//! driver (an [`embassy_net_driver::Driver`]), an embassy time driver, a
//! logger (`defmt` or `log`, the feature of the same name here) and where
//! the stored config lives. Everything else is here, once:
//!
//! - [`load_config`]: the stored config read from the board's flash, or
//!   the reason there is none in the log;
//! - [`unconfigured`]: the safe default without a config (no instance, no
//!   VIPs held);
//! - [`serve`]: the router on the board's driver, each state change logged
//!   as an `EVENT` line (the lab tests and benchmarks read those), until
//!   the board's stop request, then a clean stop (priority-0 adverts).
#![no_std]

use core::future::Future;

use embassy_futures::select::{select, Either};
use embassy_net_driver::Driver;
use hav_embedded::{Event, NodeConfig, Resources, Router};
use static_cell::StaticCell;

#[cfg(all(feature = "defmt", feature = "log"))]
compile_error!("hav-firmware: enable at most one of the `defmt` and `log` features");

macro_rules! say {
    ($level:ident, $($arg:tt)*) => {{
        #[cfg(feature = "defmt")]
        ::defmt::$level!($($arg)*);
        #[cfg(feature = "log")]
        ::log::$level!($($arg)*);
    }};
}

/// The node config in `stored` (a board's config sector: a little-endian
/// `u16` length, then postcard), or `None` when it holds none or an invalid
/// one: then the log says why, and the board runs [`unconfigured`].
pub fn load_config(stored: &[u8]) -> Option<NodeConfig> {
    match NodeConfig::from_stored(stored) {
        Ok(node) => {
            say!(info, "config: {} instance(s) from flash", node.instances.len());
            Some(node)
        }
        Err(e) => {
            #[cfg(feature = "defmt")]
            defmt::warn!("config: {}", e);
            #[cfg(feature = "log")]
            log::warn!("config: {e}");
            #[cfg(not(any(feature = "defmt", feature = "log")))]
            let _ = e;
            None
        }
    }
}

/// The safe default of a board without a valid config: no VRRP instance
/// runs, no VIP is held, nothing is sent; the log says so. Never returns
/// (write a config and reset the board).
pub async fn unconfigured() -> ! {
    say!(
        warn,
        "no valid config: running no VRRP instance and holding no VIPs (write one with hav-embedded-tap encode)"
    );
    core::future::pending().await
}

/// Logs one router event as an `EVENT` line:
/// `EVENT vrid=<N> <FROM>-><TO> reason=<Reason>` (the std runner's format
/// without its timestamp; a test stamps the line when it reads it).
pub fn log_event(e: &Event) {
    match *e {
        Event::Transition { vrid, from, to, reason, .. } => {
            #[cfg(feature = "defmt")]
            defmt::info!("EVENT vrid={} {}->{} reason={:?}", vrid, from.as_str(), to.as_str(), reason);
            #[cfg(feature = "log")]
            log::info!("EVENT vrid={vrid} {}->{} reason={reason:?}", from.as_str(), to.as_str());
            #[cfg(not(any(feature = "defmt", feature = "log")))]
            let _ = (vrid, from, to, reason);
        }
        Event::Group { group, state } => {
            say!(info, "EVENT group={} {}", group, state.as_str());
        }
    }
}

/// Runs the node on `device` until `stop` completes, then stops it cleanly
/// and idles: builds the router for `node` in `cell` (a `static`, so that
/// its size counts as static RAM), logs its events with [`log_event`] and
/// serves; when `stop` completes (a console command, a button), every
/// master sends priority-0 adverts and releases its VIPs
/// ([`Router::shutdown`]), so a backup takes over after Skew_Time. A board
/// with no stop request passes `core::future::pending()`.
///
/// # Panics
/// When `node` is invalid (a config from [`load_config`] has been
/// validated) or `cell` was already used.
pub async fn serve<D: Driver>(
    device: D,
    node: &'static NodeConfig,
    res: &'static mut Resources<'static>,
    cell: &'static StaticCell<Router<'static, D>>,
    stop: impl Future<Output = ()>,
) -> ! {
    let router = match Router::new(device, node, res) {
        Ok(r) => cell.init(r),
        Err(e) => {
            #[cfg(feature = "defmt")]
            defmt::error!("cannot start: {}", e);
            #[cfg(feature = "log")]
            log::error!("cannot start: {e}");
            #[cfg(not(any(feature = "defmt", feature = "log")))]
            let _ = e;
            panic!("invalid node config");
        }
    };
    router.set_observer(log_event);
    match select(router.run(), stop).await {
        Either::First(never) => never,
        Either::Second(()) => {}
    }
    say!(info, "stop requested: priority 0 for every master, VIPs released");
    router.shutdown().await;
    say!(info, "stopped");
    core::future::pending().await
}
