//! A DHCP server socket: a member of the port's SO_REUSEPORT group with IP_PKTINFO, batched
//! with recvmmsg/sendmmsg through `provd-udp` (the socket TFTP and syslog use too). What is
//! DHCP's own is here: the socket options, the shard-steering program and how a reply's
//! [`Destination`] becomes an address.

use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::AsRawFd;
use std::time::Duration;

use provd_engine::Destination;
pub use provd_udp::Meta;
use provd_udp::{Options, Outgoing, RecvBatch, UdpSocket, Wait};

/// Datagrams per recvmmsg/sendmmsg call.
pub const BATCH: usize = 64;
/// Largest datagram accepted; longer ones arrive truncated and fail to parse.
const BUF: usize = 2048;

/// Receive buffers for one batch of requests, reused for the life of a worker.
pub fn receive_buffers() -> RecvBatch {
    RecvBatch::new(BATCH, BUF)
}

/// A bound DHCP server socket.
#[derive(Debug)]
pub struct DhcpSocket {
    sock: UdpSocket,
}

impl AsRawFd for DhcpSocket {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.sock.fd()
    }
}

impl DhcpSocket {
    /// Binds a UDP socket on `addr` as a member of a reuseport group, able to send broadcasts
    /// and to learn each datagram's local address and interface.
    pub fn bind(addr: SocketAddrV4) -> io::Result<Self> {
        let sock = UdpSocket::bind(
            addr,
            &Options {
                reuse_port: true,
                reuse_address: true,
                broadcast: true,
                pktinfo: true,
                timestamps: false,
                // Room for a burst while a commit's fdatasync runs, or while the other roles
                // have the cores (a region rebooting at once): about 20,000 requests per shard.
                recv_buffer: 32 << 20,
                send_buffer: 4 << 20,
                // Wake up regularly to sweep leases and notice shutdown even when idle.
                read_timeout: Some(Duration::from_millis(200)),
                gso: true,
            },
        )?;
        Ok(DhcpSocket { sock })
    }

    /// The local address bound.
    pub fn local_addr(&self) -> io::Result<SocketAddrV4> {
        self.sock.local_addr()
    }

    /// Attaches the classic-BPF reuseport program that picks socket `chaddr[2..6] % shards`:
    /// the program sees the UDP payload, so chaddr bytes 2..6 sit at offset 30.
    pub fn attach_shard_steering(&self, shards: u32) -> io::Result<()> {
        const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
        const ALU_MOD_K: u16 = 0x94; // BPF_ALU | BPF_MOD | BPF_K
        const RET_A: u16 = 0x16; // BPF_RET | BPF_A
        let insn = |code, k| libc::sock_filter {
            code,
            jt: 0,
            jf: 0,
            k,
        };
        self.sock.attach_reuseport_cbpf(&[
            insn(LD_W_ABS, provd_common::SHARD_KEY_OFFSET as u32),
            insn(ALU_MOD_K, shards),
            insn(RET_A, 0),
        ])
    }

    /// A second handle on the same socket (dup), for a thread that only sends.
    pub fn try_clone(&self) -> io::Result<Self> {
        Ok(DhcpSocket {
            sock: self.sock.try_clone()?,
        })
    }

    /// Receives up to [`BATCH`] datagrams, waiting for the first at most the read timeout.
    /// Returns 0 on timeout or interruption.
    pub fn recv_batch(&self, rx: &mut RecvBatch) -> io::Result<usize> {
        self.sock.recv_batch(rx, Wait::ForOne)
    }

    /// As [`DhcpSocket::recv_batch`], without waiting: 0 when nothing is queued.
    pub fn recv_batch_now(&self, rx: &mut RecvBatch) -> io::Result<usize> {
        self.sock.recv_batch(rx, Wait::No)
    }

    /// Sends each (datagram, destination) straight from its buffer, one sendmmsg per
    /// [`BATCH`]; returns how many could not be sent.
    pub fn send_batch<'a>(&self, items: impl Iterator<Item = (&'a [u8], Destination)>) -> usize {
        self.sock.send_each(items.map(|(data, dest)| {
            let (to, ifindex) = destination(dest);
            Outgoing {
                data,
                to,
                from: Ipv4Addr::UNSPECIFIED,
                ifindex,
            }
        }))
    }
}

/// Where a reply goes and, for a broadcast, the interface it leaves by (the one its request
/// came in on).
pub(crate) fn destination(dest: Destination) -> (SocketAddrV4, u32) {
    match dest {
        Destination::Relay(a) | Destination::Client(a) => (a, 0),
        Destination::Broadcast { ifindex } => (SocketAddrV4::new(Ipv4Addr::BROADCAST, 68), ifindex),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Loopback only: a client socket sends to a bound DhcpSocket and gets its reply back.
    #[test]
    fn batch_receive_reports_source_and_local_address_and_replies_go_back() {
        let server = DhcpSocket::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = server.local_addr().unwrap().port();
        let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        for i in 0..3u8 {
            client.send_to(&[i; 300], ("127.0.0.1", port)).unwrap();
        }
        let mut rx = receive_buffers();
        let mut got = 0;
        for _ in 0..10 {
            got += server.recv_batch(&mut rx).unwrap();
            if got >= 3 {
                break;
            }
        }
        assert_eq!(got, 3);
        let (data, meta) = rx.get(0);
        assert_eq!(data.len(), 300);
        assert_eq!(
            meta.src,
            client.local_addr().unwrap().to_string().parse().unwrap()
        );
        assert_eq!(meta.local, Ipv4Addr::LOCALHOST);
        assert!(meta.ifindex > 0);
        let dest = Destination::Client(meta.src);
        let failed = server.send_batch([(&b"pong"[..], dest), (&b"pong2"[..], dest)].into_iter());
        assert_eq!(failed, 0);
        let mut buf = [0u8; 64];
        let (n, _) = client.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"pong");
    }

    #[test]
    fn steering_program_is_accepted_by_the_kernel() {
        let a = DhcpSocket::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0)).unwrap();
        a.attach_shard_steering(2).unwrap();
    }
}
