//! A throwaway PostgreSQL 15 server (Debian's package) for the suites and benches that run provd
//! on its `postgres` store backend: its own data directory under the run's directory, trust
//! authentication for the one role it creates, listening on 127.0.0.1 *inside a network
//! namespace* (provd runs in the rig's server namespace, whose loopback is not the host's).
//!
//! PostgreSQL refuses to run as root, so `initdb` and `postgres` run as the `postgres` system
//! user (`setpriv`), which owns the data directory. [`Postgres::stop`] asks for a fast shutdown
//! (SIGINT) and waits; dropping the handle does the same, then kills what is left.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};

use crate::child::Child;
use crate::cmd;
use crate::netns::Netns;

/// Where Debian puts PostgreSQL 15's server binaries.
pub const PG_BIN: &str = "/usr/lib/postgresql/15/bin";
/// The role and database the server is made with.
pub const PG_USER: &str = "provd";
pub const PG_DB: &str = "provd";
/// The system user the server runs as.
const SYSTEM_USER: &str = "postgres";

/// A running PostgreSQL server. See the module documentation.
#[derive(Debug)]
pub struct Postgres {
    data: PathBuf,
    port: u16,
    ns: String,
    child: Option<Child>,
}

/// `program` from [`PG_BIN`] as the `postgres` user, in namespace `ns`.
fn as_postgres(ns: &str, program: &str) -> Command {
    let mut c = crate::netns::command_in(ns, "setpriv");
    c.args([
        "--reuid",
        SYSTEM_USER,
        "--regid",
        SYSTEM_USER,
        "--init-groups",
        "--",
    ])
    .arg(Path::new(PG_BIN).join(program));
    c
}

impl Postgres {
    /// Whether the binaries are installed (Debian's `postgresql-15`).
    pub fn available() -> bool {
        Path::new(PG_BIN).join("postgres").is_file() && Path::new(PG_BIN).join("initdb").is_file()
    }

    /// `initdb` into `<dir>/pgdata`, start the server on 127.0.0.1:`port` in `ns`, wait until
    /// it accepts connections and create the database [`PG_DB`] owned by [`PG_USER`].
    pub fn start(ns: &Netns, dir: &Path, port: u16) -> Result<Postgres> {
        ensure!(
            Postgres::available(),
            "PostgreSQL 15 is not installed in {PG_BIN} (run xtask/scripts/install-deps.sh)"
        );
        let data = dir.join("pgdata");
        std::fs::create_dir_all(&data).with_context(|| data.display().to_string())?;
        let out = cmd::output_timeout(
            Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&data),
            Duration::from_secs(10),
        )?;
        ensure!(
            out.status.success(),
            "chown {}: {}",
            data.display(),
            cmd::text(&out)
        );
        let out = cmd::output_kept(
            as_postgres(ns.name(), "initdb").arg("-D").arg(&data).args([
                "-U",
                PG_USER,
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ]),
            Duration::from_secs(120),
            dir,
            "initdb",
        )?;
        ensure!(
            out.status.success(),
            "initdb failed ({}): {}",
            out.status,
            crate::child::tail(&cmd::text(&out), 15)
        );
        let mut c = as_postgres(ns.name(), "postgres");
        c.arg("-D")
            .arg(&data)
            .arg("-k")
            .arg(&data)
            .args(["-h", "127.0.0.1", "-p", &port.to_string()])
            .args(["-c", "max_connections=200"]);
        let mut child = Child::spawn("postgres", c, dir)?;
        child
            .wait_for_output(
                "database system is ready to accept connections",
                Duration::from_secs(60),
            )
            .context("PostgreSQL did not start")?;
        let mut pg = Postgres {
            data,
            port,
            ns: ns.name().to_string(),
            child: Some(child),
        };
        let out = cmd::output_timeout(
            as_postgres(&pg.ns, "createdb")
                .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-U", PG_USER])
                .arg(PG_DB),
            Duration::from_secs(30),
        )?;
        if !out.status.success() {
            let _ = pg.stop();
            bail!("createdb {PG_DB} failed: {}", cmd::text(&out));
        }
        Ok(pg)
    }

    /// `postgresql://provd@127.0.0.1:PORT/provd`: reachable from inside the namespace.
    pub fn url(&self) -> String {
        format!("postgresql://{PG_USER}@127.0.0.1:{}/{PG_DB}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn data_dir(&self) -> &Path {
        &self.data
    }

    /// `psql -At -c SQL` against the database, in the server's namespace: its output.
    pub fn psql(&self, sql: &str) -> Result<String> {
        let out = cmd::output_timeout(
            as_postgres(&self.ns, "psql")
                .args([
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &self.port.to_string(),
                    "-U",
                    PG_USER,
                ])
                .args(["-d", PG_DB, "-At", "-v", "ON_ERROR_STOP=1", "-c", sql]),
            Duration::from_secs(60),
        )?;
        ensure!(
            out.status.success(),
            "psql -c {sql:?}: {}",
            cmd::text(&out).trim()
        );
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Fast shutdown (SIGINT), 30 s to go, then SIGKILL.
    pub fn stop(&mut self) -> Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        if child.try_wait()?.is_some() {
            return Ok(());
        }
        let (_, clean) = child.stop(libc::SIGINT, Duration::from_secs(30))?;
        ensure!(
            clean,
            "PostgreSQL ignored a fast shutdown for 30 s and was killed"
        );
        Ok(())
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Needs root and Debian's PostgreSQL 15: `cargo test -p provd-rig -- --ignored postgres`.
    #[test]
    #[ignore = "needs root (a network namespace) and PostgreSQL 15"]
    fn postgres_starts_in_a_namespace_answers_there_and_stops() {
        let ns = Netns::new("pgtest").unwrap();
        let dir = std::env::temp_dir().join(format!("rig-pg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut pg = Postgres::start(&ns, &dir, 55499).unwrap();
        assert_eq!(pg.psql("select 40 + 2").unwrap().trim(), "42");
        assert!(pg.url().ends_with(":55499/provd"));
        // Not on the host's loopback: only inside the namespace.
        let host = std::net::TcpStream::connect_timeout(
            &"127.0.0.1:55499".parse().unwrap(),
            Duration::from_millis(300),
        );
        assert!(
            host.is_err(),
            "the server is reachable from the host's namespace"
        );
        pg.stop().unwrap();
        assert!(pg.psql("select 1").is_err(), "still answering after stop");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
