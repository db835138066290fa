//! smoltcp's `phy::Device` over an `embassy-net-driver` [`Driver`].
//!
//! smoltcp polls devices synchronously, while an embassy driver wants a
//! task [`Context`] so that it can wake the task when a frame arrives or a
//! transmit slot frees up. The adapter borrows both for the length of one
//! `Interface::poll`, the way embassy-net drives its own stack.

use core::task::Context;

use embassy_net_driver::{Capabilities, Checksum, Driver, RxToken, TxToken};
use smoltcp::phy::{self, ChecksumCapabilities, DeviceCapabilities, Medium};
use smoltcp::time::Instant;

/// A [`Driver`] and the context of the task polling it, as a smoltcp device.
pub(crate) struct Adapter<'d, 'c, 'w, D: Driver> {
    pub(crate) inner: &'d mut D,
    pub(crate) cx: &'c mut Context<'w>,
}

impl<D: Driver> phy::Device for Adapter<'_, '_, '_, D> {
    type RxToken<'a>
        = Rx<D::RxToken<'a>>
    where
        Self: 'a;
    type TxToken<'a>
        = Tx<D::TxToken<'a>>
    where
        Self: 'a;

    fn receive(&mut self, _ts: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        self.inner.receive(self.cx).map(|(rx, tx)| (Rx(rx), Tx(tx)))
    }

    fn transmit(&mut self, _ts: Instant) -> Option<Self::TxToken<'_>> {
        self.inner.transmit(self.cx).map(Tx)
    }

    fn capabilities(&self) -> DeviceCapabilities {
        smoltcp_caps(&self.inner.capabilities())
    }
}

/// Converts the driver's capabilities into smoltcp's.
pub(crate) fn smoltcp_caps(caps: &Capabilities) -> DeviceCapabilities {
    let mut out = DeviceCapabilities::default();
    out.medium = Medium::Ethernet;
    out.max_transmission_unit = caps.max_transmission_unit;
    out.max_burst_size = caps.max_burst_size;
    let mut sums = ChecksumCapabilities::default();
    sums.ipv4 = checksum(caps.checksum.ipv4);
    sums.udp = checksum(caps.checksum.udp);
    sums.tcp = checksum(caps.checksum.tcp);
    sums.icmpv4 = checksum(caps.checksum.icmpv4);
    out.checksum = sums;
    out
}

fn checksum(c: Checksum) -> phy::Checksum {
    match c {
        Checksum::Both => phy::Checksum::Both,
        Checksum::Rx => phy::Checksum::Rx,
        Checksum::Tx => phy::Checksum::Tx,
        Checksum::None => phy::Checksum::None,
    }
}

pub(crate) struct Rx<T>(T);

impl<T: RxToken> phy::RxToken for Rx<T> {
    fn consume<R, F>(self, f: F) -> R
    where
        F: FnOnce(&[u8]) -> R,
    {
        self.0.consume(|buf| f(buf))
    }
}

pub(crate) struct Tx<T>(T);

impl<T: TxToken> phy::TxToken for Tx<T> {
    fn consume<R, F>(self, len: usize, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        self.0.consume(len, f)
    }
}
