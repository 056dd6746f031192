//! Whole-message fuzzing of the DHCPv4 codec.
//!
//! Checks, for any datagram:
//! - `Message::parse` (borrowed) and `OwnedMessage::parse` agree: both Ok (and `from_view` of the
//!   view equals the owned parse) or both the same error;
//! - every accessor of the borrowed view is total and consistent with the owned form (RFC 3396
//!   concatenation, first fragment, typed options, `request_kind` per RFC 2131 §4.3.2), and the
//!   option payloads the server reads (43, 60, 82, 122, 124/125) decode without panicking;
//! - `OwnedMessage::encode` then `parse` is the identity whenever encode succeeds;
//! - echoing option 82 into a reply with `MessageWriter` (as the server does) reads back the same.

#![no_main]

use std::net::Ipv4Addr;

use libfuzzer_sys::fuzz_target;
use provd_dhcp::cablelabs::{ClientConfiguration, DeviceInfo, VendorClass, vendor_blocks};
use provd_dhcp::relay::RelayAgentInfo;
use provd_dhcp::{
    BOOTP_MIN_LEN, Header, MIN_LEN, Message, MessageType, MessageWriter, Op, OwnedMessage,
    RequestKind, code,
};

/// The parser's size limit (`message::MAX_LEN`, which the crate does not export).
const PARSER_MAX_LEN: usize = 9000;

fuzz_target!(|data: &[u8]| {
    let view = Message::parse(data);
    let owned = OwnedMessage::parse(data);
    let (view, first) = match (view, owned) {
        (Ok(v), Ok(o)) => (v, o),
        (Err(a), Err(b)) => {
            assert_eq!(a, b, "borrowed and owned parse fail differently");
            return;
        }
        (v, o) => panic!("borrowed and owned parse disagree: {v:?} vs {o:?}"),
    };
    assert_eq!(OwnedMessage::from_view(&view), first);
    assert!((MIN_LEN..=PARSER_MAX_LEN).contains(&data.len()));

    check_view(&view, &first);
    check_reply_echo(&view);

    let mut buf = Vec::new();
    if let Ok(len) = first.encode(&mut buf) {
        assert_eq!(len, buf.len());
        assert!(len >= BOOTP_MIN_LEN);
        let second = OwnedMessage::parse(&buf)
            .unwrap_or_else(|e| panic!("encoded message does not parse: {e}\n{first:?}"));
        assert_eq!(second, first, "parse(encode(m)) != m");
        // The encoded form has no overload, so the view of it must agree with the owned form too.
        let reparsed = Message::parse(&buf).expect("parsed once already");
        assert_eq!(reparsed.overload(), 0);
        check_view(&reparsed, &second);
    }
});

/// Every accessor of the view, cross-checked against the owned form of the same bytes.
fn check_view(m: &Message<'_>, o: &OwnedMessage) {
    let buf = m.as_bytes();
    let _ = format!("{m:?}");

    assert_eq!(m.op(), if buf[0] == 1 { Op::Request } else { Op::Reply });
    assert_eq!(m.chaddr().len(), usize::from(m.hlen()));
    assert_eq!(&m.chaddr_field()[..m.chaddr().len()], m.chaddr());
    assert_eq!(m.mac().is_some(), m.htype() == 1 && m.hlen() == 6);
    assert_eq!(m.broadcast(), m.flags() & provd_dhcp::BROADCAST_FLAG != 0);
    let _ = (
        m.hops(),
        m.xid(),
        m.secs(),
        m.yiaddr(),
        m.siaddr(),
        m.giaddr(),
    );
    assert!(m.overload() <= 3);
    assert_eq!(m.file().is_none(), m.overload() & 1 != 0);
    assert_eq!(m.sname().is_none(), m.overload() & 2 != 0);
    assert_eq!(m.file().unwrap_or_default(), o.file.as_slice());
    assert_eq!(m.sname().unwrap_or_default(), o.sname.as_slice());

    let mut n = 0;
    for (c, v) in m.fragments() {
        assert!(
            ![code::PAD, code::OVERLOAD, code::END].contains(&c),
            "structural code {c} recorded as an option"
        );
        assert!(v.len() <= 255);
        n += 1;
    }
    assert!(n <= 128);

    for c in 0..=255u8 {
        let joined = m.option(c);
        assert_eq!(joined.as_deref(), o.option(c), "option {c}");
        assert_eq!(m.has_option(c), joined.is_some());
        match (m.option_first(c), &joined) {
            (Some(f), Some(j)) => assert!(j.starts_with(f)),
            (None, None) => {}
            (f, j) => panic!("option_first({c}) = {f:?} but option({c}) = {j:?}"),
        }
    }

    match (m.message_type(), m.option_first(code::MESSAGE_TYPE)) {
        (Ok(None), None) => {}
        (Ok(Some(t)), Some(&[v])) => {
            assert_eq!(t as u8, v);
            assert_eq!(MessageType::from_u8(v), Some(t));
            let _ = t.name();
        }
        (Err(v), Some(&[b])) => {
            assert_eq!(v, b);
            assert!(MessageType::from_u8(b).is_none());
        }
        (Err(0), Some(f)) => assert_ne!(f.len(), 1),
        (t, f) => panic!("message_type() = {t:?} for option 53 = {f:?}"),
    }

    let ipv4 = |c| match m.option_first(c) {
        Some(&[a, b, c, d]) => Some(Ipv4Addr::new(a, b, c, d)),
        _ => None,
    };
    let requested = m.requested_ip();
    let server_id = m.server_id();
    assert_eq!(requested, ipv4(code::REQUESTED_IP));
    assert_eq!(server_id, ipv4(code::SERVER_ID));
    assert_eq!(m.lease_time(), ipv4(code::LEASE_TIME).map(u32::from));
    if let Some(size) = m.max_message_size() {
        assert!(size >= 576);
    }
    let client_id = m.client_id();
    assert!(client_id.as_ref().is_none_or(|c| !c.is_empty()));
    assert_eq!(
        client_id.as_deref(),
        o.option(code::CLIENT_ID).filter(|v| !v.is_empty())
    );
    assert_eq!(
        m.param_request_list().as_deref(),
        o.option(code::PARAM_REQUEST_LIST)
    );

    let ciaddr = m.ciaddr();
    let expected = match (server_id, requested, ciaddr.is_unspecified()) {
        (Some(server_id), Some(requested), true) => RequestKind::Selecting {
            server_id,
            requested,
        },
        (None, Some(requested), true) => RequestKind::InitReboot { requested },
        (None, _, false) => RequestKind::RenewingOrRebinding { ciaddr },
        _ => RequestKind::Malformed,
    };
    assert_eq!(m.request_kind(), expected);

    // The option payloads the server looks into: each decoder must be total on whatever a
    // client or relay put there.
    if let Some(r82) = m.relay_agent_info()
        && let Ok(relay) = RelayAgentInfo::parse(&r82)
    {
        assert_eq!(relay.as_bytes(), &r82[..]);
        let _ = (
            relay.circuit_id(),
            relay.remote_id(),
            relay.link_selection(),
        );
    }
    if let Some(vc) = m.vendor_class() {
        let parsed = VendorClass::parse(&vc);
        let _ = parsed.supported_flows();
    }
    if let Some(v43) = m.option(code::VENDOR_SPECIFIC) {
        let _ = DeviceInfo::decode(&v43);
    }
    if let Some(v122) = m.option(code::CABLELABS_CLIENT_CONFIG) {
        let _ = ClientConfiguration::decode(&v122);
    }
    for c in [code::VI_VENDOR_CLASS, code::VI_VENDOR_INFO] {
        if let Some(v) = m.option(c) {
            vendor_blocks(&v).for_each(drop);
        }
    }
}

/// Builds a reply the way the server does (header from the request, option 82 echoed verbatim,
/// however long) and checks it reads back.
fn check_reply_echo(m: &Message<'_>) {
    let mut header = Header::reply(m.xid(), *m.chaddr_field(), m.htype(), m.hlen());
    header.giaddr = m.giaddr();
    header.file = m.file().unwrap_or_default();
    header.sname = m.sname().unwrap_or_default();
    let mut buf = Vec::with_capacity(576);
    let Ok(mut w) = MessageWriter::new(&mut buf, &header, PARSER_MAX_LEN) else {
        // Only a full, unterminated 64-byte sname or 128-byte file is refused.
        assert!(header.sname.len() > 63 || header.file.len() > 127);
        return;
    };
    w.option(code::MESSAGE_TYPE, &[MessageType::Offer as u8])
        .expect("53 is not reserved");
    let r82 = m.relay_agent_info();
    if let Some(r82) = &r82 {
        w.option(code::RELAY_AGENT_INFO, r82)
            .expect("82 is not reserved");
    }
    let Ok(len) = w.finish() else {
        return;
    };
    let reply = Message::parse(&buf[..len])
        .unwrap_or_else(|e| panic!("reply echoing option 82 does not parse: {e}"));
    assert_eq!(reply.message_type(), Ok(Some(MessageType::Offer)));
    assert_eq!(reply.relay_agent_info(), r82);
    assert_eq!(reply.chaddr_field(), m.chaddr_field());
    assert_eq!(reply.file(), Some(header.file));
    assert_eq!(reply.sname(), Some(header.sname));
}
