//! A DHCP server socket: SO_REUSEPORT group member with IP_PKTINFO, batched with
//! recvmmsg/sendmmsg. All `unsafe` of the socket path lives here, each block with its reason.

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::AsRawFd;
use std::time::Duration;

use provd_engine::Destination;
use socket2::{Domain, Protocol, Socket, Type};

/// Datagrams per recvmmsg/sendmmsg call.
pub const BATCH: usize = 64;
/// Largest datagram accepted; longer ones arrive truncated and fail to parse (MSG_TRUNC).
const BUF: usize = 2048;
pub(crate) const CMSG_SPACE: usize = 64;

/// Where a received datagram came from and which local address/interface took it.
#[derive(Debug, Clone, Copy)]
pub struct Meta {
    pub src: SocketAddrV4,
    pub local: Ipv4Addr,
    pub ifindex: u32,
}

/// Receive buffers for one batch, reused for the life of a worker.
pub struct Received {
    bufs: Box<[[u8; BUF]]>,
    names: Box<[libc::sockaddr_in]>,
    cmsgs: Box<[[u8; CMSG_SPACE]]>,
    iovs: Box<[libc::iovec]>,
    hdrs: Box<[libc::mmsghdr]>,
    metas: Vec<Meta>,
    lens: Vec<usize>,
}

// SAFETY: the raw pointers in the iovecs and headers point into this value's own boxed buffers
// (which do not move when the value does) or are rewritten before each receive; moving the whole
// to another thread moves their ownership with it.
unsafe impl Send for Received {}

impl std::fmt::Debug for Received {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Received")
            .field("batch", &self.lens.len())
            .finish()
    }
}

impl Default for Received {
    fn default() -> Self {
        Self::new()
    }
}

impl Received {
    pub fn new() -> Self {
        // SAFETY: sockaddr_in, iovec and mmsghdr are plain C structs for which all-zero is valid.
        let zero_name: libc::sockaddr_in = unsafe { zeroed() };
        // SAFETY: as above.
        let zero_iov: libc::iovec = unsafe { zeroed() };
        // SAFETY: as above.
        let zero_hdr: libc::mmsghdr = unsafe { zeroed() };
        Received {
            bufs: vec![[0u8; BUF]; BATCH].into_boxed_slice(),
            names: vec![zero_name; BATCH].into_boxed_slice(),
            cmsgs: vec![[0u8; CMSG_SPACE]; BATCH].into_boxed_slice(),
            iovs: vec![zero_iov; BATCH].into_boxed_slice(),
            hdrs: vec![zero_hdr; BATCH].into_boxed_slice(),
            metas: Vec::with_capacity(BATCH),
            lens: Vec::with_capacity(BATCH),
        }
    }

    /// The i-th datagram of the last batch and its metadata.
    pub fn get(&self, i: usize) -> (&[u8], Meta) {
        (&self.bufs[i][..self.lens[i]], self.metas[i])
    }
}

/// A bound DHCP server socket.
#[derive(Debug)]
pub struct DhcpSocket {
    sock: Socket,
}

fn setsockopt<T>(fd: i32, level: i32, name: i32, val: &T) -> io::Result<()> {
    // SAFETY: `val` points to a live T of the size passed; the kernel only reads it.
    let r = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (val as *const T).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

impl AsRawFd for DhcpSocket {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.sock.as_raw_fd()
    }
}

impl DhcpSocket {
    /// Binds a UDP socket on `addr` as a member of a reuseport group, able to send broadcasts
    /// and to learn each datagram's local address and interface.
    pub fn bind(addr: SocketAddrV4) -> io::Result<Self> {
        let sock = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
        sock.set_reuse_port(true)?;
        sock.set_reuse_address(true)?;
        sock.set_broadcast(true)?;
        // Room for a burst while a commit's fdatasync runs (a region rebooting at once).
        let _ = sock.set_recv_buffer_size(8 << 20);
        let _ = sock.set_send_buffer_size(4 << 20);
        // Wake up regularly to sweep leases and notice shutdown even when idle.
        sock.set_read_timeout(Some(Duration::from_millis(200)))?;
        setsockopt(sock.as_raw_fd(), libc::IPPROTO_IP, libc::IP_PKTINFO, &1i32)?;
        sock.bind(&addr.into())?;
        Ok(DhcpSocket { sock })
    }

    /// Attaches the classic-BPF reuseport program that picks socket `chaddr[2..6] % shards`:
    /// the program sees the UDP payload, so chaddr bytes 2..6 sit at offset 30.
    pub fn attach_shard_steering(&self, shards: u32) -> io::Result<()> {
        const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
        const ALU_MOD_K: u16 = 0x94; // BPF_ALU | BPF_MOD | BPF_K
        const RET_A: u16 = 0x16; // BPF_RET | BPF_A
        let prog = [
            libc::sock_filter {
                code: LD_W_ABS,
                jt: 0,
                jf: 0,
                k: provd_common::SHARD_KEY_OFFSET as u32,
            },
            libc::sock_filter {
                code: ALU_MOD_K,
                jt: 0,
                jf: 0,
                k: shards,
            },
            libc::sock_filter {
                code: RET_A,
                jt: 0,
                jf: 0,
                k: 0,
            },
        ];
        let fprog = libc::sock_fprog {
            len: prog.len() as u16,
            filter: prog.as_ptr().cast_mut(),
        };
        setsockopt(
            self.sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ATTACH_REUSEPORT_CBPF,
            &fprog,
        )
    }

    /// A second handle on the same socket (dup), for a thread that only sends.
    pub fn try_clone(&self) -> io::Result<Self> {
        Ok(DhcpSocket {
            sock: self.sock.try_clone()?,
        })
    }

    /// Receives up to [`BATCH`] datagrams, waiting for the first at most the read timeout.
    /// Returns 0 on timeout or interruption.
    pub fn recv_batch(&self, rx: &mut Received) -> io::Result<usize> {
        self.recv_batch_flags(rx, libc::MSG_WAITFORONE)
    }

    /// As [`DhcpSocket::recv_batch`], without waiting: 0 when nothing is queued.
    pub fn recv_batch_now(&self, rx: &mut Received) -> io::Result<usize> {
        self.recv_batch_flags(rx, libc::MSG_DONTWAIT)
    }

    fn recv_batch_flags(&self, rx: &mut Received, flags: i32) -> io::Result<usize> {
        for i in 0..BATCH {
            rx.iovs[i] = libc::iovec {
                iov_base: rx.bufs[i].as_mut_ptr().cast(),
                iov_len: BUF,
            };
            let h = &mut rx.hdrs[i].msg_hdr;
            h.msg_name = (&raw mut rx.names[i]).cast();
            h.msg_namelen = size_of::<libc::sockaddr_in>() as libc::socklen_t;
            h.msg_iov = &raw mut rx.iovs[i];
            h.msg_iovlen = 1;
            h.msg_control = rx.cmsgs[i].as_mut_ptr().cast();
            h.msg_controllen = CMSG_SPACE;
            h.msg_flags = 0;
        }
        // SAFETY: every header points into buffers owned by `rx`, which outlive the call; the
        // lengths given are the buffers' sizes.
        let n = unsafe {
            libc::recvmmsg(
                self.sock.as_raw_fd(),
                rx.hdrs.as_mut_ptr(),
                BATCH as u32,
                flags,
                std::ptr::null_mut(),
            )
        };
        rx.lens.clear();
        rx.metas.clear();
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
            let h = &rx.hdrs[i];
            rx.lens.push((h.msg_len as usize).min(BUF));
            let name = &rx.names[i];
            let src = SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(name.sin_addr.s_addr)),
                u16::from_be(name.sin_port),
            );
            let (local, ifindex) = pktinfo(&h.msg_hdr).unwrap_or((Ipv4Addr::UNSPECIFIED, 0));
            rx.metas.push(Meta {
                src,
                local,
                ifindex,
            });
        }
        Ok(n)
    }

    /// Sends each (datagram, destination) with one sendmmsg per [`BATCH`]; returns how many
    /// could not be sent.
    pub fn send_batch<'a>(&self, items: impl Iterator<Item = (&'a [u8], Destination)>) -> usize {
        // SAFETY: plain C structs, all-zero valid.
        let mut names: [libc::sockaddr_in; BATCH] = unsafe { zeroed() };
        // SAFETY: as above.
        let mut iovs: [libc::iovec; BATCH] = unsafe { zeroed() };
        // SAFETY: as above.
        let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { zeroed() };
        let mut cmsgs = [[0u64; CMSG_SPACE / 8]; BATCH];
        let mut failed = 0;
        let mut n = 0;
        let mut flush = |n: &mut usize, hdrs: &mut [libc::mmsghdr; BATCH]| {
            let mut sent = 0;
            while sent < *n {
                // SAFETY: headers [sent, n) point at arrays on this stack frame and at the
                // caller's datagrams, all alive for the call.
                let r = unsafe {
                    libc::sendmmsg(
                        self.sock.as_raw_fd(),
                        hdrs[sent..].as_mut_ptr(),
                        (*n - sent) as u32,
                        0,
                    )
                };
                if r <= 0 {
                    // Skip the datagram that failed (e.g. no route) and go on with the rest.
                    failed += 1;
                    sent += 1;
                } else {
                    sent += r as usize;
                }
            }
            *n = 0;
        };
        for (data, dest) in items {
            let (addr, ifindex) = match dest {
                Destination::Relay(a) | Destination::Client(a) => (a, 0),
                Destination::Broadcast { ifindex } => {
                    (SocketAddrV4::new(Ipv4Addr::BROADCAST, 68), ifindex)
                }
            };
            names[n] = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: addr.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from(*addr.ip()).to_be(),
                },
                sin_zero: [0; 8],
            };
            iovs[n] = libc::iovec {
                iov_base: data.as_ptr().cast_mut().cast(),
                iov_len: data.len(),
            };
            let h = &mut hdrs[n].msg_hdr;
            h.msg_name = (&raw mut names[n]).cast();
            h.msg_namelen = size_of::<libc::sockaddr_in>() as libc::socklen_t;
            h.msg_iov = &raw mut iovs[n];
            h.msg_iovlen = 1;
            if ifindex != 0 {
                // A broadcast leaves by the interface the request came in on.
                let len = set_pktinfo_ifindex(&mut cmsgs[n], ifindex);
                h.msg_control = cmsgs[n].as_mut_ptr().cast();
                h.msg_controllen = len;
            } else {
                h.msg_control = std::ptr::null_mut();
                h.msg_controllen = 0;
            }
            n += 1;
            if n == BATCH {
                flush(&mut n, &mut hdrs);
            }
        }
        flush(&mut n, &mut hdrs);
        failed
    }
}

/// Reads IP_PKTINFO: the local address the datagram was for (ipi_spec_dst: the interface's own
/// address even for broadcasts) and the arrival interface.
pub(crate) fn pktinfo(h: &libc::msghdr) -> Option<(Ipv4Addr, u32)> {
    // SAFETY: `h` was filled by recvmmsg; CMSG_FIRSTHDR/NXTHDR stay within msg_controllen.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(h);
        while !c.is_null() {
            if (*c).cmsg_level == libc::IPPROTO_IP && (*c).cmsg_type == libc::IP_PKTINFO {
                let info = libc::CMSG_DATA(c)
                    .cast::<libc::in_pktinfo>()
                    .read_unaligned();
                let local = Ipv4Addr::from(u32::from_be(info.ipi_spec_dst.s_addr));
                return Some((local, info.ipi_ifindex as u32));
            }
            c = libc::CMSG_NXTHDR(h, c);
        }
    }
    None
}

/// Writes an IP_PKTINFO control message choosing the outgoing interface; returns its length.
pub(crate) fn set_pktinfo_ifindex(buf: &mut [u64; CMSG_SPACE / 8], ifindex: u32) -> usize {
    // SAFETY: the buffer is 8-byte aligned and CMSG_SPACE(in_pktinfo) (32) <= 64 bytes.
    unsafe {
        let space = libc::CMSG_SPACE(size_of::<libc::in_pktinfo>() as u32) as usize;
        let mut h: libc::msghdr = zeroed();
        h.msg_control = buf.as_mut_ptr().cast();
        h.msg_controllen = space;
        let c = libc::CMSG_FIRSTHDR(&h);
        (*c).cmsg_level = libc::IPPROTO_IP;
        (*c).cmsg_type = libc::IP_PKTINFO;
        (*c).cmsg_len = libc::CMSG_LEN(size_of::<libc::in_pktinfo>() as u32) as usize;
        let info = libc::in_pktinfo {
            ipi_ifindex: ifindex as i32,
            ipi_spec_dst: libc::in_addr { s_addr: 0 },
            ipi_addr: libc::in_addr { s_addr: 0 },
        };
        libc::CMSG_DATA(c)
            .cast::<libc::in_pktinfo>()
            .write_unaligned(info);
        space
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Loopback only: a client socket sends to a bound DhcpSocket and gets its reply back.
    #[test]
    fn batch_receive_reports_source_and_local_address_and_replies_go_back() {
        let server = DhcpSocket::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = server
            .sock
            .local_addr()
            .unwrap()
            .as_socket_ipv4()
            .unwrap()
            .port();
        let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        for i in 0..3u8 {
            client.send_to(&[i; 300], ("127.0.0.1", port)).unwrap();
        }
        let mut rx = Received::new();
        let mut got = 0;
        for _ in 0..10 {
            got += server.recv_batch(&mut rx).unwrap();
            if got >= 3 {
                break;
            }
        }
        assert_eq!(got, 3);
        let (data, meta) = rx.get(0);
        assert_eq!(data.len(), 300);
        assert_eq!(
            meta.src,
            client.local_addr().unwrap().to_string().parse().unwrap()
        );
        assert_eq!(meta.local, Ipv4Addr::LOCALHOST);
        assert!(meta.ifindex > 0);
        let dest = Destination::Client(meta.src);
        let failed = server.send_batch([(&b"pong"[..], dest), (&b"pong2"[..], dest)].into_iter());
        assert_eq!(failed, 0);
        let mut buf = [0u8; 64];
        let (n, _) = client.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"pong");
    }

    #[test]
    fn steering_program_is_accepted_by_the_kernel() {
        let a = DhcpSocket::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0)).unwrap();
        a.attach_shard_steering(2).unwrap();
    }
}
