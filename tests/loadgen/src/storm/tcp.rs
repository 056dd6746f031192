//! One device's TCP connection to an HTTP server, non-blocking, from the device's own leased
//! address: connect, write the request, read until a whole response is in (see
//! [`super::http::parse`]). The engine drives it from epoll.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, RawFd};

use super::http::{self, Parsed, Response};

/// A connection and what is in flight on it.
#[derive(Debug)]
pub struct Conn {
    stream: TcpStream,
    /// The handshake finished.
    connected: bool,
    out: Vec<u8>,
    sent: usize,
    inbuf: Vec<u8>,
    /// Whether epoll watches for writability (connecting or writing) rather than input.
    pub wants_out: bool,
}

/// What an event on the connection came to.
#[derive(Debug)]
pub enum Progress {
    /// Nothing whole yet.
    Pending,
    Response(Response),
    Failed(String),
}

/// A non-blocking socket bound to `from`, connecting to `to`.
pub fn connect_from(from: Ipv4Addr, to: SocketAddrV4) -> io::Result<Conn> {
    // SAFETY: plain syscall; the descriptor is owned by the TcpStream below.
    let fd = unsafe {
        libc::socket(
            libc::AF_INET,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor nobody else owns.
    let stream = unsafe { TcpStream::from_raw_fd(fd) };
    let sa = crate::io::sockaddr;
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    let local = sa(SocketAddrV4::new(from, 0));
    // SAFETY: `local` is a valid sockaddr_in of `len` bytes.
    if unsafe { libc::bind(fd, (&raw const local).cast(), len) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let peer = sa(to);
    // SAFETY: `peer` is a valid sockaddr_in of `len` bytes.
    if unsafe { libc::connect(fd, (&raw const peer).cast(), len) } != 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINPROGRESS) {
            return Err(e);
        }
    }
    stream.set_nodelay(true)?;
    Ok(Conn {
        stream,
        connected: false,
        out: Vec::new(),
        sent: 0,
        inbuf: Vec::new(),
        wants_out: true,
    })
}

impl Conn {
    pub fn fd(&self) -> RawFd {
        self.stream.as_raw_fd()
    }

    /// Queues a request (the previous response is read by now).
    pub fn send(&mut self, request: Vec<u8>) {
        self.out = request;
        self.sent = 0;
        self.wants_out = true;
    }

    /// Writability: the handshake's end, then as much of the request as the socket takes.
    pub fn on_writable(&mut self) -> Progress {
        if !self.connected {
            match self.stream.take_error() {
                Ok(None) => self.connected = true,
                Ok(Some(e)) | Err(e) => return Progress::Failed(format!("connect: {e}")),
            }
        }
        while self.sent < self.out.len() {
            match self.stream.write(&self.out[self.sent..]) {
                Ok(n) => self.sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Progress::Pending,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Progress::Failed(format!("write: {e}")),
            }
        }
        self.wants_out = false;
        Progress::Pending
    }

    /// Input: reads what has come and returns the response once it is whole.
    pub fn on_readable(&mut self) -> Progress {
        let mut eof = false;
        let mut chunk = [0u8; 16 << 10];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(n) => self.inbuf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Progress::Failed(format!("read: {e}")),
            }
            if self.inbuf.len() > http::MAX_RESPONSE * 2 {
                break;
            }
        }
        match http::parse(&self.inbuf) {
            Parsed::Done(r, used) => {
                self.inbuf.drain(..used);
                Progress::Response(r)
            }
            Parsed::Bad(why) => Progress::Failed(format!("bad response: {why}")),
            Parsed::More if eof => Progress::Failed(if self.inbuf.is_empty() {
                "connection closed".into()
            } else {
                "connection closed mid-response".into()
            }),
            Parsed::More => Progress::Pending,
        }
    }
}
