//! One role's settings read on their own (`AcsSettings::from_toml`, ...) mean what the same
//! table means in a whole config: same values, same errors, same field paths.

use std::net::Ipv4Addr;

use provd_config::{
    AcsSettings, ConfigErrors, HttpSettings, MtaSettings, SyslogSettings, TftpSettings,
    TimeSettings,
};

use provd_config::testing::{assert_has, errors, policy as ok};

/// Tables that set `bind` (and `workers`), so they do not depend on what `[server]` says.
const ACS: &str = "[acs]\nbind = \"198.18.0.1\"\nauth = \"none\"\nextra_ports = [7548]\n\
                   [[acs.preset]]\nname = \"p\"\nset = { \"Device.X\" = 1 }\n";
const HTTP: &str = "[http]\nbind = \"198.18.0.1\"\nport = 8080\nfirmware_dir = \"fw\"\n";
const TFTP: &str = "[tftp]\nbind = \"198.18.0.1\"\nworkers = 2\nmax_blksize = 512\n";
const SYSLOG: &str = "[syslog]\nbind = \"198.18.0.1\"\nport = 5514\n";
const TIME: &str = "[time]\nbind = \"198.18.0.1\"\ntcp = false\n";
const MTA: &str = "[mta]\nbind = \"198.18.0.1\"\nset_community = \"s\"\n";

#[test]
fn a_table_on_its_own_means_what_it_means_in_a_config() {
    assert_eq!(AcsSettings::from_toml(ACS).unwrap(), ok(ACS).acs.unwrap());
    assert_eq!(
        HttpSettings::from_toml(HTTP).unwrap(),
        ok(HTTP).http.unwrap()
    );
    assert_eq!(
        TftpSettings::from_toml(TFTP).unwrap(),
        ok(TFTP).tftp.unwrap()
    );
    assert_eq!(
        SyslogSettings::from_toml(SYSLOG).unwrap(),
        ok(SYSLOG).syslog.unwrap()
    );
    assert_eq!(
        TimeSettings::from_toml(TIME).unwrap(),
        ok(TIME).time.unwrap()
    );
    // A whole config with [mta] needs [tftp] and an MTA class too: compare the table alone.
    let mta = MtaSettings::from_toml(MTA).unwrap();
    assert_eq!(mta.set_community, "s");
    assert_eq!(mta.get_community, "s");
    assert_eq!(mta.bind, Ipv4Addr::new(198, 18, 0, 1));
}

#[test]
fn what_a_role_inherits_from_server_is_the_empty_server_table() {
    let t = TftpSettings::from_toml("[tftp]").unwrap();
    assert_eq!(t.bind, Ipv4Addr::UNSPECIFIED);
    assert_eq!(t.workers, 0);
    assert_eq!(
        AcsSettings::from_toml("[acs]\nauth = \"none\"")
            .unwrap()
            .bind,
        Ipv4Addr::UNSPECIFIED
    );
}

/// The errors of `table` in a whole config, which has no other errors.
fn in_config(table: &str) -> ConfigErrors {
    errors(table)
}

/// A role's `from_toml`, keeping only its errors.
type FromToml = fn(&str) -> Option<ConfigErrors>;

#[test]
fn same_errors_and_paths_as_in_a_config() {
    let cases: [(&str, FromToml); 5] = [
        (
            "[acs]\nport = 0\nauth = \"x\"\n[[acs.campaign]]\nname = \"c\"\n",
            |s| AcsSettings::from_toml(s).err(),
        ),
        (
            "[http]\nplain = false\nclient_auth = \"q\"\nbind = \"1.2\"\n",
            |s| HttpSettings::from_toml(s).err(),
        ),
        (
            "[tftp]\nmax_blksize = 4\nallow_write = true\nbind = \"224.0.0.1\"\n",
            |s| TftpSettings::from_toml(s).err(),
        ),
        ("[syslog]\nworkers = -1\nmax_devices = 0\n", |s| {
            SyslogSettings::from_toml(s).err()
        }),
        ("[time]\nudp = false\ntcp = false\nport = 70000\n", |s| {
            TimeSettings::from_toml(s).err()
        }),
    ];
    for (table, from_toml) in cases {
        let alone = from_toml(table).unwrap_or_else(|| panic!("accepted:\n{table}"));
        assert_eq!(alone, in_config(table), "{table}");
        assert!(alone.len() >= 2, "{alone}");
    }
    let e = MtaSettings::from_toml("[mta]\ninform_communities = []\n").unwrap_err();
    assert_has(&e, "mta.inform_communities", "no community accepted");
    // Deserialisation errors too: the unknown key, with its line.
    let e = AcsSettings::from_toml("[acs]\nauth = \"none\"\nprot = 1\n").unwrap_err();
    assert_has(&e, "acs.prot", "unknown field `prot`");
    assert_has(&e, "acs.prot", "line 3");
}

#[test]
fn only_that_table_is_read() {
    let e = AcsSettings::from_toml("[acs]\nauth = \"none\"\n[tftp]\n[server]\nlease_dir = \"x\"")
        .unwrap_err();
    assert_eq!(e.len(), 2, "{e}");
    assert_has(
        &e,
        "server",
        "only the [acs] table is read here, not [server]",
    );
    assert_has(&e, "tftp", "only the [acs] table is read here, not [tftp]");
    let e = TftpSettings::from_toml("").unwrap_err();
    assert_has(&e, "tftp", "the [tftp] table is missing");
    let e = HttpSettings::from_toml("[[upgrade_rule]]\nmodel = \"m\"").unwrap_err();
    assert_has(&e, "upgrade_rule", "not [upgrade_rule]");
    assert_has(&e, "http", "missing");
}

/// `testing::policy` adds the `[server]` and the network a test leaves out, and only those.
#[test]
fn the_testing_config_adds_only_what_is_missing() {
    let p = ok("[server]\nlease_dir = \"/elsewhere\"\n[tftp]\n");
    assert_eq!(p.server.lease_dir, std::path::Path::new("/elsewhere"));
    assert_eq!(p.server.bind, Ipv4Addr::UNSPECIFIED);
    assert_eq!(p.networks[0].name, "n1");
    let p = ok(
        "[[shared_network]]\nname = \"mine\"\ninterfaces = [\"198.18.0.1\"]\n\
                [[shared_network.subnet]]\nprefix = \"198.18.0.0/24\"\n",
    );
    assert_eq!(p.networks.len(), 1);
    assert_eq!(p.networks[0].name, "mine");
    assert_eq!(p.server.bind, Ipv4Addr::new(198, 18, 0, 1));
}
