//! CM MIC (TLV 6) and CMTS MIC (TLV 7), per the DOCSIS config file rules.
//!
//! The CM MIC is MD5 over every byte before TLV 6. The CMTS MIC is HMAC-MD5 keyed with the
//! CMTS shared secret over the complete encodings of selected TLVs, taken type by type in a
//! fixed order (not file order) and, within a type, in file order. TLV 6 itself is included.

use hmac::digest::CtOutput;
use hmac::{Hmac, Mac};
use md5::{Digest, Md5};

/// TLV types the CMTS MIC covers, in digest order.
pub const CMTS_MIC_TYPES: [u8; 21] = [
    1, 2, 3, 4, 17, 43, 6, 18, 19, 20, 22, 23, 24, 25, 28, 29, 26, 35, 36, 37, 40,
];

pub const CM_MIC_TYPE: u8 = 6;
pub const CMTS_MIC_TYPE: u8 = 7;

/// One top-level TLV as it appears in the file: its type and its complete encoding.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Encoded<'a> {
    pub typ: u8,
    pub bytes: &'a [u8],
}

/// MD5 of the file bytes that precede TLV 6.
pub fn cm_mic(before_tlv6: &[u8]) -> [u8; 16] {
    Md5::digest(before_tlv6).into()
}

fn cmts_hmac<'a>(key: &[u8], tlvs: impl Iterator<Item = Encoded<'a>> + Clone) -> Hmac<Md5> {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <Hmac<Md5> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    for typ in CMTS_MIC_TYPES {
        for tlv in tlvs.clone().filter(|t| t.typ == typ) {
            mac.update(tlv.bytes);
        }
    }
    mac
}

/// HMAC-MD5 over `tlvs` (all top-level TLVs before TLV 7, TLV 6 included).
pub(crate) fn cmts_mic<'a>(
    key: &[u8],
    tlvs: impl Iterator<Item = Encoded<'a>> + Clone,
) -> [u8; 16] {
    cmts_hmac(key, tlvs).finalize().into_bytes().into()
}

/// Constant-time check of a CMTS MIC found in a file.
pub(crate) fn cmts_mic_matches<'a>(
    key: &[u8],
    tlvs: impl Iterator<Item = Encoded<'a>> + Clone,
    found: &[u8; 16],
) -> bool {
    cmts_hmac(key, tlvs).verify_slice(found).is_ok()
}

/// Constant-time comparison of two MD5 digests.
pub(crate) fn md5_eq(a: &[u8; 16], b: &[u8; 16]) -> bool {
    CtOutput::<Md5>::new((*a).into()) == CtOutput::<Md5>::new((*b).into())
}
