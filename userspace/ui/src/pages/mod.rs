//! The pages' handlers: each gathers what it shows from the API and renders one template.

pub(crate) mod dashboard;
pub(crate) mod device;
pub(crate) mod devices;
pub(crate) mod lists;
pub(crate) mod login;
pub(crate) mod records;
pub(crate) mod search;
pub(crate) mod templates;

use std::collections::BTreeMap;

/// A page's query string or form, as text fields (absent and empty are the same).
pub(crate) type Fields = BTreeMap<String, String>;

/// The value of `k`, or "".
pub(crate) fn field<'a>(f: &'a Fields, k: &str) -> &'a str {
    f.get(k).map_or("", |v| v.trim())
}

/// A MAC in any spelling (`00:10:95:e2:a0:01`, `0010.95e2.a001`, `00-10-95-E2-A0-01`,
/// `001095e2a001`) in the API's form, or `None`.
pub(crate) fn mac_of(s: &str) -> Option<String> {
    let hex: String = s
        .trim()
        .chars()
        .filter(|c| !matches!(c, ':' | '-' | '.' | ' '))
        .collect();
    if hex.len() != 12 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let hex = hex.to_ascii_lowercase();
    let parts: Vec<&str> = (0..6).map(|i| &hex[i * 2..i * 2 + 2]).collect();
    Some(parts.join(":"))
}

#[cfg(test)]
mod tests {
    use super::mac_of;

    #[test]
    fn macs_are_read_in_every_spelling_operators_paste() {
        for s in [
            "00:10:95:e2:a0:01",
            "0010.95e2.a001",
            "00-10-95-E2-A0-01",
            "001095E2A001",
            " 00 10 95 e2 a0 01 ",
        ] {
            assert_eq!(mac_of(s).as_deref(), Some("00:10:95:e2:a0:01"), "{s}");
        }
        for s in [
            "",
            "00:10:95:e2:a0",
            "00:10:95:e2:a0:0g",
            "0010.95e2.a001.22",
        ] {
            assert_eq!(mac_of(s), None, "{s}");
        }
    }
}
