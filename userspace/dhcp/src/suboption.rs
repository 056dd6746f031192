//! The `code(1) len(1) value` sub-option encoding shared by options 43, 82, 122 and the inside
//! of 125: a total iterator for reading and a small writer.

/// A sub-option whose length runs past the end of its option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("sub-option {code} at offset {offset} overruns its option")]
pub struct SubOptionError {
    pub code: u8,
    pub offset: usize,
}

/// Iterates sub-options; after an error it yields nothing more.
#[derive(Debug, Clone)]
pub struct SubOptions<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Whether code 0 is one-byte padding and 255 ends the list (true for 43; 82 and 122 have
    /// no such codes).
    pad_end: bool,
}

impl<'a> SubOptions<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        SubOptions {
            buf,
            pos: 0,
            pad_end: false,
        }
    }
    /// Vendor-specific (43) style: 0 pads and 255 ends.
    pub fn with_pad_end(buf: &'a [u8]) -> Self {
        SubOptions {
            buf,
            pos: 0,
            pad_end: true,
        }
    }
    /// The first sub-option with this code, if the list parses up to it.
    pub fn find(buf: &'a [u8], code: u8) -> Option<&'a [u8]> {
        SubOptions::new(buf)
            .map_while(Result::ok)
            .find(|(c, _)| *c == code)
            .map(|(_, v)| v)
    }
    /// Checks the whole list parses.
    pub fn validate(buf: &'a [u8]) -> Result<(), SubOptionError> {
        SubOptions::new(buf).try_for_each(|r| r.map(drop))
    }
}

impl<'a> Iterator for SubOptions<'a> {
    type Item = Result<(u8, &'a [u8]), SubOptionError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let code = *self.buf.get(self.pos)?;
            if self.pad_end {
                match code {
                    0 => {
                        self.pos += 1;
                        continue;
                    }
                    255 => {
                        self.pos = self.buf.len();
                        return None;
                    }
                    _ => {}
                }
            }
            let offset = self.pos;
            let Some(&len) = self.buf.get(offset + 1) else {
                self.pos = self.buf.len();
                return Some(Err(SubOptionError { code, offset }));
            };
            let end = offset + 2 + usize::from(len);
            if end > self.buf.len() {
                self.pos = self.buf.len();
                return Some(Err(SubOptionError { code, offset }));
            }
            self.pos = end;
            return Some(Ok((code, &self.buf[offset + 2..end])));
        }
    }
}

/// Appends one sub-option. Values over 255 bytes are truncated by contract of the callers,
/// which validate lengths first; this returns false instead of writing a wrong length.
pub fn put(out: &mut Vec<u8>, code: u8, value: &[u8]) -> bool {
    let Ok(len) = u8::try_from(value.len()) else {
        return false;
    };
    out.extend_from_slice(&[code, len]);
    out.extend_from_slice(value);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iterates_and_stops_on_overrun() {
        let v: Vec<_> = SubOptions::new(&[1, 2, 0xaa, 0xbb, 2, 0, 3, 5, 1]).collect();
        assert_eq!(v[0], Ok((1, &[0xaa, 0xbb][..])));
        assert_eq!(v[1], Ok((2, &[][..])));
        assert_eq!(v[2], Err(SubOptionError { code: 3, offset: 6 }));
        assert_eq!(v.len(), 3);
        assert_eq!(
            SubOptions::new(&[7]).next(),
            Some(Err(SubOptionError { code: 7, offset: 0 }))
        );
    }

    #[test]
    fn vendor_style_pad_and_end() {
        let v: Vec<_> = SubOptions::with_pad_end(&[0, 0, 2, 1, 9, 255, 3, 1]).collect();
        assert_eq!(v, vec![Ok((2, &[9][..]))]);
    }
}
