//! [`NameHasher`]: the hash behind provd's tables of compiled-in names (MIB object names here,
//! docsis setting names in `provd-docsis`).

use std::hash::{BuildHasherDefault, Hasher};

/// A fast [`Hasher`] for short, trusted names: FxHash-style, one multiply and rotate per
/// 8 bytes.
///
/// For keys that come from the program itself (compiled-in tables of names), never for keys an
/// outsider chooses: it has no resistance to flooding, so a peer that picks the keys can make
/// every one land in the same bucket. Use the standard `RandomState` for those.
///
/// A name is hashed in whole little-endian words, the last one overlapping the one before when
/// the length is not a multiple of 8 (so every byte counts, without a padded tail); a name of 4
/// to 7 bytes is one word of its first and last four bytes, and a shorter one its first, middle
/// and last byte. `finish` brings the well-mixed high bits down, where hashbrown takes the
/// bucket from.
#[derive(Debug, Default, Clone, Copy)]
pub struct NameHasher(u64);

/// Builds [`NameHasher`]s: `HashMap<&str, V, NameHasherBuilder>`.
pub type NameHasherBuilder = BuildHasherDefault<NameHasher>;

impl NameHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0xf135_7aea_2e62_a9c5);
    }
}

impl Hasher for NameHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        // Whole words, the last one overlapping the one before; short names in one word.
        let n = bytes.len();
        let word = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&bytes[i..i + 8]);
            u64::from_le_bytes(b)
        };
        let half = |i: usize| {
            let mut b = [0u8; 4];
            b.copy_from_slice(&bytes[i..i + 4]);
            u64::from(u32::from_le_bytes(b))
        };
        if n >= 8 {
            let mut i = 0;
            while i + 8 < n {
                self.add(word(i));
                i += 8;
            }
            self.add(word(n - 8));
        } else if n >= 4 {
            self.add(half(0) | half(n - 4) << 32);
        } else if n > 0 {
            let (first, mid, last) = (bytes[0], bytes[n / 2], bytes[n - 1]);
            self.add(u64::from(first) | u64::from(mid) << 8 | u64::from(last) << 16);
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        // hashbrown takes the bucket from the low bits: bring the well-mixed high bits down.
        self.0.rotate_left(26)
    }
}

#[cfg(test)]
mod tests {
    use std::hash::BuildHasher;

    use super::*;

    fn hash(name: &str) -> u64 {
        NameHasherBuilder::default().hash_one(name)
    }

    /// Every byte of a name counts, at every length the word split treats apart (1 to 3 bytes
    /// use all of theirs as first, middle and last): one byte changed gives another hash.
    #[test]
    fn names_that_differ_in_one_byte_hash_apart() {
        let base = "docsDevFilterIpStatusDaddrDmaskXY";
        for len in 1..=base.len() {
            let name = &base[..len];
            for at in 0..len {
                let mut other = name.as_bytes().to_vec();
                other[at] ^= 0x01;
                let other = String::from_utf8(other).unwrap();
                assert_ne!(hash(name), hash(&other), "{name:?} vs {other:?}");
            }
        }
    }

    /// A name of 8n+k bytes ends with the word at its last 8 bytes, overlapping the one before:
    /// the tail byte of a 9-byte name is hashed, and the bytes the two words share count once
    /// per word.
    #[test]
    fn the_last_word_overlaps_the_one_before() {
        assert_ne!(hash("ifDescr.1"), hash("ifDescr.2"));
        assert_ne!(hash("sysContact"), hash("sysContacu"));
        let mut words = NameHasher::default();
        words.add(u64::from_le_bytes(*b"sysConta"));
        words.add(u64::from_le_bytes(*b"sContact"));
        let mut name = NameHasher::default();
        name.write(b"sysContact");
        assert_eq!(name.finish(), words.finish());
    }

    /// Names of different lengths that share a prefix (a column and its instances, `str`'s
    /// 0xff terminator) hash apart.
    #[test]
    fn prefixes_hash_apart() {
        let names = [
            "a",
            "ab",
            "abc",
            "abcd",
            "abcde",
            "abcdefgh",
            "abcdefghi",
            "sysName",
            "sysName.0",
        ];
        for (i, a) in names.iter().enumerate() {
            for b in &names[i + 1..] {
                assert_ne!(hash(a), hash(b), "{a:?} vs {b:?}");
            }
        }
    }
}
