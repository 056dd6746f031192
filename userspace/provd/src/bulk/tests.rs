//! `import kea-leases` end to end in-process: a Kea memfile into a fresh lease directory, read
//! back by replay and restored by the engine as `provd serve` does; and its refusal while a
//! server owns the directory.

use std::net::Ipv4Addr;

use provd_engine::Shared;

use super::*;

const NOW: u32 = 1_800_000_000;

fn policy(lease_dir: &Path) -> Policy {
    let toml = format!(
        r#"
[server]
lease_dir = "{}"

[[shared_network]]
name = "lan"
relays = ["10.0.0.1"]
  [[shared_network.subnet]]
  prefix = "10.0.0.0/24"
  routers = ["10.0.0.1"]
    [[shared_network.subnet.pool]]
    start = "10.0.0.100"
    end = "10.0.0.149"
    [[shared_network.subnet.pool]]
    start = "10.0.0.150"
    end = "10.0.0.199"

[[reservation]]
mac = "00:15:cf:00:00:09"
address = "10.0.0.9"
"#,
        lease_dir.display()
    );
    Policy::from_toml_str(&toml).unwrap_or_else(|e| panic!("{e}"))
}

const KEA: &str = "\
address,hwaddr,client_id,valid_lifetime,expire,subnet_id,fqdn_fwd,fqdn_rev,hostname,state,user_context,pool_id
10.0.0.100,00:15:cf:00:00:01,,3600,1800001000,1,0,0,,0,,0
10.0.0.160,00:15:cf:00:00:02,01:00:15:cf:00:00:02,86400,1800050000,1,0,0,cm2,0,,0
10.0.0.101,00:15:cf:00:00:03,,3600,1799999000,1,0,0,,0,,0
10.0.0.102,00:15:cf:00:00:04,,3600,1800001000,1,0,0,,1,,0
10.0.0.103,00:15:cf:00:00:05,,3600,1800001000,1,0,0,,0,,0
10.0.0.103,00:15:cf:00:00:05,,0,1800001000,1,0,0,,0,,0
10.0.0.104,00:15:cf:00:00:06,,3600,1800001000,1,0,0,,0,,0
10.0.0.104,00:15:cf:00:00:06,,3600,1800002000,1,0,0,,0,,0
10.0.1.5,00:15:cf:00:00:07,,3600,1800001000,1,0,0,,0,,0
10.0.0.105,00:15:cf:00:00:zz,,3600,1800001000,1,0,0,,0,,0
10.0.0.9,00:15:cf:00:00:09,,3600,1800001000,1,0,0,,0,,0
10.0.0.106,00:15:cf:00:00:0a,,3600,1800001000,1,0,0,,0,,0
10.0.0.107,00:15:cf:00:00:0a,,3600,1800003000,1,0,0,,0,,0
10.0.0.10,00:15:cf:00:00:0b,,3600,1800001000,1,0,0,,0,,0
";

fn hw(last: u8) -> ClientKey {
    ClientKey::from_hw(1, &[0, 0x15, 0xcf, 0, 0, last])
}

#[test]
fn kea_leases_land_in_the_lease_log_and_serve_restores_them() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("leases");
    let p = policy(&dir);
    let mut bad = Vec::new();
    let s = import_kea_leases(&p, KEA.as_bytes(), NOW, &mut |e| bad.push(e.clone())).unwrap();

    let where_: Vec<_> = bad
        .iter()
        .map(|e| (e.line, e.field.clone().unwrap_or_default()))
        .collect();
    assert_eq!(
        where_,
        [
            (11, "hwaddr".to_owned()),
            (10, "address".to_owned()),
            (13, "address".to_owned()),
            (15, "address".to_owned()),
        ],
        "{bad:#?}"
    );
    assert!(
        bad[1].message.contains("10.0.1.5 is in no pool"),
        "{}",
        bad[1]
    );
    assert!(
        bad[2].message.contains("10.0.0.107"),
        "the later lease is kept: {}",
        bad[2]
    );
    assert!(
        bad[3].message.contains("10.0.0.10 is in no pool"),
        "{}",
        bad[3]
    );
    assert_eq!(
        s,
        KeaSummary {
            imported: 5,
            expired: 1,
            not_bound: 1,
            superseded: 3,
            bad: 4,
        }
    );

    // What `provd serve` reads at start.
    let replay = provd_lease::replay(&dir).unwrap();
    let mut got: Vec<_> = replay
        .records
        .iter()
        .map(|r| (r.lease.addr, r.key.clone(), r.lease))
        .collect();
    got.sort_by_key(|g| g.0);
    let lease = |addr: [u8; 4], last: u8, expires_at: u32, pool: u16| Lease {
        addr: Ipv4Addr::from(addr),
        expires_at,
        state: LeaseState::Bound,
        chaddr: [0, 0x15, 0xcf, 0, 0, last],
        pool,
    };
    let want = [
        (
            hw(9),
            lease([10, 0, 0, 9], 9, 1_800_001_000, provd_engine::NO_POOL),
        ),
        (hw(1), lease([10, 0, 0, 100], 1, 1_800_001_000, 0)),
        (hw(6), lease([10, 0, 0, 104], 6, 1_800_002_000, 0)),
        (hw(10), lease([10, 0, 0, 107], 10, 1_800_003_000, 0)),
        (
            ClientKey::from_client_id(&[1, 0, 0x15, 0xcf, 0, 0, 2]),
            lease([10, 0, 0, 160], 2, 1_800_050_000, 1),
        ),
    ];
    assert_eq!(got.len(), want.len(), "{got:#?}");
    for ((addr, key, l), (wkey, wl)) in got.iter().zip(&want) {
        assert_eq!((addr, key, l), (&wl.addr, wkey, wl));
    }

    // The engine restores every one of them as bound, claiming each address in its pool.
    let shared = Shared::new(p).unwrap();
    let (tables, stats) = shared.restore(replay.records, NOW, 2);
    assert_eq!(stats.bound, 5, "{stats:?}");
    assert_eq!(tables.iter().map(|t| t.iter().count()).sum::<usize>(), 5);
    assert!(
        !shared
            .pool(0)
            .unwrap()
            .try_claim(Ipv4Addr::new(10, 0, 0, 100)),
        "claimed"
    );
    assert!(
        !shared
            .pool(1)
            .unwrap()
            .try_claim(Ipv4Addr::new(10, 0, 0, 160)),
        "claimed"
    );
    assert!(
        shared
            .pool(0)
            .unwrap()
            .try_claim(Ipv4Addr::new(10, 0, 0, 101)),
        "expired: free"
    );
}

#[test]
fn kea_import_refuses_while_a_server_owns_the_lease_dir() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("leases");
    std::fs::create_dir_all(&dir).unwrap();
    let p = policy(&dir);
    let _server =
        std::os::unix::net::UnixListener::bind(provd_role::query::socket_path(&dir)).unwrap();
    let e = import_kea_leases(&p, KEA.as_bytes(), NOW, &mut |_| {}).unwrap_err();
    assert!(e.to_string().contains("provd is running"), "{e}");
    assert!(
        provd_lease::replay(&dir).unwrap().records.is_empty(),
        "nothing written"
    );
    drop(_server);
    // A socket file nobody answers on is what a crashed server leaves: no reason to refuse.
    let s = import_kea_leases(&p, KEA.as_bytes(), NOW, &mut |_| {}).unwrap();
    assert_eq!(s.imported, 5);
}

#[test]
fn kea_import_on_top_of_existing_leases_wins_for_the_same_client() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("leases");
    let p = policy(&dir);
    // A lease provd wrote before: the same client on another address.
    let mut log = LeaseLog::open(&dir, 1, 1).unwrap();
    log.append(
        &hw(1),
        &Lease {
            addr: Ipv4Addr::new(10, 0, 0, 140),
            expires_at: NOW + 50,
            state: LeaseState::Bound,
            chaddr: [0, 0x15, 0xcf, 0, 0, 1],
            pool: 0,
        },
    );
    log.commit().unwrap();
    drop(log);
    import_kea_leases(&p, KEA.as_bytes(), NOW, &mut |_| {}).unwrap();
    let replay = provd_lease::replay(&dir).unwrap();
    let r = replay.records.iter().find(|r| r.key == hw(1)).unwrap();
    assert_eq!(r.lease.addr, Ipv4Addr::new(10, 0, 0, 100));
}

/// `import devices` and `export devices` against the embedded store (a real SQLite file): a
/// row the store refuses lands alone as a bad row while its chunk's others land, a second run
/// changes nothing, and the export reads back as what landed.
#[test]
fn devices_import_lands_good_rows_around_bad_ones_and_exports_them_back() {
    use provd_store::{Expect, SubscriberSpec};

    let tmp = tempfile::tempdir().unwrap();
    let store = provd_store::open(&provd_store::Location::Embedded(
        tmp.path().join("store.db"),
    ))
    .unwrap();
    let who = Actor::Cli("test".into());
    store
        .put_subscriber(
            &SubscriberSpec {
                id: "acct-1".into(),
                ..SubscriberSpec::default()
            },
            Expect::Any,
            &who,
        )
        .unwrap();
    let mut csv = String::from("mac,type,subscriber,var.speed\n");
    for i in 1..=10u8 {
        let sub = match i {
            5 => "nobody",
            _ => "acct-1",
        };
        let mac = match i {
            7 => "00:15:cf:00:00:zz".to_owned(),
            _ => format!("00:15:cf:00:00:{i:02x}"),
        };
        csv.push_str(&format!("{mac},cm,{sub},{i}\n"));
    }
    let run = || {
        let mut bad = Vec::new();
        let rows = import::parse_devices_csv_numbered(csv.as_bytes());
        let s = import_devices_by(
            4,
            &*store,
            rows,
            &who,
            &mut |e| bad.push(e.clone()),
            &Progress::hidden(),
        )
        .unwrap();
        (s, bad)
    };
    let (s, bad) = run();
    assert_eq!(
        (
            s.counts.created,
            s.counts.updated,
            s.counts.unchanged,
            s.bad
        ),
        (8, 0, 0, 2),
        "{bad:#?}"
    );
    let mut at: Vec<_> = bad.iter().map(|e| (e.line, e.field.clone())).collect();
    at.sort();
    assert_eq!(
        at,
        [(6, Some("subscriber".into())), (8, Some("mac".into()))],
        "{bad:#?}"
    );

    let (s, _) = run();
    assert_eq!(
        (s.counts.created, s.counts.unchanged, s.bad),
        (0, 8, 2),
        "idempotent"
    );

    for format in [Format::Jsonl, Format::Csv] {
        let mut out = Vec::new();
        assert_eq!(export_devices(&*store, format, &mut out).unwrap(), 8);
        let back: Vec<DeviceSpec> = match format {
            Format::Jsonl => import::parse_devices_jsonl(&out[..])
                .map(Result::unwrap)
                .collect(),
            Format::Csv => import::parse_devices_csv(&out[..])
                .map(Result::unwrap)
                .collect(),
        };
        let macs: Vec<u8> = back.iter().map(|d| d.mac.0[5]).collect();
        assert_eq!(macs, [1, 2, 3, 4, 6, 8, 9, 10], "{format:?}");
        assert_eq!(back[0].subscriber.as_deref(), Some("acct-1"));
        assert_eq!(back[0].vars.get("speed").and_then(|v| v.as_i64()), Some(1));
    }
}
