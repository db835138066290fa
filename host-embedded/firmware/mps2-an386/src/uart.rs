//! The log: `log` records written to the CMSDK APB UART 0, which QEMU
//! connects to its first serial port (stdout with `-serial stdio`).
//!
//! CMSDK APB UART registers (Arm Cortex-M System Design Kit TRM): DATA at
//! 0x00, STATE at 0x04 (bit 0: transmit buffer full), CTRL at 0x08 (bit 0:
//! transmit enable), BAUDDIV at 0x10 (at least 16).

use core::fmt::{self, Write};

use log::{LevelFilter, Log, Metadata, Record};

use crate::mmio::UART0;

const DATA: usize = 0x00;
const STATE: usize = 0x04;
const CTRL: usize = 0x08;
const BAUDDIV: usize = 0x10;
const STATE_TX_FULL: u32 = 1 << 0;
const CTRL_TX_EN: u32 = 1 << 0;
/// 25 MHz PCLK / 115200 baud.
const DIVISOR: u32 = 25_000_000 / 115_200;

struct Uart;

impl Write for Uart {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for b in s.bytes() {
            while UART0.read(STATE) & STATE_TX_FULL != 0 {}
            UART0.write(DATA, u32::from(b));
        }
        Ok(())
    }
}

struct Logger;

impl Log for Logger {
    fn enabled(&self, m: &Metadata<'_>) -> bool {
        m.level() <= log::max_level()
    }

    fn log(&self, r: &Record<'_>) {
        if !self.enabled(r.metadata()) {
            return;
        }
        let us = embassy_time_driver::now();
        // One line at a time: no interrupt handler logs, but keep lines whole anyway.
        critical_section::with(|_| {
            let _ = write!(
                Uart,
                "{:>6}.{:06} {:<5} {}\r\n",
                us / 1_000_000,
                us % 1_000_000,
                r.level(),
                r.args()
            );
        });
    }

    fn flush(&self) {}
}

static LOGGER: Logger = Logger;

/// Enables the UART's transmitter and installs the logger at `level`.
pub(crate) fn init(level: LevelFilter) {
    UART0.write(BAUDDIV, DIVISOR);
    UART0.write(CTRL, CTRL_TX_EN);
    // Fails only when a logger is already set: then that one stays.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(level);
}

/// Writes `args` and a line end to the UART, bypassing the logger (for the
/// panic handler).
pub(crate) fn print(args: fmt::Arguments<'_>) {
    let _ = Uart.write_fmt(args);
    let _ = Uart.write_str("\r\n");
}
