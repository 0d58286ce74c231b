//! The UDP calls quinn-udp does not make for us: `sendmsg` of several buffers as one GSO send
//! (so sealed datagrams leave from where they were sealed, with no copy into a batch buffer),
//! `sendmmsg` for when GSO is off, and switching UDP_GRO.

use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};

/// Most messages one `sendmmsg` call takes here.
const MMSG_BATCH: usize = 64;

/// The control buffer for one UDP_SEGMENT message, aligned for `cmsghdr`.
#[repr(C, align(8))]
struct SegmentCmsg([u8; 32]);

/// Sends `parts`, joined, to `to` in one `sendmsg`. With `segment`, UDP_SEGMENT has the kernel
/// (or the NIC) cut the payload into datagrams of that size, the last possibly shorter.
pub fn send_segments(
    sock: &impl AsRawFd,
    to: SocketAddr,
    parts: &[IoSlice<'_>],
    segment: Option<u16>,
) -> io::Result<()> {
    let addr = socket2::SockAddr::from(to);
    let mut control = SegmentCmsg([0; 32]);
    // SAFETY: msghdr is plain old data; all zeroes is a valid, empty value.
    let mut hdr: libc::msghdr = unsafe { std::mem::zeroed() };
    hdr.msg_name = addr.as_ptr() as *mut libc::c_void;
    hdr.msg_namelen = addr.len();
    // IoSlice is guaranteed ABI-compatible with iovec on Unix; sendmsg only reads it.
    hdr.msg_iov = parts.as_ptr() as *mut libc::iovec;
    hdr.msg_iovlen = parts.len();
    if let Some(size) = segment {
        // SAFETY: CMSG_SPACE/CMSG_LEN are pure arithmetic; 2 bytes of data need 24 bytes of
        // space on 64-bit Linux, within the 32-byte, 8-aligned buffer that lives across the
        // call. CMSG_FIRSTHDR returns its start because msg_controllen covers one header.
        unsafe {
            let space = libc::CMSG_SPACE(std::mem::size_of::<u16>() as u32) as usize;
            debug_assert!(space <= control.0.len());
            hdr.msg_control = control.0.as_mut_ptr().cast();
            hdr.msg_controllen = space;
            let cmsg = libc::CMSG_FIRSTHDR(&hdr);
            (*cmsg).cmsg_level = libc::SOL_UDP;
            (*cmsg).cmsg_type = libc::UDP_SEGMENT;
            (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<u16>() as u32) as usize;
            std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<u16>(), size);
        }
    }
    loop {
        // SAFETY: `hdr` points at the address, the iovecs and the control buffer, all alive
        // and unchanged for the duration of the call.
        let rc = unsafe { libc::sendmsg(sock.as_raw_fd(), &hdr, 0) };
        if rc >= 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Sends each of `parts` as its own datagram to `to` with `sendmmsg`, 64 per call. Returns
/// how many were sent before an error (the error only if none was).
pub fn send_each(sock: &impl AsRawFd, to: SocketAddr, parts: &[IoSlice<'_>]) -> io::Result<usize> {
    let addr = socket2::SockAddr::from(to);
    let mut sent = 0;
    for chunk in parts.chunks(MMSG_BATCH) {
        // SAFETY: mmsghdr is plain old data; all zeroes is a valid, empty value.
        let mut msgs: [libc::mmsghdr; MMSG_BATCH] = unsafe { std::mem::zeroed() };
        for (m, part) in msgs.iter_mut().zip(chunk) {
            m.msg_hdr.msg_name = addr.as_ptr() as *mut libc::c_void;
            m.msg_hdr.msg_namelen = addr.len();
            // One iovec: the IoSlice itself (ABI-compatible), read only.
            m.msg_hdr.msg_iov = std::ptr::from_ref(part) as *mut libc::iovec;
            m.msg_hdr.msg_iovlen = 1;
        }
        let mut done = 0;
        while done < chunk.len() {
            // SAFETY: the first `chunk.len()` headers point at the address and the caller's
            // buffers, alive for the call; the kernel writes only their msg_len fields.
            let rc = unsafe {
                libc::sendmmsg(
                    sock.as_raw_fd(),
                    msgs[done..].as_mut_ptr(),
                    (chunk.len() - done) as u32,
                    0,
                )
            };
            if rc < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return if sent + done == 0 {
                    Err(e)
                } else {
                    Ok(sent + done)
                };
            }
            done += rc as usize;
        }
        sent += done;
    }
    Ok(sent)
}

/// Receives up to `bufs.len()` (≤ 64) datagrams with one `recvmmsg`, blocking only until
/// the first arrives (MSG_WAITFORONE: a blocking socket must not wait to fill the batch).
/// `got[i]` is the length and sender of the datagram in `bufs[i]` (length 0: skip it);
/// returns how many.
/// With `wait` false it does not block at all (MSG_DONTWAIT): nothing queued is `WouldBlock`.
pub fn recv_each(
    sock: &impl AsRawFd,
    bufs: &mut [io::IoSliceMut<'_>],
    got: &mut [(usize, SocketAddr)],
    wait: bool,
) -> io::Result<usize> {
    let n = bufs.len().min(got.len()).min(MMSG_BATCH);
    // SAFETY: sockaddr_storage and mmsghdr are plain old data; all zeroes is valid.
    let mut names: [libc::sockaddr_storage; MMSG_BATCH] = unsafe { std::mem::zeroed() };
    let mut msgs: [libc::mmsghdr; MMSG_BATCH] = unsafe { std::mem::zeroed() };
    for ((m, name), buf) in msgs.iter_mut().zip(names.iter_mut()).zip(bufs.iter_mut()) {
        m.msg_hdr.msg_name = std::ptr::from_mut(name).cast();
        m.msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as u32;
        // IoSliceMut is guaranteed ABI-compatible with iovec on Unix.
        m.msg_hdr.msg_iov = std::ptr::from_mut(buf).cast();
        m.msg_hdr.msg_iovlen = 1;
    }
    let rc = loop {
        // SAFETY: the first `n` headers point at live name storage and the caller's
        // buffers, exclusively borrowed for the call; the kernel writes within their sizes.
        let rc = unsafe {
            libc::recvmmsg(
                sock.as_raw_fd(),
                msgs.as_mut_ptr(),
                n as u32,
                libc::MSG_WAITFORONE | dontwait(wait),
                std::ptr::null_mut(),
            )
        };
        if rc >= 0 {
            break rc as usize;
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    };
    for i in 0..rc {
        // A sender we cannot read (not IPv4/IPv6) leaves an empty datagram, to be skipped.
        got[i] = match sockaddr(&names[i], msgs[i].msg_hdr.msg_namelen) {
            Some(from) => (msgs[i].msg_len as usize, from),
            None => (0, SocketAddr::from(([0, 0, 0, 0], 0))),
        };
    }
    Ok(rc)
}

fn dontwait(wait: bool) -> libc::c_int {
    if wait { 0 } else { libc::MSG_DONTWAIT }
}

/// The control buffer of a receive, aligned for `cmsghdr`: room for UDP_GRO and the others
/// quinn-udp turns on (time stamp, packet info, TOS), so none is cut off.
#[repr(C, align(8))]
struct GroCmsg([u8; 256]);

/// Receives one datagram, or one GRO batch of equal-sized datagrams (the last may be shorter),
/// into `buf`: returns its length, the size of each datagram in it and the sender. With `wait`
/// false it does not block (MSG_DONTWAIT): nothing queued, or only a datagram the kernel then
/// drops (bad checksum), is `WouldBlock`. A sender that is not IPv4/IPv6 reads as length 0.
pub fn recv_gro(
    sock: &impl AsRawFd,
    buf: &mut [u8],
    wait: bool,
) -> io::Result<(usize, usize, SocketAddr)> {
    // SAFETY: sockaddr_storage and msghdr are plain old data; all zeroes is valid.
    let mut name: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut hdr: libc::msghdr = unsafe { std::mem::zeroed() };
    let mut control = GroCmsg([0; 256]);
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    hdr.msg_name = std::ptr::from_mut(&mut name).cast();
    hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as u32;
    hdr.msg_iov = &mut iov;
    hdr.msg_iovlen = 1;
    hdr.msg_control = control.0.as_mut_ptr().cast();
    hdr.msg_controllen = control.0.len();
    let len = loop {
        // SAFETY: `hdr` points at the name, the one iovec over `buf` and the control buffer,
        // all alive and exclusively borrowed for the call; the kernel writes within their sizes.
        let rc = unsafe { libc::recvmsg(sock.as_raw_fd(), &mut hdr, dontwait(wait)) };
        if rc >= 0 {
            break rc as usize;
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    };
    let mut stride = len;
    // SAFETY: the kernel set msg_controllen to what it wrote into `control`; CMSG_FIRSTHDR and
    // CMSG_NXTHDR stay within it, and a UDP_GRO message carries one int.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&hdr);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_UDP && (*cmsg).cmsg_type == libc::UDP_GRO {
                let size = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::c_int>());
                stride = usize::try_from(size).unwrap_or(len);
            }
            cmsg = libc::CMSG_NXTHDR(&hdr, cmsg);
        }
    }
    match sockaddr(&name, hdr.msg_namelen) {
        Some(from) => Ok((len, stride.clamp(1, len.max(1)), from)),
        None => Ok((0, 1, SocketAddr::from(([0, 0, 0, 0], 0)))),
    }
}

/// The IPv4 or IPv6 address the kernel wrote.
fn sockaddr(s: &libc::sockaddr_storage, len: libc::socklen_t) -> Option<SocketAddr> {
    let len = len as usize;
    match i32::from(s.ss_family) {
        libc::AF_INET if len >= std::mem::size_of::<libc::sockaddr_in>() => {
            // SAFETY: the family says the storage holds a sockaddr_in, which fits in it.
            let a: libc::sockaddr_in = unsafe { std::ptr::read(std::ptr::from_ref(s).cast()) };
            Some(SocketAddr::from((
                u32::from_be(a.sin_addr.s_addr).to_be_bytes(),
                u16::from_be(a.sin_port),
            )))
        }
        libc::AF_INET6 if len >= std::mem::size_of::<libc::sockaddr_in6>() => {
            // SAFETY: the family says the storage holds a sockaddr_in6, which fits in it.
            let a: libc::sockaddr_in6 = unsafe { std::ptr::read(std::ptr::from_ref(s).cast()) };
            Some(SocketAddr::from((
                a.sin6_addr.s6_addr,
                u16::from_be(a.sin6_port),
            )))
        }
        _ => None,
    }
}

/// Turns UDP_GRO on or off (quinn-udp turns it on where the kernel has it).
pub fn set_udp_gro(sock: &impl AsRawFd, on: bool) -> io::Result<()> {
    super::set_int_option(sock, libc::SOL_UDP, libc::UDP_GRO, on.into())
}

/// Whether a datagram is waiting on `sock` now (`poll` without waiting).
pub fn readable_now(sock: &impl AsRawFd) -> bool {
    let mut fd = libc::pollfd {
        fd: sock.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, and a zero timeout.
    let rc = unsafe { libc::poll(&mut fd, 1, 0) };
    rc == 1 && fd.revents & libc::POLLIN != 0
}

/// Waits until `a` or `b` (if given) is readable or has an error to report, or until
/// `timeout_ms` passed (negative: no timeout); says which are ready.
pub fn wait_readable(a: RawFd, b: Option<RawFd>, timeout_ms: i32) -> io::Result<(bool, bool)> {
    // poll ignores a negative descriptor.
    let mut fds = [a, b.unwrap_or(-1)].map(|fd| libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    });
    loop {
        // SAFETY: two pollfds in a live array, the kernel writes only their revents.
        let rc = unsafe { libc::poll(fds.as_mut_ptr(), 2, timeout_ms) };
        if rc >= 0 {
            return Ok((fds[0].revents != 0, fds[1].revents != 0));
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}
