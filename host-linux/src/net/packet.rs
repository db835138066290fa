//! `AF_PACKET` sockets: whole Ethernet frames in and out of one interface.
//!
//! Used to send the gratuitous ARP and unsolicited neighbour advertisement
//! frames built by `hav_core::wire` (their Ethernet source must be the
//! virtual MAC with VMAC, which only a packet socket can choose), and by
//! tests to capture frames.

use std::os::fd::{AsFd, AsRawFd};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::unix::AsyncFd;

use super::error::{NetError, Result};
use super::sys;

/// Ethertype of ARP.
pub const ETH_P_ARP: u16 = 0x0806;
/// Ethertype of IPv6.
pub const ETH_P_IPV6: u16 = 0x86dd;
/// Shortest Ethernet frame without FCS the socket accepts (header only).
pub const ETH_HLEN: usize = 14;

/// An `AF_PACKET`, `SOCK_RAW` socket bound to one interface.
#[derive(Debug)]
pub struct PacketSocket {
    sock: Inner,
    ifindex: u32,
    ifname: String,
}

#[derive(Debug)]
enum Inner {
    // Send-only: blocking, no runtime needed.
    Plain(Socket),
    // Receiving: non-blocking, registered with tokio.
    Async(AsyncFd<Socket>),
}

impl Inner {
    fn socket(&self) -> &Socket {
        match self {
            Inner::Plain(s) => s,
            Inner::Async(fd) => fd.get_ref(),
        }
    }
}

fn packet_socket(ifindex: u32, ifname: &str, protocol: u16) -> Result<Socket> {
    // Protocol 0 receives nothing: a send-only socket never queues traffic.
    let sock = Socket::new(
        Domain::PACKET,
        Type::RAW,
        Some(Protocol::from(i32::from(protocol.to_be()))),
    )
    .map_err(|e| NetError::socket("socket(AF_PACKET)", ifname, e))?;
    sys::bind_packet(sock.as_fd(), ifindex, protocol)
        .map_err(|e| NetError::socket(format!("bind(AF_PACKET, ifindex {ifindex})"), ifname, e))?;
    Ok(sock)
}

impl PacketSocket {
    /// A send-only packet socket on `ifindex` / `ifname`.
    ///
    /// # Errors
    /// [`NetError::Socket`] naming the interface (e.g. `ENODEV` when the
    /// index does not exist).
    pub fn open(ifindex: u32, ifname: &str) -> Result<Self> {
        let sock = packet_socket(ifindex, ifname, 0)?;
        Ok(PacketSocket {
            sock: Inner::Plain(sock),
            ifindex,
            ifname: ifname.to_owned(),
        })
    }

    /// A packet socket on `ifindex` / `ifname` that also receives the frames
    /// of `ethertype` (e.g. [`ETH_P_ARP`]), for [`PacketSocket::recv_frame`].
    /// Must be called inside a tokio runtime.
    pub fn listen(ifindex: u32, ifname: &str, ethertype: u16) -> Result<Self> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(NetError::Invalid {
                what: "context",
                detail: format!("PacketSocket::listen on {ifname} needs a tokio runtime"),
            });
        }
        let sock = packet_socket(ifindex, ifname, ethertype)?;
        sock.set_nonblocking(true)
            .map_err(|e| NetError::socket("O_NONBLOCK", ifname, e))?;
        let fd = sys::async_socket(sock)
            .map_err(|e| NetError::socket("register with tokio", ifname, e))?;
        Ok(PacketSocket {
            sock: Inner::Async(fd),
            ifindex,
            ifname: ifname.to_owned(),
        })
    }

    /// Interface index.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// Sends one Ethernet frame (destination MAC first, no FCS) as is.
    ///
    /// On a socket from [`PacketSocket::listen`] the send does not block and
    /// fails with `EAGAIN` when the device queue is full.
    ///
    /// # Errors
    /// [`NetError::Invalid`] for a frame shorter than an Ethernet header or
    /// longer than 64 KiB; [`NetError::Socket`] from `send` (e.g. `ENETDOWN`
    /// when the link is down, `EMSGSIZE` above the MTU).
    pub fn send_frame(&self, frame: &[u8]) -> Result<()> {
        if frame.len() < ETH_HLEN || frame.len() > 65535 {
            return Err(NetError::Invalid {
                what: "Ethernet frame",
                detail: format!("{} bytes on {}", frame.len(), self.ifname),
            });
        }
        let n = self
            .sock
            .socket()
            .send(frame)
            .map_err(|e| NetError::socket("send(AF_PACKET)", &self.ifname, e))?;
        if n != frame.len() {
            return Err(NetError::socket(
                format!("send(AF_PACKET) wrote {n} of {} bytes", frame.len()),
                &self.ifname,
                std::io::Error::from(std::io::ErrorKind::WriteZero),
            ));
        }
        Ok(())
    }

    /// Waits for the next frame of the ethertype given to
    /// [`PacketSocket::listen`] (incoming and outgoing), copies it into
    /// `buf` and returns its length (truncated to `buf.len()`).
    ///
    /// # Errors
    /// [`NetError::Invalid`] on a send-only socket from [`PacketSocket::open`].
    pub async fn recv_frame(&self, buf: &mut [u8]) -> Result<usize> {
        let Inner::Async(rx) = &self.sock else {
            return Err(NetError::Invalid {
                what: "socket",
                detail: format!("send-only packet socket on {} cannot receive", self.ifname),
            });
        };
        loop {
            let mut guard = rx
                .readable()
                .await
                .map_err(|e| NetError::socket("poll", &self.ifname, e))?;
            match guard.try_io(|inner| sys::recvmsg(inner.get_ref().as_fd(), buf)) {
                Ok(Ok(meta)) => return Ok(meta.len),
                Ok(Err(e)) => return Err(NetError::socket("recv(AF_PACKET)", &self.ifname, e)),
                Err(_would_block) => continue,
            }
        }
    }
}

impl AsRawFd for PacketSocket {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.sock.socket().as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Without root the test cannot run: it says so, and under CI=true it fails rather than
    // pass without testing anything.
    fn root() -> bool {
        let root = nix::unistd::geteuid().is_root();
        if !root {
            let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
            assert!(!ci, "AF_PACKET sockets need root (CAP_NET_RAW); CI=true: a test may not be skipped");
            eprintln!("skipped: AF_PACKET sockets need root (CAP_NET_RAW)");
        }
        root
    }

    #[test]
    fn test_send_frame_rejects_runts() {
        if !root() {
            return;
        }
        // Loopback exists in every namespace and has index 1.
        let s = PacketSocket::open(1, "lo").unwrap();
        let e = s.send_frame(&[0; 10]).unwrap_err();
        assert!(matches!(e, NetError::Invalid { .. }));
        assert!(e.to_string().contains("10 bytes on lo"));
    }

    #[test]
    fn test_open_unknown_index_names_interface() {
        if !root() {
            return;
        }
        let e = PacketSocket::open(999_999, "nosuch0").unwrap_err();
        assert!(e.to_string().contains("nosuch0"), "{e}");
        assert_eq!(e.raw_os_error(), Some(libc::ENODEV));
    }

    #[tokio::test]
    async fn test_recv_frame_on_send_only_socket_is_an_error() {
        if !root() {
            return;
        }
        let s = PacketSocket::open(1, "lo").unwrap();
        let mut buf = [0u8; 64];
        assert!(s.recv_frame(&mut buf).await.is_err());
    }
}
