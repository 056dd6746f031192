//! The `package` suite: provd as an operator installs it. `cargo xtask package`'s .deb is
//! installed with `dpkg -i` on this machine, the installed unit's `ExecStart` runs as the unit's
//! `User=` with exactly its capabilities (`setpriv`: systemd is not PID 1 on these machines), in
//! a network namespace, with a `NOTIFY_SOCKET` this suite listens on; a real dhclient is served
//! by the shipped default config with no other step; the watchdog pings are watched while one
//! DHCP worker thread is frozen (ptrace) and while the whole process is stopped (SIGSTOP); and
//! `systemd-analyze` judges the unit. Every scenario purges the package on every path
//! (`dpkg -P`), and the suite refuses to start on a machine that already has provd, its user or
//! its directories: it leaves the machine as it found it.

use std::collections::BTreeMap;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use provd_rig::dhclient::Dhclient;
use provd_rig::topo::{CLIENT_IF, DIRECT_POOL, in_pool};
use provd_rig::{Child, Netns, Topology, cmd};

use super::{Args, Scenarios};
use crate::package::{self, BIN_PATH, CONFIG_PATH, Deb, STATE_DIR, UNIT_PATH};

/// The watchdog interval the suite hands provd (systemd would pass WatchdogSec= as
/// WATCHDOG_USEC): pings every second, a heartbeat older than one second is stale.
const WATCHDOG_USEC: u64 = 2_000_000;
/// The score `systemd-analyze security` must not exceed (issue 18: "OK").
const MAX_EXPOSURE: f64 = 3.0;
const READY_TIMEOUT: Duration = Duration::from_secs(30);
const BIND_TIMEOUT: Duration = Duration::from_secs(45);

#[derive(Debug)]
pub struct Ctx {
    deb: Deb,
    /// The same binary as the next Debian revision: what the upgrade installs over `deb`.
    next: Deb,
}

pub fn scenarios() -> Scenarios<Ctx> {
    vec![
        (
            "install-purge",
            install_purge as fn(&Ctx, &Path) -> Result<()>,
        ),
        ("unit-security", unit_security),
        ("serve-notify-watchdog", serve_notify_watchdog),
        ("upgrade-under-load", upgrade_under_load),
    ]
}

pub fn run(args: &Args) -> Result<()> {
    let scenarios = scenarios();
    let tools = [
        "ip",
        "dpkg",
        "dpkg-deb",
        "dpkg-query",
        "setpriv",
        "dhclient",
        "systemd-analyze",
        "adduser",
        "md5sum",
        "gzip",
    ];
    let bins = super::prepare(args, &scenarios, &tools, &["provd"])?;
    machine_is_clean()?;
    // In target/ (not the run directory, which a failure keeps, nor /tmp, which a failing
    // run's exit would leave behind): two 20 MB packages, replaced by the next run.
    let out = bins.root.join("target/debian/e2e");
    let deb = package::build(&bins.provd, 1, &out)?;
    let next = package::build(&bins.provd, 2, &out)?;
    let ctx = Ctx { deb, next };
    super::run_scenarios(
        "package",
        &ctx.deb.path.display().to_string(),
        &ctx,
        &scenarios,
        args,
    )
}

fn note(msg: impl AsRef<str>) {
    eprintln!("  {}", msg.as_ref());
}

/// No provd package, user, group, state or config directory: what the suite creates, it can
/// then remove without touching anything that was here before.
fn machine_is_clean() -> Result<()> {
    if let Some(v) = package::installed_version("provd")? {
        bail!(
            "provd {v} is installed on this machine; the package suite installs and purges its own"
        );
    }
    for (db, what) in [("passwd", "user"), ("group", "group")] {
        ensure!(
            getent(db, "provd")?.is_none(),
            "a provd {what} exists on this machine; the package suite creates and removes its own"
        );
    }
    for p in [STATE_DIR, "/etc/provd", UNIT_PATH] {
        ensure!(
            !Path::new(p).exists(),
            "{p} exists on this machine; the package suite creates and removes its own"
        );
    }
    Ok(())
}

fn getent(db: &str, key: &str) -> Result<Option<String>> {
    let o = cmd::output_timeout(
        Command::new("getent").args([db, key]),
        Duration::from_secs(10),
    )?;
    Ok(o.status
        .success()
        .then(|| String::from_utf8_lossy(&o.stdout).trim().to_string()))
}

/// The installed package; dropping it purges it (every path out of a scenario).
struct Installed;

impl Installed {
    fn install(deb: &Deb, dir: &Path) -> Result<Installed> {
        // Armed before dpkg runs: a half-done install is purged too.
        let guard = Installed;
        let o = cmd::output_timeout(
            Command::new("dpkg").arg("-i").arg(&deb.path),
            Duration::from_secs(300),
        )?;
        std::fs::write(dir.join("dpkg-i.log"), cmd::text(&o))?;
        ensure!(o.status.success(), "dpkg -i failed: {}", cmd::text(&o));
        let v = package::installed_version("provd")?;
        ensure!(
            v.as_deref() == Some(deb.version.as_str()),
            "dpkg says provd {v:?} is installed, expected {}",
            deb.version
        );
        Ok(guard)
    }

    fn purge(self) -> Result<()> {
        std::mem::forget(self);
        package::purge()
    }
}

impl Drop for Installed {
    fn drop(&mut self) {
        if let Err(e) = package::purge() {
            eprintln!("e2e: purging provd failed: {e:#}");
        }
    }
}

// ---------------------------------------------------------------------------------------------

/// dpkg -i puts every file where the issue says, makes the system user and its directory, marks
/// the config a conffile; the default config checks; dpkg -P takes all of it away again.
fn install_purge(ctx: &Ctx, dir: &Path) -> Result<()> {
    let installed = Installed::install(&ctx.deb, dir)?;
    for p in [
        BIN_PATH,
        CONFIG_PATH,
        UNIT_PATH,
        "/usr/share/man/man8/provd.8.gz",
        "/usr/share/provd/systemd/xdp.conf",
        "/usr/share/doc/provd/copyright",
    ] {
        ensure!(Path::new(p).is_file(), "{p} was not installed");
    }
    let pw = getent("passwd", "provd")?.context("postinst made no provd user")?;
    // provd:x:UID:GID:GECOS:HOME:SHELL
    let f: Vec<&str> = pw.split(':').collect();
    ensure!(f.len() == 7, "odd passwd entry {pw:?}");
    let uid: u32 = f[2].parse()?;
    ensure!(uid < 1000, "provd is not a system user: {pw}");
    ensure!(
        f[6].ends_with("nologin") || f[6] == "/bin/false",
        "provd can log in: {pw}"
    );
    let st = std::fs::metadata(STATE_DIR).context("postinst made no /var/lib/provd")?;
    {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        ensure!(
            st.uid() == uid && st.permissions().mode() & 0o7777 == 0o750,
            "{STATE_DIR} is uid {} mode {:o}, expected {uid} 750",
            st.uid(),
            st.permissions().mode() & 0o7777
        );
    }
    let conffiles = cmd::run(
        Command::new("dpkg-query").args(["-W", "-f", "${Conffiles}", "provd"]),
        Duration::from_secs(10),
    )?;
    ensure!(
        conffiles.contains(CONFIG_PATH),
        "{CONFIG_PATH} is not a conffile: {conffiles:?}"
    );
    let check = cmd::output_timeout(
        Command::new(BIN_PATH).args(["check-config", CONFIG_PATH]),
        Duration::from_secs(30),
    )?;
    ensure!(
        check.status.success(),
        "the shipped config does not check: {}",
        cmd::text(&check)
    );
    let man = cmd::output_timeout(
        Command::new("sh").args([
            "-c",
            "gzip -dc /usr/share/man/man8/provd.8.gz | head -c 100000",
        ]),
        Duration::from_secs(10),
    )?;
    let man = String::from_utf8_lossy(&man.stdout);
    ensure!(
        man.starts_with(".TH PROVD 8") && man.contains("provd serve") && man.contains("--config"),
        "the man page lacks the commands: {}",
        &man[..man.len().min(300)]
    );
    note(format!(
        "installed {}: user {pw}, {STATE_DIR} 0750 provd, conffile {CONFIG_PATH}, config checks",
        ctx.deb.version
    ));

    installed.purge()?;
    machine_is_clean().context("after dpkg -P")?;
    ensure!(
        !Path::new(BIN_PATH).exists(),
        "{BIN_PATH} is still there after dpkg -P"
    );
    note("dpkg -P: package, user, group, /var/lib/provd, /etc/provd and the unit all gone");
    Ok(())
}

/// `systemd-analyze verify` is clean and `systemd-analyze security --offline=yes` scores the
/// installed unit at most 3.0.
fn unit_security(ctx: &Ctx, dir: &Path) -> Result<()> {
    let installed = Installed::install(&ctx.deb, dir)?;
    let verify = cmd::output_timeout(
        Command::new("systemd-analyze").args(["verify", UNIT_PATH]),
        Duration::from_secs(60),
    )?;
    let said = cmd::text(&verify);
    std::fs::write(dir.join("verify.txt"), &said)?;
    ensure!(
        verify.status.success() && said.trim().is_empty(),
        "systemd-analyze verify {UNIT_PATH}: {} {said}",
        verify.status
    );
    let sec = cmd::output_timeout(
        Command::new("systemd-analyze").args([
            "security",
            "--offline=yes",
            "--no-pager",
            UNIT_PATH,
        ]),
        Duration::from_secs(60),
    )?;
    let report = String::from_utf8_lossy(&sec.stdout).into_owned();
    std::fs::write(dir.join("security.txt"), &report)?;
    let (score, verdict) = exposure(&report).with_context(|| {
        format!(
            "no overall exposure in systemd-analyze security's output: {}",
            cmd::text(&sec)
        )
    })?;
    println!("RESULT package systemd-analyze-security exposure={score:.1} verdict={verdict}");
    ensure!(
        score <= MAX_EXPOSURE,
        "exposure {score} {verdict} > {MAX_EXPOSURE}; see {}",
        dir.join("security.txt").display()
    );
    note(format!(
        "verify clean; security --offline=yes: {score:.1} {verdict}"
    ));
    installed.purge()
}

/// `→ Overall exposure level for provd.service: 2.1 OK 🙂` → (2.1, "OK").
fn exposure(report: &str) -> Option<(f64, String)> {
    let line = report
        .lines()
        .find(|l| l.contains("Overall exposure level"))?;
    let rest = line.split_once(": ")?.1;
    let mut w = rest.split_whitespace();
    let score = w.next()?.parse().ok()?;
    Some((score, w.next().unwrap_or("").to_string()))
}

// ---------------------------------------------------------------------------------------------
// The service as systemd would run it.

/// What the installed unit says about running provd.
#[derive(Debug)]
struct Unit {
    exec_start: Vec<String>,
    user: String,
    ambient: Vec<String>,
    bounding: Vec<String>,
    no_new_privs: bool,
    watchdog: String,
}

fn read_unit(text: &str) -> Result<Unit> {
    let mut kv: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for l in text.lines().map(str::trim) {
        if l.starts_with('#') || l.starts_with('[') {
            continue;
        }
        if let Some((k, v)) = l.split_once('=') {
            kv.entry(k).or_default().push(v);
        }
    }
    let one = |k: &str| -> Result<String> {
        kv.get(k)
            .and_then(|v| v.last())
            .map(|s| s.to_string())
            .with_context(|| format!("the unit has no {k}="))
    };
    let caps = |k: &str| -> Vec<String> {
        kv.get(k)
            .into_iter()
            .flatten()
            .flat_map(|v| v.split_whitespace())
            .map(|c| c.trim_start_matches("CAP_").to_ascii_lowercase())
            .collect()
    };
    Ok(Unit {
        exec_start: one("ExecStart")?
            .split_whitespace()
            .map(str::to_string)
            .collect(),
        user: one("User")?,
        ambient: caps("AmbientCapabilities"),
        bounding: caps("CapabilityBoundingSet"),
        no_new_privs: one("NoNewPrivileges")? == "yes",
        watchdog: one("WatchdogSec")?,
    })
}

/// `-all,+a,+b` for setpriv.
fn cap_list(caps: &[String]) -> String {
    let mut s = String::from("-all");
    for c in caps {
        s.push_str(",+");
        s.push_str(c);
    }
    s
}

/// Capability bits as /proc/PID/status shows them.
fn cap_mask(caps: &[String]) -> Result<u64> {
    let mut m = 0u64;
    for c in caps {
        let bit = match c.as_str() {
            "net_bind_service" => 10,
            "net_admin" => 12,
            "net_raw" => 13,
            "bpf" => 39,
            other => bail!("cap_mask: add {other}"),
        };
        m |= 1 << bit;
    }
    Ok(m)
}

/// The service manager's end of `NOTIFY_SOCKET`: a datagram socket in a directory of its own
/// under /run (a path, not an abstract name: abstract names belong to a network namespace and
/// provd runs in another).
struct NotifySocket {
    dir: PathBuf,
    path: PathBuf,
    sock: UnixDatagram,
    t0: Instant,
    got: Vec<(Duration, String)>,
}

impl NotifySocket {
    fn new() -> Result<NotifySocket> {
        use std::os::unix::fs::PermissionsExt;
        let dir = PathBuf::from(format!("/run/provd-e2e-notify-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o711))?;
        let path = dir.join("notify");
        let sock = UnixDatagram::bind(&path).with_context(|| path.display().to_string())?;
        // The provd user sends to it, as it would to /run/systemd/notify.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666))?;
        sock.set_read_timeout(Some(Duration::from_millis(50)))?;
        Ok(NotifySocket {
            dir,
            path,
            sock,
            t0: Instant::now(),
            got: Vec::new(),
        })
    }

    /// Reads what has arrived for up to `for_` (at least one read).
    fn pump(&mut self, for_: Duration) {
        let end = Instant::now() + for_;
        let mut buf = [0u8; 4096];
        loop {
            if let Ok(n) = self.sock.recv(&mut buf) {
                let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
                self.got.push((self.t0.elapsed(), msg));
                continue;
            }
            if Instant::now() >= end {
                break;
            }
        }
    }

    /// Waits for a message containing `needle` after `since`; returns it and when it came.
    fn wait_for(
        &mut self,
        needle: &str,
        since: Duration,
        timeout: Duration,
    ) -> Result<(Duration, String)> {
        let end = Instant::now() + timeout;
        loop {
            if let Some(m) = self
                .got
                .iter()
                .find(|(t, m)| *t >= since && m.contains(needle))
            {
                return Ok(m.clone());
            }
            ensure!(
                Instant::now() < end,
                "no {needle:?} on NOTIFY_SOCKET within {timeout:?}; got {:?}",
                self.got
            );
            self.pump(Duration::from_millis(100));
        }
    }

    /// When `WATCHDOG=1` arrived, within [from, to).
    fn pings(&self, from: Duration, to: Duration) -> Vec<Duration> {
        self.got
            .iter()
            .filter(|(t, m)| *t >= from && *t < to && m.lines().any(|l| l == "WATCHDOG=1"))
            .map(|(t, _)| *t)
            .collect()
    }

    fn now(&self) -> Duration {
        self.t0.elapsed()
    }
}

impl Drop for NotifySocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs the unit's ExecStart in `ns` as systemd would: its user, its capabilities (inheritable,
/// ambient, bounding), no_new_privs, a clean environment with NOTIFY_SOCKET and WATCHDOG_USEC,
/// working directory /.
fn start_service(unit: &Unit, ns: &Netns, notify: &Path, label: &str, dir: &Path) -> Result<Child> {
    let mut c = ns.command("setpriv");
    c.env_clear()
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .env("LANG", "C.UTF-8")
        .env("NOTIFY_SOCKET", notify)
        .env("WATCHDOG_USEC", WATCHDOG_USEC.to_string())
        .current_dir("/")
        .args([
            "--reuid",
            &unit.user,
            "--regid",
            &unit.user,
            "--init-groups",
        ])
        .args(["--inh-caps", &cap_list(&unit.ambient)])
        .args(["--ambient-caps", &cap_list(&unit.ambient)])
        .args(["--bounding-set", &cap_list(&unit.bounding)]);
    if unit.no_new_privs {
        c.arg("--no-new-privs");
    }
    c.arg("--").args(&unit.exec_start);
    note(cmd::describe(&c));
    Child::spawn(label, c, dir)
}

fn proc_status(pid: u32) -> Result<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    Ok(text
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect())
}

/// The thread of `pid` named `name`.
fn thread_named(pid: u32, name: &str) -> Result<i32> {
    for e in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        let e = e?;
        let comm = std::fs::read_to_string(e.path().join("comm")).unwrap_or_default();
        if comm.trim() == name {
            return Ok(e.file_name().to_string_lossy().parse()?);
        }
    }
    bail!("provd ({pid}) has no thread named {name}")
}

/// One thread held in a ptrace stop (PTRACE_SEIZE + PTRACE_INTERRUPT): the rest of the process
/// runs on, as when a worker is stuck in a syscall. Dropping it lets the thread go.
struct FrozenThread(i32);

impl FrozenThread {
    fn freeze(tid: i32) -> Result<FrozenThread> {
        let null = std::ptr::null_mut::<libc::c_void>();
        // SAFETY: ptrace(2) on a thread id; no memory of ours is passed.
        if unsafe { libc::ptrace(libc::PTRACE_SEIZE, tid, null, null) } != 0 {
            bail!("PTRACE_SEIZE {tid}: {}", std::io::Error::last_os_error());
        }
        let frozen = FrozenThread(tid);
        // SAFETY: as above, on the thread we just seized.
        if unsafe { libc::ptrace(libc::PTRACE_INTERRUPT, tid, null, null) } != 0 {
            bail!(
                "PTRACE_INTERRUPT {tid}: {}",
                std::io::Error::last_os_error()
            );
        }
        let mut status = 0;
        // SAFETY: waits for the stop of a tracee of this thread.
        let r = unsafe { libc::waitpid(tid, &mut status, libc::__WALL) };
        ensure!(
            r == tid,
            "waitpid {tid}: {}",
            std::io::Error::last_os_error()
        );
        Ok(frozen)
    }
}

impl Drop for FrozenThread {
    fn drop(&mut self) {
        let null = std::ptr::null_mut::<libc::c_void>();
        // SAFETY: detaches a stopped tracee of this thread; it resumes.
        unsafe { libc::ptrace(libc::PTRACE_DETACH, self.0, null, null) };
    }
}

/// The installed unit's command as its user with its capabilities: READY=1 with the I/O path in
/// STATUS=, a dhclient served by the shipped config, WATCHDOG=1 every half interval; a frozen
/// DHCP worker thread stops the pings (and STATUS= names it) though the main thread runs, and
/// they come back when it does; SIGSTOP stops them too; SIGTERM says STOPPING=1 and exits 0.
fn serve_notify_watchdog(ctx: &Ctx, dir: &Path) -> Result<()> {
    let installed = Installed::install(&ctx.deb, dir)?;
    let unit = read_unit(&std::fs::read_to_string(UNIT_PATH)?)?;
    note(format!(
        "unit: User={} caps={:?} WatchdogSec={} ExecStart={}",
        unit.user,
        unit.ambient,
        unit.watchdog,
        unit.exec_start.join(" ")
    ));
    let topo = Topology::direct()?;
    let mut notify = NotifySocket::new()?;
    let mut provd = start_service(&unit, &topo.server, &notify.path, "provd", dir)?;
    let pid = provd.pid();
    let (t_ready, ready) = notify
        .wait_for("READY=1", Duration::ZERO, READY_TIMEOUT)
        .with_context(|| format!("provd stderr:\n{}", provd.stderr_tail(20)))?;
    let status = ready
        .lines()
        .find_map(|l| l.strip_prefix("STATUS="))
        .context("READY=1 came without STATUS=")?
        .to_string();
    let path = status
        .split_whitespace()
        .find_map(|w| w.strip_prefix("path="))
        .with_context(|| format!("STATUS= names no I/O path: {status:?}"))?;
    ensure!(
        ["io_uring", "sockets"].contains(&path),
        "path={path}: without CAP_BPF the unit must not reach XDP ({status})"
    );
    ensure!(status.contains("dhcp"), "STATUS= names no roles: {status}");
    note(format!("READY=1 after {t_ready:.1?}: STATUS={status}"));

    // The process is what the unit asks for: its user, its capabilities and nothing else.
    let uid = getent("passwd", &unit.user)?
        .context("no service user")?
        .split(':')
        .nth(2)
        .context("passwd")?
        .to_string();
    let st = proc_status(pid)?;
    let want = format!("{:016x}", cap_mask(&unit.ambient)?);
    for (k, v) in [
        ("Uid", format!("{uid}\t{uid}\t{uid}\t{uid}")),
        ("CapEff", want.clone()),
        ("CapPrm", want.clone()),
        ("CapAmb", want.clone()),
        ("CapBnd", format!("{:016x}", cap_mask(&unit.bounding)?)),
        ("NoNewPrivs", "1".into()),
    ] {
        let got = st.get(k).map(String::as_str).unwrap_or("");
        ensure!(got == v, "/proc/{pid}/status {k}: {got:?}, expected {v:?}");
    }
    note(format!(
        "uid {uid}, CapEff {want} (net_bind_service only), NoNewPrivs 1"
    ));

    // A real client on the server's link, served by the shipped config with no other step.
    let mac = topo.links[0].b.mac()?;
    let dh = Dhclient::new(&dir.join("dhclient"), CLIENT_IF, None)?;
    let mut client = dh.start(topo.client(), "dhclient", dir)?;
    let bound = dh.wait_event(&mut client, &["BOUND", "REBOOT"], 0, BIND_TIMEOUT)?;
    let addr = bound.addr.context("dhclient bound without an address")?;
    ensure!(
        in_pool(addr, DIRECT_POOL),
        "dhclient got {addr}, outside the default pool"
    );
    drop(client);
    let leases = cmd::run(
        as_user(&unit.user).args([BIN_PATH, "leases", "--config", CONFIG_PATH]),
        Duration::from_secs(30),
    )?;
    let table = provd_rig::leases::parse_provd(&leases)?;
    ensure!(
        table.iter().any(|l| l.mac == Some(mac) && l.addr == addr),
        "provd leases has no {} -> {addr}: {leases}",
        provd_rig::fmt_mac(&mac)
    );
    note(format!(
        "dhclient {} bound {addr}; in `provd leases` as the provd user",
        provd_rig::fmt_mac(&mac)
    ));

    // Healthy: a ping every WATCHDOG_USEC / 2.
    let half = Duration::from_micros(WATCHDOG_USEC / 2);
    let t = notify.now();
    notify.pump(4 * half);
    let healthy = notify.pings(t, notify.now());
    ensure!(
        healthy.len() >= 3,
        "{} WATCHDOG=1 in {:?} while healthy (every {half:?} expected): {:?}",
        healthy.len(),
        4 * half,
        notify.got
    );

    // One DHCP worker stuck: the main thread runs on, but the pings stop.
    let tid = thread_named(pid, "provd-shard-0")?;
    let frozen = FrozenThread::freeze(tid)?;
    let t_freeze = notify.now();
    notify.pump(4 * half);
    let t_thaw = notify.now();
    ensure!(
        provd.try_wait()?.is_none(),
        "provd exited while a thread was frozen"
    );
    drop(frozen);
    // Stale once silent for more than half the interval, noticed within a 100 ms tick.
    let stale_by = t_freeze + half + Duration::from_millis(300);
    let during = notify.pings(stale_by, t_thaw);
    let (t_stuck, stuck) = notify.wait_for("STATUS=stuck", t_freeze, Duration::ZERO)?;
    ensure!(
        during.is_empty(),
        "WATCHDOG=1 kept coming while provd-shard-0 was frozen: {during:?} (frozen {t_freeze:?}..{t_thaw:?})"
    );
    ensure!(
        stuck.contains("provd-shard-0"),
        "STATUS= does not name the frozen worker: {stuck}"
    );
    let last_before = notify
        .pings(Duration::ZERO, t_thaw)
        .last()
        .copied()
        .unwrap_or_default();
    let (t_back, _) = notify.wait_for("WATCHDOG=1", t_thaw, 2 * half)?;
    note(format!(
        "provd-shard-0 (tid {tid}) frozen {:.1?}: last ping {:.1?} after the freeze, {stuck:?} after {:.1?}, \
         none for {:.1?} (> WatchdogSec {:?}: systemd would restart it); pings back {:.1?} after the thaw",
        t_thaw - t_freeze,
        last_before.saturating_sub(t_freeze),
        t_stuck - t_freeze,
        t_back - last_before,
        Duration::from_micros(WATCHDOG_USEC),
        t_back - t_thaw
    ));
    ensure!(
        t_back - last_before > Duration::from_micros(WATCHDOG_USEC),
        "the gap in pings ({:?}) is shorter than the watchdog interval",
        t_back - last_before
    );

    // The whole process stopped.
    provd.kill(libc::SIGSTOP)?;
    let t_stop = notify.now();
    notify.pump(4 * half);
    let t_cont = notify.now();
    provd.kill(libc::SIGCONT)?;
    let during = notify.pings(t_stop + Duration::from_millis(200), t_cont);
    ensure!(during.is_empty(), "WATCHDOG=1 while SIGSTOPped: {during:?}");
    let (t_back, _) = notify.wait_for("WATCHDOG=1", t_cont, 2 * half)?;
    note(format!(
        "SIGSTOP {:.1?}: no ping; back {:.1?} after SIGCONT",
        t_cont - t_stop,
        t_back - t_cont
    ));

    // Stop as systemd does.
    let t = notify.now();
    provd.kill(libc::SIGTERM)?;
    let st = provd.wait_timeout(Duration::from_secs(20))?;
    notify.pump(Duration::from_millis(100));
    ensure!(st.success(), "provd exited {st} on SIGTERM");
    notify.wait_for("STOPPING=1", t, Duration::ZERO)?;
    note("SIGTERM: STOPPING=1, exit 0");
    std::fs::write(
        dir.join("notify.txt"),
        notify
            .got
            .iter()
            .map(|(t, m)| format!("{:>8.3} {}\n", t.as_secs_f64(), m.replace('\n', " | ")))
            .collect::<String>(),
    )?;
    drop(topo);
    installed.purge()
}

// ---------------------------------------------------------------------------------------------

/// The operator's edit of the conffile for the upgrade: a relayed network for perfdhcp's clients
/// (it relays from LOAD_GIADDR, as in the dhcp suite).
const LOAD_NETWORK: &str = "
[[shared_network]]
name = \"load\"
relays = [\"198.18.4.2\"]
  [[shared_network.subnet]]
  prefix = \"198.19.0.0/16\"
    [[shared_network.subnet.pool]]
    start = \"198.19.0.10\"
    end = \"198.19.255.250\"
";
/// A command run as `user` with its groups (setpriv), as the unit runs provd's own commands.
fn as_user(user: &str) -> Command {
    let mut c = Command::new("setpriv");
    c.args(["--reuid", user, "--regid", user, "--init-groups", "--"]);
    c
}

/// The operator's ACS, so that a task queued before the upgrade can be looked for after it.
const ACS_SECTION: &str = "
[acs]
port = 7547
username = \"cpe\"
password = \"e2e-package\"
";
/// The ACS task API (`[acs] admin_port`, on loopback by default) in provd's namespace.
const TASK_API: &str = "http://127.0.0.1:7557";

/// `curl` against the ACS task API with an operator token, in `ns`: status and JSON body.
fn task_api(
    ns: &Netns,
    token: &str,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> Result<(u16, serde_json::Value)> {
    let mut c = ns.command("curl");
    c.args(["-sS", "-o", "-", "-w", "\n%{http_code}", "-X", method])
        .args(["-H", &format!("Authorization: Bearer {token}")])
        .arg(format!("{TASK_API}{path}"));
    if let Some(b) = body {
        c.args(["-H", "Content-Type: application/json", "--data", b]);
    }
    let out = cmd::run(&mut c, Duration::from_secs(15))?;
    let (text, code) = out.trim_end().rsplit_once('\n').unwrap_or(("", out.trim()));
    let code: u16 = code
        .parse()
        .with_context(|| format!("{method} {path}: curl printed {out:?}"))?;
    let v = serde_json::from_str(text).unwrap_or(serde_json::Value::String(text.to_string()));
    Ok((code, v))
}

/// The tasks queued for device `id`, in order, as the task API shows them.
fn queued_tasks(ns: &Netns, token: &str, id: &str) -> Result<Vec<serde_json::Value>> {
    let (code, v) = task_api(ns, token, "GET", &format!("/api/devices/{id}"), None)?;
    ensure!(code == 200, "GET /api/devices/{id}: {code} {v}");
    Ok(v["queued"].as_array().cloned().unwrap_or_default())
}

/// Before the upgrade: an operator token, one device, a snapshot, and then a Reboot queued
/// for it (the API journals the task before its 200). Returns the token, the device and its
/// queue.
fn queue_task_before_upgrade(
    ns: &Netns,
    user: &str,
) -> Result<(String, String, Vec<serde_json::Value>)> {
    let out = cmd::run(
        as_user(user)
            .args([BIN_PATH, "token", "create", "--config", CONFIG_PATH])
            .args(["--name", "e2e-package", "--role", "operator"]),
        Duration::from_secs(30),
    )?;
    let token = out.trim().to_string();
    ensure!(
        !token.is_empty() && !token.contains(char::is_whitespace),
        "`provd token create` printed {out:?}"
    );
    let (code, v) = task_api(
        ns,
        &token,
        "POST",
        "/api/seed",
        Some(r#"{"count": 1, "serial_prefix": "PKG"}"#),
    )?;
    ensure!(code == 200, "POST /api/seed: {code} {v}");
    let (code, v) = task_api(ns, &token, "GET", "/api/devices", None)?;
    ensure!(code == 200, "GET /api/devices: {code} {v}");
    let id = v
        .as_array()
        .or_else(|| v["devices"].as_array())
        .and_then(|a| a.first())
        .and_then(|d| d.as_str().or_else(|| d["id"].as_str()))
        .with_context(|| format!("no device in {v}"))?
        .to_string();
    let (code, v) = task_api(ns, &token, "POST", "/api/snapshot", None)?;
    ensure!(code == 200, "POST /api/snapshot: {code} {v}");
    let task = r#"{"method": "Reboot", "command_key": "across-upgrade"}"#;
    let (code, v) = task_api(
        ns,
        &token,
        "POST",
        &format!("/api/devices/{id}/tasks"),
        Some(task),
    )?;
    ensure!(code == 200, "queueing a Reboot: {code} {v}");
    let queued = queued_tasks(ns, &token, &id)?;
    ensure!(
        queued.iter().any(|t| t["method"] == "Reboot"),
        "the Reboot is not in the queue: {queued:?}"
    );
    Ok((token, id, queued))
}

/// perfdhcp's rate during the upgrade (the machines are 2 cores shared by the suites).
const UPGRADE_RATE: u32 = 1000;
/// Load before and after the upgrade.
const UPGRADE_SETTLE: Duration = Duration::from_secs(5);

/// `dpkg -i` of the next revision over the running service under perfdhcp load, then what
/// postinst's `systemctl try-restart` does (SIGTERM, the new ExecStart, READY=1): the operator's
/// conffile edit is kept, provd serves through dpkg's unpack, every ACK the wire showed is in
/// the durable table afterwards, an ACS task queued before is still queued after, and the gap
/// in ACKs is measured (RESULT line).
fn upgrade_under_load(ctx: &Ctx, dir: &Path) -> Result<()> {
    use provd_dhcp::{MessageType, Op};
    use provd_rig::topo::{LOAD_GIADDR, LOAD_IF, SERVER_IP};
    use std::time::{SystemTime, UNIX_EPOCH};

    let installed = Installed::install(&ctx.deb, dir)?;
    let mut conf = std::fs::read_to_string(CONFIG_PATH)?;
    conf.push_str(LOAD_NETWORK);
    conf.push_str(ACS_SECTION);
    std::fs::write(CONFIG_PATH, &conf)?;
    let unit = read_unit(&std::fs::read_to_string(UNIT_PATH)?)?;
    let topo = Topology::load()?;
    let mut notify = NotifySocket::new()?;
    let mut provd = start_service(&unit, &topo.server, &notify.path, "provd-old", dir)?;
    notify
        .wait_for("READY=1", Duration::ZERO, READY_TIMEOUT)
        .with_context(|| format!("provd stderr:\n{}", provd.stderr_tail(20)))?;
    let (token, device, queued_before) = queue_task_before_upgrade(&topo.server, &unit.user)?;

    let cap = provd_rig::Capture::start(topo.load_ns(), LOAD_IF, "udp port 67", "load-side", dir)?;
    let load = provd_rig::perfdhcp::Load {
        local: LOAD_GIADDR,
        server: SERVER_IP,
        rate: UPGRADE_RATE,
        clients: 50_000,
        period_secs: 60,
        exit_wait_us: 2_000_000,
        drop_time_secs: 2.0,
        seed: std::process::id(),
    };
    let args = load.args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    note(format!("perfdhcp {}", args.join(" ")));
    let mut pd = topo.load_ns().spawn("perfdhcp", "perfdhcp", &args, dir)?;
    std::thread::sleep(UPGRADE_SETTLE);

    let t = Instant::now();
    let o = cmd::output_timeout(
        Command::new("dpkg")
            .args(["-i", "--force-confold"])
            .arg(&ctx.next.path),
        Duration::from_secs(300),
    )?;
    std::fs::write(dir.join("dpkg-upgrade.log"), cmd::text(&o))?;
    ensure!(
        o.status.success(),
        "dpkg -i (upgrade) failed: {}",
        cmd::text(&o)
    );
    let dpkg_took = t.elapsed();
    ensure!(
        provd.try_wait()?.is_none(),
        "provd did not survive dpkg's unpack: {}",
        provd.stderr_tail(10)
    );
    let v = package::installed_version("provd")?;
    ensure!(
        v.as_deref() == Some(ctx.next.version.as_str()),
        "after the upgrade dpkg says {v:?}"
    );
    ensure!(
        std::fs::read_to_string(CONFIG_PATH)? == conf,
        "the upgrade did not keep the operator's {CONFIG_PATH}"
    );

    // systemctl try-restart: stop (SIGTERM, bounded), start the new binary, READY=1.
    let stop_at = SystemTime::now().duration_since(UNIX_EPOCH)?;
    let t = Instant::now();
    provd.kill(libc::SIGTERM)?;
    let st = provd.wait_timeout(Duration::from_secs(30))?;
    ensure!(st.success(), "the old provd exited {st} on SIGTERM");
    let stopped = t.elapsed();
    let since = notify.now();
    let mut provd = start_service(&unit, &topo.server, &notify.path, "provd-new", dir)?;
    notify
        .wait_for("READY=1", since, READY_TIMEOUT)
        .with_context(|| format!("new provd stderr:\n{}", provd.stderr_tail(20)))?;
    let restarted = t.elapsed();
    let queued_after = queued_tasks(&topo.server, &token, &device)?;
    std::thread::sleep(UPGRADE_SETTLE);
    ensure!(
        pd.try_wait()?.is_none(),
        "perfdhcp ended early: {}",
        pd.stderr_tail(10)
    );
    pd.stop(libc::SIGINT, Duration::from_secs(10))?;
    let (path, cstats) = cap.stop()?;
    provd.kill(libc::SIGTERM)?;
    let st = provd.wait_timeout(Duration::from_secs(30))?;
    ensure!(st.success(), "the new provd exited {st} on SIGTERM");

    let (pkts, _) = provd_rig::pcap::read_dhcp(&path, false)?;
    let mut acked: BTreeMap<[u8; 6], std::net::Ipv4Addr> = BTreeMap::new();
    let mut ack_times = Vec::new();
    for p in &pkts {
        if p.op == Op::Reply && p.is(MessageType::Ack) {
            if let Some(mac) = p.mac {
                acked.insert(mac, p.yiaddr);
            }
            ack_times.push(p.ts);
        }
    }
    ack_times.sort();
    let before = ack_times.iter().filter(|&&t| t < stop_at).count();
    let after = ack_times.len() - before;
    ensure!(
        before > 0 && after > 0,
        "ACKs on the wire: {before} before the restart, {after} after"
    );
    let (gap, gap_end) = ack_times
        .windows(2)
        .map(|w| (w[1] - w[0], w[1]))
        .max()
        .unwrap_or_default();
    let table = provd_rig::leases::parse_provd(&cmd::run(
        as_user(&unit.user).args([BIN_PATH, "leases", "--config", CONFIG_PATH]),
        Duration::from_secs(60),
    )?)?;
    let check = provd_rig::leases::check_table(&acked, &table);
    println!(
        "RESULT package upgrade gap_ms={} acks={} clients={} kept={} dpkg_s={:.1} stop_s={:.2} \
         restart_to_ready_s={:.2} tcpdump_dropped={}",
        gap.as_millis(),
        ack_times.len(),
        acked.len(),
        check.matched,
        dpkg_took.as_secs_f64(),
        stopped.as_secs_f64(),
        restarted.as_secs_f64(),
        cstats.dropped_by_kernel
    );
    note(format!(
        "dpkg -i {} over {} under {UPGRADE_RATE}/s: provd served through it ({:.1}s); restart: \
         stop {:.2}s, ready {:.2}s after SIGTERM; longest gap between ACKs {} ms (ending \
         {:.1}s after the SIGTERM); {} ACKs to {} clients, {} before and {after} after the \
         restart; {} of them in the durable table",
        ctx.next.version,
        ctx.deb.version,
        dpkg_took.as_secs_f64(),
        stopped.as_secs_f64(),
        restarted.as_secs_f64(),
        gap.as_millis(),
        gap_end.saturating_sub(stop_at).as_secs_f64(),
        ack_times.len(),
        acked.len(),
        before,
        check.matched
    ));
    let show = |q: &[serde_json::Value]| serde_json::Value::from(q.to_vec()).to_string();
    note(format!(
        "ACS tasks queued for {device}: {} before the upgrade, {} after it",
        show(&queued_before),
        show(&queued_after)
    ));
    ensure!(
        check.ok(),
        "ACKed leases lost across the upgrade: {}",
        check.describe()
    );
    ensure!(
        queued_after == queued_before,
        "the ACS queue of {device} changed across the upgrade: {} before, {} after",
        show(&queued_before),
        show(&queued_after)
    );
    drop(topo);
    installed.purge()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposure_line_is_read() {
        let r = "  ✓ X\n→ Overall exposure level for provd.service: 2.1 OK 🙂\n";
        assert_eq!(exposure(r), Some((2.1, "OK".into())));
        assert_eq!(exposure("nothing"), None);
    }

    #[test]
    fn the_shipped_unit_is_read_into_a_setpriv_command() {
        let u = read_unit(package::UNIT).unwrap();
        assert_eq!(u.user, "provd");
        assert_eq!(u.ambient, ["net_bind_service"]);
        assert_eq!(cap_list(&u.bounding), "-all,+net_bind_service");
        assert_eq!(cap_mask(&u.ambient).unwrap(), 0x400);
        assert!(u.no_new_privs);
        assert_eq!(u.exec_start[0], BIN_PATH);
    }
}
