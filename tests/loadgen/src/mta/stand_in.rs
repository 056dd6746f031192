//! A tiny provisioning server on loopback standing in for provd in the fleet's tests: answers
//! INFORMs on its notification socket, SETs the URL and SHA-1 of a per-MAC file to the MTA's
//! agent port after each enrollment, serves the files over lock-step TFTP (512-byte blocks),
//! and counts what it saw. Misbehaviours on request: a wrong hash now and then, the first
//! answer to every INFORM withheld, every SET sent twice.

use std::collections::{HashMap, HashSet};
use std::net::{SocketAddr, SocketAddrV4, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use provd_snmp::{Message, Oid, PduType, Value, VarBind, Version, response_to};
use sha1::{Digest, Sha1};

use super::msg;
use crate::tftp::packet::{self, Packet};

#[derive(Debug, Clone, Copy, Default)]
pub struct Behaviour {
    /// Every n-th enrollment's SET carries a wrong hash (0: never).
    pub wrong_hash_every: u64,
    /// Withhold the first answer to each INFORM (the MTA must resend it).
    pub drop_first_answers: bool,
    /// Send every SET twice.
    pub set_twice: bool,
    /// Bytes per file (default 700: two blocks).
    pub file_len: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Seen {
    pub enrollments: u64,
    pub statuses_pass: u64,
    pub informs_answered: u64,
    pub set_responses: u64,
    pub rrqs: u64,
}

#[derive(Debug)]
pub struct StandIn {
    addr: SocketAddrV4,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Seen>>,
}

impl StandIn {
    /// Starts the server; it SETs to `127.0.0.1:agent_port`.
    pub fn start(agent_port: u16, how: Behaviour) -> StandIn {
        let bind = || {
            let s = UdpSocket::bind("127.0.0.1:0").unwrap();
            s.set_nonblocking(true).unwrap();
            s
        };
        let (notify, setter, tftp) = (bind(), bind(), bind());
        let SocketAddr::V4(addr) = notify.local_addr().unwrap() else {
            unreachable!()
        };
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let mut server = Server {
            notify,
            setter,
            tftp,
            agent_port,
            how,
            files: HashMap::new(),
            transfers: HashMap::new(),
            answered_once: HashSet::new(),
            next_request_id: 5000,
            seen: Seen::default(),
        };
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                server.step();
            }
            server.seen
        });
        StandIn {
            addr,
            stop,
            thread: Some(thread),
        }
    }

    pub fn addr(&self) -> SocketAddrV4 {
        self.addr
    }

    /// Stops the server and returns what it saw.
    pub fn stop(mut self) -> Seen {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap()
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Server {
    notify: UdpSocket,
    setter: UdpSocket,
    tftp: UdpSocket,
    agent_port: u16,
    how: Behaviour,
    files: HashMap<String, Vec<u8>>,
    /// Client -> (file, last block sent).
    transfers: HashMap<SocketAddrV4, (Vec<u8>, u16)>,
    answered_once: HashSet<(SocketAddrV4, i32)>,
    next_request_id: i32,
    seen: Seen,
}

fn recv(sock: &UdpSocket, buf: &mut [u8]) -> Option<(usize, SocketAddrV4)> {
    match sock.recv_from(buf) {
        Ok((n, SocketAddr::V4(from))) => Some((n, from)),
        _ => None,
    }
}

impl Server {
    fn step(&mut self) {
        let mut fds = [&self.notify, &self.setter, &self.tftp].map(|s| libc::pollfd {
            fd: s.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        });
        // SAFETY: `fds` is a valid array of three pollfd; the sockets outlive the call.
        unsafe { libc::poll(fds.as_mut_ptr(), 3, 10) };
        let mut buf = [0u8; 2048];
        while let Some((n, from)) = recv(&self.notify, &mut buf) {
            self.on_inform(&buf[..n], from);
        }
        while let Some((n, _)) = recv(&self.setter, &mut buf) {
            if msg::read_response(&buf[..n]).is_ok_and(|a| !a.error_status.is_error()) {
                self.seen.set_responses += 1;
            }
        }
        while let Some((n, from)) = recv(&self.tftp, &mut buf) {
            self.on_tftp(&buf[..n], from);
        }
    }

    fn on_inform(&mut self, bytes: &[u8], from: SocketAddrV4) {
        let Ok(m) = Message::decode(bytes) else {
            return;
        };
        let Some(pdu) = m.pdu().filter(|p| p.kind == PduType::InformRequest) else {
            return;
        };
        let key = (from, pdu.request_id);
        let first = self.answered_once.insert(key);
        if !(first && self.how.drop_first_answers) {
            let answer = response_to(&m).unwrap().to_bytes().unwrap();
            self.notify.send_to(&answer, from).unwrap();
            self.seen.informs_answered += 1;
        }
        if !first {
            return;
        }
        let trap = pdu.notification_oid().map(|o| o.as_slice().to_vec());
        let Some(mac) = pdu
            .get(msg::IF_PHYS_ADDRESS_1)
            .and_then(Value::as_bytes)
            .and_then(|b| <[u8; 6]>::try_from(b).ok())
        else {
            return;
        };
        if trap.as_deref() == Some(msg::STATUS_TRAP) {
            if pdu.get(msg::PROVISIONING_STATE_0) == Some(&Value::Integer(msg::STATE_PASS)) {
                self.seen.statuses_pass += 1;
            }
            return;
        }
        if trap.as_deref() != Some(msg::ENROLLMENT_TRAP) {
            return;
        }
        self.seen.enrollments += 1;
        let len = if self.how.file_len == 0 {
            700
        } else {
            self.how.file_len
        };
        let content: Vec<u8> = (0..len).map(|i| mac[i % 6] ^ (i as u8)).collect();
        let mut hash: [u8; 20] = Sha1::digest(&content).into();
        let n = self.how.wrong_hash_every;
        if n > 0 && self.seen.enrollments.is_multiple_of(n) {
            hash[0] ^= 0xff;
        }
        let name = format!("mta/{}.bin", msg::mac12(mac));
        let SocketAddr::V4(tftp) = self.tftp.local_addr().unwrap() else {
            unreachable!()
        };
        let url = format!("tftp://{tftp}/{name}");
        self.files.insert(name, content);
        self.next_request_id += 1;
        let set = Message::set(
            Version::V2c,
            "private",
            self.next_request_id,
            [
                VarBind::new(
                    Oid::from_slice(msg::CONFIG_FILE_0).unwrap(),
                    Value::OctetString(url.into_bytes()),
                ),
                VarBind::new(
                    Oid::from_slice(msg::PROV_CONFIG_HASH_0).unwrap(),
                    Value::OctetString(hash.to_vec()),
                ),
            ],
        )
        .to_bytes()
        .unwrap();
        let agent = SocketAddrV4::new(*from.ip(), self.agent_port);
        for _ in 0..if self.how.set_twice { 2 } else { 1 } {
            self.setter.send_to(&set, agent).unwrap();
        }
    }

    fn send_block(&self, to: SocketAddrV4, file: &[u8], block: u16) {
        let start = (usize::from(block) - 1) * 512;
        let end = (start + 512).min(file.len());
        let mut out = Vec::new();
        packet::data(&mut out, block, &file[start.min(end)..end]);
        self.tftp.send_to(&out, to).unwrap();
    }

    fn on_tftp(&mut self, bytes: &[u8], from: SocketAddrV4) {
        match packet::parse(bytes) {
            Ok(Packet::Request { name, .. }) => {
                self.seen.rrqs += 1;
                let Some(file) = self.files.get(name).cloned() else {
                    let mut out = Vec::new();
                    packet::error(&mut out, packet::ERR_NOT_FOUND, "File not found");
                    self.tftp.send_to(&out, from).unwrap();
                    return;
                };
                self.send_block(from, &file, 1);
                self.transfers.insert(from, (file, 1));
            }
            Ok(Packet::Ack { block }) => {
                let Some((file, sent)) = self.transfers.get(&from).cloned() else {
                    return;
                };
                let last = (file.len() / 512 + 1) as u16;
                if block != sent {
                    return;
                }
                if block >= last {
                    self.transfers.remove(&from);
                    return;
                }
                self.send_block(from, &file, block + 1);
                self.transfers.insert(from, (file, block + 1));
            }
            _ => {}
        }
    }
}
