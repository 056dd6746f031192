//! A tiny TFTP read server on loopback for the loop's tests: blksize, windowsize and tsize
//! options, ERROR 1 for unknown names, and optionally the first copy of some blocks dropped so
//! the client's gap handling and retransmission are exercised. One thread per transfer.

use std::collections::{HashMap, HashSet};
use std::net::{SocketAddr, SocketAddrV4, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use super::packet::{self, Packet};

#[derive(Debug, Clone, Copy, Default)]
pub struct Behaviour {
    /// Drop the first transmission of every block whose number is a multiple of this (0: none).
    pub drop_every: u64,
}

#[derive(Debug)]
pub struct TestServer {
    addr: SocketAddrV4,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl TestServer {
    pub fn start(files: HashMap<String, Vec<u8>>, how: Behaviour) -> TestServer {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        let SocketAddr::V4(addr) = sock.local_addr().unwrap() else {
            unreachable!()
        };
        let stop = Arc::new(AtomicBool::new(false));
        let files = Arc::new(files);
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while !flag.load(Ordering::Relaxed) {
                let Ok((n, SocketAddr::V4(client))) = sock.recv_from(&mut buf) else {
                    continue;
                };
                let req = buf[..n].to_vec();
                let files = Arc::clone(&files);
                let flag = Arc::clone(&flag);
                std::thread::spawn(move || serve(&req, client, &files, how, &flag));
            }
        });
        TestServer {
            addr,
            stop,
            thread: Some(thread),
        }
    }

    pub fn addr(&self) -> SocketAddrV4 {
        self.addr
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(
    req: &[u8],
    client: SocketAddrV4,
    files: &HashMap<String, Vec<u8>>,
    how: Behaviour,
    stop: &AtomicBool,
) {
    let Ok(Packet::Request {
        write: false,
        name,
        options,
        ..
    }) = packet::parse(req)
    else {
        return;
    };
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.connect(client).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(30)))
        .unwrap();
    let mut out = Vec::new();
    let Some(content) = files.get(name) else {
        packet::error(&mut out, packet::ERR_NOT_FOUND, "File not found");
        let _ = sock.send(&out);
        return;
    };
    let (mut blksize, mut window) = (512usize, 1u64);
    let mut answer = Vec::new();
    for (k, v) in options {
        match k.to_ascii_lowercase().as_str() {
            "blksize" => {
                blksize = v.parse::<usize>().unwrap().min(65464);
                answer.push(("blksize", blksize.to_string()));
            }
            "windowsize" => {
                window = v.parse().unwrap();
                answer.push(("windowsize", window.to_string()));
            }
            "tsize" => answer.push(("tsize", content.len().to_string())),
            _ => {}
        }
    }
    let mut buf = [0u8; 1024];
    let mut tries = 0;
    // Blocks are numbered from 1; `acked` is the highest block the client has confirmed.
    let last = content.len() as u64 / blksize as u64 + 1;
    let mut acked = 0u64;
    let mut dropped = HashSet::new();
    if !answer.is_empty() {
        packet::oack(&mut out, &answer);
        loop {
            let _ = sock.send(&out);
            if let Ok(n) = sock.recv(&mut buf)
                && packet::parse(&buf[..n]) == Ok(Packet::Ack { block: 0 })
            {
                break;
            }
            tries += 1;
            if tries > 50 || stop.load(Ordering::Relaxed) {
                return;
            }
        }
    }
    tries = 0;
    while acked < last {
        for b in acked + 1..=(acked + window).min(last) {
            if how.drop_every > 0 && b % how.drop_every == 0 && dropped.insert(b) {
                continue;
            }
            let from = ((b - 1) as usize * blksize).min(content.len());
            let to = (from + blksize).min(content.len());
            packet::data(&mut out, b as u16, &content[from..to]);
            let _ = sock.send(&out);
        }
        match sock.recv(&mut buf).map(|n| packet::parse(&buf[..n])) {
            Ok(Ok(Packet::Ack { block })) => {
                // The absolute block this 16-bit number names, at or after `acked`.
                let ahead = u64::from(block.wrapping_sub(acked as u16));
                if ahead <= window {
                    acked += ahead;
                    tries = 0;
                }
            }
            _ => {
                tries += 1;
                if tries > 50 || stop.load(Ordering::Relaxed) {
                    return;
                }
            }
        }
    }
}
