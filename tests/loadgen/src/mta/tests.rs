//! The fleet against the in-test stand-in server (`stand_in.rs`) on loopback.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};

use super::stand_in::{Behaviour, StandIn};
use super::*;

/// A UDP port free on loopback right now (for the fleet's agent socket, which the stand-in
/// must know before the run binds it).
fn free_port() -> u16 {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    let SocketAddr::V4(a) = s.local_addr().unwrap() else {
        unreachable!()
    };
    a.port()
}

fn cfg(server: SocketAddrV4, agent_port: u16) -> Config {
    Config {
        server,
        bind: Ipv4Addr::LOCALHOST,
        agent_port,
        count: 60,
        concurrency: 8,
        duration: Duration::from_secs(20),
        community: "private".into(),
        set_community: "private".into(),
        mac_base: [0x02, 0x4d, 0, 0, 0, 0],
        timeout: Duration::from_millis(100),
        retries: 3,
        tftp: RequestOptions::default(),
        flow_timeout: Duration::from_secs(5),
    }
}

fn fleet(how: Behaviour, tweak: impl FnOnce(&mut Config)) -> (Report, stand_in::Seen) {
    let port = free_port();
    let server = StandIn::start(port, how);
    let mut c = cfg(server.addr(), port);
    tweak(&mut c);
    let r = run(c).unwrap();
    (r, server.stop())
}

#[test]
fn every_flow_completes_against_a_well_behaved_server() {
    let (r, seen) = fleet(Behaviour::default(), |_| {});
    assert!(r.all_ok(), "{}", r.detail());
    assert_eq!((r.started, r.flows, r.failed, r.timeouts), (60, 60, 0, 0));
    assert_eq!(seen.enrollments, 60);
    assert_eq!(seen.statuses_pass, 60);
    assert_eq!(seen.set_responses, 60);
    assert_eq!(seen.rrqs, 60);
    assert_eq!(r.sets_answered, 60);
    assert_eq!(
        (r.inform_resends, r.sets_repeated, r.sets_unknown),
        (0, 0, 0)
    );
    assert_eq!(r.latency_us.count(), 60);
    assert_eq!(r.first_completed.is_some(), r.last_completed.is_some());
    assert!(r.flows_per_s() > 0.0);
    let line = r.line();
    assert!(
        line.starts_with("RESULT mta-load flows=60 flows_per_s="),
        "{line}"
    );
    assert!(line.ends_with(" failed=0 timeouts=0"), "{line}");
}

#[test]
fn files_of_whole_blocks_and_blksize_work() {
    let how = Behaviour {
        file_len: 1024,
        ..Behaviour::default()
    };
    let (r, seen) = fleet(how, |c| c.count = 10);
    assert!(r.all_ok(), "{}", r.detail());
    assert_eq!(seen.statuses_pass, 10);
    // The stand-in ignores options: DATA without an OACK is taken as 512-byte blocks.
    let (r, _) = fleet(Behaviour::default(), |c| {
        c.count = 10;
        c.tftp.blksize = Some(1428);
    });
    assert!(r.all_ok(), "{}", r.detail());
}

#[test]
fn a_wrong_hash_fails_that_flow_only() {
    let how = Behaviour {
        wrong_hash_every: 5,
        ..Behaviour::default()
    };
    let (r, seen) = fleet(how, |c| c.count = 40);
    assert_eq!(
        (r.flows, r.failed, r.timeouts),
        (32, 8, 0),
        "{}",
        r.detail()
    );
    assert!(!r.all_ok());
    assert_eq!(seen.statuses_pass, 32);
    assert!(
        r.detail()
            .contains("8 failed: file SHA-1 differs from the SET's hash"),
        "{}",
        r.detail()
    );
    assert!(r.line().ends_with(" failed=8 timeouts=0"));
}

#[test]
fn unanswered_informs_are_resent_and_repeated_sets_answered() {
    let how = Behaviour {
        drop_first_answers: true,
        set_twice: true,
        ..Behaviour::default()
    };
    let (r, seen) = fleet(how, |c| c.count = 20);
    assert!(r.all_ok(), "{}", r.detail());
    // The enrollment's answer was withheld but its SET came: no resend needed there. The
    // status answer was withheld: one resend per flow.
    assert_eq!(r.inform_resends, 20, "{}", r.detail());
    assert_eq!(seen.statuses_pass, 20);
    assert_eq!(r.sets_answered, 40);
    assert_eq!(seen.set_responses, 40);
    assert_eq!(r.sets_repeated + r.sets_unknown, 20, "{}", r.detail());
}

#[test]
fn a_silent_server_times_out_within_bounds() {
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let SocketAddr::V4(addr) = silent.local_addr().unwrap() else {
        unreachable!()
    };
    let mut c = cfg(addr, free_port());
    c.count = 5;
    c.concurrency = 5;
    c.timeout = Duration::from_millis(20);
    c.retries = 2;
    let t = Instant::now();
    let r = run(c).unwrap();
    assert!(t.elapsed() < Duration::from_secs(2));
    assert_eq!((r.flows, r.failed, r.timeouts), (0, 0, 5), "{}", r.detail());
    assert!(
        r.detail()
            .contains("5 failed: enrollment INFORM unanswered")
    );
    assert_eq!(r.inform_resends, 10);
    assert_eq!(r.line(), {
        "RESULT mta-load flows=0 flows_per_s=0.0 p50_ms=0.000 p99_ms=0.000 failed=0 timeouts=5"
    });
}

#[test]
fn a_server_that_never_sets_hits_the_flow_timeout_and_the_time_bound_holds() {
    // Answers INFORMs, never SETs: every flow waits for its SET until the flow timeout.
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let SocketAddr::V4(addr) = sock.local_addr().unwrap() else {
        unreachable!()
    };
    sock.set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = std::sync::Arc::clone(&stop);
    let t = std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while !flag.load(std::sync::atomic::Ordering::Relaxed) {
            if let Ok((n, from)) = sock.recv_from(&mut buf)
                && let Ok(m) = provd_snmp::Message::decode(&buf[..n])
                && let Some(a) = provd_snmp::response_to(&m)
            {
                let _ = sock.send_to(&a.to_bytes().unwrap(), from);
            }
        }
    });
    let mut c = cfg(addr, free_port());
    c.count = MAX_COUNT;
    c.concurrency = 3;
    c.duration = Duration::from_millis(200);
    c.flow_timeout = Duration::from_millis(300);
    let t0 = Instant::now();
    let r = run(c).unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    t.join().unwrap();
    assert!(t0.elapsed() < Duration::from_secs(3));
    assert_eq!(r.flows, 0);
    assert_eq!(r.timeouts, r.started);
    assert!(r.started >= 3);
    assert!(
        r.detail().contains("flow timeout waiting for the SET"),
        "{}",
        r.detail()
    );
}

#[test]
fn stray_and_foreign_datagrams_on_the_agent_port_are_refused() {
    let port = free_port();
    let server = StandIn::start(port, Behaviour::default());
    let c = cfg(server.addr(), port);
    let agent = SocketAddrV4::new(Ipv4Addr::LOCALHOST, port);
    // Sent while the run is up: a SET with another community, junk, an INFORM, and a SET for
    // an MTA not in the fleet.
    let sender = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        let set = include_bytes!("../../../../tests/data/snmp/snmp_v2c_set_configfile.bin");
        let mut public = provd_snmp::Message::decode(set).unwrap();
        if let provd_snmp::Message::Community { community, .. } = &mut public {
            *community = b"public".to_vec();
        }
        s.send_to(&public.to_bytes().unwrap(), agent).unwrap();
        s.send_to(b"junk", agent).unwrap();
        let inform = include_bytes!("../../../../tests/data/snmp/snmp_v2c_inform_enrollment.bin");
        s.send_to(inform, agent).unwrap();
        s.send_to(set, agent).unwrap();
        let mut buf = [0u8; 512];
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        // Only the SET with our community is answered.
        let (n, _) = s.recv_from(&mut buf).unwrap();
        msg::read_response(&buf[..n]).unwrap().request_id
    });
    let mut c = c;
    c.count = MAX_COUNT;
    c.duration = Duration::from_millis(400);
    c.concurrency = 2;
    let r = run(c).unwrap();
    assert_eq!(sender.join().unwrap(), 2002);
    assert!(r.all_ok(), "{}", r.detail());
    assert_eq!(r.sets_unknown, 1);
    assert_eq!(r.agent_rejected.get("wrong community"), Some(&1));
    assert_eq!(r.agent_rejected.get("undecodable"), Some(&1));
    assert_eq!(r.agent_rejected.get("not a SetRequest"), Some(&1));
    drop(server);
}

#[test]
fn bad_configs_are_refused() {
    let s = SocketAddrV4::new(Ipv4Addr::LOCALHOST, 162);
    let mut c = cfg(s, 0);
    c.concurrency = 0;
    assert!(run(c).is_err());
    let mut c = cfg(s, 0);
    c.count = MAX_COUNT + 1;
    assert!(run(c).is_err());
    let mut c = cfg(s, 0);
    c.tftp.blksize = Some(4);
    assert!(run(c).is_err());
    let mut c = cfg(s, 0);
    c.community = String::new();
    assert!(run(c).is_err());
}

#[test]
fn a_time_bounded_run_measures_the_flows_done_within_its_time() {
    let (r, seen) = fleet(Behaviour::default(), |c| {
        c.count = MAX_COUNT;
        c.duration = Duration::from_millis(300);
    });
    assert!(r.all_ok(), "{}", r.detail());
    assert_eq!(r.measured, Duration::from_millis(300));
    assert!(r.measured_flows > 0 && r.measured_flows <= r.flows);
    assert!(r.to_last >= r.measured - Duration::from_millis(10));
    let rate = r.measured_flows as f64 / 0.3;
    assert!((r.flows_per_s() - rate).abs() < 1e-6);
    assert_eq!(seen.statuses_pass, r.flows);
    // Count-bounded: every flow, up to the last completion.
    let (r, _) = fleet(Behaviour::default(), |c| c.count = 10);
    assert_eq!((r.measured_flows, r.measured), (10, r.to_last));
}
