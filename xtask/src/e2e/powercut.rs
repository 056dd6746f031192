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
//! The lease directory the config names is `<dir>/leases/db`: provd makes `db` itself on the
//! mount, so its name must be synced into the mount's root too. `<dir>/leases` is a symlink to the
//! current boot's mountpoint (`powerfs-0`, then `powerfs-1`): every mount gets its own directory, so a mount
//! lazily detached on a failure path can never be confused with the next one. The surviving
//! image is also written to `<dir>/survived` for a post-mortem.

use std::path::Path;

use anyhow::{Context, Result, bail, ensure};
use provd_powerfs::{Model, Mount};
use provd_rig::Topology;

use super::super::{Ctx, Skip, Subject};
use super::{Server, hold_to_acks, load_then_kill, note};

/// Mounts powerfs at `dir/<name>` and points `dir/leases` (the parent of the config's lease_dir) at it.
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
    // Not the mount's root: provd makes its lease directory on the mount, so a directory whose
    // own name was never synced would be lost with every lease in it.
    let lease_dir = dir.join("leases").join("db");
    let mut server = Server::start_on(ctx, &topo.server, dir, lease_dir)?;
    // The power cut: the disk first, so no sync can succeed after this instant; the process an
    // instant later. An ACK sent in between can only be for a record synced before the cut.
    let t = load_then_kill(ctx, dir, &topo, &mut server, "cut", || {
        let cut = disk.as_ref().context("no disk")?.cut();
        ensure!(
            cut.stats.file_syncs > 0 && cut.stats.bytes_written > 0,
            "provd wrote nothing to powerfs before the cut ({cut}): its lease_dir was not on it"
        );
        Ok(format!("power cut ({cut})"))
    })?;

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
    let mut problems = hold_to_acks(ctx, dir, &topo, &mut server, &t, " after the power cut")?;
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
