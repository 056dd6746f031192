//! A sequence of request bodies into one ACS session over a real device store, task queue,
//! presets and a campaign (provd-acs's driver), as the server would feed them.
//!
//! The input is split on the byte 0xFF into bodies; a body starting with 0xFE is replaced by a
//! well-formed Inform (its second byte picks the device and events) so sessions get past the
//! Inform quickly; one starting with 0xFD queues a task for that device first. Checked: no
//! panic; every answer is 200 with an envelope that parses, 204 empty, or 400 empty; the
//! session's state and the campaign tallies stay consistent.

#![no_main]

use libfuzzer_sys::fuzz_target;
use provd_acs::{Acs, SessionDevice};
use provd_cwmp::{
    DeviceId, Envelope, EventStruct, Inform, Limits, ParameterValue, Rpc, Session, Version,
};

fn settings() -> provd_config::AcsSettings {
    let toml = r#"
[acs]
auth = "none"
[[acs.preset]]
name = "p"
events = ["1 BOOT"]
periodic_inform_interval = 60
set = { "Device.X" = true }
[[acs.campaign]]
name = "c"
version = "2"
url = "http://fw/x"
max_concurrent = 1
"#;
    provd_config::AcsSettings::from_toml(toml).expect("the fuzz config is valid")
}

fn inform(b: u8) -> String {
    let events = match b % 4 {
        0 => vec!["0 BOOTSTRAP", "1 BOOT"],
        1 => vec!["2 PERIODIC"],
        2 => vec!["4 VALUE CHANGE", "X 0015CF ALARM"],
        _ => vec!["1 BOOT", "7 TRANSFER COMPLETE", "M Download"],
    };
    let i = Inform {
        device_id: DeviceId {
            manufacturer: "M".into(),
            oui: "0015CF".into(),
            product_class: "PC".into(),
            serial_number: format!("S{}", b >> 4),
        },
        events: events
            .into_iter()
            .map(|c| EventStruct {
                code: c.into(),
                command_key: "campaign:c".into(),
            })
            .collect(),
        max_envelopes: 1,
        current_time: String::new(),
        retry_count: 0,
        parameters: vec![
            ParameterValue::new("Device.DeviceInfo.SoftwareVersion", "1", "string"),
            ParameterValue::new("Device.FaultMgmt.CurrentAlarm.1.X", "1", "string"),
        ],
    };
    Envelope::new(Version(b % 3), Some("i".into()), Rpc::Inform(Box::new(i))).to_xml()
}

fuzz_target!(|data: &[u8]| {
    let acs = Acs::new(settings());
    let mut dev = SessionDevice::default();
    let mut session = Session::new(0, 1, Limits::default());
    for (n, body) in data.split(|b| *b == 0xFF).take(64).enumerate() {
        let now = n as u64;
        let owned;
        let body = match body.first() {
            Some(0xFE) => {
                owned = inform(body.get(1).copied().unwrap_or(0));
                owned.as_bytes()
            }
            Some(0xFD) => {
                if let Some(k) = acs.store.find_key("0015CF", "PC", &format!("S{}", body.get(1).copied().unwrap_or(0) >> 4)) {
                    let _ = acs.queue_for(0, &k, Rpc::GetParameterValues { names: vec!["Device.".into()] });
                }
                &body[1..]
            }
            _ => body,
        };
        let mut d = acs.driver(&mut dev, 7547, "/");
        let r = session.handle(now, body, &mut d);
        match r.status {
            200 => {
                Envelope::parse(r.body.as_bytes(), &Limits::default())
                    .unwrap_or_else(|e| panic!("our answer does not parse: {e}\n{}", r.body));
            }
            204 | 400 => assert!(r.body.is_empty()),
            s => panic!("status {s}"),
        }
    }
    let mut d = acs.driver(&mut dev, 7547, "/");
    session.close(99, &mut d);
    let c = &acs.campaigns[0];
    let load = |a: &std::sync::atomic::AtomicU32| a.load(std::sync::atomic::Ordering::Relaxed);
    assert!(load(&c.in_progress) <= 1, "the campaign's concurrency limit held");
    assert!(load(&c.peak) <= 1);
});
