//! `verify`: asks the server to confirm leases it granted. For each `mac addr [client-id-hex]`
//! line it sends a relayed DHCPREQUEST in INIT-REBOOT state (ciaddr 0, option 50 = addr, no
//! option 54; option 61 = the client id when the line has one, as a server may key leases on it)
//! and expects an ACK with yiaddr = addr. Up to [`ATTEMPTS`] sends per pair, same xid each time.

use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use provd_dhcp::MessageType;

use crate::io::{RecvBatch, SendQueue, Socket};
use crate::packet;

pub const ATTEMPTS: u8 = 3;

#[derive(Debug, Clone)]
pub struct Config {
    pub server: SocketAddrV4,
    pub relay: SocketAddrV4,
    pub pairs: Vec<Pair>,
    /// Wait per attempt.
    pub timeout: Duration,
    /// Requests outstanding at once.
    pub window: usize,
    /// Hard stop for the whole verification.
    pub limit: Duration,
}

/// A client and the address the server granted it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    pub mac: [u8; 6],
    pub addr: Ipv4Addr,
    /// Option 61 as the client sent it, repeated in the request; 1 to 255 bytes.
    pub client_id: Option<Vec<u8>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Waiting,
    InFlight { attempt: u8 },
    Ok,
    Mismatched,
    Unanswered,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    pub ok: u64,
    pub mismatched: u64,
    pub unanswered: u64,
}

impl Outcome {
    pub fn line(&self) -> String {
        format!(
            "VERIFY ok={} mismatched={} unanswered={}",
            self.ok, self.mismatched, self.unanswered
        )
    }
}

/// Parses `mac addr [client-id-hex]` lines (the client id as hex digits without separators);
/// blank lines and `#` comments are skipped.
pub fn parse_pairs(text: &str) -> Result<Vec<Pair>> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut it = line.split_whitespace();
        let (Some(mac), Some(addr), cid, None) = (it.next(), it.next(), it.next(), it.next())
        else {
            bail!(
                "line {}: expected `mac addr [client-id-hex]`, got {line:?}",
                n + 1
            );
        };
        let mac = parse_mac(mac).with_context(|| format!("line {}: bad MAC {mac:?}", n + 1))?;
        let addr: Ipv4Addr = addr
            .parse()
            .with_context(|| format!("line {}: bad address {addr:?}", n + 1))?;
        let client_id = cid
            .map(|c| {
                parse_client_id(c).with_context(|| format!("line {}: bad client id {c:?}", n + 1))
            })
            .transpose()?;
        out.push(Pair {
            mac,
            addr,
            client_id,
        });
    }
    Ok(out)
}

/// Hex digits, two per byte, 1 to 255 bytes (what one option 61 holds).
fn parse_client_id(s: &str) -> Result<Vec<u8>> {
    if let Some(c) = s.chars().find(|c| !c.is_ascii_hexdigit()) {
        bail!("{c:?} is not a hex digit");
    }
    if !s.len().is_multiple_of(2) {
        bail!("odd number of hex digits");
    }
    if !(2..=510).contains(&s.len()) {
        bail!("{} bytes; option 61 holds 1 to 255", s.len() / 2);
    }
    let digit = |d: u8| (d as char).to_digit(16).expect("checked above") as u8;
    Ok(s.as_bytes()
        .chunks(2)
        .map(|d| digit(d[0]) << 4 | digit(d[1]))
        .collect())
}

fn parse_mac(s: &str) -> Result<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = s.split(':');
    for b in &mut mac {
        let p = parts.next().context("too few octets")?;
        if p.len() != 2 {
            bail!("octet {p:?} is not two hex digits");
        }
        *b = u8::from_str_radix(p, 16)?;
    }
    if parts.next().is_some() {
        bail!("too many octets");
    }
    Ok(mac)
}

pub fn run(cfg: &Config) -> Result<Outcome> {
    if cfg.pairs.len() > u32::MAX as usize {
        bail!("too many pairs");
    }
    let sock = Socket::bind(cfg.relay)
        .with_context(|| format!("binding the relay socket to {}", cfg.relay))?;
    let mut q = SendQueue::new(cfg.server);
    let mut rb = RecvBatch::new();
    let relay = *cfg.relay.ip();
    let n = cfg.pairs.len();
    let mut status = vec![Status::Waiting; n];
    // (pair, attempt, deadline): deadlines are in send order, so the front expires first.
    let mut timers: VecDeque<(usize, u8, Instant)> = VecDeque::with_capacity(cfg.window);
    let xid_base = std::process::id().wrapping_mul(0x0100_0193);
    let t0 = Instant::now();
    let mut next = 0usize;
    let mut in_flight = 0usize;
    let mut out = Outcome::default();
    let mut shown = 0;
    while (next < n || in_flight > 0) && t0.elapsed() < cfg.limit {
        // Replies.
        loop {
            let got = rb.recv(&sock).context("recvmmsg")?;
            for i in 0..got {
                let Some(r) = packet::parse_reply(rb.get(i)) else {
                    continue;
                };
                let idx = r.xid.wrapping_sub(xid_base) as usize;
                if idx >= n || !matches!(status[idx], Status::InFlight { .. }) {
                    continue;
                }
                let Pair { mac, addr, .. } = cfg.pairs[idx];
                if r.mac != mac {
                    continue;
                }
                let verdict = match r.kind {
                    MessageType::Ack if r.yiaddr == addr => Status::Ok,
                    MessageType::Ack | MessageType::Nak => Status::Mismatched,
                    _ => continue,
                };
                if verdict == Status::Mismatched && shown < 10 {
                    shown += 1;
                    let mut m = Vec::new();
                    crate::run::write_pair(&mut m, mac, addr)?;
                    eprintln!(
                        "verify: {} for {}: yiaddr {}",
                        r.kind.name(),
                        String::from_utf8_lossy(&m).trim_end(),
                        r.yiaddr
                    );
                }
                status[idx] = verdict;
                in_flight -= 1;
            }
            if got == 0 {
                break;
            }
        }
        let now = Instant::now();
        // Retries and give-ups.
        while let Some(&(idx, attempt, deadline)) = timers.front() {
            if deadline > now {
                break;
            }
            timers.pop_front();
            if status[idx] != (Status::InFlight { attempt }) {
                continue;
            }
            if attempt < ATTEMPTS {
                send(&mut q, &sock, cfg, idx, xid_base, relay)?;
                status[idx] = Status::InFlight {
                    attempt: attempt + 1,
                };
                timers.push_back((idx, attempt + 1, now + cfg.timeout));
            } else {
                status[idx] = Status::Unanswered;
                in_flight -= 1;
            }
        }
        // New requests.
        while next < n && in_flight < cfg.window {
            send(&mut q, &sock, cfg, next, xid_base, relay)?;
            status[next] = Status::InFlight { attempt: 1 };
            timers.push_back((next, 1, now + cfg.timeout));
            in_flight += 1;
            next += 1;
        }
        flush(&mut q, &sock)?;
        let wait = timers
            .front()
            .map_or(Duration::from_millis(10), |t| {
                t.2.saturating_duration_since(now)
            })
            .min(Duration::from_millis(10));
        sock.wait(false, wait).context("ppoll")?;
    }
    for s in status {
        match s {
            Status::Ok => out.ok += 1,
            Status::Mismatched => out.mismatched += 1,
            Status::Waiting | Status::InFlight { .. } | Status::Unanswered => out.unanswered += 1,
        }
    }
    Ok(out)
}

fn send(
    q: &mut SendQueue,
    sock: &Socket,
    cfg: &Config,
    idx: usize,
    xid_base: u32,
    relay: Ipv4Addr,
) -> Result<()> {
    if q.is_full() {
        flush(q, sock)?;
    }
    let p = &cfg.pairs[idx];
    let xid = xid_base.wrapping_add(idx as u32);
    q.push(|b| packet::request_init_reboot(b, xid, p.mac, relay, p.addr, p.client_id.as_deref()));
    Ok(())
}

fn flush(q: &mut SendQueue, sock: &Socket) -> Result<()> {
    let t = Instant::now();
    while !q.flush(sock).context("sendmmsg")? {
        if t.elapsed() > Duration::from_secs(5) {
            bail!("the socket took no datagrams for 5 s");
        }
        sock.wait(true, Duration::from_millis(1)).context("ppoll")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// The test's clients with an even last MAC byte send option 61 = 0xff, the MAC.
    fn client_id_of(mac: [u8; 6]) -> Option<Vec<u8>> {
        mac[5]
            .is_multiple_of(2)
            .then(|| [&[0xff][..], &mac].concat())
    }

    /// INIT-REBOOT answers by last address byte mod 10: 1 = ACK of another address, 2 = NAK,
    /// 3 = silence, 4 = silence the first time only; otherwise ACK of the requested address.
    fn fake_server(sock: std::net::UdpSocket, stop: Arc<AtomicBool>) {
        use provd_dhcp::{Header, Message, MessageWriter, RequestKind, code};
        sock.set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        let mut seen = HashSet::new();
        let mut buf = [0u8; 1500];
        let mut out = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            let Ok((n, from)) = sock.recv_from(&mut buf) else {
                continue;
            };
            let m = Message::parse(&buf[..n]).unwrap();
            let RequestKind::InitReboot { requested } = m.request_kind() else {
                panic!("not INIT-REBOOT: {m:?}");
            };
            assert_eq!(m.giaddr(), Ipv4Addr::LOCALHOST);
            assert_eq!(
                m.client_id().map(|c| c.to_vec()),
                client_id_of(m.mac().unwrap()),
                "option 61 of {m:?}"
            );
            let (kind, yiaddr) = match requested.octets()[3] % 10 {
                1 => (MessageType::Ack, Ipv4Addr::new(10, 9, 9, 9)),
                2 => (MessageType::Nak, Ipv4Addr::UNSPECIFIED),
                3 => continue,
                4 if seen.insert(requested) => continue,
                _ => (MessageType::Ack, requested),
            };
            let mut h = Header::reply(m.xid(), *m.chaddr_field(), 1, 6);
            h.yiaddr = yiaddr;
            let mut w = MessageWriter::new(&mut out, &h, 548).unwrap();
            w.option(code::MESSAGE_TYPE, &[kind as u8]).unwrap();
            let len = w.finish().unwrap();
            sock.send_to(&out[..len], from).unwrap();
        }
    }

    #[test]
    fn verify_against_a_fake_server() {
        let server = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let std::net::SocketAddr::V4(server_addr) = server.local_addr().unwrap() else {
            unreachable!()
        };
        let stop = Arc::new(AtomicBool::new(false));
        let t = std::thread::spawn({
            let stop = Arc::clone(&stop);
            move || fake_server(server, stop)
        });
        let pairs: Vec<_> = (0..100u8)
            .map(|i| {
                let mac = [2, 0, 0, 0, 0, i];
                Pair {
                    mac,
                    addr: Ipv4Addr::new(198, 19, 0, i),
                    client_id: client_id_of(mac),
                }
            })
            .collect();
        let out = run(&Config {
            server: server_addr,
            relay: SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0),
            pairs,
            timeout: Duration::from_millis(100),
            window: 16,
            limit: Duration::from_secs(30),
        })
        .unwrap();
        stop.store(true, Ordering::Relaxed);
        t.join().unwrap();
        assert_eq!(
            out,
            Outcome {
                ok: 70,
                mismatched: 20,
                unanswered: 10
            }
        );
        assert_eq!(out.line(), "VERIFY ok=70 mismatched=20 unanswered=10");
    }

    #[test]
    fn pairs_file() {
        let p = parse_pairs(
            "# dump\n02:00:00:00:00:01 198.19.0.10\n\n02:00:00:00:00:02  198.19.0.11\n",
        )
        .unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(
            p[1],
            Pair {
                mac: [2, 0, 0, 0, 0, 2],
                addr: Ipv4Addr::new(198, 19, 0, 11),
                client_id: None
            }
        );
        assert!(parse_pairs("02:00:00:00:00 1.2.3.4").is_err());
        assert!(parse_pairs("02:00:00:00:00:01").is_err());
        assert!(parse_pairs("02:00:00:00:00:01 1.2.3").is_err());
        assert!(parse_pairs("02:00:00:00:00:01:02 1.2.3.4").is_err());
        assert!(parse_pairs("02:00:00:00:00:01 1.2.3.4 0102 extra").is_err());
    }

    #[test]
    fn pairs_file_with_client_ids() {
        let p = parse_pairs(
            "00:0c:01:02:03:04 198.19.0.10 01000c01020304\n\
             00:0c:01:02:03:05 198.19.0.11\n\
             00:0c:01:02:03:06\t198.19.0.12  FF00AB\n",
        )
        .unwrap();
        assert_eq!(
            p,
            [
                Pair {
                    mac: [0, 0x0c, 1, 2, 3, 4],
                    addr: Ipv4Addr::new(198, 19, 0, 10),
                    client_id: Some(vec![1, 0, 0x0c, 1, 2, 3, 4]),
                },
                Pair {
                    mac: [0, 0x0c, 1, 2, 3, 5],
                    addr: Ipv4Addr::new(198, 19, 0, 11),
                    client_id: None,
                },
                Pair {
                    mac: [0, 0x0c, 1, 2, 3, 6],
                    addr: Ipv4Addr::new(198, 19, 0, 12),
                    client_id: Some(vec![0xff, 0, 0xab]),
                },
            ]
        );
        let max = "ab".repeat(255);
        let p = parse_pairs(&format!("02:00:00:00:00:01 1.2.3.4 {max}")).unwrap();
        assert_eq!(p[0].client_id.as_deref(), Some(&[0xab; 255][..]));
    }

    #[test]
    fn malformed_client_id_names_its_line() {
        let good = "02:00:00:00:00:01 198.19.0.10 0102\n";
        for bad in ["01020", "01zz", "+1", "0x01", "01:02", &"ab".repeat(256)] {
            let text = format!("# header\n{good}\n02:00:00:00:00:02 198.19.0.11 {bad}\n");
            let e = format!("{:#}", parse_pairs(&text).unwrap_err());
            assert!(e.starts_with("line 4: bad client id"), "{bad:?}: {e}");
        }
    }
}
