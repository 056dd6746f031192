//! The UDP sockets of a TFTP worker, batched with recvmmsg/sendmmsg. Receiving reads IP_PKTINFO
//! (the address a request was sent to, and the arrival interface); sending sets it, so replies
//! leave from the address the client asked. All `unsafe` of the crate lives here, each block
//! with its reason.

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use provd_tftp::Transmit;
use socket2::{Domain, Protocol, Socket, Type};

/// Datagrams per recvmmsg/sendmmsg call.
pub(crate) const BATCH: usize = 32;
/// Receive slot: requests are at most 512 bytes and ACKs 4; a longer datagram arrives cut and
/// fails to parse, as it should.
const RECV_SLOT: usize = 2048;
/// Room for one IP_PKTINFO control message (CMSG_SPACE(12) = 32), 8-byte aligned.
const CMSG_WORDS: usize = 8;

/// Where a received datagram came from and which local address and interface took it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Meta {
    pub src: SocketAddrV4,
    pub local: Ipv4Addr,
    pub ifindex: u32,
}

/// A bound UDP socket: blocking sends (a full send buffer pushes back instead of dropping),
/// non-blocking receives (the worker polls first).
#[derive(Debug)]
pub(crate) struct UdpSocket {
    sock: Socket,
    /// UDP GSO still believed to work on this socket's paths.
    gso: AtomicBool,
}

fn setsockopt<T>(fd: RawFd, level: i32, name: i32, val: &T) -> io::Result<()> {
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

impl UdpSocket {
    /// Binds `addr`; with `reuse_port` as a member of a SO_REUSEPORT group, so every worker
    /// listens on the same port and the kernel spreads requests over them.
    pub(crate) fn bind(addr: SocketAddrV4, reuse_port: bool) -> io::Result<Self> {
        let sock = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
        if reuse_port {
            sock.set_reuse_port(true)?;
        }
        // A burst of modems rebooting at once asks for files together.
        let _ = sock.set_recv_buffer_size(4 << 20);
        let _ = sock.set_send_buffer_size(4 << 20);
        setsockopt(sock.as_raw_fd(), libc::IPPROTO_IP, libc::IP_PKTINFO, &1i32)?;
        sock.bind(&addr.into())?;
        Ok(UdpSocket {
            sock,
            gso: AtomicBool::new(true),
        })
    }

    pub(crate) fn local_addr(&self) -> io::Result<SocketAddrV4> {
        self.sock
            .local_addr()?
            .as_socket_ipv4()
            .ok_or_else(|| io::Error::other("IPv4 socket without an IPv4 address"))
    }

    pub(crate) fn fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }

    /// Receives what is queued, up to [`BATCH`] datagrams, without waiting. Returns 0 if
    /// nothing is.
    pub(crate) fn recv_batch(&self, rx: &mut RecvBatch) -> io::Result<usize> {
        rx.lens.clear();
        rx.metas.clear();
        for i in 0..BATCH {
            rx.iovs[i] = libc::iovec {
                iov_base: rx.bufs[i * RECV_SLOT..].as_mut_ptr().cast(),
                iov_len: RECV_SLOT,
            };
            let h = &mut rx.hdrs[i].msg_hdr;
            h.msg_name = (&raw mut rx.names[i]).cast();
            h.msg_namelen = size_of::<libc::sockaddr_in>() as libc::socklen_t;
            h.msg_iov = &raw mut rx.iovs[i];
            h.msg_iovlen = 1;
            h.msg_control = rx.cmsgs[i].as_mut_ptr().cast();
            h.msg_controllen = size_of::<[u64; CMSG_WORDS]>();
            h.msg_flags = 0;
        }
        // SAFETY: every header points into buffers owned by `rx` (names, iovecs, control and
        // data slots), which outlive the call; the lengths given are those buffers' sizes.
        let n = unsafe {
            libc::recvmmsg(
                self.sock.as_raw_fd(),
                rx.hdrs.as_mut_ptr(),
                BATCH as u32,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(0),
                _ => Err(e),
            };
        }
        let n = n as usize;
        for i in 0..n {
            let h = &rx.hdrs[i];
            rx.lens.push((h.msg_len as usize).min(RECV_SLOT));
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

    /// Sends every queued datagram with sendmmsg and empties the batch; returns how many could
    /// not be sent (each is skipped, the rest still go: TFTP's timers recover a lost one).
    pub(crate) fn send_batch(&self, tx: &mut SendBatch) -> usize {
        let n = tx.lens.len();
        if n == 0 {
            return 0;
        }
        // SAFETY: plain C structs for which all-zero is a valid value.
        let mut names: [libc::sockaddr_in; BATCH] = unsafe { zeroed() };
        // SAFETY: as above.
        let mut iovs: [libc::iovec; BATCH] = unsafe { zeroed() };
        // SAFETY: as above.
        let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { zeroed() };
        let mut cmsgs = [[0u64; CMSG_WORDS]; BATCH];
        for (i, iov) in iovs.iter_mut().enumerate().take(n) {
            *iov = libc::iovec {
                iov_base: tx.bufs[i * tx.slot..].as_mut_ptr().cast(),
                iov_len: tx.lens[i],
            };
        }
        // Each message is a run of datagrams [first, first + count): one datagram, or with UDP
        // GSO several equal-sized ones to the same peer (a TFTP window) in one trip down the
        // stack, segmented by the kernel: the per-datagram cost is what bounds a firmware
        // download on a fast link.
        let mut runs = [(0usize, 0usize); BATCH];
        let mut failed = 0;
        let mut next = 0;
        // Off for the rest of this batch after a run was refused (EINVAL: e.g. a segment
        // larger than the path MTU allows).
        let mut batch_gso = true;
        while next < n {
            let gso = batch_gso && self.gso.load(Ordering::Relaxed);
            let mut m = 0;
            let mut i = next;
            while i < n {
                let count = if gso { tx.gso_run(i) } else { 1 };
                runs[m] = (i, count);
                names[m] = sockaddr(tx.dests[i]);
                let h = &mut hdrs[m].msg_hdr;
                h.msg_name = (&raw mut names[m]).cast();
                h.msg_namelen = size_of::<libc::sockaddr_in>() as libc::socklen_t;
                h.msg_iov = &raw mut iovs[i];
                h.msg_iovlen = count;
                let from = Some(tx.froms[i]).filter(|a| !a.is_unspecified());
                let segment = (count > 1).then(|| tx.lens[i] as u16);
                h.msg_controllen = set_control(&mut cmsgs[m], from, segment);
                h.msg_control = if h.msg_controllen == 0 {
                    std::ptr::null_mut()
                } else {
                    cmsgs[m].as_mut_ptr().cast()
                };
                m += 1;
                i += count;
            }
            let mut sent = 0;
            while sent < m {
                // SAFETY: headers [sent, m) point at the arrays of this frame and at `tx`'s
                // buffers, all alive for the call.
                let r = unsafe {
                    libc::sendmmsg(
                        self.sock.as_raw_fd(),
                        hdrs[sent..].as_mut_ptr(),
                        (m - sent) as u32,
                        0,
                    )
                };
                if r > 0 {
                    sent += r as usize;
                    continue;
                }
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                let count = runs[sent].1;
                if count > 1 && e.raw_os_error() == Some(libc::EINVAL) {
                    batch_gso = false;
                    break;
                }
                if count > 1 && gso_unsupported(&e) {
                    // This kernel or device cannot segment: say so once, then go singly.
                    self.gso.store(false, Ordering::Relaxed);
                    tracing::info!(error = %e, "UDP GSO unavailable; sending datagrams singly");
                    break;
                }
                // This datagram (or run) cannot go (no route, address gone): skip it.
                failed += count;
                sent += 1;
            }
            next = if sent < m { runs[sent].0 } else { n };
        }
        tx.clear();
        failed
    }
}

fn sockaddr(a: SocketAddrV4) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: a.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(*a.ip()).to_be(),
        },
        sin_zero: [0; 8],
    }
}

/// Reads IP_PKTINFO: the local address the datagram was for (`ipi_spec_dst`, the interface's
/// own address even for a broadcast) and the arrival interface.
fn pktinfo(h: &libc::msghdr) -> Option<(Ipv4Addr, u32)> {
    // SAFETY: `h` was filled by recvmmsg; CMSG_FIRSTHDR/NXTHDR stay within msg_controllen and
    // the control buffer is 8-byte aligned; the payload is read unaligned.
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

/// Writes an IP_PKTINFO control message choosing the source address; returns its length.
/// Whether a send failed because the path cannot segment UDP (old kernel, device without
/// checksum offload): then GSO is switched off and the datagrams go singly.
fn gso_unsupported(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EIO | libc::EOPNOTSUPP | libc::ENOPROTOOPT)
    )
}

/// Writes the control messages of one send: the source address (IP_PKTINFO) and the GSO
/// segment size (UDP_SEGMENT), each when given. Returns the bytes used (0: none).
fn set_control(buf: &mut [u64; CMSG_WORDS], from: Option<Ipv4Addr>, segment: Option<u16>) -> usize {
    let mut used = match from {
        Some(a) => set_pktinfo_source(buf, a),
        None => 0,
    };
    if let Some(size) = segment {
        let space = unsafe_cmsg_space(size_of::<u16>());
        // SAFETY: `used` + CMSG_SPACE(u16) (24) <= 56 fits the 64-byte, 8-byte aligned buffer;
        // `used` is a multiple of 8 (a CMSG_SPACE), so the header written there is aligned.
        unsafe {
            let c = buf
                .as_mut_ptr()
                .cast::<u8>()
                .add(used)
                .cast::<libc::cmsghdr>();
            (*c).cmsg_level = libc::SOL_UDP;
            (*c).cmsg_type = libc::UDP_SEGMENT;
            (*c).cmsg_len = libc::CMSG_LEN(size_of::<u16>() as u32) as usize;
            libc::CMSG_DATA(c).cast::<u16>().write_unaligned(size);
        }
        used += space;
    }
    used
}

fn unsafe_cmsg_space(len: usize) -> usize {
    // SAFETY: CMSG_SPACE is arithmetic on its argument.
    unsafe { libc::CMSG_SPACE(len as u32) as usize }
}

fn set_pktinfo_source(buf: &mut [u64; CMSG_WORDS], from: Ipv4Addr) -> usize {
    // SAFETY: the buffer is 8-byte aligned and CMSG_SPACE(in_pktinfo) (32) fits its 64 bytes;
    // the header and payload are written inside it.
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
            ipi_ifindex: 0,
            ipi_spec_dst: libc::in_addr {
                s_addr: u32::from(from).to_be(),
            },
            ipi_addr: libc::in_addr { s_addr: 0 },
        };
        libc::CMSG_DATA(c)
            .cast::<libc::in_pktinfo>()
            .write_unaligned(info);
        space
    }
}

/// Receive buffers for one batch, reused for the life of a worker.
pub(crate) struct RecvBatch {
    bufs: Vec<u8>,
    names: Vec<libc::sockaddr_in>,
    cmsgs: Vec<[u64; CMSG_WORDS]>,
    iovs: Vec<libc::iovec>,
    hdrs: Vec<libc::mmsghdr>,
    lens: Vec<usize>,
    metas: Vec<Meta>,
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
            bufs: vec![0; BATCH * RECV_SLOT],
            names: vec![zero_name; BATCH],
            cmsgs: vec![[0; CMSG_WORDS]; BATCH],
            iovs: vec![zero_iov; BATCH],
            hdrs: vec![zero_hdr; BATCH],
            lens: Vec::with_capacity(BATCH),
            metas: Vec::with_capacity(BATCH),
        }
    }

    /// The i-th datagram of the last batch and its metadata.
    pub(crate) fn get(&self, i: usize) -> (&[u8], Meta) {
        let start = i * RECV_SLOT;
        (&self.bufs[start..start + self.lens[i]], self.metas[i])
    }
}

/// Datagrams waiting for one sendmmsg: copied in from [`Transmit`]s (a DATA payload is a slice
/// of a shared file that only lives for the callback).
#[derive(Debug)]
pub(crate) struct SendBatch {
    slot: usize,
    bufs: Vec<u8>,
    lens: Vec<usize>,
    dests: Vec<SocketAddrV4>,
    froms: Vec<Ipv4Addr>,
}

impl SendBatch {
    /// Room for [`BATCH`] datagrams of up to `slot` bytes.
    pub(crate) fn new(slot: usize) -> Self {
        SendBatch {
            slot,
            bufs: vec![0; BATCH * slot],
            lens: Vec::with_capacity(BATCH),
            dests: Vec::with_capacity(BATCH),
            froms: Vec::with_capacity(BATCH),
        }
    }

    /// Queues a datagram; false if it is larger than a slot (never, for the slot the worker
    /// sizes from `max_blksize`). The caller flushes when [`Self::is_full`].
    pub(crate) fn push(&mut self, t: &Transmit<'_>) -> bool {
        let i = self.lens.len();
        debug_assert!(i < BATCH, "flush before pushing into a full batch");
        let slot = &mut self.bufs[i * self.slot..(i + 1) * self.slot];
        let Some(len) = t.copy_to(slot) else {
            return false;
        };
        self.lens.push(len);
        self.dests.push(t.to);
        self.froms.push(t.from);
        true
    }

    pub(crate) fn is_full(&self) -> bool {
        self.lens.len() == BATCH
    }

    /// How many datagrams from `i` on can go as one GSO send: same peer and source, all but
    /// the last exactly as long as the first, the last no longer, within the kernel's limits
    /// (64 segments, 64 KiB).
    fn gso_run(&self, i: usize) -> usize {
        const MAX_SEGMENTS: usize = 64;
        const MAX_BYTES: usize = 65_000;
        // Segments must fit the path MTU; larger blocks (jumbo or loopback) go singly.
        const MAX_SEGMENT: usize = 1472;
        let size = self.lens[i];
        if size > MAX_SEGMENT {
            return 1;
        }
        let mut total = size;
        let mut j = i + 1;
        while j < self.lens.len()
            && j - i < MAX_SEGMENTS
            && self.lens[j - 1] == size
            && self.lens[j] <= size
            && self.lens[j] > 0
            && total + self.lens[j] <= MAX_BYTES
            && self.dests[j] == self.dests[i]
            && self.froms[j] == self.froms[i]
        {
            total += self.lens[j];
            j += 1;
        }
        j - i
    }

    fn clear(&mut self) {
        self.lens.clear();
        self.dests.clear();
        self.froms.clear();
    }
}

/// Waits until one of the sockets is readable or `timeout` passes; returns which are readable.
pub(crate) fn poll_readable(fds: [RawFd; 2], timeout: Duration) -> io::Result<[bool; 2]> {
    let mut pfds = fds.map(|fd| libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    });
    let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
    // SAFETY: `pfds` is a live array of two pollfd, its length passed alongside.
    let r = unsafe { libc::poll(pfds.as_mut_ptr(), 2, ms) };
    if r < 0 {
        let e = io::Error::last_os_error();
        return if e.kind() == io::ErrorKind::Interrupted {
            Ok([false; 2])
        } else {
            Err(e)
        };
    }
    // Errors (POLLERR, e.g. an ICMP unreachable queued on the socket) are read out by recvmmsg.
    Ok(pfds.map(|p| p.revents & (libc::POLLIN | libc::POLLERR) != 0))
}

/// MTU of each arrival interface, looked up once a minute: it caps the block size granted.
#[derive(Debug, Default)]
pub(crate) struct InterfaceMtus {
    known: std::collections::HashMap<u32, (Option<u32>, Instant)>,
}

impl InterfaceMtus {
    const REFRESH: Duration = Duration::from_secs(60);

    pub(crate) fn get(&mut self, fd: RawFd, ifindex: u32) -> Option<u32> {
        if ifindex == 0 {
            return None;
        }
        let now = Instant::now();
        match self.known.get(&ifindex) {
            Some(&(mtu, at)) if now.duration_since(at) < Self::REFRESH => mtu,
            _ => {
                let mtu = interface_mtu(fd, ifindex);
                self.known.insert(ifindex, (mtu, now));
                mtu
            }
        }
    }
}

/// SIOCGIFMTU of the interface with index `ifindex`.
fn interface_mtu(fd: RawFd, ifindex: u32) -> Option<u32> {
    // SAFETY: ifreq is a plain C struct/union; all-zero is valid.
    let mut req: libc::ifreq = unsafe { zeroed() };
    // SAFETY: ifr_name has IFNAMSIZ bytes, what if_indextoname requires.
    let name = unsafe { libc::if_indextoname(ifindex, req.ifr_name.as_mut_ptr()) };
    if name.is_null() {
        return None;
    }
    // SAFETY: `req` is a live ifreq with the interface name set; SIOCGIFMTU writes ifru_mtu.
    let r = unsafe { libc::ioctl(fd, libc::SIOCGIFMTU, &raw mut req) };
    if r != 0 {
        return None;
    }
    // SAFETY: a successful SIOCGIFMTU set the ifru_mtu member of the union.
    let mtu = unsafe { req.ifr_ifru.ifru_mtu };
    u32::try_from(mtu).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_carry_source_local_address_and_replies_leave_from_it() {
        let server = UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0), false).unwrap();
        let port = server.local_addr().unwrap().port();
        let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        client.send_to(b"ping", ("127.0.0.2", port)).unwrap();
        let mut rx = RecvBatch::new();
        let mut got = 0;
        for _ in 0..100 {
            got = server.recv_batch(&mut rx).unwrap();
            if got > 0 {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(got, 1);
        let (data, meta) = rx.get(0);
        assert_eq!(data, b"ping");
        assert_eq!(meta.local, Ipv4Addr::new(127, 0, 0, 2));
        assert_eq!(SocketAddr::V4(meta.src), client.local_addr().unwrap());
        let mut mtus = InterfaceMtus::default();
        assert!(
            mtus.get(server.fd(), meta.ifindex)
                .is_some_and(|m| m >= 1280)
        );
        let mut tx = SendBatch::new(600);
        assert!(tx.push(&Transmit {
            to: meta.src,
            from: meta.local,
            header: b"po",
            payload: b"ng",
        }));
        assert_eq!(server.send_batch(&mut tx), 0);
        let mut buf = [0u8; 16];
        let (n, from) = client.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"pong");
        assert_eq!(
            from,
            SocketAddr::from(([127, 0, 0, 2], port)),
            "sent from the address asked"
        );
    }

    use std::net::SocketAddr;
}
