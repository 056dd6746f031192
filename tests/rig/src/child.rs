//! Long-running child processes (servers, relays, clients, captures) in their own process group,
//! output to files, killed with their whole group on `Drop`.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::{cleanup, cmd};

#[derive(Debug)]
pub struct Child {
    label: String,
    inner: std::process::Child,
    pgid: i32,
    status: Option<ExitStatus>,
    stdout_path: PathBuf,
    stderr_path: PathBuf,
}

impl Child {
    /// Spawns `cmd` in a new process group with stdin closed and stdout/stderr written to
    /// `<log_dir>/<label>.out` / `.err`.
    pub fn spawn(label: &str, mut cmd: Command, log_dir: &Path) -> Result<Child> {
        let stdout_path = log_dir.join(format!("{label}.out"));
        let stderr_path = log_dir.join(format!("{label}.err"));
        let what = cmd::describe(&cmd);
        cmd.stdin(Stdio::null())
            .stdout(File::create(&stdout_path).with_context(|| stdout_path.display().to_string())?)
            .stderr(File::create(&stderr_path).with_context(|| stderr_path.display().to_string())?)
            .process_group(0);
        let inner = {
            let mut reg = cleanup::registry();
            let inner = cmd
                .spawn()
                .with_context(|| format!("spawning {label}: `{what}`"))?;
            reg.pgids.insert(inner.id() as i32);
            inner
        };
        let pgid = inner.id() as i32;
        Ok(Child {
            label: label.to_string(),
            inner,
            pgid,
            status: None,
            stdout_path,
            stderr_path,
        })
    }

    pub fn pid(&self) -> u32 {
        self.inner.id()
    }

    pub fn label(&self) -> &str {
        &self.label
    }

    pub fn stderr_path(&self) -> &Path {
        &self.stderr_path
    }

    pub fn stdout_path(&self) -> &Path {
        &self.stdout_path
    }

    /// Sends `sig` to the child's process group (a no-op once it was reaped).
    pub fn kill(&mut self, sig: i32) -> Result<()> {
        if self.status.is_some() {
            return Ok(());
        }
        cleanup::killpg(self.pgid, sig)
            .with_context(|| format!("signalling {} (pgid {})", self.label, self.pgid))
    }

    /// Non-blocking: the exit status if the child has exited. When the group leader is reaped,
    /// stragglers left in its group are killed at once.
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>> {
        if let Some(st) = self.status {
            return Ok(Some(st));
        }
        let mut reg = cleanup::registry();
        if let Some(st) = self.inner.try_wait()? {
            let _ = cleanup::killpg(self.pgid, libc::SIGKILL);
            reg.pgids.remove(&self.pgid);
            self.status = Some(st);
        }
        Ok(self.status)
    }

    /// Waits up to `timeout` for the child to exit; an error if it has not.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Result<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(st) = self.try_wait()? {
                return Ok(st);
            }
            if Instant::now() >= deadline {
                bail!(
                    "{} (pid {}) still running after {timeout:?}",
                    self.label,
                    self.pgid
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Sends `sig`, waits up to `grace`, then SIGKILLs. Returns the exit status and whether it
    /// exited on its own within the grace period.
    pub fn stop(&mut self, sig: i32, grace: Duration) -> Result<(ExitStatus, bool)> {
        self.kill(sig)?;
        match self.wait_timeout(grace) {
            Ok(st) => Ok((st, true)),
            Err(_) => {
                self.kill(libc::SIGKILL)?;
                Ok((self.wait_timeout(Duration::from_secs(10))?, false))
            }
        }
    }

    /// The whole stderr file so far.
    pub fn stderr_text(&self) -> String {
        std::fs::read(&self.stderr_path)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// The whole stdout file so far.
    pub fn stdout_text(&self) -> String {
        std::fs::read(&self.stdout_path)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// The last `n` lines of stderr, for error messages.
    pub fn stderr_tail(&self, n: usize) -> String {
        tail(&self.stderr_text(), n)
    }

    /// Waits until stdout or stderr contains `needle`. Fails on timeout or if the child exits
    /// first, quoting the end of its stderr.
    pub fn wait_for_output(&mut self, needle: &str, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.stderr_text().contains(needle) || self.stdout_text().contains(needle) {
                return Ok(());
            }
            if let Some(st) = self.try_wait()? {
                bail!(
                    "{} exited ({st}) before printing {needle:?}; stderr tail:\n{}",
                    self.label,
                    self.stderr_tail(15)
                );
            }
            if Instant::now() >= deadline {
                bail!(
                    "{} did not print {needle:?} within {timeout:?}; stderr tail:\n{}",
                    self.label,
                    self.stderr_tail(15)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The last `n` lines of `text`.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

impl Drop for Child {
    fn drop(&mut self) {
        if self.status.is_some() {
            return;
        }
        let mut reg = cleanup::registry();
        let _ = cleanup::killpg(self.pgid, libc::SIGKILL);
        let _ = self.inner.wait();
        reg.pgids.remove(&self.pgid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp() -> PathBuf {
        let d = std::env::temp_dir().join(format!("rig-child-test-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn output_wait_kill_and_drop() {
        let dir = tmp();
        let mut c = Command::new("sh");
        c.args(["-c", "echo ready >&2; exec sleep 30"]);
        let mut child = Child::spawn("sleeper", c, &dir).unwrap();
        child
            .wait_for_output("ready", Duration::from_secs(5))
            .unwrap();
        assert!(child.try_wait().unwrap().is_none());
        let (st, clean) = child.stop(libc::SIGTERM, Duration::from_secs(5)).unwrap();
        assert!(clean);
        assert!(!st.success());
        // A dropped child with a grandchild: the whole group goes.
        let mut c = Command::new("sh");
        c.args(["-c", "sleep 30 & echo $! >&2; wait"]);
        let child = Child::spawn("group", c, &dir).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        let gc: i32 = loop {
            if let Ok(pid) = child.stderr_text().trim().parse() {
                break pid;
            }
            assert!(Instant::now() < deadline);
            std::thread::sleep(Duration::from_millis(10));
        };
        drop(child);
        std::thread::sleep(Duration::from_millis(100));
        let stat = std::fs::read_to_string(format!("/proc/{gc}/stat")).unwrap_or_default();
        // Gone, or a zombie waiting for init to reap it.
        assert!(stat.is_empty() || stat.contains(") Z "), "{stat}");
    }

    #[test]
    fn early_exit_is_reported_with_stderr() {
        let dir = tmp();
        let mut c = Command::new("sh");
        c.args(["-c", "echo boom >&2; exit 2"]);
        let mut child = Child::spawn("failer", c, &dir).unwrap();
        let err = child
            .wait_for_output("never", Duration::from_secs(5))
            .unwrap_err()
            .to_string();
        assert!(err.contains("boom") && err.contains("exited"), "{err}");
        assert_eq!(tail("a\nb\nc", 2), "b\nc");
    }
}
