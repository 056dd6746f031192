//! The MTA role on loopback, without root: a real UDP peer plays the MTA (its INFORMs built with
//! provd-snmp's encoder, its agent on an ephemeral port), the role runs its own thread and
//! sockets as `provd serve` runs them.

use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use provd_config::Policy;
use provd_devices::DeviceView;
use provd_files::Generator;
use provd_lease::LeaseObserver;
use provd_mtad::{Context, MtaObserver, MtaRole};
use provd_role::Role;
use provd_snmp::{Message, Oid, Pdu, PduType, Value, VarBind, Version};
use provd_tftpd::{FileSource, TransferRequest};

const LOCALHOST: Ipv4Addr = Ipv4Addr::LOCALHOST;

const MTA_TEMPLATE: &str = r#"Main {
	MtaConfigDelimiter 1;
	SnmpMibObject pktcMtaDevEnabled.0 Integer 1;
	MtaConfigDelimiter 255;
}
"#;

/// pktcMtaDevProvisioningEnrollment and the instances it carries (CableLabs MIB).
const ENROLLMENT_TRAP: &[u32] = &[1, 3, 6, 1, 4, 1, 4491, 2, 2, 1, 2, 0, 1];
const SYS_DESCR_0: &[u32] = &[1, 3, 6, 1, 2, 1, 1, 1, 0];
const MAC_0: &[u32] = &[1, 3, 6, 1, 4, 1, 4491, 2, 2, 1, 1, 1, 4, 0];
const CORRELATION_0: &[u32] = &[1, 3, 6, 1, 4, 1, 4491, 2, 2, 1, 1, 3, 4, 0];
const SW_VERS_0: &[u32] = &[1, 3, 6, 1, 4, 1, 4491, 2, 2, 1, 1, 1, 14, 0];
const TYPE_ID_0: &[u32] = &[1, 3, 6, 1, 4, 1, 4491, 2, 2, 1, 1, 1, 8, 0];
/// pktcMtaDevConfigFile.0 and pktcMtaDevProvConfigHash.0: what the SET writes.
const CONFIG_FILE_0: &[u32] = &[1, 3, 6, 1, 4, 1, 4491, 2, 2, 1, 1, 2, 5, 0];
const CONFIG_HASH_0: &[u32] = &[1, 3, 6, 1, 4, 1, 4491, 2, 2, 1, 1, 2, 7, 0];
/// pktcMtaDevProvisioningStatus and its pktcMtaDevProvisioningState.0.
const STATUS_TRAP: &[u32] = &[1, 3, 6, 1, 4, 1, 4491, 2, 2, 1, 2, 0, 2];
const PROV_STATE_0: &[u32] = &[1, 3, 6, 1, 4, 1, 4491, 2, 2, 1, 1, 1, 9, 0];

struct Lab {
    _dir: tempfile::TempDir,
    role: Option<MtaRole>,
    observer: MtaObserver,
    view: Arc<DeviceView>,
    /// Where the role sends its GETs and SETs: the MTAs' agent.
    agent: UdpSocket,
    shutdown: Arc<AtomicBool>,
}

impl Lab {
    fn start() -> Lab {
        Lab::start_with(|ctx| ctx)
    }

    fn start_with(tune: impl FnOnce(Context) -> Context) -> Lab {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("mta.j2"), MTA_TEMPLATE).unwrap();
        let toml = r#"
[server]
lease_dir = "/tmp/unused"
[tftp]
enforce = false
[mta]
bind = "127.0.0.1"
[[class]]
name = "mta"
match = "pktc*"
boot_file = "mta/{mac}.bin"
flow = "HYBRID.2"
[class.config_file]
template = "mta.j2"
kind = "mta"
mta_hash = "sha1"
"#;
        let file = dir.path().join("provd.toml");
        // The one minimal DHCP network every test shares (provd_config::testing::NETWORK).
        std::fs::write(&file, provd_config::testing::config(toml)).unwrap();
        let policy = Policy::from_file(&file).unwrap();
        let mut settings = policy.mta.clone().unwrap();
        settings.port = 0;
        let view = Arc::new(DeviceView::new());
        let generator = Arc::new(Generator::new(&policy, Arc::clone(&view)).unwrap());
        let agent = UdpSocket::bind((LOCALHOST, 0)).unwrap();
        agent
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let ctx = tune(Context {
            agent_port: agent.local_addr().unwrap().port(),
            ..Context::new(
                Arc::new(policy),
                generator,
                Arc::clone(&view),
                LOCALHOST,
                false,
            )
        });
        let shutdown = Arc::new(AtomicBool::new(false));
        let (role, observer) = provd_mtad::start(&settings, ctx, Arc::clone(&shutdown)).unwrap();
        Lab {
            _dir: dir,
            role: Some(role),
            observer,
            view,
            agent,
            shutdown,
        }
    }

    fn role(&self) -> &MtaRole {
        self.role.as_ref().unwrap()
    }

    fn counter(&self, name: &str) -> u64 {
        self.role()
            .counters()
            .into_iter()
            .find(|(k, _)| k == name)
            .unwrap_or_else(|| panic!("no counter {name}"))
            .1
    }

    /// Waits until `name` reaches `want` (the role publishes once per loop turn).
    fn wait_counter(&self, name: &str, want: u64) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.counter(name) < want {
            assert!(
                Instant::now() < deadline,
                "{name} = {}, want {want}",
                self.counter(name)
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn stop(mut self) {
        self.shutdown.store(true, Ordering::Relaxed);
        let role = Box::new(self.role.take().unwrap());
        role.stop(Duration::from_secs(5)).unwrap();
    }
}

fn oid(arcs: &[u32]) -> Oid {
    Oid::from_slice(arcs).unwrap()
}

fn mac(n: u8) -> [u8; 6] {
    [0x00, 0x15, 0xcf, 0x00, 0x01, n]
}

/// An enrollment INFORM of `mac`, as an MTA's SNMP stack sends it.
fn enrollment(mac: [u8; 6], request_id: i32) -> Vec<u8> {
    let s = |b: &[u8]| Value::OctetString(b.to_vec());
    let varbinds = vec![
        VarBind::new(oid(provd_snmp::SYS_UPTIME_0), Value::TimeTicks(4200)),
        VarBind::new(
            oid(provd_snmp::SNMP_TRAP_OID_0),
            Value::ObjectId(oid(ENROLLMENT_TRAP)),
        ),
        VarBind::new(oid(SYS_DESCR_0), s(b"<<VENDOR: Test; MODEL: T1>>")),
        VarBind::new(oid(SW_VERS_0), s(b"9.9")),
        VarBind::new(oid(TYPE_ID_0), s(b"pktc1.0:0101")),
        VarBind::new(oid(MAC_0), s(&mac)),
        VarBind::new(oid(CORRELATION_0), Value::Integer(0x1234)),
    ];
    let pdu = Pdu::new(PduType::InformRequest, request_id, varbinds);
    Message::from_pdu(Version::V2c, "private", pdu)
        .to_bytes()
        .unwrap()
}

/// The final status INFORM of `mac` (MTA-25): pass.
fn status_pass(mac: [u8; 6], request_id: i32) -> Vec<u8> {
    let varbinds = vec![
        VarBind::new(oid(provd_snmp::SYS_UPTIME_0), Value::TimeTicks(9100)),
        VarBind::new(
            oid(provd_snmp::SNMP_TRAP_OID_0),
            Value::ObjectId(oid(STATUS_TRAP)),
        ),
        VarBind::new(oid(MAC_0), Value::OctetString(mac.to_vec())),
        VarBind::new(oid(CORRELATION_0), Value::Integer(0x1234)),
        VarBind::new(oid(PROV_STATE_0), Value::Integer(1)),
    ];
    let pdu = Pdu::new(PduType::InformRequest, request_id, varbinds);
    Message::from_pdu(Version::V2c, "private", pdu)
        .to_bytes()
        .unwrap()
}

fn recv_pdu(sock: &UdpSocket) -> (Pdu, SocketAddrV4) {
    let mut buf = [0u8; 65_536];
    let (n, from) = sock.recv_from(&mut buf).expect("a datagram within 5 s");
    let std::net::SocketAddr::V4(from) = from else {
        panic!("{from}")
    };
    let msg = Message::decode(&buf[..n]).unwrap();
    (msg.pdu().expect("a PDU").clone(), from)
}

fn mta_socket() -> UdpSocket {
    let s = UdpSocket::bind((LOCALHOST, 0)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

#[test]
fn an_enrollment_is_answered_then_its_file_set_and_served_as_hashed() {
    // This binary's global recorder: the flow's duration lands in its histogram.
    let metrics = provd_metrics::install();
    let lab = Lab::start();
    let m = mac(1);
    // The DHCP worker's ACK of the MTA's boot.
    let binding = provd_lease::Binding {
        mac: m,
        addr: LOCALHOST,
        expires_at: u32::MAX,
        class: Some(0),
        giaddr: Ipv4Addr::UNSPECIFIED,
        vendor_class: Some(b"pktc1.0"[..].into()),
        remote_id: None,
        circuit_id: None,
        restart: true,
    };
    lab.view.bind(binding.clone());
    lab.observer.bind(binding);
    lab.wait_counter("dhcp_bindings", 1);

    let mta = mta_socket();
    mta.send_to(&enrollment(m, 77), lab.role().notify_addr())
        .unwrap();
    let (response, from) = recv_pdu(&mta);
    assert_eq!(
        (response.kind, response.request_id),
        (PduType::Response, 77)
    );
    assert_eq!(from, lab.role().notify_addr(), "answered from port 162");

    // The flow's next request: the SET of the file's URL and hash, to the MTA's agent, from
    // the request socket.
    let (set, from) = recv_pdu(&lab.agent);
    assert_eq!(set.kind, PduType::SetRequest);
    assert_eq!(from, lab.role().request_addr());
    let value = |o: &[u32]| {
        set.varbinds
            .iter()
            .find(|v| v.oid == oid(o))
            .map(|v| v.value.clone())
    };
    let name = format!("mta/{}.bin", provd_mta::Mac(m)).replace(':', "");
    assert_eq!(
        value(CONFIG_FILE_0),
        Some(Value::OctetString(
            format!("tftp://127.0.0.1/{name}").into_bytes()
        )),
        "{:?}",
        set.varbinds
    );
    let Some(Value::OctetString(hash)) = value(CONFIG_HASH_0) else {
        panic!("no hash in {:?}", set.varbinds)
    };
    let reply = Message::from_pdu(Version::V2c, "private", set.response());
    lab.agent.send_to(&reply.to_bytes().unwrap(), from).unwrap();

    // TFTP asks the pinned files first: the file served is the one hashed.
    let pinned = lab.role().pinned();
    let request = TransferRequest {
        filename: &name,
        peer: SocketAddrV4::new(LOCALHOST, 1024),
        local: SocketAddrV4::new(LOCALHOST, 69),
    };
    let content = pinned.open(&request).expect("the pinned file");
    assert_eq!(
        provd_docsis::mta_file_hash(&content, provd_docsis::HashAlg::Sha1),
        hash
    );
    // The fetch reached the flow: the record says so.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let record = lab
            .role()
            .status(m, Duration::from_secs(5))
            .expect("a record");
        if record.contains("\"file_fetched\"") {
            break;
        }
        assert!(Instant::now() < deadline, "{record}");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(lab.counter("informs_answered"), 1);
    assert!(lab.counter("datagrams_sent") >= 2);

    // The status INFORM ends the HYBRID.2 flow: one flow in the duration histogram.
    mta.send_to(&status_pass(m, 78), lab.role().notify_addr())
        .unwrap();
    assert_eq!(recv_pdu(&mta).0.request_id, 78);
    let series = r#"provd_mta_flow_duration_seconds_count{flow="HYBRID.2",outcome="pass"} 1"#;
    let extra = provd_metrics::Extra {
        store: None,
        build: provd_metrics::BuildInfo::current(),
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let text = metrics.render(&provd_role::RoleSet::default(), &extra);
        if text.lines().any(|l| l == series) {
            break;
        }
        assert!(Instant::now() < deadline, "no {series} in\n{text}");
        std::thread::sleep(Duration::from_millis(10));
    }
    // The role's own families, typed (published at the end of the worker's turn).
    let want = [
        "provd_mta_flows_active 0",
        "# TYPE provd_mta_flows_active gauge",
        "provd_mta_flows_completed_total 1",
        r#"provd_mta_statuses_by_state_total{state="pass"} 1"#,
        "provd_mta_informs_answered_total 2",
    ];
    loop {
        let mut e = provd_role::metrics::Exposition::new();
        lab.role().metrics(&mut e);
        assert!(e.refused().is_empty(), "{:?}", e.refused());
        let text = e.finish();
        let missing: Vec<_> = want
            .iter()
            .filter(|w| !text.lines().any(|l| l == **w))
            .collect();
        if missing.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "no {missing:?} in\n{text}");
        std::thread::sleep(Duration::from_millis(10));
    }
    lab.stop();
}

#[test]
fn a_burst_of_informs_from_many_mtas_is_all_answered() {
    let lab = Lab::start();
    const MTAS: u8 = 100;
    let sockets: Vec<UdpSocket> = (0..MTAS).map(|_| mta_socket()).collect();
    // All sent before any answer is read: the role finds them queued together.
    for (i, s) in sockets.iter().enumerate() {
        s.send_to(
            &enrollment(mac(i as u8), 1000 + i as i32),
            lab.role().notify_addr(),
        )
        .unwrap();
    }
    for (i, s) in sockets.iter().enumerate() {
        let (response, _) = recv_pdu(s);
        assert_eq!(
            (response.kind, response.request_id),
            (PduType::Response, 1000 + i as i32)
        );
    }
    lab.wait_counter("informs_answered", u64::from(MTAS));
    assert_eq!(lab.counter("datagrams_received"), u64::from(MTAS));
    lab.stop();
}

/// An INFORM read after it waited longer than `max_notification_age` is dropped unanswered and
/// counted: its MTA has resent it. (An age of zero makes every INFORM stale; at the default the
/// burst test above has each one answered.)
#[test]
fn informs_that_waited_too_long_are_dropped_and_counted() {
    let lab = Lab::start_with(|ctx| Context {
        max_notification_age: Duration::ZERO,
        ..ctx
    });
    let s = mta_socket();
    s.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    s.send_to(&enrollment(mac(7), 77), lab.role().notify_addr())
        .unwrap();
    let mut buf = [0u8; 1500];
    assert!(s.recv_from(&mut buf).is_err(), "no answer");
    lab.wait_counter("stale_notifications", 1);
    assert_eq!(lab.counter("informs_received"), 0);
    assert_eq!(lab.counter("informs_answered"), 0);
    lab.stop();
}

#[test]
fn the_role_reports_itself_and_stops_within_its_grace() {
    let lab = Lab::start();
    let role = lab.role();
    assert_eq!(role.name(), "mta");
    assert!(
        role.listening()
            .contains(&format!("udp={}", role.notify_addr())),
        "{}",
        role.listening()
    );
    assert!(!role.finished());
    // Garbage on the notify port is counted, not fatal.
    mta_socket()
        .send_to(b"not snmp", role.notify_addr())
        .unwrap();
    lab.wait_counter("undecodable", 1);
    assert!(!lab.role().finished());
    lab.stop();
}
