//! The socket, its receive and send batches, and the C control messages they carry.

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};

/// Room for an IP_PKTINFO (CMSG_SPACE(12) = 32) and a UDP_SEGMENT (24) or SO_TIMESTAMPNS
/// (CMSG_SPACE(16) = 32) control message, 8-byte aligned: the control buffer of one message.
pub const CMSG_WORDS: usize = 8;

/// Datagrams per `sendmmsg` in [`UdpSocket::send_each`].
const SEND_EACH_BATCH: usize = 64;

/// Where a received datagram came from and which local address and interface took it.
#[derive(Debug, Clone, Copy)]
pub struct Meta {
    pub src: SocketAddrV4,
    pub local: Ipv4Addr,
    pub ifindex: u32,
    /// When the kernel took the datagram in (SO_TIMESTAMPNS, wall clock), on sockets bound
    /// with [`Options::timestamps`].
    pub received: Option<std::time::SystemTime>,
}

impl Meta {
    /// How long the datagram waited in the socket's queue before `now` (zero if the clocks
    /// disagree; `None` without a timestamp).
    pub fn waited(&self, now: std::time::SystemTime) -> Option<Duration> {
        self.received
            .map(|r| now.duration_since(r).unwrap_or(Duration::ZERO))
    }
}

/// How a socket is set up at bind time.
#[derive(Debug, Clone)]
pub struct Options {
    /// Join the port's SO_REUSEPORT group, so every worker listens on the same port and the
    /// kernel spreads sources over them.
    pub reuse_port: bool,
    /// SO_REUSEADDR as well (a server bound to the wildcard next to one bound to an address).
    pub reuse_address: bool,
    /// SO_BROADCAST: allowed to send to 255.255.255.255 (a DHCP reply to a client without an
    /// address yet).
    pub broadcast: bool,
    /// Receive IP_PKTINFO: the local address each datagram was sent to and its interface.
    pub pktinfo: bool,
    /// Receive SO_TIMESTAMPNS: when each datagram arrived ([`Meta::received`]), so a server
    /// behind on its queue can tell requests that waited too long to be worth answering.
    pub timestamps: bool,
    /// SO_RCVBUF / SO_SNDBUF in bytes (0: the system's default), forced past the system's
    /// maximum when the process may. Asked for, not insisted on.
    pub recv_buffer: usize,
    pub send_buffer: usize,
    /// How long a [`Wait::ForOne`] receive blocks before returning 0.
    pub read_timeout: Option<Duration>,
    /// Send equal-sized datagrams to one peer as one UDP GSO message ([`SendBatch`]). Off for
    /// a sender whose datagrams go to a reuseport group on this host: a coalesced packet is
    /// steered as one, to the socket its first datagram picks.
    pub gso: bool,
}

impl Default for Options {
    /// Room for a region of devices rebooting at once: 16 MiB each way (the kernel doubles it
    /// for its bookkeeping; about 10,000 small datagrams), IP_PKTINFO on.
    fn default() -> Self {
        Options {
            reuse_port: false,
            reuse_address: false,
            broadcast: false,
            pktinfo: true,
            timestamps: false,
            recv_buffer: 16 << 20,
            send_buffer: 16 << 20,
            read_timeout: None,
            gso: true,
        }
    }
}

/// Whether [`UdpSocket::recv_batch`] waits for a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Return at once with what is queued (the caller polls first).
    No,
    /// Block until one datagram arrives (or the read timeout passes), then take what else is
    /// queued.
    ForOne,
}

/// A bound UDP socket: blocking sends (a full send buffer pushes back instead of dropping);
/// receives wait or not as asked.
#[derive(Debug)]
pub struct UdpSocket {
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
    /// Binds `addr` with `opts`.
    pub fn bind(addr: SocketAddrV4, opts: &Options) -> io::Result<Self> {
        let sock = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
        if opts.reuse_port {
            sock.set_reuse_port(true)?;
        }
        if opts.reuse_address {
            sock.set_reuse_address(true)?;
        }
        if opts.broadcast {
            sock.set_broadcast(true)?;
        }
        // Past net.core.rmem_max/wmem_max when the process may (CAP_NET_ADMIN), else as far as
        // the limits let it: a boot storm's burst waits in these buffers.
        for (want, force, plain) in [
            (opts.recv_buffer, libc::SO_RCVBUFFORCE, libc::SO_RCVBUF),
            (opts.send_buffer, libc::SO_SNDBUFFORCE, libc::SO_SNDBUF),
        ] {
            let Ok(want) = i32::try_from(want) else {
                continue;
            };
            if want > 0 && setsockopt(sock.as_raw_fd(), libc::SOL_SOCKET, force, &want).is_err() {
                let _ = setsockopt(sock.as_raw_fd(), libc::SOL_SOCKET, plain, &want);
            }
        }
        if opts.pktinfo {
            setsockopt(sock.as_raw_fd(), libc::IPPROTO_IP, libc::IP_PKTINFO, &1i32)?;
        }
        if opts.timestamps {
            setsockopt(
                sock.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_TIMESTAMPNS,
                &1i32,
            )?;
        }
        if opts.read_timeout.is_some() {
            // A new socket has none: one system call fewer for the sockets made per transfer.
            sock.set_read_timeout(opts.read_timeout)?;
        }
        sock.bind(&addr.into())?;
        Ok(UdpSocket {
            sock,
            gso: AtomicBool::new(opts.gso),
        })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddrV4> {
        self.sock
            .local_addr()?
            .as_socket_ipv4()
            .ok_or_else(|| io::Error::other("IPv4 socket without an IPv4 address"))
    }

    pub fn fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }

    /// The socket itself, for options this crate does not set.
    pub fn socket(&self) -> &Socket {
        &self.sock
    }

    /// A second handle on the same socket (dup), e.g. for a thread that only sends.
    pub fn try_clone(&self) -> io::Result<Self> {
        Ok(UdpSocket {
            sock: self.sock.try_clone()?,
            gso: AtomicBool::new(self.gso.load(Ordering::Relaxed)),
        })
    }

    /// Attaches a classic-BPF program choosing which socket of the port's reuseport group
    /// takes each datagram (SO_ATTACH_REUSEPORT_CBPF): it sees the UDP payload and returns the
    /// socket's index in the group.
    pub fn attach_reuseport_cbpf(&self, prog: &[libc::sock_filter]) -> io::Result<()> {
        let len = u16::try_from(prog.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "BPF program too long"))?;
        let fprog = libc::sock_fprog {
            len,
            filter: prog.as_ptr().cast_mut(),
        };
        setsockopt(
            self.sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ATTACH_REUSEPORT_CBPF,
            &fprog,
        )
    }

    /// Sends each datagram straight from the caller's memory (no copy into slots), up to 64
    /// per `sendmmsg`, each from its own source address and interface; returns how many could
    /// not be sent (each is skipped and the rest still go). For replies that already sit in
    /// buffers that outlive the call; [`SendBatch`] is for the rest, and for GSO.
    pub fn send_each<'a>(&self, items: impl Iterator<Item = Outgoing<'a>>) -> usize {
        // SAFETY: plain C structs, all-zero valid.
        let mut names: [libc::sockaddr_in; SEND_EACH_BATCH] = unsafe { zeroed() };
        // SAFETY: as above.
        let mut iovs: [libc::iovec; SEND_EACH_BATCH] = unsafe { zeroed() };
        // SAFETY: as above.
        let mut hdrs: [libc::mmsghdr; SEND_EACH_BATCH] = unsafe { zeroed() };
        let mut cmsgs = [[0u64; CMSG_WORDS]; SEND_EACH_BATCH];
        let mut failed = 0;
        let mut n = 0;
        let mut items = items.peekable();
        while let Some(o) = items.next() {
            names[n] = sockaddr(o.to);
            iovs[n] = libc::iovec {
                iov_base: o.data.as_ptr().cast_mut().cast(),
                iov_len: o.data.len(),
            };
            let control = set_control(&mut cmsgs[n], o.from, o.ifindex, None);
            set_header(
                &mut hdrs[n].msg_hdr,
                &mut names[n],
                &raw mut iovs[n],
                1,
                &mut cmsgs[n],
                control,
            );
            n += 1;
            if n == SEND_EACH_BATCH || items.peek().is_none() {
                let mut sent = 0;
                while sent < n {
                    match sendmmsg(self.fd(), &mut hdrs[sent..n]) {
                        Ok(k) => sent += k,
                        Err(_) => {
                            // This datagram cannot go (no route, address gone): skip it.
                            failed += 1;
                            sent += 1;
                        }
                    }
                }
                n = 0;
            }
        }
        failed
    }

    /// Receives up to the batch's capacity of datagrams, waiting for the first or not as
    /// `wait` says. Returns 0 if nothing came (nothing queued, timeout, interruption). A
    /// datagram longer than a slot arrives cut to the slot's length.
    pub fn recv_batch(&self, rx: &mut RecvBatch, wait: Wait) -> io::Result<usize> {
        rx.lens.clear();
        rx.metas.clear();
        let slot = rx.slot;
        for i in 0..rx.hdrs.len() {
            rx.iovs[i] = libc::iovec {
                iov_base: rx.bufs[i * slot..].as_mut_ptr().cast(),
                iov_len: slot,
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
        let flags = match wait {
            Wait::No => libc::MSG_DONTWAIT,
            Wait::ForOne => libc::MSG_WAITFORONE,
        };
        // SAFETY: every header points into buffers owned by `rx` (names, iovecs, control and
        // data slots), which outlive the call; the lengths given are those buffers' sizes.
        let n = unsafe {
            libc::recvmmsg(
                self.sock.as_raw_fd(),
                rx.hdrs.as_mut_ptr(),
                rx.hdrs.len() as u32,
                flags,
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
            let h = &rx.hdrs[i];
            rx.lens.push((h.msg_len as usize).min(slot));
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
                received: timestamp(&h.msg_hdr),
            });
        }
        Ok(n)
    }

    /// Sends every queued datagram with sendmmsg and empties the batch; returns how many could
    /// not be sent (each is skipped and the rest still go: the protocols above recover a lost
    /// datagram by their own timers).
    pub fn send_batch(&self, tx: &mut SendBatch) -> usize {
        let n = tx.lens.len();
        if n == 0 {
            return 0;
        }
        let SendBatch {
            slot,
            bufs,
            names,
            iovs,
            hdrs,
            cmsgs,
            runs,
            ..
        } = tx;
        for (i, iov) in iovs.iter_mut().enumerate().take(n) {
            *iov = libc::iovec {
                iov_base: bufs[i * *slot..].as_mut_ptr().cast(),
                iov_len: tx.lens[i],
            };
        }
        // Each message is a run of datagrams [first, first + count): one datagram, or with UDP
        // GSO several equal-sized ones to the same peer (a TFTP window) in one trip down the
        // stack, segmented by the kernel: the per-datagram cost is what bounds a firmware
        // download on a fast link.
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
                let count = if gso {
                    gso_run(&tx.lens, &tx.dests, &tx.froms, &tx.ifindexes, i)
                } else {
                    1
                };
                runs[m] = (i, count);
                names[m] = sockaddr(tx.dests[i]);
                let segment = (count > 1).then(|| tx.lens[i] as u16);
                let control = set_control(&mut cmsgs[m], tx.froms[i], tx.ifindexes[i], segment);
                set_header(
                    &mut hdrs[m].msg_hdr,
                    &mut names[m],
                    &raw mut iovs[i],
                    count,
                    &mut cmsgs[m],
                    control,
                );
                m += 1;
                i += count;
            }
            let mut sent = 0;
            while sent < m {
                let e = match sendmmsg(self.fd(), &mut hdrs[sent..m]) {
                    Ok(k) => {
                        sent += k;
                        continue;
                    }
                    Err(e) => e,
                };
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

/// Points a message header at its address, its `iovlen` iovecs from `iov` and its control
/// messages (`control` bytes of `cmsg`; none if 0).
fn set_header(
    h: &mut libc::msghdr,
    name: &mut libc::sockaddr_in,
    iov: *mut libc::iovec,
    iovlen: usize,
    cmsg: &mut [u64; CMSG_WORDS],
    control: usize,
) {
    h.msg_name = (name as *mut libc::sockaddr_in).cast();
    h.msg_namelen = size_of::<libc::sockaddr_in>() as libc::socklen_t;
    h.msg_iov = iov;
    h.msg_iovlen = iovlen;
    h.msg_controllen = control;
    h.msg_control = if control == 0 {
        std::ptr::null_mut()
    } else {
        cmsg.as_mut_ptr().cast()
    };
}

/// One `sendmmsg` of `hdrs` (retried on EINTR): how many messages went, at least one, or why
/// the first of them could not.
fn sendmmsg(fd: RawFd, hdrs: &mut [libc::mmsghdr]) -> io::Result<usize> {
    loop {
        // SAFETY: the caller's headers point at names, iovecs, control and data buffers that
        // are alive and unmoved for the call (`set_header` wrote them from live references).
        let r = unsafe { libc::sendmmsg(fd, hdrs.as_mut_ptr(), hdrs.len() as u32, 0) };
        if r > 0 {
            return Ok(r as usize);
        }
        let e = if r == 0 {
            io::Error::other("sendmmsg sent nothing")
        } else {
            io::Error::last_os_error()
        };
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// One datagram for [`UdpSocket::send_each`].
#[derive(Debug, Clone, Copy)]
pub struct Outgoing<'a> {
    pub data: &'a [u8],
    pub to: SocketAddrV4,
    /// The source address (unspecified: the kernel chooses).
    pub from: Ipv4Addr,
    /// The interface it leaves by (0: by the routing table).
    pub ifindex: u32,
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
/// own address even for a broadcast) and the arrival interface. `h` must be a header a receive
/// filled, its control buffer 8-byte aligned.
pub fn pktinfo(h: &libc::msghdr) -> Option<(Ipv4Addr, u32)> {
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

/// Reads SO_TIMESTAMPNS: when the kernel took the datagram in. `h` as for [`pktinfo`].
pub fn timestamp(h: &libc::msghdr) -> Option<std::time::SystemTime> {
    // SAFETY: as in `pktinfo`.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(h);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SO_TIMESTAMPNS {
                let ts = libc::CMSG_DATA(c).cast::<libc::timespec>().read_unaligned();
                let secs = u64::try_from(ts.tv_sec).ok()?;
                let nanos = u32::try_from(ts.tv_nsec).ok()?;
                return std::time::UNIX_EPOCH.checked_add(Duration::new(secs, nanos));
            }
            c = libc::CMSG_NXTHDR(h, c);
        }
    }
    None
}

/// Whether a send failed because the path cannot segment UDP (old kernel, device without
/// checksum offload): then GSO is switched off and the datagrams go singly.
fn gso_unsupported(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EIO | libc::EOPNOTSUPP | libc::ENOPROTOOPT)
    )
}

/// Writes the control messages of one send: the source address and outgoing interface
/// (IP_PKTINFO, when either is set) and the GSO segment size (UDP_SEGMENT), each when given.
/// Returns the bytes used (0: none).
fn set_control(
    buf: &mut [u64; CMSG_WORDS],
    from: Ipv4Addr,
    ifindex: u32,
    segment: Option<u16>,
) -> usize {
    let mut used = if from.is_unspecified() && ifindex == 0 {
        0
    } else {
        set_pktinfo(buf, from, ifindex)
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

/// Writes an IP_PKTINFO control message choosing the source address and outgoing interface
/// of a send; returns its length.
pub fn set_pktinfo(buf: &mut [u64; CMSG_WORDS], from: Ipv4Addr, ifindex: u32) -> usize {
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
            ipi_ifindex: ifindex as libc::c_int,
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
pub struct RecvBatch {
    slot: usize,
    bufs: Vec<u8>,
    names: Vec<libc::sockaddr_in>,
    cmsgs: Vec<[u64; CMSG_WORDS]>,
    iovs: Vec<libc::iovec>,
    hdrs: Vec<libc::mmsghdr>,
    lens: Vec<usize>,
    metas: Vec<Meta>,
}

// SAFETY: the raw pointers in the iovecs and headers point into this value's own heap buffers
// (which stay put when the value moves) and are rewritten before every call that uses them;
// moving the whole to another thread moves their ownership with it.
unsafe impl Send for RecvBatch {}

impl std::fmt::Debug for RecvBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecvBatch")
            .field("received", &self.lens.len())
            .finish()
    }
}

impl RecvBatch {
    /// Room for `batch` datagrams (at least one) of up to `slot` bytes each.
    pub fn new(batch: usize, slot: usize) -> Self {
        let batch = batch.max(1);
        // SAFETY: sockaddr_in, iovec and mmsghdr are plain C structs; all-zero is valid.
        let zero_name: libc::sockaddr_in = unsafe { zeroed() };
        // SAFETY: as above.
        let zero_iov: libc::iovec = unsafe { zeroed() };
        // SAFETY: as above.
        let zero_hdr: libc::mmsghdr = unsafe { zeroed() };
        RecvBatch {
            slot,
            bufs: vec![0; batch * slot],
            names: vec![zero_name; batch],
            cmsgs: vec![[0; CMSG_WORDS]; batch],
            iovs: vec![zero_iov; batch],
            hdrs: vec![zero_hdr; batch],
            lens: Vec::with_capacity(batch),
            metas: Vec::with_capacity(batch),
        }
    }

    /// How many datagrams one receive takes at most.
    pub fn capacity(&self) -> usize {
        self.hdrs.len()
    }

    /// The i-th datagram of the last batch and its metadata. Panics if `i` is not below what
    /// the last `recv_batch` returned.
    pub fn get(&self, i: usize) -> (&[u8], Meta) {
        let start = i * self.slot;
        (&self.bufs[start..start + self.lens[i]], self.metas[i])
    }
}

/// Datagrams waiting for one sendmmsg, copied into slots (a caller's payload often lives only
/// for a callback), with the scratch the system call needs, reused for the life of a worker.
pub struct SendBatch {
    slot: usize,
    bufs: Vec<u8>,
    lens: Vec<usize>,
    dests: Vec<SocketAddrV4>,
    froms: Vec<Ipv4Addr>,
    ifindexes: Vec<u32>,
    names: Vec<libc::sockaddr_in>,
    iovs: Vec<libc::iovec>,
    hdrs: Vec<libc::mmsghdr>,
    cmsgs: Vec<[u64; CMSG_WORDS]>,
    /// Each message's run of datagrams: (first, count).
    runs: Vec<(usize, usize)>,
}

// SAFETY: as for `RecvBatch`: the pointers are into its own heap buffers, rewritten per send.
unsafe impl Send for SendBatch {}

impl std::fmt::Debug for SendBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendBatch")
            .field("queued", &self.lens.len())
            .field("slot", &self.slot)
            .finish()
    }
}

impl SendBatch {
    /// Room for `batch` datagrams (at least one) of up to `slot` bytes each.
    pub fn new(batch: usize, slot: usize) -> Self {
        let batch = batch.max(1);
        // SAFETY: sockaddr_in, iovec and mmsghdr are plain C structs; all-zero is valid.
        let zero_name: libc::sockaddr_in = unsafe { zeroed() };
        // SAFETY: as above.
        let zero_iov: libc::iovec = unsafe { zeroed() };
        // SAFETY: as above.
        let zero_hdr: libc::mmsghdr = unsafe { zeroed() };
        SendBatch {
            slot,
            bufs: vec![0; batch * slot],
            lens: Vec::with_capacity(batch),
            dests: Vec::with_capacity(batch),
            froms: Vec::with_capacity(batch),
            ifindexes: Vec::with_capacity(batch),
            names: vec![zero_name; batch],
            iovs: vec![zero_iov; batch],
            hdrs: vec![zero_hdr; batch],
            cmsgs: vec![[0; CMSG_WORDS]; batch],
            runs: vec![(0, 0); batch],
        }
    }

    /// Queues a datagram to `to`, written into its slot by `write` (which returns the length
    /// written, or `None` if it does not fit). It leaves from `from` (unspecified: the kernel
    /// chooses) through interface `ifindex` (0: by the routing table). Returns false, queueing
    /// nothing, if the batch is full or `write` declined.
    pub fn push_with(
        &mut self,
        to: SocketAddrV4,
        from: Ipv4Addr,
        ifindex: u32,
        write: impl FnOnce(&mut [u8]) -> Option<usize>,
    ) -> bool {
        let i = self.lens.len();
        if self.is_full() {
            return false;
        }
        let slot = &mut self.bufs[i * self.slot..(i + 1) * self.slot];
        let Some(len) = write(slot).filter(|&len| len <= self.slot) else {
            return false;
        };
        self.lens.push(len);
        self.dests.push(to);
        self.froms.push(from);
        self.ifindexes.push(ifindex);
        true
    }

    /// Queues a copy of `datagram`; see [`SendBatch::push_with`].
    pub fn push(&mut self, datagram: &[u8], to: SocketAddrV4, from: Ipv4Addr) -> bool {
        self.push_with(to, from, 0, |slot| {
            let dst = slot.get_mut(..datagram.len())?;
            dst.copy_from_slice(datagram);
            Some(datagram.len())
        })
    }

    pub fn len(&self) -> usize {
        self.lens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lens.is_empty()
    }

    /// The caller flushes with [`UdpSocket::send_batch`] when this is true.
    pub fn is_full(&self) -> bool {
        self.lens.len() == self.hdrs.len()
    }

    fn clear(&mut self) {
        self.lens.clear();
        self.dests.clear();
        self.froms.clear();
        self.ifindexes.clear();
    }
}

/// How many datagrams from `i` on can go as one GSO send: same peer and source, all but
/// the last exactly as long as the first, the last no longer, within the kernel's limits
/// (64 segments, 64 KiB).
fn gso_run(
    lens: &[usize],
    dests: &[SocketAddrV4],
    froms: &[Ipv4Addr],
    ifindexes: &[u32],
    i: usize,
) -> usize {
    const MAX_SEGMENTS: usize = 64;
    const MAX_BYTES: usize = 65_000;
    // Segments must fit the path MTU; larger blocks (jumbo or loopback) go singly.
    const MAX_SEGMENT: usize = 1472;
    let size = lens[i];
    if size > MAX_SEGMENT {
        return 1;
    }
    let mut total = size;
    let mut j = i + 1;
    while j < lens.len()
        && j - i < MAX_SEGMENTS
        && lens[j - 1] == size
        && lens[j] <= size
        && lens[j] > 0
        && total + lens[j] <= MAX_BYTES
        && dests[j] == dests[i]
        && froms[j] == froms[i]
        && ifindexes[j] == ifindexes[i]
    {
        total += lens[j];
        j += 1;
    }
    j - i
}

/// Waits until one of the sockets is readable or `timeout` passes; returns which are readable.
pub fn poll_readable<const N: usize>(fds: [RawFd; N], timeout: Duration) -> io::Result<[bool; N]> {
    let mut pfds = fds.map(|fd| libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    });
    let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
    // SAFETY: `pfds` is a live array of N pollfd, its length passed alongside.
    let r = unsafe { libc::poll(pfds.as_mut_ptr(), N as libc::nfds_t, ms) };
    if r < 0 {
        let e = io::Error::last_os_error();
        return if e.kind() == io::ErrorKind::Interrupted {
            Ok([false; N])
        } else {
            Err(e)
        };
    }
    // Errors (POLLERR, e.g. an ICMP unreachable queued on the socket) are read out by recvmmsg.
    Ok(pfds.map(|p| p.revents & (libc::POLLIN | libc::POLLERR) != 0))
}

/// MTU of each arrival interface, looked up once a minute: it caps the block size granted.
#[derive(Debug, Default)]
pub struct InterfaceMtus {
    known: std::collections::HashMap<u32, (Option<u32>, Instant)>,
}

impl InterfaceMtus {
    const REFRESH: Duration = Duration::from_secs(60);

    pub fn get(&mut self, fd: RawFd, ifindex: u32) -> Option<u32> {
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

    /// A server socket on every local address (a free port) and a client on 127.0.0.1 whose
    /// receives give up after 2 s.
    fn server_and_client() -> (UdpSocket, u16, std::net::UdpSocket) {
        let server = UdpSocket::bind(
            SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0),
            &Options::default(),
        )
        .unwrap();
        let port = server.local_addr().unwrap().port();
        let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        (server, port, client)
    }

    #[test]
    fn batches_carry_source_local_address_and_replies_leave_from_it() {
        let (server, port, client) = server_and_client();
        client.send_to(b"ping", ("127.0.0.2", port)).unwrap();
        let mut rx = RecvBatch::new(8, 2048);
        let mut got = 0;
        for _ in 0..100 {
            got = server.recv_batch(&mut rx, Wait::No).unwrap();
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
        let mut tx = SendBatch::new(4, 600);
        assert!(tx.push(b"pong", meta.src, meta.local));
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

    #[test]
    fn send_each_goes_from_the_callers_buffers_and_skips_what_cannot_go() {
        let (server, port, client) = server_and_client();
        let SocketAddr::V4(to) = client.local_addr().unwrap() else {
            unreachable!("bound to an IPv4 address")
        };
        let out = |data: &'static [u8], to, from| Outgoing {
            data,
            to,
            from,
            ifindex: 0,
        };
        // Port 0 is refused by the kernel (EINVAL): that one is counted and the rest still go,
        // 70 in all so that two sendmmsg calls are made.
        let mut items = vec![
            out(b"first", to, Ipv4Addr::new(127, 0, 0, 3)),
            out(
                b"refused",
                SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0),
                Ipv4Addr::UNSPECIFIED,
            ),
        ];
        items.extend((0..68).map(|_| out(b"more", to, Ipv4Addr::UNSPECIFIED)));
        assert_eq!(server.send_each(items.into_iter()), 1);
        let mut buf = [0u8; 16];
        let (n, from) = client.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"first");
        assert_eq!(from, SocketAddr::from(([127, 0, 0, 3], port)));
        for i in 0..68 {
            let (n, _) = client
                .recv_from(&mut buf)
                .unwrap_or_else(|e| panic!("datagram {i} of the rest: {e}"));
            assert_eq!(&buf[..n], b"more");
        }
    }

    #[test]
    fn a_window_to_one_peer_arrives_as_separate_datagrams() {
        let server = UdpSocket::bind(
            SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0),
            &Options::default(),
        )
        .unwrap();
        let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let SocketAddr::V4(to) = client.local_addr().unwrap() else {
            unreachable!("bound to an IPv4 address")
        };
        // Five full blocks and a short last one: one GSO run where the kernel can, singly
        // where it cannot; the receiver sees six datagrams either way.
        let mut tx = SendBatch::new(8, 1024);
        let sizes = [1000, 1000, 1000, 1000, 1000, 300];
        for (k, &size) in sizes.iter().enumerate() {
            assert!(tx.push(&vec![k as u8; size], to, Ipv4Addr::UNSPECIFIED));
        }
        assert!(
            !tx.push(&[0; 1025], to, Ipv4Addr::UNSPECIFIED),
            "larger than a slot"
        );
        assert_eq!(tx.len(), 6);
        assert_eq!(server.send_batch(&mut tx), 0);
        assert!(tx.is_empty());
        let mut buf = [0u8; 2048];
        for (k, &size) in sizes.iter().enumerate() {
            let n = client.recv(&mut buf).unwrap();
            assert_eq!(n, size);
            assert!(buf[..n].iter().all(|&b| b == k as u8));
        }
    }

    #[test]
    fn a_full_batch_refuses_more_and_a_blocking_receive_times_out() {
        let mut tx = SendBatch::new(1, 16);
        let to = SocketAddrV4::new(Ipv4Addr::LOCALHOST, 9);
        assert!(tx.push(b"a", to, Ipv4Addr::UNSPECIFIED));
        assert!(tx.is_full());
        assert!(!tx.push(b"b", to, Ipv4Addr::UNSPECIFIED));

        let opts = Options {
            read_timeout: Some(Duration::from_millis(50)),
            ..Options::default()
        };
        let sock = UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0), &opts).unwrap();
        let mut rx = RecvBatch::new(4, 64);
        assert_eq!(sock.recv_batch(&mut rx, Wait::ForOne).unwrap(), 0);
        assert_eq!(sock.recv_batch(&mut rx, Wait::No).unwrap(), 0);

        // A datagram longer than a slot arrives cut to the slot, so a parser can tell.
        let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = sock.local_addr().unwrap();
        client.send_to(&[7u8; 100], to).unwrap();
        client.send_to(b"short", to).unwrap();
        let mut got = Vec::new();
        for _ in 0..20 {
            let n = sock.recv_batch(&mut rx, Wait::ForOne).unwrap();
            got.extend((0..n).map(|i| rx.get(i).0.len()));
            if got.len() == 2 {
                break;
            }
        }
        assert_eq!(got, [64, 5]);
    }
}
