//! The DHCP codec on the server's hot path: parsing the relayed MTA DISCOVER, the option lookups
//! a decision makes, and writing the OFFER into a reused buffer.
//!
//! `cargo bench -p provd-benches --bench dhcp_codec` (add `-- --test` to run each once).

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use provd_benches::{OfferParams, RELAYED_MTA_DISCOVER, dhcp_vector, write_offer};
use provd_dhcp::relay::RelayAgentInfo;
use provd_dhcp::{Message, OwnedMessage, code};

fn parse(c: &mut Criterion) {
    let raw = dhcp_vector(RELAYED_MTA_DISCOVER);
    let mut g = c.benchmark_group("dhcp_parse");
    g.bench_function("view_relayed_mta_discover", |b| {
        b.iter(|| Message::parse(black_box(&raw)))
    });
    g.bench_function("owned_relayed_mta_discover", |b| {
        b.iter(|| OwnedMessage::parse(black_box(&raw)))
    });
    g.finish();
}

/// Lookups on an already parsed view. The DISCOVER has 53, 55, 60, 43, 57 and 82: requested IP,
/// server id and client id are absent, so those three measure a full miss (the common case for
/// a DISCOVER).
fn lookups(c: &mut Criterion) {
    let raw = dhcp_vector(RELAYED_MTA_DISCOVER);
    let m = Message::parse(&raw).expect("vector parses");
    let m = &m;
    let mut g = c.benchmark_group("dhcp_lookup");
    g.bench_function("message_type", |b| b.iter(|| black_box(m).message_type()));
    g.bench_function("requested_ip", |b| b.iter(|| black_box(m).requested_ip()));
    g.bench_function("server_id", |b| b.iter(|| black_box(m).server_id()));
    g.bench_function("client_id", |b| b.iter(|| black_box(m).client_id()));
    g.bench_function("relay_agent_info_82", |b| {
        b.iter(|| black_box(m).relay_agent_info())
    });
    g.bench_function("relay_agent_info_82_remote_id", |b| {
        b.iter(|| {
            let r82 = black_box(m).relay_agent_info()?;
            let remote = RelayAgentInfo::parse(&r82).ok()?.remote_id()?;
            <[u8; 6]>::try_from(remote).ok()
        })
    });
    g.bench_function("vendor_class_60", |b| {
        b.iter(|| black_box(m).vendor_class())
    });
    g.bench_function("option_43", |b| {
        b.iter(|| black_box(m).option(code::VENDOR_SPECIFIC))
    });
    // What a decision reads, together, after the parse.
    g.bench_function("decision_set", |b| {
        b.iter(|| {
            let m = black_box(m);
            (
                m.message_type(),
                m.requested_ip(),
                m.server_id(),
                m.client_id().map(|c| c.len()),
                m.relay_agent_info().map(|r| r.len()),
                m.vendor_class().map(|v| v.len()),
                m.request_kind(),
            )
        })
    });
    g.finish();
    // Parse plus the decision set: the whole read side per packet.
    c.bench_function("dhcp_parse_and_lookup/relayed_mta_discover", |b| {
        b.iter(|| {
            let m = Message::parse(black_box(&raw)).ok()?;
            Some((
                m.message_type(),
                m.requested_ip(),
                m.server_id(),
                m.client_id().map(|c| c.len()),
                m.relay_agent_info().map(|r| r.len()),
                m.vendor_class().map(|v| v.len()),
            ))
        })
    });
}

fn encode(c: &mut Criterion) {
    let raw = dhcp_vector(RELAYED_MTA_DISCOVER);
    let req = Message::parse(&raw).expect("vector parses");
    let params = OfferParams::mta_basic1();
    let mut buf = Vec::with_capacity(1500);
    let len = write_offer(&req, &params, &mut buf).expect("offer fits");
    let offer = Message::parse(&buf[..len]).expect("offer parses");
    assert_eq!(offer.relay_agent_info(), req.relay_agent_info());

    let mut g = c.benchmark_group("dhcp_encode");
    // Option 122 encoded from the typed ClientConfiguration on each reply.
    g.bench_function("mta_offer_relayed", |b| {
        b.iter(|| write_offer(black_box(&req), black_box(&params), &mut buf))
    });
    // The same OFFER with no option 122 (what a cable modem gets, less its own options).
    let cm = OfferParams {
        client_config: None,
        ..params.clone()
    };
    g.bench_function("offer_relayed_without_122", |b| {
        b.iter(|| write_offer(black_box(&req), black_box(&cm), &mut buf))
    });
    g.finish();
}

criterion_group!(benches, parse, lookups, encode);
criterion_main!(benches);
