//! TFTP reflection and slot exhaustion by spoofed requests (issue 18, item 3).
//!
//! Three namespaces: the server (provd), the attacker, and the victim. The attacker sends
//! requests with the victim's address as source (an `IP_TRANSPARENT` socket bound to it); the
//! server's replies to that address route to the victim's namespace, whose interface counter
//! says what really arrived there. Neighbours are static and IPv6 is off, so the counters see
//! nothing but the attack and its answers. What the attacker sent is counted as it leaves
//! (UDP payload + UDP, IP and Ethernet headers, the same units as the victim's counter).
//!
//! - `tftp-reflection-window`: a spoofed RRQ with blksize 1468 and windowsize 64 for an 8 MiB
//!   file, then blind ACKs (0, then the last block of each window) to every transfer port the
//!   attacker learned from requests of its own. The review: 14.15 MB to the victim for 9.1 KB
//!   sent (1,558×). Holds when the victim got at most 3× what the attacker sent.
//! - `tftp-reflection-plain`: plain spoofed RRQs (no options). The review: 45.7× through
//!   retransmissions. Holds when a burst of them from one victim brings it at most 3× what was
//!   sent; a single one is reported (at most its first DATA, never a retransmission).
//! - `tftp-slot-exhaustion`: 22,000 spoofed RRQs from 250 addresses, then 60 real GETs
//!   (tftp-hpa and atftp, alternating). The review: 47 of 60 got ERROR 3. Holds when all 60
//!   get the file.
//! - `time-per-source-limit` (item 8, on the same rig): 2,000 RFC 868 time requests from one
//!   address in a second. Before: every one answered. Holds when that source gets no more than
//!   its burst and rate (10 + 5/s) and another address is still answered.
//! - `syslog-per-source-limit` (item 8, same rig): 5,000 syslog messages forged from the
//!   victim's address within about a second. Before: every one stored (the per-device ring, here
//!   1,000, was the only bound). Holds when the store keeps no more than the default burst and
//!   rate (200 + 20/s) from that source, marks them as from an unleased source, and keeps every
//!   message of another address that sends a few right after.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::os::fd::FromRawFd;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::e2e::tftp::pseudo_random;
use anyhow::{Context, Result, bail, ensure};
use provd_rig::{Netns, Provd, VethPair, cmd};

use super::super::Scenarios;
use super::Ctx;

const PROVD_TEMPLATE: &str = include_str!("../../../../tests/e2e/tftp/provd.toml.in");
const CM_TEMPLATE: &str = include_str!("../../../../tests/e2e/tftp/templates/cm.cfg.j2");

/// The server, on the attacker's link (the template's address).
const SERVER_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const ATTACKER_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
/// The server's side of the victim's link, and the victim.
const SERVER_VICTIM_SIDE: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 1);
const VICTIM_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 2);
/// Spoofed sources of the slot-exhaustion flood: routed to the victim, which drops them.
const FLOOD_NET: &str = "198.18.8.0/24";
const FLOOD_ADDRS: u32 = 250;
const FLOOD_COUNT: u32 = 22_000;
const LEGIT_GETS: usize = 60;

const SERVER_IF: &str = "srv0";
const ATTACKER_IF: &str = "atk0";
const SERVER_VICTIM_IF: &str = "vic0s";
const VICTIM_IF: &str = "vic0";

const FIRMWARE: &str = "fw/firmware.bin";
const FIRMWARE_LEN: usize = 8 << 20;
const BLOB: &str = "static/blob.bin";
const BLOB_LEN: usize = 70_001;
const SMALL: &str = "static/small.bin";
const SMALL_LEN: usize = 2_000;

/// Ethernet (14) + IPv4 (20) + UDP (8): what a datagram adds on the veth counters.
const WIRE_OVERHEAD: u64 = 42;
/// The issue's bound: the victim gets at most this many times what the attacker sent.
const MAX_AMPLIFICATION: f64 = 3.0;
/// Events the syslog store keeps per source in these scenarios.
const SYSLOG_RING: usize = 1_000;

pub fn scenarios() -> Scenarios<Ctx> {
    vec![
        (
            "tftp-reflection-window",
            reflection_window as fn(&Ctx, &Path) -> Result<()>,
        ),
        ("tftp-reflection-plain", reflection_plain),
        ("tftp-slot-exhaustion", slot_exhaustion),
        ("time-per-source-limit", time_per_source_limit),
        ("syslog-per-source-limit", syslog_per_source_limit),
    ]
}

fn note(msg: impl AsRef<str>) {
    eprintln!("  {}", msg.as_ref());
}

/// The three namespaces, their links and provd. Fields drop in order: provd first, then the
/// links, then the namespaces (each deleted, whatever runs inside killed).
struct Rig {
    provd: Provd,
    _links: Vec<VethPair>,
    server: Netns,
    attacker: Netns,
    victim: Netns,
}

impl Rig {
    fn start(ctx: &Ctx, dir: &Path) -> Result<Rig> {
        let server = Netns::new("srv")?;
        let attacker = Netns::new("atk")?;
        let victim = Netns::new("vic")?;
        for ns in [&server, &attacker, &victim] {
            ns.sysctl("net.ipv6.conf.all.disable_ipv6", "1")?;
            ns.sysctl("net.ipv6.conf.default.disable_ipv6", "1")?;
        }
        let atk = VethPair::new(&server, SERVER_IF, &attacker, ATTACKER_IF)?;
        atk.a.add_addr(SERVER_IP, 24)?;
        atk.b.add_addr(ATTACKER_IP, 24)?;
        let vic = VethPair::new(&server, SERVER_VICTIM_IF, &victim, VICTIM_IF)?;
        vic.a.add_addr(SERVER_VICTIM_SIDE, 24)?;
        vic.b.add_addr(VICTIM_IP, 24)?;
        for l in [&atk, &vic] {
            l.wait_running(Duration::from_secs(10))?;
        }
        // Requests from the victim's address arrive on the attacker's link: no reverse-path
        // filter may drop them (a real network between an attacker and a server has none).
        for key in ["all", "default", SERVER_IF, SERVER_VICTIM_IF] {
            server.sysctl(&format!("net.ipv4.conf.{key}.rp_filter"), "0")?;
        }
        // Static neighbours: no ARP on the counted links.
        let mac = |m: [u8; 6]| {
            m.iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(":")
        };
        let neigh = |ns: &Netns, ip: Ipv4Addr, m: [u8; 6], dev: &str| {
            ns.ip(&[
                "neigh",
                "replace",
                &ip.to_string(),
                "lladdr",
                &mac(m),
                "dev",
                dev,
                "nud",
                "permanent",
            ])
        };
        neigh(&server, VICTIM_IP, vic.b.mac()?, SERVER_VICTIM_IF)?;
        neigh(&server, ATTACKER_IP, atk.b.mac()?, SERVER_IF)?;
        neigh(&victim, SERVER_VICTIM_SIDE, vic.a.mac()?, VICTIM_IF)?;
        neigh(&attacker, SERVER_IP, atk.a.mac()?, ATTACKER_IF)?;
        server.ip(&["route", "add", FLOOD_NET, "via", &VICTIM_IP.to_string()])?;

        let root = dir.join("tftp-root");
        for d in ["static", "fw"] {
            std::fs::create_dir_all(root.join(d))?;
        }
        std::fs::write(root.join(FIRMWARE), pseudo_random(FIRMWARE_LEN, 3))?;
        std::fs::write(root.join(BLOB), pseudo_random(BLOB_LEN, 1))?;
        std::fs::write(root.join(SMALL), pseudo_random(SMALL_LEN, 5))?;
        std::fs::create_dir_all(dir.join("templates"))?;
        std::fs::write(dir.join("templates/cm.cfg.j2"), CM_TEMPLATE)?;
        let p = Provd::new(&ctx.provd, dir)
            .label("server")
            .ready_timeout(Duration::from_secs(30))
            .env("RUST_BACKTRACE", "1");
        let lease_dir = p.lease_dir()?;
        let config = PROVD_TEMPLATE.replace("@LEASE_DIR@", &lease_dir.to_string_lossy())
            + &format!("\n[time]\nbind = \"{SERVER_IP}\"\nport = 37\n")
            // A ring longer than the per-source burst, so that what a flood leaves in the
            // store is the rate limit's doing, not the ring's.
            + &format!(
                "\n[syslog]\nbind = \"{SERVER_IP}\"\nport = 514\nevents_per_device = {SYSLOG_RING}\n"
            );
        let mut provd = p.write_config(&config)?;
        provd.check_config()?;
        provd.start(&server)?;
        provd.wait_udp(Some(SERVER_IP), 69, Duration::from_secs(5))?;
        Ok(Rig {
            provd,
            _links: vec![atk, vic],
            server,
            attacker,
            victim,
        })
    }

    /// Bytes that arrived at the victim's interface so far.
    fn victim_rx(&self) -> Result<u64> {
        let out = self.victim.exec(
            "cat",
            &[&format!("/sys/class/net/{VICTIM_IF}/statistics/rx_bytes")],
            Duration::from_secs(10),
        )?;
        out.trim()
            .parse()
            .with_context(|| format!("rx_bytes {out:?}"))
    }

    fn finish(mut self) -> Result<()> {
        self.provd.check_alive()?;
        self.provd.stop()?;
        let _ = (&self.server, &self.attacker);
        Ok(())
    }
}

/// A UDP socket bound to `src` whether or not the address is ours (IP_TRANSPARENT), so its
/// datagrams leave with that source: a spoofer's socket. Call inside the attacker namespace.
fn spoofing_socket(src: SocketAddrV4) -> Result<UdpSocket> {
    // SAFETY: plain syscall; the result is checked before use.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    ensure!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
    // SAFETY: `fd` is a fresh socket owned by nothing else; the UdpSocket closes it.
    let sock = unsafe { UdpSocket::from_raw_fd(fd) };
    let one: libc::c_int = 1;
    // SAFETY: `one` is a live c_int of the size passed; the kernel only reads it.
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_IP,
            libc::IP_TRANSPARENT,
            (&raw const one).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    ensure!(
        r == 0,
        "IP_TRANSPARENT: {}",
        std::io::Error::last_os_error()
    );
    let sa = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: src.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(*src.ip()).to_be(),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: `sa` is a live sockaddr_in of the size passed.
    let r = unsafe {
        libc::bind(
            fd,
            (&raw const sa).cast(),
            size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    };
    ensure!(r == 0, "bind {src}: {}", std::io::Error::last_os_error());
    Ok(sock)
}

/// An RRQ in octet mode with `options` (name, value) pairs.
fn rrq(name: &str, options: &[(&str, &str)]) -> Vec<u8> {
    let mut p = vec![0, 1];
    for part in [name, "octet"]
        .into_iter()
        .chain(options.iter().flat_map(|(k, v)| [*k, *v]))
    {
        p.extend_from_slice(part.as_bytes());
        p.push(0);
    }
    p
}

fn ack(block: u16) -> [u8; 4] {
    let b = block.to_be_bytes();
    [0, 4, b[0], b[1]]
}

/// Sends and counts what goes on the wire.
struct Sender {
    wire_bytes: u64,
    datagrams: u64,
}

impl Sender {
    fn send(&mut self, sock: &UdpSocket, bytes: &[u8], to: SocketAddrV4) -> Result<()> {
        let n = sock.send_to(bytes, to)?;
        ensure!(n == bytes.len(), "short send");
        self.wire_bytes += n as u64 + WIRE_OVERHEAD;
        self.datagrams += 1;
        Ok(())
    }
}

/// The transfer ports the attacker can learn: the source port of the server's first answer to
/// `probes` requests of its own (from its real address, several source ports so the requests
/// spread over the workers). Each probe is ended with an ERROR. Runs in the attacker namespace.
fn learn_transfer_ports(probes: u16) -> Result<BTreeSet<u16>> {
    let server = SocketAddrV4::new(SERVER_IP, 69);
    let mut ports = BTreeSet::new();
    for _ in 0..probes {
        let s = UdpSocket::bind(SocketAddrV4::new(ATTACKER_IP, 0))?;
        s.set_read_timeout(Some(Duration::from_secs(3)))?;
        s.send_to(&rrq(BLOB, &[]), server)?;
        let mut buf = [0u8; 2048];
        let (_, from) = s.recv_from(&mut buf).context("no answer to a probe RRQ")?;
        ports.insert(from.port());
        s.send_to(b"\x00\x05\x00\x00probe done\x00", from)?;
        // Let the ERROR end the probe before the next request: an address that has not proven
        // itself has one first-DATA credit at a time, and an aborted transfer gives it back
        // only when it is gone.
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(ports)
}

fn ratio(victim: u64, attacker: u64) -> f64 {
    victim as f64 / attacker.max(1) as f64
}

/// (a) Spoofed RRQ blksize 1468 windowsize 64 + blind ACKs to the learned transfer ports.
fn reflection_window(ctx: &Ctx, dir: &Path) -> Result<()> {
    let rig = Rig::start(ctx, dir)?;
    let ports = rig.attacker.run_in(|| learn_transfer_ports(12))?;
    note(format!("transfer ports the attacker learned: {ports:?}"));
    std::thread::sleep(Duration::from_millis(500));
    let before = rig.victim_rx()?;
    let sent = rig.attacker.run_in(move || -> Result<Sender> {
        let mut tx = Sender {
            wire_bytes: 0,
            datagrams: 0,
        };
        let s = spoofing_socket(SocketAddrV4::new(VICTIM_IP, 40_000))?;
        let opts = [("blksize", "1468"), ("windowsize", "64")];
        tx.send(&s, &rrq(FIRMWARE, &opts), SocketAddrV4::new(SERVER_IP, 69))?;
        std::thread::sleep(Duration::from_millis(20));
        // The OACK went to the victim; ACK 0 it blindly, then the last block of each window
        // at a pace the server keeps up with.
        let windows = FIRMWARE_LEN.div_ceil(1468).div_ceil(64) as u16;
        for w in 0..=windows {
            let block = w.wrapping_mul(64);
            for &p in &ports {
                tx.send(&s, &ack(block), SocketAddrV4::new(SERVER_IP, p))?;
            }
            std::thread::sleep(Duration::from_millis(4));
        }
        Ok(tx)
    })?;
    // Long enough for the server's retransmissions to the victim and for an unproven
    // transfer's slot to be freed.
    std::thread::sleep(Duration::from_secs(6));
    let got = rig.victim_rx()? - before;
    let r = ratio(got, sent.wire_bytes);
    note(format!(
        "attacker sent {} datagrams, {} bytes; the victim received {got} bytes: {r:.1}x \
         (review: 14.15 MB for 9.1 KB, 1,558x)",
        sent.datagrams, sent.wire_bytes
    ));
    rig.finish()?;
    ensure!(
        r <= MAX_AMPLIFICATION,
        "amplification {r:.1}x > {MAX_AMPLIFICATION}x: {got} bytes to the victim for {} sent",
        sent.wire_bytes
    );
    Ok(())
}

/// Plain spoofed RRQs from the victim's address, `count` of them from as many source ports,
/// `gap` apart. Returns what the attacker sent.
fn spoof_plain(rig: &Rig, count: u16, gap: Duration) -> Result<Sender> {
    rig.attacker.run_in(move || -> Result<Sender> {
        let mut tx = Sender {
            wire_bytes: 0,
            datagrams: 0,
        };
        for i in 0..count {
            let s = spoofing_socket(SocketAddrV4::new(VICTIM_IP, 41_000 + i))?;
            tx.send(&s, &rrq(BLOB, &[]), SocketAddrV4::new(SERVER_IP, 69))?;
            std::thread::sleep(gap);
        }
        Ok(tx)
    })
}

/// (b) Plain spoofed RRQs: the review's single one drew 45.7x through retransmissions.
fn reflection_plain(ctx: &Ctx, dir: &Path) -> Result<()> {
    let rig = Rig::start(ctx, dir)?;
    // One request: reported (a read without options has no smaller first answer than its
    // first DATA; what must never follow is a retransmission to an unproven peer).
    let before = rig.victim_rx()?;
    let one = spoof_plain(&rig, 1, Duration::ZERO)?;
    std::thread::sleep(Duration::from_secs(8));
    let got_one = rig.victim_rx()? - before;
    let r_one = ratio(got_one, one.wire_bytes);
    note(format!(
        "one plain spoofed RRQ: {} bytes sent, {got_one} bytes to the victim: {r_one:.1}x \
         (one DATA of 512 is {} bytes)",
        one.wire_bytes,
        516 + WIRE_OVERHEAD
    ));
    // A burst, as a reflector's user sends them to get volume.
    let before = rig.victim_rx()?;
    let burst = spoof_plain(&rig, 20, Duration::from_millis(10))?;
    std::thread::sleep(Duration::from_secs(8));
    let got = rig.victim_rx()? - before;
    let r = ratio(got, burst.wire_bytes);
    note(format!(
        "20 plain spoofed RRQs: {} bytes sent, {got} bytes to the victim: {r:.1}x (review: \
         45.7x)",
        burst.wire_bytes
    ));
    rig.finish()?;
    ensure!(
        got_one <= 516 + WIRE_OVERHEAD,
        "one spoofed plain RRQ drew {got_one} bytes: more than its first DATA (retransmissions \
         to an unproven peer)"
    );
    ensure!(
        r <= MAX_AMPLIFICATION,
        "amplification {r:.1}x > {MAX_AMPLIFICATION}x: {got} bytes to the victim for {} sent",
        burst.wire_bytes
    );
    Ok(())
}

/// One GET by tftp-hpa (`even`) or atftp into `local`; true if the file arrived whole.
fn legit_get(ns: &Netns, local: &Path, tftp_hpa: bool, want: &[u8]) -> Result<(bool, String)> {
    let _ = std::fs::remove_file(local);
    let local_s = local.to_str().context("path is not UTF-8")?;
    let mut c: Command = if tftp_hpa {
        let mut c = ns.command("tftp");
        c.args([
            "-m",
            "binary",
            &SERVER_IP.to_string(),
            "-c",
            "get",
            SMALL,
            local_s,
        ]);
        c
    } else {
        let mut c = ns.command("atftp");
        c.args([
            "--get",
            "-r",
            SMALL,
            "-l",
            local_s,
            &SERVER_IP.to_string(),
            "69",
        ]);
        c
    };
    let out = cmd::output_timeout(&mut c, Duration::from_secs(30))?;
    let text = cmd::text(&out);
    let ok = std::fs::read(local).is_ok_and(|got| got == want);
    Ok((ok, text))
}

/// (c) 22,000 spoofed RRQs, then 60 real GETs.
fn slot_exhaustion(ctx: &Ctx, dir: &Path) -> Result<()> {
    let rig = Rig::start(ctx, dir)?;
    let want = pseudo_random(SMALL_LEN, 5);
    let started = Instant::now();
    let flood = rig.attacker.run_in(|| -> Result<Sender> {
        let mut tx = Sender {
            wire_bytes: 0,
            datagrams: 0,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        let req = rrq(SMALL, &[]);
        for i in 0..FLOOD_COUNT {
            if Instant::now() > deadline {
                bail!("the flood did not finish within 60 s ({i} sent)");
            }
            let src = SocketAddrV4::new(
                Ipv4Addr::new(198, 18, 8, 1 + (i % FLOOD_ADDRS) as u8),
                10_000 + (i / FLOOD_ADDRS) as u16,
            );
            let s = spoofing_socket(src)?;
            tx.send(&s, &req, SocketAddrV4::new(SERVER_IP, 69))?;
        }
        Ok(tx)
    })?;
    note(format!(
        "{} spoofed RRQs from {FLOOD_ADDRS} addresses in {:.1} s",
        flood.datagrams,
        started.elapsed().as_secs_f64()
    ));
    let mut failed = Vec::new();
    let gets = Instant::now();
    for i in 0..LEGIT_GETS {
        let tftp_hpa = i % 2 == 0;
        let (ok, text) = legit_get(
            &rig.attacker,
            &dir.join(format!("got-{i}")),
            tftp_hpa,
            &want,
        )?;
        if !ok {
            failed.push(format!(
                "GET {i} ({}): {}",
                if tftp_hpa { "tftp-hpa" } else { "atftp" },
                text.trim()
            ));
        }
    }
    note(format!(
        "{} of {LEGIT_GETS} legitimate GETs got the file, in {:.1} s (review: 13 of 60)",
        LEGIT_GETS - failed.len(),
        gets.elapsed().as_secs_f64()
    ));
    for f in failed.iter().take(5) {
        note(f);
    }
    rig.finish()?;
    ensure!(
        failed.is_empty(),
        "{} of {LEGIT_GETS} legitimate GETs failed after the spoofed flood",
        failed.len()
    );
    Ok(())
}

/// The time server's flood: one address asks 2,000 times within a second.
fn time_per_source_limit(ctx: &Ctx, dir: &Path) -> Result<()> {
    const REQUESTS: u32 = 2_000;
    /// The configured burst (10) and rate (5/s) over the flood's second and the drain, with
    /// room for the flood taking longer on a loaded machine.
    const MAX_ANSWERS: u32 = 40;
    let rig = Rig::start(ctx, dir)?;
    rig.attacker
        .ip(&["addr", "add", "198.18.0.3/24", "dev", ATTACKER_IF])?;
    let (answered, other) = rig.attacker.run_in(|| -> Result<(u32, bool)> {
        let to = SocketAddrV4::new(SERVER_IP, 37);
        let s = UdpSocket::bind(SocketAddrV4::new(ATTACKER_IP, 0))?;
        s.set_nonblocking(true)?;
        let mut buf = [0u8; 64];
        let mut answered = 0;
        let started = Instant::now();
        for i in 0..REQUESTS {
            s.send_to(&[], to)?;
            while s.recv_from(&mut buf).is_ok() {
                answered += 1;
            }
            if i % 100 == 99 {
                std::thread::sleep(Duration::from_millis(50));
            }
            ensure!(
                started.elapsed() < Duration::from_secs(30),
                "the flood took over 30 s"
            );
        }
        std::thread::sleep(Duration::from_millis(300));
        while s.recv_from(&mut buf).is_ok() {
            answered += 1;
        }
        // Another address, right after: answered.
        let o = UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 3), 0))?;
        o.set_read_timeout(Some(Duration::from_secs(2)))?;
        o.send_to(&[], to)?;
        let other = matches!(o.recv_from(&mut buf), Ok((4, _)));
        Ok((answered, other))
    })?;
    note(format!(
        "{REQUESTS} time requests from one address: {answered} answered; another address \
         answered: {other} (before: every request answered)"
    ));
    rig.finish()?;
    ensure!(
        answered <= MAX_ANSWERS,
        "{answered} of {REQUESTS} requests from one source answered (limit {MAX_ANSWERS})"
    );
    ensure!(other, "another address got no answer");
    Ok(())
}

/// The syslog flood: one forged source sends as fast as it can, then an honest one a few.
fn syslog_per_source_limit(ctx: &Ctx, dir: &Path) -> Result<()> {
    const FLOOD: u32 = 5_000;
    const HONEST: usize = 10;
    /// The defaults: `per_source_burst` and `per_source_rate`.
    const BURST: f64 = 200.0;
    const RATE: f64 = 20.0;
    const HONEST_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 3);
    let rig = Rig::start(ctx, dir)?;
    rig.attacker.ip(&[
        "addr",
        "add",
        &format!("{HONEST_IP}/24"),
        "dev",
        ATTACKER_IF,
    ])?;
    rig.provd
        .wait_udp(Some(SERVER_IP), 514, Duration::from_secs(5))?;
    let to = SocketAddrV4::new(SERVER_IP, 514);
    let flood_secs = rig.attacker.run_in(move || -> Result<f64> {
        let forged = spoofing_socket(SocketAddrV4::new(VICTIM_IP, 514))?;
        let started = Instant::now();
        for i in 0..FLOOD {
            let line = format!("<134>1 2026-12-07T10:00:00Z forger app - - - forged message {i}");
            forged.send_to(line.as_bytes(), to)?;
            if i % 500 == 499 {
                std::thread::sleep(Duration::from_millis(100));
            }
            ensure!(
                started.elapsed() < Duration::from_secs(30),
                "the flood took over 30 s"
            );
        }
        let secs = started.elapsed().as_secs_f64();
        let honest = UdpSocket::bind(SocketAddrV4::new(HONEST_IP, 0))?;
        for i in 0..HONEST {
            let line = format!("<134>1 2026-12-07T10:00:01Z honest app - - - message {i}");
            honest.send_to(line.as_bytes(), to)?;
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(secs)
    })?;
    std::thread::sleep(Duration::from_millis(500));
    let events = |who: Ipv4Addr| -> Result<Vec<serde_json::Value>> {
        rig.provd
            .query(&["syslog", "events", &who.to_string()])?
            .lines()
            .map(|l| serde_json::from_str(l).with_context(|| format!("event line {l:?}")))
            .collect()
    };
    let forged = events(VICTIM_IP)?;
    let honest = events(HONEST_IP)?;
    let marked = forged
        .iter()
        .chain(&honest)
        .filter(|e| e["leased"] == serde_json::Value::Bool(false))
        .count();
    // The burst, the rate over the flood and the query, and a second's slack for a slow run.
    let limit = (BURST + RATE * (flood_secs + 2.0)).ceil() as usize;
    note(format!(
        "{FLOOD} messages forged from {VICTIM_IP} in {flood_secs:.1} s: {} stored (limit {limit}, \
         before: {SYSLOG_RING}, the ring); {} of {HONEST} from {HONEST_IP} stored; {marked} of {} \
         marked as from an unleased source",
        forged.len(),
        honest.len(),
        forged.len() + honest.len()
    ));
    rig.finish()?;
    ensure!(
        forged.len() <= limit,
        "{} messages from one forged source stored (limit {limit})",
        forged.len()
    );
    ensure!(
        honest.len() == HONEST,
        "{} of {HONEST} messages from another source stored",
        honest.len()
    );
    ensure!(
        marked == forged.len() + honest.len(),
        "{} of {} events from unleased sources marked leased: false",
        marked,
        forged.len() + honest.len()
    );
    Ok(())
}
