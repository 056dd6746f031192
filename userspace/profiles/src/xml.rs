//! Cisco SPA XML profiles: `<flat-profile>` whose children are parameters,
//! `<Profile_Rule ua="na">http://…</Profile_Rule>`. Parsed and rewritten with quick-xml; the
//! version element is replaced or added, every other event passes through unchanged.

use quick_xml::Reader;
use quick_xml::Writer;
use quick_xml::events::{BytesEnd, BytesStart, BytesText, Event};

use crate::ProfileError;

const ROOT: &[u8] = b"flat-profile";

/// One parameter: a child element of `<flat-profile>` and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    pub name: String,
    pub value: String,
}

fn xml_err(e: impl std::fmt::Display) -> ProfileError {
    ProfileError::Xml {
        message: e.to_string(),
    }
}

/// Parses a profile into its parameters, in order. The document must be well formed with a
/// `<flat-profile>` root.
pub fn parse(body: &[u8]) -> Result<Vec<Param>, ProfileError> {
    let mut reader = Reader::from_reader(body);
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut seen_root = false;
    let mut current: Option<Param> = None;
    loop {
        match reader.read_event().map_err(xml_err)? {
            Event::Start(e) => {
                depth += 1;
                enter(&e, depth, &mut seen_root)?;
                if depth == 2 {
                    current = Some(Param {
                        name: name_of(&e)?,
                        value: String::new(),
                    });
                }
            }
            Event::Empty(e) => {
                enter(&e, depth + 1, &mut seen_root)?;
                if depth + 1 == 2 {
                    out.push(Param {
                        name: name_of(&e)?,
                        value: String::new(),
                    });
                }
            }
            Event::Text(t) if depth == 2 => {
                if let Some(p) = current.as_mut() {
                    p.value.push_str(&t.unescape().map_err(xml_err)?);
                }
            }
            Event::CData(t) if depth == 2 => {
                if let Some(p) = current.as_mut() {
                    p.value
                        .push_str(std::str::from_utf8(&t).map_err(|_| ProfileError::NotUtf8)?);
                }
            }
            Event::End(_) => {
                if depth == 2
                    && let Some(p) = current.take()
                {
                    out.push(p);
                }
                depth = depth.saturating_sub(1);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if depth != 0 {
        return Err(ProfileError::Xml {
            message: "unexpected end of document (unclosed element)".into(),
        });
    }
    if !seen_root {
        return Err(ProfileError::NoRoot);
    }
    Ok(out)
}

fn enter(e: &BytesStart<'_>, depth: usize, seen_root: &mut bool) -> Result<(), ProfileError> {
    if depth == 1 {
        if e.name().as_ref() != ROOT || *seen_root {
            return Err(ProfileError::NotFlatProfile {
                found: String::from_utf8_lossy(e.name().as_ref()).into_owned(),
            });
        }
        *seen_root = true;
    }
    Ok(())
}

fn name_of(e: &BytesStart<'_>) -> Result<String, ProfileError> {
    String::from_utf8(e.name().as_ref().to_vec()).map_err(|_| ProfileError::NotUtf8)
}

/// Sets `<field>version</field>` among `<flat-profile>`'s children: an existing element's
/// text is replaced; without one, the element is added as the last child.
pub fn set_version(body: &[u8], field: &str, version: u64) -> Result<Vec<u8>, ProfileError> {
    parse(body)?;
    let v = version.to_string();
    let mut reader = Reader::from_reader(body);
    let mut writer = Writer::new(Vec::with_capacity(body.len() + 64));
    let mut depth = 0usize;
    let mut found = false;
    let mut skipping = false;
    loop {
        let ev = reader.read_event().map_err(xml_err)?;
        match &ev {
            Event::Start(e) => {
                depth += 1;
                if depth == 2 && e.name().as_ref() == field.as_bytes() {
                    found = true;
                    skipping = true;
                    writer.write_event(ev.borrow()).map_err(xml_err)?;
                    writer
                        .write_event(Event::Text(BytesText::new(&v)))
                        .map_err(xml_err)?;
                    continue;
                }
            }
            Event::Empty(e) if depth == 1 && e.name().as_ref() == field.as_bytes() => {
                found = true;
                write_field(&mut writer, field, &v)?;
                continue;
            }
            Event::End(e) => {
                if depth == 2 && skipping {
                    skipping = false;
                } else if depth == 1 && e.name().as_ref() == ROOT && !found {
                    write_field(&mut writer, field, &v)?;
                    writer
                        .write_event(Event::Text(BytesText::from_escaped("\n")))
                        .map_err(xml_err)?;
                    found = true;
                }
                depth = depth.saturating_sub(1);
            }
            Event::Eof => break,
            _ => {}
        }
        if skipping && !matches!(ev, Event::End(_)) {
            continue;
        }
        writer.write_event(ev).map_err(xml_err)?;
    }
    Ok(writer.into_inner())
}

fn write_field(w: &mut Writer<Vec<u8>>, field: &str, v: &str) -> Result<(), ProfileError> {
    w.write_event(Event::Start(BytesStart::new(field)))
        .map_err(xml_err)?;
    w.write_event(Event::Text(BytesText::new(v)))
        .map_err(xml_err)?;
    w.write_event(Event::End(BytesEnd::new(field)))
        .map_err(xml_err)
}

/// The version a profile carries in `<field>`, if any and numeric.
pub fn version(body: &[u8], field: &str) -> Option<u64> {
    parse(body)
        .ok()?
        .into_iter()
        .find(|p| p.name == field)
        .and_then(|p| p.value.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SAMPLE: &[u8] = include_bytes!("../../../tests/data/http/profile_plain.xml");

    #[test]
    fn parse_sample() {
        let p = parse(SAMPLE).unwrap();
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].name, "Profile_Rule");
        assert_eq!(p[0].value, "http://prov.example.net/$MA.xml");
    }

    #[test]
    fn errors() {
        assert!(matches!(
            parse(b"<x/>"),
            Err(ProfileError::NotFlatProfile { .. })
        ));
        assert!(matches!(parse(b""), Err(ProfileError::NoRoot)));
        assert!(parse(b"<flat-profile><a>1</b></flat-profile>").is_err());
        assert!(parse(b"<flat-profile><a>1</a>").is_err());
        assert!(matches!(
            parse(b"<flat-profile/><flat-profile/>"),
            Err(ProfileError::NotFlatProfile { .. })
        ));
    }

    #[test]
    fn set_adds_then_replaces() {
        let once = set_version(SAMPLE, "Profile_Version", 5).unwrap();
        assert_eq!(version(&once, "Profile_Version"), Some(5));
        let text = String::from_utf8(once.clone()).unwrap();
        assert!(
            text.contains("<Profile_Version>5</Profile_Version>\n</flat-profile>"),
            "{text}"
        );
        let twice = set_version(&once, "Profile_Version", 6).unwrap();
        assert_eq!(version(&twice, "Profile_Version"), Some(6));
        assert_eq!(
            String::from_utf8(twice).unwrap(),
            text.replace(">5<", ">6<")
        );
        let empty = set_version(b"<flat-profile><V/></flat-profile>", "V", 2).unwrap();
        assert_eq!(empty, b"<flat-profile><V>2</V></flat-profile>");
    }

    proptest! {
        #[test]
        fn parse_total(b in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse(&b);
            let _ = set_version(&b, "V", 1);
        }

        #[test]
        fn set_then_read(params in proptest::collection::vec(("[A-Z][A-Za-z_]{0,8}", "[a-z0-9 &<>]{0,12}"), 0..6),
                         v in any::<u64>()) {
            let mut body = String::from("<flat-profile>\n");
            for (n, val) in &params {
                let esc = val.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
                body.push_str(&format!("<{n} ua=\"na\">{esc}</{n}>\n"));
            }
            body.push_str("</flat-profile>\n");
            let out = set_version(body.as_bytes(), "Profile_Version", v).unwrap();
            prop_assert_eq!(version(&out, "Profile_Version"), Some(v));
            let others: Vec<_> = parse(&out).unwrap().into_iter()
                .filter(|p| p.name != "Profile_Version").map(|p| (p.name, p.value)).collect();
            let want: Vec<_> = params.into_iter().filter(|(n, _)| n != "Profile_Version").collect();
            prop_assert_eq!(others, want);
        }
    }
}
