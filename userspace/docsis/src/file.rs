//! Whole config files: kinds, decode, and encode with the integrity trailer (CM) or in-file
//! hash (MTA).

use std::ops::Range;

use crate::ber::{SnmpValue, VarBind};
use crate::error::{DecodeError, EncodeError};
use crate::mic::{self, CM_MIC_TYPE, CMTS_MIC_TYPE, Encoded};
use crate::mta::{FoundMtaHash, MtaHash};
use crate::symtab;
use crate::tlv::{self, Tlv, Value};

/// Type code of the PacketCable MTA config delimiter.
pub const MTA_DELIMITER: u8 = 254;
const END_OF_DATA: u8 = 0xff;
const PAD: u8 = 0x00;
const MTA_BEGIN: [u8; 3] = [MTA_DELIMITER, 1, 0x01];
const MTA_END: [u8; 3] = [MTA_DELIMITER, 1, 0xff];
const MIC_LEN: usize = 16;
const SNMP_MIB_OBJECT: u8 = 11;

/// Top-level TLVs of a file: type and the byte range of the whole TLV.
pub(crate) type Spans = Vec<(u8, Range<usize>)>;

/// Which device a config file is for; decides the integrity rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileKind {
    /// DOCSIS cable modem: MICs, end-of-data marker, padding to 4 bytes.
    Cm,
    /// PacketCable MTA: `MtaConfigDelimiter 1` first, no MICs, no padding.
    Mta,
}

impl FileKind {
    /// An MTA file starts with the begin delimiter (TLV 254 = 1).
    pub fn of_bytes(bytes: &[u8]) -> FileKind {
        if bytes.starts_with(&MTA_BEGIN) {
            FileKind::Mta
        } else {
            FileKind::Cm
        }
    }

    /// The same rule on a tree: the first TLV is `MtaConfigDelimiter 1`.
    pub fn of_tlvs(tlvs: &[Tlv]) -> FileKind {
        match tlvs.first() {
            Some(Tlv {
                typ: MTA_DELIMITER,
                value: Value::Leaf(v),
            }) if v.as_slice() == [1] => FileKind::Mta,
            _ => FileKind::Cm,
        }
    }
}

/// A config file's settings: the top-level TLVs, without the CM integrity trailer (TLV 6,
/// TLV 7, end marker, padding) or the MTA in-file hash, which encoding adds.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ConfigFile {
    pub kind: FileKind,
    pub tlvs: Vec<Tlv>,
}

impl ConfigFile {
    /// A file of the kind its first TLV says.
    pub fn new(tlvs: Vec<Tlv>) -> Self {
        ConfigFile {
            kind: FileKind::of_tlvs(&tlvs),
            tlvs,
        }
    }
}

/// What `decode` found: the settings plus the integrity values the file carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    pub file: ConfigFile,
    /// CM MIC of a CM file (the trailing TLV 6), as found, not checked.
    pub cm_mic: Option<[u8; 16]>,
    /// CMTS MIC of a CM file (the trailing TLV 7), as found, not checked.
    pub cmts_mic: Option<[u8; 16]>,
    /// In-file hash of an MTA file (TLV 11 just before the final delimiter), as found.
    pub mta_hash: Option<FoundMtaHash>,
    /// Number of 0x00 bytes after the end-of-data marker.
    pub padding: usize,
}

/// Where the parts of a decoded file sit in its bytes, for verification.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    /// Every top-level TLV (trailer and hash TLVs included): type and byte range.
    pub spans: Spans,
    /// Index in `spans` of the trailer TLV 6 / TLV 7 / MTA hash TLV.
    pub cm_mic: Option<usize>,
    pub cmts_mic: Option<usize>,
    pub mta_hash: Option<usize>,
}

/// Decode a CM or MTA config file (the kind is told by its first bytes).
pub fn decode(bytes: &[u8]) -> Result<Decoded, DecodeError> {
    decode_with_layout(bytes).map(|(decoded, _)| decoded)
}

pub(crate) fn decode_with_layout(bytes: &[u8]) -> Result<(Decoded, Layout), DecodeError> {
    if bytes.is_empty() {
        return Err(DecodeError::Empty);
    }
    let kind = FileKind::of_bytes(bytes);
    let (spans, padding) = scan(bytes, kind)?;
    let mut layout = Layout {
        spans,
        cm_mic: None,
        cmts_mic: None,
        mta_hash: None,
    };
    let mut body_len = layout.spans.len();
    let mut cm_mic = None;
    let mut cmts_mic = None;
    let mut mta_hash = None;
    let value_of = |i: usize| -> &[u8] {
        let (typ, range) = &layout.spans[i];
        &bytes[range.start + tlv::length_field(*typ, true).0..range.end]
    };
    match kind {
        FileKind::Cm => {
            // The trailer is TLV 6 then TLV 7 of 16 bytes each, last before the end marker.
            let mic_at = |end: usize, typ: u8| {
                let i = end.checked_sub(1).filter(|&i| layout.spans[i].0 == typ)?;
                <[u8; MIC_LEN]>::try_from(value_of(i))
                    .ok()
                    .map(|mic| (i, mic))
            };
            if let Some((i, mic)) = mic_at(body_len, CMTS_MIC_TYPE) {
                (cmts_mic, layout.cmts_mic, body_len) = (Some(mic), Some(i), i);
            }
            if let Some((i, mic)) = mic_at(body_len, CM_MIC_TYPE) {
                (cm_mic, layout.cm_mic, body_len) = (Some(mic), Some(i), i);
            }
        }
        FileKind::Mta => {
            let n = layout.spans.len();
            if n >= 2
                && bytes[layout.spans[n - 1].1.clone()] == MTA_END
                && layout.spans[n - 2].0 == SNMP_MIB_OBJECT
                && let Some(found) = FoundMtaHash::from_tlv11(value_of(n - 2))
            {
                mta_hash = Some(found);
                layout.mta_hash = Some(n - 2);
            }
        }
    }
    let tlvs = (0..layout.spans.len())
        .filter(|&i| i < body_len && Some(i) != layout.mta_hash)
        .map(|i| {
            let typ = layout.spans[i].0;
            Tlv {
                typ,
                value: tlv::decode_value(typ, value_of(i), symtab::ROOT),
            }
        })
        .collect();
    let decoded = Decoded {
        file: ConfigFile { kind, tlvs },
        cm_mic,
        cmts_mic,
        mta_hash,
        padding,
    };
    Ok((decoded, layout))
}

/// Walk the top-level TLVs: their spans, and the padding count after the end marker.
fn scan(bytes: &[u8], kind: FileKind) -> Result<(Spans, usize), DecodeError> {
    let mut spans = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        let typ = bytes[pos];
        match (typ, kind) {
            (PAD | END_OF_DATA, FileKind::Mta) => {
                return Err(DecodeError::MarkerInMtaFile {
                    offset: pos,
                    byte: typ,
                });
            }
            (PAD, FileKind::Cm) => return Err(DecodeError::PadBeforeEnd { offset: pos }),
            (END_OF_DATA, FileKind::Cm) => {
                let rest = &bytes[pos + 1..];
                return match rest.iter().position(|&b| b != PAD) {
                    Some(i) => Err(DecodeError::DataAfterEnd {
                        offset: pos + 1 + i,
                    }),
                    None => Ok((spans, rest.len())),
                };
            }
            _ => {}
        }
        let (header, _) = tlv::length_field(typ, true);
        let Some(len_bytes) = bytes.get(pos + 1..pos + header) else {
            return Err(DecodeError::Truncated { offset: pos, typ });
        };
        let len = len_bytes
            .iter()
            .fold(0usize, |acc, &b| acc << 8 | usize::from(b));
        let available = bytes.len() - pos - header;
        if len > available {
            return Err(DecodeError::LengthPastEnd {
                offset: pos,
                typ,
                len,
                available,
            });
        }
        spans.push((typ, pos..pos + header + len));
        pos += header + len;
    }
    match kind {
        FileKind::Cm => Err(DecodeError::MissingEndMarker),
        FileKind::Mta => Ok((spans, 0)),
    }
}

/// Encode top-level TLVs, returning the bytes and each TLV's (type, range).
fn encode_top(tlvs: &[Tlv]) -> Result<(Vec<u8>, Spans), EncodeError> {
    // Room for the settings and the CM trailer (two MICs, end marker, padding): one allocation.
    // A TLV that cannot be encoded fails below, in encode_tlv.
    let len: usize = tlvs
        .iter()
        .map(|t| tlv::encoded_len(t, true).unwrap_or(0))
        .sum();
    let mut out = Vec::with_capacity(len + 2 * (2 + MIC_LEN) + 4);
    let mut spans = Vec::with_capacity(tlvs.len());
    for t in tlvs {
        if t.typ == PAD || t.typ == END_OF_DATA {
            return Err(EncodeError::ReservedType { typ: t.typ });
        }
        let start = out.len();
        tlv::encode_tlv(t, true, &mut out)?;
        spans.push((t.typ, start..out.len()));
    }
    Ok((out, spans))
}

/// Encode a CM config file: the settings, then CM MIC, CMTS MIC (keyed with the CMTS shared
/// secret), end-of-data marker and padding to a multiple of 4 bytes.
pub fn encode_cm(file: &ConfigFile, shared_secret: &[u8]) -> Result<Vec<u8>, EncodeError> {
    // Bytes starting with the MTA begin delimiter would read back as an MTA file.
    expect_kind(&file.tlvs, FileKind::Cm)?;
    let (mut out, mut spans) = encode_top(&file.tlvs)?;
    let cm = mic::cm_mic(&out);
    let start = out.len();
    out.extend_from_slice(&[CM_MIC_TYPE, MIC_LEN as u8]);
    out.extend_from_slice(&cm);
    spans.push((CM_MIC_TYPE, start..out.len()));
    let cmts = mic::cmts_mic(shared_secret, encoded(&out, &spans));
    out.extend_from_slice(&[CMTS_MIC_TYPE, MIC_LEN as u8]);
    out.extend_from_slice(&cmts);
    out.push(END_OF_DATA);
    out.resize(out.len().next_multiple_of(4), PAD);
    Ok(out)
}

/// Encode a PacketCable MTA config file, optionally with the in-file hash (BASIC flows): hash
/// the complete file, then insert TLV 11 `<oid> = hash` before the final `MtaConfigDelimiter 255`.
pub fn encode_mta(
    file: &ConfigFile,
    in_file_hash: Option<MtaHash>,
) -> Result<Vec<u8>, EncodeError> {
    expect_kind(&file.tlvs, FileKind::Mta)?;
    let (mut out, _) = encode_top(&file.tlvs)?;
    let Some(spec) = in_file_hash else {
        return Ok(out);
    };
    if !out.ends_with(&MTA_END) {
        return Err(EncodeError::MissingMtaEndDelimiter);
    }
    let hash = spec.alg.digest(&out);
    let varbind = VarBind {
        oid: spec.oid.oid().to_vec(),
        value: SnmpValue::OctetString(hash),
    }
    .encode()?;
    let mut tlv11 = Vec::new();
    tlv::encode_tlv(&Tlv::leaf(11, varbind), true, &mut tlv11)?;
    let at = out.len() - MTA_END.len();
    out.splice(at..at, tlv11);
    Ok(out)
}

fn expect_kind(tlvs: &[Tlv], kind: FileKind) -> Result<(), EncodeError> {
    let actual = FileKind::of_tlvs(tlvs);
    if actual == kind {
        Ok(())
    } else {
        Err(EncodeError::WrongKind { actual })
    }
}

/// The complete encodings of `spans` within `bytes`, for the CMTS MIC.
pub(crate) fn encoded<'a>(
    bytes: &'a [u8],
    spans: &'a [(u8, Range<usize>)],
) -> impl Iterator<Item = Encoded<'a>> + Clone + 'a {
    spans.iter().map(move |(typ, r)| Encoded {
        typ: *typ,
        bytes: &bytes[r.clone()],
    })
}
