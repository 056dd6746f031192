//! The `ui` suite: the operators' web UI (`/ui/`, beside `/api/v1` on the `[api]` listener) in a
//! real browser, judged on what its pages show.
//!
//! One provd runs for the whole list in the rig's relayed topology (`[srv] provd ── [rly]
//! dhcrelay -a ── [cli] the cable modem`), plus a load namespace one hop behind the relay's
//! namespace (`[rly] ── [load] perfdhcp`, a relay agent at 198.18.4.2 with a pool of its own).
//! Its embedded store is seeded with 100,000 devices (`provd import devices`, before provd
//! starts) and then, over the API as the api suite does, classes of service gold and silver
//! (different rates, so the modem's file differs), a subscriber and the suite's modem, which
//! boots with dhclient (option 60 `docsis3.0`) through dhcrelay and fetches its file with
//! tftp-hpa.
//!
//! The browser: Debian's chromedriver (`/usr/bin/chromedriver`) in the server namespace, so
//! that Chromium reaches provd's 127.0.0.1 listener, driven with fantoccini from a thread that
//! entered the namespace ([`Netns::run_in`], a current-thread tokio runtime): every WebDriver
//! socket is in the namespace. Each scenario opens its own headless Chromium session with a
//! fresh profile in the run directory, and every Chromium process is killed by PID after it and
//! when the stack goes. Each page a scenario judges is screenshotted to
//! `target/ui-screens/<scenario>[-<page>].png`.
//!
//! The scenarios, in order (each one asserts on the page, against the DOM contract below):
//! login (redirect, `#token`, `#login-submit`, `#whoami`, a wrong token's `.flash.error`), the
//! dashboard under perfdhcp load (`[data-rate="dhcp"]` above zero within 10 s without a
//! reload, `#pools`), search by a MAC in another spelling (`#q` → `/ui/devices/<mac>`: `#lease`,
//! `#timeline tr[data-kind]`, `#file pre.decoded`, `.verdict[data-check]`), a tier change
//! (`select#tier-class`, `#tier-preview`, `#tier-diff .diff-del/.diff-add`, `#tier-save`,
//! `.flash.ok`, then the modem's next TFTP fetch carries silver's rate and the timeline shows
//! it), a template syntax error (`a[data-template]`, `textarea#template-text`,
//! `#template-problems .problem[data-line]`, `#template-save` → `.flash.error`, no new row in
//! `#template-versions`), read-only pages (no `[data-write]`, where the operator's have some)
//! and forged POSTs (a read-only session's cookie and CSRF token, an operator's without a good
//! CSRF token: 403), the audit page (`#audit`), and every other page (`h1`, no `.flash.error`,
//! the 100,000-device list paginates with `a#next`).
//!
//! A scenario that fails leaves the rest to fail fast only where they need what it built (the
//! stack); the UI scenarios do not depend on each other's pages, except that the audit one
//! looks for the tier change's entry.

use std::cell::RefCell;
use std::future::Future;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail, ensure};
use fantoccini::elements::Element;
use fantoccini::wd::TimeoutConfiguration;
use fantoccini::{Client, ClientBuilder, Locator};
use provd_rig::dhclient::Dhclient;
use provd_rig::netns::command_in;
use provd_rig::perfdhcp::{self, Load};
use provd_rig::topo::{CLIENT_IF, LOAD_GIADDR, LOAD_IF, PEER_IP, SERVER_IP};
use provd_rig::{Child, Netns, Provd, Topology, VethPair, cmd};
use serde_json::{Value, json};

use super::api::{Tlvs, http, items, wait_api_ready};
use super::{Args, Scenarios};

const PROVD_TEMPLATE: &str = include_str!("../../../tests/e2e/ui/provd.toml.in");
const CM_TEMPLATE: &str = include_str!("../../../tests/e2e/api/templates/cm.cfg.j2");
const MTA_TEMPLATE: &str = include_str!("../../../tests/e2e/api/templates/mta.cfg.j2");

/// Devices in the store besides the suite's own (`provd import devices` before provd starts).
const SEED_DEVICES: u32 = 100_000;
/// The seeded devices' MACs are `02:<salt>:<index>`.
const SEED_SALT: u8 = 0x5e;
/// The modem (cli0's MAC), and the spelling the search scenario types.
const CM_MAC: [u8; 6] = [0x00, 0x10, 0x95, 0xe2, 0xa0, 0x01];
const CM_MAC_OTHER_SPELLING: &str = "0010.95E2.A001";
/// The relayed subnet's pool, and the load generator's (see provd.toml.in).
const POOL: (Ipv4Addr, Ipv4Addr) = (
    Ipv4Addr::new(198, 18, 2, 100),
    Ipv4Addr::new(198, 18, 2, 200),
);
const LOAD_POOL_START: Ipv4Addr = Ipv4Addr::new(198, 18, 4, 10);
/// The relay's end of the load link: the load generator's router.
const LOAD_ROUTER: Ipv4Addr = Ipv4Addr::new(198, 18, 4, 1);
const LOAD_RELAY_IF: &str = "ld1";
/// The classes of service: gold at start, silver after the tier change (TLV 4.2 differs).
const GOLD_DOWN: u32 = 50_000_000;
const SILVER_DOWN: u32 = 100_000_000;
const SUB_MAX_CPE: u8 = 5;
/// The dashboard's load: perfdhcp, bounded by its own period.
const LOAD_SECS: u32 = 15;
const LOAD_RATE: u32 = 200;
const LOAD_CLIENTS: u32 = 200;
/// How soon the dashboard must show a DHCP rate above zero once the load starts.
const RATE_WITHIN: Duration = Duration::from_secs(10);

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
/// chromedriver's port on the server namespace's loopback.
const DRIVER_PORT: u16 = 9515;
/// The session cookie and the CSRF field the UI uses.
const SESSION_COOKIE: &str = "provd_session";

const READY_TIMEOUT: Duration = Duration::from_secs(60);
const BIND_TIMEOUT: Duration = Duration::from_secs(45);
const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);
/// A browser session's whole life (start, the scenario's pages, close).
const BROWSE_LIMIT: Duration = Duration::from_secs(120);
/// How long an element the page should show may take to appear (after a click, a refresh).
const SHOW: Duration = Duration::from_secs(10);

#[derive(Debug)]
pub struct Ctx {
    provd: PathBuf,
    screens: PathBuf,
    stack: RefCell<Option<Stack>>,
}

pub fn scenarios() -> Scenarios<Ctx> {
    vec![
        ("start", start as fn(&Ctx, &Path) -> Result<()>),
        ("provision", provision),
        ("login", login),
        ("dashboard", dashboard),
        ("search", search),
        ("tier-change", tier_change),
        ("template-error", template_error),
        ("read-only", read_only),
        ("audit", audit),
        ("pages", pages),
        ("stop", stop),
    ]
}

pub fn run(args: &Args) -> Result<()> {
    let scenarios = scenarios();
    let tools = [
        "ip",
        "dhclient",
        "dhcrelay",
        "tftp",
        "curl",
        "perfdhcp",
        CHROMEDRIVER,
        CHROMIUM,
    ];
    let bins = super::prepare(args, &scenarios, &tools, &["provd"])?;
    let screens = bins.root.join("target/ui-screens");
    std::fs::create_dir_all(&screens).with_context(|| screens.display().to_string())?;
    let ctx = Ctx {
        provd: bins.provd.clone(),
        screens,
        stack: RefCell::new(None),
    };
    let run_dir = std::env::temp_dir().join(format!("provd-e2e-{}", std::process::id()));
    let about = format!(
        "{SEED_DEVICES} seeded devices, chromium headless, screenshots in {}",
        ctx.screens.display()
    );
    let (passed, failed) = super::run_group("ui", &about, "", &ctx, &scenarios, args, &run_dir)?;
    drop(ctx.stack.borrow_mut().take());
    super::finish(&run_dir, passed, failed, args)
}

fn note(msg: impl AsRef<str>) {
    eprintln!("  {}", msg.as_ref());
}

/// Runs `f` on the stack `start` built; fails when it is not there.
fn with<T>(ctx: &Ctx, f: impl FnOnce(&mut Stack) -> Result<T>) -> Result<T> {
    let mut st = ctx.stack.borrow_mut();
    let s = st
        .as_mut()
        .context("the stack is down (an earlier scenario failed)")?;
    f(s)
}

// ---------------------------------------------------------------------------------------------
// The stack: topology (plus the load namespace), provd, dhcrelay, chromedriver, the modem.

#[derive(Debug, Clone, Default)]
struct Tokens {
    admin: String,
    operator: String,
    read_only: String,
}

/// The token names: what `#whoami` and the audit log show.
const ADMIN: &str = "ui-admin";
const OPERATOR: &str = "ui-operator";
const READER: &str = "ui-reader";

/// Field order is drop order: chromedriver, the clients, dhcrelay, provd, then the namespaces
/// (the topology holds the load namespace and its link too). [`Stack`]'s `Drop` kills the
/// browsers by PID before any of that.
#[derive(Debug)]
struct Stack {
    driver: Child,
    clients: Vec<Child>,
    relay: Child,
    provd: Provd,
    topo: Topology,
    dir: PathBuf,
    /// `http://127.0.0.1:8080`, from the `api ready` line.
    api: String,
    tokens: Tokens,
    cm_addr: Ipv4Addr,
    /// The device page's path as the search landed on it (`/ui/devices/<mac>`).
    device_path: Option<String>,
    /// Browser sessions opened so far (each gets a fresh profile directory).
    sessions: u32,
}

impl Drop for Stack {
    fn drop(&mut self) {
        kill_browsers(&self.topo.server);
    }
}

/// What a browser session needs from the stack, owned (it runs on the namespace's thread).
#[derive(Debug, Clone)]
struct Env {
    base: String,
    srv_ns: String,
    cli_ns: String,
    load_ns: String,
    dir: PathBuf,
    screens: PathBuf,
    tokens: Tokens,
    cm_addr: Ipv4Addr,
    device_path: Option<String>,
}

fn render_config(lease_dir: &Path, store: &str) -> String {
    PROVD_TEMPLATE
        .replace("@LEASE_DIR@", &lease_dir.to_string_lossy())
        .replace("@STORE@", store)
}

impl Stack {
    fn build(ctx: &Ctx, dir: &Path) -> Result<Stack> {
        let mut topo = Topology::relayed()?;
        topo.client()
            .ip(&[
                "link",
                "set",
                "dev",
                CLIENT_IF,
                "address",
                &provd_rig::fmt_mac(&CM_MAC),
            ])
            .context("setting the modem's MAC")?;
        // The load generator one hop behind the relay's namespace, which routes for it.
        let load = Netns::new("load")?;
        let link = VethPair::new(topo.relay(), LOAD_RELAY_IF, &load, LOAD_IF)?;
        link.a.add_addr(LOAD_ROUTER, 24)?;
        link.b.add_addr(LOAD_GIADDR, 24)?;
        link.wait_running(Duration::from_secs(5))?;
        load.ip(&["route", "add", "default", "via", &LOAD_ROUTER.to_string()])?;
        topo.server
            .ip(&["route", "add", "198.18.4.0/24", "via", &PEER_IP.to_string()])?;
        topo.links.push(link);
        topo.load = Some(load);

        let store_toml = format!(
            "[store]\nbackend = \"embedded\"\npath = \"{}\"\n",
            dir.join("leases/store.db").display()
        );
        std::fs::create_dir_all(dir.join("templates"))?;
        for (name, text) in [("cm.cfg.j2", CM_TEMPLATE), ("mta.cfg.j2", MTA_TEMPLATE)] {
            std::fs::write(dir.join("templates").join(name), text)?;
        }
        std::fs::create_dir_all(dir.join("tftp-root"))?;
        let p = Provd::new(&ctx.provd, dir)
            .numbered_label("provd-", 0)
            .ready_timeout(READY_TIMEOUT)
            .env("RUST_BACKTRACE", "1");
        let lease_dir = p.lease_dir()?;
        let mut provd = p.write_config(&render_config(&lease_dir, &store_toml))?;
        provd.check_config()?;
        crate::bench::tools::seed_store(provd.bin(), provd.config(), dir, SEED_DEVICES, SEED_SALT)?;
        provd.start(&topo.server)?;
        let api = wait_api_ready(&mut provd)?;
        let relay = super::start_dhcrelay(&topo, dir)?;
        let mut driver = topo.server.spawn(
            "chromedriver",
            CHROMEDRIVER,
            &[
                &format!("--port={DRIVER_PORT}"),
                &format!("--log-path={}", dir.join("chromedriver.log").display()),
            ],
            dir,
        )?;
        wait_driver(&topo.server, &mut driver)?;
        let mut s = Stack {
            driver,
            clients: Vec::new(),
            relay,
            provd,
            topo,
            dir: dir.to_path_buf(),
            api,
            tokens: Tokens::default(),
            cm_addr: Ipv4Addr::UNSPECIFIED,
            device_path: None,
            sessions: 0,
        };
        s.tokens = Tokens {
            admin: s.token(ADMIN, "admin")?,
            operator: s.token(OPERATOR, "operator")?,
            read_only: s.token(READER, "read-only")?,
        };
        Ok(s)
    }

    /// `provd token create` while serve runs: the secret it prints.
    fn token(&self, name: &str, role: &str) -> Result<String> {
        super::api::create_token(&self.topo.server, &self.provd, &self.dir, name, role)
    }

    /// An API request (curl in the server namespace) with the admin token that must answer
    /// 2xx: its JSON.
    fn api_ok(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value> {
        let url = format!("{}{path}", self.api);
        let r = http(
            &self.topo.server,
            method,
            &url,
            Some(&self.tokens.admin),
            body,
            &[],
        )?;
        ensure!(
            (200..300).contains(&r.status),
            "{method} {path}: {} {}",
            r.status,
            r.body.trim()
        );
        if r.body.trim().is_empty() {
            return Ok(Value::Null);
        }
        r.json()
    }

    fn env(&self, screens: &Path) -> Env {
        Env {
            base: self.api.clone(),
            srv_ns: self.topo.server.name().to_string(),
            cli_ns: self.topo.client().name().to_string(),
            load_ns: self.topo.load_ns().name().to_string(),
            dir: self.dir.clone(),
            screens: screens.to_path_buf(),
            tokens: self.tokens.clone(),
            cm_addr: self.cm_addr,
            device_path: self.device_path.clone(),
        }
    }

    /// Opens a headless Chromium session through chromedriver, runs `f` on it from a thread
    /// inside the server namespace (a current-thread runtime), closes the session whatever `f`
    /// returned (screenshot and page source of the failure kept in `dir`), and kills by PID any
    /// Chromium process left.
    fn browse<T, F, Fut>(&mut self, ctx: &Ctx, dir: &Path, label: &str, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(Page, Env) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T>> + 'static,
    {
        if let Some(st) = self.driver.try_wait()? {
            bail!("chromedriver exited ({st}): {}", self.driver.stderr_tail(5));
        }
        self.sessions += 1;
        let profile = self
            .dir
            .join(format!("chromium-profile-{}-{label}", self.sessions));
        let env = self.env(&ctx.screens);
        let fail_dir = dir.to_path_buf();
        let label = label.to_string();
        let result = self.topo.server.run_in(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("a current-thread tokio runtime")?;
            rt.block_on(session(profile, label, fail_dir, env, f))
        });
        kill_browsers(&self.topo.server);
        if result.is_err() {
            note(format!(
                "chromedriver log tail:\n{}",
                provd_rig::child::tail(
                    &std::fs::read_to_string(self.dir.join("chromedriver.log")).unwrap_or_default(),
                    8
                )
            ));
        }
        result
    }

    /// dhclient on `iface` with `extra` config lines; the address it bound.
    fn dhcp(&mut self, iface: &str, label: &str, extra: &str) -> Result<Ipv4Addr> {
        let dh = Dhclient::new(&self.dir.join(label), iface, None)?;
        let mut conf = std::fs::read_to_string(dh.conf())?;
        conf.push_str(extra);
        std::fs::write(dh.conf(), conf)?;
        let mut client = dh.start(self.topo.client(), label, &self.dir)?;
        let bound = dh
            .wait_event(&mut client, &["BOUND", "REBOOT"], 0, BIND_TIMEOUT)
            .with_context(|| {
                format!(
                    "dhcrelay stderr:\n{}\nprovd stderr:\n{}",
                    self.relay.stderr_tail(10),
                    self.provd.stderr_tail(10)
                )
            })?;
        self.clients.push(client);
        bound.addr.context("dhclient bound without an address")
    }
}

/// chromedriver's "started successfully" line, then its `/status` answering (bounded).
fn wait_driver(ns: &Netns, driver: &mut Child) -> Result<()> {
    let t = Instant::now();
    loop {
        if driver.stdout_text().contains("started successfully") {
            break;
        }
        if let Some(st) = driver.try_wait()? {
            bail!(
                "chromedriver exited ({st}): {}{}",
                driver.stdout_text(),
                driver.stderr_text()
            );
        }
        ensure!(
            t.elapsed() < Duration::from_secs(15),
            "chromedriver did not start within 15 s: {}",
            driver.stdout_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut c = ns.command("curl");
    c.args(["-s", "-S", "--max-time", "5"])
        .arg(format!("http://127.0.0.1:{DRIVER_PORT}/status"));
    let status = cmd::run(&mut c, Duration::from_secs(10))?;
    ensure!(
        status.contains("\"ready\""),
        "chromedriver /status: {status}"
    );
    Ok(())
}

/// Kills, by PID, every Chromium process in the server namespace (only this run's browsers can
/// be there: the namespace is the run's own).
fn kill_browsers(ns: &Netns) {
    for pid in ns.pids() {
        let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
        // The browser and its crash handler; not chromedriver, which lives in the same
        // directory and serves the next session.
        if exe.starts_with("/usr/lib/chromium")
            && matches!(
                exe.file_name().and_then(|n| n.to_str()),
                Some("chromium" | "chrome_crashpad_handler")
            )
        {
            // SAFETY: kill(2) with a PID read from the namespace just now; SIGKILL.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
    }
}

/// The Chromium capabilities: headless, no sandbox (root in a namespace), nothing that talks
/// to the outside, a fresh profile.
fn capabilities(profile: &Path) -> serde_json::Map<String, Value> {
    let args = [
        "--headless=new".to_string(),
        "--no-sandbox".into(),
        "--disable-gpu".into(),
        "--disable-quic".into(),
        "--no-first-run".into(),
        "--disable-background-networking".into(),
        "--disable-component-update".into(),
        "--disable-sync".into(),
        "--disable-dev-shm-usage".into(),
        "--window-size=1280,800".into(),
        format!("--user-data-dir={}", profile.display()),
    ];
    let caps = json!({
        "browserName": "chrome",
        "pageLoadStrategy": "normal",
        "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
    });
    match caps {
        Value::Object(m) => m,
        _ => unreachable!("a JSON object literal"),
    }
}

async fn session<T, F, Fut>(
    profile: PathBuf,
    label: String,
    fail_dir: PathBuf,
    env: Env,
    f: F,
) -> Result<T>
where
    F: FnOnce(Page, Env) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    std::fs::create_dir_all(&profile)?;
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let c = tokio::time::timeout(
        Duration::from_secs(30),
        ClientBuilder::new(connector)
            .capabilities(capabilities(&profile))
            .connect(&format!("http://127.0.0.1:{DRIVER_PORT}")),
    )
    .await
    .map_err(|_| anyhow!("chromedriver did not open a session within 30 s"))?
    .context("opening a Chromium session through chromedriver")?;
    let page = Page {
        c: c.clone(),
        base: env.base.clone(),
        screens: env.screens.clone(),
    };
    let r = async {
        page.c
            .update_timeouts(TimeoutConfiguration::new(
                Some(Duration::from_secs(10)),
                Some(Duration::from_secs(20)),
                Some(Duration::ZERO),
            ))
            .await?;
        match tokio::time::timeout(BROWSE_LIMIT, f(page, env)).await {
            Ok(r) => r,
            Err(_) => bail!("the browser session took longer than {BROWSE_LIMIT:?}"),
        }
    }
    .await;
    if r.is_err() {
        // What the browser showed when it failed, for the log.
        if let Ok(Ok(png)) = tokio::time::timeout(Duration::from_secs(10), c.screenshot()).await {
            let _ = std::fs::write(fail_dir.join(format!("{label}-failed.png")), png);
        }
        if let Ok(Ok(src)) = tokio::time::timeout(Duration::from_secs(10), c.source()).await {
            let _ = std::fs::write(fail_dir.join(format!("{label}-failed.html")), src);
        }
        if let Ok(Ok(u)) = tokio::time::timeout(Duration::from_secs(5), c.current_url()).await {
            note(format!("the browser was at {u} when it failed"));
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(10), c.close()).await;
    r
}

// ---------------------------------------------------------------------------------------------
// A page in the browser: navigation and what it shows.

struct Page {
    c: Client,
    base: String,
    screens: PathBuf,
}

impl Page {
    async fn goto(&self, path: &str) -> Result<()> {
        self.c
            .goto(&format!("{}{path}", self.base))
            .await
            .with_context(|| format!("opening {path}"))
    }

    /// The current URL's path (and query, if any).
    async fn path(&self) -> Result<String> {
        let u = self.c.current_url().await?;
        Ok(match u.query() {
            Some(q) => format!("{}?{q}", u.path()),
            None => u.path().to_string(),
        })
    }

    async fn find(&self, css: &str) -> Result<Element> {
        match self.c.find(Locator::Css(css)).await {
            Ok(e) => Ok(e),
            Err(e) => bail!(
                "the page {} shows no {css} ({e})",
                self.path().await.unwrap_or_default()
            ),
        }
    }

    async fn all(&self, css: &str) -> Result<Vec<Element>> {
        Ok(self.c.find_all(Locator::Css(css)).await?)
    }

    async fn count(&self, css: &str) -> Result<usize> {
        Ok(self.all(css).await?.len())
    }

    async fn text(&self, css: &str) -> Result<String> {
        Ok(self.find(css).await?.text().await?)
    }

    /// Waits (bounded) for an element matching `css` to show.
    async fn wait_for(&self, css: &str, within: Duration) -> Result<Element> {
        match self
            .c
            .wait()
            .at_most(within)
            .every(Duration::from_millis(100))
            .for_element(Locator::Css(css))
            .await
        {
            Ok(e) => Ok(e),
            Err(e) => bail!(
                "the page {} showed no {css} within {within:?} ({e})",
                self.path().await.unwrap_or_default()
            ),
        }
    }

    /// Waits (bounded) until the URL's path is not `from` any more: the page navigated.
    async fn wait_left(&self, from: &str, within: Duration) -> Result<String> {
        poll(
            &format!("the browser to leave {from}"),
            within,
            move || async move {
                let p = self.path().await.unwrap_or_else(|_| from.to_string());
                Ok((p != from).then_some(p))
            },
        )
        .await
    }

    /// A screenshot of what the browser shows, to `target/ui-screens/<name>.png`.
    async fn shot(&self, name: &str) -> Result<()> {
        let png = self.c.screenshot().await.context("taking a screenshot")?;
        let p = self.screens.join(format!("{name}.png"));
        std::fs::write(&p, png).with_context(|| p.display().to_string())
    }

    /// The named cookie's value, if the browser holds it for this page.
    async fn cookie(&self, name: &str) -> Option<String> {
        self.c
            .get_named_cookie(name)
            .await
            .ok()
            .map(|c| c.value().to_string())
    }

    /// `<meta name="csrf-token" content=...>`.
    async fn csrf(&self) -> Result<String> {
        self.find("meta[name=\"csrf-token\"]")
            .await?
            .attr("content")
            .await?
            .filter(|t| !t.is_empty())
            .context("meta csrf-token has no content")
    }

    /// The login page: the secret into `#token`, `#login-submit`; fails unless the browser
    /// leaves the login page.
    async fn login(&self, secret: &str) -> Result<String> {
        self.goto("/ui/login").await?;
        self.type_login(secret).await?;
        let at = self
            .wait_left("/ui/login", SHOW)
            .await
            .with_context(|| "the login with a good token did not leave /ui/login".to_string())?;
        Ok(at)
    }

    async fn type_login(&self, secret: &str) -> Result<()> {
        let field = self.find("#token").await?;
        field.clear().await?;
        field.send_keys(secret).await?;
        self.find("#login-submit").await?.click().await?;
        Ok(())
    }

    /// Submits `#logout` (a form, or a button in one).
    async fn logout(&self) -> Result<()> {
        let el = self.find("#logout").await?;
        if el.tag_name().await?.eq_ignore_ascii_case("form") {
            self.c
                .execute("document.querySelector('#logout').requestSubmit()", vec![])
                .await?;
        } else {
            el.click().await?;
        }
        poll(
            "the logout to land on /ui/login",
            SHOW,
            move || async move {
                Ok(self
                    .path()
                    .await
                    .ok()
                    .filter(|p| p.starts_with("/ui/login")))
            },
        )
        .await?;
        Ok(())
    }

    /// The modem's page: at `known` (the search scenario's landing), else found by search.
    async fn open_modem(&self, known: Option<&str>) -> Result<String> {
        match known {
            Some(d) => {
                self.goto(d).await?;
                Ok(d.to_owned())
            }
            None => self.search_modem().await,
        }
    }

    /// The device page: `#q` with the modem's MAC in another spelling, Enter.
    async fn search_modem(&self) -> Result<String> {
        let from = self.path().await?;
        let q = self.find("#q").await?;
        q.clear().await?;
        q.send_keys(&format!("{CM_MAC_OTHER_SPELLING}{}", '\u{e007}'))
            .await?;
        let at = self.wait_left(&from, SHOW).await?;
        Ok(at)
    }

    /// `/ui/templates`, then its first cm template's link (`a[data-template]`): the editor.
    /// Screenshots the list as `shot` when given. The template's name.
    async fn open_cm_template(&self, shot: Option<&str>) -> Result<String> {
        self.goto("/ui/templates").await?;
        self.check_plain("/ui/templates").await?;
        let links = self.all("a[data-template]").await?;
        let mut chosen = None;
        for l in &links {
            let name = l.attr("data-template").await?.unwrap_or_default();
            let text = l.text().await?;
            if name.contains("cm") || text.contains("cm") {
                chosen = Some((l.clone(), name));
                break;
            }
        }
        let (link, name) = chosen.with_context(|| {
            format!(
                "/ui/templates lists {} a[data-template] links, none of a cm template",
                links.len()
            )
        })?;
        if let Some(shot) = shot {
            self.shot(shot).await?;
        }
        link.click().await?;
        self.wait_for("textarea#template-text", SHOW).await?;
        Ok(name)
    }

    /// Fails if the page shows `.flash.error`; needs an `h1`.
    async fn check_plain(&self, what: &str) -> Result<String> {
        let h1 = self
            .text("h1")
            .await
            .with_context(|| format!("{what}: no h1"))?;
        let errors = self.all(".flash.error").await?;
        if let Some(e) = errors.first() {
            bail!("{what} shows .flash.error: {}", e.text().await?.trim());
        }
        Ok(h1)
    }
}

/// Calls `probe` every 200 ms until it yields a value, failing after `within`.
async fn poll<T, F, Fut>(what: &str, within: Duration, mut probe: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>>>,
{
    let t = Instant::now();
    loop {
        if let Some(v) = probe().await? {
            return Ok(v);
        }
        if t.elapsed() >= within {
            bail!("timed out after {within:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Outside the browser: the modem's TFTP fetch, form POSTs with curl.

/// The modem's file over TFTP (tftp-hpa, binary) from the modem's address, in the client
/// namespace.
fn fetch_cm_file(env: &Env, label: &str) -> Result<Vec<u8>> {
    let name = format!("cm/{}.cfg", provd_rig::hex(&CM_MAC));
    let local = env.dir.join(format!("{label}.cfg"));
    let _ = std::fs::remove_file(&local);
    let mut c = command_in(&env.cli_ns, "tftp");
    c.args(["-m", "binary", &SERVER_IP.to_string(), "-c", "get", &name])
        .arg(&local);
    let out = cmd::output_kept(&mut c, CLIENT_TIMEOUT, &env.dir, label)?;
    let text = cmd::text(&out);
    let bytes = std::fs::read(&local).unwrap_or_default();
    ensure!(
        out.status.success() && !bytes.is_empty() && !text.contains("Error code"),
        "tftp get {name} failed ({}): {}",
        out.status,
        text.trim()
    );
    Ok(bytes)
}

/// The file's TLV 4.2 (downstream rate) must be `down`.
fn check_rate(bytes: &[u8], label: &str, down: u32) -> Result<()> {
    let tlvs = Tlvs::walk(bytes).with_context(|| format!("{label}: walking the TLVs"))?;
    ensure!(
        tlvs.max_rate_down() == Some(down),
        "{label}: TLV 4.2 (max downstream rate) is {:?}, expected {down}",
        tlvs.max_rate_down()
    );
    ensure!(
        tlvs.max_cpe() == Some(SUB_MAX_CPE),
        "{label}: TLV 18 (MaxCPE) is {:?}, expected {SUB_MAX_CPE}",
        tlvs.max_cpe()
    );
    Ok(())
}

/// A form POST to the UI with curl in the server namespace, with a session cookie: the status.
fn form_post(env: &Env, path: &str, cookie: &str, body: &str, label: &str) -> Result<u16> {
    let mut c = command_in(&env.srv_ns, "curl");
    c.args([
        "-s",
        "-S",
        "--max-time",
        "20",
        "-o",
        &env.dir.join(format!("{label}.body")).to_string_lossy(),
        "-w",
        "%{http_code}",
        "-H",
        &format!("Cookie: {SESSION_COOKIE}={cookie}"),
        "-H",
        "Content-Type: application/x-www-form-urlencoded",
        "--data-raw",
        body,
    ])
    .arg(format!("{}{path}", env.base));
    let out = cmd::output_timeout(&mut c, Duration::from_secs(25))?;
    ensure!(
        out.status.success(),
        "curl POST {path} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .with_context(|| format!("curl's status for POST {path}: {:?}", cmd::text(&out)))
}

/// The device's class of service, read over the API (admin token, curl in the server
/// namespace).
fn device_class(env: &Env) -> Result<String> {
    let url = format!(
        "{}/api/v1/devices/{}",
        env.base,
        provd_rig::fmt_mac(&CM_MAC)
    );
    let mut c = command_in(&env.srv_ns, "curl");
    c.args([
        "-s",
        "-S",
        "--max-time",
        "20",
        "-w",
        "\n%{http_code}",
        "-H",
        &format!("Authorization: Bearer {}", env.tokens.admin),
    ])
    .arg(&url);
    let out = cmd::output_timeout(&mut c, Duration::from_secs(25))?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').unwrap_or(("", text.as_str()));
    ensure!(
        out.status.success() && status.trim() == "200",
        "GET {url}: {} {}",
        status.trim(),
        body.trim()
    );
    let v: Value = serde_json::from_str(body).with_context(|| format!("GET {url}: {body}"))?;
    Ok(v["class_of_service"]
        .as_str()
        .unwrap_or_default()
        .to_string())
}

/// `001095e2a001` from a path's last segment in any spelling (colons, dashes, dots,
/// percent-encoded, either case).
fn mac_of_path(path: &str) -> Option<String> {
    let last = path
        .split('?')
        .next()?
        .trim_end_matches('/')
        .rsplit('/')
        .next()?;
    let decoded = percent_decode(last);
    let hex: String = decoded
        .chars()
        .filter(|c| c.is_ascii_hexdigit())
        .collect::<String>()
        .to_ascii_lowercase();
    let seps_only = decoded
        .chars()
        .all(|c| c.is_ascii_hexdigit() || matches!(c, ':' | '-' | '.'));
    (hex.len() == 12 && seps_only).then_some(hex)
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(v) = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The first number in `text` (`1,234.5/s` → 1234.5).
fn first_number(text: &str) -> Option<f64> {
    let start = text.find(|c: char| c.is_ascii_digit())?;
    let num: String = text[start..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ',')
        .filter(|c| *c != ',')
        .collect();
    num.parse().ok()
}

/// The first percentage in `text` (`83.4 %` → 83.4).
fn first_percent(text: &str) -> Option<f64> {
    let at = text.find('%')?;
    let head = text[..at].trim_end();
    let start = head
        .rfind(|c: char| !(c.is_ascii_digit() || c == '.'))
        .map_or(0, |i| i + 1);
    head[start..].parse().ok()
}

// ---------------------------------------------------------------------------------------------
// The scenarios.

fn start(ctx: &Ctx, dir: &Path) -> Result<()> {
    let t = Instant::now();
    let s = Stack::build(ctx, dir)?;
    note(format!(
        "provd with {SEED_DEVICES} seeded devices, API and UI at {}, chromedriver on :{DRIVER_PORT}, tokens made ({:.1} s)",
        s.api,
        t.elapsed().as_secs_f64()
    ));
    *ctx.stack.borrow_mut() = Some(s);
    Ok(())
}

/// Classes gold and silver, a subscriber and the modem over the API (as the api suite does);
/// the modem boots through the relay and fetches its gold file.
fn provision(ctx: &Ctx, _dir: &Path) -> Result<()> {
    with(ctx, |s| {
        s.api_ok(
            "PUT",
            "/api/v1/classes/gold",
            Some(&json!({"name": "gold", "vars": {"max_cpe": 4, "down": GOLD_DOWN}})),
        )?;
        s.api_ok(
            "PUT",
            "/api/v1/classes/silver",
            Some(&json!({"name": "silver", "vars": {"max_cpe": 2, "down": SILVER_DOWN}})),
        )?;
        s.api_ok(
            "PUT",
            "/api/v1/subscribers/sub-ui-1",
            Some(&json!({"id": "sub-ui-1", "name": "UI Subscriber", "vars": {"max_cpe": SUB_MAX_CPE}})),
        )?;
        let mac = provd_rig::fmt_mac(&CM_MAC);
        s.api_ok(
            "PUT",
            &format!("/api/v1/devices/{mac}"),
            Some(&json!({
                "mac": mac,
                "type": "cm",
                "subscriber": "sub-ui-1",
                "class_of_service": "gold",
                "vars": {},
            })),
        )?;
        let listed = items(&s.api_ok("GET", "/api/v1/devices?limit=5", None)?)?;
        ensure!(
            listed.len() == 5,
            "GET /api/v1/devices?limit=5 listed {} devices; the store should hold {SEED_DEVICES}",
            listed.len()
        );
        let addr = s.dhcp(
            CLIENT_IF,
            "dhclient-cm",
            "send vendor-class-identifier \"docsis3.0\";\n",
        )?;
        ensure!(
            provd_rig::topo::in_pool(addr, POOL),
            "the modem got {addr}, outside the pool {POOL:?}"
        );
        s.cm_addr = addr;
        let env = s.env(&ctx.screens);
        let f = fetch_cm_file(&env, "tftp-gold")?;
        check_rate(&f, "the gold file", GOLD_DOWN)?;
        note(format!(
            "classes gold ({GOLD_DOWN}) and silver ({SILVER_DOWN}); modem {mac} bound {addr}, fetched {} bytes (gold)",
            f.len()
        ));
        s.provd.check_alive()
    })
}

/// `/ui/` sends a stranger to `/ui/login`; a wrong token shows `.flash.error` and makes no
/// session; the operator's token lands on the dashboard, whose `#whoami` names it and its role.
fn login(ctx: &Ctx, dir: &Path) -> Result<()> {
    with(ctx, |s| {
        s.browse(ctx, dir, "login", |p, env| async move {
            p.goto("/ui/").await?;
            let at = p.path().await?;
            ensure!(
                at.starts_with("/ui/login"),
                "GET /ui/ without a session landed on {at}, expected /ui/login"
            );
            p.find("#token").await?;
            p.shot("login").await?;

            // A wrong token: an error on the page, no session.
            p.type_login("not-a-token-0123456789").await?;
            let flash = p.wait_for(".flash.error", SHOW).await?.text().await?;
            p.shot("login-wrong-token").await?;
            p.goto("/ui/").await?;
            let at = p.path().await?;
            ensure!(
                at.starts_with("/ui/login"),
                "after a wrong token GET /ui/ landed on {at}: the wrong token made a session"
            );

            let at = p.login(&env.tokens.operator).await?;
            ensure!(
                at == "/ui/" || at == "/ui" || at.starts_with("/ui/dashboard"),
                "the operator's login landed on {at}, expected the dashboard (/ui/)"
            );
            let who = p.text("#whoami").await?;
            ensure!(
                who.contains(OPERATOR)
                    && who
                        .replacen(OPERATOR, "", 1)
                        .to_ascii_lowercase()
                        .contains("operator"),
                "#whoami shows {who:?}, expected the token id {OPERATOR} and the role operator"
            );
            ensure!(
                p.cookie(SESSION_COOKIE).await.is_some(),
                "logged in, but the browser holds no {SESSION_COOKIE} cookie"
            );
            p.shot("login-dashboard").await?;
            note(format!(
                "wrong token: {:?}; operator landed on {at}, #whoami {:?}",
                flash.trim(),
                who.trim()
            ));
            Ok(())
        })
    })
}

/// The dashboard, opened before the load starts: while perfdhcp runs through the relay's
/// namespace, `[data-rate="dhcp"]` goes above zero within 10 s without a reload (the page
/// refreshes itself), and `#pools` lists both pools with their utilisation, the load's above 0 %.
fn dashboard(ctx: &Ctx, dir: &Path) -> Result<()> {
    with(ctx, |s| {
        let d = dir.to_path_buf();
        let (mut load, seen) = s.browse(ctx, dir, "dashboard", |p, env| async move {
            p.login(&env.tokens.operator).await?;
            p.goto("/ui/").await?;
            let before = p.text("[data-rate=\"dhcp\"]").await?;
            let load_args = Load {
                local: LOAD_GIADDR,
                server: SERVER_IP,
                rate: LOAD_RATE,
                clients: LOAD_CLIENTS,
                period_secs: LOAD_SECS,
                exit_wait_us: 1_000_000,
                drop_time_secs: 1.0,
                seed: 7,
            }
            .args();
            note(format!(
                "dashboard shows dhcp rate {:?} before the load; perfdhcp {}",
                before.trim(),
                load_args.join(" ")
            ));
            let mut c = command_in(&env.load_ns, "perfdhcp");
            c.args(&load_args);
            let load = Child::spawn("perfdhcp", c, &d)?;
            let t0 = Instant::now();
            let (p, before) = (&p, &before);
            let rate = poll(
                "the dashboard's dhcp rate above 0 (no reload)",
                RATE_WITHIN,
                move || async move {
                    // The element may be swapped by the page's own refresh: found anew.
                    let Ok(el) = p.c.find(Locator::Css("[data-rate=\"dhcp\"]")).await else {
                        return Ok(None);
                    };
                    let text = el.text().await.unwrap_or_default();
                    Ok(first_number(&text)
                        .filter(|v| *v > 0.0 && text.trim() != before.trim())
                        .map(|v| (v, text)))
                },
            )
            .await
            .with_context(|| {
                format!("the rate element showed {before:?} before the load")
            })?;
            let after = t0.elapsed();
            p.shot("dashboard").await?;
            // Both pools, each with a utilisation; the load's above 0 % once perfdhcp has
            // bound its clients (bounded by the load's own period).
            let pools = poll(
                "#pools to show both pools, the load pool above 0 %",
                Duration::from_secs(u64::from(LOAD_SECS)),
                move || async move {
                    let Ok(rows) = p.all("#pools tr").await else {
                        return Ok(None);
                    };
                    let mut texts = Vec::new();
                    for r in rows {
                        texts.push(r.text().await.unwrap_or_default());
                    }
                    let row = |start: Ipv4Addr, net: &str| {
                        texts
                            .iter()
                            .find(|t| t.contains(&start.to_string()) || t.contains(net))
                            .cloned()
                    };
                    let (Some(relayed), Some(load)) = (
                        row(POOL.0, "198.18.2.0/24"),
                        row(LOAD_POOL_START, "198.18.4.0/24"),
                    ) else {
                        return Ok(None);
                    };
                    let (Some(_), Some(lp)) = (first_percent(&relayed), first_percent(&load))
                    else {
                        return Ok(None);
                    };
                    Ok((lp > 0.0).then_some((relayed, load)))
                },
            )
            .await
            .with_context(|| "each pool's row must name its start address or subnet and show a utilisation in %")?;
            p.shot("dashboard-pools").await?;
            Ok((
                load,
                format!(
                    "rate {:?} ({}/s) {:.1} s after the load started; pools: {:?} / {:?}",
                    rate.1.trim(),
                    rate.0,
                    after.as_secs_f64(),
                    pools.0.trim(),
                    pools.1.trim()
                ),
            ))
        })?;
        note(seen);
        let st = load.wait_timeout(Duration::from_secs(u64::from(LOAD_SECS) + 15))?;
        match perfdhcp::parse_report(&load.stdout_text()) {
            Ok(r) => note(format!(
                "perfdhcp exited {st}: {} exchanges completed",
                r.completed()
            )),
            Err(e) => note(format!("perfdhcp exited {st}; no report ({e:#})")),
        }
        s.provd.check_alive()
    })
}

/// The search box with the modem's MAC spelt otherwise lands on its page: lease, timeline
/// (dhcp and tftp rows), the decoded file, both MICs verified.
fn search(ctx: &Ctx, dir: &Path) -> Result<()> {
    with(ctx, |s| {
        let path = s.browse(ctx, dir, "search", |p, env| async move {
            p.login(&env.tokens.operator).await?;
            let at = p.search_modem().await?;
            ensure!(
                at.starts_with("/ui/devices/")
                    && mac_of_path(&at).as_deref() == Some(&provd_rig::hex(&CM_MAC)),
                "searching {CM_MAC_OTHER_SPELLING} landed on {at}, expected /ui/devices/<the modem's MAC>"
            );
            let lease = p.text("#lease").await?;
            ensure!(
                lease.contains(&env.cm_addr.to_string()),
                "#lease shows {lease:?}, not the modem's address {}",
                env.cm_addr
            );
            let dhcp = p.count("#timeline tr[data-kind=\"dhcp\"]").await?;
            let tftp = p.count("#timeline tr[data-kind=\"tftp\"]").await?;
            ensure!(
                dhcp >= 1 && tftp >= 1,
                "#timeline has {dhcp} dhcp and {tftp} tftp rows; the modem booted and fetched its file"
            );
            let decoded = p.text("#file pre.decoded").await?;
            for want in [format!("MaxRateDown {GOLD_DOWN}"), "MaxCPE".to_string()] {
                ensure!(
                    decoded.contains(&want),
                    "#file pre.decoded does not show {want:?}:\n{decoded}"
                );
            }
            for check in ["cm_mic", "cmts_mic"] {
                let css = format!(".verdict[data-check=\"{check}\"]");
                let v = p.find(&css).await?;
                let ok = v.attr("data-ok").await?;
                let text = v.text().await?;
                ensure!(
                    ok.as_deref() == Some("true") && text.to_ascii_lowercase().contains("verified"),
                    "{css}: data-ok={ok:?}, text {text:?}; expected data-ok=\"true\" and \"verified\""
                );
            }
            p.shot("search").await?;
            note(format!(
                "landed on {at}: lease {:?}, timeline {dhcp} dhcp / {tftp} tftp rows, file decoded, MICs verified",
                lease.trim()
            ));
            Ok(at)
        })?;
        s.device_path = Some(path);
        Ok(())
    })
}

/// The tier change in the page (gold → silver): the preview's diff shows silver's rate as an
/// added line, the save says ok; the modem's next TFTP fetch carries silver's rate, and the
/// reloaded page's timeline shows that fetch and the API change.
fn tier_change(ctx: &Ctx, dir: &Path) -> Result<()> {
    with(ctx, |s| {
        s.browse(ctx, dir, "tier-change", |p, env| async move {
            p.login(&env.tokens.operator).await?;
            let device = p.open_modem(env.device_path.as_deref()).await?;
            let tftp_before = p.count("#timeline tr[data-kind=\"tftp\"]").await?;
            let api_before = p.count("#timeline tr[data-kind=\"api\"]").await?;
            let select = p.find("select#tier-class").await?;
            let current = select.prop("value").await?.unwrap_or_default();
            ensure!(
                current == "gold",
                "select#tier-class shows {current:?}, expected the modem's class gold"
            );
            select
                .select_by_value("silver")
                .await
                .context("select#tier-class has no option silver")?;
            p.find("#tier-preview").await?.click().await?;
            p.wait_for("#tier-diff .diff-add", SHOW).await?;
            let dels = p.count("#tier-diff .diff-del").await?;
            let mut adds = Vec::new();
            for a in p.all("#tier-diff .diff-add").await? {
                adds.push(a.text().await?);
            }
            ensure!(dels >= 1, "#tier-diff shows no .diff-del line");
            ensure!(
                adds.iter().any(|a| a.contains(&SILVER_DOWN.to_string())),
                "no .diff-add line in #tier-diff shows silver's rate {SILVER_DOWN}: {adds:?}"
            );
            p.shot("tier-change-preview").await?;
            p.find("#tier-save").await?.click().await?;
            let ok = p.wait_for(".flash.ok", SHOW).await?.text().await?;
            p.shot("tier-change-saved").await?;
            let class = device_class(&env)?;
            ensure!(
                class == "silver",
                "the page said {:?}, but the API reads the device's class as {class}",
                ok.trim()
            );

            // The real modem fetches its file again: silver's rate.
            let f = fetch_cm_file(&env, "tftp-silver")?;
            check_rate(&f, "the file after the tier change", SILVER_DOWN)?;

            let (p, device) = (&p, &device);
            let counts = || async move {
                p.goto(device).await?;
                let t = p.count("#timeline tr[data-kind=\"tftp\"]").await?;
                let a = p.count("#timeline tr[data-kind=\"api\"]").await?;
                Ok::<_, anyhow::Error>((t, a))
            };
            // The page read anew until both rows are there (bounded); then each one judged.
            let t0 = Instant::now();
            let (tftp_after, api_after) = loop {
                let (t, a) = counts().await?;
                if (t > tftp_before && a > api_before) || t0.elapsed() >= SHOW {
                    break (t, a);
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            };
            p.shot("tier-change").await?;
            ensure!(
                tftp_after > tftp_before,
                "the reloaded device page shows {tftp_after} tr[data-kind=\"tftp\"] rows, as many as before the fetch ({tftp_before})"
            );
            ensure!(
                api_after > api_before,
                "the reloaded device page shows {api_after} tr[data-kind=\"api\"] rows, as many as before the tier change ({api_before}): the change is not in the timeline"
            );
            note(format!(
                "diff: {dels} deleted, {} added lines; {:?}; fetched {} bytes (silver); timeline tftp {tftp_before}→{tftp_after}, api {api_before}→{api_after}",
                adds.len(),
                ok.trim(),
                f.len()
            ));
            Ok(())
        })
    })
}

/// The template editor: a syntax error typed on a known line shows up as a problem on that
/// line (the page validates as you type); saving is refused and adds no version.
fn template_error(ctx: &Ctx, dir: &Path) -> Result<()> {
    with(ctx, |s| {
        s.browse(ctx, dir, "template-error", |p, env| async move {
            p.login(&env.tokens.operator).await?;
            let name = p.open_cm_template(Some("template-list")).await?;
            let area = p.wait_for("textarea#template-text", SHOW).await?;
            // The versions' rows (a table's body rows, or a list's items).
            let versions_css = "#template-versions tbody tr, #template-versions li";
            p.find("#template-versions").await?;
            let versions = p.count(versions_css).await?;
            let original = area.prop("value").await?.unwrap_or_default();
            ensure!(
                original.contains("MaxRateDown"),
                "textarea#template-text of {name} does not hold the cm template: {original:?}"
            );
            let before = p.count("#template-problems .problem").await?;
            ensure!(
                before == 0,
                "the cm template shows {before} problems before any edit"
            );
            // Typed at the end of the text (WebDriver puts the caret there): a bare `if`.
            area.send_keys("\n{% if %}").await?;
            let typed = area.prop("value").await?.unwrap_or_default();
            ensure!(
                typed.starts_with(original.trim_end()) && typed.trim_end().ends_with("{% if %}"),
                "after typing, textarea#template-text holds {typed:?}"
            );
            let line = typed
                .lines()
                .position(|l| l.contains("{% if %}"))
                .map_or(0, |i| i + 1);
            let problem = p
                .wait_for("#template-problems .problem", SHOW)
                .await
                .context("typing a syntax error showed no problem (the page validates as you type)")?;
            let mut lines = Vec::new();
            for pr in p.all("#template-problems .problem").await? {
                lines.push(pr.attr("data-line").await?.unwrap_or_default());
            }
            ensure!(
                lines.iter().any(|l| l == &line.to_string()),
                "#template-problems shows problems on lines {lines:?} ({:?}), expected line {line}",
                problem.text().await.unwrap_or_default()
            );
            // The problems sit under the 28-row textarea: in view for the screenshot.
            p.c.execute(
                "document.querySelector('#template-problems').scrollIntoView({block: 'center'})",
                vec![],
            )
            .await?;
            p.shot("template-error").await?;
            let editor = p.path().await?;
            p.find("#template-save").await?.click().await?;
            let flash = p.wait_for(".flash.error", SHOW).await?.text().await?;
            p.shot("template-error-saved").await?;
            let after = p.count(versions_css).await?;
            ensure!(
                after == versions,
                "#template-versions had {versions} rows and shows {after} after a refused save"
            );
            p.goto(&editor).await?;
            let reloaded = p.count(versions_css).await?;
            let now = p.find("textarea#template-text").await?.prop("value").await?.unwrap_or_default();
            ensure!(
                reloaded == versions && !now.contains("{% if %}"),
                "after the refused save the editor shows {reloaded} versions (was {versions}) and the text {}",
                if now.contains("{% if %}") { "with the error in it" } else { "unchanged" }
            );
            note(format!(
                "{name}: problem on line {line}; save refused with {:?}; {versions} versions before and after",
                flash.trim()
            ));
            Ok(())
        })
    })
}

/// Write controls follow the role: the operator's device and template pages have `[data-write]`
/// elements, the read-only token's none. A forged POST with the read-only session's cookie and
/// CSRF token is 403, so is an operator's POST with a wrong or no CSRF token, while the same
/// POST with the operator's token goes through (the forged ones failed for the right reason).
fn read_only(ctx: &Ctx, dir: &Path) -> Result<()> {
    with(ctx, |s| {
        s.browse(ctx, dir, "read-only", |p, env| async move {
            p.login(&env.tokens.operator).await?;
            let device = p.open_modem(env.device_path.as_deref()).await?;
            let tier = format!("{device}/tier");
            let op_device = p.count("[data-write]").await?;
            p.open_cm_template(None).await?;
            let op_templates = p.count("[data-write]").await?;
            ensure!(
                op_device > 0 && op_templates > 0,
                "the operator's device page has {op_device} and cm template page {op_templates} [data-write] elements; both should have some"
            );
            p.goto(&device).await?;
            let op_cookie = p
                .cookie(SESSION_COOKIE)
                .await
                .context("the operator's session has no cookie")?;
            let op_csrf = p.csrf().await?;
            let class = device_class(&env)?;
            let other = if class == "silver" { "gold" } else { "silver" };
            for (body, what) in [
                (format!("class={other}&csrf=wrong{op_csrf}"), "a wrong CSRF token"),
                (format!("class={other}"), "no CSRF token"),
            ] {
                let st = form_post(&env, &tier, &op_cookie, &body, "op-forged")?;
                ensure!(
                    st == 403,
                    "POST {tier} from the operator's session with {what}: {st}, expected 403"
                );
            }
            ensure!(
                device_class(&env)? == class,
                "a POST without a good CSRF token changed the device's class"
            );
            // The control: the same session with its own CSRF token may post (the class it
            // already has: no change).
            let good = form_post(
                &env,
                &tier,
                &op_cookie,
                &format!("class={class}&csrf={op_csrf}"),
                "op-good",
            )?;
            ensure!(
                (200..400).contains(&good),
                "POST {tier} from the operator's session with its CSRF token: {good}; the forged posts' 403s prove nothing"
            );

            p.logout().await?;
            p.goto("/ui/").await?;
            ensure!(
                p.path().await?.starts_with("/ui/login"),
                "after #logout GET /ui/ did not go to the login page"
            );
            p.login(&env.tokens.read_only).await?;
            let who = p.text("#whoami").await?;
            ensure!(
                who.contains(READER)
                    && who
                        .replacen(READER, "", 1)
                        .to_ascii_lowercase()
                        .contains("read"),
                "#whoami shows {who:?}, expected the token id {READER} and the role read-only"
            );
            p.goto(&device).await?;
            p.check_plain("the read-only device page").await?;
            let ro_device = p.count("[data-write]").await?;
            p.shot("read-only-device").await?;
            p.open_cm_template(Some("read-only-templates")).await?;
            p.check_plain("the read-only cm template page").await?;
            let ro_templates = p.count("[data-write]").await?;
            p.shot("read-only").await?;
            ensure!(
                ro_device == 0 && ro_templates == 0,
                "the read-only token's device page has {ro_device} and cm template page {ro_templates} [data-write] elements, expected none"
            );
            p.goto(&device).await?;
            let ro_cookie = p
                .cookie(SESSION_COOKIE)
                .await
                .context("the read-only session has no cookie")?;
            let ro_csrf = p.csrf().await?;
            let st = form_post(
                &env,
                &tier,
                &ro_cookie,
                &format!("class={other}&csrf={ro_csrf}"),
                "ro-forged",
            )?;
            ensure!(
                st == 403,
                "a forged POST {tier} with the read-only session's cookie and CSRF token: {st}, expected 403"
            );
            ensure!(
                device_class(&env)? == class,
                "the read-only session's forged POST changed the device's class"
            );
            note(format!(
                "[data-write]: operator {op_device} (device) / {op_templates} (templates), read-only 0 / 0; forged POSTs 403, the operator's own {good}"
            ));
            Ok(())
        })
    })
}

/// `/ui/audit` lists the tier change: a row with the modem's MAC and the operator's token.
fn audit(ctx: &Ctx, dir: &Path) -> Result<()> {
    with(ctx, |s| {
        s.browse(ctx, dir, "audit", |p, env| async move {
            p.login(&env.tokens.admin).await?;
            p.goto("/ui/audit").await?;
            p.check_plain("/ui/audit").await?;
            let rows = p.all("#audit tr").await?;
            let spellings = [
                provd_rig::fmt_mac(&CM_MAC),
                provd_rig::hex(&CM_MAC),
                provd_rig::fmt_mac(&CM_MAC).replace(':', "-"),
            ];
            let mut found = None;
            for r in &rows {
                let t = r.text().await?;
                let l = t.to_ascii_lowercase();
                // The tier change: gold before, silver after (not the read-only scenario's
                // no-op post, silver to silver).
                if spellings.iter().any(|m| l.contains(m))
                    && t.contains(OPERATOR)
                    && t.contains("gold")
                    && t.contains("silver")
                {
                    found = Some(t);
                    break;
                }
            }
            p.shot("audit").await?;
            let row = found.with_context(|| {
                format!(
                    "#audit has {} rows, none with the modem's MAC, {OPERATOR}, gold and silver (the tier change)",
                    rows.len()
                )
            })?;
            note(format!("#audit: {:?}", row.trim()));
            Ok(())
        })
    })
}

/// Every other page loads with an `h1` and no error; the device list with 100,000 devices
/// paginates. The list's server time is logged (a bench matter, not judged here).
fn pages(ctx: &Ctx, dir: &Path) -> Result<()> {
    with(ctx, |s| {
        s.browse(ctx, dir, "pages", |p, env| async move {
            p.login(&env.tokens.admin).await?;
            let mut seen = Vec::new();
            for page in [
                "devices",
                "subscribers",
                "classes",
                "leases",
                "mta",
                "cwmp",
                "jobs",
                "tokens",
            ] {
                let path = format!("/ui/{page}");
                p.goto(&path).await?;
                let at = p.path().await?;
                ensure!(at.starts_with(&path), "opening {path} landed on {at}");
                let h1 = p.check_plain(&path).await?;
                p.shot(&format!("pages-{page}")).await?;
                if page == "devices" {
                    p.find("a#next")
                        .await
                        .context("the device list of 100,000 devices does not paginate")?;
                    let main = p.text("main").await.unwrap_or_default();
                    if let Some(l) = main.lines().find(|l| l.contains(" ms")) {
                        note(format!("/ui/devices says: {}", l.trim()));
                    }
                }
                seen.push(format!("{page}: {:?}", h1.trim()));
            }
            // The list's time as the server took it (curl's time to the first byte).
            let cookie = p
                .cookie(SESSION_COOKIE)
                .await
                .context("no session cookie")?;
            let mut c = command_in(&env.srv_ns, "curl");
            c.args([
                "-s",
                "-o",
                "/dev/null",
                "--max-time",
                "20",
                "-w",
                "%{http_code} %{time_starttransfer}",
                "-H",
                &format!("Cookie: {SESSION_COOKIE}={cookie}"),
            ])
            .arg(format!("{}/ui/devices", env.base));
            let out = cmd::output_timeout(&mut c, Duration::from_secs(25))?;
            note(format!(
                "/ui/devices with {SEED_DEVICES} devices: status and time to first byte {}",
                String::from_utf8_lossy(&out.stdout).trim()
            ));
            note(seen.join("; "));
            Ok(())
        })
    })
}

/// SIGTERM: provd exits in time; the browsers and chromedriver go by PID.
fn stop(ctx: &Ctx, _dir: &Path) -> Result<()> {
    let mut st = ctx.stack.borrow_mut().take().context("the stack is down")?;
    kill_browsers(&st.topo.server);
    st.driver.stop(libc::SIGTERM, Duration::from_secs(5))?;
    st.clients.clear();
    st.provd.stop()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_path_gives_its_mac_in_any_spelling() {
        let want = Some("001095e2a001".to_string());
        for p in [
            "/ui/devices/00:10:95:e2:a0:01",
            "/ui/devices/00%3A10%3A95%3AE2%3AA0%3A01",
            "/ui/devices/001095e2a001/",
            "/ui/devices/00-10-95-E2-A0-01?tab=file",
            "/ui/devices/0010.95e2.a001",
        ] {
            assert_eq!(mac_of_path(p), want, "{p}");
        }
        assert_eq!(mac_of_path("/ui/devices"), None);
        assert_eq!(mac_of_path("/ui/devices/00:10:95:e2:a0"), None);
        assert_eq!(mac_of_path("/ui/devices/sub-001095e2a001"), None);
    }

    #[test]
    fn numbers_and_percentages_are_read_off_the_page() {
        assert_eq!(first_number("1,234.5/s"), Some(1234.5));
        assert_eq!(first_number("0 /s"), Some(0.0));
        assert_eq!(first_number("—"), None);
        assert_eq!(
            first_percent("198.18.4.10–198.18.4.250 200/241 83.0 %"),
            Some(83.0)
        );
        assert_eq!(first_percent("relayed 1 of 101 (1%)"), Some(1.0));
        assert_eq!(first_percent("no figure"), None);
    }

    #[test]
    fn the_config_renders_and_the_capabilities_keep_chromium_to_itself() {
        let t = render_config(Path::new("/l"), "[store]\nbackend = \"embedded\"\n");
        assert!(!t.contains("@LEASE_DIR@") && !t.contains("@STORE@"), "{t}");
        assert_eq!(t.matches("[[shared_network]]").count(), 2);
        let caps = capabilities(Path::new("/run/p"));
        let args = caps["goog:chromeOptions"]["args"].as_array().unwrap();
        for a in ["--no-sandbox", "--disable-quic", "--user-data-dir=/run/p"] {
            assert!(args.iter().any(|x| x == a), "{a} missing: {args:?}");
        }
        assert_eq!(caps["goog:chromeOptions"]["binary"], CHROMIUM);
    }
}
