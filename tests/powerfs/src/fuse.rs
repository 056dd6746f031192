//! The FUSE shell: each request locks the [`Model`], applies one operation and answers with its
//! errno. Every open is direct I/O and every entry and attribute has a zero TTL, so the kernel
//! keeps no page cache or attributes of its own: each write, fsync and read reaches the model.

use std::ffi::OsStr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, LockOwner,
    OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty,
    ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, Request, WriteFlags,
};

use crate::model::{Attr, FsError, Kind, Model};

const TTL: Duration = Duration::ZERO;

/// The [`fuser::Filesystem`] over a shared [`Model`].
#[derive(Debug)]
pub(crate) struct PowerFs {
    pub(crate) model: Arc<Mutex<Model>>,
    /// Shown as every inode's times: the model keeps none.
    pub(crate) mounted_at: SystemTime,
}

fn err(e: FsError) -> Errno {
    Errno::from_i32(e.errno())
}

impl PowerFs {
    fn model(&self) -> MutexGuard<'_, Model> {
        // A panic in one request must not wedge every later one.
        self.model.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn file_attr(&self, a: Attr) -> FileAttr {
        let (kind, nlink) = match a.kind {
            Kind::File => (FileType::RegularFile, 1),
            Kind::Dir => (FileType::Directory, 2),
            Kind::Socket => (FileType::Socket, 1),
        };
        FileAttr {
            ino: INodeNo(a.ino),
            size: a.size,
            blocks: a.size.div_ceil(512),
            atime: self.mounted_at,
            mtime: self.mounted_at,
            ctime: self.mounted_at,
            crtime: self.mounted_at,
            kind,
            perm: a.perm,
            nlink,
            // SAFETY: getuid(2)/getgid(2) have no preconditions and cannot fail.
            uid: unsafe { libc::getuid() },
            // SAFETY: as above.
            gid: unsafe { libc::getgid() },
            rdev: 0,
            blksize: 4096,
            flags: 0,
        }
    }

    fn entry(&self, r: Result<Attr, FsError>, reply: ReplyEntry) {
        match r {
            Ok(a) => reply.entry(&TTL, &self.file_attr(a), Generation(0)),
            Err(e) => reply.error(err(e)),
        }
    }

    fn make(
        &self,
        parent: INodeNo,
        name: &OsStr,
        kind: Kind,
        mode: u32,
        umask: u32,
    ) -> Result<Attr, FsError> {
        let mut m = self.model();
        let perm = (mode & !umask & 0o7777) as u16;
        let ino = m.create(parent.0, name, kind, perm)?;
        m.attr(ino)
    }
}

fn done(r: Result<(), FsError>, reply: ReplyEmpty) {
    match r {
        Ok(()) => reply.ok(),
        Err(e) => reply.error(err(e)),
    }
}

impl Filesystem for PowerFs {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let m = self.model();
        let r = m.lookup(parent.0, name).and_then(|ino| m.attr(ino));
        drop(m);
        self.entry(r, reply);
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.model().attr(ino.0) {
            Ok(a) => reply.attr(&TTL, &self.file_attr(a)),
            Err(e) => reply.error(err(e)),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<fuser::TimeOrNow>,
        _mtime: Option<fuser::TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let mut m = self.model();
        let r = (|| {
            if let Some(size) = size {
                m.set_len(ino.0, size)?;
            }
            if let Some(mode) = mode {
                m.set_perm(ino.0, (mode & 0o7777) as u16)?;
            }
            m.attr(ino.0)
        })();
        drop(m);
        match r {
            Ok(a) => reply.attr(&TTL, &self.file_attr(a)),
            Err(e) => reply.error(err(e)),
        }
    }

    fn mknod(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        _rdev: u32,
        reply: ReplyEntry,
    ) {
        let kind = match mode & libc::S_IFMT {
            libc::S_IFREG => Kind::File,
            libc::S_IFSOCK => Kind::Socket,
            _ => return reply.error(Errno::EPERM),
        };
        self.entry(self.make(parent, name, kind, mode, umask), reply);
    }

    fn mkdir(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        self.entry(self.make(parent, name, Kind::Dir, mode, umask), reply);
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        done(self.model().unlink(parent.0, name), reply);
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        done(self.model().rmdir(parent.0, name), reply);
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let no_replace = flags.contains(RenameFlags::RENAME_NOREPLACE);
        if flags.difference(RenameFlags::RENAME_NOREPLACE).bits() != 0 {
            // RENAME_EXCHANGE and RENAME_WHITEOUT are not modelled.
            return reply.error(Errno::EINVAL);
        }
        done(
            self.model()
                .rename(parent.0, name, newparent.0, newname, no_replace),
            reply,
        );
    }

    fn open(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        match self.model().attr(ino.0) {
            Ok(a) if a.kind == Kind::Dir => reply.error(Errno::EISDIR),
            Ok(_) => reply.opened(FileHandle(0), FopenFlags::FOPEN_DIRECT_IO),
            Err(e) => reply.error(err(e)),
        }
    }

    fn create(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        _flags: i32,
        reply: ReplyCreate,
    ) {
        match self.make(parent, name, Kind::File, mode, umask) {
            Ok(a) => reply.created(
                &TTL,
                &self.file_attr(a),
                Generation(0),
                FileHandle(0),
                FopenFlags::FOPEN_DIRECT_IO,
            ),
            Err(e) => reply.error(err(e)),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        match self.model().read(ino.0, offset, size as usize) {
            Ok(data) => reply.data(data),
            Err(e) => reply.error(err(e)),
        }
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        match self.model().write(ino.0, offset, data) {
            // A FUSE write is at most max_write (far below 4 GiB).
            Ok(n) => reply.written(u32::try_from(n).unwrap_or(u32::MAX)),
            Err(e) => reply.error(err(e)),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        // close(2) makes nothing durable.
        reply.ok();
    }

    fn fsync(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        done(self.model().fsync(ino.0), reply);
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        match self.model().attr(ino.0) {
            Ok(a) if a.kind == Kind::Dir => reply.opened(FileHandle(0), FopenFlags::empty()),
            Ok(_) => reply.error(Errno::ENOTDIR),
            Err(e) => reply.error(err(e)),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let entries = match self.model().readdir(ino.0) {
            Ok(e) => e,
            Err(e) => return reply.error(err(e)),
        };
        let dots = [
            (OsStr::new(".").to_owned(), ino.0, Kind::Dir),
            (OsStr::new("..").to_owned(), ino.0, Kind::Dir),
        ];
        // Offsets are positions in this listing; a listing that changes between calls may skip
        // or repeat a name, as readdir(3) allows.
        let all = dots.into_iter().chain(entries);
        for (i, (name, child, kind)) in all.enumerate().skip(offset as usize) {
            let ty = match kind {
                Kind::File => FileType::RegularFile,
                Kind::Dir => FileType::Directory,
                Kind::Socket => FileType::Socket,
            };
            if reply.add(INodeNo(child), i as u64 + 1, ty, &name) {
                break;
            }
        }
        reply.ok();
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        done(self.model().fsync(ino.0), reply);
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        if !self.model().powered() {
            return reply.error(Errno::EIO);
        }
        reply.statfs(1 << 20, 1 << 20, 1 << 20, 1 << 20, 1 << 20, 4096, 255, 4096);
    }

    fn access(&self, _req: &Request, ino: INodeNo, _mask: fuser::AccessFlags, reply: ReplyEmpty) {
        // Root runs everything here; existence is the only check.
        done(self.model().attr(ino.0).map(drop), reply);
    }
}
