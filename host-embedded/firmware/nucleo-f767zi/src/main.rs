//! hav-embedded on a NUCLEO-F767ZI: a VRRP gateway that elects against
//! keepalived and hav-linux on the board's Ethernet port.
//!
//! The node config is read from the last flash sector (sector 11,
//! 0x081C_0000): a little-endian `u16` length, then a postcard
//! `hav_embedded::NodeConfig` (`hav-embedded-tap encode` writes that file).
//! With erased or invalid flash the firmware runs no instance and holds no
//! VIP ([`hav_firmware::unconfigured`]). The board-independent part (config
//! fallback, router, event log) is `hav-firmware`, shared with the other boards.
//! Pressing the user button B1 stops the node cleanly (priority-0 adverts,
//! VIPs released, so a backup takes over after Skew_Time).
//! host-embedded/README.md has the flashing steps.
#![no_std]
#![no_main]

use defmt::{info, warn};
use embassy_executor::Spawner;
use embassy_stm32::eth::{Ethernet, GenericPhy, PacketQueue, Sma};
use embassy_stm32::flash::Flash;
use embassy_stm32::peripherals::{ETH, ETH_SMA, FLASH};
use embassy_stm32::time::Hertz;
use embassy_stm32::exti::ExtiInput;
use embassy_stm32::gpio::Pull;
use embassy_stm32::{bind_interrupts, eth, exti, interrupt, Peri};
use hav_embedded::{NodeConfig, Resources, Router, MAX_STORED_LEN};
use static_cell::StaticCell;
use {defmt_rtt as _, panic_probe as _};

bind_interrupts!(struct Irqs {
    ETH => eth::InterruptHandler;
    EXTI15_10 => exti::InterruptHandler<interrupt::typelevel::EXTI15_10>;
});

type Device = Ethernet<'static, ETH, GenericPhy<Sma<'static, ETH_SMA>>>;

/// Offset of the config in flash: sector 11 of the 2 MiB single-bank flash.
const CONFIG_OFFSET: u32 = 0x1C_0000;

// Everything long-lived is static, so `size` counts it as static RAM:
// the DMA descriptors and packet buffers, the socket buffers, the router.
static QUEUE: StaticCell<PacketQueue<4, 4>> = StaticCell::new();
static RESOURCES: StaticCell<Resources<'static>> = StaticCell::new();
static ROUTER: StaticCell<Router<'static, Device>> = StaticCell::new();
static NODE: StaticCell<NodeConfig> = StaticCell::new();
static STORED: StaticCell<[u8; MAX_STORED_LEN]> = StaticCell::new();

fn load_config(flash: Peri<'static, FLASH>) -> Option<NodeConfig> {
    let mut flash = Flash::new_blocking(flash);
    let buf = STORED.init([0; MAX_STORED_LEN]);
    if flash.blocking_read(CONFIG_OFFSET, buf).is_err() {
        warn!("config: flash read failed");
        return None;
    }
    hav_firmware::load_config(buf)
}

fn clocks() -> embassy_stm32::Config {
    use embassy_stm32::rcc::*;
    let mut config = embassy_stm32::Config::default();
    // The ST-LINK feeds an 8 MHz clock (HSE bypass); 168 MHz needs no
    // over-drive, and the Ethernet MAC wants HCLK >= 25 MHz.
    config.rcc.hse = Some(Hse { freq: Hertz(8_000_000), mode: HseMode::Bypass });
    config.rcc.pll_src = PllSource::HSE;
    config.rcc.pll = Some(Pll {
        prediv: PllPreDiv::DIV4,
        mul: PllMul::MUL168,
        divp: Some(PllPDiv::DIV2),
        divq: None,
        divr: None,
    });
    config.rcc.ahb_pre = AHBPrescaler::DIV1;
    config.rcc.apb1_pre = APBPrescaler::DIV4;
    config.rcc.apb2_pre = APBPrescaler::DIV2;
    config.rcc.sys = Sysclk::PLL1_P;
    config
}

/// A locally administered unicast MAC from the chip's unique ID.
fn board_mac() -> [u8; 6] {
    let uid = embassy_stm32::uid::uid();
    let mut mac = [0x02, 0x68, 0, 0, 0, 0];
    for (i, b) in uid.iter().enumerate() {
        mac[2 + i % 4] ^= b;
    }
    mac
}

#[embassy_executor::main]
async fn main(_spawner: Spawner) -> ! {
    let p = embassy_stm32::init(clocks());
    info!("hav-embedded on NUCLEO-F767ZI");
    let Some(node) = load_config(p.FLASH) else { hav_firmware::unconfigured().await };
    let node = NODE.init(node);
    let mac = *node.mac.get_or_insert_with(board_mac);

    // RMII to the LAN8742A: REF_CLK PA1, CRS_DV PA7, RXD0 PC4, RXD1 PC5,
    // TXD0 PG13, TXD1 PB13, TX_EN PG11; MDIO PA2, MDC PC1.
    let device: Device = Ethernet::new(
        QUEUE.init(PacketQueue::new()),
        p.ETH,
        Irqs,
        p.PA1,
        p.PA7,
        p.PC4,
        p.PC5,
        p.PG13,
        p.PB13,
        p.PG11,
        mac,
        p.ETH_SMA,
        p.PA2,
        p.PC1,
    );

    // The blue user button B1 (PC13, high while pressed) is the clean-stop
    // request: priority-0 adverts, VIPs released.
    let mut button = ExtiInput::new(p.PC13, p.EXTI13, Pull::Down, Irqs);
    let stop = async move { button.wait_for_rising_edge().await };
    hav_firmware::serve(device, node, RESOURCES.init(Resources::new()), &ROUTER, stop).await
}
