//! Phone profile findings (issue 18 item 6). The review's baseline: any host could fetch any
//! known device's profile (it holds SIP settings), and a guess told known MACs (200) from
//! unknown ones (404), with no rate limit: 1 of 256 guessed MACs answered 200.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use provd_rig::dhclient::Dhclient;
use provd_rig::topo::CLIENT_IF;
use provd_rig::{Netns, Topology, cmd};

use super::{Ctx, Scenarios};

pub fn scenarios() -> Scenarios<Ctx> {
    vec![(
        "profile-enforce",
        profile_enforce as fn(&Ctx, &Path) -> Result<()>,
    )]
}

fn note(msg: impl AsRef<str>) {
    eprintln!("  {}", msg.as_ref());
}

/// The phone's MAC: a configured subscriber, so its profile exists.
const PHONE: [u8; 6] = [0x00, 0x15, 0xcf, 0x12, 0x34, 0x56];
/// Another host on the phone's link.
const OTHER: &str = "198.18.0.60";
const GUESSES: u32 = 256;

/// `curl` from `ns` (from `from` when given): (status, body).
fn fetch(ns: &Netns, url: &str, from: Option<&str>) -> Result<(u16, String)> {
    let mut c = ns.command("curl");
    c.args(["-sS", "--max-time", "5", "-w", "\n%{http_code}"]);
    if let Some(a) = from {
        c.args(["--interface", a]);
    }
    let out = cmd::output_timeout(c.arg(url), Duration::from_secs(10))?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').context("curl printed no status")?;
    Ok((code.trim().parse().unwrap_or(0), body.to_owned()))
}

/// The phone takes a lease with dhclient and fetches its profile: 200. Another host on its link
/// asks for it: the same answer, byte for byte, as for a MAC nobody knows. Then that host
/// guesses 256 MACs (one of them the phone's): no 200, and once its budget of refusals is
/// spent, 429s.
fn profile_enforce(ctx: &Ctx, dir: &Path) -> Result<()> {
    let topo = Topology::direct()?;
    topo.client().ip(&[
        "link",
        "set",
        "dev",
        CLIENT_IF,
        "address",
        &provd_rig::fmt_mac(&PHONE),
    ])?;
    std::fs::write(
        dir.join("fv.cfg.j2"),
        "DBID_SIP_SERVER={{ vars.sip }}\nDBID_SIP_PASSWORD=secret-{{ mac12 }}\n",
    )?;
    let config = format!(
        r#"[server]
server_id = "198.18.0.1"
lease_dir = "{d}/leases"
[store]
path = "{d}/store.db"
[http]
port = 80
[vars]
sip = "sip.example.net"
[[class]]
name = "fv"
match = "*"
[class.profile]
path = "fv/{{mac}}.cfg"
template = "fv.cfg.j2"
format = "kvp"
[[subscriber]]
mac = "00:15:cf:12:34:56"
[[shared_network]]
name = "direct"
interfaces = ["198.18.0.1"]
  [[shared_network.subnet]]
  prefix = "198.18.0.0/24"
  routers = ["198.18.0.1"]
    [[shared_network.subnet.pool]]
    start = "198.18.0.100"
    end = "198.18.0.200"
"#,
        d = dir.display()
    );
    let mut provd = ctx.start_dhcp_server(dir, &config, &topo.server)?;
    let r = run(&topo, dir);
    let stopped = provd.stop();
    if let Err(e) = r {
        bail!("{e:#}\nprovd log tail:\n{}", provd.log_tail(15));
    }
    stopped
}

fn run(topo: &Topology, dir: &Path) -> Result<()> {
    let dh = Dhclient::new(&dir.join("dhclient"), CLIENT_IF, None)?;
    let mut client = dh.start(topo.client(), "dhclient", dir)?;
    let bound = dh.wait_event(
        &mut client,
        &["BOUND", "REBOOT"],
        0,
        Duration::from_secs(45),
    )?;
    let leased = bound.addr.context("dhclient bound without an address")?;
    topo.client()
        .ip(&["addr", "add", &format!("{OTHER}/24"), "dev", CLIENT_IF])?;
    let url = |mac: &str| format!("http://198.18.0.1/fv/{mac}.cfg");
    let phone = "0015cf123456";
    let mut problems = Vec::new();

    let (s, body) = fetch(topo.client(), &url(phone), Some(&leased.to_string()))?;
    note(format!(
        "the phone from its lease {leased}: {s}, {} bytes",
        body.len()
    ));
    if s != 200 || !body.contains("DBID_SIP_PASSWORD=secret-0015cf123456") {
        problems.push(format!("the phone itself got {s}: {body:?}"));
    }
    let known = fetch(topo.client(), &url(phone), Some(OTHER))?;
    let unknown = fetch(topo.client(), &url("0015cf999999"), Some(OTHER))?;
    note(format!(
        "from {OTHER}: the phone's profile {} {:?}, an unknown MAC's {} {:?}",
        known.0, known.1, unknown.0, unknown.1
    ));
    if known.0 == 200 || known != unknown {
        problems.push(format!(
            "another host's fetch of the phone's profile got {} {:?}, an unknown MAC {} {:?}: they must be refused alike",
            known.0, known.1, unknown.0, unknown.1
        ));
    }
    let mut by_status = std::collections::BTreeMap::<u16, u32>::new();
    let mut bodies = std::collections::BTreeSet::new();
    for i in 0..GUESSES {
        // The phone's MAC is among the guesses.
        let mac = if i == 128 {
            phone.to_owned()
        } else {
            format!("0015cf12{:04x}", i.wrapping_mul(97))
        };
        let (s, body) = fetch(topo.client(), &url(&mac), Some(OTHER))?;
        *by_status.entry(s).or_default() += 1;
        if s == 404 {
            bodies.insert(body);
        }
    }
    note(format!(
        "{GUESSES} guessed MACs from {OTHER}: {by_status:?}, {} distinct 404 bodies",
        bodies.len()
    ));
    if by_status.contains_key(&200) {
        problems.push(format!("a guess got the profile: {by_status:?}"));
    }
    if by_status.get(&429).copied().unwrap_or(0) == 0 {
        problems.push(format!(
            "{GUESSES} guesses from one host were never rate-limited: {by_status:?}"
        ));
    }
    if bodies.len() > 1 {
        problems.push(format!("the 404s differ: {bodies:?}"));
    }
    // The phone is not held back by the guesser.
    let (s, _) = fetch(topo.client(), &url(phone), Some(&leased.to_string()))?;
    if s != 200 {
        problems.push(format!("after the guessing, the phone itself got {s}"));
    }
    if !problems.is_empty() {
        bail!(problems.join("; "));
    }
    Ok(())
}
