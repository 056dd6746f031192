//! Durable lease tables as the servers leave them on disk, and the checks the crash test makes
//! against what was ACKed on the wire.
//!
//! * provd: `provd leases --config FILE` prints JSON lines
//!   `{"mac":"..","client":"<hex>","addr":"198.18.1.7","state":"bound","expires":1790000000}`.
//! * Kea: the memfile CSV (`address,hwaddr,client_id,valid_lifetime,expire,...,state,...`) is an
//!   append log: the last row for an address wins and a row with `valid_lifetime` 0 is a delete.

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;

use anyhow::{Context, Result, bail};

/// One lease as the server's durable state has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub mac: Option<[u8; 6]>,
    pub addr: Ipv4Addr,
    /// provd: the `state` field; Kea: `bound`, `declined` or `expired-reclaimed`.
    pub state: String,
    pub expires: u64,
}

impl Lease {
    pub fn is_bound(&self) -> bool {
        self.state == "bound"
    }
}

/// Parses `provd leases` output. Every non-empty line must be a JSON object with the contract's
/// fields; anything else is an error (a malformed table is a finding, not noise).
pub fn parse_provd(jsonl: &str) -> Result<Vec<Lease>> {
    let mut out = Vec::new();
    for (i, line) in jsonl.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(line)
            .with_context(|| format!("provd leases line {}: not JSON: {line:?}", i + 1))?;
        let field = |k: &str| {
            v.get(k)
                .with_context(|| format!("provd leases line {}: no {k:?}: {line}", i + 1))
        };
        let addr = field("addr")?
            .as_str()
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("provd leases line {}: bad addr: {line}", i + 1))?;
        let mac = match field("mac")?.as_str() {
            Some("") | None => None,
            Some(m) => Some(crate::parse_mac(m)?),
        };
        let state = field("state")?
            .as_str()
            .with_context(|| format!("provd leases line {}: bad state: {line}", i + 1))?
            .to_string();
        let expires = field("expires")?
            .as_u64()
            .with_context(|| format!("provd leases line {}: bad expires: {line}", i + 1))?;
        out.push(Lease {
            mac,
            addr,
            state,
            expires,
        });
    }
    Ok(out)
}

/// Replays a Kea memfile lease CSV into the current table (one row per live address).
pub fn parse_kea_csv(csv: &str) -> Result<Vec<Lease>> {
    let mut lines = csv.lines();
    let header: Vec<&str> = lines
        .next()
        .context("empty Kea lease file")?
        .split(',')
        .collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .with_context(|| format!("Kea lease file has no {name:?} column"))
    };
    let (c_addr, c_hw, c_valid, c_exp, c_state) = (
        col("address")?,
        col("hwaddr")?,
        col("valid_lifetime")?,
        col("expire")?,
        col("state")?,
    );
    let mut table: BTreeMap<Ipv4Addr, Lease> = BTreeMap::new();
    for (i, line) in lines.enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split(',').collect();
        let get = |c: usize| {
            f.get(c)
                .copied()
                .with_context(|| format!("Kea lease file row {}: too few fields: {line:?}", i + 2))
        };
        let addr: Ipv4Addr = get(c_addr)?
            .parse()
            .with_context(|| format!("row {}: {line:?}", i + 2))?;
        let valid: u64 = get(c_valid)?.parse().unwrap_or(0);
        if valid == 0 {
            table.remove(&addr);
            continue;
        }
        let mac = match get(c_hw)? {
            "" => None,
            m => crate::parse_mac(m).ok(),
        };
        let state = match get(c_state)? {
            "0" => "bound",
            "1" => "declined",
            "2" => "expired-reclaimed",
            other => bail!("Kea lease file row {}: unknown state {other:?}", i + 2),
        };
        table.insert(
            addr,
            Lease {
                mac,
                addr,
                state: state.into(),
                expires: get(c_exp)?.parse().unwrap_or(0),
            },
        );
    }
    Ok(table.into_values().collect())
}

/// What the crash test found when holding the durable table against the ACKs seen on the wire.
#[derive(Debug, Default)]
pub struct TableCheck {
    /// ACKed (mac, addr) pairs found bound to the same client.
    pub matched: usize,
    /// ACKed pairs with no bound lease for that address.
    pub missing: Vec<([u8; 6], Ipv4Addr)>,
    /// ACKed pairs whose address the table gives to another client (or to none).
    pub wrong_owner: Vec<([u8; 6], Ipv4Addr, Option<[u8; 6]>)>,
    /// Addresses bound more than once in the table, with their owners.
    pub duplicates: Vec<(Ipv4Addr, Vec<Option<[u8; 6]>>)>,
}

impl TableCheck {
    pub fn ok(&self) -> bool {
        self.missing.is_empty() && self.wrong_owner.is_empty() && self.duplicates.is_empty()
    }

    /// A short description of the first few problems of each kind.
    pub fn describe(&self) -> String {
        let m = |m: &Option<[u8; 6]>| m.map_or("-".into(), |m| crate::fmt_mac(&m));
        let mut parts = Vec::new();
        if !self.missing.is_empty() {
            let ex: Vec<String> = self
                .missing
                .iter()
                .take(5)
                .map(|(mac, a)| format!("{} -> {a}", crate::fmt_mac(mac)))
                .collect();
            parts.push(format!(
                "{} ACKed leases missing ({})",
                self.missing.len(),
                ex.join(", ")
            ));
        }
        if !self.wrong_owner.is_empty() {
            let ex: Vec<String> = self
                .wrong_owner
                .iter()
                .take(5)
                .map(|(mac, a, o)| {
                    format!("{a} ACKed to {} but held by {}", crate::fmt_mac(mac), m(o))
                })
                .collect();
            parts.push(format!(
                "{} ACKed leases owned by another client ({})",
                self.wrong_owner.len(),
                ex.join(", ")
            ));
        }
        if !self.duplicates.is_empty() {
            let ex: Vec<String> = self
                .duplicates
                .iter()
                .take(5)
                .map(|(a, owners)| {
                    format!(
                        "{a} x{} [{}]",
                        owners.len(),
                        owners.iter().map(m).collect::<Vec<_>>().join(" ")
                    )
                })
                .collect();
            parts.push(format!(
                "{} addresses bound twice ({})",
                self.duplicates.len(),
                ex.join(", ")
            ));
        }
        parts.join("; ")
    }
}

/// Checks every ACKed `mac → addr` against `table`: present, bound, same owner; and that no
/// address is bound more than once.
pub fn check_table(acked: &BTreeMap<[u8; 6], Ipv4Addr>, table: &[Lease]) -> TableCheck {
    let mut by_addr: HashMap<Ipv4Addr, Vec<&Lease>> = HashMap::new();
    for l in table.iter().filter(|l| l.is_bound()) {
        by_addr.entry(l.addr).or_default().push(l);
    }
    let mut c = TableCheck::default();
    for (addr, ls) in &by_addr {
        if ls.len() > 1 {
            c.duplicates
                .push((*addr, ls.iter().map(|l| l.mac).collect()));
        }
    }
    c.duplicates.sort_by_key(|d| d.0);
    for (mac, addr) in acked {
        match by_addr.get(addr) {
            None => c.missing.push((*mac, *addr)),
            Some(ls) if ls.iter().any(|l| l.mac == Some(*mac)) => c.matched += 1,
            Some(ls) => c.wrong_owner.push((*mac, *addr, ls[0].mac)),
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC1: [u8; 6] = [0, 0x0c, 1, 2, 3, 4];
    const MAC2: [u8; 6] = [0, 0x0c, 1, 2, 3, 5];

    #[test]
    fn parses_provd_json_lines() {
        let t = parse_provd(
            r#"{"mac":"00:0c:01:02:03:04","client":"01000c01020304","addr":"198.19.0.10","state":"bound","expires":1790000000}

{"mac":"00:0c:01:02:03:05","client":"01000c01020305","addr":"198.19.0.11","state":"released","expires":1790000001}"#,
        )
        .unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].mac, Some(MAC1));
        assert_eq!(t[0].addr, Ipv4Addr::new(198, 19, 0, 10));
        assert!(t[0].is_bound() && !t[1].is_bound());
        assert!(parse_provd("not json").is_err());
        assert!(parse_provd(r#"{"mac":"00:0c:01:02:03:04","state":"bound","expires":1}"#).is_err());
    }

    #[test]
    fn replays_kea_csv() {
        let csv = "address,hwaddr,client_id,valid_lifetime,expire,subnet_id,fqdn_fwd,fqdn_rev,hostname,state,user_context\n\
198.19.0.10,00:0c:01:02:03:04,01:00:0c:01:02:03:04,3600,1795319012,3,0,0,,0,\n\
198.19.0.11,00:0c:01:02:03:05,01:00:0c:01:02:03:05,3600,1795319012,3,0,0,,0,\n\
198.19.0.11,00:0c:01:02:03:05,01:00:0c:01:02:03:05,0,1795319012,3,0,0,,0,\n\
198.19.0.12,00:0c:01:02:03:05,01:00:0c:01:02:03:05,3600,1795319013,3,0,0,,0,\n";
        let t = parse_kea_csv(csv).unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t[1].addr, Ipv4Addr::new(198, 19, 0, 12));
        assert_eq!(t[1].mac, Some(MAC2));
        assert!(parse_kea_csv("").is_err());
        assert!(parse_kea_csv("a,b\n").is_err());
    }

    #[test]
    fn table_check_finds_each_kind_of_problem() {
        let lease = |mac, a: [u8; 4], state: &str| Lease {
            mac: Some(mac),
            addr: Ipv4Addr::from(a),
            state: state.into(),
            expires: 0,
        };
        let mut acked = BTreeMap::new();
        acked.insert(MAC1, Ipv4Addr::new(198, 19, 0, 10));
        let good = [lease(MAC1, [198, 19, 0, 10], "bound")];
        let c = check_table(&acked, &good);
        assert!(c.ok() && c.matched == 1, "{c:?}");

        let missing = [lease(MAC1, [198, 19, 0, 10], "released")];
        assert_eq!(check_table(&acked, &missing).missing.len(), 1);

        let stolen = [lease(MAC2, [198, 19, 0, 10], "bound")];
        let c = check_table(&acked, &stolen);
        assert_eq!(c.wrong_owner.len(), 1);
        assert!(c.describe().contains("held by 00:0c:01:02:03:05"));

        let twice = [
            lease(MAC1, [198, 19, 0, 10], "bound"),
            lease(MAC2, [198, 19, 0, 10], "bound"),
        ];
        let c = check_table(&acked, &twice);
        assert_eq!(c.duplicates.len(), 1);
        assert!(!c.ok());
        assert!(c.describe().contains("bound twice"));
    }
}
