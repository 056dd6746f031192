//! provd-powerfs: a FUSE filesystem that keeps whatever was not fsync'd only in memory and throws
//! it away on a simulated power cut, the way LazyFS is used to test PostgreSQL and etcd. The e2e
//! `power-cut` scenario puts provd's lease directory on it, cuts the power under DHCP load and
//! restarts provd on what survived.
//!
//! [`model`] says exactly what is durable when (file data after an fsync of that file, names after
//! an fsync of their directory, nothing unsynced after a cut) and how that compares with ext4.
//! [`Mount`] serves a [`Model`] at a mountpoint (root and `/dev/fuse` needed; fuser's own mount
//! code, no libfuse or fusermount), and [`Mount::cut`] is the power cut: from that instant every
//! operation fails with EIO and the durable state is frozen; [`Mount::survivors`] is the state the
//! next boot sees, to be served again by a new [`Mount`] or written to a real directory with
//! [`Model::write_image`].

mod fuse;
pub mod model;

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

pub use model::{CutReport, FsError, Model, Stats};

/// How long an unmount waits for the FUSE thread to finish before leaving it behind.
const JOIN_TIMEOUT: Duration = Duration::from_secs(5);

/// A [`Model`] served at a mountpoint. Dropping it unmounts (lazily if something still holds a
/// file open), on every path; while it lives, SIGINT, SIGTERM and SIGHUP lazily unmount it too,
/// before whatever else handles them runs (so a Ctrl-C that ends the process leaves no dead
/// mount behind).
///
/// Give every mount its own mountpoint: fuser's session, once dropped, unmounts its mountpoint
/// again if it still believes it mounted, which must not hit a newer mount at the same path.
pub struct Mount {
    model: Arc<Mutex<Model>>,
    mountpoint: PathBuf,
    session: Option<fuser::BackgroundSession>,
    signal_ids: Vec<signal_hook::SigId>,
}

impl std::fmt::Debug for Mount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mount")
            .field("mountpoint", &self.mountpoint)
            .field("mounted", &self.session.is_some())
            .finish_non_exhaustive()
    }
}

/// Whether this process may mount FUSE filesystems here (root, and `/dev/fuse` exists); the
/// reason when not.
pub fn can_mount() -> Result<(), String> {
    // SAFETY: geteuid(2) has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err("mounting powerfs needs root (fuser mounts with mount(2) itself)".into());
    }
    if !Path::new("/dev/fuse").exists() {
        return Err("/dev/fuse does not exist (no FUSE in this kernel or container)".into());
    }
    Ok(())
}

impl Mount {
    /// Mounts `model` at `mountpoint` (an existing, empty directory) and returns once the kernel
    /// has the mount.
    pub fn new(mountpoint: &Path, model: Model) -> io::Result<Mount> {
        can_mount().map_err(io::Error::other)?;
        let model = Arc::new(Mutex::new(model));
        let fs = fuse::PowerFs {
            model: Arc::clone(&model),
            mounted_at: SystemTime::now(),
        };
        let mut config = fuser::Config::default();
        config.mount_options = vec![
            fuser::MountOption::FSName("provd-powerfs".into()),
            fuser::MountOption::Subtype("powerfs".into()),
            fuser::MountOption::NoDev,
            fuser::MountOption::NoSuid,
        ];
        let session = fuser::spawn_mount(fs, mountpoint, &config).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("mounting powerfs at {}: {e}", mountpoint.display()),
            )
        })?;
        let mut m = Mount {
            model,
            mountpoint: mountpoint.to_path_buf(),
            session: Some(session),
            signal_ids: Vec::new(),
        };
        m.unmount_on_signals()?;
        Ok(m)
    }

    fn unmount_on_signals(&mut self) -> io::Result<()> {
        let path = CString::new(self.mountpoint.as_os_str().as_bytes())
            .map_err(|_| io::Error::other("mountpoint contains a NUL byte"))?;
        let path = Arc::new(path);
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            let path = Arc::clone(&path);
            let action = move || {
                // SAFETY: umount2(2) is a plain system call (async-signal-safe: no lock, no
                // allocation); `path` is a valid NUL-terminated string owned by this closure.
                unsafe { libc::umount2(path.as_ptr(), libc::MNT_DETACH) };
            };
            // SAFETY: the action only makes the umount2 system call (see above), which is safe
            // in a signal handler; it is unregistered before `path` could go away.
            let id = unsafe { signal_hook::low_level::register(sig, action) }?;
            self.signal_ids.push(id);
        }
        Ok(())
    }

    /// The mountpoint.
    pub fn path(&self) -> &Path {
        &self.mountpoint
    }

    fn model(&self) -> MutexGuard<'_, Model> {
        self.model.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The power cut, now: every later operation on the mount fails with EIO (a process still
    /// running sees a dead disk) and the durable state is frozen. Returns what was thrown away.
    pub fn cut(&self) -> CutReport {
        self.model().cut()
    }

    /// What the next boot sees (see [`Model::survivors`]).
    pub fn survivors(&self) -> Model {
        self.model().survivors()
    }

    /// What the filesystem was asked to do so far.
    pub fn stats(&self) -> Stats {
        self.model().stats()
    }

    /// Unmounts and waits (bounded) for the FUSE thread. Fails, saying why, if the mount was
    /// busy (it is then lazily detached) or the thread did not finish; the mount is gone from
    /// the path either way.
    pub fn unmount(mut self) -> io::Result<()> {
        self.teardown()
    }

    fn teardown(&mut self) -> io::Result<()> {
        for id in self.signal_ids.drain(..) {
            signal_hook::low_level::unregister(id);
        }
        let Some(session) = self.session.take() else {
            return Ok(());
        };
        let mut problem = None;
        let path = CString::new(self.mountpoint.as_os_str().as_bytes())
            .map_err(|_| io::Error::other("mountpoint contains a NUL byte"))?;
        // SAFETY: umount2(2) on a valid NUL-terminated path.
        if unsafe { libc::umount2(path.as_ptr(), 0) } != 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EINVAL) {
                // SAFETY: as above; MNT_DETACH cannot block on the busy files.
                unsafe { libc::umount2(path.as_ptr(), libc::MNT_DETACH) };
                problem = Some(format!(
                    "unmounting {} failed ({e}); lazily detached instead",
                    self.mountpoint.display()
                ));
            }
        }
        let deadline = Instant::now() + JOIN_TIMEOUT;
        while !session.guard.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        if session.guard.is_finished() {
            if let Err(e) = session.join() {
                problem.get_or_insert(format!("powerfs thread ended with {e}"));
            }
        } else {
            // Dropping the handle leaves the thread to end when the kernel lets go.
            drop(session);
            problem.get_or_insert(format!(
                "the FUSE thread of {} did not finish within {JOIN_TIMEOUT:?}",
                self.mountpoint.display()
            ));
        }
        match problem {
            None => Ok(()),
            Some(p) => Err(io::Error::other(p)),
        }
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        if let Err(e) = self.teardown() {
            eprintln!("powerfs: {e}");
        }
    }
}

#[cfg(test)]
mod tests;
