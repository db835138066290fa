//! What the safe wrappers (nix 0.29, socket2, tokio) cannot express:
//! `recvmsg` with the IPv6 hop-limit control message (nix parses it as an
//! opaque `UnknownCmsg`), `bind` of an `AF_PACKET` socket to a `sockaddr_ll`
//! (neither crate builds one), and registering a descriptor with tokio
//! (`AsyncFd::register` is unsafe since tokio 1.5x), and `sendmmsg` with a
//! pktinfo control message per datagram. Everything unsafe in
//! `net` is here.
#![allow(unsafe_code)]

use std::io;
use std::mem;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
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
    /// `IPV6_PKTINFO`: (ifindex, destination address).
    pub pktinfo_v6: Option<(u32, Ipv6Addr)>,
}

/// Room for IP_PKTINFO / IPV6_PKTINFO and IPV6_HOPLIMIT with headers.
/// `u64` elements keep it aligned for `cmsghdr`.
const CONTROL_WORDS: usize = 32;

/// Non-blocking `recvmsg` of one datagram into `buf`.
pub(crate) fn recvmsg(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<RecvMeta> {
    let mut got = None;
    recvmmsg(fd, std::slice::from_mut(&mut &mut *buf), true, |_, _, m| got = Some(*m))?;
    got.ok_or_else(|| io::Error::from(io::ErrorKind::WouldBlock))
}

/// The headers, addresses, iovecs and control buffers of one `recvmmsg` or `sendmmsg`, kept per
/// thread: a call fills only the entries it uses, instead of zeroing some 30 KiB of them on the
/// stack (which cost a backup with a thousand instances a tenth of its CPU).
struct Scratch {
    names: [libc::sockaddr_storage; MMSG_MAX],
    iovs: [libc::iovec; MMSG_MAX],
    control: [[u64; CONTROL_WORDS]; MMSG_MAX],
    hdrs: [libc::mmsghdr; MMSG_MAX],
}

thread_local! {
    // SAFETY: plain old data (integers, and pointers that every call sets before the kernel
    // reads them); all-zero is a valid value.
    static SCRATCH: std::cell::RefCell<Box<Scratch>> = std::cell::RefCell::new(unsafe { Box::<Scratch>::new_zeroed().assume_init() });
}

/// Non-blocking `recvmmsg`: up to [`MMSG_MAX`] datagrams, one into each of `bufs`; `each` is
/// called with the index, buffer and description of every datagram that arrived (with its
/// sender when `names`). Returns how many arrived (at least one), or `WouldBlock`.
pub(crate) fn recvmmsg<B: AsMut<[u8]>>(
    fd: BorrowedFd<'_>,
    bufs: &mut [B],
    names_wanted: bool,
    mut each: impl FnMut(usize, &mut [u8], &RecvMeta),
) -> io::Result<usize> {
    let n = bufs.len().min(MMSG_MAX);
    if n == 0 {
        return Ok(0);
    }
    SCRATCH.with_borrow_mut(|s| {
        let Scratch { names, iovs, control, hdrs } = &mut **s;
        for (i, b) in bufs[..n].iter_mut().enumerate() {
            let b = b.as_mut();
            iovs[i] = libc::iovec { iov_base: b.as_mut_ptr().cast(), iov_len: b.len() };
            let h = &mut hdrs[i].msg_hdr;
            if names_wanted {
                h.msg_name = ptr::addr_of_mut!(names[i]).cast();
                h.msg_namelen = mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            } else {
                h.msg_name = ptr::null_mut();
                h.msg_namelen = 0;
            }
            h.msg_iov = &mut iovs[i];
            h.msg_iovlen = 1;
            h.msg_control = control[i].as_mut_ptr().cast();
            h.msg_controllen = mem::size_of_val(&control[i]) as _;
            h.msg_flags = 0;
        }
        // SAFETY: the first `n` headers point at this thread's scratch (names, iovs, control)
        // or at `bufs`, with the lengths set above; the kernel writes within those bounds.
        let got = unsafe { libc::recvmmsg(fd.as_raw_fd(), hdrs.as_mut_ptr(), n as libc::c_uint, libc::MSG_DONTWAIT, ptr::null_mut()) };
        if got < 0 {
            return Err(io::Error::last_os_error());
        }
        let got = got as usize;
        for (i, h) in hdrs[..got].iter().enumerate() {
            let mut m = RecvMeta {
                len: h.msg_len as usize,
                truncated: h.msg_hdr.msg_flags & libc::MSG_TRUNC != 0,
                src: if names_wanted { sockaddr_to_std(&names[i], h.msg_hdr.msg_namelen) } else { None },
                ..RecvMeta::default()
            };
            parse_cmsgs(&h.msg_hdr, &mut m);
            each(i, bufs[i].as_mut(), &m);
        }
        Ok(got)
    })
}

/// Reads hop limit and pktinfo from the control messages of a received `msg`.
fn parse_cmsgs(msg: &libc::msghdr, meta: &mut RecvMeta) {
    // SAFETY: `msg` was filled by a successful recvmsg/recvmmsg, so msg_control and
    // msg_controllen describe initialised control messages in a live buffer;
    // the CMSG_* macros stay within msg_controllen, and each payload is read
    // only after checking that cmsg_len covers it.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(msg);
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
                _ => {}
            }
            cmsg = libc::CMSG_NXTHDR(msg, cmsg);
        }
    }
}

/// One datagram for [`sendmmsg`]: its bytes, where to, and the source address and interface
/// to send it from (`IP_PKTINFO` / `IPV6_PKTINFO`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct OutDatagram<'a> {
    pub buf: &'a [u8],
    /// Destination; a V6 address carries its scope id.
    pub dst: SocketAddr,
    /// Source address; must be of the same family as `dst`. Unspecified, with `ifindex` 0 and
    /// no `ttl`, sends no control message: the route picks both.
    pub src: IpAddr,
    pub ifindex: u32,
    /// IPv4 TTL / IPv6 hop limit of this datagram (`IP_TTL` / `IPV6_HOPLIMIT` control
    /// message); `None` leaves the socket's.
    pub ttl: Option<u8>,
}

/// Datagrams per `recvmmsg` or `sendmmsg` call.
pub(crate) const MMSG_MAX: usize = 64;

/// Non-blocking `sendmmsg` of up to [`MMSG_MAX`] of `msgs`. Returns how many the kernel took
/// (at least one); an error means the first of `msgs` was refused, and the caller may skip it
/// and go on with the rest. Families of `src` and `dst` must match.
pub(crate) fn sendmmsg(fd: BorrowedFd<'_>, msgs: &[OutDatagram<'_>]) -> io::Result<usize> {
    let n = msgs.len().min(MMSG_MAX);
    if n == 0 {
        return Ok(0);
    }
    SCRATCH.with_borrow_mut(|s| {
        let Scratch { names, iovs, control, hdrs } = &mut **s;
        for (i, m) in msgs[..n].iter().enumerate() {
            iovs[i] = libc::iovec { iov_base: m.buf.as_ptr() as *mut libc::c_void, iov_len: m.buf.len() };
            let h = &mut hdrs[i].msg_hdr;
            h.msg_iov = &mut iovs[i];
            h.msg_iovlen = 1;
            h.msg_name = ptr::addr_of_mut!(names[i]).cast();
            h.msg_control = control[i].as_mut_ptr().cast();
            let (level, kind, len) = match (m.dst, m.src) {
                (SocketAddr::V4(d), IpAddr::V4(src)) => {
                    let sin = libc::sockaddr_in {
                        sin_family: libc::AF_INET as libc::sa_family_t,
                        sin_port: 0,
                        sin_addr: libc::in_addr { s_addr: u32::from(*d.ip()).to_be() },
                        sin_zero: [0; 8],
                    };
                    // SAFETY: sockaddr_storage is large and aligned enough for a sockaddr_in.
                    unsafe { ptr::write(h.msg_name.cast(), sin) };
                    h.msg_namelen = mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
                    let info = libc::in_pktinfo {
                        ipi_ifindex: m.ifindex as libc::c_int,
                        ipi_spec_dst: libc::in_addr { s_addr: u32::from(src).to_be() },
                        ipi_addr: libc::in_addr { s_addr: 0 },
                    };
                    // SAFETY: the control buffer holds CMSG_SPACE(in_pktinfo) bytes (checked below).
                    unsafe { ptr::write_unaligned(cmsg_data(&mut control[i]), info) };
                    (libc::IPPROTO_IP, libc::IP_PKTINFO, mem::size_of::<libc::in_pktinfo>())
                }
                (SocketAddr::V6(d), IpAddr::V6(src)) => {
                    let sin6 = libc::sockaddr_in6 {
                        sin6_family: libc::AF_INET6 as libc::sa_family_t,
                        sin6_port: 0,
                        sin6_flowinfo: 0,
                        sin6_addr: libc::in6_addr { s6_addr: d.ip().octets() },
                        sin6_scope_id: d.scope_id(),
                    };
                    // SAFETY: as above, for a sockaddr_in6.
                    unsafe { ptr::write(h.msg_name.cast(), sin6) };
                    h.msg_namelen = mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t;
                    let info = libc::in6_pktinfo { ipi6_addr: libc::in6_addr { s6_addr: src.octets() }, ipi6_ifindex: m.ifindex };
                    // SAFETY: as above, for in6_pktinfo.
                    unsafe { ptr::write_unaligned(cmsg_data(&mut control[i]), info) };
                    (libc::IPPROTO_IPV6, libc::IPV6_PKTINFO, mem::size_of::<libc::in6_pktinfo>())
                }
                _ => return Err(io::Error::new(io::ErrorKind::InvalidInput, "source and destination of different families")),
            };
            // SAFETY: CMSG_SPACE/CMSG_LEN are pure arithmetic.
            let (space, cmsg_len) = unsafe { (libc::CMSG_SPACE(len as u32) as usize, libc::CMSG_LEN(len as u32) as usize) };
            debug_assert!(space <= CONTROL_WORDS * 8);
            let cmsg = control[i].as_mut_ptr().cast::<libc::cmsghdr>();
            // SAFETY: the buffer is u64-aligned and at least one cmsghdr long.
            unsafe {
                (*cmsg).cmsg_len = cmsg_len as _;
                (*cmsg).cmsg_level = level;
                (*cmsg).cmsg_type = kind;
            }
            let mut total = space;
            if let Some(ttl) = m.ttl {
                // A second control message: IP_TTL / IPV6_HOPLIMIT, an int, right after the
                // first (which CMSG_SPACE keeps aligned).
                let (level, kind) = if m.src.is_ipv4() { (libc::IPPROTO_IP, libc::IP_TTL) } else { (libc::IPPROTO_IPV6, libc::IPV6_HOPLIMIT) };
                let n = mem::size_of::<libc::c_int>() as u32;
                // SAFETY: pure arithmetic.
                let (space2, len2) = unsafe { (libc::CMSG_SPACE(n) as usize, libc::CMSG_LEN(n) as usize) };
                debug_assert!(total + space2 <= CONTROL_WORDS * 8);
                let base = control[i].as_mut_ptr().cast::<u8>();
                // SAFETY: `total` is a multiple of the cmsg alignment (a CMSG_SPACE) and
                // `total + space2` stays within the u64-aligned control buffer (asserted above:
                // two small messages in 256 bytes).
                unsafe {
                    let c = base.add(total).cast::<libc::cmsghdr>();
                    (*c).cmsg_len = len2 as _;
                    (*c).cmsg_level = level;
                    (*c).cmsg_type = kind;
                    let data = base.add(total + libc::CMSG_LEN(0) as usize).cast::<libc::c_int>();
                    ptr::write_unaligned(data, libc::c_int::from(ttl));
                }
                total += space2;
            }
            if m.src.is_unspecified() && m.ifindex == 0 && m.ttl.is_none() {
                // Nothing to ask for: no control message (the kernel skips its checks too).
                total = 0;
            }
            h.msg_controllen = total as _;
        }
        // SAFETY: the first `n` headers point at this thread's scratch (names, iovs, control) or
        // at the callers' buffers, with the lengths set above; the kernel only reads them.
        let sent = unsafe { libc::sendmmsg(fd.as_raw_fd(), hdrs.as_mut_ptr(), n as libc::c_uint, libc::MSG_DONTWAIT) };
        if sent < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(sent as usize)
    })
}

/// Where the payload of the (single) control message in `buf` starts.
fn cmsg_data<T>(buf: &mut [u64; CONTROL_WORDS]) -> *mut T {
    // CMSG_DATA of the first header: the header rounded up to the cmsg alignment.
    // SAFETY: CMSG_LEN(0) is pure arithmetic and smaller than the buffer.
    let off = unsafe { libc::CMSG_LEN(0) } as usize;
    buf.as_mut_ptr().cast::<u8>().wrapping_add(off).cast()
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
    async_socket_for(sock, Interest::READABLE)
}

/// Registers a socket with the current tokio reactor, for `interest`.
pub(crate) fn async_socket_for(sock: Socket, interest: Interest) -> io::Result<AsyncFd<Socket>> {
    // SAFETY: a socket2 `Socket` owns its descriptor for its whole life and
    // `as_raw_fd` always returns that descriptor.
    unsafe { AsyncFd::register_with_interest(sock, interest) }
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

/// A timerfd that tokio can watch (nix's `TimerFd` has no `AsRawFd`).
#[derive(Debug)]
pub(crate) struct TimerFd(pub nix::sys::timerfd::TimerFd);

impl std::os::fd::AsRawFd for TimerFd {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsFd;
        self.0.as_fd().as_raw_fd()
    }
}

pub(crate) fn async_timer(t: TimerFd) -> io::Result<AsyncFd<TimerFd>> {
    // SAFETY: `TimerFd` owns its descriptor (closed when the inner TimerFd drops) and
    // `as_raw_fd` always returns that descriptor.
    unsafe { AsyncFd::register_with_interest(t, Interest::READABLE) }
        .map_err(|e| e.into_parts().1)
}

/// Bytes written to the pipe or FIFO `fd` and not read yet (`FIONREAD`).
pub(crate) fn unread_bytes(fd: BorrowedFd<'_>) -> io::Result<usize> {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int through the pointer, which points at `n`.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::FIONREAD, &mut n as *mut libc::c_int) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(usize::try_from(n).unwrap_or(0))
}
