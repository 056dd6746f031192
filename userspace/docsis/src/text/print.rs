//! Trees to text, indented like the docsis tool's decoded output.

use std::fmt::Write;

use super::parse;
use super::value;
use crate::ber::{SnmpValue, VarBind};
use crate::file::{ConfigFile, Decoded};
use crate::hex;
use crate::oid;
use crate::symtab::{self, Kind, Sym};
use crate::tlv::{Tlv, Value, WIDE_LENGTH_TYPE};

/// The text form of a config file. It parses back to the same tree.
pub fn print(file: &ConfigFile) -> String {
    let mut out = String::from("Main \n{\n");
    for tlv in &file.tlvs {
        statement(&mut out, tlv, symtab::ROOT, true, 1);
    }
    out.push_str("}\n");
    out
}

/// [`print`] plus, as comments, the integrity values the file carried (as the tool shows them:
/// CM MIC, CMTS MIC, end marker and padding; or the MTA in-file hash). The comments are not
/// parsed back: encoding recomputes these values.
pub fn print_decoded(decoded: &Decoded) -> String {
    let mut out = print(&decoded.file);
    out.truncate(out.len() - "}\n".len());
    if let Some(mic) = decoded.cm_mic {
        let _ = writeln!(out, "\t/* CmMic {}; */", hex::encode(&mic));
    }
    if let Some(mic) = decoded.cmts_mic {
        let _ = writeln!(out, "\t/* CmtsMic {}; */", hex::encode(&mic));
    }
    if decoded.file.kind == crate::FileKind::Cm {
        out.push_str("\t/*EndOfDataMkr*/\n");
        for _ in 0..decoded.padding {
            out.push_str("\t/* Pad */\n");
        }
    }
    if let Some(h) = &decoded.mta_hash {
        let _ = writeln!(
            out,
            "\t/* MtaHash {} {} {} */",
            h.alg.name(),
            oid::format(h.oid.oid()),
            hex::encode(&h.value)
        );
    }
    out.push_str("}\n");
    out
}

fn indent(out: &mut String, depth: usize) {
    out.extend(std::iter::repeat_n('\t', depth));
}

fn statement(out: &mut String, tlv: &Tlv, table: &'static [Sym], top_level: bool, depth: usize) {
    let sym = symtab::by_code(table, tlv.typ);
    match (&tlv.value, sym.map(|s| (s, s.kind))) {
        (Value::Compound(children), Some((sym, Kind::Compound(sub)))) => {
            indent(out, depth);
            out.push_str(sym.name);
            out.push('\n');
            indent(out, depth);
            out.push_str("{\n");
            for child in children {
                statement(out, child, sub, false, depth + 1);
            }
            indent(out, depth);
            out.push_str("}\n");
        }
        (Value::Leaf(bytes), Some((sym, _))) => {
            // The tool writes a top-level TLV 64 VarBind as SnmpMibObject (a big one is moved
            // there from TLV 11); `DigitMap` is the form that holds for any size.
            let promoted = (top_level && tlv.typ == WIDE_LENGTH_TYPE)
                .then(|| symtab::by_code(table, parse::SNMP_MIB_OBJECT))
                .flatten();
            let line = promoted
                .into_iter()
                .chain([sym])
                .filter_map(|s| typed(s, bytes))
                .find(|text| {
                    parse::statements(text.as_bytes(), table, top_level)
                        .is_ok_and(|t| t == [tlv.clone()])
                })
                .unwrap_or_else(|| generic(tlv.typ, bytes));
            indent(out, depth);
            out.push_str(&line);
            out.push('\n');
        }
        _ => {
            indent(out, depth);
            match tlv.value_bytes() {
                Ok(bytes) => out.push_str(&generic(tlv.typ, &bytes)),
                Err(e) => {
                    let _ = write!(out, "/* TLV {} cannot be encoded: {e} */", tlv.typ);
                }
            }
            out.push('\n');
        }
    }
}

/// The statement in its typed form, if the value fits that form.
fn typed(sym: &Sym, bytes: &[u8]) -> Option<String> {
    let value = match sym.kind {
        Kind::Compound(_) | Kind::FileChunks => return None,
        Kind::VarBind { .. } => varbind(&VarBind::decode(bytes).ok()?)?,
        Kind::SnmpWrite => {
            let (flag, oid) = bytes.split_last()?;
            format!("{} {flag}", value::format(&Kind::Oid, oid)?)
        }
        ref kind => value::format(kind, bytes)?,
    };
    Some(format!("{} {value};", sym.name))
}

fn varbind(vb: &VarBind) -> Option<String> {
    let value = match &vb.value {
        SnmpValue::Integer(v) => format!("Integer {v}"),
        SnmpValue::OctetString(b) => match value::quoted(b) {
            Some(q) => format!("String {q}"),
            None => format!("HexString 0x{}", hex::encode(b)),
        },
        SnmpValue::Null => "Null".to_string(),
        SnmpValue::ObjectId(o) => format!("ObjectID {}", oid::format(o)),
        SnmpValue::IpAddress(a) => format!("IPAddress {}", std::net::Ipv4Addr::from(*a)),
        SnmpValue::Counter32(v) => format!("Counter32 {v}"),
        SnmpValue::Gauge32(v) => format!("Gauge32 {v}"),
        SnmpValue::TimeTicks(v) => format!("TimeTicks {v}"),
        SnmpValue::Opaque(b) => format!("Opaque 0x{}", hex::encode(b)),
        SnmpValue::Counter64(v) => format!("Counter64 {v}"),
        SnmpValue::Other { .. } => return None,
    };
    Some(format!("{} {value}", oid::format(&vb.oid)))
}

fn generic(typ: u8, bytes: &[u8]) -> String {
    format!(
        "GenericTLV TlvCode {typ} TlvLength {} TlvValue 0x{};",
        bytes.len(),
        hex::encode(bytes)
    )
}
