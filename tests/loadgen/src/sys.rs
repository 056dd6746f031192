//! The few system calls the event-driven generators share: an epoll set, socket buffer sizes,
//! the process's CPU time and its open-files limit.

use std::io;
use std::net::UdpSocket;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use anyhow::{Context, Result, bail};

/// An epoll set: level-triggered, readable, with a u64 token per descriptor.
#[derive(Debug)]
pub struct Epoll(OwnedFd);

impl Epoll {
    pub fn new() -> Result<Epoll> {
        // SAFETY: plain syscall; the descriptor it returns is owned by the OwnedFd below.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error()).context("epoll_create1");
        }
        // SAFETY: `fd` is a fresh descriptor nobody else owns.
        Ok(Epoll(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    pub fn add(&self, fd: RawFd, token: u64) -> Result<()> {
        self.ctl(libc::EPOLL_CTL_ADD, fd, token, false)
            .context("epoll_ctl(ADD)")
    }

    /// Watches `fd` for output (`out`) or for input; adds it when `add`, else changes it.
    pub fn watch(&self, fd: RawFd, token: u64, out: bool, add: bool) -> io::Result<()> {
        let op = if add {
            libc::EPOLL_CTL_ADD
        } else {
            libc::EPOLL_CTL_MOD
        };
        self.ctl(op, fd, token, out)
    }

    fn ctl(&self, op: libc::c_int, fd: RawFd, token: u64, out: bool) -> io::Result<()> {
        let mut ev = libc::epoll_event {
            events: if out {
                libc::EPOLLOUT as u32
            } else {
                libc::EPOLLIN as u32 | libc::EPOLLRDHUP as u32
            },
            u64: token,
        };
        // SAFETY: both descriptors are open; `ev` is a valid epoll_event for the call.
        let r = unsafe { libc::epoll_ctl(self.0.as_raw_fd(), op, fd, &raw mut ev) };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Waits up to `timeout` (rounded up to a millisecond) for readable descriptors.
    pub fn wait(&self, events: &mut [libc::epoll_event], timeout: Duration) -> Result<usize> {
        let ms = timeout.as_micros().div_ceil(1000).min(1000) as i32;
        // SAFETY: `events` is a valid, exclusively borrowed array of the length given.
        let n = unsafe {
            libc::epoll_wait(
                self.0.as_raw_fd(),
                events.as_mut_ptr(),
                events.len().min(i32::MAX as usize) as i32,
                ms,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                return Ok(0);
            }
            return Err(e).context("epoll_wait");
        }
        Ok(n as usize)
    }
}

/// Sets a socket's receive and send buffers to `bytes`, past the system limits when allowed
/// (root), else as far as they let it; best effort.
pub fn set_buffers(sock: &UdpSocket, bytes: libc::c_int) {
    let set = |opt: libc::c_int| {
        // SAFETY: the descriptor is open; the value is a valid c_int of the length given.
        unsafe {
            libc::setsockopt(
                sock.as_raw_fd(),
                libc::SOL_SOCKET,
                opt,
                (&raw const bytes).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            ) == 0
        }
    };
    for (force, plain) in [
        (libc::SO_RCVBUFFORCE, libc::SO_RCVBUF),
        (libc::SO_SNDBUFFORCE, libc::SO_SNDBUF),
    ] {
        if !set(force) {
            set(plain);
        }
    }
}

/// User + system CPU time of this process so far.
pub fn cpu_time() -> Duration {
    // SAFETY: an all-zero rusage is a valid value for getrusage to overwrite.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes one rusage into the valid, exclusively borrowed `ru`.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &raw mut ru) } != 0 {
        return Duration::ZERO;
    }
    let tv = |t: libc::timeval| {
        Duration::new(
            t.tv_sec.max(0) as u64,
            (t.tv_usec.clamp(0, 999_999) as u32) * 1000,
        )
    };
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Raises the open-files limit to `need`: the soft limit, and the hard one too when it is lower
/// and the process may (root).
pub fn ensure_open_files(need: u64) -> Result<()> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into the valid, exclusively borrowed `lim`.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &raw mut lim) } != 0 {
        return Err(io::Error::last_os_error()).context("getrlimit(RLIMIT_NOFILE)");
    }
    if lim.rlim_cur >= need {
        return Ok(());
    }
    let hard = lim.rlim_max;
    // Root may raise the hard limit too (up to fs.nr_open).
    lim.rlim_max = lim.rlim_max.max(need);
    lim.rlim_cur = need;
    // SAFETY: setrlimit reads one valid rlimit.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raw const lim) } != 0 {
        let e = io::Error::last_os_error();
        if hard < need {
            bail!(
                "the run needs {need} open files, the hard limit is {hard} and raising it failed: {e}"
            );
        }
        return Err(e).context("setrlimit(RLIMIT_NOFILE)");
    }
    Ok(())
}

/// Sets DF on what the socket sends (IP_PMTUDISC_DO): the kernel then gives the datagram IP ID
/// 0 instead of drawing one from its shared generator.
pub fn dont_fragment(fd: RawFd) -> io::Result<()> {
    let v: libc::c_int = libc::IP_PMTUDISC_DO;
    // SAFETY: the descriptor is open; the value is a valid c_int of the length given.
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_IP,
            libc::IP_MTU_DISCOVER,
            (&raw const v).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Datagrams the kernel dropped for this socket so far (full receive buffer): SO_MEMINFO's
/// SK_MEMINFO_DROPS. `None` where the kernel does not say.
pub fn socket_drops(fd: RawFd) -> Option<u32> {
    /// SK_MEMINFO_DROPS, and the number of SK_MEMINFO_* values (linux/sock_diag.h).
    const DROPS: usize = 8;
    const VARS: usize = 9;
    let mut v = [0u32; VARS];
    let mut len = size_of_val(&v) as libc::socklen_t;
    // SAFETY: the descriptor is open; `v` is a writable buffer of `len` bytes.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_MEMINFO,
            v.as_mut_ptr().cast(),
            &raw mut len,
        )
    };
    (r == 0 && len as usize > DROPS * size_of::<u32>()).then_some(v[DROPS])
}
