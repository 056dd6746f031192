//! Choosing the DHCP I/O path at start-up: `server.io = "auto"` tries XDP + AF_XDP, then
//! io_uring, then std sockets, and says which it took and why the faster ones were passed over;
//! a forced path that cannot start refuses the start with its reason.

use std::ffi::CString;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};

use crate::{BindMode, SocketIo, WorkerIo, WorkerSettings, XdpIface, XdpIo, Xsk, open_sockets};
use anyhow::{Context, Result, anyhow, bail};
use provd_common::SteerConfig;
use provd_config::{IoPath, Policy, XdpMode};
use provd_xdp::{Mode, Steering};

/// What start-up settled on.
pub struct Chosen {
    pub path: IoPath,
    /// Why this path (and why not the faster ones).
    pub why: String,
    pub ios: Vec<WorkerIo>,
    /// The attached XDP program, when the path is XDP; dropping it detaches.
    pub steering: Option<Arc<Mutex<Steering>>>,
}

/// Picks and opens the path for `shards` workers.
pub fn choose(policy: &Policy, settings: &WorkerSettings, shards: u32) -> Result<Chosen> {
    let wanted = policy.server.io;
    let mut passed_over = Vec::new();
    if matches!(wanted, IoPath::Auto | IoPath::Xdp) {
        match open_xdp(policy, settings, shards) {
            Ok(c) => return Ok(c),
            Err(e) if wanted == IoPath::Xdp => {
                return Err(e.context("server.io = \"xdp\" but XDP cannot start"));
            }
            Err(e) => passed_over.push(format!("xdp: {e:#}")),
        }
    }
    if matches!(wanted, IoPath::Auto | IoPath::IoUring) {
        match open_uring(settings, shards) {
            Ok(ios) => {
                passed_over.push("io_uring: multishot recvmsg with a provided buffer ring".into());
                return Ok(Chosen {
                    path: IoPath::IoUring,
                    why: passed_over.join("; "),
                    ios,
                    steering: None,
                });
            }
            Err(e) if wanted == IoPath::IoUring => {
                return Err(e.context("server.io = \"io_uring\" but io_uring cannot start"));
            }
            Err(e) => passed_over.push(format!("io_uring: {e:#}")),
        }
    }
    let why = if wanted == IoPath::Sockets {
        "server.io = \"sockets\"".to_string()
    } else {
        passed_over.join("; ")
    };
    let ios = open_sockets(settings, shards)
        .with_context(|| format!("binding UDP {}:{}", settings.bind, settings.port))?
        .into_iter()
        .map(|s| WorkerIo::Sockets(SocketIo::new(s)))
        .collect();
    Ok(Chosen {
        path: IoPath::Sockets,
        why,
        ios,
        steering: None,
    })
}

fn open_uring(settings: &WorkerSettings, shards: u32) -> Result<Vec<WorkerIo>> {
    crate::open_uring(settings, shards).map_err(|e| anyhow!(e))
}

fn open_xdp(policy: &Policy, settings: &WorkerSettings, shards: u32) -> Result<Chosen> {
    if let Some(why) = provd_xdp::object_missing() {
        bail!("no XDP object in this binary ({why})");
    }
    let iface = match &policy.server.xdp_interface {
        Some(i) => i.clone(),
        None if !settings.bind.is_unspecified() => interface_of(settings.bind)?
            .ok_or_else(|| anyhow!("no interface holds server.bind {}", settings.bind))?,
        None => bail!("server.bind is 0.0.0.0 and server.xdp_interface is not set"),
    };
    let cname = CString::new(iface.clone()).context("interface name")?;
    // SAFETY: a NUL-terminated name; if_nametoindex only reads it.
    let ifindex = unsafe { libc::if_nametoindex(cname.as_ptr()) };
    if ifindex == 0 {
        bail!("no interface {iface}");
    }
    let mac = read_mac(&iface)?;
    let addr = if settings.bind.is_unspecified() {
        first_addr(&iface)?.ok_or_else(|| anyhow!("{iface} has no IPv4 address"))?
    } else {
        settings.bind
    };
    let queues = rx_queues(&iface);
    let tftp = policy.tftp.as_ref();
    let config = SteerConfig {
        shards,
        dhcp_port: settings.port,
        tftp_transfer_lo: 0,
        tftp_transfer_hi: 0,
        tftp_port: tftp.map_or(0, |t| t.port),
    };
    let mut steering = match policy.server.xdp_mode {
        XdpMode::Auto => Steering::attach_auto(&iface, config),
        XdpMode::Native => Steering::attach(&iface, Mode::Native, config),
        XdpMode::Generic => Steering::attach(&iface, Mode::Generic, config),
    }?;
    let sockets = open_sockets(settings, shards)
        .with_context(|| format!("binding UDP {}:{}", settings.bind, settings.port))?;
    let info = XdpIface { ifindex, mac, addr };
    let mut ios = Vec::new();
    let mut bound = Vec::new();
    for (i, sock) in sockets.into_iter().enumerate() {
        let i = i as u32;
        // One AF_XDP socket per receive queue: shard i owns queue i when the interface has it.
        if i >= queues {
            // No queue for this shard's AF_XDP socket: the program passes its DHCP to the
            // kernel, and the plain socket path serves it with no poll on rings it lacks.
            ios.push(WorkerIo::Sockets(SocketIo::new(sock)));
            continue;
        }
        let x = Xsk::open(ifindex, i, true)
            .with_context(|| format!("AF_XDP socket on {iface} queue {i}"))?;
        steering.register_socket(i, &x)?;
        bound.push(match x.mode() {
            BindMode::ZeroCopy => "zero-copy",
            BindMode::Copy => "copy",
        });
        ios.push(WorkerIo::Xdp(Box::new(XdpIo::new(Some(x), sock, info)?)));
    }
    let why = format!(
        "XDP {} on {iface} ({} rx queue(s)), AF_XDP {} mode on {} of {shards} shard(s); DHCP of shards without a socket on the arriving queue goes through their reuseport socket",
        steering.mode().as_str(),
        queues,
        bound.first().copied().unwrap_or("no socket"),
        bound.len(),
    );
    Ok(Chosen {
        path: IoPath::Xdp,
        why,
        ios,
        steering: Some(Arc::new(Mutex::new(steering))),
    })
}

/// Tells the XDP program TFTP's transfer ports once TFTP has bound them.
pub fn set_tftp_ports(steering: &Mutex<Steering>, base: SteerConfig, ports: &[u16]) {
    let (Some(lo), Some(hi)) = (ports.iter().min(), ports.iter().max()) else {
        return;
    };
    let cfg = SteerConfig {
        tftp_transfer_lo: *lo,
        tftp_transfer_hi: *hi,
        ..base
    };
    if let Ok(mut s) = steering.lock()
        && let Err(e) = s.set_config(cfg)
    {
        tracing::warn!(error = %e, "could not tell XDP the TFTP transfer ports");
    }
}

fn read_mac(iface: &str) -> Result<[u8; 6]> {
    let text = std::fs::read_to_string(format!("/sys/class/net/{iface}/address"))
        .with_context(|| format!("reading {iface}'s MAC"))?;
    let mut mac = [0u8; 6];
    let parts: Vec<&str> = text.trim().split(':').collect();
    if parts.len() != 6 {
        bail!("{iface} has no Ethernet address ({})", text.trim());
    }
    for (b, p) in mac.iter_mut().zip(parts) {
        *b = u8::from_str_radix(p, 16).with_context(|| format!("{iface}'s MAC {}", text.trim()))?;
    }
    Ok(mac)
}

fn rx_queues(iface: &str) -> u32 {
    std::fs::read_dir(format!("/sys/class/net/{iface}/queues"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().starts_with("rx-"))
                .count() as u32
        })
        .unwrap_or(1)
        .max(1)
}

/// (interface name, IPv4 address) of every address on the host.
fn addresses() -> Result<Vec<(String, Ipv4Addr)>> {
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `head` with a list we free below.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    let mut out = Vec::new();
    let mut p = head;
    while !p.is_null() {
        // SAFETY: `p` walks the list getifaddrs returned, valid until freeifaddrs.
        let ifa = unsafe { &*p };
        if !ifa.ifa_addr.is_null()
            // SAFETY: ifa_addr is non-null and points to a sockaddr.
            && i32::from(unsafe { (*ifa.ifa_addr).sa_family }) == libc::AF_INET
        {
            // SAFETY: family AF_INET means a sockaddr_in; the name is a C string.
            let (sin, name) = unsafe {
                (
                    &*(ifa.ifa_addr as *const libc::sockaddr_in),
                    std::ffi::CStr::from_ptr(ifa.ifa_name),
                )
            };
            out.push((
                name.to_string_lossy().into_owned(),
                Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)),
            ));
        }
        p = ifa.ifa_next;
    }
    // SAFETY: the list from getifaddrs above, not used after.
    unsafe { libc::freeifaddrs(head) };
    Ok(out)
}

fn interface_of(addr: Ipv4Addr) -> Result<Option<String>> {
    Ok(addresses()?
        .into_iter()
        .find(|(_, a)| *a == addr)
        .map(|(n, _)| n))
}

fn first_addr(iface: &str) -> Result<Option<Ipv4Addr>> {
    Ok(addresses()?
        .into_iter()
        .find(|(n, _)| n == iface)
        .map(|(_, a)| a))
}
