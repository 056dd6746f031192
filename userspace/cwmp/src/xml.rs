//! A bounded XML reader: bytes in, a small element tree out.
//!
//! CWMP envelopes come from devices nobody here controls, so the reader refuses what could make
//! it work or allocate without bound before any RPC logic runs: a DOCTYPE (and so every entity
//! definition: no entity-expansion bombs; quick-xml itself expands only the five predefined
//! entities and character references), nesting deeper than [`Limits::max_depth`], more than
//! [`Limits::max_elements`] elements, text or attribute values over their limits, and documents
//! over [`Limits::max_bytes`]. Everything is checked while reading, so memory stays within a
//! small multiple of the input size.
//!
//! Time is bounded too, and linear in the input: namespaces are resolved here, not by
//! quick-xml's resolver (whose cost grew with the square of the declarations: 150,000
//! `xmlns:` declarations in 4 MB took 15 s). An element may declare at most
//! [`Limits::max_ns_decls`] namespaces and carry [`Limits::max_attrs`] other attributes, both
//! counted while its attributes are read, so a start tag is refused at its first attribute over
//! the limit; at most [`Limits::max_ns_in_scope`] declarations are in scope at once, so resolving
//! a prefix costs a bounded scan. A [`Limits::deadline`] set by the caller is checked every few
//! hundred events: a document that takes longer is [`Error::OverBudget`].
//!
//! Only what CWMP needs is kept: each element's namespace class ([`Ns`]), local name, the
//! attributes that matter by local name, and its text. Text is not trimmed, but whitespace-only
//! text next to child elements is dropped.

use std::borrow::Cow;

use quick_xml::events::{BytesStart, Event};
use quick_xml::name::PrefixDeclaration;
use quick_xml::reader::Reader;

use crate::Error;

/// What an envelope may cost the reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_bytes: usize,
    pub max_depth: usize,
    pub max_elements: usize,
    pub max_text: usize,
    pub max_attr: usize,
    /// Attributes per element, namespace declarations not counted.
    pub max_attrs: usize,
    /// Namespace declarations (`xmlns`, `xmlns:p`) per element.
    pub max_ns_decls: usize,
    /// Namespace declarations in scope at once (every open element's, summed).
    pub max_ns_in_scope: usize,
    /// The time budget of one document: past this instant the parse stops with
    /// [`Error::OverBudget`]. `None`: no deadline (the other limits still bound the work).
    pub deadline: Option<std::time::Instant>,
}

impl Default for Limits {
    /// 4 MiB covers a GetParameterValuesResponse of a whole TR-181 tree (tens of thousands of
    /// parameters); 64 KiB of text covers any parameter value (base64 certificates included).
    fn default() -> Self {
        Limits {
            max_bytes: 4 << 20,
            max_depth: 32,
            max_elements: 200_000,
            max_text: 64 << 10,
            max_attr: 1024,
            max_attrs: 16,
            // A SOAP envelope declares five or six (soap-env, soap-enc, xsd, xsi, cwmp);
            // vendors add a few of their own.
            max_ns_decls: 32,
            max_ns_in_scope: 64,
            deadline: None,
        }
    }
}

/// The namespaces CWMP cares about; everything else is `Other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ns {
    None,
    SoapEnv,
    SoapEnc,
    /// `urn:dslforum-org:cwmp-1-N`, N = 0..=4.
    Cwmp(u8),
    Other,
}

impl Ns {
    fn classify(uri: &[u8]) -> Ns {
        match uri {
            b"http://schemas.xmlsoap.org/soap/envelope/" => Ns::SoapEnv,
            b"http://schemas.xmlsoap.org/soap/encoding/" => Ns::SoapEnc,
            _ => match uri.strip_prefix(b"urn:dslforum-org:cwmp-1-") {
                Some([d]) if (b'0'..=b'4').contains(d) => Ns::Cwmp(d - b'0'),
                _ => Ns::Other,
            },
        }
    }
}

/// Element names CWMP uses, sorted: a name found here is borrowed, not allocated (an Inform
/// has some forty elements, each named from this table).
const KNOWN_NAMES: &[&str] = &[
    "AccessList",
    "AccessListChange",
    "AddObject",
    "AddObjectResponse",
    "AllQueuedTransferStruct",
    "AnnounceURL",
    "Arg",
    "ArgStruct",
    "AutonomousDUStateChangeComplete",
    "AutonomousDUStateChangeCompleteResponse",
    "AutonomousTransferComplete",
    "AutonomousTransferCompleteResponse",
    "Body",
    "CancelTransfer",
    "CancelTransferResponse",
    "ChangeDUState",
    "ChangeDUStateResponse",
    "Client",
    "Command",
    "CommandKey",
    "CompleteTime",
    "CurrentState",
    "CurrentTime",
    "DUStateChangeComplete",
    "DUStateChangeCompleteResponse",
    "DelaySeconds",
    "DeleteObject",
    "DeleteObjectResponse",
    "DeploymentUnitRef",
    "DeviceId",
    "Download",
    "DownloadResponse",
    "Envelope",
    "Event",
    "EventCode",
    "EventStruct",
    "ExecutionEnvRef",
    "ExecutionUnitRefList",
    "FactoryReset",
    "FactoryResetResponse",
    "FailureURL",
    "Fault",
    "FaultCode",
    "FaultString",
    "FaultStruct",
    "FileSize",
    "FileType",
    "FileTypeArg",
    "GetAllQueuedTransfers",
    "GetAllQueuedTransfersResponse",
    "GetParameterAttributes",
    "GetParameterAttributesResponse",
    "GetParameterNames",
    "GetParameterNamesResponse",
    "GetParameterValues",
    "GetParameterValuesResponse",
    "GetQueuedTransfers",
    "GetQueuedTransfersResponse",
    "GetRPCMethods",
    "GetRPCMethodsResponse",
    "Header",
    "HoldRequests",
    "ID",
    "Inform",
    "InformResponse",
    "InstallOpStruct",
    "InstanceNumber",
    "IsDownload",
    "Kicked",
    "KickedResponse",
    "Manufacturer",
    "MaxEnvelopes",
    "MaxRetries",
    "MethodList",
    "Name",
    "Next",
    "NextLevel",
    "NextURL",
    "NoMoreRequests",
    "Notification",
    "NotificationChange",
    "OUI",
    "ObjectName",
    "OperationPerformed",
    "Operations",
    "ParameterAttributeStruct",
    "ParameterInfoStruct",
    "ParameterKey",
    "ParameterList",
    "ParameterName",
    "ParameterNames",
    "ParameterPath",
    "ParameterValueStruct",
    "Password",
    "ProductClass",
    "QueuedTransferStruct",
    "Reboot",
    "RebootResponse",
    "Referer",
    "RequestDownload",
    "RequestDownloadResponse",
    "Resolved",
    "Results",
    "RetryCount",
    "ScheduleDownload",
    "ScheduleDownloadResponse",
    "ScheduleInform",
    "ScheduleInformResponse",
    "SerialNumber",
    "Server",
    "SessionTimeout",
    "SetParameterAttributes",
    "SetParameterAttributesResponse",
    "SetParameterAttributesStruct",
    "SetParameterValues",
    "SetParameterValuesFault",
    "SetParameterValuesResponse",
    "StartTime",
    "State",
    "Status",
    "SuccessURL",
    "SupportedCWMPVersions",
    "TargetFileName",
    "TimeWindowList",
    "TimeWindowStruct",
    "TransferComplete",
    "TransferCompleteResponse",
    "TransferList",
    "TransferURL",
    "URL",
    "UUID",
    "UninstallOpStruct",
    "UpdateOpStruct",
    "Upload",
    "UploadResponse",
    "UseCWMPVersion",
    "UserMessage",
    "Username",
    "Value",
    "Version",
    "WindowEnd",
    "WindowMode",
    "WindowStart",
    "Writable",
    "detail",
    "false",
    "faultcode",
    "faultstring",
    "mustUnderstand",
    "string",
    "true",
    "type",
    "unknown",
];

fn element_name(b: &[u8]) -> Result<Cow<'static, str>, Error> {
    match KNOWN_NAMES.binary_search_by(|k| k.as_bytes().cmp(b)) {
        Ok(i) => Ok(Cow::Borrowed(KNOWN_NAMES[i])),
        Err(_) => Ok(Cow::Owned(utf8(b)?.to_owned())),
    }
}

/// One element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub ns: Ns,
    pub name: Cow<'static, str>,
    /// (local name, value) of the attributes, namespaces dropped: `type` (xsi:type),
    /// `mustUnderstand`, `arrayType`.
    pub attrs: Vec<(String, String)>,
    pub text: String,
    pub children: Vec<Node>,
}

impl Node {
    pub fn child(&self, name: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.name == name)
    }

    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A namespace declaration in scope: the prefix (empty for the default namespace), what it
/// names, and the depth of the element that declared it.
struct Binding {
    prefix: Box<[u8]>,
    ns: Option<Ns>,
    depth: usize,
}

/// How many events pass between two looks at the deadline.
const DEADLINE_EVERY: u32 = 256;

/// Parses `input` into its root element under `limits`.
pub fn parse(input: &[u8], limits: &Limits) -> Result<Node, Error> {
    if input.len() > limits.max_bytes {
        return Err(Error::TooLarge {
            len: input.len(),
            max: limits.max_bytes,
        });
    }
    let mut reader = Reader::from_reader(input);
    reader.config_mut().expand_empty_elements = true;
    reader.config_mut().check_end_names = true;
    let mut stack: Vec<Node> = Vec::new();
    let mut scope: Vec<Binding> = Vec::new();
    let mut elements = 0usize;
    let mut events = 0u32;
    let mut root: Option<Node> = None;
    loop {
        events = events.wrapping_add(1);
        if events.is_multiple_of(DEADLINE_EVERY)
            && let Some(d) = limits.deadline
            && std::time::Instant::now() >= d
        {
            return Err(Error::OverBudget);
        }
        let ev = reader.read_event().map_err(|e| Error::Xml(e.to_string()))?;
        match ev {
            Event::Start(e) => {
                if root.is_some() {
                    return Err(Error::Xml("content after the root element".into()));
                }
                elements += 1;
                if elements > limits.max_elements {
                    return Err(Error::TooManyElements {
                        max: limits.max_elements,
                    });
                }
                if stack.len() >= limits.max_depth {
                    return Err(Error::TooDeep {
                        max: limits.max_depth,
                    });
                }
                let depth = stack.len() + 1;
                let name = element_name(e.local_name().into_inner())?;
                let attrs = attributes(&e, &name, depth, &mut scope, limits)?;
                let prefix = e.name().prefix().map_or(&b""[..], |p| p.into_inner());
                let ns = resolve(&scope, prefix)?;
                stack.push(Node {
                    ns,
                    name,
                    attrs,
                    text: String::new(),
                    children: Vec::new(),
                });
            }
            Event::End(_) => {
                let depth = stack.len();
                let mut node = stack
                    .pop()
                    .ok_or_else(|| Error::Xml("unbalanced end tag".into()))?;
                while scope.last().is_some_and(|b| b.depth >= depth) {
                    scope.pop();
                }
                if !node.children.is_empty() && node.text.trim().is_empty() {
                    node.text = String::new();
                }
                match stack.last_mut() {
                    Some(parent) => parent.children.push(node),
                    None => root = Some(node),
                }
            }
            Event::Text(t) => {
                let Some(top) = stack.last_mut() else {
                    // Whitespace around the root is fine; anything else is not XML.
                    if t.iter().all(u8::is_ascii_whitespace) {
                        continue;
                    }
                    return Err(Error::Xml("text outside the root element".into()));
                };
                let s = t.unescape().map_err(|e| Error::Xml(e.to_string()))?;
                push_text(top, &s, limits)?;
            }
            Event::CData(c) => {
                let Some(top) = stack.last_mut() else {
                    return Err(Error::Xml("CDATA outside the root element".into()));
                };
                push_text(top, utf8(&c)?, limits)?;
            }
            Event::DocType(_) => return Err(Error::DocType),
            Event::Empty(_) => unreachable!("expand_empty_elements is set"),
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        return Err(Error::Xml("unexpected end of document".into()));
    }
    root.ok_or_else(|| Error::Xml("no root element".into()))
}

/// Reads a start tag's attributes: namespace declarations go into `scope` (at `depth`), the
/// rest are returned. Both counts are checked as each attribute is read, so a tag with a
/// hundred thousand of them costs no more than one with the limit.
fn attributes(
    e: &BytesStart<'_>,
    name: &str,
    depth: usize,
    scope: &mut Vec<Binding>,
    limits: &Limits,
) -> Result<Vec<(String, String)>, Error> {
    let mut attrs = Vec::new();
    let mut decls = 0usize;
    for a in e.attributes() {
        let a = a.map_err(|e| Error::Xml(e.to_string()))?;
        if a.value.len() > limits.max_attr {
            return Err(Error::AttrTooLong {
                len: a.value.len(),
                max: limits.max_attr,
            });
        }
        if let Some(decl) = a.key.as_namespace_binding() {
            decls += 1;
            if decls > limits.max_ns_decls {
                return Err(Error::TooManyNamespaces {
                    element: name.to_owned(),
                    max: limits.max_ns_decls,
                });
            }
            if scope.len() >= limits.max_ns_in_scope {
                return Err(Error::TooManyNamespacesInScope {
                    max: limits.max_ns_in_scope,
                });
            }
            let prefix: &[u8] = match decl {
                PrefixDeclaration::Default => b"",
                PrefixDeclaration::Named(p) => p,
            };
            let uri = a.unescape_value().map_err(|e| Error::Xml(e.to_string()))?;
            // `xmlns=""` takes the default namespace away again.
            let ns = (!(prefix.is_empty() && uri.is_empty())).then(|| Ns::classify(uri.as_bytes()));
            scope.push(Binding {
                prefix: prefix.into(),
                ns,
                depth,
            });
            continue;
        }
        if attrs.len() >= limits.max_attrs {
            return Err(Error::TooManyAttributes {
                element: name.to_owned(),
                max: limits.max_attrs,
            });
        }
        let key = utf8(a.key.local_name().into_inner())?;
        let value = a.unescape_value().map_err(|e| Error::Xml(e.to_string()))?;
        check_chars(&value)?;
        attrs.push((key.to_owned(), value.into_owned()));
    }
    Ok(attrs)
}

/// The namespace `prefix` (empty: none) names in `scope`, innermost declaration first.
fn resolve(scope: &[Binding], prefix: &[u8]) -> Result<Ns, Error> {
    match scope.iter().rev().find(|b| *b.prefix == *prefix) {
        Some(b) => Ok(b.ns.unwrap_or(Ns::None)),
        None if prefix.is_empty() => Ok(Ns::None),
        None if prefix == b"xml" => Ok(Ns::Other),
        None => Err(Error::Xml(format!(
            "undeclared namespace prefix {:?}",
            String::from_utf8_lossy(prefix)
        ))),
    }
}

/// XML 1.0 allows no control characters but tab, CR and LF, raw or as references.
fn check_chars(s: &str) -> Result<(), Error> {
    match s
        .chars()
        .find(|c| (*c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r'))
    {
        Some(c) => Err(Error::Xml(format!(
            "control character U+{:04X} is not allowed in XML",
            c as u32
        ))),
        None => Ok(()),
    }
}

fn push_text(top: &mut Node, s: &str, limits: &Limits) -> Result<(), Error> {
    check_chars(s)?;
    let len = top.text.len() + s.len();
    if len > limits.max_text {
        return Err(Error::TextTooLong {
            len,
            max: limits.max_text,
        });
    }
    top.text.push_str(s);
    Ok(())
}

fn utf8(b: &[u8]) -> Result<&str, Error> {
    std::str::from_utf8(b).map_err(|_| Error::Xml("invalid UTF-8".into()))
}

/// Escapes text and attribute values for output.
pub fn escape_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Control characters other than tab/CR/LF are not XML 1.0; replace them rather
            // than emit a document no one can parse.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_doctype_and_entities() {
        let bomb = br#"<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><r>&b;</r>"#;
        assert_eq!(parse(bomb, &Limits::default()), Err(Error::DocType));
        let undefined = b"<r>&b;</r>";
        assert!(matches!(
            parse(undefined, &Limits::default()),
            Err(Error::Xml(_))
        ));
    }

    #[test]
    fn bounds_depth_text_and_attributes() {
        let deep = "<a>".repeat(40) + &"</a>".repeat(40);
        assert_eq!(
            parse(deep.as_bytes(), &Limits::default()),
            Err(Error::TooDeep { max: 32 })
        );
        let long = format!("<a b=\"{}\"/>", "x".repeat(2000));
        assert!(matches!(
            parse(long.as_bytes(), &Limits::default()),
            Err(Error::AttrTooLong { len: 2000, .. })
        ));
        let text = format!("<a>{}</a>", "x".repeat(70_000));
        assert!(matches!(
            parse(text.as_bytes(), &Limits::default()),
            Err(Error::TextTooLong { .. })
        ));
    }

    /// The review's bomb: `n` declarations on the root (150,000 in 3.98 MB took 14.8 s).
    fn ns_bomb(n: usize) -> Vec<u8> {
        let mut s =
            String::from("<e:Envelope xmlns:e=\"http://schemas.xmlsoap.org/soap/envelope/\"");
        for i in 0..n {
            s.push_str(&format!(" xmlns:n{i}=\"urn:x:{i}\""));
        }
        s.push_str("><e:Body/></e:Envelope>");
        s.into_bytes()
    }

    #[test]
    fn a_namespace_bomb_is_refused_at_once() {
        let bomb = ns_bomb(150_000);
        assert!(bomb.len() < Limits::default().max_bytes);
        let t = std::time::Instant::now();
        assert_eq!(
            parse(&bomb, &Limits::default()),
            Err(Error::TooManyNamespaces {
                element: "Envelope".into(),
                max: 32
            })
        );
        assert!(t.elapsed() < std::time::Duration::from_millis(500));
        assert!(parse(&ns_bomb(31), &Limits::default()).is_ok());
    }

    #[test]
    fn an_attribute_bomb_is_refused_at_once() {
        let mut s = String::from("<r");
        for i in 0..150_000 {
            s.push_str(&format!(" a{i}=\"v\""));
        }
        s.push_str("/>");
        let t = std::time::Instant::now();
        assert_eq!(
            parse(s.as_bytes(), &Limits::default()),
            Err(Error::TooManyAttributes {
                element: "r".into(),
                max: 16
            })
        );
        assert!(t.elapsed() < std::time::Duration::from_millis(500));
        assert!(
            Error::TooManyAttributes {
                element: "r".into(),
                max: 16
            }
            .is_over_limit()
        );
    }

    #[test]
    fn declarations_in_scope_are_bounded() {
        // 20 nested elements with 4 declarations each: 80 in scope at the innermost.
        let mut s = String::new();
        for d in 0..20 {
            s.push_str(&format!(
                "<a{d} xmlns:p=\"urn:a\" xmlns:q=\"urn:b\" xmlns:r=\"urn:c\" xmlns:s=\"urn:d\">"
            ));
        }
        for d in (0..20).rev() {
            s.push_str(&format!("</a{d}>"));
        }
        assert_eq!(
            parse(s.as_bytes(), &Limits::default()),
            Err(Error::TooManyNamespacesInScope { max: 64 })
        );
        // Siblings do not add up: each one's declarations leave scope with it.
        let mut s = String::from("<r>");
        for _ in 0..1000 {
            s.push_str(r#"<c xmlns:p="urn:a" xmlns="urn:b"><p:x/><y/></c>"#);
        }
        s.push_str("</r>");
        let n = parse(s.as_bytes(), &Limits::default()).unwrap();
        assert_eq!(n.children.len(), 1000);
        assert_eq!(n.children[0].ns, Ns::Other);
        assert_eq!(n.children[0].children[0].ns, Ns::Other);
        assert_eq!(n.ns, Ns::None);
    }

    #[test]
    fn prefixes_resolve_innermost_first_and_xmlns_empty_unsets() {
        let n = parse(
            br#"<a xmlns="urn:dslforum-org:cwmp-1-0" xmlns:p="urn:dslforum-org:cwmp-1-1"><p:b xmlns:p="urn:dslforum-org:cwmp-1-2"/><c xmlns=""/><p:d/></a>"#,
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(n.ns, Ns::Cwmp(0));
        assert_eq!(n.children[0].ns, Ns::Cwmp(2));
        assert_eq!(n.children[1].ns, Ns::None);
        assert_eq!(n.children[2].ns, Ns::Cwmp(1));
        assert!(matches!(
            parse(b"<q:a/>", &Limits::default()),
            Err(Error::Xml(_))
        ));
    }

    #[test]
    fn a_past_deadline_stops_the_parse() {
        let mut s = String::from("<r>");
        for _ in 0..2000 {
            s.push_str("<c>x</c>");
        }
        s.push_str("</r>");
        let limits = Limits {
            deadline: Some(std::time::Instant::now()),
            ..Limits::default()
        };
        assert_eq!(parse(s.as_bytes(), &limits), Err(Error::OverBudget));
        assert!(parse(s.as_bytes(), &Limits::default()).is_ok());
    }

    #[test]
    fn the_name_table_is_sorted() {
        assert!(KNOWN_NAMES.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn refuses_control_characters() {
        for bad in [&b"<a>x\x01</a>"[..], b"<a>&#1;</a>", b"<a b=\"&#3;\"/>"] {
            assert!(matches!(parse(bad, &Limits::default()), Err(Error::Xml(_))));
        }
        assert!(parse(b"<a>\t&#10;</a>", &Limits::default()).is_ok());
    }

    #[test]
    fn keeps_text_and_namespaces() {
        let n = parse(
            br#"<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/" xmlns:c="urn:dslforum-org:cwmp-1-0"><c:X a="1"> v &amp; w </c:X></e:Envelope>"#,
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(n.ns, Ns::SoapEnv);
        assert_eq!(n.children[0].ns, Ns::Cwmp(0));
        assert_eq!(n.children[0].text, " v & w ");
        assert_eq!(n.children[0].attr("a"), Some("1"));
    }
}
