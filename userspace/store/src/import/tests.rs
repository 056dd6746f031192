//! The bulk formats: good and bad rows with their lines and fields, Kea's append log folded,
//! any bytes never a panic, and export then import giving back what was exported.

use proptest::prelude::*;
use serde_json::json;

use super::*;

fn csv_rows(text: &str) -> Vec<Result<DeviceSpec, RowError>> {
    parse_devices_csv(text.as_bytes()).collect()
}

fn mac(s: &str) -> Mac {
    s.parse().unwrap()
}

#[test]
fn devices_csv_bad_rows_name_line_and_field_and_good_rows_still_come() {
    let text = "\
mac,type,subscriber,class_of_service,var.speed,var.pin,var.voice
00:15:cf:00:00:01,cm,acct-1,gold,100,\"\"\"007\"\"\",true
00:15:cf:00:00:0x,cm,acct-1,gold,,,
00-15-CF-00-00-03,toaster,,,,,
00:15:cf:00:00:04,mta,,,1.5
0015.cf00.0005,,,,,hello,
00:15:cf:00:00:06,cpe,,,,\"\"\"007\",

00:15:cf:00:00:07,phone,,,-3,x y,false
";
    let rows = csv_rows(text);
    assert_eq!(rows.len(), 7, "{rows:#?}");
    let d = rows[0].as_ref().unwrap();
    assert_eq!(d.mac, mac("00:15:cf:00:00:01"));
    assert_eq!(d.kind, DeviceKind::Cm);
    assert_eq!(d.subscriber.as_deref(), Some("acct-1"));
    assert_eq!(d.class_of_service.as_deref(), Some("gold"));
    assert_eq!(d.serial, None, "no serial column: absent");
    assert_eq!(d.vars.get("speed"), Some(&json!(100)));
    assert_eq!(
        d.vars.get("pin"),
        Some(&json!("007")),
        "a quoted string stays a string"
    );
    assert_eq!(d.vars.get("voice"), Some(&json!(true)));

    let e = rows[1].as_ref().unwrap_err();
    assert_eq!((e.line, e.field.as_deref()), (3, Some("mac")), "{e}");
    assert!(
        e.to_string().starts_with("line 3: mac: not a MAC address"),
        "{e}"
    );
    let e = rows[2].as_ref().unwrap_err();
    assert_eq!((e.line, e.field.as_deref()), (4, Some("type")), "{e}");
    let e = rows[3].as_ref().unwrap_err();
    assert_eq!((e.line, e.field.as_deref()), (5, None), "short row: {e}");
    assert!(e.message.contains("5 fields; the header has 7"), "{e}");

    let d = rows[4].as_ref().unwrap();
    assert_eq!(d.mac, mac("00:15:cf:00:00:05"));
    assert_eq!(d.kind, DeviceKind::Other, "an empty type is the default");
    assert_eq!(d.subscriber, None, "an empty cell is absent");
    assert_eq!(d.vars.get("pin"), Some(&json!("hello")));
    assert!(!d.vars.contains_key("speed"));

    let e = rows[5].as_ref().unwrap_err();
    assert_eq!((e.line, e.field.as_deref()), (7, Some("var.pin")), "{e}");

    let d = rows[6].as_ref().unwrap();
    assert_eq!(
        d.mac,
        mac("00:15:cf:00:00:07"),
        "the blank line 8 is skipped"
    );
    assert_eq!(d.vars.get("speed"), Some(&json!(-3)));
    assert_eq!(d.vars.get("pin"), Some(&json!("x y")));
    assert_eq!(d.vars.get("voice"), Some(&json!(false)));
}

#[test]
fn devices_csv_header_errors_name_the_column() {
    let rows = csv_rows("mac,type,subscribr\n00:15:cf:00:00:01,cm,a\n");
    assert_eq!(rows.len(), 1, "nothing after a bad header: {rows:?}");
    let e = rows[0].as_ref().unwrap_err();
    assert_eq!((e.line, e.field.as_deref()), (1, Some("subscribr")), "{e}");
    assert!(e.message.contains("unknown column"), "{e}");

    let e = csv_rows("00:15:cf:00:00:01,cm\n").remove(0).unwrap_err();
    assert_eq!(
        e.field.as_deref(),
        Some("00:15:cf:00:00:01"),
        "data where the header goes: {e}"
    );

    let e = csv_rows("type,serial\ncm,x\n").remove(0).unwrap_err();
    assert_eq!(e.field.as_deref(), Some("mac"), "{e}");

    let e = csv_rows("mac,var.9lives\n").remove(0).unwrap_err();
    assert_eq!(e.field.as_deref(), Some("var.9lives"), "{e}");

    let e = csv_rows("mac,serial,serial\n").remove(0).unwrap_err();
    assert_eq!(e.field.as_deref(), Some("serial"), "{e}");

    let e = csv_rows("").remove(0).unwrap_err();
    assert_eq!((e.line, e.field.as_deref()), (1, None), "{e}");
    assert!(e.message.contains("no header"), "{e}");

    // A spreadsheet's byte order mark and spaces around names are not part of the names.
    let rows = csv_rows("\u{feff}mac , type\n00:15:cf:00:00:01,cm\n");
    assert_eq!(rows[0].as_ref().unwrap().kind, DeviceKind::Cm, "{rows:?}");
}

#[test]
fn devices_csv_var_values_the_store_refuses_are_bad_rows() {
    let long = "x".repeat(5000);
    let rows = csv_rows(&format!(
        "mac,var.note\n00:15:cf:00:00:01,{long}\n00:15:cf:00:00:02,ok\n"
    ));
    let e = rows[0].as_ref().unwrap_err();
    assert_eq!((e.line, e.field.as_deref()), (2, Some("vars.note")), "{e}");
    assert!(rows[1].is_ok());
}

#[test]
fn devices_jsonl_bad_rows_name_line_and_field() {
    let text = r#"{"mac":"00:15:cf:00:00:01","type":"cm","subscriber":"a","vars":{"speed":100}}

{"mac":"00:15:cf:00:00:zz"}
{"mac":"00:15:cf:00:00:03","type":"fridge"}
{"mac":"00:15:cf:00:00:04","colour":"red"}
{"mac":"00:15:cf:00:00:05","vars":{"x":[1,2]}}
{"mac":"00:15:cf:00:00:06"} trailing
not json
   
{"mac":"00:15:cf:00:00:07","serial":"S7"}"#;
    let rows: Vec<_> = parse_devices_jsonl(text.as_bytes()).collect();
    assert_eq!(rows.len(), 8, "{rows:#?}");
    let d = rows[0].as_ref().unwrap();
    assert_eq!(
        (d.kind, d.vars.get("speed")),
        (DeviceKind::Cm, Some(&json!(100)))
    );
    let e = rows[1].as_ref().unwrap_err();
    assert_eq!((e.line, e.field.as_deref()), (3, Some("mac")), "{e}");
    assert!(
        e.to_string().starts_with("line 3: mac: not a MAC address"),
        "{e}"
    );
    let e = rows[2].as_ref().unwrap_err();
    assert_eq!((e.line, e.field.as_deref()), (4, Some("type")), "{e}");
    let e = rows[3].as_ref().unwrap_err();
    assert_eq!(e.line, 5, "{e}");
    assert!(e.message.contains("colour"), "{e}");
    let e = rows[4].as_ref().unwrap_err();
    assert_eq!((e.line, e.field.as_deref()), (6, Some("vars.x")), "{e}");
    let e = rows[5].as_ref().unwrap_err();
    assert_eq!((e.line, e.field.as_deref()), (7, None), "{e}");
    let e = rows[6].as_ref().unwrap_err();
    assert_eq!(e.line, 8, "{e}");
    let d = rows[7].as_ref().unwrap();
    assert_eq!(
        d.serial.as_deref(),
        Some("S7"),
        "line 9 is blank, line 10 is read"
    );
}

#[test]
fn devices_jsonl_over_long_line_is_one_bad_row_and_the_next_line_still_reads() {
    let mut text = vec![b'x'; MAX_LINE_BYTES + 10];
    text.extend_from_slice(b"\n{\"mac\":\"00:15:cf:00:00:01\"}\n");
    let rows: Vec<_> = parse_devices_jsonl(&text[..]).collect();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[0].as_ref().unwrap_err().line, 1);
    assert_eq!(rows[1].as_ref().unwrap().mac, mac("00:15:cf:00:00:01"));
}

const KEA_HEADER: &str = "address,hwaddr,client_id,valid_lifetime,expire,subnet_id,fqdn_fwd,fqdn_rev,hostname,state,user_context,pool_id\n";

#[test]
fn kea_rows_parse_and_bad_rows_name_line_and_field() {
    let text = format!(
        "{KEA_HEADER}\
10.0.0.100,00:15:cf:00:00:01,01:00:15:cf:00:00:01,3600,1800003600,1,0,0,host&#x2cname,0,{{ \"a\": \"b\" }},0
10.0.0.101,00:15:cf:00:00:02,,3600,1800003600,1,0,0,,1,,0
10.0.0.300,00:15:cf:00:00:03,,3600,1800003600,1,0,0,,0,,0
10.0.0.103,,,3600,1800003600,1,0,0,,0,,0
10.0.0.104,00:15:cf:00:00:04,1:2:zz,3600,1800003600,1,0,0,,0,,0
10.0.0.105,00:15:cf:00:00:05,,-1,1800003600,1,0,0,,0,,0
10.0.0.106,00:15:cf:00:00:06,,4294967295,9999999999,1,0,0,,2,,0
10.0.0.107,00:15:cf:00:00:07,,3600
"
    );
    let rows: Vec<_> = parse_kea_leases_csv(text.as_bytes()).collect();
    assert_eq!(rows.len(), 8, "{rows:#?}");
    let l = rows[0].as_ref().unwrap();
    assert_eq!(l.line, 2);
    assert_eq!(l.addr, Ipv4Addr::new(10, 0, 0, 100));
    assert_eq!(l.mac, mac("00:15:cf:00:00:01"));
    assert_eq!(
        l.client_id.as_deref(),
        Some(&[1, 0, 0x15, 0xcf, 0, 0, 1][..])
    );
    assert_eq!(
        (l.valid_lifetime, l.expires_at, l.subnet_id),
        (3600, 1_800_003_600, 1)
    );
    assert_eq!(l.state, KeaState::Default);
    let l = rows[1].as_ref().unwrap();
    assert_eq!(
        (l.client_id.as_deref(), l.state),
        (None, KeaState::Declined)
    );
    let field = |i: usize| {
        let e = rows[i].as_ref().unwrap_err();
        (e.line, e.field.clone().unwrap_or_default())
    };
    assert_eq!(field(2), (4, "address".into()));
    assert_eq!(field(3), (5, "hwaddr".into()));
    assert_eq!(field(4), (6, "client_id".into()));
    assert_eq!(field(5), (7, "valid_lifetime".into()));
    let l = rows[6].as_ref().unwrap();
    assert_eq!(l.expires_at, u32::MAX, "an expiry past 2106 saturates");
    assert_eq!(l.state, KeaState::ExpiredReclaimed);
    assert_eq!(field(7), (9, "expire".into()));
}

#[test]
fn kea_older_header_without_pool_id_or_user_context_reads() {
    let text = "address,hwaddr,client_id,valid_lifetime,expire,subnet_id,fqdn_fwd,fqdn_rev,hostname,state\n\
                10.0.0.100,00:15:cf:00:00:01,,3600,1800003600,1,0,0,,0\n";
    let rows: Vec<_> = parse_kea_leases_csv(text.as_bytes()).collect();
    assert_eq!(rows[0].as_ref().unwrap().addr, Ipv4Addr::new(10, 0, 0, 100));
    let e = parse_kea_leases_csv("mac,type\n".as_bytes())
        .next()
        .unwrap()
        .unwrap_err();
    assert_eq!(e.field.as_deref(), Some("address"), "{e}");
}

#[test]
fn kea_append_log_collapses_to_the_last_row_per_address_and_zero_lifetime_deletes() {
    let text = format!(
        "{KEA_HEADER}\
10.0.0.100,00:15:cf:00:00:01,,3600,1800003600,1,0,0,,0,,0
10.0.0.101,00:15:cf:00:00:02,,3600,1800003600,1,0,0,,0,,0
10.0.0.100,00:15:cf:00:00:01,,3600,1800007200,1,0,0,,0,,0
10.0.0.101,00:15:cf:00:00:02,,0,1800003700,1,0,0,,0,,0
10.0.0.102,00:15:cf:00:00:03,,3600,1800003600,1,0,0,,0,,0
10.0.0.102,00:15:cf:00:00:03,,0,1800003600,1,0,0,,0,,0
10.0.0.102,00:15:cf:00:00:04,,3600,1700000000,1,0,0,,0,,0
"
    );
    let rows: Vec<KeaLease> = parse_kea_leases_csv(text.as_bytes())
        .map(Result::unwrap)
        .collect();
    let live = collapse_kea_leases(rows);
    let got: Vec<_> = live
        .iter()
        .map(|l| (l.addr.octets()[3], l.expires_at, l.line))
        .collect();
    assert_eq!(
        got,
        [(100, 1_800_007_200, 4), (102, 1_700_000_000, 8)],
        "101 deleted; 100 renewed; 102 deleted then leased again"
    );
    assert!(live[0].is_live(1_800_000_000));
    assert!(!live[1].is_live(1_800_000_000), "expired");
}

#[test]
fn export_writes_a_header_even_with_no_devices() {
    let mut out = Vec::new();
    write_devices_csv(&mut out, &[]).unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "mac,type,subscriber,class_of_service,serial,device_id,duid\n"
    );
}

fn var_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        // Short decimals: serde_json reads those back exactly (arbitrary f64s need its
        // float_roundtrip feature, a JSON matter, not this module's).
        any::<i32>().prop_map(|n| Value::from(f64::from(n) / 1000.0)),
        any::<bool>().prop_map(Value::Bool),
        prop_oneof![
            Just(String::new()),
            Just("007".to_owned()),
            Just("true".to_owned()),
            Just("1.5".to_owned()),
            Just("1e3".to_owned()),
            Just("inf".to_owned()),
            Just("\"quoted\"".to_owned()),
            Just("a,b\nc\r\"d".to_owned()),
            "\\PC{0,24}",
        ]
        .prop_map(Value::String),
    ]
}

fn opt_text() -> impl Strategy<Value = Option<String>> {
    proptest::option::of("[^\\x00]{1,16}")
}

fn device() -> impl Strategy<Value = DeviceSpec> {
    (
        any::<[u8; 6]>(),
        proptest::sample::select(DeviceKind::ALL.to_vec()),
        (opt_text(), opt_text(), opt_text(), opt_text()),
        proptest::option::of("[0-9a-f:]{1,20}"),
        proptest::collection::btree_map("[a-z_][a-z0-9_]{0,8}", var_value(), 0..4),
    )
        .prop_map(
            |(m, kind, (subscriber, class_of_service, serial, device_id), duid, vars)| DeviceSpec {
                mac: Mac(m),
                kind,
                subscriber,
                class_of_service,
                serial,
                device_id,
                duid,
                vars: vars.into_iter().collect(),
            },
        )
}

/// A cell as a devices or Kea CSV might hold it, good or broken.
fn cell() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::sample::select(vec![
            "10.0.0.1",
            "00:15:cf:00:00:01",
            "01:00:15",
            "3600",
            "1800003600",
            "0",
            "1",
            "2",
            "",
            "cm",
            "x",
            "\"",
            "\"\"\"7\"",
            "-1",
            "99999999999",
            "4294967296",
            "1.5",
            "true",
        ])
        .prop_map(str::to_owned),
        "[ -~]{0,8}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let n = parse_devices_csv(&bytes[..]).count();
        prop_assert!(n <= bytes.len() + 1);
        let n = parse_devices_jsonl(&bytes[..]).count();
        prop_assert!(n <= bytes.len() + 1);
        let rows: Vec<_> = parse_kea_leases_csv(&bytes[..]).filter_map(Result::ok).collect();
        let _ = collapse_kea_leases(rows);
    }

    #[test]
    fn rows_of_plausible_and_broken_cells_never_panic(
        rows in proptest::collection::vec(proptest::collection::vec(cell(), 0..14), 0..12),
        junk in "[0-9a-f:.,\"\n\r x-]{0,100}",
    ) {
        let body: String = rows.iter().map(|r| r.join(",") + "\n").collect::<String>() + &junk;
        let text = format!("mac,type,serial,var.a\n{body}");
        let n = parse_devices_csv(text.as_bytes()).count();
        prop_assert!(n <= body.len() + 1);
        let text = format!("{KEA_HEADER}{body}");
        let leases: Vec<_> = parse_kea_leases_csv(text.as_bytes()).filter_map(Result::ok).collect();
        let _ = collapse_kea_leases(leases);
    }

    #[test]
    fn export_then_import_gives_the_devices_back(devices in proptest::collection::vec(device(), 0..8)) {
        let mut jsonl = Vec::new();
        write_devices_jsonl(&mut jsonl, &devices).unwrap();
        let back: Vec<DeviceSpec> = parse_devices_jsonl(&jsonl[..])
            .collect::<Result<_, _>>()
            .map_err(|e| TestCaseError::fail(format!("jsonl: {e}\n{}", String::from_utf8_lossy(&jsonl))))?;
        prop_assert_eq!(&back, &devices);

        let mut csv = Vec::new();
        write_devices_csv(&mut csv, &devices).unwrap();
        let back: Vec<DeviceSpec> = parse_devices_csv(&csv[..])
            .collect::<Result<_, _>>()
            .map_err(|e| TestCaseError::fail(format!("csv: {e}\n{}", String::from_utf8_lossy(&csv))))?;
        prop_assert_eq!(&back, &devices);
    }
}
