//! Parsers for the string-typed values of the wire config. Each returns the value or a message
//! saying what is wrong; the caller attaches the field path.

use std::net::Ipv4Addr;

/// Quotes a user string for a message, unless it is a plain token that reads fine bare.
pub(crate) fn show(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || b".:-_/".contains(&c))
    {
        s.to_owned()
    } else {
        format!("{s:?}")
    }
}

/// Any IPv4 address in dotted-quad form.
pub(crate) fn ipv4(s: &str) -> Result<Ipv4Addr, String> {
    s.parse::<Ipv4Addr>()
        .map_err(|_| format!("{} is not an IPv4 address", show(s)))
}

/// An address a client may be sent to or given: not 0.0.0.0, not 255.255.255.255, not multicast
/// or class E. Loopback is allowed (tests run the server on 127.0.0.1).
pub(crate) fn unicast(s: &str) -> Result<Ipv4Addr, String> {
    let a = ipv4(s)?;
    if a.is_unspecified() || a.is_broadcast() || a.is_multicast() || u32::from(a) >= 0xf000_0000 {
        return Err(format!("{a} is not a unicast address"));
    }
    Ok(a)
}

/// `a.b.c.d/len` with len 8..=30 and zero host bits.
pub(crate) fn prefix(s: &str) -> Result<(Ipv4Addr, u8), String> {
    let Some((addr, len)) = s.split_once('/') else {
        return Err(format!(
            "{} is not a prefix (expected address/length, e.g. 10.1.0.0/24)",
            show(s)
        ));
    };
    let addr = ipv4(addr)?;
    let len: u8 = match len.parse() {
        Ok(l) if l <= 32 => l,
        _ => return Err(format!("{} has an invalid prefix length", show(s))),
    };
    if !(8..=30).contains(&len) {
        return Err(format!(
            "prefix length /{len} is out of range (a subnet must be /8 to /30)"
        ));
    }
    let mask = mask_bits(len);
    let net = u32::from(addr) & mask;
    if net != u32::from(addr) {
        return Err(format!(
            "{s} is not a network address (host bits are set; did you mean {}/{len}?)",
            Ipv4Addr::from(net)
        ));
    }
    Ok((addr, len))
}

pub(crate) fn mask_bits(len: u8) -> u32 {
    u32::MAX
        .checked_shl(32 - u32::from(len.min(32)))
        .unwrap_or(0)
}

/// Hex bytes: `aa:bb:cc`, `aa-bb-cc` (groups of 1–2 digits), Cisco `aabb.ccdd.eeff` (groups of
/// 4) or bare `aabbcc`.
pub(crate) fn hex_bytes(s: &str) -> Result<Vec<u8>, String> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    fn bare(g: &str) -> Option<Vec<u8>> {
        let b = g.as_bytes();
        if b.is_empty() || !b.len().is_multiple_of(2) {
            return None;
        }
        b.chunks(2)
            .map(|p| Some(nibble(p[0])? << 4 | nibble(p[1])?))
            .collect()
    }
    let bad = || format!("{} is not a hex byte string", show(s));
    let has = |c| s.contains(c);
    let seps = [':', '-', '.'].iter().filter(|c| has(**c)).count();
    if seps > 1 {
        return Err(bad());
    }
    if has(':') || has('-') {
        let sep = if has(':') { ':' } else { '-' };
        s.split(sep)
            .map(|g| match g.as_bytes() {
                [a] => nibble(*a),
                [a, b] => Some(nibble(*a)? << 4 | nibble(*b)?),
                _ => None,
            })
            .collect::<Option<Vec<u8>>>()
            .ok_or_else(bad)
    } else if has('.') {
        let mut out = Vec::new();
        for g in s.split('.') {
            if g.len() != 4 {
                return Err(bad());
            }
            out.extend(bare(g).ok_or_else(bad)?);
        }
        Ok(out)
    } else {
        bare(s).ok_or_else(bad)
    }
}

pub(crate) fn mac(s: &str) -> Result<[u8; 6], String> {
    let bytes = hex_bytes(s).map_err(|_| {
        format!(
            "{} is not a MAC address (expected e.g. 00:15:cf:12:34:56, 00-15-cf-12-34-56 or 0015cf123456)",
            show(s)
        )
    })?;
    <[u8; 6]>::try_from(bytes.as_slice()).map_err(|_| {
        format!(
            "{} is not a MAC address ({} bytes, expected 6)",
            show(s),
            bytes.len()
        )
    })
}

/// Option 82.2 remote id: `text:ASCII` or hex bytes.
pub(crate) fn remote_id(s: &str) -> Result<Vec<u8>, String> {
    let v = if let Some(text) = s.strip_prefix("text:") {
        if !text.is_ascii() {
            return Err(format!("remote_id {} is not ASCII", show(s)));
        }
        text.as_bytes().to_vec()
    } else {
        hex_bytes(s).map_err(|_| {
            format!(
                "remote_id {} is neither hex bytes (00:15:cf:12:34:56, 00-15-…, 0015cf…) nor text:…",
                show(s)
            )
        })?
    };
    if v.is_empty() {
        return Err("remote_id is empty".into());
    }
    if v.len() > 255 {
        return Err(format!(
            "remote_id is {} bytes; an option 82 sub-option holds at most 255",
            v.len()
        ));
    }
    Ok(v)
}

/// A DNS name: LDH labels of 1..=63 bytes, at most 253 bytes, one optional trailing dot, and a
/// last label that is not all digits (so a mistyped IPv4 literal is not taken for a name).
pub(crate) fn domain(s: &str) -> Result<(), String> {
    let bad = |why: String| Err(format!("{} is not a valid domain name: {why}", show(s)));
    let name = s.strip_suffix('.').unwrap_or(s);
    if name.is_empty() {
        return bad("it is empty".into());
    }
    if name.len() > 253 {
        return bad(format!("{} bytes long, at most 253", name.len()));
    }
    let mut last = "";
    for label in name.split('.') {
        if label.is_empty() {
            return bad("empty label".into());
        }
        if label.len() > 63 {
            return bad(format!(
                "label {} is {} bytes, at most 63",
                show(label),
                label.len()
            ));
        }
        if !label
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-')
        {
            return bad(format!(
                "label {} may only contain letters, digits and '-'",
                show(label)
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return bad(format!("label {} starts or ends with '-'", show(label)));
        }
        last = label;
    }
    if last.bytes().all(|c| c.is_ascii_digit()) {
        return bad("the last label is all digits (a mistyped IPv4 address?)".into());
    }
    Ok(())
}

/// Bytes of `name` in DNS wire format (length-prefixed labels plus the terminating zero).
pub(crate) fn dns_wire_len(name: &str) -> usize {
    let name = name.strip_suffix('.').unwrap_or(name);
    name.split('.').map(|l| l.len() + 1).sum::<usize>() + 1
}

/// A host for option 66 or a URL: an IPv4 literal or a domain name.
pub(crate) fn host(s: &str) -> Result<(), String> {
    if s.parse::<Ipv4Addr>().is_ok() {
        return Ok(());
    }
    domain(s).map_err(|_| {
        format!(
            "{} is neither an IPv4 address nor a valid host name",
            show(s)
        )
    })
}

/// The reserved realm names that select a non-Kerberos PacketCable flow.
pub(crate) const FLOW_NAMES: [&str; 4] = ["BASIC.1", "BASIC.2", "HYBRID.1", "HYBRID.2"];

/// A Kerberos realm sent in 122.6 as DNS labels: labels 1..=63 bytes of printable ASCII, wire
/// form at most 255 bytes, and not one of the reserved flow names.
pub(crate) fn realm(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("realm is empty".into());
    }
    if let Some(f) = FLOW_NAMES.iter().find(|f| f.eq_ignore_ascii_case(s)) {
        return Err(format!(
            "realm {s:?} is a provisioning flow name, not a Kerberos realm; write flow = \"{f}\" instead"
        ));
    }
    for label in s.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err(format!(
                "realm {s:?}: each label must be 1 to 63 bytes, {} is {} bytes",
                show(label),
                label.len()
            ));
        }
        if !label.bytes().all(|c| c.is_ascii_graphic()) {
            return Err(format!(
                "realm {s:?}: label {} contains a character that is not printable ASCII",
                show(label)
            ));
        }
    }
    let wire = dns_wire_len(s);
    if wire > 255 {
        return Err(format!(
            "realm {s:?} is {wire} bytes in DNS form; at most 255 fit in option 122.6"
        ));
    }
    Ok(())
}

/// An `http://` or `https://` URL with a non-empty host (TR-069 ACS URL).
pub(crate) fn http_url(s: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("{} is not an http(s) URL: {why}", show(s)));
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return bad("it contains whitespace or control characters");
    }
    let Some((scheme, rest)) = s.split_once("://") else {
        return bad("expected http://host[:port]/path or https://…");
    };
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return bad("the scheme must be http or https");
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let Some((addr, after)) = v6.split_once(']') else {
            return bad("unclosed '[' in the host");
        };
        if addr.parse::<std::net::Ipv6Addr>().is_err() {
            return bad("the bracketed host is not an IPv6 address");
        }
        if !after.is_empty() && !after.starts_with(':') {
            return bad("unexpected text after the IPv6 host");
        }
        (None, after.strip_prefix(':'))
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (Some(h), Some(p)),
            None => (Some(hostport), None),
        }
    };
    if let Some(host) = host {
        if host.is_empty() {
            return bad("the host is empty");
        }
        if self::host(host).is_err() {
            return bad(&format!(
                "the host {} is neither an IPv4 address nor a valid host name",
                show(host)
            ));
        }
    }
    if let Some(p) = port
        && !matches!(p.parse::<u16>(), Ok(1..))
    {
        return bad(&format!("the port {} is not 1..65535", show(p)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes() {
        assert_eq!(
            prefix("10.1.0.0/24").unwrap(),
            (Ipv4Addr::new(10, 1, 0, 0), 24)
        );
        assert!(prefix("10.1.0.5/24").unwrap_err().contains("10.1.0.0/24"));
        assert!(prefix("10.1.0.0/31").unwrap_err().contains("/31"));
        assert!(prefix("10.0.0.0/7").is_err());
        assert!(prefix("10.1.0.0").is_err());
        assert!(prefix("10.1.0.0/x").is_err());
        assert!(prefix("10.1.0.0/33").is_err());
    }

    #[test]
    fn hex_and_mac() {
        let m = [0x00, 0x15, 0xcf, 0x12, 0x34, 0x56];
        assert_eq!(mac("00:15:cf:12:34:56").unwrap(), m);
        assert_eq!(mac("00-15-CF-12-34-56").unwrap(), m);
        assert_eq!(mac("0015cf123456").unwrap(), m);
        assert_eq!(mac("0015.cf12.3456").unwrap(), m);
        assert_eq!(mac("0:15:cf:12:34:56").unwrap(), m);
        assert!(mac("00:15:cf:12:34").unwrap_err().contains("5 bytes"));
        assert!(mac("00:15-cf:12:34:56").is_err());
        assert!(mac("0015cf12345").is_err());
        assert!(mac("00:15:cf:12:34:5g").is_err());
        assert!(mac("00::15:cf:12:34").is_err());
        assert_eq!(remote_id("text:cm-42").unwrap(), b"cm-42");
        assert_eq!(remote_id("01:02").unwrap(), [1, 2]);
        assert!(remote_id("text:").is_err());
        assert!(remote_id("").is_err());
    }

    #[test]
    fn names() {
        assert!(domain("prov.example.net").is_ok());
        assert!(domain("prov.example.net.").is_ok());
        assert!(domain("localhost").is_ok());
        assert!(domain("10.0.0.300").is_err());
        assert!(domain("a..b").is_err());
        assert!(domain("-a.b").is_err());
        assert!(domain("a_b.c").is_err());
        assert!(domain(&format!("{}.net", "a".repeat(64))).is_err());
        assert_eq!(dns_wire_len("prov.example.net"), 18);
        assert!(realm("REALM.COM").is_ok());
        assert!(realm("basic.1").unwrap_err().contains("flow = \"BASIC.1\""));
        assert!(realm("A..B").is_err());
        assert!(realm(&"A".repeat(64)).is_err());
    }

    #[test]
    fn urls() {
        for ok in [
            "http://acs.example.net:7547/",
            "https://acs.example.net",
            "HTTP://user:pw@10.0.0.1:80/x?y#z",
            "http://[2001:db8::1]:7547/",
        ] {
            assert!(http_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "ftp://acs.example.net/",
            "http:///path",
            "http://:80/",
            "acs.example.net",
            "http://acs.example.net:0/",
            "http://acs.example.net:99999/",
            "http://acs example.net/",
            "http://[zz]/",
        ] {
            assert!(http_url(bad).is_err(), "{bad}");
        }
    }
}
