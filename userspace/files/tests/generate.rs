//! Generated config files: rendered from the device's facts, verified, cached, refused to anyone
//! but the device, and re-rendered when the template changes.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use provd_config::{ConfigFileKind, Policy};
use provd_devices::DeviceView;
use provd_files::{GenerateError, Generator, Owner};
use provd_lease::Binding;

const MAC: [u8; 6] = [0x00, 0x15, 0xcf, 0x12, 0x34, 0x56];
const LEASED: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 20);
const CMTS: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 1);
const NOW: u32 = 1_000_000;

const CM_TEMPLATE: &str = r#"Main {
	NetworkAccess 1;
	MaxCPE {{ subscriber.max_cpe if subscriber else 1 }};
	SnmpMibObject sysContact.0 String "{{ mac }} via {{ giaddr }} at {{ ip }} ({{ vendor_class }}) {{ vars.site }}";
}
"#;

const MTA_TEMPLATE: &str = r#"Main {
	MtaConfigDelimiter 1;
	SnmpMibObject pktcMtaDevEnabled.0 Integer 1;
	MtaConfigDelimiter 255;
}
"#;

struct Setup {
    dir: tempfile::TempDir,
    view: Arc<DeviceView>,
    policy: Policy,
}

fn setup(enforce: bool) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("cm.j2"), CM_TEMPLATE).unwrap();
    std::fs::write(dir.path().join("mta.j2"), MTA_TEMPLATE).unwrap();
    let toml = format!(
        r#"
[tftp]
enforce = {enforce}
[vars]
site = "lab"
[[subscriber]]
mac = "00:15:cf:12:34:56"
vars = {{ max_cpe = 7 }}
[[class]]
name = "cm"
match = "docsis*"
boot_file = "cm/{{mac}}.cfg"
[class.config_file]
template = "cm.j2"
kind = "docsis"
shared_secret = "DOCSIS"
[[class]]
name = "mta"
match = "pktc*"
boot_file = "mta/{{MAC}}.bin"
[class.config_file]
template = "mta.j2"
kind = "mta"
mta_hash = "sha1"
"#
    );
    // Templates are named relative to the test's directory, as to a config file's.
    let mut policy = provd_config::testing::policy(&toml);
    policy.resolve_paths(dir.path());
    let view = Arc::new(DeviceView::new());
    Setup { dir, view, policy }
}

fn bind(view: &DeviceView, addr: Ipv4Addr) {
    view.bind(Binding {
        mac: MAC,
        addr,
        expires_at: NOW + 3600,
        class: Some(0),
        giaddr: CMTS,
        vendor_class: Some(b"docsis3.0"[..].into()),
        remote_id: None,
        circuit_id: None,
        restart: true,
    });
}

#[test]
fn a_bound_device_gets_its_file_with_valid_mics_and_its_facts() {
    let s = setup(true);
    let g = Generator::new(&s.policy, Arc::clone(&s.view)).unwrap();
    bind(&s.view, LEASED);
    let bytes = g
        .file("cm/0015cf123456.cfg", LEASED, NOW)
        .unwrap()
        .expect("a generated name");
    let v = provd_docsis::verify(&bytes, Some(b"DOCSIS")).unwrap();
    assert!(v.all_ok(), "{v}");
    let text = provd_docsis::text::print(&provd_docsis::decode(&bytes).unwrap().file);
    assert!(
        text.contains("00:15:cf:12:34:56 via 10.1.0.1 at 10.1.0.20 (docsis3.0) lab"),
        "{text}"
    );
    assert!(text.contains("MaxCPE 7;"), "subscriber vars: {text}");
    assert!(
        !provd_docsis::verify(&bytes, Some(b"other"))
            .unwrap()
            .all_ok(),
        "the CMTS MIC is keyed"
    );
    // Upper-case and a leading slash name the same file; a static name is not ours.
    assert_eq!(
        g.file("/cm/0015CF123456.cfg", LEASED, NOW)
            .unwrap()
            .as_deref(),
        Some(&bytes[..])
    );
    assert!(g.file("cm/golden.cfg", LEASED, NOW).unwrap().is_none());
    assert!(g.file("firmware.bin", LEASED, NOW).unwrap().is_none());
}

#[test]
fn one_lookup_gives_the_file_and_whose_it_is() {
    let s = setup(false);
    let g = Generator::new(&s.policy, Arc::clone(&s.view)).unwrap();
    let owner_of = |name: &str| {
        g.lookup(name, LEASED, NOW)
            .unwrap()
            .map(|f| (f.owner, f.bytes.len()))
    };
    let (mta, len) = owner_of("/mta/0015CF123456.bin").expect("an MTA name");
    assert_eq!(
        mta,
        Owner {
            class: "mta",
            mac: MAC,
            kind: ConfigFileKind::Mta
        }
    );
    assert!(len > 0);
    let (cm, _) = owner_of("cm/0015cf123456.cfg").expect("a CM name");
    assert_eq!(
        cm,
        Owner {
            class: "cm",
            mac: MAC,
            kind: ConfigFileKind::Docsis
        }
    );
    // Its bytes are the file's, as `file` gives them.
    assert_eq!(
        g.lookup("cm/0015cf123456.cfg", LEASED, NOW)
            .unwrap()
            .unwrap()
            .bytes,
        g.file("cm/0015cf123456.cfg", LEASED, NOW).unwrap().unwrap()
    );
    assert!(owner_of("cm/golden.cfg").is_none());
    assert!(owner_of("firmware.bin").is_none());
}

#[test]
fn mta_files_carry_their_hash() {
    let s = setup(false);
    let g = Generator::new(&s.policy, Arc::clone(&s.view)).unwrap();
    let bytes = g
        .file("mta/0015CF123456.bin", LEASED, NOW)
        .unwrap()
        .unwrap();
    assert_eq!(&bytes[..3], &[0xfe, 0x01, 0x01]);
    assert_eq!(&bytes[bytes.len() - 3..], &[0xfe, 0x01, 0xff]);
    let v = provd_docsis::verify(&bytes, None).unwrap();
    assert!(v.all_ok(), "{v}");
    assert!(v.to_string().contains("MtaHash"), "{v}");
}

#[test]
fn enforce_refuses_everyone_but_the_leased_address() {
    let s = setup(true);
    let g = Generator::new(&s.policy, Arc::clone(&s.view)).unwrap();
    let name = "cm/0015cf123456.cfg";
    let e = g.file(name, LEASED, NOW).unwrap_err();
    assert!(matches!(e, GenerateError::Refused { .. }), "no lease: {e}");
    assert!(e.to_string().contains("holds no lease"), "{e}");
    bind(&s.view, LEASED);
    let e = g.file(name, Ipv4Addr::new(10, 1, 0, 99), NOW).unwrap_err();
    assert!(
        e.to_string()
            .contains("leased 10.1.0.20, not the requester 10.1.0.99"),
        "{e}"
    );
    assert!(g.file(name, LEASED, NOW + 3600).is_err(), "expired lease");
    assert!(g.file(name, LEASED, NOW).unwrap().is_some());
}

#[test]
fn without_enforce_a_device_without_lease_renders_from_its_name() {
    let s = setup(false);
    let g = Generator::new(&s.policy, Arc::clone(&s.view)).unwrap();
    let bytes = g
        .file("cm/0015cf123456.cfg", Ipv4Addr::new(192, 0, 2, 1), NOW)
        .unwrap()
        .unwrap();
    let text = provd_docsis::text::print(&provd_docsis::decode(&bytes).unwrap().file);
    assert!(text.contains("00:15:cf:12:34:56 via  at  ()"), "{text}");
}

#[test]
fn binaries_are_cached_by_their_inputs() {
    let s = setup(true);
    let g = Generator::new(&s.policy, Arc::clone(&s.view)).unwrap();
    bind(&s.view, LEASED);
    let a = g.file("cm/0015cf123456.cfg", LEASED, NOW).unwrap().unwrap();
    let b = g.file("cm/0015cf123456.cfg", LEASED, NOW).unwrap().unwrap();
    assert!(
        Arc::ptr_eq(&a, &b),
        "a repeated request is served from the cache"
    );
    assert_eq!(g.cache_stats().0, 1);
    let moved = Ipv4Addr::new(10, 1, 0, 21);
    bind(&s.view, moved);
    let c = g.file("cm/0015cf123456.cfg", moved, NOW).unwrap().unwrap();
    assert_ne!(a, c, "a new address is a new input, hence a new file");
    assert_eq!(g.cache_stats().0, 2);
}

#[test]
fn an_edited_template_is_picked_up_and_a_broken_edit_keeps_the_last_good_one() {
    let s = setup(false);
    let g = Generator::new(&s.policy, Arc::clone(&s.view))
        .unwrap()
        .with_template_check(Duration::ZERO);
    let name = "cm/0015cf123456.cfg";
    let first = g.file(name, LEASED, NOW).unwrap().unwrap();
    let path = s.dir.path().join("cm.j2");
    // Modification times can be coarse: make sure the edit is seen as one.
    std::thread::sleep(Duration::from_millis(20));
    std::fs::write(
        &path,
        CM_TEMPLATE.replace("NetworkAccess 1", "NetworkAccess 0"),
    )
    .unwrap();
    bump_mtime(&path, 2);
    let second = g.file(name, LEASED, NOW).unwrap().unwrap();
    assert_ne!(first, second, "the edit is served");
    std::fs::write(&path, "Main { {{ broken ").unwrap();
    bump_mtime(&path, 4);
    let third = g.file(name, LEASED, NOW).unwrap().unwrap();
    assert_eq!(second, third, "a broken edit keeps the last good template");
}

fn bump_mtime(path: &std::path::Path, secs: u64) {
    let f = std::fs::File::options().write(true).open(path).unwrap();
    f.set_modified(std::time::SystemTime::now() + Duration::from_secs(secs))
        .unwrap();
}

#[test]
fn errors_name_the_template_and_line() {
    let s = setup(false);
    std::fs::write(
        s.dir.path().join("cm.j2"),
        "Main {\n  MaxCPE {{ vars.nope }};\n}\n",
    )
    .unwrap();
    let g = Generator::new(&s.policy, Arc::clone(&s.view)).unwrap();
    let e = g
        .file("cm/0015cf123456.cfg", LEASED, NOW)
        .unwrap_err()
        .to_string();
    assert!(e.contains("cm.j2 line 2"), "{e}");
    std::fs::write(
        s.dir.path().join("cm.j2"),
        "Main {\n  MaxCPE {% if %};\n}\n",
    )
    .unwrap();
    let e = Generator::new(&s.policy, Arc::clone(&s.view))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("cm.j2 line 2"),
        "a syntax error refuses the start: {e}"
    );
    std::fs::write(s.dir.path().join("cm.j2"), "Main {\n  NoSuchThing 1;\n}\n").unwrap();
    let g = Generator::new(&s.policy, Arc::clone(&s.view)).unwrap();
    let e = g
        .file("cm/0015cf123456.cfg", LEASED, NOW)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("cm.j2: the rendered text does not compile"),
        "{e}"
    );
    assert!(e.contains("NoSuchThing"), "{e}");
}

fn class_of_service(name: &str, max_cpe: i64, version: u64) -> provd_store::ClassOfService {
    provd_store::ClassOfService {
        spec: provd_store::ClassSpec {
            name: name.into(),
            description: None,
            vars: serde_json::json!({ "max_cpe": max_cpe })
                .as_object()
                .unwrap()
                .clone(),
        },
        version,
        created_at: 0,
        updated_at: 0,
    }
}

fn device(cos: &str, vars: serde_json::Value, version: u64) -> provd_store::Device {
    provd_store::Device {
        spec: provd_store::DeviceSpec {
            mac: provd_store::Mac(MAC),
            kind: provd_store::DeviceKind::Cm,
            class_of_service: Some(cos.into()),
            vars: vars.as_object().unwrap().clone(),
            ..Default::default()
        },
        version,
        created_at: 0,
        updated_at: 0,
    }
}

#[test]
fn the_next_fetch_follows_the_catalog_tier_class_and_device_vars() {
    use provd_devices::catalog::Catalog;
    let s = setup(true);
    let catalog = Arc::new(Catalog::new());
    let g = Generator::new(&s.policy, Arc::clone(&s.view))
        .unwrap()
        .with_catalog(Arc::clone(&catalog));
    bind(&s.view, LEASED);
    let max_cpe = || {
        let bytes = g.file("cm/0015cf123456.cfg", LEASED, NOW).unwrap().unwrap();
        let text = provd_docsis::text::print(&provd_docsis::decode(&bytes).unwrap().file);
        text.lines()
            .find_map(|l| {
                l.trim()
                    .strip_prefix("MaxCPE ")?
                    .strip_suffix(';')?
                    .parse::<u32>()
                    .ok()
            })
            .unwrap_or_else(|| panic!("no MaxCPE in {text}"))
    };
    assert_eq!(
        max_cpe(),
        1,
        "unknown to the catalog: the template's default"
    );
    catalog.put_class(&class_of_service("gold", 16, 1));
    catalog.put_class(&class_of_service("silver", 2, 1));
    catalog.put_device(&device("gold", serde_json::json!({}), 1));
    assert_eq!(max_cpe(), 16, "the class of service's variable");
    catalog.put_device(&device("silver", serde_json::json!({}), 2));
    assert_eq!(max_cpe(), 2, "a tier change is the next fetch");
    catalog.put_class(&class_of_service("silver", 3, 2));
    assert_eq!(max_cpe(), 3, "a class change reaches its devices");
    catalog.put_device(&device("silver", serde_json::json!({ "max_cpe": 5 }), 3));
    assert_eq!(max_cpe(), 5, "the device's own variable wins");
    // Deleted and made again: version 1 again, other values; not the cached file of before.
    catalog.put_device(&device("gold", serde_json::json!({}), 1));
    assert_eq!(max_cpe(), 16);
}

/// `MaxCPE N` of a CM file's decoded text.
fn max_cpe_of(bytes: &[u8]) -> u32 {
    let text = provd_docsis::text::print(&provd_docsis::decode(bytes).unwrap().file);
    text.lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("MaxCPE ")?
                .strip_suffix(';')?
                .parse::<u32>()
                .ok()
        })
        .unwrap_or_else(|| panic!("no MaxCPE in {text}"))
}

/// A template version saved in the store is what the next fetch renders, without a restart
/// and never the cached render of the version before; a rollback (the old text saved again)
/// gives the old file back, byte for byte.
#[test]
fn a_saved_template_version_is_the_next_fetch_never_the_cached_one() {
    use provd_devices::catalog::{Catalog, Following};
    use provd_store::{Actor, Expect, Store, TemplateKind, TemplateVersionSpec};
    let s = setup(true);
    let raw = provd_store::open(&provd_store::Location::Embedded(
        s.dir.path().join("store.db"),
    ))
    .unwrap();
    let catalog = Arc::new(Catalog::load(&*raw).unwrap());
    let api = Following::new(Arc::clone(&raw), Arc::clone(&catalog));
    let g = Generator::new(&s.policy, Arc::clone(&s.view))
        .unwrap()
        .with_catalog(Arc::clone(&catalog));
    assert_eq!(
        g.class_of_template("cm.j2"),
        Some(("cm", ConfigFileKind::Docsis))
    );
    assert_eq!(g.template_of_class("mta"), Some("mta.j2"));
    bind(&s.view, LEASED);
    let fetch = || g.file("cm/0015cf123456.cfg", LEASED, NOW).unwrap().unwrap();
    let v0 = fetch();
    assert_eq!(
        max_cpe_of(&v0),
        1,
        "the file; a device the store does not know"
    );
    let save = |text: &str| {
        api.put_template_version(
            &TemplateVersionSpec {
                name: "cm.j2".into(),
                kind: TemplateKind::Cm,
                text: text.into(),
                comment: None,
            },
            Expect::Any,
            &Actor::Cli("test".into()),
        )
        .unwrap()
        .info
        .version
    };
    assert_eq!(
        save(&CM_TEMPLATE.replace("subscriber.max_cpe if subscriber else 1", "42")),
        1
    );
    let v1 = fetch();
    assert_eq!(max_cpe_of(&v1), 42, "the stored version, at the next fetch");
    assert_eq!(fetch(), v1, "then from the cache");
    assert_eq!(save(CM_TEMPLATE), 2);
    assert_eq!(fetch(), v0, "the file's text saved again: the same bytes");
    // The MTA class has no stored version: still its file.
    assert!(g.file("mta/0015CF123456.bin", LEASED, NOW).is_ok());
    // Saved by another writer (another node): seen when the catalog catches up.
    raw.put_template_version(
        &TemplateVersionSpec {
            name: "cm.j2".into(),
            kind: TemplateKind::Cm,
            text: CM_TEMPLATE.replace("subscriber.max_cpe if subscriber else 1", "3"),
            comment: None,
        },
        Expect::Any,
        &Actor::System,
    )
    .unwrap();
    assert_eq!(max_cpe_of(&fetch()), 1);
    catalog.catch_up(&*raw).unwrap();
    assert_eq!(max_cpe_of(&fetch()), 3);
    assert_eq!(
        max_cpe_of(&g.render_for("cm", &MAC, None).unwrap()),
        3,
        "render_for (provd cfg, previews) reads the same version"
    );
}

/// Trial renders report each stage's problem where it is: the syntax error's line and
/// column, the undefined variable's line (strict, as served), the compiler's complaint;
/// `class_of_service` renders as if the device had that tier.
#[test]
fn trial_renders_report_where_the_template_is_wrong() {
    use provd_devices::catalog::Catalog;
    use provd_files::{Problem, Stage, Trial, TrialError};
    let s = setup(true);
    let catalog = Arc::new(Catalog::new());
    catalog.put_class(&class_of_service("gold", 16, 1));
    catalog.put_class(&class_of_service("silver", 2, 1));
    catalog.put_device(&device("silver", serde_json::json!({}), 1));
    let g = Generator::new(&s.policy, Arc::clone(&s.view))
        .unwrap()
        .with_catalog(Arc::clone(&catalog));
    let trial = |text: Option<&str>, cos: Option<&str>| {
        g.render_trial(
            "cm",
            &MAC,
            None,
            &Trial {
                text,
                class_of_service: cos,
            },
        )
    };
    assert_eq!(max_cpe_of(&trial(None, None).unwrap()), 2, "as served");
    assert_eq!(
        max_cpe_of(&trial(None, Some("gold")).unwrap()),
        16,
        "as gold"
    );
    assert_eq!(
        trial(None, Some("bronze")),
        Err(TrialError::NoClassOfService("bronze".into()))
    );
    let one = |r: Result<Vec<u8>, TrialError>| match r {
        Err(TrialError::Template(p)) if p.len() == 1 => p.into_iter().next().unwrap(),
        other => panic!("want one problem, got {other:?}"),
    };
    let p = one(trial(Some("Main {\n  NetworkAccess {{ 1 + }};\n}\n"), None));
    assert_eq!(
        (p.stage, p.line, p.column),
        (Stage::Syntax, Some(2), Some(24)),
        "{p:?}"
    );
    let p = one(trial(
        Some("Main {\n\tNetworkAccess 1;\n\tMaxCPE {{ subscriber.max_cpee }};\n}\n"),
        None,
    ));
    assert_eq!((p.stage, p.line), (Stage::Render, Some(3)), "{p:?}");
    assert!(
        p.column.is_some() && p.message.contains("undefined"),
        "{p:?}"
    );
    let p: Problem = one(trial(Some("Main {\n\tNoSuchThing 1;\n}\n"), None));
    assert_eq!((p.stage, p.line), (Stage::Compile, None), "{p:?}");
    assert!(p.message.contains("NoSuchThing"), "{p:?}");
    // An MTA file's text for a docsis class: the compiler says so.
    let p = one(trial(Some(MTA_TEMPLATE), None));
    assert!(p.message.contains("MTA"), "{p:?}");
    assert!(matches!(
        g.render_trial("nope", &MAC, None, &Trial::default()),
        Err(TrialError::NoClass(_))
    ));
}

/// Templates are named by their file name; two different files of the same name by their
/// paths.
#[test]
fn template_names_are_file_names_unless_two_collide() {
    let s = setup(true);
    let names = provd_files::template_names(&s.policy);
    let got: Vec<&str> = names.values().map(String::as_str).collect();
    assert_eq!(got, vec!["cm.j2", "mta.j2"]);
    let mut p = s.policy.clone();
    let other = s.dir.path().join("sub/cm.j2");
    if let Some(f) = p.classes[1].config_file.as_mut() {
        f.template = other.clone();
    }
    let names = provd_files::template_names(&p);
    assert_eq!(names[&other], other.display().to_string());
    assert_eq!(
        names[&s.dir.path().join("cm.j2")],
        s.dir.path().join("cm.j2").display().to_string()
    );
}

/// check-config's render check: the good templates pass; one reading a variable no render sets,
/// one that parses but fails for every device (a filter on the wrong type) and one whose text
/// does not compile are each named with their class; one that needs a store record is left to
/// the devices that have one.
#[test]
fn check_renders_each_template_and_names_what_cannot() {
    let s = setup(true);
    let g = Generator::new(&s.policy, Arc::clone(&s.view)).unwrap();
    assert_eq!(g.check(), Vec::<String>::new());

    let cases = [
        (
            "Main {\n\tMaxCPE {{ max_cpe }};\n}\n",
            "reads max_cpe, which no render sets",
        ),
        (
            "Main {\n\tMaxCPE {{ vars.site + 1 }};\n}\n",
            "does not render for a probe device",
        ),
        (
            "Main {\n\tNoSuchTlv {{ mac }};\n}\n",
            "does not compile for a probe device",
        ),
    ];
    for (text, want) in cases {
        std::fs::write(s.dir.path().join("cm.j2"), text).unwrap();
        let g = Generator::new(&s.policy, Arc::clone(&s.view)).unwrap();
        let problems = g.check();
        assert_eq!(problems.len(), 1, "{text}: {problems:?}");
        assert!(
            problems[0].starts_with("class \"cm\": template ") && problems[0].contains(want),
            "{text}: {problems:?}"
        );
    }
    // Needs the device's record: unguarded, it fails for a device the store does not know,
    // which is the template's choice; its variables are still checked.
    std::fs::write(
        s.dir.path().join("cm.j2"),
        "Main {\n\tMaxCPE {{ subscriber.max_cpe }};\n}\n",
    )
    .unwrap();
    let g = Generator::new(&s.policy, Arc::clone(&s.view)).unwrap();
    assert_eq!(g.check(), Vec::<String>::new());
}
