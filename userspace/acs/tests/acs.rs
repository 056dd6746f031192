//! The ACS state machine end to end without sockets: whole CWMP sessions (provd-cwmp's
//! `Session`) over provd-acs's driver — presets applied once, campaign concurrency and tallies,
//! task answers filed, abandoned requests retried, unknown devices refused, and the snapshot
//! round trip.

use provd_acs::{Acs, SessionDevice, TaskState};
use provd_cwmp::{
    DeviceId, Envelope, EventStruct, Fault, Inform, Limits, ParameterValue, Rpc, Session,
    TransferComplete, TransferFault, Version,
};

fn acs(extra: &str) -> Acs {
    let toml = format!("[acs]\nauth = \"none\"\n{extra}\n");
    Acs::new(provd_config::AcsSettings::from_toml(&toml).unwrap_or_else(|e| panic!("{e}")))
}

fn inform(serial: &str, events: &[&str], sw: &str) -> Vec<u8> {
    let i = Inform {
        device_id: DeviceId {
            manufacturer: "M".into(),
            oui: "0015CF".into(),
            product_class: "PC".into(),
            serial_number: serial.into(),
        },
        events: events
            .iter()
            .map(|c| EventStruct {
                code: (*c).into(),
                command_key: String::new(),
            })
            .collect(),
        max_envelopes: 1,
        current_time: "2026-01-01T00:00:00Z".into(),
        retry_count: 0,
        parameters: vec![ParameterValue::new(
            "Device.DeviceInfo.SoftwareVersion",
            sw,
            "string",
        )],
    };
    Envelope::new(Version::V1_2, Some("1".into()), Rpc::Inform(Box::new(i)))
        .to_xml()
        .into_bytes()
}

/// A device's side of a session: answers each request with `answer`; returns the requests.
fn session(
    acs: &Acs,
    serial: &str,
    events: &[&str],
    sw: &str,
    before_empty: Option<Rpc>,
    mut answer: impl FnMut(&Rpc) -> Rpc,
) -> Vec<Rpc> {
    let mut dev = SessionDevice::default();
    let mut s = Session::new(0, 0, Limits::default());
    let mut d = acs.driver(&mut dev, 7547, "/");
    let r = s.handle(1, &inform(serial, events, sw), &mut d);
    assert_eq!(r.status, 200, "{}", r.body);
    if let Some(req) = before_empty {
        let r = s.handle(
            1,
            Envelope::new(Version::V1_2, Some("c".into()), req)
                .to_xml()
                .as_bytes(),
            &mut d,
        );
        assert_eq!(r.status, 200);
    }
    let mut seen = Vec::new();
    let mut r = s.handle(1, b"", &mut d);
    while r.status == 200 {
        let env = Envelope::parse(r.body.as_bytes(), &Limits::default()).unwrap();
        let a = answer(&env.body);
        seen.push(env.body);
        r = s.handle(
            1,
            Envelope::new(Version::V1_2, env.id, a).to_xml().as_bytes(),
            &mut d,
        );
    }
    assert_eq!(r.status, 204);
    seen
}

fn ok(rpc: &Rpc) -> Rpc {
    match rpc {
        Rpc::SetParameterValues { .. } => Rpc::SetParameterValuesResponse { status: 0 },
        Rpc::Download(_) => Rpc::DownloadResponse {
            status: 1,
            start_time: String::new(),
            complete_time: String::new(),
        },
        Rpc::GetParameterValues { names } => Rpc::GetParameterValuesResponse {
            parameters: names
                .iter()
                .map(|n| ParameterValue::new(n.clone(), "42", "unsignedInt"))
                .collect(),
        },
        Rpc::Reboot { .. } => Rpc::RebootResponse,
        other => panic!("unexpected {other:?}"),
    }
}

fn tc(key: &str, code: u32) -> Rpc {
    Rpc::TransferComplete(TransferComplete {
        command_key: key.into(),
        fault: TransferFault {
            code,
            string: String::new(),
        },
        start_time: String::new(),
        complete_time: String::new(),
    })
}

#[test]
fn a_preset_is_applied_once() {
    let a = acs(r#"
[[acs.preset]]
name = "p"
serial = "A*"
events = ["1 BOOT", "2 PERIODIC"]
periodic_inform_interval = 300
set = { "Device.X.Enable" = true }
"#);
    let first = session(&a, "A1", &["1 BOOT"], "1", None, ok);
    assert_eq!(first.len(), 1);
    let Rpc::SetParameterValues {
        parameters,
        parameter_key,
    } = &first[0]
    else {
        panic!()
    };
    assert_eq!(parameter_key, "preset:p");
    // What the API lists: the preset as configured.
    let listed = &a.presets_json()[0];
    assert_eq!(listed["name"], "p");
    assert_eq!(listed["match"]["serial"], "A*");
    assert_eq!(listed["match"]["events"][1], "2 PERIODIC");
    assert_eq!(listed["periodic_inform_interval"], 300);
    assert_eq!(listed["set"][0]["name"], "Device.X.Enable");
    assert_eq!(listed["set"][0]["type"], "boolean");
    let names: Vec<_> = parameters.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "Device.X.Enable",
            "Device.ManagementServer.PeriodicInformEnable",
            "Device.ManagementServer.PeriodicInformInterval"
        ]
    );
    assert!(
        session(&a, "A1", &["2 PERIODIC"], "1", None, ok).is_empty(),
        "idempotent"
    );
    // Not matched: another serial, or no matching event.
    assert!(session(&a, "B1", &["1 BOOT"], "1", None, ok).is_empty());
    assert!(session(&a, "A2", &["6 CONNECTION REQUEST"], "1", None, ok).is_empty());
    // A bootstrap forgets what was known: the preset applies again.
    assert_eq!(
        session(&a, "A1", &["0 BOOTSTRAP", "1 BOOT"], "1", None, ok).len(),
        1
    );
}

#[test]
fn campaigns_respect_their_limit_and_count_outcomes() {
    let a = acs(r#"
[[acs.campaign]]
name = "c"
version = "2"
url = "http://fw/2.img"
max_concurrent = 1
"#);
    let dl = |r: &[Rpc]| {
        r.iter()
            .any(|r| matches!(r, Rpc::Download(d) if d.command_key == "campaign:c"))
    };
    assert!(dl(&session(&a, "D1", &["1 BOOT"], "1", None, ok)));
    assert!(
        !dl(&session(&a, "D2", &["1 BOOT"], "1", None, ok)),
        "the one slot is taken"
    );
    assert!(
        !dl(&session(&a, "D3", &["1 BOOT"], "2", None, ok)),
        "already on the version"
    );
    // D1 reports success: the slot frees and D2 gets its download.
    session(
        &a,
        "D1",
        &["1 BOOT", "7 TRANSFER COMPLETE"],
        "2",
        Some(tc("campaign:c", 0)),
        ok,
    );
    assert!(dl(&session(&a, "D2", &["2 PERIODIC"], "1", None, ok)));
    session(
        &a,
        "D2",
        &["1 BOOT", "7 TRANSFER COMPLETE"],
        "1",
        Some(tc("campaign:c", 9016)),
        ok,
    );
    let c = &a.campaigns_json()[0];
    assert_eq!(
        (
            c["succeeded"].as_u64(),
            c["failed"].as_u64(),
            c["in_progress"].as_u64(),
            c["peak"].as_u64()
        ),
        (Some(1), Some(1), Some(0), Some(1))
    );
    // Done devices are not asked again.
    assert!(!dl(&session(&a, "D1", &["2 PERIODIC"], "1", None, ok)));
    assert!(!dl(&session(&a, "D2", &["2 PERIODIC"], "1", None, ok)));
}

#[test]
fn a_cpe_fault_to_a_campaign_download_counts_as_failed() {
    let a = acs("[[acs.campaign]]\nname = \"c\"\nversion = \"2\"\nurl = \"http://fw/2\"\n");
    session(&a, "F1", &["1 BOOT"], "1", None, |_| {
        Rpc::Fault(Fault::new(9013))
    });
    assert_eq!(a.campaigns_json()[0]["failed"], 1);
}

#[test]
fn task_answers_are_filed_and_abandoned_requests_retried() {
    let a = acs("");
    session(&a, "T1", &["1 BOOT"], "1", None, ok);
    let k = a.store.parse_display("0015CF-PC-T1").unwrap();
    let t = a
        .queue_for(
            5,
            &k,
            Rpc::GetParameterValues {
                names: vec!["Device.X".into()],
            },
        )
        .unwrap();
    session(&a, "T1", &["6 CONNECTION REQUEST"], "1", None, ok);
    let info = a.task(t).unwrap();
    assert_eq!(info.state, TaskState::Done);
    assert_eq!(info.result.unwrap()["Device.X"], "42");
    let d = a.device_json(&k).unwrap();
    assert_eq!(d["parameters"]["Device.X"]["value"], "42");
    assert_eq!(d["parameters"]["Device.X"]["type"], "unsignedInt");

    // A session that ends with the request unanswered: back to the queue, three tries at most.
    let t = a
        .queue_for(
            5,
            &k,
            Rpc::Reboot {
                command_key: "r".into(),
            },
        )
        .unwrap();
    for attempt in 1..=3 {
        let mut dev = SessionDevice::default();
        let mut s = Session::new(0, 0, Limits::default());
        let mut d = a.driver(&mut dev, 7547, "/");
        s.handle(1, &inform("T1", &["2 PERIODIC"], "1"), &mut d);
        let r = s.handle(1, b"", &mut d);
        assert!(r.body.contains("cwmp:Reboot"), "attempt {attempt}");
        s.close(2, &mut d);
    }
    assert_eq!(a.task(t).unwrap().state, TaskState::Failed);
    assert!(session(&a, "T1", &["2 PERIODIC"], "1", None, ok).is_empty());
}

#[test]
fn unknown_devices_are_refused_without_auto_register() {
    let a = acs("auto_register = false");
    let mut dev = SessionDevice::default();
    let mut s = Session::new(0, 0, Limits::default());
    let mut d = a.driver(&mut dev, 7547, "/");
    let r = s.handle(1, &inform("U1", &["1 BOOT"], "1"), &mut d);
    assert!(r.body.contains("<FaultCode>8001</FaultCode>"), "{}", r.body);
    assert!(a.store.is_empty());
}

#[test]
fn snapshot_round_trip() {
    let cfg = "[[acs.campaign]]\nname = \"c\"\nversion = \"2\"\nurl = \"http://fw/2\"\nmax_concurrent = 5\n";
    let a = acs(cfg);
    session(&a, "S1", &["1 BOOT"], "1", None, ok);
    session(&a, "S2", &["1 BOOT"], "1", None, ok);
    session(&a, "S2", &["1 BOOT"], "2", Some(tc("campaign:c", 0)), ok);
    let k = a.store.parse_display("0015CF-PC-S1").unwrap();
    a.queue_for(
        9,
        &k,
        Rpc::SetParameterValues {
            parameters: vec![ParameterValue::new("Device.Y", "a<b", "string")],
            parameter_key: "k".into(),
        },
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(provd_acs::persist::save(&a, dir.path()).unwrap(), 2);
    let b = acs(cfg);
    let r = provd_acs::persist::load(&b, dir.path()).unwrap();
    assert_eq!((r.devices, r.tasks, r.bad_lines), (2, 1, 0));
    for key in ["succeeded", "failed", "in_progress"] {
        assert_eq!(
            b.campaigns_json()[0][key],
            a.campaigns_json()[0][key],
            "{key}"
        );
    }
    let d = b
        .device_json(&b.store.parse_display("0015CF-PC-S1").unwrap())
        .unwrap();
    assert_eq!(d["queued"][0]["method"], "SetParameterValues");
    assert_eq!(d["software_version"], "1");
    // The restored task goes out as it was queued.
    let sent = session(&b, "S1", &["2 PERIODIC"], "1", None, ok);
    assert_eq!(
        sent,
        [Rpc::SetParameterValues {
            parameters: vec![ParameterValue::new("Device.Y", "a<b", "string")],
            parameter_key: "k".into(),
        }]
    );
}

/// The API's tasks are journaled before they are acknowledged: a crash between snapshots (the
/// ACS dropped without a save) loses none of the queued ones and runs none of the finished
/// ones again, also for a device first seen after the snapshot.
#[test]
fn api_tasks_survive_a_crash_between_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    let reboot = |ck: &str| Rpc::Reboot {
        command_key: ck.into(),
    };
    let gpv = Rpc::GetParameterValues {
        names: vec!["Device.X".into()],
    };
    let a = acs("");
    provd_acs::persist::load(&a, dir.path()).unwrap();
    session(&a, "J1", &["1 BOOT"], "1", None, ok);
    provd_acs::persist::save(&a, dir.path()).unwrap();
    let j1 = a.store.parse_display("0015CF-PC-J1").unwrap();
    a.queue_for(1, &j1, reboot("finished")).unwrap();
    let ids = a
        .queue_filtered(1, &provd_acs::Filter::default(), &gpv, usize::MAX)
        .unwrap();
    assert_eq!(ids.len(), 1);
    // Both run, and are marked done in the journal.
    assert_eq!(
        session(&a, "J1", &["6 CONNECTION REQUEST"], "1", None, ok),
        [reboot("finished"), gpv.clone()]
    );
    a.queue_for(2, &j1, reboot("pending")).unwrap();
    session(&a, "J2", &["1 BOOT"], "1", None, ok);
    let j2 = a.store.parse_display("0015CF-PC-J2").unwrap();
    a.queue_for(2, &j2, reboot("new-device")).unwrap();
    drop(a);

    let b = acs("");
    let r = provd_acs::persist::load(&b, dir.path()).unwrap();
    assert_eq!(
        (r.devices, r.tasks, r.journal_tasks, r.bad_lines),
        (1, 2, 2, 0),
        "{r:?}"
    );
    assert_eq!(b.store.len(), 2, "J2 kept a bare record for its task");
    assert_eq!(
        session(&b, "J1", &["2 PERIODIC"], "1", None, ok),
        [reboot("pending")]
    );
    assert_eq!(
        session(&b, "J2", &["2 PERIODIC"], "1", None, ok),
        [reboot("new-device")]
    );

    // A snapshot takes in what the journal held; what ran is not queued again after it.
    b.queue_for(3, &j1, reboot("in-snapshot")).unwrap();
    provd_acs::persist::save(&b, dir.path()).unwrap();
    assert!(!dir.path().join("tasks.journal.old").exists());
    drop(b);
    let c = acs("");
    let r = provd_acs::persist::load(&c, dir.path()).unwrap();
    assert_eq!((r.devices, r.tasks, r.journal_tasks), (2, 1, 0), "{r:?}");
    assert_eq!(
        session(&c, "J1", &["2 PERIODIC"], "1", None, ok),
        [reboot("in-snapshot")]
    );
    assert!(session(&c, "J2", &["2 PERIODIC"], "1", None, ok).is_empty());
}

#[test]
fn value_change_and_alarm_events_are_counted_and_kept() {
    let a = acs("events_per_device = 4");
    session(
        &a,
        "E1",
        &["4 VALUE CHANGE", "X 0015CF ALARM_RAISED"],
        "1",
        None,
        ok,
    );
    let c = a.counters_json();
    assert_eq!(
        (c["value_changes"].as_u64(), c["alarms"].as_u64()),
        (Some(1), Some(1))
    );
    let k = a.store.parse_display("0015CF-PC-E1").unwrap();
    let codes = |a: &Acs| -> Vec<String> {
        a.device_json(&k).unwrap()["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["code"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(codes(&a), ["4 VALUE CHANGE", "X 0015CF ALARM_RAISED"]);
    // The history is bounded: the oldest entries go.
    session(&a, "E1", &["2 PERIODIC"], "1", None, ok);
    session(&a, "E1", &["2 PERIODIC"], "1", None, ok);
    session(&a, "E1", &["6 CONNECTION REQUEST"], "1", None, ok);
    assert_eq!(
        codes(&a),
        [
            "X 0015CF ALARM_RAISED",
            "2 PERIODIC",
            "2 PERIODIC",
            "6 CONNECTION REQUEST"
        ]
    );
}

#[test]
fn credentials_bound_to_a_device_are_refused_for_another() {
    let a =
        acs("[[acs.credential]]\nusername = \"u\"\npassword = \"p\"\ndevice = \"0015CF-PC-B1\"\n");
    let run = |serial: &str, user: Option<&str>| {
        let mut dev = SessionDevice {
            key: None,
            username: user.map(str::to_owned),
        };
        let mut s = Session::new(0, 0, Limits::default());
        let mut d = a.driver(&mut dev, 7547, "/");
        s.handle(1, &inform(serial, &["1 BOOT"], "1"), &mut d).body
    };
    assert!(run("B1", Some("u")).contains("InformResponse"));
    assert!(run("B2", Some("u")).contains("<FaultCode>8001</FaultCode>"));
    assert!(run("B2", Some("someone-else")).contains("InformResponse"));
    assert!(
        a.store
            .parse_display("0015CF-PC-B2")
            .is_some_and(|k| a.store.devices.contains_key(&k))
    );
}

/// New devices at `now` (unix seconds): how many of `n` Informs of unknown serials were
/// accepted, and the faults of the rest.
fn register(acs: &Acs, now: u64, first: usize, n: usize) -> (usize, Vec<u32>) {
    let mut ok = 0;
    let mut faults = Vec::new();
    for i in first..first + n {
        let mut dev = SessionDevice::default();
        let mut s = Session::new(now, 0, Limits::default());
        let mut d = acs.driver(&mut dev, 7547, "/");
        let r = s.handle(
            now,
            &inform(&format!("NEW{i}"), &["0 BOOTSTRAP"], "1"),
            &mut d,
        );
        match Envelope::parse(r.body.as_bytes(), &Limits::default())
            .unwrap()
            .body
        {
            Rpc::InformResponse { .. } => ok += 1,
            Rpc::Fault(f) => faults.push(f.code),
            o => panic!("{o:?}"),
        }
    }
    (ok, faults)
}

/// The review registered 2,000 made-up devices in 0.8 s with the shared credentials.
#[test]
fn new_devices_are_held_to_their_rate_and_cap() {
    let acs = acs("new_devices_per_sec = 10\nnew_devices_burst = 50\nmax_devices = 80");
    let (ok, faults) = register(&acs, 1_000, 0, 2_000);
    assert_eq!(ok, 50);
    assert!(faults.iter().all(|&f| f == 8005), "{faults:?}");
    // Two seconds later: 20 more tokens.
    let (ok, _) = register(&acs, 1_002, 2_000, 100);
    assert_eq!(ok, 20);
    // Much later the bucket is full again, but the cap holds: 80 devices at most.
    let (ok, faults) = register(&acs, 5_000, 3_000, 100);
    assert_eq!(ok, 10);
    assert!(faults.iter().all(|&f| f == 8001), "{faults:?}");
    assert_eq!(acs.store.len(), 80);
    let c = &acs.counters;
    assert_eq!(
        c.new_devices_refused
            .load(std::sync::atomic::Ordering::Relaxed),
        1950 + 80 + 90
    );
    // A known device still informs under the cap.
    assert_eq!(register(&acs, 5_000, 0, 1).0, 1);
}
