//! Test support other crates reuse: a throwaway PostgreSQL 15 server.

use std::io;
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Where Debian's PostgreSQL 15 binaries are.
pub const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

/// How long the server may take to accept connections.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// A PostgreSQL 15 server of its own: a fresh data directory in a temp dir, listening on
/// 127.0.0.1 at a free port (and on a unix socket in the temp dir), trust authentication for
/// the `postgres` user, one database `provd` made at start. Run as the `postgres` system user
/// when the caller is root (the server refuses root). Stopped (`pg_ctl stop -m immediate`)
/// and its directory removed on drop, on every path.
///
/// Everything it does is processes and files: it is safe to start and drop from async code.
#[derive(Debug)]
pub struct TempPostgres {
    dir: Option<tempfile::TempDir>,
    data: PathBuf,
    port: u16,
    /// `(uid, gid)` the server runs as, when not the caller.
    user: Option<(u32, u32)>,
    next_db: AtomicU32,
}

fn err(msg: impl Into<String>) -> io::Error {
    io::Error::other(msg.into())
}

/// `postgres`' uid and gid, from /etc/passwd.
fn postgres_user() -> io::Result<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd")?;
    passwd
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.first() == Some(&"postgres"))
                .then(|| Some((f.get(2)?.parse().ok()?, f.get(3)?.parse().ok()?)))?
        })
        .ok_or_else(|| err("running as root, and there is no `postgres` user to run PostgreSQL as"))
}

fn is_root() -> bool {
    // The owner of /proc/self is the process's effective uid.
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
}

fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

fn tail(path: &Path, lines: usize) -> String {
    let s = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = s.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

impl TempPostgres {
    /// Initialises and starts a server; `Err` (with the server's log tail) if it does not
    /// come up within a minute.
    pub fn start() -> io::Result<TempPostgres> {
        let bin = Path::new(PG_BIN);
        if !bin.join("postgres").exists() {
            return Err(err(format!(
                "no PostgreSQL 15 at {PG_BIN} (apt-get install postgresql-15)"
            )));
        }
        let dir = tempfile::Builder::new().prefix("provd-pg-").tempdir()?;
        let user = if is_root() {
            Some(postgres_user()?)
        } else {
            None
        };
        // The server user must reach its data directory inside our temp dir.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))?;
        let data = dir.path().join("data");
        let sock = dir.path().join("sock");
        for d in [&data, &sock] {
            std::fs::create_dir(d)?;
            if let Some((uid, gid)) = user {
                std::os::unix::fs::chown(d, Some(uid), Some(gid))?;
            }
        }
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700))?;
        let mut pg = TempPostgres {
            dir: Some(dir),
            data,
            port: 0,
            user,
            next_db: AtomicU32::new(0),
        };
        let out = pg.run(
            Command::new(bin.join("initdb"))
                .arg("-D")
                .arg(&pg.data)
                .args([
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--locale=C.UTF-8",
                ])
                .arg("--no-instructions"),
        )?;
        if !out.status.success() {
            return Err(err(format!(
                "initdb failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        let log = pg.log_path();
        // The port is free when chosen, and may be taken before the server binds it: retry.
        let mut last = String::new();
        for _ in 0..3 {
            pg.port = free_port()?;
            let opts = format!(
                "-c listen_addresses=127.0.0.1 -p {} -k {} -c max_connections=200",
                pg.port,
                sock.display()
            );
            let out = pg.run(
                Command::new(bin.join("pg_ctl"))
                    .arg("-D")
                    .arg(&pg.data)
                    .arg("-l")
                    .arg(&log)
                    .args(["-o", &opts, "-w", "-t"])
                    .arg(READY_TIMEOUT.as_secs().to_string())
                    .arg("start"),
            )?;
            if out.status.success() && pg.wait_ready().is_ok() {
                pg.createdb("provd")?;
                return Ok(pg);
            }
            last = format!(
                "pg_ctl start: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            pg.stop();
        }
        Err(err(format!(
            "PostgreSQL did not start: {last}\nlog:\n{}",
            tail(&log, 30)
        )))
    }

    fn log_path(&self) -> PathBuf {
        self.dir
            .as_ref()
            .map(|d| d.path().join("postgres.log"))
            .unwrap_or_default()
    }

    /// Runs a PostgreSQL tool as the server's user.
    fn run(&self, cmd: &mut Command) -> io::Result<Output> {
        if let Some((uid, gid)) = self.user {
            cmd.uid(uid).gid(gid).env("HOME", "/var/lib/postgresql");
        }
        // A log file the server user can write.
        let log = self.log_path();
        if !log.exists() {
            std::fs::write(&log, b"")?;
            if let Some((uid, gid)) = self.user {
                std::os::unix::fs::chown(&log, Some(uid), Some(gid))?;
            }
        }
        cmd.current_dir(self.data.parent().unwrap_or(Path::new("/")))
            .output()
    }

    fn wait_ready(&self) -> io::Result<()> {
        let t0 = Instant::now();
        loop {
            let out = self.run(Command::new(Path::new(PG_BIN).join("pg_isready")).args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-t",
                "2",
            ]))?;
            if out.status.success() {
                return Ok(());
            }
            if t0.elapsed() > READY_TIMEOUT {
                return Err(err(format!(
                    "PostgreSQL not ready after {READY_TIMEOUT:?}; log:\n{}",
                    tail(&self.log_path(), 30)
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn createdb(&self, name: &str) -> io::Result<()> {
        let out = self.run(
            Command::new(Path::new(PG_BIN).join("createdb"))
                .args([
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &self.port.to_string(),
                    "-U",
                    "postgres",
                ])
                .arg(name),
        )?;
        if !out.status.success() {
            return Err(err(format!(
                "createdb {name}: {}; log:\n{}",
                String::from_utf8_lossy(&out.stderr).trim(),
                tail(&self.log_path(), 10)
            )));
        }
        Ok(())
    }

    /// The URL of the `provd` database.
    pub fn url(&self) -> String {
        self.url_of("provd")
    }

    /// The URL of database `db` on this server.
    pub fn url_of(&self, db: &str) -> String {
        format!("postgresql://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// Creates a fresh database (`provd_1`, `provd_2` ...) and returns its URL: one per test
    /// keeps tests independent on one server.
    pub fn fresh_database(&self) -> io::Result<String> {
        let name = format!("provd_{}", self.next_db.fetch_add(1, Ordering::Relaxed) + 1);
        self.createdb(&name)?;
        Ok(self.url_of(&name))
    }

    /// The TCP port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    fn stop(&self) {
        let _ = self.run(
            Command::new(Path::new(PG_BIN).join("pg_ctl"))
                .arg("-D")
                .arg(&self.data)
                .args(["-m", "immediate", "-w", "-t", "20", "stop"]),
        );
        // If pg_ctl could not stop it, kill the postmaster by the pid in its lock file.
        if let Some(pid) = std::fs::read_to_string(self.data.join("postmaster.pid"))
            .ok()
            .and_then(|s| s.lines().next().and_then(|l| l.trim().parse::<u32>().ok()))
            && Path::new(&format!("/proc/{pid}")).exists()
        {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    }
}

impl Drop for TempPostgres {
    fn drop(&mut self) {
        self.stop();
        if let Some(d) = self.dir.take() {
            let _ = d.close();
        }
    }
}
