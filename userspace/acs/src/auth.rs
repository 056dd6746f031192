//! HTTP authentication of CPEs (Basic, and Digest per RFC 7616 with SHA-256 and MD5, qop=auth)
//! and the client half of Digest for connection requests, where the ACS is the client.
//!
//! Nonces are stateless: `hex(expiry) || hex(serial) || hex(HMAC-SHA256(secret, expiry ||
//! serial)[..16])`, the serial counting challenges so no two clients share a nonce; any
//! nonce the server issued can be checked without a table, and an expired one earns a fresh
//! challenge with `stale=true` (the CPE retries without asking its user). Replay protection is
//! the nonce count: for each live nonce the highest `nc` accepted is kept, and a request whose
//! `nc` is not higher is refused. Entries go when their nonce expires ([`Digest::sweep`]), so
//! the table holds at most the nonces issued within one lifetime.

use std::collections::HashMap;

use base64::Engine;
use dashmap::DashMap;
use hmac::{Hmac, Mac};
use md5::Md5;
use sha2::{Digest as _, Sha256};

/// The digest algorithms offered, strongest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Sha256,
    Md5,
}

impl Algorithm {
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Md5 => "MD5",
        }
    }

    fn parse(s: &str) -> Option<Algorithm> {
        match s.to_ascii_uppercase().as_str() {
            "SHA-256" => Some(Algorithm::Sha256),
            "MD5" => Some(Algorithm::Md5),
            _ => None,
        }
    }

    pub fn hash(self, s: &str) -> String {
        match self {
            Algorithm::Sha256 => hex(&Sha256::digest(s.as_bytes())),
            Algorithm::Md5 => hex(&Md5::digest(s.as_bytes())),
        }
    }
}

pub fn hex(b: &[u8]) -> String {
    const D: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        s.push(D[(x >> 4) as usize] as char);
        s.push(D[(x & 15) as usize] as char);
    }
    s
}

fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The parameters of a `Digest` Authorization or WWW-Authenticate header.
pub fn parse_params(s: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        let Some(eq) = rest.find('=') else { break };
        let key = rest[..eq]
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        rest = rest[eq + 1..].trim_start();
        let value;
        if let Some(r) = rest.strip_prefix('"') {
            // Quoted string with backslash escapes.
            let mut v = String::new();
            let mut chars = r.char_indices();
            let mut end = r.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            v.push(n);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => v.push(c),
                }
            }
            value = v;
            rest = &r[end.min(r.len())..];
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            value = rest[..end].trim().to_owned();
            rest = &rest[end..];
        }
        rest = rest.trim_start().trim_start_matches(',').trim_start();
        if key.len() <= 32 && out.len() < 32 {
            out.insert(key, value);
        }
    }
    out
}

/// Who may log in, and how.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    map: HashMap<String, String>,
}

impl Credentials {
    pub fn new(pairs: impl IntoIterator<Item = (String, String)>) -> Self {
        Credentials {
            map: pairs.into_iter().filter(|(u, _)| !u.is_empty()).collect(),
        }
    }

    pub fn password(&self, user: &str) -> Option<&str> {
        self.map.get(user).map(String::as_str)
    }

    /// Whether `user` has a password here.
    pub fn knows(&self, user: &str) -> bool {
        self.map.contains_key(user)
    }
}

/// The username an Authorization header (Basic or Digest) claims, unchecked: what the
/// failed-authentication throttle keys on before the password is looked at.
pub fn claimed_username(header: Option<&str>) -> Option<String> {
    let h = header?;
    if let Some(b) = h.strip_prefix("Basic ") {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(b.trim())
            .ok()?;
        let s = String::from_utf8(raw).ok()?;
        return s.split_once(':').map(|(u, _)| u.to_owned());
    }
    parse_params(h.strip_prefix("Digest ")?).remove("username")
}

/// What an Authorization header earned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Ok {
        username: String,
    },
    /// 401 with fresh challenges; `stale`: the nonce was good but expired.
    Challenge {
        stale: bool,
    },
    /// 401: wrong password, replayed nonce count, malformed header.
    Denied {
        why: &'static str,
    },
}

impl Verdict {
    /// A password guess that was evaluated and wrong (what the throttle counts); other
    /// denials (malformed headers, replays, foreign nonces) tell the sender nothing about a
    /// password.
    pub fn is_wrong_guess(&self) -> bool {
        matches!(
            self,
            Verdict::Denied {
                why: "wrong credentials" | "unknown user"
            }
        )
    }
}

/// Basic authentication.
pub fn check_basic(creds: &Credentials, header: Option<&str>) -> Verdict {
    let Some(h) = header.and_then(|h| h.strip_prefix("Basic ")) else {
        return Verdict::Challenge { stale: false };
    };
    let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(h.trim()) else {
        return Verdict::Denied { why: "bad base64" };
    };
    let Ok(s) = std::str::from_utf8(&raw) else {
        return Verdict::Denied { why: "bad utf-8" };
    };
    let Some((user, pass)) = s.split_once(':') else {
        return Verdict::Denied { why: "no colon" };
    };
    match creds.password(user) {
        Some(p) if ct_eq(p.as_bytes(), pass.as_bytes()) => Verdict::Ok {
            username: user.to_owned(),
        },
        _ => Verdict::Denied {
            why: "wrong credentials",
        },
    }
}

/// Digest authentication, server side.
#[derive(Debug)]
pub struct Digest {
    pub realm: String,
    secret: [u8; 32],
    lifetime: u32,
    creds: Credentials,
    /// nonce -> highest nc accepted.
    seen: DashMap<Box<str>, u32, foldhash::fast::RandomState>,
    serial: std::sync::atomic::AtomicU32,
}

impl Digest {
    pub fn new(realm: String, secret: [u8; 32], lifetime: u32, creds: Credentials) -> Self {
        Digest {
            realm,
            secret,
            lifetime,
            creds,
            seen: DashMap::default(),
            serial: std::sync::atomic::AtomicU32::new(0),
        }
    }

    /// Who may log in.
    pub fn credentials(&self) -> &Credentials {
        &self.creds
    }

    fn mac(&self, expiry: u32, serial: u32) -> String {
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&self.secret)
            .expect("HMAC takes a key of any length");
        m.update(&expiry.to_be_bytes());
        m.update(&serial.to_be_bytes());
        hex(&m.finalize().into_bytes()[..16])
    }

    pub fn nonce(&self, now: u32) -> String {
        let expiry = now.saturating_add(self.lifetime);
        let serial = self
            .serial
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        format!("{expiry:08x}{serial:08x}{}", self.mac(expiry, serial))
    }

    /// The WWW-Authenticate values to send with a 401, one per algorithm (SHA-256 first).
    pub fn challenges(&self, now: u32, stale: bool) -> Vec<String> {
        let nonce = self.nonce(now);
        [Algorithm::Sha256, Algorithm::Md5]
            .iter()
            .map(|a| {
                format!(
                    "Digest realm=\"{}\", qop=\"auth\", algorithm={}, nonce=\"{nonce}\", opaque=\"provd\"{}",
                    self.realm,
                    a.name(),
                    if stale { ", stale=true" } else { "" }
                )
            })
            .collect()
    }

    /// Checks a request's Authorization header.
    pub fn check(&self, now: u32, method: &str, uri: &str, header: Option<&str>) -> Verdict {
        let Some(h) = header.and_then(|h| h.strip_prefix("Digest ")) else {
            return Verdict::Challenge { stale: false };
        };
        let p = parse_params(h);
        let get = |k: &str| p.get(k).map(String::as_str);
        let (Some(user), Some(nonce), Some(duri), Some(resp)) =
            (get("username"), get("nonce"), get("uri"), get("response"))
        else {
            return Verdict::Denied {
                why: "missing digest parameters",
            };
        };
        if get("realm") != Some(self.realm.as_str()) {
            return Verdict::Denied { why: "wrong realm" };
        }
        let Some(alg) = Algorithm::parse(get("algorithm").unwrap_or("MD5")) else {
            return Verdict::Denied {
                why: "unsupported algorithm",
            };
        };
        if duri != uri {
            return Verdict::Denied {
                why: "uri does not match the request",
            };
        }
        // The nonce: ours, and not expired.
        if nonce.len() != 48 || !nonce.is_ascii() {
            return Verdict::Denied {
                why: "foreign nonce",
            };
        }
        let (Ok(expiry), Ok(serial)) = (
            u32::from_str_radix(&nonce[..8], 16),
            u32::from_str_radix(&nonce[8..16], 16),
        ) else {
            return Verdict::Denied {
                why: "foreign nonce",
            };
        };
        if !ct_eq(self.mac(expiry, serial).as_bytes(), &nonce.as_bytes()[16..]) {
            return Verdict::Denied {
                why: "foreign nonce",
            };
        }
        if expiry <= now {
            return Verdict::Challenge { stale: true };
        }
        if get("qop") != Some("auth") {
            return Verdict::Denied {
                why: "qop=auth is required",
            };
        }
        let (Some(nc), Some(cnonce)) = (get("nc"), get("cnonce")) else {
            return Verdict::Denied {
                why: "nc and cnonce are required",
            };
        };
        let Ok(nc_val) = u32::from_str_radix(nc, 16) else {
            return Verdict::Denied { why: "bad nc" };
        };
        let Some(pass) = self.creds.password(user) else {
            return Verdict::Denied {
                why: "unknown user",
            };
        };
        let expect = response(
            alg,
            user,
            &self.realm,
            pass,
            method,
            uri,
            nonce,
            Some((nc, cnonce)),
        );
        if !ct_eq(expect.as_bytes(), resp.to_ascii_lowercase().as_bytes()) {
            return Verdict::Denied {
                why: "wrong credentials",
            };
        }
        // Replay: nc must grow for each nonce.
        let mut last = self.seen.entry(nonce.into()).or_insert(0);
        if nc_val <= *last {
            return Verdict::Denied {
                why: "replayed nonce count",
            };
        }
        *last = nc_val;
        Verdict::Ok {
            username: user.to_owned(),
        }
    }

    /// Forgets the nonce counts of expired nonces.
    pub fn sweep(&self, now: u32) {
        self.seen
            .retain(|n, _| u32::from_str_radix(&n[..8.min(n.len())], 16).is_ok_and(|e| e > now));
    }

    pub fn tracked_nonces(&self) -> usize {
        self.seen.len()
    }
}

/// The digest `response` value (RFC 7616 §3.4.1; RFC 2617 without qop when `qop` is None).
#[allow(clippy::too_many_arguments)]
pub fn response(
    alg: Algorithm,
    user: &str,
    realm: &str,
    pass: &str,
    method: &str,
    uri: &str,
    nonce: &str,
    qop: Option<(&str, &str)>,
) -> String {
    let ha1 = alg.hash(&format!("{user}:{realm}:{pass}"));
    let ha2 = alg.hash(&format!("{method}:{uri}"));
    match qop {
        Some((nc, cnonce)) => alg.hash(&format!("{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")),
        None => alg.hash(&format!("{ha1}:{nonce}:{ha2}")),
    }
}

/// The client half: an Authorization header answering `challenge` (a WWW-Authenticate value).
/// `None` when the challenge is not Digest or names an algorithm we lack.
pub fn authorize(
    challenge: &str,
    user: &str,
    pass: &str,
    method: &str,
    uri: &str,
    nc: u32,
    cnonce: &str,
) -> Option<String> {
    let p = parse_params(challenge.strip_prefix("Digest ")?);
    let realm = p.get("realm")?;
    let nonce = p.get("nonce")?;
    let alg = Algorithm::parse(p.get("algorithm").map_or("MD5", String::as_str))?;
    let qop_auth = p
        .get("qop")
        .is_some_and(|q| q.split(',').any(|q| q.trim() == "auth"));
    let nc_s = format!("{nc:08x}");
    let resp = response(
        alg,
        user,
        realm,
        pass,
        method,
        uri,
        nonce,
        qop_auth.then_some((nc_s.as_str(), cnonce)),
    );
    let mut h = format!(
        "Digest username=\"{user}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", algorithm={}, response=\"{resp}\"",
        alg.name()
    );
    if qop_auth {
        h.push_str(&format!(", qop=auth, nc={nc_s}, cnonce=\"{cnonce}\""));
    }
    if let Some(o) = p.get("opaque") {
        h.push_str(&format!(", opaque=\"{o}\""));
    }
    Some(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The RFC 2617-style vector of spec/cwmp.md §6 (MD5, qop=auth).
    #[test]
    fn spec_vector() {
        let r = response(
            Algorithm::Md5,
            "cpe0015cf123456",
            "Connection Request",
            "s3cr3t",
            "GET",
            "/cr/0015CF123456",
            "dcd98b7102dd2f0e8b11d0f600bfb0c093",
            Some(("00000001", "0a4f113b")),
        );
        assert_eq!(r, "8c4877d28b7302c15d09a5f20c76d33c");
    }

    /// RFC 7616 §3.9.1, SHA-256.
    #[test]
    fn rfc7616_sha256_vector() {
        let r = response(
            Algorithm::Sha256,
            "Mufasa",
            "http-auth@example.org",
            "Circle of Life",
            "GET",
            "/dir/index.html",
            "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
            Some(("00000001", "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ")),
        );
        assert_eq!(
            r,
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
        );
    }

    fn server() -> Digest {
        Digest::new(
            "provd".into(),
            [7; 32],
            60,
            Credentials::new([("cpe".to_owned(), "pw".to_owned())]),
        )
    }

    #[test]
    fn digest_round_trip_replay_and_expiry() {
        let d = server();
        for i in 0..2 {
            // A fresh challenge for each algorithm (one call's challenges share a nonce).
            let ch = d.challenges(100, false).swap_remove(i);
            assert!(ch.contains(["SHA-256", "MD5"][i]));
            let h = authorize(&ch, "cpe", "pw", "POST", "/", 1, "abc").unwrap();
            assert_eq!(
                d.check(100, "POST", "/", Some(&h)),
                Verdict::Ok {
                    username: "cpe".into()
                }
            );
            // The same nc again: a replay.
            assert!(matches!(
                d.check(101, "POST", "/", Some(&h)),
                Verdict::Denied { .. }
            ));
            let h2 = authorize(&ch, "cpe", "pw", "POST", "/", 2, "abd").unwrap();
            assert!(matches!(
                d.check(101, "POST", "/", Some(&h2)),
                Verdict::Ok { .. }
            ));
            // Expired nonce: stale challenge.
            let h3 = authorize(&ch, "cpe", "pw", "POST", "/", 3, "abe").unwrap();
            assert_eq!(
                d.check(1000, "POST", "/", Some(&h3)),
                Verdict::Challenge { stale: true }
            );
            let bad = authorize(&ch, "cpe", "nope", "POST", "/", 4, "abf").unwrap();
            assert!(matches!(
                d.check(100, "POST", "/", Some(&bad)),
                Verdict::Denied { .. }
            ));
        }
        d.sweep(1000);
        assert_eq!(d.tracked_nonces(), 0);
    }

    #[test]
    fn two_clients_never_share_a_nonce() {
        let d = server();
        let a = d.challenges(100, false);
        let b = d.challenges(100, false);
        assert_ne!(a[0], b[0]);
        for ch in [&a[0], &b[0]] {
            let h = authorize(ch, "cpe", "pw", "POST", "/", 1, "x").unwrap();
            assert!(matches!(
                d.check(100, "POST", "/", Some(&h)),
                Verdict::Ok { .. }
            ));
        }
    }

    #[test]
    fn basic() {
        let c = Credentials::new([("u".to_owned(), "p".to_owned())]);
        assert!(matches!(
            check_basic(&c, Some("Basic dTpw")),
            Verdict::Ok { .. }
        ));
        assert!(matches!(
            check_basic(&c, Some("Basic dTpx")),
            Verdict::Denied { .. }
        ));
        assert_eq!(check_basic(&c, None), Verdict::Challenge { stale: false });
    }

    #[test]
    fn garbage_headers_are_denied() {
        let d = server();
        for h in [
            "Digest",
            "Digest ,,,",
            "Digest username=\"",
            "Digest a=b, nonce=\"zz\"",
        ] {
            assert!(!matches!(
                d.check(1, "POST", "/", Some(h)),
                Verdict::Ok { .. }
            ));
        }
    }
}
