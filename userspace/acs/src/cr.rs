//! Connection requests (TR-069 §3.2.2 and Annex G, ex TR-111): the UDP message with its
//! HMAC-SHA1 signature, the STUN Binding exchange (RFC 5389) through which the ACS learns each
//! device's public UDP address, and the rate limit on waking devices.

use hmac::{Hmac, Mac};
use sha1::Sha1;

use crate::auth::hex;
use provd_limit::{Bucket, Rate};

/// `sig = hex(HMAC-SHA1(password, ts || id || un || cn))`, upper case.
pub fn udp_signature(password: &str, ts: u64, id: u32, un: &str, cn: &str) -> String {
    let mut m = <Hmac<Sha1> as Mac>::new_from_slice(password.as_bytes())
        .expect("HMAC takes a key of any length");
    m.update(format!("{ts}{id}{un}{cn}").as_bytes());
    hex(&m.finalize().into_bytes()).to_ascii_uppercase()
}

/// The UDP connection request datagram for `host_port` (`203.0.113.7:30005`).
pub fn udp_message(
    host_port: &str,
    ts: u64,
    id: u32,
    un: &str,
    cn: &str,
    password: &str,
) -> String {
    let sig = udp_signature(password, ts, id, un, cn);
    format!(
        "GET http://{host_port}?ts={ts}&id={id}&un={un}&cn={cn}&sig={sig} HTTP/1.1\r\nHost: {host_port}\r\n\r\n"
    )
}

/// A UDP connection request as the CPE reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdpRequest {
    pub ts: u64,
    pub id: u32,
    pub un: String,
    pub cn: String,
    pub sig: String,
}

impl UdpRequest {
    /// Parses the request line of a datagram; `None` if it is not one.
    pub fn parse(datagram: &[u8]) -> Option<UdpRequest> {
        let text = std::str::from_utf8(datagram).ok()?;
        let line = text.lines().next()?;
        let target = line.strip_prefix("GET ")?.strip_suffix(" HTTP/1.1")?;
        let query = target.split_once('?')?.1;
        let (mut ts, mut id, mut un, mut cn, mut sig) = (None, None, None, None, None);
        for kv in query.split('&') {
            let (k, v) = kv.split_once('=')?;
            match k {
                "ts" => ts = v.parse().ok(),
                "id" => id = v.parse().ok(),
                "un" => un = Some(v.to_owned()),
                "cn" => cn = Some(v.to_owned()),
                "sig" => sig = Some(v.to_owned()),
                _ => {}
            }
        }
        Some(UdpRequest {
            ts: ts?,
            id: id?,
            un: un?,
            cn: cn?,
            sig: sig?,
        })
    }

    pub fn verify(&self, password: &str) -> bool {
        udp_signature(password, self.ts, self.id, &self.un, &self.cn)
            .eq_ignore_ascii_case(&self.sig)
    }
}

const MAGIC: u32 = 0x2112_A442;
const BINDING_REQUEST: u16 = 0x0001;
const BINDING_RESPONSE: u16 = 0x0101;
const ATTR_USERNAME: u16 = 0x0006;
const ATTR_XOR_MAPPED_ADDRESS: u16 = 0x0020;
/// TR-111 CONNECTION-REQUEST-BINDING.
const ATTR_CR_BINDING: u16 = 0xC001;

/// A STUN Binding Request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindingRequest {
    pub transaction: [u8; 12],
    pub username: Option<String>,
    /// TR-111: the request carries CONNECTION-REQUEST-BINDING.
    pub cr_binding: bool,
}

/// Parses a STUN Binding Request; `None` for anything else (other methods, responses, junk).
pub fn parse_binding_request(b: &[u8]) -> Option<BindingRequest> {
    if b.len() < 20 || b.len() > 1024 {
        return None;
    }
    let ty = u16::from_be_bytes([b[0], b[1]]);
    let len = u16::from_be_bytes([b[2], b[3]]) as usize;
    if ty != BINDING_REQUEST
        || u32::from_be_bytes([b[4], b[5], b[6], b[7]]) != MAGIC
        || !len.is_multiple_of(4)
        || 20 + len != b.len()
    {
        return None;
    }
    let mut transaction = [0; 12];
    transaction.copy_from_slice(&b[8..20]);
    let mut req = BindingRequest {
        transaction,
        username: None,
        cr_binding: false,
    };
    let mut at = 20;
    while at + 4 <= b.len() {
        let t = u16::from_be_bytes([b[at], b[at + 1]]);
        let l = u16::from_be_bytes([b[at + 2], b[at + 3]]) as usize;
        let v = b.get(at + 4..at + 4 + l)?;
        match t {
            ATTR_USERNAME => req.username = Some(String::from_utf8_lossy(v).into_owned()),
            ATTR_CR_BINDING => req.cr_binding = true,
            _ => {}
        }
        at += 4 + l.div_ceil(4) * 4;
    }
    Some(req)
}

fn attr(out: &mut Vec<u8>, t: u16, v: &[u8]) {
    out.extend_from_slice(&t.to_be_bytes());
    out.extend_from_slice(&(v.len() as u16).to_be_bytes());
    out.extend_from_slice(v);
    out.resize(out.len() + (4 - v.len() % 4) % 4, 0);
}

fn finish(mut out: Vec<u8>) -> Vec<u8> {
    let len = (out.len() - 20) as u16;
    out[2..4].copy_from_slice(&len.to_be_bytes());
    out
}

fn header(ty: u16, transaction: &[u8; 12]) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&ty.to_be_bytes());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&MAGIC.to_be_bytes());
    out.extend_from_slice(transaction);
    out
}

/// The Binding Success Response telling the sender its address as seen here.
pub fn binding_response(transaction: &[u8; 12], mapped: std::net::SocketAddrV4) -> Vec<u8> {
    let mut out = header(BINDING_RESPONSE, transaction);
    let mut v = vec![0, 1];
    v.extend_from_slice(&(mapped.port() ^ (MAGIC >> 16) as u16).to_be_bytes());
    v.extend_from_slice(&(u32::from(*mapped.ip()) ^ MAGIC).to_be_bytes());
    attr(&mut out, ATTR_XOR_MAPPED_ADDRESS, &v);
    finish(out)
}

/// A TR-111 Binding Request (what the CPE simulator sends).
pub fn binding_request(transaction: &[u8; 12], username: &str) -> Vec<u8> {
    let mut out = header(BINDING_REQUEST, transaction);
    attr(&mut out, ATTR_CR_BINDING, b"dslforum.org/TR-111 ");
    attr(&mut out, ATTR_USERNAME, username.as_bytes());
    finish(out)
}

/// The XOR-MAPPED-ADDRESS of a Binding Success Response.
pub fn parse_binding_response(b: &[u8]) -> Option<std::net::SocketAddrV4> {
    if b.len() < 20 || u16::from_be_bytes([b[0], b[1]]) != BINDING_RESPONSE {
        return None;
    }
    let mut at = 20;
    while at + 4 <= b.len() {
        let t = u16::from_be_bytes([b[at], b[at + 1]]);
        let l = u16::from_be_bytes([b[at + 2], b[at + 3]]) as usize;
        let v = b.get(at + 4..at + 4 + l)?;
        if t == ATTR_XOR_MAPPED_ADDRESS && l == 8 && v[1] == 1 {
            let port = u16::from_be_bytes([v[2], v[3]]) ^ (MAGIC >> 16) as u16;
            let ip = u32::from_be_bytes([v[4], v[5], v[6], v[7]]) ^ MAGIC;
            return Some(std::net::SocketAddrV4::new(ip.into(), port));
        }
        at += 4 + l.div_ceil(4) * 4;
    }
    None
}

/// How many connection requests the ACS may send: a token bucket of `per_second` a second,
/// bursts of one second, on a clock in milliseconds. (Not `provd_udp::RateLimit`, which gates
/// log lines.)
#[derive(Debug)]
pub struct CrLimiter {
    rate: Rate,
    bucket: Bucket,
}

impl CrLimiter {
    pub fn new(per_second: u32) -> Self {
        let per_second = per_second.max(1);
        let rate = Rate::per_ms(per_second, per_second);
        CrLimiter {
            rate,
            bucket: Bucket::full(rate, 0),
        }
    }

    /// Takes a token at `now_ms` if one is left.
    pub fn take(&mut self, now_ms: u64) -> bool {
        self.bucket.take(self.rate, now_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// spec/cwmp.md §6 and tests/data/cwmp/samples/10_udp_connection_request.txt.
    #[test]
    fn spec_vector() {
        let sig = udp_signature(
            "s3cr3t",
            1_714_564_800,
            4711,
            "cpe0015cf123456",
            "XTGRWIPC6D3IPXS3",
        );
        assert_eq!(sig, "C6354C6815D5CF0457D046EBA536302BAC7CEDA4");
        let sample = std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../tests/data/cwmp/samples/10_udp_connection_request.txt"),
        )
        .unwrap();
        let r = UdpRequest::parse(&sample).unwrap();
        assert!(r.verify("s3cr3t"));
        assert!(!r.verify("s3cr3u"));
        let m = udp_message(
            "203.0.113.7:30005",
            1_714_564_800,
            4711,
            "cpe0015cf123456",
            "XTGRWIPC6D3IPXS3",
            "s3cr3t",
        );
        assert_eq!(UdpRequest::parse(m.as_bytes()), Some(r));
    }

    #[test]
    fn stun_round_trip() {
        let t = [9; 12];
        let req = binding_request(&t, "cpe-1");
        let p = parse_binding_request(&req).unwrap();
        assert_eq!(p.username.as_deref(), Some("cpe-1"));
        assert!(p.cr_binding);
        let a = "198.51.100.7:40000".parse().unwrap();
        assert_eq!(parse_binding_response(&binding_response(&t, a)), Some(a));
        assert_eq!(parse_binding_request(&req[..19]), None);
    }

    #[test]
    fn cr_limiter() {
        let mut r = CrLimiter::new(2);
        assert!(r.take(0) && r.take(0) && !r.take(0));
        assert!(r.take(600) && !r.take(600));
    }

    proptest::proptest! {
        #[test]
        fn stun_parse_total(b in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            let _ = parse_binding_request(&b);
            let _ = parse_binding_response(&b);
            let _ = UdpRequest::parse(&b);
        }
    }
}
