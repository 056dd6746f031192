//! Checking the integrity values a config file carries.

use std::fmt;

use crate::error::DecodeError;
use crate::file::{self, FileKind};
use crate::hex;
use crate::mic;
use crate::mta::HashAlg;

/// The outcome of one integrity check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// The value in the file is the one computed from it.
    Verified {
        found: Vec<u8>,
    },
    Mismatch {
        found: Vec<u8>,
        computed: Vec<u8>,
    },
    /// Present but not checked: the CMTS MIC needs the CMTS shared secret.
    NotChecked {
        found: Vec<u8>,
    },
    /// The file does not carry this value (or it does not apply to this kind of file).
    Absent,
}

impl Check {
    pub fn is_mismatch(&self) -> bool {
        matches!(self, Check::Mismatch { .. })
    }
}

/// What `verify` found for each integrity value of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    pub kind: FileKind,
    /// CM files: TLV 6, MD5 of the bytes before it.
    pub cm_mic: Check,
    /// CM files: TLV 7, HMAC-MD5 with the CMTS shared secret.
    pub cmts_mic: Check,
    /// MTA files: the in-file hash (BASIC flows), over the file without it.
    pub mta_hash: Check,
    pub mta_hash_alg: Option<HashAlg>,
}

impl Verification {
    /// Nothing is wrong: no mismatch, and a CM file carries a verified CM MIC and a CMTS MIC
    /// (verified, or not checked for want of a key). An MTA file without an in-file hash is
    /// fine: in the SNMP flows the hash is sent apart.
    pub fn all_ok(&self) -> bool {
        let no_mismatch = ![&self.cm_mic, &self.cmts_mic, &self.mta_hash]
            .iter()
            .any(|c| c.is_mismatch());
        match self.kind {
            FileKind::Cm => {
                no_mismatch
                    && matches!(self.cm_mic, Check::Verified { .. })
                    && matches!(
                        self.cmts_mic,
                        Check::Verified { .. } | Check::NotChecked { .. }
                    )
            }
            FileKind::Mta => no_mismatch,
        }
    }
}

/// Check the CM MIC and CMTS MIC of a CM file (the CMTS MIC only with a shared secret), or the
/// in-file hash of an MTA file. Comparisons are constant-time.
pub fn verify(bytes: &[u8], shared_secret: Option<&[u8]>) -> Result<Verification, DecodeError> {
    let (decoded, layout) = file::decode_with_layout(bytes)?;
    let mut v = Verification {
        kind: decoded.file.kind,
        cm_mic: Check::Absent,
        cmts_mic: Check::Absent,
        mta_hash: Check::Absent,
        mta_hash_alg: None,
    };
    if let (Some(found), Some(i)) = (decoded.cm_mic, layout.cm_mic) {
        let computed = mic::cm_mic(&bytes[..layout.spans[i].1.start]);
        v.cm_mic = compared(mic::md5_eq(&found, &computed), &found, &computed);
    }
    if let (Some(found), Some(i)) = (decoded.cmts_mic, layout.cmts_mic) {
        let covered = file::encoded(bytes, &layout.spans[..i]);
        v.cmts_mic = match shared_secret {
            None => Check::NotChecked {
                found: found.to_vec(),
            },
            Some(key) if mic::cmts_mic_matches(key, covered.clone(), &found) => Check::Verified {
                found: found.to_vec(),
            },
            Some(key) => Check::Mismatch {
                found: found.to_vec(),
                computed: mic::cmts_mic(key, covered).to_vec(),
            },
        };
    }
    if let (Some(found), Some(i)) = (&decoded.mta_hash, layout.mta_hash) {
        let r = layout.spans[i].1.clone();
        let without: Vec<u8> = bytes[..r.start]
            .iter()
            .chain(&bytes[r.end..])
            .copied()
            .collect();
        let computed = found.alg.digest(&without);
        v.mta_hash = compared(ct_eq(&found.value, &computed), &found.value, &computed);
        v.mta_hash_alg = Some(found.alg);
    }
    Ok(v)
}

fn compared(equal: bool, found: &[u8], computed: &[u8]) -> Check {
    if equal {
        Check::Verified {
            found: found.to_vec(),
        }
    } else {
        Check::Mismatch {
            found: found.to_vec(),
            computed: computed.to_vec(),
        }
    }
}

/// Constant-time equality of two digests of the same algorithm.
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl fmt::Display for Verification {
    /// One comment line per check, in the style of the docsis tool's decoded output.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            FileKind::Cm => {
                line(f, "CmMic", &self.cm_mic)?;
                line(f, "CmtsMic", &self.cmts_mic)
            }
            FileKind::Mta => {
                let label = match self.mta_hash_alg {
                    Some(alg) => format!("MtaHash {}", alg.name()),
                    None => "MtaHash".to_string(),
                };
                line(f, &label, &self.mta_hash)
            }
        }
    }
}

fn line(f: &mut fmt::Formatter<'_>, label: &str, check: &Check) -> fmt::Result {
    match check {
        Check::Verified { found } => writeln!(f, "/* {label} {} verified */", hex::encode(found)),
        Check::Mismatch { found, computed } => {
            writeln!(
                f,
                "/* {label} {} MISMATCH (computed {}) */",
                hex::encode(found),
                hex::encode(computed)
            )
        }
        Check::NotChecked { found } => {
            writeln!(
                f,
                "/* {label} {} not checked: no shared secret */",
                hex::encode(found)
            )
        }
        Check::Absent => writeln!(f, "/* {label} absent */"),
    }
}
