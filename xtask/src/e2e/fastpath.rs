//! `cargo xtask e2e fastpath`: provd's three DHCP I/O paths against real clients in namespaces.
//!
//! - XDP attached in driver (native) and generic mode on a veth inside a namespace, with DHCP
//!   answered through AF_XDP to dhclient (broadcast, on the link) and to provd-loadgen (relayed
//!   DORA), the program's counters read back with `provd xdp-stats`;
//! - the same clients through the io_uring and the sockets paths;
//! - fallback: `io = "auto"` with an attachment the kernel refuses serves on io_uring and says
//!   why; `io = "xdp"` with the same refusal does not start;
//! - bad frames sent raw (AF_PACKET) from the client namespace: each lands on its verdict
//!   counter, and the server keeps serving.
//!
//! Every lease a client was ACKed must be in `provd leases` after the server stops: durability
//! holds on every path.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use provd_rig::dhclient::Dhclient;
use provd_rig::topo::{CLIENT_IF, DIRECT_POOL, LOAD_GIADDR, SERVER_IP, Topology, in_pool};
use provd_rig::{Netns, Provd, cmd};

use super::{Args, Scenarios};

#[derive(Debug)]
pub struct Ctx {
    pub provd: PathBuf,
    pub loadgen: PathBuf,
}

pub fn scenarios() -> Scenarios<Ctx> {
    vec![
        ("xdp-native-dhclient", xdp_native_dhclient),
        ("xdp-generic-dhclient", xdp_generic_dhclient),
        ("xdp-native-loadgen", xdp_native_loadgen),
        ("xdp-generic-loadgen", xdp_generic_loadgen),
        ("io-uring-dhclient", uring_dhclient),
        ("io-uring-loadgen", uring_loadgen),
        ("sockets-dhclient", sockets_dhclient),
        ("sockets-loadgen", sockets_loadgen),
        ("fallback-when-xdp-refused", fallback),
        ("bad-frames-counted", bad_frames),
    ]
}

pub fn run(args: &Args) -> Result<()> {
    let scenarios = scenarios();
    let bins = super::prepare(
        args,
        &scenarios,
        &["ip", "dhclient"],
        &["provd", "provd-loadgen"],
    )?;
    let ctx = Ctx {
        provd: bins.provd,
        loadgen: bins.loadgen,
    };
    // Without the XDP object the XDP scenarios cannot pass: say so up front.
    let probe = cmd::output_timeout(
        Command::new(&ctx.provd).arg("--version"),
        Duration::from_secs(10),
    )?;
    ensure!(
        probe.status.success(),
        "{} does not run",
        ctx.provd.display()
    );
    super::run_scenarios("fastpath", "provd I/O paths", &ctx, &scenarios, args)
}

fn note(msg: impl AsRef<str>) {
    eprintln!("e2e:   {}", msg.as_ref());
}

/// The provd config of a scenario: `io` and `xdp_*` as given. Bound to 0.0.0.0: dhclient's
/// broadcasts reach no socket bound to an address.
fn config(dir: &Path, io: &str, extra: &str, workers: u32) -> Result<PathBuf> {
    let lease_dir = dir.join("leases");
    std::fs::create_dir_all(&lease_dir)?;
    let text = format!(
        r#"[server]
server_id = "{SERVER_IP}"
lease_dir = "{}"
workers = {workers}
io = "{io}"
{extra}

[[class]]
name = "any"
match = "*"
lease_time = 3600

[[shared_network]]
name = "direct"
interfaces = ["{SERVER_IP}"]
  [[shared_network.subnet]]
  prefix = "198.18.0.0/24"
  routers = ["{SERVER_IP}"]
    [[shared_network.subnet.pool]]
    start = "198.18.0.100"
    end = "198.18.0.200"

[[shared_network]]
name = "load"
relays = ["{LOAD_GIADDR}"]
  [[shared_network.subnet]]
  prefix = "198.19.0.0/16"
    [[shared_network.subnet.pool]]
    start = "198.19.0.10"
    end = "198.19.255.250"
"#,
        lease_dir.display()
    );
    let p = dir.join("provd.toml");
    std::fs::write(&p, text)?;
    Ok(p)
}

/// provd serving `config` in `ns` (counters never logged: `--stats-every 0`), its logs in
/// `dir`; stopped with the exit-0 contract by [`Provd::stop`].
fn start(ctx: &Ctx, ns: &Netns, config: &Path, dir: &Path) -> Result<Provd> {
    let mut p = Provd::new(&ctx.provd, dir)
        .config_file(config)
        .args(["--stats-every", "0"]);
    p.start(ns).context("provd did not become ready")?;
    Ok(p)
}

/// The `path=` of the plain ready line.
fn path(p: &Provd) -> Result<String> {
    Ok(p.ready().context("no ready line")?.path.clone())
}

/// Durable leases after stop: `provd leases` as (mac, addr) of bound leases.
fn durable(p: &Provd) -> Result<Vec<([u8; 6], Ipv4Addr)>> {
    Ok(p.durable_leases()?
        .into_iter()
        .filter(|l| l.state == "bound")
        .filter_map(|l| l.mac.map(|m| (m, l.addr)))
        .collect())
}

/// dhclient on the server's link gets a lease from the direct pool through `io`, and the lease
/// it was ACKed is durable after the server stops.
fn dhclient_on(ctx: &Ctx, dir: &Path, io: &str, extra: &str) -> Result<()> {
    let topo = Topology::direct()?;
    let cfg = config(dir, io, extra, 1)?;
    let mut provd = start(ctx, &topo.server, &cfg, dir)?;
    let path = path(&provd)?;
    ensure!(path == io, "served on path {path}, expected {io}");
    let dh = Dhclient::new(&dir.join("dhclient"), CLIENT_IF, None)?;
    let mut client = dh.start(topo.client(), "dhclient", dir)?;
    let ev = dh.wait_event(&mut client, &["BOUND"], 0, Duration::from_secs(30))?;
    let addr = ev.addr.context("BOUND without an address")?;
    ensure!(
        in_pool(addr, DIRECT_POOL),
        "{addr} is not in the direct pool"
    );
    let mac = topo.links[0].b.mac()?;
    note(format!("dhclient bound {addr} through path {path}"));
    let _ = client.stop(libc::SIGTERM, Duration::from_secs(5));
    if io == "xdp" {
        let (mode, c) = provd.xdp_stats()?;
        note(format!("xdp {mode}: {c:?}"));
        ensure!(
            c.get("redirect_dhcp").copied().unwrap_or(0) >= 2,
            "DISCOVER and REQUEST should have gone through AF_XDP: {c:?}"
        );
        let want_mode = if extra.contains("generic") {
            "generic"
        } else {
            "native"
        };
        ensure!(mode == want_mode, "attached {mode}, expected {want_mode}");
    }
    provd.stop()?;
    let leases = durable(&provd)?;
    ensure!(
        leases.contains(&(mac, addr)),
        "ACKed lease {addr} for {} is not durable: {leases:?}",
        provd_rig::fmt_mac(&mac)
    );
    drop(topo);
    Ok(())
}

fn xdp_native_dhclient(ctx: &Ctx, dir: &Path) -> Result<()> {
    dhclient_on(
        ctx,
        dir,
        "xdp",
        "xdp_interface = \"srv0\"\nxdp_mode = \"native\"",
    )
}

fn xdp_generic_dhclient(ctx: &Ctx, dir: &Path) -> Result<()> {
    dhclient_on(
        ctx,
        dir,
        "xdp",
        "xdp_interface = \"srv0\"\nxdp_mode = \"generic\"",
    )
}

fn uring_dhclient(ctx: &Ctx, dir: &Path) -> Result<()> {
    dhclient_on(ctx, dir, "io_uring", "")
}

fn sockets_dhclient(ctx: &Ctx, dir: &Path) -> Result<()> {
    dhclient_on(ctx, dir, "sockets", "")
}

/// provd-loadgen: `clients` relayed DORAs; every one completed, every ACK durable.
fn loadgen_on(ctx: &Ctx, dir: &Path, io: &str, extra: &str, workers: u32) -> Result<()> {
    let topo = Topology::load()?;
    let cfg = config(dir, io, extra, workers)?;
    let mut provd = start(ctx, &topo.server, &cfg, dir)?;
    let path = path(&provd)?;
    ensure!(path == io, "served on path {path}, expected {io}");
    let acks = dir.join("acks.txt");
    let clients = 3000;
    let out = cmd::output_timeout(
        topo.load_ns()
            .command(&ctx.loadgen)
            .args([
                "--server",
                &SERVER_IP.to_string(),
                "--relay",
                &LOAD_GIADDR.to_string(),
            ])
            .args([
                "--clients",
                &clients.to_string(),
                "--seconds",
                "20",
                "--rate",
                "0",
            ])
            .arg("--dump-acks")
            .arg(&acks),
        Duration::from_secs(60),
    )?;
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    let line = text
        .lines()
        .find(|l| l.starts_with("LOADGEN "))
        .with_context(|| format!("no LOADGEN line: {text}"))?;
    note(format!("{path}: {line}"));
    ensure!(
        line.contains(&format!("completed={clients} ")) && line.contains("drops_pct=0.00"),
        "not every DORA completed: {line}"
    );
    if io == "xdp" {
        let (mode, c) = provd.xdp_stats()?;
        note(format!("xdp {mode}: {c:?}"));
        let redirected = c.get("redirect_dhcp").copied().unwrap_or(0);
        ensure!(redirected > 0, "no DHCP went through AF_XDP: {c:?}");
        let want_mode = if extra.contains("generic") {
            "generic"
        } else {
            "native"
        };
        ensure!(mode == want_mode, "attached {mode}, expected {want_mode}");
    }
    provd.stop()?;
    let leases = durable(&provd)?;
    let acked = std::fs::read_to_string(&acks)?;
    let mut missing = 0;
    let mut total = 0;
    for l in acked.lines().filter(|l| !l.trim().is_empty()) {
        total += 1;
        let mut it = l.split_whitespace();
        let (Some(mac), Some(addr)) = (it.next(), it.next()) else {
            bail!("bad --dump-acks line {l:?}");
        };
        let mac = provd_rig::parse_mac(mac)?;
        let addr: Ipv4Addr = addr.parse()?;
        if !leases.contains(&(mac, addr)) {
            missing += 1;
        }
    }
    ensure!(total == clients, "{total} ACKs dumped, expected {clients}");
    ensure!(
        missing == 0,
        "{missing} of {total} ACKed leases are not durable"
    );
    drop(topo);
    Ok(())
}

fn xdp_native_loadgen(ctx: &Ctx, dir: &Path) -> Result<()> {
    loadgen_on(
        ctx,
        dir,
        "xdp",
        "xdp_interface = \"srv0\"\nxdp_mode = \"native\"",
        2,
    )
}

fn xdp_generic_loadgen(ctx: &Ctx, dir: &Path) -> Result<()> {
    loadgen_on(
        ctx,
        dir,
        "xdp",
        "xdp_interface = \"srv0\"\nxdp_mode = \"generic\"",
        1,
    )
}

fn uring_loadgen(ctx: &Ctx, dir: &Path) -> Result<()> {
    loadgen_on(ctx, dir, "io_uring", "", 2)
}

fn sockets_loadgen(ctx: &Ctx, dir: &Path) -> Result<()> {
    loadgen_on(ctx, dir, "sockets", "", 2)
}

/// Loopback has no driver-mode XDP: the kernel refuses the attachment.
fn fallback(ctx: &Ctx, dir: &Path) -> Result<()> {
    let topo = Topology::direct()?;
    // Forced XDP with a refused attachment: no start, and the reason names XDP.
    let forced_dir = dir.join("forced");
    std::fs::create_dir_all(&forced_dir)?;
    let cfg = config(
        &forced_dir,
        "xdp",
        "xdp_interface = \"lo\"\nxdp_mode = \"native\"",
        1,
    )?;
    let out = cmd::output_timeout(
        &mut Provd::new(&ctx.provd, &forced_dir)
            .config_file(&cfg)
            .serve_command(topo.server.name()),
        Duration::from_secs(30),
    )?;
    let err = String::from_utf8_lossy(&out.stderr);
    ensure!(
        !out.status.success(),
        "provd started with a refused XDP attachment: {err}"
    );
    ensure!(
        err.contains("XDP cannot start") && err.contains("native"),
        "the refusal does not say why: {err}"
    );
    note(format!(
        "forced xdp refused: {}",
        err.lines().last().unwrap_or_default()
    ));
    // auto: falls back to io_uring and says why XDP was passed over.
    let cfg = config(
        dir,
        "auto",
        "xdp_interface = \"lo\"\nxdp_mode = \"native\"",
        1,
    )?;
    let mut provd = start(ctx, &topo.server, &cfg, dir)?;
    let path = path(&provd)?;
    ensure!(
        path == "io_uring",
        "auto fell back to {path}, expected io_uring"
    );
    let text = provd.stderr_text();
    let ready = text
        .lines()
        .find(|l| l.contains("provd ready") && l.contains("why="))
        .context("no ready log line with a reason")?;
    ensure!(
        ready.contains("xdp:") && ready.contains("lo"),
        "the ready line does not say why XDP was passed over: {ready}"
    );
    note(ready.split("why=").nth(1).unwrap_or_default());
    let dh = Dhclient::new(&dir.join("dhclient"), CLIENT_IF, None)?;
    let mut client = dh.start(topo.client(), "dhclient", dir)?;
    let ev = dh.wait_event(&mut client, &["BOUND"], 0, Duration::from_secs(30))?;
    note(format!("dhclient bound {:?} on the fallback path", ev.addr));
    let _ = client.stop(libc::SIGTERM, Duration::from_secs(5));
    provd.stop()?;
    drop(topo);
    Ok(())
}

/// Builds an Ethernet frame: `tags` VLAN tags, then an IPv4 header (`ihl` words, `frag` field,
/// `proto`), then a UDP header to `dport` with `payload`; `ip_total`/`udp_len` override the
/// length fields when given.
struct Raw {
    tags: usize,
    ethertype: u16,
    ihl: u8,
    frag: u16,
    proto: u8,
    dport: u16,
    payload: usize,
    ip_total: Option<u16>,
    udp_len: Option<u16>,
    truncate: Option<usize>,
}

impl Default for Raw {
    fn default() -> Self {
        Raw {
            tags: 0,
            ethertype: 0x0800,
            ihl: 5,
            frag: 0,
            proto: 17,
            dport: 67,
            payload: 300,
            ip_total: None,
            udp_len: None,
            truncate: None,
        }
    }
}

impl Raw {
    fn build(&self, dst: [u8; 6], src: [u8; 6], key: u8) -> Vec<u8> {
        let mut f = Vec::new();
        f.extend_from_slice(&dst);
        f.extend_from_slice(&src);
        for _ in 0..self.tags {
            f.extend_from_slice(&[0x81, 0x00, 0x00, 0x07]);
        }
        f.extend_from_slice(&self.ethertype.to_be_bytes());
        let opts = usize::from(self.ihl.saturating_sub(5)) * 4;
        let udp_len = 8 + self.payload;
        let total = 20 + opts + udp_len;
        f.push(0x40 | self.ihl);
        f.push(0);
        f.extend_from_slice(&self.ip_total.unwrap_or(total as u16).to_be_bytes());
        f.extend_from_slice(&[0, 0]);
        f.extend_from_slice(&self.frag.to_be_bytes());
        f.extend_from_slice(&[64, self.proto, 0, 0]);
        f.extend_from_slice(&[198, 18, 0, 9, 198, 18, 0, 1]);
        f.extend(std::iter::repeat_n(1u8, opts)); // NOP options
        f.extend_from_slice(&68u16.to_be_bytes());
        f.extend_from_slice(&self.dport.to_be_bytes());
        f.extend_from_slice(&self.udp_len.unwrap_or(udp_len as u16).to_be_bytes());
        f.extend_from_slice(&[0, 0]);
        // A BOOTP-looking payload: op 1, htype 1, hlen 6, chaddr with a distinct byte.
        let mut p = vec![0u8; self.payload];
        if p.len() >= 34 {
            p[0] = 1;
            p[1] = 1;
            p[2] = 6;
            p[28..34].copy_from_slice(&[2, 0xee, 0, 0, 0, key]);
        }
        f.extend_from_slice(&p);
        if let Some(n) = self.truncate {
            f.truncate(n);
        }
        f
    }
}

/// Sends `frames` out of `iface` in the current namespace through an AF_PACKET socket.
fn send_raw(iface: &str, frames: &[Vec<u8>]) -> Result<()> {
    let name = std::ffi::CString::new(iface)?;
    // SAFETY: a NUL-terminated name, only read.
    let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) };
    ensure!(ifindex != 0, "no interface {iface}");
    // SAFETY: plain socket(2); checked.
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0) };
    ensure!(
        fd >= 0,
        "AF_PACKET socket: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: all-zero sockaddr_ll is valid; filled below.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_ifindex = ifindex as i32;
    sll.sll_halen = 6;
    let mut result = Ok(());
    for f in frames {
        // SAFETY: `f` and `sll` are live for the call with the lengths given.
        let r = unsafe {
            libc::sendto(
                fd,
                f.as_ptr().cast(),
                f.len(),
                0,
                (&raw const sll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        if r < 0 {
            result = Err(anyhow::anyhow!(
                "sendto {} bytes: {}",
                f.len(),
                std::io::Error::last_os_error()
            ));
            break;
        }
    }
    // SAFETY: closing the socket opened above.
    unsafe { libc::close(fd) };
    result
}

fn bad_frames(ctx: &Ctx, dir: &Path) -> Result<()> {
    let topo = Topology::direct()?;
    // No IPv6 chatter on the client link: pass_not_ipv4 then counts only what we send.
    topo.client()
        .sysctl("net.ipv6.conf.all.disable_ipv6", "1")?;
    topo.client()
        .sysctl("net.ipv6.conf.default.disable_ipv6", "1")?;
    let cfg = config(
        dir,
        "xdp",
        "xdp_interface = \"srv0\"\nxdp_mode = \"generic\"",
        1,
    )?;
    let mut provd = start(ctx, &topo.server, &cfg, dir)?;
    let (_, before) = provd.xdp_stats()?;
    let dst = topo.links[0].a.mac()?;
    let src = topo.links[0].b.mac()?;
    let cases: Vec<(&str, Raw, usize)> = vec![
        (
            "drop_bad_length",
            Raw {
                truncate: Some(20),
                ..Raw::default()
            },
            3,
        ),
        (
            "drop_bad_length",
            Raw {
                ip_total: Some(1400),
                ..Raw::default()
            },
            2,
        ),
        (
            "drop_bad_length",
            Raw {
                udp_len: Some(1000),
                ..Raw::default()
            },
            2,
        ),
        (
            "drop_bad_length",
            Raw {
                payload: 100,
                ..Raw::default()
            },
            2,
        ),
        (
            "drop_bad_length",
            Raw {
                ihl: 4,
                ..Raw::default()
            },
            1,
        ),
        (
            "pass_ip_options",
            Raw {
                ihl: 6,
                ..Raw::default()
            },
            4,
        ),
        (
            "pass_fragment",
            Raw {
                frag: 0x2000,
                ..Raw::default()
            },
            5,
        ),
        (
            "pass_fragment",
            Raw {
                frag: 0x0010,
                ..Raw::default()
            },
            1,
        ),
        (
            "pass_not_ipv4",
            Raw {
                ethertype: 0x86dd,
                ..Raw::default()
            },
            6,
        ),
        (
            "pass_vlan_too_deep",
            Raw {
                tags: 3,
                ..Raw::default()
            },
            7,
        ),
        (
            "pass_not_udp",
            Raw {
                proto: 6,
                ..Raw::default()
            },
            3,
        ),
        (
            "pass_tftp",
            Raw {
                dport: 69,
                ..Raw::default()
            },
            2,
        ),
        (
            "pass_snmp",
            Raw {
                dport: 161,
                ..Raw::default()
            },
            2,
        ),
        (
            "pass_snmp",
            Raw {
                dport: 162,
                ..Raw::default()
            },
            1,
        ),
        (
            "pass_other_port",
            Raw {
                dport: 5000,
                ..Raw::default()
            },
            2,
        ),
        // Two tags (QinQ) are within bounds: parsed through to the DHCP verdict.
        (
            "redirect_dhcp",
            Raw {
                tags: 2,
                ..Raw::default()
            },
            2,
        ),
    ];
    let mut want: BTreeMap<String, u64> = BTreeMap::new();
    let mut frames = Vec::new();
    for (i, (verdict, raw, n)) in cases.iter().enumerate() {
        *want.entry(verdict.to_string()).or_default() += *n as u64;
        for _ in 0..*n {
            frames.push(raw.build(dst, src, i as u8));
        }
    }
    topo.client().run_in(move || send_raw(CLIENT_IF, &frames))?;
    std::thread::sleep(Duration::from_millis(500));
    let (_, after) = provd.xdp_stats()?;
    let mut wrong = Vec::new();
    for (k, n) in &want {
        let got = after.get(k).copied().unwrap_or(0) - before.get(k).copied().unwrap_or(0);
        // Only pass_not_ipv4 may see the link's own chatter (ARP); the rest must be exact.
        let ok = if k == "pass_not_ipv4" {
            got >= *n
        } else {
            got == *n
        };
        if !ok {
            wrong.push(format!("{k}: {got} (expected {n})"));
        }
        note(format!("{k} +{got}"));
    }
    ensure!(wrong.is_empty(), "counters: {}", wrong.join(", "));
    // The server still serves: a real client gets its lease after the junk.
    let dh = Dhclient::new(&dir.join("dhclient"), CLIENT_IF, None)?;
    let mut client = dh.start(topo.client(), "dhclient", dir)?;
    let ev = dh.wait_event(&mut client, &["BOUND"], 0, Duration::from_secs(30))?;
    note(format!(
        "after the bad frames, dhclient bound {:?}",
        ev.addr
    ));
    let _ = client.stop(libc::SIGTERM, Duration::from_secs(5));
    provd.stop()?;
    let log = provd.stderr_text();
    ensure!(!log.contains("panicked"), "provd panicked: {log}");
    drop(topo);
    Ok(())
}
