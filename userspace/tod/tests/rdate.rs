//! `rdate` (Debian package rdate, the OpenBSD client) against the server on loopback, over TCP
//! and UDP (`-u`), printing only (`-p`). Its `-o` picks the port, so this runs on a free port
//! as any user; a second test uses the real port 37 when it is free and we may bind it. Each
//! test prints a note and passes when rdate is not installed (`apt-get install rdate`).

use std::net::Ipv4Addr;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use provd_tod::{TodHandle, TodSettings, spawn};

fn installed(binary: &str) -> bool {
    let found = std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|p| p.join(binary).is_file()));
    if !found {
        eprintln!("note: {binary} is not installed; skipping (apt-get install rdate)");
    }
    found
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Unix seconds of what rdate -p prints: `Sun Nov 22 05:38:14 UTC 2026` (rdate 1.11), or the
/// ctime form `rdate: [host]\tSun Nov 22 05:21:28 2026` of other versions; UTC because the test
/// runs it with TZ=UTC.
fn parse_ctime(line: &str) -> Option<i64> {
    let when = line.rsplit('\t').next()?;
    let f: Vec<&str> = when.split_whitespace().collect();
    let (mon, day, hms, year) = match f.as_slice() {
        [_, mon, day, hms, year] | [_, mon, day, hms, "UTC", year] => (mon, day, hms, year),
        _ => return None,
    };
    let months = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let m = months.iter().position(|x| x == mon)? as i64 + 1;
    let d: i64 = day.parse().ok()?;
    let y: i64 = year.parse().ok()?;
    let t: Vec<i64> = hms
        .split(':')
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    let [h, mi, s] = t.as_slice() else {
        return None;
    };
    // Days from civil (H. Hinnant).
    let yy = if m <= 2 { y - 1 } else { y };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    Some(days * 86_400 + h * 3600 + mi * 60 + s)
}

fn rdate(port: Option<u16>, udp: bool) {
    let mut cmd = Command::new("timeout");
    cmd.args(["20", "rdate", "-p"]).env("TZ", "UTC");
    if udp {
        cmd.arg("-u");
    }
    if let Some(p) = port {
        cmd.args(["-o", &p.to_string()]);
    }
    let out = cmd.arg("127.0.0.1").output().expect("rdate runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "rdate (udp: {udp}) failed: {out:?}");
    let t = parse_ctime(stdout.trim()).unwrap_or_else(|| panic!("rdate printed {stdout:?}"));
    let diff = (t - now()).abs();
    assert!(diff <= 2, "rdate says {stdout:?}, {diff} s from our clock");
    eprintln!("rdate (udp: {udp}): {}", stdout.trim());
}

/// One answer each way, counted just after it was sent (rdate may have exited before).
fn counted(h: &TodHandle) {
    let until = Instant::now() + Duration::from_secs(5);
    while (h.counters().tcp_replies, h.counters().udp_replies) != (1, 1) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(10));
    }
    let c = h.counters();
    assert_eq!((c.tcp_replies, c.udp_replies), (1, 1), "{c:?}");
}

fn serve(port: u16) -> std::io::Result<TodHandle> {
    spawn(
        TodSettings {
            bind: Ipv4Addr::LOCALHOST,
            port,
            ..TodSettings::default()
        },
        Arc::new(AtomicBool::new(false)),
    )
}

#[test]
fn ctime_lines_parse() {
    assert_eq!(
        parse_ctime("rdate: [127.0.0.1]\tSun Nov 22 05:21:28 2026"),
        Some(1_795_324_888)
    );
    assert_eq!(parse_ctime("Thu Jan  1 00:00:00 1970"), Some(0));
    assert_eq!(
        parse_ctime("Sun Nov 22 05:21:28 UTC 2026"),
        Some(1_795_324_888)
    );
    assert_eq!(parse_ctime("Sun Nov 22 05:21:28 CET 2026"), None);
}

#[test]
fn rdate_over_tcp_and_udp_on_a_free_port() {
    if !installed("rdate") {
        return;
    }
    let h = serve(0).unwrap();
    let port = h.tcp_addr().unwrap().port();
    assert_eq!(h.udp_addr().unwrap().port(), port);
    rdate(Some(port), false);
    rdate(Some(port), true);
    counted(&h);
    h.shutdown();
    h.join().unwrap();
}

#[test]
fn rdate_on_port_37() {
    if !installed("rdate") {
        return;
    }
    let h = match serve(37) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("note: cannot serve on 127.0.0.1:37 ({e}: not root, or in use); skipping");
            return;
        }
    };
    rdate(None, false);
    rdate(None, true);
    counted(&h);
    h.shutdown();
    h.join().unwrap();
}
