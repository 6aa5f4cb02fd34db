//! The layer writer (`archive::write_layer_tar`): a directory becomes a
//! deterministic OCI layer tar that `extract_layer` and GNU tar read back
//! into the same tree; overlay whiteouts become OCI ones and back.
//! Needs root (owners, devices, `trusted.*` xattrs).

use std::collections::BTreeMap;
use std::fs;
use std::io::{Cursor, Read};
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use amber::archive::{
    decompress, extract_layer, layer_diff_id, write_layer_compressed, write_layer_tar, Compression,
    ExtractOptions, LayerCompression,
};
use amber::types::Digest;
use nix::sys::stat::{mknod, utimensat, Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;

/// A name longer than a ustar name field on its own.
fn long_name(c: char) -> String {
    std::iter::repeat_n(c, 120).collect()
}

/// One step of building a tree; steps are independent so that they can run
/// in any order.
#[derive(Clone)]
enum Step {
    File(&'static str, Vec<u8>),
    Symlink(&'static str, String),
    /// A file and a second name for it.
    Hardlink(&'static str, &'static str, Vec<u8>),
    Fifo(&'static str),
    Dir(&'static str),
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 251) as u8).collect()
}

fn steps(with_hardlink: bool) -> Vec<Step> {
    let long: &'static str = Box::leak(format!("dir/{}", long_name('n')).into_boxed_str());
    let long_dir: &'static str =
        Box::leak(format!("{}/{}/f", long_name('a'), long_name('b')).into_boxed_str());
    let mut s = vec![
        Step::File("empty", Vec::new()),
        Step::File("small", b"hello, layer\n".to_vec()),
        Step::File("big", pattern(1536 * 1024 + 7)),
        Step::File("dir/nested/deep/file", pattern(513)),
        Step::File("suid", b"#!/bin/sh\n".to_vec()),
        Step::File(long, pattern(100)),
        Step::File(long_dir, b"deep and long".to_vec()),
        Step::File("a.txt", b"sorts after a/".to_vec()),
        Step::File("a/b", b"inside a".to_vec()),
        Step::Symlink("abs", "/etc/passwd".into()),
        Step::Symlink("dir/rel", "../small".into()),
        Step::Symlink("longlink", format!("dir/{}", long_name('t'))),
        Step::Fifo("fifo"),
        Step::Dir("emptydir"),
    ];
    if with_hardlink {
        s.push(Step::Hardlink("hl1", "dir/hl2", pattern(4096)));
    }
    s
}

fn run(root: &Path, step: &Step) {
    let at = |p: &str| {
        let path = root.join(p);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        path
    };
    match step {
        Step::File(p, data) => fs::write(at(p), data).unwrap(),
        Step::Symlink(p, t) => symlink(t, at(p)).unwrap(),
        Step::Hardlink(a, b, data) => {
            fs::write(at(a), data).unwrap();
            fs::hard_link(root.join(a), at(b)).unwrap();
        }
        Step::Fifo(p) => nix::unistd::mkfifo(&at(p), Mode::from_bits_truncate(0o640)).unwrap(),
        Step::Dir(p) => fs::create_dir_all(at(p).join("")).unwrap(),
    }
}

/// Owners, modes, xattrs and mtimes that do not depend on creation order.
fn fix_metadata(root: &Path, xattrs: bool) {
    let chown = |p: &str, id| std::os::unix::fs::lchown(root.join(p), Some(id), Some(id)).unwrap();
    let chmod = |p: &str, m| fs::set_permissions(root.join(p), fs::Permissions::from_mode(m));
    chown("suid", 1000);
    chmod("suid", 0o4755).unwrap();
    chown("dir/nested", 1000);
    chmod("dir/nested", 0o750).unwrap();
    chmod("small", 0o640).unwrap();
    if xattrs {
        xattr::set(root.join("small"), "user.amber", b"x").unwrap();
        xattr::set(root.join("dir"), "user.amber.dir", b"\x00binary\xff").unwrap();
    }
    // Deepest first, so setting a child's time does not touch its parent's.
    let mut all: Vec<PathBuf> = walkdir::WalkDir::new(root)
        .min_depth(1)
        .into_iter()
        .map(|e| e.unwrap().into_path())
        .collect();
    all.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for p in &all {
        // A time that depends on the path only, not on the creation order.
        let rel = p.strip_prefix(root).unwrap().as_os_str().as_encoded_bytes();
        let sum: i64 = rel.iter().map(|&b| i64::from(b)).sum();
        let t = TimeSpec::new(1_700_000_000 + sum, 0);
        utimensat(None, p, &t, &t, UtimensatFlags::NoFollowSymlink).unwrap();
    }
}

fn build(root: &Path, order: &[Step], xattrs: bool) {
    fs::create_dir_all(root).unwrap();
    for s in order {
        run(root, s);
    }
    fix_metadata(root, xattrs);
}

/// Everything a layer records about a file, keyed by relative path.
#[derive(Debug, PartialEq)]
struct Node {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: i64,
    rdev: u64,
    content: Option<Digest>,
    target: Option<PathBuf>,
    xattrs: Vec<(String, Vec<u8>)>,
    /// The first path (in walk order) sharing this inode.
    inode_of: PathBuf,
}

fn snapshot(root: &Path) -> BTreeMap<PathBuf, Node> {
    let mut first: BTreeMap<u64, PathBuf> = BTreeMap::new();
    let mut out = BTreeMap::new();
    for e in walkdir::WalkDir::new(root).min_depth(1).sort_by_file_name() {
        let e = e.unwrap();
        let rel = e.path().strip_prefix(root).unwrap().to_path_buf();
        let m = fs::symlink_metadata(e.path()).unwrap();
        let ft = m.file_type();
        let mut xattrs: Vec<(String, Vec<u8>)> = xattr::list(e.path())
            .unwrap()
            .map(|k| {
                let v = xattr::get(e.path(), &k).unwrap().unwrap();
                (k.to_string_lossy().into_owned(), v)
            })
            .collect();
        xattrs.sort();
        let node = Node {
            mode: m.mode(),
            uid: m.uid(),
            gid: m.gid(),
            // Symlink times are not kept by every extractor (GNU tar).
            mtime: if ft.is_symlink() { 0 } else { m.mtime() },
            rdev: m.rdev(),
            content: ft
                .is_file()
                .then(|| Digest::of(&fs::read(e.path()).unwrap())),
            target: ft.is_symlink().then(|| fs::read_link(e.path()).unwrap()),
            xattrs,
            inode_of: first.entry(m.ino()).or_insert(rel.clone()).clone(),
        };
        out.insert(rel, node);
    }
    out
}

fn tar_of(dir: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    write_layer_tar(dir, &mut out).unwrap();
    out
}

fn extract(tar: &[u8], dest: &Path, devices: bool) -> amber::archive::ExtractSummary {
    fs::create_dir_all(dest).unwrap();
    let opts = ExtractOptions {
        allow_devices: devices,
        ..Default::default()
    };
    extract_layer(Cursor::new(tar), dest, &opts).unwrap()
}

/// (path, type flag, size, link target) of each entry, PAX headers applied.
fn listing(tar: &[u8]) -> Vec<(String, tar::EntryType, u64, Option<String>)> {
    let mut a = tar::Archive::new(Cursor::new(tar));
    a.entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let h = e.header();
            let link = e.link_name_bytes();
            let link = link.map(|l| String::from_utf8(l.into_owned()).unwrap());
            let path = String::from_utf8(e.path_bytes().into_owned()).unwrap();
            (path, h.entry_type(), e.size(), link)
        })
        .collect()
}

#[test]
fn round_trip_through_extract_layer() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    build(&src, &steps(true), true);
    let tar = tar_of(&src);
    let dest = tmp.path().join("dest");
    let summary = extract(&tar, &dest, false);
    let (want, got) = (snapshot(&src), snapshot(&dest));
    assert_eq!(want.len(), got.len());
    for (path, node) in &want {
        assert_eq!(Some(node), got.get(path), "{}", path.display());
    }
    assert_eq!(got[Path::new("dir/hl2")].inode_of, Path::new("dir/hl2"));
    assert_eq!(got[Path::new("hl1")].inode_of, Path::new("dir/hl2"));
    assert_eq!(got[Path::new("suid")].mode & 0o7777, 0o4755);
    // What extract_layer hashed is what we wrote, and writing the
    // extracted tree again gives the same layer.
    let again = layer_diff_id(&dest).unwrap();
    assert_eq!(summary.diff_id, Digest::of(&tar));
    assert_eq!(again.diff_id, summary.diff_id);
    assert_eq!(again.size, tar.len() as u64);
    assert_eq!(again.entries, summary.entries);
}

#[test]
fn names_order_and_entry_kinds() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    build(&src, &steps(true), true);
    let tar = tar_of(&src);
    let list = listing(&tar);
    let names: Vec<&str> = list.iter().map(|e| e.0.as_str()).collect();
    // Relative, directories with a trailing slash, each directory's
    // children right after it, sorted by bytes ("a" < "a.txt").
    let a = names.iter().position(|n| *n == "a/").unwrap();
    assert_eq!(&names[a..a + 3], ["a/", "a/b", "a.txt"]);
    assert!(names
        .iter()
        .all(|n| !n.starts_with('/') && !n.starts_with("./")));
    assert!(names.contains(&format!("dir/{}", long_name('n')).as_str()));
    let kind = |n: &str| list.iter().find(|e| e.0 == n).unwrap().clone();
    assert_eq!(kind("dir/hl2").1, tar::EntryType::Regular);
    assert_eq!(kind("hl1").1, tar::EntryType::Link);
    assert_eq!(kind("hl1").3.as_deref(), Some("dir/hl2"));
    assert_eq!(kind("longlink").3, Some(format!("dir/{}", long_name('t'))));
    assert_eq!(kind("fifo").1, tar::EntryType::Fifo);
    assert_eq!(kind("big").2, 1536 * 1024 + 7);
    assert_eq!(tar.len() % 512, 0);
    assert_eq!(layer_diff_id(&src).unwrap().entries, list.len() as u64);
}

#[test]
fn whiteouts_both_directions() {
    let tmp = tempfile::tempdir().unwrap();
    let upper = tmp.path().join("upper");
    fs::create_dir_all(upper.join("d")).unwrap();
    fs::write(upper.join("d/keep"), b"kept").unwrap();
    mknod(&upper.join("gone"), SFlag::S_IFCHR, Mode::empty(), 0).unwrap();
    // Overlay may link all whiteouts to one inode: each is still its own.
    fs::hard_link(upper.join("gone"), upper.join("gone2")).unwrap();
    xattr::set(upper.join("d"), "trusted.overlay.opaque", b"y").unwrap();
    xattr::set(upper.join("d"), "trusted.overlay.origin", b"\x00fh").unwrap();
    let tar = tar_of(&upper);

    let list = listing(&tar);
    let names: Vec<&str> = list.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(
        names,
        ["d/", "d/.wh..wh..opq", "d/keep", ".wh.gone", ".wh.gone2"]
    );
    assert!(list.iter().all(|e| e.1 != tar::EntryType::Char));
    let mut a = tar::Archive::new(Cursor::new(&tar[..]));
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        if e.path_bytes().starts_with(b".wh.") {
            assert_eq!(e.header().mode().unwrap(), 0o600);
            assert_eq!(e.size(), 0);
        }
        if let Some(pax) = e.pax_extensions().unwrap() {
            for x in pax {
                assert!(!x.unwrap().key().unwrap().contains("overlay"));
            }
        }
    }

    let back = tmp.path().join("back");
    extract(&tar, &back, false);
    for name in ["gone", "gone2"] {
        let m = fs::symlink_metadata(back.join(name)).unwrap();
        assert_eq!(m.mode() & libc::S_IFMT, libc::S_IFCHR, "{name}");
        assert_eq!(m.rdev(), 0);
    }
    let opaque = xattr::get(back.join("d"), "trusted.overlay.opaque").unwrap();
    assert_eq!(opaque.as_deref(), Some(&b"y"[..]));
    assert_eq!(fs::read(back.join("d/keep")).unwrap(), b"kept");
    assert!(!back.join("d/.wh..wh..opq").exists());
    // And the extracted upper writes the same whiteouts again.
    let names_again: Vec<String> = listing(&tar_of(&back)).into_iter().map(|e| e.0).collect();
    assert_eq!(names_again, names);
}

#[test]
fn deterministic_across_runs_and_creation_order() {
    let tmp = tempfile::tempdir().unwrap();
    let (one, two) = (tmp.path().join("one"), tmp.path().join("two"));
    let order = steps(true);
    build(&one, &order, true);
    let mut reversed = order.clone();
    reversed.reverse();
    build(&two, &reversed, true);
    let first = tar_of(&one);
    assert_eq!(first, tar_of(&one), "two writes of one directory differ");
    let (a, b) = (layer_diff_id(&one).unwrap(), layer_diff_id(&two).unwrap());
    assert_eq!(a, b);
    assert_eq!(a.diff_id, Digest::of(&first));
    assert_eq!(a.size, first.len() as u64);
}

#[test]
fn reserved_names_refused_and_sockets_skipped() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("file"), b"x").unwrap();
    let _sock = std::os::unix::net::UnixListener::bind(dir.join("sock")).unwrap();
    let names: Vec<String> = listing(&tar_of(&dir)).into_iter().map(|e| e.0).collect();
    assert_eq!(names, ["file"]);
    fs::write(dir.join(".wh.file"), b"").unwrap();
    let err = layer_diff_id(&dir).unwrap_err().to_string();
    assert!(err.contains(".wh.file"), "{err}");
}

#[test]
fn gnu_tar_lists_and_extracts() {
    let tmp = tempfile::tempdir().unwrap();
    let full = tmp.path().join("full");
    build(&full, &steps(true), true);
    mknod(&full.join("wh"), SFlag::S_IFCHR, Mode::empty(), 0).unwrap();
    let dev = nix::sys::stat::makedev(1, 3);
    mknod(
        &full.join("null"),
        SFlag::S_IFCHR,
        Mode::from_bits_truncate(0o666),
        dev,
    )
    .unwrap();
    let tar_path = tmp.path().join("full.tar");
    fs::write(&tar_path, tar_of(&full)).unwrap();
    let out = Command::new("tar")
        .arg("-tvf")
        .arg(&tar_path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.is_empty(), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("hl1 link to dir/hl2"), "{stdout}");
    assert!(stdout.contains("1000/1000"), "{stdout}");
    assert!(stdout.contains(&format!("longlink -> dir/{}", long_name('t'))));

    let plain = tmp.path().join("plain");
    build(&plain, &steps(false), false);
    let tar_path = tmp.path().join("plain.tar");
    fs::write(&tar_path, tar_of(&plain)).unwrap();
    let dest = tmp.path().join("gnu");
    fs::create_dir(&dest).unwrap();
    let out = Command::new("tar")
        .args(["--numeric-owner", "-xpf"])
        .arg(&tar_path)
        .arg("-C")
        .arg(&dest)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.is_empty(), "{stderr}");
    assert_eq!(snapshot(&plain), snapshot(&dest));
}

fn decompressed(data: &[u8]) -> (Compression, Vec<u8>) {
    let (kind, mut r) = decompress(Cursor::new(data.to_vec())).unwrap();
    let mut out = Vec::new();
    r.read_to_end(&mut out).unwrap();
    (kind, out)
}

#[test]
fn compressed_streams_hold_the_same_tar() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    build(&src, &steps(true), true);
    let tar = tar_of(&src);
    let plain = layer_diff_id(&src).unwrap();
    let cases = [
        (LayerCompression::None, Compression::None),
        (LayerCompression::Gzip, Compression::Gzip),
        (
            LayerCompression::Zstd {
                level: 3,
                threads: 0,
            },
            Compression::Zstd,
        ),
        (
            LayerCompression::Zstd {
                level: 3,
                threads: 2,
            },
            Compression::Zstd,
        ),
    ];
    for (how, kind) in cases {
        let mut blob = Vec::new();
        let (summary, digest, size) = write_layer_compressed(&src, &mut blob, how).unwrap();
        assert_eq!(summary, plain, "{how:?}");
        assert_eq!(digest, Digest::of(&blob), "{how:?}");
        assert_eq!(size, blob.len() as u64, "{how:?}");
        assert_eq!(decompressed(&blob), (kind, tar.clone()), "{how:?}");
        let mut again = Vec::new();
        write_layer_compressed(&src, &mut again, how).unwrap();
        assert_eq!(again, blob, "{how:?} is not deterministic");
    }
    // With workers, zstd's output does not depend on how many.
    let blobs: Vec<Vec<u8>> = [1, 2, 4]
        .into_iter()
        .map(|threads| {
            let mut blob = Vec::new();
            let how = LayerCompression::Zstd { level: 3, threads };
            write_layer_compressed(&src, &mut blob, how).unwrap();
            blob
        })
        .collect();
    assert!(blobs.windows(2).all(|w| w[0] == w[1]));
}
