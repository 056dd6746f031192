//! What the benches read of the machine while they run: CPU seconds per thread of a process
//! and of the whole machine, and the UDP counters of a network namespace.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use provd_rig::cmd;

/// CPU seconds (user + system) per thread of `pid`, by thread name; threads of the same name
/// are summed.
pub fn thread_cpu(pid: u32) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    // SAFETY: sysconf has no preconditions.
    let tick = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for t in dir.flatten() {
        let p = t.path();
        let (Ok(stat), Ok(comm)) = (
            std::fs::read_to_string(p.join("stat")),
            std::fs::read_to_string(p.join("comm")),
        ) else {
            continue;
        };
        // Fields after the parenthesised name: state is field 3, utime 14, stime 15.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |i: usize| f.get(i - 3).and_then(|v| v.parse::<f64>().ok());
        if let (Some(u), Some(s)) = (ticks(14), ticks(15)) {
            *out.entry(comm.trim().to_owned()).or_default() += (u + s) / tick;
        }
    }
    out
}

/// CPU seconds (user + system) of process `pid` so far, its ended threads included (0 if it
/// is gone).
pub fn process_cpu(pid: u32) -> f64 {
    let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    let Some(rest) = s.rsplit_once(')').map(|(_, r)| r) else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    ticks / hz.max(1.0)
}

/// CPU seconds of the whole machine so far: busy (all but idle and iowait), of that in
/// interrupts and softirqs (the network stack's receive work, charged to no thread), and the
/// CPU count.
pub fn machine_cpu() -> Option<(f64, f64, f64)> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    // SAFETY: sysconf has no preconditions.
    let tick = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let f: Vec<f64> = text
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let total: f64 = f.iter().sum();
    let idle = f.get(3)? + f.get(4).copied().unwrap_or(0.0);
    let irq = f.get(5).copied().unwrap_or(0.0) + f.get(6).copied().unwrap_or(0.0);
    let cpus = text
        .lines()
        .filter(|l| l.starts_with("cpu") && !l.starts_with("cpu "))
        .count();
    Some(((total - idle) / tick, irq / tick, cpus as f64))
}

/// The `Udp:` counters of `/proc/net/snmp` as seen in network namespace `ns`.
pub fn udp_counters(ns: &str) -> BTreeMap<String, u64> {
    let out = cmd::run(
        Command::new("ip").args(["netns", "exec", ns, "cat", "/proc/net/snmp"]),
        Duration::from_secs(10),
    )
    .unwrap_or_default();
    table_counters(&out, "Udp:")
}

/// The `Tcp:` counters of `/proc/net/snmp` and the `TcpExt:` ones of `/proc/net/netstat` as
/// seen in network namespace `ns`.
pub fn tcp_counters(ns: &str) -> BTreeMap<String, u64> {
    let out = cmd::run(
        Command::new("ip").args([
            "netns",
            "exec",
            ns,
            "cat",
            "/proc/net/snmp",
            "/proc/net/netstat",
        ]),
        Duration::from_secs(10),
    )
    .unwrap_or_default();
    let mut all = table_counters(&out, "Tcp:");
    all.extend(table_counters(&out, "TcpExt:"));
    all
}

/// The counters of one `/proc/net/snmp`-style table: a line of names after `prefix`, then a
/// line of values.
fn table_counters(text: &str, prefix: &str) -> BTreeMap<String, u64> {
    let mut rows = text.lines().filter(|l| l.starts_with(prefix));
    let (Some(names), Some(values)) = (rows.next(), rows.next()) else {
        return BTreeMap::new();
    };
    names
        .split_whitespace()
        .skip(1)
        .zip(values.split_whitespace().skip(1))
        .filter_map(|(k, v)| Some((k.to_owned(), v.parse().ok()?)))
        .collect()
}

/// What changed in the counters that say whether datagrams were lost.
pub fn udp_delta(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>) -> String {
    delta(
        before,
        after,
        &[
            "InDatagrams",
            "OutDatagrams",
            "RcvbufErrors",
            "SndbufErrors",
            "InErrors",
            "NoPorts",
        ],
    )
}

/// What changed in the counters that say whether connections were refused, dropped or reset:
/// a full accept queue (`ListenOverflows`, `ListenDrops`) leaves a client's handshake
/// half-done and its request retransmitted for seconds.
pub fn tcp_delta(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>) -> String {
    delta(
        before,
        after,
        &[
            "ActiveOpens",
            "PassiveOpens",
            "AttemptFails",
            "EstabResets",
            "OutRsts",
            "RetransSegs",
            "ListenOverflows",
            "ListenDrops",
            "TCPAbortOnData",
            "TCPAbortOnClose",
            "TCPReqQFullDrop",
        ],
    )
}

fn delta(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>, keys: &[&str]) -> String {
    keys.iter()
        .map(|k| {
            let d = after
                .get(*k)
                .unwrap_or(&0)
                .saturating_sub(*before.get(*k).unwrap_or(&0));
            format!("{k}={d}")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn cpu_summary(
    before: &BTreeMap<String, f64>,
    after: &BTreeMap<String, f64>,
    wall: Duration,
) -> String {
    let secs = wall.as_secs_f64().max(1e-3);
    let mut used: Vec<(String, f64)> = after
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                (v - before.get(k).copied().unwrap_or(0.0)) / secs,
            )
        })
        .filter(|(_, v)| *v >= 0.005)
        .collect();
    used.sort_by(|a, b| b.1.total_cmp(&a.1));
    if used.is_empty() {
        return "(none measurable)".into();
    }
    used.iter()
        .map(|(k, v)| format!("{k} {v:.2}"))
        .collect::<Vec<_>>()
        .join(", ")
}
