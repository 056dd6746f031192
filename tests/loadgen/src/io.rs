//! A non-blocking UDP socket with batched I/O: `sendmmsg` of up to [`BATCH`] queued datagrams to
//! one destination, `recvmmsg` of up to [`BATCH`] at once. All buffers and message headers are
//! allocated once, at construction.

use std::io;
use std::net::SocketAddrV4;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

/// Datagrams per `sendmmsg`/`recvmmsg` call.
pub const BATCH: usize = 64;
/// Receive buffer size per datagram: a DHCP reply through a relay fits an Ethernet frame.
const RECV_BUF: usize = 2048;
/// Capacity reserved per send buffer: the largest request this crate writes.
const SEND_BUF: usize = 576;
/// Socket buffers requested (SO_*BUFFORCE as root, else capped by the sysctl limits).
const SOCK_BUF: libc::c_int = 16 << 20;

pub(crate) fn sockaddr(addr: SocketAddrV4) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: addr.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from_ne_bytes(addr.ip().octets()),
        },
        sin_zero: [0; 8],
    }
}

fn setsockopt_int(fd: &OwnedFd, level: libc::c_int, name: libc::c_int, v: libc::c_int) -> bool {
    // SAFETY: `v` outlives the call and the length passed is its size.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&raw const v).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    r == 0
}

#[derive(Debug)]
pub struct Socket {
    fd: OwnedFd,
}

impl Socket {
    /// A non-blocking UDP socket bound to `local` (SO_REUSEADDR, large buffers).
    pub fn bind(local: SocketAddrV4) -> io::Result<Socket> {
        // SAFETY: plain syscall; the returned descriptor is checked before use.
        let raw = unsafe {
            libc::socket(
                libc::AF_INET,
                libc::SOCK_DGRAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                0,
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a fresh descriptor owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        setsockopt_int(&fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, 1);
        for (force, plain) in [
            (libc::SO_RCVBUFFORCE, libc::SO_RCVBUF),
            (libc::SO_SNDBUFFORCE, libc::SO_SNDBUF),
        ] {
            if !setsockopt_int(&fd, libc::SOL_SOCKET, force, SOCK_BUF) {
                setsockopt_int(&fd, libc::SOL_SOCKET, plain, SOCK_BUF);
            }
        }
        let sa = sockaddr(local);
        // SAFETY: `sa` is a valid sockaddr_in of the length given.
        let r = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&raw const sa).cast(),
                size_of::<libc::sockaddr_in>() as libc::socklen_t,
            )
        };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Socket { fd })
    }

    /// Waits until the socket is readable (or, with `want_write`, writable) or `timeout` passes.
    /// Returns whether it became ready. EINTR counts as not ready.
    pub fn wait(&self, want_write: bool, timeout: Duration) -> io::Result<bool> {
        let mut pfd = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN | if want_write { libc::POLLOUT } else { 0 },
            revents: 0,
        };
        let ts = libc::timespec {
            tv_sec: timeout.as_secs() as libc::time_t,
            tv_nsec: libc::c_long::from(timeout.subsec_nanos() as i32),
        };
        // SAFETY: one valid pollfd, a valid timespec, no signal mask.
        let r = unsafe { libc::ppoll(&raw mut pfd, 1, &raw const ts, std::ptr::null()) };
        if r < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::Interrupted {
                Ok(false)
            } else {
                Err(e)
            };
        }
        Ok(r > 0)
    }
}

/// Datagrams queued for one destination, sent with `sendmmsg`.
pub struct SendQueue {
    bufs: Vec<Vec<u8>>,
    lens: [usize; BATCH],
    queued: usize,
    iov: Vec<libc::iovec>,
    hdrs: Vec<libc::mmsghdr>,
    dst: libc::sockaddr_in,
    /// Datagrams handed to the kernel so far.
    pub sent: u64,
}

impl std::fmt::Debug for SendQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendQueue")
            .field("queued", &self.queued)
            .field("sent", &self.sent)
            .finish()
    }
}

impl SendQueue {
    pub fn new(dst: SocketAddrV4) -> SendQueue {
        SendQueue {
            bufs: (0..BATCH).map(|_| Vec::with_capacity(SEND_BUF)).collect(),
            lens: [0; BATCH],
            queued: 0,
            // Filled in before each use.
            iov: (0..BATCH)
                .map(|_| libc::iovec {
                    iov_base: std::ptr::null_mut(),
                    iov_len: 0,
                })
                .collect(),
            hdrs: (0..BATCH).map(|_| zeroed_mmsghdr()).collect(),
            dst: sockaddr(dst),
            sent: 0,
        }
    }

    pub fn is_full(&self) -> bool {
        self.queued == BATCH
    }

    /// Writes the next datagram with `fill` (which returns its length) into the next free buffer.
    /// The caller flushes when [`is_full`](Self::is_full).
    pub fn push(&mut self, fill: impl FnOnce(&mut Vec<u8>) -> usize) {
        assert!(self.queued < BATCH, "flush a full queue before pushing");
        let i = self.queued;
        self.lens[i] = fill(&mut self.bufs[i]);
        self.queued += 1;
    }

    /// Sends what is queued. Returns Ok(true) when the queue is now empty, Ok(false) when the
    /// kernel took only part (or none: EAGAIN); the rest stays queued, in order.
    pub fn flush(&mut self, sock: &Socket) -> io::Result<bool> {
        if self.queued == 0 {
            return Ok(true);
        }
        let n = self.queued;
        for i in 0..n {
            self.iov[i] = libc::iovec {
                iov_base: self.bufs[i].as_mut_ptr().cast(),
                iov_len: self.lens[i],
            };
            let h = &mut self.hdrs[i];
            h.msg_hdr.msg_name = (&raw mut self.dst).cast();
            h.msg_hdr.msg_namelen = size_of::<libc::sockaddr_in>() as libc::socklen_t;
            h.msg_hdr.msg_iov = &raw mut self.iov[i];
            h.msg_hdr.msg_iovlen = 1;
            h.msg_len = 0;
        }
        // SAFETY: `hdrs[..n]` point at live iovecs over live buffers and at `dst`, all owned by
        // self and not moved during the call.
        let r = unsafe {
            libc::sendmmsg(
                sock.fd.as_raw_fd(),
                self.hdrs.as_mut_ptr(),
                n as libc::c_uint,
                libc::MSG_DONTWAIT,
            )
        };
        if r < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(false),
                _ => Err(e),
            };
        }
        let done = r as usize;
        self.sent += done as u64;
        if done < n {
            // Keep the unsent tail, in order, at the front (swapping keeps every buffer's
            // capacity: no allocation).
            for i in done..n {
                self.bufs.swap(i - done, i);
                self.lens[i - done] = self.lens[i];
            }
        }
        self.queued = n - done;
        Ok(self.queued == 0)
    }
}

fn zeroed_mmsghdr() -> libc::mmsghdr {
    // SAFETY: mmsghdr is a C struct of integers and raw pointers: all-zero is a valid value.
    unsafe { std::mem::zeroed() }
}

/// Buffers for `recvmmsg`.
pub struct RecvBatch {
    bufs: Vec<[u8; RECV_BUF]>,
    iov: Vec<libc::iovec>,
    hdrs: Vec<libc::mmsghdr>,
    n: usize,
}

impl std::fmt::Debug for RecvBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecvBatch").field("n", &self.n).finish()
    }
}

impl Default for RecvBatch {
    fn default() -> Self {
        Self::new()
    }
}

impl RecvBatch {
    pub fn new() -> RecvBatch {
        let mut bufs = vec![[0u8; RECV_BUF]; BATCH];
        let mut iov: Vec<libc::iovec> = bufs
            .iter_mut()
            .map(|b| libc::iovec {
                iov_base: b.as_mut_ptr().cast(),
                iov_len: RECV_BUF,
            })
            .collect();
        let hdrs = iov
            .iter_mut()
            .map(|v| {
                let mut h = zeroed_mmsghdr();
                h.msg_hdr.msg_iov = v;
                h.msg_hdr.msg_iovlen = 1;
                h
            })
            .collect();
        // The Vecs' heap storage never moves after this: the raw pointers stay valid.
        RecvBatch {
            bufs,
            iov,
            hdrs,
            n: 0,
        }
    }

    /// Receives up to [`BATCH`] datagrams without blocking; returns how many (0 on EAGAIN).
    pub fn recv(&mut self, sock: &Socket) -> io::Result<usize> {
        for h in &mut self.hdrs {
            h.msg_hdr.msg_name = std::ptr::null_mut();
            h.msg_hdr.msg_namelen = 0;
            h.msg_hdr.msg_control = std::ptr::null_mut();
            h.msg_hdr.msg_controllen = 0;
            h.msg_hdr.msg_flags = 0;
            h.msg_len = 0;
        }
        debug_assert_eq!(self.iov.len(), BATCH);
        // SAFETY: every header points at its own iovec over its own RECV_BUF-byte buffer, all
        // owned by self; the kernel writes at most iov_len bytes into each.
        let r = unsafe {
            libc::recvmmsg(
                sock.fd.as_raw_fd(),
                self.hdrs.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if r < 0 {
            let e = io::Error::last_os_error();
            self.n = 0;
            return match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(0),
                _ => Err(e),
            };
        }
        self.n = r as usize;
        Ok(self.n)
    }

    /// The `i`th datagram of the last [`recv`](Self::recv) (truncated ones are cut short).
    pub fn get(&self, i: usize) -> &[u8] {
        assert!(i < self.n);
        let len = (self.hdrs[i].msg_len as usize).min(RECV_BUF);
        &self.bufs[i][..len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn batched_loopback_round_trip() {
        let a = Socket::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0)).unwrap();
        let b = Socket::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0)).unwrap();
        let b_addr = local_addr(&b);
        let mut q = SendQueue::new(b_addr);
        for i in 0..BATCH {
            q.push(|buf| {
                buf.clear();
                buf.extend_from_slice(&(i as u32).to_be_bytes());
                4
            });
        }
        assert!(q.is_full());
        let mut tries = 0;
        while !q.flush(&a).unwrap() {
            tries += 1;
            assert!(tries < 100);
        }
        assert_eq!(q.sent, BATCH as u64);
        let mut rb = RecvBatch::new();
        let mut got = Vec::new();
        for _ in 0..100 {
            if got.len() == BATCH {
                break;
            }
            b.wait(false, Duration::from_millis(50)).unwrap();
            let n = rb.recv(&b).unwrap();
            for i in 0..n {
                got.push(u32::from_be_bytes(rb.get(i).try_into().unwrap()));
            }
        }
        assert_eq!(got, (0..BATCH as u32).collect::<Vec<_>>());
    }

    fn local_addr(s: &Socket) -> SocketAddrV4 {
        // SAFETY: all-zero is a valid sockaddr_in; getsockname fills it.
        let mut sa: libc::sockaddr_in = unsafe { std::mem::zeroed() };
        let mut len = size_of::<libc::sockaddr_in>() as libc::socklen_t;
        // SAFETY: `sa` and `len` are valid for writes of the sizes given.
        let r = unsafe { libc::getsockname(s.fd.as_raw_fd(), (&raw mut sa).cast(), &raw mut len) };
        assert_eq!(r, 0);
        SocketAddrV4::new(
            Ipv4Addr::from(sa.sin_addr.s_addr.to_ne_bytes()),
            u16::from_be(sa.sin_port),
        )
    }
}
