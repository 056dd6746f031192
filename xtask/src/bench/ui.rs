//! `cargo xtask bench ui [--devices N] [--smoke]`: how long each page of the web UI takes with
//! N devices and N live leases in the store (default 1,000,000; the quality bar is 300 ms per
//! page at 1 M devices, issue 14).
//!
//! provd runs alone in a fresh network namespace on the embedded store, filled as `bench api`
//! fills it (`provd import devices` and `provd import kea-leases`, provd not serving), then
//! serves; the bench logs in to `/ui/login` with an admin token and fetches every page
//! `REPEAT` times with curl over one keep-alive connection (loopback: the time is the
//! server's). Pages that take a device or an address take random ones of the N. Any answer
//! but 200 is an error.
//!
//! Prints per page `PAGE ui path=… p50_ms=… p99_ms=… max_ms=…`, then
//! `RESULT ui devices=N pages=P repeat=R worst_page=… worst_p99_ms=… over_300ms=K errors=E`
//! (E of the P×R fetches), ending in `degraded=P%` when errors exceed 0.1 % of the fetches
//! (see `faults.rs`).
//! `--smoke`: 5,000 devices, 3 fetches a page; fails on any error.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use provd_rig::{Netns, Provd, cmd};

use super::Args;
use super::api::{TOML, lease_addr, mac_of, wait_api_line, write_devices, write_kea_leases};
use super::faults::Faults;

const BASE: &str = "http://127.0.0.1:8080";
/// The quality bar per page, server side, ms.
const BAR_MS: f64 = 300.0;

pub fn run(args: &Args) -> Result<()> {
    let (devices, repeat) = if args.smoke {
        (args.devices.unwrap_or(5_000), 3)
    } else {
        (args.devices.unwrap_or(1_000_000), 20)
    };
    ensure!(devices > 0, "--devices must be at least 1");
    let provd_bin = super::tools::release_provd(args.provd_bin.as_deref())?;
    let dir = tempfile::Builder::new()
        .prefix("provd-bench-ui-")
        .tempdir()?;
    let d = dir.path();
    let ns = Netns::new("bui")?;
    let mut provd = Provd::new(&provd_bin, d)
        .ready_timeout(Duration::from_secs(300))
        .write_config(
            &TOML
                .replace("@DIR@", &d.display().to_string())
                .replace("@STORE@", "[store]\nbackend = \"embedded\"\n"),
        )?;
    provd.check_config()?;

    let file = d.join("devices.jsonl");
    write_devices(&file, 0x02, devices)?;
    let leases = d.join("kea-leases4.csv");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    write_kea_leases(&leases, devices, now)?;
    eprintln!("bench: ui: importing {devices} devices and {devices} leases");
    for (what, path) in [("devices", &file), ("kea-leases", &leases)] {
        let out = cmd::output_kept(
            ns.command(provd.bin())
                .args(["import", what])
                .arg(path)
                .arg("--config")
                .arg(provd.config()),
            Duration::from_secs(1800),
            d,
            what,
        )?;
        ensure!(
            out.status.success(),
            "provd import {what}: {}",
            provd_rig::child::tail(&cmd::text(&out), 10)
        );
    }
    provd.start(&ns)?;
    let api = wait_api_line(&mut provd)?;
    eprintln!("bench: ui: {api} ready with {devices} devices");
    let token = super::api::token(&ns, &provd, d, "bench-ui", "admin")?;
    let session = login(&ns, &token)?;

    // Random devices and addresses of the N (a fixed seed: the same pages each run).
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut pick = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        u32::try_from(x % u64::from(devices)).unwrap_or(0)
    };
    let (a, b, c) = (pick(), pick(), pick());
    let dotted = mac_of(0x02, b).replace(':', "");
    let cisco = format!("{}.{}.{}", &dotted[0..4], &dotted[4..8], &dotted[8..12]);
    let pages: Vec<(String, String)> = vec![
        ("dashboard".into(), "/ui/".into()),
        ("dashboard-live".into(), "/ui/dashboard/live".into()),
        ("devices".into(), "/ui/devices".into()),
        ("devices-type-cm".into(), "/ui/devices?type=cm".into()),
        ("devices-online".into(), "/ui/devices?state=online".into()),
        ("devices-offline".into(), "/ui/devices?state=offline".into()),
        (
            "devices-page-deep".into(),
            format!("/ui/devices?after={}", mac_of(0x02, c)),
        ),
        ("device".into(), format!("/ui/devices/{}", mac_of(0x02, a))),
        ("search-mac".into(), format!("/ui/search?q={cisco}")),
        (
            "search-ip".into(),
            format!("/ui/search?q={}", lease_addr(c)),
        ),
        ("search-serial".into(), format!("/ui/search?q=SN{a:08}")),
        ("search-nothing".into(), "/ui/search?q=no-such-thing".into()),
        ("subscribers".into(), "/ui/subscribers".into()),
        ("classes".into(), "/ui/classes".into()),
        ("leases".into(), "/ui/leases".into()),
        ("leases-relay".into(), "/ui/leases?relay=127.0.0.2".into()),
        (
            "leases-mac".into(),
            format!("/ui/leases?mac={}", mac_of(0x02, b)),
        ),
        ("mta".into(), "/ui/mta".into()),
        ("templates".into(), "/ui/templates".into()),
        ("jobs".into(), "/ui/jobs".into()),
        ("audit".into(), "/ui/audit".into()),
        ("tokens".into(), "/ui/tokens".into()),
        ("cwmp".into(), "/ui/cwmp".into()),
    ];
    let mut worst = (String::new(), 0.0f64);
    let mut over = 0;
    let mut errors = 0;
    for (name, path) in &pages {
        super::check_interrupted()?;
        let (times, errs) = fetch(&ns, &session, path, repeat)?;
        errors += errs;
        let q = |p: f64| quantile(&times, p);
        let (p50, p99, max) = (q(0.5), q(0.99), q(1.0));
        println!(
            "PAGE ui name={name} path={path} p50_ms={p50:.1} p99_ms={p99:.1} max_ms={max:.1} errors={errs}"
        );
        if p99 > worst.1 {
            worst = (name.clone(), p99);
        }
        if p99 > BAR_MS {
            over += 1;
        }
    }
    provd.check_alive()?;
    provd.stop()?;
    let line = result_line(devices, pages.len(), repeat, &worst, over, errors);
    println!("{line}");
    if args.smoke {
        ensure!(errors == 0, "errors in the smoke run: {line}");
    }
    Ok(())
}

/// `RESULT ui devices=N pages=P repeat=R worst_page=… worst_p99_ms=… over_300ms=K errors=E`,
/// and ` degraded=P%` when errors exceed 0.1 % of the P×R fetches.
fn result_line(
    devices: u32,
    pages: usize,
    repeat: usize,
    worst: &(String, f64),
    over: usize,
    errors: usize,
) -> String {
    format!(
        "RESULT ui devices={devices} pages={pages} repeat={repeat} worst_page={} \
         worst_p99_ms={:.1} over_{BAR_MS:.0}ms={over} errors={errors}{}",
        worst.0,
        worst.1,
        Faults::new(errors as u64, (pages * repeat) as u64).marker()
    )
}

/// Logs in: the session cookie's value.
fn login(ns: &Netns, token: &str) -> Result<String> {
    let out = cmd::run(
        ns.command("curl")
            .args(["-s", "-S", "-o", "/dev/null", "-D", "-", "--max-time", "30"])
            .args(["--data-urlencode", &format!("token={token}")])
            .arg(format!("{BASE}/ui/login")),
        Duration::from_secs(40),
    )?;
    out.lines()
        .find_map(|l| {
            let v = l.strip_prefix("set-cookie: provd_session=")?;
            Some(v.split(';').next()?.to_owned())
        })
        .with_context(|| format!("login answered no session cookie:\n{out}"))
}

/// `n` GETs of `path` over one keep-alive connection (redirects followed): each one's time
/// (ms), and the count of final answers other than 200.
fn fetch(ns: &Netns, session: &str, path: &str, n: usize) -> Result<(Vec<f64>, usize)> {
    let url = format!("{BASE}{path}");
    let mut c = ns.command("curl");
    // A search that finds one device answers with a redirect to its page: followed, and timed
    // as the whole (search and page).
    c.args(["-s", "-S", "-L", "--max-time", "120"])
        .args(["-b", &format!("provd_session={session}")])
        .args(["-w", "%{http_code} %{time_total}\\n"]);
    for _ in 0..n {
        c.args(["-o", "/dev/null", &url]);
    }
    let t = Instant::now();
    let out = cmd::run(&mut c, Duration::from_secs(600))?;
    let mut times = Vec::with_capacity(n);
    let mut errors = 0;
    for l in out.lines() {
        let mut it = l.split_whitespace();
        let (Some(code), Some(secs)) = (it.next(), it.next()) else {
            continue;
        };
        if code != "200" {
            errors += 1;
        }
        times.push(secs.parse::<f64>().unwrap_or(f64::NAN) * 1000.0);
    }
    if times.len() != n {
        bail!(
            "{path}: {} answers of {n} in {:.1} s: {out}",
            times.len(),
            t.elapsed().as_secs_f64()
        );
    }
    Ok((times, errors))
}

fn quantile(v: &[f64], q: f64) -> f64 {
    let mut s: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if s.is_empty() {
        return f64::NAN;
    }
    s.sort_by(f64::total_cmp);
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // an index into s
    let i = ((s.len() - 1) as f64 * q).round() as usize;
    s[i.min(s.len() - 1)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_result_over_failed_fetches_says_degraded() {
        let worst = ("devices".to_owned(), 120.04);
        assert_eq!(
            result_line(1000, 23, 20, &worst, 0, 1),
            "RESULT ui devices=1000 pages=23 repeat=20 worst_page=devices worst_p99_ms=120.0 \
             over_300ms=0 errors=1 degraded=0.22%"
        );
        assert_eq!(
            result_line(1000, 23, 20, &worst, 0, 0),
            "RESULT ui devices=1000 pages=23 repeat=20 worst_page=devices worst_p99_ms=120.0 \
             over_300ms=0 errors=0"
        );
    }
}
