//! The control socket that answers an operator's questions about a running server
//! (`provd syslog events`, `provd mta status`, `provd http status`, `provd xdp-stats`).

use std::io::{BufRead, BufReader, Write};
use std::net::Ipv4Addr;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use provd_syslog::{DeviceKey, Store};

/// Where a server's control socket lives: in its lease directory, so the config file names it.
pub fn control_path(lease_dir: &Path) -> PathBuf {
    lease_dir.join("provd.sock")
}

/// Answers one-line questions on a Unix socket (mode 0600: root's only), one thread, one
/// client at a time, each with a short timeout so a stuck client cannot wedge it.
pub fn start_control(
    path: PathBuf,
    syslog: Option<Arc<Store>>,
    mta: Option<crossbeam_channel::Sender<crate::mta::Command>>,
    xdp: Option<Arc<std::sync::Mutex<provd_xdp::Steering>>>,
    http: Option<Arc<provd_httpd::Httpd>>,
    shutdown: Arc<AtomicBool>,
) -> Result<std::thread::JoinHandle<()>> {
    // A socket left by a killed server would make bind fail; nothing else may live there.
    let _ = std::fs::remove_file(&path);
    let listener =
        UnixListener::bind(&path).with_context(|| format!("binding {}", path.display()))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    listener.set_nonblocking(true)?;
    let thread = std::thread::Builder::new()
        .name("provd-control".into())
        .spawn(move || {
            while !shutdown.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        if let Err(e) = answer(
                            stream,
                            syslog.as_deref(),
                            mta.as_ref(),
                            xdp.as_deref(),
                            http.as_deref(),
                        ) {
                            tracing::debug!(error = %e, "control client");
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "control socket accept failed");
                        std::thread::sleep(Duration::from_millis(200));
                    }
                }
            }
            let _ = std::fs::remove_file(&path);
        })?;
    Ok(thread)
}

fn answer(
    stream: UnixStream,
    syslog: Option<&Store>,
    mta: Option<&crossbeam_channel::Sender<crate::mta::Command>>,
    xdp: Option<&std::sync::Mutex<provd_xdp::Steering>>,
    http: Option<&provd_httpd::Httpd>,
) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    let mut line = String::new();
    BufReader::new(std::io::Read::take(&stream, 512)).read_line(&mut line)?;
    let mut out = std::io::BufWriter::new(&stream);
    let words: Vec<&str> = line.split_whitespace().collect();
    match words.as_slice() {
        ["syslog", who] => match (syslog, parse_key(who)) {
            (None, _) => writeln!(
                out,
                "{}",
                error_json("no [syslog] in this server's config".into())
            )?,
            (_, None) => writeln!(
                out,
                "{}",
                error_json(format!("not a MAC or IPv4 address: {who}"))
            )?,
            (Some(store), Some(key)) => {
                for e in store.events(key) {
                    writeln!(out, "{}", event_json(&e))?;
                }
            }
        },
        ["mta", who] => match (mta, parse_key(who)) {
            (None, _) => writeln!(
                out,
                "{}",
                error_json("no [mta] in this server's config".into())
            )?,
            (Some(tx), Some(DeviceKey::Mac(mac))) => {
                let (reply_tx, reply) = crossbeam_channel::bounded(1);
                let record = tx
                    .send(crate::mta::Command::Status(mac, reply_tx))
                    .ok()
                    .and_then(|()| reply.recv_timeout(Duration::from_secs(2)).ok());
                match record {
                    Some(Some(json)) => writeln!(out, "{json}")?,
                    Some(None) => writeln!(
                        out,
                        "{}",
                        error_json(format!("no provisioning record for {who}"))
                    )?,
                    None => writeln!(out, "{}", error_json("the MTA role did not answer".into()))?,
                }
            }
            (Some(_), _) => writeln!(out, "{}", error_json(format!("not a MAC address: {who}")))?,
        },
        ["xdp"] => match xdp.map(|s| s.lock()) {
            None => writeln!(
                out,
                "{}",
                error_json("this server is not on the XDP path".into())
            )?,
            Some(Err(_)) => writeln!(out, "{}", error_json("XDP state poisoned".into()))?,
            Some(Ok(s)) => {
                let counters: serde_json::Map<String, serde_json::Value> = match s.counters() {
                    Ok(c) => provd_common::Verdict::ALL
                        .iter()
                        .zip(c)
                        .map(|(v, n)| (v.label().to_string(), n.into()))
                        .collect(),
                    Err(e) => {
                        writeln!(out, "{}", error_json(e.to_string()))?;
                        return out.flush();
                    }
                };
                let j = serde_json::json!({
                    "iface": s.iface(),
                    "mode": s.mode().as_str(),
                    "counters": counters,
                });
                writeln!(out, "{j}")?;
            }
        },
        ["http", who] => match (http, parse_key(who)) {
            (None, _) => writeln!(
                out,
                "{}",
                error_json("no [http] in this server's config".into())
            )?,
            (Some(h), Some(DeviceKey::Mac(mac))) => match h.device_status(&mac) {
                Some(json) => writeln!(out, "{json}")?,
                None => writeln!(
                    out,
                    "{}",
                    error_json(format!("no profile record for {who}"))
                )?,
            },
            (Some(_), _) => writeln!(out, "{}", error_json(format!("not a MAC address: {who}")))?,
        },
        _ => writeln!(
            out,
            "{}",
            error_json(
                "unknown request; ask: syslog <MAC|IPv4>, mta <MAC>, http <MAC> or xdp".into()
            )
        )?,
    }
    out.flush()
}

fn parse_key(s: &str) -> Option<DeviceKey> {
    if let Ok(a) = s.parse::<Ipv4Addr>() {
        return Some(DeviceKey::Addr(a));
    }
    let hex: String = s.chars().filter(|c| c.is_ascii_hexdigit()).collect();
    let seps = s
        .chars()
        .filter(|c| !c.is_ascii_hexdigit())
        .all(|c| ":-.".contains(c));
    if hex.len() != 12 || !seps {
        return None;
    }
    let mut mac = [0u8; 6];
    for (i, b) in mac.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(DeviceKey::Mac(mac))
}

fn event_json(e: &provd_syslog::Event) -> String {
    serde_json::json!({
        "received_ms": e.received_at,
        "source": e.source.to_string(),
        "facility": provd_syslog::facility_name(e.facility),
        "severity": provd_syslog::severity_name(e.severity),
        "sent_at": e.sent_at.as_ref().map(|t| t.to_string()),
        "app": e.app_name.as_deref(),
        "proc_id": e.proc_id.as_deref(),
        "msg_id": e.msg_id.as_deref(),
        "text": &*e.text,
        "truncated": e.truncated,
    })
    .to_string()
}

/// `{"error": "..."}`, the one shape every refusal has.
fn error_json(message: String) -> String {
    serde_json::json!({ "error": message }).to_string()
}

/// `provd syslog events`: asks the running server through its control socket.
pub fn query(lease_dir: &Path, request: &str) -> Result<String> {
    let path = control_path(lease_dir);
    let mut stream = UnixStream::connect(&path).with_context(|| {
        format!(
            "connecting to {} (is provd serve running with this config?)",
            path.display()
        )
    })?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    writeln!(stream, "{request}")?;
    let mut reply = String::new();
    std::io::Read::read_to_string(&mut stream, &mut reply)?;
    if reply.starts_with(r#"{"error":"#) {
        bail!("{}", reply.trim());
    }
    Ok(reply)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_escapes() {
        assert!(matches!(
            parse_key("00:15:cf:12:34:56"),
            Some(DeviceKey::Mac([0, 0x15, 0xcf, 0x12, 0x34, 0x56]))
        ));
        assert!(matches!(
            parse_key("0015.cf12.3456"),
            Some(DeviceKey::Mac(_))
        ));
        assert!(matches!(parse_key("10.1.0.5"), Some(DeviceKey::Addr(_))));
        assert!(parse_key("00:15:cf:12:34").is_none());
        assert!(parse_key("00:15:cf:12:34:5g").is_none());
        assert!(parse_key("zz0015cf123456").is_none());
        let e = error_json("a\"b\\c\n\u{1}".into());
        let back: serde_json::Value = serde_json::from_str(&e).unwrap();
        assert_eq!(
            back["error"], "a\"b\\c\n\u{1}",
            "escapes survive a real JSON parser"
        );
    }
}
