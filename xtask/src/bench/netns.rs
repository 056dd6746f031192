//! Two network namespaces joined by a veth pair, made for one server run and torn down when the
//! guard drops (also on error and panic). Names are unique per harness process:
//! `provd-bench-<pid>-<n>-{load,srv}`, veth `pb<pid>x<n>{l,s}`.

use std::net::Ipv4Addr;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// The relay side (load generator) and the server side of the link.
pub const RELAY_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 2, 1);
pub const SERVER_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 2, 2);
pub const LINK_PREFIX_LEN: u8 = 24;

const PREFIX: &str = "provd-bench-";

static NEXT: AtomicU32 = AtomicU32::new(0);

/// Runs `ip ARGS`, failing with its stderr.
pub fn ip(args: &[&str]) -> Result<()> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("running ip (iproute2)")?;
    if !out.status.success() {
        bail!(
            "ip {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Whether `dev` in `ns` has carrier (LOWER_UP), i.e. is RUNNING.
fn link_running(ns: &str, dev: &str) -> Result<bool> {
    let out = Command::new("ip")
        .args(["-n", ns, "-o", "link", "show", "dev", dev])
        .stdin(Stdio::null())
        .output()
        .context("running ip (iproute2)")?;
    Ok(String::from_utf8_lossy(&out.stdout).contains("LOWER_UP"))
}

#[derive(Debug)]
pub struct Link {
    pub load_ns: String,
    pub server_ns: String,
    pub load_if: String,
    pub server_if: String,
    created: Vec<String>,
}

impl Link {
    /// Makes both namespaces and the veth pair, addresses them and brings everything up.
    pub fn new() -> Result<Link> {
        let pid = std::process::id();
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let mut link = Link {
            load_ns: format!("{PREFIX}{pid}-{n}-load"),
            server_ns: format!("{PREFIX}{pid}-{n}-srv"),
            load_if: format!("pb{pid}x{n}l"),
            server_if: format!("pb{pid}x{n}s"),
            created: Vec::new(),
        };
        if link.load_if.len() > 15 {
            bail!("interface name {} is too long", link.load_if);
        }
        for ns in [link.load_ns.clone(), link.server_ns.clone()] {
            ip(&["netns", "add", &ns])?;
            link.created.push(ns);
        }
        let (l, s) = (&link.load_ns, &link.server_ns);
        let (li, si) = (&link.load_if, &link.server_if);
        ip(&[
            "link", "add", li, "netns", l, "type", "veth", "peer", "name", si, "netns", s,
        ])?;
        let relay = format!("{RELAY_IP}/{LINK_PREFIX_LEN}");
        let server = format!("{SERVER_IP}/{LINK_PREFIX_LEN}");
        ip(&["-n", l, "addr", "add", &relay, "dev", li])?;
        ip(&["-n", s, "addr", "add", &server, "dev", si])?;
        for (ns, dev) in [(l, "lo"), (s, "lo"), (l, li.as_str()), (s, si.as_str())] {
            ip(&["-n", ns, "link", "set", dev, "up"])?;
        }
        // Carrier comes up asynchronously; some servers (Kea) skip an interface not yet running.
        let t0 = Instant::now();
        while !(link_running(l, li)? && link_running(s, si)?) {
            if t0.elapsed() > Duration::from_secs(5) {
                bail!("veth {li}/{si} did not come up within 5 s");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(link)
    }

    /// `ip netns exec NS` + `argv`: the command runs in the namespace as the same process
    /// (iproute2 execs it directly), so its PID is the program's own.
    pub fn command_in(ns: &str, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns, program]);
        c
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        // Deleting a namespace deletes the veth end in it, and with it the pair.
        for ns in self.created.drain(..).rev() {
            if let Err(e) = ip(&["netns", "del", &ns]) {
                eprintln!("bench: cleanup: {e:#}");
            }
        }
    }
}

/// Deletes `provd-bench-<pid>-*` namespaces left by harness processes that no longer exist
/// (killed before their guards ran). Namespaces of live harness runs are left alone.
pub fn sweep_stale() {
    let Ok(dir) = std::fs::read_dir("/run/netns") else {
        return;
    };
    for e in dir.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(PREFIX) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if pid != std::process::id() && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            eprintln!("bench: removing stale namespace {name} (its harness {pid} is gone)");
            if let Err(e) = ip(&["netns", "del", &name]) {
                eprintln!("bench: {e:#}");
            }
        }
    }
}
