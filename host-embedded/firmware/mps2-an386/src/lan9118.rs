//! An `embassy-net-driver` for the SMSC LAN9118 Ethernet controller (the
//! MPS2's LAN9220 is register compatible), over its PIO FIFOs, woken by its
//! interrupt.
//!
//! Facts from SMSC's LAN9118 datasheet: the system CSRs at the offsets below;
//! the MAC CSRs reached through MAC_CSR_CMD/MAC_CSR_DATA; the internal PHY
//! (address 1) through the MAC's MII_ACC/MII_DATA; a frame sent as TX
//! command A, TX command B and the data in little-endian words; a frame
//! received as one RX status word (length with the 4-byte FCS in bits
//! 29:16, error summary in bit 15) and its data words.
//!
//! Receive path: the interrupt handler masks the controller's interrupts
//! and wakes the task; `receive` reads one frame per call and unmasks them
//! once the RX status FIFO is empty (clearing the RX status level flag
//! before looking, so a frame arriving in between raises it again).
//! Transmit: a frame goes straight into the TX data FIFO, which drains at
//! line rate; its status words are discarded.

use core::task::Context;

use embassy_net_driver::{Capabilities, Driver, HardwareAddress, LinkState};
use embassy_sync::waitqueue::AtomicWaker;

use crate::mmio::{self, Regs, LAN9118};

// System control and status registers (byte offsets).
const RX_DATA_FIFO: usize = 0x00;
const TX_DATA_FIFO: usize = 0x20;
const RX_STATUS_FIFO: usize = 0x40;
const TX_STATUS_FIFO: usize = 0x48;
const ID_REV: usize = 0x50;
const IRQ_CFG: usize = 0x54;
const INT_STS: usize = 0x58;
const INT_EN: usize = 0x5C;
const BYTE_TEST: usize = 0x64;
const RX_CFG: usize = 0x6C;
const TX_CFG: usize = 0x70;
const HW_CFG: usize = 0x74;
const RX_FIFO_INF: usize = 0x7C;
const TX_FIFO_INF: usize = 0x80;
const PMT_CTRL: usize = 0x84;
const MAC_CSR_CMD: usize = 0xA4;
const MAC_CSR_DATA: usize = 0xA8;

// MAC control and status registers (indexes through MAC_CSR_CMD).
const MAC_CR: u32 = 1;
const ADDRH: u32 = 2;
const ADDRL: u32 = 3;
const MII_ACC: u32 = 6;
const MII_DATA: u32 = 7;

// Internal PHY registers.
const PHY_ADDR: u32 = 1;
const PHY_BCR: u32 = 0;
const PHY_BSR: u32 = 1;
const PHY_INT_SRC: u32 = 29;
const PHY_INT_MASK: u32 = 30;

// Bits.
const BYTE_TEST_VALUE: u32 = 0x8765_4321;
const PMT_READY: u32 = 1 << 0;
const HW_CFG_SRST: u32 = 1 << 0;
const IRQ_CFG_TYPE_PUSH_PULL: u32 = 1 << 0;
const IRQ_CFG_POL_HIGH: u32 = 1 << 4;
const IRQ_CFG_EN: u32 = 1 << 8;
const INT_RSFL: u32 = 1 << 3;
const INT_PHY: u32 = 1 << 18;
const TX_CFG_TX_ON: u32 = 1 << 1;
const TX_CFG_TXSAO: u32 = 1 << 2;
const MAC_CSR_BUSY: u32 = 1 << 31;
const MAC_CSR_READ: u32 = 1 << 30;
const MAC_CR_RXEN: u32 = 1 << 2;
const MAC_CR_TXEN: u32 = 1 << 3;
const MAC_CR_MCPAS: u32 = 1 << 19;
const MAC_CR_FDPX: u32 = 1 << 20;
const MII_BUSY: u32 = 1 << 0;
const MII_WRITE: u32 = 1 << 1;
const BCR_ANEG_ENABLE: u32 = 1 << 12;
const BCR_ANEG_RESTART: u32 = 1 << 9;
const BSR_LINK_UP: u32 = 1 << 2;
const PHY_INT_LINK_DOWN: u32 = 1 << 4;
const PHY_INT_ANEG_DONE: u32 = 1 << 6;
const RX_STS_ERROR: u32 = 1 << 15;
const TX_CMD_A_FIRST: u32 = 1 << 13;
const TX_CMD_A_LAST: u32 = 1 << 12;

/// The interrupts the driver runs on: a frame in the RX status FIFO, a
/// PHY event (link up or down).
const ENABLED: u32 = INT_RSFL | INT_PHY;

/// Longest frame handled, FCS included (1518), rounded up to whole words.
const FRAME: usize = 1520;
/// Bytes of TX data FIFO a frame needs: its two command words and data.
const TX_ROOM: u32 = FRAME as u32 + 8;
/// Register polls before a wait for the controller counts as failed.
const SPIN: u32 = 100_000;

static RX_WAKER: AtomicWaker = AtomicWaker::new();
static LINK_WAKER: AtomicWaker = AtomicWaker::new();

/// Why the controller could not be brought up.
#[derive(Clone, Copy)]
pub(crate) enum InitError {
    /// BYTE_TEST read this instead of 0x87654321: no LAN9118 there, or the
    /// bus is byte-swapped.
    ByteTest(u32),
    /// The controller did not leave reset or power-down.
    NotReady,
}

impl core::fmt::Display for InitError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            InitError::ByteTest(v) => write!(f, "BYTE_TEST reads {v:08x}, not 87654321"),
            InitError::NotReady => f.write_str("the controller does not leave reset"),
        }
    }
}

/// The LAN9118 and the buffers of one received and one sent frame.
pub(crate) struct Lan9118 {
    regs: Regs,
    mac: [u8; 6],
    link: Option<bool>,
    rx: [u8; FRAME],
    tx: [u8; FRAME],
}

/// Called by the device interrupt handler: masks the controller's
/// interrupts (its line is level-triggered) and wakes the task, which reads
/// the frames and unmasks them.
pub(crate) fn on_interrupt() {
    LAN9118.write(INT_EN, 0);
    RX_WAKER.wake();
    LINK_WAKER.wake();
}

fn spin_until(mut done: impl FnMut() -> bool) -> bool {
    (0..SPIN).any(|_| done())
}

impl Lan9118 {
    /// Resets and starts the controller: MAC address from its EEPROM
    /// (QEMU's `-nic ...,mac=`), transmitter and receiver on, all multicast
    /// frames passed (VRRP's 224.0.0.18 and IGMP), interrupts on.
    pub(crate) fn new() -> Result<Lan9118, InitError> {
        let regs = LAN9118;
        // BYTE_TEST answers even before the controller is ready.
        let test = regs.read(BYTE_TEST);
        if test != BYTE_TEST_VALUE {
            return Err(InitError::ByteTest(test));
        }
        if !spin_until(|| regs.read(PMT_CTRL) & PMT_READY != 0) {
            return Err(InitError::NotReady);
        }
        regs.write(HW_CFG, HW_CFG_SRST);
        if !spin_until(|| regs.read(HW_CFG) & HW_CFG_SRST == 0 && regs.read(PMT_CTRL) & PMT_READY != 0) {
            return Err(InitError::NotReady);
        }
        let id = regs.read(ID_REV);
        log::info!("lan9118: chip {:04x} rev {}", id >> 16, id & 0xffff);
        let mut dev = Lan9118 { regs, mac: [0; 6], link: None, rx: [0; FRAME], tx: [0; FRAME] };
        let lo = dev.mac_read(ADDRL).to_le_bytes();
        let hi = dev.mac_read(ADDRH).to_le_bytes();
        dev.mac = [lo[0], lo[1], lo[2], lo[3], hi[0], hi[1]];

        regs.write(RX_CFG, 0); // 4-byte end alignment, no offset
        regs.write(TX_CFG, TX_CFG_TX_ON | TX_CFG_TXSAO);
        dev.phy_write(PHY_BCR, BCR_ANEG_ENABLE | BCR_ANEG_RESTART);
        dev.phy_write(PHY_INT_MASK, PHY_INT_LINK_DOWN | PHY_INT_ANEG_DONE);
        // Unicast to our address only (the reset value is promiscuous).
        dev.mac_write(MAC_CR, MAC_CR_TXEN | MAC_CR_RXEN | MAC_CR_MCPAS | MAC_CR_FDPX);
        regs.write(INT_STS, u32::MAX);
        regs.write(INT_EN, ENABLED);
        regs.write(IRQ_CFG, IRQ_CFG_EN | IRQ_CFG_POL_HIGH | IRQ_CFG_TYPE_PUSH_PULL);
        mmio::unmask(mmio::ETHERNET_IRQ);
        Ok(dev)
    }

    /// The Ethernet address the controller filters on.
    pub(crate) fn mac(&self) -> [u8; 6] {
        self.mac
    }

    /// Sets the address the controller filters on (the node config's).
    pub(crate) fn set_mac(&mut self, mac: [u8; 6]) {
        self.mac_write(ADDRL, u32::from_le_bytes([mac[0], mac[1], mac[2], mac[3]]));
        self.mac_write(ADDRH, u32::from_le_bytes([mac[4], mac[5], 0, 0]));
        self.mac = mac;
    }

    fn mac_wait(&self) {
        if !spin_until(|| self.regs.read(MAC_CSR_CMD) & MAC_CSR_BUSY == 0) {
            log::error!("lan9118: MAC CSR stays busy");
        }
    }

    fn mac_read(&self, reg: u32) -> u32 {
        self.mac_wait();
        self.regs.write(MAC_CSR_CMD, MAC_CSR_BUSY | MAC_CSR_READ | reg);
        self.mac_wait();
        self.regs.read(MAC_CSR_DATA)
    }

    fn mac_write(&self, reg: u32, value: u32) {
        self.mac_wait();
        self.regs.write(MAC_CSR_DATA, value);
        self.regs.write(MAC_CSR_CMD, MAC_CSR_BUSY | reg);
        self.mac_wait();
    }

    fn mii_wait(&self) {
        if !spin_until(|| self.mac_read(MII_ACC) & MII_BUSY == 0) {
            log::error!("lan9118: MII stays busy");
        }
    }

    fn phy_read(&self, reg: u32) -> u16 {
        self.mii_wait();
        self.mac_write(MII_ACC, PHY_ADDR << 11 | reg << 6 | MII_BUSY);
        self.mii_wait();
        self.mac_read(MII_DATA) as u16
    }

    fn phy_write(&self, reg: u32, value: u32) {
        self.mii_wait();
        self.mac_write(MII_DATA, value & 0xffff);
        self.mac_write(MII_ACC, PHY_ADDR << 11 | reg << 6 | MII_WRITE | MII_BUSY);
        self.mii_wait();
    }

    // The next good frame into `rx`, its length without the FCS; None (and
    // the interrupts unmasked) when the RX FIFOs are empty.
    fn pop_frame(&mut self) -> Option<usize> {
        loop {
            self.regs.write(INT_STS, INT_RSFL);
            if (self.regs.read(RX_FIFO_INF) >> 16) & 0xff == 0 {
                self.regs.write(INT_EN, ENABLED);
                return None;
            }
            let status = self.regs.read(RX_STATUS_FIFO);
            let len = ((status >> 16) & 0x3fff) as usize;
            let words = len.div_ceil(4);
            let good = status & RX_STS_ERROR == 0 && (14 + 4..=FRAME).contains(&len);
            for i in 0..words {
                let w = self.regs.read(RX_DATA_FIFO);
                if good {
                    self.rx[4 * i..4 * i + 4].copy_from_slice(&w.to_le_bytes());
                }
            }
            if good {
                return Some(len - 4);
            }
            log::debug!("lan9118: frame dropped, status {status:08x}");
        }
    }

    fn discard_tx_status(&self) {
        while (self.regs.read(TX_FIFO_INF) >> 16) & 0xff != 0 {
            self.regs.read(TX_STATUS_FIFO);
        }
    }
}

/// A received frame.
pub(crate) struct RxToken<'a> {
    frame: &'a mut [u8],
}

impl embassy_net_driver::RxToken for RxToken<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, f: F) -> R {
        f(self.frame)
    }
}

/// Room for one frame in the TX data FIFO.
pub(crate) struct TxToken<'a> {
    regs: Regs,
    buf: &'a mut [u8; FRAME],
}

impl embassy_net_driver::TxToken for TxToken<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let len = len.min(FRAME - 4);
        let frame = &mut self.buf[..len];
        let r = f(frame);
        // One buffer holding the whole frame: first and last segment,
        // 4-byte end alignment, no data offset; the tag is the length.
        self.regs.write(TX_DATA_FIFO, TX_CMD_A_FIRST | TX_CMD_A_LAST | len as u32);
        self.regs.write(TX_DATA_FIFO, (len as u32) << 16 | len as u32);
        for chunk in frame.chunks(4) {
            let mut w = [0u8; 4];
            w[..chunk.len()].copy_from_slice(chunk);
            self.regs.write(TX_DATA_FIFO, u32::from_le_bytes(w));
        }
        r
    }
}

impl Driver for Lan9118 {
    type RxToken<'a> = RxToken<'a>;
    type TxToken<'a> = TxToken<'a>;

    fn receive(&mut self, cx: &mut Context<'_>) -> Option<(RxToken<'_>, TxToken<'_>)> {
        RX_WAKER.register(cx.waker());
        let len = self.pop_frame()?;
        self.discard_tx_status();
        Some((RxToken { frame: &mut self.rx[..len] }, TxToken { regs: self.regs, buf: &mut self.tx }))
    }

    fn transmit(&mut self, cx: &mut Context<'_>) -> Option<TxToken<'_>> {
        self.discard_tx_status();
        if self.regs.read(TX_FIFO_INF) & 0xffff < TX_ROOM {
            // The FIFO drains at line rate with no interrupt asked for:
            // look again on the next pass.
            cx.waker().wake_by_ref();
            return None;
        }
        Some(TxToken { regs: self.regs, buf: &mut self.tx })
    }

    fn link_state(&mut self, cx: &mut Context<'_>) -> LinkState {
        LINK_WAKER.register(cx.waker());
        if self.link.is_none() || self.regs.read(INT_STS) & INT_PHY != 0 {
            // Reading the PHY's interrupt source clears it (and INT_PHY).
            self.phy_read(PHY_INT_SRC);
            // The link bit latches low: the second read is the state now.
            self.phy_read(PHY_BSR);
            let up = self.phy_read(PHY_BSR) & BSR_LINK_UP as u16 != 0;
            self.link = Some(up);
            self.regs.write(INT_EN, ENABLED);
        }
        if self.link == Some(true) {
            LinkState::Up
        } else {
            LinkState::Down
        }
    }

    fn capabilities(&self) -> Capabilities {
        let mut caps = Capabilities::default();
        caps.max_transmission_unit = 1514;
        caps.max_burst_size = Some(1);
        caps
    }

    fn hardware_address(&self) -> HardwareAddress {
        HardwareAddress::Ethernet(self.mac)
    }
}
