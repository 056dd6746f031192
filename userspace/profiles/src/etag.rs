//! Entity tags. A profile's tag names its version and a hash of the served bytes, so a client
//! holding the tag of an older version, or of the plain variant when the encrypted one is
//! served, never gets a 304 for bytes it does not have.

/// FNV-1a 64: fast, stable across runs and builds (unlike `std`'s hasher), good enough to tell
/// bodies apart (not a security boundary: the body is served to whoever may read it anyway).
pub fn hash64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// A strong entity tag, quotes included: `"v12-0123456789abcdef"`.
pub fn profile_etag(version: u64, body: &[u8]) -> String {
    format!("\"v{version}-{:016x}\"", hash64(body))
}

/// Whether an `If-None-Match` header value matches `etag` (`*`, a list, weak tags compared
/// weakly as RFC 9110 §13.1.2 asks).
pub fn if_none_match(header: &str, etag: &str) -> bool {
    let bare = etag.trim_start_matches("W/");
    header
        .split(',')
        .map(str::trim)
        .any(|t| t == "*" || t.trim_start_matches("W/") == bare)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags() {
        let t = profile_etag(3, b"abc");
        assert!(t.starts_with("\"v3-") && t.ends_with('"'));
        assert_ne!(t, profile_etag(4, b"abc"));
        assert_ne!(t, profile_etag(3, b"abd"));
        assert!(if_none_match(&t, &t));
        assert!(if_none_match(&format!("\"x\", W/{t}"), &t));
        assert!(if_none_match("*", &t));
        assert!(!if_none_match("\"x\"", &t));
    }
}
