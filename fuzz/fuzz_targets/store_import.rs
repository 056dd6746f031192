//! The bulk import parsers (`provd import`, `POST /devices:import`) on arbitrary bytes. The
//! first byte picks the format: devices CSV, devices JSON lines, or a Kea lease4 memfile CSV.
//! Every row is consumed; none may panic. Errors carry a message and a line no earlier than the
//! row before. Devices that parse (from CSV or JSONL) export as CSV and as JSONL and import back
//! as the same devices, in order (CSV cannot tell an empty text field from an absent one, so for
//! it those compare as absent). Kea rows fold like an append log: the last row per address
//! wins, a zero lifetime deletes, and the result is sorted by address.

#![no_main]

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use libfuzzer_sys::fuzz_target;
use provd_store::import::{
    KeaLease, RowError, collapse_kea_leases, parse_devices_csv, parse_devices_csv_numbered,
    parse_devices_jsonl, parse_devices_jsonl_numbered, parse_kea_leases_csv, write_devices_csv,
    write_devices_jsonl,
};
use provd_store::{DeviceSpec, check_vars};

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    match pick % 3 {
        0 => devices_csv(body),
        1 => devices_jsonl(body),
        _ => kea(body),
    }
});

/// Lines never go backwards and every error says something.
fn check_lines<T>(rows: &[Result<(u64, T), RowError>]) {
    let mut last = 0u64;
    for r in rows {
        let line = match r {
            Ok((line, _)) => *line,
            Err(e) => {
                assert!(!e.message.is_empty(), "error without a message: {e:?}");
                e.line
            }
        };
        assert!(line >= last, "line {line} after line {last}");
        last = line;
    }
}

fn devices_csv(body: &[u8]) {
    let rows: Vec<_> = parse_devices_csv_numbered(body).collect();
    check_lines(&rows);
    // The plain form is the numbered form without the numbers.
    let plain: Vec<_> = parse_devices_csv(body).collect();
    assert_eq!(plain.len(), rows.len());
    for (p, n) in plain.iter().zip(&rows) {
        match (p, n) {
            (Ok(a), Ok((_, b))) => assert_eq!(a, b),
            (Err(a), Err(b)) => assert_eq!(a, b),
            _ => panic!("numbered and plain parses differ: {p:?} vs {n:?}"),
        }
    }
    let devices: Vec<DeviceSpec> = rows
        .into_iter()
        .filter_map(Result::ok)
        .map(|(_, d)| d)
        .collect();
    round_trip(&devices);
}

fn devices_jsonl(body: &[u8]) {
    let rows: Vec<_> = parse_devices_jsonl_numbered(body).collect();
    check_lines(&rows);
    let plain: Vec<_> = parse_devices_jsonl(body).collect();
    assert_eq!(plain.len(), rows.len());
    let mut devices = Vec::new();
    for r in rows {
        if let Ok((_, d)) = r {
            // Each device alone: serialise, parse back, equal.
            let json = serde_json::to_vec(&d).expect("a DeviceSpec serialises");
            let back: DeviceSpec = serde_json::from_slice(&json)
                .unwrap_or_else(|e| panic!("{d:?} re-serialised as {json:?} does not parse: {e}"));
            assert_eq!(back, d, "JSON round trip changed the device");
            devices.push(d);
        }
    }
    round_trip(&devices);
}

/// Export as JSONL and as CSV, import back: the same devices in the same order.
fn round_trip(devices: &[DeviceSpec]) {
    for d in devices {
        assert!(
            check_vars("vars", &d.vars).is_ok(),
            "parser let bad vars through: {d:?}"
        );
    }

    let mut jsonl = Vec::new();
    write_devices_jsonl(&mut jsonl, devices).expect("writing to a Vec");
    let back: Vec<DeviceSpec> = parse_devices_jsonl(&jsonl[..])
        .map(|r| r.unwrap_or_else(|e| panic!("exported JSONL does not import: {e}")))
        .collect();
    assert_eq!(
        back, devices,
        "JSONL export then import changed the devices"
    );

    let mut csv = Vec::new();
    write_devices_csv(&mut csv, devices).expect("writing to a Vec");
    let back: Vec<DeviceSpec> = parse_devices_csv(&csv[..])
        .map(|r| {
            r.unwrap_or_else(|e| {
                panic!(
                    "exported CSV does not import: {e}\n{}",
                    String::from_utf8_lossy(&csv)
                )
            })
        })
        .collect();
    let want: Vec<DeviceSpec> = devices.iter().cloned().map(empty_is_absent).collect();
    assert_eq!(
        back,
        want,
        "CSV export then import changed the devices\n{}",
        String::from_utf8_lossy(&csv)
    );
}

/// A devices CSV writes an absent value as an empty cell and reads an empty cell as absent.
fn empty_is_absent(mut d: DeviceSpec) -> DeviceSpec {
    for f in [
        &mut d.subscriber,
        &mut d.class_of_service,
        &mut d.serial,
        &mut d.device_id,
        &mut d.duid,
    ] {
        if f.as_deref() == Some("") {
            *f = None;
        }
    }
    d
}

fn kea(body: &[u8]) {
    let mut last = 0u64;
    let mut leases: Vec<KeaLease> = Vec::new();
    for r in parse_kea_leases_csv(body) {
        let line = match &r {
            Ok(l) => l.line,
            Err(e) => {
                assert!(!e.message.is_empty(), "error without a message: {e:?}");
                e.line
            }
        };
        assert!(line >= last, "line {line} after line {last}");
        last = line;
        if let Ok(l) = r {
            if let Some(c) = &l.client_id {
                assert!(!c.is_empty(), "an empty client_id cell is absent: {l:?}");
            }
            leases.push(l);
        }
    }
    // The fold, written the obvious way.
    let mut want: BTreeMap<Ipv4Addr, KeaLease> = BTreeMap::new();
    for l in &leases {
        if l.valid_lifetime == 0 {
            want.remove(&l.addr);
        } else {
            want.insert(l.addr, l.clone());
        }
    }
    let got = collapse_kea_leases(leases);
    let want: Vec<KeaLease> = want.into_values().collect();
    assert_eq!(got, want, "collapse_kea_leases");
    for l in &got {
        let _ = l.is_live(0);
        let _ = l.is_live(u32::MAX);
        assert!(!l.is_live(u32::MAX), "live at the end of time: {l:?}");
    }
}
