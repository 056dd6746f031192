//! Bulk formats, sans-IO: devices as CSV or JSON lines (import and export), and Kea's memfile
//! lease CSV (import), so an operator can move from Kea without renumbering.
//!
//! Every parser is total: any bytes give rows or [`RowError`]s (with the line and, where one is
//! at fault, the field), never a panic; a bad row does not stop the good rows after it. The
//! parsers read from any [`Read`]; the caller chunks what they yield into
//! [`Store::import_devices`](crate::Store::import_devices) or the lease log.
//!
//! Devices CSV: a header row naming the columns, in any order: `mac` (required), `type`,
//! `subscriber`, `class_of_service`, `serial`, `device_id`, `duid`, and `var.NAME` for each
//! per-device variable. An empty cell is an absent value. A variable's cell is typed: an
//! integer, a float, `true`/`false`, a JSON string literal in double quotes (a string as
//! written, for a string that would otherwise read as a number: `"007"`), else the text as a
//! string. [`write_devices_csv`] writes what [`parse_devices_csv`] reads back unchanged.

use std::collections::HashMap;
use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::Ipv4Addr;

use serde_json::Value;

use crate::model::{DeviceKind, DeviceSpec, Mac, Vars, check_vars};

/// A row that could not be read: its line (1-based; a CSV row's first line), the field at fault
/// when one is, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    pub line: u64,
    pub field: Option<String>,
    pub message: String,
}

impl RowError {
    fn new(line: u64, field: Option<&str>, message: impl Into<String>) -> RowError {
        RowError {
            line,
            field: field.map(str::to_owned),
            message: message.into(),
        }
    }
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.field {
            Some(field) => write!(f, "line {}: {field}: {}", self.line, self.message),
            None => write!(f, "line {}: {}", self.line, self.message),
        }
    }
}

impl std::error::Error for RowError {}

/// The longest JSON line read; a longer one is a bad row (and is skipped, not buffered).
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// The device columns a CSV header may name, besides `var.NAME`.
pub const DEVICE_COLUMNS: [&str; 7] = [
    "mac",
    "type",
    "subscriber",
    "class_of_service",
    "serial",
    "device_id",
    "duid",
];

const VAR_PREFIX: &str = "var.";

// ---------------------------------------------------------------------------------------------
// Devices, CSV

/// Where each column of a devices CSV is.
#[derive(Debug, Default)]
struct DeviceColumns {
    /// Index of each of [`DEVICE_COLUMNS`] present.
    fixed: [Option<usize>; 7],
    vars: Vec<(usize, String)>,
    width: usize,
}

impl DeviceColumns {
    /// Reads the header row; an error names the column at fault.
    fn from_header(header: &csv::ByteRecord, line: u64) -> Result<DeviceColumns, RowError> {
        let mut cols = DeviceColumns {
            width: header.len(),
            ..DeviceColumns::default()
        };
        let mut seen: HashMap<String, usize> = HashMap::new();
        for (i, raw) in header.iter().enumerate() {
            let name = std::str::from_utf8(raw)
                .map_err(|_| {
                    RowError::new(
                        line,
                        None,
                        format!("column {} of the header is not UTF-8", i + 1),
                    )
                })?
                .trim()
                // A spreadsheet's UTF-8 byte order mark.
                .trim_start_matches('\u{feff}');
            if let Some(first) = seen.insert(name.to_owned(), i) {
                return Err(RowError::new(
                    line,
                    Some(name),
                    format!("column named twice (columns {} and {})", first + 1, i + 1),
                ));
            }
            if let Some(k) = DEVICE_COLUMNS.iter().position(|c| *c == name) {
                cols.fixed[k] = Some(i);
            } else if let Some(var) = name.strip_prefix(VAR_PREFIX) {
                let mut probe = Vars::new();
                probe.insert(var.to_owned(), Value::Bool(true));
                check_vars("var", &probe).map_err(|e| {
                    RowError::new(line, Some(name), format!("bad variable name: {e}"))
                })?;
                cols.vars.push((i, var.to_owned()));
            } else {
                return Err(RowError::new(
                    line,
                    Some(name),
                    format!(
                        "unknown column (a header row is required; columns are {}, and var.NAME)",
                        DEVICE_COLUMNS.join(", ")
                    ),
                ));
            }
        }
        if cols.fixed[0].is_none() {
            return Err(RowError::new(
                line,
                Some("mac"),
                "the header has no mac column",
            ));
        }
        Ok(cols)
    }

    fn row(&self, rec: &csv::ByteRecord, line: u64) -> Result<DeviceSpec, RowError> {
        if rec.len() != self.width {
            return Err(RowError::new(
                line,
                None,
                format!("{} fields; the header has {}", rec.len(), self.width),
            ));
        }
        let text = |i: usize, name: &str| -> Result<&str, RowError> {
            std::str::from_utf8(rec.get(i).unwrap_or_default())
                .map_err(|_| RowError::new(line, Some(name), "not UTF-8"))
        };
        // An empty cell is an absent value.
        let opt = |k: usize| -> Result<Option<String>, RowError> {
            match self.fixed[k] {
                None => Ok(None),
                Some(i) => {
                    let s = text(i, DEVICE_COLUMNS[k])?;
                    Ok((!s.is_empty()).then(|| s.to_owned()))
                }
            }
        };
        let mac = match self.fixed[0] {
            Some(i) => text(i, "mac")?.trim(),
            None => "",
        };
        if mac.is_empty() {
            return Err(RowError::new(line, Some("mac"), "is required"));
        }
        let mac: Mac = mac
            .parse()
            .map_err(|e| RowError::new(line, Some("mac"), format!("{e}: {mac:?}")))?;
        let kind = match opt(1)? {
            None => DeviceKind::default(),
            Some(t) => t
                .trim()
                .parse()
                .map_err(|e: String| RowError::new(line, Some("type"), e))?,
        };
        let mut vars = Vars::new();
        for (i, name) in &self.vars {
            let field = format!("{VAR_PREFIX}{name}");
            let cell = text(*i, &field)?;
            if cell.is_empty() {
                continue;
            }
            let v = typed_value(cell).map_err(|m| RowError::new(line, Some(&field), m))?;
            vars.insert(name.clone(), v);
        }
        check_vars("vars", &vars).map_err(|e| store_error(line, e))?;
        Ok(DeviceSpec {
            mac,
            kind,
            subscriber: opt(2)?,
            class_of_service: opt(3)?,
            serial: opt(4)?,
            device_id: opt(5)?,
            duid: opt(6)?,
            vars,
        })
    }
}

/// A [`StoreError::Invalid`](crate::StoreError::Invalid) as a row error at `line`.
fn store_error(line: u64, e: crate::StoreError) -> RowError {
    match e {
        crate::StoreError::Invalid { field, why } => RowError {
            line,
            field: Some(field),
            message: why,
        },
        e => RowError::new(line, None, e.to_string()),
    }
}

/// A variable cell's value: integer, float, boolean, a JSON string literal, else the text.
fn typed_value(cell: &str) -> Result<Value, String> {
    if cell.starts_with('"') {
        return serde_json::from_str::<String>(cell)
            .map(Value::String)
            .map_err(|e| format!("starts with '\"' but is not a JSON string literal: {e}"));
    }
    Ok(infer(cell))
}

/// What an unquoted cell reads as.
fn infer(cell: &str) -> Value {
    if let Ok(i) = cell.parse::<i64>() {
        return Value::from(i);
    }
    if let Ok(u) = cell.parse::<u64>() {
        return Value::from(u);
    }
    match cell {
        "true" => return Value::Bool(true),
        "false" => return Value::Bool(false),
        _ => {}
    }
    // Only spellings with a digit: Rust also reads "inf" and "NaN", which JSON has no number for.
    if cell.bytes().any(|b| b.is_ascii_digit())
        && let Ok(f) = cell.parse::<f64>()
        && let Some(n) = serde_json::Number::from_f64(f)
    {
        return Value::Number(n);
    }
    Value::String(cell.to_owned())
}

/// How [`write_devices_csv`] writes a variable so that [`typed_value`] reads it back equal.
fn var_cell(v: &Value) -> String {
    match v {
        Value::String(s) => {
            if !s.is_empty() && !s.starts_with('"') && infer(s) == Value::String(s.clone()) {
                s.clone()
            } else {
                Value::String(s.clone()).to_string()
            }
        }
        // `{:?}` keeps the point or exponent, so a float never reads back as an integer.
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => i.to_string(),
            (None, Some(u), _) => u.to_string(),
            (None, None, Some(f)) => format!("{f:?}"),
            _ => n.to_string(),
        },
        Value::Bool(b) => b.to_string(),
        // Not a valid variable (check_vars refuses them); written as JSON for the record.
        other => Value::String(other.to_string()).to_string(),
    }
}

/// Reads a devices CSV (see the module docs): one item per data row, in file order.
pub fn parse_devices_csv<R: Read>(reader: R) -> impl Iterator<Item = Result<DeviceSpec, RowError>> {
    parse_devices_csv_numbered(reader).map(|r| r.map(|(_, d)| d))
}

/// [`parse_devices_csv`], each device with the line its row starts at (for reporting what the
/// store later refuses).
pub fn parse_devices_csv_numbered<R: Read>(
    reader: R,
) -> impl Iterator<Item = Result<(u64, DeviceSpec), RowError>> {
    let rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(reader);
    DevicesCsv {
        rdr,
        cols: None,
        done: false,
    }
}

struct DevicesCsv<R> {
    rdr: csv::Reader<R>,
    cols: Option<DeviceColumns>,
    done: bool,
}

impl<R: Read> Iterator for DevicesCsv<R> {
    type Item = Result<(u64, DeviceSpec), RowError>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut rec = csv::ByteRecord::new();
        while !self.done {
            match self.rdr.read_byte_record(&mut rec) {
                Ok(false) => {
                    self.done = true;
                    if self.cols.is_none() {
                        return Some(Err(RowError::new(
                            1,
                            None,
                            "no header row (the first row names the columns: mac, type, ...)",
                        )));
                    }
                }
                Ok(true) => {
                    let line = rec.position().map_or(0, csv::Position::line);
                    match &self.cols {
                        Some(cols) => return Some(cols.row(&rec, line).map(|d| (line, d))),
                        None => match DeviceColumns::from_header(&rec, line) {
                            Ok(cols) => self.cols = Some(cols),
                            Err(e) => {
                                // Without the header no row means anything: stop here.
                                self.done = true;
                                return Some(Err(e));
                            }
                        },
                    }
                }
                Err(e) => {
                    self.done = true;
                    let line = self.rdr.position().line();
                    return Some(Err(RowError::new(line, None, e.to_string())));
                }
            }
        }
        None
    }
}

/// Writes `devices` as a devices CSV: the fixed columns, then a `var.NAME` column for every
/// variable any device has (sorted by name).
pub fn write_devices_csv<'a, W: Write>(
    writer: W,
    devices: impl IntoIterator<Item = &'a DeviceSpec> + Clone,
) -> io::Result<()> {
    let mut names: Vec<&String> = devices
        .clone()
        .into_iter()
        .flat_map(|d| d.vars.keys())
        .collect();
    names.sort_unstable();
    names.dedup();
    let mut w = csv::WriterBuilder::new().from_writer(writer);
    let header = DEVICE_COLUMNS
        .iter()
        .map(|c| (*c).to_owned())
        .chain(names.iter().map(|n| format!("{VAR_PREFIX}{n}")));
    w.write_record(header).map_err(io::Error::other)?;
    for d in devices {
        let opt = |o: &Option<String>| o.clone().unwrap_or_default();
        let row = [
            d.mac.to_string(),
            d.kind.as_str().to_owned(),
            opt(&d.subscriber),
            opt(&d.class_of_service),
            opt(&d.serial),
            opt(&d.device_id),
            opt(&d.duid),
        ]
        .into_iter()
        .chain(
            names
                .iter()
                .map(|n| d.vars.get(*n).map(var_cell).unwrap_or_default()),
        );
        w.write_record(row).map_err(io::Error::other)?;
    }
    w.flush()
}

// ---------------------------------------------------------------------------------------------
// Devices, JSON lines

/// Reads JSON lines, one [`DeviceSpec`] object a line; blank lines are skipped. An error names
/// the field (`mac`, `vars.x`, ...) where the JSON says which.
pub fn parse_devices_jsonl<R: Read>(
    reader: R,
) -> impl Iterator<Item = Result<DeviceSpec, RowError>> {
    parse_devices_jsonl_numbered(reader).map(|r| r.map(|(_, d)| d))
}

/// [`parse_devices_jsonl`], each device with its line.
pub fn parse_devices_jsonl_numbered<R: Read>(
    reader: R,
) -> impl Iterator<Item = Result<(u64, DeviceSpec), RowError>> {
    Lines::new(reader).filter_map(|item| {
        let (line, bytes) = match item {
            Ok(l) => l,
            Err(e) => return Some(Err(e)),
        };
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return None;
        }
        Some(device_json(line, &bytes).map(|d| (line, d)))
    })
}

fn device_json(line: u64, bytes: &[u8]) -> Result<DeviceSpec, RowError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let d: DeviceSpec = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let field = (path != ".").then_some(path);
        RowError {
            line,
            field,
            message: e.into_inner().to_string(),
        }
    })?;
    de.end()
        .map_err(|e| RowError::new(line, None, format!("after the object: {e}")))?;
    check_vars("vars", &d.vars).map_err(|e| store_error(line, e))?;
    Ok(d)
}

/// Lines of at most [`MAX_LINE_BYTES`], numbered from 1, without their line ending.
struct Lines<R> {
    rdr: BufReader<R>,
    line: u64,
    done: bool,
}

impl<R: Read> Lines<R> {
    fn new(reader: R) -> Self {
        Lines {
            rdr: BufReader::new(reader),
            line: 0,
            done: false,
        }
    }

    /// Consumes the rest of an over-long line. `Ok(true)`: a newline ended it.
    fn skip_line(&mut self) -> io::Result<bool> {
        loop {
            let buf = self.rdr.fill_buf()?;
            if buf.is_empty() {
                return Ok(false);
            }
            match buf.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    self.rdr.consume(i + 1);
                    return Ok(true);
                }
                None => {
                    let n = buf.len();
                    self.rdr.consume(n);
                }
            }
        }
    }
}

impl<R: Read> Iterator for Lines<R> {
    type Item = Result<(u64, Vec<u8>), RowError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        self.line += 1;
        let line = self.line;
        let mut buf = Vec::new();
        let limit = u64::try_from(MAX_LINE_BYTES).unwrap_or(u64::MAX) + 1;
        match (&mut self.rdr).take(limit).read_until(b'\n', &mut buf) {
            Ok(0) => {
                self.done = true;
                None
            }
            Ok(_) if buf.last() == Some(&b'\n') => {
                buf.pop();
                if buf.last() == Some(&b'\r') {
                    buf.pop();
                }
                Some(Ok((line, buf)))
            }
            Ok(n) if n > MAX_LINE_BYTES => {
                if let Err(e) = self.skip_line() {
                    self.done = true;
                    return Some(Err(RowError::new(line, None, e.to_string())));
                }
                Some(Err(RowError::new(
                    line,
                    None,
                    format!("line longer than {MAX_LINE_BYTES} bytes"),
                )))
            }
            // The last line, without a newline.
            Ok(_) => Some(Ok((line, buf))),
            Err(e) => {
                self.done = true;
                Some(Err(RowError::new(line, None, e.to_string())))
            }
        }
    }
}

/// Writes `devices` as JSON lines, one object a line; [`parse_devices_jsonl`] reads them back.
pub fn write_devices_jsonl<'a, W: Write>(
    mut writer: W,
    devices: impl IntoIterator<Item = &'a DeviceSpec>,
) -> io::Result<()> {
    for d in devices {
        serde_json::to_writer(&mut writer, d)?;
        writer.write_all(b"\n")?;
    }
    writer.flush()
}

// ---------------------------------------------------------------------------------------------
// Kea memfile leases (lease4 CSV)

/// A Kea lease4 row's `state` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeaState {
    /// 0: the lease is (or was, until `expire`) bound to the client.
    Default,
    /// 1: the client declined the address.
    Declined,
    /// 2: expired, and Kea reclaimed it.
    ExpiredReclaimed,
    /// Any other value (later Kea versions add states).
    Other(u32),
}

impl KeaState {
    fn from_u32(v: u32) -> KeaState {
        match v {
            0 => KeaState::Default,
            1 => KeaState::Declined,
            2 => KeaState::ExpiredReclaimed,
            n => KeaState::Other(n),
        }
    }
}

/// One row of a Kea memfile lease4 CSV.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeaLease {
    /// The row's line in the file.
    pub line: u64,
    pub addr: Ipv4Addr,
    /// `hwaddr`.
    pub mac: Mac,
    /// `client_id`: the client's option 61, if it sent one.
    pub client_id: Option<Vec<u8>>,
    /// Seconds; 0 marks the lease deleted.
    pub valid_lifetime: u32,
    /// `expire`, unix seconds (an infinite lease's, past 2106, saturates at `u32::MAX`).
    pub expires_at: u32,
    /// `subnet_id`, 0 when the column is absent.
    pub subnet_id: u32,
    pub state: KeaState,
}

impl KeaLease {
    /// Bound, and not expired at `now`.
    pub fn is_live(&self, now: u32) -> bool {
        self.state == KeaState::Default && self.valid_lifetime > 0 && self.expires_at > now
    }
}

/// The columns provd reads (Kea's others: fqdn_fwd, fqdn_rev, hostname, user_context, pool_id
/// are skipped). `address`, `hwaddr`, `valid_lifetime` and `expire` are required.
#[derive(Debug)]
struct KeaColumns {
    address: usize,
    hwaddr: usize,
    client_id: Option<usize>,
    valid_lifetime: usize,
    expire: usize,
    subnet_id: Option<usize>,
    state: Option<usize>,
}

impl KeaColumns {
    fn from_header(header: &csv::ByteRecord, line: u64) -> Result<KeaColumns, RowError> {
        let find = |name: &str| {
            header
                .iter()
                .position(|c| c.trim_ascii() == name.as_bytes())
        };
        let need = |name: &str| {
            find(name).ok_or_else(|| {
                RowError::new(
                    line,
                    Some(name),
                    "the header has no such column (is this a Kea lease4 memfile CSV? It starts \
                     address,hwaddr,client_id,valid_lifetime,expire,...)",
                )
            })
        };
        Ok(KeaColumns {
            address: need("address")?,
            hwaddr: need("hwaddr")?,
            client_id: find("client_id"),
            valid_lifetime: need("valid_lifetime")?,
            expire: need("expire")?,
            subnet_id: find("subnet_id"),
            state: find("state"),
        })
    }

    fn row(&self, rec: &csv::ByteRecord, line: u64) -> Result<KeaLease, RowError> {
        let text = |i: usize, name: &str| -> Result<&str, RowError> {
            let raw = rec.get(i).ok_or_else(|| {
                RowError::new(
                    line,
                    Some(name),
                    format!("missing: the row has {} fields", rec.len()),
                )
            })?;
            std::str::from_utf8(raw)
                .map(str::trim)
                .map_err(|_| RowError::new(line, Some(name), "not UTF-8"))
        };
        let num = |i: Option<usize>, name: &str| -> Result<Option<u64>, RowError> {
            let Some(i) = i else { return Ok(None) };
            let s = text(i, name)?;
            if s.is_empty() {
                return Ok(None);
            }
            s.parse::<u64>()
                .map(Some)
                .map_err(|_| RowError::new(line, Some(name), format!("not a whole number: {s:?}")))
        };
        let a = text(self.address, "address")?;
        let addr: Ipv4Addr = a.parse().map_err(|_| {
            RowError::new(line, Some("address"), format!("not an IPv4 address: {a:?}"))
        })?;
        let h = text(self.hwaddr, "hwaddr")?;
        if h.is_empty() {
            return Err(RowError::new(
                line,
                Some("hwaddr"),
                "empty: provd needs the client's MAC address",
            ));
        }
        let mac: Mac = h
            .parse()
            .map_err(|e| RowError::new(line, Some("hwaddr"), format!("{e}: {h:?}")))?;
        let client_id = match self.client_id {
            None => None,
            Some(i) => {
                let c = text(i, "client_id")?;
                if c.is_empty() {
                    None
                } else {
                    Some(colon_hex(c).ok_or_else(|| {
                        RowError::new(
                            line,
                            Some("client_id"),
                            format!("not colon-separated hex bytes: {c:?}"),
                        )
                    })?)
                }
            }
        };
        let valid = num(Some(self.valid_lifetime), "valid_lifetime")?
            .ok_or_else(|| RowError::new(line, Some("valid_lifetime"), "is required"))?;
        let valid_lifetime = u32::try_from(valid).map_err(|_| {
            RowError::new(
                line,
                Some("valid_lifetime"),
                format!("{valid} is more than 2^32-1 seconds"),
            )
        })?;
        let expire = num(Some(self.expire), "expire")?
            .ok_or_else(|| RowError::new(line, Some("expire"), "is required"))?;
        let subnet_id = match num(self.subnet_id, "subnet_id")? {
            None => 0,
            Some(s) => u32::try_from(s).map_err(|_| {
                RowError::new(line, Some("subnet_id"), format!("{s} is out of range"))
            })?,
        };
        let state =
            match num(self.state, "state")? {
                None => KeaState::Default,
                Some(s) => KeaState::from_u32(u32::try_from(s).map_err(|_| {
                    RowError::new(line, Some("state"), format!("{s} is out of range"))
                })?),
            };
        Ok(KeaLease {
            line,
            addr,
            mac,
            client_id,
            valid_lifetime,
            expires_at: u32::try_from(expire).unwrap_or(u32::MAX),
            subnet_id,
            state,
        })
    }
}

/// `01:00:15:cf:aa:bb:cc` (Kea writes one or two hex digits a byte) to bytes.
fn colon_hex(s: &str) -> Option<Vec<u8>> {
    s.split(':')
        .map(|p| {
            if p.is_empty() || p.len() > 2 {
                return None;
            }
            u8::from_str_radix(p, 16).ok()
        })
        .collect()
}

/// Reads a Kea memfile lease4 CSV, one item per row in file order. Kea writes commas inside
/// `hostname` and `user_context` as `&#x2c`, never quotes, so fields are split on every comma
/// and a `"` is an ordinary byte.
pub fn parse_kea_leases_csv<R: Read>(
    reader: R,
) -> impl Iterator<Item = Result<KeaLease, RowError>> {
    let rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .quoting(false)
        .from_reader(reader);
    KeaCsv {
        rdr,
        cols: None,
        done: false,
    }
}

struct KeaCsv<R> {
    rdr: csv::Reader<R>,
    cols: Option<KeaColumns>,
    done: bool,
}

impl<R: Read> Iterator for KeaCsv<R> {
    type Item = Result<KeaLease, RowError>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut rec = csv::ByteRecord::new();
        while !self.done {
            match self.rdr.read_byte_record(&mut rec) {
                Ok(false) => {
                    self.done = true;
                    if self.cols.is_none() {
                        return Some(Err(RowError::new(
                            1,
                            None,
                            "no header row (a Kea lease4 file starts address,hwaddr,...)",
                        )));
                    }
                }
                Ok(true) => {
                    let line = rec.position().map_or(0, csv::Position::line);
                    match &self.cols {
                        Some(cols) => return Some(cols.row(&rec, line)),
                        None => match KeaColumns::from_header(&rec, line) {
                            Ok(cols) => self.cols = Some(cols),
                            Err(e) => {
                                self.done = true;
                                return Some(Err(e));
                            }
                        },
                    }
                }
                Err(e) => {
                    self.done = true;
                    let line = self.rdr.position().line();
                    return Some(Err(RowError::new(line, None, e.to_string())));
                }
            }
        }
        None
    }
}

/// Folds a memfile's append log into the leases it holds: a later row for an address replaces
/// the earlier one, a row with `valid_lifetime` 0 deletes it. The result is ordered by address;
/// it may still hold expired, declined and reclaimed leases (see [`KeaLease::is_live`]).
pub fn collapse_kea_leases(rows: impl IntoIterator<Item = KeaLease>) -> Vec<KeaLease> {
    let mut by_addr: HashMap<Ipv4Addr, KeaLease> = HashMap::new();
    for row in rows {
        if row.valid_lifetime == 0 {
            by_addr.remove(&row.addr);
        } else {
            by_addr.insert(row.addr, row);
        }
    }
    let mut out: Vec<KeaLease> = by_addr.into_values().collect();
    out.sort_unstable_by_key(|l| l.addr);
    out
}

#[cfg(test)]
mod tests;
