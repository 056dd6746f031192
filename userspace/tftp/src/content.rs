//! What a read request is answered with: the file's shared bytes, or a refusal.

use std::borrow::Cow;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use crate::packet::ErrorCode;

/// A file's bytes, shared: cloning is a reference-count increment.
#[derive(Clone, PartialEq, Eq)]
pub struct FileContent(Arc<[u8]>);

impl FileContent {
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether both share one allocation (tests check that caches do share).
    pub fn ptr_eq(&self, other: &FileContent) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl fmt::Debug for FileContent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FileContent({} bytes)", self.0.len())
    }
}

impl Deref for FileContent {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl AsRef<[u8]> for FileContent {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl From<Vec<u8>> for FileContent {
    fn from(v: Vec<u8>) -> Self {
        FileContent(v.into())
    }
}

impl From<&[u8]> for FileContent {
    fn from(v: &[u8]) -> Self {
        FileContent(v.into())
    }
}

impl From<Arc<[u8]>> for FileContent {
    fn from(v: Arc<[u8]>) -> Self {
        FileContent(v)
    }
}

/// A refusal of a request: the ERROR packet the client gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: ErrorCode,
    pub message: Cow<'static, str>,
}

impl Refusal {
    pub fn new(code: ErrorCode, message: impl Into<Cow<'static, str>>) -> Self {
        Refusal {
            code,
            message: message.into(),
        }
    }

    /// ERROR 1 with the RFC's message.
    pub fn not_found() -> Self {
        Self::new(
            ErrorCode::FILE_NOT_FOUND,
            ErrorCode::FILE_NOT_FOUND.default_message(),
        )
    }

    /// ERROR 2 with a reason.
    pub fn access_violation(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::ACCESS_VIOLATION, message)
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "error {}: {}", self.code.0, self.message)
    }
}
