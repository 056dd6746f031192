//! PacketCable MTA config file hashes.
//!
//! Two uses of the same digest. In the SNMP enrollment flows the provisioning server hashes the
//! exact bytes it serves and SETs the hash on the MTA ([`mta_file_hash`]). In the BASIC flows
//! the hash travels in the file: hash the complete file (final `fe 01 ff` included), then put a
//! TLV 11 `<hash OID>.0 = OCTET STRING hash` just before that final delimiter. A verifier
//! removes that TLV and hashes the rest.

use md5::Md5;
use sha1::{Digest, Sha1};

use crate::ber::{SnmpValue, VarBind};

/// Digest algorithm of an MTA config hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashAlg {
    /// SHA-1 (20 bytes): PacketCable and the IETF MTA MIB.
    Sha1,
    /// MD5 (16 bytes): Euro-PacketCable.
    Md5,
}

impl HashAlg {
    pub fn digest(self, bytes: &[u8]) -> Vec<u8> {
        match self {
            HashAlg::Sha1 => Sha1::digest(bytes).to_vec(),
            HashAlg::Md5 => Md5::digest(bytes).to_vec(),
        }
    }

    /// Digest length in bytes.
    pub fn digest_len(self) -> usize {
        match self {
            HashAlg::Sha1 => 20,
            HashAlg::Md5 => 16,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            HashAlg::Sha1 => "sha1",
            HashAlg::Md5 => "md5",
        }
    }

    fn by_len(len: usize) -> Option<HashAlg> {
        [HashAlg::Sha1, HashAlg::Md5]
            .into_iter()
            .find(|a| a.digest_len() == len)
    }
}

/// Which MIB's `pktcMtaDevProvConfigHash` object carries the in-file hash: it must be the MIB
/// the MTA implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashOid {
    /// CableLabs PKTC-MTA-MIB, 1.3.6.1.4.1.4491.2.2.1.1.2.7.0 (the docsis tool's choice).
    CableLabs,
    /// IETF PKTC-IETF-MTA-MIB (RFC 4682), 1.3.6.1.2.1.140.1.2.11.0.
    Ietf,
    /// Euro-PacketCable, 1.3.6.1.4.1.7432.1.1.2.9.0.
    EuroPacketCable,
}

impl HashOid {
    pub const ALL: [HashOid; 3] = [HashOid::CableLabs, HashOid::Ietf, HashOid::EuroPacketCable];

    pub fn oid(self) -> &'static [u32] {
        match self {
            HashOid::CableLabs => &[1, 3, 6, 1, 4, 1, 4491, 2, 2, 1, 1, 2, 7, 0],
            HashOid::Ietf => &[1, 3, 6, 1, 2, 1, 140, 1, 2, 11, 0],
            HashOid::EuroPacketCable => &[1, 3, 6, 1, 4, 1, 7432, 1, 1, 2, 9, 0],
        }
    }

    fn by_oid(oid: &[u32]) -> Option<HashOid> {
        HashOid::ALL.into_iter().find(|h| h.oid() == oid)
    }
}

/// How to embed a hash in an MTA file: algorithm and carrying object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MtaHash {
    pub alg: HashAlg,
    pub oid: HashOid,
}

/// An in-file hash found by `decode`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FoundMtaHash {
    pub alg: HashAlg,
    pub oid: HashOid,
    pub value: Vec<u8>,
}

impl FoundMtaHash {
    /// The settings that re-create this hash with `encode_mta`.
    pub fn spec(&self) -> MtaHash {
        MtaHash {
            alg: self.alg,
            oid: self.oid,
        }
    }

    /// Recognise the value of a TLV 11 as an in-file hash.
    pub(crate) fn from_tlv11(value: &[u8]) -> Option<FoundMtaHash> {
        let vb = VarBind::decode(value).ok()?;
        let oid = HashOid::by_oid(&vb.oid)?;
        let SnmpValue::OctetString(hash) = vb.value else {
            return None;
        };
        let alg = HashAlg::by_len(hash.len())?;
        Some(FoundMtaHash {
            alg,
            oid,
            value: hash,
        })
    }
}

/// Hash of the exact bytes served to the MTA, for `pktcMtaDevProvConfigHash` in the SNMP flows.
pub fn mta_file_hash(bytes: &[u8], alg: HashAlg) -> Vec<u8> {
    alg.digest(bytes)
}
