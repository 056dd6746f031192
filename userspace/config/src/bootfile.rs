//! Boot file templates (`boot_file`): the BOOTP `file` field, i.e. the DOCSIS/PacketCable
//! config file name the device fetches over TFTP.
//!
//! Placeholders, replaced by the client hardware address (`chaddr`):
//!
//! | placeholder | renders as |
//! |---|---|
//! | `{mac}`  | `001122aabbcc` |
//! | `{MAC}`  | `001122AABBCC` |
//! | `{mac:}` | `00:11:22:aa:bb:cc` |
//!
//! Any other `{…}` (or an unclosed `{`) is a config error, so a typo such as `{Mac}` is caught at
//! load time instead of sending a literal brace to every modem. A `}` outside a placeholder is an
//! ordinary character.

use std::fmt;

/// Longest name the engine may put in the 128-byte BOOTP `file` field, keeping room for the
/// terminating NUL that RFC 2131 asks for.
pub const MAX_BOOT_FILE_LEN: usize = 127;

/// A parsed boot file template.
#[derive(Clone, PartialEq, Eq)]
pub struct BootFile {
    template: Box<str>,
    parts: Box<[Part]>,
    rendered_len: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Lit(Box<str>),
    Mac(MacStyle),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MacStyle {
    Lower,
    Upper,
    Colon,
}

impl MacStyle {
    fn len(self) -> usize {
        match self {
            MacStyle::Lower | MacStyle::Upper => 12,
            MacStyle::Colon => 17,
        }
    }
}

const LOWER: &[u8; 16] = b"0123456789abcdef";
const UPPER: &[u8; 16] = b"0123456789ABCDEF";

impl BootFile {
    /// Parses a template. The error message says what is wrong (for a config error).
    pub fn parse(template: &str) -> Result<BootFile, String> {
        if template.is_empty() {
            return Err("boot_file is empty (leave it out for no file name)".into());
        }
        if template.contains('\0') {
            return Err("boot_file contains a NUL character".into());
        }
        let mut parts = Vec::new();
        let mut rest = template;
        let mut len = 0usize;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                parts.push(Part::Lit(rest[..open].into()));
                len += open;
            }
            let after = &rest[open + 1..];
            let Some(close) = after.find('}') else {
                return Err(format!(
                    "boot_file {template:?} has an unclosed '{{' (placeholders are {{mac}}, {{MAC}} and {{mac:}})"
                ));
            };
            let style = match &after[..close] {
                "mac" => MacStyle::Lower,
                "MAC" => MacStyle::Upper,
                "mac:" => MacStyle::Colon,
                other => {
                    return Err(format!(
                        "boot_file {template:?}: unknown placeholder {{{other}}} (placeholders are {{mac}}, {{MAC}} and {{mac:}})"
                    ));
                }
            };
            parts.push(Part::Mac(style));
            len += style.len();
            rest = &after[close + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Lit(rest.into()));
            len += rest.len();
        }
        if len > MAX_BOOT_FILE_LEN {
            return Err(format!(
                "boot_file {template:?} renders to {len} bytes; the BOOTP file field holds at most {MAX_BOOT_FILE_LEN}"
            ));
        }
        Ok(BootFile {
            template: template.into(),
            parts: parts.into_boxed_slice(),
            rendered_len: len,
        })
    }

    /// The template as written in the config.
    pub fn template(&self) -> &str {
        &self.template
    }

    /// True if the template has no placeholder (the rendered name is [`BootFile::template`]).
    pub fn is_static(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, Part::Lit(_)))
    }

    /// Length in bytes of every rendering (placeholders have a fixed width).
    pub fn rendered_len(&self) -> usize {
        self.rendered_len
    }

    /// Renders the name for a client hardware address.
    pub fn render(&self, chaddr: &[u8; 6]) -> String {
        let mut out = String::with_capacity(self.rendered_len);
        self.render_into(chaddr, &mut out);
        out
    }

    /// Appends the rendered name to `out` (no allocation if `out` has room).
    pub fn render_into(&self, chaddr: &[u8; 6], out: &mut String) {
        out.reserve(self.rendered_len);
        for part in self.parts.iter() {
            match part {
                Part::Lit(s) => out.push_str(s),
                Part::Mac(style) => {
                    let digits = if *style == MacStyle::Upper {
                        UPPER
                    } else {
                        LOWER
                    };
                    for (i, b) in chaddr.iter().enumerate() {
                        if i > 0 && *style == MacStyle::Colon {
                            out.push(':');
                        }
                        out.push(char::from(digits[usize::from(b >> 4)]));
                        out.push(char::from(digits[usize::from(b & 0x0f)]));
                    }
                }
            }
        }
    }
}

impl BootFile {
    /// The reverse of [`BootFile::render`]: if `name` is what this template renders for some
    /// hardware address, that address. Every placeholder must name the same address; hex digits
    /// are accepted in either case, since some TFTP clients change the case of what they were
    /// given. A template without placeholder matches no name (it names no device).
    ///
    /// This is how the TFTP server tells which device a generated file belongs to.
    pub fn match_name(&self, name: &str) -> Option<[u8; 6]> {
        if self.is_static() || name.len() != self.rendered_len {
            return None;
        }
        let mut rest = name.as_bytes();
        let mut mac: Option<[u8; 6]> = None;
        for part in self.parts.iter() {
            match part {
                Part::Lit(lit) => rest = rest.strip_prefix(lit.as_bytes())?,
                Part::Mac(style) => {
                    let (text, tail) = rest.split_at_checked(style.len())?;
                    let found = parse_mac(text, *style)?;
                    if mac.is_some_and(|m| m != found) {
                        return None;
                    }
                    mac = Some(found);
                    rest = tail;
                }
            }
        }
        if rest.is_empty() { mac } else { None }
    }
}

/// Parses the rendering of one placeholder (case-insensitive hex).
fn parse_mac(text: &[u8], style: MacStyle) -> Option<[u8; 6]> {
    let hex = |c: u8| char::from(c).to_digit(16).map(|d| d as u8);
    let mut mac = [0u8; 6];
    let stride = if style == MacStyle::Colon { 3 } else { 2 };
    for (i, byte) in mac.iter_mut().enumerate() {
        let at = i * stride;
        if style == MacStyle::Colon && i > 0 && text.get(at - 1) != Some(&b':') {
            return None;
        }
        *byte = hex(*text.get(at)?)? << 4 | hex(*text.get(at + 1)?)?;
    }
    Some(mac)
}

impl fmt::Debug for BootFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BootFile({:?})", self.template)
    }
}

impl fmt::Display for BootFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.template)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [0x00, 0x11, 0x22, 0xaa, 0xbb, 0xcc];

    #[test]
    fn placeholders() {
        let b = BootFile::parse("cm/{mac}.cfg").unwrap();
        assert!(!b.is_static());
        assert_eq!(b.render(&MAC), "cm/001122aabbcc.cfg");
        assert_eq!(b.rendered_len(), b.render(&MAC).len());
        let b = BootFile::parse("{MAC}-{mac:}").unwrap();
        assert_eq!(b.render(&MAC), "001122AABBCC-00:11:22:aa:bb:cc");
        assert_eq!(b.rendered_len(), 30);
        let b = BootFile::parse("plain.cfg}").unwrap();
        assert!(b.is_static());
        assert_eq!(b.render(&MAC), "plain.cfg}");
        let mut s = String::from("x");
        b.render_into(&MAC, &mut s);
        assert_eq!(s, "xplain.cfg}");
    }

    #[test]
    fn match_name_reverses_render() {
        for t in ["cm/{mac}.cfg", "{MAC}-{mac:}", "x{mac:}y", "{mac}"] {
            let b = BootFile::parse(t).unwrap();
            assert_eq!(b.match_name(&b.render(&MAC)), Some(MAC), "{t}");
        }
        let b = BootFile::parse("cm/{mac}.cfg").unwrap();
        assert_eq!(
            b.match_name("cm/001122AABBCC.cfg"),
            Some(MAC),
            "hex case is free"
        );
        assert_eq!(b.match_name("cm/001122aabbcc.cfgx"), None);
        assert_eq!(b.match_name("cm/001122aabbcg.cfg"), None, "not hex");
        assert_eq!(b.match_name("mc/001122aabbcc.cfg"), None);
        assert_eq!(b.match_name("cm/+01122aabbcc.cfg"), None);
        assert_eq!(b.match_name("cm/é1122aabbc.cfg"), None, "multi-byte text");
        let two = BootFile::parse("{mac}/{mac:}").unwrap();
        assert_eq!(
            two.match_name("001122aabbcc/00:11:22:aa:bb:cd"),
            None,
            "disagreeing"
        );
        assert_eq!(
            two.match_name("001122aabbcc/00-11:22:aa:bb:cc"),
            None,
            "separator"
        );
        assert_eq!(
            BootFile::parse("plain.cfg")
                .unwrap()
                .match_name("plain.cfg"),
            None
        );
    }

    proptest::proptest! {
        #[test]
        fn match_name_never_panics_and_round_trips(name in "\\PC{0,40}", mac in proptest::array::uniform6(0u8..)) {
            let b = BootFile::parse("d/{mac}-{mac:}.bin").unwrap();
            let _ = b.match_name(&name);
            proptest::prop_assert_eq!(b.match_name(&b.render(&mac)), Some(mac));
        }
    }

    #[test]
    fn errors() {
        assert!(
            BootFile::parse("cm/{Mac}.cfg")
                .unwrap_err()
                .contains("unknown placeholder {Mac}")
        );
        assert!(BootFile::parse("cm/{mac").unwrap_err().contains("unclosed"));
        assert!(BootFile::parse("").is_err());
        assert!(
            BootFile::parse(&"x".repeat(128))
                .unwrap_err()
                .contains("128 bytes")
        );
        assert!(BootFile::parse(&"x".repeat(127)).is_ok());
    }
}
