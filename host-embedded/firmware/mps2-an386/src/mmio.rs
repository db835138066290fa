//! Everything that needs `unsafe` on this board, and nothing else: the
//! register blocks of the memory map, the config sector, the NVIC mask and
//! the handler of device interrupts.
//!
//! The rest of the firmware is safe code over [`Regs`], whose accessors
//! check the offset against the block, so no other module can reach an
//! address outside a device this module vouches for.
#![allow(unsafe_code)]

use cortex_m::interrupt::InterruptNumber;
use cortex_m::peripheral::NVIC;
use cortex_m_rt::exception;

/// A block of 32-bit device registers.
#[derive(Clone, Copy)]
pub(crate) struct Regs {
    base: usize,
    len: usize,
}

impl Regs {
    /// # Safety
    /// `base..base + len` must be the register block of one device of the
    /// board's memory map, where any aligned 32-bit volatile read or write
    /// is a register access (no memory that Rust owns).
    const unsafe fn new(base: usize, len: usize) -> Regs {
        Regs { base, len }
    }

    /// Reads the register at byte offset `off`.
    ///
    /// # Panics
    /// When `off` is not 4-aligned or lies outside the block.
    #[inline]
    pub(crate) fn read(self, off: usize) -> u32 {
        assert!(off.is_multiple_of(4) && off + 4 <= self.len, "register offset out of the block");
        // SAFETY: `new`'s contract makes every aligned word of the block a
        // device register; the assert keeps `off` inside it.
        unsafe { core::ptr::read_volatile((self.base + off) as *const u32) }
    }

    /// Writes `value` to the register at byte offset `off`.
    ///
    /// # Panics
    /// When `off` is not 4-aligned or lies outside the block.
    #[inline]
    pub(crate) fn write(self, off: usize, value: u32) {
        assert!(off.is_multiple_of(4) && off + 4 <= self.len, "register offset out of the block");
        // SAFETY: as in `read`.
        unsafe { core::ptr::write_volatile((self.base + off) as *mut u32, value) }
    }
}

/// The SMSC LAN9118 Ethernet controller: 256 bytes of registers at
/// 0x4020_0000 (AN385/AN386 memory map; QEMU's mps2 model).
// SAFETY: the board's memory map puts the LAN9118's register window there.
pub(crate) const LAN9118: Regs = unsafe { Regs::new(0x4020_0000, 0x100) };

/// The CMSDK APB UART 0 (4 KiB window at 0x4000_4000; QEMU connects it to
/// its first serial port).
// SAFETY: the board's memory map puts UART 0 there; its registers are
// DATA, STATE, CTRL, INTSTATUS and BAUDDIV in the first 0x14 bytes.
pub(crate) const UART0: Regs = unsafe { Regs::new(0x4000_4000, 0x1000) };

/// Start of the config sector: the last 64 KiB of ZBT SSRAM1 (memory.x
/// keeps the image out of it).
pub(crate) const CONFIG_ADDR: usize = 0x003F_0000;

/// The config sector's first `len` bytes.
///
/// # Panics
/// When `len` exceeds the 64 KiB sector.
pub(crate) fn config_sector(len: usize) -> &'static [u8] {
    assert!(len <= 64 * 1024);
    // SAFETY: SSRAM1 is plain memory, mapped for the whole run; memory.x
    // ends the image below CONFIG_ADDR, so no Rust object lives in the
    // sector and nothing in the firmware writes it: a shared borrow for
    // 'static is sound. Whatever bytes are there (zeros without a loaded
    // config) are valid `u8`s.
    unsafe { core::slice::from_raw_parts(CONFIG_ADDR as *const u8, len) }
}

/// A device interrupt line of the NVIC.
#[derive(Clone, Copy)]
pub(crate) struct Irq(pub(crate) u16);

// SAFETY: `number` returns the line it was built with; the board has 32
// lines and only the constants below are built.
unsafe impl InterruptNumber for Irq {
    fn number(self) -> u16 {
        self.0
    }
}

/// The LAN9118's interrupt line on AN385/AN386.
pub(crate) const ETHERNET_IRQ: Irq = Irq(13);

/// Lets the NVIC deliver `irq`.
pub(crate) fn unmask(irq: Irq) {
    // SAFETY: unmasking can break a critical section built on NVIC masks;
    // this firmware's critical sections mask all interrupts (PRIMASK,
    // cortex-m's single-core implementation), and the handler below is
    // sound to run at any time.
    unsafe { NVIC::unmask(irq) }
}

// Every device interrupt comes here (cortex-m-rt fills the vector table
// with this handler when no device crate provides one).
#[exception]
unsafe fn DefaultHandler(irqn: i16) {
    if irqn == ETHERNET_IRQ.0 as i16 {
        crate::lan9118::on_interrupt();
    }
}
