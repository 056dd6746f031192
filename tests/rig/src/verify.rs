//! Asking the server on the wire whether it still holds a lease: a DHCPREQUEST in INIT-REBOOT
//! state (ciaddr 0, option 50 = the address, no option 54) relayed from `giaddr`, for which a
//! server holding the lease answers DHCPACK with that yiaddr.
//!
//! The socket is bound to `giaddr:67` inside the load namespace, where the server sends relayed
//! replies. Requests go out in a bounded window with bounded retries and an overall deadline.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use provd_dhcp::{Header, Message, MessageType, MessageWriter, code};

use crate::netns::Netns;

/// A client whose lease to verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub mac: [u8; 6],
    pub addr: Ipv4Addr,
    /// Option 61 as the client sent it during the load, if it did.
    pub client_id: Option<Vec<u8>>,
}

#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Requests outstanding at once.
    pub window: usize,
    /// Wait per attempt before resending.
    pub attempt_timeout: Duration,
    pub attempts: u32,
    /// Hard bound on the whole run.
    pub deadline: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            window: 64,
            attempt_timeout: Duration::from_millis(1000),
            attempts: 3,
            deadline: Duration::from_secs(120),
        }
    }
}

/// What came back for each target.
#[derive(Debug, Default)]
pub struct Outcome {
    pub acked: usize,
    /// ACK with another address: (target, yiaddr).
    pub wrong_addr: Vec<(Target, Ipv4Addr)>,
    pub naked: Vec<Target>,
    pub unanswered: Vec<Target>,
}

impl Outcome {
    pub fn ok(&self) -> bool {
        self.wrong_addr.is_empty() && self.naked.is_empty() && self.unanswered.is_empty()
    }

    pub fn describe(&self) -> String {
        let t = |t: &Target| format!("{} -> {}", crate::fmt_mac(&t.mac), t.addr);
        let mut parts = vec![format!("{} ACKed with the same address", self.acked)];
        if !self.wrong_addr.is_empty() {
            let ex: Vec<String> = self
                .wrong_addr
                .iter()
                .take(5)
                .map(|(x, y)| format!("{} but ACK yiaddr {y}", t(x)))
                .collect();
            parts.push(format!(
                "{} ACKed another address ({})",
                self.wrong_addr.len(),
                ex.join(", ")
            ));
        }
        if !self.naked.is_empty() {
            let ex: Vec<String> = self.naked.iter().take(5).map(t).collect();
            parts.push(format!("{} NAKed ({})", self.naked.len(), ex.join(", ")));
        }
        if !self.unanswered.is_empty() {
            let ex: Vec<String> = self.unanswered.iter().take(5).map(t).collect();
            parts.push(format!(
                "{} unanswered ({})",
                self.unanswered.len(),
                ex.join(", ")
            ));
        }
        parts.join("; ")
    }
}

/// Builds the INIT-REBOOT REQUEST for `t`, relayed from `giaddr`.
pub fn init_reboot_request(
    t: &Target,
    xid: u32,
    giaddr: Ipv4Addr,
    buf: &mut Vec<u8>,
) -> Result<()> {
    let mut chaddr = [0u8; 16];
    chaddr[..6].copy_from_slice(&t.mac);
    let mut h = Header::reply(xid, chaddr, 1, 6);
    h.op = 1;
    h.hops = 1;
    h.giaddr = giaddr;
    let mut w = MessageWriter::new(buf, &h, 1500)?;
    w.option(code::MESSAGE_TYPE, &[MessageType::Request as u8])?
        .ipv4(code::REQUESTED_IP, t.addr)?;
    if let Some(cid) = &t.client_id {
        w.option(code::CLIENT_ID, cid)?;
    }
    w.option(
        code::PARAM_REQUEST_LIST,
        &[
            code::SUBNET_MASK,
            code::ROUTER,
            code::LEASE_TIME,
            code::SERVER_ID,
        ],
    )?;
    w.finish()?;
    Ok(())
}

/// Sends INIT-REBOOT requests for all `targets` from `giaddr:67` inside `ns` to `server:67`.
pub fn init_reboot(
    ns: &Netns,
    giaddr: Ipv4Addr,
    server: Ipv4Addr,
    targets: Vec<Target>,
    opts: Options,
) -> Result<Outcome> {
    let sock = ns.run_in(move || {
        UdpSocket::bind(SocketAddrV4::new(giaddr, 67))
            .with_context(|| format!("binding {giaddr}:67 for the verifier"))
    })?;
    run(&sock, giaddr, SocketAddrV4::new(server, 67), targets, opts)
}

struct Pending {
    idx: usize,
    sent_at: Instant,
    attempts: u32,
}

fn run(
    sock: &UdpSocket,
    giaddr: Ipv4Addr,
    server: SocketAddrV4,
    targets: Vec<Target>,
    opts: Options,
) -> Result<Outcome> {
    sock.set_read_timeout(Some(Duration::from_millis(20)))?;
    let start = Instant::now();
    // xid = base + index: unique per target within the run.
    let base: u32 =
        (std::process::id() << 16) ^ (start.elapsed().subsec_nanos() & 0xffff) ^ 0x5a5a_0000;
    let mut next = 0usize;
    let mut pending: HashMap<u32, Pending> = HashMap::new();
    let mut out = Outcome::default();
    let mut buf = Vec::with_capacity(600);
    let mut rx = [0u8; 2048];
    while next < targets.len() || !pending.is_empty() {
        if start.elapsed() > opts.deadline {
            for p in pending.values() {
                out.unanswered.push(targets[p.idx].clone());
            }
            out.unanswered.extend(targets[next..].iter().cloned());
            break;
        }
        while pending.len() < opts.window && next < targets.len() {
            let xid = base.wrapping_add(next as u32);
            init_reboot_request(&targets[next], xid, giaddr, &mut buf)?;
            sock.send_to(&buf, server)?;
            pending.insert(
                xid,
                Pending {
                    idx: next,
                    sent_at: Instant::now(),
                    attempts: 1,
                },
            );
            next += 1;
        }
        match sock.recv_from(&mut rx) {
            Ok((n, _)) => {
                let Ok(m) = Message::parse(&rx[..n]) else {
                    continue;
                };
                let Some(p) = pending.remove(&m.xid()) else {
                    continue;
                };
                let t = &targets[p.idx];
                match m.message_type() {
                    Ok(Some(MessageType::Ack)) if m.yiaddr() == t.addr => out.acked += 1,
                    Ok(Some(MessageType::Ack)) => out.wrong_addr.push((t.clone(), m.yiaddr())),
                    Ok(Some(MessageType::Nak)) => out.naked.push(t.clone()),
                    _ => {
                        // Not an answer to our request: keep waiting for one.
                        pending.insert(m.xid(), p);
                    }
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(e.into()),
        }
        let now = Instant::now();
        let expired: Vec<u32> = pending
            .iter()
            .filter(|(_, p)| now.duration_since(p.sent_at) >= opts.attempt_timeout)
            .map(|(x, _)| *x)
            .collect();
        for xid in expired {
            let p = pending.get_mut(&xid).expect("listed above");
            if p.attempts >= opts.attempts {
                let idx = p.idx;
                pending.remove(&xid);
                out.unanswered.push(targets[idx].clone());
            } else {
                init_reboot_request(&targets[p.idx], xid, giaddr, &mut buf)?;
                sock.send_to(&buf, server)?;
                p.attempts += 1;
                p.sent_at = now;
            }
        }
    }
    Ok(out)
}

/// Picks up to `n` items, all of them if there are no more than `n`, else a uniform sample
/// (partial Fisher–Yates with a xorshift seeded by `seed`); order is kept stable for reports.
pub fn sample<T: Clone>(items: &[T], n: usize, seed: u64) -> Vec<T> {
    if items.len() <= n {
        return items.to_vec();
    }
    let mut idx: Vec<usize> = (0..items.len()).collect();
    let mut s = seed | 1;
    for i in 0..n {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        let j = i + (s % (items.len() - i) as u64) as usize;
        idx.swap(i, j);
    }
    let mut chosen = idx[..n].to_vec();
    chosen.sort_unstable();
    chosen.into_iter().map(|i| items[i].clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use provd_dhcp::RequestKind;

    #[test]
    fn request_is_init_reboot_relayed() {
        let t = Target {
            mac: [0, 0x0c, 1, 2, 3, 4],
            addr: Ipv4Addr::new(198, 19, 0, 10),
            client_id: Some(vec![1, 0, 0x0c, 1, 2, 3, 4]),
        };
        let mut buf = Vec::new();
        init_reboot_request(&t, 42, Ipv4Addr::new(198, 18, 4, 2), &mut buf).unwrap();
        let m = Message::parse(&buf).unwrap();
        assert_eq!(m.message_type(), Ok(Some(MessageType::Request)));
        assert_eq!(
            m.request_kind(),
            RequestKind::InitReboot { requested: t.addr }
        );
        assert_eq!(m.server_id(), None);
        assert!(m.ciaddr().is_unspecified());
        assert_eq!(m.giaddr(), Ipv4Addr::new(198, 18, 4, 2));
        assert_eq!(m.mac(), Some(t.mac));
        assert_eq!(m.xid(), 42);
        assert_eq!(m.client_id().unwrap().as_ref(), &[1, 0, 0x0c, 1, 2, 3, 4]);
        assert!(matches!(m.op(), provd_dhcp::Op::Request));
    }

    #[test]
    fn sample_is_bounded_distinct_and_total_when_small() {
        let items: Vec<u32> = (0..10_000).collect();
        let s = sample(&items, 500, 99);
        assert_eq!(s.len(), 500);
        let mut d = s.clone();
        d.dedup();
        assert_eq!(d.len(), 500);
        assert!(s.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(sample(&items[..10], 500, 1).len(), 10);
        // Not just the first n.
        assert!(s.iter().any(|&v| v >= 500));
    }

    #[test]
    fn verifier_counts_ack_nak_wrong_and_silence() {
        // A fake server on loopback: ACKs the first target, NAKs the second, ACKs the third
        // with a different address, ignores the fourth.
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let server_addr = match server.local_addr().unwrap() {
            std::net::SocketAddr::V4(a) => a,
            _ => unreachable!(),
        };
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        let targets: Vec<Target> = (0..4u8)
            .map(|i| Target {
                mac: [2, 0, 0, 0, 0, i],
                addr: Ipv4Addr::new(198, 19, 0, 10 + i),
                client_id: None,
            })
            .collect();
        let srv = std::thread::spawn(move || {
            let mut rx = [0u8; 2048];
            server
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            let mut answered = 0;
            while answered < 3 {
                let (n, from) = server.recv_from(&mut rx).unwrap();
                let m = Message::parse(&rx[..n]).unwrap();
                let last = m.mac().unwrap()[5];
                let (ty, yi) = match last {
                    0 => (MessageType::Ack, m.requested_ip().unwrap()),
                    1 => (MessageType::Nak, Ipv4Addr::UNSPECIFIED),
                    2 => (MessageType::Ack, Ipv4Addr::new(198, 19, 9, 9)),
                    _ => continue,
                };
                let mut buf = Vec::new();
                let mut h = Header::reply(m.xid(), *m.chaddr_field(), 1, 6);
                h.yiaddr = yi;
                let mut w = MessageWriter::new(&mut buf, &h, 1500).unwrap();
                w.option(code::MESSAGE_TYPE, &[ty as u8]).unwrap();
                w.finish().unwrap();
                server.send_to(&buf, from).unwrap();
                answered += 1;
            }
        });
        let opts = Options {
            window: 2,
            attempt_timeout: Duration::from_millis(100),
            attempts: 2,
            deadline: Duration::from_secs(10),
        };
        let out = run(
            &client,
            Ipv4Addr::new(198, 18, 4, 2),
            server_addr,
            targets,
            opts,
        )
        .unwrap();
        srv.join().unwrap();
        assert_eq!(out.acked, 1);
        assert_eq!(out.naked.len(), 1);
        assert_eq!(out.wrong_addr.len(), 1);
        assert_eq!(out.wrong_addr[0].1, Ipv4Addr::new(198, 19, 9, 9));
        assert_eq!(out.unanswered.len(), 1);
        assert!(!out.ok());
        assert!(out.describe().contains("1 unanswered"));
    }
}
