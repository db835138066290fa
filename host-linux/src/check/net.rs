//! Sockets for checkers: `bindto`, `bind_port`, `bind_if`, `fwmark` and `connect_timeout`.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use socket2::SockRef;
use tokio::net::{TcpSocket, TcpStream, UdpSocket};

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

/// Opens a TCP connection to `target` within `connect_timeout`.
pub(super) async fn connect(target: SocketAddr, c: &CheckCommon) -> io::Result<TcpStream> {
    let sock = if target.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    apply_opts(SockRef::from(&sock), c)?;
    if let Some(local) = local_addr(target, c) {
        if local.port() != 0 {
            sock.set_reuseaddr(true)?;
        }
        sock.bind(local)?;
    }
    match tokio::time::timeout(c.connect_timeout, sock.connect(target)).await {
        Ok(r) => r,
        Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, format!("connect timed out after {:?}", c.connect_timeout))),
    }
}

/// Closes a connection with a reset: a checker has nothing more to say, and this leaves no
/// TIME_WAIT behind on either side (thousands of checks a second would otherwise fill the table).
pub(super) fn reset(stream: TcpStream) {
    let _ = SockRef::from(&stream).set_linger(Some(Duration::ZERO));
    drop(stream);
}

/// TCP_CHECK: the target accepts a connection.
pub(super) async fn tcp_check(target: SocketAddr, c: &CheckCommon) -> io::Result<()> {
    let s = connect(target, c).await?;
    reset(s);
    Ok(())
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
