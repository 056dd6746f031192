//! The model's durability rules on the state machine itself, then one real mount (root and
//! /dev/fuse; skipped with a message otherwise).

use std::ffi::OsStr;

use crate::model::{FsError, Kind, Model, ROOT};

fn n(s: &str) -> &OsStr {
    OsStr::new(s)
}

/// The content a file named `name` in the root has after a cut, or None if the name is gone.
fn survived(m: &Model, name: &str) -> Option<Vec<u8>> {
    let s = m.survivors();
    let ino = s.lookup(ROOT, n(name)).ok()?;
    let len = s.attr(ino).unwrap().size as usize;
    Some(s.read(ino, 0, len).unwrap().to_vec())
}

/// A durable file `name` in the root with `data`, as a previous boot left it.
fn durable_file(m: &mut Model, name: &str, data: &[u8]) -> u64 {
    let ino = m.create(ROOT, n(name), Kind::File, 0o644).unwrap();
    m.write(ino, 0, data).unwrap();
    m.fsync(ino).unwrap();
    m.fsync(ROOT).unwrap();
    ino
}

#[test]
fn unsynced_writes_are_lost_and_synced_ones_survive() {
    let mut m = Model::new();
    let log = durable_file(&mut m, "shard-0.log", b"HDR");
    m.write(log, 3, b"rec1").unwrap();
    m.fsync(log).unwrap();
    m.write(log, 7, b"rec2").unwrap();
    // The process sees both records.
    assert_eq!(m.read(log, 0, 100).unwrap(), b"HDRrec1rec2");
    let report = m.cut();
    assert_eq!(survived(&m, "shard-0.log").unwrap(), b"HDRrec1");
    assert_eq!((report.unsynced_files, report.unsynced_bytes), (1, 4));
    assert_eq!(report.stats.file_syncs, 2);
}

#[test]
fn a_sync_covers_every_write_before_it_and_an_overwrite_is_lost_whole() {
    let mut m = Model::new();
    let f = durable_file(&mut m, "f", b"aaaa");
    m.write(f, 0, b"bb").unwrap();
    m.write(f, 6, b"cc").unwrap(); // a gap, zero-filled
    m.fsync(f).unwrap();
    m.write(f, 0, b"XXXXXXXX").unwrap();
    m.cut();
    assert_eq!(survived(&m, "f").unwrap(), b"bbaa\0\0cc");
}

#[test]
fn truncate_is_lost_unless_the_file_is_synced() {
    let mut m = Model::new();
    let f = durable_file(&mut m, "f", b"0123456789");
    m.set_len(f, 3).unwrap();
    assert_eq!(m.attr(f).unwrap().size, 3);
    assert_eq!(survived(&m, "f").unwrap(), b"0123456789");
    m.fsync(f).unwrap();
    assert_eq!(survived(&m, "f").unwrap(), b"012");
}

#[test]
fn a_new_name_needs_its_directory_synced_and_its_data_its_own_sync() {
    let mut m = Model::new();
    let f = m.create(ROOT, n("new"), Kind::File, 0o644).unwrap();
    m.write(f, 0, b"data").unwrap();
    m.fsync(f).unwrap();
    // The file's own fsync does not make its name durable (ext4's journal would).
    assert_eq!(survived(&m, "new"), None);
    m.fsync(ROOT).unwrap();
    assert_eq!(survived(&m, "new").unwrap(), b"data");

    let g = m
        .create(ROOT, n("unsynced-data"), Kind::File, 0o644)
        .unwrap();
    m.write(g, 0, b"data").unwrap();
    m.fsync(ROOT).unwrap();
    assert_eq!(survived(&m, "unsynced-data").unwrap(), b"");
}

#[test]
fn a_new_directory_needs_its_parent_synced() {
    let mut m = Model::new();
    let d = m.create(ROOT, n("leases"), Kind::Dir, 0o755).unwrap();
    let f = m.create(d, n("shard-0.log"), Kind::File, 0o644).unwrap();
    m.write(f, 0, b"HDR").unwrap();
    m.fsync(f).unwrap();
    m.fsync(d).unwrap();
    // Everything inside is synced, but the directory's own name is not.
    assert_eq!(
        m.survivors().lookup(ROOT, n("leases")),
        Err(FsError::NotFound)
    );
    m.fsync(ROOT).unwrap();
    let s = m.survivors();
    let d2 = s.lookup(ROOT, n("leases")).unwrap();
    let f2 = s.lookup(d2, n("shard-0.log")).unwrap();
    assert_eq!(s.read(f2, 0, 10).unwrap(), b"HDR");
}

#[test]
fn unlink_and_rename_are_undone_by_a_cut_before_the_directory_sync() {
    let mut m = Model::new();
    durable_file(&mut m, "gone", b"g");
    durable_file(&mut m, "old", b"o");
    m.unlink(ROOT, n("gone")).unwrap();
    m.rename(ROOT, n("old"), ROOT, n("new"), false).unwrap();
    assert_eq!(m.lookup(ROOT, n("gone")), Err(FsError::NotFound));
    assert_eq!(survived(&m, "gone").unwrap(), b"g");
    assert_eq!(survived(&m, "old").unwrap(), b"o");
    assert_eq!(survived(&m, "new"), None);
    m.fsync(ROOT).unwrap();
    assert_eq!(survived(&m, "gone"), None);
    assert_eq!(survived(&m, "old"), None);
    assert_eq!(survived(&m, "new").unwrap(), b"o");
}

/// provd-lease's compaction: snapshot to .tmp, fsync it, rename over the snapshot, fsync the
/// directory, truncate the log, fsync it. A cut after any step leaves a state replay can use:
/// the old pair, or the new snapshot with the old or the truncated log.
#[test]
fn compaction_is_safe_at_every_step() {
    let mut m = Model::new();
    durable_file(&mut m, "shard-0.snap", b"SNAP1");
    let log = durable_file(&mut m, "shard-0.log", b"HDR+recs");
    let mut cuts = Vec::new();
    let tmp = m
        .create(ROOT, n("shard-0.snap.tmp"), Kind::File, 0o644)
        .unwrap();
    m.write(tmp, 0, b"SNAP2").unwrap();
    cuts.push(m.survivors());
    m.fsync(tmp).unwrap();
    cuts.push(m.survivors());
    m.rename(ROOT, n("shard-0.snap.tmp"), ROOT, n("shard-0.snap"), false)
        .unwrap();
    cuts.push(m.survivors());
    m.fsync(ROOT).unwrap();
    cuts.push(m.survivors());
    m.set_len(log, 3).unwrap();
    cuts.push(m.survivors());
    m.fsync(log).unwrap();
    cuts.push(m.survivors());

    let view = |s: &Model| {
        let read = |name: &str| {
            s.lookup(ROOT, n(name))
                .ok()
                .map(|i| String::from_utf8(s.read(i, 0, 100).unwrap().to_vec()).unwrap())
        };
        (
            read("shard-0.snap"),
            read("shard-0.log"),
            read("shard-0.snap.tmp"),
        )
    };
    let s = |x: &str| Some(x.to_string());
    let seen: Vec<_> = cuts.iter().map(view).collect();
    assert_eq!(
        seen,
        [
            (s("SNAP1"), s("HDR+recs"), None),
            (s("SNAP1"), s("HDR+recs"), None),
            (s("SNAP1"), s("HDR+recs"), None),
            (s("SNAP2"), s("HDR+recs"), None),
            (s("SNAP2"), s("HDR+recs"), None),
            (s("SNAP2"), s("HDR"), None),
        ]
    );
}

/// The same sequence without the snapshot's own fsync: the rename is made durable while the
/// snapshot's data is not, so the next boot finds an empty snapshot. The model must catch it.
#[test]
fn a_rename_without_the_data_sync_survives_empty() {
    let mut m = Model::new();
    durable_file(&mut m, "shard-0.snap", b"SNAP1");
    let tmp = m
        .create(ROOT, n("shard-0.snap.tmp"), Kind::File, 0o644)
        .unwrap();
    m.write(tmp, 0, b"SNAP2").unwrap();
    m.rename(ROOT, n("shard-0.snap.tmp"), ROOT, n("shard-0.snap"), false)
        .unwrap();
    m.fsync(ROOT).unwrap();
    assert_eq!(survived(&m, "shard-0.snap").unwrap(), b"");
}

#[test]
fn after_the_cut_everything_fails_with_eio_and_survivors_are_powered() {
    let mut m = Model::new();
    let f = durable_file(&mut m, "f", b"x");
    let r1 = m.cut();
    assert!(!m.powered());
    assert_eq!(m.write(f, 1, b"y"), Err(FsError::PoweredOff));
    assert_eq!(m.fsync(f), Err(FsError::PoweredOff));
    assert_eq!(m.read(f, 0, 1), Err(FsError::PoweredOff));
    assert_eq!(m.lookup(ROOT, n("f")), Err(FsError::PoweredOff));
    assert_eq!(
        m.create(ROOT, n("g"), Kind::File, 0o644),
        Err(FsError::PoweredOff)
    );
    assert_eq!(FsError::PoweredOff.errno(), libc::EIO);
    assert_eq!(m.cut(), r1);
    let mut s = m.survivors();
    assert!(s.powered());
    s.write(f, 1, b"y").unwrap();
    assert_eq!(s.read(f, 0, 2).unwrap(), b"xy");
}

#[test]
fn namespace_errors_are_the_posix_ones() {
    let mut m = Model::new();
    let d = m.create(ROOT, n("d"), Kind::Dir, 0o755).unwrap();
    m.create(d, n("f"), Kind::File, 0o644).unwrap();
    m.create(ROOT, n("g"), Kind::File, 0o644).unwrap();
    assert_eq!(
        m.create(ROOT, n("d"), Kind::File, 0o644),
        Err(FsError::Exists)
    );
    assert_eq!(
        m.create(ROOT, n("a/b"), Kind::File, 0o644),
        Err(FsError::Invalid)
    );
    assert_eq!(
        m.create(ROOT, n(".."), Kind::Dir, 0o755),
        Err(FsError::Invalid)
    );
    assert_eq!(m.rmdir(ROOT, n("d")), Err(FsError::NotEmpty));
    assert_eq!(m.unlink(ROOT, n("d")), Err(FsError::IsDir));
    assert_eq!(m.rmdir(ROOT, n("g")), Err(FsError::NotDir));
    assert_eq!(
        m.rename(ROOT, n("d"), d, n("x"), false),
        Err(FsError::Invalid)
    );
    assert_eq!(
        m.rename(ROOT, n("g"), ROOT, n("d"), false),
        Err(FsError::IsDir)
    );
    assert_eq!(
        m.rename(ROOT, n("d"), ROOT, n("g"), false),
        Err(FsError::NotDir)
    );
    assert_eq!(
        m.rename(ROOT, n("g"), d, n("f"), true),
        Err(FsError::Exists)
    );
    m.create(ROOT, n("e"), Kind::Dir, 0o755).unwrap();
    assert_eq!(
        m.rename(ROOT, n("e"), ROOT, n("d"), false),
        Err(FsError::NotEmpty)
    );
    m.rename(ROOT, n("g"), d, n("f"), false).unwrap();
    assert_eq!(m.readdir(d).unwrap().len(), 1);
    assert_eq!(m.write(d, 0, b"x"), Err(FsError::IsDir));
    assert_eq!(m.lookup(ROOT, n("nope")), Err(FsError::NotFound));
}

#[test]
fn the_image_holds_exactly_the_survivors_and_loads_back() {
    let mut m = Model::new();
    durable_file(&mut m, "kept", b"durable");
    let d = m.create(ROOT, n("sub"), Kind::Dir, 0o755).unwrap();
    let f = m.create(d, n("inner"), Kind::File, 0o644).unwrap();
    m.write(f, 0, b"in").unwrap();
    m.fsync(f).unwrap();
    m.fsync(d).unwrap();
    m.fsync(ROOT).unwrap();
    m.create(ROOT, n("sock"), Kind::Socket, 0o600).unwrap();
    m.fsync(ROOT).unwrap();
    m.create(ROOT, n("lost"), Kind::File, 0o644).unwrap();
    m.cut();
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("img");
    assert_eq!(m.write_image(&img).unwrap(), 2);
    assert_eq!(std::fs::read(img.join("kept")).unwrap(), b"durable");
    assert_eq!(std::fs::read(img.join("sub/inner")).unwrap(), b"in");
    assert!(!img.join("lost").exists() && !img.join("sock").exists());
    assert!(m.write_image(&img).is_err(), "an image over an image");
    let back = Model::load_image(&img).unwrap();
    assert_eq!(survived(&back, "kept").unwrap(), b"durable");
    let sub = back.lookup(ROOT, n("sub")).unwrap();
    let inner = back.lookup(sub, n("inner")).unwrap();
    assert_eq!(back.read(inner, 0, 10).unwrap(), b"in");
}

/// The kernel really routes write, fdatasync, directory fsync and bind(2) to the model, and a
/// cut drops what was not synced: through std::fs on a real mount.
#[test]
fn a_real_mount_keeps_only_what_was_synced() {
    use std::io::Write;
    if let Err(why) = crate::can_mount() {
        eprintln!("SKIPPED a_real_mount_keeps_only_what_was_synced: {why}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (mp0, mp1) = (dir.path().join("boot0"), dir.path().join("boot1"));
    std::fs::create_dir(&mp0).unwrap();
    std::fs::create_dir(&mp1).unwrap();
    let fs = crate::Mount::new(&mp0, Model::new()).unwrap();

    let mut synced = std::fs::File::create(mp0.join("synced")).unwrap();
    synced.write_all(b"durable").unwrap();
    synced.sync_data().unwrap();
    std::fs::File::open(&mp0).unwrap().sync_all().unwrap();
    synced.write_all(b"+lost").unwrap();
    std::fs::write(mp0.join("never-synced-name"), b"x").unwrap();
    let sock = std::os::unix::net::UnixListener::bind(mp0.join("ctl.sock")).unwrap();
    assert_eq!(
        std::fs::read(mp0.join("synced")).unwrap(),
        b"durable+lost",
        "the process reads its own unsynced writes"
    );
    assert!(fs.stats().file_syncs >= 1 && fs.stats().dir_syncs >= 1);

    let report = fs.cut();
    assert_eq!(report.unsynced_bytes, 5 + 1, "{report}");
    let e = synced.write_all(b"after").unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EIO), "{e}");
    assert_eq!(
        synced.sync_data().unwrap_err().raw_os_error(),
        Some(libc::EIO)
    );
    drop(synced);
    drop(sock);
    let survivors = fs.survivors();
    fs.unmount().unwrap();

    let fs = crate::Mount::new(&mp1, survivors).unwrap();
    assert_eq!(std::fs::read(mp1.join("synced")).unwrap(), b"durable");
    assert!(!mp1.join("never-synced-name").exists());
    let names: Vec<_> = std::fs::read_dir(&mp1)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["synced"]);
    fs.unmount().unwrap();
    assert!(
        std::fs::read_dir(&mp1).unwrap().next().is_none(),
        "unmounted: the mountpoint is an empty directory again"
    );
}
