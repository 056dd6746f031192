//! Config errors name the field path and say what is wrong.

use provd_config::{ConfigErrors, Policy};

use provd_config::testing::assert_has;

const SERVER: &str = r#"
[server]
lease_dir = "/tmp/provd-test"
"#;

const CLASSES: &str = r#"
[[class]]
name = "cm"
match = "docsis*"
"#;

/// The one minimal DHCP network every config test shares.
const NET: &str = provd_config::testing::NETWORK;

fn errors(toml: &str) -> ConfigErrors {
    match Policy::from_toml_str(toml) {
        Ok(p) => panic!("config was accepted:\n{toml}\n{}", p.describe()),
        Err(e) => e,
    }
}

#[test]
fn base_config_is_valid() {
    let p = Policy::from_toml_str(&format!("{SERVER}{CLASSES}{NET}")).unwrap();
    assert_eq!(p.pools().count(), 1);
}

#[test]
fn unknown_top_level_key() {
    let e = errors(&format!("{SERVER}{NET}\n[servers]\nport = 1\n"));
    assert_eq!(e.len(), 1);
    assert_has(&e, "servers", "unknown field `servers`");
    assert!(e.0[0].message.contains("line "), "{e}");
}

#[test]
fn unknown_nested_key() {
    let toml = format!(
        "{SERVER}{}",
        NET.replace("end = \"10.1.0.250\"", "ends = \"10.1.0.250\"")
    );
    let e = errors(&toml);
    assert_has(
        &e,
        "shared_network[0].subnet[0].pool[0].ends",
        "unknown field `ends`",
    );
    // The position points at the offending key.
    let line = toml.lines().position(|l| l.contains("ends =")).unwrap() + 1;
    assert!(e.0[0].message.contains(&format!("line {line},")), "{e}");
}

#[test]
fn unknown_server_key_and_type_error() {
    let e = errors("[server]\nlease_dir = \"/x\"\nlease_time = 5\n");
    assert_has(&e, "server.lease_time", "unknown field `lease_time`");
    let e = errors(&format!(
        "[server]\nlease_dir = \"/x\"\nport = \"sixty-seven\"\n{NET}"
    ));
    assert_has(&e, "server.port", "invalid type: string");
    let e = errors(&format!(
        "{SERVER}{}",
        NET.replace("[\"10.1.0.1\"]", "[10]")
    ));
    assert_has(&e, "shared_network[0].relays[0]", "invalid type: integer");
}

#[test]
fn toml_syntax_error_has_position() {
    let e = errors("[server]\nlease_dir = \"/x\n");
    assert_eq!(e.0[0].path, "");
    assert!(e.0[0].message.contains("line 2"), "{e}");
}

#[test]
fn bad_ip() {
    let e = errors(&format!(
        "{SERVER}{}",
        NET.replace("end = \"10.1.0.250\"", "end = \"10.1.1.300\"")
    ));
    assert_eq!(e.len(), 1, "{e}");
    assert_has(
        &e,
        "shared_network[0].subnet[0].pool[0].end",
        "10.1.1.300 is not an IPv4 address",
    );
    assert_eq!(
        e.to_string(),
        "shared_network[0].subnet[0].pool[0].end: 10.1.1.300 is not an IPv4 address"
    );
}

#[test]
fn pool_outside_prefix() {
    let e = errors(&format!(
        "{SERVER}{}",
        NET.replace("10.1.0.0/24", "10.2.0.0/24")
    ));
    assert_has(
        &e,
        "shared_network[0].subnet[0].pool[0]",
        "pool 10.1.0.10-10.1.0.250 is outside subnet 10.2.0.0/24",
    );
    let e = errors(&format!(
        "{SERVER}{}",
        NET.replace("10.1.0.250", "10.1.1.20")
    ));
    assert_has(
        &e,
        "shared_network[0].subnet[0].pool[0].end",
        "10.1.1.20 is outside it",
    );
    let e = errors(&format!(
        "{SERVER}{}",
        NET.replace("10.1.0.250", "10.1.0.255")
    ));
    assert_has(
        &e,
        "shared_network[0].subnet[0].pool[0].end",
        "broadcast address",
    );
}

#[test]
fn overlapping_pools_across_networks() {
    let second = r#"
[[shared_network]]
name = "n2"
relays = ["10.9.0.1"]
  [[shared_network.subnet]]
  prefix = "10.9.0.0/24"
    [[shared_network.subnet.pool]]
    start = "10.9.0.10"
    end = "10.9.0.20"
    [[shared_network.subnet.pool]]
    start = "10.1.0.200"
    end = "10.1.0.220"
"#;
    let e = errors(&format!("{SERVER}{NET}{second}"));
    assert_has(
        &e,
        "shared_network[1].subnet[0].pool[1]",
        "pool 10.1.0.200-10.1.0.220 overlaps pool 10.1.0.10-10.1.0.250 (shared_network[0].subnet[0].pool[0])",
    );
}

#[test]
fn overlapping_subnets() {
    let second = NET
        .replace("\"n1\"", "\"n2\"")
        .replace("10.1.0.1\"", "10.1.0.2\"")
        .replace("10.1.0.0/24", "10.1.0.0/16")
        .replace("10.1.0.10", "10.1.5.10")
        .replace("10.1.0.250", "10.1.5.250");
    let e = errors(&format!("{SERVER}{NET}{second}"));
    assert_has(
        &e,
        "shared_network[0].subnet[0].prefix",
        "subnet 10.1.0.0/24 overlaps subnet 10.1.0.0/16 (shared_network[1].subnet[0])",
    );
}

#[test]
fn unknown_class_in_subnet() {
    let e = errors(&format!(
        "{SERVER}{CLASSES}{}",
        NET.replace(
            "  prefix = \"10.1.0.0/24\"",
            "  prefix = \"10.1.0.0/24\"\n  classes = [\"cm\", \"mta\"]"
        )
    ));
    assert_eq!(e.len(), 1, "{e}");
    assert_has(
        &e,
        "shared_network[0].subnet[0].classes[1]",
        "class \"mta\" is not defined",
    );
}

#[test]
fn duplicate_relay() {
    let second = NET
        .replace("\"n1\"", "\"n2\"")
        .replace("10.1.0.", "10.3.0.")
        .replace("[\"10.3.0.1\"]", "[\"10.3.0.1\", \"10.1.0.1\"]");
    let e = errors(&format!("{SERVER}{NET}{second}"));
    assert_eq!(e.len(), 1, "{e}");
    assert_has(
        &e,
        "shared_network[1].relays[1]",
        "relay 10.1.0.1 is already used by shared_network[0]",
    );
}

#[test]
fn bad_boot_file_placeholder() {
    let e = errors(&format!(
        "{SERVER}{CLASSES}boot_file = \"cm/{{Mac}}.cfg\"\n{NET}"
    ));
    assert_has(&e, "class[0].boot_file", "unknown placeholder {Mac}");
    let e = errors(&format!(
        "{SERVER}{NET}\n[[reservation]]\nmac = \"00:15:cf:12:34:56\"\naddress = \"10.1.0.5\"\nboot_file = \"x{{ip}}\"\n"
    ));
    assert_has(&e, "reservation[0].boot_file", "unknown placeholder {ip}");
}

#[test]
fn flow_and_realm_both_set() {
    let e = errors(&format!(
        "{SERVER}{CLASSES}flow = \"BASIC.1\"\nrealm = \"REALM.COM\"\n{NET}"
    ));
    assert_eq!(e.len(), 1, "{e}");
    assert_has(&e, "class[0]", "flow and realm are both set");
}

#[test]
fn class_option_errors() {
    let class = r#"
[[class]]
name = "mta"
match = "pktc*"
flow = "BASIC.3"
provisioning_server = "10.0.0.300"
provisioning_timer = 256
time_offset = 90000
acs_url = "ftp://acs.example.net/"
domain_name = "bad_name.example"
lease_time = 30
dns_servers = ["10.0.0.3", "224.0.0.1"]

[[class]]
name = "sec"
realm = "BAD..REALM"

[[class]]
name = "mta"
match = ""
"#;
    let e = errors(&format!("{SERVER}{class}{NET}"));
    assert_has(&e, "class[0].flow", "BASIC.3 is not a provisioning flow");
    assert_has(
        &e,
        "class[0].provisioning_server",
        "10.0.0.300 is not an IPv4 address",
    );
    assert_has(&e, "class[0].provisioning_timer", "0..=255");
    assert_has(&e, "class[0].time_offset", "out of range");
    assert_has(&e, "class[0].acs_url", "scheme must be http or https");
    assert_has(&e, "class[0].domain_name", "not a valid domain name");
    assert_has(&e, "class[0].lease_time", "at least 60 s");
    assert_has(
        &e,
        "class[0].dns_servers[1]",
        "224.0.0.1 is not a unicast address",
    );
    assert_has(&e, "class[1].realm", "each label must be 1 to 63 bytes");
    assert_has(
        &e,
        "class[2].name",
        "class name \"mta\" is already used by class[0]",
    );
    assert_has(&e, "class[2].match", "match pattern is empty");
    assert_eq!(e.len(), 11, "{e}");
}

#[test]
fn server_and_lease_errors() {
    let toml = format!(
        r#"
[server]
lease_dir = ""
port = 0
server_id = "0.0.0.0"
log_format = "xml"

[lease]
default_time = 59
t1_ratio = 0.9
t2_ratio = 0.8
{NET}"#
    );
    let e = errors(&toml);
    assert_has(&e, "server.lease_dir", "is empty");
    assert_has(&e, "server.port", "port 0 is not allowed");
    assert_has(&e, "server.server_id", "0.0.0.0 is not a unicast address");
    assert_has(&e, "server.log_format", "xml is not a log format");
    assert_has(&e, "lease.default_time", "at least 60 s");
    assert_has(&e, "lease.t2_ratio", "must be greater than t1_ratio");
    assert_eq!(e.len(), 6, "{e}");

    let e = errors(NET);
    assert_has(&e, "server", "the [server] table is missing");
    let e = errors("[server]\n");
    assert_has(&e, "server.lease_dir", "is required");
    assert_has(&e, "shared_network", "at least one is needed");
}

#[test]
fn subnet_and_pool_errors() {
    let net = r#"
[[shared_network]]
name = "n1"
relays = ["10.1.0.20"]
  [[shared_network.subnet]]
  prefix = "10.1.0.5/24"
  [[shared_network.subnet]]
  prefix = "10.2.0.0/31"
  [[shared_network.subnet]]
  prefix = "10.3.0.0/24"
  routers = ["10.4.0.1", "10.3.0.20"]
  lease_time = 10
    [[shared_network.subnet.pool]]
    start = "10.3.0.100"
    end = "10.3.0.10"
    [[shared_network.subnet.pool]]
    start = "10.3.0.0"
    [[shared_network.subnet.pool]]
    start = "10.3.0.11"
    end = "10.3.0.30"
[[shared_network]]
name = "n1"
"#;
    let e = errors(&format!("{SERVER}{net}"));
    let s = "shared_network[0].subnet";
    assert_has(&e, &format!("{s}[0].prefix"), "did you mean 10.1.0.0/24?");
    assert_has(&e, &format!("{s}[1].prefix"), "/31 is out of range");
    assert_has(
        &e,
        &format!("{s}[2].routers[0]"),
        "router 10.4.0.1 is outside subnet 10.3.0.0/24",
    );
    assert_has(
        &e,
        &format!("{s}[2].routers[1]"),
        "router 10.3.0.20 is inside pool 10.3.0.11-10.3.0.30",
    );
    assert_has(&e, &format!("{s}[2].lease_time"), "too short");
    assert_has(&e, &format!("{s}[2].pool[0]"), "start is after end");
    assert_has(&e, &format!("{s}[2].pool[1].end"), "is required");
    assert_has(
        &e,
        "shared_network[1].name",
        "already used by shared_network[0]",
    );
    assert_has(&e, "shared_network[1]", "has no [[shared_network.subnet]]");
    assert_eq!(e.len(), 9, "{e}");
}

#[test]
fn reservation_errors() {
    let res = r#"
[[reservation]]
mac = "00:15:cf:12:34:56"
remote_id = "text:x"
address = "10.1.0.5"

[[reservation]]
address = "10.1.0.6"

[[reservation]]
mac = "00:15:cf:12:34"
address = "10.1.0.7"

[[reservation]]
mac = "00-15-cf-12-34-58"
address = "10.7.0.1"

[[reservation]]
mac = "0015cf123458"
address = "10.1.0.8"
class = "voice"

[[reservation]]
remote_id = "text:a"
address = "10.1.0.8"

[[reservation]]
remote_id = "zz"
address = "10.1.0.1"
"#;
    let e = errors(&format!("{SERVER}{NET}{res}"));
    assert_has(&e, "reservation[0]", "exactly one of mac or remote_id");
    assert_has(&e, "reservation[1]", "needs mac or remote_id");
    assert_has(
        &e,
        "reservation[2].mac",
        "not a MAC address (5 bytes, expected 6)",
    );
    assert_has(
        &e,
        "reservation[3].address",
        "10.7.0.1 is not inside any subnet",
    );
    assert_has(
        &e,
        "reservation[4].mac",
        "already reserved by reservation[3]",
    );
    assert_has(&e, "reservation[4].class", "class \"voice\" is not defined");
    assert_has(
        &e,
        "reservation[5].address",
        "10.1.0.8 is already reserved by reservation[4]",
    );
    assert_has(&e, "reservation[6].remote_id", "neither hex bytes");
    assert_has(
        &e,
        "reservation[6].address",
        "already used by shared_network[0].relays[0]",
    );
    assert_eq!(e.len(), 9, "{e}");
}

/// One load reports every problem, in document order, with one line per error.
#[test]
fn several_errors_reported_together() {
    let toml = r#"
[server]
lease_dir = "/tmp/x"
port = 70000

[[class]]
name = "cm"
match = "docsis*"
boot_file = "cm/{serial}.cfg"
flow = "BASIC.1"
realm = "REALM.COM"

[[shared_network]]
name = "a"
relays = ["10.1.0.1"]
  [[shared_network.subnet]]
  prefix = "10.1.0.0/24"
  classes = ["mta"]
    [[shared_network.subnet.pool]]
    start = "10.1.0.10"
    end = "10.1.1.300"

[[shared_network]]
name = "b"
relays = ["10.1.0.1"]
  [[shared_network.subnet]]
  prefix = "10.2.0.0/24"
    [[shared_network.subnet.pool]]
    start = "10.1.0.10"
    end = "10.1.0.250"
"#;
    let e = errors(toml);
    let expected = [
        ("server.port", "70000 is not a UDP port"),
        ("class[0].boot_file", "unknown placeholder {serial}"),
        ("class[0]", "flow and realm are both set"),
        (
            "shared_network[0].subnet[0].classes[0]",
            "class \"mta\" is not defined",
        ),
        (
            "shared_network[0].subnet[0].pool[0].end",
            "10.1.1.300 is not an IPv4 address",
        ),
        (
            "shared_network[1].relays[0]",
            "relay 10.1.0.1 is already used by shared_network[0]",
        ),
        (
            "shared_network[1].subnet[0].pool[0]",
            "pool 10.1.0.10-10.1.0.250 is outside subnet 10.2.0.0/24",
        ),
    ];
    for (path, frag) in expected {
        assert_has(&e, path, frag);
    }
    assert_eq!(e.len(), expected.len(), "{e}");
    let paths: Vec<&str> = e.iter().map(|x| x.path.as_str()).collect();
    let want: Vec<&str> = expected.iter().map(|x| x.0).collect();
    assert_eq!(paths, want, "document order");
    assert_eq!(e.to_string().lines().count(), expected.len());
}

#[test]
fn missing_file_names_the_file() {
    let path = std::path::Path::new("/nonexistent/provd/config.toml");
    let e = Policy::from_file(path).unwrap_err();
    assert_eq!(e.len(), 1);
    assert_eq!(e.0[0].path, "/nonexistent/provd/config.toml");
    assert!(e.0[0].message.contains("cannot read"), "{e}");
}

#[test]
fn relay_listed_twice_in_one_network() {
    let e = errors(&format!(
        "{SERVER}{}",
        NET.replace("[\"10.1.0.1\"]", "[\"10.1.0.1\", \"10.1.0.1\"]")
    ));
    assert_eq!(e.len(), 1, "{e}");
    assert_has(
        &e,
        "shared_network[0].relays[1]",
        "relay 10.1.0.1 is listed twice",
    );
}

#[test]
fn io_path_settings() {
    let ok = format!(
        "[server]\nlease_dir = \"/tmp/x\"\nio = \"xdp\"\nxdp_interface = \"eth0\"\nxdp_mode = \"generic\"\n{CLASSES}{NET}"
    );
    let p = Policy::from_toml_str(&ok).unwrap();
    assert_eq!(p.server.io, provd_config::IoPath::Xdp);
    assert_eq!(p.server.xdp_interface.as_deref(), Some("eth0"));
    assert_eq!(p.server.xdp_mode, provd_config::XdpMode::Generic);
    let default =
        Policy::from_toml_str(&format!("[server]\nlease_dir = \"/tmp/x\"\n{CLASSES}{NET}"))
            .unwrap();
    assert_eq!(default.server.io, provd_config::IoPath::Auto);
    assert_eq!(default.server.xdp_mode, provd_config::XdpMode::Auto);

    let bad = format!(
        "[server]\nlease_dir = \"/tmp/x\"\nio = \"dpdk\"\nxdp_interface = \"a/b\"\nxdp_mode = \"offload\"\n{CLASSES}{NET}"
    );
    let e = errors(&bad);
    assert_has(&e, "server.io", "dpdk is not an I/O path");
    assert_has(&e, "server.xdp_interface", "is not an interface name");
    assert_has(&e, "server.xdp_mode", "offload is not an XDP mode");
    assert_eq!(e.len(), 3, "{e}");
}
