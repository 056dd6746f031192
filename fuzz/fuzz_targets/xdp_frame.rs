//! The AF_XDP frame parser, which reads whatever the NIC (or a peer on the link) put in a UMEM
//! frame: total on any bytes, the payload it reports lies inside the frame, and a reply built
//! from the parsed addressing parses back to the same payload with valid checksums.

#![no_main]

use libfuzzer_sys::fuzz_target;
use provd_dataplane::frame::{ReplyAddr, build, checksums_ok, parse};

fuzz_target!(|data: &[u8]| {
    let Ok((info, payload)) = parse(data) else {
        return;
    };
    assert!(payload.start <= payload.end && payload.end <= data.len());
    let body = &data[payload.clone()];
    let addr = ReplyAddr {
        src_mac: info.dst_mac,
        dst_mac: info.src_mac,
        src: info.dst,
        dst: info.src,
    };
    let mut out = [0u8; 4096];
    if let Some(n) = build(&info, &addr, body, &mut out) {
        let (again, p) = parse(&out[..n]).expect("a built frame parses");
        assert_eq!(&out[p], body);
        assert_eq!(again.vlans, info.vlans);
        assert_eq!(again.dst, info.src);
        assert!(checksums_ok(&out[..n]));
    }
});
