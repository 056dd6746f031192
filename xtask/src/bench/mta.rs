//! `cargo xtask bench mta [--seconds N] [--concurrency C] [--smoke]`: provd's PacketCable
//! provisioning role under a fleet of simulated MTAs, each through a complete HYBRID.2 flow.
//!
//! provd runs in a fresh server namespace from `benches/peers/mta/provd.toml` (`[mta]` on
//! 198.18.2.2:162, `[tftp]` with enforce off, an MTA class rendering `mta/<mac>.bin` from
//! `benches/peers/mta/mta.cfg.j2`); `provd-loadgen mta` runs in the load namespace from
//! 198.18.2.1, its agent socket on 198.18.2.1:161 where provd's SETs arrive. Every flow is a
//! distinct MTA: enrollment INFORM, provd's SET of the file URL and SHA-1, the TFTP fetch with
//! the hash checked, the status INFORM (pass). `--concurrency` flows in flight (default 512,
//! enough to keep provd busy) for `--seconds` (default 10).
//!
//! Prints `RESULT mta flows_per_s=N p99_ms=L started=S failed=F timeouts=T` (flows the fleet
//! started, and of those the ones that failed or timed out), ending in `degraded=P%` when
//! failures and timeouts exceed 0.1 % of the flows started (see `faults.rs`), and the load
//! generator's `RESULT mta-load ...` line, then how much CPU each provd thread and the fleet
//! used. Fails unless every flow started
//! completed with a matching hash, and unless `provd mta status` shows the first and the last
//! completed MTA as complete/pass (the first only while provd still keeps its record).
//! `--smoke`: 2 s, 16 flows in flight, same checks.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use provd_rig::{Child, Provd, cmd};

use super::faults::Faults;
use super::procstat::{cpu_summary, machine_cpu, thread_cpu, udp_counters, udp_delta};
use super::{Args, check_interrupted, server, tools};
use provd_rig::Topology;
use provd_rig::topo::{BENCH_RELAY_IP as RELAY_IP, BENCH_SERVER_IP as SERVER_IP};

const PROVD_TOML: &str = include_str!("../../../benches/peers/mta/provd.toml");
const MTA_TEMPLATE: &str = include_str!("../../../benches/peers/mta/mta.cfg.j2");
const WORKERS: u32 = 2;
const NOTIFY_PORT: u16 = 162;
/// MTA k of the fleet is this plus k.
const MAC_BASE: [u8; 6] = [0x02, 0x4d, 0x54, 0x00, 0x00, 0x00];
const DEFAULT_CONCURRENCY: u32 = 512;
/// The longest one flow may take before the fleet counts it as timed out.
const FLOW_TIMEOUT_MS: u64 = 20_000;
/// Finished records provd keeps (provd_mta::Config::max_completed): older ones are evicted.
const PROVD_KEEPS: u64 = 250_000;
const READY_TIMEOUT: Duration = Duration::from_secs(15);
const STOP_GRACE: Duration = Duration::from_secs(5);

/// What the fleet is asked to do.
#[derive(Debug, Clone, PartialEq)]
struct Plan {
    seconds: f64,
    concurrency: u32,
    timeout_ms: u64,
}

impl Plan {
    fn new(args: &Args) -> Plan {
        if args.smoke {
            Plan {
                seconds: 2.0,
                concurrency: 16,
                timeout_ms: args.timeout_ms,
            }
        } else {
            Plan {
                seconds: args.seconds,
                concurrency: args.concurrency.unwrap_or(DEFAULT_CONCURRENCY),
                timeout_ms: args.timeout_ms,
            }
        }
    }

    /// A count bound no run reaches in its time (the loadgen's cap is 10 M).
    fn count(&self) -> u64 {
        ((self.seconds * 1e6) as u64).clamp(1, 10_000_000)
    }
}

/// The fleet's `RESULT mta-load` line and what it said on stderr.
#[derive(Debug, Clone)]
struct FleetRun {
    /// Flows started (from the fleet's stderr: its RESULT line has no such field); every one
    /// completed, failed or timed out.
    started: u64,
    flows: u64,
    flows_per_s: f64,
    p99_ms: f64,
    failed: u64,
    timeouts: u64,
    /// The fleet's own CPU seconds (user + system).
    cpu_s: Option<f64>,
    first_completed: Option<String>,
    last_completed: Option<String>,
    /// Exit 0: every flow completed with a matching hash.
    all_ok: bool,
    line: String,
    detail: String,
}

pub fn run(args: &Args) -> Result<()> {
    let plan = Plan::new(args);
    ensure!(
        plan.seconds > 0.0 && plan.concurrency > 0,
        "--seconds and --concurrency must be positive"
    );
    let bins = tools::build(true, args.provd_bin.as_deref())?;
    let provd = bins
        .provd
        .clone()
        .context("provd did not build; nothing to measure")?;
    let link = Topology::bench()?;
    let mut srv = MtaServer::start(&link, &provd)?;
    eprintln!(
        "bench: mta: provd ready (pid {}, dir {}); {} flows in flight for {} s",
        srv.provd.pid(),
        srv.dir.path().display(),
        plan.concurrency,
        plan.seconds
    );
    check_interrupted()?;

    let before = thread_cpu(srv.provd.pid());
    let machine0 = machine_cpu();
    let udp0 = [link.server.name(), link.load_ns().name()].map(udp_counters);
    let t0 = Instant::now();
    let fleet = run_fleet(&bins.loadgen, &link, &plan, srv.dir.path());
    let wall = t0.elapsed();
    let after = thread_cpu(srv.provd.pid());
    let machine1 = machine_cpu();
    let udp1 = [link.server.name(), link.load_ns().name()].map(udp_counters);
    srv.check_alive()?;
    let fleet = fleet?;
    eprintln!("bench: mta: {}\n{}", fleet.line, fleet.detail);
    let secs = wall.as_secs_f64().max(1e-3);
    let provd_cpu: f64 = after.values().sum::<f64>() - before.values().sum::<f64>();
    eprintln!(
        "bench: mta: provd CPU over the run's {secs:.1} s, seconds per second by thread: {}",
        cpu_summary(&before, &after, wall)
    );
    if let (Some(m0), Some(m1)) = (machine0, machine1) {
        let busy = (m1.0 - m0.0) / secs;
        let irq = (m1.1 - m0.1) / secs;
        let fleet_cpu = fleet.cpu_s.unwrap_or(0.0) / secs;
        eprintln!(
            "bench: mta: machine busy {busy:.2} of {:.0} cores: provd {:.2}, fleet {fleet_cpu:.2}, \
             softirq/irq {irq:.2}, everything else (other processes) {:.2}",
            m1.2,
            provd_cpu / secs,
            (busy - provd_cpu / secs - fleet_cpu - irq).max(0.0)
        );
    }
    for ((name, a), b) in ["server", "load"].iter().zip(&udp0).zip(&udp1) {
        eprintln!(
            "bench: mta: UDP in the {name} namespace: {}",
            udp_delta(a, b)
        );
    }

    println!("{}", fleet.result_line());
    println!("{}", fleet.line);

    let mut problems = Vec::new();
    if fleet.flows == 0 {
        problems.push("no flow completed".to_owned());
    } else if !fleet.all_ok {
        problems.push(format!(
            "not every flow completed: {} failed, {} timed out",
            fleet.failed, fleet.timeouts
        ));
    }
    let mut checked = Vec::new();
    if let Some(m) = &fleet.last_completed {
        checked.push(m.clone());
    }
    if let Some(m) = &fleet.first_completed
        && fleet.flows < PROVD_KEEPS
        && !checked.contains(m)
    {
        checked.push(m.clone());
    }
    for mac in &checked {
        match srv.status(&provd, mac) {
            Ok(json) => match complete_pass(&json) {
                Ok(notes) => {
                    eprintln!("bench: mta: provd mta status {mac}: complete, pass");
                    for n in notes {
                        eprintln!("bench: mta: note: {mac}: {n}");
                    }
                }
                Err(e) => problems.push(format!("provd mta status {mac}: {e}: {}", json.trim())),
            },
            Err(e) => problems.push(format!("provd mta status {mac}: {e:#}")),
        }
    }
    srv.stop()?;
    eprintln!(
        "bench: mta: provd log: {}",
        log_summary(&srv.provd.stderr_text())
    );
    if !problems.is_empty() {
        bail!(
            "bench mta: {}; server log:\n{}",
            problems.join("; "),
            srv.log_tail()
        );
    }
    Ok(())
}

/// The fleet in the load namespace, from the relay side of the link; its output kept in
/// `log_dir` as `fleet.out/.err`.
fn run_fleet(loadgen: &Path, link: &Topology, plan: &Plan, log_dir: &Path) -> Result<FleetRun> {
    let mac_base = MAC_BASE.map(|b| format!("{b:02x}")).join(":");
    let mut c = link.load_ns().command(loadgen);
    c.args(["mta", "--server", &SERVER_IP.to_string()])
        .args(["--server-port", &NOTIFY_PORT.to_string()])
        .args(["--bind", &RELAY_IP.to_string()])
        .args(["--count", &plan.count().to_string()])
        .args(["--concurrency", &plan.concurrency.to_string()])
        .args(["--seconds", &plan.seconds.to_string()])
        .args(["--timeout-ms", &plan.timeout_ms.to_string()])
        .args(["--flow-timeout-ms", &FLOW_TIMEOUT_MS.to_string()])
        .args(["--mac-base", &mac_base]);
    let limit = Duration::from_secs_f64(plan.seconds + FLOW_TIMEOUT_MS as f64 / 1000.0 + 30.0);
    let mut child = Child::spawn("fleet", c, log_dir)?;
    let status = tools::wait_bounded(&mut child, limit, "provd-loadgen mta")?;
    let (stdout, stderr) = (child.stdout_text(), child.stderr_text());
    parse_fleet(status.success(), &stdout, &stderr).with_context(|| {
        format!("provd-loadgen mta ({status}) printed no usable result: {stdout}{stderr}")
    })
}

fn parse_fleet(success: bool, stdout: &str, stderr: &str) -> Result<FleetRun> {
    let f: BTreeMap<String, String> =
        tools::fields(stdout, "RESULT mta-load").context("no RESULT mta-load line")?;
    let word =
        |key: &str| -> Option<&str> { stderr.split_whitespace().find_map(|w| w.strip_prefix(key)) };
    let mac = |key: &str| word(key).filter(|m| *m != "-").map(str::to_owned);
    let started = word("started=").context("no started= on the fleet's stderr")?;
    Ok(FleetRun {
        started: started
            .parse()
            .with_context(|| format!("bad started= value {started:?}"))?,
        flows: tools::num(&f, "flows")?,
        flows_per_s: tools::num(&f, "flows_per_s")?,
        p99_ms: tools::num(&f, "p99_ms")?,
        failed: tools::num(&f, "failed")?,
        timeouts: tools::num(&f, "timeouts")?,
        cpu_s: word("cpu_s=").and_then(|v| v.parse().ok()),
        first_completed: mac("first_completed="),
        last_completed: mac("last_completed="),
        all_ok: success,
        line: stdout
            .lines()
            .rev()
            .find(|l| l.starts_with("RESULT mta-load"))
            .unwrap_or_default()
            .to_owned(),
        detail: stderr.trim().to_owned(),
    })
}

impl FleetRun {
    /// Failed and timed-out flows of those started.
    fn faults(&self) -> Faults {
        Faults::new(self.failed + self.timeouts, self.started)
    }

    /// `RESULT mta flows_per_s=N p99_ms=L started=S failed=F timeouts=T`, and ` degraded=P%`
    /// when failures and timeouts exceed 0.1 % of the flows started.
    fn result_line(&self) -> String {
        format!(
            "RESULT mta flows_per_s={:.0} p99_ms={:.3} started={} failed={} timeouts={}{}",
            self.flows_per_s,
            self.p99_ms,
            self.started,
            self.failed,
            self.timeouts,
            self.faults().marker()
        )
    }
}

/// Whether a `provd mta status` record shows a finished flow that the MTA reported as passed,
/// enrolled, fetched its file and sent its status on the way. Returns notes on what else looks
/// off (a SET whose acknowledgement the record lacks).
fn complete_pass(json: &str) -> Result<Vec<String>> {
    let v: serde_json::Value = serde_json::from_str(json.trim()).context("not JSON")?;
    let state = &v["state"];
    ensure!(
        state["name"] == "complete" && state["prov_state"] == "pass",
        "state is {state}, not complete/pass"
    );
    for step in ["enrollment", "set_sent", "file_fetched", "status"] {
        ensure!(
            v["steps"].get(step).is_some(),
            "no {step} step in the record"
        );
    }
    let mut notes = Vec::new();
    if v["steps"].get("set_acked").is_none() {
        notes.push(
            "no set_acked step although the fleet answered every SET (provd took the status \
             INFORM before the SET's Response)"
                .to_owned(),
        );
    }
    Ok(notes)
}

/// What provd's log says about the run: per-flow log lines, and the datagrams its MTA role
/// rejected by reason (a lower bound: rejections are logged rate-limited, the suppressed ones
/// counted on the next line logged).
fn log_summary(log: &str) -> String {
    let provisioned = log
        .lines()
        .filter(|l| l.contains("MTA provisioned"))
        .count();
    let mut rejected: BTreeMap<&str, u64> = BTreeMap::new();
    for l in log.lines().filter(|l| l.contains("SNMP datagram rejected")) {
        let field = |k: &str| {
            l.split_whitespace()
                .find_map(|w| w.strip_prefix(k))
                .map(|v| v.trim_matches('"'))
        };
        let reason = field("reason=").unwrap_or("?");
        let held: u64 = field("suppressed=")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        *rejected.entry(reason).or_default() += 1 + held;
    }
    let mut s = format!("{provisioned} \"MTA provisioned\" lines");
    if rejected.is_empty() {
        s += ", no SNMP datagram rejected";
    }
    for (reason, n) in rejected {
        s += &format!(", at least {n} SNMP datagrams rejected: {reason}");
    }
    s
}

/// provd in the server namespace, its config and files in a temporary directory; stopped by
/// PID (SIGTERM, then SIGKILL of its process group) and the directory removed when dropped.
#[derive(Debug)]
struct MtaServer {
    provd: Provd,
    config: PathBuf,
    // Declared last: removed after the process is gone.
    dir: tempfile::TempDir,
}

impl MtaServer {
    fn start(link: &Topology, provd: &Path) -> Result<MtaServer> {
        let dir = tempfile::Builder::new()
            .prefix("provd-bench-mta-")
            .tempdir()
            .context("making a temporary directory")?;
        let d = dir.path();
        let vars: BTreeMap<&str, String> = [
            ("DIR", d.to_string_lossy().into_owned()),
            ("SERVER_IP", SERVER_IP.to_string()),
            ("RELAY_IP", RELAY_IP.to_string()),
            ("WORKERS", WORKERS.to_string()),
        ]
        .into_iter()
        .collect();
        std::fs::create_dir_all(d.join("leases"))?;
        std::fs::write(d.join("mta.cfg.j2"), MTA_TEMPLATE)?;
        let mut provd = Provd::new(provd, d)
            .ready_timeout(READY_TIMEOUT)
            .stop_grace(STOP_GRACE)
            .interrupt(check_interrupted)
            .env("RUST_BACKTRACE", "1")
            .write_config(&server::render(PROVD_TOML, &vars)?)?;
        let config = provd.config().to_path_buf();
        // provd says it is ready once every listener is bound; UDP 162 must show up too.
        provd.start(&link.server)?;
        provd.wait_udp(Some(SERVER_IP), NOTIFY_PORT, READY_TIMEOUT)?;
        Ok(MtaServer { provd, config, dir })
    }

    fn check_alive(&mut self) -> Result<()> {
        if let Some(st) = self.provd.exit_status()? {
            bail!(
                "provd died during the run ({st}); log:\n{}",
                self.log_tail()
            );
        }
        Ok(())
    }

    /// `provd mta status --config F MAC`: the record as JSON (through the control socket in the
    /// lease directory, reachable from any namespace).
    fn status(&self, provd: &Path, mac: &str) -> Result<String> {
        cmd::run(
            Command::new(provd)
                .args(["mta", "status", "--config"])
                .arg(&self.config)
                .arg(mac),
            Duration::from_secs(15),
        )
    }

    fn stop(&mut self) -> Result<()> {
        let Some((st, clean)) = self.provd.terminate()? else {
            return Ok(());
        };
        if !clean {
            eprintln!("bench: mta: provd ignored SIGTERM for {STOP_GRACE:?}; killed it");
        } else if !st.success() {
            eprintln!("bench: mta: note: provd exited with {st} on SIGTERM");
        }
        Ok(())
    }

    fn log_tail(&self) -> String {
        self.provd.log_tail(15)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_provd_template_renders_completely() {
        let vars: BTreeMap<&str, String> = ["DIR", "SERVER_IP", "RELAY_IP", "WORKERS"]
            .into_iter()
            .map(|k| (k, "1".to_owned()))
            .collect();
        let text = server::render(PROVD_TOML, &vars).unwrap();
        assert!(text.contains("enforce = false"));
        assert!(text.contains("boot_file = \"mta/{mac}.bin\""));
        assert!(text.contains("kind = \"mta\""));
        assert!(MTA_TEMPLATE.contains("SnmpMibObject"));
    }

    #[test]
    fn fleet_lines_parse() {
        let stdout = "RESULT mta-load flows=12 flows_per_s=3456.7 p50_ms=1.5 p99_ms=9.25 \
                      failed=1 timeouts=2\n";
        let stderr = "loadgen mta: started=15 cpu_s=1.250 x\nloadgen mta: first_completed=02:4d:54:00:00:00 \
                      last_completed=02:4d:54:00:00:0b\n";
        let r = parse_fleet(false, stdout, stderr).unwrap();
        assert_eq!(
            (r.started, r.flows, r.failed, r.timeouts, r.all_ok),
            (15, 12, 1, 2, false)
        );
        assert_eq!((r.flows_per_s, r.p99_ms), (3456.7, 9.25));
        assert_eq!(r.first_completed.as_deref(), Some("02:4d:54:00:00:00"));
        assert_eq!(r.last_completed.as_deref(), Some("02:4d:54:00:00:0b"));
        assert_eq!(r.cpu_s, Some(1.25));
        let none = parse_fleet(
            false,
            stdout,
            "started=15 first_completed=- last_completed=-",
        )
        .unwrap();
        assert_eq!(none.last_completed, None);
        let e = parse_fleet(true, "", "started=1").unwrap_err();
        assert_eq!(e.to_string(), "no RESULT mta-load line");
        let e = parse_fleet(true, stdout, "cpu_s=1").unwrap_err();
        assert_eq!(e.to_string(), "no started= on the fleet's stderr");
        let e = parse_fleet(true, stdout, "started=x").unwrap_err();
        assert_eq!(e.to_string(), "bad started= value \"x\"");
        let e = parse_fleet(
            true,
            "RESULT mta-load flows=1 flows_per_s=1 p99_ms=1",
            "started=1",
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "no failed=");
    }

    #[test]
    fn a_result_over_failed_flows_says_degraded() {
        let fleet = |failed: u64, timeouts: u64| {
            let stdout = format!(
                "RESULT mta-load flows={} flows_per_s=4000.0 p50_ms=1.000 p99_ms=20.500 \
                 failed={failed} timeouts={timeouts}\n",
                10_000 - failed - timeouts
            );
            parse_fleet(false, &stdout, "loadgen mta: started=10000 flows=…\n").unwrap()
        };
        assert_eq!(
            fleet(12, 3).result_line(),
            "RESULT mta flows_per_s=4000 p99_ms=20.500 started=10000 failed=12 timeouts=3 \
             degraded=0.15%"
        );
        // 0.1 % is still clean.
        assert_eq!(
            fleet(0, 10).result_line(),
            "RESULT mta flows_per_s=4000 p99_ms=20.500 started=10000 failed=0 timeouts=10"
        );
    }

    #[test]
    fn records_are_judged() {
        let ok = r#"{"mac":"02:4d:54:00:00:00","steps":{"enrollment":1,"file_ready":1,
            "set_sent":1,"file_fetched":3,"status":4},
            "state":{"name":"complete","prov_state":"pass"},"attempts":1}"#;
        assert_eq!(complete_pass(ok).unwrap().len(), 1);
        let acked = ok.replace(r#""set_sent":1,"#, r#""set_sent":1,"set_acked":2,"#);
        assert!(complete_pass(&acked).unwrap().is_empty());
        let no_status = ok.replace(
            r#""complete","prov_state":"pass""#,
            r#""complete_no_status""#,
        );
        assert!(complete_pass(&no_status).is_err());
        let failed = ok.replace(r#""pass""#, r#""failConfigFileError""#);
        assert!(complete_pass(&failed).is_err());
        let no_fetch = ok.replace(r#""file_fetched":3,"#, "");
        assert!(complete_pass(&no_fetch).is_err());
        assert!(complete_pass("nope").is_err());
    }

    #[test]
    fn provd_logs_are_summarised() {
        let log = "x INFO provd::mta: MTA provisioned mac=02:4d:54:00:00:01 state=None\n\
                   x INFO provd::mta: MTA provisioned mac=02:4d:54:00:00:01 state=Some(pass)\n\
                   x WARN provd::mta: SNMP datagram rejected src=198.18.2.1:161 \
                   reason=\"unmatched_response\" suppressed=0\n\
                   x WARN provd::mta: SNMP datagram rejected src=198.18.2.1:161 \
                   reason=\"unmatched_response\" suppressed=41\n";
        assert_eq!(
            log_summary(log),
            "2 \"MTA provisioned\" lines, at least 43 SNMP datagrams rejected: \
             unmatched_response"
        );
        assert_eq!(
            log_summary(""),
            "0 \"MTA provisioned\" lines, no SNMP datagram rejected"
        );
    }

    #[test]
    fn plans() {
        let p = Plan {
            seconds: 10.0,
            concurrency: 512,
            timeout_ms: 1000,
        };
        assert_eq!(p.count(), 10_000_000);
        let p = Plan { seconds: 2.0, ..p };
        assert_eq!(p.count(), 2_000_000);
    }
}
