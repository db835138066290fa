//! Sockets for checkers: `bindto`, `bind_port`, `bind_if`, `fwmark` and `connect_timeout`.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use socket2::{Domain, Protocol, SockRef, Socket, Type};
use tokio::io::Interest;
use tokio::net::{TcpStream, UdpSocket};

use crate::config::check::CheckCommon;

fn local_addr(target: SocketAddr, c: &CheckCommon) -> Option<SocketAddr> {
    if c.bindto.is_none() && c.bind_port.is_none() {
        return None;
    }
    let any = if target.is_ipv4() { IpAddr::V4(Ipv4Addr::UNSPECIFIED) } else { IpAddr::V6(Ipv6Addr::UNSPECIFIED) };
    Some(SocketAddr::new(c.bindto.unwrap_or(any), c.bind_port.unwrap_or(0)))
}

/// Applies `bind_if` and `fwmark` to a socket.
pub(super) fn apply_opts(sock: SockRef<'_>, c: &CheckCommon) -> io::Result<()> {
    if let Some(dev) = &c.bind_if {
        sock.bind_device(Some(dev.as_bytes()))?;
    }
    if let Some(mark) = c.fwmark {
        sock.set_mark(mark)?;
    }
    Ok(())
}

/// Opens a non-blocking TCP socket for `target` with the checker's options, and starts
/// connecting. `reset_on_close` sets a zero linger first, so closing it sends a reset.
fn start_connect(target: SocketAddr, c: &CheckCommon, reset_on_close: bool) -> io::Result<(Socket, bool)> {
    let sock = Socket::new(Domain::for_address(target), Type::STREAM.nonblocking().cloexec(), Some(Protocol::TCP))?;
    apply_opts(SockRef::from(&sock), c)?;
    if let Some(local) = local_addr(target, c) {
        if local.port() != 0 {
            sock.set_reuse_address(true)?;
        }
        sock.bind(&local.into())?;
    }
    if reset_on_close {
        sock.set_linger(Some(Duration::ZERO))?;
    }
    match sock.connect(&target.into()) {
        Ok(()) => Ok((sock, true)),
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => Ok((sock, false)),
        Err(e) => Err(e),
    }
}

/// Where a connect that returned `EINPROGRESS` stands: `Some(Ok)` connected, `Some(Err)` failed,
/// `None` still in progress.
fn settled(sock: &Socket) -> Option<io::Result<()>> {
    if sock.peer_addr().is_ok() {
        return Some(Ok(()));
    }
    match sock.take_error() {
        Ok(Some(e)) | Err(e) => Some(Err(e)),
        Ok(None) => None,
    }
}

/// Connects `target` within `connect_timeout`.
///
/// A target on this host (loopback, a local address) has answered by the time `connect`
/// returns: the kernel runs the handshake when the call releases the socket. That case is
/// settled with one `getpeername`, without registering the socket with the runtime's poller
/// (two `epoll_ctl` calls, a wake-up and a task poll that cost more than the check itself).
/// Everything else waits for writability under the timeout.
async fn connect_socket(target: SocketAddr, c: &CheckCommon, reset_on_close: bool) -> io::Result<Socket> {
    let (sock, done) = start_connect(target, c, reset_on_close)?;
    if done {
        return Ok(sock);
    }
    if let Some(r) = settled(&sock) {
        return r.map(|()| sock);
    }
    let fd = crate::net::sys::async_socket_for(sock, Interest::WRITABLE)?;
    let wait = async {
        loop {
            let mut guard = fd.writable().await?;
            if let Some(r) = settled(fd.get_ref()) {
                return r;
            }
            // A spurious wake-up: the handshake is still in progress.
            guard.clear_ready();
        }
    };
    match tokio::time::timeout(c.connect_timeout, wait).await {
        Ok(Ok(())) => Ok(fd.into_inner()),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, format!("connect timed out after {:?}", c.connect_timeout))),
    }
}

/// Opens a TCP connection to `target` within `connect_timeout`.
pub(super) async fn connect(target: SocketAddr, c: &CheckCommon) -> io::Result<TcpStream> {
    let sock = connect_socket(target, c, false).await?;
    TcpStream::from_std(sock.into())
}

/// Closes a connection with a reset: a checker has nothing more to say, and this leaves no
/// TIME_WAIT behind on either side (thousands of checks a second would otherwise fill the table).
pub(super) fn reset(stream: TcpStream) {
    let _ = SockRef::from(&stream).set_linger(Some(Duration::ZERO));
    drop(stream);
}

/// TCP_CHECK: the target accepts a connection, which is then reset.
pub(super) async fn tcp_check(target: SocketAddr, c: &CheckCommon) -> io::Result<()> {
    // Dropped with a zero linger: the close sends the reset.
    connect_socket(target, c, true).await.map(drop)
}

/// A UDP socket bound per `bindto`/`bind_port` and connected to `target`.
pub(super) async fn udp_connect(target: SocketAddr, c: &CheckCommon) -> io::Result<UdpSocket> {
    let local = local_addr(target, c).unwrap_or_else(|| {
        let any = if target.is_ipv4() { IpAddr::V4(Ipv4Addr::UNSPECIFIED) } else { IpAddr::V6(Ipv6Addr::UNSPECIFIED) };
        SocketAddr::new(any, 0)
    });
    let sock = UdpSocket::bind(local).await?;
    apply_opts(SockRef::from(&sock), c)?;
    sock.connect(target).await?;
    Ok(sock)
}
