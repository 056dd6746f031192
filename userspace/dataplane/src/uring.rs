//! The io_uring path: the shard's reuseport socket read by one multishot `recvmsg` whose
//! datagrams land in a registered ring of provided buffers (no syscall per datagram, no buffer
//! posted per receive), and replies sent as a batch of `sendmsg` submissions with one
//! `io_uring_enter`. Durable ACKs leave from the sync thread by `sendmmsg` on a handle to the
//! same socket, as on the socket path.
//! All `unsafe` of the io_uring path lives in this file.

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::AsRawFd;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::types::{BufRingEntry, RecvMsgOut, SubmitArgs, Timespec};
use io_uring::{IoUring, cqueue, opcode, types};
use provd_engine::{Counters, Destination, Drop};

use provd_udp::{CMSG_WORDS, pktinfo, set_pktinfo};

use crate::socket::{BATCH, DhcpSocket, Meta, destination};

/// Provided buffers (a power of two, at most 32768).
const BUFS: u16 = 512;
/// Bytes per provided buffer: the recvmsg_out header, name, control and a datagram.
const BUF_LEN: usize = 2048;
const BGID: u16 = 7;
const RECV: u64 = u64::MAX;
/// Sends in flight at most.
const SEND_SLOTS: usize = 2 * BATCH;

/// Memory the kernel reads for one in-flight `sendmsg`.
struct SendSlot {
    data: Vec<u8>,
    name: libc::sockaddr_in,
    iov: libc::iovec,
    cmsg: [u64; CMSG_WORDS],
    hdr: libc::msghdr,
}

pub struct UringIo {
    pub(crate) sock: DhcpSocket,
    ring: IoUring,
    /// The provided-buffer ring (page-aligned mmap) and the buffers it hands out.
    br: NonNull<BufRingEntry>,
    br_len: usize,
    bufs: Box<[u8]>,
    /// Local copy of the buffer ring's tail.
    tail: u16,
    /// The msghdr the multishot recvmsg was armed with (only its lengths matter).
    recv_hdr: Box<libc::msghdr>,
    armed: bool,
    /// Created disabled (single issuer, deferred task work): the worker thread that drives
    /// the ring enables it on its first receive, becoming its only submitter.
    disabled: bool,
    /// Received datagrams not yet taken by a batch: (buffer id, length).
    pending: std::collections::VecDeque<(u16, usize)>,
    /// This batch: (buffer id, payload offset and length in the buffer, meta).
    items: Vec<(u16, usize, usize, Meta)>,
    slots: Box<[SendSlot]>,
    free_slots: Vec<usize>,
}

// SAFETY: the pointers refer to this value's own mappings and boxes; one thread drives the
// ring at a time and moving the value moves their ownership.
unsafe impl Send for UringIo {}

impl std::fmt::Debug for UringIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UringIo")
            .field("sock", &self.sock)
            .finish_non_exhaustive()
    }
}

impl UringIo {
    pub fn new(sock: DhcpSocket) -> io::Result<Self> {
        let (ring, disabled) = new_ring()?;
        let br_len = usize::from(BUFS) * size_of::<BufRingEntry>();
        // SAFETY: anonymous mapping (page-aligned, as buffer rings must be), checked below.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                br_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let br = NonNull::new(p.cast::<BufRingEntry>()).ok_or_else(|| io::Error::other("mmap"))?;
        // SAFETY: the mapping above holds BUFS entries and stays mapped until drop, which
        // unregisters it first.
        unsafe {
            ring.submitter()
                .register_buf_ring_with_flags(p as u64, BUFS, BGID, 0)
        }
        .inspect_err(|_| {
            // SAFETY: our mapping, unused from here.
            unsafe { libc::munmap(p, br_len) };
        })?;
        // SAFETY: all-zero msghdr is valid; only the lengths are read by the kernel here.
        let mut recv_hdr: Box<libc::msghdr> = Box::new(unsafe { zeroed() });
        recv_hdr.msg_namelen = size_of::<libc::sockaddr_in>() as libc::socklen_t;
        recv_hdr.msg_controllen = size_of::<[u64; CMSG_WORDS]>();
        let slots = (0..SEND_SLOTS)
            .map(|_| SendSlot {
                data: Vec::with_capacity(600),
                // SAFETY: plain C structs, all-zero valid.
                name: unsafe { zeroed() },
                // SAFETY: as above.
                iov: unsafe { zeroed() },
                cmsg: [0; CMSG_WORDS],
                // SAFETY: as above.
                hdr: unsafe { zeroed() },
            })
            .collect();
        let mut u = UringIo {
            sock,
            ring,
            br,
            br_len,
            bufs: vec![0u8; usize::from(BUFS) * BUF_LEN].into_boxed_slice(),
            tail: 0,
            recv_hdr,
            armed: false,
            disabled,
            pending: std::collections::VecDeque::with_capacity(usize::from(BUFS)),
            items: Vec::with_capacity(BATCH),
            slots,
            free_slots: (0..SEND_SLOTS).rev().collect(),
        };
        for bid in 0..BUFS {
            u.provide(bid);
        }
        u.publish_tail();
        Ok(u)
    }

    /// Puts buffer `bid` at the ring's tail (published by [`publish_tail`]).
    fn provide(&mut self, bid: u16) {
        let idx = usize::from(self.tail & (BUFS - 1));
        // SAFETY: idx < BUFS, inside the mapping; the kernel only reads entries below the tail.
        let e = unsafe { &mut *self.br.as_ptr().add(idx) };
        let start = usize::from(bid) * BUF_LEN;
        e.set_addr(self.bufs[start..].as_ptr() as u64);
        e.set_len(BUF_LEN as u32);
        e.set_bid(bid);
        self.tail = self.tail.wrapping_add(1);
    }

    fn publish_tail(&self) {
        // SAFETY: the tail field of the first entry of our registered ring, an aligned u16 the
        // kernel reads with acquire semantics.
        let tail = unsafe { &*(BufRingEntry::tail(self.br.as_ptr()) as *const AtomicU16) };
        tail.store(self.tail, Ordering::Release);
    }

    fn arm(&mut self) -> io::Result<()> {
        let e = opcode::RecvMsgMulti::new(
            types::Fd(self.sock.as_raw_fd()),
            &*self.recv_hdr as *const libc::msghdr,
            BGID,
        )
        .build()
        .user_data(RECV);
        // SAFETY: the msghdr is boxed and lives as long as the ring; the buffers are registered.
        unsafe { self.ring.submission().push(&e) }.map_err(|_| io::Error::other("SQ full"))?;
        self.armed = true;
        Ok(())
    }

    /// Moves every completion off the ring: sends free their slot, receives queue up in
    /// `pending` (with their buffer) until a batch takes them.
    fn reap(&mut self, counters: &Counters) {
        let mut cq = self.ring.completion();
        cq.sync();
        for cqe in &mut cq {
            let ud = cqe.user_data();
            if ud != RECV {
                self.free_slots.push(ud as usize);
                if cqe.result() < 0 {
                    counters.dropped(Drop::SendFailed);
                }
                continue;
            }
            if !cqueue::more(cqe.flags()) {
                self.armed = false;
            }
            // A negative result (ENOBUFS: every buffer in use) carries no buffer; the datagram
            // stays queued in the socket for the re-armed receive.
            if cqe.result() >= 0
                && let Some(bid) = cqueue::buffer_select(cqe.flags())
            {
                self.pending.push_back((bid, cqe.result() as usize));
            }
        }
    }

    /// Returns the last batch's buffers, waits up to 200 ms for datagrams, takes up to a batch.
    pub(crate) fn recv(&mut self, counters: &Counters) -> io::Result<usize> {
        if self.disabled {
            self.ring.submitter().register_enable_rings()?;
            self.disabled = false;
        }
        for i in 0..self.items.len() {
            let bid = self.items[i].0;
            self.provide(bid);
        }
        self.items.clear();
        self.publish_tail();
        self.reap(counters);
        if !self.armed {
            self.arm()?;
        }
        if self.pending.is_empty() {
            let ts = Timespec::new().nsec(200_000_000);
            let args = SubmitArgs::new().timespec(&ts);
            match self.ring.submitter().submit_with_args(1, &args) {
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::ETIME) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {}
                Err(e) => return Err(e),
            }
            self.reap(counters);
        } else {
            self.ring.submit()?;
        }
        let n = self.pending.len().min(BATCH);
        for _ in 0..n {
            let Some((bid, len)) = self.pending.pop_front() else {
                break;
            };
            let start = usize::from(bid) * BUF_LEN;
            let buf = &self.bufs[start..start + len.min(BUF_LEN)];
            let Ok(msg) = RecvMsgOut::parse(buf, &self.recv_hdr) else {
                self.items.push((bid, 0, 0, empty_meta()));
                continue;
            };
            let payload = msg.payload_data();
            let off = payload.as_ptr() as usize - buf.as_ptr() as usize;
            let len = if msg.is_payload_truncated() {
                0
            } else {
                payload.len()
            };
            let name = msg.name_data();
            let src = if name.len() >= size_of::<libc::sockaddr_in>() {
                // SAFETY: at least sizeof(sockaddr_in) bytes, read unaligned.
                let sin: libc::sockaddr_in =
                    unsafe { name.as_ptr().cast::<libc::sockaddr_in>().read_unaligned() };
                SocketAddrV4::new(
                    Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)),
                    u16::from_be(sin.sin_port),
                )
            } else {
                SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)
            };
            let control = msg.control_data();
            // SAFETY: all-zero msghdr is valid; it only describes `control` for CMSG walking.
            let mut h: libc::msghdr = unsafe { zeroed() };
            h.msg_control = control.as_ptr().cast_mut().cast();
            h.msg_controllen = control.len();
            let (local, ifindex) = pktinfo(&h).unwrap_or((Ipv4Addr::UNSPECIFIED, 0));
            self.items.push((
                bid,
                off,
                len,
                Meta {
                    src,
                    local,
                    ifindex,
                    received: None,
                },
            ));
        }
        Ok(self.items.len())
    }

    pub(crate) fn get(&self, i: usize) -> (&[u8], Meta) {
        let (bid, off, len, meta) = self.items[i];
        let start = usize::from(bid) * BUF_LEN + off;
        (self.bufs.get(start..start + len).unwrap_or(&[]), meta)
    }

    /// Queues one `sendmsg` per reply and submits them with one syscall.
    pub(crate) fn send<'a>(
        &mut self,
        replies: impl Iterator<Item = (&'a [u8], Destination)>,
        counters: &Counters,
    ) {
        let mut queued = 0;
        for (data, dest) in replies {
            if self.free_slots.is_empty() {
                self.reap(counters);
            }
            if self.free_slots.is_empty() {
                // Wait for earlier sends to complete (receives that arrive meanwhile are kept).
                let _ = self.ring.submit_and_wait(1);
                self.reap(counters);
            }
            let Some(i) = self.free_slots.pop() else {
                counters.dropped(Drop::SendFailed);
                continue;
            };
            let (addr, ifindex) = destination(dest);
            let s = &mut self.slots[i];
            s.data.clear();
            s.data.extend_from_slice(data);
            s.name = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: addr.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from(*addr.ip()).to_be(),
                },
                sin_zero: [0; 8],
            };
            s.iov = libc::iovec {
                iov_base: s.data.as_mut_ptr().cast(),
                iov_len: s.data.len(),
            };
            s.hdr.msg_name = (&raw mut s.name).cast();
            s.hdr.msg_namelen = size_of::<libc::sockaddr_in>() as libc::socklen_t;
            s.hdr.msg_iov = &raw mut s.iov;
            s.hdr.msg_iovlen = 1;
            if ifindex != 0 {
                let len = set_pktinfo(&mut s.cmsg, Ipv4Addr::UNSPECIFIED, ifindex);
                s.hdr.msg_control = s.cmsg.as_mut_ptr().cast();
                s.hdr.msg_controllen = len;
            } else {
                s.hdr.msg_control = std::ptr::null_mut();
                s.hdr.msg_controllen = 0;
            }
            let e = opcode::SendMsg::new(types::Fd(self.sock.as_raw_fd()), &raw const s.hdr)
                .build()
                .user_data(i as u64);
            // SAFETY: the slot's memory stays put and untouched until its completion frees it.
            if unsafe { self.ring.submission().push(&e) }.is_err() {
                let _ = self.ring.submit();
                // SAFETY: as above.
                if unsafe { self.ring.submission().push(&e) }.is_err() {
                    self.free_slots.push(i);
                    counters.dropped(Drop::SendFailed);
                    continue;
                }
            }
            queued += 1;
        }
        if queued > 0 {
            let _ = self.ring.submit();
        }
    }
}

/// A ring set up for one thread: `SINGLE_ISSUER` with `DEFER_TASKRUN`, so completions (the
/// multishot receive's above all) are posted when the worker asks for them instead of
/// interrupting it from the network softirq, and created disabled (`R_DISABLED`) so that the
/// worker thread, not the thread that opened it, becomes the issuer. Kernels before 6.1 lack
/// these flags: there it is a plain ring. Returns whether the ring still has to be enabled.
fn new_ring() -> io::Result<(IoUring, bool)> {
    match IoUring::builder()
        .setup_single_issuer()
        .setup_defer_taskrun()
        .setup_r_disabled()
        .build(256)
    {
        Ok(ring) => Ok((ring, true)),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Ok((IoUring::new(256)?, false)),
        Err(e) => Err(e),
    }
}

fn empty_meta() -> Meta {
    Meta {
        src: SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0),
        local: Ipv4Addr::UNSPECIFIED,
        ifindex: 0,
        received: None,
    }
}

impl std::ops::Drop for UringIo {
    fn drop(&mut self) {
        // Cancel the multishot receive and wait (bounded) for its last completion, so the kernel
        // writes into no buffer after they are freed.
        if self.armed {
            let cancel = opcode::AsyncCancel::new(RECV).build().user_data(RECV - 1);
            // SAFETY: a cancel entry refers to no memory of ours.
            if unsafe { self.ring.submission().push(&cancel) }.is_ok() {
                let ts = Timespec::new().nsec(50_000_000);
                for _ in 0..20 {
                    let args = SubmitArgs::new().timespec(&ts);
                    let _ = self.ring.submitter().submit_with_args(1, &args);
                    let mut done = false;
                    for cqe in self.ring.completion() {
                        if cqe.user_data() == RECV && !cqueue::more(cqe.flags()) {
                            done = true;
                        }
                    }
                    if done {
                        break;
                    }
                }
            }
        }
        let _ = self.ring.submitter().unregister_buf_ring(BGID);
        // SAFETY: our buffer ring mapping, unregistered just above.
        unsafe { libc::munmap(self.br.as_ptr().cast(), self.br_len) };
    }
}
