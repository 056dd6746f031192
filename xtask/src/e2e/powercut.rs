//! `power-cut`: crash-kill9 on a disk that forgets. provd's lease directory sits on provd-powerfs
//! (tests/powerfs), which keeps everything not fsync'd only in memory. Under perfdhcp load the
//! power is cut (the filesystem freezes its durable state and fails every later operation with
//! EIO) and provd is SIGKILLed in the same instant; provd restarts on a new mount of exactly
//! what survived. Every ACK tcpdump saw must be in the durable table with its client and be ACKed
//! again on INIT-REBOOT, and no address may be bound to two clients.
//!
//! SIGKILL alone proves little: the page cache survives it, so crash-kill9 passes without the
//! fdatasync before the ACK. This scenario does not (see the commit that added it).
//!
//! The lease directory the config names, `<dir>/leases`, is a symlink to the current boot's
//! mountpoint (`powerfs-0`, then `powerfs-1`): every mount gets its own directory, so a mount
//! lazily detached on a failure path can never be confused with the next one. The surviving
//! image is also written to `<dir>/survived` for a post-mortem.

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail, ensure};
use provd_dhcp::Op;
use provd_powerfs::{Model, Mount};
use provd_rig::pcap::read_dhcp;
use provd_rig::topo::LOAD_IF;
use provd_rig::{Capture, Topology, fmt_mac, leases};

use super::super::{Ctx, Skip, Subject};
use super::{
    KILL_AFTER, MAX_VERIFY, Server, describe_shared, load_args, loadgen_verify, note, pair_line,
    tally,
};

/// Mounts powerfs at `dir/<name>` and points `dir/leases` (the config's lease_dir) at it.
fn boot_disk(dir: &Path, name: &str, model: Model) -> Result<Mount> {
    let mountpoint = dir.join(name);
    std::fs::create_dir_all(&mountpoint)?;
    let disk = Mount::new(&mountpoint, model)?;
    let link = dir.join("leases");
    match std::fs::remove_file(&link) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(e).with_context(|| format!("removing {}", link.display()));
        }
        _ => {}
    }
    std::os::unix::fs::symlink(&mountpoint, &link)
        .with_context(|| format!("linking {} to {}", link.display(), mountpoint.display()))?;
    Ok(disk)
}

pub(super) fn power_cut(ctx: &Ctx, dir: &Path) -> Result<()> {
    if ctx.subject != Subject::Provd {
        return Err(
            Skip("runs provd only: the rig mounts provd's lease_dir on powerfs".into()).into(),
        );
    }
    ensure!(
        ctx.loadgen.is_file(),
        "{} does not exist (build it with `cargo build --release -p provd-loadgen`)",
        ctx.loadgen.display()
    );
    provd_powerfs::can_mount()
        .map_err(|why| anyhow::anyhow!("cannot mount provd-powerfs: {why}"))?;
    let topo = Topology::load()?;
    // Declared before the server, so it is unmounted after the server is gone on every path.
    let mut disk = Some(boot_disk(dir, "powerfs-0", Model::new())?);
    let mut server = Server::start(ctx, &topo.server, dir)?;
    let cap = Capture::start(topo.load_ns(), LOAD_IF, "udp port 67", "load-side", dir)?;
    let load = load_args(ctx, KILL_AFTER.as_secs() as u32 + 30);
    let args = load.args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    note(format!("perfdhcp {}", args.join(" ")));
    let mut pd = topo.load_ns().spawn("perfdhcp", "perfdhcp", &args, dir)?;
    let started = Instant::now();
    while started.elapsed() < KILL_AFTER {
        server.check_alive()?;
        if let Some(st) = pd.try_wait()? {
            bail!(
                "perfdhcp exited ({st}) before the cut: {}",
                pd.stderr_tail(10)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    server.check_alive()?;

    // The power cut: the disk first, so no sync can succeed after this instant; the process an
    // instant later. An ACK sent in between can only be for a record synced before the cut.
    let cut = disk.as_ref().context("no disk")?.cut();
    server.kill9()?;
    let killed_at = SystemTime::now().duration_since(UNIX_EPOCH)?;
    note(format!(
        "power cut {:.1}s into the load: {cut}",
        started.elapsed().as_secs_f64()
    ));
    ensure!(
        cut.stats.file_syncs > 0 && cut.stats.bytes_written > 0,
        "provd wrote nothing to powerfs before the cut ({cut}): its lease_dir was not on it"
    );
    std::thread::sleep(Duration::from_secs(1));
    pd.stop(libc::SIGINT, Duration::from_secs(10))?;
    let (path, cstats) = cap.stop()?;
    let (pkts, _) = read_dhcp(&path, false)?;
    let t = tally(&pkts);
    let late = pkts
        .iter()
        .filter(|p| p.op == Op::Reply && p.ts > killed_at + Duration::from_millis(500))
        .count();
    note(format!(
        "wire before the cut: {} OFFERs, {} ACKs to {} clients, {} NAKs, {} moved; tcpdump dropped {}",
        t.offers,
        t.acks,
        t.acked.len(),
        t.naks,
        t.moved,
        cstats.dropped_by_kernel
    ));
    ensure!(
        late == 0,
        "{late} replies captured after the server was killed"
    );
    ensure!(
        !t.acked.is_empty(),
        "no ACK on the wire in the {KILL_AFTER:?} before the cut: nothing to hold the server to"
    );
    let mut text = String::new();
    for (mac, a) in &t.acked {
        let _ = writeln!(text, "{} {a}", fmt_mac(mac));
    }
    std::fs::write(dir.join("acked-pairs.txt"), text)?;

    // Power on: a new mount holding exactly what survived.
    let cut_disk = disk.take().context("no disk")?;
    let survivors = cut_disk.survivors();
    let image = dir.join("survived");
    let files = survivors
        .write_image(&image)
        .with_context(|| format!("writing the surviving image to {}", image.display()))?;
    cut_disk
        .unmount()
        .context("unmounting the powerfs that lost power")?;
    disk = Some(boot_disk(dir, "powerfs-1", survivors)?);
    note(format!(
        "restarting on what survived ({files} files, copied to {})",
        image.display()
    ));

    let mut problems = Vec::new();
    if !t.shared.is_empty() {
        problems.push(format!(
            "on the wire, {} addresses were ACKed to more than one client: {}",
            t.shared.len(),
            describe_shared(&t.shared)
        ));
    }
    // (1) The durable table, read while no server runs.
    match server.durable_leases() {
        Ok(table) => {
            let check = leases::check_table(&t.acked, &table);
            note(format!(
                "durable table after the power cut: {} leases, {} of {} ACKed pairs present",
                table.len(),
                check.matched,
                t.acked.len()
            ));
            if !check.ok() {
                problems.push(format!(
                    "durable lease table after the power cut: {}",
                    check.describe()
                ));
            }
        }
        Err(e) => problems.push(format!("reading the durable lease table: {e:#}")),
    }
    // (2) On the wire after the restart, as crash-kill9 asks.
    server.restart(&topo.server)?;
    let all: Vec<([u8; 6], Ipv4Addr)> = t.acked.iter().map(|(mac, a)| (*mac, *a)).collect();
    let seed = u64::from(SystemTime::now().duration_since(UNIX_EPOCH)?.subsec_nanos()) | 1;
    let targets = provd_rig::sample(&all, MAX_VERIFY, seed);
    let sample_file = dir.join("verify-pairs.txt");
    let mut text = String::new();
    for (mac, a) in &targets {
        text.push_str(&pair_line(
            *mac,
            *a,
            t.client_ids.get(mac).map(Vec::as_slice),
        ));
    }
    std::fs::write(&sample_file, text)?;
    note(format!(
        "re-asking {} of {} ACKed clients with INIT-REBOOT REQUESTs (sample seed {seed})",
        targets.len(),
        all.len()
    ));
    match loadgen_verify(ctx, topo.load_ns(), &sample_file, targets.len()) {
        Ok(summary) => note(format!(
            "after the power cut, provd-loadgen verify: {summary}"
        )),
        Err(e) => problems.push(format!("after the power cut: {e:#}")),
    }
    let stopped = server.stop();
    if let Some(d) = disk.take()
        && let Err(e) = d.unmount()
    {
        problems.push(format!("unmounting powerfs at the end: {e}"));
    }
    if !problems.is_empty() {
        bail!(problems.join("; "));
    }
    stopped
}
