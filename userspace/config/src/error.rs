//! Config errors: every one names the field it is about, so an operator with a 2,000-line
//! config and a refused reload can go straight to the line that is wrong.

use std::fmt;

/// One problem in the config.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", Line(self))]
pub struct ConfigError {
    /// Field path in the TOML document, e.g. `shared_network[0].subnet[1].pool[0].end`; the
    /// file name for an I/O error; empty for a TOML syntax error (the message then gives the
    /// line and column).
    pub path: String,
    /// What is wrong, e.g. `10.1.1.300 is not an IPv4 address`.
    pub message: String,
}

struct Line<'a>(&'a ConfigError);

impl fmt::Display for Line<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.path.is_empty() {
            f.write_str(&self.0.message)
        } else {
            write!(f, "{}: {}", self.0.path, self.0.message)
        }
    }
}

impl ConfigError {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// Everything wrong with a config, in document order as far as possible. Never empty when
/// returned as an error. Display: one `path: message` line per error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", Lines(&self.0))]
pub struct ConfigErrors(pub Vec<ConfigError>);

struct Lines<'a>(&'a [ConfigError]);

impl fmt::Display for Lines<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl ConfigErrors {
    /// The errors whose path is exactly `path`.
    pub fn at<'a>(&'a self, path: &'a str) -> impl Iterator<Item = &'a ConfigError> + 'a {
        self.0.iter().filter(move |e| e.path == path)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, ConfigError> {
        self.0.iter()
    }
}

impl<'a> IntoIterator for &'a ConfigErrors {
    type Item = &'a ConfigError;
    type IntoIter = std::slice::Iter<'a, ConfigError>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl From<ConfigError> for ConfigErrors {
    fn from(e: ConfigError) -> Self {
        ConfigErrors(vec![e])
    }
}

/// 1-based line and column (in characters) of byte offset `at` in `src`.
fn line_col(src: &str, at: usize) -> (usize, usize) {
    let at = at.min(src.len());
    let before = src.get(..at).unwrap_or(src);
    let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = before[line_start..].chars().count() + 1;
    (line, col)
}

/// Converts a deserialisation failure: the path comes from `serde_path_to_error`, the position
/// from the TOML span.
pub(crate) fn from_serde(
    err: serde_path_to_error::Error<toml::de::Error>,
    src: &str,
) -> ConfigError {
    use serde_path_to_error::Segment;
    let mut path = String::new();
    for seg in err.path().iter() {
        match seg {
            Segment::Seq { index } => path.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
            }
            Segment::Unknown => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push('?');
            }
        }
    }
    let inner = err.inner();
    // toml messages can span lines ("invalid string\nexpected ..."): keep one line per error.
    let msg = inner
        .message()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
        // The wire types use i64/f64 so ranges can be checked later; say it in TOML terms.
        .replace("expected i64", "expected an integer")
        .replace("expected f64", "expected a number");
    let message = match (inner.span(), path.is_empty()) {
        (Some(span), true) => {
            let (l, c) = line_col(src, span.start);
            format!("TOML error at line {l}, column {c}: {msg}")
        }
        (Some(span), false) => {
            let (l, c) = line_col(src, span.start);
            format!("{msg} (line {l}, column {c})")
        }
        (None, true) => format!("TOML error: {msg}"),
        (None, false) => msg,
    };
    ConfigError { path, message }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display() {
        let e = ConfigErrors(vec![
            ConfigError::new("a.b", "bad"),
            ConfigError::new("", "TOML error at line 1, column 2: x"),
        ]);
        assert_eq!(e.to_string(), "a.b: bad\nTOML error at line 1, column 2: x");
    }

    #[test]
    fn positions() {
        assert_eq!(line_col("ab\ncd", 0), (1, 1));
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
        assert_eq!(line_col("é\nx", 3), (2, 1));
    }
}
