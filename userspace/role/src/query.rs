//! The query socket: operators' one-line questions to a running server (`provd syslog events
//! MAC`, `provd mta status MAC`, `provd xdp-stats` ...), answered by the role they are about.
//!
//! A Unix socket in the lease directory (mode 0600: root's only); one thread, one client at a
//! time, each with short timeouts so a stuck client cannot wedge it. A request is one line of at
//! most 512 bytes; the answer is JSON lines, or one `{"error": "..."}` line.

use std::io::{BufRead, BufReader, Write};
use std::net::Ipv4Addr;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};

/// Answers one request line (without its newline) with the whole reply.
pub type Answer = Arc<dyn Fn(&str) -> String + Send + Sync>;

/// Where a server's query socket lives: in its lease directory, so the config file names it.
pub fn socket_path(lease_dir: &Path) -> PathBuf {
    lease_dir.join("provd.sock")
}

/// `{"error": "..."}`, the one shape every refusal has.
pub fn error_json(message: impl std::fmt::Display) -> String {
    serde_json::json!({ "error": message.to_string() }).to_string()
}

/// A device named in a query: a MAC in any common spelling (`00:15:cf:12:34:56`,
/// `00-15-cf-...`, `0015.cf12.3456`, `0015cf123456`) or an IPv4 address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who {
    Mac([u8; 6]),
    Addr(Ipv4Addr),
}

impl Who {
    pub fn parse(s: &str) -> Option<Who> {
        if let Ok(a) = s.parse::<Ipv4Addr>() {
            return Some(Who::Addr(a));
        }
        let hex: Vec<u8> = s.bytes().filter(u8::is_ascii_hexdigit).collect();
        let seps_ok = s
            .bytes()
            .filter(|c| !c.is_ascii_hexdigit())
            .all(|c| b":-.".contains(&c));
        if hex.len() != 12 || !seps_ok {
            return None;
        }
        let mut mac = [0u8; 6];
        for (b, pair) in mac.iter_mut().zip(hex.chunks_exact(2)) {
            *b = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
        }
        Some(Who::Mac(mac))
    }
}

/// The running query socket.
#[derive(Debug)]
pub struct QuerySocket {
    thread: std::thread::JoinHandle<()>,
}

impl QuerySocket {
    /// Binds `path` (a socket left there by a killed server is replaced) and answers with
    /// `answer` until `shutdown` is set.
    pub fn start(path: PathBuf, answer: Answer, shutdown: Arc<AtomicBool>) -> Result<QuerySocket> {
        let _ = std::fs::remove_file(&path);
        let listener =
            UnixListener::bind(&path).with_context(|| format!("binding {}", path.display()))?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
        listener.set_nonblocking(true)?;
        let thread = std::thread::Builder::new()
            .name("provd-query".into())
            .spawn(move || {
                while !shutdown.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            if let Err(e) = serve_one(stream, &*answer) {
                                tracing::debug!(error = %e, "query client");
                            }
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                            std::thread::sleep(Duration::from_millis(50));
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "query socket accept failed");
                            std::thread::sleep(Duration::from_millis(200));
                        }
                    }
                }
                let _ = std::fs::remove_file(&path);
            })?;
        Ok(QuerySocket { thread })
    }

    /// Waits for the thread (after the shutdown flag is set).
    pub fn join(self) {
        let _ = self.thread.join();
    }
}

fn serve_one(
    stream: UnixStream,
    answer: &(dyn Fn(&str) -> String + Send + Sync),
) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    let mut line = String::new();
    BufReader::new(std::io::Read::take(&stream, 512)).read_line(&mut line)?;
    let reply = answer(line.trim_end());
    let mut out = std::io::BufWriter::new(&stream);
    out.write_all(reply.as_bytes())?;
    if !reply.is_empty() && !reply.ends_with('\n') {
        out.write_all(b"\n")?;
    }
    out.flush()
}

/// Asks the server whose lease directory is `lease_dir`; an `{"error": ...}` reply is an error.
pub fn ask(lease_dir: &Path, request: &str) -> Result<String> {
    let path = socket_path(lease_dir);
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
    fn devices_in_any_spelling() {
        let mac = Some(Who::Mac([0, 0x15, 0xcf, 0x12, 0x34, 0x56]));
        for s in [
            "00:15:cf:12:34:56",
            "00-15-CF-12-34-56",
            "0015.cf12.3456",
            "0015cf123456",
        ] {
            assert_eq!(Who::parse(s), mac, "{s}");
        }
        assert_eq!(
            Who::parse("10.1.0.5"),
            Some(Who::Addr(Ipv4Addr::new(10, 1, 0, 5)))
        );
        for bad in [
            "00:15:cf:12:34",
            "00:15:cf:12:34:5g",
            "zz0015cf123456",
            "00/15/cf/12/34/56",
            "",
        ] {
            assert_eq!(Who::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn error_json_is_json() {
        let e = error_json("a\"b\\c\n\u{1}é");
        let back: serde_json::Value = serde_json::from_str(&e).unwrap();
        assert_eq!(
            back["error"], "a\"b\\c\n\u{1}é",
            "escapes survive a real JSON parser"
        );
    }

    #[test]
    fn asks_and_answers_over_the_socket() {
        let dir = std::env::temp_dir().join(format!("provd-query-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let answer: Answer = Arc::new(|line: &str| match line {
            "ping" => "{\"pong\":1}".into(),
            other => error_json(format!("unknown request: {other}")),
        });
        let q = QuerySocket::start(socket_path(&dir), answer, Arc::clone(&stop)).unwrap();
        assert_eq!(ask(&dir, "ping").unwrap(), "{\"pong\":1}\n");
        let e = ask(&dir, "nope").unwrap_err().to_string();
        assert!(e.contains("unknown request: nope"), "{e}");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(socket_path(&dir))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        stop.store(true, Ordering::Relaxed);
        q.join();
        assert!(!socket_path(&dir).exists(), "removed at stop");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
