//! Each flow end to end, and each way it can go wrong, datagram by datagram.

use std::time::Duration;

use provd_snmp::{ErrorStatus, Message, Oid, PduType, Value, VarBind};

use super::*;
use crate::oids::{CABLELABS, IETF};

fn vector_config() -> Config {
    Config {
        first_request_id: 2002,
        ..Config::default()
    }
}

/// Drives a HYBRID MTA to the SET and returns the SET datagram.
fn to_the_set(h: &mut Harness, m: Mac, flow: Flow) -> Sent {
    h.dhcp(binding(m, flow)).unwrap();
    let answer = h.notify(mta_src(m), &enrollment(Mib::Ietf, m, 7, 1, "public"));
    assert_eq!(answer.len(), 1);
    assert!(matches!(h.take_events()[..], [Event::NeedFile { .. }]));
    let mut sent = h.file_ready(m, "tftp://10.0.0.10/x.bin", &[0; 20]).unwrap();
    assert_eq!(sent.len(), 1);
    sent.remove(0)
}

#[test]
fn hybrid2_runs_on_the_spec_vectors_byte_for_byte() {
    let mut h = Harness::new(vector_config());
    let mta = SocketAddrV4::new(Ipv4Addr::new(10, 1, 0, 20), 1024);
    let mut b = binding(VECTOR_MAC, Flow::Hybrid2);
    b.addr = *mta.ip();
    h.dhcp(b).unwrap();
    assert_eq!(h.state(VECTOR_MAC), State::Waiting);

    // MTA-15: the enrollment is answered with exactly the Response vector, from port 162.
    let sent = h.notify(mta, ENROLLMENT);
    assert_eq!(
        sent,
        [Sent {
            to: mta,
            from_port: FromPort::Notify,
            bytes: ENROLLMENT_RESPONSE.to_vec()
        }]
    );
    let events = h.take_events();
    let [
        Event::NeedFile {
            mac,
            correlation_id,
            device,
        },
    ] = &events[..]
    else {
        panic!("{events:?}")
    };
    assert_eq!(*mac, VECTOR_MAC);
    assert_eq!(*correlation_id, Some(VECTOR_CORRELATION));
    assert_eq!(device.mib, Mib::Ietf);
    assert_eq!(device.flow, Some(Flow::Hybrid2));
    assert_eq!(device.cmts, Some(CMTS));
    assert_eq!(device.sw_version.as_deref(), Some("2.1.0"));
    assert!(
        device
            .sys_descr
            .as_deref()
            .unwrap()
            .contains("MODEL: EMTA1")
    );
    assert_eq!(h.state(VECTOR_MAC), State::FileRequested);

    // MTA-18/19: the SET is exactly the SET vector (request-id 2002 from the seeded counter).
    h.advance(40);
    let sent = h.file_ready(VECTOR_MAC, VECTOR_URL, &VECTOR_SHA1).unwrap();
    assert_eq!(
        sent,
        [Sent {
            to: SocketAddrV4::new(*mta.ip(), 161),
            from_port: FromPort::Requests,
            bytes: SET_CONFIGFILE.to_vec()
        }]
    );
    assert_eq!(h.state(VECTOR_MAC), State::SetSent);

    // The MTA acknowledges; MTA-19 is done.
    h.advance(5);
    let ack = response_to_request(SET_CONFIGFILE, ErrorStatus::NO_ERROR, None);
    let agent = SocketAddrV4::new(*mta.ip(), 161);
    assert_eq!(h.deliver_on(agent, REQUEST_PORT, &ack), []);
    assert_eq!(h.state(VECTOR_MAC), State::Configured);
    assert_eq!(h.engine.counters().sets_acked, 1);

    // MTA-22/23, then the status INFORM (MTA-25) ends the flow with pass.
    h.advance(100);
    assert!(h.fetched(VECTOR_MAC));
    assert_eq!(h.state(VECTOR_MAC), State::Configured);
    h.advance(300);
    let sent = h.notify(mta, PROVSTATUS);
    assert_eq!(sent.len(), 1);
    let answer = sent[0].pdu();
    assert_eq!(answer.kind, PduType::Response);
    assert_eq!(answer.request_id, 1002);
    assert_eq!(
        h.take_events(),
        [Event::Completed {
            mac: VECTOR_MAC,
            state: Some(ProvState::PASS)
        }]
    );

    let r = h.engine.record(VECTOR_MAC).unwrap();
    assert_eq!(r.state, State::Complete(ProvState::PASS));
    assert_eq!(r.attempts, 1);
    assert_eq!(r.mib, Some(Mib::Ietf));
    assert_eq!(r.config_file.as_deref(), Some(VECTOR_URL));
    let steps: Vec<(Step, u64)> = r.steps.iter().map(|(s, t)| (s, t.since(T0))).collect();
    assert_eq!(
        steps,
        [
            (Step::Dhcp, 0),
            (Step::Enrollment, 0),
            (Step::FileReady, 40),
            (Step::SetSent, 40),
            (Step::SetAcked, 45),
            (Step::FileFetched, 145),
            (Step::Status, 445),
        ]
    );
    assert!(
        r.to_json()
            .contains("\"state\":{\"name\":\"complete\",\"prov_state\":\"pass\"},\"attempts\":1")
    );
    assert_eq!(h.engine.active_flows(), 0);
    assert_eq!(h.engine.next_deadline(), None);
    let c = h.engine.counters();
    assert_eq!((c.informs_received, c.informs_answered), (2, 2));
    assert_eq!((c.enrollments, c.statuses, c.status_by_state[1]), (1, 1, 1));
    assert_eq!(
        (c.flows_started, c.flows_completed, c.flows_active),
        (1, 1, 0)
    );
}

#[test]
fn basic1_needs_no_snmp_at_all() {
    let mut h = Harness::default();
    let m = mac(1);
    h.dhcp(binding(m, Flow::Basic1)).unwrap();
    assert_eq!(h.advance(60_000), []);
    assert!(h.fetched(m));
    assert_eq!(
        h.take_events(),
        [Event::Completed {
            mac: m,
            state: None
        }]
    );
    let r = h.engine.record(m).unwrap();
    assert_eq!(r.state, State::CompleteNoStatus);
    assert_eq!(r.config_file.as_deref(), Some("mta/1.bin"));
    assert_eq!(r.mib, None);
    assert!(r.steps.has(Step::Dhcp) && r.steps.has(Step::FileFetched));
    assert_eq!(h.engine.active_flows(), 0);
    assert_eq!(h.engine.next_deadline(), None);
}

#[test]
fn basic2_ends_with_the_status_inform() {
    let mut h = Harness::default();
    let m = mac(2);
    h.dhcp(binding(m, Flow::Basic2)).unwrap();
    h.advance(1000);
    assert!(h.fetched(m));
    assert_eq!(h.state(m), State::Configured);
    assert_eq!(h.take_events(), []);
    h.advance(1000);
    let sent = h.notify(mta_src(m), &status(Mib::Ietf, m, 99, 1, 5));
    assert_eq!(sent.len(), 1);
    assert_eq!(h.state(m), State::Complete(ProvState::PASS));
    assert_eq!(h.engine.record(m).unwrap().correlation_id, Some(99));
    assert_eq!(h.engine.counters().sets_sent, 0);
}

#[test]
fn hybrid1_completes_at_the_fetch_and_takes_a_late_status() {
    let mut h = Harness::default();
    let m = mac(3);
    let set = to_the_set(&mut h, m, Flow::Hybrid1);
    let ack = response_to_request(&set.bytes, ErrorStatus::NO_ERROR, None);
    h.deliver_on(SocketAddrV4::new(mta_ip(m), 161), REQUEST_PORT, &ack);
    assert_eq!(h.state(m), State::Configured);
    assert!(h.fetched(m));
    assert_eq!(h.state(m), State::CompleteNoStatus);
    assert_eq!(
        h.take_events(),
        [Event::Completed {
            mac: m,
            state: None
        }]
    );
    assert_eq!(h.engine.active_flows(), 0);
    let ends: Vec<_> = h.engine.take_flow_ends().collect();
    assert_eq!(ends.len(), 1, "{ends:?}");
    assert_eq!(
        (ends[0].flow, ends[0].outcome),
        (Some(Flow::Hybrid1), "pass")
    );
    assert_eq!(
        Some(ends[0].started),
        h.engine.record(m).unwrap().steps.get(Step::Dhcp),
        "a flow starts at its DHCP step"
    );
    // The MTA sends a status after all: recorded, reported, the flow stays finished.
    h.advance(2000);
    h.notify(mta_src(m), &status(Mib::Ietf, m, 7, 4, 9));
    assert_eq!(
        h.engine.take_flow_ends().len(),
        0,
        "a late status ends no flow"
    );
    assert_eq!(h.state(m), State::Complete(ProvState::PASS_WITH_WARNINGS));
    assert_eq!(
        h.take_events(),
        [Event::Completed {
            mac: m,
            state: Some(ProvState::PASS_WITH_WARNINGS)
        }]
    );
    assert_eq!(h.engine.counters().flows_completed, 1);
}

#[test]
fn a_fetch_stands_for_a_lost_set_response() {
    let mut h = Harness::default();
    let m = mac(4);
    to_the_set(&mut h, m, Flow::Hybrid2);
    h.advance(500);
    assert!(h.fetched(m));
    assert_eq!(h.state(m), State::Configured);
    // No retransmission of the SET: it was taken.
    assert_eq!(h.advance(60_000), []);
}

#[test]
fn cablelabs_mtas_get_cablelabs_oids() {
    let mut h = Harness::default();
    let m = mac(5);
    h.dhcp(binding(m, Flow::Hybrid2)).unwrap();
    // A negative Integer32 correlation id is the same 32 bits as Unsigned32.
    let sent = h.notify(
        mta_src(m),
        &enrollment(Mib::CableLabs, m, 0xfedc_ba98, 77, "private"),
    );
    assert_eq!(sent[0].pdu().request_id, 77);
    let events = h.take_events();
    let [
        Event::NeedFile {
            correlation_id,
            device,
            ..
        },
    ] = &events[..]
    else {
        panic!("{events:?}")
    };
    assert_eq!(*correlation_id, Some(0xfedc_ba98));
    assert_eq!(device.mib, Mib::CableLabs);
    assert_eq!(device.type_identifier.as_deref(), Some("pktc1.0:0101"));
    // The CableLabs hash may be MD5 (16 bytes).
    let sent = h.file_ready(m, "tftp://f/m.bin", &[0xaa; 16]).unwrap();
    let set = sent[0].pdu();
    assert_eq!(set.kind, PduType::SetRequest);
    let oids: Vec<&[u32]> = set.varbinds.iter().map(|v| v.oid.as_slice()).collect();
    assert_eq!(oids, [CABLELABS.config_file, CABLELABS.prov_config_hash]);
    assert_eq!(set.varbinds[1].value, Value::OctetString(vec![0xaa; 16]));
    assert_eq!(sent[0].message().community(), Some(&b"private"[..]));
}

#[test]
fn hash_and_url_are_checked_against_the_mib() {
    let mut h = Harness::default();
    let m = mac(6);
    h.dhcp(binding(m, Flow::Hybrid2)).unwrap();
    h.notify(mta_src(m), &enrollment(Mib::Ietf, m, 1, 1, "public"));
    assert_eq!(
        h.file_ready(m, "tftp://f/m.bin", &[0; 16]),
        Err(FileError::HashLength {
            len: 16,
            mib: Mib::Ietf
        })
    );
    assert_eq!(
        h.file_ready(m, &"x".repeat(256), &[0; 20]),
        Err(FileError::UrlTooLong { len: 256, max: 255 })
    );
    assert_eq!(
        h.file_ready(mac(99), "u", &[0; 20]),
        Err(FileError::UnknownMta { mac: mac(99) })
    );
    // Still waiting: the caller may answer properly.
    assert_eq!(h.state(m), State::FileRequested);
    assert!(h.file_ready(m, "tftp://f/m.bin", &[0; 20]).is_ok());
    assert!(matches!(
        h.file_ready(m, "tftp://f/m.bin", &[0; 20]),
        Err(FileError::NotWaiting {
            state: "set_sent",
            ..
        })
    ));
}

#[test]
fn capabilities_are_read_before_the_file_when_enabled() {
    let mut h = Harness::new(Config {
        get_capabilities: true,
        ..Config::default()
    });
    let m = mac(7);
    h.dhcp(binding(m, Flow::Hybrid2)).unwrap();
    let sent = h.notify(mta_src(m), &enrollment(Mib::Ietf, m, 1, 1, "public"));
    assert_eq!(sent.len(), 2, "the INFORM's answer, then the GET");
    assert_eq!(sent[0].from_port, FromPort::Notify);
    let get = &sent[1];
    assert_eq!(get.to, SocketAddrV4::new(mta_ip(m), 161));
    assert_eq!(get.from_port, FromPort::Requests);
    let pdu = get.pdu();
    assert_eq!(pdu.kind, PduType::GetRequest);
    let oids: Vec<&[u32]> = pdu.varbinds.iter().map(|v| v.oid.as_slice()).collect();
    assert_eq!(
        oids,
        [
            IETF.end_pnt_count,
            IETF.sw_current_vers,
            IETF.type_identifier
        ]
    );
    assert_eq!(h.state(m), State::Enrolled);
    assert_eq!(h.take_events(), []);

    h.advance(20);
    let o = |a: &[u32]| Oid::from_slice(a).unwrap();
    let values = vec![
        VarBind::new(o(IETF.end_pnt_count), Value::Gauge32(2)),
        VarBind::new(
            o(IETF.sw_current_vers),
            Value::OctetString(b"9.10".to_vec()),
        ),
        VarBind::new(o(IETF.type_identifier), Value::NoSuchObject),
    ];
    let answer = response_to_request(&get.bytes, ErrorStatus::NO_ERROR, Some(values));
    h.deliver_on(get.to, REQUEST_PORT, &answer);
    let events = h.take_events();
    let [Event::NeedFile { device, .. }] = &events[..] else {
        panic!("{events:?}")
    };
    assert_eq!(device.endpoints, Some(2));
    assert_eq!(device.sw_version.as_deref(), Some("9.10"));
    // noSuchObject leaves the enrollment's value.
    assert_eq!(device.type_identifier.as_deref(), Some("pktc1.0:0101"));
    let r = h.engine.record(m).unwrap();
    assert!(r.steps.has(Step::CapsRequest) && r.steps.has(Step::CapsResponse));
    assert_eq!(r.state, State::FileRequested);
}

#[test]
fn an_unanswered_capability_get_does_not_stop_the_flow() {
    let mut h = Harness::new(Config {
        get_capabilities: true,
        ..Config::default()
    });
    let m = mac(8);
    h.dhcp(binding(m, Flow::Hybrid2)).unwrap();
    let sent = h.notify(mta_src(m), &enrollment(Mib::Ietf, m, 1, 1, "public"));
    let mut copies = 0;
    for _ in 0..40 {
        copies += h.advance(1000).len();
    }
    assert_eq!(copies, 4);
    let events = h.take_events();
    assert!(matches!(events[..], [Event::NeedFile { .. }]), "{events:?}");
    let r = h.engine.record(m).unwrap();
    assert_eq!(r.last_error.as_deref(), Some("capability GET unanswered"));
    assert_eq!(h.engine.counters().gets_failed, 1);
    // A late answer to it matches nothing.
    let late = response_to_request(&sent[1].bytes, ErrorStatus::NO_ERROR, None);
    h.deliver_on(sent[1].to, REQUEST_PORT, &late);
    assert_eq!(h.engine.counters().responses_unmatched, 1);
    assert_eq!(h.state(m), State::FileRequested);
}

#[test]
fn a_set_refused_with_inconsistent_value_fails_the_flow() {
    let mut h = Harness::default();
    let m = mac(9);
    let set = to_the_set(&mut h, m, Flow::Hybrid2);
    let refusal = response_to_request(&set.bytes, ErrorStatus::INCONSISTENT_VALUE, None);
    h.deliver_on(set.to, REQUEST_PORT, &refusal);
    assert_eq!(
        h.state(m),
        State::Failed {
            step: Step::SetAcked,
            reason: "inconsistentValue".into()
        }
    );
    assert_eq!(
        h.take_events(),
        [Event::Failed {
            mac: m,
            step: Step::SetAcked,
            reason: "inconsistentValue".to_string()
        }]
    );
    let c = h.engine.counters();
    assert_eq!((c.sets_failed, c.flows_failed, c.flows_active), (1, 1, 0));
    assert_eq!(h.engine.next_deadline(), None);
}

#[test]
fn an_unanswered_set_is_retransmitted_with_backoff_then_timed_out() {
    let mut h = Harness::default();
    let m = mac(10);
    let set = to_the_set(&mut h, m, Flow::Hybrid2);
    let start = h.now;
    let mut copies = Vec::new();
    for _ in 0..40 {
        for s in h.advance(1000) {
            assert_eq!(s, set, "a retransmission is the same datagram");
            copies.push(h.now.since(start) / 1000);
        }
        if h.state(m) != State::SetSent {
            break;
        }
    }
    // Waits of 1, 2, 4 and 8 s between copies, then 16 s for the last.
    assert_eq!(copies, [1, 3, 7, 15]);
    assert_eq!(h.now.since(start), 31_000);
    assert_eq!(h.state(m), State::TimedOut(Step::SetAcked));
    assert_eq!(
        h.take_events(),
        [Event::TimedOut {
            mac: m,
            step: Step::SetAcked
        }]
    );
    let ends: Vec<_> = h.engine.take_flow_ends().collect();
    assert_eq!(ends.len(), 1, "{ends:?}");
    assert_eq!(
        (ends[0].flow, ends[0].outcome),
        (Some(Flow::Hybrid2), "timeout")
    );
    assert!(h.now.since(ends[0].started) >= 31_000, "{ends:?}");
    let c = h.engine.counters();
    assert_eq!(
        (c.sets_sent, c.sets_retransmitted, c.sets_timed_out),
        (1, 4, 1)
    );
}

#[test]
fn an_mta_enrolling_again_after_a_timed_out_set_gets_another_attempt() {
    let mut h = Harness::default();
    let m = mac(19);
    to_the_set(&mut h, m, Flow::Hybrid2);
    for _ in 0..31 {
        h.advance(1000);
    }
    assert_eq!(h.state(m), State::TimedOut(Step::SetAcked));
    h.take_events();
    // Same boot (correlation id 7), a new INFORM: the MTA is still there, waiting.
    h.notify(mta_src(m), &enrollment(Mib::Ietf, m, 7, 2, "public"));
    assert!(matches!(h.take_events()[..], [Event::NeedFile { .. }]));
    let r = h.engine.record(m).unwrap();
    assert_eq!((r.attempts, &r.state), (2, &State::FileRequested));
    // Once complete, the same enrollment again changes nothing.
    let set = h
        .file_ready(m, "tftp://f/m.bin", &[0; 20])
        .unwrap()
        .remove(0);
    let ack = response_to_request(&set.bytes, ErrorStatus::NO_ERROR, None);
    h.deliver_on(set.to, REQUEST_PORT, &ack);
    h.notify(mta_src(m), &status(Mib::Ietf, m, 7, 1, 3));
    h.notify(mta_src(m), &enrollment(Mib::Ietf, m, 7, 4, "public"));
    assert_eq!(h.state(m), State::Complete(ProvState::PASS));
    assert_eq!(h.engine.record(m).unwrap().attempts, 2);
}

#[test]
fn a_late_response_to_an_earlier_copy_is_taken() {
    let mut h = Harness::default();
    let m = mac(11);
    let set = to_the_set(&mut h, m, Flow::Hybrid2);
    h.advance(1000);
    h.advance(2000);
    let ack = response_to_request(&set.bytes, ErrorStatus::NO_ERROR, None);
    // From the agent's address but another port: still the MTA.
    h.deliver_on(SocketAddrV4::new(mta_ip(m), 1161), REQUEST_PORT, &ack);
    assert_eq!(h.state(m), State::Configured);
    // From another address: not the MTA's answer.
    let other = to_the_set(&mut h, mac(12), Flow::Hybrid2);
    let ack = response_to_request(&other.bytes, ErrorStatus::NO_ERROR, None);
    h.deliver_on(mta_src(mac(99)), REQUEST_PORT, &ack);
    assert_eq!(h.state(mac(12)), State::SetSent);
    assert_eq!(h.engine.counters().responses_unmatched, 1);
}

#[test]
fn a_repeated_inform_is_answered_again_without_restarting_the_flow() {
    let mut h = Harness::default();
    let m = mac(13);
    h.dhcp(binding(m, Flow::Hybrid2)).unwrap();
    let inform = enrollment(Mib::Ietf, m, 5, 40, "public");
    let first = h.notify(mta_src(m), &inform);
    assert_eq!(h.take_events().len(), 1);
    h.advance(1500);
    let again = h.notify(mta_src(m), &inform);
    assert_eq!(first, again);
    assert_eq!(h.take_events(), []);
    assert_eq!(h.engine.counters().informs_duplicate, 1);
    // The same boot enrolling under a new request-id: answered, ignored.
    h.file_ready(m, "tftp://f/m.bin", &[1; 20]).unwrap();
    let third = h.notify(mta_src(m), &enrollment(Mib::Ietf, m, 5, 41, "public"));
    assert_eq!(third[0].pdu().request_id, 41);
    assert_eq!(h.take_events(), []);
    assert_eq!(h.state(m), State::SetSent);
    assert_eq!(h.engine.counters().enrollments_duplicate, 1);
    let r = h.engine.record(m).unwrap();
    assert_eq!(r.attempts, 1);
    assert!(r.steps.has(Step::Dhcp));

    // A new correlation id: the MTA rebooted, the flow starts over.
    h.notify(mta_src(m), &enrollment(Mib::Ietf, m, 6, 1, "public"));
    assert!(matches!(h.take_events()[..], [Event::NeedFile { .. }]));
    let r = h.engine.record(m).unwrap();
    assert_eq!((r.attempts, r.correlation_id), (2, Some(6)));
    assert_eq!(r.state, State::FileRequested);
    assert_eq!(h.engine.counters().flows_restarted, 1);
    // The old SET is no longer in flight.
    assert_eq!(h.advance(5000), []);
}

#[test]
fn a_wrong_community_gets_no_answer() {
    let mut h = Harness::default();
    let m = mac(14);
    h.dhcp(binding(m, Flow::Hybrid2)).unwrap();
    let sent = h.notify(mta_src(m), &enrollment(Mib::Ietf, m, 1, 1, "secret"));
    assert_eq!(sent, []);
    assert_eq!(
        h.take_events(),
        [Event::Rejected {
            src: mta_src(m),
            reason: RejectReason::BadCommunity
        }]
    );
    assert_eq!(h.engine.counters().bad_community, 1);
    assert_eq!(h.state(m), State::Waiting);

    // Only `private` accepted: the spec vector's `public` is refused.
    let mut strict = Harness::new(Config {
        inform_communities: vec!["private".to_string()],
        ..Config::default()
    });
    assert_eq!(strict.notify(mta_src(m), ENROLLMENT), []);
    assert_eq!(strict.engine.records_len(), 0);
}

#[test]
fn an_inform_from_an_unknown_mta_is_answered_and_provisioned() {
    let mut h = Harness::new(Config {
        accept_unknown_dhcp: true,
        ..Config::default()
    });
    let m = mac(15);
    let src = SocketAddrV4::new(Ipv4Addr::new(10, 9, 9, 9), 2000);
    let sent = h.notify(src, &enrollment(Mib::Ietf, m, 3, 8, "public"));
    assert_eq!(sent.len(), 1);
    assert!(matches!(h.take_events()[..], [Event::NeedFile { .. }]));
    let r = h.engine.record(m).unwrap();
    assert!(r.unknown_dhcp);
    assert_eq!((r.flow, r.addr, r.cmts), (None, *src.ip(), None));
    assert_eq!(h.engine.counters().unknown_dhcp, 1);
    // The SET goes where the INFORM came from.
    let sent = h.file_ready(m, "tftp://f/m.bin", &[0; 20]).unwrap();
    assert_eq!(sent[0].to, SocketAddrV4::new(*src.ip(), 161));
    // Its DHCP report arriving late fills in the facts without restarting.
    h.dhcp(binding(m, Flow::Hybrid2)).unwrap();
    let r = h.engine.record(m).unwrap();
    assert!(!r.unknown_dhcp);
    assert_eq!(
        (r.flow, r.cmts, r.attempts),
        (Some(Flow::Hybrid2), Some(CMTS), 1)
    );
    assert_eq!(r.state, State::SetSent);

    // A status from an MTA never seen is kept as a finished record.
    let stranger = mac(16);
    h.notify(mta_src(stranger), &status(Mib::Ietf, stranger, 1, 1, 1));
    let r = h.engine.record(stranger).unwrap();
    assert!(r.unknown_dhcp);
    assert_eq!(r.state, State::Complete(ProvState::PASS));
    assert_eq!(h.engine.active_flows(), 1);
}

#[test]
fn a_fail_status_is_recorded() {
    let mut h = Harness::default();
    let m = mac(17);
    let set = to_the_set(&mut h, m, Flow::Hybrid2);
    let ack = response_to_request(&set.bytes, ErrorStatus::NO_ERROR, None);
    h.deliver_on(set.to, REQUEST_PORT, &ack);
    h.take_events();
    h.notify(mta_src(m), &status(Mib::Ietf, m, 7, 3, 2));
    assert_eq!(
        h.state(m),
        State::Complete(ProvState::FAIL_CONFIG_FILE_ERROR)
    );
    assert_eq!(
        h.take_events(),
        [Event::Completed {
            mac: m,
            state: Some(ProvState::FAIL_CONFIG_FILE_ERROR)
        }]
    );
    assert_eq!(h.engine.counters().status_by_state[3], 1);
    assert!(
        h.engine
            .record(m)
            .unwrap()
            .to_json()
            .contains("\"prov_state\":\"failConfigFileError\"")
    );
    // The same status again (another request-id) changes nothing.
    h.notify(mta_src(m), &status(Mib::Ietf, m, 7, 3, 3));
    assert_eq!(h.take_events(), []);
    assert_eq!(h.engine.counters().statuses_duplicate, 1);
}

#[test]
fn in_progress_is_not_an_outcome() {
    let mut h = Harness::default();
    let m = mac(18);
    h.dhcp(binding(m, Flow::Basic2)).unwrap();
    h.notify(mta_src(m), &status(Mib::Ietf, m, 7, 2, 2));
    assert_eq!(h.state(m), State::Waiting);
    assert_eq!(h.engine.counters().status_by_state[2], 1);
}

#[test]
fn the_provisioning_timer_bounds_every_flow() {
    let mut h = Harness::default();
    let (a, b, c, d) = (mac(20), mac(21), mac(22), mac(23));
    h.dhcp(binding(a, Flow::Hybrid2)).unwrap();
    h.dhcp(binding(b, Flow::Basic2)).unwrap();
    let mut short = binding(c, Flow::Basic1);
    short.provisioning_timer = Some(Duration::from_secs(60));
    h.dhcp(short).unwrap();
    h.dhcp(binding(d, Flow::Basic2)).unwrap();
    h.fetched(d);
    assert_eq!(h.engine.next_deadline(), Some(T0.plus(60_000)));
    h.run_until(T0.plus(59_999));
    assert_eq!(h.take_events(), []);
    h.run_until(T0.plus(60_000));
    assert_eq!(
        h.take_events(),
        [Event::TimedOut {
            mac: c,
            step: Step::FileFetched
        }]
    );
    h.run_until(T0.plus(600_000));
    let mut events = h.take_events();
    events.sort_by_key(|e| match e {
        Event::TimedOut { mac, .. } => *mac,
        _ => Mac::default(),
    });
    assert_eq!(
        events,
        [
            Event::TimedOut {
                mac: a,
                step: Step::Enrollment
            },
            Event::TimedOut {
                mac: b,
                step: Step::FileFetched
            },
            Event::TimedOut {
                mac: d,
                step: Step::Status
            },
        ]
    );
    assert_eq!(h.engine.active_flows(), 0);
    assert_eq!(h.engine.counters().flows_timed_out, 4);
    assert_eq!(h.engine.next_deadline(), None);
    // A late status still lands in the record.
    h.notify(mta_src(d), &status(Mib::Ietf, d, 1, 1, 1));
    assert_eq!(h.state(d), State::Complete(ProvState::PASS));
}

#[test]
fn a_file_that_cannot_be_made_fails_the_flow() {
    let mut h = Harness::default();
    let m = mac(24);
    h.dhcp(binding(m, Flow::Hybrid2)).unwrap();
    h.notify(mta_src(m), &enrollment(Mib::Ietf, m, 1, 1, "public"));
    h.take_events();
    h.engine
        .file_failed(h.now, m, "no subscriber for this MAC".to_string())
        .unwrap();
    assert_eq!(
        h.take_events(),
        [Event::Failed {
            mac: m,
            step: Step::FileReady,
            reason: "no subscriber for this MAC".to_string()
        }]
    );
    assert!(h.engine.file_failed(h.now, m, String::new()).is_err());
}

#[test]
fn max_flows_bounds_the_flows_in_progress() {
    let mut h = Harness::new(Config {
        max_flows: 2,
        accept_unknown_dhcp: true,
        ..Config::default()
    });
    h.dhcp(binding(mac(1), Flow::Hybrid2)).unwrap();
    h.dhcp(binding(mac(2), Flow::Basic1)).unwrap();
    assert_eq!(
        h.dhcp(binding(mac(3), Flow::Hybrid2)),
        Err(Refused::TooManyFlows { max: 2 })
    );
    // An enrollment beyond the bound is answered (or the MTA retransmits) but starts nothing.
    let sent = h.notify(
        mta_src(mac(4)),
        &enrollment(Mib::Ietf, mac(4), 1, 1, "public"),
    );
    assert_eq!(sent.len(), 1);
    assert_eq!(
        h.take_events(),
        [Event::Rejected {
            src: mta_src(mac(4)),
            reason: RejectReason::TooManyFlows
        }]
    );
    assert!(h.engine.record(mac(4)).is_none());
    assert_eq!(h.engine.counters().too_many_flows, 2);
    // A slot frees when a flow ends.
    h.fetched(mac(2));
    h.take_events();
    assert!(h.dhcp(binding(mac(3), Flow::Hybrid2)).is_ok());
    assert_eq!(h.engine.active_flows(), 2);
}

#[test]
fn the_oldest_finished_records_are_evicted() {
    let mut h = Harness::new(Config {
        max_completed: 2,
        ..Config::default()
    });
    for n in 1..=3 {
        h.dhcp(binding(mac(n), Flow::Basic1)).unwrap();
        h.advance(10);
        h.fetched(mac(n));
    }
    assert!(h.engine.record(mac(1)).is_none());
    assert!(h.engine.record(mac(2)).is_some() && h.engine.record(mac(3)).is_some());
    assert_eq!(h.engine.counters().records_evicted, 1);
    // A finished record that starts again leaves the eviction order.
    h.dhcp(binding(mac(2), Flow::Basic1)).unwrap();
    h.dhcp(binding(mac(4), Flow::Basic1)).unwrap();
    h.fetched(mac(4));
    h.dhcp(binding(mac(5), Flow::Basic1)).unwrap();
    h.fetched(mac(5));
    assert!(
        h.engine.record(mac(2)).is_some(),
        "active again: not evicted"
    );
    assert!(h.engine.record(mac(3)).is_none());
    assert_eq!(h.engine.records_len(), 3);
}

#[test]
fn dhcp_restarts_a_flow_only_when_the_binding_changes() {
    let mut h = Harness::default();
    let m = mac(30);
    h.dhcp(binding(m, Flow::Hybrid2)).unwrap();
    h.advance(100);
    h.dhcp(binding(m, Flow::Hybrid2)).unwrap();
    assert_eq!(h.engine.counters().dhcp_duplicate, 1);
    let r = h.engine.record(m).unwrap();
    assert_eq!((r.attempts, r.steps.get(Step::Dhcp)), (1, Some(T0)));
    let mut moved = binding(m, Flow::Hybrid2);
    moved.addr = Ipv4Addr::new(10, 2, 0, 9);
    h.dhcp(moved).unwrap();
    let r = h.engine.record(m).unwrap();
    assert_eq!((r.attempts, r.addr), (2, Ipv4Addr::new(10, 2, 0, 9)));
    assert_eq!(r.steps.get(Step::Dhcp), Some(T0.plus(100)));
    // A finished flow starts over with the next ACK.
    let b = mac(31);
    h.dhcp(binding(b, Flow::Basic1)).unwrap();
    h.fetched(b);
    h.dhcp(binding(b, Flow::Basic1)).unwrap();
    let r = h.engine.record(b).unwrap();
    assert_eq!((r.attempts, &r.state), (2, &State::Waiting));
    assert!(!r.steps.has(Step::FileFetched));
}

#[test]
fn garbage_is_counted_by_kind_and_never_answered() {
    let mut h = Harness::default();
    let src = mta_src(mac(40));
    assert_eq!(h.notify(src, b"\x30\x03\x02\x01"), []);
    assert_eq!(h.notify(src, b""), []);
    let c = h.engine.counters();
    assert_eq!(c.undecodable, 2);
    assert_eq!(
        c.undecodable_of("length_past_end") + c.undecodable_of("truncated"),
        2
    );
    let events = h.take_events();
    assert!(events.iter().all(|e| matches!(
        e,
        Event::Rejected {
            reason: RejectReason::Undecodable(_),
            ..
        }
    )));
    // A GET sent to us is not ours to answer.
    let get = Message::get(provd_snmp::Version::V2c, "public", 5, []);
    assert_eq!(h.notify(src, &get.to_bytes().unwrap()), []);
    assert_eq!(h.engine.counters().unexpected_pdus, 1);
}

#[test]
fn an_inform_on_the_request_port_is_answered_from_it() {
    let mut h = Harness::default();
    let m = mac(41);
    let sent = h.deliver_on(
        mta_src(m),
        REQUEST_PORT,
        &enrollment(Mib::Ietf, m, 1, 1, "public"),
    );
    assert_eq!(sent[0].from_port, FromPort::Requests);
}

#[test]
fn request_ids_count_up_and_wrap_to_one() {
    let mut h = Harness::new(Config {
        first_request_id: i32::MAX,
        ..Config::default()
    });
    let a = to_the_set(&mut h, mac(50), Flow::Hybrid2);
    let b = to_the_set(&mut h, mac(51), Flow::Hybrid2);
    assert_eq!(a.pdu().request_id, i32::MAX);
    assert_eq!(b.pdu().request_id, 1);
}

#[test]
fn mac_text_round_trips() {
    let m: Mac = "00:15:CF:12:34:57".parse().unwrap();
    assert_eq!(m, VECTOR_MAC);
    assert_eq!(m.to_string(), "00:15:cf:12:34:57");
    assert_eq!("0015cf123457".parse::<Mac>(), Ok(m));
    assert_eq!("00-15-cf-12-34-57".parse::<Mac>(), Ok(m));
    for bad in [
        "",
        "00:15:cf:12:34",
        "00:15-cf:12:34:57",
        "+0:15:cf:12:34:57",
        "zz15cf123457",
    ] {
        assert!(bad.parse::<Mac>().is_err(), "{bad}");
    }
}

/// The review's forgeries, with `accept_unknown_dhcp` off (the default): enrollments for MACs
/// nobody leased, from made-up sources, are answered (or the sender retransmits) but open no
/// flow and send no SET; one claiming a leased MTA's MAC from another address neither moves
/// its record nor gets its SET; the MTA itself, from its lease's address, is provisioned.
#[test]
fn forged_enrollments_open_no_flow_and_cannot_hijack_a_leased_mta() {
    let mut h = Harness::default();
    for n in 0..200u8 {
        let src = SocketAddrV4::new(Ipv4Addr::new(203, 0, 113, n), 162);
        let forged = mac(100u8.wrapping_add(n));
        let sent = h.notify(
            src,
            &enrollment(Mib::Ietf, forged, 1, i32::from(n), "public"),
        );
        assert_eq!(sent.len(), 1, "every INFORM is answered");
        assert!(h.engine.record(forged).is_none());
    }
    assert_eq!(h.engine.active_flows(), 0);
    assert_eq!(h.engine.counters().not_lease_holder, 200);
    assert!(h.take_events().iter().all(|e| matches!(
        e,
        Event::Rejected {
            reason: RejectReason::NotLeaseHolder,
            ..
        }
    )));

    let m = mac(20);
    h.dhcp(binding(m, Flow::Hybrid2)).unwrap();
    let thief = SocketAddrV4::new(Ipv4Addr::new(203, 0, 113, 250), 162);
    h.notify(thief, &enrollment(Mib::Ietf, m, 9, 1, "public"));
    assert_eq!(
        h.take_events(),
        [Event::Rejected {
            src: thief,
            reason: RejectReason::NotLeaseHolder
        }]
    );
    let r = h.engine.record(m).unwrap();
    assert_eq!((r.addr, &r.state), (mta_ip(m), &State::Waiting));
    // A status from the thief changes nothing either.
    h.notify(thief, &status(Mib::Ietf, m, 9, 1, 2));
    assert_eq!(h.state(m), State::Waiting);
    assert!(matches!(
        h.take_events()[..],
        [Event::Rejected {
            reason: RejectReason::NotLeaseHolder,
            ..
        }]
    ));
    // The MTA from its lease's address: its flow goes on, and the SET goes there.
    h.notify(mta_src(m), &enrollment(Mib::Ietf, m, 7, 3, "public"));
    assert!(matches!(h.take_events()[..], [Event::NeedFile { .. }]));
    let sent = h.file_ready(m, "tftp://f/m.bin", &[0; 20]).unwrap();
    assert_eq!(sent[0].to, SocketAddrV4::new(mta_ip(m), 161));
}

/// With a lease lookup (the DHCP workers' view), the lease decides, not the engine's record:
/// an MTA whose lease moved enrolls from its new address; the old address is refused.
#[test]
fn the_lease_lookup_decides_who_may_enroll() {
    let mut h = Harness::default();
    let m = mac(21);
    let moved = Ipv4Addr::new(10, 1, 9, 9);
    h.engine
        .set_lease_lookup(move |x| (x == m).then_some(moved));
    h.dhcp(binding(m, Flow::Hybrid2)).unwrap();
    h.notify(mta_src(m), &enrollment(Mib::Ietf, m, 7, 1, "public"));
    assert!(matches!(
        h.take_events()[..],
        [Event::Rejected {
            reason: RejectReason::NotLeaseHolder,
            ..
        }]
    ));
    h.notify(
        SocketAddrV4::new(moved, 1024),
        &enrollment(Mib::Ietf, m, 7, 2, "public"),
    );
    assert!(matches!(h.take_events()[..], [Event::NeedFile { .. }]));
}
