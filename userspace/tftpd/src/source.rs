//! Where files come from. A [`FileSource`] answers a read request with shared bytes, a refusal,
//! or "not mine"; a [`Chain`] asks several in turn, so a generator can own the per-device names
//! (`cm/...`) and a [`StaticRoot`] serve everything else (firmware, shared configs).

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::net::SocketAddrV4;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};

use provd_tftp::{ErrorCode, FileContent, Refusal};

/// A read (RRQ) or write (WRQ) request as a file source or an upload sink sees it: which one
/// it is follows from who is asked ([`FileSource::open`] reads, [`UploadSink`] writes).
#[derive(Debug, Clone, Copy)]
pub struct TransferRequest<'a> {
    /// As the client sent it: ASCII, non-empty, not normalised.
    pub filename: &'a str,
    pub peer: SocketAddrV4,
    /// The address and port the request was sent to (from IP_PKTINFO).
    pub local: SocketAddrV4,
}

/// Why a source gives no file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenError {
    /// The name is not this source's to serve: the next source of a [`Chain`] is asked (after
    /// the last, the client gets ERROR 1).
    NotMine,
    /// The name is this source's, and the answer is this ERROR.
    Refused(Refusal),
}

impl From<Refusal> for OpenError {
    fn from(r: Refusal) -> Self {
        OpenError::Refused(r)
    }
}

/// Answers read requests. Called inline on a worker thread, between datagrams: an
/// implementation must be fast or cached (render ahead, keep the result), since every transfer
/// of that worker waits while it runs.
pub trait FileSource: Send + Sync {
    fn open(&self, req: &TransferRequest<'_>) -> Result<FileContent, OpenError>;
}

impl<T: FileSource + ?Sized> FileSource for Arc<T> {
    fn open(&self, req: &TransferRequest<'_>) -> Result<FileContent, OpenError> {
        (**self).open(req)
    }
}

impl<T: FileSource + ?Sized> FileSource for Box<T> {
    fn open(&self, req: &TransferRequest<'_>) -> Result<FileContent, OpenError> {
        (**self).open(req)
    }
}

/// Takes uploads (WRQ). Asked when the request arrives, so a refused name gets its ERROR before
/// any data flows; handed the whole file when the last block arrived. Called inline on a worker
/// thread, like [`FileSource`].
pub trait UploadSink: Send + Sync {
    /// Whether `req.filename` may be written by `req.peer`.
    fn accept(&self, req: &TransferRequest<'_>) -> Result<(), Refusal>;
    /// Stores a complete upload. The client has had its last ACK already (TFTP has no later
    /// point to report a failure), so a failure here is logged by the caller.
    fn store(&self, req: &TransferRequest<'_>, data: &[u8]) -> io::Result<()>;
}

/// Sources asked in order; the first that does not answer [`OpenError::NotMine`] decides.
pub struct Chain(Vec<Box<dyn FileSource>>);

impl Chain {
    pub fn new(sources: Vec<Box<dyn FileSource>>) -> Self {
        Chain(sources)
    }
}

impl std::fmt::Debug for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Chain({} sources)", self.0.len())
    }
}

impl FileSource for Chain {
    fn open(&self, req: &TransferRequest<'_>) -> Result<FileContent, OpenError> {
        for source in &self.0 {
            match source.open(req) {
                Err(OpenError::NotMine) => continue,
                decided => return decided,
            }
        }
        Err(OpenError::NotMine)
    }
}

/// Serves the regular files under one directory, and nothing outside it, from a shared cache.
///
/// The name is normalised first (backslashes read as slashes, leading and repeated slashes and
/// `.` dropped, any `..` refused), then resolved with symlinks followed and required to still be
/// under the root. Contents are cached by resolved path and revalidated on every request
/// against the file's device, inode, size and mtime, so a replaced file (even by rename) is
/// served new, and concurrent downloads of one firmware image share one copy. Names that do not
/// exist are [`OpenError::NotMine`].
pub struct StaticRoot {
    root: PathBuf,
    cache: Mutex<Cache>,
}

impl std::fmt::Debug for StaticRoot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaticRoot")
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

impl StaticRoot {
    /// Cache size when none is given: room for a few dozen firmware images.
    pub const DEFAULT_CACHE_BYTES: u64 = 256 << 20;

    pub fn new(dir: impl AsRef<Path>) -> io::Result<Self> {
        Self::with_cache_limit(dir, Self::DEFAULT_CACHE_BYTES)
    }

    /// A root whose cache holds at most `cache_bytes`; files larger than that are refused
    /// (they would have to be read whole per request).
    pub fn with_cache_limit(dir: impl AsRef<Path>, cache_bytes: u64) -> io::Result<Self> {
        let root = std::fs::canonicalize(dir.as_ref())?;
        if !root.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                format!("TFTP root {} is not a directory", root.display()),
            ));
        }
        Ok(StaticRoot {
            root,
            cache: Mutex::new(Cache {
                limit: cache_bytes,
                ..Cache::default()
            }),
        })
    }

    /// The resolved root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Bytes held by the cache now.
    pub fn cached_bytes(&self) -> u64 {
        self.lock().bytes
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Cache> {
        // A panic elsewhere cannot leave the cache inconsistent: every update is one insert
        // or remove with its byte count.
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn limit(&self) -> u64 {
        self.lock().limit
    }
}

impl FileSource for StaticRoot {
    fn open(&self, req: &TransferRequest<'_>) -> Result<FileContent, OpenError> {
        let relative = normalise(req.filename)?;
        let resolved = match std::fs::canonicalize(self.root.join(&relative)) {
            Ok(p) => p,
            Err(e) if is_absent(&e) => return Err(OpenError::NotMine),
            Err(e) => return Err(refusal_for(&e).into()),
        };
        if !resolved.starts_with(&self.root) {
            return Err(Refusal::access_violation("Outside the TFTP root").into());
        }
        // O_NOFOLLOW: the path was just resolved, a symlink here means it was swapped since.
        // O_NONBLOCK: a FIFO planted under the root must not hang the worker in open().
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(&resolved)
            .map_err(|e| refusal_for(&e))?;
        let meta = file.metadata().map_err(|e| refusal_for(&e))?;
        if !meta.is_file() {
            return Err(Refusal::access_violation("Not a regular file").into());
        }
        let stamp = Stamp::of(&meta);
        if let Some(content) = self.lock().get(&resolved, stamp) {
            return Ok(content);
        }
        if meta.len() > self.limit() {
            return Err(Refusal::new(ErrorCode::NOT_DEFINED, "File too large to serve").into());
        }
        let content = read_all(file, meta.len()).map_err(|e| refusal_for(&e))?;
        self.lock().insert(resolved, stamp, content.clone());
        Ok(content)
    }
}

/// Uploads into the root: new files only (an existing name is ERROR 6, never overwritten), into
/// directories that exist under the root, never through a symlink.
impl UploadSink for StaticRoot {
    fn accept(&self, req: &TransferRequest<'_>) -> Result<(), Refusal> {
        self.upload_path(req.filename).map(|_| ())
    }

    fn store(&self, req: &TransferRequest<'_>, data: &[u8]) -> io::Result<()> {
        use std::io::Write;
        let path = self
            .upload_path(req.filename)
            .map_err(|r| io::Error::new(io::ErrorKind::PermissionDenied, r.message.into_owned()))?;
        // O_EXCL: a file that appeared since the request is not overwritten; O_NOFOLLOW: nor
        // is a symlink planted there.
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o640)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)?;
        file.write_all(data)?;
        file.sync_all()
    }
}

impl StaticRoot {
    /// Where an upload of `name` goes: a new file in an existing directory under the root.
    fn upload_path(&self, name: &str) -> Result<PathBuf, Refusal> {
        let relative = normalise(name)?;
        let file_name = relative
            .file_name()
            .ok_or_else(|| Refusal::access_violation("Not a file name"))?
            .to_owned();
        let parent = relative.parent().unwrap_or(Path::new(""));
        let dir = std::fs::canonicalize(self.root.join(parent)).map_err(|e| refusal_for(&e))?;
        if !dir.starts_with(&self.root) || !dir.is_dir() {
            return Err(Refusal::access_violation("Outside the TFTP root"));
        }
        let path = dir.join(file_name);
        match std::fs::symlink_metadata(&path) {
            Ok(_) => Err(Refusal::new(ErrorCode::FILE_EXISTS, "File already exists")),
            Err(e) if is_absent(&e) => Ok(path),
            Err(e) => Err(refusal_for(&e)),
        }
    }
}

/// The requested name as a relative path of plain components, or a refusal for a name that
/// tries to leave the root.
fn normalise(name: &str) -> Result<PathBuf, Refusal> {
    if name.contains('\0') {
        return Err(Refusal::access_violation("Bad file name"));
    }
    // Windows-style clients send backslashes; reading them as separators makes `..\x` a `..`.
    let unified = name.replace('\\', "/");
    let mut path = PathBuf::new();
    for part in unified.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(Refusal::access_violation("Path leaves the TFTP root")),
            _ => path.push(part),
        }
    }
    // What remains is plain names joined by `/`: nothing absolute, no prefix, no parent.
    if path.as_os_str().is_empty() || !path.components().all(|c| matches!(c, Component::Normal(_)))
    {
        return Err(Refusal::access_violation("Not a file name"));
    }
    Ok(path)
}

fn is_absent(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
    )
}

fn refusal_for(e: &io::Error) -> Refusal {
    match e.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory => Refusal::not_found(),
        io::ErrorKind::PermissionDenied => Refusal::access_violation("Permission denied"),
        _ if e.raw_os_error() == Some(libc::ELOOP) => {
            Refusal::access_violation("Symbolic link refused")
        }
        _ => Refusal::new(ErrorCode::NOT_DEFINED, "Cannot read file"),
    }
}

fn read_all(mut file: File, len: u64) -> io::Result<FileContent> {
    let mut buf = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    file.read_to_end(&mut buf)?;
    Ok(buf.into())
}

/// What identifies one version of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime_ns: i128,
}

impl Stamp {
    fn of(meta: &std::fs::Metadata) -> Self {
        Stamp {
            dev: meta.dev(),
            ino: meta.ino(),
            len: meta.len(),
            mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
        }
    }
}

#[derive(Debug, Default)]
struct Cache {
    limit: u64,
    bytes: u64,
    /// Bumped per lookup: the least recently used entry goes first when room is needed.
    clock: u64,
    entries: HashMap<PathBuf, Entry>,
}

#[derive(Debug)]
struct Entry {
    stamp: Stamp,
    content: FileContent,
    used: u64,
}

impl Cache {
    fn get(&mut self, path: &Path, stamp: Stamp) -> Option<FileContent> {
        self.clock += 1;
        let e = self.entries.get_mut(path)?;
        if e.stamp != stamp {
            return None;
        }
        e.used = self.clock;
        Some(e.content.clone())
    }

    fn insert(&mut self, path: PathBuf, stamp: Stamp, content: FileContent) {
        let len = content.len() as u64;
        if let Some(old) = self.entries.remove(&path) {
            self.bytes -= old.content.len() as u64;
        }
        if len > self.limit {
            return;
        }
        while self.bytes + len > self.limit {
            let Some(oldest) = self
                .entries
                .iter()
                .min_by_key(|(_, e)| e.used)
                .map(|(p, _)| p.clone())
            else {
                break;
            };
            if let Some(e) = self.entries.remove(&oldest) {
                self.bytes -= e.content.len() as u64;
            }
        }
        self.clock += 1;
        self.bytes += len;
        self.entries.insert(
            path,
            Entry {
                stamp,
                content,
                used: self.clock,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;
    use std::os::unix::fs::symlink;

    fn req(name: &str) -> TransferRequest<'_> {
        TransferRequest {
            filename: name,
            peer: SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 9), 5000),
            local: SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 69),
        }
    }

    fn code(r: Result<FileContent, OpenError>) -> Option<u16> {
        match r {
            Err(OpenError::Refused(r)) => Some(r.code.0),
            Err(OpenError::NotMine) => None,
            Ok(c) => panic!("served {} bytes", c.len()),
        }
    }

    #[test]
    fn names_are_normalised_and_parents_refused() {
        let ok = |n: &str| normalise(n).unwrap();
        assert_eq!(ok("/cm/a.cfg"), PathBuf::from("cm/a.cfg"));
        assert_eq!(ok("//cm//./a.cfg"), PathBuf::from("cm/a.cfg"));
        assert_eq!(ok("cm\\a.cfg"), PathBuf::from("cm/a.cfg"));
        assert_eq!(ok("%2e%2e/x"), PathBuf::from("%2e%2e/x"));
        for bad in [
            "../x",
            "/../x",
            "a/../../x",
            "a/..",
            "..\\x",
            "a\\..\\..\\x",
            "/",
            ".",
            "a\0b",
        ] {
            assert_eq!(
                normalise(bad).unwrap_err().code,
                ErrorCode::ACCESS_VIOLATION,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn serves_files_under_the_root_only() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), b"s3cret").unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("fw")).unwrap();
        std::fs::write(dir.path().join("fw/image.bin"), b"firmware").unwrap();
        symlink(outside.path().join("secret"), dir.path().join("escape")).unwrap();
        symlink("fw/image.bin", dir.path().join("alias.bin")).unwrap();
        let root = StaticRoot::new(dir.path()).unwrap();
        assert_eq!(&*root.open(&req("fw/image.bin")).unwrap(), b"firmware");
        assert_eq!(&*root.open(&req("/fw/image.bin")).unwrap(), b"firmware");
        assert_eq!(
            &*root.open(&req("alias.bin")).unwrap(),
            b"firmware",
            "links inside the root are fine"
        );
        assert_eq!(code(root.open(&req("escape"))), Some(2));
        assert_eq!(code(root.open(&req("../secret"))), Some(2));
        assert_eq!(
            code(root.open(&req("fw"))),
            Some(2),
            "directories are not files"
        );
        assert_eq!(code(root.open(&req("nope"))), None);
        assert_eq!(code(root.open(&req("fw/image.bin/x"))), None);
    }

    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        let root = StaticRoot::new(dir.path()).unwrap();
        assert_eq!(code(root.open(&req("pipe"))), Some(2));
    }

    #[test]
    fn the_cache_shares_one_copy_and_notices_changes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"one").unwrap();
        let root = StaticRoot::new(dir.path()).unwrap();
        let a = root.open(&req("f")).unwrap();
        let b = root.open(&req("/f")).unwrap();
        assert!(a.ptr_eq(&b), "one copy for both downloads");
        assert_eq!(root.cached_bytes(), 3);
        // Replaced by rename (new inode): served new.
        std::fs::write(dir.path().join("f.tmp"), b"two!").unwrap();
        std::fs::rename(dir.path().join("f.tmp"), &path).unwrap();
        assert_eq!(&*root.open(&req("f")).unwrap(), b"two!");
        assert_eq!(root.cached_bytes(), 4);
    }

    #[test]
    fn the_cache_evicts_the_least_recently_used_and_refuses_oversized_files() {
        let dir = tempfile::tempdir().unwrap();
        for (n, len) in [("a", 40), ("b", 40), ("c", 40), ("big", 101)] {
            std::fs::write(dir.path().join(n), vec![b'x'; len]).unwrap();
        }
        let root = StaticRoot::with_cache_limit(dir.path(), 100).unwrap();
        let a = root.open(&req("a")).unwrap();
        root.open(&req("b")).unwrap();
        root.open(&req("a")).unwrap();
        root.open(&req("c")).unwrap();
        assert_eq!(root.cached_bytes(), 80);
        assert!(
            root.open(&req("a")).unwrap().ptr_eq(&a),
            "a was used last: kept"
        );
        assert_eq!(code(root.open(&req("big"))), Some(0));
    }

    struct Only(&'static str, &'static [u8]);

    impl FileSource for Only {
        fn open(&self, req: &TransferRequest<'_>) -> Result<FileContent, OpenError> {
            match req.filename.strip_prefix(self.0) {
                Some("denied") => Err(Refusal::access_violation("not your file").into()),
                Some(_) => Ok(self.1.into()),
                None => Err(OpenError::NotMine),
            }
        }
    }

    #[test]
    fn a_chain_asks_until_a_source_claims_the_name() {
        let chain = Chain::new(vec![
            Box::new(Only("cm/", b"generated")),
            Box::new(Only("", b"static")),
        ]);
        assert_eq!(&*chain.open(&req("cm/x")).unwrap(), b"generated");
        assert_eq!(&*chain.open(&req("fw.bin")).unwrap(), b"static");
        assert_eq!(
            code(chain.open(&req("cm/denied"))),
            Some(2),
            "a refusal is final"
        );
        let empty = Chain::new(vec![]);
        assert_eq!(code(empty.open(&req("x"))), None);
    }
}
