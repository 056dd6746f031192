//! Config findings (issue 18 item 8a): `provd check-config` must refuse a template that parses
//! but cannot render. The review's baseline: a template reading an undefined variable passed
//! the check, and every fetch of the file it generates then failed.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Result, bail, ensure};
use provd_rig::cmd;

use super::{Ctx, Scenarios};

pub fn scenarios() -> Scenarios<Ctx> {
    vec![(
        "check-config-unrenderable",
        check_config_unrenderable as fn(&Ctx, &Path) -> Result<()>,
    )]
}

/// `provd check-config` on `config`: (exit code, stdout + stderr).
fn check(ctx: &Ctx, config: &Path) -> Result<(Option<i32>, String)> {
    let out = cmd::output_timeout(
        Command::new(&ctx.provd).arg("check-config").arg(config),
        Duration::from_secs(30),
    )?;
    Ok((
        out.status.code(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    ))
}

/// A CM class whose template reads `{{ max_cpe }}` (the review's case: no such variable), a
/// phone class whose profile does arithmetic on a string: each is refused, naming its class.
/// The same config with working templates passes, so the refusals are about the templates.
fn check_config_unrenderable(ctx: &Ctx, dir: &Path) -> Result<()> {
    let config = dir.join("provd.toml");
    let write = |cm: &str, profile: &str| -> Result<()> {
        std::fs::write(dir.join("cm.j2"), cm)?;
        std::fs::write(dir.join("fv.j2"), profile)?;
        std::fs::write(
            &config,
            format!(
                r#"[server]
lease_dir = "{d}/leases"
[store]
path = "{d}/store.db"
[tftp]
root = "{d}"
[http]
[vars]
sip = "sip.example.net"
[[shared_network]]
name = "lab"
interfaces = ["198.18.0.1"]
  [[shared_network.subnet]]
  prefix = "198.18.0.0/24"
    [[shared_network.subnet.pool]]
    start = "198.18.0.100"
    end = "198.18.0.200"
[[class]]
name = "cm"
match = "docsis*"
boot_file = "cm/{{mac}}.cfg"
  [class.config_file]
  template = "cm.j2"
  kind = "docsis"
  shared_secret = "DOCSIS"
[[class]]
name = "ata"
match = "ata*"
  [class.profile]
  path = "p/{{mac}}.cfg"
  template = "fv.j2"
  format = "kvp"
"#,
                d = dir.display()
            ),
        )?;
        Ok(())
    };
    let good_cm = "Main {\n\tNetworkAccess 1;\n\tMaxCPE 2;\n\tSnmpMibObject sysContact.0 String \"{{ mac }}\";\n}\n";
    let good_profile = "DBID_SIP_SERVER={{ vars.sip }}\nDBID_MAC={{ mac_upper }}\n";
    write(good_cm, good_profile)?;
    let (code, text) = check(ctx, &config)?;
    ensure!(
        code == Some(0),
        "check-config refused the working config (exit {code:?}):\n{text}"
    );
    eprintln!("  working templates: check-config exit 0");

    let mut problems = Vec::new();
    for (what, cm, profile, class, want) in [
        (
            "CM template reading an undefined variable",
            "Main {\n\tNetworkAccess 1;\n\tMaxCPE {{ max_cpe }};\n}\n",
            good_profile,
            "class \"cm\"",
            "max_cpe",
        ),
        (
            "profile adding a number to a string",
            good_cm,
            "DBID_SIP_SERVER={{ vars.sip + 1 }}\n",
            "class \"ata\"",
            "does not render",
        ),
    ] {
        write(cm, profile)?;
        let (code, text) = check(ctx, &config)?;
        let first = text.lines().next().unwrap_or_default();
        eprintln!("  {what}: exit {code:?}: {first}");
        if code == Some(0) || !text.contains(class) || !text.contains(want) {
            problems.push(format!(
                "{what}: check-config exit {code:?}, want a refusal naming {class} and {want:?}:\n{text}"
            ));
        }
    }
    if !problems.is_empty() {
        bail!(problems.join("\n"));
    }
    Ok(())
}
