//! The receiver's UDP socket: a SO_REUSEPORT group member read with recvmmsg, so a burst of
//! modems logging at once costs one system call per batch rather than per datagram. All
//! `unsafe` of the crate lives here, each block with its reason.

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::AsRawFd;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

use crate::parse::MAX_DATAGRAM;

/// Datagrams per recvmmsg call.
pub(crate) const BATCH: usize = 32;
/// One byte more than the parser reads, so that it sees (and marks) a longer datagram as cut.
const SLOT: usize = MAX_DATAGRAM + 1;
/// How long a receive waits before the worker looks at the shutdown flag again.
pub(crate) const READ_TIMEOUT: Duration = Duration::from_millis(100);

/// A bound syslog socket.
#[derive(Debug)]
pub(crate) struct SyslogSocket {
    sock: Socket,
}

impl SyslogSocket {
    /// Binds `addr` as a member of a reuseport group: every worker listens on the same port and
    /// the kernel spreads sources over them.
    pub(crate) fn bind(addr: SocketAddrV4) -> io::Result<Self> {
        let sock = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
        sock.set_reuse_port(true)?;
        // Room for a region of modems rebooting at once, each logging its registration.
        let _ = sock.set_recv_buffer_size(4 << 20);
        sock.set_read_timeout(Some(READ_TIMEOUT))?;
        sock.bind(&addr.into())?;
        Ok(SyslogSocket { sock })
    }

    pub(crate) fn local_addr(&self) -> io::Result<SocketAddrV4> {
        self.sock
            .local_addr()?
            .as_socket_ipv4()
            .ok_or_else(|| io::Error::other("IPv4 socket without an IPv4 address"))
    }

    /// Receives up to [`BATCH`] datagrams, waiting for the first at most [`READ_TIMEOUT`].
    /// Returns 0 on timeout or interruption.
    pub(crate) fn recv_batch(&self, rx: &mut RecvBatch) -> io::Result<usize> {
        rx.lens.clear();
        rx.sources.clear();
        for i in 0..BATCH {
            rx.iovs[i] = libc::iovec {
                iov_base: rx.bufs[i * SLOT..].as_mut_ptr().cast(),
                iov_len: SLOT,
            };
            let h = &mut rx.hdrs[i].msg_hdr;
            h.msg_name = (&raw mut rx.names[i]).cast();
            h.msg_namelen = size_of::<libc::sockaddr_in>() as libc::socklen_t;
            h.msg_iov = &raw mut rx.iovs[i];
            h.msg_iovlen = 1;
            h.msg_control = std::ptr::null_mut();
            h.msg_controllen = 0;
            h.msg_flags = 0;
        }
        // SAFETY: every header points into buffers owned by `rx` (names, iovecs and data
        // slots), which outlive the call; the lengths given are those buffers' sizes.
        let n = unsafe {
            libc::recvmmsg(
                self.sock.as_raw_fd(),
                rx.hdrs.as_mut_ptr(),
                BATCH as u32,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::WouldBlock
                | io::ErrorKind::TimedOut
                | io::ErrorKind::Interrupted => Ok(0),
                _ => Err(e),
            };
        }
        let n = n as usize;
        for i in 0..n {
            rx.lens.push((rx.hdrs[i].msg_len as usize).min(SLOT));
            let name = &rx.names[i];
            rx.sources.push(SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(name.sin_addr.s_addr)),
                u16::from_be(name.sin_port),
            ));
        }
        Ok(n)
    }
}

/// Receive buffers for one batch, reused for the life of a worker.
pub(crate) struct RecvBatch {
    bufs: Vec<u8>,
    names: Vec<libc::sockaddr_in>,
    iovs: Vec<libc::iovec>,
    hdrs: Vec<libc::mmsghdr>,
    lens: Vec<usize>,
    sources: Vec<SocketAddrV4>,
}

impl std::fmt::Debug for RecvBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecvBatch")
            .field("received", &self.lens.len())
            .finish()
    }
}

impl RecvBatch {
    pub(crate) fn new() -> Self {
        // SAFETY: sockaddr_in, iovec and mmsghdr are plain C structs; all-zero is valid.
        let zero_name: libc::sockaddr_in = unsafe { zeroed() };
        // SAFETY: as above.
        let zero_iov: libc::iovec = unsafe { zeroed() };
        // SAFETY: as above.
        let zero_hdr: libc::mmsghdr = unsafe { zeroed() };
        RecvBatch {
            bufs: vec![0; BATCH * SLOT],
            names: vec![zero_name; BATCH],
            iovs: vec![zero_iov; BATCH],
            hdrs: vec![zero_hdr; BATCH],
            lens: Vec::with_capacity(BATCH),
            sources: Vec::with_capacity(BATCH),
        }
    }

    /// The i-th datagram of the last batch and its source.
    pub(crate) fn get(&self, i: usize) -> (&[u8], SocketAddrV4) {
        let start = i * SLOT;
        (&self.bufs[start..start + self.lens[i]], self.sources[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_receive_reports_sources_and_marks_long_datagrams() {
        let server = SyslogSocket::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = server.local_addr().unwrap().port();
        let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        client.send_to(b"<13>one", ("127.0.0.1", port)).unwrap();
        client
            .send_to(&vec![b'a'; MAX_DATAGRAM + 500], ("127.0.0.1", port))
            .unwrap();
        let mut rx = RecvBatch::new();
        let mut got = Vec::new();
        for _ in 0..20 {
            let n = server.recv_batch(&mut rx).unwrap();
            for i in 0..n {
                let (d, src) = rx.get(i);
                got.push((d.len(), src));
            }
            if got.len() == 2 {
                break;
            }
        }
        let me = match client.local_addr().unwrap() {
            std::net::SocketAddr::V4(a) => a,
            other => panic!("{other}"),
        };
        assert_eq!(got, [(7, me), (SLOT, me)]);
        // Nothing queued: the read times out and reports 0.
        assert_eq!(server.recv_batch(&mut rx).unwrap(), 0);
    }
}
