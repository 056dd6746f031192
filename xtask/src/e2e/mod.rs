//! End-to-end suites: real peers (dhclient, dhcrelay, perfdhcp, tcpdump) against a server in
//! network namespaces built by `provd-rig`, judged on what crosses the wire.
//!
//! `cargo xtask e2e dhcp [--subject provd|kea] [--only NAME[,NAME]]` prints one line per scenario,
//! `PASS name (secs)` or `FAIL name: reason`, then `N passed, M failed`, and exits non-zero if
//! anything failed. Details go to stderr; logs, configs and captures of the run stay in the run
//! directory when something failed (or with `--keep`). The crash test re-asks the server with
//! `provd-loadgen verify`, built into target/release with provd.
//!
//! `cargo xtask e2e tftp [--peer tftpd-hpa|atftpd]` runs the TFTP suite (tftp-hpa, atftp, curl,
//! dhclient, provd-loadgen tftp) the same way; scenarios a peer server cannot take part in (its
//! files are not generated per device) print `SKIP name: reason` and count neither way.
//!
//! `cargo xtask e2e fastpath` runs provd's XDP/AF_XDP, io_uring and sockets paths against
//! dhclient and provd-loadgen, the fallback when XDP is refused and raw bad frames (see
//! `fastpath.rs`).
//! `cargo xtask e2e http` runs the VoIP profile suite: curl, openssl (s_client, enc, the PKI),
//! xmllint and dhclient against provd's `[http]` role (see `http.rs`).
//! `cargo xtask e2e acs` runs the TR-069 ACS suite: provd-cpe-sim devices, curl and xmllint
//! against provd's `[acs]` role in a namespace of its own (see `acs.rs`).
//!
//! `cargo xtask e2e api [--backend embedded|postgres|both]` runs the control-plane suite: the
//! REST API, the store (embedded, then PostgreSQL 15 started by the suite), tier changes seen in
//! the next TFTP fetch, resets over SNMP, the timeline, audit, reloads, kill -9 (see `api.rs`).
//!
//! `cargo xtask e2e ui` runs the operators' web UI in headless Chromium (chromedriver, driven
//! with fantoccini from inside the server namespace) against provd with 100,000 devices in its
//! store: login, the dashboard under perfdhcp load, search, a tier change seen in the modem's
//! next TFTP fetch, a template error, read-only pages and forged POSTs, the audit page and every
//! other page; screenshots in target/ui-screens (see `ui.rs`).
//!
//! `cargo xtask e2e hardening` runs one scenario per finding of the security review: each
//! attack as the review ran it, and what provd now does about it (see `hardening/mod.rs`).
//!
//! `cargo xtask e2e package` builds the .deb (`cargo xtask package`), installs it, runs the
//! installed unit's command as its user with its capabilities against dhclient, watches
//! readiness and the watchdog over NOTIFY_SOCKET, scores the unit with `systemd-analyze` and
//! purges the package (see `package.rs`).
//!
//! `cargo xtask e2e storm` runs the boot storm at CI size against provd with every cable role,
//! once as is and once with provd SIGKILLed mid-storm, and holds provd to what the wire showed
//! (see `storm.rs`).
//!
//! `cargo xtask e2e mta` runs the PacketCable MTA suite: dhclient, snmpd, snmpinform, tftp-hpa,
//! logger and rdate as the MTA, against provd's `[mta]` role (see `mta.rs`).

mod acs;
pub(crate) mod api;
pub(crate) mod dhcp;
mod fastpath;
mod hardening;
pub(crate) mod http;
mod mta;
mod package;
mod storm;
mod subject;
pub(crate) mod tftp;
mod ui;

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};

pub use subject::Subject;

#[derive(clap::Args)]
pub struct Args {
    /// Which suite: dhcp, tftp, mta, fastpath, http, acs, api, ui, hardening, package or storm
    pub suite: String,
    /// The server under test: provd (default) or kea (the reference that proves the rig).
    #[arg(long, value_enum, default_value_t = Subject::Provd)]
    pub subject: Subject,
    /// Run only these scenarios (comma-separated or repeated).
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// The provd binary (default: target/release/provd, built first unless --no-build).
    #[arg(long)]
    pub provd: Option<PathBuf>,
    /// Do not build target/release/provd (for the provd subject) and
    /// target/release/provd-loadgen (the crash test's verifier) first.
    #[arg(long)]
    pub no_build: bool,
    /// perfdhcp exchange rate (per second) for the load scenarios [default: 4000 for provd,
    /// 2000 for Kea, which saturates near 2200/s on the 2-core machines].
    #[arg(long)]
    pub rate: Option<u32>,
    /// Seconds of perfdhcp load in the `perfdhcp` scenario (at least 10).
    #[arg(long, default_value_t = dhcp::DEFAULT_LOAD_SECS)]
    pub load_secs: u32,
    /// Keep the run directory even when everything passed.
    #[arg(long)]
    pub keep: bool,
    /// The provd-loadgen binary (default: target/release/provd-loadgen, built first unless
    /// --no-build).
    #[arg(long)]
    pub loadgen: Option<PathBuf>,
    /// tftp suite: serve with this peer instead of provd (tftpd-hpa or atftpd), which proves the
    /// scenarios and the rig.
    #[arg(long)]
    pub peer: Option<String>,
    /// api suite: the store backend(s) to run the scenarios against: embedded, postgres or both
    /// [default: both].
    #[arg(long)]
    pub backend: Option<String>,
    /// storm suite: the size instead of CI's: 100,000 modems and 100,000 eMTAs, provd
    /// killed 10 s in (a few minutes; not part of CI).
    #[arg(long)]
    pub full: bool,
}

/// A scenario's way of saying it does not apply to this run; printed as `SKIP name: reason`.
#[derive(Debug)]
pub struct Skip(pub String);

impl std::fmt::Display for Skip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Skip {}

/// A suite's scenarios: name and function, run in order.
pub type Scenarios<C> = Vec<(&'static str, fn(&C, &Path) -> Result<()>)>;

/// Everything a scenario needs to know about the run.
#[derive(Debug)]
pub struct Ctx {
    pub subject: Subject,
    pub provd: PathBuf,
    pub rate: u32,
    pub load_secs: u32,
    /// `provd-loadgen`, whose `verify` re-asks the server for leases in the crash test.
    pub loadgen: PathBuf,
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask sits in the repository root")
        .to_path_buf()
}

/// The suites, in the order `--help` and errors list them.
const SUITES: [&str; 11] = [
    "dhcp",
    "tftp",
    "mta",
    "fastpath",
    "http",
    "acs",
    "api",
    "ui",
    "hardening",
    "package",
    "storm",
];

pub fn run(args: Args) -> Result<()> {
    if !SUITES.contains(&args.suite.as_str()) {
        bail!(
            "unknown e2e suite {:?} (known: {})",
            args.suite,
            SUITES.join(", ")
        );
    }
    // SAFETY: geteuid(2) has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!("the e2e suites need root: they create network namespaces and veth pairs");
    }
    match args.suite.as_str() {
        "tftp" => tftp::run(&args),
        "mta" => mta::run(&args),
        "fastpath" => fastpath::run(&args),
        "http" => http::run(&args),
        "acs" => acs::run(&args),
        "api" => api::run(&args),
        "ui" => ui::run(&args),
        "hardening" => hardening::run(&args),
        "package" => package::run(&args),
        "storm" => storm::run(&args),
        _ => run_dhcp(&args),
    }
}

fn run_dhcp(args: &Args) -> Result<()> {
    if args.load_secs < 10 {
        bail!("--load-secs must be at least 10");
    }
    let scenarios = dhcp::scenarios();
    let mut tools = vec![
        "ip", "tcpdump", "dhclient", "dhcrelay", "perfdhcp", "sysctl",
    ];
    let mut build = vec!["provd-loadgen"];
    match args.subject {
        Subject::Provd => build.push("provd"),
        Subject::Kea => tools.push("kea-dhcp4"),
    }
    let bins = prepare(args, &scenarios, &tools, &build)?;
    let ctx = Ctx {
        subject: args.subject,
        provd: bins.provd,
        rate: args.rate.unwrap_or(match args.subject {
            Subject::Provd => dhcp::PROVD_RATE,
            Subject::Kea => dhcp::KEA_RATE,
        }),
        load_secs: args.load_secs,
        loadgen: bins.loadgen,
    };
    let about = format!("subject {:?}, perfdhcp rate {}/s", ctx.subject, ctx.rate);
    run_scenarios("dhcp", &about, &ctx, &scenarios, args)
}

/// The binaries a run uses: `--provd` / `--loadgen`, or the ones `cargo build --release` leaves
/// in target/release.
#[derive(Debug)]
pub struct Bins {
    pub root: PathBuf,
    pub provd: PathBuf,
    pub loadgen: PathBuf,
}

/// What every suite does before its scenarios, in this order: the `--only` names checked, the
/// peer `tools` found, the rig's signal handlers installed, namespaces of dead runs swept, and
/// the release packages in `build` built (none with `--no-build`; provd and provd-loadgen not
/// when given by path) and their binaries checked.
pub fn prepare<C>(
    args: &Args,
    scenarios: &Scenarios<C>,
    tools: &[&str],
    build: &[&str],
) -> Result<Bins> {
    check_only(scenarios, &args.only)?;
    require_tools(tools)?;
    provd_rig::cleanup::install_signal_handlers()?;
    for name in provd_rig::cleanup::sweep_stale() {
        eprintln!("e2e: deleted stale namespace {name} of a run that no longer exists");
    }
    binaries(args, build)
}

/// Builds the release packages in `build` (none with `--no-build`; provd and provd-loadgen not
/// when given by path) and checks that their binaries exist.
fn binaries(args: &Args, build: &[&str]) -> Result<Bins> {
    let root = repo_root();
    let bins = Bins {
        provd: args
            .provd
            .clone()
            .unwrap_or_else(|| root.join("target/release/provd")),
        loadgen: loadgen_path(args, &root),
        root,
    };
    for &package in build {
        let (given, bin) = match package {
            "provd" => (args.provd.is_some(), Some(&bins.provd)),
            "provd-loadgen" => (args.loadgen.is_some(), Some(&bins.loadgen)),
            _ => (false, None),
        };
        if !args.no_build && !given {
            subject::build_release(&bins.root, package)?;
        }
        if let Some(bin) = bin {
            ensure!(
                bin.is_file(),
                "{package} binary {} does not exist (build it with `cargo build --release -p \
                 {package}`)",
                bin.display()
            );
        }
    }
    Ok(bins)
}

/// A program's path: on PATH, then in the sbin directories (install-deps.sh puts atftpd in
/// /usr/local/sbin).
/// ISC dhcrelay in the relayed topology's relay namespace (`-a`: adds option 82), relaying
/// from the client link to provd's address, once it listens on port 67.
pub fn start_dhcrelay(topo: &provd_rig::Topology, dir: &Path) -> Result<provd_rig::Child> {
    use provd_rig::topo::{RELAY_DOWN_IF, RELAY_UP_IF, SERVER_IP};
    let relay = topo.relay().spawn(
        "dhcrelay",
        "dhcrelay",
        &[
            "-4",
            "-d",
            "-a",
            "-id",
            RELAY_DOWN_IF,
            "-iu",
            RELAY_UP_IF,
            &SERVER_IP.to_string(),
        ],
        dir,
    )?;
    provd_rig::wait::udp_port(topo.relay(), None, 67, std::time::Duration::from_secs(10))
        .with_context(|| format!("dhcrelay stderr:\n{}", relay.stderr_tail(10)))?;
    Ok(relay)
}

pub fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    path.split(':')
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin"])
        .map(|d| Path::new(d).join(program))
        .find(|p| p.is_file())
}

/// Fails with a pointer to the install script when a peer tool is missing.
pub fn require_tools(tools: &[&str]) -> Result<()> {
    let missing: Vec<&str> = tools
        .iter()
        .copied()
        .filter(|t| which(t).is_none())
        .collect();
    ensure!(
        missing.is_empty(),
        "missing tools {missing:?}: run xtask/scripts/install-deps.sh"
    );
    Ok(())
}

/// `--loadgen`, or the one `cargo build --release -p provd-loadgen` leaves in target/release.
pub fn loadgen_path(args: &Args, root: &Path) -> PathBuf {
    args.loadgen
        .clone()
        .unwrap_or_else(|| root.join("target/release/provd-loadgen"))
}

/// Fails on an `--only` name that is not a scenario of the suite.
pub fn check_only<C>(scenarios: &Scenarios<C>, only: &[String]) -> Result<()> {
    for name in only {
        if !scenarios.iter().any(|(n, _)| n == name) {
            let known: Vec<&str> = scenarios.iter().map(|(n, _)| *n).collect();
            bail!("unknown scenario {name:?} (known: {})", known.join(", "));
        }
    }
    Ok(())
}

/// Runs the selected scenarios in order, each in its own directory of the run directory, and
/// prints the PASS/FAIL/SKIP lines and the summary; exits 1 if anything failed.
pub fn run_scenarios<C>(
    suite: &str,
    about: &str,
    ctx: &C,
    scenarios: &Scenarios<C>,
    args: &Args,
) -> Result<()> {
    let run_dir = std::env::temp_dir().join(format!("provd-e2e-{}", std::process::id()));
    let (passed, failed) = run_group(suite, about, "", ctx, scenarios, args, &run_dir)?;
    finish(&run_dir, passed, failed, args)
}

/// Runs the selected scenarios in order, each in its own directory of `run_dir`, and prints a
/// PASS/FAIL/SKIP line for each (named `<prefix>/<name>` when `prefix` is not empty): how many
/// passed and failed. A suite that runs its list more than once (the api suite, per backend)
/// calls this per round and [`finish`] once.
pub fn run_group<C>(
    suite: &str,
    about: &str,
    prefix: &str,
    ctx: &C,
    scenarios: &Scenarios<C>,
    args: &Args,
    run_dir: &Path,
) -> Result<(u32, u32)> {
    std::fs::create_dir_all(run_dir).with_context(|| run_dir.display().to_string())?;
    eprintln!("e2e: suite {suite}, {about}, run dir {}", run_dir.display());

    let (mut passed, mut failed) = (0u32, 0u32);
    for (name, scenario) in scenarios {
        if !args.only.is_empty() && !args.only.iter().any(|o| o == name) {
            continue;
        }
        let shown = if prefix.is_empty() {
            (*name).to_string()
        } else {
            format!("{prefix}/{name}")
        };
        let dir = run_dir.join(name);
        std::fs::create_dir_all(&dir)?;
        eprintln!("e2e: --- {shown}");
        let t = Instant::now();
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| scenario(ctx, &dir)));
        let secs = t.elapsed().as_secs_f64();
        match result {
            Ok(Ok(())) => {
                passed += 1;
                println!("PASS {shown} ({secs:.1}s)");
            }
            Ok(Err(e)) if e.downcast_ref::<Skip>().is_some() => {
                println!("SKIP {shown}: {e}");
            }
            Ok(Err(e)) => {
                failed += 1;
                println!("FAIL {shown}: {}", one_line(&format!("{e:#}")));
                eprintln!(
                    "e2e: {shown} failed after {secs:.1}s; logs in {}",
                    dir.display()
                );
            }
            Err(panic) => {
                failed += 1;
                let msg = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "panic".into());
                println!("FAIL {shown}: panicked: {}", one_line(&msg));
            }
        }
    }
    Ok((passed, failed))
}

/// The end of a run: the run directory removed when all passed (kept otherwise or with
/// `--keep`), the summary line, exit 1 if anything failed.
pub fn finish(run_dir: &Path, passed: u32, failed: u32, args: &Args) -> Result<()> {
    if failed == 0 && !args.keep {
        let _ = std::fs::remove_dir_all(run_dir);
    } else {
        eprintln!("e2e: run dir kept: {}", run_dir.display());
    }
    // A Ctrl-C arriving now finishes its teardown (and exits 130) before we print or exit.
    provd_rig::cleanup::barrier();
    println!("{passed} passed, {failed} failed");
    if failed > 0 {
        std::process::exit(1);
    }
    Ok(())
}

/// Folds a multi-line error into one line for the FAIL line.
fn one_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" | ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(suite: &str, only: &[&str]) -> Args {
        Args {
            suite: suite.into(),
            subject: Subject::Provd,
            only: only.iter().map(|s| s.to_string()).collect(),
            provd: None,
            no_build: true,
            rate: None,
            load_secs: dhcp::DEFAULT_LOAD_SECS,
            keep: false,
            loadgen: None,
            peer: None,
            backend: None,
            full: false,
        }
    }

    #[test]
    fn an_unknown_suite_is_refused_naming_the_known_ones() {
        let e = run(args("nope", &[])).unwrap_err().to_string();
        assert!(e.contains("\"nope\""), "{e}");
        for s in SUITES {
            assert!(e.contains(s), "{e}");
        }
    }

    #[test]
    fn prepare_checks_only_names_and_tools_first() {
        let scenarios: Scenarios<()> = vec![("one", |_, _| Ok(())), ("two", |_, _| Ok(()))];
        let e = prepare(&args("x", &["three"]), &scenarios, &[], &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"three\"") && e.contains("one, two"), "{e}");
        let e = prepare(
            &args("x", &["two"]),
            &scenarios,
            &["sh", "no-such-tool-xq"],
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("no-such-tool-xq") && !e.contains("\"sh\""),
            "{e}"
        );
        assert!(e.contains("install-deps.sh"), "{e}");
    }

    #[test]
    fn which_finds_programs_on_path() {
        assert!(which("sh").is_some_and(|p| p.is_file()));
        assert!(which("no-such-tool-xq").is_none());
        assert!(require_tools(&["sh"]).is_ok());
    }

    #[test]
    fn the_binaries_asked_for_are_checked() {
        let mut a = args("x", &[]);
        a.provd = Some("/nonexistent/provd".into());
        let e = binaries(&a, &["provd"]).unwrap_err().to_string();
        assert!(e.contains("/nonexistent/provd"), "{e}");
        let bins = binaries(&a, &["provd-cpe-sim"]).unwrap();
        assert_eq!(bins.provd, Path::new("/nonexistent/provd"));
        assert!(bins.loadgen.ends_with("target/release/provd-loadgen"));
    }
}
