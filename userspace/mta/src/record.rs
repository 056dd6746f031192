//! The provisioning record of one MTA: the operator's view of its last flow (who it is, where
//! it is, when each step happened, how it ended). Small on purpose (a few hundred bytes with
//! typical strings, measured by a test): the engine keeps one per MTA it has seen, up to its
//! caps.

use std::fmt::Write;
use std::net::Ipv4Addr;

use crate::flow::{Flow, State, Step};
use crate::oids::Mib;
use crate::{Mac, Millis};

/// Longest device string kept (sysDescr, software version, type identifier, file URL, error
/// text): DisplayString / SnmpAdminString are at most 255 octets, and a hostile INFORM must not
/// make a record large.
pub(crate) const MAX_TEXT: usize = 255;

/// One MTA's record. Fields filled as the flow learns them; strings are cut at 255 bytes
/// (on a character boundary), non-UTF-8 bytes replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub mac: Mac,
    /// From DHCP; `None` for an MTA whose DHCP binding was never reported.
    pub flow: Option<Flow>,
    /// Known once the MTA enrolled (BASIC MTAs speak no SNMP before their status).
    pub mib: Option<Mib>,
    /// The MTA's address: the DHCP lease, or the source of its enrollment INFORM, which the
    /// engine's GET/SET go to.
    pub addr: Ipv4Addr,
    /// The relay (giaddr) the DHCP ACK went through: the CMTS. `None` when not relayed or not
    /// known.
    pub cmts: Option<Ipv4Addr>,
    /// The record was opened by an INFORM, without a DHCP binding (see [`Engine`](crate::Engine)).
    pub unknown_dhcp: bool,
    /// pktcMtaDevCorrelationId of the current boot (enrollment or status INFORM).
    pub correlation_id: Option<u32>,
    pub sw_version: Option<Box<str>>,
    /// pktcMtaDevTypeIdentifier: the MTA's DHCP option 60 string.
    pub type_identifier: Option<Box<str>>,
    pub sys_descr: Option<Box<str>>,
    /// pktcMtaDevEndPntCount (lines), from the capability GET.
    pub endpoints: Option<u32>,
    /// The config file: the DHCP file name (BASIC) or the URL set (HYBRID).
    pub config_file: Option<Box<str>>,
    pub steps: Steps,
    pub state: State,
    /// Flows started for this MTA: 1 for the first, one more for each restart by a new DHCP
    /// binding or a new correlation id (a reboot).
    pub attempts: u32,
    /// The latest thing that went wrong or looked wrong in this attempt, even if the flow went
    /// on (an unanswered capability GET, a status with another correlation id).
    pub last_error: Option<Box<str>>,
}

impl Record {
    pub(crate) fn new(mac: Mac, addr: Ipv4Addr) -> Record {
        Record {
            mac,
            flow: None,
            mib: None,
            addr,
            cmts: None,
            unknown_dhcp: false,
            correlation_id: None,
            sw_version: None,
            type_identifier: None,
            sys_descr: None,
            endpoints: None,
            config_file: None,
            steps: Steps::default(),
            state: State::Waiting,
            attempts: 1,
            last_error: None,
        }
    }

    /// Forgets the previous attempt: its steps, outcome, error and boot-specific facts.
    pub(crate) fn restart(&mut self) {
        self.attempts = self.attempts.saturating_add(1);
        self.steps = Steps::default();
        self.state = State::Waiting;
        self.correlation_id = None;
        self.last_error = None;
    }

    pub(crate) fn stamp(&mut self, step: Step, now: Millis) {
        self.steps.set(step, now);
    }

    pub(crate) fn note(&mut self, error: impl AsRef<str>) {
        self.last_error = Some(text(error.as_ref().as_bytes()));
    }

    /// Heap bytes owned by the record (its strings), for the memory bound.
    pub fn heap_size(&self) -> usize {
        [
            &self.sw_version,
            &self.type_identifier,
            &self.sys_descr,
            &self.config_file,
            &self.last_error,
        ]
        .iter()
        .map(|s| s.as_ref().map_or(0, |s| s.len()))
        .sum::<usize>()
            + match &self.state {
                State::Failed { reason, .. } => reason.len(),
                _ => 0,
            }
    }

    /// The record as one JSON object, for the operator API and logs. Absent facts are `null`;
    /// steps not reached are left out of `steps`.
    ///
    /// ```text
    /// {"mac":"00:15:cf:12:34:57","flow":"HYBRID.2","mib":"ietf","addr":"10.1.0.20",
    ///  "cmts":"10.1.0.1","unknown_dhcp":false,"correlation_id":305441741,"sw_version":"2.1.0",
    ///  "type_identifier":"pktc1.5:…","sys_descr":"<<…>>","endpoints":null,
    ///  "config_file":"tftp://10.0.0.10/mta/0015cf123457.bin",
    ///  "steps":{"dhcp":1700000000000,"enrollment":…},
    ///  "state":{"name":"complete","prov_state":"pass"},"attempts":1,"last_error":null}
    /// ```
    pub fn to_json(&self) -> String {
        let mut j = String::with_capacity(512);
        let _ = write!(j, "{{\"mac\":\"{}\"", self.mac);
        j.push_str(",\"flow\":");
        opt_str(&mut j, self.flow.map(|f| f.realm_name()));
        j.push_str(",\"mib\":");
        opt_str(&mut j, self.mib.map(|m| m.name()));
        let _ = write!(j, ",\"addr\":\"{}\",\"cmts\":", self.addr);
        match self.cmts {
            Some(c) => {
                let _ = write!(j, "\"{c}\"");
            }
            None => j.push_str("null"),
        }
        let _ = write!(j, ",\"unknown_dhcp\":{}", self.unknown_dhcp);
        j.push_str(",\"correlation_id\":");
        opt_num(&mut j, self.correlation_id.map(u64::from));
        for (key, value) in [
            ("sw_version", &self.sw_version),
            ("type_identifier", &self.type_identifier),
            ("sys_descr", &self.sys_descr),
        ] {
            let _ = write!(j, ",\"{key}\":");
            opt_str(&mut j, value.as_deref());
        }
        j.push_str(",\"endpoints\":");
        opt_num(&mut j, self.endpoints.map(u64::from));
        j.push_str(",\"config_file\":");
        opt_str(&mut j, self.config_file.as_deref());
        j.push_str(",\"steps\":{");
        for (i, (step, at)) in self.steps.iter().enumerate() {
            let sep = if i == 0 { "" } else { "," };
            let _ = write!(j, "{sep}\"{}\":{}", step.name(), at.0);
        }
        let _ = write!(j, "}},\"state\":{{\"name\":\"{}\"", self.state.name());
        match &self.state {
            State::Complete(s) => {
                j.push_str(",\"prov_state\":");
                match s.name() {
                    Some(name) => str_lit(&mut j, name),
                    None => {
                        let _ = write!(j, "{}", s.0);
                    }
                }
            }
            State::Failed { step, reason } => {
                let _ = write!(j, ",\"step\":\"{}\",\"reason\":", step.label());
                str_lit(&mut j, reason);
            }
            State::TimedOut(step) => {
                let _ = write!(j, ",\"step\":\"{}\"", step.label());
            }
            _ => {}
        }
        let _ = write!(j, "}},\"attempts\":{},\"last_error\":", self.attempts);
        opt_str(&mut j, self.last_error.as_deref());
        j.push('}');
        j
    }
}

/// When each [`Step`] of the current attempt happened (the caller's Unix milliseconds).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Steps {
    at: [u64; Step::ALL.len()],
    /// Bit `i`: step `i` was reached (a time of 0 is a valid virtual time).
    reached: u16,
}

impl Steps {
    pub fn get(&self, step: Step) -> Option<Millis> {
        let i = step.index();
        (self.reached & (1 << i) != 0).then(|| Millis(self.at[i]))
    }

    pub fn has(&self, step: Step) -> bool {
        self.get(step).is_some()
    }

    /// The steps reached, in flow order.
    pub fn iter(&self) -> impl Iterator<Item = (Step, Millis)> + '_ {
        Step::ALL
            .into_iter()
            .filter_map(|s| self.get(s).map(|at| (s, at)))
    }

    pub(crate) fn set(&mut self, step: Step, now: Millis) {
        let i = step.index();
        self.at[i] = now.0;
        self.reached |= 1 << i;
    }
}

/// Device text as kept in a record: lossy UTF-8, at most [`MAX_TEXT`] bytes.
pub(crate) fn text(bytes: &[u8]) -> Box<str> {
    let s = String::from_utf8_lossy(bytes);
    let mut end = s.len().min(MAX_TEXT);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].into()
}

fn opt_num(j: &mut String, v: Option<u64>) {
    match v {
        Some(v) => {
            let _ = write!(j, "{v}");
        }
        None => j.push_str("null"),
    }
}

fn opt_str(j: &mut String, v: Option<&str>) {
    match v {
        Some(s) => str_lit(j, s),
        None => j.push_str("null"),
    }
}

/// A JSON string literal (RFC 8259 §7): quote, backslash and control characters escaped.
fn str_lit(j: &mut String, s: &str) {
    j.push('"');
    for c in s.chars() {
        match c {
            '"' => j.push_str("\\\""),
            '\\' => j.push_str("\\\\"),
            '\n' => j.push_str("\\n"),
            '\r' => j.push_str("\\r"),
            '\t' => j.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(j, "\\u{:04x}", u32::from(c));
            }
            c => j.push(c),
        }
    }
    j.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::ProvState;

    fn typical() -> Record {
        let mut r = Record::new(
            Mac([0, 0x15, 0xcf, 0x12, 0x34, 0x57]),
            Ipv4Addr::new(10, 1, 0, 20),
        );
        r.flow = Some(Flow::Hybrid2);
        r.mib = Some(Mib::Ietf);
        r.cmts = Some(Ipv4Addr::new(10, 1, 0, 1));
        r.correlation_id = Some(0x1234_abcd);
        r.sw_version = Some(text(b"2.1.0"));
        r.type_identifier = Some(text(
            b"pktc1.5:051a0101010201020301000401010901000b02060910010912020007",
        ));
        r.sys_descr = Some(text(
            b"<<HW_REV: 1.0; VENDOR: ExampleCo; BOOTR: 1.0; SW_REV: 2.1.0; MODEL: EMTA1>>",
        ));
        r.config_file = Some(text(b"tftp://10.0.0.10/mta/0015cf123457.bin"));
        for (i, s) in Step::ALL.into_iter().enumerate() {
            r.stamp(s, Millis(1_700_000_000_000 + i as u64));
        }
        r.state = State::Complete(ProvState::PASS);
        r
    }

    #[test]
    fn a_typical_record_stays_under_512_bytes() {
        let r = typical();
        let total = std::mem::size_of::<Record>() + r.heap_size();
        assert!(
            total < 512,
            "record {} + heap {} = {total} bytes",
            std::mem::size_of::<Record>(),
            r.heap_size()
        );
        assert!(std::mem::size_of::<Record>() <= 256);
    }

    #[test]
    fn device_text_is_bounded_and_lossy() {
        assert_eq!(&*text(&[b'a'; 1000]), "a".repeat(MAX_TEXT));
        // 'é' is two bytes: the cut lands on a boundary.
        let s = "é".repeat(200);
        assert_eq!(text(s.as_bytes()).len(), 254);
        assert_eq!(&*text(b"ok\xff"), "ok\u{fffd}");
    }

    #[test]
    fn json_has_every_field_and_escapes_strings() {
        let mut r = typical();
        r.sys_descr = Some(text(b"a \"quoted\"\\ \x01 line\n"));
        r.state = State::Failed {
            step: Step::SetAcked,
            reason: "inconsistentValue".into(),
        };
        let j = r.to_json();
        assert!(j.starts_with(
            "{\"mac\":\"00:15:cf:12:34:57\",\"flow\":\"HYBRID.2\",\"mib\":\"ietf\",\
             \"addr\":\"10.1.0.20\",\"cmts\":\"10.1.0.1\",\"unknown_dhcp\":false,\
             \"correlation_id\":305441741,\"sw_version\":\"2.1.0\","
        ));
        assert!(j.contains(r#""sys_descr":"a \"quoted\"\\ \u0001 line\n""#));
        assert!(j.contains(r#""steps":{"dhcp":1700000000000,"enrollment":1700000000001,"#));
        assert!(j.ends_with(
            r#""status":1700000000008},"state":{"name":"failed","step":"MTA-19","reason":"inconsistentValue"},"attempts":1,"last_error":null}"#
        ));
        let fresh = Record::new(Mac::default(), Ipv4Addr::UNSPECIFIED).to_json();
        assert_eq!(
            fresh,
            "{\"mac\":\"00:00:00:00:00:00\",\"flow\":null,\"mib\":null,\"addr\":\"0.0.0.0\",\
             \"cmts\":null,\"unknown_dhcp\":false,\"correlation_id\":null,\"sw_version\":null,\
             \"type_identifier\":null,\"sys_descr\":null,\"endpoints\":null,\"config_file\":null,\
             \"steps\":{},\"state\":{\"name\":\"waiting\"},\"attempts\":1,\"last_error\":null}"
        );
    }
}
