//! What the safe wrappers (nix 0.29, socket2, tokio) cannot express:
//! `recvmsg` with the IPv6 hop-limit control message (nix parses it as an
//! opaque `UnknownCmsg`), `bind` of an `AF_PACKET` socket to a `sockaddr_ll`
//! (neither crate builds one), and registering a descriptor with tokio
//! (`AsyncFd::register` is unsafe since tokio 1.5x). Everything unsafe in
//! `net` is here.
#![allow(unsafe_code)]

use std::io;
use std::mem;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::ptr;

use neli::socket::synchronous::NlSocketHandle;
use socket2::Socket;
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// What `recvmsg` said about one datagram besides its bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct RecvMeta {
    /// Bytes written into the buffer.
    pub len: usize,
    /// The datagram was longer than the buffer (`MSG_TRUNC`).
    pub truncated: bool,
    /// Sender (`msg_name`).
    pub src: Option<SocketAddr>,
    /// `IPV6_HOPLIMIT` control message.
    pub hop_limit: Option<u8>,
    /// `IP_PKTINFO`: (ifindex, header destination address).
    pub pktinfo_v4: Option<(u32, Ipv4Addr)>,
    /// `IPV6_PKTINFO`: (ifindex, destination address).
    pub pktinfo_v6: Option<(u32, Ipv6Addr)>,
}

/// Room for IP_PKTINFO / IPV6_PKTINFO and IPV6_HOPLIMIT with headers.
/// `u64` elements keep it aligned for `cmsghdr`.
const CONTROL_WORDS: usize = 32;

/// Non-blocking `recvmsg` of one datagram into `buf`.
pub(crate) fn recvmsg(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<RecvMeta> {
    // SAFETY: sockaddr_storage is plain old data; all-zero is a valid value.
    let mut name: libc::sockaddr_storage = unsafe { mem::zeroed() };
    let mut control = [0u64; CONTROL_WORDS];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: msghdr is plain old data; all-zero is a valid (empty) value.
    let mut msg: libc::msghdr = unsafe { mem::zeroed() };
    msg.msg_name = ptr::addr_of_mut!(name).cast();
    msg.msg_namelen = mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = mem::size_of_val(&control) as _;

    // SAFETY: every pointer in `msg` points to a live local or to `buf`,
    // with the lengths set above; the kernel writes within those bounds.
    let n = unsafe { libc::recvmsg(fd.as_raw_fd(), &mut msg, libc::MSG_DONTWAIT) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut meta = RecvMeta {
        len: n as usize,
        truncated: msg.msg_flags & libc::MSG_TRUNC != 0,
        ..RecvMeta::default()
    };
    meta.src = sockaddr_to_std(&name, msg.msg_namelen);

    // SAFETY: `msg` was filled by a successful recvmsg, so msg_control and
    // msg_controllen describe initialised control messages inside `control`;
    // the CMSG_* macros stay within msg_controllen, and each payload is read
    // only after checking that cmsg_len covers it.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            let hdr = ptr::read_unaligned(cmsg);
            let data = libc::CMSG_DATA(cmsg);
            let avail = (hdr.cmsg_len as usize).saturating_sub(libc::CMSG_LEN(0) as usize);
            match (hdr.cmsg_level, hdr.cmsg_type) {
                (libc::IPPROTO_IPV6, libc::IPV6_HOPLIMIT)
                    if avail >= mem::size_of::<libc::c_int>() =>
                {
                    let v: libc::c_int = ptr::read_unaligned(data.cast());
                    meta.hop_limit = u8::try_from(v).ok();
                }
                (libc::IPPROTO_IPV6, libc::IPV6_PKTINFO)
                    if avail >= mem::size_of::<libc::in6_pktinfo>() =>
                {
                    let v: libc::in6_pktinfo = ptr::read_unaligned(data.cast());
                    meta.pktinfo_v6 = Some((v.ipi6_ifindex, Ipv6Addr::from(v.ipi6_addr.s6_addr)));
                }
                (libc::IPPROTO_IP, libc::IP_PKTINFO)
                    if avail >= mem::size_of::<libc::in_pktinfo>() =>
                {
                    let v: libc::in_pktinfo = ptr::read_unaligned(data.cast());
                    meta.pktinfo_v4 = Some((
                        u32::try_from(v.ipi_ifindex).unwrap_or(0),
                        Ipv4Addr::from(u32::from_be(v.ipi_addr.s_addr)),
                    ));
                }
                _ => {}
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    Ok(meta)
}

fn sockaddr_to_std(name: &libc::sockaddr_storage, len: libc::socklen_t) -> Option<SocketAddr> {
    let len = len as usize;
    match libc::c_int::from(name.ss_family) {
        libc::AF_INET if len >= mem::size_of::<libc::sockaddr_in>() => {
            // SAFETY: the family says it is a sockaddr_in, the length covers
            // it, and sockaddr_storage is aligned for every sockaddr type.
            let sin: libc::sockaddr_in = unsafe { ptr::read(ptr::addr_of!(*name).cast()) };
            Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)),
                u16::from_be(sin.sin_port),
            )))
        }
        libc::AF_INET6 if len >= mem::size_of::<libc::sockaddr_in6>() => {
            // SAFETY: as above, for sockaddr_in6.
            let sin6: libc::sockaddr_in6 = unsafe { ptr::read(ptr::addr_of!(*name).cast()) };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(sin6.sin6_addr.s6_addr),
                u16::from_be(sin6.sin6_port),
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// `bind(2)` of an `AF_PACKET` socket to interface `ifindex` for the
/// ethertype `protocol` (host order; 0 binds for sending only).
pub(crate) fn bind_packet(fd: BorrowedFd<'_>, ifindex: u32, protocol: u16) -> io::Result<()> {
    let sll = libc::sockaddr_ll {
        sll_family: libc::AF_PACKET as libc::c_ushort,
        sll_protocol: protocol.to_be(),
        sll_ifindex: i32::try_from(ifindex)
            .map_err(|_| io::Error::from_raw_os_error(libc::ENODEV))?,
        sll_hatype: 0,
        sll_pkttype: 0,
        sll_halen: 0,
        sll_addr: [0; 8],
    };
    // SAFETY: `sll` is a fully initialised sockaddr_ll and the length passed
    // is its size.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            ptr::addr_of!(sll).cast(),
            mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Registers a socket with the current tokio reactor, for readability.
pub(crate) fn async_socket(sock: Socket) -> io::Result<AsyncFd<Socket>> {
    // SAFETY: a socket2 `Socket` owns its descriptor for its whole life and
    // `as_raw_fd` always returns that descriptor.
    unsafe { AsyncFd::register_with_interest(sock, Interest::READABLE) }
        .map_err(|e| e.into_parts().1)
}

/// Registers a neli netlink socket with the current tokio reactor, for
/// readability.
pub(crate) fn async_netlink(sock: NlSocketHandle) -> io::Result<AsyncFd<NlSocketHandle>> {
    // SAFETY: `NlSocketHandle` owns its descriptor (closed in its Drop) and
    // `as_raw_fd` always returns that descriptor.
    unsafe { AsyncFd::register_with_interest(sock, Interest::READABLE) }
        .map_err(|e| e.into_parts().1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::os::fd::AsFd;

    #[test]
    fn test_recvmsg_reports_source_and_length() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        tx.send_to(b"hello", rx.local_addr().unwrap()).unwrap();
        let mut buf = [0u8; 3];
        // Blocking socket: wait for the datagram before the MSG_DONTWAIT read.
        let mut peek = [0u8; 1];
        rx.peek_from(&mut peek).unwrap();
        let meta = recvmsg(rx.as_fd(), &mut buf).unwrap();
        assert_eq!(meta.len, 3);
        assert!(meta.truncated);
        assert_eq!(&buf, b"hel");
        assert_eq!(meta.src, Some(tx.local_addr().unwrap()));
    }

    #[test]
    fn test_recvmsg_would_block() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut buf = [0u8; 8];
        let err = recvmsg(rx.as_fd(), &mut buf).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
    }
}
