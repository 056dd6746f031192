//! ISC dhclient as a real client, confined to a temp directory: its own config, lease file, pid
//! file and a small script that applies the address inside the client namespace and logs every
//! event, so nothing on the host is touched.

use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::child::Child;
use crate::netns::Netns;
use crate::wait;

/// One event the script saw: dhclient's `reason` and `new_ip_address`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub reason: String,
    pub addr: Option<Ipv4Addr>,
}

#[derive(Debug)]
pub struct Dhclient {
    dir: PathBuf,
    iface: String,
}

const SCRIPT: &str = r#"#!/bin/sh
# dhclient-script for the e2e rig: apply the lease inside the client namespace, log the event.
echo "$reason ${new_ip_address:-} ${new_subnet_mask:-} ${new_routers:-}" >> "@EVENTS@"
case "$reason" in
  PREINIT)
    ip link set dev "$interface" up ;;
  BOUND|RENEW|REBIND|REBOOT)
    if [ -n "$old_ip_address" ] && [ "$old_ip_address" != "$new_ip_address" ]; then
      ip -4 addr flush dev "$interface"
    fi
    ip -4 addr replace "$new_ip_address/$new_subnet_mask" dev "$interface"
    if [ -n "$new_routers" ]; then
      set -- $new_routers
      ip route replace default via "$1" dev "$interface"
    fi ;;
  EXPIRE|FAIL|RELEASE|STOP)
    ip -4 addr flush dev "$interface" ;;
esac
exit 0
"#;

impl Dhclient {
    /// Writes config and script into `dir` for a client on `iface`. With `renew_after`, the
    /// client overrides the server's T1 (`supersede dhcp-renewal-time`) so a RENEW happens that
    /// many seconds after binding instead of half the lease time later.
    pub fn new(dir: &Path, iface: &str, renew_after: Option<u32>) -> Result<Dhclient> {
        std::fs::create_dir_all(dir)?;
        let d = Dhclient {
            dir: dir.to_path_buf(),
            iface: iface.to_string(),
        };
        let mut conf = String::from(
            "# e2e rig dhclient.conf\n\
             request subnet-mask, broadcast-address, routers, dhcp-lease-time,\n\
             \x20       dhcp-renewal-time, dhcp-rebinding-time, dhcp-server-identifier;\n\
             timeout 60;\nretry 10;\ninitial-interval 1;\nbackoff-cutoff 2;\nreboot 10;\n",
        );
        if let Some(t1) = renew_after {
            conf += &format!("supersede dhcp-renewal-time {t1};\n");
        }
        std::fs::write(d.conf(), conf)?;
        let script = SCRIPT.replace("@EVENTS@", &d.events_path().to_string_lossy());
        std::fs::write(d.script(), script)?;
        std::fs::set_permissions(d.script(), std::fs::Permissions::from_mode(0o755))?;
        Ok(d)
    }

    pub fn conf(&self) -> PathBuf {
        self.dir.join("dhclient.conf")
    }
    pub fn lease_file(&self) -> PathBuf {
        self.dir.join("dhclient.leases")
    }
    pub fn pid_file(&self) -> PathBuf {
        self.dir.join("dhclient.pid")
    }
    pub fn script(&self) -> PathBuf {
        self.dir.join("dhclient-script.sh")
    }
    pub fn events_path(&self) -> PathBuf {
        self.dir.join("events.log")
    }

    fn args(&self, extra: &[&str]) -> Vec<String> {
        let mut v: Vec<String> = vec!["-4".into(), "-v".into()];
        v.extend(extra.iter().map(|s| s.to_string()));
        for (flag, path) in [
            ("-cf", self.conf()),
            ("-lf", self.lease_file()),
            ("-pf", self.pid_file()),
            ("-sf", self.script()),
        ] {
            v.push(flag.into());
            v.push(path.to_string_lossy().into_owned());
        }
        v.push(self.iface.clone());
        v
    }

    /// Starts dhclient in the foreground (`-d`: it never daemonizes, so it stays in the child's
    /// process group and dies with it).
    pub fn start(&self, ns: &Netns, label: &str, log_dir: &Path) -> Result<Child> {
        let args = self.args(&["-d"]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        ns.spawn(label, "dhclient", &args, log_dir)
    }

    /// `dhclient -r`: releases the lease (sends DHCPRELEASE) and stops the running instance via
    /// the pid file. Returns dhclient's stderr.
    pub fn release(&self, ns: &Netns) -> Result<String> {
        let args = self.args(&["-r"]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = crate::cmd::output_timeout(
            ns.command("dhclient").args(&args),
            Duration::from_secs(30),
        )?;
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        if !out.status.success() {
            bail!("dhclient -r failed ({}): {err}", out.status);
        }
        Ok(err)
    }

    /// Every event the script has logged so far.
    pub fn events(&self) -> Vec<Event> {
        let text = std::fs::read_to_string(self.events_path()).unwrap_or_default();
        parse_events(&text)
    }

    /// Waits for the first event after the first `skip` ones whose reason is in `reasons`;
    /// returns its address. Fails early if `child` exits.
    pub fn wait_event(
        &self,
        child: &mut Child,
        reasons: &[&str],
        skip: usize,
        timeout: Duration,
    ) -> Result<Event> {
        let what = format!("dhclient event {reasons:?}");
        wait::until(&what, timeout, Duration::from_millis(100), || {
            if let Some(e) = self
                .events()
                .into_iter()
                .skip(skip)
                .find(|e| reasons.contains(&e.reason.as_str()))
            {
                return Ok(Some(e));
            }
            if let Some(st) = child.try_wait()? {
                bail!(
                    "dhclient exited ({st}) before {what}; events {:?}; stderr:\n{}",
                    self.events(),
                    child.stderr_tail(15)
                );
            }
            Ok(None)
        })
        .with_context(|| {
            format!(
                "events so far {:?}; dhclient stderr:\n{}",
                self.events(),
                child.stderr_tail(15)
            )
        })
    }
}

/// Parses the script's event log.
pub fn parse_events(text: &str) -> Vec<Event> {
    text.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let reason = w.next()?.to_string();
            let addr = w.next().and_then(|a| a.parse().ok());
            Some(Event { reason, addr })
        })
        .collect()
}

/// The IPv4 addresses (with prefix length) configured on `iface` in `ns`, from `ip -4 addr`.
pub fn iface_addrs(ns: &Netns, iface: &str) -> Result<Vec<(Ipv4Addr, u8)>> {
    let out = ns.ip(&["-4", "-o", "addr", "show", "dev", iface])?;
    Ok(parse_ip_addr(&out))
}

/// Parses `ip -4 -o addr show` output.
pub fn parse_ip_addr(out: &str) -> Vec<(Ipv4Addr, u8)> {
    out.lines()
        .filter_map(|l| {
            let cidr = l.split_whitespace().skip_while(|w| *w != "inet").nth(1)?;
            let (a, p) = cidr.split_once('/')?;
            Some((a.parse().ok()?, p.parse().ok()?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_events_and_ip_output() {
        let ev = parse_events(
            "PREINIT   \nBOUND 198.18.0.100 255.255.255.0 198.18.0.1\nRELEASE 198.18.0.100\n",
        );
        assert_eq!(ev.len(), 3);
        assert_eq!(
            ev[0],
            Event {
                reason: "PREINIT".into(),
                addr: None
            }
        );
        assert_eq!(ev[1].addr, Some(Ipv4Addr::new(198, 18, 0, 100)));
        let ip = "3: cli0    inet 198.18.0.100/24 brd 198.18.0.255 scope global cli0\\       valid_lft forever preferred_lft forever\n";
        assert_eq!(
            parse_ip_addr(ip),
            vec![(Ipv4Addr::new(198, 18, 0, 100), 24)]
        );
        assert!(parse_ip_addr("").is_empty());
    }

    #[test]
    fn writes_confined_config() {
        let dir = std::env::temp_dir().join(format!("rig-dhclient-test-{}", std::process::id()));
        let d = Dhclient::new(&dir, "cli0", Some(5)).unwrap();
        let conf = std::fs::read_to_string(d.conf()).unwrap();
        assert!(conf.contains("supersede dhcp-renewal-time 5;"));
        let args = d.args(&["-d"]);
        assert_eq!(args.last().unwrap(), "cli0");
        for p in [d.conf(), d.lease_file(), d.pid_file(), d.script()] {
            assert!(args.contains(&p.to_string_lossy().into_owned()));
        }
        let script = std::fs::read_to_string(d.script()).unwrap();
        assert!(script.contains(&*d.events_path().to_string_lossy()));
        assert!(!script.contains("@EVENTS@"));
    }
}
