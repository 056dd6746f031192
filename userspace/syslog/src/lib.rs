//! The syslog receiver: cable modems and MTAs send their events (DOCSIS event messages,
//! PacketCable MTA provisioning status) to the log server named in DHCP option 7. This crate
//! keeps the recent ones per device, for the operator's "what did this modem say in the last
//! hour".
//!
//! ```text
//!              port 514 (SO_REUSEPORT group: the kernel spreads sources over the workers)
//!   syslog ──►  [socket 0] [socket 1] … [socket N-1]      recvmmsg, 32 datagrams per call
//!                   │          │              │
//!               worker 0   worker 1   …   worker N-1      parse, then DeviceOf: address → MAC
//!                   └──────────┴──────┬───────┘
//!                                   Store                 sharded: a ring of events per device
//!                                     ▲
//!                       control plane: events(device), recent(n)
//! ```
//!
//! * [`parse`]: sans-IO, bytes and the arrival time in, a [`Message`] out (RFC 5424, RFC 3164,
//!   and the bare `<PRI>text` DOCSIS devices send). Fuzzed (`fuzz/`, target `syslog_parse`).
//! * [`Store`]: bounded per-device history, see its module for the limits.
//! * [`spawn`]: the receiver threads; [`SyslogHandle`] has their counters and joins them after
//!   the shutdown flag is set.
//! * [`start`]: the role as `provd serve` runs it, from its `[syslog]` settings, filing events
//!   under the device whose lease holds the source address ([`provd_devices::DeviceView`]);
//!   its [`SyslogHandle`] is a [`provd_role::Role`] named `syslog` and keeps the [`Store`] the
//!   control socket reads.
//!
//! UDP only: devices send syslog over UDP (DOCSIS OSSI, PacketCable). There is no TCP (RFC 6587)
//! or TLS (RFC 5425) listener.
//!
//! ```
//! use std::net::Ipv4Addr;
//! use provd_syslog::{DeviceKey, Store, parse, device_key};
//!
//! let store = Store::default();
//! let dhcp = |addr: Ipv4Addr| (addr == Ipv4Addr::new(10, 1, 0, 7)).then_some([0, 0x15, 0xcf, 0x12, 0x34, 0x57]);
//! let msg = parse(b"<132>CABLEMODEM[DOCSIS]: <73050100> TLV-11 - unrecognized OID", 1_795_324_890_000).unwrap();
//! assert_eq!((msg.facility, msg.severity), (16, 4));
//! assert_eq!(msg.docsis_event_id(), Some(73050100));
//! let source = Ipv4Addr::new(10, 1, 0, 7);
//! store.insert(device_key(&dhcp, source), source, &msg);
//! let events = store.events(DeviceKey::Mac([0, 0x15, 0xcf, 0x12, 0x34, 0x57]));
//! assert_eq!(&*events[0].text, "<73050100> TLV-11 - unrecognized OID");
//! ```

mod parse;
mod role;
mod store;
mod worker;

use provd_role::WorkerSet;
use provd_udp::{Options, UdpSocket};
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

pub use parse::{
    Format, MAX_DATAGRAM, Message, ParseError, SdElement, Timestamp, docsis_event_id,
    facility_name, parse, severity_name,
};
pub use role::start;
pub use store::{
    ByAddress, DeviceKey, DeviceOf, Event, MAX_FIELD, Store, StoreConfig, StoreStats, Tap,
    device_key,
};

/// Where and how the receiver runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyslogSettings {
    pub bind: Ipv4Addr,
    /// 514, or 0 for any free port (tests; [`SyslogHandle::local_addr`] says which).
    pub port: u16,
    /// Receiver threads, each with its own socket in the port's reuseport group.
    pub workers: usize,
    /// Events a second, and at once, stored per source address; beyond, dropped and counted
    /// (`rate_limited`). The kernel steers a source to one socket of the group, so each
    /// worker's own table is the source's whole budget.
    pub per_source_rate: u32,
    pub per_source_burst: u32,
}

impl Default for SyslogSettings {
    fn default() -> Self {
        SyslogSettings {
            bind: Ipv4Addr::UNSPECIFIED,
            port: 514,
            workers: 2,
            per_source_rate: 20,
            per_source_burst: 200,
        }
    }
}

/// What the receiver has seen, summed over workers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SyslogCounters {
    /// Datagrams read from the sockets.
    pub received: u64,
    /// Datagrams that are syslog (each is then stored).
    pub parsed: u64,
    /// Parsed datagrams per [`Format`] (by [`Format::index`]).
    pub by_format: [u64; Format::KINDS],
    /// Datagrams that are not syslog, per [`ParseError::index`] (labels in
    /// [`ParseError::LABELS`]).
    pub malformed: [u64; ParseError::KINDS],
    /// Datagrams longer than [`MAX_DATAGRAM`], stored cut.
    pub truncated: u64,
    /// Events filed in the store.
    pub stored: u64,
    /// Events dropped: their source was over its per-source rate.
    pub rate_limited: u64,
    /// Events stored from an address no live lease holds (filed under the address, marked
    /// `leased: false`).
    pub unleased: u64,
    /// Errors reading a socket.
    pub receive_errors: u64,
}

impl SyslogCounters {
    pub fn malformed_total(&self) -> u64 {
        self.malformed.iter().sum()
    }
}

/// The running receiver: its address, counters, store, and the threads to join.
#[derive(Debug)]
pub struct SyslogHandle {
    local: SocketAddrV4,
    shared: Arc<worker::Shared>,
    store: Arc<Store>,
    workers: WorkerSet,
    shutdown: Arc<AtomicBool>,
}

impl SyslogHandle {
    /// The listen address, with the port actually bound.
    pub fn local_addr(&self) -> SocketAddrV4 {
        self.local
    }

    /// Where the events go: what `provd syslog events MAC|IP` reads.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    pub fn counters(&self) -> SyslogCounters {
        let s = &self.shared;
        // First, with Acquire: pairs with the workers' publishing order.
        let received = s.received.load(Ordering::Acquire);
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        SyslogCounters {
            received,
            parsed: get(&s.parsed),
            by_format: std::array::from_fn(|i| get(&s.by_format[i])),
            malformed: std::array::from_fn(|i| get(&s.malformed[i])),
            truncated: get(&s.truncated),
            stored: get(&s.stored),
            rate_limited: get(&s.rate_limited),
            unleased: get(&s.unleased),
            receive_errors: get(&s.receive_errors),
        }
    }

    /// Sets the shutdown flag the receiver was spawned with.
    pub fn shutdown(&self) {
        self.shutdown.store(true, Ordering::Relaxed);
    }

    /// Waits for every worker to stop (after the shutdown flag is set); the first error wins.
    pub fn join(self) -> io::Result<()> {
        self.workers.join()
    }
}

/// Binds every socket, then starts the workers; a port in use comes back here, before any
/// thread runs. `device_of` is called on the worker threads for every datagram: it must be a
/// quick lookup.
pub fn spawn(
    settings: SyslogSettings,
    store: Arc<Store>,
    device_of: Arc<dyn DeviceOf>,
    shutdown: Arc<AtomicBool>,
) -> io::Result<SyslogHandle> {
    if settings.workers == 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the syslog receiver needs at least one worker",
        ));
    }
    let mut port = settings.port;
    let mut sockets = Vec::with_capacity(settings.workers);
    for _ in 0..settings.workers {
        let s = UdpSocket::bind(
            SocketAddrV4::new(settings.bind, port),
            &Options {
                reuse_port: true,
                // The source address is all a syslog line needs.
                pktinfo: false,
                send_buffer: 0,
                read_timeout: Some(worker::READ_TIMEOUT),
                ..Options::default()
            },
        )?;
        if port == 0 {
            // The first socket picked the port; the others join its reuseport group.
            port = s.local_addr()?.port();
        }
        sockets.push(s);
    }
    let local = SocketAddrV4::new(settings.bind, port);
    let shared = Arc::new(worker::Shared::default());
    let mut workers = WorkerSet::new("syslog");
    for (index, socket) in sockets.into_iter().enumerate() {
        let w = worker::Worker {
            index,
            socket,
            store: Arc::clone(&store),
            device_of: Arc::clone(&device_of),
            shared: Arc::clone(&shared),
            limit: provd_udp::SourceLimit::new(
                settings.per_source_rate,
                settings.per_source_burst,
                worker::MAX_SOURCES,
            ),
        };
        let flag = Arc::clone(&shutdown);
        if let Err(e) = workers.spawn(format!("provd-syslog-{index}"), move || w.run(&flag)) {
            // Stop the workers already running before reporting.
            shutdown.store(true, Ordering::Relaxed);
            let _ = workers.join();
            return Err(e);
        }
    }
    tracing::info!(addr = %local, workers = settings.workers, "syslog receiver listening");
    Ok(SyslogHandle {
        local,
        shared,
        store,
        workers,
        shutdown,
    })
}
