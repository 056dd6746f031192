//! The ACS's per-session CPU path without HTTP: a boot Inform parsed, the device filed
//! (1 M-device store not needed: the cost per Inform does not depend on the map's size beyond
//! cache misses, which the whole-server bench measures), InformResponse written, empty POST,
//! 204. Plus the envelope parser alone on the sample Inform.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use provd_acs::{Acs, SessionDevice};
use provd_cwmp::{Envelope, Inform, Limits, Rpc, Session, Version};

fn settings() -> provd_config::AcsSettings {
    provd_config::AcsSettings::from_toml("[acs]\nauth = \"none\"\n").unwrap()
}

fn inform(serial: &str) -> Vec<u8> {
    let i = Inform::simulated(
        "00D09E",
        "SIM",
        serial,
        "2 PERIODIC",
        "http://10.0.0.1:7547/cr".into(),
    );
    Envelope::new(Version::V1_2, Some("1".into()), Rpc::Inform(Box::new(i)))
        .to_xml()
        .into_bytes()
}

fn bench(c: &mut Criterion) {
    let sample = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/data/cwmp/samples/01_inform.xml"),
    )
    .unwrap();
    let mut g = c.benchmark_group("cwmp");
    g.throughput(Throughput::Elements(1));
    g.bench_function("parse_sample_inform", |b| {
        b.iter(|| Envelope::parse(&sample, &Limits::default()).unwrap())
    });
    let acs = Acs::new(settings());
    let bodies: Vec<Vec<u8>> = (0..1000).map(|i| inform(&format!("S{i:06}"))).collect();
    let mut n = 0usize;
    g.bench_function("inform_session", |b| {
        b.iter(|| {
            n = (n + 1) % bodies.len();
            let mut dev = SessionDevice::default();
            let mut s = Session::new(0, 1, Limits::default());
            let mut d = acs.driver(&mut dev, 7547, "/");
            let r = s.handle(1, &bodies[n], &mut d);
            assert_eq!(r.status, 200);
            let r = s.handle(1, b"", &mut d);
            assert_eq!(r.status, 204);
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
