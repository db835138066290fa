//! The console on the CMSDK APB UART 0, which QEMU connects to its first
//! serial port (stdin and stdout with `-serial stdio`): `log` records out,
//! commands in ([`wait_stop`]).
//!
//! CMSDK APB UART registers (Arm Cortex-M System Design Kit TRM): DATA at
//! 0x00, STATE at 0x04 (bit 0: transmit buffer full, bit 1: receive buffer
//! full), CTRL at 0x08 (bit 0: transmit enable, bit 1: receive enable),
//! BAUDDIV at 0x10 (at least 16).

use core::fmt::{self, Write};

use log::{LevelFilter, Log, Metadata, Record};

use crate::mmio::UART0;

const DATA: usize = 0x00;
const STATE: usize = 0x04;
const CTRL: usize = 0x08;
const BAUDDIV: usize = 0x10;
const STATE_TX_FULL: u32 = 1 << 0;
const STATE_RX_FULL: u32 = 1 << 1;
const CTRL_TX_EN: u32 = 1 << 0;
const CTRL_RX_EN: u32 = 1 << 1;
/// How often the console looks for input (no interrupt: it is rare).
const POLL: embassy_time::Duration = embassy_time::Duration::from_millis(10);
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

/// Enables the UART's transmitter and receiver and installs the logger at
/// `level`.
pub(crate) fn init(level: LevelFilter) {
    UART0.write(BAUDDIV, DIVISOR);
    UART0.write(CTRL, CTRL_TX_EN | CTRL_RX_EN);
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

fn read_byte() -> Option<u8> {
    (UART0.read(STATE) & STATE_RX_FULL != 0).then(|| UART0.read(DATA) as u8)
}

/// Completes when the console receives the line `stop`: the clean-stop
/// request (priority 0 for every master). Other lines are logged and
/// ignored.
pub(crate) async fn wait_stop() {
    let mut line = [0u8; 32];
    let mut len = 0;
    loop {
        while let Some(b) = read_byte() {
            if b != b'\n' && b != b'\r' {
                if len < line.len() {
                    line[len] = b;
                    len += 1;
                }
                continue;
            }
            match &line[..len] {
                b"stop" => return,
                b"" => {}
                other => log::warn!("console: unknown command \"{}\" (commands: stop)", core::str::from_utf8(other).unwrap_or("?")),
            }
            len = 0;
        }
        embassy_time::Timer::after(POLL).await;
    }
}
