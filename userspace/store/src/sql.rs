//! The little both backends share below the store's logic: a parameter/column value, a row,
//! and the connection interface ([`Conn`]) the logic in `ops` is written against, so that the
//! semantics (validation, `Expect`, audit, change rows) exist once.
//!
//! SQL text is written once, in the dialect both accept (UPSERT, `RETURNING`, window
//! functions), with PostgreSQL's `$n` placeholders; the SQLite side rewrites them to `?n`.

use crate::{Result, StoreError};

/// A bound parameter or a read column.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum V {
    Null,
    I64(i64),
    Text(String),
    /// JSON text; bound as `jsonb` where the column is one.
    Json(String),
    /// A parsed JSON column (PostgreSQL's `jsonb` reads as one).
    JsonVal(serde_json::Value),
    Blob(Vec<u8>),
}

impl V {
    pub(crate) fn opt_text(s: Option<&str>) -> V {
        s.map_or(V::Null, |s| V::Text(s.to_owned()))
    }

    pub(crate) fn json(v: &impl serde::Serialize) -> Result<V> {
        serde_json::to_string(v)
            .map(V::Json)
            .map_err(|e| StoreError::Backend(format!("encoding JSON: {e}")))
    }

    pub(crate) fn u64(v: u64) -> V {
        V::I64(i64::try_from(v).unwrap_or(i64::MAX))
    }
}

/// One result row, columns in `SELECT` order.
#[derive(Debug)]
pub(crate) struct Row(pub(crate) Vec<V>);

fn col_err(i: usize, want: &str, got: &V) -> StoreError {
    StoreError::Backend(format!("column {i}: want {want}, got {got:?}"))
}

impl Row {
    fn take(&mut self, i: usize) -> V {
        self.0
            .get_mut(i)
            .map_or(V::Null, |v| std::mem::replace(v, V::Null))
    }

    pub(crate) fn i64(&mut self, i: usize) -> Result<i64> {
        match self.take(i) {
            V::I64(n) => Ok(n),
            v => Err(col_err(i, "an integer", &v)),
        }
    }

    pub(crate) fn u64(&mut self, i: usize) -> Result<u64> {
        let n = self.i64(i)?;
        u64::try_from(n).map_err(|_| col_err(i, "a count", &V::I64(n)))
    }

    pub(crate) fn opt_text(&mut self, i: usize) -> Result<Option<String>> {
        match self.take(i) {
            V::Null => Ok(None),
            V::Text(s) | V::Json(s) => Ok(Some(s)),
            v => Err(col_err(i, "text", &v)),
        }
    }

    pub(crate) fn text(&mut self, i: usize) -> Result<String> {
        self.opt_text(i)?
            .ok_or_else(|| col_err(i, "text", &V::Null))
    }

    pub(crate) fn opt_json(&mut self, i: usize) -> Result<Option<serde_json::Value>> {
        match self.take(i) {
            V::Null => Ok(None),
            V::JsonVal(v) => Ok(Some(v)),
            V::Text(s) | V::Json(s) => serde_json::from_str(&s)
                .map(Some)
                .map_err(|e| StoreError::Backend(format!("column {i}: stored JSON: {e}"))),
            v => Err(col_err(i, "JSON", &v)),
        }
    }

    pub(crate) fn json(&mut self, i: usize) -> Result<serde_json::Value> {
        self.opt_json(i)?
            .ok_or_else(|| col_err(i, "JSON", &V::Null))
    }

    /// A JSON column decoded into `T`.
    pub(crate) fn json_as<T: serde::de::DeserializeOwned>(&mut self, i: usize) -> Result<T> {
        serde_json::from_value(self.json(i)?)
            .map_err(|e| StoreError::Backend(format!("column {i}: stored JSON: {e}")))
    }
}

/// A connection (usually inside a transaction) the store's logic runs statements on.
pub(crate) trait Conn {
    /// Runs a statement; returns the rows it changed.
    fn exec(&mut self, sql: &str, params: &[V]) -> Result<u64>;
    /// Runs a query; returns every row.
    fn query(&mut self, sql: &str, params: &[V]) -> Result<Vec<Row>>;
    /// What to append to a `SELECT` of a row the transaction is about to change (`FOR
    /// UPDATE`) or relies on staying (`FOR SHARE`); empty where the whole database is locked
    /// for the write (SQLite).
    fn lock_clause(&self, share: bool) -> &'static str;

    fn one(&mut self, sql: &str, params: &[V]) -> Result<Option<Row>> {
        Ok(self.query(sql, params)?.into_iter().next())
    }
}
