//! The path guard: what a request path means after one percent-decoding pass, or why it is
//! refused (400).
//!
//! Devices ask for plain names (`/p/0015cf123456.cfg`); anything that could walk out of a
//! directory or smuggle a different name past a check is refused before routing:
//! `.` and `..` segments (also as `%2e%2e`), NUL and other control characters (`%00`),
//! backslashes, bytes that are not UTF-8, and a second layer of encoding (`%252e` decodes to
//! `%2e`: a name that still holds `%XX` after decoding is refused rather than guessed at).

use percent_encoding::percent_decode_str;

/// The decoded path, or why it is refused.
pub fn clean_path(raw: &str) -> Result<String, &'static str> {
    if !raw.starts_with('/') {
        return Err("the path must start with '/'");
    }
    let decoded = percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| "the path is not UTF-8 after percent-decoding")?;
    if decoded.chars().any(char::is_control) {
        return Err("control character (NUL?) in the path");
    }
    if decoded.contains('\\') {
        return Err("backslash in the path");
    }
    if decoded.split('/').any(|s| s == "." || s == "..") {
        return Err("'.' or '..' segment in the path");
    }
    let b = decoded.as_bytes();
    if b.windows(3)
        .any(|w| w[0] == b'%' && w[1].is_ascii_hexdigit() && w[2].is_ascii_hexdigit())
    {
        return Err("percent-encoding inside percent-encoding");
    }
    Ok(decoded.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted() {
        assert_eq!(
            clean_path("/p/0015cf123456.cfg").unwrap(),
            "/p/0015cf123456.cfg"
        );
        assert_eq!(clean_path("/p/%30015cf.cfg").unwrap(), "/p/0015cf.cfg");
        assert_eq!(clean_path("/a%20b").unwrap(), "/a b");
        assert_eq!(clean_path("/firmware/x..bin").unwrap(), "/firmware/x..bin");
        assert_eq!(clean_path("/").unwrap(), "/");
    }

    #[test]
    fn refused() {
        for bad in [
            "/../etc/passwd",
            "/p/%2e%2e/x",
            "/p/%2E%2E/x",
            "/p/.%2e/x",
            "/firmware/%2e",
            "/p/a%00.cfg",
            "/p/a%0a.cfg",
            "/p/%252e%252e/x",
            "/p/a%5c..%5cb",
            "/p/%ff",
            "p/no-slash",
        ] {
            assert!(clean_path(bad).is_err(), "{bad} was accepted");
        }
    }
}
