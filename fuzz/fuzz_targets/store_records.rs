//! The store's record types as the REST API reads them: arbitrary bytes as JSON into
//! `DeviceSpec`, `SubscriberSpec`, `ClassSpec`, `ReservationSpec` (and the stored forms that
//! flatten them), `Vars`, and `Mac` from text. The first byte picks the type. Nothing panics;
//! what parses re-serialises to JSON that parses back equal (and serialises to the same bytes
//! again); `check_vars` is total on any variables. A MAC that parses prints as
//! `aa:bb:cc:dd:ee:ff` and reads back from that and from the other spellings it accepts.

#![no_main]

use std::fmt::Debug;

use libfuzzer_sys::fuzz_target;
use provd_store::{
    ClassOfService, ClassSpec, Device, DeviceSpec, Mac, Reservation, ReservationSpec, Subscriber,
    SubscriberSpec, Vars, check_vars,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    match pick % 10 {
        0 => {
            if let Some(d) = json::<DeviceSpec>(body) {
                let _ = check_vars("vars", &d.vars);
            }
        }
        1 => {
            if let Some(s) = json::<SubscriberSpec>(body) {
                let _ = check_vars("vars", &s.vars);
            }
        }
        2 => {
            if let Some(c) = json::<ClassSpec>(body) {
                let _ = check_vars("vars", &c.vars);
            }
        }
        3 => {
            json::<ReservationSpec>(body);
        }
        4 => {
            json::<Device>(body);
        }
        5 => {
            json::<Subscriber>(body);
        }
        6 => {
            json::<ClassOfService>(body);
        }
        7 => {
            json::<Reservation>(body);
        }
        8 => {
            if let Some(vars) = json::<Vars>(body) {
                let _ = check_vars("vars", &vars);
                // One variable at a time: whatever the whole map says, each entry is judged alone.
                let all_ok = check_vars("vars", &vars).is_ok();
                let mut each_ok = true;
                for (k, v) in &vars {
                    let mut one = Vars::new();
                    one.insert(k.clone(), v.clone());
                    each_ok &= check_vars("vars", &one).is_ok();
                }
                assert_eq!(
                    all_ok, each_ok,
                    "check_vars of the map vs of each entry: {vars:?}"
                );
            }
        }
        _ => mac(body),
    }
});

/// Parses `body` as a `T`; when it does, JSON out and back gives the same value and the same
/// bytes a second time.
fn json<T: Serialize + DeserializeOwned + PartialEq + Debug>(body: &[u8]) -> Option<T> {
    let v: T = serde_json::from_slice(body).ok()?;
    let once = serde_json::to_vec(&v).expect("a record serialises");
    let back: T = serde_json::from_slice(&once).unwrap_or_else(|e| {
        panic!(
            "{v:?} re-serialised as {} does not parse: {e}",
            String::from_utf8_lossy(&once)
        )
    });
    assert_eq!(
        back,
        v,
        "JSON round trip changed the record (via {})",
        String::from_utf8_lossy(&once)
    );
    let twice = serde_json::to_vec(&back).expect("a record serialises");
    assert_eq!(once, twice, "serialising twice differs");
    Some(v)
}

fn mac(body: &[u8]) {
    let text = String::from_utf8_lossy(body);
    // As JSON (a string), it reads exactly as from text.
    let as_json = serde_json::to_vec(&*text).expect("a string serialises");
    let from_json: Result<Mac, _> = serde_json::from_slice(&as_json);
    let Ok(m) = text.parse::<Mac>() else {
        assert!(
            from_json.is_err(),
            "JSON accepted {text:?} that FromStr refused"
        );
        return;
    };
    assert_eq!(
        from_json.ok(),
        Some(m),
        "JSON and FromStr disagree on {text:?}"
    );
    let b = m.0;
    let shown = m.to_string();
    assert_eq!(shown.len(), 17, "{shown:?}");
    assert_eq!(shown, shown.to_ascii_lowercase());
    let spellings = [
        shown.clone(),
        shown.to_ascii_uppercase().replace(':', "-"),
        format!(
            "{:02x}{:02x}.{:02x}{:02x}.{:02x}{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        ),
        shown.replace(':', ""),
    ];
    for s in spellings {
        assert_eq!(s.parse::<Mac>(), Ok(m), "{s:?} (from {text:?})");
    }
    let json = serde_json::to_string(&m).expect("a MAC serialises");
    assert_eq!(json, format!("\"{shown}\""));
    assert_eq!(serde_json::from_str::<Mac>(&json).ok(), Some(m));
}
