//! What the server learns from a verified client certificate.

use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

/// The identity in a client certificate that rustls has already verified against the client
/// CA. Devices put their MAC in the subject CN (`CN=0015CF123456`, `CN=SPA-00:15:cf:12:34:56`)
/// or in a SAN; [`ClientCert::macs`] finds it in any of the usual spellings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCert {
    /// The certificate as sent (DER).
    pub der: Vec<u8>,
    pub subject_cn: Option<String>,
    /// DNS names and URIs from the subject alternative name extension.
    pub san_dns: Vec<String>,
    /// End of validity, seconds since the Unix epoch.
    pub not_after_unix: i64,
}

impl ClientCert {
    /// Reads the fields provd uses. `None` if the DER does not parse (it cannot happen after
    /// rustls verified the certificate, but the caller treats it as "no certificate").
    pub fn from_der(der: &[u8]) -> Option<ClientCert> {
        let (_, cert) = X509Certificate::from_der(der).ok()?;
        let subject_cn = cert
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .map(str::to_owned);
        let mut san_dns = Vec::new();
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for name in &san.value.general_names {
                match name {
                    GeneralName::DNSName(s) | GeneralName::URI(s) | GeneralName::RFC822Name(s) => {
                        san_dns.push((*s).to_owned())
                    }
                    _ => {}
                }
            }
        }
        Some(ClientCert {
            der: der.to_vec(),
            subject_cn,
            san_dns,
            not_after_unix: cert.validity().not_after.timestamp(),
        })
    }

    /// Every MAC address spelled in the CN or a SAN, in order, without repeats.
    pub fn macs(&self) -> Vec<[u8; 6]> {
        let mut out = Vec::new();
        for text in self.subject_cn.iter().chain(&self.san_dns) {
            for mac in macs_in(text) {
                if !out.contains(&mac) {
                    out.push(mac);
                }
            }
        }
        out
    }
}

/// MACs spelled in `text` as `aabbccddeeff`, `aa:bb:cc:dd:ee:ff`, `aa-bb-cc-dd-ee-ff` or
/// `aabb.ccdd.eeff` (any case), standing alone: not preceded or followed by another hex digit,
/// so a longer hex string (a serial number, a hash) is not read as a MAC.
pub(crate) fn macs_in(text: &str) -> Vec<[u8; 6]> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let starts_word = i == 0 || !b[i - 1].is_ascii_hexdigit();
        if starts_word
            && b[i].is_ascii_hexdigit()
            && let Some((mac, len)) = mac_at(&b[i..])
        {
            out.push(mac);
            i += len;
            continue;
        }
        i += 1;
    }
    out
}

/// A MAC at the start of `b`, in one of the four spellings, followed by a non-hex byte or the
/// end; with the number of bytes it took.
fn mac_at(b: &[u8]) -> Option<([u8; 6], usize)> {
    // (length, separator positions, separator)
    const FORMS: [(usize, &[usize], Option<u8>); 4] = [
        (17, &[2, 5, 8, 11, 14], Some(b':')),
        (17, &[2, 5, 8, 11, 14], Some(b'-')),
        (14, &[4, 9], Some(b'.')),
        (12, &[], None),
    ];
    'form: for (len, seps, sep) in FORMS {
        let Some(s) = b.get(..len) else { continue };
        if b.get(len).is_some_and(u8::is_ascii_hexdigit) {
            continue;
        }
        let mut digits = [0u8; 12];
        let mut n = 0;
        for (i, &c) in s.iter().enumerate() {
            if seps.contains(&i) {
                if Some(c) != sep {
                    continue 'form;
                }
            } else {
                let Some(v) = (c as char).to_digit(16) else {
                    continue 'form;
                };
                digits[n] = v as u8;
                n += 1;
            }
        }
        let mut mac = [0u8; 6];
        for (k, byte) in mac.iter_mut().enumerate() {
            *byte = digits[2 * k] << 4 | digits[2 * k + 1];
        }
        return Some((mac, len));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: [u8; 6] = [0x00, 0x15, 0xcf, 0x12, 0x34, 0x56];

    #[test]
    fn finds_each_spelling() {
        for s in [
            "0015cf123456",
            "0015CF123456",
            "00:15:cf:12:34:56",
            "00-15-CF-12-34-56",
            "0015.cf12.3456",
            "SPA-0015CF123456",
            "mac=00:15:CF:12:34:56,ou=phones",
            "0015cf123456.phones.example.net",
        ] {
            assert_eq!(macs_in(s), vec![M], "{s}");
        }
    }

    #[test]
    fn longer_hex_strings_are_not_macs() {
        assert!(macs_in("0015cf1234567").is_empty());
        assert!(macs_in("a0015cf123456").is_empty());
        assert!(macs_in("00:15:cf:12:34").is_empty());
        assert!(macs_in("00:15-cf:12:34:56").is_empty());
        assert!(macs_in("").is_empty());
        assert!(macs_in("zz:zz:zz:zz:zz:zz").is_empty());
    }

    #[test]
    fn cert_fields_and_macs() {
        let mut params = rcgen::CertificateParams::new(vec!["00-15-cf-aa-bb-cc".into()]).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "SPA2102 0015CF123456");
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let parsed = ClientCert::from_der(cert.der()).unwrap();
        assert_eq!(parsed.subject_cn.as_deref(), Some("SPA2102 0015CF123456"));
        assert_eq!(parsed.san_dns, vec!["00-15-cf-aa-bb-cc".to_string()]);
        assert_eq!(parsed.macs(), vec![M, [0x00, 0x15, 0xcf, 0xaa, 0xbb, 0xcc]]);
        assert!(parsed.not_after_unix > 0);
        assert!(ClientCert::from_der(b"not a certificate").is_none());
    }
}
