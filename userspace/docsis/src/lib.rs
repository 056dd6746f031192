//! DOCSIS cable modem and PacketCable MTA configuration files, without I/O: bytes in, values
//! out.
//!
//! * [`decode`] reads a binary file into a [`ConfigFile`] (a tree of [`Tlv`]s) and reports the
//!   integrity values it carried; [`encode_cm`] and [`encode_mta`] write a tree back,
//!   recomputing the CM MIC and CMTS MIC, or the MTA in-file hash.
//! * [`verify`] checks those values, in constant time.
//! * [`text`] is the docsis tool's text syntax (`Main { NetworkAccess 1; ... }`).
//!
//! Invariants the tests hold the crate to:
//! * decode is total: any bytes give a tree or a [`DecodeError`], never a panic;
//! * for a file whose trailer was made by the rules (MICs last, end marker, padding to 4
//!   bytes; or the in-file MTA hash before the final delimiter), encoding the decoded tree
//!   gives back the input byte for byte. Unknown TLVs and values the symbol table cannot type
//!   are carried as raw bytes, and a compound TLV whose bytes do not split into sub-TLVs stays
//!   a leaf;
//! * `text::parse(text::print(tree)) == tree` for every decoded tree: a value is printed in its
//!   typed form only when that form parses back to the same bytes, else as `GenericTLV` hex.
//!
//! ```
//! use provd_docsis::{decode, encode_cm, text, verify};
//!
//! let file = text::parse("Main { NetworkAccess 1; MaxCPE 3; }")?;
//! let bytes = encode_cm(&file, b"DOCSIS")?;
//! assert!(verify(&bytes, Some(b"DOCSIS"))?.all_ok());
//! assert_eq!(decode(&bytes)?.file, file);
//! assert_eq!(text::print(&file), "Main \n{\n\tNetworkAccess 1;\n\tMaxCPE 3;\n}\n");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod ber;
mod error;
mod file;
mod hex;
mod mic;
mod mta;
mod oid;
pub mod symtab;
pub mod text;
mod tlv;
mod verify;

pub use ber::{SnmpValue, VarBind};
pub use error::{DecodeError, EncodeError};
pub use file::{ConfigFile, Decoded, FileKind, MTA_DELIMITER, decode, encode_cm, encode_mta};
pub use mic::{CMTS_MIC_TYPES, cm_mic};
pub use mta::{FoundMtaHash, HashAlg, HashOid, MtaHash, mta_file_hash};
pub use tlv::{Tlv, Value, WIDE_LENGTH_TYPE};
pub use verify::{Check, Verification, verify};
