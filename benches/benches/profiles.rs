//! VoIP profiles: what a cache miss of the HTTP profile server costs besides the template
//! (macro expansion of a profile rule, the version set into a kvp and an XML profile, the
//! Salted__ encryption), and the profile-rule parser. A cache hit costs none of these.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use provd_profile_rule::{ProfileRule, Variables, expand_rule};
use provd_profiles::{Format, crypto, set_version};

fn kvp_profile() -> String {
    let mut t = String::from("DBID_WEB_SIP_SERVER=sip.example.net\nDBID_SIP_ENABLE=1\t0\t0\t0\n");
    for i in 0..60 {
        t.push_str(&format!("DBID_PARAM_{i}=value number {i}\n"));
    }
    t
}

fn xml_profile() -> String {
    let mut t = String::from("<flat-profile>\n");
    for i in 0..60 {
        t.push_str(&format!(
            "<Param_{i}_ ua=\"na\">value number {i}</Param_{i}_>\n"
        ));
    }
    t.push_str("</flat-profile>\n");
    t
}

fn benches(c: &mut Criterion) {
    let mut v = Variables::new([0x00, 0x15, 0xcf, 0x12, 0x34, 0x56]);
    v.set_gpp('B', "prov.example.net");
    v.set_secret('A', "SecretPhrase1234");
    let rule = "( $SWVER ne 2.0 )? [--key $SA] https://$B/p/$(MA:0:6)/$MAU.cfg | http://$B/$MA.cfg";
    c.bench_function("macros/expand_rule", |b| {
        b.iter(|| expand_rule(black_box(rule), &v))
    });
    c.bench_function("macros/parse_rule", |b| {
        b.iter(|| ProfileRule::parse(black_box(rule)))
    });
    let kvp = kvp_profile();
    let xml = xml_profile();
    let mut g = c.benchmark_group("profiles");
    g.throughput(Throughput::Bytes(kvp.len() as u64));
    g.bench_function("kvp_set_version", |b| {
        b.iter(|| {
            set_version(
                Format::Kvp,
                black_box(kvp.as_bytes()),
                "DBID_DBASE_VERSION",
                7,
            )
        })
    });
    g.throughput(Throughput::Bytes(xml.len() as u64));
    g.bench_function("xml_set_version", |b| {
        b.iter(|| set_version(Format::Xml, black_box(xml.as_bytes()), "Profile_Version", 7))
    });
    g.throughput(Throughput::Bytes(kvp.len() as u64));
    g.bench_function("encrypt_aes256cbc", |b| {
        b.iter(|| crypto::encrypt(black_box(kvp.as_bytes()), b"SecretPhrase1234", [1; 8]))
    });
    g.finish();
}

criterion_group!(profile_benches, benches);
criterion_main!(profile_benches);
