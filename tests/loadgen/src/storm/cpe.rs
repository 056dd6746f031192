//! What the storm's routers and phones do once they have their lease, sans-IO: each step takes
//! a whole HTTP response and says what to send next.
//!
//! * eRouter: a TR-069 session with the ACS from option 43.1: POST of a `1 BOOT` Inform, the
//!   ACS's digest challenge answered (RFC 7616, as the CPE's ManagementServer.Username and
//!   Password give it), the InformResponse checked, then the empty POST the ACS answers with
//!   204 when it has nothing queued. The session cookie is kept and sent back.
//! * phone (a Flying Voice-style ATA): the profile rule from option 66, its macros expanded as
//!   the device does, fetched with GET; the profile must name the device's MAC and leased
//!   address, and its version field must match the `X-Profile-Version` the server sent.

use std::net::{Ipv4Addr, SocketAddrV4};

use provd_cwmp::{Envelope, Inform, Limits, Rpc, Version};

use super::http::{self, Response};

/// What to do after a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Send this request on the same connection (a new one if the server closed it).
    Send(Vec<u8>),
    /// The device is provisioned; the connection may close.
    Done,
    /// This try failed; `refused` when the server said it was busy (503) or over a limit.
    Failed { why: String, refused: bool },
}

fn failed(why: impl Into<String>, refused: bool) -> Step {
    Step::Failed {
        why: why.into(),
        refused,
    }
}

/// The CPE's side of one CWMP session.
#[derive(Debug, Clone)]
pub struct Cwmp {
    host: String,
    pub to: SocketAddrV4,
    path: String,
    user: String,
    pass: String,
    inform: Vec<u8>,
    /// The last Digest challenge, answered on every request with a growing nonce count.
    challenge: Option<String>,
    nc: u32,
    cookie: Option<String>,
    /// The InformResponse came: the empty POST is out.
    pub informed: bool,
}

/// The Inform of device `serial`: a TR-181 device booting (event `1 BOOT`).
pub fn boot_inform(serial: &str, addr: Ipv4Addr) -> Vec<u8> {
    let inform = Inform::simulated(
        "00D09E",
        "STORM-ER",
        serial,
        "1 BOOT",
        format!("http://{addr}:7547/cr"),
    );
    Envelope::new(
        Version::V1_2,
        Some("1".into()),
        Rpc::Inform(Box::new(inform)),
    )
    .to_xml()
    .into_bytes()
}

impl Cwmp {
    /// Starts a session with the ACS at `url`: the first request to send.
    pub fn start(
        url: &str,
        user: &str,
        pass: &str,
        inform: Vec<u8>,
    ) -> Result<(Cwmp, Vec<u8>), String> {
        let (host, to, path) = http::split_url(url)?;
        let mut c = Cwmp {
            host,
            to,
            path,
            user: user.to_owned(),
            pass: pass.to_owned(),
            inform,
            challenge: None,
            nc: 0,
            cookie: None,
            informed: false,
        };
        let first = c.post(false);
        Ok((c, first))
    }

    fn post(&mut self, empty: bool) -> Vec<u8> {
        let authz = self.challenge.as_deref().and_then(|ch| {
            self.nc += 1;
            provd_acs::auth::authorize(
                ch,
                &self.user,
                &self.pass,
                "POST",
                &self.path,
                self.nc,
                &format!("{:08x}", self.nc.wrapping_mul(7919)),
            )
        });
        let mut headers: Vec<(&str, &str)> = vec![("SOAPAction", "")];
        if !empty {
            headers.push(("Content-Type", "text/xml; charset=\"utf-8\""));
        }
        if let Some(c) = &self.cookie {
            headers.push(("Cookie", c));
        }
        if let Some(a) = &authz {
            headers.push(("Authorization", a));
        }
        let body: &[u8] = if empty { b"" } else { &self.inform };
        http::request("POST", &self.host, &self.path, &headers, body)
    }

    pub fn on_response(&mut self, r: &Response) -> Step {
        if let Some(c) = r.header("set-cookie") {
            self.cookie = Some(c.split(';').next().unwrap_or_default().trim().to_owned());
        }
        match r.status {
            401 => {
                let Some(ch) = r
                    .headers
                    .iter()
                    .filter(|(k, _)| k == "www-authenticate")
                    .map(|(_, v)| v)
                    .find(|v| v.starts_with("Digest "))
                else {
                    return failed("ACS: 401 without a Digest challenge", false);
                };
                let stale = ch.contains("stale=true");
                if self.challenge.is_some() && !stale {
                    return failed("ACS: credentials refused", false);
                }
                self.challenge = Some(ch.clone());
                self.nc = 0;
                // The request the challenge answered, again, now authorized.
                Step::Send(self.post(self.informed))
            }
            204 if self.informed => Step::Done,
            200 if !self.informed => {
                match Envelope::parse(&r.body, &Limits::default()) {
                    Ok(Envelope {
                        body: Rpc::InformResponse { max_envelopes },
                        ..
                    }) if max_envelopes >= 1 => {}
                    Ok(e) => {
                        return failed(
                            format!("ACS: answered the Inform with {}", e.body.method()),
                            false,
                        );
                    }
                    Err(e) => return failed(format!("ACS: InformResponse unreadable: {e}"), false),
                }
                if self.cookie.is_none() {
                    return failed("ACS: InformResponse without a session cookie", false);
                }
                self.informed = true;
                Step::Send(self.post(true))
            }
            200 => failed(
                "ACS: a request in the session (nothing is queued for the storm's routers)",
                false,
            ),
            503 => failed("ACS: HTTP 503", true),
            s => failed(format!("ACS: HTTP {s}"), false),
        }
    }
}

/// A phone's profile fetch.
#[derive(Debug, Clone)]
pub struct Profile {
    pub to: SocketAddrV4,
    mac_upper: String,
    addr: String,
}

impl Profile {
    /// The rule from option 66, expanded for `mac`: the GET to send.
    pub fn start(rule: &str, mac: [u8; 6], addr: Ipv4Addr) -> Result<(Profile, Vec<u8>), String> {
        let url = provd_profile_rule::expand_rule(rule, &provd_profile_rule::Variables::new(mac));
        let (host, to, path) = http::split_url(&url)?;
        let p = Profile {
            to,
            mac_upper: mac.iter().map(|b| format!("{b:02X}")).collect(),
            addr: addr.to_string(),
        };
        Ok((p, http::request("GET", &host, &path, &[], b"")))
    }

    pub fn on_response(&self, r: &Response) -> Step {
        match r.status {
            200 => {}
            503 => return failed("profile: HTTP 503", true),
            s => return failed(format!("profile: HTTP {s}"), false),
        }
        let Some(version) = r.header("x-profile-version") else {
            return failed("profile: no X-Profile-Version", false);
        };
        let text = String::from_utf8_lossy(&r.body);
        let field = format!("DBID_DBASE_VERSION={version}");
        let has_field = text
            .lines()
            .any(|l| l.split('\t').next() == Some(field.as_str()));
        if !has_field {
            return failed(
                "profile: version field does not match X-Profile-Version",
                false,
            );
        }
        if !text.contains(&self.mac_upper) {
            return failed("profile: does not name the device's MAC", false);
        }
        if !text.contains(&self.addr) {
            return failed("profile: does not name the device's address", false);
        }
        Step::Done
    }
}

/// The ACS URL in option 43 (TR-069's vendor-specific sub-option 1).
pub fn acs_url(option43: &[u8]) -> Option<String> {
    let (_, v) = provd_dhcp::suboption::SubOptions::with_pad_end(option43)
        .map_while(Result::ok)
        .find(|(c, _)| *c == 1)?;
    std::str::from_utf8(v).ok().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resp(status: u16, headers: &[(&str, &str)], body: &[u8]) -> Response {
        Response {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), (*v).to_owned()))
                .collect(),
            body: body.to_vec(),
            close: false,
        }
    }

    fn text(b: &[u8]) -> String {
        String::from_utf8_lossy(b).into_owned()
    }

    #[test]
    fn a_session_answers_the_challenge_keeps_the_cookie_and_ends_on_204() {
        let inform = boot_inform("STORM0001", Ipv4Addr::new(100, 64, 0, 9));
        let (mut c, first) = Cwmp::start("http://198.18.0.1:7547/", "cpe", "pw", inform).unwrap();
        let t = text(&first);
        assert!(
            t.starts_with("POST / HTTP/1.1\r\nHost: 198.18.0.1:7547\r\n"),
            "{t}"
        );
        assert!(t.contains("1 BOOT") && !t.contains("Authorization"), "{t}");
        let challenge = "Digest realm=\"provd\", nonce=\"abc\", qop=\"auth\", algorithm=MD5";
        let Step::Send(again) = c.on_response(&resp(401, &[("WWW-Authenticate", challenge)], b""))
        else {
            panic!("no retry after the challenge")
        };
        let t = text(&again);
        assert!(t.contains("Authorization: Digest username=\"cpe\""), "{t}");
        assert!(t.contains("nc=00000001"), "{t}");
        // A second challenge that is not stale: the credentials are wrong.
        let mut wrong = c.clone();
        assert!(matches!(
            wrong.on_response(&resp(401, &[("WWW-Authenticate", challenge)], b"")),
            Step::Failed { .. }
        ));
        let ok = Envelope::new(
            Version::V1_2,
            Some("1".into()),
            Rpc::InformResponse { max_envelopes: 1 },
        )
        .to_xml();
        let Step::Send(empty) = c.on_response(&resp(
            200,
            &[("Set-Cookie", "provd_session=s1; Path=/; HttpOnly")],
            ok.as_bytes(),
        )) else {
            panic!("no empty POST")
        };
        let t = text(&empty);
        assert!(t.contains("Cookie: provd_session=s1\r\n"), "{t}");
        assert!(
            t.contains("nc=00000002") && t.ends_with("Content-Length: 0\r\n\r\n"),
            "{t}"
        );
        assert!(c.informed);
        assert_eq!(c.on_response(&resp(204, &[], b"")), Step::Done);
    }

    #[test]
    fn a_session_fails_on_what_a_cpe_would_not_take() {
        let start = || {
            Cwmp::start("http://10.0.0.1:7547/", "u", "p", b"<x/>".to_vec())
                .unwrap()
                .0
        };
        // No cookie, a fault instead of an InformResponse, a 503, garbage.
        let ok = Envelope::new(
            Version::V1_2,
            None,
            Rpc::InformResponse { max_envelopes: 1 },
        )
        .to_xml();
        assert!(matches!(
            start().on_response(&resp(200, &[], ok.as_bytes())),
            Step::Failed { .. }
        ));
        let other = Envelope::new(Version::V1_2, None, Rpc::GetRpcMethods).to_xml();
        assert!(matches!(
            start().on_response(&resp(200, &[("Set-Cookie", "a=b")], other.as_bytes())),
            Step::Failed { .. }
        ));
        assert!(matches!(
            start().on_response(&resp(503, &[], b"")),
            Step::Failed { refused: true, .. }
        ));
        assert!(matches!(
            start().on_response(&resp(200, &[("Set-Cookie", "a=b")], b"<<<")),
            Step::Failed { refused: false, .. }
        ));
        assert!(Cwmp::start("https://10.0.0.1/", "u", "p", vec![]).is_err());
    }

    #[test]
    fn a_profile_must_name_the_device_and_carry_its_version() {
        let mac = [0x02, 0x5f, 0, 0, 0x12, 0xab];
        let addr = Ipv4Addr::new(100, 64, 1, 2);
        let (p, get) = Profile::start("http://198.18.0.1/fv/$MA.cfg", mac, addr).unwrap();
        assert_eq!(
            text(&get),
            "GET /fv/025f000012ab.cfg HTTP/1.1\r\nHost: 198.18.0.1\r\n\r\n"
        );
        let body =
            "DBID_DEVICE_MAC=025F000012AB\nDBID_DEVICE_IP=100.64.1.2\nDBID_DBASE_VERSION=3\t0\n";
        let good = resp(200, &[("X-Profile-Version", "3")], body.as_bytes());
        assert_eq!(p.on_response(&good), Step::Done);
        let stale = resp(200, &[("X-Profile-Version", "4")], body.as_bytes());
        assert!(matches!(p.on_response(&stale), Step::Failed { .. }));
        let other_ip = body.replace("100.64.1.2", "100.64.1.3");
        let r = resp(200, &[("X-Profile-Version", "3")], other_ip.as_bytes());
        assert!(matches!(p.on_response(&r), Step::Failed { .. }));
        let other_mac = body.replace("025F000012AB", "025F000012AC");
        let r = resp(200, &[("X-Profile-Version", "3")], other_mac.as_bytes());
        assert!(matches!(p.on_response(&r), Step::Failed { .. }));
        assert!(matches!(
            p.on_response(&resp(404, &[], b"")),
            Step::Failed { refused: false, .. }
        ));
        assert!(matches!(
            p.on_response(&resp(200, &[], body.as_bytes())),
            Step::Failed { .. }
        ));
    }

    #[test]
    fn the_acs_url_is_sub_option_1_of_option_43() {
        let mut v = Vec::new();
        assert!(provd_dhcp::cablelabs::encode_acs_vendor_info(
            "http://198.18.0.1:7547/",
            Some("RES"),
            &mut v
        ));
        assert_eq!(acs_url(&v).as_deref(), Some("http://198.18.0.1:7547/"));
        assert_eq!(acs_url(b"\x02\x01x"), None);
        assert_eq!(acs_url(b"\x01\x09short"), None);
    }
}
