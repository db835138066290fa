//! embassy's time driver on the Cortex-M SysTick: 1 ms interrupts count the
//! milliseconds, the counter's current value gives the microseconds in
//! between, and the handler wakes the timers that are due.
//!
//! SysTick runs from the processor clock, 25 MHz on the MPS2 (SYSCLK);
//! under QEMU that clock follows the host's, so emulated time is close to
//! real time.

use core::cell::{Cell, RefCell};
use core::task::Waker;

use cortex_m::peripheral::syst::SystClkSource;
use cortex_m::peripheral::{SCB, SYST};
use cortex_m_rt::exception;
use critical_section::{CriticalSection, Mutex};
use embassy_time_driver::Driver;
use embassy_time_queue_utils::Queue;

const CPU_HZ: u32 = 25_000_000;
const CYCLES_PER_MS: u32 = CPU_HZ / 1_000;
const CYCLES_PER_US: u32 = CPU_HZ / 1_000_000;

// now() is in microseconds: embassy-time's default tick rate.
const _: () = assert!(embassy_time_driver::TICK_HZ == 1_000_000);

struct SysTickDriver {
    ms: Mutex<Cell<u64>>,
    alarm: Mutex<Cell<u64>>,
    queue: Mutex<RefCell<Queue>>,
}

impl SysTickDriver {
    fn now_cs(&self, cs: CriticalSection<'_>) -> u64 {
        let mut ms = self.ms.borrow(cs).get();
        let mut left = SYST::get_current();
        // The counter wrapped but the handler has not run yet (interrupts
        // are off): count that millisecond, and read the counter again in
        // case it wrapped after the first read.
        if SCB::is_pendst_pending() {
            ms += 1;
            left = SYST::get_current();
        }
        let elapsed = (CYCLES_PER_MS - 1).saturating_sub(left) / CYCLES_PER_US;
        ms * 1_000 + u64::from(elapsed)
    }

    fn tick(&self) {
        critical_section::with(|cs| {
            let ms = self.ms.borrow(cs);
            ms.set(ms.get() + 1);
            let now = self.now_cs(cs);
            if now >= self.alarm.borrow(cs).get() {
                let next = self.queue.borrow_ref_mut(cs).next_expiration(now);
                self.alarm.borrow(cs).set(next);
            }
        });
    }
}

impl Driver for SysTickDriver {
    fn now(&self) -> u64 {
        critical_section::with(|cs| self.now_cs(cs))
    }

    fn schedule_wake(&self, at: u64, waker: &Waker) {
        critical_section::with(|cs| {
            let mut queue = self.queue.borrow_ref_mut(cs);
            if queue.schedule_wake(at, waker) {
                // Wakes what is already due; the rest waits for the tick.
                let next = queue.next_expiration(self.now_cs(cs));
                self.alarm.borrow(cs).set(next);
            }
        });
    }
}

embassy_time_driver::time_driver_impl!(static DRIVER: SysTickDriver = SysTickDriver {
    ms: Mutex::new(Cell::new(0)),
    alarm: Mutex::new(Cell::new(u64::MAX)),
    queue: Mutex::new(RefCell::new(Queue::new())),
});

/// Starts SysTick: a 1 ms period from the processor clock, with its
/// interrupt.
pub(crate) fn init(mut syst: SYST) {
    syst.set_clock_source(SystClkSource::Core);
    syst.set_reload(CYCLES_PER_MS - 1);
    syst.clear_current();
    syst.enable_interrupt();
    syst.enable_counter();
}

#[exception]
fn SysTick() {
    DRIVER.tick();
}
