//! Per-device config files: what a TFTP read of a generated name costs before the first DATA
//! block. A cache miss renders the template, parses the docsis-tool text and encodes the binary
//! with both MICs; a hit is the enforce check plus a cache lookup. The codec steps are measured
//! apart so a regression says where it is. The file is ~2 KiB, the size the TFTP target names.

use std::hint::black_box;
use std::net::Ipv4Addr;
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use provd_devices::DeviceView;
use provd_files::Generator;
use provd_lease::Binding;

/// A service-tier template with the SNMP filter rows and service flows a real CM file has.
fn template() -> String {
    let mut t = String::from(
        "Main {\n\tNetworkAccess 1;\n\tMaxCPE {{ vars.max_cpe }};\n\tGlobalPrivacyEnable 1;\n",
    );
    for (dir, rate) in [("Us", "{{ vars.up }}"), ("Ds", "{{ vars.down }}")] {
        t.push_str(&format!(
            "\t{dir}ServiceFlow {{\n\t\t{dir}ServiceFlowRef 1;\n\t\tQosParamSetType 7;\n\t\tTrafficPriority 1;\n\t\tMaxRateSustained {rate};\n\t\tMaxTrafficBurst 1522;\n\t\tMinReservedRate 0;\n\t}}\n"
        ));
    }
    t.push_str("\tSnmpMibObject sysContact.0 String \"{{ mac }} at {{ ip }} via {{ giaddr }}\";\n");
    for row in 1..=18 {
        t.push_str(&format!(
            "\tSnmpMibObject docsDevFilterIpStatus.{row} Integer 4;\n\tSnmpMibObject docsDevFilterIpControl.{row} Integer 1;\n\tSnmpMibObject docsDevFilterIpDaddr.{row} IPAddress 10.{row}.0.0;\n\tSnmpMibObject docsDevFilterIpDmask.{row} IPAddress 255.255.0.0;\n"
        ));
    }
    t.push_str("}\n");
    t
}

struct Fixture {
    _dir: tempfile::TempDir,
    generator: Generator,
    view: Arc<DeviceView>,
    text: String,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("cm.j2"), template()).unwrap();
    let mut policy = provd_config::testing::policy(
        r#"
[tftp]
[vars]
max_cpe = 4
up = 10000000
down = 100000000
[[class]]
name = "cm"
match = "docsis*"
boot_file = "cm/{mac}.cfg"
[class.config_file]
template = "cm.j2"
kind = "docsis"
shared_secret = "DOCSIS"
"#,
    );
    policy.resolve_paths(dir.path());
    let view = Arc::new(DeviceView::new());
    let generator = Generator::new(&policy, Arc::clone(&view)).unwrap();
    let bytes = generator.render_for("cm", &mac(1), None).unwrap();
    let text = provd_docsis::text::print(&provd_docsis::decode(&bytes).unwrap().file);
    Fixture {
        _dir: dir,
        generator,
        view,
        text,
    }
}

fn mac(n: u32) -> [u8; 6] {
    let b = n.to_be_bytes();
    [0x00, 0x15, 0xcf, b[1], b[2], b[3]]
}

fn bind(view: &DeviceView, n: u32) -> Ipv4Addr {
    let addr = Ipv4Addr::from(0x0a00_0000 + n);
    view.bind(Binding {
        mac: mac(n),
        addr,
        expires_at: u32::MAX,
        class: Some(0),
        giaddr: Ipv4Addr::new(10, 0, 0, 1),
        vendor_class: Some(b"docsis3.0"[..].into()),
        remote_id: None,
        circuit_id: None,
        restart: true,
    });
    addr
}

fn config_files(c: &mut Criterion) {
    let f = fixture();
    let bytes = f.generator.render_for("cm", &mac(1), None).unwrap();
    let parsed = provd_docsis::text::parse(&f.text).unwrap();
    let mut g = c.benchmark_group("config_file");
    g.throughput(Throughput::Elements(1));
    eprintln!("config_file: {} bytes per file", bytes.len());

    g.bench_function("decode", |b| {
        b.iter(|| provd_docsis::decode(black_box(&bytes)).unwrap())
    });
    g.bench_function("text_parse", |b| {
        b.iter(|| provd_docsis::text::parse(black_box(&f.text)).unwrap())
    });
    g.bench_function("encode_cm_with_mics", |b| {
        b.iter(|| provd_docsis::encode_cm(black_box(&parsed), b"DOCSIS").unwrap())
    });
    g.bench_function("render_template_and_compile", |b| {
        b.iter(|| {
            f.generator
                .render_for("cm", black_box(&mac(7)), None)
                .unwrap()
        })
    });

    // Through `file`, as the TFTP server calls it: name → class and MAC → enforce → cache.
    let addr = bind(&f.view, 1);
    let name = "cm/0015cf000001.cfg";
    f.generator.file(name, addr, 0).unwrap().unwrap();
    g.bench_function("file_cache_hit", |b| {
        b.iter(|| f.generator.file(black_box(name), addr, 0).unwrap().unwrap())
    });
    let mut n = 1_000;
    g.bench_function("file_cache_miss_new_device", |b| {
        b.iter(|| {
            n += 1;
            let addr = bind(&f.view, n);
            let name = format!("cm/{}.cfg", hex(&mac(n)));
            f.generator.file(&name, addr, 0).unwrap().unwrap()
        })
    });
    g.finish();
}

fn hex(m: &[u8; 6]) -> String {
    m.iter().map(|b| format!("{b:02x}")).collect()
}

criterion_group!(benches, config_files);
criterion_main!(benches);
