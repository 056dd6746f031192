//! The time server (RFC 868) cable modems ask before TFTP: DOCSIS requires a modem to get the
//! time of day from the servers in DHCP option 4 (it timestamps its event log with it, and
//! some refuse to go on without it). The answer is the seconds since 1900-01-01 00:00 UTC as a
//! 32-bit big-endian number, on UDP and TCP port 37.
//!
//! * [`time_value`]: sans-IO, the answer for a given Unix time. It counts modulo 2^32, so it
//!   keeps working past the wrap of 2036-02-07 06:28:16 UTC, as RFC 868 clients that
//!   disambiguate by era expect (the answer then starts again from 0).
//! * [`spawn`]: one thread serving both UDP and TCP; [`TodHandle`] has its counters and joins
//!   it after the shutdown flag is set (noticed within ~100 ms). UDP goes through provd-udp's
//!   batched socket: a burst of requests is read with one `recvmmsg` per 32 and answered with
//!   one `sendmmsg`, each answer from the local address its request was sent to.
//! * [`start`]: the role as `provd serve` runs it from `[time]`; its [`TodHandle`] is a
//!   [`provd_role::Role`] named `time`.
//!
//! UDP cannot be used for amplification: the answer is 4 bytes, no more than the UDP payload of
//! nearly every request (RFC 868 clients send an empty datagram, so at worst 32 bytes on the
//! wire answer 28). Datagrams from ports of other "answer anything" services (echo, daytime,
//! quote, chargen, time) and from port 0 are not answered: a forged request naming one of them
//! as its source would start an endless ping-pong between the two servers.
//!
//! Each source address gets at most 10 UDP answers at once and 5 a second after that
//! ([`SourceLimit`], issue 18): a modem asks once per boot, and a flood from one address, or
//! forged in a victim's name, is cut to that (counted as `udp_rate_limited`).
//!
//! TCP: a connection gets its 4 bytes as soon as it is accepted and is closed, so no connection
//! outlives its accept; the listen backlog bounds how many wait. There is no thread per
//! connection and nothing to time out.
//!
//! ```
//! // 2026-01-01 00:00:00 UTC.
//! assert_eq!(provd_tod::time_value(1_767_225_600), 3_976_214_400u32.to_be_bytes());
//! ```

mod role;

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use provd_role::{WorkerSet, clock};
use provd_udp::{Meta, Options, RecvBatch, SendBatch, SourceLimit, UdpSocket, Wait, poll_readable};
use socket2::{Domain, Protocol, Socket, Type};

pub use role::start;

/// Seconds from 1900-01-01 (RFC 868's epoch) to 1970-01-01 (Unix's).
pub const SECONDS_1900_TO_1970: u64 = 2_208_988_800;

/// Source ports that are never answered: 0 (not a real sender) and the UDP services that answer
/// any datagram (echo 7, daytime 13, qotd 17, chargen 19, time 37), which would loop with us.
pub const REFLECTING_PORTS: [u16; 6] = [0, 7, 13, 17, 19, 37];

/// Longest wait in poll: bounds how long a shutdown request waits.
const POLL_CAP: Duration = Duration::from_millis(100);
/// Datagrams or connections handled per wake-up before the shutdown flag is looked at again.
const PER_TURN: usize = 256;
/// Datagrams per `recvmmsg` (and answers per `sendmmsg`).
const BATCH: usize = 32;
/// Requests are empty; anything longer is cut to this, which is fine: its content is ignored.
const REQUEST_SLOT: usize = 64;
/// Connections the kernel queues for accept: a region of modems rebooting together.
const BACKLOG: i32 = 1024;

/// The RFC 868 answer at `unix_secs`: seconds since 1900 modulo 2^32, big-endian.
pub fn time_value(unix_secs: u64) -> [u8; 4] {
    // Truncation is the point: the 32-bit count wraps in 2036 and RFC 868 clients take the era
    // nearest their own clock.
    (unix_secs.wrapping_add(SECONDS_1900_TO_1970) as u32).to_be_bytes()
}

/// What a client does with an answer: the Unix time it names in the 2^32-second era nearest
/// `near_unix` (the client's own idea of the time, or a build date).
pub fn unix_from_time_value(value: [u8; 4], near_unix: u64) -> u64 {
    const ERA: i128 = 1 << 32;
    let near = i128::from(near_unix) + i128::from(SECONDS_1900_TO_1970);
    let v = i128::from(u32::from_be_bytes(value));
    // The candidate v + k * 2^32 closest to `near`.
    let k = (near - v + ERA / 2).div_euclid(ERA);
    let secs_1900 = v + k * ERA;
    u64::try_from(secs_1900 - i128::from(SECONDS_1900_TO_1970)).unwrap_or(0)
}

/// Where the server runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TodSettings {
    pub bind: Ipv4Addr,
    /// 37, or 0 for any free port (tests): one number for both unless
    /// `SAME_PORT_TRIES` draws all found the TCP twin taken; see [`TodHandle::udp_addr`] and
    /// [`TodHandle::tcp_addr`].
    pub port: u16,
    pub udp: bool,
    pub tcp: bool,
    /// UDP answers per second to one source address, and how many at once (issue 18): a modem
    /// asks once per boot, a flood from one address (or forged in its name) is cut to this.
    pub per_source_rate: u32,
    pub per_source_burst: u32,
}

impl Default for TodSettings {
    fn default() -> Self {
        TodSettings {
            bind: Ipv4Addr::UNSPECIFIED,
            port: 37,
            udp: true,
            tcp: true,
            per_source_rate: 5,
            per_source_burst: 10,
        }
    }
}

/// Sources remembered by the UDP rate limit.
const MAX_SOURCES: usize = 65_536;

/// What the server has done since it started.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TodCounters {
    pub udp_requests: u64,
    pub udp_replies: u64,
    /// Datagrams not answered: from a [`REFLECTING_PORTS`] port or from a source that cannot
    /// be a host (unspecified, broadcast, multicast).
    pub udp_ignored: u64,
    /// Answers the kernel would not take (no route).
    pub udp_send_errors: u64,
    pub tcp_accepted: u64,
    pub tcp_replies: u64,
    /// Connections closed without the answer (reset before the write).
    pub tcp_write_errors: u64,
    /// Errors reading the UDP socket or accepting (e.g. out of file descriptors).
    pub receive_errors: u64,
    /// Datagrams not answered: their source was over its per-source rate.
    pub udp_rate_limited: u64,
}

/// Told of each time answer sent: the client's address and `"udp"` or `"tcp"`. Called on the
/// server's thread: it must be quick and must not block. See [`TodHandle::set_tap`].
pub type Tap = Box<dyn Fn(Ipv4Addr, &'static str) + Send + Sync>;

#[derive(Default)]
struct TapSlot(std::sync::OnceLock<Tap>);

impl std::fmt::Debug for TapSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.get().is_some() {
            "TapSlot(set)"
        } else {
            "TapSlot(unset)"
        })
    }
}

impl TapSlot {
    fn tell(&self, to: Ipv4Addr, proto: &'static str) {
        if let Some(tap) = self.0.get() {
            tap(to, proto);
        }
    }
}

#[derive(Debug, Default)]
struct Shared {
    tap: TapSlot,
    udp_requests: AtomicU64,
    udp_replies: AtomicU64,
    udp_ignored: AtomicU64,
    udp_send_errors: AtomicU64,
    tcp_accepted: AtomicU64,
    tcp_replies: AtomicU64,
    tcp_write_errors: AtomicU64,
    receive_errors: AtomicU64,
    udp_rate_limited: AtomicU64,
}

fn bump(a: &AtomicU64) {
    add(a, 1);
}

fn add(a: &AtomicU64, n: usize) {
    if n > 0 {
        a.fetch_add(n as u64, Ordering::Relaxed);
    }
}

/// The running server.
#[derive(Debug)]
pub struct TodHandle {
    udp: Option<SocketAddrV4>,
    tcp: Option<SocketAddrV4>,
    shared: Arc<Shared>,
    workers: WorkerSet,
    shutdown: Arc<AtomicBool>,
}

impl TodHandle {
    /// The UDP address, with the port actually bound; `None` if UDP is off.
    pub fn udp_addr(&self) -> Option<SocketAddrV4> {
        self.udp
    }

    /// The TCP address, with the port actually bound; `None` if TCP is off.
    pub fn tcp_addr(&self) -> Option<SocketAddrV4> {
        self.tcp
    }

    pub fn counters(&self) -> TodCounters {
        let s = &self.shared;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        TodCounters {
            udp_requests: get(&s.udp_requests),
            udp_replies: get(&s.udp_replies),
            udp_ignored: get(&s.udp_ignored),
            udp_send_errors: get(&s.udp_send_errors),
            tcp_accepted: get(&s.tcp_accepted),
            tcp_replies: get(&s.tcp_replies),
            tcp_write_errors: get(&s.tcp_write_errors),
            receive_errors: get(&s.receive_errors),
            udp_rate_limited: get(&s.udp_rate_limited),
        }
    }

    /// From now on, tells `tap` of every answer sent (for the device timeline). Only the first
    /// tap set is kept.
    pub fn set_tap(&self, tap: Tap) {
        let _ = self.shared.tap.0.set(tap);
    }

    /// Sets the shutdown flag the server was spawned with.
    pub fn shutdown(&self) {
        self.shutdown.store(true, Ordering::Relaxed);
    }

    /// Waits for the server thread to stop (after the shutdown flag is set).
    pub fn join(self) -> io::Result<()> {
        self.workers.join()
    }
}

fn v4(a: SocketAddr) -> io::Result<SocketAddrV4> {
    match a {
        SocketAddr::V4(a) => Ok(a),
        SocketAddr::V6(_) => Err(io::Error::other("IPv4 socket with an IPv6 address")),
    }
}

fn bind_udp(addr: SocketAddrV4) -> io::Result<UdpSocket> {
    UdpSocket::bind(
        addr,
        &Options {
            // The local address each request was sent to: its answer leaves from there.
            pktinfo: true,
            // The receive buffer stays at the default 4 MiB, room for a region's burst of
            // requests; answers are 4 bytes, the system's send buffer is plenty.
            send_buffer: 0,
            ..Options::default()
        },
    )
}

fn bind_tcp(addr: SocketAddrV4) -> io::Result<TcpListener> {
    let s = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
    // We close first, so our side holds TIME_WAIT: without this a restart cannot rebind 37.
    s.set_reuse_address(true)?;
    s.bind(&addr.into())?;
    s.listen(BACKLOG)?;
    s.set_nonblocking(true)?;
    Ok(s.into())
}

/// How many free UDP ports `port = 0` tries before it settles for different numbers.
const SAME_PORT_TRIES: usize = 32;

/// The sockets `settings` asks for. With port 0 both get one number: a UDP port is drawn, and
/// if its TCP twin is taken (a shared machine) another is drawn, up to [`SAME_PORT_TRIES`].
fn bind_sockets(settings: &TodSettings) -> io::Result<(Option<UdpSocket>, Option<TcpListener>)> {
    let at = |port| SocketAddrV4::new(settings.bind, port);
    if !settings.udp {
        return Ok((None, Some(bind_tcp(at(settings.port))?)));
    }
    if !settings.tcp {
        return Ok((Some(bind_udp(at(settings.port))?), None));
    }
    if settings.port != 0 {
        return Ok((
            Some(bind_udp(at(settings.port))?),
            Some(bind_tcp(at(settings.port))?),
        ));
    }
    for _ in 0..SAME_PORT_TRIES {
        let udp = bind_udp(at(0))?;
        let port = udp.local_addr()?.port();
        if let Ok(tcp) = bind_tcp(at(port)) {
            return Ok((Some(udp), Some(tcp)));
        }
    }
    Ok((Some(bind_udp(at(0))?), Some(bind_tcp(at(0))?)))
}

/// Binds the sockets, then starts the server thread; a port in use comes back here.
pub fn spawn(settings: TodSettings, shutdown: Arc<AtomicBool>) -> io::Result<TodHandle> {
    if !settings.udp && !settings.tcp {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the time server needs UDP or TCP",
        ));
    }
    let (udp, tcp) = bind_sockets(&settings)?;
    let udp_addr = udp.as_ref().map(UdpSocket::local_addr).transpose()?;
    let tcp_addr = tcp
        .as_ref()
        .map(|s| s.local_addr().and_then(v4))
        .transpose()?;
    let shared = Arc::new(Shared::default());
    let limit = SourceLimit::new(
        settings.per_source_rate,
        settings.per_source_burst,
        MAX_SOURCES,
    );
    let server = Server {
        udp: udp.map(|s| Udp::new(s, limit)),
        tcp,
        shared: Arc::clone(&shared),
    };
    let flag = Arc::clone(&shutdown);
    let mut workers = WorkerSet::new("time");
    workers.spawn("provd-tod".into(), move || server.run(&flag))?;
    tracing::info!(udp = ?udp_addr, tcp = ?tcp_addr, "time server (RFC 868) listening");
    Ok(TodHandle {
        udp: udp_addr,
        tcp: tcp_addr,
        shared,
        workers,
        shutdown,
    })
}

/// The UDP side: the socket and its batches, reused for the life of the server.
struct Udp {
    socket: UdpSocket,
    rx: RecvBatch,
    tx: SendBatch,
    limit: SourceLimit,
    epoch: std::time::Instant,
}

impl Udp {
    fn new(socket: UdpSocket, limit: SourceLimit) -> Udp {
        Udp {
            socket,
            rx: RecvBatch::new(BATCH, REQUEST_SLOT),
            tx: SendBatch::new(BATCH, 4),
            limit,
            epoch: std::time::Instant::now(),
        }
    }
}

struct Server {
    udp: Option<Udp>,
    tcp: Option<TcpListener>,
    shared: Arc<Shared>,
}

/// Whether an answer to `from` could start a loop with another "answer anything" service, or
/// go to something that is not a host.
fn could_loop(from: SocketAddrV4) -> bool {
    let ip = from.ip();
    REFLECTING_PORTS.contains(&from.port())
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
}

impl Server {
    fn run(mut self, shutdown: &AtomicBool) -> io::Result<()> {
        // A negative fd is skipped by poll.
        let fds = [
            self.udp.as_ref().map_or(-1, |u| u.socket.fd()),
            self.tcp.as_ref().map_or(-1, AsRawFd::as_raw_fd),
        ];
        while !shutdown.load(Ordering::Relaxed) {
            provd_role::beat();
            let [udp_ready, tcp_ready] = poll_readable(fds, POLL_CAP)?;
            if udp_ready && let Some(u) = &mut self.udp {
                serve_udp(u, &self.shared);
            }
            if tcp_ready && let Some(l) = &self.tcp {
                self.serve_tcp(l);
            }
        }
        tracing::debug!("time server stopped");
        Ok(())
    }

    /// Accepts the connections queued, a bounded number per turn, answering and closing each.
    fn serve_tcp(&self, l: &TcpListener) {
        for _ in 0..PER_TURN {
            match l.accept() {
                Ok((stream, from)) => {
                    bump(&self.shared.tcp_accepted);
                    match answer(stream) {
                        Ok(()) => {
                            bump(&self.shared.tcp_replies);
                            if let SocketAddr::V4(from) = from {
                                self.shared.tap.tell(*from.ip(), "tcp");
                            }
                        }
                        Err(e) => {
                            bump(&self.shared.tcp_write_errors);
                            tracing::trace!(%from, error = %e, "time server: TCP answer failed");
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted
                    ) => {}
                Err(e) => {
                    // EMFILE and the like: leave the rest queued until the next turn.
                    bump(&self.shared.receive_errors);
                    tracing::warn!(error = %e, "time server: accept failed");
                    return;
                }
            }
        }
    }
}

/// Answers the datagrams queued, a bounded number per turn: each batch read with one
/// `recvmmsg`, its answers sent with one `sendmmsg`, one answer per request not refused.
fn serve_udp(u: &mut Udp, shared: &Shared) {
    let Udp {
        socket,
        rx,
        tx,
        limit,
        epoch,
    } = u;
    let mut limited = 0;
    let mut taken = 0;
    while taken < PER_TURN {
        let n = match socket.recv_batch(rx, Wait::No) {
            Ok(0) => return,
            Ok(n) => n,
            Err(e) => {
                // An ICMP error for an earlier answer, queued on the socket: read and go on.
                bump(&shared.receive_errors);
                tracing::trace!(error = %e, "time server: UDP receive error");
                taken += 1;
                continue;
            }
        };
        taken += n;
        let value = time_value(clock::unix_secs());
        let now_ms = u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        let mut ignored = 0;
        for i in 0..n {
            let (_, Meta { src, local, .. }) = rx.get(i);
            if could_loop(src) {
                ignored += 1;
                tracing::debug!(from = %src, "time server: not answering a source that could loop");
                continue;
            }
            if !limit.allow(*src.ip(), now_ms) {
                limited += 1;
                continue;
            }
            // The batch holds as many answers as a receive takes requests: never full here.
            tx.push(&value, src, local);
            shared.tap.tell(*src.ip(), "udp");
        }
        add(&shared.udp_requests, n);
        add(&shared.udp_ignored, ignored);
        add(&shared.udp_rate_limited, std::mem::take(&mut limited));
        let answers = tx.len();
        let failed = socket.send_batch(tx);
        add(&shared.udp_replies, answers - failed);
        if failed > 0 {
            add(&shared.udp_send_errors, failed);
            tracing::trace!(failed, "time server: UDP answers the kernel would not take");
        }
    }
}

/// Writes the 4 bytes to a fresh connection and closes it. The send buffer of a new connection
/// is empty, so the write completes at once and never blocks the loop.
fn answer(mut stream: TcpStream) -> io::Result<()> {
    stream.set_nonblocking(true)?;
    let value = time_value(clock::unix_secs());
    if stream.write(&value)? != value.len() {
        return Err(io::Error::new(io::ErrorKind::WriteZero, "short write"));
    }
    stream.shutdown(std::net::Shutdown::Write)?;
    // Unread input at close makes the kernel send RST, which can discard the answer before the
    // client reads it: read away what a chatty client sent.
    let mut sink = [0u8; 256];
    let _ = stream.read(&mut sink);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// 2036-02-07T06:28:16Z: 2^32 seconds after 1900.
    const WRAP: u64 = (1 << 32) - SECONDS_1900_TO_1970;

    #[test]
    fn value_at_known_dates() {
        assert_eq!(time_value(0), 2_208_988_800u32.to_be_bytes());
        assert_eq!(time_value(0), [0x83, 0xaa, 0x7e, 0x80]);
        // 2026-01-01T00:00:00Z.
        assert_eq!(time_value(1_767_225_600), [0xed, 0x00, 0x37, 0x80]);
        assert_eq!(WRAP, 2_085_978_496);
        assert_eq!(time_value(WRAP - 1), [0xff; 4]);
        assert_eq!(time_value(WRAP), [0; 4]);
        assert_eq!(time_value(WRAP + 1), [0, 0, 0, 1]);
        // 2106-02-07, the second wrap; and no overflow at the very end of u64.
        assert_eq!(time_value(WRAP + (1 << 32)), [0; 4]);
        let _ = time_value(u64::MAX);
    }

    #[test]
    fn clients_read_the_value_in_their_era() {
        let now_2026 = 1_767_225_600;
        assert_eq!(unix_from_time_value(time_value(0), now_2026), 0);
        assert_eq!(unix_from_time_value(time_value(now_2026), 0), now_2026);
        // Past the wrap, a client whose clock says 2036 reads 0 as 2036-02-07, not 1900.
        assert_eq!(unix_from_time_value([0; 4], WRAP - 100), WRAP);
        assert_eq!(unix_from_time_value([0, 0, 0, 5], now_2026), WRAP + 5);
        assert_eq!(unix_from_time_value([0xff; 4], WRAP + 5), WRAP - 1);
        // 1970 is nearer the 2036 wrap than 1900.
        assert_eq!(unix_from_time_value([0; 4], 0), WRAP);
        // A second before 1970 has no Unix time: clamped to 0.
        let before_1970 = (SECONDS_1900_TO_1970 as u32 - 1).to_be_bytes();
        assert_eq!(unix_from_time_value(before_1970, 0), 0);
    }

    #[test]
    fn a_batch_of_requests_gets_one_answer_each_from_the_address_asked() {
        let socket = bind_udp(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)).unwrap();
        let port = socket.local_addr().unwrap().port();
        let mut udp = Udp::new(socket, SourceLimit::new(5, 10, 64));
        let shared = Shared::default();
        // Four clients, each asking a different local address of the wildcard socket, ten
        // requests each: 40 queued before the server reads, more than one receive takes.
        let asked = |i: u8| SocketAddrV4::new(Ipv4Addr::new(127, 0, 1, i), port);
        let clients: Vec<std::net::UdpSocket> = (1..=4u8)
            .map(|i| {
                let c = std::net::UdpSocket::bind((Ipv4Addr::new(127, 0, 0, i), 0)).unwrap();
                c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                c
            })
            .collect();
        for round in 0..10u8 {
            for (i, c) in (1..).zip(&clients) {
                c.send_to(&vec![round; usize::from(round)], asked(i))
                    .unwrap();
            }
        }
        // Loopback queues each datagram within its send_to; the pause is only a margin.
        std::thread::sleep(Duration::from_millis(50));

        serve_udp(&mut udp, &shared);
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        assert_eq!(get(&shared.udp_requests), 40, "all taken in one turn");
        assert_eq!(get(&shared.udp_replies), 40);
        assert_eq!(get(&shared.udp_ignored) + get(&shared.udp_send_errors), 0);
        let now = clock::unix_secs();
        let mut buf = [0u8; 16];
        for (i, c) in (1..).zip(&clients) {
            for k in 0..10 {
                let (n, from) = c
                    .recv_from(&mut buf)
                    .unwrap_or_else(|e| panic!("client {i}, answer {k}: {e}"));
                assert_eq!(n, 4);
                assert_eq!(from, SocketAddr::V4(asked(i)), "from the address asked");
                let t = unix_from_time_value([buf[0], buf[1], buf[2], buf[3]], now);
                assert!(t.abs_diff(now) <= 1, "{t} vs {now}");
            }
            c.set_read_timeout(Some(Duration::from_millis(100)))
                .unwrap();
            assert!(
                c.recv_from(&mut buf).is_err(),
                "client {i}: one answer each"
            );
        }
    }

    proptest! {
        #[test]
        fn any_time_reads_back_within_half_an_era(
            t in 0u64..(1 << 40),
            drift in -(1i64 << 30)..(1i64 << 30),
        ) {
            let near = t.saturating_add_signed(drift);
            prop_assert_eq!(unix_from_time_value(time_value(t), near), t);
        }
    }
}
