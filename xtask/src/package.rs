//! `cargo xtask package`: provd as a Debian package, built with `dpkg-deb` from a staged tree
//! (no cargo-deb or debhelper: dpkg-deb is on every Debian machine already).
//!
//! ```text
//! /usr/sbin/provd                        the release binary
//! /etc/provd/provd.toml                  a working default (conffile): DHCP on 198.18.0.0/24
//! /lib/systemd/system/provd.service      Type=notify, watchdog, sandbox (packaging/deb/)
//! /usr/share/provd/systemd/xdp.conf      the drop-in that grants what XDP needs
//! /usr/share/man/man8/provd.8.gz         from `provd --help` and each subcommand's --help
//! /usr/share/doc/provd/                  copyright, example configs
//! DEBIAN/{control,conffiles,md5sums,postinst,prerm,postrm}
//! ```
//!
//! postinst creates the `provd` system user and `/var/lib/provd` (0750, owned by it) and, under
//! systemd, enables and starts the service (an upgrade restarts it); postrm purge removes the
//! state directory and the user. The version is the workspace's (`Cargo.toml`), `-1` as the
//! Debian revision unless `--revision` says otherwise (the e2e suite's upgrade builds `-2`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use provd_rig::cmd;

pub const UNIT: &str = include_str!("../../packaging/deb/provd.service");
pub const DEFAULT_CONFIG: &str = include_str!("../../packaging/deb/provd.toml");
const XDP_DROPIN: &str = include_str!("../../packaging/deb/xdp.conf");
const POSTINST: &str = include_str!("../../packaging/deb/postinst");
const PRERM: &str = include_str!("../../packaging/deb/prerm");
const POSTRM: &str = include_str!("../../packaging/deb/postrm");

/// Where the package puts things (the unit and the e2e suite name them too).
pub const BIN_PATH: &str = "/usr/sbin/provd";
pub const CONFIG_PATH: &str = "/etc/provd/provd.toml";
pub const UNIT_PATH: &str = "/lib/systemd/system/provd.service";
pub const STATE_DIR: &str = "/var/lib/provd";

#[derive(clap::Args)]
pub struct Args {
    /// Do not build target/release/provd first.
    #[arg(long)]
    pub no_build: bool,
    /// The Debian revision: the package's version is `<workspace version>-<revision>`.
    #[arg(long, default_value_t = 1)]
    pub revision: u32,
    /// The provd binary to package (default: target/release/provd).
    #[arg(long)]
    pub provd: Option<PathBuf>,
    /// Where the .deb goes (default: target/debian).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// A built package.
#[derive(Debug, Clone)]
pub struct Deb {
    pub path: PathBuf,
    /// `<upstream>-<revision>`, as dpkg shows it.
    pub version: String,
}

pub fn run(args: &Args) -> Result<()> {
    let root = crate::e2e::repo_root();
    let provd = args
        .provd
        .clone()
        .unwrap_or_else(|| root.join("target/release/provd"));
    if !args.no_build && args.provd.is_none() {
        build_release(&root)?;
    }
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| root.join("target/debian"));
    let deb = build(&provd, args.revision, &out)?;
    println!("{}", deb.path.display());
    Ok(())
}

/// `cargo build --release -p provd` in the repository.
pub fn build_release(root: &Path) -> Result<()> {
    eprintln!("package: building provd (cargo build --release -p provd)");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = cmd::output_timeout(
        Command::new(cargo)
            .current_dir(root)
            .env_remove("CARGO_TARGET_DIR")
            .args([
                "build",
                "--release",
                "--locked",
                "-p",
                "provd",
                "--target-dir",
            ])
            .arg(root.join("target")),
        Duration::from_secs(1800),
    )?;
    ensure!(
        out.status.success(),
        "building provd failed:\n{}",
        provd_rig::child::tail(&String::from_utf8_lossy(&out.stderr), 30)
    );
    Ok(())
}

/// The binary without its debug information (about a tenth of the release build's size), with
/// a GNU debuglink to `provd_VERSION_ARCH.debug`, which stays in `out` beside the .deb for
/// symbolizing a core or a perf profile of the installed binary.
fn strip(provd: &Path, version: &str, arch: &str, out: &Path) -> Result<Vec<u8>> {
    let debug = out.join(format!("provd_{version}_{arch}.debug"));
    let stripped = out.join(format!("provd_{version}_{arch}.stripped"));
    let objcopy = |args: &[&std::ffi::OsStr]| -> Result<()> {
        let o = cmd::output_timeout(Command::new("objcopy").args(args), Duration::from_secs(120))
            .context("objcopy (binutils; xtask/scripts/install-deps.sh installs it)")?;
        ensure!(o.status.success(), "objcopy failed: {}", cmd::text(&o));
        Ok(())
    };
    objcopy(&[
        "--only-keep-debug".as_ref(),
        provd.as_os_str(),
        debug.as_os_str(),
    ])?;
    let link = format!("--add-gnu-debuglink={}", debug.display());
    objcopy(&[
        "--strip-debug".as_ref(),
        link.as_ref(),
        provd.as_os_str(),
        stripped.as_os_str(),
    ])?;
    let bytes = std::fs::read(&stripped)?;
    std::fs::remove_file(&stripped)?;
    Ok(bytes)
}

/// Stages the tree and runs `dpkg-deb --build`; returns the .deb in `out`.
pub fn build(provd: &Path, revision: u32, out: &Path) -> Result<Deb> {
    ensure!(
        provd.is_file(),
        "{} does not exist (build it with `cargo build --release -p provd`)",
        provd.display()
    );
    let version = format!("{}-{revision}", env!("CARGO_PKG_VERSION"));
    let arch = cmd::run(
        Command::new("dpkg").arg("--print-architecture"),
        Duration::from_secs(10),
    )?
    .trim()
    .to_string();
    std::fs::create_dir_all(out).with_context(|| out.display().to_string())?;
    let stage = out.join(format!("stage-{version}"));
    if stage.exists() {
        std::fs::remove_dir_all(&stage)?;
    }

    put(
        &stage,
        BIN_PATH,
        &strip(provd, &version, &arch, out)?,
        0o755,
    )?;
    put(&stage, CONFIG_PATH, DEFAULT_CONFIG.as_bytes(), 0o644)?;
    put(&stage, UNIT_PATH, UNIT.as_bytes(), 0o644)?;
    put(
        &stage,
        "/usr/share/provd/systemd/xdp.conf",
        XDP_DROPIN.as_bytes(),
        0o644,
    )?;
    let root = crate::e2e::repo_root();
    for ex in ["minimal.toml", "lab.toml", "cmts.toml", "voip.toml"] {
        let text = std::fs::read(root.join("userspace/config/examples").join(ex))?;
        put(
            &stage,
            &format!("/usr/share/doc/provd/examples/{ex}"),
            &text,
            0o644,
        )?;
    }
    put(
        &stage,
        "/usr/share/doc/provd/copyright",
        copyright().as_bytes(),
        0o644,
    )?;
    let man = man_page(provd, &version)?;
    put(
        &stage,
        "/usr/share/man/man8/provd.8.gz",
        &gzip(&man, out)?,
        0o644,
    )?;

    let md5sums = md5sums(&stage)?;
    let installed_kib = du_kib(&stage)?;
    let control = control(
        &version,
        &arch,
        installed_kib,
        &glibc_needed(&std::fs::read(provd)?),
    );
    put(&stage, "/DEBIAN/control", control.as_bytes(), 0o644)?;
    put(
        &stage,
        "/DEBIAN/conffiles",
        format!("{CONFIG_PATH}\n").as_bytes(),
        0o644,
    )?;
    put(&stage, "/DEBIAN/md5sums", md5sums.as_bytes(), 0o644)?;
    put(&stage, "/DEBIAN/postinst", POSTINST.as_bytes(), 0o755)?;
    put(&stage, "/DEBIAN/prerm", PRERM.as_bytes(), 0o755)?;
    put(&stage, "/DEBIAN/postrm", POSTRM.as_bytes(), 0o755)?;

    let path = out.join(format!("provd_{version}_{arch}.deb"));
    let o = cmd::output_timeout(
        Command::new("dpkg-deb")
            .args(["--root-owner-group", "-Zxz", "--build"])
            .arg(&stage)
            .arg(&path),
        Duration::from_secs(600),
    )?;
    ensure!(
        o.status.success(),
        "dpkg-deb --build failed: {}",
        cmd::text(&o)
    );
    std::fs::remove_dir_all(&stage)?;
    eprintln!("package: {} ({version}, {arch})", path.display());
    Ok(Deb { path, version })
}

/// Writes `bytes` at `path` (absolute, inside the package) under `stage`, with `mode`.
fn put(stage: &Path, path: &str, bytes: &[u8], mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let p = stage.join(path.trim_start_matches('/'));
    if let Some(d) = p.parent() {
        std::fs::create_dir_all(d)?;
        // dpkg-deb refuses a DEBIAN directory (and the tree) with group/other write bits.
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755))?;
    }
    std::fs::write(&p, bytes).with_context(|| p.display().to_string())?;
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode))?;
    Ok(())
}

fn control(version: &str, arch: &str, installed_kib: u64, glibc: &str) -> String {
    format!(
        "Package: provd\n\
         Version: {version}\n\
         Architecture: {arch}\n\
         Maintainer: provd maintainers <provd@localhost>\n\
         Installed-Size: {installed_kib}\n\
         Depends: libc6 (>= {glibc}), adduser\n\
         Section: net\n\
         Priority: optional\n\
         Description: carrier-grade provisioning server for cable and VoIP devices\n \
         provd serves DHCPv4 (cable options, relays, durable leases), DOCSIS and\n \
         PacketCable config files over TFTP, PacketCable MTA provisioning over SNMP,\n \
         syslog, RFC 868 time, VoIP phone profiles over HTTP(S) and a TR-069 ACS,\n \
         from one binary, as a sandboxed systemd service with readiness and a\n \
         watchdog fed by its workers' liveness.\n"
    )
}

fn copyright() -> String {
    format!(
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\
         Upstream-Name: provd\n\n\
         Files: *\n\
         License: {}\n",
        env!("CARGO_PKG_LICENSE")
    )
}

/// The highest `GLIBC_x.y` symbol version the binary asks for (its libc6 dependency).
fn glibc_needed(elf: &[u8]) -> String {
    let needle = b"GLIBC_2.";
    let mut best = (2u32, 17u32, 0u32);
    let mut i = 0;
    while let Some(off) = find(&elf[i..], needle) {
        let start = i + off + needle.len();
        let mut end = start;
        while end < elf.len() && (elf[end].is_ascii_digit() || elf[end] == b'.') {
            end += 1;
        }
        let v: Vec<u32> = std::str::from_utf8(&elf[start..end])
            .unwrap_or("")
            .split('.')
            .filter_map(|p| p.parse().ok())
            .collect();
        if let Some(&minor) = v.first() {
            let cand = (2, minor, v.get(1).copied().unwrap_or(0));
            best = best.max(cand);
        }
        i = end.max(start);
    }
    if best.2 == 0 {
        format!("{}.{}", best.0, best.1)
    } else {
        format!("{}.{}.{}", best.0, best.1, best.2)
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Every file under `stage` but DEBIAN/, as `md5sum` prints it (paths relative to /).
fn md5sums(stage: &Path) -> Result<String> {
    let mut files = Vec::new();
    walk(stage, &mut files)?;
    files.sort();
    let mut c = Command::new("md5sum");
    c.current_dir(stage);
    for f in &files {
        let rel = f.strip_prefix(stage)?;
        if !rel.starts_with("DEBIAN") {
            c.arg(rel);
        }
    }
    cmd::run(&mut c, Duration::from_secs(120))
}

fn walk(dir: &Path, into: &mut Vec<PathBuf>) -> Result<()> {
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        if p.is_dir() {
            walk(&p, into)?;
        } else {
            into.push(p);
        }
    }
    Ok(())
}

fn du_kib(stage: &Path) -> Result<u64> {
    let mut files = Vec::new();
    walk(stage, &mut files)?;
    let mut bytes = 0;
    for f in files {
        bytes += std::fs::metadata(f)?.len().div_ceil(1024) * 1024;
    }
    Ok(bytes / 1024)
}

fn gzip(data: &[u8], tmp_dir: &Path) -> Result<Vec<u8>> {
    let tmp = tmp_dir.join("provd.8");
    std::fs::write(&tmp, data)?;
    let o = cmd::output_timeout(
        Command::new("gzip").args(["-9nc"]).arg(&tmp),
        Duration::from_secs(60),
    )?;
    std::fs::remove_file(&tmp)?;
    ensure!(o.status.success(), "gzip failed: {}", cmd::text(&o));
    Ok(o.stdout)
}

/// provd(8): `provd --help`, then each subcommand's `--help` (and its subcommands'), verbatim in
/// roff no-fill blocks, plus the files the package installs.
fn man_page(provd: &Path, version: &str) -> Result<Vec<u8>> {
    let help = |args: &[&str]| -> Result<String> {
        let o = cmd::output_timeout(
            Command::new(provd).args(args).arg("--help"),
            Duration::from_secs(30),
        )?;
        ensure!(
            o.status.success(),
            "{} {} --help failed: {}",
            provd.display(),
            args.join(" "),
            cmd::text(&o)
        );
        Ok(String::from_utf8_lossy(&o.stdout).into_owned())
    };
    let top = help(&[])?;
    let mut m = String::new();
    m.push_str(&format!(
        ".TH PROVD 8 \"\" \"provd {version}\" \"System Administration\"\n\
         .SH NAME\nprovd \\- carrier-grade provisioning server (DHCPv4, TFTP, MTA, syslog, time, \
         HTTP, TR-069 ACS)\n.SH SYNOPSIS\n.B provd\n.I COMMAND\n[\\fIOPTIONS\\fR]\n\
         .SH DESCRIPTION\n.nf\n{}.fi\n.SH COMMANDS\n",
        roff_verbatim(&top)
    ));
    for sub in subcommands(&top) {
        let text = help(&[&sub])?;
        m.push_str(&format!(
            ".SS \"provd {sub}\"\n.nf\n{}.fi\n",
            roff_verbatim(&text)
        ));
        for subsub in subcommands(&text) {
            let t = help(&[&sub, &subsub])?;
            m.push_str(&format!(
                ".SS \"provd {sub} {subsub}\"\n.nf\n{}.fi\n",
                roff_verbatim(&t)
            ));
        }
    }
    m.push_str(
        ".SH FILES\n\
         .TP\n/etc/provd/provd.toml\nThe configuration (a conffile); \\fBprovd check-config\\fR \
         checks it, \\fBsystemctl reload provd\\fR applies it.\n\
         .TP\n/var/lib/provd\nLeases, the lease log, the store; the only directory the service \
         may write.\n\
         .TP\n/lib/systemd/system/provd.service\nThe unit: Type=notify, WatchdogSec=, the \
         sandbox.\n\
         .TP\n/usr/share/provd/systemd/xdp.conf\nThe drop-in that grants what the XDP fast path \
         needs.\n\
         .SH SEE ALSO\n\\fBsystemd.service\\fR(5), \\fBsd_notify\\fR(3)\n",
    );
    Ok(m.into_bytes())
}

/// The names in a clap help text's `Commands:` section (but `help`).
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| l.trim() != "Commands:")
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| {
            // Entries are indented by two; wrapped descriptions by more.
            let rest = l.strip_prefix("  ")?;
            if rest.starts_with(' ') {
                return None;
            }
            rest.split_whitespace().next().map(str::to_string)
        })
        .filter(|n| n != "help")
        .collect()
}

/// Text that roff prints as it is: backslashes escaped, control characters at a line's start
/// neutralised.
fn roff_verbatim(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let l = line.replace('\\', "\\e");
        if l.starts_with('.') || l.starts_with('\'') {
            out.push_str("\\&");
        }
        out.push_str(&l);
        out.push('\n');
    }
    out
}

/// dpkg's view of an installed package: its version, or None.
pub fn installed_version(name: &str) -> Result<Option<String>> {
    let o = cmd::output_timeout(
        Command::new("dpkg-query").args(["-W", "-f", "${Status}\t${Version}", name]),
        Duration::from_secs(30),
    )?;
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    match text.split_once('\t') {
        Some((status, v)) if o.status.success() && !status.ends_with("not-installed") => {
            Ok(Some(v.to_string()))
        }
        _ => Ok(None),
    }
}

/// `dpkg -P provd` (also after a failed install); fails if the package is still there after.
pub fn purge() -> Result<()> {
    let o = cmd::output_timeout(
        Command::new("dpkg").args(["-P", "provd"]),
        Duration::from_secs(120),
    )?;
    if installed_version("provd")?.is_some() {
        bail!("dpkg -P provd left it installed: {}", cmd::text(&o));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_glibc_dependency_is_the_highest_version_asked_for() {
        let elf = b"\0GLIBC_2.2.5\0GLIBC_2.34\0GLIBC_2.17\0GLIBC_PRIVATE\0";
        assert_eq!(glibc_needed(elf), "2.34");
        assert_eq!(glibc_needed(b"\0GLIBC_2.2.5\0"), "2.17");
    }

    #[test]
    fn subcommands_are_read_from_clap_help() {
        let help = "Usage: provd <COMMAND>\n\nCommands:\n  serve         Serve\n  \
                    check-config  Check\n                wrapped line\n  help          Print\n\n\
                    Options:\n  -h, --help  Print help\n";
        assert_eq!(subcommands(help), ["serve", "check-config"]);
    }

    #[test]
    fn roff_text_is_escaped() {
        assert_eq!(roff_verbatim(".x\na\\b\n'q"), "\\&.x\na\\eb\n\\&'q\n");
    }

    #[test]
    fn the_unit_asks_for_what_the_issue_names() {
        for line in [
            "Type=notify",
            "WatchdogSec=",
            "Restart=on-failure",
            "User=provd",
            "AmbientCapabilities=CAP_NET_BIND_SERVICE",
            "CapabilityBoundingSet=CAP_NET_BIND_SERVICE",
            "ProtectSystem=strict",
            "ReadWritePaths=/var/lib/provd",
            "NoNewPrivileges=yes",
            "SystemCallFilter=@system-service",
            &format!("ExecStart={BIN_PATH} serve --config {CONFIG_PATH}"),
        ] {
            assert!(
                UNIT.lines().any(|l| l.starts_with(line)),
                "unit lacks {line}"
            );
        }
        assert!(
            UNIT.lines()
                .filter(|l| !l.starts_with('#'))
                .all(|l| !l.contains("CAP_BPF") && !l.contains("CAP_NET_ADMIN")),
            "XDP's caps only in the drop-in"
        );
        assert!(XDP_DROPIN.contains("AmbientCapabilities=CAP_BPF CAP_NET_ADMIN"));
    }
}
