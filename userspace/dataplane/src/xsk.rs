//! An AF_XDP socket in plain libc: one UMEM per socket (half its frames for receiving, half for
//! sending), the fill, completion, RX and TX rings mmapped from the kernel, bound to one queue
//! of one interface in copy mode (veth and most drivers) or zero-copy when the driver allows.
//!
//! Ring protocol (linux/Documentation/networking/af_xdp.rst): producer and consumer indices are
//! free-running u32s shared with the kernel; we publish with a release store after writing
//! descriptors and read the kernel's index with an acquire load before reading its descriptors.
//! All `unsafe` of AF_XDP lives in this file.

use std::io;
use std::mem::size_of;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};

/// Bytes per UMEM frame (chunk).
pub const FRAME: usize = 2048;
/// Frames per socket: the first half is for receiving (fill ring), the second for sending.
const FRAMES: usize = 4096;
/// Entries per ring (a power of two).
const RING: u32 = 2048;

/// Whether a socket was bound zero-copy or copy mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindMode {
    ZeroCopy,
    Copy,
}

/// One mmapped ring of `T` descriptors.
struct Ring<T> {
    producer: NonNull<AtomicU32>,
    consumer: NonNull<AtomicU32>,
    flags: NonNull<u32>,
    descs: NonNull<T>,
    mask: u32,
    map: NonNull<libc::c_void>,
    map_len: usize,
}

impl<T> Ring<T> {
    /// Maps the ring whose offsets are `off` at page offset `pgoff` of `fd`.
    fn map(fd: RawFd, off: &libc::xdp_ring_offset, pgoff: u64) -> io::Result<Self> {
        let map_len = off.desc as usize + RING as usize * size_of::<T>();
        // SAFETY: a fresh shared mapping of the kernel's ring; the kernel checks the length.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                fd,
                pgoff as libc::off_t,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let base = p.cast::<u8>();
        // SAFETY: the offsets come from XDP_MMAP_OFFSETS for this socket and lie within map_len.
        unsafe {
            Ok(Ring {
                producer: NonNull::new_unchecked(base.add(off.producer as usize).cast()),
                consumer: NonNull::new_unchecked(base.add(off.consumer as usize).cast()),
                flags: NonNull::new_unchecked(base.add(off.flags as usize).cast()),
                descs: NonNull::new_unchecked(base.add(off.desc as usize).cast()),
                mask: RING - 1,
                map: NonNull::new_unchecked(p),
                map_len,
            })
        }
    }

    fn producer(&self) -> &AtomicU32 {
        // SAFETY: points into the live mapping; the kernel only uses it atomically too.
        unsafe { self.producer.as_ref() }
    }

    fn consumer(&self) -> &AtomicU32 {
        // SAFETY: as above.
        unsafe { self.consumer.as_ref() }
    }

    fn slot(&self, idx: u32) -> *mut T {
        // SAFETY: masked index < RING, the number of descriptors mapped.
        unsafe { self.descs.as_ptr().add((idx & self.mask) as usize) }
    }

    fn needs_wakeup(&self) -> bool {
        // SAFETY: flags word in the live mapping; a racy read only delays a wakeup.
        unsafe { std::ptr::read_volatile(self.flags.as_ptr()) & libc::XDP_RING_NEED_WAKEUP != 0 }
    }

    /// Producer side (fill, TX): writes `items` if all fit; returns how many were written.
    fn produce(&self, items: impl ExactSizeIterator<Item = T>) -> u32 {
        let prod = self.producer().load(Ordering::Relaxed);
        let cons = self.consumer().load(Ordering::Acquire);
        let free = RING - prod.wrapping_sub(cons);
        let mut n = 0u32;
        for item in items.take(free as usize) {
            // SAFETY: the slot is between our producer and the kernel's consumer: ours.
            unsafe { self.slot(prod.wrapping_add(n)).write(item) };
            n += 1;
        }
        self.producer()
            .store(prod.wrapping_add(n), Ordering::Release);
        n
    }

    /// Consumer side (RX, completion): calls `f` on up to `max` descriptors, then releases them.
    fn consume(&self, max: u32, mut f: impl FnMut(T)) -> u32
    where
        T: Copy,
    {
        let cons = self.consumer().load(Ordering::Relaxed);
        let prod = self.producer().load(Ordering::Acquire);
        let n = prod.wrapping_sub(cons).min(max);
        for i in 0..n {
            // SAFETY: slots between our consumer and the kernel's producer are filled.
            f(unsafe { self.slot(cons.wrapping_add(i)).read() });
        }
        self.consumer()
            .store(cons.wrapping_add(n), Ordering::Release);
        n
    }
}

impl<T> Drop for Ring<T> {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly what map() mapped; nothing refers to it after drop.
        unsafe { libc::munmap(self.map.as_ptr(), self.map_len) };
    }
}

/// An AF_XDP socket with its own UMEM, bound to one queue.
pub struct Xsk {
    fd: OwnedFd,
    umem: NonNull<u8>,
    umem_len: usize,
    fill: Ring<u64>,
    comp: Ring<u64>,
    rx: Ring<libc::xdp_desc>,
    tx: Ring<libc::xdp_desc>,
    /// Free TX frames (UMEM offsets).
    free_tx: Vec<u64>,
    /// RX frames handed out by the last `recv`, to give back to the fill ring.
    held: Vec<u64>,
    mode: BindMode,
    queue: u32,
}

// SAFETY: the raw pointers refer to mappings owned by this value alone; moving it to another
// thread moves that ownership. It is not Sync: one thread drives the rings.
unsafe impl Send for Xsk {}

impl std::fmt::Debug for Xsk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Xsk")
            .field("fd", &self.fd)
            .field("queue", &self.queue)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

fn setsockopt<T>(fd: RawFd, name: i32, val: &T) -> io::Result<()> {
    // SAFETY: `val` is a live T of the size passed; the kernel only reads it.
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_XDP,
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

impl Xsk {
    /// Opens a socket on (`ifindex`, `queue`): zero-copy if `zero_copy` and the driver allows,
    /// else copy mode.
    pub fn open(ifindex: u32, queue: u32, zero_copy: bool) -> io::Result<Self> {
        if zero_copy {
            match Self::open_mode(ifindex, queue, BindMode::ZeroCopy) {
                Ok(x) => return Ok(x),
                Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => {}
                Err(e) => return Err(e),
            }
        }
        Self::open_mode(ifindex, queue, BindMode::Copy)
    }

    fn open_mode(ifindex: u32, queue: u32, mode: BindMode) -> io::Result<Self> {
        // SAFETY: plain socket(2) call; the result is checked before use.
        let raw = unsafe { libc::socket(libc::AF_XDP, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a fresh descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let umem_len = FRAMES * FRAME;
        // SAFETY: anonymous private mapping, checked below.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                umem_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let umem = NonNull::new(p.cast::<u8>()).ok_or_else(|| io::Error::other("null UMEM"))?;
        // From here the UMEM is unmapped by a guard until the Xsk owns it.
        struct Unmap(NonNull<u8>, usize);
        impl Drop for Unmap {
            fn drop(&mut self) {
                // SAFETY: the mapping made above, not referenced after this.
                unsafe { libc::munmap(self.0.as_ptr().cast(), self.1) };
            }
        }
        let guard = Unmap(umem, umem_len);
        let fdr = fd.as_raw_fd();
        let reg = libc::xdp_umem_reg {
            addr: umem.as_ptr() as u64,
            len: umem_len as u64,
            chunk_size: FRAME as u32,
            headroom: 0,
            flags: 0,
            tx_metadata_len: 0,
        };
        setsockopt(fdr, libc::XDP_UMEM_REG, &reg)?;
        setsockopt(fdr, libc::XDP_UMEM_FILL_RING, &RING)?;
        setsockopt(fdr, libc::XDP_UMEM_COMPLETION_RING, &RING)?;
        setsockopt(fdr, libc::XDP_RX_RING, &RING)?;
        setsockopt(fdr, libc::XDP_TX_RING, &RING)?;
        // SAFETY: all-zero is a valid xdp_mmap_offsets; the kernel fills it.
        let mut off: libc::xdp_mmap_offsets = unsafe { std::mem::zeroed() };
        let mut len = size_of::<libc::xdp_mmap_offsets>() as libc::socklen_t;
        // SAFETY: `off` is writable for `len` bytes.
        let r = unsafe {
            libc::getsockopt(
                fdr,
                libc::SOL_XDP,
                libc::XDP_MMAP_OFFSETS,
                (&raw mut off).cast(),
                &mut len,
            )
        };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        let fill = Ring::<u64>::map(fdr, &off.fr, libc::XDP_UMEM_PGOFF_FILL_RING)?;
        let comp = Ring::<u64>::map(fdr, &off.cr, libc::XDP_UMEM_PGOFF_COMPLETION_RING)?;
        let rx = Ring::<libc::xdp_desc>::map(fdr, &off.rx, libc::XDP_PGOFF_RX_RING as u64)?;
        let tx = Ring::<libc::xdp_desc>::map(fdr, &off.tx, libc::XDP_PGOFF_TX_RING as u64)?;
        // Give the kernel every receive frame before binding.
        let rx_frames = FRAMES / 2;
        let filled = fill.produce((0..rx_frames.min(RING as usize)).map(|i| (i * FRAME) as u64));
        debug_assert_eq!(filled as usize, rx_frames.min(RING as usize));
        let flags = match mode {
            BindMode::ZeroCopy => libc::XDP_ZEROCOPY,
            BindMode::Copy => libc::XDP_COPY,
        } | libc::XDP_USE_NEED_WAKEUP;
        let sa = libc::sockaddr_xdp {
            sxdp_family: libc::AF_XDP as u16,
            sxdp_flags: flags,
            sxdp_ifindex: ifindex,
            sxdp_queue_id: queue,
            sxdp_shared_umem_fd: 0,
        };
        // SAFETY: `sa` is a valid sockaddr_xdp of the size passed.
        let r = unsafe {
            libc::bind(
                fdr,
                (&raw const sa).cast(),
                size_of::<libc::sockaddr_xdp>() as libc::socklen_t,
            )
        };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        std::mem::forget(guard);
        Ok(Xsk {
            fd,
            umem,
            umem_len,
            fill,
            comp,
            rx,
            tx,
            free_tx: (rx_frames..FRAMES).map(|i| (i * FRAME) as u64).collect(),
            held: Vec::with_capacity(RING as usize),
            mode,
            queue,
        })
    }

    pub fn mode(&self) -> BindMode {
        self.mode
    }

    pub fn queue(&self) -> u32 {
        self.queue
    }

    /// Whether received frames are waiting in the RX ring (no syscall).
    pub fn rx_pending(&self) -> bool {
        let cons = self.rx.consumer().load(Ordering::Relaxed);
        self.rx.producer().load(Ordering::Acquire) != cons
    }

    /// Gives the frames of the last receive back to the kernel.
    pub fn release_rx(&mut self) {
        if self.held.is_empty() {
            return;
        }
        let n = self.fill.produce(self.held.iter().copied()) as usize;
        // The fill ring holds every RX frame, so they always fit; keep any leftover for next time.
        self.held.drain(..n);
    }

    /// Takes up to `max` received frames, as (UMEM offset, length) pairs checked to lie inside the
    /// UMEM; the frames stay ours until [`Xsk::release_rx`].
    pub fn recv(&mut self, max: usize, out: &mut Vec<(usize, usize)>) -> usize {
        let umem_len = self.umem_len;
        let held = &mut self.held;
        let n = self.rx.consume(max as u32, |d: libc::xdp_desc| {
            let addr = d.addr as usize;
            let chunk = (addr / FRAME) * FRAME;
            held.push(chunk as u64);
            // Never trust the descriptor: the frame must end inside its own chunk and the UMEM.
            let len = d.len as usize;
            if addr < umem_len && addr + len <= (chunk + FRAME).min(umem_len) {
                out.push((addr, len));
            } else {
                out.push((addr.min(umem_len), 0));
            }
        });
        if n == 0 && self.fill.needs_wakeup() {
            self.kick_rx();
        }
        n as usize
    }

    /// The bytes at (offset, length) of a frame returned by `recv`.
    pub fn frame(&self, at: (usize, usize)) -> &[u8] {
        let (addr, len) = at;
        if addr.checked_add(len).is_none_or(|e| e > self.umem_len) {
            return &[];
        }
        // SAFETY: bounds checked against the UMEM just above; the kernel does not write a frame
        // while it is between RX and fill, which is when callers read it.
        unsafe { std::slice::from_raw_parts(self.umem.as_ptr().add(addr), len) }
    }

    /// Reclaims sent frames from the completion ring.
    fn reclaim(&mut self) {
        let free = &mut self.free_tx;
        self.comp.consume(RING, |addr: u64| {
            free.push((addr / FRAME as u64) * FRAME as u64)
        });
    }

    /// Builds one frame with `fill` into a free TX frame and queues it; false when no frame is
    /// free or `fill` wrote nothing.
    pub fn queue_tx(&mut self, fill: impl FnOnce(&mut [u8]) -> Option<usize>) -> bool {
        if self.free_tx.is_empty() {
            self.reclaim();
            if self.free_tx.is_empty() {
                self.kick_tx();
                self.reclaim();
            }
        }
        let Some(addr) = self.free_tx.pop() else {
            return false;
        };
        // SAFETY: `addr` is a TX chunk owned by us (not in any ring), FRAME bytes inside UMEM.
        let buf =
            unsafe { std::slice::from_raw_parts_mut(self.umem.as_ptr().add(addr as usize), FRAME) };
        let Some(len) = fill(buf).filter(|&l| l > 0 && l <= FRAME) else {
            self.free_tx.push(addr);
            return false;
        };
        let desc = libc::xdp_desc {
            addr,
            len: len as u32,
            options: 0,
        };
        if self.tx.produce(std::iter::once(desc)) == 1 {
            true
        } else {
            self.free_tx.push(addr);
            false
        }
    }

    /// Tells the kernel to send what is queued (copy mode always needs the syscall).
    pub fn kick_tx(&mut self) {
        if self.mode == BindMode::Copy || self.tx.needs_wakeup() {
            // SAFETY: a zero-length sendto on our socket only wakes the kernel's TX path.
            unsafe {
                libc::sendto(
                    self.fd.as_raw_fd(),
                    std::ptr::null(),
                    0,
                    libc::MSG_DONTWAIT,
                    std::ptr::null(),
                    0,
                )
            };
        }
        self.reclaim();
    }

    fn kick_rx(&self) {
        // SAFETY: a zero-length non-blocking recvfrom only wakes the kernel's RX path.
        unsafe {
            libc::recvfrom(
                self.fd.as_raw_fd(),
                std::ptr::null_mut(),
                0,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        };
    }
}

impl AsFd for Xsk {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for Xsk {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl Drop for Xsk {
    fn drop(&mut self) {
        // The rings unmap themselves; the socket closes with `fd` after this.
        // SAFETY: the UMEM mapping made in open_mode, referenced by nothing after drop.
        unsafe { libc::munmap(self.umem.as_ptr().cast(), self.umem_len) };
    }
}
