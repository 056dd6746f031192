//! The state model: every inode keeps what the process sees (`live`) apart from what a power cut
//! would leave (`durable`), and only an fsync moves the one into the other. No FUSE, no clock,
//! no I/O: the FUSE shell in `fuse.rs` and the tests drive it alike.
//!
//! # When is what durable
//!
//! | operation | live state | durable state |
//! | --- | --- | --- |
//! | `write`, `truncate`/`ftruncate` (setattr size) | at once | only when that file is fsync'd |
//! | `fsync` / `fdatasync` of a file | | the file's whole content and size, as the process sees them (every write before it, through any descriptor) |
//! | `create`, `mknod`, `mkdir`, `unlink`, `rmdir`, `rename` | at once | only when the parent directory (each one, for a rename across directories) is fsync'd |
//! | `fsync` of a directory | | that directory's entries, as the process sees them |
//! | power cut ([`Model::cut`]) | every later operation fails with EIO | frozen; [`Model::survivors`] is what the next boot sees |
//!
//! A name made durable by a directory fsync points at its inode's *durable* content: a file
//! created, written and renamed into place without an fsync of its own survives empty.
//!
//! Compared with ext4 (`data=ordered`, the default) this is harsher everywhere it differs, never
//! milder for data:
//! - ext4 commits namespace operations in its journal with the next commit (at most 5 s later,
//!   and with any fsync of any file, since the journal is shared); here they need an fsync of
//!   the parent directory, POSIX's letter. So a new file's fsync does not make its name durable.
//! - ext4 journals a truncate; here a truncate is lost unless the file is fsync'd.
//! - unsynced data that ext4's writeback may have written before the cut is always dropped here:
//!   nothing unsynced survives, not even part of it (LazyFS's "clear cache" fault). Torn tails of
//!   a partly written-back record are not produced; provd-lease's replay tests cover those.
//!
//! Not modelled: attributes other than size (mode, owner and times are kept and survive as they
//! are), hard links and symlinks (refused), and sockets keep no data (provd binds its control
//! socket in the lease directory; [`Model::write_image`] leaves sockets out).

use std::collections::{BTreeMap, HashMap};
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io;
use std::path::Path;

/// An inode number; [`ROOT`] is the mount's root directory, as FUSE wants it.
pub type Ino = u64;

/// The root directory's inode.
pub const ROOT: Ino = 1;

/// What an inode is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    /// A Unix socket's name (bind(2) on the mount); it holds no data.
    Socket,
}

/// Why an operation was refused; each maps to one errno (see [`FsError::errno`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsError {
    /// ENOENT: no such name, or no such inode.
    NotFound,
    /// EEXIST: the name is taken.
    Exists,
    /// ENOTDIR: a directory operation on something else.
    NotDir,
    /// EISDIR: a file operation on a directory.
    IsDir,
    /// ENOTEMPTY: rmdir or rename over a directory that has entries.
    NotEmpty,
    /// EINVAL: an operation this model does not take (renaming a directory into itself, `.`).
    Invalid,
    /// EIO: the power is off; nothing reaches the disk any more.
    PoweredOff,
}

impl FsError {
    /// The errno FUSE answers with.
    pub fn errno(self) -> i32 {
        match self {
            FsError::NotFound => libc::ENOENT,
            FsError::Exists => libc::EEXIST,
            FsError::NotDir => libc::ENOTDIR,
            FsError::IsDir => libc::EISDIR,
            FsError::NotEmpty => libc::ENOTEMPTY,
            FsError::Invalid => libc::EINVAL,
            FsError::PoweredOff => libc::EIO,
        }
    }
}

impl fmt::Display for FsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FsError::NotFound => "no such file or directory",
            FsError::Exists => "name exists",
            FsError::NotDir => "not a directory",
            FsError::IsDir => "is a directory",
            FsError::NotEmpty => "directory not empty",
            FsError::Invalid => "invalid operation",
            FsError::PoweredOff => "power is off (I/O error)",
        })
    }
}

impl std::error::Error for FsError {}

/// What `stat` shows of an inode (live state).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attr {
    pub ino: Ino,
    pub kind: Kind,
    pub size: u64,
    pub perm: u16,
}

#[derive(Debug, Clone)]
enum Content {
    File { live: Vec<u8>, durable: Vec<u8> },
    Dir { live: Entries, durable: Entries },
    Socket,
}

type Entries = BTreeMap<OsString, Ino>;

#[derive(Debug, Clone)]
struct Node {
    perm: u16,
    content: Content,
}

impl Node {
    fn kind(&self) -> Kind {
        match self.content {
            Content::File { .. } => Kind::File,
            Content::Dir { .. } => Kind::Dir,
            Content::Socket => Kind::Socket,
        }
    }
}

/// Counts of what the filesystem was asked to do, so a test can tell it was really used.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub writes: u64,
    pub bytes_written: u64,
    /// fsync/fdatasync of files.
    pub file_syncs: u64,
    /// fsync of directories.
    pub dir_syncs: u64,
}

/// What a power cut threw away.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CutReport {
    /// Files whose content differed from their durable content.
    pub unsynced_files: u64,
    /// Bytes of live content beyond or different from the durable content, summed over those
    /// files (the longer of the two lengths from the first differing byte).
    pub unsynced_bytes: u64,
    /// Directories whose entries differed from their durable entries.
    pub unsynced_dirs: u64,
    /// What the filesystem had been asked to do until the cut.
    pub stats: Stats,
}

impl fmt::Display for CutReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "dropped {} unsynced bytes in {} files and unsynced entries of {} directories \
             (until the cut: {} writes of {} bytes, {} file syncs, {} directory syncs)",
            self.unsynced_bytes,
            self.unsynced_files,
            self.unsynced_dirs,
            self.stats.writes,
            self.stats.bytes_written,
            self.stats.file_syncs,
            self.stats.dir_syncs
        )
    }
}

/// A whole filesystem: live and durable state of every inode, and whether the power is on.
#[derive(Debug, Clone)]
pub struct Model {
    nodes: HashMap<Ino, Node>,
    next_ino: Ino,
    powered: bool,
    stats: Stats,
}

impl Default for Model {
    fn default() -> Self {
        Model::new()
    }
}

impl Model {
    /// An empty filesystem (a root directory, durable), powered on.
    pub fn new() -> Model {
        let mut nodes = HashMap::new();
        nodes.insert(
            ROOT,
            Node {
                perm: 0o755,
                content: Content::Dir {
                    live: Entries::new(),
                    durable: Entries::new(),
                },
            },
        );
        Model {
            nodes,
            next_ino: ROOT + 1,
            powered: true,
            stats: Stats::default(),
        }
    }

    /// Whether the power is on (false after [`Model::cut`]).
    pub fn powered(&self) -> bool {
        self.powered
    }

    /// What the filesystem was asked to do so far.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    fn on(&self) -> Result<(), FsError> {
        if self.powered {
            Ok(())
        } else {
            Err(FsError::PoweredOff)
        }
    }

    fn node(&self, ino: Ino) -> Result<&Node, FsError> {
        self.nodes.get(&ino).ok_or(FsError::NotFound)
    }

    fn node_mut(&mut self, ino: Ino) -> Result<&mut Node, FsError> {
        self.nodes.get_mut(&ino).ok_or(FsError::NotFound)
    }

    fn live_entries(&self, dir: Ino) -> Result<&Entries, FsError> {
        match &self.node(dir)?.content {
            Content::Dir { live, .. } => Ok(live),
            _ => Err(FsError::NotDir),
        }
    }

    fn live_entries_mut(&mut self, dir: Ino) -> Result<&mut Entries, FsError> {
        match &mut self.node_mut(dir)?.content {
            Content::Dir { live, .. } => Ok(live),
            _ => Err(FsError::NotDir),
        }
    }

    fn file_mut(&mut self, ino: Ino) -> Result<&mut Vec<u8>, FsError> {
        match &mut self.node_mut(ino)?.content {
            Content::File { live, .. } => Ok(live),
            Content::Dir { .. } => Err(FsError::IsDir),
            Content::Socket => Err(FsError::Invalid),
        }
    }

    /// The inode `name` in directory `parent` names now.
    pub fn lookup(&self, parent: Ino, name: &OsStr) -> Result<Ino, FsError> {
        self.on()?;
        self.live_entries(parent)?
            .get(name)
            .copied()
            .ok_or(FsError::NotFound)
    }

    /// The live attributes of `ino`.
    pub fn attr(&self, ino: Ino) -> Result<Attr, FsError> {
        self.on()?;
        let node = self.node(ino)?;
        let size = match &node.content {
            Content::File { live, .. } => live.len() as u64,
            Content::Dir { live, .. } => live.len() as u64,
            Content::Socket => 0,
        };
        Ok(Attr {
            ino,
            kind: node.kind(),
            size,
            perm: node.perm,
        })
    }

    /// A new inode of `kind` named `name` in `parent` (live only until `parent` is fsync'd).
    /// Its durable content starts empty.
    pub fn create(
        &mut self,
        parent: Ino,
        name: &OsStr,
        kind: Kind,
        perm: u16,
    ) -> Result<Ino, FsError> {
        self.on()?;
        check_name(name)?;
        if self.live_entries(parent)?.contains_key(name) {
            return Err(FsError::Exists);
        }
        let ino = self.next_ino;
        self.next_ino += 1;
        let content = match kind {
            Kind::File => Content::File {
                live: Vec::new(),
                durable: Vec::new(),
            },
            Kind::Dir => Content::Dir {
                live: Entries::new(),
                durable: Entries::new(),
            },
            Kind::Socket => Content::Socket,
        };
        self.nodes.insert(ino, Node { perm, content });
        self.live_entries_mut(parent)?.insert(name.to_owned(), ino);
        Ok(ino)
    }

    /// Writes `data` at `offset` (live only), zero-filling a gap past the end.
    pub fn write(&mut self, ino: Ino, offset: u64, data: &[u8]) -> Result<usize, FsError> {
        self.on()?;
        let offset = usize::try_from(offset).map_err(|_| FsError::Invalid)?;
        let end = offset.checked_add(data.len()).ok_or(FsError::Invalid)?;
        let live = self.file_mut(ino)?;
        if live.len() < end {
            live.resize(end, 0);
        }
        live[offset..end].copy_from_slice(data);
        self.stats.writes += 1;
        self.stats.bytes_written += data.len() as u64;
        Ok(data.len())
    }

    /// Up to `len` bytes at `offset` of the live content.
    pub fn read(&self, ino: Ino, offset: u64, len: usize) -> Result<&[u8], FsError> {
        self.on()?;
        match &self.node(ino)?.content {
            Content::File { live, .. } => {
                let start = usize::try_from(offset)
                    .unwrap_or(usize::MAX)
                    .min(live.len());
                let end = start.saturating_add(len).min(live.len());
                Ok(&live[start..end])
            }
            Content::Dir { .. } => Err(FsError::IsDir),
            Content::Socket => Err(FsError::Invalid),
        }
    }

    /// truncate/ftruncate (live only).
    pub fn set_len(&mut self, ino: Ino, len: u64) -> Result<(), FsError> {
        self.on()?;
        let len = usize::try_from(len).map_err(|_| FsError::Invalid)?;
        self.file_mut(ino)?.resize(len, 0);
        Ok(())
    }

    /// chmod. Permissions are not part of the durability model: they apply at once, for good.
    pub fn set_perm(&mut self, ino: Ino, perm: u16) -> Result<(), FsError> {
        self.on()?;
        self.node_mut(ino)?.perm = perm & 0o7777;
        Ok(())
    }

    /// fsync or fdatasync: a file's content, or a directory's entries, become durable as they
    /// are now. (Both calls do the same here: size is data.)
    pub fn fsync(&mut self, ino: Ino) -> Result<(), FsError> {
        self.on()?;
        match &mut self.node_mut(ino)?.content {
            Content::File { live, durable } => {
                durable.clone_from(live);
                self.stats.file_syncs += 1;
            }
            Content::Dir { live, durable } => {
                durable.clone_from(live);
                self.stats.dir_syncs += 1;
            }
            Content::Socket => {}
        }
        Ok(())
    }

    /// Removes the name of a non-directory (live only; the inode lives on for open descriptors
    /// and for durable names that still point at it).
    pub fn unlink(&mut self, parent: Ino, name: &OsStr) -> Result<(), FsError> {
        self.on()?;
        let ino = self.lookup(parent, name)?;
        if self.node(ino)?.kind() == Kind::Dir {
            return Err(FsError::IsDir);
        }
        self.live_entries_mut(parent)?.remove(name);
        Ok(())
    }

    /// Removes an empty directory's name (live only).
    pub fn rmdir(&mut self, parent: Ino, name: &OsStr) -> Result<(), FsError> {
        self.on()?;
        let ino = self.lookup(parent, name)?;
        if !self.live_entries(ino)?.is_empty() {
            return Err(FsError::NotEmpty);
        }
        self.live_entries_mut(parent)?.remove(name);
        Ok(())
    }

    /// rename(2), replacing `new_name` if it exists unless `no_replace` (live only).
    pub fn rename(
        &mut self,
        parent: Ino,
        name: &OsStr,
        new_parent: Ino,
        new_name: &OsStr,
        no_replace: bool,
    ) -> Result<(), FsError> {
        self.on()?;
        check_name(new_name)?;
        let ino = self.lookup(parent, name)?;
        self.live_entries(new_parent)?;
        if self.node(ino)?.kind() == Kind::Dir && self.is_live_ancestor(ino, new_parent) {
            return Err(FsError::Invalid);
        }
        if let Some(&old) = self.live_entries(new_parent)?.get(new_name) {
            if old == ino {
                return Ok(());
            }
            if no_replace {
                return Err(FsError::Exists);
            }
            match (self.node(ino)?.kind(), self.node(old)?.kind()) {
                (Kind::Dir, Kind::Dir) if !self.live_entries(old)?.is_empty() => {
                    return Err(FsError::NotEmpty);
                }
                (Kind::Dir, Kind::Dir) => {}
                (Kind::Dir, _) => return Err(FsError::NotDir),
                (_, Kind::Dir) => return Err(FsError::IsDir),
                _ => {}
            }
        }
        self.live_entries_mut(parent)?.remove(name);
        self.live_entries_mut(new_parent)?
            .insert(new_name.to_owned(), ino);
        Ok(())
    }

    /// Whether directory `dir` is `target` or one of its live ancestors.
    fn is_live_ancestor(&self, dir: Ino, target: Ino) -> bool {
        // Walk down from `dir`: bounded by the number of inodes.
        let mut stack = vec![dir];
        let mut seen = 0usize;
        while let Some(d) = stack.pop() {
            if d == target {
                return true;
            }
            seen += 1;
            if seen > self.nodes.len() {
                return true;
            }
            if let Ok(entries) = self.live_entries(d) {
                stack.extend(entries.values().copied());
            }
        }
        false
    }

    /// The live entries of directory `dir`, in name order.
    pub fn readdir(&self, dir: Ino) -> Result<Vec<(OsString, Ino, Kind)>, FsError> {
        self.on()?;
        self.live_entries(dir)?
            .iter()
            .map(|(name, &ino)| Ok((name.clone(), ino, self.node(ino)?.kind())))
            .collect()
    }

    /// The power cut: from now on every operation fails with [`FsError::PoweredOff`], and the
    /// durable state is frozen. Returns what was thrown away. Cutting twice reports the same.
    pub fn cut(&mut self) -> CutReport {
        self.powered = false;
        let mut r = CutReport {
            stats: self.stats,
            ..CutReport::default()
        };
        for node in self.nodes.values() {
            match &node.content {
                Content::File { live, durable } if live != durable => {
                    let same = live.iter().zip(durable).take_while(|(a, b)| a == b).count();
                    r.unsynced_files += 1;
                    r.unsynced_bytes += (live.len().max(durable.len()) - same) as u64;
                }
                Content::Dir { live, durable } if live != durable => r.unsynced_dirs += 1,
                _ => {}
            }
        }
        r
    }

    /// What the next boot sees: the inodes reachable from the root through durable names, each
    /// with its durable content as its whole content, powered on. Works with the power on too
    /// (what a cut now would leave).
    pub fn survivors(&self) -> Model {
        let mut nodes = HashMap::new();
        let mut stack = vec![ROOT];
        // Each inode is taken once, so this ends after at most `self.nodes.len()` rounds.
        while let Some(ino) = stack.pop() {
            if nodes.contains_key(&ino) {
                continue;
            }
            let Some(node) = self.nodes.get(&ino) else {
                continue;
            };
            let content = match &node.content {
                Content::File { durable, .. } => Content::File {
                    live: durable.clone(),
                    durable: durable.clone(),
                },
                Content::Dir { durable, .. } => {
                    stack.extend(durable.values().copied());
                    Content::Dir {
                        live: durable.clone(),
                        durable: durable.clone(),
                    }
                }
                Content::Socket => Content::Socket,
            };
            nodes.insert(
                ino,
                Node {
                    perm: node.perm,
                    content,
                },
            );
        }
        Model {
            nodes,
            next_ino: self.next_ino,
            powered: true,
            stats: Stats::default(),
        }
    }

    /// Writes the durable state (what [`Model::survivors`] holds) into `dir`, a real directory
    /// that must be empty or absent, so it can be read after the mount is gone. Sockets are left
    /// out. Returns the number of files written.
    pub fn write_image(&self, dir: &Path) -> io::Result<u64> {
        std::fs::create_dir_all(dir)?;
        if std::fs::read_dir(dir)?.next().is_some() {
            return Err(io::Error::other(format!(
                "image directory {} is not empty",
                dir.display()
            )));
        }
        let survivors = self.survivors();
        let mut files = 0;
        let mut stack = vec![(ROOT, dir.to_path_buf())];
        while let Some((ino, path)) = stack.pop() {
            let Some(Node {
                content: Content::Dir { durable, .. },
                ..
            }) = survivors.nodes.get(&ino)
            else {
                continue;
            };
            for (name, &child) in durable {
                let p = path.join(name);
                match &survivors.nodes[&child].content {
                    Content::File { durable, .. } => {
                        std::fs::write(&p, durable)?;
                        files += 1;
                    }
                    Content::Dir { .. } => {
                        std::fs::create_dir(&p)?;
                        stack.push((child, p));
                    }
                    Content::Socket => {}
                }
            }
        }
        Ok(files)
    }

    /// A filesystem whose whole state (live and durable) is the tree under the real directory
    /// `dir`: regular files and directories; anything else is refused.
    pub fn load_image(dir: &Path) -> io::Result<Model> {
        let mut m = Model::new();
        let mut stack = vec![(ROOT, dir.to_path_buf())];
        while let Some((ino, path)) = stack.pop() {
            for entry in std::fs::read_dir(&path)? {
                let entry = entry?;
                let ty = entry.file_type()?;
                let name = entry.file_name();
                let (kind, data) = if ty.is_dir() {
                    (Kind::Dir, Vec::new())
                } else if ty.is_file() {
                    (Kind::File, std::fs::read(entry.path())?)
                } else {
                    return Err(io::Error::other(format!(
                        "{}: only files and directories can be loaded",
                        entry.path().display()
                    )));
                };
                let perm = if kind == Kind::Dir { 0o755 } else { 0o644 };
                let child = m.create(ino, &name, kind, perm).map_err(io::Error::other)?;
                if kind == Kind::Dir {
                    stack.push((child, entry.path()));
                } else {
                    m.write(child, 0, &data).map_err(io::Error::other)?;
                    m.fsync(child).map_err(io::Error::other)?;
                }
            }
            m.fsync(ino).map_err(io::Error::other)?;
        }
        m.stats = Stats::default();
        Ok(m)
    }
}

fn check_name(name: &OsStr) -> Result<(), FsError> {
    use std::os::unix::ffi::OsStrExt;
    let b = name.as_bytes();
    if b.is_empty() || b == b"." || b == b".." || b.contains(&b'/') {
        Err(FsError::Invalid)
    } else {
        Ok(())
    }
}
