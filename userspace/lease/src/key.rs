//! `ClientKey`: the identity a lease is filed under (client id, else hardware address).
//!
//! Keys are stored inline up to 22 bytes so the common cases (a MAC, a type-1 client id) cost no
//! heap allocation, which is what keeps a million-lease table small.

use std::fmt;
use std::hash::{Hash, Hasher};

/// Most key bytes a [`ClientKey`] holds: the tag byte plus 255 bytes, the most a DHCP option
/// (u8 length) can carry. Longer inputs are cut to this so every key fits the record format.
pub const MAX_KEY_LEN: usize = 256;

const INLINE_CAP: usize = 22;

const TAG_HW: u8 = 0;
const TAG_CLIENT_ID: u8 = 1;

#[derive(Clone, PartialEq, Eq)]
enum Repr {
    // Invariant: len <= INLINE_CAP and buf[len..] is all zero, so the derived Eq compares exactly
    // the key bytes.
    Inline { len: u8, buf: [u8; INLINE_CAP] },
    // Invariant: INLINE_CAP < len <= MAX_KEY_LEN. Each key has exactly one representation, so the
    // derived Eq and the byte-based Hash agree.
    Heap(Box<[u8]>),
}

/// Identity of a DHCP client: option 61 bytes when present, else htype+chaddr.
/// Inline for up to 22 bytes (covers MAC and type-1 client ids without allocating), heap beyond.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientKey(Repr);

// The table's per-entry footprint depends on this; see examples/footprint.rs.
const _: () = assert!(std::mem::size_of::<ClientKey>() <= 24);

impl ClientKey {
    /// Key of a client that sent no client identifier: `[0, htype, chaddr...]`. The leading 0
    /// keeps it distinct from every [`ClientKey::from_client_id`] key.
    pub fn from_hw(htype: u8, chaddr: &[u8]) -> ClientKey {
        Self::build(&[TAG_HW, htype], chaddr)
    }

    /// Key of a client that sent option 61: `[1, id...]`.
    pub fn from_client_id(id: &[u8]) -> ClientKey {
        Self::build(&[TAG_CLIENT_ID], id)
    }

    /// The key bytes, tag first, as written to the log.
    pub fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            Repr::Inline { len, buf } => buf.get(..usize::from(*len)).unwrap_or(buf),
            Repr::Heap(bytes) => bytes,
        }
    }

    /// Rebuilds a key from bytes read back from disk; `None` unless they are bytes one of the
    /// constructors could have produced.
    pub(crate) fn from_stored(bytes: &[u8]) -> Option<ClientKey> {
        match bytes {
            [TAG_HW, htype, chaddr @ ..] if bytes.len() <= MAX_KEY_LEN => {
                Some(Self::from_hw(*htype, chaddr))
            }
            [TAG_CLIENT_ID, id @ ..] if bytes.len() <= MAX_KEY_LEN => {
                Some(Self::from_client_id(id))
            }
            _ => None,
        }
    }

    fn build(prefix: &[u8], rest: &[u8]) -> ClientKey {
        let rest = &rest[..rest.len().min(MAX_KEY_LEN - prefix.len())];
        let len = prefix.len() + rest.len();
        if len <= INLINE_CAP {
            let mut buf = [0u8; INLINE_CAP];
            buf[..prefix.len()].copy_from_slice(prefix);
            buf[prefix.len()..len].copy_from_slice(rest);
            // len <= INLINE_CAP (22), so the cast is exact.
            ClientKey(Repr::Inline {
                len: len as u8,
                buf,
            })
        } else {
            let mut bytes = Vec::with_capacity(len);
            bytes.extend_from_slice(prefix);
            bytes.extend_from_slice(rest);
            ClientKey(Repr::Heap(bytes.into_boxed_slice()))
        }
    }
}

impl Hash for ClientKey {
    // Hash only the key bytes: hashing the whole inline buffer would cost 3x for a MAC key.
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state);
    }
}

impl fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientKey(")?;
        for (i, b) in self.as_bytes().iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{b:02x}")?;
        }
        f.write_str(")")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn hw_and_client_id_keys_never_collide() {
        let hw = ClientKey::from_hw(1, &[1, 2, 3, 4, 5, 6]);
        let cid = ClientKey::from_client_id(&[1, 1, 2, 3, 4, 5, 6]);
        assert_eq!(hw.as_bytes(), &[0, 1, 1, 2, 3, 4, 5, 6]);
        assert_eq!(cid.as_bytes(), &[1, 1, 1, 2, 3, 4, 5, 6]);
        assert_ne!(hw, cid);
    }

    #[test]
    fn inline_and_heap_boundary() {
        let id21 = [7u8; 21];
        let id22 = [7u8; 22];
        let k21 = ClientKey::from_client_id(&id21);
        let k22 = ClientKey::from_client_id(&id22);
        assert!(matches!(k21.0, Repr::Inline { len: 22, .. }));
        assert!(matches!(k22.0, Repr::Heap(_)));
        assert_eq!(&k21.as_bytes()[1..], &id21);
        assert_eq!(&k22.as_bytes()[1..], &id22);
        assert_ne!(k21, k22);
    }

    #[test]
    fn oversized_input_is_cut_to_max() {
        let long = vec![9u8; 1000];
        let k = ClientKey::from_client_id(&long);
        assert_eq!(k.as_bytes().len(), MAX_KEY_LEN);
        let k = ClientKey::from_hw(1, &long);
        assert_eq!(k.as_bytes().len(), MAX_KEY_LEN);
    }

    #[test]
    fn equal_keys_hash_equal_and_dedupe() {
        let mut set = HashSet::new();
        set.insert(ClientKey::from_hw(1, &[1, 2, 3, 4, 5, 6]));
        set.insert(ClientKey::from_hw(1, &[1, 2, 3, 4, 5, 6]));
        set.insert(ClientKey::from_client_id(&[0xaa; 40]));
        set.insert(ClientKey::from_client_id(&[0xaa; 40]));
        assert_eq!(set.len(), 2);
    }

    #[test]
    fn from_stored_round_trips_and_rejects_bad_tags() {
        for k in [
            ClientKey::from_hw(1, &[1, 2, 3, 4, 5, 6]),
            ClientKey::from_hw(6, &[]),
            ClientKey::from_client_id(&[]),
            ClientKey::from_client_id(&[3; 200]),
        ] {
            assert_eq!(ClientKey::from_stored(k.as_bytes()), Some(k));
        }
        assert_eq!(ClientKey::from_stored(&[]), None);
        assert_eq!(ClientKey::from_stored(&[0]), None);
        assert_eq!(ClientKey::from_stored(&[2, 1, 2]), None);
        assert_eq!(ClientKey::from_stored(&[1; MAX_KEY_LEN + 1]), None);
    }

    #[test]
    fn debug_is_hex() {
        let k = ClientKey::from_hw(1, &[0xde, 0xad]);
        assert_eq!(format!("{k:?}"), "ClientKey(00:01:de:ad)");
    }
}
