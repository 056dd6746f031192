//! The import and GET figures for one backend (run by each backend's ignored bench test).

use std::time::{Duration, Instant};

use provd_store::*;

pub const DEVICES: u32 = 1_000_000;
pub const CHUNK: u32 = 10_000;

fn spec(n: u32) -> DeviceSpec {
    let mut vars = Vars::new();
    vars.insert("line1".into(), serde_json::json!(format!("+1555{n:07}")));
    DeviceSpec {
        mac: suite::mac(n),
        kind: if n.is_multiple_of(4) {
            DeviceKind::Mta
        } else {
            DeviceKind::Cm
        },
        subscriber: Some(format!("acct-{}", n % 1000)),
        class_of_service: Some(["gold", "silver", "bronze"][(n % 3) as usize].into()),
        serial: Some(format!("SN{n:08}")),
        vars,
        ..Default::default()
    }
}

pub fn run(s: &dyn Store) {
    let who = Actor::Cli("bench".into());
    for c in ["gold", "silver", "bronze"] {
        s.put_class(
            &ClassSpec {
                name: c.into(),
                ..Default::default()
            },
            Expect::Any,
            &who,
        )
        .unwrap();
    }
    for i in 0..1000 {
        s.put_subscriber(
            &SubscriberSpec {
                id: format!("acct-{i}"),
                ..Default::default()
            },
            Expect::Any,
            &who,
        )
        .unwrap();
    }
    let t0 = Instant::now();
    let mut total = ImportCounts::default();
    for start in (0..DEVICES).step_by(CHUNK as usize) {
        let batch: Vec<DeviceSpec> = (start..start + CHUNK).map(spec).collect();
        total += s.import_devices(&batch, &who).unwrap();
    }
    let el = t0.elapsed();
    assert_eq!(total.created, u64::from(DEVICES));
    println!(
        "RESULT store backend={} import_devices={} secs={:.1} rows_per_s={:.0}",
        s.backend().as_str(),
        DEVICES,
        el.as_secs_f64(),
        f64::from(DEVICES) / el.as_secs_f64()
    );
    // The same again: every row unchanged.
    let t0 = Instant::now();
    let mut again = ImportCounts::default();
    for start in (0..DEVICES / 10).step_by(CHUNK as usize) {
        let batch: Vec<DeviceSpec> = (start..start + CHUNK).map(spec).collect();
        again += s.import_devices(&batch, &who).unwrap();
    }
    assert_eq!(again.unchanged, u64::from(DEVICES / 10));
    println!(
        "RESULT store backend={} reimport_unchanged_rows_per_s={:.0}",
        s.backend().as_str(),
        f64::from(DEVICES / 10) / t0.elapsed().as_secs_f64()
    );

    // GET by MAC: 4 threads, each paced at 1,250/s (5,000/s in all), 5 s.
    let threads = 4u32;
    let per_thread = 6_250u32;
    let gap = Duration::from_micros(800);
    let mut lat: Vec<Duration> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..threads)
            .map(|t| {
                sc.spawn(move || {
                    let mut out = Vec::with_capacity(per_thread as usize);
                    let mut x = 0x9e37_79b9u32.wrapping_mul(t + 1);
                    let start = Instant::now();
                    for i in 0..per_thread {
                        let due = start + gap * i;
                        if let Some(w) = due.checked_duration_since(Instant::now()) {
                            std::thread::sleep(w);
                        }
                        x ^= x << 13;
                        x ^= x >> 17;
                        x ^= x << 5;
                        let t = Instant::now();
                        let d = s.get_device(suite::mac(x % DEVICES)).unwrap();
                        out.push(t.elapsed());
                        assert!(d.is_some());
                    }
                    out
                })
            })
            .collect();
        hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    lat.sort_unstable();
    let q = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)].as_secs_f64() * 1e3;
    println!(
        "RESULT store backend={} get_device_at_5000_per_s n={} p50_ms={:.3} p99_ms={:.3} max_ms={:.3}",
        s.backend().as_str(),
        lat.len(),
        q(0.5),
        q(0.99),
        q(1.0)
    );
}
