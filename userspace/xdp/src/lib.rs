//! Loads provd's XDP steering program (ebpf/provd-ebpf, embedded by build.rs when the eBPF
//! toolchain was there), attaches it to one interface in driver or generic mode, puts each
//! shard's AF_XDP socket into its socket map, and reads its per-CPU verdict counters.
//!
//! Detaching is dropping: the attachment is a bpf link owned by [`Steering`], so the program
//! leaves the interface when provd exits, however it exits.

use std::os::fd::AsRawFd;

use aya::maps::{Array, PerCpuArray, XskMap};
use aya::programs::{Xdp, XdpMode};
use provd_common::{SteerConfig, VERDICTS, Verdict};

/// The XDP object, 8-byte aligned as the ELF parser wants; empty when not built.
#[cfg(not(provd_no_ebpf))]
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/provd-ebpf.o"));
#[cfg(provd_no_ebpf)]
static OBJECT: &[u8] = &[];

/// Why no XDP object is embedded, when it is not.
pub fn object_missing() -> Option<&'static str> {
    if OBJECT.is_empty() {
        Some(option_env!("PROVD_EBPF_MISSING").unwrap_or("built without the eBPF toolchain"))
    } else {
        None
    }
}

/// How to attach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Driver mode; fails where the driver has no XDP support.
    Native,
    /// Generic (skb) mode: works on any interface, slower.
    Generic,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Native => "native",
            Mode::Generic => "generic",
        }
    }
}

/// What went wrong loading or attaching; each says which step.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("no XDP object in this binary: {0}")]
    NoObject(&'static str),
    #[error("loading the XDP object: {0}")]
    Load(#[from] aya::EbpfError),
    #[error("the object has no {0}")]
    Missing(&'static str),
    #[error("verifying the XDP program: {0}")]
    Verify(aya::programs::ProgramError),
    #[error("attaching XDP to {iface} in {mode} mode: {source}")]
    Attach {
        iface: String,
        mode: &'static str,
        source: aya::programs::ProgramError,
    },
    #[error("XDP map {0}: {1}")]
    Map(&'static str, aya::maps::MapError),
}

/// The program attached to one interface, with its maps.
pub struct Steering {
    config: Array<aya::maps::MapData, SteerConfig>,
    // Field order: maps and the program go before `ebpf` is dropped; dropping `ebpf` detaches.
    xsks: XskMap<aya::maps::MapData>,
    counters: PerCpuArray<aya::maps::MapData, u64>,
    ebpf: aya::Ebpf,
    iface: String,
    mode: Mode,
}

impl std::fmt::Debug for Steering {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Steering")
            .field("iface", &self.iface)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl Steering {
    /// Loads the embedded program, writes `config`, and attaches to `iface` in `mode`.
    pub fn attach(iface: &str, mode: Mode, config: SteerConfig) -> Result<Self, Error> {
        if let Some(why) = object_missing() {
            return Err(Error::NoObject(why));
        }
        let mut ebpf = aya::Ebpf::load(OBJECT)?;
        let mut cfg: Array<_, SteerConfig> = ebpf
            .take_map("CONFIG")
            .ok_or(Error::Missing("CONFIG map"))?
            .try_into()
            .map_err(|e| Error::Map("CONFIG", e))?;
        cfg.set(0, config, 0).map_err(|e| Error::Map("CONFIG", e))?;
        let xsks: XskMap<_> = ebpf
            .take_map("XSKS")
            .ok_or(Error::Missing("XSKS map"))?
            .try_into()
            .map_err(|e| Error::Map("XSKS", e))?;
        let counters: PerCpuArray<_, u64> = ebpf
            .take_map("COUNTERS")
            .ok_or(Error::Missing("COUNTERS map"))?
            .try_into()
            .map_err(|e| Error::Map("COUNTERS", e))?;
        let prog: &mut Xdp = ebpf
            .program_mut("provd_steer")
            .ok_or(Error::Missing("provd_steer program"))?
            .try_into()
            .map_err(Error::Verify)?;
        prog.load().map_err(Error::Verify)?;
        let flags = match mode {
            Mode::Native => XdpMode::Driver,
            Mode::Generic => XdpMode::Skb,
        };
        prog.attach(iface, flags).map_err(|source| Error::Attach {
            iface: iface.to_string(),
            mode: mode.as_str(),
            source,
        })?;
        Ok(Steering {
            config: cfg,
            xsks,
            counters,
            ebpf,
            iface: iface.to_string(),
            mode,
        })
    }

    /// Native first, then generic; returns the first error when both fail.
    pub fn attach_auto(iface: &str, config: SteerConfig) -> Result<Self, Error> {
        match Self::attach(iface, Mode::Native, config) {
            Ok(s) => Ok(s),
            Err(Error::NoObject(w)) => Err(Error::NoObject(w)),
            Err(native) => Self::attach(iface, Mode::Generic, config).map_err(|_| native),
        }
    }

    /// Rewrites the program's settings (e.g. once TFTP knows its transfer ports).
    pub fn set_config(&mut self, config: SteerConfig) -> Result<(), Error> {
        self.config
            .set(0, config, 0)
            .map_err(|e| Error::Map("CONFIG", e))
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    pub fn iface(&self) -> &str {
        &self.iface
    }

    /// Puts shard `shard`'s AF_XDP socket into the socket map: from now on the program
    /// redirects that shard's DHCP frames arriving on the socket's queue to it.
    pub fn register_socket(&mut self, shard: u32, fd: &impl AsRawFd) -> Result<(), Error> {
        self.xsks
            .set(shard, fd.as_raw_fd(), 0)
            .map_err(|e| Error::Map("XSKS", e))
    }

    /// Per-verdict totals over all CPUs, in [`Verdict::ALL`] order.
    pub fn counters(&self) -> Result<[u64; VERDICTS as usize], Error> {
        let mut out = [0u64; VERDICTS as usize];
        for (i, slot) in out.iter_mut().enumerate() {
            let per_cpu = self
                .counters
                .get(&(i as u32), 0)
                .map_err(|e| Error::Map("COUNTERS", e))?;
            *slot = per_cpu.iter().sum();
        }
        Ok(out)
    }

    /// The counters as `name=value` pairs, for logs and the control socket.
    pub fn counters_text(&self) -> String {
        match self.counters() {
            Ok(c) => Verdict::ALL
                .iter()
                .zip(c)
                .map(|(v, n)| format!("{}={n}", v.label()))
                .collect::<Vec<_>>()
                .join(" "),
            Err(e) => format!("error={e}"),
        }
    }

    /// Keeps the loaded object alive (it owns the program and the link).
    pub fn ebpf(&self) -> &aya::Ebpf {
        &self.ebpf
    }
}
