//! The web roles' findings (issue 18, items 4 and 7): the ACS's namespace bombs, Digest brute
//! force and mass registration, and the ACS task API without a token.
//!
//! Each scenario starts provd in a network namespace of its own (loopback only) with the ACS
//! (digest, the shared CPE credentials), its task API on 127.0.0.1:7557 and the HTTP profile
//! server on 127.0.0.1:8080. CWMP goes over raw HTTP/1.1 from std sockets (one keep-alive
//! connection where the review used one), the Digest answers made by `provd_acs::auth`'s
//! client half; profile GETs and the task API go through curl.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use provd_rig::{Netns, Provd, cmd};
use serde_json::Value;

use super::{Ctx, Scenarios};

pub fn scenarios() -> Scenarios<Ctx> {
    vec![
        (
            "acs-namespace-bombs",
            namespace_bombs as fn(&Ctx, &Path) -> Result<()>,
        ),
        ("acs-digest-brute-force", digest_brute_force),
        ("acs-mass-registration", mass_registration),
        ("acs-task-api-token", task_api_token),
    ]
}

const USER: &str = "cpe";
const PASS: &str = "cpe-secret";
const ACS: &str = "127.0.0.1:7547";
const TASK_API: &str = "http://127.0.0.1:7557";
const PROFILE_URL: &str = "http://127.0.0.1:8080/fv/0015cf123456.cfg";
const INFORM: &str = include_str!("../../../../tests/data/cwmp/samples/01_inform.xml");

const CONFIG: &str = r#"# provd config of the hardening suite's web scenarios: loopback of the scenario's namespace.
[server]
lease_dir = "@DIR@/state"
bind = "127.0.0.1"
server_id = "127.0.0.1"

[[shared_network]]
name = "lo"
interfaces = ["127.0.0.1"]
  [[shared_network.subnet]]
  prefix = "127.0.0.0/24"
    [[shared_network.subnet.pool]]
    start = "127.0.0.100"
    end = "127.0.0.110"

[http]
bind = "127.0.0.1"
port = 8080

[[class]]
name = "fv"
match = "FlyingVoice*"
[class.profile]
path = "fv/{mac}.cfg"
template = "fv.cfg.j2"
format = "kvp"
# The timed GETs come from a host without a lease: profile-enforce covers that rule.
enforce = false

[[subscriber]]
mac = "00:15:cf:12:34:56"

[acs]
bind = "127.0.0.1"
port = 7547
auth = "digest"
realm = "provd-e2e"
username = "cpe"
password = "cpe-secret"
admin_bind = "127.0.0.1"
admin_port = 7557
"#;

fn note(msg: impl AsRef<str>) {
    eprintln!("  {}", msg.as_ref());
}

/// provd in a namespace of its own, with the config above.
fn start(ctx: &Ctx, dir: &Path) -> Result<(Provd, Netns)> {
    std::fs::write(
        dir.join("fv.cfg.j2"),
        "# profile of {{ mac }}\nSIP=sip.example.net\n",
    )?;
    let mut provd = Provd::new(&ctx.provd, dir)
        .stop_grace(Duration::from_secs(15))
        .write_config(&CONFIG.replace("@DIR@", &dir.display().to_string()))?;
    let ns = Netns::new("hweb")?;
    provd.start(&ns).context("provd did not become ready")?;
    Ok((provd, ns))
}

// ---------------------------------------------------------------------------------------------
// Raw HTTP/1.1 over one connection, and the Digest client.

struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn challenge(&self) -> Option<String> {
        self.headers
            .iter()
            .find(|(k, v)| k.eq_ignore_ascii_case("www-authenticate") && v.starts_with("Digest "))
            .map(|(_, v)| v.clone())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

struct Conn {
    s: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    fn open(from: Option<SocketAddr>, timeout: Duration) -> Result<Conn> {
        let to: SocketAddr = ACS.parse()?;
        let s = match from {
            None => TcpStream::connect_timeout(&to, Duration::from_secs(5))?,
            Some(local) => {
                // std has no bind-then-connect; libc does it for a second loopback source.
                // SAFETY: socket(2) takes no pointers; the result is checked below.
                let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0) };
                ensure!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
                // SAFETY: a fresh socket we own from here on.
                let s: TcpStream = unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) };
                let (SocketAddr::V4(l), SocketAddr::V4(t)) = (local, to) else {
                    bail!("IPv4 only");
                };
                let sa = |a: std::net::SocketAddrV4| libc::sockaddr_in {
                    sin_family: libc::AF_INET as libc::sa_family_t,
                    sin_port: a.port().to_be(),
                    sin_addr: libc::in_addr {
                        s_addr: u32::from(*a.ip()).to_be(),
                    },
                    sin_zero: [0; 8],
                };
                let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
                let (la, ta) = (sa(l), sa(t));
                let fd = std::os::fd::AsRawFd::as_raw_fd(&s);
                // SAFETY: valid sockaddr_in values and their length.
                let rc = unsafe { libc::bind(fd, (&la as *const libc::sockaddr_in).cast(), len) };
                ensure!(rc == 0, "bind: {}", std::io::Error::last_os_error());
                // SAFETY: as above.
                let rc =
                    unsafe { libc::connect(fd, (&ta as *const libc::sockaddr_in).cast(), len) };
                ensure!(rc == 0, "connect: {}", std::io::Error::last_os_error());
                s
            }
        };
        s.set_read_timeout(Some(timeout))?;
        s.set_write_timeout(Some(timeout))?;
        s.set_nodelay(true)?;
        Ok(Conn { s, buf: Vec::new() })
    }

    /// One POST on `/`, and its answer.
    fn post(&mut self, authorization: Option<&str>, body: &[u8]) -> Result<Answer> {
        let mut head = format!(
            "POST / HTTP/1.1\r\nHost: {ACS}\r\nContent-Type: text/xml; charset=\"utf-8\"\r\nContent-Length: {}\r\n",
            body.len()
        );
        if let Some(a) = authorization {
            head.push_str(&format!("Authorization: {a}\r\n"));
        }
        head.push_str("\r\n");
        self.s.write_all(head.as_bytes())?;
        self.s.write_all(body)?;
        self.read_answer()
    }

    fn read_answer(&mut self) -> Result<Answer> {
        let mut chunk = [0u8; 16384];
        let end = loop {
            if let Some(p) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break p + 4;
            }
            let n = self
                .s
                .read(&mut chunk)
                .context("reading the answer's head")?;
            ensure!(n > 0, "the ACS closed the connection");
            self.buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&self.buf[..end]).into_owned();
        let mut lines = head.split("\r\n");
        let status: u16 = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("bad status line in {head:?}"))?;
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
            .collect();
        let mut a = Answer {
            status,
            headers,
            body: Vec::new(),
        };
        ensure!(
            a.header("transfer-encoding").is_none(),
            "chunked answers are not read here"
        );
        let len: usize = a
            .header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        self.buf.drain(..end);
        while self.buf.len() < len {
            let n = self
                .s
                .read(&mut chunk)
                .context("reading the answer's body")?;
            ensure!(n > 0, "the ACS closed the connection mid-body");
            self.buf.extend_from_slice(&chunk[..n]);
        }
        a.body = self.buf.drain(..len).collect();
        Ok(a)
    }
}

/// A Digest client on one connection: the challenge of the last 401, and its nonce count.
struct Digest {
    challenge: String,
    nc: u32,
}

impl Digest {
    /// Asks for a challenge (a POST without credentials).
    fn new(c: &mut Conn) -> Result<Digest> {
        let a = c.post(None, b"")?;
        ensure!(
            a.status == 401,
            "a POST without credentials got {}",
            a.status
        );
        Ok(Digest {
            challenge: a.challenge().context("401 without a Digest challenge")?,
            nc: 0,
        })
    }

    fn authorization(&mut self, pass: &str) -> Result<String> {
        self.nc += 1;
        provd_acs::auth::authorize(
            &self.challenge,
            USER,
            pass,
            "POST",
            "/",
            self.nc,
            &format!("c{:x}", self.nc),
        )
        .context("a challenge we cannot answer")
    }
}

// ---------------------------------------------------------------------------------------------
// The task API and profile GETs, through curl in the namespace.

/// `curl` in `ns`: status and body (and time in seconds) of one request.
fn curl(ns: &str, args: &[&str], timeout: Duration) -> Result<(u16, String, f64)> {
    let mut c = provd_rig::netns::command_in(ns, "curl");
    c.args(["-sS", "--max-time", &timeout.as_secs().to_string()])
        .args(["-w", "\n%{http_code} %{time_total}"])
        .args(args);
    let out = cmd::output_timeout(&mut c, timeout + Duration::from_secs(5))?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, tail) = text.rsplit_once('\n').unwrap_or(("", &text));
    let mut t = tail.split(' ');
    let status = t.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    let secs = t.next().and_then(|s| s.parse().ok()).unwrap_or(f64::NAN);
    Ok((status, body.to_owned(), secs))
}

/// The ACS's counters from `/api/stats` (with `token` when given).
fn acs_stats(ns: &str, token: Option<&str>) -> Result<Value> {
    let auth = token.map(|t| format!("Authorization: Bearer {t}"));
    let mut args = vec![format!("{TASK_API}/api/stats")];
    if let Some(a) = &auth {
        args.extend(["-H".to_owned(), a.clone()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (status, body, _) = curl(ns, &args, Duration::from_secs(10))?;
    ensure!(status == 200, "GET /api/stats: {status} {body}");
    Ok(serde_json::from_str(&body)?)
}

fn counter(stats: &Value, name: &str) -> u64 {
    stats.get(name).and_then(Value::as_u64).unwrap_or(0)
}

/// A token for the task API, when this provd has `provd token create`; `None` on a provd
/// whose task API takes none (the unfixed one).
fn token(ns: &Netns, provd: &Provd, dir: &Path) -> Option<String> {
    crate::e2e::api::create_token(ns, provd, dir, "e2e-hardening", "operator").ok()
}

// ---------------------------------------------------------------------------------------------
// Item 4: namespace bombs.

/// The review's bomb: 150,000 namespace declarations on the Envelope (3.8 MB here).
fn bomb() -> Vec<u8> {
    let mut s = String::from(
        "<soap-env:Envelope xmlns:soap-env=\"http://schemas.xmlsoap.org/soap/envelope/\" \
         xmlns:cwmp=\"urn:dslforum-org:cwmp-1-2\"",
    );
    for i in 0..150_000 {
        s.push_str(&format!(" xmlns:n{i}=\"urn:{i}\""));
    }
    s.push_str("><soap-env:Body><cwmp:Inform/></soap-env:Body></soap-env:Envelope>");
    s.into_bytes()
}

/// Three authenticated 150,000-declaration POSTs at once, again and again, while a plain
/// HTTP profile GET is timed: every GET must take under 100 ms (the review: 15.8 s), every
/// bomb be refused with fault 8004 and counted.
fn namespace_bombs(ctx: &Ctx, dir: &Path) -> Result<()> {
    const SENDERS: usize = 3;
    const WINDOW: Duration = Duration::from_secs(4);
    const MAX_BOMBS: usize = 100;
    const BOMB_TIMEOUT: Duration = Duration::from_secs(60);
    let (provd, ns) = start(ctx, dir)?;
    let bomb = Arc::new(bomb());
    ensure!(bomb.len() < 4 << 20, "the bomb is {} bytes", bomb.len());
    let (status, _, quiet) = curl(
        ns.name(),
        &[PROFILE_URL, "-o", "/dev/null"],
        Duration::from_secs(10),
    )?;
    note(format!(
        "bomb {} bytes; a profile GET alone: {status} in {:.1} ms",
        bomb.len(),
        quiet * 1e3
    ));
    let stop = Arc::new(AtomicBool::new(false));
    let name = ns.name().to_owned();
    let s2 = Arc::clone(&stop);
    let (bombs, gets) = ns.run_in(move || {
        let senders: Vec<_> = (0..SENDERS)
            .map(|_| {
                let (bomb, stop) = (Arc::clone(&bomb), Arc::clone(&s2));
                std::thread::spawn(move || -> Result<Vec<(f64, u16, bool)>> {
                    // One keep-alive connection per sender, as a CPE holds it: the first
                    // bomb opens the session (authenticated), the next ones go on in it.
                    // (A fresh connection per bomb could reuse the source port of an
                    // earlier one and be taken for its session.)
                    let mut out = Vec::new();
                    let mut c = Conn::open(None, BOMB_TIMEOUT)?;
                    let mut d = Digest::new(&mut c)?;
                    while !stop.load(Ordering::Relaxed) && out.len() < MAX_BOMBS {
                        let auth = d.authorization(PASS)?;
                        let t = Instant::now();
                        // No answer within the timeout: status 0 (the unfixed ACS).
                        let (status, fault) = match c.post(Some(&auth), &bomb) {
                            Ok(a) => (a.status, a.text().contains("8004")),
                            Err(_) => (0, false),
                        };
                        out.push((t.elapsed().as_secs_f64(), status, fault));
                        if status == 0 {
                            break;
                        }
                    }
                    Ok(out)
                })
            })
            .collect();
        // Let the first bombs get on the wire, then time GETs for the window.
        std::thread::sleep(Duration::from_millis(150));
        let t = Instant::now();
        let mut gets = Vec::new();
        while t.elapsed() < WINDOW && gets.len() < 200 {
            let (status, _, secs) = curl(
                &name,
                &[PROFILE_URL, "-o", "/dev/null"],
                Duration::from_secs(60),
            )?;
            gets.push((status, secs));
        }
        s2.store(true, Ordering::Relaxed);
        let mut bombs = Vec::new();
        for s in senders {
            bombs.extend(
                s.join()
                    .map_err(|_| anyhow::anyhow!("a bomb sender panicked"))??,
            );
        }
        Ok((bombs, gets))
    })?;
    let worst_get = gets.iter().map(|g| g.1).fold(0.0, f64::max);
    let worst_bomb = bombs.iter().map(|b| b.0).fold(0.0, f64::max);
    // The unfixed ACS may still be parsing: its stats are then not to be had.
    let stats = acs_stats(ns.name(), token(&ns, &provd, dir).as_deref()).unwrap_or_default();
    note(format!(
        "{} bombs sent, {} answered (slowest {:.3} s, {} with fault 8004); {} profile GETs \
         during them, slowest {:.1} ms; envelopes_over_limit={}",
        bombs.len(),
        bombs.iter().filter(|b| b.1 != 0).count(),
        worst_bomb,
        bombs.iter().filter(|b| b.2).count(),
        gets.len(),
        worst_get * 1e3,
        counter(&stats, "envelopes_over_limit"),
    ));
    ensure!(
        gets.iter().all(|g| g.0 != 0),
        "a profile GET got no answer within 60 s: {gets:?}"
    );
    ensure!(
        worst_get < 0.1,
        "a profile GET took {:.1} ms while the ACS parsed namespace bombs (limit 100 ms)",
        worst_get * 1e3
    );
    ensure!(
        bombs.len() >= SENDERS,
        "only {} bombs answered",
        bombs.len()
    );
    ensure!(
        bombs.iter().all(|b| b.2),
        "bombs not refused with fault 8004: {:?}",
        bombs.iter().filter(|b| !b.2).take(3).collect::<Vec<_>>()
    );
    ensure!(
        counter(&stats, "envelopes_over_limit") >= bombs.len() as u64,
        "envelopes_over_limit does not count the bombs: {stats}"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Item 4: Digest brute force.

/// Wrong passwords as fast as one connection goes, for 3.5 s: the guesses the ACS evaluates
/// (attempts minus `auth_throttled`) must stay under 10 a second (the review: 3,651/s), and
/// the right password right after must be refused (the review: accepted). Another source
/// with the right password is not locked out by this one's guesses.
fn digest_brute_force(ctx: &Ctx, dir: &Path) -> Result<()> {
    // Not a whole number of seconds: the lockouts after the free guesses run 1 s, 2 s, 4 s, so
    // one ends about 3 s in, and a right password sent just then would rightly be checked.
    // At 3.5 s the source is well inside its 4 s lockout.
    const WINDOW: Duration = Duration::from_millis(3500);
    let (provd, ns) = start(ctx, dir)?;
    let (attempts, secs, right_after, other_source) = ns.run_in(|| {
        let mut c = Conn::open(None, Duration::from_secs(10))?;
        let mut d = Digest::new(&mut c)?;
        let t = Instant::now();
        let mut attempts = 0u64;
        while t.elapsed() < WINDOW && attempts < 50_000 {
            let auth = d.authorization(&format!("guess-{attempts}"))?;
            let a = c.post(Some(&auth), b"")?;
            ensure!(
                a.status == 401,
                "wrong password {attempts} got {}",
                a.status
            );
            if let Some(ch) = a.challenge() {
                d = Digest {
                    challenge: ch,
                    nc: 0,
                };
            }
            attempts += 1;
        }
        let secs = t.elapsed().as_secs_f64();
        let auth = d.authorization(PASS)?;
        let right_after = c.post(Some(&auth), INFORM.as_bytes())?.status;
        let mut o = Conn::open(Some("127.0.0.2:0".parse()?), Duration::from_secs(10))?;
        let mut od = Digest::new(&mut o)?;
        let auth = od.authorization(PASS)?;
        let other = o.post(Some(&auth), INFORM.as_bytes())?.status;
        Ok((attempts, secs, right_after, other))
    })?;
    let stats = acs_stats(ns.name(), token(&ns, &provd, dir).as_deref())?;
    let throttled = counter(&stats, "auth_throttled");
    let evaluated = attempts.saturating_sub(throttled);
    let rate = evaluated as f64 / secs;
    note(format!(
        "{attempts} wrong guesses in {secs:.1} s from one connection, {throttled} refused \
         unchecked: {evaluated} evaluated ({rate:.1}/s); the right password right after: \
         {right_after}; from another source: {other_source}"
    ));
    ensure!(
        rate < 10.0,
        "{rate:.0} guesses/s evaluated from one connection (limit 10/s)"
    );
    ensure!(
        right_after == 401,
        "the right password right after the brute force got {right_after}, not 401"
    );
    ensure!(
        other_source == 200,
        "another source with the right password got {other_source}: one source's guesses \
         locked everyone out"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Item 4: mass registration.

/// 2,000 Informs of made-up devices as fast as one connection goes with the shared
/// credentials: no more devices may be created than the default burst and rate allow
/// (1,000 + 100/s; the review: 2,000 in 0.8 s), and the rest are told to retry (fault 8005).
fn mass_registration(ctx: &Ctx, dir: &Path) -> Result<()> {
    const DEVICES: usize = 2_000;
    const BURST: f64 = 1_000.0;
    const RATE: f64 = 100.0;
    let (provd, ns) = start(ctx, dir)?;
    let (accepted, retry, other, secs) = ns.run_in(|| {
        let mut c = Conn::open(None, Duration::from_secs(10))?;
        let mut d = Digest::new(&mut c)?;
        let t = Instant::now();
        let (mut accepted, mut retry, mut other) = (0u64, 0u64, 0u64);
        for i in 0..DEVICES {
            if t.elapsed() > Duration::from_secs(60) {
                break;
            }
            let inform = INFORM.replace(
                "<SerialNumber>SN0015CF123456</SerialNumber>",
                &format!("<SerialNumber>MASS{i:06}</SerialNumber>"),
            );
            let auth = d.authorization(PASS)?;
            let a = c.post(Some(&auth), inform.as_bytes())?;
            let text = a.text();
            if a.status == 200 && text.contains("InformResponse") {
                accepted += 1;
                let end = c.post(None, b"")?;
                ensure!(end.status == 204, "the empty POST got {}", end.status);
            } else if text.contains("<FaultCode>8005</FaultCode>") {
                retry += 1;
            } else {
                other += 1;
            }
        }
        Ok((accepted, retry, other, t.elapsed().as_secs_f64()))
    })?;
    let stats = acs_stats(ns.name(), token(&ns, &provd, dir).as_deref())?;
    let devices = counter(&stats, "devices");
    let allowed = BURST + RATE * (secs.ceil() + 1.0);
    note(format!(
        "{DEVICES} Informs of new devices in {secs:.1} s: {accepted} accepted, {retry} told to \
         retry (8005), {other} other; the ACS holds {devices} devices (allowed {allowed:.0})"
    ));
    ensure!(
        (devices as f64) <= allowed && devices < DEVICES as u64,
        "{devices} new devices registered in {secs:.1} s (allowed {allowed:.0})"
    );
    ensure!(
        other == 0,
        "{other} Informs got neither an answer nor fault 8005"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Item 7: the task API's tokens.

/// A bulk FactoryReset on 127.0.0.1:7557 without a token must get 401 (the review: accepted);
/// with an operator token it is accepted and the audit log names the token.
fn task_api_token(ctx: &Ctx, dir: &Path) -> Result<()> {
    let (provd, ns) = start(ctx, dir)?;
    // One device for the reset to hit: a CWMP session of the sample Inform.
    ns.run_in(|| {
        let mut c = Conn::open(None, Duration::from_secs(10))?;
        let mut d = Digest::new(&mut c)?;
        let auth = d.authorization(PASS)?;
        let a = c.post(Some(&auth), INFORM.as_bytes())?;
        ensure!(a.status == 200, "the Inform got {}: {}", a.status, a.text());
        ensure!(c.post(None, b"")?.status == 204, "the empty POST");
        Ok(())
    })?;
    let task = r#"{"filter": {}, "task": {"method": "FactoryReset"}}"#;
    let post = |auth: Option<&str>| -> Result<(u16, String)> {
        let h = auth.map(|t| format!("Authorization: Bearer {t}"));
        let url = format!("{TASK_API}/api/tasks");
        let mut args = vec![
            url.as_str(),
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "--data",
            task,
        ];
        if let Some(h) = &h {
            args.extend(["-H", h.as_str()]);
        }
        let (s, b, _) = curl(ns.name(), &args, Duration::from_secs(10))?;
        Ok((s, b))
    };
    let (anon, body) = post(None)?;
    note(format!(
        "bulk FactoryReset without a token: {anon} {}",
        body.trim()
    ));
    let (bad, _) = post(Some("provd_not-a-token"))?;
    note(format!("with an unknown token: {bad}"));
    ensure!(
        anon == 401,
        "a bulk FactoryReset without a token got {anon}, not 401"
    );
    ensure!(bad == 401, "an unknown token got {bad}, not 401");
    let token = token(&ns, &provd, dir).context("provd token create failed")?;
    let (ok, body) = post(Some(&token))?;
    note(format!("with an operator token: {ok} {}", body.trim()));
    ensure!(ok == 200, "with a valid token: {ok} {body}");
    // The store's audit log (the embedded store in the lease directory), read by python3's
    // sqlite3 module, read-only.
    let db = dir.join("state/store.db");
    let script = "import sys, sqlite3\n\
        c = sqlite3.connect('file:' + sys.argv[1] + '?mode=ro', uri=True)\n\
        for r in c.execute(\"SELECT who, resource, key, after FROM audit \
        WHERE resource = 'acs_task_api'\"): print('|'.join(map(str, r)))\n";
    let rows = cmd::run(
        std::process::Command::new("python3")
            .args(["-c", script])
            .arg(&db),
        Duration::from_secs(10),
    )?;
    note(format!("audit: {}", rows.trim()));
    ensure!(
        rows.lines().any(
            |l| l.starts_with("token:e2e-hardening|acs_task_api|/api/tasks|")
                && l.contains("FactoryReset")
        ),
        "no audit entry names the token and the bulk FactoryReset"
    );
    ensure!(
        rows.lines().count() == 1,
        "the refused requests were audited too: {rows}"
    );
    Ok(())
}
