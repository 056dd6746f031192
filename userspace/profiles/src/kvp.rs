//! Flying Voice key=value profiles: one `NAME=value` per line (values may hold tabs and
//! spaces, e.g. `DBID_SIP_ENABLE=1\t0\t0\t0`), blank lines and `#` comment lines ignored.
//! Lines end in LF or CRLF.

use crate::ProfileError;

/// One parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param<'a> {
    pub name: &'a str,
    pub value: &'a str,
    /// 1-based.
    pub line: usize,
}

fn is_name(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Parses a profile into its parameters, in order.
pub fn parse(body: &[u8]) -> Result<Vec<Param<'_>>, ProfileError> {
    let text = std::str::from_utf8(body).map_err(|_| ProfileError::NotUtf8)?;
    let mut out = Vec::new();
    for (i, raw) in text.split('\n').enumerate() {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let (name, value) = line
            .split_once('=')
            .ok_or(ProfileError::BadLine { line: i + 1 })?;
        let name = name.trim();
        if !is_name(name) {
            return Err(ProfileError::BadLine { line: i + 1 });
        }
        out.push(Param {
            name,
            value,
            line: i + 1,
        });
    }
    Ok(out)
}

/// Sets `field=version`: every existing `field=` line is replaced in place; without one, the
/// line is put first (where the vendor's sample profiles have it).
pub fn set_version(body: &[u8], field: &str, version: u64) -> Result<Vec<u8>, ProfileError> {
    parse(body)?;
    // parse() proved the body is UTF-8.
    let text = std::str::from_utf8(body).map_err(|_| ProfileError::NotUtf8)?;
    let new_line = format!("{field}={version}");
    let mut out = String::with_capacity(text.len() + new_line.len() + 1);
    let mut found = false;
    for (i, raw) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let is_field = line.split_once('=').is_some_and(|(n, _)| n.trim() == field);
        if is_field {
            out.push_str(&new_line);
            if raw.ends_with('\r') {
                out.push('\r');
            }
            found = true;
        } else {
            out.push_str(raw);
        }
    }
    if !found {
        let eol = if text.contains("\r\n") { "\r\n" } else { "\n" };
        out.insert_str(0, &format!("{new_line}{eol}"));
    }
    Ok(out.into_bytes())
}

/// The version a profile carries under `field`, if any and numeric.
pub fn version(body: &[u8], field: &str) -> Option<u64> {
    parse(body)
        .ok()?
        .iter()
        .find(|p| p.name == field)
        .and_then(|p| p.value.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parse_vendor_sample() {
        let body = b"DBID_DBASE_VERSION=2207\n# c\n\nDBID_SIP_ENABLE=1\t0\t0\t0\r\nDBID_X=a=b\n";
        let p = parse(body).unwrap();
        assert_eq!(p.len(), 3);
        assert_eq!(p[1].value, "1\t0\t0\t0");
        assert_eq!(p[2].value, "a=b");
        assert_eq!(version(body, "DBID_DBASE_VERSION"), Some(2207));
        assert_eq!(parse(b"oops\n"), Err(ProfileError::BadLine { line: 1 }));
        assert_eq!(parse(b"A=1\n=2\n"), Err(ProfileError::BadLine { line: 2 }));
        assert_eq!(parse(b"\xff=1"), Err(ProfileError::NotUtf8));
    }

    #[test]
    fn set_replaces_or_inserts() {
        let v = set_version(
            b"A=1\nDBID_DBASE_VERSION=7\r\nB=2\n",
            "DBID_DBASE_VERSION",
            9,
        )
        .unwrap();
        assert_eq!(v, b"A=1\nDBID_DBASE_VERSION=9\r\nB=2\n");
        let v = set_version(b"A=1\n", "DBID_DBASE_VERSION", 3).unwrap();
        assert_eq!(v, b"DBID_DBASE_VERSION=3\nA=1\n");
    }

    proptest! {
        #[test]
        fn parse_total(b in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse(&b);
            let _ = set_version(&b, "V", 1);
        }

        #[test]
        fn set_then_read(params in proptest::collection::vec(("[A-Z_]{1,8}", "[ -~\t]{0,12}"), 0..8),
                         v in any::<u64>()) {
            let body: String = params.iter().map(|(n, val)| format!("{n}={val}\n")).collect();
            let out = set_version(body.as_bytes(), "DBID_DBASE_VERSION", v).unwrap();
            prop_assert_eq!(version(&out, "DBID_DBASE_VERSION"), Some(v));
            // Every other parameter survives.
            let others: Vec<_> = parse(&out).unwrap().into_iter()
                .filter(|p| p.name != "DBID_DBASE_VERSION").map(|p| (p.name.to_string(), p.value.to_string())).collect();
            let want: Vec<_> = params.into_iter().filter(|(n, _)| n != "DBID_DBASE_VERSION").collect();
            prop_assert_eq!(others, want);
        }
    }
}
