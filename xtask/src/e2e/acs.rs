//! The `acs` suite: provd's TR-069 ACS against real CWMP peers, all inside one network
//! namespace of its own (loopback only): `provd-cpe-sim` devices (real CWMP over HTTP/1.1 with
//! digest and cookies, driven by a genieacs-sim dump of a real device), curl posting the
//! sample envelopes, python3's http.server serving firmware images, and xmllint validating
//! every envelope provd emitted against the BBF schemas.
//!
//! Judged on what the peers saw (the simulator's JSON log lines: events, requests, statuses,
//! connection requests received, bytes downloaded), what curl got back, and provd's task API.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use provd_rig::{Child, Netns, Provd};
use serde_json::Value;

use super::{Args, Scenarios};

const TEMPLATE: &str = include_str!("../../../tests/e2e/acs/provd.toml.in");
const API: &str = "http://127.0.0.1:7557";
const ACS: &str = "http://127.0.0.1:7547/";
const USER: &str = "cpe";
const PASS: &str = "cpe-secret";
const CR_USER: &str = "acs";
const CR_PASS: &str = "cr-secret";
const FW_VERSION: &str = "2.2.0";
/// The data model's product class and OUI (tests/data/cwmp/datamodels, a Huawei BM632w).
const OUI_PC: &str = "202BC1-BM632w";
const ROOT: &str = "InternetGatewayDevice.";

/// Fields drop in order: the processes first, then their namespace.
pub struct Suite {
    provd: Mutex<Provd>,
    _http: Child,
    sim_bin: PathBuf,
    dir: PathBuf,
    model: PathBuf,
    xsd: PathBuf,
    samples: PathBuf,
    fw_size: usize,
    /// An operator token: the task API takes the `/api/v1` bearer tokens.
    token: String,
    ns: Netns,
}

pub fn run(args: &Args) -> Result<()> {
    let scenarios: Scenarios<Suite> = vec![
        ("curl_samples", curl_samples),
        ("https_session", https_session),
        ("bootstrap_and_boot", bootstrap_and_boot),
        ("digest_auth", digest_auth),
        ("gpv_spv_and_more", gpv_spv_and_more),
        ("move_acs_url", move_acs_url),
        ("download_transfer_complete", download_transfer_complete),
        ("connection_requests", connection_requests),
        ("value_change", value_change),
        ("preset", preset),
        ("firmware_campaign", firmware_campaign),
        ("bad_input", bad_input),
        ("restart_keeps_state", restart_keeps_state),
        (
            "kill9_keeps_acknowledged_tasks",
            kill9_keeps_acknowledged_tasks,
        ),
        ("xmllint_every_envelope", xmllint_every_envelope),
    ];
    let bins = super::prepare(
        args,
        &scenarios,
        &["curl", "xmllint", "python3", "openssl"],
        &["provd", "provd-cpe-sim"],
    )?;
    let root = bins.root;
    let dir = std::env::temp_dir().join(format!("provd-e2e-acs-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("www"))?;
    // Firmware: the first line names the version the simulated device then runs.
    let mut fw = format!("VERSION={FW_VERSION}\n").into_bytes();
    fw.extend((0..200_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8));
    std::fs::write(dir.join("www/fw-2.2.0.img"), &fw)?;
    // The HTTPS listener's certificate: self-signed for 127.0.0.1, made by openssl.
    provd_rig::cmd::run(
        Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-days",
                "2",
            ])
            .args([
                "-subj",
                "/CN=127.0.0.1",
                "-addext",
                "subjectAltName=IP:127.0.0.1",
                "-keyout",
            ])
            .arg(dir.join("acs.key"))
            .arg("-out")
            .arg(dir.join("acs.crt")),
        Duration::from_secs(30),
    )?;
    let mut provd = Provd::new(bins.provd, &dir)
        .stop_grace(Duration::from_secs(15))
        .env("RUST_BACKTRACE", "1")
        .write_config(
            &TEMPLATE
                .replace("@DIR@", &dir.display().to_string())
                .replace("@FW_SIZE@", &fw.len().to_string()),
        )?;
    let ns = Netns::new("acs")?;
    provd.start(&ns).context("provd did not become ready")?;
    let mut c = ns.command("python3");
    c.args([
        "-m",
        "http.server",
        "8080",
        "--bind",
        "127.0.0.1",
        "--directory",
    ])
    .arg(dir.join("www"));
    let http = Child::spawn("http-server", c, &dir)?;
    let token = super::api::create_token(&ns, &provd, &dir, "e2e-acs", "operator")?;
    let suite = Suite {
        token,
        ns,
        provd: Mutex::new(provd),
        _http: http,
        sim_bin: root.join("target/release/provd-cpe-sim"),
        dir: dir.clone(),
        model: root.join("tests/data/cwmp/datamodels/genieacs-sim_data_model_202BC1-BM632w.csv"),
        xsd: root.join("tests/data/cwmp/xsd"),
        samples: root.join("tests/data/cwmp/samples"),
        fw_size: fw.len(),
    };
    // The firmware server must be up before a device fetches from it.
    wait_until(Duration::from_secs(10), "the firmware HTTP server", || {
        Ok(suite
            .curl(&[
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "http://127.0.0.1:8080/fw-2.2.0.img",
            ])?
            .trim()
            == "200")
    })?;
    super::run_scenarios(
        "acs",
        "provd ACS vs provd-cpe-sim, curl, xmllint",
        &suite,
        &scenarios,
        args,
    )
}

fn wait_until(timeout: Duration, what: &str, mut f: impl FnMut() -> Result<bool>) -> Result<()> {
    let deadline = Instant::now() + timeout;
    let mut last_err = None;
    while Instant::now() < deadline {
        match f() {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(e) => last_err = Some(e),
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    match last_err {
        Some(e) => bail!("timed out waiting for {what} (last error: {e:#})"),
        None => bail!("timed out waiting for {what}"),
    }
}

impl Suite {
    fn curl(&self, args: &[&str]) -> Result<String> {
        let mut c = self.ns.command("curl");
        c.args(["--max-time", "10"]).args(args);
        provd_rig::cmd::run(&mut c, Duration::from_secs(15))
    }

    /// The task API: (status, JSON).
    fn api(&self, method: &str, path: &str, body: Option<&str>) -> Result<(u16, Value)> {
        let url = format!("{API}{path}");
        let mut args = vec![
            "-s",
            "-X",
            method,
            "-w",
            "\n%{http_code}",
            "-H",
            "Content-Type: application/json",
        ];
        let auth = format!("Authorization: Bearer {}", self.token);
        args.extend(["-H", &auth]);
        if let Some(b) = body {
            args.extend(["--data-binary", b]);
        }
        args.push(&url);
        let out = self.curl(&args)?;
        let (json, code) = out.rsplit_once('\n').context("curl output")?;
        let v = if json.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(json).with_context(|| format!("{method} {path}: {json}"))?
        };
        Ok((code.trim().parse()?, v))
    }

    fn device(&self, id: &str) -> Result<Value> {
        let (code, v) = self.api("GET", &format!("/api/devices/{id}"), None)?;
        ensure!(code == 200, "GET device {id}: {code} {v}");
        Ok(v)
    }

    fn queue(&self, id: &str, task: Value) -> Result<u64> {
        let (code, v) = self.api(
            "POST",
            &format!("/api/devices/{id}/tasks"),
            Some(&task.to_string()),
        )?;
        ensure!(code == 200, "queue {task} for {id}: {code} {v}");
        v["task"].as_u64().context("task id")
    }

    /// Waits for a task to finish; returns its record.
    fn task_done(&self, n: u64) -> Result<Value> {
        let mut out = Value::Null;
        wait_until(
            Duration::from_secs(30),
            &format!("task {n} to finish"),
            || {
                let (_, v) = self.api("GET", &format!("/api/tasks/{n}"), None)?;
                let s = v["state"].as_str().unwrap_or("");
                out = v.clone();
                Ok(!matches!(s, "queued" | "sent"))
            },
        )?;
        Ok(out)
    }

    fn connection_request(&self, id: &str, udp: bool) -> Result<(u16, Value)> {
        let q = if udp { "?udp=1" } else { "" };
        self.api(
            "POST",
            &format!("/api/devices/{id}/connection-request{q}"),
            None,
        )
    }

    /// Starts simulated devices: serials PREFIX0000.., connection-request ports from `port`.
    fn sim(
        &self,
        dir: &Path,
        prefix: &str,
        count: u32,
        port: u16,
        extra: &[&str],
    ) -> Result<Child> {
        let mut c = self.ns.command(&self.sim_bin);
        c.args(["run", "--acs", ACS, "--model"])
            .arg(&self.model)
            .args(["--count", &count.to_string(), "--serial-prefix", prefix])
            .args([
                "--acs-user",
                USER,
                "--acs-pass",
                PASS,
                "--cr-user",
                CR_USER,
                "--cr-pass",
                CR_PASS,
            ])
            .args(["--cr-port", &port.to_string(), "--seconds", "120"])
            .args(extra);
        Child::spawn(&format!("sim-{prefix}"), c, dir)
    }

    fn check_alive(&self) -> Result<()> {
        self.provd
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .check_alive()
    }
}

/// The simulator's JSON lines.
fn lines(sim: &Child) -> Vec<Value> {
    sim.stdout_text()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn sessions(sim: &Child, device: &str) -> Vec<Value> {
    lines(sim)
        .into_iter()
        .filter(|l| l["event"] == "session" && l["device"] == device)
        .collect()
}

fn strs(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn wait_sessions(sim: &Child, device: &str, n: usize, secs: u64) -> Result<Vec<Value>> {
    let mut s = Vec::new();
    wait_until(
        Duration::from_secs(secs),
        &format!("{n} session(s) of {device}"),
        || {
            s = sessions(sim, device);
            Ok(s.len() >= n)
        },
    )
    .with_context(|| {
        format!(
            "simulator said: {}",
            provd_rig::child::tail(&sim.stdout_text(), 8)
        )
    })?;
    Ok(s)
}

fn id(serial: &str) -> String {
    format!("{OUI_PC}-{serial}")
}

// ---------------------------------------------------------------------------------------------

/// curl posts the sample envelopes with digest and a cookie jar: Inform, TransferComplete,
/// empty POST, 204 — and a cwmp-1-0 Inform is answered in cwmp-1-0.
fn curl_samples(s: &Suite, dir: &Path) -> Result<()> {
    curl_session(s, dir, ACS, &[])?;
    let d = s.device("0015CF-EMTA1-SN0015CF123456")?;
    ensure!(d["software_version"] == "2.1.0", "{d}");
    ensure!(d["cwmp"] == "1.0", "the last Inform was cwmp-1-0: {d}");
    Ok(())
}

/// The same over HTTPS (provd-web's rustls), curl checking the certificate.
fn https_session(s: &Suite, dir: &Path) -> Result<()> {
    let ca = s.dir.join("acs.crt");
    curl_session(
        s,
        dir,
        "https://127.0.0.1:7443/",
        &["--cacert", ca.to_str().context("path")?],
    )
}

fn curl_session(s: &Suite, dir: &Path, url: &str, extra: &[&str]) -> Result<()> {
    for (ns_from, ns_to) in [("cwmp-1-2", "cwmp-1-2"), ("cwmp-1-2", "cwmp-1-0")] {
        let jar = dir.join(format!("jar-{ns_to}"));
        let jar = jar.to_str().context("path")?;
        let file = |name: &str| -> Result<PathBuf> {
            let text = std::fs::read_to_string(s.samples.join(name))?.replace(ns_from, ns_to);
            let p = dir.join(format!("{ns_to}-{name}"));
            std::fs::write(&p, text)?;
            Ok(p)
        };
        // Credentials on the Inform only: the session cookie carries the rest, as for a CPE.
        // (curl's digest would first probe with an empty POST, which in CWMP ends a session.)
        let post = |body: Option<&Path>, auth: bool| -> Result<(u16, String)> {
            let data = body.map_or("".to_owned(), |p| format!("@{}", p.display()));
            let user = format!("{USER}:{PASS}");
            let mut args = vec!["-s", "-c", jar, "-b", jar];
            args.extend(extra);
            if auth {
                args.extend(["--digest", "-u", &user]);
            }
            args.extend([
                "-H",
                "Content-Type: text/xml; charset=\"utf-8\"",
                "-X",
                "POST",
                "--data-binary",
                &data,
                "-w",
                "\n%{http_code}",
                url,
            ]);
            let out = s.curl(&args)?;
            let (b, c) = out.rsplit_once('\n').context("curl output")?;
            Ok((c.trim().parse()?, b.to_owned()))
        };
        let (code, body) = post(Some(&file("01_inform.xml")?), true)?;
        ensure!(code == 200, "Inform: HTTP {code}");
        ensure!(
            body.contains("<cwmp:InformResponse><MaxEnvelopes>1</MaxEnvelopes>"),
            "not an InformResponse: {body}"
        );
        ensure!(
            body.contains(">4f1c2e01</cwmp:ID>"),
            "the ID is not echoed: {body}"
        );
        ensure!(
            body.contains(&format!("urn:dslforum-org:{ns_to}")),
            "not answered in {ns_to}: {body}"
        );
        let (code, body) = post(Some(&file("07_transfer_complete.xml")?), false)?;
        ensure!(
            code == 200 && body.contains("<cwmp:TransferCompleteResponse/>"),
            "TransferComplete: {code} {body}"
        );
        ensure!(
            body.contains(">5a9d0003</cwmp:ID>"),
            "TransferComplete ID not echoed: {body}"
        );
        let (code, body) = post(None, false)?;
        ensure!(
            code == 204 && body.is_empty(),
            "empty POST: {code} {body:?}"
        );
    }
    Ok(())
}

/// A device's first session carries 0 BOOTSTRAP + 1 BOOT (in cwmp-1-0, answered in kind);
/// after a Reboot task it comes back with 1 BOOT + M Reboot and the command key.
fn bootstrap_and_boot(s: &Suite, dir: &Path) -> Result<()> {
    let sim = s.sim(dir, "BOOT", 1, 21000, &["--cwmp", "0", "--periodic", "600"])?;
    let dev = id("BOOT0000");
    let first = wait_sessions(&sim, &dev, 1, 20)?;
    ensure!(
        strs(&first[0]["events"]) == ["0 BOOTSTRAP", "1 BOOT"],
        "{}",
        first[0]
    );
    ensure!(first[0]["cwmp"] == "1.0", "{}", first[0]);
    let statuses: Vec<u64> = first[0]["statuses"]
        .as_array()
        .context("statuses")?
        .iter()
        .filter_map(Value::as_u64)
        .collect();
    ensure!(
        statuses == [401, 200, 204],
        "Inform (challenged, then answered), empty POST, 204: {statuses:?}"
    );
    let d = s.device(&dev)?;
    let codes: Vec<String> = d["events"]
        .as_array()
        .context("events")?
        .iter()
        .filter_map(|e| e["code"].as_str().map(str::to_owned))
        .collect();
    ensure!(
        codes.contains(&"0 BOOTSTRAP".to_owned()) && codes.contains(&"1 BOOT".to_owned()),
        "{codes:?}"
    );
    ensure!(d["cwmp"] == "1.0", "{d}");
    let t = s.queue(
        &dev,
        serde_json::json!({"method": "Reboot", "command_key": "reboot-e2e"}),
    )?;
    let (code, v) = s.connection_request(&dev, false)?;
    ensure!(code == 200, "connection request: {code} {v}");
    let t = s.task_done(t)?;
    ensure!(t["state"] == "done", "{t}");
    let all = wait_sessions(&sim, &dev, 3, 20)?;
    ensure!(strs(&all[1]["requests"]) == ["Reboot"], "{}", all[1]);
    ensure!(
        strs(&all[2]["events"]) == ["1 BOOT", "M Reboot"],
        "{}",
        all[2]
    );
    wait_until(
        Duration::from_secs(5),
        "M Reboot in the device's history",
        || {
            let d = s.device(&dev)?;
            Ok(d["events"].as_array().is_some_and(|e| {
                e.iter()
                    .any(|e| e["code"] == "M Reboot" && e["detail"] == "reboot-e2e")
            }))
        },
    )
}

/// Digest: a device with the wrong password is refused and never filed; a replayed
/// Authorization (same nonce and nc) is refused; per-device credentials work, and credentials
/// bound to one device are refused (fault 8001) for another.
fn digest_auth(s: &Suite, dir: &Path) -> Result<()> {
    let mut c = s.ns.command(&s.sim_bin);
    c.args(["run", "--acs", ACS, "--model"])
        .arg(&s.model)
        .args([
            "--serial-prefix",
            "BADPW",
            "--acs-user",
            USER,
            "--acs-pass",
            "wrong",
            "--cr-port",
            "21100",
            "--seconds",
            "20",
        ]);
    let sim = Child::spawn("sim-badpw", c, dir)?;
    wait_until(
        Duration::from_secs(15),
        "the simulator to report refusal",
        || Ok(lines(&sim).iter().any(|l| l["event"] == "auth_refused")),
    )?;
    let (code, _) = s.api("GET", &format!("/api/devices/{}", id("BADPW0000")), None)?;
    ensure!(
        code == 404,
        "a device that failed authentication was filed ({code})"
    );
    // Replay: capture a challenge, answer it once (accepted), then send the same header again.
    let inform = s.samples.join("01_inform.xml");
    let head = s.curl(&[
        "-s",
        "-i",
        "-X",
        "POST",
        "--data-binary",
        &format!("@{}", inform.display()),
        ACS,
    ])?;
    let ch = head
        .lines()
        .find_map(|l| {
            l.strip_prefix("www-authenticate: ")
                .filter(|v| v.contains("MD5"))
        })
        .context("no MD5 challenge")?
        .trim()
        .to_owned();
    let authz = provd_acs::auth::authorize(&ch, USER, PASS, "POST", "/", 1, "e2ecnonce")
        .context("authorize")?;
    let send = || -> Result<String> {
        s.curl(&[
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-H",
            &format!("Authorization: {authz}"),
            "-X",
            "POST",
            "--data-binary",
            &format!("@{}", inform.display()),
            ACS,
        ])
    };
    ensure!(
        send()? == "200",
        "a fresh digest answer (MD5, RFC 2617 style) was refused"
    );
    ensure!(send()? == "401", "a replayed digest answer was accepted");
    let wrong = s.curl(&[
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "--digest",
        "-u",
        &format!("{USER}:nope"),
        "-X",
        "POST",
        "--data-binary",
        &format!("@{}", inform.display()),
        ACS,
    ])?;
    ensure!(wrong == "401", "wrong password: HTTP {wrong}");
    let special = s.curl(&[
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "--digest",
        "-u",
        "special-cpe:special-secret",
        "-X",
        "POST",
        "--data-binary",
        &format!("@{}", inform.display()),
        ACS,
    ])?;
    ensure!(special == "200", "per-device credentials: HTTP {special}");
    // Credentials bound to another device: authenticated, but the Inform is refused (8001).
    let bound = s.curl(&[
        "-s",
        "--digest",
        "-u",
        "bound-cpe:bound-secret",
        "-X",
        "POST",
        "--data-binary",
        &format!("@{}", inform.display()),
        ACS,
    ])?;
    ensure!(
        bound.contains("<FaultCode>8001</FaultCode>"),
        "credentials bound to another device: {bound}"
    );
    let (_, st) = s.api("GET", "/api/stats", None)?;
    ensure!(st["auth_failures"].as_u64().unwrap_or(0) >= 2, "{st}");
    Ok(())
}

/// GPV (partial path), SPV (then read back), SPV of a read-only parameter (9003 with 9008),
/// GPN, AddObject/DeleteObject, attributes, ScheduleInform, GetRPCMethods.
fn gpv_spv_and_more(s: &Suite, dir: &Path) -> Result<()> {
    let sim = s.sim(dir, "GPV", 1, 21200, &["--periodic", "600"])?;
    let dev = id("GPV0000");
    wait_sessions(&sim, &dev, 1, 20)?;
    let gpv = s.queue(&dev, serde_json::json!({"method": "GetParameterValues", "names": [format!("{ROOT}DeviceInfo.SoftwareVersion"), format!("{ROOT}ManagementServer.")]}))?;
    let spv = s.queue(&dev, serde_json::json!({"method": "SetParameterValues", "values": [{"name": format!("{ROOT}ManagementServer.PeriodicInformInterval"), "value": 1234}], "parameter_key": "e2e-1"}))?;
    let bad = s.queue(&dev, serde_json::json!({"method": "SetParameterValues", "values": [{"name": format!("{ROOT}DeviceInfo.SoftwareVersion"), "value": "hacked"}]}))?;
    let gpv2 = s.queue(&dev, serde_json::json!({"method": "GetParameterValues", "names": [format!("{ROOT}ManagementServer.PeriodicInformInterval"), format!("{ROOT}ManagementServer.ParameterKey")]}))?;
    let gpn = s.queue(&dev, serde_json::json!({"method": "GetParameterNames", "path": format!("{ROOT}ManagementServer."), "next_level": true}))?;
    let add = s.queue(
        &dev,
        serde_json::json!({"method": "AddObject", "object_name": format!("{ROOT}WANDevice.")}),
    )?;
    let spa = s.queue(&dev, serde_json::json!({"method": "SetParameterAttributes", "parameters": [{"name": format!("{ROOT}DeviceInfo.UpTime"), "notification": 2}]}))?;
    let gpa = s.queue(&dev, serde_json::json!({"method": "GetParameterAttributes", "names": [format!("{ROOT}DeviceInfo.UpTime")]}))?;
    let rpc = s.queue(&dev, serde_json::json!({"method": "GetRPCMethods"}))?;
    let sched = s.queue(&dev, serde_json::json!({"method": "ScheduleInform", "delay_seconds": 1, "command_key": "sched-e2e"}))?;
    let (code, v) = s.connection_request(&dev, false)?;
    ensure!(code == 200, "connection request: {code} {v}");
    let r = s.task_done(gpv)?;
    ensure!(r["state"] == "done", "{r}");
    ensure!(
        r["result"][format!("{ROOT}DeviceInfo.SoftwareVersion")] == "V100R001IRQC56B017",
        "{r}"
    );
    ensure!(
        r["result"][format!("{ROOT}ManagementServer.URL")] == ACS,
        "partial path: {r}"
    );
    let r = s.task_done(spv)?;
    ensure!(r["state"] == "done" && r["result"]["status"] == 0, "{r}");
    let r = s.task_done(bad)?;
    ensure!(r["state"] == "fault" && r["fault"] == 9003, "{r}");
    ensure!(
        r["result"]["parameters"][0]["fault"] == 9008,
        "per-parameter fault: {r}"
    );
    let r = s.task_done(gpv2)?;
    ensure!(
        r["result"][format!("{ROOT}ManagementServer.PeriodicInformInterval")] == "1234",
        "{r}"
    );
    ensure!(
        r["result"][format!("{ROOT}ManagementServer.ParameterKey")] == "e2e-1",
        "{r}"
    );
    let r = s.task_done(gpn)?;
    ensure!(
        r["result"][format!("{ROOT}ManagementServer.URL")] == true,
        "{r}"
    );
    ensure!(
        r["result"][format!("{ROOT}ManagementServer.ConnectionRequestURL")] == false,
        "{r}"
    );
    let r = s.task_done(add)?;
    let n = r["result"]["instance_number"]
        .as_u64()
        .context(format!("AddObject: {r}"))?;
    let del = s.queue(&dev, serde_json::json!({"method": "DeleteObject", "object_name": format!("{ROOT}WANDevice.{n}.")}))?;
    ensure!(s.task_done(spa)?["state"] == "done");
    let r = s.task_done(gpa)?;
    ensure!(
        r["result"][format!("{ROOT}DeviceInfo.UpTime")]["notification"] == 2,
        "{r}"
    );
    let r = s.task_done(rpc)?;
    ensure!(r["state"] == "done", "{r}");
    ensure!(s.task_done(sched)?["state"] == "done");
    // The scheduled inform comes by itself; DeleteObject rides on it.
    let r = s.task_done(del)?;
    ensure!(r["state"] == "done" && r["result"]["status"] == 0, "{r}");
    let all = wait_sessions(&sim, &dev, 3, 20)?;
    ensure!(
        strs(&all[2]["events"]) == ["3 SCHEDULED", "M ScheduleInform"],
        "{}",
        all[2]
    );
    ensure!(strs(&all[2]["requests"]) == ["DeleteObject"], "{}", all[2]);
    // The parameter cache shows what the device reported and what was set.
    let d = s.device(&dev)?;
    ensure!(
        d["parameters"][format!("{ROOT}ManagementServer.PeriodicInformInterval")]["value"]
            == "1234",
        "{}",
        d["parameters"]
    );
    ensure!(
        d["parameters"][format!("{ROOT}ManagementServer.URL")]["writable"] == true,
        "{}",
        d["parameters"]
    );
    Ok(())
}

/// SPV of ManagementServer.URL to the second listener: the device's next Inform (a bootstrap,
/// as TR-069 requires after an ACS URL change) arrives there.
fn move_acs_url(s: &Suite, dir: &Path) -> Result<()> {
    let sim = s.sim(dir, "MOVE", 1, 21300, &["--periodic", "600"])?;
    let dev = id("MOVE0000");
    wait_sessions(&sim, &dev, 1, 20)?;
    let new = "http://127.0.0.1:7548/moved";
    let t = s.queue(&dev, serde_json::json!({"method": "SetParameterValues", "values": [{"name": format!("{ROOT}ManagementServer.URL"), "value": new}]}))?;
    s.connection_request(&dev, false)?;
    ensure!(s.task_done(t)?["state"] == "done");
    let all = wait_sessions(&sim, &dev, 3, 20)?;
    ensure!(
        all[2]["url"] == new && strs(&all[2]["events"]) == ["0 BOOTSTRAP"],
        "{}",
        all[2]
    );
    let d = s.device(&dev)?;
    ensure!(d["last_port"] == 7548 && d["last_path"] == "/moved", "{d}");
    Ok(())
}

/// Download of a firmware file over HTTP: the device fetches it (exact size), reboots, and
/// reports TransferComplete (fault 0) in its next session; it then runs the new version.
fn download_transfer_complete(s: &Suite, dir: &Path) -> Result<()> {
    let sim = s.sim(dir, "DL", 1, 21400, &["--periodic", "600"])?;
    let dev = id("DL0000");
    wait_sessions(&sim, &dev, 1, 20)?;
    let t = s.queue(&dev, serde_json::json!({"method": "Download", "url": "http://127.0.0.1:8080/fw-2.2.0.img", "file_size": s.fw_size, "command_key": "dl-e2e"}))?;
    s.connection_request(&dev, false)?;
    ensure!(
        s.task_done(t)?["result"]["status"] == 1,
        "DownloadResponse status 1 (later)"
    );
    let all = wait_sessions(&sim, &dev, 3, 30)?;
    ensure!(
        strs(&all[2]["events"]) == ["1 BOOT", "7 TRANSFER COMPLETE", "M Download"],
        "{}",
        all[2]
    );
    let dl = lines(&sim)
        .into_iter()
        .find(|l| l["event"] == "download")
        .context("no download")?;
    ensure!(dl["bytes"].as_u64() == Some(s.fw_size as u64), "{dl}");
    wait_until(
        Duration::from_secs(5),
        "the TransferComplete in the record",
        || {
            let d = s.device(&dev)?;
            Ok(d["software_version"] == FW_VERSION
                && d["events"].as_array().is_some_and(|e| {
                    e.iter()
                        .any(|e| e["code"] == "TransferComplete" && e["detail"] == "dl-e2e fault 0")
                }))
        },
    )
}

/// HTTP (digest) and UDP (TR-111, address learned over STUN) connection requests wake the
/// device; a second request within the per-device interval is refused (429).
fn connection_requests(s: &Suite, dir: &Path) -> Result<()> {
    let sim = s.sim(
        dir,
        "CR",
        1,
        21500,
        &[
            "--periodic",
            "600",
            "--udp-port",
            "21550",
            "--stun",
            "127.0.0.1:3478",
        ],
    )?;
    let dev = id("CR0000");
    wait_sessions(&sim, &dev, 1, 20)?;
    let (code, v) = s.connection_request(&dev, false)?;
    ensure!(
        code == 200 && v["status"] == 200,
        "HTTP connection request: {code} {v}"
    );
    let (code, _) = s.connection_request(&dev, false)?;
    ensure!(code == 429, "a second request within 2 s: {code}");
    let all = wait_sessions(&sim, &dev, 2, 10)?;
    ensure!(
        strs(&all[1]["events"]) == ["6 CONNECTION REQUEST"],
        "{}",
        all[1]
    );
    ensure!(
        lines(&sim)
            .iter()
            .any(|l| l["event"] == "connection_request" && l["kind"] == "http")
    );
    // UDP: provd knows the address from the STUN binding the device keeps alive.
    wait_until(Duration::from_secs(10), "a STUN binding", || {
        Ok(s.api("GET", "/api/stats", None)?.1["stun_bindings"]
            .as_u64()
            .unwrap_or(0)
            >= 1)
    })?;
    std::thread::sleep(Duration::from_millis(2100));
    let (code, v) = s.connection_request(&dev, true)?;
    ensure!(
        code == 200 && v["sent"] == "udp",
        "UDP connection request: {code} {v}"
    );
    let all = wait_sessions(&sim, &dev, 3, 10)?;
    ensure!(
        strs(&all[2]["events"]) == ["6 CONNECTION REQUEST"],
        "{}",
        all[2]
    );
    let udp: Vec<_> = lines(&sim)
        .into_iter()
        .filter(|l| l["event"] == "connection_request" && l["kind"] == "udp")
        .collect();
    ensure!(
        udp.len() == 1,
        "the device accepts each signed message once, whatever the repeats: {udp:?}"
    );
    ensure!(
        !lines(&sim)
            .iter()
            .any(|l| l["event"] == "connection_request_refused"),
        "a signature was refused"
    );
    // A task queued with ?connection_request wakes the device at once: it informs with
    // "6 CONNECTION REQUEST" and takes the task, long before its 600 s periodic inform.
    let (code, v) = s.api(
        "POST",
        &format!("/api/devices/{dev}/tasks?connection_request=bogus"),
        Some(&serde_json::json!({"method": "GetRPCMethods"}).to_string()),
    )?;
    ensure!(code == 400, "an unknown wake-up kind: {code} {v}");
    std::thread::sleep(Duration::from_millis(2100));
    let task = serde_json::json!({"method": "GetParameterValues", "names": [format!("{ROOT}DeviceInfo.UpTime")]});
    let (code, v) = s.api(
        "POST",
        &format!("/api/devices/{dev}/tasks?connection_request=http"),
        Some(&task.to_string()),
    )?;
    ensure!(
        code == 200 && v["connection_request"]["sent"] == "http",
        "task with a connection request: {code} {v}"
    );
    let done = s.task_done(v["task"].as_u64().context("task id")?)?;
    ensure!(done["state"] == "done", "the woken device's task: {done}");
    let all = wait_sessions(&sim, &dev, 4, 10)?;
    ensure!(
        strs(&all[3]["events"]) == ["6 CONNECTION REQUEST"],
        "{}",
        all[3]
    );
    // Within the per-device interval the task is still queued; the answer says why no
    // request went.
    let (code, v) = s.api(
        "POST",
        &format!("/api/devices/{dev}/tasks?connection_request=http"),
        Some(&serde_json::json!({"method": "GetRPCMethods"}).to_string()),
    )?;
    ensure!(
        code == 200 && v["task"].is_u64() && v["connection_request"]["code"] == 429,
        "a second wake-up within 2 s: {code} {v}"
    );
    Ok(())
}

/// The ACS turns on active notification for the Wi-Fi SSID; when the user changes it on the
/// device, the device informs at once with "4 VALUE CHANGE" and the new value, which provd
/// records (event history, parameter cache, counter).
fn value_change(s: &Suite, dir: &Path) -> Result<()> {
    let ssid = format!("{ROOT}LANDevice.1.WLANConfiguration.1.SSID");
    let change = format!("{ssid}=provd-e2e");
    let sim = s.sim(
        dir,
        "VC",
        1,
        21650,
        &[
            "--periodic",
            "600",
            "--change",
            &change,
            "--change-after",
            "4",
        ],
    )?;
    let dev = id("VC0000");
    wait_sessions(&sim, &dev, 1, 20)?;
    let (_, before) = s.api("GET", "/api/stats", None)?;
    let t = s.queue(&dev, serde_json::json!({"method": "SetParameterAttributes", "parameters": [{"name": ssid, "notification": 2}]}))?;
    s.connection_request(&dev, false)?;
    ensure!(s.task_done(t)?["state"] == "done");
    let all = wait_sessions(&sim, &dev, 3, 20)?;
    ensure!(strs(&all[2]["events"]) == ["4 VALUE CHANGE"], "{}", all[2]);
    wait_until(Duration::from_secs(5), "the new SSID in the record", || {
        let d = s.device(&dev)?;
        Ok(d["parameters"][&ssid]["value"] == "provd-e2e"
            && d["events"]
                .as_array()
                .is_some_and(|e| e.iter().any(|e| e["code"] == "4 VALUE CHANGE")))
    })?;
    let (_, after) = s.api("GET", "/api/stats", None)?;
    ensure!(
        after["value_changes"].as_u64() > before["value_changes"].as_u64(),
        "{before} -> {after}"
    );
    Ok(())
}

/// A preset (serial PRE*, periodic inform interval 2 s) is applied at the first session and
/// not again: the following periodic sessions (every 2 s, which proves it took) carry no SPV.
fn preset(s: &Suite, dir: &Path) -> Result<()> {
    let sim = s.sim(dir, "PRE", 1, 21600, &["--periodic", "600"])?;
    let dev = id("PRE0000");
    let all = wait_sessions(&sim, &dev, 4, 30)?;
    ensure!(
        strs(&all[0]["requests"]) == ["SetParameterValues"],
        "{}",
        all[0]
    );
    for later in &all[1..] {
        ensure!(
            strs(&later["requests"]).is_empty() && strs(&later["events"]) == ["2 PERIODIC"],
            "{later}"
        );
    }
    let d = s.device(&dev)?;
    ensure!(
        d["parameters"][format!("{ROOT}ManagementServer.PeriodicInformInterval")]["value"] == "2",
        "{}",
        d["parameters"]
    );
    Ok(())
}

/// Two campaigns: three devices upgraded one at a time (max_concurrent 1), and one whose image
/// is missing counted as failed from its TransferComplete fault.
fn firmware_campaign(s: &Suite, dir: &Path) -> Result<()> {
    let _ok = s.sim(dir, "CAMP", 3, 21700, &["--periodic", "1"])?;
    let _bad = s.sim(dir, "BROKEN", 1, 21750, &["--periodic", "1"])?;
    let mut last = Value::Null;
    wait_until(Duration::from_secs(60), "both campaigns to finish", || {
        let (_, v) = s.api("GET", "/api/campaigns", None)?;
        last = v.clone();
        let c = |name: &str| {
            v.as_array()
                .and_then(|a| a.iter().find(|c| c["name"] == name))
                .cloned()
                .unwrap_or_default()
        };
        Ok(c("fw-2.2.0")["succeeded"] == 3 && c("fw-missing")["failed"] == 1)
    })
    .with_context(|| format!("campaigns: {last}"))?;
    let camp = last
        .as_array()
        .and_then(|a| a.iter().find(|c| c["name"] == "fw-2.2.0"))
        .context("campaign")?;
    ensure!(
        camp["peak"] == 1 && camp["failed"] == 0 && camp["in_progress"] == 0,
        "{camp}"
    );
    for i in 0..3 {
        let d = s.device(&id(&format!("CAMP{i:04}")))?;
        ensure!(d["software_version"] == FW_VERSION, "{d}");
    }
    Ok(())
}

/// Malformed XML, an entity bomb, deep nesting, a huge attribute, a wrong namespace, an
/// oversized body and out-of-order messages: each a CWMP fault or a 4xx, and provd still
/// serves a normal session afterwards.
fn bad_input(s: &Suite, dir: &Path) -> Result<()> {
    let env = |body: &str| {
        format!(
            r#"<soap-env:Envelope xmlns:soap-env="http://schemas.xmlsoap.org/soap/envelope/" xmlns:cwmp="urn:dslforum-org:cwmp-1-2"><soap-env:Body>{body}</soap-env:Body></soap-env:Envelope>"#
        )
    };
    let bomb = format!(
        "<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\">{}]>{}",
        (1..10)
            .map(|i| format!(
                "<!ENTITY lol{i} \"{}\">",
                format!(
                    "&lol{};",
                    if i == 1 {
                        String::new()
                    } else {
                        (i - 1).to_string()
                    }
                )
                .repeat(10)
            ))
            .collect::<String>(),
        env("<cwmp:Inform>&lol9;</cwmp:Inform>")
    );
    let cases: Vec<(&str, String, &str)> = vec![
        ("malformed", "<soap-env:Envelope xmlns:soap-env=\"http://schemas.xmlsoap.org/soap/envelope/\"><soap-env:Body><cwmp:Inform".into(), "8003"),
        ("entity bomb", bomb, "8003"),
        ("deep nesting", env(&format!("{}{}", "<a>".repeat(5000), "</a>".repeat(5000))), "8003"),
        ("huge attribute", env(&format!("<cwmp:Inform x=\"{}\"/>", "A".repeat(200_000))), "8003"),
        ("wrong namespace", std::fs::read_to_string(s.samples.join("01_inform.xml"))?.replace("cwmp-1-2", "cwmp-7-7"), "8003"),
        ("unknown method", env("<cwmp:Frobnicate/>"), "8000"),
        ("out of order: TransferComplete first", std::fs::read_to_string(s.samples.join("07_transfer_complete.xml"))?, "8003"),
        ("out of order: empty POST first", String::new(), "400"),
        ("oversized body", "x".repeat(5 << 20), "413"),
    ];
    for (name, body, expect) in cases {
        let f = dir.join("body.xml");
        std::fs::write(&f, &body)?;
        let out = s.curl(&[
            "-s",
            "--digest",
            "-u",
            &format!("{USER}:{PASS}"),
            "-X",
            "POST",
            "--data-binary",
            &format!("@{}", f.display()),
            "-w",
            "\n%{http_code}",
            ACS,
        ])?;
        let (resp, code) = out.rsplit_once('\n').context("curl output")?;
        let ok = match expect {
            "400" | "413" => code.trim() == expect,
            fault => {
                code.trim() == "200" && resp.contains(&format!("<FaultCode>{fault}</FaultCode>"))
            }
        };
        ensure!(
            ok,
            "{name}: expected {expect}, got HTTP {code}: {}",
            resp.chars().take(300).collect::<String>()
        );
        s.check_alive()?;
    }
    let (_, st) = s.api("GET", "/api/stats", None)?;
    ensure!(
        st["bad_envelopes"].as_u64().unwrap_or(0) >= 6
            && st["out_of_order"].as_u64().unwrap_or(0) >= 2,
        "{st}"
    );
    curl_samples(s, dir).context("a normal session after the bad input")
}

/// Device records, queued tasks and campaign tallies survive a restart.
fn restart_keeps_state(s: &Suite, dir: &Path) -> Result<()> {
    let dev = id("GPV0000");
    let t = s.queue(
        &dev,
        serde_json::json!({"method": "Reboot", "command_key": "after-restart"}),
    )?;
    let (_, before) = s.api("GET", "/api/stats", None)?;
    let (_, camps) = s.api("GET", "/api/campaigns", None)?;
    {
        let mut p = s.provd.lock().unwrap_or_else(|e| e.into_inner());
        let (st, _) = p.terminate()?.context("provd is not running")?;
        ensure!(
            st.success(),
            "provd stopped with {st}: {}",
            p.stderr_tail(10)
        );
        p.set_log_dir(dir);
        p.restart().context("provd did not become ready")?;
    }
    let (_, after) = s.api("GET", "/api/stats", None)?;
    ensure!(
        after["devices"] == before["devices"],
        "devices before {} after {}",
        before["devices"],
        after["devices"]
    );
    let d = s.device(&dev)?;
    ensure!(
        d["queued"]
            .as_array()
            .is_some_and(|q| q.iter().any(|x| x["method"] == "Reboot")),
        "the queued Reboot (task {t}) is gone: {d}"
    );
    ensure!(d["informs"].as_u64().unwrap_or(0) >= 3, "{d}");
    let (_, camps2) = s.api("GET", "/api/campaigns", None)?;
    for (a, b) in camps
        .as_array()
        .into_iter()
        .flatten()
        .zip(camps2.as_array().into_iter().flatten())
    {
        ensure!(
            a["succeeded"] == b["succeeded"] && a["failed"] == b["failed"],
            "{a} vs {b}"
        );
    }
    Ok(())
}

/// A task the API acknowledged survives `kill -9` before any snapshot: provd journals it, synced,
/// before it answers. Right after a snapshot, one task and one bulk task are queued, provd is
/// killed, and after the restart the device's queue is what it was.
fn kill9_keeps_acknowledged_tasks(s: &Suite, dir: &Path) -> Result<()> {
    let dev = id("GPV0000");
    let (code, v) = s.api("POST", "/api/snapshot", None)?;
    ensure!(code == 200, "snapshot: {code} {v}");
    s.queue(
        &dev,
        serde_json::json!({"method": "Reboot", "command_key": "after-kill9"}),
    )?;
    let bulk = serde_json::json!({
        "filter": {"serial": "GPV000?"},
        "task": {"method": "GetParameterValues", "names": [format!("{ROOT}DeviceInfo.UpTime")]},
    });
    let (code, v) = s.api("POST", "/api/tasks", Some(&bulk.to_string()))?;
    ensure!(
        code == 200 && v["queued"].as_u64().unwrap_or(0) >= 1,
        "bulk task: {code} {v}"
    );
    let queued = |d: &Value| -> Vec<String> {
        d["queued"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|t| t["method"].as_str().unwrap_or("?").to_string())
            .collect()
    };
    let before = queued(&s.device(&dev)?);
    ensure!(
        before.iter().filter(|m| *m == "Reboot").count() >= 1
            && before.iter().any(|m| m == "GetParameterValues"),
        "queued before the kill: {before:?}"
    );
    {
        let mut p = s.provd.lock().unwrap_or_else(|e| e.into_inner());
        p.kill9()?;
        p.set_log_dir(dir);
        p.restart().context("provd did not become ready")?;
    }
    let after = queued(&s.device(&dev)?);
    ensure!(
        after == before,
        "queue before kill -9: {before:?}, after the restart: {after:?}"
    );
    Ok(())
}

/// Every envelope provd emitted in this run is valid against the BBF CWMP schema of its
/// namespace (and the minimal SOAP envelope schema in tests/data/cwmp/xsd).
fn xmllint_every_envelope(s: &Suite, _dir: &Path) -> Result<()> {
    let mut by_ns: std::collections::BTreeMap<String, Vec<PathBuf>> = Default::default();
    for e in std::fs::read_dir(s.dir.join("dump"))? {
        let p = e?.path();
        let text = std::fs::read_to_string(&p)?;
        let ns = ["cwmp-1-0", "cwmp-1-1", "cwmp-1-2"]
            .into_iter()
            .find(|n| text.contains(&format!("urn:dslforum-org:{n}\"")))
            .context(format!("{}: no known namespace", p.display()))?;
        by_ns.entry(ns.to_owned()).or_default().push(p);
    }
    let total: usize = by_ns.values().map(Vec::len).sum();
    ensure!(
        total >= 50 && by_ns.contains_key("cwmp-1-0") && by_ns.contains_key("cwmp-1-2"),
        "{total} envelopes in {:?}",
        by_ns.keys()
    );
    for (ns, files) in &by_ns {
        for chunk in files.chunks(200) {
            let out = std::process::Command::new("xmllint")
                .arg("--noout")
                .arg("--schema")
                .arg(s.xsd.join(format!("envelope-{ns}.xsd")))
                .args(chunk)
                .output()?;
            ensure!(
                out.status.success(),
                "xmllint: {}",
                provd_rig::child::tail(&String::from_utf8_lossy(&out.stderr), 10)
            );
        }
    }
    eprintln!(
        "e2e: xmllint validated {total} envelopes ({})",
        by_ns
            .iter()
            .map(|(k, v)| format!("{k}: {}", v.len()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}
