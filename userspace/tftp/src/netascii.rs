//! netascii (RFC 1350 via RFC 764): on the way out LF becomes CR LF and a bare CR becomes
//! CR NUL; on the way in the reverse. Encoding runs on the fly from the shared file bytes, from a
//! [`Cursor`] kept per transfer, so no transfer ever holds a converted copy of its file.

/// A position in the encoded stream: the next source byte, and whether the CR of its two-byte
/// form (CR LF or CR NUL) has already gone out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Cursor {
    src: usize,
    half: bool,
}

/// Length of `src` once encoded: every CR and LF takes two bytes.
pub(crate) fn encoded_len(src: &[u8]) -> u64 {
    let expanding = src.iter().filter(|&&b| b == b'\n' || b == b'\r').count();
    (src.len() as u64).saturating_add(expanding as u64)
}

/// Encodes from `at` into `out` until `out` is full or the source ends; returns the bytes
/// written and the cursor after them.
pub(crate) fn encode(src: &[u8], at: Cursor, out: &mut [u8]) -> (usize, Cursor) {
    let mut n = 0;
    let end = walk(src, at, out.len(), |b| {
        out[n] = b;
        n += 1;
    });
    (n, end)
}

/// Moves the cursor `count` encoded bytes forward (or to the end of the source).
pub(crate) fn skip(src: &[u8], at: Cursor, count: u64) -> Cursor {
    let count = usize::try_from(count).unwrap_or(usize::MAX);
    walk(src, at, count, |_| {})
}

/// Produces up to `limit` encoded bytes from `at`, handing each to `emit`.
fn walk(src: &[u8], at: Cursor, limit: usize, mut emit: impl FnMut(u8)) -> Cursor {
    let Cursor {
        src: mut i,
        mut half,
    } = at;
    for _ in 0..limit {
        let Some(&b) = src.get(i) else { break };
        let byte = match (b, half) {
            (b'\n' | b'\r', false) => {
                half = true;
                b'\r'
            }
            (b'\n', true) => {
                half = false;
                i += 1;
                b'\n'
            }
            (b'\r', true) => {
                half = false;
                i += 1;
                0
            }
            (other, _) => {
                i += 1;
                other
            }
        };
        emit(byte);
    }
    Cursor { src: i, half }
}

/// Decodes netascii DATA as it arrives (a CR may end one block and its LF start the next).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Decoder {
    pending_cr: bool,
}

impl Decoder {
    pub(crate) fn decode(&mut self, input: &[u8], out: &mut Vec<u8>) {
        for &b in input {
            if std::mem::take(&mut self.pending_cr) {
                match b {
                    b'\n' => {
                        out.push(b'\n');
                        continue;
                    }
                    0 => {
                        out.push(b'\r');
                        continue;
                    }
                    // A CR followed by anything else is kept as it came.
                    _ => out.push(b'\r'),
                }
            }
            if b == b'\r' {
                self.pending_cr = true;
            } else {
                out.push(b);
            }
        }
    }

    /// The end of the stream: a dangling CR is kept.
    pub(crate) fn finish(&mut self, out: &mut Vec<u8>) {
        if std::mem::take(&mut self.pending_cr) {
            out.push(b'\r');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode_all(src: &[u8], chunk: usize) -> Vec<u8> {
        let mut out = Vec::new();
        let mut at = Cursor::default();
        let mut buf = vec![0u8; chunk];
        loop {
            let (n, next) = encode(src, at, &mut buf);
            out.extend_from_slice(&buf[..n]);
            at = next;
            if n < chunk {
                return out;
            }
        }
    }

    #[test]
    fn lf_and_cr_expand_even_across_block_boundaries() {
        let src = b"a\nb\rc\r\n";
        let want = b"a\r\nb\r\0c\r\0\r\n";
        assert_eq!(encoded_len(src), want.len() as u64);
        for chunk in 1..=want.len() + 1 {
            assert_eq!(encode_all(src, chunk), want, "chunk {chunk}");
        }
    }

    #[test]
    fn skip_lands_where_encoding_would() {
        let src = b"\n\n\rxy\n";
        for k in 0..=12u64 {
            let mut buf = vec![0u8; k as usize];
            let (_, by_encoding) = encode(src, Cursor::default(), &mut buf);
            assert_eq!(skip(src, Cursor::default(), k), by_encoding, "k {k}");
        }
    }

    #[test]
    fn decoding_inverts_encoding_whatever_the_split() {
        let src = b"line\r\nbare\rcr\n\n\r";
        let wire = encode_all(src, 4096);
        for split in 0..=wire.len() {
            let mut d = Decoder::default();
            let mut out = Vec::new();
            d.decode(&wire[..split], &mut out);
            d.decode(&wire[split..], &mut out);
            d.finish(&mut out);
            assert_eq!(out, src, "split {split}");
        }
    }
}
