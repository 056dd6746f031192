//! The variables a device knows about itself: MAC-derived names, identity, versions, the
//! general-purpose parameters GPP_A..P and the secrets GPP_SA..SD.

use std::net::IpAddr;

/// Every name the expander recognises, in no particular order. Longest-prefix matching of bare
/// `$NAME` ([`crate::expand`]) is over the names of this table that have a value, so `$MAC` is
/// MAC (not MA + `C`) and `$PSN` is PSN (not GPP_P + `SN`), while `$FOO` stays as typed when
/// GPP_F is empty (spec §5 vector 8).
const NAMES: &[&str] = &[
    "MA", "MAU", "MAC", "PN", "PSN", "SN", "IP", "EXTIP", "SWVER", "HWVER", "A", "B", "C", "D",
    "E", "F", "G", "H", "I", "J", "K", "L", "M", "N", "O", "P", "SA", "SB", "SC", "SD", "SCHEME",
    "SERV", "SERVIP", "PORT", "PATH",
];

const SECRETS: &[&str] = &["SA", "SB", "SC", "SD"];

/// Whether `name` is a variable the expander knows (secrets included).
pub fn is_known_name(name: &str) -> bool {
    NAMES.contains(&name)
}

pub(crate) fn is_secret(name: &str) -> bool {
    SECRETS.contains(&name)
}

/// The longest name with a value that is a prefix of `word` (ASCII name characters).
pub(crate) fn longest_prefix(word: &str, secrets: bool, vars: &Variables) -> Option<&'static str> {
    NAMES
        .iter()
        .filter(|n| (secrets || !is_secret(n)) && word.starts_with(**n) && vars.value(n).is_some())
        .max_by_key(|n| n.len())
        .copied()
}

/// A device's variables. Built from its MAC; everything else is optional. A name whose value
/// is not set here is treated as unknown and left as typed: spec §5 vector 8 needs `$FOO` to
/// stay `$FOO` although `F` names GPP_F, and for prediction a visible `$PN` beats a silently
/// wrong empty string. Set a GPP to `""` to make it expand to nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variables {
    ma: String,
    mau: String,
    mac: String,
    pub pn: Option<String>,
    pub psn: Option<String>,
    pub sn: Option<String>,
    pub ip: Option<IpAddr>,
    pub extip: Option<IpAddr>,
    pub swver: Option<String>,
    pub hwver: Option<String>,
    /// GPP_A .. GPP_P.
    pub gpp: [Option<String>; 16],
    /// GPP_SA .. GPP_SD: expanded only inside a `--key` argument.
    pub secrets: [Option<String>; 4],
    /// The URL being used (SCHEME, SERV, SERVIP, PORT, PATH), when predicting a request.
    pub scheme: Option<String>,
    pub serv: Option<String>,
    pub servip: Option<String>,
    pub port: Option<u16>,
    pub path: Option<String>,
}

impl Variables {
    pub fn new(mac: [u8; 6]) -> Variables {
        let ma: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        let mau = ma.to_ascii_uppercase();
        let colon = mac
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(":");
        Variables {
            ma,
            mau,
            mac: colon,
            pn: None,
            psn: None,
            sn: None,
            ip: None,
            extip: None,
            swver: None,
            hwver: None,
            gpp: Default::default(),
            secrets: Default::default(),
            scheme: None,
            serv: None,
            servip: None,
            port: None,
            path: None,
        }
    }

    /// GPP_A..GPP_P by letter (`'A'..='P'`); other letters are ignored.
    pub fn set_gpp(&mut self, letter: char, value: impl Into<String>) {
        if let Some(i) = ('A'..='P').position(|c| c == letter) {
            self.gpp[i] = Some(value.into());
        }
    }

    /// GPP_SA..GPP_SD by letter (`'A'..='D'`); other letters are ignored.
    pub fn set_secret(&mut self, letter: char, value: impl Into<String>) {
        if let Some(i) = ('A'..='D').position(|c| c == letter) {
            self.secrets[i] = Some(value.into());
        }
    }

    /// The value of a name; `None` for an unknown name or one with no value set. Secrets are
    /// returned too: the expander decides where they may be used.
    pub fn value(&self, name: &str) -> Option<std::borrow::Cow<'_, str>> {
        use std::borrow::Cow;
        fn s(v: &Option<String>) -> Option<Cow<'_, str>> {
            v.as_deref().map(Cow::Borrowed)
        }
        fn ip(v: &Option<IpAddr>) -> Option<Cow<'_, str>> {
            v.map(|a| Cow::Owned(a.to_string()))
        }
        match name {
            "MA" => Some(Cow::Borrowed(&self.ma)),
            "MAU" => Some(Cow::Borrowed(&self.mau)),
            "MAC" => Some(Cow::Borrowed(&self.mac)),
            "PN" => s(&self.pn),
            "PSN" => s(&self.psn),
            "SN" => s(&self.sn),
            "IP" => ip(&self.ip),
            "EXTIP" => ip(&self.extip),
            "SWVER" => s(&self.swver),
            "HWVER" => s(&self.hwver),
            "SCHEME" => s(&self.scheme),
            "SERV" => s(&self.serv),
            "SERVIP" => s(&self.servip),
            "PORT" => self.port.map(|p| Cow::Owned(p.to_string())),
            "PATH" => s(&self.path),
            _ => {
                let mut chars = name.chars();
                match (chars.next(), chars.next(), chars.next()) {
                    (Some(c @ 'A'..='P'), None, _) => s(&self.gpp[c as usize - 'A' as usize]),
                    (Some('S'), Some(c @ 'A'..='D'), None) => {
                        s(&self.secrets[c as usize - 'A' as usize])
                    }
                    _ => None,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_forms() {
        let v = Variables::new([0x00, 0x15, 0xcf, 0x12, 0x34, 0x56]);
        assert_eq!(v.value("MA").unwrap(), "0015cf123456");
        assert_eq!(v.value("MAU").unwrap(), "0015CF123456");
        assert_eq!(v.value("MAC").unwrap(), "00:15:cf:12:34:56");
        assert!(v.value("PN").is_none());
        assert!(v.value("FOO").is_none());
        assert!(v.value("Q").is_none());
        assert!(v.value("SE").is_none());
    }

    #[test]
    fn every_name_can_have_a_value() {
        let mut v = Variables::new([0; 6]);
        v.pn = Some("x".into());
        v.psn = Some("x".into());
        v.sn = Some("x".into());
        v.ip = Some([10, 0, 0, 1].into());
        v.extip = Some([10, 0, 0, 2].into());
        v.swver = Some("x".into());
        v.hwver = Some("x".into());
        v.gpp = std::array::from_fn(|_| Some("g".into()));
        v.secrets = std::array::from_fn(|_| Some("s".into()));
        v.scheme = Some("x".into());
        v.serv = Some("x".into());
        v.servip = Some("x".into());
        v.port = Some(80);
        v.path = Some("x".into());
        for n in NAMES {
            assert!(v.value(n).is_some(), "{n}");
        }
    }

    #[test]
    fn longest() {
        let mut v = Variables::new([0; 6]);
        v.psn = Some("1".into());
        v.set_gpp('P', "p");
        v.set_secret('A', "s");
        assert_eq!(longest_prefix("MAUx", false, &v), Some("MAU"));
        assert_eq!(longest_prefix("MAC", false, &v), Some("MAC"));
        assert_eq!(longest_prefix("PSN", false, &v), Some("PSN"));
        assert_eq!(longest_prefix("Px", false, &v), Some("P"));
        assert_eq!(longest_prefix("SA", false, &v), None);
        assert_eq!(longest_prefix("SA", true, &v), Some("SA"));
        assert_eq!(longest_prefix("FOO", false, &v), None);
        // PN has no value: `$PNx` is GPP_P + "Nx".
        assert_eq!(longest_prefix("PNx", false, &v), Some("P"));
    }
}
