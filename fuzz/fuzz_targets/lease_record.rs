//! The lease log's record decoder, which replay runs on whatever a crash left on disk: total on
//! any bytes, never claims more than it was given, and a decoded record re-encodes to exactly
//! the bytes it was decoded from.

#![no_main]

use libfuzzer_sys::fuzz_target;
use provd_lease::{decode_record, encode_record};

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    while let Ok((rec, used)) = decode_record(rest) {
        assert!(used > 0 && used <= rest.len(), "consumed {used} of {}", rest.len());
        let mut again = Vec::new();
        encode_record(&rec, &mut again);
        assert_eq!(again, &rest[..used], "re-encoding differs from the decoded bytes");
        rest = &rest[used..];
    }
});
