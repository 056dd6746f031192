//! The sample envelopes of tests/data/cwmp/samples parse; every RPC type survives
//! encode -> parse; arbitrary values and names survive too (proptest); the session state
//! machine runs whole sessions against a scripted driver.

use std::collections::VecDeque;

use proptest::prelude::*;
use provd_cwmp::*;

fn samples() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/cwmp/samples")
}

fn parse(b: &[u8]) -> Result<Envelope, Error> {
    Envelope::parse(b, &Limits::default())
}

#[test]
fn samples_parse() {
    let read = |n: &str| std::fs::read(samples().join(n)).unwrap();
    let e = parse(&read("01_inform.xml")).unwrap();
    assert_eq!(e.id.as_deref(), Some("4f1c2e01"));
    assert_eq!(e.version, Version::V1_2);
    let Rpc::Inform(i) = &e.body else {
        panic!("{e:?}")
    };
    assert_eq!(i.device_id.oui, "0015CF");
    assert_eq!(i.device_id.serial_number, "SN0015CF123456");
    assert_eq!(i.events.len(), 2);
    assert_eq!(i.events[1].command_key, "reboot-42");
    assert_eq!(i.parameters.len(), 6);
    assert_eq!(
        i.parameter("ConnectionRequestURL"),
        Some("http://10.1.0.58:7547/cr/0015CF123456")
    );
    assert!(matches!(
        parse(&read("02_inform_response.xml")).unwrap().body,
        Rpc::InformResponse { max_envelopes: 1 }
    ));
    let Rpc::GetParameterValues { names } =
        parse(&read("03_get_parameter_values.xml")).unwrap().body
    else {
        panic!()
    };
    assert_eq!(
        names,
        ["Device.DeviceInfo.UpTime", "Device.ManagementServer."]
    );
    let Rpc::GetParameterValuesResponse { parameters } =
        parse(&read("04_get_parameter_values_response.xml"))
            .unwrap()
            .body
    else {
        panic!()
    };
    assert_eq!(parameters[0].ty, "unsignedInt");
    assert_eq!(parameters[2].value, "true");
    let Rpc::Download(d) = parse(&read("05_download.xml")).unwrap().body else {
        panic!()
    };
    assert_eq!(d.file_size, 8_388_608);
    assert_eq!(d.file_type, "1 Firmware Upgrade Image");
    assert!(matches!(
        parse(&read("06_download_response.xml")).unwrap().body,
        Rpc::DownloadResponse { status: 1, .. }
    ));
    let Rpc::TransferComplete(t) = parse(&read("07_transfer_complete.xml")).unwrap().body else {
        panic!()
    };
    assert_eq!((t.command_key.as_str(), t.fault.code), ("fw-2.2.0", 0));
    assert!(matches!(
        parse(&read("08_transfer_complete_response.xml"))
            .unwrap()
            .body,
        Rpc::TransferCompleteResponse
    ));
    let Rpc::Fault(f) = parse(&read("09_fault_spv_9003.xml")).unwrap().body else {
        panic!()
    };
    assert_eq!(f.code, 9003);
    assert_eq!(f.spv[0].code, 9005);
    assert!(f.spv[0].name.ends_with("PeriodicInformIntervall"));
}

fn every_rpc() -> Vec<Rpc> {
    let pv = vec![
        ParameterValue::new("Device.A", "x<&>\"'y", "string"),
        ParameterValue::new("Device.B", "7", "unsignedInt"),
    ];
    let tf = TransferFault {
        code: 9010,
        string: "Download failure".into(),
    };
    let op = OpResult {
        uuid: "6ba7b810-9dad-11d1-80b4-00c04fd430c8".into(),
        deployment_unit_ref: "Device.SoftwareModules.DeploymentUnit.1".into(),
        version: "1".into(),
        current_state: "Installed".into(),
        resolved: true,
        execution_unit_ref_list: String::new(),
        start_time: "2024-05-01T12:00:00Z".into(),
        complete_time: "2024-05-01T12:00:01Z".into(),
        fault: TransferFault::default(),
        operation_performed: None,
    };
    vec![
        Rpc::GetRpcMethods,
        Rpc::GetRpcMethodsResponse {
            methods: vec!["Inform".into(), "TransferComplete".into()],
        },
        Rpc::Inform(Box::new(Inform {
            device_id: DeviceId {
                manufacturer: "ExampleCo".into(),
                oui: "0015CF".into(),
                product_class: "EMTA1".into(),
                serial_number: "SN1".into(),
            },
            events: vec![EventStruct {
                code: "0 BOOTSTRAP".into(),
                command_key: String::new(),
            }],
            max_envelopes: 1,
            current_time: "2024-05-01T12:00:00Z".into(),
            retry_count: 2,
            parameters: pv.clone(),
        })),
        Rpc::TransferComplete(TransferComplete {
            command_key: "k".into(),
            fault: tf.clone(),
            start_time: "2024-05-01T12:00:00Z".into(),
            complete_time: "2024-05-01T12:00:00Z".into(),
        }),
        Rpc::AutonomousTransferComplete(Box::new(AutonomousTransferComplete {
            announce_url: "http://a".into(),
            transfer_url: "http://t".into(),
            is_download: true,
            file_type: "1 Firmware Upgrade Image".into(),
            file_size: 10,
            target_file_name: "f".into(),
            fault: tf.clone(),
            start_time: "2024-05-01T12:00:00Z".into(),
            complete_time: "2024-05-01T12:00:00Z".into(),
        })),
        Rpc::RequestDownload {
            file_type: "2 Web Content".into(),
            args: vec![("a".into(), "b".into())],
        },
        Rpc::Kicked {
            command: "c".into(),
            referer: "r".into(),
            arg: "a".into(),
            next: "n".into(),
        },
        Rpc::DuStateChangeComplete {
            results: vec![op.clone()],
            command_key: "k".into(),
        },
        Rpc::AutonomousDuStateChangeComplete {
            results: vec![OpResult {
                operation_performed: Some("Install".into()),
                ..op
            }],
        },
        Rpc::InformResponse { max_envelopes: 1 },
        Rpc::TransferCompleteResponse,
        Rpc::AutonomousTransferCompleteResponse,
        Rpc::RequestDownloadResponse,
        Rpc::KickedResponse {
            next_url: "http://n".into(),
        },
        Rpc::DuStateChangeCompleteResponse,
        Rpc::AutonomousDuStateChangeCompleteResponse,
        Rpc::SetParameterValues {
            parameters: pv.clone(),
            parameter_key: "pk".into(),
        },
        Rpc::GetParameterValues {
            names: vec!["Device.".into()],
        },
        Rpc::GetParameterNames {
            path: "Device.".into(),
            next_level: true,
        },
        Rpc::SetParameterAttributes {
            parameters: vec![SetParameterAttribute {
                name: "Device.A".into(),
                notification_change: true,
                notification: 2,
                access_list_change: false,
                access_list: vec!["Subscriber".into()],
            }],
        },
        Rpc::GetParameterAttributes {
            names: vec!["Device.A".into()],
        },
        Rpc::AddObject {
            object_name: "Device.X.".into(),
            parameter_key: "k".into(),
        },
        Rpc::DeleteObject {
            object_name: "Device.X.1.".into(),
            parameter_key: "k".into(),
        },
        Rpc::Reboot {
            command_key: "r".into(),
        },
        Rpc::Download(Box::new(Download {
            command_key: "fw".into(),
            file_type: "1 Firmware Upgrade Image".into(),
            url: "http://fw/x.img".into(),
            file_size: 5,
            ..Download::default()
        })),
        Rpc::Upload(Box::new(Upload {
            command_key: "u".into(),
            file_type: "2 Vendor Log File".into(),
            url: "http://up".into(),
            ..Upload::default()
        })),
        Rpc::FactoryReset,
        Rpc::ScheduleInform {
            delay_seconds: 30,
            command_key: "s".into(),
        },
        Rpc::GetQueuedTransfers,
        Rpc::GetAllQueuedTransfers,
        Rpc::ScheduleDownload(Box::new(ScheduleDownload {
            command_key: "sd".into(),
            file_type: "1 Firmware Upgrade Image".into(),
            url: "http://fw".into(),
            windows: vec![TimeWindow {
                start: 0,
                end: 3600,
                mode: "1 At Any Time".into(),
                user_message: String::new(),
                max_retries: -1,
            }],
            ..ScheduleDownload::default()
        })),
        Rpc::CancelTransfer {
            command_key: "c".into(),
        },
        Rpc::ChangeDuState {
            operations: vec![
                DuOperation::Install {
                    url: "http://du".into(),
                    uuid: "6ba7b810-9dad-11d1-80b4-00c04fd430c8".into(),
                    username: String::new(),
                    password: String::new(),
                    execution_env_ref: String::new(),
                },
                DuOperation::Update {
                    uuid: "6ba7b810-9dad-11d1-80b4-00c04fd430c8".into(),
                    version: "2".into(),
                    url: String::new(),
                    username: String::new(),
                    password: String::new(),
                },
                DuOperation::Uninstall {
                    uuid: "6ba7b810-9dad-11d1-80b4-00c04fd430c8".into(),
                    version: String::new(),
                    execution_env_ref: String::new(),
                },
            ],
            command_key: "du".into(),
        },
        Rpc::SetParameterValuesResponse { status: 1 },
        Rpc::GetParameterValuesResponse { parameters: pv },
        Rpc::GetParameterNamesResponse {
            parameters: vec![ParameterInfo {
                name: "Device.A".into(),
                writable: true,
            }],
        },
        Rpc::SetParameterAttributesResponse,
        Rpc::GetParameterAttributesResponse {
            parameters: vec![ParameterAttribute {
                name: "Device.A".into(),
                notification: 1,
                access_list: vec![],
            }],
        },
        Rpc::AddObjectResponse {
            instance_number: 3,
            status: 0,
        },
        Rpc::DeleteObjectResponse { status: 0 },
        Rpc::RebootResponse,
        Rpc::DownloadResponse {
            status: 1,
            start_time: UNKNOWN_TIME.into(),
            complete_time: UNKNOWN_TIME.into(),
        },
        Rpc::UploadResponse {
            status: 0,
            start_time: "2024-05-01T12:00:00Z".into(),
            complete_time: "2024-05-01T12:00:00Z".into(),
        },
        Rpc::FactoryResetResponse,
        Rpc::ScheduleInformResponse,
        Rpc::GetQueuedTransfersResponse {
            transfers: vec![QueuedTransfer {
                command_key: "k".into(),
                state: 2,
                all: None,
            }],
        },
        Rpc::GetAllQueuedTransfersResponse {
            transfers: vec![QueuedTransfer {
                command_key: "k".into(),
                state: 1,
                all: Some(AllQueuedTransfer {
                    is_download: true,
                    file_type: "1 Firmware Upgrade Image".into(),
                    file_size: 9,
                    target_file_name: String::new(),
                }),
            }],
        },
        Rpc::ScheduleDownloadResponse,
        Rpc::CancelTransferResponse,
        Rpc::ChangeDuStateResponse,
        Rpc::Fault(Fault {
            code: 9003,
            string: "Invalid arguments".into(),
            spv: vec![SpvFault {
                name: "Device.A".into(),
                code: 9007,
                string: "Invalid parameter value".into(),
            }],
        }),
    ]
}

#[test]
fn every_rpc_round_trips_in_every_namespace() {
    let all = every_rpc();
    // 51 bodies: every RPC of both sides of TR-069 Annex A in this crate, plus the fault.
    assert_eq!(all.len(), 51);
    // CWMP_DUMP=dir writes each envelope there, for validating them against the XSDs with
    // xmllint (xtask/scripts/validate-cwmp.sh).
    let dump = std::env::var_os("CWMP_DUMP").map(std::path::PathBuf::from);
    for v in 0..=4 {
        for (i, rpc) in all.iter().enumerate() {
            let env = Envelope::new(Version(v), Some(format!("id-{v}")), rpc.clone());
            let xml = env.to_xml();
            if let Some(d) = &dump {
                std::fs::create_dir_all(d).unwrap();
                std::fs::write(d.join(format!("1-{v}-{i:02}-{}.xml", rpc.method())), &xml).unwrap();
            }
            let back = parse(xml.as_bytes()).unwrap_or_else(|e| panic!("{e}: {xml}"));
            assert_eq!(back, env, "{xml}");
        }
    }
}

#[test]
fn header_fields_round_trip() {
    let mut env = Envelope::new(Version::V1_0, Some("7".into()), Rpc::GetRpcMethods);
    env.hold_requests = Some(true);
    env.no_more_requests = true;
    env.session_timeout = Some(30);
    env.supported_versions = Some("1.0,1.1,1.2,1.3,1.4".into());
    env.use_version = Some("1.2".into());
    assert_eq!(parse(env.to_xml().as_bytes()).unwrap(), env);
}

#[test]
fn bad_input_is_an_error_value() {
    let cases: &[(&[u8], &str)] = &[
        (b"<not-xml", "xml"),
        (b"<a></b>", "xml"),
        (
            br#"<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><x/>"#,
            "doctype",
        ),
        (b"<Envelope/>", "not_envelope"),
        (
            br#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><c:Inform xmlns:c="urn:dslforum-org:cwmp-9-9"/></s:Body></s:Envelope>"#,
            "wrong_namespace",
        ),
        (
            br#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><c:Frobnicate xmlns:c="urn:dslforum-org:cwmp-1-0"/></s:Body></s:Envelope>"#,
            "unknown_method",
        ),
        (
            br#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><c:Inform xmlns:c="urn:dslforum-org:cwmp-1-0"/></s:Body></s:Envelope>"#,
            "missing",
        ),
        (
            br#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Header><x:Y xmlns:x="urn:x" s:mustUnderstand="1"/></s:Header><s:Body><c:GetRPCMethods xmlns:c="urn:dslforum-org:cwmp-1-0"/></s:Body></s:Envelope>"#,
            "must_understand",
        ),
    ];
    for (input, kind) in cases {
        let e = parse(input).unwrap_err();
        assert_eq!(e.kind(), *kind, "{}: {e}", String::from_utf8_lossy(input));
    }
}

// ---------------------------------------------------------------------------------------------
// Session

#[derive(Default)]
struct Script {
    queue: VecDeque<Rpc>,
    next_tag: u64,
    answers: Vec<(u64, Result<Rpc, Fault>)>,
    abandoned: Vec<u64>,
    informs: usize,
    refuse: bool,
}

impl Driver for Script {
    fn inform(&mut self, _: u64, _: &Envelope, _: &Inform) -> Result<(), Fault> {
        self.informs += 1;
        if self.refuse {
            Err(Fault::new(8001))
        } else {
            Ok(())
        }
    }
    fn next_request(&mut self, _: u64) -> Option<(u64, Rpc)> {
        let r = self.queue.pop_front()?;
        self.next_tag += 1;
        Some((self.next_tag, r))
    }
    fn answer(&mut self, _: u64, tag: u64, a: Result<Rpc, Fault>) {
        self.answers.push((tag, a));
    }
    fn abandoned(&mut self, _: u64, tag: u64) {
        self.abandoned.push(tag);
    }
}

fn inform_xml(v: u8) -> String {
    let Rpc::Inform(i) = every_rpc().swap_remove(2) else {
        unreachable!()
    };
    Envelope::new(Version(v), Some("i1".into()), Rpc::Inform(i)).to_xml()
}

fn body_of(r: &Response) -> Envelope {
    parse(r.body.as_bytes()).unwrap()
}

#[test]
fn inform_session_without_work_ends_with_204() {
    let mut d = Script::default();
    let mut s = Session::new(0, 1, Limits::default());
    let r = s.handle(0, inform_xml(0).as_bytes(), &mut d);
    assert_eq!(r.status, 200);
    let e = body_of(&r);
    assert_eq!(
        e.version,
        Version::V1_0,
        "answered in the device's namespace"
    );
    assert_eq!(e.id.as_deref(), Some("i1"));
    assert_eq!(e.body, Rpc::InformResponse { max_envelopes: 1 });
    let r = s.handle(1, b"", &mut d);
    assert_eq!((r.status, r.body.as_str()), (204, ""));
    assert_eq!(s.state(), SessionState::Done);
}

#[test]
fn queued_requests_go_out_and_answers_come_back_by_id() {
    let mut d = Script::default();
    d.queue.push_back(Rpc::GetParameterValues {
        names: vec!["Device.".into()],
    });
    d.queue.push_back(Rpc::Reboot {
        command_key: "r".into(),
    });
    let mut s = Session::new(0, 0xab, Limits::default());
    s.handle(0, inform_xml(2).as_bytes(), &mut d);
    // A CPE request first.
    let tc = Envelope::new(
        Version::V1_2,
        Some("t".into()),
        Rpc::TransferComplete(TransferComplete::default()),
    );
    let r = s.handle(0, tc.to_xml().as_bytes(), &mut d);
    assert_eq!(body_of(&r).body, Rpc::TransferCompleteResponse);
    let r = s.handle(0, b"", &mut d);
    let gpv = body_of(&r);
    assert!(matches!(gpv.body, Rpc::GetParameterValues { .. }));
    let answer = Envelope::new(
        Version::V1_2,
        gpv.id.clone(),
        Rpc::GetParameterValuesResponse { parameters: vec![] },
    );
    let r = s.handle(0, answer.to_xml().as_bytes(), &mut d);
    let reboot = body_of(&r);
    assert!(matches!(reboot.body, Rpc::Reboot { .. }));
    assert_ne!(reboot.id, gpv.id);
    let fault = Envelope::new(
        Version::V1_2,
        reboot.id.clone(),
        Rpc::Fault(Fault::new(9001)),
    );
    let r = s.handle(0, fault.to_xml().as_bytes(), &mut d);
    assert_eq!(r.status, 204);
    assert_eq!(d.answers.len(), 2);
    assert_eq!(d.answers[0].0, 1);
    assert!(matches!(d.answers[1], (2, Err(Fault { code: 9001, .. }))));
}

#[test]
fn out_of_order_messages_are_refused() {
    let mut d = Script::default();
    let mut s = Session::new(0, 0, Limits::default());
    // Empty POST before Inform.
    assert_eq!(s.handle(0, b"", &mut d).status, 400);
    // A TransferComplete before Inform: fault 8003.
    let tc = Envelope::new(
        Version::V1_2,
        Some("t".into()),
        Rpc::TransferComplete(TransferComplete::default()),
    );
    let r = s.handle(0, tc.to_xml().as_bytes(), &mut d);
    assert!(matches!(
        body_of(&r).body,
        Rpc::Fault(Fault { code: 8003, .. })
    ));
    // A response nobody asked for, after Inform: 400.
    s.handle(0, inform_xml(2).as_bytes(), &mut d);
    let stray = Envelope::new(Version::V1_2, None, Rpc::RebootResponse);
    assert_eq!(s.handle(0, stray.to_xml().as_bytes(), &mut d).status, 400);
    // Garbage: a fault, never a panic.
    let r = s.handle(0, b"<<<", &mut d);
    assert!(matches!(
        body_of(&r).body,
        Rpc::Fault(Fault { code: 8003, .. })
    ));
    // A refused Inform.
    d.refuse = true;
    let mut s = Session::new(0, 0, Limits::default());
    let r = s.handle(0, inform_xml(2).as_bytes(), &mut d);
    assert!(matches!(
        body_of(&r).body,
        Rpc::Fault(Fault { code: 8001, .. })
    ));
}

#[test]
fn wrong_answer_abandons_the_request() {
    let mut d = Script::default();
    d.queue.push_back(Rpc::FactoryReset);
    let mut s = Session::new(0, 0, Limits::default());
    s.handle(0, inform_xml(2).as_bytes(), &mut d);
    let req = body_of(&s.handle(0, b"", &mut d));
    let wrong = Envelope::new(Version::V1_2, req.id, Rpc::RebootResponse);
    assert_eq!(s.handle(0, wrong.to_xml().as_bytes(), &mut d).status, 400);
    assert_eq!(d.abandoned, [1]);
}

proptest! {
    #[test]
    fn values_survive(name in "[A-Za-z0-9._]{1,64}", value in "\\PC{0,80}", key in "\\PC{0,32}") {
        let rpc = Rpc::SetParameterValues {
            parameters: vec![ParameterValue::new(name, value, "string")],
            parameter_key: key,
        };
        let env = Envelope::new(Version::V1_2, Some("x".into()), rpc);
        let back = parse(env.to_xml().as_bytes()).unwrap();
        prop_assert_eq!(back, env);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse(&bytes);
        let mut d = Script::default();
        let mut s = Session::new(0, 0, Limits::default());
        let _ = s.handle(0, &bytes, &mut d);
    }

    #[test]
    fn sessions_never_panic(steps in proptest::collection::vec(0usize..5, 0..12)) {
        let mut d = Script::default();
        d.queue.extend([Rpc::FactoryReset, Rpc::GetRpcMethods]);
        let mut s = Session::new(0, 0, Limits::default());
        let bodies = [
            inform_xml(1),
            String::new(),
            Envelope::new(Version::V1_1, None, Rpc::FactoryResetResponse).to_xml(),
            Envelope::new(Version::V1_1, None, Rpc::TransferComplete(TransferComplete::default())).to_xml(),
            Envelope::new(Version::V1_1, None, Rpc::Fault(Fault::new(9002))).to_xml(),
        ];
        for i in steps {
            let r = s.handle(0, bodies[i].as_bytes(), &mut d);
            prop_assert!(matches!(r.status, 200 | 204 | 400));
        }
    }
}

/// Every RPC this crate writes, in the cwmp-1-2 namespace, is valid against the BBF schema
/// (tests/data/cwmp/xsd, with the minimal SOAP envelope/encoding schemas written for these
/// tests) according to xmllint (Debian package libxml2-utils, installed by install-deps.sh).
/// And a broken one is not, so the check itself is shown to bite.
#[test]
fn every_rpc_is_valid_against_the_xsd() {
    let dir = std::env::temp_dir().join(format!("provd-cwmp-xsd-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut files = Vec::new();
    for (i, rpc) in every_rpc().into_iter().enumerate() {
        let f = dir.join(format!("{i:02}-{}.xml", rpc.method()));
        std::fs::write(
            &f,
            Envelope::new(Version::V1_2, Some("x".into()), rpc).to_xml(),
        )
        .unwrap();
        files.push(f);
    }
    let broken = dir.join("broken.xml");
    let good = std::fs::read_to_string(&files[9]).unwrap();
    std::fs::write(
        &broken,
        good.replace("<MaxEnvelopes>1</MaxEnvelopes>", "<Max>1</Max>"),
    )
    .unwrap();
    let schema = samples().join("../xsd/envelope-cwmp-1-2.xsd");
    let run = |files: &[std::path::PathBuf]| {
        std::process::Command::new("xmllint")
            .arg("--noout")
            .arg("--schema")
            .arg(&schema)
            .args(files)
            .output()
            .expect("xmllint (libxml2-utils) is installed")
    };
    let out = run(&files);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!run(&[broken]).status.success());
    let _ = std::fs::remove_dir_all(&dir);
}
