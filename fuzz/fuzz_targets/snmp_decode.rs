//! The SNMP message decoder on arbitrary datagrams: a message or a typed error, never a panic.
//! A decoded message encodes (unless normalising its lenient forms grew it past the datagram
//! limit), decodes back to an equal message, and re-encodes to identical bytes. The INFORM
//! acknowledgement and the notification lookups are total on whatever decodes, and every OID
//! prints to text that parses back to itself.

#![no_main]

use libfuzzer_sys::fuzz_target;
use provd_snmp::{EncodeError, Message, Oid, Pdus, response_to};

fn round_trip(msg: &Message) {
    let mut first = Vec::new();
    match msg.encode(&mut first) {
        Ok(()) => {}
        // Minimal re-encoding is at most a few bytes per element longer than lenient input
        // (a high-bit unsigned gains its sign octet), which can cross the 65507-byte limit.
        Err(EncodeError::TooLarge { .. }) => return,
        Err(e) => panic!("a decoded message does not encode: {e}\n{msg:?}"),
    }
    let again = Message::decode(&first).unwrap_or_else(|e| panic!("re-decode: {e}\n{msg:?}"));
    assert_eq!(&again, msg, "encode -> decode changed the message");
    let mut second = Vec::new();
    again.encode(&mut second).expect("encodes twice");
    assert_eq!(first, second, "encoding is not deterministic");
}

fn check_oid(oid: &Oid) {
    let text = oid.to_string();
    assert_eq!(text.parse::<Oid>().as_ref(), Ok(oid), "{text}");
}

fuzz_target!(|data: &[u8]| {
    let msg = match Message::decode(data) {
        Ok(msg) => msg,
        Err(e) => {
            assert!(!e.name().is_empty());
            let _ = e.to_string();
            return;
        }
    };
    round_trip(&msg);
    if let Some(ack) = response_to(&msg) {
        round_trip(&ack);
        assert_eq!(ack.pdu().map(|p| p.request_id), msg.pdu().map(|p| p.request_id));
    }
    if let Some(pdu) = msg.pdu() {
        let _ = (pdu.uptime(), pdu.notification_oid(), pdu.error_varbind());
        for vb in &pdu.varbinds {
            check_oid(&vb.oid);
            assert!(pdu.get(&vb.oid).is_some());
            let _ = vb.to_string();
        }
    }
    if let Message::Community { pdu: Pdus::TrapV1(trap), .. } = &msg {
        check_oid(&trap.enterprise);
        if let Some(oid) = trap.notification_oid() {
            check_oid(&oid);
        }
    }
});
