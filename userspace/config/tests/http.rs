//! `[http]`, `[class.profile]` and `[[upgrade_rule]]`: what a valid config means and what each
//! mistake is called.

use std::path::Path;

use provd_config::{ClientAuthMode, ProfileFormat, RuleOption};

use provd_config::testing::{assert_has, errors, policy as ok};

const FULL: &str = r#"
[http]
port = 8080
https_port = 8443
cert = "tls/server.pem"
key = "tls/server.key"
client_ca = "tls/ca.pem"
firmware_dir = "fw"

[[class]]
name = "ata"
match = "FlyingVoice*"
[class.profile]
path = "p/{mac}.cfg"
template = "t/fv.j2"
format = "kvp"
key = "k"
profile_rule = "[--key $SA] http://198.18.0.1:8080/p/$MA.cfg"
option_150 = ["198.18.0.1"]

[[class]]
name = "spa"
match = "Cisco*"
tftp_server = "198.18.0.1"
[class.profile]
path = "spa/{MAC}.xml"
template = "t/spa.j2"
format = "xml"
allow_plain = false
client_cert = true
profile_rule = "https://198.18.0.1:8443/spa/$MAU.xml"
rule_option = 160

[[upgrade_rule]]
model = "IP542N*"
from_version = "1.*"
firmware = "IP542N-2.0.bin"
version = "2.0"
"#;

#[test]
fn full_config() {
    let mut p = ok(FULL);
    p.resolve_paths(Path::new("/etc/provd"));
    let h = p.http.as_ref().unwrap();
    assert_eq!(h.port, Some(8080));
    let s = h.https.as_ref().unwrap();
    assert_eq!(s.port, 8443);
    assert_eq!(s.cert, Path::new("/etc/provd/tls/server.pem"));
    assert_eq!(s.client_auth, ClientAuthMode::Optional);
    assert_eq!(h.firmware_dir.as_deref(), Some(Path::new("/etc/provd/fw")));
    let ata = p.classes[0].profile.as_ref().unwrap();
    assert_eq!(ata.format, ProfileFormat::Kvp);
    assert_eq!(ata.key.as_deref(), Some("k"));
    assert_eq!(ata.version_field, "DBID_DBASE_VERSION");
    assert_eq!(
        ata.option_150,
        ["198.18.0.1".parse::<std::net::Ipv4Addr>().unwrap()]
    );
    let spa = p.classes[1].profile.as_ref().unwrap();
    assert_eq!(spa.format, ProfileFormat::Xml);
    assert_eq!(spa.version_field, "Profile_Version");
    assert!(!spa.allow_plain && spa.client_cert);
    assert_eq!(spa.rule_option, RuleOption::Opt160);
    assert_eq!(spa.template, Path::new("/etc/provd/t/spa.j2"));
    assert_eq!(p.upgrade_rules.len(), 1);
    assert!(p.upgrade_rules[0].model.matches(b"IP542N-X"));
}

#[test]
fn http_errors_name_the_field() {
    let e = errors("[http]\ncert = \"c.pem\"\nclient_auth = \"required\"\nbogus = 1\n");
    assert_has(&e, "http.bogus", "unknown field");
    let e = errors("[http]\ncert = \"c.pem\"\nclient_auth = \"required\"\n");
    assert_has(&e, "http.key", "HTTPS needs key");
    assert_has(&e, "http.client_ca", "client_ca must name");
    let e = errors("[http]\nport = 70000\nclient_auth = \"sometimes\"\n");
    assert_has(&e, "http.port", "out of range");
    assert_has(&e, "http.client_auth", "unknown client_auth");
    let e = errors("[http]\nplain = false\n");
    assert_has(&e, "http.plain", "listen nowhere");
    let e = errors("[http]\nhttps_port = 80\ncert = \"c\"\nkey = \"k\"\n");
    assert_has(&e, "http.https_port", "plain HTTP port too");
}

#[test]
fn profile_errors_name_the_field() {
    let e = errors(
        r#"
[[class]]
name = "a"
match = "x"
[class.profile]
path = "p/static.cfg"
format = "json"
first_version = 0
key = ""
rule_option = 67
option_150 = ["300.1.1.1"]
"#,
    );
    assert_has(&e, "class[0].profile.path", "must name the device");
    assert_has(&e, "class[0].profile.template", "required");
    assert_has(&e, "class[0].profile.format", "unknown format");
    assert_has(&e, "class[0].profile.first_version", "out of range");
    assert_has(&e, "class[0].profile.key", "empty");
    assert_has(&e, "class[0].profile.rule_option", "66 or 160");
    assert_has(&e, "class[0].profile.option_150[0]", "");
}

#[test]
fn cross_errors() {
    let e = errors(
        r#"
[[class]]
name = "a"
match = "x"
tftp_server = "10.0.0.1"
[class.profile]
path = "p/{mac}.cfg"
template = "t"
format = "kvp"
profile_rule = "/p/$MA.cfg"
"#,
    );
    assert_has(&e, "class[0].profile", "add the [http] table");
    let e = errors(
        r#"
[http]
[[class]]
name = "a"
match = "x"
tftp_server = "10.0.0.1"
[class.profile]
path = "p/{mac}.cfg"
template = "t"
format = "kvp"
allow_plain = false
client_cert = true
profile_rule = "http://h/p/$(MA:0:6).cfg"
[[class]]
name = "b"
match = "y"
[class.profile]
path = "p/{mac}.cfg"
template = "t"
format = "kvp"
profile_rule = "gopher://h/x"
[[upgrade_rule]]
model = "M"
firmware = "../etc/passwd"
[[upgrade_rule]]
model = "M"
firmware = "ok.bin"
version = "1"
"#,
    );
    assert_has(&e, "class[0].profile.client_cert", "needs HTTPS");
    assert_has(&e, "class[0].profile.allow_plain", "never be fetched");
    assert_has(&e, "class[0].profile.profile_rule", "option 66 carries");
    assert_has(
        &e,
        "class[0].profile.profile_rule",
        "would ask for /p/0015cf.cfg",
    );
    assert_has(&e, "class[1].profile.path", "class[0] serves the same path");
    assert_has(&e, "class[1].profile.profile_rule", "unknown scheme");
    assert_has(&e, "upgrade_rule[0].version", "required");
    assert_has(&e, "upgrade_rule[0].firmware", "without directories");
    assert_has(&e, "upgrade_rule", "firmware_dir");
}
