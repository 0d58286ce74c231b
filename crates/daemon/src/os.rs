//! The few POSIX calls a daemon needs and Rust's standard library lacks.
#![allow(unsafe_code)]

mod udp_calls;

use std::ffi::CString;
use std::io;

pub use udp_calls::{
    readable_now, recv_each, recv_gro, send_each, send_segments, set_udp_gro, wait_readable,
};

/// CLOCK_BOOTTIME in microseconds: monotonic, and counting time suspended.
pub fn boottime_micros() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, exclusively borrowed timespec for the call.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    if rc != 0 {
        return 0;
    }
    (ts.tv_sec as u64) * 1_000_000 + (ts.tv_nsec as u64) / 1_000
}

/// Detaches from the terminal as n2n does (`daemon(0, 0)`). Call before starting threads.
pub fn daemonize() -> io::Result<()> {
    // SAFETY: daemon(3) forks and exits the parent; called before any thread is started, so
    // the child holds the only thread and no lock can be left held.
    if unsafe { libc::daemon(0, 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The uid/gid of a local account, if it exists.
pub fn account_ids(name: &str) -> Option<(u32, u32)> {
    let c = CString::new(name).ok()?;
    // SAFETY: getpwnam returns NULL or a pointer to static storage valid until the next call;
    // we copy the two ids out immediately and keep no reference.
    let pw = unsafe { libc::getpwnam(c.as_ptr()) };
    if pw.is_null() {
        return None;
    }
    // SAFETY: pw is non-null and points to a valid passwd record (see above).
    let (uid, gid) = unsafe { ((*pw).pw_uid, (*pw).pw_gid) };
    Some((uid, gid))
}

/// Whether the process runs as root.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Drops to `gid` then `uid` (group first, while still allowed to).
pub fn drop_privileges(uid: u32, gid: u32) -> io::Result<()> {
    // SAFETY: setgroups/setgid/setuid take plain integers; failure is reported via errno.
    unsafe {
        if libc::setgroups(0, std::ptr::null()) != 0 && is_root() {
            return Err(io::Error::last_os_error());
        }
        if libc::setgid(gid) != 0 {
            return Err(io::Error::last_os_error());
        }
        if libc::setuid(uid) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Opens syslog with the program's ident, facility daemon (as n2n).
pub fn open_syslog(program: &'static str) {
    let ident: &'static std::ffi::CStr = match program {
        "edge" => c"edge",
        "supernode" => c"supernode",
        _ => c"n2n",
    };
    // SAFETY: ident is a 'static C string, as openlog requires (it keeps the pointer).
    unsafe { libc::openlog(ident.as_ptr(), libc::LOG_PID, libc::LOG_DAEMON) };
}

/// A `Write` that sends each complete line to syslog.
#[derive(Default, Debug)]
pub struct SyslogWriter {
    line: Vec<u8>,
}

impl io::Write for SyslogWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.line.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for SyslogWriter {
    fn drop(&mut self) {
        let text: Vec<u8> = self
            .line
            .iter()
            .copied()
            .filter(|&b| b != 0 && b != b'\n')
            .collect();
        if let Ok(msg) = CString::new(text) {
            // SAFETY: both strings are valid NUL-terminated C strings; "%s" consumes exactly
            // the one argument given.
            unsafe { libc::syslog(libc::LOG_INFO, c"%s".as_ptr(), msg.as_ptr()) };
        }
    }
}

/// Path-MTU discovery on a UDP socket: n2n disables it by default (DF not set, the kernel may
/// fragment); `-D` enables it.
pub fn set_pmtu_discovery(socket: &impl std::os::fd::AsRawFd, on: bool) -> io::Result<()> {
    set_mtu_discover(
        socket,
        if on {
            libc::IP_PMTUDISC_DO
        } else {
            libc::IP_PMTUDISC_DONT
        },
    )
}

/// The socket's IP_MTU_DISCOVER mode (IP_PMTUDISC_*).
pub fn mtu_discover(socket: &impl std::os::fd::AsRawFd) -> io::Result<libc::c_int> {
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: a valid socket descriptor; `value` and `len` live across the call and `len`
    // is the exact size of `value`.
    let rc = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_MTU_DISCOVER,
            (&raw mut value).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(value)
}

/// Sets the socket's IP_MTU_DISCOVER mode.
pub fn set_mtu_discover(socket: &impl std::os::fd::AsRawFd, value: libc::c_int) -> io::Result<()> {
    set_int_option(socket, libc::IPPROTO_IP, libc::IP_MTU_DISCOVER, value)
}

/// `setsockopt` of an `int` option.
fn set_int_option(
    socket: &impl std::os::fd::AsRawFd,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: a valid socket descriptor and a pointer to a c_int that lives across the call,
    // with its exact size.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            level,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The IPv4 address of interface `name` (SIOCGIFADDR), `None` when it has none.
pub fn interface_ipv4(name: &str) -> io::Result<Option<std::net::Ipv4Addr>> {
    let mut req: libc::ifreq = unsafe_zeroed_ifreq();
    let bytes = name.as_bytes();
    if bytes.len() >= req.ifr_name.len() || bytes.contains(&0) {
        return Err(io::ErrorKind::InvalidInput.into());
    }
    for (d, s) in req.ifr_name.iter_mut().zip(bytes) {
        *d = *s as libc::c_char;
    }
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None)?;
    use std::os::fd::AsRawFd;
    // SAFETY: SIOCGIFADDR reads the NUL-terminated name in `req` and writes a sockaddr into
    // its union; `req` is a valid, exclusively borrowed ifreq for the whole call.
    let rc = unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFADDR, &mut req) };
    if rc != 0 {
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::EADDRNOTAVAIL) => Ok(None),
            _ => Err(e),
        };
    }
    // SAFETY: on success the union holds a sockaddr; for AF_INET it is a sockaddr_in, which
    // fits in the union (sockaddr is 16 bytes, as is sockaddr_in).
    let sin: libc::sockaddr_in =
        unsafe { std::ptr::read_unaligned((&raw const req.ifr_ifru).cast::<libc::sockaddr_in>()) };
    if i32::from(sin.sin_family) != libc::AF_INET {
        return Ok(None);
    }
    Ok(Some(std::net::Ipv4Addr::from(u32::from_be(
        sin.sin_addr.s_addr,
    ))))
}

fn unsafe_zeroed_ifreq() -> libc::ifreq {
    // SAFETY: ifreq is plain old data (a name array and a union of integers, pointers and
    // sockaddrs); all zeroes is a valid value.
    unsafe { std::mem::zeroed() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_loopback_address_and_rejects_bad_names() {
        assert_eq!(
            interface_ipv4("lo").expect("lo exists"),
            Some(std::net::Ipv4Addr::LOCALHOST)
        );
        assert!(interface_ipv4("no-such-if0").is_err());
        assert!(interface_ipv4("a-name-longer-than-ifnamsiz").is_err());
    }
}
