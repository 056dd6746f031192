//! SOAP 1.1 envelopes: the CWMP header (ID, HoldRequests, NoMoreRequests, SessionTimeout,
//! SupportedCWMPVersions, UseCWMPVersion) around one RPC.
//!
//! On input any `urn:dslforum-org:cwmp-1-N` (N = 0..=4) is accepted and remembered in
//! [`Envelope::version`], so the answer goes out in the namespace the device used. On output the
//! prefixes are the ones devices expect (`soap-env`, `soap-enc`, `xsd`, `xsi`, `cwmp`).

use crate::rpc::{self, Rpc};
use crate::xml::{self, Limits, Node, Ns, escape_into};
use crate::{Error, Version};

/// One envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub version: Version,
    /// `cwmp:ID`: a response echoes the request's.
    pub id: Option<String>,
    pub hold_requests: Option<bool>,
    /// CWMP 1.0 `NoMoreRequests` (deprecated later, still sent by old CPEs).
    pub no_more_requests: bool,
    pub session_timeout: Option<u32>,
    pub supported_versions: Option<String>,
    pub use_version: Option<String>,
    pub body: Rpc,
}

impl Envelope {
    pub fn new(version: Version, id: Option<String>, body: Rpc) -> Self {
        Envelope {
            version,
            id,
            hold_requests: None,
            no_more_requests: false,
            session_timeout: None,
            supported_versions: None,
            use_version: None,
            body,
        }
    }

    /// Parses an envelope under `limits`.
    pub fn parse(input: &[u8], limits: &Limits) -> Result<Envelope, Error> {
        let root = xml::parse(input, limits)?;
        Self::from_node(&root)
    }

    fn from_node(root: &Node) -> Result<Envelope, Error> {
        if root.ns != Ns::SoapEnv || root.name != "Envelope" {
            return Err(Error::NotEnvelope);
        }
        let mut version = None;
        let mut env = Envelope::new(Version::V1_2, None, Rpc::GetRpcMethods);
        if let Some(h) = root
            .children
            .iter()
            .find(|c| c.ns == Ns::SoapEnv && c.name == "Header")
        {
            for c in &h.children {
                let Ns::Cwmp(v) = c.ns else {
                    // A header entry we do not know: fine unless it must be understood.
                    if c.attr("mustUnderstand")
                        .is_some_and(|m| m == "1" || m == "true")
                    {
                        return Err(Error::MustUnderstand {
                            element: c.name.chars().take(64).collect(),
                        });
                    }
                    continue;
                };
                version.get_or_insert(Version(v));
                match c.name.as_ref() {
                    "ID" => env.id = Some(c.text.clone()),
                    "HoldRequests" => {
                        env.hold_requests = Some(matches!(c.text.trim(), "1" | "true"))
                    }
                    "NoMoreRequests" => {
                        env.no_more_requests = matches!(c.text.trim(), "1" | "true")
                    }
                    "SessionTimeout" => env.session_timeout = c.text.trim().parse().ok(),
                    "SupportedCWMPVersions" => env.supported_versions = Some(c.text.clone()),
                    "UseCWMPVersion" => env.use_version = Some(c.text.clone()),
                    _ => {}
                }
            }
        }
        let body = root
            .children
            .iter()
            .find(|c| c.ns == Ns::SoapEnv && c.name == "Body")
            .ok_or(Error::NoBody)?;
        let rpc = match body.children.as_slice() {
            [one] => one,
            [] => return Err(Error::NoBody),
            _ => return Err(Error::Xml("more than one element in Body".into())),
        };
        if let Ns::Cwmp(v) = rpc.ns {
            version = Some(Version(v));
        } else if rpc.ns == Ns::SoapEnv
            && let Some(Ns::Cwmp(v)) = rpc
                .child("detail")
                .and_then(|d| d.child("Fault"))
                .map(|f| f.ns)
        {
            version.get_or_insert(Version(v));
        } else if rpc.ns != Ns::SoapEnv {
            return Err(Error::WrongNamespace {
                element: rpc.name.chars().take(64).collect(),
            });
        }
        env.body = rpc::decode(rpc)?;
        env.version = version.unwrap_or(Version::V1_2);
        Ok(env)
    }

    /// Writes the envelope (with an XML declaration) into `out`.
    pub fn write(&self, out: &mut String) {
        out.push_str(r#"<?xml version="1.0" encoding="UTF-8"?>"#);
        out.push_str(r#"<soap-env:Envelope xmlns:soap-env="http://schemas.xmlsoap.org/soap/envelope/" xmlns:soap-enc="http://schemas.xmlsoap.org/soap/encoding/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:cwmp=""#);
        out.push_str(self.version.namespace());
        out.push_str(r#""><soap-env:Header>"#);
        if let Some(id) = &self.id {
            out.push_str(r#"<cwmp:ID soap-env:mustUnderstand="1">"#);
            escape_into(out, id);
            out.push_str("</cwmp:ID>");
        }
        if let Some(h) = self.hold_requests {
            out.push_str(r#"<cwmp:HoldRequests soap-env:mustUnderstand="1">"#);
            out.push_str(if h { "1" } else { "0" });
            out.push_str("</cwmp:HoldRequests>");
        }
        if self.no_more_requests {
            out.push_str(r#"<cwmp:NoMoreRequests>1</cwmp:NoMoreRequests>"#);
        }
        if let Some(t) = self.session_timeout {
            out.push_str(&format!(
                r#"<cwmp:SessionTimeout soap-env:mustUnderstand="0">{t}</cwmp:SessionTimeout>"#
            ));
        }
        if let Some(v) = &self.supported_versions {
            out.push_str(r#"<cwmp:SupportedCWMPVersions soap-env:mustUnderstand="0">"#);
            escape_into(out, v);
            out.push_str("</cwmp:SupportedCWMPVersions>");
        }
        if let Some(v) = &self.use_version {
            out.push_str(r#"<cwmp:UseCWMPVersion soap-env:mustUnderstand="1">"#);
            escape_into(out, v);
            out.push_str("</cwmp:UseCWMPVersion>");
        }
        out.push_str("</soap-env:Header><soap-env:Body>");
        rpc::encode(&self.body, out);
        out.push_str("</soap-env:Body></soap-env:Envelope>");
    }

    pub fn to_xml(&self) -> String {
        let mut s = String::with_capacity(512);
        self.write(&mut s);
        s
    }
}
