//! Each finished transfer lands in the facade's duration histogram, rendered by provd-metrics
//! as `/metrics` would show it. Its own test binary: it installs the process's global recorder.

mod common;

use common::{bytes, eventually, fetch, serve};
use provd_metrics::{BuildInfo, Extra};
use provd_role::RoleSet;
use provd_tftp::{Mode, Options};

#[test]
fn finished_transfers_are_in_the_duration_histogram() {
    let metrics = provd_metrics::install();
    let file = bytes(3000, 7);
    let s = serve(&[("cm/a.cfg", &file)], 1);
    for _ in 0..2 {
        let got = fetch(s.addr(), "cm/a.cfg", Mode::Octet, Options::default()).unwrap();
        assert_eq!(got.data, file);
    }
    // A refused request (no such file) is no transfer.
    assert!(fetch(s.addr(), "nope", Mode::Octet, Options::default()).is_err());
    let extra = Extra {
        store: None,
        build: BuildInfo::current(),
    };
    let series = r#"provd_tftp_transfer_duration_seconds_count{outcome="ok",direction="read"} 2"#;
    let rendered = || metrics.render(&RoleSet::default(), &extra);
    assert!(
        eventually(|| rendered().lines().any(|l| l == series)),
        "no {series} in\n{}",
        rendered()
    );
    assert!(
        !rendered().contains(r#"outcome="failed""#),
        "{}",
        rendered()
    );
}
