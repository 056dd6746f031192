//! The lease value types and their byte format on disk: file header and CRC-framed records.
//!
//! Record layout, little-endian:
//!
//! ```text
//! u16 payload_len | u32 crc32(payload_len bytes ++ payload) | payload
//! payload = u64 seq | u32 addr | u32 expires_at | u16 pool | [u8; 6] chaddr | u8 state
//!         | u16 key_len | key bytes
//! ```
//!
//! The CRC covers the length too, so a damaged length is caught as a bad checksum rather than
//! silently re-framing the rest of the file. The decoder is total: any bytes give a record or a
//! [`RecordError`], never a panic, and never a consumed count beyond the input.

use std::net::Ipv4Addr;

use crate::key::{ClientKey, MAX_KEY_LEN};

/// Where a lease is in its life.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub enum LeaseState {
    Offered = 1,
    Bound = 2,
    Released = 3,
    Expired = 4,
}

impl LeaseState {
    /// The state stored as `value` on disk, if it is one.
    pub fn from_u8(value: u8) -> Option<LeaseState> {
        match value {
            1 => Some(LeaseState::Offered),
            2 => Some(LeaseState::Bound),
            3 => Some(LeaseState::Released),
            4 => Some(LeaseState::Expired),
            _ => None,
        }
    }
}

/// One client's lease.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Lease {
    pub addr: Ipv4Addr,
    /// Unix seconds; for Offered = end of the offer hold. For Released and Expired it is when the
    /// lease ended, which is what [`crate::LeaseTable::sweep`] ages them by.
    pub expires_at: u32,
    pub state: LeaseState,
    pub chaddr: [u8; 6],
    /// Index of the pool the address came from (engine's numbering).
    pub pool: u16,
}

/// One record of the durable log / snapshot.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct LeaseRecord {
    pub seq: u64,
    pub key: ClientKey,
    pub lease: Lease,
}

/// Why bytes did not decode as a record.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// The input ends before the record does: more bytes are needed (or the write was torn).
    #[error("record truncated: needs {needed} bytes, {have} available")]
    Truncated { needed: usize, have: usize },
    #[error("record payload length {len} is outside {min}..={max}")]
    BadLength { len: usize, min: usize, max: usize },
    #[error("record checksum mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    BadChecksum { stored: u32, computed: u32 },
    #[error("record key length {key_len} does not fit payload length {payload_len}")]
    KeyLength { key_len: usize, payload_len: usize },
    #[error("record key ({len} bytes, tag {tag}) is not a client key")]
    BadKey { len: usize, tag: u8 },
    #[error("record lease state {value} is unknown")]
    BadState { value: u8 },
}

/// Bytes before the payload: length and CRC.
pub(crate) const RECORD_HEADER_LEN: usize = 6;
/// Payload bytes before the key.
const PAYLOAD_FIXED: usize = 8 + 4 + 4 + 2 + 6 + 1 + 2;
// The shortest key is a client-id tag alone.
const MIN_PAYLOAD: usize = PAYLOAD_FIXED + 1;
const MAX_PAYLOAD: usize = PAYLOAD_FIXED + MAX_KEY_LEN;
/// Longest encoded record; a reader buffer this big always holds a whole record.
pub(crate) const MAX_RECORD_LEN: usize = RECORD_HEADER_LEN + MAX_PAYLOAD;

const _: () = assert!(MAX_PAYLOAD <= u16::MAX as usize);

/// Length of the header every log and snapshot file starts with.
pub const FILE_HEADER_LEN: usize = 8;
const FILE_MAGIC: [u8; 6] = *b"PVDLEA";
const FORMAT_VERSION: u8 = 1;

/// Which of a shard's two files a header belongs to; snapshots sort before logs so a replay reads
/// a shard's base state before the changes on top of it.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub(crate) enum FileKind {
    Snapshot,
    Log,
}

impl FileKind {
    fn tag(self) -> u8 {
        match self {
            FileKind::Snapshot => b'S',
            FileKind::Log => b'L',
        }
    }
}

/// The header of a file of `kind` in the current format.
pub(crate) fn file_header(kind: FileKind) -> [u8; FILE_HEADER_LEN] {
    let mut h = [0u8; FILE_HEADER_LEN];
    h[..6].copy_from_slice(&FILE_MAGIC);
    h[6] = kind.tag();
    h[7] = FORMAT_VERSION;
    h
}

/// Encodes `rec` onto the end of `out`.
pub fn encode_record(rec: &LeaseRecord, out: &mut Vec<u8>) {
    encode_parts(rec.seq, &rec.key, &rec.lease, out);
}

/// [`encode_record`] without building a `LeaseRecord`, so snapshots need not clone keys.
pub(crate) fn encode_parts(seq: u64, key: &ClientKey, lease: &Lease, out: &mut Vec<u8>) {
    let key = key.as_bytes();
    // ClientKey caps keys at MAX_KEY_LEN, so both lengths fit u16 (checked by the const assert).
    let payload_len = (PAYLOAD_FIXED + key.len()) as u16;
    let start = out.len();
    out.reserve(RECORD_HEADER_LEN + usize::from(payload_len));
    out.extend_from_slice(&payload_len.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&u32::from(lease.addr).to_le_bytes());
    out.extend_from_slice(&lease.expires_at.to_le_bytes());
    out.extend_from_slice(&lease.pool.to_le_bytes());
    out.extend_from_slice(&lease.chaddr);
    out.push(lease.state as u8);
    out.extend_from_slice(&(key.len() as u16).to_le_bytes());
    out.extend_from_slice(key);
    let crc = checksum(&out[start..start + 2], &out[start + RECORD_HEADER_LEN..]);
    out[start + 2..start + RECORD_HEADER_LEN].copy_from_slice(&crc.to_le_bytes());
}

fn checksum(len_bytes: &[u8], payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(len_bytes);
    h.update(payload);
    h.finalize()
}

/// Decodes the record at the start of `buf`; on success also returns how many bytes it took.
pub fn decode_record(buf: &[u8]) -> Result<(LeaseRecord, usize), RecordError> {
    let mut head = Cursor(buf);
    let (Some(len_bytes), Some(crc_bytes)) = (head.take::<2>(), head.take::<4>()) else {
        return Err(RecordError::Truncated {
            needed: RECORD_HEADER_LEN,
            have: buf.len(),
        });
    };
    let payload_len = usize::from(u16::from_le_bytes(len_bytes));
    if !(MIN_PAYLOAD..=MAX_PAYLOAD).contains(&payload_len) {
        return Err(RecordError::BadLength {
            len: payload_len,
            min: MIN_PAYLOAD,
            max: MAX_PAYLOAD,
        });
    }
    let total = RECORD_HEADER_LEN + payload_len;
    let Some(payload) = buf.get(RECORD_HEADER_LEN..total) else {
        return Err(RecordError::Truncated {
            needed: total,
            have: buf.len(),
        });
    };
    let stored = u32::from_le_bytes(crc_bytes);
    let computed = checksum(&len_bytes, payload);
    if stored != computed {
        return Err(RecordError::BadChecksum { stored, computed });
    }

    let mut p = Cursor(payload);
    // payload_len >= MIN_PAYLOAD > PAYLOAD_FIXED, so every fixed field is present; the `?`s
    // cannot fire but keep the decoder free of indexing.
    let fixed = (|| {
        Some((
            u64::from_le_bytes(p.take()?),
            u32::from_le_bytes(p.take()?),
            u32::from_le_bytes(p.take()?),
            u16::from_le_bytes(p.take()?),
            p.take::<6>()?,
            p.take::<1>()?[0],
            usize::from(u16::from_le_bytes(p.take()?)),
        ))
    })();
    let Some((seq, addr, expires_at, pool, chaddr, state, key_len)) = fixed else {
        return Err(RecordError::Truncated {
            needed: total,
            have: buf.len(),
        });
    };
    let key_bytes = p.0;
    if key_bytes.len() != key_len {
        return Err(RecordError::KeyLength {
            key_len,
            payload_len,
        });
    }
    let Some(key) = ClientKey::from_stored(key_bytes) else {
        return Err(RecordError::BadKey {
            len: key_len,
            tag: key_bytes.first().copied().unwrap_or(0),
        });
    };
    let Some(state) = LeaseState::from_u8(state) else {
        return Err(RecordError::BadState { value: state });
    };
    let lease = Lease {
        addr: Ipv4Addr::from(addr),
        expires_at,
        state,
        chaddr,
        pool,
    };
    Ok((LeaseRecord { seq, key, lease }, total))
}

/// Reads fixed-size fields off the front of a slice without indexing.
struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_first_chunk::<N>()?;
        self.0 = rest;
        Some(*head)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample(seq: u64, key: ClientKey) -> LeaseRecord {
        LeaseRecord {
            seq,
            key,
            lease: Lease {
                addr: Ipv4Addr::new(10, 1, 2, 3),
                expires_at: 1_700_000_000,
                state: LeaseState::Bound,
                chaddr: [0, 0x11, 0x22, 0x33, 0x44, 0x55],
                pool: 7,
            },
        }
    }

    #[test]
    fn round_trip_mac_and_long_client_id() {
        for rec in [
            sample(1, ClientKey::from_hw(1, &[0, 0x11, 0x22, 0x33, 0x44, 0x55])),
            sample(u64::MAX, ClientKey::from_client_id(&[0xab; 255])),
            sample(0, ClientKey::from_client_id(&[])),
        ] {
            let mut out = Vec::new();
            encode_record(&rec, &mut out);
            let (back, used) = decode_record(&out).unwrap();
            assert_eq!(back, rec);
            assert_eq!(used, out.len());
        }
    }

    #[test]
    fn consecutive_records_decode_in_order() {
        let a = sample(1, ClientKey::from_hw(1, &[1; 6]));
        let b = sample(2, ClientKey::from_client_id(&[2; 30]));
        let mut out = Vec::new();
        encode_record(&a, &mut out);
        encode_record(&b, &mut out);
        let (ra, n) = decode_record(&out).unwrap();
        let (rb, m) = decode_record(&out[n..]).unwrap();
        assert_eq!((ra, rb), (a, b));
        assert_eq!(n + m, out.len());
    }

    #[test]
    fn every_prefix_is_truncated_not_garbage() {
        let mut out = Vec::new();
        encode_record(&sample(9, ClientKey::from_hw(1, &[5; 6])), &mut out);
        for cut in 0..out.len() {
            assert!(
                matches!(
                    decode_record(&out[..cut]),
                    Err(RecordError::Truncated { .. })
                ),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn any_flipped_bit_is_rejected() {
        let mut out = Vec::new();
        encode_record(&sample(9, ClientKey::from_hw(1, &[5; 6])), &mut out);
        for i in 0..out.len() {
            for bit in 0..8 {
                let mut bad = out.clone();
                bad[i] ^= 1 << bit;
                assert!(decode_record(&bad).is_err(), "byte {i} bit {bit}");
            }
        }
    }

    #[test]
    fn bad_state_and_key_are_reported_even_with_valid_crc() {
        // Build a record by hand whose CRC is right but whose content is not a lease.
        fn forge(mutate: impl Fn(&mut Vec<u8>)) -> Result<(LeaseRecord, usize), RecordError> {
            let mut out = Vec::new();
            encode_record(&sample(3, ClientKey::from_hw(1, &[5; 6])), &mut out);
            mutate(&mut out);
            let crc = checksum(&out[..2], &out[RECORD_HEADER_LEN..]);
            out[2..6].copy_from_slice(&crc.to_le_bytes());
            decode_record(&out)
        }
        let state_at = RECORD_HEADER_LEN + 24;
        assert_eq!(
            forge(|b| b[state_at] = 9),
            Err(RecordError::BadState { value: 9 })
        );
        let key_at = RECORD_HEADER_LEN + PAYLOAD_FIXED;
        assert_eq!(
            forge(|b| b[key_at] = 5),
            Err(RecordError::BadKey { len: 8, tag: 5 })
        );
        assert!(matches!(
            forge(|b| b[key_at - 2] = 3),
            Err(RecordError::KeyLength { key_len: 3, .. })
        ));
    }

    #[test]
    fn file_headers_differ_by_kind() {
        assert_ne!(file_header(FileKind::Log), file_header(FileKind::Snapshot));
        assert_eq!(&file_header(FileKind::Log)[..6], b"PVDLEA");
    }

    fn arb_key() -> impl Strategy<Value = ClientKey> {
        prop_oneof![
            (any::<u8>(), proptest::collection::vec(any::<u8>(), 0..=16))
                .prop_map(|(h, c)| ClientKey::from_hw(h, &c)),
            proptest::collection::vec(any::<u8>(), 0..=255)
                .prop_map(|id| ClientKey::from_client_id(&id)),
        ]
    }

    fn arb_state() -> impl Strategy<Value = LeaseState> {
        prop_oneof![
            Just(LeaseState::Offered),
            Just(LeaseState::Bound),
            Just(LeaseState::Released),
            Just(LeaseState::Expired),
        ]
    }

    prop_compose! {
        fn arb_record()(
            seq in any::<u64>(),
            key in arb_key(),
            addr in any::<u32>(),
            expires_at in any::<u32>(),
            state in arb_state(),
            chaddr in any::<[u8; 6]>(),
            pool in any::<u16>(),
        ) -> LeaseRecord {
            LeaseRecord {
                seq,
                key,
                lease: Lease { addr: Ipv4Addr::from(addr), expires_at, state, chaddr, pool },
            }
        }
    }

    proptest! {
        #[test]
        fn prop_round_trip(rec in arb_record(), trailing in proptest::collection::vec(any::<u8>(), 0..8)) {
            let mut out = Vec::new();
            encode_record(&rec, &mut out);
            let len = out.len();
            out.extend_from_slice(&trailing);
            let (back, used) = decode_record(&out).unwrap();
            prop_assert_eq!(back, rec);
            prop_assert_eq!(used, len);
        }

        #[test]
        fn prop_random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            if let Ok((_, used)) = decode_record(&bytes) {
                prop_assert!(used <= bytes.len());
            }
        }

        #[test]
        fn prop_mutated_records_never_panic(
            rec in arb_record(),
            edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
            cut in any::<usize>(),
        ) {
            let mut out = Vec::new();
            encode_record(&rec, &mut out);
            for (at, val) in edits {
                let i = at % out.len();
                out[i] = val;
            }
            let keep = cut % (out.len() + 1);
            out.truncate(keep);
            if let Ok((_, used)) = decode_record(&out) {
                prop_assert!(used <= out.len());
            }
        }
    }
}
