//! What the integration tests share: a server on loopback over a temporary root, and a tiny
//! TFTP client (RFC 1350 with RFC 2347/2348/2349/7440 options) built on provd-tftp's codec.

#![allow(dead_code)]

use std::net::{SocketAddr, SocketAddrV4, UdpSocket};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use provd_tftp::{Mode, Options, Packet, Request, ServerConfig, ack};
use provd_tftpd::{StaticRoot, TftpHandle, TftpSettings};

pub struct Running {
    pub handle: TftpHandle,
    pub root: tempfile::TempDir,
}

impl Running {
    pub fn addr(&self) -> SocketAddrV4 {
        self.handle.local_addr()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.handle.shutdown();
    }
}

/// Pseudo-random bytes, different per seed.
pub fn bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A server on 127.0.0.1 (any port) serving `files` (name, content) from a fresh root.
pub fn serve(files: &[(&str, &[u8])], workers: usize) -> Running {
    serve_on(
        files,
        workers,
        "127.0.0.1".parse().unwrap(),
        ServerConfig::default(),
    )
}

pub fn serve_on(
    files: &[(&str, &[u8])],
    workers: usize,
    bind: std::net::Ipv4Addr,
    server: ServerConfig,
) -> Running {
    serve_with(
        files,
        TftpSettings {
            bind,
            port: 0,
            workers,
            server,
            ..TftpSettings::default()
        },
    )
}

/// Serves `files` with `settings` (its port 0: any free one).
pub fn serve_with(files: &[(&str, &[u8])], settings: TftpSettings) -> Running {
    let root = tempfile::tempdir().unwrap();
    for (name, content) in files {
        let path = root.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
    let source = Arc::new(StaticRoot::new(root.path()).unwrap());
    let handle = provd_tftpd::spawn(settings, source, Arc::new(AtomicBool::new(false))).unwrap();
    Running { handle, root }
}

/// How a fetch ended badly.
#[derive(Debug, PartialEq, Eq)]
pub enum Failure {
    /// The server's ERROR: code and message.
    Error(u16, String),
    TimedOut,
}

/// What a fetch saw besides the bytes.
#[derive(Debug, Default)]
pub struct Fetched {
    pub data: Vec<u8>,
    pub oack: Option<Options>,
    /// The address the server's packets came from.
    pub server: Option<SocketAddr>,
}

/// Reads `name` from `server`: ACKs each window's last block (window 1 without windowsize),
/// re-sends its last packet on a 1 s timeout, five times at most.
pub fn fetch(
    server: SocketAddrV4,
    name: &str,
    mode: Mode,
    options: Options,
) -> Result<Fetched, Failure> {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let mut buf = [0u8; 70_000];
    let n = Packet::Rrq(Request {
        filename: name,
        mode,
        options,
    })
    .encode(&mut buf)
    .unwrap();
    let mut last: (Vec<u8>, SocketAddr) = (buf[..n].to_vec(), SocketAddr::V4(server));
    sock.send_to(&last.0, last.1).unwrap();
    let mut got = Fetched::default();
    let (mut blksize, mut window) = (512usize, 1u16);
    let mut expected: u16 = 1;
    let mut in_window = 0u16;
    let mut timeouts = 0;
    loop {
        let (n, from) = match sock.recv_from(&mut buf) {
            Ok(r) => r,
            Err(_) => {
                timeouts += 1;
                if timeouts > 5 {
                    return Err(Failure::TimedOut);
                }
                sock.send_to(&last.0, last.1).unwrap();
                continue;
            }
        };
        if got.server.is_some_and(|s| s != from) {
            continue; // not our transfer ID
        }
        got.server = Some(from);
        match Packet::parse(&buf[..n]).expect("server sent a valid packet") {
            Packet::Error { code, message } => {
                return Err(Failure::Error(
                    code.0,
                    String::from_utf8_lossy(message).into_owned(),
                ));
            }
            Packet::Oack(o) => {
                assert!(got.oack.is_none() || expected == 1, "OACK mid-transfer");
                got.oack = Some(o);
                blksize = usize::from(o.blksize.unwrap_or(512));
                window = o.windowsize.unwrap_or(1);
                last = (ack(0).to_vec(), from);
                sock.send_to(&last.0, from).unwrap();
            }
            Packet::Data { block, data } => {
                if block != expected {
                    // Out of order or repeated: ACK the last block received in order.
                    last = (ack(expected.wrapping_sub(1)).to_vec(), from);
                    in_window = 0;
                    sock.send_to(&last.0, from).unwrap();
                    continue;
                }
                timeouts = 0;
                got.data.extend_from_slice(data);
                expected = expected.wrapping_add(1);
                in_window += 1;
                let end = data.len() < blksize;
                if end || in_window == window {
                    in_window = 0;
                    last = (ack(block).to_vec(), from);
                    sock.send_to(&last.0, from).unwrap();
                }
                if end {
                    return Ok(got);
                }
            }
            other => panic!("unexpected packet {other:?}"),
        }
    }
}

/// Sends one datagram from a fresh socket and returns the single reply, if any within 1 s.
pub fn exchange(to: SocketAddr, datagram: &[u8]) -> Option<(Vec<u8>, SocketAddr)> {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    sock.send_to(datagram, to).unwrap();
    let mut buf = [0u8; 2048];
    let (n, from) = sock.recv_from(&mut buf).ok()?;
    Some((buf[..n].to_vec(), from))
}

pub fn write_file(root: &Path, name: &str, content: &[u8]) {
    std::fs::write(root.join(name), content).unwrap();
}

/// Waits up to 10 s for `cond`: workers publish their counters once per loop turn, just after
/// the datagrams of that turn are out. Generous because a loaded CI machine can starve a
/// worker for a while; the usual wait is milliseconds.
pub fn eventually(mut cond: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !cond() {
        if std::time::Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    true
}
