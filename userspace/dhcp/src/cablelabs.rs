//! CableLabs payloads: option 122 (client configuration, RFC 3495/3594/3634) including the
//! PacketCable provisioning-flow names carried in 122.6, the option 43 sub-options cable devices
//! send, the option 60 vendor-class string, and options 124/125 (RFC 3925). Layouts follow
//! ../shared/spec/dhcp.md §5-§8.

use std::net::Ipv4Addr;

use crate::suboption::{self, SubOptionError, SubOptions};

/// The CableLabs IANA enterprise number used in options 124/125.
pub const CABLELABS_ENTERPRISE: u32 = 4491;

/// Option 122 sub-option codes.
pub mod ccc {
    pub const PRIMARY_DHCP: u8 = 1;
    pub const SECONDARY_DHCP: u8 = 2;
    pub const PROVISIONING_SERVER: u8 = 3;
    pub const AS_REQ_BACKOFF: u8 = 4;
    pub const AP_REQ_BACKOFF: u8 = 5;
    pub const KERBEROS_REALM: u8 = 6;
    pub const TGT_UTILIZATION: u8 = 7;
    pub const PROVISIONING_TIMER: u8 = 8;
    pub const TICKET_CONTROL: u8 = 9;
    pub const KDC_SERVERS: u8 = 10;
}

/// Why a name cannot be written in DNS wire format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    #[error("empty label in {name:?}")]
    EmptyLabel { name: String },
    #[error("label of {len} bytes in {name:?}: at most 63")]
    LabelTooLong { name: String, len: usize },
    #[error("name of {len} bytes in wire form: at most 255")]
    NameTooLong { len: usize },
    #[error("wire name is truncated or has no terminating zero label")]
    Unterminated,
    #[error("wire name uses compression or an extended label type ({byte:#04x})")]
    Compressed { byte: u8 },
    #[error("bad escape in {name:?}: {what}")]
    BadEscape { name: String, what: String },
    #[error("the root name (no labels) is not a valid name here")]
    Root,
}

/// Appends `name` as RFC 1035 labels with a terminating zero label (no compression). `name` is
/// in presentation form, the form [`decode_dns_name`] writes: `\DDD` is the byte DDD and `\X`
/// the character X (so `\.` is a dot inside a label), so decoded names re-encode unchanged.
pub fn encode_dns_name(name: &str, out: &mut Vec<u8>) -> Result<(), NameError> {
    let start = out.len();
    let r = encode_labels(name, out);
    if r.is_err() {
        out.truncate(start);
    }
    r
}

fn encode_labels(name: &str, out: &mut Vec<u8>) -> Result<(), NameError> {
    let start = out.len();
    let text = name.as_bytes();
    let text = text.strip_suffix(b".").unwrap_or(text);
    let bad = |what: &str| NameError::BadEscape {
        name: name.to_owned(),
        what: what.to_owned(),
    };
    let mut i = 0;
    loop {
        let len_at = out.len();
        out.push(0);
        while i < text.len() && text[i] != b'.' {
            let b = match text[i] {
                b'\\' => match text.get(i + 1..i + 4) {
                    Some(d) if d.iter().all(u8::is_ascii_digit) => {
                        i += 3;
                        let v = d.iter().fold(0u32, |v, c| v * 10 + u32::from(c - b'0'));
                        u8::try_from(v).map_err(|_| bad("\\DDD above 255"))?
                    }
                    _ => {
                        i += 1;
                        *text.get(i).ok_or_else(|| bad("trailing backslash"))?
                    }
                },
                c => c,
            };
            out.push(b);
            i += 1;
        }
        let len = out.len() - len_at - 1;
        if len == 0 {
            return Err(NameError::EmptyLabel {
                name: name.to_owned(),
            });
        }
        if len > 63 {
            return Err(NameError::LabelTooLong {
                name: name.to_owned(),
                len,
            });
        }
        // At most 63, checked above.
        out[len_at] = len as u8;
        if i >= text.len() {
            break;
        }
        i += 1; // the dot
    }
    out.push(0);
    let len = out.len() - start;
    if len > 255 {
        return Err(NameError::NameTooLong { len });
    }
    Ok(())
}

/// Reads a wire-format name into dotted text. Bytes outside printable ASCII are escaped as
/// `\DDD` (RFC 4343 presentation form) so a log line never carries raw control bytes.
pub fn decode_dns_name(wire: &[u8]) -> Result<String, NameError> {
    let mut out = String::new();
    let mut i = 0;
    loop {
        let &len = wire.get(i).ok_or(NameError::Unterminated)?;
        if i + 1 > 255 {
            return Err(NameError::NameTooLong { len: i + 1 });
        }
        if len == 0 {
            return if i == 0 {
                Err(NameError::Root)
            } else {
                Ok(out)
            };
        }
        if len > 63 {
            return Err(NameError::Compressed { byte: len });
        }
        let label = wire
            .get(i + 1..i + 1 + usize::from(len))
            .ok_or(NameError::Unterminated)?;
        if !out.is_empty() {
            out.push('.');
        }
        for &b in label {
            if b.is_ascii_graphic() && b != b'.' && b != b'\\' {
                out.push(char::from(b));
            } else {
                out.push_str(&format!("\\{b:03}"));
            }
        }
        i += 1 + usize::from(len);
    }
}

/// The non-Kerberos PacketCable provisioning flows named in 122.6 (PKT-SP-PROV1.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProvisioningFlow {
    Basic1,
    Basic2,
    Hybrid1,
    Hybrid2,
}

impl ProvisioningFlow {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Basic1 => "BASIC.1",
            Self::Basic2 => "BASIC.2",
            Self::Hybrid1 => "HYBRID.1",
            Self::Hybrid2 => "HYBRID.2",
        }
    }
    pub fn from_name(s: &str) -> Option<Self> {
        match s {
            "BASIC.1" => Some(Self::Basic1),
            "BASIC.2" => Some(Self::Basic2),
            "HYBRID.1" => Some(Self::Hybrid1),
            "HYBRID.2" => Some(Self::Hybrid2),
            _ => None,
        }
    }
}

/// What 122.6 selects: a reserved flow name, or a real realm (the SECURE flow).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RealmValue {
    Flow(ProvisioningFlow),
    Kerberos(String),
}

impl RealmValue {
    pub fn from_name(s: &str) -> Self {
        ProvisioningFlow::from_name(s).map_or_else(|| Self::Kerberos(s.to_owned()), Self::Flow)
    }
    pub fn name(&self) -> &str {
        match self {
            Self::Flow(f) => f.as_str(),
            Self::Kerberos(r) => r,
        }
    }
}

/// 122.3: where the MTA's SNMP provisioning entity is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProvServer {
    Fqdn(String),
    Ipv4(Ipv4Addr),
}

/// Kerberos/AP backoff triple of 122.4 and 122.5.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub nominal: u32,
    pub maximum: u32,
    pub retries: u32,
}

/// The value of option 122, typed. `encode` writes sub-options in code order; `decode` accepts
/// any order and keeps unknown sub-options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientConfiguration {
    pub primary_dhcp: Option<Ipv4Addr>,
    pub secondary_dhcp: Option<Ipv4Addr>,
    pub provisioning_server: Option<ProvServer>,
    pub as_req_backoff: Option<Backoff>,
    pub ap_req_backoff: Option<Backoff>,
    pub realm: Option<RealmValue>,
    pub tgt_utilization: Option<bool>,
    pub provisioning_timer: Option<u8>,
    pub ticket_control: Option<u16>,
    pub kdc_servers: Vec<Ipv4Addr>,
    pub unknown: Vec<(u8, Vec<u8>)>,
}

/// Why option 122 could not be read or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CccError {
    #[error(transparent)]
    SubOption(#[from] SubOptionError),
    #[error("122.{code}: {len} bytes is not a valid length")]
    BadLength { code: u8, len: usize },
    #[error("122.3: unknown provisioning server type {kind}")]
    BadServerType { kind: u8 },
    #[error("122.{code}: {source}")]
    Name { code: u8, source: NameError },
    #[error("122.{code}: value of {len} bytes does not fit a sub-option")]
    TooLong { code: u8, len: usize },
}

fn ipv4(code: u8, v: &[u8]) -> Result<Ipv4Addr, CccError> {
    <[u8; 4]>::try_from(v)
        .map(Ipv4Addr::from)
        .map_err(|_| CccError::BadLength { code, len: v.len() })
}

fn backoff(code: u8, v: &[u8]) -> Result<Backoff, CccError> {
    let v: [u8; 12] = v
        .try_into()
        .map_err(|_| CccError::BadLength { code, len: v.len() })?;
    let word = |i: usize| u32::from_be_bytes([v[i], v[i + 1], v[i + 2], v[i + 3]]);
    Ok(Backoff {
        nominal: word(0),
        maximum: word(4),
        retries: word(8),
    })
}

impl ClientConfiguration {
    pub fn decode(value: &[u8]) -> Result<Self, CccError> {
        let mut c = ClientConfiguration::default();
        for item in SubOptions::new(value) {
            let (code, v) = item?;
            match code {
                ccc::PRIMARY_DHCP => c.primary_dhcp = Some(ipv4(code, v)?),
                ccc::SECONDARY_DHCP => c.secondary_dhcp = Some(ipv4(code, v)?),
                ccc::PROVISIONING_SERVER => {
                    c.provisioning_server = Some(match v.split_first() {
                        Some((0, name)) => ProvServer::Fqdn(
                            decode_dns_name(name)
                                .map_err(|source| CccError::Name { code, source })?,
                        ),
                        Some((1, a)) => ProvServer::Ipv4(ipv4(code, a)?),
                        Some((&kind, _)) => return Err(CccError::BadServerType { kind }),
                        None => return Err(CccError::BadLength { code, len: 0 }),
                    })
                }
                ccc::AS_REQ_BACKOFF => c.as_req_backoff = Some(backoff(code, v)?),
                ccc::AP_REQ_BACKOFF => c.ap_req_backoff = Some(backoff(code, v)?),
                ccc::KERBEROS_REALM => {
                    let name =
                        decode_dns_name(v).map_err(|source| CccError::Name { code, source })?;
                    c.realm = Some(RealmValue::from_name(&name));
                }
                ccc::TGT_UTILIZATION => match v {
                    [b] => c.tgt_utilization = Some(*b != 0),
                    _ => return Err(CccError::BadLength { code, len: v.len() }),
                },
                ccc::PROVISIONING_TIMER => match v {
                    [m] => c.provisioning_timer = Some(*m),
                    _ => return Err(CccError::BadLength { code, len: v.len() }),
                },
                ccc::TICKET_CONTROL => match v {
                    [a, b] => c.ticket_control = Some(u16::from_be_bytes([*a, *b])),
                    _ => return Err(CccError::BadLength { code, len: v.len() }),
                },
                ccc::KDC_SERVERS => {
                    if v.is_empty() || !v.len().is_multiple_of(4) {
                        return Err(CccError::BadLength { code, len: v.len() });
                    }
                    c.kdc_servers = v
                        .chunks_exact(4)
                        .map(|a| ipv4(code, a))
                        .collect::<Result<_, _>>()?;
                }
                _ => c.unknown.push((code, v.to_vec())),
            }
        }
        Ok(c)
    }

    /// Appends the option value (without the 122 code/length) to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), CccError> {
        let start = out.len();
        let r = self.encode_inner(out);
        if r.is_err() {
            out.truncate(start);
        }
        r
    }

    fn encode_inner(&self, out: &mut Vec<u8>) -> Result<(), CccError> {
        if let Some(a) = self.primary_dhcp {
            suboption::put(out, ccc::PRIMARY_DHCP, &a.octets());
        }
        if let Some(a) = self.secondary_dhcp {
            suboption::put(out, ccc::SECONDARY_DHCP, &a.octets());
        }
        if let Some(p) = &self.provisioning_server {
            let mut v = Vec::with_capacity(64);
            match p {
                ProvServer::Fqdn(name) => {
                    v.push(0);
                    encode_dns_name(name, &mut v).map_err(|source| CccError::Name {
                        code: ccc::PROVISIONING_SERVER,
                        source,
                    })?;
                }
                ProvServer::Ipv4(a) => {
                    v.push(1);
                    v.extend_from_slice(&a.octets());
                }
            }
            put(out, ccc::PROVISIONING_SERVER, &v)?;
        }
        for (code, b) in [
            (ccc::AS_REQ_BACKOFF, self.as_req_backoff),
            (ccc::AP_REQ_BACKOFF, self.ap_req_backoff),
        ] {
            if let Some(b) = b {
                let mut v = [0u8; 12];
                v[..4].copy_from_slice(&b.nominal.to_be_bytes());
                v[4..8].copy_from_slice(&b.maximum.to_be_bytes());
                v[8..].copy_from_slice(&b.retries.to_be_bytes());
                suboption::put(out, code, &v);
            }
        }
        if let Some(r) = &self.realm {
            let mut v = Vec::with_capacity(32);
            encode_dns_name(r.name(), &mut v).map_err(|source| CccError::Name {
                code: ccc::KERBEROS_REALM,
                source,
            })?;
            put(out, ccc::KERBEROS_REALM, &v)?;
        }
        if let Some(t) = self.tgt_utilization {
            suboption::put(out, ccc::TGT_UTILIZATION, &[u8::from(t)]);
        }
        if let Some(m) = self.provisioning_timer {
            suboption::put(out, ccc::PROVISIONING_TIMER, &[m]);
        }
        if let Some(t) = self.ticket_control {
            suboption::put(out, ccc::TICKET_CONTROL, &t.to_be_bytes());
        }
        if !self.kdc_servers.is_empty() {
            let v: Vec<u8> = self.kdc_servers.iter().flat_map(|a| a.octets()).collect();
            put(out, ccc::KDC_SERVERS, &v)?;
        }
        for (code, v) in &self.unknown {
            put(out, *code, v)?;
        }
        Ok(())
    }
}

fn put(out: &mut Vec<u8>, code: u8, v: &[u8]) -> Result<(), CccError> {
    if suboption::put(out, code, v) {
        Ok(())
    } else {
        Err(CccError::TooLong { code, len: v.len() })
    }
}

/// Option 43 sub-options a CableLabs client sends (device info), as far as provisioning uses them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceInfo<'a> {
    pub device_type: Option<&'a [u8]>,
    pub serial_number: Option<&'a [u8]>,
    pub hardware_version: Option<&'a [u8]>,
    pub software_version: Option<&'a [u8]>,
    pub vendor_oui: Option<&'a [u8]>,
    pub model_number: Option<&'a [u8]>,
    pub vendor_name: Option<&'a [u8]>,
    /// 43.31: the MTA's MAC, used to correlate with SNMP enrollment.
    pub mta_mac: Option<[u8; 6]>,
    /// 43.32: correlation id.
    pub correlation_id: Option<u32>,
}

impl<'a> DeviceInfo<'a> {
    pub fn decode(value: &'a [u8]) -> Result<Self, SubOptionError> {
        let mut d = DeviceInfo::default();
        for item in SubOptions::with_pad_end(value) {
            let (code, v) = item?;
            match code {
                2 => d.device_type = Some(v),
                4 => d.serial_number = Some(v),
                5 => d.hardware_version = Some(v),
                6 => d.software_version = Some(v),
                8 => d.vendor_oui = Some(v),
                9 => d.model_number = Some(v),
                10 => d.vendor_name = Some(v),
                31 => d.mta_mac = v.try_into().ok(),
                32 => d.correlation_id = <[u8; 4]>::try_from(v).ok().map(u32::from_be_bytes),
                _ => {}
            }
        }
        Ok(d)
    }
}

/// Option 43 for TR-069 CPEs (TR-069 Annex F / TR-106): sub-option 1 ACS URL, 2 provisioning
/// code. Returns false when a value exceeds a sub-option.
pub fn encode_acs_vendor_info(
    acs_url: &str,
    provisioning_code: Option<&str>,
    out: &mut Vec<u8>,
) -> bool {
    let start = out.len();
    let ok = suboption::put(out, 1, acs_url.as_bytes())
        && provisioning_code.is_none_or(|c| suboption::put(out, 2, c.as_bytes()));
    if !ok {
        out.truncate(start);
    }
    ok
}

/// Device family announced in option 60.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceFamily {
    Docsis,
    PacketCable,
    ERouter,
    Other,
}

/// Option 60 as cable devices write it: `docsis3.0:<hex TLV 5>`, `pktc1.5:<hex>`, `erouter1.0`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VendorClass<'a> {
    pub family: DeviceFamily,
    /// The part before ':' (e.g. `docsis3.0`).
    pub version: &'a [u8],
    /// The decoded capability TLV (TLV 5) when the hex after ':' is valid.
    pub capabilities: Option<Vec<u8>>,
}

impl<'a> VendorClass<'a> {
    pub fn parse(value: &'a [u8]) -> Self {
        let (version, hex) = match value.iter().position(|&b| b == b':') {
            Some(i) => (&value[..i], Some(&value[i + 1..])),
            None => (value, None),
        };
        let family = if version.starts_with(b"docsis") {
            DeviceFamily::Docsis
        } else if version.starts_with(b"pktc") {
            DeviceFamily::PacketCable
        } else if version.starts_with(b"erouter") {
            DeviceFamily::ERouter
        } else {
            DeviceFamily::Other
        };
        VendorClass {
            family,
            version,
            capabilities: hex.and_then(decode_hex),
        }
    }

    /// PacketCable 0x12: the provisioning flows the MTA supports (bit0 SECURE, bit1 HYBRID,
    /// bit2 BASIC), from the capability TLV.
    pub fn supported_flows(&self) -> Option<u16> {
        let caps = self.capabilities.as_deref()?;
        let (&5, rest) = caps.split_first()? else {
            return None;
        };
        let (&len, body) = rest.split_first()?;
        let body = body.get(..usize::from(len))?;
        match SubOptions::find(body, 0x12)? {
            &[a, b] => Some(u16::from_be_bytes([a, b])),
            _ => None,
        }
    }
}

fn decode_hex(s: &[u8]) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let nib = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    s.chunks_exact(2)
        .map(|p| Some(nib(p[0])? << 4 | nib(p[1])?))
        .collect()
}

/// One enterprise block of option 125.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VendorBlock<'a> {
    pub enterprise: u32,
    pub data: &'a [u8],
}

/// Iterates the enterprise blocks of option 124 or 125: `enterprise(4) len(1) data`.
pub fn vendor_blocks(
    value: &[u8],
) -> impl Iterator<Item = Result<VendorBlock<'_>, SubOptionError>> {
    let mut pos = 0;
    std::iter::from_fn(move || {
        if pos >= value.len() {
            return None;
        }
        let offset = pos;
        let head = value.get(pos..pos + 5);
        let block = head.and_then(|h| {
            let len = usize::from(h[4]);
            let data = value.get(pos + 5..pos + 5 + len)?;
            Some(VendorBlock {
                enterprise: u32::from_be_bytes([h[0], h[1], h[2], h[3]]),
                data,
            })
        });
        match block {
            Some(b) => {
                pos += 5 + b.data.len();
                Some(Ok(b))
            }
            None => {
                pos = value.len();
                Some(Err(SubOptionError { code: 125, offset }))
            }
        }
    })
}

/// Appends one enterprise block of option 125 holding `suboptions` (already encoded).
pub fn encode_vendor_block(enterprise: u32, suboptions: &[u8], out: &mut Vec<u8>) -> bool {
    let Ok(len) = u8::try_from(suboptions.len()) else {
        return false;
    };
    out.extend_from_slice(&enterprise.to_be_bytes());
    out.push(len);
    out.extend_from_slice(suboptions);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flow_names_encode_as_dns_labels_per_spec() {
        // ../shared/spec/dhcp.md §7: BASIC.1 → 05 42 41 53 49 43 01 31 00
        let c = ClientConfiguration {
            realm: Some(RealmValue::Flow(ProvisioningFlow::Basic1)),
            ..Default::default()
        };
        let mut out = Vec::new();
        c.encode(&mut out).unwrap();
        assert_eq!(out, [6, 9, 5, b'B', b'A', b'S', b'I', b'C', 1, b'1', 0]);
        for f in [
            ProvisioningFlow::Basic1,
            ProvisioningFlow::Basic2,
            ProvisioningFlow::Hybrid1,
            ProvisioningFlow::Hybrid2,
        ] {
            let c = ClientConfiguration {
                realm: Some(RealmValue::Flow(f)),
                ..Default::default()
            };
            let mut out = Vec::new();
            c.encode(&mut out).unwrap();
            assert_eq!(ClientConfiguration::decode(&out).unwrap(), c);
        }
    }

    #[test]
    fn spec_offer_option_122_decodes() {
        // 122 value from the BASIC.1 OFFER of ../shared/spec/dhcp.md §10.
        let v = [
            3, 19, 0, 4, b'p', b'r', b'o', b'v', 7, b'e', b'x', b'a', b'm', b'p', b'l', b'e', 3,
            b'n', b'e', b't', 0, 6, 9, 5, b'B', b'A', b'S', b'I', b'C', 1, b'1', 0,
        ];
        let c = ClientConfiguration::decode(&v).unwrap();
        assert_eq!(
            c.provisioning_server,
            Some(ProvServer::Fqdn("prov.example.net".into()))
        );
        assert_eq!(c.realm, Some(RealmValue::Flow(ProvisioningFlow::Basic1)));
        let mut out = Vec::new();
        c.encode(&mut out).unwrap();
        assert_eq!(out, v);
    }

    #[test]
    fn bad_names_are_refused() {
        let mut out = vec![9];
        assert!(encode_dns_name("a..b", &mut out).is_err());
        assert!(encode_dns_name(&"x".repeat(64), &mut out).is_err());
        assert_eq!(out, [9]);
        assert_eq!(
            decode_dns_name(&[3, b'a', b'b']),
            Err(NameError::Unterminated)
        );
        assert_eq!(
            decode_dns_name(&[0xc0, 4]),
            Err(NameError::Compressed { byte: 0xc0 })
        );
        assert_eq!(decode_dns_name(&[2, 1, b'.', 0]).unwrap(), "\\001\\046");
        assert_eq!(decode_dns_name(&[0]), Err(NameError::Root));
        assert!(matches!(
            encode_dns_name("a\\300", &mut out),
            Err(NameError::BadEscape { .. })
        ));
        assert!(matches!(
            encode_dns_name("a\\", &mut out),
            Err(NameError::BadEscape { .. })
        ));
        assert_eq!(out, [9]);
    }

    /// Found by the dhcp_suboptions fuzz target: names with bytes outside printable ASCII
    /// decoded to `\DDD` text that did not encode back to the same bytes.
    #[test]
    fn escaped_names_round_trip() {
        for wire in [
            &[1, 1, 0][..],
            &[2, b'a', b'.', 1, b'\\', 0],
            &[3, 0, 255, b' ', 0],
        ] {
            let text = decode_dns_name(wire).unwrap();
            let mut again = Vec::new();
            encode_dns_name(&text, &mut again).unwrap();
            assert_eq!(again, wire, "{text:?}");
        }
        let mut out = Vec::new();
        encode_dns_name("BASIC.1", &mut out).unwrap();
        assert_eq!(out, [5, b'B', b'A', b'S', b'I', b'C', 1, b'1', 0]);
    }

    #[test]
    fn option_60_pktc_capabilities_reveal_flows() {
        let v =
            VendorClass::parse(b"pktc1.5:051a0101010201020301000401010901000b02060910010912020007");
        assert_eq!(v.family, DeviceFamily::PacketCable);
        assert_eq!(v.version, b"pktc1.5");
        assert_eq!(v.supported_flows(), Some(0x0007));
        assert_eq!(VendorClass::parse(b"docsis3.0:zz").capabilities, None);
    }

    #[test]
    fn vendor_blocks_iterate_and_fail_cleanly() {
        let mut v = Vec::new();
        assert!(encode_vendor_block(
            CABLELABS_ENTERPRISE,
            &[2, 4, 10, 0, 0, 10],
            &mut v
        ));
        let b: Vec<_> = vendor_blocks(&v).collect();
        assert_eq!(
            b,
            vec![Ok(VendorBlock {
                enterprise: 4491,
                data: &[2, 4, 10, 0, 0, 10]
            })]
        );
        assert!(vendor_blocks(&v[..7]).next().unwrap().is_err());
    }

    #[test]
    fn acs_url_vendor_info() {
        let mut v = Vec::new();
        assert!(encode_acs_vendor_info(
            "http://acs:7547/",
            Some("X"),
            &mut v
        ));
        assert_eq!(SubOptions::find(&v, 1), Some(&b"http://acs:7547/"[..]));
        assert_eq!(SubOptions::find(&v, 2), Some(&b"X"[..]));
    }
}
