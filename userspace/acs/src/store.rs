//! Device records, built for millions of devices.
//!
//! A device is keyed by its CWMP DeviceId (OUI, ProductClass, SerialNumber) in a sharded map
//! (`DashMap`). What every device has is kept small and fixed ([`Device`]: interned strings,
//! 32-bit timestamps); what only some devices need — the parameter cache, the event history,
//! queued tasks, campaign marks — lives behind one optional box ([`More`]), allocated on the
//! first Inform. The parameter cache is a sorted vector (no hash buckets), names interned.

use std::collections::VecDeque;
use std::sync::Arc;

use dashmap::DashMap;
use provd_cwmp::Rpc;

use crate::intern::{Interner, Sym};

/// A device's identity.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DeviceKey {
    pub oui: Sym,
    pub product_class: Sym,
    pub serial: Box<str>,
}

/// One cached parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    pub value: Box<str>,
    /// Unix seconds of the last time the value was seen (Inform, GPV) or set.
    pub updated: u32,
    /// xsd type name, interned.
    pub ty: Sym,
    /// [`Param::WRITABLE`] etc.
    pub flags: u8,
    /// 0 off, 1 passive, 2 active; 255 unknown.
    pub notification: u8,
}

impl Param {
    pub const WRITABLE: u8 = 1;
    pub const WRITABILITY_KNOWN: u8 = 2;
    pub const VALUE_KNOWN: u8 = 4;
}

/// One entry of the event history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRecord {
    pub at: u32,
    pub code: Sym,
    /// The command key, or for ACS-recorded events (value change, alarm, transfer) a detail.
    pub detail: Box<str>,
}

/// Where a queued task came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Api,
    Preset(u16),
    Campaign(u16),
}

/// A request queued for a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    pub id: u64,
    pub rpc: Rpc,
    pub origin: Origin,
    pub attempts: u8,
    /// Its sequence number in the task journal (0: not journaled; presets and campaigns
    /// queue theirs again from the config).
    pub seq: u64,
}

/// A device's part in a firmware campaign.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CampaignMark {
    InProgress { since: u32 },
    Succeeded,
    Failed { code: u32 },
}

/// What only some devices need.
#[derive(Debug, Default, Clone)]
pub struct More {
    /// Sorted by name.
    pub params: Vec<(Sym, Param)>,
    pub events: VecDeque<EventRecord>,
    pub queue: VecDeque<Task>,
    pub inflight: Option<Task>,
    /// `host:port` for UDP connection requests, from the Inform.
    pub udp_cr: Option<Box<str>>,
    pub campaigns: Vec<(u16, CampaignMark)>,
    /// Command keys of Downloads whose TransferComplete is still due.
    pub awaiting_transfer: Vec<Box<str>>,
    pub last_connection_request: u32,
}

impl More {
    pub fn param(&self, name: Sym) -> Option<&Param> {
        self.params
            .binary_search_by_key(&name, |(n, _)| *n)
            .ok()
            .map(|i| &self.params[i].1)
    }

    pub fn param_mut(&mut self, name: Sym) -> &mut Param {
        let i = match self.params.binary_search_by_key(&name, |(n, _)| *n) {
            Ok(i) => i,
            Err(i) => {
                self.params.insert(
                    i,
                    (
                        name,
                        Param {
                            value: "".into(),
                            updated: 0,
                            ty: Sym(0),
                            flags: 0,
                            notification: 255,
                        },
                    ),
                );
                i
            }
        };
        &mut self.params[i].1
    }

    pub fn push_event(&mut self, max: usize, e: EventRecord) {
        if max == 0 {
            return;
        }
        while self.events.len() >= max {
            self.events.pop_front();
        }
        self.events.push_back(e);
    }

    pub fn campaign(&self, idx: u16) -> Option<CampaignMark> {
        self.campaigns
            .iter()
            .find(|(i, _)| *i == idx)
            .map(|(_, m)| *m)
    }

    pub fn set_campaign(&mut self, idx: u16, mark: CampaignMark) {
        match self.campaigns.iter_mut().find(|(i, _)| *i == idx) {
            Some(e) => e.1 = mark,
            None => self.campaigns.push((idx, mark)),
        }
    }

    pub fn has_task(&self, origin: Origin) -> bool {
        self.inflight
            .iter()
            .chain(&self.queue)
            .any(|t| t.origin == origin)
    }
}

/// One device.
#[derive(Debug, Default, Clone)]
pub struct Device {
    pub manufacturer: Sym,
    pub software_version: Sym,
    pub first_seen: u32,
    /// 0: never informed (created by the task API or a seed).
    pub last_inform: u32,
    pub informs: u32,
    /// CWMP namespace minor version of the last Inform.
    pub cwmp_version: u8,
    /// 1: `Device.`, 2: `InternetGatewayDevice.`, 0: not known yet.
    pub root: u8,
    /// The local port and path of the last Inform (which ACS URL the device uses).
    pub last_port: u16,
    pub last_path: Sym,
    pub cr_url: Option<Box<str>>,
    pub more: Option<Box<More>>,
}

impl Device {
    pub fn more(&mut self) -> &mut More {
        self.more.get_or_insert_with(Box::default)
    }

    pub fn root_prefix(&self) -> &'static str {
        match self.root {
            2 => "InternetGatewayDevice.",
            _ => "Device.",
        }
    }
}

/// All devices, plus the interner their strings live in.
#[derive(Debug, Default)]
pub struct Store {
    pub devices: DashMap<DeviceKey, Device, foldhash::fast::RandomState>,
    pub names: Arc<Interner>,
}

impl Store {
    pub fn key(&self, oui: &str, product_class: &str, serial: &str) -> DeviceKey {
        DeviceKey {
            oui: self.names.intern(oui),
            product_class: self.names.intern(product_class),
            serial: serial.into(),
        }
    }

    /// The key of a known OUI/product class without interning new strings.
    pub fn find_key(&self, oui: &str, product_class: &str, serial: &str) -> Option<DeviceKey> {
        Some(DeviceKey {
            oui: self.names.get(oui)?,
            product_class: self.names.get(product_class)?,
            serial: serial.into(),
        })
    }

    /// `OUI-ProductClass-Serial`, the device's name in the task API.
    pub fn display(&self, k: &DeviceKey) -> String {
        format!(
            "{}-{}-{}",
            self.names.resolve(k.oui),
            self.names.resolve(k.product_class),
            k.serial
        )
    }

    /// The DeviceId's parts: OUI, product class, serial number.
    pub fn id_parts(&self, k: &DeviceKey) -> [String; 3] {
        [
            self.names.resolve(k.oui).to_string(),
            self.names.resolve(k.product_class).to_string(),
            k.serial.to_string(),
        ]
    }

    /// Parses `OUI-ProductClass-Serial`. The OUI is six characters; the product class may
    /// itself contain '-', so the serial is what follows the last '-'.
    pub fn parse_display(&self, s: &str) -> Option<DeviceKey> {
        let (oui, rest) = s.split_once('-')?;
        let (pc, serial) = rest.rsplit_once('-')?;
        self.find_key(oui, pc, serial)
    }

    pub fn len(&self) -> usize {
        self.devices.len()
    }

    pub fn is_empty(&self) -> bool {
        self.devices.is_empty()
    }
}
