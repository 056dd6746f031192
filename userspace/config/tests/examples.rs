//! Every shipped example config loads without error.

use std::path::PathBuf;

use provd_config::Policy;

fn example_files() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    files
}

#[test]
fn all_examples_load() {
    let files = example_files();
    assert!(
        files.len() >= 3,
        "expected at least 3 examples, found {files:?}"
    );
    for f in &files {
        match Policy::from_file(f) {
            Ok(p) => {
                let d = p.describe();
                assert!(d.contains("shared networks"), "{}: {d}", f.display());
            }
            Err(e) => panic!("{} does not load:\n{e}", f.display()),
        }
    }
}

fn load(name: &str) -> Policy {
    let f = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name);
    Policy::from_file(&f).unwrap_or_else(|e| panic!("{name}:\n{e}"))
}

#[test]
fn lab_example() {
    let p = load("lab.toml");
    assert_eq!(p.server.server_id, Some("198.18.0.1".parse().unwrap()));
    let direct = p
        .network_for_interface("198.18.0.1".parse().unwrap())
        .unwrap();
    assert_eq!(p.network(direct).name, "lab-direct");
    let relayed = p.network_for_relay("198.18.1.1".parse().unwrap()).unwrap();
    assert_eq!(p.network(relayed).name, "lab-relayed");
    let pools: Vec<_> = p
        .pools()
        .map(|x| (x.start.to_string(), x.end.to_string()))
        .collect();
    assert_eq!(
        pools,
        [
            ("198.18.0.100".to_owned(), "198.18.0.200".to_owned()),
            ("198.18.1.10".to_owned(), "198.18.1.250".to_owned())
        ]
    );
    let names: Vec<_> = p.classes.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["cm", "mta", "ata", "cpe"]);
    // The ATA's profile rule goes out in option 66; the CPEs are pointed at the lab's ACS.
    let ata = p.classify(Some(b"FlyingVoice FTA1101")).unwrap();
    let profile = p.class(ata).profile.as_ref().unwrap();
    assert_eq!(
        profile.profile_rule.as_deref(),
        Some("http://198.18.0.1/fv/$MA.cfg")
    );
    let cpe = p.classify(Some(b"dslforum.org")).unwrap();
    assert_eq!(
        p.class(cpe).acs_url.as_deref(),
        Some("http://198.18.0.1:7547/")
    );
    assert!(p.http.is_some() && p.acs.is_some());
}

#[test]
fn cmts_example() {
    let p = load("cmts.toml");
    assert_eq!(p.networks.len(), 2);
    let cm = p.classify(Some(b"docsis3.0:05330101")).unwrap();
    let mta = p.classify(Some(b"pktc1.5:051a0101")).unwrap();
    let cpe = p.classify(Some(b"erouter1.0")).unwrap();
    assert_eq!(p.class(cm).name, "cm");
    assert_eq!(p.class(mta).name, "mta");
    assert_eq!(p.class(cpe).name, "cpe");
    assert_eq!(p.classify(None), Some(cpe));
    let n = p.network_for_relay("10.1.16.1".parse().unwrap()).unwrap();
    let net = p.network(n);
    let allowed: Vec<_> = net.subnets.iter().filter(|s| s.allows(mta)).collect();
    assert_eq!(allowed.len(), 1);
    assert_eq!(allowed[0].to_string(), "10.1.16.0/21");
    assert_eq!(p.lease_time_for(cpe, &net.subnets[2]), 3600);
    assert_eq!(p.lease_time_for(cm, &net.subnets[0]), 604_800);
    let secure = p.class_id("mta-secure").unwrap();
    let r = p
        .reservation_by_mac(&[0x00, 0x15, 0xcf, 0x12, 0x34, 0x57])
        .unwrap();
    assert_eq!(r.class, Some(secure));
    assert!(p.reservation_by_remote_id(b"BIZ-000042").is_some());
    assert_eq!(p.classify(Some(b"nothing-matches-mta-secure")), Some(cpe));
}

#[test]
fn describe_summarises() {
    let d = load("cmts.toml").describe();
    for want in [
        "server id 10.0.0.2",
        "[0] cmts1-bundle1",
        "relays: 10.1.0.1, 10.1.16.1, 10.1.32.1",
        "subnet 10.1.16.0/21 mask 255.255.248.0 routers 10.1.16.1",
        "classes: mta, mta-secure",
        "pool #0 10.1.0.10-10.1.15.250: 4081 addresses",
        "option 122.6 flow HYBRID.2",
        "option 122.6 realm VOICE.EXAMPLE.NET (SECURE flow)",
        "option 43.1 ACS URL https://acs.example.net:7547/cwmp",
        "clients without option 60 get class cpe",
        "reservations: 3 (2 by MAC, 1 by remote id)",
        "total: 2 shared networks, 6 subnets, 7 pools",
    ] {
        assert!(d.contains(want), "missing {want:?} in:\n{d}");
    }
}

/// The provd configs the e2e suites and the bench harness render at run time are examples too:
/// load each with its placeholders filled the way its harness fills them, so a schema change
/// breaks here rather than minutes into an e2e or bench run.
#[test]
fn harness_templates_load() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let templates: [(&str, &[(&str, &str)]); 4] = [
        (
            "tests/e2e/provd.toml.in",
            &[
                ("@LEASE_DIR@", "/tmp/provd-e2e/leases"),
                ("@STORE_DB@", "/tmp/provd-e2e/store.db"),
            ],
        ),
        (
            "benches/peers/provd.toml",
            &[
                ("{{DIR}}", "/tmp/provd-bench"),
                ("{{LEASE_TIME}}", "3600"),
                ("{{POOL_START}}", "198.19.0.10"),
                ("{{POOL_END}}", "198.19.255.250"),
                ("{{POOL_NET}}", "198.19.0.0"),
                ("{{POOL_PREFIX_LEN}}", "16"),
                ("{{RELAY_IP}}", "198.18.2.1"),
                ("{{SERVER_IP}}", "198.18.2.2"),
                ("{{WORKERS}}", "2"),
                ("{{IO}}", "xdp"),
                ("{{IFACE}}", "pb1x0s"),
            ],
        ),
        (
            "tests/e2e/tftp/provd.toml.in",
            &[("@LEASE_DIR@", "/tmp/provd-e2e/leases")],
        ),
        (
            "benches/peers/tftp/provd.toml",
            &[
                ("{{DIR}}", "/tmp/provd-bench"),
                ("{{RELAY_IP}}", "198.18.2.1"),
                ("{{SERVER_IP}}", "198.18.2.2"),
                ("{{SHARED_SECRET}}", "DOCSIS"),
                ("{{WORKERS}}", "2"),
            ],
        ),
    ];
    for (path, fills) in templates {
        let mut text =
            std::fs::read_to_string(root.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
        for (placeholder, value) in fills {
            assert!(
                text.contains(placeholder),
                "{path} no longer uses {placeholder}"
            );
            text = text.replace(placeholder, value);
        }
        assert!(
            !text.contains("{{") && !text.contains('@'),
            "{path} has an unfilled placeholder"
        );
        if let Err(e) = Policy::from_toml_str(&text) {
            panic!("{path} does not load:\n{e}");
        }
    }
}
