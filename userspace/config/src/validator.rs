//! The one validation style every role uses: a [`Validator`] collects every [`ConfigError`],
//! each with the field path it is about, so one load reports every mistake; the checks return
//! a usable value (a default, or `None`) so that validation always goes on.
//!
//! Field paths are built with [`field`] and [`index`] (`shared_network[0].subnet[1].pool`).

use std::net::Ipv4Addr;
use std::path::PathBuf;

use crate::bootfile::BootFile;
use crate::error::{ConfigError, ConfigErrors};
use crate::parse;

/// Most addresses in one address-list option (n × 4 bytes ≤ 255).
pub(crate) const MAX_ADDR_LIST: usize = 63;

/// `base.name`: a key of the table at `base`.
pub(crate) fn field(base: &str, name: &str) -> String {
    format!("{base}.{name}")
}

/// `base[i]`: an element of the array at `base`.
pub(crate) fn index(base: &str, i: usize) -> String {
    format!("{base}[{i}]")
}

/// Collects the errors of one validation run.
#[derive(Debug, Default)]
pub(crate) struct Validator {
    errors: Vec<ConfigError>,
}

impl Validator {
    pub(crate) fn err(&mut self, path: impl Into<String>, msg: impl Into<String>) {
        self.errors.push(ConfigError::new(path, msg));
    }

    /// `value` if validation found nothing wrong, else every error.
    pub(crate) fn finish<T>(self, value: impl FnOnce() -> T) -> Result<T, ConfigErrors> {
        if self.errors.is_empty() {
            Ok(value())
        } else {
            Err(ConfigErrors(self.errors))
        }
    }

    /// The value of a parser's result; its message becomes an error at `path`.
    pub(crate) fn check<T>(&mut self, path: &str, r: Result<T, String>) -> Option<T> {
        r.map_err(|m| self.err(path, m)).ok()
    }

    /// An address a client may be sent to ([`parse::unicast`]).
    pub(crate) fn unicast(&mut self, path: &str, s: &str) -> Option<Ipv4Addr> {
        self.check(path, parse::unicast(s))
    }

    pub(crate) fn opt_unicast(&mut self, path: &str, s: Option<&String>) -> Option<Ipv4Addr> {
        s.and_then(|s| self.unicast(path, s))
    }

    /// Any IPv4 address; `default` when absent or wrong.
    pub(crate) fn ipv4(&mut self, path: &str, s: Option<&String>, default: Ipv4Addr) -> Ipv4Addr {
        match s {
            None => default,
            Some(s) => self.check(path, parse::ipv4(s)).unwrap_or(default),
        }
    }

    /// A listener's bind address: the wildcard or a unicast address; `default` when absent
    /// or wrong.
    pub(crate) fn bind(&mut self, path: &str, b: Option<&String>, default: Ipv4Addr) -> Ipv4Addr {
        match b {
            None => default,
            Some(b) => match parse::ipv4(b) {
                Ok(a) if a.is_unspecified() => a,
                Ok(_) => self.unicast(path, b).unwrap_or(default),
                Err(m) => {
                    self.err(path, m);
                    default
                }
            },
        }
    }

    /// Unicast addresses for one option: each valid, none twice, at most [`MAX_ADDR_LIST`].
    pub(crate) fn addr_list(&mut self, path: &str, v: &[String]) -> Vec<Ipv4Addr> {
        if v.len() > MAX_ADDR_LIST {
            self.err(
                path,
                format!(
                    "{} addresses; one option holds at most {MAX_ADDR_LIST}",
                    v.len()
                ),
            );
        }
        let mut out: Vec<Ipv4Addr> = Vec::with_capacity(v.len());
        for (i, s) in v.iter().enumerate() {
            let p = index(path, i);
            if let Some(a) = self.unicast(&p, s) {
                if out.contains(&a) {
                    self.err(p, format!("{a} is listed twice"));
                } else {
                    out.push(a);
                }
            }
        }
        out
    }

    /// An integer in `lo..=hi`, `default` when absent or out of range; `what` names it in the
    /// message (`"a UDP port"`, `"the worker count (0 = one per core)"`).
    pub(crate) fn int(
        &mut self,
        path: &str,
        v: Option<i64>,
        default: i64,
        lo: i64,
        hi: i64,
        what: &str,
    ) -> i64 {
        match v {
            None => default,
            Some(v) if (lo..=hi).contains(&v) => v,
            Some(v) => {
                self.err(
                    path,
                    format!("{v} is out of range: {what} must be {lo}..={hi}"),
                );
                default
            }
        }
    }

    /// Seconds in `min..=u32::MAX`.
    pub(crate) fn u32_secs(&mut self, path: &str, v: Option<i64>, default: u32, min: u32) -> u32 {
        let v = self.int(
            path,
            v,
            default.into(),
            min.into(),
            u32::MAX.into(),
            "seconds",
        );
        u32::try_from(v).unwrap_or(default)
    }

    pub(crate) fn boot_file(&mut self, path: &str, s: Option<&String>) -> Option<BootFile> {
        s.and_then(|s| self.check(path, BootFile::parse(s)))
    }

    /// A file name that may be left out but not given empty.
    pub(crate) fn file(&mut self, path: &str, v: Option<&String>) -> Option<PathBuf> {
        match v.map(String::as_str) {
            Some("") => {
                self.err(path, "the file name is empty");
                None
            }
            other => other.map(PathBuf::from),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collects_every_error_with_its_path() {
        let mut v = Validator::default();
        assert_eq!(v.int("a.port", Some(0), 7, 1, 9, "a port"), 7);
        assert_eq!(v.int("a.n", Some(3), 7, 1, 9, "n"), 3);
        assert_eq!(
            v.addr_list("a.l", &["10.0.0.1".into(), "10.0.0.1".into(), "x".into()]),
            [Ipv4Addr::new(10, 0, 0, 1)]
        );
        let e = v.finish(|| ()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "a.port: 0 is out of range: a port must be 1..=9\n\
             a.l[1]: 10.0.0.1 is listed twice\n\
             a.l[2]: x is not an IPv4 address"
        );
        assert_eq!(Validator::default().finish(|| 5), Ok(5));
    }
}
