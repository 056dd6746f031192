//! Network namespaces owned by this run.

use std::ffi::OsStr;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::child::Child;
use crate::{cleanup, cmd};

static SEQ: AtomicU32 = AtomicU32::new(0);

/// A network namespace `provd-e2e-<pid>-<role>-<n>` with `lo` up. Dropping it kills whatever is
/// still running inside (only processes this run started can be there) and deletes it.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates a fresh namespace; `role` (e.g. `srv`, `cli`) makes logs readable.
    pub fn new(role: &str) -> Result<Self> {
        let name = format!(
            "{}{}-{}",
            crate::run_prefix(),
            role,
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        // Registered before it exists, so no signal can slip between creation and registration
        // (deleting a namespace that was never created is harmless).
        cleanup::registry().netns.insert(name.clone());
        let ns = Netns { name };
        cmd::ip(&["netns", "add", &ns.name])
            .with_context(|| format!("creating netns {}", ns.name))?;
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `ip -n <ns> ARGS...`, 10 s deadline.
    pub fn ip(&self, args: &[&str]) -> Result<String> {
        let mut full = vec!["-n", self.name.as_str()];
        full.extend_from_slice(args);
        cmd::ip(&full)
    }

    /// A `Command` that runs `program` inside the namespace (`ip netns exec`, which execs the
    /// program in place, so the child's PID is the program's).
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        command_in(&self.name, program)
    }

    /// Runs a short command inside the namespace; fails on non-zero exit. Returns stdout.
    pub fn exec(&self, program: &str, args: &[&str], timeout: Duration) -> Result<String> {
        cmd::run(self.command(program).args(args), timeout)
    }

    /// Spawns a long-running command inside the namespace as a [`Child`] in its own process
    /// group, stdout and stderr going to `<log_dir>/<label>.{out,err}`.
    pub fn spawn(
        &self,
        label: &str,
        program: &str,
        args: &[&str],
        log_dir: &Path,
    ) -> Result<Child> {
        let mut c = self.command(program);
        c.args(args);
        Child::spawn(label, c, log_dir)
    }

    /// Writes a sysctl inside the namespace (e.g. `net.ipv4.ip_forward`, `1`).
    pub fn sysctl(&self, key: &str, value: &str) -> Result<()> {
        self.exec(
            "sysctl",
            &["-q", "-w", &format!("{key}={value}")],
            Duration::from_secs(10),
        )?;
        Ok(())
    }

    /// Runs `f` on a fresh thread that has entered this namespace. Sockets it creates belong to
    /// the namespace for their whole life, whichever thread uses them later. `/proc/thread-self/net`
    /// shows this namespace's tables from inside `f`.
    pub fn run_in<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let path = format!("/run/netns/{}", self.name);
        let file = std::fs::File::open(&path).with_context(|| format!("opening {path}"))?;
        std::thread::Builder::new()
            .name(format!("in-{}", self.name))
            .spawn(move || -> Result<T> {
                // SAFETY: setns(2) on a valid fd that we own; CLONE_NEWNET only changes this
                // thread's network namespace (allowed in a multi-threaded process).
                let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
                if rc != 0 {
                    bail!("setns({path}): {}", std::io::Error::last_os_error());
                }
                drop(file);
                f()
            })?
            .join()
            .map_err(|_| anyhow::anyhow!("thread inside netns {} panicked", self.name))?
    }

    /// PIDs of processes running inside the namespace.
    pub fn pids(&self) -> Vec<i32> {
        pids_in(&self.name)
    }
}

/// A `Command` that runs `program` inside namespace `name` (`ip netns exec`, which execs the
/// program in place, so the child's PID is the program's); for holders of a name, not a
/// [`Netns`].
pub fn command_in(name: &str, program: impl AsRef<OsStr>) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", name]).arg(program);
    c
}

fn pids_in(name: &str) -> Vec<i32> {
    Command::new("ip")
        .args(["netns", "pids", name])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Kills whatever still runs in namespace `name` (by PID: only this run's processes can be in a
/// namespace it created), then deletes it. Errors are reported on stderr, never panics: this
/// runs from `Drop` and from the signal thread.
pub(crate) fn destroy(name: &str) {
    for round in 0..50 {
        let pids = pids_in(name);
        if pids.is_empty() {
            break;
        }
        if round == 0 {
            eprintln!("rig: netns {name}: killing leftover processes {pids:?}");
        }
        for pid in pids {
            let _ = cleanup::kill_pid(pid, libc::SIGKILL);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let st = Command::new("ip").args(["netns", "delete", name]).output();
    match st {
        Ok(o) if o.status.success() => {}
        Ok(o) => eprintln!(
            "rig: deleting netns {name}: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        ),
        Err(e) => eprintln!("rig: deleting netns {name}: {e}"),
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let mut reg = cleanup::registry();
        if reg.netns.remove(&self.name) {
            drop(reg);
            destroy(&self.name);
        }
    }
}
