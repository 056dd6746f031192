//! The I/O a worker drives, one variant per path. Each receives a batch of DHCP requests and
//! sends replies the way their request came in ([`Via`]); the worker's logic (engine, lease log,
//! group commit) is the same on every path.
//!
//! Durable ACKs leave after the shard's sync thread has made their records durable. On the
//! socket path the sync thread sends them itself through its own handle on the socket; on the
//! XDP path only the worker may touch its AF_XDP rings (they are single-producer), so the sync
//! thread hands synced batches back through a channel and wakes the worker with an eventfd.

use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use crossbeam_channel::{Receiver, Sender};
use provd_engine::{Counters, Destination, Drop};

use crate::frame::{self, FrameError, FrameInfo, ReplyAddr};
use provd_udp::RecvBatch;

use crate::commit::{AckBatch, AckSink};
use crate::socket::{BATCH, DhcpSocket, Meta, receive_buffers};
use crate::uring::UringIo;
use crate::xsk::Xsk;
use provd_udp::RateLimit;

/// How a request arrived, so that its reply leaves the same way.
#[derive(Debug, Clone, Copy)]
pub enum Via {
    /// Through a kernel UDP socket: the reply goes back by `sendmmsg`.
    Kernel,
    /// As a frame on the AF_XDP socket: the reply is built as a whole frame. `dst` holds the
    /// local address the reply comes from.
    Frame(FrameInfo),
}

/// Where the sync thread sends ACKs once durable, by I/O path.
#[derive(Debug)]
pub enum IoAckSink {
    /// Straight out of this handle on the worker's socket.
    Socket(DhcpSocket),
    /// Back to the worker, which owns the rings; `wake` is its eventfd.
    Worker {
        to_worker: Sender<AckBatch>,
        wake: std::sync::Arc<OwnedFd>,
    },
}

impl AckSink for IoAckSink {
    fn deliver(&mut self, batch: AckBatch, counters: &Counters) -> Option<AckBatch> {
        match self {
            IoAckSink::Socket(sock) => {
                send_kernel(
                    sock,
                    batch
                        .replies
                        .iter()
                        .map(|(r, d, _)| (&batch.data[r.clone()], *d)),
                    counters,
                );
                Some(batch)
            }
            IoAckSink::Worker { to_worker, wake } => {
                if to_worker.send(batch).is_ok() {
                    let one = 1u64;
                    // SAFETY: writing 8 bytes from a live u64 to our eventfd.
                    unsafe { libc::write(wake.as_raw_fd(), (&raw const one).cast(), 8) };
                }
                None
            }
        }
    }
}

pub(crate) fn send_kernel<'a>(
    sock: &DhcpSocket,
    replies: impl ExactSizeIterator<Item = (&'a [u8], Destination)>,
    counters: &Counters,
) {
    if replies.len() == 0 {
        return;
    }
    for _ in 0..sock.send_batch(replies) {
        counters.dropped(Drop::SendFailed);
    }
}

/// The socket path: one reuseport socket, recvmmsg/sendmmsg.
#[derive(Debug)]
pub struct SocketIo {
    pub(crate) sock: DhcpSocket,
    rx: RecvBatch,
    n: usize,
}

impl SocketIo {
    pub fn new(sock: DhcpSocket) -> Self {
        SocketIo {
            sock,
            rx: receive_buffers(),
            n: 0,
        }
    }
}

/// One request of an XDP batch: in the socket's receive buffers or in a UMEM frame.
#[derive(Debug, Clone, Copy)]
enum Item {
    Sock(usize),
    Frame {
        at: (usize, usize),
        payload: (usize, usize),
        info: FrameInfo,
        meta: Meta,
    },
}

/// The interface an XDP worker serves.
#[derive(Debug, Clone, Copy)]
pub struct XdpIface {
    pub ifindex: u32,
    pub mac: [u8; 6],
    /// The interface's own address: the source of replies to broadcast requests.
    pub addr: Ipv4Addr,
}

/// The XDP path: the shard's AF_XDP socket (when its queue exists) and its reuseport socket for
/// the DHCP the XDP program passes to the kernel (IP options, another queue).
#[derive(Debug)]
pub struct XdpIo {
    xsk: Option<Xsk>,
    sock: DhcpSocket,
    iface: XdpIface,
    rx: RecvBatch,
    frames: Vec<(usize, usize)>,
    items: Vec<Item>,
    wake: std::sync::Arc<OwnedFd>,
    acks: Receiver<AckBatch>,
    to_worker: Sender<AckBatch>,
    recycle: Option<Sender<AckBatch>>,
    frame_errors: RateLimit,
    /// Batches taken straight from a busy RX ring since the last poll.
    busy: u32,
    /// Frames the userspace parser refused, by reason (the XDP program checked them already,
    /// so these stay 0 unless the two disagree).
    pub bad_frames: u64,
}

impl XdpIo {
    pub fn new(xsk: Option<Xsk>, sock: DhcpSocket, iface: XdpIface) -> io::Result<Self> {
        // SAFETY: plain eventfd(2); checked below.
        let raw = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a fresh descriptor we own.
        let wake = std::sync::Arc::new(unsafe { OwnedFd::from_raw_fd(raw) });
        let (to_worker, acks) = crossbeam_channel::unbounded();
        Ok(XdpIo {
            xsk,
            sock,
            iface,
            rx: receive_buffers(),
            frames: Vec::with_capacity(BATCH),
            items: Vec::with_capacity(2 * BATCH),
            wake,
            acks,
            to_worker,
            recycle: None,
            frame_errors: RateLimit::per_sec(5),
            busy: 0,
            bad_frames: 0,
        })
    }

    pub fn xsk(&self) -> Option<&Xsk> {
        self.xsk.as_ref()
    }

    fn send_acks(&mut self, counters: &Counters) {
        while let Ok(mut b) = self.acks.try_recv() {
            let data = std::mem::take(&mut b.data);
            self.send(
                b.replies.iter().map(|(r, d, v)| (&data[r.clone()], *d, *v)),
                counters,
            );
            b.data = data;
            b.clear();
            if let Some(r) = &self.recycle {
                let _ = r.send(b);
            }
        }
    }

    fn reply_addr(&self, info: &FrameInfo, dest: Destination) -> ReplyAddr {
        let (dst_mac, dst) = match dest {
            Destination::Relay(a) | Destination::Client(a) => (info.src_mac, a),
            Destination::Broadcast { .. } => {
                ([0xff; 6], SocketAddrV4::new(Ipv4Addr::BROADCAST, 68))
            }
        };
        ReplyAddr {
            src_mac: self.iface.mac,
            dst_mac,
            src: info.dst,
            dst,
        }
    }

    fn recv(&mut self, counters: &Counters) -> io::Result<usize> {
        self.items.clear();
        self.frames.clear();
        if let Some(x) = &mut self.xsk {
            x.release_rx();
        }
        self.send_acks(counters);
        let mut fds = [
            libc::pollfd {
                fd: self.sock.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: self.wake.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: self.xsk.as_ref().map_or(-1, |x| x.as_raw_fd()),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // Under load the RX ring is rarely empty: take from it without a syscall, and look at
        // the socket and the eventfd only every few batches (ACKs come back through the channel,
        // which `send_acks` drains on every call anyway).
        let skip_poll = self.busy < 8 && self.xsk.as_ref().is_some_and(|x| x.rx_pending());
        if skip_poll {
            self.busy += 1;
        } else {
            self.busy = 0;
            // SAFETY: `fds` is a live array of 3 pollfds.
            let r = unsafe { libc::poll(fds.as_mut_ptr(), 3, 200) };
            if r < 0 {
                let e = io::Error::last_os_error();
                return if e.kind() == io::ErrorKind::Interrupted {
                    Ok(0)
                } else {
                    Err(e)
                };
            }
        }
        if fds[1].revents & libc::POLLIN != 0 {
            let mut v = 0u64;
            // SAFETY: reading 8 bytes into a live u64 from our eventfd.
            unsafe { libc::read(self.wake.as_raw_fd(), (&raw mut v).cast(), 8) };
            self.send_acks(counters);
        }
        if let Some(x) = &mut self.xsk {
            x.recv(BATCH, &mut self.frames);
            for &at in &self.frames {
                let bytes = x.frame(at);
                match frame::parse(bytes) {
                    Ok((mut info, payload)) => {
                        let local = match *info.dst.ip() {
                            ip if ip.is_broadcast() || ip.is_unspecified() => self.iface.addr,
                            ip => ip,
                        };
                        info.dst = SocketAddrV4::new(local, info.dst.port());
                        let meta = Meta {
                            src: info.src,
                            local,
                            ifindex: self.iface.ifindex,
                            received: None,
                        };
                        self.items.push(Item::Frame {
                            at,
                            payload: (payload.start, payload.end),
                            info,
                            meta,
                        });
                    }
                    Err(e) => {
                        self.bad_frames += 1;
                        counters.dropped(Drop::MalformedRequest);
                        log_frame_error(&mut self.frame_errors, e, bytes.len());
                    }
                }
            }
        }
        if fds[0].revents & libc::POLLIN != 0 {
            let n = self.sock.recv_batch_now(&mut self.rx)?;
            self.items.extend((0..n).map(Item::Sock));
        }
        Ok(self.items.len())
    }

    fn get(&self, i: usize) -> (&[u8], Meta, Via) {
        match self.items[i] {
            Item::Sock(j) => {
                let (p, m) = self.rx.get(j);
                (p, m, Via::Kernel)
            }
            Item::Frame {
                at,
                payload,
                info,
                meta,
            } => {
                let bytes = self.xsk.as_ref().map_or(&[][..], |x| x.frame(at));
                let p = bytes.get(payload.0..payload.1).unwrap_or(&[]);
                (p, meta, Via::Frame(info))
            }
        }
    }

    fn send<'a>(
        &mut self,
        replies: impl Iterator<Item = (&'a [u8], Destination, Via)>,
        counters: &Counters,
    ) {
        let mut kernel: Vec<(&[u8], Destination)> = Vec::new();
        let mut queued = false;
        for (data, dest, via) in replies {
            match via {
                Via::Kernel => kernel.push((data, dest)),
                Via::Frame(info) => {
                    let addr = self.reply_addr(&info, dest);
                    let ok = self
                        .xsk
                        .as_mut()
                        .is_some_and(|x| x.queue_tx(|buf| frame::build(&info, &addr, data, buf)));
                    if ok {
                        queued = true;
                    } else {
                        counters.dropped(Drop::SendFailed);
                    }
                }
            }
        }
        if queued && let Some(x) = &mut self.xsk {
            x.kick_tx();
        }
        send_kernel(&self.sock, kernel.into_iter(), counters);
    }
}

fn log_frame_error(limit: &mut RateLimit, e: FrameError, len: usize) {
    if let Some(held) = limit.allow() {
        tracing::warn!(
            reason = e.label(),
            len,
            suppressed = held,
            "dropped AF_XDP frame"
        );
    }
}

/// A worker's I/O, by path.
#[derive(Debug)]
pub enum WorkerIo {
    Sockets(SocketIo),
    Xdp(Box<XdpIo>),
    Uring(Box<UringIo>),
}

impl WorkerIo {
    /// The sink the sync thread delivers durable ACKs to; `recycle` takes emptied batches.
    pub(crate) fn ack_sink(&mut self, recycle: &Sender<AckBatch>) -> io::Result<IoAckSink> {
        match self {
            WorkerIo::Sockets(s) => Ok(IoAckSink::Socket(s.sock.try_clone()?)),
            WorkerIo::Uring(u) => Ok(IoAckSink::Socket(u.sock.try_clone()?)),
            WorkerIo::Xdp(x) => {
                x.recycle = Some(recycle.clone());
                Ok(IoAckSink::Worker {
                    to_worker: x.to_worker.clone(),
                    wake: std::sync::Arc::clone(&x.wake),
                })
            }
        }
    }

    /// Waits for and takes the next batch of requests; 0 on timeout.
    pub(crate) fn recv(&mut self, counters: &Counters) -> io::Result<usize> {
        match self {
            WorkerIo::Sockets(s) => {
                s.n = s.sock.recv_batch(&mut s.rx)?;
                Ok(s.n)
            }
            WorkerIo::Xdp(x) => x.recv(counters),
            WorkerIo::Uring(u) => u.recv(counters),
        }
    }

    pub(crate) fn get(&self, i: usize) -> (&[u8], Meta, Via) {
        match self {
            WorkerIo::Sockets(s) => {
                let (p, m) = s.rx.get(i);
                (p, m, Via::Kernel)
            }
            WorkerIo::Xdp(x) => x.get(i),
            WorkerIo::Uring(u) => {
                let (p, m) = u.get(i);
                (p, m, Via::Kernel)
            }
        }
    }

    pub(crate) fn send<'a>(
        &mut self,
        replies: impl ExactSizeIterator<Item = (&'a [u8], Destination, Via)>,
        counters: &Counters,
    ) {
        match self {
            WorkerIo::Sockets(s) => send_kernel(&s.sock, replies.map(|(p, d, _)| (p, d)), counters),
            WorkerIo::Xdp(x) => x.send(replies, counters),
            WorkerIo::Uring(u) => u.send(replies.map(|(p, d, _)| (p, d)), counters),
        }
    }

    /// ACKs handed back by the sync thread and not yet sent (XDP path), sent now.
    pub(crate) fn flush(&mut self, counters: &Counters) {
        if let WorkerIo::Xdp(x) = self {
            x.send_acks(counters);
        }
    }
}
