//! provd-files: per-device config files.
//!
//! [`Generator`] renders a device's DOCSIS or PacketCable MTA file from its class's template
//! when a file server is asked for a generated name, from what the DHCP workers published about
//! the device in a [`provd_devices::DeviceView`] (address, relay, option 60), enforcing that
//! only the device's own leased address gets it.

mod generate;
pub mod template;

pub use generate::{
    DEFAULT_CACHE_BYTES, FILE_CONTEXT, GenerateError, GeneratedFile, Generator, Owner, PROBE_MAC,
    Problem, Stage, Trial, TrialError, compile, template_names,
};
pub use template::{TEMPLATE_CHECK, WatchedTemplate};
