//! hav-embedded on Arm's MPS2 board with the AN386 image (Cortex-M4F, SMSC
//! LAN9118 Ethernet), as `qemu-system-arm -M mps2-an386` emulates it: the
//! firmware image the namespace lab boots on a TAP device, to elect against
//! keepalived and hav-linux.
//!
//! - `mmio`: the only module with `unsafe` (register blocks, the config
//!   sector, the NVIC, the interrupt handler);
//! - `lan9118`: the Ethernet driver (`embassy-net-driver`);
//! - `time`: embassy's time driver on SysTick;
//! - `uart`: the console on UART 0 (QEMU's `-serial stdio`): the log out,
//!   and the command `stop` in (a clean stop: priority-0 adverts).
//!
//! The node config is read from the config sector at 0x003F_0000 (QEMU:
//! `-device loader,file=node.cfg,addr=0x3f0000,force-raw=on`), the stored
//! form `hav-embedded-tap encode` writes; without a valid one the firmware
//! runs no instance and holds no VIP ([`hav_firmware::unconfigured`]) and
//! says so in its log. Everything past the board is
//! `hav-firmware`'s, shared with the NUCLEO-F767ZI image.
#![no_std]
#![no_main]

mod lan9118;
mod mmio;
mod time;
mod uart;

use core::panic::PanicInfo;

use embassy_executor::Spawner;
use hav_embedded::{NodeConfig, Resources, Router, MAX_STORED_LEN};
use lan9118::Lan9118;
use static_cell::StaticCell;

// Everything long-lived is static, so `size` counts it as static RAM: the
// socket buffers, the router (which owns the driver and its frame buffers).
static RESOURCES: StaticCell<Resources<'static>> = StaticCell::new();
static ROUTER: StaticCell<Router<'static, Lan9118>> = StaticCell::new();
static NODE: StaticCell<NodeConfig> = StaticCell::new();

#[embassy_executor::main]
async fn main(_spawner: Spawner) -> ! {
    uart::init(log::LevelFilter::Info);
    // The executor's main runs once: the peripherals are still there.
    let Some(p) = cortex_m::Peripherals::take() else { panic!("core peripherals taken") };
    time::init(p.SYST);
    log::info!("hav-embedded on MPS2-AN386");
    let Some(node) = hav_firmware::load_config(mmio::config_sector(MAX_STORED_LEN)) else {
        hav_firmware::unconfigured().await
    };
    let node = NODE.init(node);
    let mut eth = match Lan9118::new() {
        Ok(eth) => eth,
        Err(e) => panic!("lan9118: {e}"),
    };
    match node.mac {
        Some(mac) => eth.set_mac(mac),
        None => node.mac = Some(eth.mac()),
    }
    // `stop` on the console: priority-0 adverts, VIPs released.
    hav_firmware::serve(eth, node, RESOURCES.init(Resources::new()), &ROUTER, uart::wait_stop()).await
}

#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    critical_section::with(|_| uart::print(format_args!("PANIC {info}")));
    loop {
        cortex_m::asm::wfi();
    }
}
