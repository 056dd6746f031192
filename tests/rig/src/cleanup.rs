//! The process-wide record of what this run created, for teardown on paths where `Drop` does not
//! run: Ctrl-C / SIGTERM / SIGHUP (the signal thread kills every registered process group, deletes
//! every registered namespace, then exits 130).
//!
//! Guards register on creation and unregister when they tear down. The registry lock is held
//! while a child is reaped, so the signal thread can never kill a process group whose leader has
//! just been reaped (and whose PID could be reused).

use std::collections::BTreeSet;
use std::sync::{Mutex, MutexGuard, OnceLock};

#[derive(Debug, Default)]
pub(crate) struct Registry {
    pub(crate) pgids: BTreeSet<i32>,
    pub(crate) netns: BTreeSet<String>,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    pgids: BTreeSet::new(),
    netns: BTreeSet::new(),
});

/// Locks the registry, surviving a poisoned lock (a panic elsewhere must not stop teardown).
pub(crate) fn registry() -> MutexGuard<'static, Registry> {
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

/// Sends `sig` to process group `pgid`; ESRCH (already gone) is not an error.
pub(crate) fn killpg(pgid: i32, sig: i32) -> std::io::Result<()> {
    if pgid <= 1 {
        return Err(std::io::Error::other(format!(
            "refusing to signal pgid {pgid}"
        )));
    }
    // SAFETY: kill(2) with a negative pid signals a process group; it touches no memory of ours.
    let rc = unsafe { libc::kill(-pgid, sig) };
    if rc == 0 {
        return Ok(());
    }
    let err = std::io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::ESRCH) {
        Ok(())
    } else {
        Err(err)
    }
}

/// Sends `sig` to one process; ESRCH is not an error.
pub(crate) fn kill_pid(pid: i32, sig: i32) -> std::io::Result<()> {
    if pid <= 1 {
        return Err(std::io::Error::other(format!(
            "refusing to signal pid {pid}"
        )));
    }
    // SAFETY: kill(2) on a single PID; no memory is shared with the callee.
    let rc = unsafe { libc::kill(pid, sig) };
    if rc == 0 {
        return Ok(());
    }
    let err = std::io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::ESRCH) {
        Ok(())
    } else {
        Err(err)
    }
}

/// Kills every registered process group and deletes every registered namespace. Safe to call
/// more than once.
pub fn emergency_cleanup() {
    cleanup_locked(&mut registry());
}

/// The teardown itself, with the registry held: any thread that touches a guard meanwhile
/// (spawning, reaping, dropping) waits, so nothing new starts while namespaces go away.
fn cleanup_locked(reg: &mut Registry) {
    for &pgid in &reg.pgids {
        let _ = killpg(pgid, libc::SIGKILL);
    }
    reg.pgids.clear();
    for name in std::mem::take(&mut reg.netns) {
        crate::netns::destroy(&name);
    }
}

/// Waits for a teardown in progress on the signal thread (which then exits the process). Call
/// before exiting on the main thread, so an exit cannot cut a teardown short.
pub fn barrier() {
    drop(registry());
}

static SIGNALS: OnceLock<()> = OnceLock::new();

/// Starts a thread that, on SIGINT, SIGTERM or SIGHUP, tears down everything registered and exits
/// with 130. Idempotent.
pub fn install_signal_handlers() -> anyhow::Result<()> {
    if SIGNALS.get().is_some() {
        return Ok(());
    }
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])?;
    std::thread::Builder::new()
        .name("rig-signals".into())
        .spawn(move || {
            if let Some(sig) = signals.forever().next() {
                eprintln!("rig: signal {sig}: killing children and deleting namespaces");
                let mut reg = registry();
                cleanup_locked(&mut reg);
                // Exit with the registry still held: the main thread cannot race past us.
                std::process::exit(130);
            }
        })?;
    let _ = SIGNALS.set(());
    Ok(())
}

/// The PID embedded in a namespace name made by [`crate::run_prefix`], if the name is one.
pub fn owner_pid(netns_name: &str) -> Option<u32> {
    let rest = netns_name.strip_prefix(crate::NETNS_PREFIX)?;
    let (pid, _) = rest.split_once('-')?;
    pid.parse().ok()
}

/// Deletes namespaces left behind by earlier runs of the rig whose process is gone (killed with
/// SIGKILL, say, so no teardown ran). Processes still inside them are not touched: the namespace
/// is only unlinked and disappears when they exit. Returns the names deleted.
pub fn sweep_stale() -> Vec<String> {
    let Ok(out) = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
    else {
        return Vec::new();
    };
    let mut swept = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        let Some(pid) = owner_pid(name) else { continue };
        if pid == std::process::id() || std::path::Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let ok = std::process::Command::new("ip")
            .args(["netns", "delete", name])
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            swept.push(name.to_string());
        }
    }
    swept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_pid_parses_only_rig_names() {
        assert_eq!(owner_pid("provd-e2e-1234-srv-0"), Some(1234));
        assert_eq!(owner_pid("provd-e2e-x-srv"), None);
        assert_eq!(owner_pid("other-1234-srv"), None);
        assert_eq!(owner_pid("provd-e2e-1234"), None);
    }

    #[test]
    fn refuses_to_signal_init_or_everyone() {
        assert!(killpg(0, 0).is_err());
        assert!(killpg(1, 0).is_err());
        assert!(kill_pid(-1, 0).is_err());
    }
}
