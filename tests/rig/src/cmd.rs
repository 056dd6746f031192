//! Running short-lived commands with a deadline: every call either finishes in time or is killed
//! (its whole process group) and reported with what it printed so far.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::cleanup;

/// A readable one-line rendering of a command for error messages.
pub fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// What a finished command printed: stdout then stderr.
pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs `cmd` as [`output_timeout`] does and keeps what it printed as `<dir>/<label>.out` and
/// `<dir>/<label>.err` (the latter headed by the command line), for a failed scenario's
/// post-mortem.
pub fn output_kept(
    cmd: &mut Command,
    timeout: Duration,
    dir: &std::path::Path,
    label: &str,
) -> Result<Output> {
    let what = describe(cmd);
    let out = output_timeout(cmd, timeout)?;
    std::fs::write(dir.join(format!("{label}.out")), &out.stdout)?;
    std::fs::write(
        dir.join(format!("{label}.err")),
        format!("$ {what}\n{}", String::from_utf8_lossy(&out.stderr)),
    )?;
    Ok(out)
}

/// Runs `cmd` to completion within `timeout`, capturing stdout and stderr. The command gets its
/// own process group, which is killed on timeout.
pub fn output_timeout(cmd: &mut Command, timeout: Duration) -> Result<Output> {
    let what = describe(cmd);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = {
        let mut reg = cleanup::registry();
        let child = cmd.spawn().with_context(|| format!("spawning `{what}`"))?;
        reg.pgids.insert(child.id() as i32);
        child
    };
    let pgid = child.id() as i32;
    let mut out_pipe = child.stdout.take().context("stdout pipe")?;
    let mut err_pipe = child.stderr.take().context("stderr pipe")?;
    let out_t = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out_pipe.read_to_end(&mut v);
        v
    });
    let err_t = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err_pipe.read_to_end(&mut v);
        v
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        let mut reg = cleanup::registry();
        if let Some(st) = child.try_wait()? {
            reg.pgids.remove(&pgid);
            break Some(st);
        }
        if Instant::now() >= deadline {
            let _ = cleanup::killpg(pgid, libc::SIGKILL);
            let _ = child.wait();
            reg.pgids.remove(&pgid);
            break None;
        }
        drop(reg);
        std::thread::sleep(Duration::from_millis(5));
    };
    // Anything left in the group (a grandchild holding the pipes) must not keep us waiting.
    let _ = cleanup::killpg(pgid, libc::SIGKILL);
    let stdout = out_t.join().unwrap_or_default();
    let stderr = err_t.join().unwrap_or_default();
    match status {
        Some(status) => Ok(Output {
            status,
            stdout,
            stderr,
        }),
        None => bail!(
            "`{what}` did not finish within {timeout:?}; stderr: {}",
            String::from_utf8_lossy(&stderr).trim()
        ),
    }
}

/// Runs `cmd` within `timeout` and fails unless it exits 0. Returns stdout.
pub fn run(cmd: &mut Command, timeout: Duration) -> Result<String> {
    let what = describe(cmd);
    let out = output_timeout(cmd, timeout)?;
    if !out.status.success() {
        bail!(
            "`{what}` failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim(),
            String::from_utf8_lossy(&out.stdout).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `ip ARGS...` in the root namespace, 10 s deadline.
pub fn ip(args: &[&str]) -> Result<String> {
    run(Command::new("ip").args(args), Duration::from_secs(10))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captures_output_and_status() {
        let out = output_timeout(
            Command::new("sh").args(["-c", "echo out; echo err >&2; exit 3"]),
            Duration::from_secs(5),
        )
        .unwrap();
        assert_eq!(out.status.code(), Some(3));
        assert_eq!(out.stdout, b"out\n");
        assert_eq!(out.stderr, b"err\n");
        assert!(run(&mut Command::new("false"), Duration::from_secs(5)).is_err());
        assert_eq!(
            run(Command::new("echo").arg("hi"), Duration::from_secs(5)).unwrap(),
            "hi\n"
        );
    }

    #[test]
    fn kills_on_timeout_including_grandchildren() {
        let t = Instant::now();
        let err = output_timeout(
            Command::new("sh").args(["-c", "sleep 30 & sleep 30"]),
            Duration::from_millis(300),
        )
        .unwrap_err();
        assert!(err.to_string().contains("did not finish"), "{err}");
        assert!(t.elapsed() < Duration::from_secs(5));
    }
}
