//! "Why is this device not online?": the device page's verdict, step by step, from what the
//! API knows (the record, the live lease, the timeline, the file it would be served now, the
//! MTA's flow record). A pure function of those, so every rule is tested here.

use serde::Serialize;
use serde_json::Value;

/// One step of the device's provisioning, as the page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Step {
    pub(crate) name: &'static str,
    /// `ok`, `warn`, `fail`, or `na` (not a step for this device type).
    pub(crate) state: &'static str,
    pub(crate) text: String,
}

/// The verdict: the steps, and the one-line answer (the first failing step's text).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Diagnosis {
    pub(crate) online: bool,
    pub(crate) summary: String,
    pub(crate) steps: Vec<Step>,
}

/// What the page gathered.
#[derive(Debug, Default)]
pub(crate) struct Facts<'a> {
    /// The store's record (`None`: not in the store).
    pub(crate) device: Option<&'a Value>,
    /// The live lease, if any.
    pub(crate) lease: Option<&'a Value>,
    /// Timeline events, any order.
    pub(crate) events: &'a [Value],
    /// The file it would get now: the preview, or why there is none.
    pub(crate) file: Option<Result<&'a Value, String>>,
    /// The MTA flow record (MTAs).
    pub(crate) mta: Option<&'a Value>,
    pub(crate) now_ms: i64,
}

fn at(e: &Value) -> i64 {
    e["at"].as_i64().unwrap_or(0)
}

/// The newest event of `source` whose kind is one of `kinds` (any kind when empty).
fn newest<'a>(events: &'a [Value], source: &str, kinds: &[&str]) -> Option<&'a Value> {
    events
        .iter()
        .filter(|e| e["source"] == source)
        .filter(|e| kinds.is_empty() || kinds.iter().any(|k| e["kind"] == *k))
        .max_by_key(|e| at(e))
}

fn ago(ms: i64, now: i64) -> String {
    format!(
        "{} ({})",
        crate::time::relative(ms, now),
        crate::time::absolute(ms)
    )
}

pub(crate) fn diagnose(f: &Facts<'_>) -> Diagnosis {
    let kind = f.device.and_then(|d| d["type"].as_str()).unwrap_or("other");
    let wants_file = matches!(kind, "cm" | "mta");
    let mut steps = Vec::new();

    steps.push(match f.device {
        Some(d) => Step {
            name: "record",
            state: "ok",
            text: format!(
                "in the store as {kind}, class of service {}, subscriber {}",
                d["class_of_service"].as_str().unwrap_or("(none)"),
                d["subscriber"].as_str().unwrap_or("(none)")
            ),
        },
        None => Step {
            name: "record",
            state: "warn",
            text: "not in the store: provd serves it as an unknown client of its DHCP class \
                   (no subscriber, no class of service)"
                .into(),
        },
    });

    let bound_at = newest(f.events, "dhcp", &["ack", "renew"]).map(at);
    steps.push(match (f.lease, newest(f.events, "dhcp", &[])) {
        (Some(l), _) => Step {
            name: "dhcp",
            state: "ok",
            text: format!(
                "bound to {} via {}, lease ends {}",
                l["address"].as_str().unwrap_or("?"),
                l["relay"].as_str().unwrap_or("no relay (direct)"),
                l["expires_at"]
                    .as_i64()
                    .map_or_else(|| "?".into(), |t| ago(crate::time::to_ms(t), f.now_ms))
            ),
        },
        (None, Some(e)) => Step {
            name: "dhcp",
            state: "fail",
            text: format!(
                "no lease now: its last DHCP event was {} {}",
                e["kind"].as_str().unwrap_or("?"),
                ago(at(e), f.now_ms)
            ),
        },
        (None, None) => Step {
            name: "dhcp",
            state: "fail",
            text: "never bound by this server: no DHCP request from it reached provd (check \
                   the CMTS's helper address / relay, and its DHCP class)"
                .into(),
        },
    });

    if wants_file {
        match &f.file {
            Some(Err(why)) => steps.push(Step {
                name: "config file",
                state: "fail",
                text: format!("its config file cannot be generated now: {why}"),
            }),
            Some(Ok(p)) => {
                let served = newest(f.events, "tftp", &["file-served"]);
                if let (Some(s), Some(now)) = (
                    served.and_then(|e| e["detail"]["sha256"].as_str()),
                    p["sha256"].as_str(),
                ) && s != now
                {
                    steps.push(Step {
                        name: "config file",
                        state: "warn",
                        text: "changed since it was last served (tier, class or template): it \
                               runs the old one until its next fetch (a reset makes that now)"
                            .into(),
                    });
                }
                let bad: Vec<String> = p["verdicts"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|v| v["ok"] == false)
                    .map(|v| v["check"].as_str().unwrap_or("?").to_owned())
                    .collect();
                if !bad.is_empty() {
                    steps.push(Step {
                        name: "config file",
                        state: "fail",
                        text: format!(
                            "its config file fails its integrity check ({}): the device will \
                             reject it",
                            bad.join(", ")
                        ),
                    });
                }
            }
            None => {}
        }
        let served = newest(f.events, "tftp", &["file-served"]);
        let step = match (served, bound_at) {
            (Some(s), Some(b)) if at(s) >= b => Step {
                name: "tftp",
                state: "ok",
                text: format!(
                    "fetched {} ({} bytes) {}",
                    s["detail"]["file"].as_str().unwrap_or("?"),
                    s["detail"]["bytes"],
                    ago(at(s), f.now_ms)
                ),
            },
            (Some(s), Some(_)) => Step {
                name: "tftp",
                state: "fail",
                text: format!(
                    "bound again but has not fetched its config file since (last fetch {}): \
                     check TFTP reachability from its address and TFTP enforce",
                    ago(at(s), f.now_ms)
                ),
            },
            (Some(s), None) => Step {
                name: "tftp",
                state: "warn",
                text: format!("fetched its file {}", ago(at(s), f.now_ms)),
            },
            (None, Some(_)) => Step {
                name: "tftp",
                state: "fail",
                text: "bound, but never fetched its config file over TFTP: check the file name \
                       (option 67 / siaddr) it was given and TFTP reachability"
                    .into(),
            },
            (None, None) => Step {
                name: "tftp",
                state: "fail",
                text: "no config file fetched".into(),
            },
        };
        steps.push(step);
    }

    if kind == "cm" {
        steps.push(match newest(f.events, "time", &[]) {
            Some(e) => Step {
                name: "time",
                state: "ok",
                text: format!("asked the time {}", ago(at(e), f.now_ms)),
            },
            None => Step {
                name: "time",
                state: "warn",
                text: "never asked provd the time (RFC 868): a DOCSIS CM goes on without it, but \
                       logs with the wrong clock"
                    .into(),
            },
        });
    }

    if kind == "mta" {
        // The record's state: {"name": "complete", "prov_state": "pass"}, or a failure with
        // its step and reason.
        let st = f.mta.map(|m| &m["state"]);
        let name = st.and_then(|s| s["name"].as_str()).unwrap_or("");
        let done = name == "complete" && st.is_some_and(|s| s["prov_state"] == "pass");
        let state = st.map_or_else(String::new, |s| {
            [&s["name"], &s["prov_state"], &s["step"], &s["reason"]]
                .iter()
                .filter_map(|v| v.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        });
        steps.push(match f.mta {
            None => Step {
                name: "mta flow",
                state: "fail",
                text: "no enrollment: the MTA never sent its SNMP INFORM to provd (check option \
                       122's provisioning server and the SNMP community)"
                    .into(),
            },
            Some(_) if done => Step {
                name: "mta flow",
                state: "ok",
                text: format!("flow finished: {state}"),
            },
            Some(_) => Step {
                name: "mta flow",
                state: "fail",
                text: format!(
                    "flow not finished (state {})",
                    if state.is_empty() { "unknown" } else { &state }
                ),
            },
        });
    }

    if matches!(kind, "erouter" | "cpe") {
        steps.push(match newest(f.events, "cwmp", &[]) {
            Some(e) => Step {
                name: "cwmp",
                state: "ok",
                text: format!("last CWMP session {}", ago(at(e), f.now_ms)),
            },
            None => Step {
                name: "cwmp",
                state: "fail",
                text: "never opened a CWMP session with the ACS (check its ACS URL, option 43 \
                       or its TR-069 settings, and the ACS credentials)"
                    .into(),
            },
        });
    }

    if kind == "phone" {
        steps.push(match newest(f.events, "http", &[]) {
            Some(e) => Step {
                name: "profile",
                state: "ok",
                text: format!(
                    "fetched profile version {} {}",
                    e["detail"]["version"],
                    ago(at(e), f.now_ms)
                ),
            },
            None => Step {
                name: "profile",
                state: "fail",
                text: "never fetched its profile over HTTP(S) (check its profile rule, option \
                       66/160)"
                    .into(),
            },
        });
    }

    let failing = steps.iter().find(|s| s.state == "fail");
    Diagnosis {
        online: failing.is_none(),
        summary: failing.map_or_else(
            || "online: every step it needs has been done".to_owned(),
            |s| format!("not online — {}: {}", s.name, s.text),
        ),
        steps,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ev(source: &str, kind: &str, at: i64) -> Value {
        json!({"source": source, "kind": kind, "at": at, "detail": {"file": "cm.cfg", "bytes": 300}})
    }

    #[test]
    fn a_cm_that_bound_but_never_fetched_its_file_is_told_so() {
        let dev = json!({"type": "cm", "class_of_service": "gold"});
        let lease =
            json!({"address": "198.18.2.100", "relay": "198.18.2.1", "expires_at": 2_000_000_000});
        let preview = json!({"verdicts": [{"check": "cm_mic", "ok": true}]});
        let events = [ev("dhcp", "ack", 1000)];
        let d = diagnose(&Facts {
            device: Some(&dev),
            lease: Some(&lease),
            events: &events,
            file: Some(Ok(&preview)),
            mta: None,
            now_ms: 5000,
        });
        assert!(!d.online);
        assert!(
            d.summary.contains("tftp") && d.summary.contains("never fetched"),
            "{d:?}"
        );

        // Then it fetched it, and asked the time: online.
        let events = [
            ev("dhcp", "ack", 1000),
            ev("tftp", "file-served", 2000),
            ev("time", "time-served", 2100),
        ];
        let d = diagnose(&Facts {
            device: Some(&dev),
            lease: Some(&lease),
            events: &events,
            file: Some(Ok(&preview)),
            mta: None,
            now_ms: 5000,
        });
        assert!(d.online, "{d:?}");

        // A fetch from before the last bind does not count.
        let events = [ev("tftp", "file-served", 500), ev("dhcp", "ack", 1000)];
        let d = diagnose(&Facts {
            device: Some(&dev),
            lease: Some(&lease),
            events: &events,
            file: Some(Ok(&preview)),
            mta: None,
            now_ms: 5000,
        });
        assert!(
            d.summary.contains("has not fetched its config file since"),
            "{d:?}"
        );
    }

    #[test]
    fn a_file_changed_since_it_was_served_is_a_warning_not_a_failure() {
        let dev = json!({"type": "cm"});
        let lease = json!({"address": "198.18.2.100"});
        let mut served = ev("tftp", "file-served", 2000);
        served["detail"]["sha256"] = json!("aa");
        let events = [
            ev("dhcp", "ack", 1000),
            served,
            ev("time", "time-served", 2100),
        ];
        let now = |sha: &str| json!({"verdicts": [], "sha256": sha});
        let same = now("aa");
        let d = diagnose(&Facts {
            device: Some(&dev),
            lease: Some(&lease),
            events: &events,
            file: Some(Ok(&same)),
            mta: None,
            now_ms: 5000,
        });
        assert!(d.steps.iter().all(|s| s.state == "ok"), "{d:?}");
        let changed = now("bb");
        let d = diagnose(&Facts {
            device: Some(&dev),
            lease: Some(&lease),
            events: &events,
            file: Some(Ok(&changed)),
            mta: None,
            now_ms: 5000,
        });
        assert!(d.online, "{d:?}");
        assert!(
            d.steps
                .iter()
                .any(|s| s.state == "warn" && s.text.contains("changed since")),
            "{d:?}"
        );
    }

    #[test]
    fn no_lease_a_bad_mic_and_an_ungeneratable_file_each_fail_first() {
        let dev = json!({"type": "cm"});
        let d = diagnose(&Facts {
            device: Some(&dev),
            now_ms: 5000,
            ..Facts::default()
        });
        assert!(d.summary.contains("never bound"), "{d:?}");
        let events = [ev("dhcp", "release", 1000)];
        let d = diagnose(&Facts {
            device: Some(&dev),
            events: &events,
            now_ms: 5000,
            ..Facts::default()
        });
        assert!(d.summary.contains("last DHCP event was release"), "{d:?}");

        let lease = json!({"address": "198.18.2.100"});
        let bad = json!({"verdicts": [{"check": "cm_mic", "ok": false}]});
        let d = diagnose(&Facts {
            device: Some(&dev),
            lease: Some(&lease),
            file: Some(Ok(&bad)),
            now_ms: 5000,
            ..Facts::default()
        });
        assert!(d.summary.contains("integrity check (cm_mic)"), "{d:?}");
        let d = diagnose(&Facts {
            device: Some(&dev),
            lease: Some(&lease),
            file: Some(Err("undefined variable down".into())),
            now_ms: 5000,
            ..Facts::default()
        });
        assert!(
            d.summary.contains("cannot be generated now: undefined"),
            "{d:?}"
        );
    }

    #[test]
    fn each_device_type_has_its_own_last_step() {
        let lease = json!({"address": "198.18.2.100"});
        for (kind, needle) in [("mta", "INFORM"), ("erouter", "CWMP"), ("phone", "profile")] {
            let dev = json!({"type": kind});
            let events = [ev("dhcp", "ack", 1), ev("tftp", "file-served", 2)];
            let d = diagnose(&Facts {
                device: Some(&dev),
                lease: Some(&lease),
                events: &events,
                now_ms: 5000,
                ..Facts::default()
            });
            assert!(!d.online && d.summary.contains(needle), "{kind}: {d:?}");
        }
    }
}
