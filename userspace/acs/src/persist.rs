//! The ACS's durable state: one JSON line per device with its identity, what it last reported
//! (software version, connection-request addresses, counts and times), its queued tasks (each
//! as the CWMP envelope that will be sent, so any RPC survives without a second schema) and its
//! campaign marks. Written to `devices.jsonl.tmp`, fsynced and renamed over `devices.jsonl`, so
//! a crash leaves the previous snapshot whole. Campaign tallies are recomputed from the marks on
//! load. Not kept: parameter caches (re-read from devices), the event history, and finished
//! task records.

use std::io::{BufRead, BufWriter, Write};
use std::path::Path;

use provd_cwmp::{Envelope, Limits, Rpc, Version};
use serde::{Deserialize, Serialize};

use crate::acs::Acs;
use crate::store::{CampaignMark, Device, Origin};

#[derive(Serialize, Deserialize)]
struct Line {
    oui: String,
    pc: String,
    serial: String,
    #[serde(default)]
    manufacturer: String,
    #[serde(default)]
    sw: String,
    #[serde(default)]
    first_seen: u32,
    #[serde(default)]
    last_inform: u32,
    #[serde(default)]
    informs: u32,
    #[serde(default)]
    cwmp: u8,
    #[serde(default)]
    root: u8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cr_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    udp_cr: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    tasks: Vec<TaskLine>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    campaigns: Vec<(String, String)>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    awaiting: Vec<String>,
}

#[derive(Serialize, Deserialize)]
struct TaskLine {
    /// "api", "preset:NAME", "campaign:NAME".
    origin: String,
    envelope: String,
}

/// What a load found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LoadReport {
    pub devices: usize,
    pub tasks: usize,
    pub bad_lines: usize,
}

/// Writes the snapshot into `dir`; returns the number of devices written.
pub fn save(acs: &Acs, dir: &Path) -> std::io::Result<usize> {
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join("devices.jsonl.tmp");
    let f = std::fs::File::create(&tmp)?;
    let mut w = BufWriter::with_capacity(1 << 20, f);
    let names = &acs.store.names;
    let mut n = 0;
    for e in acs.store.devices.iter() {
        let (k, d) = (e.key(), e.value());
        let more = d.more.as_deref();
        let tasks = more
            .map(|m| {
                m.inflight
                    .iter()
                    .chain(&m.queue)
                    .map(|t| TaskLine {
                        origin: match t.origin {
                            Origin::Api => "api".into(),
                            Origin::Preset(i) => format!(
                                "preset:{}",
                                acs.settings.presets.get(i as usize).map_or("", |p| &p.name)
                            ),
                            Origin::Campaign(i) => format!(
                                "campaign:{}",
                                acs.settings
                                    .campaigns
                                    .get(i as usize)
                                    .map_or("", |c| &c.name)
                            ),
                        },
                        envelope: Envelope::new(Version::V1_2, None, t.rpc.clone()).to_xml(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let campaigns = more
            .map(|m| {
                m.campaigns
                    .iter()
                    .filter_map(|(i, mark)| {
                        let c = acs.settings.campaigns.get(*i as usize)?;
                        let s = match mark {
                            CampaignMark::InProgress { since } => format!("in_progress:{since}"),
                            CampaignMark::Succeeded => "succeeded".into(),
                            CampaignMark::Failed { code } => format!("failed:{code}"),
                        };
                        Some((c.name.clone(), s))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let line = Line {
            oui: names.resolve(k.oui).to_string(),
            pc: names.resolve(k.product_class).to_string(),
            serial: k.serial.to_string(),
            manufacturer: names.resolve(d.manufacturer).to_string(),
            sw: names.resolve(d.software_version).to_string(),
            first_seen: d.first_seen,
            last_inform: d.last_inform,
            informs: d.informs,
            cwmp: d.cwmp_version,
            root: d.root,
            cr_url: d.cr_url.as_deref().map(str::to_owned),
            udp_cr: more.and_then(|m| m.udp_cr.as_deref()).map(str::to_owned),
            tasks,
            campaigns,
            awaiting: more
                .map(|m| m.awaiting_transfer.iter().map(|s| s.to_string()).collect())
                .unwrap_or_default(),
        };
        serde_json::to_writer(&mut w, &line)?;
        w.write_all(b"\n")?;
        n += 1;
    }
    let f = w.into_inner().map_err(|e| e.into_error())?;
    f.sync_all()?;
    std::fs::rename(&tmp, dir.join("devices.jsonl"))?;
    Ok(n)
}

/// Loads the snapshot in `dir` (if any) into an empty ACS.
pub fn load(acs: &Acs, dir: &Path) -> std::io::Result<LoadReport> {
    let mut report = LoadReport::default();
    let f = match std::fs::File::open(dir.join("devices.jsonl")) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(report),
        Err(e) => return Err(e),
    };
    let names = &acs.store.names;
    for line in std::io::BufReader::new(f).lines() {
        let line = line?;
        let Ok(l) = serde_json::from_str::<Line>(&line) else {
            report.bad_lines += 1;
            continue;
        };
        let key = acs.store.key(&l.oui, &l.pc, &l.serial);
        let mut d = Device {
            manufacturer: names.intern(&l.manufacturer),
            software_version: names.intern(&l.sw),
            first_seen: l.first_seen,
            last_inform: l.last_inform,
            informs: l.informs,
            cwmp_version: l.cwmp,
            root: l.root,
            cr_url: l.cr_url.map(Into::into),
            ..Device::default()
        };
        if let Some(u) = l.udp_cr {
            d.more().udp_cr = Some(u.into());
        }
        for a in l.awaiting {
            d.more().awaiting_transfer.push(a.into());
        }
        for (name, state) in l.campaigns {
            let Some(idx) = acs.settings.campaigns.iter().position(|c| c.name == name) else {
                continue;
            };
            let mark = match state.split_once(':') {
                Some(("in_progress", s)) => CampaignMark::InProgress {
                    since: s.parse().unwrap_or(0),
                },
                Some(("failed", c)) => CampaignMark::Failed {
                    code: c.parse().unwrap_or(0),
                },
                _ => CampaignMark::Succeeded,
            };
            d.more().set_campaign(idx as u16, mark);
            acs.restore_campaign_mark(idx as u16, mark);
        }
        for t in l.tasks {
            let Ok(env) = Envelope::parse(t.envelope.as_bytes(), &Limits::default()) else {
                report.bad_lines += 1;
                continue;
            };
            if matches!(env.body, Rpc::Fault(_)) {
                continue;
            }
            let origin = match t.origin.split_once(':') {
                Some(("preset", n)) => acs
                    .settings
                    .presets
                    .iter()
                    .position(|p| p.name == n)
                    .map(|i| Origin::Preset(i as u16)),
                Some(("campaign", n)) => acs
                    .settings
                    .campaigns
                    .iter()
                    .position(|c| c.name == n)
                    .map(|i| Origin::Campaign(i as u16)),
                _ => Some(Origin::Api),
            };
            let Some(origin) = origin else { continue };
            acs.restore_task(&key, &mut d, env.body, origin);
            report.tasks += 1;
        }
        acs.store.devices.insert(key, d);
        report.devices += 1;
    }
    Ok(report)
}
