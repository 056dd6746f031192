//! provd-files: per-device config files.
//!
//! [`DeviceView`] is what the DHCP workers publish about each bound device (address, relay,
//! option 60), and [`Generator`] renders a device's DOCSIS or PacketCable MTA file from its
//! class's template when a file server is asked for a generated name, enforcing that only the
//! device's own leased address gets it.

mod devices;
mod generate;
pub mod template;

pub use devices::{DeviceFacts, DeviceView};
pub use generate::{DEFAULT_CACHE_BYTES, GenerateError, GeneratedFile, Generator, Owner, compile};
pub use template::{TEMPLATE_CHECK, WatchedTemplate};
