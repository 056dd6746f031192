//! Engine tests on virtual time: a [`Harness`] plays the I/O layer (records every datagram sent
//! and every event), tests play the MTA datagram by datagram with INFORMs built here or taken
//! from the spec's vectors. `prop` throws arbitrary traffic at the engine.

mod flows;
mod prop;

use std::net::{Ipv4Addr, SocketAddrV4};

use provd_snmp::{ErrorStatus, Message, Oid, Pdu, PduType, Value, VarBind, Version};

use crate::oids::SYS_DESCR_0;
use crate::*;

pub(crate) const ENROLLMENT: &[u8] =
    include_bytes!("../../../../tests/data/snmp/snmp_v2c_inform_enrollment.bin");
pub(crate) const ENROLLMENT_RESPONSE: &[u8] =
    include_bytes!("../../../../tests/data/snmp/snmp_v2c_inform_response.bin");
pub(crate) const SET_CONFIGFILE: &[u8] =
    include_bytes!("../../../../tests/data/snmp/snmp_v2c_set_configfile.bin");
pub(crate) const PROVSTATUS: &[u8] =
    include_bytes!("../../../../tests/data/snmp/snmp_v2c_inform_provstatus.bin");

/// The MTA of the spec's vectors.
pub(crate) const VECTOR_MAC: Mac = Mac([0x00, 0x15, 0xcf, 0x12, 0x34, 0x57]);
pub(crate) const VECTOR_CORRELATION: u32 = 0x1234_abcd;
pub(crate) const VECTOR_URL: &str = "tftp://10.0.0.10/mta/0015cf123457.bin";
/// SHA-1 of `vectors/docsis/built/mta_example.bin`, as in the SET vector.
pub(crate) const VECTOR_SHA1: [u8; 20] = [
    0x73, 0x2b, 0x97, 0xaa, 0x83, 0xd5, 0x13, 0x34, 0x00, 0x76, 0x82, 0x55, 0xbe, 0x2c, 0x98, 0xbb,
    0x6a, 0x97, 0xb6, 0xc5,
];

pub(crate) const CMTS: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 1);
/// The engine's request port in these tests.
pub(crate) const REQUEST_PORT: u16 = 50_000;
pub(crate) const T0: Millis = Millis(1_700_000_000_000);

pub(crate) fn mac(n: u8) -> Mac {
    Mac([0x00, 0x15, 0xcf, 0x00, 0x00, n])
}

pub(crate) fn mta_ip(m: Mac) -> Ipv4Addr {
    Ipv4Addr::new(10, 1, m.0[4], m.0[5])
}

/// Where an MTA's INFORMs come from (its SNMP stack's own port).
pub(crate) fn mta_src(m: Mac) -> SocketAddrV4 {
    SocketAddrV4::new(mta_ip(m), 1024)
}

pub(crate) fn binding(m: Mac, flow: Flow) -> Binding {
    Binding {
        mac: m,
        addr: mta_ip(m),
        giaddr: CMTS,
        flow,
        file_name: (!flow.is_hybrid()).then(|| format!("mta/{}.bin", m.0[5])),
        provisioning_timer: None,
    }
}

fn oid(arcs: &[u32]) -> Oid {
    Oid::from_slice(arcs).unwrap()
}

/// The varbinds every SNMPv2 notification starts with.
fn notification_head(uptime: u32, trap: &[u32]) -> Vec<VarBind> {
    vec![
        VarBind::new(oid(provd_snmp::SYS_UPTIME_0), Value::TimeTicks(uptime)),
        VarBind::new(oid(provd_snmp::SNMP_TRAP_OID_0), Value::ObjectId(oid(trap))),
    ]
}

fn inform(community: &str, request_id: i32, varbinds: Vec<VarBind>) -> Vec<u8> {
    let pdu = Pdu::new(PduType::InformRequest, request_id, varbinds);
    Message::from_pdu(Version::V2c, community, pdu)
        .to_bytes()
        .unwrap()
}

/// An enrollment INFORM in `mib`'s OIDs. The CableLabs correlation id is an Integer32.
pub(crate) fn enrollment(
    mib: Mib,
    m: Mac,
    correlation: u32,
    request_id: i32,
    community: &str,
) -> Vec<u8> {
    let o = mib.oids();
    let mut vbs = notification_head(4200, o.enrollment);
    let s = |b: &[u8]| Value::OctetString(b.to_vec());
    vbs.push(VarBind::new(
        oid(SYS_DESCR_0),
        s(b"<<VENDOR: Test; MODEL: T1>>"),
    ));
    vbs.push(VarBind::new(oid(o.sw_current_vers), s(b"9.9")));
    vbs.push(VarBind::new(oid(o.type_identifier), s(b"pktc1.0:0101")));
    vbs.push(VarBind::new(oid(o.mac), s(&m.0)));
    let corr = match mib {
        Mib::Ietf => Value::Gauge32(correlation),
        Mib::CableLabs => Value::Integer(i64::from(correlation as i32)),
    };
    vbs.push(VarBind::new(oid(o.correlation_id), corr));
    inform(community, request_id, vbs)
}

/// A status INFORM reporting `state`.
pub(crate) fn status(mib: Mib, m: Mac, correlation: u32, state: i64, request_id: i32) -> Vec<u8> {
    let o = mib.oids();
    let mut vbs = notification_head(9100, o.status);
    vbs.push(VarBind::new(oid(o.mac), Value::OctetString(m.0.to_vec())));
    vbs.push(VarBind::new(
        oid(o.correlation_id),
        Value::Gauge32(correlation),
    ));
    vbs.push(VarBind::new(
        oid(o.provisioning_state),
        Value::Integer(state),
    ));
    inform("public", request_id, vbs)
}

/// The agent's Response to a GET or SET: same request-id and varbinds (or `values` for a
/// GET), with `error`.
pub(crate) fn response_to_request(
    request: &[u8],
    error: ErrorStatus,
    values: Option<Vec<VarBind>>,
) -> Vec<u8> {
    let msg = Message::decode(request).unwrap();
    let pdu = msg.pdu().unwrap();
    let mut answer = Pdu::new(
        PduType::Response,
        pdu.request_id,
        values.unwrap_or_else(|| pdu.varbinds.clone()),
    );
    answer.error_status = error;
    answer.error_index = i32::from(error.is_error());
    Message::from_pdu(Version::V2c, msg.community().unwrap(), answer)
        .to_bytes()
        .unwrap()
}

/// One datagram the engine sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Sent {
    pub to: SocketAddrV4,
    pub from_port: FromPort,
    pub bytes: Vec<u8>,
}

impl Sent {
    pub fn message(&self) -> Message {
        Message::decode(&self.bytes).expect("the engine only sends well-formed messages")
    }

    pub fn pdu(&self) -> Pdu {
        self.message().pdu().unwrap().clone()
    }
}

pub(crate) struct Harness {
    pub engine: Engine,
    pub now: Millis,
    pub events: Vec<Event>,
}

impl Harness {
    pub fn new(config: Config) -> Harness {
        Harness {
            engine: Engine::new(config).unwrap(),
            now: T0,
            events: Vec::new(),
        }
    }

    pub fn default() -> Harness {
        Harness::new(Config::default())
    }

    fn drain(&mut self) {
        while let Some(e) = self.engine.poll_event() {
            self.events.push(e);
        }
        self.engine.check_invariants().unwrap();
    }

    /// Events since the last call.
    pub fn take_events(&mut self) -> Vec<Event> {
        self.drain();
        std::mem::take(&mut self.events)
    }

    pub fn dhcp(&mut self, b: Binding) -> Result<(), Refused> {
        let r = self.engine.on_dhcp(self.now, b);
        self.drain();
        r
    }

    /// Delivers a datagram on `port` (162: notifications).
    pub fn deliver_on(&mut self, src: SocketAddrV4, port: u16, bytes: &[u8]) -> Vec<Sent> {
        let mut sent = Vec::new();
        self.engine
            .on_datagram(self.now, src, port, bytes, &mut |o: Outgoing<'_>| {
                sent.push(Sent {
                    to: o.to,
                    from_port: o.from_port,
                    bytes: o.to_vec(),
                })
            });
        self.drain();
        sent
    }

    pub fn notify(&mut self, src: SocketAddrV4, bytes: &[u8]) -> Vec<Sent> {
        self.deliver_on(src, 162, bytes)
    }

    pub fn file_ready(&mut self, m: Mac, url: &str, hash: &[u8]) -> Result<Vec<Sent>, FileError> {
        let mut sent = Vec::new();
        let r = self.engine.file_ready(
            self.now,
            m,
            url.to_string(),
            hash.to_vec(),
            &mut |o: Outgoing<'_>| {
                sent.push(Sent {
                    to: o.to,
                    from_port: o.from_port,
                    bytes: o.to_vec(),
                })
            },
        );
        self.drain();
        r.map(|()| sent)
    }

    pub fn fetched(&mut self, m: Mac) -> bool {
        let r = self.engine.on_file_fetched(self.now, m);
        self.drain();
        r
    }

    /// Moves the clock to `t` and runs the timers.
    pub fn run_until(&mut self, t: Millis) -> Vec<Sent> {
        self.now = t;
        let mut sent = Vec::new();
        self.engine.poll_timeouts(t, &mut |o: Outgoing<'_>| {
            sent.push(Sent {
                to: o.to,
                from_port: o.from_port,
                bytes: o.to_vec(),
            })
        });
        self.drain();
        sent
    }

    pub fn advance(&mut self, ms: u64) -> Vec<Sent> {
        self.run_until(self.now.plus(ms))
    }

    pub fn state(&self, m: Mac) -> State {
        self.engine.record(m).expect("a record").state.clone()
    }
}
