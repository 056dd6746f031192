//! `[tftp]`, `[class.config_file]`, `[vars]` and `[[subscriber]]`: what a valid config means and
//! what each mistake is called.

use std::path::Path;

use provd_config::{ConfigFileKind, MtaHashAlg, Policy, VarValue};

use provd_config::testing::{assert_has, config, errors, policy as ok};

const GOOD: &str = r#"
[tftp]
root = "tftp-root"
max_windowsize = 16

[vars]
sip_domain = "voice.example.net"
lines = 2
trial = false

[[subscriber]]
mac = "00:15:cf:12:34:56"
vars = { tier = "gold" }

[[class]]
name = "cm"
match = "docsis*"
boot_file = "cm/{mac}.cfg"
[class.config_file]
template = "templates/cm.cfg.j2"
kind = "docsis"
shared_secret = "DOCSIS"

[[class]]
name = "mta"
match = "pktc*"
boot_file = "mta/{mac}.bin"
[class.config_file]
template = "/etc/provd/mta.j2"
kind = "mta"
mta_hash = "md5"
"#;

#[test]
fn a_full_config_means_what_it_says() {
    let p = ok(GOOD);
    let t = p.tftp.as_ref().expect("[tftp] enables the server");
    assert_eq!(
        t.bind.to_string(),
        "198.18.0.1",
        "defaults to [server].bind"
    );
    assert_eq!((t.port, t.workers), (69, 2));
    assert!(t.enforce, "enforce is on unless switched off");
    assert!(!t.allow_write);
    assert_eq!((t.max_blksize, t.max_windowsize), (1468, 16));
    let cm = p.classes[0].config_file.as_ref().unwrap();
    assert_eq!(cm.kind, ConfigFileKind::Docsis);
    assert_eq!(cm.shared_secret.as_deref(), Some("DOCSIS"));
    let mta = p.classes[1].config_file.as_ref().unwrap();
    assert_eq!(
        (mta.kind, mta.mta_hash),
        (ConfigFileKind::Mta, Some(MtaHashAlg::Md5))
    );
    assert_eq!(p.vars["lines"], VarValue::Integer(2));
    assert_eq!(p.vars["trial"], VarValue::Bool(false));
    let gold = &p.subscribers[&[0x00, 0x15, 0xcf, 0x12, 0x34, 0x56]];
    assert_eq!(gold["tier"], VarValue::String("gold".into()));
    assert!(ok("").tftp.is_none(), "no [tftp], no TFTP server");
}

#[test]
fn relative_paths_are_relative_to_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("provd.toml");
    std::fs::write(&file, config(GOOD)).unwrap();
    let p = Policy::from_file(&file).unwrap();
    assert_eq!(p.tftp.unwrap().root.unwrap(), dir.path().join("tftp-root"));
    let cm = p.classes[0].config_file.as_ref().unwrap();
    assert_eq!(cm.template, dir.path().join("templates/cm.cfg.j2"));
    let mta = p.classes[1].config_file.as_ref().unwrap();
    assert_eq!(
        mta.template,
        Path::new("/etc/provd/mta.j2"),
        "absolute stays"
    );
}

#[test]
fn tftp_errors_name_the_field() {
    let e = errors(
        "[tftp]\nport = 0\nmax_blksize = 7\nmax_windowsize = 70000\nbind = \"nope\"\nroot = \"\"\nmax_transfers = 0\n",
    );
    assert_has(&e, "tftp.port", "1..=65535");
    assert_has(&e, "tftp.max_blksize", "8..=65464");
    assert_has(&e, "tftp.max_windowsize", "1..=65535");
    assert_has(&e, "tftp.bind", "nope");
    assert_has(&e, "tftp.root", "empty");
    assert_has(&e, "tftp.max_transfers", "1..=");
    let e = errors("[tftp]\nallow_write = true\n");
    assert_has(&e, "tftp.allow_write", "set tftp.root");
    let e = errors("[tftp]\nwindow = 4\n");
    assert!(e.to_string().contains("window"), "unknown key named: {e}");
}

#[test]
fn syslog_and_time_tables() {
    let p = ok("[syslog]\nport = 5514\n[time]\ntcp = false\n");
    let s = p.syslog.unwrap();
    assert_eq!(
        (s.port, s.events_per_device, s.bind.to_string().as_str()),
        (5514, 64, "198.18.0.1")
    );
    let t = p.time.unwrap();
    assert_eq!((t.port, t.udp, t.tcp), (37, true, false));
    assert!(ok("").syslog.is_none() && ok("").time.is_none());
    let e = errors(
        "[syslog]\nport = 0\nevents_per_device = 0\nbind = \"x\"\n[time]\nudp = false\ntcp = false\n",
    );
    assert_has(&e, "syslog.port", "1..=65535");
    assert_has(&e, "syslog.events_per_device", "1..=");
    assert_has(&e, "syslog.bind", "x");
    assert_has(&e, "time", "both off");
}

#[test]
fn mta_table() {
    let e = errors("[mta]\n");
    assert_has(&e, "mta", "add the [tftp] table");
    assert_has(&e, "mta", "no class generates MTA files");
    let m = ok(&format!("[mta]\n{GOOD}")).mta.unwrap();
    assert_eq!(m.port, 162);
    assert_eq!(m.inform_communities, ["private"]);
    assert_eq!(
        (m.set_community.as_str(), m.get_community.as_str()),
        ("private", "private")
    );
    let m = ok(&format!(
        "[mta]\ninform_communities = [\"public\", \"private\"]\nset_community = \"rw\"\n{GOOD}"
    ))
    .mta
    .unwrap();
    assert_eq!(m.get_community, "rw", "GETs default to the SET community");
    let e = errors("[mta]\ninform_communities = []\nset_community = \"\"\nport = 70000\n");
    assert_has(&e, "mta.inform_communities", "unanswered");
    assert_has(&e, "mta.set_community", "1 to 255");
    assert_has(&e, "mta.port", "1..=65535");
}

#[test]
fn config_file_errors_name_the_field() {
    let e = errors(
        r#"
[[class]]
name = "a"
match = "x*"
boot_file = "static.cfg"
[class.config_file]
kind = "docsis"

[[class]]
name = "b"
match = "y*"
[class.config_file]
template = "t"
kind = "mta"
shared_secret = "k"

[[class]]
name = "c"
match = "z*"
boot_file = "f/{mac}"
[class.config_file]
template = "t"
kind = "cm"
mta_hash = "sha256"
"#,
    );
    assert_has(&e, "class[0].config_file.template", "required");
    assert_has(&e, "class[0].config_file.shared_secret", "CMTS MIC key");
    assert_has(&e, "class[0].boot_file", "{mac}");
    assert_has(&e, "class[0].config_file", "[tftp]");
    assert_has(&e, "class[1].config_file.shared_secret", "docsis");
    assert_has(&e, "class[1].config_file", "needs boot_file");
    assert_has(&e, "class[2].config_file.kind", "\"cm\"");
    assert_has(&e, "class[2].config_file.mta_hash", "sha256");
}

#[test]
fn two_classes_cannot_generate_the_same_names() {
    let e = errors(
        r#"
[tftp]
[[class]]
name = "a"
match = "x*"
boot_file = "f/{mac}"
[class.config_file]
template = "t"
kind = "mta"
[[class]]
name = "b"
match = "y*"
boot_file = "f/{mac}"
[class.config_file]
template = "u"
kind = "mta"
"#,
    );
    assert_has(&e, "class[1].boot_file", "class[0]");
}

#[test]
fn vars_and_subscriber_errors() {
    let e = errors(
        "[vars]\nlist = [1]\n\"bad-name\" = 1\n[[subscriber]]\nvars = { t = { x = 1 } }\n[[subscriber]]\nmac = \"zz\"\n[[subscriber]]\nmac = \"00:00:00:00:00:01\"\n[[subscriber]]\nmac = \"000000000001\"\n",
    );
    assert_has(&e, "vars.list", "not arrays");
    assert_has(&e, "vars.bad-name", "letters, digits");
    assert_has(&e, "subscriber[0].mac", "required");
    assert_has(&e, "subscriber[0].vars.t", "not arrays or tables");
    assert!(e.at("subscriber[1].mac").next().is_some(), "{e}");
    assert_has(&e, "subscriber[3].mac", "another subscriber");
}
