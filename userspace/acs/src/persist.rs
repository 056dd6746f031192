//! The ACS's durable state: one JSON line per device with its identity, what it last reported
//! (software version, connection-request addresses, counts and times), its queued tasks (each
//! as the CWMP envelope that will be sent, so any RPC survives without a second schema) and its
//! campaign marks. Written to `devices.jsonl.tmp`, fsynced and renamed over `devices.jsonl`, so
//! a crash leaves the previous snapshot whole. Campaign tallies are recomputed from the marks on
//! load. Not kept: parameter caches (re-read from devices), the event history, and finished
//! task records.
//!
//! Between snapshots the API's tasks live in the task journal ([`crate::journal`]): a snapshot
//! rotates it first and drops the rotated file once it is in place; a load replays what the
//! journals hold over the snapshot, then opens the journal for the ACS.

use std::io::{BufRead, BufWriter, Write};
use std::path::Path;

use provd_cwmp::{Envelope, Limits, Rpc, Version};
use serde::{Deserialize, Serialize};

use crate::acs::Acs;
use crate::journal::{self, Journal};
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
    /// Its sequence number in the task journal (absent: not journaled).
    #[serde(default, skip_serializing_if = "is_zero")]
    seq: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// What a load found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LoadReport {
    pub devices: usize,
    pub tasks: usize,
    /// Of `tasks`, those only the journal held (queued since the last snapshot).
    pub journal_tasks: usize,
    pub bad_lines: usize,
}

/// Writes the snapshot into `dir`; returns the number of devices written.
pub fn save(acs: &Acs, dir: &Path) -> std::io::Result<usize> {
    let _one_at_a_time = acs.snapshot_lock.lock().unwrap_or_else(|p| p.into_inner());
    std::fs::create_dir_all(dir)?;
    if let Some(j) = acs.journal() {
        // No API task between its journal line and its queue while the journal turns over.
        let _no_task_half_queued = acs.queue_gate.write().unwrap_or_else(|p| p.into_inner());
        j.rotate()?;
    }
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
                        seq: t.seq,
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
    // The rename is durable once the directory is: only then may the rotated journal go.
    std::fs::File::open(dir)?.sync_all()?;
    if let Some(j) = acs.journal() {
        j.rotated_away()?;
    }
    Ok(n)
}

/// Loads the snapshot in `dir` (if any) into an empty ACS, replays the task journal over it,
/// and from then on journals the ACS's API tasks there.
pub fn load(acs: &Acs, dir: &Path) -> std::io::Result<LoadReport> {
    let replay = journal::replay(dir)?;
    let mut report = load_snapshot(acs, dir, &replay.done)?;
    report.bad_lines += replay.bad_lines;
    let restored: std::collections::HashSet<u64> = acs
        .store
        .devices
        .iter()
        .filter_map(|e| {
            e.value()
                .more
                .as_ref()
                .map(|m| m.queue.iter().map(|t| t.seq).collect::<Vec<_>>())
        })
        .flatten()
        .collect();
    for (seq, [oui, pc, serial], envelope) in replay.queued {
        if restored.contains(&seq) {
            continue;
        }
        let Some(rpc) = parse_task(&envelope) else {
            report.bad_lines += 1;
            continue;
        };
        // A device first seen after the snapshot has no record in it: its task keeps a bare
        // one, which its next Inform fills in.
        let key = acs.store.key(&oui, &pc, &serial);
        let mut d = acs.store.devices.entry(key.clone()).or_default();
        acs.restore_task(&key, &mut d, rpc, Origin::Api, seq);
        report.tasks += 1;
        report.journal_tasks += 1;
    }
    acs.set_journal(Journal::open(dir, replay.next_seq)?);
    Ok(report)
}

/// The request an envelope carries (`None`: unreadable, or a fault).
fn parse_task(envelope: &str) -> Option<Rpc> {
    let env = Envelope::parse(envelope.as_bytes(), &Limits::default()).ok()?;
    (!matches!(env.body, Rpc::Fault(_))).then_some(env.body)
}

fn load_snapshot(
    acs: &Acs,
    dir: &Path,
    done: &std::collections::HashSet<u64>,
) -> std::io::Result<LoadReport> {
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
            if t.seq != 0 && done.contains(&t.seq) {
                // Finished after this snapshot was written.
                continue;
            }
            let Some(rpc) = parse_task(&t.envelope) else {
                report.bad_lines += 1;
                continue;
            };
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
            acs.restore_task(&key, &mut d, rpc, origin, t.seq);
            report.tasks += 1;
        }
        acs.store.devices.insert(key, d);
        report.devices += 1;
    }
    Ok(report)
}
